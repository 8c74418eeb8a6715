//! `dose-overlap overlap` on small Phase C trees written here: the views and reports it writes,
//! byte-identical reruns, stale views, and the errors for bad input.

use crate::cli_snapshot;
use crate::common::python_numpy;
use crate::common::{self, cli, read_json};
use ndarray::{Array1, Array2, Array3, Axis};
use npz_contract::{Compression, NpzReader, NpzWriter, ValidateOptions, validate};
use num_complex::Complex;
use std::path::{Path, PathBuf};

type C32 = Complex<f32>;

/// N of the `tiny` preset; its views are dense (S = 9.6 px) and sparse (S = 25.6 px), K = 7.
const N: usize = 32;
const DOSES: [u32; 3] = [1000, 10000, 100000];

/// Writes one Phase C split like `generate` does: `n` random positions over a 64 x 32 px box
/// (too small for 8 positions 25.6 px apart, so `sparse` is always rejected), every
/// per-position key of DATA-001, and a `_metadata` JSON.
fn write_split(path: &Path, n: usize, y0: f64, seed: u64) {
    let mut next = overlap::synthetic::uniform(seed);
    let xs: Array1<f64> = (0..n).map(|_| 16.0 + 64.0 * next()).collect();
    let ys: Array1<f64> = (0..n).map(|_| y0 + 32.0 * next()).collect();
    // Row i of every per-position array encodes i, so a test can tell which rows were kept.
    let diffraction = Array3::from_shape_fn((n, N, N), |(i, r, c)| (i * 7 + r + c) as f32 * 0.01);
    let y_patches =
        Array3::from_shape_fn((n, N, N), |(i, r, c)| C32::new(i as f32, (r * c) as f32));
    let probe = Array2::from_shape_fn((N, N), |(r, c)| {
        let (dy, dx) = (r as f64 - 16.0, c as f64 - 16.0);
        if dx * dx + dy * dy <= 64.0 {
            C32::new(1.0, 0.5)
        } else {
            C32::new(0.0, 0.0)
        }
    });
    let object = Array2::from_shape_fn((112, 112), |(r, c)| C32::new(0.75, (r + c) as f32 * 0.01));
    let filenames: Vec<String> = (0..n).map(|i| format!("pattern_{i:04}.tif")).collect();
    let mut w = NpzWriter::create(path, Compression::Stored).unwrap();
    w.add("diffraction", &diffraction).unwrap();
    w.add("objectGuess", &object).unwrap();
    w.add("probeGuess", &probe).unwrap();
    w.add("xcoords", &xs).unwrap();
    w.add("ycoords", &ys).unwrap();
    w.add("xcoords_start", &xs).unwrap();
    w.add("ycoords_start", &ys).unwrap();
    w.add("Y", &y_patches).unwrap();
    w.add("scan_index", &Array1::from_iter(0..n as i64))
        .unwrap();
    w.add_strings("filenames", &filenames).unwrap();
    w.add_string(
        "_metadata",
        r#"{"dose": 1000.0, "generator": "fixture", "n": 150}"#,
    )
    .unwrap();
    w.finish().unwrap();
}

/// A Phase C tree for the `tiny` design's three doses, 150 positions per split.
fn phase_c_tree(root: &Path) -> PathBuf {
    let c = root.join("phase c");
    for (k, dose) in DOSES.iter().enumerate() {
        let dir = c.join(format!("dose_{dose}"));
        std::fs::create_dir_all(&dir).unwrap();
        write_split(&dir.join("patched_train.npz"), 150, 16.0, 10 + k as u64);
        write_split(&dir.join("patched_test.npz"), 150, 48.0, 20 + k as u64);
    }
    c
}

fn overlap_cmd(c_root: &Path, d_root: &Path) -> assert_cmd::Command {
    let mut cmd = cli();
    cmd.arg("overlap")
        .arg("--phase-c-root")
        .arg(c_root)
        .arg("--out")
        .arg(d_root)
        .args(["--preset", "tiny"]);
    cmd
}

