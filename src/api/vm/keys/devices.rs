//! The device keys `create_vm`'s spec and `edit`'s `cfg` share: `graphics`,
//! `video`, `sound`, `console`, `controllers`, `filesystems`, `tpm`, `rng`,
//! `watchdog`, `memballoon`, `features`. Each has a reader (short form or
//! map, validated: an unknown name gets "did you mean" and the known list)
//! and a `*_shown` function: how `vm.config` and `edit`'s `cfg` show it, in
//! the shape the reader takes back.
use rhai::{Array, Dynamic, Map};

use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::xml::domain::{
    CharDev, Controller, Domain, Features, Filesystem, Graphics, Hyperv, HypervFlag, Memballoon,
    MemoryBacking, Rng, Sound, Tpm, Video, Watchdog,
};

use super::super::spec::check_identifier;

/// `value` must be one of `known` (libvirt's names for a `what`).
pub fn known_name(field: &str, value: &str, what: &str, known: &[&str]) -> Result<(), ScriptError> {
    if known.contains(&value) {
        return Ok(());
    }
    let hint = crate::runtime::suggest::closest(value, known.iter().copied())
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default();
    Err(ScriptError::invalid(
        field,
        value,
        format!(
            "not a {what} libvirt knows{hint} (known: {})",
            known.join(", ")
        ),
    ))
}

/// A key given as a short string or as a map.
enum Form {
    Short(String),
    Full(Map),
}

fn form(f: &Fields, key: &str) -> Result<Option<Form>, ScriptError> {
    let Some(v) = f.raw(key) else {
        return Ok(None);
    };
    if v.is_string() {
        return Ok(f.string(key)?.map(Form::Short));
    }
    match v.read_lock::<Map>() {
        Some(m) => Ok(Some(Form::Full(m.clone()))),
        None => Err(f.wrong(key, v, "a string or a map")),
    }
}

/// A required name in a map, checked against `known`.
fn named(g: &Fields, key: &str, what: &str, known: &[&str]) -> Result<Option<String>, ScriptError> {
    let Some(v) = g.string(key)? else {
        return Ok(None);
    };
    known_name(&g.name(key), &v, what, known)?;
    Ok(Some(v))
}

fn need<T>(g: &Fields, key: &str, value: Option<T>, what: &str) -> Result<T, ScriptError> {
    value.ok_or_else(|| ScriptError::invalid(&g.name(key), "()", format!("{what} is required")))
}

fn opt_str(v: &Option<String>) -> Dynamic {
    v.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

fn opt_num<T: Into<i64> + Copy>(v: Option<T>) -> Dynamic {
    v.map(|n| Dynamic::from(n.into())).unwrap_or(Dynamic::UNIT)
}

fn opt_bool(v: Option<bool>) -> Dynamic {
    v.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

fn map_of(pairs: Vec<(&str, Dynamic)>) -> Dynamic {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect::<Map>()
        .into()
}

/// The maps of a list key (`controllers`, `filesystems`), with their field names.
fn items(f: &Fields, key: &str) -> Result<Vec<(String, Map)>, ScriptError> {
    let list = f.array(key)?.unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("{}[{i}]", f.name(key));
            item.read_lock::<Map>()
                .map(|m| (field.clone(), m.clone()))
                .ok_or_else(|| ScriptError::invalid(&field, show(item), "must be a map"))
        })
        .collect()
}

// ---------------------------------------------------------------- graphics

pub const GRAPHICS_TYPES: &[&str] = &["vnc", "spice"];

/// The spice agent's channel (copy and paste, resizing), as virt-install adds it.
pub fn spice_vdagent() -> CharDev {
    CharDev {
        kind: "channel".into(),
        char_type: "spicevmc".into(),
        target_type: Some("virtio".into()),
        target_name: Some("com.redhat.spice.0".into()),
        port: None,
    }
}

/// `graphics`: `"vnc"`, `"spice"`, `"none"`, or `#{ type, listen, port,
/// password }`; `listen` defaults to 127.0.0.1, no `port` is a free one.
/// The password is never shown (a map without one keeps the one set;
/// `password: ""` removes it). Spice brings the vdagent channel.
pub fn graphics(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let old_passwd = d.graphics.first().and_then(|g| g.passwd.clone());
    let key = f.name("graphics");
    let g = match form(f, "graphics")? {
        None => None,
        Some(Form::Short(s)) if s == "none" => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "graphics type", GRAPHICS_TYPES)?;
            Some(Graphics {
                graphics_type: s,
                autoport: Some(true),
                port: None,
                listen: Some("127.0.0.1".into()),
                passwd: old_passwd,
            })
        }
        Some(Form::Full(m)) => Some(graphics_map(&key, &m, old_passwd)?),
    };
    d.graphics = g.into_iter().collect();
    let spice = d.graphics.iter().any(|g| g.graphics_type == "spice");
    let agent = spice_vdagent();
    let has_agent = d.channels.iter().any(|c| c.char_type == "spicevmc");
    if spice && !has_agent {
        d.channels.push(agent);
    } else if !spice {
        d.channels.retain(|c| c.char_type != "spicevmc");
    }
    Ok(())
}

