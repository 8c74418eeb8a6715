//! The engines' hot loops compiled twice: for AVX2 and FMA, taken when the CPU has them, and
//! for the build's baseline target (x86-64: SSE2 vectors, half as wide).
//!
//! Only the instruction set changes, not the arithmetic: Rust never contracts `a * b + c`
//! into a fused multiply-add, the loops' summation orders are written out, `sqrt` and
//! division are the same IEEE operations either way, and the logarithm is plain arithmetic
//! (`kernels::ln`, not a libm call whose bits could differ between libm builds); so both
//! copies give the same bits
//! (the goldens and the thread-count tests check them on this machine).

/// True where [`fast_fn!`] takes the AVX2 copy (detected once, then a cached load).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx2() -> bool {
    #[cfg(test)]
    if FORCE_PORTABLE.with(std::cell::Cell::get) {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(test)]
thread_local! {
    static FORCE_PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread on the portable copies (`portable`) or the detected ones: the
/// test that both give the same bits.
#[cfg(test)]
pub(crate) fn with_portable<R>(portable: bool, f: impl FnOnce() -> R) -> R {
    let before = FORCE_PORTABLE.with(|c| c.replace(portable));
    let out = f();
    FORCE_PORTABLE.with(|c| c.set(before));
    out
}

/// Defines a function whose body is compiled twice (see the module docs). The body goes into
/// an `#[inline(always)]` function, so what it calls with `#[inline(always)]` is compiled
/// into each copy too; non-generic signatures only.
macro_rules! fast_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if $crate::simd::has_avx2() {
                    // SAFETY: `avx2` needs AVX2 and FMA, which this CPU was just found to have.
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use fast_fn;
