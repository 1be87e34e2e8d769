//! The thread setting, and the pool of helper threads that parallel calls
//! share.
//!
//! The pool is built once per setting, at the first call that needs
//! helpers, and dropped (its threads end) when the setting changes. A call
//! asks only as many helpers as it has parts; the others stay asleep.
//!
//! A helper that finished its part of a call keeps watching for the next
//! call for a short while ([`LINGER`]) before it returns to rayon's sleep.
//! Waking a sleeping thread costs tens of microseconds, and the system may
//! first queue it on the caller's core, where it waits until the caller is
//! done, so that a call of a few hundred microseconds may get no help.
//! Back-to-back calls (a loss per batch, a scoring loop) find their helpers
//! awake instead, as OpenMP runtimes do with their spin-wait.
//!
//! Fork: no lock is held while a pool is built or dropped. The one lock,
//! around the shared pointer, is held for a pointer copy; a forked child
//! (which has none of its parent's threads) releases it, leaks its
//! parent's pool, and builds its own when a call needs one. A fork waits
//! for pools being built or dropped (see [`Changing`]): a child forked
//! while a helper thread was starting or ending got a corrupt heap from
//! glibc's stack cache at its first thread start (about 1 fork in 200, in
//! tests/test_threads.py).

use super::KernelError;
use std::any::Any;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use Ordering::{Acquire, Relaxed, Release, SeqCst};

/// How long an idle helper watches for the next call before it sleeps.
const LINGER: Duration = Duration::from_micros(300);

/// Thread counts above this many per CPU are refused: they only add
/// switching between threads (5,000 threads made a 4e7-element call take
/// 64 s).
pub const MAX_THREADS_PER_CPU: usize = 8;

/// The thread setting (0: the default).
static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);
/// Pools built so far (see [`pools_built`]).
static POOLS_BUILT: AtomicUsize = AtomicUsize::new(0);

/// `read()` once, kept in `cell` (0: not read yet). Not a `OnceLock`: a
/// child forked while another thread initialized one would wait for ever.
fn read_once(cell: &AtomicUsize, read: impl FnOnce() -> usize) -> usize {
    match cell.load(Relaxed) {
        0 => {
            let value = read().max(1);
            cell.store(value, Relaxed);
            value
        }
        value => value,
    }
}

