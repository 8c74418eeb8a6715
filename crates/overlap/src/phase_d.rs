//! Phase D on files: one dose folder of a Phase C tree in, filtered view NPZs and the dose's
//! `overlap_report.json` out.
//!
//! Each Phase C split is read once for its coordinates and probe, and once more member by
//! member while every accepted view's archive is written, so memory holds one member at a time.
//! Outputs are written under hidden pending names, validated (DATA-001, gridsize 2, K), and only
//! then renamed into place; a rejected view's NPZs from an earlier run are removed so that
//! Phase E sees the skip. The report is written last, atomically.

use crate::disc::{DiameterRule, mean_disc_overlap, probe_diameter};
use crate::error::OverlapError;
use crate::report::{
    DoseReport, OVERLAP_REPORT, REPORT_VERSION, SplitFigures, SplitReport, Splits, TargetReport,
    ViewReport,
};
use crate::select::Positions;
use crate::target::{TargetOutcome, exposures_per_pixel};
use crate::view::ViewSelection;
use ndarray::{Axis, Ix2};
use npz_contract::{Compression, DtypeKind, MemberInfo, NpzElement, NpzReader, NpzWriter};
use num_complex::{Complex, Complex64};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use study_design::Design;

/// The two splits, in the order they are processed and reported.
pub const SPLITS: [&str; 2] = ["train", "test"];

/// Members that are never per-position, whatever their first axis.
const WHOLE_MEMBERS: [&str; 3] = ["objectGuess", "probeGuess", "_metadata"];

/// `<phase_c_dir>/patched_<split>.npz`.
pub fn phase_c_file(phase_c_dir: &Path, split: &str) -> PathBuf {
    phase_c_dir.join(format!("patched_{split}.npz"))
}

/// `<phase_d_dose_dir>/<view>/<view>_<split>.npz`.
pub fn view_file(phase_d_dose_dir: &Path, view: &str, split: &str) -> PathBuf {
    phase_d_dose_dir
        .join(view)
        .join(format!("{view}_{split}.npz"))
}

/// What one dose gave.
#[derive(Debug)]
pub struct DoseOutcome {
    /// The report, as written.
    pub report: DoseReport,
    /// Where it was written.
    pub report_path: PathBuf,
}

/// One Phase C split, read for selection.
struct SplitSource {
    path: PathBuf,
    reader: NpzReader,
    positions: Positions,
    probe: (f64, DiameterRule),
    /// The source `_metadata` as a JSON object (empty when absent or unusable).
    metadata: Map<String, Value>,
    compression: Compression,
}

