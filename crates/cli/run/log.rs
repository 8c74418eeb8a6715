//! The command's own log: its stdout and stderr lines, also written to a file under the
//! artifact root, with the command line first and the exit code last.

use crate::exit;
use crate::output::outln;
use crate::progress::Progress;
use anyhow::Context;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// The command's stdout and stderr, also written to a log file under the artifact root.
pub struct CommandLog {
    file: Mutex<Option<File>>,
}

impl CommandLog {
    /// Creates (truncates) the log and writes the command line as its first line.
    pub fn create(path: &Path) -> anyhow::Result<CommandLog> {
        // Never through a symlink planted at its path (the link is replaced, not followed).
        let mut file = runner::create_fresh(path)
            .with_context(|| format!("cannot create the command log {}", path.display()))?;
        let argv: Vec<String> = std::env::args_os()
            .map(|a| runner::shell::shell_word(&a.to_string_lossy()))
            .collect();
        writeln!(file, "$ {}", argv.join(" "))
            .with_context(|| format!("cannot write the command log {}", path.display()))?;
        Ok(CommandLog {
            file: Mutex::new(Some(file)),
        })
    }

    fn write(&self, stream: &str, line: &str) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // The log is a convenience copy: failing to write it must not fail the run.
        // One write per line (`writeln!` on a File makes one per piece).
        if let Some(f) = file.as_mut()
            && f.write_all(format!("[{stream}] {line}\n").as_bytes())
                .is_err()
        {
            *file = None;
        }
    }

    /// A result line: stdout and the log.
    pub fn out(&self, line: &str) {
        outln!("{line}");
        self.write("stdout", line);
    }

    /// Information: progress display (stderr) and the log.
    pub fn note(&self, progress: &Progress, line: &str) {
        progress.note(line);
        self.write("stderr", line);
    }

    /// A progress step: display and log.
    pub fn step(&self, progress: &Progress, line: &str) {
        progress.step(line);
        self.write("stderr", line);
    }

    /// A problem: always on stderr (even with --quiet) and in the log.
    pub fn error(&self, progress: &Progress, line: &str) {
        progress.clear();
        crate::output::errln!("{line}");
        self.write("stderr", line);
    }

    /// Records how the command ended.
    pub fn finish(&self, result: &anyhow::Result<u8>) {
        match result {
            Ok(code) => self.write("exit", &code.to_string()),
            Err(err) => {
                self.write("stderr", &format!("error: {err:#}"));
                self.write("exit", &exit::INPUT_ERROR.to_string());
            }
        }
    }
}
