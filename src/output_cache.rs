//! Recycled memory for large new output arrays.
//!
//! A new array of tens of megabytes comes from fresh pages, which the
//! system zeroes on first touch: at 1e7 float32 elements that costs more
//! than computing the loss. The cache keeps the blocks of freed outputs (at
//! most [`MAX_BLOCKS`], at most `max_bytes` together) and hands one back to
//! the next output of the same size, whose pages are then already mapped.
//! Held blocks are marked `MADV_FREE` on Linux, so the system may still
//! take their pages back under memory pressure.
//!
//! The cache is a NumPy memory handler (NEP 49): the PyO3 layer installs
//! [`HANDLER`] only while it creates an output of at least [`MIN_BYTES`],
//! so the array owns its memory like any other and NumPy returns it here
//! when the array dies.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Outputs smaller than this come from NumPy's allocator as usual (the C
/// allocator already reuses such blocks).
pub const MIN_BYTES: usize = 8 << 20;
/// At most this many freed blocks are held.
pub const MAX_BLOCKS: usize = 4;
/// The default bound on the bytes held.
pub const DEFAULT_MAX_BYTES: usize = 1 << 30;

/// Blocks start on a huge-page boundary, so that whole huge pages back them.
const ALIGN: usize = 2 << 20;
const PAGE: usize = 4096;

static MAX_HELD: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_BYTES);
static STATE: Mutex<State> = Mutex::new(State { held: Vec::new(), live: Vec::new() });

struct State {
    /// Freed blocks, oldest first: (address, length).
    held: Vec<(usize, usize)>,
    /// Blocks handed out and not yet freed: (address, length). Few (each
    /// is at least MIN_BYTES), so a list.
    live: Vec<(usize, usize)>,
}

fn state() -> MutexGuard<'static, State> {
    // Every update leaves the state whole, so a panic elsewhere while the
    // lock was held cannot have left it half-done.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The most bytes the cache holds (0: it holds nothing).
pub fn max_bytes() -> usize {
    MAX_HELD.load(Ordering::Relaxed)
}

/// Bounds the bytes held, releasing held blocks beyond the new bound.
pub fn set_max_bytes(bytes: usize) {
    MAX_HELD.store(bytes, Ordering::Relaxed);
    let mut st = state();
    trim(&mut st.held, bytes);
}

/// The number of blocks held and their total bytes.
pub fn held() -> (usize, usize) {
    let st = state();
    (st.held.len(), st.held.iter().map(|&(_, len)| len).sum())
}

fn layout(len: usize) -> Layout {
    // `len` is a multiple of PAGE below isize::MAX (see `block_len`), and
    // ALIGN is a power of two.
    Layout::from_size_align(len, ALIGN).expect("block layout")
}

/// The length of the block for `size` bytes, or None if it cannot exist.
fn block_len(size: usize) -> Option<usize> {
    let len = size.max(1).checked_next_multiple_of(PAGE)?;
    (len <= isize::MAX as usize - ALIGN).then_some(len)
}

/// A block of at least `size` bytes (zeroed if `zeroed`), or null.
fn allocate(size: usize, zeroed: bool) -> *mut u8 {
    let Some(len) = block_len(size) else { return std::ptr::null_mut() };
    let mut st = state();
    if !zeroed && let Some(i) = st.held.iter().position(|&(_, held)| held == len) {
        let (addr, _) = st.held.remove(i);
        st.live.push((addr, len));
        return addr as *mut u8;
    }
    drop(st);
    // SAFETY: the layout has a nonzero size.
    let ptr = unsafe { if zeroed { alloc_zeroed(layout(len)) } else { alloc(layout(len)) } };
    if !ptr.is_null() {
        advise(ptr, len, Advice::HugePages);
        state().live.push((ptr as usize, len));
    }
    ptr
}

/// Takes back a block from `allocate`: held if it fits, else released.
fn release(ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    let mut st = state();
    let Some(i) = st.live.iter().position(|&(addr, _)| addr == ptr as usize) else {
        // Not a block of this cache: NumPy frees only what it allocated
        // through the handler, so this cannot happen; leaking is the safe
        // answer if it ever did.
        return;
    };
    let (_, len) = st.live.swap_remove(i);
    let bound = max_bytes();
    if len > bound {
        drop(st);
        // SAFETY: `ptr` came from `alloc` with `layout(len)` (recorded in
        // `live`, now removed, so it is released once).
        unsafe { dealloc(ptr, layout(len)) };
        return;
    }
    advise(ptr, len, Advice::Free);
    st.held.push((ptr as usize, len));
    trim(&mut st.held, bound);
}

