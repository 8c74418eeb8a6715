//! `dose-overlap train` on small Phase C/D trees written here: the seed's dry run, filters,
//! strict mode, a fake PtychoPINN trainer (success, a failing job, a missing program),
//! interruption, paths with spaces, every exit code and byte-identical reruns.

use crate::cli_snapshot;
use crate::common::{self, cli, read_json};
use ndarray::{Array1, Array2, Array3};
use npz_contract::{Compression, NpzWriter};
use num_complex::Complex;
use std::path::{Path, PathBuf};

/// A tiny DATA-001 split: 8 positions of 8 x 8 patterns (K + 1 for the default K = 7, the
/// fewest PtychoPINN's gridsize-2 grouping accepts).
pub(crate) fn write_npz(path: &Path, seed: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let n = 8;
    let diffraction = Array3::from_shape_fn((n, 8, 8), |(i, r, c)| (seed + i + r * c) as f32 * 0.1);
    let object = Array2::from_shape_fn((40, 40), |(r, c)| {
        Complex::new(1.0f32, (r + c) as f32 * 0.01)
    });
    let probe = Array2::from_shape_fn((8, 8), |(r, c)| {
        Complex::new(1.0f32 / (1 + r + c) as f32, 0.0)
    });
    let xs: Array1<f64> = (0..n).map(|i| 8.0 + 2.0 * i as f64).collect();
    let ys: Array1<f64> = (0..n).map(|i| 8.0 + 3.0 * i as f64).collect();
    let mut w = NpzWriter::create(path, Compression::Stored).unwrap();
    w.add("diffraction", &diffraction).unwrap();
    w.add("objectGuess", &object).unwrap();
    w.add("probeGuess", &probe).unwrap();
    w.add("xcoords", &xs).unwrap();
    w.add("ycoords", &ys).unwrap();
    w.finish().unwrap();
}

pub(crate) const DOSES: [&str; 3] = ["dose_1000", "dose_10000", "dose_100000"];

/// `<root>/phase_c` complete for the default design's 3 doses and `<root>/phase_d` with the
/// given views (the seed's scenario: `["dense"]`), and `<root>/python`, a stand-in
/// interpreter that scores a fake trainer's job ([`crate::common::write_stdlib_python`]:
/// [`train_in`] and [`crate::resume::fake_train`] give it as `$PTYCHO_PYTHON`; a job trained but
/// not scored is a failure, issue 26).
pub(crate) fn write_tree(root: &Path, views: &[&str]) {
    std::fs::create_dir_all(root).unwrap();
    crate::common::write_stdlib_python(&root.join("python"));
    for (d, dose) in DOSES.iter().enumerate() {
        write_npz(
            &root.join("phase_c").join(dose).join("patched_train.npz"),
            d,
        );
        write_npz(
            &root.join("phase_c").join(dose).join("patched_test.npz"),
            d + 10,
        );
        for view in views {
            let folder = root.join("phase_d").join(dose).join(view);
            write_npz(&folder.join(format!("{view}_train.npz")), d + 20);
            write_npz(&folder.join(format!("{view}_test.npz")), d + 30);
        }
    }
}

/// A fake PtychoPINN trainer: refuses to run unless `training_config.json` is already in its
/// output dir, prints Keras-style progress on both streams, fails with status 3 when its
/// output dir contains `FAIL_IN`, and writes a `wts.h5.zip` that depends on its flags.
pub(crate) fn write_fake_trainer(path: &Path, fail_in: &str, sleep_seconds: u32) {
    let script = format!(
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --train_data_file) train="$2";; --test_data_file) test="$2";; --output_dir) out="$2";;
    --backend) backend="$2";; --gridsize) g="$2";; --nphotons) n="$2";; --nepochs) e="$2";;
    --config) config="$2";; --neighbor_count) k="$2";; --n_groups) groups="$2";;
    --batch_size) batch="$2";; --subsample_seed) seed="$2";;
    *) echo "unknown flag $1" >&2; exit 64;;
  esac
  shift 2
done
if [ ! -f "$out/training_config.json" ]; then echo "training_config.json missing in $out" >&2; exit 9; fi
test -f "$train" && test -f "$test" || {{ echo "data missing" >&2; exit 8; }}
grep -q "^  N: " "$config" || {{ echo "no N in $config" >&2; exit 10; }}
test "$(pwd -P)" = "$(cd "$out" && pwd -P)" || {{ echo "not run in its output dir" >&2; exit 11; }}
echo "fake ptycho_train backend=$backend gridsize=$g nphotons=$n K=$k n_groups=$groups batch_size=$batch"
sleep {sleep_seconds} &
echo $! > "$out/worker.pid"
wait $!
case "$out" in *"{fail_in}"*) echo "ValueError: diffraction has NaN" >&2; exit 3;; esac
i=1
while [ $i -le $e ]; do
  echo "Epoch $i/$e"
  echo "8/8 [==============================] - 0s - loss: 0.$((100 - i)) - val_loss: 0.9" >&2
  i=$((i + 1))
