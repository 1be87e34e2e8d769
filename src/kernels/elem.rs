//! Element types read and written in place, and their conversion to the
//! compute type.

use half::f16;

/// The element types of arrays the kernels read without conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F16,
    F32,
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 | DType::F16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// Whether the kernels can write results of this type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    /// NumPy's name for the type, for messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

/// NumPy's bool: one byte, where any non-zero value is true. Reading it as a
/// byte (not as Rust's `bool`) keeps odd bytes from being undefined behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct Bool8(pub u8);

/// A type whose values the kernels read, converted to `f32` or `f64`.
pub trait Elem: Copy + Send + Sync + 'static {
    const DTYPE: DType;
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
}

/// A type the kernels write results in.
pub trait OutElem: Elem {
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
}

macro_rules! elem_as {
    ($($t:ty => $d:ident),*) => {$(
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            #[inline(always)]
            fn to_f32(self) -> f32 { self as f32 }
            #[inline(always)]
            fn to_f64(self) -> f64 { self as f64 }
        }
    )*};
}
elem_as!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16,
         u32 => U32, u64 => U64, f32 => F32, f64 => F64);

impl Elem for Bool8 {
    const DTYPE: DType = DType::Bool;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        (self.0 != 0) as u8 as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        (self.0 != 0) as u8 as f64
    }
}

impl Elem for f16 {
    const DTYPE: DType = DType::F16;
    /// Exact, and branch-free so that conversion loops vectorize: the
    /// exponent and mantissa bits move to their float32 places and a
    /// multiplication by 2^112 rebiases the exponent (subnormals included,
    /// as float32 denormals that the product normalizes); infinities and
    /// NaNs keep their payload.
    #[inline(always)]
    fn to_f32(self) -> f32 {
        let h = self.to_bits() as u32;
        let sign = (h & 0x8000) << 16;
        let magnitude = h & 0x7fff;
        let finite = f32::from_bits(magnitude << 13) * f32::from_bits((127 + 112) << 23);
        let special = f32::from_bits(0x7f80_0000 | (magnitude & 0x03ff) << 13);
        let value = if magnitude >= 0x7c00 { special } else { finite };
        f32::from_bits(value.to_bits() | sign)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self.to_f32() as f64
    }
}

impl OutElem for f16 {
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        f16::from_f64(v)
    }
}

impl OutElem for f32 {
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl OutElem for f64 {
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Calls `$body` with `$T` bound to the Rust type of `$dtype`.
macro_rules! with_elem {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::kernels::elem::DType::Bool => {
                type $T = $crate::kernels::elem::Bool8;
                $body
            }
            $crate::kernels::elem::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::kernels::elem::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::kernels::elem::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::kernels::elem::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::kernels::elem::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::kernels::elem::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::kernels::elem::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::kernels::elem::DType::U64 => {
                type $T = u64;
                $body
            }
            $crate::kernels::elem::DType::F16 => {
                type $T = half::f16;
                $body
            }
            $crate::kernels::elem::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::kernels::elem::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_elem;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float16_conversion_is_exact_for_every_value() {
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            let (got, want) = (Elem::to_f32(h), f16::to_f32(h));
            assert!(got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()), "{bits:#06x}");
        }
    }
}
