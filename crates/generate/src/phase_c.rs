//! Phase C end to end: the scene (built in or from a base NPZ), the simulation of every dose,
//! the split, and `<root>/dose_<int>/patched_{train,test}.npz` written atomically and
//! validated against DATA-001.

use crate::fft::FftPath;
use crate::forward::{DoseData, Inputs, Simulated, simulate_on};
use crate::poisson::SAMPLER_NAME;
use crate::rng::RNG_NAME;
use crate::scene::{builtin_object, builtin_probe, scan_layout};
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
    #[error("reading the base NPZ")]
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
    #[error("cannot create folder {}", path.display())]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("writing Phase C data")]
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
        let object_seed = design.rng_seeds.object_seed();
        let object = builtin_object(sim.object_size, n, sim.object_phase_range, object_seed);
        let probe = builtin_probe(n, sim.probe_diameter);
        let (xcoords, ycoords, positions) =
            scan_layout(sim.scan_pattern, sim.n_positions, object.dim(), n, seed);
        let provenance = json!({
            "object": {"source": "built-in", "shape": object.shape(), "phase_range": sim.object_phase_range, "seed": object_seed},
            "probe": {"source": "built-in", "shape": probe.shape(), "diameter_fraction": sim.probe_diameter,
                      "model": "circular pupil (radius N/6, raised-cosine edge) with defocus, inverse FFT to the sample plane"},
            "positions": positions,
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
    let io_err = |source| {
        GenerateError::BaseNpz(NpzError::Io {
            path: path.to_path_buf(),
            action: "reading".into(),
            source,
        })
    };
    // A regular file only: a device (/dev/zero) or FIFO would be read without end.
    if !std::fs::metadata(path).map_err(io_err)?.is_file() {
        return Err(content(
            "is not a regular file: give an NPZ with objectGuess and probeGuess".into(),
        ));
    }
    // Hashed as a stream: the file is not held in memory.
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let got = std::io::Read::read(&mut file, &mut buf).map_err(io_err)?;
        if got == 0 {
            break;
        }
        hasher.update(&buf[..got]);
    }
    let digest = hasher.finalize();
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
            let sim = &study.simulation;
            scan_layout(sim.scan_pattern, sim.n_positions, (h, w), n, seed)
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
    use study_design::limits::{MAX_DOSE, MIN_DOSE};
    if let Some(bad) = doses.iter().find(|d| !(MIN_DOSE..=MAX_DOSE).contains(*d)) {
        return Err(GenerateError::Input(format!(
            "doses must be between {MIN_DOSE:e} and {MAX_DOSE:e} photons per pattern, got {bad:e}"
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
    // All-zero counts are no measurement: nothing physical to reconstruct from.
    if let Some(empty) = sim.doses.iter().find(|d| d.counts.iter().all(|&c| c == 0)) {
        return Err(GenerateError::Input(format!(
            "dose {:e} gives no photon in any of the {} patterns: the data would be all zeros; \
             raise the dose (dose_list) or the number of positions (simulation.n_positions)",
            empty.dose,
            scene.xcoords.len()
        )));
    }
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
        let mut metadata = json!({
            "generator": GENERATOR,
            "phase": "C",
            "dose": dose.dose,
            // PtychoPINN's trainer reads the dose from this key (and overrides --nphotons).
            "nphotons": dose.dose,
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
        // A replicate's data says which (its seeds, above, are the replicate's own).
        if let Some(r) = study.replicate {
            metadata["replicate"] = json!(r);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, ArrayD, Ix3};
    use num_complex::Complex64;
    use study_design::Simulation;

    fn tiny() -> Study {
        Study::preset("tiny").unwrap()
    }

    /// The error and its causes, as the CLI prints them.
    fn chain(err: &GenerateError) -> String {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }

    /// A small study: N = 16, a 40 px object, 24 positions.
    fn small(doses: &[f64]) -> Study {
        let mut study = tiny();
        study.design.patch_size_pixels = 16;
        study.design.dose_list = doses.to_vec();
        study.simulation = Simulation {
            n_positions: 24,
            object_size: 40,
            ..Simulation::tiny()
        };
        study
    }

    fn run(study: &Study, root: &Path, threads: usize) -> Summary {
        let options = GenerateOptions {
            threads,
            ..GenerateOptions::default()
        };
        generate(study, root, &options, &|_| {}).unwrap()
    }

    fn read<T: npz_contract::NpzElement>(path: &Path, key: &str) -> ArrayD<T> {
        NpzReader::open(path).unwrap().read::<T>(key).unwrap()
    }

    fn metadata(path: &Path) -> serde_json::Value {
        serde_json::from_str(
            &NpzReader::open(path)
                .unwrap()
                .read_string("_metadata")
                .unwrap(),
        )
        .unwrap()
    }

    /// Every file of a tree, relative path -> bytes.
    fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for dose in std::fs::read_dir(root).unwrap() {
            let dose = dose.unwrap().path();
            for f in std::fs::read_dir(&dose).unwrap() {
                let f = f.unwrap().path();
                out.push((
                    f.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&f).unwrap(),
                ));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn tiny_study_writes_valid_files_with_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let summary = run(&tiny(), dir.path(), 2);
        assert_eq!(summary.doses.len(), 3);
        for d in &summary.doses {
            for (path, n) in [(&d.train, d.n_train), (&d.test, d.n_test)] {
                let report = npz_contract::validate(path, &ValidateOptions::default());
                assert!(report.valid, "{report:?}");
                let r = NpzReader::open(path).unwrap();
                let got: Vec<(String, String, Vec<usize>)> = r
                    .members()
                    .iter()
                    .map(|m| (m.key.clone(), m.descr.clone(), m.shape.clone()))
                    .collect();
                let s = |v: &[usize]| v.to_vec();
                assert_eq!(
                    got,
                    [
                        ("diffraction".into(), "<f4".into(), s(&[n, 32, 32])),
                        ("objectGuess".into(), "<c8".into(), s(&[112, 112])),
                        ("probeGuess".into(), "<c8".into(), s(&[32, 32])),
                        ("xcoords".into(), "<f8".into(), s(&[n])),
                        ("ycoords".into(), "<f8".into(), s(&[n])),
                        ("xcoords_start".into(), "<f8".into(), s(&[n])),
                        ("ycoords_start".into(), "<f8".into(), s(&[n])),
                        ("scan_index".into(), "<i8".into(), s(&[n])),
                        ("Y".into(), "<c8".into(), s(&[n, 32, 32])),
                        (
                            "_metadata".into(),
                            r.member("_metadata").unwrap().descr.clone(),
                            s(&[])
                        ),
                    ]
                );
                let m = metadata(path);
                assert_eq!(m["dose"], d.dose);
                assert_eq!(m["intensity_scale"], d.intensity_scale);
                assert_eq!(m["seeds"]["simulation"], 42);
                assert_eq!(
                    (m["n"].as_u64(), m["N"].as_u64(), m["n_total"].as_u64()),
                    (Some(n as u64), Some(32), Some(200))
                );
                assert_eq!(m["split_point"], summary.split.point);
                assert_eq!(m["object"]["source"], "built-in");
                assert_eq!(m["generator"], GENERATOR);
            }
        }
    }

    #[test]
    fn split_puts_every_position_on_its_side() {
        for axis in [SplitAxis::Y, SplitAxis::X] {
            let dir = tempfile::tempdir().unwrap();
            let mut study = small(&[1e3]);
            study.design.train_test_split_axis = axis;
            let summary = run(&study, dir.path(), 1);
            let d = &summary.doses[0];
            let key = if axis == SplitAxis::Y {
                "ycoords"
            } else {
                "xcoords"
            };
            let (train, test) = (read::<f64>(&d.train, key), read::<f64>(&d.test, key));
            let (lo, hi) = train
                .iter()
                .chain(test.iter())
                .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
            let point = lo + 0.5 * (hi - lo);
            assert_eq!(point, summary.split.point);
            assert!(train.iter().all(|v| *v < point) && test.iter().all(|v| *v >= point));
            assert_eq!(train.len() + test.len(), 24);
            // scan_index: every position exactly once, ascending within a split.
            let mut idx: Vec<i64> = read::<i64>(&d.train, "scan_index")
                .iter()
                .copied()
                .collect();
            let test_idx: Vec<i64> = read::<i64>(&d.test, "scan_index").iter().copied().collect();
            assert!(
                idx.windows(2).all(|w| w[0] < w[1]) && test_idx.windows(2).all(|w| w[0] < w[1])
            );
            idx.extend(test_idx);
            idx.sort();
            assert_eq!(idx, (0..24).collect::<Vec<i64>>());
            // Per-position arrays follow their positions; object and probe are copied whole.
            assert_eq!(
                read::<f64>(&d.train, "xcoords"),
                read::<f64>(&d.train, "xcoords_start")
            );
            assert_eq!(
                read::<Complex32>(&d.train, "objectGuess"),
                read::<Complex32>(&d.test, "objectGuess")
            );
        }
    }

    /// |DFT|^2 / N^2 with fftshift, straight from the definition, in f64.
    fn naive_intensity(psi: &[Complex64], n: usize) -> Vec<f64> {
        let mut out = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..n {
                let (ky, kx) = (
                    crate::fft::fftshift_source(r, n),
                    crate::fft::fftshift_source(c, n),
                );
                let mut acc = Complex64::new(0.0, 0.0);
                for i in 0..n {
                    for k in 0..n {
                        let ang =
                            -2.0 * std::f64::consts::PI * ((ky * i + kx * k) % n) as f64 / n as f64;
                        acc += psi[i * n + k] * Complex64::new(ang.cos(), ang.sin());
                    }
                }
                out[r * n + c] = acc.norm_sqr() / (n * n) as f64;
            }
        }
        out
    }

    #[test]
    fn noiseless_forward_model_of_the_stored_truth_reproduces_the_amplitudes() {
        // At 1e13 photons per pattern the Poisson noise of a bright pixel is ~1e-5 relative.
        let dir = tempfile::tempdir().unwrap();
        let study = small(&[1e13]);
        let summary = run(&study, dir.path(), 2);
        let d = &summary.doses[0];
        let (n, s) = (16usize, d.intensity_scale);
        for path in [&d.train, &d.test] {
            let object = read::<Complex32>(path, "objectGuess")
                .into_dimensionality::<Ix2>()
                .unwrap();
            let probe = read::<Complex32>(path, "probeGuess");
            let y = read::<Complex32>(path, "Y")
                .into_dimensionality::<Ix3>()
                .unwrap();
            let amp = read::<f32>(path, "diffraction")
                .into_dimensionality::<Ix3>()
                .unwrap();
            let (xs, ys) = (read::<f64>(path, "xcoords"), read::<f64>(path, "ycoords"));
            for j in 0..y.len_of(Axis(0)) {
                // Y is the object patch centred on (y, x), bilinear, in f64 from objectGuess.
                let (top, left) = (ys[j] - 8.0, xs[j] - 8.0);
                let (fy, fx) = (top - top.floor(), left - left.floor());
                let at = |r: f64, c: f64| {
                    Complex64::new(
                        object[[r as usize, c as usize]].re as f64,
                        object[[r as usize, c as usize]].im as f64,
                    )
                };
                for (i, k) in [(0usize, 0usize), (8, 8), (15, 3)] {
                    let (r, c) = (top.floor() + i as f64, left.floor() + k as f64);
                    let want = at(r, c) * (1.0 - fy) * (1.0 - fx)
                        + at(r, c + 1.0) * (1.0 - fy) * fx
                        + at(r + 1.0, c) * fy * (1.0 - fx)
                        + at(r + 1.0, c + 1.0) * fy * fx;
                    let got = y[[j, i, k]];
                    assert!(
                        (Complex64::new(got.re as f64, got.im as f64) - want).norm() < 1e-5,
                        "Y[{j},{i},{k}]"
                    );
                }
                let psi: Vec<Complex64> = y
                    .index_axis(Axis(0), j)
                    .iter()
                    .zip(probe.iter())
                    .map(|(o, p)| {
                        Complex64::new(o.re as f64, o.im as f64)
                            * Complex64::new(p.re as f64, p.im as f64)
                    })
                    .collect();
                let intensity = naive_intensity(&psi, n);
                let peak = intensity.iter().copied().fold(0.0, f64::max);
                for (a, i) in amp.index_axis(Axis(0), j).iter().zip(&intensity) {
                    let want = i.sqrt();
                    let lam = s * s * i;
                    // sqrt(Poisson(lam)) / s has sd 1 / (2 s); f32 storage adds 1e-7 relative.
                    let tol = 6.0 / (2.0 * s) + 2e-6 * want + 1e-6 * peak.sqrt();
                    assert!(
                        (f64::from(*a) - want).abs() <= tol,
                        "pattern {j}: {a} vs {want} (lam {lam:.3e})"
                    );
                }
            }
        }
    }

    #[test]
    fn parseval_holds_for_the_forward_model() {
        // sum of fftshift(|FFT(psi)|^2 / N^2) equals sum |psi|^2 (the orthonormal convention).
        let object = builtin_object(48, 16, 3.0, 1);
        let probe = builtin_probe(16, 0.6);
        let plans = crate::fft::Plans::<f32>::new(16);
        let mut fft = plans.workspace();
        let mut patch = vec![Complex32::new(0.0, 0.0); 256];
        crate::forward::extract_patch(&object.view(), 20.3, 25.8, &mut patch);
        let mut psi: Vec<Complex32> = patch.iter().zip(probe.iter()).map(|(o, p)| o * p).collect();
        let energy: f64 = psi.iter().map(|v| f64::from(v.norm_sqr())).sum();
        let spec = fft.forward_transposed(&mut psi);
        let total: f64 = spec.iter().map(|v| f64::from(v.norm_sqr()) / 256.0).sum();
        assert!(
            (total - energy).abs() < 1e-5 * energy,
            "{total} vs {energy}"
        );
    }

    #[test]
    fn mean_counts_per_pattern_match_the_dose() {
        let dir = tempfile::tempdir().unwrap();
        let study = small(&[50.0, 1e3, 1e5]);
        let summary = run(&study, dir.path(), 2);
        for d in &summary.doses {
            // Recount from the stored amplitudes: c = (a s)^2 is an integer.
            let mut total = 0.0;
            for path in [&d.train, &d.test] {
                for a in read::<f32>(path, "diffraction").iter() {
                    let c = (f64::from(*a) * d.intensity_scale).powi(2);
                    assert!(
                        (c - c.round()).abs() < 1e-3 * c.max(1.0),
                        "non-integer count {c}"
                    );
                    total += c.round();
                }
            }
            let mean = total / 24.0;
            assert!((mean - d.mean_counts).abs() < 1e-6 * d.dose);
            // The total is Poisson(24 dose): 5 standard errors.
            let se = (d.dose / 24.0).sqrt();
            assert!(
                (mean - d.dose).abs() < 5.0 * se,
                "dose {}: mean {mean} (se {se})",
                d.dose
            );
        }
    }

    #[test]
    fn reruns_are_byte_identical_whatever_the_thread_count() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        run(&tiny(), a.path(), 1);
        run(&tiny(), b.path(), 2);
        run(&tiny(), c.path(), 7);
        let ta = tree(a.path());
        assert_eq!(ta.len(), 6);
        assert!(
            ta == tree(b.path()) && ta == tree(c.path()),
            "thread count changed the output"
        );
        // A single dose alone gives the same bytes as in the full run.
        let d = tempfile::tempdir().unwrap();
        let options = GenerateOptions {
            doses: Some(vec![1e4]),
            threads: 2,
            ..GenerateOptions::default()
        };
        generate(&tiny(), d.path(), &options, &|_| {}).unwrap();
        let one = tree(d.path());
        assert_eq!(one.len(), 2);
        assert!(
            one.iter().all(|f| ta.contains(f)),
            "--dose 1e4 differs from the full run's dose_10000"
        );
        // Another seed gives other data.
        let e = tempfile::tempdir().unwrap();
        let mut other = tiny();
        other.design.rng_seeds.simulation = 7;
        run(&other, e.path(), 2);
        assert_ne!(ta, tree(e.path()));
    }

    fn write_base(
        path: &Path,
        object: &Array2<Complex32>,
        probe: &Array2<Complex32>,
        coords: Option<(&[f64], &[f64])>,
    ) {
        let mut w = NpzWriter::create(path, Compression::Stored).unwrap();
        w.add("objectGuess", object).unwrap();
        w.add("probeGuess", probe).unwrap();
        if let Some((xs, ys)) = coords {
            w.add("xcoords", &Array1::from(xs.to_vec())).unwrap();
            w.add("ycoords", &Array1::from(ys.to_vec())).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn base_npz_supplies_object_probe_and_coordinates() {
        let dir = tempfile::tempdir().unwrap();
        let object = builtin_object(40, 16, 1.0, 5);
        let probe = builtin_probe(16, 0.5);
        let base = dir.path().join("base data.npz");
        let (xs, ys) = (
            [10.0, 20.5, 30.0, 12.0, 25.0],
            [9.0, 11.0, 30.5, 28.0, 31.0],
        );
        write_base(&base, &object, &probe, Some((&xs, &ys)));
        let study = small(&[1e3]);
        let options = GenerateOptions {
            base_npz: Some(base.clone()),
            threads: 1,
            ..GenerateOptions::default()
        };
        let summary = generate(&study, &dir.path().join("out"), &options, &|_| {}).unwrap();
        assert_eq!(summary.n_positions, 5);
        let d = &summary.doses[0];
        assert_eq!(
            read::<f64>(&d.train, "xcoords").as_slice().unwrap(),
            [10.0, 20.5]
        );
        assert_eq!(
            read::<Complex32>(&d.test, "objectGuess")
                .into_dimensionality::<Ix2>()
                .unwrap(),
            object
        );
        let m = metadata(&d.train);
        assert_eq!(m["object"]["file"], "base data.npz");
        assert_eq!(m["positions"]["source"], "base NPZ xcoords/ycoords");
        assert_eq!(m["object"]["sha256"].as_str().unwrap().len(), 64);

        // Without coordinates: positions drawn from the seed over the base object.
        write_base(&base, &object, &probe, None);
        let summary = generate(&study, &dir.path().join("out2"), &options, &|_| {}).unwrap();
        assert_eq!(summary.n_positions, 24);

        // A probe of the wrong size is named with what to do.
        write_base(&base, &object, &builtin_probe(8, 0.5), None);
        let err = generate(&study, &dir.path().join("out3"), &options, &|_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("probeGuess is 8 x 8 but the design's patch_size_pixels is 16"),
            "{err}"
        );
        // A file that is not an NPZ.
        std::fs::write(&base, b"not a zip").unwrap();
        let err =
            chain(&generate(&study, &dir.path().join("out4"), &options, &|_| {}).unwrap_err());
        assert!(
            err.contains("base data.npz") && err.contains("not a readable NPZ"),
            "{err}"
        );
        assert!(!dir.path().join("out4").exists());
    }

    #[test]
    fn bad_doses_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for doses in [vec![-1.0], vec![f64::NAN], vec![]] {
            let options = GenerateOptions {
                doses: Some(doses),
                ..GenerateOptions::default()
            };
            let err = generate(&tiny(), dir.path(), &options, &|_| {})
                .unwrap_err()
                .to_string();
            assert!(err.contains("dose"), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// The spec's Phase D rule on a split's positions: direct, else greedy by (y, x); accepted
    /// when the kept fraction reaches the geometry-aware floor and at least K + 1 are kept.
    fn split_accepted(pts: &[(f64, f64)], spacing: f64, k: usize) -> (bool, usize) {
        let dist =
            |a: (f64, f64), b: (f64, f64)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
        let n = pts.len();
        let direct = (0..n)
            .filter(|&i| (0..n).all(|j| i == j || dist(pts[i], pts[j]) >= spacing))
            .count();
        let (x0, x1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.0), h.max(p.0)));
        let (y0, y1) = pts
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.1), h.max(p.1)));
        let bound =
            ((x1 - x0) * (y1 - y0) / (std::f64::consts::PI * (spacing / 2.0).powi(2)) / n as f64)
                .min(0.10);
        let floor = (0.8 * bound).max(0.0005);
        let kept = if direct as f64 / n as f64 >= floor {
            direct
        } else {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| {
                pts[a]
                    .1
                    .total_cmp(&pts[b].1)
                    .then(pts[a].0.total_cmp(&pts[b].0))
            });
            let mut kept: Vec<(f64, f64)> = Vec::new();
            for i in order {
                if kept.iter().all(|q| dist(pts[i], *q) >= spacing) {
                    kept.push(pts[i]);
                }
            }
            kept.len()
        };
        (kept as f64 / n as f64 >= floor && kept > k, kept)
    }

    #[test]
    fn presets_give_the_views_they_are_designed_for() {
        // The fly64-derived presets keep its rejected sparse view; pinn-1k is built so that
        // both of its views hold enough groups at gridsize 2.
        for name in study_design::PRESETS {
            let study = Study::preset(name).unwrap();
            let d = &study.design;
            let scene = build_scene(&study, None).unwrap();
            let split =
                split_positions(&scene.xcoords, &scene.ycoords, d.train_test_split_axis).unwrap();
            let pts = |idx: &[usize]| -> Vec<(f64, f64)> {
                idx.iter()
                    .map(|&i| (scene.xcoords[i], scene.ycoords[i]))
                    .collect()
            };
            for (view, spacing) in d.spacing_thresholds().iter() {
                let k = d.neighbor_count as usize;
                let (train_ok, train_kept) = split_accepted(&pts(&split.train), spacing, k);
                let (test_ok, test_kept) = split_accepted(&pts(&split.test), spacing, k);
                let accepted = train_ok && test_ok;
                assert_eq!(
                    accepted,
                    view == "dense" || *name == "pinn-1k",
                    "{name}/{view}: kept {train_kept} and {test_kept}"
                );
            }
        }
    }

    #[test]
    fn y_holds_one_patch_per_position() {
        let dir = tempfile::tempdir().unwrap();
        let summary = run(&small(&[1e3]), dir.path(), 1);
        let y: Array3<Complex32> = read::<Complex32>(&summary.doses[0].train, "Y")
            .into_dimensionality()
            .unwrap();
        // Distinct positions, distinct patches.
        assert_ne!(y.index_axis(Axis(0), 0), y.index_axis(Axis(0), 1));
    }
}
