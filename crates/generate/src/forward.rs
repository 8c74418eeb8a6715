//! The forward model: bilinear patches, psi = P * O_j, orthonormal |FFT|^2 with fftshift, dose
//! scaling and Poisson counts, in parallel over positions with results independent of the
//! thread count.

use crate::detmath::floor_int;
use crate::fft::{Fft2, FftPath, Plans, fftshift_source};
use crate::poisson::PatternSampler;
use crate::rng::PixelRng;
use ndarray::{Array3, ArrayView2, ArrayViewMut3, Axis};
use num_complex::Complex32;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The object patch centred on (row y, column x): `out[i, k] = O(y - N/2 + i, x - N/2 + k)`,
/// bilinear between pixels, zero outside the object. `object` must be in standard layout and
/// `out` hold N x N values.
pub fn extract_patch(object: &ArrayView2<Complex32>, x: f64, y: f64, out: &mut [Complex32]) {
    let n = (out.len() as f64).sqrt() as usize;
    assert_eq!(n * n, out.len(), "patch buffer must be N x N");
    let (h, w) = object.dim();
    let obj = object.as_slice().expect("object in standard layout");
    let top = y - (n / 2) as f64;
    let left = x - (n / 2) as f64;
    let (r0, c0) = (floor_int(top), floor_int(left));
    let (fy, fx) = (top - r0, left - c0);
    // Every pixel of the patch has the same fractional offset, hence the same four weights.
    let w00 = ((1.0 - fy) * (1.0 - fx)) as f32;
    let w01 = ((1.0 - fy) * fx) as f32;
    let w10 = (fy * (1.0 - fx)) as f32;
    let w11 = (fy * fx) as f32;
    let inside = r0 >= 0.0
        && c0 >= 0.0
        && r0 + n as f64 + 1.0 <= h as f64
        && c0 + n as f64 + 1.0 <= w as f64;
    if inside {
        let (r0, c0) = (r0 as usize, c0 as usize);
        for (i, row_out) in out.chunks_exact_mut(n).enumerate() {
            let a = &obj[(r0 + i) * w + c0..(r0 + i) * w + c0 + n + 1];
            let b = &obj[(r0 + i + 1) * w + c0..(r0 + i + 1) * w + c0 + n + 1];
            for (k, o) in row_out.iter_mut().enumerate() {
                *o = a[k] * w00 + a[k + 1] * w01 + b[k] * w10 + b[k + 1] * w11;
            }
        }
    } else {
        let get = |r: f64, c: f64| -> Complex32 {
            if r >= 0.0 && c >= 0.0 && r < h as f64 && c < w as f64 {
                obj[r as usize * w + c as usize]
            } else {
                Complex32::new(0.0, 0.0)
            }
        };
        for (i, row_out) in out.chunks_exact_mut(n).enumerate() {
            let r = r0 + i as f64;
            for (k, o) in row_out.iter_mut().enumerate() {
                let c = c0 + k as f64;
                *o = get(r, c) * w00
                    + get(r, c + 1.0) * w01
                    + get(r + 1.0, c) * w10
                    + get(r + 1.0, c + 1.0) * w11;
            }
        }
    }
}

/// Inputs of a simulation.
pub struct Inputs<'a> {
    /// The object O, H x W complex64, standard layout.
    pub object: ArrayView2<'a, Complex32>,
    /// The probe P, N x N complex64, standard layout.
    pub probe: ArrayView2<'a, Complex32>,
    /// Patch centres, columns.
    pub xcoords: &'a [f64],
    /// Patch centres, rows.
    pub ycoords: &'a [f64],
    /// `rng_seeds.simulation`.
    pub seed: u64,
}

/// One dose's simulated data.
pub struct DoseData {
    /// Photons per pattern (expected, on average over positions).
    pub dose: f64,
    /// s = sqrt(dose / mean_j sum |P O_j|^2).
    pub intensity_scale: f64,
    /// sqrt(counts) / s per position, (n, N, N) float32.
    pub diffraction: Array3<f32>,
    /// Measured photon counts per position.
    pub counts: Vec<u64>,
}

