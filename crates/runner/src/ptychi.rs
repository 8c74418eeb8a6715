//! The `ptychi:<algorithm>` backends: pty-chi 2.2's engines (LSQML, ePIE, rPIE, PIE, DM) as an
//! external method (`external`'s protocol). Its planning (`planning.rs`: settings from
//! `[ptychi]`, `$PTYCHI_PYTHON`), the adapter (`ptychi_adapter.py`, shipped in this binary and
//! written into the job dir: it checks the conventions with pty-chi's forward model on the
//! truth, then reconstructs each split), and the reading of its progress and facts
//! (`output.rs`). The reconstruction NPZ is the job's bundle, scored by the toolkit's one
//! scoring code like every other method's.

mod output;
mod planning;

pub use output::{ForwardCheck, PtychiFacts, PtychiScanner, PtychiSplit, parse_progress};
pub use planning::{PYTHON_ENV_VAR, plan_problem, resolve_settings};

use crate::backend::{Backend, BackendError, BackendOutcome, JobContext};
use crate::config::{BackendKind, PtychiSettings, TrainingConfig};
use crate::external::{
    ExternalMethod, Invocation, ScoreError, read_facts, remove_earlier, score_splits, write_adapter,
};
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use study_design::{Accelerator, PtychiInit};

/// The adapter, written into the job dir before it runs.
pub const ADAPTER_FILE: &str = "ptychi_adapter.py";
/// The reconstructions (`train_object`, `test_object`): the job's bundle, and what is scored.
pub const RECONSTRUCTION_FILE: &str = "ptychi_reconstruction.npz";
/// What pty-chi used and reported (settings, versions, losses, checks, times).
pub const FACTS_FILE: &str = "ptychi_facts.json";
const ADAPTER_SOURCE: &str = include_str!("ptychi/ptychi_adapter.py");

/// pty-chi run by its adapter as a child process (no shell), for one engine.
#[derive(Debug)]
pub struct PtychiBackend {
    kind: BackendKind,
}

impl PtychiBackend {
    /// The backend of `ptychi:<algorithm>`.
    pub fn new(kind: BackendKind) -> PtychiBackend {
        debug_assert!(matches!(kind, BackendKind::Ptychi { .. }));
        PtychiBackend { kind }
    }
}

