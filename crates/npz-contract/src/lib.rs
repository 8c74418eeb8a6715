//! DATA-001: reading, writing and validating NPZ archives safely, atomic artifact writes, and
//! the confinement of what is read from artifacts (`confine`).
//!
//! Reading never trusts a header: every member's `.npy` header is read with bounded reads when
//! the archive is opened, and a member whose `shape x itemsize` disagrees with its stored size
//! is rejected before anything is allocated for it. Pickled (`|O`) members are listed, never
//! unpickled.
#![deny(missing_docs)]

pub mod atomic;
pub mod confine;
mod element;
mod error;
mod header;
pub mod profile;
mod pyzip;
mod reader;
mod validate;
mod writer;

pub use element::NpzElement;
pub use error::NpzError;
pub use header::{ByteOrder, Dtype, DtypeKind};
pub use reader::{MemberInfo, NpzReader, RejectedMember};
pub use validate::{REQUIRED_KEYS, ValidateOptions, ValidationReport, validate};
pub use writer::NpzWriter;

/// How members are stored in the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// As `numpy.savez` writes: fast to read, as large as the data.
    Stored,
    /// As `numpy.savez_compressed` writes (deflate).
    Deflated,
}

#[cfg(test)]
pub(crate) mod tests;
