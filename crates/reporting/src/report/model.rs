//! What the report says, computed once from the typed manifest: the summary's counts, a row per
//! job, the PtychoPINN, skip and "what each view holds" tables, the metric table, the charts and
//! the exit criteria. The renderers (`markdown.rs`, `csv.rs`, `svg.rs`) only format it.

use super::{criteria, plots};
use crate::manifest::{ManifestJob, RunInProgress, TrainingManifest};
use crate::metrics::{HEADLINE, Names, SPLITS, flatten};
use crate::output::PictureRef;
use crate::pictures::Sampling;
use crate::svg::Chart;
use job_matrix::SkipEvent;
use runner::{JobResult, PinnFacts, TrainedResult};
use serde_json::Value;
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::path::PathBuf;

/// What one split's metrics record of the region scored.
#[derive(Clone, Copy)]
struct Region {
    positions: u64,
    mean_exposures: Option<f64>,
    pixels: Option<u64>,
}

/// One job of the manifest as the report keeps it: its identity and paths, its result without
/// the JSON trees (metrics, loss history, solver), and from those what the report shows: the
/// numeric metric leaves, which metrics are null (an FRC not resolved), the scored region and
/// the loss curves. About a tenth of the parsed job: the report of 100,000 jobs holds these.
pub struct JobData {
    /// Photons per pattern.
    pub dose: f64,
    /// View.
    pub view: String,
    /// Gridsize.
    pub gridsize: u32,
    /// As the manifest records it.
    pub artifact_dir: PathBuf,
    /// Train and test data ([`SPLITS`] order), as the manifest records them.
    pub data_paths: [PathBuf; 2],
    /// The result; a success's metrics are `null` when it had some (so that it still counts
    /// as scored), its loss history and solver gone.
    pub result: JobResult,
    leaves: [Box<[(u32, f64)]>; 2],
    nulls: [Box<[u32]>; 2],
    regions: [Option<Region>; 2],
    loss: Vec<(String, Vec<f64>)>,
}

impl JobData {
    /// The report's part of `job`, its metric names kept in `names`.
    pub fn of(job: ManifestJob, names: &mut Names) -> JobData {
        let ManifestJob {
            dose,
            view,
            gridsize,
            train_data_path,
            test_data_path,
            artifact_dir,
            mut result,
            ..
        } = job;
        let (metrics, history) = match &mut result {
            JobResult::Success(t) => {
                t.solver = None;
                let metrics = t
                    .metrics
                    .as_mut()
                    .map(|m| std::mem::replace(m, Value::Null));
                (metrics, t.loss_history.take())
            }
            JobResult::Failed(f) => (None, f.loss_history.take()),
            _ => (None, None),
        };
        let split = |k: usize| metrics.as_ref().and_then(|m| m.get(SPLITS[k]));
        let leaves = [0, 1].map(|k| {
            split(k)
                .map(flatten)
                .unwrap_or_default()
                .into_iter()
                .map(|(name, v)| (names.id(name), v))
                .collect()
        });
        let nulls = [0, 1].map(|k| {
            let mut found = Vec::new();
            if let Some(v) = split(k) {
                null_leaves(v, "", &mut found);
            }
            found.into_iter().map(|name| names.id(name)).collect()
        });
        let regions = [0, 1].map(|k| {
            let region = split(k)?.get("region")?;
            Some(Region {
                positions: region.get("positions")?.as_u64()?,
                mean_exposures: region.get("mean_exposures").and_then(Value::as_f64),
                pixels: region.get("pixels").and_then(Value::as_u64),
            })
        });
        JobData {
            dose,
            view,
            gridsize,
            artifact_dir,
            data_paths: [train_data_path, test_data_path],
            loss: loss_curves(history.as_ref()),
            result,
            leaves,
            nulls,
            regions,
        }
    }

