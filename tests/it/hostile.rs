//! Regressions of issue 13: small hostile files and short study files that took the machine
//! down or went through unchecked. Each test is named after what broke (defect numbers from the
//! issue) and failed before the fix. Memory bounds are enforced with `ulimit -v` on the child,
//! so a regression aborts (exit 134) instead of passing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_dose-overlap");

/// Runs `dose-overlap args` under an address-space limit of `limit_mib` (and with `prefix`
/// shell commands before it), returning its output and how long it took.
fn run_limited(limit_mib: u64, prefix: &str, args: &[&std::ffi::OsStr]) -> (Output, Duration) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "{prefix} ulimit -v {}; exec \"$0\" \"$@\"",
            limit_mib * 1024
        ))
        .arg(BIN)
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1762245266")
        .env_remove("PTYCHO_TRAIN");
    let start = Instant::now();
    let out = cmd.output().expect("sh runs");
    (out, start.elapsed())
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn corpus(name: &str) -> PathBuf {
    common::project_root()
        .join("tests/fixtures/npz-corpus")
        .join(name)
}

/// A study file in a fresh folder.
fn study_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("study.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// `dose-overlap <cmd> --design FILE [extra]` under a 1 GiB limit: exit code, stderr, time.
fn with_study(cmd: &str, text: &str, extra: &[&str]) -> (Option<i32>, String, Duration) {
    let (dir, path) = study_file(text);
    let out_dir = dir.path().join("out");
    let mut args = vec![os(cmd), os("--design"), path.as_os_str()];
    if cmd != "design" {
        args.extend([os("--out"), out_dir.as_os_str()]);
    }
    args.extend(extra.iter().map(|a| os(a)));
    let (out, took) = run_limited(1024, "", &args);
    if cmd != "design" {
        // Refused before any work: nothing was written.
        assert!(
            out.status.code() != Some(2) || walk(&out_dir).is_empty(),
            "{cmd} wrote into {} before refusing",
            out_dir.display()
        );
    }
    (out.status.code(), stderr(&out), took)
}

/// Defect 1: a 1 MB NPZ whose deflated 0-d `<U262144000` `_metadata` declares 1 GB was read
/// with the whole item as one chunk (exit 134 under a 2 GB limit). Now: refused by the 1 MiB
/// cap on 0-d strings, in well under 64 MiB and a second.
#[test]
fn deflated_metadata_declaring_1gb_is_refused_in_64_mib() {
    let bomb = common::project_root().join("tests/fixtures/npz-bombs/metadata_u262144000.npz");
    assert!(std::fs::metadata(&bomb).unwrap().len() <= 1 << 20);
    let (out, took) = run_limited(64 + 96, "", &[os("validate"), bomb.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "error: member '_metadata' is a <U262144000 string of 1048576000 bytes (unicode <U262144000), \
             more than the limit of 1048576 bytes for a 0-d string such as _metadata"
        ),
        "{}",
        stdout(&out)
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Defect 2: `filenames` declared `<U0` with shape (1e8,) and no data: `read_strings`
/// reserved 1e8 Strings (2.35 GB, 21 s) although the header checks already knew its length
/// is wrong. Now it is not read at all.
#[test]
fn u0_filenames_of_1e8_items_are_not_read() {
    let file = corpus("filenames_u0_1e8.npz");
    let (out, took) = run_limited(160, "", &[os("validate"), file.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Exactly the header error: the member is never read (before, reading it also failed or
    // took 2.35 GB).
    assert!(
        stdout(&out).contains("INVALID (1 error, 0 warnings)\n  error: filenames length 100000000 != diffraction first axis 4"),
        "{}",
        stdout(&out)
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Defect 3: sizes `design` accepted aborted `generate` (exit 134 after 21 s, or 101 on
/// "capacity overflow"). Now each is refused by `design` itself, by name, at once.
#[test]
fn study_sizes_that_aborted_generate_are_refused_by_design() {
    let cases = [
        (
            "[simulation]\nn_positions = 100000000\n",
            "simulation.n_positions=100000000 is above 10000000",
        ),
        (
            "[simulation]\nn_positions = 1e12\n",
            "invalid type: floating point `1000000000000.0`, expected usize",
        ),
        (
            "[simulation]\nobject_size = 1000000\n",
            "simulation.object_size=1000000 is above 32768 px",
        ),
        (
            "patch_size_pixels = 65536\n",
            "patch_size_pixels=65536 is above 4096",
        ),
        (
            "patch_size_pixels = 4000000000\n",
            "patch_size_pixels=4000000000 is above 4096",
        ),
    ];
    for (text, message) in cases {
        for cmd in ["design", "generate"] {
            let (code, err, took) = with_study(cmd, text, &[]);
            assert_eq!(code, Some(2), "{cmd} {text}: {err}");
            assert!(err.contains(message), "{cmd} {text}: {err}");
            assert!(took < Duration::from_secs(2), "{cmd} {text}: {took:?}");
        }
    }
}

/// Defect 3 (memory): a study within every bound but beyond the machine (or `--max-memory`)
/// is refused by `generate` and `study` before any work, naming the values to change.
#[test]
fn generate_and_study_refuse_a_study_larger_than_max_memory() {
    let text = "preset = 'tiny'\n[simulation]\nn_positions = 100000\n";
    for cmd in ["generate", "study"] {
        let (code, err, _) = with_study(cmd, text, &["--max-memory", "500M"]);
        assert_eq!(code, Some(2), "{cmd}: {err}");
        assert!(
            err.contains("this study needs about 3.4 GB of memory for Phase C, more than --max-memory (500 MB): lower simulation.n_positions (now 100000) or patch_size_pixels (now 32)"),
            "{cmd}: {err}"
        );
    }
    // And `design` says what it will need.
    let (_dir, path) = study_file(text);
    let out = common::cli()
        .args(["design", "--design"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("estimate:            Phase C needs about 3.4 GB of memory"),
        "{}",
        stdout(&out)
    );
}

/// Defect 4: duplicate checks used `contains` (1e5 doses 7.3 s, 50,000 views 27 s). Now they
/// are linear, a study of more than 1000 doses or 64 views is refused by a stated limit, and a
/// file of a million doses is refused by the 1 MiB study-file limit before it is parsed.
#[test]
fn huge_dose_and_view_lists_are_answered_within_a_second() {
    let doses: Vec<String> = (0..100_000).map(|i| format!("{}", 1000 + i)).collect();
    let text = format!("dose_list = [{}]\n", doses.join(", "));
    let (code, err, took) = with_study("design", &text, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("dose_list has 100000 doses, more than 1000"),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    let views: Vec<String> = (0..50_000).map(|i| format!("v{i} = 0.5")).collect();
    let text = format!("overlap_views = {{ {} }}\n", views.join(", "));
    let (code, err, took) = with_study("design", &text, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("overlap_views names 50000 views, more than 64"),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    let million: Vec<&str> = vec!["1e3"; 1_000_000];
    let text = format!("dose_list = [{}]\n", million.join(", "));
    let (code, err, took) = with_study("design", &text, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("larger than 1048576 bytes, the limit for a study file"),
        "{err}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// Defect 5: a view named `..` (or `.`) was accepted: all doses wrote one
/// `phase_d/.._train.npz` and jobs trained on another dose's data. Now refused.
#[test]
fn dot_and_dotdot_view_names_are_refused() {
    for name in ["..", ".", ".hidden", "a/b", "a b", "baseline", "-x"] {
        let text = format!("overlap_views = {{ {:?} = 0.7 }}\n", name);
        let (code, err, _) = with_study("design", &text, &[]);
        assert_eq!(code, Some(2), "{name:?}: {err}");
        assert!(
            err.contains("is not usable as a folder name"),
            "{name:?}: {err}"
        );
    }
    let (code, err, _) = with_study(
        "design",
        "overlap_views = { Dense = 0.7, dense = 0.2 }\n",
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("differs from another only in case"), "{err}");
    let (code, err, _) = with_study("design", "overlap_views = { \"f0.7_v-1\" = 0.7 }\n", &[]);
    assert_eq!(code, Some(0), "{err}");
}

/// Defect 6: `gridsizes = [65536]` with `neighbor_count = 1` passed: 65536² wrapped to 0 in u32.
#[test]
fn gridsize_65536_does_not_wrap_the_oversampling_check() {
    let (code, err, _) = with_study("design", "gridsizes = [65536]\nneighbor_count = 1\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("gridsizes value 65536 is above 16"), "{err}");
    assert!(
        err.contains("neighbor_count=1 must be ≥ C=4294967296 for gridsize=65536"),
        "{err}"
    );
}

/// Defect 7: doses out of range gave silent nonsense (1e19 and up all in
/// `dose_9223372036854775807`, 1e300 all-zero data with exit 0, 1e-300 in `dose_0`).
#[test]
fn doses_out_of_range_are_refused() {
    for dose in ["1e18", "1e19", "1e300", "1e-300", "0.5"] {
        let text = format!("dose_list = [1e3, {dose}]\n");
        let (code, err, _) = with_study("design", &text, &[]);
        assert_eq!(code, Some(2), "{dose}: {err}");
        assert!(
            err.contains("doses must be between 1e0 and 1e15 photons per pattern"),
            "{dose}: {err}"
        );
    }
    let (code, err, _) = with_study("design", "dose_list = [1e19, 2e19]\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(!err.contains("dose_9223372036854775807"), "{err}");
    // `generate --dose` is held to the same range.
    let dir = tempfile::tempdir().unwrap();
    let out = common::cli()
        .args(["generate", "--preset", "tiny", "--dose", "1e300", "--out"])
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("doses must be between 1e0 and 1e15"),
        "{}",
        stderr(&out)
    );
}

/// Defect 7 (all-zero data): `generate` refuses to write counts that are all zero.
#[test]
fn generate_refuses_all_zero_counts() {
    // One photon per pattern over 2 positions at this seed: no photon lands.
    let mut refused = None;
    for seed in 0..40 {
        let text = format!(
            "preset = 'tiny'\ndose_list = [1.0]\n[simulation]\nn_positions = 2\n[rng_seeds]\nsimulation = {seed}\n"
        );
        let (code, err, _) = with_study("generate", &text, &[]);
        if code == Some(2) {
            refused = Some(err);
            break;
        }
        assert_eq!(code, Some(0), "{err}");
    }
    let err = refused.expect("some seed gives no photon at dose 1 over 2 patterns");
    assert!(
        err.contains("gives no photon in any of the 2 patterns: the data would be all zeros"),
        "{err}"
    );
}

/// Defect 8: `base_npz = "/dev/zero"` in a study file was read until memory ran out (the
/// command line's `--base-npz /dev/zero` was refused at once).
#[test]
fn base_npz_dev_zero_in_a_study_file_is_refused() {
    for cmd in ["generate", "study"] {
        let (code, err, took) = with_study(
            cmd,
            "preset = 'tiny'\n[simulation]\nbase_npz = '/dev/zero'\n",
            &[],
        );
        assert_eq!(code, Some(2), "{cmd}: {err}");
        assert!(
            err.contains("simulation.base_npz /dev/zero (in the study file) is not a file"),
            "{cmd}: {err}"
        );
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    // A study file that is itself a device is refused too.
    let (out, _) = run_limited(256, "", &[os("design"), os("--design"), os("/dev/zero")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
}

/// Defect 9: files `validate` accepted that `numpy.load` cannot read (local and central names
/// differ, version needed > 6.3, corrupt central-directory offset, size or signature). The
/// whole corpus is checked against NumPy in `parity`; this pins the verdicts without NumPy.
#[test]
fn zip_level_cases_numpy_refuses_are_invalid() {
    for name in [
        "local_name_differs.npz",
        "local_name_differs_deflated.npz",
        "version_64.npz",
        "cd_offset_plus_1.npz",
        "cd_offset_minus_1.npz",
        "cd_offset_zero.npz",
        "cd_size_zero.npz",
        "cd_size_minus_1.npz",
        "cd_signature_first.npz",
        "cd_signature_last.npz",
        "duplicate_member.npz",
        "nul_in_name.npz",
        "prepended_junk.npz",
        "header_over_10000.npz",
        "non_npy_bad_crc.npz",
    ] {
        let report = npz_contract::validate(&corpus(name), &Default::default());
        assert!(!report.valid, "{name} is called valid");
    }
    for name in ["valid_stored.npz", "version_63.npz", "archive_comment.npz"] {
        let report = npz_contract::validate(&corpus(name), &Default::default());
        assert!(report.valid, "{name}: {:?}", report.errors);
    }
}

/// Defect 10: a non-UTF-8 `--out` for `study` generated Phases C and D first, then failed
/// naming `--phase-c-root`, a flag the user never gave. Now refused before any work.
#[test]
fn non_utf8_study_out_is_refused_first_by_its_own_flag() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join(std::ffi::OsStr::from_bytes(b"study-\xff"));
    let (out, took) = run_limited(
        1024,
        "",
        &[
            os("study"),
            os("--preset"),
            os("tiny"),
            os("--out"),
            out_dir.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: --out "), "{err}");
    assert!(err.contains("is not valid UTF-8"), "{err}");
    assert!(!err.contains("--phase-c-root"), "{err}");
    assert!(!out_dir.exists());
    assert!(took < Duration::from_secs(2));
}

/// Defect 11: on a full disk, raw `ZipWriter drop failed: Io(Os { code: 28 ... })` reached
/// stderr with no newline, before the real error. A file-size limit (SIGXFSZ ignored: writes
/// fail with EFBIG) stands in for the full disk.
#[test]
fn a_failed_write_gives_one_clean_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let phase_c = dir.path().join("c");
    let (out, _) = run_limited(
        1024,
        "trap '' XFSZ; ulimit -f 200;",
        &[
            os("-q"),
            os("generate"),
            os("--preset"),
            os("tiny"),
            os("--out"),
            phase_c.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains("ZipWriter"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: Phase C failed: writing Phase C data: ")
            && err.ends_with("writing member 'diffraction': File too large (os error 27)\n"),
        "{err}"
    );
    // No half-written artifact is left behind.
    let left: Vec<PathBuf> = walk(&phase_c);
    assert!(left.is_empty(), "{left:?}");
}

/// Every case `cargo xtask fuzz` ever found (tests/fixtures/fuzz-regressions) stays fixed:
/// an NPZ is judged within 64 MiB (plus the binary's own footprint) and a second, a study file
/// accepted or refused within a second, and neither crashes (exit 101 or 134).
#[test]
fn fuzz_regressions_stay_fixed() {
    let dir = common::project_root().join("tests/fixtures/fuzz-regressions");
    for path in walk(&dir) {
        let args: Vec<&std::ffi::OsStr> = match path.extension().and_then(|e| e.to_str()) {
            Some("npz") => vec![os("validate"), path.as_os_str()],
            Some("toml" | "json") => vec![os("design"), os("--design"), path.as_os_str()],
            _ => continue,
        };
        let (out, took) = run_limited(64 + 96, "", &args);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "{}: exit {code:?}: {}",
            path.display(),
            stderr(&out)
        );
        assert!(
            took < Duration::from_secs(2),
            "{}: {took:?}",
            path.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files.extend(walk(&p));
            } else {
                files.push(p);
            }
        }
    }
    files
}
