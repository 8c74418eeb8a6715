//! What the report says, computed once from the typed manifest: the summary's counts, a row per
//! job, the PtychoPINN, skip and "what each view holds" tables, the metric table, the charts and
//! the exit criteria. The renderers (`markdown.rs`, `csv.rs`, `svg.rs`) only format it.

use super::{criteria, plots};
use crate::manifest::{ManifestJob, RunInProgress, TrainingManifest};
use crate::metrics::{HEADLINE, SPLITS, flatten};
use crate::output::PictureRef;
use crate::svg::Chart;
use job_matrix::SkipEvent;
use runner::{JobResult, PinnFacts, TrainedResult};
use serde_json::Value;
use std::collections::BTreeSet;

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
pub(super) struct Job<'a> {
    /// Dose, view, gridsize.
    pub id: Id<'a>,
    /// Its result.
    pub result: &'a JobResult,
    /// [`flatten`] of each split's metrics, in [`SPLITS`] order.
    leaves: [Vec<(String, f64)>; 2],
}

impl<'a> Job<'a> {
    fn of(job: &'a ManifestJob) -> Job<'a> {
        let mut row = Job {
            id: Id {
                dose: job.dose,
                view: &job.view,
                gridsize: job.gridsize,
            },
            result: &job.result,
            leaves: Default::default(),
        };
        row.leaves = SPLITS.map(|split| row.split_metrics(split).map(flatten).unwrap_or_default());
        row
    }

    /// The result of a job that trained.
    pub fn trained(&self) -> Option<&'a TrainedResult> {
        match self.result {
            JobResult::Success(trained) => Some(trained),
            _ => None,
        }
    }

    /// The metrics of `split` as the backend recorded them (scored jobs only).
    pub fn split_metrics(&self, split: &str) -> Option<&'a Value> {
        self.trained()?.metrics.as_ref()?.get(split)
    }

    /// The numeric metric leaves of `split`, as `group.name` -> value.
    pub fn leaves(&self, split: &str) -> &[(String, f64)] {
        SPLITS
            .iter()
            .position(|s| *s == split)
            .map_or(&[], |k| &self.leaves[k])
    }

    /// One metric of `split` by its dotted name.
    pub fn metric(&self, split: &str, name: &str) -> Option<f64> {
        self.leaves(split)
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// Loss per epoch, in the backend's shape: kept by a job that trained and by one that
    /// failed (a diverged solver's history).
    pub fn loss_history(&self) -> Option<&'a Value> {
        match self.result {
            JobResult::Success(trained) => trained.loss_history.as_ref(),
            JobResult::Failed(failed) => failed.loss_history.as_ref(),
            _ => None,
        }
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

/// One job and split of the metric table.
pub(super) struct MetricRow<'a> {
    /// The job.
    pub id: Id<'a>,
    /// `train` or `test`.
    pub split: &'static str,
    /// One per name of the table.
    pub cells: Vec<MetricCell>,
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
    /// The report of `manifest`, titled `title`, showing `pictures` and why others are missing
    /// (`notes`).
    pub fn of(
        manifest: &'a TrainingManifest,
        title: &'a str,
        pictures: &'a [PictureRef],
        notes: &'a [String],
    ) -> Model<'a> {
        let jobs: Vec<Job> = manifest.jobs.iter().map(Job::of).collect();
        let unfinished = manifest
            .run_in_progress
            .as_ref()
            .map(RunInProgress::describe);
        let metric_names = SPLITS.map(|split| metric_names(&jobs, split));
        let plotted = plots::plotted(&metric_names[split_index("test")]);
        let mut charts = plots::quality_charts(&jobs, &plotted);
        charts.extend(plots::loss_charts(&jobs));
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
fn metric_names(jobs: &[Job], split: &str) -> Vec<String> {
    let names: BTreeSet<&String> = jobs
        .iter()
        .flat_map(|j| j.leaves(split))
        .map(|(name, _)| name)
        .collect();
    names.into_iter().cloned().collect()
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

/// The unique labels of `jobs`, in order of first appearance.
pub(super) fn labels(jobs: &[Job]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for j in jobs {
        if !labels.contains(&j.id.label()) {
            labels.push(j.id.label());
        }
    }
    labels
}

/// The unique doses of `jobs`, in order of first appearance.
pub(super) fn doses(jobs: &[Job]) -> Vec<f64> {
    let mut doses: Vec<f64> = Vec::new();
    for j in jobs {
        if !doses.contains(&j.id.dose) {
            doses.push(j.id.dose);
        }
    }
    doses
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
            let region = j.split_metrics(split)?.get("region")?;
            Some(HeldRow {
                id: j.id,
                split,
                positions: region.get("positions")?.as_u64()?,
                mean_exposures: region.get("mean_exposures").and_then(Value::as_f64),
                pixels: region.get("pixels").and_then(Value::as_u64),
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
            cells: names
                .iter()
                .map(|name| metric_cell(j, split, name))
                .collect(),
        })
        .collect();
    MetricTable { names, rows }
}

fn metric_cell(job: &Job, split: &str, name: &str) -> MetricCell {
    if let Some(v) = job.metric(split, name) {
        return MetricCell::Value(v);
    }
    // A null FRC resolution: the curve never rose above the threshold. (A name without a
    // dot is looked up under the key "", which no metrics object has: never "not resolved".)
    let (parent, last) = name.rsplit_once('.').unwrap_or(("", name));
    let holder = parent.split('.').fold(
        job.split_metrics(split).unwrap_or(&Value::Null),
        |v, key| &v[key],
    );
    match holder.get(last) {
        Some(Value::Null) => MetricCell::NotResolved,
        _ => MetricCell::Missing,
    }
}
