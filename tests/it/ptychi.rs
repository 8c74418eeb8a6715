//! The `ptychi:<algorithm>` methods: what is refused before any job starts, the adapter's
//! invocation, facts and scoring through a stand-in interpreter (it writes the truth as the
//! reconstruction), the truth-initialised method's name, and (when `$PTYCHI_PYTHON` is set)
//! a real pty-chi job on the `tiny` preset.

use crate::common::{
    cli, job_failed_with, python_numpy, read_json, stand_in_study, succeeded, validate_artifacts,
};
use crate::train::{train_in, write_tree};
use std::path::Path;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stand-in for pty-chi's interpreter: checks it was handed the pty-chi adapter, prints the
/// adapter's progress lines, writes each split's truth as the reconstruction and facts in the
/// adapter's shape (its device says what CUDA_VISIBLE_DEVICES was); refuses a seed beyond
/// 32 bits as NumPy does. `$FAKE_PTYCHI`: `diverge`
/// prints a nan loss and exits 0; `nofacts` writes no facts; `fail` exits 1.
fn write_stand_in_python(path: &Path) {
    let script = r#"#!/bin/sh
adapter="$1"; shift
test -f "$adapter" || { echo "no adapter at $adapter" >&2; exit 5; }
grep -q "forward_check" "$adapter" || { echo "not the pty-chi adapter" >&2; exit 6; }
test "$(pwd -P)" = "$(cd "$(dirname "$adapter")" && pwd -P)" || { echo "not run in the job dir" >&2; exit 7; }
while [ $# -gt 0 ]; do
  case "$1" in
    --train) train="$2";; --test) test="$2";; --out) out="$2";; --facts) facts="$2";;
    --epochs) epochs="$2";; --init) init="$2";; --algorithm) algorithm="$2";;
    --seed) seed="$2";;
    --batch|--noise|--probe|--device|--threads|--step|--tv-weight) ;;
    *) echo "unknown flag $1" >&2; exit 64;;
  esac
  shift 2
done
# As NumPy and torch: a seed must fit in 32 bits.
if [ ${#seed} -gt 10 ] || [ "$seed" -gt 4294967295 ]; then
  echo "ValueError: Seed must be between 0 and 2**32 - 1" >&2; exit 1
fi
case "$FAKE_PTYCHI" in fail) echo "ptychi_adapter: error: stand-in failure" >&2; exit 1;; esac
for split in train test; do
  i=1
  while [ $i -le "$epochs" ]; do
    if [ "$FAKE_PTYCHI" = diverge ]; then echo "$split epoch $i/$epochs loss nan"
    else echo "$split epoch $i/$epochs loss 0.$((50 - i))"; fi
    i=$((i + 1))
  done
done
exec python3 -c '
import sys, json, os, numpy as np
tr, te, out, facts, epochs, init, algorithm, mode = sys.argv[1:9]
np.savez(out, train_object=np.load(tr)["objectGuess"], test_object=np.load(te)["objectGuess"])
if mode == "nofacts":
    sys.exit(0)
cuda = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
split = lambda: {"positions": 8, "losses": [0.5 - 0.01 * i for i in range(int(epochs))],
    "setup_s": 0.1, "epoch_s_median": 0.2, "total_s": 0.3,
    "settings": {"options_class": "LSQMLOptions", "batch_size": 96, "num_epochs": int(epochs)},
    "forward_check": {"positions": 8, "predicted_over_measured": 1.001, "per_position_min": 0.99,
        "per_position_max": 1.01, "numpy_model_max_rel_diff": 1e-7}}
json.dump({"engine": "pty-chi", "ptychi_version": "2.2.0", "torch_version": "stand-in",
    "device": "cpu", "device_name": "cpu CUDA_VISIBLE_DEVICES=" + cuda, "torch_threads": 2,
    "algorithm": algorithm, "init": init, "probe": "fixed", "noise": "poisson",
    "splits": {"train": split(), "test": split()}}, open(facts, "w"))
' "$train" "$test" "$out" "$facts" "$epochs" "$init" "$algorithm" "$FAKE_PTYCHI"
"#;
    crate::common::write_script(path, script);
}

#[test]
fn ptychi_needs_its_interpreter_before_any_job_starts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    let output = train_in(root, "artifacts")
        .args(["--backend", "ptychi:lsqml", "--dose", "1e3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(
            "--backend ptychi:lsqml runs pty-chi with $PTYCHI_PYTHON, which is not set: build \
             its venv with scripts/setup-ptychi-venv.sh"
        ),
        "{}",
        text(&output.stderr)
    );
    assert!(
        !root
            .join("artifacts/dose_1000/baseline/gs1/train.log")
            .exists()
    );
    // A dry run runs nothing and needs no interpreter; its configs carry pty-chi's settings.
    let output = train_in(root, "dry")
        .args(["--backend", "ptychi:dm", "--dose", "1e3", "--dry-run"])
        .output()
        .unwrap();
    succeeded(&output);
    let config = read_json(&root.join("dry/dose_1000/baseline/gs1/training_config.json"));
    assert_eq!(config["backend"], "ptychi:dm");
    assert_eq!(config["epochs"], 100);
    assert_eq!(config["ptychi"]["algorithm"], "dm");
    assert_eq!(config["ptychi"]["batch_size"], 96);
    assert_eq!(config["ptychi"]["init"], "flat");
    assert_eq!(config["ptychi"]["accelerator"], "cpu");
    assert!(config["ptychi"]["python"].is_null());
}

