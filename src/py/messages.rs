//! Every error a call's arguments can raise, worded once (docs/design.md,
//! "Errors"): the exception type, the argument's name, what it was and
//! what would be accepted. The Python package raises none of its own for
//! a call (a failed conversion to an array, which only Python attempts, is
//! worded here too: `conversion_error`).

use numpy::PyArrayDescr;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A shape as Python writes a tuple: `(4, 3)`, `(3,)`, `()`.
pub(super) fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

pub(super) fn bad_reduction(reduction: &Bound<'_, PyAny>) -> PyErr {
    PyValueError::new_err(format!("reduction must be 'mean', 'sum' or 'none', got {}", repr(reduction)))
}

pub(super) fn unsupported_dtype(name: &str, descr: &Bound<'_, PyArrayDescr>) -> PyErr {
    PyTypeError::new_err(format!(
        "{name} has dtype {descr}; expected float16, float32, float64, an integer type or bool"
    ))
}

pub(super) fn masked(name: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{name} is a masked array, and fastbce does not apply masks: pass np.ma.getdata({name}) to count \
         the masked elements, or only the unmasked ones (input[~mask], target[~mask]) to leave them out"
    ))
}

pub(super) fn target_shape(target: &[usize], input: &[usize]) -> PyErr {
    PyValueError::new_err(format!(
        "target must have the same shape as input, got target shape {} and input shape {}",
        shape_text(target),
        shape_text(input)
    ))
}

/// `name` of shape `shape` does not broadcast to `to` (the input's shape,
/// or for a `grad_output` with `axis`, the reduced shape) without changing it.
pub(super) fn broadcast(name: &str, shape: &[usize], to: &[usize], what: &str) -> PyErr {
    let text = match joint_shape(shape, to) {
        Some(joint) if joint.as_slice() != to => format!(
            "{name} of shape {} would broadcast the {what} {} to {}; it must broadcast to the {what} without \
             changing it",
            shape_text(shape),
            shape_text(to),
            shape_text(&joint)
        ),
        _ => format!("{name} of shape {} does not broadcast to the {what} {}", shape_text(shape), shape_text(to)),
    };
    PyValueError::new_err(text)
}

/// The shape two shapes broadcast to by NumPy's rules, if they do.
fn joint_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let ndim = a.len().max(b.len());
    let at = |s: &[usize], d: usize| if d + s.len() >= ndim { s[d + s.len() - ndim] } else { 1 };
    (0..ndim)
        .map(|d| match (at(a, d), at(b, d)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

pub(super) fn grad_output_not_scalar(reduction: &str, shape: &[usize]) -> PyErr {
    PyValueError::new_err(format!(
        "grad_output must be a scalar for reduction='{reduction}', got shape {}",
        shape_text(shape)
    ))
}

pub(super) fn axis_needs_reduction() -> PyErr {
    PyValueError::new_err("axis needs reduction='mean' or 'sum', got reduction='none'")
}

pub(super) fn bad_axis(axis: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("axis must be None, an int or a tuple of ints, got {}", repr(axis)))
}

pub(super) fn axis_out_of_bounds(axis: &Bound<'_, PyAny>, ndim: usize) -> PyErr {
    PyValueError::new_err(format!("axis {axis} is out of bounds for an input of {ndim} dimensions"))
}

pub(super) fn axis_repeated(axis: &Bound<'_, PyAny>) -> PyErr {
    PyValueError::new_err(format!("axis {} repeats an axis", repr(axis)))
}

pub(super) fn out_not_array(out: &Bound<'_, PyAny>) -> PyErr {
    let name = out.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string());
    PyTypeError::new_err(format!("out must be a numpy.ndarray, got {name}"))
}

pub(super) fn out_shape(shape: &[usize], what: &str, expected: &[usize]) -> PyErr {
    PyValueError::new_err(format!(
        "out has shape {}, but the {what} has shape {}",
        shape_text(shape),
        shape_text(expected)
    ))
}

