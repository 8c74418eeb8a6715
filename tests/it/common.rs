//! Running the built binary, and snapshot settings that store snapshots under `golden/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// The repository root (where `golden/` lives).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `dose-overlap` command with a fixed `SOURCE_DATE_EPOCH` and no inherited trainer path or
/// interpreter.
pub fn cli() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_dose-overlap"));
    cmd.env("SOURCE_DATE_EPOCH", "1762245266")
        .env_remove("PTYCHO_TRAIN")
        .env_remove("PTYCHO_PYTHON")
        .env_remove("PTYCHI_PYTHON")
        .env_remove("RUST_LOG");
    cmd
}

/// Formats a finished command as one text block: exit code, stdout, stderr, with `root`
/// replaced by `[ROOT]` so that temporary folders do not leak into snapshots.
pub fn render(output: &Output, root: Option<&Path>) -> String {
    let mut text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("signal".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    if let Some(root) = root {
        // Canonical and given forms differ on some systems (/tmp vs /private/tmp).
        for form in [root.canonicalize().ok(), Some(root.to_path_buf())]
            .into_iter()
            .flatten()
        {
            text = text.replace(&form.display().to_string(), "[ROOT]");
        }
    }
    text
}

/// insta settings that read and write snapshots in `golden/snapshots`.
pub fn golden_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(project_root().join("golden/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// Runs `cmd`, renders it with [`render`], asserts it against the snapshot `name` in
/// `golden/snapshots`, and returns the output for further checks.
#[macro_export]
macro_rules! cli_snapshot {
    ($name:expr, $cmd:expr, $root:expr) => {{
        let output = $cmd.output().expect("the dose-overlap binary runs");
        let text = $crate::common::render(&output, Some($root));
        $crate::common::golden_settings().bind(|| insta::assert_snapshot!($name, text));
        output
    }};
}

/// Runs a Python snippet with NumPy (`sys.argv[1:]` = `args`) and returns its stdout; fails
/// with how to install NumPy when it is missing, and with Python's stderr when the snippet fails.
pub fn python_numpy<A: AsRef<std::ffi::OsStr>>(script: &str, args: &[A]) -> String {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "the NumPy interop tests need python3 with numpy: install it with \
         `python3 -m pip install numpy` (.ci/run does this)"
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python prints UTF-8")
}

/// A JSON file, parsed; panics naming the file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Asserts that a command exited 0, showing its stdout and stderr when it did not.
pub fn succeeded(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `train` exited 1 and the job's `result.json` (at `result`) names the failure: its `error`
/// holds `message`. `case` names the stand-in's mode in the failure text.
pub fn job_failed_with(output: &Output, result: &Path, case: &str, message: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{case}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = read_json(result);
    let error = result["result"]["error"].as_str().unwrap();
    assert!(error.contains(message), "{case}: {error}");
}

/// The JSON Schemas of `schemas/`, by the artifact file name each describes.
pub const SCHEMAS: [(&str, &str); 6] = [
    ("training_manifest.json", "training_manifest.schema.json"),
    ("skip_summary.json", "skip_summary.schema.json"),
    ("result.json", "result.schema.json"),
    ("training_config.json", "training_config.schema.json"),
    ("plan.json", "plan.schema.json"),
    ("overlap_report.json", "overlap_report.schema.json"),
];

/// Validates `value` against `schemas/<schema>`; the error lists what does not conform.
pub fn schema_errors(schema: &str, value: &serde_json::Value) -> Result<(), String> {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let path = project_root().join("schemas").join(schema);
    let index = compiler
        .compile(&path.display().to_string(), &mut schemas)
        .unwrap_or_else(|e| panic!("schema {}: {e:#}", path.display()));
    schemas.validate(value, index).map_err(|e| format!("{e:#}"))
}

/// Validates every artifact under `dir` that has a schema (by file name) and returns how many
/// it checked; panics naming the file and what does not conform.
pub fn validate_artifacts(dir: &Path) -> usize {
    let mut stack = vec![dir.to_path_buf()];
    let mut checked = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((_, schema)) = SCHEMAS.iter().find(|(file, _)| *file == name) {
                if let Err(e) = schema_errors(schema, &read_json(&path)) {
                    panic!(
                        "{} does not conform to schemas/{schema}:\n{e}",
                        path.display()
                    );
                }
                checked += 1;
            }
        }
    }
    checked
}

/// Whether process `pid` runs (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Waits up to 5 s for process `pid` to be gone; fails naming `what`.
pub fn wait_gone(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "{what} (pid {pid}) is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes an executable script (a stand-in trainer, interpreter or tool) to `path`.
pub fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for PtychoPINN's interpreter with Python's standard library only (no NumPy):
/// instead of running the inference adapter it writes each split's `objectGuess` as the
/// reconstruction (a perfect PtychoPINN), copying the `.npy` member between the archives. A
/// fake trainer's job is then scored, as a real one's is (`$PTYCHO_PYTHON`).
pub fn write_stdlib_python(path: &Path) {
    let script = r#"#!/bin/sh
adapter="$1"; shift
while [ $# -gt 0 ]; do
  case "$1" in --train) train="$2";; --test) test="$2";; --out) out="$2";; esac
  shift 2
done
exec python3 -c '
import sys, zipfile
tr, te, out = sys.argv[1:4]
with zipfile.ZipFile(out, "w") as z:
    for name, src in (("train_object.npy", tr), ("test_object.npy", te)):
        with zipfile.ZipFile(src) as s:
            z.writestr(name, s.read("objectGuess.npy"))
' "$train" "$test" "$out"
"#;
    write_script(path, script);
}

/// Copies a folder tree (files and folders; tests' trees hold no links).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `dose-overlap -q study --backends BACKENDS --out s --design FILE` run in `root`, FILE holding
/// `design`, with `$INTERPRETER_VAR` naming `root/python` (a test's stand-in interpreter);
/// its output, for the test to check.
pub fn stand_in_study(root: &Path, design: &str, backends: &str, interpreter_var: &str) -> Output {
    let file = root.join("study.toml");
    std::fs::write(&file, design).unwrap();
    cli()
        .current_dir(root)
        .args([
            "-q",
            "study",
            "--backends",
            backends,
            "--out",
            "s",
            "--design",
        ])
        .arg(&file)
        .env(interpreter_var, root.join("python"))
        .output()
        .unwrap()
}