#[test]
fn ptychi_jobs_run_the_adapter_contained_and_are_scored_like_native_ones() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_stand_in_python(&root.join("python"));
    let output = train_in(root, "artifacts")
        .args([
            "--backend",
            "ptychi:lsqml",
            "--dose",
            "1e4",
            "--epochs",
            "3",
        ])
        .env("PTYCHI_PYTHON", root.join("python"))
        .output()
        .unwrap();
    succeeded(&output);
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    assert_eq!(manifest["backend"], "ptychi:lsqml");
    let jobs = manifest["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        let dir = root.join(job["artifact_dir"].as_str().unwrap());
        let r = &job["result"];
        assert_eq!(r["status"], "success", "{r}");
        assert_eq!(r["backend"], "ptychi:lsqml");
        assert_eq!(r["bundle_path"], "ptychi_reconstruction.npz");
        assert_eq!(r["reconstruction_path"], "ptychi_reconstruction.npz");
        assert_eq!(r["epochs_completed"], 3);
        assert_eq!(r["final_loss"], 0.48);
        assert_eq!(r["loss_history"]["test"].as_array().unwrap().len(), 3);
        for split in ["train", "test"] {
            let m = &r["metrics"][split];
            assert!(m["fienup_nrmse"].as_f64().unwrap() < 1e-5, "{m}");
            assert!(m["phase"]["ssim"].as_f64().unwrap() > 0.999, "{m}");
            // Facts without times or threads (run conditions, not results).
            let s = &r["solver"]["splits"][split];
            assert_eq!(s["forward_check"]["predicted_over_measured"], 1.001, "{s}");
            assert_eq!(s["settings"]["options_class"], "LSQMLOptions", "{s}");
            assert!(
                s.get("total_s").is_none() && s.get("losses").is_none(),
                "{s}"
            );
        }
        assert!(r["solver"].get("torch_threads").is_none());
        // cpu by default: the GPUs are hidden from torch's CUDA build.
        assert_eq!(r["solver"]["device_name"], "cpu CUDA_VISIBLE_DEVICES=");
        assert!(dir.join("ptychi_adapter.py").is_file());
        let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
        for needle in [
            "ptychi_adapter.py --train ",
            "--algorithm lsqml --epochs 3 --batch 96 --noise poisson --probe fixed --init flat \
             --device cpu --threads ",
            "test epoch 3/3 loss 0.47",
            "forward check: predicted / measured counts 1.00100",
            "Scored both splits against objectGuess.",
            "Outcome: success",
        ] {
            assert!(log.contains(needle), "{needle} not in:\n{log}");
        }
    }
    assert!(validate_artifacts(&root.join("artifacts")) >= 6);
    // A rerun finds every job verified and runs nothing.
    let output = train_in(root, "artifacts")
        .args([
            "--backend",
            "ptychi:lsqml",
            "--dose",
            "1e4",
            "--epochs",
            "3",
        ])
        .env("PTYCHI_PYTHON", root.join("python"))
        .env("FAKE_PTYCHI", "fail")
        .output()
        .unwrap();
    succeeded(&output);
    assert!(
        text(&output.stderr).contains("2 job(s) verified complete and skipped, 0 to run"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn ptychi_failures_are_named() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_stand_in_python(&root.join("python"));
    for (mode, message) in [
        (
            "diverge",
            "pty-chi diverged: its adapter reported a loss of inf or nan (`train epoch 1/2 loss \
             nan`)",
        ),
        (
            "nofacts",
            "the pty-chi adapter exited 0 but its facts are unusable: cannot read",
        ),
        (
            "fail",
            "ended with exit status 1; its last output line: `ptychi_adapter: error: stand-in \
             failure`",
        ),
    ] {
        let output = train_in(root, mode)
            .args([
                "--backend",
                "ptychi:epie",
                "--dose",
                "1e3",
                "--view",
                "baseline",
            ])
            .args(["--epochs", "2"])
            .env("PTYCHI_PYTHON", root.join("python"))
            .env("FAKE_PTYCHI", mode)
            .output()
            .unwrap();
        job_failed_with(
            &output,
            &root.join(mode).join("dose_1000/baseline/gs1/result.json"),
            mode,
            message,
        );
    }
}

/// `[ptychi] init = "truth"` reproduces the original study's start and says so in every name:
/// the manifest's backend, the study's folders and the comparison; `tv_weight` reaches the
/// adapter and the job's recorded settings.
#[test]
fn truth_initialised_ptychi_is_named_as_such_in_a_study() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_stand_in_python(&root.join("python"));
    let output = stand_in_study(
        root,
        "preset = 'tiny'\ndose_list = [1e4]\n[solver]\nepochs = 2\n[ptychi]\ninit = 'truth'\nepochs = 2\ntv_weight = 0.01\n",
        "native,ptychi:lsqml",
        "PTYCHI_PYTHON",
    );
    succeeded(&output);
    let manifest =
        read_json(&root.join("s/artifacts/ptychi-lsqml-truth-init/training_manifest.json"));
    assert_eq!(manifest["backend"], "ptychi:lsqml+truth-init");
    let job = &manifest["jobs"][0];
    let config = read_json(
        &root
            .join(job["artifact_dir"].as_str().unwrap())
            .join("training_config.json"),
    );
    assert_eq!(config["ptychi"]["init"], "truth");
    assert_eq!(config["ptychi"]["tv_weight"], 0.01);
    let log = std::fs::read_to_string(
        root.join(job["artifact_dir"].as_str().unwrap())
            .join("train.log"),
    )
    .unwrap();
    assert!(log.contains("--init truth"), "{log}");
    assert!(log.contains("--tv-weight 0.01"), "{log}");
    assert!(log.contains("total variation weight 0.01"), "{log}");
    assert!(
        log.contains("init = truth: the object starts at objectGuess"),
        "{log}"
    );
    let comparison = std::fs::read_to_string(root.join("s/comparison/comparison.md")).unwrap();
    assert!(
        comparison.contains("ptychi:lsqml+truth-init") && comparison.contains("native:ml"),
        "{comparison}"
    );
}

