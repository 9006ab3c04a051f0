//! The devices and settings virt-install 4.1 adds to a new VM that the spec
//! does not give (virtinst/guest.py `set_defaults`: `_add_default_*`,
//! `_add_spice_*`, `_add_q35_pcie_controllers`, clock.py, pm.py; video.py,
//! sound.py, tpm.py `default_model`). A key the spec gives always wins, and
//! `"none"` (`sound`, `rng`, `tpm`, `video`, `graphics`, `memballoon`)
//! refuses a default; a USB controller of model `"none"` refuses the USB
//! devices (tablet, keyboard, SPICE redirection), as virt-install's
//! `--controller usb,model=none`.
//!
//! Only a spec that gives `os` gets them all (virtio video, RNG, balloon,
//! USB 3 by the OS; clock, pm and spare PCIe ports by the platform). Without
//! `os`, a VM keeps virtscript's documented defaults and libvirt's: only a
//! display brings its devices (video, tablet, the USB controller they need,
//! SPICE's sound and redirection). See "Differences from virt-install" in
//! create_vm's documentation.
use super::caps::Platform;
use crate::api::args::Fields;
use crate::xml::domain::{Clock, Controller, Domain, Input, Memballoon, Pm, Redirdev, Rng, Sound, Tpm, Video};

/// virt-install's `num_pcie_root_ports`: spare PCIe slots for hot-plug.
pub const PCIE_ROOT_PORTS: usize = 14;

fn usb_disabled(d: &Domain) -> bool {
    let usb: Vec<&Controller> = d
        .controllers
        .iter()
        .filter(|c| c.controller_type == "usb")
        .collect();
    !usb.is_empty() && usb.iter().all(|c| c.model.as_deref() == Some("none"))
}

fn controller(kind: &str, model: &str) -> Controller {
    Controller {
        controller_type: kind.into(),
        model: Some(model.into()),
        ..Controller::default()
    }
}

/// The USB controllers virt-install adds (guest.py `_add_default_usb_controller`):
/// on x86 qemu-xhci when the OS (`os`) supports USB 3, else (and without
/// `os`, as virt-install's "generic") the ICH9 USB 2 set; qemu-xhci on
/// ARM/RISC-V `virt` and pseries.
fn usb_controllers(p: &Platform) -> Vec<Controller> {
    let usb3 = if p.is_x86() {
        p.os.as_ref().is_some_and(|os| os.usb3)
    } else if p.is_virt_machine() || p.machine.starts_with("pseries") {
        true
    } else {
        return Vec::new();
    };
    if usb3 {
        let mut c = controller("usb", "qemu-xhci");
        c.ports = Some(15);
        return vec![c];
    }
    let mut set = vec![controller("usb", "ich9-ehci1")];
    for (i, model) in ["ich9-uhci1", "ich9-uhci2", "ich9-uhci3"].iter().enumerate() {
        let mut c = controller("usb", model);
        c.master_startport = Some(2 * i as u32);
        set.push(c);
    }
    set
}

/// Apply the defaults to `d`, whose graphics, firmware and controllers are
/// already planned.
pub fn apply(f: &Fields, p: &Platform, d: &mut Domain) {
    let x86 = p.is_x86();
    let pseries = p.machine.starts_with("pseries");
    let os = p.os.as_ref();
    let uefi = d.os.firmware.as_deref() == Some("efi");
    let spice = d.graphics.iter().any(|g| g.graphics_type == "spice");
    // The machines virt-install gives devices by their platform (not the OS).
    let modern = x86 || p.is_virt_machine() || p.arch.starts_with("s390") || pseries;

    // Video with every display (video.py default_model).
    if !d.graphics.is_empty() && d.videos.is_empty() && !f.has("video") {
        if let Some(model) = p.default_video(spice, uefi) {
            d.videos.push(Video {
                model,
                ..Video::default()
            });
        }
    }
    let display = !d.graphics.is_empty();
    if (os.is_some() || display) && !d.controllers.iter().any(|c| c.controller_type == "usb") {
        d.controllers.extend(usb_controllers(p));
    }
    let usb_off = usb_disabled(d);
    // A USB tablet (and keyboard where there is no PS/2) with a display.
    if d.inputs.is_empty() && !d.graphics.is_empty() && !usb_off {
        let mut kinds = Vec::new();
        if x86 {
            kinds.push("tablet");
        }
        if p.is_virt_machine() || pseries {
            kinds.extend(["tablet", "keyboard"]);
        }
        for kind in kinds {
            d.inputs.push(Input {
                input_type: kind.into(),
                bus: Some("usb".into()),
            });
        }
    }
    if let Some(os) = os.filter(|_| modern) {
        if os.virtio_rng && d.rngs.is_empty() && !f.has("rng") {
            d.rngs.push(Rng {
                model: "virtio".into(),
                backend: "random".into(),
                path: Some("/dev/urandom".into()),
                ..Rng::default()
            });
        }
        if os.virtio_balloon && d.memballoon.is_none() {
            d.memballoon = Some(Memballoon {
                model: "virtio".into(),
            });
        }
    }
    // A TPM with UEFI, the sign of a modern platform (guest.py _add_default_tpm).
    if uefi && d.tpms.is_empty() && !f.has("tpm") && p.supports_tpm_emulator() {
        d.tpms.push(Tpm {
            // CRB where the host has it, else libvirt's choice for the arch.
            model: p
                .caps
                .tpm
                .has("model", "tpm-crb")
                .then(|| "tpm-crb".to_owned()),
            backend: "emulator".into(),
            version: None,
        });
    }
    if x86 && os.is_some() {
        if d.clock.is_none() {
            let localtime = os.is_some_and(|o| o.localtime);
            d.clock = Some(Clock::x86(if localtime { "localtime" } else { "utc" }));
        }
        if d.pm.is_none() {
            d.pm = Some(Pm {
                suspend_to_mem: Some(false),
                suspend_to_disk: Some(false),
            });
        }
    }
    // PCIe slots for devices plugged in later (q35 and `virt`).
    let pcie = p.machine.contains("q35") || p.is_virt_machine();
    if pcie && os.is_some() && !d.controllers.iter().any(|c| c.controller_type == "pci") {
        d.controllers.push(controller("pci", "pcie-root"));
        for _ in 0..PCIE_ROOT_PORTS {
            d.controllers.push(controller("pci", "pcie-root-port"));
        }
    }
    if spice {
        if x86 && d.features.vmport.is_none() {
            d.features.vmport = Some(false);
        }
        if d.sounds.is_empty() && !f.has("sound") {
            d.sounds.push(Sound {
                model: if pcie { "ich9" } else { "ich6" }.into(),
                codecs: Vec::new(),
            });
        }
        if d.redirdevs.is_empty() && !usb_off && x86 {
            d.redirdevs = vec![Redirdev::spice_usb(), Redirdev::spice_usb()];
        }
    }
}
