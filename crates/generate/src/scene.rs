//! What is imaged: the built-in object and probe, and the scan positions.

use crate::detmath::{exp, sin_cos};
use crate::fft::{Plans, fftshift_source};
use crate::rng::{Purpose, stream};
use ndarray::Array2;
use num_complex::{Complex, Complex32};
use study_design::{HEX_JITTER, ScanPattern};

/// The built-in object: `size` x `size` complex64, amplitude in [0.5, 1], phase spanning about
/// `phase_range` radians, with structure at three scales (the object, the probe, a pixel) plus
/// sharp-edged discs; a pure function of `seed`. `patch` (N) sets the middle scale.
pub fn builtin_object(size: usize, patch: usize, phase_range: f64, seed: u64) -> Array2<Complex32> {
    let w = size;
    let mut rng = stream(seed, Purpose::Object, 0.0, 0);
    // Complex white noise: the real and imaginary parts become two independent fields after a
    // real, symmetric filter (one FFT pair for both).
    let mut field: Vec<Complex<f64>> = (0..w * w)
        .map(|_| Complex::new(2.0 * rng.uniform() - 1.0, 2.0 * rng.uniform() - 1.0))
        .collect();
    let mut fft = Plans::<f64>::new(w).workspace();
    fft.transform(&mut field, false);
    // Gaussian filters exp(-2 pi^2 sigma^2 q^2), each scaled to unit output variance, weighted.
    let scales = [
        (w as f64 / 8.0, 1.0),
        ((patch as f64 / 8.0).max(1.5), 0.5),
        (1.0, 0.2),
    ];
    let freq = |i: usize| -> f64 {
        let k = if i <= (w - 1) / 2 {
            i as f64
        } else {
            i as f64 - w as f64
        };
        k / w as f64
    };
    let mut filter = vec![0.0f64; w * w];
    for (sigma, weight) in scales {
        let c = -2.0 * std::f64::consts::PI * std::f64::consts::PI * sigma * sigma;
        let band: Vec<f64> = (0..w * w)
            .map(|i| {
                let (fy, fx) = (freq(i / w), freq(i % w));
                exp(c * (fy * fy + fx * fx))
            })
            .collect();
        let norm = band.iter().map(|h| h * h).sum::<f64>().sqrt();
        for (f, h) in filter.iter_mut().zip(&band) {
            *f += weight * h / norm;
        }
    }
    for (v, h) in field.iter_mut().zip(&filter) {
        *v *= *h;
    }
    fft.transform(&mut field, true);
    let normalise = |values: Vec<f64>| -> Vec<f64> {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        values.into_iter().map(|v| (v - lo) / span).collect()
    };
    let mut amp = normalise(field.iter().map(|v| v.re).collect());
    let mut phase: Vec<f64> = normalise(field.iter().map(|v| v.im).collect())
        .into_iter()
        .map(|p| phase_range * (p - 0.5))
        .collect();
    // Discs ("cells") with anti-aliased edges: sharp structure for resolution figures.
    let discs = ((w * w) as f64 / (patch * patch) as f64 * 2.0)
        .round()
        .max(4.0) as usize;
    for _ in 0..discs {
        let cy = rng.uniform() * w as f64;
        let cx = rng.uniform() * w as f64;
        let radius = patch as f64 * (1.0 / 32.0 + rng.uniform() * (1.0 / 6.0 - 1.0 / 32.0));
        let d_phase = 1.2 * rng.uniform() - 0.6;
        let d_amp = 0.6 * rng.uniform() - 0.3;
        let r0 = (cy - radius - 1.0).floor().max(0.0) as usize;
        let r1 = ((cy + radius + 2.0).ceil() as usize).min(w);
        let c0 = (cx - radius - 1.0).floor().max(0.0) as usize;
        let c1 = ((cx + radius + 2.0).ceil() as usize).min(w);
        for r in r0..r1 {
            for c in c0..c1 {
                let (dy, dx) = (r as f64 - cy, c as f64 - cx);
                let cover = (radius + 0.5 - (dy * dy + dx * dx).sqrt()).clamp(0.0, 1.0);
                if cover > 0.0 {
                    amp[r * w + c] += cover * d_amp;
                    phase[r * w + c] += cover * d_phase;
                }
            }
        }
    }
    let values: Vec<Complex32> = amp
        .iter()
        .zip(&phase)
        .map(|(a, p)| {
            let a = 0.5 + 0.5 * a.clamp(0.0, 1.0);
            let (s, c) = sin_cos(*p);
            Complex32::new((a * c) as f32, (a * s) as f32)
        })
        .collect();
    Array2::from_shape_vec((w, w), values).expect("w x w values")
}

