//! What the host can run for the VM's arch, machine and virt type, read once
//! per plan from libvirt's domain capabilities (`virsh domcapabilities`),
//! and the choices made from it: the disk and CD-ROM buses, UEFI firmware,
//! the default display. Drivers without domain capabilities (the test driver)
//! get the documented defaults of [`fallback`], derived from arch and machine.
use virt::connect::Connect;

use super::osinfo::OsProfile;
use crate::api::error::ScriptError;
use crate::xml::domcaps::{DeviceCaps, DomainCaps};

/// The platform a VM is planned for.
#[derive(Debug, Clone)]
pub struct Platform {
    pub caps: DomainCaps,
    /// The arch and machine asked for (libvirt's defaults when not given).
    pub arch: String,
    pub machine: String,
    /// Whether `caps` came from the host (else the documented defaults).
    pub from_host: bool,
    /// What the guest OS supports, when `os` names one.
    pub os: Option<OsProfile>,
}

/// The machine virt-install recommends where the arch has a clear
/// preference (`virt` for ARM and RISC-V, `pseries`, `s390-ccw-virtio`);
/// x86 keeps libvirt's default (`pc`).
pub fn recommended_machine(arch: &str) -> Option<&'static str> {
    match arch {
        "aarch64" | "armv7l" | "riscv64" | "riscv32" => Some("virt"),
        "ppc64" | "ppc64le" => Some("pseries"),
        "s390x" => Some("s390-ccw-virtio"),
        _ => None,
    }
}

/// The host's architecture as libvirt reports it (`x86_64` when unknown).
fn host_arch(conn: &Connect) -> String {
    conn.capabilities()
        .ok()
        .and_then(|x| crate::xml::tree::Element::parse(&x).ok())
        .and_then(|c| c.path(&["host", "cpu", "arch"]).map(|a| a.text()))
        .filter(|a| !a.is_empty() && a != "i686")
        .unwrap_or_else(|| "x86_64".into())
}

/// The domain capabilities for `arch`/`machine`/`virt_type`, or an error
/// naming the field when the host cannot run such guests at all.
pub fn platform(
    conn: &Connect,
    arch: Option<&str>,
    machine: Option<&str>,
    virt_type: &str,
    virt_type_given: bool,
) -> Result<Platform, ScriptError> {
    let uri = conn.uri().unwrap_or_default();
    let on_test = uri.starts_with("test:");
    match conn.domain_capabilities(None, arch, machine, Some(virt_type), 0) {
        Ok(xml) => {
            let caps = DomainCaps::parse(&xml).map_err(|e| {
                ScriptError::invalid(
                    "arch",
                    arch.unwrap_or("(default)"),
                    format!("libvirt's domain capabilities could not be read: {e}"),
                )
            })?;
            Ok(Platform {
                arch: arch.map(str::to_owned).unwrap_or_else(|| caps.arch.clone()),
                machine: caps.machine.clone(),
                caps,
                from_host: true,
                os: None,
            })
        }
        Err(e) if on_test || e.code() == virt::error::ErrorNumber::NoSupport.into() => {
            let arch = arch.map(str::to_owned).unwrap_or_else(|| {
                if on_test {
                    "x86_64".into()
                } else {
                    host_arch(conn)
                }
            });
            let machine = machine
                .map(str::to_owned)
                .or_else(|| recommended_machine(&arch).map(str::to_owned))
                .unwrap_or_else(|| "pc".into());
            Ok(Platform {
                caps: fallback(&arch, &machine, virt_type),
                arch,
                machine,
                from_host: false,
                os: None,
            })
        }
        Err(e) => {
            let arch_shown = arch.map(str::to_owned).unwrap_or_else(|| host_arch(conn));
            let (field, value) = match arch {
                Some(a) if !virt_type_given => ("arch", a.to_owned()),
                _ if virt_type_given => ("virt_type", virt_type.to_owned()),
                _ => ("arch", arch_shown.clone()),
            };
            Err(ScriptError::invalid(
                field,
                value,
                format!(
                    "this host cannot run {arch_shown} guests with virt type {virt_type}{} (libvirt: {})",
                    machine.map(|m| format!(" and machine {m}")).unwrap_or_default(),
                    e.message()
                ),
            ))
        }
    }
}

