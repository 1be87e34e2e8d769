//! The helper threads of parallel calls. rayon's pool carries them; a
//! helper that finished its part of a call keeps watching for the next call
//! for a short while ([`LINGER`]) before it returns to rayon's sleep.
//!
//! Waking a sleeping thread costs tens of microseconds, and the system may
//! first queue it on the caller's core, where it waits until the caller is
//! done: measured here, a 2^18-element call often got no help at all.
//! Back-to-back calls (a loss per batch, a scoring loop) find their helpers
//! awake instead, as OpenMP runtimes do with their spin-wait.

use super::KernelError;
use std::any::Any;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

/// How long an idle helper watches for the next call before it sleeps.
const LINGER: Duration = Duration::from_micros(300);

/// One parallel call. It lives on the caller's stack; helpers reach it
/// through [`Crew::job`] only between raising and lowering [`Crew::inside`].
struct Job<'a> {
    work: &'a (dyn Fn(usize) -> usize + Sync),
    parts: usize,
    /// Parts handed to helpers so far (the caller runs part 0).
    joined: AtomicUsize,
    /// The payload of a panic in a helper, resumed on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// A pool of helper threads and the slot they watch.
struct Crew {
    pool: rayon::ThreadPool,
    helpers: usize,
    /// The process the threads run in: a child made by `fork` has none of
    /// them (only the forking thread), so it makes its own crew.
    pid: u32,
    /// The current job (a `*const Job`), or null.
    job: AtomicPtr<()>,
    /// Bumped for each job, so that a helper joins each job once.
    epoch: AtomicUsize,
    /// Helpers that may be reading the current job.
    inside: AtomicUsize,
    /// Helper tasks running or lingering.
    alive: AtomicUsize,
    /// One job at a time; concurrent callers run alone.
    turn: Mutex<()>,
}

static CREW: Mutex<Option<Arc<Crew>>> = Mutex::new(None);

/// The crew of `helpers` threads (made anew when the count changes, and
/// in a forked child).
fn crew(helpers: usize) -> Result<Arc<Crew>, KernelError> {
    let mut slot = CREW.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if let Some(crew) = slot.as_ref().filter(|c| c.helpers == helpers && c.pid == pid) {
        return Ok(Arc::clone(crew));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(helpers)
        .thread_name(|i| format!("fastbce-{i}"))
        .build()
        .map_err(|e| KernelError::ThreadPool(e.to_string()))?;
    let crew = Arc::new(Crew {
        pool,
        helpers,
        pid,
        job: AtomicPtr::new(std::ptr::null_mut()),
        epoch: AtomicUsize::new(0),
        inside: AtomicUsize::new(0),
        alive: AtomicUsize::new(0),
        turn: Mutex::new(()),
    });
    *slot = Some(Arc::clone(&crew));
    Ok(crew)
}

/// Runs `work(0)` on the calling thread and `work(1)` .. `work(parts - 1)`
/// on helpers, each at most once, and returns when every started part is
/// done. `work` returns how much it did (0: it came too late). A part may not run at all (a helper that does not come in time, a
/// crew busy with another caller's job): `work` must finish the whole job
/// from any part, as `run_chunks` does by taking over the other parts.
pub(crate) fn run_parts(parts: usize, work: &(dyn Fn(usize) -> usize + Sync)) -> Result<(), KernelError> {
    let helpers = parts.saturating_sub(1);
    if helpers == 0 {
        work(0);
        return Ok(());
    }
    let crew = crew(helpers)?;
    let _turn = match crew.turn.try_lock() {
        Ok(turn) => turn,
        Err(TryLockError::Poisoned(turn)) => turn.into_inner(),
        Err(TryLockError::WouldBlock) => {
            work(0);
            return Ok(());
        }
    };
    let job = Job { work, parts, joined: AtomicUsize::new(0), panic: Mutex::new(None) };
    let seen = crew.epoch.load(SeqCst);
    crew.job.store(&job as *const Job<'_> as *mut (), SeqCst);
    crew.epoch.fetch_add(1, SeqCst);
    // Withdraws the job however this function is left (a panic included):
    // after it, no helper reads `job`, which is then free to go.
    let _withdraw = Withdraw(&crew);
    for _ in crew.alive.load(SeqCst)..helpers {
        crew.alive.fetch_add(1, SeqCst);
        let helper = Arc::clone(&crew);
        crew.pool.spawn(move || lend_a_hand(&helper, seen));
    }
    work(0);
    drop(_withdraw);
    if let Some(payload) = job.panic.lock().unwrap_or_else(PoisonError::into_inner).take() {
        std::panic::resume_unwind(payload);
    }
    Ok(())
}

struct Withdraw<'c>(&'c Crew);

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let crew = self.0;
        crew.job.store(std::ptr::null_mut(), SeqCst);
        // A helper raises `inside` before it reads `job` (both SeqCst): one
        // that read the job before the null above is counted here until it
        // is done, and one that reads it later sees null.
        while crew.inside.load(SeqCst) != 0 {
            // A helper on this very core needs it to finish.
            std::thread::yield_now();
        }
    }
}

