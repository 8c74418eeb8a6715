//! Runs that survive: resume decisions, the one-writer lock, `verify`, kills at seeded random
//! points (SIGKILL and SIGTERM, `train` and `study`) followed by reruns, and contained fake
//! trainers (a grandchild, a hang, an orphan, a symlinked bundle, planted log links, a log cap).

use crate::common::{self, cli, read_json, validate_artifacts, wait_gone};
use crate::train::{write_fake_trainer, write_tree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dose-overlap");

/// Phase C and D of the tiny study, generated once per test into `dir/data`.
fn tiny_data(dir: &Path) {
    let run = |args: &[&str]| {
        let out = cli().current_dir(dir).args(args).output().unwrap();
        common::succeeded(&out);
    };
    run(&[
        "-q",
        "generate",
        "--preset",
        "tiny",
        "--out",
        "data/phase_c",
    ]);
    run(&[
        "-q",
        "overlap",
        "--preset",
        "tiny",
        "--phase-c-root",
        "data/phase_c",
        "--out",
        "data/phase_d",
    ]);
}

/// `train --backend native -j 2` on the tiny data, from `cwd` (a sibling of `data`'s parent
/// folder layout: `../data/...`), into `art`.
fn native_train(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .env("SOURCE_DATE_EPOCH", "1762245266")
        .args([
            "-q",
            "train",
            "--preset",
            "tiny",
            "--backend",
            "native",
            "-j",
            "2",
            "--phase-c-root",
            "../data/phase_c",
            "--phase-d-root",
            "../data/phase_d",
            "--artifact-root",
            "art",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Every file under `root` (relative path -> bytes), without the per-invocation command log
/// and the lock file.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "training_cli.log" || name == runner::LOCK_FILE {
                continue;
            }
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            );
        }
    }
    out
}

fn temps(root: &Path) -> Vec<PathBuf> {
    tree(root)
        .into_keys()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(npz_contract::atomic::temp_pid)
                .is_some()
        })
        .collect()
}

/// Jobs (artifact dirs relative to `art`) whose result says success and whose bundle still
/// hashes to it: verified complete right now.
fn complete_jobs(art: &Path) -> Vec<String> {
    let mut done = Vec::new();
    for (path, bytes) in tree(art) {
        if path.file_name().is_some_and(|n| n == "result.json") {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if v["result"]["status"] == "success" {
                let dir = art.join(path.parent().unwrap());
                let bundle = dir.join(v["result"]["bundle_path"].as_str().unwrap());
                if let Ok((sha, _)) = runner::sha256_file(&bundle)
                    && sha == v["result"]["bundle_sha256"]
                {
                    done.push(path.parent().unwrap().display().to_string());
                }
            }
        }
    }
    done
}

/// The decisions a run logged in `art/training_cli.log`: (job label, "skip"/"run").
fn decisions(art: &Path) -> Vec<(String, String)> {
    let log = std::fs::read_to_string(art.join("training_cli.log")).unwrap_or_default();
    log.lines()
        .filter_map(|l| l.strip_prefix("[stderr] "))
        .filter_map(|l| {
            let (label, rest) = l.split_once(": ")?;
            let verb = rest.split(':').next()?;
            (verb == "skip" || verb == "run").then(|| (label.to_string(), verb.to_string()))
        })
        .collect()
}

/// `dose_1000/baseline/gs1` -> `baseline/dose=1e+03` (the label decisions use).
fn label_of(dir: &str) -> String {
    let parts: Vec<&str> = dir.split('/').collect();
    let dose: f64 = parts[0].trim_start_matches("dose_").parse().unwrap();
    format!("{}/dose={}", parts[1], job_matrix::format_dose(dose))
}

/// A seeded stream of kill delays (SplitMix64), reproducible from run to run.
struct Delays(u64);
impl Delays {
    fn next(&mut self, max: Duration) -> Duration {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        max.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64)
    }
}

fn signal(child: &Child, name: &str) {
    Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
}

