//! Resuming a run: which jobs of a plan are verified complete on disk and need not run again.
//!
//! A job is skipped only when its `result.json` says success with no `scoring_error` (a job
//! whose scoring failed trains again and is scored), the SHA-256 of its resolved config equals
//! the new config's, the size and SHA-256 of its train and test NPZ equal those
//! recorded when it ran, and its bundle (a regular file inside the artifact dir) re-hashes to
//! the recorded digest. Everything else runs again, with a reason a person can read.

use crate::config::TrainingConfig;
use crate::digest::{FileDigest, checked_bundle, file_digests, hash_bundle, sha256_bytes};
use crate::plan::{Plan, PlannedJob};
use crate::result::{InputDigests, JobResult, RESULT_FILE, ResultRecord};
use std::path::{Path, PathBuf};

/// What to do with one job.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Verified complete: its result is reused.
    Skip(Box<ResultRecord>),
    /// Run it, for this reason (`config changed (epochs 20 -> 300)`, `input changed`, ...).
    Run(String),
}

impl Decision {
    /// `skip: verified` or `run: <reason>`.
    pub fn describe(&self) -> String {
        match self {
            Decision::Skip(_) => "skip: verified".to_string(),
            Decision::Run(reason) => format!("run: {reason}"),
        }
    }

    /// Whether the job is skipped.
    pub fn is_skip(&self) -> bool {
        matches!(self, Decision::Skip(_))
    }
}

/// Size and SHA-256 of a job's train and test NPZ, hashed on up to `threads` threads.
pub fn input_digests(config: &TrainingConfig, threads: usize) -> Result<InputDigests, String> {
    let paths = [
        config.train_data_file.clone(),
        config.test_data_file.clone(),
    ];
    let mut digests = file_digests(&paths, threads).into_iter();
    let mut next = |path: &Path| {
        digests
            .next()
            .unwrap_or_else(|| Err(std::io::Error::other("not hashed")))
            .map_err(|e| format!("cannot read the input {}: {e}", path.display()))
    };
    Ok(InputDigests {
        train: next(&paths[0])?,
        test: next(&paths[1])?,
    })
}

