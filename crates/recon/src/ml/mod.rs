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
//! accumulated into `sum conj(P) chi_j` (object) and `sum conj(O_j) chi_j` (probe); the object's
//! is made as `W O - sum conj(P_j) IFFT(r Psi_j)`, `W = sum |P_j|^2`, so a position's pass
//! back needs no second exit wave. The step
//! is `alpha d`, `d` the L-BFGS direction ([`MEMORY`] pairs) with the initial inverse Hessian
//! `1 / D`, `D = 2 s^2 (sum_j |P_j|^2 + gamma max) + 4 lambda` (the projection, Newton, step of
//! both models), its object part boosted along the smooth phase ([`phase`]: the data constrain
//! a phase that varies slowly across the probe only through its gradient, so those modes
//! converged last); a step whose F is higher than the current point's is undone and alpha halves
//! (it doubles back towards 1 on acceptance). The accepted iterates therefore never increase
//! F, which bounds the iteration without a line search (no extra FFTs).
//!
//! Cost: an epoch is the FFT round trips plus a few passes over the object grid (the chunk
//! sums with the prior, and the L-BFGS recursion, each update fused with the next inner
//! product; the recursion's first two sums come from the pass that makes the pair). The
//! Poisson projection touches only the counted pixels (87-96 % count none in the default
//! study; [`Counted`] keeps them compactly) and clears the rest; the model's total
//! `sum_j sum |psi_j|^2` is `sum_x W(x) |O(x)|^2` (Parseval, then the positions' sum moved
//! onto the grid), one pass in the reduction, so no square root, division or logarithm is
//! taken where nothing was counted, and the amplitudes' memory is read only where something was.
//! The spectrum rows (fixed kx) without a count (37-64 % in the default study, more at low
//! dose) are neither transformed along ky nor inverted ([`crate::fft::Hooks::live_rows`]):
//! the projection zeroes them, so an epoch does less FFT work than one full forward and one
//! full inverse transform per position. Everything
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
//!
//! Here: the engine's state and its epoch (evaluate, accept or undo, propose); `gradient.rs`
//! computes F and its gradient, `lbfgs.rs` the curvature pairs, the direction and the step.

use crate::ReconError;
use crate::data::{Dataset, Prepared};
use crate::fft::{Fft2, Frames};
use crate::par::Par;
use crate::reconstruction::{MlReport, NoiseModel, Reconstruction};
use crate::settings::Settings;
use num_complex::Complex32;

mod gradient;
mod lbfgs;
mod phase;

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

/// Cut-off of the phase preconditioner (`ml/phase.rs`), in cycles per probe side N: the object's
/// phase at spatial frequency k gets its step boosted by `1 + (k_c / k)^2` (up to
/// [`PHASE_MAX_BOOST`]). Measured on the default study's test splits (test Fienup NRMSE
/// against a 3,000-epoch run without it): see the stopping rule's table in
/// `Solver::default`.
pub const PHASE_CUTOFF: f64 = 4.0;
/// Cap of the phase preconditioner's boost (the lowest frequencies of a large grid).
pub const PHASE_MAX_BOOST: f64 = 100.0;
/// Epochs between two looks of the stopping rule: a split stops when its object changed by
/// less than the tolerance (relative L2 on the objectGuess grid) over the last `WINDOW`
/// epochs. A window, not one step: single steps of L-BFGS vary by 10x from one to the next.
pub const WINDOW: u32 = 25;

/// An L-BFGS curvature pair: object then probe.
struct Pair {
    s: Vec<Complex32>,
    y: Vec<Complex32>,
    /// 1 / Re <s, y>.
    rho: f64,
    /// sum |y|^2 / D, when D cannot change before the pair is used (probe fixed).
    yhy: Option<f64>,
}

/// Every position's counted pixels (amplitude > 0), in pixel order (the `amps` layout):
/// position `j`'s are `at[start[j]..start[j + 1]]` with their amplitudes `amp` (N a, as
/// `amps`). 87-96 % of pixels count nothing in the default study, so this is 10-30 % of the
/// amplitudes' memory, and the projection's sparse pass reads it in order. `row_start`
/// holds N + 1 offsets a position into its pixels: spectrum row k's are
/// `row_start[k]..row_start[k + 1]` (a block's pixels without a search, and the rows with a
/// count: see [`crate::fft::Hooks::live_rows`]).
pub(crate) struct Counted {
    pub(crate) start: Vec<usize>,
    pub(crate) at: Vec<u32>,
    pub(crate) amp: Vec<f32>,
    pub(crate) row_start: Vec<u32>,
    pub(crate) n: usize,
}

