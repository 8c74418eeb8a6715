//! What a reconstruction consumes: one split's ([`Split`]: train or test) measured amplitudes,
//! scan positions and probe, and their preparation for the hot loop (integer positions,
//! unshifted transposed amplitudes).

use crate::ReconError;
use ndarray::{Array2, Array3};
use num_complex::Complex32;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A split of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training NPZ.
    Train,
    /// The test NPZ.
    Test,
}

impl Split {
    /// `train` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One split of a DATA-001 dataset, as arrays.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `diffraction`: (n, N, N) measured amplitudes, zero frequency at the centre (fftshifted).
    pub diffraction: Array3<f32>,
    /// `xcoords`: patch centre columns, pixels.
    pub xcoords: Vec<f64>,
    /// `ycoords`: patch centre rows, pixels.
    pub ycoords: Vec<f64>,
    /// `probeGuess`: (N, N), the initial (and, by default, fixed) probe.
    pub probe: Array2<Complex32>,
    /// Shape (rows, columns) of `objectGuess`: the grid the object is reconstructed on.
    pub object_shape: (usize, usize),
    /// `s` of `_metadata.intensity_scale`: counts = (s a)^2 (the toolkit's own files); `None`
    /// for other files (ml then uses its Gaussian fallback).
    pub intensity_scale: Option<f64>,
}

/// How scan positions were rounded to integer patch corners (pty-chi's integer mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rounding {
    /// The rule applied.
    pub rule: String,
    /// Largest |rounded - exact| over both coordinates of every position, pixels.
    pub max_abs_offset_px: f64,
    /// Mean |rounded - exact| over both coordinates of every position, pixels.
    pub mean_abs_offset_px: f64,
    /// Rows/columns of ones added around the objectGuess grid so that every patch fits:
    /// [top, bottom, left, right] (all zero for data made by this toolkit).
    pub padding: [usize; 4],
}

/// Top-left (row, column) of the N x N patch centred at column `x`, row `y`:
/// `round_half_even(c - N/2)`, as torch.round does (pty-chi's integer mode). The solver and
/// the scoring region use this one rule, so both see the same pixels.
pub(crate) fn rounded_topleft(x: f64, y: f64, n: usize) -> [f64; 2] {
    let half = (n / 2) as f64;
    [(y - half).round_ties_even(), (x - half).round_ties_even()]
}

/// A dataset ready for the solver.
pub(crate) struct Prepared {
    pub n: usize,
    /// Per position, N*N amplitudes times N (the unnormalised FFT's scale), unshifted and
    /// transposed: `[kx * N + ky]`.
    pub amps: Vec<f32>,
    /// Sum of squared amplitudes (the E_F denominator).
    pub sum_a2: f64,
    /// Top-left (row, column) of each patch in the padded object grid.
    pub topleft: Vec<(usize, usize)>,
    /// Top-left (row, column) of each patch on the objectGuess grid (may be negative).
    pub topleft_grid: Vec<[i64; 2]>,
    /// Padded object grid size (rows, columns).
    pub grid: (usize, usize),
    pub rounding: Rounding,
}

impl Prepared {
    /// Writes `object` (on the objectGuess grid) into `grid`, the padded object grid (padding
    /// keeps its values): the one warm start both engines take.
    pub(crate) fn place_object(
        &self,
        object: ndarray::ArrayView2<Complex32>,
        grid: &mut [Complex32],
    ) -> Result<(), ReconError> {
        let [top, bottom, left, right] = self.rounding.padding;
        let (rows, cols) = self.grid;
        if object.dim() != (rows - top - bottom, cols - left - right) {
            return Err(ReconError::BadInput(format!(
                "start object is {:?} but objectGuess is {:?}",
                object.dim(),
                (rows - top - bottom, cols - left - right)
            )));
        }
        for ((r, c), v) in object.indexed_iter() {
            grid[(r + top) * cols + c + left] = *v;
        }
        Ok(())
    }
}

impl Dataset {
    /// Number of positions.
    pub fn len(&self) -> usize {
        self.diffraction.shape()[0]
    }

