//! The compute types, and branch-free `exp`/`log1p` that vectorize.
//!
//! `f32::exp` and `f32::ln_1p` are calls into libm, which stop a loop from
//! vectorizing. The functions here are plain arithmetic on the value and its
//! bits (range reduction, a polynomial, a selection instead of a branch), so
//! LLVM turns a loop over them into SIMD code for whatever instruction set
//! the enclosing function is compiled for (see `simd.rs`). `FMA` selects
//! fused multiply-adds: with it they are single instructions, without it
//! (`mul_add` would be a slow libm call) a multiply and an add.
//!
//! Only the arguments the losses need are supported: `exp(t)` for `t <= 0`
//! and `log1p(e)` for `e` in `[0, 1]`, both also for NaN (which propagates).

use super::elem::{DType, Elem, OutElem};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A compute type: `f32` (for float16 and float32 data) or `f64`.
pub trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + MulAdd
    + 'static
{
    /// The element type of the same name, for arrays read without conversion.
    const DTYPE: DType;
    const ZERO: Self;
    const ONE: Self;
    /// A block of ones: what an absent operand reads.
    const ONES: &'static [Self];
    /// Smallest denominator of the probability gradient, as in PyTorch.
    const GRAD_EPS: Self;
    /// Lower clamp of each log of the probability loss, as in PyTorch.
    const LOG_FLOOR: Self;

    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn load<T: Elem>(v: T) -> Self;
    fn store<T: OutElem>(self) -> T;
    /// Veltkamp's splitting constant, `2^ceil(p/2) + 1` for `p` mantissa bits.
    const SPLITTER: Self;
    /// `ln 2` in two parts: the high part times any integer up to 2^10 in
    /// magnitude is exact.
    const LN2_HI: Self;
    /// See [`Real::LN2_HI`].
    const LN2_LO: Self;

    /// `exp(t)` for `t <= 0` (0 below the underflow, NaN for NaN).
    fn exp_nonpositive<const FMA: bool>(self) -> Self;
    /// `exp(hi + lo)` for `hi + lo <= 1` and `|lo| <= 4`, without rounding
    /// `hi + lo` first: the result keeps the precision of `lo` even where
    /// `hi` is large (0 below the underflow, NaN for NaN).
    /// (With `TAIL` false, `lo` is ignored: `exp(hi)` for `hi <= 0`.)
    fn exp_sum<const FMA: bool, const TAIL: bool>(hi: Self, lo: Self) -> Self;
    /// [`Real::exp_sum`] as an unevaluated sum `(v, v_lo)`: `v_lo` is the
    /// rounding error of its last addition (the rest is below it), for
    /// callers that need more than one rounding's precision.
    fn exp_sum_parts<const FMA: bool, const TAIL: bool>(hi: Self, lo: Self) -> (Self, Self);
    /// `log1p(e)` for `e` in `[0, 1]` (NaN for NaN).
    fn log1p_unit<const FMA: bool>(e: Self) -> Self;
    /// `k ln2 + log1p(f)` for `|f| <= 1/2` and a small integer `k`.
    fn log1p_reduced<const FMA: bool>(f: Self, k: Self) -> Self;
    /// `(m - 1, k)` with `self = 2^k m`, `m` in `[sqrt(1/2), sqrt(2))`, for
    /// positive finite `self` (subnormals included).
    fn ln_parts(self) -> (Self, Self);
    /// `n / d` for `d` in `[1, 4]`, within 1 ULP (see `recip_f64`).
    fn quotient<const FMA: bool>(n: Self, d: Self) -> Self;
    /// `c1 c2 e / (1 + e)^2` for `e` in `[0, 1]` (with `e = exp(-|x|)`,
    /// `c1 c2 sigmoid(x) sigmoid(-x)`), within about 2 ULP of the product
    /// of the rounded `e` and coefficients: `1 + e` is not left rounded.
    fn times_sigmoid_product<const FMA: bool>(c1: Self, c2: Self, e: Self) -> Self;
}

