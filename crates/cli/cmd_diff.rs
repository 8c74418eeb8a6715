//! `dose-overlap diff`: compares two artifact roots (jobs, skips, results, digests, metrics).

use crate::output::outln;
use std::path::PathBuf;

/// Arguments of `dose-overlap diff`.
#[derive(clap::Args)]
pub struct Args {
    /// Artifact root of the first run (A).
    run_a: PathBuf,
    /// Artifact root of the second run (B).
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
    let diff = reporting::diff::diff_runs(&args.run_a, &args.run_b, args.tolerance)?;
    if args.json {
        outln!("{}", diff.to_json());
    } else {
        crate::output::emit(&diff.to_text());
    }
    Ok(if diff.equal {
        crate::exit::OK
    } else {
        crate::exit::FAILURE
    })
}
