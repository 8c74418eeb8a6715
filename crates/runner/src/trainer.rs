//! The `tensorflow` and `pytorch` backends: PtychoPINN's trainer (`ptycho_train`) as a child
//! process, with its documented flags, its output streamed into the job's log, and its
//! `wts.h5.zip` taken as the bundle.

use crate::backend::{Backend, BackendError, BackendOutcome, JobContext};
use crate::config::{BackendKind, TrainerProgram, TrainerSource, TrainingConfig};
use crate::shell::{shell_path, shell_word};
use std::ffi::OsString;
use std::io::{self, Read};
use std::process::{Command, ExitStatus};
use study_design::Accelerator;

/// The bundle PtychoPINN's trainer writes into its output dir.
pub const PTYCHOPINN_BUNDLE: &str = "wts.h5.zip";

/// PtychoPINN's trainer run as a child process (no shell) for one of its two backends.
#[derive(Debug)]
pub struct PtychoPinnBackend {
    kind: BackendKind,
}

impl PtychoPinnBackend {
    /// The trainer with `--backend tensorflow` or `--backend pytorch`.
    pub fn new(kind: BackendKind) -> PtychoPinnBackend {
        debug_assert!(kind.uses_trainer_program());
        PtychoPinnBackend { kind }
    }
}

pub use crate::ptychopinn::trainer_args;

/// How a command line reads in a log: arguments with spaces or quotes single-quoted.
fn display_command(program: &std::path::Path, args: &[OsString]) -> String {
    let mut parts = vec![shell_path(program)];
    parts.extend(args.iter().map(|a| shell_word(&a.to_string_lossy())));
    parts.join(" ")
}

fn cannot_start(trainer: &TrainerProgram, err: &io::Error) -> String {
    let what = trainer.describe();
    let hint = match trainer.source {
        TrainerSource::Path => {
            "install PtychoPINN so that `ptycho_train` is on PATH, point --trainer PATH or \
             $PTYCHO_TRAIN at the trainer, or train with --backend native"
        }
        TrainerSource::Flag => "check the path given to --trainer, or train with --backend native",
        TrainerSource::Env => "check $PTYCHO_TRAIN, or train with --backend native",
    };
    match err.kind() {
        io::ErrorKind::NotFound => {
            format!("cannot start the PtychoPINN trainer {what}: not found; {hint}")
        }
        // exec reports a folder as "permission denied" too; chmod would not help there.
        io::ErrorKind::PermissionDenied if trainer.program.is_dir() => {
            format!(
                "cannot start the PtychoPINN trainer {what}: it is a folder, not a program; {hint}"
            )
        }
        io::ErrorKind::PermissionDenied => format!(
            "cannot start the PtychoPINN trainer {what}: permission denied (is it executable? \
             `chmod +x` it); {hint}"
        ),
        _ => format!("cannot start the PtychoPINN trainer {what}: {err}; {hint}"),
    }
}

