//! NPZ I/O: header-only validation (a 5 MB and a 300 MB file, stored and deflated) and full
//! load and full validation of a ~300 MB float32 diffraction stack, stored and deflated.
//!
//! The files are written once into `$NPZ_BENCH_DIR` (default `target/npz-bench`) and reused, so
//! that `benches/peers/npz_numpy.py` times `numpy.load` on the very same files:
//!
//! ```text
//! cargo bench --bench npz_io
//! benches/peers/setup_numpy_venv.sh && target/peers-venv/bin/python benches/peers/npz_numpy.py
//! ```

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Array2, Array3};
use npz_contract::{Compression, NpzReader, NpzWriter, ValidateOptions, validate};
use num_complex::Complex;

/// Frame size and count: 4600 x 128 x 128 float32 = 301 MB (the fly64 scale), 46 frames = 3 MB
/// (5 MB with the object).
const N: usize = 128;
const FRAMES_LARGE: usize = 4600;
const FRAMES_SMALL: usize = 46;

fn bench_dir() -> PathBuf {
    std::env::var_os("NPZ_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npz-bench"))
}

/// A DATA-001 file of `frames` diffraction amplitudes (sqrt of Poisson counts of a centred
/// speckled peak: mostly zeros far out, like real low-dose patterns).
fn write_dataset(path: &Path, frames: usize, compression: Compression) {
    // The simulator's own seeded, exact sampler: every run benches identical bytes.
    let mut rng = generate::rng::PixelRng::new(42, 0.0, 0);
    let mut diffraction = Array3::<f32>::zeros((frames, N, N));
    for (f, mut frame) in diffraction.outer_iter_mut().enumerate() {
        let shift = (f % 7) as f64;
        for ((i, j), v) in frame.indexed_iter_mut() {
            let (y, x) = (i as f64 - 64.0 - shift, j as f64 - 64.0 + shift);
            let r2 = x * x + y * y;
            let mean =
                400.0 * (-r2 / (2.0 * 14.0 * 14.0)).exp() * (1.0 + 0.5 * (0.3 * x).cos()) + 0.2;
            *v = (generate::poisson::sample(mean, &mut rng) as f64).sqrt() as f32;
        }
    }
    let mut w = NpzWriter::create(path, compression).expect("bench folder is writable");
    w.add("diffraction", &diffraction).unwrap();
    w.add(
        "objectGuess",
        &Array2::from_elem((4 * N, 4 * N), Complex::new(1.0f32, 0.1)),
    )
    .unwrap();
    w.add(
        "probeGuess",
        &Array2::from_elem((N, N), Complex::new(0.5f32, 0.0)),
    )
    .unwrap();
    w.add("xcoords", &Array1::linspace(64.0, 400.0, frames))
        .unwrap();
    w.add("ycoords", &Array1::linspace(64.0, 400.0, frames))
        .unwrap();
    w.add_string("_metadata", "{\"dose\": 1000.0, \"bench\": true}")
        .unwrap();
    w.finish().unwrap();
}

/// The bench files, written on first use (atomically, so a present file is a complete one).
fn dataset(name: &str, frames: usize, compression: Compression) -> PathBuf {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).expect("bench folder can be created");
    let path = dir.join(name);
    if !path.exists() {
        eprintln!("writing {} ...", path.display());
        write_dataset(&path, frames, compression);
    }
    path
}

fn bench(c: &mut Criterion) {
    let small = dataset("bench_small_stored.npz", FRAMES_SMALL, Compression::Stored);
    let stored = dataset("bench_stored.npz", FRAMES_LARGE, Compression::Stored);
    let deflated = dataset("bench_deflated.npz", FRAMES_LARGE, Compression::Deflated);
    eprintln!(
        "bench files in {} (benches/peers/npz_numpy.py reads them there)",
        bench_dir().display()
    );
    let header_only = ValidateOptions {
        header_only: true,
        ..ValidateOptions::default()
    };
    let full = ValidateOptions::default();
    for path in [&small, &stored, &deflated] {
        let report = validate(path, &full);
        assert!(report.valid, "{report:?}");
    }

    let mut group = c.benchmark_group("npz_validate_header_only");
    group.measurement_time(Duration::from_secs(3));
    for (label, path) in [
        ("small_5MB_stored", &small),
        ("stored_300MB", &stored),
        ("deflated_300MB", &deflated),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| validate(black_box(path), &header_only))
        });
    }
    group.finish();

    let bytes = (FRAMES_LARGE * N * N * 4) as u64;
    let mut group = c.benchmark_group("npz_full_300MB");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Bytes(bytes));
    for (label, path) in [("stored", &stored), ("deflated", &deflated)] {
        group.bench_function(format!("load_f32/{label}"), |b| {
            b.iter(|| {
                let mut reader = NpzReader::open(black_box(path)).unwrap();
                reader.read::<f32>("diffraction").unwrap()
            })
        });
        // The floor under a load: the member's bytes read through the zip layer (CRC checked),
        // nothing decoded or kept.
        group.bench_function(format!("read_through/{label}"), |b| {
            b.iter(|| {
                let mut reader = NpzReader::open(black_box(path)).unwrap();
                reader.verify("diffraction").unwrap()
            })
        });
        group.bench_function(format!("validate/{label}"), |b| {
            b.iter(|| validate(black_box(path), &full))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
