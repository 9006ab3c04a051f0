//! Planning a clone: every check, name, MAC and volume decided before
//! anything is made.
use crate::runtime::ErrorKind;
use std::collections::HashSet;
use std::path::Path;

use rhai::Dynamic;
use virt::sys;

use crate::api::args::show;
use crate::api::error::ScriptError;
use crate::api::pool::{is_local, with_pool_retry, Pool};
use crate::api::vm::Vm;
use crate::api::volume::{check_new_volume, lookup_in, CloneMode, Volume};
use crate::runtime::suggest::closest;
use crate::xml::clone::{interface_macs, rename_path, split_ext, CloneEdits, NewDiskSource};
use crate::xml::domain::{Disk, Domain};
use crate::xml::tree::Element;

use super::{random_mac, random_uuid, CloneOptions, ClonePlan, DiskJob, NvramJob, Reserved};

/// Where libvirt's QEMU driver keeps NVRAM files it names itself.
const NVRAM_DIR: &str = "/var/lib/libvirt/qemu/nvram";

/// Every MAC any VM of the host uses: one XML call per domain (the live
/// definition of a running VM, the persistent one of a stopped VM).
fn host_macs(vm: &Vm) -> HashSet<String> {
    let mut macs = HashSet::new();
    for dom in vm.host.conn().list_all_domains(0).unwrap_or_default() {
        let Ok(xml) = dom.xml_desc(0) else { continue };
        let Ok(tree) = Element::parse(&xml) else {
            continue;
        };
        macs.extend(
            interface_macs(&tree)
                .into_iter()
                .flatten()
                .map(|m| m.to_ascii_lowercase()),
        );
    }
    macs
}

pub(super) fn domain_exists(vm: &Vm, name: &str) -> bool {
    vm.host.conn().lookup_domain_by_name(name).is_ok()
}

/// virt-clone --auto-clone's names: `web-clone`, then `web-clone1`,
/// `web-clone2`, ...; a source that is itself a clone numbers on:
/// `web-clone` gives `web-clone1` (the first free), `web-clone3` gives
/// `web-clone4`, never `web-clone-clone`.
fn auto_name(vm: &Vm, base: &str, reserved: &Reserved) -> String {
    let free = |n: &str| !reserved.names.contains(n) && !domain_exists(vm, n);
    let (stem, start, force_num) = clone_suffix(base);
    let first = format!("{stem}-clone");
    if !force_num && free(&first) {
        return first;
    }
    (start..)
        .map(|i| format!("{first}{i}"))
        .find(|n| free(n))
        .unwrap_or(first)
}

/// virt-clone's `-clone[1-9]*$`: `(name before it, first number, whether
/// the name ended so)`.
pub(super) fn clone_suffix(name: &str) -> (&str, u64, bool) {
    if let Some(at) = name.rfind("-clone") {
        let digits = &name[at + "-clone".len()..];
        if digits.bytes().all(|b| (b'1'..=b'9').contains(&b)) {
            let start = digits.parse::<u64>().map(|n| n + 1).unwrap_or(1);
            return (&name[..at], start, true);
        }
    }
    (name, 1, false)
}

fn volume_free(pool: &Pool, name: &str, reserved: &Reserved) -> bool {
    !reserved.volumes.contains(&(pool.name(), name.to_owned()))
        && pool.raw.lookup_storage_vol_by_name(name).is_err()
}

/// `stem.ext`, else `stem-1.ext`, `stem-2.ext`, ...
fn unique_volume_name(pool: &Pool, wanted: &str, reserved: &Reserved) -> String {
    if volume_free(pool, wanted, reserved) {
        return wanted.to_owned();
    }
    let (stem, ext) = split_ext(wanted);
    (1..)
        .map(|i| format!("{stem}-{i}{ext}"))
        .find(|n| volume_free(pool, n, reserved))
        .unwrap_or_else(|| wanted.to_owned())
}

fn wrap_pool(vm: &Vm, raw: virt::storage_pool::StoragePool) -> Pool {
    Pool {
        host: vm.host.clone(),
        raw: raw.into(),
    }
}