/// Everything [`simulate`] makes.
pub struct Simulated {
    /// Ground-truth object patches, (n, N, N) complex64.
    pub y: Array3<Complex32>,
    /// sum |P O_j|^2 per position (f64 sums in pixel order).
    pub energies: Vec<f64>,
    /// One entry per requested dose, in order.
    pub doses: Vec<DoseData>,
    /// The FFT path used.
    pub fft_path: FftPath,
}

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Inputs are inconsistent (shapes, lengths, values).
    #[error("{0}")]
    Input(String),
}

/// Simulates every position for every dose, on `threads` threads (results do not depend on
/// it). `progress(done, total)` is called from the workers as positions complete (twice per
/// position: the patch pass and the diffraction pass count half each).
pub fn simulate(
    inputs: &Inputs,
    doses: &[f64],
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Simulated, SimulateError> {
    simulate_on(inputs, doses, threads, None, progress)
}

/// [`simulate`] on a given FFT path (`None`: AVX when available).
pub fn simulate_on(
    inputs: &Inputs,
    doses: &[f64],
    threads: usize,
    fft_path: Option<FftPath>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Simulated, SimulateError> {
    let (n_pos, n) = check_inputs(inputs, doses)?;
    let plans = Plans::<f32>::with_path(n, fft_path);
    let threads = threads.clamp(1, n_pos);
    let chunk = n_pos.div_ceil(threads);
    let done = AtomicUsize::new(0);
    let total = 2 * n_pos;
    let tick = |k: usize| {
        let now = done.fetch_add(k, Ordering::Relaxed) + k;
        progress(now, total);
    };
    let probe = inputs.probe.as_slice().expect("probe in standard layout");

    // Pass 1: patches and their illuminated energy (s needs the mean over all positions).
    let mut y = Array3::<Complex32>::zeros((n_pos, n, n));
    let mut energies = vec![0.0f64; n_pos];
    std::thread::scope(|scope| {
        for (t, (mut y_chunk, e_chunk)) in y
            .axis_chunks_iter_mut(Axis(0), chunk)
            .zip(energies.chunks_mut(chunk))
            .enumerate()
        {
            let tick = &tick;
            scope.spawn(move || {
                let start = t * chunk;
                for (i, (mut patch, energy)) in
                    y_chunk.outer_iter_mut().zip(e_chunk.iter_mut()).enumerate()
                {
                    let j = start + i;
                    let out = patch.as_slice_mut().expect("fresh array is contiguous");
                    extract_patch(&inputs.object, inputs.xcoords[j], inputs.ycoords[j], out);
                    *energy = out
                        .iter()
                        .zip(probe)
                        .map(|(o, p)| f64::from((o * p).norm_sqr()))
                        .sum();
                    if i % 32 == 31 {
                        tick(32);
                    }
                }
                tick(y_chunk.len_of(Axis(0)) % 32);
            });
        }
    });
    let mean_energy = energies.iter().sum::<f64>() / n_pos as f64;
    if !(mean_energy.is_finite() && mean_energy > 0.0) {
        return Err(SimulateError::Input(format!(
            "the probe and object give no signal (mean sum |P O_j|^2 = {mean_energy}): check probeGuess and objectGuess"
        )));
    }

    // Pass 2: one FFT per position, then every dose's counts from it.
    let mut out: Vec<DoseData> = doses
        .iter()
        .map(|&dose| DoseData {
            dose,
            intensity_scale: (dose / mean_energy).sqrt(),
            diffraction: Array3::zeros((n_pos, n, n)),
            counts: vec![0; n_pos],
        })
        .collect();
    let params: Vec<DoseParams> = out
        .iter()
        .map(|d| DoseParams::new(d.dose, d.intensity_scale, n))
        .collect();
    {
        let mut diff_chunks: Vec<_> = out
            .iter_mut()
            .map(|d| {
                (
                    d.diffraction.axis_chunks_iter_mut(Axis(0), chunk),
                    d.counts.chunks_mut(chunk),
                )
            })
            .collect();
        let y = &y;
        std::thread::scope(|scope| {
            for t in 0..n_pos.div_ceil(chunk) {
                let mut views: Vec<(ArrayViewMut3<f32>, &mut [u64])> = diff_chunks
                    .iter_mut()
                    .map(|(a, c)| {
                        (
                            a.next().expect("one chunk per thread"),
                            c.next().expect("one chunk per thread"),
                        )
                    })
                    .collect();
                let (plans, params, tick) = (&plans, &params, &tick);
                scope.spawn(move || {
                    let mut work = Work::new(plans, n);
                    let start = t * chunk;
                    let len = views[0].1.len();
                    for i in 0..len {
                        let j = start + i;
                        let patch = y.index_axis(Axis(0), j);
                        work.intensity(probe, patch.as_slice().expect("contiguous"));
                        for ((view, counts), p) in views.iter_mut().zip(params) {
                            let mut pattern = view.index_axis_mut(Axis(0), i);
                            let amps = pattern.as_slice_mut().expect("contiguous");
                            counts[i] = p.draw(
                                &mut work.sampler,
                                &work.intensity,
                                amps,
                                inputs.seed,
                                j as u64,
                            );
                        }
                        if i % 32 == 31 {
                            tick(32);
                        }
                    }
                    tick(len % 32);
                });
            }
        });
    }
    Ok(Simulated {
        y,
        energies,
        doses: out,
        fft_path: plans.path(),
    })
}

fn check_inputs(inputs: &Inputs, doses: &[f64]) -> Result<(usize, usize), SimulateError> {
    let (pn, pm) = inputs.probe.dim();
    if pn != pm || pn < 2 {
        return Err(SimulateError::Input(format!(
            "probe must be square N x N with N >= 2, got {pn} x {pm}"
        )));
    }
    let n_pos = inputs.xcoords.len();
    if n_pos == 0 || inputs.ycoords.len() != n_pos {
        return Err(SimulateError::Input(format!(
            "need as many ycoords as xcoords, at least one: got {} and {}",
            inputs.xcoords.len(),
            inputs.ycoords.len()
        )));
    }
    if let Some(bad) = inputs
        .xcoords
        .iter()
        .chain(inputs.ycoords)
        .find(|v| !v.is_finite())
    {
        return Err(SimulateError::Input(format!(
            "scan coordinates must be finite, found {bad}"
        )));
    }
    if let Some(bad) = doses.iter().find(|d| !(d.is_finite() && **d > 0.0)) {
        return Err(SimulateError::Input(format!(
            "doses must be positive, got {bad}"
        )));
    }
    let finite = |a: &ArrayView2<Complex32>| a.iter().all(|v| v.re.is_finite() && v.im.is_finite());
    if !finite(&inputs.probe) || !finite(&inputs.object) {
        return Err(SimulateError::Input(
            "probe and object values must be finite (found NaN or inf)".into(),
        ));
    }
    if inputs.object.as_slice().is_none() || inputs.probe.as_slice().is_none() {
        return Err(SimulateError::Input(
            "object and probe must be in standard (C) layout".into(),
        ));
    }
    Ok((n_pos, pn))
}

/// Per-dose constants of the noise step.
struct DoseParams {
    dose: f64,
    /// s, stored amplitude = sqrt(c) / s.
    scale: f64,
    /// s^2 / N^2: |F|^2 of the unnormalised FFT to expected counts.
    lam_per_unit: f64,
    /// sqrt(c) / s for small c (the same formula, precomputed).
    amp_table: [f32; 64],
}

impl DoseParams {
    fn new(dose: f64, scale: f64, n: usize) -> Self {
        let mut amp_table = [0.0f32; 64];
        for (c, a) in amp_table.iter_mut().enumerate() {
            *a = amplitude(c as u64, scale);
        }
        DoseParams {
            dose,
            scale,
            lam_per_unit: scale * scale / (n * n) as f64,
            amp_table,
        }
    }

    /// Draws the counts of one pattern from `intensity` (|F|^2, shifted) into `amps` (any
    /// previous content is overwritten); returns the total count.
    fn draw(
        &self,
        sampler: &mut PatternSampler,
        intensity: &[f32],
        amps: &mut [f32],
        seed: u64,
        position: u64,
    ) -> u64 {
        let mut rng = PixelRng::new(seed, self.dose, position);
        amps.fill(0.0);
        sampler.sample(intensity, self.lam_per_unit, &mut rng, |i, c| {
            amps[i] = match self.amp_table.get(c as usize) {
                Some(v) => *v,
                None => amplitude(c, self.scale),
            };
        })
    }
}

/// The stored amplitude of `count` photons at scale `s`.
#[inline]
fn amplitude(count: u64, s: f64) -> f32 {
    ((count as f64).sqrt() / s) as f32
}

/// One worker's buffers, allocated once.
struct Work {
    fft: Fft2<f32>,
    psi: Vec<Complex32>,
    /// |FFT(psi)|^2 (unnormalised), fftshifted, row-major.
    intensity: Vec<f32>,
    /// fftshift source index per output index.
    shift: Vec<usize>,
    /// The noise step's buffers.
    sampler: PatternSampler,
}

impl Work {
    fn new(plans: &Plans<f32>, n: usize) -> Self {
        Work {
            fft: plans.workspace(),
            psi: vec![Complex32::new(0.0, 0.0); n * n],
            intensity: vec![0.0; n * n],
            shift: (0..n).map(|i| fftshift_source(i, n)).collect(),
            sampler: PatternSampler::new(),
        }
    }

    /// Fills `self.intensity` with fftshift(|FFT2(P * O_j)|^2), unnormalised.
    fn intensity(&mut self, probe: &[Complex32], patch: &[Complex32]) {
        for ((s, p), o) in self.psi.iter_mut().zip(probe).zip(patch) {
            *s = p * o;
        }
        let n = self.shift.len();
        // The result is transposed: spec[kx * n + ky] is frequency (ky, kx).
        let spec = self.fft.forward_transposed(&mut self.psi);
        for (r, row) in self.intensity.chunks_exact_mut(n).enumerate() {
            let ky = self.shift[r];
            for (v, &kx) in row.iter_mut().zip(&self.shift) {
                *v = spec[kx * n + ky].norm_sqr();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn ramp(h: usize, w: usize) -> Array2<Complex32> {
        Array2::from_shape_fn((h, w), |(r, c)| Complex32::new(r as f32, c as f32 * 0.5))
    }

    #[test]
    fn integer_positions_copy_the_object_and_centre_it() {
        let o = ramp(20, 24);
        let mut out = vec![Complex32::new(0.0, 0.0); 16];
        extract_patch(&o.view(), 10.0, 7.0, &mut out);
        // Centre pixel (2, 2) sits on (y, x) = (7, 10).
        assert_eq!(out[2 * 4 + 2], o[[7, 10]]);
        assert_eq!(out[0], o[[5, 8]]);
        assert_eq!(out[15], o[[8, 11]]);
    }

    #[test]
    fn fractional_positions_interpolate_bilinearly() {
        let o = ramp(20, 24);
        let mut out = vec![Complex32::new(0.0, 0.0); 16];
        extract_patch(&o.view(), 10.25, 7.5, &mut out);
        // On a linear ramp bilinear interpolation is exact.
        let v = out[2 * 4 + 2];
        assert!(
            (v.re - 7.5).abs() < 1e-5 && (v.im - 5.125).abs() < 1e-5,
            "{v}"
        );
    }

    #[test]
    fn outside_the_object_is_zero() {
        let o = Array2::from_elem((6, 6), Complex32::new(1.0, 0.0));
        let mut out = vec![Complex32::new(9.0, 9.0); 16];
        extract_patch(&o.view(), 0.5, 1.0, &mut out);
        // Row -1 is outside; column -1.5 is outside, column -0.5 is half inside.
        assert_eq!(out[0], Complex32::new(0.0, 0.0));
        assert_eq!(out[4 + 1], Complex32::new(0.5, 0.0));
        assert_eq!(out[4 + 2], Complex32::new(1.0, 0.0));
        let mut edge = vec![Complex32::new(9.0, 9.0); 16];
        extract_patch(&o.view(), 4.0, 4.0, &mut edge);
        assert_eq!(edge[15], Complex32::new(1.0, 0.0)); // pixel (5, 5), the last inside
        extract_patch(&o.view(), 5.0, 4.0, &mut edge);
        assert_eq!(edge[15], Complex32::new(0.0, 0.0)); // column 6 is outside
    }
}
