//! The driver that walks arrays block by block, on one thread or many, with
//! the same result either way.

use super::array::{ArrayMut, ArrayRef, check_outputs, fence};
use super::layout::Plan;
use super::math::Real;
use super::pool::{num_threads, run_parts};
use super::reduce::{ExactSum, Lanes};
use super::simd::{Kernel, dispatch};
use super::{KernelError, Small};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Elements per reduction chunk: the fixed grid that makes sums independent
/// of the thread count. Chunk partials are combined exactly.
pub const CHUNK: usize = 8192;
/// Elements per block: operands are converted into L1-resident buffers of
/// this many compute values, and the math runs on those.
const BLOCK: usize = 256;
/// Below this many elements a call stays on the calling thread. Measured
/// with `python benches/bench.py --scaling` (1 against 2 threads, mean and
/// value+gradient, back-to-back calls; lower thresholds built in for the
/// test, three runs) on 2 cores: a second thread gives 1.25-1.6x from 2^15
/// float32 and 1.3-1.65x from 2^14 float64 elements (about 20-35 us of
/// work), 1.45-1.85x at 2^16, and 0.9-1.05x for the float32 mean at 2^14.
pub const PARALLEL_MIN_LEN_F32: usize = 1 << 15;
/// See [`PARALLEL_MIN_LEN_F32`].
pub const PARALLEL_MIN_LEN_F64: usize = 1 << 14;

/// The parallel threshold of compute type `C`.
fn parallel_min_len<C: Real>() -> usize {
    if C::DTYPE == super::elem::DType::F32 { PARALLEL_MIN_LEN_F32 } else { PARALLEL_MIN_LEN_F64 }
}

/// Outputs of at least this many bytes in all are written past the caches:
/// they would not stay there anyway, and such stores save reading each line
/// of the output before overwriting it.
const STREAM_MIN_BYTES: usize = 16 << 20;

/// A float32 call whose contiguous inputs hold at least this many bytes in
/// all (too many to stay in the cores' L2 caches) has its blocks ask for
/// those inputs [`PREFETCH_BLOCKS`] blocks ahead: the hardware's own
/// prefetching does not keep up with the float32 loss once the data comes
/// from memory (measured: the mean 1.1-1.4x faster from 6e6 elements to
/// 1e8, value and gradient 1.1-1.2x), and the hints cost nothing measurable
/// where the data is cached (1e5 to 4e6 elements). The float64 loss got
/// 10-20% slower with them at every size, so it goes without.
const PREFETCH_MIN_BYTES: usize = 16 << 20;
/// See [`PREFETCH_MIN_BYTES`].
const PREFETCH_BLOCKS: usize = 2;

/// Bytes of the widest vector register (AVX-512): a partial block is
/// computed over a multiple of this.
const VECTOR_BYTES: usize = 64;
/// Bytes of one iteration of the kernels' main loop (8 interleaved vectors,
/// see .cargo/config.toml). A float32 partial block of at least half this
/// is computed over a multiple of it, in the main loop: the compiler's
/// remainder loop takes float32 one half-width vector at a time (measured:
/// 100-element calls 5-7% faster, 1000-element ones 7-12%; float64, whose
/// remainder loop is full width, gets slower so).
const LOOP_BYTES: usize = 8 * VECTOR_BYTES;

/// Block buffers of one thread: one per input slot, then the values and
/// the gradients. Zeroed once per thread and reused call after call
/// (zeroing them per call costs as much as the math of a small call); a
/// call reads only what it wrote itself, and zeros (see `Walk::run`).
struct Scratch([[f64; BLOCK]; NIN + 2]);

impl Scratch {
    const fn new() -> Self {
        Scratch([[0.0; BLOCK]; NIN + 2])
    }

    /// The buffers as blocks of the compute type.
    fn blocks<C: Real>(&mut self) -> [&mut [C; BLOCK]; NIN + 2] {
        const { assert!(size_of::<C>() <= size_of::<f64>() && align_of::<C>() <= align_of::<f64>()) };
        // SAFETY: `Real` is implemented for f32 and f64 only, plain floats
        // for which every initialized bit pattern is a value; the assertion
        // above makes BLOCK of them fit in, and aligned as, BLOCK f64s. Each
        // buffer is a distinct array, borrowed mutably once.
        self.0.each_mut().map(|b| unsafe { &mut *(b as *mut [f64; BLOCK]).cast::<[C; BLOCK]>() })
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch::new()) };
}

