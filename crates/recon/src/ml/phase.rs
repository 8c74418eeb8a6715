//! The phase preconditioner: the L-BFGS initial inverse Hessian boosts the smooth part of the
//! object's phase.
//!
//! Why. A phase `phi` that varies slowly across the probe changes the diffraction only through
//! its gradient (a tilt shifts the pattern; a constant is invisible), so the data's curvature
//! along a phase mode of spatial frequency `k` falls as `k^2` below the probe's scale, while
//! the diagonal preconditioner `1 / D` treats every mode alike. The low spatial frequencies of
//! the phase then converge last and slowly: the `ml` runs of the default study needed 400-825
//! epochs to come within 1 % of their converged NRMSE with `1 / D` alone.
//!
//! What. With `S = D^(-1/2)` and, at each pixel, the unit phase direction `e = i O / |O|` of
//! the accepted object, `H0 = S (I + Q (A - I) Q^T) S`, where `Q^T x = Re(conj(e) x)` takes a
//! field's phase component (Q has orthonormal columns) and `A` multiplies the phase field's
//! spectrum by `m(k) = 1 + min((k_c / k)^2, M - 1)` (1 at k = 0: the global phase is a null
//! direction). `A >= I`, so `H0` is symmetric positive definite whatever the object, which is
//! all L-BFGS needs of it; the amplitude part and high frequencies keep `1 / D`.
//!
//! Cost: one forward and one inverse FFT of the object grid per epoch (the direction), and one
//! forward for the scaling `y^T H0 y` of the newest pair: a few % of an epoch at N = 128.
//! The passes over the object grid run on the engine's pool in parts of whole coarse rows
//! (each coarse pixel summed by one part, in row order); the small coarse transforms run on
//! one thread. The bits do not depend on the thread count.

use crate::par::{Par, SEGMENTS};
use crate::simd::fast_fn;
use num_complex::Complex32;
use rustfft::{Fft, FftPlannerAvx, FftPlannerScalar};
use std::sync::Arc;

