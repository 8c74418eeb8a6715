//! `dose-overlap study`: the whole study in one go — design check, Phase C, Phase D, training
//! and report per method, and the comparison — into `DIR/phase_c`, `DIR/phase_d`,
//! `DIR/artifacts`, `DIR/report` and `DIR/comparison`. One method keeps `DIR/artifacts` and
//! `DIR/report`; several get `DIR/artifacts/<method>` and `DIR/report/<method>` each.
//!
//! Each phase runs through its own command's `execute`, given the typed `Options` a person's
//! flags would resolve to (the study as recorded in `DIR/study.json`, the phase folders, this
//! command's settings), so a study's artifacts are exactly those of the phases run one by one.

use crate::cmd_train::{ExecutorArg, SlurmArgs};
use crate::methods::{BackendArg, Method, MethodList, parse_accelerator, parse_methods};
use crate::output::outln;
use crate::progress::Progress;
use crate::slurm_resources::StudyResources;
use crate::study_args::StudyArgs;
use crate::study_prep::Phases;
use crate::study_slurm::{Chain, Stage, Training};
use crate::{
    cmd_collect, cmd_compare, cmd_generate, cmd_overlap, cmd_report, cmd_train, exit, study_resume,
    study_slurm,
};
use anyhow::Context;
use reporting::replicates::replicate_dir;
use runner::ptychopinn::PinnOverrides;
use runner::{BackendKind, ConfigOverrides};
use std::path::{Path, PathBuf};
use study_design::Study;

/// Arguments of `dose-overlap study`.
#[derive(clap::Args)]
pub struct Args {
    /// The study folder: phase_c/, phase_d/, artifacts/, report/ and study.json go here.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    study: StudyArgs,
    /// Methods to run and compare, comma-separated: `native`, `native:<algorithm>` (epie, rpie,
    /// ml), `tensorflow`, `pytorch`, `tensorflow:supervised` (these need PtychoPINN),
    /// `ptychi:<algorithm>` (lsqml, epie, rpie, pie, dm; needs $PTYCHI_PYTHON) [default:
    /// native].
    #[arg(long, value_name = "LIST", value_parser = parse_methods, conflicts_with = "backend")]
    backends: Option<MethodList>,
    /// One method (`--backends` with a single entry).
    #[arg(long, value_enum, value_name = "B")]
    backend: Option<BackendArg>,
    /// PtychoPINN's trainer program, for the tensorflow and pytorch backends.
    #[arg(long, value_name = "PATH")]
    trainer: Option<PathBuf>,
    /// Epochs per job, for every method (default: the study's `[solver] epochs` for native, its
    /// `[pinn] epochs` for tensorflow and pytorch).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Option<u32>,
    /// PtychoPINN's `--n_groups` (see `train --help`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    n_groups: Option<u32>,
    /// Where PtychoPINN trains and pty-chi runs: auto, cpu or gpu (see `train --help`).
    #[arg(long, value_name = "WHERE", value_parser = parse_accelerator)]
    accelerator: Option<study_design::Accelerator>,
    /// Enumerate the training jobs and write their configs, but train nothing.
    #[arg(long)]
    dry_run: bool,
    /// Training jobs run at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Rerun every phase and job, also those verified complete.
    #[arg(long)]
    force: bool,
    /// Stop and fail a training job that runs longer than this (`30m`, `2h`).
    #[arg(long, value_name = "DURATION", value_parser = runner::parse_duration)]
    job_timeout: Option<std::time::Duration>,
    /// Refuse (exit 2, before any work) when Phase C's estimated memory exceeds this (bytes,
    /// or e.g. 512M, 8G). Default: the memory available on this machine.
    #[arg(long, value_name = "SIZE", value_parser = crate::budget::parse_size)]
    max_memory: Option<u64>,
    /// Where the study runs: here, or on SLURM as chained jobs (Phase C and D as an array
    /// with one task per dose, each method's training array with its own resources, then
    /// collect, report and comparison).
    #[arg(long, value_enum, default_value_t = ExecutorArg::Local)]
    executor: ExecutorArg,
    #[command(flatten)]
    slurm: Box<SlurmArgs>,
    /// Print where a study submitted with `--executor slurm` stands (each stage's SLURM job
    /// id and state, each method's tasks) and exit; needs only --out.
    #[arg(long)]
    status: bool,
    /// One stage of a study on SLURM (what its batch scripts run).
    #[arg(long, value_enum, hide = true)]
    stage: Option<Stage>,
    /// The dose (its index in the design's dose list) one task of the `prep` stage runs.
    #[arg(long, value_name = "I", hide = true, requires = "stage")]
    dose_index: Option<usize>,
    /// Independent realisations of the data (scan positions, noise, grouping), each the whole
    /// study again in DIR/replicate_NN, aggregated with 95 % intervals and paired tests in
    /// DIR/replicates [default: the study's `replicates`, 1]. Adding replicates to a finished
    /// study runs only the new ones.
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u32).range(1..=i64::from(study_design::MAX_REPLICATES)))]
    replicates: Option<u32>,
    /// One replicate of a study with replicates (what its SLURM stages run).
    #[arg(long, value_name = "R", hide = true)]
    replicate: Option<u32>,
    #[command(flatten)]
    map: crate::map_args::MapArgs,
}

