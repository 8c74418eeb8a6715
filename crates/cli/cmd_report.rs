//! `dose-overlap report`: summary.md, metrics.csv, plots and pictures for an artifact root; for
//! a study folder, every method's report and the comparison; for a comparison folder, the
//! comparison again.

use crate::output::outln;
use anyhow::Context;
use reporting::review::{FolderKind, folder_kind, folder_methods};
use std::path::{Path, PathBuf};

/// Arguments of `dose-overlap report`.
#[derive(clap::Args)]
pub struct Args {
    /// Artifact root of a `train` run (holds training_manifest.json), a study folder (holds
    /// study.json) or a comparison folder (holds comparison_manifest.json).
    artifact_root: PathBuf,
    /// Where to write the report [default: ARTIFACT_ROOT/report; a study's DIR/report and
    /// DIR/comparison; a comparison folder itself].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run `dose-overlap verify` on the artifact root first; no report when it finds a mismatch.
    #[arg(long)]
    verify: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.verify {
        let code = crate::cmd_verify::verify(&args.artifact_root)?;
        if code != crate::exit::OK {
            eprintln!(
                "error: {} does not verify (mismatches above); no report written",
                args.artifact_root.display()
            );
            return Ok(code);
        }
    }
    let dir = &args.artifact_root;
    match folder_kind(dir) {
        Some(FolderKind::Study) => {
            let methods = folder_methods(dir, FolderKind::Study)
                .with_context(|| format!("reporting on {}", dir.display()))?;
            let base = args.out.clone().unwrap_or_else(|| dir.join("report"));
            let several = methods.len() > 1;
            for m in &methods {
                let out = if several {
                    base.join(reporting::compare::slug(&m.name))
                } else {
                    base.clone()
                };
                root_report(&m.root, &out)?;
            }
            let comparison = match &args.out {
                Some(out) => out.join("comparison"),
                None => dir.join("comparison"),
            };
            crate::cmd_compare::write(&methods, &comparison)
        }
        Some(FolderKind::Comparison) => {
            let methods = folder_methods(dir, FolderKind::Comparison)
                .with_context(|| format!("reporting on {}", dir.display()))?;
            let out = args.out.clone().unwrap_or_else(|| dir.clone());
            crate::cmd_compare::write(&methods, &out)
        }
        // An artifact root, or nothing known: the artifact root's error names what is missing.
        _ => {
            let out = args.out.clone().unwrap_or_else(|| dir.join("report"));
            root_report(dir, &out)
        }
    }
}

fn root_report(root: &Path, out: &Path) -> anyhow::Result<u8> {
    let report = reporting::report::write_report(root, out)
        .with_context(|| format!("reporting on {}", root.display()))?;
    for (name, _) in &report.files {
        outln!("wrote {}", out.join(name).display());
    }
    if !report.pictures.is_empty() {
        outln!(
            "wrote {} picture(s) in {}",
            report.pictures.len(),
            out.join("pictures").display()
        );
    }
    for (text, ok) in &report.criteria {
        outln!("[{}] {text}", if *ok { "x" } else { " " });
    }
    // A report of a run that did not finish is written (it shows what there is) but is no
    // success: its results are not final.
    if let Some(note) = report.unfinished.as_deref() {
        eprintln!("warning: {note}");
        return Ok(crate::exit::FAILURE);
    }
    Ok(crate::exit::OK)
}
