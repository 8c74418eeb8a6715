//! Reports of sweeps: more doses than a report pictures (issue 24 item 4, issue 26 finding
//! 13). The tables keep every job; the pictures show 8 doses spread evenly and say which not.

use crate::common::{cli, copy_dir, read_json, succeeded};
use std::path::Path;

/// A tiny study's artifact root grown to `doses` doses (1000, 1100, ...): each of its jobs
/// (baseline gs1, dense gs2) repeated at every dose, with its files, so the report can picture
/// any of them. Returns the artifact root.
fn sweep(dir: &Path, doses: usize) -> std::path::PathBuf {
    let out = cli()
        .current_dir(dir)
        .args(["-q", "study", "--preset", "tiny", "--out", "s"])
        .output()
        .unwrap();
    succeeded(&out);
    let root = dir.join("s/artifacts");
    let mut manifest = read_json(&root.join("training_manifest.json"));
    let template: Vec<serde_json::Value> = manifest["jobs"].as_array().unwrap()[..2].to_vec();
    let recorded = manifest["artifact_root"].as_str().unwrap().to_string();
    let mut jobs = Vec::new();
    for d in 0..doses {
        let dose = 1000 + 100 * d;
        for job in &template {
            let (view, gs) = (job["view"].as_str().unwrap(), &job["gridsize"]);
            let rel = format!("dose_{dose}/{view}/gs{gs}");
            let from = root.join(
                Path::new(job["artifact_dir"].as_str().unwrap())
                    .strip_prefix(&recorded)
                    .unwrap(),
            );
            if !root.join(&rel).exists() {
                copy_dir(&from, &root.join(&rel));
            }
            let mut job = job.clone();
            job["dose"] = serde_json::json!(dose as f64);
            job["artifact_dir"] = format!("{recorded}/{rel}").into();
            job["log_path"] = format!("{recorded}/{rel}/train.log").into();
            jobs.push(job);
        }
    }
    manifest["jobs"] = jobs.into();
    std::fs::write(
        root.join("training_manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    root
}

/// `1.1e+03`: how the report labels a dose (Rust's `{:e}` with a signed two-digit exponent).
fn dose_label(dose: i32) -> String {
    let s = format!("{:e}", f64::from(dose));
    let (m, e) = s.split_once('e').unwrap();
    format!("{m}e+{e:0>2}")
}

/// The file names in `dir`, sorted.
fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The job pictures of a sweep's two jobs per dose (baseline gs1, dense gs2) at `doses`.
fn job_pictures(doses: &[i32], prefix: &str) -> Vec<String> {
    doses
        .iter()
        .flat_map(|d| {
            [
                format!("{prefix}dose_{d}_baseline_gs1.png"),
                format!("{prefix}dose_{d}_dense_gs2.png"),
            ]
        })
        .collect()
}

#[test]
fn a_sweep_of_twelve_doses_is_pictured_at_eight_spread_evenly_and_tabled_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = sweep(dir.path(), 12);
    let out = dir.path().join("report");
    let run = cli()
        .args(["-q", "report"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&run);
    // Doses 1000..2100 by 100: the 1st, 3rd, 4th, 6th, 7th, 9th, 10th and 12th are pictured.
    let pictured = [1000, 1200, 1300, 1500, 1600, 1800, 1900, 2100];
    let left_out = [1100, 1400, 1700, 2000];
    let mut expected = job_pictures(&pictured, "");
    expected.push("phase_grid.png".into());
    expected.sort();
    assert_eq!(sorted_names(&out.join("pictures")), expected);
    for d in pictured {
        assert!(
            out.join(format!("plots/loss_dose_{d}.svg")).is_file(),
            "{d}"
        );
    }
    for d in left_out {
        assert!(
            !out.join(format!("plots/loss_dose_{d}.svg")).exists(),
            "{d}"
        );
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let label = |d: &i32| dose_label(*d);
    let pictured_labels: Vec<String> = pictured.iter().map(label).collect();
    let left_labels: Vec<String> = left_out.iter().map(label).collect();
    let note = format!(
        "Pictured at 8 of 12 doses, spread evenly: {}. Not pictured: the 4 other doses: {}.\n\n\
         8 job(s) are not pictured",
        pictured_labels.join(", "),
        left_labels.join(", ")
    );
    assert!(md.contains(&note), "{md}");
    // Every job in the tables and in metrics.csv, the pictured or not.
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 24);
    for d in left_out {
        assert!(csv.contains(&format!("\n{d},baseline,1,success,")), "{d}");
        assert!(
            md.contains(&format!("| {} | dense | 2 | success |", label(&d))),
            "{d}"
        );
    }
    // The dose trend is one line per view and gridsize, summarised past 8 doses.
    let trend = md
        .lines()
        .find(|l| l.contains("baseline gs1: ") && l.contains("improves with dose"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(trend.contains("(12 doses, "), "{trend}");
    assert!(
        !trend.contains(" → ") || trend.matches(" → ").count() == 1,
        "{trend}"
    );
}

#[test]
fn a_study_of_eight_doses_is_pictured_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = sweep(dir.path(), 8);
    let out = dir.path().join("report");
    let run = cli()
        .args(["-q", "report"])
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&run);
    let figures = std::fs::read_dir(out.join("pictures")).unwrap().count();
    assert_eq!(figures, 8 * 2 + 1);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(!md.contains("Not pictured"), "{md}");
}

/// Regression (seen on a synthetic sweep of 10,000 jobs): `compare` drew a side-by-side
/// picture of every job (10,002 pictures, 2.9 GB, 15 GB of memory); it now pictures the jobs
/// the report pictures and tables every job.
#[test]
fn a_comparison_of_twelve_doses_is_pictured_at_eight_and_tabled_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = sweep(dir.path(), 12);
    let out = dir.path().join("comparison");
    let run = cli()
        .args(["-q", "compare"])
        .arg(format!("a={}", root.display()))
        .arg(format!("b={}", root.display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    succeeded(&run);
    let pictured = [1000, 1200, 1300, 1500, 1600, 1800, 1900, 2100];
    let mut expected = job_pictures(&pictured, "side_by_side_");
    expected.extend([
        "phase_grid_a.png".to_string(),
        "phase_grid_b.png".to_string(),
    ]);
    expected.sort();
    assert_eq!(sorted_names(&out.join("pictures")), expected);
    let md = std::fs::read_to_string(out.join("comparison.md")).unwrap();
    assert!(
        md.contains("Pictured at 8 of 12 doses, spread evenly: "),
        "{md}"
    );
    assert!(
        md.contains("8 job(s) are not pictured (no side by side picture or phase-grid cell)"),
        "{md}"
    );
    // Every job of both methods in comparison_metrics.csv: 24 jobs x 2 methods x 2 splits.
    let csv = std::fs::read_to_string(out.join("comparison_metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 24 * 2 * 2);
}