done
printf 'weights %s %s %s' "$backend" "$g" "$n" > "$out/wts.h5.zip"
"#
    );
    crate::common::write_script(path, &script);
}

/// `train` run in `root` with relative roots, as a user in the study folder would type it.
pub(crate) fn train_in(root: &Path, artifacts: &str) -> assert_cmd::Command {
    let mut cmd = cli();
    cmd.current_dir(root)
        .env("PTYCHO_PYTHON", root.join("python"))
        .args([
            "train",
            "--phase-c-root",
            "phase_c",
            "--phase-d-root",
            "phase_d",
            "--artifact-root",
            artifacts,
        ]);
    cmd
}

fn snapshot_file(name: &str, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    common::golden_settings().bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn seed_scenario_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    let mut cmd = train_in(root, "artifacts");
    cmd.args(["--dose", "1000", "--dry-run"]);
    let output = cli_snapshot!("train_seed_dry_run", cmd, root);
    assert_eq!(output.status.code(), Some(0));

    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    let summary = read_json(&root.join("artifacts/skip_summary.json"));
    assert_eq!(manifest["enumerated_count"], 6);
    assert_eq!(manifest["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["skipped_count"], 3);
    assert_eq!(manifest["skip_summary_path"], "skip_summary.json");
    assert_eq!(manifest["skipped_views"], summary["skipped_views"]);
    assert_eq!(summary["skipped_count"], 3);
    let skipped: Vec<(f64, &str)> = summary["skipped_views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["dose"].as_f64().unwrap(), s["view"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, [(1e3, "sparse"), (1e4, "sparse"), (1e5, "sparse")]);
    for job in manifest["jobs"].as_array().unwrap() {
        assert_eq!(job["result"]["status"], "dry_run");
        let log = std::fs::read_to_string(root.join(job["log_path"].as_str().unwrap())).unwrap();
        assert!(log.contains("Phase E5 Training Execution"), "{log}");
        let dir = root.join(job["artifact_dir"].as_str().unwrap());
        assert!(dir.join("training_config.json").is_file());
    }
    snapshot_file(
        "train_seed_manifest",
        &root.join("artifacts/training_manifest.json"),
    );
    snapshot_file(
        "train_seed_skip_summary",
        &root.join("artifacts/skip_summary.json"),
    );
    // The command's own output is kept beside the manifest.
    let command_log = std::fs::read_to_string(root.join("artifacts/training_cli.log")).unwrap();
    assert!(
        command_log.contains(
            "[stdout] → Skip summary written to artifacts/skip_summary.json (3 view(s) skipped)"
        ),
        "{command_log}"
    );
    assert!(
        command_log.contains("[stderr] skip sparse (dose=1e+04): NPZ files not found"),
        "{command_log}"
    );
    assert!(command_log.ends_with("[exit] 0\n"), "{command_log}");
}

#[test]
fn skips_do_not_depend_on_filters_and_dose_formats_agree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    let runs: [(&str, &[&str]); 5] = [
        ("all", &[]),
        ("d1000", &["--dose", "1000"]),
        ("d1e3", &["--dose", "1e3"]),
        ("d1000.0", &["--dose", "1000.0"]),
        ("dense_gs2", &["--view", "dense", "--gridsize", "2"]),
    ];
    for (name, flags) in runs {
        train_in(root, name)
            .args(flags)
            .arg("--dry-run")
            .assert()
            .code(0);
    }
    let summary = |name: &str| std::fs::read(root.join(name).join("skip_summary.json")).unwrap();
    for (name, _) in runs {
        assert_eq!(summary(name), summary("all"), "{name}");
    }
    let jobs = |name: &str| {
        read_json(&root.join(name).join("training_manifest.json"))["jobs"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        [jobs("all"), jobs("d1000"), jobs("d1e3"), jobs("dense_gs2")],
        [6, 2, 2, 3]
    );
    // 1000, 1e3 and 1000.0 are the same dose: same manifest apart from the artifact root.
    let manifest = |name: &str| {
        std::fs::read_to_string(root.join(name).join("training_manifest.json"))
            .unwrap()
            .replace(&format!("\"{name}"), "\"ROOT")
    };
    assert_eq!(manifest("d1e3"), manifest("d1000"));
    assert_eq!(manifest("d1000.0"), manifest("d1000"));
}

#[test]
fn usage_and_input_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);

    let mut cmd = train_in(root, "artifacts");
    cmd.args(["--dose", "5000", "--view", "dense", "--dry-run"]);
    cli_snapshot!("train_no_match", cmd, root);

    let mut cmd = train_in(root, "artifacts");
    cmd.args(["--dose", "1e3", "--view", "sparse", "--dry-run"]);
    cli_snapshot!("train_no_match_skipped_view", cmd, root);

    let mut cmd = train_in(root, "artifacts");
    cmd.args(["--strict", "--dry-run"]);
    cli_snapshot!("train_strict_missing_view", cmd, root);

    // Not a dose, whatever it looks like (a negative number used to be taken for a flag).
    for dose in ["lots", "-5", "0"] {
        let output = train_in(root, "artifacts")
            .args(["--dose", dose])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "'{dose}' is not a dose: give a positive number such as 1000 or 1e3"
            )),
            "{stderr}"
        );
    }

    // An artifact root that is a file.
    std::fs::write(root.join("a file"), b"").unwrap();
    let output = train_in(root, "a file").arg("--dry-run").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: the artifact root a file is not a folder: give a folder (it is created if \
         missing)\n"
    );

    let output = train_in(root, "artifacts")
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));

    let output = train_in(root, "artifacts")
        .args(["-j", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));

    std::fs::remove_file(root.join("phase_c/dose_10000/patched_test.npz")).unwrap();
    let mut cmd = train_in(root, "artifacts");
    cmd.args(["--dose", "1000", "--dry-run"]);
    cli_snapshot!("train_missing_phase_c", cmd, root);

    let mut cmd = cli();
    cmd.current_dir(root).args([
        "train",
        "--phase-c-root",
        "no such dir",
        "--phase-d-root",
        "phase_d",
        "--artifact-root",
        "artifacts",
        "--dry-run",
    ]);
    cli_snapshot!("train_missing_root", cmd, root);
}

