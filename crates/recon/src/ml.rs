//! The maximum-likelihood engine (`ml`): full-batch L-BFGS on the negative Poisson
//! log-likelihood of the measured counts, preconditioned by the illumination, with a monotone
//! safeguard instead of a line search, and an optional smoothness prior.
//!
//! Model and units. With `Psi_j = FFT2(P O_j)` (orthonormal) and the toolkit's amplitudes
//! `a = sqrt(counts) / s` (`s` = `intensity_scale` in the file's `_metadata`), the expected
//! counts are `s^2 |Psi|^2`, and the objective in counts is
//!
//! `F(O, P) = s^2 sum_j sum_u [ |Psi|^2 - a^2 ln(|Psi|^2 + delta) ] + lambda R(O)`,
//!
//! `R(O) = sum |O_p - O_q|^2` over horizontally and vertically adjacent pixels, `delta` a floor
//! of [`DELTA_COUNTS`] counts on the model intensity. Files without `intensity_scale` use the
//! documented Gaussian fallback: `2 s^2 sum (|Psi| - a)^2` with `s = 1` (amplitude least
//! squares; the factor 2 s^2 is the variance-stabilised Poisson likelihood of sqrt(counts), so
//! both models have the same curvature at the solution and share one preconditioner).
//!
//! One epoch is one evaluation of F and its gradient at a point: per position one FFT round
//! trip (as an ePIE step), `Psi -> r Psi` with `r = a^2 / (|Psi|^2 + delta)` (Poisson) or
//! `a / |Psi|` (Gaussian), and `chi_j = psi_j - IFFT(r Psi_j)` (dF/dpsi* up to the factor),
//! accumulated into `sum conj(P) chi_j` (object) and `sum conj(O_j) chi_j` (probe). The step
//! is `alpha d`, `d` the L-BFGS direction ([`MEMORY`] pairs) with the initial inverse Hessian
//! `1 / D`, `D = 2 s^2 (sum_j |P_j|^2 + gamma max) + 4 lambda` (the projection, Newton, step of
//! both models); a step whose F is higher than the current point's is undone and alpha halves
//! (it doubles back towards 1 on acceptance). The accepted iterates therefore never increase
//! F, which bounds the iteration without a line search (no extra FFTs).
//!
//! Cost: an epoch is the FFT round trips plus a few passes over the object grid (the chunk
//! sums with the prior, and the L-BFGS recursion, each update fused with the next inner
//! product; the recursion's first two sums come from the pass that makes the pair). The
//! Poisson logarithm is taken only at counted pixels (a bitmask per position). Everything
//! parallel runs on the engine's own pool, kept for its life (a scoped thread spawn costs
//! 35-40 us on the 2-core machine, and an epoch has about ten parallel parts); the hot loops
//! are compiled for AVX2 where the CPU has it ([`crate::simd`]). About 1.4-1.5x an ePIE
//! epoch on one thread (`ml_peer ratio`, `benches/recon.rs`).
//!
//! Determinism: positions are cut into [`CHUNKS`] fixed index ranges, each with its own
//! accumulators, summed in chunk order, and the grid passes into fixed segments; threads
//! only decide who computes a part. Grouping
//! (gridsize > 1) does not exist for a full-batch gradient: every position contributes once
//! to every epoch's gradient, so `ml` ignores the K-choose-C groups (gridsize 2 gives the
//! gridsize 1 result on the same data).

use crate::ReconError;
use crate::data::{Dataset, Prepared};
use crate::fft::{Fft2, Hooks};
use crate::kernels::{
    Dots, EPS, axpy_dot, diff_dots, dot_re, lane_sum_excess, lane_sum_sq, lanes, norm_weighted,
    step_into,
};
use crate::par::{Par, SEGMENTS};
use crate::reconstruction::{MlReport, NoiseModel, Reconstruction};
use crate::settings::Settings;
use crate::simd::fast_fn;
use num_complex::Complex32;

/// Fixed number of position chunks (the unit of parallel work and of the ordered reduction).
pub const CHUNKS: usize = 4;
/// Floor on the model intensity in the Poisson likelihood, in counts per pixel: keeps the
/// gradient finite where a pixel counts photons and the model predicts none.
pub const DELTA_COUNTS: f64 = 0.01;
/// Illumination floor of the preconditioner, relative to its maximum (about 11 exposures of
/// the probe's peak in the default study's baseline): keeps D > 0 where no probe reaches.
/// Measured: 0.02 slowed the scored edge (illuminated down to 0.1 x the probe's peak) and cost
/// 0.01 NRMSE at 1e4; below 0.002 nothing changes.
pub const GAMMA: f64 = 0.002;
/// L-BFGS memory (curvature pairs kept). Measured on the default study's test splits (300
/// epochs, smoothness 6 and 8): 3, 4 and 6 pairs end within 0.004 NRMSE of each other at every
/// dose, and each pair costs a few % of an epoch in memory traffic over the object grid.
pub const MEMORY: usize = 3;

/// An L-BFGS curvature pair: object then probe.
struct Pair {
    s: Vec<Complex32>,
    y: Vec<Complex32>,
    /// 1 / Re <s, y>.
    rho: f64,
    /// sum |y|^2 / D, when D cannot change before the pair is used (probe fixed).
    yhy: Option<f64>,
}

