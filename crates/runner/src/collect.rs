//! Gathering a plan's results from the jobs' `result.json` files: the same results a local run
//! holds in memory, so the manifest assembled from them has the same bytes. For a plan run
//! through SLURM, a job without a result is either still pending (reported, not assembled) or
//! a failed job whose error names its task, the task's state and exit code, and its log.

use crate::plan::{Plan, PlannedJob};
use crate::result::{FailedResult, InterruptedResult, JobResult, RESULT_FILE, ResultRecord};
use crate::slurm::{SLURM_DIR, Scheduler, SlurmError, Submission, TaskId};
use std::path::{Path, PathBuf};

/// A task that has not finished yet.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingTask {
    /// The job's index in the plan.
    pub index: usize,
    /// Its SLURM task.
    pub task: String,
    /// What squeue says (`PENDING`, `RUNNING`, ...).
    pub state: String,
}

/// What `collect` found.
#[derive(Clone, Debug, PartialEq)]
pub struct Collection {
    /// One result per job of the plan, in plan order (meaningful once nothing is pending).
    pub results: Vec<JobResult>,
    /// Tasks still queued or running.
    pub pending: Vec<PendingTask>,
}

/// A job's result from its `result.json`, if it holds one of this plan's job.
pub fn read_result(planned: &PlannedJob, plan_id: &str) -> Result<JobResult, String> {
    let path = planned.job.artifact_dir.join(RESULT_FILE);
    // A regular file only (never a link, a FIFO or a device), of bounded size.
    let text = match npz_contract::confine::read_to_string_capped(
        &path,
        npz_contract::confine::JSON_CAP,
    ) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("no {RESULT_FILE}"));
        }
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let record = ResultRecord::from_json(&text)
        .map_err(|e| format!("{} is unusable: {e}", path.display()))?;
    if record.plan_id != plan_id {
        return Err(format!(
            "{} belongs to another plan (an earlier run)",
            path.display()
        ));
    }
    if record.index != planned.index
        || record.view != planned.job.view
        || record.gridsize != planned.job.gridsize
        || record.dose != planned.job.dose
    {
        return Err(format!(
            "{} is the result of another job ({} at index {})",
            path.display(),
            record.view,
            record.index
        ));
    }
    Ok(record.result)
}

/// `<artifact_root>/slurm/<task>.<ext>` as the plan names the artifact root.
fn task_file(plan: &Plan, task: &TaskId, ext: &str) -> PathBuf {
    Path::new(&plan.artifact_root)
        .join(SLURM_DIR)
        .join(format!("{task}.{ext}"))
}

fn last_line(path: &Path) -> Option<String> {
    // The last 64 KiB of a regular file: a task's log may be large.
    use std::io::{Read, Seek, SeekFrom};
    let mut file = npz_contract::confine::open_regular(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .ok()?;
    let mut bytes = Vec::new();
    file.take(64 * 1024).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
}

/// `state FAILED, exit code 1:0, exit status 1 recorded by the task`: what SLURM (while it
/// remembers the task) and the task itself say about how it ended.
fn task_outcome(plan: &Plan, task: &TaskId, scheduler: &dyn Scheduler) -> String {
    let (state, exit_code) = scheduler.task_state(task).unwrap_or_else(|| {
        (
            "unknown (SLURM no longer lists it)".into(),
            "unknown".into(),
        )
    });
    let recorded =
        npz_contract::confine::read_to_string_capped(&task_file(plan, task, "exit"), 4096)
            .ok()
            .map(|s| format!(", exit status {} recorded by the task", s.trim()))
            .unwrap_or_default();
    format!("state {state}, exit code {exit_code}{recorded}")
}

/// Collects the results of `plan` (whose id is `plan_id`). `submission` and `scheduler` are
/// given for a plan run through SLURM.
pub fn collect(
    plan: &Plan,
    plan_id: &str,
    submission: Option<&Submission>,
    scheduler: &dyn Scheduler,
) -> Result<Collection, SlurmError> {
    let queued = match submission {
        Some(s) => {
            let ids: Vec<String> = s.arrays.iter().map(|a| a.job_id.clone()).collect();
            scheduler.queued(&ids)?
        }
        None => Default::default(),
    };
    let mut results = Vec::with_capacity(plan.jobs.len());
    let mut pending = Vec::new();
    for planned in &plan.jobs {
        let backend = planned.config.backend.as_str().to_string();
        let task = submission.and_then(|s| s.task_of(planned.index));
        // A task still queued is pending even if an older result.json is lying there.
        if let Some(task) = &task
            && let Some(state) = queued.get(&task.to_string())
        {
            pending.push(PendingTask {
                index: planned.index,
                task: task.to_string(),
                state: state.clone(),
            });
            results.push(JobResult::Failed(FailedResult {
                backend,
                error: format!("SLURM task {task} is still {state}"),
                loss_history: None,
            }));
            continue;
        }
        // Never read through a job folder that is a link to elsewhere.
        let found =
            crate::run::confined_dir(plan, planned).and_then(|_| read_result(planned, plan_id));
        let result = match (found, &task) {
            (Ok(mut result), Some(task)) => {
                // A failed or interrupted job's own error, and where to look on the cluster's
                // side.
                if let JobResult::Failed(FailedResult { error, .. })
                | JobResult::Interrupted(InterruptedResult { error, .. }) = &mut result
                {
                    *error = format!(
                        "{error} (SLURM task {task}: {}; log {})",
                        task_outcome(plan, task, scheduler),
                        task_file(plan, task, "log").display()
                    );
                }
                result
            }
            (Ok(result), None) => result,
            (Err(why), Some(task)) => {
                let log = task_file(plan, task, "log");
                let tail = last_line(&log)
                    .map(|l| format!(" (last line: `{l}`)"))
                    .unwrap_or_default();
                JobResult::Failed(FailedResult {
                    backend,
                    error: format!(
                        "SLURM task {task} ended without a result ({why}): {}; see its log {}{tail}",
                        task_outcome(plan, task, scheduler),
                        log.display()
                    ),
                    loss_history: None,
                })
            }
            (Err(why), None) => {
                let never = match submission {
                    Some(_) => "it was never submitted to SLURM",
                    None => "the job never finished (interrupted, or not run yet)",
                };
                JobResult::Failed(FailedResult {
                    backend,
                    error: format!(
                        "no result ({why}): {never}; run it with `{}`",
                        plan.run_job_command(planned.index)
                    ),
                    loss_history: None,
                })
            }
        };
        results.push(result);
    }
    Ok(Collection { results, pending })
}
