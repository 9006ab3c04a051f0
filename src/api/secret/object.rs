//! `Secret` in the object list: `virsh secret-list` with the secret's flags
//! and description; never its value. Not found by name (scripts list them),
//! not in `run --plan`.
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};

use super::Secret;
use crate::api::object::ScriptObject;
use crate::api::table::yes_no;

impl ScriptObject for Secret {
    const NAME: &'static str = "Secret";
    const MODULES: &'static [&'static ModuleManifest] = &[exported_manifest!(super::secret_api)];
    const COLUMNS: &'static [&'static str] = &[
        "UUID",
        "Usage",
        "Usage ID",
        "Ephemeral",
        "Private",
        "Description",
    ];
    type Parent = ();

    fn row(&self) -> Vec<String> {
        let Ok(d) = self.definition() else {
            let mut row = vec!["-".to_owned(); Self::COLUMNS.len()];
            row[0] = self.uuid();
            return row;
        };
        vec![
            self.uuid(),
            d.usage,
            d.usage_id.unwrap_or_else(|| "-".into()),
            yes_no(d.ephemeral).to_owned(),
            yes_no(d.private).to_owned(),
            d.description.unwrap_or_else(|| "-".into()),
        ]
    }

    fn to_json(&self) -> Value {
        let d = self.definition().ok();
        json!({
            "type": "Secret",
            "uuid": self.uuid(),
            "usage": d.as_ref().map(|d| d.usage.clone()),
            "usage_id": d.as_ref().and_then(|d| d.usage_id.clone()),
            "description": d.as_ref().and_then(|d| d.description.clone()),
            "ephemeral": d.as_ref().map(|d| d.ephemeral),
            "is_private": d.as_ref().map(|d| d.private),
        })
    }
}
