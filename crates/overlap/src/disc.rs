//! The disc-overlap metric of a view: how much of the probe's disc a neighbouring position's
//! disc covers, averaged over positions, with the probe diameter taken from the probe itself.

use crate::select::{Positions, nearest_neighbor_distances};
use ndarray::ArrayView2;
use num_complex::Complex64;
use std::f64::consts::PI;

/// Fraction of the probe's intensity that the disc of diameter D holds (see [`probe_diameter`]).
pub const PROBE_ENERGY_FRACTION: f64 = 0.9;

/// Fraction of a disc of diameter `diameter` covered by an equal disc whose centre is `d` away:
/// `f(d) = [2 R² acos(d / 2R) - (d / 2) sqrt(4 R² - d²)] / (pi R²)` with `R = D / 2`;
/// `f(0) = 1`, `f(d >= D) = 0`, `f(R) ≈ 0.391`.
pub fn disc_overlap_fraction(d: f64, diameter: f64) -> f64 {
    let d = d.abs();
    if d == 0.0 {
        return 1.0;
    }
    if d >= diameter {
        return 0.0;
    }
    let r = diameter / 2.0;
    let lens = 2.0 * r * r * (d / (2.0 * r)).acos() - (d / 2.0) * (4.0 * r * r - d * d).sqrt();
    (lens / (PI * r * r)).clamp(0.0, 1.0)
}

/// Mean over distinct positions of [`disc_overlap_fraction`] to each one's nearest distinct
/// neighbour. Repeated positions count once (a duplicate says nothing about the scan's overlap);
/// 0 for fewer than two distinct positions.
pub fn mean_disc_overlap(positions: &Positions, diameter: f64) -> f64 {
    let mut pairs: Vec<(f64, f64)> = positions
        .xs()
        .iter()
        .zip(positions.ys())
        // -0.0 and 0.0 are one position.
        .map(|(&x, &y)| (x + 0.0, y + 0.0))
        .collect();
    pairs.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
    pairs.dedup();
    if pairs.len() < 2 {
        return 0.0;
    }
    let unique = Positions::new(
        pairs.iter().map(|p| p.0).collect(),
        pairs.iter().map(|p| p.1).collect(),
    )
    .expect("finite coordinates stay finite");
    let nn = nearest_neighbor_distances(&unique);
    let total: f64 = nn.iter().map(|&d| disc_overlap_fraction(d, diameter)).sum();
    total / nn.len() as f64
}

/// How the probe diameter D was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiameterRule {
    /// Twice the radius, about the intensity centroid, of the smallest disc of pixel centres
    /// holding [`PROBE_ENERGY_FRACTION`] of `sum |P|²` (at least 1 px).
    Energy90,
    /// The probe has no finite, positive intensity: D = N / 2.
    HalfPatch,
}

impl DiameterRule {
    /// Stable name written in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DiameterRule::Energy90 => "energy_90",
            DiameterRule::HalfPatch => "half_patch",
        }
    }
}

