//! Replicates (issue 22): `study --replicates R`, the aggregate's intervals and paired tests
//! against SciPy, resume adding replicates, `verify`, `diff` and `report` on such a study.

use crate::common::{self, cli, read_json};
use std::path::{Path, PathBuf};

const METHODS: &str = "native:epie,native:ml";

/// The tiny study with two native methods and `r` replicates into `out`; returns stderr
/// (its progress lines: stderr is no terminal).
fn replicated(out: &Path, r: u32) -> String {
    let output = cli()
        .args(["study", "--preset", "tiny", "--backends", METHODS])
        .args(["--replicates", &r.to_string(), "--out"])
        .arg(out)
        .output()
        .unwrap();
    common::succeeded(&output);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Recomputes every row of `replicates/metrics.csv` and `replicates/comparison_metrics.csv`
/// with NumPy and SciPy from each replicate's own comparison table (not from the aggregate's
/// values.csv), and prints how many rows agreed.
const SCIPY_CHECK: &str = r#"
import csv, glob, math, os, sys
import numpy as np
from scipy import stats

root = sys.argv[1]
vals = {}  # (method, dose, view, gridsize, split, metric) -> {replicate: value}
for path in sorted(glob.glob(os.path.join(root, "replicate_*", "comparison", "comparison_metrics.csv"))):
    r = int(path.split(os.sep)[-3].split("_")[1])
    for row in csv.DictReader(open(path)):
        if row["status"] != "success":
            continue
        for metric, text in row.items():
            if metric in ("dose", "view", "gridsize", "method", "split", "status") or text == "":
                continue
            key = (row["method"], float(row["dose"]), row["view"], int(row["gridsize"]), row["split"], metric)
            vals.setdefault(key, {})[r] = float(text)

def close(a, b, what):
    if a == "" and (b is None or not math.isfinite(b)):
        return
    a = float(a)
    assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{what}: toolkit {a!r}, scipy {b!r}"

rows = 0
for row in csv.DictReader(open(os.path.join(root, "replicates", "metrics.csv"))):
    key = (row["method"], float(row["dose"]), row["view"], int(row["gridsize"]), row["split"], row["metric"])
    v = np.array([vals[key][r] for r in sorted(vals[key])])
    n = len(v)
    assert int(row["n"]) == n, (key, row["n"], n)
    mean = v.mean()
    close(row["mean"], mean, f"{key} mean")
    if n > 1:
        sd = v.std(ddof=1)
        close(row["sd"], sd, f"{key} sd")
        if sd > 0:
            lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n))
            close(row["ci95_low"], lo, f"{key} low")
            close(row["ci95_high"], hi, f"{key} high")
            close(row["ci95_half_width"], stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n), f"{key} hw")
    rows += 1
missing = set(vals) - {
    (r["method"], float(r["dose"]), r["view"], int(r["gridsize"]), r["split"], r["metric"])
    for r in csv.DictReader(open(os.path.join(root, "replicates", "metrics.csv")))
}
assert not missing, f"values without an aggregate row: {sorted(missing)[:3]}"

pairs = significant = 0
for row in csv.DictReader(open(os.path.join(root, "replicates", "comparison_metrics.csv"))):
    job = (float(row["dose"]), row["view"], int(row["gridsize"]), row["split"], row["metric"])
    a = vals[(row["method_a"],) + job]
    b = vals[(row["method_b"],) + job]
    common_r = sorted(set(a) & set(b))
    x = np.array([a[r] for r in common_r])
    y = np.array([b[r] for r in common_r])
    d = x - y
    assert int(row["n_pairs"]) == len(d)
    close(row["mean_diff"], d.mean(), f"{job} mean diff")
    if len(d) > 1 and d.std(ddof=1) > 1e-12 * max(1.0, abs(d.mean())):
        res = stats.ttest_rel(x, y)
        close(row["t"], float(res.statistic), f"{job} t")
        # Small p-values in relative terms, large ones absolutely.
        p = float(row["p_value"])
        assert math.isclose(p, float(res.pvalue), rel_tol=1e-6, abs_tol=1e-9), f"{job} p: {p} vs {res.pvalue}"
        assert (row["significant"] == "true") == (res.pvalue < 0.05), f"{job} significant"
        lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(len(d)))
        close(row["diff_ci95_low"], lo, f"{job} diff low")
        close(row["diff_ci95_high"], hi, f"{job} diff high")
        assert int(row["df"]) == len(d) - 1
        pairs += 1
        significant += res.pvalue < 0.05
