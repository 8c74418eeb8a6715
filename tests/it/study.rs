//! `study`, `report`, `diff`, and the golden baseline check (`cargo xtask baseline --check`).

use crate::cli_snapshot;
use crate::common::{self, cli, project_root, read_json};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Runs the tiny study into `dir/name` and returns that folder.
fn tiny_study(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let output = cli()
        .args(["--quiet", "study", "--preset", "tiny", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    common::succeeded(&output);
    out
}

#[test]
fn tiny_study_runs_every_phase_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("my study");
    let output = cli_snapshot!(
        "study_tiny_stdout",
        cli()
            .args(["--quiet", "study", "--preset", "tiny", "--out"])
            .arg(&out),
        dir.path()
    );
    assert_eq!(output.status.code(), Some(0));
    for file in [
        "study.json",
        "phase_c/dose_1000/patched_train.npz",
        "phase_d/dose_100000/dense/dense_test.npz",
        "phase_d/dose_1000/overlap_report.json",
        "artifacts/training_manifest.json",
        "artifacts/skip_summary.json",
        "artifacts/dose_10000/dense/gs2/native_bundle.npz",
        "report/summary.md",
        "report/metrics.csv",
        "report/plots/quality_phase_ssim.svg",
        "report/plots/loss_dose_1000.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let manifest = read_json(&out.join("artifacts/training_manifest.json"));
    let jobs = manifest["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 6);
    assert!(jobs.iter().all(|j| j["result"]["status"] == "success"));
    assert_eq!(manifest["skipped_count"], 3);
    // summary.md: one metrics table, each job's train split right above its test split.
    let summary = std::fs::read_to_string(out.join("report/summary.md")).unwrap();
    let table = summary
        .split("## Metrics (train and test split)\n")
        .nth(1)
        .expect("the metrics table")
        .split("\n## ")
        .next()
        .unwrap();
    assert!(
        table.contains("| dose | view | gs | split | phase.ssim |"),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| 1e"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 2 * jobs.len(), "{table}");
    for (pair, job) in rows.chunks(2).zip(jobs) {
        assert_eq!((pair[0][3], pair[1][3]), ("train", "test"), "{table}");
        assert_eq!(pair[0][..3], pair[1][..3]);
        for (row, split) in pair.iter().zip(["train", "test"]) {
            let ssim = job["result"]["metrics"][split]["phase"]["ssim"]
                .as_f64()
                .unwrap();
            assert_eq!(row[4], format!("{ssim:.4}"), "{split}: {table}");
        }
    }
    // The study file beside the results reproduces the run's design.
    let study = read_json(&out.join("study.json"));
    assert_eq!(study["name"], "tiny");
}

/// The plots are SVG documents whose plotted numbers are the ones in metrics.csv.
#[test]
fn plots_show_the_metrics_they_claim() {
    let dir = tempfile::tempdir().unwrap();
    let out = tiny_study(dir.path(), "run");
    let csv = std::fs::read_to_string(out.join("report/metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "test.phase.ssim")
        .expect("phase SSIM column");
    let svg = std::fs::read_to_string(out.join("report/plots/quality_phase_ssim.svg")).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<g ").count(), svg.matches("</g>").count());
    let mut points = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let (dose, value) = (cells[0], cells[col]);
        let dose: f64 = dose.parse().unwrap();
        let needle = format!("data-x=\"{dose}\" data-y=\"{value}\"");
        assert!(svg.contains(&needle), "{needle} not plotted");
        points += 1;
    }
    assert_eq!(points, 6);
    assert_eq!(svg.matches("<circle").count(), 6);
    // A loss curve per job and split: 2 jobs x 2 splits at each dose, 20 epochs each.
    let loss = std::fs::read_to_string(out.join("report/plots/loss_dose_1000.svg")).unwrap();
    assert_eq!(loss.matches("class=\"series\"").count(), 4);
    assert_eq!(loss.matches("<circle").count(), 4 * 20);
}

#[test]
fn report_is_a_pure_function_of_the_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let out = tiny_study(dir.path(), "run");
    let again = dir.path().join("again");
    cli_snapshot!(
        "study_report_stdout",
        cli()
            .arg("report")
            .arg(out.join("artifacts"))
            .arg("--out")
            .arg(&again),
        dir.path()
    );
    for name in [
        "summary.md",
        "metrics.csv",
        "plots/quality_phase_ssim.svg",
        "plots/loss_dose_10000.svg",
    ] {
        assert_eq!(
            std::fs::read(out.join("report").join(name)).unwrap(),
            std::fs::read(again.join(name)).unwrap(),
            "{name} differs between two reports of the same artifacts"
        );
    }
    let missing = cli()
        .arg("report")
        .arg(dir.path().join("nothing here"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("training_manifest.json"));
}

/// Rewrites `root/training_manifest.json` through `edit`.
fn edit_manifest(root: &Path, edit: impl FnOnce(&mut Value)) {
    let path = root.join("training_manifest.json");
    let mut manifest = read_json(&path);
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn diff_of_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = tiny_study(dir.path(), "a").join("artifacts");
    let b = tiny_study(dir.path(), "b").join("artifacts");
    // Two runs in different folders are equal: roots and timestamps are volatile.
    cli_snapshot!(
        "study_diff_identical",
        cli().arg("diff").arg(&a).arg(&b),
        dir.path()
    );

    let c = dir.path().join("c");
    common::copy_dir(&b, &c);
    edit_manifest(&c, |m| {
        let loss = &mut m["jobs"][1]["result"]["final_loss"];
        *loss = Value::from(loss.as_f64().unwrap() * (1.0 + 1e-9));
    });
    let inside = cli()
        .arg("diff")
        .arg(&a)
        .arg(&c)
        .args(["--tolerance", "1e-6"])
        .output()
        .unwrap();
    assert_eq!(
        inside.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&inside.stdout)
    );

    edit_manifest(&c, |m| {
        m["jobs"][1]["result"]["metrics"]["test"]["phase"]["ssim"] = Value::from(0.5);
    });
    cli_snapshot!(
        "study_diff_metric",
        cli().arg("diff").arg(&a).arg(&c),
        dir.path()
    );

    let d = dir.path().join("d");
    common::copy_dir(&b, &d);
    edit_manifest(&d, |m| {
        let mut extra = m["jobs"][1].clone();
        extra["view"] = Value::from("sparse");
        m["jobs"].as_array_mut().unwrap().push(extra);
        m["skipped_views"].as_array_mut().unwrap().remove(0);
        m["skipped_count"] = Value::from(2);
    });
    cli_snapshot!(
        "study_diff_job_added_skip_removed",
        cli().arg("diff").arg(&a).arg(&d),
        dir.path()
    );
    let json = cli()
        .arg("diff")
        .arg(&a)
        .arg(&d)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["equal"], false);
    assert_eq!(json["jobs_added"][0]["view"], "sparse");
    assert_eq!(json["skips_removed"][0]["dose"], 1000.0);

    let bad = cli()
        .arg("diff")
        .arg(&a)
        .arg(dir.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `cargo xtask baseline --check` passes on the committed goldens and fails, with a readable
/// diff and the bless command, when a golden artifact is perturbed.
#[test]
fn baseline_check_catches_a_perturbed_golden() {
    let dir = tempfile::tempdir().unwrap();
    let run = |golden: PathBuf, out: &str| {
        xtask::baseline::run(xtask::baseline::Options {
            mode: xtask::baseline::Mode::Check,
            with_tests: false,
            out: dir.path().join(out),
            binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_dose-overlap"))),
            golden,
        })
        .unwrap()
    };
    let clean = run(project_root().join("golden/baseline"), "clean");
    assert_eq!(
        clean.code,
        0,
        "the committed goldens drifted:\n{}",
        clean.drift.join("\n")
    );

    let golden = dir.path().join("golden");
    common::copy_dir(&project_root().join("golden/baseline"), &golden);
    let path = golden.join("native/training_manifest.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let perturbed = text.replacen("\"epochs_completed\": 20", "\"epochs_completed\": 21", 1);
    assert_ne!(perturbed, text);
    std::fs::write(&path, perturbed).unwrap();
    let outcome = run(golden, "perturbed");
    assert_eq!(outcome.code, 1);
    assert_eq!(outcome.drift.len(), 1, "{:?}", outcome.drift);
    let diff = &outcome.drift[0];
    assert!(
        diff.starts_with("native/training_manifest.json:\n"),
        "{diff}"
    );
    assert!(
        diff.contains("\n- ") && diff.contains("\"epochs_completed\": 21"),
        "{diff}"
    );
    assert!(
        diff.contains("\n+ ") && diff.contains("\"epochs_completed\": 20"),
        "{diff}"
    );
}

/// A study file's relative `base_npz` is relative to the study file's folder, and stays so
/// when `study` records the study as `DIR/study.json` and every phase reads it back from there
/// (the recorded path was relative and resolved against DIR: Phase C failed).
#[test]
fn a_relative_base_npz_in_a_study_file_reaches_phase_c() {
    let dir = tempfile::tempdir().unwrap();
    crate::generate::write_base(&dir.path().join("base.npz"), 32);
    std::fs::write(
        dir.path().join("d.toml"),
        "preset = 'tiny'\ndose_list = [1e3]\n[simulation]\nbase_npz = 'base.npz'\n",
    )
    .unwrap();
    let out = cli()
        .current_dir(dir.path())
        .args([
            "study",
            "--design",
            "d.toml",
            "--out",
            "s",
            "--dry-run",
            "--quiet",
        ])
        .output()
        .unwrap();
    common::succeeded(&out);
    let recorded = read_json(&dir.path().join("s/study.json"));
    let base = recorded["simulation"]["base_npz"].as_str().unwrap();
    assert!(Path::new(base).is_absolute(), "recorded {base}");
    let meta = read_json_metadata(&dir.path().join("s/phase_c/dose_1000/patched_train.npz"));
    assert_eq!(meta["probe"]["file"], "base.npz");
}

fn read_json_metadata(path: &Path) -> Value {
    let mut r = npz_contract::NpzReader::open(path).unwrap();
    serde_json::from_str(&r.read_string("_metadata").unwrap()).unwrap()
}

/// `--force` on a fresh folder has no real results to protect: a forced dry run writes its
/// dry-run summaries and the study finishes, as without `--force` (it exited 2: `train` took
/// every "--force" decision for a real run's result, wrote nothing, and the report had none).
#[test]
fn a_forced_dry_run_of_a_fresh_study_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli()
        .current_dir(dir.path())
        .args([
            "study",
            "--preset",
            "tiny",
            "--out",
            "s",
            "--dry-run",
            "--force",
            "--quiet",
        ])
        .output()
        .unwrap();
    common::succeeded(&out);
    let manifest = read_json(&dir.path().join("s/artifacts/training_manifest.json"));
    assert_eq!(manifest["dry_run"], true, "{manifest}");
}

/// Every file under `dir` with its bytes and modification time.
fn files_with_mtimes(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = entry.metadata().unwrap().modified().unwrap();
                out.push((path.clone(), std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    out.sort();
    out
}

/// Issue 27, item 5: a finished study's rerun (no SOURCE_DATE_EPOCH: the manifest keeps the
/// timestamp of the run whose results it adopts) redraws no report, picture or comparison; a
/// damaged picture, a changed input or `--force` redraws them.
#[test]
fn a_finished_study_rerun_redraws_nothing_whose_inputs_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let study = || {
        let output = cli()
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["study", "--preset", "tiny", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        common::succeeded(&output);
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    study();
    let drawn = |out: &Path| {
        let mut files = files_with_mtimes(&out.join("report"));
        files.extend(files_with_mtimes(&out.join("comparison")));
        files.push(
            files_with_mtimes(&out.join("artifacts"))
                .into_iter()
                .find(|f| f.0.ends_with("training_manifest.json"))
                .unwrap(),
        );
        files
    };
    let before = drawn(&out);
    assert!(before.len() > 10, "{}", before.len());
    // Coarse file-system clocks: a redraw must be able to show in the mtimes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let stderr = study();
    assert!(
        stderr.contains("== report: inputs unchanged and outputs verified against report.record.json, not redrawn"),
        "{stderr}"
    );
    assert!(
        stderr.contains("== comparison: inputs unchanged"),
        "{stderr}"
    );
    let after = drawn(&out);
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.0, a.0);
        assert!(b.1 == a.1, "{} changed", b.0.display());
        // The manifest is rewritten with the same bytes; what is drawn is not touched.
        if !b.0.ends_with("training_manifest.json") {
            assert_eq!(b.2, a.2, "{} was rewritten", b.0.display());
        }
    }

    // A damaged picture: the report is redrawn (to the same bytes), the comparison is not.
    let picture = out.join("report/pictures/phase_grid.png");
    let original = std::fs::read(&picture).unwrap();
    std::fs::write(&picture, b"not a picture").unwrap();
    let stderr = study();
    assert!(stderr.contains("== report: native:ml"), "{stderr}");
    assert!(
        stderr.contains("== comparison: inputs unchanged"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&picture).unwrap(), original);

    // --force redraws both.
    let output = cli()
        .args([
            "study", "--preset", "tiny", "--force", "--epochs", "3", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    common::succeeded(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("not redrawn"), "{stderr}");
    // And a rerun after a changed manifest (other epochs) redraws them from it.
    let stderr = study();
    assert!(!stderr.contains("not redrawn"), "{stderr}");
    assert_eq!(drawn(&out).len(), before.len());
}