#[test]
fn strict_mode_passes_on_a_complete_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense", "sparse"]);
    let output = train_in(root, "artifacts")
        .args(["--strict", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "→ Training manifest written to artifacts/training_manifest.json (9 job(s): 9 dry run)\n"
    );
    let summary = read_json(&root.join("artifacts/skip_summary.json"));
    assert_eq!(summary["skipped_count"], 0);
    assert_eq!(summary["skipped_views"], serde_json::json!([]));
}

#[cfg(unix)]
mod trainer {
    use super::*;

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn fake_trainer_success_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(root, &["dense"]);
        write_fake_trainer(&root.join("ptycho_train"), "NEVER", 0);
        let mut cmd = train_in(root, "artifacts");
        cmd.args([
            "--dose",
            "1e4",
            "--trainer",
            "./ptycho_train",
            "--epochs",
            "3",
        ]);
        let output = cli_snapshot!("train_fake_trainer", cmd, root);
        assert_eq!(output.status.code(), Some(0));
        let manifest = read_json(&root.join("artifacts/training_manifest.json"));
        for job in manifest["jobs"].as_array().unwrap() {
            let result = &job["result"];
            assert_eq!(result["status"], "success", "{result}");
            assert_eq!(result["backend"], "tensorflow");
            assert_eq!(result["bundle_path"], "wts.h5.zip");
            assert_eq!(result["epochs_completed"], 3);
            assert_eq!(result["final_loss"], 0.97);
            let bundle = std::fs::read(
                root.join(job["artifact_dir"].as_str().unwrap())
                    .join("wts.h5.zip"),
            )
            .unwrap();
            assert_eq!(result["bundle_sha256"], sha256_hex(&bundle));
            assert_eq!(result["bundle_size_bytes"], bundle.len());
            // Same digest as the sha256sum tool, where there is one.
            if let Ok(out) = std::process::Command::new("sha256sum")
                .arg(
                    root.join(job["artifact_dir"].as_str().unwrap())
                        .join("wts.h5.zip"),
                )
                .output()
            {
                let printed = String::from_utf8_lossy(&out.stdout);
                assert_eq!(
                    printed.split_whitespace().next(),
                    result["bundle_sha256"].as_str()
                );
            }
            let log =
                std::fs::read_to_string(root.join(job["log_path"].as_str().unwrap())).unwrap();
            let marker = log.find("Phase E5 Training Execution").unwrap();
            let trainer_output = log.find("fake ptycho_train backend=tensorflow").unwrap();
            let outcome = log.find("Outcome: success").unwrap();
            assert!(marker < trainer_output && trainer_output < outcome, "{log}");
            assert!(
                log.contains("Epoch 3/3\n8/8 [") || log.contains("- loss: 0.97"),
                "{log}"
            );
        }
    }

    #[test]
    fn failing_job_among_succeeding_ones_exits_1() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(root, &["dense"]);
        // Fails the dense job of dose 1e4 only.
        write_fake_trainer(&root.join("ptycho_train"), "dose_10000/dense", 0);
        let output = train_in(root, "artifacts")
            .args(["--epochs", "2", "-j", "2"])
            .env("PTYCHO_TRAIN", root.join("ptycho_train"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let manifest = read_json(&root.join("artifacts/training_manifest.json"));
        let statuses: Vec<String> = manifest["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                format!(
                    "{}/{}={}",
                    j["view"].as_str().unwrap(),
                    j["dose"],
                    j["result"]["status"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            statuses,
            [
                "baseline/1000.0=success",
                "dense/1000.0=success",
                "baseline/10000.0=success",
                "dense/10000.0=failed",
                "baseline/100000.0=success",
                "dense/100000.0=success"
            ]
        );
        let error = manifest["jobs"][3]["result"]["error"].as_str().unwrap();
        assert!(error.contains("(from $PTYCHO_TRAIN) ended with exit status 3; its last output line: `ValueError: diffraction has NaN`; see the job log artifacts/dose_10000/dense/gs2/train.log"), "{error}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error: job dense/dose=1e+04 failed: the PtychoPINN trainer"))
            .unwrap_or_else(|| panic!("{stderr}"));
        // The error already names the job log: it is not named a second time.
        assert!(
            line.ends_with("; see the job log artifacts/dose_10000/dense/gs2/train.log"),
            "{line}"
        );
        // Bundle lines for the five successes, in matrix order whatever -j.
        let stdout = String::from_utf8_lossy(&output.stdout);
        let tags: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("    → Bundle ["))
            .map(|l| l.split(['[', ']']).nth(1).unwrap())
            .collect();
        assert_eq!(
            tags,
            [
                "baseline/dose=1e+03",
                "dense/dose=1e+03",
                "baseline/dose=1e+04",
                "baseline/dose=1e+05",
                "dense/dose=1e+05"
            ]
        );
    }

    #[test]
    fn missing_trainer_program_fails_each_job_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(root, &["dense"]);
        let mut cmd = train_in(root, "artifacts");
        cmd.args(["--dose", "1000", "--backend", "pytorch"])
            .env("PATH", "/usr/bin:/bin");
        let output = cli_snapshot!("train_missing_trainer", cmd, root);
        assert_eq!(output.status.code(), Some(1));
        let manifest = read_json(&root.join("artifacts/training_manifest.json"));
        for job in manifest["jobs"].as_array().unwrap() {
            assert_eq!(job["result"]["status"], "failed");
            assert_eq!(job["result"]["backend"], "pytorch");
        }
        // A folder given as the trainer is named as such (exec calls it "permission denied").
        std::fs::create_dir(root.join("trainer dir")).unwrap();
        let output = train_in(root, "artifacts")
            .args([
                "--dose",
                "1000",
                "--view",
                "baseline",
                "--trainer",
                "./trainer dir",
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let manifest = read_json(&root.join("artifacts/training_manifest.json"));
        assert_eq!(
            manifest["jobs"][0]["result"]["error"],
            "cannot start the PtychoPINN trainer `./trainer dir` (given by --trainer): it is a \
             folder, not a program; check the path given to --trainer, or train with --backend \
             native"
        );
    }

    #[test]
    fn paths_with_spaces_and_byte_identical_reruns() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("my study (v2)");
        write_tree(&root, &["dense"]);
        let trainer = root.join("bin dir/ptycho train");
        std::fs::create_dir_all(trainer.parent().unwrap()).unwrap();
        write_fake_trainer(&trainer, "NEVER", 0);
        let run = |artifacts: &str, jobs: &str| {
            let output = cli()
                .args(["train", "--phase-c-root"])
                .arg(root.join("phase_c"))
                .arg("--phase-d-root")
                .arg(root.join("phase_d"))
                .arg("--artifact-root")
                .arg(root.join(artifacts))
                .arg("--trainer")
                .arg(&trainer)
                .env("PTYCHO_PYTHON", root.join("python"))
                .args(["--epochs", "2", "-j", jobs, "--quiet"])
                .output()
                .unwrap();
            common::succeeded(&output);
            String::from_utf8(output.stdout).unwrap()
        };
        let first = run("artifacts one", "1");
        let second = run("artifacts one", "2");
        assert_eq!(first, second);
        assert!(first.contains("    → Size [dense/dose=1e+05]: "), "{first}");
        let files = [
            "training_manifest.json",
            "skip_summary.json",
            "plan.json",
            "dose_1000/dense/gs2/result.json",
            "dose_1000/dense/gs2/training_config.json",
            "dose_100000/baseline/gs1/train.log",
        ];
        let snapshot = |artifacts: &str| -> Vec<Vec<u8>> {
            files
                .iter()
                .map(|f| std::fs::read(root.join(artifacts).join(f)).unwrap())
                .collect()
        };
        let before = snapshot("artifacts one");
        let again = run("artifacts one", "1");
        assert_eq!(again, first);
        assert_eq!(
            snapshot("artifacts one"),
            before,
            "a rerun rewrites the same bytes"
        );
        let manifest = read_json(&root.join("artifacts one/training_manifest.json"));
        assert_eq!(
            manifest["phase_c_root"],
            root.join("phase_c").display().to_string()
        );
        assert_eq!(
            manifest["jobs"][0]["train_data_path"],
            root.join("phase_c/dose_1000/patched_train.npz")
                .display()
                .to_string()
        );
    }

    /// SIGTERM in the middle of a run: the running trainer is stopped, no new job starts,
    /// and the manifest records what finished and what was interrupted.
    #[test]
    fn sigterm_leaves_a_valid_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(root, &["dense"]);
        write_fake_trainer(&root.join("ptycho_train"), "NEVER", 30);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dose-overlap"))
            .current_dir(root)
            .env("SOURCE_DATE_EPOCH", "1762245266")
            .args([
                "train",
                "--phase-c-root",
                "phase_c",
                "--phase-d-root",
                "phase_d",
                "--artifact-root",
                "artifacts",
                "--trainer",
                "./ptycho_train",
                "--quiet",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let first_log = root.join("artifacts/dose_1000/baseline/gs1/train.log");
        let started = std::time::Instant::now();
        while !std::fs::read_to_string(&first_log).is_ok_and(|l| l.contains("fake ptycho_train")) {
            assert!(
                started.elapsed().as_secs() < 60,
                "the trainer never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1));
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        assert!(
            stderr.contains(
                "interrupted by SIGTERM: 0 job(s) finished, 6 did not; the manifest says which"
            ),
            "{stderr}"
        );
        let manifest = read_json(&root.join("artifacts/training_manifest.json"));
        let results: Vec<(String, bool)> = manifest["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                (
                    j["result"]["status"].as_str().unwrap().to_string(),
                    j["result"]["started"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(results[0], ("interrupted".to_string(), true));
        for later in &results[1..] {
            assert_eq!(later, &("interrupted".to_string(), false));
        }
        assert!(
            manifest["jobs"][0]["result"]["error"]
                .as_str()
                .unwrap()
                .contains("run-job --plan artifacts/plan.json --index 0")
        );
        assert_eq!(
            read_json(&root.join("artifacts/skip_summary.json"))["skipped_count"],
            3
        );
        let log = std::fs::read_to_string(&first_log).unwrap();
        assert!(
            log.contains("Interrupted: the trainer was stopped."),
            "{log}"
        );
        // What the trainer started (its `sleep`, standing for data-loader workers) is stopped
        // with it.
        let worker =
            std::fs::read_to_string(root.join("artifacts/dose_1000/baseline/gs1/worker.pid"))
                .unwrap();
        let stat = format!("/proc/{}/stat", worker.trim());
        let gone = (0..100).any(|_| {
            let state = std::fs::read_to_string(&stat).ok();
            let done = state.is_none_or(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            });
            if !done {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done
        });
        assert!(gone, "the trainer's worker {} outlived it", worker.trim());
    }
}

#[test]
fn relative_and_absolute_roots_are_kept_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().to_path_buf();
    write_tree(&root, &["dense"]);
    train_in(&root, "./artifacts/")
        .args(["--dry-run", "--view", "baseline"])
        .assert()
        .code(0);
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    assert_eq!(manifest["artifact_root"], "./artifacts/");
    assert_eq!(manifest["phase_c_root"], "phase_c");
    assert_eq!(
        manifest["jobs"][0]["artifact_dir"],
        "./artifacts/dose_1000/baseline/gs1"
    );
}
