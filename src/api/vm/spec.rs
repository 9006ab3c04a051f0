//! `HOST.create_vm(spec)`: the virt-install-like spec, validated into a plan
//! BEFORE anything is created. Errors name the field and the value.
use std::collections::BTreeSet;

use rhai::{Dynamic, Map};
use virt::connect::Connect;

use crate::xml::domain::{
    CharDev, Cpu, Disk, Domain, Graphics, Interface, NumaCell, Numatune, Topology, Vcpus,
};
use crate::xml::tree::Element;

use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::api::Volume;

/// Names libvirt and QEMU know a thing by (`q35`, `x86_64`, `Skylake-Client`,
/// `e1000e`): letters, digits and `.`, `_`, `+`, `-`. libvirt writes some of
/// them into its XML unescaped, so anything else could break the definition.
pub fn check_identifier(field: &str, value: &str) -> Result<(), ScriptError> {
    if value.is_empty() {
        return Err(ScriptError::invalid(field, value, "must not be empty"));
    }
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
    {
        Some(c) => Err(ScriptError::invalid(
            field,
            value,
            format!(
                "{} is not allowed here (a name like \"q35\" or \"x86_64\": letters, digits, '.', '_', '+', '-')",
                crate::xml::network::describe_char(c)
            ),
        )),
        None => Ok(()),
    }
}

/// A UUID as libvirt takes it: 32 hex digits, with or without dashes.
pub fn check_uuid(field: &str, uuid: &str) -> Result<(), ScriptError> {
    let hex: Vec<char> = uuid.chars().filter(|c| *c != '-').collect();
    let dashes_ok = !uuid.contains('-')
        || uuid.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12];
    if hex.len() != 32 || !hex.iter().all(|c| c.is_ascii_hexdigit()) || !dashes_ok {
        return Err(ScriptError::invalid(
            field,
            uuid,
            "not a UUID (like 3e3fce45-4f53-4fa7-bb32-11f34168b82b)",
        ));
    }
    if hex.iter().all(|c| *c == '0') {
        return Err(ScriptError::invalid(
            field,
            uuid,
            "the all-zero UUID is not an object's UUID",
        ));
    }
    Ok(())
}

/// A machine type the host's capabilities list for `arch` (any arch when
/// none is given). Hosts that list none (the test driver) accept any.
fn check_machine(conn: &Connect, arch: Option<&str>, machine: &str) -> Result<(), ScriptError> {
    let Some(caps) = conn
        .capabilities()
        .ok()
        .and_then(|x| Element::parse(&x).ok())
    else {
        return Ok(());
    };
    let mut known: Vec<String> = Vec::new();
    for guest in caps.children_named("guest") {
        for a in guest.children_named("arch") {
            if arch.is_some_and(|want| a.attr("name") != Some(want)) {
                continue;
            }
            for m in a.children_named("machine") {
                let name = m.text().trim().to_owned();
                if !known.contains(&name) {
                    known.push(name);
                }
            }
        }
    }
    if known.is_empty() || known.iter().any(|k| k == machine) {
        return Ok(());
    }
    known.sort();
    let closest = known
        .iter()
        .min_by_key(|k| edit_distance(k, machine))
        .cloned()
        .unwrap_or_default();
    Err(ScriptError::invalid(
        "machine",
        machine,
        format!(
            "not a machine type {}on this host; did you mean \"{closest}\"? (known: {})",
            arch.map(|a| format!("of {a} ")).unwrap_or_default(),
            known.join(", ")
        ),
    ))
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The other VM on the host whose interface has `mac`, if any.
fn vm_with_mac(conn: &Connect, mac: &str) -> Option<String> {
    let doms = conn.list_all_domains(0).ok()?;
    doms.iter().find_map(|dom| {
        let xml = dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE).ok()?;
        let (d, _) = Domain::parse(&xml).ok()?;
        d.interfaces
            .iter()
            .any(|i| {
                i.mac
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(mac))
            })
            .then(|| dom.name().unwrap_or_default())
    })
}

/// A volume to create for the VM (removed again if the definition fails).
#[derive(Debug, Clone)]
pub struct NewVolume {
    pub pool: String,
    pub name: String,
    pub xml: String,
    /// Index into `domain.disks` whose source is filled in once it exists.
    pub disk: usize,
}

/// Everything `create_vm` will do, decided before anything is done.
pub struct Plan {
    pub domain: Domain,
    /// Application metadata elements, already in their namespaces.
    pub metadata: Vec<Element>,
    pub new_volumes: Vec<NewVolume>,
    pub start: bool,
    pub autostart: bool,
    pub dry_run: bool,
    /// The NoCloud seed, attached as a CD-ROM.
    pub cloud_init: Option<Seed>,
}

/// A cloud-init NoCloud seed: its files, built into an ISO image in memory.
pub struct Seed {
    pub files: Vec<(String, String)>,
    /// Index into `domain.disks` of the CD-ROM that holds it.
    pub disk: usize,
    /// Where it goes: a volume of this name in this pool of the target host
    /// (uploaded through libvirt, so it works for remote hosts too), or, on
    /// the in-process test driver (and in a rehearsal), a private local file
    /// already named in the disk's source.
    pub volume: Option<(String, String)>,
}

/// The seed volume's name for VM `name`: undefine removes it with the VM.
pub fn seed_volume_name(name: &str) -> String {
    format!("virtscript-{name}-cidata.iso")
}

