//! `HOST.create_vm(spec)`: the virt-install-like spec, validated into a plan
//! BEFORE anything is created. Errors name the field and the value.
mod caps;
mod cpu;
mod defaults;
mod disks;
mod hostdevs;
mod install;
pub mod location;
mod networks;
pub mod osinfo;
mod seed;

use std::collections::BTreeSet;

use rhai::Map;
use virt::connect::Connect;

use super::keys;
use crate::api::args::Fields;
use crate::api::error::ScriptError;
use crate::xml::domain::{CharDev, Controller, Domain, Graphics};
use crate::xml::tree::Element;

pub use caps::{platform, Platform};
pub use cpu::{parse_cpuset, plan_cpu_map};
pub use disks::plan_disk;
pub use hostdevs::{hostdev_map, plan_hostdevs};
pub use install::{check_source, pool_dirs, BootFile, BootFiles};
pub use networks::plan_interface;
pub use seed::{seed_path, seed_volume_name, Seed};

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
    // The nearest name even when it is far: the list follows anyway.
    let closest = known
        .iter()
        .min_by_key(|k| strsim::levenshtein(k, machine))
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
    /// The install boot on top of `domain` (the final definition), for
    /// `cdrom`, `location` and `pxe`.
    pub install: Option<crate::xml::install::InstallPhase>,
    /// A URL `location`'s kernel and initrd, fetched when the VM is made.
    pub boot_files: Option<BootFiles>,
}
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

/// `metadata: #{ "<namespace URI>": "<element/>" }`: application metadata
/// written with the definition itself (what `set_metadata` does afterwards),
/// so a VM never exists without it. Each element gets its own prefix, else `vs`.
fn spec_metadata(field: &str, map: &Map) -> Result<Vec<Element>, ScriptError> {
    use crate::xml::metadata as meta;
    let entries = Fields::new(field, map);
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
    /// The domain XML to define: the final definition.
    pub fn xml(&self) -> String {
        self.xml_of(&self.domain, &[])
    }

    /// The final definition with the install phase recorded in its
    /// metadata (`define_vm`: the first `vm.start()` runs the install boot).
    pub fn recorded_xml(&self) -> String {
        use crate::xml::{install, metadata};
        match &self.install {
            Some(phase) => {
                let record = metadata::with_ns(&phase.to_element(), install::PREFIX, install::NS);
                self.xml_of(&self.domain, &[record])
            }
            None => self.xml(),
        }
    }

    /// The install boot's definition, when the method has one (with `uuid`,
    /// the defined final definition's, so that it starts over it).
    pub fn install_xml(&self, uuid: Option<&str>) -> Option<String> {
        let phase = self.install.as_ref()?;
        let mut d = self.domain.clone();
        phase.apply(&mut d);
        if let Some(u) = uuid {
            d.uuid = Some(u.to_owned());
        }
        Some(self.xml_of(&d, &[]))
    }

    fn xml_of(&self, d: &Domain, extra: &[Element]) -> String {
        let mut root = d.to_element();
        let mut all = self.metadata.clone();
        all.extend(extra.iter().cloned());
        crate::xml::domain::set_metadata_elements(&mut root, &all);
        root.to_xml()
    }

    /// The final definition as `dry_run` returns it: without the display
    /// passwords, as libvirt shows a definition (`virsh dumpxml` without
    /// `--security-info`).
    pub fn shown_xml(&self) -> String {
        self.xml_of(&without_passwords(&self.domain), &[])
    }

    /// The install boot's definition as `dry_run` returns it.
    pub fn shown_install_xml(&self) -> Option<String> {
        let phase = self.install.as_ref()?;
        let mut d = without_passwords(&self.domain);
        phase.apply(&mut d);
        Some(self.xml_of(&d, &[]))
    }
}

fn without_passwords(d: &Domain) -> Domain {
    let mut d = d.clone();
    for g in &mut d.graphics {
        g.passwd = None;
    }
    d
}

