//! `Volume` script object.
use super::Host;

/// A libvirt object handle plus the host it came from.
#[derive(Clone)]
pub struct Volume {
    pub host: Host,
    pub raw: virt::storage_vol::StorageVol,
}