/// One chunk's scratch and accumulators.
struct Chunk {
    range: std::ops::Range<usize>,
    fft: Fft2,
    buf: Vec<Complex32>,
    spec: Vec<Complex32>,
    resid: Vec<f32>,
    /// Model intensities of the spectrum rows in hand (the Poisson logarithm pass).
    lam: Vec<f32>,
    /// Object rows `row0..row0 + rows` of the gradient.
    row0: usize,
    grad: Vec<Complex32>,
    probe_grad: Vec<Complex32>,
    /// sum |O_j|^2 per probe pixel (probe preconditioner).
    obj_norm: Vec<f32>,
    /// sum |P|^2 per object pixel (object preconditioner, when the probe moves).
    illum: Vec<f32>,
    ef: f64,
    nll: f64,
}

/// The `ml` solver state.
pub struct MlEngine {
    settings: Settings,
    par: Par,
    n: usize,
    prep: Prepared,
    noise: NoiseModel,
    s2: f64,
    object: Vec<Complex32>,
    probe: Vec<Complex32>,
    chunks: Vec<Chunk>,
    /// Positions in the order the chunks take them (row-major by top-left corner).
    order: Vec<usize>,
    /// Per position, one bit per detector pixel (the `amps` layout) set where photons were
    /// counted: the Poisson logarithm visits only those (1/32 of the amplitudes' memory).
    counted: Vec<u64>,
    /// u64 words per position in `counted`.
    words: usize,
    /// The current (accepted) point's gradient, F, E_F.
    grad: Vec<Complex32>,
    probe_grad: Vec<Complex32>,
    f_cur: f64,
    ef_cur: f64,
    /// 1 / D on the object grid and on the probe.
    inv_d: Vec<f32>,
    inv_dp: Vec<f32>,
    /// The point under evaluation is `base + v` (base = the accepted point).
    base: Vec<Complex32>,
    base_probe: Vec<Complex32>,
    base_grad: Vec<Complex32>,
    base_probe_grad: Vec<Complex32>,
    base_inv_d: Vec<f32>,
    base_inv_dp: Vec<f32>,
    /// sum_j |P_j|^2 on the object grid, and sum_j |O_j|^2 on the probe (reduction buffers).
    illum: Vec<f32>,
    obj_norm: Vec<f32>,
    alpha: f64,
    /// The proposed step `alpha d` (object, then probe when refined): the next curvature
    /// pair's s, kept by the proposal so that no pass recomputes it.
    step: Vec<Complex32>,
    /// |step|^2 (object part) and |base|^2 of the point it was taken from: the relative
    /// change of an accepted step.
    step_ss: f64,
    base_ss: f64,
    /// L-BFGS memory, oldest first.
    memory: std::collections::VecDeque<Pair>,
    /// Re <s, G> of the newest pair and the accepted gradient, when the pass that made the
    /// pair computed it for this gradient (probe fixed; the pair was the last accepted step):
    /// the two-loop recursion's first inner product, without a pass of its own.
    newest_s_dot_grad: Option<f64>,
    /// The direction's buffer, kept across epochs.
    q: Vec<Complex32>,
    evaluated: bool,
    rejected: u32,
    last_change: f64,
    loss_history: Vec<f64>,
    objective_history: Vec<f64>,
    stopped: bool,
}

impl MlEngine {
    /// Checks and prepares `data`; `threads` (1 to [`CHUNKS`] useful) only changes the speed.
    pub fn new(
        data: &Dataset,
        settings: &Settings,
        threads: usize,
    ) -> Result<MlEngine, ReconError> {
        settings.check()?;
        let prep = data.prepare()?;
        let n = prep.n;
        let nn = n * n;
        let count = prep.topleft.len();
        let (noise, s) = match data.intensity_scale {
            Some(s) if s.is_finite() && s > 0.0 => (NoiseModel::Poisson, s),
            Some(s) => {
                return Err(ReconError::BadInput(format!(
                    "_metadata intensity_scale = {s}: must be finite and > 0 (it converts \
                     amplitudes back to counts)"
                )));
            }
            None => (NoiseModel::Gaussian, 1.0),
        };
        let zero = Complex32::new(0.0, 0.0);
        let cols = prep.grid.1;
        // Chunks of positions in row order (ties by column, then index): each chunk's
        // gradient band is then about a quarter of the grid, not all of it, which is what
        // the reduction and the band clearing cost.
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by_key(|&j| (prep.topleft[j], j));
        let chunks = (0..CHUNKS)
            .map(|c| {
                let range = count * c / CHUNKS..count * (c + 1) / CHUNKS;
                let (lo, hi) = order[range.clone()]
                    .iter()
                    .fold((usize::MAX, 0), |(lo, hi), &j| {
                        let ty = prep.topleft[j].0;
                        (lo.min(ty), hi.max(ty + n))
                    });
                let (row0, rows) = if range.is_empty() {
                    (0, 0)
                } else {
                    (lo, hi - lo)
                };
                Chunk {
                    range,
                    fft: Fft2::new(n),
                    buf: vec![zero; nn],
                    spec: vec![zero; nn],
                    resid: vec![0.0; nn],
                    lam: vec![0.0; nn],
                    row0,
                    grad: vec![zero; rows * cols],
                    probe_grad: if settings.refine_probe {
                        vec![zero; nn]
                    } else {
                        Vec::new()
                    },
                    obj_norm: if settings.refine_probe {
                        vec![0.0; nn]
                    } else {
                        Vec::new()
                    },
                    illum: vec![0.0; rows * cols],
                    ef: 0.0,
                    nll: 0.0,
                }
            })
            .collect();
        let grid_len = prep.grid.0 * cols;
        let words = nn.div_ceil(64);
        let mut counted = vec![0u64; count * words];
        for (frame, mask) in prep
            .amps
            .chunks_exact(nn)
            .zip(counted.chunks_exact_mut(words))
        {
            for (i, &a) in frame.iter().enumerate() {
                if a > 0.0 {
                    mask[i / 64] |= 1u64 << (i % 64);
                }
            }
        }
        let mut engine = MlEngine {
            settings: settings.clone(),
            par: Par::new(threads.clamp(1, CHUNKS)),
            n,
            noise,
            s2: s * s,
            object: vec![Complex32::new(1.0, 0.0); grid_len],
            probe: data.probe.iter().copied().collect(),
            chunks,
            order,
            counted,
            words,
            grad: vec![zero; grid_len],
            probe_grad: vec![zero; nn],
            f_cur: f64::INFINITY,
            ef_cur: f64::NAN,
            inv_d: vec![0.0; grid_len],
            inv_dp: vec![0.0; nn],
            base: Vec::new(),
            base_probe: Vec::new(),
            base_grad: vec![zero; grid_len],
            base_probe_grad: vec![zero; nn],
            base_inv_d: vec![0.0; grid_len],
            base_inv_dp: vec![0.0; nn],
            illum: vec![0.0; grid_len],
            obj_norm: vec![0.0; nn],
            alpha: settings.alpha,
            step: Vec::new(),
            step_ss: 0.0,
            base_ss: 0.0,
            memory: std::collections::VecDeque::new(),
            newest_s_dot_grad: None,
            q: Vec::new(),
            evaluated: false,
            rejected: 0,
            last_change: f64::NAN,
            loss_history: Vec::with_capacity(settings.epochs as usize),
            objective_history: Vec::with_capacity(settings.epochs as usize),
            stopped: false,
            prep,
        };
        engine.base = engine.object.clone();
        engine.base_probe = engine.probe.clone();
        Ok(engine)
    }

