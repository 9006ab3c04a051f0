//! Typed libvirt XML documents: plain serde data, no libvirt calls, no Rhai.
pub mod tree;
pub mod storage;
