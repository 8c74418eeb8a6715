//! DATA-001: reading, writing and validating NPZ archives safely, and atomic artifact writes.
#![deny(missing_docs)]

pub mod atomic;
