//! Resuming a run: which jobs of a plan are verified complete on disk and need not run again.
//!
//! A job is skipped only when the job check ([`crate::check::check_job`], against the config
//! the job would run with now) finds nothing: its `result.json` says success with no
//! `scoring_error` (a job whose scoring failed trains again and is scored), the SHA-256 of
//! its resolved config equals the new config's, the size and SHA-256 of its train and test
//! NPZ equal those recorded when it ran, and its bundle (a regular file inside the artifact
//! dir) re-hashes to the recorded digest. Everything else runs again, for the check's first
//! finding, said in words a person can read.

use crate::check::{Depth, Expected, Finding, check_job};
use crate::digest::{file_digests, sha256_bytes};
use crate::plan::{Plan, PlannedJob};
use crate::result::{RESULT_FILE, ResultRecord};
use std::path::PathBuf;

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
    let on_disk =
        npz_contract::confine::read_capped(&planned.config.path(), npz_contract::confine::JSON_CAP)
            .ok();
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

/// Why a job runs again, from the job check's first finding.
fn reason(finding: &Finding, planned: &PlannedJob, new_text: &Result<String, String>) -> String {
    match finding {
        Finding::NoResult { .. } => "no earlier result".to_string(),
        Finding::ResultUnreadable { error } => format!("result.json unreadable ({error})"),
        Finding::ResultUnusable { error } => format!("result.json unusable ({error})"),
        Finding::OtherJob { .. } => "result.json is another job's".to_string(),
        // Resume claims nothing beyond the result itself; kept for completeness.
        Finding::ClaimDiffers { recorded, .. } => {
            format!("result.json says {recorded}, not what was claimed")
        }
        Finding::NotTrained { status } => format!("last run ended {status}"),
        Finding::NotScored { .. } => {
            "last run's scoring failed (see its scoring_error)".to_string()
        }
        Finding::ConfigUnavailable { .. } => "config cannot be serialised".to_string(),
        Finding::NoConfigDigest => "result has no config digest (an older version)".to_string(),
        Finding::ConfigDiffers { recorded } => {
            why_config_changed(planned, recorded, new_text.as_deref().unwrap_or_default())
        }
        Finding::NoInputDigests => "result has no input digests (an older version)".to_string(),
        Finding::InputUnreadable { name, path, error } => {
            format!("input unreadable ({name} {}: {error})", path.display())
        }
        Finding::InputChanged { name, path, .. } => {
            format!("input changed ({name} {})", path.display())
        }
        Finding::BundleNotContained { missing: true, .. } => "bundle missing".to_string(),
        Finding::BundleNotContained { missing: false, .. } => {
            "bundle altered (not a regular file inside the job dir)".to_string()
        }
        Finding::BundleUnreadable { error, .. } => format!("bundle unreadable ({error})"),
        Finding::BundleAltered { .. } => "bundle altered".to_string(),
        Finding::ReconstructionNotContained { .. } => {
            "reconstruction missing (not a regular file inside the job dir)".to_string()
        }
    }
}

/// The decision for job `planned`: skip it when the job check finds nothing, else run it for
/// the first finding.
fn decide_one(plan: &Plan, planned: &PlannedJob, force: bool, threads: usize) -> Decision {
    if force {
        return Decision::Run("--force".to_string());
    }
    // A job folder that is a link to elsewhere is never read through (nor, when the job
    // runs, written through: it fails saying so).
    if let Err(e) = crate::run::confined_dir(plan, planned) {
        return Decision::Run(e);
    }
    let new_text = planned.config.to_json().map_err(|e| e.to_string());
    let job = &planned.job;
    let check = check_job(
        &Expected {
            dir: &job.artifact_dir,
            dose: job.dose,
            view: &job.view,
            gridsize: job.gridsize,
            claimed: None,
            config: match &new_text {
                Ok(text) => Ok(text.as_bytes()),
                Err(e) => Err(e.clone()),
            },
            inputs: [
                Ok(&planned.config.train_data_file),
                Ok(&planned.config.test_data_file),
            ],
            threads,
        },
        Depth::First,
    );
    if let Some(finding) = check.findings.first() {
        return Decision::Run(reason(finding, planned, &new_text));
    }
    match check.record {
        Some(record) => Decision::Skip(Box::new(record)),
        // A check without a finding has read a result: never reached.
        None => Decision::Run("no earlier result".to_string()),
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
        .map(|planned| decide_one(plan, planned, force, 1))
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
