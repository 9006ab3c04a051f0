//! `Vm` script object: a libvirt domain, created the way virt-install does,
//! with its whole lifecycle, live tuning and addresses.
//!
//! This file holds the type, the helpers its concerns share and its
//! properties; each concern has its own file and export module.

pub mod clone;
pub mod create;
pub mod devices;
pub mod edit;
pub mod guest;
pub mod keys;
pub mod lifecycle;
pub mod migrate;
pub mod numa;
mod object;
pub mod phases;
pub mod spec;
pub mod tuning;
pub mod undefine;

use crate::runtime::ErrorKind;

use rhai::plugin::*;
use rhai::{Array, Map, NativeCallContext};
use virt::domain::Domain as RawDomain;
use virt::sys;

use super::error::{LibvirtResultExt, ScriptError, ScriptResult};
use super::Host;
use crate::api::args::Fields;
use crate::runtime::journal;
use crate::xml::domain::{Disk, Domain, Interface};
use crate::xml::tree::Element;

/// A libvirt object handle plus the host it came from.
#[derive(Clone)]
pub struct Vm {
    pub host: Host,
    pub raw: std::sync::Arc<virt::domain::Domain>,
}

impl Vm {
    pub fn name(&self) -> String {
        self.raw.name().unwrap_or_default()
    }

    pub fn state_name(&self) -> String {
        crate::virt_ext::domain::state(&self.raw)
            .map(|s| state_name(s).to_owned())
            .unwrap_or_else(|_| "unknown".into())
    }
}

/// virsh's words for domain states.
pub fn state_name(state: virt::domain::DomainStateEnum) -> &'static str {
    match state.to_raw() {
        sys::VIR_DOMAIN_RUNNING => "running",
        sys::VIR_DOMAIN_BLOCKED => "idle",
        sys::VIR_DOMAIN_PAUSED => "paused",
        sys::VIR_DOMAIN_SHUTDOWN => "in shutdown",
        sys::VIR_DOMAIN_SHUTOFF => "shut off",
        sys::VIR_DOMAIN_CRASHED => "crashed",
        sys::VIR_DOMAIN_PMSUSPENDED => "pmsuspended",
        _ => "no state",
    }
}

const STATES: &[&str] = &[
    "running",
    "idle",
    "paused",
    "in shutdown",
    "shut off",
    "crashed",
    "pmsuspended",
    "no state",
];

const AFFECT_LIVE: u32 = sys::VIR_DOMAIN_AFFECT_LIVE;
const AFFECT_CONFIG: u32 = sys::VIR_DOMAIN_AFFECT_CONFIG;

/// `#{ live, config }` → VIR_DOMAIN_AFFECT_* flags. By default a running VM
/// changes now and (when persistent) for the next boot; a stopped one in its config.
pub(crate) fn affect_flags(vm: &Vm, opts: Option<&Fields>) -> Result<u32, ScriptError> {
    let active = vm.raw.is_active().unwrap_or(false);
    let persistent = vm.raw.is_persistent().unwrap_or(true);
    let (live, config) = match opts {
        Some(f) => (f.boolean("live")?, f.boolean("config")?),
        None => (None, None),
    };
    let live = live.unwrap_or(active);
    let config = config.unwrap_or(persistent);
    if live && !active {
        return Err(ScriptError::invalid(
            "live",
            "true",
            format!("VM {} is not running", vm.name()),
        ));
    }
    if !live && !config {
        return Err(ScriptError::invalid(
            "config",
            "false",
            "with live: false too, nothing would change",
        ));
    }
    Ok((if live { AFFECT_LIVE } else { 0 }) | (if config { AFFECT_CONFIG } else { 0 }))
}

/// The flags that reach every definition the domain has: the running one
/// (when active) and the persistent one (when defined).
pub(crate) fn every_definition(dom: &RawDomain) -> Result<u32, virt::error::Error> {
    let live = if dom.is_active()? { AFFECT_LIVE } else { 0 };
    let config = if dom.is_persistent()? { AFFECT_CONFIG } else { 0 };
    Ok(live | config)
}

/// The domain's metadata element in namespace `ns` (without its prefix),
/// `None` when it has none; `flags` picks the live or persistent definition.
pub(crate) fn metadata_element(
    dom: &RawDomain,
    ns: &str,
    flags: u32,
) -> Result<Option<Element>, virt::error::Error> {
    match dom.metadata(sys::VIR_DOMAIN_METADATA_ELEMENT as i32, Some(ns), flags) {
        Ok(xml) => Ok(crate::xml::metadata::parse_element(&xml)
            .ok()
            .map(|(_, el)| el)),
        Err(e) if e.code() == virt::error::ErrorNumber::NoDomainMetadata.into() => Ok(None),
        Err(e) => Err(e),
    }
}

