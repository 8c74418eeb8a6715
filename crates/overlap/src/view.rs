//! One overlap view of one dose: selection per split (`direct`, then `greedy` when too few are
//! kept), the acceptance floor, and the accept/reject decision with its reason in words.

use crate::acceptance::{bbox_area, effective_min_acceptance, geometry_acceptance_bound};
use crate::select::{Positions, select_direct, select_greedy};

/// Which selection produced a split's mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Positions whose nearest neighbour is at least S away.
    Direct,
    /// Positions visited by y then x, each kept if at least S from every kept one.
    Greedy,
}

impl Strategy {
    /// The name written in reports and `_metadata`: `direct` or `greedy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Direct => "direct",
            Strategy::Greedy => "greedy",
        }
    }
}

/// The selection of one split at one spacing threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitSelection {
    /// Keep mask over the split's positions, in source order.
    pub keep: Vec<bool>,
    /// Positions in the split.
    pub n_total: usize,
    /// Positions kept.
    pub n_accepted: usize,
    /// Positions `direct` selection alone kept.
    pub direct_n_accepted: usize,
    /// The selection that produced `keep`.
    pub strategy: Strategy,
    /// Width and height of the bounding box of the positions' centres, px.
    pub bbox_size: (f64, f64),
    /// `bbox_area(positions)`, px² (see [`crate::acceptance::bbox_area`]).
    pub bbox_area: f64,
    /// `min(0.10, bbox_area / (pi (S/2)²) / n)`.
    pub geometry_acceptance_bound: f64,
    /// `max(0.0005, 0.8 bound)`.
    pub effective_min_acceptance: f64,
    /// `n_accepted / n_total` (0 for an empty split).
    pub acceptance_rate: f64,
}

impl SplitSelection {
    /// Positions left out.
    pub fn n_rejected(&self) -> usize {
        self.n_total - self.n_accepted
    }

    /// Acceptance at or above the floor.
    pub fn meets_floor(&self) -> bool {
        self.acceptance_rate >= self.effective_min_acceptance
    }
}

/// Selects one split: `direct` first; `greedy` when direct keeps too few, i.e. its acceptance is
/// below the floor or it keeps fewer than `min_positions` (a view that direct would reject for
/// too few positions gets greedy's denser packing before it is rejected).
pub fn select_split(positions: &Positions, spacing: f64, min_positions: usize) -> SplitSelection {
    let n = positions.len();
    let area = bbox_area(positions);
    let bound = geometry_acceptance_bound(area, spacing, n);
    let floor = effective_min_acceptance(bound);
    let rate = |kept: usize| if n == 0 { 0.0 } else { kept as f64 / n as f64 };
    let direct = select_direct(positions, spacing);
    let direct_kept = direct.iter().filter(|k| **k).count();
    let (keep, strategy) = if rate(direct_kept) < floor || direct_kept < min_positions {
        (select_greedy(positions, spacing), Strategy::Greedy)
    } else {
        (direct, Strategy::Direct)
    };
    let kept = keep.iter().filter(|k| **k).count();
    let bbox_size = positions
        .bbox()
        .map_or((0.0, 0.0), |(x0, y0, x1, y1)| (x1 - x0, y1 - y0));
    SplitSelection {
        keep,
        n_total: n,
        n_accepted: kept,
        direct_n_accepted: direct_kept,
        strategy,
        bbox_size,
        bbox_area: area,
        geometry_acceptance_bound: bound,
        effective_min_acceptance: floor,
        acceptance_rate: rate(kept),
    }
}

/// One view's selection over both splits and its decision.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewSelection {
    /// View name (`dense`, `sparse`, ...).
    pub view: String,
    /// Spacing threshold S, px.
    pub spacing_threshold: f64,
    /// K, the neighbours each position is grouped with in gridsize-2 training.
    pub neighbor_count: u32,
    /// The train split.
    pub train: SplitSelection,
    /// The test split.
    pub test: SplitSelection,
}

