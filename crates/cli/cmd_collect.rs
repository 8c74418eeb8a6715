//! `dose-overlap collect`: assembles `training_manifest.json` and `skip_summary.json` from a
//! plan's per-job results, exactly as a local `train` writes them. Safe to run again at any
//! time; while SLURM tasks are still queued it says which and writes nothing.

use crate::cmd_train::{CommandLog, bundle_lines, finish_run};
use crate::exit;
use crate::progress::Progress;
use runner::shell::shell_path;
use runner::slurm::{SlurmCli, Submission};
use runner::{PLAN_FILE, Plan};
use std::path::{Path, PathBuf};

/// The command's own log under the artifact root.
pub const COLLECT_LOG: &str = "collect_cli.log";

/// Arguments of `dose-overlap collect`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The artifact root of a `train` run (holding `plan.json`).
    #[arg(long, value_name = "DIR")]
    pub artifact_root: PathBuf,
}

/// `dose-overlap collect --artifact-root <DIR>`, ready to copy into a shell.
pub fn collect_command(artifact_root: &Path) -> String {
    format!(
        "dose-overlap collect --artifact-root {}",
        shell_path(artifact_root)
    )
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
    // One writer per root: not beside a running `train` or another `collect`.
    let _lock = runner::RootLock::acquire(&args.artifact_root)?;
    let log = CommandLog::create(&args.artifact_root.join(COLLECT_LOG))?;
    // Collect has no long work to show; its messages go to stderr whatever --quiet says.
    let progress = Progress::new(true);
    let result = collect(&args.artifact_root, &plan_file, &progress, &log);
    log.finish(&result);
    result
}

/// Collects the results of the plan in `artifact_root` and, when nothing is pending, writes
/// the manifest and skip summary; returns the exit code.
pub fn collect(
    artifact_root: &Path,
    plan_file: &Path,
    progress: &Progress,
    log: &CommandLog,
) -> anyhow::Result<u8> {
    let (plan, plan_id) = Plan::read(plan_file)?;
    plan.check_location(plan_file)?;
    let submission = match Submission::read(artifact_root)? {
        Some(s) if s.plan_id == plan_id => Some(s),
        Some(_) => {
            log.error(
                progress,
                "note: slurm/submission.json belongs to an earlier plan; ignoring it",
            );
            None
        }
        None => None,
    };
    let collection = runner::collect(&plan, &plan_id, submission.as_ref(), &SlurmCli)?;
    if !collection.pending.is_empty() {
        const MAX_LISTED: usize = 20;
        log.error(
            progress,
            &format!(
                "{} of {} SLURM task(s) not finished yet; nothing written:",
                collection.pending.len(),
                plan.jobs.len()
            ),
        );
        for task in collection.pending.iter().take(MAX_LISTED) {
            let label = plan.jobs[task.index].job.label();
            log.error(
                progress,
                &format!(
                    "  {} ({label}, job {}): {}",
                    task.task, task.index, task.state
                ),
            );
        }
        if collection.pending.len() > MAX_LISTED {
            log.error(
                progress,
                &format!("  ... and {} more", collection.pending.len() - MAX_LISTED),
            );
        }
        log.error(
            progress,
            &format!(
                "run `{}` again when they are done",
                collect_command(artifact_root)
            ),
        );
        return Ok(exit::FAILURE);
    }
    for (planned, result) in plan.jobs.iter().zip(&collection.results) {
        for line in bundle_lines(planned, result) {
            log.out(&line);
        }
    }
    finish_run(&plan, &collection.results, progress, log)
}
