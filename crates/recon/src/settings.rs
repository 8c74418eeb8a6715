//! What every engine is given: [`Settings`] (the algorithm, its steps, epochs, seed, grouping
//! and the ml prior and tolerance), and their check.

use crate::ReconError;
use serde::{Deserialize, Serialize};
use study_design::Algorithm;

/// Settings of one reconstruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// ePIE, rPIE or ml.
    pub algorithm: Algorithm,
    /// ePIE object step; rPIE regularisation weight (1 = ePIE with unit step; smaller = bigger
    /// steps where the probe is weak); ml initial step (1 = the projection step).
    pub alpha: f64,
    /// Probe step (ePIE) or probe regularisation weight (rPIE: smaller = bigger probe steps),
    /// when the probe is refined.
    pub beta: f64,
    /// Epochs (passes over every position).
    pub epochs: u32,
    /// Refine the probe as well as the object.
    pub refine_probe: bool,
    /// Seed of the visiting order and of the grouping.
    pub seed: u64,
    /// g: positions are processed in groups of C = g^2 (1 = one at a time). Every epoch, each
    /// position in the seeded random order anchors one group: itself plus C - 1 positions
    /// drawn without replacement (seeded) from its K nearest neighbours (ties by index). E_F
    /// counts each anchor's own evaluation, so every position once per epoch.
    pub gridsize: u32,
    /// K: each group is drawn from a position's K nearest neighbours (used when g > 1).
    pub neighbor_count: u32,
    /// ml: weight of the smoothness prior (counts units; 0 = none).
    #[serde(default)]
    pub smoothness: f64,
    /// ml: stop once the object changed by less than this (relative L2, objectGuess grid)
    /// over the last [`WINDOW`](crate::WINDOW) epochs; 0 = fixed budget.
    #[serde(default)]
    pub tolerance: f64,
}

impl Settings {
    /// C = g^2.
    pub fn group_size(&self) -> usize {
        let g = self.gridsize.max(1) as usize;
        g * g
    }

    pub(crate) fn check(&self) -> Result<(), ReconError> {
        let mut problems = Vec::new();
        if !(self.smoothness.is_finite() && self.smoothness >= 0.0) {
            problems.push(format!("smoothness={} must be >= 0", self.smoothness));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            problems.push(format!("tolerance={} must be >= 0", self.tolerance));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            problems.push(format!("alpha={} must be in (0, 1]", self.alpha));
        }
        if !(self.beta > 0.0 && self.beta <= 1.0) {
            problems.push(format!("beta={} must be in (0, 1]", self.beta));
        }
        if self.gridsize == 0 {
            problems.push("gridsize must be at least 1".to_string());
        }
        if self.gridsize > 1 && (self.neighbor_count as usize) + 1 < self.group_size() {
            problems.push(format!(
                "neighbor_count={} < C-1={} for gridsize={} (OVERSAMPLING-001)",
                self.neighbor_count,
                self.group_size() - 1,
                self.gridsize
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ReconError::BadSettings(problems.join("; ")))
        }
    }
}