fn graphics_map(key: &str, m: &Map, old_passwd: Option<String>) -> Result<Graphics, ScriptError> {
    let g = Fields::new(key, m);
    // A misspelt `password` key must not print the password with the error.
    const KEYS: &[&str] = &["type", "listen", "port", "password"];
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(ScriptError::invalid(
            &g.name(k),
            "(hidden)",
            crate::runtime::suggest::unknown_key("", k, KEYS),
        ));
    }
    let kind = named(&g, "type", "graphics type", GRAPHICS_TYPES)?;
    let listen = g.string("listen")?;
    let port = g.int("port")?;
    // Read by hand: an error must not show the password.
    let password = g.raw("password");
    g.finish()?;
    let kind = need(&g, "type", kind, "the graphics type (vnc or spice)")?;
    if let Some(l) = &listen {
        if l.parse::<std::net::IpAddr>().is_err() {
            return Err(ScriptError::invalid(
                &g.name("listen"),
                l,
                "must be an IP address to listen on (like 127.0.0.1, 0.0.0.0 or ::1)",
            ));
        }
    }
    let low = if kind == "vnc" { 5900 } else { 1 };
    let port = match port {
        None | Some(-1) => None,
        Some(p) if (low..=65535).contains(&p) => Some(p as i32),
        Some(p) => {
            return Err(ScriptError::invalid(
                &g.name("port"),
                p,
                format!("must be between {low} and 65535 (or -1 for a free port)"),
            ))
        }
    };
    let passwd = match password {
        None => old_passwd,
        Some(v) if !v.is_string() => {
            return Err(ScriptError::invalid(
                &g.name("password"),
                "(hidden)",
                format!("must be a string, not {}", v.type_name()),
            ))
        }
        Some(v) => {
            let p = v.to_string();
            if p.chars().any(char::is_control) {
                return Err(ScriptError::invalid(
                    &g.name("password"),
                    "(hidden)",
                    "must not contain control characters",
                ));
            }
            if kind == "vnc" && p.chars().count() > 8 {
                return Err(ScriptError::invalid(
                    &g.name("password"),
                    "(hidden)",
                    "a VNC password has at most 8 characters (the protocol uses only 8)",
                ));
            }
            (!p.is_empty()).then_some(p)
        }
    };
    Ok(Graphics {
        graphics_type: kind,
        autoport: Some(port.is_none()),
        port,
        listen: Some(listen.unwrap_or_else(|| "127.0.0.1".into())),
        passwd,
    })
}

/// `#{ type, listen, port }` (no password), or `()`.
pub fn graphics_shown(d: &Domain) -> Dynamic {
    let Some(g) = d.graphics.first() else {
        return Dynamic::UNIT;
    };
    let port = if g.autoport == Some(true) {
        None
    } else {
        g.port.map(i64::from)
    };
    map_of(vec![
        ("type", g.graphics_type.clone().into()),
        ("listen", opt_str(&g.listen)),
        ("port", opt_num(port)),
    ])
}

// ---------------------------------------------------------------- video, sound

pub const VIDEO_MODELS: &[&str] = &[
    "virtio",
    "qxl",
    "vga",
    "cirrus",
    "bochs",
    "ramfb",
    "none",
    "vmvga",
    "xen",
    "vbox",
    "gop",
];

/// `video`: a model (`"virtio"`, `"qxl"`, `"vga"`, `"none"`...) or
/// `#{ model, vram, heads, accel3d }` (`vram` a size, numbers in MiB).
pub fn video(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("video");
    let v = match form(f, "video")? {
        None => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "video model", VIDEO_MODELS)?;
            Some(Video {
                model: s,
                ..Video::default()
            })
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "video model", VIDEO_MODELS)?;
            let vram = g.size("vram", true)?;
            let heads = g.positive("heads", 16)?;
            let accel3d = g.boolean("accel3d")?;
            g.finish()?;
            let model = need(&g, "model", model, "the video model")?;
            if accel3d == Some(true) && !matches!(model.as_str(), "virtio" | "vbox") {
                return Err(ScriptError::invalid(
                    &g.name("accel3d"),
                    "true",
                    format!("3D acceleration needs the virtio model, not {model}"),
                ));
            }
            Some(Video {
                model,
                vram_kib: vram.map(|b| b / 1024),
                heads,
                accel3d,
            })
        }
    };
    d.videos = v.into_iter().collect();
    Ok(())
}

