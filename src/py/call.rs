//! What a call of the functional API means, defined once: the one native
//! entry point behind every public loss function, the lazy Dask functions'
//! checks and `LossAccumulator` (docs/design.md). It owns the reduction,
//! the result dtype, `out=`, broadcasting, mean scaling, the empty mean,
//! `axis=`, new outputs (from the output cache) and running sums, and it
//! declines, with a typed reason, only what Python must do first: convert
//! an argument that is not a NumPy array of native byte order, or compute
//! apart when an output overlaps an input in part.

use super::arrays::{
    array_of, dtype_of, empty_like, float_scalar, is_masked, is_writeable, uses_output_cache, view, view_as, view_mut,
};
use super::messages;
use crate::kernels::{self, ArrayRef, AxisSums, ExactSum, KernelError, Loss, LossRequest};
use numpy::{PyArray1, PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyFloat, PyInt, PyString, PyTuple};

/// Calls smaller than this keep the GIL: releasing it costs more than the work.
const DETACH_MIN_LEN: usize = 4096;

/// Why a call was declined: what Python does before calling again.
#[pyclass(frozen, eq, eq_int, module = "fastbce._core")]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decline {
    /// Convert `argument` to a NumPy array of native byte order.
    Convert,
    /// An output overlaps an input in part: compute into new arrays, then copy.
    Overlap,
}

/// A declined call: the reason, and the argument it concerns.
#[pyclass(frozen, get_all, module = "fastbce._core")]
pub struct Declined {
    reason: Decline,
    argument: String,
}

/// How a call stops short of a result.
enum Refusal {
    Decline(Decline, &'static str),
    Error(PyErr),
}

impl From<PyErr> for Refusal {
    fn from(e: PyErr) -> Self {
        Refusal::Error(e)
    }
}

impl From<KernelError> for Refusal {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::Overlap(_) => Refusal::Decline(Decline::Overlap, "out"),
            e => Refusal::Error(e.into()),
        }
    }
}

type Checked<T> = Result<T, Refusal>;

/// A result, or the `Declined` object Python acts on.
fn answer<'py>(py: Python<'py>, result: Checked<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    match result {
        Ok(value) => Ok(value),
        Err(Refusal::Error(e)) => Err(e),
        Err(Refusal::Decline(reason, argument)) => {
            Ok(Bound::new(py, Declined { reason, argument: argument.to_string() })?.into_any())
        }
    }
}

/// Which loss a request computes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Logits,
    Probabilities,
    Focal,
}

/// What a call asks for: which loss, and which of its value, gradient and
/// second derivative. Each public function holds one, made at import; with
/// the function's own arguments it makes the request `evaluate` takes.
#[pyclass(frozen, eq, module = "fastbce._core")]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    kind: Kind,
    /// The loss (reduced, or elementwise for reduction='none').
    #[pyo3(get)]
    value: bool,
    /// The gradient with respect to the input.
    #[pyo3(get)]
    grad: bool,
    /// The second derivative with respect to the input (elementwise).
    #[pyo3(get)]
    hess: bool,
}

#[pymethods]
impl Request {
    #[new]
    #[pyo3(signature = (*, loss, value, grad, hess=false))]
    fn new(loss: &str, value: bool, grad: bool, hess: bool) -> PyResult<Self> {
        let kind = match loss {
            "logits" => Kind::Logits,
            "probabilities" => Kind::Probabilities,
            "focal" => Kind::Focal,
            _ => return Err(messages::bad_loss(loss)),
        };
        Ok(Request { kind, value, grad, hess })
    }

    /// 'logits', 'probabilities' or 'focal'.
    #[getter]
    fn loss(&self) -> &'static str {
        match self.kind {
            Kind::Logits => "logits",
            Kind::Probabilities => "probabilities",
            Kind::Focal => "focal",
        }
    }

    fn __repr__(&self) -> String {
        let what: Vec<&str> = [(self.value, "loss"), (self.grad, "gradient"), (self.hess, "second derivative")]
            .iter()
            .filter_map(|(on, name)| on.then_some(*name))
            .collect();
        format!("Request({} on {})", what.join(", "), self.loss())
    }
}