pub(super) fn out_dtype(dtype: &Bound<'_, PyArrayDescr>, what: &str, expected: &Bound<'_, PyArrayDescr>) -> PyErr {
    PyValueError::new_err(format!("out has dtype {dtype}, but the {what} has dtype {expected}"))
}

pub(super) fn out_not_pair(out: &Bound<'_, PyAny>) -> PyErr {
    let kind = out.get_type().name().map(|n| n.to_string()).unwrap_or_default();
    PyTypeError::new_err(format!(
        "out must be a pair (grad, hess) of arrays (either may be None) when both derivatives are asked for, not {kind}"
    ))
}

pub(super) fn min_hess_nan() -> PyErr {
    PyValueError::new_err("min_hess must be a number or None, got nan")
}

pub(super) fn bad_loss(loss: &str) -> PyErr {
    PyValueError::new_err(format!("loss must be 'logits', 'probabilities' or 'focal', got {loss:?}"))
}

/// A float as Python writes it: `-1.0`, `0.1`, `nan`, `inf`.
fn float_text(value: f64) -> String {
    match value {
        v if v.is_nan() => "nan".into(),
        v if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.into(),
        v => format!("{v:?}"),
    }
}

pub(super) fn label_smoothing(value: f64) -> PyErr {
    PyValueError::new_err(format!("label_smoothing must be between 0 and 1, got {}", float_text(value)))
}

pub(super) fn focal_alpha(value: f64) -> PyErr {
    PyValueError::new_err(format!(
        "alpha must be between 0 and 1 (or negative to turn the class weighting off), got {}",
        float_text(value)
    ))
}

pub(super) fn focal_gamma(value: f64) -> PyErr {
    PyValueError::new_err(format!("gamma must be a finite number >= 0, got {}", float_text(value)))
}

pub(super) fn out_read_only() -> PyErr {
    PyValueError::new_err("out is read-only; pass a writeable array")
}

pub(super) fn out_needs_elementwise(reduction: &str) -> PyErr {
    PyValueError::new_err(format!(
        "out receives the elementwise loss, so it needs reduction='none', got reduction='{reduction}'"
    ))
}

pub(super) fn running_sums(held: Option<usize>, kept: Option<usize>) -> PyErr {
    let count = |n: Option<usize>| n.map_or_else(|| "no per-index sums".to_string(), |n| format!("{n} sums"));
    PyValueError::new_err(format!("the running sums hold {}, but the call keeps {}", count(held), count(kept)))
}

pub(super) fn running_sums_call() -> PyErr {
    PyValueError::new_err("running sums take the loss summed (reduction='sum'), without gradient or out")
}

/// An argument NumPy could not convert to an array: `error`'s type
/// (ValueError or TypeError), naming the argument.
#[pyfunction]
pub(super) fn conversion_error(name: &str, error: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let message = format!("{name} could not be converted to a NumPy array: {error}");
    Ok(error.get_type().call1((message,))?.unbind())
}

/// `repr(value)`, or a placeholder if its `__repr__` fails.
fn repr(value: &Bound<'_, PyAny>) -> String {
    value.repr().map_or_else(|_| "<unprintable>".to_string(), |r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_read_as_python_tuples() {
        assert_eq!(shape_text(&[]), "()");
        assert_eq!(shape_text(&[3]), "(3,)");
        assert_eq!(shape_text(&[4, 3]), "(4, 3)");
    }

    #[test]
    fn joint_shapes_follow_numpy() {
        assert_eq!(joint_shape(&[2, 4, 3], &[4, 3]), Some(vec![2, 4, 3]));
        assert_eq!(joint_shape(&[3], &[4, 3]), Some(vec![4, 3]));
        assert_eq!(joint_shape(&[1, 3], &[4, 1]), Some(vec![4, 3]));
        assert_eq!(joint_shape(&[2], &[4, 3]), None);
    }
}
