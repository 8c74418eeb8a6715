//! Phase C end to end: the scene (built in or from a base NPZ), the simulation of every dose,
//! the split, and `<root>/dose_<int>/patched_{train,test}.npz` written atomically and
//! validated against DATA-001.

use crate::fft::FftPath;
use crate::forward::{DoseData, Inputs, Simulated, simulate_on};
use crate::poisson::SAMPLER_NAME;
use crate::rng::RNG_NAME;
use crate::scene::{builtin_object, builtin_probe, scan_positions};
use crate::split::{Split, split_positions};
use ndarray::{Array1, Array2, Axis, Ix1, Ix2};
use npz_contract::{Compression, NpzError, NpzReader, NpzWriter, ValidateOptions};
use num_complex::Complex32;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use study_design::{Design, SplitAxis, Study};

/// The generator's name and version, recorded in `_metadata`.
pub const GENERATOR: &str = concat!("dose-overlap generate ", env!("CARGO_PKG_VERSION"));

/// Why Phase C failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The base NPZ could not be read.
    #[error("reading the base NPZ: {0}")]
    BaseNpz(#[source] NpzError),
    /// The base NPZ is readable but unusable.
    #[error("base NPZ {}: {message}", path.display())]
    BaseContent {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The inputs cannot be simulated or split (bad dose, degenerate positions, ...).
    #[error("{0}")]
    Input(String),
    /// A folder could not be created.
    #[error("cannot create folder {}: {source}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("writing Phase C data: {0}")]
    Write(#[source] NpzError),
    /// A written file fails DATA-001 (a bug: the file is removed).
    #[error("{} fails DATA-001 validation (removed): {}", path.display(), errors.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The validator's errors.
        errors: Vec<String>,
    },
}

/// What to generate beyond the study itself.
#[derive(Clone, Debug, Default)]
pub struct GenerateOptions {
    /// Only these doses (default: the design's dose list).
    pub doses: Option<Vec<f64>>,
    /// Object, probe (and coordinates, if it has them) from this NPZ instead of the study's
    /// `simulation.base_npz` or the built-in ones.
    pub base_npz: Option<PathBuf>,
    /// Worker threads (0 or 1: one). The output does not depend on it.
    pub threads: usize,
    /// FFT path (`None`: AVX when available, else scalar).
    pub fft_path: Option<FftPath>,
}

/// Progress of [`generate`].
#[derive(Debug)]
pub enum Event<'a> {
    /// The scene is ready.
    Scene {
        /// Positions to simulate.
        n_positions: usize,
        /// Where O and P come from (`built-in` or the base NPZ's file name).
        source: &'a str,
    },
    /// Simulation progress: `done` of `total` steps (two per position).
    Simulating {
        /// Steps done.
        done: usize,
        /// All steps.
        total: usize,
    },
    /// Every position of every dose is simulated.
    Simulated {
        /// Positions.
        n_positions: usize,
        /// Doses.
        n_doses: usize,
    },
    /// One dose's two files are written and valid.
    Wrote(&'a DoseSummary),
}

/// One dose's output.
#[derive(Clone, Debug, PartialEq)]
pub struct DoseSummary {
    /// Photons per pattern.
    pub dose: f64,
    /// `<root>/dose_<int>/patched_train.npz`.
    pub train: PathBuf,
    /// `<root>/dose_<int>/patched_test.npz`.
    pub test: PathBuf,
    /// Positions in train.
    pub n_train: usize,
    /// Positions in test.
    pub n_test: usize,
    /// s.
    pub intensity_scale: f64,
    /// Measured photons per pattern, mean over all positions.
    pub mean_counts: f64,
    /// Bytes written (both files).
    pub bytes: u64,
}

/// What [`generate`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Positions (train and test).
    pub n_positions: usize,
    /// N.
    pub patch: usize,
    /// Object shape (rows, columns).
    pub object_shape: (usize, usize),
    /// The split.
    pub split: Split,
    /// The FFT path used.
    pub fft_path: FftPath,
    /// One entry per dose, in order.
    pub doses: Vec<DoseSummary>,
}