/// The loss summed so far, kept exact, and optionally per index of the
/// kept axes (float64, continued by each call's chunk sums: see
/// `kernels::AxisSums`). `LossAccumulator` and the Dask partial sums hold one.
#[pyclass(module = "fastbce._core")]
pub struct RunningSums {
    total: ExactSum,
    sums: Option<Vec<f64>>,
}

#[pymethods]
impl RunningSums {
    /// Running sums; with `size`, also that many sums per kept index.
    #[new]
    #[pyo3(signature = (size=None))]
    fn new(size: Option<usize>) -> PyResult<Self> {
        Ok(RunningSums { total: ExactSum::new(), sums: size.map(zeros).transpose()? })
    }

    /// The total, rounded once to the nearest float64.
    #[getter]
    fn total(&self) -> f64 {
        self.total.value()
    }

    /// A copy of the per-index sums (None without them).
    #[getter]
    fn sums<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.sums.as_deref().map(|s| PyArray1::from_slice(py, s))
    }
}

/// `len` zeros, or MemoryError.
fn zeros(len: usize) -> PyResult<Vec<f64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| KernelError::OutOfMemory(len.saturating_mul(8)))?;
    v.resize(len, 0.0);
    Ok(v)
}

/// The parsed `reduction`.
#[derive(Clone, Copy)]
struct Reduction {
    name: &'static str,
    mean: bool,
    none: bool,
}

fn parse_reduction(reduction: &Bound<'_, PyAny>) -> PyResult<Reduction> {
    let name = match reduction.cast::<PyString>().map(|r| r.to_str()) {
        Ok(Ok("mean")) => "mean",
        Ok(Ok("sum")) => "sum",
        Ok(Ok("none")) => "none",
        _ => return Err(messages::bad_reduction(reduction)),
    };
    Ok(Reduction { name, mean: name == "mean", none: name == "none" })
}

/// `reduction` if it is 'mean', 'sum' or 'none' (the loss modules check it
/// when built).
#[pyfunction]
pub(super) fn check_reduction(reduction: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    parse_reduction(reduction).map(|r| r.name)
}

/// `arg` as a NumPy array the kernels read in place (a supported dtype in
/// native byte order) and its view, or the reason not to.
fn operand<'a, 'py>(
    arg: &'a Bound<'py, PyAny>,
    name: &'static str,
) -> Checked<(&'a Bound<'py, PyUntypedArray>, ArrayRef<'a>)> {
    let Ok(arr) = arg.cast::<PyUntypedArray>() else { return Err(Refusal::Decline(Decline::Convert, name)) };
    if is_masked(arg) {
        return Err(messages::masked(name).into());
    }
    let descr = arr.dtype();
    let dtype = dtype_of(&descr, name)?;
    if descr.is_native_byteorder() == Some(false) {
        return Err(Refusal::Decline(Decline::Convert, name));
    }
    Ok((arr, view_as(arr, dtype)))
}

/// An optional operand broadcast to the input's `shape`.
fn broadcast_operand<'b>(
    arg: Option<&'b Bound<'_, PyAny>>,
    name: &'static str,
    shape: &[usize],
) -> Checked<Option<ArrayRef<'b>>> {
    let Some(arg) = arg.filter(|a| !a.is_none()) else { return Ok(None) };
    let (arr, view) = operand(arg, name)?;
    let broadcast = view.broadcast_to(shape);
    broadcast.map(Some).ok_or_else(|| messages::broadcast(name, arr.shape(), shape, "input shape").into())
}

