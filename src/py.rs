//! The PyO3 layer, and the only file that touches Python: it describes the
//! NumPy arrays it is given to the kernels, releases the GIL around the
//! kernel, and maps kernel errors to Python exceptions. Argument policy
//! (dtypes, broadcasting, messages) lives in the Python package; `quick`
//! repeats its dispatch for the common call only, for speed (a Python-level
//! dispatch costs twice a 100-element kernel), and declines everything the
//! package must check, convert or report (tests/test_api.py holds the two
//! paths to the same bits, types and layouts).

use crate::kernels::{self, ArrayMut, ArrayRef, AxisSums, DType, KernelError, Loss, LossRequest};
use crate::output_cache;
use numpy::npyffi::{_PyArray_GET_ITEM_DATA, flags::NPY_ARRAY_WRITEABLE};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFloat, PyInt, PyString, PyTuple, PyType};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

pyo3::create_exception!(
    _core,
    OverlapError,
    PyValueError,
    "An output array shares memory with an input array without being that same array."
);

/// Calls smaller than this keep the GIL: releasing it costs more than the work.
const DETACH_MIN_LEN: usize = 4096;

impl From<KernelError> for PyErr {
    fn from(e: KernelError) -> PyErr {
        let msg = e.to_string();
        match e {
            KernelError::Overlap(_) => OverlapError::new_err(msg),
            KernelError::OutOfMemory(_) => PyMemoryError::new_err(msg),
            KernelError::OutputDType(_) => PyTypeError::new_err(msg),
            KernelError::Shape { .. }
            | KernelError::BadLayout(_)
            | KernelError::OutputOverlapsItself
            | KernelError::InputOutOfRange
            | KernelError::TargetOutOfRange
            | KernelError::ThreadCount { .. }
            | KernelError::SimdLevel { .. } => PyValueError::new_err(msg),
        }
    }
}

fn dtype_of(arr: &Bound<'_, PyUntypedArray>, name: &str) -> PyResult<DType> {
    let descr = arr.dtype();
    if descr.is_native_byteorder() == Some(false) {
        return Err(PyTypeError::new_err(format!("{name} must be in native byte order, got dtype {descr}")));
    }
    Ok(match (descr.kind(), descr.itemsize()) {
        (b'b', 1) => DType::Bool,
        (b'i', 1) => DType::I8,
        (b'i', 2) => DType::I16,
        (b'i', 4) => DType::I32,
        (b'i', 8) => DType::I64,
        (b'u', 1) => DType::U8,
        (b'u', 2) => DType::U16,
        (b'u', 4) => DType::U32,
        (b'u', 8) => DType::U64,
        (b'f', 2) => DType::F16,
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        _ => return Err(PyTypeError::new_err(format!("{name} has unsupported dtype {descr}"))),
    })
}

/// Describes a NumPy array to the kernels, without copying it.
fn view<'b>(arr: &'b Bound<'_, PyUntypedArray>, name: &str) -> PyResult<ArrayRef<'b>> {
    let dtype = dtype_of(arr, name)?;
    // SAFETY: NumPy guarantees that `data`, `shape` and `strides` describe
    // valid elements of `dtype` (checked above), and holding `arr` for 'b
    // keeps the array, and so its buffer, alive. The kernels only read
    // through raw pointers; an output that is this very array is admitted
    // by the kernels' overlap check, any other overlap is refused. Other
    // Python threads writing the array during the call race with us exactly
    // as they would with a NumPy ufunc, which also releases the GIL.
    Ok(unsafe {
        let data = (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data as *const u8;
        ArrayRef::from_raw(data, dtype, arr.shape(), arr.strides())
    })
}

/// Describes a writable NumPy array to the kernels.
fn view_mut<'b>(arr: &'b Bound<'_, PyUntypedArray>, name: &str) -> PyResult<ArrayMut<'b>> {
    let dtype = dtype_of(arr, name)?;
    // SAFETY: reading the flags of a live array object.
    let writeable = unsafe { (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).flags } & NPY_ARRAY_WRITEABLE != 0;
    if !writeable {
        return Err(PyValueError::new_err(format!("{name} is read-only")));
    }
    // SAFETY: as in `view`, and NumPy says the buffer is writable. The
    // kernels check that no two indices of it share bytes before writing.
    Ok(unsafe {
        let data = (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data as *mut u8;
        ArrayMut::from_raw(data, dtype, arr.shape(), arr.strides())
    })
}

/// Describes `arr` broadcast to `shape` (weights, grad_output).
fn broadcast_view<'b>(
    arr: Option<&'b Bound<'_, PyUntypedArray>>,
    shape: &[usize],
    name: &str,
) -> PyResult<Option<ArrayRef<'b>>> {
    let Some(arr) = arr else { return Ok(None) };
    view(arr, name)?.broadcast_to(shape).map(Some).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{name} of shape {:?} does not broadcast to the input shape {shape:?} without changing it",
            arr.shape()
        ))
    })
}

