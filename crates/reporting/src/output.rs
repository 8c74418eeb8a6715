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
    // A regular file (never a link, a FIFO or a device), of bounded size.
    match npz_contract::confine::read_to_string_capped(&path, crate::manifest::MANIFEST_CAP) {
        Ok(text) => Ok((path, text)),
        Err(source) => Err(ReportError::Read { path, source }),
    }
}

/// Reads and parses `<artifact_root>/training_manifest.json` as JSON (diffs compare it field by
/// field). Nothing in it is checked beyond its being JSON: what reads paths or names from it
/// reads it with [`read_checked_manifest`].
pub fn read_manifest(artifact_root: &Path) -> Result<Value, ReportError> {
    let (path, text) = read_manifest_text(artifact_root)?;
    serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path,
        message: e.to_string(),
    })
}

/// Reads `<artifact_root>/training_manifest.json` into its typed form, checked
/// ([`TrainingManifest::check`]: names, paths, no job twice), as JSON (comparisons and
/// reviews read it so).
pub fn read_checked_manifest(artifact_root: &Path) -> Result<Value, ReportError> {
    let manifest = read_training_manifest(artifact_root)?;
    Ok(serde_json::to_value(&manifest).expect("a parsed manifest serialises"))
}

/// Reads `<artifact_root>/training_manifest.json` into its typed, versioned form (the report
/// reads it so): a file of another format or shape is an error that says what is wrong.
pub(crate) fn read_training_manifest(
    artifact_root: &Path,
) -> Result<TrainingManifest, ReportError> {
    TrainingManifest::read(artifact_root).map_err(read_error)
}

/// A manifest that cannot be read is said as [`read_manifest`] says it; any other error as
/// the manifest reader words it.
pub(crate) fn read_error(e: ManifestError) -> ReportError {
    match e {
        ManifestError::Read { path, cause } => ReportError::Read {
            path,
            source: cause,
        },
        other => ReportError::Manifest(other),
    }
}

/// Writes the report file `name` (`summary.md`, `pictures/x.png`) under the report folder
/// `out` atomically, creating its folder. Never through a link: `out` itself and every folder
/// below it on the way must not be symbolic links (a report folder of a received study that
/// is a link to elsewhere is refused, not written into); a link at the file's own name is
/// replaced.
pub(crate) fn write_file(out: &Path, name: &str, bytes: &[u8]) -> Result<(), ReportError> {
    write_file_with(out, name, |w| w.write_all(bytes))
}

/// [`write_file`], the contents written by `fill` as it makes them (a file too large to hold
/// whole first: metrics.csv of 100,000 jobs).
pub(crate) fn write_file_with(
    out: &Path,
    name: &str,
    fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), ReportError> {
    let target = out.join(name);
    let error = |source| ReportError::Write {
        path: target.clone(),
        source,
    };
    if std::fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link: a report is never written through a link",
                out.display()
            ),
        )));
    }
    let target = npz_contract::confine::join(out, Path::new(name)).map_err(error)?;
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .and_then(|()| npz_contract::atomic::write_atomic_with(&target, fill))
        .map_err(error)
}

/// The machine's cores: how many of a report's independent pieces (each job's pictures, the
/// comparison's input digests) run at once.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