/// `grad_output`: a Python number, a 0-d array (a scalar factor), or an
/// array (elementwise, or per kept index with `axis`).
enum GradOutput<'a, 'py> {
    Scalar(f64),
    Array(&'a Bound<'py, PyUntypedArray>),
}

fn grad_output_of<'a, 'py>(arg: Option<&'a Bound<'py, PyAny>>) -> Checked<GradOutput<'a, 'py>> {
    let Some(arg) = arg.filter(|a| !a.is_none()) else { return Ok(GradOutput::Scalar(1.0)) };
    if arg.is_instance_of::<PyFloat>() || arg.is_exact_instance_of::<PyInt>() {
        return Ok(GradOutput::Scalar(arg.extract::<f64>()?));
    }
    let (arr, _) = operand(arg, "grad_output")?;
    if arr.ndim() == 0 {
        return Ok(GradOutput::Scalar(arr.call_method0("item")?.extract::<f64>()?));
    }
    Ok(GradOutput::Array(arr))
}

/// Per input axis, whether `axis` reduces it; None when it reduces all
/// of an input of at least one dimension (the plain reduction).
fn reduced_axes(axis: &Bound<'_, PyAny>, ndim: usize) -> PyResult<Option<Vec<bool>>> {
    let items: Vec<Bound<'_, PyAny>> = match axis.cast::<PyTuple>() {
        Ok(t) => t.iter().collect(),
        Err(_) => vec![axis.clone()],
    };
    let mut reduced = vec![false; ndim];
    for item in &items {
        let a = match item.extract::<isize>() {
            Ok(a) => a,
            Err(_) if item.is_instance_of::<PyInt>() => return Err(messages::axis_out_of_bounds(item, ndim)),
            Err(_) => return Err(messages::bad_axis(axis)),
        };
        let d = if a < 0 { a + ndim as isize } else { a };
        if !(0..ndim as isize).contains(&d) {
            return Err(messages::axis_out_of_bounds(item, ndim));
        }
        if std::mem::replace(&mut reduced[d as usize], true) {
            return Err(messages::axis_repeated(axis));
        }
    }
    Ok((ndim == 0 || reduced.contains(&false)).then_some(reduced))
}

/// `out` if it is a writeable array of `shape` and dtype `dtype`.
fn check_out<'a, 'py>(
    out: &'a Bound<'py, PyAny>,
    shape: &[usize],
    dtype: &Bound<'py, PyArrayDescr>,
    what: &str,
) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    let Ok(arr) = out.cast::<PyUntypedArray>() else { return Err(messages::out_not_array(out)) };
    if is_masked(out) {
        return Err(messages::masked("out"));
    }
    if arr.shape() != shape {
        return Err(messages::out_shape(arr.shape(), what, shape));
    }
    if !arr.dtype().is_equiv_to(dtype) {
        return Err(messages::out_dtype(&arr.dtype(), what, dtype));
    }
    if !is_writeable(arr) {
        return Err(messages::out_read_only());
    }
    Ok(arr)
}

/// The lengths of the axes of `shape` that `reduced` keeps.
fn kept_shape(shape: &[usize], reduced: &[bool]) -> Vec<usize> {
    shape.iter().zip(reduced).filter(|(_, r)| !**r).map(|(n, _)| *n).collect()
}

/// The loss and gradient dtype: the input's float type, else float64.
fn result_dtype<'py>(input: &Bound<'py, PyUntypedArray>) -> Bound<'py, PyArrayDescr> {
    let descr = input.dtype();
    if descr.kind() == b'f' { descr } else { numpy::dtype::<f64>(input.py()) }
}

/// Runs the kernels, without the GIL for large calls.
fn run_kernel(py: Python<'_>, req: &mut LossRequest<'_>, len: usize) -> Checked<ExactSum> {
    let total = if len >= DETACH_MIN_LEN { py.detach(|| kernels::loss_exact(req)) } else { kernels::loss_exact(req) };
    Ok(total?)
}

