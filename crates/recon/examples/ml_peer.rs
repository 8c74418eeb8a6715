//! The ml engine on one split of a dose-overlap study, for `benches/peers/ptychi_compare.sh
//! --study`: the same file pty-chi's LSQML gets, timed per epoch, and the scoring of pty-chi's
//! result by the toolkit's own scoring code.
//!
//! `ml_peer run SPLIT.npz EPOCHS SMOOTHNESS THREADS`: ml from ones, probe fixed, each epoch
//! timed; prints `RESULT {json}` with seconds per epoch (median) and the test metrics.
//!
//! `ml_peer ratio SPLIT.npz EPOCHS`: one ePIE epoch and one ml epoch (smoothness 10, the default) in turn,
//! each on one thread, EPOCHS times; prints `RESULT {json}` with the median of each and of
//! their per-pair ratio (alternating in one process keeps a noisy machine's drift out of it).
//!
//! `ml_peer trace SPLIT.npz EPOCHS SMOOTHNESS EVERY`: ml from ones, probe fixed, one thread;
//! every EVERY epochs (and at the last) prints `TRACE {json}` with the epoch, F, E_F, the
//! stopping rule's last look (the object's change over the last 25 epochs: EVERY = 25 gives
//! every look) and the split's Fienup NRMSE against its truth: the convergence curves behind
//! the stopping rule's table.
//!
//! `ml_peer bound SPLIT.npz ROUNDS`: on one thread, ROUNDS times in turn, the split's FFT
//! bound (one full round trip per position, nothing in the hooks) and one ml epoch; prints
//! `RESULT {json}` with the median of each, the median of the epoch's share of the bound (the
//! figure of issue 27 item 4 on a real split), the minima and their share, and the share of
//! spectrum rows the epoch transforms along ky.
//!
//! `ml_peer score TRUTH.npz RECON.npz`: prints `RESULT {json}` with the metrics of RECON's
//! `object` against TRUTH (the `score` command's code, `recon::score_files`).

use recon::fft::{BoundFrame, Fft2};
use recon::{EvalOptions, MlEngine, Settings, read_split, score_files, synthetic};
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!(
                "usage: ml_peer run SPLIT EPOCHS SMOOTHNESS THREADS | trace SPLIT EPOCHS \
                 SMOOTHNESS EVERY | ratio SPLIT EPOCHS | bound SPLIT ROUNDS | score TRUTH RECON"
            );
            std::process::exit(2)
        })
    };
    match arg(0) {
        "score" => {
            let m = score_files(
                Path::new(arg(1)),
                Path::new(arg(2)),
                None,
                &EvalOptions::default(),
            )
            .unwrap_or_else(|e| fail(&e.to_string()));
            println!("RESULT {}", serde_json::json!({ "metrics": m }));
        }
        "run" => {
            let (path, epochs, smoothness) = split_epochs_smoothness(arg(1), arg(2), arg(3));
            let threads: usize = arg(4)
                .parse()
                .unwrap_or_else(|_| fail("THREADS: an integer"));
            let (data, _) = read_split(path).unwrap_or_else(|e| fail(&e.to_string()));
            let mut engine = ml_engine(&data, epochs, smoothness, threads);
            let mut times = Vec::new();
            for _ in 0..epochs {
                let t = Instant::now();
                engine.run_epoch();
                times.push(t.elapsed().as_secs_f64());
            }
            let object = engine.object();
            let m = recon::score_object(path, object.view(), &EvalOptions::default())
                .unwrap_or_else(|e| fail(&e.to_string()));
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "RESULT {}",
                serde_json::json!({
                    "file": path, "epochs": epochs, "threads": threads, "smoothness": smoothness,
                    "positions": data.len(), "epoch_s_median": sorted[sorted.len() / 2],
                    "losses": engine.loss_history(), "metrics": m,
                })
            );
        }
        "trace" => {
            let (path, epochs, smoothness) = split_epochs_smoothness(arg(1), arg(2), arg(3));
            let every: u32 = arg(4)
                .parse()
                .ok()
                .filter(|&e| e > 0)
                .unwrap_or_else(|| fail("EVERY: an integer > 0"));
            let (data, truth) = read_split(path).unwrap_or_else(|e| fail(&e.to_string()));
            let truth = recon::Truth::new(truth, data.probe.clone(), &data.xcoords, &data.ycoords)
                .unwrap_or_else(|e| fail(&e.to_string()));
            let mut engine = ml_engine(&data, epochs, smoothness, 1);
            let t = Instant::now();
            for epoch in 1..=epochs {
                let ef = engine.run_epoch();
                if epoch % every == 0 || epoch == epochs {
                    let m = truth
                        .score(engine.object().view(), &EvalOptions::default())
                        .unwrap_or_else(|e| fail(&e.to_string()));
                    let f = engine.objective_history().last().copied();
                    println!(
                        "TRACE {}",
                        serde_json::json!({
                            "epoch": epoch, "f": f, "ef": ef,
                            "window_change": engine.window_change(),
                            "nrmse": m.fienup_nrmse, "seconds": t.elapsed().as_secs_f64(),
                        })
                    );
                }
            }
        }
        "ratio" => {
            let path = Path::new(arg(1));
            let (epochs, data) = count_and_split(arg(2), "EPOCHS", path);
            let mut epie = recon::Engine::new(&data, &synthetic::epie_settings(epochs))
                .unwrap_or_else(|e| fail(&e.to_string()));
            let mut ml = ml_engine(&data, epochs, 10.0, 1);
            let (te, tm) = alternate(
                epochs,
                || {
                    epie.run_epoch();
                },
                || {
                    ml.run_epoch();
                },
            );
            let ratio = tm.iter().zip(&te).map(|(m, e)| m / e).collect();
            println!(
                "RESULT {}",
                serde_json::json!({
                    "file": path, "epochs": epochs, "positions": data.len(),
                    "epie_epoch_s_median": median(te), "ml_epoch_s_median": median(tm),
                    "ml_over_epie_median": median(ratio),
                })
            );
        }
        "bound" => {
            let path = Path::new(arg(1));
            let (rounds, data) = count_and_split(arg(2), "ROUNDS", path);
            let mut ml = ml_engine(&data, rounds, 10.0, 1);
            let n = data.probe.nrows();
            let mut fft = Fft2::new(n);
            let mut frame = BoundFrame::new(n);
            let (tf, tm) = alternate(
                rounds,
                || {
                    for _ in 0..data.len() {
                        std::hint::black_box(frame.round_trip(&mut fft));
                    }
                },
                || {
                    ml.run_epoch();
                },
            );
            let spectrum_rows_computed = ml.spectrum_rows_computed();
            let share = tf.iter().zip(&tm).map(|(f, m)| f / m).collect();
            // The minima too: on a shared machine the load only ever adds time, so each
            // one's fastest round is its least disturbed.
            let (min_f, min_m) = (minimum(&tf), minimum(&tm));
            println!(
                "RESULT {}",
                serde_json::json!({
                    "file": path, "rounds": rounds, "positions": data.len(),
                    "spectrum_rows_computed": spectrum_rows_computed,
                    "round_trips_s_median": median(tf), "ml_epoch_s_median": median(tm),
                    "epoch_share_of_bound_median": median(share),
                    "round_trips_s_min": min_f, "ml_epoch_s_min": min_m,
                    "epoch_share_of_bound_of_minima": min_f / min_m,
                })
            );
        }
        other => fail(&format!(
            "unknown mode {other}: run, trace, ratio, bound or score"
        )),
    }
}