fn domain_xml(dom: &RawDomain, inactive: bool) -> Result<String, virt::error::Error> {
    let flags = if inactive {
        sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE
    } else {
        sys::VIR_DOMAIN_XML_SECURE
    };
    dom.xml_desc(flags)
}

/// The live definition, typed (and as its tree).
fn live_model(vm: &Vm, ctx: &NativeCallContext) -> ScriptResult<(Domain, Element)> {
    let xml = domain_xml(&vm.raw, false).script(ctx)?;
    Domain::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(ctx))
}

/// The XML that a change with `flags` acts on: the definition for config-only changes.
fn device_tree(vm: &Vm, flags: u32, ctx: &NativeCallContext) -> ScriptResult<Element> {
    let xml = domain_xml(&vm.raw, flags == AFFECT_CONFIG).script(ctx)?;
    Element::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(ctx))
}

fn disk_map(d: &Disk) -> Map {
    let mut m = Map::new();
    m.insert("target".into(), d.target.clone().into());
    m.insert("device".into(), d.device.clone().into());
    m.insert("type".into(), d.disk_type.clone().into());
    let source = d.source.clone().or_else(|| {
        d.volume
            .as_ref()
            .map(|v| format!("{}/{v}", d.pool.clone().unwrap_or_default()))
    });
    m.insert(
        "source".into(),
        source.map(Dynamic::from).unwrap_or(Dynamic::UNIT),
    );
    m.insert("bus".into(), opt(&d.bus));
    m.insert("format".into(), opt(&d.format));
    m.insert("cache".into(), opt(&d.cache));
    m.insert("readonly".into(), d.readonly.into());
    m.insert("shareable".into(), d.shareable.into());
    m.insert(
        "boot_order".into(),
        d.boot_order
            .map(|o| Dynamic::from(o as i64))
            .unwrap_or(Dynamic::UNIT),
    );
    m
}

fn nic_map(n: &Interface) -> Map {
    let mut m = Map::new();
    m.insert("interface".into(), opt(&n.target));
    m.insert("type".into(), n.iface_type.clone().into());
    m.insert("source".into(), opt(&n.source));
    m.insert("model".into(), opt(&n.model));
    m.insert("mac".into(), opt(&n.mac));
    m
}

