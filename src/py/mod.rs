//! The PyO3 layer, and the only code that touches Python: `call` is the
//! one definition of what a call means (arguments, outputs, reductions),
//! `arrays` describes NumPy arrays to the kernels without copying them,
//! `messages` words every argument error, and this file registers the
//! module and its settings (threads, SIMD level, output cache).

mod arrays;
mod call;
mod messages;

use crate::kernels::{self, KernelError};
use crate::output_cache;
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyInt;

pyo3::create_exception!(
    _core,
    OverlapError,
    PyValueError,
    "An output array shares memory with an input array without being that same array."
);

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

/// The nonzero values per column of a C-contiguous (rows, cols) uint8
/// array (bool arrays are passed as their uint8 view): the positives of
/// 0/1 labels per class.
#[pyfunction]
fn nonzero_per_column(labels: numpy::PyReadonlyArray2<'_, u8>) -> PyResult<Vec<u64>> {
    use numpy::PyUntypedArrayMethods;
    let cols = labels.shape()[1];
    let data = labels.as_slice().map_err(|_| PyValueError::new_err("labels must be C-contiguous"))?;
    let py = labels.py();
    Ok(if data.len() >= 1 << 16 {
        py.detach(|| kernels::nonzero_per_column(data, cols))
    } else {
        kernels::nonzero_per_column(data, cols)
    }?)
}

#[pymodule(gil_used = false)]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let array_type = <numpy::PyUntypedArray as pyo3::PyTypeInfo>::type_object_raw(m.py());
    arrays::ARRAY_TYPE.store(array_type, std::sync::atomic::Ordering::Relaxed);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CHUNK", kernels::CHUNK)?;
    m.add("PARALLEL_MIN_LEN_F32", kernels::PARALLEL_MIN_LEN_F32)?;
    m.add("PARALLEL_MIN_LEN_F64", kernels::PARALLEL_MIN_LEN_F64)?;
    m.add("OUTPUT_CACHE_MIN_BYTES", output_cache::MIN_BYTES)?;
    m.add("OUTPUT_CACHE_MAX_BLOCKS", output_cache::MAX_BLOCKS)?;
    m.add("OverlapError", m.py().get_type::<OverlapError>())?;
    m.add_class::<call::Decline>()?;
    m.add_class::<call::Declined>()?;
    m.add_class::<call::Request>()?;
    m.add_class::<call::RunningSums>()?;
    m.add_function(wrap_pyfunction!(call::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(call::sigmoid, m)?)?;
    m.add_function(wrap_pyfunction!(nonzero_per_column, m)?)?;
    m.add_function(wrap_pyfunction!(call::check_reduction, m)?)?;
    m.add_function(wrap_pyfunction!(messages::conversion_error, m)?)?;
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
