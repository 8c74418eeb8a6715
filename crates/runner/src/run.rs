//! Running jobs of a plan: one job end to end ([`run_job`]), and the local executor that runs
//! them on N threads with results reported in matrix order ([`execute`]).

use crate::backend::{Backend, BackendError, BackendOutcome, JobContext};
use crate::cancel::CancelToken;
use crate::cores::SpareCores;
use crate::digest::{checked_bundle, hash_bundle, relative_bundle_path};
use crate::log::JobLog;
use crate::plan::{Plan, PlannedJob};
use crate::result::{
    DryRunSummary, FailedResult, InterruptedResult, JobResult, RESULT_FILE, RESULT_FORMAT_VERSION,
    ResultRecord, TrainedResult,
};
use job_matrix::format_dose;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The marker line every job log carries (the original system's, which people grep for).
pub const LOG_MARKER: &str = "Phase E5 Training Execution";

/// What a running job shares with the rest of the run.
#[derive(Clone, Copy)]
pub struct RunContext<'a> {
    /// The plan's id ([`Plan::id_of`]), recorded in every `result.json`.
    pub plan_id: &'a str,
    /// Ctrl-C / SIGTERM.
    pub cancel: &'a CancelToken,
    /// One line of progress (the command shows it on stderr).
    pub progress: &'a (dyn Fn(&str) + Sync),
    /// Threads one job may use (cores shared among the jobs running at once). A resource
    /// hint, not a setting: results must not depend on it.
    pub threads_per_job: usize,
    /// Where a worker that finds no job left puts its cores, for the jobs still running to
    /// borrow (`None`: nothing is lent).
    pub spare_cores: Option<&'a SpareCores>,
    /// Per-job limits (timeout, log size): how a job may run, not what it computes, so they
    /// are no part of the resolved config (and do not make a resumed job rerun).
    pub limits: JobLimits,
}

/// How long a job may run and how much trainer output its log keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JobLimits {
    /// `--job-timeout`: the job fails (its trainer's process group stopped) past it.
    pub timeout: Option<Duration>,
    /// `--log-limit`: bytes of trainer output kept in `train.log`.
    pub log_limit: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            timeout: None,
            log_limit: crate::log::DEFAULT_LOG_LIMIT,
        }
    }
}

