//! The study report of an artifact root: `summary.md`, `metrics.csv` and SVG plots, as pure
//! functions of `training_manifest.json` (same manifest, same bytes), and PNG pictures of the
//! reconstructions, pure functions of the files the manifest names.

use crate::manifest::{MANIFEST_FILE, ManifestJob, RunInProgress, TrainingManifest};
use crate::method::method_name;
use crate::metrics::{HEADLINE, PLOTTED, SPLITS, against_flat_start, flatten, lower_is_better};
pub use crate::output::{PictureRef, ReportError, read_manifest};
use crate::output::{read_training_manifest, write_file};
use crate::svg::{Chart, Series};
use crate::text::{dose_label, fmt_num};
use runner::{JobResult, PinnFacts, ScaleStatus, TrainedResult};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// A rendered report: file name (relative to the report folder) and contents.
#[derive(Debug, Clone)]
pub struct Report {
    /// `summary.md`, `metrics.csv`, `plots/*.svg`, in a fixed order.
    pub files: Vec<(String, String)>,
    /// Exit criteria with their verdicts (also in `summary.md`).
    pub criteria: Vec<(String, bool)>,
    /// Set when the manifest is from a run that did not finish: what to tell the user.
    pub unfinished: Option<String>,
    /// `pictures/*.png`: file name (relative to the report folder) and bytes.
    pub pictures: Vec<(String, Vec<u8>)>,
}

/// One job row, read from the manifest.
struct Job<'a> {
    dose: f64,
    view: &'a str,
    gridsize: u32,
    result: &'a JobResult,
}

impl<'a> Job<'a> {
    fn of(job: &'a ManifestJob) -> Job<'a> {
        Job {
            dose: job.dose,
            view: &job.view,
            gridsize: job.gridsize,
            result: &job.result,
        }
    }
    fn status(&self) -> &str {
        self.result.status()
    }
    fn label(&self) -> String {
        format!("{} gs{}", self.view, self.gridsize)
    }
    /// The result of a job that trained.
    fn trained(&self) -> Option<&'a TrainedResult> {
        match self.result {
            JobResult::Success(trained) => Some(trained),
            _ => None,
        }
    }
    /// The metrics of `split` as the backend recorded them (scored jobs only).
    fn split_metrics(&self, split: &str) -> Option<&'a Value> {
        self.trained()?.metrics.as_ref()?.get(split)
    }
    /// Numeric metric leaves of one split, as `group.name` -> value.
    fn metrics(&self, split: &str) -> Vec<(String, f64)> {
        self.split_metrics(split).map(flatten).unwrap_or_default()
    }
    /// Loss per epoch: kept by a job that trained and by one that failed (a diverged
    /// solver's history).
    fn loss_history(&self) -> Option<&'a Value> {
        match self.result {
            JobResult::Success(trained) => trained.loss_history.as_ref(),
            JobResult::Failed(failed) => failed.loss_history.as_ref(),
            _ => None,
        }
    }
    fn backend(&self) -> &'a str {
        match self.result {
            JobResult::DryRun(r) => &r.backend,
            JobResult::Success(r) => &r.backend,
            JobResult::Failed(r) => &r.backend,
            JobResult::Interrupted(r) => &r.backend,
        }
    }
}

/// Builds the report of `manifest`; `title` names the run.
pub fn build(manifest: &TrainingManifest, title: &str) -> Report {
    build_with(manifest, title, &[], &[])
}

