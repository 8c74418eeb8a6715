//! The `[ptychi]` and `[supervised]` tables of a study file: settings of the external peer
//! methods `ptychi:<algorithm>` (pty-chi 2.2) and `tensorflow:supervised` (PtychoPINN's
//! supervised baseline, `ptycho.baselines`). Defaults are the original study's, except where
//! the original used the ground truth (`init`): see each field.

use crate::solver::Accelerator;
use serde::{Deserialize, Serialize};

/// The pty-chi 2.2 reconstruction engines that run on the CPU (and on a GPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtychiAlgorithm {
    /// Least-squares maximum likelihood (Odstrčil et al. 2018): the original study's engine.
    Lsqml,
    /// ePIE (Maiden & Rodenburg 2009).
    Epie,
    /// rPIE (Maiden, Johnson & Li 2017).
    Rpie,
    /// PIE (Rodenburg & Faulkner 2004).
    Pie,
    /// Difference map (Thibault et al. 2008).
    Dm,
}

impl PtychiAlgorithm {
    /// Every engine, in the order `--help` lists them.
    pub const ALL: [PtychiAlgorithm; 5] = [
        PtychiAlgorithm::Lsqml,
        PtychiAlgorithm::Epie,
        PtychiAlgorithm::Rpie,
        PtychiAlgorithm::Pie,
        PtychiAlgorithm::Dm,
    ];

    /// The name in method names (`ptychi:lsqml`) and in the adapter's `--algorithm`.
    pub fn as_str(self) -> &'static str {
        match self {
            PtychiAlgorithm::Lsqml => "lsqml",
            PtychiAlgorithm::Epie => "epie",
            PtychiAlgorithm::Rpie => "rpie",
            PtychiAlgorithm::Pie => "pie",
            PtychiAlgorithm::Dm => "dm",
        }
    }
}

impl std::str::FromStr for PtychiAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PtychiAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown pty-chi algorithm '{s}': use one of {}",
                    PtychiAlgorithm::ALL.map(PtychiAlgorithm::as_str).join(", ")
                )
            })
    }
}

/// LSQML's noise model (the PIE family and DM project onto the measured magnitudes and have
/// none to choose).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtychiNoise {
    /// Poisson: the counts' own statistics (this toolkit's default).
    #[default]
    Poisson,
    /// Gaussian on the amplitudes: the original study's choice.
    Gaussian,
}

/// Whether pty-chi refines the probe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtychiProbe {
    /// probeGuess, fixed (the true probe: the native solver's default too).
    #[default]
    Fixed,
    /// probeGuess refined: the original study's choice.
    Refine,
}

/// Where pty-chi's object starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PtychiInit {
    /// Ones, as the native solver starts.
    #[default]
    Flat,
    /// objectGuess, which in synthetic data IS the ground truth: the original study's
    /// initialisation, reproduced on request and labelled in every method name
    /// (`ptychi:lsqml+truth-init`).
    Truth,
}

/// `[ptychi]`: settings of the `ptychi:<algorithm>` methods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ptychi {
    /// Epochs per split (the original's 100).
    pub epochs: u32,
    /// Positions per batch (the original's 96).
    pub batch_size: u32,
    /// LSQML's noise model.
    #[serde(default)]
    pub noise: PtychiNoise,
    /// Probe fixed or refined.
    #[serde(default)]
    pub probe: PtychiProbe,
    /// Object start: flat, or the truth (labelled).
    #[serde(default)]
    pub init: PtychiInit,
    /// Object step size; `None`: pty-chi's own default for the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    /// pty-chi's total-variation regulariser of the object (Chambolle's projection on the
    /// complex object each epoch, `object_options.total_variation.weight`); `None`: off, as
    /// pty-chi's default. The one regulariser pty-chi 2.2 offers that acts on the phase (its
    /// `smoothness_constraint` smooths the magnitude only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tv_weight: Option<f64>,
    /// Where pty-chi runs: the CPU unless asked (`--accelerator` overrides it; `auto` takes
    /// a GPU when torch sees one).
    #[serde(default = "cpu")]
    pub accelerator: Accelerator,
}

fn cpu() -> Accelerator {
    Accelerator::Cpu
}

