//! The PtychoPINN backends without TensorFlow: what is refused before any trainer starts, the
//! invocation the real trainer needs, and scoring through the inference adapter's contract
//! (a stand-in interpreter writes the reconstruction). The real trainer runs in
//! `cargo xtask pinn-check` (CI), which needs its venv.

use crate::common::{cli, python_numpy, read_json};
use crate::train::{train_in, write_fake_trainer, write_tree};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Regression (issue 11): the `tiny` preset (N = 32) started every job and each failed after
/// 25-45 s of trainer start-up with `Unsupported input size: 32`; now it is refused at once.
#[test]
fn n32_study_with_tensorflow_is_refused_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let output = cli()
        .current_dir(dir.path())
        .args([
            "study",
            "--preset",
            "tiny",
            "--backend",
            "tensorflow",
            "--out",
            "s",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr,
        "error: study 'tiny' cannot train: patch_size_pixels=32: PtychoPINN's model (--backend \
         tensorflow) takes N = 64, 128 or 256 only; use --preset pinn-small (N = 64) or default \
         (N = 128), set patch_size_pixels in the study file, or train this study with --backend \
         native\n"
    );
    // Nothing was simulated.
    assert!(!dir.path().join("s/phase_c").exists());
    assert!(start.elapsed() < Duration::from_secs(30));
    // The dry run executes nothing, so it is not refused.
    let output = cli()
        .current_dir(dir.path())
        .args([
            "-q",
            "study",
            "--preset",
            "tiny",
            "--backend",
            "tensorflow",
            "--dry-run",
        ])
        .args(["--out", "dry"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

/// `train` refuses what PtychoPINN cannot train before any job starts (no job log is written): a patch size it does not take, and more groups than a view has.
#[test]
fn train_refuses_before_the_trainer_starts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_fake_trainer(&root.join("ptycho_train"), "NEVER", 0);
    let run = |extra: &[&str]| {
        let mut cmd = train_in(root, "artifacts");
        cmd.args(["--trainer", "./ptycho_train"]).args(extra);
        cmd.output().unwrap()
    };
    let output = run(&["--preset", "tiny"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("patch_size_pixels=32: PtychoPINN's model"),
        "{}",
        text(&output.stderr)
    );
    let output = run(&["--dose", "1e3", "--n-groups", "9"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "baseline dose=1000: --n-groups 9 asks for more groups than the view supplies \
             (train 8, test 8 positions;"
        ) && stderr.contains("dense dose=1000: --n-groups 9")
            && stderr.contains("give at most 8"),
        "{stderr}"
    );
    assert!(
        !root
            .join("artifacts/dose_1000/baseline/gs1/train.log")
            .exists()
    );
    // A batch size that would merge the groups of a gridsize-2 batch, and one PtychoPINN's
    // config refuses, are refused with the reason.
    for (value, reason) in [
        (
            "16",
            "pinn.batch_size=16 would merge groups at gridsize 2: 16 groups x 2² = 64 patches \
             per batch",
        ),
        ("12", "pinn.batch_size=12 must be a power of 2"),
    ] {
        let study = root.join(format!("batch{value}.toml"));
        std::fs::write(&study, format!("[pinn]\nbatch_size = {value}\n")).unwrap();
        let output = run(&["--dose", "1e3", "--design", study.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
        assert!(
            text(&output.stderr).contains(reason),
            "{}",
            text(&output.stderr)
        );
        assert!(
            !root
                .join("artifacts/dose_1000/baseline/gs1/train.log")
                .exists()
        );
    }
    // A gridsize-2 view with fewer than K + 1 positions per split.
    let study = root.join("k9.toml");
    std::fs::write(&study, "neighbor_count = 9\n").unwrap();
    let mut cmd = train_in(root, "artifacts");
    cmd.args([
        "--trainer",
        "./ptycho_train",
        "--dose",
        "1e3",
        "--view",
        "dense",
    ])
    .arg("--design")
    .arg(&study);
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains(
            "dense dose=1000: the view is too small for gridsize 2: a split has 8 positions but \
             grouping with neighbor_count K=9 needs at least 10 per split"
        ),
        "{}",
        text(&output.stderr)
    );
}

/// A stand-in for PtychoPINN's interpreter: instead of running the adapter, it writes each
/// split's ground truth as the reconstruction (a perfect PtychoPINN), with NumPy.
fn write_stand_in_python(path: &Path) {
    let script = r#"#!/bin/sh
if [ "$1" = "-c" ]; then
  # The GPU check of --accelerator gpu: a GPU exists when $FAKE_GPU is set, unless
  # CUDA_VISIBLE_DEVICES hides it.
  case "$2" in *tensorflow*) fw=TensorFlow;; *torch*) fw=PyTorch;; *) exit 70;; esac
  if [ -n "$FAKE_GPU" ] && [ "${CUDA_VISIBLE_DEVICES-unset}" != "" ]; then
    echo "stand-in GPU probe: $fw sees 1 GPU(s)"; exit 0
  fi
  echo "stand-in GPU probe: $fw sees 0 GPU(s)"; exit 3
fi
adapter="$1"; shift
test -f "$adapter" || { echo "no adapter at $adapter" >&2; exit 5; }
grep -q "load_inference_bundle" "$adapter" || { echo "not the adapter" >&2; exit 6; }
facts=""
while [ $# -gt 0 ]; do
  case "$1" in --train) train="$2";; --test) test="$2";; --out) out="$2";; --facts) facts="$2";; esac
  shift 2
