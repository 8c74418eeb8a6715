//! Noiseless synthetic data for the solver's own checks and benches: an object with structure
//! at several scales, a defocused disc probe, a jittered raster of integer positions, and the
//! simulator's forward model (`a_j = fftshift(|FFT2(P O_j)| / N)`, in f64).

use crate::{Algorithm, Dataset, Settings};
use ndarray::{Array2, Array3};
use num_complex::{Complex32, Complex64};
use rustfft::FftPlanner;

/// An h x w object: amplitude in about [0.6, 1], phase within about +-1.5 rad.
pub fn object(h: usize, w: usize) -> Array2<Complex32> {
    Array2::from_shape_fn((h, w), |(r, c)| {
        let (x, y) = (c as f64, r as f64);
        let amp =
            0.8 + 0.12 * (x / 9.0).sin() * (y / 13.0).cos() + 0.08 * ((x + 2.0 * y) / 4.0).sin();
        let phase = 1.0 * ((x - y) / 17.0).sin() + 0.5 * ((x + y) / 6.0).cos();
        Complex64::from_polar(amp, phase).to_f32()
    })
}

/// An n x n probe: a soft disc of radius n/4 with a defocus phase (as the peers' synth.py),
/// scaled to `photons` = sum |P|^2.
pub fn probe(n: usize, photons: f64) -> Array2<Complex32> {
    let c = (n as f64 - 1.0) / 2.0;
    let radius = n as f64 / 4.0;
    let mut p = Array2::from_shape_fn((n, n), |(i, k)| {
        let r2 = (i as f64 - c).powi(2) + (k as f64 - c).powi(2);
        let amp = (-(r2 / (radius * radius)).powi(2)).exp();
        Complex64::from_polar(amp, std::f64::consts::PI * r2 / (n * n) as f64 * 4.0)
    });
    let scale = (photons / p.iter().map(|v| v.norm_sqr()).sum::<f64>()).sqrt();
    p.mapv_inplace(|v| v * scale);
    p.mapv(|v| v.to_f32())
}

/// Patch centres (x, y) on a raster of `step` pixels over an h x w object, each shifted by a
/// deterministic jitter of up to +-`step`/4 and kept whole inside the object; integers.
pub fn raster_positions(h: usize, w: usize, n: usize, step: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let jitter = (step / 4) as i64;
    let mut t = 0i64;
    let half = (n / 2) as i64;
    for ty in (0..=(h - n)).step_by(step) {
        for tx in (0..=(w - n)).step_by(step) {
            t += 1;
            let jy = if jitter > 0 {
                (t * 7919 % (2 * jitter + 1)) - jitter
            } else {
                0
            };
            let jx = if jitter > 0 {
                (t * 104_729 % (2 * jitter + 1)) - jitter
            } else {
                0
            };
            let ty = (ty as i64 + jy).clamp(0, (h - n) as i64);
            let tx = (tx as i64 + jx).clamp(0, (w - n) as i64);
            ys.push((ty + half) as f64);
            xs.push((tx + half) as f64);
        }
    }
    (xs, ys)
}

/// The noiseless dataset of `object` scanned by `probe` at integer centres (x, y).
pub fn dataset(
    object: &Array2<Complex32>,
    probe: &Array2<Complex32>,
    xs: &[f64],
    ys: &[f64],
) -> Dataset {
    let n = probe.nrows();
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
    let mut diffraction = Array3::<f32>::zeros((xs.len(), n, n));
    let mut buf = vec![Complex64::new(0.0, 0.0); n * n];
    let mut t = vec![Complex64::new(0.0, 0.0); n * n];
    for (j, (&x, &y)) in xs.iter().zip(ys).enumerate() {
        let (ty, tx) = (y as usize - n / 2, x as usize - n / 2);
        for i in 0..n {
            for k in 0..n {
                let p = probe[(i, k)];
                let o = object[(ty + i, tx + k)];
                buf[i * n + k] = Complex64::new(f64::from(p.re), f64::from(p.im))
                    * Complex64::new(f64::from(o.re), f64::from(o.im));
            }
        }
        fft.process(&mut buf);
        for i in 0..n {
            for k in 0..n {
                t[k * n + i] = buf[i * n + k];
            }
        }
        fft.process(&mut t);
        // t[kx * n + ky] = FFT2[ky][kx]; fftshift: out[i] = in[(i - n/2) mod n].
        for r in 0..n {
            for c in 0..n {
                let (ky, kx) = ((r + n - n / 2) % n, (c + n - n / 2) % n);
                diffraction[(j, r, c)] = (t[kx * n + ky].norm() / n as f64) as f32;
            }
        }
    }
    Dataset {
        diffraction,
        xcoords: xs.to_vec(),
        ycoords: ys.to_vec(),
        probe: probe.clone(),
        object_shape: object.dim(),
        intensity_scale: None,
    }
}

trait ToF32 {
    fn to_f32(self) -> Complex32;
}

impl ToF32 for Complex64 {
    fn to_f32(self) -> Complex32 {
        Complex32::new(self.re as f32, self.im as f32)
    }
}

/// Plain ePIE (alpha = beta = 1, fixed probe, single positions) for `epochs` epochs: the
/// benches' and the peer comparison's solver settings, as pty-chi's batch-1 ePIE runs.
pub fn epie_settings(epochs: u32) -> Settings {
    Settings {
        algorithm: Algorithm::Epie,
        alpha: 1.0,
        beta: 1.0,
        epochs,
        refine_probe: false,
        seed: 0,
        gridsize: 1,
        neighbor_count: 7,
        smoothness: 0.0,
        tolerance: 0.0,
    }
}

/// A 4N x 4N object scanned at `count` pseudo-random integer patches (xorshift, fixed seed):
/// the benches' and the peer comparison's workload, so both measure the same data.
pub fn scattered_dataset(n: usize, count: usize) -> Dataset {
    let object = object(4 * n, 4 * n);
    let probe = probe(n, 1e6);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % (3 * n as u64 + 1)) as usize + n / 2
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..count {
        ys.push(next() as f64);
        xs.push(next() as f64);
    }
    dataset(&object, &probe, &xs, &ys)
}
