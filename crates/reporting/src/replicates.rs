//! A study's replicates, aggregated: per (method, dose, view, gridsize, split, metric) the
//! count, mean, standard deviation and Student-t 95 % interval of the replicates' values
//! (`metrics.csv`, the tables of `summary.md`, error bars in `plots/`); paired t-tests between
//! methods on each replicate's difference (`comparison.md`, `comparison_metrics.csv`) and
//! between the jobs of one method at one dose; and the "improves with dose" criterion judged
//! by whether the intervals separate. `values.csv` holds every replicate's value, the input
//! of all of it, so that anyone can redo the statistics.

use crate::compare::MethodRoot;
use crate::map::{self, MapSettings};
use crate::metrics::{PLOTTED, SPLITS, flatten, lower_is_better};
use crate::output::{ReportError, read_training_manifest, write_file};
use crate::stats::{ALPHA, Paired, Summary};
use crate::svg::{Chart, Series};
use crate::text::{cell, dose_label, fmt_num};
use runner::JobResult;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use study_design::RngSeeds;

/// The aggregate folder of a study with replicates, inside the study folder.
pub const REPLICATES_DIR: &str = "replicates";

/// The settings the aggregate was drawn with (`verify` redraws it with them).
pub const SETTINGS_FILE: &str = "aggregate.json";

/// The map settings recorded in an aggregate folder's [`SETTINGS_FILE`], if it holds a valid
/// one.
pub fn recorded_settings(aggregate: &Path) -> Option<MapSettings> {
    let text = npz_contract::confine::read_to_string_capped(
        &aggregate.join(SETTINGS_FILE),
        npz_contract::confine::JSON_CAP,
    )
    .ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let x = value["success_nrmse"].as_f64()?;
    map::parse_success_nrmse(&x.to_string())
        .ok()
        .map(|success_nrmse| MapSettings { success_nrmse })
}

/// One replicate of a study: its index, seeds and each method's artifact root.
pub struct Replicate {
    /// 1-based.
    pub index: u32,
    /// The seeds its data and training were drawn with.
    pub seeds: RngSeeds,
    /// Each method's artifact root in the replicate's folder.
    pub methods: Vec<MethodRoot>,
}

/// How a criterion came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Holds, with the intervals separated.
    Pass,
    /// The intervals separate the wrong way.
    Fail,
    /// The intervals overlap: the replicates cannot tell.
    Unresolved,
}

/// What [`write`] wrote and found.
pub struct Aggregate {
    /// Files written, relative to the aggregate folder.
    pub files: Vec<String>,
    /// The "improves with dose" criteria and their verdicts.
    pub criteria: Vec<(String, Verdict)>,
}

/// A job of one method: its method's place in the list, dose, view's place, gridsize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct JobKey {
    method: usize,
    // A dose's bits order as the dose does (doses are positive).
    dose: u64,
    view: usize,
    gridsize: u32,
}

/// Every replicate's values, by job, split and metric.
struct Values {
    methods: Vec<String>,
    views: Vec<String>,
    /// (job, split index, metric) -> replicate -> value.
    by_key: BTreeMap<(JobKey, usize, String), BTreeMap<u32, f64>>,
    /// Per method: (replicate, jobs, jobs that ended well).
    jobs: Vec<Vec<(u32, usize, usize)>>,
    /// Per method: its backend as the manifests name it.
    backends: Vec<String>,
    /// Per method: each replicate's dose x overlap cells (`map::cells`).
    cells: Vec<Vec<Vec<map::Cell>>>,
}

