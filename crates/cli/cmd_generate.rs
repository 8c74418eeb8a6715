//! `dose-overlap generate`: Phase C, one simulated dataset per dose
//! (`<out>/dose_<int>/patched_{train,test}.npz`), each validated against DATA-001.

use crate::exit;
use crate::output::outln;
use crate::progress::Progress;
use crate::study_args::StudyArgs;
use anyhow::Context;
use std::path::PathBuf;
use study_design::{Design, Study};

/// Arguments of `dose-overlap generate`.
#[derive(clap::Args)]
pub struct Args {
    /// Phase C root to write: `dose_<int>/patched_{train,test}.npz` for every dose.
    #[arg(long, value_name = "PHASE_C_ROOT")]
    out: PathBuf,
    #[command(flatten)]
    study: StudyArgs,
    /// Object and probe (`objectGuess`, `probeGuess`, and `xcoords`/`ycoords` if present) from
    /// this NPZ instead of the built-in ones (overrides the study's simulation.base_npz).
    #[arg(long, value_name = "FILE")]
    base_npz: Option<PathBuf>,
    /// Generate only this dose (photons per pattern, e.g. 1e4); the noise is the same as in a
    /// full run for that dose.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    dose: Option<f64>,
    /// Worker threads (default: all cores). The output bytes do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Refuse (exit 2, before any work) when the estimated memory exceeds this (bytes, or
    /// e.g. 512M, 8G). Default: the memory available on this machine.
    #[arg(long, value_name = "SIZE", value_parser = crate::budget::parse_size)]
    max_memory: Option<u64>,
}

/// `generate`'s settings, resolved from [`Args`] once (or built by `study`).
pub struct Options {
    /// The Phase C root to write.
    pub out: PathBuf,
    /// The study.
    pub study: Study,
    /// `--base-npz`, checked to be a file (`None`: the study's `simulation.base_npz`, if any).
    pub base_npz: Option<PathBuf>,
    /// `--dose`, a positive number (`None`: every dose of the design).
    pub dose: Option<f64>,
    /// Worker threads.
    pub threads: usize,
    /// `--max-memory`.
    pub max_memory: Option<u64>,
}

impl Args {
    /// Loads the study and checks the flags, in the order the command always has.
    pub fn resolve(self, progress: &Progress) -> anyhow::Result<Options> {
        let study = self.study.load()?;
        if let Some(dose) = self.dose {
            if !(dose.is_finite() && dose > 0.0) {
                anyhow::bail!(
                    "--dose {dose} is not a positive number of photons (e.g. --dose 1e4)"
                );
            }
            let folder = Design::dose_dir_name(dose);
            if !study
                .design
                .dose_list
                .iter()
                .any(|d| Design::dose_dir_name(*d) == folder)
            {
                progress.note(&format!(
                    "note: --dose {dose} is not in the design's dose_list; `train` will not look for {folder}"
                ));
            }
        }
        if let Some(base) = &self.base_npz
            && !base.is_file()
        {
            anyhow::bail!(
                "--base-npz {} is not a file: give an NPZ with objectGuess and probeGuess",
                base.display()
            );
        }
        let threads = self.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            |t| t as usize,
        );
        Ok(Options {
            out: self.out,
            study,
            base_npz: self.base_npz,
            dose: self.dose,
            threads,
            max_memory: self.max_memory,
        })
    }
}

/// Runs the command.
pub fn run(args: Args, progress: &Progress) -> anyhow::Result<u8> {
    // Ctrl-C / SIGTERM from the start: a signal is then always a clean stop, never a kill.
    crate::signals::token()?;
    execute(&args.resolve(progress)?, progress)
}

/// Phase C: refuses a study whose base NPZ is missing or whose memory estimate is too high,
/// then simulates and writes every dose; returns the exit code.
pub fn execute(options: &Options, progress: &Progress) -> anyhow::Result<u8> {
    crate::signals::token()?;
    let study = &options.study;
    // The study file's base_npz gets the same check as --base-npz.
    if options.base_npz.is_none()
        && let Some(base) = &study.simulation.base_npz
        && !base.is_file()
    {
        anyhow::bail!(
            "simulation.base_npz {} (in the study file) is not a file: give an NPZ with \
             objectGuess and probeGuess",
            base.display()
        );
    }
    crate::budget::check(
        study,
        options.dose.map(|_| 1),
        options.base_npz.as_deref(),
        options.max_memory,
    )?;
    let out = &options.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the Phase C root {}", out.display()))?;
    // One dose's run sweeps its own folder only: runs of other doses may be writing theirs
    // (a study's SLURM tasks, on other nodes, where their pids mean nothing).
    let sweep = match options.dose {
        Some(dose) => out.join(Design::dose_dir_name(dose)),
        None => out.clone(),
    };
    crate::signals::sweep_stale_temps(&sweep, &|line| progress.note(line));
    // SIGTERM / Ctrl-C: temporary files removed, what finished said, exit 1.
    let guard = crate::signals::PhaseGuard::watch("Phase C (generate)")?;
    let generate_options = generate::GenerateOptions {
        doses: options.dose.map(|d| vec![d]),
        base_npz: options.base_npz.clone(),
        threads: options.threads,
        fft_path: None,
    };
    let n_doses = generate_options
        .doses
        .as_ref()
        .map_or(study.design.dose_list.len(), Vec::len);
    progress.stage("generate", 1 + n_doses as u64);
    let on_event = |event: generate::Event| match event {
        generate::Event::Scene {
            n_positions,
            source,
        } => progress.note(&format!(
            "generate: {n_positions} positions, object and probe {source}"
        )),
        generate::Event::Simulating { .. } => {}
        generate::Event::Simulated {
            n_positions,
            n_doses,
        } => progress.step(&format!(
            "simulated {n_positions} positions x {n_doses} dose(s)"
        )),
        generate::Event::Wrote(d) => {
            guard.finished(Design::dose_dir_name(d.dose));
            progress.step(&format!(
                "{}: wrote and validated",
                Design::dose_dir_name(d.dose)
            ))
        }
    };
    let summary =
        generate::generate(study, out, &generate_options, &on_event).context("Phase C failed")?;
    progress.clear();
    let (h, w) = summary.object_shape;
    let split = &summary.split;
    outln!(
        "Phase C: {} positions, N = {}, object {h} x {w}, FFT {}",
        summary.n_positions,
        summary.patch,
        summary.fft_path.name()
    );
    outln!(
        "split along {} at {:.3}: train {}, test {}",
        match split.axis {
            study_design::SplitAxis::Y => "y",
            study_design::SplitAxis::X => "x",
        },
        split.point,
        split.train.len(),
        split.test.len()
    );
    for d in &summary.doses {
        let dir = d.train.parent().unwrap_or(out);
        outln!(
            "{:<14} s = {:<10.6} mean counts/pattern {:>12.1}  {:>7.1} MB  {}",
            Design::dose_dir_name(d.dose),
            d.intensity_scale,
            d.mean_counts,
            d.bytes as f64 / 1e6,
            dir.join("patched_{train,test}.npz").display()
        );
    }
    Ok(exit::OK)
}
