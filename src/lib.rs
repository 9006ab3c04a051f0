//! virtscript: automate libvirt with Rhai scripts.
//!
//! Layers, bottom up; a module imports only from its own layer's files and
//! the layers below (see `docs/architecture.md`; `mod layers` below checks it):
//! - [`runtime`]: process-wide services (stop signal, undo journal, error
//!   kinds, units, suggestions, the log on stderr, the terminal's facts).
//! - [`xml`] and [`iso`]: documents (typed libvirt XML, ISO images); no
//!   libvirt calls, no Rhai.
//! - [`virt_ext`]: the few libvirt C calls the `virt` crate does not wrap, made safe once.
//! - [`api`]: script objects, one folder or file per libvirt object.
//! - [`engine`]: the sandboxed Rhai engine, limits, module resolver, diagnostics.
//! - [`output`]: how values look on a terminal (tables), for runs and the REPL.
//! - [`jobs`]: the job runner (`run`: lock, timeout, hosts, plan, report,
//!   exit status), `check`, schedules.
//! - [`doc`], then [`repl`], then [`cli`] (clap's types and dispatch).

/// Output macros that ignore a closed stream instead of panicking like
/// `println!`/`eprintln!` do: a job piped into `head` must still finish and
/// exit with its own status.
macro_rules! write_ignoring_errors {
    ($write:ident, $stream:expr, $($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = $write!($stream, $($arg)*);
    }};
}

/// `print!` on a possibly closed stdout.
macro_rules! out {
    ($($arg:tt)*) => { write_ignoring_errors!(write, std::io::stdout(), $($arg)*) };
}

/// `println!` on a possibly closed stdout.
macro_rules! outln {
    ($($arg:tt)*) => { write_ignoring_errors!(writeln, std::io::stdout(), $($arg)*) };
}

/// `eprintln!` on a possibly closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => { write_ignoring_errors!(writeln, std::io::stderr(), $($arg)*) };
}

/// `eprint!` on a possibly closed stderr.
macro_rules! errp {
    ($($arg:tt)*) => { write_ignoring_errors!(write, std::io::stderr(), $($arg)*) };
}

pub mod api;
pub mod cli;
pub mod doc;
pub mod engine;
pub mod iso;
pub mod jobs;
#[cfg(test)]
mod layers;
pub mod output;
pub mod repl;
pub mod runtime;
#[cfg(test)]
pub(crate) mod testing;
pub mod virt_ext;
pub mod xml;
