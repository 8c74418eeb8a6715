//! Deterministic elementary functions (exp, ln, sin/cos, ln k!) in plain IEEE-754 arithmetic.
//!
//! Why not `f64::exp` and friends: they call the C library, whose results may differ in the last
//! bit between library versions and between its own CPU-specific variants (glibc picks FMA or
//! SSE2 code at run time). Seeded noise is only reproducible byte for byte if every operation
//! that feeds it is, so the generator uses these: basic arithmetic, `sqrt`, `floor` and
//! `round` are exactly specified by IEEE-754 and give the same bits on every machine. No fused
//! multiply-add is used (Rust never contracts `a * b + c` on its own). Accuracy is about 1 ulp,
//! which the tests check against the C library.

/// ln 2 split so that `k * LN2_HI` is exact for |k| < 2^20 (fdlibm's constants, as bits).
const LN2_HI: f64 = f64::from_bits(0x3fe62e42fee00000);
const LN2_LO: f64 = f64::from_bits(0x3dea39ef35793c76);

/// 2^(j/32), j = 0..32, correctly rounded (computed with 60-digit decimals).
const EXP2_32: [u64; 32] = [
    0x3ff0000000000000,
    0x3ff059b0d3158574,
    0x3ff0b5586cf9890f,
    0x3ff11301d0125b51,
    0x3ff172b83c7d517b,
    0x3ff1d4873168b9aa,
    0x3ff2387a6e756238,
    0x3ff29e9df51fdee1,
    0x3ff306fe0a31b715,
    0x3ff371a7373aa9cb,
    0x3ff3dea64c123422,
    0x3ff44e086061892d,
    0x3ff4bfdad5362a27,
    0x3ff5342b569d4f82,
    0x3ff5ab07dd485429,
    0x3ff6247eb03a5585,
    0x3ff6a09e667f3bcd,
    0x3ff71f75e8ec5f74,
    0x3ff7a11473eb0187,
    0x3ff82589994cce13,
    0x3ff8ace5422aa0db,
    0x3ff93737b0cdc5e5,
    0x3ff9c49182a3f090,
    0x3ffa5503b23e255d,
    0x3ffae89f995ad3ad,
    0x3ffb7f76f2fb5e47,
    0x3ffc199bdd85529c,
    0x3ffcb720dcef9069,
    0x3ffd5818dcfba487,
    0x3ffdfc97337b9b5f,
    0x3ffea4afa2a490da,
    0x3fff50765b6e4540,
];

/// ln(j/64), j = 45..=91, correctly rounded.
const LN_J64: [u64; 47] = [
    0xbfd68ac83e9c6a14,
    0xbfd522ae0738a3d8,
    0xbfd3c25277333184,
    0xbfd269621134db92,
    0xbfd1178e8227e47c,
    0xbfcf991c6cb3b379,
    0xbfcd1037f2655e7b,
    0xbfca93ed3c8ad9e3,
    0xbfc823c16551a3c2,
    0xbfc5bf406b543db2,
    0xbfc365fcb0159016,
    0xbfc1178e8227e47c,
    0xbfbda727638446a2,
    0xbfb9335e5d594989,
    0xbfb4d3115d207eac,
    0xbfb08598b59e3a07,
    0xbfa894aa149fb343,
    0xbfa0415d89e74444,
    0xbf90205658935847,
    0x0000000000000000,
    0x3f8fc0a8b0fc03e4,
    0x3f9f829b0e783300,
    0x3fa77458f632dcfc,
    0x3faf0a30c01162a6,
    0x3fb341d7961bd1d1,
    0x3fb6f0d28ae56b4c,
    0x3fba926d3a4ad563,
    0x3fbe27076e2af2e6,
    0x3fc0d77e7cd08e59,
    0x3fc29552f81ff523,
    0x3fc44d2b6ccb7d1e,
    0x3fc5ff3070a793d4,
    0x3fc7ab890210d909,
    0x3fc9525a9cf456b4,
    0x3fcaf3c94e80bff3,
    0x3fcc8ff7c79a9a22,
    0x3fce27076e2af2e6,
    0x3fcfb9186d5e3e2b,
    0x3fd0a324e27390e3,
    0x3fd1675cababa60e,
    0x3fd22941fbcf7966,
    0x3fd2e8e2bae11d31,
    0x3fd3a64c556945ea,
    0x3fd4618bc21c5ec2,
    0x3fd51aad872df82d,
    0x3fd5d1bdbf5809ca,
    0x3fd686c81e9b14af,
];