/// Every file under `dir`, relative path -> bytes, in sorted order.
fn tree_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn writes_dense_views_rejects_sparse_with_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let c_root = phase_c_tree(tmp.path());
    let d_root = tmp.path().join("phase d");
    let output = cli_snapshot!(
        "overlap_tiny_stdout",
        overlap_cmd(&c_root, &d_root),
        tmp.path()
    );
    assert_eq!(output.status.code(), Some(0));

    let report_path = d_root.join("dose_1000/overlap_report.json");
    let text = std::fs::read_to_string(&report_path).unwrap();
    let shown = text.replace(&tmp.path().display().to_string(), "[ROOT]");
    common::golden_settings().bind(|| insta::assert_snapshot!("overlap_tiny_report", shown));

    for dose in DOSES {
        let dose_dir = d_root.join(format!("dose_{dose}"));
        let report = read_json(&dose_dir.join("overlap_report.json"));
        let views = report["views"].as_array().unwrap();
        let names: Vec<&str> = views.iter().map(|v| v["view"].as_str().unwrap()).collect();
        assert_eq!(names, ["dense", "sparse"]);
        assert_eq!(views[0]["accepted"], true);
        assert_eq!(views[0]["reason"], serde_json::Value::Null);
        assert_eq!(views[1]["accepted"], false);
        let reason = views[1]["reason"].as_str().unwrap();
        assert!(reason.contains("OVERSAMPLING-001"), "{reason}");
        assert!(
            reason.contains("each split needs at least 8 positions"),
            "{reason}"
        );
        assert!(!dose_dir.join("sparse").exists());
        for split in ["train", "test"] {
            let fig = &views[0]["splits"][split];
            let kept = fig["n_accepted"].as_u64().unwrap();
            assert!(kept >= 8, "{dose} {split}: {kept}");
            assert_eq!(kept + fig["n_rejected"].as_u64().unwrap(), 150);
            check_view_file(
                &c_root.join(format!("dose_{dose}/patched_{split}.npz")),
                &dose_dir.join(format!("dense/dense_{split}.npz")),
                kept as usize,
                9.6,
            );
        }
    }
}

/// The view file holds exactly the kept rows of every per-position array, in source order,
/// the whole-object members unchanged, `_metadata` with the view's figures, passes DATA-001
/// for gridsize 2, and no two of its positions are closer than S.
fn check_view_file(source: &Path, view: &Path, kept: usize, spacing: f64) {
    let report = validate(
        view,
        &ValidateOptions {
            gridsize: Some(2),
            neighbor_count: Some(7),
            header_only: false,
        },
    );
    assert!(report.valid, "{:?}", report.errors);
    let mut src = NpzReader::open(source).unwrap();
    let mut out = NpzReader::open(view).unwrap();
    let src_keys: Vec<&str> = src.members().iter().map(|m| m.key.as_str()).collect();
    let out_keys: Vec<&str> = out.members().iter().map(|m| m.key.as_str()).collect();
    assert_eq!(src_keys, out_keys);
    let scan: Vec<i64> = out.read::<i64>("scan_index").unwrap().into_iter().collect();
    assert_eq!(scan.len(), kept);
    assert!(scan.windows(2).all(|w| w[0] < w[1]), "source order kept");
    let rows: Vec<usize> = scan.iter().map(|&i| i as usize).collect();
    for key in ["xcoords", "ycoords", "xcoords_start", "ycoords_start"] {
        let a = src.read::<f64>(key).unwrap();
        assert_eq!(
            out.read::<f64>(key).unwrap(),
            a.select(Axis(0), &rows),
            "{key}"
        );
    }
    let d = src.read::<f32>("diffraction").unwrap();
    assert_eq!(
        out.read::<f32>("diffraction").unwrap(),
        d.select(Axis(0), &rows)
    );
    let y = src.read::<C32>("Y").unwrap();
    assert_eq!(out.read::<C32>("Y").unwrap(), y.select(Axis(0), &rows));
    let names = src.read_strings("filenames").unwrap();
    let kept_names: Vec<String> = rows.iter().map(|&i| names[i].clone()).collect();
    assert_eq!(out.read_strings("filenames").unwrap(), kept_names);
    for key in ["objectGuess", "probeGuess"] {
        assert_eq!(
            out.read::<C32>(key).unwrap(),
            src.read::<C32>(key).unwrap(),
            "{key}"
        );
    }
    let meta: serde_json::Value =
        serde_json::from_str(&out.read_string("_metadata").unwrap()).unwrap();
    assert_eq!(meta["generator"], "fixture", "source metadata carried over");
    assert_eq!(meta["overlap_view"], "dense");
    assert_eq!(meta["spacing_threshold"], spacing);
    assert_eq!(meta["n_accepted"], kept);
    assert_eq!(meta["n_rejected"], 150 - kept);
    assert_eq!(meta["source_file"], source.display().to_string());
    for key in [
        "acceptance_rate",
        "selection_strategy",
        "geometry_acceptance_bound",
        "effective_min_acceptance",
    ] {
        assert!(!meta[key].is_null(), "{key}");
    }
    let xs = out.read::<f64>("xcoords").unwrap();
    let ys = out.read::<f64>("ycoords").unwrap();
    for i in 0..kept {
        for j in i + 1..kept {
            let (dx, dy) = (xs[i] - xs[j], ys[i] - ys[j]);
            assert!(dx * dx + dy * dy >= spacing * spacing, "{i} {j}");
        }
    }
}