impl Values {
    fn read(replicates: &[Replicate]) -> Result<Values, ReportError> {
        let mut values = Values {
            methods: Vec::new(),
            views: Vec::new(),
            by_key: BTreeMap::new(),
            jobs: Vec::new(),
            backends: Vec::new(),
            cells: Vec::new(),
        };
        for replicate in replicates {
            for method in &replicate.methods {
                let manifest = read_training_manifest(&method.root)?;
                let m = match values.methods.iter().position(|n| *n == method.name) {
                    Some(m) => m,
                    None => {
                        values.methods.push(method.name.clone());
                        values.jobs.push(Vec::new());
                        values.backends.push(manifest.backend.clone());
                        values.cells.push(Vec::new());
                        values.methods.len() - 1
                    }
                };
                // The map's cells, with this replicate's own Phase D geometry.
                let json = serde_json::to_value(&manifest).expect("a parsed manifest serialises");
                values.cells[m].push(map::cells(&json, &map::read_geometry(&method.root, &json)));
                let ok = manifest.jobs.iter().filter(|j| j.result.is_ok()).count();
                values.jobs[m].push((replicate.index, manifest.jobs.len(), ok));
                for job in &manifest.jobs {
                    let JobResult::Success(trained) = &job.result else {
                        continue;
                    };
                    let Some(metrics) = &trained.metrics else {
                        continue;
                    };
                    let view = match values.views.iter().position(|v| *v == job.view) {
                        Some(v) => v,
                        None => {
                            values.views.push(job.view.clone());
                            values.views.len() - 1
                        }
                    };
                    let key = JobKey {
                        method: m,
                        dose: job.dose.to_bits(),
                        view,
                        gridsize: job.gridsize,
                    };
                    for (s, split) in SPLITS.iter().enumerate() {
                        let Some(split_metrics) = metrics.get(split) else {
                            continue;
                        };
                        for (name, v) in flatten(split_metrics) {
                            if v.is_finite() {
                                values
                                    .by_key
                                    .entry((key, s, name))
                                    .or_default()
                                    .insert(replicate.index, v);
                            }
                        }
                    }
                }
            }
        }
        Ok(values)
    }

    fn get(&self, key: JobKey, split: usize, metric: &str) -> Option<&BTreeMap<u32, f64>> {
        self.by_key.get(&(key, split, metric.to_string()))
    }

    fn summary(&self, key: JobKey, split: usize, metric: &str) -> Option<Summary> {
        let v: Vec<f64> = self.get(key, split, metric)?.values().copied().collect();
        Summary::of(&v)
    }

    /// The paired test of `a - b` over the replicates both have.
    fn paired(&self, a: JobKey, b: JobKey, split: usize, metric: &str) -> Option<Paired> {
        let (va, vb) = (self.get(a, split, metric)?, self.get(b, split, metric)?);
        let (xs, ys): (Vec<f64>, Vec<f64>) = va
            .iter()
            .filter_map(|(r, x)| vb.get(r).map(|y| (*x, *y)))
            .unzip();
        Paired::of(&xs, &ys)
    }

    /// Every job (method, dose, view, gridsize) with a value, sorted.
    fn keys(&self) -> BTreeSet<JobKey> {
        self.by_key.keys().map(|(k, _, _)| *k).collect()
    }

    /// The metrics of the tables and plots that the jobs have.
    fn shown(&self) -> Vec<&'static str> {
        let have: BTreeSet<&str> = self.by_key.keys().map(|(_, _, m)| m.as_str()).collect();
        PLOTTED
            .iter()
            .copied()
            .filter(|m| have.contains(m))
            .collect()
    }
}

/// "mean ± half-width (n)": the interval's half-width to two significant digits and the mean
/// to the same decimal place (digits beyond the interval's are noise), or the mean alone for
/// one replicate.
fn mean_pm(s: &Summary) -> String {
    if s.half_width.is_finite() && s.half_width > 0.0 && s.mean.is_finite() {
        let decimals = (1 - s.half_width.log10().floor() as i64).clamp(0, 12) as usize;
        format!(
            "{:.decimals$} ± {:.decimals$} ({})",
            s.mean, s.half_width, s.n
        )
    } else if s.half_width.is_finite() {
        format!("{} ± {} ({})", fmt_num(s.mean), fmt_num(s.half_width), s.n)
    } else {
        format!("{} ({})", fmt_num(s.mean), s.n)
    }
}

/// `f64` as CSV: shortest round-trip text, empty for NaN.
fn csv_num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v}")
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Whether a method's training draws its randomness from the study's seeds.
fn training_seeded(backend: &str) -> &'static str {
    match backend {
        "native" => "yes: its visiting order from the replicate's grouping seed",
        "tensorflow:supervised" => {
            "yes: Keras's seed is the replicate's grouping seed (folded to 32 bits)"
        }
        "tensorflow" => {
            "partly: --subsample_seed (the replicate's subsampling seed) fixes which train \
             positions it keeps; TensorFlow's trainer takes no seed for its weights or batch \
             order, so its spread includes its own training noise"
        }
        "pytorch" => {
            "yes: --subsample_seed (the replicate's subsampling seed) seeds Lightning's \
             weights and batch order and the grouping (GPU kernels may still differ run to run)"
        }
        b if b.starts_with("ptychi") => {
            "yes: pty-chi's --seed is the replicate's grouping seed (folded to 32 bits)"
        }
        _ => "unknown",
    }
}

