//! `--backend native`: the toolkit's own ePIE/rPIE solver (crates/recon), run in-process.
//!
//! The job's resolved [`TrainingConfig`] gives everything: the train and test NPZ, gridsize,
//! K, epochs and the solver settings. Both splits are reconstructed (at once when the runner
//! leaves the job two threads: they are independent, so the bits do not depend on it), scored
//! against `objectGuess`, and written into `native_bundle.npz` in the artifact dir.

use crate::backend::{Backend, BackendError, BackendOutcome, JobContext};
use crate::config::TrainingConfig;
use recon::{EvalOptions, JobRequest, ReconError, Settings, Split};
use std::ops::ControlFlow;
use std::sync::Mutex;

/// The native solver backend.
#[derive(Debug, Default)]
pub struct NativeBackend;

impl NativeBackend {
    /// The backend (one instance serves every job).
    pub fn new() -> NativeBackend {
        NativeBackend
    }
}

/// The solver settings of a job: the one translation into [`recon::Settings`], from the
/// resolved configuration (its seed already resolved, its epochs the job's), which is all a
/// backend receives.
pub fn settings(config: &TrainingConfig) -> Settings {
    Settings {
        algorithm: config.solver.algorithm,
        alpha: config.solver.alpha,
        beta: config.solver.beta,
        epochs: config.epochs,
        refine_probe: config.solver.refine_probe,
        seed: config.solver.seed,
        gridsize: config.gridsize,
        neighbor_count: config.neighbor_count,
        smoothness: config.solver.smoothness,
        tolerance: config.solver.tolerance,
    }
}

/// The job's configuration as stored in the bundle: the resolved config without the paths
/// that depend on where the run happens (artifact dir, log; data files by name only), so that
/// the same job gives the same bundle bytes under any artifact root.
fn bundle_job_config(config: &TrainingConfig) -> serde_json::Value {
    let mut value = serde_json::to_value(config).unwrap_or(serde_json::Value::Null);
    if let Some(fields) = value.as_object_mut() {
        fields.remove("output_dir");
        fields.remove("log_path");
        fields.remove("trainer");
        for (key, path) in [
            ("train_data_file", &config.train_data_file),
            ("test_data_file", &config.test_data_file),
        ] {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            fields.insert(key.to_string(), serde_json::Value::String(name));
        }
    }
    value
}

impl Backend for NativeBackend {
    fn name(&self) -> &'static str {
        "native"
    }

    fn train(
        &self,
        config: &TrainingConfig,
        ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        let settings = settings(config);
        let bundle = config.output_dir.join(recon::BUNDLE_FILE);
        let threads = ctx.threads().min(2);
        let lender = ctx.lender();
        let request = JobRequest {
            train_path: config.train_data_file.clone(),
            test_path: config.test_data_file.clone(),
            settings: settings.clone(),
            eval: EvalOptions {
                ssim_sigma: config.metrics_config.ms_ssim_sigma,
                ..EvalOptions::default()
            },
            bundle_path: bundle.clone(),
            job_config: bundle_job_config(config),
            threads,
        };
        ctx.log_line(&format!(
            "native solver: {:?} alpha={} beta={} epochs={} refine_probe={} seed={} gridsize={} \
             neighbor_count={} smoothness={} tolerance={} threads={threads} fft={:?}",
            settings.algorithm,
            settings.alpha,
            settings.beta,
            settings.epochs,
            settings.refine_probe,
            settings.seed,
            settings.gridsize,
            settings.neighbor_count,
            settings.smoothness,
            settings.tolerance,
            recon::FftPath::detect(),
        ));
        let epochs = settings.epochs;
        let losses = Mutex::new(Vec::new());
        let shared: &JobContext<'_> = ctx;
        let on_epoch = |split: Split, epoch: u32, loss: f64| {
            losses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((split, epoch, loss));
            // The test split runs beside the train split when the job has two threads: only the
            // train split reports live, so the lines on stderr come in a fixed order.
            if split == Split::Train {
                shared.progress(&format!("train epoch {epoch}/{epochs} E_F {loss:.4e}"));
            }
            if shared.is_cancelled() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let result = recon::run_job_lent(&request, &on_epoch, lender);
        let mut losses = losses.into_inner().unwrap_or_else(|e| e.into_inner());
        losses.sort_by_key(|&(split, epoch, _)| (split == Split::Test, epoch));
        for (split, epoch, loss) in losses {
            ctx.log_line(&format!("{split} epoch {epoch}/{epochs} E_F {loss:.6e}"));
        }
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(ReconError::Cancelled) => return Err(BackendError::Interrupted),
            Err(e @ ReconError::Diverged { .. }) => {
                let message = format!("native solver: {e}");
                ctx.log_line(&message);
                let ReconError::Diverged { loss_history, .. } = e else {
                    unreachable!()
                };
                return Err(BackendError::FailedWithHistory {
                    message,
                    loss_history: serde_json::json!(loss_history),
                });
            }
            Err(e) => {
                let message = format!("native solver: {e}");
                ctx.log_line(&message);
                return Err(BackendError::failed(message));
            }
        };
        for (split, s) in [(Split::Train, &outcome.train), (Split::Test, &outcome.test)] {
            let line = format!(
                "{split}: {} positions, final E_F {:.4e}, phase MAE {:.4} rad, amplitude MAE \
                 {:.4}, Fienup NRMSE {:.4} (flat start {:.4})",
                s.positions,
                s.final_loss,
                s.metrics.phase.mae,
                s.metrics.amplitude.mae,
                s.metrics.fienup_nrmse,
                s.metrics.fienup_nrmse_initial,
            );
            ctx.log_line(&line);
        }
        ctx.progress(&format!(
            "test {} epochs E_F {:.4e}; Fienup NRMSE train {:.4} test {:.4}",
            outcome.test.epochs_completed,
            outcome.test.final_loss,
            outcome.train.metrics.fienup_nrmse,
            outcome.test.metrics.fienup_nrmse,
        ));
        Ok(BackendOutcome {
            bundle,
            final_loss: Some(outcome.train.final_loss),
            epochs_completed: outcome.train.epochs_completed,
            loss_history: Some(serde_json::json!({
                "train": outcome.train.loss_history,
                "test": outcome.test.loss_history,
            })),
            metrics: Some(serde_json::json!({
                "train": outcome.train.metrics,
                "test": outcome.test.metrics,
            })),
            solver: outcome.train.ml.as_ref().map(|train| {
                serde_json::json!({
                    "algorithm": "ml",
                    "train": train,
                    "test": outcome.test.ml,
                })
            }),
            reconstruction: None,
            scoring_error: None,
            pinn: None,
        })
    }
}
