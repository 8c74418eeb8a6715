//! The one error type of the overlap crate: every message names the file, the key or the dose.

/// Why Phase D could not process a dose.
#[derive(Debug, thiserror::Error)]
pub enum OverlapError {
    /// Coordinates that cannot be selected on (unequal lengths, NaN, infinity).
    #[error("bad scan coordinates: {0}")]
    Coordinates(String),
}
