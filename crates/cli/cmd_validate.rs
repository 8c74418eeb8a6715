//! `dose-overlap validate`: checks NPZ files against the DATA-001 contract, one report per file.

use std::path::PathBuf;

use npz_contract::profile::{Profile, validate_profile};
use npz_contract::{ValidateOptions, ValidationReport};

use crate::output::outln;

/// Arguments of `dose-overlap validate`.
#[derive(clap::Args)]
pub struct Args {
    /// NPZ files to check (every file is checked, whatever the others give).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Gridsize the data will be grouped with; above 1 it needs --neighbor-count >= gridsize²
    /// (OVERSAMPLING-001).
    #[arg(long, value_name = "G", value_parser = clap::value_parser!(u32).range(1..))]
    gridsize: Option<u32>,
    /// K, the neighbours each group is drawn from.
    #[arg(long, value_name = "K")]
    neighbor_count: Option<u32>,
    /// Check keys, dtypes and shapes only; read no array data (fast on any file size).
    #[arg(long)]
    header_only: bool,
    /// Also check what a consumer needs beyond DATA-001: `ptychopinn` (start coordinates,
    /// N in {64, 128, 256}, `nphotons` in `_metadata`).
    #[arg(long, value_enum, default_value_t = ProfileArg::Data001)]
    profile: ProfileArg,
    /// Print a JSON array of {"path", "valid", "errors", "warnings"}, one object per file.
    #[arg(long)]
    json: bool,
}

/// `--profile`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ProfileArg {
    /// DATA-001 only.
    #[value(name = "data-001")]
    Data001,
    /// DATA-001 plus PtychoPINN's loader and model.
    Ptychopinn,
}

/// One report as JSON, keys in the documented order.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    path: String,
    valid: bool,
    errors: &'a [String],
    warnings: &'a [String],
}

/// Runs the command: exit 0 when every file is valid, 1 when any is not.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let options = ValidateOptions {
        gridsize: args.gridsize,
        neighbor_count: args.neighbor_count,
        header_only: args.header_only,
    };
    let profile = match args.profile {
        ProfileArg::Data001 => Profile::Data001,
        ProfileArg::Ptychopinn => Profile::Ptychopinn,
    };
    let reports: Vec<ValidationReport> = args
        .files
        .iter()
        .map(|f| validate_profile(f, &options, profile))
        .collect();
    if args.json {
        let json: Vec<JsonReport> = reports
            .iter()
            .map(|r| JsonReport {
                path: r.path.display().to_string(),
                valid: r.valid,
                errors: &r.errors,
                warnings: &r.warnings,
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for r in &reports {
            outln!("{}", render(r, args.header_only));
        }
        if reports.len() > 1 {
            let invalid = reports.iter().filter(|r| !r.valid).count();
            outln!(
                "{} files: {} valid, {} invalid",
                reports.len(),
                reports.len() - invalid,
                invalid
            );
        }
    }
    Ok(if reports.iter().all(|r| r.valid) {
        crate::exit::OK
    } else {
        crate::exit::FAILURE
    })
}

/// `path: valid|INVALID (counts)` then one indented line per message.
fn render(r: &ValidationReport, header_only: bool) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let verdict = if r.valid { "valid" } else { "INVALID" };
    let mut text = format!("{}: {verdict}", r.path.display());
    if header_only {
        text.push_str(" [header checks only]");
    }
    if !r.errors.is_empty() || !r.warnings.is_empty() {
        text.push_str(&format!(
            " ({}, {})",
            plural(r.errors.len(), "error"),
            plural(r.warnings.len(), "warning")
        ));
    }
    for e in &r.errors {
        text.push_str(&format!("\n  error: {e}"));
    }
    for w in &r.warnings {
        text.push_str(&format!("\n  warning: {w}"));
    }
    text
}
