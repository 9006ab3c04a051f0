//! Network calls: `virNetworkGetDHCPLeases`; removing a stale bridge device.
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

/// Remove a bridge device that no network owns, in the network namespace of
/// the daemon behind `uri` (a local one: `qemu:///system`). Refuses anything
/// but an empty bridge. The daemon's namespace is found through the process
/// on the other end of its socket (it may run in a namespace of its own).
pub fn delete_stale_bridge(uri: &str, dev: &str) -> Result<(), String> {
    let local = uri
        .split_once(":///")
        .is_some_and(|(scheme, _)| !scheme.contains('+') && !scheme.is_empty());
    if !local {
        return Err(format!(
            "{uri} is not a local connection: remove it on that host (`ip link delete {dev}`)"
        ));
    }
    if dev.is_empty()
        || dev.len() > 15
        || !dev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!("{dev:?} is not an interface name"));
    }
    let pid = daemon_pid().ok_or("cannot find the libvirt daemon's process from its socket")?;
    let ip = |args: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-n", "ip"])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run nsenter/ip: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let details = ip(&["-d", "-o", "link", "show", "dev", dev])?;
    if !details.contains(" bridge ") {
        return Err(format!("{dev} is not a bridge: {}", details.trim()));
    }
    let ports = ip(&["-o", "link", "show", "master", dev])?;
    if !ports.trim().is_empty() {
        return Err(format!("{dev} still has ports: {}", ports.trim()));
    }
    ip(&["link", "delete", "dev", dev, "type", "bridge"]).map(|_| ())
}

/// The process id of the daemon on the system socket (SO_PEERCRED).
fn daemon_pid() -> Option<i32> {
    use std::os::fd::AsRawFd;
    for path in [
        "/var/run/libvirt/virtnetworkd-sock",
        "/var/run/libvirt/libvirt-sock",
    ] {
        let Ok(sock) = std::os::unix::net::UnixStream::connect(path) else {
            continue;
        };
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for the call; the socket is open.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if rc == 0 && cred.pid > 0 {
            return Some(cred.pid);
        }
    }
    None
}