done
# What the real adapter reads from a Keras 3 bundle: the scale's float32 start.
case "$FAKE_FACTS" in
  fifo) mkfifo "$facts"; facts="";;
  link) ln -s /etc/passwd "$facts"; facts="";;
  junk) head -c 200000 /dev/zero | tr '\0' x > "$facts"; facts="";;
esac
if [ -n "$facts" ]; then
  printf '{"intensity_scale": {"initial": 0.9882117688026185, "trained": 0.9882117509841919, "trainable": true}}' > "$facts"
fi
exec python3 -c '
import sys, numpy as np
tr, te, out = sys.argv[1:4]
np.savez(out, train_object=np.load(tr)["objectGuess"], test_object=np.load(te)["objectGuess"])
' "$train" "$test" "$out"
"#;
    crate::common::write_script(path, script);
}

#[test]
fn pinn_jobs_get_the_real_trainers_flags_and_are_scored_like_native_ones() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_fake_trainer(&root.join("ptycho_train"), "NEVER", 0);
    write_stand_in_python(&root.join("python"));
    let mut cmd = train_in(root, "artifacts");
    cmd.args([
        "--dose",
        "1e4",
        "--trainer",
        "./ptycho_train",
        "--epochs",
        "2",
    ])
    .env("PTYCHO_PYTHON", root.join("python"));
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    for job in manifest["jobs"].as_array().unwrap() {
        let dir = root.join(job["artifact_dir"].as_str().unwrap());
        let r = &job["result"];
        assert_eq!(r["status"], "success", "{r}");
        assert_eq!(r["reconstruction_path"], "pinn_reconstruction.npz");
        assert!(r.get("scoring_error").is_none(), "{r}");
        for split in ["train", "test"] {
            let m = &r["metrics"][split];
            assert!(m["fienup_nrmse"].as_f64().unwrap() < 1e-5, "{m}");
            assert!(m["phase"]["ssim"].as_f64().unwrap() > 0.999, "{m}");
            assert!(m["fienup_nrmse_initial"].as_f64().unwrap() > 0.0, "{m}");
        }
        let yaml = std::fs::read_to_string(dir.join("ptychopinn_config.yaml")).unwrap();
        assert!(yaml.contains("model:\n  N: 128\n"), "{yaml}");
        let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
        let abs = std::fs::canonicalize(root).unwrap();
        for needle in [
            format!(
                "--config {}",
                abs.join(&dir).join("ptychopinn_config.yaml").display()
            ),
            format!("--train_data_file {}", abs.display()),
            "--neighbor_count 7 --subsample_seed 456 --n_groups 8".to_string(),
            "K=7 n_groups=8".to_string(),
            "Scored both splits against objectGuess.".to_string(),
        ] {
            assert!(
                log.contains(&needle)
                    || log.contains(
                        &needle.replace(&*abs.to_string_lossy(), &root.to_string_lossy())
                    ),
                "{needle} not in:\n{log}"
            );
        }
        // Regression (issue 20): jobs ran with PtychoPINN's default batch of 16 groups, and at
        // gridsize 2 its patch reassembly summed every 16 x 4 = 64-patch batch into one object.
        let batch = if job["gridsize"] == 2 { 8 } else { 16 };
        for needle in [
            format!("--batch_size {batch}"),
            format!("batch_size={batch}"),
        ] {
            assert!(log.contains(&needle), "{needle} not in:\n{log}");
        }
        assert!(dir.join("pinn_adapter.py").is_file());
        let config = read_json(&dir.join("training_config.json"));
        assert_eq!(config["pinn"]["batch_size"], batch);
        assert_eq!(config["pinn"]["n_groups"], 8);
        assert_eq!(config["pinn"]["train_positions"], 8);
    }
    // The report tables PINN jobs like native ones.
    let output = cli()
        .current_dir(root)
        .args(["report", "artifacts"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let csv = std::fs::read_to_string(root.join("artifacts/report/metrics.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let ssim = header
        .iter()
        .position(|h| *h == "test.phase.ssim")
        .expect("a metrics column");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for row in rows {
        assert!(row[ssim].parse::<f64>().unwrap() > 0.999, "{csv}");
    }
}

/// Without `$PTYCHO_PYTHON` and with a trainer that is not a Python script, the job's training
/// result stands and its scoring error says what to set. Regression (issue 26, finding 6):
/// `train` exited 0 for it; a job trained but not scored is a failure to report (exit 1).
#[test]
fn scoring_without_an_interpreter_keeps_the_training_result() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_fake_trainer(&root.join("ptycho_train"), "NEVER", 0);
    let mut cmd = train_in(root, "artifacts");
    cmd.args([
        "--dose",
        "1e3",
        "--view",
        "baseline",
        "--trainer",
        "./ptycho_train",
    ])
    .env_remove("PTYCHO_PYTHON");
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains(
            "error: job baseline/dose=1e+03 was not scored: scoring_error: no Python to run the \
             inference adapter"
        ),
        "{}",
        text(&output.stderr)
    );
    let manifest = read_json(&root.join("artifacts/training_manifest.json"));
    let r = &manifest["jobs"][0]["result"];
    assert_eq!(r["status"], "success");
    assert!(r.get("metrics").is_none() && r.get("reconstruction_path").is_none());
    let error = r["scoring_error"].as_str().unwrap();
    assert!(
        error.starts_with("no Python to run the inference adapter: $PTYCHO_PYTHON is not set")
            && error.contains("export PTYCHO_PYTHON="),
        "{error}"
    );
    // Regression (issue 25): `verify` passed this root while `train` would redo the job.
    let output = cli()
        .current_dir(root)
        .args(["verify", "artifacts"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let listed = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        listed.contains("job 1e+03/baseline/gs1: trained but not scored (scoring_error: no Python")
            && listed.contains("a rerun of `train` trains and scores it again"),
        "{listed}"
    );
    // Not complete: a rerun trains and scores it again (here previewed), with the reason.
    let preview = train_in(root, "artifacts")
        .args(["--dose", "1e3", "--view", "baseline"])
        .args(["--trainer", "./ptycho_train", "--dry-run"])
        .env_remove("PTYCHO_PYTHON")
        .output()
        .unwrap();
    assert_eq!(preview.status.code(), Some(0), "{}", text(&preview.stderr));
    let stdout = text(&preview.stdout);
    assert!(
        stdout.contains("baseline/dose=1e+03: run: last run's scoring failed"),
        "{stdout}"
    );
}

/// A stand-in interpreter whose "adapter" starts a child that ignores SIGTERM and hangs,
/// recording both pids in the job dir (`adapter.pid`, `adapter_child.pid`).
fn write_hanging_python(path: &Path) {
    let script = r#"#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in --bundle-dir) dir="$2";; esac; shift; done
trap '' TERM
sleep 600 &
echo $! > "$dir/adapter_child.pid"
echo $$ > "$dir/adapter.pid"
wait
"#;
    crate::common::write_script(path, script);
}

fn pid_in(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// A job whose trainer succeeds and whose inference adapter hangs (`write_hanging_python`):
/// `train` of the 1e3 baseline job with `extra` flags, and the job's artifact dir.
fn hanging_adapter_job(root: &Path, extra: &[&str]) -> (std::process::Command, PathBuf) {
    write_tree(root, &["dense"]);
    write_fake_trainer(&root.join("t"), "NEVER", 0);
    write_hanging_python(&root.join("python"));
    let mut cmd = crate::resume::fake_train(root, extra);
    cmd.env("PTYCHO_PYTHON", root.join("python"));
    (cmd, root.join(crate::resume::JOB))
}

/// Regression (issue 11): the inference adapter was not under the watchdog, so a hanging
/// adapter ignored --job-timeout. It is now contained like the trainer: the job fails with the
/// timeout and the adapter's processes are gone.
#[test]
fn a_hanging_adapter_times_out_with_its_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, job_dir) = hanging_adapter_job(dir.path(), &["--job-timeout", "2s"]);
    let start = Instant::now();
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    // 2 s, then the 5 s grace for processes that ignore SIGTERM.
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let r = &read_json(&job_dir.join("result.json"))["result"];
    assert_eq!(r["status"], "failed", "{r}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.starts_with("timed out after 2s (--job-timeout)"),
        "{error}"
    );
    let log = std::fs::read_to_string(job_dir.join("train.log")).unwrap();
    assert!(
        log.contains("Timed out: the inference adapter and its processes were stopped."),
        "{log}"
    );
    for file in ["adapter.pid", "adapter_child.pid"] {
        let pid = pid_in(&job_dir.join(file)).expect("the adapter ran");
        crate::common::wait_gone(pid, file);
    }
}

/// Regression (issue 11): a SIGKILLed `dose-overlap` left its inference adapter running.
#[test]
fn the_adapter_dies_with_a_sigkilled_runner() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, job_dir) = hanging_adapter_job(dir.path(), &[]);
    let mut runner = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pid_in(&job_dir.join("adapter.pid")).is_none() {
        assert!(Instant::now() < deadline, "the adapter never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    for file in ["adapter.pid", "adapter_child.pid"] {
        crate::common::wait_gone(pid_in(&job_dir.join(file)).unwrap(), file);
    }
}