/// The running pool whose directory is `dir`.
fn pool_for_dir(vm: &Vm, dir: &str) -> Option<Pool> {
    let dir = dir.trim_end_matches('/');
    vm.host
        .conn()
        .list_all_storage_pools(sys::VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
        .unwrap_or_default()
        .into_iter()
        .map(|raw| wrap_pool(vm, raw))
        .find(|p| {
            p.definition()
                .ok()
                .and_then(|d| d.target.path)
                .is_some_and(|t| t.trim_end_matches('/') == dir)
        })
}

fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The storage volume at `path`; a plain file in a pool's directory that the
/// pool does not list yet is found after refreshing that pool.
fn volume_at(vm: &Vm, path: &str) -> Option<Volume> {
    let conn = vm.host.conn();
    if let Ok(raw) = conn.lookup_storage_vol_by_path(path) {
        return Some(crate::api::volume::wrap(&vm.host, raw));
    }
    let pool = pool_for_dir(vm, parent_dir(path))?;
    with_pool_retry(|| pool.raw.refresh(0)).ok()?;
    conn.lookup_storage_vol_by_path(path)
        .ok()
        .map(|raw| crate::api::volume::wrap(&vm.host, raw))
}

/// The volume behind a domain disk, or an error saying why it cannot be cloned.
fn disk_volume(vm: &Vm, disk: &Disk) -> Result<Volume, ScriptError> {
    let unclonable = |what: &str, why: String| {
        ScriptError::new(
            ErrorKind::Unsupported,
            format!("disk {}: {what} {why}", disk.target),
        )
        .with("field", "disk")
        .with("value", disk.target.clone())
    };
    if let (Some(pool), Some(volume)) = (&disk.pool, &disk.volume) {
        return vm
            .host
            .conn()
            .lookup_storage_pool_by_name(pool)
            .and_then(|p| p.lookup_storage_vol_by_name(volume))
            .map(|raw| crate::api::volume::wrap(&vm.host, raw))
            .map_err(|e| {
                unclonable(
                    &format!("{pool}/{volume}"),
                    format!("cannot be found: {}", e.message()),
                )
            });
    }
    let Some(path) = &disk.source else {
        return Err(unclonable("has no source", "to clone".into()));
    };
    volume_at(vm, path).ok_or_else(|| {
        unclonable(
            path,
            format!(
                "is not a volume of any running storage pool, so it cannot be cloned; \
                 define and start a dir pool for {} (HOST.define_pool(#{{ name, type: \"dir\", path: \"{}\" }})) \
                 or detach the disk before cloning",
                parent_dir(path),
                parent_dir(path)
            ),
        )
    })
}

fn is_shared(disk: &Disk) -> bool {
    disk.readonly || disk.shareable || matches!(disk.device.as_str(), "cdrom" | "floppy")
}

/// The backing file of a disk's live image (the state frozen by an external snapshot).
fn live_backing(vm: &Vm, target: &str) -> Option<String> {
    let xml = vm.raw.xml_desc(0).ok()?;
    let tree = Element::parse(&xml).ok()?;
    let disk = tree
        .child("devices")?
        .children_named("disk")
        .find(|d| d.child("target").and_then(|t| t.attr("dev")) == Some(target))?;
    let backing = disk.child("backingStore")?.child("source")?;
    backing
        .attr("file")
        .or_else(|| backing.attr("dev"))
        .map(str::to_owned)
}

/// What a `files[i]` value names.
enum FileRef {
    /// A volume object.
    Volume(Volume),
    /// An absolute path.
    Path(String),
    /// `pool/name` (`Some(pool)`) or a bare name, in the source disk's pool (`None`).
    InPool(Option<Pool>, String),
}

fn file_ref(vm: &Vm, field: &str, value: &Dynamic) -> Result<FileRef, ScriptError> {
    if let Some(v) = value.read_lock::<Volume>() {
        if v.host.uri() != vm.host.uri() {
            return Err(ScriptError::invalid(
                field,
                v.label(),
                format!(
                    "is a volume of {}, and the VM is on {}",
                    v.host.uri(),
                    vm.host.uri()
                ),
            ));
        }
        return Ok(FileRef::Volume(v.clone()));
    }
    if !value.is_string() {
        return Err(ScriptError::invalid(
            field,
            show(value),
            format!(
                "must be a path or a volume name (\"name\", \"pool/name\" or a volume), not {}",
                value.type_name()
            ),
        ));
    }
    let text = value.to_string();
    if text.starts_with('/') {
        return Ok(FileRef::Path(text));
    }
    let Some((pool, name)) = text.split_once('/') else {
        return Ok(FileRef::InPool(None, text));
    };
    match vm.host.conn().lookup_storage_pool_by_name(pool) {
        Ok(raw) => Ok(FileRef::InPool(Some(wrap_pool(vm, raw)), name.to_owned())),
        Err(_) => {
            let pools: Vec<String> = vm
                .host
                .conn()
                .list_all_storage_pools(0)
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.name().ok())
                .collect();
            let hint = closest(pool, pools.iter().map(String::as_str))
                .map(|best| format!("; did you mean \"{best}/{name}\"?"))
                .unwrap_or_default();
            Err(ScriptError::invalid(
                field,
                &text,
                format!("there is no storage pool named {pool}{hint}"),
            ))
        }
    }
}

