//! `NodeDevice` in the object list: `virsh nodedev-list` with each device's
//! parent, capabilities and driver, found by `HOST.node_device(name)`. In
//! `run --plan` only as what a VM's `hostdevs` are checked against: the
//! host's PCI and USB devices are copied into the rehearsal (names and
//! addresses; a script cannot change them, so they never show as changes).
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};

use super::NodeDevice;
use virt::error::{Error, ErrorNumber};

use crate::api::object::{states_of, Keyed, Lookup, ObjectState, Plan, ScriptObject};
use crate::xml::tree::Element;
use crate::api::Host;

impl ScriptObject for NodeDevice {
    const NAME: &'static str = "NodeDevice";
    const MODULES: &'static [&'static ModuleManifest] =
        &[exported_manifest!(super::node_device_api)];
    const COLUMNS: &'static [&'static str] = &["Name", "Parent", "Capabilities", "Driver"];
    type Parent = Host;
    const LOOKUP: Option<Lookup<NodeDevice>> = Some(Lookup {
        methods: &["node_device"],
        names: |host| {
            let devices = host.conn().list_all_node_devices(0).ok()?;
            Some(devices.iter().filter_map(|d| d.name().ok()).collect())
        },
        find: |host, name| super::lookup(host, name).ok(),
    });
    const PLAN: Option<Plan> = Some(Plan {
        key: "nodedev",
        gone: ErrorNumber::NoNodeDevice,
        states: |conn| {
            let all = conn.list_all_node_devices(0)?;
            let passable: Vec<_> = all.into_iter().filter(passable).collect();
            states_of(passable, state)
        },
        parent: |_| None,
        rehearsal: |element, _| rehearsal(element),
        restore: |_, _, _| Ok(()),
    });

    fn row(&self) -> Vec<String> {
        let doc = self.document().ok();
        let text = |path: &[&str]| {
            doc.as_ref()
                .and_then(|d| d.path(path))
                .map(|e| e.text())
                .unwrap_or_else(|| "-".into())
        };
        vec![
            self.name(),
            text(&["parent"]),
            self.capabilities()
                .map(|caps| caps.join(","))
                .unwrap_or_else(|_| "-".into()),
            text(&["driver", "name"]),
        ]
    }

    fn to_json(&self) -> Value {
        let doc = self.document().ok();
        let text = |path: &[&str]| doc.as_ref().and_then(|d| d.path(path)).map(|e| e.text());
        let map = |m: Option<rhai::Map>| m.map(|m| crate::api::json::to_json(&m.into()));
        json!({
            "type": "NodeDevice",
            "name": self.name(),
            "parent": text(&["parent"]),
            "capabilities": self.capabilities().unwrap_or_default(),
            "driver": text(&["driver", "name"]),
            "pci": map(doc.as_ref().and_then(super::pci_of)),
            "usb": map(doc.as_ref().and_then(super::usb_of)),
        })
    }
}

/// Whether a VM can have the device (a PCI or USB device).
fn passable(dev: &virt::nodedev::NodeDevice) -> bool {
    dev.list_caps()
        .is_ok_and(|caps| caps.iter().any(|c| c == "pci" || c == "usb_device"))
}

fn state(dev: &virt::nodedev::NodeDevice) -> Result<Keyed, Error> {
    Ok((
        format!("nodedev/{}", dev.name()?),
        ObjectState {
            xml: dev.xml_desc(0)?,
            active: true,
            autostart: false,
        },
    ))
}

/// What the test driver needs of a device: its name and the capability's
/// address and ids (the test driver's parser is stricter than the host's
/// about the rest, and the rest does not matter to a rehearsal).
fn rehearsal(doc: Element) -> Element {
    let mut out = Element::new("device");
    if let Some(name) = doc.child("name") {
        out.push(name.clone());
    }
    for cap in doc.children_named("capability") {
        let keep: &[&str] = match cap.attr("type") {
            Some("pci") => &["domain", "bus", "slot", "function", "product", "vendor"],
            Some("usb_device") => &["bus", "device", "product", "vendor"],
            _ => continue,
        };
        let mut copy = Element::new("capability");
        if let Some(t) = cap.attr("type") {
            copy.set_attr("type", t);
        }
        for name in keep {
            if let Some(child) = cap.child(name) {
                copy.push(child.clone());
            }
        }
        out.push(copy);
    }
    out
}
