//! `Vm` in the object list: `virsh list --all`, found by `HOST.vm(name)`,
//! and its part in `run --plan` (as a test-driver domain).
use rhai::exported_manifest;
use rhai::plugin::ModuleManifest;
use serde_json::{json, Value};
use virt::domain::Domain;
use virt::error::{Error, ErrorNumber};

use super::Vm;
use crate::api::object::{states_of, Keyed, Lookup, ObjectState, Plan, ScriptObject};
use crate::api::table::yes_no;
use crate::api::Host;
use crate::xml::tree::Element;

impl ScriptObject for Vm {
    const NAME: &'static str = "Vm";
    const MODULES: &'static [&'static ModuleManifest] = &[
        exported_manifest!(super::vm_api),
        exported_manifest!(super::create::vm_create_api),
        exported_manifest!(super::lifecycle::vm_lifecycle_api),
        exported_manifest!(super::undefine::vm_undefine_api),
        exported_manifest!(super::edit::vm_edit_api),
        exported_manifest!(super::tuning::vm_tuning_api),
        exported_manifest!(super::devices::vm_devices_api),
        exported_manifest!(super::guest::vm_guest_api),
        exported_manifest!(super::clone::vm_clone_api),
        exported_manifest!(super::migrate::vm_migrate_api),
        exported_manifest!(super::numa::numa_api),
        exported_manifest!(super::numa::numa_tune_api),
    ];
    /// As `virsh list --all` with autostart and persistence, the name first
    /// (the rows are sorted by it; the Id is blank for a VM that is off).
    const COLUMNS: &'static [&'static str] = &["Name", "State", "Id", "Autostart", "Persistent"];
    type Parent = Host;
    const LOOKUP: Option<Lookup<Vm>> = Some(Lookup {
        methods: &["vm", "find_vm"],
        names: |host| {
            let domains = host.conn().list_all_domains(0).ok()?;
            Some(domains.iter().filter_map(|d| d.name().ok()).collect())
        },
        find: |host, name| {
            let raw = host.conn().lookup_domain_by_name(name).ok()?;
            Some(Vm {
                host: host.clone(),
                raw: raw.into(),
            })
        },
    });
    const PLAN: Option<Plan> = Some(Plan {
        key: "domain",
        gone: ErrorNumber::NoDomain,
        states: |conn| states_of(conn.list_all_domains(0)?, state),
        parent: |_| None,
        rehearsal,
        restore: |conn, name, state| {
            let dom = conn.lookup_domain_by_name(name)?;
            dom.set_autostart(state.autostart).map(|_| ())
        },
    });

    fn row(&self) -> Vec<String> {
        let id = self
            .raw
            .id()
            .map(|i| i.to_string())
            .unwrap_or_else(|| "-".into());
        vec![
            self.name(),
            self.state_name(),
            id,
            self.raw
                .autostart()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
            self.raw
                .is_persistent()
                .map(|a| yes_no(a).to_owned())
                .unwrap_or_else(|_| "-".into()),
        ]
    }

    fn to_json(&self) -> Value {
        json!({"type": "Vm", "name": self.name(), "state": self.state_name()})
    }
}

fn state(dom: &Domain) -> Result<Keyed, Error> {
    let flags = if dom.is_persistent()? {
        virt::sys::VIR_DOMAIN_XML_INACTIVE
    } else {
        0
    };
    Ok((
        format!("domain/{}", dom.name()?),
        ObjectState {
            xml: dom.xml_desc(flags).or_else(|_| dom.xml_desc(0))?,
            active: dom.is_active()?,
            autostart: dom.autostart().unwrap_or(false),
        },
    ))
}

/// The test driver runs only `type='test'` domains; its own namespace sets the run state.
fn rehearsal(mut dom: Element, state: &ObjectState) -> Element {
    dom.set_attr("type", "test");
    dom.set_attr("xmlns:test", "http://libvirt.org/schemas/domain/test");
    // virDomainState: 1 running, 5 shut off.
    dom.push(Element::new("test:runstate").with_text(if state.active { "1" } else { "5" }));
    dom
}
