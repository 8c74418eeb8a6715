//! Seeded random streams: one ChaCha8 stream per purpose, dose and position, so that every
//! draw is a pure function of (seed, purpose, dose, position) whatever the thread count.
//!
//! The per-pixel Poisson draws (one or two 64-bit words per pixel, 16,384 pixels per pattern
//! at N = 128) use xoshiro256++ seeded from that position's ChaCha8 stream: ChaCha8 costs
//! about 2.5x more per random bit, and the noise step is the simulator's hot loop.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// What a stream is used for; part of the key so that purposes never share draws.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Purpose {
    /// Scan positions.
    Positions = 1,
    /// The built-in object.
    Object = 2,
    /// Poisson counts.
    Noise = 3,
}

/// The name recorded in `_metadata`.
pub const RNG_NAME: &str = "ChaCha8 (rand_chacha 0.10) keyed by (seed, purpose, dose bits), stream = position index; \
     noise: xoshiro256++ per (dose, position) seeded from that stream";

/// A stream for `purpose`. `dose` is the dose in photons (0 when the purpose has none): the
/// key holds its bits, so `--dose 1e4` alone gives the same noise as the full study's 1e4.
pub fn stream(seed: u64, purpose: Purpose, dose: f64, index: u64) -> Stream {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(purpose as u64).to_le_bytes());
    key[16..24].copy_from_slice(&dose.to_bits().to_le_bytes());
    key[24..].copy_from_slice(b"doseovlp");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index);
    Stream(rng)
}

/// A seeded stream of uniform draws.
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// 32 random bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi) (never hi, even after rounding).
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        let v = lo + (hi - lo) * self.uniform();
        if v >= hi { hi.next_down().max(lo) } else { v }
    }
}

/// xoshiro256++ (Blackman & Vigna 2019) seeded from a ChaCha8 stream: the per-pixel
/// generator of the noise step.
#[derive(Clone)]
pub struct PixelRng {
    s: [u64; 4],
}

impl PixelRng {
    /// The noise generator of one (dose, position).
    pub fn new(seed: u64, dose: f64, position: u64) -> Self {
        let mut chacha = stream(seed, Purpose::Noise, dose, position);
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = chacha.next_u64();
        }
        if s == [0; 4] {
            // The one state xoshiro cannot leave (probability 2^-256).
            s[0] = 1;
        }
        PixelRng { s }
    }

    /// 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    #[inline(always)]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| stream(42, Purpose::Noise, 1e3, 7).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let first = |s: u64, p, d, i| stream(s, p, d, i).next_u64();
        let base = first(42, Purpose::Noise, 1e3, 7);
        assert_ne!(base, first(43, Purpose::Noise, 1e3, 7));
        assert_ne!(base, first(42, Purpose::Positions, 1e3, 7));
        assert_ne!(base, first(42, Purpose::Noise, 1e4, 7));
        assert_ne!(base, first(42, Purpose::Noise, 1e3, 8));
    }

    #[test]
    fn xoshiro_matches_the_reference() {
        // Reference output of xoshiro256++ from state [1, 2, 3, 4] (Vigna's C code).
        let mut r = PixelRng { s: [1, 2, 3, 4] };
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, [41943041, 58720359, 3588806011781223]);
        assert_ne!(
            PixelRng::new(1, 1e3, 0).next_u64(),
            PixelRng::new(1, 1e3, 1).next_u64()
        );
    }

    #[test]
    fn uniform_in_stays_in_range() {
        let mut s = stream(1, Purpose::Positions, 0.0, 0);
        for _ in 0..10_000 {
            let v = s.uniform_in(64.0, 400.0);
            assert!((64.0..400.0).contains(&v));
        }
    }
}
