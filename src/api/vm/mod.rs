//! `Vm` script object: a libvirt domain, created the way virt-install does,
//! with its whole lifecycle, live tuning and addresses.
mod object;

pub mod clone;
pub mod migrate;
pub mod numa;
pub mod spec;
use crate::runtime::ErrorKind;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Array, FnPtr, Map, NativeCallContext};
use virt::domain::Domain as RawDomain;
use virt::sys;

use super::error::{LibvirtResultExt, ScriptError, ScriptResult};
use super::policy;
use super::Host;
use crate::api::args::{self, Fields};
use crate::runtime::journal;
use crate::virt_ext::events::{self, WaitEnd};
use crate::xml::domain::{Cpu, Disk, Domain, Interface};
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

fn xml_of(dom: &RawDomain, inactive: bool) -> Result<String, virt::error::Error> {
    let flags = if inactive {
        sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE
    } else {
        sys::VIR_DOMAIN_XML_SECURE
    };
    dom.xml_desc(flags)
}

fn model(vm: &Vm, ctx: &NativeCallContext) -> ScriptResult<(Domain, Element)> {
    let xml = xml_of(&vm.raw, false).script(ctx)?;
    Domain::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(ctx))
}

/// The XML that a change with `flags` acts on: the definition for config-only changes.
fn tree_for(vm: &Vm, flags: u32, ctx: &NativeCallContext) -> ScriptResult<Element> {
    let xml = xml_of(&vm.raw, flags == AFFECT_CONFIG).script(ctx)?;
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

/// Wait for `vm` to reach `state`, driven by lifecycle events.
fn wait_for_state(
    vm: &Vm,
    state: &str,
    timeout: Duration,
    ctx: &NativeCallContext,
) -> ScriptResult<bool> {
    // Watch first, then look: an event between the two cannot be missed.
    events::watch(vm.host.conn()).script(ctx)?;
    match events::wait_until(timeout, || {
        crate::virt_ext::domain::state(&vm.raw).map(|s| state_name(s) == state)
    }) {
        Ok(()) => Ok(true),
        Err(WaitEnd::TimedOut) => Ok(false),
        Err(WaitEnd::Stopped(reason)) => Err(crate::api::error::stopped(ctx, reason)),
        Err(WaitEnd::Failed(e)) => Err(e).script(ctx),
    }
}

/// A seed image as a new volume `file` of `pool`, uploaded through libvirt.
fn upload_seed(
    conn: &virt::connect::Connect,
    pool: &str,
    file: &str,
    image: &[u8],
) -> Result<virt::storage_vol::StorageVol, virt::error::Error> {
    let pool = conn.lookup_storage_pool_by_name(pool)?;
    let xml = super::volume::copy::new_volume_xml(file, image.len() as u64, "raw");
    let vol = virt::storage_vol::StorageVol::create_xml(&pool, &xml, 0)?;
    let sent = (|| {
        let stream = virt::stream::Stream::new(conn, 0)?;
        vol.upload(&stream, 0, image.len() as u64, 0)?;
        crate::virt_ext::stream::send_all(&stream, image)?;
        stream.finish()
    })();
    if let Err(e) = sent {
        let _ = vol.delete(0);
        return Err(e);
    }
    Ok(vol)
}

/// Define the planned domain: volumes first, then the domain, undoing the
/// volumes when the definition fails. Starts and sets autostart as asked.
fn execute(host: &Host, mut plan: spec::Plan, ctx: &NativeCallContext) -> ScriptResult<Vm> {
    let conn = host.conn();
    let mut created: Vec<virt::storage_vol::StorageVol> = Vec::new();
    let cleanup = |created: &mut Vec<virt::storage_vol::StorageVol>| {
        for vol in created.drain(..) {
            let _ = vol.delete(0);
        }
    };
    for nv in &plan.new_volumes {
        let made = conn
            .lookup_storage_pool_by_name(&nv.pool)
            .and_then(|pool| virt::storage_vol::StorageVol::create_xml(&pool, &nv.xml, 0));
        match made {
            Ok(vol) => {
                if let Ok(path) = vol.path() {
                    plan.domain.disks[nv.disk].source = Some(path);
                }
                let undo_vol = vol.clone();
                journal::record(
                    "create_volume",
                    format!("volume {}/{}", nv.pool, nv.name),
                    Some(Box::new(move || undo_vol.delete(0))),
                );
                created.push(vol);
            }
            Err(e) => {
                cleanup(&mut created);
                return Err(ScriptError::libvirt(&e)
                    .with("field", "disks")
                    .with("value", format!("{}/{}", nv.pool, nv.name))
                    .at(ctx));
            }
        }
    }
    let mut seed_file = None;
    if let Some(seed) = &plan.cloud_init {
        let refs: Vec<(&str, &[u8])> = seed
            .files
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_bytes()))
            .collect();
        let image = crate::iso::build("cidata", &refs);
        match &seed.volume {
            // Built here, uploaded there: nothing is written on this machine.
            Some((pool, file)) => match upload_seed(conn, pool, file, &image) {
                Ok(vol) => {
                    if let Ok(path) = vol.path() {
                        plan.domain.disks[seed.disk].source = Some(path);
                    }
                    let undo_vol = vol.clone();
                    journal::record(
                        "create_volume",
                        format!("volume {pool}/{file}"),
                        Some(Box::new(move || undo_vol.delete(0))),
                    );
                    created.push(vol);
                }
                Err(e) => {
                    cleanup(&mut created);
                    return Err(ScriptError::libvirt(&e)
                        .with("field", "cloud_init")
                        .with("value", format!("{pool}/{file}"))
                        .at(ctx));
                }
            },
            None => {
                let path = plan.domain.disks[seed.disk]
                    .source
                    .clone()
                    .unwrap_or_default();
                if let Err(e) = std::fs::write(&path, &image) {
                    cleanup(&mut created);
                    return Err(ScriptError::invalid(
                        "cloud_init",
                        &path,
                        format!("cannot write the seed image: {e}"),
                    )
                    .at(ctx));
                }
                seed_file = Some(path);
            }
        }
    }
    let xml = plan.xml();
    let dom = match conn.define_domain_xml(&xml) {
        Ok(dom) => dom,
        Err(e) => {
            cleanup(&mut created);
            if let Some(p) = &seed_file {
                let _ = std::fs::remove_file(p);
            }
            return Err(ScriptError::libvirt(&e).at(ctx));
        }
    };
    let name = plan.domain.name.clone();
    let undo = dom.clone();
    journal::record(
        "define_vm",
        format!("vm {name}"),
        Some(Box::new(move || {
            undo.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM)
        })),
    );
    if plan.autostart {
        dom.set_autostart(true).script(ctx)?;
        journal::record("set_autostart", format!("vm {name}"), None);
    }
    if plan.start {
        dom.create().script(ctx)?;
        let undo = dom.clone();
        journal::record(
            "start_vm",
            format!("vm {name}"),
            Some(Box::new(move || undo.destroy())),
        );
    }
    Ok(Vm {
        host: host.clone(),
        raw: dom.into(),
    })
}

fn create_or_define(
    ctx: NativeCallContext,
    host: &mut Host,
    spec: Map,
    start_default: bool,
) -> ScriptResult<Dynamic> {
    let mut plan = spec::plan(host.conn(), &spec).map_err(|e| e.at(&ctx))?;
    if !start_default {
        if spec.contains_key("start") {
            return Err(ScriptError::invalid(
                "start",
                args::show(&spec["start"]),
                "define_vm never starts the VM; use create_vm",
            )
            .at(&ctx));
        }
        plan.start = false;
    }
    if plan.dry_run {
        return Ok(plan.xml().into());
    }
    execute(host, plan, &ctx).map(Dynamic::from)
}

/// Volumes that back another volume (as its backing store) or another VM's disk.
fn volume_in_use_elsewhere(host: &Host, path: &str, own_uuid: &str) -> Option<String> {
    let conn = host.conn();
    if let Ok(doms) = conn.list_all_domains(0) {
        for dom in doms {
            if dom.uuid_string().ok().as_deref() == Some(own_uuid) {
                continue;
            }
            if let Ok(xml) = xml_of(&dom, true) {
                if let Ok((d, _)) = Domain::parse(&xml) {
                    if d.disks.iter().any(|x| x.source.as_deref() == Some(path)) {
                        return Some(format!("it is a disk of VM {}", d.name));
                    }
                }
            }
        }
    }
    if let Ok(pools) = conn.list_all_storage_pools(0) {
        for pool in pools {
            for vol in pool.list_all_volumes(0).unwrap_or_default() {
                let Ok(xml) = vol.xml_desc(0) else { continue };
                let Ok(tree) = Element::parse(&xml) else {
                    continue;
                };
                if tree
                    .path(&["backingStore", "path"])
                    .map(|p| p.text())
                    .as_deref()
                    == Some(path)
                {
                    return Some(format!(
                        "it backs volume {}",
                        vol.path().unwrap_or_default()
                    ));
                }
            }
        }
    }
    None
}