impl ViewSelection {
    /// Selects both splits of a view.
    pub fn select(
        view: &str,
        spacing_threshold: f64,
        neighbor_count: u32,
        train: &Positions,
        test: &Positions,
    ) -> ViewSelection {
        let min = min_positions(neighbor_count);
        ViewSelection {
            view: view.to_string(),
            spacing_threshold,
            neighbor_count,
            train: select_split(train, spacing_threshold, min),
            test: select_split(test, spacing_threshold, min),
        }
    }

    /// The splits with their names, train first.
    pub fn splits(&self) -> [(&'static str, &SplitSelection); 2] {
        [("train", &self.train), ("test", &self.test)]
    }

    /// K + 1: the fewest positions a split may keep.
    pub fn min_positions(&self) -> usize {
        min_positions(self.neighbor_count)
    }

    /// Both splits meet the floor and keep at least K + 1 positions.
    pub fn accepted(&self) -> bool {
        self.splits()
            .iter()
            .all(|(_, s)| s.meets_floor() && s.n_accepted >= self.min_positions())
    }

    /// `direct` or `greedy` when both splits used it, else `mixed`.
    pub fn strategy(&self) -> &'static str {
        if self.train.strategy == self.test.strategy {
            self.train.strategy.as_str()
        } else {
            "mixed"
        }
    }

    /// Why the view is rejected, in words (what was kept, what was needed, why); `None` when
    /// it is accepted.
    pub fn rejection_reason(&self) -> Option<String> {
        if self.accepted() {
            return None;
        }
        let min = self.min_positions();
        let kept: Vec<String> = self
            .splits()
            .iter()
            .map(|(name, s)| {
                format!(
                    "{} of {} {name} positions ({})",
                    s.n_accepted,
                    s.n_total,
                    s.strategy.as_str()
                )
            })
            .collect();
        let mut problems = Vec::new();
        let short: Vec<&str> = self
            .splits()
            .iter()
            .filter(|(_, s)| s.n_accepted < min)
            .map(|(name, _)| *name)
            .collect();
        if !short.is_empty() {
            let who = if short.len() == 2 {
                "neither has that many".to_string()
            } else {
                format!("the {} split has fewer", short[0])
            };
            problems.push(format!(
                "gridsize-2 training groups each position with its K = {} nearest neighbours, so \
                 each split needs at least {min} positions and {who} (OVERSAMPLING-001)",
                self.neighbor_count
            ));
        }
        for (name, split) in self.splits() {
            if split.meets_floor() {
                continue;
            }
            let basis = if split.effective_min_acceptance > crate::acceptance::MIN_ACCEPTANCE_FLOOR
            {
                format!(
                    "0.8 x {}, the share of its {} positions that discs of diameter {} px could \
                     fill in its {} x {} px scan area",
                    percent(split.geometry_acceptance_bound),
                    split.n_total,
                    self.spacing_threshold,
                    round1(split.bbox_size.0),
                    round1(split.bbox_size.1),
                )
            } else {
                "the minimum floor".to_string()
            };
            problems.push(format!(
                "the {name} split's acceptance of {} is below its geometry-aware floor of {} \
                 ({basis}; ACCEPTANCE-001)",
                percent(split.acceptance_rate),
                percent(split.effective_min_acceptance),
            ));
        }
        Some(format!(
            "at a spacing threshold of {} px, selection kept {}; {}. A smaller spacing threshold \
             (a larger overlap fraction) or a denser, wider scan would keep more positions.",
            self.spacing_threshold,
            kept.join(" and "),
            problems.join("; ")
        ))
    }
}

/// K + 1.
fn min_positions(neighbor_count: u32) -> usize {
    neighbor_count as usize + 1
}

/// A rate as a percentage with enough digits to tell floor and acceptance apart.
fn percent(rate: f64) -> String {
    format!("{:.3} %", rate * 100.0)
}

