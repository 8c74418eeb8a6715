//! The report's charts: each plotted metric (test split) against dose, a line per view and
//! gridsize; loss per epoch, a chart per dose. `svg.rs` draws them.

use super::model::{Job, by_label, doses};
use crate::metrics::PLOTTED;
use crate::pictures::Sampling;
use crate::svg::{Chart, Series};
use crate::text::dose_label;

/// The metrics plotted against dose: those of [`PLOTTED`] the test split has (`test_names`),
/// else (unknown metric names) the first four there are.
pub(super) fn plotted(test_names: &[String]) -> Vec<&str> {
    let chosen: Vec<&str> = PLOTTED
        .iter()
        .copied()
        .filter(|h| test_names.iter().any(|n| n == h))
        .collect();
    if chosen.is_empty() {
        test_names.iter().take(4).map(String::as_str).collect()
    } else {
        chosen
    }
}

/// `plots/quality_<metric>.svg`: each of `metrics` (test split) against dose.
pub(super) fn quality_charts(jobs: &[Job], metrics: &[&str]) -> Vec<(String, Chart)> {
    let labels = by_label(jobs);
    metrics
        .iter()
        .map(|metric| {
            let series = labels
                .iter()
                .map(|(label, of_label)| Series {
                    errors: Vec::new(),
                    label: label.clone(),
                    points: of_label
                        .iter()
                        .filter_map(|j| Some((j.id.dose, j.metric("test", metric)?)))
                        .collect(),
                })
                .collect();
            let chart = Chart {
                title: format!("{metric} (test split) vs dose"),
                x_label: "dose (photons per pattern)".into(),
                y_label: metric.to_string(),
                log_x: true,
                log_y: false,
                series,
            };
            (
                format!("plots/quality_{}.svg", metric.replace('.', "_")),
                chart,
            )
        })
        .collect()
}

/// `plots/loss_dose_<dose>.svg`: loss per epoch of every job of a dose that kept a history,
/// for the jobs `sampling` pictures.
pub(super) fn loss_charts(jobs: &[Job], sampling: &Sampling) -> Vec<(String, Chart)> {
    let mut at_dose: std::collections::HashMap<u64, Vec<&Job>> = Default::default();
    for j in jobs
        .iter()
        .filter(|j| sampling.pictures(j.id.dose, j.id.view, j.id.gridsize))
    {
        at_dose.entry(j.id.dose.to_bits()).or_default().push(j);
    }
    doses(jobs)
        .into_iter()
        .filter_map(|dose| {
            let series: Vec<Series> = at_dose
                .get(&dose.to_bits())?
                .iter()
                .flat_map(|j| {
                    j.loss_curves().iter().map(|(name, curve)| Series {
                        errors: Vec::new(),
                        label: if name.is_empty() {
                            j.id.label()
                        } else {
                            format!("{} {name}", j.id.label())
                        },
                        points: curve
                            .iter()
                            .enumerate()
                            .map(|(e, l)| ((e + 1) as f64, *l))
                            .collect(),
                    })
                })
                .collect();
            if series.is_empty() {
                return None;
            }
            let chart = Chart {
                title: format!("loss per epoch, dose {}", dose_label(dose)),
                x_label: "epoch".into(),
                y_label: "normalised Fourier error".into(),
                log_x: false,
                log_y: true,
                series,
            };
            Some((
                format!("plots/loss_dose_{}.svg", dose.round() as i64),
                chart,
            ))
        })
        .collect()
}
