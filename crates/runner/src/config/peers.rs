//! The sections of the resolved configuration of the external peer methods, as
//! `training_config.json` records them: pty-chi's (`ptychi:<algorithm>`). Resolving them when
//! planning, and running the adapters, are `ptychi`'s.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use study_design::{Accelerator, PtychiAlgorithm, PtychiInit, PtychiNoise, PtychiProbe};

/// What a `ptychi:<algorithm>` job runs with (the number of epochs is
/// [`crate::TrainingConfig::epochs`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PtychiSettings {
    /// The engine.
    pub algorithm: PtychiAlgorithm,
    /// Where the object starts: `flat` (ones) or `truth` (objectGuess, the ground truth).
    pub init: PtychiInit,
    /// Positions per batch.
    pub batch_size: u32,
    /// LSQML's noise model (the other engines have none: recorded, not used).
    pub noise: PtychiNoise,
    /// Probe fixed at probeGuess, or refined from it.
    pub probe: PtychiProbe,
    /// Object step size; `None`: pty-chi's default for the engine.
    pub step: Option<f64>,
    /// Where pty-chi runs (`--accelerator`, else `[ptychi] accelerator`, whose default is
    /// `cpu`).
    pub accelerator: Accelerator,
    /// pty-chi's random seed (its batch order): `rng_seeds.grouping`.
    pub seed: u64,
    /// `$PTYCHI_PYTHON` when planning: the adapter's interpreter (`None` only in a dry run).
    pub python: Option<PathBuf>,
}