/// `#{ model, vram (MiB), heads, accel3d }` of the first video, or `()`.
pub fn video_shown(d: &Domain) -> Dynamic {
    let Some(v) = d.videos.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", v.model.clone().into()),
        ("vram", opt_num(v.vram_kib.map(|k| (k / 1024) as i64))),
        ("heads", opt_num(v.heads)),
        ("accel3d", opt_bool(v.accel3d)),
    ])
}

pub const SOUND_MODELS: &[&str] = &[
    "ich9", "ich6", "ac97", "es1370", "sb16", "usb", "ich7", "pcspk",
];

/// `sound`: a model (`"ich9"`, `"ac97"`...) or `#{ model, codec }` (`codec`:
/// `duplex`, `micro`, `output`, for the ich models); `"none"`: no sound
/// device (and none by default with SPICE).
pub fn sound(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("sound");
    let s = match form(f, "sound")? {
        None => None,
        Some(Form::Short(s)) if s == "none" => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "sound model", SOUND_MODELS)?;
            Some(Sound {
                model: s,
                codecs: Vec::new(),
            })
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "sound model", SOUND_MODELS)?;
            let codec = named(&g, "codec", "sound codec", &["duplex", "micro", "output"])?;
            g.finish()?;
            let model = need(&g, "model", model, "the sound model")?;
            if let Some(c) = &codec {
                if !model.starts_with("ich") {
                    return Err(ScriptError::invalid(
                        &g.name("codec"),
                        c,
                        format!("codecs are for the ich6, ich7 and ich9 models, not {model}"),
                    ));
                }
            }
            Some(Sound {
                model,
                codecs: codec.into_iter().collect(),
            })
        }
    };
    d.sounds = s.into_iter().collect();
    Ok(())
}

/// `#{ model, codec }` of the first sound device, or `()`.
pub fn sound_shown(d: &Domain) -> Dynamic {
    let Some(s) = d.sounds.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", s.model.clone().into()),
        ("codec", opt_str(&s.codecs.first().cloned())),
    ])
}

// ---------------------------------------------------------------- console

pub const CONSOLE_TARGETS: &[&str] = &["serial", "virtio", "sclp", "sclplm"];

/// `console`: the console's target type, `"serial"` (the serial port's
/// console, the default) or `"virtio"` (hvc0); the serial port stays either
/// way (and so libvirt keeps a console on it). The map form is `#{ target }`.
pub fn console(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("console");
    let target = match form(f, "console")? {
        None => return Ok(()),
        Some(Form::Short(s)) => s,
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let t = g.string("target")?;
            g.finish()?;
            need(&g, "target", t, "the console's target type")?
        }
    };
    known_name(&key, &target, "console target type", CONSOLE_TARGETS)?;
    let mut console = d.consoles.first().cloned().unwrap_or_else(CharDev::console_pty);
    console.target_type = Some(target);
    console.port = Some(0);
    d.consoles = vec![console];
    Ok(())
}

pub fn console_shown(d: &Domain) -> Dynamic {
    match d.consoles.first() {
        Some(c) => c.target_type.clone().unwrap_or_else(|| "serial".into()).into(),
        None => Dynamic::UNIT,
    }
}

// ---------------------------------------------------------------- controllers

/// Controller types and, for each, the models libvirt's schema lists.
pub const CONTROLLER_MODELS: &[(&str, &[&str])] = &[
    (
        "usb",
        &[
            "qemu-xhci",
            "nec-xhci",
            "piix3-uhci",
            "piix4-uhci",
            "ehci",
            "ich9-ehci1",
            "ich9-uhci1",
            "ich9-uhci2",
            "ich9-uhci3",
            "vt82c686b-uhci",
            "pci-ohci",
            "qusb1",
            "qusb2",
            "none",
        ],
    ),
    (
        "scsi",
        &[
            "virtio-scsi",
            "auto",
            "buslogic",
            "lsilogic",
            "lsisas1068",
            "lsisas1078",
            "vmpvscsi",
            "ibmvscsi",
            "virtio-transitional",
            "virtio-non-transitional",
            "ncr53c90",
            "am53c974",
            "dc390",
        ],
    ),
    (
        "virtio-serial",
        &["virtio", "virtio-transitional", "virtio-non-transitional"],
    ),
    (
        "pci",
        &[
            "pci-root",
            "pcie-root",
            "pci-bridge",
            "dmi-to-pci-bridge",
            "pcie-to-pci-bridge",
            "pcie-root-port",
            "pcie-switch-upstream-port",
            "pcie-switch-downstream-port",
            "pci-expander-bus",
            "pcie-expander-bus",
        ],
    ),
    ("sata", &[]),
    ("ide", &["piix3", "piix4", "ich6"]),
    ("ccid", &[]),
    ("fdc", &[]),
    ("xenbus", &[]),
];

