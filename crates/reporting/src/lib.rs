//! Training manifest, skip summary, reports, plots and run diffs
#![deny(missing_docs)]

pub mod compare;
mod content;
pub mod diff;
pub mod manifest;
pub mod map;
mod method;
mod metrics;
mod output;
pub mod pictures;
pub mod png;
pub mod replicates;
pub mod report;
pub mod review;
pub mod stats;
pub mod svg;
mod text;
pub mod verify;
