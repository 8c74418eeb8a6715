//! Running a plan's jobs here, on threads, while the manifest on disk says the run is in
//! progress (`run_in_progress`, each job pending, running or done).

use super::{CommandLog, bundle_lines};
use crate::progress::Progress;
use anyhow::Context;
use reporting::manifest::{RunInProgress, TrainingManifest};
use runner::{JobResult, Plan, PlannedJob, RunContext};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The manifest of a run in progress, rewritten atomically as jobs start and finish (at most
/// every [`LiveManifest::EVERY`], so a 10,000-job dry run does not write it 20,000 times).
struct LiveManifest<'a> {
    plan: &'a Plan,
    run: RunInProgress,
    state: Mutex<LiveState>,
}

struct LiveState {
    done: Vec<Option<JobResult>>,
    running: Vec<bool>,
    written: Instant,
}

impl<'a> LiveManifest<'a> {
    const EVERY: Duration = Duration::from_millis(200);

    /// Replaces the previous manifest at once: from now on it says the run is in progress.
    fn start(plan: &'a Plan, done: &[Option<JobResult>]) -> anyhow::Result<LiveManifest<'a>> {
        let live = LiveManifest {
            plan,
            run: RunInProgress::this_process(),
            state: Mutex::new(LiveState {
                done: done.to_vec(),
                running: vec![false; done.len()],
                written: Instant::now(),
            }),
        };
        let state = live.lock();
        live.write(&state)
            .context("cannot mark the manifest as in progress")?;
        drop(state);
        Ok(live)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, state: &LiveState) -> Result<(), reporting::manifest::ManifestError> {
        TrainingManifest::in_progress(self.plan, &state.done, &state.running, &self.run)?
            .write_manifest_only()
            .map(|_| ())
    }

    fn update(&self, change: impl FnOnce(&mut LiveState)) {
        let mut state = self.lock();
        change(&mut state);
        if state.written.elapsed() >= Self::EVERY {
            // A failed update leaves the previous in-progress manifest: still not a claim.
            let _ = self.write(&state);
            state.written = Instant::now();
        }
    }

    fn started(&self, index: usize) {
        self.update(|s| s.running[index] = true);
    }

    fn finished(&self, index: usize, result: &JobResult) {
        self.update(|s| s.done[index] = Some(result.clone()));
    }
}

/// Runs the jobs of `plan` that have no result in `done` here, on `threads` threads, printing
/// each job's bundle lines in matrix order; Ctrl-C / SIGTERM stop it cleanly. While it runs,
/// the manifest on disk is an unfinished run's, replaced by the final one at the end (by
/// [`super::finish_run`]).
pub fn execute_local(
    plan: &Plan,
    plan_id: &str,
    threads: usize,
    progress: &Progress,
    log: &CommandLog,
    done: Vec<Option<JobResult>>,
    limits: runner::JobLimits,
) -> anyhow::Result<Vec<JobResult>> {
    let cancel = crate::signals::token()?;
    let tracker = LiveManifest::start(plan, &done)?;
    let backend = runner::backend_for(plan.backend);
    let stage = if plan.dry_run { "dry run" } else { "train" };
    progress.stage(stage, plan.jobs.len() as u64);
    let report_progress = |line: &str| progress.note(line);
    // The cores are shared among the jobs running at once.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A worker with no job left lends its cores to the jobs still running.
    let spare = runner::SpareCores::new();
    let ctx = RunContext {
        plan_id,
        cancel: &cancel,
        progress: &report_progress,
        threads_per_job: (cores / threads.clamp(1, plan.jobs.len().max(1))).max(1),
        spare_cores: Some(&spare),
        limits,
    };
    let on_started = |index: usize| tracker.started(index);
    let on_finished = |planned: &PlannedJob, result: &JobResult| {
        tracker.finished(planned.index, result);
        log.step(
            progress,
            &format!("{} {}", planned.job.label(), result.status()),
        );
        for line in bundle_lines(planned, result) {
            log.out(&line);
        }
    };
    let results = runner::execute_resumed(
        plan,
        threads,
        backend.as_ref(),
        &ctx,
        done,
        &on_started,
        &on_finished,
    );
    if cancel.is_cancelled() {
        let done = results.iter().filter(|r| r.is_ok()).count();
        log.error(
            progress,
            &format!(
                "interrupted by {}: {done} job(s) finished, {} did not; the manifest says which",
                cancel.cause(),
                results.len() - done
            ),
        );
    }
    Ok(results)
}
