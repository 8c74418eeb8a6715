//! `--backend native`: the toolkit's own ePIE/rPIE solver (crates/recon), run in-process.
//!
//! Owned by the native-backend work (spec `native-backend.md`). Until it lands, every native
//! job fails with a message saying so; the rest of the run is unaffected.

use crate::backend::{Backend, BackendError, BackendOutcome, JobContext};
use crate::config::TrainingConfig;

/// The native solver backend.
#[derive(Debug, Default)]
pub struct NativeBackend;

impl NativeBackend {
    /// The backend (one instance serves every job).
    pub fn new() -> NativeBackend {
        NativeBackend
    }
}

impl Backend for NativeBackend {
    fn name(&self) -> &'static str {
        "native"
    }

    fn train(
        &self,
        _config: &TrainingConfig,
        _ctx: &mut JobContext<'_>,
    ) -> Result<BackendOutcome, BackendError> {
        Err(BackendError::failed(
            "the native backend is not built yet in this version of dose-overlap: train with \
             --backend tensorflow or --backend pytorch (PtychoPINN's trainer), or check the \
             matrix with --dry-run",
        ))
    }
}
