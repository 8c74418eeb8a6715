//! An exact, fast, seeded Poisson sampler.
//!
//! Below a mean of 25: inversion by sequential search, with a squeeze that settles the common
//! case (count 0 at low dose) from 32 random bits and no transcendental function: since
//! `exp(-lam) > 1 - lam`, any uniform below `1 - lam` is a zero. At 25 and above: Hörmann's PTRS
//! (transformed rejection with squeeze, 1993), which NumPy uses from 10. Both are exact
//! (no normal approximation); all arithmetic goes through [`crate::detmath`] so the draws are
//! the same bits on every machine.

use crate::detmath::{exp, floor_int, ln, ln_factorial, round_int};
use crate::rng::PixelRng;

/// The sampler's name recorded in `_metadata`.
pub const SAMPLER_NAME: &str = "exact Poisson: inversion below mean 25 (zero squeeze, lane-parallel search), \
     PTRS (Hoermann 1993) from 25";

/// Mean from which PTRS is used (it is valid from 10; below 25 the fixed-length inversion
/// kernels are cheaper).
const PTRS_MIN: f64 = 25.0;
const TWO53: f64 = 9_007_199_254_740_992.0;

/// Inversion groups by mean (upper bounds), so that the pixels searched side by side in lanes
/// need similar numbers of terms. (The second number is the branch-free head of the single-draw
/// search, which covers all but 2 % (first group) or 0.1 % (the others) of its counts.)
const KERNELS: [(f64, usize); 4] = [(1.0, 4), (4.0, 12), (10.0, 24), (PTRS_MIN, 45)];

/// Longest sequential search: for a mean below 25, P(count > 255) < 1e-100; the cap only
/// guards against a cdf that rounds to just under u near 1.
const SEARCH_CAP: usize = 255;

/// One Poisson(lam) draw. `lam` must be finite and >= 0.
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

/// 1/k for k = 0..=255 (1/0 unused): a multiply in the search instead of a division.
const RECIPROCALS: [f64; SEARCH_CAP + 1] = {
    let mut t = [0.0; SEARCH_CAP + 1];
    let mut k = 1;
    while k <= SEARCH_CAP {
        t[k] = 1.0 / k as f64;
        k += 1;
    }
    t
};

/// Which inversion kernel (or PTRS, `KERNELS.len()`) a mean uses.
#[inline(always)]
fn method(lam: f64) -> usize {
    KERNELS
        .iter()
        .map(|(below, _)| usize::from(lam >= *below))
        .sum()
}

/// Inversion for lam < 25: the smallest k with u < F(k), where F(k) = p_0 + ... + p_k,
/// p_0 = exp(-lam), p_k = p_(k-1) (lam / k).
fn inversion(lam: f64, u: f64) -> u64 {
    let head = match method(lam) {
        0 => inversion_head::<4>(lam, u),
        1 => inversion_head::<12>(lam, u),
        2 => inversion_head::<24>(lam, u),
        _ => inversion_head::<45>(lam, u),
    };
    head.unwrap_or_else(|(k, p, cdf)| inversion_tail(lam, u, k, p, cdf))
}

/// The first K terms without branches: `Ok(count)` when u < F(K - 1), else
/// `Err((K - 1, p_(K-1), F(K - 1)))` to go on from. Independent pixels overlap in the CPU.
#[inline(always)]
fn inversion_head<const K: usize>(lam: f64, u: f64) -> Result<u64, (usize, f64, f64)> {
    let mut p = exp(-lam);
    let mut cdf = p;
    let mut below = u64::from(u >= cdf);
    for r in &RECIPROCALS[1..K] {
        p *= lam * r;
        cdf += p;
        below += u64::from(u >= cdf);
    }
    if u < cdf {
        Ok(below)
    } else {
        Err((K - 1, p, cdf))
    }
}

/// Pixels per inversion batch: independent lanes the compiler vectorises.
const LANES: usize = 4;

/// The inversion for `LANES` pixels at once, lane by lane the same operations as
/// [`inversion_head`] and [`inversion_tail`] (so the same counts), four terms at a time until
/// every lane has u < F(k): returns (k, p_k, F(k), number of terms <= k with F <= u) per lane.
/// A lane still at u >= F(k) (only when k reached the cap) finishes in [`inversion_tail`].
#[inline(always)]
fn inversion_lanes(
    lam: &[f64; LANES],
    u: &[f64; LANES],
) -> (usize, [f64; LANES], [f64; LANES], [f64; LANES]) {
    let mut p = [0.0; LANES];
    for (p, lam) in p.iter_mut().zip(lam) {
        *p = exp(-lam);
    }
    let mut cdf = p;
    // Counts as floats (exact below 2^53): compare-and-add then vectorises.
    let mut below = [0.0f64; LANES];
    for l in 0..LANES {
        below[l] = if u[l] >= cdf[l] { 1.0 } else { 0.0 };
    }
    let mut k = 0;
    while k + 4 <= SEARCH_CAP {
        for r in &RECIPROCALS[k + 1..k + 5] {
            for l in 0..LANES {
                p[l] *= lam[l] * r;
                cdf[l] += p[l];
                below[l] += if u[l] >= cdf[l] { 1.0 } else { 0.0 };
            }
        }
        k += 4;
        if (0..LANES).all(|l| u[l] < cdf[l]) {
            break;
        }
    }
    (k, p, cdf, below)
}

