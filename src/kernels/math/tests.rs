//! The vectorizable math against the standard library's (correctly rounded
//! or nearly) functions evaluated in a wider type.
//!
//! The exhaustive float32 checks walk every float32 in the range the losses
//! use; they take a few seconds in a release build and are `#[ignore]`d in
//! debug builds: `cargo test --release -- --ignored` runs them (CI does).

use super::*;
use crate::kernels::simd::{Kernel, Level, dispatch, set_level};
use crate::kernels::test_lock;

/// Error of `got` in units of the last place of `want` rounded to f32.
fn ulps32(got: f32, want: f64) -> f64 {
    if got as f64 == want || (got.is_nan() && want.is_nan()) {
        return 0.0;
    }
    let w = want as f32;
    let ulp = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64;
    (got as f64 - want).abs() / ulp
}

fn ulps64(got: f64, want: f64, ulp_at: f64) -> f64 {
    if got == want {
        return 0.0;
    }
    let a = ulp_at.abs();
    let ulp = f64::from_bits(a.to_bits() + 1) - a;
    (got - want).abs() / ulp
}

/// The math function under test, with `FMA` fixed by the level.
#[derive(Clone, Copy)]
enum Func {
    Exp,
    Log1p,
    Ln,
    LnOneMinus,
    Recip,
}

impl Func {
    /// The float32 error bound in ULP: 1, but for log1p's single polynomial
    /// (used where FMA is one instruction), whose last roundings (of the
    /// polynomial, of `e^2` and of the result) add up to about 1.2 ULP near
    /// `e = 1`.
    fn bound_f32(self) -> f64 {
        if matches!(self, Func::Log1p) { 1.25 } else { 1.0 }
    }
}

struct Eval<'a, T> {
    func: Func,
    values: &'a mut [T],
}

impl<T: Real> Kernel for Eval<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        match self.func {
            Func::Exp => self.values.iter_mut().for_each(|v| *v = v.exp_nonpositive::<FMA>()),
            Func::Log1p => self.values.iter_mut().for_each(|v| *v = T::log1p_unit::<FMA>(*v)),
            Func::Ln => self.values.iter_mut().for_each(|v| *v = ln_unit::<T, FMA>(*v)),
            Func::LnOneMinus => self.values.iter_mut().for_each(|v| *v = ln_one_minus::<T, FMA>(*v)),
            Func::Recip => self.values.iter_mut().for_each(|v| *v = T::quotient::<FMA>(T::ONE, *v)),
        }
    }
}

fn eval<T: Real>(func: Func, values: &mut [T]) {
    dispatch(Eval { func, values });
}

fn reference(func: Func, x: f64) -> f64 {
    match func {
        Func::Exp => x.exp(),
        Func::Log1p => x.ln_1p(),
        Func::Ln => x.ln(),
        Func::LnOneMinus => (-x).ln_1p(),
        Func::Recip => 1.0 / x,
    }
}

/// Worst error in ULP over every `step`-th f32 with bits in `bits`, per
/// level; fails at the first error above the level's bound.
fn worst_f32(func: Func, bits: std::ops::Range<u32>, step: u32) -> Vec<(Level, f64)> {
    let _guard = test_lock();
    let mut report = Vec::new();
    for level in Level::available() {
        set_level(level).unwrap();
        let mut worst: f64 = 0.0;
        let mut start = bits.start;
        while start < bits.end {
            let inputs: Vec<f32> = (0..1 << 16)
                .map(|i| start.saturating_add(i * step))
                .filter(|&b| b < bits.end)
                .map(f32::from_bits)
                .collect();
            let mut out = inputs.clone();
            eval(func, &mut out);
            let bound = func.bound_f32();
            for (&x, &y) in inputs.iter().zip(&out) {
                let e = ulps32(y, reference(func, x as f64));
                assert!(e <= bound, "{level:?}: f({x:e}) = {y:e}, want {:e} ({e} ULP)", reference(func, x as f64));
                worst = worst.max(e);
            }
            start = start.saturating_add((1 << 16) * step);
        }
        report.push((level, worst));
    }
    set_level(crate::kernels::simd::detected()).unwrap();
    report
}

const NEG_ZERO: u32 = 0x8000_0000;

