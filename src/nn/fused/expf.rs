//! e^x for f32 slices, eight at a time, with the C library's own result for every input.
//!
//! candle's SiLU calls `f32::exp`, which is glibc's `expf`; on a CPU with AVX2 and FMA glibc
//! picks its `__expf_fma`: Szabolcs Nagy's algorithm (ARM optimized-routines, glibc >= 2.27),
//! evaluated in f64 with 2^(k/32) from a 32-entry table and a cubic for 2^(r/32), the
//! products fused as that build fuses them. One call per element is 3-6 ns, a quarter of an
//! MLP's sampling time. [`exp_in_place`] evaluates the same f64 operations eight lanes at a
//! time with AVX-512 (the table looked up by two register permutes) or four with AVX2 (by a
//! gather, which the Downfall microcode makes slow), so each result is the library's bit for
//! bit, and hands inputs with |x| >= 88, NaN and infinities (the library's overflow,
//! underflow and errno branch) to `f32::exp` itself.
//!
//! That holds only where `f32::exp` is that routine, so the vector path is switched on by
//! a check when first used: the probes (every exponent, both signs, the branch's edges)
//! must agree with `f32::exp` bit for bit, or every element goes through `f32::exp`.

use std::sync::OnceLock;

/// 2^(i/32) for i in 0..32 as f64 bits, less i << 47: adding k << 47 to entry k mod 32
/// gives 2^(k/32) for any k (the exponent field takes k div 32). The table of
/// `__exp2f_data` in glibc and of `exp2f_data.c` in optimized-routines.
const TABLE: [u64; 32] = [
    0x3ff0000000000000,
    0x3fefd9b0d3158574,
    0x3fefb5586cf9890f,
    0x3fef9301d0125b51,
    0x3fef72b83c7d517b,
    0x3fef54873168b9aa,
    0x3fef387a6e756238,
    0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715,
    0x3feef1a7373aa9cb,
    0x3feedea64c123422,
    0x3feece086061892d,
    0x3feebfdad5362a27,
    0x3feeb42b569d4f82,
    0x3feeab07dd485429,
    0x3feea47eb03a5585,
    0x3feea09e667f3bcd,
    0x3fee9f75e8ec5f74,
    0x3feea11473eb0187,
    0x3feea589994cce13,
    0x3feeace5422aa0db,
    0x3feeb737b0cdc5e5,
    0x3feec49182a3f090,
    0x3feed503b23e255d,
    0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47,
    0x3fef199bdd85529c,
    0x3fef3720dcef9069,
    0x3fef5818dcfba487,
    0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da,
    0x3fefd0765b6e4540,
];
/// 32 / ln 2.
const INV_LN2_N: f64 = f64::from_bits(0x40471547652b82fe);
/// 1.5 · 2^52: adding it rounds to an integer, kept in the low mantissa bits.
const SHIFT: f64 = f64::from_bits(0x4338000000000000);
/// The cubic's coefficients for 2^(r/32) - 1 ≈ C0 r^3 + C1 r^2 + C2 r.
const C0: f64 = f64::from_bits(0x3ebc6af84b912394);
const C1: f64 = f64::from_bits(0x3f2ebfce50fac4f3);
const C2: f64 = f64::from_bits(0x3f962e42ff0c52d6);
/// |x| bits from which the library branches (88.0f): overflow, underflow, NaN, infinities.
const SPECIAL: u32 = 0x42b0_0000;

/// One element with the scalar form of the vector path (the same operations, `mul_add` for
/// the fused ones), for |x| < 88. Where the CPU lacks FMA `mul_add` is a software fused
/// multiply-add: still exact, just slow, and used only by the probe check.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn exp_scalar(x: f32) -> f32 {
    let xd = x as f64;
    let kd = INV_LN2_N.mul_add(xd, SHIFT);
    let ki = kd.to_bits();
    let kd = kd - SHIFT;
    let r = INV_LN2_N.mul_add(xd, -kd);
    let s = f64::from_bits(TABLE[(ki & 31) as usize].wrapping_add(ki << 47));
    let p = r.mul_add(C0, C1);
    let r2 = r * r;
    let q = r.mul_add(C2, 1.0);
    (p.mul_add(r2, q) * s) as f32
}

/// Inputs where the replica must equal `f32::exp`: 0, both signs of 2^e·(1 + f) for every
/// exponent below the branch and a few mantissas, and the last floats before it.
pub fn probes() -> impl Iterator<Item = f32> {
    let mantissas = [0u32, 1, 0x2a_aaab, 0x40_0000, 0x55_5555, 0x7f_ffff];
    let below = (0..0x86u32).flat_map(move |e| mantissas.into_iter().map(move |f| (e << 23) | f));
    let edge = (SPECIAL - 64)..SPECIAL;
    below
        .chain(edge)
        .filter(|&bits| bits < SPECIAL)
        .flat_map(|bits| [f32::from_bits(bits), -f32::from_bits(bits)])
}

/// How [`exp_in_place`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Eight lanes (AVX-512F).
    Avx512,
    /// Four lanes (AVX2 and FMA).
    Avx2,
    /// `f32::exp` per element: no such CPU, or the library's expf is another routine.
    Library,
}

/// Runs `path` over `xs` (`Library` where the CPU cannot run it).
pub fn exp_in_place_with(path: Path, xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match path {
        // SAFETY: each runs only where the CPU has its features.
        Path::Avx512 if is_x86_feature_detected!("avx512f") => {
            return unsafe { x86::exp_in_place_avx512(xs) }
        }
        Path::Avx2 if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") => {
            return unsafe { x86::exp_in_place_avx2(xs) }
        }
        _ => {}
    }
    let _ = path;
    for x in xs {
        *x = x.exp();
    }
}

