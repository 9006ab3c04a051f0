//! A network's life cycle: define (from a spec or XML), create, start (with
//! the stale-bridge check), stop, restart, undefine, autostart; each step
//! journalled with its undo.
use crate::runtime::ErrorKind;
use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::error::Error as VirtError;
use virt::network::Network as RawNetwork;
use virt::sys;

use super::occupancy::{check_clash, invalidate, remember};
use super::spec::spec_of;
use super::validate;
use super::{config_xml, refused, Network};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Host;
use crate::runtime::journal::{self, Undo};
use crate::xml::network::NetworkDef;

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
pub(super) fn undo_redefine(host: Host, xml: String) -> Undo {
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

pub(super) fn define_xml(
    ctx: &NativeCallContext,
    host: &Host,
    xml: &str,
    def: &NetworkDef,
) -> ScriptResult<Network> {
    let raw = Arc::new(
        host.conn()
            .define_network_xml(xml)
            .map_err(|e| refused("define", &def.name, &e))
            .at(ctx)?,
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

pub(super) fn start(ctx: &NativeCallContext, net: &Network) -> ScriptResult<()> {
    start_with(ctx, net, false)
}

/// Start the network; when its bridge device is already there and no active
/// network owns it (a daemon killed while starting it leaves it behind), say
/// so, or with `cleanup_stale` remove it and start.
pub(super) fn start_with(
    ctx: &NativeCallContext,
    net: &Network,
    cleanup_stale: bool,
) -> ScriptResult<()> {
    if let Err(e) = net.raw.create() {
        let bridge = stale_bridge(net, &e);
        match bridge {
            Some(dev) if cleanup_stale => {
                crate::virt_ext::network::delete_stale_bridge(net.host.uri(), &dev)
                    .map_err(|why| {
                        ScriptError::new(
                            ErrorKind::StaleBridge,
                            format!(
                                "network '{}': cannot remove the stale bridge {dev}: {why}",
                                net.name()
                            ),
                        )
                        .with("field", "bridge.name")
                        .with("value", dev.clone())
                    })
                    .at(ctx)?;
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

pub(super) fn set_autostart(ctx: &NativeCallContext, net: &Network, on: bool) -> ScriptResult<()> {
    let before = net.raw.autostart().script(ctx)?;
    net.raw.set_autostart(on).script(ctx)?;
    journal::record_with("set_autostart", format!("{} = {on}", net.label()), || {
        let n = net.raw.clone();
        Some(Box::new(move || n.set_autostart(before).map(|_| ())))
    });
    Ok(())
}

pub(super) fn stop_network(ctx: &NativeCallContext, net: &Network) -> ScriptResult<()> {
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

pub(super) fn restart(ctx: &NativeCallContext, net: &Network) -> ScriptResult<()> {
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

#[export_module(manifest)]
pub mod network_lifecycle_api {
    use super::*;

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
        let def = NetworkDef::parse(xml).at(&ctx)?;
        validate::network(&def).at(&ctx)?;
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
            .map_err(|e| refused("create", &def.name, &e))
            .at(&ctx)?;
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

    /// Start the network (`virsh net-start`).
    ///
    /// ```rhai
    /// let net = HOST.define_network(#{ name: "lab", ip: "192.168.10.1/24" });
    /// net.start();
    /// assert(net.active);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn start(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<()> {
        super::start(&ctx, net)
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
    #[rhai_fn(pure, return_raw)]
    pub fn restart(ctx: NativeCallContext, net: &mut Network) -> ScriptResult<()> {
        super::restart(&ctx, net)
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
}
