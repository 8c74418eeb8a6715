//! Ctrl-C and SIGTERM for every command: one process-wide [`CancelToken`], installed once.
//!
//! `train` polls it and stops its jobs cleanly (see `runner::execute`). Phases that have no
//! cancellation points of their own (`generate`, `overlap`) run under a [`PhaseGuard`]: on the
//! first signal it removes every temporary file the process has open
//! (`npz_contract::atomic::abandon_all`), says what had finished, and exits 1.

use anyhow::Context;
use runner::CancelToken;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The process-wide token; the handlers are installed on first use.
pub fn token() -> anyhow::Result<CancelToken> {
    static TOKEN: OnceLock<Result<CancelToken, String>> = OnceLock::new();
    TOKEN
        .get_or_init(|| {
            let cancel = CancelToken::new();
            cancel
                .install_signal_handlers()
                .map(|()| cancel)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
        .context("cannot install the Ctrl-C / SIGTERM handlers")
}

/// While alive, a signal ends the process cleanly: temporary files removed, what finished
/// said on stderr, exit status 1.
pub struct PhaseGuard {
    stop: Arc<AtomicBool>,
    finished: Arc<Mutex<Vec<String>>>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl PhaseGuard {
    /// Watches the token for `phase` (`Phase C (generate)`).
    pub fn watch(phase: &str) -> anyhow::Result<PhaseGuard> {
        let cancel = token()?;
        let stop = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(Mutex::new(Vec::new()));
        let phase = phase.to_string();
        let watcher = {
            let (stop, finished) = (Arc::clone(&stop), Arc::clone(&finished));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if cancel.is_cancelled() {
                        let removed = npz_contract::atomic::abandon_all();
                        let done = finished.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let done = if done.is_empty() {
                            "nothing had finished".to_string()
                        } else {
                            format!("finished: {}", done.join(", "))
                        };
                        crate::output::errln!(
                            "\ninterrupted by {} during {phase}: {done}; {} temporary file(s) \
                             removed; rerun the same command to complete it",
                            cancel.cause(),
                            removed.len()
                        );
                        std::process::exit(i32::from(crate::exit::FAILURE));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Ok(PhaseGuard {
            stop,
            finished,
            watcher: Some(watcher),
        })
    }

    /// Records that `what` (`dose_1000`) is complete, for the message on a signal.
    pub fn finished(&self, what: String) {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Removes the temporary files that dead runs left under `root`, saying so on stderr.
pub fn sweep_stale_temps(root: &std::path::Path, note: &dyn Fn(&str)) {
    if let Ok(removed) = npz_contract::atomic::remove_stale_temps(root)
        && !removed.is_empty()
    {
        note(&format!(
            "removed {} temporary file(s) left by an interrupted run under {}",
            removed.len(),
            root.display()
        ));
    }
}
