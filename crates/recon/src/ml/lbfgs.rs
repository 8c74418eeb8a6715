//! The L-BFGS step: the curvature pairs, the two-loop direction preconditioned by the
//! illumination, and the proposal `base + alpha d`, each pass fused with the next inner
//! product and run over the runtime's fixed segments.

use super::phase::PhaseFilter;
use super::{MEMORY, MlEngine, Pair};
use crate::kernels::{Dots, axpy_dot, diff_dots, dot_re, norm_weighted, step_into};
use crate::par::Par;
use num_complex::Complex32;

impl MlEngine {
    /// Stores the curvature pair (s, y) of the step about to be accepted; pairs without
    /// positive curvature (the objective is not convex) are skipped.
    pub(super) fn remember(&mut self) {
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
    pub(super) fn direction(&mut self) -> (Vec<Complex32>, Option<(usize, f32)>) {
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
        // The object's part of H0 is the phase preconditioner's; the probe's (when refined)
        // is 1 / D. `len`: the object's part of the joined vectors.
        let len = self.base.len();
        let phase = &mut self.phase;
        phase.prepare(par, &self.base, &h0[..len]);
        let theta = match self.memory.back() {
            Some(p) => {
                let mut yhy = p
                    .yhy
                    .unwrap_or_else(|| par_lanes(par, &p.y, h0, norm_weighted));
                yhy += phase.extra_quadratic(par, &p.y[..len]);
                (1.0 / p.rho / yhy) as f32
            }
            None => 1.0,
        };
        if m == 0 {
            q.copy_from_slice(g);
            apply_h0(par, phase, &mut q, h0, theta, len);
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
        // q -= a_0 y_0, q = -theta H0 q, and <y_0, q>.
        par_axpy_dot(
            par,
            &mut q,
            src.take(),
            &pair(0).y,
            -(a[0] as f32),
            None,
            &pair(0).y,
        );
        apply_h0(par, phase, &mut q, h0, theta, len);
        let mut b = pair(0).rho * par_lanes(par, &pair(0).y, &q, dot_re);
        for (i, &ai) in a.iter().enumerate().take(m - 1) {
            let c = (-ai - b) as f32;
            b = pair(i + 1).rho
                * par_axpy_dot(par, &mut q, None, &pair(i).s, c, None, &pair(i + 1).y);
        }
        (q, Some((m - 1, (-a[m - 1] - b) as f32)))
    }

    /// The next point: `base + alpha d`; keeps `step = alpha d`.
    pub(super) fn propose(&mut self) {
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
        self.par.segments(
            len,
            (
                &mut self.object[..],
                object_step,
                &self.base[..],
                &q[..len],
                tail,
            ),
            |(x, st, b, q, t)| step_into(x, st, b, q, t, c, alpha),
        );
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
}

/// `q <- -theta H0 q`: the phase preconditioner on the object's part (`..len`), `1 / D` on
/// the probe's.
fn apply_h0(
    par: &Par,
    phase: &mut PhaseFilter,
    q: &mut [Complex32],
    h0: &[f32],
    theta: f32,
    len: usize,
) {
    let (object, probe) = q.split_at_mut(len);
    phase.apply(par, object, &h0[..len], theta);
    for (q, h) in probe.iter_mut().zip(&h0[len..]) {
        *q *= -theta * h;
    }
}

/// A [`lanes`](crate::kernels::lanes) sum (`pass`) over [`SEGMENTS`](crate::par::SEGMENTS)
/// fixed segments.
fn par_lanes<A: Sync, B: Sync>(par: &Par, a: &[A], b: &[B], pass: fn(&[A], &[B]) -> f64) -> f64 {
    let n = a.len().min(b.len());
    par.segments(n, (&a[..n], &b[..n]), |(a, b)| pass(a, b))
        .iter()
        .sum()
}

/// [`axpy_dot`] over [`SEGMENTS`](crate::par::SEGMENTS) fixed segments, q first set to `src`
/// when given (a segment at a time, still in cache for the update).
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

/// [`diff_dots`] over [`SEGMENTS`](crate::par::SEGMENTS) fixed segments (those of
/// [`par_lanes`] on the same length, so each sum has the bits `par_lanes` would give it).
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
