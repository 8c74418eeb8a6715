//! The objective and its gradient at a point: every position's round trip in its chunk
//! (`GradHooks`: exit wave, the likelihood's projection, the back-projection accumulated into
//! the chunk's sums), then the fixed-order reduction (the object gradient `W O - sum`), with
//! the smoothness prior and the illumination preconditioners.

use super::{Chunk, Counted, DELTA_COUNTS, GAMMA, MlEngine, rows_with_a_count};
use crate::data::Prepared;
use crate::fft::Hooks;
use crate::kernels::{EPS, lane_sum_sq, lanes, project_counted};
use crate::par::SEGMENTS;
use crate::reconstruction::NoiseModel;
use crate::simd::fast_fn;
use num_complex::Complex32;

impl MlEngine {
    /// One pass over every position at the current point: F, E_F and both gradients.
    pub(super) fn evaluate(&mut self) -> (f64, f64) {
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
        let Reduced { prior_rows, model } =
            self.reduce_object(gscale, lambda as f32, with_illum, poisson);
        let prior: f64 = prior_rows.iter().sum();
        // The model's total sum_j sum |psi_j|^2 = sum_x W(x) |O(x)|^2 in the unnormalised
        // units of |spec|^2 (N^2 |psi|^2, Parseval): one pass over the grid in the reduction
        // instead of one over every position's exit wave.
        let model = model * nn as f64;
        let (mut ef, mut nll) = (model, model);
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

    /// The object gradient of the point just evaluated: the chunks' bands (N^2 sum_j conj(P_j)
    /// IFFT(r Psi_j)) summed in chunk order, made into gscale (W O - sum / N^2), plus lambda
    /// dR/dO* = lambda sum_q (O_p - O_q); and the
    /// illumination when `with_illum`. Returns R(O) per grid row (summed in row order by the
    /// caller) and, when `model`, `sum W |O|^2` (the Poisson model's total). Rows are cut into
    /// fixed segments, so the bits do not depend on the threads.
    pub(super) fn reduce_object(
        &mut self,
        gscale: f32,
        lambda: f32,
        with_illum: bool,
        model: bool,
    ) -> Reduced {
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
            inv_n2: 1.0 / (self.n * self.n) as f32,
            lambda,
            with_illum,
            model,
            object,
            chunks,
        };
        let per_segment = self.par.run(parts, |(y0, grad, illum)| {
            reduce_segment(&ctx, y0, grad, illum)
        });
        let mut reduced = Reduced {
            prior_rows: Vec::new(),
            model: 0.0,
        };
        for (rows, model) in per_segment {
            reduced.prior_rows.extend(rows);
            reduced.model += model;
        }
        reduced
    }
}

/// What [`MlEngine::reduce_object`] returns besides the gradient.
pub(super) struct Reduced {
    /// R(O) of each grid row.
    pub(super) prior_rows: Vec<f64>,
    /// `sum_x W(x) |O(x)|^2` (0 unless asked for), summed per segment in segment order.
    pub(super) model: f64,
}

/// What [`reduce_segment`] reads.
struct ReduceCtx<'a> {
    rows: usize,
    cols: usize,
    gscale: f32,
    /// 1 / N^2: the chunks hold N^2 times their back-projections.
    inv_n2: f32,
    lambda: f32,
    with_illum: bool,
    /// Whether to sum `W |O|^2`.
    model: bool,
    object: &'a [Complex32],
    chunks: &'a [Chunk],
}

