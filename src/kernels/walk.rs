//! One call's walk over its elements, a chunk at a time: how each operand
//! is read or written (resolved once per call, in [`Walk::new`]), and the
//! block loop of [`Walk::run`]: fill the buffers, compute, reduce, write.

use super::array::{ArrayMut, ArrayRef, fence};
use super::elem::DType;
use super::layout::{Plan, Runs};
use super::math::Real;
use super::parallel::{BlockOp, CHUNK, NIN, NOUT, try_zeros};
use super::reduce::Lanes;
use super::simd::Kernel;
use super::{KernelError, Small};
use std::marker::PhantomData;

/// Elements per block: operands are converted into L1-resident buffers of
/// this many compute values, and the math runs on those.
pub(super) const BLOCK: usize = 256;

/// Outputs of at least this many bytes in all are written past the caches:
/// they would not stay there anyway, and such stores save reading each line
/// of the output before overwriting it.
const STREAM_MIN_BYTES: usize = 16 << 20;

/// A float32 call whose contiguous inputs hold at least this many bytes
/// (more than the cores' L2 caches) asks for them [`PREFETCH_BLOCKS`]
/// blocks ahead: the hardware's own prefetching does not keep up with the
/// float32 loss streaming from memory. The float64 loss, slower per byte,
/// goes without (the hints slowed it down; docs/performance.md).
const PREFETCH_MIN_BYTES: usize = 16 << 20;
/// See [`PREFETCH_MIN_BYTES`].
const PREFETCH_BLOCKS: usize = 2;

/// Bytes of the widest vector register (AVX-512): a partial block is
/// computed over a multiple of this.
const VECTOR_BYTES: usize = 64;
/// Bytes of one iteration of the kernels' main loop (8 interleaved vectors,
/// see .cargo/config.toml). A float32 partial block of at least half this
/// is computed over a multiple of it, in the main loop: the compiler's
/// remainder loop takes float32 one half-width vector at a time.
const LOOP_BYTES: usize = 8 * VECTOR_BYTES;

/// The longest period of an input read from a tile (see `Plan::periods`);
/// longer ones are gathered run by run.
const MAX_PERIOD: usize = 4096;

/// Block buffers of one thread: one per input slot, then one per output
/// slot (values, gradients, second derivatives). Zeroed once per thread and reused call after call
/// (zeroing them per call costs as much as the math of a small call); a
/// call reads only what it wrote itself, and zeros (see `Walk::pad`).
pub(super) struct Scratch([[f64; BLOCK]; NIN + NOUT]);

impl Scratch {
    pub(super) const fn new() -> Self {
        Scratch([[0.0; BLOCK]; NIN + NOUT])
    }

    /// The buffers as blocks of the compute type.
    fn blocks<C: Real>(&mut self) -> [&mut [C; BLOCK]; NIN + NOUT] {
        const { assert!(size_of::<C>() <= size_of::<f64>() && align_of::<C>() <= align_of::<f64>()) };
        // SAFETY: `Real` is implemented for f32 and f64 only, plain floats
        // for which every initialized bit pattern is a value; the assertion
        // above makes BLOCK of them fit in, and aligned as, BLOCK f64s. Each
        // buffer is a distinct array, borrowed mutably once.
        self.0.each_mut().map(|b| unsafe { &mut *(b as *mut [f64; BLOCK]).cast::<[C; BLOCK]>() })
    }
}

const _: () = assert!(f32::ONES.len() >= BLOCK && f64::ONES.len() >= BLOCK);

/// How the walk reads one input.
enum Access<C> {
    /// One strided line over the whole walk (element `i` at `base + i *
    /// stride`): read in place when it holds the compute type
    /// contiguously, else converted a block at a time.
    Line { base: isize, stride: isize, prefetch: bool },
    /// Values that repeat with a short period along the walk (a per-class
    /// weight of an `(N, C)` batch): read from a tile of them.
    Tiled(Tile<C>),
    /// Each value held for `repeat` consecutive elements (a per-sample
    /// weight): filled a value at a time.
    Held { base: isize, repeat: usize, stride: isize },
    /// Any other layout: gathered run by run along the plan.
    Gathered,
}

