//! The driver: runs a block operation over every element of a call, in
//! chunks on one thread or many, with the same result either way. How one
//! chunk walks its operands is `walk.rs`.

use super::array::{ArrayMut, ArrayRef, check_outputs};
use super::layout::Plan;
use super::math::Real;
use super::pool::{num_threads, run_parts};
use super::reduce::ExactSum;
use super::simd::dispatch;
use super::walk::{ChunkRun, ChunkSums, Scratch, Walk};
use super::{KernelError, Small};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Elements per reduction chunk: the fixed grid that makes sums independent
/// of the thread count. Chunk partials are combined exactly.
pub const CHUNK: usize = 8192;
/// Below this many elements a call stays on the calling thread: a second
/// thread pays from about 20-35 us of work (`python benches/bench.py
/// --scaling`; docs/performance.md).
pub const PARALLEL_MIN_LEN_F32: usize = 1 << 15;
/// See [`PARALLEL_MIN_LEN_F32`].
pub const PARALLEL_MIN_LEN_F64: usize = 1 << 14;

/// The parallel threshold of compute type `C`.
fn parallel_min_len<C: Real>() -> usize {
    if C::DTYPE == super::elem::DType::F32 { PARALLEL_MIN_LEN_F32 } else { PARALLEL_MIN_LEN_F64 }
}

/// Input slots of a block operation: input, target, weight, pos_weight,
/// grad_output. Absent operands read as ones.
pub(crate) const NIN: usize = 5;
/// Output slots: the value (loss or sigmoid), the gradient and the
/// second derivative.
pub(crate) const NOUT: usize = 3;

/// The elementwise work on one block of converted operands.
pub(crate) trait BlockOp<C: Real>: Sync {
    /// Reads `ins` (all of one length) and writes any of `outs` (value,
    /// gradient, second derivative; each as long as the inputs).
    /// Implementations must be `#[inline(always)]` (see `simd::Kernel`).
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], outs: [&mut [C]; NOUT]) -> Result<(), KernelError>;
}

/// Chunk results kept at once, in bytes: a call over more chunks runs them
/// in windows that each fill this much, one window after another, so that
/// the bookkeeping does not grow with the element count (a 2^46-element
/// call once asked for 412 GB). A window of plain sums covers about 1.8e8
/// elements, so waiting for its last chunk costs nothing measurable.
const WINDOW_BYTES: usize = 1 << 20;

/// A zeroed vector of `len` values, or `OutOfMemory`.
pub(super) fn try_zeros<T: Clone + Default>(len: usize) -> Result<Vec<T>, KernelError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| KernelError::OutOfMemory(len.saturating_mul(size_of::<T>())))?;
    v.resize(len, T::default());
    Ok(v)
}

/// Runs `chunk(c)` for every chunk index `c < chunks` on `threads` threads
/// and hands the results to `consume` in chunk order; a result takes about
/// `result_bytes` (see [`WINDOW_BYTES`]). Stops at an error.
pub(super) fn run_chunks<R, F>(
    chunks: usize,
    threads: usize,
    result_bytes: usize,
    chunk: F,
    mut consume: impl FnMut(R),
) -> Result<(), KernelError>
where
    R: Send + Sync,
    F: Fn(usize) -> Result<R, KernelError> + Sync,
{
    let parts = threads.min(chunks);
    if parts <= 1 {
        for c in 0..chunks {
            consume(chunk(c)?);
        }
        return Ok(());
    }
    let window = (WINDOW_BYTES / result_bytes.max(1)).clamp(parts, chunks);
    let mut results: Vec<OnceLock<R>> = Vec::new();
    results.try_reserve_exact(window).map_err(|_| KernelError::OutOfMemory(window * size_of::<OnceLock<R>>()))?;
    results.resize_with(window, OnceLock::new);
    for first in (0..chunks).step_by(window) {
        let slots = &mut results[..window.min(chunks - first)];
        run_window(first, parts, &chunk, slots)?;
        for slot in slots {
            // Every chunk ran (no error was returned), so every slot is set.
            if let Some(r) = slot.take() {
                consume(r);
            }
        }
    }
    Ok(())
}

