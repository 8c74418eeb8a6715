//! The `tensorflow:supervised` backend: PtychoPINN's supervised baseline (`ptycho.baselines`,
//! a U-Net trained on diffraction -> ground-truth patch pairs) as an external method
//! (`external`'s protocol). Its planning (`planning.rs`: settings from `[supervised]`, the
//! interpreter, the patch sizes its U-Net takes), the adapter (`supervised_adapter.py`, shipped
//! in this binary and written into the job dir beside `pinn_adapter.py`, whose `stitch` it
//! imports, so both PtychoPINN models are stitched alike), and its facts (`output.rs`). Its
//! output is read by PtychoPINN's [`crate::ptychopinn::TrainerScanner`] (Keras's lines); the
//! stitched reconstruction is scored by the toolkit's one scoring code.

mod output;
mod planning;

pub use output::SupervisedFacts;
pub use planning::{interpreter, plan_problem, resolve_settings};

use crate::backend::{Backend, BackendError, BackendOutcome, JobContext};
use crate::config::{BackendKind, SupervisedSettings, TrainingConfig};
use crate::external::{
    ExternalMethod, Invocation, ScoreError, read_facts, remove_earlier, score_splits, write_adapter,
};
use crate::ptychopinn::{PYTHON_ENV_VAR, TrainerScanner};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use study_design::Accelerator;

/// The adapter, written into the job dir before it runs.
pub const ADAPTER_FILE: &str = "supervised_adapter.py";
/// The trained model's weights: the job's bundle.
pub const BUNDLE: &str = "supervised.weights.h5";
/// The stitched reconstructions (`train_object`, `test_object`), what is scored.
pub const RECONSTRUCTION_FILE: &str = "supervised_reconstruction.npz";
/// What the adapter reports (epochs, losses, devices, times).
pub const FACTS_FILE: &str = "supervised_facts.json";
const ADAPTER_SOURCE: &str = include_str!("supervised/supervised_adapter.py");

/// PtychoPINN's supervised baseline, trained and inferred by its adapter as a child process.
#[derive(Debug, Default)]
pub struct SupervisedBackend;

impl Backend for SupervisedBackend {
    fn name(&self) -> &'static str {
        BackendKind::Supervised.as_str()
    }

    fn train(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        crate::external::train(self, config, ctx)
    }
}

/// One supervised job, prepared.
pub(crate) struct SupervisedJob {
    config: TrainingConfig,
    settings: SupervisedSettings,
    python: PathBuf,
    bundle: PathBuf,
    reconstruction: PathBuf,
    facts: PathBuf,
}

/// The adapter's arguments for a job (paths absolute: it runs in the job dir).
pub fn adapter_args(
    config: &TrainingConfig,
    settings: &SupervisedSettings,
    dir: &Path,
) -> Result<Vec<OsString>, String> {
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|e| format!("cannot make {} absolute: {e}", p.display()))
    };
    let mut args: Vec<OsString> = vec![dir.join(ADAPTER_FILE).into()];
    let mut flag = |name: &str, value: OsString| {
        args.push(name.into());
        args.push(value);
    };
    flag("--train", absolute(&config.train_data_file)?.into());
    flag("--test", absolute(&config.test_data_file)?.into());
    flag("--out", dir.join(RECONSTRUCTION_FILE).into());
    flag("--model-dir", dir.into());
    flag("--facts", dir.join(FACTS_FILE).into());
    flag("--epochs", config.epochs.to_string().into());
    flag("--batch-size", settings.batch_size.to_string().into());
    flag(
        "--n-filters-scale",
        settings.n_filters_scale.to_string().into(),
    );
    flag(
        "--seed",
        crate::external::tool_seed(settings.seed).to_string().into(),
    );
    flag("--device", settings.accelerator.as_str().into());
    Ok(args)
}

impl ExternalMethod for SupervisedBackend {
    type Job = SupervisedJob;
    type Scanner = TrainerScanner;