fn edit_map(d: &Domain) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), d.name.clone().into());
    m.insert("memory".into(), ((d.memory_kib / 1024) as i64).into());
    m.insert(
        "current_memory".into(),
        ((d.current_memory_kib.unwrap_or(d.memory_kib) / 1024) as i64).into(),
    );
    m.insert("vcpus".into(), (d.vcpus.active() as i64).into());
    m.insert("max_vcpus".into(), (d.vcpus.max as i64).into());
    m.insert(
        "cpu".into(),
        match &d.cpu {
            Some(Cpu {
                model: Some(model), ..
            }) => model.clone().into(),
            Some(Cpu {
                mode: Some(mode), ..
            }) => mode.clone().into(),
            _ => Dynamic::UNIT,
        },
    );
    m.insert("title".into(), opt(&d.title));
    m.insert("description".into(), opt(&d.description));
    m.insert("kernel".into(), opt(&d.os.kernel));
    m.insert("initrd".into(), opt(&d.os.initrd));
    m.insert("cmdline".into(), opt(&d.os.cmdline));
    m.insert(
        "boot".into(),
        d.os.boot
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<Array>()
            .into(),
    );
    m.insert("on_reboot".into(), opt(&d.on_reboot));
    m.insert(
        "disks".into(),
        d.disks
            .iter()
            .map(|x| Dynamic::from(disk_map(x)))
            .collect::<Array>()
            .into(),
    );
    m.insert(
        "interfaces".into(),
        d.interfaces
            .iter()
            .map(|x| Dynamic::from(nic_map(x)))
            .collect::<Array>()
            .into(),
    );
    m
}

/// Apply an edited `cfg` map back onto the model. Only fields that changed are touched.
fn apply_edit(d: &mut Domain, before: &Map, after: &Map) -> Result<(), ScriptError> {
    let f = Fields::new("cfg", after);
    f.only(&[
        "name",
        "memory",
        "current_memory",
        "vcpus",
        "max_vcpus",
        "cpu",
        "title",
        "description",
        "kernel",
        "initrd",
        "cmdline",
        "boot",
        "on_reboot",
        "disks",
        "interfaces",
    ])?;
    let changed = |k: &str| -> bool {
        match (before.get(k), after.get(k)) {
            (Some(a), Some(b)) => format!("{a:?}") != format!("{b:?}"),
            (None, None) => false,
            _ => true,
        }
    };
    if changed("name") {
        return Err(ScriptError::invalid(
            "cfg.name",
            f.string("name")?.unwrap_or_default(),
            "renaming is not supported by edit",
        ));
    }
    if changed("memory") {
        let bytes = f
            .size("memory", true)?
            .ok_or_else(|| ScriptError::invalid("cfg.memory", "()", "must be set"))?;
        d.memory_kib = bytes / 1024;
        if d.current_memory_kib.is_some_and(|c| c > d.memory_kib) || !changed("current_memory") {
            d.current_memory_kib = Some(d.memory_kib);
        }
    }
    if changed("current_memory") {
        let bytes = f
            .size("current_memory", true)?
            .ok_or_else(|| ScriptError::invalid("cfg.current_memory", "()", "must be set"))?;
        if bytes / 1024 > d.memory_kib {
            return Err(ScriptError::invalid(
                "cfg.current_memory",
                crate::runtime::units::format_size(bytes),
                "must not exceed memory",
            ));
        }
        d.current_memory_kib = Some(bytes / 1024);
    }
    if changed("vcpus") || changed("max_vcpus") {
        let vcpus = f.positive("vcpus", 4096)?.unwrap_or(d.vcpus.active());
        let max = f
            .positive("max_vcpus", 4096)?
            .unwrap_or(d.vcpus.max)
            .max(if changed("max_vcpus") { 0 } else { vcpus });
        if vcpus > max {
            return Err(ScriptError::invalid(
                "cfg.vcpus",
                vcpus,
                format!("must not exceed max_vcpus ({max})"),
            ));
        }
        d.vcpus.max = max;
        d.vcpus.current = (vcpus != max).then_some(vcpus);
    }
    if changed("cpu") {
        // The mode or model changes; topology and guest NUMA cells stay.
        let old = d.cpu.clone().unwrap_or_default();
        d.cpu = f.string("cpu")?.map(|c| match c.as_str() {
            "host-passthrough" | "host-model" | "maximum" => Cpu {
                mode: Some(c),
                model: None,
                ..old
            },
            _ => Cpu {
                mode: Some("custom".into()),
                model: Some(c),
                ..old
            },
        });
    }
    if changed("title") {
        d.title = f.string("title")?;
    }
    if changed("description") {
        d.description = f.string("description")?;
    }
    if changed("kernel") {
        d.os.kernel = f.string("kernel")?;
    }
    if changed("initrd") {
        d.os.initrd = f.string("initrd")?;
    }
    if changed("cmdline") {
        d.os.cmdline = f.string("cmdline")?;
    }
    if changed("on_reboot") {
        d.on_reboot = f.one_of(
            "on_reboot",
            &["destroy", "restart", "preserve", "rename-restart"],
        )?;
    }
    if changed("boot") {
        let mut boot = Vec::new();
        for (i, b) in f.array("boot")?.unwrap_or_default().iter().enumerate() {
            let s = b.to_string();
            if !["hd", "cdrom", "network", "fd"].contains(&s.as_str()) {
                return Err(ScriptError::invalid(
                    &format!("cfg.boot[{i}]"),
                    s,
                    "must be hd, cdrom, network or fd",
                ));
            }
            boot.push(s);
        }
        d.os.boot = boot;
    }
    if changed("disks") {
        let list = f.array("disks")?.unwrap_or_default();
        let old = std::mem::take(&mut d.disks);
        for (i, item) in list.iter().enumerate() {
            let field = format!("cfg.disks[{i}]");
            let m = item
                .read_lock::<Map>()
                .ok_or_else(|| ScriptError::invalid(&field, args::show(item), "must be a map"))?
                .clone();
            let g = Fields::new(field.clone(), &m);
            g.only(&[
                "target",
                "device",
                "type",
                "source",
                "bus",
                "format",
                "cache",
                "readonly",
                "shareable",
                "boot_order",
            ])?;
            let target = g.string("target")?.ok_or_else(|| {
                ScriptError::invalid(&g.name("target"), "()", "a disk needs a target")
            })?;
            // Keep what the model does not show (pool/volume sources, serial).
            let mut disk = old
                .iter()
                .find(|x| x.target == target)
                .cloned()
                .unwrap_or_default();
            disk.target = target;
            disk.device = g.string("device")?.unwrap_or_else(|| "disk".into());
            disk.disk_type = g.string("type")?.unwrap_or_else(|| "file".into());
            let source = g.string("source")?;
            if disk.pool.is_none() || source != disk_map(&disk).get("source").map(|s| s.to_string())
            {
                disk.source = source;
            }
            disk.bus = g.string("bus")?;
            disk.format = g.string("format")?;
            disk.cache = g.string("cache")?;
            disk.readonly = g.boolean("readonly")?.unwrap_or(false);
            disk.shareable = g.boolean("shareable")?.unwrap_or(false);
            disk.boot_order = g.positive("boot_order", 1000)?;
            d.disks.push(disk);
        }
    }
    if changed("interfaces") {
        let list = f.array("interfaces")?.unwrap_or_default();
        let old = std::mem::take(&mut d.interfaces);
        for (i, item) in list.iter().enumerate() {
            let field = format!("cfg.interfaces[{i}]");
            let m = item
                .read_lock::<Map>()
                .ok_or_else(|| ScriptError::invalid(&field, args::show(item), "must be a map"))?
                .clone();
            let g = Fields::new(field.clone(), &m);
            g.only(&["interface", "type", "source", "model", "mac"])?;
            let mac = g.string("mac")?;
            let mut nic = old
                .iter()
                .find(|x| x.mac.is_some() && x.mac == mac)
                .cloned()
                .unwrap_or_default();
            nic.iface_type = g
                .one_of("type", &["network", "bridge", "direct", "user"])?
                .unwrap_or_else(|| "network".into());
            nic.source = g.string("source")?;
            nic.model = g.string("model")?;
            nic.mac = mac;
            d.interfaces.push(nic);
        }
    }
    Ok(())
}

/// The files a domain definition makes the VM read: disk and CD-ROM sources,
/// kernel and initrd, as (field, path).
fn xml_sources(xml: &str) -> Vec<(String, String)> {
    let Ok(tree) = Element::parse(xml) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, disk) in tree
        .child("devices")
        .into_iter()
        .flat_map(|d| d.children_named("disk"))
        .enumerate()
    {
        if let Some(path) = disk
            .child("source")
            .and_then(|s| s.attr("file").or_else(|| s.attr("dev")))
        {
            out.push((format!("devices.disk[{i}].source"), path.to_owned()));
        }
    }
    for name in ["kernel", "initrd"] {
        if let Some(el) = tree.path(&["os", name]) {
            out.push((format!("os.{name}"), el.text()));
        }
    }
    out
}

