//! The dose x overlap map (issue 21, part 5): `map.csv`, one tidy row per (dose, view,
//! gridsize, split, metric), and SVG heatmaps over dose (columns) x realised overlap (rows)
//! with each cell's value, a colour bar, the success boundary and iso-photon-budget lines.
//!
//! Drawn only for a study with overlap levels to map: at least one view given by an overlap
//! target (`o60 = { overlap = 0.6 }`), at least 2 doses and at least 2 views with results. The
//! fly64 and tiny studies have fraction views only, so their reports keep every byte.
//!
//! The overlap of a view is read from Phase D's `overlap_report.json` (the realised mean disc
//! overlap of each split; for the full scan, the Phase C split's). Photons per pixel, the
//! iso-budget quantity, is `dose x n / ((w + D)(h + D))`: dose per pattern times the patterns
//! of the split over the pixels they scan (the kept centres' bounding box w x h widened by the
//! probe diameter D, the area of Phase D's exposures-per-pixel figure).

use crate::metrics::{flatten, lower_is_better};
use crate::png::{Colormap, bar_label};
use crate::svg::escape;
use crate::text::{dose_label, fmt_num};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// Test Fienup NRMSE at or below which a job is a success, unless `--success-nrmse` says.
pub const DEFAULT_SUCCESS_NRMSE: f64 = 0.3;

/// Metrics drawn as heatmaps (test split), when the jobs have them: the NRMSE, the phase SSIM
/// of the 2 pi convention and the one over the truth's own phase range (which sees a washed-out
/// phase the first hides), each map named by its metric.
pub const MAP_METRICS: &[&str] = &["fienup_nrmse", "phase.ssim", "phase.ssim_truth_range"];

/// `--success-nrmse`: a finite, positive NRMSE.
pub fn parse_success_nrmse(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "'{text}' is not a success threshold: give a test Fienup NRMSE above 0, e.g. 0.2"
        )),
    }
}

/// The metric whose threshold draws the success boundary.
const BOUNDARY_METRIC: &str = "fienup_nrmse";

/// How the map is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapSettings {
    /// Test Fienup NRMSE at or below which a cell is a success.
    pub success_nrmse: f64,
}

impl Default for MapSettings {
    fn default() -> Self {
        MapSettings {
            success_nrmse: DEFAULT_SUCCESS_NRMSE,
        }
    }
}

/// One split of one view of one dose, as Phase D measured it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitGeometry {
    /// Mean disc overlap of the split's positions with their nearest neighbours.
    pub overlap: f64,
    /// Positions of the split.
    pub positions: f64,
    /// Pixels they scan: `(w + D)(h + D)`.
    pub scanned_px: f64,
    /// Probe diameter D, px.
    pub probe_diameter_px: f64,
}

impl SplitGeometry {
    /// `n pi D² / 4 / ((w + D)(h + D))`, Phase D's figure.
    pub fn exposures_per_pixel(&self) -> f64 {
        self.positions * std::f64::consts::PI * self.probe_diameter_px.powi(2)
            / 4.0
            / self.scanned_px
    }

    /// `dose x n / ((w + D)(h + D))`: the photon budget per scanned pixel.
    pub fn photons_per_pixel(&self, dose: f64) -> f64 {
        dose * self.positions / self.scanned_px
    }
}

/// A view of a dose: its splits' geometry and whether it was given by an overlap target.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewGeometry {
    /// `train` and `test`.
    pub splits: BTreeMap<String, SplitGeometry>,
    /// Given by an overlap target.
    pub targeted: bool,
}

impl ViewGeometry {
    /// Mean of the splits' realised overlaps: the view's place on the overlap axis.
    pub fn overlap(&self) -> f64 {
        let n = self.splits.len().max(1) as f64;
        self.splits.values().map(|s| s.overlap).sum::<f64>() / n
    }
}

/// Geometry by (dose label, view).
pub type Geometry = BTreeMap<(String, String), ViewGeometry>;

/// The parts of `overlap_report.json` the map reads (other fields are ignored).
#[derive(Deserialize)]
struct DoseFile {
    dose: f64,
    views: Vec<ViewFile>,
}