impl Default for Ptychi {
    fn default() -> Self {
        Ptychi {
            epochs: 100,
            batch_size: 96,
            noise: PtychiNoise::Poisson,
            probe: PtychiProbe::Fixed,
            init: PtychiInit::Flat,
            step: None,
            tv_weight: None,
            accelerator: Accelerator::Cpu,
        }
    }
}

/// The most epochs or positions per batch a peer's table may ask for (a bound against typos).
pub const MAX_PEER_EPOCHS: u32 = 100_000;

impl Ptychi {
    /// Whether these are the defaults (a study file then need not say them).
    pub fn is_default(&self) -> bool {
        *self == Ptychi::default()
    }

    /// Every problem with these settings.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=MAX_PEER_EPOCHS).contains(&self.epochs) {
            problems.push(format!(
                "ptychi.epochs={} must be in 1..={MAX_PEER_EPOCHS}",
                self.epochs
            ));
        }
        if !(1..=MAX_PEER_EPOCHS).contains(&self.batch_size) {
            problems.push(format!(
                "ptychi.batch_size={} must be in 1..={MAX_PEER_EPOCHS}",
                self.batch_size
            ));
        }
        if let Some(step) = self.step
            && !(step.is_finite() && step > 0.0)
        {
            problems.push(format!("ptychi.step={step} must be a positive number"));
        }
        if let Some(weight) = self.tv_weight
            && !(weight.is_finite() && weight > 0.0 && weight <= 1.0)
        {
            problems.push(format!(
                "ptychi.tv_weight={weight} must be in (0, 1] (leave it out for no regulariser)"
            ));
        }
        problems
    }
}

/// `[supervised]`: settings of `tensorflow:supervised`, PtychoPINN's supervised baseline
/// (`ptycho.baselines`); it trains where the PtychoPINN methods do (`[pinn] accelerator`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Supervised {
    /// Training epochs at most (PtychoPINN's `nepochs` default, 60; its early stopping on the
    /// training loss, patience 3, may end it sooner).
    pub epochs: u32,
    /// Patterns per training batch (PtychoPINN's default, 16).
    pub batch_size: u32,
    /// The U-Net's width factor (PtychoPINN's `n_filters_scale` default, 2).
    pub n_filters_scale: u32,
}

impl Default for Supervised {
    fn default() -> Self {
        Supervised {
            epochs: 60,
            batch_size: 16,
            n_filters_scale: 2,
        }
    }
}

impl Supervised {
    /// Whether these are the defaults (a study file then need not say them).
    pub fn is_default(&self) -> bool {
        *self == Supervised::default()
    }

    /// Every problem with these settings.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [("epochs", self.epochs), ("batch_size", self.batch_size)] {
            if !(1..=MAX_PEER_EPOCHS).contains(&value) {
                problems.push(format!(
                    "supervised.{key}={value} must be in 1..={MAX_PEER_EPOCHS}"
                ));
            }
        }
        if !(1..=8).contains(&self.n_filters_scale) {
            problems.push(format!(
                "supervised.n_filters_scale={} must be in 1..=8",
                self.n_filters_scale
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_problems_are_named() {
        assert!(Ptychi::default().validate().is_empty());
        assert!(Supervised::default().validate().is_empty());
        let bad = Ptychi {
            epochs: 0,
            step: Some(-1.0),
            tv_weight: Some(0.0),
            ..Ptychi::default()
        };
        assert_eq!(
            bad.validate(),
            [
                "ptychi.epochs=0 must be in 1..=100000",
                "ptychi.step=-1 must be a positive number",
                "ptychi.tv_weight=0 must be in (0, 1] (leave it out for no regulariser)"
            ]
        );
        let nan = Ptychi {
            tv_weight: Some(f64::NAN),
            ..Ptychi::default()
        };
        assert_eq!(nan.validate().len(), 1);
        let bad = Supervised {
            batch_size: 0,
            n_filters_scale: 9,
            ..Supervised::default()
        };
        assert_eq!(
            bad.validate(),
            [
                "supervised.batch_size=0 must be in 1..=100000",
                "supervised.n_filters_scale=9 must be in 1..=8"
            ]
        );
        assert_eq!("dm".parse(), Ok(PtychiAlgorithm::Dm));
        assert!("sgd".parse::<PtychiAlgorithm>().is_err());
    }
}
