//! The resolved training configuration: everything a backend may use, written to
//! `<artifact_dir>/training_config.json` before the backend starts (this toolkit's form of the
//! original CONFIG-001 rule: no backend code runs before its configuration is fixed).
//!
//! Each backend's section of it is data defined here (the native solver's
//! [`SolverSettings`], PtychoPINN's in `config/pinn.rs`, pty-chi's and the supervised
//! baseline's in `config/peers.rs`); resolving a section when planning and using it are the
//! backend's.

mod peers;
mod pinn;

pub use peers::{PtychiSettings, SupervisedSettings};
pub use pinn::{PinnSettings, TrainerProgram, TrainerSource};

use job_matrix::TrainingJob;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use study_design::{
    Algorithm, MetricsConfig, PtychiAlgorithm, PtychiInit, RngSeeds, Solver, Study,
};

/// File name of the resolved configuration inside a job's artifact dir.
pub const CONFIG_FILE: &str = "training_config.json";
/// Version of the `training_config.json` format.
pub const CONFIG_FORMAT_VERSION: u32 = 1;

/// Which backend trains a job: the native solver, or an external method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// PtychoPINN's TensorFlow trainer, as a child process (the default).
    Tensorflow,
    /// PtychoPINN's PyTorch trainer, as a child process.
    Pytorch,
    /// The toolkit's own ePIE/rPIE/ml solver, in-process.
    Native,
    /// One of pty-chi 2.2's engines, through the pty-chi adapter (`ptychi:lsqml`), started
    /// from the truth when `truth_init` (`[ptychi] init = "truth"`, named
    /// `ptychi:lsqml+truth-init` wherever the method is named).
    Ptychi {
        /// The engine.
        algorithm: PtychiAlgorithm,
        /// The object starts at objectGuess (the ground truth) instead of ones.
        truth_init: bool,
    },
    /// PtychoPINN's supervised baseline (`ptycho.baselines`), through the supervised adapter
    /// (`tensorflow:supervised`).
    Supervised,
}

/// `ptychi:<algorithm>` and its truth-initialised name, per algorithm (in
/// [`PtychiAlgorithm::ALL`]'s order).
const PTYCHI_NAMES: [[&str; 2]; 5] = [
    ["ptychi:lsqml", "ptychi:lsqml+truth-init"],
    ["ptychi:epie", "ptychi:epie+truth-init"],
    ["ptychi:rpie", "ptychi:rpie+truth-init"],
    ["ptychi:pie", "ptychi:pie+truth-init"],
    ["ptychi:dm", "ptychi:dm+truth-init"],
];

impl BackendKind {
    /// The backends with a plain name, in the order `--help` lists them; pty-chi's are
    /// `ptychi:<algorithm>` ([`BackendKind::all`]).
    pub const ALL: [BackendKind; 3] = [
        BackendKind::Tensorflow,
        BackendKind::Pytorch,
        BackendKind::Native,
    ];

    /// Every backend, pty-chi's engines with either start.
    pub fn all() -> impl Iterator<Item = BackendKind> {
        let ptychi = PtychiAlgorithm::ALL.into_iter().flat_map(|algorithm| {
            [false, true].map(|truth_init| BackendKind::Ptychi {
                algorithm,
                truth_init,
            })
        });
        BackendKind::ALL
            .into_iter()
            .chain(ptychi)
            .chain([BackendKind::Supervised])
    }

    /// The name on the command line and in artifacts (`ptychi:lsqml`, and
    /// `ptychi:lsqml+truth-init` for the truth-initialised run).
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Tensorflow => "tensorflow",
            BackendKind::Pytorch => "pytorch",
            BackendKind::Native => "native",
            BackendKind::Ptychi {
                algorithm,
                truth_init,
            } => {
                let index = PtychiAlgorithm::ALL
                    .iter()
                    .position(|a| *a == algorithm)
                    .unwrap_or(0);
                PTYCHI_NAMES[index][usize::from(truth_init)]
            }
            BackendKind::Supervised => "tensorflow:supervised",
        }
    }

    /// Whether this backend runs PtychoPINN's trainer program.
    pub fn uses_trainer_program(self) -> bool {
        matches!(self, BackendKind::Tensorflow | BackendKind::Pytorch)
    }

    /// Whether this backend runs PtychoPINN's code (its trainer, or its supervised model in
    /// its interpreter: `$PTYCHO_PYTHON`, else the trainer program's `#!` Python).
    pub fn runs_ptychopinn(self) -> bool {
        self.uses_trainer_program() || self == BackendKind::Supervised
    }

    /// The environment variable that names the interpreter of this backend's adapter
    /// (`PTYCHO_PYTHON`, `PTYCHI_PYTHON`); `None` for the native solver.
    pub fn python_env_var(self) -> Option<&'static str> {
        match self {
            BackendKind::Native => None,
            BackendKind::Ptychi { .. } => Some(crate::ptychi::PYTHON_ENV_VAR),
            _ => Some(crate::ptychopinn::PYTHON_ENV_VAR),
        }
    }

    /// The backend as `study` settles it: pty-chi's start from its `[ptychi] init`.
    pub fn for_study(self, study: &Study) -> BackendKind {
        match self {
            BackendKind::Ptychi { algorithm, .. } => BackendKind::Ptychi {
                algorithm,
                truth_init: study.ptychi.init == PtychiInit::Truth,
            },
            other => other,
        }
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
        BackendKind::all().find(|b| b.as_str() == s).ok_or_else(|| {
            format!(
                "unknown backend '{s}': use tensorflow, pytorch, native, ptychi:<algorithm> \
                 ({}) or tensorflow:supervised",
                PtychiAlgorithm::ALL.map(PtychiAlgorithm::as_str).join(", ")
            )
        })
    }
}

// Artifacts hold the name (`"ptychi:lsqml"`), as they did when every backend was a plain word.
impl Serialize for BackendKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BackendKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
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
    /// Epochs to train: the study's `[solver] epochs` (native), `[pinn] epochs` (tensorflow,
    /// pytorch), `[ptychi] epochs` or `[supervised] epochs`, or `--epochs`.
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
    /// PtychoPINN's trainer program (tensorflow and pytorch backends; tensorflow:supervised,
    /// whose interpreter is its `#!` Python when `$PTYCHO_PYTHON` is not set).
    pub trainer: Option<TrainerProgram>,
    /// What the real PtychoPINN trainer needs beyond the above (tensorflow and pytorch
    /// backends, when not a dry run): the group count and the adapter's interpreter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinn: Option<PinnSettings>,
    /// What a `ptychi:<algorithm>` job runs with (pty-chi's settings and interpreter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ptychi: Option<PtychiSettings>,
    /// What a `tensorflow:supervised` job runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervised: Option<SupervisedSettings>,
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
            epochs: match backend {
                BackendKind::Tensorflow | BackendKind::Pytorch => {
                    epochs_flag.unwrap_or(study.pinn.epochs)
                }
                BackendKind::Native => solver.epochs,
                BackendKind::Ptychi { .. } => epochs_flag.unwrap_or(study.ptychi.epochs),
                BackendKind::Supervised => epochs_flag.unwrap_or(study.supervised.epochs),
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
            trainer: if backend.runs_ptychopinn() {
                trainer.cloned()
            } else {
                None
            },
            pinn: None,
            ptychi: None,
            supervised: None,
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
