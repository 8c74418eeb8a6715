//! `tensorflow:supervised`, PtychoPINN's supervised baseline: what is refused before any job
//! starts, the adapter's invocation, facts and scoring through a stand-in interpreter (it
//! writes the truth as the reconstruction), the method beside the others in a study, and
//! (when `$PTYCHO_PYTHON` names PtychoPINN's venv and `$DOSE_OVERLAP_REAL_SUPERVISED` is set)
//! a real job on the `pinn-small` preset.

use crate::common::{
    cli, job_failed_with, python_numpy, read_json, stand_in_study, succeeded, validate_artifacts,
};
use crate::train::{train_in, write_tree};
use std::path::Path;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stand-in for PtychoPINN's interpreter: checks it was handed the supervised adapter with
/// `pinn_adapter.py` beside it, in the job dir, prints Keras's epoch lines, writes the weights,
/// each split's truth as the reconstruction and facts in the adapter's shape (its device says
/// whether CUDA_VISIBLE_DEVICES hid the GPUs); refuses a seed beyond 32 bits as Keras does.
/// `$FAKE_SUPERVISED`: `diverge` prints a nan loss
/// and exits 0; `noweights` writes no weights; `fail` exits 1.
fn write_stand_in_python(path: &Path) {
    let script = r#"#!/bin/sh
adapter="$1"; shift
test -f "$adapter" || { echo "no adapter at $adapter" >&2; exit 5; }
grep -q "baselines.build_model" "$adapter" || { echo "not the supervised adapter" >&2; exit 6; }
test -f "$(dirname "$adapter")/pinn_adapter.py" || { echo "no pinn_adapter.py beside it" >&2; exit 8; }
test "$(pwd -P)" = "$(cd "$(dirname "$adapter")" && pwd -P)" || { echo "not run in the job dir" >&2; exit 7; }
while [ $# -gt 0 ]; do
  case "$1" in
    --train) train="$2";; --test) test="$2";; --out) out="$2";; --facts) facts="$2";;
    --model-dir) model="$2";; --epochs) epochs="$2";; --batch-size) batch="$2";;
    --n-filters-scale) width="$2";; --seed) seed="$2";; --device) device="$2";;
    *) echo "unknown flag $1" >&2; exit 64;;
  esac
  shift 2
done
# As Keras and NumPy: a seed must fit in 32 bits.
if [ ${#seed} -gt 10 ] || [ "$seed" -gt 4294967295 ]; then
  echo "ValueError: Seed must be between 0 and 2**32 - 1" >&2; exit 1
fi
case "$FAKE_SUPERVISED" in fail) echo "supervised_adapter: error: stand-in failure" >&2; exit 1;; esac
i=1
while [ $i -le "$epochs" ]; do
  echo "Epoch $i/$epochs"
  if [ "$FAKE_SUPERVISED" = diverge ]; then echo "8/8 - 1s - loss: nan - val_loss: nan"
  else echo "8/8 - 1s - loss: 0.$((50 - i)) - val_loss: 0.6"; fi
  i=$((i + 1))
done
test "$FAKE_SUPERVISED" = noweights || echo weights > "$model/supervised.weights.h5"
exec python3 -c '
import sys, json, os, numpy as np
tr, te, out, facts, epochs, batch, width, seed = sys.argv[1:9]
np.savez(out, train_object=np.load(tr)["objectGuess"], test_object=np.load(te)["objectGuess"])
e = int(epochs)
json.dump({"model": "stand-in", "tensorflow_version": "stand-in",
    "device": "gpu" if os.environ.get("CUDA_VISIBLE_DEVICES", "unset") != "" else "cpu",
    "gpus_seen": 0, "epochs_asked": e, "epochs_run": e, "early_stopped": False,
    "batch_size": int(batch), "n_filters_scale": int(width), "seed": int(seed),
    "loss": [0.5 - 0.01 * (i + 1) for i in range(e)], "val_loss": [0.6] * e,
    "train_s": 1.5, "infer_s": 0.5, "x_norm": {"train": 2.0, "test": 2.1},
    "train_positions": 8, "test_positions": 8}, open(facts, "w"))
' "$train" "$test" "$out" "$facts" "$epochs" "$batch" "$width" "$seed"
"#;
    crate::common::write_script(path, script);
}