/// The object, probe and positions of a study, and where they came from.
pub struct Scene {
    /// O.
    pub object: Array2<Complex32>,
    /// P.
    pub probe: Array2<Complex32>,
    /// Patch centres, columns.
    pub xcoords: Vec<f64>,
    /// Patch centres, rows.
    pub ycoords: Vec<f64>,
    /// Provenance for `_metadata` (`object`, `probe`, `positions` entries).
    pub provenance: serde_json::Value,
    /// `built-in` or the base NPZ's file name.
    pub source: String,
}

/// Builds the scene: from `base_npz` when given (its `objectGuess`, `probeGuess`, and its
/// `xcoords`/`ycoords` when it has both), else the built-in object and probe; positions drawn
/// from the seed unless the base NPZ has them.
pub fn build_scene(study: &Study, base_npz: Option<&Path>) -> Result<Scene, GenerateError> {
    let design = &study.design;
    let sim = &study.simulation;
    let n = design.patch_size_pixels as usize;
    let seed = design.rng_seeds.simulation;
    let Some(path) = base_npz else {
        let object = builtin_object(sim.object_size, n, sim.object_phase_range, seed);
        let probe = builtin_probe(n, sim.probe_diameter);
        let (xcoords, ycoords) = scan_positions(sim.n_positions, object.dim(), n, seed);
        let provenance = json!({
            "object": {"source": "built-in", "shape": object.shape(), "phase_range": sim.object_phase_range, "seed": seed},
            "probe": {"source": "built-in", "shape": probe.shape(), "diameter_fraction": sim.probe_diameter,
                      "model": "circular pupil (radius N/6, raised-cosine edge) with defocus, inverse FFT to the sample plane"},
            "positions": {"source": "uniform random", "range": "x in [N/2, W-N/2), y in [N/2, H-N/2)", "seed": seed},
        });
        return Ok(Scene {
            object,
            probe,
            xcoords,
            ycoords,
            provenance,
            source: "built-in".into(),
        });
    };
    let content = |message: String| GenerateError::BaseContent {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| {
        GenerateError::BaseNpz(NpzError::Io {
            path: path.to_path_buf(),
            action: "reading".into(),
            source,
        })
    })?;
    let digest = Sha256::digest(&bytes);
    drop(bytes);
    let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut reader = NpzReader::open(path).map_err(GenerateError::BaseNpz)?;
    let object = reader
        .read::<Complex32>("objectGuess")
        .map_err(GenerateError::BaseNpz)?
        .into_dimensionality::<Ix2>()
        .map_err(|_| content("objectGuess must be 2-D (rows, columns)".into()))?;
    let probe = reader
        .read::<Complex32>("probeGuess")
        .map_err(GenerateError::BaseNpz)?
        .into_dimensionality::<Ix2>()
        .map_err(|_| content("probeGuess must be 2-D (N, N)".into()))?;
    if probe.dim() != (n, n) {
        return Err(content(format!(
            "probeGuess is {} x {} but the design's patch_size_pixels is {n}: use a {n} x {n} probe or set patch_size_pixels = {}",
            probe.nrows(),
            probe.ncols(),
            probe.nrows()
        )));
    }
    let (h, w) = object.dim();
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let has = |k: &str| reader.member(k).is_some();
    let (xcoords, ycoords, positions) = match (has("xcoords"), has("ycoords")) {
        (true, true) => {
            let mut read = |k: &str| -> Result<Vec<f64>, GenerateError> {
                let a = reader.read::<f64>(k).map_err(GenerateError::BaseNpz)?;
                let a = a
                    .into_dimensionality::<Ix1>()
                    .map_err(|_| content(format!("{k} must be 1-D")))?;
                Ok(a.to_vec())
            };
            let (xs, ys) = (read("xcoords")?, read("ycoords")?);
            if xs.len() != ys.len() || xs.is_empty() {
                return Err(content(format!(
                    "xcoords has {} values and ycoords {}: they must be equal and non-zero",
                    xs.len(),
                    ys.len()
                )));
            }
            (
                xs,
                ys,
                json!({"source": "base NPZ xcoords/ycoords", "file": file}),
            )
        }
        (false, false) => {
            if h <= n || w <= n {
                return Err(content(format!(
                    "objectGuess is {h} x {w}, not larger than the {n} x {n} patch, and the file has no xcoords/ycoords: \
                     positions need an object larger than N"
                )));
            }
            let (xs, ys) = scan_positions(study.simulation.n_positions, (h, w), n, seed);
            (
                xs,
                ys,
                json!({"source": "uniform random", "range": "x in [N/2, W-N/2), y in [N/2, H-N/2)", "seed": seed}),
            )
        }
        _ => {
            return Err(content(
                "has only one of xcoords and ycoords: give both or neither".into(),
            ));
        }
    };
    let provenance = json!({
        "object": {"source": "base NPZ objectGuess", "file": file, "sha256": sha256, "shape": [h, w]},
        "probe": {"source": "base NPZ probeGuess", "file": file, "sha256": sha256, "shape": [n, n]},
        "positions": positions,
    });
    Ok(Scene {
        object,
        probe,
        xcoords,
        ycoords,
        provenance,
        source: file,
    })
}