const _: () = assert!(f32::ONES.len() >= BLOCK && f64::ONES.len() >= BLOCK);

/// The longest period of a repeating operand read from a buffer (see
/// `Plan::periods`); longer ones are gathered run by run.
const MAX_PERIOD: usize = 4096;

/// Input slots of a block operation: input, target, weight, pos_weight,
/// grad_output. Absent operands read as ones.
pub(crate) const NIN: usize = 5;
/// Output slots: the value (loss or sigmoid) and the gradient.
pub(crate) const NOUT: usize = 2;

/// The elementwise work on one block of converted operands.
pub(crate) trait BlockOp<C: Real>: Sync {
    /// Reads `ins` (all of one length) and writes `value` and/or `grad`.
    /// Implementations must be `#[inline(always)]` (see `simd::Kernel`).
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError>;
}

/// Chunk results kept at once, in bytes: a call over more chunks runs them
/// in windows that each fill this much, one window after another, so that
/// the bookkeeping does not grow with the element count (a 2^46-element
/// call once asked for 412 GB). A window of plain sums covers about 1.8e8
/// elements, so waiting for its last chunk costs nothing measurable.
const WINDOW_BYTES: usize = 1 << 20;

/// A zeroed vector of `len` values, or `OutOfMemory`.
fn try_zeros<T: Clone + Default>(len: usize) -> Result<Vec<T>, KernelError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| KernelError::OutOfMemory(len.saturating_mul(size_of::<T>())))?;
    v.resize(len, T::default());
    Ok(v)
}