/// The resolved study (`study.json`) of a study folder, read as any artifact is: never
/// through a link, only a regular file, capped.
pub fn read_study(dir: &Path) -> Result<study_design::Study, String> {
    let file = dir.join("study.json");
    let text = npz_contract::confine::read_to_string_capped(&file, npz_contract::confine::JSON_CAP)
        .map_err(|e| e.to_string())?;
    study_design::Study::parse(&text, true, &file).map_err(|e| e.to_string())
}

/// `replicate_07`: replicate 7's study folder, in the study folder.
pub fn replicate_dir(r: u32) -> String {
    format!("replicate_{r:02}")
}

/// The replicate folders of a study folder: `replicate_01`, `replicate_02`, ... as long as
/// they run on (never through a link).
pub fn replicate_dirs(study: &Path) -> Vec<(u32, PathBuf)> {
    (1..=study_design::MAX_REPLICATES)
        .map(|r| (r, study.join(replicate_dir(r))))
        .take_while(|(_, d)| std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()))
        .collect()
}

/// The aggregate's files (name relative to the aggregate folder, content).
pub type Files = Vec<(String, String)>;

/// The "improves with dose" criteria, each with its verdict.
pub type Criteria = Vec<(String, Verdict)>;

/// The aggregate's files and criteria.
pub fn render(
    replicates: &[Replicate],
    study: &str,
    requested: u32,
    settings: &MapSettings,
) -> Result<(Files, Criteria), ReportError> {
    let values = Values::read(replicates)?;
    let mut files = vec![
        ("values.csv".to_string(), values_csv(&values)),
        ("metrics.csv".to_string(), metrics_csv(&values)),
        (
            "comparison_metrics.csv".to_string(),
            comparison_csv(&values),
        ),
    ];
    let criteria = criteria(&values, requested);
    let mut plots = Vec::new();
    for metric in values.shown() {
        let name = format!("plots/{}_vs_dose.svg", metric.replace('.', "_"));
        files.push((name.clone(), plot(&values, metric).to_svg()));
        plots.push(name);
    }
    let maps = map_means(&values, settings);
    let map_names: Vec<String> = maps.iter().map(|(name, _)| name.clone()).collect();
    files.extend(maps);
    files.push((
        "summary.md".to_string(),
        summary_md(
            &values, replicates, study, requested, &criteria, &plots, &map_names,
        ),
    ));
    files.push((
        SETTINGS_FILE.to_string(),
        format!(
            "{{\n  \"replicates\": {requested},\n  \"success_nrmse\": {}\n}}\n",
            settings.success_nrmse
        ),
    ));
    files.push((
        "comparison.md".to_string(),
        comparison_md(&values, requested),
    ));
    Ok((files, criteria))
}

/// Aggregates `replicates` (of a study named `study` that asked for `requested`) into `out`.
pub fn write(
    replicates: &[Replicate],
    study: &str,
    requested: u32,
    settings: &MapSettings,
    out: &Path,
) -> Result<Aggregate, ReportError> {
    let (files, criteria) = render(replicates, study, requested, settings)?;
    for (name, text) in &files {
        write_file(out, name, text.as_bytes())?;
    }
    Ok(Aggregate {
        files: files.into_iter().map(|(name, _)| name).collect(),
        criteria,
    })
}

/// The replicates of the study folder `study` as its folders hold them: each replicate's
/// study (seeds) and methods (its comparison's), for [`render`] to redraw the aggregate.
pub fn read_replicates(study: &Path) -> Result<Vec<Replicate>, String> {
    let mut out = Vec::new();
    for (index, dir) in replicate_dirs(study) {
        let rs = read_study(&dir)?;
        let methods = crate::compare::read_methods(&dir.join("comparison"))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        out.push(Replicate {
            index,
            seeds: rs.design.rng_seeds,
            methods,
        });
    }
    Ok(out)
}

