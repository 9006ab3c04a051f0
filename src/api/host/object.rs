//! `Host` in the object list: a table row like `virsh uri` and `hostname`.
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};

use super::Host;
use crate::api::object::ScriptObject;
use crate::api::table::yes_no;

impl ScriptObject for Host {
    const NAME: &'static str = "Host";
    const MODULES: &'static [&'static ModuleManifest] = &[
        exported_manifest!(super::host_api),
        exported_manifest!(super::numa::host_numa_api),
    ];
    const COLUMNS: &'static [&'static str] = &["URI", "Hostname", "Libvirt", "Alive"];
    /// The root: scripts get hosts from `HOST` and `connect`, not by name.
    type Parent = ();

    fn row(&self) -> Vec<String> {
        let conn = self.conn();
        vec![
            self.uri().to_owned(),
            conn.hostname().unwrap_or_else(|_| "-".into()),
            conn.lib_version()
                .map(super::version_string)
                .unwrap_or_else(|_| "-".into()),
            yes_no(conn.is_alive().unwrap_or(false)).to_owned(),
        ]
    }

    fn to_json(&self) -> Value {
        json!({"type": "Host", "uri": self.uri()})
    }
}
