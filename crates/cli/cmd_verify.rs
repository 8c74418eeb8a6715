//! `dose-overlap verify ROOT`: re-hashes every bundle and input the manifest names and checks
//! manifest, `result.json` files and files on disk against each other (see
//! `reporting::verify`). Exit 0 when everything agrees, 1 listing every mismatch.

use crate::exit;
use crate::output::outln;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `dose-overlap verify`.
#[derive(clap::Args)]
pub struct Args {
    /// An artifact root (holding training_manifest.json) or a study folder (holding study.json).
    root: PathBuf,
}

/// `verify`'s settings (or built by `report --verify`).
pub struct Options {
    /// An artifact root or a study folder.
    pub root: PathBuf,
}

impl Args {
    /// Nothing to check: the root is read by [`execute`].
    pub fn resolve(self) -> Options {
        Options { root: self.root }
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<u8> {
    execute(&args.resolve())
}

/// Verifies the root, printing the verdict and every mismatch on stdout; returns the exit code.
pub fn execute(options: &Options) -> anyhow::Result<u8> {
    let root = &options.root;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let found = reporting::verify::verify(root, threads)
        .with_context(|| format!("verifying {}", root.display()))?;
    for problem in &found.problems {
        outln!("mismatch: {problem}");
    }
    outln!(
        "verify {}: {} artifact root(s), {} file(s) re-hashed, {} mismatch(es)",
        root.display(),
        found.roots.len(),
        found.hashed,
        found.problems.len()
    );
    Ok(if found.problems.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    })
}
