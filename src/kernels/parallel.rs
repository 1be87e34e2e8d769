//! The thread pool and the driver that walks arrays block by block, on one
//! thread or many, with the same result either way.

use super::KernelError;
use super::array::{ArrayMut, ArrayRef, check_outputs};
use super::layout::Plan;
use super::math::Real;
use super::reduce::{ExactSum, Lanes};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Elements per reduction chunk: the fixed grid that makes sums independent
/// of the thread count. Chunk partials are combined exactly.
pub const CHUNK: usize = 8192;
/// Elements per block: operands are converted into L1-resident buffers of
/// this many compute values, and the math runs on those.
const BLOCK: usize = 256;
/// Below this many elements the work stays on the calling thread.
pub const PARALLEL_MIN_LEN: usize = 2 * CHUNK;

/// Input slots of a block operation: input, target, weight, pos_weight,
/// grad_output. Absent operands read as ones.
pub(crate) const NIN: usize = 5;
/// Output slots: the value (loss or sigmoid) and the gradient.
pub(crate) const NOUT: usize = 2;

/// The elementwise work on one block of converted operands.
pub(crate) trait BlockOp<C: Real>: Sync {
    /// Reads `ins` (all of one length) and writes `value` and/or `grad`.
    fn apply(&self, ins: [&[C]; NIN], value: &mut [C], grad: &mut [C]) -> Result<(), KernelError>;
}

static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

/// The threads the machine offers this process.
pub fn default_num_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
        if let Some(a) = arr.filter(|a| a.shape != shape) {
            return Err(KernelError::Shape { name: OUT_NAMES[slot], shape: a.shape.clone(), expected: shape.to_vec() });
        }
    }
    let ins: Vec<(usize, &ArrayRef<'_>)> = ops.ins.iter().enumerate().filter_map(|(s, a)| a.map(|a| (s, a))).collect();
    let outs: Vec<(usize, &ArrayMut<'_>)> =
        ops.outs.iter().enumerate().filter_map(|(s, a)| a.map(|a| (s, a))).collect();
    check_outputs(&ins.iter().map(|(_, a)| *a).collect::<Vec<_>>(), &outs.iter().map(|(_, a)| *a).collect::<Vec<_>>())?;

    let strides: Vec<&[isize]> =
        ins.iter().map(|(_, a)| a.strides.as_slice()).chain(outs.iter().map(|(_, a)| a.strides.as_slice())).collect();
    let plan = Plan::new(shape, &strides);
    let walk = Walk { plan: &plan, inner: plan.inner_strides(), ins: &ins, outs: &outs, op, sum };
    let n = plan.len();
    let chunks = n.div_ceil(CHUNK);
    let chunk = |c: usize| walk.run(c * CHUNK, n.min((c + 1) * CHUNK));
    let threads = num_threads();
    let partials: Vec<f64> = if threads > 1 && n >= PARALLEL_MIN_LEN {
        pool(threads)?.install(|| (0..chunks).into_par_iter().map(chunk).collect::<Result<_, _>>())?
    } else {
        (0..chunks).map(chunk).collect::<Result<_, _>>()?
    };
    let mut total = ExactSum::new();
    partials.iter().for_each(|&p| total.add(p));
    Ok(total.value())
}

struct Walk<'w, 'r, 'a, O> {
    plan: &'w Plan,
    inner: Vec<isize>,
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

impl<O> Walk<'_, '_, '_, O> {
    /// Processes elements `lo..hi` of the walk; returns the sum of their
    /// values (when summing).
    fn run<C: Real>(&self, lo: usize, hi: usize) -> Result<f64, KernelError>
    where
        O: BlockOp<C>,
    {
        let mut ins = [[C::ONE; BLOCK]; NIN];
        let mut value = [C::ZERO; BLOCK];
        let mut grad = [C::ZERO; BLOCK];
        let mut segments: Vec<Segment> = Vec::new();
        let mut lanes = Lanes::default();
        let mut filled = 0;
        let nin = self.ins.len();

        let mut flush = |ins: &[[C; BLOCK]; NIN], segments: &mut Vec<Segment>, filled: usize| {
            let views: [&[C]; NIN] = std::array::from_fn(|s| &ins[s][..filled]);
            self.op.apply(views, &mut value[..filled], &mut grad[..filled])?;
            if self.sum {
                lanes.add(&value[..filled]);
            }
            for seg in segments.drain(..) {
                for (k, (slot, out)) in self.outs.iter().enumerate() {
                    let src = if *slot == 0 { &value } else { &grad };
                    // SAFETY: the segment's offset and the inner stride come
                    // from the plan of this very array, and cover elements
                    // lo..hi of the walk, which no other task writes.
                    unsafe { out.scatter(seg.offsets[k], self.inner[nin + k], &src[seg.start..seg.start + seg.len]) };
                }
            }
            Ok::<(), KernelError>(())
        };

        self.plan.for_each_run(lo, hi, |offsets, n| {
            let mut done = 0;
            while done < n {
                let take = (BLOCK - filled).min(n - done);
                for (k, (slot, arr)) in self.ins.iter().enumerate() {
                    let at = offsets[k] + done as isize * self.inner[k];
                    // SAFETY: `at` and the inner stride come from the plan of
                    // this array; the `take` elements lie within its shape.
                    unsafe { arr.gather(at, self.inner[k], &mut ins[*slot][filled..filled + take]) };
                }
                if !self.outs.is_empty() {
                    let offsets = std::array::from_fn(|k| {
                        if k < self.outs.len() { offsets[nin + k] + done as isize * self.inner[nin + k] } else { 0 }
                    });
                    segments.push(Segment { start: filled, len: take, offsets });
                }
                filled += take;
                done += take;
                if filled == BLOCK {
                    flush(&ins, &mut segments, filled)?;
                    filled = 0;
                }
            }
            Ok(())
        })?;
        if filled > 0 {
            flush(&ins, &mut segments, filled)?;
        }
        Ok(lanes.total())
    }
}