/// A helper task: joins each new job, and lingers between jobs.
fn lend_a_hand(crew: &Crew, mut seen: usize) {
    let mut idle_since = Instant::now();
    let mut linger = LINGER;
    let mut misses = 0;
    loop {
        let epoch = crew.epoch.load(SeqCst);
        if epoch != seen {
            seen = epoch;
            crew.inside.fetch_add(1, SeqCst);
            let job = crew.job.load(SeqCst) as *const Job<'_>;
            // SAFETY: a non-null `job` points to the `Job` on the stack of a
            // `run_parts` call that cannot return (or unwind past it) until
            // `inside` is back to what it was before the increment above
            // (see `Withdraw`), which happens only after the last use below.
            let mut did = 0;
            if let Some(job) = unsafe { job.as_ref() } {
                let me = job.joined.fetch_add(1, SeqCst) + 1;
                if me < job.parts {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.work)(me))) {
                        Ok(n) => did = n,
                        Err(payload) => {
                            job.panic.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(payload);
                        }
                    }
                }
            }
            crew.inside.fetch_sub(1, SeqCst);
            idle_since = Instant::now();
            // Too late to help twice in a row, though awake: likely queued
            // behind the caller on its core. Sleep, so that the next call
            // wakes this thread where a core is idle, rather than linger.
            misses = if did == 0 { misses + 1 } else { 0 };
            linger = if misses >= 2 { Duration::ZERO } else { LINGER };
        } else if idle_since.elapsed() < linger {
            // Yield rather than spin: if the system put this thread on the
            // caller's core, the caller must keep it.
            std::thread::yield_now();
        } else {
            crew.alive.fetch_sub(1, SeqCst);
            // A caller that counted this helper as alive (before the
            // decrement) has bumped the epoch before counting: see it.
            if crew.epoch.load(SeqCst) == seen {
                return;
            }
            crew.alive.fetch_add(1, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

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

    #[test]
    fn every_part_runs_at_most_once_and_helpers_take_part() {
        let _lock = crate::kernels::test_lock();
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
        })
        .unwrap();
        assert!(helped.load(SeqCst));
        assert_eq!(runs[0].load(SeqCst), 1);
        assert!(runs.iter().all(|r| r.load(SeqCst) <= 1));
    }

    #[test]
    fn a_panic_in_a_helper_reaches_the_caller() {
        let _lock = crate::kernels::test_lock();
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
        // The crew still works afterwards.
        let sum = AtomicUsize::new(0);
        run_parts(2, &|me| sum.fetch_add(me + 1, SeqCst)).unwrap();
        assert!(sum.load(SeqCst) >= 1);
    }

    #[test]
    fn a_panicking_caller_waits_for_its_helpers() {
        let _lock = crate::kernels::test_lock();
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
        // The job (on the unwound stack) was withdrawn only once the helper
        // was done with it.
        assert!(finished.load(SeqCst));
    }

    #[test]
    fn concurrent_callers_each_finish_their_job() {
        let _lock = crate::kernels::test_lock();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let ran = AtomicUsize::new(0);
                        run_parts(2, &|_| ran.fetch_add(1, SeqCst) + 1).unwrap();
                        assert!((1..=2).contains(&ran.load(SeqCst)));
                    }
                });
            }
        });
    }
}
