//! An exact, fast, seeded Poisson sampler.
//!
//! Below a mean of 10: inversion by sequential search, with a squeeze that settles the common
//! case (count 0 at low dose) from one 64-bit draw and no transcendental function: since
//! `exp(-lam) > 1 - lam`, any uniform below `1 - lam` is a zero. At 10 and above: Hörmann's PTRS
//! (transformed rejection with squeeze, 1993), the method NumPy uses there too. Both are exact
//! (no normal approximation); all arithmetic goes through [`crate::detmath`] so the draws are
//! the same bits on every machine.

use crate::detmath::{exp, floor_int, ln, ln_factorial};
use crate::rng::PixelRng;

/// The sampler's name recorded in `_metadata`.
pub const SAMPLER_NAME: &str =
    "exact Poisson: inversion below mean 10 (zero squeeze), PTRS (Hoermann 1993) from 10";

/// Mean from which PTRS is used (Hörmann's method is valid from 10).
const PTRS_MIN: f64 = 10.0;
const TWO53: f64 = 9_007_199_254_740_992.0;

/// One Poisson(lam) draw. `lam` must be finite and >= 0 (NaN gives 0).
#[inline]
pub fn sample(lam: f64, rng: &mut PixelRng) -> u64 {
    if lam >= PTRS_MIN {
        return ptrs(lam, rng);
    }
    // u = x / 2^53. When x + 2 <= (1 - lam) 2^53 (margin for the rounding of 1 - lam),
    // u < 1 - lam < exp(-lam): the count is 0, with no transcendental function.
    let x = rng.next_u64() >> 11;
    if x as f64 + 2.0 <= (1.0 - lam) * TWO53 {
        return 0;
    }
    inversion(lam, x as f64 * (1.0 / TWO53))
}

/// 1/k for k = 0..=200 (1/0 unused): a multiply in the search loop instead of a division.
const RECIPROCALS: [f64; 201] = {
    let mut t = [0.0; 201];
    let mut k = 1;
    while k < 201 {
        t[k] = 1.0 / k as f64;
        k += 1;
    }
    t
};

/// Inversion for lam < 10: the smallest k with u < F(k), F(k) = sum of p_i, p_i = p_(i-1) lam/i.
fn inversion(lam: f64, u: f64) -> u64 {
    match inversion_head(lam, u) {
        Ok(k) => k,
        Err((p3, f3)) => inversion_tail(lam, u, p3, f3),
    }
}

/// The first four terms of the inversion without branches: `Ok(k)` when k <= 3, else
/// `Err((p_3, F(3)))` to go on from.
#[inline(always)]
fn inversion_head(lam: f64, u: f64) -> Result<u64, (f64, f64)> {
    let p0 = exp(-lam);
    let p1 = p0 * (lam * RECIPROCALS[1]);
    let p2 = p1 * (lam * RECIPROCALS[2]);
    let p3 = p2 * (lam * RECIPROCALS[3]);
    let f0 = p0;
    let f1 = f0 + p1;
    let f2 = f1 + p2;
    let f3 = f2 + p3;
    if u < f3 {
        Ok(u64::from(u >= f0) + u64::from(u >= f1) + u64::from(u >= f2))
    } else {
        Err((p3, f3))
    }
}

/// The search from k = 3 on, for u >= F(3).
fn inversion_tail(lam: f64, u: f64, p3: f64, f3: f64) -> u64 {
    let (mut p, mut cdf, mut k) = (p3, f3, 3usize);
    // Beyond k = 200 the pmf of a mean below 10 is below 1e-150: the cap only guards against
    // a cdf that rounds to just under u near 1.
    while u >= cdf && k < 200 {
        k += 1;
        p *= lam * RECIPROCALS[k];
        cdf += p;
    }
    k as u64
}

/// Samples a whole pattern at once, in passes that keep unpredictable branches out of the
/// common paths: (1) one uniform per pixel settles the squeezed zeros and lists the rest;
/// (2) the listed pixels are sorted into means below 10 and the rest; (3) means below 10 are
/// inverted from their own uniform, four terms at once, (4) the few counts above 3 finish the
/// search; (5) means of 10 and more use PTRS with further draws of the same stream, in pixel
/// order. Every pixel's count is an exact, independent Poisson draw, and the draw order is
/// fixed: the result is a pure function of the stream.
#[derive(Default)]
pub struct PatternSampler {
    pending: Vec<(u32, u64)>,
    small: Vec<(u32, f64)>,
    large: Vec<u32>,
    tail: Vec<(u32, f64, f64, f64)>,
}

