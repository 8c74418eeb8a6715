//! Training manifest, skip summary, reports, plots and run diffs
#![deny(missing_docs)]

pub mod diff;
pub mod manifest;
pub mod report;
pub mod svg;
pub mod verify;