    /// The likelihood in use.
    pub fn noise_model(&self) -> NoiseModel {
        self.noise
    }

    /// Replaces the object on the objectGuess grid (a warm start; tests start from the truth).
    pub fn set_object(&mut self, object: ndarray::ArrayView2<Complex32>) -> Result<(), ReconError> {
        let [top, bottom, left, right] = self.prep.rounding.padding;
        let (rows, cols) = self.prep.grid;
        if object.dim() != (rows - top - bottom, cols - left - right) {
            return Err(ReconError::BadInput(format!(
                "start object is {:?} but objectGuess is {:?}",
                object.dim(),
                (rows - top - bottom, cols - left - right)
            )));
        }
        for ((r, c), v) in object.indexed_iter() {
            self.object[(r + top) * cols + c + left] = *v;
        }
        self.base.copy_from_slice(&self.object);
        self.evaluated = false;
        Ok(())
    }

    /// One pass over every position at the current point: F, E_F and both gradients.
    fn evaluate(&mut self) -> (f64, f64) {
        let n = self.n;
        let nn = n * n;
        let cols = self.prep.grid.1;
        let refine = self.settings.refine_probe;
        let poisson = self.noise == NoiseModel::Poisson;
        // delta in the unnormalised units of |spec|^2 = N^2 |Psi|^2.
        let n2_delta = (nn as f64 * DELTA_COUNTS / self.s2) as f32;
        let n_eps = n as f32 * EPS;
        let inv_n2 = 1.0 / nn as f32;
        // The object preconditioner moves only with the probe.
        let with_illum = refine || !self.evaluated;
        let ctx = EvalCtx {
            n,
            cols,
            refine,
            poisson,
            n2_delta,
            n_eps,
            inv_n2,
            with_illum,
            object: &self.object,
            probe: &self.probe,
            prep: &self.prep,
            order: &self.order,
            counted: &self.counted,
            words: self.words,
        };
        // Work-stealing only decides who computes a chunk; each keeps its own sums.
        self.par
            .each_mut(&mut self.chunks, |chunk| chunk_work(&ctx, chunk));
        // Gradient scale: dF/dpsi* is s^2 chi (Poisson) or 2 s^2 chi (Gaussian); applied in
        // the reduction (no pass of its own).
        let gscale = match self.noise {
            NoiseModel::Poisson => self.s2,
            NoiseModel::Gaussian => 2.0 * self.s2,
        } as f32;
        let lambda = self.settings.smoothness;
        // The fixed-order reduction (chunk 0, 1, ... whatever the thread count) and the
        // prior, over fixed row segments of the grid.
        let prior_rows = self.reduce_object(gscale, lambda as f32, with_illum);
        let prior: f64 = prior_rows.iter().sum();
        let (mut ef, mut nll) = (0f64, 0f64);
        if refine {
            self.probe_grad.fill(Complex32::new(0.0, 0.0));
            self.obj_norm.fill(0.0);
        }
        for chunk in &self.chunks {
            if refine {
                for (g, c) in self.probe_grad.iter_mut().zip(&chunk.probe_grad) {
                    *g += c;
                }
                for (o, c) in self.obj_norm.iter_mut().zip(&chunk.obj_norm) {
                    *o += c;
                }
            }
            ef += chunk.ef;
            nll += chunk.nll;
        }
        // Data term in counts: s^2 x (Poisson deviance / 2, or 2 x amplitude squares), the
        // unnormalised N^2 removed.
        let data_f = match self.noise {
            NoiseModel::Poisson => self.s2 * nll / nn as f64,
            NoiseModel::Gaussian => 2.0 * self.s2 * ef / nn as f64,
        };
        // Preconditioners from this point's illumination (they move with the probe).
        let two_s2 = (2.0 * self.s2) as f32;
        if with_illum {
            let max_w = self.illum.iter().fold(0f32, |m, &w| m.max(w));
            let floor = (GAMMA * f64::from(max_w)) as f32;
            let prior_diag = 4.0 * lambda as f32;
            for (d, w) in self.inv_d.iter_mut().zip(&self.illum) {
                *d = 1.0 / (two_s2 * (w + floor) + prior_diag);
            }
        }
        if refine {
            for g in &mut self.probe_grad {
                *g *= gscale;
            }
            let max_o = self.obj_norm.iter().fold(0f32, |m, &w| m.max(w));
            let floor = (GAMMA * f64::from(max_o)) as f32;
            for (d, w) in self.inv_dp.iter_mut().zip(&self.obj_norm) {
                *d = 1.0 / (two_s2 * (w + floor));
            }
        }
        (data_f + lambda * prior, ef / nn as f64 / self.prep.sum_a2)
    }

