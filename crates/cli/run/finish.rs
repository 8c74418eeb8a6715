//! The end of a run, local or collected: the manifest and skip summary written, their lines
//! printed, failed jobs listed, the exit code; and the lines each finished job prints.

use super::CommandLog;
use crate::exit;
use crate::progress::Progress;
use job_matrix::format_dose;
use reporting::manifest::TrainingManifest;
use runner::{JobResult, Plan, PlannedJob};

/// `1 dry run`, `8 success, 1 failed`: the statuses of `results`, in a fixed order.
fn status_counts(results: &[JobResult]) -> String {
    let mut parts = Vec::new();
    for (status, label) in [
        ("success", "success"),
        ("dry_run", "dry run"),
        ("failed", "failed"),
        ("interrupted", "interrupted"),
    ] {
        let n = results.iter().filter(|r| r.status() == status).count();
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    parts.join(", ")
}

/// The stdout lines of a finished job with a bundle (the original system's form).
pub fn bundle_lines(planned: &PlannedJob, result: &JobResult) -> Vec<String> {
    let JobResult::Success(r) = result else {
        return Vec::new();
    };
    let tag = format!(
        "{}/dose={}",
        planned.job.view,
        format_dose(planned.job.dose)
    );
    vec![
        format!("    → Bundle [{tag}]: {}", r.bundle_path),
        format!("    → SHA256 [{tag}]: {}", r.bundle_sha256),
        format!("    → Size [{tag}]: {} bytes", r.bundle_size_bytes),
    ]
}

/// `error: job dense/dose=1e+03 failed: <error> (log: <train.log>)`; the log is not named twice
/// when the error already points at it.
pub fn job_error_line(planned: &PlannedJob, status: &str, error: &str) -> String {
    let log = planned.job.log_path.display().to_string();
    let log_note = if error.contains(&log) {
        String::new()
    } else {
        format!(" (log: {log})")
    };
    format!(
        "error: job {} {status}: {error}{log_note}",
        planned.job.label()
    )
}

/// Writes the manifest and skip summary of `plan` and `results`, prints their lines, reports
/// failed and interrupted jobs on stderr, and returns the exit code.
pub fn finish_run(
    plan: &Plan,
    results: &[JobResult],
    progress: &Progress,
    log: &CommandLog,
) -> anyhow::Result<u8> {
    let manifest = TrainingManifest::assemble(plan, results)?;
    let (manifest_path, summary_path) = manifest.write()?;
    log.out(&format!(
        "→ Training manifest written to {} ({} job(s): {})",
        manifest_path.display(),
        results.len(),
        status_counts(results)
    ));
    if !manifest.skipped_views.is_empty() {
        log.out(&format!(
            "→ Skip summary written to {} ({} view(s) skipped)",
            summary_path.display(),
            manifest.skipped_count
        ));
    }
    // Failures one per line (a person acts on each), at most MAX_LISTED of them; interrupted
    // jobs were already summed up when the run stopped.
    const MAX_LISTED: usize = 20;
    let failed: Vec<(&PlannedJob, &str)> = plan
        .jobs
        .iter()
        .zip(results)
        .filter_map(|(planned, result)| match result {
            JobResult::Failed(f) => Some((planned, f.error.as_str())),
            _ => None,
        })
        .collect();
    // Trained but not scored: a failure to report (exit 1), not a success.
    let unscored: Vec<(&PlannedJob, String)> = plan
        .jobs
        .iter()
        .zip(results)
        .filter_map(|(planned, result)| match result {
            JobResult::Success(t) => t.unscored().map(|why| (planned, why)),
            _ => None,
        })
        .collect();
    for (planned, error) in failed.iter().take(MAX_LISTED) {
        log.error(progress, &job_error_line(planned, "failed", error));
    }
    if failed.len() > MAX_LISTED {
        log.error(
            progress,
            &format!(
                "error: {} more job(s) failed; {} lists every error",
                failed.len() - MAX_LISTED,
                manifest_path.display()
            ),
        );
    }
    for (planned, error) in unscored.iter().take(MAX_LISTED) {
        log.error(progress, &job_error_line(planned, "was not scored", error));
    }
    if unscored.len() > MAX_LISTED {
        log.error(
            progress,
            &format!(
                "error: {} more job(s) were not scored; {} says which",
                unscored.len() - MAX_LISTED,
                manifest_path.display()
            ),
        );
    }
    let code = if results.iter().all(JobResult::is_ok) {
        exit::OK
    } else {
        exit::FAILURE
    };
    Ok(code)
}
