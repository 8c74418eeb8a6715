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
        for line in pending_lines(artifact_root, &plan, &collection) {
            log.error(progress, &line);
        }
        return Ok(exit::FAILURE);
    }
    for (planned, result) in plan.jobs.iter().zip(&collection.results) {
        for line in bundle_lines(planned, result) {
            log.out(&line);
        }
    }
    finish_run(&plan, &collection.results, progress, log)
}

/// What `collect` says of a plan whose SLURM tasks are not all finished: how many, each
/// (at most 20), and when to run it again.
fn pending_lines(
    artifact_root: &Path,
    plan: &Plan,
    collection: &runner::Collection,
) -> Vec<String> {
    const MAX_LISTED: usize = 20;
    let mut lines = vec![format!(
        "{} of {} SLURM task(s) not finished yet; nothing written:",
        collection.pending.len(),
        plan.jobs.len()
    )];
    for task in collection.pending.iter().take(MAX_LISTED) {
        let label = plan.jobs[task.index].job.label();
        lines.push(format!(
            "  {} ({label}, job {}): {}",
            task.task, task.index, task.state
        ));
    }
    if collection.pending.len() > MAX_LISTED {
        lines.push(format!(
            "  ... and {} more",
            collection.pending.len() - MAX_LISTED
        ));
    }
    lines.push(format!(
        "run `{}` again when they are done",
        collect_command(artifact_root)
    ));
    lines
}

/// The pending tasks' lines of the plan in `artifact_root`, read without writing anything
/// (for a `collect` that found the root held by running tasks); `None` when none is pending
/// or the plan cannot be read.
pub fn pending_without_lock(artifact_root: &Path, plan_file: &Path) -> Option<Vec<String>> {
    let (plan, plan_id) = Plan::read(plan_file).ok()?;
    let submission = Submission::read(artifact_root)
        .ok()
        .flatten()
        .filter(|s| s.plan_id == plan_id);
    let collection = runner::collect(&plan, &plan_id, submission.as_ref(), &SlurmCli).ok()?;
    (!collection.pending.is_empty()).then(|| pending_lines(artifact_root, &plan, &collection))
}