/// One decimal, without a trailing `.0` for whole numbers.
fn round1(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    format!("{r}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_positions(cols: usize, rows: usize, step: f64) -> Positions {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                xs.push(c as f64 * step);
                ys.push(r as f64 * step);
            }
        }
        Positions::new(xs, ys).unwrap()
    }

    #[test]
    fn direct_is_enough_for_a_sparse_raster() {
        // A 10 x 10 raster at 20 px: every nearest neighbour is 20 px away.
        let p = grid_positions(10, 10, 20.0);
        let s = select_split(&p, 15.0, 8);
        assert_eq!(s.strategy, Strategy::Direct);
        assert_eq!((s.n_accepted, s.direct_n_accepted), (100, 100));
        assert!(s.meets_floor());
    }

    #[test]
    fn greedy_takes_over_when_direct_keeps_too_few() {
        // Spacing above the raster step: direct keeps nothing, greedy keeps every other column
        // and row (a 5 x 5 sub-raster at 40 px).
        let p = grid_positions(10, 10, 20.0);
        let s = select_split(&p, 30.0, 8);
        assert_eq!(s.direct_n_accepted, 0);
        assert_eq!(s.strategy, Strategy::Greedy);
        assert_eq!(s.n_accepted, 25);
        assert_eq!(s.acceptance_rate, 0.25);
        // bound = min(0.1, 180² / (pi 15²) / 100) = 0.1, floor 0.08.
        assert_eq!(s.geometry_acceptance_bound, 0.1);
        assert!((s.effective_min_acceptance - 0.08).abs() < 1e-15);
    }

    #[test]
    fn direct_above_floor_but_short_of_k_plus_one_tries_greedy() {
        // Three isolated points plus a tight cluster of 20: direct keeps the 3 isolated ones
        // (3 / 23 = 13 % >= floor), fewer than K + 1 = 8, so greedy runs.
        let mut xs = vec![0.0, 1000.0, 0.0];
        let mut ys = vec![0.0, 0.0, 1000.0];
        for k in 0..20 {
            xs.push(500.0 + k as f64 * 30.0);
            ys.push(500.0);
        }
        let p = Positions::new(xs, ys).unwrap();
        let s = select_split(&p, 50.0, 8);
        assert_eq!(s.direct_n_accepted, 3);
        assert_eq!(s.strategy, Strategy::Greedy);
        assert_eq!(s.n_accepted, 3 + 10);
    }

    #[test]
    fn rejection_reason_names_what_was_kept_and_needed() {
        let p = grid_positions(4, 2, 100.0);
        let v = ViewSelection::select("sparse", 102.4, 7, &p, &p);
        assert!(!v.accepted());
        let reason = v.rejection_reason().unwrap();
        assert_eq!(
            reason,
            "at a spacing threshold of 102.4 px, selection kept 4 of 8 train positions (greedy) \
             and 4 of 8 test positions (greedy); gridsize-2 training groups each position with \
             its K = 7 nearest neighbours, so each split needs at least 8 positions and neither \
             has that many (OVERSAMPLING-001). A smaller spacing threshold (a larger overlap fraction) or a \
             denser, wider scan would keep more positions."
        );
        let v = ViewSelection::select("dense", 100.0, 7, &p, &p);
        assert!(v.accepted(), "{:?}", v.rejection_reason());
        assert_eq!(v.rejection_reason(), None);
        assert_eq!(v.strategy(), "direct");
    }

    #[test]
    fn floor_failure_is_explained() {
        // 2,000 positions piled in a 10 x 10 px square plus a frame of 9 far positions: the box
        // is large (floor high), the spacing keeps the frame and one of the pile.
        let mut xs = vec![0.0, 500.0, 1000.0, 0.0, 1000.0, 0.0, 500.0, 1000.0, 250.0];
        let mut ys = vec![0.0, 0.0, 0.0, 500.0, 500.0, 1000.0, 1000.0, 1000.0, 250.0];
        for k in 0..2000 {
            xs.push(600.0 + (k % 40) as f64 * 0.25);
            ys.push(600.0 + (k / 40) as f64 * 0.2);
        }
        let p = Positions::new(xs, ys).unwrap();
        let v = ViewSelection::select("wide", 200.0, 7, &p, &p);
        let s = &v.train;
        assert_eq!(s.n_accepted, 10);
        assert!(!s.meets_floor());
        let reason = v.rejection_reason().unwrap();
        assert!(
            reason.contains(
                "the train split's acceptance of 0.498 % is below its geometry-aware floor of \
                 1.268 % (0.8 x 1.584 %, the share of its 2009 positions that discs of diameter \
                 200 px could fill in its 1000 x 1000 px scan area; ACCEPTANCE-001)"
            ),
            "{reason}"
        );
    }
}

