//! Undefining a VM, optionally with its storage: a volume that backs another
//! volume or is another VM's disk is kept.
use rhai::plugin::*;
use rhai::{Array, Map, NativeCallContext};
use virt::storage_vol::StorageVol;
use virt::sys;

use super::{domain_xml, spec, Vm};
use crate::api::args::{self, Fields};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::Host;
use crate::runtime::journal;
use crate::runtime::ErrorKind;
use crate::xml::domain::{Disk, Domain};
use crate::xml::tree::Element;

/// Volumes that back another volume (as its backing store) or another VM's disk.
fn volume_in_use_elsewhere(host: &Host, path: &str, own_uuid: &str) -> Option<String> {
    let conn = host.conn();
    if let Ok(doms) = conn.list_all_domains(0) {
        for dom in doms {
            if dom.uuid_string().ok().as_deref() == Some(own_uuid) {
                continue;
            }
            if let Ok(xml) = domain_xml(&dom, true) {
                if let Ok((d, _)) = Domain::parse(&xml) {
                    if d.disks.iter().any(|x| x.source.as_deref() == Some(path)) {
                        return Some(format!("it is a disk of VM {}", d.name));
                    }
                }
            }
        }
    }
    if let Ok(pools) = conn.list_all_storage_pools(0) {
        for pool in pools {
            for vol in pool.list_all_volumes(0).unwrap_or_default() {
                let Ok(xml) = vol.xml_desc(0) else { continue };
                let Ok(tree) = Element::parse(&xml) else {
                    continue;
                };
                if tree
                    .path(&["backingStore", "path"])
                    .map(|p| p.text())
                    .as_deref()
                    == Some(path)
                {
                    return Some(format!(
                        "it backs volume {}",
                        vol.path().unwrap_or_default()
                    ));
                }
            }
        }
    }
    None
}

/// `undefine`'s options.
struct UndefineOptions {
    /// The disk targets whose volumes go: empty for every disk but CD-ROMs.
    remove_storage: Option<Vec<String>>,
    nvram: bool,
    snapshots: bool,
}

impl UndefineOptions {
    fn read(opts: &Map) -> Result<UndefineOptions, ScriptError> {
        let f = Fields::new("", opts);
        let remove_storage = match f.raw("remove_storage") {
            None => None,
            Some(v) => {
                if let Ok(b) = v.as_bool() {
                    b.then(Vec::new)
                } else if let Some(a) = v.read_lock::<Array>() {
                    Some(a.iter().map(|t| t.to_string()).collect())
                } else {
                    return Err(ScriptError::invalid(
                        "remove_storage",
                        args::show(v),
                        "must be true/false or an array of disk targets",
                    ));
                }
            }
        };
        let nvram = f.boolean("nvram")?.unwrap_or(false);
        let snapshots = f.boolean("snapshots")?.unwrap_or(false);
        f.finish()?;
        Ok(UndefineOptions {
            remove_storage,
            nvram,
            snapshots,
        })
    }

    /// The undefine flags: managed save images always go with the VM.
    fn flags(&self) -> u32 {
        let mut flags = sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
        if self.nvram {
            flags |= sys::VIR_DOMAIN_UNDEFINE_NVRAM;
        }
        if self.snapshots {
            flags |= sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        }
        flags
    }
}

/// The persistent definition, typed.
fn definition(vm: &Vm, ctx: &NativeCallContext) -> ScriptResult<Domain> {
    let xml = domain_xml(&vm.raw, true).script(ctx)?;
    Domain::parse(&xml)
        .map(|(d, _)| d)
        .map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(ctx))
}

/// The volumes of the disks with `targets` (all but CD-ROMs when empty) as
/// (path, volume), and the ones kept because something else uses them, with why.
fn storage_to_remove(
    vm: &Vm,
    targets: &[String],
    ctx: &NativeCallContext,
) -> ScriptResult<(Vec<(String, StorageVol)>, Array)> {
    let name = vm.name();
    if vm.raw.is_active().unwrap_or(false) {
        return Err(ScriptError::invalid(
            "remove_storage",
            "true",
            format!("VM {name} is running: destroy or shut it down first"),
        )
        .at(ctx));
    }
    let d = definition(vm, ctx)?;
    if let Some(t) = targets
        .iter()
        .find(|t| !d.disks.iter().any(|x| &x.target == *t))
    {
        return Err(ScriptError::invalid(
            "remove_storage",
            t,
            format!("VM {name} has no disk with this target"),
        )
        .at(ctx));
    }
    let uuid = vm.raw.uuid_string().unwrap_or_default();
    let (mut volumes, mut kept) = (Vec::new(), Array::new());
    for disk in &d.disks {
        if !targets.is_empty() && !targets.contains(&disk.target) {
            continue;
        }
        if targets.is_empty() && disk.device == "cdrom" {
            continue; // installation media are not the VM's storage
        }
        let Some(vol) = disk_volume(vm, disk) else {
            continue;
        };
        let path = vol.path().unwrap_or_default();
        match volume_in_use_elsewhere(&vm.host, &path, &uuid) {
            Some(why) => kept.push(format!("{path}: {why}").into()),
            None => volumes.push((path, vol)),
        }
    }
    Ok((volumes, kept))
}

