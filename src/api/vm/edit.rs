//! `vm.edit(|cfg| ...)`: the persistent definition as a map, changed by the
//! script and written back key by key; the rest of the XML is kept.
use rhai::plugin::*;
use rhai::{Array, FnPtr, Map, NativeCallContext};

use super::create::check_xml_sources;
use super::{disk_map, domain_xml, nic_map, opt, Vm};
use crate::api::args::{self, Fields};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::runtime::journal;
use crate::runtime::ErrorKind;
use crate::xml::domain::{Cpu, Domain};
use crate::xml::tree::Element;

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

#[export_module(manifest)]
pub mod vm_edit_api {
    use super::*;

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
        let xml = domain_xml(&vm.raw, true).script(&ctx)?;
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
        apply_edit(&mut d, &before, &after).at(&ctx)?;
        d.apply_to(&mut tree);
        let new_xml = tree.to_xml();
        if new_xml == Element::parse(&xml).map(|t| t.to_xml()).unwrap_or_default() {
            return Ok(());
        }
        check_xml_sources(&vm.host, &new_xml, Some(&xml), false).at(&ctx)?;
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
}
