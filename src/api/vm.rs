//! `Vm` script object.
use super::Host;

/// A libvirt object handle plus the host it came from.
#[derive(Clone)]
pub struct Vm {
    pub host: Host,
    pub raw: virt::domain::Domain,
}
