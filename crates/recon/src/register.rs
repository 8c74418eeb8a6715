//! The registration the metrics score after, as images: the scanned region's bounding box, the
//! reconstruction with the global phase and the fitted phase plane removed, and the truth, for
//! pictures of what a metric saw.

use crate::metrics::{EvalOptions, fit_phase_plane, scanned_region};
use crate::{ReconError, Truth};
use ndarray::{Array2, ArrayView2};
use num_complex::{Complex32, Complex64};
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

/// Registers `object` to `truth` exactly as [`crate::evaluate`] does before scoring.
pub fn register(
    object: ArrayView2<Complex32>,
    truth: ArrayView2<Complex32>,
    probe: ArrayView2<Complex32>,
    topleft_yx: &[[i64; 2]],
    options: &EvalOptions,
) -> Result<Registered, ReconError> {
    crate::metrics::same_grid(object, truth)?;
    let (mask, _) = scanned_region(
        probe,
        topleft_yx,
        truth.dim(),
        options.illumination_threshold,
    );
    let pixels: Vec<(usize, usize)> = mask.indexed_iter().filter(|e| *e.1).map(|e| e.0).collect();
    if pixels.is_empty() {
        return Err(ReconError::BadInput(
            "no pixel of objectGuess is illuminated: positions lie outside the object".into(),
        ));
    }
    let r0 = pixels.iter().map(|p| p.0).min().unwrap_or(0);
    let r1 = pixels.iter().map(|p| p.0).max().unwrap_or(0) + 1;
    let c0 = pixels.iter().map(|p| p.1).min().unwrap_or(0);
    let c1 = pixels.iter().map(|p| p.1).max().unwrap_or(0) + 1;
    let c64 = |v: Complex32| Complex64::new(f64::from(v.re), f64::from(v.im));
    let (plane, (cx, cy)) = fit_phase_plane(&pixels, |p| c64(object[p]) * c64(truth[p]).conj());
    let ramp = |(r, c): (usize, usize)| {
        plane.offset_rad
            + plane.slope_x_rad_per_px * (c as f64 - cx)
            + plane.slope_y_rad_per_px * (r as f64 - cy)
    };
    let (bh, bw) = (r1 - r0, c1 - c0);
    let at = |(r, c): (usize, usize)| (r + r0, c + c0);
    let aligned = Array2::from_shape_fn((bh, bw), |e| {
        c64(object[at(e)]) * Complex64::from_polar(1.0, -ramp(at(e)))
    });
    let t_mean: Complex64 = pixels.iter().map(|&p| c64(truth[p])).sum();
    let t_ref = Complex64::from_polar(1.0, -t_mean.arg());
    let tcrop = Array2::from_shape_fn((bh, bw), |e| c64(truth[at(e)]));
    let truth_phase = tcrop.mapv(|t| (t * t_ref).arg());
    let phase = Array2::from_shape_fn((bh, bw), |e| {
        truth_phase[e] + (aligned[e] * tcrop[e].conj()).arg()
    });
    Ok(Registered {
        rows: [r0, r1],
        cols: [c0, c1],
        mask: Array2::from_shape_fn((bh, bw), |e| mask[at(e)]),
        truth_amplitude: tcrop.mapv(|t| t.norm()),
        truth_phase,
        amplitude: aligned.mapv(|a| a.norm()),
        phase,
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