/// Files in `xml` (that `before` did not already name) must be inside a storage
/// pool or the boot/ISO directories unless `allow_path` (`policy::check_source`).
fn check_xml_sources(
    host: &Host,
    xml: &str,
    before: Option<&str>,
    allow_path: bool,
) -> Result<(), ScriptError> {
    let known: Vec<String> = before
        .map(xml_sources)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let pools = if allow_path {
        Vec::new()
    } else {
        spec::pool_dirs(host.conn())
    };
    for (field, path) in xml_sources(xml) {
        if !known.contains(&path) {
            policy::check_source(&field, &path, &pools, allow_path)?;
        }
    }
    Ok(())
}

/// Attach (or detach) a device. Drivers without device hot-plug calls (the test
/// driver) still get config-only changes, through an edit of the definition.
fn change_device(vm: &Vm, xml: &str, flags: u32, attach: bool) -> Result<(), virt::error::Error> {
    let res = if attach {
        vm.raw.attach_device_flags(xml, flags)
    } else {
        vm.raw.detach_device_flags(xml, flags)
    };
    match res {
        Err(e)
            if flags == AFFECT_CONFIG && e.code() == virt::error::ErrorNumber::NoSupport.into() =>
        {
            let Ok(device) = Element::parse(xml) else {
                return Err(e);
            };
            let mut tree = match Element::parse(&xml_of(&vm.raw, true)?) {
                Ok(t) => t,
                Err(_) => return Err(e),
            };
            let devices = tree.ensure_child("devices");
            if attach {
                devices.push(device);
            } else {
                let mut gone = false;
                devices.remove_elements(|el| {
                    let hit = !gone && same_device(el, &device);
                    gone |= hit;
                    hit
                });
                if !gone {
                    return Err(e);
                }
            }
            vm.host.conn().define_domain_xml(&tree.to_xml()).map(|_| ())
        }
        other => other,
    }
}

/// Whether `el` is the device `wanted` names (same kind and MAC or target).
fn same_device(el: &Element, wanted: &Element) -> bool {
    if el.name != wanted.name {
        return false;
    }
    let mac = |e: &Element| {
        e.child("mac")
            .and_then(|m| m.attr("address"))
            .map(str::to_ascii_lowercase)
    };
    let target = |e: &Element| {
        e.child("target")
            .and_then(|t| t.attr("dev"))
            .map(str::to_owned)
    };
    match el.name.as_str() {
        "interface" => mac(el).is_some() && mac(el) == mac(wanted),
        "disk" => target(el).is_some() && target(el) == target(wanted),
        _ => el == wanted,
    }
}

fn addresses_from(vm: &Vm, source: &str) -> Result<Array, virt::error::Error> {
    let code = match source {
        "agent" => sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
        "arp" => sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
        _ => sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
    };
    let ifaces = vm.raw.interface_addresses(code, 0)?;
    let mut out = Array::new();
    for iface in ifaces {
        for a in &iface.addrs {
            let mut m = Map::new();
            m.insert("interface".into(), iface.name.clone().into());
            m.insert("mac".into(), opt(&iface.hwaddr));
            m.insert("ip".into(), a.addr.clone().into());
            m.insert("prefix".into(), (a.prefix as i64).into());
            m.insert(
                "family".into(),
                (if a.typed == sys::VIR_IP_ADDR_TYPE_IPV6 as i64 {
                    "ipv6"
                } else {
                    "ipv4"
                })
                .into(),
            );
            m.insert("source".into(), source.into());
            out.push(m.into());
        }
    }
    Ok(out)
}

fn sources_of(ctx: &NativeCallContext, opts: &Map) -> ScriptResult<Vec<&'static str>> {
    let f = Fields::new("", opts);
    Ok(
        match f
            .one_of("source", &["lease", "agent", "arp", "any"])
            .map_err(|e| e.at(ctx))?
            .as_deref()
            .unwrap_or("any")
        {
            "lease" => vec!["lease"],
            "agent" => vec!["agent"],
            "arp" => vec!["arp"],
            _ => vec!["lease", "agent", "arp"],
        },
    )
}

#[export_module(manifest)]
pub mod vm_api {
    use super::*;

    pub type Vm = super::Vm;

    // ------------------------------------------------------------ on Host

    /// Create a VM like `virt-install`: define it from `spec` and start it
    /// (unless `start: false`). Returns the `Vm`, or with `dry_run: true` the
    /// domain XML that would be defined (nothing is created).
    ///
    /// Spec keys: `name`, `memory` (`"2G"` or MiB), `vcpus`, `max_vcpus`, `cpu`
    /// (a mode or model name, or `#{ mode | model, sockets, cores, threads, numa:
    /// [#{ cpus: "0-1", memory: "1G" }] }`: topology and guest NUMA cells),
    /// `numa` (`#{ mode: "strict"|"preferred"|"interleave"|"restrictive",
    /// nodeset: "0-1" }`: the host cells the memory comes from),
    /// `virt_type` (`"kvm"`, `"qemu"`, auto), `arch`, `machine`, `uefi`,
    /// `disks` (`#{ volume }`, `#{ pool, size, format }`, `#{ path }` with `bus`,
    /// `cache`, `readonly`, `shareable`, `boot_order`), exactly one of `cdrom`,
    /// `location` (+`extra_args`), `pxe: true`, `import: true`, `kernel`
    /// (+`initrd`, `cmdline`); `networks` (names or `#{ network | bridge | direct,
    /// mac, model }`), `graphics` (`"none"`, `"vnc"`, `"spice"`), `autostart`,
    /// `cloud_init: #{ user_data, meta_data, network_config, pool }` (a NoCloud
    /// seed ISO built in memory and uploaded as a volume into `pool`, by
    /// default the pool of the first new disk, else `default`; removed with
    /// the VM), `description`,
    /// `title`, `uuid`, `guest_agent`, `metadata` (`#{ "<namespace URI>":
    /// "<element/>" }`: written with the definition, as `set_metadata` would),
    /// `dry_run`, `allow_path`. Disk, CD-ROM, kernel and initrd files must be in
    /// a storage pool's directory or in /var/lib/libvirt/{images,boot,isos};
    /// others are refused (`kind: "refused"`) unless `allow_path: true` (for
    /// the whole VM, or in one disk's map).
    ///
    /// ```rhai
    /// let vm = HOST.create_vm(#{
    ///     name: "web1", memory: "512M", vcpus: 1, max_vcpus: 4, virt_type: "qemu",
    ///     disks: [#{ path: "/var/lib/libvirt/images/web1.qcow2" }], import: true,
    ///     networks: ["default"],
    /// });
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn create_vm(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Dynamic> {
        create_or_define(ctx, host, spec, true)
    }

    /// Define a VM from a spec (as `create_vm`) without starting it.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "db1", memory: 1024, virt_type: "qemu",
    ///     disks: [#{ pool: "default-pool", size: "1G" }], import: true });
    /// assert_eq(vm.state, "shut off");
    /// assert_eq(vm.disks()[0].format, "qcow2");
    ///
    /// // Metadata that must exist from the first moment the VM does.
    /// let md = #{};
    /// md["https://example.org/owner"] = "<owner team='ops'/>";
    /// let vm = HOST.define_vm(#{ name: "db2", virt_type: "qemu", pxe: true, metadata: md });
    /// assert_eq(vm.metadata("https://example.org/owner"), "<owner team='ops'/>");
    ///
    /// // Two sockets of two cores, one guest NUMA cell per socket, and the
    /// // guest's memory spread over both host cells of the test driver.
    /// let vm = HOST.define_vm(#{ name: "numa", memory: "2G", vcpus: 4, virt_type: "qemu", pxe: true,
    ///     cpu: #{ model: "qemu64", sockets: 2, cores: 2,
    ///             numa: [#{ cpus: "0-1", memory: "1G" }, #{ cpus: "2-3", memory: "1G" }] },
    ///     numa: #{ mode: "interleave", nodeset: "0-1" } });
    /// assert_eq(vm.numa().cells.map(|c| c.cpus), ["0-1", "2-3"]);
    /// assert_eq(vm.numa().mode, "interleave");
    /// assert(vm.xml.contains("sockets='2'") && vm.xml.contains("cores='2'"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn define_vm(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Dynamic> {
        create_or_define(ctx, host, spec, false)
    }

    /// Define a VM from domain XML (`virsh define`).
    ///
    /// ```rhai
    /// let xml = HOST.create_vm(#{ name: "raw", virt_type: "qemu", pxe: true, dry_run: true });
    /// assert(HOST.find_vm("raw") == ());   // the dry run made nothing
    /// let vm = HOST.define_vm_xml(xml);
    /// assert_eq([vm.name, vm.state], ["raw", "shut off"]);
    /// assert(HOST.vm("raw").inactive_xml.contains("<boot dev='network'/>"));
    /// ```
    #[rhai_fn(name = "define_vm_xml", pure, return_raw)]
    pub fn define_vm_xml(ctx: NativeCallContext, host: &mut Host, xml: &str) -> ScriptResult<Vm> {
        define_vm_xml_with(ctx, host, xml, Map::new())
    }

