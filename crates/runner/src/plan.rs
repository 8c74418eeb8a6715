//! The resolved plan: the selected jobs with their training configurations, the skip events and
//! the roots, fixed before anything runs. A local run and a cluster run execute the same plan
//! (`<artifact_root>/plan.json`) job by job, so a job's artifacts do not depend on where it ran.

use crate::config::{BackendKind, ConfigOverrides, TrainerProgram, TrainingConfig};
use crate::digest::sha256_bytes;
use job_matrix::{JobFilter, MatrixError, Roots, SkipEvent, TrainingJob};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use study_design::Study;

/// File name of the plan under the artifact root.
pub const PLAN_FILE: &str = "plan.json";
/// Cap on `plan.json` (read whole): 100,000 jobs, the most a design allows, need far less.
pub const PLAN_CAP: u64 = 1 << 30;
/// Version of the `plan.json` format.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// A selected job and its resolved configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedJob {
    /// Position in the plan (0-based; the SLURM array index).
    pub index: usize,
    /// The job as enumerated.
    pub job: TrainingJob,
    /// What its backend receives.
    pub config: TrainingConfig,
}

/// Everything needed to run the selected jobs and to write the manifest afterwards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// [`PLAN_FORMAT_VERSION`].
    pub format_version: u32,
    /// The manifest's timestamp (from `SOURCE_DATE_EPOCH` when set), fixed when planning so
    /// that every assembly of the manifest from this plan gives the same bytes.
    pub timestamp: String,
    /// Phase C root as given on the command line.
    pub phase_c_root: String,
    /// Phase D root as given.
    pub phase_d_root: String,
    /// Artifact root as given.
    pub artifact_root: String,
    /// The backend of every job.
    pub backend: BackendKind,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--strict`.
    pub strict: bool,
    /// The filters given.
    pub filters: JobFilter,
    /// Jobs in the whole matrix, before filters.
    pub enumerated_count: usize,
    /// The selected jobs, in matrix order.
    pub jobs: Vec<PlannedJob>,
    /// Skip events of the whole matrix (independent of filters).
    pub skipped_views: Vec<SkipEvent>,
}

/// What to plan.
#[derive(Clone, Debug)]
pub struct PlanRequest<'a> {
    /// The study (design and solver settings).
    pub study: &'a Study,
    /// `--phase-c-root`.
    pub phase_c_root: &'a Path,
    /// `--phase-d-root`.
    pub phase_d_root: &'a Path,
    /// `--artifact-root`.
    pub artifact_root: &'a Path,
    /// `--dose`, `--view`, `--gridsize`.
    pub filters: JobFilter,
    /// `--backend` (pty-chi's start is settled by the study: [`BackendKind::for_study`]).
    pub backend: BackendKind,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--strict`.
    pub strict: bool,
    /// `--epochs` and the solver flags.
    pub overrides: ConfigOverrides,
    /// The trainer program (PtychoPINN backends).
    pub trainer: Option<TrainerProgram>,
    /// The manifest timestamp ([`manifest_timestamp`]).
    pub timestamp: String,
    /// `--n-groups` and `--accelerator` (PtychoPINN backends; what is not given comes from the
    /// study's `[pinn]` table, else [`crate::ptychopinn::N_GROUPS_AUTO_RULE`] and `auto`);
    /// `--accelerator` also places pty-chi (else its `[ptychi] accelerator`, `cpu`).
    pub pinn: crate::ptychopinn::PinnOverrides,
    /// The external method's interpreter: `$PTYCHO_PYTHON` (PtychoPINN backends: the inference
    /// adapter's) or `$PTYCHI_PYTHON` (pty-chi's adapter): [`BackendKind::python_env_var`].
    pub python: Option<PathBuf>,
}