/// Rounds to the nearest integer (ties to even) for |x| < 2^51 by adding and removing
/// 1.5 * 2^52: exact, and inline (`f64::round` is a library call on baseline x86_64).
#[inline(always)]
pub fn round_int(x: f64) -> f64 {
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    (x + SHIFTER) - SHIFTER
}

/// floor(x) for |x| < 2^62, inline (`f64::floor` is a library call on baseline x86_64).
#[inline(always)]
pub fn floor_int(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

/// 2^k for integer k in the normal range.
#[inline]
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// e^x, correct to about 1 ulp: x = (32 m + j) ln2/32 + r with |r| <= ln2/64, a table of
/// 2^(j/32) and a degree-6 polynomial (remainder below 4e-18).
#[inline]
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.782_712_893_384 {
        return f64::INFINITY;
    }
    if x < -745.2 {
        return 0.0;
    }
    const INV: f64 = 32.0 / std::f64::consts::LN_2;
    let kf = round_int(x * INV);
    // |kf| < 2^16 and LN2_HI has 32 significant bits: the products are exact.
    let r = (x - kf * (LN2_HI / 32.0)) - kf * (LN2_LO / 32.0);
    // q = e^r - 1 to r^6, in Estrin's scheme (shorter dependency chains than Horner's).
    let r2 = r * r;
    let r4 = r2 * r2;
    let q = (r + r2 * (1.0 / 2.0 + r * (1.0 / 6.0)))
        + r4 * ((1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0));
    let k = kf as i64;
    let t = f64::from_bits(EXP2_32[(k & 31) as usize]);
    let v = t + t * q;
    let m = k >> 5;
    if m >= -1022 {
        v * pow2(m)
    } else {
        // Subnormal result: scale in two steps.
        (v * pow2(m + 64)) * pow2(-64)
    }
}

/// Natural logarithm, correct to about 1 ulp; NaN below 0, -inf at 0: x = 2^e m with m in
/// [sqrt(1/2), sqrt(2)), m near c = j/64, ln m = ln c + 2 atanh((m - c) / (m + c)).
#[inline]
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let (mut bits, mut e) = (x.to_bits(), 0i64);
    if bits >> 52 == 0 {
        // Subnormal: normalise first.
        bits = (x * pow2(54)).to_bits();
        e -= 54;
    }
    e += ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let j = round_int(m * 64.0);
    let c = j / 64.0;
    // m - c is exact (Sterbenz); |f| <= 1/181, so the atanh series to f^7 leaves < 1e-19.
    let f = (m - c) / (m + c);
    let f2 = f * f;
    let s = f2 * (1.0 / 3.0 + f2 * (1.0 / 5.0 + f2 * (1.0 / 7.0)));
    let ln_m = 2.0 * f + 2.0 * f * s;
    let ln_c = f64::from_bits(LN_J64[j as usize - 45]);
    let e = e as f64;
    e * LN2_HI + (e * LN2_LO + (ln_c + ln_m))
}

/// (sin x, cos x), correct to about 1 ulp for |x| < 2^19 (the range the generator uses:
/// phases of a few tens of radians at most); larger |x| is reduced less accurately.
pub fn sin_cos(x: f64) -> (f64, f64) {
    // pi/2 in parts of 33 bits each plus a tail (fdlibm), so k * PIO2_n is exact for
    // |k| < 2^20.
    const PIO2_1: f64 = f64::from_bits(0x3ff921fb54400000);
    const PIO2_2: f64 = f64::from_bits(0x3dd0b4611a600000);
    const PIO2_3: f64 = f64::from_bits(0x3ba3198a2e000000);
    const PIO2_3T: f64 = f64::from_bits(0x397b839a252049c1);
    const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;
    if !x.is_finite() {
        return (f64::NAN, f64::NAN);
    }
    let k = round_int(x * TWO_OVER_PI);
    let r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3 - k * PIO2_3T;
    let r2 = r * r;
    // Taylor series on |r| <= pi/4: remainders below 1e-18.
    let mut s = 1.0 / 355_687_428_096_000.0; // 1/17!
    for c in [
        -1.0 / 1_307_674_368_000.0, // -1/15!
        1.0 / 6_227_020_800.0,
        -1.0 / 39_916_800.0,
        1.0 / 362_880.0,
        -1.0 / 5_040.0,
        1.0 / 120.0,
        -1.0 / 6.0,
    ] {
        s = s * r2 + c;
    }
    let sin_r = r + r * (r2 * s);
    let mut c = 1.0 / 20_922_789_888_000.0; // 1/16!
    for d in [
        -1.0 / 87_178_291_200.0, // -1/14!
        1.0 / 479_001_600.0,
        -1.0 / 3_628_800.0,
        1.0 / 40_320.0,
        -1.0 / 720.0,
        1.0 / 24.0,
        -0.5,
    ] {
        c = c * r2 + d;
    }
    let cos_r = 1.0 + r2 * c;
    match (k as i64).rem_euclid(4) {
        0 => (sin_r, cos_r),
        1 => (cos_r, -sin_r),
        2 => (-sin_r, -cos_r),
        _ => (-cos_r, sin_r),
    }
}

