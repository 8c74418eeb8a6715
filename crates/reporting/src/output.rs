//! What `report`, `compare` and `diff` share at their boundary: an artifact root's manifest
//! read (as JSON, or into its typed [`TrainingManifest`]), a report folder's files written
//! atomically, the pictures a report shows, and the errors of all of it.

use crate::manifest::{MANIFEST_FILE, ManifestError, TrainingManifest};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The manifest is missing or unreadable.
    #[error("cannot read {path} (is this an artifact root written by `dose-overlap train`?)")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not JSON of the expected shape.
    #[error("{path} is not a training manifest: {message}")]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The manifest is not a training manifest of this format (the message names the file).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A report file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A picture shown in a report: its file (relative to the report folder) and a caption.
#[derive(Debug, Clone, PartialEq)]
pub struct PictureRef {
    /// `pictures/....png`.
    pub file: String,
    /// What it shows.
    pub caption: String,
}

/// `<artifact_root>/training_manifest.json`, read as text.
fn read_manifest_text(artifact_root: &Path) -> Result<(PathBuf, String), ReportError> {
    let path = artifact_root.join(MANIFEST_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(source) => Err(ReportError::Read { path, source }),
    }
}

/// Reads and parses `<artifact_root>/training_manifest.json` as JSON (diffs compare it field by
/// field; comparisons and reviews read it so).
pub fn read_manifest(artifact_root: &Path) -> Result<Value, ReportError> {
    let (path, text) = read_manifest_text(artifact_root)?;
    serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path,
        message: e.to_string(),
    })
}

/// Reads `<artifact_root>/training_manifest.json` into its typed, versioned form (the report
/// reads it so): a file of another format or shape is an error that says what is wrong.
pub(crate) fn read_training_manifest(
    artifact_root: &Path,
) -> Result<TrainingManifest, ReportError> {
    let (path, text) = read_manifest_text(artifact_root)?;
    Ok(TrainingManifest::from_json(&text, &path)?)
}

/// Writes one report file atomically, creating its folder.
pub(crate) fn write_file(target: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .and_then(|()| npz_contract::atomic::write_atomic(target, bytes))
        .map_err(|source| ReportError::Write {
            path: target.to_path_buf(),
            source,
        })
}
