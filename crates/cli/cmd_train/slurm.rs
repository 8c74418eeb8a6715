//! `train --executor slurm`: writes the plan and the batch script, submits the job array(s)
//! with `sbatch --parsable`, records the submission, and with `--wait` polls `squeue` until the
//! tasks are done and then collects, exactly as `dose-overlap collect` does.
//!
//! A rerun resumes as a local run does: a job the job check verifies complete
//! (`runner::resume::decide`) keeps its result and is not submitted; the arrays hold only the
//! other jobs (task id = plan index minus the array's first index, so an array's task ids may
//! have gaps), and `submission.json` lists which tasks went out.

use crate::exit;
use crate::progress::Progress;
use crate::run::{CommandLog, collect, collect_command};
use anyhow::Context;
use runner::Plan;
use runner::resume::Decision;
use runner::slurm::{
    ArrayRequest, DEFAULT_MAX_ARRAY_SIZE, SCRIPT_FILE, SLURM_DIR, ScriptPaths, SlurmCli,
    SlurmSettings, Submission, SubmittedArray, array_chunks, render_script, task_list_spec,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a finished array's tasks may take to let go of the root's lock after squeue
/// stops listing them.
const TASK_EXIT_PATIENCE: Duration = Duration::from_secs(60);

/// `--executor slurm`'s settings, resolved.
#[derive(Debug, PartialEq)]
pub struct Options {
    /// What `sbatch` is given.
    pub settings: SlurmSettings,
    /// `--max-array-size` (`None`: the cluster's MaxArraySize).
    pub max_array_size: Option<usize>,
    /// `--wait`: poll `squeue` every this many seconds (`--poll-interval`) until the tasks are
    /// done, then collect.
    pub wait: Option<u64>,
}

fn absolute(path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("cannot resolve {what} {}", path.display()))
}

