//! `dose-overlap score` against independent implementations (scikit-image's SSIM, a NumPy FRC,
//! NumPy for the rest) on crafted cases, and its errors on input it cannot score.
//!
//! The fixtures in `tests/fixtures/metrics` were made once by `make_fixtures.py` there (which
//! also asserts the known answers: identical, offset and ramped objects score perfectly,
//! additive noise of rms L gives NRMSE ~ L / rms|T|, noise is not resolved by FRC).

use crate::common::{cli, project_root};
use ndarray::Array2;
use npz_contract::{Compression, NpzWriter};
use num_complex::Complex32;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    project_root().join("tests/fixtures/metrics")
}

fn score_json(truth: &Path, recon: &Path, split: Option<&str>) -> Value {
    let mut cmd = cli();
    cmd.arg("score")
        .arg("--truth")
        .arg(truth)
        .arg("--recon")
        .arg(recon)
        .arg("--json");
    if let Some(split) = split {
        cmd.args(["--split", split]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every leaf of `expected` must be in `got`: numbers within tolerance, the rest equal.
///
/// Tolerance: both sides compute in f64 from the same complex64 files, so they differ only
/// by rounding order (FFT, sums: ~1e-12); 1e-6 relative leaves room for other FFT code paths
/// and is far below any difference a user would read. PSNR above 100 dB is the rounding
/// noise of complex64 itself (an MSE ~1e-15), where 1 dB is the honest precision.
fn check(path: &str, expected: &Value, got: &Value) {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (key, ev) in e {
                let gv = g
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key}: missing in {got}"));
                check(&format!("{path}.{key}"), ev, gv);
            }
        }
        (Value::Array(e), Value::Array(g)) => {
            assert_eq!(e.len(), g.len(), "{path}");
            for (k, (ev, gv)) in e.iter().zip(g).enumerate() {
                check(&format!("{path}[{k}]"), ev, gv);
            }
        }
        (Value::Number(e), Value::Number(g)) => {
            let (e, g) = (e.as_f64().unwrap(), g.as_f64().unwrap());
            let tolerance = if path.ends_with("psnr_db") && e > 100.0 {
                1.0
            } else {
                1e-6 * e.abs().max(1.0)
            };
            assert!(
                (e - g).abs() <= tolerance,
                "{path}: expected {e}, got {g} (tolerance {tolerance})"
            );
        }
        _ => assert_eq!(expected, got, "{path}"),
    }
}

#[test]
fn score_agrees_with_scikit_image_and_numpy_on_every_crafted_case() {
    let dir = fixtures();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected.as_object().unwrap();
    assert!(cases.len() >= 9, "{:?}", cases.keys());
    for (case, want) in cases {
        let split = (case == "split").then_some("test");
        let got = score_json(
            &dir.join("truth.npz"),
            &dir.join(format!("recon_{case}.npz")),
            split,
        );
        check(case, want, &got);
        // The 7 x 7 scan of the fixture, whatever the object.
        assert_eq!(got["region"]["positions"], 49, "{case}");
    }
}

#[test]
fn score_finds_the_known_answers() {
    let dir = fixtures();
    let score = |case: &str| {
        score_json(
            &dir.join("truth.npz"),
            &dir.join(format!("recon_{case}.npz")),
            None,
        )
    };
    let identical = score("identical");
    assert_eq!(identical["fienup_nrmse"], 0.0);
    assert_eq!(identical["phase"]["ssim"], 1.0);
    // A constant phase offset or a phase ramp is registration, not error.
    for case in ["offset_0p3", "offset_m2p5", "ramp"] {
        let m = score(case);
        assert!(m["fienup_nrmse"].as_f64().unwrap() < 1e-6, "{case}: {m}");
        assert!(
            m["phase"]["ssim"].as_f64().unwrap() > 0.999_999,
            "{case}: {m}"
        );
    }
    let (low, high) = (score("noise_0p02"), score("noise_0p1"));
    for key in ["fienup_nrmse", "phase.mae", "amplitude.mae"] {
        let get = |m: &Value| key.split('.').fold(m, |v, k| &v[k]).as_f64().unwrap();
        assert!(get(&low) < get(&high), "{key}");
    }
    // Pure noise is not resolved: null, not "2 x the region size".
    let random = score("random");
    for image in ["amplitude", "phase"] {
        for threshold in ["frc_05", "frc_half_bit"] {
            let frc = &random[image][threshold];
            assert!(frc["resolution_px"].is_null(), "{image} {threshold}: {frc}");
            assert_eq!(frc["crossed"], false);
        }
    }
    let blur = &score("blur_noise")["amplitude"]["frc_05"];
    assert_eq!(blur["crossed"], true, "{blur}");
}

