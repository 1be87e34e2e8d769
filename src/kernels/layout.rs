//! The iteration plan: a walk over the elements of arrays that share one
//! shape, in an order that reads the input as contiguously as possible.

use super::Small;

/// Axes reordered, flipped and merged so that the walk is a sequence of
/// runs along the innermost axis. Every operand is addressed by a byte
/// offset from its base pointer; each element index is visited once.
#[derive(Debug)]
pub(crate) struct Plan {
    shape: Small<usize>,
    base: Small<isize>,
    /// `strides[op][axis]`, in bytes.
    strides: Small<Small<isize>>,
    len: usize,
}

impl Plan {
    /// Plans a walk over `shape` for operands with the given byte strides.
    /// Operand 0 leads: axes are ordered by its strides (largest outside),
    /// and axes where it runs backwards are flipped for every operand, so a
    /// reversed or Fortran-ordered input is still read front to back.
    pub fn new(shape: &[usize], strides: &[&[isize]]) -> Plan {
        let len = shape.iter().product();
        let nops = strides.len();
        if let Some(plan) = Self::flat(shape, strides, len) {
            return plan;
        }
        let mut axes: Small<usize> = (0..shape.len()).filter(|&d| shape[d] != 1).collect();
        let mut base: Small<isize> = smallvec::smallvec![0; nops];
        // Flip the axes the lead operand walks backwards.
        let mut st: Small<Small<isize>> = strides.iter().map(|s| Small::from_slice(s)).collect();
        for &d in &axes {
            if st[0][d] < 0 {
                for (op, s) in st.iter_mut().enumerate() {
                    base[op] += (shape[d] as isize - 1) * s[d];
                    s[d] = -s[d];
                }
            }
        }
        axes.sort_by_key(|&d| std::cmp::Reverse(st[0][d]));
        let mut plan_shape: Small<usize> = Small::new();
        let mut plan_strides: Small<Small<isize>> = smallvec::smallvec![Small::new(); nops];
        for &d in &axes {
            let mergeable = plan_shape.last().is_some()
                && (0..nops).all(|op| *plan_strides[op].last().unwrap() == st[op][d] * shape[d] as isize);
            if mergeable {
                *plan_shape.last_mut().unwrap() *= shape[d];
                for op in 0..nops {
                    *plan_strides[op].last_mut().unwrap() = st[op][d];
                }
            } else {
                plan_shape.push(shape[d]);
                for op in 0..nops {
                    plan_strides[op].push(st[op][d]);
                }
            }
        }
        if plan_shape.is_empty() {
            plan_shape.push(1);
            for s in &mut plan_strides {
                s.push(0);
            }
        }
        Plan { shape: plan_shape, base, strides: plan_strides, len }
    }

    /// The common case, planned without sorting: every operand walks all
    /// axes as one (C order, or broadcast along all of them), forwards.
    fn flat(shape: &[usize], strides: &[&[isize]], len: usize) -> Option<Plan> {
        let nd = shape.len();
        let inner = |s: &[isize]| s.last().copied().unwrap_or(0);
        let one_axis = |s: &&[isize]| (0..nd.saturating_sub(1)).all(|d| s[d] == s[d + 1] * shape[d + 1] as isize);
        if inner(strides[0]) < 0 || !strides.iter().all(one_axis) {
            return None;
        }
        Some(Plan {
            shape: smallvec::smallvec![len.max(usize::from(nd == 0))],
            base: smallvec::smallvec![0; strides.len()],
            strides: strides.iter().map(|s| smallvec::smallvec![inner(s)]).collect(),
            len,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Byte offset of element 0 of the walk, per operand.
    pub fn base(&self) -> &[isize] {
        &self.base
    }

    /// Per operand, the byte stride of the walk's consecutive elements if
    /// the operand is a single strided line over the whole walk (element
    /// `i` at `base + i * stride`), else `None`.
    pub fn flat_strides(&self) -> Small<Option<isize>> {
        let shape = &self.shape;
        self.strides
            .iter()
            .map(|s| (1..shape.len()).all(|d| s[d - 1] == s[d] * shape[d] as isize).then(|| s[shape.len() - 1]))
            .collect()
    }

    /// Per operand, `(period, stride)` if the operand repeats along the walk
    /// with a period of at most `max_period` elements: broadcast (stride 0)
    /// on the outer axes and a single strided line over the inner ones, so
    /// that element `i` is at `base + (i % period) * stride` (a per-class
    /// `pos_weight` over an `(N, C)` batch has period `C`). `None` otherwise.
    pub fn periods(&self, max_period: usize) -> Small<Option<(usize, isize)>> {
        let shape = &self.shape;
        let nd = shape.len();
        self.strides
            .iter()
            .map(|s| {
                let first = (0..nd).find(|&d| s[d] != 0)?;
                let line = (first + 1..nd).all(|d| s[d - 1] == s[d] * shape[d] as isize);
                let period: usize = shape[first..].iter().product();
                (first > 0 && line && period <= max_period).then(|| (period, s[nd - 1]))
            })
            .collect()
    }

    /// Per operand, `(repeat, stride)` if each of its values repeats for
    /// `repeat` consecutive elements of the walk: a strided line over the
    /// outer axes and broadcast (stride 0) on the inner ones, so that element
    /// `i` is at `base + (i / repeat) * stride` (a per-row weight over an
    /// `(N, C)` batch repeats `C` times). `None` otherwise.
    pub fn repeats(&self) -> Small<Option<(usize, isize)>> {
        let shape = &self.shape;
        let nd = shape.len();
        self.strides
            .iter()
            .map(|s| {
                let last = (0..nd).rev().find(|&d| s[d] != 0)?;
                let line = (1..=last).all(|d| s[d - 1] == s[d] * shape[d] as isize);
                (last + 1 < nd && line).then(|| (shape[last + 1..].iter().product(), s[last]))
            })
            .collect()
    }

    /// Byte stride of each operand along the innermost axis.
    pub fn inner_strides(&self) -> Small<isize> {
        self.strides.iter().map(|s| *s.last().unwrap()).collect()
    }

    /// A cursor over the runs of consecutive elements along the innermost
    /// axis that cover element indices `lo..hi`, in order.
    pub fn runs(&self, lo: usize, hi: usize) -> Runs<'_> {
        let nd = self.shape.len();
        let mut index: Small<usize> = smallvec::smallvec![0; nd];
        let mut rest = lo;
        for d in (0..nd).rev() {
            index[d] = rest % self.shape[d];
            rest /= self.shape[d];
        }
        let offsets = self
            .strides
            .iter()
            .zip(&self.base)
            .map(|(s, b)| b + index.iter().zip(s).map(|(&i, &s)| i as isize * s).sum::<isize>())
            .collect();
        Runs { plan: self, index, offsets, pos: lo, hi }
    }
}

/// See [`Plan::runs`].
pub(crate) struct Runs<'p> {
    plan: &'p Plan,
    index: Small<usize>,
    offsets: Small<isize>,
    pos: usize,
    hi: usize,
}

impl Runs<'_> {
    /// The length of the current run (0 when all are done).
    #[inline(always)]
    pub fn len(&self) -> usize {
        let nd = self.index.len();
        (self.plan.shape[nd - 1] - self.index[nd - 1]).min(self.hi - self.pos)
    }

