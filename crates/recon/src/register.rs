//! The registration the metrics score after, as images: the scanned region's bounding box, the
//! reconstruction with the global phase and the fitted phase plane removed, and the truth, for
//! pictures of what a metric saw.

use crate::metrics::{EvalOptions, ScannedRegion, registration, same_grid};
use crate::{ReconError, Truth};
use ndarray::{Array2, ArrayView2};
use num_complex::Complex32;
use std::path::Path;

/// A reconstruction registered to its ground truth, cropped to the scored region's bounding box.
#[derive(Clone, Debug, PartialEq)]
pub struct Registered {
    /// Bounding box rows `[first, last + 1)` on the objectGuess grid.
    pub rows: [usize; 2],
    /// Bounding box columns `[first, last + 1)`.
    pub cols: [usize; 2],
    /// True inside the scored region.
    pub mask: Array2<bool>,
    /// |T|.
    pub truth_amplitude: Array2<f64>,
    /// arg T, centred on the region's mean phase.
    pub truth_phase: Array2<f64>,
    /// |O| (the plane removal does not change it).
    pub amplitude: Array2<f64>,
    /// The truth's phase plus the wrapped difference of the aligned reconstruction: the phase
    /// image the metrics score, free of 2 pi jumps the truth lacks.
    pub phase: Array2<f64>,
}

/// Registers `object` to `truth` as [`crate::evaluate`] does before scoring: the same code
/// (`metrics::registration`), so a picture shows what a score saw.
pub fn register(
    object: ArrayView2<Complex32>,
    truth: ArrayView2<Complex32>,
    probe: ArrayView2<Complex32>,
    topleft_yx: &[[i64; 2]],
    options: &EvalOptions,
) -> Result<Registered, ReconError> {
    same_grid(object, truth)?;
    let region = ScannedRegion::new(probe, topleft_yx, truth.dim(), options)?;
    let reg = registration(object, truth, &region);
    Ok(Registered {
        rows: region.rows,
        cols: region.cols,
        mask: reg.mask,
        truth_amplitude: reg.truth_amplitude,
        truth_phase: reg.truth_phase,
        amplitude: reg.amplitude,
        phase: reg.phase,
    })
}

/// Registers `object` to the ground truth of a DATA-001 NPZ: its `objectGuess`, and the region
/// its `probeGuess` lights at its coordinates ([`Truth`], as every score uses; never a refined
/// probe).
pub fn register_to_file(
    truth_npz: &Path,
    object: ArrayView2<Complex32>,
    options: &EvalOptions,
) -> Result<Registered, ReconError> {
    let truth = Truth::read(truth_npz)?;
    register(
        object,
        truth.object.view(),
        truth.probe.view(),
        &truth.topleft_yx,
        options,
    )
    .map_err(|e| match e {
        ReconError::BadInput(m) => ReconError::BadInput(format!("{}: {m}", truth_npz.display())),
        other => other,
    })
}
