//! Running jobs, at a terminal or unattended (cron, systemd timers): the
//! runner of `virtscript run` (lock, timeout, one host or many, plan, report,
//! exit status, signals), `check`, locks, run reports, plans, schedules.
pub mod calendar;
pub mod check;
pub mod exit;
mod fanout;
pub mod hosts;
pub mod lock;
pub mod plan;
mod rehearsal;
pub mod report;
mod results;
pub mod runner;
pub mod schedule;
pub mod script;
mod signals;

pub use exit::Exit;
pub use runner::{run, Run};

/// An error with its causes: `cannot write X: Permission denied`.
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
