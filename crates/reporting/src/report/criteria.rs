//! The report's exit criteria, each a sentence and its verdict: the run finished, every job
//! ended well, the skip count agrees, bundles are recorded, jobs beat the flat start, quality
//! improves with dose, and views rank as their overlap says.

use super::model::{Job, by_label, doses};
use crate::manifest::TrainingManifest;
use crate::metrics::{FlatStanding, against_flat_start, lower_is_better};
use crate::pictures::PICTURED_DOSES;
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
    let scored: Vec<(&Job, (f64, f64, FlatStanding))> = jobs
        .iter()
        .filter_map(|j| Some((j, against_flat_start(|k| j.metric("test", k))?)))
        .collect();
    if scored.is_empty() {
        return None;
    }
    // Level with it (within FLAT_TIE) is not beating it: a constant object scores the same.
    let worse: Vec<String> = scored
        .iter()
        .filter(|(_, (_, _, standing))| *standing != FlatStanding::Below)
        .map(|(j, (v, flat, standing))| {
            format!(
                "{} dose {}: {} vs {} ({})",
                j.id.label(),
                dose_label(j.id.dose),
                fmt_num(*v),
                fmt_num(*flat),
                standing.word()
            )
        })
        .collect();
    let mut text = format!(
        "every scored job beats the flat start on fienup_nrmse (test) ({}/{})",
        scored.len() - worse.len(),
        scored.len()
    );
    if !worse.is_empty() {
        text.push_str(&format!("; not: {}", listed(&worse, String::clone)));
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
/// dose. The values are listed for up to [`PICTURED_DOSES`] doses; a sweep of more is
/// summarised (first and last dose, how often it got worse) so that a line stays a line.
fn improves_with_dose(jobs: &[Job], metric: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (label, of_label) in by_label(jobs) {
        let mut curve: Vec<(f64, f64)> = of_label
            .iter()
            .filter_map(|j| Some((j.id.dose, j.metric("test", metric)?)))
            .collect();
        if curve.len() > 1 {
            curve.sort_by(|a, b| a.0.total_cmp(&b.0));
            let reversals = curve
                .windows(2)
                .filter(|w| !better(metric, w[1].1, w[0].1))
                .count();
            let trend = if curve.len() <= PICTURED_DOSES {
                let values: Vec<String> = curve.iter().map(|(_, v)| fmt_num(*v)).collect();
                values.join(" → ")
            } else {
                let ((d0, v0), (d1, v1)) = (curve[0], curve[curve.len() - 1]);
                let shape = match reversals {
                    0 => "better at every step".to_string(),
                    n => format!("not better at {n} of {} steps", curve.len() - 1),
                };
                format!(
                    "{} doses, {} at {} → {} at {}; {shape}",
                    curve.len(),
                    fmt_num(v0),
                    dose_label(d0),
                    fmt_num(v1),
                    dose_label(d1)
                )
            };
            out.push((
                format!("{label}: {metric} (test) improves with dose ({trend})"),
                reversals == 0,
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
    // The first job of each view and dose, found once (a sweep has 100,000 jobs).
    let mut first: std::collections::HashMap<(&str, u64), &Job> = Default::default();
    for j in jobs {
        first.entry((j.id.view, j.id.dose.to_bits())).or_insert(j);
    }
    let doses = doses(jobs);
    let mut out = Vec::new();
    for pair in views.windows(2) {
        let score = |view: &str, dose: f64| {
            first
                .get(&(view, dose.to_bits()))
                .and_then(|j| j.metric("test", metric))
        };
        let ranked: Vec<(f64, f64, f64)> = doses
            .iter()
            .filter_map(|&dose| Some((dose, score(pair[0], dose)?, score(pair[1], dose)?)))
            .collect();
        if ranked.len() <= PICTURED_DOSES {
            for (dose, a, b) in ranked {
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
        } else {
            // A line per dose of a sweep would be hundreds: one line per pair of views.
            let not: Vec<f64> = ranked
                .iter()
                .filter(|(_, a, b)| !better(metric, *a, *b))
                .map(|(d, _, _)| *d)
                .collect();
            let mut text = format!(
                "{} scores better than {} on {metric} at {} of {} doses",
                pair[0],
                pair[1],
                ranked.len() - not.len(),
                ranked.len()
            );
            if !not.is_empty() {
                text.push_str(&format!("; not at {}", listed(&not, |d| dose_label(*d))));
            }
            out.push((text, not.is_empty()));
        }
    }
    out
}

/// Up to [`PICTURED_DOSES`] items, then how many more (metrics.csv has every job).
fn listed<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let shown: Vec<String> = items.iter().take(PICTURED_DOSES).map(show).collect();
    match items.len().saturating_sub(PICTURED_DOSES) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}
