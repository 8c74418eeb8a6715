//! `dose-overlap generate`: Phase C trees from the built-in presets and from a base NPZ, read
//! back by `validate`, by NumPy and by `overlap`; byte-identical reruns; bad input.

use crate::cli_snapshot;
use crate::common::python_numpy;
use crate::common::{self, cli};
use ndarray::Array2;
use npz_contract::{Compression, NpzReader, NpzWriter};
use num_complex::Complex32;
use std::path::{Path, PathBuf};

const DOSES: [&str; 3] = ["dose_1000", "dose_10000", "dose_100000"];

fn generate_tiny(root: &Path, extra: &[&str]) -> std::process::Output {
    let out = cli()
        .args(["--quiet", "generate", "--preset", "tiny", "--out"])
        .arg(root)
        .args(extra)
        .output()
        .unwrap();
    common::succeeded(&out);
    out
}

fn files(root: &Path) -> Vec<PathBuf> {
    DOSES
        .iter()
        .flat_map(|d| ["train", "test"].map(|s| root.join(d).join(format!("patched_{s}.npz"))))
        .collect()
}

#[test]
fn tiny_preset_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phase c");
    cli_snapshot!(
        "generate_tiny",
        cli()
            .args(["generate", "--preset", "tiny", "--threads", "2", "--out"])
            .arg(&root),
        dir.path()
    );
    for f in files(&root) {
        assert!(f.is_file(), "{} missing", f.display());
    }
}

#[test]
fn output_passes_validate_and_loads_in_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out dir");
    generate_tiny(&root, &[]);
    let out = cli().arg("validate").args(files(&root)).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // NumPy: keys, dtypes, shapes; the split; amplitudes are sqrt(counts) / s; the noiseless
    // model of the stored truth (Y, probeGuess) carries the dose on average.
    let script = r#"
import json, sys
import numpy as np
for path in sys.argv[1:]:
    d = np.load(path)
    m = json.loads(str(d["_metadata"]))
    n, N = m["n"], m["N"]
    assert list(d.keys()) == ["diffraction", "objectGuess", "probeGuess", "xcoords", "ycoords",
        "xcoords_start", "ycoords_start", "scan_index", "Y", "_metadata"], list(d.keys())
    assert d["diffraction"].dtype == np.float32 and d["diffraction"].shape == (n, N, N)
    assert d["Y"].dtype == np.complex64 and d["Y"].shape == (n, N, N)
    assert d["objectGuess"].dtype == np.complex64 and d["probeGuess"].shape == (N, N)
    assert d["scan_index"].dtype == np.int64 and d["xcoords"].dtype == np.float64
    y = d["ycoords"]
    assert (y < m["split_point"]).all() if m["split"] == "train" else (y >= m["split_point"]).all()
    s = m["intensity_scale"]
    counts = (d["diffraction"].astype(np.float64) * s) ** 2
    assert np.abs(counts - np.round(counts)).max() < 1e-3 * max(1.0, counts.max())
    I = np.fft.fftshift(np.abs(np.fft.fft2(d["probeGuess"][None] * d["Y"])) ** 2 / N**2, axes=(-2, -1))
    expected = (s * s * I).sum(axis=(1, 2)).mean()
    assert abs(counts.sum(axis=(1, 2)).mean() - expected) < 6 * np.sqrt(expected / n), (path, expected)
    print(m["dose"], m["split"], n)
"#;
    let text = python_numpy(script, &files(&root));
    assert_eq!(text.lines().count(), 6, "{text}");
}

#[test]
fn reruns_are_byte_identical_with_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    generate_tiny(&a, &["--threads", "1"]);
    generate_tiny(&b, &["--threads", "2"]);
    for (fa, fb) in files(&a).iter().zip(files(&b)) {
        assert!(
            std::fs::read(fa).unwrap() == std::fs::read(&fb).unwrap(),
            "{} differs between 1 and 2 threads",
            fa.display()
        );
    }
    // --dose alone writes that dose only, with the bytes of the full run.
    let c = dir.path().join("c");
    generate_tiny(&c, &["--dose", "1e4"]);
    assert_eq!(std::fs::read_dir(&c).unwrap().count(), 1);
    for s in ["train", "test"] {
        let name = format!("dose_10000/patched_{s}.npz");
        assert!(std::fs::read(a.join(&name)).unwrap() == std::fs::read(c.join(&name)).unwrap());
    }
    // No temporary files left behind.
    for d in DOSES {
        assert_eq!(std::fs::read_dir(a.join(d)).unwrap().count(), 2);
    }
}

