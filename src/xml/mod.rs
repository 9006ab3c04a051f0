//! Typed libvirt XML documents: plain serde data, no libvirt calls, no Rhai.
pub mod clone;
pub mod domain;
pub mod snapshot;
pub mod storage;
pub mod tree;
