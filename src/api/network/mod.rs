//! `Network` script object: libvirt virtual networks (`virsh net-*`).
//!
//! Specs from scripts ([`spec`]) become [`NetworkDef`]s (src/xml/network.rs),
//! are checked ([`validate`]) and against the other networks on the host
//! ([`occupancy`]), and only then reach libvirt. Edits of existing networks
//! go through [`NetworkDoc`] so no part of their XML that we do not model is
//! dropped. Here: the object, its lookups and read-only properties; the
//! life cycle, `ensure_network`, config edits and live updates each have a
//! file (and an export module) of their own.
//!
//! [`NetworkDoc`]: crate::xml::network::NetworkDoc
pub mod config;
pub mod converge;
pub mod dhcp;
pub mod lifecycle;
pub mod live;
mod object;
pub mod occupancy;
pub mod records;
pub mod spec;
pub mod update;
pub mod validate;

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use virt::error::{Error as VirtError, ErrorNumber};
use virt::network::Network as RawNetwork;
use virt::sys;

use super::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use super::Host;
use crate::runtime::ErrorKind;
use crate::xml::network::{NetworkDef, XmlError};
use crate::xml::FieldError;
use lifecycle::set_autostart;

/// A libvirt object handle plus the host it came from. Scripts copy handles
/// freely (every `for n in nets` copies each one), so the libvirt reference
/// is shared: a copy is a count, not a round trip through libvirt.
#[derive(Clone)]
pub struct Network {
    pub host: Host,
    pub raw: Arc<RawNetwork>,
}

impl Network {
    fn name(&self) -> String {
        self.raw.name().unwrap_or_default()
    }

    fn label(&self) -> String {
        format!("network {}", self.name())
    }
}

/// A bad value in a network document or spec: an `invalid` error naming
/// the field and the value.
impl From<FieldError> for ScriptError {
    fn from(e: FieldError) -> Self {
        ScriptError::invalid(&e.field, &e.value, &e.problem)
    }
}

/// A network document that does not parse (or cannot be edited).
fn xml_problem(e: impl std::fmt::Display) -> ScriptError {
    ScriptError::new(ErrorKind::Xml, format!("network XML: {e}"))
}

impl From<XmlError> for ScriptError {
    fn from(e: XmlError) -> Self {
        xml_problem(e)
    }
}

// `result.at(&ctx)?` for the network document's and checks' own errors, as
// for every [`ScriptError`].
impl<T> AtExt<T> for Result<T, FieldError> {
    fn at(self, ctx: &NativeCallContext) -> ScriptResult<T> {
        self.map_err(ScriptError::from).at(ctx)
    }
}

impl<T> AtExt<T> for Result<T, XmlError> {
    fn at(self, ctx: &NativeCallContext) -> ScriptResult<T> {
        self.map_err(ScriptError::from).at(ctx)
    }
}

/// libvirt refused to `verb` network `name`: its error, naming the network
/// (`field: name`), since libvirt's own text often does not.
fn refused(verb: &str, name: &str, e: &VirtError) -> ScriptError {
    ScriptError::libvirt(e)
        .with(
            "message",
            format!(
                "libvirt refused to {verb} network '{name}': {}",
                e.message()
            ),
        )
        .with("field", "name")
        .with("value", name.to_owned())
}

