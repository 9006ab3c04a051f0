//! The checks a network document passes before libvirt sees it: addresses
//! in their subnets, DHCP ranges and reservations, DNS names and records,
//! bridge names. Errors are [`FieldError`]s whose field is a path into the
//! typed document (`ips[0].dhcp.ranges[0].end`); a spec renames it to its
//! own keys ([`super::spec::NetworkSpec::to_def`]).
use std::net::IpAddr;

use ipnet::IpNet;

use crate::xml::network::{
    describe_char, mac_problem, netmask_prefix, DhcpHost, Dns, DnsSrv, DnsTxt, Ip, NetworkDef,
    FORWARD_MODES,
};
use crate::xml::FieldError;

// ---------------------------------------------------------------------------

/// Whether two subnets share an address (CIDR blocks overlap only when one
/// holds the other).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_BRIDGE_NAME: usize = 15;

pub fn parse_ip(field: &str, text: &str) -> Result<IpAddr, FieldError> {
    text.trim()
        .parse()
        .map_err(|_| FieldError::new(field, text, "not an IP address"))
}

/// A DNS name (`web`, `lab.example`): dot-separated labels of letters,
/// digits, `-` and `_`, 1-63 characters each, not starting or ending with
/// `-`, 253 characters in all: what dnsmasq serves.
pub fn dns_name(field: &str, name: &str) -> Result<(), FieldError> {
    let bad = |problem: &str| Err(FieldError::new(field, name, problem));
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.len() > 253 {
        return bad("a DNS name has at most 253 characters");
    }
    for label in name.strip_suffix('.').unwrap_or(name).split('.') {
        if label.is_empty() {
            return bad("not a DNS name: an empty label (two dots, or a leading dot)");
        }
        if label.len() > 63 {
            return bad("not a DNS name: a label over 63 characters");
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return bad(&format!(
                "not a DNS name: {} is not allowed (letters, digits, '-', '_' and dots only)",
                describe_char(c)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("not a DNS name: a label starts or ends with '-'");
        }
    }
    Ok(())
}

/// Names are stored as given: control characters would be changed (a `\r`
/// read back as `\n`) or break the XML, so they are refused.
pub fn no_control(field: &str, text: &str) -> Result<(), FieldError> {
    match text.chars().find(|c| c.is_control()) {
        // The value shown escaped: an error map is printed on terminals and
        // in logs, where a raw control character would act, not show.
        Some(c) => Err(FieldError::new(
            field,
            text.escape_debug().to_string(),
            format!("must not contain control characters ({})", describe_char(c)),
        )),
        None => Ok(()),
    }
}

/// What `addr` is, when it cannot be a device's own address on `subnet`:
/// the unspecified, a loopback or multicast address, or the network or
/// broadcast address of the subnet.
fn special_address(addr: IpAddr, subnet: &IpNet) -> Option<String> {
    if addr.is_unspecified() {
        return Some("the unspecified address".into());
    }
    if addr.is_loopback() {
        return Some("a loopback address".into());
    }
    if addr.is_multicast() {
        return Some("a multicast address".into());
    }
    if let IpAddr::V4(v4) = addr {
        if v4.is_broadcast() {
            return Some("the broadcast address".into());
        }
    }
    // /31 and /32 (IPv4), /127 and /128 (IPv6) have no network or broadcast address.
    if subnet.prefix_len() + 1 < subnet.max_prefix_len() {
        if addr == subnet.network() {
            // (IPv6 `hosts()` starts at the network address, IPv4's after it.)
            let first = subnet.hosts().find(|a| *a != addr).unwrap_or(addr);
            return Some(format!(
                "the network address of {} (the first usable one is {first})",
                subnet.trunc()
            ));
        }
        if addr.is_ipv4() && addr == subnet.broadcast() {
            return Some(format!("the broadcast address of {}", subnet.trunc()));
        }
    }
    None
}

/// Why a guest cannot be given `addr` on `subnet` (whose address is the
/// host's, the gateway), if it cannot.
fn guest_address_problem(addr: IpAddr, subnet: &IpNet) -> Option<String> {
    if addr == subnet.addr() {
        return Some("it is the network's own (gateway) address".into());
    }
    special_address(addr, subnet).map(|what| format!("it is {what}"))
}

/// Check the document before libvirt sees it. Field names in errors are
/// paths into the typed model (`ips[0].dhcp.ranges[0].end`).
pub fn network(def: &NetworkDef) -> Result<(), FieldError> {
    if def.name.trim().is_empty() {
        return Err(FieldError::new("name", &def.name, "a network needs a name"));
    }
    if def.name.contains('/') {
        return Err(FieldError::new("name", &def.name, "must not contain '/'"));
    }
    no_control("name", &def.name)?;
    if let Some(uuid) = &def.uuid {
        let hex: String = uuid.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(FieldError::new("uuid", uuid, "not a UUID"));
        }
    }
    if let Some(name) = def.bridge.as_ref().and_then(|b| b.name.as_ref()) {
        if name.len() > MAX_BRIDGE_NAME {
            return Err(FieldError::new(
                "bridge.name",
                name,
                format!("Linux interface names are at most {MAX_BRIDGE_NAME} characters"),
            ));
        }
        if name.is_empty() || name.contains(['/', ' ', ':']) || name == "." || name == ".." {
            return Err(FieldError::new(
                "bridge.name",
                name,
                "not a valid Linux interface name",
            ));
        }
    }
    if let Some(mtu) = def.mtu {
        if !(68..=65535).contains(&mtu) {
            return Err(FieldError::new("mtu", mtu, "must be from 68 to 65535"));
        }
    }
    if let Some(mac) = &def.mac {
        if let Some(problem) = mac_problem(mac) {
            return Err(FieldError::new("mac", mac, problem));
        }
    }
    if let Some(d) = &def.domain {
        dns_name("domain.name", &d.name)?;
    }
    if let Some(f) = &def.forward {
        if let Some(mode) = &f.mode {
            if !FORWARD_MODES.contains(&mode.as_str()) {
                return Err(FieldError::new(
                    "forward.mode",
                    mode,
                    format!("must be one of {}", FORWARD_MODES.join(", ")),
                ));
            }
        }
        // nat, route and open forward through one device (`dev`); libvirt
        // writes it back as one <interface> too. Pools of devices are for
        // the modes that hand guests a device.
        let mode = f.mode.as_deref().unwrap_or("nat");
        if matches!(mode, "nat" | "route" | "open") {
            let pool = match (f.interfaces.as_slice(), &f.dev) {
                ([], _) => None,
                ([one], Some(dev)) if one == dev => None,
                ([_], None) => None,
                (list, _) => Some(list.join(", ")),
            };
            if let Some(list) = pool {
                return Err(FieldError::new(
                    "forward.interfaces",
                    list,
                    format!(
                        "a {mode} network forwards through one device, its `dev`{}; a pool of interfaces only goes with bridge, private, vepa or passthrough",
                        f.dev.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
                    ),
                ));
            }
        }
        if let Some(nat) = &f.nat {
            if let Some(a) = &nat.address {
                let s = parse_ip("forward.nat.address.start", &a.start)?;
                let e = parse_ip("forward.nat.address.end", &a.end)?;
                if s.is_ipv4() != e.is_ipv4() || s > e {
                    return Err(FieldError::new(
                        "forward.nat.address",
                        format!("{}-{}", a.start, a.end),
                        "start is after end",
                    ));
                }
            }
            if let Some(p) = &nat.port {
                if p.start > p.end || p.end > 65535 {
                    return Err(FieldError::new(
                        "forward.nat.port",
                        format!("{}-{}", p.start, p.end),
                        "must be START-END with START <= END <= 65535",
                    ));
                }
            }
        }
    }
    if let Some(dns) = &def.dns {
        dns_records(dns)?;
    }
    let mut seen_subnets: Vec<(usize, IpNet)> = Vec::new();
    for (i, ip) in def.ips.iter().enumerate() {
        let field = format!("ips[{i}]");
        let subnet = ip_element(&field, ip)?;
        if let Some((j, _)) = seen_subnets.iter().find(|(_, s)| overlaps(s, &subnet)) {
            return Err(FieldError::new(
                format!("{field}.address"),
                subnet.trunc(),
                format!("overlaps ips[{j}] of the same network"),
            ));
        }
        seen_subnets.push((i, subnet));
    }
    for (i, r) in def.routes.iter().enumerate() {
        let field = format!("routes[{i}]");
        parse_ip(&format!("{field}.address"), &r.address)?;
        parse_ip(&format!("{field}.gateway"), &r.gateway)?;
        if r.netmask.is_some() && r.prefix.is_some() {
            return Err(FieldError::new(
                format!("{field}.prefix"),
                r.prefix.unwrap_or_default(),
                "give either netmask or prefix, not both",
            ));
        }
    }
    let mut groups: Vec<&str> = Vec::new();
    for (i, pg) in def.portgroups.iter().enumerate() {
        if pg.name.is_empty() || groups.contains(&pg.name.as_str()) {
            return Err(FieldError::new(
                format!("portgroups[{i}].name"),
                &pg.name,
                "port group names must be present and unique",
            ));
        }
        groups.push(&pg.name);
    }
    Ok(())
}

/// The `<dns>` records: addresses, names dnsmasq can serve, SRV numbers.
fn dns_records(dns: &Dns) -> Result<(), FieldError> {
    for (i, h) in dns.hosts.iter().enumerate() {
        parse_ip(&format!("dns.hosts[{i}].ip"), &h.ip)?;
        if h.hostnames.is_empty() {
            return Err(FieldError::new(
                format!("dns.hosts[{i}].hostnames"),
                "[]",
                "give at least one name",
            ));
        }
        for (j, name) in h.hostnames.iter().enumerate() {
            dns_name(&format!("dns.hosts[{i}].hostnames[{j}]"), name)?;
        }
    }
    for (i, f) in dns.forwarders.iter().enumerate() {
        if let Some(a) = &f.addr {
            parse_ip(&format!("dns.forwarders[{i}].addr"), a)?;
        }
        if let Some(d) = &f.domain {
            dns_name(&format!("dns.forwarders[{i}].domain"), d)?;
        }
    }
    for (i, t) in dns.txt.iter().enumerate() {
        dns_txt(&format!("dns.txt[{i}]"), t)?;
    }
    for (i, s) in dns.srv.iter().enumerate() {
        dns_srv(&format!("dns.srv[{i}]"), s)?;
    }
    Ok(())
}

/// A TXT record: a DNS name, and a value without control characters.
pub fn dns_txt(field: &str, t: &DnsTxt) -> Result<(), FieldError> {
    dns_name(&format!("{field}.name"), &t.name)?;
    no_control(&format!("{field}.value"), &t.value)
}

/// An SRV record: service (1-15 characters, as libvirt allows), protocol
/// tcp/udp, DNS names, 16-bit port, priority and weight.
pub fn dns_srv(field: &str, s: &DnsSrv) -> Result<(), FieldError> {
    if s.service.is_empty()
        || s.service.len() > 15
        || !s
            .service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(FieldError::new(
            format!("{field}.service"),
            &s.service,
            "a service name has 1-15 letters, digits, '-' or '_' (like \"ldap\")",
        ));
    }
    if !matches!(s.protocol.as_str(), "tcp" | "udp") {
        return Err(FieldError::new(
            format!("{field}.protocol"),
            &s.protocol,
            "must be tcp or udp",
        ));
    }
    for (key, name) in [("domain", &s.domain), ("target", &s.target)] {
        if let Some(n) = name {
            dns_name(&format!("{field}.{key}"), n)?;
        }
    }
    for (key, n) in [
        ("port", s.port),
        ("priority", s.priority),
        ("weight", s.weight),
    ] {
        if let Some(n) = n {
            if n > 65535 {
                return Err(FieldError::new(
                    format!("{field}.{key}"),
                    n,
                    "must be from 0 to 65535",
                ));
            }
        }
    }
    Ok(())
}

