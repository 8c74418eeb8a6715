//! Regressions of issue 26: artifacts from anyone. Each test starts from a finished
//! `study --preset tiny` (made once, copied per test), makes the finding's one edit, and
//! checks that no command writes, reads or hangs outside the folder it was given. Each is
//! named after what broke (finding numbers from the issue) and failed before the fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_dose-overlap");

/// A finished `study --preset tiny --out s`, run from its parent folder (so the manifest
/// records paths relative to it), made once per test binary.
fn pristine() -> &'static Path {
    static STUDY: OnceLock<tempfile::TempDir> = OnceLock::new();
    STUDY
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let out = common::cli()
                .current_dir(dir.path())
                .args(["-q", "study", "--preset", "tiny", "--out", "s"])
                .output()
                .unwrap();
            common::succeeded(&out);
            dir
        })
        .path()
}

/// A copy of the finished study in a fresh folder: `<dir>/s`.
fn study() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(pristine().join("s"))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let s = dir.path().join("s");
    (dir, s)
}

/// `dose-overlap args` run in `cwd` under a 1 GiB address-space limit and killed after `secs`
/// (a hang fails the test instead of blocking it), with `prefix` shell commands before it
/// (`exec` keeps the pid: `$$` in `prefix` is the command's own).
fn run_in(cwd: &Path, prefix: &str, secs: u64, args: &[&str]) -> (Output, Duration) {
    let mut cmd = assert_cmd::Command::new("sh");
    cmd.current_dir(cwd)
        .arg("-c")
        .arg(format!(
            "{prefix} ulimit -v {}; exec \"$0\" \"$@\"",
            1024 * 1024
        ))
        .arg(BIN)
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1762245266")
        .env_remove("PTYCHO_TRAIN")
        .env_remove("PTYCHO_PYTHON")
        .timeout(Duration::from_secs(secs));
    let start = Instant::now();
    let out = cmd.output().expect("sh runs");
    (out, start.elapsed())
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    run_in(cwd, "", 60, args).0
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

fn read_json(path: &Path) -> serde_json::Value {
    common::read_json(path)
}

fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
}

/// Edits `<s>/artifacts/training_manifest.json` in place.
fn edit_manifest(s: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = s.join("artifacts/training_manifest.json");
    let mut m = read_json(&path);
    edit(&mut m);
    write_json(&path, &m);
}

/// Every file under `dir` (links listed, not followed).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                files.extend(walk(&p));
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Finding 2: links named `.training_manifest.json.tmp-<pid>` made `study` (and `collect`)
/// overwrite the link's target with the manifest: temps were opened with `File::create`
/// (follows links, truncates) and the stale-temp sweep skipped links.
#[test]
fn planted_temp_links_are_not_written_through() {
    let (dir, s) = study();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    let plant = |file: &str| format!("ln -s {} s/artifacts/.{file}.tmp-$$ &&", victim.display());
    for (file, args) in [
        (
            "training_manifest.json",
            &["-q", "study", "--preset", "tiny", "--out", "s"][..],
        ),
        (
            "skip_summary.json",
            &["collect", "--artifact-root", "s/artifacts"][..],
        ),
    ] {
        let (out, _) = run_in(dir.path(), &plant(file), 120, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", both(&out));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious\n",
            "{args:?} wrote through a planted {file} temp link"
        );
    }
    // No link with a temp's name is left behind, and the run verifies.
    let links: Vec<PathBuf> = walk(&s)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(links.is_empty(), "{links:?}");
    common::succeeded(&run(dir.path(), &["verify", "s"]));
}

