//! Software prefetch of the output arrays, spread through the computation.
//!
//! The simulator writes Y and the amplitudes once, to memory that is not in cache. Written
//! directly, each line is first fetched (read for ownership) while the core waits: a quarter
//! of the run time at N = 64 and 128, although the computation alone would leave memory idle
//! most of the time. Prefetching the next pattern's output lines a few at a time between
//! pieces of this pattern's work overlaps those fetches with the arithmetic, so that the
//! stores later hit the cache.
//!
//! The crate's only `unsafe`: `_mm_prefetch` takes a raw pointer. A prefetch is a hint that
//! never faults and never changes memory, whatever the address.
#![allow(unsafe_code)]

/// A queue of cache lines to prefetch, taken a few at a time by [`Prefetcher::tick`].
#[derive(Default)]
pub struct Prefetcher {
    /// Byte ranges (address, length) still to fetch, in order.
    ranges: Vec<(usize, usize)>,
    next: usize,
    /// Lines fetched per tick.
    per_tick: usize,
}

const LINE: usize = 64;

impl Prefetcher {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the queue with the lines of `regions` (from [`region`]), to be fetched over
    /// about `ticks` ticks.
    pub fn plan(&mut self, regions: &[(usize, usize)], ticks: usize) {
        self.ranges.clear();
        self.ranges.extend(regions.iter().rev());
        self.next = 0;
        let lines: usize = regions.iter().map(|(_, len)| len.div_ceil(LINE)).sum();
        self.per_tick = lines.div_ceil(ticks.max(1));
    }

    /// Prefetches the next few lines of the queue.
    #[inline]
    pub fn tick(&mut self) {
        for _ in 0..self.per_tick {
            let Some((addr, len)) = self.ranges.last_mut() else {
                return;
            };
            fetch(*addr + self.next);
            self.next += LINE;
            if self.next >= *len {
                self.ranges.pop();
                self.next = 0;
            }
        }
    }
}

#[cfg(test)]
impl Prefetcher {
    /// Lines still queued.
    fn queued_lines(&self) -> usize {
        self.ranges
            .iter()
            .map(|(_, len)| len.div_ceil(LINE))
            .sum::<usize>()
            - self.next / LINE
    }
}

/// The byte range of `slice`: only the address is kept, so the slice may be borrowed mutably
/// again while its lines are in the queue.
pub fn region<T>(slice: &[T]) -> (usize, usize) {
    let start = slice.as_ptr() as usize;
    // From the start of its first line, so that the last partial line is fetched too.
    let aligned = start & !(LINE - 1);
    (aligned, std::mem::size_of_val(slice) + (start - aligned))
}

#[inline(always)]
fn fetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no effect on memory contents, for any address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T1>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planned_ticks_fetch_every_line_once() {
        let a = vec![0u8; 64 * 100 + 10];
        let b = vec![0f32; 1000];
        let mut p = Prefetcher::new();
        p.plan(&[region(&a), region(&b)], 30);
        // 101 and 63 lines, one more each when the allocation does not start on a line.
        let lines = p.queued_lines();
        assert!((101 + 63..=101 + 63 + 2).contains(&lines), "{lines}");
        let per_tick = p.per_tick;
        for t in 1..=30 {
            p.tick();
            assert_eq!(p.queued_lines(), lines.saturating_sub(t * per_tick));
        }
        assert_eq!(p.queued_lines(), 0);
        p.tick(); // an empty queue is a no-op
    }
}