/// The Fourier multiplier and the plans for the coarse grid.
pub(super) struct PhaseFilter {
    /// The object grid.
    rows: usize,
    cols: usize,
    /// Block side of the coarse grid (a coarse pixel averages `block x block` object pixels).
    block: usize,
    /// The coarse grid's transform size (the coarse field zero-padded to sizes of 2, 3, 5).
    fr: usize,
    fc: usize,
    /// `m(k) - 1` in the transposed spectrum's layout (`[c * fr + r]`).
    boost: Vec<f32>,
    row_fwd: Arc<dyn Fft<f32>>,
    row_inv: Arc<dyn Fft<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
    /// `S e` at every object pixel, for the point [`PhaseFilter::prepare`] was given.
    dir: Vec<Complex32>,
    /// The coarse phase field (fr x fc), then its transposed spectrum (fc x fr).
    field: Vec<Complex32>,
    spectrum: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl PhaseFilter {
    /// The filter on a `rows x cols` object grid, coarse blocks of `block` pixels, cut-off
    /// `k_c` and cap `max_boost` (M).
    pub(super) fn new(
        rows: usize,
        cols: usize,
        block: usize,
        k_c: f64,
        max_boost: f64,
    ) -> PhaseFilter {
        let block = block.max(1);
        let fr = fast_size(rows.div_ceil(block));
        let fc = fast_size(cols.div_ceil(block));
        let plan = |n: usize| match FftPlannerAvx::<f32>::new() {
            Ok(mut p) => (p.plan_fft_forward(n), p.plan_fft_inverse(n)),
            Err(()) => {
                let mut p = FftPlannerScalar::<f32>::new();
                (p.plan_fft_forward(n), p.plan_fft_inverse(n))
            }
        };
        let (row_fwd, row_inv) = plan(fc);
        let (col_fwd, col_inv) = plan(fr);
        let scratch_len = [&row_fwd, &row_inv, &col_fwd, &col_inv]
            .iter()
            .map(|f| f.get_inplace_scratch_len())
            .max()
            .unwrap_or(0);
        // Frequencies in cycles per object pixel.
        let freq = |i: usize, n: usize| i.min(n - i) as f64 / (n * block) as f64;
        let mut boost = vec![0f32; fr * fc];
        for c in 0..fc {
            for r in 0..fr {
                let k2 = freq(r, fr).powi(2) + freq(c, fc).powi(2);
                boost[c * fr + r] = if k2 == 0.0 {
                    0.0
                } else {
                    (k_c * k_c / k2).min(max_boost - 1.0) as f32
                };
            }
        }
        let zero = Complex32::new(0.0, 0.0);
        PhaseFilter {
            rows,
            cols,
            block,
            fr,
            fc,
            boost,
            row_fwd,
            row_inv,
            col_fwd,
            col_inv,
            dir: vec![zero; rows * cols],
            field: vec![zero; fr * fc],
            spectrum: vec![zero; fr * fc],
            scratch: vec![zero; scratch_len],
        }
    }

    /// Sets the point: the object `o` (its phase directions) and `inv_d = 1 / D`.
    pub(super) fn prepare(&mut self, par: &Par, o: &[Complex32], inv_d: &[f32]) {
        let len = self.dir.len();
        par.segments(len, (&mut self.dir[..], o, inv_d), |(dir, o, inv_d)| {
            phase_directions(dir, o, inv_d)
        });
    }

    /// `q <- -theta H0 q` at the prepared point (`inv_d` its `1 / D`).
    pub(super) fn apply(&mut self, par: &Par, q: &mut [Complex32], inv_d: &[f32], theta: f32) {
        self.restrict(par, q);
        self.forward();
        for (s, b) in self.spectrum.iter_mut().zip(&self.boost) {
            *s *= *b;
        }
        self.inverse();
        let scale = 1.0 / (self.fr * self.fc) as f32;
        let (cols, block, fc) = (self.cols, self.block, self.fc);
        let rows = self.part_rows();
        let parts: Vec<_> = q
            .chunks_mut(rows * cols)
            .zip(self.dir.chunks(rows * cols))
            .zip(inv_d.chunks(rows * cols))
            .zip(self.field.chunks(rows / block * fc))
            .collect();
        par.run(parts, |(((q, dir), inv_d), field)| {
            let at = Coarse { cols, block, fc };
            add_phase_part(at, q, dir, inv_d, field, scale, theta)
        });
    }

    /// `y^T (H0 - S^2) y = (R phi)^T b^2 (A - I) (R phi)`, `phi = Q^T S y` (by Parseval).
    pub(super) fn extra_quadratic(&mut self, par: &Par, y: &[Complex32]) -> f64 {
        self.restrict(par, y);
        self.forward();
        let sum: f64 = self
            .spectrum
            .iter()
            .zip(&self.boost)
            .map(|(s, &b)| b as f64 * s.norm_sqr() as f64)
            .sum();
        sum * (self.block * self.block) as f64 / (self.fr * self.fc) as f64
    }

    /// `field = R Q^T S x`: each pixel's component along its phase direction, averaged over
    /// the coarse blocks (zero beyond the grid).
    fn restrict(&mut self, par: &Par, x: &[Complex32]) {
        let (cols, block, fc) = (self.cols, self.block, self.fc);
        self.field.fill(Complex32::new(0.0, 0.0));
        debug_assert!(self.rows.div_ceil(block) <= self.fr);
        let rows = self.part_rows();
        let parts: Vec<_> = x
            .chunks(rows * cols)
            .zip(self.dir.chunks(rows * cols))
            .zip(self.field.chunks_mut(rows / block * fc))
            .collect();
        par.run(parts, |((x, dir), field)| {
            restrict_part(Coarse { cols, block, fc }, x, dir, field)
        });
    }

    /// Object rows in one part of a grid pass: whole coarse blocks, so that each coarse pixel
    /// is summed by one part in row order (the bits do not depend on the threads), cut into
    /// about [`SEGMENTS`] parts.
    fn part_rows(&self) -> usize {
        self.rows.div_ceil(SEGMENTS).div_ceil(self.block).max(1) * self.block
    }

    /// field (fr x fc) -> spectrum (fc x fr, transposed).
    fn forward(&mut self) {
        let (fr, fc) = (self.fr, self.fc);
        for row in self.field.chunks_exact_mut(fc) {
            self.row_fwd.process_with_scratch(row, &mut self.scratch);
        }
        for r in 0..fr {
            for c in 0..fc {
                self.spectrum[c * fr + r] = self.field[r * fc + c];
            }
        }
        for col in self.spectrum.chunks_exact_mut(fr) {
            self.col_fwd.process_with_scratch(col, &mut self.scratch);
        }
    }

    /// spectrum (fc x fr) -> field (fr x fc), unnormalised.
    fn inverse(&mut self) {
        let (fr, fc) = (self.fr, self.fc);
        for col in self.spectrum.chunks_exact_mut(fr) {
            self.col_inv.process_with_scratch(col, &mut self.scratch);
        }
        for r in 0..fr {
            for c in 0..fc {
                self.field[r * fc + c] = self.spectrum[c * fr + r];
            }
        }
        for row in self.field.chunks_exact_mut(fc) {
            self.row_inv.process_with_scratch(row, &mut self.scratch);
        }
    }
}

/// The object grid's layout against the coarse field's.
#[derive(Clone, Copy)]
struct Coarse {
    cols: usize,
    block: usize,
    fc: usize,
}

fast_fn! {
    /// `dir = S e = i o sqrt(h / |o|^2)`: one root and one division a pixel, no branch (a
    /// vanishing object gives |e| < 1, which keeps H0 symmetric positive definite).
    fn phase_directions(dir: &mut [Complex32], o: &[Complex32], inv_d: &[f32]) {
        for ((d, o), h) in dir.iter_mut().zip(o).zip(inv_d) {
            let s = (h / o.norm_sqr().max(1e-24)).sqrt();
            *d = Complex32::new(-o.im * s, o.re * s);
        }
    }
}

/// [`PhaseFilter::restrict`] on whole coarse rows: `x` and `dir` the object rows of the
/// coarse rows `field` holds (zeroed).
fn restrict_part(at: Coarse, x: &[Complex32], dir: &[Complex32], field: &mut [Complex32]) {
    let Coarse { cols, block, fc } = at;
    let mean = 1.0 / (block * block) as f32;
    for (r, (x, d)) in x.chunks_exact(cols).zip(dir.chunks_exact(cols)).enumerate() {
        let coarse = &mut field[(r / block) * fc..];
        for ((x, d), c) in x.chunks(block).zip(d.chunks(block)).zip(coarse) {
            for (x, d) in x.iter().zip(d) {
                c.re += (d.re * x.re + d.im * x.im) * mean;
            }
        }
    }
}

fast_fn! {
    /// The last pass of [`PhaseFilter::apply`] on whole coarse rows: `q <- -theta (q / D + S e
    /// phi')`, `phi'` the filtered coarse field (`field`, unnormalised: times `scale`).
    fn add_phase_part(
        at: Coarse,
        q: &mut [Complex32],
        dir: &[Complex32],
        inv_d: &[f32],
        field: &[Complex32],
        scale: f32,
        theta: f32,
    ) {
        let Coarse { cols, block, fc } = at;
        for (r, ((q, d), h)) in q
            .chunks_exact_mut(cols)
            .zip(dir.chunks_exact(cols))
            .zip(inv_d.chunks_exact(cols))
            .enumerate()
        {
            let coarse = &field[(r / block) * fc..];
            // A block of columns at a time (no division per pixel).
            for (((q, d), h), c) in q
                .chunks_mut(block)
                .zip(d.chunks(block))
                .zip(h.chunks(block))
                .zip(coarse)
            {
                let phi = c.re * scale;
                for ((q, d), h) in q.iter_mut().zip(d).zip(h) {
                    // H0 q = S (S q + e (b^2 R^T (A - I) R) phi) = q / D + S e phi'.
                    *q = (*q * *h + *d * phi) * -theta;
                }
            }
        }
    }
}

/// The smallest `n' >= n` whose prime factors are 2, 3 and 5 (a fast FFT size; the zero
/// padding also keeps the filter from wrapping around the grid's edges).
fn fast_size(n: usize) -> usize {
    (n.max(1)..)
        .find(|&m| {
            let mut m = m;
            for p in [2, 3, 5] {
                while m % p == 0 {
                    m /= p;
                }
            }
            m == 1
        })
        .expect("a 5-smooth number exists above any n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// A small deterministic generator in [-1, 1).
    fn draws(seed: u64) -> impl FnMut() -> f32 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        }
    }

