//! Binary cross-entropy with logits: loss, gradient, or both in one pass.
//!
//! With `a = 1 - y` and `b = pos_weight * y`, the loss element is
//! `w * (a * softplus(x) + b * softplus(-x))` and its derivative
//! `w * (a * sigmoid(x) - b * sigmoid(-x))`: two non-negative terms each,
//! so the loss never cancels and the gradient's tails keep full precision.

use super::KernelError;
use super::math::{Real, exp_neg_abs, madd, sigmoid_pair, softplus_combination};
use super::parallel::{BlockOp, NIN};

pub(crate) struct Logits<C> {
    pub value: bool,
    pub grad: bool,
    /// A pos_weight is given.
    pub pos_weight: bool,
    /// A weight or grad_output is given.
    pub weighted: bool,
    /// Factor of every gradient element (grad_output, divided by the count
    /// for a mean).
    pub scale: C,
}

#[inline(always)]
fn block<
    C: Real,
    const FMA: bool,
    const VALUE: bool,
    const GRAD: bool,
    const POS_WEIGHT: bool,
    const WEIGHTED: bool,
>(
    ins: [&[C]; NIN],
    value: &mut [C],
    grad: &mut [C],
    scale: C,
) {
    let [x, y, w, p, go] = ins;
    let n = x.len();
    let (y, w, p, go) = (&y[..n], &w[..n], &p[..n], &go[..n]);
    let (value, grad) = (&mut value[..n], &mut grad[..n]);
    for i in 0..n {
        let x = x[i];
        let a = C::ONE - y[i];
        let b = if POS_WEIGHT { p[i] * y[i] } else { y[i] };
        let e = exp_neg_abs::<C, FMA>(x);
        if VALUE {
            // With b = y, a + b is 1 (exactly, mathematically; use it so).
            // Otherwise it is `p * y + a`, one fused multiply-add that does
            // not wait for `b` (measured faster than `a + b`).
            let a_plus_b = if POS_WEIGHT { madd::<C, FMA>(p[i], y[i], a) } else { C::ONE };
            let loss = softplus_combination::<C, FMA>(x, e, a, b, a_plus_b);
            value[i] = if WEIGHTED { w[i] * loss } else { loss };
        }
        if GRAD {
            let (s_pos, s_neg) = sigmoid_pair::<C, FMA>(x, e);
            let d = a * s_pos - b * s_neg;
            grad[i] = if WEIGHTED { scale * go[i] * w[i] * d } else { scale * d };
        }
    }
}

impl<C: Real> Logits<C> {
    /// `block` for this call's operands, without multiplying by the ones of
    /// an absent operand; a weighted call without pos_weight reads ones for
    /// it (one variant fewer to compile; weights cost more than that).
    #[inline(always)]
    fn run<const FMA: bool, const VALUE: bool, const GRAD: bool>(
        &self,
        ins: [&[C]; NIN],
        value: &mut [C],
        grad: &mut [C],
    ) {
        let s = self.scale;
        match (self.pos_weight, self.weighted) {
            (false, false) => block::<C, FMA, VALUE, GRAD, false, false>(ins, value, grad, s),
            (true, false) => block::<C, FMA, VALUE, GRAD, true, false>(ins, value, grad, s),
            (_, true) => block::<C, FMA, VALUE, GRAD, true, true>(ins, value, grad, s),
        }
    }
}

impl<C: Real> BlockOp<C> for Logits<C> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError> {
        match (self.value, self.grad) {
            (true, true) => self.run::<FMA, true, true>(ins, value, grad),
            (true, false) => self.run::<FMA, true, false>(ins, value, grad),
            (false, true) => self.run::<FMA, false, true>(ins, value, grad),
            (false, false) => {}
        }
        Ok(())
    }
}
