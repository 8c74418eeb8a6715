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
    let b = Bilinear::new(object, x, y, n);
    for (i, row) in out.chunks_exact_mut(n).enumerate() {
        b.row(i, row);
    }
}

/// Bilinear sampling of one patch, row by row.
struct Bilinear<'a> {
    obj: &'a [Complex32],
    h: usize,
    w: usize,
    /// Top-left sample point, floored, and the four weights (the same for every pixel: all
    /// share the position's fractional offset).
    r0: f64,
    c0: f64,
    weights: [f32; 4],
    /// The patch and its +1 margin lie inside the object.
    inside: bool,
}

impl<'a> Bilinear<'a> {
    fn new(object: &'a ArrayView2<Complex32>, x: f64, y: f64, n: usize) -> Self {
        let (h, w) = object.dim();
        let top = y - (n / 2) as f64;
        let left = x - (n / 2) as f64;
        let (r0, c0) = (floor_int(top), floor_int(left));
        let (fy, fx) = (top - r0, left - c0);
        Bilinear {
            obj: object.as_slice().expect("object in standard layout"),
            h,
            w,
            r0,
            c0,
            weights: [
                ((1.0 - fy) * (1.0 - fx)) as f32,
                ((1.0 - fy) * fx) as f32,
                (fy * (1.0 - fx)) as f32,
                (fy * fx) as f32,
            ],
            inside: r0 >= 0.0
                && c0 >= 0.0
                && r0 + n as f64 + 1.0 <= h as f64
                && c0 + n as f64 + 1.0 <= w as f64,
        }
    }