/// SPLIT.npz EPOCHS SMOOTHNESS, the first arguments of `run` and `trace`.
fn split_epochs_smoothness<'a>(
    path: &'a str,
    epochs: &str,
    smoothness: &str,
) -> (&'a Path, u32, f64) {
    let epochs = epochs
        .parse()
        .unwrap_or_else(|_| fail("EPOCHS: an integer"));
    let smoothness = smoothness
        .parse()
        .unwrap_or_else(|_| fail("SMOOTHNESS: a number"));
    (Path::new(path), epochs, smoothness)
}

/// COUNT (named `name` in its error) and SPLIT.npz's data: `ratio`'s and `bound`'s arguments.
fn count_and_split(count: &str, name: &str, path: &Path) -> (u32, recon::Dataset) {
    let count = count
        .parse()
        .unwrap_or_else(|_| fail(&format!("{name}: an integer")));
    let (data, _) = read_split(path).unwrap_or_else(|e| fail(&e.to_string()));
    (count, data)
}

/// The ml engine from ones, probe fixed, as every mode runs it.
fn ml_engine(data: &recon::Dataset, epochs: u32, smoothness: f64, threads: usize) -> MlEngine {
    let settings = Settings {
        algorithm: recon::Algorithm::Ml,
        smoothness,
        ..synthetic::epie_settings(epochs)
    };
    MlEngine::new(data, &settings, threads).unwrap_or_else(|e| fail(&e.to_string()))
}

/// Seconds of `first` and of `second`, run in turn `rounds` times (alternating in one
/// process keeps a noisy machine's drift out of their ratio).
fn alternate(
    rounds: u32,
    mut first: impl FnMut(),
    mut second: impl FnMut(),
) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        first();
        a.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        second();
        b.push(t.elapsed().as_secs_f64());
    }
    (a, b)
}

fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(f64::total_cmp);
    x[x.len() / 2]
}

fn minimum(x: &[f64]) -> f64 {
    x.iter().copied().fold(f64::INFINITY, f64::min)
}

fn fail(message: &str) -> ! {
    eprintln!("ml_peer: {message}");
    std::process::exit(2)
}