#[test]
fn supervised_needs_an_interpreter_before_any_job_starts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    let output = train_in(root, "artifacts")
        .args(["--backend", "tensorflow:supervised", "--dose", "1e3"])
        .env_remove("PTYCHO_PYTHON")
        .env_remove("PTYCHO_TRAIN")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(
            "--backend tensorflow:supervised runs PtychoPINN's supervised model with \
             $PTYCHO_PYTHON"
        ),
        "{}",
        text(&output.stderr)
    );
    assert!(
        !root
            .join("artifacts/dose_1000/baseline/gs1/train.log")
            .exists()
    );
    // A dry run runs nothing and needs no interpreter; its configs carry the settings.
    let output = train_in(root, "dry")
        .args(["--backend", "tensorflow:supervised", "--dose", "1e3"])
        .arg("--dry-run")
        .env_remove("PTYCHO_PYTHON")
        .output()
        .unwrap();
    succeeded(&output);
    let config = read_json(&root.join("dry/dose_1000/baseline/gs1/training_config.json"));
    assert_eq!(config["backend"], "tensorflow:supervised");
    assert_eq!(config["epochs"], 60);
    assert_eq!(config["supervised"]["batch_size"], 16);
    assert_eq!(config["supervised"]["n_filters_scale"], 2);
    assert_eq!(config["supervised"]["accelerator"], "auto");
}

#[test]
fn supervised_jobs_run_the_adapter_contained_and_are_scored_like_pinn_ones() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_stand_in_python(&root.join("python"));
    let run = |artifacts: &str, mode: &str| {
        train_in(root, artifacts)
            .args(["--backend", "tensorflow:supervised", "--dose", "1e4"])
            .args(["--epochs", "3", "--accelerator", "cpu"])
            .env("PTYCHO_PYTHON", root.join("python"))
            .env("FAKE_SUPERVISED", mode)
            .output()
            .unwrap()
    };
    succeeded(&run("artifacts", ""));
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    assert_eq!(manifest["backend"], "tensorflow:supervised");
    let jobs = manifest["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        let dir = root.join(job["artifact_dir"].as_str().unwrap());
        let r = &job["result"];
        assert_eq!(r["status"], "success", "{r}");
        assert_eq!(r["backend"], "tensorflow:supervised");
        assert_eq!(r["bundle_path"], "supervised.weights.h5");
        assert_eq!(r["reconstruction_path"], "supervised_reconstruction.npz");
        assert_eq!(r["epochs_completed"], 3);
        assert_eq!(r["final_loss"], 0.47);
        assert_eq!(r["loss_history"]["train"].as_array().unwrap().len(), 3);
        assert_eq!(r["loss_history"]["validation"][2], 0.6);
        for split in ["train", "test"] {
            let m = &r["metrics"][split];
            assert!(m["fienup_nrmse"].as_f64().unwrap() < 1e-5, "{m}");
            assert!(m["amplitude"]["ssim"].as_f64().unwrap() > 0.999, "{m}");
        }
        // Facts without times (run conditions, not results); cpu hid the GPUs.
        let facts = &r["solver"];
        assert_eq!(facts["device"], "cpu", "{facts}");
        assert_eq!(facts["batch_size"], 16);
        assert!(facts.get("train_s").is_none() && facts.get("loss").is_none());
        let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
        for needle in [
            "supervised_adapter.py --train ",
            "--epochs 3 --batch-size 16 --n-filters-scale 2 --seed ",
            "--device cpu",
            "Epoch 3/3",
            "3 of at most 3 epoch(s) in 1.5 s, inference 0.5 s; device cpu",
            "Scored both splits against objectGuess.",
            "Outcome: success",
        ] {
            assert!(log.contains(needle), "{needle} not in:\n{log}");
        }
    }
    assert!(validate_artifacts(&root.join("artifacts")) >= 6);
    // A rerun finds every job verified and runs nothing.
    let output = run("artifacts", "fail");
    succeeded(&output);
    assert!(
        text(&output.stderr).contains("2 job(s) verified complete and skipped, 0 to run"),
        "{}",
        text(&output.stderr)
    );
    // Failures are named in the job's result.
    for (mode, message) in [
        ("diverge", "the supervised baseline diverged at epoch 1"),
        ("noweights", "exited 0 but wrote no supervised.weights.h5"),
        (
            "fail",
            "ended with exit status 1; its last output line: `supervised_adapter: error: \
             stand-in failure`",
        ),
    ] {
        let output = run(mode, mode);
        job_failed_with(
            &output,
            &root.join(mode).join("dose_10000/baseline/gs1/result.json"),
            mode,
            message,
        );
    }
}

