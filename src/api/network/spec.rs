//! What a script passes to `define_network`, `create_network` and
//! `ensure_network`: every part of the `<network>` document in its full form,
//! shorthands (`forward: "nat"`, `ip: "10.0.0.1/24"`, `dhcp: [a, b]`) and
//! keys that are not XML (`autostart`, `active`...), turned into a validated
//! [`NetworkDef`] by [`NetworkSpec::to_def`].
use std::net::IpAddr;

use ipnet::IpNet;
use rhai::{Map, NativeCallContext};
use serde::{Deserialize, Serialize};

use crate::api::args::{from_map, keys_of};
use crate::api::error::{AtExt, ScriptError, ScriptResult};

use super::validate::{self, parse_ip};
use crate::xml::network::{
    normalize_mac, Bandwidth, Bridge, Dhcp, DhcpHost, DhcpRange, Dns, Domain, Forward, Ip,
    NetworkDef, PortGroup, Route, VirtualPort, Vlan,
};
use crate::xml::FieldError;

/// A field given either as a string shorthand or as the full map
/// (`forward: "nat"` / `forward: #{ mode: "route", dev: "eth1" }`); errors inside
/// the map (an unknown key) come through as they are.
fn string_or_struct<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de> + From<String>,
    D: serde::Deserializer<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de> + From<String>> serde::de::Visitor<'de> for V<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a map")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(T::from(v.to_owned())))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(self, m: M) -> Result<Self::Value, M::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(m)).map(Some)
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

impl From<String> for Forward {
    fn from(mode: String) -> Forward {
        Forward {
            mode: Some(mode),
            ..Forward::default()
        }
    }
}

impl From<String> for Bridge {
    fn from(name: String) -> Bridge {
        Bridge {
            name: Some(name),
            ..Bridge::default()
        }
    }
}

impl From<String> for Domain {
    fn from(name: String) -> Domain {
        Domain {
            name,
            ..Domain::default()
        }
    }
}

/// What a script passes to `define_network`, `create_network`, `ensure_network`.
/// Every [`NetworkDef`] field in its full form, plus shorthands and policy keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// `"nat"`, `"route"`, ... (`"isolated"`: none) or the full `Forward` map.
    #[serde(
        default,
        deserialize_with = "string_or_struct",
        skip_serializing_if = "Option::is_none"
    )]
    pub forward: Option<Forward>,
    /// `"virbr10"` or the full `Bridge` map.
    #[serde(
        default,
        deserialize_with = "string_or_struct",
        skip_serializing_if = "Option::is_none"
    )]
    pub bridge: Option<Bridge>,
    /// Shorthand for the first IPv4 address: `"192.168.10.1/24"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Shorthand: `[start, end]` of a DHCP range in `ip`'s subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<Vec<String>>,
    /// Shorthand: DHCP reservations `#{ mac, ip, name }` in `ip`'s subnet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dhcp_hosts: Vec<DhcpHost>,
    /// `"lab.example"` or the full `Domain` map.
    #[serde(
        default,
        deserialize_with = "string_or_struct",
        skip_serializing_if = "Option::is_none"
    )]
    pub domain: Option<Domain>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_guest_rx_filters: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_isolated: Option<bool>,
    /// Not XML: start the network at boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
    /// Not XML (`ensure_network`): whether it should be running (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Not XML (`ensure_network`): allow a restart when a change needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<bool>,
    /// Not XML (`ensure_network`): remove a stale bridge device of this
    /// network's name (left by a daemon that died while starting it) and start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_stale: Option<bool>,
}

impl NetworkSpec {
    /// The network document this spec describes, validated; errors name the
    /// spec's own keys (`dhcp`, `dhcp_hosts[0].ip`, `ip`) where a shorthand was used.
    pub fn to_def(&self) -> Result<NetworkDef, FieldError> {
        let mut aliases: Vec<(String, String)> = Vec::new();
        let def = self.build(&mut aliases)?;
        validate::network(&def).map_err(|e| self.field_name_with(e, &aliases))?;
        Ok(def)
    }

    /// Rewrite model paths in an error (`ips[0].dhcp.hosts[1]`) into this spec's keys.
    pub fn field_name(&self, err: FieldError) -> FieldError {
        let mut aliases = Vec::new();
        let _ = self.build(&mut aliases);
        self.field_name_with(err, &aliases)
    }

    /// An error on the `ip` shorthand shows the value as given (`"10.0.0.0/24"`).
    fn field_name_with(&self, err: FieldError, aliases: &[(String, String)]) -> FieldError {
        let mut err = rename_field(err, aliases);
        if let (true, Some(cidr)) = (err.field == "ip", &self.ip) {
            err.value = cidr.clone();
        }
        err
    }

