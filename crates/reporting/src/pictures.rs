//! Pictures of reconstructions: per job, truth / reconstruction / error (amplitude and phase);
//! per method, a dose x view grid of phase images; per dose and view in a comparison, the truth
//! and every method side by side. Every figure has a panel per split, the train split above
//! the test split (a self-supervised method's fit above its generalisation; a solver's
//! reconstruction of each split). Every image is registered and cropped exactly as the metrics
//! score it (`recon::register_to_file`), and images that are compared share a colour scale,
//! set by the truth's range (0.5% to 99.5%) over both splits.

use crate::png::{Canvas, Colormap, GLYPH_H, INK, Scale, text_width};
use ndarray::{Array2, Ix2};
use num_complex::Complex32;
use recon::{EvalOptions, Registered};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The splits pictured, in the order of their panels (and of the report's tables).
pub use crate::metrics::SPLITS;

/// A job's identity: dose, view, gridsize.
pub type JobId = (f64, String, u64);

/// File stem of a job's pictures: `dose_1000_dense_gs2`.
pub fn job_stem(id: &JobId) -> String {
    format!("dose_{}_{}_gs{}", id.0.round() as i64, id.1, id.2)
}

/// A successful job's reconstruction of one split, registered to that split's ground truth.
#[derive(Clone, Debug)]
pub struct JobPicture {
    /// Which job.
    pub id: JobId,
    /// Which split (one of [`SPLITS`]).
    pub split: &'static str,
    /// The registered images.
    pub images: Registered,
    /// The job's phase SSIM of the split, when its result has one.
    pub phase_ssim: Option<f64>,
}

/// Where the paths of `manifest` (read from the artifact root `root`, as JSON) are read now:
/// the relocation rule, confined ([`crate::manifest::Locations`]).
pub fn locations(root: &Path, manifest: &Value) -> crate::manifest::Locations {
    let field = |key: &str| manifest[key].as_str().unwrap_or("").to_string();
    crate::manifest::Locations::new(
        root,
        &field("artifact_root"),
        &field("phase_c_root"),
        &field("phase_d_root"),
    )
}

/// The artifact dir of `job` now: the manifest records it under the root the run was given,
/// which may have been another path to the same folder ([`crate::manifest::relocate`]);
/// refused outside the root or through a link.
pub fn job_dir(locations: &crate::manifest::Locations, job: &Value) -> Result<PathBuf, String> {
    locations.job_dir(Path::new(job["artifact_dir"].as_str().unwrap_or("")))
}

/// Reads `<split>_object` (or `object`, one object on the objectGuess grid for both splits)
/// of a reconstruction NPZ.
pub fn read_object(path: &Path, split: &str) -> Result<Array2<Complex32>, String> {
    // A regular file, not a link (the reader itself refuses devices and FIFOs).
    npz_contract::confine::open_regular(path).map_err(|e| e.to_string())?;
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

/// Loads the picture of one split of one manifest job: its reconstruction from the result's
/// `reconstruction_path` (else the native bundle), registered to the split's data file (the
/// job's `<split>_data_path`: objectGuess, probeGuess and positions define the scored region).
/// `Ok(None)` when the job has no reconstruction (dry run, failure), `Err` when its files
/// cannot be read.
pub fn load_job(
    locations: &crate::manifest::Locations,
    job: &Value,
    split: &'static str,
) -> Result<Option<JobPicture>, String> {
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
    // Both only inside their roots, through no link, and only if regular files.
    let recon_path = npz_contract::confine::join(&job_dir(locations, job)?, Path::new(rel))
        .map_err(|e| e.to_string())?;
    let truth = locations.input(Path::new(
        job[format!("{split}_data_path")].as_str().unwrap_or(""),
    ))?;
    npz_contract::confine::open_regular(&truth).map_err(|e| e.to_string())?;
    let object = read_object(&recon_path, split)?;
    let images = recon::register_to_file(&truth, object.view(), &EvalOptions::default())
        .map_err(|e| format!("registering {}: {e}", recon_path.display()))?;
    Ok(Some(JobPicture {
        id,
        split,
        images,
        phase_ssim: result["metrics"][split]["phase"]["ssim"].as_f64(),
    }))
}

/// Most doses a report pictures (job figures, phase grid, loss charts): a sweep of more is
/// pictured at this many doses spread evenly, as hundreds of figures per dose are neither
/// readable nor bounded in time and memory. Tables, metrics.csv and quality charts keep every
/// job.
pub const PICTURED_DOSES: usize = 8;

/// Which jobs a report pictures: at most [`PICTURED_DOSES`] doses and as many view and
/// gridsize combinations, each spread evenly over those there are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sampling {
    /// The doses pictured, ascending.
    pub pictured: Vec<f64>,
    /// The doses not pictured, ascending (none when there are few).
    pub left_out: Vec<f64>,
    /// The view and gridsize combinations pictured, in the order the jobs list them.
    pub labels: Vec<(String, u32)>,
    /// How many combinations are not pictured (none when there are few).
    pub labels_left_out: usize,
    /// Jobs not pictured.
    pub jobs_left_out: usize,
}

/// Which of `n` items, in order, are kept: all when at most [`PICTURED_DOSES`], else that many
/// spread evenly (the first and last among them).
fn spread(n: usize) -> std::collections::BTreeSet<usize> {
    if n <= PICTURED_DOSES {
        return (0..n).collect();
    }
    (0..PICTURED_DOSES)
        .map(|k| (k * (n - 1) + (PICTURED_DOSES - 1) / 2) / (PICTURED_DOSES - 1))
        .collect()
}

impl Sampling {
    /// Of the jobs `ids` (dose, view, gridsize).
    pub fn of<'v>(ids: impl Iterator<Item = (f64, &'v str, u32)> + Clone) -> Sampling {
        let mut seen = std::collections::HashSet::new();
        let mut doses: Vec<f64> = ids
            .clone()
            .map(|(d, _, _)| d)
            .filter(|d| seen.insert(d.to_bits()))
            .collect();
        doses.sort_by(f64::total_cmp);
        let mut seen = std::collections::HashSet::new();
        let labels: Vec<(&str, u32)> = ids
            .clone()
            .map(|(_, v, g)| (v, g))
            .filter(|l| seen.insert(*l))
            .collect();
        let (keep_doses, keep_labels) = (spread(doses.len()), spread(labels.len()));
        let (pictured, left_out): (Vec<f64>, Vec<f64>) = {
            let (kept, not) =
                (0..doses.len()).partition::<Vec<usize>, _>(|i| keep_doses.contains(i));
            (
                kept.into_iter().map(|i| doses[i]).collect(),
                not.into_iter().map(|i| doses[i]).collect(),
            )
        };
        let mut sampling = Sampling {
            pictured,
            left_out,
            labels: keep_labels
                .iter()
                .map(|&i| (labels[i].0.to_string(), labels[i].1))
                .collect(),
            labels_left_out: labels.len() - keep_labels.len(),
            jobs_left_out: 0,
        };
        sampling.jobs_left_out = ids
            .filter(|(d, v, g)| !sampling.pictures(*d, v, *g))
            .count();
        sampling
    }

    /// Whether some jobs are not pictured.
    pub fn is_sampled(&self) -> bool {
        !self.left_out.is_empty() || self.labels_left_out > 0
    }

    /// Says in `md` which doses and combinations are pictured and how many jobs are not
    /// (nothing when every job is): `missing` is what an unpictured job lacks, `csv` the file
    /// that still has every job.
    pub fn describe(&self, md: &mut String, missing: &str, csv: &str) {
        use std::fmt::Write as _;
        let doses = |doses: &[f64]| {
            doses
                .iter()
                .map(|d| crate::text::dose_label(*d))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.left_out.is_empty() {
            let _ = writeln!(
                md,
                "Pictured at {} of {} doses, spread evenly: {}. Not pictured: the {} other doses: {}.\n",
                self.pictured.len(),
                self.pictured.len() + self.left_out.len(),
                doses(&self.pictured),
                self.left_out.len(),
                doses(&self.left_out)
            );
        }
        if self.labels_left_out > 0 {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(v, g)| format!("{v} gs{g}"))
                .collect();
            let _ = writeln!(
                md,
                "Pictured at {} of {} view and gridsize combinations, spread evenly: {}. Not \
                 pictured: the {} others.\n",
                labels.len(),
                labels.len() + self.labels_left_out,
                labels.join(", "),
                self.labels_left_out
            );
        }
        if self.is_sampled() {
            let _ = writeln!(
                md,
                "{} job(s) are not pictured ({missing}); the tables, {csv} and the quality \
                 plots have every job.\n",
                self.jobs_left_out
            );
        }
    }

    /// Whether the job `dose`, `view`, `gridsize` is pictured.
    pub fn pictures(&self, dose: f64, view: &str, gridsize: u32) -> bool {
        (self.left_out.is_empty() || self.pictured.iter().any(|d| d.to_bits() == dose.to_bits()))
            && (self.labels_left_out == 0
                || self.labels.iter().any(|(v, g)| v == view && *g == gridsize))
    }
}

