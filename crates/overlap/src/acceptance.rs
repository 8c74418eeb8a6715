//! The geometry-aware acceptance floor (original finding ACCEPTANCE-001): a dense random scan
//! can never reach a fixed 10 % acceptance at a large spacing, so the floor follows how many
//! discs of diameter S the scanned area can hold.

use crate::select::Positions;
use std::f64::consts::PI;

/// Upper bound on the geometry bound: no view needs to keep more than 10 % of a split.
pub const MAX_ACCEPTANCE_BOUND: f64 = 0.10;
/// The floor is this fraction of the geometry bound.
pub const FLOOR_FRACTION: f64 = 0.8;
/// The floor never drops below this acceptance.
pub const MIN_ACCEPTANCE_FLOOR: f64 = 0.0005;

/// Area of the axis-aligned bounding box of the positions' centres:
/// `(max x - min x) * (max y - min y)` in px², 0 for fewer than two positions or a line.
///
/// Deliberately the box of the centres, not padded by S/2: the original floor was calibrated
/// on it (fly64 dense view: 336 x 168 px, 42 of 5,088 kept against a floor of about 39).
pub fn bbox_area(positions: &Positions) -> f64 {
    positions
        .bbox()
        .map_or(0.0, |(x0, y0, x1, y1)| (x1 - x0) * (y1 - y0))
}

/// `bound = min(0.10, bbox_area / (pi (S/2)^2) / n)`: the fraction of `n` positions that
/// discs of diameter `spacing` tiling the box would hold (0 when `n` is 0).
pub fn geometry_acceptance_bound(bbox_area: f64, spacing: f64, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let disc = PI * (spacing / 2.0).powi(2);
    (bbox_area / disc / n as f64).min(MAX_ACCEPTANCE_BOUND)
}

/// `floor = max(0.0005, 0.8 bound)`: the least acceptance a view may have.
pub fn effective_min_acceptance(bound: f64) -> f64 {
    (FLOOR_FRACTION * bound).max(MIN_ACCEPTANCE_FLOOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(area: f64, spacing: f64, n: usize, bound: f64, floor: f64) {
        let b = geometry_acceptance_bound(area, spacing, n);
        assert!((b - bound).abs() < 1e-12, "bound {b} != {bound}");
        let f = effective_min_acceptance(b);
        assert!((f - floor).abs() < 1e-12, "floor {f} != {floor}");
    }

    #[test]
    fn floor_formula() {
        // fly64 train split, dense: 336 x 168 px, S = 38.4, n = 5,088.
        let dense = 336.0 * 168.0 / (PI * 19.2 * 19.2) / 5088.0;
        check(336.0 * 168.0, 38.4, 5088, dense, 0.8 * dense);
        assert!((0.8 * dense * 5088.0 - 38.99).abs() < 0.01);
        // Few positions over a large area: capped at 10 %.
        check(1e6, 10.0, 100, 0.10, 0.08);
        // Degenerate area: the minimum floor applies.
        check(0.0, 10.0, 100, 0.0, 0.0005);
        check(0.0, 10.0, 0, 0.0, 0.0005);
    }

    #[test]
    fn bbox_area_of_centres() {
        let p = Positions::new(vec![64.0, 400.0, 100.0], vec![64.0, 80.0, 232.0]).unwrap();
        assert_eq!(bbox_area(&p), 336.0 * 168.0);
        let line = Positions::new(vec![1.0, 9.0], vec![3.0, 3.0]).unwrap();
        assert_eq!(bbox_area(&line), 0.0);
        assert_eq!(bbox_area(&Positions::new(vec![], vec![]).unwrap()), 0.0);
    }
}