/// The search from term k on, for u >= F(k).
fn inversion_tail(lam: f64, u: f64, mut k: usize, mut p: f64, mut cdf: f64) -> u64 {
    while u >= cdf && k < SEARCH_CAP {
        k += 1;
        p *= lam * RECIPROCALS[k];
        cdf += p;
    }
    k as u64
}

/// Samples a whole pattern at once, in passes that keep unpredictable branches out of the
/// common paths: (1) one 64-bit draw per two pixels gives each pixel the top 32 bits of its
/// uniform, which settle the squeezed zeros; the rest are listed; (2) the listed pixels get the
/// uniform's 21 lower bits (further draws, in pixel order) and are sorted by mean into the
/// inversion groups and PTRS; (3) each group is inverted `LANES` pixels at a time, four terms
/// per step, in lanes the compiler vectorises, (4) the rare counts beyond the search cap
/// finish one by one; (5) means of 25 and more use PTRS with further draws, in pixel order.
/// Every pixel's count is an exact, independent Poisson draw, and the draw order is fixed: the
/// result is a pure function of the stream.
#[derive(Default)]
pub struct PatternSampler {
    pending: Vec<(u32, u64)>,
    /// Per method (inversion kernels, then PTRS): (pixel, uniform).
    lists: [Vec<(u32, f64)>; KERNELS.len() + 1],
    tail: Vec<(u32, f64, usize, f64, f64)>,
}

impl PatternSampler {
    /// A sampler with empty buffers (they grow to the largest pattern once).
    pub fn new() -> Self {
        Self::default()
    }

