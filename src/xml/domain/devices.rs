//! The domain's other devices and its `<features>`: video, sound,
//! filesystems, TPM, RNG, watchdog, memory balloon, shared memory backing.
//!
//! Each type reads itself from its element and writes back only what
//! differs from what the element says, so applying an unchanged model leaves
//! the element exactly as it was (attributes and children we do not model
//! included: addresses, aliases, a TPM's encryption, a filesystem's binary
//! options, hyperv's `stimer`...).
use super::{attr, ensure_child_before, set_opt};
use crate::xml::tree::{Element, Node};

fn num<T: std::str::FromStr>(el: &Element, name: &str) -> Option<T> {
    el.attr(name).and_then(|v| v.trim().parse().ok())
}

/// `state='on|off'` (absent reads as on: `<smm/>` is on).
fn state_on(el: &Element) -> bool {
    !matches!(el.attr("state"), Some("off" | "no"))
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

// ---------------------------------------------------------------- video

/// `<video><model type vram heads><acceleration accel3d/></model></video>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Video {
    /// `virtio`, `qxl`, `vga`, `cirrus`, `bochs`, `ramfb`, `none`...
    pub model: String,
    /// Video memory, KiB.
    pub vram_kib: Option<u64>,
    pub heads: Option<u32>,
    pub accel3d: Option<bool>,
}

impl Video {
    pub fn from_element(el: &Element) -> Video {
        let model = el.child("model");
        Video {
            model: model
                .and_then(|m| attr(m, "type"))
                .unwrap_or_else(|| "default".into()),
            vram_kib: model.and_then(|m| num(m, "vram")),
            heads: model.and_then(|m| num(m, "heads")),
            accel3d: model
                .and_then(|m| m.child("acceleration"))
                .and_then(|a| a.attr("accel3d"))
                .map(|v| v == "yes"),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Video::from_element(el);
        if cur == *self {
            return;
        }
        let model = ensure_child_before(el, "model", &["driver", "alias", "address"]);
        if cur.model != self.model {
            // Another model's attributes (qxl's ram, vgamem) do not carry over.
            *model = Element::new("model");
            model.set_attr("type", self.model.clone());
        }
        let cur = Video::from_element_model(model);
        if cur.vram_kib != self.vram_kib {
            set_opt(
                model,
                "vram",
                self.vram_kib.map(|v| v.to_string()).as_deref(),
            );
        }
        if cur.heads != self.heads {
            set_opt(model, "heads", self.heads.map(|v| v.to_string()).as_deref());
        }
        if cur.accel3d != self.accel3d {
            match self.accel3d {
                Some(on) => {
                    model
                        .ensure_child("acceleration")
                        .set_attr("accel3d", if on { "yes" } else { "no" });
                }
                None => {
                    if let Some(a) = model.child_mut("acceleration") {
                        a.remove_attr("accel3d");
                    }
                    model.remove_elements(|e| {
                        e.name == "acceleration"
                            && e.elements().next().is_none()
                            && e.attr("accel2d").is_none()
                    });
                }
            }
        }
    }

    fn from_element_model(model: &Element) -> Video {
        let mut video = Element::new("video");
        video.push(model.clone());
        Video::from_element(&video)
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("video");
        self.apply_to(&mut el);
        el
    }
}

// ---------------------------------------------------------------- sound

/// `<sound model><codec type/></sound>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sound {
    /// `ich9`, `ich6`, `ac97`, `es1370`, `sb16`, `usb`, `ich7`...
    pub model: String,
    /// `<codec type=...>`: `duplex`, `micro`, `output`.
    pub codecs: Vec<String>,
}

