//! Phase C simulation throughput (patterns per second) at N = 64 and N = 128, on 1 and 2
//! threads, with a breakdown (FFT alone, Poisson alone). Workload as the NumPy peer
//! (`../shared/peers/bench_forward_numpy.py`): a 4N x 4N object, 2,000 positions, about 1e6
//! photons per pattern; the study doses 1e3 and 1e5 too. Our positions are non-integer, so we
//! also pay for bilinear patches (the peer slices integer windows), and we store Y.
//! Run: `cargo bench --bench simulate`; the peer: `benches/peers/forward_numpy.sh`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use generate::fft::Plans;
use generate::forward::{Inputs, simulate};
use generate::rng::PixelRng;
use generate::{builtin_object, builtin_probe, poisson, scan_positions};
use num_complex::Complex32;
use std::hint::black_box;
use std::time::Duration;

const NPOS: usize = 2000;

struct Setup {
    object: ndarray::Array2<Complex32>,
    probe: ndarray::Array2<Complex32>,
    xs: Vec<f64>,
    ys: Vec<f64>,
}

fn setup(n: usize) -> Setup {
    let object = builtin_object(4 * n, n, 3.0, 42);
    let probe = builtin_probe(n, 0.6);
    let (xs, ys) = scan_positions(NPOS, object.dim(), n, 42);
    Setup {
        object,
        probe,
        xs,
        ys,
    }
}

fn forward(c: &mut Criterion) {
    for n in [64usize, 128] {
        let s = setup(n);
        let inputs = Inputs {
            object: s.object.view(),
            probe: s.probe.view(),
            xcoords: &s.xs,
            ycoords: &s.ys,
            seed: 42,
        };
        let mut group = c.benchmark_group(format!("simulate_N{n}"));
        group.throughput(Throughput::Elements(NPOS as u64));
        group
            .sample_size(15)
            .measurement_time(Duration::from_secs(8));
        for dose in [1e6, 1e5, 1e3] {
            for threads in [1usize, 2] {
                let id = BenchmarkId::new(format!("dose{dose:.0e}"), format!("{threads}t"));
                group.bench_function(id, |b| {
                    b.iter(|| simulate(black_box(&inputs), &[dose], threads, &|_, _| {}).unwrap())
                });
            }
        }
        group.finish();

        // Breakdown on one thread, per pattern.
        let mut group = c.benchmark_group(format!("stage_N{n}"));
        group.throughput(Throughput::Elements(1));
        let plans = Plans::<f32>::new(n);
        let mut fft = plans.workspace();
        let mut buf: Vec<Complex32> = s.probe.iter().copied().collect();
        group.bench_function("fft2_forward", |b| {
            b.iter(|| {
                buf.copy_from_slice(s.probe.as_slice().unwrap());
                black_box(fft.forward_transposed(&mut buf)[1]);
            })
        });
        let mut patch = vec![Complex32::new(0.0, 0.0); n * n];
        group.bench_function("bilinear_patch", |b| {
            b.iter(|| {
                generate::extract_patch(&s.object.view(), s.xs[7], s.ys[7], black_box(&mut patch))
            })
        });
        // The intensity of one real pattern, scaled to each dose.
        let mut psi: Vec<Complex32> = patch
            .iter()
            .zip(s.probe.iter())
            .map(|(o, p)| o * p)
            .collect();
        let spec = fft.forward_transposed(&mut psi).to_vec();
        let intensity: Vec<f64> = spec
            .iter()
            .map(|v| f64::from(v.norm_sqr()) / (n * n) as f64)
            .collect();
        let total: f64 = intensity.iter().sum();
        let mut sampler = poisson::PatternSampler::new();
        for dose in [1e6, 1e5, 1e3] {
            let means: Vec<f32> = intensity
                .iter()
                .map(|i| (i * dose / total) as f32)
                .collect();
            let mut k = 0u64;
            group.bench_function(format!("poisson_dose{dose:.0e}"), |b| {
                b.iter(|| {
                    k += 1;
                    let mut rng = PixelRng::new(1, dose, k);
                    black_box(sampler.sample(&means, 1.0, &mut rng, |_, _| {}))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