    /// Draws c_i ~ Poisson(f64(means[i]) * scale) for every pixel i and writes
    /// `out[i] = value(c_i)`; returns the total count. Means must be finite.
    pub fn sample(
        &mut self,
        means: &[f32],
        scale: f64,
        rng: &mut PixelRng,
        out: &mut [f32],
        value: impl Fn(u64) -> f32,
    ) -> u64 {
        assert_eq!(means.len(), out.len(), "one output per mean");
        let zero = value(0);
        let n = means.len();
        let lam_of = |i: u32| f64::from(means[i as usize]) * scale;
        // (1) Branch-free list building on a local copy of the generator (kept in registers).
        self.pending.resize(n, (0, 0));
        let pending = &mut self.pending[..n];
        let mut len = 0;
        let mut local = rng.clone();
        // Every pixel starts as a zero; the listed ones are overwritten below.
        out.fill(zero);
        // One 64-bit draw per two pixels: each gets 32 bits, the top bits of its uniform. If
        // (h + 1) / 2^32 <= 1 - lam (one count of margin for rounding), u < exp(-lam) whatever
        // the lower bits: a zero. Otherwise the lower 21 bits are drawn in pass 2.
        const TWO32: f64 = 4_294_967_296.0;
        let mut pairs = means.chunks_exact(2);
        let mut i = 0u32;
        for m in &mut pairs {
            let x = local.next_u64();
            for (half, mean) in [(x >> 32, m[0]), (x & 0xffff_ffff, m[1])] {
                let lam = f64::from(mean) * scale;
                let settled = half as f64 + 2.0 <= (1.0 - lam) * TWO32;
                pending[len] = (i, half);
                len += usize::from(!settled);
                i += 1;
            }
        }
        if let [m] = pairs.remainder() {
            let half = local.next_u64() >> 32;
            let lam = f64::from(*m) * scale;
            let settled = half as f64 + 2.0 <= (1.0 - lam) * TWO32;
            pending[len] = (i, half);
            len += usize::from(!settled);
        }
        *rng = local;
        let mut emit = |i: usize, k: u64| out[i] = value(k);
        // (2) Sort by method, branch-free, keeping pixel order within each list.
        let mut lens = [0usize; KERNELS.len() + 1];
        for list in &mut self.lists {
            list.resize(len, (0, 0.0));
        }
        for &(i, half) in &self.pending[..len] {
            let m = method(lam_of(i));
            // The uniform's top 32 bits from pass 1, 21 more drawn now (PTRS ignores it).
            let x = (half << 21) | (rng.next_u64() >> 43);
            self.lists[m][lens[m]] = (i, x as f64 * (1.0 / TWO53));
            lens[m] += 1;
        }
        // (3) Inversion kernels.
        let mut total = 0u64;
        self.tail.clear();
        for (list, &len) in self.lists.iter().zip(&lens).take(KERNELS.len()) {
            for chunk in list[..len].chunks(LANES) {
                // Padding lanes (mean 0, u 0) are computed and ignored.
                let mut lam = [0.0; LANES];
                let mut u = [0.0; LANES];
                for (l, &(i, ui)) in chunk.iter().enumerate() {
                    lam[l] = lam_of(i);
                    u[l] = ui;
                }
                let (k, p, cdf, below) = inversion_lanes(&lam, &u);
                for (l, &(i, ui)) in chunk.iter().enumerate() {
                    if ui < cdf[l] {
                        let count = below[l] as u64;
                        total += count;
                        emit(i as usize, count);
                    } else {
                        self.tail.push((i, ui, k, p[l], cdf[l]));
                    }
                }
            }
        }
        // (4) The rare larger counts.
        for &(i, u, k, p, cdf) in &self.tail {
            let k = inversion_tail(lam_of(i), u, k, p, cdf);
            total += k;
            emit(i as usize, k);
        }
        // (5) PTRS, LANES pixels at a time in pixel order: the group's first draws (u, v per
        // pixel, in order), the quick test in lanes, then each pixel not yet accepted finishes
        // on its own, in order, with further draws.
        let ptrs_list = &self.lists[KERNELS.len()][..lens[KERNELS.len()]];
        for chunk in ptrs_list.chunks(LANES) {
            let mut lam = [PTRS_MIN; LANES];
            let mut u = [0.0; LANES];
            let mut v = [0.0; LANES];
            for (l, &(i, _)) in chunk.iter().enumerate() {
                lam[l] = lam_of(i);
                u[l] = rng.uniform() - 0.5;
                v[l] = rng.uniform();
            }
            let (ok, quick_k) = ptrs_quick_lanes(&lam, &u, &v);
            for (l, &(i, _)) in chunk.iter().enumerate() {
                let k = if ok[l] {
                    quick_k[l] as u64
                } else {
                    let mut p = Ptrs::new(lam[l]);
                    match p.attempt(u[l], v[l]) {
                        Some(k) => k,
                        None => p.finish(rng),
                    }
                };
                total += k;
                emit(i as usize, k);
            }
        }
        total
    }
}

/// PTRS (W. Hörmann, "The transformed rejection method for generating Poisson random
/// variables", Insurance: Mathematics and Economics 12, 1993), valid for lam >= 10.
#[inline(never)]
fn ptrs(lam: f64, rng: &mut PixelRng) -> u64 {
    Ptrs::new(lam).finish(rng)
}

/// PTRS for one mean: its constants, and those of the final test once a draw needs them.
struct Ptrs {
    lam: f64,
    a: f64,
    b: f64,
    vr: f64,
    /// (ln lam, 1 / alpha), on first need.
    slow: Option<(f64, f64)>,
}

impl Ptrs {
    fn new(lam: f64) -> Self {
        let b = 0.931 + 2.53 * lam.sqrt();
        Ptrs {
            lam,
            a: -0.059 + 0.02483 * b,
            b,
            vr: 0.9277 - 3.6224 / (b - 2.0),
            slow: None,
        }
    }

    /// One PTRS step with u uniform in [-0.5, 0.5) and v in [0, 1): the count, or None to
    /// draw again.
    fn attempt(&mut self, u: f64, v: f64) -> Option<u64> {
        let (a, b, lam) = (self.a, self.b, self.lam);
        let us = 0.5 - u.abs();
        let k = floor_int((2.0 * a / us + b) * u + lam + 0.43);
        // For lam >= 10 and us >= 0.07, k >= 0 (Hörmann's bound).
        if us >= 0.07 && v <= self.vr {
            return Some(k as u64);
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            return None;
        }
        let (loglam, invalpha) = *self
            .slow
            .get_or_insert_with(|| (ln(lam), 1.1239 + 1.1328 / (b - 3.4)));
        // ln(v / alpha / (a / us^2 + b)) <= ln of the pmf at k.
        (ln(v * invalpha / (a / (us * us) + b)) <= -lam + k * loglam - ln_factorial(k as u64))
            .then_some(k as u64)
    }

