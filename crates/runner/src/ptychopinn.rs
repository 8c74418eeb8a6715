//! What PtychoPINN's real trainer needs beyond its documented flags, and scoring its bundles:
//! the checks made when planning (patch size, group counts), the invocation (a `--config` YAML
//! for N, `--neighbor_count`, `--n_groups`, absolute paths, the job dir as working directory,
//! an explicit PyTorch accelerator), PyTorch's `metrics.csv`, and the inference adapter (a
//! Python script shipped in this binary) whose stitched objects are scored like the native
//! solver's.

use crate::backend::{BackendError, JobContext};
use crate::config::{BackendKind, PinnSettings, TrainerProgram, TrainingConfig};
use serde::Deserialize;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use study_design::{Accelerator, Pinn};

/// The patch sizes N PtychoPINN's model accepts (`Unsupported input size` otherwise).
pub const ACCEPTED_PATCH_SIZES: [u32; 3] = [64, 128, 256];
/// The YAML in the job dir that carries N (`model:` / `N: ...`) to the trainer's `--config`.
pub const PINN_CONFIG_FILE: &str = "ptychopinn_config.yaml";
/// The learning rate passed to the PyTorch trainer: PtychoPINN's own default.
pub const PYTORCH_LEARNING_RATE: &str = "0.001";

/// The inference adapter, written into the job dir before it runs.
pub const ADAPTER_FILE: &str = "pinn_adapter.py";
/// The stitched reconstructions (`train_object`, `test_object`), beside the bundle.
pub const RECONSTRUCTION_FILE: &str = "pinn_reconstruction.npz";
/// What the adapter read from the bundle beyond the patches (its intensity scale), in the
/// job dir.
pub const ADAPTER_FACTS_FILE: &str = "pinn_adapter_facts.json";
/// The interpreter of the adapter, when set.
pub const PYTHON_ENV_VAR: &str = "PTYCHO_PYTHON";

const ADAPTER_SOURCE: &str = include_str!("pinn_adapter.py");

/// How `--n_groups` is chosen when it is not given (documented in README).
pub const N_GROUPS_AUTO_RULE: &str = "auto: the smaller split's position count (PtychoPINN groups both splits with it; every \
     position seeds one group, so no oversampling is needed)";

/// What a PtychoPINN job may set beyond the study's `[pinn]` table: the command-line flags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PinnOverrides {
    /// `--n-groups`.
    pub n_groups: Option<u32>,
    /// `--accelerator`.
    pub accelerator: Option<Accelerator>,
}

/// The problem with patch size `n` for a PtychoPINN backend, with the fix.
pub fn patch_size_problem(n: u32, backend: BackendKind) -> Option<String> {
    (backend.uses_trainer_program() && !ACCEPTED_PATCH_SIZES.contains(&n)).then(|| {
        format!(
            "patch_size_pixels={n}: PtychoPINN's model (--backend {backend}) takes N = 64, 128 \
             or 256 only; use --preset pinn-small (N = 64) or default (N = 128), set \
             patch_size_pixels in the study file, or train this study with --backend native"
        )
    })
}

/// Positions in an NPZ split (the length of `xcoords`, from its header only).
fn positions(path: &Path) -> Result<u64, String> {
    let reader = npz_contract::NpzReader::open(path).map_err(|e| e.to_string())?;
    let member = reader
        .member("xcoords")
        .ok_or_else(|| format!("{}: no xcoords", path.display()))?;
    Ok(member.shape.first().copied().unwrap_or(0) as u64)
}

