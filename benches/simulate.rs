//! Phase C simulation throughput (patterns per second) at N = 64 and N = 128 on 1 and 2
//! threads, with a breakdown (FFT, bilinear patch, Poisson alone).
//!
//! Headline, `peer_workload`: the NumPy peer's data (`../shared/peers/synth.py` ported: a 4N x
//! 4N object with a smooth random phase of +-1 rad and amplitude 0.8..1, the super-Gaussian
//! defocused probe scaled to 1e6 photons, 2,000 integer positions), s = 1 so the pixel means
//! are the peer's. Compare with `benches/peers/forward_numpy.sh` run in the same session.
//! `study_workload`: the built-in object and probe of the studies at the study doses (a wider
//! diffraction pattern: more pixels with means of 0.1 to 100, the Poisson sampler's costly
//! range). Output buffers are reused between iterations (`simulate_into`), as NumPy's allocator
//! reuses its heap; `allocating` shows `simulate` with fresh output memory. We also pay for
//! bilinear interpolation and store Y, which the peer does not.
//! Run: `cargo bench --bench simulate`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use generate::fft::Plans;
use generate::forward::{Inputs, Simulated, simulate, simulate_into};
use generate::rng::{PixelRng, Purpose, stream};
use generate::{builtin_object, builtin_probe, poisson, scan_positions};
use ndarray::Array2;
use num_complex::{Complex, Complex32};
use std::hint::black_box;
use std::time::Duration;

const NPOS: usize = 2000;

struct Setup {
    object: Array2<Complex32>,
    probe: Array2<Complex32>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Mean expected photons per pattern.
    dose: f64,
}

impl Setup {
    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            object: self.object.view(),
            probe: self.probe.view(),
            xcoords: &self.xs,
            ycoords: &self.ys,
            seed: 42,
        }
    }
}

/// synth.py's `make_object`: 4N x 4N, phase = Gaussian-filtered noise (sigma_f = 4 / M)
/// scaled to max |phase| = 1, amplitude 0.8 + 0.2 (phase - min) / (max - min).
fn peer_object(n: usize) -> Array2<Complex32> {
    let m = 4 * n;
    let mut rng = stream(0, Purpose::Object, 0.0, 0);
    let mut field: Vec<Complex<f64>> = (0..m * m)
        .map(|_| Complex::new(2.0 * rng.uniform() - 1.0, 0.0))
        .collect();
    let mut fft = Plans::<f64>::new(m).workspace();
    fft.transform(&mut field, false);
    let freq = |i: usize| {
        let k = if i <= (m - 1) / 2 {
            i as f64
        } else {
            i as f64 - m as f64
        };
        k / m as f64
    };
    let sigma_f = 4.0 / m as f64;
    for (i, v) in field.iter_mut().enumerate() {
        let (fy, fx) = (freq(i / m), freq(i % m));
        *v *= (-(fx * fx + fy * fy) / (2.0 * sigma_f * sigma_f)).exp();
    }
    fft.transform(&mut field, true);
    let ph: Vec<f64> = field.iter().map(|v| v.re).collect();
    let peak = ph.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let ph: Vec<f64> = ph.iter().map(|v| v / peak).collect();
    let (lo, hi) = ph
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let values = ph
        .iter()
        .map(|p| {
            let amp = 0.8 + 0.2 * (p - lo) / (hi - lo);
            Complex32::new((amp * p.cos()) as f32, (amp * p.sin()) as f32)
        })
        .collect();
    Array2::from_shape_vec((m, m), values).unwrap()
}

/// synth.py's `make_probe`: super-Gaussian disc of radius N/4, quadratic phase (pi at r =
/// N/2), scaled so that sum |P|^2 = 1e6.
fn peer_probe(n: usize) -> Array2<Complex32> {
    let c = (n as f64 - 1.0) / 2.0;
    let radius = n as f64 / 4.0;
    let p = Array2::from_shape_fn((n, n), |(y, x)| {
        let r2 = (x as f64 - c).powi(2) + (y as f64 - c).powi(2);
        let amp = (-(r2 / (radius * radius)).powi(2)).exp();
        let phase = std::f64::consts::PI * 2.0 * r2 / (n as f64 * n as f64 / 4.0) * 0.5;
        Complex::new(amp * phase.cos(), amp * phase.sin())
    });
    let scale = (1e6 / p.iter().map(|v| v.norm_sqr()).sum::<f64>()).sqrt();
    p.mapv(|v| Complex32::new((v.re * scale) as f32, (v.im * scale) as f32))
}