impl PatternSampler {
    /// A sampler with empty buffers (they grow to the largest pattern once).
    pub fn new() -> Self {
        Self::default()
    }

    /// Draws Poisson(f64(means[i]) * scale) for every pixel i and calls `emit(i, count)` for
    /// every pixel not settled as a zero by the first pass (count may still be 0); the
    /// caller's output starts at zero. Returns the total count.
    pub fn sample(
        &mut self,
        means: &[f32],
        scale: f64,
        rng: &mut PixelRng,
        mut emit: impl FnMut(usize, u64),
    ) -> u64 {
        let n = means.len();
        let lam_of = |i: u32| f64::from(means[i as usize]) * scale;
        // (1) Branch-free list building on a local copy of the generator (kept in registers).
        self.pending.resize(n, (0, 0));
        let mut len = 0;
        let mut local = rng.clone();
        for (i, m) in means.iter().enumerate() {
            let lam = f64::from(*m) * scale;
            let x = local.next_u64() >> 11;
            // Not a certain zero (NaN included): finish later.
            let zero = x as f64 + 2.0 <= (1.0 - lam) * TWO53;
            let pending = !zero;
            self.pending[len] = (i as u32, x);
            len += usize::from(pending);
        }
        *rng = local;
        // (2) Sort by method, branch-free.
        self.small.resize(len, (0, 0.0));
        self.large.resize(len, 0);
        let (mut n_small, mut n_large) = (0, 0);
        for &(i, x) in &self.pending[..len] {
            let is_large = lam_of(i) >= PTRS_MIN;
            self.small[n_small] = (i, x as f64 * (1.0 / TWO53));
            self.large[n_large] = i;
            n_small += usize::from(!is_large);
            n_large += usize::from(is_large);
        }
        // (3) Four terms of the inversion for every small mean; independent pixels overlap.
        let mut total = 0u64;
        self.tail.clear();
        for &(i, u) in &self.small[..n_small] {
            let lam = lam_of(i);
            match inversion_head(lam, u) {
                Ok(k) => {
                    total += k;
                    emit(i as usize, k);
                }
                Err((p3, f3)) => self.tail.push((i, u, p3, f3)),
            }
        }
        // (4) Counts of 3 and more.
        for &(i, u, p3, f3) in &self.tail {
            let k = inversion_tail(lam_of(i), u, p3, f3);
            total += k;
            emit(i as usize, k);
        }
        // (5) PTRS, in pixel order (it draws from the stream).
        for &i in &self.large[..n_large] {
            let k = ptrs(lam_of(i), rng);
            total += k;
            emit(i as usize, k);
        }
        total
    }
}

