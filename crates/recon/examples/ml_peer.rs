//! The ml engine on one split of a dose-overlap study, for `benches/peers/ptychi_compare.sh
//! --study`: the same file pty-chi's LSQML gets, timed per epoch, and the scoring of pty-chi's
//! result by the toolkit's own scoring code.
//!
//! `ml_peer run SPLIT.npz EPOCHS SMOOTHNESS THREADS`: ml from ones, probe fixed, each epoch
//! timed; prints `RESULT {json}` with seconds per epoch (median) and the test metrics.
//!
//! `ml_peer score TRUTH.npz RECON.npz`: prints `RESULT {json}` with the metrics of RECON's
//! `object` against TRUTH (the `score` command's code, `recon::score_files`).

use recon::{EvalOptions, MlEngine, Settings, read_split, score_files, synthetic};
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str {
        args.get(i).map(String::as_str).unwrap_or_else(|| {
            eprintln!("usage: ml_peer run SPLIT.npz EPOCHS SMOOTHNESS THREADS | score TRUTH RECON");
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
            let path = Path::new(arg(1));
            let epochs: u32 = arg(2)
                .parse()
                .unwrap_or_else(|_| fail("EPOCHS: an integer"));
            let smoothness: f64 = arg(3)
                .parse()
                .unwrap_or_else(|_| fail("SMOOTHNESS: a number"));
            let threads: usize = arg(4)
                .parse()
                .unwrap_or_else(|_| fail("THREADS: an integer"));
            let (data, _) = read_split(path).unwrap_or_else(|e| fail(&e.to_string()));
            let settings = Settings {
                algorithm: recon::Algorithm::Ml,
                smoothness,
                ..synthetic::epie_settings(epochs)
            };
            let mut engine =
                MlEngine::new(&data, &settings, threads).unwrap_or_else(|e| fail(&e.to_string()));
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
        other => fail(&format!("unknown mode {other}: run or score")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("ml_peer: {message}");
    std::process::exit(2)
}
