//! What PtychoPINN cannot train is refused when planning, before any job starts: the patch
//! size, the group counts, the batch size that keeps groups apart; and the PtychoPINN
//! settings of each job it can train ([`PinnSettings`]), from the study's `[pinn]` table and
//! the command-line flags.

use crate::config::{BackendKind, PinnSettings, TrainingConfig};
use std::path::{Path, PathBuf};
use study_design::{Accelerator, Pinn};

/// The patch sizes N PtychoPINN's model accepts (`Unsupported input size` otherwise).
pub const ACCEPTED_PATCH_SIZES: [u32; 3] = [64, 128, 256];
/// How `--n_groups` is chosen when it is not given (documented in README).
pub const N_GROUPS_AUTO_RULE: &str = "auto: the smaller split's position count (PtychoPINN groups both splits with it; every \
     position seeds one group, so no oversampling is needed)";

/// What a PtychoPINN job may set beyond the study's `[pinn]` table: the command-line flags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PinnOverrides {
    /// `--n-groups`.
    pub n_groups: Option<u32>,
    /// `--accelerator`.
    pub accelerator: Option<Accelerator>,
}

/// The problem with patch size `n` for a PtychoPINN backend, with the fix.
pub fn patch_size_problem(n: u32, backend: BackendKind) -> Option<String> {
    (backend.uses_trainer_program() && !ACCEPTED_PATCH_SIZES.contains(&n)).then(|| {
        format!(
            "patch_size_pixels={n}: PtychoPINN's model (--backend {backend}) takes N = 64, 128 \
             or 256 only; use --preset pinn-small (N = 64) or default (N = 128), set \
             patch_size_pixels in the study file, or train this study with --backend native"
        )
    })
}

/// Positions in an NPZ split (the length of `xcoords`, from its header only).
fn positions(path: &Path) -> Result<u64, String> {
    let reader = npz_contract::NpzReader::open(path).map_err(|e| e.to_string())?;
    let member = reader
        .member("xcoords")
        .ok_or_else(|| format!("{}: no xcoords", path.display()))?;
    Ok(member.shape.first().copied().unwrap_or(0) as u64)
}

/// Resolves a job's [`PinnSettings`], or says why PtychoPINN cannot train it: each problem
/// names the job, the setting and the fix. `Ok(None)` when a split cannot be read: that job
/// then fails on its own when the trainer reads it (one bad file never stops the others).
pub fn resolve_settings(
    config: &TrainingConfig,
    pinn: &Pinn,
    overrides: &PinnOverrides,
    python: Option<PathBuf>,
) -> Result<Option<PinnSettings>, Vec<String>> {
    let job = format!("{} dose={}", config.view, config.dose);
    let mut problems = Vec::new();
    let (n_groups, n_groups_flag) = match (overrides.n_groups, pinn.n_groups) {
        (Some(n), _) => (Some(n), "--n-groups"),
        (None, Some(n)) => (Some(n), "[pinn] n_groups"),
        (None, None) => (None, ""),
    };
    let (Ok(train), Ok(test)) = (
        positions(&config.train_data_file),
        positions(&config.test_data_file),
    ) else {
        return Ok(None);
    };
    let g = u64::from(config.gridsize);
    let k = u64::from(config.neighbor_count);
    if g > 1 && k < g * g {
        problems.push(format!(
            "{job}: neighbor_count={k} is below gridsize²={}: PtychoPINN groups {} positions \
             out of the K nearest; set neighbor_count to at least {} in the study file",
            g * g,
            g * g,
            g * g
        ));
    }
    let smaller = train.min(test);
    // PtychoPINN finds each seed's K nearest neighbours among the split's other positions.
    if g > 1 && smaller < k + 1 {
        problems.push(format!(
            "{job}: the view is too small for gridsize {g}: a split has {smaller} positions but \
             grouping with neighbor_count K={k} needs at least {} per split; use a denser view \
             (a larger overlap fraction), more simulation.n_positions, or a smaller \
             neighbor_count",
            k + 1
        ));
    }
    let (n_groups, rule) = match n_groups {
        Some(n) => {
            if u64::from(n) > smaller {
                problems.push(format!(
                    "{job}: {n_groups_flag} {n} asks for more groups than the view supplies \
                     (train {train}, test {test} positions; PtychoPINN groups both splits with \
                     it and this toolkit does not enable its oversampling): give at most \
                     {smaller}, or leave {n_groups_flag} out ({N_GROUPS_AUTO_RULE})"
                ));
            }
            (n, n_groups_flag.to_string())
        }
        None => (
            u32::try_from(smaller).unwrap_or(u32::MAX),
            N_GROUPS_AUTO_RULE.to_string(),
        ),
    };
    if n_groups == 0 {
        problems.push(format!(
            "{job}: no groups to train on (train {train}, test {test} positions)"
        ));
    }
    let batch = match pinn.batch_size_for(config.gridsize) {
        Some((b, rule)) => {
            // A study file's batch size is checked against the study's gridsizes when it is
            // loaded; this catches a job planned some other way.
            if let Some(problem) = study_design::pinn_batch_problem(b, config.gridsize) {
                problems.push(format!("{job}: {problem}"));
            }
            Some((b, rule.to_string()))
        }
        None => {
            problems.push(format!(
                "{job}: gridsize {} cannot train with PtychoPINN without merging groups: one \
                 group is {} patches, and its patch reassembly sums every group of a batch into \
                 one object from {} patches on; use a gridsize of at most 7",
                config.gridsize,
                config.gridsize * config.gridsize,
                study_design::PINN_MERGE_PATCHES
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let (batch_size, batch_size_rule) = batch.expect("no problem means a batch size");
    Ok(Some(PinnSettings {
        n_groups,
        n_groups_rule: rule,
        train_positions: train,
        test_positions: test,
        python,
        batch_size,
        batch_size_rule,
        accelerator: overrides.accelerator.unwrap_or(pinn.accelerator),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_64_128_256_train_with_ptychopinn() {
        for n in [64, 128, 256] {
            assert_eq!(patch_size_problem(n, BackendKind::Tensorflow), None);
        }
        let message = patch_size_problem(32, BackendKind::Tensorflow).unwrap();
        assert!(
            message.starts_with("patch_size_pixels=32: PtychoPINN's model"),
            "{message}"
        );
        assert!(message.contains("--preset pinn-small") && message.contains("--backend native"));
        assert!(patch_size_problem(96, BackendKind::Pytorch).is_some());
        assert_eq!(patch_size_problem(32, BackendKind::Native), None);
    }
}