/// PTRS (W. Hörmann, "The transformed rejection method for generating Poisson random
/// variables", Insurance: Mathematics and Economics 12, 1993), for lam >= 10. The logarithms
/// of the final test are only computed when a draw reaches it.
#[inline(never)]
fn ptrs(lam: f64, rng: &mut PixelRng) -> u64 {
    if !lam.is_finite() {
        return u64::MAX;
    }
    let slam = lam.sqrt();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    // (ln lam, 1 / alpha), on first need.
    let mut slow: Option<(f64, f64)> = None;
    loop {
        let u = rng.uniform() - 0.5;
        let v = rng.uniform();
        let us = 0.5 - u.abs();
        let k = floor_int((2.0 * a / us + b) * u + lam + 0.43);
        // For lam >= 10 and us >= 0.07, k >= 0 (Hörmann's bound).
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        let (loglam, invalpha) =
            *slow.get_or_insert_with(|| (ln(lam), 1.1239 + 1.1328 / (b - 3.4)));
        // ln(v / alpha / (a / us^2 + b)) <= ln of the pmf at k (up to its constant).
        if ln(v * invalpha / (a / (us * us) + b)) <= -lam + k * loglam - ln_factorial(k as u64) {
            return k as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::PixelRng;

    /// Mean and variance of `n` draws at mean `lam` within 5 standard errors.
    fn check_moments(lam: f64, n: usize) {
        let mut rng = PixelRng::new(9, lam, 0);
        let (mut sum, mut sum2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let k = sample(lam, &mut rng) as f64;
            sum += k;
            sum2 += k * k;
        }
        let nf = n as f64;
        let mean = sum / nf;
        let var = sum2 / nf - mean * mean;
        let se_mean = (lam / nf).sqrt();
        let se_var = ((lam + 2.0 * lam * lam) / nf).sqrt();
        assert!(
            (mean - lam).abs() <= 5.0 * se_mean,
            "lam {lam}: mean {mean} (se {se_mean})"
        );
        assert!(
            (var - lam).abs() <= 5.0 * se_var,
            "lam {lam}: variance {var} (se {se_var})"
        );
    }

    #[test]
    fn moments_small_and_large_means() {
        for lam in [1e-4, 0.06, 0.6, 1.0, 3.0, 6.0, 9.999, 10.0, 27.5, 1e3, 1e6] {
            check_moments(lam, 200_000);
        }
    }

    #[test]
    fn pattern_sampler_has_poisson_moments_per_pixel() {
        // A pattern mixing every regime; each pixel's mean and variance over many patterns.
        let means: Vec<f32> = [0.0, 1e-4, 0.05, 0.6, 2.5, 9.9, 10.0, 40.0, 3000.0].repeat(4);
        let reps = 40_000;
        let mut sums = vec![(0.0f64, 0.0f64); means.len()];
        let mut sampler = PatternSampler::new();
        for r in 0..reps {
            let mut rng = PixelRng::new(3, 1.0, r);
            let mut counts = vec![0u64; means.len()];
            let total = sampler.sample(&means, 1.0, &mut rng, |i, k| counts[i] = k);
            assert_eq!(total, counts.iter().sum::<u64>());
            for (s, k) in sums.iter_mut().zip(&counts) {
                s.0 += *k as f64;
                s.1 += (*k * *k) as f64;
            }
        }
        for (lam, (s, s2)) in means.iter().map(|m| f64::from(*m)).zip(sums) {
            let n = reps as f64;
            let (mean, var) = (s / n, s2 / n - (s / n) * (s / n));
            let se_mean = (lam / n).sqrt();
            let se_var = ((lam + 2.0 * lam * lam) / n).sqrt();
            assert!(
                (mean - lam).abs() <= 5.0 * se_mean + 1e-12,
                "lam {lam}: mean {mean}"
            );
            assert!(
                (var - lam).abs() <= 5.0 * se_var + 1e-12,
                "lam {lam}: var {var}"
            );
        }
    }

    #[test]
    fn zero_mean_gives_zero() {
        let mut rng = PixelRng::new(1, 0.0, 0);
        assert!((0..1000).all(|_| sample(0.0, &mut rng) == 0));
    }

    /// Pearson chi-square of `n` draws against the pmf, neighbouring counts pooled until each
    /// cell expects at least 20 draws; returns (chi2, number of cells).
    fn chi_square(lam: f64, n: usize) -> (f64, usize) {
        let mut rng = PixelRng::new(5, lam, 1);
        let cap = (lam + 12.0 * lam.sqrt() + 20.0) as usize;
        let mut hist = vec![0u64; cap + 1];
        for _ in 0..n {
            hist[(sample(lam, &mut rng) as usize).min(cap)] += 1;
        }
        let pmf = |k: usize| (-lam + k as f64 * lam.ln() - ln_factorial(k as u64)).exp();
        let mut probs: Vec<f64> = (0..cap).map(pmf).collect();
        probs.push((1.0 - probs.iter().sum::<f64>()).max(0.0));
        let mut cells: Vec<(f64, f64)> = Vec::new();
        let (mut obs, mut expected) = (0.0, 0.0);
        for (h, p) in hist.iter().zip(&probs) {
            obs += *h as f64;
            expected += p * n as f64;
            if expected >= 20.0 {
                cells.push((obs, expected));
                (obs, expected) = (0.0, 0.0);
            }
        }
        if let Some(last) = cells.last_mut() {
            last.0 += obs;
            last.1 += expected;
        }
        let chi2 = cells.iter().map(|(o, e)| (o - e) * (o - e) / e).sum();
        (chi2, cells.len())
    }

    #[test]
    fn distribution_is_poisson() {
        for lam in [0.3, 4.0, 9.5, 12.0, 150.0] {
            let (chi2, cells) = chi_square(lam, 300_000);
            let dof = (cells - 1) as f64;
            // Mean dof, sd sqrt(2 dof): 6 sd above the mean is a failure.
            assert!(
                chi2 < dof + 6.0 * (2.0 * dof).sqrt(),
                "lam {lam}: chi2 {chi2} on {dof} dof"
            );
        }
    }
}
