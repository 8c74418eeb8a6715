//! The `[solver]` table of a study file: settings of the native backend.

use serde::{Deserialize, Serialize};

/// Reconstruction algorithm of the native backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// ePIE (Maiden & Rodenburg 2009).
    Epie,
    /// rPIE (Maiden, Johnson & Li 2017).
    Rpie,
    /// Poisson maximum likelihood: full-batch preconditioned gradient with momentum
    /// (crates/recon ml.rs).
    Ml,
}

impl Algorithm {
    /// The name a study file and `--algorithm` use (`epie`, `rpie`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Epie => "epie",
            Algorithm::Rpie => "rpie",
            Algorithm::Ml => "ml",
        }
    }
}

/// Native solver settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Solver {
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Object step (ePIE), regularisation weight (rPIE: smaller = bigger steps where the probe
    /// is weak), or initial step of `ml` (1 = the projection step).
    pub alpha: f64,
    /// Probe step (ePIE) or probe regularisation weight (rPIE: smaller = bigger probe steps),
    /// when the probe is refined; `ml` uses alpha for the probe too.
    pub beta: f64,
    /// Epochs per split.
    pub epochs: u32,
    /// Refine the probe as well as the object.
    pub refine_probe: bool,
    /// Seed of the visiting order and grouping; `None` uses `rng_seeds.grouping`.
    pub seed: Option<u64>,
    /// `ml` only: weight of the smoothness prior `sum |O_p - O_q|^2` over adjacent pixels, in
    /// units of the Poisson log-likelihood of the counts (0 = none).
    #[serde(default)]
    pub smoothness: f64,
    /// `ml` only: stop when an epoch changes the object by less than this (relative L2);
    /// 0 = run every epoch (fixed budget).
    #[serde(default)]
    pub tolerance: f64,
}

impl Default for Solver {
    /// rPIE with alpha 0.9, 30 epochs, probe fixed. Measured on the default study (N = 128,
    /// 1e3 to 1e5 photons per pattern, i.e. 0.06 to 6 counts per pixel): small alphas take big
    /// steps where the probe is weak and fit the Poisson noise (alpha 0.5 ends worse than the
    /// flat start at 1e4), while 0.9 averages it over neighbouring positions: of rPIE 0.5 to 1
    /// and ePIE 0.25 to 1, the lowest object error at 1e4 and 1e5, the whole study in about
    /// 10 s on two cores. At 1e3 no setting of either beats the flat start: the dose is below
    /// what an amplitude-projection engine can use.
    fn default() -> Self {
        Solver {
            algorithm: Algorithm::Rpie,
            alpha: 0.9,
            beta: 1.0,
            epochs: 30,
            refine_probe: false,
            seed: None,
            smoothness: 0.0,
            tolerance: 0.0,
        }
    }
}

impl Solver {
    /// Every problem with these settings.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            problems.push(format!("solver.alpha={} must be in (0, 1]", self.alpha));
        }
        if !(self.beta > 0.0 && self.beta <= 1.0) {
            problems.push(format!("solver.beta={} must be in (0, 1]", self.beta));
        }
        if !(self.smoothness.is_finite() && self.smoothness >= 0.0) {
            problems.push(format!(
                "solver.smoothness={} must be >= 0",
                self.smoothness
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            problems.push(format!("solver.tolerance={} must be >= 0", self.tolerance));
        }
        if self.epochs == 0 {
            problems.push("solver.epochs must be at least 1".to_string());
        }
        problems
    }
}