/// Resolves a job's [`PinnSettings`], or says why PtychoPINN cannot train it: each problem
/// names the job, the setting and the fix. `Ok(None)` when a split cannot be read: that job
/// then fails on its own when the trainer reads it (one bad file never stops the others).
pub fn resolve_settings(
    config: &TrainingConfig,
    pinn: &Pinn,
    overrides: &PinnOverrides,
    python: Option<PathBuf>,
) -> Result<Option<PinnSettings>, Vec<String>> {
    let job = format!("{} dose={}", config.view, config.dose);
    let mut problems = Vec::new();
    let (n_groups, n_groups_flag) = match (overrides.n_groups, pinn.n_groups) {
        (Some(n), _) => (Some(n), "--n-groups"),
        (None, Some(n)) => (Some(n), "[pinn] n_groups"),
        (None, None) => (None, ""),
    };
    let (Ok(train), Ok(test)) = (
        positions(&config.train_data_file),
        positions(&config.test_data_file),
    ) else {
        return Ok(None);
    };
    let g = u64::from(config.gridsize);
    let k = u64::from(config.neighbor_count);
    if g > 1 && k < g * g {
        problems.push(format!(
            "{job}: neighbor_count={k} is below gridsize²={}: PtychoPINN groups {} positions \
             out of the K nearest; set neighbor_count to at least {} in the study file",
            g * g,
            g * g,
            g * g
        ));
    }
    let smaller = train.min(test);
    // PtychoPINN finds each seed's K nearest neighbours among the split's other positions.
    if g > 1 && smaller < k + 1 {
        problems.push(format!(
            "{job}: the view is too small for gridsize {g}: a split has {smaller} positions but \
             grouping with neighbor_count K={k} needs at least {} per split; use a denser view \
             (a larger overlap fraction), more simulation.n_positions, or a smaller \
             neighbor_count",
            k + 1
        ));
    }
    let (n_groups, rule) = match n_groups {
        Some(n) => {
            if u64::from(n) > smaller {
                problems.push(format!(
                    "{job}: {n_groups_flag} {n} asks for more groups than the view supplies \
                     (train {train}, test {test} positions; PtychoPINN groups both splits with \
                     it and this toolkit does not enable its oversampling): give at most \
                     {smaller}, or leave {n_groups_flag} out ({N_GROUPS_AUTO_RULE})"
                ));
            }
            (n, n_groups_flag.to_string())
        }
        None => (
            u32::try_from(smaller).unwrap_or(u32::MAX),
            N_GROUPS_AUTO_RULE.to_string(),
        ),
    };
    if n_groups == 0 {
        problems.push(format!(
            "{job}: no groups to train on (train {train}, test {test} positions)"
        ));
    }
    let batch = match pinn.batch_size_for(config.gridsize) {
        Some((b, rule)) => {
            // A study file's batch size is checked against the study's gridsizes when it is
            // loaded; this catches a job planned some other way.
            if let Some(problem) = study_design::pinn_batch_problem(b, config.gridsize) {
                problems.push(format!("{job}: {problem}"));
            }
            Some((b, rule.to_string()))
        }
        None => {
            problems.push(format!(
                "{job}: gridsize {} cannot train with PtychoPINN without merging groups: one \
                 group is {} patches, and its patch reassembly sums every group of a batch into \
                 one object from {} patches on; use a gridsize of at most 7",
                config.gridsize,
                config.gridsize * config.gridsize,
                study_design::PINN_MERGE_PATCHES
            ));
            None
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let (batch_size, batch_size_rule) = batch.expect("no problem means a batch size");
    Ok(Some(PinnSettings {
        n_groups,
        n_groups_rule: rule,
        train_positions: train,
        test_positions: test,
        python,
        batch_size,
        batch_size_rule,
        accelerator: overrides.accelerator.unwrap_or(pinn.accelerator),
    }))
}

/// The trainer's full command line for `config`: its documented flags, then what the real
/// trainer needs (`--config` YAML for N, K, the group count, PyTorch's accelerator).
pub fn trainer_args(config: &TrainingConfig) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut flag = |name: &str, value: OsString| {
        args.push(name.into());
        args.push(value);
    };
    flag(
        "--config",
        config.output_dir.join(PINN_CONFIG_FILE).into_os_string(),
    );
    flag("--train_data_file", config.train_data_file.clone().into());
    flag("--test_data_file", config.test_data_file.clone().into());
    flag("--output_dir", config.output_dir.clone().into());
    flag("--backend", config.backend.as_str().into());
    flag("--gridsize", config.gridsize.to_string().into());
    // `{:?}` keeps the decimal point (1000.0), as Python prints a float.
    flag("--nphotons", format!("{:?}", config.nphotons).into());
    flag("--nepochs", config.epochs.to_string().into());
    flag("--neighbor_count", config.neighbor_count.to_string().into());
    if let Some(pinn) = &config.pinn {
        flag("--n_groups", pinn.n_groups.to_string().into());
        // Always given: PtychoPINN's default 16 merges the groups of every gridsize-2 batch.
        flag("--batch_size", pinn.batch_size.to_string().into());
    }
    if config.backend == BackendKind::Pytorch {
        // PtychoPINN's own `auto` takes CUDA when torch sees it, else the CPU; `gpu` makes
        // Lightning fail without one. A plan made before `--accelerator` existed ran on CPU.
        flag(
            "--torch-accelerator",
            job_accelerator(config).as_str().into(),
        );
        // Any --torch-* flag makes train.py build its execution config from the flags, with
        // a learning rate of None unless given, which that config then rejects (`'<=' not
        // supported between instances of 'NoneType' and 'int'`, every job, pinned snapshot).
        // 1e-3 is PtychoPINN's own default (PyTorchExecutionConfig.learning_rate).
        flag("--torch-learning-rate", PYTORCH_LEARNING_RATE.into());
    }
    args
}

/// Where a job trains: its `pinn.accelerator`; a plan made before `--accelerator` existed
/// (no `pinn` settings) trained on the CPU.
pub fn job_accelerator(config: &TrainingConfig) -> Accelerator {
    config
        .pinn
        .as_ref()
        .map_or(Accelerator::Cpu, |p| p.accelerator)
}

/// The environment variables a job's trainer and adapter get beyond dose-overlap's own:
/// `cpu` hides every GPU (TensorFlow has no flag for it; PyTorch also gets
/// `--torch-accelerator cpu`).
pub fn trainer_env(config: &TrainingConfig) -> Vec<(&'static str, &'static str)> {
    match job_accelerator(config) {
        Accelerator::Cpu => vec![("CUDA_VISIBLE_DEVICES", "")],
        Accelerator::Auto | Accelerator::Gpu => Vec::new(),
    }
}

/// The YAML that carries N: PtychoPINN reads N only from `model:` / `N:` of its `--config`
/// (its own `--N` rejects every value, a top-level `N:` is overridden by the flag default).
pub fn config_yaml(config: &TrainingConfig) -> String {
    format!(
        "# Written by dose-overlap from training_config.json: PtychoPINN takes N only from here.\n\
         model:\n  N: {}\n  gridsize: {}\n",
        config.patch_size_pixels, config.gridsize
    )
}

fn absolute(path: &Path) -> Result<PathBuf, BackendError> {
    std::path::absolute(path)
        .map_err(|e| BackendError::failed(format!("cannot make {} absolute: {e}", path.display())))
}

/// The configuration with absolute paths (the trainer runs in the job dir), and the YAML
/// written where `--config` points.
pub fn prepare(config: &TrainingConfig) -> Result<TrainingConfig, BackendError> {
    // No settings: a split could not be read when the job was planned; the trainer is still
    // run (without --n_groups) and fails on that file, naming it, as it would by hand.
    let mut abs = config.clone();
    abs.train_data_file = absolute(&config.train_data_file)?;
    abs.test_data_file = absolute(&config.test_data_file)?;
    abs.output_dir = absolute(&config.output_dir)?;
    let yaml = abs.output_dir.join(PINN_CONFIG_FILE);
    npz_contract::atomic::write_atomic(&yaml, config_yaml(config).as_bytes())
        .map_err(|e| BackendError::failed(format!("cannot write {}: {e}", yaml.display())))?;
    Ok(abs)
}

/// What PyTorch Lightning's CSV log says about a training run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LightningLog {
    /// The last finite training loss.
    pub final_loss: Option<f64>,
    /// Epochs trained.
    pub epochs: u32,
    /// The first epoch (1-based) whose training loss is `inf` or `nan`: the training
    /// diverged there.
    pub diverged_at: Option<u32>,
}

