//! The native ptychographic solver (ePIE, rPIE) and its reconstruction metrics.
//!
//! [`reconstruct`] runs one split ([`Dataset`]: amplitudes, positions, probe) with
//! [`Settings`]; [`evaluate`] scores the result against the ground-truth object, and
//! [`score_files`] / [`score_object`] score any reconstruction against a DATA-001 truth file
//! (the one scoring code of every method); [`run_job`]
//! does a whole job of the native backend (read both splits' NPZ, reconstruct, score, write
//! the bundle [`BUNDLE_FILE`]).
#![deny(missing_docs)]

mod data;
mod epie;
pub mod fft;
mod job;
mod kernels;
mod metrics;
mod ml;
mod par;
mod reconstruction;
mod register;
mod rng;
mod score;
mod settings;
mod simd;
mod solver;
pub mod synthetic;
#[cfg(test)]
mod tests;

pub use data::{Dataset, Rounding, Split};
pub use epie::Engine;
pub use fft::FftPath;
pub use job::{
    BUNDLE_FILE, BUNDLE_FORMAT, CoreLender, JobOutcome, JobRequest, NoLender, SplitOutcome,
    read_split, run_job, run_job_lent,
};
pub use kernels::EPS;
pub use metrics::{
    EvalOptions, FRC_RING_WIDTH, FrcCrossing, ImageMetrics, Metrics, PSNR_CAP_DB, PhasePlane,
    Region, evaluate,
};
pub use ml::{
    CHUNKS, DELTA_COUNTS, GAMMA, MEMORY, MlEngine, PHASE_CUTOFF, PHASE_MAX_BOOST, WINDOW,
};
pub use reconstruction::{MlReport, NoiseModel, Reconstruction};
pub use register::{Registered, register, register_to_file};
pub use score::{Truth, read_object, score_files, score_object};
pub use settings::Settings;
pub use solver::{
    DIVERGE_EF, DIVERGE_FACTOR, reconstruct, reconstruct_lent, reconstruct_threads,
    reconstruct_until,
};
pub use study_design::Algorithm;

/// Why a reconstruction could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconError {
    /// An NPZ could not be read or the bundle could not be written (the message names the
    /// file and the member).
    #[error(transparent)]
    Npz(#[from] npz_contract::NpzError),
    /// The caller asked to stop (Ctrl-C).
    #[error("interrupted")]
    Cancelled,
    /// The data cannot be reconstructed as given (shapes, values, positions).
    #[error("{0}")]
    BadInput(String),
    /// The solver settings are out of range.
    #[error("invalid solver settings: {0}")]
    BadSettings(String),
    /// The iteration blew up: a non-finite object, or E_F past the bound [`DIVERGE_EF`].
    #[error(
        "diverged at epoch {epoch} (E_F = {loss:.4e}, bound max({DIVERGE_EF}, \
         {DIVERGE_FACTOR} x epoch 1)); the loss history is kept: use ml, smaller ePIE \
         steps, or a fixed probe"
    )]
    Diverged {
        /// Epoch (from 1).
        epoch: u32,
        /// Its loss.
        loss: f64,
        /// E_F of every epoch up to and including this one.
        loss_history: Vec<f64>,
    },
}
