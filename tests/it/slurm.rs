//! `run-job`, `collect` and `train --executor slurm`: the batch script and plan, one job of a
//! plan, manifests assembled from per-job results byte-identical to a local run, and (when
//! `DOSE_OVERLAP_SLURM` is set, as `.ci/run` does after starting a real single-node cluster)
//! job arrays on a real SLURM.

use crate::common::{self, cli, read_json};
use crate::train::{train_in, write_tree};
use std::path::{Path, PathBuf};

/// A fake PtychoPINN trainer for cluster runs: rejects a corrupt NPZ (no zip magic), sleeps
/// `sleep` seconds, prints Keras-style progress and writes a bundle that depends on its flags.
fn write_trainer(root: &Path, sleep: u32) {
    let script = format!(
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in --train_data_file) train="$2";; --output_dir) out="$2";; --nepochs) e="$2";; --nphotons) n="$2";; esac
  shift 2
done
test -f "$out/training_config.json" || {{ echo "training_config.json missing" >&2; exit 9; }}
[ "$(head -c 2 "$train")" = "PK" ] || {{ echo "corrupt NPZ: $train" >&2; exit 3; }}
sleep {sleep}
echo "Epoch $e/$e"
echo " - loss: 0.0625"
printf 'weights %s %s' "$n" "$out" > "$out/wts.h5.zip"
"#
    );
    let path = root.join("ptycho_train");
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn train_flags() -> [&'static str; 4] {
    ["--trainer", "./ptycho_train", "--epochs", "2"]
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// After a SLURM run in which only job 3 (the dense view of dose 1e4) failed: the first
/// array's job id, and job 3's error in the collected manifest.
fn job_3_failed_alone(root: &Path) -> (String, String) {
    let job_id = read_json(&root.join("artifacts/slurm/submission.json"))["arrays"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    let statuses: Vec<&str> = manifest["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["result"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "success", "success", "success", "failed", "success", "success"
        ]
    );
    let error = manifest["jobs"][3]["result"]["error"].as_str().unwrap();
    (job_id, error.to_string())
}

/// The bytes of the manifest and the skip summary under `<root>/artifacts`.
fn manifest_and_summary(root: &Path) -> Vec<Vec<u8>> {
    ["training_manifest.json", "skip_summary.json"]
        .iter()
        .map(|f| read(&root.join("artifacts").join(f)))
        .collect()
}

#[test]
fn slurm_dry_run_prints_script_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_trainer(root, 0);
    let output = train_in(root, "artifacts")
        // The golden plan records no interpreter.
        .env_remove("PTYCHO_PYTHON")
        .args(train_flags())
        .args([
            "--dose",
            "1e4",
            "--executor",
            "slurm",
            "--dry-run",
            "--partition",
            "gpu",
        ])
        .args(["--time-limit", "2:00:00", "--array-limit", "3", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text =
        common::render(&output, Some(root)).replace(env!("CARGO_BIN_EXE_dose-overlap"), "[EXE]");
    common::golden_settings().bind(|| insta::assert_snapshot!("slurm_dry_run", text));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let script = String::from_utf8(read(&root.join("artifacts/slurm/submit.sbatch"))).unwrap();
    let plan = String::from_utf8(read(&root.join("artifacts/plan.json"))).unwrap();
    assert_eq!(stdout, format!("{script}{plan}"));
    assert!(!root.join("artifacts/slurm/submission.json").exists());
    assert!(!root.join("artifacts/training_manifest.json").exists());
}

#[test]
fn slurm_options_need_the_slurm_executor() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &["dense"]);
    let output = train_in(dir.path(), "artifacts")
        .args(["--dry-run", "--wait"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: --wait is an option of --executor slurm"),
        "{stderr}"
    );
}

/// A local run, then `collect` and `run-job` on its plan: same bytes every time.
#[cfg(unix)]
#[test]
fn collect_and_run_job_reproduce_a_local_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_trainer(root, 0);
    train_in(root, "artifacts")
        .args(train_flags())
        .arg("-q")
        .assert()
        .code(0);
    let manifest = read(&root.join("artifacts/training_manifest.json"));
    let summary = read(&root.join("artifacts/skip_summary.json"));
    let result_2 = read(&root.join("artifacts/dose_10000/baseline/gs1/result.json"));
    std::fs::remove_file(root.join("artifacts/training_manifest.json")).unwrap();
    std::fs::remove_file(root.join("artifacts/skip_summary.json")).unwrap();

    let collect = || {
        cli()
            .current_dir(root)
            .args(["collect", "--artifact-root", "artifacts"])
            .output()
            .unwrap()
    };
    let first = collect();
    common::succeeded(&first);
    assert_eq!(
        read(&root.join("artifacts/training_manifest.json")),
        manifest
    );
    assert_eq!(read(&root.join("artifacts/skip_summary.json")), summary);
    let again = collect();
    assert_eq!(again.stdout, first.stdout, "collect is idempotent");
    assert_eq!(
        read(&root.join("artifacts/training_manifest.json")),
        manifest
    );

    // One job again, alone: the same result, and the same manifest once collected.
    let output = cli()
        .current_dir(root)
        .env("PTYCHO_PYTHON", root.join("python"))
        .args([
            "run-job",
            "--plan",
            "artifacts/plan.json",
            "--index",
            "2",
            "-q",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("→ Job 2 [baseline/dose=1e+04]: success (result: artifacts/dose_10000/baseline/gs1/result.json)\n    → Bundle [baseline/dose=1e+04]: wts.h5.zip\n"), "{stdout}");
    assert_eq!(
        read(&root.join("artifacts/dose_10000/baseline/gs1/result.json")),
        result_2
    );
    assert_eq!(collect().status.code(), Some(0));
    assert_eq!(
        read(&root.join("artifacts/training_manifest.json")),
        manifest
    );

    // A job whose result is gone is a failed job that says how to rerun it.
    std::fs::remove_file(root.join("artifacts/dose_10000/baseline/gs1/result.json")).unwrap();
    let output = collect();
    assert_eq!(output.status.code(), Some(1));
    let failed = read_json(&root.join("artifacts/training_manifest.json"));
    assert_eq!(failed["jobs"][2]["result"]["status"], "failed");
    assert_eq!(
        failed["jobs"][2]["result"]["error"],
        "no result (no result.json): the job never finished (interrupted, or not run yet); run \
         it with `dose-overlap run-job --plan artifacts/plan.json --index 2`"
    );
}

#[test]
fn run_job_and_collect_input_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    train_in(root, "artifacts")
        .args(["--dry-run", "-q"])
        .assert()
        .code(0);
    let run_job = |cwd: &Path, plan: &str, index: &str| {
        let output = cli()
            .current_dir(cwd)
            .args(["run-job", "--plan", plan, "--index", index])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8(output.stderr).unwrap()
    };
    let stderr = run_job(root, "artifacts/plan.json", "6");
    assert_eq!(
        stderr,
        "error: job index 6 is outside the plan artifacts/plan.json, which has 6 job(s) (0 to 5)\n"
    );
    // From another folder the plan's relative paths would point elsewhere.
    let elsewhere = root.join("phase_c");
    let stderr = run_job(&elsewhere, "../artifacts/plan.json", "0");
    assert!(
        stderr.contains(
            "says its artifact root is `artifacts`, which from this folder is not where the plan is"
        ),
        "{stderr}"
    );
    // The cause once (a full error chain used to repeat it).
    let stderr = run_job(root, "artifacts/none.json", "0");
    assert_eq!(
        stderr,
        "error: reading artifacts/none.json: No such file or directory (os error 2)\n"
    );
    std::fs::write(
        root.join("artifacts/bad.json"),
        "{\"format_version\": 1, \"jobs\": 3}",
    )
    .unwrap();
    let stderr = run_job(root, "artifacts/bad.json", "0");
    assert!(
        stderr.starts_with("error: artifacts/bad.json is not a usable plan: "),
        "{stderr}"
    );

    let collect = |artifact_root: &str| {
        let output = cli()
            .current_dir(root)
            .args(["collect", "--artifact-root", artifact_root])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8(output.stderr).unwrap()
    };
    assert_eq!(
        collect("phase_c"),
        "error: phase_c has no plan.json: run `dose-overlap train --artifact-root phase_c` first\n"
    );
    // A command to copy holds a path with a space as one word.
    assert_eq!(
        collect("no plan here"),
        "error: no plan here has no plan.json: run `dose-overlap train --artifact-root 'no plan \
         here'` first\n"
    );
}