/// `epochs 20 -> 300, solver.alpha 0.5 -> 0.7`: the fields that differ between two configs
/// (at most four named).
fn config_changes(old: &serde_json::Value, new: &serde_json::Value) -> String {
    fn walk(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.dedup();
                let mut seen = std::collections::BTreeSet::new();
                for key in keys {
                    if !seen.insert(key) {
                        continue;
                    }
                    let name = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    let null = serde_json::Value::Null;
                    walk(
                        &name,
                        x.get(key).unwrap_or(&null),
                        y.get(key).unwrap_or(&null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{prefix} {a} -> {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    let more = out.len().saturating_sub(4);
    out.truncate(4);
    let mut text = out.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

/// Whether the config on disk is the one the record ran with; if so, what changed from it.
fn why_config_changed(planned: &PlannedJob, recorded: &str, new_text: &str) -> String {
    let on_disk = std::fs::read(planned.config.path()).ok();
    let old = on_disk
        .filter(|bytes| sha256_bytes(bytes) == recorded)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let new = serde_json::from_str::<serde_json::Value>(new_text).ok();
    match (old, new) {
        (Some(old), Some(new)) => {
            let changes = config_changes(&old, &new);
            if changes.is_empty() {
                "config changed".to_string()
            } else {
                format!("config changed ({changes})")
            }
        }
        _ => "config changed".to_string(),
    }
}

fn check_inputs(
    recorded: &InputDigests,
    now: &[std::io::Result<FileDigest>],
    config: &TrainingConfig,
) -> Option<String> {
    for ((name, path), (was, is)) in [
        ("train", &config.train_data_file),
        ("test", &config.test_data_file),
    ]
    .into_iter()
    .zip([(&recorded.train, &now[0]), (&recorded.test, &now[1])])
    {
        match is {
            Err(e) => return Some(format!("input unreadable ({name} {}: {e})", path.display())),
            Ok(is) if is != was => {
                return Some(format!("input changed ({name} {})", path.display()));
            }
            Ok(_) => {}
        }
    }
    None
}

/// The decision for job `planned`, given the bytes of its new resolved config.
fn decide_one(planned: &PlannedJob, force: bool, threads: usize) -> Decision {
    if force {
        return Decision::Run("--force".to_string());
    }
    let result_path = planned.job.artifact_dir.join(RESULT_FILE);
    let text = match std::fs::read_to_string(&result_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Decision::Run("no earlier result".to_string());
        }
        Err(e) => return Decision::Run(format!("result.json unreadable ({e})")),
    };
    let record = match ResultRecord::from_json(&text) {
        Ok(record) => record,
        Err(e) => return Decision::Run(format!("result.json unusable ({e})")),
    };
    if record.view != planned.job.view
        || record.gridsize != planned.job.gridsize
        || record.dose != planned.job.dose
    {
        return Decision::Run("result.json is another job's".to_string());
    }
    let JobResult::Success(trained) = &record.result else {
        return Decision::Run(format!("last run ended {}", record.result.status()));
    };
    // A trained job that could not be scored is not complete: its result has no metrics.
    if trained.scoring_error.is_some() {
        return Decision::Run("last run's scoring failed (see its scoring_error)".to_string());
    }
    let Ok(new_text) = planned.config.to_json() else {
        return Decision::Run("config cannot be serialised".to_string());
    };
    let Some(recorded_config) = &record.config_sha256 else {
        return Decision::Run("result has no config digest (an older version)".to_string());
    };
    if *recorded_config != sha256_bytes(new_text.as_bytes()) {
        return Decision::Run(why_config_changed(planned, recorded_config, &new_text));
    }
    let Some(recorded_inputs) = &record.inputs else {
        return Decision::Run("result has no input digests (an older version)".to_string());
    };
    let now = file_digests(
        &[
            planned.config.train_data_file.clone(),
            planned.config.test_data_file.clone(),
        ],
        threads,
    );
    if let Some(reason) = check_inputs(recorded_inputs, &now, &planned.config) {
        return Decision::Run(reason);
    }
    let bundle = planned.job.artifact_dir.join(&trained.bundle_path);
    if std::fs::symlink_metadata(&bundle).is_err() {
        return Decision::Run("bundle missing".to_string());
    }
    if checked_bundle(&bundle, &planned.job.artifact_dir).is_err() {
        return Decision::Run("bundle altered (not a regular file inside the job dir)".to_string());
    }
    match hash_bundle(&bundle) {
        Ok((sha, size)) if sha == trained.bundle_sha256 && size == trained.bundle_size_bytes => {
            Decision::Skip(Box::new(record))
        }
        Ok(_) => Decision::Run("bundle altered".to_string()),
        Err(e) => Decision::Run(format!("bundle unreadable ({e})")),
    }
}

/// The decision for every job of `plan`, in plan order (`force`: run them all). Inputs are
/// hashed on up to `threads` threads, each file once.
pub fn decide(plan: &Plan, force: bool, threads: usize) -> Vec<Decision> {
    // Hash every input of a job that could be skipped up front, in parallel; the per-job checks
    // below then find them in the digest memo.
    if !force {
        let mut candidates: Vec<PathBuf> = plan
            .jobs
            .iter()
            .filter(|p| p.job.artifact_dir.join(RESULT_FILE).is_file())
            .flat_map(|p| {
                [
                    p.config.train_data_file.clone(),
                    p.config.test_data_file.clone(),
                ]
            })
            .collect();
        candidates.sort();
        candidates.dedup();
        let _ = file_digests(&candidates, threads);
    }
    plan.jobs
        .iter()
        .map(|planned| decide_one(planned, force, 1))
        .collect()
}

/// Rewrites a skipped job's `result.json` as this plan's (its id and index), keeping its
/// result and the digests of what it ran with; nothing is written when it is already so.
pub fn adopt(record: &ResultRecord, planned: &PlannedJob, plan_id: &str) -> std::io::Result<()> {
    if record.plan_id == plan_id && record.index == planned.index {
        return Ok(());
    }
    let mut adopted = record.clone();
    adopted.plan_id = plan_id.to_string();
    adopted.index = planned.index;
    let text = adopted.to_json().map_err(std::io::Error::other)?;
    npz_contract::atomic::write_atomic(&planned.job.artifact_dir.join(RESULT_FILE), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_changes_name_the_fields() {
        let old = serde_json::json!({"epochs": 20, "solver": {"alpha": 0.5, "beta": 1}});
        let new = serde_json::json!({"epochs": 300, "solver": {"alpha": 0.7, "beta": 1}});
        assert_eq!(
            config_changes(&old, &new),
            "epochs 20 -> 300, solver.alpha 0.5 -> 0.7"
        );
    }
}