/// How this run of `study` works.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Everything here.
    Local,
    /// Submits the stages to SLURM.
    Submit,
    /// Runs one stage, inside a SLURM job.
    Stage(Stage),
}

/// Runs the command: exit 0 when every phase and job ended well, 1 when a training job failed,
/// 2 when a phase could not run.
pub fn run(args: Args, progress: &Progress) -> anyhow::Result<u8> {
    // Ctrl-C / SIGTERM from the start: a signal is then always a clean stop, never a kill.
    crate::signals::token()?;
    if args.status {
        return status(&args.out);
    }
    // Before any work: every path the phases record in JSON, by the flag the user gave.
    crate::paths::require_utf8("--out", &args.out)?;
    if let Some(design) = &args.study.design {
        crate::paths::require_utf8("--design", design)?;
    }
    if let Some(trainer) = &args.trainer {
        crate::paths::require_utf8("--trainer", trainer)?;
    }
    let mut study = args.study.load()?;
    if let Some(r) = args.replicates {
        study.replicates = r;
    }
    if let Some(base) = &study.simulation.base_npz
        && !base.is_file()
    {
        anyhow::bail!(
            "simulation.base_npz {} (in the study file) is not a file: give an NPZ with \
             objectGuess and probeGuess",
            base.display()
        );
    }
    // On SLURM each `prep` task simulates one dose: its memory is one dose's.
    let budget_doses = (args.executor == ExecutorArg::Slurm).then_some(1);
    crate::budget::check(&study, budget_doses, None, args.max_memory)?;
    // Names as the comparison records them: plain `native` is the study's algorithm. Checked
    // before any phase runs, so a method this build cannot run costs nothing.
    let methods = args.methods(&study);
    for (k, m) in methods.iter().enumerate() {
        m.algorithm()?;
        anyhow::ensure!(
            !methods[..k].contains(m),
            "--backends names `{}` twice (plain `native` is the study's algorithm, {})",
            m.name(),
            study.solver.algorithm.as_str()
        );
    }
    // Refused before Phase C: a study PtychoPINN cannot train should not cost a simulation.
    for m in &methods {
        let kind = runner::BackendKind::from(m.backend);
        if !args.dry_run
            && let Some(problem) =
                runner::ptychopinn::patch_size_problem(study.design.patch_size_pixels, kind)
        {
            anyhow::bail!("study '{}' cannot train: {problem}", study.name);
        }
    }
    let mode = match (args.executor, args.stage) {
        (ExecutorArg::Local, stage) => {
            if let Some(flag) = args.slurm.first_given() {
                anyhow::bail!("{flag} is an option of --executor slurm");
            }
            anyhow::ensure!(stage.is_none(), "--stage is an option of --executor slurm");
            Mode::Local
        }
        (ExecutorArg::Slurm, None) => Mode::Submit,
        (ExecutorArg::Slurm, Some(stage)) => Mode::Stage(stage),
    };
    // Checked before anything runs: a `prep` task runs exactly one dose of the design.
    match (mode, args.dose_index) {
        (Mode::Stage(Stage::Prep), None) => anyhow::bail!("--stage prep needs --dose-index"),
        (Mode::Stage(Stage::Prep), Some(i)) => anyhow::ensure!(
            i < study.design.dose_list.len(),
            "--dose-index {i}: the design has {} dose(s)",
            study.design.dose_list.len()
        ),
        (_, Some(_)) => anyhow::bail!("--dose-index is an option of --stage prep"),
        (_, None) => {}
    }
    // Checked before anything is written or submitted: a typo in a method's name or a
    // resource fails now, not in a SLURM job.
    let resources = match mode {
        Mode::Local => StudyResources::default(),
        _ => StudyResources::new(
            args.study.slurm_table()?.as_ref(),
            &args.slurm.resources(),
            &methods,
        )?,
    };
    let ctx = Ctx {
        args: &args,
        methods: &methods,
        mode,
        resources: &resources,
        progress,
    };
    match (study.replicates, args.replicate) {
        (1, None) => run_one(&ctx, &study, &args.out),
        (1, Some(_)) => anyhow::bail!("--replicate is an option of a study with replicates"),
        (_, None) => run_replicates(&ctx, &study),
        (n, Some(r)) => {
            anyhow::ensure!(
                (1..=n).contains(&r),
                "--replicate {r}: the study has replicates 1 to {n}"
            );
            run_one(
                &ctx,
                &study.replicate_study(r),
                &args.out.join(replicate_dir(r)),
            )
        }
    }
}

