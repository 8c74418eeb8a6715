//! Phase D: dense and sparse overlap views by minimum-spacing selection.
//!
//! For each dose of a Phase C tree and each overlap view of the design, per split: `direct`
//! selection (positions whose nearest neighbour is at least S away), then `greedy` (by y, then
//! x) when direct keeps too few; the geometry-aware acceptance floor; rejection of a view that
//! keeps too few positions for gridsize-2 training; filtered NPZs and a per-dose
//! `overlap_report.json`; and the disc-overlap metric.
//!
//! Definitions this crate commits to (the contract leaves them open):
//! - "At least S apart" is `dx² + dy² >= S²` in f64 ([`select`]).
//! - "Too few" for direct means below the floor *or* fewer than K + 1 positions: a view is only
//!   rejected for OVERSAMPLING-001 after greedy's denser packing was tried ([`view`]).
//! - `bbox_area` is the area of the axis-aligned box of the split's position centres, not
//!   padded by S/2 ([`acceptance::bbox_area`]); the original floor was calibrated on it.
//! - The probe diameter D is twice the radius, about the intensity centroid, of the smallest
//!   disc of pixel centres holding 90 % of `sum |P|²` (at least 1 px); N/2 when the probe has no
//!   intensity ([`disc::probe_diameter`]).
//! - A view given by an overlap target (`{ overlap = 0.6 }`) gets the spacing threshold that
//!   realises it per split within its tolerance, or is rejected saying what it reached
//!   ([`target`]).
//! - The kept rows keep their source order; the view files hold every member of the source, in
//!   source order, per-position ones (first axis = n, other than `objectGuess`, `probeGuess`
//!   and `_metadata`) filtered.
//!
//! A finding on the fly64 geometry (about 5,000 uniformly random positions per 336 x 168 px
//! split, N = 128, K = 7): the dense view (38.4 px) keeps 39 to 45 positions per split against
//! a floor of about 39 and is accepted; the sparse view (102.4 px) keeps 7, 8 or 9 positions
//! per split depending on the scan (7 in 26 %, 8 in 69 %, 9 in 5 % of 200 simulated scans), so
//! it is rejected (fewer than K + 1 = 8) only when a split keeps 7: about 45 % of scans. The
//! original's three sparse skips are what its scan gave, not what every scan gives. At 300
//! positions per split (the default study) sparse keeps 6 to 8 and is rejected in about 98 %
//! of scans.
#![deny(missing_docs)]

pub mod acceptance;
pub mod disc;
mod error;
pub mod phase_d;
pub mod report;
pub mod select;
pub mod synthetic;
pub mod target;
pub mod view;

pub use error::OverlapError;
pub use phase_d::{DoseOutcome, run_dose};
pub use report::{DoseReport, OVERLAP_REPORT};
pub use select::Positions;
pub use view::{SplitSelection, Strategy, ViewSelection};
