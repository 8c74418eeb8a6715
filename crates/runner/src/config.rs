//! The resolved training configuration: everything a backend may use, written to
//! `<artifact_dir>/training_config.json` before the backend starts (this toolkit's form of the
//! original CONFIG-001 rule: no backend code runs before its configuration is fixed).
//!
//! Each backend's section of it is data defined here (the native solver's
//! [`SolverSettings`], PtychoPINN's in `config/pinn.rs`); resolving a section when planning
//! and using it are the backend's.

mod pinn;

pub use pinn::{PinnSettings, TrainerProgram, TrainerSource};

use job_matrix::TrainingJob;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use study_design::{Algorithm, MetricsConfig, RngSeeds, Solver, Study};

/// File name of the resolved configuration inside a job's artifact dir.
pub const CONFIG_FILE: &str = "training_config.json";
/// Version of the `training_config.json` format.
pub const CONFIG_FORMAT_VERSION: u32 = 1;

/// Which backend trains a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// PtychoPINN's TensorFlow trainer, as a child process (the default).
    Tensorflow,
    /// PtychoPINN's PyTorch trainer, as a child process.
    Pytorch,
    /// The toolkit's own ePIE/rPIE solver, in-process.
    Native,
}

impl BackendKind {
    /// Every backend, in the order `--help` lists them.
    pub const ALL: [BackendKind; 3] = [
        BackendKind::Tensorflow,
        BackendKind::Pytorch,
        BackendKind::Native,
    ];

    /// The name on the command line and in artifacts.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Tensorflow => "tensorflow",
            BackendKind::Pytorch => "pytorch",
            BackendKind::Native => "native",
        }
    }

    /// Whether this backend runs PtychoPINN's trainer program.
    pub fn uses_trainer_program(self) -> bool {
        matches!(self, BackendKind::Tensorflow | BackendKind::Pytorch)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        BackendKind::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("unknown backend '{s}': use tensorflow, pytorch or native"))
    }
}

/// Settings of the native solver (the study's `[solver]` table with command-line overrides).
/// The number of epochs is [`TrainingConfig::epochs`] (`[solver] epochs` for the native
/// backend, `[pinn] epochs` for PtychoPINN's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverSettings {
    /// ePIE or rPIE.
    pub algorithm: Algorithm,
    /// Object step (ePIE) or regularisation weight (rPIE).
    pub alpha: f64,
    /// Probe step, when the probe is refined.
    pub beta: f64,
    /// Refine the probe as well as the object.
    pub refine_probe: bool,
    /// Seed of the visiting order and grouping (the solver's seed, else `rng_seeds.grouping`).
    pub seed: u64,
    /// ml: weight of the smoothness prior (0 = none).
    #[serde(default)]
    pub smoothness: f64,
    /// ml: relative object change that stops the run (0 = every epoch).
    #[serde(default)]
    pub tolerance: f64,
}

