//! How PtychoPINN's trainer is invoked: its documented flags, then what the real trainer needs
//! (a `--config` YAML for N, `--neighbor_count`, `--n_groups`, `--batch_size`, PyTorch's
//! accelerator and learning rate), absolute paths (it runs in the job dir), the environment
//! that hides the GPUs for `cpu`, and what to say when it cannot start.

use crate::backend::BackendError;
use crate::config::{BackendKind, TrainerProgram, TrainerSource, TrainingConfig};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use study_design::Accelerator;

/// The bundle PtychoPINN's trainer writes into its output dir.
pub const PTYCHOPINN_BUNDLE: &str = "wts.h5.zip";
/// The YAML in the job dir that carries N (`model:` / `N: ...`) to the trainer's `--config`.
pub const PINN_CONFIG_FILE: &str = "ptychopinn_config.yaml";
/// The learning rate passed to the PyTorch trainer: PtychoPINN's own default.
pub const PYTORCH_LEARNING_RATE: &str = "0.001";

/// The trainer's full command line for `config`: its documented flags, then what the real
/// trainer needs (`--config` YAML for N, K, the group count, PyTorch's accelerator).
pub fn trainer_args(config: &TrainingConfig) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut flag = |name: &str, value: OsString| {
        args.push(name.into());
        args.push(value);
    };
    flag(
        "--config",
        config.output_dir.join(PINN_CONFIG_FILE).into_os_string(),
    );
    flag("--train_data_file", config.train_data_file.clone().into());
    flag("--test_data_file", config.test_data_file.clone().into());
    flag("--output_dir", config.output_dir.clone().into());
    flag("--backend", config.backend.as_str().into());
    flag("--gridsize", config.gridsize.to_string().into());
    // `{:?}` keeps the decimal point (1000.0), as Python prints a float.
    flag("--nphotons", format!("{:?}", config.nphotons).into());
    flag("--nepochs", config.epochs.to_string().into());
    flag("--neighbor_count", config.neighbor_count.to_string().into());
    // PtychoPINN's one seed: TensorFlow's trainer seeds with it which train positions it
    // keeps when n_groups is below the split's size; PyTorch's also seeds Lightning
    // (`seed_everything`: weights, batch order) and its grouping (folded to 32 bits:
    // `external::tool_seed`).
    flag(
        "--subsample_seed",
        crate::external::tool_seed(config.rng_seeds.subsampling)
            .to_string()
            .into(),
    );
    if let Some(pinn) = &config.pinn {
        flag("--n_groups", pinn.n_groups.to_string().into());
        // Always given: PtychoPINN's default 16 merges the groups of every gridsize-2 batch.
        flag("--batch_size", pinn.batch_size.to_string().into());
    }
    if config.backend == BackendKind::Pytorch {
        // PtychoPINN's own `auto` takes CUDA when torch sees it, else the CPU; `gpu` makes
        // Lightning fail without one. A plan made before `--accelerator` existed ran on CPU.
        flag(
            "--torch-accelerator",
            job_accelerator(config).as_str().into(),
        );
        // Any --torch-* flag makes train.py build its execution config from the flags, with
        // a learning rate of None unless given, which that config then rejects (`'<=' not
        // supported between instances of 'NoneType' and 'int'`, every job, pinned snapshot).
        // 1e-3 is PtychoPINN's own default (PyTorchExecutionConfig.learning_rate).
        flag("--torch-learning-rate", PYTORCH_LEARNING_RATE.into());
    }
    args
}

/// Where a job trains: its `pinn.accelerator`; a plan made before `--accelerator` existed
/// (no `pinn` settings) trained on the CPU.
pub fn job_accelerator(config: &TrainingConfig) -> Accelerator {
    config
        .pinn
        .as_ref()
        .map_or(Accelerator::Cpu, |p| p.accelerator)
}

