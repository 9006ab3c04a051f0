//! `Host`: one libvirt connection (`virsh -c URI`). Scripts get the host chosen
//! on the command line as the constant `HOST` and may open more with `connect`.
mod object;
pub mod numa;

use crate::runtime::ErrorKind;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::connect::Connect;

use super::error::{LibvirtResultExt, ScriptError, ScriptResult};
use super::policy;

/// The URI used when none is given: libvirt's in-process test driver.
pub const TEST_URI: &str = "test:///default";

/// The URI a bare `connect()` (and the CLI without `-c`) uses:
/// `LIBVIRT_DEFAULT_URI`, else the embedded test driver, so nothing real is
/// touched unless the user asks for it.
pub fn default_uri() -> (String, bool) {
    match std::env::var("LIBVIRT_DEFAULT_URI") {
        Ok(uri) if !uri.is_empty() => (uri, false),
        _ => (TEST_URI.to_owned(), true),
    }
}

/// A connection whose last reference closes it without panicking, even when the
/// daemon has gone away (the `virt` crate's own `Drop` panics on a failed close).
struct Connection(ManuallyDrop<Connect>);

impl Drop for Connection {
    fn drop(&mut self) {
        crate::virt_ext::events::unwatch(&self.0);
        // SAFETY: we own this reference and never use it again.
        unsafe {
            virt::sys::virConnectClose(self.0.as_ptr());
        }
    }
}

#[derive(Clone)]
pub struct Host {
    conn: Arc<Connection>,
    uri: Arc<str>,
}

/// Why a connection was not opened: the security policy refused the URI
/// (`policy::check_uri`), or libvirt failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{message}")]
    Refused {
        message: String,
        error: Box<ScriptError>,
    },
    /// `message` is libvirt's, except for test-driver files (see `policy::connect_message`).
    #[error("{message}")]
    Libvirt {
        error: virt::error::Error,
        message: String,
    },
}

impl OpenError {
    /// The reason in words, never quoting a test-driver file's content.
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub fn is_refusal(&self) -> bool {
        matches!(self, OpenError::Refused { .. })
    }

    /// libvirt's error code, when libvirt refused the connection.
    pub fn libvirt_code(&self) -> Option<i64> {
        match self {
            OpenError::Libvirt { error, .. } => Some(error.code().to_raw() as i64),
            OpenError::Refused { .. } => None,
        }
    }
}

impl Host {
    /// Open a URI the operator named (`-c`, `--hosts`, the environment, `:connect`).
    pub fn open(uri: &str) -> Result<Host, OpenError> {
        Host::open_as(uri, policy::Origin::Operator)
    }

    /// Open a URI after the security policy allowed it for `origin`.
    pub fn open_as(uri: &str, origin: policy::Origin) -> Result<Host, OpenError> {
        policy::check_uri(uri, origin).map_err(|error| OpenError::Refused {
            message: error.message(),
            error: Box::new(error),
        })?;
        // libvirt's event loop must be registered BEFORE a connection is opened,
        // or that connection never delivers domain events (`Vm.wait_state`).
        // Registering makes no thread; the loop's thread starts below for a
        // daemon, or with the first watched event (see `virt_ext::events`).
        crate::virt_ext::events::init();
        let conn = Connect::open(Some(uri)).map_err(|error| OpenError::Libvirt {
            message: policy::connect_message(uri, error.message()),
            error,
        })?;
        if !in_process(uri) {
            // A daemon's connection answers keepalive probes through the loop.
            crate::virt_ext::events::run_loop();
        }
        Ok(Host::from_connect(conn, uri))
    }

    /// Wrap a connection opened elsewhere (the plan's rehearsal host).
    pub fn from_connect(conn: Connect, uri: &str) -> Host {
        Host {
            conn: Arc::new(Connection(ManuallyDrop::new(conn))),
            uri: uri.into(),
        }
    }

    pub fn conn(&self) -> &Connect {
        &self.conn.0
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Host({})", self.uri)
    }
}

/// Whether `uri` names libvirt's test driver inside this process (`test:///...`,
/// no transport): no daemon, no keepalive, nothing to wait for.
pub fn in_process(uri: &str) -> bool {
    uri.starts_with("test:///")
}

