//! Focal loss (torchvision's `sigmoid_focal_loss`): the logit loss `ce`
//! times `alpha_t * (1 - p_t)^gamma`, with `p = sigmoid(x)`,
//! `p_t = p y + (1 - p) (1 - y)` and `alpha_t = alpha y + (1 - alpha) (1 - y)`
//! (1 when alpha is off), and its first two derivatives.
//!
//! `m = 1 - p_t = (1 - y) sigmoid(x) + y sigmoid(-x)` is a sum of
//! non-negative terms, and `m^gamma` is computed as `exp(gamma ln m)` with
//! `ln m = ln(near + far e) - log1p(e)`, `e = exp(-|x|)`, `near` the target
//! weight of the larger sigmoid and `far` the other's. The large part of
//! `gamma ln m` (`-gamma |x|` where `near` is 0, else `gamma k ln2` from the
//! exponent of `near + far e`) is carried exactly, as the sum of two floats,
//! into the exponential: a rounded `gamma ln m` of magnitude 50 would be off
//! by 50 units of its last place in the result. Nothing raises `m` to
//! `gamma - 1`: the derivatives use `sigmoid(x) sigmoid(-x) / m`, which is
//! `r e / (near + far e)` (`r = 1 / (1 + e)`), bounded for every `gamma >= 0`.
//!
//! With `u = (1 - 2y) s / m` (`s = sigmoid(x) sigmoid(-x)`) and `g` the
//! logit loss's gradient,
//!
//! ```text
//! d/dx   = alpha_t m^gamma (g + gamma u ce)
//! d2/dx2 = alpha_t m^gamma (gamma u ce ((gamma - 1) u + 1 - 2 sigmoid(x)) + 2 gamma u g + s)
//! ```
//!
//! The second derivative is negative for confidently wrong predictions.

use super::KernelError;
use super::logits::Outputs;
use super::math::{
    Real, Smoothing, exp_neg_abs, floored, madd, sigmoid_pair, softplus_combination, times, two_product,
};
use super::parallel::{BlockOp, NIN, NOUT};

pub(crate) struct Focal<C> {
    pub outputs: Outputs,
    /// A weight or grad_output is given.
    pub weighted: bool,
    /// Factor of every gradient and second-derivative element.
    pub scale: C,
    pub smoothing: Smoothing<C>,
    /// Floor of each element's second derivative (before `scale`).
    pub min_hess: C,
    /// `(alpha, 1 - alpha)`, or None when the class weighting is off.
    pub alpha: Option<(C, C)>,
    pub gamma: C,
}

#[inline(always)]
fn block<C: Real, const FMA: bool, const VALUE: bool, const GRAD: bool, const HESS: bool, const WEIGHTED: bool>(
    op: &Focal<C>,
    ins: [&[C]; NIN],
    outs: [&mut [C]; NOUT],
) {
    let [x, y, w, _, go] = ins;
    let n = x.len();
    let (y, w, go) = (&y[..n], &w[..n], &go[..n]);
    let [value, grad, hess] = outs;
    let (value, grad, hess) = (&mut value[..n], &mut grad[..n], &mut hess[..n]);
    let (scale, smoothing, min_hess, gamma) = (op.scale, op.smoothing, op.min_hess, op.gamma);
    let (alpha_on, (alpha, beta)) = (op.alpha.is_some(), op.alpha.unwrap_or((C::ONE, C::ONE)));
    for i in 0..n {
        let x = x[i];
        let (a, t) = smoothing.complement_and_target::<FMA>(y[i]);
        let e = exp_neg_abs::<C, FMA>(x);
        let ce = softplus_combination::<C, FMA>(x, e, a, t, C::ONE);
        let positive = x >= C::ZERO;
        let (near, far) = if positive { (a, t) } else { (t, a) };
        // ln m = big + small, `big` exact: -|x| where near is 0 (then far
        // is 1), else k ln2_hi for z = near + far e = 2^k (1 + f).
        let z = madd::<C, FMA>(far, e, near);
        let (f, k) = z.ln_parts();
        let log1p_e = C::log1p_unit::<FMA>(e);
        let near_zero = near == C::ZERO;
        let big = if near_zero { if positive { -x } else { x } } else { k * C::LN2_HI };
        let small = if near_zero {
            -log1p_e
        } else {
            madd::<C, FMA>(k, C::LN2_LO, C::log1p_reduced::<FMA>(f, C::ZERO)) - log1p_e
        };
        let (hi, lo) = two_product::<C, FMA>(gamma, big);
        let m_gamma =
            if gamma == C::ZERO { C::ONE } else { C::exp_sum::<FMA, true>(hi, madd::<C, FMA>(gamma, small, lo)) };
        let alpha_t = if alpha_on { madd::<C, FMA>(alpha, t, beta * a) } else { C::ONE };
        let weight = if WEIGHTED { w[i] * alpha_t } else { alpha_t };
        if VALUE {
            value[i] = weight * (m_gamma * ce);
        }
        if GRAD || HESS {
            let (s_pos, s_neg) = sigmoid_pair::<C, FMA>(x, e);
            let r = if positive { s_pos } else { s_neg };
            // s / m = r e / z (r where near is 0, and z = e).
            let s_over_m = if near_zero { r } else { r * (e / z) };
            let u = (a - t) * s_over_m;
            let u_ce = times(u, ce);
            let g = a * s_pos - t * s_neg;
            let factor = if WEIGHTED { scale * go[i] } else { scale };
            grad[i] = factor * (weight * (m_gamma * madd::<C, FMA>(gamma, u_ce, g)));
            if HESS {
                let s = s_pos * s_neg;
                let bend = madd::<C, FMA>(gamma - C::ONE, u, s_neg - s_pos);
                let h = madd::<C, FMA>(gamma * u_ce, bend, madd::<C, FMA>(gamma + gamma, u * g, s));
                hess[i] = factor * floored(weight * (m_gamma * h), min_hess);
            }
        }
    }
}

impl<C: Real> Focal<C> {
    #[inline(always)]
    fn run<const FMA: bool, const VALUE: bool, const GRAD: bool, const HESS: bool>(
        &self,
        ins: [&[C]; NIN],
        outs: [&mut [C]; NOUT],
    ) {
        if self.weighted {
            block::<C, FMA, VALUE, GRAD, HESS, true>(self, ins, outs)
        } else {
            block::<C, FMA, VALUE, GRAD, HESS, false>(self, ins, outs)
        }
    }
}

impl<C: Real> BlockOp<C> for Focal<C> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], outs: [&mut [C]; NOUT]) -> Result<(), KernelError> {
        match self.outputs {
            Outputs { value: true, grad: false, hess: false } => self.run::<FMA, true, false, false>(ins, outs),
            Outputs { value: false, grad: true, hess: false } => self.run::<FMA, false, true, false>(ins, outs),
            Outputs { value: true, grad: true, hess: false } => self.run::<FMA, true, true, false>(ins, outs),
            Outputs { value: false, hess: true, .. } => self.run::<FMA, false, true, true>(ins, outs),
            Outputs { value: true, hess: true, .. } => self.run::<FMA, true, true, true>(ins, outs),
            Outputs { value: false, grad: false, hess: false } => {}
        }
        Ok(())
    }
}
