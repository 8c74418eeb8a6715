//! One job of the native backend: read the train and test NPZ, reconstruct each split (both
//! at once when two threads are allowed, or when a job of one thread borrows a core that a
//! finished job left free: the splits are independent, so the bits do not depend on it),
//! score them against `objectGuess`, and write the bundle.

use crate::data::Split;
use crate::kernels::EPS;
use crate::metrics::{EvalOptions, Metrics};
use crate::reconstruction::{MlReport, Reconstruction};
use crate::score::Truth;
use crate::settings::Settings;
use crate::solver::reconstruct_lent;
use crate::{Dataset, FftPath, ReconError, Rounding};
use ndarray::{Array2, Ix1, Ix2, Ix3};
use npz_contract::{Compression, NpzReader, NpzWriter};
use num_complex::Complex32;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use study_design::Algorithm;

/// Cores a running job may borrow from jobs that have finished (the run's scheduler lends
/// them): a job of one thread then starts its test split on a borrowed core while its train
/// split still runs, so that no core idles while the last jobs run. What is computed does not
/// depend on it.
pub trait CoreLender: Sync {
    /// Takes a spare core, if one is free now.
    fn borrow(&self) -> bool;
    /// Gives back a core taken by [`CoreLender::borrow`].
    fn give_back(&self);
}

/// Lends nothing: [`run_job`]'s lender.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLender;

impl CoreLender for NoLender {
    fn borrow(&self) -> bool {
        false
    }
    fn give_back(&self) {}
}

/// How often a job of one thread looks for a spare core for its test split while the train
/// split runs (a split takes seconds; a look costs an atomic load).
const LEND_POLL: Duration = Duration::from_millis(20);

/// File name of the native backend's bundle in a job's artifact dir.
pub const BUNDLE_FILE: &str = "native_bundle.npz";
/// Format tag inside the bundle's `config` member.
pub const BUNDLE_FORMAT: &str = "dose-overlap native bundle v1";

/// What to run.
#[derive(Clone, Debug)]
pub struct JobRequest {
    /// The training split's NPZ.
    pub train_path: PathBuf,
    /// The test split's NPZ.
    pub test_path: PathBuf,
    /// Solver settings (both splits).
    pub settings: Settings,
    /// Scoring settings.
    pub eval: EvalOptions,
    /// Where the bundle goes (its folder must exist), e.g. `<artifact_dir>/native_bundle.npz`.
    pub bundle_path: PathBuf,
    /// Stored verbatim in the bundle's `config` under `job` (keep run-specific paths out of it
    /// if bundles are to compare equal across artifact roots).
    pub job_config: serde_json::Value,
    /// 1: splits one after the other; 2 or more: both at once.
    pub threads: usize,
}

/// One split's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitOutcome {
    /// E_F per epoch.
    pub loss_history: Vec<f64>,
    /// The last E_F.
    pub final_loss: f64,
    /// Epochs run.
    pub epochs_completed: u32,
    /// Positions reconstructed.
    pub positions: usize,
    /// How positions were rounded.
    pub rounding: Rounding,
    /// Scores against `objectGuess`.
    pub metrics: Metrics,
    /// ml only: likelihood, prior weight, stopping rule and why it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml: Option<MlReport>,
}

/// A finished job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutcome {
    /// The training split.
    pub train: SplitOutcome,
    /// The test split.
    pub test: SplitOutcome,
    /// The bundle written.
    pub bundle_path: PathBuf,
}

/// Reads one split: the [`Dataset`] and the ground truth `objectGuess`.
pub fn read_split(path: &Path) -> Result<(Dataset, Array2<Complex32>), ReconError> {
    let mut npz = NpzReader::open(path)?;
    let in_file = |message: String| ReconError::BadInput(format!("{}: {message}", path.display()));
    let diffraction = npz
        .read::<f32>("diffraction")?
        .into_dimensionality::<Ix3>()
        .map_err(|_| in_file("diffraction must be 3-d (n, N, N)".into()))?;
    let coords = |npz: &mut NpzReader, key: &str| -> Result<Vec<f64>, ReconError> {
        Ok(npz
            .read::<f64>(key)?
            .into_dimensionality::<Ix1>()
            .map_err(|_| in_file(format!("{key} must be 1-d")))?
            .to_vec())
    };
    let xcoords = coords(&mut npz, "xcoords")?;
    let ycoords = coords(&mut npz, "ycoords")?;
    let complex2 = |npz: &mut NpzReader, key: &str| -> Result<Array2<Complex32>, ReconError> {
        npz.read::<Complex32>(key)?
            .into_dimensionality::<Ix2>()
            .map_err(|_| in_file(format!("{key} must be 2-d")))
    };
    let probe = complex2(&mut npz, "probeGuess")?;
    let truth = complex2(&mut npz, "objectGuess")?;
    let intensity_scale = intensity_scale(&mut npz, path)?;
    let data = Dataset {
        diffraction,
        xcoords,
        ycoords,
        probe,
        object_shape: truth.dim(),
        intensity_scale,
    };
    Ok((data, truth))
}

