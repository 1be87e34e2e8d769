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
use super::elem::DType;
use super::logits::Outputs;
use super::math::{Real, Smoothing, floored, madd, sigmoid_pair, softplus_combination, times, two_product, two_sum};
use super::parallel::{BlockOp, NIN, NOUT};

/// The focal loss's parameters, in float64 (see `block`).
pub(crate) struct Focal<C> {
    pub outputs: Outputs,
    /// A weight or grad_output is given.
    pub weighted: bool,
    /// Factor of every gradient and second-derivative element.
    pub scale: f64,
    pub smoothing: Smoothing<f64>,
    /// Floor of each element's second derivative (before `scale`).
    pub min_hess: f64,
    /// `(alpha, 1 - alpha)`, or None when the class weighting is off.
    pub alpha: Option<(f64, f64)>,
    pub gamma: f64,
    pub compute: std::marker::PhantomData<C>,
}

/// `m^gamma = (1 - p_t)^gamma` from `e = exp(-|x|)`, the target weight
/// `near` of the larger sigmoid and `z + z_lo = near + far e` (`far` the
/// other's), since `m = z / (1 + e)`.
///
/// `ln m = big + small`: where `near` is 0, `big = -|x|` (then `far` is 1
/// and `z = e`); else `big = k ln2_hi` for `z = 2^k (1 + f)`. `big` is
/// exact, and `gamma big` is carried exactly, as two floats, into the
/// exponential.
#[inline(always)]
fn power_of_m<const FMA: bool>(x: f64, e: f64, near: f64, z: f64, z_lo: f64, gamma: f64) -> f64 {
    let (f, k) = z.ln_parts();
    let log1p_e = f64::log1p_unit::<FMA>(e);
    let near_zero = near == 0.0;
    let big = if near_zero { -x.abs() } else { k * f64::LN2_HI };
    // ln(z + z_lo) = ln z + z_lo / z, up to (z_lo / z)^2.
    let log_z = madd::<f64, FMA>(k, f64::LN2_LO, f64::log1p_reduced::<FMA>(f, 0.0) + z_lo / z);
    let small = if near_zero { -log1p_e } else { log_z - log1p_e };
    let (hi, lo) = two_product::<f64, FMA>(gamma, big);
    if gamma == 0.0 { 1.0 } else { f64::exp_sum::<FMA, true>(hi, madd::<f64, FMA>(gamma, small, lo)) }
}

/// Computes in float64 whatever the data type: for float32 data, each
/// rounding is then 2^29 times finer than float32's (which `gamma`
/// multiplies in `m^gamma`), and the terms of the second derivative, which
/// are proportional to `e = exp(-|x|)`, stay normal floats where float32's
/// would lose their bits below 1e-38.
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
    let (alpha_on, (alpha, beta)) = (op.alpha.is_some(), op.alpha.unwrap_or((1.0, 1.0)));
    for i in 0..n {
        let x = x[i].to_f64();
        let (a, t) = smoothing.complement_and_target::<FMA>(y[i].to_f64());
        let (e, e_lo) = f64::exp_sum_parts::<FMA, false>(-x.abs(), 0.0);
        let ce = softplus_combination::<f64, FMA>(x, e, a, t, 1.0);
        let positive = x >= 0.0;
        let (near, far) = if positive { (a, t) } else { (t, a) };
        let z = madd::<f64, FMA>(far, e, near);
        let near_zero = near == 0.0;
        // For float64 data, `z`'s rounding error and those of what it is
        // made of (gamma multiplies each in `m^gamma`).
        let z_lo = if C::DTYPE == DType::F64 {
            let (a_lo, t_lo) = smoothing.errors::<FMA>(y[i].to_f64(), a, t);
            let (near_lo, far_lo) = if positive { (a_lo, t_lo) } else { (t_lo, a_lo) };
            let (fe, fe_lo) = two_product::<f64, FMA>(far, e);
            let (sum, sum_lo) = two_sum(fe, near);
            (sum - z) + sum_lo + fe_lo + madd::<f64, FMA>(far, e_lo, madd::<f64, FMA>(far_lo, e, near_lo))
        } else {
            0.0
        };
        let m_gamma = power_of_m::<FMA>(x, e, near, z, z_lo, gamma);
        let alpha_t = if alpha_on { madd::<f64, FMA>(alpha, t, beta * a) } else { 1.0 };
        let weight = if WEIGHTED { w[i].to_f64() * alpha_t } else { alpha_t };
        if VALUE {
            value[i] = C::from_f64(weight * (m_gamma * ce));
        }
        if GRAD || HESS {
            let (s_pos, s_neg) = sigmoid_pair::<f64, FMA>(x, e);
            let r = if positive { s_pos } else { s_neg };
            // s / m = r e / z (r where near is 0, and z = e).
            let s_over_m = if near_zero { r } else { r * (e / z) };
            let u = (a - t) * s_over_m;
            let u_ce = times(u, ce);
            let g = a * s_pos - t * s_neg;
            let factor = if WEIGHTED { scale * go[i].to_f64() } else { scale };
            grad[i] = C::from_f64(factor * (weight * (m_gamma * madd::<f64, FMA>(gamma, u_ce, g))));
            if HESS {
                let s = s_pos * s_neg;
                let bend = madd::<f64, FMA>(gamma - 1.0, u, s_neg - s_pos);
                let h = madd::<f64, FMA>(gamma * u_ce, bend, madd::<f64, FMA>(gamma + gamma, u * g, s));
                hess[i] = C::from_f64(factor * floored(weight * (m_gamma * h), min_hess));
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