/// How the walk writes one output.
#[derive(Clone, Copy)]
enum Placement {
    /// One strided line over the whole walk.
    Line { base: isize, stride: isize },
    /// Scattered run by run along the plan.
    Runs,
}

/// The values of an input that repeats along the walk, laid out so that
/// every block's values are one vector-aligned slice.
struct Tile<C> {
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

impl<C: Real> Tile<C> {
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
        Tile { values, skew, span }
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

/// How the walk's elements map to the axis sums they add to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum AxisLayout {
    /// No axis sums.
    Off,
    /// Element `i` adds to sum `first + i % period` (per class of an
    /// `(N, C)` batch): summed through a buffer a block at a time.
    Cyclic { first: usize, period: usize },
    /// Element `i` adds to sum `first + i / group` (per sample): summed a
    /// group at a time.
    Grouped { first: usize, group: usize },
    /// Any other layout: run by run along the plan.
    Runs,
}

impl AxisLayout {
    /// The layout of plan operand `k` (the axis sums, in bytes of float64).
    fn of(plan: &Plan, present: bool, k: usize) -> AxisLayout {
        if !present {
            return AxisLayout::Off;
        }
        let first = (plan.base()[k] / 8) as usize;
        match (plan.periods(MAX_PERIOD)[k], plan.repeats()[k], plan.flat_strides()[k]) {
            (Some((period, 8)), _, _) => AxisLayout::Cyclic { first, period },
            (_, Some((group, 8)), _) => AxisLayout::Grouped { first, group },
            (_, _, Some(8)) => AxisLayout::Grouped { first, group: 1 },
            _ => AxisLayout::Runs,
        }
    }

    /// About how many axis sums one chunk returns, given all `len` of them
    /// (a chunk of other layouts rarely spans more than its elements).
    pub(super) fn sums_per_chunk(self, len: usize) -> usize {
        match self {
            AxisLayout::Off => 0,
            AxisLayout::Cyclic { period, .. } => period,
            AxisLayout::Grouped { group, .. } => CHUNK / group.max(1) + 2,
            AxisLayout::Runs => len.min(CHUNK),
        }
    }
}

/// What one chunk adds up.
pub(super) struct ChunkSums {
    /// The sum of all its values (0 unless summing).
    pub total: f64,
    /// For axis sums: the first index of `AxisSums::out` the chunk touches,
    /// and its sums from there on.
    pub axis: Option<(usize, Vec<f64>)>,
}

/// The axis sums of one chunk while it runs: `sums[j]` is sum `first + j`
/// (for `Cyclic`, a buffer position: see `add`; for `Runs`, `first` is a
/// byte offset).
struct ChunkAxis {
    first: isize,
    sums: Vec<f64>,
}

/// Where one stretch of a block goes in the outputs placed by runs, and in
/// the axis sums (a byte offset in float64s).
#[derive(Clone, Copy)]
struct Segment {
    start: usize,
    len: usize,
    offsets: [isize; NOUT],
    axis: isize,
}

/// One call's operands, and how each is read or written.
pub(super) struct Walk<'w, 'r, 'a, O, C> {
    plan: &'w Plan,
    /// Inputs present: slot, array, and how the walk reads it (plan operand `k`).
    ins: Small<(usize, &'r ArrayRef<'a>, Access<C>)>,
    /// Outputs present: slot, array, and where it goes (plan operand `ins.len() + k`).
    outs: Small<(usize, &'r ArrayMut<'a>, Placement)>,
    /// Byte strides of every plan operand along the runs.
    inner: Small<isize>,
    /// How the axis sums (the plan's last operand, if any) are indexed.
    pub axis: AxisLayout,
    /// Whether some operand is read or written run by run.
    by_runs: bool,
    /// Whether the outputs are large enough to write past the caches.
    stream: bool,
    op: &'w O,
    sum: bool,
}

