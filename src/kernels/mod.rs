//! The pure-Rust core: loss and gradient kernels over strided arrays.
//!
//! A call describes its arrays as [`ArrayRef`]/[`ArrayMut`] (any element
//! type of [`DType`], any strides), and [`loss`] walks them once: operands
//! are converted block by block into small buffers of the compute type
//! (`f32` for float16/float32 input, `f64` otherwise), the math runs on the
//! buffers, and results are summed in float64 or written out.

mod array;
mod bins;
mod count;
mod elem;
mod focal;
mod layout;
mod logits;
mod math;
mod parallel;
mod pool;
mod probs;
mod reduce;
mod simd;
mod walk;

/// Per-axis or per-operand values, built and moved several times per call:
/// small enough that copying them costs little against a 100-element call,
/// large enough that common calls (up to 4 axes; input, target and two more
/// operands) stay off the heap.
pub(crate) type Small<T> = smallvec::SmallVec<[T; 4]>;

pub use array::{ArrayMut, ArrayRef, c_strides};
pub use bins::{BinSums, bin_sums};
pub use count::nonzero_per_column;
pub use elem::{Bool8, DType};
pub use parallel::{AxisSums, CHUNK, PARALLEL_MIN_LEN_F32, PARALLEL_MIN_LEN_F64};
pub use pool::{
    MAX_THREADS_PER_CPU, cpu_count, default_num_threads, max_num_threads, num_threads, pools_built, set_num_threads,
};
pub use reduce::ExactSum;
pub use simd::{Level, detected as detected_level, level as simd_level, set_level as set_simd_level};

use logits::Outputs;
use math::{Real, Smoothing};
use parallel::{BlockOp, NIN, NOUT, Operands, drive};
use std::fmt;

/// Why a kernel call did not run.
#[derive(Clone, Debug, PartialEq)]
pub enum KernelError {
    /// An operand's shape differs from the input's.
    Shape { name: &'static str, shape: Vec<usize>, expected: Vec<usize> },
    /// An output array is not float16, float32 or float64.
    OutputDType(DType),
    /// An output overlaps another output, or part of an input without
    /// being that array (a caller can retry with a fresh output).
    Overlap(String),
    /// Two indices of an output address the same bytes.
    OutputOverlapsItself,
    /// Two outputs the caller gave (a gradient's and a second
    /// derivative's) share memory.
    OutputsOverlap,
    /// A view that does not fit the memory it was made from.
    BadLayout(String),
    /// `binary_cross_entropy` got an input outside [0, 1] or NaN.
    InputOutOfRange,
    /// `binary_cross_entropy` got a target outside [0, 1] or NaN.
    TargetOutOfRange,
    /// A thread count below 1 or above `max` (as written by the caller).
    ThreadCount { requested: String, max: usize, cpus: usize },
    /// An allocation of this many bytes failed.
    OutOfMemory(usize),
    /// An instruction-set level above what the CPU supports.
    SimdLevel { requested: &'static str, detected: &'static str },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Shape { name, shape, expected } => {
                write!(f, "{name} has shape {shape:?}, but input has shape {expected:?}")
            }
            KernelError::OutputDType(d) => write!(f, "outputs must be float16, float32 or float64, not {}", d.name()),
            KernelError::Overlap(what) => write!(f, "{what}"),
            KernelError::OutputOverlapsItself => {
                write!(
                    f,
                    "out has elements that share memory (a broadcast or overlapping view); pass an array whose elements are distinct"
                )
            }
            KernelError::OutputsOverlap => write!(
                f,
                "out: the gradient and second-derivative arrays share memory; pass two arrays that do not overlap"
            ),
            KernelError::BadLayout(what) => write!(f, "bad array layout: {what}"),
            KernelError::InputOutOfRange => write!(f, "all elements of input should be between 0 and 1"),
            KernelError::TargetOutOfRange => write!(f, "all elements of target should be between 0 and 1"),
            KernelError::ThreadCount { requested, max, cpus } => write!(
                f,
                "the number of threads must be between 1 and {max} ({MAX_THREADS_PER_CPU} per CPU, {cpus} CPUs), got {requested}"
            ),
            KernelError::OutOfMemory(bytes) => write!(f, "could not allocate {bytes} bytes"),
            KernelError::SimdLevel { requested, detected } => {
                write!(f, "this CPU cannot run the {requested} kernels; the best it supports is {detected}")
            }
        }
    }
}