/// `controllers`: `[#{ type, model, index, ports, vectors, queues }]`
/// (types usb, scsi, virtio-serial, pci, sata, ide, ccid, fdc, xenbus; the
/// models libvirt knows for each). libvirt adds the ones a machine needs.
pub fn controllers(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let types: Vec<&str> = CONTROLLER_MODELS.iter().map(|(t, _)| *t).collect();
    let mut out: Vec<Controller> = Vec::new();
    for (field, m) in items(f, "controllers")? {
        let g = Fields::new(field.clone(), &m);
        let kind = named(&g, "type", "controller type", &types)?;
        let model = g.string("model")?;
        let index = g.int("index")?;
        let ports = g.positive("ports", 255)?;
        let vectors = g.positive("vectors", 1024)?;
        let queues = g.positive("queues", 1024)?;
        g.finish()?;
        let kind = need(&g, "type", kind, "the controller type")?;
        let models = CONTROLLER_MODELS
            .iter()
            .find(|(t, _)| *t == kind)
            .map(|(_, m)| *m)
            .unwrap_or_default();
        if let Some(m) = &model {
            if models.is_empty() {
                return Err(ScriptError::invalid(
                    &g.name("model"),
                    m,
                    format!("{kind} controllers have no model"),
                ));
            }
            known_name(&g.name("model"), m, &format!("{kind} controller model"), models)?;
        }
        let index = match index {
            None => None,
            Some(i) if (0..=255).contains(&i) => Some(i as u32),
            Some(i) => {
                return Err(ScriptError::invalid(
                    &g.name("index"),
                    i,
                    "must be between 0 and 255",
                ))
            }
        };
        let only: [(&str, Option<u32>, &[&str]); 3] = [
            ("ports", ports, &["virtio-serial", "usb"]),
            ("vectors", vectors, &["virtio-serial"]),
            ("queues", queues, &["scsi", "virtio-serial"]),
        ];
        for (name, value, only) in only {
            if let Some(v) = value {
                if !only.contains(&kind.as_str()) {
                    return Err(ScriptError::invalid(
                        &g.name(name),
                        v,
                        format!("{kind} controllers take no {name}"),
                    ));
                }
            }
        }
        // One controller per type and index.
        let same = |c: &Controller| c.controller_type == kind && c.index.unwrap_or(0) == index.unwrap_or(0);
        if index.is_some() && out.iter().any(same) {
            return Err(ScriptError::invalid(
                &g.name("index"),
                index.unwrap_or(0),
                format!("there is already a {kind} controller with this index"),
            ));
        }
        out.push(Controller {
            controller_type: kind,
            index,
            model,
            ports,
            vectors,
            queues,
            master_startport: None,
        });
    }
    d.controllers = out;
    Ok(())
}

pub fn controllers_shown(d: &Domain) -> Dynamic {
    d.controllers
        .iter()
        .map(|c| {
            map_of(vec![
                ("type", c.controller_type.clone().into()),
                ("index", opt_num(c.index.map(i64::from))),
                ("model", opt_str(&c.model)),
                ("ports", opt_num(c.ports.map(i64::from))),
                ("vectors", opt_num(c.vectors.map(i64::from))),
                ("queues", opt_num(c.queues.map(i64::from))),
            ])
        })
        .collect::<Array>()
        .into()
}

// ---------------------------------------------------------------- filesystems

/// The filesystem drivers: `9p` is libvirt's `path` (or no driver).
const FS_DRIVERS: &[&str] = &["virtiofs", "9p", "path", "handle", "loop", "nbd", "ploop"];

