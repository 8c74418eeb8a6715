//! The sections of the resolved configuration of the external peer methods, as
//! `training_config.json` records them: pty-chi's (`ptychi:<algorithm>`) and PtychoPINN's
//! supervised baseline's (`tensorflow:supervised`). Resolving them when planning, and running
//! the adapters, are `ptychi`'s and `supervised`'s.

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
    /// pty-chi's total-variation weight; `None`: off. Written only when set, so plans made
    /// before it existed read and hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tv_weight: Option<f64>,
    /// Where pty-chi runs (`--accelerator`, else `[ptychi] accelerator`, whose default is
    /// `cpu`).
    pub accelerator: Accelerator,
    /// pty-chi's random seed (its batch order): `rng_seeds.grouping` (passed folded to 32
    /// bits, `external::tool_seed`).
    pub seed: u64,
    /// `$PTYCHI_PYTHON` when planning: the adapter's interpreter (`None` only in a dry run).
    pub python: Option<PathBuf>,
}

/// What a `tensorflow:supervised` job runs with (the number of epochs, at most, is
/// [`crate::TrainingConfig::epochs`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisedSettings {
    /// Patterns per training batch.
    pub batch_size: u32,
    /// The U-Net's width factor (`n_filters_scale`).
    pub n_filters_scale: u32,
    /// Where it trains (`--accelerator`, else `[pinn] accelerator`: the PtychoPINN jobs'
    /// choice).
    pub accelerator: Accelerator,
    /// Keras's seed (`tf.keras.utils.set_random_seed`): `rng_seeds.grouping` (passed folded
    /// to 32 bits, `external::tool_seed`).
    pub seed: u64,
    /// `$PTYCHO_PYTHON` when planning; `None`: the `#!` Python of the trainer program.
    pub python: Option<PathBuf>,
}