impl Counted {
    fn new(amps: &[f32], n: usize) -> Counted {
        let mut counted = Counted {
            start: vec![0],
            at: Vec::new(),
            amp: Vec::new(),
            row_start: Vec::new(),
            n,
        };
        for frame in amps.chunks_exact(n * n) {
            let first = counted.at.len();
            for (k, row) in frame.chunks_exact(n).enumerate() {
                counted.row_start.push((counted.at.len() - first) as u32);
                for (x, &a) in row.iter().enumerate() {
                    if a > 0.0 {
                        counted.at.push((k * n + x) as u32);
                        counted.amp.push(a);
                    }
                }
            }
            counted.row_start.push((counted.at.len() - first) as u32);
            counted.start.push(counted.at.len());
        }
        counted
    }

    /// Position `j`'s pixel indices and amplitudes.
    pub(crate) fn of(&self, j: usize) -> (&[u32], &[f32]) {
        let range = self.start[j]..self.start[j + 1];
        (&self.at[range.clone()], &self.amp[range])
    }

    /// Position `j`'s N + 1 row offsets into [`Counted::of`]'s slices.
    pub(crate) fn rows_of(&self, j: usize) -> &[u32] {
        &self.row_start[j * (self.n + 1)..][..self.n + 1]
    }
}

/// Whether each spectrum row has a count, from a position's N + 1 row offsets.
pub(crate) fn rows_with_a_count(row_start: &[u32]) -> impl Iterator<Item = bool> + '_ {
    row_start.windows(2).map(|w| w[1] > w[0])
}