fn lookup(host: &Host, name: &str) -> Result<Option<RawNetwork>, VirtError> {
    match host.conn().lookup_network_by_name(name) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.code() == ErrorNumber::NoNetwork.into() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The persistent config (`net-dumpxml --inactive`); the live XML for transient
/// networks and for drivers without the flag (the test driver).
fn config_xml(raw: &RawNetwork) -> Result<String, VirtError> {
    if raw.is_persistent()? {
        match raw.xml_desc(sys::VIR_NETWORK_XML_INACTIVE) {
            Ok(xml) => return Ok(xml),
            Err(e)
                if e.code() == ErrorNumber::InvalidArg.into()
                    || e.code() == ErrorNumber::NoSupport.into() => {}
            Err(e) => return Err(e),
        }
    }
    raw.xml_desc(0)
}

/// The document that the next start uses if inactive, else the running one.
fn current_def(ctx: &NativeCallContext, net: &Network) -> ScriptResult<NetworkDef> {
    let xml = if net.raw.is_active().script(ctx)? {
        net.raw.xml_desc(0)
    } else {
        config_xml(&net.raw)
    }
    .script(ctx)?;
    NetworkDef::parse(&xml).at(ctx)
}

fn to_map<T: serde::Serialize>(ctx: &NativeCallContext, value: &T) -> ScriptResult<Dynamic> {
    rhai::serde::to_dynamic(value)
        .map_err(|e| ScriptError::new(ErrorKind::Internal, e.to_string()))
        .at(ctx)
}

pub(crate) fn lease_map(l: crate::virt_ext::network::DhcpLease) -> Map {
    let mut m = Map::new();
    let expiry =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(l.expiry_time.max(0) as u64);
    m.insert("interface".into(), l.iface.into());
    m.insert("expiry".into(), l.expiry_time.into());
    m.insert(
        "expiry_time".into(),
        humantime::format_rfc3339_seconds(expiry).to_string().into(),
    );
    m.insert("type".into(), l.kind.into());
    m.insert("mac".into(), l.mac.into());
    m.insert("iaid".into(), l.iaid.into());
    m.insert("ip".into(), l.ip.into());
    m.insert("prefix".into(), (l.prefix as i64).into());
    m.insert("hostname".into(), l.hostname.into());
    m.insert("client_id".into(), l.client_id.into());
    m
}

#[export_module(manifest)]
pub mod network_api {
    use super::*;

    pub type Network = super::Network;

    /// All networks on the host, active or not (`virsh net-list --all`), in
    /// libvirt's order (the REPL prints them as a table sorted by name).
    ///
    /// ```rhai
    /// let names = HOST.networks().map(|n| n.name);
    /// assert(names.contains("default"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn networks(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Array> {
        let nets = host.conn().list_all_networks(0).script(&ctx)?;
        Ok(nets
            .into_iter()
            .map(|raw| {
                Dynamic::from(super::Network {
                    host: host.clone(),
                    raw: raw.into(),
                })
            })
            .collect())
    }

    /// The network called `name`; an error naming it if there is none.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// assert(net.active);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn network(ctx: NativeCallContext, host: &mut Host, name: &str) -> ScriptResult<Network> {
        validate::no_control("name", name).at(&ctx)?;
        match lookup(host, name).script(&ctx)? {
            Some(raw) => Ok(super::Network {
                host: host.clone(),
                raw: raw.into(),
            }),
            None => Err(ScriptError::new(
                ErrorKind::NotFound,
                format!("no network named '{name}' on {}", host.uri()),
            )
            .with("name", name.to_owned())
            .at(&ctx)),
        }
    }

    /// The network called `name`, or `()` if there is none.
    ///
    /// ```rhai
    /// assert(HOST.find_network("no-such-net") == ());
    /// assert(HOST.find_network("default") != ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn find_network(
        ctx: NativeCallContext,
        host: &mut Host,
        name: &str,
    ) -> ScriptResult<Dynamic> {
        validate::no_control("name", name).at(&ctx)?;
        Ok(match lookup(host, name).script(&ctx)? {
            Some(raw) => Dynamic::from(super::Network {
                host: host.clone(),
                raw: raw.into(),
            }),
            None => Dynamic::UNIT,
        })
    }

    /// The network's name.
    ///
    /// ```rhai
    /// assert_eq(HOST.network("default").name, "default");
    /// ```
    #[rhai_fn(get = "name", pure)]
    pub fn name(net: &mut Network) -> String {
        net.name()
    }

    /// The network's UUID.
    ///
    /// ```rhai
    /// assert_eq(HOST.network("default").uuid.len(), 36);
    /// ```
    #[rhai_fn(get = "uuid", pure, return_raw)]
    pub fn uuid(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<String> {
        net.raw.uuid_string().script(&ctx)
    }

    /// Whether the network is running.
    ///
    /// ```rhai
    /// assert(HOST.network("default").active);
    /// ```
    #[rhai_fn(get = "active", pure, return_raw)]
    pub fn active(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
        net.raw.is_active().script(&ctx)
    }

    /// Whether the network has a persistent config (`false` for `create_network`).
    ///
    /// ```rhai
    /// assert(HOST.network("default").persistent);
    /// ```
    #[rhai_fn(get = "persistent", pure, return_raw)]
    pub fn persistent(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
        net.raw.is_persistent().script(&ctx)
    }

    /// Whether the network starts when the host boots.
    ///
    /// ```rhai
    /// assert_eq(HOST.network("default").autostart, false);
    /// ```
    #[rhai_fn(get = "autostart", pure, return_raw)]
    pub fn autostart(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
        net.raw.autostart().script(&ctx)
    }

    /// Mark the network to start (or not) when the host boots (`virsh net-autostart`).
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.autostart = true;
    /// assert(net.autostart);
    /// ```
    #[rhai_fn(set = "autostart", pure, return_raw)]
    pub fn set_autostart_prop(
        ctx: NativeCallContext,
        net: &mut Network,
        on: bool,
    ) -> ScriptResult<()> {
        set_autostart(&ctx, net, on)
    }

    /// The Linux bridge device of the network, or `()` when it has none
    /// (e.g. `forward mode='hostdev'`).
    ///
    /// ```rhai
    /// assert_eq(HOST.network("default").bridge, "virbr0");
    /// ```
    #[rhai_fn(get = "bridge", pure)]
    pub fn bridge(net: &mut Network) -> Dynamic {
        net.raw
            .bridge_name()
            .ok()
            .filter(|b| !b.is_empty())
            .map_or(Dynamic::UNIT, Dynamic::from)
    }

    /// The network's XML as libvirt has it now (`virsh net-dumpxml`).
    ///
    /// ```rhai
    /// assert(HOST.network("default").xml.contains("<name>default</name>"));
    /// ```
    #[rhai_fn(get = "xml", pure, return_raw)]
    pub fn xml(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<String> {
        net.raw.xml_desc(0).script(&ctx)
    }

    /// The persistent config the next start uses (`virsh net-dumpxml --inactive`).
    ///
    /// ```rhai
    /// assert(HOST.network("default").xml_inactive.contains("<network"));
    /// ```
    #[rhai_fn(get = "xml_inactive", pure, return_raw)]
    pub fn xml_inactive(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<String> {
        config_xml(&net.raw).script(&ctx)
    }

    /// The persistent config as a map, in the same shape `edit` and the full
    /// forms of a spec use: `name`, `uuid`, `forward` (`mode`, `dev`, `nat`,
    /// `interfaces`, `pf`, `addresses`), `bridge` (`name`, `stp`, `delay`,
    /// `mac_table_manager`), `mtu`, `domain`, `mac`, `dns` (`forwarders`, `txt`,
    /// `srv`, `hosts`), `ips` (`family`, `address`, `netmask`/`prefix`,
    /// `local_ptr`, `tftp`, `dhcp` with `ranges`, `hosts`, `bootp`), `routes`,
    /// `portgroups`, `virtualport`, `bandwidth`, `vlan`, `metadata`...
    /// Absent parts are `()`.
    ///
    /// ```rhai
    /// let cfg = HOST.network("default").config;
    /// assert_eq(cfg.forward.mode, "nat");
    /// assert_eq(cfg.ips[0].address, "192.168.122.1");
    /// assert_eq(cfg.ips[0].dhcp.ranges[0].start, "192.168.122.2");
    /// ```
    #[rhai_fn(get = "config", pure, return_raw)]
    pub fn config(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<Dynamic> {
        let xml = config_xml(&net.raw).script(&ctx)?;
        let def = NetworkDef::parse(&xml).at(&ctx)?;
        to_map(&ctx, &def)
    }

    /// What `virsh net-info` shows: `name`, `uuid`, `active`, `persistent`,
    /// `autostart`, `bridge`.
    ///
    /// ```rhai
    /// let i = HOST.network("default").info();
    /// assert(i.active && i.persistent);
    /// assert_eq(i.bridge, "virbr0");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn info(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<Map> {
        let mut m = Map::new();
        m.insert("name".into(), net.name().into());
        m.insert("uuid".into(), net.raw.uuid_string().script(&ctx)?.into());
        m.insert("active".into(), net.raw.is_active().script(&ctx)?.into());
        m.insert(
            "persistent".into(),
            net.raw.is_persistent().script(&ctx)?.into(),
        );
        m.insert("autostart".into(), net.raw.autostart().script(&ctx)?.into());
        m.insert("bridge".into(), bridge(net));
        Ok(m)
    }

    /// The DHCP leases handed out on the network (`virsh net-dhcp-leases`): maps
    /// with `interface`, `mac`, `ip`, `prefix`, `type` ("ipv4"/"ipv6"),
    /// `hostname`, `client_id`, `iaid`, `expiry` (seconds since the epoch) and
    /// `expiry_time` (RFC 3339). Drivers without DHCP (the test driver) have none.
    ///
    /// ```rhai
    /// let leases = HOST.network("default").leases();
    /// for l in leases {
    ///     print(`${l.mac} ${l.ip}/${l.prefix} ${l.hostname}`);
    /// }
    /// assert_eq(leases, []);   // the test driver's dnsmasq has handed out none
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn leases(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<Array> {
        match crate::virt_ext::network::dhcp_leases(&net.raw, None) {
            Ok(leases) => Ok(leases.into_iter().map(|l| lease_map(l).into()).collect()),
            Err(e) if e.code() == ErrorNumber::NoSupport.into() => Ok(Array::new()),
            Err(e) => Err(e).script(&ctx),
        }
    }

    /// `Network(name, active)` / `Network(name, inactive)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(net: &mut Network) -> String {
        let state = if net.raw.is_active().unwrap_or(false) {
            "active"
        } else {
            "inactive"
        };
        format!("Network({}, {state})", net.name())
    }
}
