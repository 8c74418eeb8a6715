//! Minimum-spacing selection of scan positions (`direct` and `greedy`) and nearest-neighbour
//! distances, on a uniform cell grid so that both are near-linear in the number of positions.
//!
//! "At least S apart" is decided on squared distances in f64: two positions conflict when
//! `dx² + dy² < S²`. Every function here uses that one comparison, so a kept set never holds a
//! pair that the checker in the tests (or a user) would call too close.

use crate::error::OverlapError;
use std::cmp::Ordering;

/// Scan positions in pixels (x = column, y = row), all finite, in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Positions {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Positions {
    /// Positions from coordinate columns of equal length with finite values.
    pub fn new(xs: Vec<f64>, ys: Vec<f64>) -> Result<Positions, OverlapError> {
        if xs.len() != ys.len() {
            return Err(OverlapError::Coordinates(format!(
                "xcoords has {} values but ycoords has {}",
                xs.len(),
                ys.len()
            )));
        }
        for (name, values) in [("xcoords", &xs), ("ycoords", &ys)] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(OverlapError::Coordinates(format!(
                    "{name}[{i}] = {} is not a finite number",
                    values[i]
                )));
            }
        }
        Ok(Positions { xs, ys })
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.xs.len()
    }

    /// True when there are no positions.
    pub fn is_empty(&self) -> bool {
        self.xs.is_empty()
    }

    /// Column coordinates.
    pub fn xs(&self) -> &[f64] {
        &self.xs
    }

    /// Row coordinates.
    pub fn ys(&self) -> &[f64] {
        &self.ys
    }

    /// The positions kept by `mask`, in source order.
    pub fn filtered(&self, mask: &[bool]) -> Positions {
        let pick = |v: &[f64]| {
            v.iter()
                .zip(mask)
                .filter(|(_, keep)| **keep)
                .map(|(v, _)| *v)
                .collect()
        };
        Positions {
            xs: pick(&self.xs),
            ys: pick(&self.ys),
        }
    }

    /// Axis-aligned bounding box `(min_x, min_y, max_x, max_y)`; `None` when empty.
    pub fn bbox(&self) -> Option<(f64, f64, f64, f64)> {
        if self.is_empty() {
            return None;
        }
        let fold = |v: &[f64]| {
            v.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        };
        let (x0, x1) = fold(&self.xs);
        let (y0, y1) = fold(&self.ys);
        Some((x0, y0, x1, y1))
    }
}

/// Squared distance between positions `i` and `j`.
fn dist2(xs: &[f64], ys: &[f64], i: usize, j: usize) -> f64 {
    let dx = xs[i] - xs[j];
    let dy = ys[i] - ys[j];
    dx * dx + dy * dy
}

/// A uniform grid of square cells over a bounding box. The cell side is at least `min_side` and
/// large enough that the number of cells stays within a small multiple of the number of points
/// (`side >= sqrt(area / n)` and `side >= extent / n`), so memory is linear whatever the
/// threshold or the shape of the scan.
struct Grid {
    x0: f64,
    y0: f64,
    side: f64,
    nx: usize,
    ny: usize,
}

impl Grid {
    fn new(bbox: (f64, f64, f64, f64), n: usize, min_side: f64) -> Grid {
        let (x0, y0, x1, y1) = bbox;
        let (w, h) = (x1 - x0, y1 - y0);
        let n = n.max(1) as f64;
        let mut side = min_side.max((w * h / n).sqrt()).max(w.max(h) / n);
        if !(side > 0.0 && side.is_finite()) {
            // Every point in one place (or a zero threshold on a degenerate box): one cell.
            side = 1.0;
        }
        let cells = |extent: f64| (extent / side).floor() as usize + 1;
        Grid {
            x0,
            y0,
            side,
            nx: cells(w),
            ny: cells(h),
        }
    }