/// Validate a spec and turn it into a plan. Only reads from libvirt (lookups).
/// Every key is read first (with what it alone must be), so that `finish`
/// refuses the keys nobody asked for (typos, with "did you mean") before the
/// checks between keys and against the host.
pub fn plan(conn: &Connect, spec: &Map) -> Result<Plan, ScriptError> {
    let f = Fields::new("", spec);
    let name = f.string("name")?;
    let mut d = Domain::new(name.clone().unwrap_or_default(), "");
    keys::memory(&f, &mut d)?;
    keys::current_memory(&f, &mut d)?;
    keys::vcpus(&f, &mut d)?;
    let arch = f.string("arch")?;
    let machine = f.string("machine")?;
    let virt_type = f.one_of("virt_type", &["kvm", "qemu", "auto"])?;
    d.uuid = f.string("uuid")?;
    keys::title(&f, &mut d)?;
    keys::description(&f, &mut d)?;
    let metadata = f.map("metadata")?;
    let uefi = f.boolean("uefi")?.unwrap_or(false);
    cpu::vcpus_from_topology(&f, &mut d)?;
    keys::cpu(&f, &mut d)?;
    let numa = f.map("numa")?;
    // Files outside storage pools and the boot/ISO directories need this.
    let allow_path = f.boolean("allow_path")?.unwrap_or(false);
    let disks = f.array("disks")?.unwrap_or_default();
    let install = install::read_install(&f)?;
    let boot = f.array("boot")?.is_some();
    let networks = f.array("networks")?;
    // The device keys (keys/devices/); the TPM's model follows the arch.
    d.os.arch = arch.clone();
    for apply in [
        keys::graphics,
        keys::video,
        keys::sound,
        keys::console,
        keys::controllers,
        keys::filesystems,
        keys::tpm,
        keys::rng,
        keys::watchdog,
        keys::memballoon,
        keys::features,
    ] {
        apply(&f, &mut d)?;
    }
    f.array("hostdevs")?;
    let guest_agent = f.boolean("guest_agent")?.unwrap_or(true);
    let cloud_init = f.map("cloud_init")?;
    let os = f.string("os")?;
    let dry_run = f.boolean("dry_run")?.unwrap_or(false);
    let start = f.boolean("start")?.unwrap_or(true);
    let autostart = f.boolean("autostart")?.unwrap_or(false);
    f.finish()?;

    let name = name.ok_or_else(|| ScriptError::invalid("name", "()", "a VM needs a name"))?;
    crate::api::policy::check_name_text("name", &name)?;
    if name.is_empty() || name.contains('/') {
        return Err(ScriptError::invalid(
            "name",
            &name,
            "must be non-empty, without '/' or control characters",
        ));
    }
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
    // ARM/RISC-V `virt`, `pseries`, s390x: the machine virt-install picks.
    let mut machine = machine.or_else(|| {
        arch.as_deref()
            .and_then(caps::recommended_machine)
            .map(str::to_owned)
    });
    d.virt_type = match virt_type.as_deref() {
        Some("kvm") => "kvm".to_owned(),
        Some("qemu") => "qemu".to_owned(),
        _ => auto_virt_type(conn, arch.as_deref(), machine.as_deref()),
    };
    // What the host offers for this arch/machine/virt type, read once (twice
    // when the OS changes the machine).
    let virt_given = matches!(virt_type.as_deref(), Some("kvm" | "qemu"));
    let read_platform = |machine: Option<&str>, virt: &str| {
        caps::platform(conn, arch.as_deref(), machine, virt, virt_given)
    };
    let mut platform = read_platform(machine.as_deref(), &d.virt_type)?;
    // `generic` is virt-install's word for "no OS-specific defaults".
    if let Some(os) = os.as_deref().filter(|o| *o != "generic") {
        platform.os = Some(guest_os(conn, &f, os, &platform.arch, allow_path)?);
    }
    // virt-install's x86 machine (guest.py `_set_default_machine`): q35 when
    // the OS runs on it and the host has it, else the host's default (pc).
    let q35_for_os = platform.os.as_ref().is_some_and(|p| p.q35)
        && machine.is_none()
        && platform.is_x86()
        && check_machine(conn, Some(&platform.arch), "q35").is_ok();
    if q35_for_os {
        let os = platform.os.take();
        machine = Some("q35".to_owned());
        platform = read_platform(machine.as_deref(), &d.virt_type)?;
        platform.os = os;
    }
    // Features and CPU the arch needs (virt-install's defaults): APIC is x86's,
    // ACPI x86's and ARM's (there with UEFI); QEMU's `virt` machine starts a
    // 32-bit CPU unless told otherwise.
    // (Only defaults: a `features` map given says it all.)
    if !platform.is_x86() && !f.has("features") {
        d.features.apic = false;
        if platform.arch != "aarch64" {
            d.features.acpi = false;
        }
    }
    if platform.arch == "aarch64" && platform.is_virt_machine() && d.cpu.is_none() {
        d.cpu = Some(if d.virt_type == "kvm" {
            crate::xml::domain::Cpu {
                mode: Some("host-passthrough".into()),
                ..Default::default()
            }
        } else {
            crate::xml::domain::Cpu {
                mode: Some("custom".into()),
                model: Some("cortex-a57".into()),
                ..Default::default()
            }
        });
    }
    if let Some(profile) = &platform.os {
        // The OS's recommended resources where the spec gives none.
        if !f.has("memory") {
            if let Some(ram) = profile.ram {
                d.memory_kib = ram / 1024;
            }
        }
        if !f.has("vcpus") && !f.has("max_vcpus") {
            if let Some(n) = profile.n_cpus.and_then(|n| u32::try_from(n).ok()) {
                d.vcpus = crate::xml::domain::Vcpus {
                    max: n,
                    current: None,
                };
            }
        }
    }
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
    let mut metadata = match metadata {
        Some(map) => spec_metadata(&f.name("metadata"), &map)?,
        None => Vec::new(),
    };
    if let Some(profile) = &platform.os {
        // As virt-install records it: tools (virt-manager, libosinfo) read the OS from here.
        const LIBOSINFO: &str = "http://libosinfo.org/xmlns/libvirt/domain/1.0";
        if !metadata
            .iter()
            .any(|m| crate::xml::metadata::in_namespace(m, LIBOSINFO))
        {
            let el = Element::new("libosinfo")
                .with_child(Element::new("os").with_attr("id", profile.id.clone()));
            metadata.push(crate::xml::metadata::with_ns(&el, "libosinfo", LIBOSINFO));
        }
    }
    d.os.arch = arch;
    d.os.machine = machine.clone();
    if uefi || platform.needs_efi() {
        if !platform.caps.has_efi() {
            let (field, value) = if uefi {
                ("uefi", "true".to_owned())
            } else {
                ("arch", platform.arch.clone())
            };
            return Err(ScriptError::invalid(
                field,
                value,
                format!(
                    "{} {} guests boot with UEFI firmware, which this host does not list for {} (install the firmware: ovmf, qemu-efi-aarch64, ...)",
                    platform.arch,
                    platform.machine,
                    platform.arch
                ),
            ));
        }
        d.os.firmware = Some("efi".into());
    }
    d.numatune = match numa {
        Some(map) => Some(cpu::plan_numatune(conn, &map)?),
        None => None,
    };

    let mut new_volumes = Vec::new();
    let mut taken_names = BTreeSet::new();
    for (i, item) in disks.iter().enumerate() {
        let field = format!("disks[{i}]");
        let (disk, new_volume) =
            plan_disk(conn, &field, item, &name, &d, &mut taken_names, allow_path, &platform)?;
        if let Some(mut nv) = new_volume {
            nv.disk = d.disks.len();
            new_volumes.push(nv);
        }
        d.disks.push(disk);
    }

    let method = install.method()?;
    // One rule for every CD-ROM (install media, seed, disks[i]): caps::cdrom_bus.
    let cdrom_bus = platform.cdrom_bus();
    let installed = install::apply_install(conn, &f, method, &mut d, &cdrom_bus, allow_path)?;
    // Windows installs in stages across reboots: its media stays in the
    // drive (virt-install's _remove_install_cdrom_media keeps it too).
    if platform.os.as_ref().is_some_and(|p| p.windows) {
        for (target, source) in installed.phase.iter().flat_map(|p| &p.media) {
            if let Some(disk) = d.disks.iter_mut().find(|x| x.target == *target) {
                disk.source = Some(source.clone());
            }
        }
    }
    // The order the VM boots in once installed (the install method boots
    // its own media for the install).
    if boot {
        keys::boot(&f, &mut d)?;
        keys::check_boot_orders("boot", &d)?;
    }

    let given_models: Vec<bool> = networks
        .iter()
        .flatten()
        .map(|n| n.read_lock::<Map>().is_some_and(|m| m.contains_key("model")))
        .collect();
    networks::plan_networks(conn, networks, &mut d)?;
    if platform.os.is_some() {
        // An OS without virtio-net gets the emulated NIC virt-install picks.
        let model = platform.nic_model();
        for (i, iface) in d.interfaces.iter_mut().enumerate() {
            if !given_models.get(i).copied().unwrap_or(false) {
                iface.model = Some(model.clone());
            }
        }
    }
    if method == "pxe" && d.interfaces.is_empty() {
        return Err(ScriptError::invalid(
            "pxe",
            "true",
            "PXE boot needs a network interface (networks is empty)",
        ));
    }

    // A display without `graphics`, as with virt-install
    // (caps::default_display): for an ISO install, and for every VM whose
    // `os` is given; elsewhere, and where the host has none, the serial
    // console every VM has.
    if !f.has("graphics") && (method == "cdrom" || platform.os.is_some()) {
        if let Some(kind) = platform.default_display() {
            d.graphics.push(Graphics {
                graphics_type: kind.clone(),
                autoport: Some(true),
                port: None,
                listen: Some("127.0.0.1".into()),
                passwd: None,
            });
            if kind == "spice" && !d.channels.iter().any(|c| c.char_type == "spicevmc") {
                d.channels.push(keys::spice_vdagent());
            }
        }
    }
    // Shared directories are files the VM reads, under the same rule.
    for (i, fs) in d.filesystems.iter().enumerate() {
        if let Some(dir) = &fs.source {
            check_source(conn, &format!("filesystems[{i}].source"), dir, allow_path)?;
        }
    }
    // A serial console always (Domain::new); the guest agent channel unless refused.
    if guest_agent {
        d.channels.push(CharDev::guest_agent());
    }

    let cloud_init = match cloud_init {
        Some(ci) => Some(seed::plan_seed(conn, &ci, &mut d, &cdrom_bus, &new_volumes)?),
        None => None,
    };
    // A SCSI disk or CD-ROM needs a virtio-scsi controller, else libvirt
    // adds the emulated LSI one (virt-install adds it the same way).
    if d.disks.iter().any(|x| x.bus.as_deref() == Some("scsi"))
        && !d.controllers.iter().any(|c| c.controller_type == "scsi")
    {
        d.controllers.push(Controller {
            controller_type: "scsi".into(),
            index: Some(0),
            model: Some("virtio-scsi".into()),
            ..Controller::default()
        });
    }

    hostdevs::apply(conn, &f, &mut d)?;
    // What virt-install adds besides (video, input, USB, RNG, balloon, TPM,
    // clock, pm, PCIe ports, SPICE's sound and USB redirection).
    defaults::apply(&f, &platform, &mut d);

    if conn.lookup_domain_by_name(&name).is_ok() {
        return Err(ScriptError::invalid(
            "name",
            &name,
            "a VM with this name already exists",
        ));
    }
    let mut installed = installed;
    if let Some(files) = &mut installed.boot_files {
        files.resolve()?;
    }
    Ok(Plan {
        domain: d,
        metadata,
        new_volumes,
        start,
        autostart,
        dry_run,
        cloud_init,
        install: installed.phase,
        boot_files: installed.boot_files,
    })
}

