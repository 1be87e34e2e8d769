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
use super::logits::{Outputs, with_outputs};
use super::math::{Real, Smoothing, floored, madd, sigmoid_pair, times, two_product, two_sum};
use super::parallel::{BlockOp, NIN, NOUT};
use super::walk::BLOCK;

/// The focal loss's parameters (converted to the compute type by `block`).
pub(crate) struct Focal<C> {
    pub outputs: Outputs,
    /// A weight or grad_output is given.
    pub weighted: bool,
    /// Factor of every gradient and second-derivative element.
    pub scale: f64,
    pub label_smoothing: f64,
    /// Floor of each element's second derivative (before `scale`).
    pub min_hess: f64,
    /// `(alpha, 1 - alpha)`, or None when the class weighting is off.
    pub alpha: Option<(f64, f64)>,
    pub gamma: f64,
    pub compute: std::marker::PhantomData<C>,
}

/// `gamma ln m` as an unevaluated sum `(hi, lo)`, for `m^gamma = exp(hi +
/// lo)`, from `x`, `e = exp(-|x|)`, `log1p_e = log1p(e)`, the target weight
/// `near` of the larger sigmoid and `z + z_lo = near + far e` (`far` the
/// other's), since `m = z / (1 + e)`.
///
/// `ln m = big + small`: where `near` is 0, `big = -|x|` (then `far` is 1
/// and `z = e`); else `big = k ln2_hi` for `z = 2^k (1 + f)`, or 0 for hard
/// targets (`HARD`: then `z` is 1). `big` is exact, and `gamma big` is
/// split exactly into `hi` and a part of `lo`.
#[inline(always)]
fn exponent_of_m<W: Real, const FMA: bool, const HARD: bool>(
    x: W,
    log1p_e: W,
    near: W,
    z: W,
    z_lo: W,
    gamma: W,
) -> (W, W) {
    let near_zero = near == W::ZERO;
    let abs_x = if x < W::ZERO { -x } else { x };
    let (big, small) = if HARD {
        (if near_zero { -abs_x } else { W::ZERO }, -log1p_e)
    } else {
        let (f, k) = z.ln_parts();
        // ln(z + z_lo) = ln z + z_lo / z, up to (z_lo / z)^2.
        let log_z = madd::<W, FMA>(k, W::LN2_LO, W::log1p_reduced::<FMA>(f, W::ZERO) + z_lo / z);
        if near_zero { (-abs_x, -log1p_e) } else { (k * W::LN2_HI, log_z - log1p_e) }
    };
    let (hi, lo) = two_product::<W, FMA>(gamma, big);
    (hi, madd::<W, FMA>(gamma, small, lo))
}

/// The focal loss's elements in the compute type `W`. `HARD`: every target
/// is 0 or 1 and nothing smooths, so `near + far e` is `e` or 1 and needs
/// no logarithm and no division.
#[inline(always)]
fn elements<
    C: Real,
    W: Real,
    const FMA: bool,
    const VALUE: bool,
    const GRAD: bool,
    const HESS: bool,
    const WEIGHTED: bool,
    const HARD: bool,
