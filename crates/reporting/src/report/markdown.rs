//! `summary.md`: the report's model as Markdown, a section per part.

use super::model::{MetricCell, Model};
use crate::manifest::MANIFEST_FILE;
use crate::text::{cell, dose_label, fmt_num};
use runner::ScaleStatus;
use std::fmt::Write as _;

/// The whole of `summary.md`.
pub(super) fn summary(m: &Model) -> String {
    let mut md = String::new();
    header(&mut md, m);
    jobs(&mut md, m);
    pinn(&mut md, m);
    skips(&mut md, m);
    held(&mut md, m);
    metrics(&mut md, m);
    plots(&mut md, m);
    pictures(&mut md, m);
    criteria(&mut md, m);
    md
}

fn header(md: &mut String, m: &Model) {
    let _ = writeln!(md, "# Study report: {}\n", m.title);
    if let Some(note) = &m.unfinished {
        let _ = writeln!(md, "> **Warning:** {note}.\n");
    }
    let _ = writeln!(
        md,
        "- manifest: `{MANIFEST_FILE}`, timestamp {}",
        m.timestamp
    );
    let _ = writeln!(
        md,
        "- backend: {}",
        if m.backends.is_empty() {
            "dry run".to_string()
        } else {
            m.backends.join(", ")
        }
    );
    let _ = writeln!(
        md,
        "- jobs: {} selected, {} ended well, {} failed; {} view(s) skipped\n",
        m.jobs.len(),
        m.ended_well,
        m.failed,
        m.skips.len()
    );
}

fn jobs(md: &mut String, m: &Model) {
    let _ = writeln!(md, "## Jobs\n");
    let _ = writeln!(
        md,
        "| dose | view | gridsize | status | epochs | final loss | bundle | SHA-256 |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for j in &m.jobs {
        let status = match j.result {
            runner::JobResult::Failed(f) => {
                format!("failed: {}", cell(f.error.lines().next().unwrap_or("")))
            }
            // Trained but not scored: no metrics, so it did not end well (said, not hidden).
            runner::JobResult::Success(t) if t.unscored().is_some() => {
                format!("not scored ({})", cell(&t.unscored().unwrap_or_default()))
            }
            r => r.status().to_string(),
        };
        let trained = j.trained();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            dose_label(j.id.dose),
            j.id.view,
            j.id.gridsize,
            status,
            trained.map_or("-".into(), |t| t.epochs_completed.to_string()),
            trained
                .and_then(|t| t.final_loss)
                .map_or("-".into(), fmt_num),
            trained.map_or("-".into(), |t| format!("`{}`", t.bundle_path)),
            trained.map_or("-".into(), |t| format!("`{}`", t.bundle_sha256)),
        );
    }
    let _ = writeln!(md);
}

/// How PtychoPINN jobs trained: where (asked and used) and what became of the intensity scale,
/// with what a frozen scale means. Nothing for a study without PtychoPINN jobs.
fn pinn(md: &mut String, m: &Model) {
    if m.pinn.is_empty() {
        return;
    }
    let _ = writeln!(md, "## PtychoPINN training\n");
    let _ = writeln!(
        md,
        "| dose | view | gridsize | accelerator | device used | intensity scale (start -> bundle) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let mut frozen = 0;
    for row in &m.pinn {
        let scale = match &row.facts.intensity_scale {
            Some(scale) => {
                if scale.status == ScaleStatus::Frozen {
                    frozen += 1;
                }
                format!(
                    "{} ({} -> {})",
                    scale_status(scale.status),
                    fmt_num(scale.initial),
                    fmt_num(scale.trained)
                )
            }
            None => "unknown (not scored)".to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            dose_label(row.id.dose),
            row.id.view,
            row.id.gridsize,
            cell(row.facts.accelerator.as_str()),
            cell(row.facts.device.as_deref().unwrap_or("not reported")),
            scale
        );
    }
    let _ = writeln!(md);
    if frozen > 0 {
        let _ = writeln!(
            md,
            "> **Not PtychoPINN as published:** {frozen} job(s) kept PtychoPINN's learnable \
             intensity scale at its start, sqrt(nphotons) / (N / 2). PtychoPINN marks it \
             trainable, but under Keras 3 (what its pins install) the plain `tf.Variable` that \
             holds it is not a trained weight, so the bundle's value equals its start. The \
             network was trained with the scale fixed; a model whose data needs another scale \
             must absorb it in its weights.\n"
        );
    }
}

/// The name `result.json` gives a scale status.
fn scale_status(status: ScaleStatus) -> &'static str {
    match status {
        ScaleStatus::Trained => "trained",
        ScaleStatus::Frozen => "frozen",
        ScaleStatus::Fixed => "fixed",
    }
}