/// `filesystems`: `[#{ source, target, driver, readonly, accessmode }]`: a
/// host directory `source` the guest mounts by the tag `target`, through
/// `driver` `"9p"` (the default, as virt-install) or `"virtiofs"` (which
/// also makes the guest's memory shared, `<memoryBacking><source
/// type='memfd'/><access mode='shared'/>`, as it needs). The directory is
/// checked like a disk's file (`allow_path`).
pub fn filesystems(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let old = std::mem::take(&mut d.filesystems);
    let mut out: Vec<Filesystem> = Vec::new();
    for (field, m) in items(f, "filesystems")? {
        let g = Fields::new(field.clone(), &m);
        let source = g.string("source")?;
        let target = g.string("target")?;
        let driver = named(&g, "driver", "filesystem driver", FS_DRIVERS)?;
        let readonly = g.boolean("readonly")?;
        let accessmode = named(
            &g,
            "accessmode",
            "filesystem access mode",
            &["passthrough", "mapped", "squash"],
        )?;
        g.finish()?;
        let target = need(&g, "target", target, "the mount tag the guest uses (target)")?;
        check_identifier(&g.name("target"), &target)?;
        if target.len() > 36 {
            return Err(ScriptError::invalid(
                &g.name("target"),
                &target,
                "a mount tag has at most 36 characters",
            ));
        }
        if out.iter().any(|x| x.target == target) {
            return Err(ScriptError::invalid(
                &g.name("target"),
                &target,
                "another filesystem has this mount tag",
            ));
        }
        let mut fs = old
            .iter()
            .find(|x| x.target == target)
            .cloned()
            .unwrap_or_else(|| Filesystem {
                fs_type: "mount".into(),
                ..Filesystem::default()
            });
        match source {
            Some(s) => {
                if !s.starts_with('/') {
                    return Err(ScriptError::invalid(
                        &g.name("source"),
                        &s,
                        "must be an absolute path to a host directory",
                    ));
                }
                fs.fs_type = "mount".into();
                fs.source = Some(s);
            }
            None if fs.fs_type == "mount" => {
                return Err(ScriptError::invalid(
                    &g.name("source"),
                    "()",
                    "the host directory to share (source) is required",
                ))
            }
            None => {}
        }
        fs.target = target;
        fs.driver = match driver.as_deref() {
            None | Some("9p") => fs.driver.filter(|d| d == "path"),
            Some(other) => Some(other.to_owned()),
        };
        let virtiofs = fs.driver.as_deref() == Some("virtiofs");
        if virtiofs {
            if let Some(mode) = accessmode.as_deref().filter(|m| *m != "passthrough") {
                return Err(ScriptError::invalid(
                    &g.name("accessmode"),
                    mode,
                    "virtiofs only shares with accessmode passthrough",
                ));
            }
            if readonly == Some(true) {
                return Err(ScriptError::invalid(
                    &g.name("readonly"),
                    "true",
                    "virtiofs cannot share read-only here (libvirt refuses it); use driver \"9p\"",
                ));
            }
            // A 9p share's mapped mode does not carry over.
            if fs.accessmode.as_deref().is_some_and(|m| m != "passthrough") {
                fs.accessmode = None;
            }
        }
        // virtiofs's only mode is libvirt's default, left out as virt-install does.
        if accessmode.is_some() {
            fs.accessmode = accessmode;
        }
        fs.readonly = readonly.unwrap_or(false);
        out.push(fs);
    }
    if out.iter().any(|x| x.driver.as_deref() == Some("virtiofs"))
        && d.memory_backing.access_mode.as_deref() != Some("shared")
    {
        let shared = MemoryBacking::shared_memfd();
        d.memory_backing.access_mode = shared.access_mode;
        if d.memory_backing.source_type.is_none() {
            d.memory_backing.source_type = shared.source_type;
        }
    }
    d.filesystems = out;
    Ok(())
}

pub fn filesystems_shown(d: &Domain) -> Dynamic {
    d.filesystems
        .iter()
        .map(|x| {
            let driver = match x.driver.as_deref() {
                None | Some("path") => "9p".to_owned(),
                Some(other) => other.to_owned(),
            };
            map_of(vec![
                ("source", opt_str(&x.source)),
                ("target", x.target.clone().into()),
                ("driver", driver.into()),
                ("readonly", x.readonly.into()),
                ("accessmode", opt_str(&x.accessmode)),
            ])
        })
        .collect::<Array>()
        .into()
}

// ---------------------------------------------------------------- tpm, rng, watchdog, balloon

pub const TPM_MODELS: &[&str] = &["tpm-crb", "tpm-tis", "tpm-spapr", "spapr-tpm-proxy"];