/// The documented defaults for a driver that lists no domain capabilities
/// (create_vm's documentation, "Defaults from the host"): what QEMU offers for the arch and
/// machine. x86 `q35`: SATA, SCSI, virtio, USB (no IDE); x86 `pc`: IDE too;
/// ARM/RISC-V `virt`: virtio, SCSI, USB, SATA; `pseries`: SCSI, virtio, USB;
/// s390x: virtio, SCSI. UEFI firmware for x86, aarch64 and RISC-V;
/// VNC and SPICE with vga/qxl/virtio video on x86; VNC with virtio video elsewhere.
pub fn fallback(arch: &str, machine: &str, virt_type: &str) -> DomainCaps {
    let x86 = is_x86(arch);
    let buses: &[&str] = if x86 && machine.contains("q35") {
        &["fdc", "scsi", "virtio", "usb", "sata"]
    } else if x86 {
        &["ide", "fdc", "scsi", "virtio", "usb", "sata"]
    } else if arch.starts_with("ppc") {
        &["scsi", "virtio", "usb"]
    } else if arch.starts_with("s390") {
        &["scsi", "virtio"]
    } else {
        &["scsi", "virtio", "usb", "sata"]
    };
    let firmware: &[&str] = if x86 || arch == "aarch64" || arch.starts_with("riscv") {
        &["efi"]
    } else {
        &[]
    };
    let (graphics, video): (&[&str], &[&str]) = if x86 {
        (
            &["vnc", "spice"],
            &["vga", "cirrus", "qxl", "virtio", "bochs", "ramfb", "none"],
        )
    } else if arch.starts_with("ppc") {
        (&["vnc"], &["vga", "virtio", "none"])
    } else {
        (&["vnc"], &["virtio", "ramfb", "none"])
    };
    let tpm: &[&str] = if x86 {
        &["tpm-tis", "tpm-crb"]
    } else if arch.starts_with("ppc") {
        &["tpm-spapr"]
    } else {
        &["tpm-tis"]
    };
    DomainCaps {
        path: None,
        domain: virt_type.to_owned(),
        machine: machine.to_owned(),
        arch: arch.to_owned(),
        os_supported: true,
        firmware: firmware.iter().map(|s| s.to_string()).collect(),
        loaders: Vec::new(),
        loader_types: vec!["rom".into(), "pflash".into()],
        disk: DeviceCaps::with(&[
            ("diskDevice", &["disk", "cdrom", "floppy", "lun"]),
            ("bus", buses),
        ]),
        graphics: DeviceCaps::with(&[("type", graphics)]),
        video: DeviceCaps::with(&[("modelType", video)]),
        hostdev: DeviceCaps::with(&[("subsysType", &["usb", "pci", "scsi"])]),
        rng: DeviceCaps::with(&[
            ("model", &["virtio"]),
            ("backendModel", &["random", "egd", "builtin"]),
        ]),
        filesystem: DeviceCaps::with(&[("driverType", &["path", "handle", "virtiofs"])]),
        tpm: DeviceCaps::with(&[("model", tpm), ("backendModel", &["passthrough", "emulator"])]),
        redirdev: DeviceCaps::with(&[("bus", &["usb"])]),
        channel: DeviceCaps::with(&[("type", &["pty", "unix", "spicevmc"])]),
        crypto: DeviceCaps::default(),
        features: Default::default(),
    }
}

fn is_x86(arch: &str) -> bool {
    matches!(arch, "x86_64" | "i686")
}