/// Releases the oldest held blocks until at most MAX_BLOCKS and `bound` bytes remain.
fn trim(held: &mut Vec<(usize, usize)>, bound: usize) {
    while held.len() > MAX_BLOCKS || held.iter().map(|&(_, len)| len).sum::<usize>() > bound {
        let (addr, len) = held.remove(0);
        // SAFETY: held blocks came from `alloc` with `layout(len)` and are
        // no longer handed out; removing it from `held` releases it once.
        unsafe { dealloc(addr as *mut u8, layout(len)) };
    }
}

enum Advice {
    HugePages,
    Free,
}

/// Tells Linux how the block's pages will be used (a hint; errors ignored).
fn advise(ptr: *mut u8, len: usize, advice: Advice) {
    #[cfg(target_os = "linux")]
    {
        let advice = match advice {
            Advice::HugePages => libc::MADV_HUGEPAGE,
            Advice::Free => libc::MADV_FREE,
        };
        // SAFETY: [ptr, ptr + len) is one block this cache owns, page
        // aligned (ALIGN) and a whole number of pages long; neither advice
        // changes what the block may be used for (MADV_FREE pages read as
        // zero or as their old contents until written, and every output is
        // written before it is read).
        unsafe { libc::madvise(ptr.cast(), len, advice) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len, advice);
}

// The NumPy memory handler (numpy/ndarraytypes.h, PyDataMem_Handler
// version 1). NumPy calls these with the GIL held (or, on free-threaded
// builds, from any thread: the state is behind a lock).

#[repr(C)]
pub struct Allocator {
    ctx: *mut c_void,
    malloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    calloc: unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
    realloc: unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> *mut c_void,
    free: unsafe extern "C" fn(*mut c_void, *mut c_void, usize),
}

#[repr(C)]
pub struct Handler {
    name: [u8; 127],
    version: u8,
    allocator: Allocator,
}

// SAFETY: the handler is immutable and its context pointer is null; the
// functions it points to are thread-safe.
unsafe impl Sync for Handler {}

const fn handler_name() -> [u8; 127] {
    let mut name = [0u8; 127];
    let src = b"fastbce_output_cache";
    let mut i = 0;
    while i < src.len() {
        name[i] = src[i];
        i += 1;
    }
    name
}

pub static HANDLER: Handler = Handler {
    name: handler_name(),
    version: 1,
    allocator: Allocator {
        ctx: std::ptr::null_mut(),
        malloc: handler_malloc,
        calloc: handler_calloc,
        realloc: handler_realloc,
        free: handler_free,
    },
};

unsafe extern "C" fn handler_malloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    allocate(size, false).cast()
}

unsafe extern "C" fn handler_calloc(_ctx: *mut c_void, n: usize, elsize: usize) -> *mut c_void {
    n.checked_mul(elsize).map_or(std::ptr::null_mut(), |size| allocate(size, true).cast())
}

/// NumPy reallocates when an array is resized in place.
unsafe extern "C" fn handler_realloc(_ctx: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    let new = allocate(size, false);
    if new.is_null() || ptr.is_null() {
        return new.cast();
    }
    let old_len = state().live.iter().find(|&&(addr, _)| addr == ptr as usize).map_or(0, |&(_, len)| len);
    // SAFETY: `ptr` is a live block of `old_len` bytes and `new` a distinct
    // one of at least `size`; both are valid for the bytes copied.
    unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new, old_len.min(size)) };
    release(ptr.cast());
    new.cast()
}

unsafe extern "C" fn handler_free(_ctx: *mut c_void, ptr: *mut c_void, _size: usize) {
    release(ptr.cast());
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, as the cache is process-wide state.
    #[test]
    fn blocks_are_reused_by_size_and_bounded() {
        let size = MIN_BYTES + 100;
        let a = allocate(size, false);
        assert!(!a.is_null() && (a as usize).is_multiple_of(ALIGN));
        // SAFETY: `a` holds at least `size` bytes.
        unsafe { a.add(size - 1).write(7) };
        release(a);
        assert_eq!(held(), (1, block_len(size).unwrap()));
        let b = allocate(size, false);
        assert_eq!(a, b, "the held block of the same length comes back");
        assert_eq!(held(), (0, 0));
        let c = allocate(size, true);
        // SAFETY: `c` holds at least `size` zeroed bytes.
        assert!(unsafe { std::slice::from_raw_parts(c, size) }.iter().all(|&v| v == 0));
        let more: Vec<_> = (0..MAX_BLOCKS + 1).map(|_| allocate(size, false)).collect();
        for p in [b, c].into_iter().chain(more) {
            release(p);
        }
        assert_eq!(held().0, MAX_BLOCKS);
        set_max_bytes(block_len(size).unwrap());
        assert_eq!(held().0, 1);
        set_max_bytes(0);
        assert_eq!(held(), (0, 0));
        let d = allocate(size, false);
        release(d);
        assert_eq!(held(), (0, 0), "nothing is held with a bound of 0");
        set_max_bytes(DEFAULT_MAX_BYTES);
    }
}
