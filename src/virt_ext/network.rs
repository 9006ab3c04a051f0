//! Network calls: `virNetworkGetDHCPLeases`.
use std::ffi::{CStr, CString};
use std::os::raw::c_char;

use virt::error::Error;
use virt::network::Network;
use virt::sys;

/// One DHCP lease as `virsh net-dhcp-leases` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpLease {
    pub iface: String,
    /// Seconds since the epoch.
    pub expiry_time: i64,
    /// `ipv4` or `ipv6`.
    pub kind: String,
    pub mac: String,
    pub iaid: String,
    pub ip: String,
    pub prefix: u32,
    pub hostname: String,
    pub client_id: String,
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: libvirt hands out NUL-terminated strings that live until the lease is freed.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// The network's DHCP leases, optionally only those of `mac`.
pub fn dhcp_leases(net: &Network, mac: Option<&str>) -> Result<Vec<DhcpLease>, Error> {
    let mac = mac.map(CString::new).transpose()?;
    let mut leases: *mut sys::virNetworkDHCPLeasePtr = std::ptr::null_mut();
    // SAFETY: libvirt allocates the array and each lease; we free both below.
    let n = unsafe {
        sys::virNetworkGetDHCPLeases(
            net.as_ptr(),
            mac.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            &mut leases,
            0,
        )
    };
    if n < 0 {
        return Err(Error::last_error());
    }
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        // SAFETY: the array has `n` valid lease pointers.
        unsafe {
            let l = *leases.add(i);
            let lease = &*l;
            out.push(DhcpLease {
                iface: text(lease.iface),
                expiry_time: lease.expirytime,
                kind: if lease.type_ == sys::VIR_IP_ADDR_TYPE_IPV6 as i32 {
                    "ipv6".into()
                } else {
                    "ipv4".into()
                },
                mac: text(lease.mac),
                iaid: text(lease.iaid),
                ip: text(lease.ipaddr),
                prefix: lease.prefix,
                hostname: text(lease.hostname),
                client_id: text(lease.clientid),
            });
            sys::virNetworkDHCPLeaseFree(l);
        }
    }
    if !leases.is_null() {
        // SAFETY: the array itself was allocated by libvirt with malloc.
        unsafe { libc::free(leases as *mut libc::c_void) };
    }
    Ok(out)
}