/// One chunk's scratch and accumulators.
struct Chunk {
    range: std::ops::Range<usize>,
    fft: Fft2,
    /// The round trip's work array and spectrum (at one offset modulo 4 KiB).
    frames: Frames,
    resid: Vec<f32>,
    /// The projected values of a block's counted pixels (written back after the block is
    /// cleared).
    projected: Vec<Complex32>,
    /// The projection's per-pixel terms (scratch of `kernels::project_counted`).
    terms: Vec<[f32; 2]>,
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
    /// The pixels where photons were counted, every position's in a row (Poisson): the
    /// projection's ratio, logarithm and E_F term visit only those.
    counted: Counted,
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
    /// L-BFGS memory, oldest first.
    memory: std::collections::VecDeque<Pair>,
    /// Re <s, G> of the newest pair and the accepted gradient, when the pass that made the
    /// pair computed it for this gradient (probe fixed; the pair was the last accepted step):
    /// the two-loop recursion's first inner product, without a pass of its own.
    newest_s_dot_grad: Option<f64>,
    /// The direction's buffer, kept across epochs.
    q: Vec<Complex32>,
    /// The phase preconditioner (the object's part of the direction's H0).
    phase: phase::PhaseFilter,
    evaluated: bool,
    rejected: u32,
    /// The object (objectGuess grid) at the stopping rule's last look, and its relative
    /// change since the look before.
    snapshot: Vec<Complex32>,
    window_change: Option<f64>,
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
        let mut prep = data.prepare()?;
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
                    frames: Frames::new(n, 2),
                    resid: vec![0.0; nn],
                    projected: Vec::new(),
                    terms: Vec::new(),
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
        let counted = if noise == NoiseModel::Poisson {
            // The Poisson evaluation reads the counted pixels only: the amplitudes' memory
            // (4 bytes a pixel) goes back.
            let counted = Counted::new(&prep.amps, n);
            prep.amps = Vec::new();
            counted
        } else {
            // The Gaussian fallback reads every amplitude and no counted pixel.
            Counted {
                start: vec![0; count + 1],
                at: Vec::new(),
                amp: Vec::new(),
                row_start: Vec::new(),
                n: 0,
            }
        };
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
            memory: std::collections::VecDeque::new(),
            phase: phase::PhaseFilter::new(
                prep.grid.0,
                prep.grid.1,
                (n / 32).max(1),
                PHASE_CUTOFF / n as f64,
                PHASE_MAX_BOOST,
            ),
            newest_s_dot_grad: None,
            q: Vec::new(),
            evaluated: false,
            rejected: 0,
            snapshot: Vec::new(),
            window_change: None,
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
        self.prep.place_object(object, &mut self.object)?;
        self.base.copy_from_slice(&self.object);
        self.evaluated = false;
        Ok(())
    }

    /// Threads it runs on now.
    pub fn threads(&self) -> usize {
        self.par.threads()
    }

    /// Runs the next epochs on `threads` threads (1 to [`CHUNKS`] useful): a core lent while
    /// it runs (`crate::CoreLender`) is put to work between epochs; the bits do not change.
    pub fn set_threads(&mut self, threads: usize) {
        let threads = threads.clamp(1, CHUNKS);
        if threads != self.par.threads() {
            self.par = Par::new(threads);
        }
    }

    /// Runs one epoch (one evaluation and one step) and returns E_F of the accepted point.
    pub fn run_epoch(&mut self) -> f64 {
        // On a worker of the engine's pool: its parallel parts then start without waking
        // this thread (see `Par::install`).
        let par = self.par.clone();
        par.install(|| self.epoch())
    }

    fn epoch(&mut self) -> f64 {
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
        if self.loss_history.len().is_multiple_of(WINDOW as usize) {
            self.look_back();
        }
        self.propose();
        self.ef_cur
    }

    /// Makes the point just evaluated the accepted one. `first`: the start point (the only
    /// evaluation that sets the object preconditioner when the probe is fixed).
    fn accept(&mut self, f: f64, ef: f64, first: bool) {
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
        if first {
            self.snapshot = self.object().into_raw_vec_and_offset().0;
        }
    }

    /// The stopping rule's look: the accepted object's relative L2 change (objectGuess grid)
    /// since the last look, and the object kept for the next.
    fn look_back(&mut self) {
        let now = self.object();
        let (mut moved, mut size) = (0f64, 0f64);
        for (a, b) in now.iter().zip(&self.snapshot) {
            moved += (a - b).norm_sqr() as f64;
            size += a.norm_sqr() as f64;
        }
        self.window_change = Some((moved / size.max(f64::MIN_POSITIVE)).sqrt());
        self.snapshot = now.into_raw_vec_and_offset().0;
    }

    /// True once the object changed by less than the tolerance over the last [`WINDOW`]
    /// epochs (looked at every `WINDOW` epochs).
    pub fn converged(&self) -> bool {
        self.settings.tolerance > 0.0
            && self
                .window_change
                .is_some_and(|c| c < self.settings.tolerance)
    }

    /// The share of spectrum rows a round trip transforms along ky: those with a count
    /// (Poisson), or all (1.0, the Gaussian model).
    pub fn spectrum_rows_computed(&self) -> f64 {
        let n = self.counted.n;
        if n == 0 {
            return 1.0;
        }
        let live = self
            .counted
            .row_start
            .chunks_exact(n + 1)
            .flat_map(rows_with_a_count)
            .filter(|&live| live)
            .count();
        live as f64 / (self.counted.row_start.len() / (n + 1) * n) as f64
    }

    /// The object's relative change over the last [`WINDOW`] epochs, once there was one.
    pub fn window_change(&self) -> Option<f64> {
        self.window_change
    }

    /// E_F of every epoch run so far.
    pub fn loss_history(&self) -> &[f64] {
        &self.loss_history
    }

    /// F of the accepted point after every epoch run so far.
    pub fn objective_history(&self) -> &[f64] {
        &self.objective_history
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
                    "stop when the object changed by less than {} (relative L2) over the last \
                     {WINDOW} epochs, looked at every {WINDOW}; else after {} epochs",
                    self.settings.tolerance, self.settings.epochs
                )
            } else {
                format!("fixed budget of {} epochs", self.settings.epochs)
            },
            stopped_by: if self.stopped { "tolerance" } else { "budget" }.into(),
            objective_history: self.objective_history.clone(),
            rejected_steps: self.rejected,
            last_relative_change: self.window_change,
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
