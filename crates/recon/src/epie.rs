//! The ePIE / rPIE engine: seeded visiting order, K-choose-C groups with pty-chi's minibatch
//! semantics, the Fourier projection with the loss folded in, and a hot loop that allocates
//! nothing and never shifts.

use crate::ReconError;
use crate::data::{Dataset, Prepared};
use crate::fft::{Fft2, Hooks};
use crate::kernels::{EPS, exit_wave_rows, project};
use crate::reconstruction::Reconstruction;
use crate::rng::Rng;
use crate::settings::Settings;
use crate::simd::fast_fn;
use ndarray::Array2;
use num_complex::Complex32;
use study_design::Algorithm;

/// The ePIE/rPIE solver state, one epoch at a time (benches and tests drive it directly).
pub struct Engine {
    settings: Settings,
    n: usize,
    prep: Prepared,
    /// Object on the padded grid, row-major, `grid.1` columns.
    object: Vec<Complex32>,
    probe: Vec<Complex32>,
    /// Object step weight per probe pixel (ePIE `alpha conj(P)/max|P|^2`, rPIE its form).
    w_obj: Vec<Complex32>,
    /// `w_obj / N^2`: the projection leaves N^2 psi' in the buffer.
    w_fused: Vec<Complex32>,
    /// `1 - w_obj P` (real): the fused single-position update `O = O r + w psi'`.
    r_obj: Vec<f32>,
    /// N eps, the regulariser in unnormalised units.
    n_eps: f32,
    /// 1 / N^2.
    inv_n2: f32,
    rng: Rng,
    order: Vec<u32>,
    /// K nearest neighbours of every position, `k` per position (g > 1 only).
    neighbours: Vec<u32>,
    k: usize,
    members: Vec<usize>,
    pick: Vec<u32>,
    fft: Fft2,
    spec: Vec<Complex32>,
    /// Fourier residuals |Psi| - a of the current position.
    resid: Vec<f32>,
    /// One N x N buffer per group member: psi, then psi', then Delta.
    bufs: Vec<Vec<Complex32>>,
    /// Object patches of the group (needed for Delta and the probe update).
    patches: Vec<Vec<Complex32>>,
    probe_acc: Vec<Complex32>,
    loss_history: Vec<f64>,
}

impl Engine {
    /// Checks and prepares `data`, plans the FFTs, allocates every buffer.
    pub fn new(data: &Dataset, settings: &Settings) -> Result<Engine, ReconError> {
        settings.check()?;
        if settings.algorithm == Algorithm::Ml {
            return Err(ReconError::BadSettings(
                "the ePIE/rPIE engine cannot run ml: use MlEngine (or reconstruct)".into(),
            ));
        }
        let prep = data.prepare()?;
        let n = prep.n;
        let nn = n * n;
        let count = prep.topleft.len();
        let c = settings.group_size();
        let (neighbours, k) = if c > 1 {
            let k = (settings.neighbor_count as usize).min(count - 1);
            if k + 1 < c {
                return Err(ReconError::BadInput(format!(
                    "gridsize {} groups {c} positions but the split holds only {count} \
                     (OVERSAMPLING-001: use a denser view or gridsize 1)",
                    settings.gridsize
                )));
            }
            (nearest_neighbours(&data.xcoords, &data.ycoords, k), k)
        } else {
            (Vec::new(), 0)
        };
        let zero = Complex32::new(0.0, 0.0);
        let general = c > 1 || settings.refine_probe;
        let mut engine = Engine {
            settings: settings.clone(),
            n,
            object: vec![Complex32::new(1.0, 0.0); prep.grid.0 * prep.grid.1],
            probe: data.probe.iter().copied().collect(),
            w_obj: vec![zero; nn],
            w_fused: vec![zero; nn],
            r_obj: vec![0.0; nn],
            n_eps: n as f32 * EPS,
            inv_n2: 1.0 / (nn as f32),
            rng: Rng::new(settings.seed),
            order: (0..count as u32).collect(),
            neighbours,
            k,
            members: Vec::with_capacity(c),
            pick: vec![0; k],
            fft: Fft2::new(n),
            spec: vec![zero; nn],
            resid: vec![0.0; nn],
            bufs: (0..c).map(|_| vec![zero; nn]).collect(),
            patches: if general {
                (0..c).map(|_| vec![zero; nn]).collect()
            } else {
                Vec::new()
            },
            probe_acc: if settings.refine_probe {
                vec![zero; nn]
            } else {
                Vec::new()
            },
            loss_history: Vec::with_capacity(settings.epochs as usize),
            prep,
        };
        engine.update_object_weights();
        Ok(engine)
    }

