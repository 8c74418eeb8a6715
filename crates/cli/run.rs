//! Running a plan's jobs and recording the run: what `train`, `collect`, `run-job` and `study`
//! share. No subcommand lives here; each `cmd_*` that runs or collects jobs takes it from here,
//! so that no command imports another for its machinery.
//!
//! `log.rs` is the command log (`training_cli.log`, `collect_cli.log`); `local.rs` runs jobs on
//! this machine with the manifest of the run in progress kept on disk; `finish.rs` turns the
//! results into the manifest, the skip summary and their lines; `collect.rs` gathers the
//! results of a plan run elsewhere (SLURM) and finishes it the same way.

mod collect;
mod finish;
mod local;
mod log;

pub use collect::{collect, collect_command, pending_without_lock};
pub use finish::{bundle_lines, finish_run, job_error_line};
pub use local::execute_local;
pub use log::CommandLog;
