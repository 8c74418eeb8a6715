//! Writing results to stdout, where a closed pipe (`dose-overlap ... | head`) is a clean exit.

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
        eprintln!("error: writing to stdout: {err}");
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
