//! Phase D: dense and sparse overlap views by minimum-spacing selection.
//!
//! For each dose of a Phase C tree and each overlap view of the design, per split: `direct`
//! selection (positions whose nearest neighbour is at least S away), then `greedy` (by y, then
//! x) when direct keeps too few; the geometry-aware acceptance floor; rejection of a view that
//! keeps too few positions for gridsize-2 training; filtered NPZs and a per-dose
//! `overlap_report.json`; and the disc-overlap metric.
#![deny(missing_docs)]

pub mod acceptance;
pub mod disc;
mod error;
pub mod phase_d;
pub mod report;
pub mod select;
pub mod view;

pub use error::OverlapError;
pub use phase_d::{DoseOutcome, run_dose};
pub use report::{DoseReport, OVERLAP_REPORT};
pub use select::Positions;
pub use view::{SplitSelection, Strategy, ViewSelection};
