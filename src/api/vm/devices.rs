//! Attaching and detaching disks and NICs, with a config-only fallback for
//! drivers that have no device hot-plug calls.
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};

use super::{affect_flags, device_tree, domain_xml, live_model, spec, Vm, AFFECT_CONFIG};
use crate::api::args::Fields;
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::runtime::journal;
use crate::xml::tree::Element;

/// Attach (or detach) a device. Drivers without device hot-plug calls (the test
/// driver) still get config-only changes, through an edit of the definition.
fn change_device(vm: &Vm, xml: &str, flags: u32, attach: bool) -> Result<(), virt::error::Error> {
    let res = if attach {
        vm.raw.attach_device_flags(xml, flags)
    } else {
        vm.raw.detach_device_flags(xml, flags)
    };
    match res {
        Err(e)
            if flags == AFFECT_CONFIG && e.code() == virt::error::ErrorNumber::NoSupport.into() =>
        {
            let Ok(device) = Element::parse(xml) else {
                return Err(e);
            };
            let mut tree = match Element::parse(&domain_xml(&vm.raw, true)?) {
                Ok(t) => t,
                Err(_) => return Err(e),
            };
            let devices = tree.ensure_child("devices");
            if attach {
                devices.push(device);
            } else {
                let mut gone = false;
                devices.remove_elements(|el| {
                    let hit = !gone && same_device(el, &device);
                    gone |= hit;
                    hit
                });
                if !gone {
                    return Err(e);
                }
            }
            vm.host.conn().define_domain_xml(&tree.to_xml()).map(|_| ())
        }
        other => other,
    }
}

/// Whether `el` is the device `wanted` names (same kind and MAC or target).
fn same_device(el: &Element, wanted: &Element) -> bool {
    if el.name != wanted.name {
        return false;
    }
    let mac = |e: &Element| {
        e.child("mac")
            .and_then(|m| m.attr("address"))
            .map(str::to_ascii_lowercase)
    };
    let target = |e: &Element| {
        e.child("target")
            .and_then(|t| t.attr("dev"))
            .map(str::to_owned)
    };
    match el.name.as_str() {
        "interface" => mac(el).is_some() && mac(el) == mac(wanted),
        "disk" => target(el).is_some() && target(el) == target(wanted),
        _ => el == wanted,
    }
}

/// A device spec without `live` and `config`, which are the call's
/// (`affect_flags`), not the device's.
fn without_affect_keys(spec: &Map) -> Map {
    let mut device = spec.clone();
    device.remove("live");
    device.remove("config");
    device
}

#[export_module(manifest)]
pub mod vm_devices_api {
    use super::*;