/// `tpm`: `"emulator"` (a TPM 2.0 emulated by swtpm: tpm-crb on x86,
/// tpm-spapr on ppc64, tpm-tis elsewhere) or `#{ model, version }`
/// (`"2.0"` or `"1.2"`); `"none"`: no TPM (and none by default with UEFI).
pub fn tpm(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("tpm");
    let (model, version) = match form(f, "tpm")? {
        None => {
            d.tpms.clear();
            return Ok(());
        }
        Some(Form::Short(s)) if s == "none" => {
            d.tpms.clear();
            return Ok(());
        }
        Some(Form::Short(s)) => {
            known_name(&key, &s, "TPM backend", &["emulator", "none"])?;
            (None, None)
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "TPM model", TPM_MODELS)?;
            let version = match g.raw("version") {
                Some(v) if v.is_float() => Some(format!("{:.1}", v.as_float().unwrap_or(0.0))),
                Some(_) => g.string("version")?,
                None => None,
            };
            let backend = g.string("type")?;
            g.finish()?;
            if let Some(b) = &backend {
                known_name(&g.name("type"), b, "TPM backend", &["emulator"])?;
            }
            if let Some(v) = &version {
                known_name(&g.name("version"), v, "TPM version", &["2.0", "1.2"])?;
            }
            if model.as_deref() == Some("spapr-tpm-proxy") {
                return Err(ScriptError::invalid(
                    &g.name("model"),
                    "spapr-tpm-proxy",
                    "spapr-tpm-proxy passes a host TPM through; an emulated TPM on ppc64 is tpm-spapr",
                ));
            }
            if model.as_deref() == Some("tpm-crb") && version.as_deref() == Some("1.2") {
                return Err(ScriptError::invalid(
                    &g.name("version"),
                    "1.2",
                    "tpm-crb is a TPM 2.0 interface; use tpm-tis for 1.2",
                ));
            }
            (model, version)
        }
    };
    let model = model.or_else(|| {
        Some(
            match d.os.arch.as_deref() {
                None | Some("x86_64" | "i686") => "tpm-crb",
                Some(a) if a.starts_with("ppc64") => "tpm-spapr",
                Some(_) => "tpm-tis",
            }
            .to_owned(),
        )
    });
    let tpm = Tpm {
        model,
        backend: "emulator".into(),
        version: Some(version.unwrap_or_else(|| "2.0".into())),
    };
    d.tpms = vec![tpm];
    Ok(())
}

pub fn tpm_shown(d: &Domain) -> Dynamic {
    let Some(t) = d.tpms.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", opt_str(&t.model)),
        ("version", opt_str(&t.version)),
        ("type", t.backend.clone().into()),
    ])
}

const RNG_SOURCES: &[&str] = &["/dev/urandom", "/dev/random", "/dev/hwrng", "builtin"];

/// `rng`: a virtio RNG fed from `"/dev/urandom"`, `"/dev/random"`,
/// `"/dev/hwrng"` or QEMU's own `"builtin"`, or `#{ model, backend, rate }`
/// (`rate`: bytes per second, or `#{ bytes, period }` with the period in ms);
/// `"none"`: no RNG (and none by default).
pub fn rng(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("rng");
    let rng = match form(f, "rng")? {
        None => None,
        Some(Form::Short(s)) if s == "none" => None,
        Some(Form::Short(s)) => {
            let mut known = RNG_SOURCES.to_vec();
            known.push("none");
            known_name(&key, &s, "random number source", &known)?;
            Some(rng_of("virtio".into(), s, None))
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(
                &g,
                "model",
                "RNG model",
                &["virtio", "virtio-transitional", "virtio-non-transitional"],
            )?;
            let backend = named(&g, "backend", "random number source", RNG_SOURCES)?;
            let rate = match g.raw("rate") {
                None => None,
                Some(v) if v.is_int() => Some((g.positive("rate", i64::from(u32::MAX))? .unwrap_or(1) as u64, 1000)),
                Some(_) => {
                    let rm = g.map("rate")?.unwrap_or_default();
                    let r = Fields::new(g.name("rate"), &rm);
                    let bytes = r.positive("bytes", i64::from(u32::MAX))?;
                    let period = r.positive("period", i64::from(u32::MAX))?;
                    r.finish()?;
                    let bytes = need(&r, "bytes", bytes, "the bytes per period")?;
                    Some((u64::from(bytes), u64::from(period.unwrap_or(1000))))
                }
            };
            g.finish()?;
            Some(rng_of(
                model.unwrap_or_else(|| "virtio".into()),
                backend.unwrap_or_else(|| "/dev/urandom".into()),
                rate,
            ))
        }
    };
    d.rngs = rng.into_iter().collect();
    Ok(())
}