/// Command-line overrides of the study's settings; `None` keeps the study's value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigOverrides {
    /// `--epochs`.
    pub epochs: Option<u32>,
    /// `--algorithm`.
    pub algorithm: Option<Algorithm>,
    /// `--alpha`.
    pub alpha: Option<f64>,
    /// `--beta`.
    pub beta: Option<f64>,
    /// `--refine-probe`.
    pub refine_probe: Option<bool>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--smoothness`.
    pub smoothness: Option<f64>,
    /// `--tolerance`.
    pub tolerance: Option<f64>,
}

impl ConfigOverrides {
    /// The study's solver table with these overrides applied, and every problem with it.
    pub fn apply(&self, solver: &Solver) -> (Solver, Vec<String>) {
        let mut s = solver.clone();
        if let Some(epochs) = self.epochs {
            s.epochs = epochs;
        }
        if let Some(algorithm) = self.algorithm {
            s.algorithm = algorithm;
        }
        if let Some(alpha) = self.alpha {
            s.alpha = alpha;
        }
        if let Some(beta) = self.beta {
            s.beta = beta;
        }
        if let Some(refine) = self.refine_probe {
            s.refine_probe = refine;
        }
        if let Some(seed) = self.seed {
            s.seed = Some(seed);
        }
        if let Some(smoothness) = self.smoothness {
            s.smoothness = smoothness;
        }
        if let Some(tolerance) = self.tolerance {
            s.tolerance = tolerance;
        }
        let problems = s.validate();
        (s, problems)
    }
}

/// Everything a backend may use to train one job. Backends get this and nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// [`CONFIG_FORMAT_VERSION`].
    pub format_version: u32,
    /// The backend that trains the job.
    pub backend: BackendKind,
    /// Photon dose of the job.
    pub dose: f64,
    /// `baseline`, `dense`, `sparse`, ...
    pub view: String,
    /// Gridsize g (groups of g² positions).
    pub gridsize: u32,
    /// Training NPZ.
    pub train_data_file: PathBuf,
    /// Test NPZ.
    pub test_data_file: PathBuf,
    /// The job's artifact dir: the bundle goes here.
    pub output_dir: PathBuf,
    /// The job's log.
    pub log_path: PathBuf,
    /// nphotons = the dose.
    pub nphotons: f64,
    /// Epochs to train: the study's `[solver] epochs` (native) or `[pinn] epochs` (tensorflow,
    /// pytorch), or `--epochs`.
    pub epochs: u32,
    /// K, the nearest neighbours a position is grouped from.
    pub neighbor_count: u32,
    /// N, the patch size in pixels.
    pub patch_size_pixels: u32,
    /// The design's seeds.
    pub rng_seeds: RngSeeds,
    /// The design's `metrics_config` (the native backend's SSIM window sigma; trainers get it
    /// too). Configs written before it existed read as the default.
    #[serde(default)]
    pub metrics_config: MetricsConfig,
    /// Native solver settings.
    pub solver: SolverSettings,
    /// PtychoPINN's trainer program (tensorflow and pytorch backends only).
    pub trainer: Option<TrainerProgram>,
    /// What the real PtychoPINN trainer needs beyond the above (tensorflow and pytorch
    /// backends, when not a dry run): the group count and the adapter's interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinn: Option<PinnSettings>,
}

impl TrainingConfig {
    /// Resolves the configuration of `job` from the study, the backend, the (already
    /// validated) solver settings and `--epochs`. A network trains for the study's
    /// `[pinn] epochs`, the native solver for `solver.epochs`; `--epochs` sets both.
    pub fn resolve(
        job: &TrainingJob,
        study: &Study,
        backend: BackendKind,
        solver: &Solver,
        epochs_flag: Option<u32>,
        trainer: Option<&TrainerProgram>,
    ) -> TrainingConfig {
        let design = &study.design;
        TrainingConfig {
            format_version: CONFIG_FORMAT_VERSION,
            backend,
            dose: job.dose,
            view: job.view.clone(),
            gridsize: job.gridsize,
            train_data_file: job.train_data_path.clone(),
            test_data_file: job.test_data_path.clone(),
            output_dir: job.artifact_dir.clone(),
            log_path: job.log_path.clone(),
            nphotons: job.dose,
            epochs: if backend.uses_trainer_program() {
                epochs_flag.unwrap_or(study.pinn.epochs)
            } else {
                solver.epochs
            },
            neighbor_count: design.neighbor_count,
            patch_size_pixels: design.patch_size_pixels,
            rng_seeds: design.rng_seeds.clone(),
            metrics_config: design.metrics_config.clone(),
            solver: SolverSettings {
                algorithm: solver.algorithm,
                alpha: solver.alpha,
                beta: solver.beta,
                refine_probe: solver.refine_probe,
                seed: solver.seed.unwrap_or(design.rng_seeds.grouping),
                smoothness: solver.smoothness,
                tolerance: solver.tolerance,
            },
            trainer: if backend.uses_trainer_program() {
                trainer.cloned()
            } else {
                None
            },
            pinn: None,
        }
    }

    /// `<output_dir>/training_config.json`.
    pub fn path(&self) -> PathBuf {
        self.output_dir.join(CONFIG_FILE)
    }

    /// Pretty JSON with a final newline (the bytes written to disk); fails only on a path
    /// that is not UTF-8.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        crate::artifact::artifact_json(self)
    }

    /// Parses a `training_config.json`.
    pub fn from_json(text: &str) -> Result<TrainingConfig, serde_json::Error> {
        serde_json::from_str(text)
    }
}
