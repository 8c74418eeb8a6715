//! The forward model: bilinear patches, psi = P * O_j, orthonormal |FFT|^2 with fftshift, dose
//! scaling and Poisson counts, in parallel over positions with results independent of the
//! thread count.

use crate::detmath::floor_int;
use crate::fft::{Fft2, FftPath, Plans, fftshift_source};
use crate::poisson::PatternSampler;
use crate::prefetch::{Prefetcher, region};
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
    /// Patch side.
    n: usize,
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
            n,
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

    /// Row `i` of the patch as interleaved (re, im) floats, from `object`, the object in that
    /// layout: the same values as [`Bilinear::row`]. Borrowed from `object` at integer
    /// positions, else made in `buf` (2N floats).
    #[inline]
    fn row_interleaved<'b>(&self, object: &'b [f32], i: usize, buf: &'b mut [f32]) -> &'b [f32] {
        let n2 = buf.len();
        let [w00, w01, w10, w11] = self.weights;
        if self.inside {
            let (r, c0, w) = (self.r0 as usize + i, self.c0 as usize, self.w);
            let a = &object[2 * (r * w + c0)..][..n2 + 2];
            if self.weights == [1.0, 0.0, 0.0, 0.0] {
                return &a[..n2];
            }
            let b = &object[2 * ((r + 1) * w + c0)..][..n2 + 2];
            let taps = a[..n2].iter().zip(&a[2..]).zip(b[..n2].iter().zip(&b[2..]));
            for (o, ((p, q), (r, s))) in buf.iter_mut().zip(taps) {
                *o = p * w00 + q * w01 + r * w10 + s * w11;
            }
        } else {
            let get = |r: f64, c: f64, part: usize| -> f32 {
                if r >= 0.0 && c >= 0.0 && r < self.h as f64 && c < self.w as f64 {
                    object[2 * (r as usize * self.w + c as usize) + part]
                } else {
                    0.0
                }
            };
            let r = self.r0 + i as f64;
            for (k, o) in buf.iter_mut().enumerate() {
                let (c, part) = (self.c0 + (k / 2) as f64, k % 2);
                *o = get(r, c, part) * w00
                    + get(r, c + 1.0, part) * w01
                    + get(r + 1.0, c, part) * w10
                    + get(r + 1.0, c + 1.0, part) * w11;
            }
        }
        buf
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
    /// sum |P O_j|^2 per position, summed in real space.
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

    // Buffers: Y and every dose's diffraction, reused when the shapes match.
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

    // Pass 1: each position's illuminated energy sum |P O_j|^2, summed in real space (the
    // spec's definition; by Parseval also the sum of its intensities), whose mean over all
    // positions sets s. No FFT and no stores yet: pass 2 makes the patches (Y) and the
    // intensities, which never leave the worker's cache.
    let terms = EnergyTerms::new(inputs.object.as_slice().expect("checked"), probe);
    std::thread::scope(|scope| {
        for (t, e_chunk) in out.energies.chunks_mut(chunk).enumerate() {
            let (tick, terms) = (&tick, &terms);
            scope.spawn(move || {
                let mut row = vec![0.0f32; 2 * n];
                for (i, energy) in e_chunk.iter_mut().enumerate() {
                    let j = t * chunk + i;
                    let b = Bilinear::new(&inputs.object, inputs.xcoords[j], inputs.ycoords[j], n);
                    *energy = terms.energy(&b, &mut row);
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

    // Pass 2: per position, the patch (stored as Y), one FFT, and every dose's counts from
    // the same intensities, while the next position's output lines are prefetched.
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
    let mut y_chunks = out.y.axis_chunks_iter_mut(Axis(0), chunk);
    std::thread::scope(|scope| {
        for t in 0..n_pos.div_ceil(chunk) {
            let mut y_chunk = y_chunks.next().expect("one chunk per thread");
            let mut views: Vec<(ArrayViewMut3<f32>, &mut [u64])> = dose_chunks
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
                let mut sampler = PatternSampler::new();
                let mut prefetch = Prefetcher::new();
                let mut regions = Vec::new();
                let len = views[0].1.len();
                for i in 0..len {
                    let j = t * chunk + i;
                    let b = Bilinear::new(&inputs.object, inputs.xcoords[j], inputs.ycoords[j], n);
                    if i + 1 < len {
                        // The next pattern's output lines, fetched during this one's work.
                        let y_next = y_chunk.index_axis(Axis(0), i + 1);
                        regions.clear();
                        regions.push(region(y_next.as_slice().expect("contiguous")));
                        for (v, _) in &views {
                            let a = v.index_axis(Axis(0), i + 1);
                            regions.push(region(a.as_slice().expect("contiguous")));
                        }
                        prefetch.plan(&regions, work.ticks());
                    }
                    let mut patch = y_chunk.index_axis_mut(Axis(0), i);
                    let patch = patch.as_slice_mut().expect("contiguous");
                    work.intensity(&b, probe, patch, &mut prefetch);
                    for ((view, counts), p) in views.iter_mut().zip(params) {
                        let mut pattern = view.index_axis_mut(Axis(0), i);
                        let amps = pattern.as_slice_mut().expect("contiguous");
                        counts[i] =
                            p.draw(&mut sampler, &work.intensity, amps, inputs.seed, j as u64);
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

/// Pass 1's operands: the object as interleaved (re, im) floats and |P|^2 once per component,
/// so that sum |P O_j|^2 = sum_k f_k^2 w_k runs on plain f32 lanes, with none of the
/// shuffles that complex products need (with them this pass took 17 us per pattern at
/// N = 128, more than half as long as the FFT pass; now about 7).
struct EnergyTerms {
    object: Vec<f32>,
    weights: Vec<f32>,
}

impl EnergyTerms {
    fn new(object: &[Complex32], probe: &[Complex32]) -> Self {
        let w: Vec<f64> = probe
            .iter()
            .map(|p| {
                let (re, im) = (f64::from(p.re), f64::from(p.im));
                re * re + im * im
            })
            .collect();
        // Weights below 2^-64 of the largest are dropped: their terms are far below the
        // sum's f32 rounding, and as f32 products they would be subnormal (microcode
        // assists, 100x slower per operation, on the tails of a focused probe).
        const TWO_POW_MINUS_64: f64 = 1.0 / 18_446_744_073_709_551_616.0;
        let floor = w.iter().fold(0.0f64, |a, v| a.max(*v)) * TWO_POW_MINUS_64;
        EnergyTerms {
            object: object.iter().flat_map(|v| [v.re, v.im]).collect(),
            weights: w
                .iter()
                .flat_map(|&v| {
                    let v = if v >= floor { v as f32 } else { 0.0 };
                    [v, v]
                })
                .collect(),
        }
    }

    /// sum |P O_j|^2 for the patch of `b` (`row` holds 2N floats): per row, sixteen
    /// interleaved f32 partial sums in a fixed order (the same bits every time; vectorised),
    /// rows added in f64.
    fn energy(&self, b: &Bilinear, row: &mut [f32]) -> f64 {
        let n2 = 2 * b.n;
        let mut total = 0.0f64;
        for (i, w_row) in self.weights.chunks_exact(n2).enumerate() {
            let f = b.row_interleaved(&self.object, i, row);
            let mut acc = [0.0f32; 16];
            for (o, w) in f.chunks_exact(16).zip(w_row.chunks_exact(16)) {
                for l in 0..16 {
                    acc[l] += o[l] * o[l] * w[l];
                }
            }
            let tail = n2 - n2 % 16;
            for (o, w) in f[tail..].iter().zip(&w_row[tail..]) {
                acc[0] += o * o * w;
            }
            let mut width = 16;
            while width > 1 {
                width /= 2;
                for l in 0..width {
                    acc[l] += acc[l + width];
                }
            }
            total += f64::from(acc[0]);
        }
        total
    }
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
    if doses.is_empty() {
        return Err(SimulateError::Input("no dose to simulate".into()));
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

    /// Prefetch ticks per call of [`Work::intensity`].
    fn ticks(&self) -> usize {
        2 * self.n + 3 * self.n.div_ceil(8)
    }

    /// Writes the patch of `b` into `patch` (Y) and fills `self.intensity` with
    /// fftshift(|FFT2(P * O_j)|^2), unnormalised. psi is formed transposed, eight rows at a
    /// time (a cache line of psi^T per column), so that the row-transpose-row FFT returns the
    /// spectrum in natural order. `prefetch` ticks [`Work::ticks`] times.
    fn intensity(
        &mut self,
        b: &Bilinear,
        probe: &[Complex32],
        patch: &mut [Complex32],
        prefetch: &mut Prefetcher,
    ) {
        let n = self.n;
        const BLOCK: usize = 8;
        for i0 in (0..n).step_by(BLOCK) {
            let i1 = (i0 + BLOCK).min(n);
            let block = &mut self.block[..(i1 - i0) * n];
            for (i, ((b_row, p_row), y_row)) in block
                .chunks_exact_mut(n)
                .zip(probe[i0 * n..i1 * n].chunks_exact(n))
                .zip(patch[i0 * n..i1 * n].chunks_exact_mut(n))
                .enumerate()
            {
                b.row(i0 + i, y_row);
                for ((v, o), p) in b_row.iter_mut().zip(y_row.iter()).zip(p_row) {
                    *v = o * p;
                }
                prefetch.tick();
            }
            // Column k of psi^T gets rows i0..i1 of column k of psi: one cache line each.
            for (k, column) in self.psi_t.chunks_exact_mut(n).enumerate() {
                for (v, b_row) in column[i0..i1].iter_mut().zip(block.chunks_exact(n)) {
                    *v = b_row[k];
                }
            }
            prefetch.tick();
        }
        let spec = self
            .fft
            .forward_transposed_with(&mut self.psi_t, &mut || prefetch.tick());
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
            prefetch.tick();
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
            work.intensity(&b, &probe, &mut y, &mut Prefetcher::new());
            assert_eq!(y, patch);
            let energy = EnergyTerms::new(&patch, &probe).energy(&b, &mut vec![0.0; 2 * n]);
            let spectral: f64 = work.intensity.iter().map(|v| f64::from(*v)).sum();
            assert!(
                (energy - spectral / (n * n) as f64).abs() < 1e-5 * energy,
                "Parseval, n {n}"
            );
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
    fn no_dose_is_an_input_error() {
        let o = ramp(20, 24);
        let p = Array2::from_elem((6, 6), Complex32::new(1.0, 0.0));
        let inputs = Inputs {
            object: o.view(),
            probe: p.view(),
            xcoords: &[10.0],
            ycoords: &[9.0],
            seed: 1,
        };
        assert!(matches!(
            simulate(&inputs, &[], 1, &|_, _| {}),
            Err(SimulateError::Input(_))
        ));
        assert_eq!(
            simulate(&inputs, &[1e3], 1, &|_, _| {})
                .unwrap()
                .doses
                .len(),
            1
        );
    }

    #[test]
    fn interleaved_rows_equal_the_complex_rows() {
        let o = Array2::from_shape_fn((20, 24), |(r, c)| {
            Complex32::new((r as f32 * 0.37 + c as f32).sin(), (c as f32 * 0.21).cos())
        });
        let flat: Vec<f32> = o.iter().flat_map(|v| [v.re, v.im]).collect();
        let n = 6;
        // Inside, integer and fractional; across the top-left and bottom-right edges.
        for (x, y) in [
            (10.0, 9.0),
            (10.3, 9.7),
            (11.5, 12.25),
            (1.2, 2.0),
            (22.6, 18.9),
        ] {
            let view = o.view();
            let b = Bilinear::new(&view, x, y, n);
            let mut row = vec![Complex32::new(0.0, 0.0); n];
            let mut buf = vec![0.0f32; 2 * n];
            for i in 0..n {
                b.row(i, &mut row);
                let want: Vec<f32> = row.iter().flat_map(|v| [v.re, v.im]).collect();
                assert_eq!(
                    b.row_interleaved(&flat, i, &mut buf),
                    &want[..],
                    "({x}, {y}) row {i}"
                );
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