    /// Each split's numeric metrics as a flat object by dotted name (`null` when the job has
    /// none): what `map::cells` flattens back to the same names.
    pub fn metrics_json(&self, names: &Names) -> Value {
        if self.leaves.iter().all(|l| l.is_empty()) {
            return Value::Null;
        }
        let split = |k: usize| -> serde_json::Map<String, Value> {
            self.leaves[k]
                .iter()
                .map(|(id, v)| (names.name(*id).to_string(), Value::from(*v)))
                .collect()
        };
        serde_json::json!({ SPLITS[0]: split(0), SPLITS[1]: split(1) })
    }

    /// The job as `pictures::load_job` reads it: identity, paths, the result's files and each
    /// split's phase SSIM.
    pub fn picture_json(&self, names: &Names) -> Value {
        let (recon, bundle) = match &self.result {
            JobResult::Success(t) => (t.reconstruction_path.clone(), Some(t.bundle_path.clone())),
            _ => (None, None),
        };
        let ssim = |k: usize| names.get("phase.ssim").and_then(|id| self.value(k, id));
        serde_json::json!({"dose": self.dose, "view": self.view, "gridsize": self.gridsize,
            "artifact_dir": self.artifact_dir,
            "train_data_path": self.data_paths[0], "test_data_path": self.data_paths[1],
            "result": {"status": self.result.status(), "reconstruction_path": recon,
                "bundle_path": bundle, "metrics": {
                    SPLITS[0]: {"phase": {"ssim": ssim(0)}},
                    SPLITS[1]: {"phase": {"ssim": ssim(1)}}}}})
    }

    /// The numeric metric `name` of split `k`.
    fn value(&self, k: usize, id: u32) -> Option<f64> {
        self.leaves[k]
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, v)| *v)
    }
}

/// The dotted names of the null values at depth two and more of a metrics object (a null FRC
/// resolution: `phase.frc_05.resolution_px`); a top-level null is no metric.
fn null_leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match child {
                Value::Null if !prefix.is_empty() => out.push(name),
                Value::Object(_) => null_leaves(child, &name, out),
                _ => {}
            }
        }
    }
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

/// The report of one manifest, before it is written out.
pub(super) struct Model<'a> {
    /// Names the run (the artifact root's folder).
    pub title: &'a str,
    /// The manifest's.
    pub timestamp: &'a str,
    /// Set when the run that wrote the manifest did not finish: what to say about it.
    pub unfinished: Option<String>,
    /// The jobs' backends, sorted, each once.
    pub backends: Vec<&'a str>,
    /// Every selected job, in manifest order.
    pub jobs: Vec<Job<'a>>,
    /// Jobs that ended well (success or dry run).
    pub ended_well: usize,
    /// Jobs that failed.
    pub failed: usize,
    /// The manifest's skip events.
    pub skips: &'a [SkipEvent],
    /// How each PtychoPINN job trained (none for other backends).
    pub pinn: Vec<PinnRow<'a>>,
    /// What each view holds, per job and split, where the metrics record the scored region.
    pub held: Vec<HeldRow<'a>>,
    /// Every metric name of each split ([`SPLITS`] order), sorted.
    metric_names: [Vec<String>; 2],
    /// The metrics by job and split.
    pub metric_table: MetricTable<'a>,
    /// `plots/*.svg` and their charts.
    pub charts: Vec<(String, Chart)>,
    /// Pictures shown.
    pub pictures: &'a [PictureRef],
    /// Why other jobs are not pictured.
    pub notes: &'a [String],
    /// Exit criteria and their verdicts.
    pub criteria: Vec<(String, bool)>,
    /// Which doses are pictured.
    pub sampling: &'a Sampling,
}

/// A job as the tables name it: dose, view, gridsize.
#[derive(Clone, Copy)]
pub(super) struct Id<'a> {
    /// Photons per pattern.
    pub dose: f64,
    /// `baseline`, `dense`, `sparse`.
    pub view: &'a str,
    /// Gridsize.
    pub gridsize: u32,
}