/// ln(k!): exact factorials below 16, Stirling's series above (error below 1e-15 relative);
/// values below [`LN_FACTORIAL_TABLE`] come from a table computed once with the same formulas.
#[inline]
pub fn ln_factorial(k: u64) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (0..LN_FACTORIAL_TABLE).map(ln_factorial_direct).collect());
    match table.get(k as usize) {
        Some(v) => *v,
        None => ln_factorial_direct(k),
    }
}

/// Size of the cached ln(k!) table.
const LN_FACTORIAL_TABLE: u64 = 1024;

fn ln_factorial_direct(k: u64) -> f64 {
    if k < 16 {
        let mut f = 1.0f64;
        for i in 2..=k {
            f *= i as f64;
        }
        return ln(f);
    }
    const HALF_LN_2PI: f64 = f64::from_bits(0x3fed67f1c864beb5); // ln(2 pi) / 2
    let n = (k + 1) as f64;
    let inv = 1.0 / n;
    let inv2 = inv * inv;
    let series =
        inv * (1.0 / 12.0 - inv2 * (1.0 / 360.0 - inv2 * (1.0 / 1260.0 - inv2 * (1.0 / 1680.0))));
    (n - 0.5) * ln(n) - n + HALF_LN_2PI + series
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        ((a - b) / b.abs().max(f64::MIN_POSITIVE)).abs() / f64::EPSILON
    }

    #[test]
    fn exp_matches_libm_within_two_ulps() {
        let mut x = -740.0;
        while x < 709.0 {
            assert!(
                ulps(exp(x), x.exp()) <= 2.0,
                "exp({x}) = {} vs {}",
                exp(x),
                x.exp()
            );
            x += 0.137;
        }
        for x in [0.0, 1e-300, -1e-20, 1e-8, 0.5, -0.3466, 0.3466] {
            assert!(ulps(exp(x), x.exp()) <= 1.0, "exp({x})");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(exp(800.0), f64::INFINITY);
    }

    #[test]
    fn ln_matches_libm_within_two_ulps() {
        let mut x = 1e-310;
        while x < 1e300 {
            assert!(
                ulps(ln(x), x.ln()) <= 2.0 || (ln(x) - x.ln()).abs() < 1e-300,
                "ln({x})"
            );
            x *= 1.37;
        }
        for x in [0.5, 0.999_999_999, 1.0 + 1e-12, 2.0, 10.0, 1e-3] {
            assert!(
                (ln(x) - x.ln()).abs() <= 2.0 * f64::EPSILON * x.ln().abs().max(1e-300),
                "ln({x})"
            );
        }
        assert_eq!(ln(1.0), 0.0);
        assert!(ln(-1.0).is_nan());
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn sin_cos_match_libm() {
        let mut x = -200.0;
        while x < 200.0 {
            let (s, c) = sin_cos(x);
            assert!((s - x.sin()).abs() <= 4e-16 * x.abs().max(1.0), "sin({x})");
            assert!((c - x.cos()).abs() <= 4e-16 * x.abs().max(1.0), "cos({x})");
            x += 0.0731;
        }
        assert_eq!(sin_cos(0.0), (0.0, 1.0));
    }

    #[test]
    fn inline_rounding_matches_std() {
        for x in [
            -2.5,
            -1.5,
            -0.5,
            -0.2,
            0.0,
            0.49,
            0.5,
            1.5,
            2.5,
            3.7,
            -3.7,
            1e15 + 0.5,
            -7.0,
        ] {
            assert_eq!(floor_int(x), x.floor(), "floor {x}");
            assert_eq!(round_int(x), x.round_ties_even(), "round {x}");
        }
    }

    #[test]
    fn ln_factorial_matches_sums() {
        let mut exact = 0.0f64;
        for k in 1..2000u64 {
            exact += (k as f64).ln();
            let got = ln_factorial(k);
            assert!(
                (got - exact).abs() <= 1e-13 * exact.max(1.0),
                "ln({k}!) = {got} vs {exact}"
            );
        }
        assert_eq!(ln_factorial(0), 0.0);
    }
}
