//! Phase E: runs training jobs through a backend (dry run, native, or an external method:
//! PtychoPINN's trainer, pty-chi, PtychoPINN's supervised baseline).
//!
//! The flow: [`Plan::resolve`] (enumerate, filter, resolve each job's [`TrainingConfig`]) ->
//! [`Plan::write`] (`plan.json`) -> [`run_job`] per job (artifact dir, log,
//! `training_config.json`, backend, `result.json`) or [`execute`] for all of them on N threads.
//! The manifest is assembled from the plan and the results by the `reporting` crate.
#![deny(missing_docs)]

mod artifact;
mod backend;
mod cancel;
pub mod check;
mod collect;
mod config;
mod cores;
mod digest;
mod external;
mod lock;
mod log;
pub mod native;
mod plan;
pub mod ptychi;
pub mod ptychopinn;
mod result;
pub mod resume;
mod run;
pub mod shell;
pub mod slurm;
pub mod supervised;

pub use artifact::artifact_json;
pub use backend::{Backend, BackendError, BackendOutcome, JobContext};
pub use cancel::CancelToken;
pub use collect::{Collection, PendingTask, collect, read_result};
pub use config::{
    BackendKind, CONFIG_FILE, CONFIG_FORMAT_VERSION, ConfigOverrides, PinnSettings, PtychiSettings,
    SolverSettings, SupervisedSettings, TrainerProgram, TrainerSource, TrainingConfig,
};
pub use cores::SpareCores;
pub use digest::{
    FileDigest, checked_bundle, file_digest, file_digests, hash_bundle, map_ordered, sha256_bytes,
    sha256_file, sha256_reader,
};
pub use lock::{LOCK_FILE, LockError, RootLock};
pub use log::{DEFAULT_LOG_LIMIT, JobLog, create_fresh};
pub use plan::{
    PLAN_FILE, PLAN_FORMAT_VERSION, Plan, PlanError, PlanRequest, PlannedJob, manifest_timestamp,
};
pub use ptychi::PtychiBackend;
pub use ptychopinn::PtychoPinnBackend;
pub use result::{
    DryRunSummary, FailedResult, InputDigests, IntensityScale, InterruptedResult, JobResult,
    PinnFacts, RESULT_FILE, RESULT_FORMAT_VERSION, ResultRecord, ScaleStatus, TrainedResult,
};
pub use run::{
    JobLimits, LOG_MARKER, RunContext, clear_results, confined_dir, execute, execute_resumed,
    format_duration, parse_duration, remove_result, run_job,
};
pub use supervised::SupervisedBackend;

/// The backend that trains jobs of `kind`.
pub fn backend_for(kind: BackendKind) -> Box<dyn Backend> {
    match kind {
        BackendKind::Tensorflow | BackendKind::Pytorch => Box::new(PtychoPinnBackend::new(kind)),
        BackendKind::Native => Box::new(native::NativeBackend::new()),
        BackendKind::Ptychi { .. } => Box::new(PtychiBackend::new(kind)),
        BackendKind::Supervised => Box::new(SupervisedBackend),
    }
}

#[cfg(test)]
mod tests;
