//! Project automation (`cargo xtask ...`): the golden baseline run and its evidence folder, and
//! the real-trainer check (`pinn-check`), and the in-process fuzzer of hostile input (`fuzz`).
//! A library as well as a binary, so that the integration tests can run the real check mode.
//!
//! Keep dependencies few (anyhow, serde_json, sha2, and the crates the fuzzer exercises: the NPZ
//! contract, the study loader, the reporting library): xtask builds on every call.

pub mod baseline;
pub mod fuzz;
pub mod pinn;
mod textdiff;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// The command line of `cargo xtask`.
pub const USAGE: &str = "usage: cargo xtask baseline [--check | --bless] [--with-tests] [--out DIR] \
                     [--binary PATH] [--golden DIR]\n       cargo xtask pinn-check [--binary PATH] \
                     [--out DIR] [--epochs N]   (needs $PTYCHO_TRAIN and $PTYCHO_PYTHON)\n       \
                     cargo xtask fuzz [--target all|inputs|artifacts] [--seconds N] [--seed S] [--case N] \
                     [--binary PATH]";

/// Runs `cargo xtask ARGS...` and returns the exit code.
pub fn run(args: Vec<String>) -> anyhow::Result<u8> {
    let Some((task, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    match task.as_str() {
        "baseline" => Ok(baseline::run(baseline::Options::parse(rest)?)?.code),
        "pinn-check" => pinn::run(pinn::Options::parse(rest)?),
        "fuzz" => fuzz::run(fuzz::Options::parse(rest)?),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown task `{other}`\n{USAGE}"),
    }
}

/// The repository root (xtask lives one level below it).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the repository")
        .to_path_buf()
}

/// Runs `program args` in `cwd` and returns (success, stdout, stderr).
pub fn capture(
    program: &Path,
    args: &[&str],
    cwd: &Path,
) -> anyhow::Result<(bool, String, String)> {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .with_context(|| format!("running {} {}", program.display(), args.join(" ")))?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
