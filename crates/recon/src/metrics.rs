//! Scoring a reconstruction against the ground-truth object over the scanned region: global
//! phase and a fitted phase plane removed; amplitude and phase MAE, PSNR, SSIM, MS-SSIM and
//! FRC; the Fienup invariant NRMSE of the complex object.

use crate::ReconError;
use ndarray::{Array2, ArrayView2};
use num_complex::{Complex32, Complex64};
use rustfft::{FftPlannerAvx, FftPlannerScalar};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// PSNR is capped here (a perfect reconstruction would otherwise be infinite, which JSON
/// cannot hold).
pub const PSNR_CAP_DB: f64 = 300.0;

/// MS-SSIM's weights per scale, finest first (Wang, Simoncelli & Bovik 2003; the values of
/// `pytorch_msssim`, TensorFlow's `ssim_multiscale` and PtychoPINN's `evaluation.ms_ssim`).
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// How to score.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// Gaussian sigma of the SSIM window, pixels (the design's `metrics_config.ms_ssim_sigma`).
    pub ssim_sigma: f64,
    /// A pixel is in the scanned region when its illumination (sum over positions of |P|^2
    /// at the rounded patch) is at least this fraction of the probe's peak |P|^2: lit by one
    /// exposure at this fraction of the peak, or by several weaker ones. Relative to the probe,
    /// not to the densest spot, so that views of different overlap are scored on comparable
    /// regions.
    pub illumination_threshold: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            ssim_sigma: study_design::MetricsConfig::default().ms_ssim_sigma,
            illumination_threshold: 0.1,
        }
    }
}

/// Scores of one split's reconstruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The region scored.
    pub region: Region,
    /// Scores of the amplitude |O|.
    pub amplitude: ImageMetrics,
    /// Scores of the phase (after the global phase and the fitted plane are removed).
    pub phase: ImageMetrics,
    /// Fienup's invariant NRMSE of the complex object (after the plane is removed):
    /// `min_g sqrt(sum |g O - T|^2 / sum |T|^2)` over complex constants g.
    pub fienup_nrmse: f64,
    /// The same figure for the flat start (ones), registered the same way (global phase and
    /// its own fitted plane): what the reconstruction improved on.
    pub fienup_nrmse_initial: f64,
    /// The phase removed from the reconstruction: `offset + slope_x dx + slope_y dy`, with dx,
    /// dy measured from the region's weighted centroid.
    pub phase_plane: PhasePlane,
}

/// The scanned region.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// How it is chosen.
    pub rule: String,
    /// Pixels in it.
    pub pixels: usize,
    /// Its bounding box rows `[first, last + 1)` on the objectGuess grid.
    pub rows: [usize; 2],
    /// Its bounding box columns `[first, last + 1)`.
    pub cols: [usize; 2],
    /// Scan positions of the dataset (what the view holds).
    pub positions: usize,
    /// Exposures per region pixel, on average: the mean over the region of
    /// `sum_j |P_j|^2 / max |P|^2`, i.e. how many exposures at the probe's peak intensity each
    /// pixel received (a count of footprints without a footprint threshold). It says how often
    /// the view saw each pixel: a sparse view scores lower for this reason.
    pub mean_exposures: f64,
}

/// Scores of one real image (amplitude or phase).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageMetrics {
    /// Mean absolute error over the region (phase: of the wrapped difference, radians).
    pub mae: f64,
    /// `10 log10(range^2 / MSE)`, dB, capped at 300.
    pub psnr_db: f64,
    /// The data range used by PSNR and SSIM: amplitude, max |truth| over the region;
    /// phase, 2 pi (SSIM sees the phase mapped to [0, 1] as (phi + pi) / 2 pi, range 1).
    pub data_range: f64,
    /// Mean SSIM over the region's interior: pixels whose whole Gaussian window (radius
    /// `round(3.5 sigma)`) lies in the region, as scikit-image crops the window's reach from
    /// the border (all region pixels, window restricted to the region, when none does).
    pub ssim: f64,
    /// Multi-scale SSIM (Wang, Simoncelli & Bovik 2003): the product over scales of the mean
    /// contrast-structure term, and at the coarsest scale the mean SSIM, each to the power of
    /// its weight ([`MS_SSIM_WEIGHTS`]); each scale halves the previous by 2x2 averaging
    /// (a coarse pixel is in the region when its four fine pixels are), with the SSIM window
    /// and region interior as for `ssim`. Negative terms count as 0. A region too small for
    /// five scales uses the scales whose interior is not empty, weights renormalised to sum to
    /// 1 (`ms_ssim_scales` says how many; one scale is SSIM itself).
    pub ms_ssim: f64,
    /// Scales MS-SSIM used (1 to 5).
    pub ms_ssim_scales: usize,
    /// Phase only: SSIM with the truth's own phase range as the data range: both phases
    /// mapped by the truth's range over the region, (phi - min) / (max - min), then SSIM with
    /// range 1 (window and interior as `ssim`). The 2 pi convention of `ssim` (PtychoPINN's)
    /// hides errors when the truth spans far less than 2 pi (a washed-out phase of +-1.2 rad
    /// still scores about 0.9); this one sees them. Absent for amplitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssim_truth_range: Option<f64>,
    /// Phase only: the truth's phase range over the region (max - min, radians), the data
    /// range of `ssim_truth_range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth_range: Option<f64>,
    /// FRC crossing of the 0.5 threshold.
    pub frc_05: FrcCrossing,
    /// FRC crossing of the half-bit threshold (van Heel & Schatz 2005).
    pub frc_half_bit: FrcCrossing,
}

/// Where a Fourier ring correlation first falls below a threshold (rings of
/// [`FRC_RING_WIDTH`] bins; the DC ring never counts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrcCrossing {
    /// Spatial frequency, cycles per pixel, of the crossing; the last ring's (near Nyquist)
    /// when it never falls below; null when the curve is below the threshold from the first
    /// ring on (not resolved at any frequency).
    pub frequency: Option<f64>,
    /// 1 / frequency, pixels: the resolution (null when not resolved; a lower bound when
    /// `crossed` is false and it is not null).
    pub resolution_px: Option<f64>,
    /// True when the FRC rises above the threshold and then falls below it before Nyquist.
    pub crossed: bool,
}

/// The fitted phase plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhasePlane {
    /// Radians at the centroid.
    pub offset_rad: f64,
    /// Radians per pixel along columns.
    pub slope_x_rad_per_px: f64,
    /// Radians per pixel along rows.
    pub slope_y_rad_per_px: f64,
}

/// A reconstruction is scored only on the truth's own grid.
pub(crate) fn same_grid(
    object: ArrayView2<Complex32>,
    truth: ArrayView2<Complex32>,
) -> Result<(), ReconError> {
    if object.dim() != truth.dim() {
        return Err(ReconError::BadInput(format!(
            "reconstruction is {:?} but objectGuess is {:?}",
            object.dim(),
            truth.dim()
        )));
    }
    Ok(())
}