/// The environment variables a job's trainer and adapter get beyond dose-overlap's own:
/// `cpu` hides every GPU (TensorFlow has no flag for it; PyTorch also gets
/// `--torch-accelerator cpu`).
pub fn trainer_env(config: &TrainingConfig) -> Vec<(&'static str, &'static str)> {
    match job_accelerator(config) {
        Accelerator::Cpu => vec![("CUDA_VISIBLE_DEVICES", "")],
        Accelerator::Auto | Accelerator::Gpu => Vec::new(),
    }
}

/// The YAML that carries N: PtychoPINN reads N only from `model:` / `N:` of its `--config`
/// (its own `--N` rejects every value, a top-level `N:` is overridden by the flag default).
pub fn config_yaml(config: &TrainingConfig) -> String {
    format!(
        "# Written by dose-overlap from training_config.json: PtychoPINN takes N only from here.\n\
         model:\n  N: {}\n  gridsize: {}\n",
        config.patch_size_pixels, config.gridsize
    )
}

fn absolute(path: &Path) -> Result<PathBuf, BackendError> {
    std::path::absolute(path)
        .map_err(|e| BackendError::failed(format!("cannot make {} absolute: {e}", path.display())))
}

/// The configuration with absolute paths (the trainer runs in the job dir), and the YAML
/// written where `--config` points.
pub(crate) fn prepare(config: &TrainingConfig) -> Result<TrainingConfig, BackendError> {
    // No settings: a split could not be read when the job was planned; the trainer is still
    // run (without --n_groups) and fails on that file, naming it, as it would by hand.
    let mut abs = config.clone();
    abs.train_data_file = absolute(&config.train_data_file)?;
    abs.test_data_file = absolute(&config.test_data_file)?;
    abs.output_dir = absolute(&config.output_dir)?;
    let yaml = abs.output_dir.join(PINN_CONFIG_FILE);
    npz_contract::atomic::write_atomic(&yaml, config_yaml(config).as_bytes())
        .map_err(|e| BackendError::failed(format!("cannot write {}: {e}", yaml.display())))?;
    Ok(abs)
}

/// Why the trainer did not start, and what to do about it.
pub(crate) fn cannot_start(trainer: &TrainerProgram, err: &io::Error) -> String {
    let what = trainer.describe();
    let hint = match trainer.source {
        TrainerSource::Path => {
            "install PtychoPINN so that `ptycho_train` is on PATH, point --trainer PATH or \
             $PTYCHO_TRAIN at the trainer, or train with --backend native"
        }
        TrainerSource::Flag => "check the path given to --trainer, or train with --backend native",
        TrainerSource::Env => "check $PTYCHO_TRAIN, or train with --backend native",
    };
    match err.kind() {
        io::ErrorKind::NotFound => {
            format!("cannot start the PtychoPINN trainer {what}: not found; {hint}")
        }
        // exec reports a folder as "permission denied" too; chmod would not help there.
        io::ErrorKind::PermissionDenied if trainer.program.is_dir() => {
            format!(
                "cannot start the PtychoPINN trainer {what}: it is a folder, not a program; {hint}"
            )
        }
        io::ErrorKind::PermissionDenied => format!(
            "cannot start the PtychoPINN trainer {what}: permission denied (is it executable? \
             `chmod +x` it); {hint}"
        ),
        _ => format!("cannot start the PtychoPINN trainer {what}: {err}; {hint}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_fold_into_32_bits_and_small_ones_stay() {
        use crate::external::tool_seed;
        assert_eq!(tool_seed(456), 456);
        assert_eq!(tool_seed(u64::from(u32::MAX)), u32::MAX);
        // A replicate's derived seed: below 2^32 after folding, and not the low half alone.
        let seed = 4_879_353_262_369_724_645u64;
        assert_eq!(
            u64::from(tool_seed(seed)),
            (seed ^ (seed >> 32)) & 0xFFFF_FFFF
        );
        assert_ne!(u64::from(tool_seed(seed)), seed & 0xFFFF_FFFF);
    }
}