    fn cell_of(&self, x: f64, y: f64) -> (usize, usize) {
        let c = |v: f64, origin: f64, count: usize| {
            (((v - origin) / self.side).floor().max(0.0) as usize).min(count - 1)
        };
        (c(x, self.x0, self.nx), c(y, self.y0, self.ny))
    }

    fn index(&self, cx: usize, cy: usize) -> usize {
        cy * self.nx + cx
    }

    fn len(&self) -> usize {
        self.nx * self.ny
    }
}

/// Points bucketed by cell (counting sort: `order[start[c]..start[c + 1]]` are cell `c`'s
/// points, in ascending index order).
struct Buckets {
    start: Vec<usize>,
    order: Vec<usize>,
}

impl Buckets {
    fn new(grid: &Grid, xs: &[f64], ys: &[f64]) -> Buckets {
        let cells: Vec<usize> = xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| {
                let (cx, cy) = grid.cell_of(x, y);
                grid.index(cx, cy)
            })
            .collect();
        let mut start = vec![0usize; grid.len() + 1];
        for &c in &cells {
            start[c + 1] += 1;
        }
        for c in 0..grid.len() {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut order = vec![0usize; xs.len()];
        for (i, &c) in cells.iter().enumerate() {
            order[fill[c]] = i;
            fill[c] += 1;
        }
        Buckets { start, order }
    }

    fn cell(&self, c: usize) -> &[usize] {
        &self.order[self.start[c]..self.start[c + 1]]
    }
}

/// Total order on (y, x) used by `greedy` and by deduplication.
fn cmp_yx(xs: &[f64], ys: &[f64], i: usize, j: usize) -> Ordering {
    ys[i]
        .total_cmp(&ys[j])
        .then(xs[i].total_cmp(&xs[j]))
        .then(i.cmp(&j))
}

/// Distance from every position to its nearest other position (`f64::INFINITY` for a lone
/// position; 0 for a position that occurs more than once).
pub fn nearest_neighbor_distances(positions: &Positions) -> Vec<f64> {
    let (xs, ys) = (positions.xs(), positions.ys());
    let n = xs.len();
    let mut out = vec![f64::INFINITY; n];
    if n < 2 {
        return out;
    }
    // Exact duplicates are settled first (distance 0), so a pile of identical positions never
    // makes one grid cell quadratic.
    let mut sorted: Vec<usize> = (0..n).collect();
    sorted.sort_unstable_by(|&i, &j| cmp_yx(xs, ys, i, j));
    let mut unique = Vec::with_capacity(n);
    let mut k = 0;
    while k < n {
        let mut end = k + 1;
        while end < n && xs[sorted[end]] == xs[sorted[k]] && ys[sorted[end]] == ys[sorted[k]] {
            end += 1;
        }
        if end - k > 1 {
            for &i in &sorted[k..end] {
                out[i] = 0.0;
            }
        }
        unique.push(sorted[k]);
        k = end;
    }
    if unique.len() < 2 {
        return out;
    }
    let ux: Vec<f64> = unique.iter().map(|&i| xs[i]).collect();
    let uy: Vec<f64> = unique.iter().map(|&i| ys[i]).collect();
    let bbox = Positions {
        xs: ux.clone(),
        ys: uy.clone(),
    }
    .bbox()
    .expect("at least two positions");
    let grid = Grid::new(bbox, ux.len(), 0.0);
    let buckets = Buckets::new(&grid, &ux, &uy);
    for (u, &i) in unique.iter().enumerate() {
        if out[i] == 0.0 {
            continue;
        }
        out[i] = ring_search(&grid, &buckets, &ux, &uy, u).sqrt();
    }
    out
}