const SPEC_KEYS: &[&str] = &[
    "name",
    "memory",
    "current_memory",
    "vcpus",
    "max_vcpus",
    "cpu",
    "numa",
    "virt_type",
    "arch",
    "machine",
    "uefi",
    "disks",
    "cdrom",
    "location",
    "extra_args",
    "pxe",
    "import",
    "kernel",
    "initrd",
    "cmdline",
    "networks",
    "graphics",
    "autostart",
    "start",
    "cloud_init",
    "dry_run",
    "description",
    "title",
    "uuid",
    "guest_agent",
    "metadata",
    "allow_path",
];

/// The architecture names libvirt knows (`virArch`).
const ARCHES: &[&str] = &[
    "alpha",
    "armv6l",
    "armv7l",
    "armv7b",
    "aarch64",
    "cris",
    "i686",
    "loongarch64",
    "lm32",
    "m68k",
    "microblaze",
    "microblazeel",
    "mips",
    "mipsel",
    "mips64",
    "mips64el",
    "openrisc",
    "parisc",
    "parisc64",
    "ppc",
    "ppcle",
    "ppc64",
    "ppc64le",
    "ppcemb",
    "riscv32",
    "riscv64",
    "s390",
    "s390x",
    "sh4",
    "sh4eb",
    "sparc",
    "sparc64",
    "unicore32",
    "x86_64",
    "xtensa",
    "xtensaeb",
];

const DISK_KEYS: &[&str] = &[
    "volume",
    "pool",
    "size",
    "format",
    "name",
    "path",
    "bus",
    "cache",
    "readonly",
    "shareable",
    "boot_order",
    "device",
    "allow_path",
];

const BUSES: &[&str] = &["virtio", "sata", "scsi", "ide", "usb"];
const CACHES: &[&str] = &[
    "none",
    "writeback",
    "writethrough",
    "directsync",
    "unsafe",
    "default",
];

/// `metadata: #{ "<namespace URI>": "<element/>" }`: application metadata
/// written with the definition itself (what `set_metadata` does afterwards),
/// so a VM never exists without it. Each element gets its own prefix, else `vs`.
fn spec_metadata(f: &Fields) -> Result<Vec<Element>, ScriptError> {
    use crate::xml::metadata as meta;
    let Some(map) = f.map("metadata")? else {
        return Ok(Vec::new());
    };
    let entries = Fields::new(f.name("metadata"), &map);
    let mut out = Vec::new();
    for uri in map.keys() {
        let field = entries.name(uri);
        if !uri.contains(':') {
            return Err(ScriptError::invalid(
                &field,
                uri,
                "the key must be a namespace URI (like https://example.org/app)",
            ));
        }
        let text = entries.string(uri)?.ok_or_else(|| {
            ScriptError::invalid(&field, "()", "must be an XML element string, not ()")
        })?;
        let (prefix, el) = meta::parse_element(&text)
            .map_err(|e| ScriptError::invalid(&field, &text, format!("not an XML element: {e}")))?;
        out.push(meta::with_ns(
            &el,
            prefix.as_deref().unwrap_or(meta::DEFAULT_PREFIX),
            uri,
        ));
    }
    Ok(out)
}

impl Plan {
    /// The domain XML to define.
    pub fn xml(&self) -> String {
        let mut root = self.domain.to_element();
        crate::xml::domain::set_metadata_elements(&mut root, &self.metadata);
        root.to_xml()
    }
}

