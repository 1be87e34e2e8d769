//! fastbce: numerically stable binary cross-entropy over strided arrays.
//!
//! [`kernels`] is pure Rust (no Python types) and holds everything that
//! computes; `py` is the thin PyO3 layer built with the `python` feature.

pub mod kernels;

#[cfg(feature = "python")]
mod py;
