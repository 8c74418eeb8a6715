//! Scoring a reconstruction against the ground-truth object over the scanned region: global
//! phase and a fitted phase plane removed; amplitude and phase MAE, PSNR, SSIM and FRC; the
//! Fienup invariant NRMSE of the complex object.

use crate::ReconError;
use ndarray::{Array2, ArrayView2};
use num_complex::{Complex32, Complex64};
use rustfft::{FftPlannerAvx, FftPlannerScalar};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// PSNR is capped here (a perfect reconstruction would otherwise be infinite, which JSON
/// cannot hold).
pub const PSNR_CAP_DB: f64 = 300.0;

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
    /// The same figure for the flat start (ones): what the reconstruction improved on.
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
}

/// Scores of one real image (amplitude or phase).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageMetrics {
    /// Mean absolute error over the region (phase: of the wrapped difference, radians).
    pub mae: f64,
    /// `10 log10(range^2 / MSE)`, dB, capped at 300.
    pub psnr_db: f64,
    /// The data range used by PSNR and SSIM: amplitude, max |truth| over the region;
    /// phase, 2 pi.
    pub data_range: f64,
    /// Mean SSIM over the region (Gaussian window restricted to the region).
    pub ssim: f64,
    /// FRC crossing of the 0.5 threshold.
    pub frc_05: FrcCrossing,
    /// FRC crossing of the half-bit threshold (van Heel & Schatz 2005).
    pub frc_half_bit: FrcCrossing,
}

/// Where a Fourier ring correlation first falls below a threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrcCrossing {
    /// Spatial frequency, cycles per pixel (0.5 = Nyquist when it never crosses).
    pub frequency: f64,
    /// 1 / frequency, pixels: the resolution.
    pub resolution_px: f64,
    /// False when the FRC stays above the threshold up to Nyquist.
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

/// Scores `object` against `truth` (same grid) over the region illuminated by `probe` at the
/// integer top-left corners `topleft_yx`.
pub fn evaluate(
    object: ArrayView2<Complex32>,
    truth: ArrayView2<Complex32>,
    probe: ArrayView2<Complex32>,
    topleft_yx: &[[i64; 2]],
    options: &EvalOptions,
) -> Result<Metrics, ReconError> {
    if object.dim() != truth.dim() {
        return Err(ReconError::BadInput(format!(
            "reconstruction is {:?} but objectGuess is {:?}",
            object.dim(),
            truth.dim()
        )));
    }
    let (h, w) = truth.dim();
    let mask = scanned_region(probe, topleft_yx, (h, w), options.illumination_threshold);
    let pixels: Vec<(usize, usize)> = mask.indexed_iter().filter(|e| *e.1).map(|e| e.0).collect();
    if pixels.is_empty() {
        return Err(ReconError::BadInput(
            "no pixel of objectGuess is illuminated: positions lie outside the object".into(),
        ));
    }
    let r0 = pixels.iter().map(|p| p.0).min().unwrap_or(0);
    let r1 = pixels.iter().map(|p| p.0).max().unwrap_or(0) + 1;
    let c0 = pixels.iter().map(|p| p.1).min().unwrap_or(0);
    let c1 = pixels.iter().map(|p| p.1).max().unwrap_or(0) + 1;
    let c64 = |v: Complex32| Complex64::new(f64::from(v.re), f64::from(v.im));

    let plane = fit_phase_plane(&pixels, |p| c64(object[p]) * c64(truth[p]).conj());
    let (cx, cy) = plane.1;
    let plane = plane.0;
    let ramp = |(r, c): (usize, usize)| {
        plane.offset_rad
            + plane.slope_x_rad_per_px * (c as f64 - cx)
            + plane.slope_y_rad_per_px * (r as f64 - cy)
    };
    let (bh, bw) = (r1 - r0, c1 - c0);
    // Bounding-box crops: aligned reconstruction, truth, region mask.
    let aligned = Array2::from_shape_fn((bh, bw), |(r, c)| {
        let p = (r + r0, c + c0);
        c64(object[p]) * Complex64::from_polar(1.0, -ramp(p))
    });
    let tcrop = Array2::from_shape_fn((bh, bw), |(r, c)| c64(truth[(r + r0, c + c0)]));
    let mcrop = Array2::from_shape_fn((bh, bw), |(r, c)| mask[(r + r0, c + c0)]);

    // Phase images: truth centred on its mean phase, reconstruction = truth + wrapped
    // difference, so that neither carries 2 pi jumps the other lacks.
    let t_mean: Complex64 = pixels.iter().map(|&p| c64(truth[p])).sum();
    let t_ref = Complex64::from_polar(1.0, -t_mean.arg());
    let t_phase = tcrop.mapv(|t| (t * t_ref).arg());
    let d_phase = Array2::from_shape_fn((bh, bw), |e| (aligned[e] * tcrop[e].conj()).arg());
    let r_phase = &t_phase + &d_phase;
    let t_amp = tcrop.mapv(|t| t.norm());
    let r_amp = aligned.mapv(|a| a.norm());

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

    let ones = Array2::from_elem((bh, bw), Complex64::new(1.0, 0.0));
    Ok(Metrics {
        region: Region {
            rule: format!(
                "illumination sum_j |P|^2 >= {} x max |P|^2",
                options.illumination_threshold
            ),
            pixels: pixels.len(),
            rows: [r0, r1],
            cols: [c0, c1],
        },
        amplitude,
        phase,
        fienup_nrmse: fienup_nrmse(&aligned, &tcrop, &mcrop),
        fienup_nrmse_initial: fienup_nrmse(&ones, &tcrop, &mcrop),
        phase_plane: plane,
    })
}