/// A study runs the supervised baseline beside native on the same data and compares them.
#[test]
fn a_study_compares_the_supervised_baseline_with_native() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_stand_in_python(&root.join("python"));
    let output = stand_in_study(
        root,
        "preset = 'tiny'\ndose_list = [1e4]\n[solver]\nepochs = 2\n[supervised]\nepochs = 2\n",
        "native,tensorflow:supervised",
        "PTYCHO_PYTHON",
    );
    succeeded(&output);
    let manifest =
        read_json(&root.join("s/artifacts/tensorflow-supervised/training_manifest.json"));
    assert_eq!(manifest["backend"], "tensorflow:supervised");
    assert_eq!(manifest["jobs"][0]["result"]["epochs_completed"], 2);
    let comparison = std::fs::read_to_string(root.join("s/comparison/comparison.md")).unwrap();
    assert!(
        comparison.contains("tensorflow:supervised") && comparison.contains("native:ml"),
        "{comparison}"
    );
}

/// Regression: a replicate's derived seeds are 64-bit and Keras takes 32-bit ones; the
/// supervised jobs of replicate 2 get the folded seed.
#[test]
fn supervised_jobs_of_every_replicate_get_a_seed_they_can_take() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_stand_in_python(&root.join("python"));
    let output = stand_in_study(
        root,
        "preset = 'tiny'\ndose_list = [1e4]\nreplicates = 2\n[supervised]\nepochs = 2\n",
        "tensorflow:supervised",
        "PTYCHO_PYTHON",
    );
    succeeded(&output);
    let manifest = read_json(&root.join("s/replicate_02/artifacts/training_manifest.json"));
    let jobs = manifest["jobs"].as_array().unwrap();
    assert!(!jobs.is_empty());
    assert!(
        jobs.iter().all(|j| j["result"]["status"] == "success"),
        "{manifest}"
    );
}

/// PtychoPINN's supervised model itself, when `$PTYCHO_PYTHON` names its venv
/// (scripts/setup-ptychopinn-venv.sh) and `$DOSE_OVERLAP_REAL_SUPERVISED` is set (TensorFlow's
/// start-up and graph build cost minutes on 2 cores): one job of the `pinn-small` preset, a
/// few epochs, trained, inferred, stitched and scored.
#[test]
fn real_supervised_job_on_the_pinn_small_preset() {
    let Some(python) = std::env::var_os("PTYCHO_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!("skipped: $PTYCHO_PYTHON is not set (scripts/setup-ptychopinn-venv.sh)");
        return;
    };
    if std::env::var_os("DOSE_OVERLAP_REAL_SUPERVISED").is_none() {
        eprintln!("skipped: $DOSE_OVERLAP_REAL_SUPERVISED is not set");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for args in [
        &[
            "-q",
            "generate",
            "--preset",
            "pinn-small",
            "--out",
            "phase_c",
        ][..],
        &[
            "-q",
            "overlap",
            "--preset",
            "pinn-small",
            "--phase-c-root",
            "phase_c",
            "--out",
            "phase_d",
        ],
    ] {
        succeeded(&cli().current_dir(root).args(args).output().unwrap());
    }
    let output = train_in(root, "artifacts")
        .args([
            "--preset",
            "pinn-small",
            "--backend",
            "tensorflow:supervised",
        ])
        .args(["--dose", "1e4", "--view", "baseline", "--epochs", "3"])
        .args(["--accelerator", "cpu"])
        .env("PTYCHO_PYTHON", &python)
        .output()
        .unwrap();
    let job = root.join("artifacts/dose_10000/baseline/gs1");
    let log = std::fs::read_to_string(job.join("train.log")).unwrap_or_default();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{log}",
        text(&output.stderr)
    );
    let r = &read_json(&job.join("result.json"))["result"];
    assert_eq!(r["status"], "success", "{r}");
    assert!(r["epochs_completed"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["solver"]["device"], "cpu");
    for split in ["train", "test"] {
        let nrmse = r["metrics"][split]["fienup_nrmse"].as_f64().unwrap();
        assert!(nrmse.is_finite() && nrmse > 0.0, "{split}: {nrmse}");
    }
}
