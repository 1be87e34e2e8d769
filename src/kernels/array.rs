//! Borrowed strided arrays of any supported element type, and the block
//! gather/scatter that converts them to and from the compute type.
//!
//! An array is a base pointer, a dtype, a shape and strides in bytes, as in
//! NumPy: negative strides, zero strides (broadcasting) and unaligned data
//! are all read in place. Elements are only ever accessed through raw
//! pointer reads and writes (`read_unaligned`/`write_unaligned`), never
//! through Rust references, so an output may be the very memory of an input
//! (`out=input`): each element is read before it is written, by one thread.

use super::elem::{DType, Elem, OutElem, with_elem};
use super::math::Real;
use super::{KernelError, Small};
use std::marker::PhantomData;

/// A read-only strided array borrowed for `'a`.
#[derive(Clone, Debug)]
pub struct ArrayRef<'a> {
    pub(crate) ptr: *const u8,
    pub(crate) dtype: DType,
    pub(crate) shape: Small<usize>,
    pub(crate) strides: Small<isize>,
    _borrow: PhantomData<&'a [u8]>,
}

/// A writable strided array borrowed for `'a`. Its elements must not overlap
/// each other (checked by the kernels before anything is written).
#[derive(Debug)]
pub struct ArrayMut<'a> {
    pub(crate) ptr: *mut u8,
    pub(crate) dtype: DType,
    pub(crate) shape: Small<usize>,
    pub(crate) strides: Small<isize>,
    _borrow: PhantomData<&'a mut [u8]>,
}

// SAFETY: an ArrayRef only reads the memory it borrows, and the borrow (or the
// contract of `from_raw`) keeps that memory alive and unmodified by Rust code
// for 'a, so sharing it with or sending it to other threads is sound.
unsafe impl Send for ArrayRef<'_> {}
unsafe impl Sync for ArrayRef<'_> {}
// SAFETY: an ArrayMut is an exclusive borrow. The kernels share it between
// threads only to write disjoint elements: the parallel driver hands each
// element index to exactly one task, and `check_outputs` has verified that
// distinct indices are distinct bytes.
unsafe impl Send for ArrayMut<'_> {}
unsafe impl Sync for ArrayMut<'_> {}

/// Lowest and highest byte offset (relative to the base pointer) of any
/// element, or `None` for an empty array.
fn byte_extent(shape: &[usize], strides: &[isize], itemsize: usize) -> Option<(isize, isize)> {
    if shape.contains(&0) {
        return None;
    }
    let (mut lo, mut hi) = (0isize, 0isize);
    for (&n, &s) in shape.iter().zip(strides) {
        let reach = (n as isize - 1) * s;
        if reach < 0 { lo += reach } else { hi += reach }
    }
    Some((lo, hi + itemsize as isize))
}

/// Byte strides for an array laid out as `strides` (in elements) of `T`,
/// after checking that every element lies inside a slice of `len` elements
/// starting at element `offset`.
fn checked_byte_strides<T>(
    len: usize,
    offset: usize,
    shape: &[usize],
    strides: &[isize],
) -> Result<Small<isize>, KernelError> {
    if shape.len() != strides.len() {
        return Err(KernelError::BadLayout("shape and strides differ in length".into()));
    }
    if let Some((lo, hi)) = byte_extent(shape, strides, 1)
        && (offset as isize + lo < 0 || offset as isize + hi > len as isize)
    {
        return Err(KernelError::BadLayout(format!(
            "shape {shape:?} with strides {strides:?} from offset {offset} leaves a slice of {len}"
        )));
    }
    let size = std::mem::size_of::<T>() as isize;
    Ok(strides.iter().map(|s| s * size).collect())
}

/// C-order strides, in elements, of `shape`.
pub fn c_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut step = 1isize;
    for (s, &n) in strides.iter_mut().zip(shape).rev() {
        *s = step;
        step *= n.max(1) as isize;
    }
    strides
}

impl<'a> ArrayRef<'a> {
    /// A view of `data` with `shape` and `strides` (in elements), its first
    /// element at `data[offset]`; fails if any element falls outside `data`.
    pub fn strided<T: Elem>(
        data: &'a [T],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self, KernelError> {
        let byte_strides = checked_byte_strides::<T>(data.len(), offset, shape, strides)?;
        // `wrapping_add`: an empty view may sit at the end of the slice.
        let ptr = data.as_ptr().wrapping_add(offset) as *const u8;
        // SAFETY: the bounds were checked above and `data` is borrowed for 'a.
        Ok(unsafe { Self::from_raw(ptr, T::DTYPE, shape, &byte_strides) })
    }