/// Validate a spec and turn it into a plan. Only reads from libvirt (lookups).
pub fn plan(conn: &Connect, spec: &Map) -> Result<Plan, ScriptError> {
    let f = Fields::new("", spec);
    f.only(SPEC_KEYS)?;

    let name = f
        .string("name")?
        .ok_or_else(|| ScriptError::invalid("name", "()", "a VM needs a name"))?;
    crate::api::policy::check_name_text("name", &name)?;
    if name.is_empty() || name.contains('/') {
        return Err(ScriptError::invalid(
            "name",
            &name,
            "must be non-empty, without '/' or control characters",
        ));
    }

    let memory = f.size("memory", true)?.unwrap_or(1 << 30);
    if memory < (1 << 20) {
        return Err(ScriptError::invalid(
            "memory",
            f.raw("memory").map(show).unwrap_or_default(),
            "must be at least 1 MiB",
        ));
    }
    let current_memory = f.size("current_memory", true)?;
    if let Some(cur) = current_memory {
        if cur > memory {
            return Err(ScriptError::invalid(
                "current_memory",
                crate::runtime::units::format_size(cur),
                format!(
                    "must not exceed memory ({})",
                    crate::runtime::units::format_size(memory)
                ),
            ));
        }
    }
    let vcpus = f.positive("vcpus", 4096)?.unwrap_or(1);
    let max_vcpus = f.positive("max_vcpus", 4096)?.unwrap_or(vcpus);
    if max_vcpus < vcpus {
        return Err(ScriptError::invalid(
            "max_vcpus",
            max_vcpus,
            format!("must be at least vcpus ({vcpus})"),
        ));
    }

    let arch = f.string("arch")?;
    let machine = f.string("machine")?;
    if let Some(a) = &arch {
        if !ARCHES.contains(&a.as_str()) {
            return Err(ScriptError::invalid(
                "arch",
                a,
                format!(
                    "not an architecture libvirt knows (like x86_64, aarch64, ppc64le; all: {})",
                    ARCHES.join(", ")
                ),
            ));
        }
    }
    if let Some(m) = &machine {
        check_identifier("machine", m)?;
        check_machine(conn, arch.as_deref(), m)?;
    }
    let virt_type = match f.one_of("virt_type", &["kvm", "qemu", "auto"])?.as_deref() {
        Some("kvm") => "kvm".to_owned(),
        Some("qemu") => "qemu".to_owned(),
        _ => auto_virt_type(conn, arch.as_deref(), machine.as_deref()),
    };

    let mut d = Domain::new(name.clone(), virt_type);
    d.memory_kib = memory / 1024;
    d.current_memory_kib = current_memory.map(|c| c / 1024);
    d.vcpus = Vcpus {
        max: max_vcpus,
        current: (vcpus != max_vcpus).then_some(vcpus),
    };
    d.uuid = f.string("uuid")?;
    if let Some(uuid) = &d.uuid {
        check_uuid("uuid", uuid)?;
        if conn.lookup_domain_by_uuid_string(uuid).is_ok() {
            return Err(ScriptError::invalid(
                "uuid",
                uuid,
                "a VM with this UUID already exists",
            ));
        }
    }
    d.title = f.string("title")?;
    if let Some(t) = d.title.as_deref().filter(|t| t.contains(['\n', '\r'])) {
        return Err(ScriptError::invalid(
            "title",
            t,
            "a title is one line (put more in description)",
        ));
    }
    d.description = f.string("description")?;
    let metadata = spec_metadata(&f)?;
    d.os.arch = arch;
    d.os.machine = machine.clone();
    if f.boolean("uefi")?.unwrap_or(false) {
        d.os.firmware = Some("efi".into());
    }
    d.cpu = plan_cpu(&f, max_vcpus, memory)?;
    d.numatune = plan_numatune(conn, &f)?;
    let q35 = machine.as_deref().is_some_and(|m| m.contains("q35"));

    // Files outside storage pools and the boot/ISO directories need this.
    let allow_path = f.boolean("allow_path")?.unwrap_or(false);

    // Disks.
    let mut new_volumes = Vec::new();
    let mut taken_names = BTreeSet::new();
    for (i, item) in f.array("disks")?.unwrap_or_default().iter().enumerate() {
        let field = format!("disks[{i}]");
        let (disk, new_volume) =
            plan_disk(conn, &field, item, &name, &d, &mut taken_names, allow_path)?;
        if let Some(mut nv) = new_volume {
            nv.disk = d.disks.len();
            new_volumes.push(nv);
        }
        d.disks.push(disk);
    }

    // Exactly one install method.
    let methods: Vec<&str> = [
        ("cdrom", f.has("cdrom")),
        ("location", f.has("location")),
        ("pxe", f.boolean("pxe")?.unwrap_or(false)),
        ("import", f.boolean("import")?.unwrap_or(false)),
        ("kernel", f.has("kernel")),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(m, _)| m)
    .collect();
    match methods.len() {
        0 => {
            return Err(ScriptError::invalid(
                "install",
                "none",
                "give exactly one install method: cdrom, location, pxe: true, import: true, or kernel (with initrd/cmdline)",
            ))
        }
        1 => {}
        _ => {
            return Err(ScriptError::invalid(
                "install",
                methods.join(" + "),
                "give exactly one install method, not several",
            ))
        }
    }
    if methods[0] != "kernel" && methods[0] != "location" {
        for key in ["initrd", "cmdline"] {
            if f.has(key) {
                return Err(ScriptError::invalid(
                    key,
                    show(f.raw(key).expect("has")),
                    "only goes with kernel (direct kernel boot)",
                ));
            }
        }
    }
    if f.has("extra_args") && methods[0] != "location" {
        return Err(ScriptError::invalid(
            "extra_args",
            show(f.raw("extra_args").expect("has")),
            "only goes with location",
        ));
    }
    let cdrom_bus = if q35 { "sata" } else { "ide" };
    match methods[0] {
        "cdrom" => {
            let path = match f.raw("cdrom") {
                Some(v) if v.is_string() => {
                    check_source(conn, "cdrom", &v.to_string(), allow_path)?;
                    v.to_string()
                }
                Some(v) => match v.read_lock::<Volume>() {
                    Some(vol) => vol.raw.path().map_err(|e| ScriptError::libvirt(&e))?,
                    None => return Err(f.wrong("cdrom", v, "an ISO path or a Volume")),
                },
                None => unreachable!("counted above"),
            };
            if path.is_empty() {
                return Err(ScriptError::invalid("cdrom", "", "must be an ISO path"));
            }
            let target = d.next_target(cdrom_bus);
            d.disks.push(Disk {
                disk_type: "file".into(),
                device: "cdrom".into(),
                format: Some("raw".into()),
                source: Some(path),
                target,
                bus: Some(cdrom_bus.into()),
                readonly: true,
                ..Disk::default()
            });
            d.os.boot = vec!["cdrom".into(), "hd".into()];
        }
        "location" => {
            let location = f.string("location")?.unwrap_or_default();
            check_source(conn, "location", &location, allow_path)?;
            let (kernel, initrd) = find_kernel(&location)?;
            d.os.kernel = Some(kernel);
            d.os.initrd = Some(initrd);
            d.os.cmdline = f.string("extra_args")?;
            // Like virt-install: the installer kernel boots once, then the disk.
            d.on_reboot = Some("destroy".into());
        }
        "pxe" => d.os.boot = vec!["network".into(), "hd".into()],
        "import" => {
            if !d.disks.iter().any(|x| x.device == "disk") {
                return Err(ScriptError::invalid(
                    "import",
                    "true",
                    "import boots the first disk, but disks is empty",
                ));
            }
            d.os.boot = vec!["hd".into()];
        }
        _ => {
            d.os.kernel = f.string("kernel")?;
            d.os.initrd = f.string("initrd")?;
            for (field, path) in [("kernel", &d.os.kernel), ("initrd", &d.os.initrd)] {
                if let Some(path) = path {
                    check_source(conn, field, path, allow_path)?;
                }
            }
            d.os.cmdline = f.string("cmdline")?;
        }
    }
    if d.disks.iter().any(|x| x.boot_order.is_some()) {
        // Per-device boot order and <os><boot> are mutually exclusive in libvirt.
        d.os.boot.clear();
    }

    // Networks: names or maps. Absent: "default" when it exists, as virt-install does.
    match f.array("networks")? {
        Some(nets) => {
            for (i, item) in nets.iter().enumerate() {
                d.interfaces
                    .push(plan_interface(conn, &format!("networks[{i}]"), item)?);
            }
        }
        None => {
            if conn.lookup_network_by_name("default").is_ok() {
                d.interfaces.push(Interface {
                    iface_type: "network".into(),
                    source: Some("default".into()),
                    model: Some("virtio".into()),
                    ..Interface::default()
                });
            }
        }
    }
    // A MAC address is one device's: not twice in this VM, not another VM's.
    for (i, iface) in d.interfaces.iter().enumerate() {
        let Some(mac) = &iface.mac else { continue };
        if let Some(j) = d.interfaces[..i].iter().position(|o| {
            o.mac
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        }) {
            return Err(ScriptError::invalid(
                &format!("networks[{i}].mac"),
                mac,
                format!("networks[{j}] of this VM has the same MAC address"),
            ));
        }
        if let Some(other) = vm_with_mac(conn, mac) {
            return Err(ScriptError::invalid(
                &format!("networks[{i}].mac"),
                mac,
                format!("VM '{other}' already has an interface with this MAC address"),
            ));
        }
    }
    if methods[0] == "pxe" && d.interfaces.is_empty() {
        return Err(ScriptError::invalid(
            "pxe",
            "true",
            "PXE boot needs a network interface (networks is empty)",
        ));
    }

    match f
        .one_of("graphics", &["none", "vnc", "spice"])?
        .as_deref()
        .unwrap_or("none")
    {
        "none" => {}
        kind => d.graphics.push(Graphics {
            graphics_type: kind.into(),
            autoport: Some(true),
            port: None,
            listen: Some("127.0.0.1".into()),
        }),
    }
    // A serial console always (Domain::new); the guest agent channel unless refused.
    if f.boolean("guest_agent")?.unwrap_or(true) {
        d.channels.push(CharDev::guest_agent());
    }

    let cloud_init = match f.map("cloud_init")? {
        None => None,
        Some(ci) => {
            let c = Fields::new("cloud_init", &ci);
            c.only(&["user_data", "meta_data", "network_config", "pool"])?;
            let user = c
                .string("user_data")?
                .unwrap_or_else(|| "#cloud-config\n".into());
            let meta = c
                .string("meta_data")?
                .unwrap_or_else(|| format!("instance-id: {name}\nlocal-hostname: {name}\n"));
            let mut files = vec![
                ("user-data".to_owned(), user),
                ("meta-data".to_owned(), meta),
            ];
            if let Some(net) = c.string("network_config")? {
                files.push(("network-config".into(), net));
            }
            let (source, volume) = if conn.uri().unwrap_or_default().starts_with("test:") {
                (Some(seed_path(conn, &name)?), None)
            } else {
                let pool = seed_pool(conn, c.string("pool")?, &new_volumes)?;
                let file = seed_volume_name(&name);
                // The seed's path shown before it exists (a dry run's XML).
                let source = conn
                    .lookup_storage_pool_by_name(&pool)
                    .ok()
                    .and_then(|p| crate::api::pool::target_path(&p))
                    .map(|dir| format!("{dir}/{file}"));
                (source, Some((pool, file)))
            };
            let target = d.next_target(cdrom_bus);
            d.disks.push(Disk {
                disk_type: "file".into(),
                device: "cdrom".into(),
                format: Some("raw".into()),
                source,
                target,
                bus: Some(cdrom_bus.into()),
                readonly: true,
                ..Disk::default()
            });
            Some(Seed {
                files,
                disk: d.disks.len() - 1,
                volume,
            })
        }
    };

    let dry_run = f.boolean("dry_run")?.unwrap_or(false);
    let start = f.boolean("start")?.unwrap_or(true);
    let autostart = f.boolean("autostart")?.unwrap_or(false);

    if conn.lookup_domain_by_name(&name).is_ok() {
        return Err(ScriptError::invalid(
            "name",
            &name,
            "a VM with this name already exists",
        ));
    }
    Ok(Plan {
        domain: d,
        metadata,
        new_volumes,
        start,
        autostart,
        dry_run,
        cloud_init,
    })
}

