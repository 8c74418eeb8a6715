//! The one error type of the overlap crate: every message names the file, the key or the dose,
//! and says what to do.

use std::path::PathBuf;

/// Why Phase D could not process a dose.
#[derive(Debug, thiserror::Error)]
pub enum OverlapError {
    /// Coordinates that cannot be selected on (unequal lengths, NaN, infinity).
    #[error("bad scan coordinates: {0}")]
    Coordinates(String),
    /// The Phase C tree has no folder for a dose of the design.
    #[error(
        "no Phase C data for dose {dose}: {} is not a folder (run `dose-overlap generate` for \
         this design, or check --phase-c-root)",
        path.display()
    )]
    MissingDoseDir {
        /// The dose.
        dose: f64,
        /// The folder looked for.
        path: PathBuf,
    },
    /// A Phase C split file is missing.
    #[error(
        "{}: file not found (Phase C writes patched_train.npz and patched_test.npz per dose; \
         rerun `dose-overlap generate`)",
        path.display()
    )]
    MissingFile {
        /// The file looked for.
        path: PathBuf,
    },
    /// A Phase C file that cannot be used as it is.
    #[error("{}: {message}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing an NPZ failed (the message names the file and member).
    #[error(transparent)]
    Npz(#[from] npz_contract::NpzError),
    /// A file-system operation failed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A written view file failed DATA-001 validation; it was not moved into place.
    #[error(
        "{}: the view file written fails DATA-001 validation, so it was not kept:\n  {}",
        path.display(),
        errors.join("\n  ")
    )]
    InvalidOutput {
        /// The file (under its pending name).
        path: PathBuf,
        /// The validator's errors.
        errors: Vec<String>,
    },
}