/// `picture` with only what [`phase_grid`] draws (its phase, its truth's phase and the mask):
/// the grid of a large study keeps one per job and split pictured.
pub fn phase_only(mut picture: JobPicture) -> JobPicture {
    picture.images.amplitude = Array2::zeros((0, 0));
    picture.images.truth_amplitude = Array2::zeros((0, 0));
    picture
}

/// The jobs of `pictures` in order of first appearance, each with its pictures (one per split
/// it has, in [`SPLITS`] order).
pub fn by_job(pictures: &[JobPicture]) -> Vec<(JobId, Vec<&JobPicture>)> {
    let mut out: Vec<(JobId, Vec<&JobPicture>)> = Vec::new();
    for p in pictures {
        match out.iter_mut().find(|(id, _)| *id == p.id) {
            Some((_, ps)) => ps.push(p),
            None => out.push((p.id.clone(), vec![p])),
        }
    }
    for (_, ps) in &mut out {
        ps.sort_by_key(|p| split_rank(p.split));
    }
    out
}

fn split_rank(split: &str) -> usize {
    SPLITS
        .iter()
        .position(|s| *s == split)
        .unwrap_or(SPLITS.len())
}

/// The heading of a split's panel.
fn panel_heading(split: &str) -> String {
    format!("{split} split")
}

