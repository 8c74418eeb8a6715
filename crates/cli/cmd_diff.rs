//! `dose-overlap diff`: compares two artifact roots (jobs, skips, results, digests, metrics), or
//! two study or comparison folders (each method's run, the Phase C/D data by SHA-256, and the
//! resolved study).

use crate::output::outln;
use reporting::review::{FolderKind, folder_kind};
use std::path::PathBuf;

/// Arguments of `dose-overlap diff`.
#[derive(clap::Args)]
pub struct Args {
    /// The first run (A): an artifact root, a study folder or a comparison folder.
    run_a: PathBuf,
    /// The second run (B), of the same kind.
    run_b: PathBuf,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
    /// Numbers within this tolerance (absolute, or relative to the larger magnitude) are equal.
    #[arg(long, default_value_t = 1e-6, value_name = "T")]
    tolerance: f64,
}

/// Runs the command: exit 0 when equal within tolerance, 1 when different.
pub fn run(args: Args) -> anyhow::Result<u8> {
    anyhow::ensure!(
        args.tolerance.is_finite() && args.tolerance >= 0.0,
        "--tolerance must be a non-negative number, got {}",
        args.tolerance
    );
    let (ka, kb) = (folder_kind(&args.run_a), folder_kind(&args.run_b));
    let equal = match (ka, kb) {
        (Some(ka @ (FolderKind::Study | FolderKind::Comparison)), Some(kb))
        | (Some(ka), Some(kb @ (FolderKind::Study | FolderKind::Comparison))) => {
            anyhow::ensure!(
                kb != FolderKind::ArtifactRoot && ka != FolderKind::ArtifactRoot,
                "{} and {} are not of one kind (an artifact root and a study or comparison \
                 folder): give two artifact roots, or two study or comparison folders",
                args.run_a.display(),
                args.run_b.display()
            );
            let replicated =
                |d: &std::path::Path| !reporting::replicates::replicate_dirs(d).is_empty();
            if ka == FolderKind::Study
                && kb == FolderKind::Study
                && (replicated(&args.run_a) || replicated(&args.run_b))
            {
                let diff =
                    reporting::review::diff_replicated(&args.run_a, &args.run_b, args.tolerance)?;
                if args.json {
                    outln!("{}", diff.to_json());
                } else {
                    crate::output::emit(&diff.to_text());
                }
                return Ok(if diff.equal {
                    crate::exit::OK
                } else {
                    crate::exit::FAILURE
                });
            }
            let diff =
                reporting::review::diff_folders(&args.run_a, ka, &args.run_b, kb, args.tolerance)?;
            if args.json {
                outln!("{}", diff.to_json());
            } else {
                crate::output::emit(&diff.to_text());
            }
            diff.equal
        }
        // Artifact roots, or something unknown: its error names the missing manifest.
        _ => {
            let diff = reporting::diff::diff_runs(&args.run_a, &args.run_b, args.tolerance)?;
            if args.json {
                outln!("{}", diff.to_json());
            } else {
                crate::output::emit(&diff.to_text());
            }
            diff.equal
        }
    };
    Ok(if equal {
        crate::exit::OK
    } else {
        crate::exit::FAILURE
    })
}