/// Runs Phase D for one dose: reads `<phase_c_root>/dose_<int>/patched_{train,test}.npz`,
/// selects every view of `design`, writes the accepted views' NPZs under
/// `<phase_d_root>/dose_<int>/` and the dose's `overlap_report.json`. `note` receives short
/// progress lines.
pub fn run_dose(
    phase_c_root: &Path,
    phase_d_root: &Path,
    dose: f64,
    design: &Design,
    note: &dyn Fn(&str),
) -> Result<DoseOutcome, OverlapError> {
    let dose_dir = Design::dose_dir_name(dose);
    let c_dir = phase_c_root.join(&dose_dir);
    let d_dir = phase_d_root.join(&dose_dir);
    if !c_dir.is_dir() {
        return Err(OverlapError::MissingDoseDir { dose, path: c_dir });
    }
    let mut warnings = Vec::new();
    let train = read_split(&phase_c_file(&c_dir, "train"), design, &mut warnings)?;
    let test = read_split(&phase_c_file(&c_dir, "test"), design, &mut warnings)?;
    note(&format!(
        "{dose_dir}: selecting {} view(s) on {} train and {} test positions",
        design.overlap_views.0.len(),
        train.positions.len(),
        test.positions.len()
    ));
    let spacings = design.spacing_thresholds();
    let selections: Vec<Chosen> = design
        .overlap_views
        .names()
        .map(|view| match design.overlap_target(view) {
            Some(goal) => {
                let (sel, outcome) = crate::target::search(
                    view,
                    goal,
                    design.neighbor_count,
                    &train.positions,
                    &test.positions,
                    [train.probe.0, test.probe.0],
                );
                Chosen {
                    sel,
                    target: Some(outcome),
                }
            }
            None => Chosen {
                sel: ViewSelection::select(
                    view,
                    spacings
                        .get(view)
                        .expect("a view without a target has a spacing threshold"),
                    design.neighbor_count,
                    &train.positions,
                    &test.positions,
                ),
                target: None,
            },
        })
        .collect();

    let views: Vec<ViewReport> = selections
        .iter()
        .map(|sel| view_report(sel, [&train, &test], &d_dir))
        .collect();

    std::fs::create_dir_all(&d_dir).map_err(|source| OverlapError::Io {
        path: d_dir.clone(),
        action: "creating the dose folder",
        source,
    })?;
    let mut pending = Pending::default();
    let accepted: Vec<(&Chosen, &ViewReport)> = selections
        .iter()
        .zip(&views)
        .filter(|(chosen, _)| chosen.accepted())
        .collect();
    for (chosen, _) in &accepted {
        let dir = d_dir.join(&chosen.sel.view);
        std::fs::create_dir_all(&dir).map_err(|source| OverlapError::Io {
            path: dir,
            action: "creating the view folder",
            source,
        })?;
    }
    let names: Vec<&str> = accepted
        .iter()
        .map(|(chosen, _)| chosen.sel.view.as_str())
        .collect();
    // With no accepted view the member data is never read.
    let sources = if accepted.is_empty() {
        Vec::new()
    } else {
        vec![train, test]
    };
    let jobs: Vec<(SplitSource, Vec<Target>)> = sources
        .into_iter()
        .enumerate()
        .map(|(index, source)| {
            let targets = accepted
                .iter()
                .map(|(chosen, report)| {
                    let sel = &chosen.sel;
                    let selection = sel.splits()[index].1;
                    let figures = [&report.splits.train, &report.splits.test][index];
                    let fin = view_file(&d_dir, &sel.view, SPLITS[index]);
                    Target {
                        pending: pending_name(&fin),
                        fin,
                        rows: (0..selection.keep.len())
                            .filter(|&i| selection.keep[i])
                            .collect(),
                        metadata: view_metadata(&source.metadata, sel, figures, report),
                    }
                })
                .collect();
            (source, targets)
        })
        .collect();
    if !jobs.is_empty() {
        note(&format!(
            "{dose_dir}: writing {} (train and test at once)",
            names.join(", ")
        ));
    }
    // The two splits are independent files: one thread each (reading dominates; memory holds
    // one member per split). Results are merged in split order, so nothing depends on timing.
    let results: Vec<Result<(Pending, Vec<String>), OverlapError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(source, targets)| scope.spawn(move || write_split(source, targets)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a split writer panicked"))
            .collect()
    });
    for result in results {
        let (mut done, split_warnings) = result?;
        pending.files.append(&mut done.files);
        warnings.extend(split_warnings);
    }
    if !pending.files.is_empty() {
        note(&format!(
            "{dose_dir}: validating {} file(s)",
            pending.files.len()
        ));
    }
    for (file, _) in &pending.files {
        check_output(file, design.neighbor_count)?;
    }
    // One at a time, so that after a failed rename the rest are still removed by `pending`.
    while let Some((file, fin)) = pending.files.first().cloned() {
        std::fs::rename(&file, &fin).map_err(|source| OverlapError::Io {
            path: fin.clone(),
            action: "moving the validated file into place",
            source,
        })?;
        pending.files.remove(0);
    }
    for chosen in selections.iter().filter(|c| !c.accepted()) {
        remove_stale(&d_dir, &chosen.sel.view)?;
    }
    let report = DoseReport {
        report_version: REPORT_VERSION,
        dose,
        phase_c_dir: c_dir.display().to_string(),
        phase_d_dir: d_dir.display().to_string(),
        neighbor_count: design.neighbor_count,
        min_positions_per_split: design.neighbor_count as usize + 1,
        views,
        warnings,
    };
    let report_path = d_dir.join(OVERLAP_REPORT);
    npz_contract::atomic::write_atomic(&report_path, report.to_json().as_bytes()).map_err(
        |source| OverlapError::Io {
            path: report_path.clone(),
            action: "writing the overlap report",
            source,
        },
    )?;
    Ok(DoseOutcome {
        report,
        report_path,
    })
}

