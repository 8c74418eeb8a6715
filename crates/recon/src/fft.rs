//! The 2-D FFT of the hot loop: pinned rustfft plans, reusable scratch, and a blocked round
//! trip whose hooks see each block of rows while it is in L1.

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

/// Rows per block of the round trip: 8 rows of 64 values are 4 KiB, well inside L1, and a
/// block's transposed write is one 64-byte line per destination row.
const BLOCK: usize = 8;

/// Forward and inverse N x N transforms with their scratch. Unnormalised (rustfft's
/// convention); callers fold the orthonormal 1/N factors into the Fourier projection.
pub struct Fft2 {
    n: usize,
    forward: Arc<dyn Fft<f32>>,
    inverse: Arc<dyn Fft<f32>>,
    scratch: Vec<Complex32>,
    /// The spectrum rows a round trip transforms (see [`Hooks::live_rows`]).
    live: Vec<u64>,
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
            live: vec![0; n.div_ceil(64)],
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

    /// One 2-D round trip `a -> FFT2 -> middle -> IFFT2 -> a` (unnormalised both ways, so an
    /// identity `middle` returns N^2 a), in blocks of rows; see [`Hooks`]. Only the two
    /// transposed writes stream whole arrays through L2; every hook runs on rows in L1.
    /// Spectrum rows the hooks do not need ([`Hooks::live_rows`]) are neither written,
    /// transformed nor inverted: they leave the middle as zeros, whose inverse is zeros.
    /// `a` and `spec` are N x N.
    #[inline(always)]
    pub fn round_trip<H: Hooks>(
        &mut self,
        a: &mut [Complex32],
        spec: &mut [Complex32],
        hooks: &mut H,
    ) {
        let Fft2 {
            n,
            forward,
            inverse,
            scratch,
            live,
            ..
        } = self;
        let n = *n;
        assert!(a.len() == n * n && spec.len() == n * n);
        let pruned = hooks.live_rows(live);
        let live: &[u64] = live;
        let is_live = |k: usize| !pruned || live[k / 64] >> (k % 64) & 1 == 1;
        for (b, rows) in a.chunks_mut(BLOCK * n).enumerate() {
            hooks.fill(b * BLOCK, rows);
            forward.process_with_scratch(rows, scratch);
            transpose_block(rows, spec, b * BLOCK, n, is_live);
        }
        for (b, rows) in spec.chunks_mut(BLOCK * n).enumerate() {
            let k0 = b * BLOCK;
            if pruned {
                live_runs(rows, k0, n, is_live, |run| {
                    forward.process_with_scratch(run, scratch)
                });
                hooks.middle(k0, rows);
                for (i, row) in rows.chunks_exact_mut(n).enumerate() {
                    if !is_live(k0 + i) {
                        row.fill(Complex32::new(0.0, 0.0));
                    }
                }
                live_runs(rows, k0, n, is_live, |run| {
                    inverse.process_with_scratch(run, scratch)
                });
            } else {
                forward.process_with_scratch(rows, scratch);
                hooks.middle(k0, rows);
                inverse.process_with_scratch(rows, scratch);
            }
            transpose_block(rows, a, k0, n, |_| true);
        }
        for (b, rows) in a.chunks_mut(BLOCK * n).enumerate() {
            inverse.process_with_scratch(rows, scratch);
            hooks.drain(b * BLOCK, rows);
        }
    }
}

