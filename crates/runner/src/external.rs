//! External methods: programs a job is trained with as contained child processes (PtychoPINN's
//! trainers, in `ptychopinn`; pty-chi's engines, in `ptychi`; PtychoPINN's supervised
//! baseline, in `supervised`). The mechanics here know no method: `contain.rs` runs a program
//! in a watchdog's process group, with its output in the job's capped log, stopped on Ctrl-C
//! and at `--job-timeout`; `output.rs` cuts that output into bounded lines for the method's
//! [`OutputScanner`].
//!
//! A method is a folder (its planning refusals, its invocation, its output scanner, its
//! adapter) behind one protocol, [`ExternalMethod`], which [`train`] drives:
//!
//! 1. `prepare`: from the resolved config alone, the job dir made ready (stale outputs removed,
//!    the method's files written, the checks that must pass before it starts) and the
//!    [`Invocation`] (program, arguments, environment, the job dir as working directory);
//! 2. run contained, the method's scanner reading the output as it comes: a stop is an
//!    interruption, a non-zero exit a failure that names the last output line;
//! 3. `collect`: after a clean exit, the bundle, epochs and loss (from the scanner and the
//!    method's own files), or why the run is no model (divergence, the wrong device);
//! 4. `score`: the method's adapter writes the reconstruction of both splits, which
//!    [`score_splits`] scores with the toolkit's one scoring code; a scoring that fails leaves
//!    the training result standing, with its `scoring_error`.

mod contain;
mod output;

pub(crate) use contain::{Stopped, run_contained};
#[cfg(test)]
pub(crate) use output::MAX_LINE;
pub(crate) use output::{Lines, OutputScanner};

use crate::backend::{BackendError, BackendOutcome, JobContext};
use crate::config::TrainingConfig;
use crate::shell::{shell_path, shell_word};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// A design seed as the Python tools take one: NumPy (`np.random.seed`), Keras and Lightning
/// accept only 32-bit seeds, and a replicate's derived seeds are 64-bit, so the two halves are
/// xor-ed into 32 bits (a seed below 2^32, such as 123 or 456, stays as it is).
pub fn tool_seed(seed: u64) -> u32 {
    ((seed ^ (seed >> 32)) & 0xFFFF_FFFF) as u32
}

/// How an external method's program is started for one job.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Invocation {
    /// The program as given: a bare name is looked up on `PATH`, a path with a folder is made
    /// absolute (the program runs in `dir`).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment variables it gets beyond dose-overlap's own.
    pub env: Vec<(&'static str, &'static str)>,
    /// Its working directory: the job dir.
    pub dir: PathBuf,
}

impl Invocation {
    /// The command (no shell).
    pub fn command(&self) -> Command {
        let mut command = Command::new(program_path(&self.program));
        command
            .args(&self.args)
            .envs(self.env.iter().copied())
            .current_dir(&self.dir);
        command
    }

    /// How the command line reads in a log: arguments with spaces or quotes single-quoted.
    pub fn display(&self) -> String {
        display_command(&self.program, &self.args)
    }
}

/// Why scoring gave no metrics.
#[derive(Debug)]
pub(crate) enum ScoreError {
    /// The adapter was stopped (Ctrl-C / SIGTERM of the run, or `--job-timeout`): the job is
    /// interrupted or timed out, not scored.
    Stopped,
    /// Scoring failed; the training result stands and this is its `scoring_error`.
    Failed(String),
}

impl From<String> for ScoreError {
    fn from(message: String) -> Self {
        ScoreError::Failed(message)
    }
}

/// The protocol of an external method (see the module's documentation). One instance serves
/// every job, from several threads.
pub(crate) trait ExternalMethod: Send + Sync {
    /// What `prepare` found for one job, handed to the later steps.
    type Job;
    /// The method's reader of its program's output.
    type Scanner: OutputScanner + Default;

