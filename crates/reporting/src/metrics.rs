//! Metrics as the report and the comparison read them from a job's result: the splits, the
//! numeric leaves of a split's metrics by dotted name, which names the tables and plots show,
//! which way is better, and the rule against the flat start.

use serde_json::Value;

/// The splits scored, in the order of the tables' rows and the pictures' panels.
pub const SPLITS: [&str; 2] = ["train", "test"];

/// Metrics shown in the tables of `report` and `compare` (when the jobs have them; the CSVs
/// have every one).
pub(crate) const HEADLINE: &[&str] = &[
    "phase.ssim",
    "phase.ssim_truth_range",
    "phase.ms_ssim",
    "phase.psnr_db",
    "phase.mae",
    "phase.frc_05.resolution_px",
    "amplitude.ssim",
    "amplitude.ms_ssim",
    "amplitude.psnr_db",
    "amplitude.mae",
    "amplitude.frc_05.resolution_px",
    "fienup_nrmse",
];

/// Metrics plotted against dose by `report` and `compare`, when the jobs have them.
pub(crate) const PLOTTED: &[&str] = &[
    "phase.ssim",
    "phase.ssim_truth_range",
    "phase.psnr_db",
    "amplitude.ssim",
    "fienup_nrmse",
];

/// The numeric leaves of a metrics object as (`group.name`, value), in the object's order
/// (`{"phase": {"ssim": 0.9}}` -> `phase.ssim`); strings, booleans, nulls and arrays are not
/// metrics.
pub(crate) fn flatten(value: &Value) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    flatten_into(value, "", &mut out);
    out
}

fn flatten_into(value: &Value, prefix: &str, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                out.push((prefix.to_string(), v));
            }
        }
        Value::Object(map) => {
            for (key, child) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(child, &name, out);
            }
        }
        _ => {}
    }
}

/// Whether a lower value of `metric` is the better one (errors, NRMSE, a resolution in pixels).
pub(crate) fn lower_is_better(metric: &str) -> bool {
    metric.ends_with("mae") || metric.contains("nrmse") || metric.ends_with("_px")
}

/// A job's test Fienup NRMSE against its flat start's (the object of ones, scored the same
/// way), from `get` (a metric by its flattened name): `(nrmse, flat, nrmse < flat)` when both
/// are there. The one rule of `report`'s criterion and `compare`'s table.
pub(crate) fn against_flat_start(get: impl Fn(&str) -> Option<f64>) -> Option<(f64, f64, bool)> {
    let (v, flat) = (get("fienup_nrmse")?, get("fienup_nrmse_initial")?);
    Some((v, flat, v < flat))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_leaves_by_dotted_name() {
        let metrics = json!({"phase": {"ssim": 0.9, "frc_05": {"resolution_px": 4.0,
            "frequency": null, "crossed": true}}, "fienup_nrmse": 0.2, "rule": "r", "rows": [0, 3]});
        assert_eq!(
            flatten(&metrics),
            [
                ("fienup_nrmse".to_string(), 0.2),
                ("phase.frc_05.resolution_px".to_string(), 4.0),
                ("phase.ssim".to_string(), 0.9)
            ]
        );
        assert!(flatten(&Value::Null).is_empty());
    }

    #[test]
    fn lower_is_better_for_errors_only() {
        assert!(lower_is_better("phase.mae"));
        assert!(lower_is_better("fienup_nrmse"));
        assert!(lower_is_better("phase.frc_05.resolution_px"));
        assert!(!lower_is_better("phase.ssim"));
        assert!(!lower_is_better("amplitude.psnr_db"));
    }
}