/// The probe diameter D in pixels and the rule that gave it.
///
/// D is twice the smallest radius r such that pixels whose centres lie within r of the
/// intensity centroid hold at least 90 % of the probe's total intensity `sum |P|²`, and at least
/// 1 px. A probe with no finite positive intensity falls back to N / 2 (N = the larger side).
pub fn probe_diameter(probe: ArrayView2<'_, Complex64>) -> (f64, DiameterRule) {
    let (h, w) = probe.dim();
    let fallback = (h.max(w) as f64 / 2.0, DiameterRule::HalfPatch);
    let mut total = 0.0;
    let (mut sx, mut sy) = (0.0, 0.0);
    for ((row, col), p) in probe.indexed_iter() {
        let i = p.norm_sqr();
        total += i;
        sx += i * col as f64;
        sy += i * row as f64;
    }
    if !(total > 0.0 && total.is_finite()) {
        return fallback;
    }
    let (cx, cy) = (sx / total, sy / total);
    let mut rings: Vec<(f64, f64)> = probe
        .indexed_iter()
        .map(|((row, col), p)| {
            let (dx, dy) = (col as f64 - cx, row as f64 - cy);
            (dx * dx + dy * dy, p.norm_sqr())
        })
        .collect();
    rings.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let target = PROBE_ENERGY_FRACTION * total;
    let mut held = 0.0;
    for (r2, i) in rings {
        held += i;
        if held >= target {
            return ((2.0 * r2.sqrt()).max(1.0), DiameterRule::Energy90);
        }
    }
    // Rounding left the sum a hair short of 90 %: the whole probe.
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn disc_fraction_reference_values() {
        let d = 64.0;
        assert_eq!(disc_overlap_fraction(0.0, d), 1.0);
        let at_r = disc_overlap_fraction(32.0, d);
        // 2/3 - sqrt(3) / (2 pi) = 0.39100...
        assert!(
            (at_r - (2.0 / 3.0 - 3f64.sqrt() / (2.0 * PI))).abs() < 1e-12,
            "{at_r}"
        );
        assert!((at_r - 0.391).abs() < 5e-4);
        assert_eq!(disc_overlap_fraction(64.0, d), 0.0);
        assert_eq!(disc_overlap_fraction(100.0, d), 0.0);
        // Monotone decreasing between 0 and D.
        let values: Vec<f64> = (0..=64)
            .map(|k| disc_overlap_fraction(k as f64, d))
            .collect();
        assert!(values.windows(2).all(|w| w[1] <= w[0]), "{values:?}");
        assert!((disc_overlap_fraction(1e-9, d) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn mean_overlap_of_small_scans() {
        let p = |pts: &[(f64, f64)]| {
            Positions::new(
                pts.iter().map(|p| p.0).collect(),
                pts.iter().map(|p| p.1).collect(),
            )
            .unwrap()
        };
        assert_eq!(mean_disc_overlap(&p(&[]), 10.0), 0.0);
        assert_eq!(mean_disc_overlap(&p(&[(1.0, 1.0)]), 10.0), 0.0);
        // Duplicates collapse: one distinct position.
        assert_eq!(mean_disc_overlap(&p(&[(1.0, 1.0), (1.0, 1.0)]), 10.0), 0.0);
        // Two positions R apart, a third far away: (f(R) + f(R) + 0) / 3.
        let m = mean_disc_overlap(
            &p(&[(0.0, 0.0), (5.0, 0.0), (0.0, 5.0), (5.0, 0.0), (500.0, 0.0)]),
            10.0,
        );
        // (0,0), (5,0), (0,5) each have a neighbour at 5 = R; (500, 0) has none within D.
        assert!((m - 3.0 * disc_overlap_fraction(5.0, 10.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn probe_diameter_of_a_flat_disc() {
        // A uniform disc of radius 20 px in a 128 x 128 frame: 90 % of its energy lies within
        // 20 sqrt(0.9) ~ 19 px of the centre.
        let n = 128;
        let probe = Array2::from_shape_fn((n, n), |(r, c)| {
            let (dy, dx) = (r as f64 - 64.0, c as f64 - 64.0);
            if dx * dx + dy * dy <= 400.0 {
                Complex64::new(0.0, 1.0)
            } else {
                Complex64::new(0.0, 0.0)
            }
        });
        let (d, rule) = probe_diameter(probe.view());
        assert_eq!(rule, DiameterRule::Energy90);
        assert!((d - 2.0 * 20.0 * 0.9f64.sqrt()).abs() < 1.5, "{d}");
        // A dark probe falls back to N / 2.
        let dark = Array2::<Complex64>::zeros((n, n));
        assert_eq!(probe_diameter(dark.view()), (64.0, DiameterRule::HalfPatch));
        // A one-pixel probe is 1 px wide.
        let mut dot = Array2::<Complex64>::zeros((8, 8));
        dot[[3, 5]] = Complex64::new(2.0, 0.0);
        assert_eq!(probe_diameter(dot.view()), (1.0, DiameterRule::Energy90));
    }
}