/// A row's key as CSV: method, dose, view, gridsize, split, metric.
fn key_columns(values: &Values, key: &JobKey, split: usize, metric: &str) -> String {
    format!(
        "{},{},{},{},{},{}",
        csv_field(&values.methods[key.method]),
        f64::from_bits(key.dose),
        csv_field(&values.views[key.view]),
        key.gridsize,
        SPLITS[split],
        csv_field(metric)
    )
}

/// A summary as CSV: n, mean, sd, ci95_low, ci95_high, ci95_half_width.
fn summary_columns(sum: &Summary) -> String {
    let (lo, hi) = sum.interval_or_nan();
    format!(
        "{},{},{},{},{},{}",
        sum.n,
        csv_num(sum.mean),
        csv_num(sum.sd),
        csv_num(lo),
        csv_num(hi),
        csv_num(sum.half_width)
    )
}

fn values_csv(values: &Values) -> String {
    let mut s = String::from("replicate,method,dose,view,gridsize,split,metric,value\n");
    for ((key, split, metric), by_replicate) in &values.by_key {
        for (r, v) in by_replicate {
            let _ = writeln!(
                s,
                "{r},{},{}",
                key_columns(values, key, *split, metric),
                csv_num(*v)
            );
        }
    }
    s
}

fn metrics_csv(values: &Values) -> String {
    let mut s = String::from(
        "method,dose,view,gridsize,split,metric,n,mean,sd,ci95_low,ci95_high,ci95_half_width\n",
    );
    for ((key, split, metric), by_replicate) in &values.by_key {
        let v: Vec<f64> = by_replicate.values().copied().collect();
        let Some(sum) = Summary::of(&v) else {
            continue;
        };
        let _ = writeln!(
            s,
            "{},{}",
            key_columns(values, key, *split, metric),
            summary_columns(&sum)
        );
    }
    s
}

/// Every pair of methods on each job they share, every metric and split.
fn comparison_csv(values: &Values) -> String {
    let mut s = String::from(
        "dose,view,gridsize,split,metric,method_a,method_b,n_pairs,mean_diff,diff_ci95_low,\
         diff_ci95_high,t,df,p_value,significant\n",
    );
    let keys = values.keys();
    let metrics: BTreeSet<&String> = values.by_key.keys().map(|(_, _, m)| m).collect();
    for job in keys.iter().filter(|k| k.method == 0) {
        for (split, split_name) in SPLITS.iter().enumerate() {
            for metric in &metrics {
                for a in 0..values.methods.len() {
                    for b in a + 1..values.methods.len() {
                        let (ka, kb) = (JobKey { method: a, ..*job }, JobKey { method: b, ..*job });
                        let Some(p) = values.paired(ka, kb, split, metric) else {
                            continue;
                        };
                        let (lo, hi) = p.diff.interval_or_nan();
                        let _ = writeln!(
                            s,
                            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                            f64::from_bits(job.dose),
                            csv_field(&values.views[job.view]),
                            job.gridsize,
                            split_name,
                            csv_field(metric),
                            csv_field(&values.methods[a]),
                            csv_field(&values.methods[b]),
                            p.diff.n,
                            csv_num(p.diff.mean),
                            csv_num(lo),
                            csv_num(hi),
                            csv_num(p.t),
                            p.diff.n.saturating_sub(1),
                            csv_num(p.p),
                            p.significant()
                        );
                    }
                }
            }
        }
    }
    s
}

const TEST: usize = 1;

/// The metrics "improves with dose" is judged by: Fienup NRMSE (the error that tracks what the
/// pictures show) and the report's first plotted metric.
fn criterion_metrics(values: &Values) -> Vec<&'static str> {
    let shown = values.shown();
    let mut out: Vec<&'static str> = shown
        .iter()
        .copied()
        .filter(|m| *m == "fienup_nrmse")
        .collect();
    if let Some(first) = shown.first()
        && !out.contains(first)
    {
        out.push(first);
    }
    out
}