    /// True when there are no positions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks shapes and values, rounds positions, pre-shifts the amplitudes once.
    pub(crate) fn prepare(&self) -> Result<Prepared, ReconError> {
        let shape = self.diffraction.shape();
        let (count, n) = (shape[0], shape[1]);
        let bad = |what: String| Err(ReconError::BadInput(what));
        if count == 0 {
            return bad("diffraction holds no patterns: nothing to reconstruct".into());
        }
        if shape[2] != n || n == 0 {
            return bad(format!(
                "diffraction patterns must be square, got {} x {}",
                shape[1], shape[2]
            ));
        }
        if self.probe.dim() != (n, n) {
            return bad(format!(
                "probeGuess is {:?} but diffraction patterns are {n} x {n}",
                self.probe.dim()
            ));
        }
        if self.xcoords.len() != count || self.ycoords.len() != count {
            return bad(format!(
                "xcoords/ycoords hold {}/{} positions but diffraction holds {count}",
                self.xcoords.len(),
                self.ycoords.len()
            ));
        }
        let (h, w) = self.object_shape;
        if h == 0 || w == 0 {
            return bad("objectGuess is empty".into());
        }
        if self
            .probe
            .iter()
            .any(|p| !p.re.is_finite() || !p.im.is_finite())
        {
            return bad("probeGuess holds non-finite values".into());
        }
        if self.probe.iter().all(|p| p.norm_sqr() == 0.0) {
            return bad("probeGuess is zero everywhere".into());
        }

        // Integer top-left corners: round(c - N/2), ties to even as torch.round does.
        let half = (n / 2) as f64;
        let mut topleft_grid = Vec::with_capacity(count);
        let (mut max_off, mut sum_off) = (0.0f64, 0.0f64);
        for j in 0..count {
            let (x, y) = (self.xcoords[j], self.ycoords[j]);
            if !x.is_finite() || !y.is_finite() {
                return bad(format!("position {j} is not finite: x={x}, y={y}"));
            }
            let [ty, tx] = rounded_topleft(x, y, n);
            for off in [(ty - (y - half)).abs(), (tx - (x - half)).abs()] {
                max_off = max_off.max(off);
                sum_off += off;
            }
            if ty.abs() > 1e9 || tx.abs() > 1e9 {
                return bad(format!(
                    "position {j} is far outside the object: x={x}, y={y}"
                ));
            }
            topleft_grid.push([ty as i64, tx as i64]);
        }
        let min_y = topleft_grid.iter().map(|p| p[0]).min().unwrap_or(0);
        let min_x = topleft_grid.iter().map(|p| p[1]).min().unwrap_or(0);
        let max_y = topleft_grid.iter().map(|p| p[0]).max().unwrap_or(0);
        let max_x = topleft_grid.iter().map(|p| p[1]).max().unwrap_or(0);
        let (ni, hi, wi) = (n as i64, h as i64, w as i64);
        let pad = [
            (-min_y).max(0) as usize,
            (max_y + ni - hi).max(0) as usize,
            (-min_x).max(0) as usize,
            (max_x + ni - wi).max(0) as usize,
        ];
        let grid = (h + pad[0] + pad[1], w + pad[2] + pad[3]);
        let topleft = topleft_grid
            .iter()
            .map(|p| {
                (
                    (p[0] + pad[0] as i64) as usize,
                    (p[1] + pad[2] as i64) as usize,
                )
            })
            .collect();

        // Unshift (ifftshift) and transpose once, so the hot loop never shifts.
        let nn = n * n;
        let mut amps = vec![0f32; count * nn];
        let mut sum_a2 = 0f64;
        for (j, pattern) in self.diffraction.outer_iter().enumerate() {
            let dst = &mut amps[j * nn..(j + 1) * nn];
            for ((row, col), &a) in pattern.indexed_iter() {
                if !(a.is_finite() && a >= 0.0) {
                    return bad(format!(
                        "diffraction[{j}, {row}, {col}] = {a}: amplitudes must be finite and >= 0"
                    ));
                }
                let ky = (row + n - n / 2) % n;
                let kx = (col + n - n / 2) % n;
                dst[kx * n + ky] = a * n as f32;
                sum_a2 += f64::from(a) * f64::from(a);
            }
        }
        if sum_a2 == 0.0 {
            return bad("every diffraction amplitude is zero: no signal to reconstruct".into());
        }
        Ok(Prepared {
            n,
            amps,
            sum_a2,
            topleft,
            topleft_grid,
            grid,
            rounding: Rounding {
                rule: "top-left = round_half_even(x - N/2), round_half_even(y - N/2); N/2 integer"
                    .into(),
                max_abs_offset_px: max_off,
                mean_abs_offset_px: sum_off / (2 * count) as f64,
                padding: pad,
            },
        })
    }
}
