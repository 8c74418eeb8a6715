//! Synthetic scans for tests and benches: a fixed stream of uniform numbers and the fly64-like
//! random scan the selection is measured on.

/// SplitMix64 uniforms in [0, 1) from `seed`: fixtures and benches need a fixed, dependency-free
/// stream, not a good one.
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` uniformly random (x, y) centres over [64, 400)² px: the original fly64 scan's area
/// (N = 128 on a 464 px object), x then y drawn per point.
pub fn fly64_points(seed: u64, n: usize) -> Vec<(f64, f64)> {
    let mut next = uniform(seed);
    (0..n)
        .map(|_| (64.0 + 336.0 * next(), 64.0 + 336.0 * next()))
        .collect()
}