/// "improves with dose" for each method, curve (view, gridsize), metric and step between
/// consecutive doses, on the test split: a pass only where the intervals separate.
fn criteria(values: &Values, requested: u32) -> Vec<(String, Verdict)> {
    let mut out = Vec::new();
    let keys = values.keys();
    for metric in criterion_metrics(values) {
        let lower = lower_is_better(metric);
        let curves: BTreeSet<(usize, usize, u32)> = keys
            .iter()
            .map(|k| (k.method, k.view, k.gridsize))
            .collect();
        for (method, view, gridsize) in curves {
            let points: Vec<(f64, Summary)> = keys
                .iter()
                .filter(|k| (k.method, k.view, k.gridsize) == (method, view, gridsize))
                .filter_map(|k| Some((f64::from_bits(k.dose), values.summary(*k, TEST, metric)?)))
                .collect();
            for pair in points.windows(2) {
                let ((d0, s0), (d1, s1)) = (pair[0], pair[1]);
                let better = if lower {
                    s1.mean < s0.mean
                } else {
                    s1.mean > s0.mean
                };
                let verdict = match (s0.separated_from(&s1), better) {
                    (true, true) => Verdict::Pass,
                    (true, false) => Verdict::Fail,
                    (false, _) => Verdict::Unresolved,
                };
                let how = match verdict {
                    Verdict::Pass => "improves".to_string(),
                    Verdict::Fail => "worsens".to_string(),
                    Verdict::Unresolved => format!(
                        "not resolved at n = {}",
                        s0.n.min(s1.n).min(requested as usize)
                    ),
                };
                out.push((
                    format!(
                        "{} {} gs{}, test {metric}: {} → {} {how} ({} → {})",
                        values.methods[method],
                        values.views[view],
                        gridsize,
                        dose_label(d0),
                        dose_label(d1),
                        mean_pm(&s0),
                        mean_pm(&s1)
                    ),
                    verdict,
                ));
            }
        }
    }
    out
}

fn plot(values: &Values, metric: &str) -> Chart {
    let keys = values.keys();
    let curves: BTreeSet<(usize, usize, u32)> = keys
        .iter()
        .map(|k| (k.method, k.view, k.gridsize))
        .collect();
    let several = values.methods.len() > 1;
    let mut series = Vec::new();
    for (method, view, gridsize) in curves {
        let mut points = Vec::new();
        let mut errors = Vec::new();
        for k in keys
            .iter()
            .filter(|k| (k.method, k.view, k.gridsize) == (method, view, gridsize))
        {
            if let Some(s) = values.summary(*k, TEST, metric) {
                points.push((f64::from_bits(k.dose), s.mean));
                errors.push(s.half_width);
            }
        }
        if points.is_empty() {
            continue;
        }
        let curve = format!("{} gs{gridsize}", values.views[view]);
        series.push(Series {
            label: if several {
                format!("{} {curve}", values.methods[method])
            } else {
                curve
            },
            points,
            errors,
        });
    }
    Chart {
        title: format!("test {metric} vs dose: mean and 95 % t-interval over replicates"),
        x_label: "dose (photons per pattern)".into(),
        y_label: metric.into(),
        log_x: true,
        log_y: false,
        series,
    }
}

const HOW: &str = "Each replicate is the whole study again on an independent draw of the data: scan \
positions, Poisson noise, grouping and subsampling from seeds derived from the study's seeds and \
the replicate's index (replicate 1 keeps the study's own), the built-in object the same in \
every replicate. Intervals are Student-t 95 % intervals, mean ± t(0.975, n − 1) · sd / √n over \
the replicates that have a value: exact for normal values, and honest at the small n of a \
study, where a bootstrap's intervals come out too narrow. Comparisons of methods (and of jobs \
at one dose) are paired — every method and job of a replicate sees that replicate's data — \
and tested with the two-sided paired t-test on the per-replicate differences at α = 0.05: at \
n = 3 to 10 it has power where the Wilcoxon signed-rank test has none (its smallest two-sided \
p at n = 5 is 0.0625, so it can never reject), at the price of assuming the differences are \
roughly normal.";

