//! The study report of an artifact root: `summary.md`, `metrics.csv` and SVG plots, as pure
//! functions of `training_manifest.json` read into its typed [`TrainingManifest`] (same
//! manifest, same bytes), and PNG pictures of the reconstructions, pure functions of the files
//! the manifest names.
//!
//! `model.rs` computes what the report says once (rows, tables, charts from `plots.rs`, exit
//! criteria from `criteria.rs`); `markdown.rs` and `csv.rs` render it and `svg.rs` draws its
//! charts.

mod criteria;
mod csv;
mod markdown;
mod model;
mod plots;

use crate::manifest::TrainingManifest;
use crate::method::method_name;
use crate::metrics::Names;
pub use crate::output::{PictureRef, ReportError, read_checked_manifest, read_manifest};
use crate::output::{cores, read_error, write_file, write_file_with};
pub use crate::pictures::{PICTURED_DOSES, Sampling};
use crate::text::dose_label;
use model::{JobData, Model};
use serde_json::{Value, json};
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
}

/// What [`write_report`] wrote: file names only (a report of 100,000 jobs is not held whole).
#[derive(Debug, Clone)]
pub struct Written {
    /// `summary.md`, `metrics.csv`, `plots/*.svg`, map files, in a fixed order.
    pub files: Vec<String>,
    /// `pictures/*.png`.
    pub pictures: Vec<String>,
    /// Exit criteria with their verdicts (also in `summary.md`).
    pub criteria: Vec<(String, bool)>,
    /// Set when the manifest is from a run that did not finish: what to tell the user.
    pub unfinished: Option<String>,
    /// Which doses the pictures show.
    pub sampling: Sampling,
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
    let mut names = Names::default();
    let jobs: Vec<JobData> = manifest
        .jobs
        .iter()
        .map(|j| JobData::of(j.clone(), &mut names))
        .collect();
    let sampling = sampling(&jobs);
    let model = Model::of(manifest, &jobs, &names, title, pictures, notes, &sampling);
    let mut files = vec![
        ("summary.md".to_string(), markdown::summary(&model)),
        ("metrics.csv".to_string(), String::new()),
    ];
    let mut csv = Vec::new();
    csv::metrics(&model, &mut csv).expect("writing to memory");
    files[1].1 = String::from_utf8(csv).expect("the CSV is UTF-8");
    files.extend(
        model
            .charts
            .iter()
            .map(|(name, chart)| (name.clone(), chart.to_svg())),
    );
    Report {
        files,
        criteria: model.criteria,
        unfinished: model.unfinished,
    }
}

/// Which of `jobs` are pictured.
fn sampling(jobs: &[JobData]) -> Sampling {
    Sampling::of(jobs.iter().map(|j| (j.dose, j.view.as_str(), j.gridsize)))
}

/// Reads `<artifact_root>/training_manifest.json`, builds the report and writes it under `out`
/// (each file atomically). Returns what it wrote.
pub fn write_report(artifact_root: &Path, out: &Path) -> Result<Written, ReportError> {
    write_report_with(artifact_root, out, &crate::map::MapSettings::default())
}