    fn build(&self, aliases: &mut Vec<(String, String)>) -> Result<NetworkDef, FieldError> {
        let mut def = NetworkDef {
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            ipv6: self.ipv6,
            trust_guest_rx_filters: self.trust_guest_rx_filters,
            metadata: self.metadata.clone(),
            mtu: self.mtu,
            mac: self
                .mac
                .as_deref()
                .map(|m| normalize_mac(m).unwrap_or(m.into())),
            dns: self.dns.clone(),
            ips: self.ips.clone(),
            routes: self.routes.clone(),
            portgroups: self.portgroups.clone(),
            virtualport: self.virtualport.clone(),
            bandwidth: self.bandwidth.clone(),
            vlan: self.vlan.clone(),
            port_isolated: self.port_isolated,
            ..NetworkDef::default()
        };
        def.forward = self
            .forward
            .clone()
            .filter(|f| !matches!(f.mode.as_deref(), Some("isolated" | "none")));
        def.bridge = self.bridge.clone();
        def.domain = self.domain.clone();
        for ip in def.ips.iter_mut() {
            normalize_ip(ip);
        }
        let mut short_ip = None;
        if let Some(cidr) = &self.ip {
            let subnet =
                parse_cidr(cidr).map_err(|problem| FieldError::new("ip", cidr, problem))?;
            def.ips.insert(
                0,
                Ip {
                    family: subnet.addr().is_ipv6().then(|| "ipv6".to_owned()),
                    address: subnet.addr().to_string(),
                    prefix: Some(subnet.prefix_len() as u32),
                    ..Ip::default()
                },
            );
            short_ip = Some(0);
            aliases.push(("ips[0].address".into(), "ip".into()));
            aliases.push(("ips[0].prefix".into(), "ip".into()));
            aliases.push(("ips[0]".into(), "ip".into()));
            // The shorthand ip shifts the full-form list by one.
            for i in 0..self.ips.len() {
                aliases.push((format!("ips[{}]", i + 1), format!("ips[{i}]")));
            }
        }
        if let Some(range) = &self.dhcp {
            let [start, end] = range.as_slice() else {
                return Err(FieldError::new(
                    "dhcp",
                    format!("{range:?}"),
                    "expected [start, end]",
                ));
            };
            let i = short_ip
                .or_else(|| def.ips.iter().position(|ip| !ip.is_ipv6()))
                .ok_or_else(|| {
                    FieldError::new("dhcp", format!("{start}-{end}"), "needs an `ip` to serve")
                })?;
            let dhcp = def.ips[i].dhcp.get_or_insert_with(Dhcp::default);
            let j = dhcp.ranges.len();
            dhcp.ranges.push(DhcpRange {
                start: start.clone(),
                end: end.clone(),
                lease: None,
            });
            aliases.push((format!("ips[{i}].dhcp.ranges[{j}]"), "dhcp".into()));
        }
        for (k, host) in self.dhcp_hosts.iter().enumerate() {
            let field = format!("dhcp_hosts[{k}]");
            let hip: Option<IpAddr> = match &host.ip {
                Some(a) => Some(parse_ip(&format!("{field}.ip"), a)?),
                None => None,
            };
            let i = def
                .ips
                .iter()
                .position(|ip| match (hip, ip.subnet()) {
                    (Some(a), Some(s)) => s.contains(&a),
                    _ => false,
                })
                .or(short_ip)
                .or_else(|| def.ips.iter().position(|ip| !ip.is_ipv6()))
                .ok_or_else(|| {
                    FieldError::new(
                        format!("{field}.ip"),
                        host.ip.clone().unwrap_or_default(),
                        "needs an `ip` whose subnet holds it",
                    )
                })?;
            let dhcp = def.ips[i].dhcp.get_or_insert_with(Dhcp::default);
            let j = dhcp.hosts.len();
            dhcp.hosts.push(normalize_dhcp_host(host));
            aliases.push((format!("ips[{i}].dhcp.hosts[{j}]"), field));
        }
        Ok(def)
    }
}

/// Lower-case MACs and canonical IPv6 text, as libvirt writes them, so that
/// a spec compares equal to what libvirt gives back.
pub fn normalize_dhcp_host(h: &DhcpHost) -> DhcpHost {
    let mut h = h.clone();
    if let Some(m) = h.mac.as_deref().and_then(normalize_mac) {
        h.mac = Some(m);
    }
    if let Some(a) = h.ip.as_deref().and_then(|a| a.parse::<IpAddr>().ok()) {
        h.ip = Some(a.to_string());
    }
    h
}

fn normalize_ip(ip: &mut Ip) {
    if let Ok(a) = ip.address.parse::<IpAddr>() {
        ip.address = a.to_string();
    }
    if let Some(dhcp) = &mut ip.dhcp {
        for h in dhcp.hosts.iter_mut() {
            *h = normalize_dhcp_host(h);
        }
    }
}

