//! The few libvirt C calls that the `virt` crate (0.5) does not wrap, made safe
//! here once so that no other module touches `virt::sys` directly.
pub mod domain;
pub mod events;
pub mod migration;
pub mod network;
pub mod node;
pub mod stream;