fn summary_md(
    values: &Values,
    replicates: &[Replicate],
    study: &str,
    requested: u32,
    criteria: &[(String, Verdict)],
    plots: &[String],
    maps: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Replicates of study '{}': {} of {requested}\n",
        cell(study),
        replicates.len()
    );
    let _ = writeln!(s, "{HOW}\n");
    s.push_str("## Replicates\n\n| replicate | simulation seed | grouping seed | subsampling seed | object seed |\n|---|---|---|---|---|\n");
    for r in replicates {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.index,
            r.seeds.simulation,
            r.seeds.grouping,
            r.seeds.subsampling,
            r.seeds.object_seed()
        );
    }
    s.push_str("\n## Methods\n\n| method | jobs ended well, per replicate | training seeded |\n|---|---|---|\n");
    for (m, name) in values.methods.iter().enumerate() {
        let jobs: Vec<String> = values.jobs[m]
            .iter()
            .map(|(r, n, ok)| format!("{r}: {ok}/{n}"))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            cell(name),
            jobs.join(", "),
            training_seeded(&values.backends[m])
        );
    }
    let shown = values.shown();
    let keys = values.keys();
    for (m, name) in values.methods.iter().enumerate() {
        let _ = writeln!(s, "\n## {}: mean ± half-width (n)\n", cell(name));
        let _ = write!(s, "| dose | view | gridsize | split |");
        for metric in &shown {
            let _ = write!(s, " {metric} |");
        }
        s.push_str("\n|---|---|---|---|");
        s.push_str(&"---|".repeat(shown.len()));
        s.push('\n');
        for k in keys.iter().filter(|k| k.method == m) {
            for (split, split_name) in SPLITS.iter().enumerate() {
                let _ = write!(
                    s,
                    "| {} | {} | {} | {split_name} |",
                    dose_label(f64::from_bits(k.dose)),
                    cell(&values.views[k.view]),
                    k.gridsize
                );
                for metric in &shown {
                    let text = values
                        .summary(*k, split, metric)
                        .map_or("—".to_string(), |x| mean_pm(&x));
                    let _ = write!(s, " {text} |");
                }
                s.push('\n');
            }
        }
    }
    s.push_str("\n## Exit criteria: quality improves with dose\n\n");
    s.push_str(
        "A step passes only where the two doses' intervals are disjoint; overlapping intervals \
         are not resolved at this n.\n\n",
    );
    for (text, verdict) in criteria {
        let mark = match verdict {
            Verdict::Pass => "[x]",
            Verdict::Fail => "[ ] FAILS:",
            Verdict::Unresolved => "[?]",
        };
        let _ = writeln!(s, "- {mark} {}", cell(text));
    }
    // Jobs of one method at one dose: views and gridsizes, paired over replicates.
    s.push_str("\n## Jobs at the same dose, paired\n\n");
    s.push_str("| method | dose | metric | a | b | mean a − b (95 % t) | p (paired t) | verdict |\n|---|---|---|---|---|---|---|---|\n");
    for metric in criterion_metrics(values) {
        for (m, name) in values.methods.iter().enumerate() {
            let jobs: Vec<JobKey> = keys.iter().filter(|k| k.method == m).copied().collect();
            for (i, a) in jobs.iter().enumerate() {
                for b in jobs[i + 1..].iter().filter(|b| b.dose == a.dose) {
                    let Some(p) = values.paired(*a, *b, TEST, metric) else {
                        continue;
                    };
                    let _ = writeln!(
                        s,
                        "| {} | {} | test {metric} | {} gs{} | {} gs{} | {} | {} | {} |",
                        cell(name),
                        dose_label(f64::from_bits(a.dose)),
                        cell(&values.views[a.view]),
                        a.gridsize,
                        cell(&values.views[b.view]),
                        b.gridsize,
                        mean_pm(&p.diff),
                        fmt_p(p.p),
                        pair_verdict(&p, metric)
                    );
                }
            }
        }
    }
    if !plots.is_empty() {
        s.push_str("\n## Plots\n\n");
        for p in plots {
            let _ = writeln!(s, "- [{p}]({p})");
        }
    }
    if !maps.is_empty() {
        s.push_str(
            "\n## Dose x overlap maps: means over the replicates\n\nEach cell is the mean over \
             the replicates of the test split's value (its realised overlap and photons per \
             pixel averaged too: each replicate's Phase D realises the target on its own \
             positions); each method's `map.csv` gives every cell's n, sd and 95 % t-interval. \
             The success boundary is drawn on the mean test Fienup NRMSE.\n\n",
        );
        for m in maps.iter().filter(|m| m.ends_with(".svg")) {
            let _ = writeln!(s, "![{m}]({m})");
        }
        for m in maps.iter().filter(|m| m.ends_with("budget.md")) {
            let _ = writeln!(s, "\nFixed photon budget: [{m}]({m})");
        }
    }
    s.push_str(
        "\nEvery replicate's value: `values.csv`; the aggregates: `metrics.csv`; every paired \
         comparison of methods: `comparison_metrics.csv`. Each replicate's own report and \
         comparison: `replicate_NN/report`, `replicate_NN/comparison`.\n",
    );
    s
}