#[derive(Deserialize)]
struct ViewFile {
    view: String,
    accepted: bool,
    splits: SplitsFile,
    #[serde(default)]
    overlap_target: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct SplitsFile {
    train: SplitFile,
    test: SplitFile,
}

#[derive(Deserialize)]
struct SplitFile {
    n_total: usize,
    n_accepted: usize,
    bbox_width: f64,
    bbox_height: f64,
    probe_diameter_px: f64,
    mean_disc_overlap: f64,
    source_mean_disc_overlap: f64,
}

/// The geometry of one dose's report: each accepted view, and the full scan (`baseline`, the
/// Phase C split; its box is the widest of the views', the scan's field).
fn dose_geometry(text: &str) -> Result<(f64, Vec<(String, ViewGeometry)>), String> {
    let file: DoseFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut full: BTreeMap<String, SplitGeometry> = BTreeMap::new();
    for v in &file.views {
        let mut splits = BTreeMap::new();
        for (name, s) in [("train", &v.splits.train), ("test", &v.splits.test)] {
            let d = s.probe_diameter_px;
            let scanned_px = (s.bbox_width + d) * (s.bbox_height + d);
            let g = SplitGeometry {
                overlap: s.mean_disc_overlap,
                positions: s.n_accepted as f64,
                scanned_px,
                probe_diameter_px: d,
            };
            let whole = SplitGeometry {
                overlap: s.source_mean_disc_overlap,
                positions: s.n_total as f64,
                ..g
            };
            let e = full.entry(name.to_string()).or_insert(whole);
            if whole.scanned_px > e.scanned_px {
                *e = whole;
            }
            splits.insert(name.to_string(), g);
        }
        if v.accepted {
            out.push((
                v.view.clone(),
                ViewGeometry {
                    splits,
                    targeted: v.overlap_target.is_some(),
                },
            ));
        }
    }
    if !full.is_empty() {
        out.push((
            "baseline".to_string(),
            ViewGeometry {
                splits: full,
                targeted: false,
            },
        ));
    }
    Ok((file.dose, out))
}

/// The geometry of every dose of the manifest's jobs, read from
/// `<phase_d_root>/dose_<int>/overlap_report.json` where the root is now; a dose whose report
/// cannot be read has none (its cells have no overlap, and no map is drawn without them).
pub fn read_geometry(root: &Path, manifest: &Value) -> Geometry {
    let locations = crate::pictures::locations(root, manifest);
    let phase_d = manifest["phase_d_root"].as_str().unwrap_or("");
    let doses: BTreeSet<u64> = jobs(manifest)
        .filter_map(|j| j["dose"].as_f64())
        .map(|d| d.round() as u64)
        .collect();
    let mut out = Geometry::new();
    for dose in doses {
        let recorded = Path::new(phase_d)
            .join(format!("dose_{dose}"))
            .join("overlap_report.json");
        let Ok(path) = locations.input(&recorded) else {
            continue;
        };
        let Ok(text) =
            npz_contract::confine::read_to_string_capped(&path, npz_contract::confine::JSON_CAP)
        else {
            continue;
        };
        if let Ok((dose, views)) = dose_geometry(&text) {
            for (view, g) in views {
                out.insert((dose_label(dose), view), g);
            }
        }
    }
    out
}

fn jobs(manifest: &Value) -> impl Iterator<Item = &Value> {
    manifest["jobs"].as_array().into_iter().flatten()
}

/// One row of `map.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Dose per pattern.
    pub dose: f64,
    /// View.
    pub view: String,
    /// Gridsize.
    pub gridsize: u64,
    /// `train` or `test`.
    pub split: String,
    /// The split's geometry, when Phase D's report was read.
    pub geometry: Option<SplitGeometry>,
    /// Whether the view was given by an overlap target.
    pub targeted: bool,
    /// Dotted metric name.
    pub metric: String,
    /// Its value.
    pub value: f64,
}