/// Runs one loss call: returns the float64 sum of the loss elements when
/// `sum` is true (else 0.0), and writes the elements to `loss_out` and the
/// gradient (times `grad_scale` and `grad_output`) to `grad_out` if given.
/// `weight`, `pos_weight` and `grad_output` are broadcast to the input.
/// With `axis_sums` (a C-contiguous float64 array of the kept axes' shape)
/// and `reduced` (a flag per input axis), the loss summed over the reduced
/// axes is added into `axis_sums`. With `exact`, the sum comes back as a
/// list of floats whose exact sum it is (for combining calls exactly).
/// `fresh`: an output was just allocated (see `LossRequest::fresh_outputs`);
/// `scratch`: the outputs and sums are the caller's own new arrays (see
/// `LossRequest::scratch_outputs`).
#[pyfunction]
#[pyo3(signature = (probabilities, input, target, weight, pos_weight, grad_output, grad_scale, sum, loss_out, grad_out, axis_sums=None, reduced=None, exact=false, fresh=false, scratch=false))]
#[allow(clippy::too_many_arguments)]
fn bce(
    py: Python<'_>,
    probabilities: bool,
    input: &Bound<'_, PyUntypedArray>,
    target: &Bound<'_, PyUntypedArray>,
    weight: Option<&Bound<'_, PyUntypedArray>>,
    pos_weight: Option<&Bound<'_, PyUntypedArray>>,
    grad_output: Option<&Bound<'_, PyUntypedArray>>,
    grad_scale: f64,
    sum: bool,
    loss_out: Option<&Bound<'_, PyUntypedArray>>,
    grad_out: Option<&Bound<'_, PyUntypedArray>>,
    axis_sums: Option<&Bound<'_, PyArrayDyn<f64>>>,
    reduced: Option<Vec<bool>>,
    exact: bool,
    fresh: bool,
    scratch: bool,
) -> PyResult<Py<PyAny>> {
    let shape = input.shape();
    let mut sums_guard = axis_sums.map(|a| a.try_readwrite()).transpose()?;
    let sums = match (sums_guard.as_mut(), reduced) {
        (Some(guard), Some(reduced)) => Some(AxisSums::new(guard.as_slice_mut()?, shape, &reduced)?),
        (None, None) => None,
        _ => return Err(PyValueError::new_err("axis_sums and reduced go together")),
    };
    let mut req = LossRequest {
        loss: if probabilities { Loss::Probabilities } else { Loss::Logits },
        input: view(input, "input")?,
        target: view(target, "target")?,
        weight: broadcast_view(weight, shape, "weight")?,
        pos_weight: broadcast_view(pos_weight, shape, "pos_weight")?,
        grad_output: broadcast_view(grad_output, shape, "grad_output")?,
        grad_scale,
        sum,
        loss_out: loss_out.map(|a| view_mut(a, "out")).transpose()?,
        grad_out: grad_out.map(|a| view_mut(a, "out")).transpose()?,
        axis_sums: sums,
        fresh_outputs: fresh,
        scratch_outputs: scratch,
    };
    let total = if input.len() >= DETACH_MIN_LEN {
        py.detach(|| kernels::loss_exact(&mut req))
    } else {
        kernels::loss_exact(&mut req)
    }?;
    Ok(if exact {
        total.expansion().to_vec().into_pyobject(py)?.into_any().unbind()
    } else {
        total.value().into_pyobject(py)?.into_any().unbind()
    })
}

