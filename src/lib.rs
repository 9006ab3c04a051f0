//! virtscript: automate libvirt with Rhai scripts.
//!
//! Layers, bottom up (see `docs/architecture.md`):
//! - [`xml`]: typed libvirt XML documents; no libvirt calls, no Rhai.
//! - [`virt_ext`]: the few libvirt C calls the `virt` crate does not wrap, made safe once.
//! - [`api`]: script objects, one file per libvirt object.
//! - [`engine`]: the sandboxed Rhai engine, limits, module resolver, diagnostics.
//! - [`cli`] and [`repl`]: the command line.

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
