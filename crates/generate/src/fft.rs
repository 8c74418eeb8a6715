//! 2-D FFTs of square arrays on rustfft, with the code path pinned for reproducible bits.
//!
//! rustfft chooses AVX, SSE or scalar kernels at run time, and they round differently. The
//! planner here is chosen explicitly: `FftPlannerAvx` when the CPU has AVX and FMA (every
//! machine this project runs on: x86_64 with AVX2/FMA), else `FftPlannerScalar` (never SSE),
//! and the path taken is recorded in `_metadata`. For a given size the AVX planner's choice of
//! algorithm is fixed, so equal inputs give equal bits on every machine that takes the same
//! path.

use num_complex::Complex;
use rustfft::{Fft, FftNum, FftPlannerAvx, FftPlannerScalar};
use std::sync::Arc;

/// Which rustfft kernels are in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FftPath {
    /// `FftPlannerAvx` (AVX + FMA kernels).
    Avx,
    /// `FftPlannerScalar` (no SIMD).
    Scalar,
}

impl FftPath {
    /// The name recorded in `_metadata`.
    pub fn name(self) -> &'static str {
        match self {
            FftPath::Avx => "rustfft 6 FftPlannerAvx",
            FftPath::Scalar => "rustfft 6 FftPlannerScalar",
        }
    }
}

/// Forward and inverse plans for n x n arrays; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Plans<T: FftNum> {
    n: usize,
    forward: Arc<dyn Fft<T>>,
    inverse: Arc<dyn Fft<T>>,
    path: FftPath,
}

impl<T: FftNum> Plans<T> {
    /// Plans for side `n` (AVX when available, else scalar).
    pub fn new(n: usize) -> Self {
        Self::with_path(n, None)
    }

    /// Plans on a given path (`None`: AVX when available); `Some(Avx)` without AVX falls back
    /// to scalar.
    pub fn with_path(n: usize, path: Option<FftPath>) -> Self {
        if path != Some(FftPath::Scalar)
            && let Ok(mut planner) = FftPlannerAvx::<T>::new()
        {
            return Plans {
                n,
                forward: planner.plan_fft_forward(n),
                inverse: planner.plan_fft_inverse(n),
                path: FftPath::Avx,
            };
        }
        let mut planner = FftPlannerScalar::<T>::new();
        Plans {
            n,
            forward: planner.plan_fft_forward(n),
            inverse: planner.plan_fft_inverse(n),
            path: FftPath::Scalar,
        }
    }

    /// The path these plans use.
    pub fn path(&self) -> FftPath {
        self.path
    }

    /// A workspace (scratch buffers) for one thread.
    pub fn workspace(&self) -> Fft2<T> {
        let scratch = self
            .forward
            .get_inplace_scratch_len()
            .max(self.inverse.get_inplace_scratch_len());
        Fft2 {
            plans: self.clone(),
            scratch: vec![Complex::new(T::zero(), T::zero()); scratch],
            tmp: vec![Complex::new(T::zero(), T::zero()); self.n * self.n],
        }
    }
}

/// One thread's 2-D FFT: plans plus scratch buffers allocated once.
pub struct Fft2<T: FftNum> {
    plans: Plans<T>,
    scratch: Vec<Complex<T>>,
    tmp: Vec<Complex<T>>,
}

impl<T: FftNum> Fft2<T> {
    /// Side length.
    pub fn n(&self) -> usize {
        self.plans.n
    }

    /// Unnormalised forward DFT of the row-major n x n `buf`, returned transposed: element
    /// `[kx * n + ky]` of the result is frequency (row ky, column kx). `buf` is clobbered.
    /// Saves the second transpose when only a re-indexed |F|^2 is needed.
    pub fn forward_transposed(&mut self, buf: &mut [Complex<T>]) -> &[Complex<T>] {
        self.forward_transposed_with(buf, &mut || {})
    }