/// Validate one `<ip>`; returns its subnet.
fn ip_element(field: &str, ip: &Ip) -> Result<IpNet, FieldError> {
    let addr = parse_ip(&format!("{field}.address"), &ip.address)?;
    match ip.family.as_deref() {
        None | Some("ipv4") if addr.is_ipv6() && ip.family.is_some() => {
            return Err(FieldError::new(
                format!("{field}.address"),
                &ip.address,
                "an IPv6 address in an ipv4 family",
            ))
        }
        Some("ipv6") if addr.is_ipv4() => {
            return Err(FieldError::new(
                format!("{field}.address"),
                &ip.address,
                "an IPv4 address in an ipv6 family",
            ))
        }
        None | Some("ipv4") | Some("ipv6") => {}
        Some(other) => {
            return Err(FieldError::new(
                format!("{field}.family"),
                other,
                "must be ipv4 or ipv6",
            ))
        }
    }
    if ip.netmask.is_some() && ip.prefix.is_some() {
        return Err(FieldError::new(
            format!("{field}.prefix"),
            ip.prefix.unwrap_or_default(),
            format!(
                "give either netmask ({}) or prefix, not both",
                ip.netmask.as_deref().unwrap_or_default()
            ),
        ));
    }
    if let Some(mask) = &ip.netmask {
        if addr.is_ipv6() {
            return Err(FieldError::new(
                format!("{field}.netmask"),
                mask,
                "IPv6 addresses take a prefix, not a netmask",
            ));
        }
        if netmask_prefix(mask).is_none() {
            return Err(FieldError::new(
                format!("{field}.netmask"),
                mask,
                "not a contiguous netmask like 255.255.255.0",
            ));
        }
    }
    if let Some(p) = ip.prefix {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if p > max {
            return Err(FieldError::new(
                format!("{field}.prefix"),
                p,
                format!("must be from 0 to {max}"),
            ));
        }
    }
    let subnet = ip
        .subnet()
        .ok_or_else(|| FieldError::new(format!("{field}.address"), &ip.address, "no subnet"))?;
    if let Some(what) = special_address(addr, &subnet) {
        return Err(FieldError::new(
            format!("{field}.address"),
            &ip.address,
            format!("the network's own (gateway) address cannot be {what}"),
        ));
    }
    if let Some(dhcp) = &ip.dhcp {
        for (j, r) in dhcp.ranges.iter().enumerate() {
            let rf = format!("{field}.dhcp.ranges[{j}]");
            let s = parse_ip(&format!("{rf}.start"), &r.start)?;
            let e = parse_ip(&format!("{rf}.end"), &r.end)?;
            for (which, a, text) in [("start", s, &r.start), ("end", e, &r.end)] {
                if !subnet.contains(&a) {
                    return Err(FieldError::new(
                        format!("{rf}.{which}"),
                        text,
                        format!("outside the subnet {}", subnet.trunc()),
                    ));
                }
                if let Some(what) = special_address(a, &subnet) {
                    return Err(FieldError::new(
                        format!("{rf}.{which}"),
                        text,
                        format!("a DHCP range cannot start or end at {what}"),
                    ));
                }
            }
            if s > e {
                return Err(FieldError::new(
                    rf,
                    format!("{}-{}", r.start, r.end),
                    "the range is reversed: start is after end",
                ));
            }
        }
        let mut macs: Vec<(&str, &str)> = Vec::new();
        let mut ips: Vec<&str> = Vec::new();
        for (j, h) in dhcp.hosts.iter().enumerate() {
            let hf = format!("{field}.dhcp.hosts[{j}]");
            dhcp_host(&hf, h, &subnet)?;
            let hip = h.ip.as_deref().unwrap_or_default();
            if let Some(mac) = &h.mac {
                if let Some((_, other)) = macs.iter().find(|(m, _)| m.eq_ignore_ascii_case(mac)) {
                    return Err(FieldError::new(
                        format!("{hf}.mac"),
                        mac,
                        format!("this MAC is already reserved for {other}"),
                    ));
                }
                macs.push((mac, hip));
            }
            if !hip.is_empty() {
                if ips.contains(&hip) {
                    return Err(FieldError::new(
                        format!("{hf}.ip"),
                        hip,
                        "this address is already reserved for another host",
                    ));
                }
                ips.push(hip);
            }
        }
    }
    Ok(subnet)
}

