//! The thread pool and the driver that walks arrays block by block, on one
//! thread or many, with the same result either way.

use super::array::{ArrayMut, ArrayRef, check_outputs};
use super::layout::Plan;
use super::math::Real;
use super::reduce::{ExactSum, Lanes};
use super::simd::{Kernel, dispatch};
use super::{KernelError, Small};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Elements per reduction chunk: the fixed grid that makes sums independent
/// of the thread count. Chunk partials are combined exactly.
pub const CHUNK: usize = 8192;
/// Elements per block: operands are converted into L1-resident buffers of
/// this many compute values, and the math runs on those.
const BLOCK: usize = 256;
/// Below this many elements a call stays on the calling thread: waking a
/// helper costs tens of microseconds, so threads pay only for work longer
/// than that. Measured with `benches/bench.py`-style timing of the mean and
/// the gradient on 2 cores: a second thread first pays at about 1e5 float32
/// elements (float32 computes in about 1 ns an element) and at about 5e4
/// float64 elements.
pub const PARALLEL_MIN_LEN_F32: usize = 1 << 17;
/// See [`PARALLEL_MIN_LEN_F32`].
pub const PARALLEL_MIN_LEN_F64: usize = 1 << 16;

/// The parallel threshold of compute type `C`.
fn parallel_min_len<C: Real>() -> usize {
    if C::DTYPE == super::elem::DType::F32 { PARALLEL_MIN_LEN_F32 } else { PARALLEL_MIN_LEN_F64 }
}

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

static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

/// The threads the machine offers this process (read once: asking the
/// system costs microseconds).
pub fn default_num_threads() -> usize {
    static DEFAULT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *DEFAULT.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The number of threads large calls use.
pub fn num_threads() -> usize {
    match NUM_THREADS.load(Ordering::Relaxed) {
        0 => default_num_threads(),
        n => n,
    }
}

/// Sets the number of threads large calls use (at least 1). Calls already
/// running finish on the pool they started with.
pub fn set_num_threads(n: usize) -> Result<(), KernelError> {
    if n == 0 {
        return Err(KernelError::ThreadCount(n));
    }
    NUM_THREADS.store(n, Ordering::Relaxed);
    Ok(())
}

/// Runs `chunk(c)` for every chunk index `c < chunks` on `threads` threads
/// and adds the results to `total`: the calling thread and `threads - 1`
/// pool threads take chunks in turn from a shared counter (so the caller
/// works instead of waiting, and a late helper takes less). Stops at an error.
fn run_chunks<F>(chunks: usize, threads: usize, chunk: F, total: &mut ExactSum) -> Result<(), KernelError>
where
    F: Fn(usize) -> Result<f64, KernelError> + Sync,
{
    let helpers = threads.min(chunks).saturating_sub(1);
    if helpers == 0 {
        for c in 0..chunks {
            total.add(chunk(c)?);
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let results: Vec<AtomicU64> = (0..chunks).map(|_| AtomicU64::new(0)).collect();
    let failure: Mutex<Option<KernelError>> = Mutex::new(None);
    let work = || {
        loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= chunks {
                break;
            }
            match chunk(c) {
                Ok(v) => results[c].store(v.to_bits(), Ordering::Relaxed),
                Err(e) => {
                    next.store(chunks, Ordering::Relaxed);
                    failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
                    break;
                }
            }
        }
    };
    pool(helpers)?.in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| work());
        }
        work();
    });
    // The scope has joined every helper, so their stores are visible.
    if let Some(e) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    results.into_iter().for_each(|v| total.add(f64::from_bits(v.into_inner())));
    Ok(())
}

/// The pool of helper threads (one fewer than the threads a call uses).
fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, KernelError> {
    let mut slot = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pool) = slot.as_ref().filter(|p| p.current_num_threads() == threads) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("fastbce-{i}"))
        .build()
        .map_err(|e| KernelError::ThreadPool(e.to_string()))?;
    let pool = Arc::new(pool);
    *slot = Some(Arc::clone(&pool));
    Ok(pool)
}