/// One image of a figure.
struct Cell {
    values: Array2<f64>,
    mask: Array2<bool>,
    /// Index into the row's scales.
    scale: usize,
    note: Option<String>,
}

/// A row of a figure: the heading of the panel it opens (if it opens one), its label, its
/// cells (a gap where `None`), and its colour bars.
struct Row {
    heading: Option<String>,
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
    // The k-th in total order is one value however it is found: a selection, not a sort (the
    // sorts of a report's scales were an eighth of drawing it).
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    *v.select_nth_unstable_by(k, f64::total_cmp).1
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

fn amplitude_error(r: &Registered) -> Array2<f64> {
    (&r.amplitude - &r.truth_amplitude).mapv(f64::abs)
}

fn phase_error(r: &Registered) -> Array2<f64> {
    (&r.phase - &r.truth_phase).mapv(f64::abs)
}

/// Each error image with the mask of its registered images.
fn masked<'a>(
    errors: &'a [Array2<f64>],
    images: &[&'a Registered],
) -> Vec<(&'a Array2<f64>, &'a Array2<bool>)> {
    errors
        .iter()
        .zip(images)
        .map(|(e, r)| (e, &r.mask))
        .collect()
}

/// The picture of `split` among one method's pictures of a job.
fn of_split<'a>(pictures: &[&'a JobPicture], split: &str) -> Option<&'a JobPicture> {
    pictures.iter().copied().find(|p| p.split == split)
}