impl Platform {
    /// The platform of an existing VM (its arch, machine and virt type), for
    /// devices added to it; the documented defaults when the host lists none.
    pub fn of_domain(conn: &Connect, d: &crate::xml::domain::Domain) -> Platform {
        let (arch, machine) = (d.os.arch.as_deref(), d.os.machine.as_deref());
        platform(conn, arch, machine, &d.virt_type, true).unwrap_or_else(|_| {
            let arch = arch.unwrap_or("x86_64").to_owned();
            let machine = machine.unwrap_or("pc").to_owned();
            Platform {
                caps: fallback(&arch, &machine, &d.virt_type),
                arch,
                machine,
                from_host: false,
                os: None,
            }
        })
    }

    pub fn is_x86(&self) -> bool {
        is_x86(&self.arch)
    }

    fn is_q35(&self) -> bool {
        self.machine.contains("q35")
    }

    /// An ARM or RISC-V `virt` machine (boots with UEFI, has no IDE).
    pub fn is_virt_machine(&self) -> bool {
        (self.arch.starts_with("arm") || self.arch == "aarch64" || self.arch.starts_with("riscv"))
            && self.machine.starts_with("virt")
    }

    /// Platforms that only take virtio devices (virt-install: ARM/RISC-V
    /// `virt`, s390x, pseries): the guest OS need not say it supports them.
    fn virtio_only(&self) -> bool {
        self.is_virt_machine() || self.arch.starts_with("s390") || self.machine.starts_with("pseries")
    }

    fn has_bus(&self, bus: &str) -> bool {
        self.caps.disk_buses().iter().any(|b| b == bus)
    }

