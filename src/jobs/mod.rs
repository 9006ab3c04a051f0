//! Unattended runs (cron, systemd timers): locks, run reports, logs, plans,
//! schedules, many hosts.
pub mod calendar;
pub mod lock;
pub mod log;
pub mod plan;
pub mod report;
pub mod schedule;