/// One call of the functional API in one step, for the common case: NumPy
/// arrays of supported dtypes in native byte order, a target of the input's
/// shape, weights that broadcast to it, a Python float or int
/// `grad_output`, and an `out` (or none) of the input's shape and result
/// dtype. Returns `(loss, grad)` as the Python package's `_evaluate` does
/// (None for what was not asked; a reduced loss is a NumPy scalar of the
/// result dtype), or None for anything else: the package then checks the
/// arguments (raising the documented error) or converts them. Kernel
/// errors (probabilities out of range) are raised.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn quick<'py>(
    py: Python<'py>,
    probabilities: bool,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    pos_weight: &Bound<'py, PyAny>,
    reduction: &Bound<'py, PyAny>,
    value: bool,
    grad: bool,
    grad_output: &Bound<'py, PyAny>,
    out: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let (mean, none) = match reduction.cast::<PyString>().map(|r| r.to_str()) {
        Ok(Ok("mean")) => (true, false),
        Ok(Ok("sum")) => (false, false),
        Ok(Ok("none")) => (false, true),
        _ => return Ok(None),
    };
    // A reduced loss, or the elementwise one.
    let (total, elementwise) = (value && !none, value && none);
    let (Some(Some(x)), Some(Some(y))) = (optional_array(input), optional_array(target)) else {
        return Ok(None);
    };
    let (Some(w), Some(pw), Some(out)) = (optional_array(weight), optional_array(pos_weight), optional_array(out))
    else {
        return Ok(None);
    };
    let grad_output = if grad_output.is_exact_instance_of::<PyFloat>() || grad_output.is_exact_instance_of::<PyInt>() {
        grad_output.extract::<f64>()?
    } else {
        return Ok(None);
    };
    let shape = x.shape();
    if y.shape() != shape {
        return Ok(None);
    }
    let operands = (|| -> PyResult<_> {
        Ok((
            view(x, "input")?,
            view(y, "target")?,
            broadcast_view(w, shape, "weight")?,
            broadcast_view(pw, shape, "pos_weight")?,
        ))
    })();
    let Ok((input_view, target_view, weight_view, pos_weight_view)) = operands else {
        return Ok(None);
    };
    let dtype = input_view.dtype();
    let result = match dtype {
        DType::F16 | DType::F32 | DType::F64 => x.dtype(),
        _ => numpy::dtype::<f64>(py),
    };
    // The outputs, as `_evaluate` makes them: `out` takes the gradient if
    // one is asked for, else the elementwise loss; the rest are new arrays
    // of the input's layout.
    if let Some(o) = out
        && (o.shape() != shape || !o.dtype().is_equiv_to(&result) || (value && !grad && !elementwise))
    {
        return Ok(None);
    }
    let grad_out = grad.then(|| out.map_or_else(|| empty_like(x, &result), |o| Ok(o.clone()))).transpose()?;
    let loss_out = elementwise
        .then(|| match out {
            Some(o) if !grad => Ok(o.clone()),
            _ => empty_like(x, &result),
        })
        .transpose()?;
    let n = x.len();
    let mut req =
        LossRequest::new(if probabilities { Loss::Probabilities } else { Loss::Logits }, input_view, target_view);
    req.weight = weight_view;
    req.pos_weight = pos_weight_view;
    req.sum = total;
    req.grad_scale = if mean && n > 0 { grad_output / n as f64 } else { grad_output };
    // A recycled block's pages are mapped already: written as into `out`.
    req.fresh_outputs = (out.is_none() || (grad && elementwise)) && !uses_output_cache(x, &result);
    req.scratch_outputs = out.is_none();
    let (Ok(loss_view), Ok(grad_view)) = (
        loss_out.as_ref().map(|a| view_mut(a, "out")).transpose(),
        grad_out.as_ref().map(|a| view_mut(a, "out")).transpose(),
    ) else {
        return Ok(None);
    };
    req.loss_out = loss_view;
    req.grad_out = grad_view;
    let sum = match if n >= DETACH_MIN_LEN { py.detach(|| kernels::loss(&mut req)) } else { kernels::loss(&mut req) } {
        Ok(sum) => sum,
        // An output overlapping an input: the package computes apart.
        Err(KernelError::Overlap(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let loss: Option<Bound<'py, PyAny>> = if total {
        let reduced = match (mean, n) {
            (false, _) => sum,
            (true, 0) => f64::NAN,
            (true, n) => sum / n as f64,
        };
        Some(float_scalar(reduced, &result)?)
    } else {
        loss_out.map(Bound::into_any)
    };
    Ok(Some(PyTuple::new(py, [loss, grad_out.map(Bound::into_any)])?))
}

/// A new uninitialized array of `like`'s shape and memory layout (as
/// `np.empty_like`), of dtype `descr`. A large one takes its memory from
/// the output cache.
fn empty_like<'py>(
    like: &Bound<'py, PyUntypedArray>,
    descr: &Bound<'py, PyArrayDescr>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = like.py();
    let _installed = if uses_output_cache(like, descr) { Some(HandlerInstalled::new(py)?) } else { None };
    // SAFETY: `like` is a live array and `descr` a live dtype; the call
    // steals a reference to `descr`, which `clone().into_ptr()` hands over,
    // and returns a new array or NULL with an exception set.
    unsafe {
        let ptr = numpy::PY_ARRAY_API.PyArray_NewLikeArray(
            py,
            like.as_array_ptr(),
            numpy::npyffi::NPY_ORDER::NPY_KEEPORDER,
            descr.clone().into_ptr().cast(),
            0,
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// Whether a new array like `like` of dtype `descr` comes from the output cache.
fn uses_output_cache(like: &Bound<'_, PyUntypedArray>, descr: &Bound<'_, PyArrayDescr>) -> bool {
    like.len().saturating_mul(descr.itemsize()) >= output_cache::MIN_BYTES && output_cache::max_bytes() > 0
}

/// NumPy's `PyDataMem_SetHandler` (NEP 49; NumPy >= 1.22).
type SetHandler = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> *mut pyo3::ffi::PyObject;

/// The output cache installed as this thread's NumPy memory handler, until dropped.
struct HandlerInstalled {
    previous: *mut pyo3::ffi::PyObject,
    set: SetHandler,
}

impl HandlerInstalled {
    fn new(py: Python<'_>) -> PyResult<Self> {
        static HANDLER: PyOnceLock<(Py<PyAny>, SetHandler)> = PyOnceLock::new();
        let (capsule, set) = HANDLER.get_or_try_init(py, || -> PyResult<_> {
            let module = if numpy::npyffi::is_numpy_2(py) { "numpy._core.multiarray" } else { "numpy.core.multiarray" };
            let api = py.import(module)?.getattr("_ARRAY_API")?;
            // SAFETY: `_ARRAY_API` is NumPy's C API table, an unnamed capsule
            // around an array of function pointers whose slot 304 is
            // PyDataMem_SetHandler in every NumPy this package supports
            // (>= 1.24). The handler capsule is named "mem_handler" and
            // points to a static PyDataMem_Handler of version 1, as NumPy
            // requires; it lives as long as the process.
            unsafe {
                let table =
                    pyo3::ffi::PyCapsule_GetPointer(api.as_ptr(), std::ptr::null()) as *const *const std::ffi::c_void;
                if table.is_null() {
                    return Err(PyErr::fetch(py));
                }
                let set = std::mem::transmute::<*const std::ffi::c_void, SetHandler>(*table.add(304));
                let handler = &output_cache::HANDLER as *const output_cache::Handler as *mut std::ffi::c_void;
                let capsule = pyo3::ffi::PyCapsule_New(handler, c"mem_handler".as_ptr(), None);
                Ok((Bound::from_owned_ptr_or_err(py, capsule)?.unbind(), set))
            }
        })?;
        // SAFETY: PyDataMem_SetHandler takes a borrowed handler capsule and
        // returns a new reference to the previous one (NULL on error, with
        // an exception set); the GIL is held.
        let previous = unsafe { set(capsule.as_ptr()) };
        if previous.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(Self { previous, set: *set })
    }
}

impl Drop for HandlerInstalled {
    fn drop(&mut self) {
        // SAFETY: `previous` is the owned reference `new` received, still
        // held (the GIL too: `Self` lives within one call that holds it);
        // it is restored, the result and `previous` are released once.
        unsafe {
            let replaced = (self.set)(self.previous);
            pyo3::ffi::Py_XDECREF(replaced);
            pyo3::ffi::Py_DECREF(self.previous);
        }
    }
}

/// `Some(None)` for None, `Some(array)` for a NumPy array, `None` otherwise
/// (masked arrays included: the package refuses them).
fn optional_array<'a, 'py>(arg: &'a Bound<'py, PyAny>) -> Option<Option<&'a Bound<'py, PyUntypedArray>>> {
    if arg.is_none() {
        return Some(None);
    }
    let arr = arg.cast::<PyUntypedArray>().ok()?;
    (is_plain_array(arg) || !is_masked(arg)).then_some(Some(arr))
}

/// NumPy's array type, kept at import: comparing a type with it costs one
/// load on the path of every small call.
static ARRAY_TYPE: AtomicPtr<pyo3::ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());

/// Whether `arg` is exactly a NumPy array (not a subclass).
fn is_plain_array(arg: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `arg` is a live object, whose type pointer is read.
    unsafe { pyo3::ffi::Py_TYPE(arg.as_ptr()) == ARRAY_TYPE.load(Relaxed) }
}

/// Whether `arg` is a NumPy masked array.
fn is_masked(arg: &Bound<'_, PyAny>) -> bool {
    static MASKED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let py = arg.py();
    let masked = MASKED.get_or_try_init(py, || -> PyResult<_> {
        Ok(py.import("numpy.ma")?.getattr("MaskedArray")?.cast_into::<PyType>()?.unbind())
    });
    // If numpy.ma cannot be imported, no array can be masked.
    masked.is_ok_and(|t| arg.is_instance(t.bind(py)).unwrap_or(true))
}

/// `value` as a NumPy scalar of `descr` (float16, float32 or float64).
fn float_scalar<'py>(value: f64, descr: &Bound<'py, PyArrayDescr>) -> PyResult<Bound<'py, PyAny>> {
    let py = descr.py();
    let bytes = match descr.itemsize() {
        2 => u64::from(half::f16::from_f64(value).to_bits()),
        4 => u64::from((value as f32).to_bits()),
        _ => value.to_bits(),
    };
    // The value's bytes lead in memory on little-endian targets; move them
    // there on big-endian ones.
    let bytes = if cfg!(target_endian = "big") { bytes << (64 - 8 * descr.itemsize()) } else { bytes };
    // SAFETY: `descr` is a native float dtype of at most 8 bytes, and `bytes`
    // holds a value of it in its first `itemsize` bytes; PyArray_Scalar
    // copies them (it borrows `descr`, and needs no base for float types)
    // and returns a new reference or NULL with an exception set.
    unsafe {
        let ptr = numpy::PY_ARRAY_API.PyArray_Scalar(
            py,
            &bytes as *const u64 as *mut std::ffi::c_void,
            descr.as_dtype_ptr(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, ptr)
    }
}

/// Writes the logistic sigmoid of `input` into `out` (`fresh`: just allocated).
#[pyfunction]
#[pyo3(signature = (input, out, fresh=false))]
fn sigmoid(
    py: Python<'_>,
    input: &Bound<'_, PyUntypedArray>,
    out: &Bound<'_, PyUntypedArray>,
    fresh: bool,
) -> PyResult<()> {
    let (x, o) = (view(input, "x")?, view_mut(out, "out")?);
    if input.len() >= DETACH_MIN_LEN {
        py.detach(|| kernels::sigmoid(&x, &o, fresh))
    } else {
        kernels::sigmoid(&x, &o, fresh)
    }?;
    Ok(())
}

/// The number of threads large calls use.
#[pyfunction]
fn get_num_threads() -> usize {
    kernels::num_threads()
}

/// Sets the number of threads large calls use (1 to `max_num_threads()`).
#[pyfunction]
fn set_num_threads(n: &Bound<'_, PyInt>) -> PyResult<()> {
    match n.extract::<usize>() {
        Ok(n) => Ok(kernels::set_num_threads(n)?),
        // Negative, or past any machine's bound: refused as written.
        Err(_) => Err(KernelError::ThreadCount {
            requested: n.str()?.to_string(),
            max: kernels::max_num_threads(),
            cpus: kernels::cpu_count(),
        }
        .into()),
    }
}

/// The largest thread count `set_num_threads` accepts.
#[pyfunction]
fn max_num_threads() -> usize {
    kernels::max_num_threads()
}

/// How many thread pools this process has built (one per thread setting
/// that ran a parallel call).
#[pyfunction]
fn pools_built() -> usize {
    kernels::pools_built()
}

/// The instruction-set level the kernels run at ("sse2", "avx2", "avx512", "neon").
#[pyfunction]
fn get_simd_level() -> &'static str {
    kernels::simd_level().name()
}

