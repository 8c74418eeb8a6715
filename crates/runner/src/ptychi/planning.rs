//! What a `ptychi:<algorithm>` job runs with, fixed when planning: pty-chi's settings from the
//! study's `[ptychi]` table and `--accelerator`, and its interpreter (`$PTYCHI_PYTHON`), whose
//! absence is refused before any job starts.

use crate::config::{BackendKind, PtychiSettings, TrainingConfig};
use std::path::PathBuf;
use study_design::{Accelerator, Ptychi, PtychiInit};

/// The interpreter of the pty-chi adapter (a venv with pty-chi 2.2 and NumPy).
pub const PYTHON_ENV_VAR: &str = "PTYCHI_PYTHON";

/// Why a plan of `ptychi:<algorithm>` jobs cannot run: no interpreter. A dry run runs nothing
/// and needs none.
pub fn plan_problem(
    backend: BackendKind,
    dry_run: bool,
    python: Option<&PathBuf>,
) -> Option<String> {
    (matches!(backend, BackendKind::Ptychi { .. }) && !dry_run && python.is_none()).then(|| {
        format!(
            "--backend {backend} runs pty-chi with ${PYTHON_ENV_VAR}, which is not set: build \
             its venv with scripts/setup-ptychi-venv.sh (pty-chi 2.2 and NumPy, about 6 GB with \
             torch's CUDA wheels) and export what it prints"
        )
    })
}

/// The job's pty-chi settings: the engine and the start from its backend (`ptychi:lsqml`,
/// `+truth-init`), the rest from `[ptychi]`, `--accelerator` over `[ptychi] accelerator`.
pub fn resolve_settings(
    config: &TrainingConfig,
    study: &Ptychi,
    accelerator: Option<Accelerator>,
    python: Option<PathBuf>,
) -> Option<PtychiSettings> {
    let BackendKind::Ptychi {
        algorithm,
        truth_init,
    } = config.backend
    else {
        return None;
    };
    Some(PtychiSettings {
        algorithm,
        init: if truth_init {
            PtychiInit::Truth
        } else {
            PtychiInit::Flat
        },
        batch_size: study.batch_size,
        noise: study.noise,
        probe: study.probe,
        step: study.step,
        tv_weight: study.tv_weight,
        accelerator: accelerator.unwrap_or(study.accelerator),
        seed: config.rng_seeds.grouping,
        python,
    })
}
