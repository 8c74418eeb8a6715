//! Pictures of reconstructions: per job, truth / reconstruction / error (amplitude and phase);
//! per method, a dose x view grid of phase images; per dose and view in a comparison, the truth
//! and every method side by side. Every image is registered and cropped exactly as the metrics
//! score it (`recon::register_to_file`), and images that are compared share a colour scale,
//! set by the truth's range (0.5% to 99.5%).

use crate::png::{Canvas, Colormap, GLYPH_H, INK, Scale, text_width};
use ndarray::{Array2, Ix2};
use num_complex::Complex32;
use recon::{EvalOptions, Registered};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The split pictured (the held-out one, as in the report's headline tables).
pub const SPLIT: &str = "test";

/// A job's identity: dose, view, gridsize.
pub type JobId = (f64, String, u64);

/// File stem of a job's pictures: `dose_1000_dense_gs2`.
pub fn job_stem(id: &JobId) -> String {
    format!("dose_{}_{}_gs{}", id.0.round() as i64, id.1, id.2)
}

/// A successful job's reconstruction of [`SPLIT`], registered to its ground truth.
#[derive(Clone, Debug)]
pub struct JobPicture {
    /// Which job.
    pub id: JobId,
    /// The registered images.
    pub images: Registered,
    /// The job's phase SSIM of the split, when its result has one.
    pub phase_ssim: Option<f64>,
}

/// A path recorded in a manifest, resolved for reading: as recorded when it exists, else (a
/// relative path written from another working folder) against each ancestor of `root`.
pub fn resolve(recorded: &Path, root: &Path) -> PathBuf {
    if recorded.exists() || recorded.is_absolute() {
        return recorded.to_path_buf();
    }
    let base = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    base.ancestors()
        .map(|a| a.join(recorded))
        .find(|p| p.exists())
        .unwrap_or_else(|| recorded.to_path_buf())
}

/// The artifact dir of `job` under the artifact root `root` as given now: the manifest records
/// it under the root the run was given, which may have been another path to the same folder.
pub fn job_dir(root: &Path, manifest: &Value, job: &Value) -> PathBuf {
    let recorded = PathBuf::from(job["artifact_dir"].as_str().unwrap_or(""));
    let recorded_root = PathBuf::from(manifest["artifact_root"].as_str().unwrap_or(""));
    match recorded.strip_prefix(&recorded_root) {
        Ok(rest) => root.join(rest),
        Err(_) => resolve(&recorded, root),
    }
}

/// Reads `<split>_object` (or `object`) of a reconstruction NPZ.
pub fn read_object(path: &Path, split: &str) -> Result<Array2<Complex32>, String> {
    let mut npz = npz_contract::NpzReader::open(path).map_err(|e| e.to_string())?;
    let member = format!("{split}_object");
    let name = if npz.member(&member).is_some() {
        member
    } else {
        "object".to_string()
    };
    npz.read::<Complex32>(&name)
        .map_err(|e| e.to_string())?
        .into_dimensionality::<Ix2>()
        .map_err(|_| format!("{}: `{name}` must be a 2-d complex array", path.display()))
}

/// Loads the picture of one manifest job; `Ok(None)` when the job has no reconstruction
/// (dry run, failure), `Err` when its files cannot be read.
pub fn load_job(root: &Path, manifest: &Value, job: &Value) -> Result<Option<JobPicture>, String> {
    let result = &job["result"];
    if result["status"] != "success" {
        return Ok(None);
    }
    // PtychoPINN results name their reconstruction; native ones before that field had the
    // bundle, which holds the objects.
    let Some(rel) = result["reconstruction_path"].as_str().or_else(|| {
        result["bundle_path"]
            .as_str()
            .filter(|p| p.ends_with(".npz"))
    }) else {
        return Ok(None);
    };
    let id: JobId = (
        job["dose"].as_f64().unwrap_or(f64::NAN),
        job["view"].as_str().unwrap_or("?").to_string(),
        job["gridsize"].as_u64().unwrap_or(0),
    );
    let recon_path = job_dir(root, manifest, job).join(rel);
    let truth = resolve(
        Path::new(job[format!("{SPLIT}_data_path")].as_str().unwrap_or("")),
        root,
    );
    let object = read_object(&recon_path, SPLIT)?;
    let images = recon::register_to_file(&truth, object.view(), &EvalOptions::default())
        .map_err(|e| format!("registering {}: {e}", recon_path.display()))?;
    Ok(Some(JobPicture {
        id,
        images,
        phase_ssim: result["metrics"][SPLIT]["phase"]["ssim"].as_f64(),
    }))
}

/// Loads every successful job of an artifact root, in manifest order; a note (job and
/// reason) for each that cannot be pictured.
pub fn load_root(root: &Path, manifest: &Value) -> (Vec<JobPicture>, Vec<String>) {
    let mut pictures = Vec::new();
    let mut notes = Vec::new();
    for job in manifest["jobs"].as_array().into_iter().flatten() {
        match load_job(root, manifest, job) {
            Ok(Some(p)) => pictures.push(p),
            Ok(None) => {}
            Err(e) => notes.push(format!(
                "dose {} {} gs{}: {e}",
                job["dose"]
                    .as_f64()
                    .map_or("?".into(), crate::report::dose_label),
                job["view"].as_str().unwrap_or("?"),
                job["gridsize"]
            )),
        }
    }
    (pictures, notes)
}

/// One image of a figure.
struct Cell {
    values: Array2<f64>,
    mask: Array2<bool>,
    /// Index into the row's scales.
    scale: usize,
    note: Option<String>,
}

/// A row of a figure: its label, its cells (a gap where `None`), and its colour bars.
struct Row {
    label: String,
    cells: Vec<Option<Cell>>,
    scales: Vec<(String, Scale)>,
}

/// The value at quantile `q` of the masked values of `images` (0.5% and 99.5% keep one wild
/// pixel from flattening a whole scale).
fn quantile<'a>(images: impl Iterator<Item = (&'a Array2<f64>, &'a Array2<bool>)>, q: f64) -> f64 {
    let mut v: Vec<f64> = images
        .flat_map(|(a, m)| a.iter().zip(m).filter(|e| *e.1).map(|e| *e.0))
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The truth's range sets the shared scale: a noisy reconstruction then shows its outliers
/// saturated instead of fading the truth and every better method to grey.
fn amplitude_scale(images: &[&Registered]) -> Scale {
    let it = || images.iter().map(|r| (&r.truth_amplitude, &r.mask));
    Scale::new(
        Colormap::Viridis,
        quantile(it(), 0.005),
        quantile(it(), 0.995),
    )
}

/// Symmetric about zero (the truth's phase is centred on its mean), from the truth's range.
fn phase_scale(images: &[&Registered]) -> Scale {
    let it = || images.iter().map(|r| (&r.truth_phase, &r.mask));
    let m = quantile(it(), 0.005).abs().max(quantile(it(), 0.995).abs());
    Scale::new(Colormap::CoolWarm, -m, m)
}

fn error_scale(errors: &[(&Array2<f64>, &Array2<bool>)]) -> Scale {
    let hi = quantile(errors.iter().copied(), 0.995);
    Scale::new(Colormap::Inferno, 0.0, hi)
}

fn cell(values: Array2<f64>, mask: &Array2<bool>, scale: usize, note: Option<String>) -> Cell {
    Cell {
        values,
        mask: mask.clone(),
        scale,
        note,
    }
}

/// Per job: truth, reconstruction and |error| of the amplitude and the phase.
pub fn job_figure(p: &JobPicture, title: &str) -> Vec<u8> {
    let r = &p.images;
    let amp_err = (&r.amplitude - &r.truth_amplitude).mapv(f64::abs);
    let phase_err = (&r.phase - &r.truth_phase).mapv(f64::abs);
    let amp = amplitude_scale(&[r]);
    let phase = phase_scale(&[r]);
    let rows = vec![
        Row {
            label: "amplitude".into(),
            scales: vec![
                ("amplitude".into(), amp),
                ("|error|".into(), error_scale(&[(&amp_err, &r.mask)])),
            ],
            cells: vec![
                Some(cell(r.truth_amplitude.clone(), &r.mask, 0, None)),
                Some(cell(r.amplitude.clone(), &r.mask, 0, None)),
                Some(cell(amp_err, &r.mask, 1, None)),
            ],
        },
        Row {
            label: "phase (rad)".into(),
            scales: vec![
                ("phase".into(), phase),
                ("|error|".into(), error_scale(&[(&phase_err, &r.mask)])),
            ],
            cells: vec![
                Some(cell(r.truth_phase.clone(), &r.mask, 0, None)),
                Some(cell(
                    r.phase.clone(),
                    &r.mask,
                    0,
                    p.phase_ssim.map(|s| format!("ssim {s:.3}")),
                )),
                Some(cell(phase_err, &r.mask, 1, None)),
            ],
        },
    ];
    let columns = ["truth", "reconstruction", "|error|"].map(String::from);
    figure(title, &columns, &rows).to_png()
}

/// Per method: phase images of every job, doses as rows and views as columns, on one scale,
/// with the truth first in each row.
pub fn phase_grid(pictures: &[JobPicture], title: &str) -> Option<Vec<u8>> {
    let mut doses: Vec<f64> = Vec::new();
    let mut views: Vec<(String, u64)> = Vec::new();
    for p in pictures {
        if !doses.contains(&p.id.0) {
            doses.push(p.id.0);
        }
        let v = (p.id.1.clone(), p.id.2);
        if !views.contains(&v) {
            views.push(v);
        }
    }
    if pictures.is_empty() {
        return None;
    }
    let all: Vec<&Registered> = pictures.iter().map(|p| &p.images).collect();
    let scale = phase_scale(&all);
    let rows = doses
        .iter()
        .enumerate()
        .map(|(k, dose)| {
            let in_row: Vec<&JobPicture> = pictures.iter().filter(|p| p.id.0 == *dose).collect();
            let truth = in_row
                .first()
                .map(|p| cell(p.images.truth_phase.clone(), &p.images.mask, 0, None));
            let mut cells = vec![truth];
            for (view, gs) in &views {
                cells.push(
                    in_row
                        .iter()
                        .find(|p| &p.id.1 == view && p.id.2 == *gs)
                        .map(|p| {
                            cell(
                                p.images.phase.clone(),
                                &p.images.mask,
                                0,
                                p.phase_ssim.map(|s| format!("ssim {s:.3}")),
                            )
                        }),
                );
            }
            Row {
                label: format!("dose {}", crate::report::dose_label(*dose)),
                cells,
                scales: if k == 0 {
                    vec![("phase".into(), scale)]
                } else {
                    Vec::new()
                },
            }
        })
        .collect::<Vec<_>>();
    let mut columns = vec!["truth".to_string()];
    columns.extend(views.iter().map(|(v, g)| format!("{v} gs{g}")));
    Some(figure(title, &columns, &rows).to_png())
}

/// In a comparison: for one job, the truth and each method's reconstruction (amplitude, phase,
/// |phase error|), each row on one scale. `methods` pairs a method's name with its picture.
pub fn side_by_side(methods: &[(String, Option<&JobPicture>)], title: &str) -> Option<Vec<u8>> {
    let present: Vec<&JobPicture> = methods.iter().filter_map(|m| m.1).collect();
    let first = present.first()?;
    let images: Vec<&Registered> = present.iter().map(|p| &p.images).collect();
    let errors: Vec<Array2<f64>> = images
        .iter()
        .map(|r| (&r.phase - &r.truth_phase).mapv(f64::abs))
        .collect();
    let err_scale = error_scale(
        &images
            .iter()
            .zip(&errors)
            .map(|(r, e)| (e, &r.mask))
            .collect::<Vec<_>>(),
    );
    let t = &first.images;
    let mut amp_cells = vec![Some(cell(t.truth_amplitude.clone(), &t.mask, 0, None))];
    let mut phase_cells = vec![Some(cell(t.truth_phase.clone(), &t.mask, 0, None))];
    let mut err_cells = vec![None];
    for (_, p) in methods {
        amp_cells.push(p.map(|p| cell(p.images.amplitude.clone(), &p.images.mask, 0, None)));
        phase_cells.push(p.map(|p| {
            cell(
                p.images.phase.clone(),
                &p.images.mask,
                0,
                p.phase_ssim.map(|s| format!("ssim {s:.3}")),
            )
        }));
        err_cells.push(p.map(|p| {
            cell(
                (&p.images.phase - &p.images.truth_phase).mapv(f64::abs),
                &p.images.mask,
                0,
                None,
            )
        }));
    }
    let rows = vec![
        Row {
            label: "amplitude".into(),
            cells: amp_cells,
            scales: vec![("amplitude".into(), amplitude_scale(&images))],
        },
        Row {
            label: "phase (rad)".into(),
            cells: phase_cells,
            scales: vec![("phase".into(), phase_scale(&images))],
        },
        Row {
            label: "|phase error|".into(),
            cells: err_cells,
            scales: vec![("rad".into(), err_scale)],
        },
    ];
    let mut columns = vec!["truth".to_string()];
    columns.extend(methods.iter().map(|m| m.0.clone()));
    Some(figure(title, &columns, &rows).to_png())
}

const MARGIN: usize = 10;
const GAP: usize = 12;
const BAR_W: usize = 12;
/// Room for a colour bar's value labels.
const BAR_TEXT: usize = 60;
const LINE: usize = GLYPH_H + 5;

/// Lays out a figure: title, column headers, and per row a label, cells and colour bars.
fn figure(title: &str, columns: &[String], rows: &[Row]) -> Canvas {
    let cells = || rows.iter().flat_map(|r| r.cells.iter().flatten());
    let max_h = cells().map(|c| c.values.nrows()).max().unwrap_or(1);
    let max_w = cells().map(|c| c.values.ncols()).max().unwrap_or(1);
    // Small crops are magnified (nearest neighbour) so a pixel stays a visible square.
    let zoom = (240 / max_h.max(max_w)).clamp(1, 4);
    let header_w = columns.iter().map(|c| text_width(c, 1)).max().unwrap_or(0);
    let cell_w = (max_w * zoom).max(header_w);
    let cell_h = max_h * zoom;
    let has_notes = cells().any(|c| c.note.is_some());
    let row_h = cell_h + if has_notes { LINE } else { 0 } + LINE + GAP;
    let label_w = rows
        .iter()
        .map(|r| text_width(&r.label, 1))
        .max()
        .unwrap_or(0);
    let bars = rows.iter().map(|r| r.scales.len()).max().unwrap_or(0);
    let left = MARGIN + label_w + GAP;
    let width = (left + columns.len() * (cell_w + GAP) + bars * (BAR_W + BAR_TEXT) + MARGIN)
        .max(MARGIN * 2 + text_width(title, 2));
    let top = MARGIN + 2 * GLYPH_H + GAP;
    let height = top + LINE + rows.len() * row_h + MARGIN;
    let mut canvas = Canvas::new(width, height);
    canvas.text(MARGIN, MARGIN, title, 2, INK);
    for (k, name) in columns.iter().enumerate() {
        let x = left + k * (cell_w + GAP) + (cell_w - text_width(name, 1)) / 2;
        canvas.text(x, top, name, 1, INK);
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + LINE + i * row_h;
        canvas.text(MARGIN, y + cell_h / 2 - GLYPH_H / 2, &row.label, 1, INK);
        for (k, c) in row.cells.iter().enumerate() {
            let Some(c) = c else { continue };
            let (h, w) = (c.values.nrows() * zoom, c.values.ncols() * zoom);
            let x = left + k * (cell_w + GAP) + (cell_w - w) / 2;
            let yy = y + (cell_h - h) / 2;
            let scale = row
                .scales
                .get(c.scale)
                .or(rows[0].scales.first())
                .map(|s| s.1);
            if let Some(scale) = scale {
                canvas.image(x, yy, &c.values, &c.mask, &scale, zoom);
            }
            if let Some(note) = &c.note {
                let nx = left + k * (cell_w + GAP) + (cell_w - text_width(note, 1)) / 2;
                canvas.text(nx, y + cell_h + 4, note, 1, INK);
            }
        }
        for (b, (name, scale)) in row.scales.iter().enumerate() {
            let x = left + columns.len() * (cell_w + GAP) + b * (BAR_W + BAR_TEXT);
            canvas.text(x, y, name, 1, INK);
            let bar_top = y + LINE;
            let bar_h = cell_h.saturating_sub(LINE).max(3 * GLYPH_H);
            canvas.colour_bar(x, bar_top, BAR_W, bar_h, scale);
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(shift: f64) -> Registered {
        let (h, w) = (20, 24);
        Registered {
            rows: [0, h],
            cols: [0, w],
            mask: Array2::from_shape_fn((h, w), |(r, c)| (r + c) % 7 != 0),
            truth_amplitude: Array2::from_shape_fn((h, w), |(r, _)| r as f64 / h as f64),
            truth_phase: Array2::from_shape_fn((h, w), |(_, c)| c as f64 / w as f64 - 0.5),
            amplitude: Array2::from_shape_fn((h, w), |(r, _)| r as f64 / h as f64 + shift),
            phase: Array2::from_shape_fn((h, w), |(_, c)| c as f64 / w as f64 - 0.5 + shift),
        }
    }

    fn decode(bytes: &[u8]) -> (u32, u32) {
        let reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        (reader.info().width, reader.info().height)
    }

    #[test]
    fn figures_are_deterministic_pngs() {
        let p = JobPicture {
            id: (1e3, "dense".into(), 2),
            images: registered(0.05),
            phase_ssim: Some(0.5),
        };
        let a = job_figure(&p, "dose 1e+03 dense gs2");
        assert_eq!(a, job_figure(&p, "dose 1e+03 dense gs2"));
        let (w, h) = decode(&a);
        assert!(w > 3 * 24 * 4 && h > 2 * 20 * 4, "{w} x {h}");
        let q = JobPicture {
            id: (1e4, "dense".into(), 2),
            ..p.clone()
        };
        let grid = phase_grid(&[p.clone(), q], "grid").unwrap();
        decode(&grid);
        let sbs = side_by_side(&[("a".into(), Some(&p)), ("b".into(), None)], "x").unwrap();
        decode(&sbs);
        assert!(side_by_side(&[("a".into(), None)], "x").is_none());
        assert!(phase_grid(&[], "x").is_none());
    }

    #[test]
    fn shared_scales_come_from_the_truth() {
        let r = registered(0.2);
        let s = amplitude_scale(&[&r]);
        assert!(s.lo <= 0.01 && (0.9..1.0).contains(&s.hi), "{s:?}");
        let s = phase_scale(&[&r]);
        assert_eq!(s.lo, -s.hi);
        assert!((0.45..=0.5).contains(&s.hi), "{s:?}");
    }

    #[test]
    fn stems_name_the_job() {
        assert_eq!(job_stem(&(1e5, "dense".into(), 2)), "dose_100000_dense_gs2");
    }
}
