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