/// `_metadata.intensity_scale` (s, with counts = (s a)^2), when the file has a unicode JSON
/// `_metadata` that holds it (the toolkit's Phase C and D files); `None` otherwise.
fn intensity_scale(npz: &mut NpzReader, path: &Path) -> Result<Option<f64>, ReconError> {
    let unicode = npz
        .member("_metadata")
        .is_some_and(|m| m.dtype.kind == npz_contract::DtypeKind::Unicode);
    if !unicode {
        return Ok(None);
    }
    let text = npz.read_string("_metadata")?;
    let Ok(serde_json::Value::Object(meta)) = serde_json::from_str::<serde_json::Value>(&text)
    else {
        return Ok(None);
    };
    match meta.get("intensity_scale") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(s) if s.is_finite() && s > 0.0 => Ok(Some(s)),
            _ => Err(ReconError::BadInput(format!(
                "{}: _metadata intensity_scale = {v} must be a positive number (counts = \
                 (intensity_scale x diffraction)^2); fix or remove it",
                path.display()
            ))),
        },
    }
}

/// Reads both splits, reconstructs and scores them, writes the bundle. `on_epoch(split,
/// epoch, E_F)` is called after every epoch (from the split's thread) and stops the job with
/// [`ReconError::Cancelled`] when it breaks.
pub fn run_job(
    request: &JobRequest,
    on_epoch: &(dyn Fn(Split, u32, f64) -> ControlFlow<()> + Sync),
) -> Result<JobOutcome, ReconError> {
    run_job_lent(request, on_epoch, &NoLender)
}

/// [`run_job`] where a job of one thread may borrow a core from `lender` for its test split.
pub fn run_job_lent(
    request: &JobRequest,
    on_epoch: &(dyn Fn(Split, u32, f64) -> ControlFlow<()> + Sync),
    lender: &dyn CoreLender,
) -> Result<JobOutcome, ReconError> {
    // ePIE and rPIE are sequential: the two splits run side by side. ml parallelises inside a
    // split (its chunks balance better than a large train split beside a small test one), so
    // its splits run one after the other, each on every thread.
    let ml = request.settings.algorithm == Algorithm::Ml;
    let inner_threads = if ml { request.threads.max(1) } else { 1 };
    let run = |split: Split,
               path: &Path,
               lender: &dyn CoreLender|
     -> Result<(Reconstruction, SplitOutcome), ReconError> {
        let (data, truth) = read_split(path)?;
        // The scored region comes from the dataset's own probeGuess and positions, never from
        // the refined probe: every run on these data is scored over the same pixels.
        let truth = Truth::new(truth, data.probe.clone(), &data.xcoords, &data.ycoords)
            .map_err(|e| in_split(split, path, e))?;
        let rec = reconstruct_lent(
            &data,
            &request.settings,
            inner_threads,
            lender,
            &mut |e, l| on_epoch(split, e, l),
        )
        .map_err(|e| in_split(split, path, e))?;
        let metrics = truth
            .score(rec.object.view(), &request.eval)
            .map_err(|e| in_split(split, path, e))?;
        let outcome = SplitOutcome {
            final_loss: rec.loss_history.last().copied().unwrap_or(f64::NAN),
            loss_history: rec.loss_history.clone(),
            epochs_completed: rec.epochs_completed,
            positions: data.len(),
            rounding: rec.rounding.clone(),
            metrics,
            ml: rec.ml.clone(),
        };
        Ok((rec, outcome))
    };
    let ((train_rec, train), (test_rec, test)) = if request.threads >= 2 && !ml {
        std::thread::scope(|scope| {
            let test = scope.spawn(|| run(Split::Test, &request.test_path, lender));
            let train = run(Split::Train, &request.train_path, lender);
            let test = test
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            Ok::<_, ReconError>((train?, test?))
        })?
    } else if request.threads == 1 {
        // The test split goes to whichever comes first: a core lent while the train split
        // runs, or this thread once the train split is done. `claimed` says it has gone.
        let claimed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let lent = scope.spawn(|| {
                while !claimed.load(Ordering::SeqCst) {
                    if lender.borrow() {
                        if claimed.swap(true, Ordering::SeqCst) {
                            lender.give_back();
                            return None;
                        }
                        let test = run(Split::Test, &request.test_path, lender);
                        lender.give_back();
                        return Some(test);
                    }
                    std::thread::sleep(LEND_POLL);
                }
                None
            });
            // The train split grows onto a lent core only once the test split has one: two
            // splits on one core each beat one split on two (ml's chunks scale about 1.6x).
            let gated = AfterClaim {
                inner: lender,
                claimed: &claimed,
            };
            let train = run(Split::Train, &request.train_path, &gated);
            let test = if claimed.swap(true, Ordering::SeqCst) {
                lent.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    .expect("the lent core claimed the test split")
            } else {
                // A failed train split fails the job: its test split need not run.
                let train = train?;
                return Ok((train, run(Split::Test, &request.test_path, lender)?));
            };
            Ok::<_, ReconError>((train?, test?))
        })?
    } else {
        (
            run(Split::Train, &request.train_path, lender)?,
            run(Split::Test, &request.test_path, lender)?,
        )
    };
    write_bundle(
        request,
        [(&train_rec, &train), (&test_rec, &test)],
        train_rec.fft_path,
    )?;
    Ok(JobOutcome {
        train,
        test,
        bundle_path: request.bundle_path.clone(),
    })
}

