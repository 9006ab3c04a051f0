//! Ctrl-C, SIGTERM and SIGHUP during a run.
use super::Exit;
use crate::runtime::stop;

/// The first Ctrl-C, SIGTERM (systemd stopping a job) or SIGHUP (the
/// terminal went away) stops the script between operations, so --atomic
/// rolls back and the report is written; a second one ends the process at
/// once (a libvirt call may be blocking). A signal handler, not a watcher
/// thread (see `connecting` in [`super::run`]).
pub fn stop_on_signals() {
    let handler = || {
        if stop::requested().is_some() {
            signal_hook::low_level::exit(Exit::Stopped as i32);
        }
        stop::request(stop::StopReason::Interrupted);
    };
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // SAFETY: the handler only reads and swaps an atomic and calls `_exit`,
        // all async-signal-safe.
        let _ = unsafe { signal_hook::low_level::register(signal, handler) };
    }
}
