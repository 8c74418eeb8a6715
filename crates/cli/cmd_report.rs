//! `dose-overlap report`: summary.md, metrics.csv, plots and pictures for an artifact root; for
//! a study folder, every method's report and the comparison (with replicates: each replicate's,
//! and the aggregate over them); for a comparison folder, the comparison again.

use crate::output::outln;
use crate::{cmd_compare, cmd_verify};
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
    #[command(flatten)]
    map: crate::map_args::MapArgs,
}

/// `report`'s settings (or built by `study`).
pub struct Options {
    /// An artifact root, a study folder or a comparison folder.
    pub artifact_root: PathBuf,
    /// `--out` (`None`: the default for the kind of folder).
    pub out: Option<PathBuf>,
    /// `--verify`.
    pub verify: bool,
    /// How the dose x overlap maps are drawn.
    pub map: reporting::map::MapSettings,
}

impl Args {
    /// Nothing to check: the folder is read by [`execute`].
    pub fn resolve(self) -> Options {
        Options {
            artifact_root: self.artifact_root,
            out: self.out,
            verify: self.verify,
            map: self.map.settings(),
        }
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<u8> {
    execute(&args.resolve())
}

/// Writes the report(s) for the folder; returns the exit code.
pub fn execute(options: &Options) -> anyhow::Result<u8> {
    if options.verify {
        let verify = cmd_verify::Options {
            root: options.artifact_root.clone(),
        };
        let code = cmd_verify::execute(&verify)?;
        if code != crate::exit::OK {
            crate::output::errln!(
                "error: {} does not verify (mismatches above); no report written",
                options.artifact_root.display()
            );
            return Ok(code);
        }
    }
    let dir = &options.artifact_root;
    match folder_kind(dir) {
        Some(FolderKind::Study) if !reporting::replicates::replicate_dirs(dir).is_empty() => {
            replicated_report(options)
        }
        Some(FolderKind::Study) => {
            let methods = folder_methods(dir, FolderKind::Study)
                .with_context(|| format!("reporting on {}", dir.display()))?;
            let base = options.out.clone().unwrap_or_else(|| dir.join("report"));
            let several = methods.len() > 1;
            // A study with a method root that did not finish is no success either (as for
            // an artifact root): the reports are written, the exit code says so.
            let mut code = crate::exit::OK;
            for m in &methods {
                let out = if several {
                    base.join(reporting::compare::slug(&m.name))
                } else {
                    base.clone()
                };
                code = code.max(root_report(&m.root, &out, &options.map)?);
            }
            let comparison = match &options.out {
                Some(out) => out.join("comparison"),
                None => dir.join("comparison"),
            };
            let compared = cmd_compare::execute(&cmd_compare::Options {
                methods,
                out: comparison,
                map: options.map,
            })?;
            Ok(code.max(compared))
        }
        Some(FolderKind::Comparison) => {
            let methods = folder_methods(dir, FolderKind::Comparison)
                .with_context(|| format!("reporting on {}", dir.display()))?;
            let out = options.out.clone().unwrap_or_else(|| dir.clone());
            cmd_compare::execute(&cmd_compare::Options {
                methods,
                out,
                map: options.map,
            })
        }
        // An artifact root, or nothing known: the artifact root's error names what is missing.
        _ => {
            let out = options.out.clone().unwrap_or_else(|| dir.join("report"));
            root_report(dir, &out, &options.map)
        }
    }
}

/// A study with replicates: each replicate's reports (as a study's), then the aggregate over
/// them in `replicates/` (beside the replicates' folders, or under `--out`).
fn replicated_report(options: &Options) -> anyhow::Result<u8> {
    let dir = &options.artifact_root;
    let study = reporting::replicates::read_study(dir)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reporting on {}", dir.display()))?;
    let mut code = crate::exit::OK;
    for (r, rdir) in reporting::replicates::replicate_dirs(dir) {
        outln!("== replicate {r}");
        let name = rdir.file_name().map(PathBuf::from).unwrap_or_default();
        code = code.max(execute(&Options {
            artifact_root: rdir,
            out: options.out.as_ref().map(|o| o.join(name)),
            verify: false,
            map: options.map,
        })?);
    }
    let replicates = reporting::replicates::read_replicates(dir)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reading the replicates of {}", dir.display()))?;
    let out = options
        .out
        .as_ref()
        .unwrap_or(dir)
        .join(reporting::replicates::REPLICATES_DIR);
    let written = reporting::replicates::write(
        &replicates,
        &study.name,
        study.replicates,
        &options.map,
        &out,
    )
    .with_context(|| format!("aggregating the replicates of {}", dir.display()))?;
    for name in &written.files {
        outln!("wrote {}", out.join(name).display());
    }
    for (text, verdict) in &written.criteria {
        let mark = match verdict {
            reporting::replicates::Verdict::Pass => "x",
            reporting::replicates::Verdict::Fail => " ",
            reporting::replicates::Verdict::Unresolved => "?",
        };
        outln!("[{mark}] {text}");
    }
    if replicates.len() != study.replicates as usize {
        crate::output::errln!(
            "warning: the study asks for {} replicate(s), {} are here: rerun `dose-overlap \
             study` to finish it",
            study.replicates,
            replicates.len()
        );
        code = code.max(crate::exit::FAILURE);
    }
    Ok(code)
}

fn root_report(root: &Path, out: &Path, map: &reporting::map::MapSettings) -> anyhow::Result<u8> {
    let report = reporting::report::write_report_with(root, out, map)
        .with_context(|| format!("reporting on {}", root.display()))?;
    for name in &report.files {
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
        crate::output::errln!("warning: {note}");
        return Ok(crate::exit::FAILURE);
    }
    Ok(crate::exit::OK)
}
