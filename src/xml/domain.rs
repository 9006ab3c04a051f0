//! Typed domain XML for what virtscript generates (`virt-install`'s subset):
//! os/boot (incl. direct kernel boot and EFI firmware), cpu mode, memory,
//! vcpus with hot-add headroom, disks, cdroms, interfaces, serial/console,
//! graphics, channels and controllers; video, sound, filesystems, TPM, RNG,
//! watchdog, memory balloon and `<features>` are in `domain/devices.rs`.
//!
//! Every typed part reads itself from an [`Element`] (`from_element`) and
//! writes itself back onto one (`apply_to`), touching only what it models:
//! editing an existing domain goes through the lossless tree, so elements and
//! attributes we do not model (addresses, seclabels, metadata...) survive.
//! A new domain is `apply_to` on an empty `<domain>` element.
use super::tree::{Element, Node};

mod devices;
pub use super::domain_hostdev::{Hostdev, PciAddress, UsbSource};
pub use devices::{
    Clock, Features, Filesystem, Hyperv, HypervFlag, Input, Memballoon, MemoryBacking, Pm,
    Redirdev, Rng, Sound, Timer, Tpm, Video, Watchdog,
};

/// Memory amounts are kept in KiB, as libvirt reports them.
pub fn to_kib(value: u64, unit: &str) -> Option<u64> {
    let bytes: u128 = match unit.to_ascii_lowercase().as_str() {
        "b" | "bytes" => value as u128,
        "k" | "kib" | "" => (value as u128) << 10,
        "kb" => value as u128 * 1_000,
        "m" | "mib" => (value as u128) << 20,
        "mb" => value as u128 * 1_000_000,
        "g" | "gib" => (value as u128) << 30,
        "gb" => value as u128 * 1_000_000_000,
        "t" | "tib" => (value as u128) << 40,
        "tb" => value as u128 * 1_000_000_000_000,
        _ => return None,
    };
    u64::try_from(bytes / 1024).ok()
}

fn read_kib(el: &Element) -> Option<u64> {
    let value: u64 = el.text().trim().parse().ok()?;
    to_kib(value, el.attr("unit").unwrap_or("KiB"))
}

/// Write a memory element, leaving it alone when it already says the same amount.
fn write_kib(el: &mut Element, kib: u64) {
    if read_kib(el) == Some(kib) {
        return;
    }
    el.set_attr("unit", "KiB");
    el.set_text(kib.to_string());
}

/// Set an optional attribute: `None` removes it.
fn set_opt(el: &mut Element, name: &str, value: Option<&str>) {
    match value {
        Some(v) => el.set_attr(name, v),
        None => {
            el.remove_attr(name);
        }
    }
}

fn attr(el: &Element, name: &str) -> Option<String> {
    el.attr(name).map(str::to_owned)
}

fn yes(el: &Element, name: &str) -> bool {
    matches!(el.attr(name), Some("yes" | "on"))
}

/// Set a child element's text; `None` removes the child.
fn set_child_text(parent: &mut Element, name: &str, value: Option<&str>) {
    match value {
        Some(v) => {
            let child = parent.ensure_child(name);
            if child.text() != v {
                child.set_text(v);
            }
        }
        None => {
            parent.remove_elements(|e| e.name == name);
        }
    }
}

/// A child element that is present exactly when `present` is true (like `<readonly/>`).
fn set_flag_child(parent: &mut Element, name: &str, present: bool) {
    if present {
        parent.ensure_child(name);
    } else {
        parent.remove_elements(|e| e.name == name);
    }
}

/// Find or insert the child `name`, placing a new one before the first of `before`.
fn ensure_child_before<'a>(
    parent: &'a mut Element,
    name: &str,
    before: &[&str],
) -> &'a mut Element {
    if parent.child(name).is_none() {
        let at = parent
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if before.contains(&e.name.as_str())))
            .unwrap_or(parent.children.len());
        parent
            .children
            .insert(at, Node::Element(Element::new(name)));
    }
    parent.child_mut(name).expect("just ensured")
}

// ---------------------------------------------------------------- os / boot

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Os {
    pub os_type: String,
    pub arch: Option<String>,
    pub machine: Option<String>,
    /// `firmware='efi'` (libvirt picks the loader and nvram).
    pub firmware: Option<String>,
    /// `<boot dev=.../>` in order: `hd`, `cdrom`, `network`, `fd`.
    pub boot: Vec<String>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    pub boot_menu: Option<bool>,
}

