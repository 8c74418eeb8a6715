//! The engines' hot kernels: slice passes with their rules (`#[inline(always)]` or compiled
//! twice by [`fast_fn!`], alias-free slice arguments, fixed summation orders: eight lanes, then
//! a fixed tree), shared by the ePIE/rPIE engine (exit wave, Fourier projection) and the `ml`
//! engine (the L-BFGS step's fused passes, the Poisson excess sum).

use crate::simd::fast_fn;
use num_complex::Complex32;

/// The Fourier projection's regulariser: `Psi' = a Psi / (|Psi| + EPS)` (orthonormal units).
pub const EPS: f32 = 1e-7;

/// The exit wave `P * O_patch` for the rows from `r0` on, the patch's top-left at `at` in an
/// object `stride` wide: the first FFT's input, shared by the engines' hooks.
#[inline(always)]
pub(crate) fn exit_wave_rows(
    object: &[Complex32],
    probe: &[Complex32],
    at: usize,
    stride: usize,
    n: usize,
    r0: usize,
    rows: &mut [Complex32],
) {
    for (i, row) in rows.chunks_exact_mut(n).enumerate() {
        let o = &object[at + (r0 + i) * stride..][..n];
        let p = &probe[(r0 + i) * n..][..n];
        crate::simd::cmul::mul_into(row, p, o);
    }
}

/// The Fourier projection on an unnormalised, transposed spectrum `spec` = N Psi, with the
/// matching amplitudes stored as `N a` (unshifted, transposed): replaces spec by
/// `N a spec / (|spec| + N eps)`, which the unnormalised inverse turns into N^2 times the
/// orthonormal `IFFT(a Psi / (|Psi| + eps))` (callers fold the N^2 into their weights), and
/// returns `sum (|spec| - N a)^2` = N^2 `sum (|Psi| - a)^2`. The modulus is
/// `sqrt(norm_sqr)`, never `hypot`. The residuals go through `resid` so that the projection
/// loop has no reduction (it vectorises) and the sum runs on eight fixed lanes.
#[inline(always)]
pub(crate) fn project(
    spec: &mut [Complex32],
    amps_n: &[f32],
    n_eps: f32,
    resid: &mut [f32],
) -> f64 {
    for ((f, &a), r) in spec.iter_mut().zip(amps_n).zip(resid.iter_mut()) {
        let m = (f.re * f.re + f.im * f.im).sqrt();
        *r = m - a;
        let scale = a / (m + n_eps);
        *f = Complex32::new(f.re * scale, f.im * scale);
    }
    lane_sum_sq(&resid[..spec.len()])
}