    /// The first bus of `prefer` the host lists (else the first one).
    fn first_listed(&self, prefer: &[&'static str]) -> String {
        prefer
            .iter()
            .find(|b| self.has_bus(b))
            .or(prefer.first())
            .map(|b| b.to_string())
            .unwrap_or_default()
    }

    /// virt-install's rule for the bus of a CD-ROM (`cdrom`, the cloud-init
    /// seed, `disks: [#{ device: "cdrom" }]` alike): SCSI on other arches
    /// where virtio-scsi is there, SATA on q35, IDE on x86 `pc`; always a bus
    /// the host lists.
    pub fn cdrom_bus(&self) -> String {
        let scsi_ok = self.virtio_only() || self.os.as_ref().is_none_or(|o| o.virtio_scsi);
        let want: &[&'static str] = if !self.is_x86() && scsi_ok && self.has_bus("scsi") {
            &["scsi"]
        } else if self.is_q35() || !self.is_x86() {
            &["sata", "scsi", "usb", "ide"]
        } else {
            &["ide", "sata", "scsi"]
        };
        self.first_listed(want)
    }

    /// The bus of a disk when none is given: virtio when the host lists it
    /// (and the guest OS, when `os` names one, supports virtio-block), else
    /// the CD-ROM rule's bus.
    pub fn disk_bus(&self) -> String {
        let os_ok = self.virtio_only() || self.os.as_ref().is_none_or(|o| o.virtio_block);
        if os_ok && (self.has_bus("virtio") || self.caps.disk_buses().is_empty()) {
            "virtio".into()
        } else {
            self.cdrom_bus()
        }
    }

    /// The NIC model when none is given: virtio unless the guest OS (when
    /// `os` names one) lacks it (then e1000e on q35, e1000 elsewhere).
    pub fn nic_model(&self) -> String {
        let os_ok = self.virtio_only() || self.os.as_ref().is_none_or(|o| o.virtio_net);
        if os_ok {
            "virtio".into()
        } else if self.is_q35() {
            "e1000e".into()
        } else {
            "e1000".into()
        }
    }

    /// A disk bus the host's machine has (when it lists its buses).
    pub fn check_bus(&self, field: &str, bus: &str) -> Result<(), ScriptError> {
        let buses = self.caps.disk_buses();
        if buses.is_empty() || buses.iter().any(|b| b == bus) {
            return Ok(());
        }
        Err(ScriptError::invalid(
            field,
            bus,
            format!(
                "the {} machine ({}) has no {bus} bus{} (it has: {})",
                self.arch,
                self.machine,
                if self.from_host { " on this host" } else { "" },
                buses.join(", ")
            ),
        ))
    }

    /// Whether the VM needs UEFI firmware without being asked: ARM/RISC-V
    /// `virt` machines boot installers and images only with it.
    pub fn needs_efi(&self) -> bool {
        self.is_virt_machine()
    }

    /// Whether the host emulates a TPM (swtpm) for this platform
    /// (domcapabilities.py `supports_tpm_emulator`).
    pub fn supports_tpm_emulator(&self) -> bool {
        let models = self.caps.tpm.values("model");
        if self.arch == "armv7l" && models == ["tpm-tis"] {
            return false;
        }
        self.caps.tpm.supported && !models.is_empty() && self.caps.tpm.has("backendModel", "emulator")
    }

    /// The video model of a display when none is given (video.py
    /// `default_model`): virtio on ARM/RISC-V `virt` and s390x, vga on
    /// pseries; elsewhere virtio when the guest OS (`os`) supports
    /// virtio-gpu, qxl with SPICE on x86, bochs with UEFI, else vga; only
    /// models the host lists (`None` when it lists no video at all).
    pub fn default_video(&self, spice: bool, uefi: bool) -> Option<String> {
        if !self.caps.video.supported {
            return None;
        }
        let has = |m: &str| self.caps.video_models().iter().any(|x| x == m);
        let model = if self.machine.starts_with("pseries") {
            "vga"
        } else if self.is_virt_machine()
            || self.arch.starts_with("s390")
            || (has("virtio") && self.os.as_ref().is_some_and(|o| o.virtio_gpu))
        {
            "virtio"
        } else if self.is_x86() && spice && has("qxl") {
            "qxl"
        } else if uefi && has("bochs") {
            "bochs"
        } else {
            "vga"
        };
        Some(model.to_owned())
    }

    /// The default display, as virt-install's: SPICE when the host lists
    /// it, else VNC, on x86 and ppc64 only (elsewhere the serial console);
    /// `None` when the host lists neither. Its video is [`Self::default_video`].
    pub fn default_display(&self) -> Option<String> {
        if !(self.is_x86() || self.arch.starts_with("ppc64")) || !self.caps.graphics.supported {
            return None;
        }
        let types = self.caps.graphics_types();
        ["spice", "vnc"]
            .into_iter()
            .find(|t| types.iter().any(|x| x == t))
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fallback_platform(arch: &str, machine: &str) -> Platform {
        Platform {
            caps: fallback(arch, machine, "qemu"),
            arch: arch.into(),
            machine: machine.into(),
            from_host: false,
            os: None,
        }
    }

    #[test]
    fn cdrom_and_disk_buses_follow_virt_install() {
        let q35 = fallback_platform("x86_64", "q35");
        assert_eq!((q35.cdrom_bus(), q35.disk_bus()), ("sata".into(), "virtio".into()));
        let pc = fallback_platform("x86_64", "pc");
        assert_eq!(pc.cdrom_bus(), "ide");
        let arm = fallback_platform("aarch64", "virt");
        assert_eq!(arm.cdrom_bus(), "scsi");
        assert!(arm.needs_efi());
        assert!(arm.check_bus("bus", "ide").is_err());
        assert_eq!(arm.default_display(), None);
        assert_eq!(q35.default_display(), Some("spice".into()));
        // Without an OS that has virtio-gpu: qxl with SPICE, bochs with UEFI, else vga.
        assert_eq!(q35.default_video(true, false), Some("qxl".into()));
        assert_eq!(q35.default_video(false, true), Some("bochs".into()));
        assert_eq!(q35.default_video(false, false), Some("vga".into()));
        assert_eq!(arm.default_video(false, true), Some("virtio".into()));
        assert!(q35.supports_tpm_emulator());
    }
}