#[cfg(test)]
mod fly64 {
    //! The original study's geometry: about 10,000 uniformly random positions over
    //! [64, 400)² px (N = 128 on a 464 px object), split at the middle of y into two 336 x 168
    //! px halves, K = 7.
    use super::*;

    /// Train and test positions of a fly64-like scan, split as Phase C splits them.
    fn fly64_scan(seed: u64, n: usize) -> (Positions, Positions) {
        let pts = crate::synthetic::fly64_points(seed, n);
        let (lo, hi) = pts
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.1), hi.max(p.1))
            });
        let split = lo + 0.5 * (hi - lo);
        let make = |train: bool| {
            let (xs, ys) = pts
                .iter()
                .filter(|p| (p.1 < split) == train)
                .copied()
                .unzip();
            Positions::new(xs, ys).unwrap()
        };
        (make(true), make(false))
    }

    #[test]
    fn dense_view_kept_sparse_view_rejected() {
        let (train, test) = fly64_scan(42, 10_176);
        assert!((5000..5200).contains(&train.len()), "{}", train.len());
        let dense = ViewSelection::select("dense", 38.4, 7, &train, &test);
        assert!(dense.accepted(), "{:?}", dense.rejection_reason());
        for (name, s) in dense.splits() {
            // ACCEPTANCE-001: a fixed 10 % could never be met; the floor is about 39 positions.
            assert_eq!(s.strategy, Strategy::Greedy, "{name}");
            assert!(s.acceptance_rate < 0.01, "{name}: {}", s.acceptance_rate);
            assert!(s.meets_floor(), "{name}");
            assert!((38.0..40.0).contains(&(s.effective_min_acceptance * s.n_total as f64)));
        }
        let sparse = ViewSelection::select("sparse", 102.4, 7, &train, &test);
        assert!(!sparse.accepted());
        let reason = sparse.rejection_reason().unwrap();
        assert!(reason.contains("OVERSAMPLING-001"), "{reason}");
        assert!(
            reason.contains("each split needs at least 8 positions"),
            "{reason}"
        );
        let kept = (sparse.train.n_accepted, sparse.test.n_accepted);
        assert!(kept.0 < 8 || kept.1 < 8, "{kept:?}");
    }

    /// Other scans of the same geometry: dense always reaches its floor; sparse keeps 6 to 9
    /// per split (measured over 200 scans: 7 in 26 %, 8 in 69 %, 9 in 5 %), so whether sparse is
    /// rejected depends on the scan (see the crate notes).
    #[test]
    fn kept_counts_over_many_scans() {
        for seed in 0..12 {
            let (train, test) = fly64_scan(1000 + seed, 10_176);
            let dense = ViewSelection::select("dense", 38.4, 7, &train, &test);
            assert!(
                dense.accepted(),
                "seed {seed}: {:?}",
                dense.rejection_reason()
            );
            let sparse = ViewSelection::select("sparse", 102.4, 7, &train, &test);
            for (name, s) in sparse.splits() {
                assert!(
                    (6..=9).contains(&s.n_accepted),
                    "seed {seed} {name}: {}",
                    s.n_accepted
                );
            }
        }
    }
}
