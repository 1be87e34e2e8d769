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
            | KernelError::OutputsOverlap
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

/// The flat sums and the counts of `bin_sums`.
type BinArrays<'py> = (Bound<'py, numpy::PyArray1<f64>>, Bound<'py, numpy::PyArray1<u64>>);

/// Reliability-bin sums (see `kernels::bin_sums`): `(sums, counts)`, the
/// sums flat (weight, weight * p, weight * y, weight * (p - y)^2 per
/// cell), the cells
/// `groups * (len(edges) - 1)`. Every array is C-contiguous: `p`, `y` and
/// `weight` float64, `group` int64 in [0, groups).
#[pyfunction]
#[pyo3(signature = (p, y, weight, group, groups, edges))]
fn bin_sums<'py>(
    p: numpy::PyReadonlyArray1<'py, f64>,
    y: numpy::PyReadonlyArray1<'py, f64>,
    weight: Option<numpy::PyReadonlyArray1<'py, f64>>,
    group: Option<numpy::PyReadonlyArray1<'py, i64>>,
    groups: usize,
    edges: numpy::PyReadonlyArray1<'py, f64>,
) -> PyResult<BinArrays<'py>> {
    let py = p.py();
    let contiguous = |what: &str| PyValueError::new_err(format!("{what} must be C-contiguous"));
    let (p, y, edges) = (
        p.as_slice().map_err(|_| contiguous("p"))?,
        y.as_slice().map_err(|_| contiguous("y"))?,
        edges.as_slice().map_err(|_| contiguous("edges"))?,
    );
    let weight = weight.as_ref().map(|w| w.as_slice().map_err(|_| contiguous("weight"))).transpose()?;
    let group = group.as_ref().map(|g| g.as_slice().map_err(|_| contiguous("group"))).transpose()?;
    let lengths = [Some(y.len()), weight.map(<[f64]>::len), group.map(<[i64]>::len)];
    if lengths.iter().flatten().any(|&n| n != p.len()) {
        return Err(PyValueError::new_err(format!("p, y, weight and group must have one length, got {lengths:?}")));
    }
    if edges.len() < 2 {
        return Err(PyValueError::new_err("edges must hold at least 2 values"));
    }
    if let Some(g) = group
        && g.iter().any(|&v| v < 0 || v as usize >= groups)
    {
        return Err(PyValueError::new_err(format!("group values must lie in [0, {groups})")));
    }
    let result = py.detach(|| kernels::bin_sums(p, y, weight, group, groups, edges))?;
    let flat: Vec<f64> = result.sums.iter().flatten().copied().collect();
    Ok((numpy::PyArray1::from_vec(py, flat), numpy::PyArray1::from_vec(py, result.counts)))
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
    m.add_function(wrap_pyfunction!(bin_sums, m)?)?;
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