/// The target directories of every storage pool on the host (running or not).
pub fn pool_dirs(conn: &Connect) -> Vec<String> {
    conn.list_all_storage_pools(0)
        .unwrap_or_default()
        .iter()
        .filter_map(crate::api::pool::target_path)
        .collect()
}

/// A file a VM would read (disk, CD-ROM, kernel, initrd): inside a storage
/// pool or the boot/ISO directories, unless `allow_path` (`policy::check_source`).
pub fn check_source(
    conn: &Connect,
    field: &str,
    path: &str,
    allow_path: bool,
) -> Result<(), ScriptError> {
    // With allow_path the pools need not be listed; control characters are still refused.
    let pools = if allow_path {
        Vec::new()
    } else {
        pool_dirs(conn)
    };
    crate::api::policy::check_source(field, path, &pools, allow_path)
}

/// The pool a seed is uploaded to: `cloud_init.pool`, else the pool of the
/// VM's first new disk, else `default`; it must be running.
fn seed_pool(
    conn: &Connect,
    given: Option<String>,
    new_volumes: &[NewVolume],
) -> Result<String, ScriptError> {
    let (pool, field) = match given {
        Some(p) => (p, "cloud_init.pool"),
        None => match new_volumes.first() {
            Some(nv) => (nv.pool.clone(), "cloud_init.pool"),
            None => ("default".to_owned(), "cloud_init.pool"),
        },
    };
    let active = conn
        .lookup_storage_pool_by_name(&pool)
        .ok()
        .map(|p| p.is_active().unwrap_or(false));
    match active {
        Some(true) => Ok(pool),
        Some(false) => Err(ScriptError::invalid(
            field,
            &pool,
            "the seed goes into this storage pool, which is not running",
        )),
        None => Err(ScriptError::invalid(
            field,
            &pool,
            "the seed is uploaded into a storage pool of the host: no pool by this name (give cloud_init.pool)",
        )),
    }
}

