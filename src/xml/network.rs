//! libvirt network XML (<https://libvirt.org/formatnetwork.html>) as typed data.
//!
//! - [`NetworkDef`]: the typed view of every documented part of the format
//!   (serde data; the bindings show it to scripts as a map).
//! - [`NetworkDoc`]: a parsed document that keeps the lossless
//!   [`Element`] tree beside the typed view; typed edits are applied onto the
//!   tree ([`tree::apply_edit`]) so nothing unmodelled is ever dropped.
//!
//! Documents only: what a script passes (the spec), the checks before libvirt
//! sees a document and the live-update planning live with the `Network`
//! object in `src/api/network/`.
use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use serde::{Deserialize, Serialize};

use super::tree::{self, Element, TreeError};
use super::FieldError;

// ---------------------------------------------------------------------------
// The typed model
// ---------------------------------------------------------------------------

/// `<network>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// `ipv6='yes'`: guest-to-guest IPv6 without an IPv6 address on the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_guest_rx_filters: Option<bool>,
    /// The children of `<metadata>`, verbatim XML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
    /// No `forward` element: an isolated network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<Forward>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<Ip>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub portgroups: Vec<PortGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualport: Option<VirtualPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vlan>,
    /// `<port isolated='yes'/>`: guests on the bridge cannot talk to each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_isolated: Option<bool>,
}

/// `<bridge name stp delay macTableManager zone>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_table_manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// `<domain name localOnly register>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<bool>,
}

/// The forward modes libvirt documents.
pub const FORWARD_MODES: &[&str] = &[
    "nat",
    "route",
    "open",
    "bridge",
    "private",
    "vepa",
    "passthrough",
    "hostdev",
];

/// `<forward mode dev managed>` with `<nat>`, `<interface>`, `<pf>`, `<address>`, `<driver>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// Absent means libvirt's default, `nat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<Nat>,
    /// `<interface dev=...>`: the devices of a bridge/private/vepa/passthrough pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// `<pf dev=...>`: physical functions whose virtual functions form the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pf: Vec<String>,
    /// `<address type='pci' .../>`: the devices of a hostdev/passthrough pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<PciAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<ForwardDriver>,
}

/// `<nat ipv6>` with `<address start end>` and `<port start end>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRange {
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    #[serde(default)]
    pub start: u32,
    #[serde(default)]
    pub end: u32,
}

/// A PCI address as libvirt writes it (`domain='0x0000' bus='0x03' ...`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PciAddress {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// `<driver name model>` of a hostdev forward.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardDriver {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// `<dns enable forwardPlainNames>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_plain_names: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarders: Vec<DnsForwarder>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub txt: Vec<DnsTxt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub srv: Vec<DnsSrv>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<DnsHost>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsForwarder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsTxt {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSrv {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsHost {
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub hostnames: Vec<String>,
}

/// `<ip family address netmask|prefix localPtr>` with `<tftp>` and `<dhcp>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ip {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ptr: Option<bool>,
    /// `<tftp root=...>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tftp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<Dhcp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dhcp {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<DhcpRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<DhcpHost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootp: Option<Bootp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpRange {
    #[serde(default)]
    pub start: String,
    #[serde(default)]
    pub end: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// `<host mac|id name ip>`: a DHCP reservation (`id` is the DHCPv6 DUID).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpHost {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// `<lease expiry unit>`; expiry 0 means infinite.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    #[serde(default)]
    pub expiry: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bootp {
    #[serde(default)]
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// `<route family address netmask|prefix gateway metric>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default)]
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u32>,
    #[serde(default)]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
}

/// `<portgroup name default trustGuestRxFilters>` with its own vlan, virtualport, bandwidth.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortGroup {
    #[serde(default)]
    pub name: String,
    /// `default='yes'` (`default` is a reserved word in Rhai, hence the name).
    #[serde(
        default,
        rename = "is_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_guest_rx_filters: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<Vlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualport: Option<VirtualPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
}

