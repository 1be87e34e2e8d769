//! Binary cross-entropy on probabilities, PyTorch's `BCELoss` exactly:
//! `-w * (y * max(log x, -100) + (1 - y) * max(log1p(-x), -100))`, with the
//! gradient `w * (x - y) / max(x * (1 - x), 1e-12)`. Inputs and targets
//! outside [0, 1] (or NaN) are errors.

use super::KernelError;
use super::math::{Real, ln_one_minus, ln_unit, select_max};
use super::parallel::{BlockOp, NIN};

pub(crate) struct Probabilities<C> {
    pub value: bool,
    pub grad: bool,
    pub scale: C,
}

#[inline(always)]
fn outside_unit<C: Real>(v: C) -> bool {
    !(v >= C::ZERO && v <= C::ONE)
}

#[inline(always)]
fn block<C: Real, const FMA: bool, const VALUE: bool, const GRAD: bool>(
    ins: [&[C]; NIN],
    value: &mut [C],
    grad: &mut [C],
    scale: C,
) -> Result<(), KernelError> {
    let [x, y, w, _, go] = ins;
    let n = x.len();
    let (y, w, go) = (&y[..n], &w[..n], &go[..n]);
    let (value, grad) = (&mut value[..n], &mut grad[..n]);
    let mut bad_input = false;
    let mut bad_target = false;
    for i in 0..n {
        let (x, y) = (x[i], y[i]);
        bad_input |= outside_unit(x);
        bad_target |= outside_unit(y);
        if VALUE {
            let log_x = select_max(ln_unit::<C, FMA>(x), C::LOG_FLOOR);
            let log_1mx = select_max(ln_one_minus::<C, FMA>(x), C::LOG_FLOOR);
            // Written as a difference of negated terms so that a zero loss
            // is +0, never -0.
            value[i] = w[i] * (-(y * log_x) - (C::ONE - y) * log_1mx);
        }
        if GRAD {
            grad[i] = scale * go[i] * w[i] * (x - y) / select_max(x * (C::ONE - x), C::GRAD_EPS);
        }
    }
    if bad_input {
        Err(KernelError::InputOutOfRange)
    } else if bad_target {
        Err(KernelError::TargetOutOfRange)
    } else {
        Ok(())
    }
}

impl<C: Real> BlockOp<C> for Probabilities<C> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError> {
        match (self.value, self.grad) {
            (true, true) => block::<C, FMA, true, true>(ins, value, grad, self.scale),
            (true, false) => block::<C, FMA, true, false>(ins, value, grad, self.scale),
            (false, true) => block::<C, FMA, false, true>(ins, value, grad, self.scale),
            (false, false) => block::<C, FMA, false, false>(ins, value, grad, self.scale),
        }
    }
}

/// Only checks the ranges (the first pass when an output is an input).
pub(crate) struct CheckRange;

impl<C: Real> BlockOp<C> for CheckRange {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError> {
        block::<C, FMA, false, false>(ins, value, grad, C::ONE)
    }
}