/// What every replicate of a run shares.
struct Ctx<'a> {
    args: &'a Args,
    methods: &'a [Method],
    mode: Mode,
    resources: &'a StudyResources,
    progress: &'a Progress,
}

/// `--status`: the study's SLURM stages, or each replicate's.
fn status(out: &Path) -> anyhow::Result<u8> {
    let replicates = reporting::replicates::replicate_dirs(out);
    if replicates.is_empty() {
        return study_slurm::status(out);
    }
    let mut code = exit::OK;
    for (_, dir) in replicates {
        outln!("{}:", dir.display());
        code = code.max(study_slurm::status(&dir)?);
    }
    Ok(code)
}

/// A study with replicates: `DIR/study.json` (with the count), each replicate's whole study in
/// `DIR/replicate_NN` (its own study, seeds and phases: [`Study::replicate_study`]), then the
/// aggregate in `DIR/replicates`. A replicate already complete is verified and skipped, as a
/// study's rerun is: adding replicates runs only the new ones.
fn run_replicates(ctx: &Ctx, study: &Study) -> anyhow::Result<u8> {
    let (args, progress) = (ctx.args, ctx.progress);
    let out = &args.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the study folder {}", out.display()))?;
    let lock = runner::RootLock::acquire(out)?;
    crate::signals::sweep_stale_temps(out, &|line| progress.note(line));
    npz_contract::atomic::write_atomic(&out.join("study.json"), study.to_study_json().as_bytes())
        .context("writing the resolved study")?;
    let total = study.replicates;
    let mut code = exit::OK;
    for r in 1..=total {
        progress.note(&format!("=== replicate {r} of {total}"));
        let dir = out.join(replicate_dir(r));
        code = code.max(run_one(ctx, &study.replicate_study(r), &dir)?);
        if crate::signals::token()?.is_cancelled() {
            progress.clear();
            crate::output::errln!("study interrupted: rerun the same command to resume it");
            return Ok(exit::FAILURE);
        }
    }
    if ctx.mode == Mode::Submit {
        drop(lock);
        if args.dry_run {
            return Ok(exit::OK);
        }
        let Some(poll) = args.slurm.wait.then_some(args.slurm.poll_interval) else {
            outln!(
                "→ When every replicate has finished, the same command with --executor local \
                 draws the aggregate (each replicate verified, nothing trained again)"
            );
            return Ok(exit::OK);
        };
        for r in 1..=total {
            code = code.max(study_slurm::follow(
                &out.join(replicate_dir(r)),
                poll,
                progress,
            )?);
        }
    }
    if args.dry_run {
        return Ok(code);
    }
    aggregate(ctx, study)?;
    Ok(code)
}

