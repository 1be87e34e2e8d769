//! Binary cross-entropy with logits: loss, gradient, second derivative, or
//! several in one pass.
//!
//! With `a = 1 - y` and `b = pos_weight * y`, the loss element is
//! `w * (a * softplus(x) + b * softplus(-x))`, its derivative
//! `w * (a * sigmoid(x) - b * sigmoid(-x))` and its second derivative
//! `w * (a + b) * sigmoid(x) * sigmoid(-x)`: the loss and the second
//! derivative are sums and products of non-negative terms, so they never
//! cancel, and the gradient's tails keep full precision.

use super::KernelError;
use super::math::{Real, Smoothing, exp_neg_abs, floored, madd, sigmoid_pair, softplus_combination};
use super::parallel::{BlockOp, NIN, NOUT};

/// Which results a call writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outputs {
    pub value: bool,
    pub grad: bool,
    pub hess: bool,
}

/// Evaluates `$body` with the consts `$value`, `$grad` and `$hess` set
/// from `$outputs`, for a block function's const parameters. A second
/// derivative alone is computed with the gradient (which it needs most
/// of), written to scratch: one variant fewer.
macro_rules! with_outputs {
    ($outputs:expr, |$value:ident, $grad:ident, $hess:ident| $body:expr) => {{
        use $crate::kernels::logits::Outputs;
        macro_rules! case {
            ($v:literal, $g:literal, $h:literal) => {{
                const $value: bool = $v;
                const $grad: bool = $g;
                const $hess: bool = $h;
                $body
            }};
        }
        match $outputs {
            Outputs { value: true, grad: false, hess: false } => case!(true, false, false),
            Outputs { value: false, grad: true, hess: false } => case!(false, true, false),
            Outputs { value: true, grad: true, hess: false } => case!(true, true, false),
            Outputs { value: false, hess: true, .. } => case!(false, true, true),
            Outputs { value: true, hess: true, .. } => case!(true, true, true),
            Outputs { value: false, grad: false, hess: false } => case!(false, false, false),
        }
    }};
}
pub(crate) use with_outputs;

pub(crate) struct Logits<C> {
    pub outputs: Outputs,
    /// A pos_weight is given.
    pub pos_weight: bool,
    /// A weight or grad_output is given.
    pub weighted: bool,
    /// Factor of every gradient and second-derivative element
    /// (grad_output, divided by the count for a mean).
    pub scale: C,
    pub smoothing: Smoothing<C>,
    /// Floor of each element's second derivative (before `scale`).
    pub min_hess: C,
}

#[inline(always)]
fn block<
    C: Real,
    const FMA: bool,
    const VALUE: bool,
    const GRAD: bool,
    const HESS: bool,
    const POS_WEIGHT: bool,
    const WEIGHTED: bool,
    const SMOOTH: bool,
>(
    op: &Logits<C>,
    ins: [&[C]; NIN],
    outs: [&mut [C]; NOUT],
) {
    let [x, y, w, p, go] = ins;
    let n = x.len();
    let (y, w, p, go) = (&y[..n], &w[..n], &p[..n], &go[..n]);
    let [value, grad, hess] = outs;
    let (value, grad, hess) = (&mut value[..n], &mut grad[..n], &mut hess[..n]);
    let (scale, smoothing, min_hess) = (op.scale, op.smoothing, op.min_hess);
    for i in 0..n {
        let x = x[i];
        // (Two fused multiply-adds more per element, a cost the float64
        // loss and gradient feel: only where asked for.)
        let (a, t) = if SMOOTH { smoothing.complement_and_target::<FMA>(y[i]) } else { (C::ONE - y[i], y[i]) };
        let b = if POS_WEIGHT { p[i] * t } else { t };
        // With b = t, a + b is 1 (exactly, mathematically; use it so).
        // Otherwise it is `p * t + a`, one fused multiply-add that does
        // not wait for `b` (measured faster than `a + b`).
        let a_plus_b = if POS_WEIGHT { madd::<C, FMA>(p[i], t, a) } else { C::ONE };
        let e = exp_neg_abs::<C, FMA>(x);
        if VALUE {
            let loss = softplus_combination::<C, FMA>(x, e, a, b, a_plus_b);
            value[i] = if WEIGHTED { w[i] * loss } else { loss };
        }
        if GRAD || HESS {
            let (s_pos, s_neg) = sigmoid_pair::<C, FMA>(x, e);
            let factor = if WEIGHTED { scale * go[i] } else { scale };
            let d = a * s_pos - b * s_neg;
            grad[i] = if WEIGHTED { factor * w[i] * d } else { factor * d };
            if HESS {
                let c = if WEIGHTED { w[i] } else { C::ONE };
                // (1 exactly, but NaN for a NaN target, which must propagate.)
                #[allow(clippy::eq_op)]
                let a_plus_b = if POS_WEIGHT { a_plus_b } else { a_plus_b + (t - t) };
                let h = C::times_sigmoid_product::<FMA>(c, a_plus_b, e);
                hess[i] = factor * floored(h, min_hess);
            }
        }
    }
}

impl<C: Real> Logits<C> {
    /// `block` for this call's operands, without multiplying by the ones of
    /// an absent operand; a weighted call without pos_weight reads ones for
    /// it (one variant fewer to compile; weights cost more than that), and
    /// a smoothed call reads ones for both.
    #[inline(always)]
    fn run<const FMA: bool, const VALUE: bool, const GRAD: bool, const HESS: bool>(
        &self,
        ins: [&[C]; NIN],
        outs: [&mut [C]; NOUT],
    ) {
        match (self.pos_weight, self.weighted, self.smoothing.is_on()) {
            (false, false, false) => block::<C, FMA, VALUE, GRAD, HESS, false, false, false>(self, ins, outs),
            (true, false, false) => block::<C, FMA, VALUE, GRAD, HESS, true, false, false>(self, ins, outs),
            (_, true, false) => block::<C, FMA, VALUE, GRAD, HESS, true, true, false>(self, ins, outs),
            // Smoothing is rare enough to go through the most general variant.
            (_, _, true) => block::<C, FMA, VALUE, GRAD, HESS, true, true, true>(self, ins, outs),
        }
    }
}

impl<C: Real> BlockOp<C> for Logits<C> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], outs: [&mut [C]; NOUT]) -> Result<(), KernelError> {
        with_outputs!(self.outputs, |VALUE, GRAD, HESS| self.run::<FMA, VALUE, GRAD, HESS>(ins, outs));
        Ok(())
    }
}
