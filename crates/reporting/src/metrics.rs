//! Metrics as the report and the comparison read them from a job's result: the splits, the
//! numeric leaves of a split's metrics by dotted name, which names the tables and plots show,
//! which way is better, and the rule against the flat start.

use serde_json::Value;
use std::collections::HashMap;

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

/// Metric names, each stored once: a job keeps numbers by name id, not names (100,000 jobs of
/// 60 metrics each).
#[derive(Default)]
pub(crate) struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    pub(crate) fn id(&mut self, name: String) -> u32 {
        if let Some(id) = self.ids.get(&name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of `id`.
    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// Every name, sorted, with its id.
    pub(crate) fn sorted(&self) -> Vec<(&str, u32)> {
        let mut all: Vec<(&str, u32)> = self.ids.iter().map(|(n, i)| (n.as_str(), *i)).collect();
        all.sort();
        all
    }
}

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

/// How close to the flat start's NRMSE a job must come, relative to it, to be called level with
/// it. The Fienup NRMSE fits one global complex factor, so any constant object scores exactly
/// the flat start's value: a method that returns (nearly) the same object everywhere, as a
/// network that learned only the mean patch does, lands within a hair of it. Within 1 % the
/// scoring cannot tell the job's object from a flat one.
pub(crate) const FLAT_TIE: f64 = 0.01;

/// Where a job's Fienup NRMSE stands against its flat start's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlatStanding {
    /// Below it by more than [`FLAT_TIE`]: closer to the truth than a flat object.
    Below,
    /// Within [`FLAT_TIE`] of it: no better than a flat (or any constant) object.
    Level,
    /// Above it by more than [`FLAT_TIE`]: further from the truth than the start.
    Above,
}

impl FlatStanding {
    /// How a listed job says it, after its values.
    pub(crate) fn word(self) -> &'static str {
        match self {
            FlatStanding::Below => "below",
            FlatStanding::Level => "level",
            FlatStanding::Above => "above",
        }
    }
}

/// A job's test Fienup NRMSE against its flat start's (the object of ones, scored the same
/// way), from `get` (a metric by its flattened name): `(nrmse, flat, standing)` when both are
/// there. The one rule of `report`'s criterion and `compare`'s table.
pub(crate) fn against_flat_start(
    get: impl Fn(&str) -> Option<f64>,
) -> Option<(f64, f64, FlatStanding)> {
    let (v, flat) = (get("fienup_nrmse")?, get("fienup_nrmse_initial")?);
    let standing = if (v - flat).abs() <= FLAT_TIE * flat.abs() {
        FlatStanding::Level
    } else if v < flat {
        FlatStanding::Below
    } else {
        FlatStanding::Above
    };
    Some((v, flat, standing))
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
    fn a_job_within_one_percent_of_the_flat_start_is_level_with_it() {
        let standing = |v: f64, flat: f64| {
            let got = |k: &str| match k {
                "fienup_nrmse" => Some(v),
                "fienup_nrmse_initial" => Some(flat),
                _ => None,
            };
            against_flat_start(got).map(|(_, _, s)| s)
        };
        // The supervised model's collapse at pinn-small: 0.4058 against 0.4057.
        assert_eq!(standing(0.4058, 0.4057), Some(FlatStanding::Level));
        assert_eq!(standing(0.4056, 0.4057), Some(FlatStanding::Level));
        assert_eq!(standing(0.3965, 0.4), Some(FlatStanding::Level));
        assert_eq!(standing(0.395, 0.4), Some(FlatStanding::Below));
        assert_eq!(standing(0.405, 0.4), Some(FlatStanding::Above));
        assert_eq!(standing(0.2, 0.4), Some(FlatStanding::Below));
        let missing = |k: &str| (k == "fienup_nrmse").then_some(0.2);
        assert_eq!(against_flat_start(missing), None);
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
