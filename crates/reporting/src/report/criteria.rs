//! The report's exit criteria, each a sentence and its verdict: the run finished, every job
//! ended well, the skip count agrees, bundles are recorded, jobs beat the flat start, quality
//! improves with dose, and views rank as their overlap says.

use super::model::{Job, doses, labels};
use crate::manifest::TrainingManifest;
use crate::metrics::{against_flat_start, lower_is_better};
use crate::text::{dose_label, fmt_num};

/// Every criterion, in the order `summary.md` lists them; `metric` is the first plotted one,
/// which the dose and view criteria judge by.
pub(super) fn criteria(
    manifest: &TrainingManifest,
    jobs: &[Job],
    unfinished: bool,
    metric: Option<&str>,
) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    if unfinished {
        out.push((
            "the run that wrote the manifest finished".to_string(),
            false,
        ));
    }
    out.push(jobs_ended_well(jobs));
    out.push(skip_count_agrees(manifest));
    out.extend(bundles_recorded(jobs));
    out.extend(beats_the_flat_start(jobs));
    if let Some(metric) = metric {
        out.extend(improves_with_dose(jobs, metric));
        out.extend(views_rank(jobs, metric));
    }
    out
}

fn jobs_ended_well(jobs: &[Job]) -> (String, bool) {
    let ok = jobs.iter().filter(|j| j.result.is_ok()).count();
    (
        format!("every selected job ended well ({ok}/{})", jobs.len()),
        ok == jobs.len() && !jobs.is_empty(),
    )
}

fn skip_count_agrees(manifest: &TrainingManifest) -> (String, bool) {
    let skips = manifest.skipped_views.len();
    (
        format!("skip count agrees with the skip events ({skips})"),
        manifest.skipped_count == skips,
    )
}

/// Nothing when no job succeeded.
fn bundles_recorded(jobs: &[Job]) -> Option<(String, bool)> {
    let successes: Vec<_> = jobs.iter().filter_map(Job::trained).collect();
    if successes.is_empty() {
        return None;
    }
    let ok = successes.iter().all(|t| {
        let sha = &t.bundle_sha256;
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) && t.bundle_size_bytes > 0
    });
    Some((
        "every successful job has a bundle with its SHA-256 and size".into(),
        ok,
    ))
}

/// A reconstruction no closer to the truth than the object of ones it started from (or, for a
/// network, than that object) has learned nothing the scoring can see: said, not hidden.
/// Nothing when no job has both figures.
fn beats_the_flat_start(jobs: &[Job]) -> Option<(String, bool)> {
    let scored: Vec<(&Job, (f64, f64, bool))> = jobs
        .iter()
        .filter_map(|j| Some((j, against_flat_start(|k| j.metric("test", k))?)))
        .collect();
    if scored.is_empty() {
        return None;
    }
    let worse: Vec<String> = scored
        .iter()
        .filter(|(_, (_, _, below))| !below)
        .map(|(j, (v, flat, _))| {
            format!(
                "{} dose {}: {} vs {}",
                j.id.label(),
                dose_label(j.id.dose),
                fmt_num(*v),
                fmt_num(*flat)
            )
        })
        .collect();
    let mut text = format!(
        "every scored job beats the flat start on fienup_nrmse (test) ({}/{})",
        scored.len() - worse.len(),
        scored.len()
    );
    if !worse.is_empty() {
        text.push_str(&format!("; not: {}", worse.join(", ")));
    }
    Some((text, worse.is_empty()))
}

/// Whether `a` is a better value of `metric` than `b`.
fn better(metric: &str, a: f64, b: f64) -> bool {
    if lower_is_better(metric) {
        a < b
    } else {
        a > b
    }
}

/// Per view and gridsize with more than one dose scored: `metric` (test) better at each higher
/// dose.
fn improves_with_dose(jobs: &[Job], metric: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for label in labels(jobs) {
        let mut curve: Vec<(f64, f64)> = jobs
            .iter()
            .filter(|j| j.id.label() == label)
            .filter_map(|j| Some((j.id.dose, j.metric("test", metric)?)))
            .collect();
        if curve.len() > 1 {
            curve.sort_by(|a, b| a.0.total_cmp(&b.0));
            let ok = curve.windows(2).all(|w| better(metric, w[1].1, w[0].1));
            let values: Vec<String> = curve.iter().map(|(_, v)| fmt_num(*v)).collect();
            out.push((
                format!(
                    "{label}: {metric} (test) improves with dose ({})",
                    values.join(" → ")
                ),
                ok,
            ));
        }
    }
    out
}

/// Per dose, each view other than the baseline (in the order the jobs list them) scores better
/// on `metric` (test) than the next.
fn views_rank(jobs: &[Job], metric: &str) -> Vec<(String, bool)> {
    let mut views: Vec<&str> = Vec::new();
    for j in jobs {
        if j.id.view != "baseline" && !views.contains(&j.id.view) {
            views.push(j.id.view);
        }
    }
    let mut out = Vec::new();
    for pair in views.windows(2) {
        for dose in doses(jobs) {
            let score = |view: &str| {
                jobs.iter()
                    .find(|j| j.id.view == view && j.id.dose == dose)
                    .and_then(|j| j.metric("test", metric))
            };
            if let (Some(a), Some(b)) = (score(pair[0]), score(pair[1])) {
                out.push((
                    format!(
                        "dose {}: {} scores better than {} on {metric} ({} vs {})",
                        dose_label(dose),
                        pair[0],
                        pair[1],
                        fmt_num(a),
                        fmt_num(b)
                    ),
                    better(metric, a, b),
                ));
            }
        }
    }
    out
}
