//! The other sections libvirt changes live: DNS hosts, TXT and SRV
//! records, forward interfaces and port groups.

use rhai::plugin::*;
use rhai::{Map, NativeCallContext};

use super::live::{UpdateCommand, UpdateSection};
use super::update::{apply_live, live_change};
use super::validate;
use super::{current_def, Network};
use crate::api::args::{from_map, keys_of};
use crate::api::error::{AtExt, ScriptError, ScriptResult};
use crate::xml::network::{
    write_dns_host, write_dns_srv, write_dns_txt, write_portgroup, DnsHost, DnsSrv, DnsTxt,
    PortGroup,
};
use crate::xml::tree::Element;

fn dns_host_of(ctx: &NativeCallContext, map: &Map) -> ScriptResult<DnsHost> {
    let mut h: DnsHost = from_map(ctx, "DNS host", map, keys_of::<DnsHost>())?;
    h.ip =
        h.ip.parse::<std::net::IpAddr>()
            .map_err(|_| ScriptError::invalid("dns_host.ip", &h.ip, "not an IP address"))
            .at(ctx)?
            .to_string();
    if h.hostnames.is_empty() {
        return Err(
            ScriptError::invalid("dns_host.hostnames", "[]", "give at least one name").at(ctx),
        );
    }
    for (i, name) in h.hostnames.iter().enumerate() {
        validate::dns_name(&format!("dns_host.hostnames[{i}]"), name).at(ctx)?;
    }
    Ok(h)
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
    let pg: PortGroup = from_map(ctx, "port group", group, keys_of::<PortGroup>())?;
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

#[export_module(manifest)]
pub mod network_records_api {
    use super::*;

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
        validate::dns_txt("dns_txt", &t).at(&ctx)?;
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
        let s: DnsSrv = from_map(&ctx, "DNS SRV record", &srv, keys_of::<DnsSrv>())?;
        validate::dns_srv("dns_srv", &s).at(&ctx)?;
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
}
