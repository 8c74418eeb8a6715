//! What a `tensorflow:supervised` job runs with, fixed when planning: the settings of the
//! study's `[supervised]` table, where it trains (`--accelerator`, else `[pinn] accelerator`:
//! the PtychoPINN jobs' choice), its interpreter; and what it cannot run, refused before any
//! job starts.

use crate::config::{BackendKind, SupervisedSettings, TrainerProgram, TrainingConfig};
use crate::ptychopinn::PYTHON_ENV_VAR;
use std::path::PathBuf;
use study_design::{Accelerator, Study};

/// The adapter's interpreter: `$PTYCHO_PYTHON`, else the `#!` Python of PtychoPINN's trainer
/// program (as its inference adapter finds it).
pub fn interpreter(python: Option<PathBuf>, trainer: Option<&TrainerProgram>) -> Option<PathBuf> {
    python.or_else(|| trainer.and_then(crate::ptychopinn::python::trainer_python))
}

/// Why a plan of supervised jobs cannot run: a patch size its U-Net does not take (three 2x
/// poolings: N divisible by 8), or no interpreter (a dry run runs nothing and needs none).
pub fn plan_problem(
    backend: BackendKind,
    n: u32,
    dry_run: bool,
    python: Option<&PathBuf>,
) -> Option<String> {
    if backend != BackendKind::Supervised {
        return None;
    }
    if !n.is_multiple_of(8) {
        return Some(format!(
            "patch_size_pixels={n}: the supervised baseline's U-Net (three 2x poolings and \
             upsamplings) needs N divisible by 8"
        ));
    }
    (!dry_run && python.is_none()).then(|| {
        format!(
            "--backend {backend} runs PtychoPINN's supervised model with ${PYTHON_ENV_VAR} (else \
             the `#!` Python of the trainer program, $PTYCHO_TRAIN or `ptycho_train` on PATH), \
             and neither is there: build PtychoPINN's venv with \
             scripts/setup-ptychopinn-venv.sh and export what it prints"
        )
    })
}

/// The job's settings (`None` for other backends).
pub fn resolve_settings(
    config: &TrainingConfig,
    study: &Study,
    accelerator: Option<Accelerator>,
    python: Option<PathBuf>,
) -> Option<SupervisedSettings> {
    (config.backend == BackendKind::Supervised).then(|| SupervisedSettings {
        batch_size: study.supervised.batch_size,
        n_filters_scale: study.supervised.n_filters_scale,
        accelerator: accelerator.unwrap_or(study.pinn.accelerator),
        seed: config.rng_seeds.grouping,
        python,
    })
}