    /// Add a NIC: `#{ network | bridge | direct, mac, model, live, config }`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "nic1", virt_type: "qemu", pxe: true });
    /// vm.attach_interface(#{ network: "default", mac: "52:54:00:aa:bb:cc", model: "e1000" });
    /// assert(vm.interfaces().some(|n| n.mac == "52:54:00:aa:bb:cc"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn attach_interface(ctx: NativeCallContext, vm: &mut Vm, spec: Map) -> ScriptResult<()> {
        let nic_spec = Dynamic::from(without_affect_keys(&spec));
        let nic = spec::plan_interface(vm.host.conn(), "interface", &nic_spec).at(&ctx)?;
        let f = Fields::new("", &spec);
        let flags = affect_flags(vm, Some(&f)).at(&ctx)?;
        change_device(vm, &nic.to_element().to_xml(), flags, true).script(&ctx)?;
        journal::record("attach_interface", format!("vm {}", vm.name()), None);
        Ok(())
    }

    /// Remove the NIC with MAC address `mac`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "nic2", virt_type: "qemu", pxe: true });
    /// vm.attach_interface(#{ network: "default", mac: "52:54:00:aa:bb:cd" });
    /// vm.detach_interface("52:54:00:aa:bb:cd");
    /// assert(!vm.interfaces().some(|n| n.mac == "52:54:00:aa:bb:cd"));
    /// ```
    #[rhai_fn(name = "detach_interface", pure, return_raw)]
    pub fn detach_interface(ctx: NativeCallContext, vm: &mut Vm, mac: &str) -> ScriptResult<()> {
        detach_interface_with(ctx, vm, mac, Map::new())
    }

    /// `detach_interface(mac, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "nic3", virt_type: "qemu", pxe: true });
    /// vm.attach_interface(#{ network: "default", mac: "52:54:00:aa:bb:ce", config: true });
    /// vm.detach_interface("52:54:00:aa:bb:ce", #{ config: true });
    /// assert_eq(vm.interfaces().len(), 1);
    /// ```
    #[rhai_fn(name = "detach_interface", pure, return_raw)]
    pub fn detach_interface_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        mac: &str,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        let flags = affect_flags(vm, Some(&f)).at(&ctx)?;
        f.finish().at(&ctx)?;
        let tree = device_tree(vm, flags, &ctx)?;
        let el = tree
            .child("devices")
            .and_then(|d| {
                d.children_named("interface").find(|i| {
                    i.child("mac")
                        .and_then(|m| m.attr("address"))
                        .is_some_and(|a| a.eq_ignore_ascii_case(mac))
                })
            })
            .cloned()
            .ok_or_else(|| {
                ScriptError::invalid(
                    "mac",
                    mac,
                    format!("VM {} has no NIC with this MAC", vm.name()),
                )
                .at(&ctx)
            })?;
        change_device(vm, &el.to_xml(), flags, false).script(&ctx)?;
        journal::record(
            "detach_interface",
            format!("vm {} nic {mac}", vm.name()),
            None,
        );
        Ok(())
    }

    /// Add a disk: `#{ volume }`, `#{ path }` or `#{ pool, size }` (created), with
    /// `bus`, `cache`, `readonly`, `shareable`, `device`, and `live`/`config`.
    /// A `path` outside the storage pools and /var/lib/libvirt/{images,boot,isos}
    /// needs `allow_path: true`.
    /// Returns the target it got (`"vdb"`).
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "d1", virt_type: "qemu", pxe: true });
    /// let t = vm.attach_disk(#{ path: "/var/lib/libvirt/images/extra.img" });
    /// assert_eq(t, "vda");
    /// assert(vm.disks().some(|d| d.target == t));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn attach_disk(ctx: NativeCallContext, vm: &mut Vm, spec: Map) -> ScriptResult<String> {
        let disk_spec = without_affect_keys(&spec);
        let f = Fields::new("", &spec);
        let flags = affect_flags(vm, Some(&f)).at(&ctx)?;
        let (d, _) = live_model(vm, &ctx)?;
        let mut taken = std::collections::BTreeSet::new();
        let platform = spec::Platform::of_domain(vm.host.conn(), &d);
        let (mut disk, nv) = spec::plan_disk(
            vm.host.conn(),
            "disk",
            &Dynamic::from(disk_spec),
            &d.name,
            &d,
            &mut taken,
            false,
            &platform,
        )
        .at(&ctx)?;
        let mut created = None;
        if let Some(nv) = nv {
            let vol = vm
                .host
                .conn()
                .lookup_storage_pool_by_name(&nv.pool)
                .and_then(|p| virt::storage_vol::StorageVol::create_xml(&p, &nv.xml, 0))
                .script(&ctx)?;
            disk.source = vol.path().ok();
            let undo = vol.clone();
            journal::record(
                "create_volume",
                format!("volume {}/{}", nv.pool, nv.name),
                Some(Box::new(move || undo.delete(0))),
            );
            created = Some(vol);
        }
        if let Err(e) = change_device(vm, &disk.to_element().to_xml(), flags, true) {
            if let Some(vol) = created {
                let _ = vol.delete(0);
            }
            return Err(e).script(&ctx);
        }
        journal::record(
            "attach_disk",
            format!("vm {} disk {}", d.name, disk.target),
            None,
        );
        Ok(disk.target)
    }

    /// Remove the disk with target `target` (the volume stays).
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "d2", virt_type: "qemu", pxe: true });
    /// let t = vm.attach_disk(#{ path: "/var/lib/libvirt/images/x.img" });
    /// vm.detach_disk(t);
    /// assert(!vm.disks().some(|d| d.target == t));
    /// ```
    #[rhai_fn(name = "detach_disk", pure, return_raw)]
    pub fn detach_disk(ctx: NativeCallContext, vm: &mut Vm, target: &str) -> ScriptResult<()> {
        detach_disk_with(ctx, vm, target, Map::new())
    }

    /// `detach_disk(target, #{ live, config })`.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "d3", virt_type: "qemu", pxe: true });
    /// let t = vm.attach_disk(#{ pool: "default-pool", size: "1G", config: true });
    /// vm.detach_disk(t, #{ config: true });
    /// assert_eq(vm.disks().len(), 0);
    /// ```
    #[rhai_fn(name = "detach_disk", pure, return_raw)]
    pub fn detach_disk_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        target: &str,
        opts: Map,
    ) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        let flags = affect_flags(vm, Some(&f)).at(&ctx)?;
        f.finish().at(&ctx)?;
        let tree = device_tree(vm, flags, &ctx)?;
        let el = tree
            .child("devices")
            .and_then(|d| {
                d.children_named("disk")
                    .find(|x| x.child("target").and_then(|t| t.attr("dev")) == Some(target))
            })
            .cloned()
            .ok_or_else(|| {
                ScriptError::invalid(
                    "target",
                    target,
                    format!("VM {} has no disk with this target", vm.name()),
                )
                .at(&ctx)
            })?;
        change_device(vm, &el.to_xml(), flags, false).script(&ctx)?;
        journal::record(
            "detach_disk",
            format!("vm {} disk {target}", vm.name()),
            None,
        );
        Ok(())
    }
}
