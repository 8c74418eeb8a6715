//! Phase A: the study design (doses, overlap views, gridsizes, seeds), its validation, and study
//! files that add the simulation and solver settings so one file describes a whole study.
#![deny(missing_docs)]

mod design;
mod estimate;
mod file;
mod named;
mod peers;
mod simulation;
mod solver;
mod views;

pub use design::{Design, MetricsConfig, RngSeeds, SplitAxis, limits, view_name_problem};
pub use estimate::{Estimate, SceneSize, human_bytes};
pub use file::{MAX_REPLICATES, MAX_STUDY_FILE_BYTES, PRESETS, Study, StudyError, derive_seed};
pub use named::NamedValues;
pub use peers::{
    MAX_PEER_EPOCHS, Ptychi, PtychiAlgorithm, PtychiInit, PtychiNoise, PtychiProbe, Supervised,
};
pub use simulation::{HEX_JITTER, MAX_OBJECT_SIZE, MAX_POSITIONS, ScanPattern, Simulation};
pub use solver::{
    Accelerator, Algorithm, MAX_PINN_EPOCHS, PINN_DEFAULT_BATCH_SIZE, PINN_MERGE_PATCHES, Pinn,
    Solver, pinn_batch_problem, pinn_max_batch_size,
};
pub use views::{DEFAULT_OVERLAP_TOLERANCE, OverlapTarget};
