//! Subnet arithmetic for scripts and recipes (`net::nat` derives its gateway
//! and DHCP range with it), IPv4 and IPv6, on `ipnet`. A subnet is written in
//! CIDR notation, `"192.168.10.0/24"` or `"fd00:10::/64"`; errors name
//! `cidr` (or `ip`, `n`, `gateway`) and the value.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};

use super::error::{ScriptError, ScriptResult};

/// An address as text, in the words of the recipes' errors.
fn parse_ip(field: &str, text: &str) -> Result<IpAddr, ScriptError> {
    let text = text.trim();
    if text.contains(':') {
        return text
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| ScriptError::invalid(field, text, "not an IPv6 address"));
    }
    text.parse::<Ipv4Addr>().map(IpAddr::V4).map_err(|_| {
        let parts: Vec<&str> = text.split('.').collect();
        let digits =
            |p: &&str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
        let problem = if parts.len() == 4 && parts.iter().all(digits) {
            "each part of an IPv4 address must be 0-255"
        } else {
            "not an IPv4 address (a.b.c.d)"
        };
        ScriptError::invalid(field, text, problem)
    })
}

/// `"192.168.10.0/24"` -> the address as written and its subnet.
fn parse(text: &str) -> Result<(IpAddr, IpNet), ScriptError> {
    let field = "cidr";
    let Some((addr, len)) = text.split_once('/') else {
        return Err(ScriptError::invalid(
            field,
            text,
            "expected CIDR notation like \"192.168.10.0/24\"",
        ));
    };
    let addr = parse_ip(field, addr).map_err(|e| {
        // The problem is the address's; the value shown is the whole subnet.
        let problem = e.message();
        let problem = problem
            .strip_prefix("cidr: ")
            .and_then(|p| p.rsplit_once(" (got "))
            .map_or(problem.as_str(), |(p, _)| p)
            .to_owned();
        ScriptError::invalid(field, text, problem)
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScriptError::invalid(
            field,
            text,
            format!("the prefix length after '/' must be a number 0-{max}"),
        ));
    }
    let net = len
        .parse::<u8>()
        .ok()
        .and_then(|p| IpNet::new(addr, p).ok())
        .ok_or_else(|| {
            ScriptError::invalid(field, text, format!("prefix length must be 0-{max}"))
        })?;
    Ok((addr, net))
}