/// The storage volume behind a disk: a pool/volume source or a path.
fn disk_volume(vm: &Vm, disk: &Disk) -> Option<StorageVol> {
    let conn = vm.host.conn();
    match (&disk.pool, &disk.volume, &disk.source) {
        (Some(p), Some(v), _) => conn
            .lookup_storage_pool_by_name(p)
            .and_then(|p| p.lookup_storage_vol_by_name(v))
            .ok(),
        (_, _, Some(path)) => conn.lookup_storage_vol_by_path(path).ok(),
        _ => None,
    }
}

/// The VM's own cloud-init seed goes with it: it is nothing without the VM,
/// and it sits in a pool of the host, not on this machine.
fn add_own_seed(vm: &Vm, volumes: &mut Vec<(String, StorageVol)>) {
    let seed_name = spec::seed_volume_name(&vm.name());
    let Some((d, _)) = domain_xml(&vm.raw, true)
        .ok()
        .and_then(|x| Domain::parse(&x).ok())
    else {
        return;
    };
    let uuid = vm.raw.uuid_string().unwrap_or_default();
    for disk in d.disks.iter().filter(|x| x.device == "cdrom") {
        let Some(src) = &disk.source else { continue };
        let ours = std::path::Path::new(src)
            .file_name()
            .is_some_and(|f| f == seed_name.as_str());
        if !ours || volumes.iter().any(|(p, _)| p == src) {
            continue;
        }
        if let Ok(vol) = vm.host.conn().lookup_storage_vol_by_path(src) {
            if volume_in_use_elsewhere(&vm.host, src, &uuid).is_none() {
                volumes.push((src.clone(), vol));
            }
        }
    }
}

/// Undefine the VM itself, journaled with its definition for an undo.
fn undefine_definition(
    vm: &Vm,
    opts: &UndefineOptions,
    ctx: &NativeCallContext,
) -> ScriptResult<()> {
    let (name, flags) = (vm.name(), opts.flags());
    // Saving the definition for an undo only pays inside a transaction.
    let xml = if journal::wants_undo() {
        domain_xml(&vm.raw, true).ok()
    } else {
        None
    };
    if let Err(e) = vm.raw.undefine_flags(flags) {
        // Drivers without flag support (or without NVRAM) take the plain call.
        if vm.raw.undefine().is_err() {
            return Err(e).script(ctx);
        }
    }
    let host = vm.host.clone();
    journal::record(
        "undefine_vm",
        format!("vm {name}"),
        xml.map(|x| -> journal::Undo {
            Box::new(move || host.conn().define_domain_xml(&x).map(|_| ()))
        }),
    );
    Ok(())
}

#[export_module(manifest)]
pub mod vm_undefine_api {
    use super::*;

    /// Remove the VM's definition (`virsh undefine`); a running VM keeps running
    /// as a transient one. Returns `#{ removed_volumes: [] }`: the VM's own
    /// cloud-init seed goes with it, and so does the installer kernel and
    /// initrd fetched for an install boot that has not run yet (`define_vm`
    /// with a URL `location`).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// vm.undefine();
    /// assert(HOST.find_vm("test") == ());
    /// ```
    #[rhai_fn(name = "undefine", pure, return_raw)]
    pub fn undefine(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Map> {
        undefine_with(ctx, vm, Map::new())
    }

    /// Undefine with options: `remove_storage` (true: every disk that is a
    /// storage volume; or an array of targets like `["vda"]`), `nvram` (remove
    /// UEFI variables), `snapshots` (remove snapshot metadata). Returns
    /// `#{ removed_volumes, kept }`: a volume that backs another volume or is a
    /// disk of another VM is never removed, and `kept` says why.
    ///
    /// ```rhai
    /// let vm = HOST.define_vm(#{ name: "gone", virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }] });
    /// let r = vm.undefine(#{ remove_storage: true, nvram: true });
    /// assert_eq(r.removed_volumes.len(), 1);
    /// ```
    #[rhai_fn(name = "undefine", pure, return_raw)]
    pub fn undefine_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Map> {
        let opts = UndefineOptions::read(&opts).at(&ctx)?;
        let (mut volumes, kept) = match &opts.remove_storage {
            Some(targets) => storage_to_remove(vm, targets, &ctx)?,
            None => (Vec::new(), Array::new()),
        };
        add_own_seed(vm, &mut volumes);
        // A URL install's fetched installer, waiting for a first start that
        // will not come now.
        let installer = crate::api::vm::phases::recorded(&vm.raw)
            .map(|phase| phase.scratch)
            .unwrap_or_default();
        undefine_definition(vm, &opts, &ctx)?;
        let mut removed = Array::new();
        crate::api::vm::phases::remove_scratch(vm.host.conn(), &installer);
        removed.extend(installer.into_iter().map(Into::into));
        for (path, vol) in volumes {
            vol.delete(0).script(&ctx)?;
            journal::record("delete_volume", format!("volume {path}"), None);
            removed.push(path.into());
        }
        let mut m = Map::new();
        m.insert("removed_volumes".into(), removed.into());
        m.insert("kept".into(), kept.into());
        Ok(m)
    }
}
