//! What a job ended with: the `result` object of the manifest, and `<artifact_dir>/result.json`.
//!
//! Internally tagged by `status` (`dry_run`, `success`, `failed`, `interrupted`): one explicit
//! shape per outcome, no untagged guessing.

use crate::digest::FileDigest;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// File name of a job's result inside its artifact dir.
pub const RESULT_FILE: &str = "result.json";
/// Version of the `result.json` format.
pub const RESULT_FORMAT_VERSION: u32 = 1;

/// The outcome of one job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JobResult {
    /// `--dry-run`: nothing was executed.
    DryRun(DryRunSummary),
    /// The backend trained and left a bundle.
    Success(TrainedResult),
    /// The job could not start or did not finish well.
    Failed(FailedResult),
    /// Ctrl-C or SIGTERM stopped the run before this job finished.
    Interrupted(InterruptedResult),
}

/// What a dry run would have done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunSummary {
    /// Dose.
    pub dose: f64,
    /// View.
    pub view: String,
    /// Gridsize.
    pub gridsize: u32,
    /// Training NPZ.
    pub train_data_path: PathBuf,
    /// Test NPZ.
    pub test_data_path: PathBuf,
    /// The job's artifact dir.
    pub artifact_dir: PathBuf,
    /// The job's log.
    pub log_path: PathBuf,
    /// The backend that would have run.
    pub backend: String,
}

/// A successful training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedResult {
    /// The backend that trained.
    pub backend: String,
    /// Last loss the backend reported (`null` when it reported none).
    pub final_loss: Option<f64>,
    /// Epochs trained.
    pub epochs_completed: u32,
    /// The bundle, relative to the job's artifact dir (`wts.h5.zip`).
    pub bundle_path: String,
    /// SHA-256 of the bundle, 64 lowercase hex characters (what `sha256sum` prints).
    pub bundle_sha256: String,
    /// Size of the bundle in bytes (positive).
    pub bundle_size_bytes: u64,
    /// Loss per epoch, in the backend's shape (an array, or arrays per split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_history: Option<serde_json::Value>,
    /// Reconstruction metrics against ground truth, in the backend's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
    /// What the solver did beyond the loss (ml: likelihood, prior weight, stopping rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<serde_json::Value>,
    /// The reconstruction `metrics` scores, relative to the artifact dir
    /// (`pinn_reconstruction.npz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconstruction_path: Option<String>,
    /// Why scoring a trained job failed (it has no `metrics`; its training result stands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring_error: Option<String>,
    /// What a PtychoPINN trainer did that a reader must know (the device it used, whether its
    /// intensity scale trained); absent for native jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinn: Option<PinnFacts>,
}

impl TrainedResult {
    /// Why this trained job was not scored, if it was not: `scoring_error: <its first line>`,
    /// or (a result no backend writes) that it records neither metrics nor a
    /// `scoring_error`.
    pub fn unscored(&self) -> Option<String> {
        match (&self.scoring_error, &self.metrics) {
            (Some(error), _) => Some(format!(
                "scoring_error: {}",
                error.lines().next().unwrap_or("")
            )),
            (None, None) => Some("no metrics and no scoring_error".to_string()),
            (None, Some(_)) => None,
        }
    }
}

/// What a PtychoPINN job's trainer and bundle said about how it trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnFacts {
    /// Where the job asked to train (`auto`, `cpu`, `gpu`).
    pub accelerator: study_design::Accelerator,
    /// The device the trainer's output says it trained on (`cpu`, `gpu`); `null` when its
    /// output did not say.
    pub device: Option<String>,
    /// The trainer's line that says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_evidence: Option<String>,
    /// PtychoPINN's learnable intensity scale, read from the bundle by the inference adapter
    /// (absent when scoring did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_scale: Option<IntensityScale>,
}

/// PtychoPINN's intensity scale (diffraction in / out of the network is multiplied / divided
/// by it): its start, the bundle's value, and what that means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntensityScale {
    /// The start: TensorFlow sqrt(nphotons) / (N / 2); PyTorch its config's `intensity_scale`.
    pub initial: f64,
    /// The bundle's value after training.
    pub trained: f64,
    /// Whether PtychoPINN's configuration marks it trainable.
    pub trainable: bool,
    /// `trained` (it moved), `frozen` (trainable, but the bundle's value equals its start:
    /// not PtychoPINN as published) or `fixed` (its configuration does not train it).
    pub status: ScaleStatus,
}

/// What became of the intensity scale in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleStatus {
    /// It moved from its start.
    Trained,
    /// Marked trainable, yet the bundle's value equals its start (TensorFlow under Keras 3:
    /// a plain `tf.Variable` in a layer is not a trained weight).
    Frozen,
    /// Not trainable by PtychoPINN's own configuration.
    Fixed,
}