/// The arguments of one call, checked.
struct Call<'a, 'py> {
    input: &'a Bound<'py, PyUntypedArray>,
    request: LossRequest<'a>,
    reduction: Reduction,
    value: bool,
    grad: bool,
    hess: bool,
    /// The factor of every gradient element (before mean scaling).
    scale: f64,
    result: Bound<'py, PyArrayDescr>,
}

/// The scalar parameters of a call, checked: label smoothing, the floor of
/// the second derivative, and the focal loss's alpha and gamma.
fn loss_parameters(
    request: &mut LossRequest<'_>,
    kind: Kind,
    label_smoothing: f64,
    min_hess: Option<f64>,
    alpha: f64,
    gamma: f64,
) -> PyResult<()> {
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(messages::label_smoothing(label_smoothing));
    }
    if min_hess.is_some_and(f64::is_nan) {
        return Err(messages::min_hess_nan());
    }
    if kind == Kind::Focal {
        if alpha.is_nan() || alpha > 1.0 {
            return Err(messages::focal_alpha(alpha));
        }
        if !(gamma >= 0.0 && gamma.is_finite()) {
            return Err(messages::focal_gamma(gamma));
        }
        request.loss = Loss::Focal { alpha, gamma };
    }
    request.label_smoothing = label_smoothing;
    request.min_hess = min_hess.unwrap_or(f64::NEG_INFINITY);
    Ok(())
}

/// One call of the functional API: `request` (what it asks for) with the
/// public function's own arguments, in its order (the public functions
/// pass them by position: keywords cost about 15 ns each, a tenth of a
/// 100-element call; the package's other callers name them). Returns
/// `(loss, grad, hess)` (None for what was not asked; a reduced loss is a
/// NumPy scalar of the result dtype, or with `axis` an array), or a
/// `Declined`. `out` receives the one elementwise result asked for, or with
/// both derivatives, is a pair `(grad, hess)` of arrays (or None). `alpha`
/// and `gamma` are read by the focal loss only. With `into` (a
/// `RunningSums`, `reduction="sum"`, the loss only), the sums are added
/// there instead and None is returned. With `check_only`, returns `(result
/// dtype, reduced axes or None)` after checking the arguments, and runs
/// nothing.
#[pyfunction]
#[pyo3(signature = (
    request, input, target, weight, reduction, pos_weight=None, grad_output=None, out=None, axis=None,
    label_smoothing=0.0, min_hess=None, alpha=0.25, gamma=2.0, *, into=None, check_only=false,
))]
#[allow(clippy::too_many_arguments)]
pub(super) fn evaluate<'py>(
    request: &Bound<'py, Request>,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    reduction: &Bound<'py, PyAny>,
    pos_weight: Option<&Bound<'py, PyAny>>,
    grad_output: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
    axis: Option<&Bound<'py, PyAny>>,
    label_smoothing: f64,
    min_hess: Option<f64>,
    alpha: f64,
    gamma: f64,
    into: Option<&Bound<'py, RunningSums>>,
    check_only: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = input.py();
    let Request { kind, value, grad, hess } = *request.get();
    let loss = if kind == Kind::Probabilities { Loss::Probabilities } else { Loss::Logits };
    let result = (|| {
        let reduction = parse_reduction(reduction)?;
        let (x, x_view) = operand(input, "input")?;
        let (y, y_view) = operand(target, "target")?;
        if y.shape() != x.shape() {
            return Err(messages::target_shape(y.shape(), x.shape()).into());
        }
        let reduced = match axis.filter(|a| !a.is_none()) {
            Some(_) if reduction.none => return Err(messages::axis_needs_reduction().into()),
            Some(a) => reduced_axes(a, x.ndim())?,
            None => None,
        };
        let shape = x.shape();
        let mut call = Call::new(x, LossRequest::new(loss, x_view, y_view), reduction, [value, grad, hess]);
        let request = &mut call.request;
        loss_parameters(request, kind, label_smoothing, min_hess, alpha, gamma)?;
        request.weight = broadcast_operand(weight, "weight", shape)?;
        if kind == Kind::Logits {
            request.pos_weight = broadcast_operand(pos_weight, "pos_weight", shape)?;
        }
        if grad || hess {
            call.set_grad_output(grad_output_of(grad_output)?, reduced.as_deref())?;
        }
        let out = out.filter(|o| !o.is_none());
        match (check_only, into, reduced) {
            (true, _, reduced) => Ok((call.result, reduced).into_pyobject(py)?.into_any()),
            (_, Some(into), reduced) => call.add_into(into, reduced.as_deref(), out),
            (_, None, Some(reduced)) => call.run_axis(&reduced, out),
            (_, None, None) => call.run_full(out),
        }
    })();
    answer(py, result)
}