/// Why a plan could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A path that JSON artifacts cannot hold.
    #[error("{what} {} is not valid UTF-8: use a path made of valid characters", path.display())]
    NonUtf8Path {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// Enumeration or filtering failed.
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// The solver settings (study plus flags) are invalid.
    #[error("invalid training settings:\n  {}", problems.join("\n  "))]
    Settings {
        /// Every problem.
        problems: Vec<String>,
    },
    /// The plan file could not be read.
    // The cause is part of the message, not a `source`: an error chain printed in full
    // (`{:#}`) would otherwise say it twice.
    #[error("reading {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The plan file could not be written (the message names it).
    #[error(transparent)]
    Write(std::io::Error),
    /// The plan file is not a plan this version understands.
    #[error("{} is not a usable plan: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A plan read from elsewhere than where its own paths say it is.
    #[error(
        "{} says its artifact root is `{artifact_root}`, which from this folder is not where the \
         plan is: the plan's paths are relative to the folder `dose-overlap train` ran in; run \
         this command from there"
    , plan_file.display())]
    Location {
        /// The plan file given.
        plan_file: PathBuf,
        /// The artifact root it names.
        artifact_root: String,
    },
    /// An index outside the plan.
    #[error("job index {index} is outside the plan {}, which has {count} job(s) (0 to {})", path.display(), count.saturating_sub(1))]
    Index {
        /// The index asked for.
        index: usize,
        /// Jobs in the plan.
        count: usize,
        /// The plan file.
        path: PathBuf,
    },
}

fn utf8(what: &'static str, path: &Path) -> Result<String, PlanError> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| PlanError::NonUtf8Path {
            what,
            path: path.to_path_buf(),
        })
}