impl Id<'_> {
    /// `dense gs2`: a line of a chart, a curve of a criterion.
    pub fn label(&self) -> String {
        format!("{} gs{}", self.view, self.gridsize)
    }
}

/// One selected job: who it is, how it ended, and the numeric metric leaves of each split.
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    /// Dose, view, gridsize.
    pub id: Id<'a>,
    /// Its result (without its metrics: see [`JobData`]).
    pub result: &'a JobResult,
    data: &'a JobData,
    names: &'a Names,
}

impl<'a> Job<'a> {
    fn of(data: &'a JobData, names: &'a Names) -> Job<'a> {
        Job {
            id: Id {
                dose: data.dose,
                view: &data.view,
                gridsize: data.gridsize,
            },
            result: &data.result,
            data,
            names,
        }
    }

    /// The result of a job that trained.
    pub fn trained(&self) -> Option<&'a TrainedResult> {
        match self.result {
            JobResult::Success(trained) => Some(trained),
            _ => None,
        }
    }

    /// One metric of `split` by its dotted name.
    pub fn metric(&self, split: &str, name: &str) -> Option<f64> {
        self.data.value(split_index(split), self.names.get(name)?)
    }

    /// Whether metric `name` of `split` is recorded as null (an FRC curve that never rose
    /// above its threshold).
    fn is_null(&self, split: &str, name: &str) -> bool {
        self.names
            .get(name)
            .is_some_and(|id| self.data.nulls[split_index(split)].contains(&id))
    }

    /// Loss per epoch, a curve per split the backend recorded (`""`: a single curve): kept
    /// by a job that trained and by one that failed (a diverged solver's history).
    pub fn loss_curves(&self) -> &'a [(String, Vec<f64>)] {
        &self.data.loss
    }
}

/// How one PtychoPINN job trained.
pub(super) struct PinnRow<'a> {
    /// The job.
    pub id: Id<'a>,
    /// What its trainer and bundle said.
    pub facts: &'a PinnFacts,
}

/// What one split of one job held: from the scored region its metrics record.
pub(super) struct HeldRow<'a> {
    /// The job.
    pub id: Id<'a>,
    /// `train` or `test`.
    pub split: &'static str,
    /// Scan positions.
    pub positions: u64,
    /// The region's mean exposures per pixel, if recorded.
    pub mean_exposures: Option<f64>,
    /// The region's pixels, if recorded.
    pub pixels: Option<u64>,
}

/// The metric table: its columns and a row per job and split.
pub(super) struct MetricTable<'a> {
    /// The headline metrics the jobs have, else every metric there is (none: no table).
    pub names: Vec<String>,
    /// Each job's train split above its test split.
    pub rows: Vec<MetricRow<'a>>,
}

/// One job and split of the metric table (its cells made as it is written: 200,000 rows of a
/// sweep are not held twice).
pub(super) struct MetricRow<'a> {
    /// The job.
    pub id: Id<'a>,
    /// `train` or `test`.
    pub split: &'static str,
    job: Job<'a>,
}

impl MetricRow<'_> {
    /// One cell per name of the table (`names`).
    pub fn cells<'n>(&'n self, names: &'n [String]) -> impl Iterator<Item = MetricCell> + 'n {
        names
            .iter()
            .map(move |name| metric_cell(&self.job, self.split, name))
    }
}

/// A cell of the metric table.
pub(super) enum MetricCell {
    /// The job's value.
    Value(f64),
    /// A null FRC resolution: the curve never rose above the threshold.
    NotResolved,
    /// The job has no such metric.
    Missing,
}

