//! One scoring code for every reconstruction: the truth is a DATA-001 NPZ whose `objectGuess`,
//! `probeGuess` and scan coordinates define the scored region (never a refined probe), and the
//! reconstruction is any complex 2-D object on the objectGuess grid.

use crate::ReconError;
use crate::data::{Split, rounded_topleft};
use crate::metrics::{EvalOptions, Metrics, evaluate};
use ndarray::{Array2, ArrayView2, Ix1, Ix2};
use npz_contract::{DtypeKind, NpzReader};
use num_complex::Complex32;
use std::path::Path;

/// What a reconstruction is scored against: the ground truth and the known illumination.
#[derive(Clone, Debug)]
pub struct Truth {
    /// `objectGuess`: the true object.
    pub object: Array2<Complex32>,
    /// `probeGuess`: the known probe (the region is drawn from it, whatever a solver refined).
    pub probe: Array2<Complex32>,
    /// Integer top-left (row, column) of every patch, rounded as the solver rounds them.
    pub topleft_yx: Vec<[i64; 2]>,
}

impl Truth {
    /// The truth of a split from its arrays (checks shapes and values).
    pub fn new(
        object: Array2<Complex32>,
        probe: Array2<Complex32>,
        xcoords: &[f64],
        ycoords: &[f64],
    ) -> Result<Truth, ReconError> {
        let bad = |m: String| Err(ReconError::BadInput(m));
        let (pn, pm) = probe.dim();
        if pn != pm || pn == 0 {
            return bad(format!(
                "probeGuess must be square and non-empty, got {pn} x {pm}"
            ));
        }
        if object.is_empty() {
            return bad("objectGuess is empty".into());
        }
        if xcoords.len() != ycoords.len() {
            return bad(format!(
                "xcoords holds {} positions but ycoords holds {}",
                xcoords.len(),
                ycoords.len()
            ));
        }
        if xcoords.is_empty() {
            return bad("xcoords/ycoords hold no positions: there is no scanned region".into());
        }
        if !finite(&object) || !finite(&probe) {
            return bad("objectGuess or probeGuess holds non-finite values".into());
        }
        let mut topleft_yx = Vec::with_capacity(xcoords.len());
        for (j, (&x, &y)) in xcoords.iter().zip(ycoords).enumerate() {
            if !x.is_finite() || !y.is_finite() || x.abs() > 1e9 || y.abs() > 1e9 {
                return bad(format!("position {j} is not usable: x={x}, y={y}"));
            }
            let [ty, tx] = rounded_topleft(x, y, pn);
            topleft_yx.push([ty as i64, tx as i64]);
        }
        Ok(Truth {
            object,
            probe,
            topleft_yx,
        })
    }

    /// Reads `objectGuess`, `probeGuess`, `xcoords` and `ycoords` of a DATA-001 NPZ (the
    /// diffraction data is not read).
    pub fn read(path: &Path) -> Result<Truth, ReconError> {
        let mut npz = NpzReader::open(path)?;
        let in_file = |e: ReconError| match e {
            ReconError::BadInput(m) => ReconError::BadInput(format!("{}: {m}", path.display())),
            other => other,
        };
        let complex2 = |npz: &mut NpzReader, key: &str| -> Result<Array2<Complex32>, ReconError> {
            npz.read::<Complex32>(key)?
                .into_dimensionality::<Ix2>()
                .map_err(|_| in_file(ReconError::BadInput(format!("{key} must be 2-d"))))
        };
        let coords = |npz: &mut NpzReader, key: &str| -> Result<Vec<f64>, ReconError> {
            Ok(npz
                .read::<f64>(key)?
                .into_dimensionality::<Ix1>()
                .map_err(|_| in_file(ReconError::BadInput(format!("{key} must be 1-d"))))?
                .to_vec())
        };
        let object = complex2(&mut npz, "objectGuess")?;
        let probe = complex2(&mut npz, "probeGuess")?;
        let x = coords(&mut npz, "xcoords")?;
        let y = coords(&mut npz, "ycoords")?;
        Truth::new(object, probe, &x, &y).map_err(in_file)
    }

    /// Scores `object` (on the objectGuess grid) against this truth.
    pub fn score(
        &self,
        object: ArrayView2<Complex32>,
        options: &EvalOptions,
    ) -> Result<Metrics, ReconError> {
        evaluate(
            object,
            self.object.view(),
            self.probe.view(),
            &self.topleft_yx,
            options,
        )
    }
}

fn finite(a: &Array2<Complex32>) -> bool {
    a.iter().all(|v| v.re.is_finite() && v.im.is_finite())
}

/// Scores an in-memory object against the truth NPZ `truth_npz`.
pub fn score_object(
    truth_npz: &Path,
    object: ArrayView2<Complex32>,
    options: &EvalOptions,
) -> Result<Metrics, ReconError> {
    let truth = Truth::read(truth_npz)?;
    truth.score(object, options).map_err(|e| match e {
        ReconError::BadInput(m) => {
            ReconError::BadInput(format!("scoring against {}: {m}", truth_npz.display()))
        }
        other => other,
    })
}

/// Scores the reconstruction NPZ `recon` against the truth NPZ `truth`. The object is the
/// member `object`, or `<split>_object` when `split` is given (the native bundle and the
/// PtychoPINN reconstruction file hold `train_object` and `test_object`).
pub fn score_files(
    truth: &Path,
    recon: &Path,
    split: Option<Split>,
    options: &EvalOptions,
) -> Result<Metrics, ReconError> {
    let object = read_object(recon, split)?;
    score_object(truth, object.view(), options)
}

/// The reconstructed object of `path`, with errors that say which member to provide.
pub fn read_object(path: &Path, split: Option<Split>) -> Result<Array2<Complex32>, ReconError> {
    let mut npz = NpzReader::open(path)?;
    let key = match split {
        Some(s) => format!("{s}_object"),
        None => "object".to_string(),
    };
    let bad = |m: String| ReconError::BadInput(format!("{}: {m}", path.display()));
    let Some(info) = npz.member(&key) else {
        let keys: Vec<&str> = npz.members().iter().map(|m| m.key.as_str()).collect();
        let per_split = keys.iter().any(|k| k.ends_with("_object"));
        let hint = match split {
            None if per_split => "; it holds per-split objects: pass --split train or test",
            None => "; expected a complex 2-D `object` on the truth's objectGuess grid",
            Some(_) if keys.contains(&"object") => "; it holds a single `object`: omit --split",
            Some(_) => "; expected `train_object`/`test_object` (complex 2-D)",
        };
        return Err(bad(format!(
            "no member `{key}` (found: {}){hint}",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        )));
    };
    if info.dtype.kind != DtypeKind::Complex {
        return Err(bad(format!(
            "`{key}` holds {} {}, expected a complex (complex64/complex128) 2-D object",
            info.dtype_name(),
            info.shape_text()
        )));
    }
    if info.shape.len() != 2 {
        return Err(bad(format!(
            "`{key}` has shape {}, expected a 2-D object (rows, columns)",
            info.shape_text()
        )));
    }
    let object = npz
        .read::<Complex32>(&key)?
        .into_dimensionality::<Ix2>()
        .map_err(|_| bad(format!("`{key}` must be 2-d")))?;
    if !finite(&object) {
        return Err(bad(format!("`{key}` holds non-finite values")));
    }
    Ok(object)
}