/// Calls `f` on each maximal run of consecutive live rows of a block (rows `k0..`).
#[inline(always)]
fn live_runs(
    rows: &mut [Complex32],
    k0: usize,
    n: usize,
    is_live: impl Fn(usize) -> bool,
    mut f: impl FnMut(&mut [Complex32]),
) {
    let height = rows.len() / n;
    let mut i = 0;
    while i < height {
        if !is_live(k0 + i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < height && is_live(k0 + i) {
            i += 1;
        }
        f(&mut rows[start * n..i * n]);
    }
}

/// What a round trip does with each block of rows.
pub trait Hooks {
    /// Writes rows `r0..` of the input into `rows` (`rows.len() / N` of them); they are then
    /// transformed along x and written transposed into the spectrum buffer.
    fn fill(&mut self, r0: usize, rows: &mut [Complex32]);
    /// Sees the spectrum rows `k0..` (fixed kx = k0 + i, all ky): `rows[i * N + ky]` is the
    /// unnormalised FFT2 at (ky, kx); may change them before the inverse.
    fn middle(&mut self, k0: usize, rows: &mut [Complex32]);
    /// Sees rows `r0..` of the unnormalised inverse (N^2 times the orthonormal one).
    fn drain(&mut self, r0: usize, rows: &mut [Complex32]);
    /// Which spectrum rows (fixed kx) the middle needs: sets bit k (of word k / 64) of
    /// `live` for each, and returns true; false (the default) means all. A row left out is
    /// not computed: the middle must not read it, and whatever it writes there is replaced
    /// by zeros. The Poisson projection sets every pixel where nothing was counted to zero,
    /// so the spectrum rows without a count (37-64 % in the default study) need neither
    /// their forward nor their inverse transform along ky: half the FFT work of those rows.
    #[inline(always)]
    fn live_rows(&mut self, _live: &mut [u64]) -> bool {
        false
    }
}

/// A round trip that does nothing in its hooks but copy its input in: the FFT bound.
pub struct Plain<'a>(pub &'a [Complex32]);

/// The FFT bound's frame: a fixed input, the work array and the spectrum in one allocation,
/// each starting a whole number of 4 KiB after the first, so that all three sit at the same
/// offset modulo 4 KiB whatever the allocator hands out. A copy whose destination sits just
/// past its source modulo 4 KiB stalls on false store-to-load aliasing: the same round trip
/// took 72-75 us (medians) with the work array at the input's offset and 139-156 us with it
/// 16 bytes past (N = 128, one thread, the 2-core machine, the two alternated), so a bound
/// left to the allocator's placement could be half as fast as the FFT is.
pub struct BoundFrame(Frames);

impl BoundFrame {
    /// An N x N frame with the benches' fixed input.
    pub fn new(n: usize) -> BoundFrame {
        let mut frames = Frames::new(n, 3);
        for (i, v) in frames.array(0).iter_mut().enumerate() {
            *v = Complex32::new((i as f32 * 0.37).sin(), 0.5);
        }
        BoundFrame(frames)
    }

    /// One round trip of the input (see [`Plain`]); returns a value of the result.
    pub fn round_trip(&mut self, fft: &mut Fft2) -> Complex32 {
        let [input, a, spec] = self.0.arrays();
        fft.round_trip(a, spec, &mut Plain(input));
        a[1]
    }
}

/// `K` N x N arrays in one allocation, each starting a whole number of 4 KiB after the first,
/// so that all sit at the same offset modulo 4 KiB (see [`BoundFrame`]). A round trip's work
/// array and spectrum allocated one after the other (N = 128: 128 KiB each, from the heap)
/// land 16 bytes apart modulo 4 KiB, the slow case. The first starts on a 64-byte line:
/// then each 8-value write of the transposes fills one line (from the heap, 16 bytes past one,
/// every such write touched two).
pub struct Frames {
    mem: Vec<Complex32>,
    /// Values before the first line boundary.
    start: usize,
    nn: usize,
    stride: usize,
}

impl Frames {
    /// `count` zeroed N x N arrays.
    pub fn new(n: usize, count: usize) -> Frames {
        // 512 values are 4 KiB.
        let stride = (n * n).div_ceil(512) * 512;
        // 8 values are 64 bytes: room to start on a line whatever the heap gives.
        let mem = vec![Complex32::new(0.0, 0.0); count * stride + 8];
        let start = mem.as_ptr().align_offset(64).min(8);
        Frames {
            mem,
            start,
            nn: n * n,
            stride,
        }
    }

    /// Array `i`.
    pub fn array(&mut self, i: usize) -> &mut [Complex32] {
        &mut self.mem[self.start + i * self.stride..][..self.nn]
    }