/// The threads the machine offers this process (read once: asking the
/// system costs microseconds).
pub fn default_num_threads() -> usize {
    static DEFAULT: AtomicUsize = AtomicUsize::new(0);
    read_once(&DEFAULT, || std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The machine's CPUs, as Python's `os.cpu_count()` counts them (at least
/// the threads this process is offered).
pub fn cpu_count() -> usize {
    static CPUS: AtomicUsize = AtomicUsize::new(0);
    read_once(&CPUS, || {
        #[cfg(unix)]
        // SAFETY: sysconf only reads a system setting.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(0) as usize;
        #[cfg(not(unix))]
        let online = 0;
        online.max(default_num_threads())
    })
}

/// The largest thread count [`set_num_threads`] accepts.
pub fn max_num_threads() -> usize {
    MAX_THREADS_PER_CPU * cpu_count()
}

/// The number of threads large calls use.
pub fn num_threads() -> usize {
    match NUM_THREADS.load(Relaxed) {
        0 => default_num_threads(),
        n => n,
    }
}

/// Sets the number of threads large calls use (1 to [`max_num_threads`]).
/// The helpers of another setting end now; calls already running finish
/// with the pool they started with.
pub fn set_num_threads(n: usize) -> Result<(), KernelError> {
    let max = max_num_threads();
    if n == 0 || n > max {
        return Err(KernelError::ThreadCount { requested: n.to_string(), max, cpus: cpu_count() });
    }
    NUM_THREADS.store(n, SeqCst);
    let stale = SHARED.with(|slot| if slot.as_ref().is_some_and(|p| p.threads != n) { slot.take() } else { None });
    drop(stale);
    Ok(())
}

/// How many pools this process has built: one per thread setting that
/// ran a parallel call (a diagnostic; calls of any size share a pool).
pub fn pools_built() -> usize {
    POOLS_BUILT.load(Relaxed)
}

/// One parallel call. It lives on the caller's stack; helpers reach it
/// through [`Board::job`] only between raising and lowering [`Board::inside`].
struct Job<'a> {
    work: &'a (dyn Fn(usize) -> usize + Sync),
    parts: usize,
    /// Parts handed to helpers so far (the caller runs part 0).
    joined: AtomicUsize,
    /// The payload of a panic in a helper, resumed on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// What the helpers watch: the current job and the counts that make
/// handing it over safe.
struct Board {
    /// The current job (a `*const Job`), or null.
    job: AtomicPtr<()>,
    /// Bumped for each job, so that a helper joins each job once.
    epoch: AtomicUsize,
    /// Helpers that may be reading the current job.
    inside: AtomicUsize,
    /// Helper tasks running or lingering.
    alive: AtomicUsize,
    /// The pool is being dropped: helpers stop lingering.
    closed: AtomicBool,
}

/// The helper threads of one thread setting.
struct Pool {
    /// The setting it was built for: `threads - 1` helper threads.
    threads: usize,
    /// Always `Some` but in `drop`.
    helpers: Option<rayon::ThreadPool>,
    /// The helper threads, joined when the pool is dropped.
    joins: Vec<std::thread::JoinHandle<()>>,
    /// Shared with the helper tasks, which must not own the pool (a pool
    /// dropped by its own thread would be waited on by that thread).
    board: Arc<Board>,
    /// One job at a time: a caller that finds the pool busy runs alone.
    busy: AtomicBool,
}

impl Pool {
    /// A pool of `threads - 1` helpers, returned once every one has started.
    fn build(threads: usize) -> Option<Pool> {
        watch_forks();
        let _changing = Changing::begin();
        let started = Arc::new(AtomicUsize::new(0));
        let mut joins = Vec::with_capacity(threads - 1);
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(threads - 1)
            .thread_name(|i| format!("fastbce-{i}"))
            .spawn_handler(|thread| {
                let started = Arc::clone(&started);
                let name = thread.name().map(str::to_owned);
                let spawned = std::thread::Builder::new().name(name.unwrap_or_default()).spawn(move || {
                    started.fetch_add(1, Release);
                    thread.run()
                })?;
                joins.push(spawned);
                Ok(())
            })
            .build();
        let Ok(helpers) = built else {
            // rayon ends the threads it started; they are joined here.
            joins.into_iter().for_each(|t| drop(t.join()));
            return None;
        };
        while started.load(Acquire) < threads - 1 {
            std::thread::yield_now();
        }
        POOLS_BUILT.fetch_add(1, Relaxed);
        let board = Board {
            job: AtomicPtr::new(std::ptr::null_mut()),
            epoch: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        };
        Some(Pool { threads, helpers: Some(helpers), joins, board: Arc::new(board), busy: AtomicBool::new(false) })
    }
}

impl Drop for Pool {
    /// Returns once every helper thread has ended. (Never run on a helper:
    /// their tasks hold the board, not the pool.)
    fn drop(&mut self) {
        let _changing = Changing::begin();
        // rayon ends its threads once their tasks are done: lingering
        // helpers return at once.
        self.board.closed.store(true, Relaxed);
        drop(self.helpers.take());
        self.joins.drain(..).for_each(|t| drop(t.join()));
    }
}

/// A pool being built or dropped, during which no fork happens: the
/// pthread_atfork handlers (see `watch_forks`) wait for every `Changing`
/// to end, and hold new ones until the fork is done.
struct Changing;

/// Pools being built or dropped, and [`FORKING`].
static CHANGES: AtomicUsize = AtomicUsize::new(0);
/// Set in [`CHANGES`] while a fork is under way.
const FORKING: usize = 1 << (usize::BITS - 1);

impl Changing {
    fn begin() -> Changing {
        loop {
            let now = CHANGES.load(Acquire);
            if now & FORKING == 0 && CHANGES.compare_exchange_weak(now, now + 1, Acquire, Relaxed).is_ok() {
                return Changing;
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for Changing {
    fn drop(&mut self) {
        CHANGES.fetch_sub(1, Release);
    }
}

/// The pool of the current setting, behind a spin lock held only to copy,
/// take or replace the pointer (never to build or drop a pool).
struct Shared {
    locked: AtomicBool,
    pool: UnsafeCell<Option<Arc<Pool>>>,
}

// SAFETY: `pool` is only reached through `with`, by the one thread that
// holds `locked`, or by `reset_in_child`, in a process of one thread.
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared { locked: AtomicBool::new(false), pool: UnsafeCell::new(None) };

impl Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Option<Arc<Pool>>) -> R) -> R {
        while self.locked.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::hint::spin_loop();
        }
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Release);
            }
        }
        let _unlock = Unlock(&self.locked);
        // SAFETY: this thread holds `locked` until `_unlock` drops, after
        // the last use of the reference.
        f(unsafe { &mut *self.pool.get() })
    }

    /// The pool for `threads`, built if there is none (None if it cannot
    /// be: the call then runs on its caller alone).
    fn get(&self, threads: usize) -> Option<Arc<Pool>> {
        let matching = |slot: &Option<Arc<Pool>>| slot.as_ref().filter(|p| p.threads == threads).cloned();
        if let Some(pool) = self.with(|slot| matching(slot)) {
            return Some(pool);
        }
        let built = Arc::new(Pool::build(threads)?);
        let (pool, replaced) = self.with(|slot| match matching(slot) {
            // Another caller built one meanwhile.
            Some(theirs) => (theirs, None),
            // Kept only while it matches the setting.
            None if threads == num_threads() => (Arc::clone(&built), slot.replace(Arc::clone(&built))),
            None => (Arc::clone(&built), None),
        });
        drop((replaced, built));
        Some(pool)
    }
}