/// Operands of one call, by slot.
pub(crate) struct Operands<'r, 'a> {
    pub ins: [Option<&'r ArrayRef<'a>>; NIN],
    pub outs: [Option<&'r ArrayMut<'a>>; NOUT],
}

const IN_NAMES: [&str; NIN] = ["input", "target", "weight", "pos_weight", "grad_output"];
const OUT_NAMES: [&str; NOUT] = ["out", "grad out"];

/// Runs `op` over every element; returns the float64 sum of the values
/// when `sum` is set (0 otherwise). The sum is the same bits for any thread
/// count: chunk `c` covers elements `c * CHUNK ..` of the walk, is summed
/// in a fixed order, and the chunk sums are added exactly.
pub(crate) fn drive<C: Real, O: BlockOp<C>>(ops: &Operands<'_, '_>, op: &O, sum: bool) -> Result<f64, KernelError> {
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
    check_outputs(
        &ins.iter().map(|(_, a)| *a).collect::<Small<_>>(),
        &outs.iter().map(|(_, a)| *a).collect::<Small<_>>(),
    )?;

    let strides: Small<&[isize]> =
        ins.iter().map(|(_, a)| a.strides.as_slice()).chain(outs.iter().map(|(_, a)| a.strides.as_slice())).collect();
    let plan = Plan::new(shape, &strides);
    let walk = Walk { plan: &plan, inner: plan.inner_strides(), ins: &ins, outs: &outs, op, sum };
    let n = plan.len();
    let chunks = n.div_ceil(CHUNK);
    let chunk = |c: usize| {
        dispatch(ChunkRun { walk: &walk, lo: c * CHUNK, hi: n.min((c + 1) * CHUNK), compute: PhantomData::<C> })
    };
    let threads = if n >= parallel_min_len::<C>() { num_threads() } else { 1 };
    let mut total = ExactSum::new();
    run_chunks(chunks, threads, chunk, &mut total)?;
    Ok(total.value())
}

struct Walk<'w, 'r, 'a, O> {
    plan: &'w Plan,
    inner: Small<isize>,
    ins: &'w [(usize, &'r ArrayRef<'a>)],
    outs: &'w [(usize, &'r ArrayMut<'a>)],
    op: &'w O,
    sum: bool,
}

/// Where one stretch of a block goes in the outputs.
#[derive(Clone, Copy)]
struct Segment {
    start: usize,
    len: usize,
    offsets: [isize; NOUT],
}

/// One chunk of a walk, as a kernel compiled per instruction-set level.
struct ChunkRun<'k, 'w, 'r, 'a, O, C> {
    walk: &'k Walk<'w, 'r, 'a, O>,
    lo: usize,
    hi: usize,
    compute: PhantomData<C>,
}

impl<C: Real, O: BlockOp<C>> Kernel for ChunkRun<'_, '_, '_, '_, O, C> {
    type Output = Result<f64, KernelError>;

    #[inline(always)]
    fn run<const FMA: bool>(self) -> Self::Output {
        self.walk.run::<C, FMA>(self.lo, self.hi)
    }
}

/// The block buffers of one chunk in progress.
struct Blocks<C> {
    ins: [[C; BLOCK]; NIN],
    value: [C; BLOCK],
    grad: [C; BLOCK],
    /// Elements gathered so far into the current block.
    filled: usize,
    /// Where the current block's elements go in the outputs.
    segments: Small<Segment>,
    lanes: Lanes,
}