/// A study comparing a network with the native solver needs two epoch counts: PtychoPINN jobs
/// train for `[pinn] epochs`, native ones for `[solver] epochs`, and `--epochs` sets both.
#[test]
fn pinn_jobs_train_for_the_pinn_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    std::fs::write(
        root.join("study.toml"),
        "[solver]\nepochs = 3\n[pinn]\nepochs = 7\n",
    )
    .unwrap();
    let epochs = |backend: &str, extra: &[&str]| {
        let artifacts = format!("art_{backend}_{}", extra.len());
        let output = train_in(root, &artifacts)
            .args(["--design", "study.toml", "--backend", backend, "--dry-run"])
            .args(["--dose", "1e3", "--view", "baseline"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let config = read_json(
            &root
                .join(&artifacts)
                .join("dose_1000/baseline/gs1/training_config.json"),
        );
        config["epochs"].as_u64().unwrap()
    };
    assert_eq!(epochs("tensorflow", &[]), 7);
    assert_eq!(epochs("pytorch", &[]), 7);
    assert_eq!(epochs("native", &[]), 3);
    assert_eq!(epochs("tensorflow", &["--epochs", "2"]), 2);
    assert_eq!(epochs("native", &["--epochs", "2"]), 2);
}

/// A stand-in for PtychoPINN's PyTorch side on PYTHONPATH, for `python3` with NumPy only:
/// `torch` (NumPy arrays for tensors), `ptycho.workflows.components.load_data` (one group seeded
/// at every position: itself and its nearest neighbours, `X_full` a scaled copy of the
/// diffraction) and `ptycho_torch.workflows.components.load_inference_bundle_torch`, whose
/// model checks that `forward_predict` gets what PtychoPINN's trainer fed it (`X_full` channel
/// first, `coords_relative` as (B, C, 1, 2), the probe as (B, C, 1, N, N), an input scale
/// of one) and returns, per channel, the true object at that channel's position (NaN when
/// `$FAKE_TORCH_NAN` is set: diverged weights).
fn write_stand_in_ptycho_torch(dir: &Path) {
    let files: [(&str, &str); 7] = [
        (
            "torch/__init__.py",
            r#"import contextlib, numpy as np
float32 = np.float32
def from_numpy(a): return a
def ones(shape, dtype=None): return np.ones(shape, dtype)
def no_grad(): return contextlib.nullcontext()
def manual_seed(seed): pass
"#,
        ),
        ("ptycho/__init__.py", ""),
        ("ptycho/workflows/__init__.py", ""),
        (
            "ptycho/workflows/components.py",
            r#"import numpy as np
GROUPED = []  # (X_full, true patches) of each split, in the order the adapter asks
class Raw:
    def __init__(self, path):
        d = np.load(path)
        self.xcoords, self.ycoords = d["xcoords"], d["ycoords"]
        self.diff3d, self.probeGuess = d["diffraction"], d["probeGuess"]
        self.objectGuess = d["objectGuess"]
    def generate_grouped_data(self, N, K=4, nsamples=1, gridsize=1, seed=None, **kw):
        count, c = len(self.xcoords), gridsize ** 2
        assert nsamples == count and N == self.diff3d.shape[-1], (nsamples, count, N)
        pts = np.stack([self.xcoords, self.ycoords], 1)
        nn = np.array([np.argsort(((pts - p) ** 2).sum(1), kind="stable")[:c] for p in pts])
        coords_nn = np.transpose(np.array([self.xcoords[nn], self.ycoords[nn]]), [1, 0, 2])[:, None]
        offsets = coords_nn.mean(axis=3, keepdims=True)
        x_full = (3.0 * np.transpose(self.diff3d[nn], [0, 2, 3, 1])).astype(np.float32)
        big = np.pad(self.objectGuess, N, constant_values=1)
        def patch(x, y):
            t, l = int(np.round(y - N / 2)) + N, int(np.round(x - N / 2)) + N
            return big[t:t + N, l:l + N]
        truth = np.array([[patch(self.xcoords[j], self.ycoords[j]) for j in g] for g in nn])
        GROUPED.append((x_full, truth.astype(np.complex64)))
        return {"X_full": x_full, "coords_nn": coords_nn, "coords_offsets": offsets,
                "coords_relative": -(coords_nn - offsets), "nn_indices": nn}
def load_data(path, **kw):
    return Raw(path)
"#,
        ),
        ("ptycho_torch/__init__.py", ""),
        ("ptycho_torch/workflows/__init__.py", ""),
        (
            "ptycho_torch/workflows/components.py",
            r#"import json, os, zipfile, numpy as np
from ptycho.workflows import components as tf_side
class Tensor:
    def __init__(self, a): self.a = a
    def detach(self): return self
    def cpu(self): return self
    def numpy(self): return self.a
class Config:
    def __init__(self, **kw): self.__dict__.update(kw)
class Model:
    def __init__(self, n, c):
        self.data_config = Config(N=n, C=c)
        self.model_config = Config(mode="Unsupervised", object_big=True)
        self.served, self.evaluating, self.n, self.c = 0, False, n, c
    def to(self, device):
        assert device == "cpu", device
        return self
    def eval(self):
        self.evaluating = True
        return self
    def forward_predict(self, x, positions, probe, input_scale_factor):
        assert self.evaluating, "forward_predict before eval()"
        x_full, truth = tf_side.GROUPED[0]
        b, s, n, c = x.shape[0], self.served, self.n, self.c
        assert x.dtype == np.float32 and np.array_equal(x, x_full.transpose(0, 3, 1, 2)[s:s + b]), \
            "x is not X_full, channel first"
        assert positions.shape == (b, c, 1, 2), positions.shape
        assert probe.shape == (b, c, 1, n, n) and probe.dtype == np.complex64, probe.shape
        assert input_scale_factor.shape == (b, 1, 1, 1) and np.all(input_scale_factor == 1)
        self.served += b
        if self.served == len(x_full):
            tf_side.GROUPED.pop(0)
            self.served = 0
        out = truth[s:s + b].copy()
        if os.environ.get("FAKE_TORCH_NAN"):
            out[:] = np.nan
        return Tensor(out)
def load_inference_bundle_torch(bundle_dir, model_name="diffraction_to_obj"):
    with zipfile.ZipFile(os.path.join(bundle_dir, "wts.h5.zip")) as z:
        cfg = json.loads(z.read("diffraction_to_obj/params.json"))
    return {"diffraction_to_obj": Model(cfg["N"], cfg["C"])}, {"N": cfg["N"], "intensity_scale": 1.0}
"#,
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A stand-in PyTorch trainer: writes a bundle shaped like PtychoPINN's (`model.pth` inside),
/// with the patch size of its data and the channels of its gridsize.
fn write_fake_pytorch_trainer(path: &Path) {
    crate::common::write_script(
        path,
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in --output_dir) out="$2";; --train_data_file) train="$2";; --gridsize) g="$2";; esac
  shift 2
done
echo "Epoch 1/1"; echo "loss: 0.5"
if [ -n "$FAKE_TORCH_DIVERGE" ]; then
  mkdir -p "$out/lightning_logs/version_0"
  printf 'epoch,poisson_train_loss_step,poisson_val_loss,step\n0,inf,,0\n0,,nan,1\n' \
    > "$out/lightning_logs/version_0/metrics.csv"
fi
exec python3 -c 'import json, sys, zipfile, numpy as np
n = int(np.load(sys.argv[2])["diffraction"].shape[-1])
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("diffraction_to_obj/model.pth", b"weights")
    z.writestr("diffraction_to_obj/params.json", json.dumps({"N": n, "C": int(sys.argv[3]) ** 2}))' "$out/wts.h5.zip" "$train" "$g"
"#,
    );
}

/// Regression (issue 11): PyTorch jobs trained but were never scored (the adapter loaded
/// TensorFlow bundles only). A PyTorch bundle now goes through PtychoPINN's PyTorch inference
/// API (the stand-in of `write_stand_in_ptycho_torch`) with the trainer's input scaling, and its
/// per-position patches through the same stitching and scoring as TensorFlow's: a model that
/// returns the truth scores as the truth, at gridsize 1 and 2.
#[test]
fn a_pytorch_bundle_is_scored_through_ptycho_torch() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_fake_pytorch_trainer(&root.join("ptycho_train"));
    write_stand_in_ptycho_torch(&root.join("fakepy"));
    let train = |artifacts: &str, nan: bool| {
        let mut cmd = train_in(root, artifacts);
        cmd.args(["--dose", "1e3", "--backend", "pytorch"])
            .args(["--trainer", "./ptycho_train"])
            .env("PTYCHO_PYTHON", "python3")
            .env("PYTHONPATH", root.join("fakepy"));
        if nan {
            cmd.env("FAKE_TORCH_NAN", "1");
        }
        let output = cmd.output().unwrap();
        // Diverged weights cannot be scored: a failure to report (issue 26, finding 6).
        let code = if nan { 1 } else { 0 };
        assert_eq!(output.status.code(), Some(code), "{}", text(&output.stderr));
        read_json(&root.join(artifacts).join("training_manifest.json"))
    };
    let manifest = train("artifacts", false);
    let jobs = manifest["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        let r = &job["result"];
        let job_dir = root.join(job["artifact_dir"].as_str().unwrap());
        let log = std::fs::read_to_string(job_dir.join("train.log")).unwrap();
        assert_eq!(r["status"], "success", "{r}");
        assert!(r.get("scoring_error").is_none(), "{r}\n{log}");
        assert_eq!(r["reconstruction_path"], "pinn_reconstruction.npz");
        for split in ["train", "test"] {
            let m = &r["metrics"][split];
            assert!(m["fienup_nrmse"].as_f64().unwrap() < 1e-5, "{m}");
            assert!(m["fienup_nrmse_initial"].as_f64().unwrap() > 0.0, "{m}");
        }
        let c = if job["gridsize"] == 2 { 4 } else { 1 };
        for needle in [
            "pinn_adapter: PyTorch bundle: N=8, C=".to_string(),
            format!("8 positions, 8 groups of {c}, {} patches (8, 8)", 8 * c),
            "Scored both splits against objectGuess.".to_string(),
        ] {
            assert!(log.contains(&needle), "{needle} not in:\n{log}");
        }
    }
    // The same checks the native and TensorFlow reconstructions pass: complex64, the shape of
    // each split's objectGuess.
    let recon = root.join("artifacts/dose_1000/dense/gs2/pinn_reconstruction.npz");
    let shapes = python_numpy(
        "import sys, numpy as np\nd = np.load(sys.argv[1])\n\
         print(sorted(d.files), d['train_object'].dtype, d['train_object'].shape, d['test_object'].shape)",
        &[&recon],
    );
    assert_eq!(
        shapes.trim(),
        "['test_object', 'train_object'] complex64 (40, 40) (40, 40)"
    );
    // Diverged weights: the training result stands, scoring_error says why.
    let manifest = train("nan", true);
    for job in manifest["jobs"].as_array().unwrap() {
        let r = &job["result"];
        assert_eq!(r["status"], "success", "{r}");
        assert!(r.get("metrics").is_none(), "{r}");
        let error = r["scoring_error"].as_str().unwrap();
        assert!(
            error.contains("the model returned non-finite patches (")
                && error.contains("the trained weights are not finite"),
            "{error}"
        );
    }
    // A training loss of inf in Lightning's log (what the pinned trainer did at gridsize 2,
    // dose 1e5) fails the job, unscored, though the trainer exited 0.
    let output = train_in(root, "diverged")
        .args(["--dose", "1e3", "--backend", "pytorch"])
        .args(["--trainer", "./ptycho_train"])
        .env("PTYCHO_PYTHON", "python3")
        .env("PYTHONPATH", root.join("fakepy"))
        .env("FAKE_TORCH_DIVERGE", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let manifest = read_json(&root.join("diverged/training_manifest.json"));
    for job in manifest["jobs"].as_array().unwrap() {
        let r = &job["result"];
        assert_eq!(r["status"], "failed", "{r}");
        assert!(r.get("metrics").is_none(), "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(
            error.starts_with("diverged at epoch 1: ") && error.contains("metrics.csv"),
            "{error}"
        );
    }
}

/// A stand-in trainer for both backends that behaves as PtychoPINN's does about devices: a GPU
/// exists when `$FAKE_GPU` is set and `CUDA_VISIBLE_DEVICES` does not hide it; the TensorFlow
/// path prints `No GPU found, using CPU instead.` or TensorFlow's `Created device ...GPU:0`
/// line, Lightning its `GPU available: X, used: Y` line (and fails under `gpu` without one).
fn write_device_trainer(path: &Path) {
    crate::common::write_script(
        path,
        r#"#!/bin/sh
ta=none
while [ $# -gt 0 ]; do
  case "$1" in --output_dir) out="$2";; --backend) b="$2";; --torch-accelerator) ta="$2";; esac
  shift 2
done
echo "stand-in trainer: backend=$b torch_accelerator=$ta CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"
gpu=""
if [ -n "$FAKE_GPU" ] && [ "${CUDA_VISIBLE_DEVICES-unset}" != "" ]; then gpu=1; fi
if [ "$b" = pytorch ]; then
  avail=False; [ -n "$gpu" ] && avail=True
  if [ "$ta" = gpu ] && [ -z "$gpu" ]; then echo "MisconfigurationException: No supported gpu backend found!" >&2; exit 1; fi
  used=False; [ -n "$gpu" ] && [ "$ta" != cpu ] && used=True
  echo "INFO: GPU available: $avail (cuda), used: $used"
elif [ -n "$gpu" ]; then
  echo "I0000 gpu_device.cc:2022] Created device /job:localhost/replica:0/task:0/device:GPU:0 with 79100 MB memory:  -> device: 0, name: NVIDIA H100" >&2
else
  echo "No GPU found, using CPU instead."
fi
echo "Epoch 1/1"; echo "8/8 - loss: 0.5000"
printf 'weights' > "$out/wts.h5.zip"
"#,
    );
}