#[test]
fn score_prints_a_table_without_json() {
    let dir = fixtures();
    let out = cli()
        .arg("score")
        .arg("--truth")
        .arg(dir.join("truth.npz"))
        .arg("--recon")
        .arg(dir.join("recon_random.npz"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("view: 49 positions, 3.06 exposures per region pixel"),
        "{text}"
    );
    assert!(text.contains("not resolved"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("phase ")), "{text}");
}

fn write_npz(path: &Path, members: &[(&str, Member)]) {
    let mut npz = NpzWriter::create(path, Compression::Stored).unwrap();
    for (key, member) in members {
        match member {
            Member::Complex(a) => npz.add(key, a).unwrap(),
            Member::Real(a) => npz.add(key, a).unwrap(),
        }
    }
    npz.finish().unwrap();
}

enum Member {
    Complex(Array2<Complex32>),
    Real(Array2<f32>),
}

/// Runs `score` on `recon` (against the fixture truth unless `truth` is given) and returns
/// (exit code, stderr).
fn score_error(truth: Option<&Path>, recon: &Path, split: Option<&str>) -> (i32, String) {
    let default_truth = fixtures().join("truth.npz");
    let mut cmd = cli();
    cmd.arg("score")
        .arg("--truth")
        .arg(truth.unwrap_or(&default_truth))
        .arg("--recon")
        .arg(recon);
    if let Some(split) = split {
        cmd.args(["--split", split]);
    }
    let out = cmd.output().unwrap();
    assert!(out.stdout.is_empty());
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn score_rejects_what_it_cannot_score_with_exit_2_and_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let file = |name: &str| tmp.path().join(name);
    let ones = |h, w| Array2::from_elem((h, w), Complex32::new(1.0, 0.0));

    write_npz(
        &file("small.npz"),
        &[("object", Member::Complex(ones(10, 12)))],
    );
    let (code, err) = score_error(None, &file("small.npz"), None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("reconstruction is (10, 12) but objectGuess is (80, 80)"),
        "{err}"
    );

    write_npz(
        &file("real.npz"),
        &[("object", Member::Real(Array2::zeros((80, 80))))],
    );
    let (code, err) = score_error(None, &file("real.npz"), None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`object` holds float32 (80, 80), expected a complex"),
        "{err}"
    );

    write_npz(
        &file("other.npz"),
        &[("obj", Member::Complex(ones(80, 80)))],
    );
    let (code, err) = score_error(None, &file("other.npz"), None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no member `object` (found: obj)"), "{err}");

    let bundle = fixtures().join("recon_split.npz");
    let (code, err) = score_error(None, &bundle, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pass --split train or test"), "{err}");

    let (code, err) = score_error(None, &fixtures().join("recon_identical.npz"), Some("test"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("holds a single `object`: omit --split"),
        "{err}"
    );

    let (code, err) = score_error(None, &bundle, Some("validation"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a split: use train or test"), "{err}");

    // A truth without its illumination cannot define the scored region.
    write_npz(
        &file("truth_no_probe.npz"),
        &[("objectGuess", Member::Complex(ones(80, 80)))],
    );
    let (code, err) = score_error(
        Some(&file("truth_no_probe.npz")),
        &fixtures().join("recon_identical.npz"),
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("probeGuess"), "{err}");

    let (code, err) = score_error(None, &file("missing.npz"), None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.npz"), "{err}");
}
