//! `train --executor slurm`: writes the plan and the batch script, submits the job array(s)
//! with `sbatch --parsable`, records the submission, and with `--wait` polls `squeue` until the
//! tasks are done and then collects, exactly as `dose-overlap collect` does.

use crate::exit;
use crate::progress::Progress;
use crate::run::{CommandLog, collect, collect_command};
use anyhow::Context;
use runner::Plan;
use runner::slurm::{
    DEFAULT_MAX_ARRAY_SIZE, SCRIPT_FILE, SLURM_DIR, ScriptPaths, SlurmCli, SlurmSettings,
    Submission, SubmittedArray, array_chunks, render_script,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    plan: &Plan,
    progress: &Progress,
    log: &CommandLog,
) -> anyhow::Result<u8> {
    let artifact_root = Path::new(&plan.artifact_root);
    let slurm_dir = artifact_root.join(SLURM_DIR);
    std::fs::create_dir_all(&slurm_dir)
        .with_context(|| format!("cannot create {}", slurm_dir.display()))?;
    // Results of an earlier run of the same plan must not pass for this run's.
    runner::clear_results(plan)?;
    let plan_id = plan.write()?;
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
    let mut submission = Submission {
        format_version: runner::slurm::SUBMISSION_FORMAT_VERSION,
        plan_id: plan_id.clone(),
        arrays: Vec::new(),
    };
    for (first, count) in array_chunks(plan.jobs.len(), max) {
        match cli.submit(&script_path, first, count, settings) {
            Ok(job_id) => {
                log.out(&format!(
                    "→ Submitted SLURM array job {job_id}: {count} task(s), jobs {first}-{} of {}",
                    first + count - 1,
                    plan.path().display()
                ));
                submission.arrays.push(SubmittedArray {
                    job_id,
                    first_index: first,
                    count,
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
