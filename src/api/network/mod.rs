//! `Network` script object: libvirt virtual networks (`virsh net-*`).
//!
//! Specs from scripts become [`NetworkDef`]s (src/xml/network.rs), are
//! validated there and against the other networks on the host, and only then
//! reach libvirt. Edits of existing networks go through [`NetworkDoc`] so no
//! part of their XML that we do not model is dropped.
pub mod live;
pub mod occupancy;
pub mod spec;
pub mod validate;

use crate::runtime::ErrorKind;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rhai::plugin::*;
use rhai::{Array, Dynamic, FnPtr, Map, NativeCallContext};
use virt::error::{Error as VirtError, ErrorNumber};
use virt::network::Network as RawNetwork;
use virt::sys;

use super::args::from_map;
use super::error::{LibvirtResultExt, ScriptError, ScriptResult};
use super::Host;
use crate::runtime::journal::{self, Undo};
use crate::xml::metadata as meta;
use crate::xml::network::{
    write_dhcp_host, write_dhcp_range, write_dns_host, write_dns_srv, write_dns_txt,
    write_portgroup, DhcpHost, DhcpRange, DnsHost, DnsSrv, DnsTxt, NetworkDef, NetworkDoc,
    PortGroup,
};
use crate::xml::tree::Element;
use crate::xml::FieldError;
use live::{
    changed_keys, live_changes, not_taken, overlay, LiveChange, UpdateCommand, UpdateSection,
};
use occupancy::{Occupancy, Occupied};
use spec::{normalize_dhcp_host, NetworkSpec, DEF_KEYS, SPEC_KEYS};
use validate::{network_string, Subnet};

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

// ---------------------------------------------------------------------------
// Helpers shared by the functions below
// ---------------------------------------------------------------------------

fn field_error(ctx: &NativeCallContext, e: FieldError) -> Box<EvalAltResult> {
    ScriptError::invalid(&e.field, &e.value, &e.problem).at(ctx)
}

fn xml_error(ctx: &NativeCallContext, e: impl std::fmt::Display) -> Box<EvalAltResult> {
    ScriptError::new(ErrorKind::Xml, format!("network XML: {e}")).at(ctx)
}

/// libvirt refused to `verb` network `name`: its error, naming the network
/// (`field: name`), since libvirt's own text often does not.
fn refused(ctx: &NativeCallContext, verb: &str, name: &str, e: &VirtError) -> Box<EvalAltResult> {
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
        .at(ctx)
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
    NetworkDef::parse(&xml).map_err(|e| xml_error(ctx, e))
}

/// What the networks on each host occupy (subnets, bridges): per URI, by name.
/// Filled from libvirt for networks we have not seen and kept up to date by our
/// own defines, so validating a new network costs a listing of names, not a
/// re-read of every other network (listing network objects is costly too:
/// libvirt formats each one's UUID for a debug message when it is freed).
/// A network redefined by another client keeps its old entry until it is
/// undefined, and the cache is trusted while the host has as many networks as
/// it holds: validation against other clients' concurrent changes is best
/// effort (libvirt still refuses real conflicts when a network starts).
///
/// `test:///default` lives inside this process, so no other client can change
/// it: there the cache is trusted without counting (counting walks every
/// network), and a clash it reports is confirmed against libvirt before a
/// define is refused, since networks removed since stay cached.
type OccupiedCache = HashMap<String, Occupancy>;
static OCCUPIED: Mutex<Option<OccupiedCache>> = Mutex::new(None);

/// Calls `f` with what `host`'s networks occupy, by name (under the cache's
/// lock: `f` must not call libvirt).
fn with_occupied<R>(host: &Host, f: impl FnOnce(&Occupancy) -> R) -> Result<R, VirtError> {
    let trusted = cache_is_authoritative(host.uri());
    // Fast path: as many networks as we know of, so (short of another client
    // swapping one for another in between) the cache is current.
    let count = if trusted {
        None
    } else {
        Some(
            host.conn().num_of_networks()? as usize
                + host.conn().num_of_defined_networks()? as usize,
        )
    };
    {
        let guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cache) = guard.as_ref().and_then(|c| c.get(host.uri())) {
            if count.is_none_or(|count| cache.len() == count) {
                return Ok(f(cache));
            }
        }
    }
    let mut names = host.conn().list_networks()?;
    names.extend(host.conn().list_defined_networks()?);
    let mut guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard
        .get_or_insert_with(HashMap::new)
        .entry(host.uri().to_owned())
        .or_default();
    for name in &names {
        if cache.contains(name) {
            continue;
        }
        // Gone since listed: nothing to check against.
        let Some(net) = lookup(host, name)? else {
            continue;
        };
        let xml = match net.xml_desc(0) {
            Ok(xml) => xml,
            Err(e) if e.code() == ErrorNumber::NoNetwork.into() => continue,
            Err(e) => return Err(e),
        };
        cache.insert(match NetworkDef::parse(&xml) {
            Ok(def) => Occupied::of(&def),
            Err(_) => Occupied {
                name: name.clone(),
                bridge: None,
                subnets: Vec::new(),
            },
        });
    }
    // Drop what is no longer listed: now exactly the listed networks that
    // still exist (a count alone can hide a removed network behind one that
    // was listed and is gone again).
    let listed: HashSet<&str> = names.iter().map(String::as_str).collect();
    cache.retain(|name| listed.contains(name));
    Ok(f(cache))
}

/// Whether our own defines are the only changes `uri`'s networks see: true for
/// `test:///default`, one test driver inside this process shared by all its
/// connections here. (Not every `host::in_process` URI: each connection to a
/// `test:///file.xml` gets a driver of its own, while this cache is per URI.)
fn cache_is_authoritative(uri: &str) -> bool {
    uri == "test:///default"
}

/// Forget what `host`'s networks occupy: the next check re-reads them all.
fn invalidate(host: &Host) {
    let mut guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cache) = guard.as_mut() {
        cache.remove(host.uri());
    }
}

/// Why `def` cannot be defined next to the other networks.
enum Clash {
    /// Another network has this name (only for new networks).
    Name,
    Field(FieldError),
}

/// The first clash of `def` with the other networks on its host. A clash found
/// in a trusted cache (see [`OCCUPIED`]) is confirmed on freshly read networks.
fn find_clash(host: &Host, def: &NetworkDef, new: bool) -> Result<Option<Clash>, VirtError> {
    let clash_in = |others: &Occupancy| {
        if new && others.contains(&def.name) {
            return Some(Clash::Name);
        }
        others.check(def).err().map(Clash::Field)
    };
    let clash = with_occupied(host, clash_in)?;
    if clash.is_none() || !cache_is_authoritative(host.uri()) {
        return Ok(clash);
    }
    invalidate(host);
    with_occupied(host, clash_in)
}

/// A clash as a script error, named by the spec's key when there is a spec.
fn clash_error(
    ctx: &NativeCallContext,
    e: FieldError,
    spec: Option<&NetworkSpec>,
) -> Box<EvalAltResult> {
    field_error(
        ctx,
        match spec {
            Some(s) => s.field_name(e),
            None => e,
        },
    )
}

fn remember(host: &Host, def: &NetworkDef) {
    let mut guard = OCCUPIED.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(HashMap::new)
        .entry(host.uri().to_owned())
        .or_default()
        .insert(Occupied::of(def));
}

/// The spec map as a typed spec and the document it describes, validated.
fn spec_of(ctx: &NativeCallContext, map: &Map) -> ScriptResult<(NetworkSpec, NetworkDef)> {
    let spec: NetworkSpec = from_map(ctx, "network spec", map, SPEC_KEYS)?;
    if spec.name.trim().is_empty() {
        return Err(ScriptError::invalid("name", &spec.name, "a network needs a name").at(ctx));
    }
    let def = spec.to_def().map_err(|e| field_error(ctx, e))?;
    Ok((spec, def))
}

/// Checks against the host before `def` is defined: its subnets and bridge
/// do not clash with another network, and, for a `new` network (not one
/// being changed), its name is free.
fn check_clash(
    ctx: &NativeCallContext,
    host: &Host,
    def: &NetworkDef,
    spec: Option<&NetworkSpec>,
    new: bool,
) -> ScriptResult<()> {
    match find_clash(host, def, new).script(ctx)? {
        None => Ok(()),
        Some(Clash::Name) => Err(ScriptError::invalid(
            "name",
            &def.name,
            format!(
                "a network with this name already exists on {} (use ensure_network or edit to change it)",
                host.uri()
            ),
        )
        .at(ctx)),
        Some(Clash::Field(e)) => Err(clash_error(ctx, e, spec)),
    }
}