/// [`LightningLog`] of `<output_dir>/lightning_logs/version_<highest>/metrics.csv`.
pub fn lightning_metrics(output_dir: &Path) -> Option<LightningLog> {
    let logs = output_dir.join("lightning_logs");
    let version = std::fs::read_dir(&logs)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n: u64 = name.strip_prefix("version_")?.parse().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)?
        .1;
    parse_lightning_csv(&std::fs::read_to_string(version.join("metrics.csv")).ok()?)
}

/// [`lightning_metrics`] on the CSV text: the loss column is `train_loss_epoch`, else
/// `train_loss`, else the first `*loss_epoch` that is not a validation loss; divergence is a
/// non-finite value in any training-loss column (per step or per epoch).
pub fn parse_lightning_csv(text: &str) -> Option<LightningLog> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').map(str::trim).collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let epoch_col = col("epoch")?;
    let loss_col = col("train_loss_epoch")
        .or_else(|| col("train_loss"))
        .or_else(|| {
            header
                .iter()
                .position(|h| h.ends_with("loss_epoch") && !h.starts_with("val"))
        });
    let train_loss_cols: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, h)| h.contains("loss") && !h.starts_with("val"))
        .map(|(i, _)| i)
        .collect();
    let (mut last_loss, mut max_epoch, mut diverged_at) = (None, None::<u32>, None);
    for line in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let epoch = cells
            .get(epoch_col)
            .and_then(|c| c.parse::<f64>().ok())
            .map(|e| e as u32);
        if let Some(e) = epoch {
            max_epoch = Some(max_epoch.map_or(e, |m| m.max(e)));
        }
        let non_finite = train_loss_cols.iter().any(|&c| {
            cells
                .get(c)
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| !v.is_finite())
        });
        if non_finite && diverged_at.is_none() {
            diverged_at = Some(epoch.unwrap_or(0) + 1);
        }
        if let Some(v) = loss_col
            .and_then(|c| cells.get(c))
            .and_then(|c| c.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        {
            last_loss = Some(v);
        }
    }
    Some(LightningLog {
        final_loss: last_loss,
        epochs: max_epoch? + 1,
        diverged_at,
    })
}

