//! NumPy arrays as the kernels see them: views without copies, new outputs
//! (large ones from the output cache), and scalars of a result dtype.

use super::messages;
use crate::kernels::{ArrayMut, ArrayRef, DType};
use crate::output_cache;
use numpy::npyffi::{_PyArray_GET_ITEM_DATA, flags::NPY_ARRAY_WRITEABLE};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

/// The kernels' element type of `descr`, or the TypeError naming `name`.
pub(super) fn dtype_of(descr: &Bound<'_, PyArrayDescr>, name: &str) -> PyResult<DType> {
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
        _ => return Err(messages::unsupported_dtype(name, descr)),
    })
}

/// Describes a NumPy array of native byte order to the kernels, without
/// copying it.
pub(super) fn view<'b>(arr: &'b Bound<'_, PyUntypedArray>, name: &str) -> PyResult<ArrayRef<'b>> {
    Ok(view_as(arr, dtype_of(&arr.dtype(), name)?))
}

/// [`view`], for an array whose element type is known to be `dtype`.
pub(super) fn view_as<'b>(arr: &'b Bound<'_, PyUntypedArray>, dtype: DType) -> ArrayRef<'b> {
    // SAFETY: NumPy guarantees that `data`, `shape` and `strides` describe
    // valid elements of `dtype` (`dtype_of` of the array's dtype; the
    // callers hand over native byte order only), and holding `arr` for 'b keeps the array,
    // and so its buffer, alive. The kernels only read through raw
    // pointers; an output that is this very array is admitted by the
    // kernels' overlap check, any other overlap is refused. Other Python
    // threads writing the array during the call race with us exactly as
    // they would with a NumPy ufunc, which also releases the GIL.
    unsafe {
        let data = (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data as *const u8;
        ArrayRef::from_raw(data, dtype, arr.shape(), arr.strides())
    }
}

/// Whether NumPy lets `arr` be written.
pub(super) fn is_writeable(arr: &Bound<'_, PyUntypedArray>) -> bool {
    // SAFETY: reading the flags of a live array object.
    unsafe { (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).flags & NPY_ARRAY_WRITEABLE != 0 }
}

/// Describes a writeable float array (checked by the caller) to the kernels.
pub(super) fn view_mut<'b>(arr: &'b Bound<'_, PyUntypedArray>) -> PyResult<ArrayMut<'b>> {
    let dtype = dtype_of(&arr.dtype(), "out")?;
    debug_assert!(is_writeable(arr));
    // SAFETY: as in `view`, and NumPy says the buffer is writable. The
    // kernels check that no two indices of it share bytes before writing.
    Ok(unsafe {
        let data = (*_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data as *mut u8;
        ArrayMut::from_raw(data, dtype, arr.shape(), arr.strides())
    })
}

/// A new uninitialized array of `like`'s shape and memory layout (as
/// `np.empty_like`), of dtype `descr`. A large one takes its memory from
/// the output cache.
pub(super) fn empty_like<'py>(
    like: &Bound<'py, PyUntypedArray>,
    descr: &Bound<'py, PyArrayDescr>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = like.py();
    let _installed = if uses_output_cache(like.len(), descr) { Some(HandlerInstalled::new(py)?) } else { None };
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

/// A new C-ordered array of `shape` and dtype `descr` holding `values`
/// (rounded to nearest, as NumPy's `astype`), from the output cache if large.
pub(super) fn array_of<'py>(
    values: &[f64],
    shape: &[usize],
    descr: &Bound<'py, PyArrayDescr>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = descr.py();
    let sums = {
        let _installed = if uses_output_cache(values.len(), descr) { Some(HandlerInstalled::new(py)?) } else { None };
        numpy::PyArray1::from_slice(py, values)
    };
    let shaped = sums.reshape(shape)?;
    if descr.itemsize() == 8 {
        return Ok(shaped.into_any().cast_into()?);
    }
    Ok(shaped.call_method1("astype", (descr,))?.cast_into()?)
}

/// Whether a new array of `len` elements of dtype `descr` comes from the output cache.
pub(super) fn uses_output_cache(len: usize, descr: &Bound<'_, PyArrayDescr>) -> bool {
    len.saturating_mul(descr.itemsize()) >= output_cache::MIN_BYTES && output_cache::max_bytes() > 0
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

/// NumPy's array type, kept at import: comparing a type with it costs one
/// load on the path of every small call.
pub(super) static ARRAY_TYPE: AtomicPtr<pyo3::ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());

/// Whether `arg` is exactly a NumPy array (not a subclass).
pub(super) fn is_plain_array(arg: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `arg` is a live object, whose type pointer is read.
    unsafe { pyo3::ffi::Py_TYPE(arg.as_ptr()) == ARRAY_TYPE.load(Relaxed) }
}

/// Whether `arg` is a NumPy masked array.
pub(super) fn is_masked(arg: &Bound<'_, PyAny>) -> bool {
    if is_plain_array(arg) {
        return false;
    }
    static MASKED: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let py = arg.py();
    let masked = MASKED.get_or_try_init(py, || -> PyResult<_> {
        Ok(py.import("numpy.ma")?.getattr("MaskedArray")?.cast_into::<PyType>()?.unbind())
    });
    // If numpy.ma cannot be imported, no array can be masked.
    masked.is_ok_and(|t| arg.is_instance(t.bind(py)).unwrap_or(true))
}

/// `value` as a NumPy scalar of `descr` (float16, float32 or float64).
pub(super) fn float_scalar<'py>(value: f64, descr: &Bound<'py, PyArrayDescr>) -> PyResult<Bound<'py, PyAny>> {
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