fn describe_status(status: ExitStatus) -> String {
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

/// What the trainer's output says about its progress: the last `Epoch N/M` and the last
/// training loss (`loss: 0.12` as Keras prints it, `loss=0.12` / `train_loss=0.12` as
/// Lightning does; `val_loss` is not the training loss).
#[derive(Debug, Default, PartialEq)]
pub struct TrainerProgress {
    /// N of the last `Epoch N/M`.
    pub last_epoch: Option<u32>,
    /// The last training loss printed.
    pub final_loss: Option<f64>,
    /// The epoch (the last `Epoch N/M` before it, else 1) where a training loss was printed
    /// as `nan` or `inf`: the training diverged.
    pub diverged_at: Option<u32>,
}

/// Scans trainer output (progress bars use `\r` and backspaces; both are separators here).
pub fn parse_trainer_output(text: &str) -> TrainerProgress {
    let mut progress = TrainerProgress::default();
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let number_at = |start: usize| -> Option<f64> {
        let rest = &text[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(rest.len());
        rest[..end].parse::<f64>().ok().filter(|v| v.is_finite())
    };
    // Keras prints `loss: nan`, Lightning `loss=inf`.
    let non_finite_at = |start: usize| {
        let rest = text[start..].trim_start_matches(['+', '-']);
        let word = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .map_or(rest, |end| &rest[..end]);
        ["nan", "inf", "infinity"]
            .iter()
            .any(|w| word.eq_ignore_ascii_case(w))
    };
    let mut i = 0;
    while i < bytes.len() {
        if text[i..].starts_with("Epoch ") && (i == 0 || !is_word(bytes[i - 1])) {
            let rest = &text[i + 6..];
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits > 0
                && rest[digits..].starts_with('/')
                && let Ok(n) = rest[..digits].parse()
            {
                progress.last_epoch = Some(n);
            }
        }
        if text[i..].starts_with("loss") && !(i + 4 < bytes.len() && is_word(bytes[i + 4])) {
            let mut start = i;
            while start > 0 && is_word(bytes[start - 1]) {
                start -= 1;
            }
            let key = &text[start..i + 4];
            if key == "loss" || key == "train_loss" {
                let mut j = i + 4;
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                if j < bytes.len() && (bytes[j] == b':' || bytes[j] == b'=') {
                    j += 1;
                    while j < bytes.len() && bytes[j] == b' ' {
                        j += 1;
                    }
                    if let Some(value) = number_at(j) {
                        progress.final_loss = Some(value);
                    } else if progress.diverged_at.is_none() && non_finite_at(j) {
                        progress.diverged_at = Some(progress.last_epoch.unwrap_or(1));
                    }
                }
            }
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    progress
}

/// The device a line of trainer output says the trainer runs on (`"cpu"` or `"gpu"`):
/// PtychoPINN's TensorFlow path prints `No GPU found, using CPU instead.` when TensorFlow sees
/// none (`ptycho/tf_helper.py`), and TensorFlow logs `Created device .../device:GPU:0` when it
/// takes one; Lightning (the PyTorch path) prints `GPU available: True (cuda), used: True`.
pub fn device_in_line(line: &str) -> Option<&'static str> {
    if line.contains("No GPU found, using CPU instead") {
        return Some("cpu");
    }
    if line.contains("Created device") && line.contains("device:GPU:") {
        return Some("gpu");
    }
    let rest = &line[line.find("GPU available: ")?..];
    let used = &rest[rest.find("used: ")? + "used: ".len()..];
    if used.starts_with("True") {
        Some("gpu")
    } else if used.starts_with("False") {
        Some("cpu")
    } else {
        None
    }
}

/// The device the trainer's output named, with the line that named it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceSeen {
    /// `"cpu"` or `"gpu"`.
    pub device: &'static str,
    /// The line, trimmed (at most 200 characters).
    pub evidence: String,
}

/// What the trainer printed, scanned once as it is read back: its progress, the device it
/// trained on and its last non-empty line (for an error message).
#[derive(Debug, Default, PartialEq)]
pub struct TrainerOutput {
    /// The last `Epoch N/M` and training loss.
    pub progress: TrainerProgress,
    /// The device its output named; a GPU named anywhere wins over a CPU named elsewhere.
    pub device: Option<DeviceSeen>,
    /// The last non-empty line, trimmed.
    pub last_line: Option<String>,
}

/// Longest line kept whole while scanning; the start of a longer one is dropped (a progress
/// bar that never prints a newline must not grow memory with the log).
const MAX_LINE: usize = 1 << 20;

/// Scans trainer output as it arrives, chunk by chunk, line by line (`\n` and `\r` both end a
/// line): memory stays bounded however long the output is.
#[derive(Debug, Default)]
pub struct OutputScanner {
    out: TrainerOutput,
    line: Vec<u8>,
}

impl OutputScanner {
    fn end_line(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let found = parse_trainer_output(&text);
        let progress = &mut self.out.progress;
        progress.last_epoch = found.last_epoch.or(progress.last_epoch);
        progress.final_loss = found.final_loss.or(progress.final_loss);
        if found.diverged_at.is_some() && progress.diverged_at.is_none() {
            progress.diverged_at = Some(progress.last_epoch.unwrap_or(1));
        }
        let trimmed = text.trim();
        // The first line that names a device is the evidence, unless a later one names a GPU.
        if let Some(device) = device_in_line(trimmed)
            && match &self.out.device {
                None => true,
                Some(seen) => seen.device == "cpu" && device == "gpu",
            }
        {
            self.out.device = Some(DeviceSeen {
                device,
                evidence: trimmed.chars().take(200).collect(),
            });
        }
        if !trimmed.is_empty() {
            self.out.last_line = Some(trimmed.to_string());
        }
        self.line.clear();
    }

    /// Feeds the next chunk of output.
    pub fn feed(&mut self, chunk: &[u8]) {
        for piece in chunk.split_inclusive(|&b| b == b'\n' || b == b'\r') {
            let ended = matches!(piece.last(), Some(b'\n' | b'\r'));
            self.line.extend_from_slice(if ended {
                &piece[..piece.len() - 1]
            } else {
                piece
            });
            // Trimmed in steps of MAX_LINE, so a giant line costs no more than a few copies.
            if self.line.len() > 2 * MAX_LINE {
                self.line.drain(..self.line.len() - MAX_LINE);
            }
            if ended {
                self.end_line();
            }
        }
    }

    /// What the whole output said.
    pub fn finish(mut self) -> TrainerOutput {
        self.end_line();
        self.out
    }
}

/// Scans trainer output from `reader` in 64 KiB chunks ([`OutputScanner`]).
pub fn scan_trainer_output(reader: impl Read) -> io::Result<TrainerOutput> {
    let mut scanner = OutputScanner::default();
    crate::digest::read_chunks(reader, |chunk| scanner.feed(chunk))?;
    Ok(scanner.finish())
}

impl Backend for PtychoPinnBackend {
    fn name(&self) -> &'static str {
        self.kind.as_str()
    }

    fn train(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        let trainer = config.trainer.as_ref().ok_or_else(|| {
            BackendError::failed(
                "training_config.json names no trainer program for a PtychoPINN backend: \
                 the plan is from another version; rerun `dose-overlap train`",
            )
        })?;
        let bundle = config.output_dir.join(PTYCHOPINN_BUNDLE);
        // A bundle left by an earlier run must not pass for this run's (a dangling link too).
        if std::fs::symlink_metadata(&bundle).is_ok() {
            std::fs::remove_file(&bundle).map_err(|e| {
                BackendError::failed(format!(
                    "cannot remove the earlier run's {}: {e}",
                    bundle.display()
                ))
            })?;
            ctx.log_line(&format!(
                "Removed {PTYCHOPINN_BUNDLE} left by an earlier run of this job."
            ));
        }
        // Absolute paths, the N YAML written: the trainer runs in the job dir.
        let config = &crate::ptychopinn::prepare(config)?;
        let accelerator = crate::ptychopinn::job_accelerator(config);
        if accelerator == Accelerator::Gpu {
            crate::ptychopinn::require_gpu(config, trainer, ctx)?;
        }
        let args = trainer_args(config);
        ctx.log_line(&format!(
            "Running the PtychoPINN trainer {} in {}:",
            trainer.describe(),
            config.output_dir.display()
        ));
        ctx.log_line(&format!("$ {}", display_command(&trainer.program, &args)));
        ctx.log_line("");

        let log_path = ctx.log.path().to_path_buf();
        ctx.log.sync().map_err(|e| {
            BackendError::failed(format!(
                "cannot write the job log {}: {e}",
                log_path.display()
            ))
        })?;
        // The child runs in the job dir: a relative program path is taken from here first.
        let mut command = Command::new(crate::ptychopinn::program_path(&trainer.program));
        command
            .args(&args)
            .envs(crate::ptychopinn::trainer_env(config))
            .current_dir(&config.output_dir);
        // Contained: its own process group with a watchdog, output through a pipe into the
        // log (capped), stopped on Ctrl-C / SIGTERM and at --job-timeout (`contain`).
        let contained = crate::contain::run_contained(command, ctx)
            .map_err(|e| BackendError::failed(cannot_start(trainer, &e)))?;
        let (status, output) = (contained.status, contained.output);
        match contained.stopped {
            Some(crate::contain::Stopped::Cancelled) => {
                ctx.log_line("");
                ctx.log_line("Interrupted: the trainer was stopped.");
                return Err(BackendError::Interrupted);
            }
            Some(crate::contain::Stopped::TimedOut) => {
                ctx.log_line("");
                ctx.log_line("Timed out: the trainer and its processes were stopped.");
                // The runner turns this into a failure that names the timeout.
                return Err(BackendError::Interrupted);
            }
            None => {}
        }
        ctx.log_line("");
        // A signal to every process of a task (scancel, a SLURM time limit) can end the trainer
        // before the runner notices: that is an interruption, not a failure.
        if !status.success() && ctx.is_cancelled() {
            ctx.log_line(&format!(
                "Interrupted: the trainer ended with {} while the run was being stopped.",
                describe_status(status)
            ));
            return Err(BackendError::Interrupted);
        }
        if !status.success() {
            let tail = output
                .last_line
                .map(|l| format!("; its last output line: `{l}`"))
                .unwrap_or_default();
            return Err(BackendError::failed(format!(
                "the PtychoPINN trainer {} ended with {}{tail}; see the job log {}",
                trainer.describe(),
                describe_status(status),
                log_path.display()
            )));
        }
        if !bundle.is_file() {
            return Err(BackendError::failed(format!(
                "the PtychoPINN trainer {} exited 0 but wrote no {PTYCHOPINN_BUNDLE} in {}; \
                 check its output in {}",
                trainer.describe(),
                config.output_dir.display(),
                log_path.display()
            )));
        }
        let device = output.device.clone();
        match &device {
            Some(seen) => ctx.log_line(&format!(
                "Device: {} (the trainer's output: `{}`).",
                seen.device, seen.evidence
            )),
            None => ctx.log_line("Device: the trainer's output did not say which."),
        }
        if accelerator == Accelerator::Gpu
            && let Some(seen) = device.as_ref().filter(|s| s.device == "cpu")
        {
            return Err(BackendError::failed(format!(
                "--accelerator gpu, but the PtychoPINN trainer {} trained on the CPU (its \
                 output: `{}`); its bundle is kept in {} but is not scored. Check the GPU \
                 drivers of its environment, or use --accelerator auto or cpu",
                trainer.describe(),
                seen.evidence,
                config.output_dir.display()
            )));
        }
        let mut progress = output.progress;
        // Lightning prints no epoch lines by default; its CSV log has the losses.
        let mut source = "its output";
        if config.backend == BackendKind::Pytorch
            && let Some(log) = crate::ptychopinn::lightning_metrics(&config.output_dir)
        {
            progress.last_epoch = Some(log.epochs);
            progress.final_loss = log.final_loss.or(progress.final_loss);
            progress.diverged_at = progress.diverged_at.or(log.diverged_at);
            source = "lightning_logs/version_*/metrics.csv";
            ctx.log_line(&format!(
                "From {source}: {} epoch(s), final loss {:?}.",
                log.epochs, log.final_loss
            ));
        }
        // Weights trained through an inf or nan loss are not a model: the job fails (and is
        // not scored), whatever the trainer's exit status says.
        if let Some(epoch) = progress.diverged_at {
            return Err(BackendError::failed(format!(
                "diverged at epoch {epoch}: the PtychoPINN trainer {} reported a training loss \
                 of inf or nan ({source}) and exited 0; its bundle is kept in {} but is not \
                 scored. PtychoPINN's own training diverged on this job: see the job log {}",
                trainer.describe(),
                config.output_dir.display(),
                log_path.display()
            )));
        }
        let epochs_completed = progress.last_epoch.unwrap_or_else(|| {
            ctx.log_line(&format!(
                "The trainer printed no `Epoch N/M` line; epochs_completed is the {} requested.",
                config.epochs
            ));
            config.epochs
        });
        if progress.final_loss.is_none() {
            ctx.log_line("The trainer printed no training loss; final_loss is null.");
        }
        // The training result stands whatever scoring gives.
        let (metrics, reconstruction, scoring_error, intensity_scale) =
            match crate::ptychopinn::score(config, trainer, ctx) {
                Ok(scored) => {
                    ctx.log_line("Scored both splits against objectGuess.");
                    (
                        Some(scored.metrics),
                        Some(scored.reconstruction),
                        None,
                        scored.intensity_scale,
                    )
                }
                // Cancelled, or past --job-timeout: the runner says which.
                Err(crate::ptychopinn::ScoreError::Stopped) => {
                    return Err(BackendError::Interrupted);
                }
                Err(crate::ptychopinn::ScoreError::Failed(_)) if ctx.is_cancelled() => {
                    return Err(BackendError::Interrupted);
                }
                Err(crate::ptychopinn::ScoreError::Failed(e)) => {
                    ctx.log_line(&format!("Scoring failed: {e}"));
                    (None, None, Some(e), None)
                }
            };
        let pinn = crate::result::PinnFacts {
            accelerator,
            device: device.as_ref().map(|d| d.device.to_string()),
            device_evidence: device.map(|d| d.evidence),
            intensity_scale,
        };
        Ok(BackendOutcome {
            bundle: config.output_dir.join(PTYCHOPINN_BUNDLE),
            final_loss: progress.final_loss,
            epochs_completed,
            loss_history: None,
            metrics,
            solver: None,
            reconstruction,
            scoring_error,
            pinn: Some(pinn),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_named_by_each_trainer() {
        for (line, device) in [
            ("No GPU found, using CPU instead.", Some("cpu")),
            (
                "I0000 00:00:1 gpu_device.cc:2022] Created device \
                 /job:localhost/replica:0/task:0/device:GPU:0 with 79100 MB memory",
                Some("gpu"),
            ),
            ("INFO: GPU available: True (cuda), used: True", Some("gpu")),
            ("INFO: GPU available: True (cuda), used: False", Some("cpu")),
            (
                "2026 - INFO - GPU available: False, used: False",
                Some("cpu"),
            ),
            (
                "Created device /job:localhost/replica:0/task:0/device:CPU:0",
                None,
            ),
            ("Epoch 1/3", None),
        ] {
            assert_eq!(device_in_line(line), device, "{line}");
        }
        // A GPU named anywhere wins; the first CPU line stays the evidence otherwise.
        let mut scanner = OutputScanner::default();
        scanner.feed(b"No GPU found, using CPU instead.\nINFO: GPU available: True (cuda), used: True\nNo GPU found, using CPU instead.\n");
        let seen = scanner.finish().device.unwrap();
        assert_eq!(seen.device, "gpu");
        assert!(seen.evidence.starts_with("INFO: GPU available"));
    }

    #[test]
    fn a_bundle_scale_equal_to_its_float32_start_is_frozen() {
        use crate::result::{IntensityScale, ScaleStatus};
        // The pinned TensorFlow trainer, pinn-1k, dose 1e3: sqrt(1000) / 32 saved as float32.
        let frozen = IntensityScale::new(0.9882117688026185, 0.9882117509841919, true);
        assert_eq!(frozen.status, ScaleStatus::Frozen);
        assert!(frozen.describe().contains("FROZEN"));
        assert_eq!(
            IntensityScale::new(0.988, 1.057, true).status,
            ScaleStatus::Trained
        );
        assert_eq!(
            IntensityScale::new(10000.0, 10000.0, false).status,
            ScaleStatus::Fixed
        );
    }

    #[test]
    fn keras_output() {
        let text = "Epoch 1/3\n\r 1/10 [=>...] - ETA: 1s - loss: 0.9\r10/10 [====] - 1s - loss: \
                    0.5000 - val_loss: 0.7\nEpoch 2/3\n10/10 - loss: 0.25 - val_loss: 0.3\n";
        assert_eq!(
            parse_trainer_output(text),
            TrainerProgress {
                last_epoch: Some(2),
                final_loss: Some(0.25),
                diverged_at: None,
            }
        );
    }

    #[test]
    fn a_nan_or_inf_training_loss_is_divergence_at_its_epoch() {
        let text = "Epoch 1/5\n10/10 - loss: 0.9 - val_loss: 0.8\nEpoch 2/5\n10/10 - loss: nan - \
                    val_loss: nan\nEpoch 3/5\n10/10 - loss: nan\n";
        let progress = parse_trainer_output(text);
        assert_eq!(progress.diverged_at, Some(2));
        assert_eq!(progress.final_loss, Some(0.9));
        // Line by line, as the scanner reads a live trainer.
        let mut scanner = OutputScanner::default();
        scanner.feed(text.as_bytes());
        assert_eq!(scanner.finish().progress.diverged_at, Some(2));
        assert_eq!(
            parse_trainer_output("Epoch 1: train_loss=inf").diverged_at,
            Some(1)
        );
        // Only the training loss counts, and a word merely starting with `inf` is no number.
        assert_eq!(
            parse_trainer_output("loss: 0.3 - val_loss: nan").diverged_at,
            None
        );
        assert_eq!(parse_trainer_output("loss: information").diverged_at, None);
    }

    #[test]
    fn lightning_output() {
        let text = "Epoch 4: 100%|####| 8/8 [00:01<00:00, train_loss=1.5e-02, val_loss=0.3]\n";
        assert_eq!(
            parse_trainer_output(text),
            TrainerProgress {
                last_epoch: None,
                final_loss: Some(0.015),
                diverged_at: None,
            }
        );
    }

    /// A reader that hands out at most `step` bytes a call (line ends fall between reads).
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streamed_output_reads_like_the_whole_text() {
        let text = "Epoch 1/3\n\r 1/10 [=>...] - ETA: 1s - loss: 0.9\r10/10 [====] - 1s - loss: \
                    0.5000 - val_loss: 0.7\nEpoch 2/3\n10/10 - loss: 0.25 - val_loss: 0.3\n\
                    Traceback (most recent call last):\n  ValueError: bad shape  \n\n";
        for step in [1, 3, 7, 64 * 1024] {
            let out = scan_trainer_output(Trickle(text.as_bytes(), step)).unwrap();
            assert_eq!(out.progress, parse_trainer_output(text), "step {step}");
            assert_eq!(out.last_line.as_deref(), Some("ValueError: bad shape"));
        }
        assert_eq!(
            scan_trainer_output(&b""[..]).unwrap(),
            TrainerOutput::default()
        );
    }

    /// Regression: the whole trainer output was read back into memory (a 300 MB log took
    /// 300 MB); now a line is kept up to 2 MiB, and what ends it is still found.
    #[test]
    fn a_line_without_end_is_bounded() {
        let mut text = vec![b'#'; 5 * MAX_LINE];
        text.extend_from_slice(b" Epoch 7/9 - loss: 0.125");
        let out = scan_trainer_output(&text[..]).unwrap();
        assert_eq!(out.progress.last_epoch, Some(7));
        assert_eq!(out.progress.final_loss, Some(0.125));
        let last = out.last_line.unwrap();
        assert!(last.len() <= 2 * MAX_LINE && last.ends_with("loss: 0.125"));
    }

    #[test]
    fn nothing_to_parse() {
        assert_eq!(
            parse_trainer_output("loading data…\nlosses are fine\nval_loss: 3\n"),
            TrainerProgress::default()
        );
    }

    #[test]
    fn command_lines_are_quoted_for_reading() {
        let args: Vec<OsString> = vec!["--output_dir".into(), "a b/it's".into()];
        assert_eq!(
            display_command(std::path::Path::new("ptycho_train"), &args),
            r"ptycho_train --output_dir 'a b/it'\''s'"
        );
    }
}