    /// Object step weights from the current probe. Computed in f64, stored in f32.
    fn update_object_weights(&mut self) {
        let max = self
            .probe
            .iter()
            .map(|p| f64::from(p.norm_sqr()))
            .fold(0.0, f64::max);
        let alpha = self.settings.alpha;
        let inv_n2 = 1.0 / (self.n * self.n) as f64;
        for (((w, wf), r), p) in self
            .w_obj
            .iter_mut()
            .zip(&mut self.w_fused)
            .zip(&mut self.r_obj)
            .zip(&self.probe)
        {
            let p2 = f64::from(p.norm_sqr());
            // rPIE with alpha = 1 gives 1/(0 p2 + 1 max) = 1/max, ePIE alpha/max: the same bits.
            let c = match self.settings.algorithm {
                Algorithm::Epie => alpha / max,
                Algorithm::Rpie => 1.0 / ((1.0 - alpha) * p2 + alpha * max),
                Algorithm::Ml => unreachable!("Engine::new refuses ml"),
            };
            *w = Complex32::new((c * f64::from(p.re)) as f32, (-c * f64::from(p.im)) as f32);
            let cf = c * inv_n2;
            *wf = Complex32::new(
                (cf * f64::from(p.re)) as f32,
                (-cf * f64::from(p.im)) as f32,
            );
            *r = (1.0 - c * p2) as f32;
        }
    }

    /// Runs one epoch and returns its E_F.
    pub fn run_epoch(&mut self) -> f64 {
        self.rng.shuffle(&mut self.order);
        let general = self.settings.group_size() > 1 || self.settings.refine_probe;
        let mut loss = 0f64;
        let count = self.order.len();
        for t in 0..count {
            let anchor = self.order[t] as usize;
            loss += if general {
                self.group_step(anchor)
            } else {
                self.single_step(anchor)
            };
        }
        // project() sums in unnormalised units: N^2 (|Psi| - a)^2.
        let ef = loss * f64::from(self.inv_n2) / self.prep.sum_a2;
        self.loss_history.push(ef);
        ef
    }

    /// One position, fixed probe: gather, project, and the fused update `O = O r + w psi'`
    /// (`w_fused` absorbs the N^2 the unnormalised transforms leave on psi'), each on rows in
    /// L1 inside the blocked round trip.
    fn single_step(&mut self, j: usize) -> f64 {
        let nn = self.n * self.n;
        let (ty, tx) = self.prep.topleft[j];
        let mut hooks = SingleHooks {
            n: self.n,
            at: ty * self.prep.grid.1 + tx,
            stride: self.prep.grid.1,
            object: &mut self.object,
            probe: &self.probe,
            w: &self.w_fused,
            r: &self.r_obj,
            amps: &self.prep.amps[j * nn..][..nn],
            n_eps: self.n_eps,
            resid: &mut self.resid,
            loss: 0.0,
        };
        single_trip(&mut self.fft, &mut self.bufs[0], &mut self.spec, &mut hooks);
        hooks.loss
    }

