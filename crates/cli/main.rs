//! The `dose-overlap` command: one subcommand per phase of a dose x overlap study.
//!
//! Each subcommand lives in its own `cmd_*.rs` file with its `Args` and a `run` function that
//! returns the process exit code; errors bubble up as `anyhow` chains and exit with
//! [`exit::INPUT_ERROR`]. The phases other commands compose (`generate`, `overlap`, `train`,
//! `report`, `compare`, `verify`) resolve their `Args` once into typed `Options` and do their
//! work in `execute(&Options)`; `study` (and `report`) build those `Options` directly. What
//! several commands share lives outside the `cmd_*` files (`run/`: running and collecting a
//! plan's jobs), so that no command imports another for its machinery.

mod budget;
mod cmd_collect;
mod cmd_compare;
mod cmd_design;
mod cmd_diff;
mod cmd_generate;
mod cmd_overlap;
mod cmd_report;
mod cmd_run_job;
mod cmd_score;
mod cmd_study;
mod cmd_train;
mod cmd_validate;
mod cmd_verify;
mod exit;
mod map_args;
mod methods;
mod output;
mod paths;
mod progress;
mod run;
mod signals;
mod slurm_resources;
mod study_args;
mod study_prep;
mod study_resume;
mod study_slurm;

use clap::{Parser, Subcommand};

/// Synthetic ptychography studies of photon dose x scan overlap.
#[derive(Parser)]
#[command(name = "dose-overlap", version, about, propagate_version = true)]
struct Cli {
    /// Silence progress output on stderr (results still go to stdout and files).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print (and check) the study design.
    Design(cmd_design::Args),
    /// Check NPZ files against the DATA-001 contract.
    Validate(cmd_validate::Args),
    /// Phase C: simulate one dataset per dose.
    Generate(cmd_generate::Args),
    /// Phase D: derive dense and sparse overlap views from Phase C data.
    Overlap(cmd_overlap::Args),
    /// Phase E: enumerate and run the training job matrix.
    Train(cmd_train::Args),
    /// Run exactly one job of a resolved plan (used by cluster executors).
    RunJob(cmd_run_job::Args),
    /// Merge per-job results into the training manifest and skip summary.
    Collect(cmd_collect::Args),
    /// Score a reconstruction NPZ against a DATA-001 truth file (the metrics of a job).
    Score(cmd_score::Args),
    /// Write the study report (summary.md, metrics.csv, plots) for an artifact root.
    Report(cmd_report::Args),
    /// Compare two artifact roots (or study or comparison folders) the way a reviewer needs.
    Diff(cmd_diff::Args),
    /// Compare methods' artifact roots over the same Phase C/D data (tables, plots, pictures).
    Compare(cmd_compare::Args),
    /// Run a whole study: design check, Phase C, Phase D, training and report.
    Study(cmd_study::Args),
    /// Check an artifact root or study folder: manifest, results, bundles and inputs agree.
    Verify(cmd_verify::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let progress = progress::Progress::new(cli.quiet);
    let result = match cli.command {
        Command::Design(args) => cmd_design::run(args),
        Command::Validate(args) => cmd_validate::run(args),
        Command::Generate(args) => cmd_generate::run(args, &progress),
        Command::Overlap(args) => cmd_overlap::run(args, &progress),
        Command::Train(args) => cmd_train::run(args, &progress),
        Command::RunJob(args) => cmd_run_job::run(args, &progress),
        Command::Collect(args) => cmd_collect::run(args),
        Command::Score(args) => cmd_score::run(args),
        Command::Report(args) => cmd_report::run(args),
        Command::Diff(args) => cmd_diff::run(args),
        Command::Compare(args) => cmd_compare::run(args),
        Command::Study(args) => cmd_study::run(args, &progress),
        Command::Verify(args) => cmd_verify::run(args),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            progress.clear();
            crate::output::errln!("error: {}", one_line(&err));
            std::process::ExitCode::from(error_code(&err))
        }
    }
}

/// The exit code of an error: a full disk (or quota) is no usage error (2) but a failure of
/// the run (1); everything else that ends a command early is an input error.
fn error_code(err: &anyhow::Error) -> u8 {
    let full = err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        })
    });
    if full {
        exit::FAILURE
    } else {
        exit::INPUT_ERROR
    }
}

/// The error chain as one line, `context: cause: cause`, each cause once: some library errors
/// already end with their source's text (an I/O error's "No space left on device").
fn one_line(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 26, finding 14: a full disk exited 2, the code of a usage error.
    #[test]
    fn a_full_disk_is_a_failure_not_a_usage_error() {
        let full = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::StorageFull))
            .context("writing the report");
        assert_eq!(error_code(&full), exit::FAILURE);
        let missing = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context("reading the artifact root");
        assert_eq!(error_code(&missing), exit::INPUT_ERROR);
    }
}