/// Per method whose replicates hold a dose x overlap map: `maps/<method>/map.csv` (each cell's
/// mean, n, sd and 95 % t-interval, with mean realised overlap, exposures and photons per
/// pixel) and the heatmaps of the means (`maps/<method>/map_test_<metric>.svg`).
fn map_means(values: &Values, settings: &MapSettings) -> Vec<(String, String)> {
    type CellKey = (u64, String, u64, String, String);
    let mut out = Vec::new();
    for (m, per_replicate) in values.cells.iter().enumerate() {
        if per_replicate.is_empty() || !per_replicate.iter().all(|c| map::is_map(c)) {
            continue;
        }
        let mut groups: BTreeMap<CellKey, Vec<&map::Cell>> = BTreeMap::new();
        for c in per_replicate.iter().flatten() {
            let key = (
                c.dose.to_bits(),
                c.view.clone(),
                c.gridsize,
                c.split.clone(),
                c.metric.clone(),
            );
            groups.entry(key).or_default().push(c);
        }
        let mut means = Vec::new();
        let mut csv = String::from(
            "dose,view,gridsize,split,overlap_realised,exposures_per_pixel,photons_per_pixel,\
             metric,n,mean,sd,ci95_low,ci95_high,ci95_half_width\n",
        );
        for ((_, view, gridsize, split, metric), cells) in &groups {
            let vs: Vec<f64> = cells.iter().map(|c| c.value).collect();
            let Some(sum) = Summary::of(&vs) else {
                continue;
            };
            let first = cells[0];
            // Geometry averaged over the replicates that measured it.
            let geos: Vec<map::SplitGeometry> = cells.iter().filter_map(|c| c.geometry).collect();
            let geometry = (geos.len() == cells.len()).then(|| {
                let avg = |f: &dyn Fn(&map::SplitGeometry) -> f64| {
                    geos.iter().map(f).sum::<f64>() / geos.len() as f64
                };
                map::SplitGeometry {
                    overlap: avg(&|g| g.overlap),
                    positions: avg(&|g| g.positions),
                    scanned_px: avg(&|g| g.scanned_px),
                    probe_diameter_px: avg(&|g| g.probe_diameter_px),
                }
            });
            let geo = |f: &dyn Fn(&map::SplitGeometry) -> f64| {
                geometry.as_ref().map_or(String::new(), |g| csv_num(f(g)))
            };
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{}",
                first.dose,
                csv_field(view),
                gridsize,
                split,
                geo(&|g| g.overlap),
                geo(&|g| g.exposures_per_pixel()),
                geo(&|g| g.photons_per_pixel(first.dose)),
                csv_field(metric),
                summary_columns(&sum)
            );
            means.push(map::Cell {
                value: sum.mean,
                geometry,
                targeted: cells.iter().any(|c| c.targeted),
                ..first.clone()
            });
        }
        if !map::is_map(&means) {
            continue;
        }
        let dir = format!("maps/{}", crate::method::slug(&values.methods[m]));
        out.push((format!("{dir}/map.csv"), csv));
        out.push((
            format!("{dir}/budget.md"),
            format!(
                "# {}: fixed photon budget, means over {} replicates\n\n{}",
                values.methods[m],
                per_replicate.len(),
                map::budget_tables(&means)
            ),
        ));
        let n = per_replicate.len();
        for (file, metric, gs, grid) in map::grids(&means, &dir, settings) {
            let title = format!(
                "{}: test {metric}, gs{gs}, mean of {n} replicates",
                values.methods[m]
            );
            out.push((
                file,
                map::heatmap_svg(&grid, &title, &metric, Some(settings.success_nrmse), false),
            ));
        }
    }
    out
}

fn fmt_p(p: f64) -> String {
    if p.is_nan() {
        "—".into()
    } else if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// "a better" / "b better" / "no significant difference", for a − b of `metric`.
fn pair_verdict(p: &Paired, metric: &str) -> &'static str {
    if !p.significant() {
        return "no significant difference";
    }
    let a_better = if lower_is_better(metric) {
        p.diff.mean < 0.0
    } else {
        p.diff.mean > 0.0
    };
    if a_better { "a better" } else { "b better" }
}