    /// One group (C = 1 with probe refinement, or C = g^2): every Delta from the same O and P,
    /// object updates summed in place in member order, probe updates averaged.
    fn group_step(&mut self, anchor: usize) -> f64 {
        let n = self.n;
        let nn = n * n;
        let stride = self.prep.grid.1;
        let c = self.settings.group_size();
        self.members.clear();
        self.members.push(anchor);
        if c > 1 {
            let k = self.k;
            self.pick
                .copy_from_slice(&self.neighbours[anchor * k..(anchor + 1) * k]);
            for t in 0..c - 1 {
                let r = t + self.rng.below(k - t);
                self.pick.swap(t, r);
                self.members.push(self.pick[t] as usize);
            }
        }
        let mut loss = 0f64;
        for m in 0..c {
            let j = self.members[m];
            let (ty, tx) = self.prep.topleft[j];
            let mut hooks = GroupHooks {
                n,
                at: ty * stride + tx,
                stride,
                object: &self.object,
                probe: &self.probe,
                patch: &mut self.patches[m],
                amps: &self.prep.amps[j * nn..][..nn],
                n_eps: self.n_eps,
                inv_n2: self.inv_n2,
                resid: &mut self.resid,
                loss: 0.0,
            };
            group_trip(&mut self.fft, &mut self.bufs[m], &mut self.spec, &mut hooks);
            // E_F counts every position once per epoch: its own (anchor) evaluation.
            if m == 0 {
                loss = hooks.loss;
            }
        }
        for m in 0..c {
            let (ty, tx) = self.prep.topleft[self.members[m]];
            let delta = &self.bufs[m];
            for i in 0..n {
                let o = &mut self.object[(ty + i) * stride + tx..][..n];
                let w = &self.w_obj[i * n..][..n];
                for ((o, w), d) in o.iter_mut().zip(w).zip(&delta[i * n..][..n]) {
                    *o += w * d;
                }
            }
        }
        if self.settings.refine_probe {
            self.probe_acc.fill(Complex32::new(0.0, 0.0));
            let beta = self.settings.beta;
            for m in 0..c {
                let patch = &self.patches[m];
                let max = patch
                    .iter()
                    .map(|o| f64::from(o.norm_sqr()))
                    .fold(0.0, f64::max);
                if max == 0.0 {
                    continue;
                }
                for ((acc, o), d) in self.probe_acc.iter_mut().zip(patch).zip(&self.bufs[m]) {
                    let o2 = f64::from(o.norm_sqr());
                    let w = match self.settings.algorithm {
                        Algorithm::Epie => beta / max,
                        Algorithm::Rpie => 1.0 / ((1.0 - beta) * o2 + beta * max),
                        Algorithm::Ml => unreachable!("Engine::new refuses ml"),
                    } as f32;
                    *acc += o.conj() * w * d;
                }
            }
            let inv_c = 1.0 / c as f32;
            for (p, acc) in self.probe.iter_mut().zip(&self.probe_acc) {
                *p += acc * inv_c;
            }
            self.update_object_weights();
        }
        loss
    }

    /// Replaces the object on the objectGuess grid (padding, if any, keeps its values): a warm
    /// start, and the check that the true object reproduces noiseless data.
    pub fn set_object(&mut self, object: ndarray::ArrayView2<Complex32>) -> Result<(), ReconError> {
        self.prep.place_object(object, &mut self.object)?;
        Ok(())
    }

    /// The current probe.
    pub fn probe(&self) -> Array2<Complex32> {
        Array2::from_shape_vec((self.n, self.n), self.probe.clone()).expect("probe is N x N")
    }

    /// E_F of every epoch run so far.
    pub fn loss_history(&self) -> &[f64] {
        &self.loss_history
    }

    /// Number of positions per epoch.
    pub fn positions(&self) -> usize {
        self.order.len()
    }

    /// The object on the objectGuess grid.
    pub fn object(&self) -> Array2<Complex32> {
        let [top, bottom, left, right] = self.prep.rounding.padding;
        let (rows, cols) = self.prep.grid;
        let (h, w) = (rows - top - bottom, cols - left - right);
        Array2::from_shape_fn((h, w), |(r, c)| self.object[(r + top) * cols + c + left])
    }

    /// The result so far.
    pub fn finish(self) -> Reconstruction {
        let n = self.n;
        Reconstruction {
            object: self.object(),
            probe: Array2::from_shape_vec((n, n), self.probe).expect("probe is N x N"),
            epochs_completed: self.loss_history.len() as u32,
            loss_history: self.loss_history,
            positions_topleft_yx: self.prep.topleft_grid,
            rounding: self.prep.rounding,
            fft_path: self.fft.path(),
            ml: None,
        }
    }
}

/// The single-position step's work inside the round trip.
struct SingleHooks<'a> {
    n: usize,
    /// Index of the patch's top-left pixel in `object`.
    at: usize,
    stride: usize,
    object: &'a mut [Complex32],
    probe: &'a [Complex32],
    w: &'a [Complex32],
    r: &'a [f32],
    amps: &'a [f32],
    n_eps: f32,
    resid: &'a mut [f32],
    loss: f64,
}