/// `program` as the runner sees it: a path with a folder in it made absolute (the child runs
/// elsewhere), a bare name left for the PATH lookup.
pub fn program_path(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf())
    } else {
        program.to_path_buf()
    }
}

/// The program `name` names: a path as is, a bare name looked up on PATH.
fn locate(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The interpreter of a script's `#!` line when it is a Python (`#!/x/python3`, `#!/usr/bin/env
/// python3`, `#!/usr/bin/env -S python3 -u`).
pub fn shebang_python(script_head: &[u8]) -> Option<PathBuf> {
    let line = script_head.strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|&b| b == b'\n').next()?).into_owned();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    let program = if Path::new(first).file_name()? == "env" {
        words.find(|w| !w.starts_with('-'))?
    } else {
        first
    };
    let name = Path::new(program).file_name()?.to_string_lossy();
    name.starts_with("python").then(|| PathBuf::from(program))
}

/// The adapter's interpreter: `$PTYCHO_PYTHON` as planned, else the trainer's `#!` Python.
fn interpreter(config: &TrainingConfig, trainer: &TrainerProgram) -> Result<PathBuf, String> {
    if let Some(python) = config.pinn.as_ref().and_then(|p| p.python.clone()) {
        return Ok(python);
    }
    let head = locate(&trainer.program).and_then(|path| {
        let mut buf = vec![0u8; 512];
        let n = io::Read::read(&mut std::fs::File::open(path).ok()?, &mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    });
    head.as_deref().and_then(shebang_python).ok_or_else(|| {
        format!(
            "no Python to run the inference adapter: ${PYTHON_ENV_VAR} is not set and the \
             trainer {} is not a Python script with a `#!` line; set ${PYTHON_ENV_VAR} to the \
             interpreter of PtychoPINN's environment (e.g. `export {PYTHON_ENV_VAR}=V/bin/python`, \
             see scripts/setup-ptychopinn-venv.sh) and rerun this job",
            trainer.describe()
        )
    })
}

/// Exit status of the GPU probe when the framework sees no GPU.
const NO_GPU: i32 = 3;

/// `--accelerator gpu`: fails the job before the trainer starts unless the trainer's framework
/// (TensorFlow or PyTorch, in the adapter's interpreter) sees a GPU. TensorFlow has no flag
/// that makes it refuse the CPU, so the toolkit asks it first.
pub fn require_gpu(
    config: &TrainingConfig,
    trainer: &TrainerProgram,
    ctx: &mut JobContext<'_>,
) -> Result<(), BackendError> {
    let python = interpreter(config, trainer).map_err(|e| {
        BackendError::failed(format!("--accelerator gpu cannot check for a GPU: {e}"))
    })?;
    let (framework, probe) = match config.backend {
        BackendKind::Pytorch => (
            "PyTorch",
            "import sys, torch\n\
             n = torch.cuda.device_count() if torch.cuda.is_available() else 0\n\
             print(f'dose-overlap GPU probe: PyTorch {torch.__version__} sees {n} CUDA GPU(s)')\n\
             sys.exit(0 if n else 3)\n",
        ),
        _ => (
            "TensorFlow",
            "import sys, tensorflow as tf\n\
             gpus = tf.config.list_physical_devices('GPU')\n\
             print(f'dose-overlap GPU probe: TensorFlow {tf.__version__} sees {len(gpus)} GPU(s)')\n\
             sys.exit(0 if gpus else 3)\n",
        ),
    };
    ctx.log_line(&format!(
        "--accelerator gpu: asking {framework} ({}) for a GPU before training:",
        python.display()
    ));
    let mut command = Command::new(&python);
    command
        .args(["-c", probe])
        .envs(trainer_env(config))
        .current_dir(&config.output_dir);
    let contained = crate::contain::run_contained(command, ctx).map_err(|e| {
        BackendError::failed(format!(
            "--accelerator gpu cannot run {} to check for a GPU: {e}; set ${PYTHON_ENV_VAR} to \
             PtychoPINN's interpreter",
            python.display()
        ))
    })?;
    if contained.stopped.is_some() {
        return Err(BackendError::Interrupted);
    }
    match contained.status.code() {
        Some(0) => Ok(()),
        Some(NO_GPU) => Err(BackendError::failed(format!(
            "--accelerator gpu, but {framework} in {} sees no GPU (CUDA_VISIBLE_DEVICES={}); the \
             trainer was not started. Run this job where a GPU is{}, or use --accelerator auto \
             (a GPU when there is one, else the CPU) or cpu",
            python.display(),
            std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".to_string()),
            if config.backend == BackendKind::Pytorch {
                ""
            } else {
                " with a TensorFlow that can use it (the pins install tensorflow-cpu: \
                 scripts/setup-ptychopinn-venv.sh --gpu builds their CUDA build)"
            }
        ))),
        _ => Err(BackendError::failed(format!(
            "--accelerator gpu: the GPU check with {} ended with {}{}; the trainer was not \
             started (can it import {framework}? see the job log)",
            python.display(),
            contained.status,
            contained
                .output
                .last_line
                .map(|l| format!(" (`{l}`)"))
                .unwrap_or_default()
        ))),
    }
}

/// Why scoring gave no metrics.
#[derive(Debug)]
pub enum ScoreError {
    /// The adapter was stopped (Ctrl-C / SIGTERM of the run, or `--job-timeout`): the job is
    /// interrupted or timed out, not scored.
    Stopped,
    /// Scoring failed; the training result stands and this is its `scoring_error`.
    Failed(String),
}

impl From<String> for ScoreError {
    fn from(message: String) -> Self {
        ScoreError::Failed(message)
    }
}

/// What scoring a trained job gave.
#[derive(Debug)]
pub struct Scored {
    /// `{"train": Metrics, "test": Metrics}`, the native backend's shape.
    pub metrics: serde_json::Value,
    /// The stitched reconstructions ([`RECONSTRUCTION_FILE`] in the job dir).
    pub reconstruction: PathBuf,
    /// The bundle's intensity scale beside its start (`None` when the adapter could not
    /// read it).
    pub intensity_scale: Option<crate::result::IntensityScale>,
}

/// The adapter's facts file: `{"intensity_scale": {"initial", "trained", "trainable"} | null}`.
fn read_adapter_facts(path: &Path) -> Result<Option<crate::result::IntensityScale>, String> {
    #[derive(Deserialize)]
    struct Scale {
        initial: f64,
        trained: f64,
        trainable: bool,
    }
    #[derive(Deserialize)]
    struct Facts {
        intensity_scale: Option<Scale>,
    }
    // Bounded: the adapter writes a few hundred bytes.
    let mut bytes = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            1 << 16,
        ),
        &mut bytes,
    )
    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let facts: Facts = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not the adapter's facts: {e}", path.display()))?;
    Ok(facts
        .intensity_scale
        .map(|s| crate::result::IntensityScale::new(s.initial, s.trained, s.trainable)))
}