fn rng_of(model: String, source: String, rate: Option<(u64, u64)>) -> Rng {
    let builtin = source == "builtin";
    Rng {
        model,
        backend: if builtin { "builtin" } else { "random" }.into(),
        path: (!builtin).then_some(source),
        rate_bytes: rate.map(|r| r.0),
        rate_period: rate.map(|r| r.1),
    }
}

pub fn rng_shown(d: &Domain) -> Dynamic {
    let Some(r) = d.rngs.first() else {
        return Dynamic::UNIT;
    };
    let backend = r.path.clone().unwrap_or_else(|| r.backend.clone());
    let rate = match r.rate_bytes {
        Some(b) => map_of(vec![
            ("bytes", Dynamic::from(b as i64)),
            ("period", opt_num(r.rate_period.map(|p| p as i64))),
        ]),
        None => Dynamic::UNIT,
    };
    map_of(vec![
        ("model", r.model.clone().into()),
        ("backend", backend.into()),
        ("rate", rate),
    ])
}

pub const WATCHDOG_MODELS: &[&str] = &["i6300esb", "ib700", "diag288", "itco"];
pub const WATCHDOG_ACTIONS: &[&str] = &[
    "reset",
    "shutdown",
    "poweroff",
    "pause",
    "none",
    "dump",
    "inject-nmi",
];

/// `watchdog`: a model (`"i6300esb"`, `"ib700"`, `"diag288"`, `"itco"`) or
/// `#{ model, action }` (`reset`, the default, `shutdown`, `poweroff`,
/// `pause`, `none`, `dump`, `inject-nmi`).
pub fn watchdog(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("watchdog");
    let w = match form(f, "watchdog")? {
        None => None,
        Some(Form::Short(s)) => {
            known_name(&key, &s, "watchdog model", WATCHDOG_MODELS)?;
            Some(Watchdog {
                model: s,
                action: None,
            })
        }
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = named(&g, "model", "watchdog model", WATCHDOG_MODELS)?;
            let action = named(&g, "action", "watchdog action", WATCHDOG_ACTIONS)?;
            g.finish()?;
            let model = need(&g, "model", model, "the watchdog model")?;
            Some(Watchdog { model, action })
        }
    };
    d.watchdogs = w.into_iter().collect();
    Ok(())
}

pub fn watchdog_shown(d: &Domain) -> Dynamic {
    let Some(w) = d.watchdogs.first() else {
        return Dynamic::UNIT;
    };
    map_of(vec![
        ("model", w.model.clone().into()),
        ("action", opt_str(&w.action)),
    ])
}

const BALLOON_MODELS: &[&str] = &[
    "virtio",
    "none",
    "virtio-transitional",
    "virtio-non-transitional",
    "xen",
];

/// `memballoon`: `"virtio"` (libvirt's default) or `"none"` (no balloon;
/// `current_memory` then cannot change live); or `#{ model }`.
pub fn memballoon(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let key = f.name("memballoon");
    let model = match form(f, "memballoon")? {
        None => None,
        Some(Form::Short(s)) => Some(s),
        Some(Form::Full(m)) => {
            let g = Fields::new(key.clone(), &m);
            let model = g.string("model")?;
            g.finish()?;
            Some(need(&g, "model", model, "the balloon model")?)
        }
    };
    if let Some(m) = &model {
        known_name(&key, m, "memory balloon model", BALLOON_MODELS)?;
    }
    d.memballoon = model.map(|model| Memballoon { model });
    Ok(())
}

pub fn memballoon_shown(d: &Domain) -> Dynamic {
    d.memballoon
        .as_ref()
        .map(|m| Dynamic::from(m.model.clone()))
        .unwrap_or(Dynamic::UNIT)
}

// ---------------------------------------------------------------- features

/// The Hyper-V enlightenments libvirt knows.
pub const HYPERV_FLAGS: &[&str] = &[
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "reset",
    "vendor_id",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "ipi",
    "evmcs",
    "avic",
    "emsr_bitmap",
    "xmm_input",
];