/// [`build`], with a `Pictures` section showing `pictures` and saying why others are missing
/// (`notes`).
pub fn build_with(
    manifest: &TrainingManifest,
    title: &str,
    pictures: &[PictureRef],
    notes: &[String],
) -> Report {
    let jobs: Vec<Job> = manifest.jobs.iter().map(Job::of).collect();
    let skips = &manifest.skipped_views;
    // Train beside test everywhere: a self-supervised method's fit beside its generalisation.
    let splits = SPLITS;
    let metric_names = |split: &str| -> Vec<String> {
        let set: BTreeSet<String> = jobs
            .iter()
            .flat_map(|j| j.metrics(split))
            .map(|(k, _)| k)
            .collect();
        set.into_iter().collect()
    };
    let mut md = String::new();
    let mut criteria: Vec<(String, bool)> = Vec::new();
    let n_ok = jobs
        .iter()
        .filter(|j| matches!(j.status(), "success" | "dry_run"))
        .count();
    let n_failed = jobs.iter().filter(|j| j.status() == "failed").count();
    let backends: BTreeSet<&str> = jobs.iter().map(Job::backend).collect();
    let _ = writeln!(md, "# Study report: {title}\n");
    let unfinished = manifest
        .run_in_progress
        .as_ref()
        .map(RunInProgress::describe);
    if let Some(note) = &unfinished {
        let _ = writeln!(md, "> **Warning:** {note}.\n");
    }
    let _ = writeln!(
        md,
        "- manifest: `{MANIFEST_FILE}`, timestamp {}",
        manifest.timestamp
    );
    let _ = writeln!(
        md,
        "- backend: {}",
        if backends.is_empty() {
            "dry run".to_string()
        } else {
            backends.into_iter().collect::<Vec<_>>().join(", ")
        }
    );
    let _ = writeln!(
        md,
        "- jobs: {} selected, {} ended well, {} failed; {} view(s) skipped\n",
        jobs.len(),
        n_ok,
        n_failed,
        skips.len()
    );

    let _ = writeln!(md, "## Jobs\n");
    let _ = writeln!(
        md,
        "| dose | view | gridsize | status | epochs | final loss | bundle | SHA-256 |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for j in &jobs {
        let status = match j.result {
            JobResult::Failed(f) => format!(
                "failed: {}",
                f.error.lines().next().unwrap_or("").replace('|', "\\|")
            ),
            r => r.status().to_string(),
        };
        let trained = j.trained();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            dose_label(j.dose),
            j.view,
            j.gridsize,
            status,
            trained.map_or("-".into(), |t| t.epochs_completed.to_string()),
            trained
                .and_then(|t| t.final_loss)
                .map_or("-".into(), fmt_num),
            trained.map_or("-".into(), |t| format!("`{}`", t.bundle_path)),
            trained.map_or("-".into(), |t| format!("`{}`", t.bundle_sha256)),
        );
    }
    let _ = writeln!(md);
    pinn_section(&mut md, &jobs);

    let _ = writeln!(md, "## Skipped views\n");
    if skips.is_empty() {
        let _ = writeln!(md, "None.\n");
    } else {
        let _ = writeln!(md, "| dose | view | reason |\n|---|---|---|");
        for s in skips {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                dose_label(s.dose),
                s.view,
                s.reason.replace('|', "\\|").replace('\n', " ")
            );
        }
        let _ = writeln!(md);
    }

    // What each view holds: a sparse view sees each pixel fewer times, and scores lower for
    // it; the reader must see that beside the scores.
    let held: Vec<(&Job, &str, &Value)> = jobs
        .iter()
        .flat_map(|j| splits.map(|split| (j, split)))
        .filter_map(|(j, split)| Some((j, split, j.split_metrics(split)?.get("region")?)))
        .filter(|(_, _, region)| region["positions"].is_u64())
        .collect();
    if !held.is_empty() {
        let _ = writeln!(
            md,
            "## What each view holds
"
        );
        let _ = writeln!(
            md,
            "Exposures per pixel: the scored region's mean of sum_j |P_j|^2 / max |P|^2 (how \
             many exposures at the probe's peak intensity each pixel received).\n"
        );
        let _ = writeln!(
            md,
            "| dose | view | gs | split | positions | exposures per pixel | region pixels |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for (j, split, region) in held {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {split} | {} | {} | {} |",
                dose_label(j.dose),
                j.view,
                j.gridsize,
                region["positions"],
                region["mean_exposures"]
                    .as_f64()
                    .map_or("-".into(), |v| format!("{v:.2}")),
                region["pixels"]
                    .as_u64()
                    .map_or("-".into(), |v| v.to_string()),
            );
        }
        let _ = writeln!(md);
    }

    // Tables show the headline figures; metrics.csv has every one. One table, a row per job
    // and split, so that each job's train value sits right above its test value.
    let all: Vec<String> = splits
        .iter()
        .flat_map(|split| metric_names(split))
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    let headline: Vec<String> = HEADLINE
        .iter()
        .filter(|h| all.iter().any(|n| n == *h))
        .map(|h| h.to_string())
        .collect();
    let names = if headline.is_empty() { all } else { headline };
    if !names.is_empty() {
        let _ = writeln!(md, "## Metrics (train and test split)\n");
        let _ = writeln!(
            md,
            "Per job, the train split above the test split: for a self-supervised method \
             (PtychoPINN) its fit to the data it was trained on, then its generalisation to \
             held-out data; a native solver reconstructs each split directly.\n"
        );
        let _ = writeln!(md, "| dose | view | gs | split | {} |", names.join(" | "));
        let _ = writeln!(md, "|---|---|---|---|{}", "---|".repeat(names.len()));
        for j in &jobs {
            for split in splits {
                let values = j.metrics(split);
                let cells: Vec<String> = names
                    .iter()
                    .map(|n| {
                        values.iter().find(|(k, _)| k == n).map_or_else(
                            || {
                                // A null FRC resolution: the curve never rose above the
                                // threshold.
                                let (parent, last) = n.rsplit_once('.').unwrap_or(("", n));
                                let holder = parent.split('.').fold(
                                    j.split_metrics(split).unwrap_or(&Value::Null),
                                    |v, key| &v[key],
                                );
                                match holder.get(last) {
                                    Some(Value::Null) => "not resolved".into(),
                                    _ => "-".into(),
                                }
                            },
                            |(_, v)| fmt_num(*v),
                        )
                    })
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {split} | {} |",
                    dose_label(j.dose),
                    j.view,
                    j.gridsize,
                    cells.join(" | ")
                );
            }
        }
        let _ = writeln!(md);
    }

    // Plots.
    let mut plots: Vec<(String, String)> = Vec::new();
    let test_names = metric_names("test");
    let mut chosen: Vec<&str> = PLOTTED
        .iter()
        .copied()
        .filter(|h| test_names.iter().any(|n| n == h))
        .collect();
    if chosen.is_empty() {
        // Unknown metric names: plot the first few there are.
        chosen = test_names.iter().take(4).map(String::as_str).collect();
    }
    let mut labels: Vec<String> = Vec::new();
    for j in &jobs {
        if !labels.contains(&j.label()) {
            labels.push(j.label());
        }
    }
    for metric in &chosen {
        let series = labels
            .iter()
            .map(|label| Series {
                label: label.clone(),
                points: jobs
                    .iter()
                    .filter(|j| &j.label() == label)
                    .filter_map(|j| {
                        j.metrics("test")
                            .into_iter()
                            .find(|(k, _)| k == metric)
                            .map(|(_, v)| (j.dose, v))
                    })
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
        plots.push((
            format!("plots/quality_{}.svg", metric.replace('.', "_")),
            chart.to_svg(),
        ));
    }
    let mut doses: Vec<f64> = Vec::new();
    for j in &jobs {
        if !doses.contains(&j.dose) {
            doses.push(j.dose);
        }
    }
    for dose in &doses {
        let mut series = Vec::new();
        for j in jobs.iter().filter(|j| j.dose == *dose) {
            for (name, curve) in loss_curves(j.loss_history().unwrap_or(&Value::Null)) {
                let label = if name.is_empty() {
                    j.label()
                } else {
                    format!("{} {name}", j.label())
                };
                series.push(Series {
                    label,
                    points: curve
                        .into_iter()
                        .enumerate()
                        .map(|(e, l)| ((e + 1) as f64, l))
                        .collect(),
                });
            }
        }
        if series.is_empty() {
            continue;
        }
        let chart = Chart {
            title: format!("loss per epoch, dose {}", dose_label(*dose)),
            x_label: "epoch".into(),
            y_label: "normalised Fourier error".into(),
            log_x: false,
            log_y: true,
            series,
        };
        plots.push((
            format!("plots/loss_dose_{}.svg", dose.round() as i64),
            chart.to_svg(),
        ));
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "## Plots\n");
        for (name, _) in &plots {
            let _ = writeln!(md, "![{name}]({name})");
        }
        let _ = writeln!(md);
    }

    if !pictures.is_empty() || !notes.is_empty() {
        let _ = writeln!(md, "## Pictures (train and test split)\n");
        let _ = writeln!(
            md,
            "Each picture has a panel per split, the train split above the test split, each \
             against its own truth (the split's objectGuess over the region its probeGuess and \
             positions cover). Registered as the metrics score them (global phase and fitted \
             phase plane removed), cropped to the scored region (grey: outside it). Amplitude on \
             viridis, phase on a diverging map centred on zero, errors on inferno; images side by \
             side share a scale in both panels, set by the truth's range (values beyond it \
             saturate).\n"
        );
        for p in pictures {
            let _ = writeln!(md, "{}\n\n![{}]({})\n", p.caption, p.file, p.file);
        }
        for n in notes {
            let _ = writeln!(md, "- not pictured: {}", n.replace('\n', " "));
        }
        if !notes.is_empty() {
            let _ = writeln!(md);
        }
    }

    // Exit criteria.
    if unfinished.is_some() {
        criteria.push((
            "the run that wrote the manifest finished".to_string(),
            false,
        ));
    }
    criteria.push((
        format!("every selected job ended well ({n_ok}/{})", jobs.len()),
        n_ok == jobs.len() && !jobs.is_empty(),
    ));
    let count_ok = manifest.skipped_count == skips.len();
    criteria.push((
        format!("skip count agrees with the skip events ({})", skips.len()),
        count_ok,
    ));
    let successes: Vec<&TrainedResult> = jobs.iter().filter_map(Job::trained).collect();
    if !successes.is_empty() {
        let bundles_ok = successes.iter().all(|t| {
            let h = &t.bundle_sha256;
            h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) && t.bundle_size_bytes > 0
        });
        criteria.push((
            "every successful job has a bundle with its SHA-256 and size".into(),
            bundles_ok,
        ));
    }
    // A reconstruction no closer to the truth than the object of ones it started from (or, for
    // a network, than that object) has learned nothing the scoring can see: said, not hidden.
    let against_flat: Vec<(&Job, (f64, f64, bool))> = jobs
        .iter()
        .filter_map(|j| {
            let m = j.metrics("test");
            let verdict = against_flat_start(|k| m.iter().find(|(n, _)| n == k).map(|(_, v)| *v));
            Some((j, verdict?))
        })
        .collect();
    if !against_flat.is_empty() {
        let worse: Vec<String> = against_flat
            .iter()
            .filter(|(_, (_, _, below))| !below)
            .map(|(j, (v, flat, _))| {
                format!(
                    "{} dose {}: {} vs {}",
                    j.label(),
                    dose_label(j.dose),
                    fmt_num(*v),
                    fmt_num(*flat)
                )
            })
            .collect();
        let mut text = format!(
            "every scored job beats the flat start on fienup_nrmse (test) ({}/{})",
            against_flat.len() - worse.len(),
            against_flat.len()
        );
        if !worse.is_empty() {
            text.push_str(&format!("; not: {}", worse.join(", ")));
        }
        criteria.push((text, worse.is_empty()));
    }
    if let Some(metric) = chosen.first() {
        let lower_is_better = lower_is_better(metric);
        let score = |j: &Job| {
            j.metrics("test")
                .into_iter()
                .find(|(k, _)| k == metric)
                .map(|(_, v)| v)
        };
        let better = |a: f64, b: f64| if lower_is_better { a < b } else { a > b };
        for label in &labels {
            let curve: Vec<(f64, f64)> = jobs
                .iter()
                .filter(|j| &j.label() == label)
                .filter_map(|j| Some((j.dose, score(j)?)))
                .collect();
            if curve.len() > 1 {
                let mut sorted = curve.clone();
                sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
                let ok = sorted.windows(2).all(|w| better(w[1].1, w[0].1));
                let values: Vec<String> = sorted.iter().map(|(_, v)| fmt_num(*v)).collect();
                criteria.push((
                    format!(
                        "{label}: {metric} (test) improves with dose ({})",
                        values.join(" → ")
                    ),
                    ok,
                ));
            }
        }
        let views: Vec<&str> = {
            let mut v: Vec<&str> = Vec::new();
            for j in &jobs {
                if j.view != "baseline" && !v.contains(&j.view) {
                    v.push(j.view);
                }
            }
            v
        };
        for pair in views.windows(2) {
            for dose in &doses {
                let find = |view: &str| {
                    jobs.iter()
                        .find(|j| j.view == view && j.dose == *dose)
                        .and_then(score)
                };
                if let (Some(a), Some(b)) = (find(pair[0]), find(pair[1])) {
                    criteria.push((
                        format!(
                            "dose {}: {} scores better than {} on {metric} ({} vs {})",
                            dose_label(*dose),
                            pair[0],
                            pair[1],
                            fmt_num(a),
                            fmt_num(b)
                        ),
                        better(a, b),
                    ));
                }
            }
        }
    }
    let _ = writeln!(md, "## Exit criteria\n");
    for (text, ok) in &criteria {
        let _ = writeln!(md, "- [{}] {text}", if *ok { "x" } else { " " });
    }

    // metrics.csv
    let mut csv = String::new();
    let test_cols: Vec<String> = metric_names("test")
        .into_iter()
        .map(|n| format!("test.{n}"))
        .collect();
    let train_cols: Vec<String> = metric_names("train")
        .into_iter()
        .map(|n| format!("train.{n}"))
        .collect();
    let _ = write!(
        csv,
        "dose,view,gridsize,status,epochs_completed,final_loss,bundle_sha256"
    );
    for c in test_cols.iter().chain(&train_cols) {
        let _ = write!(csv, ",{c}");
    }
    csv.push('\n');
    for j in &jobs {
        let trained = j.trained();
        let _ = write!(
            csv,
            "{},{},{},{},{},{},{}",
            j.dose,
            j.view,
            j.gridsize,
            j.status(),
            trained.map_or(String::new(), |t| t.epochs_completed.to_string()),
            trained
                .and_then(|t| t.final_loss)
                .map_or(String::new(), |v| v.to_string()),
            trained.map_or("", |t| t.bundle_sha256.as_str())
        );
        for (split, cols) in [("test", &test_cols), ("train", &train_cols)] {
            let values = j.metrics(split);
            for c in cols.iter() {
                let key = &c[split.len() + 1..];
                let v = values
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(String::new(), |(_, v)| v.to_string());
                let _ = write!(csv, ",{v}");
            }
        }
        csv.push('\n');
    }

    let mut files = vec![
        ("summary.md".to_string(), md),
        ("metrics.csv".to_string(), csv),
    ];
    files.extend(plots);
    Report {
        files,
        criteria,
        unfinished,
        pictures: Vec::new(),
    }
}

