//! The 2-D FFT of the hot loop: pinned rustfft plans, reusable scratch, and a transposed
//! spectrum layout that saves two of the four transposes of a naive round trip.

use num_complex::Complex32;
use rustfft::{Fft, FftPlannerAvx, FftPlannerScalar};
use std::sync::Arc;

/// Which rustfft code path the plans use. Pinned (not `FftPlanner`'s auto-detection, which
/// would pick SSE on a machine without AVX) so that a result's bits depend only on this
/// value: AVX+FMA when the CPU has it (every machine of this project does), else the portable
/// scalar path. It is recorded in every bundle's config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FftPath {
    /// rustfft's `FftPlannerAvx` (AVX and FMA).
    Avx,
    /// rustfft's `FftPlannerScalar`.
    Scalar,
}

impl FftPath {
    /// The path this machine uses.
    pub fn detect() -> FftPath {
        if FftPlannerAvx::<f32>::new().is_ok() {
            FftPath::Avx
        } else {
            FftPath::Scalar
        }
    }
}

/// Forward and inverse N x N transforms with their scratch. Unnormalised (rustfft's
/// convention); callers fold the orthonormal 1/N factors into the Fourier projection.
pub struct Fft2 {
    n: usize,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    scratch: Vec<Complex32>,
    path: FftPath,
}

impl Fft2 {
    /// Plans both directions for N x N on this machine's pinned path.
    pub fn new(n: usize) -> Fft2 {
        let path = FftPath::detect();
        let (forward, inverse) = match FftPlannerAvx::<f32>::new() {
            Ok(mut planner) => (planner.plan_fft_forward(n), planner.plan_fft_inverse(n)),
            Err(()) => {
                let mut planner = FftPlannerScalar::<f32>::new();
                (planner.plan_fft_forward(n), planner.plan_fft_inverse(n))
            }
        };
        let len = forward
            .get_inplace_scratch_len()
            .max(inverse.get_inplace_scratch_len());
        Fft2 {
            n,
            forward,
            inverse,
            scratch: vec![Complex32::new(0.0, 0.0); len],
            path,
        }
    }

    /// The side N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The code path of the plans.
    pub fn path(&self) -> FftPath {
        self.path
    }

    /// `spec = FFT2(a)` transposed: `spec[kx * N + ky]`. `a` is overwritten (row transforms).
    pub fn forward_transposed(&mut self, a: &mut [Complex32], spec: &mut [Complex32]) {
        self.forward.process_with_scratch(a, &mut self.scratch);
        transpose(a, spec, self.n);
        self.forward.process_with_scratch(spec, &mut self.scratch);
    }

    /// `a = IFFT2(spec)` (unnormalised) from the transposed layout of
    /// [`Fft2::forward_transposed`]; `spec` is overwritten.
    pub fn inverse_from_transposed(&mut self, spec: &mut [Complex32], a: &mut [Complex32]) {
        self.inverse.process_with_scratch(spec, &mut self.scratch);
        transpose(spec, a, self.n);
        self.inverse.process_with_scratch(a, &mut self.scratch);
    }

    /// In-place forward 2-D transform in the natural layout (for evaluation, not the hot loop).
    pub fn forward_natural(&mut self, a: &mut [Complex32], tmp: &mut [Complex32]) {
        self.forward_transposed(a, tmp);
        transpose(tmp, a, self.n);
    }
}

/// `dst[c * n + r] = src[r * n + c]` in 8 x 8 tiles, so both sides stay in cache lines.
pub fn transpose(src: &[Complex32], dst: &mut [Complex32], n: usize) {
    const T: usize = 8;
    debug_assert!(src.len() == n * n && dst.len() == n * n);
    for r0 in (0..n).step_by(T) {
        let r1 = (r0 + T).min(n);
        for c0 in (0..n).step_by(T) {
            let c1 = (c0 + T).min(n);
            for r in r0..r1 {
                let row = &src[r * n..r * n + n];
                for c in c0..c1 {
                    dst[c * n + r] = row[c];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dft2(a: &[Complex32], n: usize) -> Vec<Complex32> {
        let mut out = vec![Complex32::new(0.0, 0.0); n * n];
        for ky in 0..n {
            for kx in 0..n {
                let mut acc = num_complex::Complex64::new(0.0, 0.0);
                for y in 0..n {
                    for x in 0..n {
                        let ph =
                            -2.0 * std::f64::consts::PI * ((ky * y + kx * x) as f64) / n as f64;
                        let v = a[y * n + x];
                        acc += num_complex::Complex64::new(v.re as f64, v.im as f64)
                            * num_complex::Complex64::from_polar(1.0, ph);
                    }
                }
                out[ky * n + kx] = Complex32::new(acc.re as f32, acc.im as f32);
            }
        }
        out
    }

    #[test]
    fn transposed_forward_matches_a_naive_dft_and_round_trips() {
        for n in [6usize, 8, 11] {
            let a: Vec<Complex32> = (0..n * n)
                .map(|i| Complex32::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()))
                .collect();
            let want = naive_dft2(&a, n);
            let mut fft = Fft2::new(n);
            let mut work = a.clone();
            let mut spec = vec![Complex32::new(0.0, 0.0); n * n];
            fft.forward_transposed(&mut work, &mut spec);
            for ky in 0..n {
                for kx in 0..n {
                    let d = spec[kx * n + ky] - want[ky * n + kx];
                    assert!(d.norm() < 1e-3, "n={n} ({ky},{kx}) {d}");
                }
            }
            fft.inverse_from_transposed(&mut spec, &mut work);
            let scale = 1.0 / (n * n) as f32;
            for (w, v) in work.iter().zip(&a) {
                assert!((w * scale - v).norm() < 1e-5);
            }
        }
    }

    #[test]
    fn parseval_holds_for_the_orthonormal_convention() {
        let n = 16;
        let a: Vec<Complex32> = (0..n * n)
            .map(|i| Complex32::new((i as f32 * 0.7).sin(), 0.3))
            .collect();
        let energy: f32 = a.iter().map(|v| v.norm_sqr()).sum();
        let mut work = a.clone();
        let mut spec = vec![Complex32::new(0.0, 0.0); n * n];
        Fft2::new(n).forward_transposed(&mut work, &mut spec);
        let spec_energy: f32 = spec.iter().map(|v| v.norm_sqr()).sum::<f32>() / (n * n) as f32;
        assert!((energy - spec_energy).abs() < 1e-4 * energy);
    }
}