impl Sound {
    pub fn from_element(el: &Element) -> Sound {
        Sound {
            model: attr(el, "model").unwrap_or_default(),
            codecs: el
                .children_named("codec")
                .filter_map(|c| attr(c, "type"))
                .collect(),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Sound::from_element(el);
        if cur.model != self.model {
            el.set_attr("model", self.model.clone());
        }
        if cur.codecs != self.codecs {
            let at = el
                .children
                .iter()
                .position(|n| matches!(n, Node::Element(e) if e.name == "codec"))
                .or_else(|| {
                    el.children.iter().position(|n| {
                        matches!(n, Node::Element(e) if matches!(e.name.as_str(), "audio" | "alias" | "address"))
                    })
                })
                .unwrap_or(el.children.len());
            el.remove_elements(|e| e.name == "codec");
            for (i, codec) in self.codecs.iter().enumerate() {
                el.children.insert(
                    at + i,
                    Node::Element(Element::new("codec").with_attr("type", codec.clone())),
                );
            }
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("sound");
        self.apply_to(&mut el);
        el
    }
}

// ---------------------------------------------------------------- filesystem

/// `<filesystem type='mount' accessmode><driver type/><source dir/><target dir/><readonly/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filesystem {
    /// `mount` (a host directory); others (`file`, `block`, `ram`...) are kept as they are.
    pub fs_type: String,
    /// `passthrough`, `mapped`, `squash`.
    pub accessmode: Option<String>,
    /// `<driver type=...>`: `virtiofs`, `path` (9p), `handle`, `loop`...
    pub driver: Option<String>,
    /// The host directory (`<source dir>`).
    pub source: Option<String>,
    /// The mount tag the guest sees (`<target dir>`).
    pub target: String,
    pub readonly: bool,
}

impl Filesystem {
    pub fn from_element(el: &Element) -> Filesystem {
        Filesystem {
            fs_type: attr(el, "type").unwrap_or_else(|| "mount".into()),
            accessmode: attr(el, "accessmode"),
            driver: el.child("driver").and_then(|d| attr(d, "type")),
            source: el.child("source").and_then(|s| attr(s, "dir")),
            target: el
                .child("target")
                .and_then(|t| attr(t, "dir"))
                .unwrap_or_default(),
            readonly: el.child("readonly").is_some(),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let mut cur = Filesystem::from_element(el);
        if el.child("target").is_some() && cur.target != self.target {
            // Another share's driver options and address are not this one's.
            *el = Element::new("filesystem");
            cur = Filesystem::from_element(el);
        }
        if el.attr("type").is_none() || cur.fs_type != self.fs_type {
            el.set_attr("type", self.fs_type.clone());
        }
        if cur.accessmode != self.accessmode {
            set_opt(el, "accessmode", self.accessmode.as_deref());
        }
        if cur.driver != self.driver {
            match &self.driver {
                Some(d) => {
                    ensure_child_before(el, "driver", &["binary", "source", "target", "readonly"])
                        .set_attr("type", d.clone());
                }
                None => {
                    if let Some(d) = el.child_mut("driver") {
                        d.remove_attr("type");
                    }
                    el.remove_elements(|e| {
                        e.name == "driver" && e.attrs.is_empty() && e.elements().next().is_none()
                    });
                }
            }
        }
        if cur.source != self.source {
            match &self.source {
                Some(s) => {
                    ensure_child_before(el, "source", &["target", "readonly"])
                        .set_attr("dir", s.clone());
                }
                None => {
                    el.remove_elements(|e| e.name == "source");
                }
            }
        }
        if cur.target != self.target || el.child("target").is_none() {
            ensure_child_before(el, "target", &["readonly"]).set_attr("dir", self.target.clone());
        }
        if cur.readonly != self.readonly {
            if self.readonly {
                ensure_child_before(
                    el,
                    "readonly",
                    &["space_hard_limit", "space_soft_limit", "alias", "address"],
                );
            } else {
                el.remove_elements(|e| e.name == "readonly");
            }
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("filesystem");
        self.apply_to(&mut el);
        el
    }
}

/// `<memoryBacking><source type/><access mode/>`: what virtiofs needs
/// (`memfd`, `shared`). The rest of the element (hugepages, locked) is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryBacking {
    /// `file`, `anonymous`, `memfd`.
    pub source_type: Option<String>,
    /// `shared`, `private`.
    pub access_mode: Option<String>,
}

impl MemoryBacking {
    pub fn from_element(el: &Element) -> MemoryBacking {
        MemoryBacking {
            source_type: el.child("source").and_then(|s| attr(s, "type")),
            access_mode: el.child("access").and_then(|a| attr(a, "mode")),
        }
    }