/// Phase C: simulates every dose of `study` (or `options.doses`) and writes
/// `<out_root>/dose_<int>/patched_{train,test}.npz`, each validated against DATA-001.
pub fn generate(
    study: &Study,
    out_root: &Path,
    options: &GenerateOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Summary, GenerateError> {
    let design = &study.design;
    let doses = options
        .doses
        .clone()
        .unwrap_or_else(|| design.dose_list.clone());
    if doses.is_empty() {
        return Err(GenerateError::Input(
            "no dose to generate: the dose list is empty".into(),
        ));
    }
    if let Some(bad) = doses.iter().find(|d| !(d.is_finite() && **d > 0.0)) {
        return Err(GenerateError::Input(format!(
            "doses must be positive photon counts, got {bad}"
        )));
    }
    let base = options
        .base_npz
        .as_deref()
        .or(study.simulation.base_npz.as_deref());
    let scene = build_scene(study, base)?;
    let n = design.patch_size_pixels as usize;
    let split = split_positions(&scene.xcoords, &scene.ycoords, design.train_test_split_axis).ok_or_else(|| {
        GenerateError::Input(format!(
            "cannot split {} positions along {}: every position has the same coordinate on that axis",
            scene.xcoords.len(),
            axis_name(design.train_test_split_axis)
        ))
    })?;
    on_event(Event::Scene {
        n_positions: scene.xcoords.len(),
        source: &scene.source,
    });
    let inputs = Inputs {
        object: scene.object.view(),
        probe: scene.probe.view(),
        xcoords: &scene.xcoords,
        ycoords: &scene.ycoords,
        seed: design.rng_seeds.simulation,
    };
    let progress = |done, total| on_event(Event::Simulating { done, total });
    let sim = simulate_on(
        &inputs,
        &doses,
        options.threads,
        options.fft_path,
        &progress,
    )
    .map_err(|e| GenerateError::Input(e.to_string()))?;
    on_event(Event::Simulated {
        n_positions: scene.xcoords.len(),
        n_doses: doses.len(),
    });
    let compression = if study.simulation.compress {
        Compression::Deflated
    } else {
        Compression::Stored
    };
    let mut summaries = Vec::new();
    for dose in &sim.doses {
        let summary = write_dose(study, out_root, &scene, &sim, dose, &split, compression)?;
        on_event(Event::Wrote(&summary));
        summaries.push(summary);
    }
    Ok(Summary {
        n_positions: scene.xcoords.len(),
        patch: n,
        object_shape: scene.object.dim(),
        split,
        fft_path: sim.fft_path,
        doses: summaries,
    })
}

fn axis_name(axis: SplitAxis) -> &'static str {
    match axis {
        SplitAxis::Y => "y",
        SplitAxis::X => "x",
    }
}