/// The replicates' aggregate, into `DIR/replicates`.
fn aggregate(ctx: &Ctx, study: &Study) -> anyhow::Result<()> {
    let out = &ctx.args.out;
    let several = ctx.methods.len() > 1;
    let replicates: Vec<reporting::replicates::Replicate> = (1..=study.replicates)
        .map(|r| {
            let rs = study.replicate_study(r);
            let dir = out.join(replicate_dir(r));
            let methods = ctx
                .methods
                .iter()
                .map(|m| {
                    let name = m.name_in(&rs);
                    let root = crate::methods::artifact_root(&dir, &name, several);
                    reporting::compare::MethodRoot { name, root }
                })
                .collect();
            reporting::replicates::Replicate {
                index: r,
                seeds: rs.design.rng_seeds,
                methods,
            }
        })
        .collect();
    ctx.progress.note("== replicates: aggregate");
    let dir = out.join(reporting::replicates::REPLICATES_DIR);
    let settings = ctx.args.map.settings();
    let written =
        reporting::replicates::write(&replicates, &study.name, study.replicates, &settings, &dir)
            .context("aggregating the replicates")?;
    ctx.progress.clear();
    let count = |v| {
        written
            .criteria
            .iter()
            .filter(|(_, verdict)| *verdict == v)
            .count()
    };
    use reporting::replicates::Verdict;
    outln!(
        "replicates: {} ({} dose steps improve, {} not resolved at n = {}, {} worsen)",
        dir.join("summary.md").display(),
        count(Verdict::Pass),
        count(Verdict::Unresolved),
        study.replicates,
        count(Verdict::Fail)
    );
    outln!(
        "comparison over replicates: {}",
        dir.join("comparison.md").display()
    );
    Ok(())
}

