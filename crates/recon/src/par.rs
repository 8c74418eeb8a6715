//! The engines' fixed-partition parallel runtime: `Par` runs parts that were cut before they
//! reach it (fixed segments of slices cut at the same index, `Cut`), inline or on a pool kept
//! for the engine's life, and returns their results in part order; so the bits never depend
//! on the thread count.

use rayon::prelude::*;

/// Fixed segments of the grid-sized vectors in the passes of the L-BFGS step: each segment
/// sums in its own lanes and the segments add up in order, so the bits do not depend on how
/// many threads run them (the passes are a quarter of an epoch on one thread).
pub(crate) const SEGMENTS: usize = 4;

#[inline]
fn segment_len(n: usize) -> usize {
    n.div_ceil(SEGMENTS).max(1)
}

/// Slices that are cut at the same index into the parts of a segmented pass.
pub(crate) trait Cut: Sized {
    fn cut(self, at: usize) -> (Self, Self);
}

impl<T> Cut for &[T] {
    fn cut(self, at: usize) -> (Self, Self) {
        self.split_at(at.min(self.len()))
    }
}

impl<T> Cut for &mut [T] {
    fn cut(self, at: usize) -> (Self, Self) {
        let at = at.min(self.len());
        self.split_at_mut(at)
    }
}

impl<C: Cut> Cut for Option<C> {
    fn cut(self, at: usize) -> (Self, Self) {
        match self {
            Some(c) => {
                let (a, b) = c.cut(at);
                (Some(a), Some(b))
            }
            None => (None, None),
        }
    }
}

macro_rules! cut_tuple {
    ($($t:ident),+) => {
        impl<$($t: Cut),+> Cut for ($($t,)+) {
            #[allow(non_snake_case)]
            fn cut(self, at: usize) -> (Self, Self) {
                let ($($t,)+) = self;
                $(let $t = $t.cut(at);)+
                (($($t.0,)+), ($($t.1,)+))
            }
        }
    };
}
cut_tuple!(A, B);
cut_tuple!(A, B, C);
cut_tuple!(A, B, C, D);
cut_tuple!(A, B, C, D, E);

/// Where the engine's parallel parts run: inline, or on a pool of its own threads kept for the
/// engine's life (a scoped spawn costs 35-40 us on the 2-core machine, and an epoch has about
/// ten parallel parts). The work is cut into fixed parts before it reaches the pool, so the
/// bits do not depend on it.
#[derive(Clone)]
pub(crate) struct Par {
    pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    threads: usize,
}

impl Par {
    /// Inline for `threads` <= 1, else a pool of `threads` threads (`ml-0`, `ml-1`, ...).
    pub(crate) fn new(threads: usize) -> Par {
        // A pool that cannot be built (thread limits) leaves the engine on one thread: slower,
        // same bits.
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("ml-{i}"))
                    .build()
                    .ok()
            })
            .flatten()
            .map(std::sync::Arc::new);
        let threads = if pool.is_some() { threads } else { 1 };
        Par { pool, threads }
    }

    /// Threads it runs on.
    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on one of the pool's threads (inline without a pool). The parts `f` runs then
    /// start from a worker: a caller from outside the pool sleeps on a lock and is woken for
    /// each part (a futex round trip, about a tenth of the engine's own thread's time on 2
    /// threads), while a worker hands parts out and steals them back without one.
    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// Runs `f` on [`SEGMENTS`] fixed segments of `whole` (slices `len` long, cut at the same
    /// places); results in segment order.
    pub(crate) fn segments<P: Cut + Send, R: Send>(
        &self,
        len: usize,
        whole: P,
        f: impl Fn(P) -> R + Sync + Send,
    ) -> Vec<R> {
        let sl = segment_len(len);
        let mut parts = Vec::with_capacity(SEGMENTS);
        let (mut rest, mut left) = (whole, len);
        while left > sl {
            let (head, tail) = rest.cut(sl);
            parts.push(head);
            (rest, left) = (tail, left - sl);
        }
        parts.push(rest);
        self.run(parts, f)
    }

    /// Runs `f` on each part; results in part order.
    pub(crate) fn run<P: Send, R: Send>(
        &self,
        parts: Vec<P>,
        f: impl Fn(P) -> R + Sync + Send,
    ) -> Vec<R> {
        match &self.pool {
            Some(pool) if parts.len() > 1 => {
                pool.install(|| parts.into_par_iter().map(f).collect())
            }
            _ => parts.into_iter().map(f).collect(),
        }
    }

    /// Runs `f` on every item of `items`, in place (each item keeps its own sums).
    pub(crate) fn each_mut<T: Send>(&self, items: &mut [T], f: impl Fn(&mut T) + Sync + Send) {
        match &self.pool {
            None => items.iter_mut().for_each(f),
            Some(pool) => pool.install(|| items.par_iter_mut().for_each(f)),
        }
    }
}