/// Finding 1: a job's `view` of `../../../../x/PWNED` in the manifest made `report ROOT --out
/// DIR` create `x/PWNED_gs1.png` beside DIR (exit 0), and `compare` overwrite it: picture names
/// were built from the raw manifest string. Now the manifest is refused, naming the view.
#[test]
fn a_view_name_that_climbs_out_writes_nothing_outside() {
    let (dir, _s) = study();
    edit_manifest(&dir.path().join("s"), |m| {
        m["jobs"][0]["view"] = "../../../../x/PWNED".into();
    });
    for args in [
        &["report", "s/artifacts", "--out", "o1"][..],
        &["compare", "s/artifacts", "--out", "o2"][..],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", both(&out));
        assert!(
            stderr(&out)
                .contains("view '../../../../x/PWNED' is not usable as a folder or file name"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!dir.path().join("x").exists(), "{args:?} wrote outside");
    }
}

/// Finding 14 (names): a newline in a view name injected a heading into `summary.md`; `verify`
/// accepted an empty view, dose -1 and gridsize 0. Each is refused by every reader.
#[test]
fn names_and_numbers_design_refuses_are_refused_in_a_manifest() {
    for (field, value, message) in [
        (
            "view",
            serde_json::json!("dense\n# injected"),
            "view 'dense\\n# injected' is not usable",
        ),
        ("view", serde_json::json!(""), "view '' is not usable"),
        ("dose", serde_json::json!(-1.0), "dose -1 is not between"),
        (
            "gridsize",
            serde_json::json!(0),
            "gridsize 0 is not between 1 and 16",
        ),
    ] {
        let (dir, s) = study();
        edit_manifest(&s, |m| m["jobs"][1][field] = value.clone());
        let verify = run(dir.path(), &["verify", "s"]);
        assert_eq!(verify.status.code(), Some(1), "{field}: {}", both(&verify));
        assert!(
            stdout(&verify).contains(message),
            "{field}: {}",
            stdout(&verify)
        );
        let report = run(dir.path(), &["report", "s/artifacts", "--out", "o"]);
        assert_eq!(report.status.code(), Some(2), "{field}: {}", both(&report));
        assert!(
            stderr(&report).contains(message),
            "{field}: {}",
            stderr(&report)
        );
        assert!(!dir.path().join("o").exists());
    }
}

/// Finding 8: a tampered `artifact_dir` in `plan.json` made `run-job` write bundle, result and
/// config to any folder (exit 0), and `collect` record it as a success. Now the plan is
/// refused before anything runs.
#[test]
fn a_plan_naming_a_folder_outside_its_root_is_refused() {
    let (dir, s) = study();
    let plan_file = s.join("artifacts/plan.json");
    let mut plan = read_json(&plan_file);
    let outside = dir.path().join("outside/gs1");
    let log = outside.join("train.log");
    let job = &mut plan["jobs"][0];
    job["job"]["artifact_dir"] = outside.display().to_string().into();
    job["job"]["log_path"] = log.display().to_string().into();
    job["config"]["output_dir"] = outside.display().to_string().into();
    job["config"]["log_path"] = log.display().to_string().into();
    write_json(&plan_file, &plan);
    let out = run(
        dir.path(),
        &["run-job", "--plan", "s/artifacts/plan.json", "--index", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out)
            .contains("is not a usable plan: job 0 (baseline/dose=1e+03): its artifact dir"),
        "{}",
        stderr(&out)
    );
    let out = run(dir.path(), &["collect", "--artifact-root", "s/artifacts"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(!dir.path().join("outside").exists());
}

/// Finding 9: a job folder that is a link to elsewhere was written into by `run-job` (and
/// `train`, `study`), and `verify` passed; a study's `report/` that is a link was written
/// through. Now the job fails without writing, verify lists it, the report is refused.
#[test]
fn linked_job_and_report_folders_are_not_written_through() {
    let (dir, s) = study();
    let job = s.join("artifacts/dose_1000/baseline/gs1");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&job, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &job).unwrap();
    let verify = run(dir.path(), &["verify", "s"]);
    assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
    assert!(
        stdout(&verify).contains("baseline/gs1: is a symbolic link"),
        "{}",
        stdout(&verify)
    );
    std::fs::write(elsewhere.join("train.log"), "marker\n").unwrap();
    let out = run(
        dir.path(),
        &["run-job", "--plan", "s/artifacts/plan.json", "--index", "0"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("is not written through"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("train.log")).unwrap(),
        "marker\n"
    );
    // The study's report folder.
    let report_elsewhere = dir.path().join("report_elsewhere");
    std::fs::create_dir(&report_elsewhere).unwrap();
    std::fs::remove_dir_all(s.join("report")).unwrap();
    std::os::unix::fs::symlink(&report_elsewhere, s.join("report")).unwrap();
    let out = run(dir.path(), &["report", "s"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        stderr(&out).contains("is a symbolic link"),
        "{}",
        stderr(&out)
    );
    assert!(walk(&report_elsewhere).is_empty());
}

/// Finding 10: a `reconstruction_path` or a job `artifact_dir` outside the root, or a
/// `result.json` that is a link to an outside file: `verify` 0, and `report` rendered the
/// outside file. Now verify lists each and report refuses.
#[test]
fn paths_outside_the_root_are_refused() {
    // A reconstruction outside, in the manifest and the result alike.
    let (dir, s) = study();
    let job = s.join("artifacts/dose_1000/baseline/gs1");
    std::fs::copy(
        job.join("native_bundle.npz"),
        dir.path().join("outside.npz"),
    )
    .unwrap();
    let rel = "../../../../../outside.npz";
    edit_manifest(&s, |m| {
        m["jobs"][0]["result"]["reconstruction_path"] = rel.into();
    });
    let mut result = read_json(&job.join("result.json"));
    result["result"]["reconstruction_path"] = rel.into();
    write_json(&job.join("result.json"), &result);
    let verify = run(dir.path(), &["verify", "s"]);
    assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
    assert!(
        stdout(&verify).contains("its reconstruction_path"),
        "{}",
        stdout(&verify)
    );
    let report = run(dir.path(), &["report", "s/artifacts", "--out", "o"]);
    assert_eq!(report.status.code(), Some(2), "{}", both(&report));

    // A job dir outside (a faithful copy of the job's folder).
    let (dir, s) = study();
    let copy = dir.path().join("copy/gs1");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(s.join("artifacts/dose_1000/baseline/gs1"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    edit_manifest(&s, |m| {
        m["jobs"][0]["artifact_dir"] = copy.display().to_string().into();
        m["jobs"][0]["log_path"] = copy.join("train.log").display().to_string().into();
    });
    let verify = run(dir.path(), &["verify", "s"]);
    assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
    assert!(
        stdout(&verify).contains("its artifact_dir"),
        "{}",
        stdout(&verify)
    );

    // A result.json that is a link to a file outside (with the same text).
    let (dir, s) = study();
    let result = s.join("artifacts/dose_1000/baseline/gs1/result.json");
    let outside = dir.path().join("result_outside.json");
    std::fs::rename(&result, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &result).unwrap();
    let verify = run(dir.path(), &["verify", "s"]);
    assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
    assert!(
        stdout(&verify).contains("result.json: is a symbolic link (not followed)"),
        "{}",
        stdout(&verify)
    );
}

/// Finding 7: `verify` resolved the input paths a manifest records (relative to where the run
/// started) against the current folder: from `/` a study verified with false mismatches, and a
/// moved copy verified from the old folder re-hashed the original's inputs. Now inputs are
/// found from the root given.
#[test]
fn verify_reads_inputs_where_the_study_is_not_where_it_runs() {
    let (dir, s) = study();
    let s_abs = s.display().to_string();
    let out = run(Path::new("/"), &["verify", &s_abs]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // A copy moved beside it, one of whose inputs changed: verified from the original's
    // folder, the copy's own inputs are the ones hashed.
    let moved = dir.path().join("m");
    std::fs::create_dir(&moved).unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(&s)
        .arg(&moved)
        .status()
        .unwrap();
    assert!(status.success());
    let input = moved.join("s/phase_c/dose_1000/patched_train.npz");
    let mut bytes = std::fs::read(&input).unwrap();
    bytes.push(0);
    std::fs::write(&input, bytes).unwrap();
    let out = run(dir.path(), &["verify", "m/s"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stdout(&out).contains("m/s/phase_c/dose_1000/patched_train.npz changed since the job ran"),
        "{}",
        stdout(&out)
    );
}

/// Finding 12: a job listed twice in the manifest: `diff` said equal, `verify` 0, the report
/// counted 7 jobs of 6. Now each refuses it.
#[test]
fn a_job_listed_twice_is_refused() {
    let (dir, s) = study();
    let status = Command::new("cp")
        .arg("-a")
        .arg(&s)
        .arg(dir.path().join("t"))
        .status()
        .unwrap();
    assert!(status.success());
    edit_manifest(&s, |m| {
        let first = m["jobs"][0].clone();
        m["jobs"].as_array_mut().unwrap().push(first);
    });
    let verify = run(dir.path(), &["verify", "s"]);
    assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
    assert!(
        stdout(&verify).contains("job 6 (1e+03 baseline gs1) is listed twice"),
        "{}",
        stdout(&verify)
    );
    let report = run(dir.path(), &["report", "s/artifacts", "--out", "o"]);
    assert_eq!(report.status.code(), Some(2), "{}", both(&report));
    let diff = run(dir.path(), &["diff", "t/artifacts", "s/artifacts"]);
    assert_eq!(diff.status.code(), Some(2), "{}", both(&diff));
    assert!(
        stderr(&diff).contains("lists job dose=1e+03 view=baseline gs1 twice"),
        "{}",
        stderr(&diff)
    );
}

/// Finding 11: `report STUDY` on a study still running (its manifest has `run_in_progress`)
/// exited 0, where the artifact-root branch exits 1. Both now write the report and exit 1.
#[test]
fn report_of_a_running_study_is_no_success() {
    let (dir, s) = study();
    edit_manifest(&s, |m| {
        m["run_in_progress"] = serde_json::json!({"pid": 1, "started": "2026-01-01T00:00:00Z"});
    });
    for args in [
        &["report", "s"][..],
        &["report", "s/artifacts", "--out", "o"][..],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", both(&out));
        assert!(
            stderr(&out).contains("did not finish"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(s.join("report/summary.md").is_file());
}

/// Finding 6: a job whose scoring failed counted as complete for `report` (`[x] every
/// selected job ended well`, no word of `scoring_error`); a success with neither metrics nor
/// `scoring_error` was skipped as verified forever. Now `verify` lists both, `report` says
/// "not scored", and a rerun of `train` trains them again.
#[test]
fn a_job_that_was_not_scored_is_not_complete() {
    let (dir, s) = study();
    let job = s.join("artifacts/dose_1000/baseline/gs1/result.json");
    let other = s.join("artifacts/dose_1000/dense/gs2/result.json");
    let strip = |path: &Path, error: Option<&str>| {
        let mut r = read_json(path);
        r["result"].as_object_mut().unwrap().remove("metrics");
        if let Some(error) = error {
            r["result"]["scoring_error"] = error.into();
        }
        write_json(path, &r);
        r["result"].clone()
    };
    let first = strip(&job, Some("no Python"));
    let second = strip(&other, None);
    edit_manifest(&s, |m| {
        for j in m["jobs"].as_array_mut().unwrap() {
            if j["dose"] == 1000.0 {
                j["result"] = if j["view"] == "baseline" {
                    first.clone()
                } else {
                    second.clone()
                };
            }
        }
    });
    let verify = run(dir.path(), &["verify", "s"]);
    assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
    let listed = stdout(&verify);
    assert!(
        listed.contains("baseline/gs1: trained but not scored (scoring_error: no Python)")
            && listed.contains(
                "dense/gs2: trained but not scored (no metrics and no \
                 scoring_error)"
            ),
        "{listed}"
    );
    let report = run(dir.path(), &["report", "s/artifacts", "--out", "o"]);
    assert_eq!(report.status.code(), Some(0), "{}", both(&report));
    assert!(
        stdout(&report).contains("[ ] every selected job ended well"),
        "{}",
        stdout(&report)
    );
    let md = std::fs::read_to_string(dir.path().join("o/summary.md")).unwrap();
    assert!(md.contains("not scored (scoring_error: no Python)"), "{md}");
    // A rerun of the study trains and scores both again; then it verifies.
    let rerun = run(dir.path(), &["study", "--preset", "tiny", "--out", "s"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", both(&rerun));
    assert_eq!(
        stderr(&rerun)
            .matches("run: last run's scoring failed")
            .count(),
        2,
        "{}",
        stderr(&rerun)
    );
    common::succeeded(&run(dir.path(), &["verify", "s"]));
}

/// Finding 3: `skip_summary_path: "/dev/zero"` made `verify` read until memory ran out; a job
/// input of `/dev/zero`, or a FIFO in place of `overlap_report.json` (a Phase D output its
/// record lists), hung `verify`, `report STUDY`, `compare` and `diff STUDY` forever. Each now
/// ends in seconds (under a 1 GiB address-space limit), naming what it refused.
#[test]
fn devices_and_fifos_are_refused_not_read() {
    let bounded = |cwd: &Path, args: &[&str]| {
        let (out, took) = run_in(cwd, "", 30, args);
        assert!(
            out.status.code().is_some_and(|c| c != 101),
            "{args:?} hung, was killed or panicked ({took:?}): {}",
            both(&out)
        );
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
        out
    };
    // The skip summary and an input that are devices: refused by the manifest's check.
    for (field, message) in [
        (
            "skip_summary_path",
            "its skip_summary_path '/dev/zero' is not a file of the artifact root",
        ),
        (
            "train_data_path",
            "its data /dev/zero is not under the Phase C or D root",
        ),
    ] {
        let (dir, s) = study();
        edit_manifest(&s, |m| {
            if field == "skip_summary_path" {
                m[field] = "/dev/zero".into();
            } else {
                m["jobs"][0][field] = "/dev/zero".into();
            }
        });
        let verify = bounded(dir.path(), &["verify", "s"]);
        assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
        assert!(stdout(&verify).contains(message), "{}", stdout(&verify));
        for args in [
            &["report", "s"][..],
            &["compare", "s/artifacts", "--out", "o"][..],
        ] {
            let out = bounded(dir.path(), args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", both(&out));
            assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        }
    }
    // A FIFO where Phase D's overlap report was.
    let (dir, s) = study();
    let status = Command::new("cp")
        .arg("-a")
        .arg(&s)
        .arg(dir.path().join("t"))
        .status()
        .unwrap();
    assert!(status.success());
    let report = s.join("phase_d/dose_1000/overlap_report.json");
    std::fs::remove_file(&report).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&report)
            .status()
            .unwrap()
            .success()
    );
    let verify = bounded(dir.path(), &["verify", "s"]);
    assert_eq!(verify.status.code(), Some(1), "{}", both(&verify));
    assert!(
        stdout(&verify).contains("overlap_report.json")
            && stdout(&verify).contains("not a regular file"),
        "{}",
        stdout(&verify)
    );
    // `report STUDY` reads no Phase D file (it ends, exit 0); `diff` hashes the data.
    bounded(dir.path(), &["report", "s"]);
    let diff = bounded(dir.path(), &["diff", "t", "s"]);
    assert_ne!(diff.status.code(), Some(0), "{}", both(&diff));
}

/// A manifest that is a FIFO or a link: `verify` said "no training manifest under artifacts/"
/// of the study, and of the artifact root that it was neither a root nor a study (exit 2); it
/// now says what the manifest is, as `report` does (exit 1: a mismatch).
#[test]
fn verify_says_what_a_manifest_that_is_no_file_is() {
    for (kind, said) in [
        ("fifo", "is not a regular file"),
        ("link", "is a symbolic link (not followed)"),
    ] {
        let (dir, s) = study();
        let manifest = s.join("artifacts/training_manifest.json");
        std::fs::rename(&manifest, dir.path().join("elsewhere.json")).unwrap();
        if kind == "fifo" {
            assert!(
                Command::new("mkfifo")
                    .arg(&manifest)
                    .status()
                    .unwrap()
                    .success()
            );
        } else {
            std::os::unix::fs::symlink(dir.path().join("elsewhere.json"), &manifest).unwrap();
        }
        for target in ["s", "s/artifacts"] {
            let (out, took) = run_in(dir.path(), "", 30, &["verify", target]);
            assert!(took < Duration::from_secs(30), "{kind} {target}: {took:?}");
            assert_eq!(
                out.status.code(),
                Some(1),
                "{kind} {target}: {}",
                both(&out)
            );
            let text = stdout(&out);
            assert!(
                text.contains("training_manifest.json") && text.contains(said),
                "{kind} {target}: {text}"
            );
            assert!(
                !text.contains("no training manifest"),
                "{kind} {target}: {text}"
            );
        }
    }
}

/// Finding 14 (stderr): with stderr on a full disk every error path panicked (exit 101). The
/// message is dropped; the exit code still says what happened.
#[test]
fn an_unwritable_stderr_is_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run_in(dir.path(), "exec 2>/dev/full;", 30, &["verify", "missing"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}
