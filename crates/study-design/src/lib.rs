//! Phase A: the study design (doses, overlap views, gridsizes, seeds), its validation, and study
//! files that add the simulation and solver settings so one file describes a whole study.
#![deny(missing_docs)]

mod design;
mod file;
mod named;
mod simulation;
mod solver;

pub use design::{Design, MetricsConfig, RngSeeds, SplitAxis};
pub use file::{PRESETS, Study, StudyError};
pub use named::NamedValues;
pub use simulation::Simulation;
pub use solver::{Algorithm, Solver};