    /// Row `i` of the patch into `out` (N values).
    #[inline]
    fn row(&self, i: usize, out: &mut [Complex32]) {
        let n = out.len();
        let [w00, w01, w10, w11] = self.weights;
        if self.inside {
            let (r, c0, w) = (self.r0 as usize + i, self.c0 as usize, self.w);
            let a = &self.obj[r * w + c0..r * w + c0 + n + 1];
            if self.weights == [1.0, 0.0, 0.0, 0.0] {
                // An integer position: the sum below would give exactly these values.
                out.copy_from_slice(&a[..n]);
                return;
            }
            let b = &self.obj[(r + 1) * w + c0..(r + 1) * w + c0 + n + 1];
            // Zipped slices, no indexing: the compiler vectorises this.
            let taps = a[..n].iter().zip(&a[1..]).zip(b[..n].iter().zip(&b[1..]));
            for (o, ((p, q), (r, s))) in out.iter_mut().zip(taps) {
                *o = p * w00 + q * w01 + r * w10 + s * w11;
            }
        } else {
            let get = |r: f64, c: f64| -> Complex32 {
                if r >= 0.0 && c >= 0.0 && r < self.h as f64 && c < self.w as f64 {
                    self.obj[r as usize * self.w + c as usize]
                } else {
                    Complex32::new(0.0, 0.0)
                }
            };
            let r = self.r0 + i as f64;
            for (k, o) in out.iter_mut().enumerate() {
                let c = self.c0 + k as f64;
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
    /// sum |P O_j|^2 per position, as the sum of its diffraction intensities (Parseval).
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
/// position: the energy pass and the diffraction pass count one each).
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
    let mut out = Simulated::empty();
    simulate_into(inputs, doses, threads, fft_path, &mut out, progress)?;
    Ok(out)
}

impl Simulated {
    /// No data yet: buffers for [`simulate_into`] to fill.
    pub fn empty() -> Self {
        Simulated {
            y: Array3::zeros((0, 0, 0)),
            energies: Vec::new(),
            doses: Vec::new(),
            fft_path: FftPath::Scalar,
        }
    }
}

/// [`simulate_on`] into `out`, reusing its buffers when their shapes match (for streams of
/// simulations; every value is overwritten).
pub fn simulate_into(
    inputs: &Inputs,
    doses: &[f64],
    threads: usize,
    fft_path: Option<FftPath>,
    out: &mut Simulated,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), SimulateError> {
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

    // Buffers: Y, and every dose's diffraction (the first holds the intensities until the
    // noise step overwrites them).
    if out.y.dim() != (n_pos, n, n) {
        out.y = Array3::zeros((n_pos, n, n));
    }
    out.doses.truncate(doses.len());
    for (k, &dose) in doses.iter().enumerate() {
        if k == out.doses.len() {
            out.doses.push(DoseData {
                dose,
                intensity_scale: 0.0,
                diffraction: Array3::zeros((n_pos, n, n)),
                counts: vec![0; n_pos],
            });
        }
        let d = &mut out.doses[k];
        d.dose = dose;
        if d.diffraction.dim() != (n_pos, n, n) {
            d.diffraction = Array3::zeros((n_pos, n, n));
        }
        d.counts.resize(n_pos, 0);
    }
    out.energies.resize(n_pos, 0.0);

    // Pass 1: patch (stored as Y), one FFT, the intensities (kept in the first dose's
    // diffraction array) and their sum: by Parseval the illuminated energy sum |P O_j|^2,
    // whose mean over all positions sets s.
    let inv_n2 = 1.0 / (n * n) as f64;
    std::thread::scope(|scope| {
        let first = &mut out.doses[0].diffraction;
        let chunks = out
            .y
            .axis_chunks_iter_mut(Axis(0), chunk)
            .zip(first.axis_chunks_iter_mut(Axis(0), chunk))
            .zip(out.energies.chunks_mut(chunk));
        for (t, ((mut y_chunk, mut i_chunk), e_chunk)) in chunks.enumerate() {
            let (plans, tick) = (&plans, &tick);
            scope.spawn(move || {
                let mut work = Work::new(plans, n);
                for (i, energy) in e_chunk.iter_mut().enumerate() {
                    let j = t * chunk + i;
                    let mut patch = y_chunk.index_axis_mut(Axis(0), i);
                    let patch = patch.as_slice_mut().expect("contiguous");
                    let b = Bilinear::new(&inputs.object, inputs.xcoords[j], inputs.ycoords[j], n);
                    work.intensity(&b, probe, patch);
                    let mut kept = i_chunk.index_axis_mut(Axis(0), i);
                    kept.as_slice_mut()
                        .expect("contiguous")
                        .copy_from_slice(&work.intensity);
                    *energy = total_intensity(&work.intensity, n) * inv_n2;
                    if i % 32 == 31 {
                        tick(32);
                    }
                }
                tick(e_chunk.len() % 32);
            });
        }
    });
    let mean_energy = out.energies.iter().sum::<f64>() / n_pos as f64;
    if !(mean_energy.is_finite() && mean_energy > 0.0) {
        return Err(SimulateError::Input(format!(
            "the probe and object give no signal (mean sum |P O_j|^2 = {mean_energy}): check probeGuess and objectGuess"
        )));
    }
    for d in &mut out.doses {
        d.intensity_scale = (d.dose / mean_energy).sqrt();
    }

    // Pass 2: every dose's counts from the kept intensities (copied out first: the first
    // dose's amplitudes overwrite them).
    let params: Vec<DoseParams> = out
        .doses
        .iter()
        .map(|d| DoseParams::new(d.dose, d.intensity_scale, n))
        .collect();
    let mut dose_chunks: Vec<_> = out
        .doses
        .iter_mut()
        .map(|d| {
            (
                d.diffraction.axis_chunks_iter_mut(Axis(0), chunk),
                d.counts.chunks_mut(chunk),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for t in 0..n_pos.div_ceil(chunk) {
            let mut views: Vec<(ArrayViewMut3<f32>, &mut [u64])> = dose_chunks
                .iter_mut()
                .map(|(a, c)| {
                    (
                        a.next().expect("one chunk per thread"),
                        c.next().expect("one chunk per thread"),
                    )
                })
                .collect();
            let (params, tick) = (&params, &tick);
            scope.spawn(move || {
                let mut sampler = PatternSampler::new();
                let mut intensity = vec![0.0f32; n * n];
                let len = views[0].1.len();
                for i in 0..len {
                    let j = t * chunk + i;
                    intensity.copy_from_slice(
                        views[0]
                            .0
                            .index_axis(Axis(0), i)
                            .as_slice()
                            .expect("contiguous"),
                    );
                    for ((view, counts), p) in views.iter_mut().zip(params) {
                        let mut pattern = view.index_axis_mut(Axis(0), i);
                        let amps = pattern.as_slice_mut().expect("contiguous");
                        counts[i] = p.draw(&mut sampler, &intensity, amps, inputs.seed, j as u64);
                    }
                    if i % 32 == 31 {
                        tick(32);
                    }
                }
                tick(len % 32);
            });
        }
    });
    out.fft_path = plans.path();
    Ok(())
}

/// The sum of an n x n intensity array: eight interleaved f32 partial sums per row (a fixed
/// order, so the same bits every time; vectorised), rows added in f64.
fn total_intensity(values: &[f32], n: usize) -> f64 {
    let mut total = 0.0f64;
    for row in values.chunks_exact(n) {
        let mut acc = [0.0f32; 8];
        let mut chunks = row.chunks_exact(8);
        for c in &mut chunks {
            for l in 0..8 {
                acc[l] += c[l];
            }
        }
        for v in chunks.remainder() {
            acc[0] += v;
        }
        let quads = [
            acc[0] + acc[4],
            acc[1] + acc[5],
            acc[2] + acc[6],
            acc[3] + acc[7],
        ];
        total += f64::from((quads[0] + quads[2]) + (quads[1] + quads[3]));
    }
    total
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
    /// 1 / s: stored amplitude = sqrt(c) / s, computed as sqrt(c) * (1 / s).
    inv_scale: f64,
    /// s^2 / N^2: |F|^2 of the unnormalised FFT to expected counts.
    lam_per_unit: f64,
    /// The amplitude of small counts (the same formula, precomputed).
    amp_table: Vec<f32>,
}

impl DoseParams {
    fn new(dose: f64, scale: f64, n: usize) -> Self {
        let inv_scale = 1.0 / scale;
        DoseParams {
            dose,
            inv_scale,
            lam_per_unit: scale * scale / (n * n) as f64,
            amp_table: (0..1024).map(|c| amplitude(c, inv_scale)).collect(),
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
        sampler.sample(intensity, self.lam_per_unit, &mut rng, amps, |c| match self
            .amp_table
            .get(c as usize)
        {
            Some(v) => *v,
            None => amplitude(c, self.inv_scale),
        })
    }
}

/// The stored amplitude of `count` photons: sqrt(count) / s, as sqrt(count) * (1 / s).
#[inline]
fn amplitude(count: u64, inv_scale: f64) -> f32 {
    ((count as f64).sqrt() * inv_scale) as f32
}

/// One worker's buffers, allocated once.
struct Work {
    n: usize,
    fft: Fft2<f32>,
    /// (P * O_j) transposed.
    psi_t: Vec<Complex32>,
    /// Eight rows of P * O_j on their way into `psi_t`.
    block: Vec<Complex32>,
    /// |FFT(psi)|^2 (unnormalised), fftshifted, row-major.
    intensity: Vec<f32>,
}

impl Work {
    fn new(plans: &Plans<f32>, n: usize) -> Self {
        Work {
            n,
            fft: plans.workspace(),
            psi_t: vec![Complex32::new(0.0, 0.0); n * n],
            block: vec![Complex32::new(0.0, 0.0); 8 * n],
            intensity: vec![0.0; n * n],
        }
    }

    /// Writes the patch of `b` into `patch` (Y) and fills `self.intensity` with
    /// fftshift(|FFT2(P * O_j)|^2), unnormalised. psi is formed transposed, eight rows at a
    /// time (a cache line of psi^T per column), so that the row-transpose-row FFT returns the
    /// spectrum in natural order.
    fn intensity(&mut self, b: &Bilinear, probe: &[Complex32], patch: &mut [Complex32]) {
        let n = self.n;
        const BLOCK: usize = 8;
        for i0 in (0..n).step_by(BLOCK) {
            let i1 = (i0 + BLOCK).min(n);
            let rows = &mut patch[i0 * n..i1 * n];
            let block = &mut self.block[..rows.len()];
            for (i, ((row, b_row), p_row)) in rows
                .chunks_exact_mut(n)
                .zip(block.chunks_exact_mut(n))
                .zip(probe[i0 * n..i1 * n].chunks_exact(n))
                .enumerate()
            {
                b.row(i0 + i, row);
                for ((v, o), p) in b_row.iter_mut().zip(row.iter()).zip(p_row) {
                    *v = o * p;
                }
            }
            // Column k of psi^T gets rows i0..i1 of column k of psi: one cache line each.
            for (k, column) in self.psi_t.chunks_exact_mut(n).enumerate() {
                for (v, b_row) in column[i0..i1].iter_mut().zip(block.chunks_exact(n)) {
                    *v = b_row[k];
                }
            }
        }
        let spec = self.fft.forward_transposed(&mut self.psi_t);
        // fftshift: output column c shows frequency (c + s0) mod n, s0 = n - n/2; two runs.
        let s0 = (n - n / 2) % n;
        for (r, row) in self.intensity.chunks_exact_mut(n).enumerate() {
            let src = &spec[fftshift_source(r, n) * n..][..n];
            let (head, tail) = row.split_at_mut(n - s0);
            for (v, f) in head.iter_mut().zip(&src[s0..]) {
                *v = f.norm_sqr();
            }
            for (v, f) in tail.iter_mut().zip(&src[..s0]) {
                *v = f.norm_sqr();
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
    fn intensity_is_the_shifted_squared_dft_for_even_and_odd_n() {
        for n in [7usize, 8, 12] {
            let plans = Plans::<f32>::new(n);
            let mut work = Work::new(&plans, n);
            let patch: Vec<Complex32> = (0..n * n)
                .map(|i| Complex32::new((i as f32 * 0.7).sin(), (i as f32 * 0.3).cos()))
                .collect();
            let probe: Vec<Complex32> = (0..n * n)
                .map(|i| Complex32::new(1.0 + (i % 5) as f32 * 0.1, (i % 3) as f32 * 0.2))
                .collect();
            // An object equal to the patch, sampled at its centre: Y is the patch itself.
            let object = ndarray::Array2::from_shape_vec((n, n), patch.clone()).unwrap();
            let view = object.view();
            let b = Bilinear::new(&view, (n / 2) as f64, (n / 2) as f64, n);
            let mut y = vec![Complex32::new(0.0, 0.0); n * n];
            work.intensity(&b, &probe, &mut y);
            assert_eq!(y, patch);
            for r in 0..n {
                for c in 0..n {
                    let (ky, kx) = (fftshift_source(r, n), fftshift_source(c, n));
                    let mut acc = num_complex::Complex64::new(0.0, 0.0);
                    for i in 0..n {
                        for k in 0..n {
                            let v = patch[i * n + k] * probe[i * n + k];
                            let ang = -2.0 * std::f64::consts::PI * ((ky * i + kx * k) % n) as f64
                                / n as f64;
                            acc += num_complex::Complex64::new(v.re as f64, v.im as f64)
                                * num_complex::Complex64::from_polar(1.0, ang);
                        }
                    }
                    let got = f64::from(work.intensity[r * n + c]);
                    assert!(
                        (got - acc.norm_sqr()).abs() < 1e-4 * (1.0 + acc.norm_sqr()),
                        "n {n} ({r}, {c})"
                    );
                }
            }
        }
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