/// A `files[i]` value as messages show it (a volume as `pool/name`).
fn file_text(value: &Dynamic) -> String {
    match value.read_lock::<Volume>() {
        Some(v) => v.label(),
        None => show(value),
    }
}

/// `preserve_data`: the existing volume `files[i]` names, as `disk`'s new
/// source, and its `(pool, name)`. Nothing is copied into it.
fn preserved_source(
    vm: &Vm,
    disk: &Disk,
    field: &str,
    value: &Dynamic,
    claimed: &[(String, String)],
) -> Result<(NewDiskSource, (String, String)), ScriptError> {
    let text = file_text(value);
    let missing = |why: String| {
        ScriptError::invalid(
            field,
            &text,
            format!(
                "{why}; preserve_data: true uses existing volumes as they are (create it first, \
                 or drop preserve_data to copy the disk into a new one)"
            ),
        )
    };
    let vol = match file_ref(vm, field, value)? {
        FileRef::Volume(v) => {
            // The object may be older than the volume's deletion.
            v.raw
                .info()
                .map_err(|_| missing(format!("volume {} no longer exists", v.label())))?;
            v
        }
        FileRef::Path(path) => volume_at(vm, &path).ok_or_else(|| {
            missing("there is no volume at this path in any running storage pool".into())
        })?,
        FileRef::InPool(pool, name) => {
            let pool = match pool {
                Some(p) => p,
                None => disk_volume(vm, disk)
                    .and_then(|v| v.pool().map_err(|e| ScriptError::libvirt(&e)))
                    .map_err(|_| {
                        ScriptError::invalid(
                            field,
                            &text,
                            format!(
                                "disk {} is in no storage pool to look the name up in: give \"pool/name\" or a path",
                                disk.target
                            ),
                        )
                    })?,
            };
            let _ = with_pool_retry(|| pool.raw.refresh(0));
            match lookup_in(&pool, &name).map_err(|e| ScriptError::libvirt(&e))? {
                Some(v) => v,
                None => {
                    let names = pool.raw.list_volumes().unwrap_or_default();
                    let hint = closest(&name, names.iter().map(String::as_str))
                        .map(|best| format!(" (did you mean \"{best}\"?)"))
                        .unwrap_or_default();
                    return Err(missing(format!(
                        "pool {} has no volume named {name}{hint}",
                        pool.name()
                    )));
                }
            }
        }
    };
    let path = vol.raw.path().map_err(|e| ScriptError::libvirt(&e))?;
    let pool = vol.pool_name();
    let key = (pool.clone(), vol.name());
    if claimed.contains(&key) {
        return Err(ScriptError::invalid(
            field,
            &text,
            "is already used for another disk of the clone",
        ));
    }
    let own = disk.source.as_deref() == Some(path.as_str())
        || (disk.pool.as_deref() == Some(pool.as_str())
            && disk.volume.as_deref() == Some(vol.name().as_str()));
    if own {
        return Err(ScriptError::invalid(
            field,
            &text,
            format!(
                "is disk {target}'s own volume: to share it with the clone, use skip_copy: [\"{target}\"]",
                target = disk.target
            ),
        ));
    }
    let format = vol
        .definition()?
        .target
        .format
        .unwrap_or_else(|| "raw".into());
    Ok((
        NewDiskSource {
            path,
            pool,
            volume: vol.name(),
            format,
        },
        key,
    ))
}

