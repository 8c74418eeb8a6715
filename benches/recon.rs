//! Native solver throughput: one ePIE epoch at N = 64 and N = 128 (positions per second, the
//! peers' geometry: a 4N x 4N object, random integer patches) and the bare FFT round trip at
//! the same N (frames per second: the bound an epoch is measured against, done the way the
//! solver does it). `ml_epoch`: one ml epoch (one full-batch gradient: one round trip per
//! position, as ePIE) against one ePIE epoch on the same data (whole counts, about 1e4 per
//! pattern), ml on 1 and 2 threads; the ratio of the medians is the figure issue 12 asks for.
//! `ml_fft_bound`: one ml epoch against its FFT bound on the same P = 300 positions at N = 128
//! (one forward and one inverse 2-D FFT per position, the solver's round trip with nothing in
//! its hooks, run in the engine's [`recon::CHUNKS`] parts on a pool of the same size), each on
//! 1 and 2 threads; it prints frames per second of both (medians of the samples) and the
//! epoch's share of the bound, the figure of issue 27 item 4, as the median (and quartiles)
//! of interleaved pairs (round trips, then an epoch), which see the same load. The epoch skips
//! the spectrum rows without a count (see `recon::fft::Hooks::live_rows`); the share of rows
//! it transforms is printed beside it. `ml_peer bound` measures the same share on a study's
//! own split. The pty-chi comparison is
//! `benches/peers/ptychi_compare.sh` (`--study DIR` for LSQML on a study's files).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use recon::fft::{BoundFrame, Fft2};
use recon::{Algorithm, CHUNKS, Engine, MlEngine, Settings, synthetic};
use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("recon_epoch");
    group.sample_size(20);
    for (n, count) in [(64, 1000), (128, 400)] {
        let data = synthetic::scattered_dataset(n, count);
        let mut engine =
            Engine::new(&data, &synthetic::epie_settings(1)).expect("valid synthetic data");
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new("epie_positions", n), &n, |b, _| {
            b.iter(|| black_box(engine.run_epoch()))
        });
    }
    group.finish();
}

fn fft_round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("recon_fft_round_trip");
    for n in [64usize, 128] {
        let mut fft = Fft2::new(n);
        let mut frame = BoundFrame::new(n);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("frames", n), &n, |b, _| {
            b.iter(|| black_box(frame.round_trip(&mut fft)))
        });
    }
    group.finish();
}

/// The ml benches' data: `count` positions at N, in whole counts (see [`ml_epoch`]).
fn counted_dataset(n: usize, count: usize) -> recon::Dataset {
    let mut data = synthetic::scattered_dataset(n, count);
    // Counts as the Poisson model sees them: about 1e4 photons per pattern, rounded to whole
    // counts, so that most pixels count none as in the study's files (noiseless amplitudes
    // would count at every pixel and cost a logarithm each).
    let per_pattern: f64 = data
        .diffraction
        .iter()
        .map(|&a| f64::from(a) * f64::from(a))
        .sum::<f64>()
        / count as f64;
    let s = (1e4 / per_pattern).sqrt();
    data.diffraction
        .mapv_inplace(|a| ((f64::from(a) * s).powi(2).round().sqrt() / s) as f32);
    data.intensity_scale = Some(s);
    let zero = data.diffraction.iter().filter(|&&a| a == 0.0).count();
    eprintln!(
        "ml data: {:.1} % of detector pixels count zero",
        100.0 * zero as f64 / data.diffraction.len() as f64
    );
    data
}

fn ml_epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("recon_ml_vs_epie");
    group.sample_size(10);
    // The default study's N with a baseline split's count of positions.
    let (n, count) = (128, 300);
    let data = counted_dataset(n, count);
    group.throughput(Throughput::Elements(count as u64));
    let mut epie = Engine::new(&data, &synthetic::epie_settings(1)).expect("valid data");
    group.bench_function("epie_epoch", |b| b.iter(|| black_box(epie.run_epoch())));
    let settings = Settings {
        algorithm: Algorithm::Ml,
        smoothness: 10.0,
        ..synthetic::epie_settings(1)
    };
    for threads in [1usize, 2] {
        let mut ml = MlEngine::new(&data, &settings, threads).expect("valid data");
        group.bench_with_input(
            BenchmarkId::new("ml_epoch_threads", threads),
            &threads,
            |b, _| b.iter(|| black_box(ml.run_epoch())),
        );
    }
    group.finish();
}

/// One chunk of the bound's round trips: its own plan and buffers, as an engine chunk has.
struct BoundPart {
    fft: Fft2,
    frame: BoundFrame,
    frames: usize,
}