>(
    op: &Focal<C>,
    ins: [&[C]; NIN],
    outs: [&mut [C]; NOUT],
) {
    let [x, y, w, _, go] = ins;
    let n = x.len();
    let (y, w, go) = (&y[..n], &w[..n], &go[..n]);
    let [value, grad, hess] = outs;
    let (value, grad, hess) = (&mut value[..n], &mut grad[..n], &mut hess[..n]);
    let wide = |v: f64| W::from_f64(v);
    let (scale, min_hess, gamma) = (wide(op.scale), wide(op.min_hess), wide(op.gamma));
    let smoothing = Smoothing::<W>::new(op.label_smoothing);
    let (alpha_on, (alpha, beta)) = (op.alpha.is_some(), op.alpha.unwrap_or((1.0, 1.0)));
    let (alpha, beta) = (wide(alpha), wide(beta));
    let load = |v: C| W::from_f64(v.to_f64());
    // Three loops over the block, each with a short chain of dependent
    // arithmetic: in one loop, the second exponential after the first and
    // the logarithm kept so many values live across the interleaved vector
    // iterations (.cargo/config.toml) that they spilled to memory
    // (docs/numerics.md).
    // (A block op gets at most BLOCK elements: `Walk::run` cuts them so.)
    let [mut e_of, mut ce_of, mut hi_of, mut lo_of, mut z_of] = [[W::ZERO; BLOCK]; 5];
    for i in 0..n {
        let x = load(x[i]);
        let y_i = load(y[i]);
        let (a, t) = if HARD { (W::ONE - y_i, y_i) } else { smoothing.complement_and_target::<FMA>(y_i) };
        let (e, e_lo) = W::exp_sum_parts::<FMA, false>(if x < W::ZERO { x } else { -x }, W::ZERO);
        let log1p_e = W::log1p_unit::<FMA>(e);
        let positive = x >= W::ZERO;
        // The plain loss, `softplus_combination` with `a + t = 1`, from the
        // one `log1p(e)` that `m^gamma` needs too.
        let ce = log1p_e + times(if positive { a } else { t }, if positive { x } else { -x });
        let (near, far) = if positive { (a, t) } else { (t, a) };
        let z = if HARD { W::ONE } else { madd::<W, FMA>(far, e, near) };
        // For float64 data, `z`'s rounding error and those of what it is
        // made of (gamma multiplies each in `m^gamma`).
        let z_lo = if !HARD && C::DTYPE == DType::F64 {
            let (a_lo, t_lo) = smoothing.errors::<FMA>(y_i, a, t);
            let (near_lo, far_lo) = if positive { (a_lo, t_lo) } else { (t_lo, a_lo) };
            let (fe, fe_lo) = two_product::<W, FMA>(far, e);
            let (sum, sum_lo) = two_sum(fe, near);
            (sum - z) + sum_lo + fe_lo + madd::<W, FMA>(far, e_lo, madd::<W, FMA>(far_lo, e, near_lo))
        } else {
            W::ZERO
        };
        (hi_of[i], lo_of[i]) = exponent_of_m::<W, FMA, HARD>(x, log1p_e, near, z, z_lo, gamma);
        (e_of[i], ce_of[i], z_of[i]) = (e, ce, z);
    }
    // m^gamma, into `hi_of`.
    for i in 0..n {
        hi_of[i] = if gamma == W::ZERO { W::ONE } else { W::exp_sum::<FMA, true>(hi_of[i], lo_of[i]) };
    }
    for i in 0..n {
        let (x, e, ce, z, m_gamma) = (load(x[i]), e_of[i], ce_of[i], z_of[i], hi_of[i]);
        let y_i = load(y[i]);
        let (a, t) = if HARD { (W::ONE - y_i, y_i) } else { smoothing.complement_and_target::<FMA>(y_i) };
        let positive = x >= W::ZERO;
        let near_zero = (if positive { a } else { t }) == W::ZERO;
        let alpha_t = if alpha_on { madd::<W, FMA>(alpha, t, beta * a) } else { W::ONE };
        let weight = if WEIGHTED { load(w[i]) * alpha_t } else { alpha_t };
        if VALUE {
            value[i] = C::from_f64((weight * (m_gamma * ce)).to_f64());
        }
        if GRAD || HESS {
            let (s_pos, s_neg) = sigmoid_pair::<W, FMA>(x, e);
            let r = if positive { s_pos } else { s_neg };
            // s / m = r e / z (r where near is 0, and z = e).
            let s_over_m = if near_zero {
                r
            } else if HARD {
                r * e
            } else {
                r * (e / z)
            };
            let u = (a - t) * s_over_m;
            let u_ce = times(u, ce);
            let g = a * s_pos - t * s_neg;
            let factor = if WEIGHTED { scale * load(go[i]) } else { scale };
            grad[i] = C::from_f64((factor * (weight * (m_gamma * madd::<W, FMA>(gamma, u_ce, g)))).to_f64());
            if HESS {
                let s = s_pos * s_neg;
                let bend = madd::<W, FMA>(gamma - W::ONE, u, s_neg - s_pos);
                let h = madd::<W, FMA>(gamma * u_ce, bend, madd::<W, FMA>(gamma + gamma, u * g, s));
                hess[i] = C::from_f64((factor * floored(weight * (m_gamma * h), min_hess)).to_f64());
            }
        }
    }
}

/// Blocks of hard targets (0 or 1, no smoothing) take the short path, in
/// the data's own compute type; others compute in float64 whatever the
/// data type: for float32 data each rounding is then 2^29 times finer than
/// float32's (which `gamma` multiplies in `m^gamma`: soft targets reached 11
/// ULP in float32), and the second derivative's terms, proportional to
/// `e = exp(-|x|)`, keep their bits below 1e-38.
#[inline(always)]
fn block<C: Real, const FMA: bool, const VALUE: bool, const GRAD: bool, const HESS: bool, const WEIGHTED: bool>(
    op: &Focal<C>,
    ins: [&[C]; NIN],
    outs: [&mut [C]; NOUT],
) {
    // Without short-circuits: a branch per target, on random labels, is
    // mispredicted half the time, and costs more than the loss itself.
    let hard = op.label_smoothing == 0.0 && ins[1].iter().fold(true, |all, &y| all & ((y == C::ZERO) | (y == C::ONE)));
    if hard {
        elements::<C, C, FMA, VALUE, GRAD, HESS, WEIGHTED, true>(op, ins, outs)
    } else {
        elements::<C, f64, FMA, VALUE, GRAD, HESS, WEIGHTED, false>(op, ins, outs)
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
        with_outputs!(self.outputs, |VALUE, GRAD, HESS| self.run::<FMA, VALUE, GRAD, HESS>(ins, outs));
        Ok(())
    }
}