/// Reconstructs both splits with the trained bundle (the adapter, through PtychoPINN's own
/// inference API), then scores the stitched objects with the toolkit's one scoring code (`recon::score_files`).
/// `config` has absolute paths ([`prepare`]). The adapter is contained like the trainer
/// (`contain`): its own process group under the watchdog, stopped on Ctrl-C, at
/// `--job-timeout`, and with `dose-overlap` itself.
pub fn score(
    config: &TrainingConfig,
    trainer: &TrainerProgram,
    ctx: &mut JobContext<'_>,
) -> Result<Scored, ScoreError> {
    let python = interpreter(config, trainer)?;
    let dir = &config.output_dir;
    let adapter = dir.join(ADAPTER_FILE);
    let out = dir.join(RECONSTRUCTION_FILE);
    let facts = dir.join(ADAPTER_FACTS_FILE);
    npz_contract::atomic::write_atomic(&adapter, ADAPTER_SOURCE.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", adapter.display()))?;
    for earlier in [&out, &facts] {
        if earlier.exists() {
            std::fs::remove_file(earlier)
                .map_err(|e| format!("cannot remove the earlier {}: {e}", earlier.display()))?;
        }
    }
    let mut command = Command::new(&python);
    command
        .arg(&adapter)
        .arg("--bundle-dir")
        .arg(dir)
        .arg("--train")
        .arg(&config.train_data_file)
        .arg("--test")
        .arg(&config.test_data_file)
        .arg("--out")
        .arg(&out)
        .args(["--gridsize", &config.gridsize.to_string()])
        .args(["--neighbor-count", &config.neighbor_count.to_string()])
        .args(["--seed", &config.rng_seeds.grouping.to_string()])
        .arg("--facts")
        .arg(&facts)
        .envs(trainer_env(config))
        .current_dir(dir);
    ctx.log_line("");
    ctx.log_line(&format!(
        "Scoring: reconstructing both splits with the trained bundle (in {}):",
        dir.display()
    ));
    let shown: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| crate::shell::shell_word(&a.to_string_lossy()))
        .collect();
    ctx.log_line(&format!("$ {}", shown.join(" ")));
    ctx.log.sync().map_err(|e| e.to_string())?;
    let contained = crate::contain::run_contained(command, ctx).map_err(|e| {
        format!(
            "cannot run the inference adapter with {} (from ${PYTHON_ENV_VAR} or the trainer's \
             `#!` line): {e}; set ${PYTHON_ENV_VAR} to PtychoPINN's interpreter",
            python.display()
        )
    })?;
    if let Some(why) = contained.stopped {
        ctx.log_line("");
        ctx.log_line(match why {
            crate::contain::Stopped::Cancelled => "Interrupted: the inference adapter was stopped.",
            crate::contain::Stopped::TimedOut => {
                "Timed out: the inference adapter and its processes were stopped."
            }
        });
        return Err(ScoreError::Stopped);
    }
    let status = contained.status;
    if !status.success() {
        let last = contained
            .output
            .last_line
            .map(|l| format!("; its last output line: `{l}`"))
            .unwrap_or_default();
        return Err(ScoreError::Failed(format!(
            "the inference adapter ({} {ADAPTER_FILE}) ended with {status}{last}; see the job \
             log (PtychoPINN must be importable by ${PYTHON_ENV_VAR} or the trainer's \
             interpreter: installed, or on PYTHONPATH)",
            python.display()
        )));
    }
    let options = recon::EvalOptions {
        ssim_sigma: config.metrics_config.ms_ssim_sigma,
        ..recon::EvalOptions::default()
    };
    // The one scoring code of the toolkit, on the file the adapter wrote.
    let split = |split: recon::Split, truth: &Path| -> Result<serde_json::Value, String> {
        let metrics =
            recon::score_files(truth, &out, Some(split), &options).map_err(|e| e.to_string())?;
        serde_json::to_value(metrics).map_err(|e| e.to_string())
    };
    let train = split(recon::Split::Train, &config.train_data_file)?;
    let test = split(recon::Split::Test, &config.test_data_file)?;
    // A stand-in or older adapter may write no facts: the scale is then unknown, not wrong.
    // Only a regular file is read: a link or a FIFO there is never followed or opened.
    let intensity_scale = match std::fs::symlink_metadata(&facts) {
        Err(_) => None,
        Ok(meta) if !meta.is_file() => {
            ctx.log_line(&format!(
                "The intensity scale is unknown: {} is not a regular file (not read).",
                facts.display()
            ));
            None
        }
        Ok(_) => read_adapter_facts(&facts).unwrap_or_else(|e| {
            ctx.log_line(&format!("The intensity scale is unknown: {e}"));
            None
        }),
    };
    if let Some(scale) = &intensity_scale {
        ctx.log_line(&format!("PtychoPINN's {}.", scale.describe()));
    }
    Ok(Scored {
        metrics: serde_json::json!({"train": train, "test": test}),
        reconstruction: out,
        intensity_scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_that_name_a_python() {
        let py = |s: &str| shebang_python(s.as_bytes());
        assert_eq!(py("#!/v/bin/python3\nx"), Some("/v/bin/python3".into()));
        assert_eq!(py("#!/usr/bin/env python\n"), Some("python".into()));
        assert_eq!(
            py("#!/usr/bin/env -S python3.11 -u\n"),
            Some("python3.11".into())
        );
        assert_eq!(py("#!/bin/sh\nexec python x"), None);
        assert_eq!(py("print('no shebang')"), None);
    }

    #[test]
    fn lightning_csv_gives_the_last_training_loss_and_the_epochs() {
        let csv = "epoch,step,train_loss_step,train_loss_epoch,val_loss\n\
                   0,3,0.9,,\n0,7,,0.8,0.95\n1,11,0.5,,\n1,15,,0.45,0.6\n";
        let log = |final_loss, epochs, diverged_at| {
            Some(LightningLog {
                final_loss,
                epochs,
                diverged_at,
            })
        };
        assert_eq!(parse_lightning_csv(csv), log(Some(0.45), 2, None));
        let only_val = "epoch,step,val_loss\n0,1,0.3\n";
        assert_eq!(parse_lightning_csv(only_val), log(None, 1, None));
        assert_eq!(parse_lightning_csv("step,loss\n1,2\n"), None);
        // What the pinned PyTorch trainer wrote at gridsize 2 (dose 1e5): inf at its first
        // step, then nan; a nan validation loss alone is not the training's.
        let diverged = "epoch,learning_rate,poisson_train_loss_epoch,poisson_train_loss_step,\
                        poisson_val_loss,step\n0,,,inf,,0\n0,,,nan,,1\n0,,,,nan,1\n\
                        0,0.001,nan,,,1\n";
        assert_eq!(parse_lightning_csv(diverged), log(None, 1, Some(1)));
        let val_only_nan = "epoch,train_loss_epoch,val_loss\n0,0.5,nan\n";
        assert_eq!(parse_lightning_csv(val_only_nan), log(Some(0.5), 1, None));
    }

    #[test]
    fn only_64_128_256_train_with_ptychopinn() {
        for n in [64, 128, 256] {
            assert_eq!(patch_size_problem(n, BackendKind::Tensorflow), None);
        }
        let message = patch_size_problem(32, BackendKind::Tensorflow).unwrap();
        assert!(
            message.starts_with("patch_size_pixels=32: PtychoPINN's model"),
            "{message}"
        );
        assert!(message.contains("--preset pinn-small") && message.contains("--backend native"));
        assert!(patch_size_problem(96, BackendKind::Pytorch).is_some());
        assert_eq!(patch_size_problem(32, BackendKind::Native), None);
    }
}
