//! The `tensorflow` and `pytorch` backends: PtychoPINN's trainer (`ptycho_train`) as an
//! external method (`external`'s protocol): its planning refusals and settings
//! (`planning.rs`), its invocation (`invocation.rs`: documented flags, the `--config` YAML for
//! N, absolute paths, the job dir as working directory, the environment), the GPU check
//! (`gpu.rs`), the reading of its output and of Lightning's `metrics.csv` (`output.rs`), and
//! scoring its bundle with the inference adapter (`scoring.rs`, `pinn_adapter.py`, run by
//! PtychoPINN's Python: `python.rs`).

mod gpu;
mod invocation;
mod output;
mod planning;
pub(crate) mod python;
pub(crate) mod scoring;

pub use invocation::{
    PINN_CONFIG_FILE, PTYCHOPINN_BUNDLE, PYTORCH_LEARNING_RATE, config_yaml, job_accelerator,
    trainer_args, trainer_env,
};
pub use output::{
    DeviceSeen, LightningLog, TrainerOutput, TrainerProgress, TrainerScanner, device_in_line,
    lightning_metrics, parse_lightning_csv, parse_trainer_output, scan_trainer_output,
};
pub use planning::{
    ACCEPTED_PATCH_SIZES, N_GROUPS_AUTO_RULE, PinnOverrides, patch_size_problem, resolve_settings,
};
pub use python::{PYTHON_ENV_VAR, shebang_python};
pub use scoring::{ADAPTER_FACTS_FILE, ADAPTER_FILE, RECONSTRUCTION_FILE};

use crate::backend::{Backend, BackendError, BackendOutcome, JobContext};
use crate::config::{BackendKind, TrainerProgram, TrainingConfig};
use crate::external::{ExternalMethod, Invocation, ScoreError};
use crate::result::PinnFacts;
use std::io;
use study_design::Accelerator;

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

impl Backend for PtychoPinnBackend {
    fn name(&self) -> &'static str {
        self.kind.as_str()
    }

    fn train(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        crate::external::train(self, config, ctx)
    }
}

/// One PtychoPINN job, prepared.
pub(crate) struct PinnJob {
    /// The job's config with absolute paths.
    config: TrainingConfig,
    trainer: TrainerProgram,
    accelerator: Accelerator,
}

impl ExternalMethod for PtychoPinnBackend {
    type Job = PinnJob;
    type Scanner = TrainerScanner;

    fn prepare(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<(PinnJob, Invocation), BackendError> {
        let trainer = config.trainer.clone().ok_or_else(|| {
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
        let config = invocation::prepare(config)?;
        let accelerator = job_accelerator(&config);
        if accelerator == Accelerator::Gpu {
            gpu::require_gpu(&config, &trainer, ctx)?;
        }
        let invocation = Invocation {
            program: trainer.program.clone(),
            args: trainer_args(&config),
            env: trainer_env(&config),
            dir: config.output_dir.clone(),
        };
        let job = PinnJob {
            config,
            trainer,
            accelerator,
        };
        Ok((job, invocation))
    }

    fn describe(&self, job: &PinnJob) -> String {
        format!("the PtychoPINN trainer {}", job.trainer.describe())
    }

    fn cannot_start(&self, job: &PinnJob, error: &io::Error) -> String {
        invocation::cannot_start(&job.trainer, error)
    }

    fn collect(
        &self,
        job: &PinnJob,
        output: TrainerScanner,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        let (config, trainer) = (&job.config, &job.trainer);
        let log_path = ctx.log.path().to_path_buf();
        let bundle = config.output_dir.join(PTYCHOPINN_BUNDLE);
        match std::fs::symlink_metadata(&bundle) {
            Ok(meta) if meta.is_file() => {}
            // A link, a FIFO or a device is no bundle: said so, never read.
            Ok(meta) => {
                let what = if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else if meta.is_dir() {
                    "a folder"
                } else {
                    "a FIFO, device or socket"
                };
                return Err(BackendError::failed(format!(
                    "the PtychoPINN trainer {} exited 0 but its {PTYCHOPINN_BUNDLE} in {} is \
                     {what}, not a regular file (not read); check its output in {}",
                    trainer.describe(),
                    config.output_dir.display(),
                    log_path.display()
                )));
            }
            Err(_) => {
                return Err(BackendError::failed(format!(
                    "the PtychoPINN trainer {} exited 0 but wrote no {PTYCHOPINN_BUNDLE} in {}; \
                     check its output in {}",
                    trainer.describe(),
                    config.output_dir.display(),
                    log_path.display()
                )));
            }
        }
        let device = output.device;
        match &device {
            Some(seen) => ctx.log_line(&format!(
                "Device: {} (the trainer's output: `{}`).",
                seen.device, seen.evidence
            )),
            None => ctx.log_line("Device: the trainer's output did not say which."),
        }
        if job.accelerator == Accelerator::Gpu
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
            && let Some(log) = lightning_metrics(&config.output_dir)
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
        Ok(BackendOutcome {
            bundle,
            final_loss: progress.final_loss,
            epochs_completed,
            loss_history: None,
            metrics: None,
            solver: None,
            reconstruction: None,
            scoring_error: None,
            pinn: Some(PinnFacts {
                accelerator: job.accelerator,
                device: device.as_ref().map(|d| d.device.to_string()),
                device_evidence: device.map(|d| d.evidence),
                intensity_scale: None,
            }),
        })
    }

    fn score(
        &self,
        job: &PinnJob,
        outcome: &mut BackendOutcome,
        ctx: &mut JobContext<'_>,
    ) -> Result<(), ScoreError> {
        let scored = scoring::score(&job.config, &job.trainer, ctx)?;
        outcome.metrics = Some(scored.metrics);
        outcome.reconstruction = Some(scored.reconstruction);
        if let Some(pinn) = &mut outcome.pinn {
            pinn.intensity_scale = scored.intensity_scale;
        }
        Ok(())
    }
}