    fn dot(a: &[Complex32], b: &[Complex32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a.re * b.re + a.im * b.im) as f64)
            .sum()
    }

    /// H0 v (apply with theta = -1).
    fn h0(f: &mut PhaseFilter, v: &[Complex32], inv_d: &[f32]) -> Vec<Complex32> {
        let mut q = v.to_vec();
        f.apply(&Par::new(1), &mut q, inv_d, -1.0);
        q
    }

    #[test]
    fn h0_is_symmetric_above_the_diagonal_and_its_quadratic_form_agrees() {
        let (rows, cols) = (37, 29);
        let mut r = draws(7);
        // Some pixels without object (no phase direction there).
        let o: Vec<Complex32> = (0..rows * cols)
            .map(|i| {
                if i % 41 == 0 {
                    Complex32::new(0.0, 0.0)
                } else {
                    Complex32::new(1.0 + 0.5 * r(), 0.7 * r())
                }
            })
            .collect();
        let inv_d: Vec<f32> = (0..rows * cols).map(|_| 0.2 + (r() + 1.0)).collect();
        let mut vec =
            || -> Vec<Complex32> { (0..rows * cols).map(|_| Complex32::new(r(), r())).collect() };
        let (u, v) = (vec(), vec());
        let mut f = PhaseFilter::new(rows, cols, 2, 0.05, 100.0);
        f.prepare(&Par::new(1), &o, &inv_d);
        let (hu, hv) = (h0(&mut f, &u, &inv_d), h0(&mut f, &v, &inv_d));
        let (uhv, vhu) = (dot(&u, &hv), dot(&v, &hu));
        assert!(
            (uhv - vhu).abs() <= 1e-4 * uhv.abs().max(1.0),
            "{uhv} vs {vhu}"
        );
        // H0 - 1/D is positive semi-definite, and its form is extra_quadratic's.
        let diag: f64 = u
            .iter()
            .zip(&inv_d)
            .map(|(u, h)| (u.norm_sqr() * h) as f64)
            .sum();
        let uhu = dot(&u, &hu);
        let extra = f.extra_quadratic(&Par::new(1), &u);
        assert!(extra >= 0.0 && uhu >= diag, "{uhu} {diag} {extra}");
        assert!(
            (uhu - diag - extra).abs() <= 1e-3 * uhu,
            "{uhu} - {diag} vs {extra}"
        );
    }

    #[test]
    fn h0_boosts_a_smooth_phase_by_the_multiplier_and_leaves_a_fine_one_alone() {
        let (rows, cols, block, k_c) = (64, 96, 2, 0.04);
        let o: Vec<Complex32> = (0..rows * cols)
            .map(|i| Complex32::from_polar(1.0, (i % 7) as f32 * 0.3))
            .collect();
        let inv_d = vec![0.5f32; rows * cols];
        let mut f = PhaseFilter::new(rows, cols, block, k_c, 1000.0);
        f.prepare(&Par::new(1), &o, &inv_d);
        // A phase perturbation i o phi: phi one period across the rows (k = 1 / 64), or a
        // checkerboard (k at Nyquist).
        let ratio = |f: &mut PhaseFilter, phi: &dyn Fn(usize, usize) -> f32| {
            let u: Vec<Complex32> = (0..rows * cols)
                .map(|i| o[i] * Complex32::new(0.0, phi(i / cols, i % cols)))
                .collect();
            let hu = h0(f, &u, &inv_d);
            dot(&u, &hu) / (0.5 * dot(&u, &u))
        };
        let smooth = ratio(&mut f, &|r, _| (2.0 * PI * r as f64 / 64.0).cos() as f32);
        let boost = 1.0 + (k_c * 64.0).powi(2);
        // Zero padding smears the single frequency a little.
        assert!(
            smooth > 0.8 * boost && smooth < 1.2 * boost,
            "{smooth} vs {boost}"
        );
        let fine = ratio(&mut f, &|r, c| if (r + c) % 2 == 0 { 1.0 } else { -1.0 });
        assert!((fine - 1.0).abs() < 1e-3, "{fine}");
    }

    #[test]
    fn the_filter_gives_the_same_bits_on_any_number_of_threads() {
        // Rows that do not divide into the parts or the blocks.
        let (rows, cols, block) = (53, 31, 3);
        let mut r = draws(11);
        let o: Vec<Complex32> = (0..rows * cols)
            .map(|_| Complex32::new(1.0 + 0.5 * r(), 0.7 * r()))
            .collect();
        let inv_d: Vec<f32> = (0..rows * cols).map(|_| 0.2 + (r() + 1.0)).collect();
        let v: Vec<Complex32> = (0..rows * cols).map(|_| Complex32::new(r(), r())).collect();
        let run = |threads: usize| {
            let par = Par::new(threads);
            let mut f = PhaseFilter::new(rows, cols, block, 0.05, 100.0);
            f.prepare(&par, &o, &inv_d);
            let extra = f.extra_quadratic(&par, &v);
            let mut q = v.clone();
            f.apply(&par, &mut q, &inv_d, 0.7);
            let bits: Vec<u32> = q
                .iter()
                .flat_map(|c| [c.re.to_bits(), c.im.to_bits()])
                .collect();
            (extra.to_bits(), bits)
        };
        let one = run(1);
        assert_eq!(run(2), one);
        assert_eq!(run(3), one);
    }
}
