//! `vm.edit(|cfg| ...)`: the persistent definition as a map, changed by the
//! script and written back key by key; the rest of the XML is kept. Each key
//! has one entry in `edit_keys` (how it shows, how a change applies); the
//! keys a create spec has too apply through `keys`, as the spec does.
use rhai::plugin::*;
use rhai::{Array, FnPtr, Map, NativeCallContext};
use virt::connect::Connect;

use super::create::check_xml_sources;
use super::keys::{self, Apply};
use super::spec::{hostdev_map, plan_hostdevs};
use super::{disk_map, domain_xml, nic_map, opt, Vm};
use crate::api::args::{self, Fields};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::runtime::journal;
use crate::runtime::ErrorKind;
use crate::xml::domain::Domain;
use crate::xml::tree::Element;

/// One key of `cfg`.
struct EditKey {
    name: &'static str,
    /// Its value in the map the closure gets.
    show: fn(&Domain) -> Dynamic,
    /// A change to it, read from a map of the changed keys.
    apply: Apply,
    /// Whether `()` is refused (a VM always has memory).
    required: bool,
}

/// Every key of `cfg`, in the order changes apply.
fn edit_keys() -> Vec<EditKey> {
    let key = |name, show, apply| EditKey {
        name,
        show,
        apply,
        required: false,
    };
    let mut keys = vec![
        key("name", |d| d.name.clone().into(), refuse_rename),
        EditKey {
            required: true,
            ..key("memory", |d| mib(d.memory_kib), keys::memory)
        },
        EditKey {
            required: true,
            ..key(
                "current_memory",
                |d| mib(d.current_memory_kib.unwrap_or(d.memory_kib)),
                keys::current_memory,
            )
        },
        key("vcpus", |d| (d.vcpus.active() as i64).into(), keys::vcpus),
        key("max_vcpus", |d| (d.vcpus.max as i64).into(), keys::vcpus),
        key("cpu", cpu_shown, keys::cpu),
        key("title", |d| opt(&d.title), keys::title),
        key("description", |d| opt(&d.description), keys::description),
        key("kernel", |d| opt(&d.os.kernel), keys::kernel),
        key("initrd", |d| opt(&d.os.initrd), keys::initrd),
        key("cmdline", |d| opt(&d.os.cmdline), keys::cmdline),
        key("on_reboot", |d| opt(&d.on_reboot), on_reboot),
        key("boot", boot_devices, keys::boot),
        key("disks", disks_shown, disks),
        key("interfaces", interfaces_shown, interfaces),
        // Checked against the host's devices: applied in `apply_edit`.
        key("hostdevs", hostdevs_shown, |f, _| f.array("hostdevs").map(|_| ())),
    ];
    keys.extend(device_keys());
    keys
}

/// The device keys (`keys/devices/`), shown as the spec takes them.
fn device_keys() -> Vec<EditKey> {
    let key = |name, show, apply| EditKey {
        name,
        show,
        apply,
        required: false,
    };
    vec![
        key("graphics", keys::graphics_shown, keys::graphics),
        key("video", keys::video_shown, keys::video),
        key("sound", keys::sound_shown, keys::sound),
        EditKey {
            required: true,
            ..key("console", keys::console_shown, keys::console)
        },
        key("controllers", keys::controllers_shown, keys::controllers),
        key("filesystems", keys::filesystems_shown, keys::filesystems),
        key("tpm", keys::tpm_shown, keys::tpm),
        key("rng", keys::rng_shown, keys::rng),
        key("watchdog", keys::watchdog_shown, keys::watchdog),
        key("memballoon", keys::memballoon_shown, keys::memballoon),
        EditKey {
            required: true,
            ..key("features", keys::features_shown, keys::features)
        },
    ]
}

/// Memory as `cfg` shows it: MiB.
fn mib(kib: u64) -> Dynamic {
    Dynamic::from((kib / 1024) as i64)
}

/// The map `f` gets.
fn edit_map(d: &Domain) -> Map {
    edit_keys()
        .iter()
        .map(|k| (k.name.into(), (k.show)(d)))
        .collect()
}