/// `--accelerator` (and `[pinn] accelerator`) reaches both backends: `auto` lets the framework
/// take a GPU when it sees one, `cpu` hides GPUs from TensorFlow (`CUDA_VISIBLE_DEVICES=`) and
/// passes `--torch-accelerator cpu`, `gpu` fails the job before the trainer starts when there
/// is none. The device the trainer's output names goes into result.json and the report, with
/// the intensity scale the adapter read from the bundle.
#[test]
fn the_accelerator_reaches_both_backends_and_the_device_used_is_recorded() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_device_trainer(&root.join("ptycho_train"));
    write_stand_in_python(&root.join("python"));
    std::fs::write(root.join("cpu.toml"), "[pinn]\naccelerator = \"cpu\"\n").unwrap();
    // (backend, --accelerator or the study file, GPU present) -> (exit, device, torch flag,
    // what the trainer saw of CUDA_VISIBLE_DEVICES)
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        bool,
        i32,
        Option<&'a str>,
        &'a str,
        &'a str,
    );
    let cases: [Case; 12] = [
        ("tensorflow", &[], false, 0, Some("cpu"), "none", "unset"),
        ("tensorflow", &[], true, 0, Some("gpu"), "none", "unset"),
        (
            "tensorflow",
            &["--accelerator", "cpu"],
            true,
            0,
            Some("cpu"),
            "none",
            "",
        ),
        (
            "tensorflow",
            &["--design", "cpu.toml"],
            true,
            0,
            Some("cpu"),
            "none",
            "",
        ),
        (
            "tensorflow",
            &["--accelerator", "gpu"],
            true,
            0,
            Some("gpu"),
            "none",
            "unset",
        ),
        (
            "tensorflow",
            &["--accelerator", "gpu"],
            false,
            1,
            None,
            "",
            "",
        ),
        ("pytorch", &[], false, 0, Some("cpu"), "auto", "unset"),
        ("pytorch", &[], true, 0, Some("gpu"), "auto", "unset"),
        (
            "pytorch",
            &["--accelerator", "cpu"],
            true,
            0,
            Some("cpu"),
            "cpu",
            "",
        ),
        (
            "pytorch",
            &["--design", "cpu.toml"],
            true,
            0,
            Some("cpu"),
            "cpu",
            "",
        ),
        (
            "pytorch",
            &["--accelerator", "gpu"],
            true,
            0,
            Some("gpu"),
            "gpu",
            "unset",
        ),
        ("pytorch", &["--accelerator", "gpu"], false, 1, None, "", ""),
    ];
    for (i, (backend, flags, gpu, code, device, torch_flag, visible)) in cases.iter().enumerate() {
        let artifacts = format!("a{i}");
        let mut cmd = train_in(root, &artifacts);
        cmd.args(["--dose", "1e3", "--view", "baseline", "--backend", backend])
            .args(["--trainer", "./ptycho_train"])
            .args(*flags)
            .env("PTYCHO_PYTHON", root.join("python"))
            .env_remove("CUDA_VISIBLE_DEVICES");
        if *gpu {
            cmd.env("FAKE_GPU", "1");
        }
        let output = cmd.output().unwrap();
        let case = format!("case {i}: {backend} {flags:?} gpu={gpu}");
        assert_eq!(
            output.status.code(),
            Some(*code),
            "{case}: {}",
            text(&output.stderr)
        );
        let job_dir = root.join(&artifacts).join("dose_1000/baseline/gs1");
        let log = std::fs::read_to_string(job_dir.join("train.log")).unwrap();
        let r = &read_json(&job_dir.join("result.json"))["result"];
        match device {
            Some(device) => {
                assert_eq!(r["status"], "success", "{case}: {r}\n{log}");
                assert_eq!(r["pinn"]["device"], *device, "{case}: {r}");
                let trainer_saw = format!(
                    "stand-in trainer: backend={backend} torch_accelerator={torch_flag} \
                     CUDA_VISIBLE_DEVICES={visible}\n"
                );
                assert!(
                    log.contains(&trainer_saw),
                    "{case}: {trainer_saw} not in\n{log}"
                );
                assert!(
                    log.contains(&format!("Device: {device} (")),
                    "{case}: {log}"
                );
                let scale = &r["pinn"]["intensity_scale"];
                assert_eq!(scale["status"], "frozen", "{case}: {r}");
            }
            None => {
                // Refused before the trainer started, with what to do.
                assert_eq!(r["status"], "failed", "{case}: {r}");
                let error = r["error"].as_str().unwrap();
                let framework = if *backend == "pytorch" {
                    "PyTorch"
                } else {
                    "TensorFlow"
                };
                assert!(
                    error.starts_with(&format!("--accelerator gpu, but {framework} in "))
                        && error.contains("sees no GPU")
                        && error.contains("use --accelerator auto"),
                    "{case}: {error}"
                );
                assert!(!log.contains("stand-in trainer:"), "{case}: {log}");
                assert!(!job_dir.join("wts.h5.zip").exists(), "{case}");
            }
        }
    }
    // The report says where each job trained and that the scale stayed frozen.
    let output = cli()
        .current_dir(root)
        .args(["report", "a1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let summary = std::fs::read_to_string(root.join("a1/report/summary.md")).unwrap();
    assert!(
        summary.contains("## PtychoPINN training")
            && summary
                .contains("| 1e+03 | baseline | 1 | auto | gpu | frozen (0.9882 -> 0.9882) |")
            && summary.contains("**Not PtychoPINN as published:** 1 job(s) kept"),
        "{summary}"
    );
}

/// `scripts/gpu-check.sh` (for a person with a GPU) stops at once on a machine without one,
/// saying so, before it builds or downloads anything.
#[test]
fn the_gpu_check_refuses_at_once_without_a_gpu() {
    let dir = tempfile::tempdir().unwrap();
    // An nvidia-smi that lists no GPU (as on a machine with the driver tools but no device).
    let smi = dir.path().join("nvidia-smi");
    crate::common::write_script(&smi, "#!/bin/sh\necho 'No devices were found'\nexit 6\n");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gpu-check.sh");
    for path in [
        format!("{}:/usr/bin:/bin", dir.path().display()),
        "/usr/bin:/bin".into(),
    ] {
        let start = Instant::now();
        let output = std::process::Command::new("bash")
            .arg(&script)
            .env("PATH", &path)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
        assert!(
            text(&output.stderr).starts_with("gpu-check: no NVIDIA GPU on this machine"),
            "{}",
            text(&output.stderr)
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}

/// The adapter's facts file is an artifact a hostile or broken interpreter writes: a FIFO or a
/// link there is never opened or followed, a huge file is read only so far, and the job's
/// training and scoring results stand with the intensity scale unknown.
#[test]
fn a_hostile_facts_file_leaves_the_scale_unknown() {
    python_numpy("", &[] as &[&str]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_tree(root, &["dense"]);
    write_fake_trainer(&root.join("ptycho_train"), "NEVER", 0);
    write_stand_in_python(&root.join("python"));
    for (kind, logged) in [
        ("fifo", "is not a regular file (not read)"),
        ("link", "is not a regular file (not read)"),
        ("junk", "is not the adapter's facts"),
    ] {
        let start = Instant::now();
        let output = train_in(root, kind)
            .args(["--dose", "1e3", "--view", "baseline"])
            .args(["--trainer", "./ptycho_train"])
            .env("PTYCHO_PYTHON", root.join("python"))
            .env("FAKE_FACTS", kind)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{kind}: {}",
            text(&output.stderr)
        );
        assert!(start.elapsed() < Duration::from_secs(60), "{kind}");
        let job = root.join(kind).join("dose_1000/baseline/gs1");
        let r = &read_json(&job.join("result.json"))["result"];
        assert_eq!(r["status"], "success", "{kind}: {r}");
        assert!(r["metrics"]["test"].is_object(), "{kind}: {r}");
        assert!(r["pinn"].get("intensity_scale").is_none(), "{kind}: {r}");
        let log = std::fs::read_to_string(job.join("train.log")).unwrap();
        assert!(
            log.contains("The intensity scale is unknown: ") && log.contains(logged),
            "{kind}: {log}"
        );
    }
}