/// Reads a split's coordinates, probe and metadata; the member data waits for [`write_split`].
fn read_split(
    path: &Path,
    design: &Design,
    warnings: &mut Vec<String>,
) -> Result<SplitSource, OverlapError> {
    if !path.is_file() {
        return Err(OverlapError::MissingFile {
            path: path.to_path_buf(),
        });
    }
    // Header checks only (no array data): the data is read once, below and while writing.
    let checked = npz_contract::validate(
        path,
        &npz_contract::ValidateOptions {
            gridsize: Some(1),
            neighbor_count: None,
            header_only: true,
        },
    );
    if !checked.valid {
        return Err(OverlapError::Input {
            path: path.to_path_buf(),
            message: format!(
                "not a valid Phase C file (DATA-001):\n  {}",
                checked.errors.join("\n  ")
            ),
        });
    }
    let mut reader = NpzReader::open(path)?;
    if let Some(bad) = reader.rejected().first() {
        return Err(OverlapError::Input {
            path: path.to_path_buf(),
            message: format!("member '{}' is unreadable: {}", bad.key, bad.reason),
        });
    }
    let input = |message: String| OverlapError::Input {
        path: path.to_path_buf(),
        message,
    };
    let mut column = |key: &str| -> Result<Vec<f64>, OverlapError> {
        let array = reader.read::<f64>(key)?;
        if array.ndim() != 1 {
            return Err(input(format!(
                "{key} must be 1-d (n,), found shape {:?}",
                array.shape()
            )));
        }
        Ok(array.into_iter().collect())
    };
    let xs = column("xcoords")?;
    let ys = column("ycoords")?;
    let positions = Positions::new(xs, ys).map_err(|e| input(e.to_string()))?;
    let probe = if reader.member("probeGuess").is_some() {
        let probe = reader
            .read::<Complex64>("probeGuess")?
            .into_dimensionality::<Ix2>()
            .map_err(|_| input("probeGuess must be 2-d (N, N)".to_string()))?;
        probe_diameter(probe.view())
    } else {
        warnings.push(format!(
            "{}: no probeGuess; the disc-overlap metric uses D = N / 2",
            path.display()
        ));
        (
            f64::from(design.patch_size_pixels) / 2.0,
            DiameterRule::HalfPatch,
        )
    };
    let metadata = match reader.member("_metadata").map(|m| m.dtype.kind) {
        None => Map::new(),
        Some(DtypeKind::Unicode) => {
            let text = reader.read_string("_metadata")?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                _ => {
                    warnings.push(format!(
                        "{}: _metadata is not a JSON object; kept as source_metadata",
                        path.display()
                    ));
                    Map::from_iter([("source_metadata".to_string(), Value::String(text))])
                }
            }
        }
        Some(_) => {
            warnings.push(format!(
                "{}: _metadata is not a unicode string (pickled?); it was not read",
                path.display()
            ));
            Map::new()
        }
    };
    let compression = if reader
        .members()
        .iter()
        .any(|m| m.compression == Compression::Deflated)
    {
        Compression::Deflated
    } else {
        Compression::Stored
    };
    Ok(SplitSource {
        path: path.to_path_buf(),
        reader,
        positions,
        probe,
        metadata,
        compression,
    })
}