/// `sum x^2` over eight fixed lanes, then a fixed tree: the same bits on every machine.
#[inline(always)]
pub(crate) fn lane_sum_sq(x: &[f32]) -> f64 {
    const L: usize = 8;
    let mut acc = [0f32; L];
    let mut chunks = x.chunks_exact(L);
    for c in &mut chunks {
        for l in 0..L {
            acc[l] += c[l] * c[l];
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    let sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    f64::from(sum) + f64::from(tail)
}

#[inline(always)]
pub(crate) fn re_dot(a: &Complex32, b: &Complex32) -> f32 {
    a.re * b.re + a.im * b.im
}

fast_fn! {
    /// Re <a, b> (as [`lanes`]).
    pub(crate) fn dot_re(a: &[Complex32], b: &[Complex32]) -> f64 {
        lanes(a, b, re_dot)
    }
}

fast_fn! {
    /// sum |y|^2 h (as [`lanes`]).
    pub(crate) fn norm_weighted(y: &[Complex32], h: &[f32]) -> f64 {
        lanes(y, h, |y, h| y.norm_sqr() * h)
    }
}

/// The sums of [`diff_dots`].
#[derive(Clone, Copy)]
pub(crate) struct Dots {
    /// Re <s, y>, |s|^2, |y|^2.
    pub(crate) sy: f64,
    pub(crate) ss: f64,
    pub(crate) yy: f64,
    /// sum |y|^2 h.
    pub(crate) yhy: f64,
    /// Re <s, a>.
    pub(crate) sg: f64,
}

impl Dots {
    pub(crate) fn plus(&self, o: &Dots) -> Dots {
        Dots {
            sy: self.sy + o.sy,
            ss: self.ss + o.ss,
            yy: self.yy + o.yy,
            yhy: self.yhy + o.yhy,
            sg: self.sg + o.sg,
        }
    }
}

fast_fn! {
    /// `y = a - b` into `out`, and Re <s, y>, |s|^2, |y|^2, sum |y|^2 h and Re <s, a> (each
    /// as [`lanes`]), in one pass.
    pub(crate) fn diff_dots(
        out: &mut [Complex32],
        s: &[Complex32],
        a: &[Complex32],
        b: &[Complex32],
        h: &[f32],
    ) -> Dots {
        const L: usize = 8;
        let n = out.len();
        let body = n - n % L;
        let (s, a, b, h) = (&s[..n], &a[..n], &b[..n], &h[..n]);
        let [mut sy, mut ss, mut yy, mut yhy, mut sg] = [[0f64; L]; 5];
        let (ob, ot) = out.split_at_mut(body);
        for ((((o, s), a), b), h) in ob
            .chunks_exact_mut(L)
            .zip(s.chunks_exact(L))
            .zip(a.chunks_exact(L))
            .zip(b.chunks_exact(L))
            .zip(h.chunks_exact(L))
        {
            for l in 0..L {
                let y = a[l] - b[l];
                o[l] = y;
                sy[l] += f64::from(re_dot(&s[l], &y));
                ss[l] += f64::from(s[l].norm_sqr());
                yy[l] += f64::from(y.norm_sqr());
                yhy[l] += f64::from(y.norm_sqr() * h[l]);
                sg[l] += f64::from(re_dot(&s[l], &a[l]));
            }
        }
        let [mut tsy, mut tss, mut tyy, mut tyhy, mut tsg] = [0f64; 5];
        for (i, o) in ot.iter_mut().enumerate() {
            let k = body + i;
            let y = a[k] - b[k];
            *o = y;
            tsy += f64::from(re_dot(&s[k], &y));
            tss += f64::from(s[k].norm_sqr());
            tyy += f64::from(y.norm_sqr());
            tyhy += f64::from(y.norm_sqr() * h[k]);
            tsg += f64::from(re_dot(&s[k], &a[k]));
        }
        Dots {
            sy: tree(sy) + tsy,
            ss: tree(ss) + tss,
            yy: tree(yy) + tyy,
            yhy: tree(yhy) + tyhy,
            sg: tree(sg) + tsg,
        }
    }
}

fast_fn! {
    /// `step = alpha (q + c t)` (`t` the last pair's s, when there is one), `x = base + step`.
    /// One pass.
    pub(crate) fn step_into(
        x: &mut [Complex32],
        step: &mut [Complex32],
        base: &[Complex32],
        q: &[Complex32],
        t: Option<&[Complex32]>,
        c: f32,
        alpha: f32,
    ) {
        let n = x.len();
        let (base, q, step) = (&base[..n], &q[..n], &mut step[..n]);
        match t.map(|t| &t[..n]) {
            Some(t) => {
                for i in 0..n {
                    let v = (q[i] + t[i] * c) * alpha;
                    step[i] = v;
                    x[i] = base[i] + v;
                }
            }
            None => {
                for i in 0..n {
                    let v = q[i] * alpha;
                    step[i] = v;
                    x[i] = base[i] + v;
                }
            }
        }
    }
}

/// The natural logarithm of a positive, finite, normal `x`, in plain arithmetic that
/// vectorises (libm's `logf` is a call per value, which kept the Poisson projection's loop
/// scalar: 7 % of an `ml` epoch at 1e4 photons). The algorithm and constants are musl's
/// `logf` (from FreeBSD's `e_logf.c`): `x = 2^k m` with `m` in [sqrt(2)/2, sqrt(2)),
/// `ln m = 2 atanh(s)`, `s = (m - 1) / (m + 1)`, by a minimax polynomial; within 1 ulp of
/// the exact value (tested). Zero, subnormal, negative or non-finite input is not handled
/// (the callers' arguments are a model intensity with a positive floor over a count).
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    // musl's constants, by their bits (ln 2 split in a high and a low part; Lg1-Lg4).
    const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
    const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
    const LG1: f32 = f32::from_bits(0x3f2a_aaaa);
    const LG2: f32 = f32::from_bits(0x3ecc_ce13);
    const LG3: f32 = f32::from_bits(0x3e91_e9ee);
    const LG4: f32 = f32::from_bits(0x3e78_9e26);
    // Reduce x into [sqrt(2)/2, sqrt(2)): k from the exponent, m from the mantissa.
    let ix = x.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = (ix >> 23) as i32 - 0x7f;
    let m = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

/// The Poisson projection of a block's counted pixels, gathered into `f` (unnormalised
/// spectrum values) with their amplitudes `amp` (N a): `f <- r f`, `r = y / lam`,
/// `y = amp^2`, `lam = |f|^2 + n2_delta`; returns `sum y ln(lam / y)`, `sum y` and
/// `sum amp |f|` (before the update), each as [`lanes`]. Two passes, each of which
/// vectorises: the per-pixel arithmetic into `terms` (no sum in the loop), then the sums
/// (the gather and the scatter are the caller's).
#[inline(always)]
pub(crate) fn project_counted(
    f: &mut [Complex32],
    amp: &[f32],
    n2_delta: f32,
    terms: &mut Vec<[f32; 2]>,
) -> [f64; 3] {
    let n = f.len();
    let amp = &amp[..n];
    terms.resize(n, [0.0; 2]);
    let terms = &mut terms[..n];
    for ((f, &a), t) in f.iter_mut().zip(amp).zip(terms.iter_mut()) {
        let m2 = f.re * f.re + f.im * f.im;
        let lam = m2 + n2_delta;
        let y = a * a;
        let r = y / lam;
        *f = Complex32::new(f.re * r, f.im * r);
        *t = [y * ln(lam / y), a * m2.sqrt()];
    }
    let (counted, cross) = lanes2(terms, amp, |t, _| (t[0], t[1]));
    let ysum = lanes(amp, amp, |a, _| a * a);
    [counted, ysum, cross]
}

/// The fixed summation tree of eight lanes.
#[inline(always)]
pub(crate) fn tree(s: [f64; 8]) -> f64 {
    ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
}

fast_fn! {
    /// `q += k x`, then (optionally) `q *= t h`, and returns Re <d, q> of the result,
    /// summed as [`lanes`].
    pub(crate) fn axpy_dot(
        q: &mut [Complex32],
        x: &[Complex32],
        h: Option<&[f32]>,
        d: &[Complex32],
        k: f32,
        t: f32,
    ) -> f64 {
        let scale = h.map(|h| (h, t));
        const L: usize = 8;
        let n = q.len();
        let body = n - n % L;
        let (x, d) = (&x[..n], &d[..n]);
        let mut acc = [0f64; L];
        let mut tail = 0f64;
        let (qb, qt) = q.split_at_mut(body);
        let lanes = qb
            .chunks_exact_mut(L)
            .zip(x.chunks_exact(L))
            .zip(d.chunks_exact(L));
        match scale {
            None => {
                for ((q, x), d) in lanes {
                    for l in 0..L {
                        q[l] += x[l] * k;
                        acc[l] += f64::from(re_dot(&d[l], &q[l]));
                    }
                }
                for (i, q) in qt.iter_mut().enumerate() {
                    *q += x[body + i] * k;
                    tail += f64::from(re_dot(&d[body + i], q));
                }
            }
            Some((h, t)) => {
                let h = &h[..n];
                for (((q, x), d), h) in lanes.zip(h.chunks_exact(L)) {
                    for l in 0..L {
                        q[l] = (q[l] + x[l] * k) * (t * h[l]);
                        acc[l] += f64::from(re_dot(&d[l], &q[l]));
                    }
                }
                for (i, q) in qt.iter_mut().enumerate() {
                    *q = (*q + x[body + i] * k) * (t * h[body + i]);
                    tail += f64::from(re_dot(&d[body + i], q));
                }
            }
        }
        tree(acc) + tail
    }
}

/// `sum term(a_i, b_i)` in f64 over eight fixed lanes, then a fixed tree.
#[inline(always)]
pub(crate) fn lanes<A, B>(a: &[A], b: &[B], term: impl Fn(&A, &B) -> f32) -> f64 {
    lanes2(a, b, |a, b| (term(a, b), 0.0)).0
}

/// Two sums at once, as [`lanes`] (one pass over the data).
#[inline(always)]
pub(crate) fn lanes2<A, B>(a: &[A], b: &[B], term: impl Fn(&A, &B) -> (f32, f32)) -> (f64, f64) {
    const L: usize = 8;
    let (mut x, mut y) = ([0f64; L], [0f64; L]);
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut ca = a.chunks_exact(L);
    let mut cb = b.chunks_exact(L);
    for (ca, cb) in (&mut ca).zip(&mut cb) {
        for l in 0..L {
            let (u, v) = term(&ca[l], &cb[l]);
            x[l] += f64::from(u);
            y[l] += f64::from(v);
        }
    }
    let (mut tx, mut ty) = (0f64, 0f64);
    for (a, b) in ca.remainder().iter().zip(cb.remainder()) {
        let (u, v) = term(a, b);
        tx += f64::from(u);
        ty += f64::from(v);
    }
    (tree(x) + tx, tree(y) + ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f32 of the same sign.
    fn ulps(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        if a.signum() != b.signum() {
            return u32::MAX;
        }
        a.to_bits().abs_diff(b.to_bits())
    }

    /// `ln` is within 1 ulp of the correctly rounded logarithm over the whole normal range
    /// (every exponent, mantissas on a fine grid, and the neighbours of 1 where ln is near 0).
    #[test]
    fn ln_is_within_one_ulp_of_the_exact_logarithm() {
        let mut worst = (0, 0f32);
        let mut check = |x: f32| {
            let want = (x as f64).ln() as f32;
            let d = ulps(ln(x), want);
            if d > worst.0 {
                worst = (d, x);
            }
        };
        for e in -125..=127 {
            for m in 0..4096u32 {
                let x = f32::from_bits((((e + 127) as u32) << 23) | (m << 11) | (m & 0x7ff));
                check(x);
            }
        }
        let mut x = 1.0f32;
        for _ in 0..100_000 {
            x = f32::from_bits(x.to_bits() + 1);
            check(x);
        }
        let mut x = 1.0f32;
        for _ in 0..100_000 {
            x = f32::from_bits(x.to_bits() - 1);
            check(x);
        }
        assert!(worst.0 <= 1, "ln({}) is {} ulps off", worst.1, worst.0);
    }

    /// `project_counted` equals the plain per-pixel formulas (f64 reference) on every lane
    /// and the tail.
    #[test]
    fn project_counted_matches_the_per_pixel_formulas() {
        let n2_delta = 0.3f32;
        let mut f: Vec<Complex32> = (0..21)
            .map(|i| Complex32::new((i as f32 * 0.7).sin() * 40.0, (i as f32 * 1.3).cos() * 25.0))
            .collect();
        let amp: Vec<f32> = (0..21).map(|i| 1.0 + (i % 5) as f32 * 7.5).collect();
        let before = f.clone();
        let [c, y, cross] = project_counted(&mut f, &amp, n2_delta, &mut Vec::new());
        let (mut wc, mut wy, mut wx) = (0f64, 0f64, 0f64);
        for ((b, a), after) in before.iter().zip(&amp).zip(&f) {
            let m2 = f64::from(b.norm_sqr());
            let (a, lam) = (f64::from(*a), m2 + f64::from(n2_delta));
            let yy = a * a;
            wc += yy * (lam / yy).ln();
            wy += yy;
            wx += a * m2.sqrt();
            let r = yy / lam;
            assert!(
                (f64::from(after.re) - f64::from(b.re) * r).abs()
                    <= 1e-5 * (1.0 + f64::from(b.re).abs() * r)
            );
            assert!(
                (f64::from(after.im) - f64::from(b.im) * r).abs()
                    <= 1e-5 * (1.0 + f64::from(b.im).abs() * r)
            );
        }
        for (got, want) in [(c, wc), (y, wy), (cross, wx)] {
            assert!((got - want).abs() <= 1e-5 * want.abs(), "{got} vs {want}");
        }
    }
}