    /// The object gradient of the point just evaluated: the chunks' bands summed in chunk
    /// order and scaled by `gscale`, plus lambda dR/dO* = lambda sum_q (O_p - O_q); and the
    /// illumination when `with_illum`. Returns R(O) per grid row (summed in row order by the
    /// caller). Rows are cut into fixed segments, so the bits do not depend on the threads.
    fn reduce_object(&mut self, gscale: f32, lambda: f32, with_illum: bool) -> Vec<f64> {
        let (rows, cols) = self.prep.grid;
        let seg_rows = rows.div_ceil(SEGMENTS).max(1);
        let (object, chunks) = (&self.object, &self.chunks);
        let parts: Vec<_> = self
            .grad
            .chunks_mut(seg_rows * cols)
            .zip(self.illum.chunks_mut(seg_rows * cols))
            .enumerate()
            .map(|(i, (g, w))| (i * seg_rows, g, w))
            .collect();
        let ctx = ReduceCtx {
            rows,
            cols,
            gscale,
            lambda,
            with_illum,
            object,
            chunks,
        };
        let per_segment = self.par.run(parts, |(y0, grad, illum)| {
            reduce_segment(&ctx, y0, grad, illum)
        });
        per_segment.into_iter().flatten().collect()
    }

    /// Runs one epoch (one evaluation and one step) and returns E_F of the accepted point.
    pub fn run_epoch(&mut self) -> f64 {
        let (f, ef) = self.evaluate();
        if !self.evaluated {
            // The start point: nothing to compare with.
            self.evaluated = true;
            self.accept(f, ef, true);
        } else if f <= self.f_cur {
            self.remember();
            self.accept(f, ef, false);
            self.alpha = (self.alpha * 2.0).min(1.0);
        } else {
            // The safeguard: back to the accepted point and its gradient, half the step.
            // (A non-finite F compares false and lands here too.)
            // Nothing to restore: the next point is proposed from base, base_grad and
            // base_inv_d, and the next evaluation overwrites object, grad and inv_d.
            self.rejected += 1;
            self.alpha *= 0.5;
        }
        self.loss_history.push(self.ef_cur);
        self.objective_history.push(self.f_cur);
        self.propose();
        self.ef_cur
    }

    /// Makes the point just evaluated the accepted one. `first`: the start point (the only
    /// evaluation that sets the object preconditioner when the probe is fixed).
    fn accept(&mut self, f: f64, ef: f64, first: bool) {
        // Relative change of the object on this accepted step (none at the start point).
        self.last_change = if first {
            0.0
        } else {
            (self.step_ss / self.base_ss.max(f64::MIN_POSITIVE)).sqrt()
        };
        self.f_cur = f;
        self.ef_cur = ef;
        // Swaps, not copies: the next proposal overwrites object (and the probe when it is
        // refined; else both probes are the same), the next evaluation grad.
        std::mem::swap(&mut self.base, &mut self.object);
        std::mem::swap(&mut self.base_probe, &mut self.probe);
        std::mem::swap(&mut self.base_grad, &mut self.grad);
        std::mem::swap(&mut self.base_probe_grad, &mut self.probe_grad);
        if first || self.settings.refine_probe {
            self.base_inv_d.copy_from_slice(&self.inv_d);
            self.base_inv_dp.copy_from_slice(&self.inv_dp);
        }
    }