    /// 1. Makes the job dir ready and says how to start the program; `Err` fails (or
    ///    interrupts) the job before the program starts.
    fn prepare(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<(Self::Job, Invocation), BackendError>;

    /// The program in messages: `the PtychoPINN trainer `ptycho_train` (looked up on PATH)`.
    fn describe(&self, job: &Self::Job) -> String;

    /// Why the program did not start, and what to do about it.
    fn cannot_start(&self, job: &Self::Job, error: &io::Error) -> String;

    /// 3. After a clean exit: the outcome (bundle, epochs, loss, the method's facts) without
    ///    scores, or why the run is no model.
    fn collect(
        &self,
        job: &Self::Job,
        output: Self::Scanner,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError>;

    /// 4. Scores the trained job: its metrics, reconstruction and scoring facts go into
    ///    `outcome`, which is left as it is when scoring fails.
    fn score(
        &self,
        job: &Self::Job,
        outcome: &mut BackendOutcome,
        ctx: &mut JobContext<'_>,
    ) -> Result<(), ScoreError>;
}

/// Trains one job with `method`: prepare, run contained, collect, score.
pub(crate) fn train<M: ExternalMethod>(
    method: &M,
    config: &TrainingConfig,
    ctx: &mut JobContext<'_>,
) -> Result<BackendOutcome, BackendError> {
    let (job, invocation) = method.prepare(config, ctx)?;
    let who = method.describe(&job);
    ctx.log_line(&format!("Running {who} in {}:", invocation.dir.display()));
    ctx.log_line(&format!("$ {}", invocation.display()));
    ctx.log_line("");

    let log_path = ctx.log.path().to_path_buf();
    ctx.log.sync().map_err(|e| {
        BackendError::failed(format!(
            "cannot write the job log {}: {e}",
            log_path.display()
        ))
    })?;
    // Contained: its own process group with a watchdog, output through a pipe into the log
    // (capped), stopped on Ctrl-C / SIGTERM and at --job-timeout (`contain`).
    let mut scanner = M::Scanner::default();
    let contained = run_contained(invocation.command(), ctx, &mut scanner)
        .map_err(|e| BackendError::failed(method.cannot_start(&job, &e)))?;
    let status = contained.status;
    match contained.stopped {
        Some(Stopped::Cancelled) => {
            ctx.log_line("");
            ctx.log_line("Interrupted: the trainer was stopped.");
            return Err(BackendError::Interrupted);
        }
        Some(Stopped::TimedOut) => {
            ctx.log_line("");
            ctx.log_line("Timed out: the trainer and its processes were stopped.");
            // The runner turns this into a failure that names the timeout.
            return Err(BackendError::Interrupted);
        }
        None => {}
    }
    ctx.log_line("");
    // A signal to every process of a task (scancel, a SLURM time limit) can end the program
    // before the runner notices: that is an interruption, not a failure.
    if !status.success() && ctx.is_cancelled() {
        ctx.log_line(&format!(
            "Interrupted: the trainer ended with {} while the run was being stopped.",
            describe_status(status)
        ));
        return Err(BackendError::Interrupted);
    }
    if !status.success() {
        let tail = contained
            .last_line
            .map(|l| format!("; its last output line: `{l}`"))
            .unwrap_or_default();
        return Err(BackendError::failed(format!(
            "{who} ended with {}{tail}; see the job log {}",
            describe_status(status),
            log_path.display()
        )));
    }
    let mut outcome = method.collect(&job, scanner, ctx)?;
    // The training result stands whatever scoring gives.
    match method.score(&job, &mut outcome, ctx) {
        Ok(()) => ctx.log_line("Scored both splits against objectGuess."),
        // Cancelled, or past --job-timeout: the runner says which.
        Err(ScoreError::Stopped) => return Err(BackendError::Interrupted),
        Err(ScoreError::Failed(_)) if ctx.is_cancelled() => {
            return Err(BackendError::Interrupted);
        }
        Err(ScoreError::Failed(e)) => {
            ctx.log_line(&format!("Scoring failed: {e}"));
            outcome.scoring_error = Some(e);
        }
    }
    Ok(outcome)
}

/// Scores a reconstruction NPZ (`train_object` and `test_object`, or one `object`) against
/// both splits of `config` with the toolkit's one scoring code (`recon::score_files`):
/// `{"train": Metrics, "test": Metrics}`, the native backend's shape.
pub(crate) fn score_splits(
    config: &TrainingConfig,
    reconstruction: &Path,
) -> Result<serde_json::Value, String> {
    let options = recon::EvalOptions {
        ssim_sigma: config.metrics_config.ms_ssim_sigma,
        ..recon::EvalOptions::default()
    };
    let split = |split: recon::Split, truth: &Path| -> Result<serde_json::Value, String> {
        let metrics = recon::score_files(truth, reconstruction, Some(split), &options)
            .map_err(|e| e.to_string())?;
        serde_json::to_value(metrics).map_err(|e| e.to_string())
    };
    let train = split(recon::Split::Train, &config.train_data_file)?;
    let test = split(recon::Split::Test, &config.test_data_file)?;
    Ok(serde_json::json!({"train": train, "test": test}))
}

/// Writes an adapter script (shipped in the binary) into the job dir, atomically, and returns
/// its path.
pub(crate) fn write_adapter(dir: &Path, name: &str, source: &str) -> Result<PathBuf, BackendError> {
    let path = dir.join(name);
    npz_contract::atomic::write_atomic(&path, source.as_bytes())
        .map_err(|e| BackendError::failed(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Removes what an earlier run of the job left at `path` (a file, or a link, never followed),
/// so that it cannot pass for this run's; says so in the log.
pub(crate) fn remove_earlier(path: &Path, ctx: &mut JobContext<'_>) -> Result<(), BackendError> {
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_file(path).map_err(|e| {
            BackendError::failed(format!(
                "cannot remove the earlier run's {}: {e}",
                path.display()
            ))
        })?;
        ctx.log_line(&format!(
            "Removed {} left by an earlier run of this job.",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    Ok(())
}

/// Largest facts file an adapter may write (they hold settings and a loss per epoch).
pub(crate) const MAX_FACTS_BYTES: u64 = 16 << 20;

/// Reads an adapter's facts JSON into `T`: only a regular file (a link or a FIFO is never
/// opened), at most [`MAX_FACTS_BYTES`].
pub(crate) fn read_facts<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (not read)",
            path.display()
        ));
    }
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_FACTS_BYTES + 1), &mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_FACTS_BYTES {
        return Err(format!(
            "{} is larger than {MAX_FACTS_BYTES} bytes (not read)",
            path.display()
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not the adapter's facts: {e}", path.display()))
}

/// `exit status 3`, `signal 9`.
pub(crate) fn describe_status(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal {signal}");
        }
    }
    status.to_string()
}

/// `program` as the runner sees it: a path with a folder in it made absolute (the child runs
/// elsewhere), a bare name left for the PATH lookup.
pub(crate) fn program_path(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf())
    } else {
        program.to_path_buf()
    }
}

/// How a command line reads in a log: arguments with spaces or quotes single-quoted.
fn display_command(program: &Path, args: &[OsString]) -> String {
    let mut parts = vec![shell_path(program)];
    parts.extend(args.iter().map(|a| shell_word(&a.to_string_lossy())));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_for_reading() {
        let args: Vec<OsString> = vec!["--output_dir".into(), "a b/it's".into()];
        assert_eq!(
            display_command(Path::new("ptycho_train"), &args),
            r"ptycho_train --output_dir 'a b/it'\''s'"
        );
    }
}
