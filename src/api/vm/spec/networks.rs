//! `networks[i]`: a libvirt network, a bridge or a macvtap device, and the
//! rule that a MAC address is one device's.
use rhai::{Array, Dynamic, Map};
use virt::connect::Connect;

use super::check_identifier;
use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::xml::domain::{Domain, Interface};

/// The other VM on the host whose interface has `mac`, if any.
fn vm_with_mac(conn: &Connect, mac: &str) -> Option<String> {
    let doms = conn.list_all_domains(0).ok()?;
    doms.iter().find_map(|dom| {
        let xml = dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE).ok()?;
        let (d, _) = Domain::parse(&xml).ok()?;
        d.interfaces
            .iter()
            .any(|i| {
                i.mac
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(mac))
            })
            .then(|| dom.name().unwrap_or_default())
    })
}

/// `networks`: names or maps, each a NIC of `d`. Absent: `default` when
/// the host has it, as virt-install does. A MAC address is one device's:
/// not twice in this VM, not another VM's.
pub(super) fn plan_networks(
    conn: &Connect,
    networks: Option<Array>,
    d: &mut Domain,
) -> Result<(), ScriptError> {
    match networks {
        Some(nets) => {
            for (i, item) in nets.iter().enumerate() {
                d.interfaces
                    .push(plan_interface(conn, &format!("networks[{i}]"), item)?);
            }
        }
        None => {
            if conn.lookup_network_by_name("default").is_ok() {
                d.interfaces.push(Interface {
                    iface_type: "network".into(),
                    source: Some("default".into()),
                    model: Some("virtio".into()),
                    ..Interface::default()
                });
            }
        }
    }
    for (i, iface) in d.interfaces.iter().enumerate() {
        let Some(mac) = &iface.mac else { continue };
        if let Some(j) = d.interfaces[..i].iter().position(|o| {
            o.mac
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        }) {
            return Err(ScriptError::invalid(
                &format!("networks[{i}].mac"),
                mac,
                format!("networks[{j}] of this VM has the same MAC address"),
            ));
        }
        if let Some(other) = vm_with_mac(conn, mac) {
            return Err(ScriptError::invalid(
                &format!("networks[{i}].mac"),
                mac,
                format!("VM '{other}' already has an interface with this MAC address"),
            ));
        }
    }
    Ok(())
}

/// `networks[i]`: a network name, or `#{ network | bridge | direct, mode,
/// mac, model }` (`mode` for direct only: macvtap's bridge, vepa, private
/// or passthrough).
pub fn plan_interface(
    conn: &Connect,
    field: &str,
    item: &Dynamic,
) -> Result<Interface, ScriptError> {
    let map: Map = if item.is_string() {
        let mut m = Map::new();
        m.insert("network".into(), item.clone());
        m
    } else if let Some(m) = item.read_lock::<Map>() {
        m.clone()
    } else {
        return Err(ScriptError::invalid(
            field,
            show(item),
            format!("must be a network name or a map, not {}", item.type_name()),
        ));
    };
    const KINDS: [&str; 3] = ["network", "bridge", "direct"];
    let f = Fields::new(field, &map);
    for kind in KINDS {
        f.string(kind)?;
    }
    let mac = f.string("mac")?.map(|m| m.to_ascii_lowercase());
    let mode = f.one_of("mode", &["bridge", "vepa", "private", "passthrough"])?;
    let model = f.string("model")?;
    f.finish()?;
    let kind = f.exactly_one(&KINDS, "give exactly one of network, bridge or direct")?;
    let source = f.string(kind)?.unwrap_or_default();
    if source.is_empty() {
        return Err(ScriptError::invalid(&f.name(kind), "", "must not be empty"));
    }
    if kind == "network" && conn.lookup_network_by_name(&source).is_err() {
        return Err(ScriptError::invalid(
            &f.name("network"),
            &source,
            "no libvirt network by this name",
        ));
    }
    if let Some(mac) = &mac {
        if let Some(problem) = crate::xml::network::mac_problem(mac) {
            return Err(ScriptError::invalid(&f.name("mac"), mac, problem));
        }
    }
    if mode.is_some() && kind != "direct" {
        return Err(ScriptError::invalid(
            &f.name("mode"),
            mode.unwrap_or_default(),
            "only goes with direct (macvtap)",
        ));
    }
    Ok(Interface {
        iface_type: kind.into(),
        source: Some(source),
        mode: if kind == "direct" {
            Some(mode.unwrap_or_else(|| "bridge".into()))
        } else {
            None
        },
        mac,
        model: Some(match model {
            Some(model) => {
                check_identifier(&f.name("model"), &model)?;
                model
            }
            None => "virtio".into(),
        }),
        target: None,
    })
}
