//! libvirt's domain capabilities (`virsh domcapabilities`): what one
//! emulator, architecture, machine type and virt type can do. Read only: the
//! machine and arch it is for, the firmware and loaders, the values each
//! device kind accepts (its `<enum>`s) and the features.
use std::collections::BTreeMap;

use super::tree::{Element, TreeError};

/// One device kind (`<disk supported='yes'>` with its `<enum name>` lists).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceCaps {
    pub supported: bool,
    /// `<enum name='bus'><value>sata</value>...`: the values by enum name.
    pub enums: BTreeMap<String, Vec<String>>,
}

impl DeviceCaps {
    /// The values of enum `name` (empty when the document lists none).
    pub fn values(&self, name: &str) -> &[String] {
        self.enums.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether the device kind is supported and enum `name` lists `value`.
    pub fn has(&self, name: &str, value: &str) -> bool {
        self.supported && self.values(name).iter().any(|v| v == value)
    }

    fn from_element(el: &Element) -> DeviceCaps {
        DeviceCaps {
            supported: el.attr("supported") == Some("yes"),
            enums: enums_of(el),
        }
    }

    /// A supported device kind with these enums (documented defaults).
    pub fn with(enums: &[(&str, &[&str])]) -> DeviceCaps {
        DeviceCaps {
            supported: true,
            enums: enums
                .iter()
                .map(|(n, vs)| (n.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect(),
        }
    }
}

fn enums_of(el: &Element) -> BTreeMap<String, Vec<String>> {
    el.children_named("enum")
        .filter_map(|e| {
            let name = e.attr("name")?.to_owned();
            Some((name, e.children_named("value").map(|v| v.text()).collect()))
        })
        .collect()
}

/// `<domainCapabilities>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainCaps {
    /// The emulator binary (`<path>`).
    pub path: Option<String>,
    /// The virt type (`<domain>`: `kvm`, `qemu`).
    pub domain: String,
    /// The canonical machine type (`pc-q35-7.2`, `virt-7.2`).
    pub machine: String,
    pub arch: String,
    /// `<os supported>`.
    pub os_supported: bool,
    /// `<os><enum name='firmware'>`: `efi`, `bios`.
    pub firmware: Vec<String>,
    /// `<os><loader><value>`: firmware image paths.
    pub loaders: Vec<String>,
    /// `<os><loader><enum name='type'>`: `rom`, `pflash`.
    pub loader_types: Vec<String>,
    pub disk: DeviceCaps,
    pub graphics: DeviceCaps,
    pub video: DeviceCaps,
    pub hostdev: DeviceCaps,
    pub rng: DeviceCaps,
    pub filesystem: DeviceCaps,
    pub tpm: DeviceCaps,
    pub redirdev: DeviceCaps,
    pub channel: DeviceCaps,
    pub crypto: DeviceCaps,
    /// `<features>`: each feature and whether it is supported.
    pub features: BTreeMap<String, bool>,
}

impl DomainCaps {
    pub fn parse(xml: &str) -> Result<DomainCaps, TreeError> {
        Ok(DomainCaps::from_element(&Element::parse(xml)?))
    }

    pub fn from_element(root: &Element) -> DomainCaps {
        let text = |name: &str| root.child(name).map(|e| e.text().trim().to_owned());
        let os = root.child("os");
        let loader = os.and_then(|o| o.child("loader"));
        let devices = root.child("devices");
        let device = |name: &str| {
            devices
                .and_then(|d| d.child(name))
                .map(DeviceCaps::from_element)
                .unwrap_or_default()
        };
        DomainCaps {
            path: text("path"),
            domain: text("domain").unwrap_or_default(),
            machine: text("machine").unwrap_or_default(),
            arch: text("arch").unwrap_or_default(),
            os_supported: os.is_some_and(|o| o.attr("supported") == Some("yes")),
            firmware: os
                .map(enums_of)
                .and_then(|mut e| e.remove("firmware"))
                .unwrap_or_default(),
            loaders: loader
                .map(|l| l.children_named("value").map(|v| v.text()).collect())
                .unwrap_or_default(),
            loader_types: loader
                .map(enums_of)
                .and_then(|mut e| e.remove("type"))
                .unwrap_or_default(),
            disk: device("disk"),
            graphics: device("graphics"),
            video: device("video"),
            hostdev: device("hostdev"),
            rng: device("rng"),
            filesystem: device("filesystem"),
            tpm: device("tpm"),
            redirdev: device("redirdev"),
            channel: device("channel"),
            crypto: device("crypto"),
            features: root
                .child("features")
                .map(|f| {
                    f.elements()
                        .map(|e| (e.name.clone(), e.attr("supported") == Some("yes")))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The disk buses (`<disk><enum name='bus'>`).
    pub fn disk_buses(&self) -> &[String] {
        self.disk.values("bus")
    }

    /// Whether UEFI firmware can be chosen (`firmware='efi'`, or a loader image).
    pub fn has_efi(&self) -> bool {
        self.firmware.iter().any(|f| f == "efi")
    }

    /// The graphics types (`vnc`, `spice`, ...).
    pub fn graphics_types(&self) -> &[String] {
        self.graphics.values("type")
    }

    /// The video models (`virtio`, `qxl`, `vga`, ...).
    pub fn video_models(&self) -> &[String] {
        self.video.values("modelType")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Debian 12's QEMU 7.2 answer for x86_64 q35 (trimmed).
    const Q35: &str = "<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path>\
        <domain>qemu</domain><machine>pc-q35-7.2</machine><arch>x86_64</arch><vcpu max='288'/>\
        <os supported='yes'><enum name='firmware'><value>efi</value></enum>\
        <loader supported='yes'><value>/usr/share/OVMF/OVMF_CODE_4M.fd</value>\
        <enum name='type'><value>rom</value><value>pflash</value></enum></loader></os>\
        <devices><disk supported='yes'><enum name='diskDevice'><value>disk</value><value>cdrom</value></enum>\
        <enum name='bus'><value>fdc</value><value>scsi</value><value>virtio</value><value>usb</value><value>sata</value></enum></disk>\
        <graphics supported='yes'><enum name='type'><value>vnc</value><value>spice</value></enum></graphics>\
        <video supported='yes'><enum name='modelType'><value>vga</value><value>qxl</value><value>virtio</value></enum></video>\
        <tpm supported='yes'><enum name='model'><value>tpm-tis</value></enum><enum name='backendModel'><value>passthrough</value></enum></tpm>\
        <crypto supported='no'/></devices>\
        <features><gic supported='no'/><vmcoreinfo supported='yes'/></features></domainCapabilities>";

    #[test]
    fn reads_machine_firmware_and_device_enums() {
        let caps = DomainCaps::parse(Q35).unwrap();
        assert_eq!(caps.machine, "pc-q35-7.2");
        assert_eq!(caps.arch, "x86_64");
        assert_eq!(caps.domain, "qemu");
        assert!(caps.has_efi());
        assert_eq!(caps.loaders, ["/usr/share/OVMF/OVMF_CODE_4M.fd"]);
        assert_eq!(caps.loader_types, ["rom", "pflash"]);
        assert_eq!(caps.disk_buses(), ["fdc", "scsi", "virtio", "usb", "sata"]);
        assert!(!caps.disk.has("bus", "ide"));
        assert!(caps.disk.has("diskDevice", "cdrom"));
        assert_eq!(caps.graphics_types(), ["vnc", "spice"]);
        assert_eq!(caps.video_models(), ["vga", "qxl", "virtio"]);
        assert!(caps.tpm.has("model", "tpm-tis"));
        assert!(!caps.crypto.supported);
        assert!(!caps.rng.supported, "absent means unsupported");
        assert_eq!(caps.features.get("gic"), Some(&false));
        assert_eq!(caps.features.get("vmcoreinfo"), Some(&true));
    }
}