/// The bridge device a failed start found already there, when no active
/// network uses it: libvirt's "error creating bridge interface X: File exists".
fn stale_bridge(net: &Network, e: &VirtError) -> Option<String> {
    let msg = e.message();
    let dev = msg
        .split("error creating bridge interface ")
        .nth(1)?
        .split(':')
        .next()?
        .trim()
        .to_owned();
    if !msg.contains("File exists") {
        return None;
    }
    let active = net
        .host
        .conn()
        .list_all_networks(sys::VIR_CONNECT_LIST_NETWORKS_ACTIVE)
        .ok()?;
    let used = active
        .iter()
        .any(|n| n.bridge_name().is_ok_and(|b| b == dev));
    (!used).then_some(dev)
}

/// The undo step of a redefinition: the earlier config back, and the overlap
/// cache, which described the new one, dropped.
fn undo_redefine(host: Host, xml: String) -> Undo {
    Box::new(move || {
        host.conn().define_network_xml(&xml)?;
        invalidate(&host);
        Ok(())
    })
}

fn undo_define(net: Arc<RawNetwork>) -> Undo {
    Box::new(move || {
        if net.is_active()? {
            net.destroy()?;
        }
        net.undefine()
    })
}

fn define_xml(
    ctx: &NativeCallContext,
    host: &Host,
    xml: &str,
    def: &NetworkDef,
) -> ScriptResult<Network> {
    let raw = Arc::new(
        host.conn()
            .define_network_xml(xml)
            .map_err(|e| refused(ctx, "define", &def.name, &e))?,
    );
    journal::record_with("define_network", format!("network {}", def.name), || {
        Some(undo_define(raw.clone()))
    });
    remember(host, def);
    Ok(Network {
        host: host.clone(),
        raw,
    })
}

fn start(ctx: &NativeCallContext, net: &Network) -> ScriptResult<()> {
    start_with(ctx, net, false)
}

/// Start the network; when its bridge device is already there and no active
/// network owns it (a daemon killed while starting it leaves it behind), say
/// so, or with `cleanup_stale` remove it and start.
fn start_with(ctx: &NativeCallContext, net: &Network, cleanup_stale: bool) -> ScriptResult<()> {
    if let Err(e) = net.raw.create() {
        let bridge = stale_bridge(net, &e);
        match bridge {
            Some(dev) if cleanup_stale => {
                crate::virt_ext::network::delete_stale_bridge(net.host.uri(), &dev).map_err(
                    |why| {
                        ScriptError::new(
                            ErrorKind::StaleBridge,
                            format!(
                                "network '{}': cannot remove the stale bridge {dev}: {why}",
                                net.name()
                            ),
                        )
                        .with("field", "bridge.name")
                        .with("value", dev.clone())
                        .at(ctx)
                    },
                )?;
                journal::record("remove_stale_bridge", format!("bridge {dev}"), None);
                net.raw.create().script(ctx)?;
            }
            Some(dev) => {
                return Err(ScriptError::new(
                    ErrorKind::StaleBridge,
                    format!(
                        "network '{}' cannot start: its bridge device {dev} already exists and no active network uses it (left by a libvirtd that stopped while starting it?). Remove it with `ip link delete {dev}` where libvirtd runs, or pass cleanup_stale: true to ensure_network",
                        net.name()
                    ),
                )
                .with("field", "bridge.name")
                .with("value", dev)
                .at(ctx));
            }
            None => return Err(ScriptError::libvirt(&e).at(ctx)),
        }
    }
    journal::record_with("start_network", net.label(), || {
        let n = net.raw.clone();
        Some(Box::new(move || n.destroy()))
    });
    Ok(())
}

fn set_autostart(ctx: &NativeCallContext, net: &Network, on: bool) -> ScriptResult<()> {
    let before = net.raw.autostart().script(ctx)?;
    net.raw.set_autostart(on).script(ctx)?;
    journal::record_with("set_autostart", format!("{} = {on}", net.label()), || {
        let n = net.raw.clone();
        Some(Box::new(move || n.set_autostart(before).map(|_| ())))
    });
    Ok(())
}

fn stop_network(ctx: &NativeCallContext, net: &Network) -> ScriptResult<()> {
    // What the undo step needs is only read when an open transaction may use it.
    let undo: Option<Undo> = if journal::wants_undo() {
        let (n, host) = (net.raw.clone(), net.host.clone());
        Some(if net.raw.is_persistent().script(ctx)? {
            Box::new(move || n.create())
        } else {
            let xml = net.raw.xml_desc(0).script(ctx)?;
            Box::new(move || host.conn().create_network_xml(&xml).map(|_| ()))
        })
    } else {
        None
    };
    net.raw.destroy().script(ctx)?;
    journal::record("stop_network", net.label(), undo);
    Ok(())
}

fn restart(ctx: &NativeCallContext, net: &Network) -> ScriptResult<()> {
    if !net.raw.is_persistent().script(ctx)? {
        return Err(ScriptError::new(
            ErrorKind::Invalid,
            format!(
                "network '{}' is transient: stopping it would remove it, so it cannot be restarted",
                net.name()
            ),
        )
        .at(ctx));
    }
    if net.raw.is_active().script(ctx)? {
        net.raw.destroy().script(ctx)?;
    }
    net.raw.create().script(ctx)?;
    journal::record("restart_network", net.label(), None);
    Ok(())
}

fn to_map<T: serde::Serialize>(ctx: &NativeCallContext, value: &T) -> ScriptResult<Dynamic> {
    rhai::serde::to_dynamic(value)
        .map_err(|e| ScriptError::new(ErrorKind::Internal, e.to_string()).at(ctx))
}

fn libvirt_section(s: UpdateSection) -> sys::virNetworkUpdateSection {
    match s {
        UpdateSection::IpDhcpHost => sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
        UpdateSection::IpDhcpRange => sys::VIR_NETWORK_SECTION_IP_DHCP_RANGE,
        UpdateSection::DnsHost => sys::VIR_NETWORK_SECTION_DNS_HOST,
        UpdateSection::DnsTxt => sys::VIR_NETWORK_SECTION_DNS_TXT,
        UpdateSection::DnsSrv => sys::VIR_NETWORK_SECTION_DNS_SRV,
        UpdateSection::ForwardInterface => sys::VIR_NETWORK_SECTION_FORWARD_INTERFACE,
        UpdateSection::Portgroup => sys::VIR_NETWORK_SECTION_PORTGROUP,
    }
}

/// The argument an update's record came from, for errors.
fn section_field(s: UpdateSection) -> &'static str {
    match s {
        UpdateSection::IpDhcpHost => "dhcp_host",
        UpdateSection::IpDhcpRange => "dhcp_range",
        UpdateSection::DnsHost => "dns_host",
        UpdateSection::DnsTxt => "dns_txt",
        UpdateSection::DnsSrv => "dns_srv",
        UpdateSection::ForwardInterface => "forward_interface",
        UpdateSection::Portgroup => "portgroup",
    }
}

fn libvirt_command(c: UpdateCommand) -> sys::virNetworkUpdateCommand {
    match c {
        UpdateCommand::Add => sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
        UpdateCommand::Delete => sys::VIR_NETWORK_UPDATE_COMMAND_DELETE,
        UpdateCommand::Modify => sys::VIR_NETWORK_UPDATE_COMMAND_MODIFY,
    }
}

/// `virNetworkUpdate` on the running network and its persistent config
/// (live + config when active and persistent; live only for a transient one;
/// config only when inactive), journalled with its inverse.
fn apply_live(ctx: &NativeCallContext, net: &Network, change: &LiveChange) -> ScriptResult<()> {
    let active = net.raw.is_active().script(ctx)?;
    let persistent = net.raw.is_persistent().script(ctx)?;
    let mut flags = 0;
    if active {
        flags |= sys::VIR_NETWORK_UPDATE_AFFECT_LIVE;
    }
    if persistent {
        flags |= sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG;
    }
    let section = libvirt_section(change.section);
    let index = change.parent_index;
    let entry = change.xml.to_xml();
    net.raw
        .update(
            libvirt_command(change.command),
            section,
            index,
            &entry,
            flags,
        )
        .map_err(|e| {
            // libvirt's text names neither the record nor the network.
            let err = ScriptError::libvirt(&e);
            let message = format!(
                "network '{}': libvirt refused the update \"{}\": {}",
                net.name(),
                change.description,
                e.message()
            );
            err.with("message", message)
                .with("field", section_field(change.section))
                .with("value", entry.clone())
                .at(ctx)
        })?;
    let n = net.raw.clone();
    let (undo_cmd, undo_xml) = (libvirt_command(change.undo.0), change.undo.1.to_xml());
    journal::record(
        "update_network",
        format!("{}: {}", net.label(), change.description),
        Some(Box::new(move || {
            n.update(undo_cmd, section, index, &undo_xml, flags)
        })),
    );
    Ok(())
}