#[test]
fn reruns_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let c_root = phase_c_tree(tmp.path());
    let d_root = tmp.path().join("d");
    overlap_cmd(&c_root, &d_root).assert().success();
    let first = tree_bytes(&d_root);
    assert!(first.iter().any(|(p, _)| p.ends_with("dense_test.npz")));
    overlap_cmd(&c_root, &d_root).assert().success();
    assert_eq!(tree_bytes(&d_root), first, "no leftovers, same bytes");
    // Another Phase D root: the same NPZs (reports name their own root).
    let other = tmp.path().join("d2");
    overlap_cmd(&c_root, &other).assert().success();
    for ((path, a), (path2, b)) in first.iter().zip(tree_bytes(&other)) {
        assert_eq!(path, &path2);
        if path.ends_with(".npz") {
            assert!(a == &b, "{path} differs");
        }
    }
}

#[test]
fn rejected_view_removes_stale_files_from_an_earlier_run() {
    let tmp = tempfile::tempdir().unwrap();
    let c_root = phase_c_tree(tmp.path());
    let d_root = tmp.path().join("d");
    let stale = d_root.join("dose_1000/sparse");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("sparse_train.npz"), b"old").unwrap();
    std::fs::write(stale.join("sparse_test.npz"), b"old").unwrap();
    overlap_cmd(&c_root, &d_root).assert().success();
    assert!(!stale.exists(), "stale sparse view left behind");
}

#[test]
fn missing_phase_c_root_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let output = cli_snapshot!(
        "overlap_missing_root",
        overlap_cmd(&tmp.path().join("nothing here"), &tmp.path().join("d")),
        tmp.path()
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(!tmp.path().join("d").exists());
}