impl Os {
    pub fn from_element(el: &Element) -> Os {
        let ty = el.child("type");
        Os {
            os_type: ty.map(|t| t.text()).unwrap_or_else(|| "hvm".into()),
            arch: ty.and_then(|t| attr(t, "arch")),
            machine: ty.and_then(|t| attr(t, "machine")),
            firmware: attr(el, "firmware"),
            boot: el
                .children_named("boot")
                .filter_map(|b| attr(b, "dev"))
                .collect(),
            kernel: el.child("kernel").map(|e| e.text()),
            initrd: el.child("initrd").map(|e| e.text()),
            cmdline: el.child("cmdline").map(|e| e.text()),
            boot_menu: el.child("bootmenu").map(|b| yes(b, "enable")),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        set_opt(el, "firmware", self.firmware.as_deref());
        let ty = ensure_child_before(el, "type", &["loader", "nvram", "kernel", "boot"]);
        if ty.text() != self.os_type {
            ty.set_text(self.os_type.clone());
        }
        set_opt(ty, "arch", self.arch.as_deref());
        set_opt(ty, "machine", self.machine.as_deref());
        for (name, value) in [
            ("kernel", &self.kernel),
            ("initrd", &self.initrd),
            ("cmdline", &self.cmdline),
        ] {
            match value {
                Some(v) => {
                    let child = ensure_child_before(el, name, &["boot", "bootmenu", "smbios"]);
                    if child.text() != *v {
                        child.set_text(v.clone());
                    }
                }
                None => {
                    el.remove_elements(|e| e.name == name);
                }
            }
        }
        let current: Vec<String> = el
            .children_named("boot")
            .filter_map(|b| attr(b, "dev"))
            .collect();
        if current != self.boot {
            let at = el
                .children
                .iter()
                .position(|n| matches!(n, Node::Element(e) if e.name == "boot"))
                .or_else(|| {
                    el.children.iter().position(
                        |n| matches!(n, Node::Element(e) if e.name == "bootmenu" || e.name == "smbios"),
                    )
                })
                .unwrap_or(el.children.len());
            el.remove_elements(|e| e.name == "boot");
            for (i, dev) in self.boot.iter().enumerate() {
                el.children.insert(
                    at + i,
                    Node::Element(Element::new("boot").with_attr("dev", dev.clone())),
                );
            }
        }
        match self.boot_menu {
            Some(on) => {
                el.ensure_child("bootmenu")
                    .set_attr("enable", if on { "yes" } else { "no" });
            }
            None => {
                el.remove_elements(|e| e.name == "bootmenu");
            }
        }
    }
}

// ---------------------------------------------------------------- cpu, vcpus

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cpu {
    /// `host-passthrough`, `host-model`, `custom`, `maximum`.
    pub mode: Option<String>,
    /// The named model for `custom`.
    pub model: Option<String>,
    /// `<topology sockets cores threads>`.
    pub topology: Option<Topology>,
    /// Guest NUMA cells (`<numa><cell>`), in id order.
    pub numa: Vec<NumaCell>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    pub sockets: u32,
    pub cores: u32,
    pub threads: u32,
}

/// One guest NUMA cell: its vCPUs (a cpuset like `0-1`) and memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaCell {
    pub cpus: String,
    pub memory_kib: u64,
}