/// `90s`, `5m`, `1h30m`, `2h`, or plain seconds (`45`): a `--job-timeout`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("'{text}' is not a duration: give e.g. 90s, 30m, 2h, 1h30m or a number of seconds")
    };
    let text_trim = text.trim();
    if let Ok(seconds) = text_trim.parse::<u64>() {
        return (seconds > 0)
            .then(|| Duration::from_secs(seconds))
            .ok_or_else(bad);
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text_trim.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `1h30m`, `45s`: a duration as [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    let s = duration.as_secs();
    let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

fn failed(planned: &PlannedJob, error: String) -> JobResult {
    JobResult::Failed(FailedResult {
        backend: planned.config.backend.as_str().to_string(),
        error,
        loss_history: None,
    })
}

fn interrupted(
    planned: &PlannedJob,
    plan: &Plan,
    cancel: &CancelToken,
    started: bool,
) -> JobResult {
    let when = if started {
        "while it was running"
    } else {
        "before it started"
    };
    JobResult::Interrupted(InterruptedResult {
        backend: planned.config.backend.as_str().to_string(),
        started,
        error: format!(
            "interrupted by {} {when}; rerun `dose-overlap train` with the same arguments, or \
             this job alone with `{}`",
            cancel.cause(),
            plan.run_job_command(planned.index)
        ),
    })
}

/// The result of a backend that says it trained: the bundle checked, hashed and measured.
fn success(planned: &PlannedJob, outcome: BackendOutcome) -> JobResult {
    let dir = &planned.job.artifact_dir;
    let bundle_path = match checked_bundle(&outcome.bundle, dir) {
        Ok(path) => path,
        Err(e) => {
            return failed(
                planned,
                format!(
                    "the {} backend reported a bad bundle: {e}",
                    planned.config.backend
                ),
            );
        }
    };
    let (bundle_sha256, bundle_size_bytes) = match hash_bundle(&outcome.bundle) {
        Ok(digest) => digest,
        Err(e) => {
            return failed(
                planned,
                format!("cannot read the bundle {}: {e}", outcome.bundle.display()),
            );
        }
    };
    if bundle_size_bytes == 0 {
        return failed(
            planned,
            format!(
                "the {} backend wrote an empty bundle {}",
                planned.config.backend,
                outcome.bundle.display()
            ),
        );
    }
    JobResult::Success(TrainedResult {
        backend: planned.config.backend.as_str().to_string(),
        final_loss: outcome.final_loss,
        epochs_completed: outcome.epochs_completed,
        bundle_path,
        bundle_sha256,
        bundle_size_bytes,
        loss_history: outcome.loss_history,
        metrics: outcome.metrics,
        solver: outcome.solver,
        reconstruction_path: outcome
            .reconstruction
            .and_then(|p| relative_bundle_path(&p, dir)),
        scoring_error: outcome.scoring_error,
        pinn: outcome.pinn,
    })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

fn header(log: &mut JobLog, plan: &Plan, planned: &PlannedJob) {
    let job = &planned.job;
    let rule = "=".repeat(80);
    // One write for the whole header: cheap at 10,000 jobs, and never half a header.
    log.line(&format!(
        "{rule}\n{LOG_MARKER} — {} (dose={}, gridsize={})\n{rule}\n\
         Job: {} (index {} of {} in the plan)\n\
         Train dataset: {}\n\
         Test dataset: {}\n\
         Output directory: {}\n\
         Backend: {}\n\
         nphotons: {:?}\n\
         Epochs: {}\n\
         Resolved config: {}",
        job.view,
        format_dose(job.dose),
        job.gridsize,
        job.label(),
        planned.index,
        plan.jobs.len(),
        job.train_data_path.display(),
        job.test_data_path.display(),
        job.artifact_dir.display(),
        planned.config.backend,
        planned.config.nphotons,
        planned.config.epochs,
        planned.config.path().display()
    ));
}

fn outcome_line(result: &JobResult) -> String {
    match result {
        JobResult::DryRun(_) => "Outcome: dry run (nothing executed)".to_string(),
        JobResult::Success(r) => format!(
            "Outcome: success — bundle {} ({} bytes, SHA-256 {}), {} epoch(s), final loss {}",
            r.bundle_path,
            r.bundle_size_bytes,
            r.bundle_sha256,
            r.epochs_completed,
            r.final_loss.map_or("none".to_string(), |l| l.to_string())
        ),
        JobResult::Failed(r) => format!("Outcome: failed — {}", r.error),
        JobResult::Interrupted(r) => format!("Outcome: interrupted — {}", r.error),
    }
}

/// Runs job `index` of `plan` end to end and returns its result:
///
/// 1. creates the artifact dir and the log (removing a `result.json` left by an earlier run);
/// 2. writes the resolved `training_config.json` atomically, before any backend code runs;
/// 3. a dry run stops here; otherwise `backend` trains from the config alone (a panic in a
///    backend fails the job, not the run);
/// 4. checks and hashes the bundle, writes the outcome to the log, and writes the result to
///    `<artifact_dir>/result.json` atomically.
///
/// Every problem becomes a failed result with a message a person can act on; this function
/// does not return errors, so one job never stops the others.
pub fn run_job(
    plan: &Plan,
    index: usize,
    backend: &dyn Backend,
    ctx: &RunContext<'_>,
) -> JobResult {
    let planned = &plan.jobs[index];
    let job = &planned.job;
    // A job folder (or a folder above it) that is a link to elsewhere is never written through.
    if let Err(e) = confined_dir(plan, planned) {
        return failed(planned, e);
    }
    if let Err(e) = std::fs::create_dir_all(&job.artifact_dir) {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
            "; a file is in the way: move it, or give another --artifact-root"
        } else {
            ""
        };
        return failed(
            planned,
            format!(
                "cannot create the artifact dir {}: {e}{hint}",
                job.artifact_dir.display()
            ),
        );
    }
    let result_path = job.artifact_dir.join(RESULT_FILE);
    match std::fs::remove_file(&result_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return failed(
                planned,
                format!(
                    "cannot remove the earlier result {}: {e}",
                    result_path.display()
                ),
            );
        }
    }
    let mut stamp = Stamp::default();
    let mut log = match JobLog::create(&job.log_path) {
        Ok(log) => log.with_limit(ctx.limits.log_limit),
        Err(e) => {
            let result = failed(
                planned,
                format!("cannot create the job log {}: {e}", job.log_path.display()),
            );
            return record(planned, ctx, &result_path, result, None, stamp);
        }
    };
    header(&mut log, plan, planned);

    let config_json = planned.config.to_json();
    let written = config_json.map_err(|e| e.to_string()).and_then(|text| {
        stamp.config_sha256 = Some(crate::digest::sha256_bytes(text.as_bytes()));
        npz_contract::atomic::write_atomic(&planned.config.path(), text.as_bytes())
            .map_err(|e| e.to_string())
    });
    // The inputs as this job trains on them (a dry run reads nothing).
    let inputs = if plan.dry_run || written.is_err() {
        Ok(None)
    } else {
        crate::check::input_digests(&planned.config, ctx.threads_per_job.min(2)).map(Some)
    };
    let result = if let Err(e) = written {
        failed(
            planned,
            format!("cannot write the resolved training config: {e}"),
        )
    } else if plan.dry_run {
        log.line("DRY RUN: nothing executed.");
        JobResult::DryRun(DryRunSummary {
            dose: job.dose,
            view: job.view.clone(),
            gridsize: job.gridsize,
            train_data_path: job.train_data_path.clone(),
            test_data_path: job.test_data_path.clone(),
            artifact_dir: job.artifact_dir.clone(),
            log_path: job.log_path.clone(),
            backend: planned.config.backend.as_str().to_string(),
        })
    } else if let Err(e) = &inputs {
        failed(planned, e.clone())
    } else if ctx.cancel.is_cancelled() {
        interrupted(planned, plan, ctx.cancel, false)
    } else {
        stamp.inputs = inputs.ok().flatten();
        log.line("");
        let label = job.label();
        let (trained, timed_out) = {
            let mut job_ctx = JobContext::new(&mut log, ctx.cancel, ctx.progress, &label)
                .with_threads(ctx.threads_per_job)
                .with_spare_cores(ctx.spare_cores)
                .with_timeout(ctx.limits.timeout);
            let trained = std::panic::catch_unwind(AssertUnwindSafe(|| {
                backend.train(&planned.config, &mut job_ctx)
            }));
            (trained, job_ctx.timed_out() && !ctx.cancel.is_cancelled())
        };
        match trained {
            Ok(Ok(outcome)) => success(planned, outcome),
            Ok(Err(BackendError::Failed(error))) => failed(planned, error),
            Ok(Err(BackendError::Interrupted)) if timed_out => failed(
                planned,
                format!(
                    "timed out after {} (--job-timeout); the job and every process it started \
                     were stopped: give a longer --job-timeout, or fewer epochs",
                    format_duration(ctx.limits.timeout.unwrap_or_default())
                ),
            ),
            Ok(Err(BackendError::FailedWithHistory {
                message,
                loss_history,
            })) => JobResult::Failed(FailedResult {
                backend: planned.config.backend.as_str().to_string(),
                error: message,
                loss_history: Some(loss_history),
            }),
            Ok(Err(BackendError::Interrupted)) => interrupted(planned, plan, ctx.cancel, true),
            Err(payload) => failed(
                planned,
                format!(
                    "the {} backend crashed (a bug: please report it with the job log {}): {}",
                    backend.name(),
                    job.log_path.display(),
                    panic_message(payload.as_ref())
                ),
            ),
        }
    };
    record(planned, ctx, &result_path, result, Some(log), stamp)
}

/// What a result records about the job's inputs when it ran (for resuming and `verify`).
#[derive(Default)]
struct Stamp {
    config_sha256: Option<String>,
    inputs: Option<crate::result::InputDigests>,
}

/// Writes the outcome to the log and the result to `result.json`; a log that could not be
/// written, or a result that cannot be saved, turns the job into a failure.
fn record(
    planned: &PlannedJob,
    ctx: &RunContext<'_>,
    result_path: &Path,
    mut result: JobResult,
    log: Option<JobLog>,
    stamp: Stamp,
) -> JobResult {
    if let Some(mut log) = log {
        log.line(&format!("\n{}", outcome_line(&result)));
        let _ = log.sync();
        if let Some(e) = log.take_error()
            && result.is_ok()
        {
            result = failed(
                planned,
                format!(
                    "cannot write the job log {}: {e}",
                    planned.job.log_path.display()
                ),
            );
        }
    }
    let record = ResultRecord {
        format_version: RESULT_FORMAT_VERSION,
        plan_id: ctx.plan_id.to_string(),
        index: planned.index,
        dose: planned.job.dose,
        view: planned.job.view.clone(),
        gridsize: planned.job.gridsize,
        result,
        config_sha256: stamp.config_sha256,
        inputs: stamp.inputs,
    };
    let saved = record
        .to_json()
        .map_err(|e| e.to_string())
        .and_then(|text| {
            npz_contract::atomic::write_atomic(result_path, text.as_bytes())
                .map_err(|e| e.to_string())
        });
    match saved {
        Ok(()) => record.result,
        Err(e) => failed(
            planned,
            format!("the job ran but its result could not be saved: {e}"),
        ),
    }
}

/// Removes the `result.json` of every job of `plan`, so that results on disk are this run's
/// only (a job that never starts must not show an earlier run's result to `collect`).
pub fn clear_results(plan: &Plan) -> std::io::Result<()> {
    for planned in &plan.jobs {
        remove_result(plan, planned)?;
    }
    Ok(())
}

/// The artifact dir of `planned`, confined under the plan's artifact root: no folder below the
/// root on the way to it is a symbolic link (a job folder that is a link to elsewhere is
/// never read or written through). Folders that do not exist yet are fine.
pub fn confined_dir(plan: &Plan, planned: &PlannedJob) -> Result<std::path::PathBuf, String> {
    let root = Path::new(&plan.artifact_root);
    let dir = &planned.job.artifact_dir;
    let rel = dir.strip_prefix(root).map_err(|_| {
        format!(
            "the artifact dir {} is outside the artifact root {}",
            dir.display(),
            root.display()
        )
    })?;
    npz_contract::confine::join(root, rel).map_err(|e| {
        format!(
            "the artifact dir {} is not written through: {e}",
            dir.display()
        )
    })
}

/// Removes the `result.json` of `planned` (a job about to run has none until it has a new one),
/// never through a link: a job dir that is a link is left alone (the job then fails on its own,
/// with its own message).
pub fn remove_result(plan: &Plan, planned: &PlannedJob) -> std::io::Result<()> {
    if confined_dir(plan, planned).is_err() {
        return Ok(());
    }
    let path = planned.job.artifact_dir.join(RESULT_FILE);
    match std::fs::remove_file(&path) {
        // No file there (or a file where a folder of the path should be: then that job
        // fails on its own, with its own message, and the others still run).
        Err(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Err(std::io::Error::new(
                e.kind(),
                format!("cannot remove the earlier result {}: {e}", path.display()),
            ))
        }
        _ => Ok(()),
    }
}

/// The order jobs start in: the largest first by the bytes of their two input files (their
/// cost grows with positions x N^2 as the files do), ties in matrix order. Longest first keeps
/// a large job from starting last and running alone while the other cores idle (measured on
/// the default study, matrix order left its last baseline job alone for its last 10 s). What a
/// job writes does not depend on when it starts, and results are reported in matrix order.
/// A file that cannot be read counts 0 bytes (the job then fails with its own error).
fn start_order(plan: &Plan, mut jobs: Vec<usize>) -> Vec<usize> {
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let cost: Vec<u64> = jobs
        .iter()
        .map(|&i| {
            let job = &plan.jobs[i].job;
            size(&job.train_data_path).saturating_add(size(&job.test_data_path))
        })
        .collect();
    let mut keyed: Vec<(u64, usize)> = cost.into_iter().zip(jobs.iter().copied()).collect();
    keyed.sort_by_key(|&(c, i)| (std::cmp::Reverse(c), i));
    jobs.clear();
    jobs.extend(keyed.into_iter().map(|(_, i)| i));
    jobs
}

/// Runs every job of `plan` on `threads` threads (the largest first: see [`start_order`]) and
/// returns the results in matrix order. `on_finished` sees each job's result in matrix order as soon as
/// that job and all before it are done, so output is the same for any thread count.
///
/// On cancellation, running jobs stop (their backends see the flag), no new job starts, and
/// jobs never started get an `interrupted` result.
pub fn execute(
    plan: &Plan,
    threads: usize,
    backend: &dyn Backend,
    ctx: &RunContext<'_>,
    on_finished: &(dyn Fn(&PlannedJob, &JobResult) + Sync),
) -> Vec<JobResult> {
    let done = vec![None; plan.jobs.len()];
    execute_resumed(plan, threads, backend, ctx, done, &|_| {}, on_finished)
}

/// [`execute`] for a resumed run: jobs whose `done[i]` holds a result (verified complete) are
/// not run; that result is theirs. `on_started` is called with a job's index as it starts.
pub fn execute_resumed(
    plan: &Plan,
    threads: usize,
    backend: &dyn Backend,
    ctx: &RunContext<'_>,
    done: Vec<Option<JobResult>>,
    on_started: &(dyn Fn(usize) + Sync),
    on_finished: &(dyn Fn(&PlannedJob, &JobResult) + Sync),
) -> Vec<JobResult> {
    struct Ordered {
        results: Vec<Option<JobResult>>,
        emitted: usize,
    }
    impl Ordered {
        fn emit_ready(
            &mut self,
            plan: &Plan,
            on_finished: &(dyn Fn(&PlannedJob, &JobResult) + Sync),
        ) {
            while let Some(Some(result)) = self.results.get(self.emitted) {
                on_finished(&plan.jobs[self.emitted], result);
                self.emitted += 1;
            }
        }
    }
    let n = plan.jobs.len();
    assert_eq!(done.len(), n, "one entry per job");
    let to_run = start_order(plan, (0..n).filter(|&i| done[i].is_none()).collect());
    let next = AtomicUsize::new(0);
    let state = Mutex::new(Ordered {
        results: done,
        emitted: 0,
    });
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    lock().emit_ready(plan, on_finished);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, to_run.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if ctx.cancel.is_cancelled() {
                        break;
                    }
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&index) = to_run.get(k) else {
                        // Nothing left to start: this worker's cores go to the jobs still
                        // running.
                        if let Some(spare) = ctx.spare_cores {
                            spare.give(ctx.threads_per_job);
                        }
                        break;
                    };
                    on_started(index);
                    let result = run_job(plan, index, backend, ctx);
                    let mut ordered = lock();
                    ordered.results[index] = Some(result);
                    ordered.emit_ready(plan, on_finished);
                }
            });
        }
    });
    let mut ordered = lock();
    for (index, slot) in ordered.results.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = Some(interrupted(&plan.jobs[index], plan, ctx.cancel, false));
        }
    }
    ordered.emit_ready(plan, on_finished);
    ordered
        .results
        .iter_mut()
        .filter_map(Option::take)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_timeouts_parse_and_print() {
        for (text, secs) in [
            ("45", 45),
            ("90s", 90),
            ("30m", 1800),
            ("1h30m", 5400),
            ("2h", 7200),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in ["", "0", "1x", "m", "5m3", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(61)), "1m1s");
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
    }
}