    /// Stores the curvature pair (s, y) of the step about to be accepted; pairs without
    /// positive curvature (the objective is not convex) are skipped.
    fn remember(&mut self) {
        let refine = self.settings.refine_probe;
        let sv = std::mem::take(&mut self.step);
        let (spare, mut yv) = match self.memory.len() {
            // Reuse the oldest pair's buffers when the memory is full.
            MEMORY => {
                let pair = self.memory.pop_front().expect("memory is full");
                (pair.s, pair.y)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let len = self.grad.len();
        yv.resize(sv.len(), Complex32::new(0.0, 0.0));
        // y = grad - base_grad and the inner products, in one pass. With the probe fixed,
        // inv_d is the preconditioner of every later direction, and grad becomes the
        // accepted gradient: the direction's first two sums are made here.
        let (y_object, y_probe) = yv.split_at_mut(len);
        let mut dots = par_diff_dots(
            &self.par,
            (
                y_object,
                &sv[..len],
                &self.grad,
                &self.base_grad,
                &self.inv_d,
            ),
        );
        if refine {
            let probe = (
                y_probe,
                &sv[len..],
                &self.probe_grad[..],
                &self.base_probe_grad[..],
                &self.inv_dp[..],
            );
            dots = dots.plus(&par_diff_dots(&self.par, probe));
        }
        let Dots {
            sy,
            ss,
            yy,
            yhy,
            sg,
        } = dots;
        if sy.is_finite() && sy > 1e-10 * (ss * yy).sqrt() {
            self.memory.push_back(Pair {
                s: sv,
                y: yv,
                rho: 1.0 / sy,
                yhy: (!refine).then_some(yhy),
            });
            self.newest_s_dot_grad = (!refine).then_some(sg);
            self.step = spare;
        } else {
            self.newest_s_dot_grad = None;
            self.step = sv;
        }
    }

    /// The L-BFGS direction `-H G` (two-loop recursion) with `H0 = theta / D`, theta from the
    /// newest pair; with an empty memory, the preconditioned gradient step `-G / D`.
    /// The last forward update `q += c s_last` is left to the caller (fused with the step):
    /// the second value is `(last pair, c)`.
    fn direction(&mut self) -> (Vec<Complex32>, Option<(usize, f32)>) {
        let refine = self.settings.refine_probe;
        let (joined_g, joined_h): (Vec<Complex32>, Vec<f32>);
        let (g, h0): (&[Complex32], &[f32]) = if refine {
            joined_g = [&self.base_grad[..], &self.base_probe_grad[..]].concat();
            joined_h = [&self.base_inv_d[..], &self.base_inv_dp[..]].concat();
            (&joined_g, &joined_h)
        } else {
            (&self.base_grad, &self.base_inv_d)
        };
        // q is written from g by the first pass (no copy of its own).
        let mut q = std::mem::take(&mut self.q);
        q.resize(g.len(), Complex32::new(0.0, 0.0));
        let mut src = Some(g);
        let m = self.memory.len();
        let par = &self.par;
        let theta = match self.memory.back() {
            Some(p) => {
                let yhy = p
                    .yhy
                    .unwrap_or_else(|| par_lanes(par, &p.y, h0, norm_weighted));
                (1.0 / p.rho / yhy) as f32
            }
            None => 1.0,
        };
        if m == 0 {
            for ((q, g), h) in q.iter_mut().zip(g).zip(h0) {
                *q = g * (-theta * h);
            }
            return (q, None);
        }
        // The two loops with each update fused to the next inner product (one pass over q
        // per pair and loop instead of two; the memory traffic bounds this part).
        let pair = |i: usize| &self.memory[i];
        let mut a = vec![0f64; m];
        let first = self
            .newest_s_dot_grad
            .unwrap_or_else(|| par_lanes(par, &pair(m - 1).s, g, dot_re));
        a[m - 1] = pair(m - 1).rho * first;
        for i in (1..m).rev() {
            let ai = a[i] as f32;
            let next = par_axpy_dot(
                par,
                &mut q,
                src.take(),
                &pair(i).y,
                -ai,
                None,
                &pair(i - 1).s,
            );
            a[i - 1] = pair(i - 1).rho * next;
        }
        // q -= a_0 y_0, q *= -theta H0, and <y_0, q>: one pass.
        let mut b = pair(0).rho
            * par_axpy_dot(
                par,
                &mut q,
                src.take(),
                &pair(0).y,
                -(a[0] as f32),
                Some((h0, -theta)),
                &pair(0).y,
            );
        for (i, &ai) in a.iter().enumerate().take(m - 1) {
            let c = (-ai - b) as f32;
            b = pair(i + 1).rho
                * par_axpy_dot(par, &mut q, None, &pair(i).s, c, None, &pair(i + 1).y);
        }
        (q, Some((m - 1, (-a[m - 1] - b) as f32)))
    }

    /// The next point: `base + alpha d`; keeps `step = alpha d` and its norms.
    fn propose(&mut self) {
        let (q, last) = self.direction();
        let alpha = self.alpha as f32;
        let len = self.object.len();
        let zero = Complex32::new(0.0, 0.0);
        let (tail, c) = match last {
            Some((i, c)) => (Some(&self.memory[i].s), c),
            None => (None, 0.0),
        };
        let mut step = std::mem::take(&mut self.step);
        step.resize(q.len(), zero);
        let (tail, probe_tail) = (tail.map(|t| &t[..len]), tail.map(|t| &t[len..]));
        let (object_step, probe_step) = step.split_at_mut(len);
        (self.step_ss, self.base_ss) = self
            .par
            .segments(
                len,
                (
                    &mut self.object[..],
                    object_step,
                    &self.base[..],
                    &q[..len],
                    tail,
                ),
                |(x, st, b, q, t)| step_into(x, st, b, q, t, c, alpha),
            )
            .iter()
            .fold((0.0, 0.0), |(a, b), (u, v)| (a + u, b + v));
        if self.settings.refine_probe {
            let part = (
                &mut self.probe[..],
                probe_step,
                &self.base_probe[..],
                &q[len..],
                probe_tail,
            );
            self.par.segments(part.0.len(), part, |(x, st, b, q, t)| {
                step_into(x, st, b, q, t, c, alpha)
            });
        }
        self.step = step;
        self.q = q;
    }

    /// True once the relative change of the last accepted step fell below the tolerance.
    pub fn converged(&self) -> bool {
        self.settings.tolerance > 0.0
            && self.loss_history.len() > 1
            && self.last_change < self.settings.tolerance
    }

    /// E_F of every epoch run so far.
    pub fn loss_history(&self) -> &[f64] {
        &self.loss_history
    }

    /// Marks the run as stopped by the tolerance (for the report).
    pub(crate) fn mark_stopped(&mut self) {
        self.stopped = true;
    }

    /// The accepted object on the objectGuess grid.
    pub fn object(&self) -> ndarray::Array2<Complex32> {
        let [top, bottom, left, right] = self.prep.rounding.padding;
        let (rows, cols) = self.prep.grid;
        let (h, w) = (rows - top - bottom, cols - left - right);
        ndarray::Array2::from_shape_fn((h, w), |(r, c)| self.base[(r + top) * cols + c + left])
    }

    /// The result: the accepted point, its history and the stopping facts.
    pub fn finish(self) -> (Reconstruction, MlReport) {
        let n = self.n;
        let report = MlReport {
            noise_model: self.noise,
            intensity_scale: self.s2.sqrt(),
            smoothness: self.settings.smoothness,
            stopping_rule: if self.settings.tolerance > 0.0 {
                format!(
                    "stop when an accepted step changes the object by less than {} (relative \
                     L2), else after {} epochs",
                    self.settings.tolerance, self.settings.epochs
                )
            } else {
                format!("fixed budget of {} epochs", self.settings.epochs)
            },
            stopped_by: if self.stopped { "tolerance" } else { "budget" }.into(),
            objective_history: self.objective_history.clone(),
            rejected_steps: self.rejected,
            last_relative_change: self.last_change,
        };
        let rec = Reconstruction {
            object: self.object(),
            probe: ndarray::Array2::from_shape_vec((n, n), self.base_probe)
                .expect("probe is N x N"),
            epochs_completed: self.loss_history.len() as u32,
            loss_history: self.loss_history,
            positions_topleft_yx: self.prep.topleft_grid,
            rounding: self.prep.rounding,
            fft_path: self.chunks[0].fft.path(),
            ml: None,
        };
        (rec, report)
    }
}

/// What [`reduce_segment`] reads.
struct ReduceCtx<'a> {
    rows: usize,
    cols: usize,
    gscale: f32,
    lambda: f32,
    with_illum: bool,
    object: &'a [Complex32],
    chunks: &'a [Chunk],
}

fast_fn! {
    /// Rows `y0..` of the object gradient (`grad`) and of the illumination: see
    /// [`MlEngine::reduce_object`]. Returns R(O) of each row.
    fn reduce_segment(
        ctx: &ReduceCtx<'_>,
        y0: usize,
        grad: &mut [Complex32],
        illum: &mut [f32],
    ) -> Vec<f64> {
        let ReduceCtx { rows, cols, gscale, lambda, with_illum, object, chunks } = *ctx;
        let y1 = y0 + grad.len() / cols;
        grad.fill(Complex32::new(0.0, 0.0));
        if with_illum {
            illum.fill(0.0);
        }
        for chunk in chunks {
            let band = chunk.grad.len() / cols;
            let (lo, hi) = (chunk.row0.max(y0), (chunk.row0 + band).min(y1));
            if lo >= hi {
                continue;
            }
            let at = (lo - chunk.row0) * cols;
            let len = (hi - lo) * cols;
            let out = (lo - y0) * cols;
            for (g, cg) in grad[out..][..len].iter_mut().zip(&chunk.grad[at..][..len]) {
                *g += cg * gscale;
            }
            if with_illum {
                for (w, cw) in illum[out..][..len]
                    .iter_mut()
                    .zip(&chunk.illum[at..][..len])
                {
                    *w += cw;
                }
            }
        }
        if lambda == 0.0 {
            return Vec::new();
        }
        // Each pixel's prior terms in the order of a raster scan over the pixel pairs (the
        // pair above, the pair to the left, then its own pairs to the right and below), each
        // as a pass over the row (they vectorise); R in lanes per row.
        let mut r = Vec::with_capacity(y1 - y0);
        for y in y0..y1 {
            let row = &object[y * cols..][..cols];
            let g = &mut grad[(y - y0) * cols..][..cols];
            if y > 0 {
                let up = &object[(y - 1) * cols..][..cols];
                for ((g, u), o) in g.iter_mut().zip(up).zip(row) {
                    *g -= (u - o) * lambda;
                }
            }
            for ((g, l), o) in g[1..].iter_mut().zip(row).zip(&row[1..]) {
                *g -= (l - o) * lambda;
            }
            for ((g, o), right) in g.iter_mut().zip(row).zip(&row[1..]) {
                *g += (o - right) * lambda;
            }
            let mut row_r = lanes(row, &row[1..], |o, right| (o - right).norm_sqr());
            if y + 1 < rows {
                let down = &object[(y + 1) * cols..][..cols];
                for ((g, o), d) in g.iter_mut().zip(row).zip(down) {
                    *g += (o - d) * lambda;
                }
                row_r += lanes(row, down, |o, d| (o - d).norm_sqr());
            }
            r.push(row_r);
        }
        r
    }
}

/// What [`chunk_work`] reads: the point under evaluation and the data.
struct EvalCtx<'a> {
    n: usize,
    cols: usize,
    refine: bool,
    poisson: bool,
    n2_delta: f32,
    n_eps: f32,
    inv_n2: f32,
    with_illum: bool,
    object: &'a [Complex32],
    probe: &'a [Complex32],
    prep: &'a Prepared,
    order: &'a [usize],
    counted: &'a [u64],
    words: usize,
}

