//! `Pool` script object.
use super::Host;

/// A libvirt object handle plus the host it came from.
#[derive(Clone)]
pub struct Pool {
    pub host: Host,
    pub raw: virt::storage_pool::StoragePool,
}