impl std::error::Error for KernelError {}

/// Which binary cross-entropy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// On logits (`binary_cross_entropy_with_logits`).
    Logits,
    /// On probabilities (`binary_cross_entropy`); `pos_weight` is ignored.
    Probabilities,
    /// The focal loss on logits (`sigmoid_focal_loss`): `alpha` below 0
    /// turns the class weighting off; `gamma >= 0`. `pos_weight` is ignored.
    Focal { alpha: f64, gamma: f64 },
}

/// One loss call: what to read, and what to produce.
#[derive(Debug)]
pub struct LossRequest<'a> {
    pub loss: Loss,
    pub input: ArrayRef<'a>,
    pub target: ArrayRef<'a>,
    /// Same shape as `input` (broadcast with zero strides).
    pub weight: Option<ArrayRef<'a>>,
    pub pos_weight: Option<ArrayRef<'a>>,
    /// Elementwise factor of the gradient (`reduction="none"`).
    pub grad_output: Option<ArrayRef<'a>>,
    /// Scalar factor of every gradient and second-derivative element.
    pub grad_scale: f64,
    /// Label smoothing: the target `y` becomes `y (1 - ls) + ls / 2`.
    pub label_smoothing: f64,
    /// Floor of each element's second derivative, before `grad_scale` and
    /// `grad_output` (`-inf`: none).
    pub min_hess: f64,
    /// Return the float64 sum of the loss elements.
    pub sum: bool,
    /// Receives the loss elements.
    pub loss_out: Option<ArrayMut<'a>>,
    /// Receives the gradient elements.
    pub grad_out: Option<ArrayMut<'a>>,
    /// Receives the second-derivative elements.
    pub hess_out: Option<ArrayMut<'a>>,
    /// Receives (adds) the loss summed over some axes.
    pub axis_sums: Option<AxisSums<'a>>,
    /// The outputs were just allocated: their pages are faulted in as they
    /// are written, which goes through the caches anyway, so large outputs
    /// are not written past the caches.
    pub fresh_outputs: bool,
    /// The outputs and axis sums are new arrays that the caller drops if
    /// the call fails. Otherwise (the caller's `out=`, an input written in
    /// place, running sums) a call that can fail on a bad element checks
    /// every element first, so that a failed call leaves them unchanged.
    pub scratch_outputs: bool,
}

impl<'a> LossRequest<'a> {
    /// A request for the float64 sum of the loss, and nothing else yet.
    pub fn new(loss: Loss, input: ArrayRef<'a>, target: ArrayRef<'a>) -> Self {
        LossRequest {
            loss,
            input,
            target,
            weight: None,
            pos_weight: None,
            grad_output: None,
            grad_scale: 1.0,
            label_smoothing: 0.0,
            min_hess: f64::NEG_INFINITY,
            sum: true,
            loss_out: None,
            grad_out: None,
            hess_out: None,
            axis_sums: None,
            fresh_outputs: false,
            scratch_outputs: false,
        }
    }
}

/// Whether `dtype` input is computed in `f32` (float16 and float32) or `f64`.
pub fn computes_in_f32(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::F32)
}