/// Squared distance from point `u` to its nearest other point, searching rings of cells
/// outwards until no unsearched cell can hold anything closer.
fn ring_search(grid: &Grid, buckets: &Buckets, xs: &[f64], ys: &[f64], u: usize) -> f64 {
    let (cx, cy) = grid.cell_of(xs[u], ys[u]);
    let mut best = f64::INFINITY;
    let max_ring = grid.nx.max(grid.ny);
    for r in 0..=max_ring {
        let (lo_x, hi_x) = (cx.saturating_sub(r), (cx + r).min(grid.nx - 1));
        let (lo_y, hi_y) = (cy.saturating_sub(r), (cy + r).min(grid.ny - 1));
        let mut visit = |gx: usize, gy: usize| {
            for &j in buckets.cell(grid.index(gx, gy)) {
                if j != u {
                    best = best.min(dist2(xs, ys, u, j));
                }
            }
        };
        // Only the cells at Chebyshev distance exactly r from u's cell are new.
        for gy in lo_y..=hi_y {
            if gy.abs_diff(cy) == r {
                (lo_x..=hi_x).for_each(|gx| visit(gx, gy));
            } else {
                if cx >= r {
                    visit(cx - r, gy);
                }
                if cx + r < grid.nx {
                    visit(cx + r, gy);
                }
            }
        }
        // Any point beyond ring r is at least r cell sides from u's cell, hence from u (the
        // slack covers rounding in the cell assignment).
        let reach = r as f64 * grid.side * (1.0 - 1e-9);
        if best <= reach * reach {
            break;
        }
    }
    best
}

/// `direct` selection: keep each position whose nearest neighbour is at least `spacing` away
/// (a repeated position is never kept when `spacing > 0`). Returns the keep mask in source
/// order.
pub fn select_direct(positions: &Positions, spacing: f64) -> Vec<bool> {
    let (xs, ys) = (positions.xs(), positions.ys());
    let Some(bbox) = positions.bbox() else {
        return Vec::new();
    };
    // A non-positive (or NaN) spacing forbids nothing.
    let spacing = spacing.max(0.0);
    let s2 = spacing * spacing;
    // Cells a hair wider than `spacing` (rounding in the cell assignment): a conflict can only
    // sit in the 3 x 3 cells around a point, and the search stops at the first one found.
    let grid = Grid::new(bbox, xs.len(), spacing * (1.0 + 1e-9));
    let buckets = Buckets::new(&grid, xs, ys);
    (0..xs.len())
        .map(|i| {
            let (cx, cy) = grid.cell_of(xs[i], ys[i]);
            !neighbourhood(&grid, cx, cy).any(|cell| {
                buckets
                    .cell(cell)
                    .iter()
                    .any(|&j| j != i && dist2(xs, ys, i, j) < s2)
            })
        })
        .collect()
}

/// The cells of the 3 x 3 block around `(cx, cy)` that exist, own cell first.
fn neighbourhood(grid: &Grid, cx: usize, cy: usize) -> impl Iterator<Item = usize> + '_ {
    let own = grid.index(cx, cy);
    let xs = cx.saturating_sub(1)..=(cx + 1).min(grid.nx - 1);
    let ys = cy.saturating_sub(1)..=(cy + 1).min(grid.ny - 1);
    std::iter::once(own).chain(
        ys.flat_map(move |gy| xs.clone().map(move |gx| grid.index(gx, gy)))
            .filter(move |&c| c != own),
    )
}