/// [`write_report`], with the map (`map.csv`, `maps/*.svg`, linked from summary.md) drawn under
/// `settings` when the study has overlap levels to map ([`crate::map::is_map`]).
///
/// Memory stays bounded at 100,000 jobs: the manifest is streamed and each job kept as the
/// report needs it ([`JobData`]), metrics.csv and each picture are written as made, and
/// pictures are drawn at [`PICTURED_DOSES`] doses at most ([`Sampling`]).
pub fn write_report_with(
    artifact_root: &Path,
    out: &Path,
    settings: &crate::map::MapSettings,
) -> Result<Written, ReportError> {
    let mut names = Names::default();
    let mut jobs: Vec<JobData> = Vec::new();
    let manifest = TrainingManifest::stream(artifact_root, |_, job| {
        jobs.push(JobData::of(job, &mut names));
    })
    .map_err(read_error)?
    .manifest;
    let title = artifact_root.file_name().map_or_else(
        || artifact_root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let sampling = sampling(&jobs);
    // The map's geometry and the pictures read the manifest as JSON: its fields and its doses
    // (not the jobs' results).
    let json = with_doses(&manifest, &jobs);
    // Pictures are titled by the method (`native:rpie`), which the folder name need not say.
    let method = if manifest.backend == "native" {
        let locations = crate::pictures::locations(artifact_root, &json);
        let dirs = jobs.iter().map(|j| j.artifact_dir.to_str().unwrap_or(""));
        crate::method::native_algorithm(&locations, dirs)
            .map_or_else(|| manifest.backend.clone(), |a| format!("native:{a}"))
    } else {
        method_name(artifact_root, &json)
    };
    let (pictures, refs, notes) =
        root_pictures(artifact_root, &json, &jobs, &names, &method, &sampling, out)?;
    let model = Model::of(&manifest, &jobs, &names, &title, &refs, &notes, &sampling);
    let mut summary = markdown::summary(&model);
    let mut files = vec!["summary.md".to_string(), "metrics.csv".to_string()];
    write_file_with(out, "metrics.csv", |w| csv::metrics(&model, w))?;
    for (name, chart) in &model.charts {
        write_file(out, name, chart.to_svg().as_bytes())?;
        files.push(name.clone());
    }
    // The map reads Phase D's overlap reports; a study without overlap levels gets none and its
    // report keeps its bytes.
    let geometry = crate::map::read_geometry(artifact_root, &json);
    // Cells only where a view has an overlap target: no map without one.
    let cells = if geometry.values().any(|g| g.targeted) {
        crate::map::cells(&scored_jobs(&jobs, &names), &geometry)
    } else {
        Vec::new()
    };
    let map_files = crate::map::files(&cells, &method, settings);
    if !map_files.is_empty() {
        let mut section = String::from(
            "\n## Dose x overlap map\n\nTidy cells: [map.csv](map.csv). Heatmaps of the test split over \
             dose (columns) and realised overlap (rows); each cell shows its value and its photons \
             per pixel (dose x patterns / scanned pixels); dashed lines join equal photon budgets; \
             the thick line is the success boundary at test Fienup NRMSE <= ",
        );
        section.push_str(&crate::text::fmt_num(settings.success_nrmse));
        section.push_str(".\n\n");
        for (name, _) in map_files.iter().skip(1) {
            section.push_str(&format!("![{name}]({name})\n\n"));
        }
        section.push_str(&crate::map::budget_tables(&cells));
        summary.push_str(&section);
    }
    write_file(out, "summary.md", summary.as_bytes())?;
    for (name, contents) in &map_files {
        write_file(out, name, contents.as_bytes())?;
        files.push(name.clone());
    }
    Ok(Written {
        files,
        pictures,
        criteria: model.criteria,
        unfinished: model.unfinished,
        sampling,
    })
}

/// The manifest's fields with a job per dose giving only its dose: what the map's geometry
/// (which reads Phase D's report of each dose) and the pictures' locations read, as JSON.
fn with_doses(manifest: &TrainingManifest, jobs: &[JobData]) -> Value {
    let mut json = serde_json::to_value(manifest).expect("a parsed manifest serialises");
    let mut seen = std::collections::HashSet::new();
    json["jobs"] = jobs
        .iter()
        .filter(|j| seen.insert(j.dose.to_bits()))
        .map(|j| json!({ "dose": j.dose }))
        .collect();
    json
}

/// The jobs as `map::cells` reads them: identity, status and each split's numeric metrics
/// (by dotted name, which flattens to the same names).
fn scored_jobs(jobs: &[JobData], names: &Names) -> Value {
    let jobs: Vec<Value> = jobs
        .iter()
        .map(|j| {
            json!({"dose": j.dose, "view": j.view, "gridsize": j.gridsize,
                "result": {"status": j.result.status(), "metrics": j.metrics_json(names)}})
        })
        .collect();
    json!({ "jobs": jobs })
}

/// Picture files written, their references in summary.md, and notes on jobs not pictured.
type RootPictures = (Vec<String>, Vec<PictureRef>, Vec<String>);

/// The pictures of an artifact root, written under `out` as they are drawn: one figure per
/// successful job at a pictured dose, and the phase grid of those, each with a train and a
/// test panel; a note for each job and split whose files could not be read (the rest of the
/// report does not need them). `json` is [`with_doses`].
fn root_pictures(
    root: &Path,
    json: &Value,
    jobs: &[JobData],
    names: &Names,
    title: &str,
    sampling: &Sampling,
    out: &Path,
) -> Result<RootPictures, ReportError> {
    let locations = crate::pictures::locations(root, json);
    let mut files = Vec::new();
    let mut refs = Vec::new();
    let mut notes = Vec::new();
    // What the phase grid needs of each picture (its phase images), kept; the rest of each
    // job's images goes once its figure is written.
    let mut grid = Vec::new();
    let shown: Vec<&JobData> = jobs
        .iter()
        .filter(|j| sampling.pictures(j.dose, &j.view, j.gridsize))
        .collect();
    // Each job's images are loaded, registered and drawn on its own core (the report's
    // longest part); files, captions and notes are then taken in job order.
    let drawn = runner::map_ordered(&shown, cores(), |j| {
        let job = j.picture_json(names);
        let mut pictures = Vec::new();
        let mut notes = Vec::new();
        for split in crate::pictures::SPLITS {
            match crate::pictures::load_job(&locations, &job, split) {
                Ok(Some(p)) => pictures.push(p),
                Ok(None) => {}
                Err(e) => notes.push(format!(
                    "dose {} {} gs{}, {split} split: {e}",
                    dose_label(j.dose),
                    j.view,
                    j.gridsize
                )),
            }
        }
        let figure = pictures.first().and_then(|first| {
            let id = first.id.clone();
            let label = format!("dose {} {} gs{}", dose_label(id.0), id.1, id.2);
            let shown: Vec<&crate::pictures::JobPicture> = pictures.iter().collect();
            let png = crate::pictures::job_figure(&shown, &label)?;
            let splits = match pictures.as_slice() {
                [one] => format!("{} split only", one.split),
                _ => "train split above test split".to_string(),
            };
            Some((id, label, splits, png))
        });
        let phases: Vec<_> = pictures
            .into_iter()
            .map(crate::pictures::phase_only)
            .collect();
        (notes, figure, phases)
    });
    for (job_notes, figure, phases) in drawn {
        notes.extend(job_notes);
        if let Some((id, label, splits, png)) = figure {
            let file = format!("pictures/{}.png", crate::pictures::job_stem(&id));
            write_file(out, &file, &png)?;
            files.push(file.clone());
            refs.push(PictureRef {
                file,
                caption: format!("{label}: truth, reconstruction and |error|; {splits}."),
            });
        }
        grid.extend(phases);
    }
    if let Some(png) =
        crate::pictures::phase_grid(&grid, &format!("{title}: phase, train and test split"))
    {
        let file = "pictures/phase_grid.png".to_string();
        write_file(out, &file, &png)?;
        files.insert(0, file.clone());
        refs.insert(
            0,
            PictureRef {
                file,
                caption: "Phase of every job, train split above test split: doses as rows, \
                          views as columns, one scale (the \"SSIM grid\"; each image's phase \
                          SSIM under it)."
                    .into(),
            },
        );
    }
    Ok((files, refs, notes))
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
    /// the object of ones and the report said nothing about it. And a job level with it (the
    /// supervised model's mean patch: 0.4058 against 0.4057) does not beat it.
    #[test]
    fn a_job_no_better_than_the_flat_start_is_named() {
        let mut m = manifest();
        for (j, (v, flat)) in [(0.2, 0.4), (0.5, 0.4), (0.4003, 0.4)]
            .into_iter()
            .enumerate()
        {
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
        assert!(text.contains("(1/3); not: "), "{text}");
        assert!(
            text.contains("dense gs2 dose 1e+03: 0.5000 vs 0.4000 (above)"),
            "{text}"
        );
        assert!(text.contains(": 0.4003 vs 0.4000 (level)"), "{text}");
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