fn live_change(
    command: UpdateCommand,
    section: UpdateSection,
    parent_index: i32,
    xml: Element,
    undo: (UpdateCommand, Element),
    description: String,
) -> LiveChange {
    LiveChange {
        command,
        section,
        parent_index,
        xml,
        undo,
        description,
    }
}

/// The `<ip>` (index, subnet) that holds `address`, else an error naming `field`.
fn ip_for(
    ctx: &NativeCallContext,
    net: &Network,
    def: &NetworkDef,
    field: &str,
    address: &str,
) -> ScriptResult<(usize, Subnet)> {
    let a: std::net::IpAddr = address
        .parse()
        .map_err(|_| ScriptError::invalid(field, address, "not an IP address").at(ctx))?;
    def.ips
        .iter()
        .enumerate()
        .find_map(|(i, ip)| ip.subnet().filter(|s| s.contains(&a)).map(|s| (i, s)))
        .ok_or_else(|| {
            let subnets: Vec<String> = def
                .ips
                .iter()
                .filter_map(|ip| ip.subnet().map(|s| network_string(&s)))
                .collect();
            ScriptError::invalid(
                field,
                address,
                format!(
                    "outside every subnet of network '{}' ({})",
                    net.name(),
                    if subnets.is_empty() {
                        "it has no addresses".to_owned()
                    } else {
                        subnets.join(", ")
                    }
                ),
            )
            .at(ctx)
        })
}

fn dhcp_host_of(ctx: &NativeCallContext, map: &Map) -> ScriptResult<DhcpHost> {
    let h: DhcpHost = from_map(ctx, "DHCP host", map, &["mac", "id", "name", "ip", "lease"])?;
    Ok(normalize_dhcp_host(&h))
}

fn same_key(a: &DhcpHost, b: &DhcpHost) -> bool {
    (a.mac.is_some() && a.mac == b.mac) || (a.mac.is_none() && a.id.is_some() && a.id == b.id)
}

/// The index of the `<ip>` for a DHCP host, and the host validated against it.
fn place_dhcp_host(
    ctx: &NativeCallContext,
    net: &Network,
    def: &NetworkDef,
    h: &DhcpHost,
) -> ScriptResult<usize> {
    let (i, subnet) = match &h.ip {
        Some(ip) => ip_for(ctx, net, def, "dhcp_host.ip", ip)?,
        None => def
            .ips
            .iter()
            .enumerate()
            .find_map(|(i, ip)| {
                (!ip.is_ipv6())
                    .then(|| ip.subnet().map(|s| (i, s)))
                    .flatten()
            })
            .ok_or_else(|| {
                ScriptError::invalid("dhcp_host", "", "the network has no IPv4 address").at(ctx)
            })?,
    };
    validate::dhcp_host("dhcp_host", h, &subnet).map_err(|e| field_error(ctx, e))?;
    Ok(i)
}

fn hosts_of(def: &NetworkDef, i: usize) -> Vec<DhcpHost> {
    def.ips[i]
        .dhcp
        .as_ref()
        .map(|d| d.hosts.clone())
        .unwrap_or_default()
}

/// The reservation of another host that holds `h`'s IP, if any.
fn ip_taken<'a>(hosts: &'a [DhcpHost], h: &DhcpHost) -> Option<&'a DhcpHost> {
    h.ip.as_ref()?;
    hosts.iter().find(|o| o.ip == h.ip && !same_key(o, h))
}

fn host_label(h: &DhcpHost) -> String {
    h.mac
        .clone()
        .or_else(|| h.id.clone())
        .or_else(|| h.name.clone())
        .unwrap_or_default()
}

fn dns_host_of(ctx: &NativeCallContext, map: &Map) -> ScriptResult<DnsHost> {
    let mut h: DnsHost = from_map(ctx, "DNS host", map, &["ip", "hostnames"])?;
    h.ip =
        h.ip.parse::<std::net::IpAddr>()
            .map_err(|_| ScriptError::invalid("dns_host.ip", &h.ip, "not an IP address").at(ctx))?
            .to_string();
    if h.hostnames.is_empty() {
        return Err(
            ScriptError::invalid("dns_host.hostnames", "[]", "give at least one name").at(ctx),
        );
    }
    for (i, name) in h.hostnames.iter().enumerate() {
        validate::dns_name(&format!("dns_host.hostnames[{i}]"), name)
            .map_err(|e| field_error(ctx, e))?;
    }
    Ok(h)
}

fn parse_range(
    ctx: &NativeCallContext,
    net: &Network,
    def: &NetworkDef,
    start: &str,
    end: &str,
) -> ScriptResult<(usize, DhcpRange)> {
    let (i, subnet) = ip_for(ctx, net, def, "dhcp_range.start", start)?;
    let e: std::net::IpAddr = end
        .parse()
        .map_err(|_| ScriptError::invalid("dhcp_range.end", end, "not an IP address").at(ctx))?;
    if !subnet.contains(&e) {
        return Err(ScriptError::invalid(
            "dhcp_range.end",
            end,
            format!("outside the subnet {}", network_string(&subnet)),
        )
        .at(ctx));
    }
    let s: std::net::IpAddr = start.parse().map_err(|_| {
        ScriptError::invalid("dhcp_range.start", start, "not an IP address").at(ctx)
    })?;
    let order = |a: std::net::IpAddr| match a {
        std::net::IpAddr::V4(v) => u32::from(v) as u128,
        std::net::IpAddr::V6(v) => u128::from(v),
    };
    if order(s) > order(e) {
        return Err(ScriptError::invalid(
            "dhcp_range",
            format!("{start}-{end}"),
            "the range is reversed: start is after end",
        )
        .at(ctx));
    }
    Ok((
        i,
        DhcpRange {
            start: s.to_string(),
            end: e.to_string(),
            lease: None,
        },
    ))
}

/// Which of a network's documents a change should show in.
#[derive(Clone, Copy, PartialEq)]
enum Config {
    /// The one the next start uses (`--inactive`).
    Persistent,
    /// The running one.
    Live,
}

/// Read back what a redefinition or restart changed: every key that differs
/// between `before` and `target` must now be as in `target`. A driver that
/// keeps no separate persistent config of a running network (the test
/// driver) drops a redefinition silently; that is an error, not "updated".
fn check_taken(
    ctx: &NativeCallContext,
    net: &Network,
    before: &NetworkDef,
    target: &NetworkDef,
    which: Config,
) -> ScriptResult<()> {
    let xml = match which {
        Config::Persistent => config_xml(&net.raw),
        Config::Live => net.raw.xml_desc(0),
    }
    .script(ctx)?;
    let now = NetworkDef::parse(&xml).map_err(|e| xml_error(ctx, e))?;
    let missing = not_taken(before, target, &now);
    if missing.is_empty() {
        return Ok(());
    }
    let keys = missing.join(", ");
    Err(ScriptError::new(
        ErrorKind::NotApplied,
        format!(
            "network '{}': libvirt kept the old {keys} in its {} config ({})",
            net.name(),
            if which == Config::Live { "running" } else { "persistent" },
            if which == Config::Live {
                "the restart did not bring the new config up"
            } else {
                "the redefinition did not take; a driver that keeps no separate persistent config of a running network, like the test driver, drops it: stop the network, change it, start it"
            }
        ),
    )
    .with("field", keys)
    .with("value", net.name())
    .at(ctx))
}

