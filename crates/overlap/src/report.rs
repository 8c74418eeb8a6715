//! The per-dose `overlap_report.json`: what every view kept, its floor, its decision and, for a
//! rejection, why in words. Phase E relies on `views[].view`, `views[].accepted` and
//! `views[].reason`; everything else is for people and reports.

use serde::Serialize;

/// Name of the report file in each dose folder of the Phase D root.
pub const OVERLAP_REPORT: &str = "overlap_report.json";

/// Version of the report's layout; raised when a field changes meaning or goes away.
pub const REPORT_VERSION: u32 = 1;

/// One dose's report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DoseReport {
    /// [`REPORT_VERSION`].
    pub report_version: u32,
    /// The dose, in photons per pattern.
    pub dose: f64,
    /// `<phase_c_root>/dose_<int>`, spelled as the Phase C root was given.
    pub phase_c_dir: String,
    /// `<phase_d_root>/dose_<int>`, spelled as the Phase D root was given.
    pub phase_d_dir: String,
    /// K of the design.
    pub neighbor_count: u32,
    /// K + 1: the fewest positions a split of an accepted view keeps.
    pub min_positions_per_split: usize,
    /// One entry per overlap view, in design order.
    pub views: Vec<ViewReport>,
    /// Things a user should know that did not stop the dose (members not carried over, ...).
    pub warnings: Vec<String>,
}

/// One view of one dose.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewReport {
    /// View name.
    pub view: String,
    /// Spacing threshold S, px.
    pub spacing_threshold: f64,
    /// Whether the view's NPZs were written.
    pub accepted: bool,
    /// Why the view was rejected (what was kept, what was needed, why); `null` when accepted.
    pub reason: Option<String>,
    /// `direct` or `greedy` when both splits used it, else `mixed`.
    pub selection_strategy: String,
    /// The train and test splits.
    pub splits: Splits,
    /// For a view given by the overlap it must have: the target and what was realised
    /// (absent for a view given by a fraction or spacing, whose report is as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap_target: Option<TargetReport>,
}

/// The overlap target of a view and what Phase D realised (`spacing_threshold` is the spacing
/// chosen).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetReport {
    /// The nominal overlap: the mean nearest-neighbour disc overlap asked for.
    pub overlap: f64,
    /// Largest accepted distance of each split's realised overlap from `overlap`.
    pub tolerance: f64,
    /// Mean of the two splits' realised overlaps (each is `splits.<split>.mean_disc_overlap`).
    pub realised_overlap: f64,
    /// The train split's realised overlap.
    pub realised_train: f64,
    /// The test split's realised overlap.
    pub realised_test: f64,
    /// Both splits lie within `tolerance` and the selection is accepted.
    pub within_tolerance: bool,
    /// Spacing thresholds the search tried.
    pub spacings_tried: usize,
    /// Exposures per pixel of the kept positions, from geometry: `n pi D² / 4 / ((w + D)(h + D))`
    /// with the kept centres' bounding box w x h.
    pub exposures_per_pixel: SplitFigures,
}

/// One figure per split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitFigures {
    /// The train split's.
    pub train: f64,
    /// The test split's.
    pub test: f64,
}

/// The two splits of a view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Splits {
    /// From `patched_train.npz`.
    pub train: SplitReport,
    /// From `patched_test.npz`.
    pub test: SplitReport,
}

/// The figures of one split of one view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitReport {
    /// Positions in the Phase C split.
    pub n_total: usize,
    /// Positions kept.
    pub n_accepted: usize,
    /// Positions left out.
    pub n_rejected: usize,
    /// `n_accepted / n_total`.
    pub acceptance_rate: f64,
    /// `min(0.10, bbox_area / (pi (S/2)²) / n_total)`.
    pub geometry_acceptance_bound: f64,
    /// `max(0.0005, 0.8 geometry_acceptance_bound)`.
    pub effective_min_acceptance: f64,
    /// `direct` or `greedy`.
    pub selection_strategy: String,
    /// Positions `direct` selection alone kept.
    pub direct_n_accepted: usize,
    /// Width of the bounding box of the split's position centres, px.
    pub bbox_width: f64,
    /// Height of that box, px.
    pub bbox_height: f64,
    /// `bbox_width x bbox_height`, px².
    pub bbox_area: f64,
    /// Probe diameter D of the disc-overlap metric, px.
    pub probe_diameter_px: f64,
    /// How D was found: `energy_90` or `half_patch`.
    pub probe_diameter_rule: String,
    /// Mean disc overlap of the kept positions with their nearest kept neighbours.
    pub mean_disc_overlap: f64,
    /// The same for all positions of the Phase C split, for comparison.
    pub source_mean_disc_overlap: f64,
    /// The Phase C file read.
    pub source_file: String,
    /// The Phase D file written; `null` for a rejected view.
    pub output_file: Option<String>,
}

impl DoseReport {
    /// The report as pretty JSON with every object's keys sorted and a final newline: the same
    /// report always gives the same bytes.
    pub fn to_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a report always serialises");
        let mut text =
            serde_json::to_string_pretty(&sorted(value)).expect("a JSON value always serialises");
        text.push('\n');
        text
    }
}

/// `value` with the keys of every object in sorted order, whatever map serde_json was built
/// with (a `preserve_order` feature elsewhere in the build must not change the bytes).
pub(crate) fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}
