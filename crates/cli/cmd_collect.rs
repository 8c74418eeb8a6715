//! `dose-overlap collect`: assembles `training_manifest.json` and `skip_summary.json` from a
//! plan's per-job results, exactly as a local `train` writes them (`run::collect`). Safe to
//! run again at any time; while SLURM tasks are still queued it says which and writes nothing.

use crate::progress::Progress;
use crate::run::{CommandLog, collect, pending_without_lock};
use runner::PLAN_FILE;
use runner::shell::shell_path;
use std::path::PathBuf;

/// The command's own log under the artifact root.
pub const COLLECT_LOG: &str = "collect_cli.log";

/// Arguments of `dose-overlap collect`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The artifact root of a `train` run (holding `plan.json`).
    #[arg(long, value_name = "DIR")]
    pub artifact_root: PathBuf,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let plan_file = args.artifact_root.join(PLAN_FILE);
    if !plan_file.is_file() {
        anyhow::bail!(
            "{} has no {PLAN_FILE}: run `dose-overlap train --artifact-root {}` first",
            args.artifact_root.display(),
            shell_path(&args.artifact_root)
        );
    }
    // One writer per root: not beside a running `train` or another `collect`. Running tasks
    // (`run-job`) hold it shared: then the answer is which tasks are not finished, as when
    // none had started yet, not that the root is busy.
    let _lock = match runner::RootLock::acquire(&args.artifact_root) {
        Ok(lock) => lock,
        Err(busy @ runner::LockError::Busy { .. }) => {
            if let Some(lines) = pending_without_lock(&args.artifact_root, &plan_file) {
                for line in lines {
                    crate::output::errln!("{line}");
                }
                return Ok(crate::exit::FAILURE);
            }
            return Err(busy.into());
        }
        Err(e) => return Err(e.into()),
    };
    let log = CommandLog::create(&args.artifact_root.join(COLLECT_LOG))?;
    // Collect has no long work to show; its messages go to stderr whatever --quiet says.
    let progress = Progress::new(true);
    let result = collect(&args.artifact_root, &plan_file, &progress, &log);
    log.finish(&result);
    result
}
