//! Stopping a run cleanly on Ctrl-C or SIGTERM: a shared flag that jobs and backends poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Set once the run must stop; cloned handles share the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl CancelToken {
    /// A token that nothing has cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels the run (as a signal would).
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether the run must stop.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// `SIGINT`, `SIGTERM`, or `a cancellation` when no signal was involved.
    pub fn cause(&self) -> &'static str {
        match self.signal.load(Ordering::SeqCst) {
            s if s == signal_hook::consts::SIGINT as usize => "SIGINT (Ctrl-C)",
            s if s == signal_hook::consts::SIGTERM as usize => "SIGTERM",
            _ => "a cancellation",
        }
    }

    /// Makes SIGINT and SIGTERM cancel this token. A second signal ends the process at once
    /// (exit status 130), for a user who does not want to wait for running jobs to stop.
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so it sees the flag as the previous signal left it.
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&self.flag))?;
            signal_hook::flag::register_usize(signal, Arc::clone(&self.signal), signal as usize)?;
            signal_hook::flag::register(signal, Arc::clone(&self.flag))?;
        }
        Ok(())
    }
}
