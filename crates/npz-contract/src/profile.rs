//! Validation profiles: what a consumer needs beyond DATA-001. `ptychopinn` checks what
//! PtychoPINN's loader (`ptycho.workflows.components.load_data`, `ptycho.metadata`) and model
//! need: the start coordinates, a patch size its model takes, and `nphotons` in `_metadata`.
//! Header checks only (plus the small `_metadata` string): no array data is read.

use std::path::Path;

use crate::{NpzReader, ValidateOptions, ValidationReport, validate};

/// A consumer of DATA-001 files with needs of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// DATA-001 only.
    Data001,
    /// DATA-001 plus what PtychoPINN's loader and model need.
    Ptychopinn,
}

impl Profile {
    /// The name on the command line (`data-001`, `ptychopinn`).
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Data001 => "data-001",
            Profile::Ptychopinn => "ptychopinn",
        }
    }
}

/// The patch sizes PtychoPINN's model accepts.
pub const PTYCHOPINN_PATCH_SIZES: [usize; 3] = [64, 128, 256];

/// [`validate`], then the profile's own checks; their errors make the file invalid too.
pub fn validate_profile(
    path: &Path,
    options: &ValidateOptions,
    profile: Profile,
) -> ValidationReport {
    let mut report = validate(path, options);
    if profile == Profile::Ptychopinn
        && let Ok(mut reader) = NpzReader::open(path)
    {
        let (errors, warnings) = ptychopinn(&mut reader);
        report.errors.extend(errors);
        report.warnings.extend(warnings);
        report.valid = report.errors.is_empty();
    }
    report
}

fn ptychopinn(reader: &mut NpzReader) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for key in ["xcoords_start", "ycoords_start"] {
        if reader.member(key).is_none() {
            errors.push(format!(
                "ptychopinn: '{key}' is missing: PtychoPINN's loader reads it and raises \
                 KeyError without it; add it (DATA-001 defaults it to the matching centre \
                 coordinates, as `dose-overlap generate` writes)"
            ));
        }
    }
    let frame = reader
        .member("diffraction")
        .or_else(|| reader.member("diff3d"))
        .map(|m| m.shape.clone());
    if let Some(shape) = frame.filter(|s| s.len() == 3) {
        // (n, N, N); a legacy (N, N, n) stack has N first.
        let n = if shape[1] == shape[2] {
            shape[1]
        } else {
            shape[0]
        };
        if !PTYCHOPINN_PATCH_SIZES.contains(&n) {
            errors.push(format!(
                "ptychopinn: patch size N = {n} (diffraction frames {n} x {n}): PtychoPINN's \
                 model takes N = 64, 128 or 256 only (`Unsupported input size: {n}`); \
                 simulate with patch_size_pixels 64, 128 or 256 (e.g. --preset pinn-small)"
            ));
        }
    }
    match reader
        .member("_metadata")
        .is_some()
        .then(|| reader.read_string("_metadata"))
    {
        None => warnings.push(
            "ptychopinn: no '_metadata': PtychoPINN then takes the dose from --nphotons only"
                .to_string(),
        ),
        Some(Err(e)) => warnings.push(format!("ptychopinn: '_metadata' is unreadable: {e}")),
        Some(Ok(text)) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(meta) if meta.get("nphotons").is_some_and(|v| v.is_number()) => {}
            Ok(_) => warnings.push(
                "ptychopinn: '_metadata' has no numeric 'nphotons': PtychoPINN reads the dose \
                 from that key (and overrides --nphotons with it when present)"
                    .to_string(),
            ),
            Err(e) => warnings.push(format!(
                "ptychopinn: '_metadata' is not JSON ({e}): PtychoPINN's metadata reader \
                 ignores it and takes the dose from --nphotons"
            )),
        },
    }
    (errors, warnings)
}
