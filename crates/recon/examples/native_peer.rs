//! The native solver on the peers' dataset, for `benches/peers/ptychi_compare.sh`.
//!
//! `native_peer DATA.npz [EPOCHS]`: pty-chi's batch-1 ePIE setting (alpha 1, fixed probe,
//! object from ones, no refinement) on `data_N64_n1000.npz` from
//! `/work/shared/peers/make_dataset.py`, each epoch timed on one thread; prints one
//! `RESULT {json}` line with seconds per epoch, positions per second, the loss per epoch in
//! pty-chi's units and as E_F, and `bench_ptychi.py`'s object error.
//!
//! `native_peer --fft N [FRAMES]`: the FFT bound, 2-D round trips per second at N, measured the
//! way the solver does them.
//!
//! `native_peer --epoch N [COUNT]`: epochs on noiseless synthetic data of the peers' geometry
//! (4N x 4N object, COUNT random patches), positions per second.

use ndarray::{Array2, Ix2, Ix3};
use num_complex::{Complex32, Complex64};
use recon::fft::{Fft2, Plain};
use recon::{Dataset, Engine};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--fft") => {
            let n = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(64);
            let frames = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(20_000);
            fft_bound(n, frames);
        }
        Some("--epoch") => {
            let n = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(64);
            let count = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1000);
            synthetic_epochs(n, count);
        }
        Some(path) => {
            let epochs = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(5);
            peer(std::path::Path::new(path), epochs);
        }
        None => {
            eprintln!("usage: native_peer DATA.npz [EPOCHS] | native_peer --fft N [FRAMES]");
            std::process::exit(2);
        }
    }
}

/// CPU time of this thread, seconds (immune to other processes on a shared machine).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn fft_bound(n: usize, frames: usize) {
    let mut fft = Fft2::new(n);
    let input: Vec<Complex32> = (0..n * n)
        .map(|i| Complex32::new((i as f32 * 0.37).sin(), 0.5))
        .collect();
    let mut a = vec![Complex32::new(0.0, 0.0); n * n];
    let mut spec = vec![Complex32::new(0.0, 0.0); n * n];
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..7 {
        let (t, c) = (Instant::now(), cpu_seconds());
        for _ in 0..frames / 5 {
            fft.round_trip(&mut a, &mut spec, &mut Plain(&input));
        }
        wall.push((frames / 5) as f64 / t.elapsed().as_secs_f64());
        cpu.push((frames / 5) as f64 / (cpu_seconds() - c));
    }
    let result = serde_json::json!({
        "what": "fft_round_trip", "n": n, "fft_path": fft.path(),
        "frames_per_s_median": median(&wall), "frames_per_s_cpu_median": median(&cpu),
    });
    println!("RESULT {result}");
}

fn synthetic_epochs(n: usize, count: usize) {
    let data = recon::synthetic::scattered_dataset(n, count);
    let settings = recon::synthetic::epie_settings(1);
    let mut engine = Engine::new(&data, &settings).expect("valid synthetic data");
    engine.run_epoch();
    // Seven samples of at least 10,000 positions each (the CPU clock ticks coarsely).
    let per_sample = 10_000usize.div_ceil(count);
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let (t, c) = (Instant::now(), cpu_seconds());
        for _ in 0..per_sample {
            engine.run_epoch();
        }
        let done = (per_sample * count) as f64;
        wall.push(done / t.elapsed().as_secs_f64());
        cpu.push(done / (cpu_seconds() - c));
    }
    let result = serde_json::json!({
        "what": "epoch", "n": n, "positions": count,
        "pos_per_s_median": median(&wall), "pos_per_s_cpu_median": median(&cpu),
    });
    println!("RESULT {result}");
}