/// Every level this CPU can run, lowest first.
#[pyfunction]
fn available_simd_levels() -> Vec<&'static str> {
    kernels::Level::available().into_iter().map(|l| l.name()).collect()
}

/// Runs the kernels at `level` (one of `available_simd_levels()`).
#[pyfunction]
fn set_simd_level(level: &str) -> PyResult<()> {
    let parsed = kernels::Level::from_name(level).ok_or_else(|| {
        PyValueError::new_err(format!("unknown SIMD level {level:?}; this CPU supports {:?}", available_simd_levels()))
    })?;
    Ok(kernels::set_simd_level(parsed)?)
}

/// The output cache's bound in bytes, and the blocks and bytes it holds.
#[pyfunction]
fn get_output_cache() -> (usize, usize, usize) {
    let (blocks, bytes) = output_cache::held();
    (output_cache::max_bytes(), blocks, bytes)
}

/// Bounds the bytes the output cache holds (0 turns it off and empties it).
#[pyfunction]
fn set_output_cache(max_bytes: usize) {
    output_cache::set_max_bytes(max_bytes);
}

#[pymodule(gil_used = false)]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    ARRAY_TYPE.store(<PyUntypedArray as pyo3::PyTypeInfo>::type_object_raw(m.py()), Relaxed);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CHUNK", kernels::CHUNK)?;
    m.add("PARALLEL_MIN_LEN_F32", kernels::PARALLEL_MIN_LEN_F32)?;
    m.add("PARALLEL_MIN_LEN_F64", kernels::PARALLEL_MIN_LEN_F64)?;
    m.add("OUTPUT_CACHE_MIN_BYTES", output_cache::MIN_BYTES)?;
    m.add("OUTPUT_CACHE_MAX_BLOCKS", output_cache::MAX_BLOCKS)?;
    m.add("OverlapError", m.py().get_type::<OverlapError>())?;
    m.add_function(wrap_pyfunction!(bce, m)?)?;
    m.add_function(wrap_pyfunction!(quick, m)?)?;
    m.add_function(wrap_pyfunction!(sigmoid, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(max_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(pools_built, m)?)?;
    m.add_function(wrap_pyfunction!(get_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(available_simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(set_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(get_output_cache, m)?)?;
    m.add_function(wrap_pyfunction!(set_output_cache, m)?)?;
    Ok(())
}
