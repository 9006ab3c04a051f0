//! virtscript: automate libvirt with Rhai scripts.
//!
//! Layers, bottom up (see `docs/architecture.md`):
//! - [`xml`]: typed libvirt XML documents; no libvirt calls, no Rhai.
//! - [`virt_ext`]: the few libvirt C calls the `virt` crate does not wrap, made safe once.
//! - [`api`]: script objects, one file per libvirt object.
//! - [`engine`]: the sandboxed Rhai engine, limits, module resolver, diagnostics.
//! - [`cli`] and [`repl`]: the command line.

/// `errln!` that ignores a closed stderr instead of panicking: a job whose
/// stderr is piped into `head` must still finish and exit with its own status.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `errp!` that ignores a closed stderr (see `errln!`).
macro_rules! errp {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub mod api;
pub mod cli;
pub mod doc;
pub mod engine;
pub mod iso;
pub mod jobs;
pub mod repl;
pub mod units;
pub mod virt_ext;
pub mod xml;