/// Apply an edited `cfg` map back onto the model. Only keys that changed are touched.
fn apply_edit(
    conn: &Connect,
    d: &mut Domain,
    before: &Map,
    after: &Map,
) -> Result<(), ScriptError> {
    let table = edit_keys();
    let names: Vec<&str> = table.iter().map(|k| k.name).collect();
    Fields::new("cfg", after).only(&names)?;
    let changed: Map = names
        .iter()
        .filter(|k| match (before.get(**k), after.get(**k)) {
            (Some(a), Some(b)) => format!("{a:?}") != format!("{b:?}"),
            (None, None) => false,
            _ => true,
        })
        .map(|k| ((*k).into(), after.get(*k).cloned().unwrap_or(Dynamic::UNIT)))
        .collect();
    let f = Fields::new("cfg", &changed);
    for key in table.iter().filter(|k| changed.contains_key(k.name)) {
        if key.required && !f.has(key.name) {
            return Err(ScriptError::invalid(&f.name(key.name), "()", "must be set"));
        }
        (key.apply)(&f, d)?;
    }
    if f.has("vcpus") || f.has("max_vcpus") {
        check_topology(&f, d)?;
    }
    if changed.contains_key("boot") || changed.contains_key("disks") {
        keys::check_boot_orders(&f.name("boot"), d)?;
    }
    if changed.contains_key("hostdevs") {
        // Entries shown as they were stay unchecked; new ones must exist.
        let list = f.array("hostdevs")?.unwrap_or_default();
        d.hostdevs = plan_hostdevs(conn, &f.name("hostdevs"), &list, &d.hostdevs)?;
    }
    Ok(())
}

fn refuse_rename(f: &Fields, _: &mut Domain) -> Result<(), ScriptError> {
    Err(ScriptError::invalid(
        &f.name("name"),
        f.string("name")?.unwrap_or_default(),
        "renaming is not supported by edit",
    ))
}

/// `cpu` as a spec gives it: the model, else the mode; a map `#{ model |
/// mode, sockets, cores, threads, numa }` when there is a topology or there
/// are guest NUMA cells, so that they round-trip.
fn cpu_shown(d: &Domain) -> Dynamic {
    let Some(cpu) = &d.cpu else {
        return Dynamic::UNIT;
    };
    let name = match (&cpu.model, &cpu.mode) {
        (Some(model), _) => Some(("model", model.clone())),
        // `custom` without a model is no mode a spec can name.
        (None, Some(mode)) if mode != "custom" => Some(("mode", mode.clone())),
        _ => None,
    };
    if cpu.topology.is_none() && cpu.numa.is_empty() {
        return name.map(|(_, n)| n.into()).unwrap_or(Dynamic::UNIT);
    }
    let mut m = Map::new();
    if let Some((key, value)) = name {
        m.insert(key.into(), value.into());
    }
    if let Some(t) = &cpu.topology {
        m.insert("sockets".into(), i64::from(t.sockets).into());
        m.insert("cores".into(), i64::from(t.cores).into());
        m.insert("threads".into(), i64::from(t.threads).into());
    }
    if !cpu.numa.is_empty() {
        let cells: Array = cpu
            .numa
            .iter()
            .map(|c| {
                let mut cell = Map::new();
                cell.insert("cpus".into(), c.cpus.clone().into());
                cell.insert("memory".into(), kib_shown(c.memory_kib));
                Dynamic::from(cell)
            })
            .collect();
        m.insert("numa".into(), cells.into());
    }
    m.into()
}

/// A size in MiB as `cfg` shows memory, or `"<n>K"` when it is no whole MiB.
fn kib_shown(kib: u64) -> Dynamic {
    if kib.is_multiple_of(1024) {
        mib(kib)
    } else {
        format!("{kib}K").into()
    }
}

/// A topology must give `max_vcpus` (libvirt refuses the definition
/// otherwise): a vCPU change that breaks the one the VM has is refused here,
/// naming the key that changed.
fn check_topology(f: &Fields, d: &Domain) -> Result<(), ScriptError> {
    let Some(t) = d.cpu.as_ref().and_then(|c| c.topology) else {
        return Ok(());
    };
    let total = u64::from(t.sockets) * u64::from(t.cores) * u64::from(t.threads);
    // A `cpu` map was checked against the vCPUs as it was read.
    let cpu_map = f.raw("cpu").is_some_and(|c| c.is_map());
    if total == u64::from(d.vcpus.max) || cpu_map {
        return Ok(());
    }
    let key = if f.has("max_vcpus") { "max_vcpus" } else { "vcpus" };
    Err(ScriptError::invalid(
        &f.name(key),
        f.raw(key).map(args::show).unwrap_or_default(),
        format!(
            "the CPU topology ({}x{}x{} sockets x cores x threads) gives {total} vCPUs, \
             the VM would have {} (max_vcpus): change cfg.cpu's counts too",
            t.sockets, t.cores, t.threads, d.vcpus.max
        ),
    ))
}

