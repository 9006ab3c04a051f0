//! Typed libvirt XML documents: plain serde data, no libvirt calls, no Rhai.
pub mod domain;
pub mod storage;
pub mod tree;
