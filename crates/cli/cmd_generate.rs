//! `dose-overlap generate`: Phase C, one simulated dataset per dose
//! (`<out>/dose_<int>/patched_{train,test}.npz`), each validated against DATA-001.

use crate::exit;
use crate::output::outln;
use crate::study_args::StudyArgs;
use anyhow::Context;
use std::path::PathBuf;
use study_design::Design;

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

/// Runs the command.
pub fn run(args: Args, progress: &crate::progress::Progress) -> anyhow::Result<u8> {
    let study = args.study.load()?;
    if let Some(dose) = args.dose {
        if !(dose.is_finite() && dose > 0.0) {
            anyhow::bail!("--dose {dose} is not a positive number of photons (e.g. --dose 1e4)");
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
    if let Some(base) = &args.base_npz
        && !base.is_file()
    {
        anyhow::bail!(
            "--base-npz {} is not a file: give an NPZ with objectGuess and probeGuess",
            base.display()
        );
    }
    // The study file's base_npz gets the same check as --base-npz.
    if args.base_npz.is_none()
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
        &study,
        args.dose.map(|_| 1),
        args.base_npz.as_deref(),
        args.max_memory,
    )?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating the Phase C root {}", args.out.display()))?;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let options = generate::GenerateOptions {
        doses: args.dose.map(|d| vec![d]),
        base_npz: args.base_npz.clone(),
        threads,
        fft_path: None,
    };
    let n_doses = options
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
        generate::Event::Wrote(d) => progress.step(&format!(
            "{}: wrote and validated",
            Design::dose_dir_name(d.dose)
        )),
    };
    let summary =
        generate::generate(&study, &args.out, &options, &on_event).context("Phase C failed")?;
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
        let dir = d.train.parent().unwrap_or(&args.out);
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