fn on_reboot(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    d.on_reboot = f.one_of(
        "on_reboot",
        &["destroy", "restart", "preserve", "rename-restart"],
    )?;
    Ok(())
}

fn boot_devices(d: &Domain) -> Dynamic {
    d.os.boot
        .iter()
        .cloned()
        .map(Dynamic::from)
        .collect::<Array>()
        .into()
}

fn hostdevs_shown(d: &Domain) -> Dynamic {
    d.hostdevs
        .iter()
        .map(|h| Dynamic::from(hostdev_map(h)))
        .collect::<Array>()
        .into()
}

fn disks_shown(d: &Domain) -> Dynamic {
    d.disks
        .iter()
        .map(|x| Dynamic::from(disk_map(x)))
        .collect::<Array>()
        .into()
}

fn interfaces_shown(d: &Domain) -> Dynamic {
    d.interfaces
        .iter()
        .map(|x| Dynamic::from(nic_map(x)))
        .collect::<Array>()
        .into()
}

/// The map behind `list[i]` of key `key`.
fn item_map(f: &Fields, key: &str, i: usize, item: &Dynamic) -> Result<(String, Map), ScriptError> {
    let field = format!("{}[{i}]", f.name(key));
    let map = item
        .read_lock::<Map>()
        .ok_or_else(|| ScriptError::invalid(&field, args::show(item), "must be a map"))?
        .clone();
    Ok((field, map))
}

/// `disks`: the list as `vm.disks()` shows it; a disk keeps what the map
/// does not show (pool/volume sources, serial) when its target stays.
fn disks(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let list = f.array("disks")?.unwrap_or_default();
    let old = std::mem::take(&mut d.disks);
    for (i, item) in list.iter().enumerate() {
        let (field, m) = item_map(f, "disks", i, item)?;
        let g = Fields::new(field, &m);
        let target = g.string("target")?;
        let device = g.string("device")?;
        let disk_type = g.string("type")?;
        let source = g.string("source")?;
        let bus = g.string("bus")?;
        let format = g.string("format")?;
        let cache = g.string("cache")?;
        let readonly = g.boolean("readonly")?;
        let shareable = g.boolean("shareable")?;
        let boot_order = g.positive("boot_order", 1000)?;
        g.finish()?;
        let target = target.ok_or_else(|| {
            ScriptError::invalid(&g.name("target"), "()", "a disk needs a target")
        })?;
        let mut disk = old
            .iter()
            .find(|x| x.target == target)
            .cloned()
            .unwrap_or_default();
        disk.target = target;
        disk.device = device.unwrap_or_else(|| "disk".into());
        disk.disk_type = disk_type.unwrap_or_else(|| "file".into());
        if disk.pool.is_none() || source != disk_map(&disk).get("source").map(|s| s.to_string()) {
            disk.source = source;
        }
        disk.bus = bus;
        disk.format = format;
        disk.cache = cache;
        disk.readonly = readonly.unwrap_or(false);
        disk.shareable = shareable.unwrap_or(false);
        disk.boot_order = boot_order;
        d.disks.push(disk);
    }
    Ok(())
}

/// `interfaces`: the list as `vm.interfaces()` shows it; a NIC keeps what
/// the map does not show when its MAC stays.
fn interfaces(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let list = f.array("interfaces")?.unwrap_or_default();
    let old = std::mem::take(&mut d.interfaces);
    for (i, item) in list.iter().enumerate() {
        let (field, m) = item_map(f, "interfaces", i, item)?;
        let g = Fields::new(field, &m);
        // The host side's name is libvirt's to give: shown, never applied.
        g.raw("interface");
        let mac = g.string("mac")?;
        let iface_type = g.one_of("type", &["network", "bridge", "direct", "user"])?;
        let source = g.string("source")?;
        let model = g.string("model")?;
        g.finish()?;
        let mut nic = old
            .iter()
            .find(|x| x.mac.is_some() && x.mac == mac)
            .cloned()
            .unwrap_or_default();
        nic.iface_type = iface_type.unwrap_or_else(|| "network".into());
        nic.source = source;
        nic.model = model;
        nic.mac = mac;
        d.interfaces.push(nic);
    }
    Ok(())
}

#[export_module(manifest)]
pub mod vm_edit_api {
    use super::*;

