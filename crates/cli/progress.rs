//! Progress on stderr: a bar on a terminal, plain lines otherwise, nothing with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// The one progress display of a command.
pub struct Progress {
    quiet: bool,
    terminal: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// A display that draws bars only when stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            terminal: std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
        }
    }

    /// Starts a stage of `total` steps (replacing any previous stage's bar).
    pub fn stage(&self, name: &str, total: u64) {
        if self.quiet {
            return;
        }
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        if self.terminal {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            *slot = Some(bar);
        } else {
            crate::output::errln!("{name}: {total} step(s)");
        }
    }

    /// One step of the current stage done, with a short note (a job, a dose, a loss).
    pub fn step(&self, note: &str) {
        if self.quiet {
            return;
        }
        let slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(bar) => {
                bar.set_message(note.to_string());
                bar.inc(1);
            }
            None => crate::output::errln!("  {note}"),
        }
    }

    /// A line of information that is not a step (a warning, a stage summary).
    pub fn note(&self, line: &str) {
        if self.quiet {
            return;
        }
        let slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(bar) => bar.println(line),
            None => crate::output::errln!("{line}"),
        }
    }

    /// Removes the bar (before an error message or the final output).
    pub fn clear(&self) {
        let mut slot = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = slot.take() {
            bar.finish_and_clear();
        }
    }
}