#[test]
fn corrupt_npz_is_named_and_other_doses_still_run() {
    let tmp = tempfile::tempdir().unwrap();
    let c_root = phase_c_tree(tmp.path());
    let bad = c_root.join("dose_10000/patched_test.npz");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_dir_all(c_root.join("dose_100000")).unwrap();
    let d_root = tmp.path().join("d");
    let output = cli_snapshot!(
        "overlap_bad_input",
        overlap_cmd(&c_root, &d_root),
        tmp.path()
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(d_root.join("dose_1000/dense/dense_train.npz").is_file());
    assert!(
        !d_root
            .join("dose_10000")
            .join("overlap_report.json")
            .exists()
    );
}

#[test]
fn study_file_chooses_doses_and_views() {
    let tmp = tempfile::tempdir().unwrap();
    let c_root = phase_c_tree(tmp.path());
    let study = tmp.path().join("one view.toml");
    std::fs::write(
        &study,
        "preset = \"tiny\"\ndose_list = [10000.0]\n\n[overlap_views]\nclose = 0.8\n",
    )
    .unwrap();
    let d_root = tmp.path().join("d");
    let mut cmd = cli();
    cmd.arg("overlap")
        .arg("--phase-c-root")
        .arg(&c_root)
        .arg("--out")
        .arg(&d_root)
        .arg("--design")
        .arg(&study)
        .arg("--quiet");
    let output = cli_snapshot!("overlap_study_file", cmd, tmp.path());
    assert_eq!(output.status.code(), Some(0));
    // Only the study's dose and view: S = (1 - 0.8) x 32 = 6.4 px.
    assert_eq!(
        std::fs::read_dir(&d_root).unwrap().count(),
        1,
        "only dose_10000"
    );
    let report = read_json(&d_root.join("dose_10000/overlap_report.json"));
    assert_eq!(report["views"][0]["view"], "close");
    assert_eq!(report["views"][0]["spacing_threshold"], 6.4);
    assert_eq!(report["views"].as_array().unwrap().len(), 1);
    assert!(d_root.join("dose_10000/close/close_test.npz").is_file());
}

/// The chain on real Phase C data: `generate` then `overlap` on the `tiny` study, the view
/// files read back in NumPy, and `train --dry-run` skipping the three sparse views with
/// Phase D's reason.
#[test]
fn generate_then_overlap_then_train_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (c_root, d_root) = (tmp.path().join("c"), tmp.path().join("d"));
    cli()
        .args(["-q", "generate", "--preset", "tiny", "--out"])
        .arg(&c_root)
        .assert()
        .success();
    overlap_cmd(&c_root, &d_root).arg("-q").assert().success();
    let mut views = Vec::new();
    for dose in DOSES {
        let report = read_json(&d_root.join(format!("dose_{dose}/overlap_report.json")));
        assert_eq!(report["views"][0]["accepted"], true, "dense at {dose}");
        assert_eq!(report["views"][1]["accepted"], false, "sparse at {dose}");
        for split in ["train", "test"] {
            views.push(c_root.join(format!("dose_{dose}/patched_{split}.npz")));
            views.push(d_root.join(format!("dose_{dose}/dense/dense_{split}.npz")));
        }
    }
    // NumPy: the view holds the source's keys and dtypes, exactly the source rows whose
    // scan_index it lists, unchanged object and probe, and no two positions closer than S.
    let script = r#"
import json, sys
import numpy as np
args = sys.argv[1:]
for src_path, view_path in zip(args[::2], args[1::2]):
    src, view = np.load(src_path), np.load(view_path)
    assert list(src.keys()) == list(view.keys()), (list(src.keys()), list(view.keys()))
    rows = np.searchsorted(src["scan_index"], view["scan_index"])
    assert (src["scan_index"][rows] == view["scan_index"]).all()
    assert (np.diff(rows) > 0).all()
    for k in src.keys():
        if k == "_metadata":  # a longer JSON string: a wider <U
            assert view[k].dtype.kind == "U" and view[k].shape == ()
            continue
        assert src[k].dtype == view[k].dtype, k
        if k in ("objectGuess", "probeGuess"):
            assert (src[k] == view[k]).all(), k
        else:
            assert (src[k][rows] == view[k]).all(), k
    m = json.loads(str(view["_metadata"]))
    assert m["overlap_view"] == "dense" and m["n_accepted"] == len(rows)
    assert m["n_accepted"] + m["n_rejected"] == len(src["xcoords"])
    assert m["dose"] == json.loads(str(src["_metadata"]))["dose"]
    x, y = view["xcoords"], view["ycoords"]
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None]) + np.eye(len(x)) * 1e9
    assert d.min() >= m["spacing_threshold"], d.min()
    print(view_path.rsplit("/", 1)[-1], len(rows))
