//! `--dose`, `--view`, `--gridsize`: narrowing the enumerated matrix.

use crate::{SkipEvent, TrainingJob, same_dose};
use serde::{Deserialize, Serialize};

/// Filters on the matrix; `None` matches everything. Combined filters must all match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFilter {
    /// Only this dose (however it was written: `1000`, `1e3`, `1000.0`).
    pub dose: Option<f64>,
    /// Only this view.
    pub view: Option<String>,
    /// Only this gridsize.
    pub gridsize: Option<u32>,
}

impl JobFilter {
    /// Whether `job` passes every given filter.
    pub fn matches(&self, job: &TrainingJob) -> bool {
        self.dose.is_none_or(|d| same_dose(d, job.dose))
            && self.view.as_ref().is_none_or(|v| *v == job.view)
            && self.gridsize.is_none_or(|g| g == job.gridsize)
    }

    /// Whether a skipped view would have been selected (skip events carry no gridsize).
    pub fn matches_skip(&self, skip: &SkipEvent) -> bool {
        self.dose.is_none_or(|d| same_dose(d, skip.dose))
            && self.view.as_ref().is_none_or(|v| *v == skip.view)
    }

    /// True when no filter is given.
    pub fn is_empty(&self) -> bool {
        self.dose.is_none() && self.view.is_none() && self.gridsize.is_none()
    }

    /// The filters as command-line flags (`--dose 1000 --view dense`), or `no filter`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(dose) = self.dose {
            parts.push(format!("--dose {dose}"));
        }
        if let Some(view) = &self.view {
            parts.push(format!("--view {view}"));
        }
        if let Some(gridsize) = self.gridsize {
            parts.push(format!("--gridsize {gridsize}"));
        }
        if parts.is_empty() {
            "no filter".to_string()
        } else {
            parts.join(" ")
        }
    }
}
