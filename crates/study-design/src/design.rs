//! The nine-key study design of DATA-001 (Phase A) and its validation.

use crate::named::NamedValues;
use crate::views::{OverlapTarget, ViewsExport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Upper (and lower) bounds of every size-driving design value, checked by
/// [`Design::validate`] before any work: a short study file must not be able to ask for more
/// than a machine has, nor for values whose arithmetic overflows.
pub mod limits {
    /// Doses in one study (each is a Phase C folder of two files and 1 + views jobs per
    /// gridsize; the fly64 study has 3).
    pub const MAX_DOSES: usize = 1000;
    /// Fewest photons per pattern: below one photon a pattern is mostly empty and the folder
    /// `dose_<int>` would round to 0 or 1.
    pub const MIN_DOSE: f64 = 1.0;
    /// Most photons per pattern: counts are drawn and summed in f64, exact for integers up to
    /// 2^53 (9.0e15); 1e15 keeps a pattern's total and every pixel's count exact.
    pub const MAX_DOSE: f64 = 1e15;
    /// Largest gridsize g (groups of g² positions; PtychoPINN uses 1 and 2).
    pub const MAX_GRIDSIZE: u32 = 16;
    /// Most gridsizes in one study.
    pub const MAX_GRIDSIZES: usize = 16;
    /// Largest K (nearest neighbours per group).
    pub const MAX_NEIGHBOR_COUNT: u32 = 4096;
    /// Largest patch size N (N² pixels per pattern; the fly64 study uses 128).
    pub const MAX_PATCH_SIZE: u32 = 4096;
    /// Most overlap views.
    pub const MAX_VIEWS: usize = 64;
    /// Longest view name (it is a folder and file-name prefix).
    pub const MAX_VIEW_NAME_LEN: usize = 64;
    /// Most training jobs (doses x (1 + views) x gridsizes).
    pub const MAX_JOBS: u64 = 100_000;
}

/// Why `name` cannot be a view name, if it cannot. A view name is a folder
/// (`dose_<int>/<view>/`) and a file prefix (`<view>_train.npz`), and `train` labels jobs with
/// it: ASCII letters, digits, `_`, `-` and `.`, starting with a letter or digit (so `.`, `..`
/// and hidden names are refused), at most [`limits::MAX_VIEW_NAME_LEN`] characters, and not
/// `baseline` (the Phase C job's label).
pub fn view_name_problem(name: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > limits::MAX_VIEW_NAME_LEN {
        return Some(format!(
            "must be 1 to {} characters long",
            limits::MAX_VIEW_NAME_LEN
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("must start with a letter or digit".into());
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Some(format!(
            "holds {c:?}: use only ASCII letters, digits, '_', '-' and '.'"
        ));
    }
    if name.eq_ignore_ascii_case("baseline") {
        return Some("is the Phase C job's label".into());
    }
    None
}

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
    /// The built-in object, when not `simulation` (a replicate's study: every replicate images
    /// the object of the study's own seed). Absent from a study file that does not set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<u64>,
}

impl RngSeeds {
    /// The seed the built-in object is drawn from.
    pub fn object_seed(&self) -> u64 {
        self.object.unwrap_or(self.simulation)
    }
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
    /// Every view in view order, with its overlap fraction f, or, for a view in
    /// `overlap_targets`, its target overlap.
    pub overlap_views: NamedValues,
    /// The views given by the overlap they must have (`{ overlap = 0.6 }`): Phase D chooses
    /// their spacing threshold from the data, so they have no entry in
    /// [`Design::spacing_thresholds`].
    pub overlap_targets: BTreeMap<String, OverlapTarget>,
    /// Explicit spacing thresholds; `None` derives `(1 - f) N` per view.
    pub spacing_overrides: Option<NamedValues>,
    /// Train every variant (the full scan and every view) at every gridsize, so that overlap
    /// and grouping can be read apart; `false` keeps the original pairing (the full scan at
    /// gridsize 1, the views at the largest gridsize).
    pub cross_gridsizes: bool,
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
            overlap_targets: BTreeMap::new(),
            spacing_overrides: None,
            cross_gridsizes: false,
            train_test_split_axis: SplitAxis::Y,
            rng_seeds: RngSeeds {
                simulation: 42,
                grouping: 123,
                subsampling: 456,
                object: None,
            },
            metrics_config: MetricsConfig::default(),
        }
    }
}

/// The exported form: exactly the nine keys, thresholds resolved (plus `cross_gridsizes` when
/// it is set, so that a design without it exports what it did before it existed).
#[derive(Serialize)]
struct DesignExport<'a> {
    dose_list: &'a [f64],
    gridsizes: &'a [u32],
    neighbor_count: u32,
    patch_size_pixels: u32,
    overlap_views: ViewsExport<'a>,
    spacing_thresholds: NamedValues,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cross_gridsizes: bool,
    train_test_split_axis: SplitAxis,
    rng_seeds: &'a RngSeeds,
    metrics_config: &'a MetricsConfig,
}