/// One view's selection and, for a view given by an overlap target, what the search found.
struct Chosen {
    sel: ViewSelection,
    target: Option<TargetOutcome>,
}

impl Chosen {
    /// The selection is accepted and, for a target view, realises its target.
    fn accepted(&self) -> bool {
        self.sel.accepted() && self.target.as_ref().is_none_or(|t| t.within)
    }

    /// Why the view is rejected; the target's account first, which names the selection's.
    fn reason(&self) -> Option<String> {
        match &self.target {
            Some(t) => t.reason.clone(),
            None => self.sel.rejection_reason(),
        }
    }
}

/// The report entry of one view.
fn view_report(chosen: &Chosen, sources: [&SplitSource; 2], d_dir: &Path) -> ViewReport {
    let sel = &chosen.sel;
    let accepted = chosen.accepted();
    let split_report = |index: usize| {
        let (name, s) = sel.splits()[index];
        let source = sources[index];
        let (diameter, rule) = source.probe;
        let kept = source.positions.filtered(&s.keep);
        SplitReport {
            n_total: s.n_total,
            n_accepted: s.n_accepted,
            n_rejected: s.n_rejected(),
            acceptance_rate: s.acceptance_rate,
            geometry_acceptance_bound: s.geometry_acceptance_bound,
            effective_min_acceptance: s.effective_min_acceptance,
            selection_strategy: s.strategy.as_str().to_string(),
            direct_n_accepted: s.direct_n_accepted,
            bbox_width: s.bbox_size.0,
            bbox_height: s.bbox_size.1,
            bbox_area: s.bbox_area,
            probe_diameter_px: diameter,
            probe_diameter_rule: rule.as_str().to_string(),
            mean_disc_overlap: mean_disc_overlap(&kept, diameter),
            source_mean_disc_overlap: mean_disc_overlap(&source.positions, diameter),
            source_file: source.path.display().to_string(),
            output_file: accepted.then(|| view_file(d_dir, &sel.view, name).display().to_string()),
        }
    };
    let exposures = |index: usize| {
        let source = sources[index];
        let keep = &sel.splits()[index].1.keep;
        exposures_per_pixel(&source.positions.filtered(keep), source.probe.0)
    };
    let overlap_target = chosen.target.as_ref().map(|t| TargetReport {
        overlap: t.target.overlap,
        tolerance: t.target.tolerance,
        realised_overlap: t.realised_mean(),
        realised_train: t.realised[0],
        realised_test: t.realised[1],
        within_tolerance: t.within,
        spacings_tried: t.tried,
        exposures_per_pixel: SplitFigures {
            train: exposures(0),
            test: exposures(1),
        },
    });
    ViewReport {
        view: sel.view.clone(),
        spacing_threshold: sel.spacing_threshold,
        accepted,
        reason: chosen.reason(),
        selection_strategy: sel.strategy().to_string(),
        splits: Splits {
            train: split_report(0),
            test: split_report(1),
        },
        overlap_target,
    }
}

/// The `_metadata` of one view file: the source's metadata plus the view's figures (which win
/// over source keys of the same name), compact JSON with sorted keys.
fn view_metadata(
    source: &Map<String, Value>,
    sel: &ViewSelection,
    split: &SplitReport,
    view: &ViewReport,
) -> String {
    let mut meta = source.clone();
    // Only for a target view: a fraction view's files carry what they did before targets.
    if let Some(t) = &view.overlap_target {
        meta.insert("overlap_target".into(), Value::from(t.overlap));
        meta.insert("overlap_tolerance".into(), Value::from(t.tolerance));
    }
    let entries = [
        ("overlap_view", Value::from(sel.view.as_str())),
        ("spacing_threshold", Value::from(sel.spacing_threshold)),
        ("source_file", Value::from(split.source_file.as_str())),
        ("n_accepted", Value::from(split.n_accepted)),
        ("n_rejected", Value::from(split.n_rejected)),
        ("acceptance_rate", Value::from(split.acceptance_rate)),
        (
            "selection_strategy",
            Value::from(split.selection_strategy.as_str()),
        ),
        (
            "geometry_acceptance_bound",
            Value::from(split.geometry_acceptance_bound),
        ),
        (
            "effective_min_acceptance",
            Value::from(split.effective_min_acceptance),
        ),
        ("mean_disc_overlap", Value::from(split.mean_disc_overlap)),
        ("probe_diameter_px", Value::from(split.probe_diameter_px)),
    ];
    for (key, value) in entries {
        meta.insert(key.to_string(), value);
    }
    serde_json::to_string(&crate::report::sorted(Value::Object(meta)))
        .expect("a JSON value always serialises")
}

