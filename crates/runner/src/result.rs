//! What a job ended with: the `result` object of the manifest, and `<artifact_dir>/result.json`.
//!
//! Internally tagged by `status` (`dry_run`, `success`, `failed`, `interrupted`): one explicit
//! shape per outcome, no untagged guessing.

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

    /// Whether the job ended well (a dry run or a success).
    pub fn is_ok(&self) -> bool {
        matches!(self, JobResult::DryRun(_) | JobResult::Success(_))
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
}

impl ResultRecord {
    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        crate::artifact_json(self)
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
