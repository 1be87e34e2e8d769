//! Binary cross-entropy on probabilities, PyTorch's `BCELoss` exactly:
//! `-w * (y * max(log x, -100) + (1 - y) * max(log1p(-x), -100))`, with the
//! gradient `w * (x - y) / max(x * (1 - x), 1e-12)`. Inputs and targets
//! outside [0, 1] (or NaN) are errors.
//!
//! The second derivative is the derivative of that gradient:
//! `w * (y / x^2 + (1 - y) / (1 - x)^2)` (non-negative terms) where
//! `x * (1 - x) > 1e-12`, and `w / 1e-12` where the clamp holds the
//! gradient's denominator.

use super::KernelError;
use super::logits::{Outputs, with_outputs};
use super::math::{Real, Smoothing, floored, ln_one_minus, ln_unit, select_max};
use super::parallel::{BlockOp, NIN, NOUT};

pub(crate) struct Probabilities<C> {
    pub outputs: Outputs,
    pub scale: C,
    pub smoothing: Smoothing<C>,
    /// Floor of each element's second derivative (before `scale`).
    pub min_hess: C,
}

#[inline(always)]
fn outside_unit<C: Real>(v: C) -> bool {
    !(v >= C::ZERO && v <= C::ONE)
}

#[inline(always)]
fn block<C: Real, const FMA: bool, const VALUE: bool, const GRAD: bool, const HESS: bool>(
    op: &Probabilities<C>,
    ins: [&[C]; NIN],
    outs: [&mut [C]; NOUT],
) -> Result<(), KernelError> {
    let [x, y, w, _, go] = ins;
    let n = x.len();
    let (y, w, go) = (&y[..n], &w[..n], &go[..n]);
    let [value, grad, hess] = outs;
    let (value, grad, hess) = (&mut value[..n], &mut grad[..n], &mut hess[..n]);
    let (scale, smoothing, min_hess) = (op.scale, op.smoothing, op.min_hess);
    let mut bad_input = false;
    let mut bad_target = false;
    for i in 0..n {
        let x = x[i];
        bad_input |= outside_unit(x);
        bad_target |= outside_unit(y[i]);
        let (a, t) = smoothing.complement_and_target::<FMA>(y[i]);
        if VALUE {
            let log_x = select_max(ln_unit::<C, FMA>(x), C::LOG_FLOOR);
            let log_1mx = select_max(ln_one_minus::<C, FMA>(x), C::LOG_FLOOR);
            // Written as a difference of negated terms so that a zero loss
            // is +0, never -0.
            value[i] = w[i] * (-(t * log_x) - a * log_1mx);
        }
        let one_minus_x = C::ONE - x;
        let denominator = x * one_minus_x;
        if GRAD {
            grad[i] = scale * go[i] * w[i] * (x - t) / select_max(denominator, C::GRAD_EPS);
        }
        if HESS {
            let h = if denominator > C::GRAD_EPS {
                t / (x * x) + a / (one_minus_x * one_minus_x)
            } else {
                C::ONE / C::GRAD_EPS
            };
            hess[i] = scale * go[i] * floored(w[i] * h, min_hess);
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
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], outs: [&mut [C]; NOUT]) -> Result<(), KernelError> {
        // (Without outputs, the block only checks the ranges.)
        with_outputs!(self.outputs, |VALUE, GRAD, HESS| block::<C, FMA, VALUE, GRAD, HESS>(self, ins, outs))
    }
}

/// Only checks the ranges (the first pass when an output is an input).
pub(crate) struct CheckRange;

impl<C: Real> BlockOp<C> for CheckRange {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], outs: [&mut [C]; NOUT]) -> Result<(), KernelError> {
        let none = Outputs { value: false, grad: false, hess: false };
        let op = Probabilities { outputs: none, scale: C::ONE, smoothing: Smoothing::new(0.0), min_hess: C::ZERO };
        block::<C, FMA, false, false, false>(&op, ins, outs)
    }
}