    /// `define_vm_xml(xml)` with `#{ allow_path: true }`: disk, CD-ROM, kernel and
    /// initrd files outside the storage pools and the boot/ISO directories
    /// (refused without it).
    ///
    /// ```rhai
    /// let xml = HOST.create_vm(#{ name: "outside", virt_type: "qemu", import: true,
    ///     disks: ["/srv/outside.img"], allow_path: true, dry_run: true });
    /// try { HOST.define_vm_xml(xml); } catch (e) { assert_eq(e.kind, "refused"); }
    /// let vm = HOST.define_vm_xml(xml, #{ allow_path: true });
    /// assert_eq(vm.disks()[0].source, "/srv/outside.img");
    /// ```
    #[rhai_fn(name = "define_vm_xml", pure, return_raw)]
    pub fn define_vm_xml_with(
        ctx: NativeCallContext,
        host: &mut Host,
        xml: &str,
        opts: Map,
    ) -> ScriptResult<Vm> {
        let f = Fields::new("", &opts);
        f.only(&["allow_path"]).map_err(|e| e.at(&ctx))?;
        let allow_path = f
            .boolean("allow_path")
            .map_err(|e| e.at(&ctx))?
            .unwrap_or(false);
        check_xml_sources(host, xml, None, allow_path).map_err(|e| e.at(&ctx))?;
        let dom = host.conn().define_domain_xml(xml).script(&ctx)?;
        let name = dom.name().unwrap_or_default();
        let undo = dom.clone();
        journal::record(
            "define_vm",
            format!("vm {name}"),
            Some(Box::new(move || undo.undefine())),
        );
        Ok(Vm {
            host: host.clone(),
            raw: dom.into(),
        })
    }

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

