//! The dose x overlap map (issue 21, part 5): `map.csv`, the heatmaps with every cell's value,
//! the success threshold and boundary, the comparison's difference maps; none for the tiny
//! study.

use crate::common::{self, cli};
use std::path::Path;

/// A map-like study: a hex scan, two overlap targets and the full scan, two doses.
const SMALL_MAP: &str = "dose_list = [1e3, 1e5]\ngridsizes = [1]\npatch_size_pixels = 32\n\
    overlap_views = { o60 = { overlap = 0.6 }, o20 = { overlap = 0.2 } }\n\
    [simulation]\nn_positions = 600\nobject_size = 112\nscan_pattern = 'hex'\n";

fn run(args: &[&str], extra: &[&Path]) {
    let mut cmd = cli();
    cmd.arg("--quiet").args(args);
    for p in extra {
        cmd.arg(p);
    }
    common::succeeded(&cmd.output().unwrap());
}

/// The boundary segments of a heatmap.
fn boundary(svg: &str) -> usize {
    svg.matches("class=\"boundary\"").count()
}

#[test]
fn map_study_writes_map_csv_heatmaps_and_difference_maps() {
    let dir = tempfile::tempdir().unwrap();
    let design = dir.path().join("small_map.toml");
    std::fs::write(&design, SMALL_MAP).unwrap();
    let out = dir.path().join("study");
    let mut cmd = cli();
    cmd.args(["--quiet", "study", "--design"])
        .arg(&design)
        .args([
            "--backends",
            "native:ml,native:epie",
            "--epochs",
            "5",
            "--out",
        ])
        .arg(&out);
    common::succeeded(&cmd.output().unwrap());

    let report = out.join("report/native-ml");
    let csv = std::fs::read_to_string(report.join("map.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "dose,view,gridsize,split,overlap_realised,exposures_per_pixel,photons_per_pixel,metric,value"
    );
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split(',').collect()).collect();
    // Every job (2 doses x 3 views) on both splits, with a realised overlap and photons.
    let mut cells: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0], r[1], r[3])).collect();
    cells.dedup();
    assert_eq!(cells.len(), 2 * 3 * 2, "{csv}");
    for r in &rows {
        assert_eq!(r.len(), 9, "{r:?}");
        let overlap: f64 = r[4].parse().unwrap();
        let photons: f64 = r[6].parse().unwrap();
        assert!((0.0..1.0).contains(&overlap) && photons > 0.0, "{r:?}");
    }
    let nrmse: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r[3] == "test" && r[7] == "fienup_nrmse")
        .map(|r| (r[4].parse().unwrap(), r[8].parse().unwrap()))
        .collect();
    assert_eq!(nrmse.len(), 6, "{csv}");
    // Sorted by dose, then view.
    assert!(rows.windows(2).all(|w| {
        let d = |r: &Vec<&str>| r[0].parse::<f64>().unwrap();
        d(&w[0]) < d(&w[1]) || (d(&w[0]) == d(&w[1]) && w[0][1] <= w[1][1])
    }));

    let svg = std::fs::read_to_string(report.join("maps/map_test_fienup_nrmse.svg")).unwrap();
    for (_, v) in &nrmse {
        let text = reporting_fmt(*v);
        assert!(svg.contains(&format!(">{text}<")), "{text} missing");
    }
    assert!(svg.contains("test Fienup NRMSE &lt;= 0.3000"));
    assert!(report.join("maps/map_test_phase_ssim.svg").is_file());
    let summary = std::fs::read_to_string(report.join("summary.md")).unwrap();
    assert!(
        summary.contains("](maps/map_test_fienup_nrmse.svg)"),
        "{summary}"
    );
    // The fixed-budget table: its best cell within the largest budget is the best test NRMSE
    // of all (every cell fits under the budget a power of ten above the dearest one).
    let budget = summary
        .split("### Fixed photon budget (test fienup_nrmse, gs1)")
        .nth(1)
        .expect("the fixed-budget table");
    let last = budget.lines().rfind(|l| l.starts_with("| ≤")).unwrap();
    let best = nrmse.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
    assert!(
        last.contains(&format!(" {} |", reporting_fmt(best))),
        "{last}\n{budget}"
    );

    // A threshold between the best and the worst cell draws a boundary; one above every cell
    // none.
    let mut values: Vec<f64> = nrmse.iter().map(|(_, v)| *v).collect();
    values.sort_by(f64::total_cmp);
    let (lo, hi) = (values[0], values[values.len() - 1]);
    let redraw = |threshold: f64, to: &Path| {
        let t = threshold.to_string();
        run(
            &["report", "--success-nrmse", &t, "--out"],
            &[to, &out.join("artifacts/native-ml")],
        );
        std::fs::read_to_string(to.join("maps/map_test_fienup_nrmse.svg")).unwrap()
    };
    let all = redraw(hi + 1.0, &dir.path().join("r_all"));
    assert_eq!(boundary(&all), 0, "{all}");
    let split = redraw((lo + hi) / 2.0, &dir.path().join("r_mid"));
    assert!(boundary(&split) > 0, "{split}");
    assert!(split.contains(&format!("NRMSE &lt;= {}", reporting_fmt((lo + hi) / 2.0))));

    // The comparison: each method's maps and the difference of the pair.
    let comparison = out.join("comparison");
    let md = std::fs::read_to_string(comparison.join("comparison.md")).unwrap();
    for file in [
        "maps/native-ml/map_test_fienup_nrmse.svg",
        "maps/native-epie/map_test_fienup_nrmse.svg",
        "maps/diff_native-ml_minus_native-epie_map_test_fienup_nrmse.svg",
    ] {
        assert!(md.contains(&format!("]({file})")), "{file}: {md}");
        assert!(comparison.join(file).is_file(), "{file}");
    }
}

/// Four significant digits, as the heatmap prints a value (`fmt_num`).
fn reporting_fmt(v: f64) -> String {
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (3 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

#[test]
fn tiny_study_writes_no_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    run(&["study", "--preset", "tiny", "--out"], &[&out]);
    for file in ["report/map.csv", "report/maps", "comparison/maps"] {
        assert!(!out.join(file).exists(), "{file} written");
    }
    let summary = std::fs::read_to_string(out.join("report/summary.md")).unwrap();
    assert!(!summary.contains("Dose x overlap map"));
}
