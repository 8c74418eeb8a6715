//! Spare cores: the cores of a local run's workers that found no job left to start, lent to
//! the jobs still running (`recon::CoreLender`), so that no core idles while the last jobs of
//! a run finish. A job's results never depend on the cores it gets.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The run's pool of spare cores.
#[derive(Debug, Default)]
pub struct SpareCores {
    free: AtomicUsize,
}

impl SpareCores {
    /// An empty pool.
    pub fn new() -> SpareCores {
        SpareCores::default()
    }

    /// Adds `n` cores that nothing runs on any more.
    pub fn give(&self, n: usize) {
        self.free.fetch_add(n, Ordering::SeqCst);
    }

    /// Cores free now.
    pub fn free(&self) -> usize {
        self.free.load(Ordering::SeqCst)
    }
}

impl recon::CoreLender for SpareCores {
    fn borrow(&self) -> bool {
        self.free
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn give_back(&self) {
        self.give(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recon::CoreLender;

    #[test]
    fn a_core_is_lent_once_and_comes_back() {
        let pool = SpareCores::new();
        assert!(!pool.borrow());
        pool.give(1);
        assert!(pool.borrow());
        assert!(!pool.borrow());
        pool.give_back();
        assert_eq!(pool.free(), 1);
    }
}