/// Scores `object` against `truth` (same grid) over the region illuminated by `probe` at the
/// integer top-left corners `topleft_yx`.
pub fn evaluate(
    object: ArrayView2<Complex32>,
    truth: ArrayView2<Complex32>,
    probe: ArrayView2<Complex32>,
    topleft_yx: &[[i64; 2]],
    options: &EvalOptions,
) -> Result<Metrics, ReconError> {
    same_grid(object, truth)?;
    let region = ScannedRegion::new(probe, topleft_yx, truth.dim(), options)?;
    let reg = registration(object, truth, &region);
    // The flat start, registered the same way (its own global phase and plane), so that
    // "improvement over the start" compares like with like.
    let (_, flat_start) = region.align(truth, &|_| Complex64::new(1.0, 0.0));
    let Registration {
        plane,
        aligned,
        truth: tcrop,
        mask: mcrop,
        truth_phase: t_phase,
        phase: r_phase,
        truth_amplitude: t_amp,
        amplitude: r_amp,
    } = reg;
    let ScannedRegion {
        pixels,
        exposures,
        rows: [r0, r1],
        cols: [c0, c1],
        ..
    } = region;

    let amp_range = pixels
        .iter()
        .map(|&p| c64(truth[p]).norm())
        .fold(0.0, f64::max);
    let amplitude = image_metrics(
        &r_amp,
        &t_amp,
        &mcrop,
        amp_range.max(f64::MIN_POSITIVE),
        options,
    );
    let phase = image_metrics(&r_phase, &t_phase, &mcrop, 2.0 * PI, options);
    // SSIM on phase mapped to [0, 1], (phi + pi) / 2 pi, as PtychoPINN's evaluation does:
    // on signed, zero-centred phase SSIM's luminance term divides by local means near zero,
    // and a registered 0.3 rad error alone halved it.
    let to_unit = |a: &Array2<f64>| a.mapv(|v| (v + PI) / (2.0 * PI));
    let (r_unit, t_unit) = (to_unit(&r_phase), to_unit(&t_phase));
    let (ms_ssim, ms_ssim_scales) = ms_ssim(&r_unit, &t_unit, &mcrop, 1.0, options.ssim_sigma);
    let (ssim_truth_range, truth_range) =
        ssim_over_truth_range(&r_phase, &t_phase, &mcrop, options.ssim_sigma);
    let phase = ImageMetrics {
        ssim: ssim(&r_unit, &t_unit, &mcrop, 1.0, options.ssim_sigma),
        ms_ssim,
        ms_ssim_scales,
        ssim_truth_range: Some(ssim_truth_range),
        truth_range: Some(truth_range),
        ..phase
    };
    Ok(Metrics {
        region: Region {
            rule: format!(
                "illumination sum_j |P|^2 >= {} x max |P|^2",
                options.illumination_threshold
            ),
            pixels: pixels.len(),
            rows: [r0, r1],
            cols: [c0, c1],
            positions: topleft_yx.len(),
            mean_exposures: pixels.iter().map(|&p| exposures[p]).sum::<f64>() / pixels.len() as f64,
        },
        amplitude,
        phase,
        fienup_nrmse: fienup_nrmse(&aligned, &tcrop, &mcrop),
        fienup_nrmse_initial: fienup_nrmse(&flat_start, &tcrop, &mcrop),
        phase_plane: plane,
    })
}

/// The scanned region of a truth grid, as every score and picture registers over it: the mask
/// and exposures of [`scanned_region`], its pixels (row-major) and their bounding box.
pub(crate) struct ScannedRegion {
    /// True where the illumination reaches the threshold (the truth's whole grid).
    pub(crate) mask: Array2<bool>,
    /// Exposures at the probe's peak intensity, per pixel (the truth's whole grid).
    pub(crate) exposures: Array2<f64>,
    /// The region's pixels, row-major.
    pub(crate) pixels: Vec<(usize, usize)>,
    /// Bounding box rows `[first, last + 1)`.
    pub(crate) rows: [usize; 2],
    /// Bounding box columns `[first, last + 1)`.
    pub(crate) cols: [usize; 2],
}

impl ScannedRegion {
    /// The region `probe` lights at `topleft_yx` on a grid of shape `dim`; an error when it
    /// holds no pixel.
    pub(crate) fn new(
        probe: ArrayView2<Complex32>,
        topleft_yx: &[[i64; 2]],
        dim: (usize, usize),
        options: &EvalOptions,
    ) -> Result<ScannedRegion, ReconError> {
        let (mask, exposures) =
            scanned_region(probe, topleft_yx, dim, options.illumination_threshold);
        let pixels: Vec<(usize, usize)> =
            mask.indexed_iter().filter(|e| *e.1).map(|e| e.0).collect();
        if pixels.is_empty() {
            return Err(ReconError::BadInput(
                "no pixel of objectGuess is illuminated: positions lie outside the object".into(),
            ));
        }
        let r0 = pixels.iter().map(|p| p.0).min().unwrap_or(0);
        let r1 = pixels.iter().map(|p| p.0).max().unwrap_or(0) + 1;
        let c0 = pixels.iter().map(|p| p.1).min().unwrap_or(0);
        let c1 = pixels.iter().map(|p| p.1).max().unwrap_or(0) + 1;
        Ok(ScannedRegion {
            mask,
            exposures,
            pixels,
            rows: [r0, r1],
            cols: [c0, c1],
        })
    }

    /// `f` at every pixel of the bounding box (given its position on the whole grid).
    fn crop<T>(&self, f: impl Fn((usize, usize)) -> T) -> Array2<T> {
        let ([r0, r1], [c0, c1]) = (self.rows, self.cols);
        Array2::from_shape_fn((r1 - r0, c1 - c0), |(r, c)| f((r + r0, c + c0)))
    }

    /// `o` with its global phase and fitted phase plane against `truth` removed, cropped to
    /// the bounding box; and the plane.
    pub(crate) fn align(
        &self,
        truth: ArrayView2<Complex32>,
        o: &dyn Fn((usize, usize)) -> Complex64,
    ) -> (PhasePlane, Array2<Complex64>) {
        let (plane, (cx, cy)) = fit_phase_plane(&self.pixels, |p| o(p) * c64(truth[p]).conj());
        let ramp = |(r, c): (usize, usize)| {
            plane.offset_rad
                + plane.slope_x_rad_per_px * (c as f64 - cx)
                + plane.slope_y_rad_per_px * (r as f64 - cy)
        };
        let aligned = self.crop(|p| o(p) * Complex64::from_polar(1.0, -ramp(p)));
        (plane, aligned)
    }
}

/// A reconstruction registered to its truth as the scores see it, cropped to the region's
/// bounding box.
pub(crate) struct Registration {
    /// The phase removed from the reconstruction.
    pub(crate) plane: PhasePlane,
    /// The reconstruction with the global phase and the plane removed.
    pub(crate) aligned: Array2<Complex64>,
    /// The truth.
    pub(crate) truth: Array2<Complex64>,
    /// True inside the region.
    pub(crate) mask: Array2<bool>,
    /// arg T, centred on the region's mean phase.
    pub(crate) truth_phase: Array2<f64>,
    /// The truth's phase plus the wrapped difference of the aligned reconstruction.
    pub(crate) phase: Array2<f64>,
    /// |T|.
    pub(crate) truth_amplitude: Array2<f64>,
    /// |aligned|.
    pub(crate) amplitude: Array2<f64>,
}