/// Half-width of the built-in probe's soft pupil edge, as a fraction of the pupil radius.
const TAPER: f64 = 0.25;

/// The built-in probe: a focused beam seen out of focus. A circular pupil (radius N/6 in
/// frequency pixels, soft edge) with a defocus phase is propagated to the sample plane by an
/// inverse FFT; the defocus is chosen so that the geometric disc has diameter
/// `diameter * N`. Centred on pixel (N/2, N/2), peak amplitude 1. Any N >= 4.
pub fn builtin_probe(n: usize, diameter: f64) -> Array2<Complex32> {
    let pupil_radius = (n as f64 / 6.0).max(1.5);
    // Stationary phase: frequency q lands at x = alpha q n / pi; the pupil edge at D/2.
    let alpha = std::f64::consts::PI * diameter / (2.0 * pupil_radius);
    let taper = TAPER * pupil_radius;
    let freq = |i: usize| -> f64 {
        if i <= (n - 1) / 2 {
            i as f64
        } else {
            i as f64 - n as f64
        }
    };
    let mut pupil: Vec<Complex<f64>> = (0..n * n)
        .map(|i| {
            let (qy, qx) = (freq(i / n), freq(i % n));
            let q = (qy * qy + qx * qx).sqrt();
            // Raised-cosine edge over +-taper: a hard edge would ring far outside the disc.
            let t = ((q - pupil_radius) / taper).clamp(-1.0, 1.0);
            let a = 0.5 - 0.5 * sin_cos(0.5 * std::f64::consts::PI * t).0;
            let (s, c) = sin_cos(alpha * q * q);
            Complex::new(a * c, a * s)
        })
        .collect();
    let mut fft = Plans::<f64>::new(n).workspace();
    fft.transform(&mut pupil, true);
    // fftshift moves the beam from pixel (0, 0) to (n/2, n/2). The disc's blurred rim is a
    // few pixels wide whatever N is, so at small N it would reach the window's edge and wrap
    // around: a raised-cosine window from 0.4 N to 0.5 N from the centre makes it vanish there
    // (at N = 128 it changes amplitudes below 0.02 only).
    let centre = (n / 2) as f64;
    let mut probe = Array2::<Complex32>::zeros((n, n));
    let mut peak = 0.0f64;
    for r in 0..n {
        for c in 0..n {
            let v = pupil[fftshift_source(r, n) * n + fftshift_source(c, n)];
            let rho = ((r as f64 - centre).powi(2) + (c as f64 - centre).powi(2)).sqrt() / n as f64;
            let t = ((rho - 0.45) / 0.05).clamp(-1.0, 1.0);
            let window = 0.5 - 0.5 * sin_cos(0.5 * std::f64::consts::PI * t).0;
            let v = v * window;
            peak = peak.max(v.norm_sqr());
            probe[[r, c]] = Complex32::new(v.re as f32, v.im as f32);
        }
    }
    let peak = peak.sqrt() as f32;
    probe.mapv_inplace(|v| v / peak);
    probe
}

/// `n` scan positions uniform in `[N/2, W - N/2)` (x, the column) and `[N/2, H - N/2)` (y,
/// the row): all x first, then all y, from the seed's position stream. Not a raster.
/// Returns (xcoords, ycoords). Needs W > N and H > N.
pub fn scan_positions(
    n: usize,
    object_shape: (usize, usize),
    patch: usize,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let (h, w) = object_shape;
    let half = (patch / 2) as f64;
    let mut rng = stream(seed, Purpose::Positions, 0.0, 0);
    let xs = (0..n)
        .map(|_| rng.uniform_in(half, w as f64 - half))
        .collect();
    let ys = (0..n)
        .map(|_| rng.uniform_in(half, h as f64 - half))
        .collect();
    (xs, ys)
}