    /// Steps with fresh draws until one is accepted.
    fn finish(&mut self, rng: &mut PixelRng) -> u64 {
        if !self.lam.is_finite() {
            return u64::MAX;
        }
        loop {
            let u = rng.uniform() - 0.5;
            let v = rng.uniform();
            if let Some(k) = self.attempt(u, v) {
                return k;
            }
        }
    }
}

/// The first PTRS step of `LANES` pixels at once, in lanes the compiler vectorises: for each
/// lane, whether the first draw (u, v) is accepted by the quick test, and its count. The same
/// operations as [`Ptrs::attempt`]'s quick test, so the same decisions and counts.
#[inline(always)]
fn ptrs_quick_lanes(
    lam: &[f64; LANES],
    u: &[f64; LANES],
    v: &[f64; LANES],
) -> ([bool; LANES], [f64; LANES]) {
    let mut ok = [false; LANES];
    let mut k = [0.0; LANES];
    for l in 0..LANES {
        let b = 0.931 + 2.53 * lam[l].sqrt();
        let a = -0.059 + 0.02483 * b;
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        let us = 0.5 - u[l].abs();
        let x = (2.0 * a / us + b) * u[l] + lam[l] + 0.43;
        // floor for |x| < 2^51, branch-free; meaningless otherwise, but then us < 0.07 and
        // the lane is not accepted here.
        let r = round_int(x);
        k[l] = if r > x { r - 1.0 } else { r };
        ok[l] = us >= 0.07 && v[l] <= vr;
    }
    (ok, k)
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
        for lam in [
            1e-4, 0.06, 0.6, 1.0, 3.0, 3.999, 4.0, 6.0, 9.999, 10.0, 17.0, 24.99, 25.0, 27.5, 1e3,
            1e6,
        ] {
            check_moments(lam, 200_000);
        }
    }

    #[test]
    fn pattern_sampler_has_poisson_moments_per_pixel() {
        // A pattern mixing every regime; each pixel's mean and variance over many patterns.
        let means: Vec<f32> = [0.0, 1e-4, 0.05, 0.6, 2.5, 9.9, 10.0, 18.0, 40.0, 3000.0].repeat(4);
        let reps = 40_000;
        let mut sums = vec![(0.0f64, 0.0f64); means.len()];
        let mut sampler = PatternSampler::new();
        for r in 0..reps {
            let mut rng = PixelRng::new(3, 1.0, r);
            let mut out = vec![0.0f32; means.len()];
            let total = sampler.sample(&means, 1.0, &mut rng, &mut out, |k| k as f32);
            let counts: Vec<u64> = out.iter().map(|c| *c as u64).collect();
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
    fn pattern_sampler_counts_are_poisson_distributed() {
        // Chi-square of the pattern sampler (lanes, kernels, PTRS in groups) at constant means.
        for lam in [0.7f32, 7.0, 20.0, 40.0, 700.0] {
            let mut sampler = PatternSampler::new();
            let means = vec![lam; 1000];
            let mut draws = Vec::with_capacity(300_000);
            for r in 0..300 {
                let mut rng = PixelRng::new(11, f64::from(lam), r);
                let mut out = vec![0.0f32; means.len()];
                sampler.sample(&means, 1.0, &mut rng, &mut out, |k| k as f32);
                draws.extend(out.iter().map(|c| *c as u64));
            }
            let (chi2, cells) = chi_square_of(f64::from(lam), &draws);
            let dof = (cells - 1) as f64;
            assert!(
                chi2 < dof + 6.0 * (2.0 * dof).sqrt(),
                "lam {lam}: chi2 {chi2} on {dof} dof"
            );
        }
    }

    #[test]
    fn zero_mean_gives_zero() {
        let mut rng = PixelRng::new(1, 0.0, 0);
        assert!((0..1000).all(|_| sample(0.0, &mut rng) == 0));
    }

    /// Pearson chi-square of `n` single draws against the pmf.
    fn chi_square(lam: f64, n: usize) -> (f64, usize) {
        let mut rng = PixelRng::new(5, lam, 1);
        let draws: Vec<u64> = (0..n).map(|_| sample(lam, &mut rng)).collect();
        chi_square_of(lam, &draws)
    }

    /// Pearson chi-square of `draws` against the Poisson(lam) pmf, neighbouring counts pooled
    /// until each cell expects at least 20 draws; returns (chi2, number of cells).
    fn chi_square_of(lam: f64, draws: &[u64]) -> (f64, usize) {
        let n = draws.len();
        let cap = (lam + 12.0 * lam.sqrt() + 20.0) as usize;
        let mut hist = vec![0u64; cap + 1];
        for k in draws {
            hist[(*k as usize).min(cap)] += 1;
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
        for lam in [0.3, 0.999, 2.5, 4.0, 9.5, 12.0, 24.0, 26.0, 150.0] {
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