/// One study (without replicates, or one replicate's) into `out`.
fn run_one(ctx: &Ctx, study: &Study, out: &Path) -> anyhow::Result<u8> {
    let (args, methods, mode, resources, progress) =
        (ctx.args, ctx.methods, ctx.mode, ctx.resources, ctx.progress);
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the study folder {}", out.display()))?;
    let prep_task = mode == Mode::Stage(Stage::Prep);
    // One writer per study folder (train also locks the artifact root inside it); the `prep`
    // tasks, each writing its own dose's folders, share it as a training array's tasks do.
    let _lock = if prep_task {
        runner::RootLock::acquire_shared_within(out, crate::cmd_run_job::RUN_JOB_LOCK_PATIENCE)?
    } else {
        runner::RootLock::acquire(out)?
    };
    // A `prep` task sweeps only its own dose's folders (in `generate` and `overlap`): the
    // other tasks, maybe on other nodes, are writing theirs.
    if !prep_task {
        crate::signals::sweep_stale_temps(out, &|line| progress.note(line));
    }
    // The resolved study beside its results, so the run can be repeated exactly.
    let study_file = out.join("study.json");
    let study_json = study.to_study_json();
    if let Mode::Stage(stage) = mode {
        // A stage runs the study that was submitted, not a study file edited since.
        let submitted = std::fs::read(&study_file).unwrap_or_default();
        anyhow::ensure!(
            submitted == study_json.as_bytes(),
            "the study differs from {} as submitted (was the study file edited?): the `{}` \
             stage stops; submit the study again",
            study_file.display(),
            stage.name()
        );
    } else {
        npz_contract::atomic::write_atomic(&study_file, study_json.as_bytes())
            .context("writing the resolved study")?;
    }
    let study_sha = runner::sha256_bytes(study_json.as_bytes());
    // Every phase works on the study as recorded, read back as `--design DIR/study.json` reads
    // it: rerunning a phase by hand with that file gives the same artifacts.
    let recorded = StudyArgs {
        design: Some(study_file.clone()),
        preset: None,
    }
    .load()?;
    let (phase_c, phase_d) = (out.join("phase_c"), out.join("phase_d"));
    let several = methods.len() > 1;
    // What the report and the comparison are drawn from (the local run's end and the SLURM
    // finish stage both draw them).
    let drawn = Drawn {
        out,
        study,
        study_sha: &study_sha,
        force: args.force,
        several,
        map: args.map.settings(),
    };
    let chain = Chain {
        out,
        resources: resources.for_stages(),
        extra_args: &args.slurm.sbatch_args,
        array_limit: args.slurm.array_limit,
        max_array_size: args
            .slurm
            .max_array_size
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    // Phase C's input is the base NPZ, if the study names one.
    // (Absolute: record paths are otherwise relative to the study folder.)
    let c_inputs: Vec<PathBuf> = study
        .simulation
        .base_npz
        .iter()
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .collect();
    let phases = Phases {
        out,
        study_sha: &study_sha,
        c_inputs: &c_inputs,
    };
    match mode {
        Mode::Submit => {
            let mut argv = study_slurm::stage_argv();
            // A replicate's stages run that replicate.
            if let (Some(r), None) = (study.replicate, args.replicate) {
                argv.extend(["--replicate".to_string(), r.to_string()]);
            }
            let prep = phases.prep_to_run(&study.design.dose_list, args.force, progress);
            let scripts = study_slurm::prepare(&chain, &argv)?;
            if args.dry_run {
                progress.note(&format!(
                    "--dry-run: the study's SLURM stages, written; nothing submitted (prep would \
                     run {} of {} dose(s))",
                    prep.todo.len(),
                    prep.doses.len()
                ));
                for script in scripts {
                    crate::output::emit(&script);
                }
                return Ok(exit::OK);
            }
            phases.forget_for(&prep)?;
            // Each stage takes the study's lock while it runs.
            drop(_lock);
            // Replicates are followed once all are submitted.
            let wait =
                (study.replicate.is_none() && args.slurm.wait).then_some(args.slurm.poll_interval);
            return study_slurm::submit(&chain, &prep, wait, progress);
        }
        Mode::Stage(Stage::Prep) => {
            // Checked in `run`.
            let index = args.dose_index.context("--stage prep needs --dose-index")?;
            let dose = recorded.design.dose_list[index];
            return phases.prep_dose(&recorded, dose, args.max_memory, progress);
        }
        Mode::Stage(Stage::Plan) => {
            phases.record_after_prep(&study.design.dose_list, progress)?;
            let mut training = Vec::new();
            for method in methods {
                let name = method.name();
                let root = crate::methods::artifact_root(out, &name, several);
                progress.note(&format!("== Phase E (train on SLURM): {name}"));
                let mut train =
                    args.train_options(&recorded, method, &phase_c, &phase_d, &root, 1)?;
                let job_name = format!("dose-overlap-{}", reporting::compare::slug(&name));
                let mut slurm = args.slurm.options(resources.for_method(method), &job_name);
                slurm.wait = None;
                train.executor = cmd_train::Executor::Slurm(slurm);
                cmd_train::execute(&train, progress)?;
                training.push(Training {
                    method: name,
                    artifact_root: root
                        .canonicalize()
                        .with_context(|| format!("cannot resolve {}", root.display()))?,
                });
            }
            let finish = study_slurm::submit_finish(&chain, training)?;
            outln!("→ Submitted the study's finish stage: job {finish}");
            return Ok(exit::OK);
        }
        Mode::Stage(Stage::Finish) => {
            let mut roots = Vec::new();
            let mut code = exit::OK;
            for method in methods {
                let name = method.name();
                let root = crate::methods::artifact_root(out, &name, several);
                progress.note(&format!("== collect: {name}"));
                code = code.max(cmd_collect::run(cmd_collect::Args {
                    artifact_root: root.clone(),
                })?);
                roots.push(reporting::compare::MethodRoot { name, root });
            }
            drawn.report_and_compare(roots, progress)?;
            return Ok(code);
        }
        Mode::Local => {}
    }

    match study_resume::verified(out, "phase_c", &study_sha, None, &c_inputs) {
        Ok(_) if !args.force => progress.note(&format!(
            "== study '{}': design ok; Phase C: outputs verified against {}, skipped",
            study.name,
            reporting::verify::phase_record_file("phase_c")
        )),
        verdict => {
            let why = match verdict {
                Err(reason) => reason,
                Ok(_) => "--force".to_string(),
            };
            progress.note(&format!(
                "== study '{}': design ok; Phase C (generate): {why}",
                study.name
            ));
            study_resume::forget(out, "phase_c").context("removing the Phase C record")?;
            let generate = cmd_generate::Options {
                out: phase_c.clone(),
                study: recorded.clone(),
                base_npz: None,
                dose: None,
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                max_memory: args.max_memory,
            };
            let code = cmd_generate::execute(&generate, progress)?;
            if code != exit::OK {
                anyhow::bail!("Phase C (generate) failed; see the messages above");
            }
            study_resume::record(out, "phase_c", &study_sha, None, &c_inputs)
                .context("recording Phase C's outputs")?;
        }
    }

    // Phase D's inputs are Phase C's outputs.
    let d_inputs = study_resume::files_under(out, "phase_c");
    match study_resume::verified(out, "phase_d", &study_sha, None, &d_inputs) {
        Ok(_) if !args.force => progress.note(&format!(
            "== Phase D: outputs verified against {}, skipped",
            reporting::verify::phase_record_file("phase_d")
        )),
        verdict => {
            let why = match verdict {
                Err(reason) => reason,
                Ok(_) => "--force".to_string(),
            };
            progress.note(&format!("== Phase D (overlap): {why}"));
            study_resume::forget(out, "phase_d").context("removing the Phase D record")?;
            let overlap = cmd_overlap::Options {
                phase_c_root: phase_c.clone(),
                out: phase_d.clone(),
                study: recorded.clone(),
                dose: None,
            };
            let code = cmd_overlap::execute(&overlap, progress)?;
            if code != exit::OK {
                anyhow::bail!("Phase D (overlap) failed; see the messages above");
            }
            study_resume::record(out, "phase_d", &study_sha, None, &d_inputs)
                .context("recording Phase D's outputs")?;
        }
    }

    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    );
    let mut roots = Vec::new();
    let mut train_code = exit::OK;
    for method in methods {
        let name = method.name_in(&recorded);
        let root = crate::methods::artifact_root(out, &name, several);
        progress.note(&format!("== Phase E (train): {name}"));
        let train = args.train_options(&recorded, method, &phase_c, &phase_d, &root, jobs)?;
        let code = cmd_train::execute(&train, progress)?;
        train_code = train_code.max(code);
        if crate::signals::token()?.is_cancelled() {
            // train said what finished; the report of an unfinished run would only repeat it.
            progress.clear();
            crate::output::errln!("study interrupted: rerun the same command to resume it");
            return Ok(exit::FAILURE);
        }
        roots.push(reporting::compare::MethodRoot { name, root });
    }
    drawn.report_and_compare(roots, progress)?;
    Ok(train_code)
}

