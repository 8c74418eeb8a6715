//! What `report`, `compare` and `diff` share at their boundary: an artifact root's manifest
//! read, a report folder's files written atomically, the pictures a report shows, and the
//! errors of all of it.

use crate::manifest::MANIFEST_FILE;
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

/// Reads and parses `<artifact_root>/training_manifest.json` (reports and diffs both start here).
pub fn read_manifest(artifact_root: &Path) -> Result<Value, ReportError> {
    let path = artifact_root.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path,
        message: e.to_string(),
    })
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