fast_fn! {
    /// One chunk's share of an evaluation: its positions' round trips into its own sums.
    fn chunk_work(ctx: &EvalCtx<'_>, chunk: &mut Chunk) {
        let EvalCtx { n, cols, refine, poisson, n2_delta, n_eps, inv_n2, with_illum, .. } = *ctx;
        let (object, probe, prep, order, counted, words) =
            (ctx.object, ctx.probe, ctx.prep, ctx.order, ctx.counted, ctx.words);
        let nn = n * n;
        chunk.grad.fill(Complex32::new(0.0, 0.0));
        if with_illum {
            chunk.illum.fill(0.0);
        }
        if refine {
            chunk.probe_grad.fill(Complex32::new(0.0, 0.0));
            chunk.obj_norm.fill(0.0);
        }
        let (mut ef, mut nll) = (0f64, 0f64);
        for &j in &order[chunk.range.clone()] {
            let (ty, tx) = prep.topleft[j];
            let mut hooks = GradHooks {
                n,
                at: ty * cols + tx,
                gat: (ty - chunk.row0) * cols + tx,
                stride: cols,
                object,
                probe,
                amps: &prep.amps[j * nn..][..nn],
                counted: &counted[j * words..][..words],
                poisson,
                n2_delta,
                n_eps,
                inv_n2,
                resid: &mut chunk.resid,
                lam: &mut chunk.lam,
                ef: 0.0,
                nll: 0.0,
                grad: &mut chunk.grad,
                illum: if with_illum {
                    Some(&mut chunk.illum)
                } else {
                    None
                },
                probe_grad: if refine {
                    Some((&mut chunk.probe_grad, &mut chunk.obj_norm))
                } else {
                    None
                },
            };
            chunk
                .fft
                .round_trip(&mut chunk.buf, &mut chunk.spec, &mut hooks);
            ef += hooks.ef;
            nll += hooks.nll;
        }
        chunk.ef = ef;
        chunk.nll = nll;
    }
}