/// What the report and the comparison of a study are drawn from, and whether to redraw them.
struct Drawn<'a> {
    out: &'a Path,
    study: &'a Study,
    study_sha: &'a str,
    force: bool,
    several: bool,
    /// How the maps are drawn.
    map: reporting::map::MapSettings,
}

impl Drawn<'_> {
    /// Each method's report, then the comparison; each redrawn only when its record does not
    /// verify (see `study_resume`): a finished study's rerun redraws nothing.
    fn report_and_compare(
        &self,
        roots: Vec<reporting::compare::MethodRoot>,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let out = self.out;
        let report = out.join("report");
        let tool = study_resume::tool_sha256();
        // What the drawing depends on beyond the files: the study, and a success threshold
        // other than the default (so that a rerun with another one redraws).
        let drawn_with = if self.map == reporting::map::MapSettings::default() {
            self.study_sha.to_string()
        } else {
            format!(
                "{}+success_nrmse={}",
                self.study_sha, self.map.success_nrmse
            )
        };
        let mut inputs: Vec<PathBuf> = vec![
            PathBuf::from("study.json"),
            PathBuf::from(reporting::verify::phase_record_file("phase_c")),
            PathBuf::from(reporting::verify::phase_record_file("phase_d")),
        ];
        for method in &roots {
            // Roots are folders of the study folder (`methods::artifact_root`).
            if let Ok(rel) = method.root.strip_prefix(out) {
                inputs.push(rel.join(reporting::manifest::MANIFEST_FILE));
            }
        }
        // As the record lists them.
        inputs.sort();
        let redraw = |phase: &str| -> anyhow::Result<bool> {
            match study_resume::verified(out, phase, &drawn_with, tool.as_deref(), &inputs) {
                Ok(_) if !self.force => {
                    progress.note(&format!(
                        "== {phase}: inputs unchanged and outputs verified against {}, not redrawn",
                        reporting::verify::phase_record_file(phase)
                    ));
                    Ok(false)
                }
                _ => {
                    study_resume::forget(out, phase)
                        .with_context(|| format!("removing the {phase} record"))?;
                    Ok(true)
                }
            }
        };
        let record = |phase: &str| {
            study_resume::record(out, phase, &drawn_with, tool.as_deref(), &inputs)
                .with_context(|| format!("recording the {phase}'s outputs"))
        };
        if redraw("report")? {
            for method in &roots {
                report_method(
                    &report,
                    &method.name,
                    &method.root,
                    self.several,
                    &self.map,
                    progress,
                )?;
            }
            record("report")?;
        }
        if redraw("comparison")? {
            progress.note("== comparison");
            cmd_compare::execute(&cmd_compare::Options {
                methods: roots,
                out: comparison_dir(out),
                map: self.map,
            })?;
            record("comparison")?;
        }
        progress.clear();
        outln!("study '{}' written to {}", self.study.name, out.display());
        if self.several {
            outln!("reports: {}", report.join("<method>/summary.md").display());
        } else {
            outln!("report: {}", report.join("summary.md").display());
        }
        outln!(
            "comparison: {}",
            comparison_dir(out).join("comparison.md").display()
        );
        Ok(())
    }
}

