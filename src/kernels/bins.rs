//! Reliability bins: per bin (and group), the count of elements and the
//! sums of the weight, the weighted probability, the weighted label and the
//! weighted squared error (the Brier score's sum), in one pass. The bin of `p` is the number of inner edges below it, as
//! `numpy.searchsorted(edges[1:-1], p)` (and so scikit-learn's
//! `calibration_curve`) gives it: the first bin closed, NaN in the last.

use super::KernelError;
use super::parallel::{run_chunks, try_zeros};
use super::pool::num_threads;

/// Sums per bin.
pub const SUMS: usize = 4;

/// Elements per parallel chunk.
const CHUNK_LEN: usize = 1 << 16;

/// The sums of one set of bins: `(weight, weight * p, weight * y, weight *
/// (p - y)^2)` per bin, and the count of elements per bin.
pub struct BinSums {
    pub sums: Vec<[f64; SUMS]>,
    pub counts: Vec<u64>,
}

/// Adds every element `i` to bin `bin(p[i]) + group[i] * bins` of `groups`
/// sets of bins, `bins = edges.len() - 1`; without `weight`, each weighs 1;
/// without `group`, every element is in group 0. `edges` are ascending,
/// the first 0 and the last 1 when `p` are probabilities (any edges work:
/// a bin is found by comparing with them).
pub fn bin_sums(
    p: &[f64],
    y: &[f64],
    weight: Option<&[f64]>,
    group: Option<&[i64]>,
    groups: usize,
    edges: &[f64],
) -> Result<BinSums, KernelError> {
    let bins = edges.len().saturating_sub(1).max(1);
    let cells = bins * groups.max(1);
    let mut total = BinSums { sums: try_zeros(cells)?, counts: try_zeros(cells)? };
    let chunks = p.len().div_ceil(CHUNK_LEN);
    let threads = if p.len() >= 4 * CHUNK_LEN { num_threads() } else { 1 };
    let chunk = |c: usize| {
        let range = c * CHUNK_LEN..((c + 1) * CHUNK_LEN).min(p.len());
        let mut part = BinSums { sums: try_zeros(cells)?, counts: try_zeros(cells)? };
        for i in range {
            let cell = bin_of(p[i], edges) + group.map_or(0, |g| g[i] as usize * bins);
            let w = weight.map_or(1.0, |w| w[i]);
            let sums = &mut part.sums[cell];
            let error = p[i] - y[i];
            sums[0] += w;
            sums[1] += w * p[i];
            sums[2] += w * y[i];
            sums[3] += w * error * error;
            part.counts[cell] += 1;
        }
        Ok(part)
    };
    run_chunks(chunks, threads, cells * (SUMS + 1) * 8, chunk, |part: BinSums| {
        for (t, s) in total.sums.iter_mut().zip(&part.sums) {
            for k in 0..SUMS {
                t[k] += s[k];
            }
        }
        for (t, n) in total.counts.iter_mut().zip(&part.counts) {
            *t += n;
        }
    })?;
    Ok(total)
}

/// The number of inner edges (`edges[1..bins]`) strictly below `p`; NaN
/// counts as above them all. For equal-width edges `floor(p * bins)` is
/// the answer or a neighbour (the edges are rounded), which one comparison
/// on each side settles; other edges fall back to a binary search.
fn bin_of(p: f64, edges: &[f64]) -> usize {
    let bins = edges.len() - 1;
    if bins <= 1 {
        return 0;
    }
    if p.is_nan() {
        return bins - 1;
    }
    let guess = ((p * bins as f64).floor().max(0.0) as usize).min(bins - 1);
    let settled = if guess > 0 && p <= edges[guess] {
        guess - 1
    } else if guess < bins - 1 && p > edges[guess + 1] {
        guess + 1
    } else {
        guess
    };
    let inner = &edges[1..bins];
    let in_bin = (settled == 0 || p > inner[settled - 1]) && (settled == bins - 1 || p <= inner[settled]);
    if in_bin { settled } else { inner.partition_point(|&e| e < p) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy.searchsorted(edges[1:-1], p), side "left", NaN last.
    fn searchsorted(p: f64, edges: &[f64]) -> usize {
        let inner = &edges[1..edges.len() - 1];
        if p.is_nan() { inner.len() } else { inner.partition_point(|&e| e < p) }
    }

    fn linspace(bins: usize) -> Vec<f64> {
        // NumPy's linspace(0, 1, bins + 1): i * step, the last exactly 1.
        let step = 1.0 / bins as f64;
        let mut e: Vec<f64> = (0..=bins).map(|i| i as f64 * step).collect();
        e[bins] = 1.0;
        e
    }

    #[test]
    fn bins_are_numpys_at_and_around_every_edge() {
        for bins in [1, 2, 3, 7, 10, 25, 100, 1000] {
            let edges = linspace(bins);
            let mut probes = vec![0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
            for &e in &edges {
                probes.extend([e, e.next_up(), e.next_down()]);
            }
            probes.extend((0..10_000).map(|i| i as f64 / 9_999.0));
            for p in probes {
                assert_eq!(bin_of(p, &edges), searchsorted(p, &edges), "p = {p:e}, {bins} bins");
            }
        }
        let uneven = [0.0, 0.01, 0.5, 0.51, 0.9, 1.0];
        for p in [0.0, 0.005, 0.01, 0.3, 0.5, 0.505, 0.51, 0.7, 0.9, 0.95, 1.0] {
            assert_eq!(bin_of(p, &uneven), searchsorted(p, &uneven), "p = {p}");
        }
    }

    #[test]
    fn sums_per_bin_and_group_on_any_thread_count() {
        let _guard = crate::kernels::test_lock();
        let n = 300_000;
        let p: Vec<f64> = (0..n).map(|i| ((i * 7919) % 10_007) as f64 / 10_006.0).collect();
        let y: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 == 0))).collect();
        let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64).collect();
        let g: Vec<i64> = (0..n).map(|i| (i % 4) as i64).collect();
        let edges = linspace(10);
        let mut want = vec![[0.0f64; SUMS]; 40];
        let mut count = vec![0u64; 40];
        for i in 0..n {
            let cell = searchsorted(p[i], &edges) + g[i] as usize * 10;
            want[cell][0] += w[i];
            want[cell][1] += w[i] * p[i];
            want[cell][2] += w[i] * y[i];
            want[cell][3] += w[i] * (p[i] - y[i]) * (p[i] - y[i]);
            count[cell] += 1;
        }
        let before = num_threads();
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            crate::kernels::set_num_threads(threads).unwrap();
            results.push(bin_sums(&p, &y, Some(&w), Some(&g), 4, &edges).unwrap());
        }
        crate::kernels::set_num_threads(before).unwrap();
        for r in &results {
            assert_eq!(r.counts, count);
            for (a, b) in r.sums.iter().zip(&want) {
                for k in 0..SUMS {
                    assert!((a[k] - b[k]).abs() <= 1e-12 * b[k].abs(), "{a:?} {b:?}");
                }
            }
            assert_eq!(r.sums, results[0].sums, "the same bits on any thread count");
        }
        let unweighted = bin_sums(&p, &y, None, None, 1, &edges).unwrap();
        assert_eq!(unweighted.counts.iter().sum::<u64>(), n as u64);
        assert_eq!(unweighted.sums.iter().map(|s| s[0]).sum::<f64>(), n as f64);
    }
}
