//! fastbce: numerically stable binary cross-entropy over strided arrays.
//!
//! [`kernels`] is pure Rust (no Python types) and holds everything that
//! computes; [`output_cache`] recycles the memory of large new outputs;
//! `py` is the thin PyO3 layer built with the `python` feature.

pub mod kernels;
pub mod output_cache;

#[cfg(feature = "python")]
mod py;
