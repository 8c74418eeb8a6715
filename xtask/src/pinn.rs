//! `cargo xtask pinn-check`: trains the `pinn-small` study's baseline and dense (gridsize 2)
//! jobs of one dose with the real PtychoPINN TensorFlow trainer through `dose-overlap train`,
//! and checks what a user relies on: success, bundle digests and sizes, metrics of both splits,
//! the stitched reconstruction, and the arguments the trainer got in the job log.
//!
//! Needs the venv of `scripts/setup-ptychopinn-venv.sh` (`$PTYCHO_TRAIN`, `$PTYCHO_PYTHON`).
//! Real bundles differ from run to run, so nothing here is compared with goldens.

use anyhow::{Context, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `cargo xtask pinn-check`.
#[derive(Debug, Default)]
pub struct Options {
    /// A prebuilt `dose-overlap` instead of building the release binary.
    pub binary: Option<PathBuf>,
    /// The study folder (default `target/pinn-check`, emptied first).
    pub out: Option<PathBuf>,
    /// Epochs per job (default 1).
    pub epochs: u32,
}

impl Options {
    /// Parses `[--binary PATH] [--out DIR] [--epochs N]`.
    pub fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            epochs: 1,
            ..Options::default()
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .with_context(|| format!("{arg} needs a value\n{}", crate::USAGE))
            };
            match arg.as_str() {
                "--binary" => options.binary = Some(value()?.into()),
                "--out" => options.out = Some(value()?.into()),
                "--epochs" => options.epochs = value()?.parse().context("--epochs N")?,
                other => bail!("unknown option `{other}`\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }
}

fn sha256_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = Sha256::digest(&bytes);
    Ok((
        digest.iter().map(|b| format!("{b:02x}")).collect(),
        bytes.len() as u64,
    ))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn run_step(binary: &Path, args: &[&str], cwd: &Path) -> anyhow::Result<(i32, String, String)> {
    let output = std::process::Command::new(binary)
        .args(args)
        .current_dir(cwd)
        .output()
        .with_context(|| format!("running dose-overlap {}", args.join(" ")))?;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Runs the check; returns the exit code (0 when everything holds).
pub fn run(options: Options) -> anyhow::Result<u8> {
    let root = crate::project_root();
    for var in ["PTYCHO_TRAIN", "PTYCHO_PYTHON"] {
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            bail!(
                "${var} is not set: build the trainer's venv with \
                 scripts/setup-ptychopinn-venv.sh and export what it prints"
            );
        }
    }
    let binary = match options.binary {
        Some(b) => b,
        None => crate::baseline::build_release(&root)?,
    };
    let binary = std::path::absolute(&binary)?;
    let out = options
        .out
        .unwrap_or_else(|| root.join("target/pinn-check"));
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let epochs = options.epochs.to_string();
    let start = Instant::now();
    let dose = "1e5";
    let steps: [(&str, Vec<&str>); 3] = [
        (
            "generate",
            vec![
                "-q",
                "generate",
                "--preset",
                "pinn-small",
                // Every dose (seconds): overlap and train read the whole design.
                "--out",
                "phase_c",
            ],
        ),
        (
            "overlap",
            vec![
                "-q",
                "overlap",
                "--preset",
                "pinn-small",
                "--phase-c-root",
                "phase_c",
                "--out",
                "phase_d",
            ],
        ),
        (
            "train",
            vec![
                "train",
                "--preset",
                "pinn-small",
                "--backend",
                "tensorflow",
                "--phase-c-root",
                "phase_c",
                "--phase-d-root",
                "phase_d",
                "--artifact-root",
                "artifacts",
                "--dose",
                dose,
                "--epochs",
                &epochs,
                "-j",
                "2",
            ],
        ),
    ];
    for (name, args) in &steps {
        let t = Instant::now();
        eprintln!("pinn-check: dose-overlap {}", args.join(" "));
        let (code, stdout, stderr) = run_step(&binary, args, &out)?;
        std::fs::write(out.join(format!("{name}.stdout")), &stdout)?;
        std::fs::write(out.join(format!("{name}.stderr")), &stderr)?;
        eprintln!(
            "pinn-check: {name} exit {code} in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        if code != 0 {
            bail!(
                "`dose-overlap {}` exited {code}:\n{stderr}\n(outputs in {})",
                args.join(" "),
                out.display()
            );
        }
    }
    let problems = check_artifacts(&out.join("artifacts"), options.epochs)?;
    eprintln!(
        "pinn-check: {} in {:.0} s ({})",
        if problems.is_empty() { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64(),
        out.display()
    );
    for p in &problems {
        eprintln!("pinn-check: {p}");
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}

/// Every problem with the artifacts of a real-trainer run of baseline and dense.
pub fn check_artifacts(artifacts: &Path, epochs: u32) -> anyhow::Result<Vec<String>> {
    let manifest = read_json(&artifacts.join("training_manifest.json"))?;
    let jobs = manifest["jobs"]
        .as_array()
        .context("manifest has no jobs")?;
    let mut problems = Vec::new();
    let views: Vec<&str> = jobs.iter().filter_map(|j| j["view"].as_str()).collect();
    if views != ["baseline", "dense"] {
        problems.push(format!(
            "expected the baseline and dense jobs, found {views:?}"
        ));
    }
    for job in jobs {
        let label = format!("{}/gs{}", job["view"], job["gridsize"]);
        let r = &job["result"];
        let mut check = |ok: bool, what: String| {
            if !ok {
                problems.push(format!("{label}: {what}"));
            }
        };
        check(
            r["status"] == "success",
            format!("status {}: {}", r["status"], r["error"]),
        );
        check(
            r["backend"] == "tensorflow",
            format!("backend {}", r["backend"]),
        );
        check(
            r["epochs_completed"] == epochs,
            format!(
                "epochs_completed {} (asked {epochs})",
                r["epochs_completed"]
            ),
        );
        check(
            r["final_loss"].as_f64().is_some_and(f64::is_finite),
            format!("final_loss {}", r["final_loss"]),
        );
        let dir = artifacts
            .parent()
            .unwrap_or(artifacts)
            .join(job["artifact_dir"].as_str().unwrap_or("?"));
        let dir = if dir.is_dir() {
            dir
        } else {
            PathBuf::from(job["artifact_dir"].as_str().unwrap_or("?"))
        };
        match sha256_file(&dir.join("wts.h5.zip")) {
            Ok((sha, size)) => {
                check(
                    r["bundle_sha256"] == sha.as_str(),
                    "bundle_sha256 differs from the file's".into(),
                );
                check(
                    r["bundle_size_bytes"] == size && size > 0,
                    format!("bundle size {size}"),
                );
            }
            Err(e) => check(false, format!("{e:#}")),
        }
        check(
            r["reconstruction_path"] == "pinn_reconstruction.npz"
                && dir.join("pinn_reconstruction.npz").is_file(),
            format!("reconstruction_path {}", r["reconstruction_path"]),
        );
        for split in ["train", "test"] {
            let m = &r["metrics"][split];
            let finite = |v: &Value| v.as_f64().is_some_and(f64::is_finite);
            check(
                finite(&m["phase"]["ssim"])
                    && finite(&m["amplitude"]["ssim"])
                    && finite(&m["fienup_nrmse"])
                    && m["region"]["pixels"].as_u64().is_some_and(|p| p > 0),
                format!("metrics.{split} incomplete: {m}"),
            );
        }
        // Issue 20: whole groups in every batch (B x gridsize² < 64: 16 at 1, 8 at 2).
        let batch = if job["gridsize"] == 2 { 8 } else { 16 };
        let log = std::fs::read_to_string(dir.join("train.log")).unwrap_or_default();
        let batch = batch.to_string();
        let batch_given = log.lines().filter(|l| l.starts_with("$ ")).any(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w == ["--batch_size", batch.as_str()])
        });
        check(
            batch_given,
            format!("the trainer's command line in train.log lacks `--batch_size {batch}`"),
        );
        let pinn = &r["pinn"];
        check(
            matches!(pinn["device"].as_str(), Some("cpu" | "gpu")),
            format!("the device used is not recorded: pinn {pinn}"),
        );
        check(
            matches!(
                pinn["intensity_scale"]["status"].as_str(),
                Some("trained" | "frozen" | "fixed")
            ) && pinn["intensity_scale"]["initial"].as_f64().is_some(),
            format!("the intensity scale is not recorded: pinn {pinn}"),
        );
        eprintln!(
            "pinn-check: {label}: device {}, intensity scale {}",
            pinn["device"], pinn["intensity_scale"]
        );
        for needle in [
            "Phase E5 Training Execution",
            "--config ",
            "ptychopinn_config.yaml",
            "--neighbor_count 7",
            "--n_groups ",
            "--nepochs ",
            "Scored both splits against objectGuess.",
            "Outcome: success",
        ] {
            check(log.contains(needle), format!("train.log lacks `{needle}`"));
        }
        // The trainer ran in the job dir: its debug log is there, not in the caller's folder.
        check(
            dir.join("train_debug.log").is_file(),
            "no train_debug.log in the job dir".into(),
        );
        let yaml = std::fs::read_to_string(dir.join("ptychopinn_config.yaml")).unwrap_or_default();
        check(
            yaml.contains("model:\n  N: 64\n"),
            format!("ptychopinn_config.yaml: {yaml}"),
        );
    }
    Ok(problems)
}
