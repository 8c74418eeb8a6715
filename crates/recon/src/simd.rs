//! The engines' hot loops compiled twice: for AVX2 and FMA, taken when the CPU has them, and
//! for the build's baseline target (x86-64: SSE2 vectors, half as wide).
//!
//! Only the instruction set changes, not the arithmetic: Rust never contracts `a * b + c`
//! into a fused multiply-add, the loops' summation orders are written out, `sqrt` and
//! division are the same IEEE operations either way, and the logarithm is plain arithmetic
//! (`kernels::ln`, not a libm call whose bits could differ between libm builds); so both
//! copies give the same bits
//! (the goldens and the thread-count tests check them on this machine).

/// True where [`fast_fn!`] takes the AVX2 copy (detected once, then a cached load).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx2() -> bool {
    #[cfg(test)]
    if FORCE_PORTABLE.with(std::cell::Cell::get) {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(test)]
thread_local! {
    static FORCE_PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread on the portable copies (`portable`) or the detected ones: the
/// test that both give the same bits.
#[cfg(test)]
pub(crate) fn with_portable<R>(portable: bool, f: impl FnOnce() -> R) -> R {
    let before = FORCE_PORTABLE.with(|c| c.replace(portable));
    let out = f();
    FORCE_PORTABLE.with(|c| c.set(before));
    out
}

/// Defines a function whose body is compiled twice (see the module docs). The body goes into
/// an `#[inline(always)]` function, so what it calls with `#[inline(always)]` is compiled
/// into each copy too; non-generic signatures only.
macro_rules! fast_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if $crate::simd::has_avx2() {
                    // SAFETY: `avx2` needs AVX2 and FMA, which this CPU was just found to have.
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use fast_fn;

/// In a function returning `()`: runs `$avx` (a call into an AVX2 function of this module) and
/// returns when the CPU has AVX2 and FMA, else goes on to `$portable`. The one entry of
/// `cmul` and `transpose`, after the same check as [`fast_fn!`].
macro_rules! avx2_or {
    ($avx:expr, $portable:expr) => {{
        #[cfg(target_arch = "x86_64")]
        if $crate::simd::has_avx2() {
            // SAFETY: `$avx` needs AVX2, which this CPU was just found to have.
            #[allow(unsafe_code)]
            return unsafe { $avx };
        }
        $portable
    }};
}

/// The unaligned loads and stores of four `Complex32` that `cmul` and `transpose` share (the
/// only memory access of this module's `unsafe`).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod four {
    use num_complex::Complex32;
    use std::arch::x86_64::*;

    /// Four complex values (`Complex32` is `repr(C)` {re, im}).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn load(v: &[Complex32; 4]) -> __m256 {
        // SAFETY: 4 values are 8 f32, read unaligned.
        unsafe { _mm256_loadu_ps(v.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn store(v: &mut [Complex32; 4], x: __m256) {
        // SAFETY: as in `load`.
        unsafe { _mm256_storeu_ps(v.as_mut_ptr().cast(), x) }
    }
}

/// Complex products over slices, as `num_complex` defines them (`re = a.re b.re - a.im b.im`,
/// `im = a.re b.im + a.im b.re`, each product and sum rounded on its own): on AVX2 CPUs on
/// interleaved lanes (duplicate the real and imaginary parts, swap the pairs, `addsub`), which
/// the compiler does not find by itself. It splits the lanes into real and imaginary vectors and
/// interleaves them back (six to eight shuffles per four products where `addsub` needs three): the
/// exit wave and the drain were shuffle-bound. Every lane is the same IEEE product, sum or
/// difference as the scalar formula's (operands swapped only where the operation commutes,
/// `-(a b) = (-a) b` exactly), so the bits are the scalar loop's, which the portable copies run.
pub(crate) mod cmul {
    use num_complex::Complex32;

    /// `out[i] = p[i] * o[i]`.
    #[inline(always)]
    pub(crate) fn mul_into(out: &mut [Complex32], p: &[Complex32], o: &[Complex32]) {
        let len = out.len();
        let (p, o) = (&p[..len], &o[..len]);
        avx2_or!(avx::mul_into(out, p, o), scalar_mul_into(out, p, o))
    }

    /// `g[i] += conj(p[i]) * b[i]`.
    #[inline(always)]
    pub(crate) fn conj_mul_add(g: &mut [Complex32], p: &[Complex32], b: &[Complex32]) {
        let len = g.len();
        let (p, b) = (&p[..len], &b[..len]);
        avx2_or!(avx::conj_mul_add(g, p, b), scalar_conj_mul_add(g, p, b))
    }

    /// [`mul_into`] one value at a time: the portable path and the AVX2 path's tail.
    #[inline(always)]
    fn scalar_mul_into(out: &mut [Complex32], p: &[Complex32], o: &[Complex32]) {
        for ((b, o), p) in out.iter_mut().zip(o).zip(p) {
            *b = p * o;
        }
    }

    /// [`conj_mul_add`] one value at a time: the portable path and the AVX2 path's tail.
    #[inline(always)]
    fn scalar_conj_mul_add(g: &mut [Complex32], p: &[Complex32], b: &[Complex32]) {
        for ((g, b), p) in g.iter_mut().zip(b).zip(p) {
            *g += p.conj() * b;
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod avx {
        use crate::simd::four::{load, store};
        use num_complex::Complex32;
        use std::arch::x86_64::*;

        /// `p * o` on four pairs: (o.re p.re - o.im p.im, o.im p.re + o.re p.im).
        #[target_feature(enable = "avx2")]
        #[inline]
        fn product(p: __m256, o: __m256) -> __m256 {
            let re = _mm256_moveldup_ps(p);
            let im = _mm256_movehdup_ps(p);
            let swapped = _mm256_permute_ps(o, 0b1011_0001);
            _mm256_addsub_ps(_mm256_mul_ps(o, re), _mm256_mul_ps(swapped, im))
        }

        /// # Safety
        /// AVX2.
        #[target_feature(enable = "avx2")]
        pub(super) fn mul_into(out: &mut [Complex32], p: &[Complex32], o: &[Complex32]) {
            let whole = out.len() / 4 * 4;
            let (head, tail) = out.split_at_mut(whole);
            for ((b, p), o) in head
                .as_chunks_mut::<4>()
                .0
                .iter_mut()
                .zip(p.as_chunks::<4>().0)
                .zip(o.as_chunks::<4>().0)
            {
                store(b, product(load(p), load(o)));
            }
            super::scalar_mul_into(tail, &p[whole..], &o[whole..]);
        }

        /// # Safety
        /// AVX2.
        #[target_feature(enable = "avx2")]
        pub(super) fn conj_mul_add(g: &mut [Complex32], p: &[Complex32], b: &[Complex32]) {
            let whole = g.len() / 4 * 4;
            let (head, tail) = g.split_at_mut(whole);
            // conj(p) = (p.re, -p.im): the sign of the odd lanes flipped (exact).
            let conj = _mm256_setr_ps(0.0, -0.0, 0.0, -0.0, 0.0, -0.0, 0.0, -0.0);
            for ((g, p), b) in head
                .as_chunks_mut::<4>()
                .0
                .iter_mut()
                .zip(p.as_chunks::<4>().0)
                .zip(b.as_chunks::<4>().0)
            {
                let q = _mm256_xor_ps(load(p), conj);
                store(g, _mm256_add_ps(load(g), product(q, load(b))));
            }
            super::scalar_conj_mul_add(tail, &p[whole..], &b[whole..]);
        }
    }
}

/// The round trip's transposed writes of an 8-row block
/// ([`crate::fft::Fft2::round_trip`]): on AVX2 CPUs four columns at a time, 4 x 4 blocks of
/// 8-byte values swapped in registers (unpack, then swap the 128-bit halves), where the
/// compiler copies one value per load and store. They were about a quarter of the chunk loop.
/// Values are moved, never computed on: the bits are the same on every path.
pub(crate) mod transpose {
    use num_complex::Complex32;

    /// `dst[c * n + r0 + i] = rows[i * n + c]` for the 8 rows of `rows` (8 x n, all of a
    /// block) and each destination row `c` that `keep`s; `dst` is n x n.
    #[inline(always)]
    pub(crate) fn block8(
        rows: &[Complex32],
        dst: &mut [Complex32],
        r0: usize,
        n: usize,
        keep: impl Fn(usize) -> bool,
    ) {
        assert!(rows.len() == 8 * n && r0 + 8 <= n && dst.len() == n * n);
        avx2_or!(
            avx::block8(rows, dst, r0, n, &keep),
            columns(rows, dst, r0, n, 0, &keep)
        )
    }

    /// The destination rows `from..n` one value at a time.
    #[inline(always)]
    fn columns(
        rows: &[Complex32],
        dst: &mut [Complex32],
        r0: usize,
        n: usize,
        from: usize,
        keep: &impl Fn(usize) -> bool,
    ) {
        let src: [&[Complex32]; 8] = std::array::from_fn(|i| &rows[i * n..][..n]);
        for (c, out) in dst.chunks_exact_mut(n).enumerate().skip(from) {
            if !keep(c) {
                continue;
            }
            for (o, row) in out[r0..r0 + 8].iter_mut().zip(&src) {
                *o = row[c];
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod avx {
        use crate::simd::four;
        use num_complex::Complex32;
        use std::arch::x86_64::*;

        /// Four complex values as four 8-byte lanes (moved, never computed on).
        #[target_feature(enable = "avx2")]
        #[inline]
        fn load(v: &[Complex32; 4]) -> __m256d {
            _mm256_castps_pd(four::load(v))
        }

        #[target_feature(enable = "avx2")]
        #[inline]
        fn store(v: &mut [Complex32; 4], x: __m256d) {
            four::store(v, _mm256_castpd_ps(x));
        }

        /// Columns 0..4 of rows a, b, c, d (one register each) as four registers, one column
        /// each: [a_k, b_k, c_k, d_k].
        #[target_feature(enable = "avx2")]
        #[inline]
        fn four_by_four(a: __m256d, b: __m256d, c: __m256d, d: __m256d) -> [__m256d; 4] {
            let (t0, t1) = (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
            let (t2, t3) = (_mm256_unpacklo_pd(c, d), _mm256_unpackhi_pd(c, d));
            [
                _mm256_permute2f128_pd(t0, t2, 0x20),
                _mm256_permute2f128_pd(t1, t3, 0x20),
                _mm256_permute2f128_pd(t0, t2, 0x31),
                _mm256_permute2f128_pd(t1, t3, 0x31),
            ]
        }

        /// # Safety
        /// AVX2.
        #[target_feature(enable = "avx2")]
        pub(super) fn block8(
            rows: &[Complex32],
            dst: &mut [Complex32],
            r0: usize,
            n: usize,
            keep: &impl Fn(usize) -> bool,
        ) {
            let src: [&[Complex32]; 8] = std::array::from_fn(|i| &rows[i * n..][..n]);
            let whole = n / 4 * 4;
            for c in (0..whole).step_by(4) {
                let kept = [keep(c), keep(c + 1), keep(c + 2), keep(c + 3)];
                if kept == [false; 4] {
                    continue;
                }
                let r: [__m256d; 8] = std::array::from_fn(|i| {
                    load(src[i][c..c + 4].try_into().expect("four values"))
                });
                let top = four_by_four(r[0], r[1], r[2], r[3]);
                let bottom = four_by_four(r[4], r[5], r[6], r[7]);
                for k in 0..4 {
                    if kept[k] {
                        let out = &mut dst[(c + k) * n + r0..][..8];
                        let (lo, hi) = out.split_at_mut(4);
                        store(lo.try_into().expect("four values"), top[k]);
                        store(hi.try_into().expect("four values"), bottom[k]);
                    }
                }
            }
            super::columns(rows, dst, r0, n, whole, keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cmul::{conj_mul_add, mul_into};
    use num_complex::Complex32;

    /// The products on AVX2 lanes equal the scalar formula's bits, tails (lengths not a
    /// multiple of 4), signed zeros, subnormals and large values included.
    #[test]
    fn complex_products_equal_the_scalar_formula_bit_for_bit() {
        let special = [0.0, -0.0, 1e-40, -3.0e38, 1.0 / 3.0, -7.25, 2e20, 1e-20];
        let value = |i: usize, k: usize| {
            let x = ((i * 7 + k * 13) as f32 * 0.731).sin() * 1e3;
            if (i + k).is_multiple_of(5) {
                special[(i + k) % special.len()]
            } else {
                x
            }
        };
        for len in 0..=19 {
            let make = |k: usize| -> Vec<Complex32> {
                (0..len)
                    .map(|i| Complex32::new(value(i, k), value(i, k + 1)))
                    .collect()
            };
            let (p, o, g0) = (make(0), make(2), make(4));
            let bits = |v: &[Complex32]| -> Vec<(u32, u32)> {
                v.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
            };
            for portable in [false, true] {
                let (out, g) = super::with_portable(portable, || {
                    let mut out = vec![Complex32::new(9.0, 9.0); len];
                    mul_into(&mut out, &p, &o);
                    let mut g = g0.clone();
                    conj_mul_add(&mut g, &p, &o);
                    (out, g)
                });
                let want: Vec<_> = p.iter().zip(&o).map(|(p, o)| p * o).collect();
                assert_eq!(
                    bits(&out),
                    bits(&want),
                    "p * o, len {len}, portable {portable}"
                );
                let want: Vec<_> = g0
                    .iter()
                    .zip(p.iter().zip(&o))
                    .map(|(g, (p, b))| g + p.conj() * b)
                    .collect();
                assert_eq!(
                    bits(&g),
                    bits(&want),
                    "g + conj(p) b, len {len}, portable {portable}"
                );
            }
        }
    }

    /// The transposed block equals the one-value-at-a-time copy on every path, for sides that
    /// are not a multiple of 4 and destination rows left out.
    #[test]
    fn the_block_transpose_moves_every_kept_value_and_nothing_else() {
        for n in [8, 10, 12, 16, 19] {
            let rows: Vec<Complex32> = (0..8 * n)
                .map(|i| Complex32::new(i as f32, -(i as f32) - 0.5))
                .collect();
            let keep = |c: usize| c % 3 != 1;
            for r0 in [0, n - 8] {
                let mut want = vec![Complex32::new(f32::NAN, 7.0); n * n];
                for i in 0..8 {
                    for c in (0..n).filter(|&c| keep(c)) {
                        want[c * n + r0 + i] = rows[i * n + c];
                    }
                }
                for portable in [false, true] {
                    let mut got = vec![Complex32::new(f32::NAN, 7.0); n * n];
                    super::with_portable(portable, || {
                        super::transpose::block8(&rows, &mut got, r0, n, keep)
                    });
                    let bits = |v: &[Complex32]| -> Vec<(u32, u32)> {
                        v.iter().map(|c| (c.re.to_bits(), c.im.to_bits())).collect()
                    };
                    assert_eq!(
                        bits(&got),
                        bits(&want),
                        "n {n}, r0 {r0}, portable {portable}"
                    );
                }
            }
        }
    }
}
