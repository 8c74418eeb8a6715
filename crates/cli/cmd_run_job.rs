//! `dose-overlap run-job`: runs exactly one job of a resolved plan through the same runner code
//! as a local `train`, and writes its `<artifact_dir>/result.json` (SLURM array tasks call it).

use crate::exit;
use crate::output::outln;
use crate::progress::Progress;
use crate::run::{bundle_lines, job_error_line};
use runner::{Plan, RunContext};
use std::path::PathBuf;

/// Arguments of `dose-overlap run-job`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// The plan (`<artifact_root>/plan.json`, written by `train`).
    #[arg(long, value_name = "PLAN")]
    pub plan: PathBuf,
    /// The job's index in the plan (0-based).
    #[arg(long, value_name = "K")]
    pub index: usize,
}

/// How long a task waits for a `train`, `collect` or `study` that holds its root before it
/// gives up (saying which process holds it).
pub const RUN_JOB_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs the command: exit 0 when the job ended well, 1 when it failed or was interrupted, 2
/// when the plan or index is unusable.
pub fn run(args: Args, progress: &Progress) -> anyhow::Result<u8> {
    let (plan, plan_id) = Plan::read(&args.plan)?;
    plan.check_location(&args.plan)?;
    // Shared with the other tasks of the array, never with `train`, `collect` or `study`
    // writing the same root. A `collect` run while tasks are pending holds the root for a
    // moment: a task that starts then waits for it rather than failing.
    let _lock = runner::RootLock::acquire_shared_within(
        std::path::Path::new(&plan.artifact_root),
        RUN_JOB_LOCK_PATIENCE,
    )?;
    let planned = plan.job(args.index, &args.plan)?;
    let cancel = crate::signals::token()?;
    let backend = runner::backend_for(plan.backend);
    progress.stage("run-job", 1);
    let report_progress = |line: &str| progress.note(line);
    let ctx = RunContext {
        plan_id: &plan_id,
        cancel: &cancel,
        progress: &report_progress,
        // One job per process: every core this task was given.
        threads_per_job: std::thread::available_parallelism().map_or(1, |n| n.get()),
        // It has them all: nothing to borrow.
        spare_cores: None,
        // A SLURM task's timeout is its --time-limit.
        limits: runner::JobLimits::default(),
    };
    let result = runner::run_job(&plan, args.index, backend.as_ref(), &ctx);
    progress.step(&format!("{} {}", planned.job.label(), result.status()));
    progress.clear();
    outln!(
        "→ Job {} [{}]: {} (result: {})",
        args.index,
        planned.job.label(),
        result.status(),
        planned.job.artifact_dir.join(runner::RESULT_FILE).display()
    );
    for line in bundle_lines(planned, &result) {
        outln!("{line}");
    }
    if let Some(error) = result.error() {
        crate::output::errln!("{}", job_error_line(planned, result.status(), error));
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}