/// Where the NoCloud seed of VM `name` goes on the in-process test driver
/// (which keeps no volume data, so nothing can be uploaded to it): a private
/// temporary directory (`policy::local_path`), removed at exit. Real hosts get
/// the seed as a volume uploaded into one of their pools.
pub fn seed_path(conn: &Connect, name: &str) -> Result<String, ScriptError> {
    let uri = conn.uri().unwrap_or_default();
    let path = crate::api::policy::local_path(
        &uri,
        "cloud_init",
        &seed_volume_name(name),
        true,
        true,
        crate::api::policy::Writer::Us,
    )?;
    Ok(path.to_string_lossy().into_owned())
}

/// `cpu`: a mode or model name (`"host-passthrough"`, `"qemu64"`), or
/// `#{ mode | model, sockets, cores, threads, numa: [#{ cpus, memory }] }`.
/// The topology must give exactly `max_vcpus`; guest NUMA cells must hold
/// every vCPU once and add up to `memory`.
fn plan_cpu(f: &Fields, max_vcpus: u32, memory: u64) -> Result<Option<Cpu>, ScriptError> {
    let named = |text: &str, field: &str| -> Result<Cpu, ScriptError> {
        match text {
            "host-passthrough" | "host-model" | "maximum" => Ok(Cpu {
                mode: Some(text.to_owned()),
                ..Cpu::default()
            }),
            "" => Err(ScriptError::invalid(
                field,
                "",
                "must name a CPU mode or model",
            )),
            model => {
                // The model goes into the XML: a name libvirt knows, no markup.
                check_identifier(field, model)?;
                Ok(Cpu {
                    mode: Some("custom".into()),
                    model: Some(model.to_owned()),
                    ..Cpu::default()
                })
            }
        }
    };
    let Some(raw) = f.raw("cpu") else {
        return Ok(None);
    };
    if raw.is_string() {
        return named(&raw.to_string(), "cpu").map(Some);
    }
    let Some(map) = f.map("cpu")? else {
        return Ok(None);
    };
    let c = Fields::new("cpu", &map);
    c.only(&["mode", "model", "sockets", "cores", "threads", "numa"])?;
    let mut cpu = match (c.string("mode")?, c.string("model")?) {
        (Some(_), Some(_)) => {
            return Err(ScriptError::invalid(
                "cpu",
                "mode + model",
                "give a mode or a model (a model means mode custom)",
            ))
        }
        (Some(mode), None) => {
            let cpu = named(&mode, "cpu.mode")?;
            if cpu.model.is_some() {
                return Err(ScriptError::invalid(
                    "cpu.mode",
                    &mode,
                    "must be host-passthrough, host-model or maximum (a model goes in cpu.model)",
                ));
            }
            cpu
        }
        (None, Some(model)) => named(&model, "cpu.model")?,
        (None, None) => Cpu::default(),
    };
    let sockets = c.positive("sockets", 4096)?;
    let cores = c.positive("cores", 4096)?;
    let threads = c.positive("threads", 4096)?;
    if sockets.is_some() || cores.is_some() || threads.is_some() {
        let t = Topology {
            sockets: sockets.unwrap_or(1),
            cores: cores.unwrap_or(1),
            threads: threads.unwrap_or(1),
        };
        let total = u64::from(t.sockets) * u64::from(t.cores) * u64::from(t.threads);
        if total != u64::from(max_vcpus) {
            return Err(ScriptError::invalid(
                "cpu",
                format!("{}x{}x{}", t.sockets, t.cores, t.threads),
                format!(
                    "sockets * cores * threads is {total}, but the VM has {max_vcpus} vCPUs (max_vcpus, else vcpus)"
                ),
            ));
        }
        cpu.topology = Some(t);
    }
    if let Some(cells) = c.array("numa")? {
        let mut seen = vec![false; max_vcpus as usize];
        let mut total: u64 = 0;
        for (i, cell) in cells.iter().enumerate() {
            let field = format!("cpu.numa[{i}]");
            let map = cell.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
                ScriptError::invalid(&field, show(cell), "must be a map #{ cpus, memory }")
            })?;
            let cf = Fields::new(field.clone(), &map);
            cf.only(&["cpus", "memory"])?;
            let cpus = cf.string("cpus")?.ok_or_else(|| {
                ScriptError::invalid(
                    &cf.name("cpus"),
                    "()",
                    "required: the cell's vCPUs, like \"0-1\"",
                )
            })?;
            for id in parse_cpuset(&cf.name("cpus"), &cpus)? {
                let slot = seen.get_mut(id as usize).ok_or_else(|| {
                    ScriptError::invalid(
                        &cf.name("cpus"),
                        &cpus,
                        format!("vCPU {id} does not exist (the VM has {max_vcpus})"),
                    )
                })?;
                if *slot {
                    return Err(ScriptError::invalid(
                        &cf.name("cpus"),
                        &cpus,
                        format!("vCPU {id} is in another cell too"),
                    ));
                }
                *slot = true;
            }
            let bytes = cf.size("memory", true)?.ok_or_else(|| {
                ScriptError::invalid(
                    &cf.name("memory"),
                    "()",
                    "required: the cell's memory, like \"1G\"",
                )
            })?;
            total = total.saturating_add(bytes);
            cpu.numa.push(NumaCell {
                cpus,
                memory_kib: bytes / 1024,
            });
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(ScriptError::invalid(
                "cpu.numa",
                format!(
                    "{} {}",
                    cells.len(),
                    if cells.len() == 1 { "cell" } else { "cells" }
                ),
                format!("vCPU {missing} is in no cell: every vCPU needs one"),
            ));
        }
        if !cpu.numa.is_empty() && total != memory {
            return Err(ScriptError::invalid(
                "cpu.numa",
                crate::runtime::units::format_size(total),
                format!(
                    "the cells' memory must add up to the VM's memory ({})",
                    crate::runtime::units::format_size(memory)
                ),
            ));
        }
    }
    Ok(Some(cpu))
}

