//! Native solver throughput: one ePIE epoch at N = 64 and N = 128 (positions per second, the
//! peers' geometry: a 4N x 4N object, random integer patches) and the bare FFT round trip at
//! the same N (frames per second: the bound an epoch is measured against, done the way the
//! solver does it). `ml_epoch`: one ml epoch (one full-batch gradient: one round trip per
//! position, as ePIE) against one ePIE epoch on the same data (whole counts, about 1e4 per
//! pattern), ml on 1 and 2 threads; the ratio of the medians is the figure issue 12 asks for. The pty-chi comparison is
//! `benches/peers/ptychi_compare.sh` (`--study DIR` for LSQML on a study's files).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use num_complex::Complex32;
use recon::fft::{Fft2, Plain};
use recon::{Algorithm, Engine, MlEngine, Settings, synthetic};
use std::hint::black_box;

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
        let input: Vec<Complex32> = (0..n * n)
            .map(|i| Complex32::new((i as f32 * 0.37).sin(), 0.5))
            .collect();
        let mut a = vec![Complex32::new(0.0, 0.0); n * n];
        let mut spec = a.clone();
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("frames", n), &n, |b, _| {
            b.iter(|| {
                fft.round_trip(&mut a, &mut spec, &mut Plain(&input));
                black_box(a[1])
            })
        });
    }
    group.finish();
}

fn ml_epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("recon_ml_vs_epie");
    group.sample_size(10);
    // The default study's N with a baseline split's count of positions.
    let (n, count) = (128, 300);
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
        "ml_epoch: {:.1} % of detector pixels count zero",
        100.0 * zero as f64 / data.diffraction.len() as f64
    );
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

criterion_group!(benches, epoch, fft_round_trip, ml_epoch);
criterion_main!(benches);