/// Registers `object` to `truth` (same grid) over `region`: the one registration of the
/// scores ([`evaluate`]) and of the pictures ([`crate::register`]).
pub(crate) fn registration(
    object: ArrayView2<Complex32>,
    truth: ArrayView2<Complex32>,
    region: &ScannedRegion,
) -> Registration {
    let (plane, aligned) = region.align(truth, &|p| c64(object[p]));
    let tcrop = region.crop(|p| c64(truth[p]));
    let mcrop = region.crop(|p| region.mask[p]);
    // Phase images: truth centred on its mean phase, reconstruction = truth + wrapped
    // difference, so that neither carries 2 pi jumps the other lacks.
    let t_mean: Complex64 = region.pixels.iter().map(|&p| c64(truth[p])).sum();
    let t_ref = Complex64::from_polar(1.0, -t_mean.arg());
    let t_phase = tcrop.mapv(|t| (t * t_ref).arg());
    let d_phase = Array2::from_shape_fn(tcrop.dim(), |e| (aligned[e] * tcrop[e].conj()).arg());
    let r_phase = &t_phase + &d_phase;
    Registration {
        plane,
        truth_amplitude: tcrop.mapv(|t| t.norm()),
        amplitude: aligned.mapv(|a| a.norm()),
        aligned,
        truth: tcrop,
        mask: mcrop,
        truth_phase: t_phase,
        phase: r_phase,
    }
}

/// Complex32 -> Complex64, exactly.
fn c64(v: Complex32) -> Complex64 {
    Complex64::new(f64::from(v.re), f64::from(v.im))
}

/// Pixels whose summed probe intensity reaches `threshold` x the probe's peak intensity, and
/// that sum in units of the peak (exposures at peak intensity, per pixel).
fn scanned_region(
    probe: ArrayView2<Complex32>,
    topleft_yx: &[[i64; 2]],
    (h, w): (usize, usize),
    threshold: f64,
) -> (Array2<bool>, Array2<f64>) {
    let peak = probe
        .iter()
        .map(|p| f64::from(p.norm_sqr()))
        .fold(0.0, f64::max);
    let mut illum = Array2::<f64>::zeros((h, w));
    for &[ty, tx] in topleft_yx {
        for ((i, k), p) in probe.indexed_iter() {
            let (r, c) = (ty + i as i64, tx + k as i64);
            if r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < w {
                illum[(r as usize, c as usize)] += f64::from(p.norm_sqr());
            }
        }
    }
    if peak > 0.0 {
        illum /= peak;
    }
    (illum.mapv(|v| peak > 0.0 && v >= threshold), illum)
}

/// Global phase, then a weighted least-squares plane fitted to the wrapped residual phase of
/// `z = O conj(T)` (weights |z|), refined three times so moderate ramps survive wrapping.
/// Returns the plane and the weighted centroid (x, y) it is measured from.
fn fit_phase_plane(
    pixels: &[(usize, usize)],
    z: impl Fn((usize, usize)) -> Complex64,
) -> (PhasePlane, (f64, f64)) {
    let zs: Vec<Complex64> = pixels.iter().map(|&p| z(p)).collect();
    let total: Complex64 = zs.iter().sum();
    let weights: Vec<f64> = zs.iter().map(|v| v.norm()).collect();
    let wsum: f64 = weights.iter().sum();
    let mut plane = PhasePlane {
        offset_rad: total.arg(),
        slope_x_rad_per_px: 0.0,
        slope_y_rad_per_px: 0.0,
    };
    if wsum == 0.0 {
        return (plane, (0.0, 0.0));
    }
    let cx = pixels
        .iter()
        .zip(&weights)
        .map(|(p, w)| w * p.1 as f64)
        .sum::<f64>()
        / wsum;
    let cy = pixels
        .iter()
        .zip(&weights)
        .map(|(p, w)| w * p.0 as f64)
        .sum::<f64>()
        / wsum;
    for _ in 0..3 {
        let (mut s_f, mut s_xx, mut s_xy, mut s_yy, mut s_xf, mut s_yf) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for ((p, v), w) in pixels.iter().zip(&zs).zip(&weights) {
            let (dx, dy) = (p.1 as f64 - cx, p.0 as f64 - cy);
            let model =
                plane.offset_rad + plane.slope_x_rad_per_px * dx + plane.slope_y_rad_per_px * dy;
            let f = (v * Complex64::from_polar(1.0, -model)).arg();
            s_f += w * f;
            s_xx += w * dx * dx;
            s_xy += w * dx * dy;
            s_yy += w * dy * dy;
            s_xf += w * dx * f;
            s_yf += w * dy * f;
        }
        // Centred coordinates decouple the offset from the slopes.
        plane.offset_rad += s_f / wsum;
        let det = s_xx * s_yy - s_xy * s_xy;
        if det.abs() > 1e-12 * (s_xx * s_yy).max(f64::MIN_POSITIVE) {
            plane.slope_x_rad_per_px += (s_yy * s_xf - s_xy * s_yf) / det;
            plane.slope_y_rad_per_px += (s_xx * s_yf - s_xy * s_xf) / det;
        }
    }
    (plane, (cx, cy))
}

fn image_metrics(
    rec: &Array2<f64>,
    truth: &Array2<f64>,
    mask: &Array2<bool>,
    range: f64,
    options: &EvalOptions,
) -> ImageMetrics {
    let (mut abs, mut sq, mut count) = (0.0, 0.0, 0usize);
    for ((r, t), m) in rec.iter().zip(truth).zip(mask) {
        if *m {
            abs += (r - t).abs();
            sq += (r - t) * (r - t);
            count += 1;
        }
    }
    let mse = sq / count as f64;
    let psnr = if mse > 0.0 {
        (10.0 * (range * range / mse).log10()).min(PSNR_CAP_DB)
    } else {
        PSNR_CAP_DB
    };
    let (frc_05, frc_half_bit) = frc(rec, truth, mask);
    let (ms_ssim, ms_ssim_scales) = ms_ssim(rec, truth, mask, range, options.ssim_sigma);
    ImageMetrics {
        mae: abs / count as f64,
        psnr_db: psnr,
        data_range: range,
        ssim: ssim(rec, truth, mask, range, options.ssim_sigma),
        ms_ssim,
        ms_ssim_scales,
        ssim_truth_range: None,
        truth_range: None,
        frc_05,
        frc_half_bit,
    }
}

/// SSIM of `rec` against `truth` with the truth's own range over `mask` as the data range
/// (see [`ImageMetrics::ssim_truth_range`]), and that range. A flat truth (range 0) has
/// nothing to compare against: range taken as the smallest positive value, so a perfect
/// match still scores 1.
fn ssim_over_truth_range(
    rec: &Array2<f64>,
    truth: &Array2<f64>,
    mask: &Array2<bool>,
    sigma: f64,
) -> (f64, f64) {
    let (lo, hi) = truth
        .iter()
        .zip(mask)
        .filter(|(_, m)| **m)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (&t, _)| {
            (lo.min(t), hi.max(t))
        });
    let range = if hi > lo { hi - lo } else { 0.0 };
    let scale = range.max(f64::MIN_POSITIVE);
    let lo = if lo.is_finite() { lo } else { 0.0 };
    let unit = |a: &Array2<f64>| a.mapv(|v| (v - lo) / scale);
    (ssim(&unit(rec), &unit(truth), mask, 1.0, sigma), range)
}