impl<O> Walk<'_, '_, '_, O> {
    /// Processes elements `lo..hi` of the walk; returns the sum of their
    /// values (when summing).
    #[inline(always)]
    fn run<C: Real, const FMA: bool>(&self, lo: usize, hi: usize) -> Result<f64, KernelError>
    where
        O: BlockOp<C>,
    {
        let mut b = Blocks {
            ins: [[C::ONE; BLOCK]; NIN],
            value: [C::ZERO; BLOCK],
            grad: [C::ZERO; BLOCK],
            filled: 0,
            segments: Small::new(),
            lanes: Lanes::default(),
        };
        let mut runs = self.plan.runs(lo, hi);
        loop {
            let n = runs.len();
            if n == 0 {
                break;
            }
            let offsets = runs.offsets();
            let mut done = 0;
            while done < n {
                if b.filled == 0 && n - done >= BLOCK {
                    // A whole block within one run: contiguous operands of
                    // the compute type are read in place, without a copy.
                    let mut direct = [None; NIN];
                    for (k, (slot, arr)) in self.ins.iter().enumerate() {
                        let at = offsets[k] + done as isize * self.inner[k];
                        // SAFETY (both): `at` and the inner stride come from
                        // the plan of this array, and the run holds BLOCK
                        // more elements.
                        direct[*slot] = unsafe { arr.contiguous::<C>(at, self.inner[k]) };
                        if direct[*slot].is_none() {
                            unsafe { arr.gather(at, self.inner[k], &mut b.ins[*slot][..BLOCK]) };
                        }
                    }
                    self.push_segment(&mut b, offsets, done, BLOCK);
                    b.filled = BLOCK;
                    self.flush::<C, FMA>(&mut b, direct)?;
                    done += BLOCK;
                    continue;
                }
                let take = (BLOCK - b.filled).min(n - done);
                let range = b.filled..b.filled + take;
                for (k, (slot, arr)) in self.ins.iter().enumerate() {
                    let at = offsets[k] + done as isize * self.inner[k];
                    // SAFETY: `at` and the inner stride come from the plan of
                    // this array; the `take` elements lie within its shape.
                    unsafe { arr.gather(at, self.inner[k], &mut b.ins[*slot][range.clone()]) };
                }
                self.push_segment(&mut b, offsets, done, take);
                b.filled += take;
                done += take;
                if b.filled == BLOCK {
                    self.flush::<C, FMA>(&mut b, [None; NIN])?;
                }
            }
            runs.advance(n);
        }
        if b.filled > 0 {
            self.flush::<C, FMA>(&mut b, [None; NIN])?;
        }
        Ok(b.lanes.total())
    }

    /// Records where the `take` elements from `done` on in the current run
    /// go in the outputs.
    #[inline(always)]
    fn push_segment<C>(&self, b: &mut Blocks<C>, offsets: &[isize], done: usize, take: usize) {
        if !self.outs.is_empty() {
            let nin = self.ins.len();
            let offsets = std::array::from_fn(|k| {
                if k < self.outs.len() { offsets[nin + k] + done as isize * self.inner[nin + k] } else { 0 }
            });
            b.segments.push(Segment { start: b.filled, len: take, offsets });
        }
    }

    /// Computes the block (operands from `direct` where given, else from
    /// the gathered buffers), sums it and writes it out.
    #[inline(always)]
    fn flush<C: Real, const FMA: bool>(
        &self,
        b: &mut Blocks<C>,
        direct: [Option<*const C>; NIN],
    ) -> Result<(), KernelError>
    where
        O: BlockOp<C>,
    {
        let filled = b.filled;
        {
            let views: [&[C]; NIN] = std::array::from_fn(|s| match direct[s] {
                // SAFETY: `contiguous` vouched for `BLOCK` (= `filled`)
                // aligned elements of the compute type. Nothing writes them
                // while the view lives: outputs are written below, after
                // the views are gone, and other tasks write other elements.
                Some(p) => unsafe { std::slice::from_raw_parts(p, filled) },
                None => &b.ins[s][..filled],
            });
            self.op.apply::<FMA>(views, &mut b.value[..filled], &mut b.grad[..filled])?;
        }
        if self.sum {
            b.lanes.add(&b.value[..filled]);
        }
        let nin = self.ins.len();
        for seg in b.segments.drain(..) {
            for (k, (slot, out)) in self.outs.iter().enumerate() {
                let src = if *slot == 0 { &b.value } else { &b.grad };
                // SAFETY: the segment's offset and the inner stride come from
                // the plan of this very array, and cover elements of this
                // chunk, which no other task writes.
                unsafe { out.scatter(seg.offsets[k], self.inner[nin + k], &src[seg.start..seg.start + seg.len]) };
            }
        }
        b.filled = 0;
        Ok(())
    }
}
