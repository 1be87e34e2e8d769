//! Deterministic float64 summation: lane accumulators inside a chunk, and an
//! exactly rounded sum of the chunk partials.

use super::Small;
use super::math::Real;

/// Sixteen float64 accumulators; element `i` of a chunk always goes to lane
/// `i % 16`, so a chunk's sum depends only on its values, and the loop
/// vectorizes without reassociating anything.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Lanes([f64; 16]);

impl Lanes {
    /// Adds `values`, which start at a multiple of 16 within the chunk.
    #[inline(always)]
    pub fn add<C: Real>(&mut self, values: &[C]) {
        // A local copy stays in registers (two AVX-512 vectors).
        let mut acc = self.0;
        let mut blocks = values.chunks_exact(16);
        for block in &mut blocks {
            let block: &[C; 16] = block.try_into().unwrap();
            for l in 0..16 {
                acc[l] += block[l].to_f64();
            }
        }
        for (a, v) in acc.iter_mut().zip(blocks.remainder()) {
            *a += v.to_f64();
        }
        self.0 = acc;
    }

    /// The lanes combined pairwise, in a fixed tree.
    ///
    /// Not inlined: its pairwise steps, inlined beside `add`, make LLVM
    /// split the lanes into 2-wide vectors for `add` too, which slows the
    /// whole loss down.
    #[inline(never)]
    pub fn total(&self) -> f64 {
        let mut v = self.0;
        let mut width = v.len();
        while width > 1 {
            width /= 2;
            for i in 0..width {
                v[i] += v[i + width];
            }
        }
        v[0]
    }
}

/// The exactly rounded sum of a sequence of float64 values (Shewchuk's
/// algorithm, as Python's `math.fsum`). Its result does not depend on the
/// order of the values, so chunk partials combine to the same bits however
/// the chunks were scheduled or batched.
#[derive(Clone, Debug, Default)]
pub struct ExactSum {
    partials: Small<f64>,
    /// Plain sum of non-finite values (and of finite ones once the exact
    /// sum has overflowed); `None` while everything is finite.
    special: Option<f64>,
}

impl ExactSum {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, value: f64) {
        if !value.is_finite() || self.special.is_some() {
            self.special = Some(self.special.unwrap_or_else(|| self.value()) + value);
            return;
        }
        let mut x = value;
        let mut kept = 0;
        for k in 0..self.partials.len() {
            let mut y = self.partials[k];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        if x.is_finite() {
            self.partials.push(x);
        } else {
            self.special = Some(x);
        }
    }

    /// Adds another exact sum, exactly (the result is rounded only when read).
    pub fn add_sum(&mut self, other: &ExactSum) {
        for v in other.expansion() {
            self.add(v);
        }
    }

    /// Values whose exact sum is the sum (non-overlapping, so few), for
    /// combining sums without rounding: the exactly rounded sum of several
    /// expansions put together is that of all their values. A non-finite
    /// sum is its own expansion.
    pub fn expansion(&self) -> Small<f64> {
        match self.special {
            Some(s) => smallvec::smallvec![s],
            None => self.partials.clone(),
        }
    }

    /// The sum, rounded once to the nearest float64 (ties to even).
    pub fn value(&self) -> f64 {
        if let Some(s) = self.special {
            return s;
        }
        let p = &self.partials;
        let Some(&top) = p.last() else { return 0.0 };
        let mut hi = top;
        let mut lo = 0.0;
        let mut n = p.len() - 1;
        while n > 0 {
            let x = hi;
            let y = p[n - 1];
            n -= 1;
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        // Round half to even correctly when the rest of the expansion
        // pushes a tie one way (as math.fsum does).
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &[f64]) -> f64 {
        let mut s = ExactSum::new();
        values.iter().for_each(|&v| s.add(v));
        s.value()
    }

    #[test]
    fn exact_sum_is_exactly_rounded_and_order_free() {
        assert_eq!(exact(&[1e100, 1.0, -1e100, 1e-100]), 1.0 + 1e-100);
        assert_eq!(exact(&[0.1; 10]), 1.0);
        let v = [1.0, 1e-16, 1e-16, -0.5, 3.3e-17];
        let mut r = v;
        r.reverse();
        assert_eq!(exact(&v), exact(&r));
        // A tie broken by a third term: 1 + 2^-53 + 2^-106 rounds up.
        assert_eq!(exact(&[1.0, 2f64.powi(-53), 2f64.powi(-106)]), 1.0 + f64::EPSILON);
        assert_eq!(exact(&[]), 0.0);
    }

    #[test]
    fn exact_sum_special_values() {
        assert_eq!(exact(&[1.0, f64::INFINITY, 2.0]), f64::INFINITY);
        assert!(exact(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(exact(&[1.0, f64::NAN]).is_nan());
        assert_eq!(exact(&[f64::MAX, f64::MAX]), f64::INFINITY);
    }

    #[test]
    fn lanes_follow_a_fixed_order() {
        let values: Vec<f64> = (0..37).map(|i| 1.0 / (i as f64 + 1.0)).collect();
        let mut whole = Lanes::default();
        whole.add(&values);
        let mut split = Lanes::default();
        split.add(&values[..16]);
        split.add(&values[16..]);
        assert_eq!(whole.total().to_bits(), split.total().to_bits());
        assert!((whole.total() - values.iter().sum::<f64>()).abs() < 1e-14);
    }
}
