//! `dose-overlap train`: Phase E — enumerate the job matrix, run the selected jobs, write the
//! training manifest and the skip summary.
//!
//! The flow is plan -> run each job -> assemble: the resolved plan is written to
//! `<artifact_root>/plan.json`, each job writes its own `result.json`, and the manifest is
//! assembled from the plan and the results (the same code `collect` uses after a cluster run).

use crate::exit;
use crate::methods::{AlgorithmArg, BackendArg, parse_accelerator};
use crate::progress::Progress;
use crate::run::{CommandLog, execute_local, finish_run};
use crate::slurm_resources::{ResourceArg, ResourceFlags, parse_resource};
use crate::study_args::StudyArgs;
use anyhow::Context;
use job_matrix::{JobFilter, format_dose};
use runner::ptychopinn::PinnOverrides;
use runner::resume::Decision;
use runner::slurm::{Resources, SlurmSettings};
use runner::{BackendKind, ConfigOverrides, Plan, PlanRequest, TrainerProgram};
use std::path::{Path, PathBuf};
use study_design::Study;

pub mod slurm;

/// The command's own log (its stdout and stderr), under the artifact root.
pub const COMMAND_LOG: &str = "training_cli.log";

/// Where the jobs run, on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorArg {
    /// Here, on `-j N` threads.
    Local,
    /// As a SLURM job array: one task per job, each running `dose-overlap run-job`.
    Slurm,
}

/// Arguments of `dose-overlap train`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Phase C root: `dose_<int>/patched_{train,test}.npz`.
    #[arg(long, value_name = "DIR")]
    pub phase_c_root: PathBuf,
    /// Phase D root: `dose_<int>/<view>/<view>_{train,test}.npz` and `overlap_report.json`.
    #[arg(long, value_name = "DIR")]
    pub phase_d_root: PathBuf,
    /// Where jobs write their artifacts, and where the manifest and skip summary go.
    #[arg(long, value_name = "DIR")]
    pub artifact_root: PathBuf,
    /// Only this dose (`1000`, `1e3` and `1000.0` are the same dose).
    #[arg(long, value_name = "DOSE", value_parser = parse_dose, allow_negative_numbers = true)]
    pub dose: Option<f64>,
    /// Only this view (`baseline`, `dense`, `sparse`, ...).
    #[arg(long, value_name = "VIEW")]
    pub view: Option<String>,
    /// Only this gridsize.
    #[arg(long, value_name = "G")]
    pub gridsize: Option<u32>,
    /// Training backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Tensorflow)]
    pub backend: BackendArg,
    /// PtychoPINN's trainer program (default: $PTYCHO_TRAIN, else `ptycho_train` on PATH).
    #[arg(long, value_name = "PATH")]
    pub trainer: Option<PathBuf>,
    /// Epochs per job, for every method (default: the study's `[solver] epochs` for native, its
    /// `[pinn] epochs` for tensorflow and pytorch).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,
    /// PtychoPINN's `--n_groups`: groups per split, at most the smaller split's positions
    /// (default: that many, one group seeded at every position).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub n_groups: Option<u32>,
    /// Where PtychoPINN trains and pty-chi runs: `auto` (a GPU when its framework sees one,
    /// else the CPU), `cpu` (GPUs hidden) or `gpu` (the job fails at once without one)
    /// (default: the study's `[pinn] accelerator`, else auto; pty-chi: `[ptychi] accelerator`,
    /// else cpu).
    #[arg(long, value_name = "WHERE", value_parser = parse_accelerator)]
    pub accelerator: Option<study_design::Accelerator>,
    /// Native solver algorithm (default: the study's).
    #[arg(long, value_enum)]
    pub algorithm: Option<AlgorithmArg>,
    /// Native solver alpha, in (0, 1]: ePIE object step; rPIE regularisation weight (smaller =
    /// bigger steps where the probe is weak); ml initial step (default: the study's).
    #[arg(long, value_name = "A")]
    pub alpha: Option<f64>,
    /// Native solver beta, in (0, 1], with --refine-probe: ePIE probe step; rPIE probe
    /// regularisation weight (smaller = bigger probe steps) (default: the study's).
    #[arg(long, value_name = "B")]
    pub beta: Option<f64>,
    /// ml: weight of the smoothness prior, >= 0 (default: the study's).
    #[arg(long, value_name = "W")]
    pub smoothness: Option<f64>,
    /// ml: stop a split once its object changed by less than this (relative L2) over the last
    /// 25 epochs, `--epochs` then being the most it may run; 0 = run every epoch (default: the
    /// study's, 0.006 unless it says).
    #[arg(long, value_name = "T")]
    pub tolerance: Option<f64>,
    /// Refine the probe too (`--refine-probe` or `--refine-probe false`; default: the study's).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub refine_probe: Option<bool>,
    /// Native solver seed (default: the study's, else rng_seeds.grouping).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Enumerate and write configs, logs and the manifest, but train nothing. With
    /// `--executor slurm`: write and print the batch script and the plan, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A missing Phase D view is an error instead of a recorded skip.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub study: StudyArgs,
    /// Jobs run at once (local executor).
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,
    /// Where the jobs run.
    #[arg(long, value_enum, default_value_t = ExecutorArg::Local)]
    pub executor: ExecutorArg,
    /// Rerun every job, also those verified complete (by default a job is skipped when its
    /// result says success and its config, inputs and bundle are unchanged).
    #[arg(long)]
    pub force: bool,
    /// Stop and fail a job that runs longer than this (`90s`, `30m`, `2h`, `1h30m`); a
    /// trainer's whole process group is stopped.
    #[arg(long, value_name = "DURATION", value_parser = runner::parse_duration)]
    pub job_timeout: Option<std::time::Duration>,
    /// Trainer output kept in each train.log (`64M`, `1G`, bytes); the rest is cut with a note.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64M")]
    pub log_limit: u64,
    #[command(flatten)]
    pub slurm: Box<SlurmArgs>,
}

