//! What virtscript says on stderr: logs (every libvirt change at `info`),
//! notices (such as which URI is used), script errors, and `print` output
//! under `--json`. Text on a terminal, JSON lines when asked
//! (`--log-format json`: then every line on stderr is one JSON object).
//! `RUST_LOG` is honoured; colour only on a terminal and never with `NO_COLOR`.
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use clap::ValueEnum;
use serde_json::{Map, Value};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    /// Text on a terminal, JSON lines otherwise (for logs; notices and
    /// errors stay text unless `json` is asked for)
    Auto,
    Text,
    /// Every line on stderr is a JSON object
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
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

    /// `-v` raises the default level once per `v`.
    pub fn raised(self, times: u8) -> LogLevel {
        let all = [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
        ];
        let at = all.iter().position(|l| *l == self).unwrap_or(1);
        all[(at + times as usize).min(all.len() - 1)]
    }
}

/// Where stderr's lines stand: set once by [`init`].
static JSON_LINES: AtomicBool = AtomicBool::new(false);
const QUIET: u8 = 1;
static FLAGS: AtomicU8 = AtomicU8::new(0);

/// How the process logs, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    pub format: LogFormat,
    /// `--log-level` (or `-v`); `None`: `RUST_LOG`, else `warn`.
    pub level: Option<LogLevel>,
    /// `-q`: no notices (errors still show).
    pub quiet: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            format: LogFormat::Auto,
            level: None,
            quiet: false,
        }
    }
}

/// Choose how stderr is written: call before anything is said there.
pub fn configure(options: LogOptions) {
    JSON_LINES.store(options.format == LogFormat::Json, Ordering::Relaxed);
    FLAGS.store(if options.quiet { QUIET } else { 0 }, Ordering::Relaxed);
}

/// Whether every line on stderr is JSON (`--log-format json`).
pub fn json_lines() -> bool {
    JSON_LINES.load(Ordering::Relaxed)
}

fn quiet() -> bool {
    FLAGS.load(Ordering::Relaxed) & QUIET != 0
}

/// The filter: an explicit level wins, then `RUST_LOG`, then `warn`.
fn filter(level: Option<LogLevel>) -> EnvFilter {
    match level {
        Some(level) => EnvFilter::new(level.directive()),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    }
}

/// Install the process's log subscriber (once; later calls are ignored).
pub fn init(options: LogOptions) {
    configure(options);
    let json = match options.format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(options.level))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(!json && super::term::colour_stderr())
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

/// One JSON line on stderr: `level`, `message` and `fields`, stamped like the logs.
fn json_line(level: &str, message: &str, fields: Map<String, Value>) {
    let mut line = Map::new();
    line.insert(
        "timestamp".into(),
        humantime::format_rfc3339_micros(std::time::SystemTime::now())
            .to_string()
            .into(),
    );
    line.insert("level".into(), level.into());
    line.insert("message".into(), message.into());
    line.extend(fields);
    let text = serde_json::to_string(&Value::Object(line)).unwrap_or_default();
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A notice for the operator (which URI is used, what a plan rehearses on):
/// not shown with `-q`.
pub fn notice(text: &str) {
    if quiet() {
        return;
    }
    if json_lines() {
        json_line("INFO", text.trim_start_matches("virtscript: "), Map::new());
    } else {
        errln!("{text}");
    }
}

/// An error that is not a script's (bad command line, unreadable file, lock).
pub fn error(text: &str) {
    if json_lines() {
        json_line("ERROR", text, Map::new());
    } else {
        errln!("error: {text}");
    }
}

/// A script error: the rendered block (message, caret, callers) as text, or
/// one line with the error object's fields as JSON.
pub fn script_error(rendered: &str, object: &Value) {
    if json_lines() {
        let mut fields = object.as_object().cloned().unwrap_or_default();
        let message = fields
            .remove("message")
            .and_then(|m| m.as_str().map(str::to_owned))
            .unwrap_or_default();
        json_line("ERROR", &message, fields);
    } else {
        errp!("{rendered}");
    }
}

/// A line the script printed (`print` under `--json`, `debug`), on stderr.
pub fn script_output(stream: &str, text: &str) {
    if json_lines() {
        let mut fields = Map::new();
        fields.insert("stream".into(), stream.into());
        json_line("INFO", text, fields);
    } else {
        errln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_raises_the_level_up_to_debug() {
        assert_eq!(LogLevel::Warn.raised(0), LogLevel::Warn);
        assert_eq!(LogLevel::Warn.raised(1), LogLevel::Info);
        assert_eq!(LogLevel::Warn.raised(5), LogLevel::Debug);
    }
}
