//! Run-time choice of the instruction set.
//!
//! The wheel is compiled for the baseline of its target (SSE2 on x86-64,
//! NEON on aarch64). Kernels are written once, as plain loops, and compiled
//! several times: inside functions marked `#[target_feature]` for AVX2+FMA
//! and for AVX-512, where LLVM vectorizes them with those instructions. The
//! best level the CPU supports is picked at run time, and can be lowered
//! (for testing, or to compare) with [`set_level`].

use super::KernelError;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// What the target always has: SSE2 on x86-64, NEON on aarch64.
    Baseline = 0,
    /// AVX2 with FMA and F16C (x86-64).
    Avx2 = 1,
    /// AVX-512 F/BW/DQ/VL with AVX2, FMA and F16C (x86-64).
    Avx512 = 2,
}

impl Level {
    const ALL: [Level; 3] = [Level::Baseline, Level::Avx2, Level::Avx512];

    /// The level's name: "sse2" (or "neon", "scalar"), "avx2", "avx512".
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline if cfg!(target_arch = "x86_64") => "sse2",
            Level::Baseline if cfg!(target_arch = "aarch64") => "neon",
            Level::Baseline => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The level called `name` (as [`Level::name`] gives it).
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Every level this CPU can run, lowest first.
    pub fn available() -> Vec<Level> {
        Level::ALL.into_iter().filter(|&l| l <= detected()).collect()
    }
}

/// The best level this CPU supports.
pub fn detected() -> Level {
    static DETECTED: OnceLock<Level> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma") && has!("f16c") && has!("bmi1") && has!("bmi2");
            if avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
                return Level::Avx512;
            }
            if avx2 {
                return Level::Avx2;
            }
        }
        Level::Baseline
    })
}

const UNSET: u8 = u8::MAX;
static ACTIVE: AtomicU8 = AtomicU8::new(UNSET);

/// The level the kernels run at: [`detected`] unless lowered.
pub fn level() -> Level {
    match ACTIVE.load(Ordering::Relaxed) {
        UNSET => detected(),
        n => Level::ALL[n as usize],
    }
}

/// Runs the kernels at `level`, which must not exceed [`detected`].
pub fn set_level(level: Level) -> Result<(), KernelError> {
    if level > detected() {
        return Err(KernelError::SimdLevel { requested: level.name(), detected: detected().name() });
    }
    ACTIVE.store(level as u8, Ordering::Relaxed);
    Ok(())
}

/// Work compiled once per level. `run` and everything it calls in its hot
/// loops must be `#[inline(always)]`, so that it is compiled inside the
/// `#[target_feature]` functions below and vectorized for their level.
pub(crate) trait Kernel {
    type Output;
    /// `FMA`: whether fused multiply-adds are single instructions.
    fn run<const FMA: bool>(self) -> Self::Output;
}

/// aarch64 always has fused multiply-add.
const BASELINE_FMA: bool = cfg!(target_arch = "aarch64");

/// Runs `kernel` compiled for the current [`level`].
#[inline]
pub(crate) fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    match level() {
        // SAFETY: `level()` never exceeds `detected()`, which checked that
        // the CPU has every feature these functions are compiled with.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { run_avx512(kernel) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { run_avx2(kernel) },
        _ => kernel.run::<BASELINE_FMA>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi1,bmi2")]
fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<true>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,bmi1,bmi2")]
fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<true>()
}
