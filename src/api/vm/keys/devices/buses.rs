//! The device keys for controllers and shared directories (filesystems).
use super::*;

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