/// Registers the fork handlers (once per process): a fork waits for pools
/// being built or dropped, and a forked child forgets its parent's pool.
fn watch_forks() {
    static WATCHING: AtomicBool = AtomicBool::new(false);
    #[cfg(unix)]
    if !WATCHING.swap(true, SeqCst) {
        unsafe extern "C" fn before() {
            while CHANGES.compare_exchange_weak(0, FORKING, Acquire, Relaxed).is_err() {
                std::thread::yield_now();
            }
        }
        unsafe extern "C" fn in_parent() {
            CHANGES.store(0, Release);
        }
        unsafe extern "C" fn in_child() {
            // SAFETY: in a forked child only the forking thread runs (it
            // runs this handler), so nothing else reaches the slot. The
            // parent's pool, whose threads the child lacks, is leaked
            // without reading it (a parent thread may have been replacing
            // it), and the lock, which such a thread may have held, is
            // released.
            unsafe { SHARED.pool.get().write(None) };
            SHARED.locked.store(false, Release);
            CHANGES.store(0, Release);
        }
        // SAFETY: registers handlers that take no arguments and touch only
        // this module's statics; Python never unloads this library.
        unsafe { libc::pthread_atfork(Some(before), Some(in_parent), Some(in_child)) };
    }
}

/// Runs `work(0)` on the calling thread and `work(1)` .. `work(parts - 1)`
/// on helpers, each at most once, and returns when every started part is
/// done. `work` returns how much it did (0: it came too late). A part may
/// not run at all (no pool, fewer helpers than parts, a helper that does
/// not come in time, a pool busy with another caller's job): `work` must
/// finish the whole job from any part, as `run_chunks` does by taking over
/// the other parts.
pub(crate) fn run_parts(parts: usize, work: &(dyn Fn(usize) -> usize + Sync)) {
    let threads = num_threads();
    let wanted = parts.min(threads).saturating_sub(1);
    let pool = if wanted == 0 { None } else { SHARED.get(threads) };
    let Some(pool) = pool.filter(|p| p.busy.compare_exchange(false, true, Acquire, Relaxed).is_ok()) else {
        work(0);
        return;
    };
    /// Marks the pool free for the next caller however this call ends.
    struct Free<'p>(&'p Pool);
    impl Drop for Free<'_> {
        fn drop(&mut self) {
            self.0.busy.store(false, Release);
        }
    }
    let _free = Free(&pool);
    let board = &pool.board;
    let job = Job { work, parts, joined: AtomicUsize::new(0), panic: Mutex::new(None) };
    let seen = board.epoch.load(SeqCst);
    board.job.store(&job as *const Job<'_> as *mut (), SeqCst);
    board.epoch.fetch_add(1, SeqCst);
    // Takes the job off the board however this function is left (a panic
    // included): after it, no helper reads `job`, which is then free to go.
    let posted = PostedJob(board);
    for _ in board.alive.load(SeqCst)..wanted.min(pool.threads - 1) {
        board.alive.fetch_add(1, SeqCst);
        let board = Arc::clone(board);
        if let Some(helpers) = &pool.helpers {
            helpers.spawn(move || help(&board, seen));
        }
    }
    work(0);
    drop(posted);
    if let Some(payload) = job.panic.lock().unwrap_or_else(PoisonError::into_inner).take() {
        std::panic::resume_unwind(payload);
    }
}