/// A [`lanes`] sum (`pass`) over [`SEGMENTS`] fixed segments.
fn par_lanes<A: Sync, B: Sync>(par: &Par, a: &[A], b: &[B], pass: fn(&[A], &[B]) -> f64) -> f64 {
    let n = a.len().min(b.len());
    par.segments(n, (&a[..n], &b[..n]), |(a, b)| pass(a, b))
        .iter()
        .sum()
}

/// [`axpy_dot`] over [`SEGMENTS`] fixed segments, q first set to `src` when given (a
/// segment at a time, still in cache for the update).
fn par_axpy_dot(
    par: &Par,
    q: &mut [Complex32],
    src: Option<&[Complex32]>,
    x: &[Complex32],
    k: f32,
    scale: Option<(&[f32], f32)>,
    d: &[Complex32],
) -> f64 {
    let (h, t) = (scale.map(|s| s.0), scale.map_or(0.0, |s| s.1));
    par.segments(q.len(), (q, src, x, h, d), |(q, src, x, h, d)| {
        if let Some(src) = src {
            q.copy_from_slice(src);
        }
        axpy_dot(q, x, h, d, k, t)
    })
    .iter()
    .sum()
}

/// [`diff_dots`] over [`SEGMENTS`] fixed segments (those of [`par_lanes`] on the same
/// length, so each sum has the bits `par_lanes` would give it).
fn par_diff_dots(par: &Par, part: DotsPart<'_>) -> Dots {
    let zero = Dots {
        sy: 0.0,
        ss: 0.0,
        yy: 0.0,
        yhy: 0.0,
        sg: 0.0,
    };
    // Separate slice arguments (not the tuple) keep their no-alias facts: the loop vectorises.
    par.segments(part.0.len(), part, |(o, s, a, b, h)| {
        diff_dots(o, s, a, b, h)
    })
    .iter()
    .fold(zero, |acc, d| acc.plus(d))
}

/// `diff_dots`'s slices: `out` (y), s, a, b, h.
type DotsPart<'a> = (
    &'a mut [Complex32],
    &'a [Complex32],
    &'a [Complex32],
    &'a [Complex32],
    &'a [f32],
);

/// One position's gradient work inside the round trip.
struct GradHooks<'a> {
    n: usize,
    /// Patch top-left in `object`, and in the chunk's gradient band.
    at: usize,
    gat: usize,
    stride: usize,
    object: &'a [Complex32],
    probe: &'a [Complex32],
    amps: &'a [f32],
    /// This position's counted-pixel bits.
    counted: &'a [u64],
    poisson: bool,
    n2_delta: f32,
    n_eps: f32,
    inv_n2: f32,
    resid: &'a mut [f32],
    lam: &'a mut [f32],
    ef: f64,
    nll: f64,
    grad: &'a mut [Complex32],
    illum: Option<&'a mut Vec<f32>>,
    probe_grad: Option<(&'a mut Vec<Complex32>, &'a mut Vec<f32>)>,
}