/// Kills `make()` runs at seeded random points, each kill followed by the next run, then a
/// final uninterrupted run; checks what the issue asks of each step and returns the final
/// tree. `art` is where job results are (for the "no verified job reruns" count).
fn kill_loop(
    out_dir: &Path,
    art: &Path,
    make: &dyn Fn() -> Command,
    sig: &str,
    kills: usize,
    seed: u64,
    span: Duration,
) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut delays = Delays(seed);
    let mut complete_before: Vec<String> = Vec::new();
    let mut redone = 0;
    for _ in 0..kills {
        // Each run's decisions are read from its own command log, never a stale one.
        let _ = std::fs::remove_file(art.join("training_cli.log"));
        let mut child = make().spawn().unwrap();
        // From 30 ms on: the handlers are installed within the first milliseconds.
        std::thread::sleep(Duration::from_millis(30) + delays.next(span));
        signal(&child, sig);
        let status = child.wait().unwrap();
        if sig == "-TERM" {
            // A clean stop: exit 1 (or 0 if it had finished), and no temp file left at once.
            assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
            assert_eq!(temps(out_dir), Vec::<PathBuf>::new(), "temps after SIGTERM");
        }
        // Jobs verified complete before this kill must not have been run by it.
        for (label, verb) in decisions(art) {
            if verb == "run" && complete_before.iter().any(|d| label_of(d) == label) {
                redone += 1;
            }
        }
        complete_before = complete_jobs(art);
    }
    let _ = std::fs::remove_file(art.join("training_cli.log"));
    let status = make().status().unwrap();
    assert_eq!(status.code(), Some(0));
    for (label, verb) in decisions(art) {
        if verb == "run" && complete_before.iter().any(|d| label_of(d) == label) {
            redone += 1;
        }
    }
    assert_eq!(
        redone, 0,
        "jobs verified complete before a kill were run again"
    );
    assert_eq!(
        temps(out_dir),
        Vec::<PathBuf>::new(),
        "temps left after the reruns"
    );
    tree(out_dir)
}

/// Kills per loop: `default` in the suite, `RESUME_KILLS` for a longer run by hand
/// (`RESUME_KILLS=20 cargo test --test it resume::`).
fn kills(default: usize) -> usize {
    std::env::var("RESUME_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn reference(dir: &Path, name: &str) -> (PathBuf, Duration) {
    let cwd = dir.join(name);
    std::fs::create_dir_all(&cwd).unwrap();
    let start = Instant::now();
    let status = native_train(&cwd).status().unwrap();
    assert_eq!(status.code(), Some(0));
    (cwd, start.elapsed())
}

#[test]
fn sigkill_and_sigterm_at_random_points_lose_nothing_and_redo_nothing() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path());
    let (ref_cwd, took) = reference(dir.path(), "ref");
    let want = tree(&ref_cwd.join("art"));
    validate_artifacts(&ref_cwd.join("art"));
    for (sig, seed) in [("-KILL", 14), ("-TERM", 15)] {
        let cwd = dir.path().join(format!("run{sig}"));
        std::fs::create_dir_all(&cwd).unwrap();
        let art = cwd.join("art");
        let got = kill_loop(
            &art,
            &art,
            &|| native_train(&cwd),
            sig,
            kills(6),
            seed,
            took,
        );
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{sig}: the same files"
        );
        for (path, bytes) in &want {
            assert!(got[path] == *bytes, "{sig}: {} differs", path.display());
        }
        let verify = cli()
            .current_dir(&cwd)
            .args(["verify", "art"])
            .output()
            .unwrap();
        common::succeeded(&verify);
    }
}

#[test]
fn study_killed_at_random_points_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let study = |cwd: &Path| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(cwd)
            .env("SOURCE_DATE_EPOCH", "1762245266")
            .args(["-q", "study", "--preset", "tiny", "-j", "2", "--out", "s"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let ref_cwd = dir.path().join("ref");
    std::fs::create_dir_all(&ref_cwd).unwrap();
    let start = Instant::now();
    assert_eq!(study(&ref_cwd).status().unwrap().code(), Some(0));
    let took = start.elapsed();
    let want = tree(&ref_cwd.join("s"));
    for (sig, seed) in [("-KILL", 21), ("-TERM", 22)] {
        let cwd = dir.path().join(format!("run{sig}"));
        std::fs::create_dir_all(&cwd).unwrap();
        let out = cwd.join("s");
        let got = kill_loop(
            &out,
            &out.join("artifacts"),
            &|| study(&cwd),
            sig,
            kills(5),
            seed,
            took,
        );
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{sig}"
        );
        for (path, bytes) in &want {
            assert!(got[path] == *bytes, "{sig}: {} differs", path.display());
        }
        let verify = cli()
            .current_dir(&cwd)
            .args(["verify", "s"])
            .output()
            .unwrap();
        common::succeeded(&verify);
    }
}