    fn prepare(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<(SupervisedJob, Invocation), BackendError> {
        let settings = config.supervised.clone().ok_or_else(|| {
            BackendError::failed(
                "training_config.json has no `supervised` settings: the plan is a dry run's or \
                 from another version; rerun `dose-overlap train`",
            )
        })?;
        let python = settings.python.clone().ok_or_else(|| {
            BackendError::failed(format!(
                "no interpreter for PtychoPINN's supervised model: ${PYTHON_ENV_VAR} was not \
                 set and the trainer program was no Python script when the job was planned; \
                 export ${PYTHON_ENV_VAR} and rerun `dose-overlap train`"
            ))
        })?;
        let dir = std::path::absolute(&config.output_dir).map_err(|e| {
            BackendError::failed(format!(
                "cannot make {} absolute: {e}",
                config.output_dir.display()
            ))
        })?;
        let (bundle, reconstruction, facts) = (
            dir.join(BUNDLE),
            dir.join(RECONSTRUCTION_FILE),
            dir.join(FACTS_FILE),
        );
        // Outputs left by an earlier run must not pass for this run's.
        for earlier in [&bundle, &reconstruction, &facts] {
            remove_earlier(earlier, ctx)?;
        }
        write_adapter(&dir, ADAPTER_FILE, ADAPTER_SOURCE)?;
        // Its `stitch` is PtychoPINN's jobs' own.
        write_adapter(
            &dir,
            crate::ptychopinn::ADAPTER_FILE,
            crate::ptychopinn::scoring::ADAPTER_SOURCE,
        )?;
        let args = adapter_args(config, &settings, &dir).map_err(BackendError::failed)?;
        ctx.log_line(&format!(
            "PtychoPINN's supervised baseline (ptycho.baselines): at most {} epochs (its early \
             stopping may end it sooner), batch {}, n_filters_scale {}, seed {}, accelerator \
             {}; trained on the train split's diffraction and ground-truth patches (Y), \
             inferred on both splits.",
            config.epochs,
            settings.batch_size,
            settings.n_filters_scale,
            crate::external::tool_seed(settings.seed),
            settings.accelerator
        ));
        let env = match settings.accelerator {
            Accelerator::Cpu => vec![("CUDA_VISIBLE_DEVICES", "")],
            Accelerator::Auto | Accelerator::Gpu => Vec::new(),
        };
        let invocation = Invocation {
            program: python.clone(),
            args,
            env,
            dir,
        };
        let job = SupervisedJob {
            config: config.clone(),
            settings,
            python,
            bundle,
            reconstruction,
            facts,
        };
        Ok((job, invocation))
    }

    fn describe(&self, job: &SupervisedJob) -> String {
        format!(
            "the supervised baseline's adapter ({ADAPTER_FILE}) with `{}`",
            job.python.display()
        )
    }

    fn cannot_start(&self, job: &SupervisedJob, error: &io::Error) -> String {
        format!(
            "cannot run the supervised baseline's adapter with `{}` (${PYTHON_ENV_VAR}, or the \
             trainer's `#!` Python): {error}; set ${PYTHON_ENV_VAR} to PtychoPINN's interpreter \
             (scripts/setup-ptychopinn-venv.sh prints it)",
            job.python.display()
        )
    }

    fn collect(
        &self,
        job: &SupervisedJob,
        output: TrainerScanner,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        let log_path = ctx.log.path().to_path_buf();
        if let Some(epoch) = output.progress.diverged_at {
            return Err(BackendError::failed(format!(
                "the supervised baseline diverged at epoch {epoch}: Keras printed a training \
                 loss of inf or nan; see the job log {}",
                log_path.display()
            )));
        }
        for (file, what) in [
            (&job.bundle, BUNDLE),
            (&job.reconstruction, RECONSTRUCTION_FILE),
        ] {
            if !std::fs::symlink_metadata(file).is_ok_and(|m| m.is_file()) {
                return Err(BackendError::failed(format!(
                    "the supervised baseline's adapter exited 0 but wrote no {what} in {}; see \
                     the job log {}",
                    job.config.output_dir.display(),
                    log_path.display()
                )));
            }
        }
        let facts: SupervisedFacts = read_facts(&job.facts).map_err(|e| {
            BackendError::failed(format!(
                "the supervised baseline's adapter exited 0 but its facts are unusable: {e}"
            ))
        })?;
        if facts.loss.is_empty() || facts.loss.iter().any(|l| !l.is_finite()) {
            return Err(BackendError::failed(format!(
                "the supervised baseline's facts hold no finite loss history ({} epochs)",
                facts.loss.len()
            )));
        }
        ctx.log_line(&format!(
            "{} of at most {} epoch(s){} in {:.1} s, inference {:.1} s; device {} (TensorFlow \
             {}).",
            facts.epochs_run,
            facts.epochs_asked,
            if facts.early_stopped {
                " (early stopping)"
            } else {
                ""
            },
            facts.train_s.unwrap_or(f64::NAN),
            facts.infer_s.unwrap_or(f64::NAN),
            facts.device,
            facts.tensorflow_version
        ));
        if job.settings.accelerator == Accelerator::Gpu && facts.device != "gpu" {
            return Err(BackendError::failed(format!(
                "--accelerator gpu, but the supervised baseline trained on {}",
                facts.device
            )));
        }
        Ok(BackendOutcome {
            bundle: job.bundle.clone(),
            final_loss: facts.loss.last().copied(),
            epochs_completed: facts.epochs_run,
            loss_history: Some(facts.loss_history()),
            metrics: None,
            solver: Some(facts.for_result()),
            reconstruction: Some(job.reconstruction.clone()),
            scoring_error: None,
            pinn: None,
        })
    }

    fn score(
        &self,
        job: &SupervisedJob,
        outcome: &mut BackendOutcome,
        _ctx: &mut JobContext<'_>,
    ) -> Result<(), ScoreError> {
        outcome.metrics = Some(score_splits(&job.config, &job.reconstruction)?);
        Ok(())
    }
}