fn ordinal(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v).into(),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The address `offset` places into `net` (the caller keeps it inside).
fn address_at(net: &IpNet, offset: u128) -> IpAddr {
    let n = ordinal(net.network()) + offset;
    match net {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// The offset of the last address (the broadcast in IPv4): no `2^128`
/// overflow for `/0`, no shift by 128 for `/128`.
fn last_offset(net: &IpNet) -> u128 {
    ordinal(net.broadcast()) - ordinal(net.network())
}

/// The usable host addresses, as offsets: IPv4 leaves out the network and
/// broadcast addresses (but `/31` and `/32` have only those); IPv6 leaves out
/// the network's own (subnet-router anycast) address, except in `/127`, `/128`.
fn host_offsets(net: &IpNet) -> (u128, u128) {
    let last = last_offset(net);
    match net {
        IpNet::V4(_) if last >= 2 => (1, last - 1),
        IpNet::V6(_) if last >= 2 => (1, last),
        _ => (0, last),
    }
}

fn offset_of(net: &IpNet, ip: IpAddr) -> Option<u128> {
    net.contains(&ip)
        .then(|| ordinal(ip) - ordinal(net.network()))
}

fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

#[export_module(manifest)]
pub mod subnet_api {
    use super::*;

    /// A subnet in CIDR notation, IPv4 or IPv6: `#{ family ("ipv4" or
    /// "ipv6"), address (as written), network, prefix, netmask, broadcast
    /// (the last address; IPv6 has no broadcast), first, last (the usable
    /// host addresses), size (how many addresses; `()` past what an int
    /// holds), cidr (`"network/prefix"`) }`.
    ///
    /// ```rhai
    /// let s = parse_subnet("192.168.10.0/24");
    /// assert_eq([s.network, s.netmask, s.broadcast], ["192.168.10.0", "255.255.255.0", "192.168.10.255"]);
    /// assert_eq([s.first, s.last, s.size, s.prefix], ["192.168.10.1", "192.168.10.254", 256, 24]);
    /// let v6 = parse_subnet("fd00:10::1/128");
    /// assert_eq([v6.family, v6.network, v6.first, v6.size], ["ipv6", "fd00:10::1", "fd00:10::1", 1]);
    /// assert_eq(parse_subnet("fd00::/64").size, ());
    /// try { parse_subnet("192.168.10.0/33"); } catch (e) { assert_eq(e.field, "cidr"); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse_subnet(cidr: &str) -> ScriptResult<Map> {
        let (addr, net) = parse(cidr).map_err(ScriptError::into_eval)?;
        let (first, last) = host_offsets(&net);
        let size = last_offset(&net)
            .checked_add(1)
            .and_then(|s| i64::try_from(s).ok())
            .map_or(Dynamic::UNIT, Dynamic::from);
        let mut m = Map::new();
        let text = |a: IpAddr| Dynamic::from(a.to_string());
        m.insert("family".into(), family(&net).into());
        m.insert("address".into(), text(addr));
        m.insert("network".into(), text(net.network()));
        m.insert("prefix".into(), (net.prefix_len() as i64).into());
        m.insert("netmask".into(), text(net.netmask()));
        m.insert("broadcast".into(), text(net.broadcast()));
        m.insert("first".into(), text(address_at(&net, first)));
        m.insert("last".into(), text(address_at(&net, last)));
        m.insert("size".into(), size);
        m.insert("cidr".into(), net.trunc().to_string().into());
        Ok(m)
    }

    /// Address `n` of the subnet `cidr`: 0 is the network's own, 1 the first
    /// host; a negative `n` counts from the end (-1 is the last address, the
    /// broadcast in IPv4).
    ///
    /// ```rhai
    /// assert_eq(subnet_host("192.168.10.0/24", 1), "192.168.10.1");
    /// assert_eq(subnet_host("192.168.10.0/24", -2), "192.168.10.254");
    /// assert_eq(subnet_host("fd00:10::/64", 1), "fd00:10::1");
    /// try { subnet_host("192.168.10.0/30", 4); } catch (e) { assert_eq(e.field, "n"); }
    /// ```
    #[rhai_fn(name = "subnet_host", return_raw)]
    pub fn subnet_host(cidr: &str, n: i64) -> ScriptResult<String> {
        let (_, net) = parse(cidr).map_err(ScriptError::into_eval)?;
        let last = last_offset(&net);
        let back = u128::from(n.unsigned_abs());
        let offset = if n >= 0 {
            (back <= last).then_some(back)
        } else {
            last.checked_sub(back - 1)
        };
        let offset = offset.ok_or_else(|| {
            ScriptError::invalid(
                "n",
                n,
                format!(
                    "{} has addresses 0 to {last} (or -1, the last, back to -{})",
                    net.trunc(),
                    last.saturating_add(1)
                ),
            )
            .into_eval()
        })?;
        Ok(address_at(&net, offset).to_string())
    }

    /// Whether the address `ip` is in the subnet `cidr` (an address of the
    /// other family never is).
    ///
    /// ```rhai
    /// assert(subnet_contains("192.168.10.0/24", "192.168.10.77"));
    /// assert(!subnet_contains("192.168.10.0/24", "192.168.11.1"));
    /// assert(subnet_contains("fd00::/64", "fd00::abcd"));
    /// ```
    #[rhai_fn(name = "subnet_contains", return_raw)]
    pub fn subnet_contains(cidr: &str, ip: &str) -> ScriptResult<bool> {
        let (_, net) = parse(cidr).map_err(ScriptError::into_eval)?;
        let ip = parse_ip("ip", ip).map_err(ScriptError::into_eval)?;
        Ok(net.contains(&ip))
    }

    /// Where the address `ip` is in the subnet `cidr`: 0 for the network's
    /// own address, 1 for the first host...; `()` when it is not in it. For
    /// ordering addresses (a DHCP range's start before its end).
    ///
    /// ```rhai
    /// assert_eq(subnet_index("192.168.10.0/24", "192.168.10.100"), 100);
    /// assert_eq(subnet_index("192.168.10.0/24", "10.0.0.1"), ());
    /// assert_eq(subnet_index("fd00::/120", "fd00::ff"), 255);
    /// ```
    #[rhai_fn(name = "subnet_index", return_raw)]
    pub fn subnet_index(cidr: &str, ip: &str) -> ScriptResult<Dynamic> {
        let (_, net) = parse(cidr).map_err(ScriptError::into_eval)?;
        let addr = parse_ip("ip", ip).map_err(ScriptError::into_eval)?;
        match offset_of(&net, addr) {
            None => Ok(Dynamic::UNIT),
            Some(offset) => i64::try_from(offset).map(Dynamic::from).map_err(|_| {
                ScriptError::invalid("ip", ip, "too far into the subnet to count in an int")
                    .into_eval()
            }),
        }
    }

    /// The DHCP range a subnet `cidr` gets by default, `[start, end]`: its
    /// host addresses from the first to the last, without the `gateway`
    /// (the host's address) when it is at either end.
    ///
    /// ```rhai
    /// assert_eq(subnet_dhcp_range("192.168.10.0/24", "192.168.10.1"), ["192.168.10.2", "192.168.10.254"]);
    /// assert_eq(subnet_dhcp_range("192.168.10.0/24", "192.168.10.254"), ["192.168.10.1", "192.168.10.253"]);
    /// try { subnet_dhcp_range("192.168.10.0/24", "10.0.0.1"); } catch (e) { assert_eq(e.field, "gateway"); }
    /// ```
    #[rhai_fn(name = "subnet_dhcp_range", return_raw)]
    pub fn subnet_dhcp_range(cidr: &str, gateway: &str) -> ScriptResult<Array> {
        let (_, net) = parse(cidr).map_err(ScriptError::into_eval)?;
        let gw = parse_ip("gateway", gateway).map_err(ScriptError::into_eval)?;
        let (mut start, mut end) = host_offsets(&net);
        match offset_of(&net, gw) {
            Some(g) if g == start => start += 1,
            Some(g) if g == end => end -= 1,
            Some(_) => {}
            None => {
                return Err(ScriptError::invalid(
                    "gateway",
                    gateway,
                    format!("not in {}", net.trunc()),
                )
                .into_eval())
            }
        }
        if start > end {
            return Err(ScriptError::invalid(
                "cidr",
                cidr,
                "leaves no address for DHCP besides the gateway",
            )
            .into_eval());
        }
        Ok(vec![
            address_at(&net, start).to_string().into(),
            address_at(&net, end).to_string().into(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_prefixes_and_whole_spaces_do_not_overflow() {
        for cidr in [
            "fd00::1/128",
            "::/0",
            "10.0.0.1/32",
            "0.0.0.0/0",
            "10.0.0.0/31",
        ] {
            let s = subnet_api::parse_subnet(cidr).unwrap();
            assert!(s.contains_key("last"), "{cidr}");
        }
        assert_eq!(
            subnet_api::subnet_host("::/0", -1).unwrap(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert!(subnet_api::parse_subnet("::/0").unwrap()["size"].is_unit());
        assert!(subnet_api::subnet_host("fd00::1/128", 1).is_err());
        assert!(subnet_api::subnet_dhcp_range("fd00::1/128", "fd00::1").is_err());
    }

    #[test]
    fn errors_say_what_is_wrong_with_the_text() {
        let problem = |cidr: &str| {
            let e = parse(cidr).unwrap_err().message();
            e.strip_prefix("cidr: ").unwrap().to_owned()
        };
        assert_eq!(
            problem("192.168.10.0/33"),
            "prefix length must be 0-32 (got \"192.168.10.0/33\")"
        );
        assert!(problem("192.168.300.0/24").starts_with("each part of an IPv4"));
        assert!(problem("fd00::g/64").starts_with("not an IPv6 address"));
        assert!(problem("10.0.0.0").starts_with("expected CIDR"));
        assert!(problem("10.0.0.0/x").starts_with("the prefix length after '/'"));
    }
}