/// `<virtualport type>` with `<parameters .../>` (profileid, managerid, interfaceid...).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualPort {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// `<bandwidth>` with `<inbound>` / `<outbound>` (KiB/s and KiB).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<Rate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<u64>,
}

/// `<vlan trunk>` with `<tag id nativeMode>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk: Option<bool>,
    #[serde(default)]
    pub tags: Vec<VlanTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanTag {
    #[serde(default)]
    pub id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_mode: Option<String>,
}

// ---------------------------------------------------------------------------
// Reading and writing elements
// ---------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("the root element is <{0}>, not <network>")]
    NotNetwork(String),
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// Attribute access with the error naming `element/@attr` and the value.
struct Reader<'a> {
    el: &'a Element,
    path: String,
}

impl<'a> Reader<'a> {
    fn new(el: &'a Element, path: impl Into<String>) -> Self {
        Reader {
            el,
            path: path.into(),
        }
    }

    fn child(&self, el: &'a Element) -> Reader<'a> {
        Reader::new(el, format!("{}/{}", self.path, el.name))
    }

    fn str(&self, name: &str) -> Option<String> {
        self.el.attr(name).map(str::to_owned)
    }

    fn string(&self, name: &str) -> String {
        self.str(name).unwrap_or_default()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, FieldError> {
        match self.el.attr(name) {
            None => Ok(None),
            Some("yes" | "on") => Ok(Some(true)),
            Some("no" | "off") => Ok(Some(false)),
            Some(other) => Err(FieldError::new(
                format!("{}/@{name}", self.path),
                other,
                "expected yes/no (or on/off)",
            )),
        }
    }

    fn num<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, FieldError> {
        match self.el.attr(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                FieldError::new(format!("{}/@{name}", self.path), v, "expected a number")
            }),
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Builder helpers for optional attributes.
trait ElementExt {
    fn opt(self, name: &str, value: Option<impl ToString>) -> Self;
    fn opt_bool(self, name: &str, value: Option<bool>) -> Self;
}

impl ElementExt for Element {
    fn opt(mut self, name: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.set_attr(name, v.to_string());
        }
        self
    }
    fn opt_bool(self, name: &str, value: Option<bool>) -> Self {
        self.opt(name, value.map(yes_no))
    }
}

impl NetworkDef {
    /// Parse the typed view of a network document.
    pub fn parse(xml: &str) -> Result<NetworkDef, XmlError> {
        NetworkDef::from_element(&Element::parse(xml)?)
    }

    /// The typed view of a `<network>` element (unmodelled parts are ignored here;
    /// [`NetworkDoc`] keeps them).
    pub fn from_element(root: &Element) -> Result<NetworkDef, XmlError> {
        if root.name != "network" {
            return Err(XmlError::NotNetwork(root.name.clone()));
        }
        let r = Reader::new(root, "network");
        let mut def = NetworkDef {
            ipv6: r.bool("ipv6")?,
            trust_guest_rx_filters: r.bool("trustGuestRxFilters")?,
            ..NetworkDef::default()
        };
        for el in root.elements() {
            let c = r.child(el);
            match el.name.as_str() {
                "name" => def.name = el.text().trim().to_owned(),
                "uuid" => def.uuid = Some(el.text().trim().to_owned()),
                "metadata" => def.metadata = Some(inner_xml(el)),
                "bridge" => {
                    def.bridge = Some(Bridge {
                        name: c.str("name"),
                        stp: c.bool("stp")?,
                        delay: c.num("delay")?,
                        mac_table_manager: c.str("macTableManager"),
                        zone: c.str("zone"),
                    })
                }
                "mtu" => def.mtu = c.num("size")?,
                "domain" => {
                    def.domain = Some(Domain {
                        name: c.string("name"),
                        local_only: c.bool("localOnly")?,
                        register: c.bool("register")?,
                    })
                }
                "forward" => def.forward = Some(read_forward(&c)?),
                "mac" => def.mac = c.str("address"),
                "dns" => def.dns = Some(read_dns(&c)?),
                "ip" => def.ips.push(read_ip(&c)?),
                "route" => def.routes.push(Route {
                    family: c.str("family"),
                    address: c.string("address"),
                    netmask: c.str("netmask"),
                    prefix: c.num("prefix")?,
                    gateway: c.string("gateway"),
                    metric: c.num("metric")?,
                }),
                "portgroup" => def.portgroups.push(read_portgroup(&c)?),
                "virtualport" => def.virtualport = Some(read_virtualport(&c)),
                "bandwidth" => def.bandwidth = Some(read_bandwidth(&c)?),
                "vlan" => def.vlan = Some(read_vlan(&c)?),
                "port" => def.port_isolated = c.bool("isolated")?,
                _ => {}
            }
        }
        Ok(def)
    }

    /// The document with exactly the modelled parts, in libvirt's order.
    pub fn to_element(&self) -> Element {
        let mut root = Element::new("network")
            .opt_bool("ipv6", self.ipv6)
            .opt_bool("trustGuestRxFilters", self.trust_guest_rx_filters);
        root.push(Element::new("name").with_text(&self.name));
        if let Some(uuid) = &self.uuid {
            root.push(Element::new("uuid").with_text(uuid));
        }
        if let Some(metadata) = &self.metadata {
            // Verbatim children; text that does not parse is kept as text.
            let wrapped = format!("<metadata>{metadata}</metadata>");
            root.push(
                Element::parse(&wrapped)
                    .unwrap_or_else(|_| Element::new("metadata").with_text(metadata)),
            );
        }
        if let Some(f) = &self.forward {
            root.push(write_forward(f));
        }
        if let Some(p) = self.port_isolated {
            root.push(Element::new("port").opt_bool("isolated", Some(p)));
        }
        if let Some(b) = &self.bridge {
            root.push(
                Element::new("bridge")
                    .opt("name", b.name.as_ref())
                    .opt("stp", b.stp.map(|s| if s { "on" } else { "off" }))
                    .opt("delay", b.delay)
                    .opt("macTableManager", b.mac_table_manager.as_ref())
                    .opt("zone", b.zone.as_ref()),
            );
        }
        if let Some(mtu) = self.mtu {
            root.push(Element::new("mtu").with_attr("size", mtu.to_string()));
        }
        if let Some(mac) = &self.mac {
            root.push(Element::new("mac").with_attr("address", mac));
        }
        if let Some(d) = &self.domain {
            root.push(
                Element::new("domain")
                    .with_attr("name", &d.name)
                    .opt_bool("localOnly", d.local_only)
                    .opt_bool("register", d.register),
            );
        }
        if let Some(dns) = &self.dns {
            root.push(write_dns(dns));
        }
        if let Some(v) = &self.vlan {
            root.push(write_vlan(v));
        }
        if let Some(v) = &self.virtualport {
            root.push(write_virtualport(v));
        }
        if let Some(b) = &self.bandwidth {
            root.push(write_bandwidth(b));
        }
        for pg in &self.portgroups {
            let mut el = Element::new("portgroup")
                .with_attr("name", &pg.name)
                .opt_bool("default", pg.default)
                .opt_bool("trustGuestRxFilters", pg.trust_guest_rx_filters);
            if let Some(v) = &pg.vlan {
                el.push(write_vlan(v));
            }
            if let Some(v) = &pg.virtualport {
                el.push(write_virtualport(v));
            }
            if let Some(b) = &pg.bandwidth {
                el.push(write_bandwidth(b));
            }
            root.push(el);
        }
        for ip in &self.ips {
            root.push(write_ip(ip));
        }
        for r in &self.routes {
            root.push(
                Element::new("route")
                    .opt("family", r.family.as_ref())
                    .with_attr("address", &r.address)
                    .opt("netmask", r.netmask.as_ref())
                    .opt("prefix", r.prefix)
                    .with_attr("gateway", &r.gateway)
                    .opt("metric", r.metric),
            );
        }
        root
    }

    /// The document as text, modelled parts only (a new network from a spec).
    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }
}

fn inner_xml(el: &Element) -> String {
    let mut out = String::new();
    for child in &el.children {
        match child {
            tree::Node::Text(t) if t.trim().is_empty() => {}
            tree::Node::Element(e) => out.push_str(&e.to_xml()),
            other => {
                let wrapper = Element {
                    name: "x".into(),
                    attrs: Vec::new(),
                    children: vec![other.clone()],
                };
                let xml = wrapper.to_xml();
                out.push_str(&xml[3..xml.len() - 4]);
            }
        }
    }
    out
}

fn read_forward(r: &Reader) -> Result<Forward, FieldError> {
    let mut f = Forward {
        mode: r.str("mode"),
        dev: r.str("dev"),
        managed: r.bool("managed")?,
        ..Forward::default()
    };
    for el in r.el.elements() {
        let c = r.child(el);
        match el.name.as_str() {
            "nat" => {
                let mut nat = Nat {
                    ipv6: c.bool("ipv6")?,
                    ..Nat::default()
                };
                for n in el.elements() {
                    match n.name.as_str() {
                        "address" => {
                            nat.address = Some(AddressRange {
                                start: n.attr("start").unwrap_or_default().into(),
                                end: n.attr("end").unwrap_or_default().into(),
                            })
                        }
                        "port" => {
                            let p = c.child(n);
                            nat.port = Some(PortRange {
                                start: p.num("start")?.unwrap_or(0),
                                end: p.num("end")?.unwrap_or(0),
                            })
                        }
                        _ => {}
                    }
                }
                f.nat = Some(nat);
            }
            "interface" => f.interfaces.push(c.string("dev")),
            "pf" => f.pf.push(c.string("dev")),
            "address" => f.addresses.push(PciAddress {
                kind: c.str("type"),
                domain: c.str("domain"),
                bus: c.str("bus"),
                slot: c.str("slot"),
                function: c.str("function"),
            }),
            "driver" => {
                f.driver = Some(ForwardDriver {
                    name: c.str("name"),
                    model: c.str("model"),
                })
            }
            _ => {}
        }
    }
    Ok(f)
}

fn write_forward(f: &Forward) -> Element {
    let mut el = Element::new("forward")
        .opt("mode", f.mode.as_ref())
        .opt("dev", f.dev.as_ref())
        .opt_bool("managed", f.managed);
    if let Some(d) = &f.driver {
        el.push(
            Element::new("driver")
                .opt("name", d.name.as_ref())
                .opt("model", d.model.as_ref()),
        );
    }
    if let Some(nat) = &f.nat {
        let mut n = Element::new("nat").opt_bool("ipv6", nat.ipv6);
        if let Some(a) = &nat.address {
            n.push(
                Element::new("address")
                    .with_attr("start", &a.start)
                    .with_attr("end", &a.end),
            );
        }
        if let Some(p) = &nat.port {
            n.push(
                Element::new("port")
                    .with_attr("start", p.start.to_string())
                    .with_attr("end", p.end.to_string()),
            );
        }
        el.push(n);
    }
    for pf in &f.pf {
        el.push(Element::new("pf").with_attr("dev", pf));
    }
    for i in &f.interfaces {
        el.push(Element::new("interface").with_attr("dev", i));
    }
    for a in &f.addresses {
        el.push(
            Element::new("address")
                .opt("type", a.kind.as_ref())
                .opt("domain", a.domain.as_ref())
                .opt("bus", a.bus.as_ref())
                .opt("slot", a.slot.as_ref())
                .opt("function", a.function.as_ref()),
        );
    }
    el
}

fn read_dns(r: &Reader) -> Result<Dns, FieldError> {
    let mut dns = Dns {
        enable: r.bool("enable")?,
        forward_plain_names: r.bool("forwardPlainNames")?,
        ..Dns::default()
    };
    for el in r.el.elements() {
        let c = r.child(el);
        match el.name.as_str() {
            "forwarder" => dns.forwarders.push(DnsForwarder {
                addr: c.str("addr"),
                domain: c.str("domain"),
            }),
            "txt" => dns.txt.push(DnsTxt {
                name: c.string("name"),
                value: c.string("value"),
            }),
            "srv" => dns.srv.push(DnsSrv {
                service: c.string("service"),
                protocol: c.string("protocol"),
                domain: c.str("domain"),
                target: c.str("target"),
                port: c.num("port")?,
                priority: c.num("priority")?,
                weight: c.num("weight")?,
            }),
            "host" => dns.hosts.push(DnsHost {
                ip: c.string("ip"),
                hostnames: el
                    .children_named("hostname")
                    .map(|h| h.text().trim().to_owned())
                    .collect(),
            }),
            _ => {}
        }
    }
    Ok(dns)
}

fn write_dns(dns: &Dns) -> Element {
    let mut el = Element::new("dns")
        .opt_bool("enable", dns.enable)
        .opt_bool("forwardPlainNames", dns.forward_plain_names);
    for f in &dns.forwarders {
        el.push(
            Element::new("forwarder")
                .opt("domain", f.domain.as_ref())
                .opt("addr", f.addr.as_ref()),
        );
    }
    for h in &dns.hosts {
        el.push(write_dns_host(h));
    }
    for t in &dns.txt {
        el.push(write_dns_txt(t));
    }
    for s in &dns.srv {
        el.push(write_dns_srv(s));
    }
    el
}

/// `<host ip><hostname>...</host>` as `virNetworkUpdate` takes it.
pub fn write_dns_host(h: &DnsHost) -> Element {
    let mut el = Element::new("host").with_attr("ip", &h.ip);
    for name in &h.hostnames {
        el.push(Element::new("hostname").with_text(name));
    }
    el
}

pub fn write_dns_txt(t: &DnsTxt) -> Element {
    Element::new("txt")
        .with_attr("name", &t.name)
        .with_attr("value", &t.value)
}

pub fn write_dns_srv(s: &DnsSrv) -> Element {
    Element::new("srv")
        .with_attr("service", &s.service)
        .with_attr("protocol", &s.protocol)
        .opt("domain", s.domain.as_ref())
        .opt("target", s.target.as_ref())
        .opt("port", s.port)
        .opt("priority", s.priority)
        .opt("weight", s.weight)
}

fn read_lease(el: &Element, r: &Reader) -> Result<Option<Lease>, FieldError> {
    match el.child("lease") {
        None => Ok(None),
        Some(l) => {
            let c = r.child(l);
            Ok(Some(Lease {
                expiry: c.num("expiry")?.unwrap_or(0),
                unit: c.str("unit"),
            }))
        }
    }
}

fn write_lease(el: &mut Element, lease: &Option<Lease>) {
    if let Some(l) = lease {
        el.push(
            Element::new("lease")
                .with_attr("expiry", l.expiry.to_string())
                .opt("unit", l.unit.as_ref()),
        );
    }
}

fn read_ip(r: &Reader) -> Result<Ip, FieldError> {
    let mut ip = Ip {
        family: r.str("family"),
        address: r.string("address"),
        netmask: r.str("netmask"),
        prefix: r.num("prefix")?,
        local_ptr: r.bool("localPtr")?,
        ..Ip::default()
    };
    for el in r.el.elements() {
        let c = r.child(el);
        match el.name.as_str() {
            "tftp" => ip.tftp = c.str("root"),
            "dhcp" => {
                let mut dhcp = Dhcp::default();
                for d in el.elements() {
                    let dc = c.child(d);
                    match d.name.as_str() {
                        "range" => dhcp.ranges.push(DhcpRange {
                            start: dc.string("start"),
                            end: dc.string("end"),
                            lease: read_lease(d, &dc)?,
                        }),
                        "host" => dhcp.hosts.push(DhcpHost {
                            mac: dc.str("mac"),
                            id: dc.str("id"),
                            name: dc.str("name"),
                            ip: dc.str("ip"),
                            lease: read_lease(d, &dc)?,
                        }),
                        "bootp" => {
                            dhcp.bootp = Some(Bootp {
                                file: dc.string("file"),
                                server: dc.str("server"),
                            })
                        }
                        _ => {}
                    }
                }
                ip.dhcp = Some(dhcp);
            }
            _ => {}
        }
    }
    Ok(ip)
}

fn write_ip(ip: &Ip) -> Element {
    let mut el = Element::new("ip")
        .opt("family", ip.family.as_ref())
        .with_attr("address", &ip.address)
        .opt("netmask", ip.netmask.as_ref())
        .opt("prefix", ip.prefix)
        .opt_bool("localPtr", ip.local_ptr);
    if let Some(root) = &ip.tftp {
        el.push(Element::new("tftp").with_attr("root", root));
    }
    if let Some(dhcp) = &ip.dhcp {
        let mut d = Element::new("dhcp");
        for r in &dhcp.ranges {
            d.push(write_dhcp_range(r));
        }
        for h in &dhcp.hosts {
            d.push(write_dhcp_host(h));
        }
        if let Some(b) = &dhcp.bootp {
            d.push(
                Element::new("bootp")
                    .with_attr("file", &b.file)
                    .opt("server", b.server.as_ref()),
            );
        }
        el.push(d);
    }
    el
}

/// `<range start end>` as `virNetworkUpdate` takes it.
pub fn write_dhcp_range(r: &DhcpRange) -> Element {
    let mut el = Element::new("range")
        .with_attr("start", &r.start)
        .with_attr("end", &r.end);
    write_lease(&mut el, &r.lease);
    el
}

/// `<host mac id name ip>` as `virNetworkUpdate` takes it.
pub fn write_dhcp_host(h: &DhcpHost) -> Element {
    let mut el = Element::new("host")
        .opt("mac", h.mac.as_ref())
        .opt("id", h.id.as_ref())
        .opt("name", h.name.as_ref())
        .opt("ip", h.ip.as_ref());
    write_lease(&mut el, &h.lease);
    el
}

fn read_portgroup(r: &Reader) -> Result<PortGroup, FieldError> {
    let mut pg = PortGroup {
        name: r.string("name"),
        default: r.bool("default")?,
        trust_guest_rx_filters: r.bool("trustGuestRxFilters")?,
        ..PortGroup::default()
    };
    for el in r.el.elements() {
        let c = r.child(el);
        match el.name.as_str() {
            "vlan" => pg.vlan = Some(read_vlan(&c)?),
            "virtualport" => pg.virtualport = Some(read_virtualport(&c)),
            "bandwidth" => pg.bandwidth = Some(read_bandwidth(&c)?),
            _ => {}
        }
    }
    Ok(pg)
}

/// `<portgroup>` as `virNetworkUpdate` takes it.
pub fn write_portgroup(pg: &PortGroup) -> Element {
    let def = NetworkDef {
        portgroups: vec![pg.clone()],
        ..NetworkDef::default()
    };
    def.to_element()
        .children_named("portgroup")
        .next()
        .cloned()
        .unwrap_or_else(|| Element::new("portgroup"))
}

fn read_virtualport(r: &Reader) -> VirtualPort {
    VirtualPort {
        kind: r.str("type"),
        parameters: r
            .el
            .child("parameters")
            .map(|p| p.attrs.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

fn write_virtualport(v: &VirtualPort) -> Element {
    let mut el = Element::new("virtualport").opt("type", v.kind.as_ref());
    if !v.parameters.is_empty() {
        let mut p = Element::new("parameters");
        for (k, val) in &v.parameters {
            p.set_attr(k, val);
        }
        el.push(p);
    }
    el
}

fn read_bandwidth(r: &Reader) -> Result<Bandwidth, FieldError> {
    let rate = |name: &str| -> Result<Option<Rate>, FieldError> {
        match r.el.child(name) {
            None => Ok(None),
            Some(el) => {
                let c = r.child(el);
                Ok(Some(Rate {
                    average: c.num("average")?,
                    peak: c.num("peak")?,
                    burst: c.num("burst")?,
                    floor: c.num("floor")?,
                }))
            }
        }
    };
    Ok(Bandwidth {
        inbound: rate("inbound")?,
        outbound: rate("outbound")?,
    })
}

fn write_bandwidth(b: &Bandwidth) -> Element {
    let mut el = Element::new("bandwidth");
    for (name, rate) in [("inbound", &b.inbound), ("outbound", &b.outbound)] {
        if let Some(r) = rate {
            el.push(
                Element::new(name)
                    .opt("average", r.average)
                    .opt("peak", r.peak)
                    .opt("burst", r.burst)
                    .opt("floor", r.floor),
            );
        }
    }
    el
}

fn read_vlan(r: &Reader) -> Result<Vlan, FieldError> {
    let mut v = Vlan {
        trunk: r.bool("trunk")?,
        tags: Vec::new(),
    };
    for t in r.el.children_named("tag") {
        let c = r.child(t);
        v.tags.push(VlanTag {
            id: c.num("id")?.unwrap_or(0),
            native_mode: c.str("nativeMode"),
        });
    }
    Ok(v)
}

fn write_vlan(v: &Vlan) -> Element {
    let mut el = Element::new("vlan").opt_bool("trunk", v.trunk);
    for t in &v.tags {
        el.push(
            Element::new("tag")
                .with_attr("id", t.id.to_string())
                .opt("nativeMode", t.native_mode.as_ref()),
        );
    }
    el
}

// ---------------------------------------------------------------------------
// A document: typed view + lossless tree
// ---------------------------------------------------------------------------

/// A network document as read: the lossless tree plus the typed view of it.
/// `to_xml()` of an unedited document is the tree as read; [`NetworkDoc::set_def`]
/// applies a typed edit onto the tree, keeping every unmodelled part.
#[derive(Debug, Clone)]
pub struct NetworkDoc {
    tree: Element,
    def: NetworkDef,
    /// The typed view written back (what the model covers of `tree`).
    base: Element,
}

impl NetworkDoc {
    pub fn parse(xml: &str) -> Result<NetworkDoc, XmlError> {
        NetworkDoc::from_tree(Element::parse(xml)?)
    }

    pub fn from_tree(tree: Element) -> Result<NetworkDoc, XmlError> {
        let def = NetworkDef::from_element(&tree)?;
        let base = def.to_element();
        Ok(NetworkDoc { tree, def, base })
    }

    pub fn def(&self) -> &NetworkDef {
        &self.def
    }

    pub fn tree(&self) -> &Element {
        &self.tree
    }

    /// Replace the typed view; the tree takes the changes, keeps the rest.
    pub fn set_def(&mut self, def: NetworkDef) {
        let new = def.to_element();
        self.tree = tree::apply_edit(&self.tree, &self.base, &new);
        self.base = new;
        self.def = def;
    }

    /// Edit the typed view in place.
    pub fn edit(&mut self, f: impl FnOnce(&mut NetworkDef)) {
        let mut def = self.def.clone();
        f(&mut def);
        self.set_def(def);
    }

    pub fn to_xml(&self) -> String {
        self.tree.to_xml()
    }
}

// ---------------------------------------------------------------------------
// Addresses
/// A netmask (`255.255.255.0`) as a prefix length; `None` if not contiguous.
pub fn netmask_prefix(mask: &str) -> Option<u8> {
    let m: std::net::Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(m);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// A MAC address as libvirt writes it (lower case), or `None` if malformed.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    (parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())))
    .then(|| mac.to_ascii_lowercase())
}

impl Ip {
    /// The subnet of this `<ip>` (prefix from `prefix`, `netmask`, or the classful default).
    pub fn subnet(&self) -> Option<IpNet> {
        let addr: IpAddr = self.address.parse().ok()?;
        let prefix = match (self.prefix, &self.netmask) {
            (Some(p), _) => u8::try_from(p).ok()?,
            (None, Some(m)) => netmask_prefix(m)?,
            (None, None) if addr.is_ipv6() => 64,
            (None, None) => match self.address.split('.').next()?.parse::<u8>().ok()? {
                0..=127 => 8,
                128..=191 => 16,
                _ => 24,
            },
        };
        IpNet::new(addr, prefix).ok()
    }

    pub fn is_ipv6(&self) -> bool {
        self.family.as_deref() == Some("ipv6") || self.address.contains(':')
    }
}

// ---------------------------------------------------------------------------
// Values: facts of the format that the checks of networks and VMs share
// ---------------------------------------------------------------------------

/// Why a MAC address cannot be a guest's or a bridge's, if it cannot.
pub fn mac_problem(mac: &str) -> Option<&'static str> {
    let Some(norm) = normalize_mac(mac) else {
        return Some("not a MAC address (like 52:54:00:12:34:56)");
    };
    let first = u8::from_str_radix(&norm[..2], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Some(
            "a multicast MAC address (the first byte is odd); a device needs a unicast one",
        );
    }
    if norm == "00:00:00:00:00:00" {
        return Some("the all-zero MAC address is not a device's address");
    }
    None
}

/// A character as an error message shows it: `' '`, `'<'`, `U+000D (a control character)`.
pub fn describe_char(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X} (a control character)", c as u32)
    } else if c == '\'' {
        "\"'\"".into()
    } else {
        format!("'{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every whole network document: libvirt's inputs, its canonical outputs
    /// and the networks its live-update tests end with.
    fn documents() -> Vec<(String, String)> {
        let mut docs = Vec::new();
        for folder in [
            "networkxml2xmlin",
            "networkxml2xmlout",
            "networkxml2xmlupdateout",
        ] {
            for (file, xml) in crate::xml::conformance_documents(folder) {
                docs.push((format!("{folder}/{file}"), xml));
            }
        }
        assert!(docs.len() >= 90, "only {} network documents", docs.len());
        docs
    }

    #[test]
    fn typed_model_round_trips_every_conformance_document() {
        for (file, xml) in documents() {
            let def = NetworkDef::parse(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
            let again = NetworkDef::parse(&def.to_xml()).unwrap();
            assert_eq!(def, again, "{file}");
            // Through serde (the script's map) and back.
            let json = serde_json::to_value(&def).unwrap();
            let back: NetworkDef = serde_json::from_value(json).unwrap();
            assert_eq!(def, back, "{file}");
        }
    }

    #[test]
    fn unedited_document_is_byte_identical_and_edit_keeps_unknowns() {
        for (file, xml) in documents() {
            let mut doc = NetworkDoc::parse(&xml).unwrap();
            let tree = doc.tree().clone();
            doc.set_def(doc.def().clone());
            assert_eq!(doc.tree(), &tree, "{file}");
        }
        let xml = "<network><name>n</name><bridge name='b' zone='z' foo='bar'/><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.2' end='10.0.0.9'/><option number='252' value='x'/></dhcp></ip><dnsmasq:options xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'/></network>";
        let mut doc = NetworkDoc::parse(xml).unwrap();
        doc.edit(|d| {
            d.bridge.as_mut().unwrap().stp = Some(false);
            d.ips[0].dhcp.as_mut().unwrap().ranges[0].end = "10.0.0.200".into();
        });
        let out = doc.to_xml();
        assert!(out.contains("foo='bar'"), "{out}");
        assert!(out.contains("stp='off'"), "{out}");
        assert!(out.contains("end='10.0.0.200'"), "{out}");
        assert!(out.contains("<option number='252' value='x'/>"), "{out}");
        assert!(out.contains("dnsmasq:options"), "{out}");
    }

    #[test]
    fn netmasks() {
        assert_eq!(netmask_prefix("255.255.255.0"), Some(24));
        assert_eq!(netmask_prefix("255.0.255.0"), None);
    }
}