/// Decide everything about one clone of `vm`; creates nothing.
/// A VM whose recorded install boot (`define_vm` with a URL `location`)
/// has not run yet points at installer files fetched for it, which its first
/// start removes: a clone would boot (and remove) the same files.
fn refuse_pending_fetched_install(src_name: &str, tree: &Element) -> Result<(), ScriptError> {
    use crate::xml::{install, metadata};
    let fetched = tree
        .child("metadata")
        .into_iter()
        .flat_map(|m| m.elements())
        .filter(|el| metadata::in_namespace(el, install::NS))
        .any(|el| metadata::strip_ns(el).1.child("scratch").is_some());
    if fetched {
        return Err(ScriptError::new(
            ErrorKind::State,
            format!(
                "VM {src_name} has not run its install yet, and its first start boots (then \
                 removes) the installer fetched for it: start it once first, or drop the install \
                 with vm.set_metadata(\"{}\", ())",
                install::NS
            ),
        )
        .with("field", "state")
        .with("value", "install pending"));
    }
    Ok(())
}

pub fn plan(
    vm: &Vm,
    opts: &CloneOptions,
    reserved: &mut Reserved,
) -> Result<ClonePlan, ScriptError> {
    let src_name = vm.name();
    if !vm.raw.is_persistent().map_err(|e| ScriptError::libvirt(&e))? {
        // virt-clone says only "Domain to clone must be shutoff.", and a
        // transient VM that is shut off is gone.
        return Err(ScriptError::new(
            ErrorKind::State,
            format!(
                "VM {src_name} is transient (it has no persistent definition, so shutting it \
                 down removes it): define it first (HOST.define_vm_xml(vm.xml, #{{ allow_path: \
                 true }})), shut it down, then clone it"
            ),
        )
        .with("field", "state")
        .with("value", "transient"));
    }
    let state = crate::virt_ext::domain::state(&vm.raw).map_err(|e| ScriptError::libvirt(&e))?;
    let state = state.to_raw();
    let paused = state == sys::VIR_DOMAIN_PAUSED;
    if state != sys::VIR_DOMAIN_SHUTOFF {
        let what = crate::api::vm::state_name(virt::domain::DomainStateEnum::from_raw(state));
        if !paused {
            return Err(ScriptError::new(
                ErrorKind::State,
                format!(
                    "VM {src_name} is {what}: shut it down first (vm.shutdown()), or pause it \
                     (vm.suspend()) and clone with allow_running: true"
                ),
            )
            .with("field", "state")
            .with("value", what));
        }
        if !opts.allow_running {
            return Err(ScriptError::invalid(
                "allow_running",
                "false",
                format!("VM {src_name} is paused: pass allow_running: true to clone it anyway, or shut it down"),
            ));
        }
    }
    let name = match &opts.name {
        Some(n) => {
            if reserved.names.contains(n) || domain_exists(vm, n) {
                return Err(ScriptError::invalid(
                    "name",
                    n,
                    "a VM with this name already exists",
                ));
            }
            n.clone()
        }
        None => auto_name(vm, &src_name, reserved),
    };
    let xml = vm
        .raw
        .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)
        .map_err(|e| ScriptError::libvirt(&e))?;
    let (dom, tree) = Domain::parse(&xml).map_err(|e| {
        ScriptError::new(ErrorKind::Xml, format!("cannot read {src_name}'s XML: {e}"))
    })?;
    refuse_pending_fetched_install(&src_name, &tree)?;

    // Disks, virt-clone's three ways: shared (ISOs, read-only, shareable,
    // skip_copy), preserved (preserve_data: the given existing volume as it
    // is) or copied.
    let targets: Vec<&str> = dom.disks.iter().map(|d| d.target.as_str()).collect();
    let mut skipped: HashSet<&str> = HashSet::new();
    for (field, target) in &opts.skip_copy {
        if !targets.contains(&target.as_str()) {
            let hint = closest(target, targets.iter().copied())
                .map(|best| format!("did you mean \"{best}\"? "))
                .unwrap_or_default();
            let disks = if targets.is_empty() {
                "it has no disks".to_owned()
            } else {
                format!("its disks: {}", targets.join(", "))
            };
            return Err(ScriptError::invalid(
                field,
                target,
                format!("VM {src_name} has no disk with this target; {hint}({disks})"),
            ));
        }
        skipped.insert(target.as_str());
    }
    let to_copy: Vec<(usize, &Disk)> = dom
        .disks
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            !(is_shared(d)
                || (d.source.is_none() && d.volume.is_none())
                || skipped.contains(d.target.as_str()))
        })
        .collect();
    if opts.preserve_data && opts.files.len() < to_copy.len() {
        let names: Vec<&str> = to_copy.iter().map(|(_, d)| d.target.as_str()).collect();
        return Err(ScriptError::invalid(
            "files",
            format!("{} entries", opts.files.len()),
            format!(
                "preserve_data: true uses one existing volume per disk it would copy, and VM {src_name} \
                 has {} ({}); give one file each, or share a disk with skip_copy",
                names.len(),
                names.join(", ")
            ),
        ));
    }
    let mut jobs = Vec::new();
    let mut preserved = Vec::new();
    let mut files = opts.files.iter();
    let mut claimed: Vec<(String, String)> = Vec::new();
    for &(index, disk) in &to_copy {
        let file = files.next();
        if opts.preserve_data {
            let Some((field, value)) = file else {
                unreachable!("the count of files was checked")
            };
            let (new, key) = preserved_source(vm, disk, field, value, &claimed)?;
            claimed.push(key);
            preserved.push((index, new));
            continue;
        }
        let mut mode = opts.storage;
        if !opts.sparse && mode == CloneMode::Auto {
            // A reflink shares the source's blocks; a fully allocated copy is a full one.
            mode = CloneMode::Full;
        }
        let mut src = disk_volume(vm, disk)?;
        if paused {
            let frozen = live_backing(vm, &disk.target).and_then(|p| volume_at(vm, &p));
            match (opts.storage, frozen) {
                (CloneMode::Linked, Some(base)) => src = base,
                _ => {
                    return Err(ScriptError::invalid(
                        "allow_running",
                        "true",
                        format!(
                            "disk {} of paused VM {src_name} is writable and in use: shut the VM down, \
                             or take a disk-only snapshot (vm.snapshot(\"s\", #{{ disk_only: true }})) \
                             and clone with storage: \"linked\" from that state",
                            disk.target
                        ),
                    ))
                }
            }
            mode = CloneMode::Linked;
        }
        let src_doc = src.definition()?;
        // As virt-clone, which gives the copy the source's allocation: a
        // fully allocated (preallocated) disk stays so in the clone.
        let sparse = opts.sparse
            && !src
                .raw
                .info()
                .is_ok_and(|i| i.capacity > 0 && i.allocation >= i.capacity);
        let src_pool = src.pool().map_err(|e| ScriptError::libvirt(&e))?;
        let src_file = src.name();
        let (pool, vol_name) = match file {
            Some((field, value)) => {
                let text = show(value);
                let (pool, vol_name) = match file_ref(vm, field, value)? {
                    FileRef::Volume(v) => {
                        return Err(ScriptError::invalid(
                            field,
                            v.label(),
                            "is an existing volume, and a clone copies into a new one: give a new \
                             name, or pass preserve_data: true to use this volume as it is",
                        ))
                    }
                    FileRef::Path(path) => {
                        let dir = parent_dir(&path);
                        let pool = pool_for_dir(vm, dir).ok_or_else(|| {
                            ScriptError::invalid(
                                field,
                                &path,
                                format!(
                                    "no running storage pool has the directory {dir}; define a dir pool there \
                                     or give a path in one (the source disk is in pool {})",
                                    src_pool.name()
                                ),
                            )
                        })?;
                        (pool, path.rsplit('/').next().unwrap_or_default().to_owned())
                    }
                    FileRef::InPool(Some(pool), name) => (pool, name),
                    FileRef::InPool(None, name) => (src_pool.clone(), name),
                };
                check_new_volume(&pool, field, &vol_name)?;
                if reserved.volumes.contains(&(pool.name(), vol_name.clone()))
                    || claimed.contains(&(pool.name(), vol_name.clone()))
                {
                    return Err(ScriptError::invalid(
                        field,
                        &text,
                        "is already the target of another cloned disk",
                    ));
                }
                (pool, vol_name)
            }
            None => {
                let mut wanted = rename_path(&src_file, &src_name, &name);
                if mode == CloneMode::Linked && split_ext(&wanted).1 != ".qcow2" {
                    wanted = format!("{}.qcow2", split_ext(&wanted).0);
                }
                let mut r = Reserved::default();
                r.volumes.extend(reserved.volumes.iter().cloned());
                r.volumes.extend(claimed.iter().cloned());
                (src_pool.clone(), unique_volume_name(&src_pool, &wanted, &r))
            }
        };
        if !pool.is_active() {
            return Err(ScriptError::new(
                ErrorKind::Invalid,
                format!("pool {} is not running: start it first", pool.name()),
            ));
        }
        claimed.push((pool.name(), vol_name.clone()));
        jobs.push(DiskJob {
            index,
            target: disk.target.clone(),
            src,
            src_doc,
            pool,
            name: vol_name,
            mode,
            sparse,
        });
    }
    if let Some((field, value)) = files.next() {
        return Err(ScriptError::invalid(
            "files",
            format!("{} entries", opts.files.len()),
            format!(
                "VM {src_name} has {} writable disk(s) to clone, so {field} ({}) has no disk",
                to_copy.len(),
                file_text(value)
            ),
        ));
    }

    // MACs.
    let nics = interface_macs(&tree).len();
    if opts.macs.len() > nics {
        return Err(ScriptError::invalid(
            "macs",
            format!("{} addresses", opts.macs.len()),
            format!("VM {src_name} has {nics} network interface(s)"),
        ));
    }
    if reserved.host_macs.is_none() {
        reserved.host_macs = Some(host_macs(vm));
    }
    let mut taken = reserved.host_macs.clone().unwrap_or_default();
    taken.extend(reserved.macs.iter().cloned());
    let mut macs = Vec::new();
    for (field, mac) in &opts.macs {
        if taken.contains(mac) || macs.contains(mac) {
            return Err(ScriptError::invalid(
                field,
                mac,
                "is already used by a VM of this host",
            ));
        }
        macs.push(mac.clone());
    }
    while macs.len() < nics {
        let all: HashSet<String> = taken.iter().chain(macs.iter()).cloned().collect();
        macs.push(random_mac(&all));
    }

    // NVRAM.
    // With `<os firmware='efi'>` libvirt picks the NVRAM file at start
    // (`{nvram_dir}/{name}_VARS.fd`) and the definition does not name it.
    let auto_nvram = (dom.os.firmware.as_deref() == Some("efi") && is_local(&vm.host))
        .then(|| format!("{NVRAM_DIR}/{src_name}_VARS.fd"))
        .filter(|p| Path::new(p).exists());
    let nvram = match tree
        .path(&["os", "nvram"])
        .map(|n| n.text().trim().to_owned())
        .or(auto_nvram)
    {
        Some(path) if !path.is_empty() => {
            // virt-clone: `{the old file's directory}/{clone}_VARS.fd`.
            let new_path = format!("{}/{name}_VARS.fd", parent_dir(&path));
            let job = match vm.host.conn().lookup_storage_vol_by_path(&path) {
                Ok(raw) => {
                    let src = crate::api::volume::wrap(&vm.host, raw);
                    let pool = src.pool().map_err(|e| ScriptError::libvirt(&e))?;
                    let vol_name = new_path.rsplit('/').next().unwrap_or_default().to_owned();
                    check_new_volume(&pool, "nvram", &vol_name)?;
                    NvramJob::Volume {
                        src_doc: Box::new(src.definition()?),
                        src,
                        pool,
                        name: vol_name,
                    }
                }
                Err(_) if is_local(&vm.host) && Path::new(&path).exists() => {
                    if Path::new(&new_path).exists() {
                        return Err(ScriptError::invalid(
                            "nvram",
                            &new_path,
                            "the clone's NVRAM file already exists; remove it or choose another name",
                        ));
                    }
                    NvramJob::File {
                        from: path.clone(),
                        to: new_path.clone(),
                    }
                }
                Err(_) => NvramJob::Fresh,
            };
            Some((job, new_path))
        }
        _ => None,
    };

    reserved.names.insert(name.clone());
    reserved.macs.extend(macs.iter().cloned());
    reserved.volumes.extend(claimed);
    let edits = CloneEdits {
        old_name: src_name,
        name,
        uuid: random_uuid(),
        macs,
        disks: preserved,
        nvram: nvram.as_ref().map(|(_, p)| p.clone()),
    };
    Ok(ClonePlan {
        src: vm.clone(),
        tree,
        edits,
        disks: jobs,
        nvram,
        start: opts.start,
    })
}

#[cfg(test)]
mod tests {
    use super::clone_suffix;

    #[test]
    fn clone_names_number_on_like_virt_clone() {
        assert_eq!(clone_suffix("web"), ("web", 1, false));
        assert_eq!(clone_suffix("web-clone"), ("web", 1, true));
        assert_eq!(clone_suffix("web-clone3"), ("web", 4, true));
        // virt-clone's pattern has no 0: `-clone10` is not a clone number.
        assert_eq!(clone_suffix("web-clone10"), ("web-clone10", 1, false));
        assert_eq!(clone_suffix("web-clone-1"), ("web-clone-1", 1, false));
    }
}