fn run<C: Real>(req: &mut LossRequest<'_>) -> Result<ExactSum, KernelError> {
    let outputs = Outputs {
        value: req.sum || req.loss_out.is_some() || req.axis_sums.is_some(),
        grad: req.grad_out.is_some(),
        hess: req.hess_out.is_some(),
    };
    let pos_weight = if req.loss == Loss::Logits { req.pos_weight.as_ref() } else { None };
    let mut ops = Operands {
        ins: [Some(&req.input), Some(&req.target), req.weight.as_ref(), pos_weight, req.grad_output.as_ref()],
        outs: [req.loss_out.as_ref(), req.grad_out.as_ref(), req.hess_out.as_ref()],
        axis_sums: req.axis_sums.as_mut(),
        fresh_outputs: req.fresh_outputs,
    };
    let scale = C::from_f64(req.grad_scale);
    let smoothing = Smoothing::new(req.label_smoothing);
    let min_hess = C::from_f64(req.min_hess);
    let weighted = req.weight.is_some() || req.grad_output.is_some();
    match req.loss {
        Loss::Logits => {
            let pos_weight = pos_weight.is_some();
            let logits = logits::Logits { outputs, pos_weight, weighted, scale, smoothing, min_hess };
            drive(&mut ops, &logits, req.sum)
        }
        Loss::Focal { alpha, gamma } => {
            let focal = focal::Focal::<C> {
                outputs,
                weighted,
                scale: req.grad_scale,
                label_smoothing: req.label_smoothing,
                min_hess: req.min_hess,
                alpha: (alpha >= 0.0).then_some((alpha, 1.0 - alpha)),
                gamma,
                compute: std::marker::PhantomData,
            };
            drive(&mut ops, &focal, req.sum)
        }
        Loss::Probabilities => {
            // Nothing the caller holds is written before every element is
            // known good (a first pass over the inputs; docs/design.md,
            // "Errors"). Scratch outputs and sums are checked as they go.
            let writes = ops.outs.iter().any(Option::is_some) || ops.axis_sums.is_some();
            if writes && !req.scratch_outputs {
                let mut check = Operands {
                    ins: [Some(&req.input), Some(&req.target), None, None, None],
                    outs: [None, None, None],
                    axis_sums: None,
                    fresh_outputs: false,
                };

                drive::<C, _>(&mut check, &probs::CheckRange, false)?;
            }
            drive(&mut ops, &probs::Probabilities { outputs, scale, smoothing, min_hess }, req.sum)
        }
    }
}

/// Runs a loss call; returns the float64 sum of the loss elements if
/// `req.sum` (else 0). The sum is bitwise the same for any thread count.
pub fn loss(req: &mut LossRequest<'_>) -> Result<f64, KernelError> {
    loss_exact(req).map(|s| s.value())
}

/// [`loss`], with the sum as an exact expansion of the chunk sums (see
/// [`ExactSum::expansion`]), so that sums of several calls can be combined
/// without rounding.
pub fn loss_exact(req: &mut LossRequest<'_>) -> Result<ExactSum, KernelError> {
    if computes_in_f32(req.input.dtype()) { run::<f32>(req) } else { run::<f64>(req) }
}

struct Sigmoid;

impl<C: Real> BlockOp<C> for Sigmoid {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, ins: [&[C]; NIN], outs: [&mut [C]; NOUT]) -> Result<(), KernelError> {
        let [value, _, _] = outs;
        for (v, &x) in value.iter_mut().zip(ins[0]) {
            *v = math::sigmoid_pair::<C, FMA>(x, math::exp_neg_abs::<C, FMA>(x)).0;
        }
        Ok(())
    }
}

/// Writes the logistic sigmoid of `input` into `out` (`fresh_out`: just
/// allocated, see [`LossRequest::fresh_outputs`]).
pub fn sigmoid(input: &ArrayRef<'_>, out: &ArrayMut<'_>, fresh_out: bool) -> Result<(), KernelError> {
    let mut ops = Operands {
        ins: [Some(input), None, None, None, None],
        outs: [Some(out), None, None],
        axis_sums: None,
        fresh_outputs: fresh_out,
    };
    if computes_in_f32(input.dtype()) {
        drive::<f32, _>(&mut ops, &Sigmoid, false).map(drop)
    } else {
        drive::<f64, _>(&mut ops, &Sigmoid, false).map(drop)
    }
}

#[cfg(test)]
mod tests;

/// Serializes the tests that change or depend on process-wide settings
/// (the thread count and the instruction-set level).
#[cfg(test)]
pub(crate) fn test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