fast_fn! {
    /// Rows `y0..` of the object gradient (`grad`) and of the illumination: see
    /// [`MlEngine::reduce_object`]. Returns R(O) of each row and the segment's `sum W |O|^2`.
    fn reduce_segment(
        ctx: &ReduceCtx<'_>,
        y0: usize,
        grad: &mut [Complex32],
        illum: &mut [f32],
    ) -> (Vec<f64>, f64) {
        let ReduceCtx { rows, cols, gscale, inv_n2, lambda, with_illum, model, object, chunks } =
            *ctx;
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
                *g += cg;
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
        // The data term's gradient, gscale (W O - sum_j conj(P_j) IFFT(r Psi_j)): see
        // `GradHooks::drain`. W is this evaluation's when it moves, else the first's.
        let seg = &object[y0 * cols..y1 * cols];
        for ((g, &w), o) in grad.iter_mut().zip(illum.iter()).zip(seg) {
            *g = (o * w - *g * inv_n2) * gscale;
        }
        let model = if model {
            lanes(seg, illum, |o, &w| o.norm_sqr() * w)
        } else {
            0.0
        };
        if lambda == 0.0 {
            return (Vec::new(), model);
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
        (r, model)
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
    counted: &'a Counted,
}

fast_fn! {
    /// One chunk's share of an evaluation: its positions' round trips into its own sums.
    fn chunk_work(ctx: &EvalCtx<'_>, chunk: &mut Chunk) {
        let EvalCtx { n, cols, refine, poisson, n2_delta, n_eps, inv_n2, with_illum, .. } = *ctx;
        let (object, probe, prep, order, counted) =
            (ctx.object, ctx.probe, ctx.prep, ctx.order, ctx.counted);
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
                amps: if poisson { &[] } else { &prep.amps[j * nn..][..nn] },
                counted: counted.of(j),
                row_start: if poisson { counted.rows_of(j) } else { &[] },
                projected: &mut chunk.projected,
                terms: &mut chunk.terms,
                poisson,
                n2_delta,
                n_eps,
                inv_n2,
                resid: &mut chunk.resid,
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
            let [buf, spec] = chunk.frames.arrays();
            chunk.fft.round_trip(buf, spec, &mut hooks);
            // The model's total sum |spec|^2 is the reduction's (sum W |O|^2).
            ef += hooks.ef;
            nll += hooks.nll;
        }
        chunk.ef = ef;
        chunk.nll = nll;
    }
}

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
    /// This position's counted pixels and their amplitudes, and where each spectrum row's
    /// pixels begin in them (N + 1 offsets; Poisson only): see [`Counted`].
    counted: (&'a [u32], &'a [f32]),
    row_start: &'a [u32],
    projected: &'a mut Vec<Complex32>,
    /// Scratch of [`project_counted`].
    terms: &'a mut Vec<[f32; 2]>,
    poisson: bool,
    n2_delta: f32,
    n_eps: f32,
    inv_n2: f32,
    resid: &'a mut [f32],
    ef: f64,
    nll: f64,
    grad: &'a mut [Complex32],
    illum: Option<&'a mut Vec<f32>>,
    probe_grad: Option<(&'a mut Vec<Complex32>, &'a mut Vec<f32>)>,
}