/// Writes and validates one dose's two files; on a validation failure both are removed.
fn write_dose(
    study: &Study,
    out_root: &Path,
    scene: &Scene,
    sim: &Simulated,
    dose: &DoseData,
    split: &Split,
    compression: Compression,
) -> Result<DoseSummary, GenerateError> {
    let dir = out_root.join(Design::dose_dir_name(dose.dose));
    std::fs::create_dir_all(&dir).map_err(|source| GenerateError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let train = dir.join("patched_train.npz");
    let test = dir.join("patched_test.npz");
    let n_all = scene.xcoords.len();
    let total_counts: u64 = dose.counts.iter().sum();
    for (name, path, idx) in [
        ("train", &train, &split.train),
        ("test", &test, &split.test),
    ] {
        let counts: u64 = idx.iter().map(|&j| dose.counts[j]).sum();
        let metadata = json!({
            "generator": GENERATOR,
            "phase": "C",
            "dose": dose.dose,
            "intensity_scale": dose.intensity_scale,
            "mean_counts_per_pattern": counts as f64 / idx.len() as f64,
            "mean_counts_per_pattern_all": total_counts as f64 / n_all as f64,
            "seeds": study.design.rng_seeds,
            "split": name,
            "split_axis": axis_name(split.axis),
            "split_point": split.point,
            "n": idx.len(),
            "n_total": n_all,
            "n_train": split.train.len(),
            "n_test": split.test.len(),
            "N": study.design.patch_size_pixels,
            "object": scene.provenance["object"],
            "probe": scene.provenance["probe"],
            "positions": scene.provenance["positions"],
            "forward_model": "I = fftshift(|FFT2(P * O_j)|^2 / N^2); counts ~ Poisson(s^2 I); diffraction = sqrt(counts) / s",
            "patches": "bilinear, centre pixel (N/2, N/2) on (ycoords, xcoords), zero outside the object",
            "fft": sim.fft_path.name(),
            "rng": RNG_NAME,
            "poisson": SAMPLER_NAME,
        });
        let xs: Array1<f64> = idx.iter().map(|&j| scene.xcoords[j]).collect();
        let ys: Array1<f64> = idx.iter().map(|&j| scene.ycoords[j]).collect();
        let scan: Array1<i64> = idx.iter().map(|&j| j as i64).collect();
        let mut w = NpzWriter::create(path, compression).map_err(GenerateError::Write)?;
        w.add("diffraction", &dose.diffraction.select(Axis(0), idx))
            .map_err(GenerateError::Write)?;
        w.add("objectGuess", &scene.object)
            .map_err(GenerateError::Write)?;
        w.add("probeGuess", &scene.probe)
            .map_err(GenerateError::Write)?;
        w.add("xcoords", &xs).map_err(GenerateError::Write)?;
        w.add("ycoords", &ys).map_err(GenerateError::Write)?;
        // DATA-001: the start coordinates default to the centres; written for readers that
        // expect them.
        w.add("xcoords_start", &xs).map_err(GenerateError::Write)?;
        w.add("ycoords_start", &ys).map_err(GenerateError::Write)?;
        w.add("scan_index", &scan).map_err(GenerateError::Write)?;
        w.add("Y", &sim.y.select(Axis(0), idx))
            .map_err(GenerateError::Write)?;
        w.add_string("_metadata", &metadata.to_string())
            .map_err(GenerateError::Write)?;
        w.finish().map_err(GenerateError::Write)?;
    }
    for path in [&train, &test] {
        let report = npz_contract::validate(path, &ValidateOptions::default());
        if !report.valid {
            let _ = std::fs::remove_file(&train);
            let _ = std::fs::remove_file(&test);
            return Err(GenerateError::Invalid {
                path: path.clone(),
                errors: report.errors,
            });
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Ok(DoseSummary {
        dose: dose.dose,
        n_train: split.train.len(),
        n_test: split.test.len(),
        intensity_scale: dose.intensity_scale,
        mean_counts: total_counts as f64 / n_all as f64,
        bytes: size(&train) + size(&test),
        train,
        test,
    })
}