/// One method's report, into `report` (or `report/<method>` when the study has several).
fn report_method(
    report: &Path,
    name: &str,
    root: &Path,
    several: bool,
    map: &reporting::map::MapSettings,
    progress: &Progress,
) -> anyhow::Result<()> {
    let report = if several {
        report.join(reporting::compare::slug(name))
    } else {
        report.to_path_buf()
    };
    progress.note(&format!("== report: {name}"));
    // Its exit code is the training's, which the caller already has.
    cmd_report::execute(&cmd_report::Options {
        artifact_root: root.to_path_buf(),
        out: Some(report),
        verify: false,
        map: *map,
    })?;
    Ok(())
}

/// `DIR/comparison`.
fn comparison_dir(out: &Path) -> PathBuf {
    out.join("comparison")
}

impl Args {
    /// The methods asked for, with plain `native` resolved to the study's algorithm so that
    /// names agree with what `compare` reads back from the artifacts.
    fn methods(&self, study: &study_design::Study) -> Vec<Method> {
        let given = match (&self.backends, self.backend) {
            (Some(list), _) => list.0.clone(),
            (None, Some(b)) => vec![Method {
                backend: b,
                algorithm: None,
            }],
            (None, None) => vec![Method {
                backend: BackendArg::Native,
                algorithm: None,
            }],
        };
        given
            .into_iter()
            .map(|mut m| {
                if m.backend == BackendArg::Native && m.algorithm.is_none() {
                    m.algorithm = Some(study.solver.algorithm.as_str().to_string());
                }
                m
            })
            .collect()
    }