impl Hooks for GradHooks<'_> {
    /// Poisson: only the spectrum rows with a count; the projection zeroes the others.
    #[inline(always)]
    fn live_rows(&mut self, live: &mut [u64]) -> bool {
        if self.poisson {
            live.fill(0);
            for (k, counted) in rows_with_a_count(self.row_start).enumerate() {
                if counted {
                    live[k / 64] |= 1 << (k % 64);
                }
            }
        }
        self.poisson
    }

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
        if self.poisson {
            // r = (N a)^2 / (|spec|^2 + N^2 delta) = a^2 / (|Psi|^2 + delta), zero where no
            // photon was counted (87-96 % of pixels in the default study). Half the Poisson
            // deviance is sum(lam - y) - sum(y ln(lam / y)) with lam = |spec|^2 + N^2 delta,
            // y = (N a)^2, and y ln(..) = 0 at y = 0; E_F's sum (|spec| - N a)^2 is
            // sum |spec|^2 + sum_counted (y - 2 N a |spec|). So: the model's sum |spec|^2
            // is the reduction's (sum W |O|^2); the counted pixels are gathered, projected in
            // one contiguous pass that vectorises (ratio, logarithm, E_F's term:
            // `project_counted`), the block is cleared and they are written back. No square
            // root, division or logarithm where nothing counts, and the amplitudes' memory is
            // read only where something does.
            let n = self.n;
            let start = k0 * n;
            let height = rows.len() / n;
            // The block's counted pixels from the row offsets (a binary search for them
            // cost 3 % of an epoch in its cache misses, a scan 4 %).
            let rs = &self.row_start[k0..=k0 + height];
            let (first, last) = (rs[0] as usize, rs[height] as usize);
            let (at, amp) = self.counted;
            let (at, amp) = (&at[first..last], &amp[first..last]);
            self.projected.clear();
            self.projected
                .extend(at.iter().map(|&i| rows[i as usize - start]));
            // Only the rows with a count: the round trip zeroes the others (`live_rows`).
            for (row, counted) in rows.chunks_exact_mut(n).zip(rows_with_a_count(rs)) {
                if counted {
                    row.fill(Complex32::new(0.0, 0.0));
                }
            }
            let [counted, ysum, cross] =
                project_counted(self.projected, amp, self.n2_delta, self.terms);
            for (&i, &f) in at.iter().zip(self.projected.iter()) {
                rows[i as usize - start] = f;
            }
            // The model's sum |spec|^2 is the reduction's (the whole frame, added once).
            self.nll += f64::from(self.n2_delta) * rows.len() as f64 - ysum - counted;
            self.ef += ysum - 2.0 * cross;
        } else {
            let amps = &self.amps[k0 * self.n..][..rows.len()];
            let resid = &mut self.resid[..rows.len()];
            for ((f, &a), e) in rows.iter_mut().zip(amps).zip(resid.iter_mut()) {
                let m = (f.re * f.re + f.im * f.im).sqrt();
                *e = m - a;
                let r = a / (m + self.n_eps);
                *f = Complex32::new(f.re * r, f.im * r);
            }
            self.ef += lane_sum_sq(resid);
        }
    }

    #[inline(always)]
    fn drain(&mut self, r0: usize, rows: &mut [Complex32]) {
        let n = self.n;
        for (i, row) in rows.chunks_exact(n).enumerate() {
            let y = r0 + i;
            let p = &self.probe[y * n..][..n];
            let g = &mut self.grad[self.gat + y * self.stride..][..n];
            // The object gradient is sum_j conj(P) chi_j = W O - sum_j conj(P) IFFT(r Psi_j)
            // with W = sum_j |P_j|^2 (chi = psi - IFFT(r Psi), psi = P O): the chunk keeps
            // the second sum, the reduction subtracts it from W O (one pass over the grid
            // instead of an exit wave and a product more per pixel of every position).
            crate::simd::cmul::conj_mul_add(g, p, row);
            if let Some(illum) = self.illum.as_mut() {
                let w = &mut illum[self.gat + y * self.stride..][..n];
                for (w, p) in w.iter_mut().zip(p) {
                    *w += p.norm_sqr();
                }
            }
            if let Some((pg, on)) = self.probe_grad.as_mut() {
                let o = &self.object[self.at + y * self.stride..][..n];
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
    use crate::settings::Settings;
    use crate::synthetic;

    /// F at the engine's current point, and its gradient.
    fn eval(engine: &mut MlEngine) -> f64 {
        engine.evaluate().0
    }

    /// The Poisson evaluation's F and E_F, made from the counted pixels and Parseval's total
    /// (see `GradHooks::middle`), equal the plain sums over every pixel, taken here in f64
    /// with a square root and a logarithm at each: F = s^2 sum [lam - y - y ln(lam / y)],
    /// E_F = sum (|Psi| - a)^2 / sum a^2.
    #[test]
    fn the_counted_pixel_sums_equal_the_sums_over_every_pixel() {
        struct Dense<'a> {
            object: &'a [Complex32],
            probe: &'a [Complex32],
            at: usize,
            stride: usize,
            n: usize,
            amps: &'a [f32],
            n2_delta: f64,
            nll: f64,
            ef: f64,
        }
        impl Hooks for Dense<'_> {
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
            fn middle(&mut self, k0: usize, rows: &mut [Complex32]) {
                let amps = &self.amps[k0 * self.n..][..rows.len()];
                for (f, &a) in rows.iter().zip(amps) {
                    let m2 = f64::from(f.norm_sqr());
                    let (a, lam) = (f64::from(a), m2 + self.n2_delta);
                    let y = a * a;
                    self.nll += lam - y - if y > 0.0 { y * (lam / y).ln() } else { 0.0 };
                    self.ef += (m2.sqrt() - a).powi(2);
                }
            }
            fn drain(&mut self, _: usize, _: &mut [Complex32]) {}
        }
        let truth = synthetic::object(48, 48);
        let probe = synthetic::probe(16, 400.0);
        let (xs, ys) = synthetic::raster_positions(48, 48, 16, 5);
        let mut data = synthetic::dataset(&truth, &probe, &xs, &ys);
        let s = 0.5f64;
        data.diffraction
            .mapv_inplace(|a| ((f64::from(a) * s).powi(2).round().sqrt() / s) as f32);
        data.intensity_scale = Some(s);
        let settings = Settings {
            algorithm: study_design::Algorithm::Ml,
            smoothness: 0.0,
            ..synthetic::epie_settings(1)
        };
        let mut engine = MlEngine::new(&data, &settings, 1).unwrap();
        let start: ndarray::Array2<Complex32> =
            truth.mapv(|v| v * Complex32::from_polar(0.8, -0.3));
        engine.set_object(start.view()).unwrap();
        let (f, ef) = engine.evaluate();
        let prep = data.prepare().unwrap();
        let (n, nn, cols) = (prep.n, prep.n * prep.n, prep.grid.1);
        assert!(
            prep.amps.contains(&0.0) && prep.amps.iter().any(|&a| a > 0.0),
            "both counted and empty pixels"
        );
        let mut fft = crate::fft::Fft2::new(n);
        let zero = Complex32::new(0.0, 0.0);
        let (mut buf, mut spec) = (vec![zero; nn], vec![zero; nn]);
        let (mut nll, mut dense_ef) = (0f64, 0f64);
        for (j, &(ty, tx)) in prep.topleft.iter().enumerate() {
            let mut hooks = Dense {
                object: &engine.object,
                probe: &engine.probe,
                at: ty * cols + tx,
                stride: cols,
                n,
                amps: &prep.amps[j * nn..][..nn],
                n2_delta: nn as f64 * DELTA_COUNTS / (s * s),
                nll: 0.0,
                ef: 0.0,
            };
            fft.round_trip(&mut buf, &mut spec, &mut hooks);
            nll += hooks.nll;
            dense_ef += hooks.ef;
        }
        let want_f = s * s * nll / nn as f64;
        let want_ef = dense_ef / nn as f64 / prep.sum_a2;
        assert!(
            (f - want_f).abs() <= 1e-5 * want_f.abs(),
            "F {f} vs {want_f}"
        );
        assert!(
            (ef - want_ef).abs() <= 1e-5 * want_ef,
            "E_F {ef} vs {want_ef}"
        );
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