fn comparison_md(values: &Values, requested: u32) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Comparison over replicates\n");
    let _ = writeln!(
        s,
        "Each cell: mean ± half-width of the 95 % t-interval (n replicates) on the test split. \
         A method is **bold** only where the two-sided paired t-test on the per-replicate \
         differences (α = {ALPHA}) finds it better than every other method; otherwise the row \
         says so. {} replicates asked for.\n",
        requested
    );
    let methods = &values.methods;
    let shown = values.shown();
    let keys = values.keys();
    let jobs: BTreeSet<JobKey> = keys.iter().map(|k| JobKey { method: 0, ..*k }).collect();
    let _ = write!(s, "| dose | view | gridsize | metric |");
    for m in methods {
        let _ = write!(s, " {} |", cell(m));
    }
    s.push_str(" verdict |\n|---|---|---|---|");
    s.push_str(&"---|".repeat(methods.len() + 1));
    s.push('\n');
    for job in &jobs {
        for metric in &shown {
            let key = |m: usize| JobKey { method: m, ..*job };
            let sums: Vec<Option<Summary>> = (0..methods.len())
                .map(|m| values.summary(key(m), TEST, metric))
                .collect();
            if sums.iter().all(Option::is_none) {
                continue;
            }
            let winner = winner(values, &key, metric);
            let _ = write!(
                s,
                "| {} | {} | {} | {metric} |",
                dose_label(f64::from_bits(job.dose)),
                cell(&values.views[job.view]),
                job.gridsize
            );
            for (m, sum) in sums.iter().enumerate() {
                let text = sum.map_or("—".to_string(), |x| mean_pm(&x));
                if winner.map(|w| w.0) == Some(m) {
                    let _ = write!(s, " **{text}** |");
                } else {
                    let _ = write!(s, " {text} |");
                }
            }
            let verdict = match winner {
                Some((m, p)) => format!(
                    "{} better than every other (paired t, p {})",
                    cell(&methods[m]),
                    if methods.len() > 2 {
                        format!("≤ {}", fmt_p(p).trim_start_matches("< "))
                    } else if p < 1e-4 {
                        fmt_p(p)
                    } else {
                        format!("= {}", fmt_p(p))
                    }
                ),
                None if methods.len() < 2 => "one method".to_string(),
                None => "no significant difference".to_string(),
            };
            let _ = writeln!(s, " {verdict} |");
        }
    }
    if methods.len() > 1 {
        s.push_str("\n## Paired differences\n\n| dose | view | gridsize | metric | a | b | mean a − b (95 % t) | p (paired t) | verdict |\n|---|---|---|---|---|---|---|---|---|\n");
        for job in &jobs {
            for metric in criterion_metrics(values) {
                for a in 0..methods.len() {
                    for b in a + 1..methods.len() {
                        let Some(p) = values.paired(
                            JobKey { method: a, ..*job },
                            JobKey { method: b, ..*job },
                            TEST,
                            metric,
                        ) else {
                            continue;
                        };
                        let _ = writeln!(
                            s,
                            "| {} | {} | {} | {metric} | {} | {} | {} | {} | {} |",
                            dose_label(f64::from_bits(job.dose)),
                            cell(&values.views[job.view]),
                            job.gridsize,
                            cell(&methods[a]),
                            cell(&methods[b]),
                            mean_pm(&p.diff),
                            fmt_p(p.p),
                            pair_verdict(&p, metric)
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "\nEvery pair, metric and split: `comparison_metrics.csv`."
    );
    s
}

/// The method better than every other on `metric` (each paired test significant, in its
/// favour), with the largest of those p-values: an intersection-union test, so level α
/// without a multiplicity correction.
fn winner(values: &Values, key: &dyn Fn(usize) -> JobKey, metric: &str) -> Option<(usize, f64)> {
    let n = values.methods.len();
    if n < 2 {
        return None;
    }
    let lower = lower_is_better(metric);
    'candidate: for a in 0..n {
        let mut worst = 0.0f64;
        for b in (0..n).filter(|b| *b != a) {
            let Some(p) = values.paired(key(a), key(b), TEST, metric) else {
                continue 'candidate;
            };
            let better = if lower {
                p.diff.mean < 0.0
            } else {
                p.diff.mean > 0.0
            };
            if !(p.significant() && better) {
                continue 'candidate;
            }
            worst = worst.max(p.p);
        }
        return Some((a, worst));
    }
    None
}