/// `numa: #{ mode, nodeset }`: the host NUMA cells the guest's memory comes
/// from (`<numatune>`, `virsh numatune`); the cells must exist on the host.
fn plan_numatune(conn: &Connect, f: &Fields) -> Result<Option<Numatune>, ScriptError> {
    let Some(map) = f.map("numa")? else {
        return Ok(None);
    };
    let n = Fields::new("numa", &map);
    n.only(&["mode", "nodeset"])?;
    let mode = n
        .one_of(
            "mode",
            &["strict", "preferred", "interleave", "restrictive"],
        )?
        .unwrap_or_else(|| "strict".into());
    let nodeset = n.string("nodeset")?.ok_or_else(|| {
        ScriptError::invalid(
            "numa.nodeset",
            "()",
            "required: host NUMA cells, like \"0-1\"",
        )
    })?;
    let cells = crate::api::vm::numa::host_cell_ids(conn);
    for id in parse_cpuset("numa.nodeset", &nodeset)? {
        if !cells.is_empty() && !cells.contains(&id) {
            return Err(ScriptError::invalid(
                "numa.nodeset",
                &nodeset,
                format!(
                    "the host has no NUMA cell {id} (it has {})",
                    cells
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(Some(Numatune { mode, nodeset }))
}

/// libvirt's cpuset syntax (`0-3,5`; `^2` excludes) as a sorted list of ids.
pub fn parse_cpuset(field: &str, text: &str) -> Result<Vec<u32>, ScriptError> {
    let bad = |why: &str| ScriptError::invalid(field, text, why.to_owned());
    let mut ids = std::collections::BTreeSet::new();
    let mut excluded = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (exclude, part) = match part.strip_prefix('^') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let num = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 4096)
                .ok_or_else(|| bad("must be numbers and ranges like \"0-3,5\""))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad("a range must go up, like \"0-3\""));
        }
        if exclude {
            excluded.extend(lo..=hi);
        } else {
            ids.extend(lo..=hi);
        }
    }
    for e in excluded {
        ids.remove(&e);
    }
    if ids.is_empty() {
        return Err(bad("names no cell or CPU"));
    }
    Ok(ids.into_iter().collect())
}

fn auto_virt_type(conn: &Connect, arch: Option<&str>, machine: Option<&str>) -> String {
    match conn.domain_capabilities(None, arch, machine, Some("kvm"), 0) {
        Ok(_) => "kvm".into(),
        Err(_) => "qemu".into(),
    }
}

/// `disks[i]`: `#{ volume }`, `#{ pool, size, format }` or `#{ path }`, plus options.
/// A path outside storage pools and the boot/ISO directories needs `allow_path`
/// (the VM's, passed in, or the disk's own).
pub fn plan_disk(
    conn: &Connect,
    field: &str,
    item: &Dynamic,
    vm_name: &str,
    d: &Domain,
    taken: &mut BTreeSet<String>,
    allow_path: bool,
) -> Result<(Disk, Option<NewVolume>), ScriptError> {
    // A bare string is a path, a bare Volume a volume.
    let map: Map = if let Some(m) = item.read_lock::<Map>() {
        m.clone()
    } else if item.is_string() {
        let mut m = Map::new();
        m.insert("path".into(), item.clone());
        m
    } else if item.read_lock::<Volume>().is_some() {
        let mut m = Map::new();
        m.insert("volume".into(), item.clone());
        m
    } else {
        return Err(ScriptError::invalid(
            field,
            show(item),
            format!(
                "must be a map like #{{ pool: \"default\", size: \"10G\" }}, not {}",
                item.type_name()
            ),
        ));
    };
    let f = Fields::new(field, &map);
    f.only(DISK_KEYS)?;
    let kind = f.exactly_one(
        &["volume", "pool", "path"],
        "give exactly one of volume, pool (with size) or path",
    )?;
    let device = f
        .one_of("device", &["disk", "cdrom", "floppy", "lun"])?
        .unwrap_or_else(|| "disk".into());
    let bus = f.one_of("bus", BUSES)?.unwrap_or_else(|| {
        if device == "cdrom" {
            "sata".into()
        } else {
            "virtio".into()
        }
    });
    let mut disk = Disk {
        disk_type: "file".into(),
        device,
        target: String::new(),
        bus: Some(bus.clone()),
        cache: f.one_of("cache", CACHES)?,
        readonly: f.boolean("readonly")?.unwrap_or(false),
        shareable: f.boolean("shareable")?.unwrap_or(false),
        boot_order: f.positive("boot_order", 1000)?,
        ..Disk::default()
    };
    disk.target = d.next_target(&bus);
    let mut new_volume = None;
    match kind {
        "volume" => {
            let v = f.raw("volume").expect("has");
            let vol = v.read_lock::<Volume>().ok_or_else(|| {
                f.wrong(
                    "volume",
                    v,
                    "a Volume (from pool.volume(...) or pool.create_volume(...))",
                )
            })?;
            disk.source = Some(vol.raw.path().map_err(|e| ScriptError::libvirt(&e))?);
            disk.format = vol
                .raw
                .xml_desc(0)
                .ok()
                .and_then(|x| Element::parse(&x).ok())
                .and_then(|t| {
                    t.path(&["target", "format"])
                        .and_then(|e| e.attr("type").map(str::to_owned))
                });
            if f.has("size") {
                return Err(ScriptError::invalid(
                    &f.name("size"),
                    show(f.raw("size").expect("has")),
                    "only goes with pool (a new volume)",
                ));
            }
        }
        "pool" => {
            let pool_name = f.string("pool")?.unwrap_or_default();
            let pool = conn.lookup_storage_pool_by_name(&pool_name).map_err(|_| {
                ScriptError::invalid(&f.name("pool"), &pool_name, "no storage pool by this name")
            })?;
            let size = f.size("size", false)?.ok_or_else(|| {
                ScriptError::invalid(
                    &f.name("size"),
                    "()",
                    "a new volume needs a size, like \"10G\"",
                )
            })?;
            let format = f
                .one_of("format", &["qcow2", "raw"])?
                .unwrap_or_else(|| "qcow2".into());
            let vol_name = match f.string("name")? {
                Some(n) => n,
                None => {
                    let ext = if format == "raw" { "img" } else { "qcow2" };
                    let mut i = 0;
                    loop {
                        let candidate = if i == 0 {
                            format!("{vm_name}.{ext}")
                        } else {
                            format!("{vm_name}-{i}.{ext}")
                        };
                        if !taken.contains(&candidate)
                            && pool.lookup_storage_vol_by_name(&candidate).is_err()
                        {
                            break candidate;
                        }
                        i += 1;
                    }
                }
            };
            if taken.contains(&vol_name) || pool.lookup_storage_vol_by_name(&vol_name).is_ok() {
                return Err(ScriptError::invalid(
                    &f.name("name"),
                    &vol_name,
                    format!("pool {pool_name} already has a volume by this name"),
                ));
            }
            taken.insert(vol_name.clone());
            let pool_path = crate::api::pool::target_path(&pool).unwrap_or_default();
            disk.source = Some(format!("{}/{vol_name}", pool_path.trim_end_matches('/')));
            disk.format = Some(format.clone());
            let xml = Element::new("volume")
                .with_child(Element::new("name").with_text(vol_name.clone()))
                .with_child(
                    Element::new("capacity")
                        .with_attr("unit", "bytes")
                        .with_text(size.to_string()),
                )
                .with_child(
                    Element::new("target")
                        .with_child(Element::new("format").with_attr("type", format)),
                )
                .to_xml();
            new_volume = Some(NewVolume {
                pool: pool_name,
                name: vol_name,
                xml,
                disk: 0,
            });
        }
        _ => {
            let path = f.string("path")?.unwrap_or_default();
            if !path.starts_with('/') {
                return Err(ScriptError::invalid(
                    &f.name("path"),
                    &path,
                    "must be an absolute path",
                ));
            }
            let allow = allow_path || f.boolean("allow_path")?.unwrap_or(false);
            check_source(conn, &f.name("path"), &path, allow)?;
            if path.starts_with("/dev/") {
                disk.disk_type = "block".into();
            }
            if f.has("size") {
                return Err(ScriptError::invalid(
                    &f.name("size"),
                    show(f.raw("size").expect("has")),
                    "only goes with pool (a new volume)",
                ));
            }
            disk.format =
                match f.one_of("format", &["qcow2", "raw", "vmdk", "vdi", "vpc", "qed"])? {
                    Some(fmt) => Some(fmt),
                    // A path that is a storage volume has the volume's format.
                    None => match volume_format(conn, &path) {
                        Some(fmt) => Some(fmt),
                        None if path.ends_with(".qcow2") => Some("qcow2".into()),
                        None => Some("raw".into()),
                    },
                };
            disk.source = Some(path);
        }
    }
    if kind != "pool" && f.has("name") {
        return Err(ScriptError::invalid(
            &f.name("name"),
            show(f.raw("name").expect("has")),
            "only goes with pool (the new volume's name)",
        ));
    }
    if kind == "volume" && f.has("format") {
        return Err(ScriptError::invalid(
            &f.name("format"),
            show(f.raw("format").expect("has")),
            "a volume's format is the volume's own",
        ));
    }
    if disk.device == "cdrom" {
        disk.readonly = true;
    }
    Ok((disk, new_volume))
}

fn volume_format(conn: &Connect, path: &str) -> Option<String> {
    let vol = conn.lookup_storage_vol_by_path(path).ok()?;
    let tree = Element::parse(&vol.xml_desc(0).ok()?).ok()?;
    tree.path(&["target", "format"])
        .and_then(|e| e.attr("type"))
        // libvirt's pools call ISO images "iso"; QEMU reads them as raw.
        .map(|f| if f == "iso" { "raw" } else { f }.to_owned())
}

/// `networks[i]`: a network name, or `#{ network | bridge | direct, mac, model }`.
pub fn plan_interface(
    conn: &Connect,
    field: &str,
    item: &Dynamic,
) -> Result<Interface, ScriptError> {
    let map: Map = if item.is_string() {
        let mut m = Map::new();
        m.insert("network".into(), item.clone());
        m
    } else if let Some(m) = item.read_lock::<Map>() {
        m.clone()
    } else {
        return Err(ScriptError::invalid(
            field,
            show(item),
            format!("must be a network name or a map, not {}", item.type_name()),
        ));
    };
    let f = Fields::new(field, &map);
    f.only(&[
        "network", "bridge", "direct", "mode", "mac", "model", "live", "config",
    ])?;
    let kind = f.exactly_one(
        &["network", "bridge", "direct"],
        "give exactly one of network, bridge or direct",
    )?;
    let source = f.string(kind)?.unwrap_or_default();
    if source.is_empty() {
        return Err(ScriptError::invalid(&f.name(kind), "", "must not be empty"));
    }
    if kind == "network" && conn.lookup_network_by_name(&source).is_err() {
        return Err(ScriptError::invalid(
            &f.name("network"),
            &source,
            "no libvirt network by this name",
        ));
    }
    let mac = f.string("mac")?.map(|m| m.to_ascii_lowercase());
    if let Some(mac) = &mac {
        if let Some(problem) = crate::xml::network::mac_problem(mac) {
            return Err(ScriptError::invalid(&f.name("mac"), mac, problem));
        }
    }
    let mode = f.one_of("mode", &["bridge", "vepa", "private", "passthrough"])?;
    if mode.is_some() && kind != "direct" {
        return Err(ScriptError::invalid(
            &f.name("mode"),
            mode.unwrap_or_default(),
            "only goes with direct (macvtap)",
        ));
    }
    Ok(Interface {
        iface_type: kind.into(),
        source: Some(source),
        mode: if kind == "direct" {
            Some(mode.unwrap_or_else(|| "bridge".into()))
        } else {
            None
        },
        mac,
        model: Some(match f.string("model")? {
            Some(model) => {
                check_identifier(&f.name("model"), &model)?;
                model
            }
            None => "virtio".into(),
        }),
        target: None,
    })
}

/// Find the installer kernel and initrd in a distribution tree (virt-install `--location`).
fn find_kernel(location: &str) -> Result<(String, String), ScriptError> {
    let dir = std::path::Path::new(location);
    if !dir.is_dir() {
        return Err(ScriptError::invalid(
            "location",
            location,
            "must be a directory holding an installation tree (an unpacked ISO)",
        ));
    }
    const PAIRS: &[(&str, &str)] = &[
        ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"),
        ("install.amd/vmlinuz", "install.amd/initrd.gz"),
        ("install/vmlinuz", "install/initrd.gz"),
        ("casper/vmlinuz", "casper/initrd"),
        ("casper/vmlinuz", "casper/initrd.gz"),
        ("boot/x86_64/loader/linux", "boot/x86_64/loader/initrd"),
        ("isolinux/vmlinuz", "isolinux/initrd.img"),
        ("boot/vmlinuz", "boot/initrd.img"),
        ("vmlinuz", "initrd.img"),
        ("vmlinuz", "initrd.gz"),
        ("vmlinuz", "initramfs"),
    ];
    for (k, i) in PAIRS {
        let (kp, ip) = (dir.join(k), dir.join(i));
        if kp.is_file() && ip.is_file() {
            return Ok((
                kp.to_string_lossy().into_owned(),
                ip.to_string_lossy().into_owned(),
            ));
        }
    }
    Err(ScriptError::invalid(
        "location",
        location,
        format!(
            "no kernel and initrd found (looked for {})",
            PAIRS
                .iter()
                .map(|(k, i)| format!("{k}+{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}