fast_fn! {
    /// One position's round trip, fixed probe (the hot loop of ePIE and rPIE).
    fn single_trip(
        fft: &mut Fft2,
        buf: &mut [Complex32],
        spec: &mut [Complex32],
        hooks: &mut SingleHooks<'_>,
    ) {
        fft.round_trip(buf, spec, hooks)
    }
}

fast_fn! {
    /// One group member's round trip.
    fn group_trip(
        fft: &mut Fft2,
        buf: &mut [Complex32],
        spec: &mut [Complex32],
        hooks: &mut GroupHooks<'_>,
    ) {
        fft.round_trip(buf, spec, hooks)
    }
}

impl Hooks for SingleHooks<'_> {
    #[inline(always)]
    fn fill(&mut self, r0: usize, rows: &mut [Complex32]) {
        exit_wave_rows(
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
        self.loss += project(rows, amps, self.n_eps, &mut self.resid[..rows.len()]);
    }

    #[inline(always)]
    fn drain(&mut self, r0: usize, rows: &mut [Complex32]) {
        let n = self.n;
        for (i, row) in rows.chunks_exact(n).enumerate() {
            let o = &mut self.object[self.at + (r0 + i) * self.stride..][..n];
            let w = &self.w[(r0 + i) * n..][..n];
            let r = &self.r[(r0 + i) * n..][..n];
            for (((o, w), r), b) in o.iter_mut().zip(w).zip(r).zip(row) {
                *o = *o * *r + w * b;
            }
        }
    }
}

/// A group member's work inside the round trip: keep its object patch, project, and leave
/// `Delta = psi' - P O_j` in the buffer.
struct GroupHooks<'a> {
    n: usize,
    at: usize,
    stride: usize,
    object: &'a [Complex32],
    probe: &'a [Complex32],
    patch: &'a mut [Complex32],
    amps: &'a [f32],
    n_eps: f32,
    inv_n2: f32,
    resid: &'a mut [f32],
    loss: f64,
}

impl Hooks for GroupHooks<'_> {
    #[inline(always)]
    fn fill(&mut self, r0: usize, rows: &mut [Complex32]) {
        let n = self.n;
        for (i, row) in rows.chunks_exact_mut(n).enumerate() {
            let o = &self.object[self.at + (r0 + i) * self.stride..][..n];
            self.patch[(r0 + i) * n..][..n].copy_from_slice(o);
            let p = &self.probe[(r0 + i) * n..][..n];
            for ((b, o), p) in row.iter_mut().zip(o).zip(p) {
                *b = p * o;
            }
        }
    }

    #[inline(always)]
    fn middle(&mut self, k0: usize, rows: &mut [Complex32]) {
        let amps = &self.amps[k0 * self.n..][..rows.len()];
        self.loss += project(rows, amps, self.n_eps, &mut self.resid[..rows.len()]);
    }

    #[inline(always)]
    fn drain(&mut self, r0: usize, rows: &mut [Complex32]) {
        let at = r0 * self.n;
        let (p, o) = (
            &self.probe[at..][..rows.len()],
            &self.patch[at..][..rows.len()],
        );
        for ((b, p), o) in rows.iter_mut().zip(p).zip(o) {
            *b = *b * self.inv_n2 - p * o;
        }
    }
}

/// The `k` nearest other positions of every position, nearest first, ties by index.
fn nearest_neighbours(x: &[f64], y: &[f64], k: usize) -> Vec<u32> {
    let count = x.len();
    let mut out = Vec::with_capacity(count * k);
    let mut dist: Vec<(f64, u32)> = Vec::with_capacity(count);
    let by = |a: &(f64, u32), b: &(f64, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    for j in 0..count {
        dist.clear();
        dist.extend((0..count).filter(|&i| i != j).map(|i| {
            let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
            (dx * dx + dy * dy, i as u32)
        }));
        if k < dist.len() {
            dist.select_nth_unstable_by(k, by);
            dist.truncate(k);
        }
        dist.sort_unstable_by(by);
        out.extend(dist.iter().map(|d| d.1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_are_sorted_and_exclude_self() {
        let x = [0.0, 1.0, 3.0, 6.0, 10.0];
        let y = [0.0; 5];
        let nb = nearest_neighbours(&x, &y, 2);
        // x = 3 has 0 and 6 at distance 3: the lower index comes first.
        assert_eq!(nb, [1, 2, 0, 2, 1, 0, 2, 4, 3, 2]);
    }
}