/// The fastest path that reproduces `f32::exp` on the probes here (checked once).
pub fn vector_path() -> Path {
    static PATH: OnceLock<Path> = OnceLock::new();
    *PATH.get_or_init(|| {
        let xs: Vec<f32> = probes().collect();
        let agrees = |path: Path| {
            let mut ys = xs.clone();
            exp_in_place_with(path, &mut ys);
            xs.iter()
                .zip(&ys)
                .all(|(x, y)| x.exp().to_bits() == y.to_bits())
        };
        [Path::Avx512, Path::Avx2]
            .into_iter()
            .find(|&path| agrees(path))
            .unwrap_or(Path::Library)
    })
}

/// xs[i] = e^xs[i], each `f32::exp(xs[i])` bit for bit.
pub fn exp_in_place(xs: &mut [f32]) {
    exp_in_place_with(vector_path(), xs)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{exp_scalar, C0, C1, C2, INV_LN2_N, SHIFT, SPECIAL, TABLE};

    /// Four lanes of [`exp_scalar`].
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp4(x: __m128) -> __m128 {
        let xd = _mm256_cvtps_pd(x);
        let kd = _mm256_fmadd_pd(_mm256_set1_pd(INV_LN2_N), xd, _mm256_set1_pd(SHIFT));
        let ki = _mm256_castpd_si256(kd);
        let kd = _mm256_sub_pd(kd, _mm256_set1_pd(SHIFT));
        let r = _mm256_fmsub_pd(_mm256_set1_pd(INV_LN2_N), xd, kd);
        let index = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
        let entry = _mm256_i64gather_epi64::<8>(TABLE.as_ptr() as *const i64, index);
        let s = _mm256_castsi256_pd(_mm256_add_epi64(entry, _mm256_slli_epi64::<47>(ki)));
        let p = _mm256_fmadd_pd(r, _mm256_set1_pd(C0), _mm256_set1_pd(C1));
        let r2 = _mm256_mul_pd(r, r);
        let q = _mm256_fmadd_pd(r, _mm256_set1_pd(C2), _mm256_set1_pd(1.0));
        let y = _mm256_mul_pd(_mm256_fmadd_pd(p, r2, q), s);
        _mm256_cvtpd_ps(y)
    }

    /// Eight lanes of [`exp_scalar`]; the table's 32 entries sit in four registers.
    #[target_feature(enable = "avx512f")]
    unsafe fn exp8(x: __m256, table: &[__m512i; 4]) -> __m256 {
        let xd = _mm512_cvtps_pd(x);
        let kd = _mm512_fmadd_pd(_mm512_set1_pd(INV_LN2_N), xd, _mm512_set1_pd(SHIFT));
        let ki = _mm512_castpd_si512(kd);
        let kd = _mm512_sub_pd(kd, _mm512_set1_pd(SHIFT));
        let r = _mm512_fmsub_pd(_mm512_set1_pd(INV_LN2_N), xd, kd);
        // Bits 0-3 of ki pick one of 16 entries, bit 4 which 16.
        let low = _mm512_permutex2var_epi64(table[0], ki, table[1]);
        let high = _mm512_permutex2var_epi64(table[2], ki, table[3]);
        let upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
        let entry = _mm512_mask_blend_epi64(upper, low, high);
        let s = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64::<47>(ki)));
        let p = _mm512_fmadd_pd(r, _mm512_set1_pd(C0), _mm512_set1_pd(C1));
        let r2 = _mm512_mul_pd(r, r);
        let q = _mm512_fmadd_pd(r, _mm512_set1_pd(C2), _mm512_set1_pd(1.0));
        let y = _mm512_mul_pd(_mm512_fmadd_pd(p, r2, q), s);
        _mm512_cvtpd_ps(y)
    }

    /// Whether all eight are below the library's branch (|x| < 88, not NaN).
    #[target_feature(enable = "avx2")]
    unsafe fn ordinary(x: __m256) -> bool {
        let bits = _mm256_and_si256(_mm256_castps_si256(x), _mm256_set1_epi32(0x7fff_ffff));
        // Signed compare is right: the sign bit is cleared.
        let below = _mm256_cmpgt_epi32(_mm256_set1_epi32(SPECIAL as i32), bits);
        _mm256_movemask_epi8(below) == -1
    }

    /// The chunks of eight that are not ordinary and the tail.
    fn rest(chunk: &mut [f32]) {
        for x in chunk {
            *x = if x.to_bits() & 0x7fff_ffff < SPECIAL {
                exp_scalar(*x)
            } else {
                x.exp()
            };
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn exp_in_place_avx512(xs: &mut [f32]) {
        let at = |i: usize| _mm512_loadu_si512(TABLE[8 * i..].as_ptr() as *const __m512i);
        let table = [at(0), at(1), at(2), at(3)];
        let mut chunks = xs.chunks_exact_mut(8);
        for chunk in &mut chunks {
            let x = _mm256_loadu_ps(chunk.as_ptr());
            if ordinary(x) {
                _mm256_storeu_ps(chunk.as_mut_ptr(), exp8(x, &table));
            } else {
                rest(chunk);
            }
        }
        rest(chunks.into_remainder());
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_in_place_avx2(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(8);
        for chunk in &mut chunks {
            let x = _mm256_loadu_ps(chunk.as_ptr());
            if ordinary(x) {
                let low = exp4(_mm256_castps256_ps128(x));
                let high = exp4(_mm256_extractf128_ps::<1>(x));
                _mm256_storeu_ps(chunk.as_mut_ptr(), _mm256_set_m128(high, low));
            } else {
                rest(chunk);
            }
        }
        rest(chunks.into_remainder());
    }
}