    /// [`Fft2::forward_transposed`], calling `between` after every eight rows of each pass
    /// (to interleave other work, such as prefetches).
    pub fn forward_transposed_with(
        &mut self,
        buf: &mut [Complex<T>],
        between: &mut dyn FnMut(),
    ) -> &[Complex<T>] {
        let n = self.plans.n;
        assert_eq!(buf.len(), n * n, "FFT buffer must be n x n");
        for rows in buf.chunks_mut(8 * n) {
            self.plans
                .forward
                .process_with_scratch(rows, &mut self.scratch);
            between();
        }
        transpose(buf, &mut self.tmp, n);
        for rows in self.tmp.chunks_mut(8 * n) {
            self.plans
                .forward
                .process_with_scratch(rows, &mut self.scratch);
            between();
        }
        &self.tmp
    }

    /// Unnormalised forward (`inverse = false`) or inverse DFT of `buf`, in place.
    pub fn transform(&mut self, buf: &mut [Complex<T>], inverse: bool) {
        let n = self.plans.n;
        assert_eq!(buf.len(), n * n, "FFT buffer must be n x n");
        let fft = if inverse {
            &self.plans.inverse
        } else {
            &self.plans.forward
        };
        fft.process_with_scratch(buf, &mut self.scratch);
        transpose(buf, &mut self.tmp, n);
        fft.process_with_scratch(&mut self.tmp, &mut self.scratch);
        transpose(&self.tmp, buf, n);
    }
}

/// `dst = src^T` for n x n row-major arrays, in cache-sized tiles.
fn transpose<T: Copy>(src: &[T], dst: &mut [T], n: usize) {
    const TILE: usize = 16;
    for i0 in (0..n).step_by(TILE) {
        let i1 = (i0 + TILE).min(n);
        for j0 in (0..n).step_by(TILE) {
            let j1 = (j0 + TILE).min(n);
            for i in i0..i1 {
                let row = &src[i * n + j0..i * n + j1];
                for (j, v) in (j0..j1).zip(row) {
                    dst[j * n + i] = *v;
                }
            }
        }
    }
}

/// Index of the unshifted frequency shown at output index `i` by NumPy's `fftshift`
/// (`out[i] = in[(i - n/2) mod n]`, n/2 rounded down; odd n included).
#[inline]
pub fn fftshift_source(i: usize, n: usize) -> usize {
    (i + n - n / 2) % n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dft(x: &[Complex<f64>], n: usize) -> Vec<Complex<f64>> {
        let mut out = vec![Complex::new(0.0, 0.0); n * n];
        for ky in 0..n {
            for kx in 0..n {
                let mut acc = Complex::new(0.0, 0.0);
                for r in 0..n {
                    for c in 0..n {
                        let ang =
                            -2.0 * std::f64::consts::PI * ((ky * r + kx * c) % n) as f64 / n as f64;
                        acc += x[r * n + c] * Complex::new(ang.cos(), ang.sin());
                    }
                }
                out[ky * n + kx] = acc;
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_for_even_and_odd_sides() {
        for n in [6usize, 7, 8] {
            let x: Vec<Complex<f64>> = (0..n * n)
                .map(|i| Complex::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
                .collect();
            let want = naive_dft(&x, n);
            for path in [FftPath::Avx, FftPath::Scalar] {
                let mut fft = Plans::<f64>::with_path(n, Some(path)).workspace();
                let mut buf = x.clone();
                fft.transform(&mut buf, false);
                for (a, b) in buf.iter().zip(&want) {
                    assert!((a - b).norm() < 1e-9, "n={n} {path:?}");
                }
                let mut buf = x.clone();
                let t = fft.forward_transposed(&mut buf).to_vec();
                for ky in 0..n {
                    for kx in 0..n {
                        assert!((t[kx * n + ky] - want[ky * n + kx]).norm() < 1e-9);
                    }
                }
                let mut buf = want.clone();
                fft.transform(&mut buf, true);
                for (a, b) in buf.iter().zip(&x) {
                    assert!((a / (n * n) as f64 - b).norm() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn fftshift_matches_numpy() {
        // np.fft.fftshift(np.arange(5)) == [3, 4, 0, 1, 2]; of arange(4): [2, 3, 0, 1].
        assert_eq!(
            (0..5).map(|i| fftshift_source(i, 5)).collect::<Vec<_>>(),
            [3, 4, 0, 1, 2]
        );
        assert_eq!(
            (0..4).map(|i| fftshift_source(i, 4)).collect::<Vec<_>>(),
            [2, 3, 0, 1]
        );
    }
}