fn skips(md: &mut String, m: &Model) {
    let _ = writeln!(md, "## Skipped views\n");
    if m.skips.is_empty() {
        let _ = writeln!(md, "None.\n");
        return;
    }
    let _ = writeln!(md, "| dose | view | reason |\n|---|---|---|");
    for s in m.skips {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            dose_label(s.dose),
            s.view,
            cell(&s.reason).replace('\n', " ")
        );
    }
    let _ = writeln!(md);
}

fn held(md: &mut String, m: &Model) {
    if m.held.is_empty() {
        return;
    }
    let _ = writeln!(md, "## What each view holds\n");
    let _ = writeln!(
        md,
        "Exposures per pixel: the scored region's mean of sum_j |P_j|^2 / max |P|^2 (how \
         many exposures at the probe's peak intensity each pixel received).\n"
    );
    let _ = writeln!(
        md,
        "| dose | view | gs | split | positions | exposures per pixel | region pixels |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for row in &m.held {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            dose_label(row.id.dose),
            row.id.view,
            row.id.gridsize,
            row.split,
            row.positions,
            row.mean_exposures.map_or("-".into(), |v| format!("{v:.2}")),
            row.pixels.map_or("-".into(), |v| v.to_string()),
        );
    }
    let _ = writeln!(md);
}

fn metrics(md: &mut String, m: &Model) {
    let table = &m.metric_table;
    if table.names.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Metrics (train and test split)\n");
    let _ = writeln!(
        md,
        "Per job, the train split above the test split: for a self-supervised method \
         (PtychoPINN) its fit to the data it was trained on, then its generalisation to \
         held-out data; a native solver reconstructs each split directly.\n"
    );
    let _ = writeln!(
        md,
        "| dose | view | gs | split | {} |",
        table.names.join(" | ")
    );
    let _ = writeln!(md, "|---|---|---|---|{}", "---|".repeat(table.names.len()));
    for row in &table.rows {
        let cells: Vec<String> = row
            .cells(&table.names)
            .map(|c| match c {
                MetricCell::Value(v) => fmt_num(v),
                MetricCell::NotResolved => "not resolved".into(),
                MetricCell::Missing => "-".into(),
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            dose_label(row.id.dose),
            row.id.view,
            row.id.gridsize,
            row.split,
            cells.join(" | ")
        );
    }
    let _ = writeln!(md);
}

fn plots(md: &mut String, m: &Model) {
    if m.charts.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Plots\n");
    for (name, _) in &m.charts {
        let _ = writeln!(md, "![{name}]({name})");
    }
    let _ = writeln!(md);
}

fn pictures(md: &mut String, m: &Model) {
    if m.pictures.is_empty() && m.notes.is_empty() && !m.sampling.is_sampled() {
        return;
    }
    let _ = writeln!(md, "## Pictures (train and test split)\n");
    let _ = writeln!(
        md,
        "Each picture has a panel per split, the train split above the test split, each \
         against its own truth (the split's objectGuess over the region its probeGuess and \
         positions cover). Registered as the metrics score them (global phase and fitted \
         phase plane removed), cropped to the scored region (grey: outside it). Amplitude on \
         viridis, phase on a diverging map centred on zero, errors on inferno; images side by \
         side share a scale in both panels, set by the truth's range (values beyond it \
         saturate).\n"
    );
    m.sampling.describe(
        md,
        "no job figure, phase-grid cell or loss curve",
        "metrics.csv",
    );
    for p in m.pictures {
        let _ = writeln!(md, "{}\n\n![{}]({})\n", p.caption, p.file, p.file);
    }
    for n in m.notes {
        let _ = writeln!(md, "- not pictured: {}", n.replace('\n', " "));
    }
    if !m.notes.is_empty() {
        let _ = writeln!(md);
    }
}

fn criteria(md: &mut String, m: &Model) {
    let _ = writeln!(md, "## Exit criteria\n");
    for (text, ok) in &m.criteria {
        let _ = writeln!(md, "- [{}] {text}", if *ok { "x" } else { " " });
    }
}