    /// Byte offset of the current run's first element, per operand.
    #[inline(always)]
    pub fn offsets(&self) -> &[isize] {
        &self.offsets
    }

    /// Moves past the current run of `n = self.len()` elements.
    #[inline(always)]
    pub fn advance(&mut self, n: usize) {
        let (shape, strides) = (&self.plan.shape, &self.plan.strides);
        let nd = shape.len();
        self.pos += n;
        self.index[nd - 1] += n;
        for (o, s) in self.offsets.iter_mut().zip(strides) {
            *o += n as isize * s[nd - 1];
        }
        let mut d = nd - 1;
        while d > 0 && self.index[d] == shape[d] {
            self.index[d] = 0;
            self.index[d - 1] += 1;
            for (o, s) in self.offsets.iter_mut().zip(strides) {
                *o += s[d - 1] - shape[d] as isize * s[d];
            }
            d -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(plan: &Plan, lo: usize, hi: usize) -> Vec<(Vec<isize>, usize)> {
        let mut out = Vec::new();
        let mut runs = plan.runs(lo, hi);
        while runs.len() > 0 {
            out.push((runs.offsets().to_vec(), runs.len()));
            runs.advance(runs.len());
        }
        out
    }

    #[test]
    fn contiguous_arrays_merge_into_one_run() {
        let p = Plan::new(&[3, 4, 5], &[&[80, 20, 4], &[20, 5, 1]]);
        assert_eq!(runs(&p, 0, 60), vec![(vec![0, 0], 60)]);
        assert_eq!(runs(&p, 7, 19), vec![(vec![28, 7], 12)]);
    }

    #[test]
    fn fortran_and_reversed_inputs_are_read_forwards() {
        // A (2, 3) Fortran-ordered float32 input with a C-ordered output.
        let p = Plan::new(&[2, 3], &[&[4, 8], &[12, 4]]);
        assert_eq!(runs(&p, 0, 6), vec![(vec![0, 0], 2), (vec![8, 4], 2), (vec![16, 8], 2)]);
        // A reversed input: the output is walked backwards instead.
        let p = Plan::new(&[4], &[&[-8], &[8]]);
        assert_eq!(runs(&p, 0, 4), vec![(vec![-24, 24], 4)]);
        assert_eq!(p.inner_strides().as_slice(), &[8, -8]);
    }

    #[test]
    fn broadcast_operands_split_runs_at_rows() {
        // (3, 2) input with a per-column weight of stride (0, 8).
        let p = Plan::new(&[3, 2], &[&[16, 8], &[0, 8]]);
        assert_eq!(runs(&p, 1, 6), vec![(vec![8, 8], 1), (vec![16, 0], 2), (vec![32, 0], 2)]);
        // The input is still one line over the walk; the weight repeats.
        assert_eq!(p.flat_strides().as_slice(), &[Some(8), None]);
        assert_eq!(p.periods(64).as_slice(), &[None, Some((2, 8))]);
        assert_eq!(p.periods(1).as_slice(), &[None, None]);
        // A per-row weight of stride (8, 0) repeats each value twice.
        let p = Plan::new(&[3, 2], &[&[16, 8], &[8, 0]]);
        assert_eq!(p.repeats().as_slice(), &[None, Some((2, 8))]);
    }

    #[test]
    fn zero_dimensional_and_unit_axes() {
        let p = Plan::new(&[], &[&[], &[]]);
        assert_eq!(p.len(), 1);
        assert_eq!(runs(&p, 0, 1), vec![(vec![0, 0], 1)]);
        let p = Plan::new(&[1, 5, 1], &[&[99, 4, 7]]);
        assert_eq!(runs(&p, 0, 5), vec![(vec![0], 5)]);
    }
}