impl<'a> Model<'a> {
    /// The report of `manifest` (its fields; its jobs are `jobs`, their metric names in
    /// `names`), titled `title`, showing `pictures` and why others are missing (`notes`).
    #[allow(clippy::too_many_arguments)]
    pub fn of(
        manifest: &'a TrainingManifest,
        jobs: &'a [JobData],
        names: &'a Names,
        title: &'a str,
        pictures: &'a [PictureRef],
        notes: &'a [String],
        sampling: &'a Sampling,
    ) -> Model<'a> {
        let jobs: Vec<Job> = jobs.iter().map(|j| Job::of(j, names)).collect();
        let unfinished = manifest
            .run_in_progress
            .as_ref()
            .map(RunInProgress::describe);
        let metric_names = SPLITS.map(|split| metric_names(&jobs, names, split));
        let plotted = plots::plotted(&metric_names[split_index("test")]);
        let mut charts = plots::quality_charts(&jobs, &plotted);
        charts.extend(plots::loss_charts(&jobs, sampling));
        let criteria = criteria::criteria(
            manifest,
            &jobs,
            unfinished.is_some(),
            plotted.first().copied(),
        );
        Model {
            title,
            timestamp: &manifest.timestamp,
            unfinished,
            backends: backends(&jobs),
            ended_well: jobs.iter().filter(|j| j.result.is_ok()).count(),
            failed: jobs
                .iter()
                .filter(|j| matches!(j.result, JobResult::Failed(_)))
                .count(),
            skips: &manifest.skipped_views,
            pinn: pinn_rows(&jobs),
            held: held_rows(&jobs),
            metric_table: metric_table(&jobs, &metric_names),
            metric_names,
            charts,
            pictures,
            notes,
            criteria,
            jobs,
            sampling,
        }
    }

    /// Every metric name of `split`, sorted.
    pub fn metric_names(&self, split: &str) -> &[String] {
        &self.metric_names[split_index(split)]
    }
}

fn split_index(split: &str) -> usize {
    SPLITS
        .iter()
        .position(|s| *s == split)
        .expect("one of SPLITS")
}

/// Every metric name any job has in `split`, sorted.
fn metric_names(jobs: &[Job], names: &Names, split: &str) -> Vec<String> {
    let k = split_index(split);
    let present: std::collections::HashSet<u32> = jobs
        .iter()
        .flat_map(|j| j.data.leaves[k].iter().map(|(id, _)| *id))
        .collect();
    names
        .sorted()
        .into_iter()
        .filter(|(_, id)| present.contains(id))
        .map(|(name, _)| name.to_string())
        .collect()
}

fn backends<'a>(jobs: &[Job<'a>]) -> Vec<&'a str> {
    let backends: BTreeSet<&str> = jobs.iter().map(|j| backend(j.result)).collect();
    backends.into_iter().collect()
}

fn backend(result: &JobResult) -> &str {
    match result {
        JobResult::DryRun(r) => &r.backend,
        JobResult::Success(r) => &r.backend,
        JobResult::Failed(r) => &r.backend,
        JobResult::Interrupted(r) => &r.backend,
    }
}

/// The jobs of each label (view and gridsize), the labels in order of first appearance, the
/// jobs in manifest order. (Grouped once: a sweep has 100,000 jobs and hundreds of labels.)
pub(super) fn by_label<'j, 'a>(jobs: &'j [Job<'a>]) -> Vec<(String, Vec<&'j Job<'a>>)> {
    let mut index: HashMap<(&str, u32), usize> = HashMap::new();
    let mut out: Vec<(String, Vec<&Job>)> = Vec::new();
    for j in jobs {
        let k = *index.entry((j.id.view, j.id.gridsize)).or_insert_with(|| {
            out.push((j.id.label(), Vec::new()));
            out.len() - 1
        });
        out[k].1.push(j);
    }
    out
}

/// The unique doses of `jobs`, in order of first appearance.
pub(super) fn doses(jobs: &[Job]) -> Vec<f64> {
    let mut seen = std::collections::HashSet::new();
    jobs.iter()
        .map(|j| j.id.dose)
        .filter(|d| seen.insert(d.to_bits()))
        .collect()
}