/// Float32 bit ranges: [-110, -0] holds every exp argument that does not
/// round to 0; [0, 1] every log argument.
fn exp_bits() -> std::ops::Range<u32> {
    NEG_ZERO..(-110.0f32).to_bits() + 1
}
fn unit_bits() -> std::ops::Range<u32> {
    0..1.0f32.to_bits() + 1
}

#[test]
fn f32_math_within_bound_sampled() {
    for func in [Func::Exp, Func::Log1p, Func::Ln, Func::LnOneMinus] {
        let bits = if matches!(func, Func::Exp) { exp_bits() } else { unit_bits() };
        worst_f32(func, bits, 997);
    }
}

// Measured over every float32 input, max ULP at Baseline (SSE2) / AVX2 / AVX-512:
//   exp     [-110, 0]   0.957 / 0.987 / 0.987
//   log1p   [0, 1]      0.902 / 1.217 / 1.217
//   ln      [0, 1]      0.828 / 0.835 / 0.835
//   ln(1-x) [0, 1]      0.904 / 0.906 / 0.906
#[test]
#[ignore = "exhaustive: run with cargo test --release -- --ignored"]
fn f32_exp_exhaustive() {
    let worst = worst_f32(Func::Exp, exp_bits(), 1);
    println!("exp: max error (level, ULP) {worst:.4?}");
}

#[test]
#[ignore = "exhaustive: run with cargo test --release -- --ignored"]
fn f32_log1p_exhaustive() {
    let worst = worst_f32(Func::Log1p, unit_bits(), 1);
    println!("log1p: max error (level, ULP) {worst:.4?}");
}

#[test]
#[ignore = "exhaustive: run with cargo test --release -- --ignored"]
fn f32_ln_exhaustive() {
    let worst = worst_f32(Func::Ln, unit_bits(), 1);
    println!("ln: max error (level, ULP) {worst:.4?}");
}

#[test]
#[ignore = "exhaustive: run with cargo test --release -- --ignored"]
fn f32_ln_one_minus_exhaustive() {
    let worst = worst_f32(Func::LnOneMinus, unit_bits(), 1);
    println!("ln(1 - x): max error (level, ULP) {worst:.4?}");
}

/// Float64 against the standard library on a dense sample (the library's
/// own error, under 1 ULP, is part of what this measures).
#[test]
fn f64_math_within_two_ulp() {
    let _guard = test_lock();
    for level in Level::available() {
        set_level(level).unwrap();
        let mut worst = [0.0f64; 4];
        for (k, func) in [Func::Exp, Func::Log1p, Func::Ln, Func::LnOneMinus].into_iter().enumerate() {
            let inputs: Vec<f64> = match func {
                Func::Exp => (0..200_000).map(|i| -760.0 * (i as f64 / 200_000.0).powi(3)).collect(),
                _ => (0..200_000)
                    .map(|i| (i as f64 / 200_000.0).powi(5))
                    .chain([0.0, 1.0, 0.25, 0.5, 1e-300, 5e-324, 1.0 - f64::EPSILON / 2.0])
                    .collect(),
            };
            let mut out = inputs.clone();
            eval(func, &mut out);
            for (&x, &y) in inputs.iter().zip(&out) {
                let want = reference(func, x);
                if want.is_infinite() {
                    assert_eq!(y, want, "{func:?}({x:e})", func = k);
                    continue;
                }
                let e = ulps64(y, want, want);
                assert!(e <= 2.0, "{level:?} func {k}: f({x:e}) = {y:e}, want {want:e} ({e} ULP)");
                worst[k] = worst[k].max(e);
            }
        }
        println!("{level:?}: max ULP exp/log1p/ln/ln1m = {worst:?}");
    }
    set_level(crate::kernels::simd::detected()).unwrap();
}