/// Lends what `inner` lends, but only once `claimed` is set (the test split has a core).
struct AfterClaim<'a> {
    inner: &'a dyn CoreLender,
    claimed: &'a AtomicBool,
}

impl CoreLender for AfterClaim<'_> {
    fn borrow(&self) -> bool {
        self.claimed.load(Ordering::SeqCst) && self.inner.borrow()
    }

    fn give_back(&self) {
        self.inner.give_back();
    }
}

fn in_split(split: Split, path: &Path, e: ReconError) -> ReconError {
    match e {
        ReconError::BadInput(m) => {
            ReconError::BadInput(format!("{} split {}: {m}", split, path.display()))
        }
        other => other,
    }
}

/// The bundle's `config` member.
#[derive(Serialize)]
struct BundleConfig<'a> {
    format: &'a str,
    settings: &'a Settings,
    eps: f32,
    fft_path: FftPath,
    fft_convention: &'a str,
    ssim_sigma: f64,
    illumination_threshold: f64,
    members: Vec<String>,
    job: &'a serde_json::Value,
}

/// The deterministic zip: fixed member order, fixed timestamps (npz_contract), `.npy` members
/// NumPy reads, written atomically.
fn write_bundle(
    request: &JobRequest,
    splits: [(&Reconstruction, &SplitOutcome); 2],
    fft_path: FftPath,
) -> Result<(), ReconError> {
    let names = ["object", "probe", "loss_history", "positions_topleft_yx"];
    let mut members = vec!["config".to_string()];
    for split in [Split::Train, Split::Test] {
        members.extend(names.iter().map(|n| format!("{split}_{n}")));
    }
    members.push("metrics".into());
    let config = BundleConfig {
        format: BUNDLE_FORMAT,
        settings: &request.settings,
        eps: EPS,
        fft_path,
        fft_convention: "orthonormal FFT2 with fftshift; psi = P O_j; I = |FFT2(psi)|^2",
        ssim_sigma: request.eval.ssim_sigma,
        illumination_threshold: request.eval.illumination_threshold,
        members: members.clone(),
        job: &request.job_config,
    };
    let json =
        |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("a JSON value serialises");
    let config = serde_json::to_value(&config).expect("the bundle config serialises");
    let mut npz = NpzWriter::create(&request.bundle_path, Compression::Stored)?;
    npz.add_string("config", &json(&config))?;
    for (split, (rec, outcome)) in [Split::Train, Split::Test].into_iter().zip(splits) {
        npz.add(&format!("{split}_object"), &rec.object)?;
        npz.add(&format!("{split}_probe"), &rec.probe)?;
        npz.add(
            &format!("{split}_loss_history"),
            &ndarray::Array1::from(outcome.loss_history.clone()),
        )?;
        let positions = Array2::from_shape_fn((rec.positions_topleft_yx.len(), 2), |(j, a)| {
            rec.positions_topleft_yx[j][a]
        });
        npz.add(&format!("{split}_positions_topleft_yx"), &positions)?;
    }
    let metrics = serde_json::json!({
        "train": splits[0].1.metrics,
        "test": splits[1].1.metrics,
    });
    npz.add_string("metrics", &json(&metrics))?;
    npz.finish()?;
    Ok(())
}

#[cfg(test)]
mod after_claim_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Free(AtomicUsize);

    impl CoreLender for Free {
        fn borrow(&self) -> bool {
            self.0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }
        fn give_back(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A train split gets no lent core while its test split has none: the core stays free
    /// for the test split; once that is claimed, the train split may grow.
    #[test]
    fn the_train_split_borrows_only_once_the_test_split_is_claimed() {
        let inner = Free(AtomicUsize::new(2));
        let claimed = AtomicBool::new(false);
        let gated = AfterClaim {
            inner: &inner,
            claimed: &claimed,
        };
        assert!(!gated.borrow());
        assert_eq!(inner.0.load(Ordering::SeqCst), 2, "nothing taken");
        claimed.store(true, Ordering::SeqCst);
        assert!(gated.borrow());
        assert_eq!(inner.0.load(Ordering::SeqCst), 1);
        gated.give_back();
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
    }
}