/// For a cluster test: a Phase C/D tree (dense views only) and the fake trainer sleeping
/// `sleep` s, in `<temporary folder>/<name>`; `None` when no cluster is up.
fn cluster_tree(name: &str, sleep: u32) -> Option<(tempfile::TempDir, PathBuf)> {
    if !cluster() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(name);
    write_tree(&root, &["dense"]);
    write_trainer(&root, sleep);
    Some((dir, root))
}

/// The cluster tests run only where a SLURM cluster is up (`.ci/run` starts one).
fn cluster() -> bool {
    if std::env::var_os("DOSE_OVERLAP_SLURM").is_some() {
        return true;
    }
    eprintln!("skipped: no SLURM cluster (set DOSE_OVERLAP_SLURM after `local-slurm.sh start`)");
    false
}

#[cfg(unix)]
#[test]
fn slurm_run_equals_local_run_byte_for_byte() {
    // Spaces, a quote and a `%` (sbatch patterns) in every path the batch script names.
    let Some((_dir, root)) = cluster_tree("it's my 100%x study", 0) else {
        return;
    };
    let root = &root;
    train_in(root, "artifacts")
        .args(train_flags())
        .arg("-q")
        .assert()
        .code(0);
    let local = manifest_and_summary(root);
    std::fs::remove_dir_all(root.join("artifacts")).unwrap();

    // Arrays of at most 4 tasks: the 6 jobs go out as two arrays.
    let output = train_in(root, "artifacts")
        .args(train_flags())
        .args([
            "--executor",
            "slurm",
            "--wait",
            "--poll-interval",
            "1",
            "--max-array-size",
            "4",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let slurm = manifest_and_summary(root);
    assert_eq!(slurm, local);
    let submission = read_json(&root.join("artifacts/slurm/submission.json"));
    let arrays = submission["arrays"].as_array().unwrap();
    assert_eq!(arrays.len(), 2);
    assert_eq!(
        (
            arrays[0]["count"].as_u64(),
            arrays[1]["first_index"].as_u64()
        ),
        (Some(4), Some(4))
    );
    let last_task = format!("{}_1", arrays[1]["job_id"].as_str().unwrap());
    let log =
        String::from_utf8(read(&root.join(format!("artifacts/slurm/{last_task}.log")))).unwrap();
    assert!(log.contains("→ Job 5 [dense/dose=1e+05]: success"), "{log}");
    assert!(
        stdout
            .contains("→ Skip summary written to artifacts/skip_summary.json (3 view(s) skipped)"),
        "{stdout}"
    );
}

#[cfg(unix)]
#[test]
fn slurm_failures_name_their_task_state_and_log() {
    let Some((_dir, root)) = cluster_tree("study", 0) else {
        return;
    };
    let root = &root;
    // A corrupted input for the dense job of dose 1e4 (job 3).
    std::fs::write(
        root.join("phase_d/dose_10000/dense/dense_train.npz"),
        b"not an npz",
    )
    .unwrap();
    let output = train_in(root, "artifacts")
        .args(train_flags())
        .args(["--executor", "slurm", "--wait", "--poll-interval", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (job_id, error) = job_3_failed_alone(root);
    let task_log = format!("artifacts/slurm/{job_id}_3.log");
    // The trainer gets absolute data paths (it runs in the job dir).
    let corrupt = root.join("phase_d/dose_10000/dense/dense_train.npz");
    assert!(
        error.contains(&format!(
            "its last output line: `corrupt NPZ: {}`",
            corrupt.display()
        )),
        "{error}"
    );
    assert!(
        error.ends_with(&format!(
            "(SLURM task {job_id}_3: state FAILED, exit code 1:0, exit status 1 recorded by the \
             task; log {task_log})"
        )),
        "{error}"
    );
    assert!(root.join(&task_log).is_file());

    // A task that left no result: its state and exit code come from SLURM and the task.
    std::fs::remove_file(root.join("artifacts/dose_1000/baseline/gs1/result.json")).unwrap();
    let output = cli()
        .current_dir(root)
        .args(["collect", "--artifact-root", "artifacts"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    let error = manifest["jobs"][0]["result"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "SLURM task {job_id}_0 ended without a result (no result.json): state COMPLETED, exit code 0:0, exit status 0 recorded by the task; see its log artifacts/slurm/{job_id}_0.log (last line: `"
        )),
        "{error}"
    );
}

#[cfg(unix)]
#[test]
fn collect_waits_for_pending_tasks() {
    let Some((_dir, root)) = cluster_tree("study", 2) else {
        return;
    };
    let root = &root;
    let output = train_in(root, "artifacts")
        .args(train_flags())
        .args([
            "--dose",
            "1000",
            "--executor",
            "slurm",
            "--array-limit",
            "1",
            "--partition",
            "debug",
            "--time-limit",
            "5",
            // Reaches sbatch as one argument: no shell splits or interprets it.
            "--sbatch-arg=--comment=dose overlap; it's $HOME",
        ])
        .output()
        .unwrap();
    common::succeeded(&output);
    let job_id = read_json(&root.join("artifacts/slurm/submission.json"))["arrays"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = std::process::Command::new("scontrol")
        .args(["-o", "show", "job", &format!("{job_id}_0")])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("Comment=dose overlap; it's $HOME"),
        "{shown}"
    );
    assert!(
        shown.contains("Partition=debug ") && shown.contains("TimeLimit=00:05:00 "),
        "{shown}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .contains("→ When the tasks are done: dose-overlap collect --artifact-root artifacts"),
        "{stdout}"
    );
    let collect = || {
        cli()
            .current_dir(root)
            .args(["collect", "--artifact-root", "artifacts"])
            .output()
            .unwrap()
    };
    // A running task holds the root shared: collect still says which tasks are not finished
    // (exit 1), not that the root is busy (regression: it exited 2 when a task had just
    // started).
    {
        let _task = runner::RootLock::acquire_shared(&root.join("artifacts")).unwrap();
        let held = collect();
        let stderr = String::from_utf8_lossy(&held.stderr);
        assert_eq!(held.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("SLURM task(s) not finished yet"),
            "{stderr}"
        );
        assert!(!root.join("artifacts/training_manifest.json").exists());
    }
    let early = collect();
    assert_eq!(early.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert!(
        stderr.starts_with("2 of 2 SLURM task(s) not finished yet; nothing written:\n")
            || stderr.starts_with("1 of 2 SLURM task(s) not finished yet; nothing written:\n"),
        "{stderr}"
    );
    assert!(!root.join("artifacts/training_manifest.json").exists());
    let started = std::time::Instant::now();
    loop {
        let output = collect();
        if output.status.code() == Some(0) {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 120,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    assert_eq!(manifest["jobs"][1]["result"]["status"], "success");
}

/// `scancel` (as a time limit would) stops running tasks: their jobs are interrupted, not
/// failed, and say which task and how to rerun them.
#[cfg(unix)]
#[test]
fn scancelled_tasks_are_interrupted_jobs() {
    let Some((_dir, root)) = cluster_tree("study", 60) else {
        return;
    };
    let root = &root;
    let output = train_in(root, "artifacts")
        .args(train_flags())
        .args(["--dose", "1e5", "--view", "baseline", "--executor", "slurm"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let submission = read_json(&root.join("artifacts/slurm/submission.json"));
    let job_id = submission["arrays"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = root.join("artifacts/dose_100000/baseline/gs1/train.log");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Running the PtychoPINN trainer"))
    {
        assert!(started.elapsed().as_secs() < 120, "the task never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let cancelled = std::process::Command::new("scancel")
        .arg(&job_id)
        .status()
        .unwrap();
    assert!(cancelled.success());
    let manifest = root.join("artifacts/training_manifest.json");
    while !manifest.exists() {
        assert!(
            started.elapsed().as_secs() < 120,
            "collect never found the task finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        let output = cli()
            .current_dir(root)
            .args(["collect", "--artifact-root", "artifacts"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            common::render(&output, Some(root))
        );
    }
    let result = &read_json(&manifest)["jobs"][0]["result"];
    assert_eq!(result["status"], "interrupted", "{result}");
    assert_eq!(result["started"], true);
    let error = result["error"].as_str().unwrap();
    assert!(
        error.starts_with("interrupted by SIGTERM while it was running;"),
        "{error}"
    );
    assert!(
        error.contains(&format!("(SLURM task {job_id}_0: state CANCELLED")),
        "{error}"
    );
}

/// The tiny study's matrix (generated by `generate` and `overlap`) with the native backend:
/// through SLURM, the collected manifest and skip summary equal the local run's byte for byte;
/// then a corrupted input fails its job, naming its task's log, while the others succeed.
#[test]
fn native_tiny_study_through_slurm_equals_local() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    cli()
        .current_dir(root)
        .args(["-q", "generate", "--preset", "tiny", "--out", "phase_c"])
        .assert()
        .success();
    cli()
        .current_dir(root)
        .args([
            "-q",
            "overlap",
            "--preset",
            "tiny",
            "--phase-c-root",
            "phase_c",
            "--out",
            "phase_d",
        ])
        .assert()
        .success();
    let train = |extra: &[&str]| {
        train_in(root, "artifacts")
            .args([
                "--preset",
                "tiny",
                "--backend",
                "native",
                "--epochs",
                "3",
                "-q",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = train(&["-j", "2"]);
    common::succeeded(&output);
    let local = manifest_and_summary(root);
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    assert_eq!(manifest["jobs"].as_array().unwrap().len(), 6);
    assert_eq!(manifest["skipped_count"], 3);
    std::fs::remove_dir_all(root.join("artifacts")).unwrap();

    let output = train(&["--executor", "slurm", "--wait", "--poll-interval", "1"]);
    common::succeeded(&output);
    let slurm = manifest_and_summary(root);
    assert_eq!(slurm, local);
    for job in read_json(&root.join("artifacts/training_manifest.json"))["jobs"]
        .as_array()
        .unwrap()
    {
        assert_eq!(job["result"]["status"], "success", "{}", job["result"]);
        assert_eq!(job["result"]["backend"], "native");
    }

    // A corrupted input: the dense view of dose 1e4 (job 3) is cut short.
    let view = root.join("phase_d/dose_10000/dense/dense_train.npz");
    let bytes = read(&view);
    std::fs::write(&view, &bytes[..bytes.len() / 2]).unwrap();
    let output = train(&["--executor", "slurm", "--wait", "--poll-interval", "1"]);
    assert_eq!(output.status.code(), Some(1));
    // The rerun resumes: the five jobs verified complete are not trained again; only job 3,
    // whose input changed, went out (as task 3 of a one-task array).
    let submission = read_json(&root.join("artifacts/slurm/submission.json"));
    assert_eq!(
        submission["arrays"][0]["tasks"],
        serde_json::json!([3]),
        "{submission}"
    );
    assert_eq!(submission["arrays"].as_array().unwrap().len(), 1);
    let (job_id, error) = job_3_failed_alone(root);
    let task_log = format!("artifacts/slurm/{job_id}_3.log");
    assert!(error.contains("dense_train.npz"), "{error}");
    assert!(
        error.contains(&format!("(SLURM task {job_id}_3: state FAILED")),
        "{error}"
    );
    assert!(error.ends_with(&format!("log {task_log})")), "{error}");
    assert!(root.join(&task_log).is_file());
}

/// Every file under `dir` (relative path -> bytes), but logs, locks and the SLURM folders:
/// what a study's reader reads.
fn study_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "slurm" {
                    walk(base, &path, out);
                }
            } else if !name.ends_with(".log") && !name.starts_with(".dose-overlap") {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, read(&path));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `study --executor slurm --wait` with two native methods: the stages run through the real
/// cluster and every artifact, report and comparison equals the local study's byte for byte;
/// each method's submit script asks for its own resources; a rerun trains nothing again;
/// `--status` names each stage's job.
#[test]
fn study_through_slurm_equals_local_study() {
    if !cluster() {
        return;
    }
    // The same relative study folder in two places: artifacts record paths as given.
    let (local_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = dir.path();
    let study = |at: &Path, extra: &[&str]| {
        cli()
            .current_dir(at)
            .args([
                "-q",
                "study",
                "--preset",
                "tiny",
                "--backends",
                "native,native:epie",
            ])
            .args(["--epochs", "2", "--out", "s"])
            .args(extra)
            .output()
            .unwrap()
    };
    common::succeeded(&study(local_dir.path(), &[]));
    let on_slurm = [
        "--executor",
        "slurm",
        "--wait",
        "--poll-interval",
        "1",
        "--mem",
        "native:epie=900M",
        "--time-limit",
        "20",
    ];
    let output = study(root, &on_slurm);
    common::succeeded(&output);
    let local = assert_same_study(&local_dir.path().join("s"), &root.join("s"));
    assert!(
        local.contains_key("comparison/comparison.md"),
        "{:?}",
        local.keys()
    );
    // Per-method resources: the stage default (time) for both, the memory for epie only.
    let script = |method: &str| {
        String::from_utf8(read(
            &root.join(format!("s/artifacts/{method}/slurm/submit.sbatch")),
        ))
        .unwrap()
    };
    let (ml, epie) = (script("native-ml"), script("native-epie"));
    assert!(epie.contains("#SBATCH --mem=\"900M\"\n"), "{epie}");
    assert!(!ml.contains("--mem"), "{ml}");
    for s in [&ml, &epie] {
        assert!(s.contains("#SBATCH --time=\"20\"\n"), "{s}");
    }
    let stages = read_json(&root.join("s/slurm/stages.json"));
    for stage in ["prep", "plan", "finish"] {
        assert!(stages["jobs"][stage].is_string(), "{stages}");
    }
    // Phase C and D ran as one array with a task per dose of the tiny design, each writing
    // its own log (named by SLURM: array job _ task) and exit status.
    assert_eq!(
        stages["doses"],
        serde_json::json!(["dose_1000", "dose_10000", "dose_100000"])
    );
    let prep = stages["prep"].as_array().unwrap();
    assert_eq!(prep.len(), 1, "{stages}");
    assert_eq!(prep[0]["first_index"], 0);
    assert_eq!(prep[0]["tasks"], serde_json::json!([0, 1, 2]));
    let prep_job = prep[0]["job_id"].as_str().unwrap();
    assert_eq!(stages["jobs"]["prep"], prep_job);
    for task in 0..3 {
        let dir = root.join("s/slurm/prep");
        assert!(dir.join(format!("{prep_job}_{task}.log")).is_file());
        assert_eq!(read(&dir.join(format!("{task}.exit"))), b"0\n");
    }
    let script = String::from_utf8(read(&root.join("s/slurm/prep.sbatch"))).unwrap();
    assert!(
        script.contains("--stage prep --dose-index \"$index\"\n"),
        "{script}"
    );

    // A rerun: Phase C and D verified, every training job verified complete, nothing trained.
    let output = study(root, &on_slurm);
    common::succeeded(&output);
    let stages = read_json(&root.join("s/slurm/stages.json"));
    assert!(stages["jobs"].get("prep").is_none(), "{stages}");
    assert!(stages.get("prep").is_none(), "{stages}");
    for method in ["native-ml", "native-epie"] {
        let submission =
            read_json(&root.join(format!("s/artifacts/{method}/slurm/submission.json")));
        assert_eq!(
            submission["arrays"].as_array().unwrap().len(),
            0,
            "{submission}"
        );
    }
    assert_eq!(study_files(&root.join("s")), local);

    let status = cli()
        .current_dir(root)
        .args(["study", "--out", "s", "--status"])
        .output()
        .unwrap();
    common::succeeded(&status);
    let text = String::from_utf8(status.stdout).unwrap();
    let finish = read_json(&root.join("s/slurm/stages.json"))["jobs"]["finish"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&format!("finish  job {finish}")), "{text}");
    assert!(text.contains("every job verified complete"), "{text}");
    assert!(
        text.contains("every dose verified complete, nothing submitted"),
        "{text}"
    );
}

/// `study --replicates 2 --executor slurm --wait`: each replicate's stages on the real
/// cluster (each chain running its own replicate, its `prep` split into arrays no larger than
/// `--max-array-size`), then the aggregate; every file equals the local study's with
/// replicates byte for byte.
#[test]
fn study_with_replicates_through_slurm_equals_local() {
    if !cluster() {
        return;
    }
    let (local_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let study = |at: &Path, extra: &[&str]| {
        cli()
            .current_dir(at)
            .args(["-q", "study", "--preset", "tiny", "--backends", "native:ml"])
            .args(["--epochs", "2", "--replicates", "2", "--out", "s"])
            .args(extra)
            .output()
            .unwrap()
    };
    common::succeeded(&study(local_dir.path(), &[]));
    // Arrays of at most 2 tasks: each replicate's 3 doses go out as two `prep` arrays, the
    // second's task 0 running dose index 2 (its script's offset).
    let output = study(
        dir.path(),
        &[
            "--executor",
            "slurm",
            "--wait",
            "--poll-interval",
            "1",
            "--max-array-size",
            "2",
        ],
    );
    common::succeeded(&output);
    for r in ["replicate_01", "replicate_02"] {
        let stages = read_json(&dir.path().join(format!("s/{r}/slurm/stages.json")));
        assert!(stages["jobs"]["finish"].is_string(), "{stages}");
        let prep = stages["prep"].as_array().unwrap();
        assert_eq!(prep.len(), 2, "{stages}");
        assert_eq!(prep[0]["first_index"], 0);
        assert_eq!(prep[0]["tasks"], serde_json::json!([0, 1]));
        assert_eq!(prep[1]["first_index"], 2);
        assert_eq!(prep[1]["tasks"], serde_json::json!([0]));
        let second = prep[1]["job_id"].as_str().unwrap();
        let log = dir.path().join(format!("s/{r}/slurm/prep/{second}_0.log"));
        let log = String::from_utf8(read(&log)).unwrap();
        assert!(log.contains("dose_100000"), "{log}");
    }
    let local = assert_same_study(&local_dir.path().join("s"), &dir.path().join("s"));
    assert!(local.contains_key("replicates/metrics.csv"));
    assert!(local.contains_key("replicate_02/comparison/comparison.md"));
}

/// A stage that fails stops the stages after it, and `--wait` names it and its log.
#[test]
fn a_failed_study_stage_stops_the_chain() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("study.toml"),
        "preset = 'tiny'\n[simulation]\nbase_npz = 'base.npz'\n",
    )
    .unwrap();
    std::fs::write(root.join("base.npz"), b"not an npz").unwrap();
    let output = cli()
        .current_dir(root)
        .args(["-q", "study", "--design", "study.toml", "--out", "s"])
        .args(["--executor", "slurm", "--wait", "--poll-interval", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the study's `prep` stage"), "{stderr}");
    // Every dose's task reads the base NPZ: the first to fail is named, with its log.
    assert!(stderr.contains("failed for dose_"), "{stderr}");
    assert!(stderr.contains(", exit 2)"), "{stderr}");
    assert!(stderr.contains("s/slurm/prep/"), "{stderr}");
    assert!(!root.join("s/slurm/plan.exit").exists());
}

/// One dose's Phase C task that fails (its folder is taken by a file) stops the chain:
/// `--wait` and `--status` name the `prep` stage, that dose, its task and its log, and `plan`
/// never runs; the other doses' tasks finish. Submitted again once the cause is gone, only
/// that dose is run (the others verified against their records, their files untouched), and
/// the study equals the local one byte for byte.
/// Asserts that the study folders `local` and `cluster` hold the same files, byte for byte
/// ([`study_files`]); returns the local one's.
fn assert_same_study(local: &Path, cluster: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let (local, cluster) = (study_files(local), study_files(cluster));
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        cluster.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &local {
        assert!(&cluster[name] == bytes, "{name} differs");
    }
    local
}

/// `study --preset tiny --epochs 1 --out s` in `at`, with `extra`.
fn tiny_study(at: &Path, extra: &[&str]) -> std::process::Output {
    cli()
        .current_dir(at)
        .args([
            "-q", "study", "--preset", "tiny", "--epochs", "1", "--out", "s",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_failed_dose_stops_the_chain_and_a_rerun_runs_only_it() {
    if !cluster() {
        return;
    }
    let (local_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = dir.path();
    let study = tiny_study;
    common::succeeded(&study(local_dir.path(), &[]));
    std::fs::create_dir_all(root.join("s/phase_c")).unwrap();
    std::fs::write(root.join("s/phase_c/dose_10000"), b"in the way").unwrap();
    let on_slurm = ["--executor", "slurm", "--wait", "--poll-interval", "1"];
    let output = study(root, &on_slurm);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let stages = read_json(&root.join("s/slurm/stages.json"));
    let job = stages["prep"][0]["job_id"].as_str().unwrap().to_string();
    assert!(
        stderr.contains(&format!(
            "error: the study's `prep` stage (Phase C and Phase D, one task per dose; job {job}) \
             failed for dose_10000 (task {job}_1, exit 2): see s/slurm/prep/{job}_1.log"
        )),
        "{stderr}"
    );
    // The other doses' tasks end well; `plan` is cancelled by SLURM, never run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(root.join("s/slurm/prep/0.exit").is_file()
        && root.join("s/slurm/prep/2.exit").is_file())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "doses 0 and 2 did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(read(&root.join("s/slurm/prep/0.exit")), b"0\n");
    assert_eq!(read(&root.join("s/slurm/prep/1.exit")), b"2\n");
    let log = String::from_utf8(read(&root.join(format!("s/slurm/prep/{job}_1.log")))).unwrap();
    assert!(log.contains("dose_10000"), "{log}");
    assert!(!root.join("s/slurm/plan.exit").exists());
    assert!(!root.join("s/phase_c.record.json").exists());
    let status = cli()
        .current_dir(root)
        .args(["study", "--out", "s", "--status"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(text.starts_with(&format!("prep    job {job} ")), "{text}");
    assert!(
        text.contains(&format!(
            " failed for dose_10000 (task {job}_1, exit 2)\n  dose_10000 failed (task {job}_1, \
             exit 2): s/slurm/prep/{job}_1.log\n"
        )),
        "{text}"
    );

    // The cause gone, a rerun submits only dose_10000; the others' files are not rewritten.
    std::fs::remove_file(root.join("s/phase_c/dose_10000")).unwrap();
    let kept = root.join("s/phase_c/dose_1000/patched_train.npz");
    let modified = std::fs::metadata(&kept).unwrap().modified().unwrap();
    let output = study(root, &on_slurm);
    common::succeeded(&output);
    let stages = read_json(&root.join("s/slurm/stages.json"));
    assert_eq!(stages["prep"].as_array().unwrap().len(), 1, "{stages}");
    assert_eq!(
        stages["prep"][0]["tasks"],
        serde_json::json!([1]),
        "{stages}"
    );
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        modified
    );
    let local = assert_same_study(&local_dir.path().join("s"), &root.join("s"));
    assert!(local.contains_key("phase_d.record.json"));
}

/// A local study that stopped in Phase D (its Phase C record verifies, Phase D has none),
/// resubmitted to SLURM: each dose's `prep` task keeps Phase C as it is and redoes only Phase
/// D; the study then equals an uninterrupted local one byte for byte.
#[test]
fn a_local_study_stopped_in_phase_d_resubmitted_to_slurm_keeps_phase_c() {
    if !cluster() {
        return;
    }
    let (local_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = dir.path();
    let study = tiny_study;
    common::succeeded(&study(local_dir.path(), &[]));
    // Phase C whole and recorded, Phase D never recorded: as a local run killed in Phase D.
    common::succeeded(&study(root, &[]));
    std::fs::remove_file(root.join("s/phase_d.record.json")).unwrap();
    std::fs::remove_dir_all(root.join("s/phase_d")).unwrap();
    let kept = root.join("s/phase_c/dose_1000/patched_train.npz");
    let modified = std::fs::metadata(&kept).unwrap().modified().unwrap();
    let output = study(
        root,
        &["--executor", "slurm", "--wait", "--poll-interval", "1"],
    );
    common::succeeded(&output);
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        modified,
        "Phase C was rewritten"
    );
    // Every dose had a task (no dose record came from the local run).
    let stages = read_json(&root.join("s/slurm/stages.json"));
    assert_eq!(
        stages["prep"][0]["tasks"],
        serde_json::json!([0, 1, 2]),
        "{stages}"
    );
    assert_same_study(&local_dir.path().join("s"), &root.join("s"));
}

/// `study --executor slurm --dry-run` writes and prints the three stage scripts (each this
/// command with `--stage`, the stage resources, no gres) and submits nothing; SLURM flags
/// without the SLURM executor, and a resource for a method the study does not run, are refused
/// before any work.
#[test]
fn study_slurm_dry_run_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let study = |extra: &[&str]| {
        cli()
            .current_dir(root)
            .args(["-q", "study", "--preset", "tiny", "--out", "s"])
            .args(extra)
            .output()
            .unwrap()
    };
    let output = study(&[
        "--executor",
        "slurm",
        "--dry-run",
        "--mem",
        "2G",
        "--gres",
        "gpu:1",
        "--time-limit",
        "native=30",
    ]);
    common::succeeded(&output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    for stage in ["prep", "plan", "finish"] {
        let script =
            String::from_utf8(read(&root.join(format!("s/slurm/{stage}.sbatch")))).unwrap();
        assert!(stdout.contains(&script), "{stdout}");
        // `prep` is an array: its task's id (plus the script's offset) is the dose's index.
        let call = match stage {
            "prep" => "--stage prep --dose-index \"$index\"\n".to_string(),
            _ => format!("--stage {stage}\n"),
        };
        assert!(script.contains(&call), "{script}");
        assert!(!script.contains("--dry-run"), "{script}");
        assert!(script.contains("#SBATCH --mem=\"2G\"\n"), "{script}");
        // Stage jobs use no GPU, and a method's time limit is its training array's only.
        assert!(
            !script.contains("#SBATCH --gres") && !script.contains("#SBATCH --time"),
            "{script}"
        );
    }
    let stages = read_json(&root.join("s/slurm/stages.json"));
    assert_eq!(stages["jobs"], serde_json::json!({}));
    assert!(!root.join("s/phase_c").exists());

    let output = study(&["--mem", "2G"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: --mem is an option of --executor slurm"),
        "{stderr}"
    );
    let output = study(&["--executor", "slurm", "--gres", "tensorflow=gpu:1"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--gres tensorflow=gpu:1: this study does not run `tensorflow`"),
        "{stderr}"
    );
}

/// A study killed on the cluster mid-training (`scancel`) and submitted again trains nothing
/// twice: the jobs that finished keep their bundles untouched and the new arrays hold exactly
/// the others.
#[test]
fn a_killed_study_resubmitted_trains_nothing_twice() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let study = |extra: &[&str]| {
        cli()
            .current_dir(root)
            .args([
                "-q", "study", "--preset", "tiny", "--epochs", "2", "--out", "s",
            ])
            .args(["--executor", "slurm", "--array-limit", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    common::succeeded(&study(&[]));
    let tasks_dir = root.join("s/artifacts/slurm");
    let exits = || {
        std::fs::read_dir(&tasks_dir)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".exit")
                })
                .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !(root.join("s/slurm/plan.exit").exists() && exits() >= 1) {
        assert!(std::time::Instant::now() < deadline, "no task finished");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stages = read_json(&root.join("s/slurm/stages.json"));
    let submission = read_json(&root.join("s/artifacts/slurm/submission.json"));
    let mut ids: Vec<String> = submission["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["job_id"].as_str().unwrap().to_string())
        .collect();
    ids.push(stages["jobs"]["finish"].as_str().unwrap().to_string());
    let status = std::process::Command::new("scancel")
        .args(&ids)
        .status()
        .unwrap();
    assert!(status.success());
    // Until SLURM has ended every task (a running one gets SIGTERM).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = std::process::Command::new("squeue")
            .args([
                "-h",
                "-t",
                "PENDING,RUNNING,COMPLETING",
                "-j",
                &ids.join(","),
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "tasks still running");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The jobs that finished before the kill, and their bundles' bytes and times.
    let plan = read_json(&root.join("s/artifacts/plan.json"));
    let mut done = Vec::new();
    let mut bundles = Vec::new();
    for job in plan["jobs"].as_array().unwrap() {
        let dir = root.join(job["job"]["artifact_dir"].as_str().unwrap());
        let result = dir.join("result.json");
        if result.is_file() && read_json(&result)["result"]["status"] == "success" {
            done.push(job["index"].as_u64().unwrap());
            let bundle = dir.join("native_bundle.npz");
            let modified = std::fs::metadata(&bundle).unwrap().modified().unwrap();
            bundles.push((bundle.clone(), read(&bundle), modified));
        }
    }
    assert!(
        !done.is_empty() && done.len() < 6,
        "done before the kill: {done:?}"
    );

    let output = study(&["--wait", "--poll-interval", "1"]);
    common::succeeded(&output);
    let submission = read_json(&root.join("s/artifacts/slurm/submission.json"));
    let rerun: Vec<u64> = submission["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            let first = a["first_index"].as_u64().unwrap();
            match a["tasks"].as_array() {
                Some(tasks) => tasks.iter().map(|t| first + t.as_u64().unwrap()).collect(),
                None => (first..first + a["count"].as_u64().unwrap()).collect::<Vec<_>>(),
            }
        })
        .collect();
    let expected: Vec<u64> = (0..6).filter(|i| !done.contains(i)).collect();
    assert_eq!(rerun, expected, "done before the kill: {done:?}");
    for (bundle, bytes, modified) in bundles {
        assert_eq!(read(&bundle), bytes, "{}", bundle.display());
        let now = std::fs::metadata(&bundle).unwrap().modified().unwrap();
        assert_eq!(now, modified, "{} was written again", bundle.display());
    }
    let manifest = read_json(&root.join("s/artifacts/training_manifest.json"));
    for job in manifest["jobs"].as_array().unwrap() {
        assert_eq!(job["result"]["status"], "success", "{}", job["result"]);
    }
}
