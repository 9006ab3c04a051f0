//! `Snapshot` in the object list: `virsh snapshot-list --parent`, found by
//! `vm.snapshot_named(name)`.
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};

use super::Snapshot;
use crate::api::object::{Lookup, ScriptObject};
use crate::api::table::yes_no;
use crate::api::Vm;

impl ScriptObject for Snapshot {
    const NAME: &'static str = "Snapshot";
    const MODULES: &'static [&'static ModuleManifest] =
        &[exported_manifest!(super::snapshot_api)];
    /// As `virsh snapshot-list --parent`, with whether it is the current one.
    const COLUMNS: &'static [&'static str] =
        &["Name", "Creation Time", "State", "Parent", "Current"];
    type Parent = Vm;
    const LOOKUP: Option<Lookup<Snapshot>> = Some(Lookup {
        methods: &["snapshot_named", "find_snapshot"],
        names: |vm| {
            let snapshots = vm.raw.list_all_snapshots(0).ok()?;
            Some(snapshots.iter().filter_map(|s| s.name().ok()).collect())
        },
        find: |vm, name| {
            let raw = virt::domain::Domain::lookup_snapshot_by_name(&vm.raw, name, 0).ok()?;
            Some(super::wrap(vm, raw))
        },
    });

    fn row(&self) -> Vec<String> {
        let d = self.definition().ok();
        let created = d
            .as_ref()
            .and_then(|d| d.creation_time)
            .map(|t| {
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
                )
                .to_string()
            })
            .unwrap_or_else(|| "-".into());
        vec![
            self.name(),
            created,
            d.as_ref()
                .and_then(|d| d.state.clone())
                .unwrap_or_else(|| "-".into()),
            d.and_then(|d| d.parent).unwrap_or_else(|| "-".into()),
            yes_no(self.is_current()).to_owned(),
        ]
    }

    fn to_json(&self) -> Value {
        let d = self.definition().ok();
        json!({
            "type": "Snapshot",
            "vm": self.vm.name(),
            "name": self.name(),
            "state": d.as_ref().and_then(|d| d.state.clone()),
            "parent": d.as_ref().and_then(|d| d.parent.clone()),
            "created": d.as_ref().and_then(|d| d.creation_time),
            "current": self.is_current(),
        })
    }
}