/// The peer's workload: integer top-left corners in [0, 3N] (centres N/2 further), and the
/// dose that makes s = 1 (the peer does not rescale).
fn peer_setup(n: usize) -> Setup {
    let object = peer_object(n);
    let probe = peer_probe(n);
    let mut rng = stream(1, Purpose::Positions, 0.0, 0);
    let mut corner = || (rng.next_u64() % (3 * n as u64 + 1)) as f64 + (n / 2) as f64;
    let ys: Vec<f64> = (0..NPOS).map(|_| corner()).collect();
    let xs: Vec<f64> = (0..NPOS).map(|_| corner()).collect();
    let mut setup = Setup {
        object,
        probe,
        xs,
        ys,
        dose: 1.0,
    };
    let probe_sim = simulate(&setup.inputs(), &[1.0], 1, &|_, _| {}).unwrap();
    setup.dose = probe_sim.energies.iter().sum::<f64>() / NPOS as f64;
    setup
}

fn study_setup(n: usize) -> Setup {
    let object = builtin_object(4 * n, n, 3.0, 42);
    let probe = builtin_probe(n, 0.6);
    let (xs, ys) = scan_positions(NPOS, object.dim(), n, 42);
    Setup {
        object,
        probe,
        xs,
        ys,
        dose: 1e6,
    }
}

fn forward(c: &mut Criterion) {
    for n in [64usize, 128] {
        let peer = peer_setup(n);
        let study = study_setup(n);
        let mut group = c.benchmark_group(format!("simulate_N{n}"));
        group.throughput(Throughput::Elements(NPOS as u64));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(6));
        let mut out = Simulated::empty();
        for threads in [1usize, 2] {
            let id = BenchmarkId::new("peer_workload", format!("{threads}t"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    simulate_into(
                        &peer.inputs(),
                        &[peer.dose],
                        threads,
                        None,
                        &mut out,
                        &|_, _| {},
                    )
                    .unwrap()
                })
            });
        }
        for dose in [1e3, 1e5, 1e6] {
            for threads in [1usize, 2] {
                let id = BenchmarkId::new(
                    format!("study_workload_dose{dose:.0e}"),
                    format!("{threads}t"),
                );
                group.bench_function(id, |b| {
                    b.iter(|| {
                        simulate_into(
                            &study.inputs(),
                            &[dose],
                            threads,
                            None,
                            &mut out,
                            &|_, _| {},
                        )
                        .unwrap()
                    })
                });
            }
        }
        group.bench_function(BenchmarkId::new("peer_workload_allocating", "2t"), |b| {
            b.iter(|| black_box(simulate(&peer.inputs(), &[peer.dose], 2, &|_, _| {}).unwrap()))
        });
        group.finish();

        // Breakdown on one thread, per pattern.
        let mut group = c.benchmark_group(format!("stage_N{n}"));
        group.throughput(Throughput::Elements(1));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(3));
        let plans = Plans::<f32>::new(n);
        let mut fft = plans.workspace();
        let mut buf: Vec<Complex32> = study.probe.iter().copied().collect();
        group.bench_function("fft2_forward", |b| {
            b.iter(|| {
                buf.copy_from_slice(study.probe.as_slice().unwrap());
                black_box(fft.forward_transposed(&mut buf)[1]);
            })
        });
        let mut patch = vec![Complex32::new(0.0, 0.0); n * n];
        group.bench_function("bilinear_patch", |b| {
            b.iter(|| {
                generate::extract_patch(
                    &study.object.view(),
                    study.xs[7],
                    study.ys[7],
                    black_box(&mut patch),
                )
            })
        });
        // The intensities of one real pattern of each workload, alone through the sampler.
        for (name, s, dose) in [
            ("peer", &peer, peer.dose),
            ("study_dose1e6", &study, 1e6),
            ("study_dose1e3", &study, 1e3),
        ] {
            generate::extract_patch(&s.object.view(), s.xs[7], s.ys[7], &mut patch);
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
            let means: Vec<f32> = intensity
                .iter()
                .map(|i| (i * dose / total) as f32)
                .collect();
            let mut sampler = poisson::PatternSampler::new();
            let mut out = vec![0.0f32; n * n];
            let mut k = 0u64;
            group.bench_function(format!("poisson_{name}"), |b| {
                b.iter(|| {
                    k += 1;
                    let mut rng = PixelRng::new(1, dose, k);
                    black_box(sampler.sample(&means, 1.0, &mut rng, &mut out, |c| c as f32))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