impl Cpu {
    pub fn from_element(el: &Element) -> Cpu {
        let num = |e: &Element, n: &str| e.attr(n).and_then(|v| v.parse::<u32>().ok());
        Cpu {
            mode: attr(el, "mode"),
            model: el.child("model").map(|m| m.text()),
            topology: el.child("topology").map(|t| Topology {
                sockets: num(t, "sockets").unwrap_or(1),
                cores: num(t, "cores").unwrap_or(1),
                threads: num(t, "threads").unwrap_or(1),
            }),
            numa: el
                .child("numa")
                .map(|n| {
                    n.children_named("cell")
                        .map(NumaCell::from_element)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        set_opt(el, "mode", self.mode.as_deref());
        set_child_text(el, "model", self.model.as_deref());
        // Only what changed is written: a document's own attributes (dies,
        // clusters, a cell's memAccess) stay as they were.
        let read = Cpu::from_element(el);
        match &self.topology {
            Some(t) if read.topology.as_ref() == Some(t) => {}
            Some(t) => {
                let top = el.ensure_child("topology");
                top.set_attr("sockets", t.sockets.to_string());
                top.set_attr("cores", t.cores.to_string());
                top.set_attr("threads", t.threads.to_string());
            }
            None => {
                el.remove_elements(|e| e.name == "topology");
            }
        }
        if self.numa.is_empty() {
            el.remove_elements(|e| e.name == "numa");
        } else if read.numa != self.numa {
            // Cells change in place (keeping memAccess, distances...); new
            // ones are added at the end, cells past the model's removed.
            let numa = el.ensure_child("numa");
            let mut index = 0;
            numa.remove_elements(|e| {
                if e.name != "cell" {
                    return false;
                }
                index += 1;
                index > self.numa.len()
            });
            let have = numa.children_named("cell").count();
            for id in have..self.numa.len() {
                let mut c = Element::new("cell");
                c.set_attr("id", id.to_string());
                numa.push(c);
            }
            for (cell, el) in self
                .numa
                .iter()
                .zip(numa.elements_mut().filter(|e| e.name == "cell"))
            {
                let current = NumaCell::from_element(el);
                if current.cpus != cell.cpus {
                    el.set_attr("cpus", cell.cpus.clone());
                }
                if current.memory_kib != cell.memory_kib {
                    el.set_attr("memory", cell.memory_kib.to_string());
                    el.set_attr("unit", "KiB");
                }
            }
        }
    }
}

impl NumaCell {
    fn from_element(c: &Element) -> NumaCell {
        NumaCell {
            cpus: attr(c, "cpus").unwrap_or_default(),
            memory_kib: c
                .attr("memory")
                .and_then(|m| m.parse::<u64>().ok())
                .and_then(|m| to_kib(m, c.attr("unit").unwrap_or("KiB")))
                .unwrap_or(0),
        }
    }
}

/// `<numatune><memory mode nodeset/>`: where the host puts the guest's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numatune {
    /// `strict`, `preferred`, `interleave`, `restrictive`.
    pub mode: String,
    /// Host NUMA cells, as a cpuset (`0-1`).
    pub nodeset: String,
}

/// `<vcpu current='N'>MAX</vcpu>`: MAX is the hot-add ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vcpus {
    pub max: u32,
    pub current: Option<u32>,
}

impl Vcpus {
    pub fn from_element(el: &Element) -> Vcpus {
        Vcpus {
            max: el.text().trim().parse().unwrap_or(1),
            current: el.attr("current").and_then(|c| c.parse().ok()),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        if el.text().trim() != self.max.to_string() {
            el.set_text(self.max.to_string());
        }
        let current = self.current.filter(|&c| c != self.max);
        set_opt(el, "current", current.map(|c| c.to_string()).as_deref());
    }

    pub fn active(&self) -> u32 {
        self.current.unwrap_or(self.max)
    }
}

// ---------------------------------------------------------------- devices

/// A disk or cdrom (`<disk device='disk|cdrom|floppy'>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disk {
    /// `file`, `block`, `volume`, `network`.
    pub disk_type: String,
    /// `disk`, `cdrom`, `floppy`, `lun`.
    pub device: String,
    /// `<driver type=...>`: `qcow2`, `raw`.
    pub format: Option<String>,
    /// `<driver cache=...>`: `none`, `writeback`...
    pub cache: Option<String>,
    /// The file or block device path (`source file|dev`).
    pub source: Option<String>,
    /// For `type='volume'`: pool and volume names.
    pub pool: Option<String>,
    pub volume: Option<String>,
    pub target: String,
    pub bus: Option<String>,
    pub readonly: bool,
    pub shareable: bool,
    pub boot_order: Option<u32>,
    pub serial: Option<String>,
}

impl Disk {
    pub fn from_element(el: &Element) -> Disk {
        let source = el.child("source");
        let driver = el.child("driver");
        let target = el.child("target");
        Disk {
            disk_type: attr(el, "type").unwrap_or_else(|| "file".into()),
            device: attr(el, "device").unwrap_or_else(|| "disk".into()),
            format: driver.and_then(|d| attr(d, "type")),
            cache: driver.and_then(|d| attr(d, "cache")),
            source: source.and_then(|s| attr(s, "file").or_else(|| attr(s, "dev"))),
            pool: source.and_then(|s| attr(s, "pool")),
            volume: source.and_then(|s| attr(s, "volume")),
            target: target.and_then(|t| attr(t, "dev")).unwrap_or_default(),
            bus: target.and_then(|t| attr(t, "bus")),
            readonly: el.child("readonly").is_some(),
            shareable: el.child("shareable").is_some(),
            boot_order: el
                .child("boot")
                .and_then(|b| b.attr("order"))
                .and_then(|o| o.parse().ok()),
            serial: el.child("serial").map(|s| s.text()),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        el.set_attr("type", self.disk_type.clone());
        el.set_attr("device", self.device.clone());
        if self.format.is_some() || self.cache.is_some() {
            let driver = ensure_child_before(el, "driver", &["source", "target"]);
            if driver.attr("name").is_none() {
                driver.set_attr("name", "qemu");
            }
            set_opt(driver, "type", self.format.as_deref());
            set_opt(driver, "cache", self.cache.as_deref());
        } else if let Some(driver) = el.child_mut("driver") {
            driver.remove_attr("type");
            driver.remove_attr("cache");
        }
        let has_source = self.source.is_some() || self.pool.is_some() || self.volume.is_some();
        if has_source {
            let source = ensure_child_before(el, "source", &["backingStore", "target"]);
            let key = if self.disk_type == "block" {
                "dev"
            } else {
                "file"
            };
            if self.disk_type != "network" {
                set_opt(source, key, self.source.as_deref());
            }
            set_opt(source, "pool", self.pool.as_deref());
            set_opt(source, "volume", self.volume.as_deref());
        } else if self.disk_type != "network" {
            el.remove_elements(|e| e.name == "source");
        }
        let target = ensure_child_before(
            el,
            "target",
            &["boot", "readonly", "shareable", "serial", "address"],
        );
        target.set_attr("dev", self.target.clone());
        set_opt(target, "bus", self.bus.as_deref());
        match self.boot_order {
            Some(order) => {
                ensure_child_before(el, "boot", &["readonly", "shareable", "serial", "address"])
                    .set_attr("order", order.to_string());
            }
            None => {
                el.remove_elements(|e| e.name == "boot");
            }
        }
        if self.readonly && el.child("readonly").is_none() {
            ensure_child_before(el, "readonly", &["shareable", "serial", "address"]);
        } else if !self.readonly {
            set_flag_child(el, "readonly", false);
        }
        if self.shareable && el.child("shareable").is_none() {
            ensure_child_before(el, "shareable", &["serial", "address"]);
        } else if !self.shareable {
            set_flag_child(el, "shareable", false);
        }
        match &self.serial {
            Some(s) => {
                let child = ensure_child_before(el, "serial", &["address"]);
                if child.text() != *s {
                    child.set_text(s.clone());
                }
            }
            None => {
                el.remove_elements(|e| e.name == "serial");
            }
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("disk");
        self.apply_to(&mut el);
        el
    }
}

/// A NIC: `<interface type='network|bridge|direct|user'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub iface_type: String,
    /// Network name, bridge name, or host device (direct).
    pub source: Option<String>,
    /// macvtap mode for `direct` (`bridge`, `vepa`, `private`, `passthrough`).
    pub mode: Option<String>,
    pub mac: Option<String>,
    pub model: Option<String>,
    /// The host-side device (`vnet0`), filled in by libvirt when running.
    pub target: Option<String>,
}

impl Interface {
    fn source_key(iface_type: &str) -> &'static str {
        match iface_type {
            "bridge" => "bridge",
            "direct" => "dev",
            _ => "network",
        }
    }