/// Options of `--executor slurm` (boxed: they are many and rarely given).
#[derive(clap::Args, Clone, Debug)]
pub struct SlurmArgs {
    /// SLURM partition (`sbatch --partition`). With `study`, `METHOD=NAME` sets one method's
    /// training array (repeatable).
    #[arg(long, value_name = "[METHOD=]NAME", value_parser = parse_resource,
          help_heading = "SLURM executor")]
    pub partition: Vec<ResourceArg>,
    /// Time limit per task (`sbatch --time`, e.g. `2:00:00`); `METHOD=TIME` as --partition.
    #[arg(long, value_name = "[METHOD=]TIME", value_parser = parse_resource,
          help_heading = "SLURM executor")]
    pub time_limit: Vec<ResourceArg>,
    /// Memory per task (`sbatch --mem`, e.g. `16G`); `METHOD=SIZE` as --partition.
    #[arg(long, value_name = "[METHOD=]SIZE", value_parser = parse_resource,
          help_heading = "SLURM executor")]
    pub mem: Vec<ResourceArg>,
    /// Generic resources per training task (`sbatch --gres`, e.g. `gpu:1`); `METHOD=GRES` as
    /// --partition.
    #[arg(long, value_name = "[METHOD=]GRES", value_parser = parse_resource,
          help_heading = "SLURM executor")]
    pub gres: Vec<ResourceArg>,
    /// CPUs per task (`sbatch --cpus-per-task`); `METHOD=N` as --partition.
    #[arg(long, value_name = "[METHOD=]N", value_parser = parse_resource,
          help_heading = "SLURM executor")]
    pub cpus_per_task: Vec<ResourceArg>,
    /// At most this many tasks run at once (`--array=...%N`; 0 = no limit).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        help_heading = "SLURM executor"
    )]
    pub array_limit: u32,
    /// An extra `sbatch` argument, passed as it is (repeatable: `--sbatch-arg=--gres=gpu:1`).
    #[arg(
        long = "sbatch-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "SLURM executor"
    )]
    pub sbatch_args: Vec<String>,
    /// Largest array to submit (default: the cluster's MaxArraySize); larger plans are split.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "SLURM executor")]
    pub max_array_size: Option<u64>,
    /// Wait for the array to finish (polling squeue), then collect.
    #[arg(long, help_heading = "SLURM executor")]
    pub wait: bool,
    /// Seconds between squeue polls with --wait.
    #[arg(long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..), help_heading = "SLURM executor")]
    pub poll_interval: u64,
}

/// `64M`, `512K`, `1G` or bytes: a `--log-limit`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!("'{text}' is not a size: give e.g. 64M, 512K, 1G or a number of bytes")
        })
}

