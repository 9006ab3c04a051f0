//! DHCP reservations and ranges of a network, changed live.

use ipnet::IpNet;
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};

use super::live::{UpdateCommand, UpdateSection};
use super::spec::normalize_dhcp_host;
use super::update::{apply_live, live_change};
use super::validate;
use super::{current_def, Network};
use crate::api::args::{from_map, keys_of};
use crate::api::error::{AtExt, ScriptError, ScriptResult};
use crate::xml::network::{write_dhcp_host, write_dhcp_range, DhcpHost, DhcpRange, NetworkDef};

/// The `<ip>` (index, subnet) that holds `address`, else an error naming `field`.
fn ip_for(
    ctx: &NativeCallContext,
    net: &Network,
    def: &NetworkDef,
    field: &str,
    address: &str,
) -> ScriptResult<(usize, IpNet)> {
    let a: std::net::IpAddr = address
        .parse()
        .map_err(|_| ScriptError::invalid(field, address, "not an IP address"))
        .at(ctx)?;
    def.ips
        .iter()
        .enumerate()
        .find_map(|(i, ip)| ip.subnet().filter(|s| s.contains(&a)).map(|s| (i, s)))
        .ok_or_else(|| {
            let subnets: Vec<String> = def
                .ips
                .iter()
                .filter_map(|ip| ip.subnet().map(|s| s.trunc().to_string()))
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
    let h: DhcpHost = from_map(ctx, "DHCP host", map, keys_of::<DhcpHost>())?;
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
    validate::dhcp_host("dhcp_host", h, &subnet).at(ctx)?;
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

/// An `invalid` error when another of `hosts` already has `h`'s address
/// (adding and modifying a reservation both refuse it).
fn refuse_taken_ip(net: &Network, hosts: &[DhcpHost], h: &DhcpHost) -> Result<(), ScriptError> {
    match ip_taken(hosts, h) {
        None => Ok(()),
        Some(other) => Err(ScriptError::invalid(
            "dhcp_host.ip",
            h.ip.clone().unwrap_or_default(),
            format!(
                "already reserved for {} on network '{}'",
                host_label(other),
                net.name()
            ),
        )),
    }
}

fn host_label(h: &DhcpHost) -> String {
    h.mac
        .clone()
        .or_else(|| h.id.clone())
        .or_else(|| h.name.clone())
        .unwrap_or_default()
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
        .map_err(|_| ScriptError::invalid("dhcp_range.end", end, "not an IP address"))
        .at(ctx)?;
    if !subnet.contains(&e) {
        return Err(ScriptError::invalid(
            "dhcp_range.end",
            end,
            format!("outside the subnet {}", subnet.trunc()),
        )
        .at(ctx));
    }
    let s: std::net::IpAddr = start
        .parse()
        .map_err(|_| ScriptError::invalid("dhcp_range.start", start, "not an IP address"))
        .at(ctx)?;
    // Both are in `subnet`, so of one family: addresses compare in order.
    if s > e {
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

#[export_module(manifest)]
pub mod network_dhcp_api {
    use super::*;

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
        refuse_taken_ip(net, &hosts, &h).at(&ctx)?;
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
        refuse_taken_ip(net, &hosts, &h).at(&ctx)?;
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
        // Ranges of one `<ip>` are of one family; one libvirt holds that
        // does not parse orders first.
        let ord = |a: &str| a.parse::<std::net::IpAddr>().ok();
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
}
