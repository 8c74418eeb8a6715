//! PtychoPINN's section of the resolved configuration, as `training_config.json` records it:
//! the trainer program (and where its path came from) and what the real trainer needs beyond
//! the shared fields. Resolving the settings when planning, and running the trainer, are
//! `ptychopinn`'s.

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use study_design::Accelerator;

/// Where the trainer program's path came from (for messages that say what to change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainerSource {
    /// `--trainer PATH`.
    Flag,
    /// `$PTYCHO_TRAIN`.
    Env,
    /// The default name, looked up on `PATH` when the job starts.
    Path,
}

/// PtychoPINN's trainer program, as resolved when the plan was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerProgram {
    /// A path, or the bare name `ptycho_train` (then looked up on `PATH`).
    pub program: PathBuf,
    /// Where it came from.
    pub source: TrainerSource,
}

impl TrainerProgram {
    /// The program's name when nothing else is given.
    pub const DEFAULT_NAME: &'static str = "ptycho_train";
    /// The environment variable that names the program.
    pub const ENV_VAR: &'static str = "PTYCHO_TRAIN";

    /// `--trainer PATH`, else `$PTYCHO_TRAIN` (when set and not empty), else `ptycho_train`.
    pub fn resolve(flag: Option<&Path>, env: Option<OsString>) -> TrainerProgram {
        if let Some(path) = flag {
            return TrainerProgram {
                program: path.to_path_buf(),
                source: TrainerSource::Flag,
            };
        }
        match env.filter(|v| !v.is_empty()) {
            Some(value) => TrainerProgram {
                program: PathBuf::from(value),
                source: TrainerSource::Env,
            },
            None => TrainerProgram {
                program: PathBuf::from(Self::DEFAULT_NAME),
                source: TrainerSource::Path,
            },
        }
    }

    /// `` `ptycho_train` (looked up on PATH) `` and the like.
    pub fn describe(&self) -> String {
        let origin = match self.source {
            TrainerSource::Flag => "given by --trainer",
            TrainerSource::Env => "from $PTYCHO_TRAIN",
            TrainerSource::Path => "looked up on PATH",
        };
        format!("`{}` ({origin})", self.program.display())
    }
}

/// The PtychoPINN-only part of a job's resolved configuration, fixed when planning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnSettings {
    /// `--n_groups`: groups PtychoPINN draws from the training split (and the test split).
    pub n_groups: u32,
    /// Where `n_groups` came from: `--n-groups`, or the auto rule
    /// (`ptychopinn::N_GROUPS_AUTO_RULE`).
    pub n_groups_rule: String,
    /// Positions in the training split.
    pub train_positions: u64,
    /// Positions in the test split.
    pub test_positions: u64,
    /// `$PTYCHO_PYTHON` when planning: the adapter's interpreter. `None`: the interpreter of
    /// the trainer's `#!` line, when the trainer is a Python script.
    pub python: Option<PathBuf>,
    /// `--batch_size`: groups per training batch, kept below the point where PtychoPINN's
    /// reassembly merges the groups of a batch (B x gridsize² < 64). Configs written before
    /// it existed ran with PtychoPINN's default, 16.
    #[serde(default = "pinn_default_batch")]
    pub batch_size: u32,
    /// Where `batch_size` came from (`[pinn] batch_size`, or the auto rule).
    #[serde(default = "pinn_default_batch_rule")]
    pub batch_size_rule: String,
    /// Where the trainer runs (`--accelerator`, else `[pinn] accelerator`).
    #[serde(default)]
    pub accelerator: Accelerator,
}

fn pinn_default_batch() -> u32 {
    study_design::PINN_DEFAULT_BATCH_SIZE
}

fn pinn_default_batch_rule() -> String {
    "PtychoPINN's default (not passed)".to_string()
}