/// Pixels whose summed probe intensity reaches `threshold` x the probe's peak intensity.
pub(crate) fn scanned_region(
    probe: ArrayView2<Complex32>,
    topleft_yx: &[[i64; 2]],
    (h, w): (usize, usize),
    threshold: f64,
) -> Array2<bool> {
    let mut illum = Array2::<f64>::zeros((h, w));
    for &[ty, tx] in topleft_yx {
        for ((i, k), p) in probe.indexed_iter() {
            let (r, c) = (ty + i as i64, tx + k as i64);
            if r >= 0 && c >= 0 && (r as usize) < h && (c as usize) < w {
                illum[(r as usize, c as usize)] += f64::from(p.norm_sqr());
            }
        }
    }
    let peak = probe
        .iter()
        .map(|p| f64::from(p.norm_sqr()))
        .fold(0.0, f64::max);
    illum.mapv(|v| peak > 0.0 && v >= threshold * peak)
}

/// Global phase, then a weighted least-squares plane fitted to the wrapped residual phase of
/// `z = O conj(T)` (weights |z|), refined three times so moderate ramps survive wrapping.
/// Returns the plane and the weighted centroid (x, y) it is measured from.
pub(crate) fn fit_phase_plane(
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
    ImageMetrics {
        mae: abs / count as f64,
        psnr_db: psnr,
        data_range: range,
        ssim: ssim(rec, truth, mask, range, options.ssim_sigma),
        frc_05,
        frc_half_bit,
    }
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

/// Mean SSIM over the region, local statistics from a Gaussian window restricted to the
/// region (normalised by the window's weight inside it).
fn ssim(x: &Array2<f64>, y: &Array2<f64>, mask: &Array2<bool>, range: f64, sigma: f64) -> f64 {
    let m = mask.mapv(|b| if b { 1.0 } else { 0.0 });
    let blur = |a: &Array2<f64>| gaussian_blur(&(a * &m), sigma);
    let norm = gaussian_blur(&m, sigma);
    let (mx, my) = (blur(x), blur(y));
    let (mxx, myy, mxy) = (blur(&(x * x)), blur(&(y * y)), blur(&(x * y)));
    let (c1, c2) = ((0.01 * range).powi(2), (0.03 * range).powi(2));
    let (mut sum, mut count) = (0.0, 0usize);
    for (e, &inside) in mask.indexed_iter() {
        if !inside || norm[e] <= 0.0 {
            continue;
        }
        let (ux, uy) = (mx[e] / norm[e], my[e] / norm[e]);
        let vx = (mxx[e] / norm[e] - ux * ux).max(0.0);
        let vy = (myy[e] / norm[e] - uy * uy).max(0.0);
        let cxy = mxy[e] / norm[e] - ux * uy;
        sum +=
            ((2.0 * ux * uy + c1) * (2.0 * cxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        count += 1;
    }
    sum / count.max(1) as f64
}

/// Separable Gaussian filter, truncated at 3.5 sigma, zero outside the image.
fn gaussian_blur(a: &Array2<f64>, sigma: f64) -> Array2<f64> {
    let radius = (3.5 * sigma).ceil().max(1.0) as isize;
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

/// FRC of two real images over the region: mean-subtracted, masked, Hann-windowed, zero
/// padded to a square; rings one frequency bin wide. Returns the 0.5 and half-bit crossings.
fn frc(x: &Array2<f64>, y: &Array2<f64>, mask: &Array2<bool>) -> (FrcCrossing, FrcCrossing) {
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
    let rings = s / 2 + 1;
    let (mut num, mut p1, mut p2, mut count) = (
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
            let ring = (freq(ky).hypot(freq(kx))).round() as usize;
            if ring < rings {
                let (a, b) = (fx[ky * s + kx], fy[ky * s + kx]);
                num[ring] += (a * b.conj()).re;
                p1[ring] += a.norm_sqr();
                p2[ring] += b.norm_sqr();
                count[ring] += 1;
            }
        }
    }
    let curve: Vec<f64> = (0..rings)
        .map(|r| {
            let d = (p1[r] * p2[r]).sqrt();
            if d > 0.0 { num[r] / d } else { 0.0 }
        })
        .collect();
    let crossing = |threshold: &dyn Fn(usize) -> f64| {
        for r in 1..rings {
            let (prev, here) = (curve[r - 1] - threshold(r - 1), curve[r] - threshold(r));
            if here < 0.0 {
                let t = if prev > 0.0 {
                    prev / (prev - here)
                } else {
                    0.0
                };
                let f = ((r - 1) as f64 + t).max(0.5) / s as f64;
                return FrcCrossing {
                    frequency: f,
                    resolution_px: 1.0 / f,
                    crossed: true,
                };
            }
        }
        FrcCrossing {
            frequency: 0.5,
            resolution_px: 2.0,
            crossed: false,
        }
    };
    let half_bit = |r: usize| {
        let n = (count[r].max(1) as f64).sqrt();
        (0.2071 + 1.9102 / n) / (1.2071 + 0.9102 / n)
    };
    (crossing(&|_| 0.5), crossing(&half_bit))
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
        let json = serde_json::to_string(&a).unwrap();
        let back: Metrics = serde_json::from_str(&json).unwrap();
        assert!((back.fienup_nrmse - a.fienup_nrmse).abs() < 1e-12 && back.region == a.region);
    }
}