/// The manifest timestamp: `SOURCE_DATE_EPOCH` (whole seconds since 1970, UTC) when given,
/// else now; ISO 8601 with microseconds and `Z` (`2025-11-04T08:34:26.114439Z`).
pub fn manifest_timestamp(source_date_epoch: Option<&str>) -> Result<String, String> {
    let time = match source_date_epoch {
        Some(text) => {
            let secs: i64 = text.trim().parse().map_err(|_| {
                format!(
                    "SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, got '{text}'"
                )
            })?;
            chrono::DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| format!("SOURCE_DATE_EPOCH={secs} is out of range"))?
        }
        None => chrono::Utc::now(),
    };
    Ok(time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

impl Plan {
    /// Enumerates the matrix, applies the filters and resolves every selected job's
    /// configuration. Nothing is written.
    pub fn resolve(request: &PlanRequest<'_>) -> Result<Plan, PlanError> {
        let phase_c_root = utf8("--phase-c-root", request.phase_c_root)?;
        let phase_d_root = utf8("--phase-d-root", request.phase_d_root)?;
        let artifact_root = utf8("--artifact-root", request.artifact_root)?;
        if let Some(trainer) = &request.trainer {
            utf8("the trainer program", &trainer.program)?;
        }
        // The method as the study settles it (pty-chi's start: `[ptychi] init`).
        let backend = request.backend.for_study(request.study);
        let (solver, problems) = request.overrides.apply(&request.study.solver);
        if !problems.is_empty() {
            return Err(PlanError::Settings { problems });
        }
        let roots = Roots {
            phase_c: PathBuf::from(&phase_c_root),
            phase_d: PathBuf::from(&phase_d_root),
            artifacts: PathBuf::from(&artifact_root),
        };
        // What PtychoPINN cannot train is refused before any job starts. A dry run executes
        // nothing, so it is not refused; its plan still carries the PtychoPINN settings a real
        // run would (where they resolve), so that its resume decisions are the real run's
        // (issue 26, finding 5: without them every verified job read "config changed").
        let pinn = backend.uses_trainer_program();
        if pinn
            && !request.dry_run
            && let Some(problem) = crate::ptychopinn::patch_size_problem(
                request.study.design.patch_size_pixels,
                backend,
            )
        {
            return Err(PlanError::Settings {
                problems: vec![problem],
            });
        }
        // pty-chi needs its interpreter; a dry run runs nothing.
        if let Some(problem) =
            crate::ptychi::plan_problem(backend, request.dry_run, request.python.as_ref())
        {
            return Err(PlanError::Settings {
                problems: vec![problem],
            });
        }
        // The supervised baseline's interpreter: $PTYCHO_PYTHON, else the trainer's `#!` Python.
        let supervised_python =
            crate::supervised::interpreter(request.python.clone(), request.trainer.as_ref());
        if let Some(problem) = crate::supervised::plan_problem(
            backend,
            request.study.design.patch_size_pixels,
            request.dry_run,
            supervised_python.as_ref(),
        ) {
            return Err(PlanError::Settings {
                problems: vec![problem],
            });
        }
        let matrix = job_matrix::enumerate(&request.study.design, &roots, request.strict)?;
        let selected = matrix.select(&request.filters)?;
        let mut problems = Vec::new();
        let jobs = selected
            .into_iter()
            .enumerate()
            .map(|(index, job)| {
                let mut config = TrainingConfig::resolve(
                    &job,
                    request.study,
                    backend,
                    &solver,
                    request.overrides.epochs,
                    request.trainer.as_ref(),
                );
                if pinn {
                    match crate::ptychopinn::resolve_settings(
                        &config,
                        &request.study.pinn,
                        &request.pinn,
                        request.python.clone(),
                    ) {
                        Ok(settings) => config.pinn = settings,
                        Err(found) if !request.dry_run => problems.extend(found),
                        // The real run refuses it; the dry run shows the rest.
                        Err(_) => {}
                    }
                }
                config.ptychi = crate::ptychi::resolve_settings(
                    &config,
                    &request.study.ptychi,
                    request.pinn.accelerator,
                    request.python.clone(),
                );
                config.supervised = crate::supervised::resolve_settings(
                    &config,
                    request.study,
                    request.pinn.accelerator,
                    supervised_python.clone(),
                );
                PlannedJob { index, job, config }
            })
            .collect();
        if !problems.is_empty() {
            return Err(PlanError::Settings { problems });
        }
        Ok(Plan {
            format_version: PLAN_FORMAT_VERSION,
            timestamp: request.timestamp.clone(),
            phase_c_root,
            phase_d_root,
            artifact_root,
            backend,
            dry_run: request.dry_run,
            strict: request.strict,
            filters: request.filters.clone(),
            enumerated_count: matrix.jobs.len(),
            jobs,
            skipped_views: matrix.skipped,
        })
    }

    /// `<artifact_root>/plan.json`.
    pub fn path(&self) -> PathBuf {
        Path::new(&self.artifact_root).join(PLAN_FILE)
    }

    /// Pretty JSON with a final newline: the bytes of `plan.json`.
    pub fn to_json(&self) -> Result<String, PlanError> {
        crate::artifact::artifact_json(self).map_err(|e| PlanError::Parse {
            path: self.path(),
            message: format!("cannot be serialised: {e}"),
        })
    }

    /// The plan's identity: SHA-256 of its bytes. Results carry it, so that a result left
    /// by another plan is never taken for this plan's.
    pub fn id_of(bytes: &[u8]) -> String {
        sha256_bytes(bytes)
    }

    /// Writes `plan.json` atomically under the artifact root (which must exist); returns the
    /// plan's id.
    pub fn write(&self) -> Result<String, PlanError> {
        let text = self.to_json()?;
        let path = self.path();
        npz_contract::atomic::write_atomic(&path, text.as_bytes()).map_err(PlanError::Write)?;
        Ok(Plan::id_of(text.as_bytes()))
    }

    /// A rerun that trains nothing keeps the timestamp of the run whose results it adopts,
    /// when the plan on disk is this one but for that timestamp: the plan id, every
    /// `result.json`, the manifest and what is drawn from it then stay byte-identical (a
    /// manifest's timestamp is when its results were planned, not when they were last
    /// checked). Returns whether the earlier timestamp is kept.
    pub fn keep_earlier_timestamp(&mut self) -> bool {
        let Ok((earlier, earlier_id)) = Plan::read(&self.path()) else {
            return false;
        };
        let mut same = self.clone();
        same.timestamp = earlier.timestamp;
        match same.to_json() {
            Ok(text) if Plan::id_of(text.as_bytes()) == earlier_id => {
                *self = same;
                true
            }
            _ => false,
        }
    }

    /// Reads a `plan.json`; returns the plan and its id.
    pub fn read(path: &Path) -> Result<(Plan, String), PlanError> {
        // A regular file (never a FIFO, a device or a link), of bounded size.
        let bytes = npz_contract::confine::read_capped(path, PLAN_CAP).map_err(|cause| {
            PlanError::Read {
                path: path.to_path_buf(),
                // The message names the path once (`confine` names it too).
                cause: match cause
                    .to_string()
                    .strip_prefix(&format!("{}: ", path.display()))
                {
                    Some(rest) => std::io::Error::new(cause.kind(), rest.to_string()),
                    None => cause,
                },
            }
        })?;
        let parse = |message: String| PlanError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| parse(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| parse(format!("not JSON: {e}")))?;
        let version = value.get("format_version").and_then(|v| v.as_u64());
        if version != Some(u64::from(PLAN_FORMAT_VERSION)) {
            return Err(parse(format!(
                "format_version {} is not {PLAN_FORMAT_VERSION}: it was written by another \
                 version of dose-overlap; plan again with `dose-overlap train`",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        let plan: Plan = serde_json::from_str(text).map_err(|e| parse(e.to_string()))?;
        if let Some((i, job)) = plan.jobs.iter().enumerate().find(|(i, j)| j.index != *i) {
            return Err(parse(format!(
                "job {i} carries index {}: the jobs must be numbered in order",
                job.index
            )));
        }
        for planned in &plan.jobs {
            plan.check_job_paths(planned).map_err(|why| {
                parse(format!(
                    "job {} ({}): {why}",
                    planned.index,
                    planned.job.label()
                ))
            })?;
        }
        Ok((plan, Plan::id_of(&bytes)))
    }

    /// Whether a job read from `plan.json` writes and reads only where `train` would have put
    /// it: its identity is one `design` allows, its artifact dir is
    /// `<artifact_root>/dose_<int>/<view>/gs<g>` with its log and config in it, and its data
    /// are under the Phase C or D root. A plan is input: `run-job` and `collect` trust only
    /// what passes.
    fn check_job_paths(&self, planned: &PlannedJob) -> Result<(), String> {
        let job = &planned.job;
        let config = &planned.config;
        if let Some(why) = job_matrix::job_identity_problem(job.dose, &job.view, job.gridsize) {
            return Err(why);
        }
        let dir = job_matrix::job_dir(
            Path::new(&self.artifact_root),
            job.dose,
            &job.view,
            job.gridsize,
        );
        let log = dir.join(job_matrix::LOG_FILE);
        if job.artifact_dir != dir || config.output_dir != dir {
            return Err(format!(
                "its artifact dir {} is not {}, where this plan's artifact root puts it",
                job.artifact_dir.display(),
                dir.display()
            ));
        }
        if job.log_path != log || config.log_path != log {
            return Err(format!(
                "its log {} is not {}",
                job.log_path.display(),
                log.display()
            ));
        }
        if config.dose.to_bits() != job.dose.to_bits()
            || config.view != job.view
            || config.gridsize != job.gridsize
            || config.train_data_file != job.train_data_path
            || config.test_data_file != job.test_data_path
        {
            return Err("its training config is not this job's".to_string());
        }
        for data in [&job.train_data_path, &job.test_data_path] {
            let inside = [&self.phase_c_root, &self.phase_d_root].iter().any(|root| {
                data.strip_prefix(root.as_str())
                    .is_ok_and(|rel| npz_contract::confine::plain_relative(rel).is_ok())
            });
            if !inside {
                return Err(format!(
                    "its data {} is not under the Phase C or D root",
                    data.display()
                ));
            }
        }
        Ok(())
    }

    /// Checks that `plan_file` is this plan's own `plan.json` seen from the current folder
    /// (relative roots in a plan are relative to the folder `train` ran in).
    pub fn check_location(&self, plan_file: &Path) -> Result<(), PlanError> {
        match (self.path().canonicalize(), plan_file.canonicalize()) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            _ => Err(PlanError::Location {
                plan_file: plan_file.to_path_buf(),
                artifact_root: self.artifact_root.clone(),
            }),
        }
    }

    /// `dose-overlap run-job --plan <plan.json> --index <index>`, ready to copy into a shell:
    /// what messages tell a person to run for one job.
    pub fn run_job_command(&self, index: usize) -> String {
        format!(
            "dose-overlap run-job --plan {} --index {index}",
            crate::shell::shell_path(&self.path())
        )
    }

    /// The job at `index`, or an error naming the plan's size.
    pub fn job(&self, index: usize, path: &Path) -> Result<&PlannedJob, PlanError> {
        self.jobs.get(index).ok_or_else(|| PlanError::Index {
            index,
            count: self.jobs.len(),
            path: path.to_path_buf(),
        })
    }
}