    /// The first `K` arrays, apart.
    pub fn arrays<const K: usize>(&mut self) -> [&mut [Complex32]; K] {
        let nn = self.nn;
        let mut parts = self.mem[self.start..]
            .chunks_mut(self.stride)
            .map(|c| &mut c[..nn]);
        std::array::from_fn(|_| parts.next().expect("K arrays allocated"))
    }
}

impl Hooks for Plain<'_> {
    fn fill(&mut self, r0: usize, rows: &mut [Complex32]) {
        let n = self.0.len().isqrt();
        rows.copy_from_slice(&self.0[r0 * n..][..rows.len()]);
    }
    fn middle(&mut self, _: usize, _: &mut [Complex32]) {}
    fn drain(&mut self, _: usize, _: &mut [Complex32]) {}
}

/// Writes the block of rows `rows` (rows `r0..r0 + rows.len() / n` of an N x N array)
/// transposed into `dst`: `dst[c * n + r0 + i] = rows[i * n + c]`, for the destination rows
/// `c` that `keep`. With 8 rows, every destination write is 8 consecutive values (one 64-byte
/// line) and the reads are 8 sequential streams.
#[inline(always)]
fn transpose_block(
    rows: &[Complex32],
    dst: &mut [Complex32],
    r0: usize,
    n: usize,
    keep: impl Fn(usize) -> bool,
) {
    let height = rows.len() / n;
    if height == BLOCK {
        crate::simd::transpose::block8(rows, dst, r0, n, keep);
    } else {
        for (i, row) in rows.chunks_exact(n).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if keep(c) {
                    dst[c * n + r0 + i] = v;
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

    struct Record<'a> {
        input: &'a [Complex32],
        seen: &'a mut [Complex32],
        out: &'a mut [Complex32],
        n: usize,
    }

    impl Hooks for Record<'_> {
        fn fill(&mut self, r0: usize, rows: &mut [Complex32]) {
            rows.copy_from_slice(&self.input[r0 * self.n..][..rows.len()]);
        }
        fn middle(&mut self, k0: usize, rows: &mut [Complex32]) {
            for (i, row) in rows.chunks(self.n).enumerate() {
                for (ky, v) in row.iter().enumerate() {
                    self.seen[ky * self.n + k0 + i] = *v;
                }
            }
        }
        fn drain(&mut self, r0: usize, rows: &mut [Complex32]) {
            self.out[r0 * self.n..][..rows.len()].copy_from_slice(rows);
        }
    }

    #[test]
    fn the_round_trip_sees_the_dft_and_returns_n_squared_times_its_input() {
        // 8 and 16: whole blocks; 6, 11 and 20: partial blocks.
        for n in [6usize, 8, 11, 16, 20] {
            let input: Vec<Complex32> = (0..n * n)
                .map(|i| Complex32::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()))
                .collect();
            let want = naive_dft2(&input, n);
            let mut fft = Fft2::new(n);
            let mut a = vec![Complex32::new(0.0, 0.0); n * n];
            let mut spec = a.clone();
            let mut seen = vec![Complex32::new(0.0, 0.0); n * n];
            let mut out = vec![Complex32::new(0.0, 0.0); n * n];
            fft.round_trip(
                &mut a,
                &mut spec,
                &mut Record {
                    input: &input,
                    seen: &mut seen,
                    out: &mut out,
                    n,
                },
            );
            for (s, w) in seen.iter().zip(&want) {
                assert!((s - w).norm() < 1e-3, "n={n}: {s} vs {w}");
            }
            let scale = 1.0 / (n * n) as f32;
            for (o, v) in out.iter().zip(&input) {
                assert!((o * scale - v).norm() < 1e-5, "n={n}");
            }
        }
    }

    /// A middle that keeps a set of spectrum rows (scaled) and zeroes the rest; with `prune`
    /// it says so through `live_rows` and writes junk where the round trip must put zeros.
    struct Masked<'a> {
        input: &'a [Complex32],
        out: &'a mut [Complex32],
        n: usize,
        mask: &'a [u64],
        prune: bool,
    }

    impl Hooks for Masked<'_> {
        fn fill(&mut self, r0: usize, rows: &mut [Complex32]) {
            rows.copy_from_slice(&self.input[r0 * self.n..][..rows.len()]);
        }
        fn middle(&mut self, k0: usize, rows: &mut [Complex32]) {
            for (i, row) in rows.chunks_mut(self.n).enumerate() {
                let k = k0 + i;
                if self.mask[k / 64] >> (k % 64) & 1 == 1 {
                    for (ky, v) in row.iter_mut().enumerate() {
                        *v *= 1.0 + 0.01 * ky as f32;
                    }
                } else if self.prune {
                    row.fill(Complex32::new(1e30, -7.0));
                } else {
                    row.fill(Complex32::new(0.0, 0.0));
                }
            }
        }
        fn drain(&mut self, r0: usize, rows: &mut [Complex32]) {
            self.out[r0 * self.n..][..rows.len()].copy_from_slice(rows);
        }
        fn live_rows(&mut self, live: &mut [u64]) -> bool {
            live.copy_from_slice(self.mask);
            self.prune
        }
    }

    /// Leaving out the spectrum rows a middle zeroes changes no bit of the round trip (the
    /// inverse FFT of zeros is +0 everywhere), for partial blocks, masks
    /// over two words, and the default study's N = 128 (rustfft's 128-point AVX butterfly).
    #[test]
    fn pruned_round_trips_equal_full_ones_bit_for_bit() {
        for n in [6usize, 11, 16, 20, 72, 128] {
            let input: Vec<Complex32> = (0..n * n)
                .map(|i| Complex32::new((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()))
                .collect();
            let words = n.div_ceil(64);
            let every_third: Vec<u64> = (0..words)
                .map(|w| {
                    (0..64)
                        .filter(|b| (w * 64 + b) % 3 == 0)
                        .fold(0, |m, b| m | 1 << b)
                })
                .collect();
            // Low frequencies only, as counts fall: kx in 0..n/5 and the last n/5.
            let low: Vec<u64> = (0..words)
                .map(|w| {
                    (0..64)
                        .filter(|b| {
                            let k = w * 64 + b;
                            k < n && (k < n / 5 || k >= n - n / 5)
                        })
                        .fold(0, |m, b| m | 1 << b)
                })
                .collect();
            for mask in [vec![0; words], vec![u64::MAX; words], every_third, low] {
                let mut outs = Vec::new();
                for prune in [false, true] {
                    let mut fft = Fft2::new(n);
                    let mut a = vec![Complex32::new(3.0, 3.0); n * n];
                    let mut spec = vec![Complex32::new(-5.0, 2.0); n * n];
                    let mut out = vec![Complex32::new(0.0, 0.0); n * n];
                    // Twice: the second round trip starts from the first's leftovers.
                    for _ in 0..2 {
                        fft.round_trip(
                            &mut a,
                            &mut spec,
                            &mut Masked {
                                input: &input,
                                out: &mut out,
                                n,
                                mask: &mask,
                                prune,
                            },
                        );
                    }
                    outs.push(out);
                }
                for (p, f) in outs[1].iter().zip(&outs[0]) {
                    assert_eq!(
                        (p.re.to_bits(), p.im.to_bits()),
                        (f.re.to_bits(), f.im.to_bits()),
                        "n = {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn parseval_holds_for_the_orthonormal_convention() {
        let n = 16;
        let input: Vec<Complex32> = (0..n * n)
            .map(|i| Complex32::new((i as f32 * 0.7).sin(), 0.3))
            .collect();
        let energy: f32 = input.iter().map(|v| v.norm_sqr()).sum();
        let mut a = vec![Complex32::new(0.0, 0.0); n * n];
        let mut spec = a.clone();
        let mut seen = a.clone();
        let mut out = a.clone();
        Fft2::new(n).round_trip(
            &mut a,
            &mut spec,
            &mut Record {
                input: &input,
                seen: &mut seen,
                out: &mut out,
                n,
            },
        );
        let spectral = seen.iter().map(|v| v.norm_sqr()).sum::<f32>() / (n * n) as f32;
        assert!((energy - spectral).abs() < 1e-4 * energy);
    }
}