fn peer(path: &std::path::Path, epochs: u32) {
    let mut npz = npz_contract::NpzReader::open(path).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let read3 = |npz: &mut npz_contract::NpzReader, key: &str| {
        npz.read::<f32>(key)
            .ok()
            .and_then(|a| a.into_dimensionality::<Ix3>().ok())
            .unwrap_or_else(|| panic!("{key}: expected a 3-d float array"))
    };
    let read_c2 = |npz: &mut npz_contract::NpzReader, key: &str| {
        npz.read::<Complex32>(key)
            .ok()
            .and_then(|a| a.into_dimensionality::<Ix2>().ok())
            .unwrap_or_else(|| panic!("{key}: expected a 2-d complex array"))
    };
    let intensities = read3(&mut npz, "intensities");
    let probe = read_c2(&mut npz, "probe");
    let truth = read_c2(&mut npz, "object_true");
    let tl = npz
        .read::<i64>("positions_topleft_yx")
        .ok()
        .and_then(|a| a.into_dimensionality::<Ix2>().ok())
        .expect("positions_topleft_yx: expected (n, 2) integers");
    let (count, n) = (intensities.shape()[0], intensities.shape()[1]);
    let half = (n / 2) as f64;
    let data = Dataset {
        diffraction: intensities.mapv(f32::sqrt),
        xcoords: tl.column(1).iter().map(|&x| x as f64 + half).collect(),
        ycoords: tl.column(0).iter().map(|&y| y as f64 + half).collect(),
        probe: probe.clone(),
        object_shape: truth.dim(),
        intensity_scale: None,
    };
    // pty-chi's displayed loss (MSELossOfSqrt): the mean over every pixel of every pattern of
    // (|Psi| - a)^2, i.e. E_F x sum a^2 / (n N^2).
    let sum_counts: f64 = intensities.iter().map(|&v| f64::from(v)).sum();
    let to_ptychi = sum_counts / (count * n * n) as f64;
    let settings = recon::synthetic::epie_settings(epochs);
    let t0 = Instant::now();
    let mut engine = Engine::new(&data, &settings).expect("the peer dataset is valid");
    let build_s = t0.elapsed().as_secs_f64();
    let (mut epoch_s, mut epoch_cpu_s) = (Vec::new(), Vec::new());
    for _ in 0..epochs {
        let (t, c) = (Instant::now(), cpu_seconds());
        engine.run_epoch();
        epoch_s.push(t.elapsed().as_secs_f64());
        epoch_cpu_s.push(cpu_seconds() - c);
    }
    let losses = engine.loss_history().to_vec();
    let object = engine.object();
    let ones = Array2::from_elem(truth.dim(), Complex32::new(1.0, 0.0));
    let result = serde_json::json!({
        "solver": "native", "algo": "epie", "batch": 1, "threads": 1,
        "fft_path": Fft2::new(n).path(), "positions": count, "n": n, "epochs": epochs,
        "build_s": build_s, "epoch_s": epoch_s, "epoch_cpu_s": epoch_cpu_s,
        "epoch_s_median": median(&epoch_s), "epoch_cpu_s_median": median(&epoch_cpu_s),
        "pos_per_s_median": count as f64 / median(&epoch_s),
        "pos_per_s_cpu_median": count as f64 / median(&epoch_cpu_s),
        "losses": losses.iter().map(|l| l * to_ptychi).collect::<Vec<_>>(),
        "losses_ef": losses,
        "final_loss": losses.last().map(|l| l * to_ptychi),
        "obj_rel_err": object_error(&object, &truth, &probe, &tl),
        "obj_rel_err_init": object_error(&ones, &truth, &probe, &tl),
    });
    println!("RESULT {result}");
}

/// `bench_ptychi.py`'s error: over pixels whose illumination exceeds 0.1 of its maximum,
/// after the best global complex factor, relative to the truth.
fn object_error(
    rec: &Array2<Complex32>,
    truth: &Array2<Complex32>,
    probe: &Array2<Complex32>,
    tl: &Array2<i64>,
) -> f64 {
    let mut illum = Array2::<f64>::zeros(truth.dim());
    for row in tl.rows() {
        let (y, x) = (row[0] as usize, row[1] as usize);
        for ((i, k), p) in probe.indexed_iter() {
            illum[(y + i, x + k)] += f64::from(p.norm_sqr());
        }
    }
    let max = illum.iter().copied().fold(0.0, f64::max);
    let c64 = |v: &Complex32| Complex64::new(f64::from(v.re), f64::from(v.im));
    let inside = || {
        rec.iter()
            .zip(truth)
            .zip(&illum)
            .filter(|(_, i)| **i > 0.1 * max)
            .map(|((r, t), _)| (c64(r), c64(t)))
    };
    let (rt, rr) = inside().fold((Complex64::new(0.0, 0.0), 0.0), |(a, b), (r, t)| {
        (a + r.conj() * t, b + r.norm_sqr())
    });
    let c = rt / rr;
    let (num, den) = inside().fold((0.0, 0.0), |(a, b), (r, t)| {
        (a + (c * r - t).norm_sqr(), b + t.norm_sqr())
    });
    (num / den).sqrt()
}