/// Loss curves of a result's `loss_history`: a plain array, or an object of arrays per split.
fn loss_curves(history: &Value) -> Vec<(String, Vec<f64>)> {
    let curve = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<f64>>())
    };
    match history {
        Value::Array(_) => curve(history)
            .into_iter()
            .map(|c| (String::new(), c))
            .collect(),
        Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), curve(v)?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads `<artifact_root>/training_manifest.json`, builds the report and writes it under `out`
/// (each file atomically). Returns the report.
pub fn write_report(artifact_root: &Path, out: &Path) -> Result<Report, ReportError> {
    let manifest = read_training_manifest(artifact_root)?;
    let title = artifact_root.file_name().map_or_else(
        || artifact_root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // Pictures are titled by the method (`native:rpie`), which the folder name need not say.
    // The method's name and the pictures read the manifest as JSON, as `compare` gives it.
    let json = serde_json::to_value(&manifest).expect("a parsed manifest serialises");
    let method = method_name(artifact_root, &json);
    let (pictures, refs, notes) = root_pictures(artifact_root, &json, &method);
    let mut report = build_with(&manifest, &title, &refs, &notes);
    report.pictures = pictures;
    for (name, contents) in &report.files {
        write_file(&out.join(name), contents.as_bytes())?;
    }
    for (name, bytes) in &report.pictures {
        write_file(&out.join(name), bytes)?;
    }
    Ok(report)
}

/// PNG files (name, bytes), their references in summary.md, and notes on jobs not pictured.
type RootPictures = (Vec<(String, Vec<u8>)>, Vec<PictureRef>, Vec<String>);

/// The pictures of an artifact root: one figure per successful job and the phase grid, each
/// with a train and a test panel; a note for each job and split whose files could not be read
/// (the rest of the report does not need them).
fn root_pictures(root: &Path, manifest: &Value, title: &str) -> RootPictures {
    let (loaded, notes) = crate::pictures::load_root(root, manifest);
    let mut files = Vec::new();
    let mut refs = Vec::new();
    if let Some(grid) =
        crate::pictures::phase_grid(&loaded, &format!("{title}: phase, train and test split"))
    {
        let file = "pictures/phase_grid.png".to_string();
        refs.push(PictureRef {
            file: file.clone(),
            caption: "Phase of every job, train split above test split: doses as rows, views as \
                      columns, one scale (the \"SSIM grid\"; each image's phase SSIM under it)."
                .into(),
        });
        files.push((file, grid));
    }
    for (id, pictures) in crate::pictures::by_job(&loaded) {
        let label = format!("dose {} {} gs{}", dose_label(id.0), id.1, id.2);
        let Some(png) = crate::pictures::job_figure(&pictures, &label) else {
            continue;
        };
        let file = format!("pictures/{}.png", crate::pictures::job_stem(&id));
        let splits = match pictures.as_slice() {
            [one] => format!("{} split only", one.split),
            _ => "train split above test split".to_string(),
        };
        files.push((file.clone(), png));
        refs.push(PictureRef {
            file,
            caption: format!("{label}: truth, reconstruction and |error|; {splits}."),
        });
    }
    (files, refs, notes)
}

/// How PtychoPINN jobs trained: where (asked and used) and what became of the intensity scale,
/// with what a frozen scale means. Nothing for a study without PtychoPINN jobs.
fn pinn_section(md: &mut String, jobs: &[Job]) {
    let pinn: Vec<(&Job, &PinnFacts)> = jobs
        .iter()
        .filter_map(|j| Some((j, j.trained()?.pinn.as_ref()?)))
        .collect();
    if pinn.is_empty() {
        return;
    }
    let _ = writeln!(md, "## PtychoPINN training\n");
    let _ = writeln!(
        md,
        "| dose | view | gridsize | accelerator | device used | intensity scale (start -> bundle) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let mut frozen = 0;
    for (j, p) in &pinn {
        let scale_text = match &p.intensity_scale {
            Some(scale) => {
                if scale.status == ScaleStatus::Frozen {
                    frozen += 1;
                }
                format!(
                    "{} ({} -> {})",
                    scale_status(scale.status),
                    fmt_num(scale.initial),
                    fmt_num(scale.trained)
                )
            }
            None => "unknown (not scored)".to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            dose_label(j.dose),
            j.view,
            j.gridsize,
            p.accelerator.as_str().replace('|', "\\|"),
            p.device
                .as_deref()
                .unwrap_or("not reported")
                .replace('|', "\\|"),
            scale_text
        );
    }
    let _ = writeln!(md);
    if frozen > 0 {
        let _ = writeln!(
            md,
            "> **Not PtychoPINN as published:** {frozen} job(s) kept PtychoPINN's learnable \
             intensity scale at its start, sqrt(nphotons) / (N / 2). PtychoPINN marks it \
             trainable, but under Keras 3 (what its pins install) the plain `tf.Variable` that \
             holds it is not a trained weight, so the bundle's value equals its start. The \
             network was trained with the scale fixed; a model whose data needs another scale \
             must absorb it in its weights.\n"
        );
    }
}

/// The name `result.json` gives a scale status.
fn scale_status(status: ScaleStatus) -> &'static str {
    match status {
        ScaleStatus::Trained => "trained",
        ScaleStatus::Frozen => "frozen",
        ScaleStatus::Fixed => "fixed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest() -> Value {
        let job = |dose: f64, view: &str, gs: u64, ssim: f64| {
            let dir = format!("run/dose_{dose}/{view}/gs{gs}");
            json!({"dose": dose, "view": view, "gridsize": gs,
                "train_data_path": "c/train.npz", "test_data_path": "c/test.npz",
                "artifact_dir": dir, "log_path": format!("{dir}/train.log"), "result": {
                "status": "success", "backend": "native", "epochs_completed": 3, "final_loss": 0.01,
                "loss_history": {"train": [0.3, 0.1, 0.01]},
                "bundle_path": "native_bundle.npz", "bundle_sha256": "a".repeat(64), "bundle_size_bytes": 10,
                "metrics": {"test": {"phase": {"ssim": ssim, "mae": 1.0 - ssim}}, "train": {"phase": {"ssim": ssim + 0.05}}}}})
        };
        json!({"format_version": 1, "timestamp": "2025-11-04T08:34:26.000000Z",
            "phase_c_root": "c", "phase_d_root": "d", "artifact_root": "run", "backend": "native",
            "dry_run": false, "strict": false,
            "filters": {"dose": null, "view": null, "gridsize": null}, "enumerated_count": 6,
            "skip_summary_path": "skip_summary.json", "jobs": [
            job(1e3, "baseline", 1, 0.2), job(1e3, "dense", 2, 0.5),
            job(1e4, "baseline", 1, 0.4), job(1e4, "dense", 2, 0.7)],
            "skipped_views": [{"dose": 1000.0, "view": "sparse", "reason": "kept 3 | needed 8"}],
            "skipped_count": 1})
    }

    /// The report of `manifest` (JSON of a typed manifest), titled `run`.
    fn report(manifest: &Value) -> Report {
        let manifest: TrainingManifest =
            serde_json::from_value(manifest.clone()).expect("a manifest of format 1");
        build(&manifest, "run")
    }

    #[test]
    fn report_has_tables_plots_and_criteria() {
        let report = report(&manifest());
        let names: Vec<&str> = report.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "summary.md",
                "metrics.csv",
                "plots/quality_phase_ssim.svg",
                "plots/loss_dose_1000.svg",
                "plots/loss_dose_10000.svg"
            ]
        );
        let md = &report.files[0].1;
        assert!(
            md.contains("| 1e+03 | sparse | kept 3 \\| needed 8 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "- [x] baseline gs1: phase.ssim (test) improves with dose (0.2000 → 0.4000)"
            ),
            "{md}"
        );
        assert!(md.contains("- [x] every selected job ended well (4/4)"));
        // One metrics table: each job's train split right above its test split.
        let table = md
            .split("## Metrics (train and test split)\n")
            .nth(1)
            .expect("the metrics table")
            .split("\n## ")
            .next()
            .unwrap();
        assert!(
            table.contains("| dose | view | gs | split | phase.ssim | phase.mae |"),
            "{table}"
        );
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 1e")).collect();
        assert_eq!(
            rows[..2],
            [
                "| 1e+03 | baseline | 1 | train | 0.2500 | - |",
                "| 1e+03 | baseline | 1 | test | 0.2000 | 0.8000 |"
            ],
            "{table}"
        );
        assert_eq!(rows.len(), 4 * 2);
        assert!(
            !md.contains("## Metrics (test split)") && !md.contains("## Metrics (train split)")
        );
        let csv = &report.files[1].1;
        assert_eq!(
            csv.lines().next().unwrap(),
            "dose,view,gridsize,status,epochs_completed,final_loss,bundle_sha256,test.phase.mae,test.phase.ssim,train.phase.ssim"
        );
        assert!(csv.contains("\n1000,dense,2,success,3,0.01,"));
        let svg = &report.files[2].1;
        assert!(
            svg.contains(r#"data-label="dense gs2""#)
                && svg.contains(r#"data-x="10000" data-y="0.7""#),
            "{svg}"
        );
    }

    #[test]
    fn failing_physics_is_reported_not_hidden() {
        let mut m = manifest();
        m["jobs"][2]["result"]["metrics"]["test"]["phase"]["ssim"] = json!(0.1);
        let report = report(&m);
        assert!(
            report
                .criteria
                .iter()
                .any(|(t, ok)| t.starts_with("baseline gs1: phase.ssim") && !ok)
        );
    }

    /// Regression (issue 15, seen with PtychoPINN on pinn-small): every job scored worse than
    /// the object of ones and the report said nothing about it.
    #[test]
    fn a_job_no_better_than_the_flat_start_is_named() {
        let mut m = manifest();
        for (j, (v, flat)) in [(0.2, 0.4), (0.5, 0.4)].into_iter().enumerate() {
            m["jobs"][j]["result"]["metrics"]["test"]["fienup_nrmse"] = json!(v);
            m["jobs"][j]["result"]["metrics"]["test"]["fienup_nrmse_initial"] = json!(flat);
        }
        let report = report(&m);
        let (text, ok) = report
            .criteria
            .iter()
            .find(|(t, _)| t.starts_with("every scored job beats the flat start"))
            .expect("the criterion is there");
        assert!(!ok);
        assert!(
            text.ends_with("(1/2); not: dense gs2 dose 1e+03: 0.5000 vs 0.4000"),
            "{text}"
        );
    }

    #[test]
    fn the_report_says_what_each_view_holds_and_which_frc_is_not_resolved() {
        let mut m = manifest();
        let region = |positions: u64, exposures: f64| {
            json!({"rule": "r", "pixels": 900, "rows": [0, 30], "cols": [0, 30],
                "positions": positions, "mean_exposures": exposures})
        };
        m["jobs"][0]["result"]["metrics"]["test"]["region"] = region(287, 10.9667);
        m["jobs"][1]["result"]["metrics"]["test"]["region"] = region(32, 1.3771);
        m["jobs"][1]["result"]["metrics"]["test"]["phase"]["frc_05"] =
            json!({"frequency": null, "resolution_px": null, "crossed": false});
        m["jobs"][0]["result"]["metrics"]["test"]["phase"]["frc_05"] =
            json!({"frequency": 0.05, "resolution_px": 20.0, "crossed": true});
        let md = report(&m).files[0].1.clone();
        assert!(md.contains("## What each view holds"), "{md}");
        assert!(
            md.contains("| 1e+03 | baseline | 1 | test | 287 | 10.97 | 900 |"),
            "{md}"
        );
        assert!(
            md.contains("| 1e+03 | dense | 2 | test | 32 | 1.38 | 900 |"),
            "{md}"
        );
        let dense_row = md
            .lines()
            .find(|l| l.starts_with("| 1e+03 | dense | 2 | test | 0.5000"))
            .unwrap_or_else(|| panic!("{md}"));
        assert!(dense_row.contains("not resolved"), "{dense_row}");
        let baseline_row = md
            .lines()
            .find(|l| l.starts_with("| 1e+03 | baseline | 1 | test | 0.2000"))
            .unwrap();
        assert!(baseline_row.contains("20.00") && !baseline_row.contains("not resolved"));
        // A job without the key shows a dash, not "not resolved".
        let other = md
            .lines()
            .find(|l| l.starts_with("| 1e+04 | dense | 2 | test | 0.7000"))
            .unwrap();
        assert!(
            other.contains(" - ") && !other.contains("not resolved"),
            "{other}"
        );
    }

    /// A manifest of no format this build reads is refused with a message that says what it
    /// is, not reported with gaps (before the typed manifest, its missing fields printed `?`).
    #[test]
    fn a_manifest_of_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        std::fs::create_dir_all(&root).unwrap();
        let mut m = manifest();
        m.as_object_mut().unwrap().remove("format_version");
        let path = root.join(crate::manifest::MANIFEST_FILE);
        std::fs::write(&path, m.to_string()).unwrap();
        let err = write_report(&root, &dir.path().join("out")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not a training manifest of format 1: it has no format_version",
                path.display()
            )
        );
        m["format_version"] = json!(1);
        m.as_object_mut().unwrap().remove("timestamp");
        std::fs::write(&path, m.to_string()).unwrap();
        let err = write_report(&root, &dir.path().join("out")).unwrap_err();
        assert!(
            err.to_string().contains("missing field `timestamp`"),
            "{err}"
        );
        assert!(!dir.path().join("out").exists());
    }
}