/// The job posted on a board; dropping it takes the job off and waits for
/// the helpers still reading it.
struct PostedJob<'b>(&'b Board);

impl Drop for PostedJob<'_> {
    fn drop(&mut self) {
        let board = self.0;
        board.job.store(std::ptr::null_mut(), SeqCst);
        // A helper raises `inside` before it reads `job` (both SeqCst): one
        // that read the job before the null above is counted here until it
        // is done, and one that reads it later sees null.
        while board.inside.load(SeqCst) != 0 {
            // A helper on this very core needs it to finish.
            std::thread::yield_now();
        }
    }
}

/// A helper task: joins each new job, and lingers between jobs.
fn help(board: &Board, mut seen: usize) {
    let mut idle_since = Instant::now();
    let mut linger = LINGER;
    let mut misses = 0;
    loop {
        let epoch = board.epoch.load(SeqCst);
        if epoch != seen {
            seen = epoch;
            board.inside.fetch_add(1, SeqCst);
            let job = board.job.load(SeqCst) as *const Job<'_>;
            // SAFETY: a non-null `job` points to the `Job` on the stack of a
            // `run_parts` call that cannot return (or unwind past it) until
            // `inside` is back to what it was before the increment above
            // (see `PostedJob`), which happens only after the last use below.
            // `did`: how much this helper did, None if it was not needed.
            let mut did = None;
            if let Some(job) = unsafe { job.as_ref() } {
                let me = job.joined.fetch_add(1, SeqCst) + 1;
                if me < job.parts {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.work)(me))) {
                        Ok(n) => did = Some(n),
                        Err(payload) => {
                            job.panic.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(payload);
                        }
                    }
                }
            }
            board.inside.fetch_sub(1, SeqCst);
            idle_since = Instant::now();
            // Too late to help twice in a row, though awake: likely queued
            // behind the caller on its core. Sleep, so that the next call
            // wakes this thread where a core is idle, rather than linger.
            // (A call with fewer parts than helpers is no miss.)
            misses = match did {
                Some(0) => misses + 1,
                Some(_) => 0,
                None => misses,
            };
            linger = if misses >= 2 { Duration::ZERO } else { LINGER };
        } else if idle_since.elapsed() < linger && !board.closed.load(Relaxed) {
            // Yield rather than spin: if the system put this thread on the
            // caller's core, the caller must keep it.
            std::thread::yield_now();
        } else {
            board.alive.fetch_sub(1, SeqCst);
            // A caller that counted this helper as alive (before the
            // decrement) has bumped the epoch before counting: see it.
            if board.epoch.load(SeqCst) == seen {
                return;
            }
            board.alive.fetch_add(1, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (up to 10 s) until `flag` is set; whether it was.
    fn wait_for(flag: &AtomicBool) -> bool {
        let start = Instant::now();
        while !flag.load(SeqCst) {
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// Runs `f` with `n` threads set, then restores the setting.
    fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
        let before = num_threads();
        set_num_threads(n).unwrap();
        let r = f();
        set_num_threads(before).unwrap();
        r
    }

    #[test]
    fn every_part_runs_at_most_once_and_helpers_take_part() {
        let _lock = crate::kernels::test_lock();
        with_threads(4, || {
            let runs: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
            let helped = AtomicBool::new(false);
            run_parts(4, &|me| {
                runs[me].fetch_add(1, SeqCst);
                if me == 0 {
                    // The caller waits for a helper, to see that one comes.
                    wait_for(&helped);
                } else {
                    helped.store(true, SeqCst);
                }
                1
            });
            assert!(helped.load(SeqCst));
            assert_eq!(runs[0].load(SeqCst), 1);
            assert!(runs.iter().all(|r| r.load(SeqCst) <= 1));
        });
    }

    #[test]
    fn one_pool_per_setting_whatever_the_parts() {
        let _lock = crate::kernels::test_lock();
        with_threads(3, || {
            run_parts(3, &|_| 1);
            let built = pools_built();
            for parts in [2, 3, 2, 3, 2, 9] {
                run_parts(parts, &|_| 1);
            }
            assert_eq!(pools_built(), built);
            set_num_threads(3).unwrap();
            run_parts(3, &|_| 1);
            assert_eq!(pools_built(), built, "setting the same count keeps the pool");
            set_num_threads(4).unwrap();
            assert!(SHARED.with(|slot| slot.is_none()), "a new setting drops the pool at once");
            run_parts(2, &|_| 1);
            assert_eq!(pools_built(), built + 1);
        });
    }

    #[test]
    fn thread_counts_are_bounded() {
        let _lock = crate::kernels::test_lock();
        let max = max_num_threads();
        assert_eq!(max, MAX_THREADS_PER_CPU * cpu_count());
        assert!(cpu_count() >= default_num_threads());
        for bad in [0, max + 1, usize::MAX] {
            let err = set_num_threads(bad).unwrap_err();
            assert_eq!(err, KernelError::ThreadCount { requested: bad.to_string(), max, cpus: cpu_count() });
        }
        with_threads(max, || assert_eq!(num_threads(), max));
    }

    #[test]
    fn a_panic_in_a_helper_reaches_the_caller() {
        let _lock = crate::kernels::test_lock();
        with_threads(2, || {
            let started = AtomicBool::new(false);
            let caught = std::panic::catch_unwind(|| {
                run_parts(2, &|me| {
                    if me == 1 {
                        started.store(true, SeqCst);
                        panic!("helper failed");
                    }
                    wait_for(&started);
                    1
                })
            });
            let payload = caught.expect_err("the helper's panic is resumed on the caller");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"helper failed"));
            // The pool still works afterwards.
            let sum = AtomicUsize::new(0);
            run_parts(2, &|me| sum.fetch_add(me + 1, SeqCst));
            assert!(sum.load(SeqCst) >= 1);
        });
    }

    #[test]
    fn a_panicking_caller_waits_for_its_helpers() {
        let _lock = crate::kernels::test_lock();
        with_threads(2, || {
            let (started, finished) = (AtomicBool::new(false), AtomicBool::new(false));
            let caught = std::panic::catch_unwind(|| {
                run_parts(2, &|me| {
                    if me == 1 {
                        started.store(true, SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        finished.store(true, SeqCst);
                        return 1;
                    }
                    assert!(wait_for(&started));
                    panic!("caller failed");
                })
            });
            assert!(caught.is_err());
            // The job (on the unwound stack) was withdrawn only once the
            // helper was done with it.
            assert!(finished.load(SeqCst));
        });
    }

    #[test]
    fn concurrent_callers_each_finish_their_job() {
        let _lock = crate::kernels::test_lock();
        with_threads(2, || {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        for _ in 0..200 {
                            let ran = AtomicUsize::new(0);
                            run_parts(2, &|_| ran.fetch_add(1, SeqCst) + 1);
                            assert!((1..=2).contains(&ran.load(SeqCst)));
                        }
                    });
                }
            });
        });
    }
}
