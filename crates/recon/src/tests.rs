//! The solver's physics checks on noiseless synthetic data.

use crate::synthetic;
use crate::*;
use ndarray::Array2;
use num_complex::Complex32;
use std::ops::ControlFlow;

fn settings(algorithm: Algorithm, alpha: f64) -> Settings {
    Settings {
        algorithm,
        alpha,
        beta: 1.0,
        epochs: 8,
        refine_probe: false,
        seed: 5,
        gridsize: 1,
        neighbor_count: 7,
        smoothness: 0.0,
        tolerance: 0.0,
    }
}

/// A 64 x 64 object scanned by a 16 x 16 probe every 3 pixels (the probe disc is 8 pixels wide).
fn scene() -> (Dataset, Array2<Complex32>) {
    let truth = synthetic::object(64, 64);
    let probe = synthetic::probe(16, 1e4);
    let (xs, ys) = synthetic::raster_positions(64, 64, 16, 3);
    (synthetic::dataset(&truth, &probe, &xs, &ys), truth)
}

fn score(data: &Dataset, truth: &Array2<Complex32>, rec: &Reconstruction) -> Metrics {
    evaluate(
        rec.object.view(),
        truth.view(),
        data.probe.view(),
        &rec.positions_topleft_yx,
        &EvalOptions::default(),
    )
    .unwrap()
}

#[test]
fn the_true_object_reproduces_noiseless_data() {
    let (data, truth) = scene();
    for (algorithm, gridsize) in [
        (Algorithm::Epie, 1),
        (Algorithm::Rpie, 1),
        (Algorithm::Epie, 2),
    ] {
        let s = Settings {
            gridsize,
            ..settings(algorithm, 1.0)
        };
        let mut engine = Engine::new(&data, &s).unwrap();
        engine.set_object(truth.view()).unwrap();
        let loss = engine.run_epoch();
        assert!(loss < 1e-9, "{algorithm:?} g={gridsize}: E_F = {loss}");
        // The projection leaves a consistent object where it is: it stays the truth.
        let drift = engine
            .object()
            .iter()
            .zip(&truth)
            .map(|(a, b)| (a - b).norm())
            .fold(0f32, f32::max);
        assert!(drift < 1e-4, "{algorithm:?}: object moved by {drift}");
    }
}

#[test]
fn rpie_with_alpha_one_is_epie_with_unit_step_bit_for_bit() {
    let (data, _) = scene();
    for (gridsize, refine_probe) in [(1, false), (2, false), (1, true)] {
        let run = |algorithm| {
            let s = Settings {
                epochs: 3,
                gridsize,
                refine_probe,
                ..settings(algorithm, 1.0)
            };
            reconstruct(&data, &s, &mut |_, _| {}).unwrap()
        };
        let (e, r) = (run(Algorithm::Epie), run(Algorithm::Rpie));
        assert_eq!(e.loss_history, r.loss_history);
        assert!(
            e.object
                .iter()
                .zip(&r.object)
                .all(|(a, b)| a.re.to_bits() == b.re.to_bits() && a.im.to_bits() == b.im.to_bits())
        );
    }
}

#[test]
fn from_a_flat_start_the_loss_falls_and_the_object_approaches_the_truth() {
    let (data, truth) = scene();
    for (algorithm, alpha, gridsize) in [
        (Algorithm::Epie, 1.0, 1),
        (Algorithm::Rpie, 0.5, 1),
        (Algorithm::Rpie, 0.5, 2),
    ] {
        let s = Settings {
            epochs: 30,
            gridsize,
            ..settings(algorithm, alpha)
        };
        let mut epochs = Vec::new();
        let rec = reconstruct(&data, &s, &mut |e, l| epochs.push((e, l))).unwrap();
        assert_eq!(epochs.len(), 30);
        assert_eq!(
            epochs.iter().map(|e| e.1).collect::<Vec<_>>(),
            rec.loss_history
        );
        let h = &rec.loss_history;
        assert!(
            h[..5].windows(2).all(|w| w[1] < w[0]),
            "{algorithm:?} g={gridsize}: {h:?}"
        );
        assert!(h[29] < 0.05 * h[0], "{algorithm:?} g={gridsize}: {h:?}");
        let m = score(&data, &truth, &rec);
        assert!(
            m.fienup_nrmse < 0.1 * m.fienup_nrmse_initial,
            "{algorithm:?} g={gridsize}: {} vs initial {}",
            m.fienup_nrmse,
            m.fienup_nrmse_initial
        );
    }
}

