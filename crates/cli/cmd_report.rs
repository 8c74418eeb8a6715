//! `dose-overlap report`: summary.md, metrics.csv and plots for an artifact root.

use crate::output::outln;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `dose-overlap report`.
#[derive(clap::Args)]
pub struct Args {
    /// Artifact root of a `train` run (holds training_manifest.json).
    artifact_root: PathBuf,
    /// Where to write the report [default: ARTIFACT_ROOT/report].
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
    let out = args
        .out
        .unwrap_or_else(|| args.artifact_root.join("report"));
    let report = reporting::report::write_report(&args.artifact_root, &out)
        .with_context(|| format!("reporting on {}", args.artifact_root.display()))?;
    for (name, _) in &report.files {
        outln!("wrote {}", out.join(name).display());
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