    /// The backing virtiofs needs.
    pub fn shared_memfd() -> MemoryBacking {
        MemoryBacking {
            source_type: Some("memfd".into()),
            access_mode: Some("shared".into()),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == MemoryBacking::default()
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = MemoryBacking::from_element(el);
        for (name, key, want, have) in [
            ("source", "type", &self.source_type, &cur.source_type),
            ("access", "mode", &self.access_mode, &cur.access_mode),
        ] {
            if want == have {
                continue;
            }
            match want {
                Some(v) => {
                    let before: &[&str] = if name == "source" {
                        &["access", "allocation", "discard"]
                    } else {
                        &["allocation", "discard"]
                    };
                    ensure_child_before(el, name, before).set_attr(key, v.clone());
                }
                None => {
                    el.remove_elements(|e| e.name == name);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- tpm, rng, watchdog, balloon

/// `<tpm model><backend type='emulator' version/></tpm>` (swtpm), or a
/// passthrough backend with its `<device path/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tpm {
    /// `tpm-tis`, `tpm-crb`, `tpm-spapr`, `spapr-tpm-proxy`.
    pub model: Option<String>,
    /// `emulator`, `passthrough`, `external`.
    pub backend: String,
    /// `1.2`, `2.0`.
    pub version: Option<String>,
}

impl Tpm {
    pub fn from_element(el: &Element) -> Tpm {
        let backend = el.child("backend");
        Tpm {
            model: attr(el, "model"),
            backend: backend
                .and_then(|b| attr(b, "type"))
                .unwrap_or_else(|| "passthrough".into()),
            version: backend.and_then(|b| attr(b, "version")),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Tpm::from_element(el);
        if cur.model != self.model {
            set_opt(el, "model", self.model.as_deref());
        }
        if cur.backend != self.backend || el.child("backend").is_none() {
            let b = ensure_child_before(el, "backend", &["alias", "address"]);
            if cur.backend != self.backend {
                // A passthrough device path or an emulator's state is another backend's.
                *b = Element::new("backend");
            }
            b.set_attr("type", self.backend.clone());
        }
        let b = el.child_mut("backend").expect("just ensured");
        if Tpm::from_backend(b) != self.version {
            set_opt(b, "version", self.version.as_deref());
        }
    }

    fn from_backend(b: &Element) -> Option<String> {
        attr(b, "version")
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("tpm");
        self.apply_to(&mut el);
        el
    }
}

/// `<rng model='virtio'><rate bytes period/><backend model='random'>/dev/urandom</backend></rng>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rng {
    /// `virtio`, `virtio-transitional`, `virtio-non-transitional`.
    pub model: String,
    /// `random`, `builtin`, `egd`.
    pub backend: String,
    /// The host device of a `random` backend.
    pub path: Option<String>,
    /// At most `bytes` per `period` ms.
    pub rate_bytes: Option<u64>,
    pub rate_period: Option<u64>,
}

impl Rng {
    pub fn from_element(el: &Element) -> Rng {
        let backend = el.child("backend");
        let rate = el.child("rate");
        Rng {
            model: attr(el, "model").unwrap_or_else(|| "virtio".into()),
            backend: backend
                .and_then(|b| attr(b, "model"))
                .unwrap_or_else(|| "random".into()),
            path: backend
                .filter(|b| b.elements().next().is_none())
                .map(|b| b.text().trim().to_owned())
                .filter(|t| !t.is_empty()),
            rate_bytes: rate.and_then(|r| num(r, "bytes")),
            rate_period: rate.and_then(|r| num(r, "period")),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Rng::from_element(el);
        if cur == *self && el.child("backend").is_some() {
            return;
        }
        if el.attr("model").is_none() || cur.model != self.model {
            el.set_attr("model", self.model.clone());
        }
        if (cur.rate_bytes, cur.rate_period) != (self.rate_bytes, self.rate_period) {
            match self.rate_bytes {
                Some(bytes) => {
                    let r = ensure_child_before(el, "rate", &["backend", "alias", "address"]);
                    r.set_attr("bytes", bytes.to_string());
                    set_opt(
                        r,
                        "period",
                        self.rate_period.map(|p| p.to_string()).as_deref(),
                    );
                }
                None => {
                    el.remove_elements(|e| e.name == "rate");
                }
            }
        }
        if cur.backend != self.backend || cur.path != self.path || el.child("backend").is_none() {
            let b = ensure_child_before(el, "backend", &["alias", "address"]);
            if cur.backend != self.backend {
                *b = Element::new("backend");
            }
            b.set_attr("model", self.backend.clone());
            match &self.path {
                Some(p) => b.set_text(p.clone()),
                None if b.elements().next().is_none() => b.children.clear(),
                None => {}
            }
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("rng");
        self.apply_to(&mut el);
        el
    }
}

/// `<watchdog model action/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watchdog {
    /// `i6300esb`, `ib700`, `diag288`, `itco`.
    pub model: String,
    /// `reset`, `shutdown`, `poweroff`, `pause`, `none`, `dump`, `inject-nmi`.
    pub action: Option<String>,
}

impl Watchdog {
    pub fn from_element(el: &Element) -> Watchdog {
        Watchdog {
            model: attr(el, "model").unwrap_or_default(),
            action: attr(el, "action"),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Watchdog::from_element(el);
        if cur.model != self.model || el.attr("model").is_none() {
            el.set_attr("model", self.model.clone());
        }
        if cur.action != self.action {
            set_opt(el, "action", self.action.as_deref());
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("watchdog");
        self.apply_to(&mut el);
        el
    }
}

/// `<memballoon model='virtio|none'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memballoon {
    pub model: String,
}

impl Memballoon {
    pub fn from_element(el: &Element) -> Memballoon {
        Memballoon {
            model: attr(el, "model").unwrap_or_default(),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        if el.attr("model") != Some(self.model.as_str()) {
            if self.model == "none" {
                // A balloon that is not there has no stats, driver or address.
                el.children.clear();
                el.attrs.clear();
            }
            el.set_attr("model", self.model.clone());
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("memballoon");
        self.apply_to(&mut el);
        el
    }
}

// ---------------------------------------------------------------- input, redirdev

/// `<input type='tablet|mouse|keyboard|passthrough|evdev' bus='usb|ps2|virtio'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Input {
    pub input_type: String,
    pub bus: Option<String>,
}

impl Input {
    pub fn from_element(el: &Element) -> Input {
        Input {
            input_type: attr(el, "type").unwrap_or_default(),
            bus: attr(el, "bus"),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Input::from_element(el);
        if cur.input_type != self.input_type || el.attr("type").is_none() {
            el.set_attr("type", self.input_type.clone());
        }
        if cur.bus != self.bus {
            set_opt(el, "bus", self.bus.as_deref());
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("input");
        self.apply_to(&mut el);
        el
    }
}

/// `<redirdev bus='usb' type='spicevmc'/>`: a USB device of the SPICE
/// client, redirected into the guest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirdev {
    pub bus: String,
    /// `spicevmc`, `tcp`.
    pub redir_type: String,
}

impl Redirdev {
    pub fn spice_usb() -> Redirdev {
        Redirdev {
            bus: "usb".into(),
            redir_type: "spicevmc".into(),
        }
    }

    pub fn from_element(el: &Element) -> Redirdev {
        Redirdev {
            bus: attr(el, "bus").unwrap_or_default(),
            redir_type: attr(el, "type").unwrap_or_default(),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Redirdev::from_element(el);
        if cur.redir_type != self.redir_type && el.attr("type").is_some() {
            // Another kind's source is not this one's.
            *el = Element::new("redirdev");
        }
        if el.attr("bus") != Some(self.bus.as_str()) {
            el.set_attr("bus", self.bus.clone());
        }
        if el.attr("type") != Some(self.redir_type.as_str()) {
            el.set_attr("type", self.redir_type.clone());
        }
    }

    pub fn to_element(&self) -> Element {
        let mut el = Element::new("redirdev");
        self.apply_to(&mut el);
        el
    }
}

// ---------------------------------------------------------------- clock, pm

/// `<timer name tickpolicy present/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timer {
    pub name: String,
    pub tickpolicy: Option<String>,
    pub present: Option<bool>,
}

/// `<clock offset='utc|localtime'>` with its timers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clock {
    pub offset: String,
    pub timers: Vec<Timer>,
}

impl Clock {
    /// virt-install's x86 clock: RTC catch-up, PIT delay, no HPET.
    pub fn x86(offset: &str) -> Clock {
        let timer = |name: &str, tick: Option<&str>, present: Option<bool>| Timer {
            name: name.into(),
            tickpolicy: tick.map(str::to_owned),
            present,
        };
        Clock {
            offset: offset.into(),
            timers: vec![
                timer("rtc", Some("catchup"), None),
                timer("pit", Some("delay"), None),
                timer("hpet", None, Some(false)),
            ],
        }
    }

    pub fn from_element(el: &Element) -> Clock {
        Clock {
            offset: attr(el, "offset").unwrap_or_else(|| "utc".into()),
            timers: el
                .children_named("timer")
                .map(|t| Timer {
                    name: attr(t, "name").unwrap_or_default(),
                    tickpolicy: attr(t, "tickpolicy"),
                    present: t.attr("present").map(|p| p == "yes"),
                })
                .collect(),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        if Clock::from_element(el) == *self && el.attr("offset").is_some() {
            return;
        }
        el.set_attr("offset", self.offset.clone());
        if Clock::from_element(el).timers != self.timers {
            el.remove_elements(|e| e.name == "timer");
            for t in &self.timers {
                let mut te = Element::new("timer").with_attr("name", t.name.clone());
                if let Some(p) = &t.tickpolicy {
                    te.set_attr("tickpolicy", p.clone());
                }
                if let Some(p) = t.present {
                    te.set_attr("present", if p { "yes" } else { "no" });
                }
                el.push(te);
            }
        }
    }
}

/// `<pm><suspend-to-mem enabled/><suspend-to-disk enabled/></pm>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pm {
    pub suspend_to_mem: Option<bool>,
    pub suspend_to_disk: Option<bool>,
}

impl Pm {
    pub fn from_element(el: &Element) -> Pm {
        let read = |n: &str| {
            el.child(n)
                .and_then(|c| c.attr("enabled"))
                .map(|v| v == "yes")
        };
        Pm {
            suspend_to_mem: read("suspend-to-mem"),
            suspend_to_disk: read("suspend-to-disk"),
        }
    }

    pub fn apply_to(&self, el: &mut Element) {
        for (name, value) in [
            ("suspend-to-mem", self.suspend_to_mem),
            ("suspend-to-disk", self.suspend_to_disk),
        ] {
            let cur = el
                .child(name)
                .and_then(|c| c.attr("enabled"))
                .map(|v| v == "yes");
            if cur == value {
                continue;
            }
            match value {
                Some(on) => {
                    el.ensure_child(name)
                        .set_attr("enabled", if on { "yes" } else { "no" });
                }
                None => {
                    el.remove_elements(|e| e.name == name);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- features

/// The order of `<features>` children in libvirt's output.
const FEATURE_ORDER: &[&str] = &[
    "pae",
    "acpi",
    "apic",
    "hap",
    "privnet",
    "hyperv",
    "kvm",
    "xen",
    "pvspinlock",
    "capabilities",
    "pmu",
    "vmport",
    "gic",
    "smm",
    "ioapic",
    "hpt",
    "vmcoreinfo",
    "htm",
    "nested-hv",
    "msrs",
    "ccf-assist",
    "cfpc",
    "sbbc",
    "ibs",
    "tcg",
    "async-teardown",
    "ras",
    "ps2",
];

/// One Hyper-V enlightenment: `<relaxed state='on'/>`, `<spinlocks
/// state='on' retries='8191'/>`, `<vendor_id state='on' value='KVM Hv'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HypervFlag {
    pub name: String,
    pub on: bool,
    /// `retries` of `spinlocks`, `value` of `vendor_id`.
    pub value: Option<String>,
}

impl HypervFlag {
    /// The attribute that carries a flag's value.
    pub fn value_attr(name: &str) -> &'static str {
        if name == "spinlocks" {
            "retries"
        } else {
            "value"
        }
    }
}

/// `<hyperv mode>`: its enlightenments in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hyperv {
    /// `custom`, `passthrough`.
    pub mode: Option<String>,
    pub flags: Vec<HypervFlag>,
}

/// The `<features>` block: the flags virtscript models. Others
/// (`<gic>`, `<ioapic>`, `<kvm><poll-control/>`...) stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    pub acpi: bool,
    pub apic: bool,
    pub pae: bool,
    /// `<smm state>`: `None` when absent.
    pub smm: Option<bool>,
    /// `<vmport state>`.
    pub vmport: Option<bool>,
    /// `<kvm><hidden state>`.
    pub kvm_hidden: Option<bool>,
    pub hyperv: Option<Hyperv>,
}

impl Features {
    /// What virt-install writes for an x86 guest.
    pub fn acpi_apic() -> Features {
        Features {
            acpi: true,
            apic: true,
            ..Features::default()
        }
    }

    pub fn from_element(el: &Element) -> Features {
        let state = |name: &str| el.child(name).map(state_on);
        Features {
            acpi: el.child("acpi").is_some(),
            apic: el.child("apic").is_some(),
            pae: el.child("pae").is_some(),
            smm: state("smm"),
            vmport: state("vmport"),
            kvm_hidden: el.path(&["kvm", "hidden"]).map(state_on),
            hyperv: el.child("hyperv").map(|h| Hyperv {
                mode: attr(h, "mode"),
                flags: h
                    .elements()
                    .map(|f| HypervFlag {
                        name: f.name.clone(),
                        on: state_on(f),
                        value: attr(f, HypervFlag::value_attr(&f.name)),
                    })
                    .collect(),
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Features::default()
    }

    pub fn apply_to(&self, el: &mut Element) {
        let cur = Features::from_element(el);
        if cur == *self {
            return;
        }
        for (name, want, have) in [
            ("acpi", self.acpi, cur.acpi),
            ("apic", self.apic, cur.apic),
            ("pae", self.pae, cur.pae),
        ] {
            if want && !have {
                feature_child(el, name);
            } else if !want && have {
                el.remove_elements(|e| e.name == name);
            }
        }
        for (name, want, have) in [
            ("smm", self.smm, cur.smm),
            ("vmport", self.vmport, cur.vmport),
        ] {
            if want == have {
                continue;
            }
            match want {
                Some(on) => {
                    feature_child(el, name).set_attr("state", on_off(on));
                }
                None => {
                    el.remove_elements(|e| e.name == name);
                }
            }
        }
        if self.kvm_hidden != cur.kvm_hidden {
            match self.kvm_hidden {
                Some(on) => {
                    feature_child(el, "kvm")
                        .ensure_child("hidden")
                        .set_attr("state", on_off(on));
                }
                None => {
                    if let Some(kvm) = el.child_mut("kvm") {
                        kvm.remove_elements(|e| e.name == "hidden");
                    }
                    el.remove_elements(|e| e.name == "kvm" && e.elements().next().is_none());
                }
            }
        }
        if self.hyperv != cur.hyperv {
            match &self.hyperv {
                Some(h) => h.apply_to(feature_child(el, "hyperv")),
                None => {
                    el.remove_elements(|e| e.name == "hyperv");
                }
            }
        }
    }
}

impl Hyperv {
    fn apply_to(&self, el: &mut Element) {
        set_opt(el, "mode", self.mode.as_deref());
        el.remove_elements(|e| !self.flags.iter().any(|f| f.name == e.name));
        for flag in &self.flags {
            let value_attr = HypervFlag::value_attr(&flag.name);
            let f = el.ensure_child(&flag.name);
            let have = HypervFlag {
                name: flag.name.clone(),
                on: state_on(f),
                value: attr(f, value_attr),
            };
            if have == *flag && f.attr("state").is_some() {
                continue;
            }
            f.set_attr("state", on_off(flag.on));
            set_opt(f, value_attr, flag.value.as_deref());
        }
    }
}

/// The feature `name`, inserted at its place in libvirt's order.
fn feature_child<'a>(el: &'a mut Element, name: &str) -> &'a mut Element {
    let rank = FEATURE_ORDER
        .iter()
        .position(|n| *n == name)
        .unwrap_or(FEATURE_ORDER.len());
    let after: Vec<&str> = FEATURE_ORDER.iter().skip(rank + 1).copied().collect();
    ensure_child_before(el, name, &after)
}

#[cfg(test)]
mod tests {
    use super::super::Domain;
    use super::*;

    #[test]
    fn devices_write_and_read_back() {
        let mut d = Domain::new("dev", "qemu");
        d.videos.push(Video {
            model: "virtio".into(),
            heads: Some(2),
            accel3d: Some(false),
            ..Video::default()
        });
        d.sounds.push(Sound {
            model: "ich9".into(),
            codecs: vec!["micro".into()],
        });
        d.filesystems.push(Filesystem {
            fs_type: "mount".into(),
            accessmode: Some("passthrough".into()),
            driver: Some("virtiofs".into()),
            source: Some("/srv/share".into()),
            target: "share".into(),
            readonly: false,
        });
        d.memory_backing = MemoryBacking::shared_memfd();
        d.tpms.push(Tpm {
            model: Some("tpm-crb".into()),
            backend: "emulator".into(),
            version: Some("2.0".into()),
        });
        d.rngs.push(Rng {
            model: "virtio".into(),
            backend: "random".into(),
            path: Some("/dev/urandom".into()),
            rate_bytes: Some(1024),
            rate_period: Some(1000),
        });
        d.watchdogs.push(Watchdog {
            model: "i6300esb".into(),
            action: Some("poweroff".into()),
        });
        d.memballoon = Some(Memballoon {
            model: "none".into(),
        });
        d.features.smm = Some(true);
        d.features.kvm_hidden = Some(true);
        d.features.hyperv = Some(Hyperv {
            mode: None,
            flags: vec![
                HypervFlag {
                    name: "relaxed".into(),
                    on: true,
                    value: None,
                },
                HypervFlag {
                    name: "spinlocks".into(),
                    on: true,
                    value: Some("8191".into()),
                },
            ],
        });
        let xml = d.to_xml();
        for want in [
            "<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>",
            "<features><acpi/><apic/><hyperv><relaxed state='on'/><spinlocks state='on' retries='8191'/></hyperv><kvm><hidden state='on'/></kvm><smm state='on'/></features>",
            "<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/><source dir='/srv/share'/><target dir='share'/></filesystem>",
            "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>",
            "<sound model='ich9'><codec type='micro'/></sound>",
            "<video><model type='virtio' heads='2'><acceleration accel3d='no'/></model></video>",
            "<watchdog model='i6300esb' action='poweroff'/><memballoon model='none'/><rng model='virtio'><rate bytes='1024' period='1000'/><backend model='random'>/dev/urandom</backend></rng></devices>",
        ] {
            assert!(xml.contains(want), "{want}\n{xml}");
        }
        // libvirt's order: memoryBacking before vcpu; filesystem before
        // interface; console, tpm, graphics, sound, video.
        let at = |s: &str| xml.find(s).unwrap_or_else(|| panic!("{s} in {xml}"));
        assert!(at("<memoryBacking") < at("<vcpu"));
        assert!(at("<console") < at("<tpm") && at("<tpm") < at("<sound"));
        assert!(at("<sound") < at("<video") && at("<video") < at("<watchdog"));
        let back = Domain::from_element(&Element::parse(&xml).unwrap());
        assert_eq!(back, d);
    }

    #[test]
    fn features_edit_in_place_keeping_what_is_not_modelled() {
        let xml = "<domain type='kvm'><name>f</name><memory unit='KiB'>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os><features><acpi/><apic eoi='on'/>\
            <hyperv mode='custom'><relaxed state='on'/><stimer state='on'><direct state='on'/></stimer></hyperv>\
            <kvm><poll-control state='on'/></kvm><gic version='2'/><ioapic driver='qemu'/></features><devices/></domain>";
        let (mut d, mut tree) = Domain::parse(xml).unwrap();
        let unchanged = tree.clone();
        d.apply_to(&mut tree);
        assert_eq!(tree, unchanged);
        d.features.acpi = false;
        d.features.smm = Some(false);
        d.features.kvm_hidden = Some(true);
        d.features.hyperv.as_mut().unwrap().flags.push(HypervFlag {
            name: "vapic".into(),
            on: true,
            value: None,
        });
        d.apply_to(&mut tree);
        let out = tree.to_xml();
        assert!(out.contains("<features><apic eoi='on'/><hyperv mode='custom'><relaxed state='on'/><stimer state='on'><direct state='on'/></stimer><vapic state='on'/></hyperv><kvm><poll-control state='on'/><hidden state='on'/></kvm><gic version='2'/><smm state='off'/><ioapic driver='qemu'/></features>"), "{out}");
        assert_eq!(Domain::from_element(&tree).features, d.features);
    }

    #[test]
    fn another_share_or_controller_in_an_elements_place_starts_afresh() {
        let mut el = Element::parse("<filesystem type='mount'><driver type='virtiofs' queue='1024'/><binary path='/x'/><source dir='/a'/><target dir='a'/><address type='pci' slot='0x05'/></filesystem>").unwrap();
        let mut fs = Filesystem::from_element(&el);
        fs.apply_to(&mut el);
        assert!(el.to_xml().contains("<binary path='/x'/>"));
        fs.target = "b".into();
        fs.source = Some("/b".into());
        fs.apply_to(&mut el);
        assert_eq!(
            el.to_xml(),
            "<filesystem type='mount'><driver type='virtiofs'/><source dir='/b'/><target dir='b'/></filesystem>"
        );
        let mut c = Element::parse("<controller type='usb' index='0' model='ich9-ehci1'><address type='pci' slot='0x07'/></controller>").unwrap();
        crate::xml::domain::Controller {
            controller_type: "scsi".into(),
            index: Some(0),
            model: Some("virtio-scsi".into()),
            ..Default::default()
        }
        .apply_to(&mut c);
        assert_eq!(
            c.to_xml(),
            "<controller type='scsi' index='0' model='virtio-scsi'/>"
        );
    }

    #[test]
    fn a_new_video_model_drops_the_old_models_attributes() {
        let mut el = Element::parse("<video><model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1' primary='yes'/><address type='pci' slot='0x01'/></video>").unwrap();
        let mut v = Video::from_element(&el);
        assert_eq!(v.vram_kib, Some(65536));
        v.model = "virtio".into();
        v.vram_kib = None;
        v.apply_to(&mut el);
        assert_eq!(
            el.to_xml(),
            "<video><model type='virtio' heads='1'/><address type='pci' slot='0x01'/></video>"
        );
    }
}