#[test]
fn probe_refinement_fits_data_that_a_wrong_fixed_probe_cannot() {
    let (mut data, _) = scene();
    // A scaled guess: the fixed-probe solver cannot fit the data with it.
    data.probe.mapv_inplace(|p| p * 0.8);
    let fixed = reconstruct(
        &data,
        &Settings {
            epochs: 40,
            ..settings(Algorithm::Rpie, 0.5)
        },
        &mut |_, _| {},
    )
    .unwrap();
    let refined = reconstruct(
        &data,
        &Settings {
            epochs: 40,
            refine_probe: true,
            ..settings(Algorithm::Rpie, 0.5)
        },
        &mut |_, _| {},
    )
    .unwrap();
    let last = |r: &Reconstruction| *r.loss_history.last().unwrap();
    assert!(
        last(&refined) < last(&fixed),
        "{} vs {}",
        last(&refined),
        last(&fixed)
    );
    assert_ne!(refined.probe, data.probe);
}

#[test]
fn the_same_seed_gives_the_same_bits_and_another_seed_another_order() {
    let (data, _) = scene();
    let run = |seed, gridsize| {
        let s = Settings {
            epochs: 2,
            seed,
            gridsize,
            ..settings(Algorithm::Rpie, 0.5)
        };
        reconstruct(&data, &s, &mut |_, _| {}).unwrap()
    };
    for gridsize in [1, 2] {
        let (a, b, c) = (run(1, gridsize), run(1, gridsize), run(2, gridsize));
        assert_eq!(a.object, b.object);
        assert_eq!(a.loss_history, b.loss_history);
        assert_ne!(a.object, c.object);
    }
}

