//! `NodeDevice` in the object list: `virsh nodedev-list` with each device's
//! parent, capabilities and driver, found by `HOST.node_device(name)`. Not
//! in `run --plan`: a script cannot change the host's devices.
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};

use super::NodeDevice;
use crate::api::object::{Lookup, ScriptObject};
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