impl<'w, 'r, 'a, O, C: Real> Walk<'w, 'r, 'a, O, C> {
    /// Resolves how each operand is read or written. `plan` walks the
    /// inputs, then the outputs, then (with `axis_sums`) the axis sums.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        plan: &'w Plan,
        ins: &[(usize, &'r ArrayRef<'a>)],
        outs: &[(usize, &'r ArrayMut<'a>)],
        axis_sums: bool,
        fresh_outputs: bool,
        op: &'w O,
        sum: bool,
    ) -> Self {
        let flat = plan.flat_strides();
        let base = plan.base();
        let nin = ins.len();
        let streamed: usize = ins
            .iter()
            .zip(&flat)
            .filter(|((_, arr), stride)| **stride == Some(arr.dtype().itemsize() as isize))
            .map(|((_, arr), _)| arr.dtype().itemsize() * plan.len())
            .sum();
        let prefetch = C::DTYPE == DType::F32 && streamed >= PREFETCH_MIN_BYTES;
        // Only operands that are not flat can repeat (the common call has none).
        let all_flat = flat.iter().all(Option::is_some);
        let (periods, repeats) =
            if all_flat { (Small::new(), Small::new()) } else { (plan.periods(MAX_PERIOD), plan.repeats()) };
        let access = |k: usize, arr: &ArrayRef<'_>| match (
            flat[k],
            periods.get(k).copied().flatten(),
            repeats.get(k).copied().flatten(),
        ) {
            (Some(stride), _, _) => {
                Access::Line { base: base[k], stride, prefetch: prefetch && stride == arr.dtype().itemsize() as isize }
            }
            // SAFETY: the period's elements are the array's line from `base`.
            (None, Some((period, stride)), _) => {
                Access::Tiled(Tile::new(period, |values| unsafe { arr.gather(base[k], stride, values) }))
            }
            (None, None, Some((repeat, stride))) => Access::Held { base: base[k], repeat, stride },
            (None, None, None) => Access::Gathered,
        };
        let ins: Small<_> = ins.iter().enumerate().map(|(k, (slot, arr))| (*slot, *arr, access(k, arr))).collect();
        let outs: Small<_> = outs
            .iter()
            .enumerate()
            .map(|(k, (slot, arr))| {
                let placement = match flat[nin + k] {
                    Some(stride) => Placement::Line { base: base[nin + k], stride },
                    None => Placement::Runs,
                };
                (*slot, *arr, placement)
            })
            .collect();
        let axis = AxisLayout::of(plan, axis_sums, nin + outs.len());
        let by_runs = axis == AxisLayout::Runs
            || ins.iter().any(|(_, _, a)| matches!(a, Access::Gathered))
            || outs.iter().any(|(_, _, p)| matches!(p, Placement::Runs));
        let out_bytes: usize = outs.iter().map(|(_, o, _)| plan.len() * o.dtype.itemsize()).sum();
        Walk {
            plan,
            ins,
            outs,
            inner: plan.inner_strides(),
            axis,
            by_runs,
            stream: !fresh_outputs && out_bytes >= STREAM_MIN_BYTES,
            op,
            sum,
        }
    }
}

/// One chunk of a walk, as a kernel compiled per instruction-set level.
pub(super) struct ChunkRun<'k, 'w, 'r, 'a, O, C> {
    pub walk: &'k Walk<'w, 'r, 'a, O, C>,
    pub lo: usize,
    pub hi: usize,
    pub scratch: &'k mut Scratch,
    pub compute: PhantomData<C>,
}

impl<C: Real, O: BlockOp<C>> Kernel for ChunkRun<'_, '_, '_, '_, O, C> {
    type Output = Result<ChunkSums, KernelError>;

    #[inline(always)]
    fn run<const FMA: bool>(self) -> Self::Output {
        self.walk.run::<FMA>(self.lo, self.hi, self.scratch)
    }
}

/// The input buffers of a block, and which of them this chunk filled.
struct Buffers<'s, C> {
    ins: [&'s mut [C; BLOCK]; NIN],
    written: [bool; NIN],
}