impl Backend for PtychiBackend {
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

/// One pty-chi job, prepared.
pub(crate) struct PtychiJob {
    config: TrainingConfig,
    settings: PtychiSettings,
    python: PathBuf,
    reconstruction: PathBuf,
    facts: PathBuf,
}

/// A setting as the study file spells it (`poisson`, `fixed`, `flat`).
fn word(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// The adapter's arguments for a job (paths absolute: it runs in the job dir).
pub fn adapter_args(
    config: &TrainingConfig,
    settings: &PtychiSettings,
    dir: &std::path::Path,
    threads: usize,
) -> Result<Vec<OsString>, String> {
    let absolute = |p: &std::path::Path| {
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
    flag("--facts", dir.join(FACTS_FILE).into());
    flag("--algorithm", settings.algorithm.as_str().into());
    flag("--epochs", config.epochs.to_string().into());
    flag("--batch", settings.batch_size.to_string().into());
    // The adapter's choices are the study file's words.
    flag("--noise", word(settings.noise).into());
    flag("--probe", word(settings.probe).into());
    flag("--init", word(settings.init).into());
    if let Some(step) = settings.step {
        flag("--step", format!("{step:?}").into());
    }
    if let Some(weight) = settings.tv_weight {
        flag("--tv-weight", format!("{weight:?}").into());
    }
    flag("--device", settings.accelerator.as_str().into());
    flag("--threads", threads.to_string().into());
    flag(
        "--seed",
        crate::external::tool_seed(settings.seed).to_string().into(),
    );
    Ok(args)
}

impl ExternalMethod for PtychiBackend {
    type Job = PtychiJob;
    type Scanner = PtychiScanner;

    fn prepare(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<(PtychiJob, Invocation), BackendError> {
        let settings = config.ptychi.clone().ok_or_else(|| {
            BackendError::failed(format!(
                "training_config.json has no `ptychi` settings for {}: the plan is a dry run's \
                 or from another version; rerun `dose-overlap train`",
                config.backend
            ))
        })?;
        let python = settings.python.clone().ok_or_else(|| {
            BackendError::failed(format!(
                "no interpreter for pty-chi: ${PYTHON_ENV_VAR} was not set when the job was \
                 planned; export it (scripts/setup-ptychi-venv.sh prints it) and rerun \
                 `dose-overlap train`"
            ))
        })?;
        let dir = std::path::absolute(&config.output_dir).map_err(|e| {
            BackendError::failed(format!(
                "cannot make {} absolute: {e}",
                config.output_dir.display()
            ))
        })?;
        let reconstruction = dir.join(RECONSTRUCTION_FILE);
        let facts = dir.join(FACTS_FILE);
        // Outputs left by an earlier run must not pass for this run's.
        remove_earlier(&reconstruction, ctx)?;
        remove_earlier(&facts, ctx)?;
        write_adapter(&dir, ADAPTER_FILE, ADAPTER_SOURCE)?;
        let args =
            adapter_args(config, &settings, &dir, ctx.threads()).map_err(BackendError::failed)?;
        ctx.log_line(&format!(
            "pty-chi {}: {} epochs, batch {}, noise {} (LSQML only), probe {}, init {}, step {}, \
             total variation {}, accelerator {}, seed {}.",
            settings.algorithm.as_str(),
            config.epochs,
            settings.batch_size,
            word(settings.noise),
            word(settings.probe),
            word(settings.init),
            settings
                .step
                .map_or("pty-chi's default".to_string(), |s| s.to_string()),
            settings
                .tv_weight
                .map_or("off".to_string(), |w| format!("weight {w}")),
            settings.accelerator,
            crate::external::tool_seed(settings.seed)
        ));
        if settings.init == PtychiInit::Truth {
            ctx.log_line(
                "init = truth: the object starts at objectGuess, the ground truth (the original \
                 study's initialisation); the method is named accordingly.",
            );
        }
        let env = match settings.accelerator {
            // torch's CUDA build would otherwise take a GPU it sees.
            Accelerator::Cpu => vec![("CUDA_VISIBLE_DEVICES", "")],
            Accelerator::Auto | Accelerator::Gpu => Vec::new(),
        };
        let invocation = Invocation {
            program: python.clone(),
            args,
            env,
            dir,
        };
        let job = PtychiJob {
            config: config.clone(),
            settings,
            python,
            reconstruction,
            facts,
        };
        Ok((job, invocation))
    }

    fn describe(&self, job: &PtychiJob) -> String {
        format!(
            "the pty-chi adapter ({ADAPTER_FILE}, {}) with `{}` (from ${PYTHON_ENV_VAR})",
            job.settings.algorithm.as_str(),
            job.python.display()
        )
    }

    fn cannot_start(&self, job: &PtychiJob, error: &io::Error) -> String {
        format!(
            "cannot run the pty-chi adapter with `{}` (from ${PYTHON_ENV_VAR}): {error}; set \
             ${PYTHON_ENV_VAR} to the interpreter of a venv with pty-chi 2.2 (see \
             scripts/setup-ptychi-venv.sh)",
            job.python.display()
        )
    }

    fn collect(
        &self,
        job: &PtychiJob,
        output: PtychiScanner,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        let log_path = ctx.log.path().to_path_buf();
        if let Some(line) = &output.diverged {
            return Err(BackendError::failed(format!(
                "pty-chi diverged: its adapter reported a loss of inf or nan (`{line}`) and \
                 exited 0; see the job log {}",
                log_path.display()
            )));
        }
        let regular = std::fs::symlink_metadata(&job.reconstruction).is_ok_and(|m| m.is_file());
        if !regular {
            return Err(BackendError::failed(format!(
                "the pty-chi adapter exited 0 but wrote no {RECONSTRUCTION_FILE} in {}; see the \
                 job log {}",
                job.config.output_dir.display(),
                log_path.display()
            )));
        }
        let facts: PtychiFacts = read_facts(&job.facts).map_err(|e| {
            BackendError::failed(format!(
                "the pty-chi adapter exited 0 but its facts are unusable: {e}"
            ))
        })?;
        let losses = |split: &str| facts.splits.get(split).map(|s| s.losses.as_slice());
        let (Some(train), Some(test)) = (losses("train"), losses("test")) else {
            return Err(BackendError::failed(format!(
                "{} lacks a split: the adapter reconstructs train and test",
                job.facts.display()
            )));
        };
        if train.iter().chain(test).any(|l| !l.is_finite()) {
            return Err(BackendError::failed(
                "pty-chi diverged: its facts hold a loss of inf or nan",
            ));
        }
        for (name, split) in &facts.splits {
            let check = &split.forward_check;
            ctx.log_line(&format!(
                "{name}: {} positions; forward check: predicted / measured counts {:.5}, \
                 pty-chi against NumPy's model {:.2e}; {} epoch(s), {:.3} s per epoch, {:.1} s \
                 in all ({} torch thread(s)).",
                split.positions,
                check.predicted_over_measured,
                check.numpy_model_max_rel_diff,
                split.losses.len(),
                split.epoch_s_median.unwrap_or(f64::NAN),
                split.total_s.unwrap_or(f64::NAN),
                facts.torch_threads.unwrap_or(0)
            ));
        }
        ctx.log_line(&format!(
            "Device: {} (pty-chi {}, torch {}).",
            facts.device_name,
            facts.ptychi_version.as_deref().unwrap_or("?"),
            facts.torch_version
        ));
        if job.settings.accelerator == Accelerator::Gpu && facts.device != "gpu" {
            return Err(BackendError::failed(format!(
                "--accelerator gpu, but pty-chi ran on {}",
                facts.device_name
            )));
        }
        Ok(BackendOutcome {
            bundle: job.reconstruction.clone(),
            final_loss: train.last().copied(),
            epochs_completed: train.len().min(test.len()) as u32,
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
        job: &PtychiJob,
        outcome: &mut BackendOutcome,
        _ctx: &mut JobContext<'_>,
    ) -> Result<(), ScoreError> {
        outcome.metrics = Some(score_splits(&job.config, &job.reconstruction)?);
        Ok(())
    }
}