    pub fn from_element(el: &Element) -> Interface {
        let iface_type = attr(el, "type").unwrap_or_else(|| "network".into());
        let key = Interface::source_key(&iface_type);
        let source = el.child("source");
        Interface {
            source: source.and_then(|s| attr(s, key)),
            mode: source.and_then(|s| attr(s, "mode")),
            mac: el.child("mac").and_then(|m| attr(m, "address")),
            model: el.child("model").and_then(|m| attr(m, "type")),
            target: el.child("target").and_then(|t| attr(t, "dev")),
            iface_type,
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        el.set_attr("type", self.iface_type.clone());
        match &self.mac {
            Some(mac) => {
                ensure_child_before(el, "mac", &["source", "model", "target", "address"])
                    .set_attr("address", mac.clone());
            }
            None => {
                el.remove_elements(|e| e.name == "mac");
            }
        }
        if self.source.is_some() || self.mode.is_some() {
            let key = Interface::source_key(&self.iface_type);
            let source = ensure_child_before(el, "source", &["target", "model", "address"]);
            set_opt(source, key, self.source.as_deref());
            set_opt(source, "mode", self.mode.as_deref());
        }
        match &self.model {
            Some(model) => {
                ensure_child_before(el, "model", &["driver", "address"])
                    .set_attr("type", model.clone());
            }
            None => {
                el.remove_elements(|e| e.name == "model");
            }
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("interface");
        self.apply_to(&mut el);
        el
    }
}

/// A character device: `<serial>`, `<console>` or `<channel>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CharDev {
    /// `serial`, `console` or `channel`.
    pub kind: String,
    /// `pty`, `unix`, `file`, `spicevmc`...
    pub char_type: String,
    /// `<target type=...>`: `serial` (console), `virtio` (channels), `isa-serial`.
    pub target_type: Option<String>,
    /// `<target name=...>` for channels (`org.qemu.guest_agent.0`).
    pub target_name: Option<String>,
    pub port: Option<u32>,
}

impl CharDev {
    pub fn from_element(el: &Element) -> CharDev {
        let target = el.child("target");
        CharDev {
            kind: el.name.clone(),
            char_type: attr(el, "type").unwrap_or_else(|| "pty".into()),
            target_type: target.and_then(|t| attr(t, "type")),
            target_name: target.and_then(|t| attr(t, "name")),
            port: target
                .and_then(|t| t.attr("port"))
                .and_then(|p| p.parse().ok()),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        el.set_attr("type", self.char_type.clone());
        if self.target_type.is_some() || self.target_name.is_some() || self.port.is_some() {
            let target = ensure_child_before(el, "target", &["alias", "address"]);
            set_opt(target, "type", self.target_type.as_deref());
            set_opt(target, "name", self.target_name.as_deref());
            set_opt(target, "port", self.port.map(|p| p.to_string()).as_deref());
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new(self.kind.clone());
        self.apply_to(&mut el);
        el
    }

    pub fn serial_pty() -> CharDev {
        CharDev {
            kind: "serial".into(),
            char_type: "pty".into(),
            port: Some(0),
            ..CharDev::default()
        }
    }

    pub fn console_pty() -> CharDev {
        CharDev {
            kind: "console".into(),
            char_type: "pty".into(),
            target_type: Some("serial".into()),
            port: Some(0),
            ..CharDev::default()
        }
    }

    /// The QEMU guest agent's channel.
    pub fn guest_agent() -> CharDev {
        CharDev {
            kind: "channel".into(),
            char_type: "unix".into(),
            target_type: Some("virtio".into()),
            target_name: Some("org.qemu.guest_agent.0".into()),
            port: None,
        }
    }
}

/// `<graphics type='vnc|spice'>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graphics {
    pub graphics_type: String,
    pub autoport: Option<bool>,
    pub port: Option<i32>,
    pub listen: Option<String>,
    /// `passwd`: libvirt shows it only in the secure XML.
    pub passwd: Option<String>,
}

impl Graphics {
    pub fn from_element(el: &Element) -> Graphics {
        Graphics {
            graphics_type: attr(el, "type").unwrap_or_default(),
            autoport: el.attr("autoport").map(|a| a == "yes"),
            port: el.attr("port").and_then(|p| p.parse().ok()),
            listen: attr(el, "listen"),
            passwd: attr(el, "passwd"),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        el.set_attr("type", self.graphics_type.clone());
        set_opt(el, "port", self.port.map(|p| p.to_string()).as_deref());
        set_opt(
            el,
            "autoport",
            self.autoport.map(|a| if a { "yes" } else { "no" }),
        );
        if el.attr("listen") != self.listen.as_deref() {
            // libvirt wants the first `<listen type='address'>` to agree with the attribute.
            if let Some(first) = el.child_mut("listen") {
                if first.attr("type") == Some("address") {
                    match &self.listen {
                        Some(a) => first.set_attr("address", a.clone()),
                        None => {
                            first.remove_attr("address");
                        }
                    }
                }
            }
        }
        set_opt(el, "listen", self.listen.as_deref());
        set_opt(el, "passwd", self.passwd.as_deref());
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("graphics");
        self.apply_to(&mut el);
        el
    }
}

/// `<controller type='usb|scsi|virtio-serial|pci|sata|ide|ccid|fdc|xenbus' index model>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Controller {
    pub controller_type: String,
    pub index: Option<u32>,
    pub model: Option<String>,
    /// `ports` (virtio-serial, USB hubs).
    pub ports: Option<u32>,
    /// `vectors` (virtio-serial's MSI vectors).
    pub vectors: Option<u32>,
    /// `<driver queues>` (virtio-scsi).
    pub queues: Option<u32>,
    /// `<master startport>` (a USB 1 companion of an EHCI controller).
    pub master_startport: Option<u32>,
}

impl Controller {
    pub fn from_element(el: &Element) -> Controller {
        let num = |e: &Element, n: &str| e.attr(n).and_then(|i| i.parse().ok());
        Controller {
            controller_type: attr(el, "type").unwrap_or_default(),
            index: num(el, "index"),
            model: attr(el, "model"),
            ports: num(el, "ports"),
            vectors: num(el, "vectors"),
            queues: el.child("driver").and_then(|d| num(d, "queues")),
            master_startport: el.child("master").and_then(|m| num(m, "startport")),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        // Another controller's address, model name or target is not this one's.
        let cur = Controller::from_element(el);
        let other = el.attr("type").is_some()
            && (cur.controller_type != self.controller_type
                || (self.index.is_some() && cur.index != self.index));
        if other {
            *el = Element::new("controller");
        }
        el.set_attr("type", self.controller_type.clone());
        set_opt(el, "index", self.index.map(|i| i.to_string()).as_deref());
        set_opt(el, "model", self.model.as_deref());
        set_opt(el, "ports", self.ports.map(|i| i.to_string()).as_deref());
        set_opt(
            el,
            "vectors",
            self.vectors.map(|i| i.to_string()).as_deref(),
        );
        if Controller::from_element(el).master_startport != self.master_startport {
            match self.master_startport {
                Some(p) => {
                    ensure_child_before(el, "master", &["alias", "address"])
                        .set_attr("startport", p.to_string());
                }
                None => {
                    el.remove_elements(|e| e.name == "master");
                }
            }
        }
        if Controller::from_element(el).queues != self.queues {
            match self.queues {
                Some(q) => {
                    ensure_child_before(el, "driver", &["model", "target", "alias", "address"])
                        .set_attr("queues", q.to_string());
                }
                None => {
                    if let Some(d) = el.child_mut("driver") {
                        d.remove_attr("queues");
                    }
                    el.remove_elements(|e| {
                        e.name == "driver" && e.attrs.is_empty() && e.children.is_empty()
                    });
                }
            }
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("controller");
        self.apply_to(&mut el);
        el
    }
}

// ---------------------------------------------------------------- domain

/// The modelled part of a domain. Everything else stays in the tree it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub virt_type: String,
    pub name: String,
    pub uuid: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Maximum (boot-time) memory, KiB.
    pub memory_kib: u64,
    /// Balloon target, KiB.
    pub current_memory_kib: Option<u64>,
    pub vcpus: Vcpus,
    pub cpu: Option<Cpu>,
    pub numatune: Option<Numatune>,
    pub os: Os,
    /// `<memoryBacking>`'s source and access (shared memory for virtiofs).
    pub memory_backing: MemoryBacking,
    /// The `<features>` block (`acpi`, `apic`, `smm`, `hyperv`...).
    pub features: Features,
    /// `<clock>` (`None`: libvirt's, UTC without timers).
    pub clock: Option<Clock>,
    /// `<pm>` (`None`: the hypervisor's default).
    pub pm: Option<Pm>,
    pub on_poweroff: Option<String>,
    pub on_reboot: Option<String>,
    pub on_crash: Option<String>,
    pub disks: Vec<Disk>,
    pub controllers: Vec<Controller>,
    pub interfaces: Vec<Interface>,
    pub serials: Vec<CharDev>,
    pub consoles: Vec<CharDev>,
    pub channels: Vec<CharDev>,
    pub inputs: Vec<Input>,
    pub graphics: Vec<Graphics>,
    pub filesystems: Vec<Filesystem>,
    pub tpms: Vec<Tpm>,
    pub sounds: Vec<Sound>,
    pub videos: Vec<Video>,
    pub watchdogs: Vec<Watchdog>,
    /// `None`: libvirt adds its default (a virtio balloon) at define.
    pub memballoon: Option<Memballoon>,
    pub rngs: Vec<Rng>,
    /// Host PCI and USB devices passed through (`<hostdev>`).
    pub hostdevs: Vec<Hostdev>,
    /// USB redirection of the SPICE client's devices.
    pub redirdevs: Vec<Redirdev>,
}

/// The order of top-level elements in libvirt's own output.
const TOP_ORDER: &[&str] = &[
    "name",
    "uuid",
    "genid",
    "title",
    "description",
    "metadata",
    "maxMemory",
    "memory",
    "currentMemory",
    "blkiotune",
    "memoryBacking",
    "vcpu",
    "vcpus",
    "iothreads",
    "cputune",
    "numatune",
    "resource",
    "sysinfo",
    "bootloader",
    "os",
    "features",
    "cpu",
    "clock",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "pm",
    "devices",
];

/// Put `elements` (application metadata, each in its namespace) into the
/// domain's `<metadata>`, after what is there.
pub fn set_metadata_elements(root: &mut Element, elements: &[Element]) {
    if elements.is_empty() {
        return;
    }
    let metadata = top_child(root, "metadata");
    for el in elements {
        metadata.push(el.clone());
    }
}

/// The child `name` of a domain element, inserted at its place in libvirt's order.
fn top_child<'a>(root: &'a mut Element, name: &str) -> &'a mut Element {
    let rank = TOP_ORDER
        .iter()
        .position(|n| *n == name)
        .unwrap_or(TOP_ORDER.len());
    let after: Vec<&str> = TOP_ORDER[rank.min(TOP_ORDER.len())..]
        .iter()
        .skip(1)
        .copied()
        .collect();
    ensure_child_before(root, name, &after)
}

/// libvirt's order of the children of `<devices>`.
const DEVICE_ORDER: &[&str] = &[
    "emulator",
    "disk",
    "controller",
    "lease",
    "filesystem",
    "interface",
    "smartcard",
    "serial",
    "parallel",
    "console",
    "channel",
    "input",
    "tpm",
    "graphics",
    "sound",
    "audio",
    "video",
    "hostdev",
    "redirdev",
    "watchdog",
    "memballoon",
    "rng",
    "panic",
    "shmem",
    "memory",
    "iommu",
    "vsock",
];

/// Make the `kind` children of `devices` match `items`, pairing by position:
/// existing elements are updated in place (keeping what we do not model),
/// extra ones removed, new ones added after the last of their kind.
fn sync_devices<T>(
    devices: &mut Element,
    kind: &str,
    items: &[T],
    apply: impl Fn(&T, &mut Element),
) {
    let mut seen = 0;
    let mut i = 0;
    while i < devices.children.len() {
        if let Node::Element(e) = &mut devices.children[i] {
            if e.name == kind {
                if seen < items.len() {
                    apply(&items[seen], e);
                    seen += 1;
                } else {
                    devices.children.remove(i);
                    continue;
                }
            }
        }
        i += 1;
    }
    if seen < items.len() {
        let rank = DEVICE_ORDER
            .iter()
            .position(|n| *n == kind)
            .unwrap_or(DEVICE_ORDER.len());
        // Insert after the last element of the same or an earlier kind.
        let at = devices
            .children
            .iter()
            .rposition(|n| {
                matches!(n, Node::Element(e)
                    if DEVICE_ORDER.iter().position(|d| *d == e.name).is_some_and(|r| r <= rank))
            })
            .map(|p| p + 1)
            .unwrap_or(0);
        for (j, item) in items[seen..].iter().enumerate() {
            let mut el = Element::new(kind);
            apply(item, &mut el);
            devices.children.insert(at + j, Node::Element(el));
        }
    }
}

impl Domain {
    /// A new domain with the defaults virt-install uses.
    pub fn new(name: impl Into<String>, virt_type: impl Into<String>) -> Domain {
        Domain {
            virt_type: virt_type.into(),
            name: name.into(),
            uuid: None,
            title: None,
            description: None,
            memory_kib: 1 << 20,
            current_memory_kib: None,
            vcpus: Vcpus {
                max: 1,
                current: None,
            },
            cpu: None,
            numatune: None,
            os: Os {
                os_type: "hvm".into(),
                ..Os::default()
            },
            memory_backing: MemoryBacking::default(),
            features: Features::acpi_apic(),
            clock: None,
            pm: None,
            on_poweroff: Some("destroy".into()),
            on_reboot: Some("restart".into()),
            on_crash: Some("destroy".into()),
            disks: Vec::new(),
            controllers: Vec::new(),
            interfaces: Vec::new(),
            serials: vec![CharDev::serial_pty()],
            consoles: vec![CharDev::console_pty()],
            channels: Vec::new(),
            inputs: Vec::new(),
            graphics: Vec::new(),
            filesystems: Vec::new(),
            tpms: Vec::new(),
            sounds: Vec::new(),
            videos: Vec::new(),
            watchdogs: Vec::new(),
            memballoon: None,
            rngs: Vec::new(),
            hostdevs: Vec::new(),
            redirdevs: Vec::new(),
        }
    }