/// `ensure_network` on an existing network: bring its config to `desired`.
fn converge(
    ctx: &NativeCallContext,
    net: &Network,
    spec: &NetworkSpec,
    desired: &NetworkDef,
    changes: &mut Array,
) -> ScriptResult<bool> {
    let xml = config_xml(&net.raw).script(ctx)?;
    let mut doc = NetworkDoc::parse(&xml).map_err(|e| xml_error(ctx, e))?;
    let actual = doc.def().clone();
    if let (Some(want), Some(have)) = (&desired.uuid, &actual.uuid) {
        if !want.eq_ignore_ascii_case(have) {
            return Err(ScriptError::invalid(
                "uuid",
                want,
                format!("network '{}' already exists with uuid {have}", actual.name),
            )
            .at(ctx));
        }
    }
    let target = overlay(&actual, desired);
    let updates = live_changes(&actual, &target);
    if matches!(&updates, Some(u) if u.is_empty()) {
        return Ok(false);
    }
    validate::network(&target).map_err(|e| field_error(ctx, spec.field_name(e)))?;
    check_clash(ctx, &net.host, &target, Some(spec), false)?;
    let active = net.raw.is_active().script(ctx)?;
    match updates {
        Some(updates) => {
            for u in &updates {
                apply_live(ctx, net, u)?;
                changes.push(u.description.clone().into());
            }
            remember(&net.host, &target);
            Ok(false)
        }
        None => {
            let keys = changed_keys(&actual, &target).join(", ");
            doc.set_def(target.clone());
            net.host
                .conn()
                .define_network_xml(&doc.to_xml())
                .script(ctx)?;
            journal::record(
                "define_network",
                format!("{} (redefined: {keys})", net.label()),
                Some(undo_redefine(net.host.clone(), xml)),
            );
            remember(&net.host, &target);
            check_taken(ctx, net, &actual, &target, Config::Persistent)?;
            changes.push(format!("redefined ({keys})").into());
            if active {
                if spec.restart == Some(true) {
                    restart(ctx, net)?;
                    check_taken(ctx, net, &actual, &target, Config::Live)?;
                    changes.push("restarted".into());
                } else {
                    changes.push(
                        format!("restart needed for {keys} to take effect (pass restart: true)")
                            .into(),
                    );
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// A metadata argument: an XML element (string) or `()` (remove), parsed,
/// for namespace `ns_uri` (a URI: libvirt keeps nothing under an empty one).
pub fn metadata_arg(
    ctx: &NativeCallContext,
    ns_uri: &str,
    xml: &Dynamic,
) -> ScriptResult<Option<(Option<String>, Element)>> {
    if !ns_uri.contains(':') || ns_uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ScriptError::invalid(
            "ns_uri",
            ns_uri,
            "must be a namespace URI (like https://example.org/app)",
        )
        .at(ctx));
    }
    if xml.is_unit() {
        return Ok(None);
    }
    let Some(text) = xml
        .read_lock::<rhai::ImmutableString>()
        .map(|s| s.to_string())
    else {
        return Err(ScriptError::invalid(
            "xml",
            xml.type_name(),
            "expected an XML element as a string, or () to remove",
        )
        .at(ctx));
    };
    meta::parse_element(&text).map(Some).map_err(|e| {
        ScriptError::invalid("xml", &text, format!("not one XML element: {e}")).at(ctx)
    })
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

/// `ensure_network`'s steps (see there); the caller makes them one unit.
fn ensure(ctx: &NativeCallContext, host: &Host, spec: &Map) -> ScriptResult<Map> {
    let (spec, desired) = spec_of(ctx, spec)?;
    let mut changes = Array::new();
    let mut created = false;
    let mut restart_needed = false;
    let net = match lookup(host, &desired.name).script(ctx)? {
        None => {
            check_clash(ctx, host, &desired, Some(&spec), true)?;
            created = true;
            changes.push("defined".into());
            define_xml(ctx, host, &desired.to_xml(), &desired)?
        }
        Some(raw) => {
            let net = super::Network {
                host: host.clone(),
                raw: raw.into(),
            };
            restart_needed = converge(ctx, &net, &spec, &desired, &mut changes)?;
            net
        }
    };
    if let Some(on) = spec.autostart {
        if net.raw.autostart().script(ctx)? != on {
            set_autostart(ctx, &net, on)?;
            changes.push(format!("autostart {}", if on { "on" } else { "off" }).into());
        }
    }
    let want_active = spec.active.unwrap_or(true);
    if net.raw.is_active().script(ctx)? != want_active {
        if want_active {
            start_with(ctx, &net, spec.cleanup_stale == Some(true))?;
            changes.push("started".into());
        } else {
            stop_network(ctx, &net)?;
            changes.push("stopped".into());
        }
    }
    let action = match (created, changes.is_empty()) {
        (true, _) => "created",
        (false, true) => "unchanged",
        (false, false) => "updated",
    };
    let mut m = Map::new();
    m.insert("action".into(), action.into());
    m.insert("changes".into(), changes.into());
    m.insert("restart_needed".into(), restart_needed.into());
    m.insert("network".into(), Dynamic::from(net));
    Ok(m)
}

#[export_module(manifest)]
pub mod network_api {
    use super::*;

    pub type Network = super::Network;

    // -- Host: finding and creating networks ---------------------------------

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
        validate::no_control("name", name).map_err(|e| field_error(&ctx, e))?;
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
        validate::no_control("name", name).map_err(|e| field_error(&ctx, e))?;
        Ok(match lookup(host, name).script(&ctx)? {
            Some(raw) => Dynamic::from(super::Network {
                host: host.clone(),
                raw: raw.into(),
            }),
            None => Dynamic::UNIT,
        })
    }

    /// Define a persistent network from a spec map (`virsh net-define`); it is
    /// not started. Shorthands: `forward: "nat"` (also `"route"`, `"open"`,
    /// `"bridge"`, ...; none or `"isolated"` for an isolated network),
    /// `bridge: "virbr10"` (or `#{ name, stp, delay, mac_table_manager }`),
    /// `ip: "192.168.10.1/24"`, `dhcp: [start, end]`,
    /// `dhcp_hosts: [#{ mac, ip, name }]`, `domain: "lab.example"`, `mtu`,
    /// `autostart`. Every part of the XML has a full form too (`ips`, `routes`,
    /// `dns`, `portgroups`, `virtualport`, `bandwidth`, `vlan`, `forward: #{ mode,
    /// dev, nat, interfaces, pf }`...); see `config`. Everything is validated
    /// first: bad addresses, DHCP ranges outside the subnet, a subnet that
    /// overlaps another network, bridge names over 15 characters, a name in use.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{
    ///     name: "lab", forward: "nat", bridge: #{ name: "virbr10", stp: true, delay: 0 },
    ///     ip: "192.168.10.1/24", dhcp: ["192.168.10.2", "192.168.10.254"],
    /// });
    /// assert(!net.active);
    /// assert(net.persistent);
    /// assert(net.xml.contains("<range start='192.168.10.2' end='192.168.10.254'/>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn define_network(
        ctx: NativeCallContext,
        host: &mut Host,
        spec: Map,
    ) -> ScriptResult<Network> {
        let (spec, def) = spec_of(&ctx, &spec)?;
        check_clash(&ctx, host, &def, Some(&spec), true)?;
        let net = define_xml(&ctx, host, &def.to_xml(), &def)?;
        if let Some(on) = spec.autostart {
            set_autostart(&ctx, &net, on)?;
        }
        Ok(net)
    }

    /// Define a persistent network from XML text (`virsh net-define file.xml`),
    /// validated like a spec first.
    ///
    /// ```rhai
    /// let net = HOST.define_network_xml(`<network>
    ///   <name>fromxml</name>
    ///   <ip address='192.168.20.1' netmask='255.255.255.0'/>
    /// </network>`);
    /// assert_eq(net.name, "fromxml");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn define_network_xml(
        ctx: NativeCallContext,
        host: &mut Host,
        xml: &str,
    ) -> ScriptResult<Network> {
        let def = NetworkDef::parse(xml).map_err(|e| xml_error(&ctx, e))?;
        validate::network(&def).map_err(|e| field_error(&ctx, e))?;
        check_clash(&ctx, host, &def, None, true)?;
        define_xml(&ctx, host, xml, &def)
    }

    /// Create and start a transient network from a spec map (`virsh net-create`):
    /// it disappears when stopped.
    ///
    /// ```rhai
    /// let net = HOST.create_network(#{ name: "scratch", ip: "192.168.30.1/24" });
    /// assert(net.active);
    /// assert(!net.persistent);
    /// net.stop();
    /// assert(HOST.find_network("scratch") == ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn create_network(
        ctx: NativeCallContext,
        host: &mut Host,
        spec: Map,
    ) -> ScriptResult<Network> {
        let (spec, def) = spec_of(&ctx, &spec)?;
        if spec.autostart == Some(true) {
            return Err(ScriptError::invalid(
                "autostart",
                true,
                "a transient network cannot autostart (use define_network)",
            )
            .at(&ctx));
        }
        check_clash(&ctx, host, &def, Some(&spec), true)?;
        let raw = host
            .conn()
            .create_network_xml(&def.to_xml())
            .map_err(|e| refused(&ctx, "create", &def.name, &e))?;
        journal::record_with("create_network", format!("network {}", def.name), || {
            let n = raw.clone();
            Some(Box::new(move || n.destroy()))
        });
        remember(host, &def);
        Ok(super::Network {
            host: host.clone(),
            raw: raw.into(),
        })
    }

    /// Make the network match the spec, idempotently: define (and start) it if
    /// absent; otherwise compare the spec with its config and make the smallest
    /// change — live updates (DHCP hosts and ranges, DNS records, forward
    /// interfaces, port groups) without a restart where libvirt allows, else a
    /// redefinition that takes effect at the next start, or at once when the
    /// spec says `restart: true`. Only keys in the spec are compared (libvirt's
    /// defaults stay). `autostart` and `active` (default true) are ensured too.
    /// It is one unit: when a step fails, the steps before it are undone. A
    /// start that finds the bridge device already there with no active
    /// network using it (a daemon killed mid-start leaves one) is an error
    /// saying so; `cleanup_stale: true` removes that bridge and starts.
    /// Returns `#{ action: "created"|"updated"|"unchanged", changes: [...],
    /// restart_needed, network }`; a second run changes nothing.
    ///
    /// ```rhai
    /// let spec = #{ name: "lab", forward: "nat", ip: "192.168.10.1/24",
    ///               dhcp: ["192.168.10.2", "192.168.10.254"] };
    /// assert_eq(HOST.ensure_network(spec).action, "created");
    /// let before = mutation_count();
    /// assert_eq(HOST.ensure_network(spec).action, "unchanged");
    /// assert_eq(mutation_count(), before);
    /// spec.dhcp_hosts = [#{ mac: "52:54:00:00:00:10", ip: "192.168.10.10", name: "web" }];
    /// let r = HOST.ensure_network(spec);
    /// assert_eq(r.action, "updated");
    /// assert_eq(r.changes, ["DHCP host 52:54:00:00:00:10 added"]);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn ensure_network(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Map> {
        // One unit: a define that cannot start, or the third of five live
        // updates failing, leaves the network as it was.
        super::super::control::atomically(|| ensure(&ctx, host, &spec))
    }

    // -- Network: state --------------------------------------------------------

    /// The network's name.
    ///
    /// ```rhai
    /// assert_eq(HOST.network("default").name, "default");
    /// ```
    #[rhai_fn(get = "name", pure)]
    pub fn get_name(net: &mut Network) -> String {
        net.name()
    }

    /// The network's UUID.
    ///
    /// ```rhai
    /// assert_eq(HOST.network("default").uuid.len(), 36);
    /// ```
    #[rhai_fn(get = "uuid", pure, return_raw)]
    pub fn get_uuid(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<String> {
        net.raw.uuid_string().script(&ctx)
    }

    /// Whether the network is running.
    ///
    /// ```rhai
    /// assert(HOST.network("default").active);
    /// ```
    #[rhai_fn(get = "active", pure, return_raw)]
    pub fn get_active(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
        net.raw.is_active().script(&ctx)
    }

    /// Whether the network has a persistent config (`false` for `create_network`).
    ///
    /// ```rhai
    /// assert(HOST.network("default").persistent);
    /// ```
    #[rhai_fn(get = "persistent", pure, return_raw)]
    pub fn get_persistent(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
        net.raw.is_persistent().script(&ctx)
    }

    /// Whether the network starts when the host boots.
    ///
    /// ```rhai
    /// assert_eq(HOST.network("default").autostart, false);
    /// ```
    #[rhai_fn(get = "autostart", pure, return_raw)]
    pub fn get_autostart(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
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
    pub fn get_bridge(net: &mut Network) -> Dynamic {
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
    pub fn get_xml(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<String> {
        net.raw.xml_desc(0).script(&ctx)
    }

    /// The persistent config the next start uses (`virsh net-dumpxml --inactive`).
    ///
    /// ```rhai
    /// assert(HOST.network("default").xml_inactive.contains("<network"));
    /// ```
    #[rhai_fn(get = "xml_inactive", pure, return_raw)]
    pub fn get_xml_inactive(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<String> {
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
    pub fn get_config(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<Dynamic> {
        let xml = config_xml(&net.raw).script(&ctx)?;
        let def = NetworkDef::parse(&xml).map_err(|e| xml_error(&ctx, e))?;
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
        m.insert("bridge".into(), get_bridge(net));
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

    // -- Network: life cycle ---------------------------------------------------

    /// Start the network (`virsh net-start`).
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "lab", ip: "192.168.10.1/24" });
    /// net.start();
    /// assert(net.active);
    /// ```
    #[rhai_fn(name = "start", pure, return_raw)]
    pub fn start_net(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<()> {
        start(&ctx, net)
    }

    /// Stop the network (`virsh net-destroy`); a transient one disappears.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.stop();
    /// assert(!net.active);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn stop(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<()> {
        stop_network(&ctx, net)
    }

    /// Stop (if running) and start the network again, so that config changes
    /// take effect. Guests lose their connection to it until reattached.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.restart();
    /// assert(net.active);
    /// ```
    #[rhai_fn(name = "restart", pure, return_raw)]
    pub fn restart_net(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<()> {
        restart(&ctx, net)
    }

    /// Remove the persistent config (`virsh net-undefine`); a running network
    /// keeps running as transient until stopped.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "lab", ip: "192.168.10.1/24" });
    /// net.undefine();
    /// assert(HOST.find_network("lab") == ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn undefine(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<()> {
        // The config to restore is only read when an open transaction may need it.
        let xml = if journal::wants_undo() {
            Some(config_xml(&net.raw).script(&ctx)?)
        } else {
            None
        };
        net.raw.undefine().script(&ctx)?;
        journal::record(
            "undefine_network",
            net.label(),
            xml.map(|xml| undo_redefine(net.host.clone(), xml)),
        );
        Ok(())
    }

    /// Change the persistent config like `virsh net-edit`: the closure gets the
    /// config map (see `config`) and changes it in place (or returns a new map).
    /// The change is validated, and applied onto the XML so that parts not in
    /// the map are kept. Returns whether a restart is needed for it to take
    /// effect (the network is running and its live XML differs); `apply()` or
    /// `restart()` does that.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "lab", ip: "192.168.10.1/24",
    ///                                  dhcp: ["192.168.10.2", "192.168.10.254"] });
    /// let restart = net.edit(|cfg| {
    ///     cfg.ips[0].dhcp.ranges[0].start = "192.168.10.100";
    ///     cfg.bridge = #{ name: "virbr10", stp: false };
    /// });
    /// assert(!restart);   // not running: the next start uses it
    /// assert(net.xml_inactive.contains("start='192.168.10.100'"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn edit(ctx: NativeCallContext, net: &mut Network, f: FnPtr) -> ScriptResult<bool> {
        if !net.raw.is_persistent().script(&ctx)? {
            return Err(ScriptError::new(
                ErrorKind::Invalid,
                format!(
                    "network '{}' is transient: it has no persistent config to edit",
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let xml = config_xml(&net.raw).script(&ctx)?;
        let mut doc = NetworkDoc::parse(&xml).map_err(|e| xml_error(&ctx, e))?;
        let cfg = to_map(&ctx, doc.def())?.into_shared();
        let returned: Dynamic = f.call_within_context(&ctx, (cfg.clone(),))?;
        let edited = if returned.is_map() {
            returned
        } else {
            cfg.flatten_clone()
        };
        let Some(map) = edited.try_cast::<Map>() else {
            return Err(
                ScriptError::new(ErrorKind::Invalid, "edit: the config must stay a map").at(&ctx),
            );
        };
        let new: NetworkDef = from_map(&ctx, "network config", &map, DEF_KEYS)?;
        if new.name != doc.def().name {
            return Err(ScriptError::invalid(
                "name",
                &new.name,
                "a network cannot be renamed by editing; define a new one",
            )
            .at(&ctx));
        }
        if &new == doc.def() {
            return Ok(false);
        }
        let doc_before = doc.clone();
        validate::network(&new).map_err(|e| field_error(&ctx, e))?;
        check_clash(&ctx, &net.host, &new, None, false)?;
        doc.set_def(new.clone());
        net.host
            .conn()
            .define_network_xml(&doc.to_xml())
            .script(&ctx)?;
        journal::record(
            "define_network",
            format!("{} (edited)", net.label()),
            Some(undo_redefine(net.host.clone(), xml)),
        );
        remember(&net.host, &new);
        check_taken(&ctx, net, doc_before.def(), &new, Config::Persistent)?;
        if !net.raw.is_active().script(&ctx)? {
            return Ok(false);
        }
        let live = NetworkDef::parse(&net.raw.xml_desc(0).script(&ctx)?)
            .map_err(|e| xml_error(&ctx, e))?;
        Ok(live != new)
    }

    /// Make the persistent config live: restart the network if it is running
    /// and its live XML differs from the config. Returns whether it restarted.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// assert(!net.apply());   // nothing to apply
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn apply(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<bool> {
        if !net.raw.is_active().script(&ctx)? || !net.raw.is_persistent().script(&ctx)? {
            return Ok(false);
        }
        let parse = |xml: String| NetworkDef::parse(&xml).map_err(|e| xml_error(&ctx, e));
        let mut live = parse(net.raw.xml_desc(0).script(&ctx)?)?;
        let config = parse(config_xml(&net.raw).script(&ctx)?)?;
        // A running NAT network shows the port range libvirt chose (1024-65535)
        // where its config names none: that is no difference to apply.
        if let (Some(lf), Some(cf)) = (live.forward.as_mut(), config.forward.as_ref()) {
            let chosen = crate::xml::network::Nat {
                port: Some(crate::xml::network::PortRange {
                    start: 1024,
                    end: 65535,
                }),
                ..Default::default()
            };
            if cf.nat.is_none() && lf.nat.as_ref() == Some(&chosen) {
                lf.nat = None;
            }
        }
        if live == config {
            return Ok(false);
        }
        restart(&ctx, net)?;
        Ok(true)
    }

    // -- Network: live updates (virNetworkUpdate) --------------------------------

    /// Reserve an address for a guest: `#{ mac, ip, name }` (IPv6: `id` instead of
    /// `mac`). Applied to the running network and its config without a restart.
    /// Returns false if exactly this reservation exists; a different one for the
    /// same MAC, or the IP reserved for another MAC, or an IP outside the
    /// network's subnets, is an error.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// let h = #{ mac: "52:54:00:00:00:01", ip: "192.168.122.10", name: "web" };
    /// assert(net.add_dhcp_host(h));
    /// assert(!net.add_dhcp_host(h));   // already there
    /// assert(net.xml.contains("192.168.122.10"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn add_dhcp_host(
        ctx: NativeCallContext,
        net: &mut Network,
        host: Map,
    ) -> ScriptResult<bool> {
        let h = dhcp_host_of(&ctx, &host)?;
        let def = current_def(&ctx, net)?;
        let i = place_dhcp_host(&ctx, net, &def, &h)?;
        let hosts = hosts_of(&def, i);
        if hosts.contains(&h) {
            return Ok(false);
        }
        if let Some(old) = hosts.iter().find(|o| same_key(o, &h)) {
            let (field, value) = match &h.mac {
                Some(m) => ("dhcp_host.mac", m.clone()),
                None => ("dhcp_host.id", h.id.clone().unwrap_or_default()),
            };
            return Err(ScriptError::invalid(
                field,
                value,
                format!(
                    "already reserved on network '{}' as {} (use modify_dhcp_host to change it)",
                    net.name(),
                    write_dhcp_host(old).to_xml()
                ),
            )
            .at(&ctx));
        }
        if let Some(other) = ip_taken(&hosts, &h) {
            return Err(ScriptError::invalid(
                "dhcp_host.ip",
                h.ip.clone().unwrap_or_default(),
                format!(
                    "already reserved for {} on network '{}'",
                    host_label(other),
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let xml = write_dhcp_host(&h);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Add,
                UpdateSection::IpDhcpHost,
                i as i32,
                xml.clone(),
                (UpdateCommand::Delete, xml),
                format!("DHCP host {} added", host_label(&h)),
            ),
        )?;
        Ok(true)
    }

    /// Change an existing reservation (found by `mac`, or `id` for IPv6) without
    /// a restart. Returns false if it already is like that; an error if there is
    /// no reservation for that MAC or the new IP is taken.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.add_dhcp_host(#{ mac: "52:54:00:00:00:01", ip: "192.168.122.10" });
    /// assert(net.modify_dhcp_host(#{ mac: "52:54:00:00:00:01", ip: "192.168.122.11" }));
    /// assert(net.xml.contains("192.168.122.11"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn modify_dhcp_host(
        ctx: NativeCallContext,
        net: &mut Network,
        host: Map,
    ) -> ScriptResult<bool> {
        let h = dhcp_host_of(&ctx, &host)?;
        let def = current_def(&ctx, net)?;
        let i = place_dhcp_host(&ctx, net, &def, &h)?;
        let hosts = hosts_of(&def, i);
        let Some(old) = hosts.iter().find(|o| same_key(o, &h)) else {
            return Err(ScriptError::invalid(
                if h.mac.is_some() {
                    "dhcp_host.mac"
                } else {
                    "dhcp_host.id"
                },
                host_label(&h),
                format!("no DHCP reservation for it on network '{}'", net.name()),
            )
            .at(&ctx));
        };
        if *old == h {
            return Ok(false);
        }
        if let Some(other) = ip_taken(&hosts, &h) {
            return Err(ScriptError::invalid(
                "dhcp_host.ip",
                h.ip.clone().unwrap_or_default(),
                format!(
                    "already reserved for {} on network '{}'",
                    host_label(other),
                    net.name()
                ),
            )
            .at(&ctx));
        }
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Modify,
                UpdateSection::IpDhcpHost,
                i as i32,
                write_dhcp_host(&h),
                (UpdateCommand::Modify, write_dhcp_host(old)),
                format!("DHCP host {} changed", host_label(&h)),
            ),
        )?;
        Ok(true)
    }

    /// Remove the reservation of a MAC address. Returns false if there is none.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.add_dhcp_host(#{ mac: "52:54:00:00:00:01", ip: "192.168.122.10" });
    /// assert(net.remove_dhcp_host("52:54:00:00:00:01"));
    /// assert(!net.remove_dhcp_host("52:54:00:00:00:01"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn remove_dhcp_host(
        ctx: NativeCallContext,
        net: &mut Network,
        mac: &str,
    ) -> ScriptResult<bool> {
        let mac = mac.to_ascii_lowercase();
        let def = current_def(&ctx, net)?;
        for i in 0..def.ips.len() {
            if let Some(old) = hosts_of(&def, i).into_iter().find(|h| {
                h.mac.as_deref() == Some(mac.as_str()) || h.id.as_deref() == Some(mac.as_str())
            }) {
                let xml = write_dhcp_host(&old);
                apply_live(
                    &ctx,
                    net,
                    &live_change(
                        UpdateCommand::Delete,
                        UpdateSection::IpDhcpHost,
                        i as i32,
                        xml.clone(),
                        (UpdateCommand::Add, xml),
                        format!("DHCP host {mac} removed"),
                    ),
                )?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Add a DHCP range `start`..`end` in one of the network's subnets, without a
    /// restart. Returns false if it exists; overlapping another range is an error.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.remove_dhcp_range("192.168.122.2", "192.168.122.254");
    /// assert(net.add_dhcp_range("192.168.122.100", "192.168.122.199"));
    /// assert(!net.add_dhcp_range("192.168.122.100", "192.168.122.199"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn add_dhcp_range(
        ctx: NativeCallContext,
        net: &mut Network,
        start: &str,
        end: &str,
    ) -> ScriptResult<bool> {
        let def = current_def(&ctx, net)?;
        let (i, range) = parse_range(&ctx, net, &def, start, end)?;
        let ranges = def.ips[i]
            .dhcp
            .as_ref()
            .map(|d| d.ranges.clone())
            .unwrap_or_default();
        if ranges
            .iter()
            .any(|r| r.start == range.start && r.end == range.end)
        {
            return Ok(false);
        }
        let ord = |a: &str| -> u128 {
            match a.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(v)) => u32::from(v) as u128,
                Ok(std::net::IpAddr::V6(v)) => u128::from(v),
                Err(_) => 0,
            }
        };
        if let Some(r) = ranges
            .iter()
            .find(|r| ord(&r.start) <= ord(&range.end) && ord(&range.start) <= ord(&r.end))
        {
            return Err(ScriptError::invalid(
                "dhcp_range",
                format!("{start}-{end}"),
                format!(
                    "overlaps the range {}-{} of network '{}'",
                    r.start,
                    r.end,
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let xml = write_dhcp_range(&range);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Add,
                UpdateSection::IpDhcpRange,
                i as i32,
                xml.clone(),
                (UpdateCommand::Delete, xml),
                format!("DHCP range {start}-{end} added"),
            ),
        )?;
        Ok(true)
    }

    /// Remove the DHCP range `start`..`end`. Returns false if there is none.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// assert(net.remove_dhcp_range("192.168.122.2", "192.168.122.254"));
    /// assert(!net.remove_dhcp_range("192.168.122.2", "192.168.122.254"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn remove_dhcp_range(
        ctx: NativeCallContext,
        net: &mut Network,
        start: &str,
        end: &str,
    ) -> ScriptResult<bool> {
        let def = current_def(&ctx, net)?;
        let (i, range) = parse_range(&ctx, net, &def, start, end)?;
        let Some(old) = def.ips[i].dhcp.as_ref().and_then(|d| {
            d.ranges
                .iter()
                .find(|r| r.start == range.start && r.end == range.end)
        }) else {
            return Ok(false);
        };
        let xml = write_dhcp_range(old);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Delete,
                UpdateSection::IpDhcpRange,
                i as i32,
                xml.clone(),
                (UpdateCommand::Add, xml),
                format!("DHCP range {start}-{end} removed"),
            ),
        )?;
        Ok(true)
    }

    /// Add a DNS host record `#{ ip, hostnames: [...] }` without a restart.
    /// Returns false if exactly this record exists; other names for the same IP
    /// are an error.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// assert(net.add_dns_host(#{ ip: "192.168.122.10", hostnames: ["web", "www"] }));
    /// assert(!net.add_dns_host(#{ ip: "192.168.122.10", hostnames: ["web", "www"] }));
    /// assert(net.xml.contains("<hostname>www</hostname>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn add_dns_host(
        ctx: NativeCallContext,
        net: &mut Network,
        host: Map,
    ) -> ScriptResult<bool> {
        let h = dns_host_of(&ctx, &host)?;
        let def = current_def(&ctx, net)?;
        let existing = def.dns.map(|d| d.hosts).unwrap_or_default();
        if existing.contains(&h) {
            return Ok(false);
        }
        if let Some(old) = existing.iter().find(|o| o.ip == h.ip) {
            return Err(ScriptError::invalid(
                "dns_host.ip",
                &h.ip,
                format!(
                    "already has the names {:?} on network '{}' (remove_dns_host first)",
                    old.hostnames,
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let xml = write_dns_host(&h);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Add,
                UpdateSection::DnsHost,
                -1,
                xml.clone(),
                (UpdateCommand::Delete, xml),
                format!("DNS host {} added", h.ip),
            ),
        )?;
        Ok(true)
    }

    /// Remove the DNS host record of an IP. Returns false if there is none.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.add_dns_host(#{ ip: "192.168.122.10", hostnames: ["web"] });
    /// assert(net.remove_dns_host("192.168.122.10"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn remove_dns_host(
        ctx: NativeCallContext,
        net: &mut Network,
        ip: &str,
    ) -> ScriptResult<bool> {
        let def = current_def(&ctx, net)?;
        let ip = ip
            .parse::<std::net::IpAddr>()
            .map(|a| a.to_string())
            .unwrap_or(ip.to_owned());
        let Some(old) = def
            .dns
            .and_then(|d| d.hosts.into_iter().find(|h| h.ip == ip))
        else {
            return Ok(false);
        };
        let xml = write_dns_host(&old);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Delete,
                UpdateSection::DnsHost,
                -1,
                xml.clone(),
                (UpdateCommand::Add, xml),
                format!("DNS host {ip} removed"),
            ),
        )?;
        Ok(true)
    }

    /// Add a DNS TXT record without a restart. Returns false if it exists; the
    /// same name with another value is an error.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// assert(net.add_dns_txt("lab", "owner=ops"));
    /// assert(!net.add_dns_txt("lab", "owner=ops"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn add_dns_txt(
        ctx: NativeCallContext,
        net: &mut Network,
        name: &str,
        value: &str,
    ) -> ScriptResult<bool> {
        let t = DnsTxt {
            name: name.into(),
            value: value.into(),
        };
        validate::dns_txt("dns_txt", &t).map_err(|e| field_error(&ctx, e))?;
        let def = current_def(&ctx, net)?;
        let existing = def.dns.map(|d| d.txt).unwrap_or_default();
        if existing.contains(&t) {
            return Ok(false);
        }
        if let Some(old) = existing.iter().find(|o| o.name == t.name) {
            return Err(ScriptError::invalid(
                "dns_txt.name",
                name,
                format!(
                    "already has the value {:?} on network '{}'",
                    old.value,
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let xml = write_dns_txt(&t);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Add,
                UpdateSection::DnsTxt,
                -1,
                xml.clone(),
                (UpdateCommand::Delete, xml),
                format!("DNS TXT record {name} added"),
            ),
        )?;
        Ok(true)
    }

    /// Remove the DNS TXT record called `name`. Returns false if there is none.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.add_dns_txt("lab", "owner=ops");
    /// assert(net.remove_dns_txt("lab"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn remove_dns_txt(
        ctx: NativeCallContext,
        net: &mut Network,
        name: &str,
    ) -> ScriptResult<bool> {
        let def = current_def(&ctx, net)?;
        let Some(old) = def
            .dns
            .and_then(|d| d.txt.into_iter().find(|t| t.name == name))
        else {
            return Ok(false);
        };
        let xml = write_dns_txt(&old);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Delete,
                UpdateSection::DnsTxt,
                -1,
                xml.clone(),
                (UpdateCommand::Add, xml),
                format!("DNS TXT record {name} removed"),
            ),
        )?;
        Ok(true)
    }

    /// Add a DNS SRV record `#{ service, protocol, domain, target, port,
    /// priority, weight }` without a restart. Returns false if it exists.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// let srv = #{ service: "ldap", protocol: "tcp", domain: "lab", target: "dc1", port: 389 };
    /// assert(net.add_dns_srv(srv));
    /// assert(!net.add_dns_srv(srv));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn add_dns_srv(ctx: NativeCallContext, net: &mut Network, srv: Map) -> ScriptResult<bool> {
        let s: DnsSrv = from_map(
            &ctx,
            "DNS SRV record",
            &srv,
            &[
                "service", "protocol", "domain", "target", "port", "priority", "weight",
            ],
        )?;
        validate::dns_srv("dns_srv", &s).map_err(|e| field_error(&ctx, e))?;
        let def = current_def(&ctx, net)?;
        if def.dns.map(|d| d.srv).unwrap_or_default().contains(&s) {
            return Ok(false);
        }
        let xml = write_dns_srv(&s);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Add,
                UpdateSection::DnsSrv,
                -1,
                xml.clone(),
                (UpdateCommand::Delete, xml),
                format!("DNS SRV record {}/{} added", s.service, s.protocol),
            ),
        )?;
        Ok(true)
    }

    /// Remove the DNS SRV records of `service` and `protocol`. Returns how many went.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.add_dns_srv(#{ service: "ldap", protocol: "tcp" });
    /// assert_eq(net.remove_dns_srv("ldap", "tcp"), 1);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn remove_dns_srv(
        ctx: NativeCallContext,
        net: &mut Network,
        service: &str,
        protocol: &str,
    ) -> ScriptResult<i64> {
        let def = current_def(&ctx, net)?;
        let gone: Vec<DnsSrv> = def
            .dns
            .map(|d| d.srv)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.service == service && s.protocol == protocol)
            .collect();
        for s in &gone {
            let xml = write_dns_srv(s);
            apply_live(
                &ctx,
                net,
                &live_change(
                    UpdateCommand::Delete,
                    UpdateSection::DnsSrv,
                    -1,
                    xml.clone(),
                    (UpdateCommand::Add, xml),
                    format!("DNS SRV record {service}/{protocol} removed"),
                ),
            )?;
        }
        Ok(gone.len() as i64)
    }

    /// Add a device to the pool of a bridge/private/vepa/passthrough network
    /// (`<forward><interface dev=.../>`). Returns false if it is there.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "pool", forward: #{ mode: "private", interfaces: ["eth1"] } });
    /// assert(net.add_forward_interface("eth2"));
    /// assert(!net.add_forward_interface("eth2"));
    /// assert_eq(net.config.forward.interfaces, ["eth1", "eth2"]);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn add_forward_interface(
        ctx: NativeCallContext,
        net: &mut Network,
        dev: &str,
    ) -> ScriptResult<bool> {
        forward_interface(&ctx, net, dev, true)
    }

    /// Remove a device from the network's forward pool. Returns false if absent.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "pool", forward: #{ mode: "private", interfaces: ["eth1", "eth2"] } });
    /// assert(net.remove_forward_interface("eth2"));
    /// assert_eq(net.config.forward.interfaces, ["eth1"]);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn remove_forward_interface(
        ctx: NativeCallContext,
        net: &mut Network,
        dev: &str,
    ) -> ScriptResult<bool> {
        forward_interface(&ctx, net, dev, false)
    }

    /// Add a port group `#{ name, is_default, vlan, virtualport, bandwidth }` without
    /// a restart. Returns false if exactly this group exists; another group of
    /// the same name is an error (use `modify_portgroup`).
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// let pg = #{ name: "web", bandwidth: #{ inbound: #{ average: 1000 } } };
    /// assert(net.add_portgroup(pg));
    /// assert(!net.add_portgroup(pg));
    /// assert(net.xml.contains("<portgroup name='web'>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn add_portgroup(
        ctx: NativeCallContext,
        net: &mut Network,
        group: Map,
    ) -> ScriptResult<bool> {
        portgroup(&ctx, net, &group, UpdateCommand::Add)
    }

    /// Change an existing port group (found by name) without a restart.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.add_portgroup(#{ name: "web" });
    /// assert(net.modify_portgroup(#{ name: "web", bandwidth: #{ outbound: #{ average: 500 } } }));
    /// assert(net.xml.contains("<outbound average='500'/>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn modify_portgroup(
        ctx: NativeCallContext,
        net: &mut Network,
        group: Map,
    ) -> ScriptResult<bool> {
        portgroup(&ctx, net, &group, UpdateCommand::Modify)
    }

    /// Remove the port group called `name`. Returns false if there is none.
    ///
    /// ```rhai
    /// let net = HOST.network("default");
    /// net.add_portgroup(#{ name: "web" });
    /// assert(net.remove_portgroup("web"));
    /// assert(!net.remove_portgroup("web"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn remove_portgroup(
        ctx: NativeCallContext,
        net: &mut Network,
        name: &str,
    ) -> ScriptResult<bool> {
        let def = current_def(&ctx, net)?;
        let Some(old) = def.portgroups.into_iter().find(|p| p.name == name) else {
            return Ok(false);
        };
        let xml = write_portgroup(&old);
        apply_live(
            &ctx,
            net,
            &live_change(
                UpdateCommand::Delete,
                UpdateSection::Portgroup,
                -1,
                xml.clone(),
                (UpdateCommand::Add, xml),
                format!("port group {name} removed"),
            ),
        )?;
        Ok(true)
    }

    // -- Network: application metadata -------------------------------------------

    /// The application metadata element in XML namespace `ns_uri` from the
    /// network's persistent config (`<metadata>`), as XML without its namespace
    /// prefix, or `()` when there is none. Read it with `xml_parse`.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "tagged", ip: "192.168.40.1/24" });
    /// assert(net.metadata("https://example.org/owner") == ());
    /// net.set_metadata("https://example.org/owner", "<owner team='ops'/>");
    /// assert_eq(net.metadata("https://example.org/owner"), "<owner team='ops'/>");
    /// assert_eq(xml_parse(net.metadata("https://example.org/owner")).attrs.team, "ops");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn metadata(
        ctx: NativeCallContext,
        net: &mut Network,
        ns_uri: &str,
    ) -> ScriptResult<Dynamic> {
        let xml = config_xml(&net.raw).script(&ctx)?;
        let def = NetworkDef::parse(&xml).map_err(|e| xml_error(&ctx, e))?;
        Ok(meta::find(def.metadata.as_deref(), ns_uri)
            .map(|el| Dynamic::from(el.to_xml()))
            .unwrap_or(Dynamic::UNIT))
    }

    /// Store an application metadata element in namespace `ns_uri` in the
    /// network's persistent config, replacing the one there (`()` removes it).
    /// The element is written with the prefix it has (`<app:x xmlns:app=...>`),
    /// else `vs`. Other namespaces' elements stay. A running network keeps
    /// running (metadata needs no restart). Returns false when it already was so.
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "tagged", ip: "192.168.40.1/24" });
    /// assert(net.set_metadata("https://example.org/owner", "<owner team='ops'/>"));
    /// assert(!net.set_metadata("https://example.org/owner", "<owner team='ops'/>"));
    /// assert(net.xml_inactive.contains("xmlns:vs=\"https://example.org/owner\""));
    /// assert(net.set_metadata("https://example.org/owner", ()));
    /// assert(net.metadata("https://example.org/owner") == ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn set_metadata(
        ctx: NativeCallContext,
        net: &mut Network,
        ns_uri: &str,
        xml: Dynamic,
    ) -> ScriptResult<bool> {
        let wanted = metadata_arg(&ctx, ns_uri, &xml)?;
        if !net.raw.is_persistent().script(&ctx)? {
            return Err(ScriptError::new(
                ErrorKind::Invalid,
                format!(
                    "network '{}' is transient: it has no persistent config to hold metadata",
                    net.name()
                ),
            )
            .at(&ctx));
        }
        let old_xml = config_xml(&net.raw).script(&ctx)?;
        let mut doc = NetworkDoc::parse(&old_xml).map_err(|e| xml_error(&ctx, e))?;
        let current = meta::find(doc.def().metadata.as_deref(), ns_uri);
        if current.as_ref().map(Element::normalized)
            == wanted.as_ref().map(|(_, el)| el.normalized())
        {
            return Ok(false);
        }
        let new_inner = meta::replace(
            doc.def().metadata.as_deref(),
            ns_uri,
            wanted
                .as_ref()
                .map(|(p, el)| (el, p.as_deref().unwrap_or(meta::DEFAULT_PREFIX))),
        )
        .map_err(|e| xml_error(&ctx, e))?;
        doc.edit(|def| def.metadata = new_inner);
        net.host
            .conn()
            .define_network_xml(&doc.to_xml())
            .script(&ctx)?;
        let host = net.host.clone();
        journal::record(
            "set_metadata",
            format!("{} ({ns_uri})", net.label()),
            Some(Box::new(move || {
                host.conn().define_network_xml(&old_xml).map(|_| ())
            })),
        );
        // Read back: a driver may drop the redefinition of a running network.
        let stored = NetworkDef::parse(&config_xml(&net.raw).script(&ctx)?)
            .map_err(|e| xml_error(&ctx, e))?;
        let now = meta::find(stored.metadata.as_deref(), ns_uri);
        if now.as_ref().map(Element::normalized) != wanted.as_ref().map(|(_, el)| el.normalized()) {
            return Err(ScriptError::new(
                ErrorKind::NotApplied,
                format!(
                    "network '{}': libvirt did not keep the metadata in {ns_uri} (a driver that keeps no separate persistent config of a running network, like the test driver, drops it: stop the network, set the metadata, start it)",
                    net.name()
                ),
            )
            .with("field", "metadata")
            .with("value", ns_uri.to_owned())
            .at(&ctx));
        }
        Ok(true)
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

fn forward_interface(
    ctx: &NativeCallContext,
    net: &Network,
    dev: &str,
    add: bool,
) -> ScriptResult<bool> {
    let def = current_def(ctx, net)?;
    let present = def
        .forward
        .as_ref()
        .is_some_and(|f| f.interfaces.iter().any(|i| i == dev));
    if present == add {
        return Ok(false);
    }
    let mode = def.forward.as_ref().and_then(|f| f.mode.clone());
    let mode = mode.as_deref().unwrap_or(if def.forward.is_some() {
        "nat"
    } else {
        "isolated"
    });
    if add && !matches!(mode, "bridge" | "private" | "vepa" | "passthrough") {
        return Err(ScriptError::invalid(
            "dev",
            dev,
            format!(
                "network '{}' is {} network: a pool of forward interfaces only goes with bridge, private, vepa or passthrough",
                net.name(),
                if mode == "isolated" { "an isolated".to_owned() } else { format!("a {mode}") }
            ),
        )
        .at(ctx));
    }
    let xml = Element::new("interface").with_attr("dev", dev);
    let (cmd, undo, what) = if add {
        (UpdateCommand::Add, UpdateCommand::Delete, "added")
    } else {
        (UpdateCommand::Delete, UpdateCommand::Add, "removed")
    };
    apply_live(
        ctx,
        net,
        &live_change(
            cmd,
            UpdateSection::ForwardInterface,
            -1,
            xml.clone(),
            (undo, xml),
            format!("forward interface {dev} {what}"),
        ),
    )?;
    Ok(true)
}

fn portgroup(
    ctx: &NativeCallContext,
    net: &Network,
    group: &Map,
    cmd: UpdateCommand,
) -> ScriptResult<bool> {
    let pg: PortGroup = from_map(
        ctx,
        "port group",
        group,
        &[
            "name",
            "default",
            "trust_guest_rx_filters",
            "vlan",
            "virtualport",
            "bandwidth",
        ],
    )?;
    if pg.name.is_empty() {
        return Err(
            ScriptError::invalid("portgroup.name", "", "a port group needs a name").at(ctx),
        );
    }
    let def = current_def(ctx, net)?;
    let old = def.portgroups.iter().find(|p| p.name == pg.name);
    let undo = match (cmd, old) {
        (_, Some(o)) if *o == pg => return Ok(false),
        (UpdateCommand::Add, Some(_)) => {
            return Err(ScriptError::invalid(
                "portgroup.name",
                &pg.name,
                format!(
                    "network '{}' already has a different port group of this name (use modify_portgroup)",
                    net.name()
                ),
            )
            .at(ctx))
        }
        (UpdateCommand::Modify, None) => {
            return Err(ScriptError::invalid(
                "portgroup.name",
                &pg.name,
                format!("network '{}' has no port group of this name", net.name()),
            )
            .at(ctx))
        }
        (UpdateCommand::Modify, Some(o)) => (UpdateCommand::Modify, write_portgroup(o)),
        _ => (UpdateCommand::Delete, write_portgroup(&pg)),
    };
    let verb = if cmd == UpdateCommand::Add {
        "added"
    } else {
        "changed"
    };
    apply_live(
        ctx,
        net,
        &live_change(
            cmd,
            UpdateSection::Portgroup,
            -1,
            write_portgroup(&pg),
            undo,
            format!("port group {} {verb}", pg.name),
        ),
    )?;
    Ok(true)
}