/// `greedy` selection: visit positions sorted by y, then x (then source index), and keep each
/// one that is at least `spacing` from every position kept so far. Returns the keep mask in
/// source order.
pub fn select_greedy(positions: &Positions, spacing: f64) -> Vec<bool> {
    let (xs, ys) = (positions.xs(), positions.ys());
    let n = xs.len();
    let mut keep = vec![false; n];
    let Some(bbox) = positions.bbox() else {
        return keep;
    };
    let spacing = spacing.max(0.0);
    let s2 = spacing * spacing;
    // Cells a hair wider than `spacing` (rounding in the cell assignment): a conflict can only
    // sit in the 3 x 3 cells around a point.
    let grid = Grid::new(bbox, n, spacing * (1.0 + 1e-9));
    let mut kept_in: Vec<Vec<u32>> = vec![Vec::new(); grid.len()];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&i, &j| cmp_yx(xs, ys, i, j));
    for i in order {
        let (cx, cy) = grid.cell_of(xs[i], ys[i]);
        let free = !neighbourhood(&grid, cx, cy).any(|cell| {
            kept_in[cell]
                .iter()
                .any(|&j| dist2(xs, ys, i, j as usize) < s2)
        });
        if free {
            keep[i] = true;
            kept_in[grid.index(cx, cy)].push(i as u32);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(points: &[(f64, f64)]) -> Positions {
        Positions::new(
            points.iter().map(|p| p.0).collect(),
            points.iter().map(|p| p.1).collect(),
        )
        .unwrap()
    }

    /// Brute-force nearest-neighbour distances, the reference for the grid search.
    fn brute_nn(p: &Positions) -> Vec<f64> {
        (0..p.len())
            .map(|i| {
                (0..p.len())
                    .filter(|&j| j != i)
                    .map(|j| dist2(p.xs(), p.ys(), i, j).sqrt())
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    fn lcg_points(n: usize, w: f64, h: f64, seed: u64) -> Positions {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let pts: Vec<(f64, f64)> = (0..n).map(|_| (next() * w, next() * h)).collect();
        pos(&pts)
    }

    #[test]
    fn nearest_neighbours_match_brute_force() {
        for (n, w, h) in [(500, 300.0, 150.0), (200, 1000.0, 1.0), (50, 1e6, 3.0)] {
            let p = lcg_points(n, w, h, n as u64);
            assert_eq!(nearest_neighbor_distances(&p), brute_nn(&p), "{n} {w} {h}");
        }
    }

    #[test]
    fn nearest_neighbours_of_clusters_and_lines() {
        // Two far clusters: the ring search must walk many empty cells.
        let p = pos(&[(0.0, 0.0), (1.0, 0.0), (1000.0, 1000.0), (1000.0, 1003.0)]);
        assert_eq!(nearest_neighbor_distances(&p), vec![1.0, 1.0, 3.0, 3.0]);
        let p = pos(&[(5.0, 5.0), (5.0, 5.0), (9.0, 5.0)]);
        assert_eq!(nearest_neighbor_distances(&p), vec![0.0, 0.0, 4.0]);
        let p = pos(&[(2.0, 2.0)]);
        assert_eq!(nearest_neighbor_distances(&p), vec![f64::INFINITY]);
        let p = pos(&[(2.0, 2.0), (2.0, 2.0)]);
        assert_eq!(nearest_neighbor_distances(&p), vec![0.0, 0.0]);
    }

    #[test]
    fn direct_keeps_isolated_positions_only() {
        let p = pos(&[
            (0.0, 0.0),
            (10.0, 0.0),
            (50.0, 0.0),
            (50.0, 30.0),
            (100.0, 100.0),
        ]);
        assert_eq!(
            select_direct(&p, 20.0),
            vec![false, false, true, true, true]
        );
        // Exactly S apart counts as far enough.
        assert_eq!(
            select_direct(&p, 30.0),
            vec![false, false, true, true, true]
        );
        assert_eq!(
            select_direct(&p, 30.5),
            vec![false, false, false, false, true]
        );
    }

    #[test]
    fn greedy_visits_by_y_then_x() {
        // Sorted order: (10,0) [y=0, x=10] comes after (0,0); (0,0) is kept first.
        let p = pos(&[(10.0, 0.0), (0.0, 0.0), (0.0, 15.0), (20.0, 15.0)]);
        assert_eq!(select_greedy(&p, 12.0), vec![false, true, true, true]);
        // Duplicates: only the first visited (lowest source index) is kept.
        let p = pos(&[(1.0, 1.0), (1.0, 1.0)]);
        assert_eq!(select_greedy(&p, 0.5), vec![true, false]);
        assert_eq!(select_greedy(&pos(&[]), 5.0), Vec::<bool>::new());
    }

    #[test]
    fn rejects_bad_coordinates() {
        let err = Positions::new(vec![1.0, f64::NAN], vec![0.0, 0.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad scan coordinates: xcoords[1] = NaN is not a finite number"
        );
        let err = Positions::new(vec![1.0], vec![]).unwrap_err();
        assert!(
            err.to_string()
                .contains("xcoords has 1 values but ycoords has 0")
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Scans on a half-pixel lattice (duplicates and exact-threshold distances happen) or on
    /// arbitrary floats.
    fn scans() -> impl Strategy<Value = Vec<(f64, f64)>> {
        prop_oneof![
            prop::collection::vec((0u32..60, 0u32..30), 0..120).prop_map(|v| v
                .into_iter()
                .map(|(x, y)| (x as f64 * 0.5, y as f64 * 0.5))
                .collect()),
            prop::collection::vec((-500.0f64..500.0, -50.0f64..50.0), 0..120),
        ]
    }

    fn positions(points: &[(f64, f64)]) -> Positions {
        Positions::new(
            points.iter().map(|p| p.0).collect(),
            points.iter().map(|p| p.1).collect(),
        )
        .unwrap()
    }

    fn kept(p: &Positions, mask: &[bool]) -> Vec<usize> {
        (0..p.len()).filter(|&i| mask[i]).collect()
    }

    fn too_close(p: &Positions, i: usize, j: usize, s: f64) -> bool {
        dist2(p.xs(), p.ys(), i, j) < s * s
    }

    proptest! {
        #[test]
        fn greedy_keeps_no_close_pair_and_is_maximal(points in scans(), s in 0.1f64..40.0) {
            let p = positions(&points);
            let mask = select_greedy(&p, s);
            let k = kept(&p, &mask);
            for (a, &i) in k.iter().enumerate() {
                for &j in &k[a + 1..] {
                    prop_assert!(!too_close(&p, i, j, s), "{i} {j} kept closer than {s}");
                }
            }
            // Every position left out conflicts with a kept one (else greedy would keep it).
            for i in (0..p.len()).filter(|&i| !mask[i]) {
                prop_assert!(k.iter().any(|&j| too_close(&p, i, j, s)), "{i} left out alone");
            }
        }

        #[test]
        fn direct_keeps_exactly_the_isolated(points in scans(), s in 0.1f64..40.0) {
            let p = positions(&points);
            let mask = select_direct(&p, s);
            for (i, &keep) in mask.iter().enumerate() {
                let isolated = (0..p.len()).all(|j| j == i || !too_close(&p, i, j, s));
                prop_assert_eq!(keep, isolated, "position {}", i);
            }
        }

        #[test]
        fn selection_ignores_input_order(points in scans(), s in 0.1f64..40.0, rot in 0usize..1000) {
            // The same scan listed in another order keeps the same coordinates.
            let p = positions(&points);
            let mut shuffled = points.clone();
            if !shuffled.is_empty() {
                let r = rot % shuffled.len();
                shuffled.rotate_left(r);
                shuffled.reverse();
            }
            let q = positions(&shuffled);
            let coords = |p: &Positions, mask: Vec<bool>| {
                let mut v: Vec<(u64, u64)> = kept(p, &mask)
                    .into_iter()
                    .map(|i| (p.xs()[i].to_bits(), p.ys()[i].to_bits()))
                    .collect();
                v.sort_unstable();
                v
            };
            prop_assert_eq!(coords(&p, select_direct(&p, s)), coords(&q, select_direct(&q, s)));
            prop_assert_eq!(coords(&p, select_greedy(&p, s)), coords(&q, select_greedy(&q, s)));
        }

        #[test]
        fn nearest_neighbours_match_brute_force_anywhere(points in scans()) {
            let p = positions(&points);
            let brute: Vec<f64> = (0..p.len())
                .map(|i| {
                    (0..p.len())
                        .filter(|&j| j != i)
                        .map(|j| dist2(p.xs(), p.ys(), i, j).sqrt())
                        .fold(f64::INFINITY, f64::min)
                })
                .collect();
            prop_assert_eq!(nearest_neighbor_distances(&p), brute);
        }
    }
}