/// `n` scan positions on a hexagonal lattice over the same field as [`scan_positions`]
/// (`[N/2, W - N/2)` x `[N/2, H - N/2)`): rows `a sqrt(3) / 2` apart, every other row shifted
/// by `a / 2`, with the largest step `a` whose lattice holds at least `n` points; the first `n`
/// in row order are kept (so the last row may be partly filled), each moved by a seeded jitter
/// of up to [`HEX_JITTER`] `a` in x and y. Returns (xcoords, ycoords). Needs W > N and H > N.
///
/// Why a lattice: minimum-spacing selection on it keeps close to a sub-lattice, i.e. nearly
/// as many positions as the field holds at that spacing, where a random scan keeps far fewer:
/// sparse overlap levels then keep K + 1 positions per split at the full scan's field of view.
pub fn hex_positions(
    n: usize,
    object_shape: (usize, usize),
    patch: usize,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let (h, w) = object_shape;
    let half = (patch / 2) as f64;
    let (x0, x1) = (half, w as f64 - half);
    let (y0, y1) = (half, h as f64 - half);
    let row_step = 3f64.sqrt() / 2.0;
    // Points of the lattice of step `a` inside the field shrunk by the jitter (so that
    // jittered points stay in range); rows from y0 + margin, columns from x0 + margin.
    let lattice = |a: f64, limit: usize| -> Vec<(f64, f64)> {
        let margin = HEX_JITTER * a;
        let (lo_x, hi_x, lo_y, hi_y) = (x0 + margin, x1 - margin, y0 + margin, y1 - margin);
        let mut points = Vec::new();
        let mut row = 0usize;
        loop {
            let y = lo_y + row as f64 * a * row_step;
            if y >= hi_y.max(lo_y + f64::MIN_POSITIVE) || points.len() >= limit {
                break;
            }
            let mut x = lo_x + if row % 2 == 1 { a / 2.0 } else { 0.0 };
            while x < hi_x.max(lo_x + f64::MIN_POSITIVE) && points.len() < limit {
                points.push((x, y));
                x += a;
            }
            row += 1;
        }
        points
    };
    let area = ((x1 - x0) * (y1 - y0)).max(1.0);
    // The step of one point per hexagonal cell of the field, shrunk until `n` points fit.
    let mut a = (area / (n.max(1) as f64 * row_step)).sqrt();
    let mut points = lattice(a, n);
    while points.len() < n && a > 1e-6 {
        a *= 0.995;
        points = lattice(a, n);
    }
    let mut rng = stream(seed, Purpose::Positions, 0.0, 1);
    let jitter = HEX_JITTER * a;
    let (mut xs, mut ys) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (x, y) in points {
        xs.push((x + jitter * (2.0 * rng.uniform() - 1.0)).clamp(x0, x1.next_down()));
        ys.push((y + jitter * (2.0 * rng.uniform() - 1.0)).clamp(y0, y1.next_down()));
    }
    (xs, ys)
}