/// One view archive to write from a split.
struct Target {
    fin: PathBuf,
    pending: PathBuf,
    rows: Vec<usize>,
    metadata: String,
}

/// Finished but unvalidated files (pending path, final path); removed on drop unless moved
/// into place, so a failure never leaves them behind.
#[derive(Default)]
struct Pending {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        for (file, _) in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// `.<name>.pending.npz` beside `fin`: invisible to Phase E until validated and renamed.
fn pending_name(fin: &Path) -> PathBuf {
    let name = fin.file_name().map(|n| n.to_string_lossy().to_string());
    let stem = name.as_deref().unwrap_or("view.npz");
    fin.with_file_name(format!(
        ".{}.pending.npz",
        stem.strip_suffix(".npz").unwrap_or(stem)
    ))
}

/// How a member's items are carried over.
#[derive(Clone, Copy)]
enum Carry {
    F32,
    F64,
    C32,
    C64,
    I32,
    I64,
    Bool,
    Str0,
    Str1,
}

/// The carrier for a member, a warning when its dtype changes on the way, or why it cannot be
/// carried at all.
fn carrier(info: &MemberInfo) -> Result<(Carry, Option<String>), String> {
    let size = info.dtype.itemsize.unwrap_or(0);
    let widened = |to: &str| Some(format!("{} written as {to}", info.dtype_name()));
    Ok(match (info.dtype.kind, size) {
        (DtypeKind::Float, 4) => (Carry::F32, None),
        (DtypeKind::Float, 8) => (Carry::F64, None),
        (DtypeKind::Float, 2) => (Carry::F32, widened("float32")),
        (DtypeKind::Complex, 8) => (Carry::C32, None),
        (DtypeKind::Complex, 16) => (Carry::C64, None),
        (DtypeKind::Int, 4) => (Carry::I32, None),
        (DtypeKind::Int, 8) => (Carry::I64, None),
        (DtypeKind::Int, 1 | 2) | (DtypeKind::UInt, 1 | 2) => (Carry::I32, widened("int32")),
        (DtypeKind::UInt, 4 | 8) => (Carry::I64, widened("int64")),
        (DtypeKind::Bool, _) => (Carry::Bool, None),
        (DtypeKind::Unicode, _) if info.shape.is_empty() => (Carry::Str0, None),
        (DtypeKind::Unicode, _) if info.shape.len() == 1 => (Carry::Str1, None),
        _ => {
            return Err(format!(
                "{} {} cannot be written by this toolkit",
                info.dtype_name(),
                info.shape_text()
            ));
        }
    })
}

/// Streams one split's members into every target archive (filtered when per-position), then
/// finishes them under their pending names.
fn write_split(
    mut source: SplitSource,
    targets: Vec<Target>,
) -> Result<(Pending, Vec<String>), OverlapError> {
    let mut pending = Pending::default();
    let mut warnings = Vec::new();
    let mut targets = targets
        .into_iter()
        .map(|t| Ok((NpzWriter::create(&t.pending, source.compression)?, t)))
        .collect::<Result<Vec<_>, OverlapError>>()?;
    let n = source.positions.len();
    let members = source.reader.members().to_vec();
    let mut wrote_metadata = false;
    for info in &members {
        let key = info.key.as_str();
        if key == "_metadata" {
            for (w, t) in &mut targets {
                w.add_string(key, &t.metadata)?;
            }
            wrote_metadata = true;
            continue;
        }
        let carry = match carrier(info) {
            Ok((carry, warning)) => {
                if let Some(w) = warning {
                    warnings.push(format!("{}: member '{key}': {w}", source.path.display()));
                }
                carry
            }
            Err(why) => {
                warnings.push(format!(
                    "{}: member '{key}' left out: {why}",
                    source.path.display()
                ));
                continue;
            }
        };
        let per_position =
            !WHOLE_MEMBERS.contains(&key) && info.shape.first().is_some_and(|&len| len == n);
        let reader = &mut source.reader;
        match carry {
            Carry::F32 => carry_numeric::<f32>(reader, key, per_position, &mut targets)?,
            Carry::F64 => carry_numeric::<f64>(reader, key, per_position, &mut targets)?,
            Carry::C32 => carry_numeric::<Complex<f32>>(reader, key, per_position, &mut targets)?,
            Carry::C64 => carry_numeric::<Complex64>(reader, key, per_position, &mut targets)?,
            Carry::I32 => carry_numeric::<i32>(reader, key, per_position, &mut targets)?,
            Carry::I64 => carry_numeric::<i64>(reader, key, per_position, &mut targets)?,
            Carry::Bool => carry_numeric::<bool>(reader, key, per_position, &mut targets)?,
            Carry::Str0 => {
                let value = reader.read_string(key)?;
                for (w, _) in &mut targets {
                    w.add_string(key, &value)?;
                }
            }
            Carry::Str1 => {
                let values = reader.read_strings(key)?;
                for (w, t) in &mut targets {
                    let kept: Vec<String> = if per_position {
                        t.rows.iter().map(|&i| values[i].clone()).collect()
                    } else {
                        values.clone()
                    };
                    w.add_strings(key, &kept)?;
                }
            }
        }
    }
    for (mut w, t) in targets {
        if !wrote_metadata {
            w.add_string("_metadata", &t.metadata)?;
        }
        w.finish()?;
        pending.files.push((t.pending, t.fin));
    }
    Ok((pending, warnings))
}

/// Reads a numeric member once and adds it to every target, filtered along the first axis when
/// it is per-position.
fn carry_numeric<T: NpzElement>(
    reader: &mut NpzReader,
    key: &str,
    per_position: bool,
    targets: &mut [(NpzWriter, Target)],
) -> Result<(), OverlapError> {
    let array = reader.read::<T>(key)?;
    for (w, t) in targets {
        if per_position {
            w.add(key, &array.select(Axis(0), &t.rows))?;
        } else {
            w.add(key, &array)?;
        }
    }
    Ok(())
}

/// Checks a written view file before it is moved into place.
fn check_output(path: &Path, neighbor_count: u32) -> Result<(), OverlapError> {
    let report = npz_contract::validate(
        path,
        &npz_contract::ValidateOptions {
            gridsize: Some(2),
            neighbor_count: Some(neighbor_count),
            header_only: false,
        },
    );
    if report.valid {
        Ok(())
    } else {
        Err(OverlapError::InvalidOutput {
            path: path.to_path_buf(),
            errors: report.errors,
        })
    }
}

/// Removes a rejected view's NPZs left by an earlier run (and its folder, when empty).
fn remove_stale(d_dir: &Path, view: &str) -> Result<(), OverlapError> {
    for split in SPLITS {
        let file = view_file(d_dir, view, split);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(OverlapError::Io {
                    path: file,
                    action: "removing the stale file of a rejected view",
                    source,
                });
            }
        }
    }
    // Only succeeds when empty: anything a user put there stays.
    let _ = std::fs::remove_dir(d_dir.join(view));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, Array3};
    use study_design::{NamedValues, Study};

    type C32 = Complex<f32>;

    /// Positions in the fixture splits: an 8 x 4 raster, 5 px apart.
    const N_POS: usize = 32;

    /// A Phase C split on the raster with every required DATA-001 key (diffraction filled with
    /// `amplitude`); `edit` may add members before the file is finished.
    fn write_split(
        path: &Path,
        compression: Compression,
        amplitude: f32,
        edit: impl FnOnce(&mut NpzWriter),
    ) {
        let xs: Array1<f64> = (0..N_POS).map(|i| 20.0 + (i % 8) as f64 * 5.0).collect();
        let ys: Array1<f64> = (0..N_POS).map(|i| 20.0 + (i / 8) as f64 * 5.0).collect();
        let mut w = NpzWriter::create(path, compression).unwrap();
        let diffraction = Array3::<f32>::from_elem((N_POS, 8, 8), amplitude);
        w.add("diffraction", &diffraction).unwrap();
        let object = Array2::from_elem((64, 64), C32::new(1.0, 0.0));
        w.add("objectGuess", &object).unwrap();
        let probe = Array2::from_elem((8, 8), C32::new(1.0, 0.0));
        w.add("probeGuess", &probe).unwrap();
        w.add("xcoords", &xs).unwrap();
        w.add("ycoords", &ys).unwrap();
        edit(&mut w);
        w.finish().unwrap();
    }

    /// A design with N = 8, K = 7, one dose and one view per given spacing.
    fn design(views: &[(&str, f64)]) -> Design {
        let mut design = Study::preset("tiny").unwrap().design;
        design.patch_size_pixels = 8;
        design.dose_list = vec![1000.0];
        let named = |value: Option<f64>| {
            NamedValues(
                views
                    .iter()
                    .map(|(v, s)| (v.to_string(), value.unwrap_or(*s)))
                    .collect(),
            )
        };
        design.overlap_views = named(Some(0.5));
        design.spacing_overrides = Some(named(None));
        design
    }

    /// A Phase C root with dose 1000; the train split goes through `edit_train`.
    fn tree(
        compression: Compression,
        amplitude: f32,
        edit_train: impl FnOnce(&mut NpzWriter),
    ) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c/dose_1000");
        std::fs::create_dir_all(&dir).unwrap();
        let train = dir.join("patched_train.npz");
        write_split(&train, compression, amplitude, edit_train);
        write_split(
            &dir.join("patched_test.npz"),
            compression,
            amplitude,
            |_| {},
        );
        tmp
    }

    fn run(tmp: &tempfile::TempDir, design: &Design) -> Result<DoseOutcome, OverlapError> {
        let (c, d) = (tmp.path().join("c"), tmp.path().join("d"));
        run_dose(&c, &d, 1000.0, design, &|_| {})
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn extra_members_metadata_and_compression_are_carried() {
        let tmp = tree(Compression::Deflated, 0.5, |w| {
            // Per-position (first axis 32) and whole-file extras; no _metadata.
            let weights = Array1::from_iter((0..N_POS).map(|i| i as f64));
            w.add("weights", &weights).unwrap();
            w.add("wavelength", &ndarray::arr1(&[1.5e-10, 2.0, 3.0]))
                .unwrap();
            w.add("flags", &Array1::from_elem(N_POS, true)).unwrap();
        });
        // S = 10 on a 5 px raster: direct keeps nothing, greedy every other column and row.
        let outcome = run(&tmp, &design(&[("half", 10.0)])).unwrap();
        let view = &outcome.report.views[0];
        assert!(view.accepted, "{:?}", view.reason);
        assert_eq!(view.selection_strategy, "greedy");
        assert_eq!(view.splits.train.n_accepted, 8);
        let file = tmp.path().join("d/dose_1000/half/half_train.npz");
        let mut r = NpzReader::open(&file).unwrap();
        assert!(
            r.members()
                .iter()
                .all(|m| m.compression == Compression::Deflated)
        );
        let keys: Vec<&str> = r.members().iter().map(|m| m.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "diffraction",
                "objectGuess",
                "probeGuess",
                "xcoords",
                "ycoords",
                "weights",
                "wavelength",
                "flags",
                "_metadata"
            ]
        );
        let weights: Vec<f64> = r.read::<f64>("weights").unwrap().into_iter().collect();
        assert_eq!(weights, [0.0, 2.0, 4.0, 6.0, 16.0, 18.0, 20.0, 22.0]);
        assert_eq!(r.read::<f64>("wavelength").unwrap().len(), 3);
        assert_eq!(r.read::<bool>("flags").unwrap().len(), 8);
        let meta: Value = serde_json::from_str(&r.read_string("_metadata").unwrap()).unwrap();
        assert_eq!(meta["overlap_view"], "half");
        assert_eq!(meta["n_accepted"], 8);
        assert_eq!(meta["n_rejected"], 24);
        assert_eq!(meta["selection_strategy"], "greedy");
        assert!(
            outcome.report.warnings.is_empty(),
            "{:?}",
            outcome.report.warnings
        );
        assert_eq!(
            names_in(file.parent().unwrap()),
            ["half_test.npz", "half_train.npz"]
        );
    }

    #[test]
    fn metadata_that_is_not_an_object_is_kept_with_a_warning() {
        let tmp = tree(Compression::Stored, 0.5, |w| {
            w.add_string("_metadata", "not json").unwrap()
        });
        let outcome = run(&tmp, &design(&[("all", 4.0)])).unwrap();
        assert_eq!(outcome.report.views[0].selection_strategy, "direct");
        let warnings = &outcome.report.warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("_metadata is not a JSON object"),
            "{warnings:?}"
        );
        let path = tmp.path().join("d/dose_1000/all/all_train.npz");
        let mut r = NpzReader::open(&path).unwrap();
        let meta: Value = serde_json::from_str(&r.read_string("_metadata").unwrap()).unwrap();
        assert_eq!(meta["source_metadata"], "not json");
        assert_eq!(meta["n_accepted"], 32);
    }

    #[test]
    fn output_failing_validation_is_not_kept() {
        // Negative amplitudes pass the header-only input check but fail DATA-001's value checks
        // on the written view: nothing may be left at the final or the pending paths, and the
        // dose gets no report.
        let tmp = tree(Compression::Stored, -1.0, |_| {});
        let err = run(&tmp, &design(&[("all", 4.0)])).unwrap_err().to_string();
        assert!(err.contains("fails DATA-001 validation"), "{err}");
        assert!(err.contains(".all_train.pending.npz"), "{err}");
        assert_eq!(
            names_in(&tmp.path().join("d/dose_1000/all")),
            Vec::<String>::new()
        );
        assert!(!tmp.path().join("d/dose_1000/overlap_report.json").exists());
    }

    #[test]
    fn missing_inputs_are_named() {
        let tmp = tree(Compression::Stored, 0.5, |_| {});
        std::fs::remove_file(tmp.path().join("c/dose_1000/patched_test.npz")).unwrap();
        let err = run(&tmp, &design(&[("all", 4.0)])).unwrap_err().to_string();
        assert!(
            err.contains("c/dose_1000/patched_test.npz: file not found"),
            "{err}"
        );
        let (c, d) = (tmp.path().join("c"), tmp.path().join("d"));
        let err = run_dose(&c, &d, 5.0, &design(&[("all", 4.0)]), &|_| {})
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("no Phase C data for dose 5:"), "{err}");
    }

    #[test]
    fn pending_names_are_hidden_npz() {
        assert_eq!(
            pending_name(Path::new("/d/dense/dense_train.npz")),
            Path::new("/d/dense/.dense_train.pending.npz")
        );
    }
}
