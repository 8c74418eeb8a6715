//! Collecting a plan run elsewhere (SLURM tasks, each a `run-job`): its per-job results merged
//! into the manifest and skip summary exactly as a local `train` writes them, or, while tasks
//! are still queued, which ones and nothing written.

use super::{CommandLog, bundle_lines, finish_run};
use crate::exit;
use crate::progress::Progress;
use runner::Plan;
use runner::shell::shell_path;
use runner::slurm::{SlurmCli, Submission};
use std::path::Path;

/// `dose-overlap collect --artifact-root <DIR>`, ready to copy into a shell.
pub fn collect_command(artifact_root: &Path) -> String {
    format!(
        "dose-overlap collect --artifact-root {}",
        shell_path(artifact_root)
    )
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