impl<O: BlockOp<C>, C: Real> Walk<'_, '_, '_, O, C> {
    /// Processes elements `lo..hi` of the walk, a block of `BLOCK` at a
    /// time; returns the sum of their values (when summing) and their axis
    /// sums. Each block starts at a multiple of `BLOCK` from `lo`, so the
    /// order of every sum is fixed.
    #[inline(always)]
    fn run<const FMA: bool>(&self, lo: usize, hi: usize, scratch: &mut Scratch) -> Result<ChunkSums, KernelError> {
        let mut axis = self.start_axis(lo, hi)?;
        let [b0, b1, b2, b3, b4, value, grad, hess] = scratch.blocks::<C>();
        let mut bufs = Buffers { ins: [b0, b1, b2, b3, b4], written: [false; NIN] };
        let mut lanes = Lanes::default();
        let mut runs = self.by_runs.then(|| self.plan.runs(lo, hi));
        let mut segments: Small<Segment> = Small::new();
        for start in (lo..hi).step_by(BLOCK) {
            let len = BLOCK.min(hi - start);
            if let Some(runs) = runs.as_mut() {
                self.gather_runs(runs, len, &mut bufs, &mut segments);
            }
            let padded = padded_len::<C>(len);
            let direct = self.fill(start, len, &mut bufs);
            self.pad(len, padded, &mut bufs);
            self.compute::<FMA>(&direct, &bufs, [&mut value[..padded], &mut grad[..padded], &mut hess[..padded]])?;
            if self.sum {
                lanes.add(&value[..len]);
            }
            if let Some(axis) = axis.as_mut() {
                self.add_axis(axis, start, &value[..len], &segments);
            }
            self.write(start, len, [&value[..], &grad[..], &hess[..]], &segments);
            segments.clear();
        }
        if self.stream {
            fence();
        }
        Ok(ChunkSums { total: lanes.total(), axis: self.finish_axis(axis)? })
    }

    /// Gathers `len` elements of the inputs read run by run into their
    /// buffers, and records where the stretches go (see `Segment`).
    #[inline(always)]
    fn gather_runs(&self, runs: &mut Runs<'_>, len: usize, bufs: &mut Buffers<'_, C>, segments: &mut Small<Segment>) {
        let nin = self.ins.len();
        let acc = nin + self.outs.len();
        let mut filled = 0;
        while filled < len {
            let take = runs.len().min(len - filled);
            let offsets = runs.offsets();
            for (k, (slot, arr, access)) in self.ins.iter().enumerate() {
                if matches!(access, Access::Gathered) {
                    // SAFETY: the run's offset and inner stride come from
                    // the plan of this array; `take` elements remain in it.
                    unsafe { arr.gather(offsets[k], self.inner[k], &mut bufs.ins[*slot][filled..filled + take]) };
                    bufs.written[*slot] = true;
                }
            }
            let axis = if self.axis == AxisLayout::Runs { offsets[acc] } else { 0 };
            let offsets = std::array::from_fn(|k| if k < self.outs.len() { offsets[nin + k] } else { 0 });
            segments.push(Segment { start: filled, len: take, offsets, axis });
            runs.advance(take);
            filled += take;
        }
    }

    /// Fills the buffers of the inputs read line by line or held, and says
    /// which inputs are read in place (tiles, and whole blocks of lines that
    /// hold the compute type contiguously).
    #[inline(always)]
    fn fill(&self, start: usize, len: usize, bufs: &mut Buffers<'_, C>) -> [Option<*const C>; NIN] {
        let mut direct: [Option<*const C>; NIN] = [None; NIN];
        for (slot, arr, access) in &self.ins {
            match access {
                Access::Line { base, stride, prefetch } => {
                    let at = base + start as isize * stride;
                    if *prefetch {
                        arr.prefetch(at + (PREFETCH_BLOCKS * BLOCK) as isize * stride, BLOCK * *stride as usize);
                    }
                    // SAFETY (both): elements `start..start + len` of the walk
                    // lie on this array's line at `base + i * stride`.
                    direct[*slot] = if len < BLOCK { None } else { unsafe { arr.contiguous::<C>(at, *stride) } };
                    if direct[*slot].is_none() {
                        unsafe { arr.gather(at, *stride, &mut bufs.ins[*slot][..len]) };
                        bufs.written[*slot] = true;
                    }
                }
                Access::Tiled(tile) => direct[*slot] = Some(tile.at(start).as_ptr()),
                Access::Held { base, repeat, stride } => {
                    let end = start + len;
                    let mut i = start;
                    while i < end {
                        let take = ((i / repeat + 1) * repeat).min(end) - i;
                        let at = base + (i / repeat) as isize * stride;
                        // SAFETY: elements `i..i + take` of the walk all sit
                        // at this one element of the array.
                        unsafe { arr.gather(at, 0, &mut bufs.ins[*slot][i - start..i - start + take]) };
                        bufs.written[*slot] = true;
                        i += take;
                    }
                }
                Access::Gathered => {}
            }
        }
        direct
    }

    /// A partial (last) block is computed over whole vectors: the lanes of
    /// its buffers past `len` are set to zero, and the extra results are
    /// dropped (a scalar remainder loop would cost more). Testing `len`
    /// first spares full blocks a stall on the just-written flags.
    #[inline(always)]
    fn pad(&self, len: usize, padded: usize, bufs: &mut Buffers<'_, C>) {
        if len < BLOCK {
            for (b, _) in bufs.ins.iter_mut().zip(bufs.written).filter(|(_, w)| *w) {
                b[len..padded].fill(C::ZERO);
            }
        }
    }

    /// Runs the block operation on `padded` elements.
    #[inline(always)]
    fn compute<const FMA: bool>(
        &self,
        direct: &[Option<*const C>; NIN],
        bufs: &Buffers<'_, C>,
        outs: [&mut [C]; NOUT],
    ) -> Result<(), KernelError> {
        let padded = outs[0].len();
        let views: [&[C]; NIN] = std::array::from_fn(|s| match direct[s] {
            // SAFETY: the pointer is into a tile (`at` leaves at least BLOCK
            // values after it; the tile outlives the views), or, in a full
            // block (`padded == len`), `contiguous` vouched for `len` aligned
            // elements of the compute type along the array's line. Nothing
            // writes them while the views live: outputs are written after
            // this returns, and other tasks write other elements.
            Some(p) => unsafe { std::slice::from_raw_parts(p, padded) },
            None if bufs.written[s] => &bufs.ins[s][..padded],
            None => &C::ONES[..padded],
        });
        self.op.apply::<FMA>(views, outs)
    }

    /// Writes the block's results (by output slot) to the outputs.
    #[inline(always)]
    fn write(&self, start: usize, len: usize, results: [&[C]; NOUT], segments: &[Segment]) {
        for (k, (slot, out, placement)) in self.outs.iter().enumerate() {
            let src = results[*slot];
            // SAFETY (both): the offsets and strides come from the plan of
            // this very array and cover elements of this chunk, which no
            // other task writes.
            match placement {
                Placement::Line { base, stride } => unsafe {
                    let at = base + start as isize * stride;
                    let contiguous = *stride == size_of::<C>() as isize;
                    if !(self.stream && contiguous && out.stream(at, &src[..len])) {
                        out.scatter(at, *stride, &src[..len]);
                    }
                },
                Placement::Runs => {
                    let inner = self.inner[self.ins.len() + k];
                    for seg in segments {
                        unsafe { out.scatter(seg.offsets[k], inner, &src[seg.start..seg.start + seg.len]) };
                    }
                }
            }
        }
    }

    /// The axis sums chunk `lo..hi` adds to, zeroed.
    fn start_axis(&self, lo: usize, hi: usize) -> Result<Option<ChunkAxis>, KernelError> {
        Ok(match self.axis {
            AxisLayout::Off => None,
            AxisLayout::Cyclic { period, .. } => Some(ChunkAxis { first: 0, sums: try_zeros(period + BLOCK)? }),
            AxisLayout::Grouped { group, .. } => {
                let (first, last) = (lo / group, (hi - 1) / group);
                Some(ChunkAxis { first: first as isize, sums: try_zeros(last - first + 1)? })
            }
            AxisLayout::Runs => {
                // The sums this chunk touches lie between its runs' extremes.
                let acc = self.ins.len() + self.outs.len();
                let (mut first, mut last) = (isize::MAX, isize::MIN);
                let mut runs = self.plan.runs(lo, hi);
                while runs.len() > 0 {
                    let a = runs.offsets()[acc];
                    let b = a + (runs.len() as isize - 1) * self.inner[acc];
                    (first, last) = (first.min(a.min(b)), last.max(a.max(b)));
                    runs.advance(runs.len());
                }
                if first > last {
                    return Ok(None);
                }
                Some(ChunkAxis { first, sums: try_zeros(((last - first) / 8 + 1) as usize)? })
            }
        })
    }

    /// Adds a block's values (walk elements `start..`) to the axis sums.
    #[inline(always)]
    fn add_axis(&self, axis: &mut ChunkAxis, start: usize, values: &[C], segments: &[Segment]) {
        match self.axis {
            AxisLayout::Off => {}
            AxisLayout::Cyclic { period, .. } => {
                // Element `i` goes to position `i - period * (start / period)`
                // of the buffer, whose position `p` is sum `p % period`.
                let at = start % period;
                for (b, v) in axis.sums[at..at + values.len()].iter_mut().zip(values) {
                    *b += v.to_f64();
                }
            }
            AxisLayout::Grouped { group, .. } => {
                let end = start + values.len();
                let mut i = start;
                while i < end {
                    let take = ((i / group + 1) * group).min(end) - i;
                    let mut stretch = Lanes::default();
                    stretch.add(&values[i - start..i - start + take]);
                    axis.sums[i / group - axis.first as usize] += stretch.total();
                    i += take;
                }
            }
            AxisLayout::Runs => {
                let step = self.inner[self.ins.len() + self.outs.len()] / 8;
                for seg in segments {
                    add_run(
                        &mut axis.sums,
                        ((seg.axis - axis.first) / 8) as usize,
                        step,
                        &values[seg.start..seg.start + seg.len],
                    );
                }
            }
        }
    }

    /// The chunk's axis sums as `(first index, sums)`.
    fn finish_axis(&self, axis: Option<ChunkAxis>) -> Result<Option<(usize, Vec<f64>)>, KernelError> {
        let Some(axis) = axis else { return Ok(None) };
        Ok(Some(match self.axis {
            AxisLayout::Cyclic { first, period } => {
                // Fold the buffer: sum `c` adds positions c, c + period, ...
                let mut sums = try_zeros(period)?;
                for (p, b) in axis.sums.iter().enumerate() {
                    sums[p % period] += b;
                }
                (first, sums)
            }
            AxisLayout::Grouped { first, .. } => (first + axis.first as usize, axis.sums),
            _ => ((axis.first / 8) as usize, axis.sums),
        }))
    }
}