"#;
    let text = python_numpy(script, &views);
    assert_eq!(text.lines().count(), 6, "{text}");

    let artifacts = tmp.path().join("a");
    let output = cli()
        .args([
            "-q",
            "train",
            "--preset",
            "tiny",
            "--dry-run",
            "--phase-c-root",
        ])
        .arg(&c_root)
        .arg("--phase-d-root")
        .arg(&d_root)
        .arg("--artifact-root")
        .arg(&artifacts)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let skips = read_json(&artifacts.join("skip_summary.json"));
    assert_eq!(skips["skipped_count"], 3);
    for skip in skips["skipped_views"].as_array().unwrap() {
        assert_eq!(skip["view"], "sparse");
        let reason = skip["reason"].as_str().unwrap();
        assert!(reason.contains("Phase D rejected the view: at a spacing threshold of 25.6 px"));
        assert!(reason.contains("OVERSAMPLING-001"), "{reason}");
    }
}

/// Issue 21: views given by the overlap they must have, on a hex scan: Phase D realises each
/// target per split within its tolerance, the report says nominal and realised overlap, the
/// spacing and exposures per pixel, and conforms to its schema; a target the scan cannot
/// hold is rejected saying what it reached.
#[test]
fn overlap_targets_are_realised_on_a_hex_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let study = tmp.path().join("targets.toml");
    std::fs::write(
        &study,
        "preset = \"tiny\"\ndose_list = [1000.0]\n\
         overlap_views = { o80 = { overlap = 0.8 }, o40 = { overlap = 0.4 }, \
         o10 = { overlap = 0.1 }, tight = { overlap = 0.3, tolerance = 0.001 }, dense = 0.7 }\n\
         [simulation]\nscan_pattern = \"hex\"\nn_positions = 2000\n",
    )
    .unwrap();
    let (c_root, d_root) = (tmp.path().join("c"), tmp.path().join("d"));
    let generate = cli()
        .args(["--quiet", "generate", "--design"])
        .arg(&study)
        .arg("--out")
        .arg(&c_root)
        .output()
        .unwrap();
    common::succeeded(&generate);
    let overlap = cli()
        .args(["--quiet", "overlap", "--design"])
        .arg(&study)
        .arg("--phase-c-root")
        .arg(&c_root)
        .arg("--out")
        .arg(&d_root)
        .output()
        .unwrap();
    common::succeeded(&overlap);
    let report = read_json(&d_root.join("dose_1000/overlap_report.json"));
    assert_eq!(
        common::schema_errors("overlap_report.schema.json", &report),
        Ok(())
    );
    let views = report["views"].as_array().unwrap();
    for (view, goal) in [("o80", 0.8), ("o40", 0.4), ("o10", 0.1)] {
        let v = views.iter().find(|v| v["view"] == view).unwrap();
        assert_eq!(v["accepted"], true, "{view}: {}", v["reason"]);
        let t = &v["overlap_target"];
        assert_eq!(t["overlap"], goal);
        assert_eq!(t["within_tolerance"], true);
        for split in ["train", "test"] {
            let realised = v["splits"][split]["mean_disc_overlap"].as_f64().unwrap();
            assert!(
                (realised - goal).abs() <= 0.05,
                "{view} {split}: {realised}"
            );
            assert_eq!(t[format!("realised_{split}")], realised);
            assert!(v["splits"][split]["n_accepted"].as_u64().unwrap() >= 8);
            assert!(t["exposures_per_pixel"][split].as_f64().unwrap() > 0.0);
        }
        assert!(
            d_root
                .join(format!("dose_1000/{view}/{view}_train.npz"))
                .is_file()
        );
    }
    // A tolerance no sub-lattice meets: rejected, with what it reached.
    let tight = views.iter().find(|v| v["view"] == "tight").unwrap();
    assert_eq!(tight["accepted"], false);
    let reason = tight["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("overlap target 0.3 ± 0.001 not reached: of "),
        "{reason}"
    );
    assert!(reason.contains(" realises "), "{reason}");
    assert!(!d_root.join("dose_1000/tight").exists());
    // A fraction view beside them reports as before: no target block.
    let dense = views.iter().find(|v| v["view"] == "dense").unwrap();
    assert!(dense.get("overlap_target").is_none());
    assert_eq!(dense["spacing_threshold"], 9.6);
}
