//! `Network` in the object list: `virsh net-list --all`, found by
//! `HOST.network(name)`, and its part in `run --plan`.
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};
use virt::connect::Connect;
use virt::error::{Error, ErrorNumber};
use virt::network::Network as RawNetwork;

use super::Network;
use crate::api::object::{states_of, Keyed, Lookup, ObjectState, Plan, ScriptObject};
use crate::api::table::yes_no;
use crate::api::Host;

impl ScriptObject for Network {
    const NAME: &'static str = "Network";
    const MODULES: &'static [&'static ModuleManifest] = &[
        exported_manifest!(super::network_api),
        exported_manifest!(super::lifecycle::network_lifecycle_api),
        exported_manifest!(super::converge::network_converge_api),
        exported_manifest!(super::config::network_config_api),
        exported_manifest!(super::dhcp::network_dhcp_api),
        exported_manifest!(super::records::network_records_api),
    ];
    /// As `virsh net-list --all`, with the bridge.
    const COLUMNS: &'static [&'static str] =
        &["Name", "State", "Autostart", "Persistent", "Bridge"];
    type Parent = Host;
    const LOOKUP: Option<Lookup<Network>> = Some(Lookup {
        methods: &["network", "find_network"],
        names: |host| {
            let networks = host.conn().list_all_networks(0).ok()?;
            Some(networks.iter().filter_map(|n| n.name().ok()).collect())
        },
        find: |host, name| {
            let raw = host.conn().lookup_network_by_name(name).ok()?;
            Some(Network {
                host: host.clone(),
                raw: raw.into(),
            })
        },
    });
    const PLAN: Option<Plan> = Some(Plan {
        key: "network",
        gone: ErrorNumber::NoNetwork,
        states: |conn| states_of(conn.list_all_networks(0)?, state),
        parent: |_| None,
        rehearsal: |element, _| element,
        restore,
    });

    fn row(&self) -> Vec<String> {
        let flag = |r: Result<bool, Error>| {
            r.map(|b| yes_no(b).to_owned())
                .unwrap_or_else(|_| "-".into())
        };
        vec![
            self.raw.name().unwrap_or_else(|_| "-".into()),
            match self.raw.is_active() {
                Ok(true) => "active".into(),
                Ok(false) => "inactive".into(),
                Err(_) => "-".into(),
            },
            flag(self.raw.autostart()),
            flag(self.raw.is_persistent()),
            self.raw.bridge_name().unwrap_or_else(|_| "-".into()),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "type": "Network",
            "name": self.raw.name().unwrap_or_default(),
            "active": self.raw.is_active().unwrap_or(false),
            "persistent": self.raw.is_persistent().unwrap_or(false),
        })
    }
}

fn state(net: &RawNetwork) -> Result<Keyed, Error> {
    let flags = if net.is_persistent()? {
        virt::sys::VIR_NETWORK_XML_INACTIVE
    } else {
        0
    };
    Ok((
        format!("network/{}", net.name()?),
        ObjectState {
            // The test driver (the rehearsal) has no INACTIVE flag for networks.
            xml: net.xml_desc(flags).or_else(|_| net.xml_desc(0))?,
            active: net.is_active()?,
            autostart: net.autostart().unwrap_or(false),
        },
    ))
}

/// The test driver starts every network it loads.
fn restore(conn: &Connect, name: &str, state: &ObjectState) -> Result<(), Error> {
    let net = conn.lookup_network_by_name(name)?;
    if !state.active && net.is_active()? {
        net.destroy()?;
    }
    net.set_autostart(state.autostart).map(|_| ())
}