/// Fienup (1997) invariant NRMSE over the region.
fn fienup_nrmse(g: &Array2<Complex64>, f: &Array2<Complex64>, mask: &Array2<bool>) -> f64 {
    let (mut fg, mut gg, mut ff) = (Complex64::new(0.0, 0.0), 0.0, 0.0);
    for ((g, f), m) in g.iter().zip(f).zip(mask) {
        if *m {
            fg += f * g.conj();
            gg += g.norm_sqr();
            ff += f.norm_sqr();
        }
    }
    if ff == 0.0 {
        return 0.0;
    }
    let gamma = if gg > 0.0 {
        fg / gg
    } else {
        Complex64::new(0.0, 0.0)
    };
    let err: f64 = g
        .iter()
        .zip(f)
        .zip(mask)
        .filter(|e| *e.1)
        .map(|((g, f), _)| (f - gamma * g).norm_sqr())
        .sum();
    (err / ff).sqrt()
}

/// Window radius of the Gaussian: scipy's `int(truncate * sigma + 0.5)` with truncate 3.5,
/// the window scikit-image's `structural_similarity(gaussian_weights=True)` uses.
fn gaussian_radius(sigma: f64) -> usize {
    ((3.5 * sigma + 0.5).floor() as usize).max(1)
}

/// Mean SSIM over the region's interior; local statistics from a Gaussian window restricted
/// to the region (normalised by the window's weight inside it, which is all of it in the
/// interior, so there it equals scikit-image's map with `use_sample_covariance=False`).
fn ssim(x: &Array2<f64>, y: &Array2<f64>, mask: &Array2<bool>, range: f64, sigma: f64) -> f64 {
    ssim_terms(x, y, mask, range, sigma, true).map_or(0.0, |t| t.ssim)
}

/// The means of SSIM and of its contrast-structure term over the pixels scored.
struct SsimTerms {
    ssim: f64,
    cs: f64,
}

/// [`SsimTerms`] over the region's interior; with `fallback`, over the whole region when the
/// interior is empty (else `None` then).
fn ssim_terms(
    x: &Array2<f64>,
    y: &Array2<f64>,
    mask: &Array2<bool>,
    range: f64,
    sigma: f64,
    fallback: bool,
) -> Option<SsimTerms> {
    let m = mask.mapv(|b| if b { 1.0 } else { 0.0 });
    let radius = gaussian_radius(sigma);
    let interior = interior_of(mask, radius);
    let any_interior = interior.iter().any(|&b| b);
    if !any_interior && !fallback {
        return None;
    }
    let blur = |a: &Array2<f64>| gaussian_blur(&(a * &m), sigma, radius);
    let norm = gaussian_blur(&m, sigma, radius);
    let (mx, my) = (blur(x), blur(y));
    let (mxx, myy, mxy) = (blur(&(x * x)), blur(&(y * y)), blur(&(x * y)));
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let (mut sum, mut sum_cs, mut count) = (0.0, 0.0, 0usize);
    for (e, &inside) in mask.indexed_iter() {
        let counted = if any_interior { interior[e] } else { inside };
        if !counted || norm[e] <= 0.0 {
            continue;
        }
        let (ux, uy) = (mx[e] / norm[e], my[e] / norm[e]);
        let vx = mxx[e] / norm[e] - ux * ux;
        let vy = myy[e] / norm[e] - uy * uy;
        let cxy = mxy[e] / norm[e] - ux * uy;
        sum +=
            ((2.0 * ux * uy + c1) * (2.0 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        sum_cs += (2.0 * cxy + c2) / (vx + vy + c2);
        count += 1;
    }
    (count > 0).then(|| SsimTerms {
        ssim: sum / count as f64,
        cs: sum_cs / count as f64,
    })
}

/// MS-SSIM over the region and the number of scales it used (see [`ImageMetrics::ms_ssim`]).
fn ms_ssim(
    x: &Array2<f64>,
    y: &Array2<f64>,
    mask: &Array2<bool>,
    range: f64,
    sigma: f64,
) -> (f64, usize) {
    // Each scale's terms, finest first; the first scale always counts (as `ssim` does).
    let mut terms = Vec::with_capacity(MS_SSIM_WEIGHTS.len());
    let (mut x, mut y, mut mask) = (x.clone(), y.clone(), mask.clone());
    for scale in 0..MS_SSIM_WEIGHTS.len() {
        match ssim_terms(&x, &y, &mask, range, sigma, scale == 0) {
            Some(t) => terms.push(t),
            None => break,
        }
        if scale + 1 < MS_SSIM_WEIGHTS.len() {
            (x, y, mask) = (halve(&x), halve(&y), halve_mask(&mask));
            if mask.is_empty() {
                break;
            }
        }
    }
    let scales = terms.len();
    // All five: the published weights (they sum to 1.0001); fewer: theirs renormalised to 1.
    let total: f64 = if scales == MS_SSIM_WEIGHTS.len() {
        1.0
    } else {
        MS_SSIM_WEIGHTS[..scales].iter().sum()
    };
    let value = terms
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let term = if k + 1 == scales { t.ssim } else { t.cs };
            term.max(0.0).powf(MS_SSIM_WEIGHTS[k] / total)
        })
        .product();
    (value, scales)
}

/// 2x2 block means (an odd last row or column is dropped).
fn halve(a: &Array2<f64>) -> Array2<f64> {
    let (h, w) = (a.nrows() / 2, a.ncols() / 2);
    Array2::from_shape_fn((h, w), |(r, c)| {
        (a[(2 * r, 2 * c)]
            + a[(2 * r + 1, 2 * c)]
            + a[(2 * r, 2 * c + 1)]
            + a[(2 * r + 1, 2 * c + 1)])
            / 4.0
    })
}

/// A coarse pixel is in the region when its four fine pixels are.
fn halve_mask(m: &Array2<bool>) -> Array2<bool> {
    let (h, w) = (m.nrows() / 2, m.ncols() / 2);
    Array2::from_shape_fn((h, w), |(r, c)| {
        m[(2 * r, 2 * c)]
            && m[(2 * r + 1, 2 * c)]
            && m[(2 * r, 2 * c + 1)]
            && m[(2 * r + 1, 2 * c + 1)]
    })
}

/// Pixels of `mask` whose (2 radius + 1)^2 square lies inside `mask` and the image.
fn interior_of(mask: &Array2<bool>, radius: usize) -> Array2<bool> {
    let (h, w) = mask.dim();
    // Erode along columns, then along rows (a square is separable).
    let erode = |src: &Array2<bool>, along_rows: bool| {
        Array2::from_shape_fn((h, w), |(r, c)| {
            let (pos, len) = if along_rows { (r, h) } else { (c, w) };
            if pos < radius || pos + radius >= len {
                return false;
            }
            (pos - radius..=pos + radius)
                .all(|q| if along_rows { src[(q, c)] } else { src[(r, q)] })
        })
    };
    erode(&erode(mask, false), true)
}

