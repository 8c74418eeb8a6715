//! `train --backend native`: real reconstructions of a tiny study, their metrics and bundles.

use crate::cli_snapshot;
use crate::common::python_numpy;
use crate::common::{cli, read_json, succeeded};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The tiny study with a sparse view that Phase D accepts (overlap 0.45: 17.6 px at N = 32,
/// 10 positions per split), so that baseline, dense and sparse all train at every dose.
const STUDY: &str = "preset = \"tiny\"\noverlap_views = { dense = 0.7, sparse = 0.45 }\n";

/// `study.toml`, its Phase C tree in `phase c` and Phase D tree in `phase d` (paths with
/// spaces on purpose).
fn study_tree(root: &Path) {
    std::fs::write(root.join("study.toml"), STUDY).unwrap();
    cli()
        .current_dir(root)
        .args([
            "-q",
            "generate",
            "--design",
            "study.toml",
            "--out",
            "phase c",
        ])
        .assert()
        .success();
    cli()
        .current_dir(root)
        .args(["-q", "overlap", "--design", "study.toml"])
        .args(["--phase-c-root", "phase c", "--out", "phase d"])
        .assert()
        .success();
}

fn train(root: &Path, artifacts: &str, extra: &[&str]) -> Output {
    train_design(root, "study.toml", artifacts, extra)
}

/// `train --backend native` in `root` on the Phase C/D trees of [`study_tree`].
fn train_design(root: &Path, design: &str, artifacts: &str, extra: &[&str]) -> Output {
    cli()
        .current_dir(root)
        .args(["-q", "train", "--design", design, "--backend", "native"])
        .args(["--phase-c-root", "phase c", "--phase-d-root", "phase d"])
        .args(["--artifact-root", artifacts])
        .args(extra)
        .output()
        .unwrap()
}

/// The Fienup NRMSE of a job's split.
fn nrmse(job: &serde_json::Value, split: &str) -> f64 {
    job["result"]["metrics"][split]["fienup_nrmse"]
        .as_f64()
        .unwrap()
}

fn job<'a>(manifest: &'a serde_json::Value, view: &str, dose: f64) -> &'a serde_json::Value {
    manifest["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["view"] == view && j["dose"].as_f64() == Some(dose))
        .unwrap_or_else(|| panic!("no {view} job at dose {dose}"))
}

/// Every job reconstructs for real: results carry the loss per epoch, the final loss, the
/// metrics of both splits and the bundle; higher dose and the denser view score better.
#[test]
fn native_tiny_study_scores_follow_dose_and_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    study_tree(root);
    let output = train(root, "art", &["-j", "2"]);
    succeeded(&output);
    let manifest = read_json(&root.join("art/training_manifest.json"));
    let jobs = manifest["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 9);
    assert_eq!(manifest["skipped_count"], 0);
    for job in jobs {
        let result = &job["result"];
        assert_eq!(result["status"], "success", "{result}");
        assert_eq!(result["backend"], "native");
        assert_eq!(result["bundle_path"], "native_bundle.npz");
        assert_eq!(result["epochs_completed"], 20);
        for split in ["train", "test"] {
            let history: Vec<f64> = result["loss_history"][split]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(history.len(), 20);
            assert!(history[19] < history[0], "{split}: {history:?}");
            let metrics = &result["metrics"][split];
            for image in ["amplitude", "phase"] {
                for key in ["mae", "psnr_db", "data_range", "ssim"] {
                    assert!(metrics[image][key].is_f64(), "{image}.{key}: {metrics}");
                }
                for key in ["frc_05", "frc_half_bit"] {
                    // Null when not resolved; otherwise at least Nyquist's 2 px.
                    let frc = &metrics[image][key];
                    assert!(frc["crossed"].is_boolean(), "{frc}");
                    let resolution = &frc["resolution_px"];
                    assert!(
                        resolution.is_null() || resolution.as_f64().unwrap() >= 2.0,
                        "{frc}"
                    );
                }
            }
            // The full scan beats the flat start at every dose (a sparse view need not).
            if job["view"] == "baseline" {
                let start = metrics["fienup_nrmse_initial"].as_f64().unwrap();
                assert!(nrmse(job, split) < 0.7 * start, "{split}: {metrics}");
            }
        }
        let train_history = result["loss_history"]["train"].as_array().unwrap();
        assert_eq!(result["final_loss"], train_history[19]);
        let dir = root
            .join(job["log_path"].as_str().unwrap())
            .parent()
            .unwrap()
            .to_path_buf();
        assert!(dir.join("native_bundle.npz").is_file());
    }
    // The study's physics: more photons, and more overlap, give a better object.
    for split in ["train", "test"] {
        for view in ["baseline", "dense", "sparse"] {
            let (low, high) = (job(&manifest, view, 1e3), job(&manifest, view, 1e5));
            assert!(
                nrmse(high, split) < nrmse(low, split),
                "{view} {split}: 1e5 {} vs 1e3 {}",
                nrmse(high, split),
                nrmse(low, split)
            );
        }
        for dose in [1e3, 1e4, 1e5] {
            let (dense, sparse) = (
                job(&manifest, "dense", dose),
                job(&manifest, "sparse", dose),
            );
            assert!(
                nrmse(dense, split) < nrmse(sparse, split),
                "{split} at {dose}: dense {} vs sparse {}",
                nrmse(dense, split),
                nrmse(sparse, split)
            );
        }
    }
}