    pub fn from_element(root: &Element) -> Domain {
        let devices = root.child("devices");
        let list = |kind: &'static str| -> Vec<&Element> {
            devices
                .map(|d| d.children_named(kind).collect())
                .unwrap_or_default()
        };
        Domain {
            virt_type: attr(root, "type").unwrap_or_default(),
            name: root.child("name").map(|e| e.text()).unwrap_or_default(),
            uuid: root.child("uuid").map(|e| e.text()),
            title: root.child("title").map(|e| e.text()),
            description: root.child("description").map(|e| e.text()),
            memory_kib: root.child("memory").and_then(read_kib).unwrap_or(0),
            current_memory_kib: root.child("currentMemory").and_then(read_kib),
            vcpus: root
                .child("vcpu")
                .map(Vcpus::from_element)
                .unwrap_or(Vcpus {
                    max: 1,
                    current: None,
                }),
            cpu: root.child("cpu").map(Cpu::from_element),
            numatune: root.path(&["numatune", "memory"]).map(|m| Numatune {
                mode: attr(m, "mode").unwrap_or_else(|| "strict".into()),
                nodeset: attr(m, "nodeset").unwrap_or_default(),
            }),
            os: root.child("os").map(Os::from_element).unwrap_or_default(),
            memory_backing: root
                .child("memoryBacking")
                .map(MemoryBacking::from_element)
                .unwrap_or_default(),
            features: root
                .child("features")
                .map(Features::from_element)
                .unwrap_or_default(),
            clock: root.child("clock").map(Clock::from_element),
            pm: root.child("pm").map(Pm::from_element),
            on_poweroff: root.child("on_poweroff").map(|e| e.text()),
            on_reboot: root.child("on_reboot").map(|e| e.text()),
            on_crash: root.child("on_crash").map(|e| e.text()),
            disks: list("disk").into_iter().map(Disk::from_element).collect(),
            controllers: list("controller")
                .into_iter()
                .map(Controller::from_element)
                .collect(),
            interfaces: list("interface")
                .into_iter()
                .map(Interface::from_element)
                .collect(),
            serials: list("serial")
                .into_iter()
                .map(CharDev::from_element)
                .collect(),
            consoles: list("console")
                .into_iter()
                .map(CharDev::from_element)
                .collect(),
            channels: list("channel")
                .into_iter()
                .map(CharDev::from_element)
                .collect(),
            inputs: list("input").into_iter().map(Input::from_element).collect(),
            graphics: list("graphics")
                .into_iter()
                .map(Graphics::from_element)
                .collect(),
            filesystems: list("filesystem")
                .into_iter()
                .map(Filesystem::from_element)
                .collect(),
            tpms: list("tpm").into_iter().map(Tpm::from_element).collect(),
            sounds: list("sound").into_iter().map(Sound::from_element).collect(),
            videos: list("video").into_iter().map(Video::from_element).collect(),
            watchdogs: list("watchdog")
                .into_iter()
                .map(Watchdog::from_element)
                .collect(),
            memballoon: list("memballoon")
                .first()
                .map(|e| Memballoon::from_element(e)),
            rngs: list("rng").into_iter().map(Rng::from_element).collect(),
            hostdevs: list("hostdev")
                .into_iter()
                .map(Hostdev::from_element)
                .collect(),
            redirdevs: list("redirdev")
                .into_iter()
                .map(Redirdev::from_element)
                .collect(),
        }
    }