fn opt(v: &Option<String>) -> Dynamic {
    v.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

#[export_module(manifest)]
pub mod vm_api {
    use super::*;

    pub type Vm = super::Vm;

    /// All VMs of the host, running and defined (`virsh list --all`), in
    /// libvirt's order (the REPL prints them as a table sorted by name).
    ///
    /// ```rhai
    /// for vm in HOST.vms() { print(`${vm.name}: ${vm.state}`); }
    /// assert(HOST.vms().len() >= 1);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn vms(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Array> {
        let doms = host.conn().list_all_domains(0).script(&ctx)?;
        let mut vms: Vec<Vm> = doms
            .into_iter()
            .map(|raw| Vm {
                host: host.clone(),
                raw: raw.into(),
            })
            .collect();
        vms.sort_by_key(|v| v.name());
        Ok(vms.into_iter().map(Dynamic::from).collect())
    }

    /// The VM named `name`; an error when there is none.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn vm(ctx: NativeCallContext, host: &mut Host, name: &str) -> ScriptResult<Vm> {
        match host.conn().lookup_domain_by_name(name) {
            Ok(raw) => Ok(Vm {
                host: host.clone(),
                raw: raw.into(),
            }),
            Err(e) if e.code() == virt::error::ErrorNumber::NoDomain.into() => {
                Err(ScriptError::not_found(
                    "name",
                    name,
                    format!("no VM named {name:?} on {}", host.uri()),
                )
                .at(&ctx))
            }
            Err(e) => Err(e).script(&ctx),
        }
    }

    /// The VM named `name`, or `()` when there is none.
    ///
    /// ```rhai
    /// assert(HOST.find_vm("nope") == ());
    /// assert(HOST.find_vm("test") != ());
    /// ```
    #[rhai_fn(pure)]
    pub fn find_vm(host: &mut Host, name: &str) -> Dynamic {
        match host.conn().lookup_domain_by_name(name) {
            Ok(raw) => Dynamic::from(Vm {
                host: host.clone(),
                raw: raw.into(),
            }),
            Err(_) => Dynamic::UNIT,
        }
    }

    /// The VM's name.
    ///
    /// ```rhai
    /// assert_eq(HOST.vm("test").name, "test");
    /// ```
    #[rhai_fn(get = "name", pure, return_raw)]
    pub fn name(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        vm.raw.name().script(&ctx)
    }

    /// The host the VM is on (after `migrate`, the destination).
    ///
    /// ```rhai
    /// assert_eq(HOST.vm("test").host.uri, HOST.uri);
    /// ```
    #[rhai_fn(get = "host", pure)]
    pub fn host(vm: &mut Vm) -> Host {
        vm.host.clone()
    }

    /// The VM's UUID.
    ///
    /// ```rhai
    /// assert_eq(HOST.vm("test").uuid.len(), 36);
    /// ```
    #[rhai_fn(get = "uuid", pure, return_raw)]
    pub fn uuid(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        vm.raw.uuid_string().script(&ctx)
    }

    /// The running VM's id, or `()` when it is not running.
    ///
    /// ```rhai
    /// assert(HOST.vm("test").id > 0);
    /// ```
    #[rhai_fn(get = "id", pure)]
    pub fn id(vm: &mut Vm) -> Dynamic {
        match vm.raw.id() {
            Some(id) if vm.raw.is_active().unwrap_or(false) => Dynamic::from(id as i64),
            _ => Dynamic::UNIT,
        }
    }

    /// The state as `virsh domstate` says it: `"running"`, `"shut off"`, `"paused"`,
    /// `"in shutdown"`, `"crashed"`, `"pmsuspended"`, `"idle"`.
    ///
    /// ```rhai
    /// assert_eq(HOST.vm("test").state, "running");
    /// ```
    #[rhai_fn(get = "state", pure, return_raw)]
    pub fn state(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        crate::virt_ext::domain::state(&vm.raw)
            .map(|s| state_name(s).to_owned())
            .script(&ctx)
    }

    /// Whether the VM starts with the host.
    ///
    /// ```rhai
    /// assert_eq(HOST.vm("test").autostart, false);
    /// ```
    #[rhai_fn(get = "autostart", pure, return_raw)]
    pub fn autostart(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<bool> {
        vm.raw.autostart().script(&ctx)
    }

    /// Start the VM with the host (`virsh autostart`), or not.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.autostart = true;
    /// assert(vm.autostart);
    /// ```
    #[rhai_fn(set = "autostart", return_raw)]
    pub fn set_autostart(ctx: NativeCallContext, vm: &mut Vm, on: bool) -> ScriptResult<()> {
        let before = vm.raw.autostart().unwrap_or(false);
        vm.raw.set_autostart(on).script(&ctx)?;
        let undo = vm.raw.clone();
        journal::record(
            "set_autostart",
            format!("vm {}", vm.name()),
            Some(Box::new(move || undo.set_autostart(before).map(|_| ()))),
        );
        Ok(())
    }

    /// The live domain XML (`virsh dumpxml`: display passwords left out, as
    /// virsh leaves them out without `--security-info`).
    ///
    /// ```rhai
    /// assert(HOST.vm("test").xml.contains("<name>test</name>"));
    /// ```
    #[rhai_fn(get = "xml", pure, return_raw)]
    pub fn xml(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        vm.raw.xml_desc(0).script(&ctx)
    }

    /// The persistent definition, as the next boot will use it (`virsh dumpxml
    /// --inactive`; display passwords left out).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.edit(|cfg| cfg.description = "next boot");
    /// assert(vm.inactive_xml.contains("next boot"));
    /// assert(!vm.xml.contains("next boot"));
    /// ```
    #[rhai_fn(get = "inactive_xml", pure, return_raw)]
    pub fn inactive_xml(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        vm.raw
            .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
            .script(&ctx)
    }

    /// The application metadata element in XML namespace `ns_uri`
    /// (`virsh metadata --uri`), as XML without its namespace prefix, or `()`
    /// when there is none. Read it with `xml_parse`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// assert(vm.metadata("https://example.org/owner") == ());
    /// vm.set_metadata("https://example.org/owner", "<owner team='ops'/>");
    /// assert_eq(xml_parse(vm.metadata("https://example.org/owner")).attrs.team, "ops");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn metadata(ctx: NativeCallContext, vm: &mut Vm, ns_uri: &str) -> ScriptResult<Dynamic> {
        match vm
            .raw
            .metadata(sys::VIR_DOMAIN_METADATA_ELEMENT as i32, Some(ns_uri), 0)
        {
            Ok(xml) => Ok(crate::xml::metadata::parse_element(&xml)
                .map(|(_, el)| el.to_xml())
                .unwrap_or(xml)
                .into()),
            Err(e) if e.code() == virt::error::ErrorNumber::NoDomainMetadata.into() => {
                Ok(Dynamic::UNIT)
            }
            Err(e) => Err(ScriptError::libvirt(&e).at(&ctx)),
        }
    }

    /// Store an application metadata element in namespace `ns_uri`
    /// (`virsh metadata --uri --key --set`), replacing the one there; `()`
    /// removes it. The element is written with the prefix it has
    /// (`<app:x xmlns:app=...>`), else `vs`. A running VM gets it live and in
    /// its persistent definition at once. Returns false when it already was so.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// assert(vm.set_metadata("https://example.org/owner", "<owner team='ops'><since>2024</since></owner>"));
    /// assert(!vm.set_metadata("https://example.org/owner", "<owner team='ops'><since>2024</since></owner>"));
    /// assert(vm.xml.contains("<vs:since>2024</vs:since>"));
    /// assert(vm.set_metadata("https://example.org/owner", ()));
    /// assert(vm.metadata("https://example.org/owner") == ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn set_metadata(
        ctx: NativeCallContext,
        vm: &mut Vm,
        ns_uri: &str,
        xml: Dynamic,
    ) -> ScriptResult<bool> {
        use crate::xml::metadata as meta;
        let wanted = crate::api::metadata::metadata_arg(&ctx, ns_uri, &xml)?;
        let kind = sys::VIR_DOMAIN_METADATA_ELEMENT as i32;
        let current = metadata_element(&vm.raw, ns_uri, 0).script(&ctx)?;
        if current.as_ref().map(Element::normalized)
            == wanted.as_ref().map(|(_, el)| el.normalized())
        {
            return Ok(false);
        }
        let flags = every_definition(&vm.raw).script(&ctx)?;
        let (text, prefix) = match &wanted {
            Some((p, el)) => (
                Some(el.to_xml()),
                Some(p.clone().unwrap_or_else(|| meta::DEFAULT_PREFIX.to_owned())),
            ),
            None => (None, None),
        };
        vm.raw
            .set_metadata(
                kind,
                text.as_deref(),
                prefix.as_deref(),
                Some(ns_uri),
                flags,
            )
            .script(&ctx)?;
        let (raw, uri) = (vm.raw.clone(), ns_uri.to_owned());
        let old = current.map(|el| el.to_xml());
        journal::record(
            "set_metadata",
            format!("vm {} ({ns_uri})", vm.name()),
            Some(Box::new(move || {
                raw.set_metadata(
                    kind,
                    old.as_deref(),
                    old.as_ref().map(|_| meta::DEFAULT_PREFIX),
                    Some(&uri),
                    flags,
                )
            })),
        );
        Ok(true)
    }

    /// What `virsh dominfo` shows: `id`, `name`, `uuid`, `os_type`, `state`, `cpus`,
    /// `max_memory`, `used_memory` (bytes), `cpu_time` (seconds), `persistent`,
    /// `autostart`.
    ///
    /// ```rhai
    /// let i = HOST.vm("test").info();
    /// assert_eq(i.state, "running");
    /// assert(i.max_memory > 0);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn info(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Map> {
        let di = vm.raw.info().script(&ctx)?;
        let mut m = Map::new();
        m.insert("id".into(), id(vm));
        m.insert("name".into(), vm.raw.name().script(&ctx)?.into());
        m.insert("uuid".into(), vm.raw.uuid_string().script(&ctx)?.into());
        m.insert(
            "os_type".into(),
            vm.raw.os_type().unwrap_or_default().into(),
        );
        m.insert("state".into(), state_name(di.state).into());
        m.insert("cpus".into(), (di.nr_virt_cpu as i64).into());
        m.insert("max_memory".into(), (di.max_mem as i64 * 1024).into());
        m.insert("used_memory".into(), (di.memory as i64 * 1024).into());
        m.insert("cpu_time".into(), (di.cpu_time as f64 / 1e9).into());
        m.insert(
            "persistent".into(),
            vm.raw.is_persistent().unwrap_or(false).into(),
        );
        m.insert(
            "autostart".into(),
            vm.raw.autostart().unwrap_or(false).into(),
        );
        Ok(m)
    }

    /// The VM's disks and cdroms (`virsh domblklist --details`): maps with
    /// `target`, `device`, `type`, `source`, `bus`, `format`, `cache`, `readonly`,
    /// `shareable`, `boot_order`.
    ///
    /// ```rhai
    /// let d = HOST.vm("test").disks();
    /// assert_eq(d[0].target, "vda");
    /// assert_eq(d[0].source, "/guest/diskimage1");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn disks(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Array> {
        let (d, _) = live_model(vm, &ctx)?;
        Ok(d.disks.iter().map(|x| Dynamic::from(disk_map(x))).collect())
    }

    /// The VM's NICs (`virsh domiflist`): maps with `interface` (host side),
    /// `type`, `source`, `model`, `mac`.
    ///
    /// ```rhai
    /// let nics = HOST.vm("test").interfaces();
    /// assert_eq(nics[0].mac, "aa:bb:cc:dd:ee:ff");
    /// assert_eq(nics[0].source, "default");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn interfaces(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Array> {
        let (d, _) = live_model(vm, &ctx)?;
        Ok(d.interfaces
            .iter()
            .map(|x| Dynamic::from(nic_map(x)))
            .collect())
    }

    /// `Vm(name, state)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(vm: &mut Vm) -> String {
        format!("Vm({}, {})", vm.name(), vm.state_name())
    }
}