    /// The persistent definition as the map `edit` gives its closure: the
    /// keys of `create_vm`'s spec that a definition keeps (`memory` and
    /// `current_memory` in MiB, `vcpus`, `cpu`, `boot`, `disks`,
    /// `interfaces`, `graphics`, `video`, `sound`, `console`, `controllers`,
    /// `filesystems`, `tpm`, `rng`, `watchdog`, `memballoon`, `features`,
    /// `hostdevs`...), each in the form the spec takes back; absent devices
    /// are `()`. A graphics password is never shown.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "cfg", virt_type: "qemu", pxe: true,
    ///     graphics: #{ type: "vnc", port: 5905, password: "s3cret" }, video: "qxl",
    ///     tpm: "emulator", watchdog: "i6300esb" });
    /// let cfg = vm.config;
    /// assert_eq(cfg.graphics, #{ type: "vnc", listen: "127.0.0.1", port: 5905 });
    /// assert_eq(cfg.video.model, "qxl");
    /// assert_eq(cfg.tpm, #{ model: "tpm-crb", version: "2.0", type: "emulator" });
    /// assert_eq(cfg.watchdog.model, "i6300esb");
    /// assert(!cfg.to_debug().contains("s3cret"));
    /// let vm = HOST.define_vm(#{ name: "topo", virt_type: "qemu", pxe: true, vcpus: 4,
    ///     cpu: #{ sockets: 2, cores: 2 }, boot: ["network", "hd"] });
    /// assert_eq(vm.config.cpu, #{ sockets: 2, cores: 2, threads: 1 });
    /// assert_eq(vm.config.boot, ["network", "hd"]);
    /// assert_eq(vm.config.vcpus, 4);
    /// ```
    #[rhai_fn(get = "config", pure, return_raw)]
    pub fn config(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Map> {
        let xml = domain_xml(&vm.raw, true).script(&ctx)?;
        let (d, _) = Domain::parse(&xml)
            .map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(&ctx))?;
        Ok(edit_map(&d))
    }

    /// Edit the persistent definition like `virsh edit`: `f` gets a map `cfg`
    /// (`memory`/`current_memory` in MiB, `vcpus`, `max_vcpus`, `cpu`, `title`,
    /// `description`, `kernel`, `initrd`, `cmdline`, `boot`, `on_reboot`,
    /// `disks`, `interfaces`, and the device keys of `create_vm`: `graphics`,
    /// `video`, `sound`, `console`, `controllers`, `filesystems`, `tpm`, `rng`,
    /// `watchdog`, `memballoon`, `features`, and `hostdevs`, in the shape
    /// `vm.config` shows)
    /// and changes it; everything else in the XML, modelled or not, is kept
    /// as it was. A device key set to `()` removes the device (`console`
    /// and `features` cannot be `()`). A graphics password is
    /// never shown: a `graphics` map without `password` keeps it.
    /// Keys shared with `create_vm` take the same values and are checked the
    /// same way: `cpu` is a name, or a map `#{ model | mode, sockets, cores,
    /// threads, numa }` when the VM has a topology or guest NUMA cells (a
    /// topology must give `max_vcpus`, also when only the vCPUs change);
    /// `boot` the order by device kind; `hostdevs` maps `#{ type, address |
    /// vendor + product, managed }`, where a new entry (also a node device
    /// name) must be a device the host has.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.edit(|cfg| { cfg.memory = 2048; cfg.description = "edited"; });
    /// assert(vm.inactive_xml.contains("edited"));
    /// assert(vm.inactive_xml.contains("<memory unit='KiB'>2097152</memory>"));
    ///
    /// // Devices: a watchdog, a virtio RNG and Hyper-V's relaxed timing.
    /// vm.edit(|cfg| {
    ///     cfg.watchdog = #{ model: "i6300esb", action: "poweroff" };
    ///     cfg.rng = "/dev/urandom";
    ///     cfg.features.hyperv = #{ relaxed: true };
    /// });
    /// assert(vm.inactive_xml.contains("<watchdog model='i6300esb' action='poweroff'/>"));
    /// assert_eq(vm.config.rng.backend, "/dev/urandom");
    /// assert_eq(vm.config.features.hyperv.relaxed, true);
    /// vm.edit(|cfg| cfg.watchdog = ());
    /// assert(!vm.inactive_xml.contains("<watchdog"));
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
        apply_edit(vm.host.conn(), &mut d, &before, &after).at(&ctx)?;
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
