//! Exit codes of every subcommand, as the contracts name them.

/// Everything selected ended well (skips allowed unless strict).
pub const OK: u8 = 0;
/// At least one job failed, a file is invalid, or two runs differ.
pub const FAILURE: u8 = 1;
/// A usage or input error: bad flags, unreadable roots, nothing matches. Clap exits 2 too.
pub const INPUT_ERROR: u8 = 2;