impl Design {
    /// Spacing threshold S of every view given by a fraction, in view order: the explicit
    /// value where the design gives one, else `(1 - f) N` (rounded to 1e-9 so that 0.7 at
    /// N = 128 reads 38.4). Views in `overlap_targets` have none: Phase D searches theirs.
    pub fn spacing_thresholds(&self) -> NamedValues {
        NamedValues(
            self.overlap_views
                .iter()
                .filter(|(name, _)| !self.overlap_targets.contains_key(*name))
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

    /// The overlap target of one view, if it is given by one.
    pub fn overlap_target(&self, view: &str) -> Option<OverlapTarget> {
        self.overlap_targets.get(view).copied()
    }

    /// The gridsizes a variant (`baseline` or a view) is trained at: every gridsize when
    /// `cross_gridsizes`, else the original pairing (the baseline at 1, the views at the
    /// largest gridsize).
    pub fn variant_gridsizes(&self, baseline: bool) -> Vec<u32> {
        if self.cross_gridsizes {
            self.gridsizes.clone()
        } else if baseline {
            vec![1]
        } else {
            vec![self.gridsizes.iter().copied().max().unwrap_or(2)]
        }
    }

    /// C = g² for the largest gridsize (1 when there is none; saturating, for designs not yet
    /// validated).
    pub fn max_group_size(&self) -> u32 {
        self.gridsizes
            .iter()
            .map(|g| g.saturating_mul(*g))
            .max()
            .unwrap_or(1)
    }

    /// Training jobs the design asks for at most: doses x (baseline + views) x gridsizes
    /// (checked arithmetic; `None` on overflow).
    pub fn max_jobs(&self) -> Option<u64> {
        let views = u64::try_from(self.overlap_views.0.len())
            .ok()?
            .checked_add(1)?;
        u64::try_from(self.dose_list.len())
            .ok()?
            .checked_mul(views)?
            .checked_mul(u64::try_from(self.gridsizes.len()).ok()?)
    }

    /// Every problem with the design, in a stable order; empty when it is valid. Linear in
    /// the number of doses and views, whatever their count.
    pub fn validate(&self) -> Vec<String> {
        use limits::*;
        let mut problems = Vec::new();
        if self.dose_list.is_empty() {
            problems.push("dose_list must not be empty".to_string());
        }
        if self.dose_list.len() > MAX_DOSES {
            problems.push(format!(
                "dose_list has {} doses, more than {MAX_DOSES}: a study of that many doses is \
                 {MAX_DOSES}+ Phase C folders; split it into several studies",
                self.dose_list.len()
            ));
        }
        let bad_doses: Vec<String> = self
            .dose_list
            .iter()
            .filter(|d| !(d.is_finite() && **d > 0.0))
            .take(10)
            .map(|d| d.to_string())
            .collect();
        if !bad_doses.is_empty() {
            problems.push(format!(
                "All doses must be positive, got {}",
                bad_doses.join(", ")
            ));
        }
        let out_of_range: Vec<String> = self
            .dose_list
            .iter()
            .filter(|d| d.is_finite() && **d > 0.0 && !(MIN_DOSE..=MAX_DOSE).contains(*d))
            .take(10)
            .map(|d| format!("{d:e}"))
            .collect();
        if !out_of_range.is_empty() {
            problems.push(format!(
                "doses must be between {MIN_DOSE:e} and {MAX_DOSE:e} photons per pattern, got {}: \
                 below 1 photon a pattern is empty, and above 1e15 the counts are no longer exact \
                 integers",
                out_of_range.join(", ")
            ));
        }
        if self.dose_list.len() <= MAX_DOSES {
            // Folders are `dose_<rounded int>`: two doses may not share one.
            let mut seen = std::collections::HashSet::with_capacity(self.dose_list.len());
            for dose in self
                .dose_list
                .iter()
                .filter(|d| (MIN_DOSE..=MAX_DOSE).contains(*d))
            {
                let folder = dose.round() as i64;
                if !seen.insert(folder) {
                    problems.push(format!(
                        "dose_list has two doses in folder dose_{folder}: give each dose once"
                    ));
                }
            }
        }
        if self.gridsizes.is_empty() {
            problems.push("gridsizes must not be empty".to_string());
        }
        if self.gridsizes.contains(&0) {
            problems.push("gridsizes must be at least 1, got 0".to_string());
        }
        if self.gridsizes.len() > MAX_GRIDSIZES {
            problems.push(format!(
                "gridsizes lists {} values, more than {MAX_GRIDSIZES}",
                self.gridsizes.len()
            ));
        }
        if let Some(g) = self.gridsizes.iter().find(|g| **g > MAX_GRIDSIZE) {
            problems.push(format!(
                "gridsizes value {g} is above {MAX_GRIDSIZE} (groups of g² = {} positions)",
                u64::from(*g) * u64::from(*g)
            ));
        }
        let mut grids = std::collections::HashSet::new();
        if let Some(g) = self.gridsizes.iter().find(|g| !grids.insert(**g)) {
            problems.push(format!(
                "gridsizes lists {g} twice: give each gridsize once"
            ));
        }
        let largest = self.gridsizes.iter().copied().max().unwrap_or(1);
        // u64: 65536² wraps to 0 in u32.
        let c = u64::from(largest) * u64::from(largest);
        if u64::from(self.neighbor_count) < c {
            problems.push(format!(
                "neighbor_count={} must be ≥ C={c} for gridsize={largest} (OVERSAMPLING-001)",
                self.neighbor_count
            ));
        }
        if self.neighbor_count > MAX_NEIGHBOR_COUNT {
            problems.push(format!(
                "neighbor_count={} is above {MAX_NEIGHBOR_COUNT}",
                self.neighbor_count
            ));
        }
        if self.patch_size_pixels == 0 {
            problems.push("patch_size_pixels must be positive, got 0".to_string());
        }
        if self.patch_size_pixels > MAX_PATCH_SIZE {
            problems.push(format!(
                "patch_size_pixels={} is above {MAX_PATCH_SIZE} ({}² pixels per pattern)",
                self.patch_size_pixels, self.patch_size_pixels
            ));
        }
        if self.overlap_views.0.len() > MAX_VIEWS {
            problems.push(format!(
                "overlap_views names {} views, more than {MAX_VIEWS}",
                self.overlap_views.0.len()
            ));
        }
        match self.max_jobs() {
            Some(jobs) if jobs <= MAX_JOBS => {}
            jobs => problems.push(format!(
                "the design asks for {} training jobs (doses x (1 + views) x gridsizes), more than \
                 {MAX_JOBS}: fewer doses, views or gridsizes",
                jobs.map_or("more than 2^64".to_string(), |j| j.to_string())
            )),
        }
        if self.overlap_views.0.is_empty() {
            problems.push("overlap_views must name at least one view".to_string());
        }
        // Per-view checks only for a bounded number of views (the count is refused above).
        let overrides = self.spacing_overrides.as_ref().map_or(0, |o| o.0.len());
        if self.overlap_views.0.len() > MAX_VIEWS || overrides > MAX_VIEWS {
            if overrides > MAX_VIEWS {
                problems.push(format!(
                    "spacing_thresholds names {overrides} views, more than {MAX_VIEWS}"
                ));
            }
            return problems;
        }
        let mut folded = std::collections::HashSet::new();
        for (name, f) in self.overlap_views.iter() {
            if let Some(target) = self.overlap_targets.get(name) {
                problems.extend(target_problems(name, target));
                if self
                    .spacing_overrides
                    .as_ref()
                    .is_some_and(|o| o.get(name).is_some())
                {
                    problems.push(format!(
                        "overlap_views['{name}'] gives an overlap target and spacing_thresholds \
                         a spacing for it: give one or the other"
                    ));
                }
            } else if !(0.0..1.0).contains(&f) {
                problems.push(format!("overlap_views['{name}']={f} must be in [0, 1)"));
            }
            if let Some(why) = view_name_problem(name) {
                problems.push(format!(
                    "overlap view name '{}' is not usable as a folder name: it {why}; use e.g. 'dense'",
                    name.escape_debug()
                ));
            } else if !folded.insert(name.to_ascii_lowercase()) {
                // Case-insensitive file systems would put both in one folder.
                problems.push(format!(
                    "overlap view name '{name}' differs from another only in case: use distinct names"
                ));
            }
        }
        if let Some(overrides) = &self.spacing_overrides {
            let views: std::collections::HashSet<&str> = self.overlap_views.names().collect();
            for name in overrides.names() {
                if !views.contains(name) {
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
            overlap_views: ViewsExport(self),
            spacing_thresholds: self.spacing_thresholds(),
            cross_gridsizes: self.cross_gridsizes,
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

/// Every problem with one view's overlap target.
fn target_problems(name: &str, target: &OverlapTarget) -> Vec<String> {
    let mut problems = Vec::new();
    let o = target.overlap;
    // 0 is any scan sparser than the probe, 1 only a scan of repeated positions: neither is
    // a level a spacing threshold can aim at.
    if !(o > 0.0 && o < 1.0) {
        problems.push(format!(
            "overlap_views['{name}'].overlap={o} must be in (0, 1): the mean nearest-neighbour \
             disc overlap of the view's positions"
        ));
    }
    let t = target.tolerance;
    if !(t > 0.0 && t <= 0.5) {
        problems.push(format!(
            "overlap_views['{name}'].tolerance={t} must be in (0, 0.5]"
        ));
    }
    problems
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
