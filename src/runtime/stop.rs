//! One process-wide stop signal: Ctrl-C and `--timeout` set it, the engine's
//! progress hook and our blocking helpers (sleep, waits) poll it.
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static STOP: AtomicU8 = AtomicU8::new(RUNNING);
/// `--timeout`'s deadline: checked where the stop is polled, so no timer thread.
static DEADLINE: OnceLock<Instant> = OnceLock::new();

const RUNNING: u8 = 0;
const INTERRUPTED: u8 = 1;
const TIMED_OUT: u8 = 2;

/// Why a script was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Interrupted,
    TimedOut,
}

impl StopReason {
    /// The token carried by Rhai's `ErrorTerminated`, so the CLI can tell the two apart.
    pub fn token(self) -> &'static str {
        match self {
            StopReason::Interrupted => "interrupted",
            StopReason::TimedOut => "timed out",
        }
    }
}

/// The pending stop request, if any.
pub fn requested() -> Option<StopReason> {
    // Only a run with --timeout pays for reading the clock.
    if let Some(deadline) = DEADLINE.get() {
        if STOP.load(Ordering::Relaxed) == RUNNING && Instant::now() >= *deadline {
            request(StopReason::TimedOut);
        }
    }
    match STOP.load(Ordering::Relaxed) {
        INTERRUPTED => Some(StopReason::Interrupted),
        TIMED_OUT => Some(StopReason::TimedOut),
        _ => None,
    }
}

pub fn request(reason: StopReason) {
    let value = match reason {
        StopReason::Interrupted => INTERRUPTED,
        StopReason::TimedOut => TIMED_OUT,
    };
    // The first reason wins: a timeout followed by Ctrl-C is still a timeout.
    let _ = STOP.compare_exchange(RUNNING, value, Ordering::SeqCst, Ordering::SeqCst);
}

/// Clear a served request (the REPL does this after each input).
pub fn reset() {
    STOP.store(RUNNING, Ordering::SeqCst);
}

/// Request a stop once `timeout` has passed (from now; the first call wins).
/// A timeout beyond what the clock can represent never expires.
pub fn arm_timeout(timeout: Duration) {
    if let Some(deadline) = Instant::now().checked_add(timeout) {
        let _ = DEADLINE.set(deadline);
    }
}

/// Sleep for `duration`, waking early when a stop is requested.
pub fn sleep(duration: Duration) -> Result<(), StopReason> {
    let end = Instant::now() + duration;
    loop {
        if let Some(reason) = requested() {
            return Err(reason);
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
