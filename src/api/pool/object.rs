//! `Pool` in the object list: `virsh pool-list --all --details`, found by
//! `HOST.pool(name)`, and its part in `run --plan`.
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};
use virt::connect::Connect;
use virt::error::{Error, ErrorNumber};
use virt::storage_pool::StoragePool;

use super::Pool;
use crate::api::object::{states_of, Keyed, Lookup, ObjectState, Plan, ScriptObject};
use crate::api::table::yes_no;
use crate::api::Host;
use crate::runtime::units::format_size;

impl ScriptObject for Pool {
    const NAME: &'static str = "Pool";
    const MODULES: &'static [&'static ModuleManifest] = &[
        exported_manifest!(super::pool_api),
        exported_manifest!(super::define::pool_define_api),
        exported_manifest!(super::lifecycle::pool_lifecycle_api),
    ];
    /// As `virsh pool-list --all --details`.
    const COLUMNS: &'static [&'static str] = &[
        "Name",
        "State",
        "Autostart",
        "Persistent",
        "Capacity",
        "Allocation",
        "Available",
    ];
    type Parent = Host;
    const LOOKUP: Option<Lookup<Pool>> = Some(Lookup {
        methods: &["pool", "find_pool"],
        names: |host| {
            let pools = host.conn().list_all_storage_pools(0).ok()?;
            Some(pools.iter().filter_map(|p| p.name().ok()).collect())
        },
        find: |host, name| {
            let raw = host.conn().lookup_storage_pool_by_name(name).ok()?;
            Some(Pool {
                host: host.clone(),
                raw: raw.into(),
            })
        },
    });
    const PLAN: Option<Plan> = Some(Plan {
        key: "pool",
        gone: ErrorNumber::NoStoragePool,
        states: |conn| states_of(conn.list_all_storage_pools(0)?, state),
        parent: |_| None,
        rehearsal: |element, _| element,
        restore,
    });

    fn row(&self) -> Vec<String> {
        let (state, capacity, allocation, available) = match self.raw.info() {
            Ok(i) => (
                if self.raw.is_active().unwrap_or(false) {
                    "active"
                } else {
                    "inactive"
                }
                .to_owned(),
                format_size(i.capacity),
                format_size(i.allocation),
                format_size(i.available),
            ),
            Err(_) => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        vec![
            self.name(),
            state,
            self.raw
                .autostart()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
            self.raw
                .is_persistent()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
            capacity,
            allocation,
            available,
        ]
    }

    fn to_json(&self) -> Value {
        json!({"type": "Pool", "name": self.name(), "active": self.is_active()})
    }
}

fn state(pool: &StoragePool) -> Result<Keyed, Error> {
    Ok((
        format!("pool/{}", pool.name()?),
        ObjectState {
            xml: pool
                .xml_desc(virt::sys::VIR_STORAGE_XML_INACTIVE)
                .or_else(|_| pool.xml_desc(0))?,
            active: pool.is_active()?,
            autostart: pool.autostart().unwrap_or(false),
        },
    ))
}

/// The test driver starts every pool it loads.
fn restore(conn: &Connect, name: &str, state: &ObjectState) -> Result<(), Error> {
    let pool = conn.lookup_storage_pool_by_name(name)?;
    if !state.active && pool.is_active()? {
        pool.destroy()?;
    }
    pool.set_autostart(state.autostart).map(|_| ())
}