/// Every (dose, view, gridsize, split, metric) of the manifest's successful jobs, sorted by
/// dose, view, gridsize, split and metric.
pub fn cells(manifest: &Value, geometry: &Geometry) -> Vec<Cell> {
    let mut out = Vec::new();
    for job in jobs(manifest) {
        if job["result"]["status"] != "success" {
            continue;
        }
        let (Some(dose), Some(view), Some(gridsize)) = (
            job["dose"].as_f64(),
            job["view"].as_str(),
            job["gridsize"].as_u64(),
        ) else {
            continue;
        };
        let g = geometry.get(&(dose_label(dose), view.to_string()));
        for split in ["train", "test"] {
            for (metric, value) in flatten(&job["result"]["metrics"][split]) {
                out.push(Cell {
                    dose,
                    view: view.to_string(),
                    gridsize,
                    split: split.to_string(),
                    geometry: g.and_then(|g| g.splits.get(split).copied()),
                    targeted: g.is_some_and(|g| g.targeted),
                    metric,
                    value,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        a.dose
            .total_cmp(&b.dose)
            .then_with(|| a.view.cmp(&b.view))
            .then(a.gridsize.cmp(&b.gridsize))
            .then_with(|| a.split.cmp(&b.split))
            .then_with(|| a.metric.cmp(&b.metric))
    });
    out
}

/// Whether `cells` hold a map: a view given by an overlap target, and at least 2 doses and 2
/// views with a realised overlap. The rule keeps the fly64 and tiny reports unchanged.
pub fn is_map(cells: &[Cell]) -> bool {
    let placed = || cells.iter().filter(|c| c.geometry.is_some());
    let doses: BTreeSet<u64> = placed().map(|c| c.dose.to_bits()).collect();
    let views: BTreeSet<&str> = placed().map(|c| c.view.as_str()).collect();
    cells.iter().any(|c| c.targeted) && doses.len() >= 2 && views.len() >= 2
}

/// `map.csv`: a header and one row per cell; overlap, exposures and photons per pixel are
/// empty where Phase D's report was not read. Numbers as Rust prints them (round-trip).
pub fn map_csv(cells: &[Cell]) -> String {
    let mut csv = String::from(
        "dose,view,gridsize,split,overlap_realised,exposures_per_pixel,photons_per_pixel,metric,value\n",
    );
    for c in cells {
        let geo = |f: &dyn Fn(&SplitGeometry) -> f64| {
            c.geometry
                .as_ref()
                .map_or(String::new(), |g| f(g).to_string())
        };
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{}",
            c.dose,
            c.view,
            c.gridsize,
            c.split,
            geo(&|g| g.overlap),
            geo(&|g| g.exposures_per_pixel()),
            geo(&|g| g.photons_per_pixel(c.dose)),
            c.metric,
            c.value
        );
    }
    csv
}

/// A heatmap's grid: doses as columns, views as rows (highest overlap on top).
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Doses, ascending.
    pub doses: Vec<f64>,
    /// Views with their mean realised overlap, descending.
    pub rows: Vec<(String, f64)>,
    /// Value by (row, column).
    pub values: BTreeMap<(usize, usize), f64>,
    /// Test Fienup NRMSE at or below the threshold, by (row, column).
    pub success: BTreeMap<(usize, usize), bool>,
    /// Photons per pixel by (row, column).
    pub photons: BTreeMap<(usize, usize), f64>,
}

/// The grid of `metric` on the test split at `gridsize`, from cells with a realised overlap.
pub fn grid(cells: &[Cell], metric: &str, gridsize: u64, settings: &MapSettings) -> Grid {
    let at = |c: &&Cell| c.gridsize == gridsize && c.split == "test" && c.geometry.is_some();
    let mut doses: Vec<f64> = Vec::new();
    let mut overlaps: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for c in cells.iter().filter(at) {
        if !doses.contains(&c.dose) {
            doses.push(c.dose);
        }
        if c.metric == metric {
            let e = overlaps.entry(&c.view).or_insert((0.0, 0));
            e.0 += c.geometry.map_or(0.0, |g| g.overlap);
            e.1 += 1;
        }
    }
    doses.sort_by(f64::total_cmp);
    let mut rows: Vec<(String, f64)> = overlaps
        .into_iter()
        .map(|(v, (sum, n))| (v.to_string(), sum / n as f64))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut g = Grid {
        doses,
        rows,
        values: BTreeMap::new(),
        success: BTreeMap::new(),
        photons: BTreeMap::new(),
    };
    for c in cells.iter().filter(at) {
        let (Some(r), Some(k)) = (
            g.rows.iter().position(|(v, _)| *v == c.view),
            g.doses.iter().position(|d| *d == c.dose),
        ) else {
            continue;
        };
        if c.metric == metric {
            g.values.insert((r, k), c.value);
            if let Some(geo) = c.geometry {
                g.photons.insert((r, k), geo.photons_per_pixel(c.dose));
            }
        }
        if c.metric == BOUNDARY_METRIC {
            g.success.insert((r, k), c.value <= settings.success_nrmse);
        }
    }
    g
}

/// `a - b` cell by cell where both have a value (rows and doses of `a`); no boundary.
pub fn difference(a: &Grid, b: &Grid) -> Grid {
    let mut values = BTreeMap::new();
    for (&(r, k), va) in &a.values {
        let rb = b.rows.iter().position(|(v, _)| *v == a.rows[r].0);
        let kb = b.doses.iter().position(|d| *d == a.doses[k]);
        if let (Some(rb), Some(kb)) = (rb, kb)
            && let Some(vb) = b.values.get(&(rb, kb))
        {
            values.insert((r, k), va - vb);
        }
    }
    Grid {
        doses: a.doses.clone(),
        rows: a.rows.clone(),
        values,
        success: BTreeMap::new(),
        photons: a.photons.clone(),
    }
}

/// `fienup_nrmse` -> `fienup_nrmse`, `phase.ssim` -> `phase_ssim`.
pub fn metric_slug(metric: &str) -> String {
    metric.replace('.', "_")
}

/// Gridsizes of the cells with a realised overlap, ascending.
pub fn gridsizes(cells: &[Cell]) -> Vec<u64> {
    let set: BTreeSet<u64> = cells
        .iter()
        .filter(|c| c.geometry.is_some())
        .map(|c| c.gridsize)
        .collect();
    set.into_iter().collect()
}

/// The heatmaps of `cells` under `dir` (`maps/`): (file name, metric, gridsize, grid) per
/// metric of [`MAP_METRICS`] the cells have, per gridsize (`_gs<g>` in the name only when
/// there are several).
pub fn grids(
    cells: &[Cell],
    dir: &str,
    settings: &MapSettings,
) -> Vec<(String, String, u64, Grid)> {
    let gridsizes = gridsizes(cells);
    let mut out = Vec::new();
    for metric in MAP_METRICS {
        for &gs in &gridsizes {
            let g = grid(cells, metric, gs, settings);
            if g.values.is_empty() {
                continue;
            }
            let suffix = if gridsizes.len() > 1 {
                format!("_gs{gs}")
            } else {
                String::new()
            };
            out.push((
                format!("{dir}/map_test_{}{suffix}.svg", metric_slug(metric)),
                metric.to_string(),
                gs,
                g,
            ));
        }
    }
    out
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

const CELL_W: f64 = 96.0;
const CELL_H: f64 = 52.0;
const LEFT: f64 = 120.0;
const TOP: f64 = 70.0;
const BAR_GAP: f64 = 30.0;
const BAR_W: f64 = 18.0;

/// The SVG of a heatmap: each cell coloured and labelled with its value and photons per
/// pixel; a colour bar with five labelled ticks; the success boundary (`threshold`: cell edges
/// between a cell at or below it and one above) and dashed iso-photon-budget lines (where
/// photons per pixel crosses each power of ten, interpolated along each dose's column).
/// `diverging`: a difference map, its scale symmetric about zero.
pub fn heatmap_svg(
    grid: &Grid,
    title: &str,
    metric: &str,
    threshold: Option<f64>,
    diverging: bool,
) -> String {
    let (nr, nc) = (grid.rows.len(), grid.doses.len());
    let h = TOP + nr as f64 * CELL_H + 100.0;
    let vals: Vec<f64> = grid
        .values
        .values()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let (mut lo, mut hi) = vals
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if diverging {
        let m = lo.abs().max(hi.abs());
        (lo, hi) = (-m, m);
    }
    let scale = crate::png::Scale::new(
        if diverging {
            Colormap::CoolWarm
        } else {
            Colormap::Viridis
        },
        lo,
        hi,
    );
    let t_of = |v: f64| (v - scale.lo) / (scale.hi - scale.lo);
    let colour = |v: f64| scale.map.at(t_of(v));
    let better = if diverging {
        "difference A - B"
    } else if lower_is_better(metric) {
        "lower is better"
    } else {
        "higher is better"
    };
    let note = match threshold {
        Some(t) => format!(
            "test {metric} ({better}); thick line: success boundary, test Fienup NRMSE <= {}",
            fmt_num(t)
        ),
        None => format!("test {metric} ({better})"),
    };
    // Wide enough for the grid and for the title, the note and the footer of a small grid
    // (about 8.5, 6 and 5.6 px a character at 15, 11 and 10 px).
    let w = (LEFT + nc as f64 * CELL_W + BAR_GAP + BAR_W + 90.0)
        .max(title.chars().count() as f64 * 8.5 + 20.0)
        .max(note.chars().count() as f64 * 6.0 + 20.0)
        .max(LEFT + 88.0 * 5.6)
        .ceil();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\">"
    );
    let _ = writeln!(s, "<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{}</text>",
        w / 2.0,
        escape(title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"42\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
        w / 2.0,
        escape(&note)
    );
    let x0 = |k: usize| LEFT + k as f64 * CELL_W;
    let y0 = |r: usize| TOP + r as f64 * CELL_H;
    for (r, (view, overlap)) in grid.rows.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{} ({:.2})</text>",
            LEFT - 6.0,
            y0(r) + CELL_H / 2.0 + 4.0,
            escape(view),
            overlap
        );
    }
    for (k, dose) in grid.doses.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            x0(k) + CELL_W / 2.0,
            y0(nr) + 16.0,
            dose_label(*dose)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">dose per pattern (photons, log scale)</text>",
        LEFT + nc as f64 * CELL_W / 2.0,
        y0(nr) + 36.0
    );
    let _ = writeln!(
        s,
        "<text x=\"14\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">view (realised mean disc overlap)</text>",
        TOP + nr as f64 * CELL_H / 2.0,
        TOP + nr as f64 * CELL_H / 2.0
    );
    for r in 0..nr {
        for k in 0..nc {
            let (x, y) = (x0(k), y0(r));
            match grid.values.get(&(r, k)) {
                Some(&v) => {
                    let c = colour(v);
                    let ink = if diverging || t_of(v) > 0.55 {
                        "#141414"
                    } else {
                        "#ffffff"
                    };
                    let _ = writeln!(
                        s,
                        "<rect x=\"{x}\" y=\"{y}\" width=\"{CELL_W}\" height=\"{CELL_H}\" fill=\"{}\" stroke=\"white\"/>",
                        hex(c)
                    );
                    let _ = writeln!(
                        s,
                        "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"middle\" fill=\"{ink}\">{}</text>",
                        x + CELL_W / 2.0,
                        y + CELL_H / 2.0,
                        fmt_num(v)
                    );
                    if let Some(p) = grid.photons.get(&(r, k)) {
                        let _ = writeln!(
                            s,
                            "<text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\" fill=\"{ink}\">{} ph/px</text>",
                            x + CELL_W / 2.0,
                            y + CELL_H / 2.0 + 15.0,
                            bar_label(*p)
                        );
                    }
                }
                None => {
                    let _ = writeln!(
                        s,
                        "<rect x=\"{x}\" y=\"{y}\" width=\"{CELL_W}\" height=\"{CELL_H}\" fill=\"#d7d7d7\" stroke=\"white\"/>"
                    );
                    let _ = writeln!(
                        s,
                        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">no result</text>",
                        x + CELL_W / 2.0,
                        y + CELL_H / 2.0
                    );
                }
            }
        }
    }
    // The success boundary: an edge between two cells whose verdicts differ.
    if threshold.is_some() {
        let ok = |r: usize, k: usize| grid.success.get(&(r, k)).copied();
        for r in 0..nr {
            for k in 0..nc {
                let Some(here) = ok(r, k) else { continue };
                if k + 1 < nc && ok(r, k + 1).is_some_and(|o| o != here) {
                    let x = x0(k + 1);
                    let _ = writeln!(
                        s,
                        "<line class=\"boundary\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"black\" stroke-width=\"4\"/>",
                        y0(r),
                        y0(r + 1)
                    );
                }
                if r + 1 < nr && ok(r + 1, k).is_some_and(|o| o != here) {
                    let y = y0(r + 1);
                    let _ = writeln!(
                        s,
                        "<line class=\"boundary\" x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"black\" stroke-width=\"4\"/>",
                        x0(k),
                        x0(k + 1)
                    );
                }
            }
        }
    }
    // Iso-photon-budget lines: in each column, where log10(photons per pixel) crosses an
    // integer, interpolated between the centres of neighbouring rows.
    let logs: Vec<f64> = grid
        .photons
        .values()
        .filter(|p| **p > 0.0)
        .map(|p| p.log10())
        .collect();
    if let (Some(min), Some(max)) = (
        logs.iter().copied().reduce(f64::min),
        logs.iter().copied().reduce(f64::max),
    ) {
        for decade in (min.ceil() as i64)..=(max.floor() as i64) {
            let level = decade as f64;
            let mut points = Vec::new();
            for k in 0..nc {
                let column: Vec<(usize, f64)> = (0..nr)
                    .filter_map(|r| grid.photons.get(&(r, k)).map(|p| (r, p.log10())))
                    .collect();
                let hit = column.windows(2).find_map(|pair| {
                    let ((ra, la), (rb, lb)) = (pair[0], pair[1]);
                    if (la - level) * (lb - level) > 0.0 || la == lb {
                        return None;
                    }
                    let ya = y0(ra) + CELL_H / 2.0;
                    let yb = y0(rb) + CELL_H / 2.0;
                    Some(ya + (level - la) / (lb - la) * (yb - ya))
                });
                if let Some(y) = hit {
                    points.push((x0(k) + CELL_W / 2.0, y));
                }
            }
            if points.is_empty() {
                continue;
            }
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                s,
                "<polyline class=\"iso-budget\" points=\"{}\" fill=\"none\" stroke=\"#e0e0e0\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>",
                path.join(" ")
            );
            // A marker at each crossing, so that a budget met in one column still shows.
            for (x, y) in &points {
                let _ = writeln!(
                    s,
                    "<circle class=\"iso-budget\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#e0e0e0\" stroke=\"#404040\"/>"
                );
            }
            let (lx, ly) = points[points.len() - 1];
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"10\" fill=\"#606060\">1e{decade} ph/px</text>",
                lx + 6.0,
                ly - 3.0
            );
        }
    }
    // The colour bar: 32 bands, five labelled ticks, low at the bottom.
    let bx = LEFT + nc as f64 * CELL_W + BAR_GAP;
    let bh = nr as f64 * CELL_H;
    let bands = 32;
    for i in 0..bands {
        let t = (i as f64 + 0.5) / bands as f64;
        let y = TOP + bh - (i + 1) as f64 * bh / bands as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{bx}\" y=\"{y:.2}\" width=\"{BAR_W}\" height=\"{:.2}\" fill=\"{}\"/>",
            bh / bands as f64 + 0.3,
            hex(scale.map.at(t))
        );
    }
    for i in 0..5 {
        let t = i as f64 / 4.0;
        let v = scale.lo + t * (scale.hi - scale.lo);
        let y = TOP + bh - t * bh;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.2}\" font-size=\"10\">{}</text>",
            bx + BAR_W + 4.0,
            y + 3.0,
            bar_label(v)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"{}\" font-size=\"10\" fill=\"#404040\">small text and dashed lines: photons per pixel = dose x patterns / ((w + D)(h + D))</text>",
        y0(nr) + 58.0
    );
    s.push_str("</svg>\n");
    s
}