/// `features`: `#{ acpi, apic, pae, smm, vmport, kvm: #{ hidden }, hyperv:
/// #{ relaxed, vapic, spinlocks, ... } }`, each `true`/`false`; a spec's
/// features start from virt-install's (`acpi`, `apic`) and the keys given
/// change them. In `hyperv`, `spinlocks` may be the retry count (at least
/// 4095) and `vendor_id` a string of up to 12 characters; `mode` is
/// `"custom"` or `"passthrough"`. Other features in the definition stay.
pub fn features(f: &Fields, d: &mut Domain) -> Result<(), ScriptError> {
    let Some(m) = f.map("features")? else {
        return Ok(());
    };
    let g = Fields::new(f.name("features"), &m);
    let mut x: Features = d.features.clone();
    for (name, slot) in [("acpi", &mut x.acpi), ("apic", &mut x.apic), ("pae", &mut x.pae)] {
        if let Some(on) = g.boolean(name)? {
            *slot = on;
        }
    }
    if let Some(on) = g.boolean("smm")? {
        x.smm = Some(on);
    }
    if let Some(on) = g.boolean("vmport")? {
        x.vmport = Some(on);
    }
    if let Some(kvm) = g.map("kvm")? {
        let k = Fields::new(g.name("kvm"), &kvm);
        if let Some(hidden) = k.boolean("hidden")? {
            x.kvm_hidden = Some(hidden);
        }
        k.finish()?;
    }
    if let Some(hv) = g.map("hyperv")? {
        x.hyperv = Some(hyperv(&g.name("hyperv"), &hv, x.hyperv.take())?);
    }
    g.finish()?;
    d.features = x;
    Ok(())
}

fn hyperv(field: &str, m: &Map, old: Option<Hyperv>) -> Result<Hyperv, ScriptError> {
    let h = Fields::new(field, m);
    let mut hv = old.unwrap_or_default();
    if let Some(mode) = named(&h, "mode", "Hyper-V mode", &["custom", "passthrough"])? {
        hv.mode = Some(mode);
    }
    for name in HYPERV_FLAGS {
        let Some(v) = h.raw(name) else { continue };
        let (on, value) = if let Ok(b) = v.as_bool() {
            (b, None)
        } else if *name == "spinlocks" && v.is_int() {
            let n = v.as_int().unwrap_or(0);
            if !(4095..=i64::from(u32::MAX)).contains(&n) {
                return Err(ScriptError::invalid(
                    &h.name(name),
                    n,
                    "the spinlock retry count must be at least 4095",
                ));
            }
            (true, Some(n.to_string()))
        } else if *name == "vendor_id" && v.is_string() {
            let s = h.string(name)?.unwrap_or_default();
            if s.is_empty() || s.len() > 12 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
                return Err(ScriptError::invalid(
                    &h.name(name),
                    &s,
                    "a vendor id is 1 to 12 letters, digits or spaces",
                ));
            }
            (true, Some(s))
        } else {
            let want = match *name {
                "spinlocks" => "true, false or a retry count",
                "vendor_id" => "true, false or a vendor string",
                _ => "true or false",
            };
            return Err(h.wrong(name, v, want));
        };
        let existing = hv.flags.iter_mut().find(|f| f.name == *name);
        let had_value = existing.as_ref().is_some_and(|f| f.value.is_some());
        if *name == "spinlocks" && on && value.is_none() && !had_value {
            return Err(ScriptError::invalid(
                &h.name(name),
                "true",
                "give the retry count (at least 4095), like spinlocks: 8191",
            ));
        }
        match existing {
            Some(f) => {
                f.on = on;
                if value.is_some() {
                    f.value = value;
                }
            }
            None => hv.flags.push(HypervFlag {
                name: (*name).to_owned(),
                on,
                value,
            }),
        }
    }
    h.finish()?;
    Ok(hv)
}

pub fn features_shown(d: &Domain) -> Dynamic {
    let x = &d.features;
    let hyperv = match &x.hyperv {
        None => Dynamic::UNIT,
        Some(h) => {
            let mut m = Map::new();
            if let Some(mode) = &h.mode {
                m.insert("mode".into(), mode.clone().into());
            }
            for flag in &h.flags {
                let v: Dynamic = match (&flag.value, flag.on) {
                    (Some(v), true) if flag.name == "spinlocks" => {
                        v.parse::<i64>().map(Dynamic::from).unwrap_or_else(|_| true.into())
                    }
                    (Some(v), true) if flag.name == "vendor_id" => v.clone().into(),
                    (_, on) => on.into(),
                };
                m.insert(flag.name.clone().into(), v);
            }
            m.into()
        }
    };
    map_of(vec![
        ("acpi", x.acpi.into()),
        ("apic", x.apic.into()),
        ("pae", x.pae.into()),
        ("smm", opt_bool(x.smm)),
        ("vmport", opt_bool(x.vmport)),
        (
            "kvm",
            match x.kvm_hidden {
                Some(h) => map_of(vec![("hidden", h.into())]),
                None => Dynamic::UNIT,
            },
        ),
        ("hyperv", hyperv),
    ])
}
