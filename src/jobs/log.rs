//! Logs on stderr: text on a terminal, JSON lines otherwise (for journald and
//! log shippers), at the level asked. Every libvirt change is logged at `info`.
use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text on a terminal, JSON lines otherwise
    Auto,
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

/// Install the process's log subscriber (once; later calls are ignored).
pub fn init(format: LogFormat, level: LogLevel) {
    let filter = EnvFilter::new(level.directive());
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour codes only for a terminal: text logs sent to a file stay plain.
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr (`virtscript run job 2>&1 | head`) must not end the
        // run: tracing-subscriber would report the failed write on stderr
        // itself, and that report panics.
        .log_internal_errors(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.without_time().try_init()
    };
}