/// A dose on the command line: any positive number format.
fn parse_dose(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(dose) if dose.is_finite() && dose > 0.0 => Ok(dose),
        _ => Err(format!(
            "'{text}' is not a dose: give a positive number such as 1000 or 1e3"
        )),
    }
}

/// `train`'s settings, resolved from [`Args`] once (or built by `study`).
#[derive(Debug, PartialEq)]
pub struct Options {
    /// The study.
    pub study: Study,
    /// The Phase C root to read.
    pub phase_c_root: PathBuf,
    /// The Phase D root to read.
    pub phase_d_root: PathBuf,
    /// Where the jobs, the manifest and the skip summary go.
    pub artifact_root: PathBuf,
    /// `--dose`, `--view`, `--gridsize`.
    pub filters: JobFilter,
    /// `--backend`.
    pub backend: BackendKind,
    /// `--trainer` (`None`: `$PTYCHO_TRAIN`, else `ptycho_train` on PATH).
    pub trainer: Option<PathBuf>,
    /// The native solver's and the epochs' overrides of the study.
    pub overrides: ConfigOverrides,
    /// PtychoPINN's overrides (`--n-groups`, `--accelerator`).
    pub pinn: PinnOverrides,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--strict`.
    pub strict: bool,
    /// `--force`: run every job, also those verified complete.
    pub force: bool,
    /// Where the jobs run, with that executor's settings.
    pub executor: Executor,
}

/// Where the jobs run, resolved.
#[derive(Debug, PartialEq)]
pub enum Executor {
    /// Here, `jobs` at once.
    Local {
        /// `-j`.
        jobs: usize,
        /// `--job-timeout`, `--log-limit`.
        limits: runner::JobLimits,
    },
    /// As SLURM job array(s).
    Slurm(slurm::Options),
}

impl Args {
    /// Checks the flags and loads the study; notes on flags go to `note` (`run` resolves
    /// once the command log exists, so that a refusal is logged too).
    pub fn resolve(self, note: &dyn Fn(&str)) -> anyhow::Result<Options> {
        let slurm = *self.slurm;
        if self.executor == ExecutorArg::Local
            && let Some(flag) = slurm.first_given()
        {
            anyhow::bail!("{flag} is an option of --executor slurm");
        }
        let study = self.study.load()?;
        let backend = BackendKind::from(self.backend).for_study(&study);
        if let Some(line) = unused_trainer_note(backend, self.trainer.is_some()) {
            note(&line);
        }
        let executor = match self.executor {
            ExecutorArg::Local => Executor::Local {
                jobs: self.jobs as usize,
                limits: runner::JobLimits {
                    timeout: self.job_timeout,
                    log_limit: self.log_limit,
                },
            },
            ExecutorArg::Slurm => {
                Executor::Slurm(slurm.options(slurm.resources().for_train()?, "dose-overlap-train"))
            }
        };
        Ok(Options {
            study,
            phase_c_root: self.phase_c_root,
            phase_d_root: self.phase_d_root,
            artifact_root: self.artifact_root,
            filters: JobFilter {
                dose: self.dose,
                view: self.view,
                gridsize: self.gridsize,
            },
            backend,
            trainer: self.trainer,
            overrides: ConfigOverrides {
                epochs: self.epochs,
                algorithm: self.algorithm.map(study_design::Algorithm::from),
                alpha: self.alpha,
                beta: self.beta,
                refine_probe: self.refine_probe,
                seed: self.seed,
                smoothness: self.smoothness,
                tolerance: self.tolerance,
            },
            pinn: PinnOverrides {
                n_groups: self.n_groups,
                accelerator: self.accelerator,
            },
            dry_run: self.dry_run,
            strict: self.strict,
            force: self.force,
            executor,
        })
    }
}

impl SlurmArgs {
    /// The resource flags.
    pub fn resources(&self) -> ResourceFlags<'_> {
        ResourceFlags {
            partition: &self.partition,
            time_limit: &self.time_limit,
            mem: &self.mem,
            gres: &self.gres,
            cpus_per_task: &self.cpus_per_task,
        }
    }

    /// The first SLURM-only flag given, for "is an option of --executor slurm".
    pub fn first_given(&self) -> Option<&'static str> {
        let slurm_only = [
            (!self.sbatch_args.is_empty(), "--sbatch-arg"),
            (self.max_array_size.is_some(), "--max-array-size"),
            (self.wait, "--wait"),
        ];
        self.resources().first_flag().or_else(|| {
            slurm_only
                .iter()
                .find(|(given, _)| *given)
                .map(|(_, flag)| *flag)
        })
    }

    /// `--executor slurm`'s options with these resources (`train`'s, or one method's in a
    /// study) and job name.
    pub fn options(&self, resources: Resources, job_name: &str) -> slurm::Options {
        slurm::Options {
            settings: SlurmSettings {
                resources,
                array_limit: self.array_limit,
                extra_args: self.sbatch_args.clone(),
                job_name: job_name.to_string(),
            },
            max_array_size: self
                .max_array_size
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            wait: self.wait.then_some(self.poll_interval),
        }
    }
}

/// `--trainer` with a backend that runs no PtychoPINN trainer: said, not refused.
fn unused_trainer_note(backend: BackendKind, trainer: bool) -> Option<String> {
    (trainer && !backend.runs_ptychopinn())
        .then(|| format!("note: --trainer is not used by --backend {backend}"))
}

/// Runs the command.
pub fn run(args: Args, progress: &Progress) -> anyhow::Result<u8> {
    let root = args.artifact_root.clone();
    in_artifact_root(&root, progress, |log, lock| {
        let options = args.resolve(&|line| log.note(progress, line))?;
        train(&options, progress, log, lock)
    })
}

/// Phase E with `options`; returns the exit code.
pub fn execute(options: &Options, progress: &Progress) -> anyhow::Result<u8> {
    in_artifact_root(&options.artifact_root, progress, |log, lock| {
        if let Some(line) = unused_trainer_note(options.backend, options.trainer.is_some()) {
            log.note(progress, &line);
        }
        train(options, progress, log, lock)
    })
}

/// Creates and locks the artifact root, sweeps dead runs' temporary files, and runs `work`
/// with the command log, which records how it ended.
fn in_artifact_root(
    root: &Path,
    progress: &Progress,
    work: impl FnOnce(&CommandLog, &runner::RootLock) -> anyhow::Result<u8>,
) -> anyhow::Result<u8> {
    // Ctrl-C / SIGTERM from the start: a signal is then always a clean stop, never a kill.
    crate::signals::token()?;
    if root.exists() && !root.is_dir() {
        anyhow::bail!(
            "the artifact root {} is not a folder: give a folder (it is created if missing)",
            root.display()
        );
    }
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create the artifact root {}", root.display()))?;
    // One writer per root, taken before anything under it is touched (the command log too).
    let lock = runner::RootLock::acquire(root)?;
    crate::signals::sweep_stale_temps(root, &|line| progress.note(line));
    let log = CommandLog::create(&root.join(COMMAND_LOG))?;
    let result = work(&log, &lock);
    log.finish(&result);
    result
}

fn train(
    options: &Options,
    progress: &Progress,
    log: &CommandLog,
    lock: &runner::RootLock,
) -> anyhow::Result<u8> {
    let timestamp = runner::manifest_timestamp(
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .filter(|s| !s.is_empty())
            .as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let backend = options.backend;
    // The supervised baseline runs in the trainer's Python when $PTYCHO_PYTHON is not set.
    let trainer = backend.runs_ptychopinn().then(|| {
        TrainerProgram::resolve(
            options.trainer.as_deref(),
            std::env::var_os(TrainerProgram::ENV_VAR),
        )
    });
    let filters = &options.filters;
    let mut plan = Plan::resolve(&PlanRequest {
        study: &options.study,
        phase_c_root: &options.phase_c_root,
        phase_d_root: &options.phase_d_root,
        artifact_root: &options.artifact_root,
        filters: filters.clone(),
        backend,
        // A SLURM dry run previews the real submission: its plan is the real run's.
        dry_run: options.dry_run && matches!(options.executor, Executor::Local { .. }),
        strict: options.strict,
        overrides: options.overrides.clone(),
        trainer,
        timestamp,
        pinn: options.pinn.clone(),
        // The method's interpreter: $PTYCHO_PYTHON (PtychoPINN), $PTYCHI_PYTHON (pty-chi).
        python: backend
            .python_env_var()
            .and_then(std::env::var_os)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    })?;

    log.note(
        progress,
        &format!(
            "enumerated {} job(s) from Phase C ({}) and Phase D ({})",
            plan.enumerated_count, plan.phase_c_root, plan.phase_d_root
        ),
    );
    for skip in &plan.skipped_views {
        log.note(
            progress,
            &format!(
                "skip {} (dose={}): {}",
                skip.view,
                format_dose(skip.dose),
                skip.reason
            ),
        );
    }
    if !filters.is_empty() {
        log.note(
            progress,
            &format!(
                "selected {} job(s) with {}",
                plan.jobs.len(),
                filters.describe()
            ),
        );
    }
    let (jobs, limits) = match &options.executor {
        Executor::Slurm(slurm) => {
            return slurm::submit(
                slurm,
                options.dry_run,
                options.force,
                &plan,
                progress,
                log,
                lock,
            );
        }
        Executor::Local { jobs, limits } => (*jobs, *limits),
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let decisions = runner::resume::decide(&plan, options.force, threads);
    report_decisions(&plan, &decisions, progress, log);
    // A dry run must not replace a real run's results with dry-run summaries: where the root
    // holds any, it only previews the decisions. Whether it holds any is read without
    // `--force`, whose decisions say only "--force" (a fresh root is not a real run's).
    let unforced;
    let found = if options.force && plan.dry_run {
        unforced = runner::resume::decide(&plan, false, threads);
        &unforced
    } else {
        &decisions
    };
    let real_results = found.iter().any(|d| match d {
        Decision::Skip(_) => true,
        Decision::Run(reason) => {
            reason != "no earlier result" && reason != "last run ended dry_run"
        }
    });
    if plan.dry_run && real_results {
        log.out(&format!(
            "→ Dry run: {} job(s) would be skipped, {} would run; nothing written (the \
             artifact root holds a real run's results)",
            decisions.iter().filter(|d| d.is_skip()).count(),
            decisions.iter().filter(|d| !d.is_skip()).count()
        ));
        return Ok(exit::OK);
    }
    // Nothing to train and no fixed timestamp: the earlier run's manifest stays as it is.
    if !plan.dry_run
        && decisions.iter().all(Decision::is_skip)
        && std::env::var_os("SOURCE_DATE_EPOCH").is_none_or(|v| v.is_empty())
    {
        plan.keep_earlier_timestamp();
    }
    let plan_id = plan.write()?;
    let mut done = Vec::with_capacity(decisions.len());
    for (planned, decision) in plan.jobs.iter().zip(decisions) {
        match decision {
            Decision::Skip(record) => {
                runner::resume::adopt(&record, planned, &plan_id)
                    .with_context(|| format!("updating the result of {}", planned.job.label()))?;
                done.push(Some(record.result));
            }
            Decision::Run(_) => {
                // No stale claim: a job about to run has no result until it has a new one
                // (never removed through a job folder that is a link).
                runner::remove_result(&plan, planned)?;
                done.push(None);
            }
        }
    }
    let results = execute_local(&plan, &plan_id, jobs, progress, log, done, limits)?;
    progress.clear();
    finish_run(&plan, &results, progress, log)
}

/// Shows each job's resume decision (`dose_1000/baseline/gs1: skip: verified`): on stdout for
/// a dry run, else on stderr; nothing when no job had run before (a fresh root). Every
/// decision also goes to the command log.
fn report_decisions(plan: &Plan, decisions: &[Decision], progress: &Progress, log: &CommandLog) {
    let fresh = decisions
        .iter()
        .all(|d| matches!(d, Decision::Run(r) if r == "no earlier result"));
    let skipped = decisions.iter().filter(|d| d.is_skip()).count();
    if fresh {
        return;
    }
    for (planned, decision) in plan.jobs.iter().zip(decisions) {
        let line = format!("{}: {}", planned.job.label(), decision.describe());
        if plan.dry_run {
            log.out(&line);
        } else {
            log.note(progress, &line);
        }
    }
    log.note(
        progress,
        &format!(
            "resume: {skipped} job(s) verified complete and skipped, {} to run",
            decisions.len() - skipped
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `study` gives its jobs `--log-limit`'s default.
    #[test]
    fn log_limit_default_is_the_runners() {
        let command = <Args as clap::Args>::augment_args(clap::Command::new("train"));
        let flag = command
            .get_arguments()
            .find(|a| a.get_id() == "log_limit")
            .and_then(|a| a.get_default_values().first().cloned())
            .expect("--log-limit has a default");
        assert_eq!(
            parse_size(flag.to_str().unwrap()),
            Ok(runner::DEFAULT_LOG_LIMIT)
        );
    }
}