/// libvirt packs versions as major * 1,000,000 + minor * 1,000 + release.
pub fn version_string(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1_000) % 1_000, v % 1_000)
}

/// What this machine's kernel says about KVM: CPU virtualisation flags and
/// `/dev/kvm` (`egrep -c '(vmx|svm)' /proc/cpuinfo`, `kvm-ok`). Only meaningful
/// when the host is this machine: `kvm_support` labels it `local`.
pub fn local_kvm_facts() -> Map {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // Like `egrep -c '(vmx|svm)' /proc/cpuinfo`: one per logical CPU that has the flag.
    let flags = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .filter(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
        .count() as i64;
    let vendor = if cpuinfo.split_whitespace().any(|f| f == "svm") {
        "svm"
    } else {
        "vmx"
    };
    let dev_kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let mut m = Map::new();
    m.insert("cpu_flags".into(), flags.into());
    m.insert("flag".into(), (if flags > 0 { vendor } else { "" }).into());
    m.insert("dev_kvm".into(), dev_kvm.into());
    let advice = match (flags > 0, dev_kvm) {
        (true, true) => "the CPU has virtualisation extensions and /dev/kvm opens",
        (true, false) => "the CPU supports virtualisation but /dev/kvm cannot be opened: load kvm_intel or kvm_amd, or check permissions",
        (false, true) => "/dev/kvm opens but the CPU flags (vmx/svm) are hidden: nested virtualisation may be limited",
        (false, false) => "no hardware virtualisation on this machine",
    };
    m.insert("advice".into(), advice.into());
    m
}

/// The host's answer to "can it run KVM guests?", from libvirt (so it holds
/// for a remote host too): the domain types its hypervisor offers for the
/// host's own architecture, the machine types, and the firmware
/// (`virsh capabilities`, `virsh domcapabilities`).
fn kvm_support_of(host: &Host) -> Result<Map, virt::error::Error> {
    let caps = host.conn().capabilities()?;
    let root = crate::xml::tree::Element::parse(&caps).ok();
    let arch = root
        .as_ref()
        .and_then(|r| r.path(&["host", "cpu", "arch"]).map(|a| a.text()))
        .unwrap_or_default();
    let guest_arch = root.as_ref().and_then(|r| {
        r.children_named("guest")
            .filter_map(|g| g.child("arch"))
            .find(|a| a.attr("name") == Some(arch.as_str()))
    });
    let mut domain_types: Vec<String> = guest_arch
        .map(|a| {
            a.children_named("domain")
                .filter_map(|d| d.attr("type").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    domain_types.dedup();
    let supported = domain_types.iter().any(|t| t == "kvm");
    let virt_type = if supported { "kvm" } else { "qemu" };
    let mut machines: Vec<String> = guest_arch
        .map(|a| {
            a.children_named("machine")
                .map(|m| m.text())
                .filter(|m| !m.is_empty())
                .collect()
        })
        .unwrap_or_default();
    machines.sort();
    machines.dedup();
    // Firmware the hypervisor knows for that type (UEFI loaders).
    let firmware: Vec<String> = if domain_types.iter().any(|t| t == virt_type) {
        host.conn()
            .domain_capabilities(None, Some(&arch), None, Some(virt_type), 0)
            .ok()
            .and_then(|x| crate::xml::tree::Element::parse(&x).ok())
            .and_then(|d| {
                d.path(&["os", "loader"])
                    .map(|l| l.children_named("value").map(|v| v.text()).collect())
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let list = |v: Vec<String>| -> Dynamic {
        v.into_iter()
            .map(Dynamic::from)
            .collect::<rhai::Array>()
            .into()
    };
    let mut m = Map::new();
    m.insert("supported".into(), supported.into());
    m.insert("arch".into(), arch.clone().into());
    let advice = if supported {
        format!("KVM acceleration is available on {} ({arch})", host.uri())
    } else if domain_types.is_empty() {
        format!(
            "{} offers no hypervisor for its own architecture ({arch})",
            host.uri()
        )
    } else {
        format!(
            "{} offers no KVM for {arch} (domain types: {}): guests run under TCG emulation (virt_type: \"qemu\")",
            host.uri(),
            domain_types.join(", ")
        )
    };
    m.insert("advice".into(), advice.into());
    m.insert("domain_types".into(), list(domain_types));
    m.insert("machines".into(), list(machines));
    m.insert("firmware".into(), list(firmware));
    m.insert(
        "local".into(),
        if is_local_uri(host.uri()) {
            local_kvm_facts().into()
        } else {
            Dynamic::UNIT
        },
    );
    Ok(m)
}

/// Whether a host URI names a daemon on this machine (no host name in the
/// URI), whose paths and kernel are this machine's; the in-process test
/// driver's paths are made up, and it has no kernel.
pub fn is_local_uri(uri: &str) -> bool {
    match uri.split_once("://") {
        Some(("test", _)) => false,
        Some((_, rest)) => rest.starts_with('/') || rest.is_empty(),
        None => true,
    }
}

/// `connect(...)`: open `uri` after the policy allowed it for `origin`.
fn connect_as(ctx: NativeCallContext, uri: &str, origin: policy::Origin) -> ScriptResult<Host> {
    Host::open_as(uri, origin).map_err(|e| match e {
        OpenError::Refused { error, .. } => error.at(&ctx),
        OpenError::Libvirt { error, message } => ScriptError::libvirt(&error)
            .with_kind(ErrorKind::Connect)
            .with(
                "message",
                format!("cannot connect to libvirt at {uri}: {message}"),
            )
            .with("uri", uri.to_owned())
            .at(&ctx),
    })
}

#[export_module(manifest)]
pub mod host_api {
    use super::*;

    pub type Host = super::Host;

    /// Open a connection to libvirt's default host: `LIBVIRT_DEFAULT_URI`, or the
    /// embedded test driver when that is unset.
    ///
    /// ```rhai
    /// let h = connect();
    /// assert_eq(h.uri, "test:///default");   // LIBVIRT_DEFAULT_URI is unset here
    /// ```
    #[rhai_fn(name = "connect", return_raw)]
    pub fn connect_default(ctx: NativeCallContext) -> ScriptResult<Host> {
        let (uri, _) = default_uri();
        connect_as(ctx, &uri, policy::Origin::Environment)
    }

    /// Open a connection to the libvirt URI given (`qemu:///system`, `qemu+ssh://host/system`,
    /// `test:///default`, ...). A script may hold several hosts at once. Refused
    /// (`kind: "refused"`, `field: "uri"`): the `ext` transport and parameters naming
    /// a local program or key file (`command=`, `netcat=`, `keyfile=`, `pkipath=`,
    /// `known_hosts=`) unless the command line has `--allow-uri-param NAME`, never
    /// under `--plan`; test-driver files (`test:///path`) outside the script's
    /// directory that the command line did not name; other daemons during `--plan`.
    ///
    /// ```rhai
    /// let h = connect("test:///default");
    /// assert(h.hostname != "");
    /// ```
    #[rhai_fn(name = "connect", return_raw)]
    pub fn connect_uri(ctx: NativeCallContext, uri: &str) -> ScriptResult<Host> {
        connect_as(ctx, uri, policy::Origin::Script)
    }

    /// The URI this host was opened with.
    ///
    /// ```rhai
    /// assert_eq(HOST.uri, "test:///default");   // no -c: the embedded test driver
    /// ```
    #[rhai_fn(get = "uri", pure)]
    pub fn uri(host: &mut Host) -> String {
        host.uri.to_string()
    }

    /// The host name of the libvirt host (not of the machine running the script).
    ///
    /// ```rhai
    /// // The embedded test driver runs in this process, on this machine.
    /// assert_eq(HOST.hostname, hostname());
    /// ```
    #[rhai_fn(get = "hostname", pure, return_raw)]
    pub fn host_hostname(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<String> {
        host.conn().hostname().script(&ctx)
    }

    /// The libvirt version of the host's daemon, as `"major.minor.release"`.
    ///
    /// ```rhai
    /// let v = HOST.libvirt_version.split(".");
    /// assert_eq(v.len(), 3);
    /// assert(parse_int(v[0]) >= 9, "libvirt 9 or newer");
    /// ```
    #[rhai_fn(get = "libvirt_version", pure, return_raw)]
    pub fn libvirt_version(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<String> {
        host.conn().lib_version().map(version_string).script(&ctx)
    }

    /// The hypervisor's version (QEMU's for `qemu://` hosts), as `"major.minor.release"`.
    ///
    /// ```rhai
    /// let v = HOST.hypervisor_version;
    /// assert_eq(v.split(".").len(), 3);   // "major.minor.release"
    /// ```
    #[rhai_fn(get = "hypervisor_version", pure, return_raw)]
    pub fn hypervisor_version(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<String> {
        host.conn().hyp_version().map(version_string).script(&ctx)
    }

    /// What `virsh nodeinfo` shows: `cpu_model`, `cpus`, `mhz`, `numa_cells`, `sockets`,
    /// `cores_per_socket`, `threads_per_core`, `memory` (bytes).
    ///
    /// ```rhai
    /// let n = HOST.node_info();
    /// assert(n.cpus > 0);
    /// print(`${n.cpu_model}: ${n.cpus} CPUs`);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn node_info(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Map> {
        let info = host.conn().node_info().script(&ctx)?;
        let mut m = Map::new();
        m.insert("cpu_model".into(), info.model.into());
        m.insert("cpus".into(), (info.cpus as i64).into());
        m.insert("mhz".into(), (info.mhz as i64).into());
        m.insert("numa_cells".into(), (info.nodes as i64).into());
        m.insert("sockets".into(), (info.sockets as i64).into());
        m.insert("cores_per_socket".into(), (info.cores as i64).into());
        m.insert("threads_per_core".into(), (info.threads as i64).into());
        m.insert("memory".into(), ((info.memory as i64) * 1024).into());
        Ok(m)
    }

    /// The host's memory in bytes (`virsh nodememstats`): `total`, `free`, `buffers`,
    /// `cached` where the hypervisor reports them.
    ///
    /// ```rhai
    /// let m = HOST.memory_stats();
    /// assert(m.total > 0);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn memory_stats(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Map> {
        match crate::virt_ext::node::memory_stats(host.conn()) {
            Ok(stats) => Ok(stats
                .into_iter()
                .map(|(k, v)| (k.into(), ((v as i64).saturating_mul(1024)).into()))
                .collect()),
            // Drivers without the call (the test driver) still know total and free memory.
            Err(e) if e.code() == virt::error::ErrorNumber::NoSupport.into() => {
                let info = host.conn().node_info().script(&ctx)?;
                let mut m = Map::new();
                m.insert("total".into(), ((info.memory as i64) * 1024).into());
                if let Ok(free) = host.conn().free_memory() {
                    m.insert("free".into(), (free as i64).into());
                }
                Ok(m)
            }
            Err(e) => Err(e).script(&ctx),
        }
    }

    /// Whether the host can run KVM guests, answered by the host's libvirt
    /// (so it holds for a remote host too): `supported` (KVM is a domain type
    /// its hypervisor offers for the host's architecture), `arch`,
    /// `domain_types`, `machines` (machine types), `firmware` (UEFI loaders of
    /// `virsh domcapabilities`), `advice`. `local` holds this machine's own
    /// facts (`cpu_flags`: CPUs with vmx/svm in /proc/cpuinfo, `flag`,
    /// `dev_kvm`, `advice`) when the host is this machine, else `()`.
    ///
    /// ```rhai
    /// let k = HOST.kvm_support();
    /// // The embedded test driver offers its own "test" domain type, no KVM,
    /// // and is not this machine.
    /// assert_eq(k.supported, false);
    /// assert_eq(k.domain_types, ["test"]);
    /// assert_eq(k.local, ());
    /// print(k.advice);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn kvm_support(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Map> {
        kvm_support_of(host).script(&ctx)
    }

    /// `Host(URI)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(host: &mut Host) -> String {
        format!("Host({})", host.uri)
    }
}