/// Submits `plan` as SLURM job array(s); see the module doc.
pub fn submit(
    options: &Options,
    dry_run: bool,
    force: bool,
    plan: &Plan,
    progress: &Progress,
    log: &CommandLog,
    lock: &runner::RootLock,
) -> anyhow::Result<u8> {
    let artifact_root = Path::new(&plan.artifact_root);
    let slurm_dir = artifact_root.join(SLURM_DIR);
    std::fs::create_dir_all(&slurm_dir)
        .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    // The jobs to submit: every job for a dry run (it previews the whole plan) or with
    // --force, else those the job check does not verify complete.
    let decisions = if dry_run {
        None
    } else {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let decisions = runner::resume::decide(plan, force, threads);
        super::report_decisions(plan, &decisions, progress, log);
        Some(decisions)
    };
    let plan_id = plan.write()?;
    let mut to_run = Vec::with_capacity(plan.jobs.len());
    match decisions {
        None => {
            // Results of an earlier run of the same plan must not pass for this run's.
            runner::clear_results(plan)?;
            to_run.extend(0..plan.jobs.len());
        }
        Some(decisions) => {
            for (planned, decision) in plan.jobs.iter().zip(decisions) {
                match decision {
                    Decision::Skip(record) => runner::resume::adopt(&record, planned, &plan_id)
                        .with_context(|| {
                            format!("updating the result of {}", planned.job.label())
                        })?,
                    Decision::Run(_) => {
                        // No stale claim: a job about to run has no result until its task
                        // writes one.
                        let path = planned.job.artifact_dir.join(runner::RESULT_FILE);
                        match std::fs::remove_file(&path) {
                            Err(e)
                                if !matches!(
                                    e.kind(),
                                    std::io::ErrorKind::NotFound
                                        | std::io::ErrorKind::NotADirectory
                                ) =>
                            {
                                return Err(e)
                                    .with_context(|| format!("removing {}", path.display()));
                            }
                            _ => {}
                        }
                        to_run.push(planned.index);
                    }
                }
            }
        }
    }
    let settings = &options.settings;
    let paths = ScriptPaths {
        exe: std::env::current_exe().context("cannot find the dose-overlap binary")?,
        plan: absolute(&plan.path(), "the plan")?,
        slurm_dir: absolute(&slurm_dir, "the SLURM folder")?,
        workdir: std::env::current_dir().context("cannot read the current folder")?,
    };
    let script = render_script(plan, settings, &paths);
    let script_path = slurm_dir.join(SCRIPT_FILE);
    npz_contract::atomic::write_atomic(&script_path, script.as_bytes())?;

    if dry_run {
        // The plan is that of the real run, so `sbatch` on the script runs it as previewed.
        log.note(
            progress,
            &format!(
                "--dry-run: nothing submitted; submit the previewed run with: sbatch {}",
                runner::shell::shell_path(&script_path)
            ),
        );
        crate::output::emit(&script);
        crate::output::emit(&plan.to_json()?);
        return Ok(exit::OK);
    }

    let cli = SlurmCli;
    let max = match options.max_array_size {
        Some(n) => n,
        None => cli.max_array_size().unwrap_or_else(|e| {
            log.note(
                progress,
                &format!(
                    "note: {e}; assuming SLURM's default MaxArraySize {DEFAULT_MAX_ARRAY_SIZE}"
                ),
            );
            DEFAULT_MAX_ARRAY_SIZE
        }),
    };
    // The tasks take the root's lock shared as they start (maybe before sbatch returns):
    // from here this run shares it with them, still keeping out another writer.
    lock.share()?;
    let mut submission = Submission {
        format_version: runner::slurm::SUBMISSION_FORMAT_VERSION,
        plan_id: plan_id.clone(),
        arrays: Vec::new(),
    };
    for (first, count) in array_chunks(plan.jobs.len(), max) {
        let tasks: Vec<usize> = to_run
            .iter()
            .filter(|&&i| (first..first + count).contains(&i))
            .map(|&i| i - first)
            .collect();
        if tasks.is_empty() {
            continue;
        }
        let request = ArrayRequest {
            script: &script_path,
            tasks: &tasks,
            settings,
            dependency: None,
            script_args: &[first.to_string()],
        };
        match cli.submit_array(&request) {
            Ok(job_id) => {
                let which = if tasks.len() == count {
                    format!("jobs {first}-{}", first + count - 1)
                } else {
                    let jobs: Vec<usize> = tasks.iter().map(|t| t + first).collect();
                    format!("jobs {}", task_list_spec(&jobs, 0))
                };
                log.out(&format!(
                    "→ Submitted SLURM array job {job_id}: {} task(s), {which} of {}",
                    tasks.len(),
                    plan.path().display()
                ));
                submission.arrays.push(SubmittedArray {
                    job_id,
                    first_index: first,
                    count,
                    tasks: (tasks.len() != count).then_some(tasks),
                });
            }
            Err(e) => {
                // Record what did go out, so that collect names those tasks.
                submission.write(artifact_root)?;
                return Err(e).context(format!(
                    "submitting jobs {first}-{} ({} array(s) submitted before)",
                    first + count - 1,
                    submission.arrays.len()
                ));
            }
        }
    }
    submission.write(artifact_root)?;
    if submission.arrays.is_empty() {
        // Nothing to run: the manifest is assembled from the verified results at once.
        lock.exclusive_again(Duration::ZERO)?;
        log.note(
            progress,
            "SLURM: every job is verified complete; nothing submitted",
        );
        return collect(artifact_root, &plan.path(), progress, log);
    }
    let Some(poll_seconds) = options.wait else {
        log.out(&format!(
            "→ When the tasks are done: {}",
            collect_command(artifact_root)
        ));
        return Ok(exit::OK);
    };
    if !wait_for(&submission, artifact_root, poll_seconds, progress, log)? {
        return Ok(exit::FAILURE);
    }
    // The manifest is written alone, as `collect` would.
    lock.exclusive_again(TASK_EXIT_PATIENCE)?;
    collect(artifact_root, &plan.path(), progress, log)
}

/// Polls squeue until no task of `submission` is queued or running (true); Ctrl-C or SIGTERM
/// stops waiting (false), while the tasks keep running on the cluster.
fn wait_for(
    submission: &Submission,
    artifact_root: &Path,
    poll_seconds: u64,
    progress: &Progress,
    log: &CommandLog,
) -> anyhow::Result<bool> {
    use runner::slurm::Scheduler;
    let cancel = crate::signals::token()?;
    let ids: Vec<String> = submission.arrays.iter().map(|a| a.job_id.clone()).collect();
    let mut last = String::new();
    loop {
        let queued = SlurmCli.queued(&ids)?;
        if queued.is_empty() {
            log.note(progress, "SLURM: every task has finished");
            return Ok(true);
        }
        let mut counts = std::collections::BTreeMap::new();
        for state in queued.values() {
            *counts.entry(state.as_str()).or_insert(0usize) += 1;
        }
        let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let summary = format!("SLURM: {}", summary.join(", "));
        if summary != last {
            log.note(progress, &summary);
            last = summary;
        }
        for _ in 0..poll_seconds * 10 {
            if cancel.is_cancelled() {
                log.error(
                    progress,
                    &format!(
                        "stopped waiting ({}); the tasks keep running on the cluster: collect \
                         them later with `{}`",
                        cancel.cause(),
                        collect_command(artifact_root)
                    ),
                );
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