    /// `train`'s options for one method's Phase E: the study's phase folders, this command's
    /// settings, and `train`'s defaults for the flags `study` does not have.
    fn train_options(
        &self,
        study: &Study,
        method: &Method,
        phase_c: &Path,
        phase_d: &Path,
        root: &Path,
        jobs: usize,
    ) -> anyhow::Result<cmd_train::Options> {
        Ok(cmd_train::Options {
            study: study.clone(),
            phase_c_root: phase_c.to_path_buf(),
            phase_d_root: phase_d.to_path_buf(),
            artifact_root: root.to_path_buf(),
            filters: job_matrix::JobFilter::default(),
            backend: BackendKind::from(method.backend).for_study(study),
            trainer: self.trainer.clone(),
            overrides: ConfigOverrides {
                epochs: self.epochs,
                algorithm: method.algorithm()?,
                ..ConfigOverrides::default()
            },
            pinn: PinnOverrides {
                n_groups: self.n_groups,
                accelerator: self.accelerator,
            },
            dry_run: self.dry_run,
            strict: false,
            force: self.force,
            executor: cmd_train::Executor::Local {
                jobs,
                limits: runner::JobLimits {
                    timeout: self.job_timeout,
                    log_limit: runner::DEFAULT_LOG_LIMIT,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(no_binary_name = true)]
    struct Flags<T: clap::Args> {
        #[command(flatten)]
        args: T,
    }

    fn parse<T: clap::Args>(argv: &[String]) -> T {
        Flags::<T>::try_parse_from(argv).expect("flags parse").args
    }

    /// The `train` flags `study` passed before it built `train`'s options (its argv, issue 25,
    /// knot 4), with `--preset tiny` for `--design DIR/study.json`.
    fn train_argv(args: &Args, method: &Method, jobs: usize) -> Vec<String> {
        let mut argv: Vec<String> = [
            "--phase-c-root",
            "s/phase_c",
            "--phase-d-root",
            "s/phase_d",
            "--artifact-root",
            "s/artifacts",
            "--jobs",
        ]
        .map(String::from)
        .to_vec();
        argv.push(jobs.to_string());
        argv.push("--backend".into());
        // `native:epie` is `--backend native --algorithm epie`; `ptychi:lsqml` is a backend.
        argv.push(match &method.algorithm {
            Some(_) => method.name().split(':').next().unwrap().into(),
            None => method.name(),
        });
        if let Some(a) = &method.algorithm {
            argv.extend(["--algorithm".into(), a.clone()]);
        }
        argv.extend(["--preset".into(), "tiny".into()]);
        if let Some(trainer) = &args.trainer {
            argv.extend(["--trainer".into(), trainer.display().to_string()]);
        }
        if let Some(epochs) = args.epochs {
            argv.extend(["--epochs".into(), epochs.to_string()]);
        }
        if let Some(n) = args.n_groups {
            argv.extend(["--n-groups".into(), n.to_string()]);
        }
        if let Some(accelerator) = args.accelerator {
            argv.extend(["--accelerator".into(), accelerator.as_str().into()]);
        }
        if args.dry_run {
            argv.push("--dry-run".into());
        }
        if args.force {
            argv.push("--force".into());
        }
        if let Some(timeout) = args.job_timeout {
            argv.extend(["--job-timeout".into(), runner::format_duration(timeout)]);
        }
        argv
    }

    /// What `study` gives `train` is what those flags resolve to, for every method.
    #[test]
    fn train_options_are_what_trains_flags_resolve_to() {
        let study = Study::preset("tiny").unwrap();
        let cases: [&[&str]; 4] = [
            &[],
            &["--backend", "native", "--epochs", "3", "--force", "-j", "2"],
            &[
                "--backends",
                "native:ml,native:epie,tensorflow,pytorch,ptychi:lsqml,ptychi:dm,tensorflow:supervised",
                "--trainer",
                "/opt/ptycho_train",
                "--n-groups",
                "7",
                "--accelerator",
                "cpu",
                "--dry-run",
                "--job-timeout",
                "1h30m",
            ],
            &[
                "--backend",
                "pytorch",
                "--accelerator",
                "gpu",
                "--job-timeout",
                "45s",
            ],
        ];
        for case in cases {
            let mut argv: Vec<String> = vec!["--out".into(), "s".into()];
            argv.extend(case.iter().map(|s| s.to_string()));
            let args: Args = parse(&argv);
            for method in args.methods(&study) {
                let jobs = args.jobs.map_or(3, |j| j as usize);
                let (c, d, root) = (
                    Path::new("s/phase_c"),
                    Path::new("s/phase_d"),
                    Path::new("s/artifacts"),
                );
                let typed = args
                    .train_options(&study, &method, c, d, root, jobs)
                    .unwrap();
                let flags: cmd_train::Args = parse(&train_argv(&args, &method, jobs));
                let resolved = flags.resolve(&|_| {}).unwrap();
                assert_eq!(typed, resolved, "{case:?}, {}", method.name());
            }
        }
    }
}
