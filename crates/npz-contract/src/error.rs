//! The one error type of this crate: every message names the file, the key (when there is one),
//! what was expected and what was found.

use std::path::PathBuf;

/// Anything that went wrong reading or writing an NPZ archive.
#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    /// The file could not be opened, read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("cannot open", "writing member 'x'").
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a readable ZIP archive (empty, truncated, not a zip, hostile directory).
    #[error(
        "{}: not a readable NPZ archive: {reason} (expected a ZIP archive of .npy members, as \
         numpy.savez or numpy.savez_compressed write)",
        path.display()
    )]
    NotAnArchive {
        /// The file.
        path: PathBuf,
        /// What the ZIP reader found.
        reason: String,
    },
    /// The key is not in the archive.
    #[error("{}: no member '{key}' (expected '{key}.npy'; found: {})", path.display(), list(found))]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key asked for.
        key: String,
        /// The keys the archive holds.
        found: Vec<String>,
    },
    /// The member's `.npy` header is malformed, forged or disagrees with its size.
    #[error("{}: member '{key}' is unreadable: {reason}", path.display())]
    BadMember {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The member holds another kind of data than asked for.
    #[error("{}: member '{key}' holds {found}, expected {expected}", path.display())]
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// What the caller asked for ("float (f4 or f8)").
        expected: String,
        /// What the header says ("complex64", "object (pickled)").
        found: String,
    },
    /// The member has the right dtype but the wrong number of dimensions.
    #[error("{}: member '{key}' has shape {found}, expected {expected}", path.display())]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// What was asked for ("0-d", "1-d").
        expected: String,
        /// The shape found, as Python writes it.
        found: String,
    },
    /// The member's data could not be read back (truncated, CRC mismatch, bad string).
    #[error("{}: member '{key}' data is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// An integer does not fit the requested narrower type.
    #[error("{}: member '{key}' holds {found}, which does not fit {expected}", path.display())]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// The target type.
        expected: String,
        /// The offending value.
        found: String,
    },
    /// The array does not fit in memory.
    #[error("{}: member '{key}' needs {bytes} bytes of memory, which could not be allocated", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// Bytes needed.
        bytes: u128,
    },
    /// The member is larger than this kind of member may be (a size limit of the reader).
    #[error("{}: member '{key}' {what}, more than the limit of {limit}", path.display())]
    Limit {
        /// The file.
        path: PathBuf,
        /// The member's key.
        key: String,
        /// What the member holds.
        what: String,
        /// The limit and why it is there.
        limit: String,
    },
    /// A key given to the writer cannot be used.
    #[error("{}: cannot write key '{key}': {reason}", path.display())]
    InvalidKey {
        /// The file being written.
        path: PathBuf,
        /// The key.
        key: String,
        /// Why not ("already written", "empty").
        reason: String,
    },
}

fn list(keys: &[String]) -> String {
    if keys.is_empty() {
        "no members".to_string()
    } else {
        keys.join(", ")
    }
}