/// Separable Gaussian filter truncated at `radius`, zero outside the image. Each output is
/// `0.0 + t[-R] v[-R] + ... + t[R] v[R]` over the taps inside the image, added in that order;
/// the loops run tap by tap over whole rows so that they vectorise (the order of each
/// output's additions, hence its bits, is that of a per-pixel loop).
fn gaussian_blur(a: &Array2<f64>, sigma: f64, radius: usize) -> Array2<f64> {
    let r = radius as isize;
    let taps: Vec<(isize, f64)> = (-r..=r)
        .map(|d| (d, (-(d * d) as f64 / (2.0 * sigma * sigma)).exp()))
        .collect();
    let (h, w) = a.dim();
    if h == 0 || w == 0 {
        return Array2::zeros((h, w));
    }
    let src = a.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    // Along each row: output c takes v[c + d] for the d that keep c + d inside the row.
    let mut across = vec![0.0f64; h * w];
    for (out, row) in across.chunks_exact_mut(w).zip(src.chunks_exact(w)) {
        for &(d, t) in &taps {
            let lo = (-d).max(0) as usize;
            let hi = (w as isize - d).clamp(0, w as isize) as usize;
            if lo >= hi {
                continue;
            }
            let from = (lo as isize + d) as usize;
            for (o, v) in out[lo..hi].iter_mut().zip(&row[from..]) {
                *o += t * v;
            }
        }
    }
    // Down each column: output row y takes row y + d for the d that keep it inside.
    let mut down = vec![0.0f64; h * w];
    for (y, out) in down.chunks_exact_mut(w).enumerate() {
        for &(d, t) in &taps {
            let yy = y as isize + d;
            if yy < 0 || yy >= h as isize {
                continue;
            }
            let row = &across[yy as usize * w..][..w];
            for (o, v) in out.iter_mut().zip(row) {
                *o += t * v;
            }
        }
    }
    Array2::from_shape_vec((h, w), down).expect("h x w values")
}

/// Width of an FRC ring, frequency bins. With one-bin rings ring 1 holds 8 samples and its
/// correlation is mostly noise; three bins put about 37 samples in ring 1 and 3 x 2 pi k
/// in ring k, enough for a correlation to mean something, while ring centres stay 3 / s
/// cycles per pixel apart (the crossing is interpolated between them).
pub const FRC_RING_WIDTH: usize = 3;

/// The FRC curve of two real images over the region: mean-subtracted, masked, Hann-windowed,
/// zero padded to an s x s square. Ring 0 is the DC sample alone (always +-1, never searched);
/// ring k >= 1 holds the samples at radius (0.5 + (k - 1) W, 0.5 + k W] bins, W =
/// [`FRC_RING_WIDTH`], centred at (0.5 + (k - 0.5) W) / s cycles per pixel; rings whose centre
/// passes Nyquist are left out.
struct FrcCurve {
    /// Correlation per ring.
    values: Vec<f64>,
    /// Samples per ring.
    counts: Vec<usize>,
    /// Centre frequency per ring, cycles per pixel.
    freqs: Vec<f64>,
}

fn frc_curve(x: &Array2<f64>, y: &Array2<f64>, mask: &Array2<bool>) -> FrcCurve {
    let (h, w) = x.dim();
    let s = h.max(w).max(2);
    let hann = |i: usize, len: usize| {
        if len < 2 {
            1.0
        } else {
            0.5 - 0.5 * (2.0 * PI * i as f64 / (len - 1) as f64).cos()
        }
    };
    let prepare = |img: &Array2<f64>| {
        let (mut sum, mut count) = (0.0, 0usize);
        for (v, m) in img.iter().zip(mask) {
            if *m {
                sum += v;
                count += 1;
            }
        }
        let mean = sum / count.max(1) as f64;
        let mut buf = vec![Complex64::new(0.0, 0.0); s * s];
        for ((r, c), v) in img.indexed_iter() {
            if mask[(r, c)] {
                buf[r * s + c] = Complex64::new((v - mean) * hann(r, h) * hann(c, w), 0.0);
            }
        }
        fft2(&mut buf, s);
        buf
    };
    let (fx, fy) = (prepare(x), prepare(y));
    let width = FRC_RING_WIDTH as f64;
    let centre = |k: usize| {
        if k == 0 {
            0.0
        } else {
            0.5 + (k as f64 - 0.5) * width
        }
    };
    let mut rings = 1;
    while centre(rings) <= s as f64 / 2.0 {
        rings += 1;
    }
    let (mut num, mut p1, mut p2, mut counts) = (
        vec![0.0; rings],
        vec![0.0; rings],
        vec![0.0; rings],
        vec![0usize; rings],
    );
    let freq = |k: usize| {
        if k <= s / 2 {
            k as f64
        } else {
            k as f64 - s as f64
        }
    };
    for ky in 0..s {
        for kx in 0..s {
            let radius = freq(ky).hypot(freq(kx));
            let ring = if radius < 0.5 {
                0
            } else {
                ((radius - 0.5) / width).ceil().max(1.0) as usize
            };
            if ring < rings {
                let (a, b) = (fx[ky * s + kx], fy[ky * s + kx]);
                num[ring] += (a * b.conj()).re;
                p1[ring] += a.norm_sqr();
                p2[ring] += b.norm_sqr();
                counts[ring] += 1;
            }
        }
    }
    let values = (0..rings)
        .map(|r| {
            let d = (p1[r] * p2[r]).sqrt();
            if d > 0.0 { num[r] / d } else { 0.0 }
        })
        .collect();
    FrcCurve {
        values,
        counts,
        freqs: (0..rings).map(|k| centre(k) / s as f64).collect(),
    }
}

/// The 0.5 and half-bit crossings of the FRC of `x` and `y` over the region.
fn frc(x: &Array2<f64>, y: &Array2<f64>, mask: &Array2<bool>) -> (FrcCrossing, FrcCrossing) {
    let curve = frc_curve(x, y, mask);
    let half_bit = |r: usize| {
        let n = (curve.counts[r].max(1) as f64).sqrt();
        (0.2071 + 1.9102 / n) / (1.2071 + 0.9102 / n)
    };
    (crossing(&curve, &|_| 0.5), crossing(&curve, &half_bit))
}

/// The first fall below `threshold` after ring 0 (DC), linearly interpolated between ring
/// centres. Below already at ring 1: not resolved (no frequency). Above up to the last ring:
/// not crossed, resolution at least that of the last ring.
fn crossing(curve: &FrcCurve, threshold: &dyn Fn(usize) -> f64) -> FrcCrossing {
    let rings = curve.values.len();
    for r in 1..rings {
        let here = curve.values[r] - threshold(r);
        if here >= 0.0 {
            continue;
        }
        if r == 1 {
            return FrcCrossing {
                frequency: None,
                resolution_px: None,
                crossed: false,
            };
        }
        let prev = curve.values[r - 1] - threshold(r - 1);
        let t = prev / (prev - here);
        let f = curve.freqs[r - 1] + t * (curve.freqs[r] - curve.freqs[r - 1]);
        return FrcCrossing {
            frequency: Some(f),
            resolution_px: Some(1.0 / f),
            crossed: true,
        };
    }
    let f = curve
        .freqs
        .last()
        .copied()
        .unwrap_or(0.5)
        .max(f64::MIN_POSITIVE);
    FrcCrossing {
        frequency: Some(f),
        resolution_px: Some(1.0 / f),
        crossed: false,
    }
}

