//! What every engine gives back: a [`Reconstruction`] (object, probe, loss history, the
//! positions' rounding, the FFT path) and, from `ml`, its [`MlReport`].

use crate::data::Rounding;
use crate::fft::FftPath;
use ndarray::Array2;
use num_complex::Complex32;
use serde::{Deserialize, Serialize};

/// A finished reconstruction of one split.
#[derive(Clone, Debug)]
pub struct Reconstruction {
    /// The object on the objectGuess grid.
    pub object: Array2<Complex32>,
    /// The probe (equal to probeGuess unless refined).
    pub probe: Array2<Complex32>,
    /// E_F after each epoch.
    pub loss_history: Vec<f64>,
    /// Epochs run.
    pub epochs_completed: u32,
    /// Integer top-left (row, column) of every patch on the objectGuess grid.
    pub positions_topleft_yx: Vec<[i64; 2]>,
    /// How positions were rounded.
    pub rounding: Rounding,
    /// The FFT code path used.
    pub fft_path: FftPath,
    /// ml only: the likelihood, the prior weight and why it stopped.
    pub ml: Option<MlReport>,
}

/// Which likelihood the `ml` engine minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseModel {
    /// Poisson counts: the file carries `intensity_scale` (the toolkit's own Phase C/D files).
    Poisson,
    /// Amplitude least squares: the fallback for files without `intensity_scale`.
    Gaussian,
}

/// Why an `ml` run stopped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlReport {
    /// The likelihood used.
    pub noise_model: NoiseModel,
    /// `s` used (1 for the Gaussian fallback).
    pub intensity_scale: f64,
    /// The smoothness prior's weight lambda (counts units).
    pub smoothness: f64,
    /// The stopping rule, in words.
    pub stopping_rule: String,
    /// `tolerance` (the object's change over the last 25 epochs fell below it) or `budget`
    /// (all epochs run).
    pub stopped_by: String,
    /// F (counts units, the saturated constant removed) after each epoch, accepted iterate.
    pub objective_history: Vec<f64>,
    /// Epochs whose step was undone by the safeguard.
    pub rejected_steps: u32,
    /// The object's relative L2 change (objectGuess grid) over the last `WINDOW` (25)
    /// epochs, at the stopping rule's last look; `None` before the first look.
    pub last_relative_change: Option<f64>,
}