    /// Parse a domain document into the model (and the tree it came from).
    pub fn parse(xml: &str) -> Result<(Domain, Element), super::tree::TreeError> {
        let tree = Element::parse(xml)?;
        Ok((Domain::from_element(&tree), tree))
    }

    /// Write the model onto `root`, touching only what it models.
    pub fn apply_to(&self, root: &mut Element) {
        root.name = "domain".into();
        root.set_attr("type", self.virt_type.clone());
        let text = |root: &mut Element, name: &str, value: &Option<String>| match value {
            Some(v) => {
                let el = top_child(root, name);
                if el.text() != *v {
                    el.set_text(v.clone());
                }
            }
            None => {
                root.remove_elements(|e| e.name == name);
            }
        };
        text(root, "name", &Some(self.name.clone()));
        text(root, "uuid", &self.uuid);
        text(root, "title", &self.title);
        text(root, "description", &self.description);
        write_kib(top_child(root, "memory"), self.memory_kib);
        match self.current_memory_kib {
            Some(kib) => write_kib(top_child(root, "currentMemory"), kib),
            None => {
                root.remove_elements(|e| e.name == "currentMemory");
            }
        }
        if root.child("memoryBacking").is_some() || !self.memory_backing.is_empty() {
            self.memory_backing
                .apply_to(top_child(root, "memoryBacking"));
            root.remove_elements(|e| e.name == "memoryBacking" && e.children.is_empty());
        }
        self.vcpus.apply_to(top_child(root, "vcpu"));
        let read_tune = root.path(&["numatune", "memory"]).map(|m| Numatune {
            mode: attr(m, "mode").unwrap_or_else(|| "strict".into()),
            nodeset: attr(m, "nodeset").unwrap_or_default(),
        });
        match &self.numatune {
            // Unchanged (placement='auto', memnodes...): left as it was.
            Some(t) if read_tune.as_ref() == Some(t) => {}
            Some(t) => {
                let memory = top_child(root, "numatune").ensure_child("memory");
                memory.set_attr("mode", t.mode.clone());
                memory.set_attr("nodeset", t.nodeset.clone());
            }
            None => {
                if let Some(tune) = root.child_mut("numatune") {
                    tune.remove_elements(|e| e.name == "memory");
                }
                root.remove_elements(|e| e.name == "numatune" && e.elements().next().is_none());
            }
        }
        self.os.apply_to(top_child(root, "os"));
        if root.child("features").is_some() || !self.features.is_empty() {
            self.features.apply_to(top_child(root, "features"));
        }
        match &self.cpu {
            Some(cpu) => cpu.apply_to(top_child(root, "cpu")),
            None => {
                root.remove_elements(|e| e.name == "cpu");
            }
        }
        // Only set, never removed: a clock or pm we read stays as it was.
        if let Some(clock) = &self.clock {
            clock.apply_to(top_child(root, "clock"));
        }
        text(root, "on_poweroff", &self.on_poweroff);
        text(root, "on_reboot", &self.on_reboot);
        text(root, "on_crash", &self.on_crash);
        if let Some(pm) = &self.pm {
            pm.apply_to(top_child(root, "pm"));
            root.remove_elements(|e| e.name == "pm" && e.elements().next().is_none());
        }
        let devices = top_child(root, "devices");
        sync_devices(devices, "disk", &self.disks, Disk::apply_to);
        sync_devices(
            devices,
            "controller",
            &self.controllers,
            Controller::apply_to,
        );
        sync_devices(devices, "interface", &self.interfaces, Interface::apply_to);
        sync_devices(devices, "serial", &self.serials, CharDev::apply_to);
        sync_devices(devices, "console", &self.consoles, CharDev::apply_to);
        sync_devices(devices, "channel", &self.channels, CharDev::apply_to);
        sync_devices(devices, "input", &self.inputs, Input::apply_to);
        sync_devices(devices, "graphics", &self.graphics, Graphics::apply_to);
        sync_devices(
            devices,
            "filesystem",
            &self.filesystems,
            Filesystem::apply_to,
        );
        sync_devices(devices, "tpm", &self.tpms, Tpm::apply_to);
        sync_devices(devices, "sound", &self.sounds, Sound::apply_to);
        sync_devices(devices, "video", &self.videos, Video::apply_to);
        sync_devices(devices, "watchdog", &self.watchdogs, Watchdog::apply_to);
        sync_devices(
            devices,
            "memballoon",
            self.memballoon.as_slice(),
            Memballoon::apply_to,
        );
        sync_devices(devices, "rng", &self.rngs, Rng::apply_to);
        super::domain_hostdev::sync(devices, &self.hostdevs);
        sync_devices(devices, "redirdev", &self.redirdevs, Redirdev::apply_to);
    }