/// Runs chunks `first..first + slots.len()` into `slots`, in `parts`
/// contiguous parts (the caller takes part 0, so it works instead of
/// waiting); a thread done with its part takes chunks from the next parts.
/// Repeated calls on the same arrays thus give each thread the same part,
/// which may still be in its core's cache, while a late or slow helper's
/// part is taken over.
fn run_window<R, F>(first: usize, parts: usize, chunk: &F, slots: &[OnceLock<R>]) -> Result<(), KernelError>
where
    R: Send + Sync,
    F: Fn(usize) -> Result<R, KernelError> + Sync,
{
    let count = slots.len();
    let parts = parts.min(count);
    let start = |part: usize| part * count / parts;
    // The next chunk to take of each part.
    let next: Small<AtomicUsize> = (0..parts).map(|p| AtomicUsize::new(start(p))).collect();
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<KernelError>> = Mutex::new(None);
    let work = |me: usize| {
        let mut done = 0;
        for part in (me..parts).chain(0..me) {
            while !stop.load(Ordering::Relaxed) {
                let c = next[part].fetch_add(1, Ordering::Relaxed);
                if c >= start(part + 1) {
                    break;
                }
                match chunk(first + c) {
                    Ok(r) => {
                        let _ = slots[c].set(r);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
                    }
                }
                done += 1;
            }
        }
        done
    };
    run_parts(parts, &work);
    // Every helper is done (its stores visible), and every chunk ran unless
    // one failed: the threads that ran take over the parts of those that
    // did not come.
    match failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Operands of one call, by slot.
pub(crate) struct Operands<'r, 'a> {
    pub ins: [Option<&'r ArrayRef<'a>>; NIN],
    pub outs: [Option<&'r ArrayMut<'a>>; NOUT],
    /// Sums of the values over some axes, added into this.
    pub axis_sums: Option<&'r mut AxisSums<'a>>,
    /// See `LossRequest::fresh_outputs`.
    pub fresh_outputs: bool,
}

/// Sums of the values over some of the input's axes: `out` holds one
/// float64 per index of the kept axes (C order) and receives the sums,
/// added to what it holds. Each sum adds, in chunk order, the chunk's own
/// sum of its elements (in a fixed order): the same bits for any thread
/// count, and, when `out` starts from the sums of earlier data whose
/// element count was a multiple of `CHUNK`, the bits a single call over all
/// the data would give.
#[derive(Debug)]
pub struct AxisSums<'a> {
    out: &'a mut [f64],
    /// Per input axis, the step in `out` (0 on the reduced axes).
    strides: Small<isize>,
}

impl<'a> AxisSums<'a> {
    /// Sums over the axes of `shape` where `reduced` is true, into `out`,
    /// which must hold the product of the kept axes' lengths.
    pub fn new(out: &'a mut [f64], shape: &[usize], reduced: &[bool]) -> Result<Self, KernelError> {
        if reduced.len() != shape.len() {
            return Err(KernelError::BadLayout(format!("{} axis flags for {} axes", reduced.len(), shape.len())));
        }
        let mut strides: Small<isize> = smallvec::smallvec![0; shape.len()];
        let mut step = 1usize;
        for d in (0..shape.len()).rev().filter(|&d| !reduced[d]) {
            strides[d] = step as isize;
            step *= shape[d];
        }
        if out.len() != step {
            return Err(KernelError::BadLayout(format!("axis sums need {step} values, got {}", out.len())));
        }
        Ok(AxisSums { out, strides })
    }
}

const IN_NAMES: [&str; NIN] = ["input", "target", "weight", "pos_weight", "grad_output"];
const OUT_NAMES: [&str; NOUT] = ["out", "grad out", "hess out"];

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

/// Every operand has the input's shape.
fn check_shapes(ops: &Operands<'_, '_>, shape: &[usize]) -> Result<(), KernelError> {
    let ins = ops.ins.iter().zip(IN_NAMES).skip(1).filter_map(|(a, n)| a.map(|a| (a.shape(), n)));
    let outs = ops.outs.iter().zip(OUT_NAMES).filter_map(|(a, n)| a.map(|a| (a.shape.as_slice(), n)));
    match ins.chain(outs).find(|(s, _)| *s != shape) {
        Some((s, name)) => Err(KernelError::Shape { name, shape: s.to_vec(), expected: shape.to_vec() }),
        None => Ok(()),
    }
}