/// Adds the values of one run to the sums from `at` on, `step` apart (0:
/// all to one sum, summed in lanes first).
#[inline(always)]
fn add_run<C: Real>(sums: &mut [f64], at: usize, step: isize, values: &[C]) {
    match step {
        0 => {
            let mut stretch = Lanes::default();
            stretch.add(values);
            sums[at] += stretch.total();
        }
        1 => {
            for (s, v) in sums[at..at + values.len()].iter_mut().zip(values) {
                *s += v.to_f64();
            }
        }
        _ => {
            for (j, v) in values.iter().enumerate() {
                sums[(at as isize + j as isize * step) as usize] += v.to_f64();
            }
        }
    }
}

/// The elements a block of `len` is computed over: `len` for a full block;
/// a partial one is padded to whole vectors, or for float32 of at least
/// half a main-loop iteration, to whole iterations.
#[inline(always)]
fn padded_len<C: Real>(len: usize) -> usize {
    match len * size_of::<C>() {
        _ if len == BLOCK => len,
        bytes if size_of::<C>() == 4 && bytes >= LOOP_BYTES / 2 => len.next_multiple_of(LOOP_BYTES / size_of::<C>()),
        _ => len.next_multiple_of(VECTOR_BYTES / size_of::<C>()),
    }
}