impl IntensityScale {
    /// Relative change below which the scale did not train: the bundle stores it as float32,
    /// so an untouched start differs from its f64 value by about 1e-8.
    pub const UNCHANGED: f64 = 1e-6;

    /// Classifies a bundle's scale.
    pub fn new(initial: f64, trained: f64, trainable: bool) -> IntensityScale {
        let moved = !(initial.is_finite() && trained.is_finite())
            || ((trained - initial) / initial).abs() > Self::UNCHANGED;
        let status = match (trainable, moved) {
            (_, true) => ScaleStatus::Trained,
            (true, false) => ScaleStatus::Frozen,
            (false, false) => ScaleStatus::Fixed,
        };
        IntensityScale {
            initial,
            trained,
            trainable,
            status,
        }
    }

    /// One sentence for a log or report.
    pub fn describe(&self) -> String {
        match self.status {
            ScaleStatus::Trained => format!(
                "intensity scale trained: {:.6} -> {:.6} (x{:.4})",
                self.initial,
                self.trained,
                self.trained / self.initial
            ),
            ScaleStatus::Frozen => format!(
                "intensity scale FROZEN at its start {:.6}: PtychoPINN marks it trainable, but \
                 the bundle's value equals its start (Keras 3 does not train the plain \
                 tf.Variable PtychoPINN keeps it in); not PtychoPINN as published",
                self.initial
            ),
            ScaleStatus::Fixed => format!(
                "intensity scale fixed at {:.6} by PtychoPINN's configuration (not trainable)",
                self.trained
            ),
        }
    }
}

/// A job that failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedResult {
    /// The backend that was to train.
    pub backend: String,
    /// What went wrong and what to do about it.
    pub error: String,
    /// Loss per epoch up to the failure (a diverged solver keeps its history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_history: Option<serde_json::Value>,
}

/// A job stopped (or never started) because the run was interrupted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterruptedResult {
    /// The backend that was to train.
    pub backend: String,
    /// Whether the job had started when the run was interrupted.
    pub started: bool,
    /// Which signal, and how to resume.
    pub error: String,
}

impl JobResult {
    /// `dry_run`, `success`, `failed` or `interrupted`.
    pub fn status(&self) -> &'static str {
        match self {
            JobResult::DryRun(_) => "dry_run",
            JobResult::Success(_) => "success",
            JobResult::Failed(_) => "failed",
            JobResult::Interrupted(_) => "interrupted",
        }
    }

    /// Whether the job ended well: a dry run, or a success that was scored (it has metrics
    /// and no `scoring_error`). A job trained but not scored is a failure to report: `train`
    /// exits 1 for it, `verify` lists it, `report` counts it as not ended well, and resume
    /// trains and scores it again (one rule, [`crate::check::check_job`]'s `NotScored`).
    pub fn is_ok(&self) -> bool {
        match self {
            JobResult::DryRun(_) => true,
            JobResult::Success(trained) => trained.unscored().is_none(),
            JobResult::Failed(_) | JobResult::Interrupted(_) => false,
        }
    }

    /// The error message of a failed or interrupted job.
    pub fn error(&self) -> Option<&str> {
        match self {
            JobResult::Failed(f) => Some(&f.error),
            JobResult::Interrupted(i) => Some(&i.error),
            _ => None,
        }
    }
}

/// `<artifact_dir>/result.json`: a job's result with the identity of the plan and job it
/// belongs to, so that `collect` never mixes in a result left by another plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultRecord {
    /// [`RESULT_FORMAT_VERSION`].
    pub format_version: u32,
    /// SHA-256 of the plan's bytes ([`crate::Plan::id`]).
    pub plan_id: String,
    /// The job's index in the plan.
    pub index: usize,
    /// Dose.
    pub dose: f64,
    /// View.
    pub view: String,
    /// Gridsize.
    pub gridsize: u32,
    /// The outcome.
    pub result: JobResult,
    /// SHA-256 of the job's `training_config.json` bytes when it ran: resuming skips the job
    /// only when the new resolved config has the same digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    /// Size and SHA-256 of the train and test NPZ when the job ran (not recorded for dry runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<InputDigests>,
}

/// The inputs a job trained on, as they were when it ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDigests {
    /// The training NPZ.
    pub train: FileDigest,
    /// The test NPZ.
    pub test: FileDigest,
}

impl ResultRecord {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        crate::artifact::artifact_json(self)
    }

    /// Parses a `result.json`, checking its format version.
    pub fn from_json(text: &str) -> Result<ResultRecord, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(RESULT_FORMAT_VERSION)) {
            return Err(format!(
                "format_version {} is not {RESULT_FORMAT_VERSION}: written by another version \
                 of dose-overlap; rerun the job",
                version.map_or("missing".to_string(), |v| v.to_string())
            ));
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}