    /// A new document for this domain.
    pub fn to_element(&self) -> Element {
        let mut root = Element::new("domain");
        self.apply_to(&mut root);
        root
    }

    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }

    /// The next free target name for `bus` (`vda`, `vdb`, `sda`, `hda`...).
    pub fn next_target(&self, bus: &str) -> String {
        let prefix = match bus {
            "virtio" => "vd",
            "ide" => "hd",
            "fdc" => "fd",
            "xen" => "xvd",
            _ => "sd",
        };
        (0..26u8)
            .map(|i| format!("{prefix}{}", (b'a' + i) as char))
            .find(|t| !self.disks.iter().any(|d| d.target == *t))
            .unwrap_or_else(|| format!("{prefix}z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_virt_install_like_domain() {
        let mut d = Domain::new("web", "kvm");
        d.memory_kib = 2 << 20;
        d.vcpus = Vcpus {
            max: 4,
            current: Some(2),
        };
        d.cpu = Some(Cpu {
            mode: Some("host-passthrough".into()),
            model: None,
            ..Cpu::default()
        });
        d.os.arch = Some("x86_64".into());
        d.os.firmware = Some("efi".into());
        d.os.boot = vec!["hd".into()];
        d.disks.push(Disk {
            disk_type: "file".into(),
            device: "disk".into(),
            format: Some("qcow2".into()),
            source: Some("/var/lib/libvirt/images/web.qcow2".into()),
            target: d.next_target("virtio"),
            bus: Some("virtio".into()),
            ..Disk::default()
        });
        d.interfaces.push(Interface {
            iface_type: "network".into(),
            source: Some("default".into()),
            model: Some("virtio".into()),
            ..Interface::default()
        });
        d.channels.push(CharDev::guest_agent());
        let xml = d.to_xml();
        assert!(
            xml.starts_with("<domain type='kvm'><name>web</name>"),
            "{xml}"
        );
        assert!(xml.contains("<vcpu current='2'>4</vcpu>"), "{xml}");
        assert!(
            xml.contains("<os firmware='efi'><type arch='x86_64'>hvm</type><boot dev='hd'/></os>"),
            "{xml}"
        );
        assert!(xml.contains("<driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/web.qcow2'/><target dev='vda' bus='virtio'/>"), "{xml}");
        assert!(
            xml.contains("<target type='virtio' name='org.qemu.guest_agent.0'/>"),
            "{xml}"
        );
        let back = Domain::from_element(&Element::parse(&xml).unwrap());
        assert_eq!(back, d);
    }

    #[test]
    fn edits_keep_unmodelled_elements() {
        let xml = "<domain type='kvm'><name>a</name><metadata><x:y xmlns:x='urn:x'/></metadata><memory unit='MiB'>512</memory><vcpu placement='static'>2</vcpu><os><type>hvm</type></os><devices><disk type='file' device='disk'><source file='/a'/><target dev='vda' bus='virtio'/><address type='pci' slot='0x04'/></disk><video><model type='qxl'/></video></devices></domain>";
        let (mut d, mut tree) = Domain::parse(xml).unwrap();
        assert_eq!(d.memory_kib, 512 * 1024);
        let unchanged = tree.clone();
        d.apply_to(&mut tree);
        assert_eq!(
            tree, unchanged,
            "applying an unchanged model changes nothing"
        );
        d.memory_kib = 1 << 20;
        d.vcpus.max = 4;
        d.disks[0].cache = Some("none".into());
        d.disks.push(Disk {
            disk_type: "file".into(),
            device: "cdrom".into(),
            source: Some("/x.iso".into()),
            target: "hdc".into(),
            bus: Some("ide".into()),
            readonly: true,
            ..Disk::default()
        });
        d.apply_to(&mut tree);
        let out = tree.to_xml();
        assert!(
            out.contains("<metadata><x:y xmlns:x='urn:x'/></metadata>"),
            "{out}"
        );
        assert!(out.contains("<address type='pci' slot='0x04'/>"), "{out}");
        assert!(out.contains("<video><model type='qxl'/></video>"), "{out}");
        assert!(out.contains("<memory unit='KiB'>1048576</memory>"), "{out}");
        assert!(out.contains("<vcpu placement='static'>4</vcpu>"), "{out}");
        assert!(out.contains("<driver name='qemu' cache='none'/>"), "{out}");
        assert!(
            out.contains("<target dev='hdc' bus='ide'/><readonly/></disk><video>"),
            "{out}"
        );
    }

    /// A guest NUMA cell changed through the model keeps what the model does
    /// not know (memAccess, distances); topology keeps dies.
    #[test]
    fn numa_cells_change_in_place() {
        let xml = "<domain type='qemu'><name>n</name><memory unit='KiB'>2097152</memory><vcpu>2</vcpu>\
            <cpu mode='custom'><model>qemu64</model><topology sockets='2' dies='1' cores='1' threads='1'/>\
            <numa><cell id='0' cpus='0' memory='1048576' unit='KiB' memAccess='shared'>\
            <distances><sibling id='0' value='10'/></distances></cell>\
            <cell id='1' cpus='1' memory='1048576' unit='KiB'/></numa></cpu></domain>";
        let (mut model, mut tree) = Domain::parse(xml).unwrap();
        let cpu = model.cpu.as_mut().unwrap();
        assert_eq!(cpu.numa.len(), 2);
        cpu.numa[0].memory_kib = 524288;
        cpu.numa.truncate(1);
        cpu.topology = Some(Topology {
            sockets: 1,
            cores: 2,
            threads: 1,
        });
        model.apply_to(&mut tree);
        let out = tree.to_xml();
        assert!(out.contains("memAccess='shared'"), "{out}");
        assert!(out.contains("<sibling id='0' value='10'/>"), "{out}");
        assert!(out.contains("memory='524288'"), "{out}");
        assert!(!out.contains("cell id='1'"), "{out}");
        assert!(out.contains("sockets='1' dies='1' cores='2'"), "{out}");
        assert_eq!(Domain::from_element(&tree).cpu, model.cpu);
    }

    /// Every domain in libvirt's qemuxml2xml suite: parse into the tree and the
    /// model, write the model back onto the tree, serialise: nothing is lost or changed.
    #[test]
    fn conformance_round_trip_loses_nothing() {
        let docs = crate::xml::conformance_documents("qemuxml2xmloutdata");
        let mut count = 0;
        let mut devices_seen = 0;
        for (file, text) in &docs {
            let path = std::path::Path::new(file);
            let (model, tree) = Domain::parse(text).unwrap();
            let mut edited = tree.clone();
            model.apply_to(&mut edited);
            let again = Element::parse(&edited.to_xml()).unwrap();
            assert_eq!(
                again.normalized(),
                tree.normalized(),
                "{} changed in a model round trip",
                path.display()
            );
            assert_eq!(Domain::from_element(&again), model, "{}", path.display());
            // Every modelled device also survives on its own.
            for disk in &model.disks {
                let el = disk.to_element();
                assert_eq!(&Disk::from_element(&el), disk, "{}", path.display());
            }
            for nic in &model.interfaces {
                let el = nic.to_element();
                let back = Interface::from_element(&el);
                assert_eq!(back.source, nic.source, "{}", path.display());
                assert_eq!(back.mac, nic.mac);
                assert_eq!(back.model, nic.model);
            }
            // The devices of domain/devices.rs too, and the features block.
            let p = path.display();
            for v in &model.videos {
                assert_eq!(&Video::from_element(&v.to_element()), v, "{p}");
            }
            for x in &model.sounds {
                assert_eq!(&Sound::from_element(&x.to_element()), x, "{p}");
            }
            for x in &model.filesystems {
                assert_eq!(&Filesystem::from_element(&x.to_element()), x, "{p}");
            }
            for x in &model.tpms {
                assert_eq!(&Tpm::from_element(&x.to_element()), x, "{p}");
            }
            for x in &model.rngs {
                assert_eq!(&Rng::from_element(&x.to_element()), x, "{p}");
            }
            for x in &model.watchdogs {
                assert_eq!(&Watchdog::from_element(&x.to_element()), x, "{p}");
            }
            let mut features = Element::new("features");
            model.features.apply_to(&mut features);
            assert_eq!(Features::from_element(&features), model.features, "{p}");
            devices_seen += model.videos.len()
                + model.sounds.len()
                + model.filesystems.len()
                + model.tpms.len()
                + model.rngs.len()
                + model.watchdogs.len();
            count += 1;
        }
        assert!(count >= 40, "only {count} conformance documents");
        assert!(
            devices_seen >= 10,
            "only {devices_seen} new-kind devices in the documents"
        );
    }
}