/// pty-chi itself, when `$PTYCHI_PYTHON` names its venv (scripts/setup-ptychi-venv.sh): one
/// LSQML job of the `tiny` preset, its conventions checked by the adapter, scored better than
/// its flat start.
#[test]
fn real_ptychi_lsqml_job_on_the_tiny_preset() {
    let Some(python) = std::env::var_os("PTYCHI_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!("skipped: $PTYCHI_PYTHON is not set (scripts/setup-ptychi-venv.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for args in [
        &["-q", "generate", "--preset", "tiny", "--out", "phase_c"][..],
        &[
            "-q",
            "overlap",
            "--preset",
            "tiny",
            "--phase-c-root",
            "phase_c",
            "--out",
            "phase_d",
        ],
    ] {
        succeeded(&cli().current_dir(root).args(args).output().unwrap());
    }
    let output = train_in(root, "artifacts")
        .args(["--preset", "tiny", "--backend", "ptychi:lsqml"])
        .args(["--dose", "1e4", "--view", "baseline", "--epochs", "5"])
        .env("PTYCHI_PYTHON", &python)
        .output()
        .unwrap();
    let log = std::fs::read_to_string(root.join("artifacts/dose_10000/baseline/gs1/train.log"))
        .unwrap_or_default();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{log}",
        text(&output.stderr)
    );
    let r = &read_json(&root.join("artifacts/dose_10000/baseline/gs1/result.json"))["result"];
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["epochs_completed"], 5);
    for split in ["train", "test"] {
        let check = &r["solver"]["splits"][split]["forward_check"];
        let ratio = check["predicted_over_measured"].as_f64().unwrap();
        assert!((ratio - 1.0).abs() < 0.02, "{split}: {check}");
        assert!(
            check["numpy_model_max_rel_diff"].as_f64().unwrap() < 1e-4,
            "{split}: {check}"
        );
        let m = &r["metrics"][split];
        let (nrmse, flat) = (
            m["fienup_nrmse"].as_f64().unwrap(),
            m["fienup_nrmse_initial"].as_f64().unwrap(),
        );
        assert!(
            nrmse < flat,
            "{split}: NRMSE {nrmse} not below the flat start's {flat}"
        );
    }
    assert_eq!(
        r["solver"]["splits"]["test"]["settings"]["noise_model"],
        "poisson"
    );
    assert_eq!(r["solver"]["device"], "cpu");
}

/// Regression: a replicate's derived seeds are 64-bit, and pty-chi (NumPy, torch) takes only
/// 32-bit seeds: every pty-chi job of replicates 2 and up failed. They are folded now.
#[test]
fn ptychi_jobs_of_every_replicate_get_a_seed_they_can_take() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_stand_in_python(&root.join("python"));
    let output = stand_in_study(
        root,
        "preset = 'tiny'\ndose_list = [1e4]\nreplicates = 2\n[ptychi]\nepochs = 2\n",
        "ptychi:lsqml",
        "PTYCHI_PYTHON",
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