/// Runs `op` over every element; returns the float64 sum of the values
/// when `sum` is set (0 otherwise). The sum is the same bits for any thread
/// count: chunk `c` covers elements `c * CHUNK ..` of the walk, is summed
/// in a fixed order, and the chunk sums are added exactly.
pub(crate) fn drive<C: Real, O: BlockOp<C>>(
    ops: &mut Operands<'_, '_>,
    op: &O,
    sum: bool,
) -> Result<ExactSum, KernelError> {
    let input = ops.ins[0].expect("slot 0 always holds the input");
    let shape = input.shape();
    check_shapes(ops, shape)?;
    check_outputs(&ops.ins, &ops.outs)?;
    let ins: Small<(usize, &ArrayRef<'_>)> =
        ops.ins.iter().enumerate().filter_map(|(s, a)| a.map(|a| (s, a))).collect();
    let outs: Small<(usize, &ArrayMut<'_>)> =
        ops.outs.iter().enumerate().filter_map(|(s, a)| a.map(|a| (s, a))).collect();
    // The axis sums walk along as one more operand, in bytes of float64.
    let acc_strides: Option<Small<isize>> = ops.axis_sums.as_ref().map(|a| a.strides.iter().map(|s| s * 8).collect());
    let strides: Small<&[isize]> = ins
        .iter()
        .map(|(_, a)| a.strides.as_slice())
        .chain(outs.iter().map(|(_, a)| a.strides.as_slice()))
        .chain(acc_strides.as_deref())
        .collect();
    let plan = Plan::new(shape, &strides);
    let walk = Walk::new(&plan, &ins, &outs, acc_strides.is_some(), ops.fresh_outputs, op, sum);
    let n = plan.len();
    let chunk = |c: usize| {
        let (lo, hi) = (c * CHUNK, n.min((c + 1) * CHUNK));
        // (Outside `dispatch`: the closure `with` takes is not compiled for
        // the instruction set the kernel runs at.)
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                dispatch(ChunkRun { walk: &walk, lo, hi, scratch: &mut scratch, compute: PhantomData::<C> })
            }
            // Never: a chunk calls nothing that could start another on this thread.
            Err(_) => {
                let scratch = &mut Box::new(Scratch::new());
                dispatch(ChunkRun { walk: &walk, lo, hi, scratch, compute: PhantomData::<C> })
            }
        })
    };
    let threads = if n >= parallel_min_len::<C>() { num_threads() } else { 1 };
    let mut total = ExactSum::new();
    let acc_len = ops.axis_sums.as_ref().map_or(0, |a| a.out.len());
    let mut acc = ops.axis_sums.as_deref_mut();
    let result_bytes = size_of::<OnceLock<ChunkSums>>() + size_of::<f64>() * walk.axis.sums_per_chunk(acc_len);
    run_chunks(n.div_ceil(CHUNK), threads, result_bytes, chunk, |r: ChunkSums| {
        total.add(r.total);
        if let (Some(acc), Some((first, sums))) = (acc.as_deref_mut(), r.axis) {
            for (o, s) in acc.out[first..first + sums.len()].iter_mut().zip(&sums) {
                *o += s;
            }
        }
    })?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_consumed_in_order_across_windows() {
        let _lock = crate::kernels::test_lock();
        let before = num_threads();
        for threads in [1, 2, 3] {
            super::super::pool::set_num_threads(threads).unwrap();
            // Windows of 7 results (or `threads`, if more).
            let mut seen = Vec::new();
            run_chunks(100, threads, WINDOW_BYTES / 7, |c| Ok(c * 10), |r| seen.push(r)).unwrap();
            assert_eq!(seen, (0..100).map(|c| c * 10).collect::<Vec<_>>());
            // A failing chunk stops the call; only whole windows before it
            // were consumed.
            let mut seen = Vec::new();
            let failed = run_chunks(
                100,
                threads,
                WINDOW_BYTES / 7,
                |c| if c == 50 { Err(KernelError::InputOutOfRange) } else { Ok(c) },
                |r| seen.push(r),
            );
            assert_eq!(failed, Err(KernelError::InputOutOfRange));
            assert!(seen.len() <= 50 && seen.iter().enumerate().all(|(i, &c)| i == c));
        }
        super::super::pool::set_num_threads(before).unwrap();
    }

    #[test]
    fn failed_allocations_are_errors() {
        assert_eq!(try_zeros::<f64>(usize::MAX / 8), Err(KernelError::OutOfMemory(usize::MAX / 8 * 8)));
    }
}
