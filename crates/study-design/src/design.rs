//! The nine-key study design of DATA-001 (Phase A) and its validation.

use crate::named::NamedValues;
use serde::{Deserialize, Serialize};

/// Axis along which Phase C splits positions into train and test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitAxis {
    /// Split by row coordinate (the fly64 study's choice).
    Y,
    /// Split by column coordinate.
    X,
}

impl SplitAxis {
    /// The name a study file uses (`y`, `x`).
    pub fn as_str(self) -> &'static str {
        match self {
            SplitAxis::Y => "y",
            SplitAxis::X => "x",
        }
    }
}

/// Seeds of every random choice in a study.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RngSeeds {
    /// Scan positions, built-in object and probe, Poisson noise (Phase C).
    pub simulation: u64,
    /// K-choose-C grouping and visiting order (training).
    pub grouping: u64,
    /// Any subsampling of positions.
    pub subsampling: u64,
}

/// How reconstructions are scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Gaussian sigma of the (MS-)SSIM window.
    pub ms_ssim_sigma: f64,
    /// Phase is the headline quality figure.
    pub emphasize_phase: bool,
    /// Amplitude figures are reported too.
    pub report_amplitude: bool,
}

impl Default for MetricsConfig {
    /// The fly64 study's: sigma 1.0, phase emphasised, amplitude reported.
    fn default() -> Self {
        MetricsConfig {
            ms_ssim_sigma: 1.0,
            emphasize_phase: true,
            report_amplitude: true,
        }
    }
}

/// The study design: the nine keys of DATA-001's Phase A table.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// Photon doses, in study order.
    pub dose_list: Vec<f64>,
    /// Gridsizes trained (1 = single positions, g = groups of g² positions).
    pub gridsizes: Vec<u32>,
    /// K, the nearest neighbours a position is grouped from.
    pub neighbor_count: u32,
    /// N, the patch (and probe, and diffraction pattern) size in pixels.
    pub patch_size_pixels: u32,
    /// Overlap fraction f of each view, in view order.
    pub overlap_views: NamedValues,
    /// Explicit spacing thresholds; `None` derives `(1 - f) N` per view.
    pub spacing_overrides: Option<NamedValues>,
    /// Train/test split axis.
    pub train_test_split_axis: SplitAxis,
    /// Seeds.
    pub rng_seeds: RngSeeds,
    /// Scoring settings.
    pub metrics_config: MetricsConfig,
}

impl Default for Design {
    /// The fly64 dose/overlap study.
    fn default() -> Self {
        Design {
            dose_list: vec![1e3, 1e4, 1e5],
            gridsizes: vec![1, 2],
            neighbor_count: 7,
            patch_size_pixels: 128,
            overlap_views: NamedValues(vec![("dense".into(), 0.7), ("sparse".into(), 0.2)]),
            spacing_overrides: None,
            train_test_split_axis: SplitAxis::Y,
            rng_seeds: RngSeeds {
                simulation: 42,
                grouping: 123,
                subsampling: 456,
            },
            metrics_config: MetricsConfig::default(),
        }
    }
}

/// The exported form: exactly the nine keys, thresholds resolved.
#[derive(Serialize)]
struct DesignExport<'a> {
    dose_list: &'a [f64],
    gridsizes: &'a [u32],
    neighbor_count: u32,
    patch_size_pixels: u32,
    overlap_views: &'a NamedValues,
    spacing_thresholds: NamedValues,
    train_test_split_axis: SplitAxis,
    rng_seeds: &'a RngSeeds,
    metrics_config: &'a MetricsConfig,
}

impl Design {
    /// Spacing threshold S of every view, in view order: the explicit value where the design
    /// gives one, else `(1 - f) N` (rounded to 1e-9 so that 0.7 at N = 128 reads 38.4).
    pub fn spacing_thresholds(&self) -> NamedValues {
        NamedValues(
            self.overlap_views
                .iter()
                .map(|(name, f)| {
                    let explicit = self.spacing_overrides.as_ref().and_then(|o| o.get(name));
                    let derived = (1.0 - f) * f64::from(self.patch_size_pixels);
                    (
                        name.to_string(),
                        explicit.unwrap_or((derived * 1e9).round() / 1e9),
                    )
                })
                .collect(),
        )
    }

    /// Spacing threshold of one view, if the design has it.
    pub fn spacing_threshold(&self, view: &str) -> Option<f64> {
        self.spacing_thresholds().get(view)
    }

    /// C = g² for the largest gridsize (1 when there is none).
    pub fn max_group_size(&self) -> u32 {
        self.gridsizes.iter().map(|g| g * g).max().unwrap_or(1)
    }

