//! `dose-overlap study`: the whole study in one go — design check, Phase C, Phase D, training
//! and report per method, and the comparison — into `DIR/phase_c`, `DIR/phase_d`,
//! `DIR/artifacts`, `DIR/report` and `DIR/comparison`. One method keeps `DIR/artifacts` and
//! `DIR/report`; several get `DIR/artifacts/<method>` and `DIR/report/<method>` each.
//!
//! Each phase runs through its own command's code (parsed from the same flags a person would
//! type), so a study's artifacts are exactly those of the phases run one by one.

use crate::methods::{BackendArg, Method, MethodList, parse_accelerator, parse_methods};
use crate::output::outln;
use crate::progress::Progress;
use crate::study_args::StudyArgs;
use crate::{cmd_compare, cmd_generate, cmd_overlap, cmd_report, cmd_train, exit, study_resume};
use anyhow::Context;
use clap::Parser;
use std::ffi::OsString;
use std::path::PathBuf;

/// Arguments of `dose-overlap study`.
#[derive(clap::Args)]
pub struct Args {
    /// The study folder: phase_c/, phase_d/, artifacts/, report/ and study.json go here.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    study: StudyArgs,
    /// Methods to run and compare, comma-separated: `native`, `native:<algorithm>` (epie, rpie,
    /// ml), `tensorflow`, `pytorch` (the last two need PtychoPINN) [default: native].
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
    /// Where PtychoPINN trains: auto, cpu or gpu (see `train --help`).
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
}

/// Parses one phase's arguments exactly as the command line would.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct Phase<T: clap::Args> {
    #[command(flatten)]
    args: T,
}

fn phase_args<T: clap::Args>(argv: Vec<OsString>) -> anyhow::Result<T> {
    Phase::<T>::try_parse_from(argv)
        .map(|p| p.args)
        .map_err(|e| anyhow::anyhow!("internal: bad phase arguments: {e}"))
}