/// A DHCP reservation on its own (also used for live updates), on `subnet`
/// (whose address is the network's own, the guests' gateway).
pub fn dhcp_host(field: &str, h: &DhcpHost, subnet: &IpNet) -> Result<(), FieldError> {
    if let Some(mac) = &h.mac {
        if let Some(problem) = mac_problem(mac) {
            return Err(FieldError::new(format!("{field}.mac"), mac, problem));
        }
    }
    if h.mac.is_none() && h.id.is_none() && h.name.is_none() {
        return Err(FieldError::new(
            field,
            "",
            "a DHCP host needs a mac (IPv4), an id (IPv6) or a name",
        ));
    }
    if let Some(id) = &h.id {
        no_control(&format!("{field}.id"), id)?;
    }
    if let Some(name) = &h.name {
        // dnsmasq takes a host name: one DNS label or a dotted name.
        no_control(&format!("{field}.name"), name)?;
        dns_name(&format!("{field}.name"), name)?;
    }
    if let Some(ip) = &h.ip {
        let a = parse_ip(&format!("{field}.ip"), ip)?;
        if !subnet.contains(&a) {
            return Err(FieldError::new(
                format!("{field}.ip"),
                ip,
                format!("outside the subnet {}", subnet.trunc()),
            ));
        }
        if let Some(problem) = guest_address_problem(a, subnet) {
            return Err(FieldError::new(
                format!("{field}.ip"),
                ip,
                format!("cannot be reserved for a guest: {problem}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::network::spec::parse_cidr;

    #[test]
    fn subnets() {
        let a = parse_cidr("192.168.10.1/24").unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(a.contains(&ip("192.168.10.254")));
        assert!(!a.contains(&ip("192.168.11.1")));
        assert!(overlaps(&a, &parse_cidr("192.168.0.0/16").unwrap()));
        assert!(!overlaps(&a, &parse_cidr("192.168.11.0/24").unwrap()));
        assert_eq!(a.trunc().to_string(), "192.168.10.0/24");
        let v6 = parse_cidr("2001:db8:ca2:2::1/64").unwrap();
        assert!(v6.contains(&ip("2001:db8:ca2:2::99")));
        // The longest prefixes: one address, no shift past the width.
        let host = parse_cidr("fd00::1/128").unwrap();
        assert_eq!(host.trunc().to_string(), "fd00::1/128");
        assert!(host.contains(&ip("fd00::1")) && !host.contains(&ip("fd00::2")));
        assert!(!overlaps(&host, &parse_cidr("fd00:1::/64").unwrap()));
        assert!(overlaps(&host, &parse_cidr("fd00::/64").unwrap()));
        assert_eq!(
            parse_cidr("10.0.0.7/32").unwrap().trunc().to_string(),
            "10.0.0.7/32"
        );
        assert!(parse_cidr("fd00::1/129").is_err() && parse_cidr("10.0.0.1/33").is_err());
    }
}