/// The map files of one method's cells: `map.csv` and a heatmap per metric and gridsize (names
/// relative to the report folder), or nothing when the cells hold no map.
pub fn files(cells: &[Cell], title: &str, settings: &MapSettings) -> Vec<(String, String)> {
    if !is_map(cells) {
        return Vec::new();
    }
    let mut out = vec![("map.csv".to_string(), map_csv(cells))];
    for (file, metric, gs, g) in grids(cells, "maps", settings) {
        let svg = heatmap_svg(
            &g,
            &format!("{title}: test {metric}, gs{gs}, dose x overlap"),
            &metric,
            Some(settings.success_nrmse),
            false,
        );
        out.push((file, svg));
    }
    out
}

/// The view that is the whole scan (Phase C's data), as the job matrix names it.
const FULL_SCAN: &str = "baseline";

/// The fixed-photon-budget tables (Markdown), one per gridsize: for each budget (a power of ten
/// of photons per pixel within the cells' range), the cell with the lowest test Fienup NRMSE
/// among those that spend at most that budget, beside the full scan's best within it. Empty
/// when the cells hold no map.
pub fn budget_tables(cells: &[Cell]) -> String {
    if !is_map(cells) {
        return String::new();
    }
    let mut s = String::new();
    for gs in gridsizes(cells) {
        // (photons per pixel, dose, view, overlap, NRMSE) of each test cell with a geometry.
        let points: Vec<(f64, f64, &str, f64, f64)> = cells
            .iter()
            .filter(|c| c.gridsize == gs && c.split == "test" && c.metric == BOUNDARY_METRIC)
            .filter(|c| c.value.is_finite())
            .filter_map(|c| {
                let g = c.geometry?;
                Some((
                    g.photons_per_pixel(c.dose),
                    c.dose,
                    c.view.as_str(),
                    g.overlap,
                    c.value,
                ))
            })
            .filter(|p| p.0.is_finite() && p.0 > 0.0)
            .collect();
        if points.is_empty() {
            continue;
        }
        let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        if !s.is_empty() {
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "### Fixed photon budget (test {BOUNDARY_METRIC}, gs{gs})\n\nFor each budget of \
             photons per pixel (dose x patterns / ((w + D)(h + D))), the cell with the lowest \
             test {BOUNDARY_METRIC} among those that spend at most that much, beside the best \
             the full scan reaches within it: where the photons are fixed, which overlap and \
             dose to spend them on.\n\n\
             | budget (ph/px) | best cell: view (overlap) | dose | ph/px | {BOUNDARY_METRIC} | \
             full scan's best: dose | ph/px | {BOUNDARY_METRIC} |\n|---|---|---|---|---|---|---|---|"
        );
        let best = |budget: f64, full_only: bool| {
            points
                .iter()
                .filter(|p| p.0 <= budget * (1.0 + 1e-12))
                .filter(|p| !full_only || p.2 == FULL_SCAN)
                .min_by(|a, b| a.4.total_cmp(&b.4).then(a.0.total_cmp(&b.0)))
        };
        let first = lo.log10().ceil() as i32;
        let last = hi.log10().ceil() as i32;
        for e in first..=last {
            let budget = 10f64.powi(e);
            let Some(b) = best(budget, false) else {
                continue;
            };
            let full = best(budget, true).map_or("— | — | —".to_string(), |f| {
                format!("{} | {} | {}", dose_label(f.1), fmt_num(f.0), fmt_num(f.4))
            });
            let _ = writeln!(
                s,
                "| ≤ {} | {} ({}) | {} | {} | {} | {full} |",
                dose_label(budget),
                crate::text::cell(b.2),
                fmt_num(b.3),
                dose_label(b.1),
                fmt_num(b.0),
                fmt_num(b.4)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_success_threshold_is_a_positive_finite_nrmse() {
        assert_eq!(super::parse_success_nrmse("0.2"), Ok(0.2));
        for bad in ["0", "-0.1", "nan", "inf", "x", ""] {
            let err = super::parse_success_nrmse(bad).unwrap_err();
            assert!(err.contains("above 0"), "{bad}: {err}");
        }
    }

    use super::*;
    use serde_json::json;

    fn geometry(overlap: f64, n: f64, targeted: bool) -> ViewGeometry {
        let split = SplitGeometry {
            overlap,
            positions: n,
            scanned_px: 100.0,
            probe_diameter_px: 10.0,
        };
        ViewGeometry {
            splits: [("train".into(), split), ("test".into(), split)].into(),
            targeted,
        }
    }

    fn manifest() -> Value {
        let job = |dose: f64, view: &str, nrmse: f64| {
            json!({"dose": dose, "view": view, "gridsize": 1, "result": {"status": "success",
                "metrics": {"test": {"fienup_nrmse": nrmse, "phase": {"ssim": 1.0 - nrmse}},
                    "train": {"fienup_nrmse": nrmse / 2.0}}}})
        };
        json!({"jobs": [job(1e4, "o20", 0.5), job(1e3, "o60", 0.4), job(1e3, "o20", 0.6),
            job(1e4, "o60", 0.2),
            {"dose": 1e4, "view": "o10", "gridsize": 1, "result": {"status": "failed"}}]})
    }

    fn geo() -> Geometry {
        [
            (("1e+03".into(), "o60".into()), geometry(0.6, 10.0, true)),
            (("1e+03".into(), "o20".into()), geometry(0.2, 2.0, true)),
            (("1e+04".into(), "o60".into()), geometry(0.6, 10.0, true)),
            (("1e+04".into(), "o20".into()), geometry(0.2, 2.0, true)),
        ]
        .into()
    }

    #[test]
    fn budget_table_picks_the_best_cell_within_each_budget() {
        // Photons per pixel: o20 20 and 200, o60 100 and 1000 (dose x n / 100).
        let table = budget_tables(&cells(&manifest(), &geo()));
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ≤")).collect();
        assert_eq!(
            rows,
            [
                "| ≤ 1e+02 | o60 (0.6000) | 1e+03 | 100.0 | 0.4000 | — | — | — |",
                "| ≤ 1e+03 | o60 (0.6000) | 1e+04 | 1000 | 0.2000 | — | — | — |",
            ],
            "{table}"
        );
        // No map, no table.
        assert!(budget_tables(&cells(&manifest(), &Geometry::new())).is_empty());
    }

    #[test]
    fn map_csv_has_one_sorted_row_per_cell() {
        let cells = cells(&manifest(), &geo());
        assert!(is_map(&cells));
        let csv = map_csv(&cells);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "dose,view,gridsize,split,overlap_realised,exposures_per_pixel,photons_per_pixel,metric,value"
        );
        // 4 jobs x (2 test + 1 train metrics); the failed job has none.
        assert_eq!(lines.len(), 1 + 4 * 3);
        let e = 2.0 * std::f64::consts::PI * 100.0 / 4.0 / 100.0;
        assert_eq!(
            lines[1],
            format!("1000,o20,1,test,0.2,{e},20,fienup_nrmse,0.6")
        );
        assert_eq!(
            lines[3],
            format!("1000,o20,1,train,0.2,{e},20,fienup_nrmse,0.3")
        );
        assert!(lines[12].starts_with("10000,o60,1,train,0.6,"), "{csv}");
    }

    #[test]
    fn no_map_without_targets_or_levels() {
        let untargeted: Geometry = geo()
            .into_iter()
            .map(|(k, mut g)| {
                g.targeted = false;
                (k, g)
            })
            .collect();
        assert!(!is_map(&cells(&manifest(), &untargeted)));
        assert!(!is_map(&cells(&manifest(), &Geometry::new())));
        assert!(
            files(
                &cells(&manifest(), &Geometry::new()),
                "t",
                &MapSettings::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn heatmap_shows_values_threshold_and_boundary() {
        let cells = cells(&manifest(), &geo());
        let at = |t: f64| {
            let settings = MapSettings { success_nrmse: t };
            let g = grid(&cells, "fienup_nrmse", 1, &settings);
            assert_eq!(g.rows[0].0, "o60");
            heatmap_svg(&g, "m", "fienup_nrmse", Some(t), false)
        };
        let svg = at(0.3);
        for v in ["0.6000", "0.4000", "0.5000", "0.2000", "NRMSE &lt;= 0.3000"] {
            assert!(svg.contains(v), "{v}: {svg}");
        }
        assert_eq!(svg.matches("class=\"boundary\"").count(), 2, "{svg}");
        // Everything a success: no boundary.
        assert_eq!(at(0.9).matches("class=\"boundary\"").count(), 0);
        // 20 to 100 photons per pixel: no power of ten inside but 1e2 at the end.
        assert!(svg.contains("iso-budget"), "{svg}");
    }
}