impl Hooks for GradHooks<'_> {
    #[inline(always)]
    fn fill(&mut self, r0: usize, rows: &mut [Complex32]) {
        crate::kernels::exit_wave_rows(
            self.object,
            self.probe,
            self.at,
            self.stride,
            self.n,
            r0,
            rows,
        );
    }

    #[inline(always)]
    fn middle(&mut self, k0: usize, rows: &mut [Complex32]) {
        let amps = &self.amps[k0 * self.n..][..rows.len()];
        let resid = &mut self.resid[..rows.len()];
        if self.poisson {
            // r = (N a)^2 / (|spec|^2 + N^2 delta) = a^2 / (|Psi|^2 + delta). Three passes,
            // so that the first two vectorise: the projection, the sum of the model, then
            // the logarithm only where photons were counted (87-96 % of pixels count none
            // in the default study).
            // Half the Poisson deviance, sum(lam - y) - sum(y ln(lam / y)), y ln(..) = 0 at
            // y = 0. The first sum (terms of either sign, about sqrt(y) each) goes in eight
            // f32 lanes inside the projection pass; the second visits counted pixels only.
            let lam = &mut self.lam[..rows.len()];
            for (((f, &a), e), l) in rows
                .iter_mut()
                .zip(amps)
                .zip(resid.iter_mut())
                .zip(lam.iter_mut())
            {
                let m2 = f.re * f.re + f.im * f.im;
                *e = m2.sqrt() - a;
                *l = m2 + self.n2_delta;
                let r = a * a / *l;
                *f = Complex32::new(f.re * r, f.im * r);
            }
            let excess = lane_sum_excess(lam, amps);
            let (start, end) = (k0 * self.n, k0 * self.n + rows.len());
            let mut counted = 0f64;
            for word in start / 64..end.div_ceil(64) {
                let lo = word * 64;
                let mut bits = self.counted[word];
                if lo < start {
                    bits &= u64::MAX << (start - lo);
                }
                if lo + 64 > end {
                    bits &= u64::MAX >> (lo + 64 - end);
                }
                while bits != 0 {
                    let i = lo + bits.trailing_zeros() as usize - start;
                    bits &= bits - 1;
                    let y = amps[i] * amps[i];
                    counted += f64::from(y * (lam[i] / y).ln());
                }
            }
            self.nll += excess - counted;
        } else {
            for ((f, &a), e) in rows.iter_mut().zip(amps).zip(resid.iter_mut()) {
                let m = (f.re * f.re + f.im * f.im).sqrt();
                *e = m - a;
                let r = a / (m + self.n_eps);
                *f = Complex32::new(f.re * r, f.im * r);
            }
        }
        self.ef += lane_sum_sq(resid);
    }

    #[inline(always)]
    fn drain(&mut self, r0: usize, rows: &mut [Complex32]) {
        let n = self.n;
        for (i, row) in rows.chunks_exact(n).enumerate() {
            let y = r0 + i;
            let o = &self.object[self.at + y * self.stride..][..n];
            let p = &self.probe[y * n..][..n];
            let g = &mut self.grad[self.gat + y * self.stride..][..n];
            for (((g, o), p), b) in g.iter_mut().zip(o).zip(p).zip(row) {
                // chi = psi - IFFT(r Psi); the buffer holds N^2 IFFT(r Psi).
                let chi = p * o - b * self.inv_n2;
                *g += p.conj() * chi;
            }
            if let Some(illum) = self.illum.as_mut() {
                let w = &mut illum[self.gat + y * self.stride..][..n];
                for (w, p) in w.iter_mut().zip(p) {
                    *w += p.norm_sqr();
                }
            }
            if let Some((pg, on)) = self.probe_grad.as_mut() {
                let pg = &mut pg[y * n..][..n];
                let on = &mut on[y * n..][..n];
                for (((pg, on), o), (p, b)) in pg.iter_mut().zip(on).zip(o).zip(p.iter().zip(row)) {
                    let chi = p * o - b * self.inv_n2;
                    *pg += o.conj() * chi;
                    *on += o.norm_sqr();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    /// F at the engine's current point, and its gradient.
    fn eval(engine: &mut MlEngine) -> f64 {
        engine.evaluate().0
    }

    /// dF = 2 Re(conj(G) dO) for the Wirtinger gradient G = dF/dO*: central differences along
    /// the real and the imaginary axis of a few pixels match 2 Re G and 2 Im G, for the Poisson
    /// model with the prior and for the Gaussian fallback.
    #[test]
    fn the_gradient_matches_finite_differences() {
        let truth = synthetic::object(40, 40);
        let probe = synthetic::probe(16, 400.0);
        let (xs, ys) = synthetic::raster_positions(40, 40, 16, 4);
        let mut data = synthetic::dataset(&truth, &probe, &xs, &ys);
        // Round to "counts" so that the Poisson terms with y = 0 and y > 0 both occur.
        let s = 1.0f64;
        data.diffraction
            .mapv_inplace(|a| ((f64::from(a) * s).powi(2).round().sqrt() / s) as f32);
        for (scale, smoothness) in [(Some(s), 0.7), (None, 0.0)] {
            data.intensity_scale = scale;
            let settings = Settings {
                smoothness,
                ..synthetic::epie_settings(1)
            };
            let settings = Settings {
                algorithm: study_design::Algorithm::Ml,
                ..settings
            };
            let mut engine = MlEngine::new(&data, &settings, 1).unwrap();
            // A point off the truth, so that every term has a gradient.
            let start: ndarray::Array2<Complex32> =
                truth.mapv(|v| v * Complex32::from_polar(0.9, 0.2));
            engine.set_object(start.view()).unwrap();
            eval(&mut engine);
            let grad = engine.grad.clone();
            let cols = engine.prep.grid.1;
            for &(r, c) in &[(20usize, 20usize), (12, 27), (30, 9)] {
                let p = r * cols + c;
                for (axis, dir) in [(0, Complex32::new(1.0, 0.0)), (1, Complex32::new(0.0, 1.0))] {
                    let h = 1e-2f32;
                    let base = engine.object[p];
                    engine.object[p] = base + dir * h;
                    let fp = eval(&mut engine);
                    engine.object[p] = base - dir * h;
                    let fm = eval(&mut engine);
                    engine.object[p] = base;
                    let fd = (fp - fm) / (2.0 * f64::from(h));
                    let g = grad[p];
                    let analytic = 2.0 * f64::from(if axis == 0 { g.re } else { g.im });
                    assert!(
                        (fd - analytic).abs() <= 2e-2 * analytic.abs().max(1e-3 * fp.abs()),
                        "{scale:?} pixel ({r}, {c}) axis {axis}: finite difference {fd} vs gradient {analytic}"
                    );
                }
            }
        }
    }
}