fn pinn_rows<'a>(jobs: &[Job<'a>]) -> Vec<PinnRow<'a>> {
    jobs.iter()
        .filter_map(|j| {
            Some(PinnRow {
                id: j.id,
                facts: j.trained()?.pinn.as_ref()?,
            })
        })
        .collect()
}

// What each view holds: a sparse view sees each pixel fewer times, and scores lower for it;
// the reader must see that beside the scores.
fn held_rows<'a>(jobs: &[Job<'a>]) -> Vec<HeldRow<'a>> {
    jobs.iter()
        .flat_map(|j| SPLITS.map(|split| (j, split)))
        .filter_map(|(j, split)| {
            let region = j.data.regions[split_index(split)]?;
            Some(HeldRow {
                id: j.id,
                split,
                positions: region.positions,
                mean_exposures: region.mean_exposures,
                pixels: region.pixels,
            })
        })
        .collect()
}

// The table shows the headline figures; metrics.csv has every one. One table, a row per job
// and split, so that each job's train value sits right above its test value.
fn metric_table<'a>(jobs: &[Job<'a>], names_by_split: &[Vec<String>; 2]) -> MetricTable<'a> {
    let all: BTreeSet<&String> = names_by_split.iter().flatten().collect();
    let headline: Vec<String> = HEADLINE
        .iter()
        .filter(|h| all.iter().any(|n| n == *h))
        .map(|h| h.to_string())
        .collect();
    let names = if headline.is_empty() {
        all.into_iter().cloned().collect()
    } else {
        headline
    };
    let rows = jobs
        .iter()
        .flat_map(|j| SPLITS.map(|split| (j, split)))
        .map(|(j, split)| MetricRow {
            id: j.id,
            split,
            job: *j,
        })
        .collect();
    MetricTable { names, rows }
}

fn metric_cell(job: &Job, split: &str, name: &str) -> MetricCell {
    if let Some(v) = job.metric(split, name) {
        return MetricCell::Value(v);
    }
    // A null FRC resolution: the curve never rose above the threshold. (A top-level null is
    // never "not resolved".)
    if job.is_null(split, name) {
        MetricCell::NotResolved
    } else {
        MetricCell::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_is_pictured_at_eight_doses_and_combinations_spread_evenly() {
        let views: Vec<String> = (0..20).map(|v| format!("v{v:02}")).collect();
        let jobs: Vec<(f64, &str, u32)> = (0..12)
            .flat_map(|d| {
                views
                    .iter()
                    .map(move |v| (1000.0 + 100.0 * d as f64, v.as_str(), 1))
            })
            .collect();
        let s = Sampling::of(jobs.iter().copied());
        let doses: Vec<f64> = [0, 2, 3, 5, 6, 8, 9, 11]
            .iter()
            .map(|i| 1000.0 + 100.0 * *i as f64)
            .collect();
        assert_eq!(s.pictured, doses);
        assert_eq!(s.left_out, [1100.0, 1400.0, 1700.0, 2000.0]);
        let labels: Vec<(String, u32)> = [0, 3, 5, 8, 11, 14, 16, 19]
            .iter()
            .map(|i| (format!("v{i:02}"), 1))
            .collect();
        assert_eq!(s.labels, labels);
        assert_eq!(s.labels_left_out, 12);
        assert_eq!(s.jobs_left_out, 12 * 20 - 8 * 8);
        assert!(s.pictures(1000.0, "v03", 1) && !s.pictures(1100.0, "v03", 1));
        assert!(!s.pictures(1000.0, "v01", 1));
        // Eight doses and eight combinations: every job.
        let few = Sampling::of(
            jobs.iter()
                .copied()
                .filter(|(d, v, _)| *d < 1750.0 && v < &"v08"),
        );
        assert!(!few.is_sampled());
        assert_eq!(few.jobs_left_out, 0);
        assert_eq!(few.pictured.len(), 8);
    }
}