#[test]
fn rounding_is_recorded_and_out_of_grid_patches_are_padded() {
    let (mut data, _) = scene();
    data.xcoords[0] = 7.4; // top-left column round(-0.6) = -1: one column of padding
    data.ycoords[1] = 60.5; // top-left row round_half_even(52.5) = 52 -> bottom row 67 > 63
    let rec = reconstruct(
        &data,
        &Settings {
            epochs: 1,
            ..settings(Algorithm::Epie, 1.0)
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(rec.rounding.padding, [0, 4, 1, 0]);
    assert_eq!(rec.positions_topleft_yx[0][1], -1);
    assert_eq!(rec.positions_topleft_yx[1][0], 52);
    assert!((rec.rounding.max_abs_offset_px - 0.5).abs() < 1e-12);
    assert_eq!(rec.object.dim(), (64, 64));
}

#[test]
fn bad_input_is_named() {
    let (data, _) = scene();
    let check = |data: &Dataset, s: &Settings, want: &str| {
        let err = Engine::new(data, s).err().expect("must fail").to_string();
        assert!(err.contains(want), "{err}");
    };
    let mut d = data.clone();
    d.diffraction[(3, 1, 2)] = f32::NAN;
    check(
        &d,
        &settings(Algorithm::Epie, 1.0),
        "diffraction[3, 1, 2] = NaN",
    );
    let mut d = data.clone();
    d.xcoords.pop();
    check(&d, &settings(Algorithm::Epie, 1.0), "xcoords/ycoords hold");
    check(
        &data,
        &settings(Algorithm::Epie, 1.5),
        "alpha=1.5 must be in (0, 1]",
    );
    let mut d = data.clone();
    d.diffraction = d.diffraction.slice_move(ndarray::s![..3, .., ..]);
    d.xcoords.truncate(3);
    d.ycoords.truncate(3);
    check(
        &d,
        &Settings {
            gridsize: 2,
            ..settings(Algorithm::Epie, 1.0)
        },
        "OVERSAMPLING-001",
    );
}

mod job {
    use super::*;
    use npz_contract::{Compression, NpzReader, NpzWriter};
    use std::ops::ControlFlow;
    use std::path::{Path, PathBuf};

    /// Writes a DATA-001 split of the synthetic scene: the positions with `keep(j)`.
    fn write_split(path: &Path, keep: impl Fn(usize) -> bool) {
        let (data, truth) = scene();
        let idx: Vec<usize> = (0..data.len()).filter(|&j| keep(j)).collect();
        let mut npz = NpzWriter::create(path, Compression::Stored).unwrap();
        npz.add(
            "diffraction",
            &data.diffraction.select(ndarray::Axis(0), &idx),
        )
        .unwrap();
        let pick = |v: &[f64]| ndarray::Array1::from_iter(idx.iter().map(|&j| v[j]));
        npz.add("xcoords", &pick(&data.xcoords)).unwrap();
        npz.add("ycoords", &pick(&data.ycoords)).unwrap();
        npz.add("probeGuess", &data.probe).unwrap();
        npz.add("objectGuess", &truth).unwrap();
        npz.finish().unwrap();
    }

    fn request(dir: &Path, threads: usize, bundle: &str) -> JobRequest {
        JobRequest {
            train_path: dir.join("train data.npz"),
            test_path: dir.join("test data.npz"),
            settings: Settings {
                epochs: 4,
                ..settings(Algorithm::Rpie, 0.5)
            },
            eval: EvalOptions::default(),
            bundle_path: dir.join(bundle),
            job_config: serde_json::json!({"view": "baseline"}),
            threads,
        }
    }

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_split(&dir.path().join("train data.npz"), |j| j % 2 == 0);
        write_split(&dir.path().join("test data.npz"), |j| j % 2 == 1);
        dir
    }

    /// Lends `cores` cores, counting what is borrowed and given back.
    struct Lender {
        free: std::sync::atomic::AtomicUsize,
        borrowed: std::sync::atomic::AtomicUsize,
    }

    impl crate::CoreLender for Lender {
        fn borrow(&self) -> bool {
            use std::sync::atomic::Ordering::SeqCst;
            let ok = self
                .free
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if ok {
                self.borrowed.fetch_add(1, SeqCst);
            }
            ok
        }
        fn give_back(&self) {
            self.free.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// An ml split that grows from one thread to four between epochs, as cores are lent,
    /// ends with the bits of a split run on one thread, and gives every core back.
    #[test]
    fn an_ml_split_grown_by_lent_cores_keeps_its_bits() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let (data, _) = scene();
        let s = Settings {
            epochs: 6,
            ..settings(Algorithm::Ml, 0.5)
        };
        let go = &mut |_, _| ControlFlow::Continue(());
        let alone = crate::reconstruct_threads(&data, &s, 1, go).unwrap();
        let lender = Lender {
            free: AtomicUsize::new(5),
            borrowed: AtomicUsize::new(0),
        };
        let grown = crate::reconstruct_lent(&data, &s, 1, &lender, go).unwrap();
        assert_eq!(lender.borrowed.load(SeqCst), crate::CHUNKS - 1);
        assert_eq!(lender.free.load(SeqCst), 5);
        assert_eq!(grown.object, alone.object);
        assert_eq!(grown.loss_history, alone.loss_history);
    }

    /// Issue 27, item 3: a job of one thread runs its test split on a lent core beside its
    /// train split, gives the core back, and writes the bundle it writes alone (ml and rPIE).
    #[test]
    fn a_job_of_one_thread_runs_its_test_split_on_a_lent_core_with_the_same_bits() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let dir = fixture();
        for algorithm in [Algorithm::Ml, Algorithm::Rpie] {
            let mut req = request(dir.path(), 1, "alone.npz");
            req.settings = Settings {
                epochs: 4,
                ..settings(algorithm, 0.5)
            };
            let alone = run_job(&req, &|_, _, _| ControlFlow::Continue(())).unwrap();
            let threads = std::sync::Mutex::new(Vec::new());
            let record = |split: Split, _: u32, _: f64| {
                threads
                    .lock()
                    .unwrap()
                    .push((split, std::thread::current().id()));
                // The train split waits (up to 10 s) for the test split to report an epoch: on
                // the lent core it does at once; without lending the test split would start
                // only after the train split, on the same thread, which the assertion below
                // then catches. Without the wait a loaded machine could let the job's own
                // thread finish its 4 train epochs before the lent core's thread polled, and
                // take the test split itself (allowed: whichever comes first takes it). ml's
                // train split may not grow onto the free core before the test split has it
                // (two splits on a core each beat one on two), so it waits too.
                if split == Split::Train {
                    let started = std::time::Instant::now();
                    while started.elapsed() < std::time::Duration::from_secs(10)
                        && !threads
                            .lock()
                            .unwrap()
                            .iter()
                            .any(|(s, _)| *s == Split::Test)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                ControlFlow::Continue(())
            };
            let lender = Lender {
                free: AtomicUsize::new(1),
                borrowed: AtomicUsize::new(0),
            };
            req.bundle_path = dir.path().join("lent.npz");
            let lent = run_job_lent(&req, &record, &lender).unwrap();
            assert_eq!(lent.train, alone.train, "{algorithm:?}");
            assert_eq!(lent.test, alone.test, "{algorithm:?}");
            assert_eq!(
                std::fs::read(&lent.bundle_path).unwrap(),
                std::fs::read(&alone.bundle_path).unwrap()
            );
            // The core was borrowed, by the test split first.
            assert!(lender.borrowed.load(SeqCst) >= 1);
            assert_eq!(lender.free.load(SeqCst), 1, "the core came back");
            let threads = threads.into_inner().unwrap();
            let on = |split| {
                let ids: std::collections::HashSet<_> = threads
                    .iter()
                    .filter(|(s, _)| *s == split)
                    .map(|(_, id)| *id)
                    .collect();
                assert_eq!(ids.len(), 1);
                ids.into_iter().next().unwrap()
            };
            assert_ne!(on(Split::Train), on(Split::Test), "{algorithm:?}");
        }
    }

    #[test]
    fn a_job_reconstructs_both_splits_and_writes_the_same_bundle_with_one_or_two_threads() {
        let dir = fixture();
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |split: Split, epoch: u32, loss: f64| {
            seen.lock().unwrap().push((split, epoch, loss));
            ControlFlow::Continue(())
        };
        let one = run_job(&request(dir.path(), 1, "one.npz"), &record).unwrap();
        let two = run_job(&request(dir.path(), 2, "two.npz"), &record).unwrap();
        assert_eq!(one.train, two.train);
        assert_eq!(one.test, two.test);
        let bytes = |p: &PathBuf| std::fs::read(p).unwrap();
        assert_eq!(bytes(&one.bundle_path), bytes(&two.bundle_path));
        assert_eq!(seen.lock().unwrap().len(), 16);
        for split in [&one.train, &one.test] {
            assert_eq!(split.epochs_completed, 4);
            assert_eq!(split.final_loss, split.loss_history[3]);
            assert!(split.loss_history[3] < split.loss_history[0]);
            assert!(split.metrics.fienup_nrmse < split.metrics.fienup_nrmse_initial);
        }

        let mut npz = NpzReader::open(&one.bundle_path).unwrap();
        let keys: Vec<&str> = npz.members().iter().map(|m| m.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "config",
                "train_object",
                "train_probe",
                "train_loss_history",
                "train_positions_topleft_yx",
                "test_object",
                "test_probe",
                "test_loss_history",
                "test_positions_topleft_yx",
                "metrics"
            ]
        );
        let object = npz.read::<Complex32>("train_object").unwrap();
        assert_eq!(object.shape(), [64, 64]);
        let loss = npz.read::<f64>("test_loss_history").unwrap();
        assert_eq!(loss.as_slice().unwrap(), one.test.loss_history.as_slice());
        let config: serde_json::Value =
            serde_json::from_str(&npz.read_string("config").unwrap()).unwrap();
        assert_eq!(config["format"], BUNDLE_FORMAT);
        assert_eq!(config["settings"]["seed"], 5);
        assert_eq!(config["job"]["view"], "baseline");
    }

    #[test]
    fn a_stopped_job_writes_no_bundle() {
        let dir = fixture();
        let stop = |_: Split, epoch: u32, _: f64| {
            if epoch == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let req = request(dir.path(), 2, "b.npz");
        assert!(matches!(run_job(&req, &stop), Err(ReconError::Cancelled)));
        assert!(!req.bundle_path.exists());
    }

    // Regression (issue 12, defect 4): the scored region came from the reconstructed probe, so
    // with --refine-probe two runs on the same data were scored over different pixels. The
    // job's scores are also exactly what `score_files` gives for its bundle: one scoring code.
    #[test]
    fn a_refined_probe_does_not_move_the_scored_region() {
        let dir = fixture();
        let go = |_: Split, _: u32, _: f64| ControlFlow::Continue(());
        let fixed = run_job(&request(dir.path(), 1, "fixed.npz"), &go).unwrap();
        let mut req = request(dir.path(), 1, "refined.npz");
        req.settings.refine_probe = true;
        let refined = run_job(&req, &go).unwrap();
        let mut npz = NpzReader::open(&refined.bundle_path).unwrap();
        let probe = npz.read::<Complex32>("test_probe").unwrap();
        let (_, truth_probe) = {
            let (data, truth) = crate::read_split(&dir.path().join("test data.npz")).unwrap();
            (truth, data.probe)
        };
        let moved: f32 = probe
            .iter()
            .zip(truth_probe.iter())
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f32::max);
        assert!(moved > 1e-3, "the probe was refined ({moved})");
        for (a, b) in [(&fixed.train, &refined.train), (&fixed.test, &refined.test)] {
            assert_eq!(a.metrics.region, b.metrics.region);
        }
        let rescored = crate::score_files(
            &dir.path().join("test data.npz"),
            &refined.bundle_path,
            Some(Split::Test),
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(rescored, refined.test.metrics);
    }

    #[test]
    fn bad_files_are_named() {
        let dir = fixture();
        let go = |_: Split, _: u32, _: f64| ControlFlow::Continue(());
        let mut req = request(dir.path(), 1, "b.npz");
        req.test_path = dir.path().join("missing.npz");
        let err = run_job(&req, &go).unwrap_err().to_string();
        assert!(err.contains("missing.npz"), "{err}");
        let partial = dir.path().join("partial.npz");
        let mut npz = NpzWriter::create(&partial, Compression::Stored).unwrap();
        npz.add("xcoords", &ndarray::arr1(&[1.0f64])).unwrap();
        npz.finish().unwrap();
        req.test_path = partial;
        let err = run_job(&req, &go).unwrap_err().to_string();
        assert!(
            err.contains("partial.npz") && err.contains("diffraction"),
            "{err}"
        );
        assert!(!req.bundle_path.exists());
    }
}

/// Poisson counts for the scene at `photons` per pattern (seeded), as the generator stores them:
/// a = sqrt(counts) / s, with `intensity_scale` = s.
fn noisy(data: &Dataset, s: f64, seed: u64) -> Dataset {
    let mut rng = crate::rng::Rng::new(seed);
    let mut noisy = data.clone();
    noisy.diffraction.mapv_inplace(|a| {
        // Knuth's product method is plenty for the small means of a test.
        let lam = (f64::from(a) * s).powi(2);
        let limit = (-lam).exp();
        let (mut k, mut p) = (0u32, 1.0f64);
        loop {
            p *= (rng.below(1 << 30) as f64 + 0.5) / f64::from(1u32 << 30);
            if p <= limit {
                break;
            }
            k += 1;
        }
        ((f64::from(k)).sqrt() / s) as f32
    });
    noisy.intensity_scale = Some(s);
    noisy
}

#[test]
fn ml_on_noiseless_data_converges_near_the_truth() {
    let (data, truth) = scene();
    // Noiseless amplitudes: the Gaussian fallback (no intensity_scale) and the Poisson model
    // (amplitudes as if s = 1, non-integer "counts") both reach the truth.
    for scale in [None, Some(1.0)] {
        let data = Dataset {
            intensity_scale: scale,
            ..data.clone()
        };
        let s = Settings {
            epochs: 60,
            ..settings(Algorithm::Ml, 1.0)
        };
        let rec = reconstruct(&data, &s, &mut |_, _| {}).unwrap();
        let report = rec.ml.as_ref().unwrap();
        let expected = if scale.is_some() {
            NoiseModel::Poisson
        } else {
            NoiseModel::Gaussian
        };
        assert_eq!(report.noise_model, expected);
        assert_eq!(report.stopped_by, "budget");
        // The safeguard: the accepted objective never rises.
        let f = &report.objective_history;
        assert!(f.windows(2).all(|w| w[1] <= w[0]), "{scale:?}: {f:?}");
        let m = score(&data, &truth, &rec);
        assert!(
            m.fienup_nrmse < 0.05 * m.fienup_nrmse_initial,
            "{scale:?}: {} vs initial {}",
            m.fienup_nrmse,
            m.fienup_nrmse_initial
        );
    }
}

#[test]
fn ml_beats_epie_on_poisson_counts() {
    // The reason the engine exists: at a few photons per pixel, ePIE fits the noise, the
    // Poisson likelihood with a weak prior does not.
    let (data, truth) = scene();
    let data = noisy(&data, 0.05, 9);
    let epie = reconstruct(
        &data,
        &Settings {
            epochs: 30,
            ..settings(Algorithm::Epie, 1.0)
        },
        &mut |_, _| {},
    )
    .unwrap();
    let ml = reconstruct(
        &data,
        &Settings {
            epochs: 60,
            smoothness: 6.0,
            ..settings(Algorithm::Ml, 1.0)
        },
        &mut |_, _| {},
    )
    .unwrap();
    let (e, m) = (score(&data, &truth, &epie), score(&data, &truth, &ml));
    assert!(
        m.fienup_nrmse < 0.8 * e.fienup_nrmse,
        "ml {} vs epie {}",
        m.fienup_nrmse,
        e.fienup_nrmse
    );
}

/// Every value of a reconstruction's object and probe, as bits.
fn bits(r: &Reconstruction) -> Vec<u32> {
    r.object
        .iter()
        .chain(r.probe.iter())
        .flat_map(|v| [v.re.to_bits(), v.im.to_bits()])
        .collect()
}

#[test]
fn every_engine_gives_the_same_bits_with_and_without_avx2() {
    let (data, _) = scene();
    let data = noisy(&data, 0.1, 3);
    for (algorithm, refine_probe) in [
        (Algorithm::Ml, false),
        (Algorithm::Ml, true),
        (Algorithm::Epie, false),
        (Algorithm::Rpie, true),
    ] {
        let s = Settings {
            epochs: 6,
            smoothness: 1.0,
            refine_probe,
            ..settings(algorithm, 1.0)
        };
        // One thread: the switch is per thread.
        let run = |portable| {
            crate::simd::with_portable(portable, || {
                reconstruct_threads(&data, &s, 1, &mut |_, _| ControlFlow::Continue(())).unwrap()
            })
        };
        let (fast, portable) = (run(false), run(true));
        let what = format!("{algorithm:?}, refine {refine_probe}");
        assert_eq!(fast.loss_history, portable.loss_history, "{what}");
        assert_eq!(fast.ml, portable.ml, "{what}");
        assert_eq!(bits(&fast), bits(&portable), "{what}");
    }
}

#[test]
fn ml_is_bit_identical_for_any_thread_count_and_stops_on_its_tolerance() {
    let (data, _) = scene();
    let data = noisy(&data, 0.1, 3);
    let s = Settings {
        epochs: 12,
        smoothness: 1.0,
        refine_probe: true,
        ..settings(Algorithm::Ml, 1.0)
    };
    // The probe refined and fixed (the fixed probe takes the recursion's first sums from the
    // pass that made the pair).
    for s in [
        s.clone(),
        Settings {
            refine_probe: false,
            ..s.clone()
        },
    ] {
        let run = |threads| {
            reconstruct_threads(&data, &s, threads, &mut |_, _| ControlFlow::Continue(())).unwrap()
        };
        let one = run(1);
        for threads in [2, 3, 4] {
            let other = run(threads);
            let what = format!("{threads} threads, refine {}", s.refine_probe);
            assert_eq!(one.loss_history, other.loss_history, "{what}");
            assert_eq!(one.ml, other.ml, "{what}");
            assert_eq!(bits(&one), bits(&other), "{what}");
        }
    }
    let loose = Settings {
        epochs: 200,
        tolerance: 1e-2,
        refine_probe: false,
        ..s
    };
    let rec = reconstruct(&data, &loose, &mut |_, _| {}).unwrap();
    let report = rec.ml.unwrap();
    assert_eq!(
        report.stopped_by, "tolerance",
        "{:?}",
        report.last_relative_change
    );
    assert!(rec.epochs_completed < 200);
    assert!(report.last_relative_change.is_some_and(|c| c < 1e-2));
    // The rule looks every WINDOW epochs, so it stops on a look.
    assert_eq!(rec.epochs_completed % WINDOW, 0);
}

#[test]
fn a_diverging_run_fails_with_its_epoch_and_history() {
    let (data, _) = scene();
    // rPIE refining a probe guess 0.3x too dim at 0.01 photons per pixel, in groups of 4:
    // the object and the probe chase each other's scale until they overflow.
    let mut data = noisy(&data, 0.01, 4);
    data.probe.mapv_inplace(|p| p * 0.3);
    let s = Settings {
        epochs: 100,
        refine_probe: true,
        gridsize: 2,
        ..settings(Algorithm::Rpie, 0.9)
    };
    match reconstruct(&data, &s, &mut |_, _| {}) {
        Err(ReconError::Diverged {
            epoch,
            loss,
            loss_history,
        }) => {
            assert_eq!(loss_history.len(), epoch as usize);
            assert_eq!(
                loss_history.last().map(|l| l.to_bits()),
                Some(loss.to_bits())
            );
            assert!(!loss.is_finite() || loss > DIVERGE_EF.max(DIVERGE_FACTOR * loss_history[0]));
            let message = ReconError::Diverged {
                epoch,
                loss,
                loss_history,
            }
            .to_string();
            assert!(
                message.starts_with(&format!("diverged at epoch {epoch} ")),
                "{message}"
            );
        }
        other => panic!(
            "expected a divergence, got {:?}",
            other.map(|r| r.loss_history)
        ),
    }
}