    /// Every problem with the design, in a stable order; empty when it is valid.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.dose_list.is_empty() {
            problems.push("dose_list must not be empty".to_string());
        }
        let bad_doses: Vec<String> = self
            .dose_list
            .iter()
            .filter(|d| !(d.is_finite() && **d > 0.0))
            .map(|d| d.to_string())
            .collect();
        if !bad_doses.is_empty() {
            problems.push(format!(
                "All doses must be positive, got {}",
                bad_doses.join(", ")
            ));
        }
        let mut seen = Vec::new();
        for dose in &self.dose_list {
            let folder = dose.round() as i64;
            if dose.is_finite() && seen.contains(&folder) {
                problems.push(format!(
                    "dose_list has two doses in folder dose_{folder}: give each dose once"
                ));
            }
            seen.push(folder);
        }
        if self.gridsizes.is_empty() {
            problems.push("gridsizes must not be empty".to_string());
        }
        if self.gridsizes.contains(&0) {
            problems.push("gridsizes must be at least 1, got 0".to_string());
        }
        let largest = self.gridsizes.iter().copied().max().unwrap_or(1);
        let c = largest * largest;
        if self.neighbor_count < c {
            problems.push(format!(
                "neighbor_count={} must be ≥ C={c} for gridsize={largest} (OVERSAMPLING-001)",
                self.neighbor_count
            ));
        }
        if self.patch_size_pixels == 0 {
            problems.push("patch_size_pixels must be positive, got 0".to_string());
        }
        if self.overlap_views.0.is_empty() {
            problems.push("overlap_views must name at least one view".to_string());
        }
        for (name, f) in self.overlap_views.iter() {
            if !(0.0..1.0).contains(&f) {
                problems.push(format!("overlap_views['{name}']={f} must be in [0, 1)"));
            }
            if name.is_empty() || name == "baseline" || name.contains(['/', '\\']) {
                problems.push(format!(
                    "overlap view name '{name}' is not usable as a folder name; use e.g. 'dense'"
                ));
            }
        }
        if let Some(overrides) = &self.spacing_overrides {
            for name in overrides.names() {
                if self.overlap_views.get(name).is_none() {
                    problems.push(format!(
                        "spacing_thresholds names '{name}', which is not in overlap_views"
                    ));
                }
            }
        }
        for (name, s) in self.spacing_thresholds().iter() {
            if !(s.is_finite() && s > 0.0) {
                problems.push(format!("spacing_thresholds['{name}']={s} must be positive"));
            }
        }
        let sigma = self.metrics_config.ms_ssim_sigma;
        if !sigma.is_finite() || sigma <= 0.0 {
            problems.push(format!(
                "metrics_config.ms_ssim_sigma={} must be positive",
                self.metrics_config.ms_ssim_sigma
            ));
        }
        problems
    }

    /// The design as JSON with exactly the nine keys (thresholds resolved), pretty-printed.
    pub fn to_json(&self) -> String {
        let export = DesignExport {
            dose_list: &self.dose_list,
            gridsizes: &self.gridsizes,
            neighbor_count: self.neighbor_count,
            patch_size_pixels: self.patch_size_pixels,
            overlap_views: &self.overlap_views,
            spacing_thresholds: self.spacing_thresholds(),
            train_test_split_axis: self.train_test_split_axis,
            rng_seeds: &self.rng_seeds,
            metrics_config: &self.metrics_config,
        };
        serde_json::to_string_pretty(&export).expect("a design always serialises")
    }

    /// The design folder name of a dose: `dose_<integer dose>` (1e3 -> `dose_1000`).
    pub fn dose_dir_name(dose: f64) -> String {
        format!("dose_{}", dose.round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(&mut Design), expected: &[&str]) {
        let mut design = Design::default();
        edit(&mut design);
        assert_eq!(design.validate(), expected);
    }

    /// The names `design` prints are the ones a study file takes (it printed `Y` and `Rpie`).
    #[test]
    fn printed_names_are_the_file_names() {
        use crate::Algorithm;
        for axis in [SplitAxis::Y, SplitAxis::X] {
            assert_eq!(serde_json::to_value(axis).unwrap(), axis.as_str());
        }
        for algorithm in [Algorithm::Epie, Algorithm::Rpie, Algorithm::Ml] {
            assert_eq!(serde_json::to_value(algorithm).unwrap(), algorithm.as_str());
        }
    }

    #[test]
    fn default_is_valid_with_fly64_thresholds() {
        check(|_| {}, &[]);
        let s = Design::default().spacing_thresholds();
        assert_eq!(
            s.0,
            vec![("dense".to_string(), 38.4), ("sparse".to_string(), 102.4)]
        );
    }

    #[test]
    fn validation_messages() {
        check(
            |d| d.neighbor_count = 3,
            &["neighbor_count=3 must be ≥ C=4 for gridsize=2 (OVERSAMPLING-001)"],
        );
        check(|d| d.dose_list.clear(), &["dose_list must not be empty"]);
        check(
            |d| d.dose_list = vec![1e3, -5.0],
            &["All doses must be positive, got -5"],
        );
        check(
            |d| d.overlap_views.0[1].1 = 1.0,
            &[
                "overlap_views['sparse']=1 must be in [0, 1)",
                "spacing_thresholds['sparse']=0 must be positive",
            ],
        );
        check(
            |d| d.spacing_overrides = Some(NamedValues(vec![("dense".into(), -1.0)])),
            &["spacing_thresholds['dense']=-1 must be positive"],
        );
        check(
            |d| d.dose_list = vec![1e3, 1000.2],
            &["dose_list has two doses in folder dose_1000: give each dose once"],
        );
    }

    #[test]
    fn export_has_exactly_nine_keys() {
        let json: serde_json::Value = serde_json::from_str(&Design::default().to_json()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys.len(), 9, "{keys:?}");
        assert_eq!(json["spacing_thresholds"]["sparse"], 102.4);
        assert_eq!(json["dose_list"][0], 1000.0);
    }

    #[test]
    fn dose_folders() {
        assert_eq!(Design::dose_dir_name(1e3), "dose_1000");
        assert_eq!(Design::dose_dir_name(1e5), "dose_100000");
    }
}
