//! The compute types and the stable scalar formulas both losses use.

use super::elem::{Elem, OutElem};
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
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// Smallest denominator of the probability gradient, as in PyTorch.
    const GRAD_EPS: Self;
    /// Lower clamp of each log of the probability loss, as in PyTorch.
    const LOG_FLOOR: Self;

    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn load<T: Elem>(v: T) -> Self;
    fn store<T: OutElem>(self) -> T;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn abs(self) -> Self;
    fn max(self, other: Self) -> Self;
}

macro_rules! real {
    ($t:ident, $load:ident, $store:ident) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
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
            #[inline(always)]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
        }
    };
}
real!(f32, to_f32, from_f32);
real!(f64, to_f64, from_f64);

/// `coef * value`, except that a zero coefficient gives zero even when the
/// value is infinite: a term that is absent contributes nothing.
#[inline(always)]
pub fn times<C: Real>(coef: C, value: C) -> C {
    if coef == C::ZERO { C::ZERO } else { coef * value }
}

/// `(softplus(x), softplus(-x))` from `e = exp(-|x|)`.
///
/// `softplus(z) = max(z, 0) + log1p(exp(-|z|))`: both parts are
/// non-negative, so the sum never cancels, and `log1p` keeps full relative
/// precision when `exp(-|x|)` is tiny (the tail where the naive
/// `log(1 + exp(x))` returns 0).
#[inline(always)]
pub fn softplus_pair<C: Real>(x: C, e: C) -> (C, C) {
    let l = e.ln_1p();
    (x.max(C::ZERO) + l, (-x).max(C::ZERO) + l)
}

/// `(sigmoid(x), sigmoid(-x))` from `e = exp(-|x|)`, each computed directly
/// (never as `1 - sigmoid`), so the small one keeps its relative precision.
#[inline(always)]
pub fn sigmoid_pair<C: Real>(x: C, e: C) -> (C, C) {
    let r = C::ONE / (C::ONE + e);
    let small = e * r;
    if x >= C::ZERO { (r, small) } else { (small, r) }
}

/// `exp(-|x|)`, the one transcendental both pairs above start from.
#[inline(always)]
pub fn exp_neg_abs<C: Real>(x: C) -> C {
    (-x.abs()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softplus_tails_keep_relative_precision() {
        // softplus(-40) = log1p(exp(-40)) ~ exp(-40); the naive form gives 0.
        let (pos, neg) = softplus_pair(-40.0f64, exp_neg_abs(-40.0f64));
        let want = (-40.0f64).exp();
        assert!(((pos - want) / want).abs() < 1e-15, "{pos} vs {want}");
        assert_eq!(neg, 40.0 + want);
    }

    #[test]
    fn sigmoid_pair_sums_to_one_and_keeps_tail() {
        for &x in &[-30.0f64, -1.5, 0.0, 0.25, 17.0, 745.0] {
            let (p, n) = sigmoid_pair(x, exp_neg_abs(x));
            assert!((p + n - 1.0).abs() <= f64::EPSILON, "x = {x}");
        }
        let (_, n) = sigmoid_pair(20.0f32, exp_neg_abs(20.0f32));
        let want = (-20.0f64).exp() / (1.0 + (-20.0f64).exp());
        assert!(((n as f64 - want) / want).abs() < 1e-6);
    }

    #[test]
    fn infinite_logits_give_limits() {
        let e = exp_neg_abs(f64::INFINITY);
        assert_eq!(softplus_pair(f64::INFINITY, e), (f64::INFINITY, 0.0));
        assert_eq!(sigmoid_pair(f64::INFINITY, e), (1.0, 0.0));
        assert_eq!(sigmoid_pair(f64::NEG_INFINITY, e), (0.0, 1.0));
        assert_eq!(times(0.0, f64::INFINITY), 0.0);
    }
}