/// The bundles of two runs, one job at a time and two at once, are the same bytes; NumPy
/// reads their arrays.
#[test]
fn native_bundles_are_byte_identical_for_any_j_and_load_in_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    study_tree(root);
    let filter = ["--dose", "1e4", "--epochs", "5"];
    succeeded(&train(root, "one", &[&filter[..], &["-j", "1"]].concat()));
    succeeded(&train(root, "two", &[&filter[..], &["-j", "2"]].concat()));
    let bundles: Vec<PathBuf> = ["baseline/gs1", "dense/gs2", "sparse/gs2"]
        .iter()
        .map(|job| PathBuf::from(format!("dose_10000/{job}/native_bundle.npz")))
        .collect();
    for bundle in &bundles {
        let one = std::fs::read(root.join("one").join(bundle)).unwrap();
        let two = std::fs::read(root.join("two").join(bundle)).unwrap();
        assert!(
            one == two,
            "{} differs between -j 1 and -j 2",
            bundle.display()
        );
    }
    let results = |art: &str| -> Vec<serde_json::Value> {
        read_json(&root.join(art).join("training_manifest.json"))["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["result"].clone())
            .collect()
    };
    assert_eq!(results("one"), results("two"));

    let script = r#"
import json, sys
import numpy as np
for path in sys.argv[1:]:
    z = np.load(path)
    assert list(z.keys())[0] == "config", list(z.keys())
    config = json.loads(str(z["config"]))
    metrics = json.loads(str(z["metrics"]))
    for split in ("train", "test"):
        obj, probe = z[split + "_object"], z[split + "_probe"]
        loss, pos = z[split + "_loss_history"], z[split + "_positions_topleft_yx"]
        assert obj.dtype == np.complex64 and obj.shape == (112, 112), (obj.dtype, obj.shape)
        assert probe.dtype == np.complex64 and probe.shape == (32, 32)
        assert loss.dtype == np.float64 and loss.shape == (5,)
        assert pos.dtype == np.int64 and pos.ndim == 2 and pos.shape[1] == 2
        assert np.isfinite(obj).all() and abs(obj).max() > 0
        assert metrics[split]["fienup_nrmse"] < metrics[split]["fienup_nrmse_initial"]
    print(config["settings"]["gridsize"], config["job"]["view"], config["fft_path"])
"#;
    let paths: Vec<PathBuf> = bundles.iter().map(|b| root.join("one").join(b)).collect();
    let text = python_numpy(script, &paths);
    assert_eq!(text, "1 baseline avx\n2 dense avx\n2 sparse avx\n");
}