/// Runs `chunk(c)` for every chunk index `c < chunks` on `threads` threads
/// and hands the results to `consume` in chunk order; a result takes about
/// `result_bytes` (see [`WINDOW_BYTES`]). Stops at an error.
fn run_chunks<R, F>(
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
const OUT_NAMES: [&str; NOUT] = ["out", "grad out"];

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
    for (slot, arr) in ops.ins.iter().enumerate().skip(1) {
        if let Some(a) = arr.filter(|a| a.shape() != shape) {
            return Err(KernelError::Shape {
                name: IN_NAMES[slot],
                shape: a.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
    }
    for (slot, arr) in ops.outs.iter().enumerate() {
        if let Some(a) = arr.filter(|a| a.shape.as_slice() != shape) {
            return Err(KernelError::Shape {
                name: OUT_NAMES[slot],
                shape: a.shape.to_vec(),
                expected: shape.to_vec(),
            });
        }
    }
    let ins: Small<(usize, &ArrayRef<'_>)> =
        ops.ins.iter().enumerate().filter_map(|(s, a)| a.map(|a| (s, a))).collect();
    let outs: Small<(usize, &ArrayMut<'_>)> =
        ops.outs.iter().enumerate().filter_map(|(s, a)| a.map(|a| (s, a))).collect();
    check_outputs(&ops.ins, &ops.outs)?;

    // The axis sums walk along as one more operand, in bytes of float64.
    let acc_strides: Option<Small<isize>> = ops.axis_sums.as_ref().map(|a| a.strides.iter().map(|s| s * 8).collect());
    let strides: Small<&[isize]> = ins
        .iter()
        .map(|(_, a)| a.strides.as_slice())
        .chain(outs.iter().map(|(_, a)| a.strides.as_slice()))
        .chain(acc_strides.as_deref())
        .collect();
    let plan = Plan::new(shape, &strides);
    let flat = plan.flat_strides();
    // Only operands that are not flat can repeat (the common call has none).
    let all_flat = flat.iter().all(Option::is_some);
    let periods = if all_flat { smallvec::smallvec![None; flat.len()] } else { plan.periods(MAX_PERIOD) };
    let periodic = ins
        .iter()
        .enumerate()
        .map(|(k, (_, arr))| {
            let (period, stride) = periods[k].filter(|_| flat[k].is_none())?;
            // SAFETY: the period's elements are the array's line from `base`.
            Some(Periodic::new(period, |values| unsafe { arr.gather(plan.base()[k], stride, values) }))
        })
        .collect();
    // The contiguous inputs: what a call streams from memory when they are
    // large, and what the blocks then prefetch.
    let contiguous: Small<bool> =
        ins.iter().zip(&flat).map(|((_, arr), stride)| *stride == Some(arr.dtype().itemsize() as isize)).collect();
    let streamed: usize =
        ins.iter().zip(&contiguous).filter(|(_, c)| **c).map(|((_, arr), _)| arr.dtype().itemsize() * plan.len()).sum();
    let big = C::DTYPE == super::elem::DType::F32 && streamed >= PREFETCH_MIN_BYTES;
    let prefetch = contiguous.iter().map(|c| big && *c).collect();
    let walk = Walk {
        plan: &plan,
        periodic,
        repeating: if all_flat { smallvec::smallvec![None; flat.len()] } else { plan.repeats() },
        flat,
        inner: plan.inner_strides(),
        base: Small::from_slice(plan.base()),
        ins: &ins,
        outs: &outs,
        axis: AxisMode::of(&plan, acc_strides.is_some(), ins.len() + outs.len()),
        stream: !ops.fresh_outputs
            && outs.iter().map(|(_, o)| plan.len() * o.dtype.itemsize()).sum::<usize>() >= STREAM_MIN_BYTES,
        prefetch,
        op,
        sum,
    };
    let n = plan.len();
    let chunks = n.div_ceil(CHUNK);
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
    run_chunks(chunks, threads, result_bytes, chunk, |r: ChunkSums| {
        total.add(r.total);
        if let (Some(acc), Some((first, sums))) = (acc.as_deref_mut(), r.axis) {
            for (o, s) in acc.out[first..first + sums.len()].iter_mut().zip(&sums) {
                *o += s;
            }
        }
    })?;
    Ok(total)
}

/// The values of an input that repeats along the walk with period `period`,
/// laid out so that every block's values are one vector-aligned slice.
struct Periodic<C> {
    /// Its values repeated: `values[skew + i]`, for `i < span + BLOCK`, is
    /// the value of walk element `i` (and of every element a whole number
    /// of periods from it).
    values: Vec<C>,
    /// Where the values start: a vector-aligned address.
    skew: usize,
    /// The period times the lanes of a vector over their common divisor
    /// (when that is at most MAX_PERIOD, else the period): blocks, which
    /// start at multiples of BLOCK, then read from aligned positions; loads
    /// across cache lines cost twice.
    span: usize,
}

impl<C: Real> Periodic<C> {
    /// Repeats the `period` values `first` writes.
    fn new(period: usize, first: impl FnOnce(&mut [C])) -> Self {
        let lanes = VECTOR_BYTES / size_of::<C>();
        let aligned = period * lanes / gcd(period, lanes);
        let span = if aligned <= MAX_PERIOD { aligned } else { period };
        let mut values = vec![C::ZERO; lanes + span + BLOCK];
        // An offset of `usize::MAX` (allowed to happen) means no alignment, no harm.
        let skew = values.as_ptr().align_offset(VECTOR_BYTES).min(lanes);
        first(&mut values[skew..skew + period]);
        // Double the repeated stretch (a whole number of periods) until full.
        let mut filled = period;
        while skew + filled < values.len() {
            let take = filled.min(values.len() - skew - filled);
            values.copy_within(skew..skew + take, skew + filled);
            filled += take;
        }
        Periodic { values, skew, span }
    }

    /// The values from walk element `start` on: at least BLOCK of them.
    fn at(&self, start: usize) -> &[C] {
        &self.values[self.skew + start % self.span..]
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What one chunk adds up.
struct ChunkSums {
    /// The sum of all its values (0 unless summing).
    total: f64,
    /// For axis sums: the first index of `AxisSums::out` the chunk touches,
    /// and its sums from there on.
    axis: Option<(usize, Vec<f64>)>,
}

struct Walk<'w, 'r, 'a, O, C> {
    plan: &'w Plan,
    /// Per operand (inputs, then outputs): the byte stride between
    /// consecutive elements of the walk if the operand is one strided line
    /// over the whole walk (element `i` at `base + i * stride`), else `None`.
    flat: Small<Option<isize>>,
    /// Per input: the values of a non-flat input that repeats (see
    /// `Plan::periods`), read from there.
    periodic: Small<Option<Periodic<C>>>,
    /// Per input: `(repeat, stride)` of a non-flat input whose values each
    /// repeat (see `Plan::repeats`); it is filled a value at a time.
    repeating: Small<Option<(usize, isize)>>,
    inner: Small<isize>,
    base: Small<isize>,
    ins: &'w [(usize, &'r ArrayRef<'a>)],
    outs: &'w [(usize, &'r ArrayMut<'a>)],
    /// How the axis sums (the plan's last operand, if any) are indexed.
    axis: AxisMode,
    /// Whether the outputs are large enough to write past the caches.
    stream: bool,
    /// Per input, whether to prefetch it (see [`PREFETCH_MIN_BYTES`]).
    prefetch: Small<bool>,
    op: &'w O,
    sum: bool,
}

/// How the walk's elements map to the axis sums they add to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AxisMode {
    /// No axis sums.
    Off,
    /// Element `i` adds to sum `first + i % period` (per class of an
    /// `(N, C)` batch): summed through a buffer a block at a time.
    Periodic { first: usize, period: usize },
    /// Element `i` adds to sum `first + i / repeat` (per sample): summed a
    /// stretch of `repeat` at a time.
    Repeating { first: usize, repeat: usize },
    /// Any other layout: run by run along the plan.
    Runs,
}

impl AxisMode {
    /// About how many axis sums one chunk returns, given all `len` of them
    /// (a chunk of other layouts rarely spans more than its elements).
    fn sums_per_chunk(self, len: usize) -> usize {
        match self {
            AxisMode::Off => 0,
            AxisMode::Periodic { period, .. } => period,
            AxisMode::Repeating { repeat, .. } => CHUNK / repeat.max(1) + 2,
            AxisMode::Runs => len.min(CHUNK),
        }
    }

    fn of(plan: &Plan, present: bool, k: usize) -> AxisMode {
        if !present {
            return AxisMode::Off;
        }
        let first = (plan.base()[k] / 8) as usize;
        match (plan.periods(MAX_PERIOD)[k], plan.repeats()[k], plan.flat_strides()[k]) {
            (Some((period, 8)), _, _) => AxisMode::Periodic { first, period },
            (_, Some((repeat, 8)), _) => AxisMode::Repeating { first, repeat },
            (_, _, Some(8)) => AxisMode::Repeating { first, repeat: 1 },
            _ => AxisMode::Runs,
        }
    }
}

/// One chunk of a walk, as a kernel compiled per instruction-set level.
struct ChunkRun<'k, 'w, 'r, 'a, O, C> {
    walk: &'k Walk<'w, 'r, 'a, O, C>,
    lo: usize,
    hi: usize,
    scratch: &'k mut Scratch,
    compute: PhantomData<C>,
}

impl<C: Real, O: BlockOp<C>> Kernel for ChunkRun<'_, '_, '_, '_, O, C> {
    type Output = Result<ChunkSums, KernelError>;

    #[inline(always)]
    fn run<const FMA: bool>(self) -> Self::Output {
        self.walk.run::<FMA>(self.lo, self.hi, self.scratch)
    }
}

/// Where one stretch of a block goes in the outputs that are not flat, and
/// in the axis sums (a byte offset in float64s).
#[derive(Clone, Copy)]
struct Segment {
    start: usize,
    len: usize,
    offsets: [isize; NOUT],
    axis: isize,
}

impl<O, C: Real> Walk<'_, '_, '_, O, C> {
    /// Processes elements `lo..hi` of the walk, a block of `BLOCK` at a
    /// time; returns the sum of their values (when summing).
    ///
    /// Flat operands are read (or written) a whole block at a time, in
    /// place when they hold the compute type contiguously; the others are
    /// gathered run by run along the plan. Either way each block starts at
    /// a multiple of `BLOCK` from `lo`, so the sum's order is fixed.
    #[inline(always)]
    fn run<const FMA: bool>(&self, lo: usize, hi: usize, scratch: &mut Scratch) -> Result<ChunkSums, KernelError>
    where
        O: BlockOp<C>,
    {
        let nin = self.ins.len();
        let acc = nin + self.outs.len();
        let runs_axis = self.axis == AxisMode::Runs;
        // The axis sums this chunk adds to: `(first index, sums)`.
        let mut axis: Option<(isize, Vec<f64>)> = match self.axis {
            AxisMode::Periodic { period, .. } => Some((0, try_zeros(period + BLOCK)?)),
            AxisMode::Repeating { repeat, .. } => {
                Some(((lo / repeat) as isize, try_zeros((hi - 1) / repeat - lo / repeat + 1)?))
            }
            _ => None,
        };
        if runs_axis {
            // The sums this chunk touches lie between its runs' extremes.
            let (mut first, mut last) = (isize::MAX, isize::MIN);
            let mut runs = self.plan.runs(lo, hi);
            while runs.len() > 0 {
                let (a, b) = (runs.offsets()[acc], runs.offsets()[acc] + (runs.len() as isize - 1) * self.inner[acc]);
                (first, last) = (first.min(a.min(b)), last.max(a.max(b)));
                runs.advance(runs.len());
            }
            if first <= last {
                axis = Some((first, try_zeros(((last - first) / 8 + 1) as usize)?));
            }
        }
        // Absent operands read as ones; present ones not read in place are
        // converted into these buffers.
        let [b0, b1, b2, b3, b4, value, grad] = scratch.blocks::<C>();
        let mut ins = [b0, b1, b2, b3, b4];
        // The input slots whose buffer this chunk fills.
        let mut written = [false; NIN];
        let mut segments: Small<Segment> = Small::new();
        let mut lanes = Lanes::default();
        let periodic_at = |k: usize| self.periodic[k].as_ref();
        let repeating = |k: usize| self.repeating[k].filter(|_| self.flat[k].is_none() && periodic_at(k).is_none());
        let gathered = |k: usize| self.flat[k].is_none() && periodic_at(k).is_none() && repeating(k).is_none();
        let strided = runs_axis || (0..nin).any(gathered) || (0..self.outs.len()).any(|k| self.flat[nin + k].is_none());
        let mut runs = strided.then(|| self.plan.runs(lo, hi));

        let mut start = lo;
        while start < hi {
            let len = BLOCK.min(hi - start);
            if let Some(runs) = runs.as_mut() {
                let mut filled = 0;
                while filled < len {
                    let take = runs.len().min(len - filled);
                    let offsets = runs.offsets();
                    for (k, (slot, arr)) in self.ins.iter().enumerate().filter(|(k, _)| gathered(*k)) {
                        // SAFETY: the run's offset and inner stride come from
                        // the plan of this array; `take` elements remain in it.
                        unsafe { arr.gather(offsets[k], self.inner[k], &mut ins[*slot][filled..filled + take]) };
                        written[*slot] = true;
                    }
                    if runs_axis || self.outs.iter().enumerate().any(|(k, _)| self.flat[nin + k].is_none()) {
                        let axis = if runs_axis { offsets[acc] } else { 0 };
                        let offsets = std::array::from_fn(|k| if k < self.outs.len() { offsets[nin + k] } else { 0 });
                        segments.push(Segment { start: filled, len: take, offsets, axis });
                    }
                    runs.advance(take);
                    filled += take;
                }
            }
            // A partial (last) block is computed over whole vectors: its
            // operands are gathered into the buffers, whose lanes past `len`
            // are set to zero, and the extra results are dropped. A scalar
            // remainder loop would cost more.
            let partial = len < BLOCK;
            let padded = match len * size_of::<C>() {
                _ if !partial => len,
                bytes if size_of::<C>() == 4 && bytes >= LOOP_BYTES / 2 => {
                    len.next_multiple_of(LOOP_BYTES / size_of::<C>())
                }
                _ => len.next_multiple_of(VECTOR_BYTES / size_of::<C>()),
            };
            let mut direct: [Option<*const C>; NIN] = [None; NIN];
            for (k, (slot, arr)) in self.ins.iter().enumerate() {
                if let Some((repeat, stride)) = repeating(k) {
                    let (mut i, end) = (start, start + len);
                    while i < end {
                        let take = ((i / repeat + 1) * repeat).min(end) - i;
                        let at = self.base[k] + (i / repeat) as isize * stride;
                        // SAFETY: elements `i..i + take` of the walk all sit
                        // at this one element of the array.
                        unsafe { arr.gather(at, 0, &mut ins[*slot][i - start..i - start + take]) };
                        written[*slot] = true;
                        i += take;
                    }
                }
                if let Some(periodic) = periodic_at(k) {
                    direct[*slot] = Some(periodic.at(start).as_ptr());
                }
                if let Some(stride) = self.flat[k] {
                    let at = self.base[k] + start as isize * stride;
                    if self.prefetch[k] {
                        arr.prefetch(at + (PREFETCH_BLOCKS * BLOCK) as isize * stride, BLOCK * stride as usize);
                    }
                    // SAFETY (both): elements `start..start + len` of the walk
                    // lie on this array's line at `base + i * stride`.
                    direct[*slot] = if partial { None } else { unsafe { arr.contiguous::<C>(at, stride) } };
                    if direct[*slot].is_none() {
                        unsafe { arr.gather(at, stride, &mut ins[*slot][..len]) };
                        written[*slot] = true;
                    }
                }
            }
            // Only a partial block has lanes to zero; testing first also
            // spares full blocks a stall on the just-written flags (measured:
            // gradients 10-20% faster at 1e6).
            if partial {
                for (b, _) in ins.iter_mut().zip(written).filter(|(_, w)| *w) {
                    b[len..padded].fill(C::ZERO);
                }
            }
            {
                let views: [&[C]; NIN] = std::array::from_fn(|s| match direct[s] {
                    // SAFETY: the pointer is into a periodic buffer (`at`
                    // leaves at least BLOCK values after it; the buffer
                    // outlives the views), or, in a full block (`padded == len`),
                    // `contiguous` vouched for `len` aligned elements of the
                    // compute type along the array's line. Nothing writes
                    // them while the view lives: outputs are written below,
                    // after the views are gone, and other tasks write other
                    // elements.
                    Some(p) => unsafe { std::slice::from_raw_parts(p, padded) },
                    None if written[s] => &ins[s][..padded],
                    None => &C::ONES[..padded],
                });
                self.op.apply::<FMA>(views, &mut value[..padded], &mut grad[..padded])?;
            }
            if self.sum {
                lanes.add(&value[..len]);
            }
            match (self.axis, axis.as_mut()) {
                (AxisMode::Periodic { period, .. }, Some((_, buffer))) => {
                    // Element `i` goes to position `i - period * (start / period)`
                    // of the buffer, whose position `p` is sum `p % period`.
                    let at = start % period;
                    for (b, v) in buffer[at..at + len].iter_mut().zip(&value[..len]) {
                        *b += v.to_f64();
                    }
                }
                (AxisMode::Repeating { repeat, .. }, Some((first, sums))) => {
                    let (mut i, end) = (start, start + len);
                    while i < end {
                        let take = ((i / repeat + 1) * repeat).min(end) - i;
                        let mut stretch = Lanes::default();
                        stretch.add(&value[i - start..i - start + take]);
                        sums[i / repeat - *first as usize] += stretch.total();
                        i += take;
                    }
                }
                _ => {}
            }
            if let (true, Some((first, sums))) = (runs_axis, axis.as_mut()) {
                let step = self.inner[acc] / 8;
                for seg in &segments {
                    let values = &value[seg.start..seg.start + seg.len];
                    let at = ((seg.axis - *first) / 8) as usize;
                    if step == 0 {
                        let mut stretch = Lanes::default();
                        stretch.add(values);
                        sums[at] += stretch.total();
                    } else if step == 1 {
                        for (s, v) in sums[at..at + values.len()].iter_mut().zip(values) {
                            *s += v.to_f64();
                        }
                    } else {
                        for (j, v) in values.iter().enumerate() {
                            sums[(at as isize + j as isize * step) as usize] += v.to_f64();
                        }
                    }
                }
            }
            for (k, (slot, out)) in self.outs.iter().enumerate() {
                let src: &[C] = if *slot == 0 { &value[..] } else { &grad[..] };
                // SAFETY (both): the offsets and strides come from the plan
                // of this very array and cover elements of this chunk, which
                // no other task writes.
                match self.flat[nin + k] {
                    Some(stride) => unsafe {
                        let at = self.base[nin + k] + start as isize * stride;
                        let contiguous = stride == std::mem::size_of::<C>() as isize;
                        if !(self.stream && contiguous && out.stream(at, &src[..len])) {
                            out.scatter(at, stride, &src[..len]);
                        }
                    },
                    None => {
                        for seg in &segments {
                            let piece = &src[seg.start..seg.start + seg.len];
                            unsafe { out.scatter(seg.offsets[k], self.inner[nin + k], piece) };
                        }
                    }
                }
            }
            segments.clear();
            start += len;
        }
        if self.stream {
            fence();
        }
        let axis = match (self.axis, axis) {
            (AxisMode::Periodic { first, period }, Some((_, buffer))) => {
                // Fold the buffer: sum `c` adds positions c, c + period, ...
                let mut sums = try_zeros(period)?;
                for (p, b) in buffer.iter().enumerate() {
                    sums[p % period] += b;
                }
                Some((first, sums))
            }
            (AxisMode::Repeating { first, .. }, Some((row, sums))) => Some((first + row as usize, sums)),
            (_, axis) => axis.map(|(first, sums)| ((first / 8) as usize, sums)),
        };
        Ok(ChunkSums { total: lanes.total(), axis })
    }
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