fn ssim_note(p: &JobPicture) -> Option<String> {
    p.phase_ssim.map(|s| format!("ssim {s:.3}"))
}

/// Per job: truth, reconstruction and |error| of the amplitude and the phase, a panel per
/// split (`pictures`: the job's pictures, one per split); each kind of image on one scale in
/// both panels. `None` without pictures.
pub fn job_figure(pictures: &[&JobPicture], title: &str) -> Option<Vec<u8>> {
    if pictures.is_empty() {
        return None;
    }
    let mut ordered = pictures.to_vec();
    ordered.sort_by_key(|p| split_rank(p.split));
    let images: Vec<&Registered> = ordered.iter().map(|p| &p.images).collect();
    let amp_errs: Vec<Array2<f64>> = images.iter().map(|r| amplitude_error(r)).collect();
    let phase_errs: Vec<Array2<f64>> = images.iter().map(|r| phase_error(r)).collect();
    let amp = amplitude_scale(&images);
    let amp_err = error_scale(&masked(&amp_errs, &images));
    let phase = phase_scale(&images);
    let phase_err = error_scale(&masked(&phase_errs, &images));
    let mut rows = Vec::new();
    for ((p, a_err), p_err) in ordered.iter().zip(amp_errs).zip(phase_errs) {
        let r = &p.images;
        rows.push(Row {
            heading: Some(panel_heading(p.split)),
            label: "amplitude".into(),
            scales: vec![("amplitude".into(), amp), ("|error|".into(), amp_err)],
            cells: vec![
                Some(cell(r.truth_amplitude.clone(), &r.mask, 0, None)),
                Some(cell(r.amplitude.clone(), &r.mask, 0, None)),
                Some(cell(a_err, &r.mask, 1, None)),
            ],
        });
        rows.push(Row {
            heading: None,
            label: "phase (rad)".into(),
            scales: vec![("phase".into(), phase), ("|error|".into(), phase_err)],
            cells: vec![
                Some(cell(r.truth_phase.clone(), &r.mask, 0, None)),
                Some(cell(r.phase.clone(), &r.mask, 0, ssim_note(p))),
                Some(cell(p_err, &r.mask, 1, None)),
            ],
        });
    }
    let columns = ["truth", "reconstruction", "|error|"].map(String::from);
    Some(figure(title, &columns, &rows).to_png())
}

/// Per method: phase images of every job, doses as rows and views as columns, a panel per
/// split, all on one scale, with the split's truth first in each row.
pub fn phase_grid(pictures: &[JobPicture], title: &str) -> Option<Vec<u8>> {
    if pictures.is_empty() {
        return None;
    }
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
    let all: Vec<&Registered> = pictures.iter().map(|p| &p.images).collect();
    let scale = phase_scale(&all);
    let mut rows: Vec<Row> = Vec::new();
    for split in SPLITS {
        let mut opened = false;
        for dose in &doses {
            let in_row: Vec<&JobPicture> = pictures
                .iter()
                .filter(|p| p.id.0 == *dose && p.split == split)
                .collect();
            let Some(first) = in_row.first() else {
                continue;
            };
            let mut cells = vec![Some(cell(
                first.images.truth_phase.clone(),
                &first.images.mask,
                0,
                None,
            ))];
            for (view, gs) in &views {
                cells.push(
                    in_row
                        .iter()
                        .find(|p| &p.id.1 == view && p.id.2 == *gs)
                        .map(|p| cell(p.images.phase.clone(), &p.images.mask, 0, ssim_note(p))),
                );
            }
            rows.push(Row {
                heading: (!opened).then(|| panel_heading(split)),
                label: format!("dose {}", crate::text::dose_label(*dose)),
                cells,
                scales: if rows.is_empty() {
                    vec![("phase".into(), scale)]
                } else {
                    Vec::new()
                },
            });
            opened = true;
        }
    }
    let mut columns = vec!["truth".to_string()];
    columns.extend(views.iter().map(|(v, g)| format!("{v} gs{g}")));
    Some(figure(title, &columns, &rows).to_png())
}

