//! Phase E: the training job matrix enumerated from the design and the Phase C/D trees.
//!
//! One job per (dose, variant): doses in design order, variants `baseline` then the design's
//! overlap views in order. Enumeration checks that the data files exist and, for a missing
//! view, reads Phase D's `overlap_report.json` for the reason; it does no other I/O.
#![deny(missing_docs)]

mod dose;
mod enumerate;
mod filter;
mod overlap_report;

pub use dose::{format_dose, same_dose};
pub use enumerate::{MissingData, enumerate};
pub use filter::JobFilter;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The variant trained on Phase C's full data.
pub const BASELINE: &str = "baseline";
/// Gridsize of the baseline variant.
pub const BASELINE_GRIDSIZE: u32 = 1;
/// File name of every job's log inside its artifact dir.
pub const LOG_FILE: &str = "train.log";

/// One training run: which data, at which gridsize, writing where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingJob {
    /// Photon dose (nphotons).
    pub dose: f64,
    /// `baseline` or an overlap view (`dense`, `sparse`).
    pub view: String,
    /// 1 for the baseline, the design's largest gridsize for overlap views.
    pub gridsize: u32,
    /// Training NPZ.
    pub train_data_path: PathBuf,
    /// Test NPZ.
    pub test_data_path: PathBuf,
    /// `<artifact_root>/dose_<int>/<view>/gs<gridsize>`.
    pub artifact_dir: PathBuf,
    /// `<artifact_dir>/train.log`.
    pub log_path: PathBuf,
}

/// `<artifacts>/dose_<int>/<view>/gs<gridsize>`: a job's artifact dir under an artifact root
/// (where enumeration puts it, and the only place a plan or manifest may name for it).
pub fn job_dir(artifacts: &std::path::Path, dose: f64, view: &str, gridsize: u32) -> PathBuf {
    artifacts
        .join(study_design::Design::dose_dir_name(dose))
        .join(view)
        .join(format!("gs{gridsize}"))
}

/// Why (dose, view, gridsize) read from an artifact (a manifest, a plan) cannot be a job's,
/// if it cannot: the bounds `design` holds a study to (a dose of 1 to 1e15 photons, a
/// gridsize of 1 to 16) and a view `design` accepts or `baseline`. A view becomes a folder
/// and file names (`dose_<int>/<view>/`, pictures), and a line of Markdown and CSV.
pub fn job_identity_problem(dose: f64, view: &str, gridsize: u32) -> Option<String> {
    use study_design::limits::{MAX_DOSE, MAX_GRIDSIZE, MIN_DOSE};
    if !(MIN_DOSE..=MAX_DOSE).contains(&dose) {
        return Some(format!(
            "dose {dose} is not between {MIN_DOSE:e} and {MAX_DOSE:e} photons per pattern"
        ));
    }
    if !(1..=MAX_GRIDSIZE).contains(&gridsize) {
        return Some(format!(
            "gridsize {gridsize} is not between 1 and {MAX_GRIDSIZE}"
        ));
    }
    if view != BASELINE
        && let Some(why) = study_design::view_name_problem(view)
    {
        return Some(format!(
            "view '{}' is not usable as a folder or file name: it {why}",
            view.escape_debug()
        ));
    }
    None
}

impl TrainingJob {
    /// `baseline/dose=1e+03`: how logs and stdout name the job.
    pub fn label(&self) -> String {
        format!("{}/dose={}", self.view, format_dose(self.dose))
    }
}

/// A job left out because its Phase D view is missing (non-strict mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipEvent {
    /// Dose of the skipped job.
    pub dose: f64,
    /// The view that was skipped.
    pub view: String,
    /// Which files were missing and, where Phase D recorded one, why it rejected the view.
    pub reason: String,
}

/// Where the phases' trees are. Paths are used as given (relative paths stay relative).
#[derive(Clone, Debug, PartialEq)]
pub struct Roots {
    /// Phase C: `dose_<int>/patched_{train,test}.npz`.
    pub phase_c: PathBuf,
    /// Phase D: `dose_<int>/<view>/<view>_{train,test}.npz` and `dose_<int>/overlap_report.json`.
    pub phase_d: PathBuf,
    /// Where jobs write their artifacts.
    pub artifacts: PathBuf,
}

/// The enumerated matrix: every job whose data exist, and every view skipped, before filters.
#[derive(Clone, Debug, PartialEq)]
pub struct JobMatrix {
    /// Jobs in matrix order (design dose order; baseline, then views in design order).
    pub jobs: Vec<TrainingJob>,
    /// Skip events in matrix order.
    pub skipped: Vec<SkipEvent>,
}

/// Why a matrix could not be enumerated or narrowed.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// A root folder is missing or not a folder.
    #[error("{which} root {path} {problem}: {hint}")]
    Root {
        /// `Phase C` or `Phase D`.
        which: &'static str,
        /// The root as given.
        path: PathBuf,
        /// `does not exist` / `is not a folder`.
        problem: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// Data files the matrix needs are missing (every missing one is listed).
    #[error("{} missing training input(s):\n  {}", problems.len(), problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    MissingData {
        /// Each missing Phase C file, and (strict mode) each missing Phase D view.
        problems: Vec<MissingData>,
    },
    /// The filters select no job.
    #[error("no job matches {filters}: {holds}")]
    NoMatch {
        /// The filters as given (`--dose 5000 --view dense`).
        filters: String,
        /// What the matrix holds, and any skip that the filters would have matched.
        holds: String,
    },
}

impl JobMatrix {
    /// The jobs that `filter` selects, in matrix order; an error saying what the matrix holds
    /// when it selects none.
    pub fn select(&self, filter: &JobFilter) -> Result<Vec<TrainingJob>, MatrixError> {
        let selected: Vec<TrainingJob> = self
            .jobs
            .iter()
            .filter(|job| filter.matches(job))
            .cloned()
            .collect();
        if selected.is_empty() {
            return Err(MatrixError::NoMatch {
                filters: filter.describe(),
                holds: self.describe_for(filter),
            });
        }
        Ok(selected)
    }

    /// What the matrix holds, for an error message; mentions skipped views the filter matches.
    fn describe_for(&self, filter: &JobFilter) -> String {
        fn distinct<T: PartialEq + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
            let mut out: Vec<T> = Vec::new();
            for item in items {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            out
        }
        let mut doses: Vec<f64> = Vec::new();
        for dose in self.jobs.iter().map(|j| j.dose) {
            if !doses.iter().any(|d| same_dose(*d, dose)) {
                doses.push(dose);
            }
        }
        let views = distinct(self.jobs.iter().map(|j| j.view.clone()));
        let gridsizes = distinct(self.jobs.iter().map(|j| j.gridsize));
        let join = |items: Vec<String>| {
            if items.is_empty() {
                "none".to_string()
            } else {
                items.join(", ")
            }
        };
        let mut text = format!(
            "the matrix holds {} job(s): doses {}; views {}; gridsizes {}",
            self.jobs.len(),
            join(doses.iter().map(|d| d.to_string()).collect()),
            join(views),
            join(gridsizes.iter().map(|g| g.to_string()).collect()),
        );
        let skipped: Vec<&SkipEvent> = self
            .skipped
            .iter()
            .filter(|s| filter.matches_skip(s))
            .collect();
        for skip in skipped {
            text.push_str(&format!(
                "\n  {} at dose {} was skipped: {}",
                skip.view, skip.dose, skip.reason
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests;