/// Runs the command: exit 0 when every phase and job ended well, 1 when a training job failed,
/// 2 when a phase could not run.
pub fn run(args: Args, progress: &Progress) -> anyhow::Result<u8> {
    // Ctrl-C / SIGTERM from the start: a signal is then always a clean stop, never a kill.
    crate::signals::token()?;
    // Before any work: every path the phases record in JSON, by the flag the user gave.
    crate::paths::require_utf8("--out", &args.out)?;
    if let Some(design) = &args.study.design {
        crate::paths::require_utf8("--design", design)?;
    }
    if let Some(trainer) = &args.trainer {
        crate::paths::require_utf8("--trainer", trainer)?;
    }
    let study = args.study.load()?;
    if let Some(base) = &study.simulation.base_npz
        && !base.is_file()
    {
        anyhow::bail!(
            "simulation.base_npz {} (in the study file) is not a file: give an NPZ with \
             objectGuess and probeGuess",
            base.display()
        );
    }
    crate::budget::check(&study, None, None, args.max_memory)?;
    // Names as the comparison records them: plain `native` is the study's algorithm. Checked
    // before any phase runs, so a method this build cannot run costs nothing.
    let methods = args.methods(&study);
    for (k, m) in methods.iter().enumerate() {
        m.train_args()?;
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
    let out = &args.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the study folder {}", out.display()))?;
    // One writer per study folder (train also locks the artifact root inside it).
    let _lock = runner::RootLock::acquire(out)?;
    crate::signals::sweep_stale_temps(out, &|line| progress.note(line));
    // The resolved study beside its results, so the run can be repeated exactly.
    let study_file = out.join("study.json");
    let study_json = study.to_study_json();
    npz_contract::atomic::write_atomic(&study_file, study_json.as_bytes())
        .context("writing the resolved study")?;
    let study_sha = runner::sha256_bytes(study_json.as_bytes());
    let (phase_c, phase_d) = (out.join("phase_c"), out.join("phase_d"));
    let report = out.join("report");
    let design: Vec<OsString> = vec!["--design".into(), study_file.clone().into()];
    let os = |s: &str| OsString::from(s);

    // Phase C's input is the base NPZ, if the study names one.
    // (Absolute: record paths are otherwise relative to the study folder.)
    let c_inputs: Vec<PathBuf> = study
        .simulation
        .base_npz
        .iter()
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .collect();
    match study_resume::verified(out, "phase_c", &study_sha, &c_inputs) {
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
            let mut argv = vec![os("--out"), phase_c.clone().into()];
            argv.extend(design.iter().cloned());
            if let Some(max) = args.max_memory {
                argv.extend([os("--max-memory"), os(&max.to_string())]);
            }
            let code = cmd_generate::run(phase_args(argv)?, progress)?;
            if code != exit::OK {
                anyhow::bail!("Phase C (generate) failed; see the messages above");
            }
            study_resume::record(out, "phase_c", &study_sha, &c_inputs)
                .context("recording Phase C's outputs")?;
        }
    }

    // Phase D's inputs are Phase C's outputs.
    let d_inputs = study_resume::files_under(out, "phase_c");
    match study_resume::verified(out, "phase_d", &study_sha, &d_inputs) {
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
            let mut argv = vec![
                os("--phase-c-root"),
                phase_c.clone().into(),
                os("--out"),
                phase_d.clone().into(),
            ];
            argv.extend(design.iter().cloned());
            let code = cmd_overlap::run(phase_args(argv)?, progress)?;
            if code != exit::OK {
                anyhow::bail!("Phase D (overlap) failed; see the messages above");
            }
            study_resume::record(out, "phase_d", &study_sha, &d_inputs)
                .context("recording Phase D's outputs")?;
        }
    }

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let several = methods.len() > 1;
    let mut roots = Vec::new();
    let mut train_code = exit::OK;
    for method in &methods {
        let name = method.name();
        let root = crate::methods::artifact_root(out, &name, several);
        let report = if several {
            report.join(reporting::compare::slug(&name))
        } else {
            report.clone()
        };
        progress.note(&format!("== Phase E (train): {name}"));
        let code = train_method(
            &args, method, &phase_c, &phase_d, &root, &design, jobs, progress,
        )?;
        train_code = train_code.max(code);
        if crate::signals::token()?.is_cancelled() {
            // train said what finished; the report of an unfinished run would only repeat it.
            progress.clear();
            eprintln!("study interrupted: rerun the same command to resume it");
            return Ok(exit::FAILURE);
        }
        progress.note(&format!("== report: {name}"));
        let argv = vec![root.clone().into(), os("--out"), report.clone().into()];
        cmd_report::run(phase_args(argv)?)?;
        roots.push(reporting::compare::MethodRoot { name, root });
    }
    progress.note("== comparison");
    cmd_compare::write(&roots, &comparison_dir(out))?;
    progress.clear();
    outln!("study '{}' written to {}", study.name, out.display());
    if several {
        outln!("reports: {}", report.join("<method>/summary.md").display());
    } else {
        outln!("report: {}", report.join("summary.md").display());
    }
    outln!(
        "comparison: {}",
        comparison_dir(out).join("comparison.md").display()
    );
    Ok(train_code)
}

/// `DIR/comparison`.
fn comparison_dir(out: &std::path::Path) -> PathBuf {
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
}

/// Phase E for one method, through `train`'s own code.
#[allow(clippy::too_many_arguments)]
fn train_method(
    args: &Args,
    method: &Method,
    phase_c: &std::path::Path,
    phase_d: &std::path::Path,
    root: &std::path::Path,
    design: &[OsString],
    jobs: u32,
    progress: &Progress,
) -> anyhow::Result<u8> {
    let os = |s: &str| OsString::from(s);
    let mut argv = vec![
        os("--phase-c-root"),
        phase_c.into(),
        os("--phase-d-root"),
        phase_d.into(),
        os("--artifact-root"),
        root.into(),
        os("--jobs"),
        os(&jobs.to_string()),
    ];
    argv.extend(method.train_args()?.iter().map(|a| os(a)));
    argv.extend(design.iter().cloned());
    if let Some(trainer) = &args.trainer {
        argv.extend([os("--trainer"), trainer.clone().into()]);
    }
    if let Some(epochs) = args.epochs {
        argv.extend([os("--epochs"), os(&epochs.to_string())]);
    }
    if let Some(n) = args.n_groups {
        argv.extend([os("--n-groups"), os(&n.to_string())]);
    }
    if let Some(accelerator) = args.accelerator {
        argv.extend([os("--accelerator"), os(accelerator.as_str())]);
    }
    if args.dry_run {
        argv.push(os("--dry-run"));
    }
    if args.force {
        argv.push(os("--force"));
    }
    if let Some(timeout) = args.job_timeout {
        argv.extend([os("--job-timeout"), os(&runner::format_duration(timeout))]);
    }
    cmd_train::run(phase_args(argv)?, progress)
}