/// In a comparison: for one job, the truth and each method's reconstruction (amplitude, phase,
/// |phase error|), a panel per split, each kind of image on one scale in both panels.
/// `methods` pairs a method's name with its pictures of the job (one per split it has).
pub fn side_by_side(methods: &[(String, Vec<&JobPicture>)], title: &str) -> Option<Vec<u8>> {
    let present: Vec<&JobPicture> = methods.iter().flat_map(|m| m.1.iter().copied()).collect();
    if present.is_empty() {
        return None;
    }
    let images: Vec<&Registered> = present.iter().map(|p| &p.images).collect();
    let errors: Vec<Array2<f64>> = images.iter().map(|r| phase_error(r)).collect();
    let err_scale = error_scale(&masked(&errors, &images));
    let amp_scale = amplitude_scale(&images);
    let ph_scale = phase_scale(&images);
    let mut rows = Vec::new();
    for split in SPLITS {
        let Some(first) = methods.iter().find_map(|m| of_split(&m.1, split)) else {
            continue;
        };
        let t = &first.images;
        let mut amp_cells = vec![Some(cell(t.truth_amplitude.clone(), &t.mask, 0, None))];
        let mut phase_cells = vec![Some(cell(t.truth_phase.clone(), &t.mask, 0, None))];
        let mut err_cells = vec![None];
        for (_, ps) in methods {
            let p = of_split(ps, split);
            amp_cells.push(p.map(|p| cell(p.images.amplitude.clone(), &p.images.mask, 0, None)));
            phase_cells
                .push(p.map(|p| cell(p.images.phase.clone(), &p.images.mask, 0, ssim_note(p))));
            err_cells.push(p.map(|p| cell(phase_error(&p.images), &p.images.mask, 0, None)));
        }
        rows.push(Row {
            heading: Some(panel_heading(split)),
            label: "amplitude".into(),
            cells: amp_cells,
            scales: vec![("amplitude".into(), amp_scale)],
        });
        rows.push(Row {
            heading: None,
            label: "phase (rad)".into(),
            cells: phase_cells,
            scales: vec![("phase".into(), ph_scale)],
        });
        rows.push(Row {
            heading: None,
            label: "|phase error|".into(),
            cells: err_cells,
            scales: vec![("rad".into(), err_scale)],
        });
    }
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

/// Height of a panel's heading: its text and rule.
const HEADING: usize = LINE + 4;
/// The rule under a panel's heading.
const RULE: [u8; 3] = [160, 160, 160];

/// Lays out a figure: title, column headers, and per row a label, cells and colour bars; a row
/// with a heading opens a panel (the heading over a rule across the figure, then the column
/// headers again), so that each panel reads on its own.
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
    let heading_w = rows
        .iter()
        .filter_map(|r| r.heading.as_deref())
        .map(|h| text_width(h, 1))
        .max()
        .unwrap_or(0);
    let bars = rows.iter().map(|r| r.scales.len()).max().unwrap_or(0);
    let left = MARGIN + label_w + GAP;
    let width = (left + columns.len() * (cell_w + GAP) + bars * (BAR_W + BAR_TEXT) + MARGIN)
        .max(MARGIN * 2 + text_width(title, 2))
        .max(MARGIN * 2 + heading_w);
    let top = MARGIN + 2 * GLYPH_H + GAP;
    // Where each row's images start: column headers above the first row, and a heading and
    // the column headers again above each row that opens a panel.
    let mut headers_at = Vec::new();
    let mut headings_at = Vec::new();
    let mut rows_at = Vec::with_capacity(rows.len());
    let mut y = top;
    for (i, row) in rows.iter().enumerate() {
        if let Some(h) = &row.heading {
            headings_at.push((y, h.as_str()));
            y += HEADING;
        }
        if i == 0 || row.heading.is_some() {
            headers_at.push(y);
            y += LINE;
        }
        rows_at.push(y);
        y += row_h;
    }
    if rows.is_empty() {
        headers_at.push(y);
        y += LINE;
    }
    let height = y + MARGIN;
    let mut canvas = Canvas::new(width, height);
    canvas.text(MARGIN, MARGIN, title, 2, INK);
    for (y, heading) in headings_at {
        canvas.text(MARGIN, y, heading, 1, INK);
        canvas.fill(MARGIN, y + GLYPH_H + 2, width - 2 * MARGIN, 1, RULE);
    }
    for y in headers_at {
        for (k, name) in columns.iter().enumerate() {
            let x = left + k * (cell_w + GAP) + (cell_w - text_width(name, 1)) / 2;
            canvas.text(x, y, name, 1, INK);
        }
    }
    for (row, y) in rows.iter().zip(rows_at) {
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

    fn picture(dose: f64, split: &'static str, shift: f64) -> JobPicture {
        JobPicture {
            id: (dose, "dense".into(), 2),
            split,
            images: registered(shift),
            phase_ssim: Some(0.5),
        }
    }

    #[test]
    fn figures_are_deterministic_pngs() {
        let p = picture(1e3, "test", 0.05);
        let a = job_figure(&[&p], "dose 1e+03 dense gs2").unwrap();
        assert_eq!(a, job_figure(&[&p], "dose 1e+03 dense gs2").unwrap());
        let (w, h) = decode(&a);
        assert!(w > 3 * 24 * 4 && h > 2 * 20 * 4, "{w} x {h}");
        let q = picture(1e4, "test", 0.05);
        let grid = phase_grid(&[p.clone(), q], "grid").unwrap();
        decode(&grid);
        let sbs = side_by_side(&[("a".into(), vec![&p]), ("b".into(), Vec::new())], "x").unwrap();
        decode(&sbs);
        assert!(side_by_side(&[("a".into(), Vec::new())], "x").is_none());
        assert!(phase_grid(&[], "x").is_none());
        assert!(job_figure(&[], "x").is_none());
    }

    /// Both splits: a panel each (train above test), whatever order the pictures come in.
    #[test]
    fn each_split_gets_a_panel() {
        let train = picture(1e3, "train", 0.02);
        let test = picture(1e3, "test", 0.05);
        let one = job_figure(&[&test], "t").unwrap();
        let both = job_figure(&[&train, &test], "t").unwrap();
        assert_eq!(both, job_figure(&[&test, &train], "t").unwrap());
        let ((w1, h1), (w2, h2)) = (decode(&one), decode(&both));
        assert_eq!(w1, w2);
        assert!(h2 > h1 + 2 * 20 * 4, "{h1} -> {h2}");
        let grid_one = decode(&phase_grid(std::slice::from_ref(&test), "g").unwrap());
        let grid_both = decode(&phase_grid(&[train.clone(), test.clone()], "g").unwrap());
        assert!(
            grid_both.1 > grid_one.1 + 20 * 4,
            "{grid_one:?} -> {grid_both:?}"
        );
        let sbs_one = decode(&side_by_side(&[("a".into(), vec![&test])], "s").unwrap());
        let sbs_both = decode(&side_by_side(&[("a".into(), vec![&train, &test])], "s").unwrap());
        assert!(
            sbs_both.1 > sbs_one.1 + 3 * 20 * 4,
            "{sbs_one:?} -> {sbs_both:?}"
        );
        // by_job groups a root's pictures per job, splits in panel order.
        let other = picture(1e4, "train", 0.0);
        let all = [test.clone(), other, train];
        let groups = by_job(&all);
        assert_eq!(groups.len(), 2);
        let splits: Vec<&str> = groups[0].1.iter().map(|p| p.split).collect();
        assert_eq!(splits, ["train", "test"]);
        assert_eq!(groups[1].0, (1e4, "dense".to_string(), 2));
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
