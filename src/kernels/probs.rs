//! Binary cross-entropy on probabilities, PyTorch's `BCELoss` exactly:
//! `-w * (y * max(log x, -100) + (1 - y) * max(log1p(-x), -100))`, with the
//! gradient `w * (x - y) / max(x * (1 - x), 1e-12)`. Inputs and targets
//! outside [0, 1] (or NaN) are errors.

use super::KernelError;
use super::math::Real;
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
fn block<C: Real, const VALUE: bool, const GRAD: bool>(
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
            let log_x = x.ln().max(C::LOG_FLOOR);
            let log_1mx = (-x).ln_1p().max(C::LOG_FLOOR);
            // Written as a difference of negated terms so that a zero loss
            // is +0, never -0.
            value[i] = w[i] * (-(y * log_x) - (C::ONE - y) * log_1mx);
        }
        if GRAD {
            grad[i] = scale * go[i] * w[i] * (x - y) / (x * (C::ONE - x)).max(C::GRAD_EPS);
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
    fn apply(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError> {
        match (self.value, self.grad) {
            (true, true) => block::<C, true, true>(ins, value, grad, self.scale),
            (true, false) => block::<C, true, false>(ins, value, grad, self.scale),
            (false, true) => block::<C, false, true>(ins, value, grad, self.scale),
            (false, false) => block::<C, false, false>(ins, value, grad, self.scale),
        }
    }
}

/// Only checks the ranges (the first pass when an output is an input).
pub(crate) struct CheckRange;

impl<C: Real> BlockOp<C> for CheckRange {
    fn apply(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError> {
        block::<C, false, false>(ins, value, grad, C::ONE)
    }
}