/// A call's outputs by slot (loss, gradient, second derivative): the
/// caller's arrays, or new ones.
struct Outputs<'py> {
    arrays: [Option<Bound<'py, PyUntypedArray>>; 3],
    /// Whether some output is new.
    some_new: bool,
}

impl<'py> Outputs<'py> {
    fn results(self) -> [Option<Bound<'py, PyAny>>; 3] {
        self.arrays.map(|a| a.map(Bound::into_any))
    }
}

impl<'a, 'py> Call<'a, 'py> {
    fn new(
        input: &'a Bound<'py, PyUntypedArray>,
        request: LossRequest<'a>,
        reduction: Reduction,
        [value, grad, hess]: [bool; 3],
    ) -> Self {
        Call { input, request, reduction, value, grad, hess, scale: 1.0, result: result_dtype(input) }
    }

    fn shape(&self) -> &'a [usize] {
        self.input.shape()
    }

    fn set_grad_output(&mut self, go: GradOutput<'a, 'py>, reduced: Option<&[bool]>) -> Checked<()> {
        let shape = self.shape();
        let arr = match go {
            GradOutput::Scalar(v) => {
                self.scale = v;
                return Ok(());
            }
            GradOutput::Array(arr) => arr,
        };
        let g = view(arr, "grad_output")?;
        self.request.grad_output = Some(match (self.reduction.none, reduced) {
            (true, _) => g
                .broadcast_to(shape)
                .ok_or_else(|| messages::broadcast("grad_output", arr.shape(), shape, "input shape"))?,
            (false, Some(reduced)) => g.spread_over(shape, reduced).ok_or_else(|| {
                messages::broadcast("grad_output", arr.shape(), &kept_shape(shape, reduced), "reduced shape")
            })?,
            (false, None) => return Err(messages::grad_output_not_scalar(self.reduction.name, arr.shape()).into()),
        });
        Ok(())
    }

    /// The factor of every gradient element when the loss reduces `count`
    /// elements into each result (the mean divides by it; none: 1).
    fn grad_scale(&self, count: usize) -> f64 {
        if self.reduction.mean && count > 0 { self.scale / count as f64 } else { self.scale }
    }

    /// Whether outputs allocated now are fresh pages (see
    /// `LossRequest::fresh_outputs`): a block recycled by the output cache
    /// is mapped already, and written as into `out`.
    fn fresh(&self) -> bool {
        !uses_output_cache(self.input.len(), &self.result)
    }

    /// `out` by output slot: the one elementwise result asked for, or with
    /// both derivatives a pair `(grad, hess)`.
    fn given(&self, out: Option<&Bound<'py, PyAny>>) -> PyResult<[Option<Bound<'py, PyAny>>; 3]> {
        let Some(out) = out else { return Ok([None, None, None]) };
        let none_as_absent = |o: Bound<'py, PyAny>| (!o.is_none()).then_some(o);
        Ok(match (self.grad, self.hess) {
            (true, true) => match out.cast::<PyTuple>().ok().filter(|t| t.len() == 2) {
                Some(pair) => [None, none_as_absent(pair.get_item(0)?), none_as_absent(pair.get_item(1)?)],
                None => return Err(messages::out_not_pair(out)),
            },
            (false, true) => [None, None, Some(out.clone())],
            (true, false) => [None, Some(out.clone()), None],
            (false, false) => [Some(out.clone()), None, None],
        })
    }

    /// The elementwise outputs asked for (`loss`: the loss too), each the
    /// caller's (checked) or new, like the input, of the result dtype.
    fn elementwise_outputs(&self, given: &[Option<Bound<'py, PyAny>>; 3], loss: bool) -> PyResult<Outputs<'py>> {
        const WHAT: [&str; 3] = ["loss", "gradient", "second derivative"];
        let wanted = [loss, self.grad, self.hess];
        let mut some_new = false;
        let mut arrays = [None, None, None];
        for slot in 0..3 {
            arrays[slot] = match (wanted[slot], &given[slot]) {
                (false, _) => None,
                (true, Some(o)) => Some(check_out(o, self.shape(), &self.result, WHAT[slot])?.clone()),
                (true, None) => {
                    some_new = true;
                    Some(empty_like(self.input, &self.result)?)
                }
            };
        }
        Ok(Outputs { arrays, some_new })
    }

    /// Sets the request's outputs, scale and flags for writing `outputs`.
    fn prepare<'r>(
        request: &mut LossRequest<'r>,
        outputs: &'r Outputs<'py>,
        grad_scale: f64,
        fresh: bool,
        given: bool,
    ) -> PyResult<()> {
        let [loss, grad, hess] = &outputs.arrays;
        request.grad_scale = grad_scale;
        request.fresh_outputs = fresh;
        request.scratch_outputs = !given;
        request.loss_out = loss.as_ref().map(view_mut).transpose()?;
        request.grad_out = grad.as_ref().map(view_mut).transpose()?;
        request.hess_out = hess.as_ref().map(view_mut).transpose()?;
        Ok(())
    }

    /// The plain reduction (or none).
    fn run_full(self, out: Option<&Bound<'py, PyAny>>) -> Checked<Bound<'py, PyAny>> {
        let py = self.input.py();
        let (total, elementwise) = (self.value && !self.reduction.none, self.value && self.reduction.none);
        let given = self.given(out)?;
        if given[0].is_some() && !elementwise {
            return Err(messages::out_needs_elementwise(self.reduction.name).into());
        }
        let outputs = self.elementwise_outputs(&given, elementwise)?;
        let n = self.input.len();
        let fresh = outputs.some_new && self.fresh();
        let grad_scale = self.grad_scale(n);
        let mut request: LossRequest<'_> = self.request;
        request.sum = total;
        Self::prepare(&mut request, &outputs, grad_scale, fresh, out.is_some())?;
        let sum = run_kernel(py, &mut request, n)?.value();
        drop(request);
        let [loss, grad, hess] = outputs.results();
        let loss = match (total, self.reduction.mean, n) {
            (false, _, _) => loss,
            (true, false, _) => Some(float_scalar(sum, &self.result)?),
            (true, true, 0) => Some(float_scalar(f64::NAN, &self.result)?),
            (true, true, n) => Some(float_scalar(sum / n as f64, &self.result)?),
        };
        Ok(PyTuple::new(py, [loss, grad, hess])?.into_any())
    }

    /// A mean or sum over some axes: one pass, summed in float64 per kept
    /// index inside the kernel.
    fn run_axis(self, reduced: &[bool], out: Option<&Bound<'py, PyAny>>) -> Checked<Bound<'py, PyAny>> {
        let py = self.input.py();
        let shape = self.shape();
        let kept = kept_shape(shape, reduced);
        let count: usize = shape.iter().zip(reduced).filter(|(_, r)| **r).map(|(n, _)| *n).product();
        let given = self.given(out)?;
        let outputs = self.elementwise_outputs(&given, false)?;
        let loss_into = given[0].as_ref().map(|o| check_out(o, &kept, &self.result, "loss")).transpose()?;
        let mut sums = zeros(if self.value { kept.iter().product() } else { 0 })?;
        let fresh = out.is_none() && self.fresh();
        let grad_scale = self.grad_scale(count);
        let mut request: LossRequest<'_> = self.request;
        request.sum = false;
        Self::prepare(&mut request, &outputs, grad_scale, fresh, out.is_some())?;
        if self.value {
            request.axis_sums = Some(AxisSums::new(&mut sums, shape, reduced)?);
        }
        run_kernel(py, &mut request, self.input.len())?;
        drop(request);
        if self.reduction.mean {
            sums.iter_mut().for_each(|s| *s /= count as f64);
        }
        let loss = match (self.value, loss_into) {
            (false, _) => None,
            (true, Some(into)) => {
                let values = array_of(&sums, &kept, &numpy::dtype::<f64>(py))?;
                let copyto = py.import("numpy")?.getattr("copyto")?;
                let kwargs = [("casting", "unsafe")].into_py_dict(py)?;
                copyto.call((into, values), Some(&kwargs))?;
                Some(into.clone().into_any())
            }
            (true, None) => Some(array_of(&sums, &kept, &self.result)?.into_any()),
        };
        let [_, grad, hess] = outputs.results();
        Ok(PyTuple::new(py, [loss, grad, hess])?.into_any())
    }

    /// Adds the loss's sums to running ones (no output).
    fn add_into(
        self,
        into: &Bound<'py, RunningSums>,
        reduced: Option<&[bool]>,
        out: Option<&Bound<'py, PyAny>>,
    ) -> Checked<Bound<'py, PyAny>> {
        let py = self.input.py();
        if self.grad || self.hess || !self.value || out.is_some() || self.reduction.name != "sum" {
            return Err(messages::running_sums_call().into());
        }
        let shape = self.shape();
        let kept = reduced.map(|r| kept_shape(shape, r).iter().product::<usize>());
        let mut running = into.try_borrow_mut().map_err(PyErr::from)?;
        let running = &mut *running;
        if running.sums.as_ref().map(Vec::len) != kept {
            return Err(messages::running_sums(running.sums.as_ref().map(Vec::len), kept).into());
        }
        let mut request: LossRequest<'_> = self.request;
        request.sum = true;
        if let (Some(sums), Some(reduced)) = (running.sums.as_mut(), reduced) {
            request.axis_sums = Some(AxisSums::new(sums, shape, reduced)?);
        }
        let total = run_kernel(py, &mut request, self.input.len())?;
        drop(request);
        running.total.add_sum(&total);
        Ok(py.None().into_bound(py))
    }
}

/// The logistic sigmoid of `x` into `out` (or a new array); a `Declined`
/// as for `evaluate`.
#[pyfunction]
#[pyo3(signature = (x, *, out=None))]
pub(super) fn sigmoid<'py>(x: &Bound<'py, PyAny>, out: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    let result = (|| {
        let (arr, x_view) = operand(x, "x")?;
        let dtype = result_dtype(arr);
        let given = out.filter(|o| !o.is_none());
        let out = match given {
            Some(o) => check_out(o, arr.shape(), &dtype, "result")?.clone(),
            None => empty_like(arr, &dtype)?,
        };
        let fresh = given.is_none() && !uses_output_cache(arr.len(), &dtype);
        let (input, output) = (x_view, view_mut(&out)?);
        if arr.len() >= DETACH_MIN_LEN {
            py.detach(|| kernels::sigmoid(&input, &output, fresh))
        } else {
            kernels::sigmoid(&input, &output, fresh)
        }?;
        Ok(out.into_any())
    })();
    answer(py, result)
}
