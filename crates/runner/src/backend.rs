//! The backend trait: how a job's resolved configuration becomes a trained bundle.
//!
//! To add a backend: implement [`Backend`] for a type that is `Send + Sync` (one instance
//! serves every job, from several threads with `-j N`), read everything from the
//! [`TrainingConfig`], write the bundle into `config.output_dir` (atomically, through
//! `npz_contract::atomic`), write what a person debugging the job needs through
//! [`JobContext::log_line`], check [`JobContext::is_cancelled`] between units of work, and
//! return a [`BackendOutcome`]. The runner computes the bundle's digest and size, writes the
//! result and the log's outcome line; a backend never prints.
//!
//! A method run as an external program (PtychoPINN, pty-chi, the supervised baseline) is a
//! folder (`ptychopinn/`, `ptychi/`, `supervised/`) that implements `external`'s protocol
//! (prepare, run contained, collect, score) and whose `Backend::train` is `external::train`.

use crate::cancel::CancelToken;
use crate::config::TrainingConfig;
use crate::log::JobLog;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a backend reports when it trained a job.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendOutcome {
    /// The bundle it wrote: a file inside `config.output_dir` (absolute, or relative to the
    /// working directory like `output_dir` itself).
    pub bundle: PathBuf,
    /// Last loss (`None` when the backend has no loss to report).
    pub final_loss: Option<f64>,
    /// Epochs actually trained.
    pub epochs_completed: u32,
    /// Loss per epoch, in the backend's shape (e.g. `{"train": [...], "test": [...]}`).
    pub loss_history: Option<serde_json::Value>,
    /// Metrics against ground truth, in the backend's shape.
    pub metrics: Option<serde_json::Value>,
    /// What the solver did beyond the loss (ml: likelihood, prior weight, stopping rule and
    /// why it stopped), in the backend's shape.
    pub solver: Option<serde_json::Value>,
    /// The reconstruction the metrics score (a NumPy-readable NPZ inside `config.output_dir`).
    pub reconstruction: Option<PathBuf>,
    /// Why a trained job has no metrics (scoring failed; the training result stands).
    pub scoring_error: Option<String>,
    /// A PtychoPINN trainer's device and intensity scale.
    pub pinn: Option<crate::result::PinnFacts>,
}

/// Why a backend did not produce a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The job failed; the message says what went wrong and what to do (install what, which
    /// flag to use, which file is bad).
    #[error("{0}")]
    Failed(String),
    /// The job failed part way (e.g. the solver diverged); its loss history so far is kept.
    #[error("{message}")]
    FailedWithHistory {
        /// What went wrong and what to do.
        message: String,
        /// Loss per epoch up to the failure, in the backend's shape.
        loss_history: serde_json::Value,
    },
    /// The backend stopped because [`JobContext::is_cancelled`] became true.
    #[error("interrupted")]
    Interrupted,
}

impl BackendError {
    /// A failure with this message.
    pub fn failed(message: impl Into<String>) -> BackendError {
        BackendError::Failed(message.into())
    }
}

/// A training backend.
pub trait Backend: Send + Sync {
    /// The name in artifacts and messages (`tensorflow`, `pytorch`, `native`).
    fn name(&self) -> &'static str;

    /// Trains one job. `config` is also on disk at `config.path()` when this is called.
    fn train(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError>;
}

/// What a backend may touch besides its configuration: the job's log, the run's cancellation
/// flag, and a progress line on the command's display.
pub struct JobContext<'a> {
    pub(crate) log: &'a mut JobLog,
    pub(crate) cancel: &'a CancelToken,
    pub(crate) progress: &'a (dyn Fn(&str) + Sync),
    pub(crate) label: &'a str,
    pub(crate) threads: usize,
    /// Cores the job may borrow while it runs (from workers that found no job left).
    pub(crate) spare_cores: Option<&'a crate::SpareCores>,
    /// When the job must be stopped (`--job-timeout`), and the timeout itself.
    pub(crate) deadline: Option<(Instant, Duration)>,
}

impl<'a> JobContext<'a> {
    /// A context for running a backend outside the runner (tests, benches).
    pub fn new(
        log: &'a mut JobLog,
        cancel: &'a CancelToken,
        progress: &'a (dyn Fn(&str) + Sync),
        label: &'a str,
    ) -> Self {
        JobContext {
            log,
            cancel,
            progress,
            label,
            threads: 1,
            spare_cores: None,
            deadline: None,
        }
    }

    /// The same context, letting the job borrow cores from `spare`.
    pub fn with_spare_cores(mut self, spare: Option<&'a crate::SpareCores>) -> Self {
        self.spare_cores = spare;
        self
    }

    /// What the job may borrow cores from (a lender that lends nothing when there is none).
    pub fn lender(&self) -> &'a dyn recon::CoreLender {
        match self.spare_cores {
            Some(spare) => spare,
            None => &recon::NoLender,
        }
    }

    /// The same context, stopping the job `timeout` from now.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.deadline = timeout.map(|t| (Instant::now() + t, t));
        self
    }

    /// When the job must stop, and its timeout.
    pub fn deadline(&self) -> Option<(Instant, Duration)> {
        self.deadline
    }

    /// Whether the job ran past its timeout.
    pub fn timed_out(&self) -> bool {
        self.deadline.is_some_and(|(at, _)| Instant::now() >= at)
    }

    /// The same context, allowing the job `threads` threads (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Threads this job may use: the cores left to it by the jobs running beside it (`-j`).
    /// Results must be the same whatever this is.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Appends a line to the job's log (write errors are remembered and fail the job at the end).
    pub fn log_line(&mut self, line: &str) {
        self.log.line(line);
    }

    /// The job's log, e.g. to hand its file to a child process.
    pub fn log(&mut self) -> &mut JobLog {
        self.log
    }

    /// True once Ctrl-C or SIGTERM arrived, or the job ran past its timeout: stop soon and
    /// return [`BackendError::Interrupted`] (the runner tells the two apart).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled() || self.timed_out()
    }

    /// Cancels the run, as Ctrl-C would (tests of cancellation).
    #[cfg(test)]
    pub(crate) fn cancel_for_test(&self) {
        self.cancel.cancel();
    }

    /// One line of progress on stderr (`epoch 3/20 loss 0.0123`), prefixed with the job.
    pub fn progress(&self, note: &str) {
        (self.progress)(&format!("{}: {note}", self.label));
    }
}
