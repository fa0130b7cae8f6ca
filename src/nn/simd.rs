//! Kernels compiled for the CPU they run on. The crate is built for baseline x86-64 (SSE2), so
//! its loops vectorise four f32 lanes wide; [`multiversion!`] also compiles a kernel for
//! AVX-512F and for AVX2 + FMA and picks the widest the CPU has, at run time. The numbers do not
//! change: Rust never contracts a·b + c into an FMA or reorders float sums, so each variant
//! performs the same float operations in the same order, only more lanes at a time.

/// `multiversion! { pub(crate) fn name<T: Bound>(a: A, b: B) -> R = body; }` defines `name`,
/// which runs `body(a, b)` (a generic function, best marked `#[inline(always)]` together with
/// what it calls in its loops) compiled for AVX-512F or AVX2 + FMA when the CPU has them, and
/// as built otherwise.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident<$t:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:ident;) => {
        $(#[$meta])*
        $vis fn $name<$t: $bound>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512<$t: $bound>($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<$t: $bound>($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, the only feature `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA, the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(crate) use multiversion;