/// `os`: a short id of the osinfo database, or `"detect"` (the `cdrom` ISO's
/// volume descriptor or the `location` tree's `.treeinfo`, read on this
/// machine after the storage rule allowed the path).
fn guest_os(
    conn: &Connect,
    f: &Fields,
    os: &str,
    arch: &str,
    allow_path: bool,
) -> Result<osinfo::OsProfile, ScriptError> {
    if os != "detect" {
        return osinfo::lookup(os, arch);
    }
    let uri = conn.uri().unwrap_or_default();
    if !uri.starts_with("test:") && !crate::api::host::is_local_uri(&uri) {
        return Err(ScriptError::invalid(
            "os",
            os,
            format!("detect reads the install media on this machine, but {uri} is another host's: give os a short id"),
        ));
    }
    if let Some(v) = f.raw("cdrom") {
        let path = if v.is_string() {
            let p = v.to_string();
            check_source(conn, "cdrom", &p, allow_path)?;
            p
        } else if let Some(vol) = v.read_lock::<crate::api::Volume>() {
            vol.raw.path().map_err(|e| ScriptError::libvirt(&e))?
        } else {
            return Err(f.wrong("cdrom", v, "an ISO path or a Volume"));
        };
        return osinfo::detect_iso(std::path::Path::new(&path), arch);
    }
    if let Some(location) = f.string("location")? {
        check_source(conn, "location", &location, allow_path)?;
        return osinfo::detect_tree(std::path::Path::new(&location), arch);
    }
    Err(ScriptError::invalid(
        "os",
        os,
        "detect needs install media to look at: a cdrom ISO or a location tree",
    ))
}

fn auto_virt_type(conn: &Connect, arch: Option<&str>, machine: Option<&str>) -> String {
    match conn.domain_capabilities(None, arch, machine, Some("kvm"), 0) {
        Ok(_) => "kvm".into(),
        Err(_) => "qemu".into(),
    }
}