    /// vCPUs and memory given to VMs against the host's CPUs and memory:
    /// `host_cpus`, `host_memory` (bytes), `running_vcpus`, `defined_vcpus`,
    /// `running_memory`, `defined_memory` (bytes), `cpu_ratio`, `memory_ratio`
    /// (running / host).
    ///
    /// ```rhai
    /// let o = HOST.overcommit();
    /// assert_eq([o.host_cpus, o.running_vcpus], [16, 2]);   // the test driver's VM "test"
    /// HOST.define_vm(#{ name: "big", virt_type: "qemu", pxe: true, vcpus: 4, memory: "1G" }).start();
    /// let o = HOST.overcommit();
    /// assert_eq([o.running_vcpus, o.defined_vcpus], [6, 6]);
    /// assert_eq(o.cpu_ratio, 6.0 / 16.0);
    /// assert_eq(o.running_memory, o.host_memory);   // memory_ratio 1.0: fully given out
    /// assert_eq(o.memory_ratio, 1.0);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn overcommit(ctx: NativeCallContext, host: &mut Host) -> ScriptResult<Map> {
        let info = host.conn().node_info().script(&ctx)?;
        let mut running = (0i64, 0i64);
        let mut defined = (0i64, 0i64);
        for dom in host.conn().list_all_domains(0).script(&ctx)? {
            let Ok(di) = dom.info() else { continue };
            let max_vcpus = dom
                .vcpus_flags(sys::VIR_DOMAIN_VCPU_MAXIMUM | sys::VIR_DOMAIN_AFFECT_CONFIG)
                .unwrap_or(di.nr_virt_cpu) as i64;
            defined.0 += max_vcpus.max(di.nr_virt_cpu as i64);
            defined.1 += di.max_mem as i64 * 1024;
            if dom.is_active().unwrap_or(false) {
                running.0 += di.nr_virt_cpu as i64;
                running.1 += di.memory as i64 * 1024;
            }
        }
        let host_cpus = info.cpus as i64;
        let host_mem = info.memory as i64 * 1024;
        let mut m = Map::new();
        m.insert("host_cpus".into(), host_cpus.into());
        m.insert("host_memory".into(), host_mem.into());
        m.insert("running_vcpus".into(), running.0.into());
        m.insert("running_memory".into(), running.1.into());
        m.insert("defined_vcpus".into(), defined.0.into());
        m.insert("defined_memory".into(), defined.1.into());
        m.insert(
            "cpu_ratio".into(),
            (running.0 as f64 / host_cpus.max(1) as f64).into(),
        );
        m.insert(
            "memory_ratio".into(),
            (running.1 as f64 / host_mem.max(1) as f64).into(),
        );
        Ok(m)
    }

    // ------------------------------------------------------------ properties

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

    /// The live domain XML (`virsh dumpxml`).
    ///
    /// ```rhai
    /// assert(HOST.vm("test").xml.contains("<name>test</name>"));
    /// ```
    #[rhai_fn(get = "xml", pure, return_raw)]
    pub fn xml(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        xml_of(&vm.raw, false).script(&ctx)
    }

    /// The persistent definition, as the next boot will use it (`virsh dumpxml --inactive`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.edit(|cfg| cfg.description = "next boot");
    /// assert(vm.inactive_xml.contains("next boot"));
    /// assert(!vm.xml.contains("next boot"));
    /// ```
    #[rhai_fn(get = "inactive_xml", pure, return_raw)]
    pub fn inactive_xml(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        xml_of(&vm.raw, true).script(&ctx)
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
        let current = match vm.raw.metadata(kind, Some(ns_uri), 0) {
            Ok(x) => meta::parse_element(&x).ok().map(|(_, el)| el),
            Err(e) if e.code() == virt::error::ErrorNumber::NoDomainMetadata.into() => None,
            Err(e) => return Err(ScriptError::libvirt(&e).at(&ctx)),
        };
        if current.as_ref().map(Element::normalized)
            == wanted.as_ref().map(|(_, el)| el.normalized())
        {
            return Ok(false);
        }
        let mut flags = 0;
        if vm.raw.is_active().script(&ctx)? {
            flags |= AFFECT_LIVE;
        }
        if vm.raw.is_persistent().script(&ctx)? {
            flags |= AFFECT_CONFIG;
        }
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
        let (d, _) = model(vm, &ctx)?;
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
        let (d, _) = model(vm, &ctx)?;
        Ok(d.interfaces
            .iter()
            .map(|x| Dynamic::from(nic_map(x)))
            .collect())
    }

    // ------------------------------------------------------------ lifecycle

    /// Start (boot) a defined VM (`virsh start`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// vm.start();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn start(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.create().script(&ctx)?;
        let undo = vm.raw.clone();
        journal::record(
            "start_vm",
            format!("vm {}", vm.name()),
            Some(Box::new(move || undo.destroy())),
        );
        Ok(())
    }

    /// Ask the guest to shut down (ACPI) and wait up to 60 s until it is shut off.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.shutdown();
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(name = "shutdown", pure, return_raw)]
    pub fn shutdown(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        shutdown_with(ctx, vm, Map::new())
    }

    /// Shut down and wait: `timeout` (seconds, default 60), `force` (destroy
    /// after the timeout; without it the timeout is an error).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.shutdown(#{ timeout: 30, force: true });
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(name = "shutdown", pure, return_raw)]
    pub fn shutdown_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["timeout", "force"]).map_err(|e| e.at(&ctx))?;
        let timeout = match f.raw("timeout") {
            Some(v) => args::seconds("timeout", v).map_err(|e| e.at(&ctx))?,
            None => Duration::from_secs(60),
        };
        let force = f.boolean("force").map_err(|e| e.at(&ctx))?.unwrap_or(false);
        if !vm.raw.is_active().script(&ctx)? {
            return Ok(());
        }
        events::watch(vm.host.conn()).script(&ctx)?;
        vm.raw.shutdown().script(&ctx)?;
        // Rolled back, a VM that was running runs again.
        journal::record_with("shutdown_vm", format!("vm {}", vm.name()), || {
            let dom = vm.raw.clone();
            Some(Box::new(move || dom.create().map(|_| ())))
        });
        if wait_for_state(vm, "shut off", timeout, &ctx)? {
            return Ok(());
        }
        if force {
            vm.raw.destroy().script(&ctx)?;
            journal::record("destroy_vm", format!("vm {}", vm.name()), None);
            return Ok(());
        }
        Err(ScriptError::new(
            ErrorKind::Timeout,
            format!(
                "VM {} did not shut down within {} s (it is {}); pass force: true to power it off",
                vm.name(),
                timeout.as_secs_f64(),
                vm.state_name()
            ),
        )
        .with("field", "timeout")
        .with("value", timeout.as_secs_f64())
        .at(&ctx))
    }

    /// Power the VM off at once (`virsh destroy`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn destroy(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.destroy().script(&ctx)?;
        // Only a running VM can be destroyed: rolled back, it runs again.
        journal::record_with("destroy_vm", format!("vm {}", vm.name()), || {
            let dom = vm.raw.clone();
            Some(Box::new(move || dom.create().map(|_| ())))
        });
        Ok(())
    }

    /// Ask the guest to reboot (`virsh reboot`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.reboot();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn reboot(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.reboot(0).script(&ctx)?;
        journal::record("reboot_vm", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Hard-reset the VM like the reset button (`virsh reset`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.reset();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn reset(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.reset().script(&ctx)?;
        journal::record("reset_vm", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Pause the VM's CPUs (`virsh suspend`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.suspend();
    /// assert_eq(vm.state, "paused");
    /// vm.resume();
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn suspend(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.suspend().script(&ctx)?;
        let undo = vm.raw.clone();
        journal::record(
            "suspend_vm",
            format!("vm {}", vm.name()),
            Some(Box::new(move || undo.resume())),
        );
        Ok(())
    }

    /// Resume a paused VM (`virsh resume`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.suspend();
    /// vm.resume();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn resume(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        vm.raw.resume().script(&ctx)?;
        journal::record("resume_vm", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Save the running VM's memory to `path` on the host and stop it (`virsh save`).
    /// The file must not exist yet (pass `#{ overwrite: true }` to replace it). On
    /// the test driver and under `--plan` the file goes into a private temporary
    /// directory instead (`restore` with the same path finds it there).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// // The embedded driver runs in this process: a relative path is in the
    /// // script's directory. A daemon needs an absolute path on its host.
    /// vm.save("test.save");
    /// assert_eq(vm.state, "shut off");
    /// vm.restore("test.save");
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(name = "save", pure, return_raw)]
    pub fn save(ctx: NativeCallContext, vm: &mut Vm, path: &str) -> ScriptResult<()> {
        save_with(ctx, vm, path, Map::new())
    }

    /// `save(path)` with `#{ overwrite: true }`: replace an existing file.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.save("/tmp/again.save");
    /// vm.restore("/tmp/again.save");
    /// try { vm.save("/tmp/again.save"); } catch (e) { assert_eq(e.kind, "refused"); }
    /// vm.save("/tmp/again.save", #{ overwrite: true });
    /// assert_eq(vm.state, "shut off");
    /// ```
    #[rhai_fn(name = "save", pure, return_raw)]
    pub fn save_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        path: &str,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["overwrite"]).map_err(|e| e.at(&ctx))?;
        let overwrite = f
            .boolean("overwrite")
            .map_err(|e| e.at(&ctx))?
            .unwrap_or(false);
        let local = policy::local_path(
            vm.host.uri(),
            "path",
            path,
            true,
            overwrite,
            policy::Writer::Daemon,
        )
        .map_err(|e| e.at(&ctx))?;
        let local = local.to_string_lossy();
        crate::virt_ext::domain::save(&vm.raw, &local).script(&ctx)?;
        journal::record("save_vm", format!("vm {} to {local}", vm.name()), None);
        Ok(())
    }

    /// Restore a VM saved with `save(path)` (`virsh restore`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.save("test2.save");   // in the script's directory (embedded driver)
    /// vm.restore("test2.save");
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn restore(ctx: NativeCallContext, vm: &mut Vm, path: &str) -> ScriptResult<()> {
        let local = policy::local_path(
            vm.host.uri(),
            "path",
            path,
            false,
            false,
            policy::Writer::Daemon,
        )
        .map_err(|e| e.at(&ctx))?;
        let local = local.to_string_lossy();
        vm.host.conn().restore_domain(&local).script(&ctx)?;
        journal::record("restore_vm", format!("vm {} from {local}", vm.name()), None);
        Ok(())
    }

    /// Remove the VM's definition (`virsh undefine`); a running VM keeps running
    /// as a transient one. Returns `#{ removed_volumes: [] }`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// vm.undefine();
    /// assert(HOST.find_vm("test") == ());
    /// ```
    #[rhai_fn(name = "undefine", pure, return_raw)]
    pub fn undefine(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Map> {
        undefine_with(ctx, vm, Map::new())
    }

    /// Undefine with options: `remove_storage` (true: every disk that is a
    /// storage volume; or an array of targets like `["vda"]`), `nvram` (remove
    /// UEFI variables), `snapshots` (remove snapshot metadata). Returns
    /// `#{ removed_volumes, kept }`: a volume that backs another volume or is a
    /// disk of another VM is never removed, and `kept` says why.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "gone", virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }] });
    /// let r = vm.undefine(#{ remove_storage: true, nvram: true });
    /// assert_eq(r.removed_volumes.len(), 1);
    /// ```
    #[rhai_fn(name = "undefine", pure, return_raw)]
    pub fn undefine_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        f.only(&["remove_storage", "nvram", "snapshots"])
            .map_err(|e| e.at(&ctx))?;
        let targets: Option<Vec<String>> = match f.raw("remove_storage") {
            None => None,
            Some(v) => {
                if let Ok(b) = v.as_bool() {
                    b.then(Vec::new)
                } else if let Some(a) = v.read_lock::<Array>() {
                    Some(a.iter().map(|t| t.to_string()).collect())
                } else {
                    return Err(ScriptError::invalid(
                        "remove_storage",
                        args::show(v),
                        "must be true/false or an array of disk targets",
                    )
                    .at(&ctx));
                }
            }
        };
        let nvram = f.boolean("nvram").map_err(|e| e.at(&ctx))?.unwrap_or(false);
        let snapshots = f
            .boolean("snapshots")
            .map_err(|e| e.at(&ctx))?
            .unwrap_or(false);
        let name = vm.name();
        let mut volumes = Vec::new();
        let mut kept = Array::new();
        if let Some(targets) = &targets {
            if vm.raw.is_active().unwrap_or(false) {
                return Err(ScriptError::invalid(
                    "remove_storage",
                    "true",
                    format!("VM {name} is running: destroy or shut it down first"),
                )
                .at(&ctx));
            }
            let (d, _) = Domain::parse(&xml_of(&vm.raw, true).script(&ctx)?)
                .map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(&ctx))?;
            for t in targets {
                if !d.disks.iter().any(|x| &x.target == t) {
                    return Err(ScriptError::invalid(
                        "remove_storage",
                        t,
                        format!("VM {name} has no disk with this target"),
                    )
                    .at(&ctx));
                }
            }
            let uuid = vm.raw.uuid_string().unwrap_or_default();
            for disk in &d.disks {
                if !targets.is_empty() && !targets.contains(&disk.target) {
                    continue;
                }
                if targets.is_empty() && disk.device == "cdrom" {
                    continue; // installation media are not the VM's storage
                }
                let vol = match (&disk.pool, &disk.volume, &disk.source) {
                    (Some(p), Some(v), _) => vm
                        .host
                        .conn()
                        .lookup_storage_pool_by_name(p)
                        .and_then(|p| p.lookup_storage_vol_by_name(v)),
                    (_, _, Some(path)) => vm.host.conn().lookup_storage_vol_by_path(path),
                    _ => continue,
                };
                let Ok(vol) = vol else { continue };
                let path = vol.path().unwrap_or_default();
                match volume_in_use_elsewhere(&vm.host, &path, &uuid) {
                    Some(why) => kept.push(format!("{path}: {why}").into()),
                    None => volumes.push((path, vol)),
                }
            }
        }
        // The VM's own cloud-init seed goes with it: it is nothing without the
        // VM, and it sits in a pool of the host, not on this machine.
        let seed_name = spec::seed_volume_name(&name);
        if let Ok((d, _)) = xml_of(&vm.raw, true)
            .map_err(|e| e.to_string())
            .and_then(|x| Domain::parse(&x).map_err(|e| e.to_string()))
        {
            let uuid = vm.raw.uuid_string().unwrap_or_default();
            for disk in d.disks.iter().filter(|x| x.device == "cdrom") {
                let Some(src) = &disk.source else { continue };
                let ours = std::path::Path::new(src)
                    .file_name()
                    .is_some_and(|f| f == seed_name.as_str());
                if !ours || volumes.iter().any(|(p, _)| p == src) {
                    continue;
                }
                if let Ok(vol) = vm.host.conn().lookup_storage_vol_by_path(src) {
                    if volume_in_use_elsewhere(&vm.host, src, &uuid).is_none() {
                        volumes.push((src.clone(), vol));
                    }
                }
            }
        }
        let mut flags = 0;
        if nvram {
            flags |= sys::VIR_DOMAIN_UNDEFINE_NVRAM;
        }
        if snapshots {
            flags |= sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        }
        flags |= sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
        // Saving the definition for an undo only pays inside a transaction.
        let xml = if journal::wants_undo() {
            xml_of(&vm.raw, true).ok()
        } else {
            None
        };
        let res = vm.raw.undefine_flags(flags);
        if let Err(e) = res {
            // Drivers without flag support (or without NVRAM) take the plain call.
            if flags != 0 && vm.raw.undefine().is_ok() {
            } else {
                return Err(e).script(&ctx);
            }
        }
        let conn_host = vm.host.clone();
        journal::record(
            "undefine_vm",
            format!("vm {name}"),
            xml.map(|x| -> journal::Undo {
                Box::new(move || conn_host.conn().define_domain_xml(&x).map(|_| ()))
            }),
        );
        let mut removed = Array::new();
        for (path, vol) in volumes {
            vol.delete(0).script(&ctx)?;
            journal::record("delete_volume", format!("volume {path}"), None);
            removed.push(path.into());
        }
        let mut m = Map::new();
        m.insert("removed_volumes".into(), removed.into());
        m.insert("kept".into(), kept.into());
        Ok(m)
    }

    /// Edit the persistent definition like `virsh edit`: `f` gets a map `cfg`
    /// (`memory`/`current_memory` in MiB, `vcpus`, `max_vcpus`, `cpu`, `title`,
    /// `description`, `kernel`, `initrd`, `cmdline`, `boot`, `on_reboot`,
    /// `disks`, `interfaces`) and changes it; everything else in the XML,
    /// modelled or not, is kept as it was.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.edit(|cfg| { cfg.memory = 2048; cfg.description = "edited"; });
    /// assert(vm.inactive_xml.contains("edited"));
    /// assert(vm.inactive_xml.contains("<memory unit='KiB'>2097152</memory>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn edit(ctx: NativeCallContext, vm: &mut Vm, f: FnPtr) -> ScriptResult<()> {
        let xml = xml_of(&vm.raw, true).script(&ctx)?;
        let (mut d, mut tree) = Domain::parse(&xml)
            .map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(&ctx))?;
        let before = edit_map(&d);
        let cfg = Dynamic::from(before.clone()).into_shared();
        let ret: Dynamic = f.call_within_context(&ctx, (cfg.clone(),))?;
        // The closure may change `cfg` in place or return a new map.
        let after = match ret.read_lock::<Map>() {
            Some(m) => m.clone(),
            None => cfg
                .read_lock::<Map>()
                .map(|m| m.clone())
                .unwrap_or_default(),
        };
        apply_edit(&mut d, &before, &after).map_err(|e| e.at(&ctx))?;
        d.apply_to(&mut tree);
        let new_xml = tree.to_xml();
        if new_xml == Element::parse(&xml).map(|t| t.to_xml()).unwrap_or_default() {
            return Ok(());
        }
        check_xml_sources(&vm.host, &new_xml, Some(&xml), false).map_err(|e| e.at(&ctx))?;
        vm.host.conn().define_domain_xml(&new_xml).script(&ctx)?;
        let host = vm.host.clone();
        journal::record(
            "edit_vm",
            format!("vm {}", d.name),
            Some(Box::new(move || {
                host.conn().define_domain_xml(&xml).map(|_| ())
            })),
        );
        Ok(())
    }

    /// Wait until the VM is in `state` (`"running"`, `"shut off"`, `"paused"`...),
    /// at most `timeout` seconds; returns whether it got there. Driven by libvirt's
    /// lifecycle events, not by polling; Ctrl-C and `--timeout` stop it.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// assert(vm.wait_state("shut off", 5));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn wait_state(
        ctx: NativeCallContext,
        vm: &mut Vm,
        state: &str,
        timeout: Dynamic,
    ) -> ScriptResult<bool> {
        if !STATES.contains(&state) {
            return Err(ScriptError::invalid(
                "state",
                state,
                format!("must be one of: {}", STATES.join(", ")),
            )
            .at(&ctx));
        }
        let timeout = args::seconds("timeout", &timeout).map_err(|e| e.at(&ctx))?;
        wait_for_state(vm, state, timeout, &ctx)
    }

    // ------------------------------------------------------------ live tuning

    /// Set the number of active vCPUs (hot add within `max_vcpus` when running).
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "hot", virt_type: "qemu", pxe: true, vcpus: 1, max_vcpus: 4 });
    /// vm.set_vcpus(3);
    /// assert(vm.xml.contains("current='3'"));
    /// ```
    #[rhai_fn(name = "set_vcpus", pure, return_raw)]
    pub fn set_vcpus(ctx: NativeCallContext, vm: &mut Vm, n: i64) -> ScriptResult<()> {
        set_vcpus_with(ctx, vm, n, Map::new())
    }

    /// `set_vcpus(n, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "hot2", virt_type: "qemu", pxe: true, vcpus: 1, max_vcpus: 2 });
    /// vm.set_vcpus(2, #{ config: true });
    /// assert_eq(vm.info().cpus, 2);
    /// ```
    #[rhai_fn(name = "set_vcpus", pure, return_raw)]
    pub fn set_vcpus_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        n: i64,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["live", "config"]).map_err(|e| e.at(&ctx))?;
        let flags = affect_flags(vm, Some(&f)).map_err(|e| e.at(&ctx))?;
        let max = vm
            .raw
            .vcpus_flags(sys::VIR_DOMAIN_VCPU_MAXIMUM | AFFECT_CONFIG)
            .or_else(|_| vm.raw.max_vcpus().map(|m| m as u32))
            .script(&ctx)? as i64;
        if n < 1 || n > max {
            return Err(ScriptError::invalid(
                "vcpus",
                n,
                format!("must be between 1 and max_vcpus ({max})"),
            )
            .at(&ctx));
        }
        let before = vm
            .raw
            .vcpus_flags(flags & AFFECT_CONFIG.max(flags & AFFECT_LIVE))
            .ok();
        vm.raw.set_vcpus_flags(n as u32, flags).script(&ctx)?;
        let undo = vm.raw.clone();
        journal::record(
            "set_vcpus",
            format!("vm {} to {n}", vm.name()),
            before.map(|b| -> journal::Undo { Box::new(move || undo.set_vcpus_flags(b, flags)) }),
        );
        Ok(())
    }

    /// Set the memory the guest may use (balloon target, up to its maximum memory):
    /// `"1G"` or MiB.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.set_memory("1G");
    /// assert_eq(vm.info().used_memory, 1024 * 1024 * 1024);
    /// ```
    #[rhai_fn(name = "set_memory", pure, return_raw)]
    pub fn set_memory(ctx: NativeCallContext, vm: &mut Vm, size: Dynamic) -> ScriptResult<()> {
        set_memory_with(ctx, vm, size, Map::new())
    }

    /// `set_memory(size, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.set_memory(512, #{ live: true, config: false });
    /// assert_eq(vm.info().used_memory, 512 * 1024 * 1024);
    /// ```
    #[rhai_fn(name = "set_memory", pure, return_raw)]
    pub fn set_memory_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        size: Dynamic,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["live", "config"]).map_err(|e| e.at(&ctx))?;
        let bytes =
            args::size("memory", &size, args::NumberUnit::MiB, false).map_err(|e| e.at(&ctx))?;
        let flags = affect_flags(vm, Some(&f)).map_err(|e| e.at(&ctx))?;
        let max_kib = vm.raw.max_memory().script(&ctx)?;
        let kib = bytes / 1024;
        if kib > max_kib {
            return Err(ScriptError::invalid(
                "memory",
                args::show(&size),
                format!(
                    "must not exceed the VM's maximum memory ({})",
                    crate::runtime::units::format_size(max_kib * 1024)
                ),
            )
            .at(&ctx));
        }
        let before = vm.raw.info().map(|i| i.memory).ok();
        // Some drivers (the test driver) take live and config one at a time.
        if flags == AFFECT_LIVE | AFFECT_CONFIG {
            vm.raw.set_memory_flags(kib, AFFECT_LIVE).script(&ctx)?;
            vm.raw.set_memory_flags(kib, AFFECT_CONFIG).script(&ctx)?;
        } else {
            vm.raw.set_memory_flags(kib, flags).script(&ctx)?;
        }
        let undo = vm.raw.clone();
        journal::record(
            "set_memory",
            format!(
                "vm {} to {}",
                vm.name(),
                crate::runtime::units::format_size(bytes)
            ),
            before.map(|b| -> journal::Undo {
                Box::new(move || undo.set_memory_flags(b, flags).map(|_| ()))
            }),
        );
        Ok(())
    }

    /// Throttle a disk's I/O (`virsh blkdeviotune`): keys `total_bytes_sec`,
    /// `read_bytes_sec`, `write_bytes_sec`, `total_iops_sec`, `read_iops_sec`,
    /// `write_iops_sec` (and their `_max` variants), plus `live`/`config`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.set_disk_throttle("vda", #{ total_bytes_sec: 10485760, total_bytes_sec_max: 20971520, live: true, config: false });
    /// assert(vm.xml.contains("<total_bytes_sec>10485760</total_bytes_sec>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn set_disk_throttle(
        ctx: NativeCallContext,
        vm: &mut Vm,
        target: &str,
        limits: Map,
    ) -> ScriptResult<()> {
        const KEYS: &[&str] = &[
            "total_bytes_sec",
            "read_bytes_sec",
            "write_bytes_sec",
            "total_iops_sec",
            "read_iops_sec",
            "write_iops_sec",
            "total_bytes_sec_max",
            "read_bytes_sec_max",
            "write_bytes_sec_max",
            "total_iops_sec_max",
            "read_iops_sec_max",
            "write_iops_sec_max",
            "size_iops_sec",
        ];
        let f = Fields::new("", &limits);
        let mut known: Vec<&str> = KEYS.to_vec();
        known.extend(["live", "config"]);
        f.only(&known).map_err(|e| e.at(&ctx))?;
        let mut params = Vec::new();
        for key in KEYS {
            if let Some(v) = f.int(key).map_err(|e| e.at(&ctx))? {
                if v < 0 {
                    return Err(ScriptError::invalid(key, v, "must not be negative").at(&ctx));
                }
                params.push((*key, v as u64));
            }
        }
        if params.is_empty() {
            return Err(ScriptError::invalid(
                "limits",
                "#{}",
                format!("give at least one of: {}", KEYS.join(", ")),
            )
            .at(&ctx));
        }
        let (d, _) = model(vm, &ctx)?;
        if !d.disks.iter().any(|x| x.target == target) {
            return Err(ScriptError::invalid(
                "target",
                target,
                format!("VM {} has no disk with this target", d.name),
            )
            .at(&ctx));
        }
        let flags = affect_flags(vm, Some(&f)).map_err(|e| e.at(&ctx))?;
        crate::virt_ext::domain::set_block_io_tune(&vm.raw, target, &params, flags).script(&ctx)?;
        journal::record(
            "set_disk_throttle",
            format!("vm {} disk {target}", d.name),
            None,
        );
        Ok(())
    }

    /// Add a NIC: `#{ network | bridge | direct, mac, model, live, config }`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "nic1", virt_type: "qemu", pxe: true });
    /// vm.attach_interface(#{ network: "default", mac: "52:54:00:aa:bb:cc", model: "e1000" });
    /// assert(vm.interfaces().some(|n| n.mac == "52:54:00:aa:bb:cc"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn attach_interface(ctx: NativeCallContext, vm: &mut Vm, spec: Map) -> ScriptResult<()> {
        let nic = spec::plan_interface(vm.host.conn(), "interface", &Dynamic::from(spec.clone()))
            .map_err(|e| e.at(&ctx))?;
        let f = Fields::new("", &spec);
        let flags = affect_flags(vm, Some(&f)).map_err(|e| e.at(&ctx))?;
        change_device(vm, &nic.to_element().to_xml(), flags, true).script(&ctx)?;
        journal::record("attach_interface", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Remove the NIC with MAC address `mac`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "nic2", virt_type: "qemu", pxe: true });
    /// vm.attach_interface(#{ network: "default", mac: "52:54:00:aa:bb:cd" });
    /// vm.detach_interface("52:54:00:aa:bb:cd");
    /// assert(!vm.interfaces().some(|n| n.mac == "52:54:00:aa:bb:cd"));
    /// ```
    #[rhai_fn(name = "detach_interface", pure, return_raw)]
    pub fn detach_interface(ctx: NativeCallContext, vm: &mut Vm, mac: &str) -> ScriptResult<()> {
        detach_interface_with(ctx, vm, mac, Map::new())
    }

    /// `detach_interface(mac, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "nic3", virt_type: "qemu", pxe: true });
    /// vm.attach_interface(#{ network: "default", mac: "52:54:00:aa:bb:ce", config: true });
    /// vm.detach_interface("52:54:00:aa:bb:ce", #{ config: true });
    /// assert_eq(vm.interfaces().len(), 1);
    /// ```
    #[rhai_fn(name = "detach_interface", pure, return_raw)]
    pub fn detach_interface_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        mac: &str,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["live", "config"]).map_err(|e| e.at(&ctx))?;
        let flags = affect_flags(vm, Some(&f)).map_err(|e| e.at(&ctx))?;
        let tree = tree_for(vm, flags, &ctx)?;
        let el = tree
            .child("devices")
            .and_then(|d| {
                d.children_named("interface").find(|i| {
                    i.child("mac")
                        .and_then(|m| m.attr("address"))
                        .is_some_and(|a| a.eq_ignore_ascii_case(mac))
                })
            })
            .cloned()
            .ok_or_else(|| {
                ScriptError::invalid(
                    "mac",
                    mac,
                    format!("VM {} has no NIC with this MAC", vm.name()),
                )
                .at(&ctx)
            })?;
        change_device(vm, &el.to_xml(), flags, false).script(&ctx)?;
        journal::record(
            "detach_interface",
            format!("vm {} nic {mac}", vm.name()),
            None,
        );
        Ok(())
    }

    /// Add a disk: `#{ volume }`, `#{ path }` or `#{ pool, size }` (created), with
    /// `bus`, `cache`, `readonly`, `shareable`, `device`, and `live`/`config`.
    /// A `path` outside the storage pools and /var/lib/libvirt/{images,boot,isos}
    /// needs `allow_path: true`.
    /// Returns the target it got (`"vdb"`).
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "d1", virt_type: "qemu", pxe: true });
    /// let t = vm.attach_disk(#{ path: "/var/lib/libvirt/images/extra.img" });
    /// assert_eq(t, "vda");
    /// assert(vm.disks().some(|d| d.target == t));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn attach_disk(ctx: NativeCallContext, vm: &mut Vm, spec: Map) -> ScriptResult<String> {
        let mut disk_spec = spec.clone();
        disk_spec.remove("live");
        disk_spec.remove("config");
        let f = Fields::new("", &spec);
        let flags = affect_flags(vm, Some(&f)).map_err(|e| e.at(&ctx))?;
        let (d, _) = model(vm, &ctx)?;
        let mut taken = std::collections::BTreeSet::new();
        let (mut disk, nv) = spec::plan_disk(
            vm.host.conn(),
            "disk",
            &Dynamic::from(disk_spec),
            &d.name,
            &d,
            &mut taken,
            false,
        )
        .map_err(|e| e.at(&ctx))?;
        let mut created = None;
        if let Some(nv) = nv {
            let vol = vm
                .host
                .conn()
                .lookup_storage_pool_by_name(&nv.pool)
                .and_then(|p| virt::storage_vol::StorageVol::create_xml(&p, &nv.xml, 0))
                .script(&ctx)?;
            disk.source = vol.path().ok();
            let undo = vol.clone();
            journal::record(
                "create_volume",
                format!("volume {}/{}", nv.pool, nv.name),
                Some(Box::new(move || undo.delete(0))),
            );
            created = Some(vol);
        }
        if let Err(e) = change_device(vm, &disk.to_element().to_xml(), flags, true) {
            if let Some(vol) = created {
                let _ = vol.delete(0);
            }
            return Err(e).script(&ctx);
        }
        journal::record(
            "attach_disk",
            format!("vm {} disk {}", d.name, disk.target),
            None,
        );
        Ok(disk.target)
    }

    /// Remove the disk with target `target` (the volume stays).
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "d2", virt_type: "qemu", pxe: true });
    /// let t = vm.attach_disk(#{ path: "/var/lib/libvirt/images/x.img" });
    /// vm.detach_disk(t);
    /// assert(!vm.disks().some(|d| d.target == t));
    /// ```
    #[rhai_fn(name = "detach_disk", pure, return_raw)]
    pub fn detach_disk(ctx: NativeCallContext, vm: &mut Vm, target: &str) -> ScriptResult<()> {
        detach_disk_with(ctx, vm, target, Map::new())
    }

    /// `detach_disk(target, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "d3", virt_type: "qemu", pxe: true });
    /// let t = vm.attach_disk(#{ pool: "default-pool", size: "1G", config: true });
    /// vm.detach_disk(t, #{ config: true });
    /// assert_eq(vm.disks().len(), 0);
    /// ```
    #[rhai_fn(name = "detach_disk", pure, return_raw)]
    pub fn detach_disk_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        target: &str,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["live", "config"]).map_err(|e| e.at(&ctx))?;
        let flags = affect_flags(vm, Some(&f)).map_err(|e| e.at(&ctx))?;
        let tree = tree_for(vm, flags, &ctx)?;
        let el = tree
            .child("devices")
            .and_then(|d| {
                d.children_named("disk")
                    .find(|x| x.child("target").and_then(|t| t.attr("dev")) == Some(target))
            })
            .cloned()
            .ok_or_else(|| {
                ScriptError::invalid(
                    "target",
                    target,
                    format!("VM {} has no disk with this target", vm.name()),
                )
                .at(&ctx)
            })?;
        change_device(vm, &el.to_xml(), flags, false).script(&ctx)?;
        journal::record(
            "detach_disk",
            format!("vm {} disk {target}", vm.name()),
            None,
        );
        Ok(())
    }

    // ------------------------------------------------------------ addresses

    /// The guest's IP addresses (`virsh domifaddr`) from `source`: `"lease"`
    /// (libvirt's DHCP), `"agent"` (guest agent), `"arp"`, or `"any"` (the first
    /// that answers). Maps with `interface`, `mac`, `ip`, `prefix`, `family`, `source`.
    ///
    /// ```rhai
    /// let a = HOST.vm("test").addresses(#{ source: "lease" });
    /// assert(a.all(|x| x.source == "lease"));
    /// assert_eq(a[0].interface, "testnet0");
    /// ```
    #[rhai_fn(name = "addresses", pure, return_raw)]
    pub fn addresses_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Array> {
        Fields::new("", &opts)
            .only(&["source"])
            .map_err(|e| e.at(&ctx))?;
        let sources = sources_of(&ctx, &opts)?;
        let mut last_err = None;
        for s in &sources {
            match addresses_from(vm, s) {
                Ok(a) if !a.is_empty() => return Ok(a),
                Ok(_) => {}
                Err(e) => last_err = Some(e),
            }
        }
        match (sources.len(), last_err) {
            (1, Some(e)) => Err(e).script(&ctx),
            _ => Ok(Array::new()),
        }
    }

    /// `addresses(#{ source: "any" })`.
    ///
    /// ```rhai
    /// let a = HOST.vm("test").addresses();
    /// assert_eq(a[0].ip, "192.168.122.3");
    /// assert_eq(a[0].mac, "aa:bb:cc:dd:ee:ff");
    /// ```
    #[rhai_fn(name = "addresses", pure, return_raw)]
    pub fn addresses(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Array> {
        addresses_with(ctx, vm, Map::new())
    }

    /// Wait for the guest's first IP address: `timeout` (seconds, default 120),
    /// `source` (`"lease"`, `"agent"`, `"arp"`, `"any"`). Returns `#{ ip, source,
    /// mac }` (IPv4 preferred); after the timeout an error says what was tried.
    ///
    /// ```rhai
    /// let ip = HOST.vm("test").wait_ip(#{ timeout: 0.2 });
    /// assert_eq(ip, #{ ip: "192.168.122.3", mac: "aa:bb:cc:dd:ee:ff", source: "lease" });
    /// ```
    #[rhai_fn(name = "wait_ip", pure, return_raw)]
    pub fn wait_ip_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        f.only(&["timeout", "source"]).map_err(|e| e.at(&ctx))?;
        let timeout = match f.raw("timeout") {
            Some(v) => args::seconds("timeout", v).map_err(|e| e.at(&ctx))?,
            None => Duration::from_secs(120),
        };
        let sources = sources_of(&ctx, &opts)?;
        let deadline = std::time::Instant::now() + timeout;
        let mut errors: Vec<String> = Vec::new();
        loop {
            errors.clear();
            for s in &sources {
                match addresses_from(vm, s) {
                    Ok(list) => {
                        let pick = list
                            .iter()
                            .find(|a| {
                                a.read_lock::<Map>()
                                    .is_some_and(|m| m["family"].to_string() == "ipv4")
                            })
                            .or_else(|| list.first());
                        if let Some(a) = pick.and_then(|a| a.read_lock::<Map>().map(|m| m.clone()))
                        {
                            let mut out = Map::new();
                            out.insert("ip".into(), a["ip"].clone());
                            out.insert("source".into(), (*s).into());
                            out.insert("mac".into(), a["mac"].clone());
                            return Ok(out);
                        }
                        errors.push(format!("{s}: no address yet"));
                    }
                    Err(e) => errors.push(format!("{s}: {}", e.message())),
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            crate::runtime::stop::sleep((deadline - now).min(Duration::from_millis(500)))
                .map_err(|r| crate::api::error::stopped(&ctx, r))?;
        }
        Err(ScriptError::new(
            ErrorKind::Timeout,
            format!(
                "VM {} has no IP address after {} s (tried {})",
                vm.name(),
                timeout.as_secs_f64(),
                errors.join("; ")
            ),
        )
        .with("field", "timeout")
        .with("value", timeout.as_secs_f64())
        .at(&ctx))
    }

    /// `wait_ip(#{ timeout: 120, source: "any" })`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// assert_eq(vm.wait_ip().ip, "192.168.122.3");
    /// vm.destroy();
    /// let refused = "";
    /// try { vm.wait_ip(); } catch (e) { refused = e.message; }
    /// assert_eq(refused, "VM test is not running");
    /// ```
    #[rhai_fn(name = "wait_ip", pure, return_raw)]
    pub fn wait_ip(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Map> {
        if !vm.raw.is_active().script(&ctx)? {
            return Err(ScriptError::new(
                ErrorKind::State,
                format!("VM {} is not running", vm.name()),
            )
            .at(&ctx));
        }
        wait_ip_with(ctx, vm, Map::new())
    }

    /// The graphics URI of a running VM (`virsh domdisplay`): `vnc://127.0.0.1:0`
    /// or `spice://127.0.0.1:5900`.
    ///
    /// ```rhai
    /// let refused = "";
    /// try { print(HOST.vm("test").display()); } catch (e) { refused = e.message; }
    /// assert_eq(refused, "VM test has no graphics (graphics: \"none\")");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn display(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<String> {
        let (d, _) = model(vm, &ctx)?;
        let g = d.graphics.first().ok_or_else(|| {
            ScriptError::new(
                ErrorKind::Display,
                format!("VM {} has no graphics (graphics: \"none\")", d.name),
            )
            .at(&ctx)
        })?;
        let port = g.port.filter(|p| *p > 0).ok_or_else(|| {
            ScriptError::new(
                ErrorKind::Display,
                format!("VM {} is not running, so its display has no port", d.name),
            )
            .at(&ctx)
        })?;
        let host = match g.listen.as_deref() {
            None | Some("0.0.0.0") | Some("::") | Some("") => "127.0.0.1",
            Some(h) => h,
        };
        Ok(match g.graphics_type.as_str() {
            "vnc" => format!("vnc://{host}:{}", port - 5900),
            other => format!("{other}://{host}:{port}"),
        })
    }

    /// Attach this terminal to the VM's serial console like `virsh console`
    /// (Ctrl-] leaves). Needs an interactive terminal.
    ///
    /// ```rhai
    /// let refused = "";
    /// try { HOST.vm("test").console(); } catch (e) { refused = e.message; }
    /// // Examples run without a terminal; in the REPL or a shell it attaches.
    /// assert_eq(refused, "console() needs an interactive terminal");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn console(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<()> {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(0) == 1 && libc::isatty(1) == 1 };
        if !tty {
            return Err(ScriptError::new(
                ErrorKind::Console,
                "console() needs an interactive terminal",
            )
            .at(&ctx));
        }
        let status = std::process::Command::new("virsh")
            .arg("-c")
            .arg(vm.host.uri())
            .arg("console")
            .arg(vm.raw.uuid_string().script(&ctx)?)
            .status()
            .map_err(|e| {
                ScriptError::new(ErrorKind::Console, format!("cannot run virsh console: {e}"))
                    .at(&ctx)
            })?;
        if !status.success() {
            return Err(ScriptError::new(
                ErrorKind::Console,
                format!("virsh console ended with {status}"),
            )
            .at(&ctx));
        }
        Ok(())
    }

    // ------------------------------------------------------------ clones

    /// Clone a shut-off VM like `virt-clone --auto-clone`: a new name (`web-clone`,
    /// `web-clone-1`, ...), UUID (also the SMBIOS one) and MACs, graphics ports
    /// back to automatic, log files, the guest-agent socket and UEFI NVRAM
    /// renamed or copied; every writable disk cloned, read-only and shareable
    /// disks (ISOs) shared. Storage as `clone(#{ storage: "auto" })`.
    ///
    /// ```rhai
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }], networks: ["default"] });
    /// let copy = web.clone();
    /// assert_eq(copy.name, "web-clone");
    /// assert(copy.uuid != web.uuid);
    /// assert_eq(web.clone().name, "web-clone-1");
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone_auto(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Vm> {
        crate::api::vm::clone::clone_vm(&ctx, vm, &Map::new())
    }

    /// Clone with options: `name` (default automatic), `storage` (`"auto"`:
    /// reflink where the filesystem can, else a full copy; `"full"`; `"linked"`:
    /// qcow2 overlays backed by the source's disks, instant, but the source must
    /// then stay unchanged; `"reflink"`), `files` (per writable disk in order: a
    /// target path in a pool's directory or a volume name in the source disk's
    /// pool), `macs` (per interface in order; the rest random `52:54:00:..`,
    /// unique on the host), `start`, `allow_running` (clone a PAUSED VM; its
    /// writable disks only from a disk-only snapshot's frozen state, linked).
    /// Validates everything before making anything; if a step fails midway,
    /// what was made is removed. Returns the new `Vm`.
    ///
    /// ```rhai
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }], networks: ["default"] });
    /// let db = web.clone(#{ name: "db", storage: "linked", files: ["db-root.qcow2"],
    ///     macs: ["52:54:00:12:34:56"] });
    /// assert_eq(db.disks()[0].source, "/default-pool/db-root.qcow2");
    /// assert_eq(db.interfaces()[0].mac, "52:54:00:12:34:56");
    /// assert_eq(HOST.pool("default-pool").volume("db-root.qcow2").backing.path,
    ///     "/default-pool/web.qcow2");
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Vm> {
        crate::api::vm::clone::clone_vm(&ctx, vm, &opts)
    }

    /// Make `n` clones named `{prefix}-1` .. `{prefix}-n` (default prefix
    /// `{name}-clone`) in parallel on up to `--jobs` threads, returned in order.
    /// Options as `clone` (`storage`, `start`, `allow_running`) plus `prefix`.
    /// Everything is planned (names, MACs, volumes) before anything is made;
    /// busy pools are retried with backoff. If any clone fails, the others are
    /// removed as well and the error lists the failures (`e.errors`).
    ///
    /// ```rhai
    /// let base = HOST.define_vm(#{ name: "base", memory: 256, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }], networks: ["default"] });
    /// let vms = base.clone_many(3, #{ prefix: "node", storage: "linked", start: true });
    /// assert_eq(vms.map(|v| v.name), ["node-1", "node-2", "node-3"]);
    /// assert(vms.all(|v| v.state == "running"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn clone_many(
        ctx: NativeCallContext,
        vm: &mut Vm,
        n: i64,
        opts: Map,
    ) -> ScriptResult<Array> {
        crate::api::vm::clone::clone_many(&ctx, vm, n, &opts)
    }

    /// `Vm(name, state)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(vm: &mut Vm) -> String {
        format!("Vm({}, {})", vm.name(), vm.state_name())
    }
}