/// The positions of `pattern` and their provenance record (the random one's is what it was
/// before patterns existed).
pub fn scan_layout(
    pattern: ScanPattern,
    n: usize,
    object_shape: (usize, usize),
    patch: usize,
    seed: u64,
) -> (Vec<f64>, Vec<f64>, serde_json::Value) {
    match pattern {
        ScanPattern::Random => {
            let (xs, ys) = scan_positions(n, object_shape, patch, seed);
            let provenance = serde_json::json!({"source": "uniform random",
                "range": "x in [N/2, W-N/2), y in [N/2, H-N/2)", "seed": seed});
            (xs, ys, provenance)
        }
        ScanPattern::Hex => {
            let (xs, ys) = hex_positions(n, object_shape, patch, seed);
            let provenance = serde_json::json!({"source": "hexagonal lattice",
                "range": "x in [N/2, W-N/2), y in [N/2, H-N/2)", "jitter": HEX_JITTER,
                "seed": seed});
            (xs, ys, provenance)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_in_range_structured_and_seeded() {
        let o = builtin_object(112, 32, 3.0, 42);
        let amps: Vec<f32> = o.iter().map(|v| v.norm()).collect();
        assert!(amps.iter().all(|a| (0.499..=1.001).contains(a)));
        let phases: Vec<f32> = o.iter().map(|v| v.arg()).collect();
        let (lo, hi) = phases
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), p| (l.min(*p), h.max(*p)));
        assert!(hi - lo > 2.5 && hi - lo < 4.5, "phase span {}", hi - lo);
        // Neither constant nor white: neighbours correlate, far pixels differ.
        let amp_sd = {
            let m = amps.iter().sum::<f32>() / amps.len() as f32;
            (amps.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / amps.len() as f32).sqrt()
        };
        assert!(amp_sd > 0.05, "amplitude sd {amp_sd}");
        assert_eq!(o, builtin_object(112, 32, 3.0, 42));
        assert_ne!(o, builtin_object(112, 32, 3.0, 43));
    }

    #[test]
    fn probe_is_centred_with_the_requested_diameter() {
        for n in [32usize, 64, 128, 50] {
            let p = builtin_probe(n, 0.6);
            let total: f64 = p.iter().map(|v| v.norm_sqr() as f64).sum();
            let (mut cy, mut cx) = (0.0, 0.0);
            for ((r, c), v) in p.indexed_iter() {
                cy += r as f64 * v.norm_sqr() as f64 / total;
                cx += c as f64 * v.norm_sqr() as f64 / total;
            }
            assert!(
                (cy - n as f64 / 2.0).abs() < 1.0 && (cx - n as f64 / 2.0).abs() < 1.0,
                "n {n}: centre {cy} {cx}"
            );
            // Most of the energy inside the nominal disc (plus a pixel and a half); none at the
            // window's edge (no wrap-around).
            let radius = 0.3 * n as f64 + 1.5;
            let inside: f64 = p
                .indexed_iter()
                .filter(|((r, c), _)| {
                    let (dy, dx) = (*r as f64 - cy, *c as f64 - cx);
                    (dy * dy + dx * dx).sqrt() <= radius
                })
                .map(|(_, v)| v.norm_sqr() as f64)
                .sum();
            assert!(inside / total > 0.88, "n {n}: {:.3} inside", inside / total);
            let edge = (0..n)
                .map(|k| p[[0, k]].norm().max(p[[k, 0]].norm()))
                .fold(0.0f32, f32::max);
            assert!(edge < 0.01, "n {n}: edge amplitude {edge}");
            let peak = p.iter().map(|v| v.norm()).fold(0.0f32, f32::max);
            assert!((peak - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn positions_are_seeded_uniform_and_in_range() {
        let (xs, ys) = scan_positions(1000, (464, 464), 128, 42);
        assert!(xs.iter().chain(&ys).all(|v| (64.0..400.0).contains(v)));
        let mean = xs.iter().sum::<f64>() / 1000.0;
        assert!((mean - 232.0).abs() < 10.0, "mean x {mean}");
        // Not a raster: non-integer and unsorted.
        assert!(xs.iter().any(|x| x.fract() != 0.0));
        assert!(xs.windows(2).any(|w| w[0] > w[1]));
        assert_eq!(
            (xs.clone(), ys.clone()),
            scan_positions(1000, (464, 464), 128, 42)
        );
        assert_ne!(xs, scan_positions(1000, (464, 464), 128, 7).0);
    }

    #[test]
    fn hex_positions_are_seeded_in_range_and_evenly_spaced() {
        let (xs, ys) = hex_positions(600, (464, 464), 128, 42);
        assert_eq!((xs.len(), ys.len()), (600, 600));
        assert!(xs.iter().chain(&ys).all(|v| (64.0..400.0).contains(v)));
        assert_eq!(
            (xs.clone(), ys.clone()),
            hex_positions(600, (464, 464), 128, 42)
        );
        assert_ne!(xs, hex_positions(600, (464, 464), 128, 7).0);
        // Nearest neighbours about one lattice step apart: sqrt(2 area / (sqrt 3 n)) ~ 12.5 px,
        // less the jitter; none collapse onto each other.
        let nn: Vec<f64> = (0..xs.len())
            .map(|i| {
                (0..xs.len())
                    .filter(|&j| j != i)
                    .map(|j| (xs[i] - xs[j]).hypot(ys[i] - ys[j]))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let (lo, hi) = nn
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), d| (l.min(*d), h.max(*d)));
        assert!(lo > 9.0 && hi < 15.0, "nearest neighbours {lo} to {hi}");
        for n in [2usize, 3, 7, 200] {
            let (xs, ys) = hex_positions(n, (112, 112), 32, 1);
            assert_eq!(xs.len(), n);
            assert!(xs.iter().chain(&ys).all(|v| (16.0..96.0).contains(v)));
        }
    }
}