/// The float64 reciprocal behind `quotient`, at every level, over `[1, 4]`
/// (dense, its ends, and float32 values with their float64 neighbours,
/// where the float32 start is exact or off by one rounding): its error,
/// `(1 - d r) / d`, is exact by fused multiply-add, and at most
/// `0.5 + 2^-16` ULP of `r` (see `recip_f64`); where FMA is not a single
/// instruction, `quotient` divides, so the error is at most 0.5 ULP.
#[test]
fn f64_reciprocal_within_half_ulp() {
    let _guard = test_lock();
    let mut inputs: Vec<f64> = (0..=600_000).map(|i| 1.0 + 3.0 * i as f64 / 600_000.0).collect();
    for k in 0..2_000u32 {
        let f = f32::from_bits(1.0f32.to_bits() + k * 4_000 + 1) as f64;
        inputs.extend([f, f64::from_bits(f.to_bits() - 1), f64::from_bits(f.to_bits() + 1), 4.0 / f]);
    }
    inputs.extend([f64::from_bits(4.0f64.to_bits() - 1), 3.0, 3.0 - f64::EPSILON]);
    for level in Level::available() {
        set_level(level).unwrap();
        let mut out = inputs.clone();
        eval(Func::Recip, &mut out);
        let mut worst = 0.0f64;
        for (&d, &r) in inputs.iter().zip(&out) {
            let ulp = f64::from_bits(r.to_bits() + 1) - r;
            let e = ((-d).mul_add(r, 1.0) / d).abs() / ulp;
            assert!(e <= 0.5 + 2f64.powi(-16), "{level:?}: 1 / {d:e} = {r:e} ({e} ULP)");
            worst = worst.max(e);
        }
        println!("{level:?}: max reciprocal error {worst:.6} ULP");
        let mut ends = [1.0f64, 2.0, 4.0, f64::NAN];
        eval(Func::Recip, &mut ends);
        assert_eq!(&ends[..3], &[1.0, 0.5, 0.25]);
        assert!(ends[3].is_nan());
    }
    set_level(crate::kernels::simd::detected()).unwrap();
}

#[test]
fn special_values() {
    let _guard = test_lock();
    for level in Level::available() {
        set_level(level).unwrap();
        let mut v = [f32::NAN, f32::NEG_INFINITY, -0.0, -1e-30, -104.0, -103.0, -87.0];
        eval(Func::Exp, &mut v);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..6], &[0.0, 1.0, 1.0, 0.0, f32::from_bits(1)]);
        assert!(v[6] > 1.6e-38);
        let mut v = [f64::NAN, 0.0, 1.0];
        eval(Func::Ln, &mut v);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[f64::NEG_INFINITY, 0.0]);
        let mut v = [f64::NAN, 0.0, 1.0];
        eval(Func::LnOneMinus, &mut v);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[0.0, f64::NEG_INFINITY]);
        let mut v = [f32::NAN, 0.0, 1.0];
        eval(Func::Log1p, &mut v);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[0.0, std::f32::consts::LN_2]);
    }
    set_level(crate::kernels::simd::detected()).unwrap();
}

#[test]
fn pairs_keep_tails_and_limits() {
    let x = -40.0f64;
    let e = exp_neg_abs::<f64, false>(x);
    let (pos, neg) = (
        softplus_combination::<f64, false>(x, e, 1.0, 0.0, 1.0),
        softplus_combination::<f64, false>(x, e, 0.0, 1.0, 1.0),
    );
    let want = (-40.0f64).exp();
    assert!(((pos - want) / want).abs() < 1e-15, "{pos} vs {want}");
    assert_eq!(neg, 40.0 + want);
    for &x in &[-30.0f64, -1.5, 0.0, 0.25, 17.0, 745.0] {
        let (p, n) = sigmoid_pair::<f64, false>(x, exp_neg_abs::<f64, false>(x));
        assert!((p + n - 1.0).abs() <= f64::EPSILON, "x = {x}");
    }
    let e = exp_neg_abs::<f64, false>(f64::INFINITY);
    assert_eq!(softplus_combination::<f64, false>(f64::INFINITY, e, 1.0, 0.0, 1.0), f64::INFINITY);
    assert_eq!(softplus_combination::<f64, false>(f64::INFINITY, e, 0.0, 1.0, 1.0), 0.0);
    assert_eq!(softplus_combination::<f64, false>(f64::NEG_INFINITY, e, 0.0, 2.0, 2.0), f64::INFINITY);
    assert_eq!(sigmoid_pair::<f64, false>(f64::INFINITY, e), (1.0, 0.0));
    assert_eq!(sigmoid_pair::<f64, false>(f64::NEG_INFINITY, e), (0.0, 1.0));
    assert_eq!(sigmoid_pair::<f64, true>(f64::INFINITY, e), (1.0, 0.0));
    assert_eq!(sigmoid_pair::<f64, true>(f64::NEG_INFINITY, e), (0.0, 1.0));
    assert_eq!(times(0.0, f64::INFINITY), 0.0);
}
