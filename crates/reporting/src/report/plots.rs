//! The report's charts: each plotted metric (test split) against dose, a line per view and
//! gridsize; loss per epoch, a chart per dose. `svg.rs` draws them.

use super::model::{Job, doses, labels};
use crate::metrics::PLOTTED;
use crate::svg::{Chart, Series};
use crate::text::dose_label;
use serde_json::Value;

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
    let labels = labels(jobs);
    metrics
        .iter()
        .map(|metric| {
            let series = labels
                .iter()
                .map(|label| Series {
                    errors: Vec::new(),
                    label: label.clone(),
                    points: jobs
                        .iter()
                        .filter(|j| &j.id.label() == label)
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

/// `plots/loss_dose_<dose>.svg`: loss per epoch of every job of a dose that kept a history.
pub(super) fn loss_charts(jobs: &[Job]) -> Vec<(String, Chart)> {
    doses(jobs)
        .into_iter()
        .filter_map(|dose| {
            let series: Vec<Series> = jobs
                .iter()
                .filter(|j| j.id.dose == dose)
                .flat_map(|j| {
                    loss_curves(j.loss_history())
                        .into_iter()
                        .map(|(name, curve)| Series {
                            errors: Vec::new(),
                            label: if name.is_empty() {
                                j.id.label()
                            } else {
                                format!("{} {name}", j.id.label())
                            },
                            points: curve
                                .into_iter()
                                .enumerate()
                                .map(|(e, l)| ((e + 1) as f64, l))
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

/// Loss curves of a result's `loss_history`: a plain array, or an object of arrays per split.
fn loss_curves(history: Option<&Value>) -> Vec<(String, Vec<f64>)> {
    let curve = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<f64>>())
    };
    match history {
        Some(array @ Value::Array(_)) => curve(array)
            .into_iter()
            .map(|c| (String::new(), c))
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), curve(v)?)))
            .collect(),
        _ => Vec::new(),
    }
}
