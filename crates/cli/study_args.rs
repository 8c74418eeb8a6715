//! `--design FILE` / `--preset NAME`, shared by every command that needs the study.

use anyhow::Context;
use std::path::PathBuf;
use study_design::{PRESETS, Study};

/// Which study a command works on.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct StudyArgs {
    /// Study file (TOML, or JSON by extension): the design plus optional [simulation] and
    /// [solver] tables. Default: the built-in fly64 study.
    #[arg(long, value_name = "FILE", conflicts_with = "preset")]
    pub design: Option<PathBuf>,
    /// A built-in study instead of a file: `default`, `tiny`, `pinn-small` or `pinn-1k` (N = 64,
    /// for PtychoPINN), `fly64-full` (the original study's scale: 10,304 positions per dose),
    /// or `map` (the dose x overlap map: 6 doses x 5 overlap targets, native ml).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
}

impl StudyArgs {
    /// Loads and validates the study.
    pub fn load(&self) -> anyhow::Result<Study> {
        if let Some(path) = &self.design {
            return Study::from_path(path).with_context(|| "loading the study design".to_string());
        }
        let name = self.preset.as_deref().unwrap_or("default");
        Study::preset(name)
            .with_context(|| format!("unknown preset '{name}': use one of {}", PRESETS.join(", ")))
    }

    /// The study file's `[slurm]` table, as it is (`None`: a preset, or a file without one).
    pub fn slurm_table(&self) -> anyhow::Result<Option<serde_json::Value>> {
        match &self.design {
            Some(path) => {
                Study::slurm_table(path).with_context(|| "loading the study design".to_string())
            }
            None => Ok(None),
        }
    }
}