#[test]
fn overlap_of_the_tiny_tree_keeps_dense_and_rejects_sparse() {
    let dir = tempfile::tempdir().unwrap();
    let (c, d) = (dir.path().join("c"), dir.path().join("d"));
    generate_tiny(&c, &[]);
    let out = cli()
        .args(["--quiet", "overlap", "--preset", "tiny", "--phase-c-root"])
        .arg(&c)
        .arg("--out")
        .arg(&d)
        .output()
        .unwrap();
    common::succeeded(&out);
    for dose in DOSES {
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.join(dose).join("overlap_report.json")).unwrap(),
        )
        .unwrap();
        let views: Vec<(String, bool)> = report["views"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["view"].as_str().unwrap().to_string(),
                    v["accepted"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            views,
            [("dense".to_string(), true), ("sparse".to_string(), false)],
            "{dose}"
        );
    }
}

pub(crate) fn write_base(path: &Path, n: usize) {
    let object = Array2::from_shape_fn((3 * n, 3 * n), |(r, c)| {
        Complex32::from_polar(
            0.75 + 0.25 * ((r / 5 + c / 7) % 2) as f32,
            (r as f32) * 0.02,
        )
    });
    let probe = Array2::from_shape_fn((n, n), |(r, c)| {
        let (dy, dx) = (r as f32 - n as f32 / 2.0, c as f32 - n as f32 / 2.0);
        if dx * dx + dy * dy <= (n * n / 9) as f32 {
            Complex32::new(1.0, 0.2)
        } else {
            Complex32::new(0.0, 0.0)
        }
    });
    let mut w = NpzWriter::create(path, Compression::Deflated).unwrap();
    w.add("objectGuess", &object).unwrap();
    w.add("probeGuess", &probe).unwrap();
    w.finish().unwrap();
}

#[test]
fn base_npz_object_and_probe_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("my base.npz");
    write_base(&base, 32);
    let root = dir.path().join("out");
    generate_tiny(
        &root,
        &["--base-npz", base.to_str().unwrap(), "--dose", "1e3"],
    );
    let mut r = NpzReader::open(&root.join("dose_1000/patched_train.npz")).unwrap();
    let object = r.read::<Complex32>("objectGuess").unwrap();
    assert_eq!(object.shape(), [96, 96]);
    let meta: serde_json::Value =
        serde_json::from_str(&r.read_string("_metadata").unwrap()).unwrap();
    assert_eq!(meta["probe"]["file"], "my base.npz");
}

#[test]
fn bad_input_exits_2_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("out");
    let garbage = dir.path().join("broken base.npz");
    std::fs::write(&garbage, b"PK\x03\x04 truncated").unwrap();
    let wrong_probe = dir.path().join("probe64.npz");
    write_base(&wrong_probe, 64);
    let cases: [(&str, Vec<String>); 4] = [
        ("generate_bad_dose", vec!["--dose".into(), "-5".into()]),
        (
            "generate_missing_base",
            vec![
                "--base-npz".into(),
                dir.path().join("nope.npz").display().to_string(),
            ],
        ),
        (
            "generate_corrupt_base",
            vec!["--base-npz".into(), garbage.display().to_string()],
        ),
        (
            "generate_wrong_probe_size",
            vec!["--base-npz".into(), wrong_probe.display().to_string()],
        ),
    ];
    for (name, extra) in cases {
        let output = cli_snapshot!(
            name,
            cli()
                .args(["--quiet", "generate", "--preset", "tiny", "--out"])
                .arg(&root)
                .args(&extra),
            dir.path()
        );
        assert_eq!(output.status.code(), Some(2), "{name}");
    }
    // Nothing half-written.
    assert!(!root.exists() || std::fs::read_dir(&root).unwrap().count() == 0);
}
