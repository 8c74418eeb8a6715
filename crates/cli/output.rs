//! Writing results to stdout, where a closed pipe (`dose-overlap ... | head`) is a clean exit,
//! and messages to stderr, where a write that fails (stderr on a full disk, a closed pipe) is
//! dropped: the exit code still tells (`eprintln!` would panic, exit 101).

use std::io::Write;

/// Writes `text` to stdout as is; exits 0 at once if the reader went away.
pub fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(err) = result {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        warn(&format!("error: writing to stdout: {err}\n"));
        std::process::exit(i32::from(crate::exit::INPUT_ERROR));
    }
}

/// Like `println!`, through [`emit`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::emit(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// Writes `text` to stderr as is; a failure to write it is dropped (never a panic): the exit
/// code is what a caller can rely on.
pub fn warn(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush());
}

/// Like `eprintln!`, through [`warn`]: never panics when stderr cannot be written.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::warn(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use errln;