/// Regression: a rerun redid every job, and a rerun with other settings killed midway left a
/// manifest that still claimed the old run's successes.
#[test]
fn resume_decisions_say_why_and_verify_lists_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path());
    let (cwd, _) = reference(dir.path(), "run");
    let art = cwd.join("art");
    let first = tree(&art);
    // Nothing changed: every job skipped, nothing rewritten.
    let again = native_train(&cwd).stderr(Stdio::piped()).output().unwrap();
    common::succeeded(&again);
    assert!(
        decisions(&art).iter().all(|(_, v)| v == "skip"),
        "{:?}",
        decisions(&art)
    );
    assert_eq!(decisions(&art).len(), 6);
    assert_eq!(tree(&art), first);
    // A dry run with other epochs previews the reason and writes nothing.
    let preview = native_train(&cwd)
        .args(["--epochs", "7", "--dry-run"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    common::succeeded(&preview);
    let text = String::from_utf8_lossy(&preview.stdout);
    assert!(
        text.contains("baseline/dose=1e+03: run: config changed (epochs 20 -> 7)"),
        "{text}"
    );
    assert_eq!(tree(&art), first);
    // An altered bundle and a changed input: verify lists both, and a rerun redoes just them.
    let bundle = art.join("dose_1000/dense/gs2/native_bundle.npz");
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes.push(0);
    std::fs::write(&bundle, bytes).unwrap();
    let input = dir.path().join("data/phase_c/dose_100000/patched_test.npz");
    let original = std::fs::read(&input).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"\0");
    std::fs::write(&input, &changed).unwrap();
    let verify = cli()
        .current_dir(&cwd)
        .args(["verify", "art"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&verify.stdout);
    assert!(listed.contains("dense/gs2: bundle"), "{listed}");
    assert!(
        listed.contains("test input") && listed.contains("changed since the job ran"),
        "{listed}"
    );
    std::fs::write(&input, &original).unwrap();
    let rerun = native_train(&cwd).output().unwrap();
    common::succeeded(&rerun);
    let d = decisions(&art);
    let run: Vec<&str> = d
        .iter()
        .filter(|(_, v)| v == "run")
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(run, ["dense/dose=1e+03"], "{d:?}");
    let log = std::fs::read_to_string(art.join("training_cli.log")).unwrap();
    assert!(
        log.contains("dense/dose=1e+03: run: bundle altered"),
        "{log}"
    );
    assert_eq!(tree(&art), first, "the rerun job gives the same bytes");
    common::succeeded(
        &cli()
            .current_dir(&cwd)
            .args(["verify", "art"])
            .output()
            .unwrap(),
    );
    common::succeeded(
        &cli()
            .current_dir(&cwd)
            .args(["report", "--verify", "art"])
            .output()
            .unwrap(),
    );

    // A run killed after it started leaves a manifest that says so; report and diff say it.
    let mut child = native_train(&cwd)
        .args(["--force", "--epochs", "200"])
        .spawn()
        .unwrap();
    let manifest = art.join("training_manifest.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&manifest)
        .unwrap_or_default()
        .contains("run_in_progress")
    {
        assert!(Instant::now() < deadline, "no in-progress manifest");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, "-KILL");
    child.wait().unwrap();
    let m = read_json(&manifest);
    assert!(m["run_in_progress"]["pid"].is_u64(), "{m}");
    assert!(
        m["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["state"] != "done"),
        "{m}"
    );
    let report = cli()
        .current_dir(&cwd)
        .args(["report", "art"])
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&report.stderr).contains("did not finish"));
    let diff = cli()
        .current_dir(dir.path())
        .args(["diff", "run/art", "run/art"])
        .output()
        .unwrap();
    assert_eq!(diff.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&diff.stdout).contains("did not finish"));
    let verify = cli()
        .current_dir(&cwd)
        .args(["verify", "art"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    validate_artifacts(&art);
}

/// Regression: two `train` runs on one root both exited 0 and mixed their folders.
#[test]
fn a_second_run_on_a_locked_root_exits_2_and_a_dead_holder_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_fake_trainer(&root.join("ptycho_train"), "NEVER", 30);
    let train = || {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(root)
            .env("SOURCE_DATE_EPOCH", "1762245266")
            .env("PTYCHO_PYTHON", root.join("python"))
            .args([
                "-q",
                "train",
                "--phase-c-root",
                "phase_c",
                "--phase-d-root",
                "phase_d",
                "--artifact-root",
                "art",
                "--trainer",
                "./ptycho_train",
                "--dose",
                "1e3",
                "--view",
                "dense",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut first = train().spawn().unwrap();
    let worker = root.join("art/dose_1000/dense/gs2/worker.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !worker.exists() {
        assert!(
            Instant::now() < deadline,
            "the first run never started its trainer"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = train().args(["--epochs", "3"]).output().unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    let expected = format!("another dose-overlap (pid {}, since ", first.id());
    assert!(
        err.contains(&expected) && err.contains("is using art"),
        "{err}"
    );
    // The second run touched nothing: the first one's config is still there.
    let config = read_json(&root.join("art/dose_1000/dense/gs2/training_config.json"));
    assert_ne!(config["epochs"], 3);
    // A holder that died (SIGKILL, no cleanup) does not block the next run.
    first.kill().unwrap();
    first.wait().unwrap();
    let pid: u32 = std::fs::read_to_string(&worker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_gone(pid, "the killed runner's trainer worker");
    std::fs::remove_file(&worker).unwrap();
    write_fake_trainer(&root.join("ptycho_train"), "NEVER", 0);
    let third = train().output().unwrap();
    common::succeeded(&third);
}

/// A fake trainer whose body (after the flag parsing that sets `$out`) is `body`.
fn trainer(path: &Path, body: &str) {
    let script = format!(
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do case \"$1\" in --output_dir) out=\"$2\";; esac; shift 2; done\n{body}\n"
    );
    crate::common::write_script(path, &script);
}

/// `dose-overlap train` of the 1e3 baseline job with the trainer `./t`, into `art/`.
pub(crate) fn fake_train(root: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root)
        .env("SOURCE_DATE_EPOCH", "1762245266")
        .env("PTYCHO_PYTHON", root.join("python"))
        .args([
            "-q",
            "train",
            "--phase-c-root",
            "phase_c",
            "--phase-d-root",
            "phase_d",
            "--artifact-root",
            "art",
            "--trainer",
            "./t",
            "--dose",
            "1e3",
            "--view",
            "baseline",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The artifact dir of [`fake_train`]'s job.
pub(crate) const JOB: &str = "art/dose_1000/baseline/gs1";

/// Regression: a trainer's grandchild appended to train.log after the outcome line and wrote
/// into the job dir after `train` exited 0.
#[test]
fn a_trainers_grandchild_ends_with_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    trainer(
        &root.join("t"),
        "(sleep 1; echo LATE; echo late > \"$out/late.txt\") &\necho $! > \"$out/grandchild.pid\"\necho 'Epoch 1/1'; echo 'loss: 0.5'\nprintf w > \"$out/wts.h5.zip\"",
    );
    let out = fake_train(root, &[]).output().unwrap();
    common::succeeded(&out);
    let pid: u32 = std::fs::read_to_string(root.join(JOB).join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_gone(pid, "the grandchild");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!root.join(JOB).join("late.txt").exists());
    let log = std::fs::read_to_string(root.join(JOB).join("train.log")).unwrap();
    assert!(!log.contains("LATE"), "{log}");
    assert!(
        log.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("Outcome: success"),
        "{log}"
    );
}

/// Issue 26, finding 4: a trainer's grandchild that calls `setsid` (leaving the trainer's
/// process group) outlived its job, and a SIGKILLed `dose-overlap`, and kept writing into the
/// job dir. It now ends with the job (the watchdog's sweep for the job's token), and with a
/// SIGKILLed runner.
#[test]
fn a_grandchild_that_leaves_the_group_ends_with_the_job() {
    let escape = "setsid sh -c 'sleep 1; echo late > \"$0/escaped.txt\"; sleep 600' \"$out\" \
                  >/dev/null 2>&1 &\necho $! > \"$out/escaped.pid\"\n";
    for killed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(root, &["dense"]);
        let tail = if killed {
            "sleep 600"
        } else {
            "echo 'Epoch 1/1'; echo 'loss: 0.5'\nprintf w > \"$out/wts.h5.zip\""
        };
        trainer(&root.join("t"), &format!("{escape}{tail}"));
        let pid_file = root.join(JOB).join("escaped.pid");
        if killed {
            let mut runner = fake_train(root, &[]).spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::fs::read_to_string(&pid_file).map_or(true, |t| t.trim().is_empty()) {
                assert!(Instant::now() < deadline, "the trainer never started");
                std::thread::sleep(Duration::from_millis(10));
            }
            runner.kill().unwrap();
            runner.wait().unwrap();
        } else {
            let out = fake_train(root, &[]).output().unwrap();
            common::succeeded(&out);
        }
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_gone(pid, "the grandchild that left the group");
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            !root.join(JOB).join("escaped.txt").exists(),
            "killed={killed}"
        );
    }
}

/// A trainer that hangs is stopped at --job-timeout with its whole group.
#[test]
fn a_hanging_trainer_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    trainer(
        &root.join("t"),
        "trap '' TERM\nsleep 600 &\necho $! > \"$out/sleep.pid\"\nwait",
    );
    let start = Instant::now();
    let out = fake_train(root, &["--job-timeout", "1s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // 1 s, then the 5 s grace for a trainer that ignores SIGTERM.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    let result = read_json(&root.join(JOB).join("result.json"));
    assert_eq!(result["result"]["status"], "failed");
    let error = result["result"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("timed out after 1s (--job-timeout)"),
        "{error}"
    );
    let pid: u32 = std::fs::read_to_string(root.join(JOB).join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_gone(pid, "the trainer's sleep");
}

/// Regression: when dose-overlap itself was SIGKILLed, its trainer was orphaned and ran on.
#[test]
fn a_trainer_dies_with_a_sigkilled_runner() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    trainer(
        &root.join("t"),
        "sleep 600 &\necho $! > \"$out/child.pid\"\necho $$ > \"$out/trainer.pid\"\nwait",
    );
    let mut runner = fake_train(root, &[]).spawn().unwrap();
    let pid_file = root.join(JOB).join("child.pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&pid_file)
        .unwrap_or_default()
        .trim()
        .is_empty()
        || std::fs::read_to_string(root.join(JOB).join("trainer.pid"))
            .unwrap_or_default()
            .trim()
            .is_empty()
    {
        assert!(Instant::now() < deadline, "the trainer never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    for file in ["trainer.pid", "child.pid"] {
        let pid: u32 = std::fs::read_to_string(root.join(JOB).join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_gone(pid, file);
    }
}

/// Regression: `wts.h5.zip -> /etc/passwd` became a success with the digest of /etc/passwd;
/// planted train.log / training_cli.log links made the run write outside the root.
#[test]
fn links_are_never_followed_and_logs_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    let outside = root.join("outside.txt");
    std::fs::write(&outside, "precious").unwrap();
    std::fs::create_dir_all(root.join(JOB)).unwrap();
    std::os::unix::fs::symlink(&outside, root.join(JOB).join("train.log")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("art/training_cli.log")).unwrap();
    trainer(&root.join("t"), "ln -s /etc/passwd \"$out/wts.h5.zip\"");
    let out = fake_train(root, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let result = read_json(&root.join(JOB).join("result.json"));
    assert_eq!(result["result"]["status"], "failed");
    assert!(
        result["result"]["error"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{result}"
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
    // A trainer printing 3 MiB with a 1 MiB cap: the log is cut, with a note, and the job
    // still records its outcome.
    trainer(
        &root.join("t"),
        "head -c 3145728 /dev/zero | tr '\\0' 'x'; echo; echo 'loss: 0.25'\nprintf w > \"$out/wts.h5.zip\"",
    );
    let out = fake_train(root, &["--log-limit", "1M"]).output().unwrap();
    common::succeeded(&out);
    let log = std::fs::read_to_string(root.join(JOB).join("train.log")).unwrap();
    assert!(log.len() < (1 << 20) + 16 * 1024, "{}", log.len());
    assert!(log.contains("train.log cut here"), "no note");
    assert!(log.contains("Outcome: success"));
    // Past the cap the loss was still read from the stream.
    let result = read_json(&root.join(JOB).join("result.json"));
    assert_eq!(result["result"]["final_loss"], 0.25);
}
