//! Scoring a trained PtychoPINN bundle: the inference adapter (`pinn_adapter.py`, shipped in
//! this binary) reconstructs both splits through PtychoPINN's own inference API, contained like
//! the trainer, and the stitched objects are scored like the native solver's.

use super::invocation::trainer_env;
use super::python::{PYTHON_ENV_VAR, interpreter};
use crate::backend::JobContext;
use crate::config::{TrainerProgram, TrainingConfig};
use crate::external::{ScoreError, Stopped, run_contained, score_splits};
use crate::result::IntensityScale;
use crate::shell::shell_word;
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The inference adapter, written into the job dir before it runs.
pub const ADAPTER_FILE: &str = "pinn_adapter.py";
/// The stitched reconstructions (`train_object`, `test_object`), beside the bundle.
pub const RECONSTRUCTION_FILE: &str = "pinn_reconstruction.npz";
/// What the adapter read from the bundle beyond the patches (its intensity scale), in the
/// job dir.
pub const ADAPTER_FACTS_FILE: &str = "pinn_adapter_facts.json";
/// Its source (the supervised baseline's adapter imports its `stitch`).
pub(crate) const ADAPTER_SOURCE: &str = include_str!("pinn_adapter.py");

/// What scoring a trained job gave.
#[derive(Debug)]
pub(crate) struct Scored {
    /// `{"train": Metrics, "test": Metrics}`, the native backend's shape.
    pub metrics: serde_json::Value,
    /// The stitched reconstructions ([`RECONSTRUCTION_FILE`] in the job dir).
    pub reconstruction: PathBuf,
    /// The bundle's intensity scale beside its start (`None` when the adapter could not
    /// read it).
    pub intensity_scale: Option<IntensityScale>,
}

/// The adapter's facts file: `{"intensity_scale": {"initial", "trained", "trainable"} | null}`.
fn read_adapter_facts(path: &Path) -> Result<Option<IntensityScale>, String> {
    #[derive(Deserialize)]
    struct Scale {
        initial: f64,
        trained: f64,
        trainable: bool,
    }
    #[derive(Deserialize)]
    struct Facts {
        intensity_scale: Option<Scale>,
    }
    // Bounded: the adapter writes a few hundred bytes.
    let mut bytes = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            1 << 16,
        ),
        &mut bytes,
    )
    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let facts: Facts = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not the adapter's facts: {e}", path.display()))?;
    Ok(facts
        .intensity_scale
        .map(|s| IntensityScale::new(s.initial, s.trained, s.trainable)))
}

/// Reconstructs both splits with the trained bundle (the adapter, through PtychoPINN's own
/// inference API), then scores the stitched objects with the toolkit's one scoring code
/// (`score_splits`: `recon::score_files`). `config` has absolute paths (`invocation::prepare`).
/// The adapter is contained like the trainer (`external::run_contained`): its own process
/// group under the watchdog, stopped on Ctrl-C, at `--job-timeout`, and with `dose-overlap`
/// itself.
pub(crate) fn score(
    config: &TrainingConfig,
    trainer: &TrainerProgram,
    ctx: &mut JobContext<'_>,
) -> Result<Scored, ScoreError> {
    let python = interpreter(config, trainer)?;
    let dir = &config.output_dir;
    let adapter = dir.join(ADAPTER_FILE);
    let out = dir.join(RECONSTRUCTION_FILE);
    let facts = dir.join(ADAPTER_FACTS_FILE);
    npz_contract::atomic::write_atomic(&adapter, ADAPTER_SOURCE.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", adapter.display()))?;
    for earlier in [&out, &facts] {
        if earlier.exists() {
            std::fs::remove_file(earlier)
                .map_err(|e| format!("cannot remove the earlier {}: {e}", earlier.display()))?;
        }
    }
    let mut command = Command::new(&python);
    command
        .arg(&adapter)
        .arg("--bundle-dir")
        .arg(dir)
        .arg("--train")
        .arg(&config.train_data_file)
        .arg("--test")
        .arg(&config.test_data_file)
        .arg("--out")
        .arg(&out)
        .args(["--gridsize", &config.gridsize.to_string()])
        .args(["--neighbor-count", &config.neighbor_count.to_string()])
        .args([
            "--seed",
            &crate::external::tool_seed(config.rng_seeds.grouping).to_string(),
        ])
        .arg("--facts")
        .arg(&facts)
        .envs(trainer_env(config))
        .current_dir(dir);
    ctx.log_line("");
    ctx.log_line(&format!(
        "Scoring: reconstructing both splits with the trained bundle (in {}):",
        dir.display()
    ));
    let shown: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| shell_word(&a.to_string_lossy()))
        .collect();
    ctx.log_line(&format!("$ {}", shown.join(" ")));
    ctx.log.sync().map_err(|e| e.to_string())?;
    let contained = run_contained(command, ctx, &mut ()).map_err(|e| {
        format!(
            "cannot run the inference adapter with {} (from ${PYTHON_ENV_VAR} or the trainer's \
             `#!` line): {e}; set ${PYTHON_ENV_VAR} to PtychoPINN's interpreter",
            python.display()
        )
    })?;
    if let Some(why) = contained.stopped {
        ctx.log_line("");
        ctx.log_line(match why {
            Stopped::Cancelled => "Interrupted: the inference adapter was stopped.",
            Stopped::TimedOut => "Timed out: the inference adapter and its processes were stopped.",
        });
        return Err(ScoreError::Stopped);
    }
    let status = contained.status;
    if !status.success() {
        let last = contained
            .last_line
            .map(|l| format!("; its last output line: `{l}`"))
            .unwrap_or_default();
        return Err(ScoreError::Failed(format!(
            "the inference adapter ({} {ADAPTER_FILE}) ended with {status}{last}; see the job \
             log (PtychoPINN must be importable by ${PYTHON_ENV_VAR} or the trainer's \
             interpreter: installed, or on PYTHONPATH)",
            python.display()
        )));
    }
    // The one scoring code of the toolkit, on the file the adapter wrote.
    let metrics = score_splits(config, &out)?;
    // A stand-in or older adapter may write no facts: the scale is then unknown, not wrong.
    // Only a regular file is read: a link or a FIFO there is never followed or opened.
    let intensity_scale = match std::fs::symlink_metadata(&facts) {
        Err(_) => None,
        Ok(meta) if !meta.is_file() => {
            ctx.log_line(&format!(
                "The intensity scale is unknown: {} is not a regular file (not read).",
                facts.display()
            ));
            None
        }
        Ok(_) => read_adapter_facts(&facts).unwrap_or_else(|e| {
            ctx.log_line(&format!("The intensity scale is unknown: {e}"));
            None
        }),
    };
    if let Some(scale) = &intensity_scale {
        ctx.log_line(&format!("PtychoPINN's {}.", scale.describe()));
    }
    Ok(Scored {
        metrics,
        reconstruction: out,
        intensity_scale,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bundle_scale_equal_to_its_float32_start_is_frozen() {
        use crate::result::{IntensityScale, ScaleStatus};
        // The pinned TensorFlow trainer, pinn-1k, dose 1e3: sqrt(1000) / 32 saved as float32.
        let frozen = IntensityScale::new(0.9882117688026185, 0.9882117509841919, true);
        assert_eq!(frozen.status, ScaleStatus::Frozen);
        assert!(frozen.describe().contains("FROZEN"));
        assert_eq!(
            IntensityScale::new(0.988, 1.057, true).status,
            ScaleStatus::Trained
        );
        assert_eq!(
            IntensityScale::new(10000.0, 10000.0, false).status,
            ScaleStatus::Fixed
        );
    }
}
