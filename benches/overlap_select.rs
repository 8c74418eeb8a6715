//! Phase D selection time for 10,000 positions (the original fly64 scan size) at the dense
//! (38.4 px) and sparse (102.4 px) thresholds: the whole split decision (direct, then greedy),
//! and each selection alone; and `direct` against an all-pairs check, in the same run.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use overlap::Positions;
use overlap::select::{nearest_neighbor_distances, select_direct, select_greedy};
use overlap::view::select_split;
use std::hint::black_box;

/// 10,000 uniformly random positions over [64, 400)² px (N = 128 on a 464 px object).
fn fly64_positions(n: usize) -> Positions {
    let (xs, ys) = overlap::synthetic::fly64_points(42, n).into_iter().unzip();
    Positions::new(xs, ys).expect("finite")
}

/// `direct` by comparing every pair: O(n²) time, the reference the grid is measured against.
fn direct_all_pairs(p: &Positions, s: f64) -> Vec<bool> {
    let (xs, ys) = (p.xs(), p.ys());
    (0..p.len())
        .map(|i| {
            (0..p.len()).all(|j| {
                let (dx, dy) = (xs[i] - xs[j], ys[i] - ys[j]);
                i == j || dx * dx + dy * dy >= s * s
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let positions = fly64_positions(10_000);
    let mut group = c.benchmark_group("overlap_select_10k");
    for (view, s) in [("dense", 38.4), ("sparse", 102.4)] {
        group.bench_with_input(BenchmarkId::new("split", view), &s, |b, &s| {
            b.iter(|| select_split(black_box(&positions), s, 8))
        });
        group.bench_with_input(BenchmarkId::new("direct", view), &s, |b, &s| {
            b.iter(|| select_direct(black_box(&positions), s))
        });
        group.bench_with_input(BenchmarkId::new("greedy", view), &s, |b, &s| {
            b.iter(|| select_greedy(black_box(&positions), s))
        });
    }
    group.bench_function("nearest_neighbors", |b| {
        b.iter(|| nearest_neighbor_distances(black_box(&positions)))
    });
    // At a 1 px threshold most positions are isolated, so checking every pair (stopping at the
    // first conflict) is truly quadratic: the ratio is what the grid saves at this size.
    group.bench_function("direct/fine_1px", |b| {
        b.iter(|| select_direct(black_box(&positions), 1.0))
    });
    group.sample_size(10);
    group.bench_function("direct_all_pairs/fine_1px", |b| {
        b.iter(|| direct_all_pairs(black_box(&positions), 1.0))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