/// In-place 2-D forward FFT of an s x s buffer (evaluation only; f64, on the same pinned
/// code path as the solver's, so that metrics too have the same bits on every machine).
fn fft2(buf: &mut [Complex64], s: usize) {
    let fft = match FftPlannerAvx::<f64>::new() {
        Ok(mut planner) => planner.plan_fft_forward(s),
        Err(()) => FftPlannerScalar::<f64>::new().plan_fft_forward(s),
    };
    fft.process(buf);
    let mut t = vec![Complex64::new(0.0, 0.0); s * s];
    for r in 0..s {
        for c in 0..s {
            t[c * s + r] = buf[r * s + c];
        }
    }
    fft.process(&mut t);
    for r in 0..s {
        for c in 0..s {
            buf[c * s + r] = t[r * s + c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(h: usize, w: usize) -> Array2<Complex32> {
        Array2::from_shape_fn((h, w), |(r, c)| {
            let (x, y) = (c as f32 / 7.0, r as f32 / 5.0);
            Complex32::from_polar(
                0.7 + 0.3 * (x.sin() * y.cos()),
                1.5 * (x * 0.7 + y * 0.3).sin(),
            )
        })
    }

    fn probe(n: usize) -> Array2<Complex32> {
        Array2::from_shape_fn((n, n), |(i, k)| {
            let (dy, dx) = (i as f32 - n as f32 / 2.0, k as f32 - n as f32 / 2.0);
            Complex32::new((-(dx * dx + dy * dy) / (n * n) as f32 * 8.0).exp(), 0.0)
        })
    }

    fn positions() -> Vec<[i64; 2]> {
        (0..5)
            .flat_map(|i| (0..5).map(move |j| [4 + 6 * i, 4 + 6 * j]))
            .collect()
    }

    /// The images of `tests/fixtures/metrics/ms_ssim_reference.py`, built the same way.
    fn reference_images(s: usize) -> (Array2<f64>, [(&'static str, Array2<f64>); 3]) {
        let hashed = |r: f64, c: f64, a: f64, b: f64| {
            let v = (r * a + c * b).sin() * 43758.5453;
            v - v.floor()
        };
        let wave = |r: f64, c: f64| 0.5 + 0.3 * (0.21 * r).sin() * (0.13 * c).cos();
        let x = Array2::from_shape_fn((s, s), |(r, c)| {
            let (r, c) = (r as f64, c as f64);
            wave(r, c) + 0.1 * hashed(r, c, 12.9898, 78.233)
        });
        let noisy = Array2::from_shape_fn((s, s), |(r, c)| {
            let (rf, cf) = (r as f64, c as f64);
            x[(r, c)] + 0.15 * (hashed(rf, cf, 39.3468, 11.135) - 0.5)
        });
        let smooth = Array2::from_shape_fn((s, s), |(r, c)| wave(r as f64, c as f64));
        let shifted = x.mapv(|v| 0.8 * v + 0.1);
        (
            x,
            [("noisy", noisy), ("smooth", smooth), ("shifted", shifted)],
        )
    }

    /// Issue 21, part 6: phase SSIM over the truth's own range, and the 2 pi convention's,
    /// against scikit-image 0.26's structural_similarity (an independent implementation;
    /// values from `tests/fixtures/metrics/ssim_truth_range_reference.py`, 12 decimals) on
    /// whole 96 x 96 phase images; a half-contrast ("washed") phase scores 0.956 in the 2 pi
    /// convention and 0.804 over the truth's range.
    #[test]
    fn phase_ssim_over_the_truth_range_matches_scikit_image() {
        const REFERENCE: &[(&str, f64, f64, f64)] = &[
            ("noisy", 1.0, 0.703096815821, 0.883693895888),
            ("washed", 1.0, 0.803597164650, 0.955568061991),
            ("smooth", 1.0, 0.732312095890, 0.935732761653),
            ("noisy", 1.5, 0.786441120254, 0.897499513918),
            ("washed", 1.5, 0.795568312924, 0.935200546195),
            ("smooth", 1.5, 0.824473283446, 0.944397215077),
        ];
        let s = 96;
        let hashed = |r: f64, c: f64, a: f64, b: f64| {
            let v = (r * a + c * b).sin() * 43758.5453;
            v - v.floor()
        };
        let wave = |r: f64, c: f64| 0.3 * (0.21 * r).sin() * (0.13 * c).cos();
        let truth = Array2::from_shape_fn((s, s), |(r, c)| {
            let (r, c) = (r as f64, c as f64);
            2.0 * (wave(r, c) + 0.1 * hashed(r, c, 12.9898, 78.233))
        });
        let noisy = Array2::from_shape_fn((s, s), |(r, c)| {
            let (rf, cf) = (r as f64, c as f64);
            truth[(r, c)] + 0.3 * (hashed(rf, cf, 39.3468, 11.135) - 0.5)
        });
        let washed = truth.mapv(|v| 0.5 * v);
        let smooth = Array2::from_shape_fn((s, s), |(r, c)| 2.0 * wave(r as f64, c as f64));
        let mask = Array2::from_elem((s, s), true);
        let two_pi = |a: &Array2<f64>| a.mapv(|v| (v + PI) / (2.0 * PI));
        for &(name, sigma, expected, expected_2pi) in REFERENCE {
            let rec = match name {
                "noisy" => &noisy,
                "washed" => &washed,
                _ => &smooth,
            };
            let (got, range) = ssim_over_truth_range(rec, &truth, &mask, sigma);
            assert!(
                (got - expected).abs() < 1e-9,
                "{name} sigma {sigma}: {got} vs scikit-image {expected}"
            );
            assert!((range - 1.383623266857).abs() < 1e-9, "{range}");
            let got = ssim(&two_pi(rec), &two_pi(&truth), &mask, 1.0, sigma);
            assert!(
                (got - expected_2pi).abs() < 1e-9,
                "{name} sigma {sigma}: 2 pi {got} vs scikit-image {expected_2pi}"
            );
        }
        // A perfect match scores 1, a flat truth too.
        assert!((ssim_over_truth_range(&truth, &truth, &mask, 1.0).0 - 1.0).abs() < 1e-12);
        let flat = Array2::from_elem((s, s), 0.4);
        assert!((ssim_over_truth_range(&flat, &flat, &mask, 1.0).0 - 1.0).abs() < 1e-12);
    }

    /// The blur's row-at-a-time loops give, bit for bit, the per-pixel loop they replaced
    /// (each output's taps added in the same order), on images wider and narrower than the
    /// filter.
    #[test]
    fn gaussian_blur_equals_the_per_pixel_loop_bit_for_bit() {
        fn per_pixel(a: &Array2<f64>, sigma: f64, radius: usize) -> Array2<f64> {
            let radius = radius as isize;
            let taps: Vec<f64> = (-radius..=radius)
                .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
                .collect();
            let (h, w) = a.dim();
            let pass = |src: &Array2<f64>, along_rows: bool| {
                Array2::from_shape_fn((h, w), |(r, c)| {
                    let mut s = 0.0;
                    for (t, d) in taps.iter().zip(-radius..=radius) {
                        let (rr, cc) = if along_rows {
                            (r as isize + d, c as isize)
                        } else {
                            (r as isize, c as isize + d)
                        };
                        if rr >= 0 && cc >= 0 && (rr as usize) < h && (cc as usize) < w {
                            s += t * src[(rr as usize, cc as usize)];
                        }
                    }
                    s
                })
            };
            pass(&pass(a, false), true)
        }
        for (h, w) in [(37, 29), (3, 40), (40, 2), (1, 1), (0, 5)] {
            let a = Array2::from_shape_fn((h, w), |(r, c)| {
                ((r * 31 + c * 17) as f64 * 0.37).sin() * 3.0 - 0.5
            });
            for (sigma, radius) in [(1.5, 5), (0.8, 3)] {
                let got = gaussian_blur(&a, sigma, radius);
                let want = per_pixel(&a, sigma, radius);
                assert_eq!(got.dim(), want.dim());
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g.to_bits(), w.to_bits(), "{h} x {w} sigma {sigma}");
                }
            }
            // An array in column-major layout (as a transpose leaves it) blurs the same way.
            let t = a.clone().reversed_axes();
            assert!(!t.is_standard_layout() || h <= 1 || w <= 1);
            assert_eq!(gaussian_blur(&t, 1.5, 5), per_pixel(&t, 1.5, 5));
        }
    }

    /// MS-SSIM and SSIM against pytorch_msssim (an independent implementation; values from
    /// `tests/fixtures/metrics/ms_ssim_reference.py`, pytorch_msssim 1.0.0, torch 2.15.0, its
    /// window built in float64; printed to 12 decimals) on a whole 176 x 176 image (its interior is pytorch_msssim's valid convolution), at
    /// the default sigma and at the classic 11-tap, sigma 1.5 window.
    #[test]
    fn ms_ssim_matches_an_independent_implementation() {
        const REFERENCE: &[(&str, f64, f64, f64)] = &[
            ("noisy", 1.0, 0.971507349387, 0.728163081382),
            ("smooth", 1.0, 0.982015141521, 0.792808593551),
            ("shifted", 1.0, 0.977892408443, 0.979598140869),
            ("noisy", 1.5, 0.981922610393, 0.800461237239),
            ("smooth", 1.5, 0.989123276831, 0.863409964215),
            ("shifted", 1.5, 0.977121153352, 0.977796436406),
        ];
        let (x, cases) = reference_images(176);
        let mask = Array2::from_elem(x.dim(), true);
        assert_eq!(ms_ssim(&x, &x, &mask, 1.0, 1.0), (1.0, 5));
        for &(name, sigma, expected_ms, expected_ssim) in REFERENCE {
            let y = &cases.iter().find(|c| c.0 == name).unwrap().1;
            let (got, scales) = ms_ssim(&x, y, &mask, 1.0, sigma);
            assert_eq!(scales, 5);
            assert!(
                (got - expected_ms).abs() < 1e-9,
                "{name} sigma {sigma}: MS-SSIM {got} vs pytorch_msssim {expected_ms}"
            );
            let got = ssim(&x, y, &mask, 1.0, sigma);
            assert!(
                (got - expected_ssim).abs() < 1e-9,
                "{name} sigma {sigma}: SSIM {got} vs pytorch_msssim {expected_ssim}"
            );
        }
    }

    /// A region too small for five scales uses fewer, weights renormalised; a region with no
    /// interior at all still gets the one-scale figure, SSIM itself.
    #[test]
    fn ms_ssim_on_small_regions_uses_fewer_scales() {
        let (x, cases) = reference_images(48);
        let y = &cases[0].1;
        let mask = Array2::from_elem(x.dim(), true);
        // 48 -> 24 -> 12 -> 6: a 9-tap window (sigma 1) fits 3 scales.
        let (value, scales) = ms_ssim(&x, y, &mask, 1.0, 1.0);
        assert_eq!(scales, 3);
        assert!(value > 0.0 && value < 1.0, "{value}");
        let tiny = Array2::from_elem((6, 6), true);
        let cut = |a: &Array2<f64>| a.slice(ndarray::s![..6, ..6]).to_owned();
        let (value, scales) = ms_ssim(&cut(&x), &cut(y), &tiny, 1.0, 1.0);
        assert_eq!(scales, 1);
        assert_eq!(value, ssim(&cut(&x), &cut(y), &tiny, 1.0, 1.0).max(0.0));
    }

    #[test]
    fn the_truth_itself_scores_perfectly_even_after_a_phase_ramp() {
        let truth = object(48, 48);
        let ramped = Array2::from_shape_fn((48, 48), |(r, c)| {
            truth[(r, c)] * Complex32::from_polar(1.0, 0.8 + 0.03 * c as f32 - 0.02 * r as f32)
        });
        let m = evaluate(
            ramped.view(),
            truth.view(),
            probe(16).view(),
            &positions(),
            &EvalOptions::default(),
        )
        .unwrap();
        assert!(m.fienup_nrmse < 1e-5, "{m:?}");
        assert!(m.phase.mae < 1e-5 && m.amplitude.mae < 1e-6, "{m:?}");
        assert!(
            m.phase.ssim > 0.99999 && m.amplitude.ssim > 0.99999,
            "{m:?}"
        );
        assert!(
            !m.phase.frc_05.crossed && !m.amplitude.frc_half_bit.crossed,
            "{m:?}"
        );
        // Stays above up to the last ring: resolved at least to about Nyquist.
        assert!(m.phase.frc_05.resolution_px.unwrap() < 2.2, "{m:?}");
        assert!(
            (m.phase_plane.slope_x_rad_per_px - 0.03).abs() < 1e-4,
            "{m:?}"
        );
        assert!(
            (m.phase_plane.slope_y_rad_per_px + 0.02).abs() < 1e-4,
            "{m:?}"
        );
        assert!(m.fienup_nrmse_initial > 0.3, "{m:?}");
        assert!(
            m.amplitude.data_range > 0.7 && m.amplitude.data_range <= 1.0 + 1e-6,
            "{m:?}"
        );
    }

    #[test]
    fn noise_lowers_every_score_and_more_noise_lowers_it_more() {
        let truth = object(48, 48);
        let noisy = |level: f32| {
            Array2::from_shape_fn((48, 48), |(r, c)| {
                let n = ((r * 31 + c * 17) as f32 * 1.37).sin() * level;
                truth[(r, c)] * Complex32::from_polar(1.0 + n, n)
            })
        };
        let score = |level| {
            evaluate(
                noisy(level).view(),
                truth.view(),
                probe(16).view(),
                &positions(),
                &EvalOptions::default(),
            )
            .unwrap()
        };
        let (a, b) = (score(0.05), score(0.3));
        assert!(a.fienup_nrmse < b.fienup_nrmse);
        assert!(a.phase.mae < b.phase.mae && a.amplitude.mae < b.amplitude.mae);
        assert!(a.phase.psnr_db > b.phase.psnr_db && a.phase.ssim > b.phase.ssim);
        assert!(a.phase.frc_05.frequency >= b.phase.frc_05.frequency);
        assert!(b.phase.frc_05.crossed);
        assert_eq!(a.region.positions, 25);
        let json = serde_json::to_string(&a).unwrap();
        let back: Metrics = serde_json::from_str(&json).unwrap();
        // serde_json parses floats to within an ulp, not always exactly.
        assert!((back.fienup_nrmse - a.fienup_nrmse).abs() < 1e-12);
        assert!((back.region.mean_exposures - a.region.mean_exposures).abs() < 1e-12);
        assert_eq!(back.region.pixels, a.region.pixels);
    }

    fn score(object: &Array2<Complex32>, truth: &Array2<Complex32>) -> Metrics {
        evaluate(
            object.view(),
            truth.view(),
            probe(16).view(),
            &positions(),
            &EvalOptions::default(),
        )
        .unwrap()
    }

    /// SplitMix64 in [-1, 1): deterministic noise without a dependency.
    fn noise(seed: u64, len: usize) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    // Regression (issue 12, defect 1): SSIM on signed, zero-centred phase fell to 0.40 for a
    // plain 0.3 rad error; on phase mapped to [0, 1] a constant offset costs nothing, and a
    // small local error costs little.
    #[test]
    fn phase_ssim_ignores_constant_offsets_and_is_mild_on_small_errors() {
        let truth = object(48, 48);
        for offset in [0.3f32, -2.0, 3.0] {
            let shifted = truth.mapv(|t| t * Complex32::from_polar(1.0, offset));
            let m = score(&shifted, &truth);
            assert!(m.phase.ssim > 0.999_999, "{offset}: {m:?}");
            assert!(m.fienup_nrmse < 1e-5, "{offset}: {m:?}");
        }
        let n = noise(7, 48 * 48);
        let noisy = Array2::from_shape_fn((48, 48), |(r, c)| {
            truth[(r, c)] * Complex32::from_polar(1.0, 0.05 * n[r * 48 + c])
        });
        let m = score(&noisy, &truth);
        assert!(m.phase.ssim > 0.8 && m.phase.ssim < 1.0, "{m:?}");
    }

    #[test]
    fn identical_objects_score_zero_error_and_full_similarity() {
        let truth = object(48, 48);
        let m = score(&truth, &truth);
        assert_eq!(m.fienup_nrmse, 0.0);
        assert_eq!(m.amplitude.mae, 0.0);
        assert_eq!(m.amplitude.psnr_db, PSNR_CAP_DB);
        assert!((m.amplitude.ssim - 1.0).abs() < 1e-12 && (m.phase.ssim - 1.0).abs() < 1e-12);
    }

    // Regression (issue 12, defect 2): the crossing search took ring 0 (DC, always +-1) as the
    // previous value, so pure noise "crossed" between DC and ring 1 and reported 2 x the
    // region size. Noise is not resolved at any frequency.
    #[test]
    fn frc_of_pure_noise_is_not_resolved_and_dc_never_counts() {
        // A truth without a phase trend: registering noise to a trend would put the trend
        // into the noise's phase image (and correlate them for real).
        let truth = Array2::from_shape_fn((48, 48), |(r, c)| {
            let (x, y) = (c as f32 * PI as f32 / 6.0, r as f32 * PI as f32 / 6.0);
            Complex32::from_polar(0.8 + 0.2 * x.cos(), 0.8 * x.sin() * y.cos())
        });
        for seed in 1..6 {
            let (a, p) = (noise(seed, 48 * 48), noise(seed + 100, 48 * 48));
            // Phase within +-1 rad: the phase image is then the noise itself (a phase drawn
            // uniformly on the circle would be scored as truth + a wrapped difference).
            let random = Array2::from_shape_fn((48, 48), |(r, c)| {
                let k = r * 48 + c;
                Complex32::from_polar(1.0 + 0.5 * a[k], p[k])
            });
            let m = score(&random, &truth);
            for crossing in [&m.phase.frc_05, &m.amplitude.frc_05] {
                assert_eq!(
                    crossing,
                    &FrcCrossing {
                        frequency: None,
                        resolution_px: None,
                        crossed: false
                    },
                    "seed {seed}: {m:?}"
                );
            }
        }
    }

    #[test]
    fn frc_rings_are_wide_and_dc_is_alone_in_ring_0() {
        let ones = Array2::from_elem((40, 40), 1.0);
        let mask = Array2::from_elem((40, 40), true);
        let curve = frc_curve(&ones, &ones, &mask);
        assert_eq!(curve.counts[0], 1);
        assert!(curve.counts[1] >= 30, "{:?}", curve.counts);
        assert!(curve.counts[2..].iter().all(|&n| n > curve.counts[1]));
        assert!(*curve.freqs.last().unwrap() <= 0.5);
        // DC and the rings centred at 2, 5, ..., 20 bins (20 = Nyquist of 40).
        assert_eq!(curve.freqs.len(), 8);
    }

    // Regression (issue 12, defect 3): the flat start was scored without the phase-plane fit
    // the result gets, which overstated the improvement. A ramp on the truth is removed for
    // the flat start exactly as for a reconstruction.
    #[test]
    fn the_flat_start_is_registered_like_the_result() {
        let flat = Array2::from_shape_fn((48, 48), |(r, c)| {
            let (x, y) = (c as f32 / 7.0, r as f32 / 5.0);
            Complex32::from_polar(0.7 + 0.3 * (x.sin() * y.cos()), 0.0)
        });
        let ramped = Array2::from_shape_fn((48, 48), |(r, c)| {
            flat[(r, c)] * Complex32::from_polar(1.0, 0.05 * c as f32 + 0.03 * r as f32)
        });
        let (a, b) = (score(&flat, &flat), score(&ramped, &ramped));
        assert!(
            (a.fienup_nrmse_initial - b.fienup_nrmse_initial).abs() < 1e-4,
            "{} vs {}",
            a.fienup_nrmse_initial,
            b.fienup_nrmse_initial
        );
    }

    #[test]
    fn mean_exposures_add_up_to_positions_times_the_probe_energy() {
        let truth = object(48, 48);
        let p = probe(16);
        let peak = p
            .iter()
            .map(|v| f64::from(v.norm_sqr()))
            .fold(0.0, f64::max);
        let energy: f64 = p.iter().map(|v| f64::from(v.norm_sqr())).sum::<f64>() / peak;
        // Threshold 0: the region is the whole grid, which holds every patch.
        let all = EvalOptions {
            illumination_threshold: 0.0,
            ..EvalOptions::default()
        };
        for positions in [vec![[10, 10]], vec![[10, 10], [10, 10]], positions()] {
            let m = evaluate(truth.view(), truth.view(), p.view(), &positions, &all).unwrap();
            assert_eq!(m.region.positions, positions.len());
            let total = m.region.mean_exposures * m.region.pixels as f64;
            assert!(
                (total - positions.len() as f64 * energy).abs() < 1e-6 * total,
                "{total} vs {} x {energy}",
                positions.len()
            );
        }
    }
}
