//! Binary cross-entropy with logits: loss, gradient, or both in one pass.
//!
//! With `a = 1 - y` and `b = pos_weight * y`, the loss element is
//! `w * (a * softplus(x) + b * softplus(-x))` and its derivative
//! `w * (a * sigmoid(x) - b * sigmoid(-x))`: two non-negative terms each,
//! so the loss never cancels and the gradient's tails keep full precision.

use super::KernelError;
use super::math::{Real, exp_neg_abs, sigmoid_pair, softplus_combination};
use super::parallel::{BlockOp, NIN};

pub(crate) struct Logits<C> {
    pub value: bool,
    pub grad: bool,
    /// Factor of every gradient element (grad_output, divided by the count
    /// for a mean).
    pub scale: C,
}

#[inline(always)]
fn block<C: Real, const FMA: bool, const VALUE: bool, const GRAD: bool>(
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
        let b = p[i] * y[i];
        let e = exp_neg_abs::<C, FMA>(x);
        if VALUE {
            value[i] = w[i] * softplus_combination::<C, FMA>(x, e, a, b);
        }
        if GRAD {
            let (s_pos, s_neg) = sigmoid_pair(x, e);
            grad[i] = scale * go[i] * w[i] * (a * s_pos - b * s_neg);
        }
    }
}

impl<C: Real> BlockOp<C> for Logits<C> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError> {
        match (self.value, self.grad) {
            (true, true) => block::<C, FMA, true, true>(ins, value, grad, self.scale),
            (true, false) => block::<C, FMA, true, false>(ins, value, grad, self.scale),
            (false, true) => block::<C, FMA, false, true>(ins, value, grad, self.scale),
            (false, false) => {}
        }
        Ok(())
    }
}