    /// A C-contiguous view of `data` with `shape`.
    pub fn new<T: Elem>(data: &'a [T], shape: &[usize]) -> Result<Self, KernelError> {
        Self::strided(data, 0, shape, &c_strides(shape))
    }

    /// A view of raw memory, as NumPy describes it.
    ///
    /// # Safety
    /// For every index within `shape`, `ptr + sum(index * strides)` must
    /// point to `dtype.itemsize()` readable bytes holding a value of
    /// `dtype`, and this memory must stay valid and must not be written by
    /// anyone but the kernels' own outputs for `'a` (an output may be this
    /// very array, with the same pointer, dtype and strides).
    pub unsafe fn from_raw(ptr: *const u8, dtype: DType, shape: &[usize], strides: &[isize]) -> Self {
        ArrayRef {
            ptr,
            dtype,
            shape: Small::from_slice(shape),
            strides: Small::from_slice(strides),
            _borrow: PhantomData,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// This array broadcast to `shape` by NumPy's rules, as a view (zero
    /// strides on the broadcast axes); `None` if it does not broadcast to
    /// `shape` without changing it.
    pub fn broadcast_to(self, shape: &[usize]) -> Option<Self> {
        if self.shape.as_slice() == shape {
            return Some(self);
        }
        let lead = shape.len().checked_sub(self.shape.len())?;
        let mut strides: Small<isize> = smallvec::smallvec![0; shape.len()];
        for (d, (&n, &s)) in self.shape.iter().zip(&self.strides).enumerate() {
            match n {
                _ if n == shape[lead + d] => strides[lead + d] = s,
                1 => {}
                _ => return None,
            }
        }
        Some(ArrayRef {
            ptr: self.ptr,
            dtype: self.dtype,
            shape: Small::from_slice(shape),
            strides,
            _borrow: PhantomData,
        })
    }

    /// This array, which has the shape of `shape`'s kept axes (where
    /// `reduced` is false) or broadcasts to it, spread over `shape` with
    /// zero strides on the reduced axes (a `grad_output` per kept index).
    pub fn spread_over(self, shape: &[usize], reduced: &[bool]) -> Option<Self> {
        let kept: Small<usize> = shape.iter().zip(reduced).filter(|(_, r)| !**r).map(|(n, _)| *n).collect();
        let kept_view = self.broadcast_to(&kept)?;
        let mut strides = kept_view.strides.iter();
        let strides: Small<isize> =
            reduced.iter().map(|r| if *r { 0 } else { *strides.next().unwrap_or(&0) }).collect();
        Some(ArrayRef { shape: Small::from_slice(shape), strides, ..kept_view })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    fn extent(&self) -> Option<(isize, isize)> {
        byte_extent(&self.shape, &self.strides, self.dtype.itemsize())
    }
}

impl<'a> ArrayMut<'a> {
    /// A writable view of `data`; see [`ArrayRef::strided`].
    pub fn strided<T: OutElem>(
        data: &'a mut [T],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self, KernelError> {
        let byte_strides = checked_byte_strides::<T>(data.len(), offset, shape, strides)?;
        let ptr = data.as_mut_ptr().wrapping_add(offset) as *mut u8;
        // SAFETY: the bounds were checked above and `data` is borrowed
        // exclusively for 'a.
        Ok(unsafe { Self::from_raw(ptr, T::DTYPE, shape, &byte_strides) })
    }

    /// A C-contiguous writable view of `data` with `shape`.
    pub fn new<T: OutElem>(data: &'a mut [T], shape: &[usize]) -> Result<Self, KernelError> {
        Self::strided(data, 0, shape, &c_strides(shape))
    }

    /// A writable view of raw memory, as NumPy describes it.
    ///
    /// # Safety
    /// As for [`ArrayRef::from_raw`], and the bytes must be writable and
    /// neither read nor written by anyone else for `'a`, except through the
    /// same call's input arrays that are this very array.
    pub unsafe fn from_raw(ptr: *mut u8, dtype: DType, shape: &[usize], strides: &[isize]) -> Self {
        ArrayMut {
            ptr,
            dtype,
            shape: Small::from_slice(shape),
            strides: Small::from_slice(strides),
            _borrow: PhantomData,
        }
    }

    fn extent(&self) -> Option<(isize, isize)> {
        byte_extent(&self.shape, &self.strides, self.dtype.itemsize())
    }

    pub(crate) fn is_same_array(&self, other: &ArrayRef<'_>) -> bool {
        std::ptr::eq(self.ptr as *const u8, other.ptr)
            && self.dtype == other.dtype
            && self.shape == other.shape
            && self.strides == other.strides
    }

    /// Whether two distinct indices can reach the same byte. Sorting the
    /// axes by stride, each stride must step over everything the smaller
    /// axes span; this is sufficient (as NumPy's own quick check).
    fn overlaps_itself(&self) -> bool {
        if self.shape.contains(&0) {
            return false;
        }
        let mut axes: Small<(usize, usize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(n, _)| **n > 1)
            .map(|(&n, &s)| (s.unsigned_abs(), n))
            .collect();
        axes.sort_unstable();
        let mut span = self.dtype.itemsize();
        for (stride, n) in axes {
            if stride < span {
                return true;
            }
            span += stride * (n - 1);
        }
        false
    }
}

fn ranges_meet(a: Option<(isize, isize)>, pa: *const u8, b: Option<(isize, isize)>, pb: *const u8) -> bool {
    match (a, b) {
        (Some((alo, ahi)), Some((blo, bhi))) => {
            let (a0, a1) = (pa as isize + alo, pa as isize + ahi);
            let (b0, b1) = (pb as isize + blo, pb as isize + bhi);
            a0 < b1 && b0 < a1
        }
        _ => false,
    }
}

/// Checks what the drivers rely on to write outputs safely: outputs are
/// floats, no output overlaps itself or another output, and an output meets
/// an input's memory only by being exactly that array. Operands are given
/// by slot, absent ones as None.
pub(crate) fn check_outputs(
    inputs: &[Option<&ArrayRef<'_>>],
    outputs: &[Option<&ArrayMut<'_>>],
) -> Result<(), KernelError> {
    for (i, out) in outputs.iter().enumerate().filter_map(|(i, o)| o.map(|o| (i, o))) {
        if !out.dtype.is_float() {
            return Err(KernelError::OutputDType(out.dtype));
        }
        if out.overlaps_itself() {
            return Err(KernelError::OutputOverlapsItself);
        }
        for other in outputs[..i].iter().flatten() {
            if ranges_meet(out.extent(), out.ptr, other.extent(), other.ptr) {
                return Err(KernelError::OutputsOverlap);
            }
        }
        for inp in inputs.iter().flatten() {
            if ranges_meet(out.extent(), out.ptr, inp.extent(), inp.ptr) && !out.is_same_array(inp) {
                return Err(KernelError::Overlap(
                    "an output shares memory with an input without being that same array".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Reads `dst.len()` elements, `stride` bytes apart from `src`, as `C`.
///
/// # Safety
/// Each address `src + i * stride` for `i < dst.len()` must hold a value of
/// type `T` that is valid to read.
#[inline(always)]
unsafe fn gather_as<T: Elem, C: Real>(src: *const u8, stride: isize, dst: &mut [C]) {
    let p = src as *const T;
    let size = std::mem::size_of::<T>() as isize;
    // SAFETY (all three branches): the addresses read are exactly those of
    // the function's contract; `read_unaligned` has no alignment needs.
    unsafe {
        if stride == size {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = C::load(p.add(i).read_unaligned());
            }
        } else if stride == 0 {
            dst.fill(C::load(p.read_unaligned()));
        } else {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = C::load((src.offset(i as isize * stride) as *const T).read_unaligned());
            }
        }
    }
}

/// Writes `src` as `T`, `stride` bytes apart from `dst`.
///
/// # Safety
/// Each address `dst + i * stride` for `i < src.len()` must be writable
/// memory of a `T` that no other thread accesses during the call.
#[inline(always)]
unsafe fn scatter_as<T: OutElem, C: Real>(src: &[C], dst: *mut u8, stride: isize) {
    let p = dst as *mut T;
    let size = std::mem::size_of::<T>() as isize;
    // SAFETY: the addresses written are exactly those of the contract.
    unsafe {
        if stride == size {
            for (i, v) in src.iter().enumerate() {
                p.add(i).write_unaligned(v.store::<T>());
            }
        } else {
            for (i, v) in src.iter().enumerate() {
                (dst.offset(i as isize * stride) as *mut T).write_unaligned(v.store::<T>());
            }
        }
    }
}

impl ArrayRef<'_> {
    /// Reads `dst.len()` elements from byte offset `offset`, `stride` apart.
    ///
    /// # Safety
    /// The elements read must be elements of this array (the iteration plan
    /// derives `offset` and `stride` from the array's own shape and strides).
    #[inline(always)]
    pub(crate) unsafe fn gather<C: Real>(&self, offset: isize, stride: isize, dst: &mut [C]) {
        // SAFETY: forwarded from this function's contract and `from_raw`'s.
        unsafe {
            let src = self.ptr.offset(offset);
            with_elem!(self.dtype, T => gather_as::<T, C>(src, stride, dst))
        }
    }
}

impl ArrayRef<'_> {
    /// Asks the CPU to bring the `bytes` bytes from byte offset `offset` on
    /// into its L2 cache. They may lie outside the array: nothing is read,
    /// and a prefetch never faults.
    #[inline(always)]
    pub(crate) fn prefetch(&self, offset: isize, bytes: usize) {
        #[cfg(target_arch = "x86_64")]
        for line in (0..bytes).step_by(64) {
            use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
            // SAFETY: a prefetch is a hint that reads nothing and cannot
            // fault, whatever the address; SSE is in every x86-64 CPU.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(self.ptr.wrapping_offset(offset + line as isize) as *const i8) };
        }
        let _ = (offset, bytes);
    }

    /// A pointer to the elements from byte offset `offset` on that can be
    /// read in place as `C`: the array holds `C` values, `stride` steps one
    /// element, and the address is aligned for `C`. `None` otherwise.
    ///
    /// # Safety
    /// `offset` must address an element of this array.
    #[inline(always)]
    pub(crate) unsafe fn contiguous<C: Real>(&self, offset: isize, stride: isize) -> Option<*const C> {
        // SAFETY: `offset` addresses an element, so the pointer is in bounds.
        let p = unsafe { self.ptr.offset(offset) };
        let fits = self.dtype == C::DTYPE
            && stride == std::mem::size_of::<C>() as isize
            && (p as usize).is_multiple_of(std::mem::align_of::<C>());
        fits.then_some(p as *const C)
    }
}

impl ArrayMut<'_> {
    /// Writes `src` at byte offset `offset`, `stride` apart.
    ///
    /// # Safety
    /// The elements written must be elements of this array that no other
    /// thread touches during the call (the driver gives each element index
    /// to one task; `check_outputs` rules out self-overlap).
    #[inline(always)]
    pub(crate) unsafe fn scatter<C: Real>(&self, offset: isize, stride: isize, src: &[C]) {
        // SAFETY: forwarded from this function's contract; the dtype is a
        // float type (checked by `check_outputs` before any write).
        unsafe {
            let dst = self.ptr.offset(offset);
            match self.dtype {
                DType::F16 => scatter_as::<half::f16, C>(src, dst, stride),
                DType::F32 => scatter_as::<f32, C>(src, dst, stride),
                DType::F64 => scatter_as::<f64, C>(src, dst, stride),
                _ => unreachable!("check_outputs admits float outputs only"),
            }
        }
    }
}

impl ArrayMut<'_> {
    /// Writes `src` contiguously at byte offset `offset` with stores that
    /// bypass the caches (for outputs too large to stay in them: no read
    /// of each line before it is overwritten). Returns false, writing
    /// nothing, where it does not apply (another element type, or not
    /// x86-64); the caller then scatters. Call [`fence`] before the writes
    /// must be seen by other threads.
    ///
    /// # Safety
    /// As for [`ArrayMut::scatter`] with `stride` one element.
    #[inline(always)]
    pub(crate) unsafe fn stream<C: Real>(&self, offset: isize, src: &[C]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self.dtype == C::DTYPE {
            use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
            let bytes = std::mem::size_of_val(src);
            let from = src.as_ptr() as *const u8;
            // SAFETY: the `bytes` bytes from `dst` are the elements of the
            // contract; `src` is the caller's buffer, apart from the array.
            // The 16-byte stores are aligned (after the head), as
            // `_mm_stream_si128` needs; SSE2 is in every x86-64 CPU.
            unsafe {
                let dst = self.ptr.offset(offset);
                let head = (dst.align_offset(16)).min(bytes);
                std::ptr::copy_nonoverlapping(from, dst, head);
                let mut i = head;
                while i + 16 <= bytes {
                    _mm_stream_si128(dst.add(i) as *mut __m128i, _mm_loadu_si128(from.add(i) as *const __m128i));
                    i += 16;
                }
                std::ptr::copy_nonoverlapping(from.add(i), dst.add(i), bytes - i);
            }
            return true;
        }
        let _ = (offset, src);
        false
    }
}

/// Orders the cache-bypassing stores of [`ArrayMut::stream`] before what
/// follows (so that other threads see them once they see what follows).
#[inline(always)]
pub(crate) fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `sfence` has no preconditions; SSE is in every x86-64 CPU.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_are_bounds_checked() {
        let data = [0.0f32; 10];
        assert!(ArrayRef::strided(&data, 9, &[10], &[-1]).is_ok());
        assert!(ArrayRef::strided(&data, 8, &[10], &[-1]).is_err());
        assert!(ArrayRef::strided(&data, 0, &[5, 2], &[2, 1]).is_ok());
        assert!(ArrayRef::strided(&data, 1, &[5, 2], &[2, 1]).is_err());
        assert!(ArrayRef::strided(&data, 10, &[0, 3], &[3, 1]).is_ok());
        assert!(ArrayRef::strided(&data, 0, &[4, 3], &[0, 1]).is_ok());
    }

    #[test]
    fn broadcasting_follows_numpy_and_never_enlarges() {
        let data = [1.0f32, 2.0, 3.0];
        let row = ArrayRef::new(&data, &[3]).unwrap();
        let b = row.clone().broadcast_to(&[2, 3]).unwrap();
        assert_eq!((b.shape.as_slice(), b.strides.as_slice()), (&[2, 3][..], &[0, 4][..]));
        let col = ArrayRef::new(&data, &[3, 1]).unwrap();
        let b = col.clone().broadcast_to(&[3, 5]).unwrap();
        assert_eq!(b.strides.as_slice(), &[4, 0]);
        assert!(row.clone().broadcast_to(&[3, 2]).is_none());
        assert!(col.broadcast_to(&[3]).is_none());
        let scalar = ArrayRef::new(&data[..1], &[]).unwrap();
        assert_eq!(scalar.broadcast_to(&[4, 2]).unwrap().strides.as_slice(), &[0, 0]);
    }

    #[test]
    fn self_overlap_is_detected() {
        let mut data = [0.0f64; 12];
        let ok = ArrayMut::strided(&mut data, 0, &[3, 4], &[1, 3]).unwrap();
        assert!(!ok.overlaps_itself());
        let bad = ArrayMut::strided(&mut data, 0, &[3, 4], &[2, 1]).unwrap();
        assert!(bad.overlaps_itself());
        let broadcast = ArrayMut::strided(&mut data, 0, &[3, 4], &[0, 1]).unwrap();
        assert!(broadcast.overlaps_itself());
        let empty = ArrayMut::strided(&mut data, 0, &[0, 4], &[0, 0]).unwrap();
        assert!(!empty.overlaps_itself());
    }

    #[test]
    fn gather_converts_every_layout() {
        let data: Vec<u8> = (0..8).collect();
        let v = ArrayRef::strided(&data, 7, &[4], &[-2]).unwrap();
        let mut out = [0.0f64; 4];
        // SAFETY: offset 0 and the view's own stride address its 4 elements.
        unsafe { v.gather(0, v.strides[0], &mut out) };
        assert_eq!(out, [7.0, 5.0, 3.0, 1.0]);
        let b = [Bool8(0), Bool8(2)];
        let v = ArrayRef::new(&b, &[2]).unwrap();
        let mut out = [9.0f32; 2];
        // SAFETY: as above.
        unsafe { v.gather(0, 1, &mut out) };
        assert_eq!(out, [0.0, 1.0]);
    }

    use super::super::elem::Bool8;
}