/// `a * b + c`, fused when the instruction set has FMA.
#[inline(always)]
pub fn madd<C: Real, const FMA: bool>(a: C, b: C, c: C) -> C {
    if FMA { a.fused(b, c) } else { a * b + c }
}

/// The fused multiply-add of the compute types.
pub trait MulAdd {
    fn fused(self, b: Self, c: Self) -> Self;
}

impl MulAdd for f32 {
    #[inline(always)]
    fn fused(self, b: f32, c: f32) -> f32 {
        self.mul_add(b, c)
    }
}

impl MulAdd for f64 {
    #[inline(always)]
    fn fused(self, b: f64, c: f64) -> f64 {
        self.mul_add(b, c)
    }
}

/// `(p, e)` with `p = a * b` rounded and `p + e = a * b` exactly: one fused
/// multiply-add, or without FMA Dekker's product of Veltkamp's halves
/// (exact unless a product overflows).
#[inline(always)]
pub fn two_product<C: Real, const FMA: bool>(a: C, b: C) -> (C, C) {
    let p = a * b;
    if FMA {
        return (p, a.fused(b, -p));
    }
    let split = |v: C| {
        let c = C::SPLITTER * v;
        let hi = c - (c - v);
        (hi, v - hi)
    };
    let ((ah, al), (bh, bl)) = (split(a), split(b));
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

/// `(s, e)` with `s = a + b` rounded and `s + e = a + b` exactly (Knuth's
/// TwoSum: no condition on the magnitudes).
#[inline(always)]
pub fn two_sum<C: Real>(a: C, b: C) -> (C, C) {
    let s = a + b;
    let b_virtual = s - a;
    let a_virtual = s - b_virtual;
    (s, (a - a_virtual) + (b - b_virtual))
}

/// `if a > b { a } else { b }`: a plain selection (NaN in `a` gives `b`), which
/// vectorizes to one instruction where `f32::max`'s NaN rules need three.
#[inline(always)]
pub fn select_max<C: Real>(a: C, b: C) -> C {
    if a > b { a } else { b }
}

/// Evaluates a polynomial with coefficients from the highest degree down.
#[inline(always)]
fn horner<C: Real, const FMA: bool, const N: usize>(x: C, coefs: [C; N]) -> C {
    let mut p = coefs[0];
    for &c in &coefs[1..] {
        p = madd::<C, FMA>(p, x, c);
    }
    p
}

macro_rules! real_common {
    ($t:ident, $load:ident, $store:ident) => {
        const DTYPE: DType = <$t as Elem>::DTYPE;
        const ZERO: Self = 0.0;
        const ONE: Self = 1.0;
        const ONES: &'static [Self] = &[1.0; 256];
        const GRAD_EPS: Self = 1e-12;
        const LOG_FLOOR: Self = -100.0;

        #[inline(always)]
        fn from_f64(v: f64) -> Self {
            v as $t
        }
        #[inline(always)]
        fn to_f64(self) -> f64 {
            self as f64
        }
        #[inline(always)]
        fn load<T: Elem>(v: T) -> Self {
            v.$load()
        }
        #[inline(always)]
        fn store<T: OutElem>(self) -> T {
            T::$store(self)
        }
    };
}

// Polynomial coefficients, highest degree first, from
// `tools/fit_polynomials.py` (interpolation at Chebyshev nodes, within a
// small factor of minimax; the script prints each fit's relative error).
//
// exp: t = k ln2 + r with |r| <= ln2/2 (Cody and Waite's two-part ln2, so
// k * LN2_HI is exact), exp(r) = 1 + r + r^2 q(r), then times 2^k in two
// halves so that results down to the subnormals are right. q's error
// (9e-9 in f32, 2e-16 in f64) is scaled by r^2 <= 0.12 in the result.
#[allow(clippy::excessive_precision)]
const EXP_F32: [f32; 6] = [
    0.000_198_909_809_114_411_47,
    0.001_393_364_160_321_652_9,
    0.008_333_310_484_886_17,
    0.041_666_466_742_753_98,
    0.166_666_671_633_720_4,
    0.5,
];
#[allow(clippy::excessive_precision)]
const EXP_F64: [f64; 10] = [
    2.510_037_583_256_123_4e-8,
    2.762_007_587_998_336_7e-7,
    2.755_726_848_031_002_4e-6,
    2.480_152_132_236_869_2e-5,
    0.000_198_412_698_630_405_45,
    0.001_388_888_891_719_671_9,
    0.008_333_333_333_330_065,
    0.041_666_666_666_624_164,
    0.166_666_666_666_666_69,
    0.500_000_000_000_000_1,
];

// log1p(e), e in [0, 1]: with f = e (e < 1/2) or f = (e - 1)/2 (e >= 1/2,
// exact by Sterbenz's lemma), log1p(e) = k ln2 + log1p(f) and
// log1p(f) = f - (f^2/2 - s (f^2/2 + z R(z))), s = f / (2 + f), z = s^2
// <= 1/25 (fdlibm's form). R's error (4e-8 in f32, 6e-17 in f64) is scaled
// by s z / log1p(f) < 0.02 in the result.
// log1p(e) = e + e^2 k(e) for e in [0, 1], where FMA is one instruction:
// k is analytic there (its nearest singularity is at e = -1), and one
// polynomial carries it within 0.13 * 2^-24 of log1p(e) at degree 8 in
// float32, within 0.10 * 2^-53 at degree 19 in float64, its constant term
// the exact -1/2 (fitted to the error in log1p, coefficients rounded one
// at a time: see the script).
#[allow(clippy::excessive_precision)]
const LOG1P_F32: [f32; 9] = [
    -0.003677615663036704,
    0.021875621750950813,
    -0.06092096120119095,
    0.11024989932775497,
    -0.15569405257701874,
    0.19774264097213745,
    -0.24975085258483887,
    0.3333224952220917,
    -0.5,
];
#[allow(clippy::excessive_precision)]
const LOG1P_F64: [f64; 20] = [
    2.666891858748187e-05,
    -0.00030542786430493815,
    0.0016603537461641986,
    -0.0057308597542429325,
    0.014213780289781246,
    -0.027290592053737555,
    0.042900735038366895,
    -0.05800985556848129,
    0.07068961863394999,
    -0.08098412316811088,
    0.09020074528810886,
    -0.09983179923489752,
    0.11108026917412431,
    -0.1249957440198467,
    0.14285671621130808,
    -0.16666663713783095,
    0.19999999869600685,
    -0.24999999996801656,
    0.33333333333301673,
    -0.5,
];
#[allow(clippy::excessive_precision)]
const LOG_F32: [f32; 4] =
    [0.237_473_443_150_520_32, 0.285_327_434_539_794_9, 0.400_003_105_401_992_8, 0.666_666_686_534_881_6];
#[allow(clippy::excessive_precision)]
const LOG_F64: [f64; 8] = [
    0.136_040_157_071_240_79,
    0.132_103_604_851_326_2,
    0.153_888_346_778_019_16,
    0.181_817_384_547_230_26,
    0.222_222_230_378_072_43,
    0.285_714_285_673_391_9,
    0.400_000_000_000_078,
    0.666_666_666_666_666_6,
];

macro_rules! exp_log {
    ($t:ident, $bits:ident, $ibits:ident, $mant:expr, $bias:expr, $clamp:expr, $shift:expr,
     $ln2_hi:expr, $ln2_lo:expr, $exp:ident, $log:ident) => {
        const LN2_HI: $t = $ln2_hi;
        const LN2_LO: $t = $ln2_lo;

        #[inline(always)]
        fn exp_nonpositive<const FMA: bool>(self) -> $t {
            Self::exp_sum::<FMA, false>(self, 0.0)
        }

        #[inline(always)]
        fn exp_sum<const FMA: bool, const TAIL: bool>(hi: $t, lo: $t) -> $t {
            Self::exp_sum_parts::<FMA, TAIL>(hi, lo).0
        }

        #[inline(always)]
        fn exp_sum_parts<const FMA: bool, const TAIL: bool>(hi: $t, lo: $t) -> ($t, $t) {
            // Below the clamp the result rounds to 0; NaN is not clamped.
            let t = if hi < $clamp { $clamp } else { hi };
            // (A NaN `lo` of an infinite `hi` is dropped with it.)
            let lo = if TAIL && hi < $clamp { 0.0 } else { lo };
            // Round t / ln2 to an integer k with the 1.5 * 2^mant trick: k
            // sits in the low bits of `z`, and `z - MAGIC` is k as a float.
            const MAGIC: $t = 1.5 * (1u64 << $mant) as $t;
            let z = madd::<$t, FMA>(if TAIL { t + lo } else { t }, std::$t::consts::LOG2_E, MAGIC);
            let kf = z - MAGIC;
            // `k ln2_hi` is exact, so `t - k ln2_hi` (at most `|lo| + ln2/2`
            // in magnitude) rounds at most once, relative to itself: the
            // large part of `hi` cancels exactly, and `lo` joins after it.
            let r = madd::<$t, FMA>(-kf, $ln2_hi, t);
            let r = if TAIL { r + lo } else { r };
            let r = madd::<$t, FMA>(-kf, $ln2_lo, r);
            // exp(r) = 1 + (r + r^2 q(r)): r is exact and r^2 q(r) small,
            // so only the final addition rounds noticeably.
            let q = horner::<$t, FMA, { $exp.len() }>(r, $exp);
            let small = madd::<$t, FMA>(r * r, q, r);
            let p = 1.0 + small;
            // Its rounding error, exactly (Fast2Sum: |small| < 1).
            let p_lo = (1.0 - p) + small;
            // p * 2^k as p * 2^(k + SHIFT) * 2^-SHIFT: with k between
            // clamp / ln2 and 1, 2^(k + SHIFT) is a normal float whose bits
            // come straight from z's (k sits in its low bits), the first
            // product is exact, and the second rounds once, into the
            // subnormals where the result is that small. A NaN p stays NaN.
            const SHIFT: $ibits = $shift;
            const OFFSET: $bits = MAGIC.to_bits().wrapping_sub(($bias + SHIFT) as $bits);
            let scale = $t::from_bits(z.to_bits().wrapping_sub(OFFSET) << $mant);
            let down = $t::from_bits((($bias - SHIFT) as $bits) << $mant);
            (p * scale * down, p_lo * scale * down)
        }

        #[inline(always)]
        fn log1p_reduced<const FMA: bool>(f: $t, k: $t) -> $t {
            let s = <$t as Real>::quotient::<FMA>(f, 2.0 + f);
            let z = s * s;
            let r = z * horner::<$t, FMA, { $log.len() }>(z, $log);
            let hfsq = 0.5 * f * f;
            // fdlibm's order: the small terms (ln2's low part among them)
            // first, then f, then ln2's exact high part.
            let small = madd::<$t, FMA>(s, hfsq + r, k * $ln2_lo);
            madd::<$t, FMA>(k, $ln2_hi, f - (hfsq - small))
        }

        #[inline(always)]
        fn ln_parts(self) -> ($t, $t) {
            const ONE_BITS: $bits = (1.0 as $t).to_bits();
            const MANT_MASK: $bits = (1 << $mant) - 1;
            // Subnormals are scaled up by 2^mant first (exactly), so that
            // the exponent field holds their exponent.
            let sub = self < $t::MIN_POSITIVE;
            let x = if sub { self * (1u64 << $mant) as $t } else { self };
            let bits = x.to_bits();
            // The mantissa as a number in [1, 2), halved above sqrt(2).
            let m = $t::from_bits((bits & MANT_MASK) | ONE_BITS);
            let high = m > std::$t::consts::SQRT_2;
            let m = if high { m * 0.5 } else { m };
            let exponent = ((bits >> $mant) as $ibits) - $bias;
            let k = exponent as $t + if high { 1.0 } else { 0.0 } - if sub { $mant as $t } else { 0.0 };
            (m - 1.0, k)
        }
    };
}

impl Real for f32 {
    real_common!(f32, to_f32, from_f32);
    const SPLITTER: f32 = 4097.0;

    /// In float64, where `1 + e` is exact (but for `e < 2^-29`, where its
    /// rounding is far below float32's) and each operation rounds 2^29
    /// times finer: one rounding to float32 at the end.
    #[inline(always)]
    fn times_sigmoid_product<const FMA: bool>(c1: f32, c2: f32, e: f32) -> f32 {
        let (e, d) = (e as f64, 1.0 + e as f64);
        ((c1 as f64 * c2 as f64) * e / (d * d)) as f32
    }

    #[inline(always)]
    fn quotient<const FMA: bool>(n: f32, d: f32) -> f32 {
        n / d
    }
    /// See [`log1p_by_polynomial`]: 10 operations instead of about 23.
    #[inline(always)]
    fn log1p_unit<const FMA: bool>(e: f32) -> f32 {
        log1p_by_polynomial::<f32, FMA, { LOG1P_F32.len() }>(e, LOG1P_F32)
    }
    exp_log!(f32, u32, i32, 23, 127, -110.0f32, 64, 355.0f32 / 512.0, -2.121_944_4e-4_f32, EXP_F32, LOG_F32);
}

impl Real for f64 {
    real_common!(f64, to_f64, from_f64);
    const SPLITTER: f64 = 134_217_729.0;

    /// With `d = 1 + e` rounded, its error `d_lo = e - (d - 1)` (exact,
    /// Fast2Sum), `q = 1 / d` rounded and its residual `rho = 1 - d q`
    /// (exact), `1 / (1 + e) = q (1 + k)` with `k = rho - q d_lo` up to
    /// `k^2 < 2^-104`, so `e / (1 + e)^2 = e q^2 (1 + 2k)`.
    #[inline(always)]
    fn times_sigmoid_product<const FMA: bool>(c1: f64, c2: f64, e: f64) -> f64 {
        let d = 1.0 + e;
        let d_lo = e - (d - 1.0);
        let q = 1.0 / d;
        let (dq, dq_lo) = two_product::<f64, FMA>(d, q);
        let rho = (1.0 - dq) - dq_lo;
        let k = madd::<f64, FMA>(-q, d_lo, rho);
        let s = e * (q * q);
        let s = madd::<f64, FMA>(s, k + k, s);
        (c1 * c2) * s
    }

    #[inline(always)]
    fn quotient<const FMA: bool>(n: f64, d: f64) -> f64 {
        if FMA { n * recip_f64(d) } else { n / d }
    }
    /// See [`log1p_by_polynomial`]: 21 operations instead of about 32.
    #[inline(always)]
    fn log1p_unit<const FMA: bool>(e: f64) -> f64 {
        log1p_by_polynomial::<f64, FMA, { LOG1P_F64.len() }>(e, LOG1P_F64)
    }
    exp_log!(
        f64,
        u64,
        i64,
        52,
        1023,
        -760.0f64,
        512,
        // fdlibm's ln2 in two parts: the high part has 21 trailing zero bits.
        f64::from_bits(0x3fe6_2e42_fee0_0000),
        f64::from_bits(0x3dea_39ef_3579_3c76),
        EXP_F64,
        LOG_F64
    );
}

/// `1 / d` for `d` in `[1, 4]` from a float32 division, whose throughput is
/// about three times float64's per element (the float64 losses' gradient
/// and logarithm each need one), and a correction with fused multiply-adds.
///
/// The float32 reciprocal `r` of `d` (rounded to float32) is within
/// `2^-23` of `1/d`, so `e = 1 - d r` (exact but for a rounding of
/// `2^-53 |e|`) is at most `2^-23`, and `1/d = r / (1 - e) = r (1 + e + e^2)`
/// up to `e^3 <= 2^-69`: the result is `1/d`'s value within `2^-69`
/// relative, rounded once, so at most `0.5 + 2^-16` ULP from `1/d`.
#[inline(always)]
fn recip_f64(d: f64) -> f64 {
    let r = (1.0 / d as f32) as f64;
    let e = (-d).mul_add(r, 1.0);
    r.mul_add(e.mul_add(e, e), r)
}

/// `log1p(e)` for `e` in `[0, 1]`: with FMA, `e + e^2 k(e)`, where
/// `k(e) = (log1p(e) - e) / e^2` is one polynomial (`coefs`) over all of
/// `[0, 1]`: no reduction and no division. `k` lies in `[-1/2, -0.30]` and
/// `e^2 |k| <= 0.44 log1p(e)`, so the polynomial's error and roundings reach
/// the result shrunk by that factor; only the last fused multiply-add rounds
/// at full weight. Without FMA each step of the polynomial would round twice
/// (1.6 ULP measured in float32): fdlibm's reduction.
#[inline(always)]
fn log1p_by_polynomial<C: Real, const FMA: bool, const N: usize>(e: C, coefs: [C; N]) -> C {
    if !FMA {
        return log1p_by_reduction::<C, FMA>(e);
    }
    madd::<C, FMA>(e * e, horner::<C, FMA, N>(e, coefs), e)
}

/// `log1p(e)` for `e` in `[0, 1]` by fdlibm's reduction: with `f = e` (`e < 1/2`, k = 0) or
/// `f = (e - 1) / 2` (k = 1, exact by Sterbenz's lemma),
/// `log1p(e) = k ln2 + log1p(f)`.
///
/// `k` is a selection of constants and `f = (e - k) (1 - k/2)` arithmetic
/// on it: given a selection of `f`, LLVM evaluates the whole logarithm for
/// both choices.
#[inline(always)]
fn log1p_by_reduction<C: Real, const FMA: bool>(e: C) -> C {
    let k = if e >= C::from_f64(0.5) { C::ONE } else { C::ZERO };
    let f = (e - k) * (C::ONE - C::from_f64(0.5) * k);
    C::log1p_reduced::<FMA>(f, k)
}

/// `ln(x)` for `x` in `[0, 1]`: `-inf` at 0, NaN for NaN.
#[inline(always)]
pub fn ln_unit<C: Real, const FMA: bool>(x: C) -> C {
    let (f, k) = x.ln_parts();
    let value = C::log1p_reduced::<FMA>(f, k);
    // `ln_parts` reads NaN's bits as a number: keep the NaN instead.
    #[allow(clippy::eq_op)]
    let nan = x != x;
    if x == C::ZERO {
        -C::ONE / C::ZERO
    } else if nan {
        x
    } else {
        value
    }
}

/// `log1p(-x) = ln(1 - x)` for `x` in `[0, 1]`: `-inf` at 1, NaN for NaN.
///
/// Each range uses an argument computed exactly: `-x` up to 1/4 (k = 0),
/// `1 - 2x` up to 1/2 (k = -1), and above that `1 - x` (Sterbenz again),
/// split into its exponent and mantissa.
#[inline(always)]
pub fn ln_one_minus<C: Real, const FMA: bool>(x: C) -> C {
    let (quarter, half) = (C::from_f64(0.25), C::from_f64(0.5));
    let (f_far, k_far) = (C::ONE - x).ln_parts();
    let (f, k) = if x <= quarter {
        (-x, C::ZERO)
    } else if x < half {
        (C::ONE - (x + x), -C::ONE)
    } else {
        (f_far, k_far)
    };
    let value = C::log1p_reduced::<FMA>(f, k);
    #[allow(clippy::eq_op)]
    let nan = x != x;
    if x == C::ONE {
        -C::ONE / C::ZERO
    } else if nan {
        x
    } else {
        value
    }
}

/// `coef * value`, except that a zero coefficient gives zero even when the
/// value is infinite: a term that is absent contributes nothing.
#[inline(always)]
pub fn times<C: Real>(coef: C, value: C) -> C {
    if coef == C::ZERO { C::ZERO } else { coef * value }
}

/// `exp(-|x|)`, the one exponential the loss and its gradient start from.
#[inline(always)]
pub fn exp_neg_abs<C: Real, const FMA: bool>(x: C) -> C {
    let neg_abs = if x < C::ZERO { x } else { -x };
    neg_abs.exp_nonpositive::<FMA>()
}

/// `a * softplus(x) + b * softplus(-x)` for `a, b >= 0`, from `e = exp(-|x|)`
/// and `a_plus_b` (1 exactly when `b = 1 - a`).
///
/// `softplus(z) = max(z, 0) + log1p(exp(-|z|))`, so the sum is
/// `(a + b) * log1p(e) + c * |x|` with `c = a` for `x >= 0` and `c = b`
/// otherwise: two non-negative terms, so nothing cancels, and `log1p` keeps
/// full relative precision when `e` is tiny (the tail where the naive
/// `log(1 + exp(x))` returns 0). A zero `c` gives zero even for an infinite
/// `x`: an absent term contributes nothing.
#[inline(always)]
pub fn softplus_combination<C: Real, const FMA: bool>(x: C, e: C, a: C, b: C, a_plus_b: C) -> C {
    let l = C::log1p_unit::<FMA>(e);
    let (c, abs) = if x >= C::ZERO { (a, x) } else { (b, -x) };
    madd::<C, FMA>(a_plus_b, l, times(c, abs))
}

/// Label smoothing (Keras's): the target `y` becomes `y (1 - ls) + ls / 2`.
#[derive(Clone, Copy, Debug)]
pub struct Smoothing<C> {
    keep: C,
    half: C,
    /// `(1 - ls) - keep`, the rounding error of `keep`.
    keep_lo: C,
}

impl<C: Real> Smoothing<C> {
    pub fn new(label_smoothing: f64) -> Self {
        let keep = C::from_f64(1.0 - label_smoothing);
        let keep_lo = C::from_f64(label_smoothing - (1.0 - keep.to_f64()));
        Smoothing { keep, half: C::from_f64(0.5 * label_smoothing), keep_lo: C::ZERO - keep_lo }
    }

    /// The rounding errors `(a_lo, t_lo)` of `(a, t) =
    /// complement_and_target(y)` (of `1 - y`, of `keep`, and of the last
    /// operation; `half` is exact in float64), for sums that need them.
    #[inline(always)]
    pub fn errors<const FMA: bool>(self, y: C, a: C, t: C) -> (C, C) {
        let one_minus_y = C::ONE - y;
        let one_minus_y_lo = (C::ONE - one_minus_y) - y;
        let error = |v: C, result: C| {
            let (p, p_lo) = two_product::<C, FMA>(v, self.keep);
            let (s, s_lo) = two_sum(p, self.half);
            (s - result) + s_lo + madd::<C, FMA>(v, self.keep_lo, p_lo)
        };
        let a_lo = madd::<C, FMA>(one_minus_y_lo, self.keep, error(one_minus_y, a));
        (a_lo, error(y, t))
    }

    /// Whether this smooths at all (`ls > 0`).
    pub fn is_on(&self) -> bool {
        self.half != C::ZERO
    }

    /// `(1 - t, t)` for the smoothed target `t` of `y`, each a sum of
    /// non-negative terms (for `y` in [0, 1]), so neither cancels: `1 - t`
    /// is `(1 - y) (1 - ls) + ls / 2`. Without smoothing they are `1 - y`
    /// and `y` exactly.
    #[inline(always)]
    pub fn complement_and_target<const FMA: bool>(self, y: C) -> (C, C) {
        (madd::<C, FMA>(C::ONE - y, self.keep, self.half), madd::<C, FMA>(y, self.keep, self.half))
    }
}

/// `if v < floor { floor } else { v }`: a NaN `v` stays NaN.
#[inline(always)]
pub fn floored<C: Real>(v: C, floor: C) -> C {
    if v < floor { floor } else { v }
}

/// `(sigmoid(x), sigmoid(-x))` from `e = exp(-|x|)`, each computed directly
/// (never as `1 - sigmoid`), so the small one keeps its relative precision.
#[inline(always)]
pub fn sigmoid_pair<C: Real, const FMA: bool>(x: C, e: C) -> (C, C) {
    let r = C::quotient::<FMA>(C::ONE, C::ONE + e);
    let small = e * r;
    if x >= C::ZERO { (r, small) } else { (small, r) }
}

#[cfg(test)]
mod tests;