print(rows, pairs, significant)
"#;

fn scipy_check(root: &Path) -> (usize, usize, usize) {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import scipy"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "the replicate statistics test needs python3 with scipy: install it with \
         `python3 -m pip install numpy scipy` (.ci/run does this)"
    );
    let out = common::python_numpy(SCIPY_CHECK, &[root]);
    let n: Vec<usize> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    (n[0], n[1], n[2])
}

fn replicate(root: &Path, r: u32) -> PathBuf {
    root.join(format!("replicate_{r:02}"))
}

#[test]
fn replicates_aggregate_as_scipy_does_resume_verify_and_diff() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("three replicates");
    replicated(&out, 3);
    for file in [
        "study.json",
        "replicate_01/study.json",
        "replicate_03/comparison/comparison.md",
        "replicate_02/artifacts/native-ml/training_manifest.json",
        "replicates/values.csv",
        "replicates/metrics.csv",
        "replicates/comparison_metrics.csv",
        "replicates/summary.md",
        "replicates/comparison.md",
        "replicates/plots/fienup_nrmse_vs_dose.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    assert!(!replicate(&out, 4).exists());
    assert_eq!(read_json(&out.join("study.json"))["replicates"], 3);
    let seeds = |r| read_json(&replicate(&out, r).join("study.json"))["rng_seeds"].clone();
    assert_eq!(
        seeds(1)["simulation"],
        42,
        "replicate 1 keeps the study's seeds"
    );
    assert_ne!(seeds(2)["simulation"], seeds(1)["simulation"]);
    assert_ne!(seeds(3)["simulation"], seeds(2)["simulation"]);
    assert_eq!(
        seeds(2)["object"],
        42,
        "every replicate images the study's object"
    );

    // Each replicate is an independent draw of the data, of one object; its index is in
    // `_metadata`.
    let data = common::python_numpy(
        r#"
import json, sys
import numpy as np
a, b = (np.load(p, allow_pickle=False) for p in sys.argv[1:3])
meta = lambda z: json.loads(str(z["_metadata"]))
print(np.array_equal(a["objectGuess"], b["objectGuess"]),
      np.array_equal(a["xcoords"], b["xcoords"]),
      np.array_equal(a["diffraction"], b["diffraction"]),
      meta(a).get("replicate"), meta(b).get("replicate"))
"#,
        &[
            replicate(&out, 1).join("phase_c/dose_1000/patched_train.npz"),
            replicate(&out, 2).join("phase_c/dose_1000/patched_train.npz"),
        ],
    );
    assert_eq!(data.trim(), "True False False 1 2");

    // The aggregate against SciPy: every interval, every paired t-test.
    let (rows, pairs, significant) = scipy_check(&out);
    assert!(rows > 100, "{rows} aggregate rows");
    assert!(pairs > 50, "{pairs} paired rows");
    assert!(significant > 0, "epie and ml differ somewhere at n = 3");

    // Intervals and paired verdicts in the Markdown.
    let summary = std::fs::read_to_string(out.join("replicates/summary.md")).unwrap();
    assert!(summary.contains("t-interval") || summary.contains("Student-t 95 % intervals"));
    assert!(
        summary.contains("±") && summary.contains(" (3)"),
        "{summary}"
    );
    let comparison = std::fs::read_to_string(out.join("replicates/comparison.md")).unwrap();
    assert!(comparison.contains("paired t"), "{comparison}");
    assert!(
        comparison.contains("**") || comparison.contains("no significant difference"),
        "{comparison}"
    );

    // verify: the whole folder, then a tampered aggregate and a replicate's edited seeds.
    let verify = |root: &Path| cli().arg("verify").arg(root).output().unwrap();
    common::succeeded(&verify(&out));
    let copy = dir.path().join("copy");
    common::copy_dir(&out, &copy);
    let metrics = copy.join("replicates/metrics.csv");
    let text = std::fs::read_to_string(&metrics).unwrap();
    std::fs::write(&metrics, text.replacen(",3,", ",4,", 1)).unwrap();
    let output = verify(&copy);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("replicates/metrics.csv"), "{text}");
    std::fs::remove_dir_all(&copy).unwrap();
    common::copy_dir(&out, &copy);
    let study = replicate(&copy, 2).join("study.json");
    let mut s = read_json(&study);
    s["rng_seeds"]["simulation"] = serde_json::json!(7);
    std::fs::write(&study, serde_json::to_string_pretty(&s).unwrap()).unwrap();
    let output = verify(&copy);
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("not replicate 2 of"), "{text}");
    std::fs::remove_dir_all(&copy).unwrap();
    common::copy_dir(&out, &copy);

    // Five replicates on the finished three: only replicates 4 and 5 run.
    let stderr = replicated(&out, 5);
    let skipped = stderr
        .matches("verified complete and skipped, 0 to run")
        .count();
    assert_eq!(
        skipped,
        3 * 2,
        "replicates 1-3 skipped for both methods:\n{stderr}"
    );
    assert!(
        replicate(&out, 5)
            .join("comparison/comparison.md")
            .is_file()
    );
    common::succeeded(&verify(&out));
    let metrics = std::fs::read_to_string(out.join("replicates/metrics.csv")).unwrap();
    assert!(
        metrics
            .lines()
            .skip(1)
            .all(|l| l.split(',').nth(6) == Some("5")),
        "n = 5 everywhere:\n{metrics}"
    );
    scipy_check(&out);

    // diff: the three against the five; the folder against itself.
    let output = cli().arg("diff").arg(&copy).arg(&out).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "~ study.json replicates: 3 -> 5",
        "+ replicate 4 (only in B)",
        "+ replicate 5 (only in B)",
        "== replicate 2\n  = study.json: equal\n",
        "folders differ: 3 finding(s)",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let output = cli()
        .args(["diff", "--json"])
        .arg(&out)
        .arg(&out)
        .output()
        .unwrap();
    common::succeeded(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["equal"], true);
    assert_eq!(json["replicates"].as_array().unwrap().len(), 5);

    // report on the study redraws every replicate's reports and the same aggregate.
    let elsewhere = dir.path().join("reported");
    let output = cli()
        .arg("report")
        .arg(&out)
        .arg("--out")
        .arg(&elsewhere)
        .output()
        .unwrap();
    common::succeeded(&output);
    for name in [
        "metrics.csv",
        "comparison_metrics.csv",
        "summary.md",
        "comparison.md",
    ] {
        assert_eq!(
            std::fs::read(elsewhere.join("replicates").join(name)).unwrap(),
            std::fs::read(out.join("replicates").join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(
        elsewhere
            .join("replicate_04/comparison/comparison.md")
            .is_file()
    );
}

/// `design` states what R replicates cost; R = 1 says nothing of replicates.
#[test]
fn design_states_the_cost_of_replicates() {
    let design = |extra: &[&str]| {
        let output = cli()
            .args(["design", "--preset", "tiny"])
            .args(extra)
            .output()
            .unwrap();
        common::succeeded(&output);
        String::from_utf8(output.stdout).unwrap()
    };
    let four = design(&["--replicates", "4"]);
    let line = four
        .lines()
        .find(|l| l.trim_start().starts_with("replicates:"))
        .unwrap_or_else(|| panic!("no replicates line in\n{four}"));
    assert!(
        line.contains("Phase C, Phase D and every job 4 times")
            && line.contains("trains 4 times as long"),
        "{line}"
    );
    assert!(!design(&[]).contains("replicates:"));
}

#[test]
fn replicate_counts_out_of_range_are_refused() {
    for bad in ["0", "100", "x"] {
        let output = cli()
            .args([
                "study",
                "--preset",
                "tiny",
                "--dry-run",
                "--replicates",
                bad,
            ])
            .args(["--out", "unused"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "--replicates {bad}");
        let text = String::from_utf8_lossy(&output.stderr);
        assert!(text.contains("--replicates"), "{text}");
    }
}

/// A map study with replicates: the aggregate's map is each cell's mean over the replicates'
/// own maps (checked with NumPy from each replicate's `map.csv`), with n, sd and interval, and
/// heatmaps drawn with the study's success threshold; `verify` redraws it with that threshold.
#[test]
fn replicated_map_cells_are_the_replicates_means() {
    let dir = tempfile::tempdir().unwrap();
    let design = dir.path().join("small_map.toml");
    std::fs::write(
        &design,
        "dose_list = [1e3, 1e5]\ngridsizes = [1]\npatch_size_pixels = 32\n\
         overlap_views = { o60 = { overlap = 0.6 }, o20 = { overlap = 0.2 } }\n\
         [simulation]\nn_positions = 600\nobject_size = 112\nscan_pattern = 'hex'\n",
    )
    .unwrap();
    let out = dir.path().join("map");
    let output = cli()
        .args(["--quiet", "study", "--design"])
        .arg(&design)
        .args(["--backend", "native", "--epochs", "5", "--replicates", "2"])
        .args(["--success-nrmse", "0.25", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    common::succeeded(&output);
    let maps = out.join("replicates/maps/native-ml");
    for file in [
        "map.csv",
        "map_test_fienup_nrmse.svg",
        "map_test_phase_ssim.svg",
    ] {
        assert!(maps.join(file).is_file(), "{file} missing");
    }
    let svg = std::fs::read_to_string(maps.join("map_test_fienup_nrmse.svg")).unwrap();
    assert!(svg.contains("mean of 2 replicates"), "{svg}");
    assert!(svg.contains("NRMSE &lt;= 0.25"), "{svg}");
    let checked = common::python_numpy(
        r#"
import csv, math, sys
import numpy as np
agg, r1, r2 = sys.argv[1:4]
def rows(p):
    return {(r["dose"], r["view"], r["gridsize"], r["split"], r["metric"]): r for r in csv.DictReader(open(p))}
a, b = rows(r1), rows(r2)
n = 0
for key, row in rows(agg).items():
    # A metric one replicate lacks (an FRC that never crosses 0.5) is the mean of those
    # that have it, with n saying how many.
    have = [r[key] for r in (a, b) if key in r]
    v = np.array([float(r["value"]) for r in have])
    assert int(row["n"]) == len(v) >= 1, key
    assert math.isclose(float(row["mean"]), v.mean(), rel_tol=1e-12, abs_tol=1e-15), key
    if len(v) == 2:
        assert math.isclose(float(row["sd"]), v.std(ddof=1), rel_tol=1e-9, abs_tol=1e-15), key
    else:
        assert row["sd"] == "", key
    o = sum(float(r["overlap_realised"]) for r in have) / len(have)
    assert math.isclose(float(row["overlap_realised"]), o, rel_tol=1e-12), key
    n += 1
assert n == len(set(a) | set(b)), (n, len(a), len(b))
print(n)
"#,
        &[
            maps.join("map.csv"),
            out.join("replicate_01/report/map.csv"),
            out.join("replicate_02/report/map.csv"),
        ],
    );
    assert!(checked.trim().parse::<usize>().unwrap() > 100, "{checked}");
    let verify = cli().arg("verify").arg(&out).output().unwrap();
    common::succeeded(&verify);
}