/// The design's SSIM window (`metrics_config.ms_ssim_sigma`) reaches the training config and
/// the scores: the same reconstruction scored with a wider window gets another SSIM.
#[test]
fn native_scores_use_the_designs_ssim_sigma() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    study_tree(root);
    let wide = format!("{STUDY}\n[metrics_config]\nms_ssim_sigma = 3.0\n");
    std::fs::write(root.join("wide.toml"), wide).unwrap();
    let filter = ["--dose", "1e4", "--view", "baseline", "--epochs", "3"];
    succeeded(&train(root, "narrow", &filter));
    succeeded(&train_design(root, "wide.toml", "wide", &filter));
    let job_dir = "dose_10000/baseline/gs1";
    let sigma = |art: &str| {
        read_json(&root.join(art).join(job_dir).join("training_config.json"))["metrics_config"]
            ["ms_ssim_sigma"]
            .as_f64()
    };
    assert_eq!(sigma("narrow"), Some(1.0));
    assert_eq!(sigma("wide"), Some(3.0));
    let scores = |art: &str| {
        let manifest = read_json(&root.join(art).join("training_manifest.json"));
        let result = &job(&manifest, "baseline", 1e4)["result"];
        (
            result["metrics"]["test"]["phase"]["ssim"].as_f64().unwrap(),
            nrmse(job(&manifest, "baseline", 1e4), "test"),
        )
    };
    let (narrow, wide) = (scores("narrow"), scores("wide"));
    assert_ne!(narrow.0, wide.0, "SSIM with sigma 1 and 3");
    assert_eq!(
        narrow.1, wide.1,
        "the reconstruction itself does not depend on the window"
    );
    // `score` on a job's bundle prints exactly the job's `metrics.test`: one scoring code.
    for (art, sigma) in [("narrow", None), ("wide", Some("3"))] {
        let mut cmd = cli();
        cmd.current_dir(root)
            .args(["score", "--truth", "phase c/dose_10000/patched_test.npz"])
            .arg("--recon")
            .arg(format!("{art}/{job_dir}/native_bundle.npz"))
            .args(["--split", "test", "--json"]);
        if let Some(sigma) = sigma {
            cmd.args(["--ssim-sigma", sigma]);
        }
        let out = cmd.output().unwrap();
        succeeded(&out);
        let scored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let manifest = read_json(&root.join(art).join("training_manifest.json"));
        assert_eq!(
            scored,
            job(&manifest, "baseline", 1e4)["result"]["metrics"]["test"],
            "{art}"
        );
    }
}

/// A job whose data cannot be read fails with a message naming the file; the others run.
#[test]
fn native_bad_input_fails_only_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    study_tree(root);
    let view = root.join("phase d/dose_1000/dense/dense_test.npz");
    let bytes = std::fs::read(&view).unwrap();
    std::fs::write(&view, &bytes[..bytes.len() / 3]).unwrap();
    let output = train(root, "art", &["--dose", "1e3", "--epochs", "2"]);
    assert_eq!(output.status.code(), Some(1));
    let manifest = read_json(&root.join("art/training_manifest.json"));
    let statuses: Vec<&str> = manifest["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["result"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["success", "failed", "success"]);
    let error = manifest["jobs"][1]["result"]["error"].as_str().unwrap();
    assert!(error.contains("dense_test.npz"), "{error}");
    // What a person sees (the failing job alone: no bundle digests that move with the data).
    let mut cmd = cli();
    cmd.current_dir(root)
        .args([
            "-q",
            "train",
            "--design",
            "study.toml",
            "--backend",
            "native",
        ])
        .args(["--phase-c-root", "phase c", "--phase-d-root", "phase d"])
        .args(["--artifact-root", "art", "--dose", "1e3", "--view", "dense"]);
    let output = cli_snapshot!("native_bad_input", cmd, root);
    assert_eq!(output.status.code(), Some(1));
}
