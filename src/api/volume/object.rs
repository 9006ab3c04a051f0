//! `Volume` in the object list: `virsh vol-list --details`, found by
//! `pool.volume(name)`, and its part in `run --plan` (inside its pool).
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};
use virt::connect::Connect;
use virt::error::{Error, ErrorNumber};

use super::Volume;
use crate::api::object::{present, Keyed, Lookup, ObjectState, Plan, ScriptObject};
use crate::api::Pool;
use crate::runtime::units::format_size;

impl ScriptObject for Volume {
    const NAME: &'static str = "Volume";
    const MODULES: &'static [&'static ModuleManifest] = &[
        exported_manifest!(super::volume_api),
        exported_manifest!(super::create::volume_create_api),
        exported_manifest!(super::clone::volume_clone_api),
        exported_manifest!(super::delete::volume_delete_api),
        exported_manifest!(super::resize::volume_resize_api),
        exported_manifest!(super::wipe::volume_wipe_api),
        exported_manifest!(super::transfer::volume_transfer_api),
        exported_manifest!(super::copy::volume_copy_api),
    ];
    /// As `virsh vol-list --details`.
    const COLUMNS: &'static [&'static str] = &["Name", "Path", "Capacity", "Allocation"];
    type Parent = Pool;
    const LOOKUP: Option<Lookup<Volume>> = Some(Lookup {
        methods: &["volume", "find_volume"],
        names: |pool| pool.raw.list_volumes().ok(),
        find: |pool, name| {
            let raw = pool.raw.lookup_storage_vol_by_name(name).ok()?;
            Some(super::wrap(&pool.host, raw))
        },
    });
    const PLAN: Option<Plan> = Some(Plan {
        key: "volume",
        gone: ErrorNumber::NoStorageVolume,
        states,
        // `volume/POOL/NAME` goes in `pool/POOL`.
        parent: |key| {
            let rest = key.strip_prefix("volume/")?;
            let (pool, _) = rest.split_once('/').unwrap_or((rest, ""));
            Some(format!("pool/{pool}"))
        },
        rehearsal: |element, _| element,
        restore: |_, _, _| Ok(()),
    });

    fn row(&self) -> Vec<String> {
        let info = self.raw.info().ok();
        vec![
            self.name(),
            self.raw.path().unwrap_or_else(|_| "-".into()),
            info.as_ref()
                .map(|i| format_size(i.capacity))
                .unwrap_or_else(|| "-".into()),
            info.as_ref()
                .map(|i| format_size(i.allocation))
                .unwrap_or_else(|| "-".into()),
        ]
    }

    fn to_json(&self) -> Value {
        json!({"type": "Volume", "name": self.name(), "pool": self.pool_name(), "path": self.raw.path().unwrap_or_default()})
    }
}

/// The volumes of the running pools (an inactive pool lists none).
fn states(conn: &Connect) -> Result<Vec<Keyed>, Error> {
    let mut out = Vec::new();
    for pool in conn.list_all_storage_pools(0)? {
        let listed = present(pool.name().and_then(|name| {
            Ok((
                name,
                if pool.is_active()? {
                    pool.list_all_volumes(0)?
                } else {
                    Vec::new()
                },
            ))
        }))?;
        let Some((pool_name, volumes)) = listed else {
            continue;
        };
        for vol in volumes {
            let state = present(vol.name().and_then(|name| Ok((name, vol.xml_desc(0)?))))?;
            if let Some((name, xml)) = state {
                out.push((
                    format!("volume/{pool_name}/{name}"),
                    ObjectState {
                        xml,
                        active: true,
                        autostart: false,
                    },
                ));
            }
        }
    }
    Ok(out)
}
