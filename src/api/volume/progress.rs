//! What a long volume call shows on a terminal (a bar, a spinner) and how it
//! stays stoppable while libvirt works.
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use virt::error::Error;

use crate::api::error::ScriptError;
use crate::runtime::stop::{self, StopReason};
use crate::runtime::ErrorKind;

pub(crate) fn progress_bar(total: u64, what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

fn spinner(what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

/// Run a blocking libvirt call on another thread so that a Ctrl-C is noticed
/// (libvirt cannot cancel it: we let it finish and report the stop, so the
/// caller can clean up). `watch` gives a progress message while it runs.
pub(super) fn run_job<T: Send + 'static>(
    what: &str,
    watch: impl Fn() -> Option<String>,
    job: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> (Result<T, ScriptError>, Option<StopReason>) {
    let handle = std::thread::spawn(job);
    let bar = spinner(what);
    let mut stopped = None;
    while !handle.is_finished() {
        if stopped.is_none() {
            if let Some(reason) = stop::requested() {
                stopped = Some(reason);
                let note = format!(
                    "{what}: {}; waiting for libvirt to finish the call, then cleaning up",
                    reason.token()
                );
                match &bar {
                    Some(b) => b.set_message(note),
                    None => errln!("virtscript: {note}"),
                }
            }
        }
        if let Some(b) = &bar {
            if stopped.is_none() {
                if let Some(msg) = watch() {
                    b.set_message(format!("{what}: {msg}"));
                }
            }
            b.tick();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let result = match handle.join() {
        Ok(r) => r.map_err(|e| ScriptError::libvirt(&e)),
        Err(_) => Err(ScriptError::new(
            ErrorKind::Internal,
            format!("{what}: the worker thread failed"),
        )),
    };
    (result, stopped)
}

/// Bytes allocated on disk for a local file (for progress while libvirt copies).
pub(super) fn allocated(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.blocks() * 512)
}