fn rename_field(mut err: FieldError, aliases: &[(String, String)]) -> FieldError {
    // Longest matching prefix wins.
    if let Some((from, to)) = aliases
        .iter()
        .filter(|(from, _)| {
            err.field == *from
                || err.field.starts_with(&format!("{from}."))
                || err.field.starts_with(&format!("{from}["))
        })
        .max_by_key(|(from, _)| from.len())
    {
        err.field = format!("{to}{}", &err.field[from.len()..]);
    }
    err
}

/// `"192.168.10.1/24"` -> address and prefix.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let (a, p) = text
        .split_once('/')
        .ok_or("expected ADDRESS/PREFIX, like \"192.168.10.1/24\"")?;
    let addr: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    p.trim()
        .parse::<u8>()
        .ok()
        .and_then(|p| IpNet::new(addr, p).ok())
        .ok_or(format!("prefix '{p}' must be a number from 0 to {max}"))
}

/// The spec map as a typed spec and the document it describes, validated.
pub(super) fn spec_of(
    ctx: &NativeCallContext,
    map: &Map,
) -> ScriptResult<(NetworkSpec, NetworkDef)> {
    let spec: NetworkSpec = from_map(ctx, "network spec", map, keys_of::<NetworkSpec>())?;
    if spec.name.trim().is_empty() {
        return Err(ScriptError::invalid("name", &spec.name, "a network needs a name").at(ctx));
    }
    let def = spec.to_def().at(ctx)?;
    Ok((spec, def))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_shorthands_build_the_document() {
        let spec = NetworkSpec {
            name: "lab".into(),
            forward: Some(Forward::from("nat".to_owned())),
            bridge: Some(Bridge::from("virbr10".to_owned())),
            ip: Some("192.168.10.1/24".into()),
            dhcp: Some(vec!["192.168.10.2".into(), "192.168.10.254".into()]),
            dhcp_hosts: vec![DhcpHost {
                mac: Some("52:54:00:AA:00:01".into()),
                ip: Some("192.168.10.5".into()),
                ..DhcpHost::default()
            }],
            ..NetworkSpec::default()
        };
        let xml = spec.to_def().unwrap().to_xml();
        assert_eq!(
            xml,
            "<network><name>lab</name><forward mode='nat'/><bridge name='virbr10'/><ip address='192.168.10.1' prefix='24'><dhcp><range start='192.168.10.2' end='192.168.10.254'/><host mac='52:54:00:aa:00:01' ip='192.168.10.5'/></dhcp></ip></network>"
        );
    }

    #[test]
    fn spec_errors_name_the_spec_keys() {
        let base = NetworkSpec {
            name: "lab".into(),
            ip: Some("192.168.10.1/24".into()),
            ..NetworkSpec::default()
        };
        let err = |spec: NetworkSpec| spec.to_def().unwrap_err();
        let e = err(NetworkSpec {
            dhcp: Some(vec!["192.168.10.2".into(), "192.168.11.9".into()]),
            ..base.clone()
        });
        assert_eq!(
            (e.field.as_str(), e.value.as_str()),
            ("dhcp.end", "192.168.11.9")
        );
        let e = err(NetworkSpec {
            dhcp: Some(vec!["192.168.10.200".into(), "192.168.10.2".into()]),
            ..base.clone()
        });
        assert_eq!(e.field, "dhcp");
        assert!(e.problem.contains("reversed"));
        let e = err(NetworkSpec {
            ip: Some("192.168.300.1/24".into()),
            ..base.clone()
        });
        assert_eq!(e.field, "ip");
        let e = err(NetworkSpec {
            bridge: Some(Bridge::from("a-very-long-bridge".to_owned())),
            ..base.clone()
        });
        assert_eq!(e.field, "bridge.name");
        let e = err(NetworkSpec {
            ips: vec![Ip {
                address: "10.1.0.1".into(),
                netmask: Some("255.255.255.0".into()),
                prefix: Some(24),
                ..Ip::default()
            }],
            ..base.clone()
        });
        assert_eq!(e.field, "ips[0].prefix");
        let e = err(NetworkSpec {
            dhcp_hosts: vec![
                DhcpHost {
                    mac: Some("52:54:00:00:00:01".into()),
                    ip: Some("192.168.10.5".into()),
                    ..DhcpHost::default()
                },
                DhcpHost {
                    mac: Some("52:54:00:00:00:01".into()),
                    ip: Some("192.168.10.6".into()),
                    ..DhcpHost::default()
                },
            ],
            ..base
        });
        assert_eq!(e.field, "dhcp_hosts[1].mac");
    }
}