/// Times `iters` runs of `run`, keeping each run's seconds per iteration in `log` (the last
/// `sample_size` entries are the measured samples; the warm-up's come before them).
fn timed(iters: u64, log: &RefCell<Vec<f64>>, mut run: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        run();
    }
    let d = t.elapsed();
    log.borrow_mut().push(d.as_secs_f64() / iters as f64);
    d
}

fn median_of_last(log: &RefCell<Vec<f64>>, samples: usize) -> f64 {
    let log = log.borrow();
    let mut last = log[log.len().saturating_sub(samples)..].to_vec();
    last.sort_by(f64::total_cmp);
    last[last.len() / 2]
}

fn ml_fft_bound(c: &mut Criterion) {
    const SAMPLES: usize = 10;
    const ROUNDS: usize = 41;
    let mut group = c.benchmark_group("recon_ml_fft_bound");
    group.sample_size(SAMPLES);
    let (n, count) = (128, 300);
    let data = counted_dataset(n, count);
    let settings = Settings {
        algorithm: Algorithm::Ml,
        smoothness: 10.0,
        ..synthetic::epie_settings(1)
    };
    group.throughput(Throughput::Elements(count as u64));
    let mut table = Vec::new();
    let mut rows_computed = 1.0;
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("bench pool");
        let mut parts: Vec<BoundPart> = (0..CHUNKS)
            .map(|c| BoundPart {
                fft: Fft2::new(n),
                frame: BoundFrame::new(n),
                frames: count * (c + 1) / CHUNKS - count * c / CHUNKS,
            })
            .collect();
        let fft_log = RefCell::new(Vec::new());
        group.bench_with_input(
            BenchmarkId::new("fft_round_trips_threads", threads),
            &threads,
            |b, _| {
                b.iter_custom(|iters| {
                    timed(iters, &fft_log, || {
                        pool.install(|| {
                            parts.par_iter_mut().for_each(|p| {
                                for _ in 0..p.frames {
                                    black_box(p.frame.round_trip(&mut p.fft));
                                }
                            })
                        });
                    })
                })
            },
        );
        let mut ml = MlEngine::new(&data, &settings, threads).expect("valid data");
        rows_computed = ml.spectrum_rows_computed();
        let epoch_log = RefCell::new(Vec::new());
        group.bench_with_input(
            BenchmarkId::new("ml_epoch_threads", threads),
            &threads,
            |b, _| {
                b.iter_custom(|iters| {
                    timed(iters, &epoch_log, || {
                        black_box(ml.run_epoch());
                    })
                })
            },
        );
        if !fft_log.borrow().is_empty() && !epoch_log.borrow().is_empty() {
            // The ratio from interleaved pairs (a batch of round trips, then an epoch, ROUNDS
            // times): on a shared machine the load drifts between criterion's two sample runs,
            // and a pair sees the same load.
            let mut ratios = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                let t = Instant::now();
                pool.install(|| {
                    parts.par_iter_mut().for_each(|p| {
                        for _ in 0..p.frames {
                            black_box(p.frame.round_trip(&mut p.fft));
                        }
                    })
                });
                let fft_s = t.elapsed().as_secs_f64();
                let t = Instant::now();
                black_box(ml.run_epoch());
                ratios.push(fft_s / t.elapsed().as_secs_f64());
            }
            ratios.sort_by(f64::total_cmp);
            let fft = count as f64 / median_of_last(&fft_log, SAMPLES);
            let epoch = count as f64 / median_of_last(&epoch_log, SAMPLES);
            let q = |f: f64| 100.0 * ratios[((ROUNDS - 1) as f64 * f).round() as usize];
            table.push((threads, epoch, fft, q(0.25), q(0.5), q(0.75)));
        }
    }
    group.finish();
    // The epoch transforms only the spectrum rows with a count along ky (the projection
    // zeroes the rest); the bound is full round trips. Said beside the share, so that the
    // share is read with it (the default study computes 36-63 % of the rows, by dose).
    eprintln!(
        "ml_fft_bound: the epoch transforms {:.1} % of spectrum rows along ky (those with a count)",
        100.0 * rows_computed
    );
    for (threads, epoch, fft, lo, mid, hi) in table {
        eprintln!(
            "ml_fft_bound threads={threads}: epoch {epoch:.0} frames/s, FFT round trips \
             {fft:.0} frames/s (medians of the samples); epoch at {mid:.1} % of the FFT bound \
             (median of {ROUNDS} interleaved pairs, quartiles {lo:.1}-{hi:.1} %)"
        );
    }
}

criterion_group!(benches, epoch, fft_round_trip, ml_epoch, ml_fft_bound);
criterion_main!(benches);
