//! `dose-overlap overlap`: Phase D, the dense and sparse views of every dose of a Phase C tree.

use crate::exit;
use crate::output::outln;
use crate::progress::Progress;
use crate::study_args::StudyArgs;
use anyhow::Context;
use std::path::PathBuf;
use study_design::{Design, Study};

/// Arguments of `dose-overlap overlap`.
#[derive(clap::Args)]
pub struct Args {
    /// Phase C root: `dose_<int>/patched_{train,test}.npz` for every dose of the design.
    #[arg(long, value_name = "DIR")]
    phase_c_root: PathBuf,
    /// Phase D root to write: `dose_<int>/<view>/<view>_{train,test}.npz` and
    /// `dose_<int>/overlap_report.json`.
    #[arg(long, value_name = "PHASE_D_ROOT")]
    out: PathBuf,
    #[command(flatten)]
    study: StudyArgs,
}

/// `overlap`'s settings, resolved from [`Args`] once (or built by `study`).
pub struct Options {
    /// The Phase C root to read.
    pub phase_c_root: PathBuf,
    /// The Phase D root to write.
    pub out: PathBuf,
    /// The study.
    pub study: Study,
    /// Only this dose of the design (`None`: every dose): what one task of a study's SLURM
    /// `prep` array runs.
    pub dose: Option<f64>,
}

impl Args {
    /// Loads the study.
    pub fn resolve(self) -> anyhow::Result<Options> {
        Ok(Options {
            study: self.study.load()?,
            phase_c_root: self.phase_c_root,
            out: self.out,
            dose: None,
        })
    }
}

/// Runs the command.
pub fn run(args: Args, progress: &Progress) -> anyhow::Result<u8> {
    // Ctrl-C / SIGTERM from the start: a signal is then always a clean stop, never a kill.
    crate::signals::token()?;
    execute(&args.resolve()?, progress)
}

/// Phase D: every dose is attempted; a dose that fails is reported on stderr and the command
/// exits 2 after the others are done.
pub fn execute(options: &Options, progress: &Progress) -> anyhow::Result<u8> {
    crate::signals::token()?;
    let design = &options.study.design;
    let (phase_c_root, out) = (&options.phase_c_root, &options.out);
    if !phase_c_root.is_dir() {
        anyhow::bail!(
            "Phase C root {} is not a folder: run `dose-overlap generate --out {}` first, or \
             check --phase-c-root",
            phase_c_root.display(),
            phase_c_root.display()
        );
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the Phase D root {}", out.display()))?;
    let doses = match options.dose {
        Some(dose) => vec![dose],
        None => design.dose_list.clone(),
    };
    // One dose's run sweeps its own folder only (see `generate`).
    let sweep = match options.dose {
        Some(dose) => out.join(Design::dose_dir_name(dose)),
        None => out.clone(),
    };
    crate::signals::sweep_stale_temps(&sweep, &|line| progress.note(line));
    // SIGTERM / Ctrl-C: temporary files removed, what finished said, exit 1.
    let guard = crate::signals::PhaseGuard::watch("Phase D (overlap)")?;

    progress.stage("overlap", doses.len() as u64);
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for &dose in &doses {
        let dose_dir = Design::dose_dir_name(dose);
        match overlap::run_dose(phase_c_root, out, dose, design, &|line| progress.note(line)) {
            Ok(outcome) => {
                guard.finished(dose_dir.clone());
                rows.push((dose_dir.clone(), outcome.report))
            }
            Err(err) => failures.push(format!("{dose_dir}: {err}")),
        }
        progress.step(&dose_dir);
    }
    drop(guard);
    progress.clear();

    let (mut accepted, mut rejected) = (0, 0);
    if !rows.is_empty() {
        outln!(
            "{:<12} {:<10} {:>8}  {:<8}  {:>12}  {:>12}  {:<8}  disc overlap (train/test)",
            "dose",
            "view",
            "S (px)",
            "status",
            "train kept",
            "test kept",
            "strategy"
        );
    }
    for (dose_dir, report) in &rows {
        for view in &report.views {
            let (train, test) = (&view.splits.train, &view.splits.test);
            if view.accepted {
                accepted += 1;
            } else {
                rejected += 1;
            }
            outln!(
                "{:<12} {:<10} {:>8}  {:<8}  {:>12}  {:>12}  {:<8}  {:.3}/{:.3}",
                dose_dir,
                view.view,
                view.spacing_threshold,
                if view.accepted {
                    "accepted"
                } else {
                    "rejected"
                },
                format!("{}/{}", train.n_accepted, train.n_total),
                format!("{}/{}", test.n_accepted, test.n_total),
                view.selection_strategy,
                train.mean_disc_overlap,
                test.mean_disc_overlap
            );
            if let Some(t) = &view.overlap_target {
                outln!(
                    "  target overlap {} ± {}: realised {:.3} (train {:.3}, test {:.3}) at \
                     S = {:.2} px; exposures per pixel {:.2}/{:.2}",
                    t.overlap,
                    t.tolerance,
                    t.realised_overlap,
                    t.realised_train,
                    t.realised_test,
                    view.spacing_threshold,
                    t.exposures_per_pixel.train,
                    t.exposures_per_pixel.test
                );
            }
            if let Some(reason) = &view.reason {
                outln!("  rejected: {reason}");
            }
        }
    }
    outln!(
        "Phase D: {} of {} dose(s) done, {accepted} view(s) accepted, {rejected} rejected; \
         reports in {}",
        rows.len(),
        doses.len(),
        out.join("dose_<int>")
            .join(overlap::OVERLAP_REPORT)
            .display()
    );
    for warning in rows.iter().flat_map(|(_, r)| &r.warnings) {
        crate::output::errln!("warning: {warning}");
    }
    if failures.is_empty() {
        Ok(exit::OK)
    } else {
        for failure in &failures {
            crate::output::errln!("error: {failure}");
        }
        Ok(exit::INPUT_ERROR)
    }
}
