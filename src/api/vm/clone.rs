//! `vm.clone(...)` and `vm.clone_many(n, ...)`: virt-clone's semantics on top
//! of the volume clone modes. A clone is PLANNED first (every check, every
//! name, MAC and volume chosen, nothing created), then EXECUTED; an execution
//! that fails midway removes what it made, so nothing of the clone is left.
//!
//! Running sources: a shut-off VM clones as it is. A paused VM clones only
//! with `allow_running: true`, and then only disks that cannot change under
//! the copy: read-only/shareable disks (shared anyway) and writable disks
//! whose live image is an overlay (after `vm.snapshot(name, #{ disk_only:
//! true })`): such a disk is cloned `linked` from the overlay's backing file,
//! the frozen snapshot state. Any other writable disk of a paused VM is
//! refused, saying to shut the VM down or take a disk-only snapshot.
use crate::runtime::ErrorKind;
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};
use virt::storage_vol::StorageVol;
use virt::sys;

use crate::api::args::{show, Fields};
use crate::api::error::AtExt;
use crate::api::error::{LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::pool::{check_name, is_local, with_pool_retry, Pool};
use crate::api::vm::Vm;
use crate::api::volume::{check_new_volume, clone_volume, delete_quietly, CloneMode, Volume};
use crate::runtime::journal;
use crate::xml::clone::{
    apply_clone, interface_macs, rename_path, split_ext, CloneEdits, NewDiskSource,
};
use crate::xml::domain::{Disk, Domain};
use crate::xml::storage::VolumeXml;
use crate::xml::tree::Element;

/// Names, MACs and volumes already promised to clones being planned (for
/// `clone_many`, where none of them exists yet when the next is planned).
#[derive(Default)]
pub struct Reserved {
    /// The host's MACs, read once per batch of clones.
    host_macs: Option<HashSet<String>>,
    names: HashSet<String>,
    macs: HashSet<String>,
    volumes: HashSet<(String, String)>,
}

/// One writable disk to copy.
struct DiskJob {
    index: usize,
    target: String,
    src: Volume,
    src_doc: VolumeXml,
    pool: Pool,
    name: String,
    mode: CloneMode,
}

enum NvramJob {
    /// The NVRAM file is a storage volume: clone it (full) into its pool.
    Volume {
        src: Volume,
        src_doc: Box<VolumeXml>,
        pool: Pool,
        name: String,
    },
    /// A local file: copy it.
    File { from: String, to: String },
    /// Nothing to copy (never booted, or not reachable): libvirt makes the
    /// new file from the firmware's template at first start.
    Fresh,
}

/// A clone, decided in full before anything is made.
pub struct ClonePlan {
    src: Vm,
    tree: Element,
    edits: CloneEdits,
    disks: Vec<DiskJob>,
    nvram: Option<(NvramJob, String)>,
    start: bool,
}

impl ClonePlan {
    pub fn name(&self) -> &str {
        &self.edits.name
    }
}

/// Where libvirt's QEMU driver keeps NVRAM files it names itself.
const NVRAM_DIR: &str = "/var/lib/libvirt/qemu/nvram";

const OPTION_KEYS: &[&str] = &["name", "storage", "files", "macs", "start", "allow_running"];

/// What the options of one clone say (clone_many passes `name` per clone).
pub struct CloneOptions {
    pub name: Option<String>,
    pub storage: CloneMode,
    pub storage_text: String,
    pub files: Vec<(String, Dynamic)>,
    pub macs: Vec<(String, String)>,
    pub start: bool,
    pub allow_running: bool,
}

pub fn parse_options(opts: &Map, extra: &[&str]) -> Result<CloneOptions, ScriptError> {
    let f = Fields::new("", opts);
    let known: Vec<&str> = OPTION_KEYS.iter().chain(extra).copied().collect();
    f.only(&known)?;
    let name = f.string("name")?;
    if let Some(n) = &name {
        check_name("name", n)?;
    }
    let storage_text = f.string("storage")?.unwrap_or_else(|| "auto".into());
    let storage = CloneMode::parse(&storage_text).ok_or_else(|| {
        ScriptError::invalid(
            "storage",
            &storage_text,
            format!("must be one of: {}", CloneMode::NAMES.join(", ")),
        )
    })?;
    let files = f
        .array("files")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("files[{i}]"), v))
        .collect();
    let mut macs = Vec::new();
    for (i, v) in f.array("macs")?.unwrap_or_default().into_iter().enumerate() {
        let field = format!("macs[{i}]");
        if !v.is_string() {
            return Err(ScriptError::invalid(
                &field,
                show(&v),
                format!("must be a MAC address string, not {}", v.type_name()),
            ));
        }
        let mac = v.to_string().to_ascii_lowercase();
        if !valid_mac(&mac) {
            return Err(ScriptError::invalid(
                &field,
                &mac,
                "must look like 52:54:00:12:34:56",
            ));
        }
        let first = u8::from_str_radix(&mac[..2], 16).unwrap_or(1);
        if first & 1 == 1 {
            return Err(ScriptError::invalid(
                &field,
                &mac,
                "is a multicast address; a NIC needs a unicast one (like 52:54:00:...)",
            ));
        }
        macs.push((field, mac));
    }
    Ok(CloneOptions {
        name,
        storage,
        storage_text,
        files,
        macs,
        start: f.boolean("start")?.unwrap_or(false),
        allow_running: f.boolean("allow_running")?.unwrap_or(false),
    })
}

fn valid_mac(mac: &str) -> bool {
    mac.len() == 17
        && mac.split(':').count() == 6
        && mac
            .split(':')
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !filled {
        // Never expected on Linux; still better than a fixed value.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ (std::process::id() as u128) << 64;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
    buf
}

/// A random (version 4) UUID.
pub fn random_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// A random MAC with QEMU's `52:54:00` prefix, not in `taken`.
pub fn random_mac(taken: &HashSet<String>) -> String {
    loop {
        let b = random_bytes::<3>();
        let mac = format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
        if !taken.contains(&mac) {
            return mac;
        }
    }
}

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

fn domain_exists(vm: &Vm, name: &str) -> bool {
    vm.host.conn().lookup_domain_by_name(name).is_ok()
}

/// `web-clone`, then `web-clone-1`, `web-clone-2`, ... (virt-clone --auto-clone).
fn auto_name(vm: &Vm, base: &str, reserved: &Reserved) -> String {
    let free = |n: &str| !reserved.names.contains(n) && !domain_exists(vm, n);
    let first = format!("{base}-clone");
    if free(&first) {
        return first;
    }
    (1..)
        .map(|i| format!("{base}-clone-{i}"))
        .find(|n| free(n))
        .unwrap_or(first)
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

/// Decide everything about one clone of `vm`; creates nothing.
pub fn plan(
    vm: &Vm,
    opts: &CloneOptions,
    reserved: &mut Reserved,
) -> Result<ClonePlan, ScriptError> {
    let src_name = vm.name();
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

    // Disks.
    let mut jobs = Vec::new();
    let mut files = opts.files.iter();
    let mut claimed: Vec<(String, String)> = Vec::new();
    for (index, disk) in dom.disks.iter().enumerate() {
        if is_shared(disk) || (disk.source.is_none() && disk.volume.is_none()) {
            continue; // shared (ISOs, read-only, shareable) or empty drive
        }
        let file = files.next();
        let mut mode = opts.storage;
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
        let src_pool = src.pool().map_err(|e| ScriptError::libvirt(&e))?;
        let src_file = src.name();
        let (pool, vol_name) = match file {
            Some((field, value)) => {
                if !value.is_string() {
                    return Err(ScriptError::invalid(
                        field,
                        show(value),
                        format!("must be a path or a volume name, not {}", value.type_name()),
                    ));
                }
                let text = value.to_string();
                let (pool, vol_name) = if text.starts_with('/') {
                    let dir = parent_dir(&text);
                    let pool = pool_for_dir(vm, dir).ok_or_else(|| {
                        ScriptError::invalid(
                            field,
                            &text,
                            format!(
                                "no running storage pool has the directory {dir}; define a dir pool there \
                                 or give a path in one (the source disk is in pool {})",
                                src_pool.name()
                            ),
                        )
                    })?;
                    (pool, text.rsplit('/').next().unwrap_or_default().to_owned())
                } else {
                    (src_pool.clone(), text.clone())
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
        let format = if mode == CloneMode::Linked {
            "qcow2".to_owned()
        } else {
            src_doc
                .target
                .format
                .clone()
                .unwrap_or_else(|| "raw".into())
        };
        claimed.push((pool.name(), vol_name.clone()));
        let _ = format;
        jobs.push(DiskJob {
            index,
            target: disk.target.clone(),
            src,
            src_doc,
            pool,
            name: vol_name,
            mode,
        });
    }
    if let Some((field, value)) = files.next() {
        return Err(ScriptError::invalid(
            "files",
            format!("{} entries", opts.files.len()),
            format!(
                "VM {src_name} has {} writable disk(s) to clone, so {field} ({}) has no disk",
                jobs.len(),
                show(value)
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
            let new_path = rename_path(&path, &src_name, &name);
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
        disks: Vec::new(),
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

/// What a clone made so far, removed again when a later step fails.
#[derive(Default)]
pub struct Made {
    volumes: Vec<Arc<StorageVol>>,
    files: Vec<String>,
    domain: Option<virt::domain::Domain>,
    host: Option<crate::api::Host>,
    what: String,
    started: bool,
}

impl Made {
    /// Remove everything made (best effort, in reverse order).
    pub fn undo(self) {
        if let Some(dom) = self.domain {
            let _ = dom.destroy();
            if dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM).is_err() {
                let _ = dom.undefine();
            }
        }
        for vol in self.volumes.iter().rev() {
            delete_quietly(vol);
        }
        for f in self.files {
            let _ = std::fs::remove_file(f);
        }
    }

    /// Record the finished clone in the journal (one change, undone as a
    /// whole) and hand out the new VM.
    pub fn commit(self) -> Vm {
        let Made {
            volumes,
            files,
            domain,
            host,
            what,
            started,
        } = self;
        let (Some(dom), Some(host)) = (domain, host) else {
            unreachable!("a committed clone has its domain");
        };
        let name = dom.name().unwrap_or_default();
        let undo_dom = dom.clone();
        journal::record(
            "clone_vm",
            what,
            Some(Box::new(move || {
                let _ = undo_dom.destroy();
                if undo_dom
                    .undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM)
                    .is_err()
                {
                    undo_dom.undefine()?;
                }
                for vol in volumes.iter().rev() {
                    with_pool_retry(|| vol.delete(0))?;
                }
                for f in files {
                    let _ = std::fs::remove_file(f);
                }
                Ok(())
            })),
        );
        if started {
            let undo = dom.clone();
            journal::record(
                "start_vm",
                format!("vm {name}"),
                Some(Box::new(move || undo.destroy())),
            );
        }
        Vm {
            host,
            raw: dom.into(),
        }
    }
}

/// Make the planned clone; on any failure remove everything it made. The
/// result is recorded in the journal by [`Made::commit`].
pub fn execute(ctx: &NativeCallContext, mut plan: ClonePlan) -> ScriptResult<Made> {
    let described: Vec<String> = plan
        .disks
        .iter()
        .map(|d| format!("{}/{}", d.pool.name(), d.name))
        .collect();
    let mut made = Made {
        host: Some(plan.src.host.clone()),
        what: format!(
            "vm {} from {} (volumes: {})",
            plan.edits.name,
            plan.edits.old_name,
            if described.is_empty() {
                "none".into()
            } else {
                described.join(", ")
            }
        ),
        started: plan.start,
        ..Made::default()
    };
    match execute_steps(ctx, &mut plan, &mut made) {
        Ok(()) => Ok(made),
        Err(e) => {
            made.undo();
            Err(e)
        }
    }
}

fn execute_steps(
    ctx: &NativeCallContext,
    plan: &mut ClonePlan,
    made: &mut Made,
) -> ScriptResult<()> {
    let host = plan.src.host.clone();
    for job in &plan.disks {
        if let Some(reason) = crate::runtime::stop::requested() {
            return Err(crate::api::error::stopped(ctx, reason));
        }
        let (vol, _) = clone_volume(
            ctx,
            &job.src,
            &job.src_doc,
            &job.pool,
            &job.name,
            job.mode,
            None,
        )
        .map_err(|e| with_disk(*e, &job.target))?;
        made.volumes.push(vol.raw.clone());
        let path = vol.raw.path().script(ctx)?;
        let format = vol
            .definition()
            .ok()
            .and_then(|d| d.target.format)
            .unwrap_or_else(|| "raw".into());
        plan.edits.disks.push((
            job.index,
            NewDiskSource {
                path,
                pool: job.pool.name(),
                volume: job.name.clone(),
                format,
            },
        ));
    }
    if let Some((job, new_path)) = &plan.nvram {
        match job {
            NvramJob::Volume {
                src,
                src_doc,
                pool,
                name,
            } => {
                let (vol, _) = clone_volume(ctx, src, src_doc, pool, name, CloneMode::Full, None)?;
                made.volumes.push(vol.raw.clone());
            }
            NvramJob::File { from, to } => {
                std::fs::copy(from, to).map_err(|e| {
                    ScriptError::new(
                        ErrorKind::Io,
                        format!("cannot copy the NVRAM {from} to {to}: {e}"),
                    )
                    .with("field", "nvram")
                    .with("value", to.clone())
                    .at(ctx)
                })?;
                made.files.push(to.clone());
                // Same owner and mode as the source (QEMU runs as another user).
                if let Ok(meta) = std::fs::metadata(from) {
                    use std::os::unix::fs::MetadataExt;
                    let _ = std::fs::set_permissions(to, meta.permissions());
                    let _ = std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()));
                }
            }
            NvramJob::Fresh => {
                let _ = new_path;
            }
        }
    }
    let mut tree = plan.tree.clone();
    apply_clone(&mut tree, &plan.edits);
    let dom = host.conn().define_domain_xml(&tree.to_xml()).script(ctx)?;
    made.domain = Some(dom.clone());
    if plan.start {
        dom.create().script(ctx)?;
    }
    Ok(())
}

/// Say which disk a volume error was about.
fn with_disk(err: EvalAltResult, target: &str) -> Box<EvalAltResult> {
    match err {
        EvalAltResult::ErrorRuntime(value, pos) => {
            let value = match value.read_lock::<Map>().map(|m| m.clone()) {
                Some(mut m) => {
                    let msg = m.get("message").map(|v| v.to_string()).unwrap_or_default();
                    m.insert(
                        "message".into(),
                        format!("cloning disk {target}: {msg}").into(),
                    );
                    m.insert("disk".into(), target.to_owned().into());
                    Dynamic::from(m)
                }
                None => value,
            };
            Box::new(EvalAltResult::ErrorRuntime(value, pos))
        }
        other => Box::new(other),
    }
}

/// `vm.clone(opts)`.
pub fn clone_vm(ctx: &NativeCallContext, vm: &Vm, opts: &Map) -> ScriptResult<Vm> {
    let opts = parse_options(opts, &[]).at(ctx)?;
    let plan = plan(vm, &opts, &mut Reserved::default()).at(ctx)?;
    Ok(execute(ctx, plan)?.commit())
}

/// `vm.clone_many(n, opts)`: plan every clone (names `{prefix}-1` ..), then
/// make them on a bounded pool of threads; results in order. When any fails,
/// the ones that were made are removed too and one error lists the failures.
pub fn clone_many(ctx: &NativeCallContext, vm: &Vm, n: i64, opts: &Map) -> ScriptResult<Array> {
    if !(1..=1000).contains(&n) {
        return Err(ScriptError::invalid("n", n, "must be between 1 and 1000").at(ctx));
    }
    let f = Fields::new("", opts);
    if f.has("name") {
        return Err(ScriptError::invalid(
            "name",
            show(&opts["name"]),
            "clone_many names clones {prefix}-1, {prefix}-2, ...: give prefix instead",
        )
        .at(ctx));
    }
    if f.has("files") || f.has("macs") {
        let key = if f.has("files") { "files" } else { "macs" };
        return Err(ScriptError::invalid(
            key,
            show(&opts[key]),
            "is per clone: use vm.clone for clones with chosen files or MACs",
        )
        .at(ctx));
    }
    let prefix = f
        .string("prefix")
        .at(ctx)?
        .unwrap_or_else(|| format!("{}-clone", vm.name()));
    check_name("prefix", &prefix).at(ctx)?;
    let mut base = parse_options(opts, &["prefix"]).at(ctx)?;
    let mut reserved = Reserved::default();
    let mut plans = Vec::new();
    for i in 1..=n {
        let name = format!("{prefix}-{i}");
        if domain_exists(vm, &name) {
            return Err(ScriptError::invalid(
                "prefix",
                &prefix,
                format!("a VM named {name} already exists"),
            )
            .at(ctx));
        }
        base.name = Some(name);
        plans.push(plan(vm, &base, &mut reserved).at(ctx)?);
    }
    let count = plans.len();
    let slots: Vec<Mutex<Option<ClonePlan>>> =
        plans.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let results: Vec<Mutex<Option<ScriptResult<Made>>>> =
        (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = crate::api::control::jobs().min(count);
    let host = journal::current_host();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                journal::set_current_host(&host);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count {
                        break;
                    }
                    let Some(plan) = slots[i].lock().unwrap_or_else(|e| e.into_inner()).take()
                    else {
                        continue;
                    };
                    let result = execute(ctx, plan);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut made = Vec::with_capacity(count);
    let mut errors = Array::new();
    let mut first = String::new();
    for (i, slot) in results.into_iter().enumerate() {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(m)) => made.push(m),
            Some(Err(err)) => {
                if let EvalAltResult::ErrorTerminated(..) = *err {
                    made.into_iter().for_each(Made::undo);
                    return Err(err);
                }
                let message = match &*err {
                    EvalAltResult::ErrorRuntime(v, _) => v
                        .read_lock::<Map>()
                        .and_then(|m| m.get("message").map(|m| m.to_string()))
                        .unwrap_or_else(|| v.to_string()),
                    other => other.to_string(),
                };
                if first.is_empty() {
                    first = format!("{prefix}-{}: {message}", i + 1);
                }
                let mut e = Map::new();
                e.insert("index".into(), (i as i64).into());
                e.insert("name".into(), format!("{prefix}-{}", i + 1).into());
                e.insert("message".into(), message.into());
                errors.push(e.into());
            }
            None => {}
        }
    }
    if errors.is_empty() {
        return Ok(made
            .into_iter()
            .map(|m| Dynamic::from(m.commit()))
            .collect());
    }
    let kept = made.len();
    made.into_iter().for_each(Made::undo);
    Err(ScriptError::new(
        ErrorKind::CloneMany,
        format!(
            "{} of {count} clones failed, and the {} made were removed; first: {first}",
            errors.len(),
            kept
        ),
    )
    .with("errors", errors)
    .at(ctx))
}
#[export_module(manifest)]
pub mod vm_clone_api {
    use super::*;

    /// Clone a shut-off VM like `virt-clone --auto-clone`: a new name (`web-clone`,
    /// `web-clone-1`, ...), UUID (also the SMBIOS one) and MACs, graphics ports
    /// back to automatic, log files, the guest-agent socket and UEFI NVRAM
    /// renamed or copied; every writable disk cloned, read-only and shareable
    /// disks (ISOs) shared. Storage as `clone(#{ storage: "auto" })`.
    ///
    /// ```rhai
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }], networks: ["default"] });
    /// let copy = web.clone();
    /// assert_eq(copy.name, "web-clone");
    /// assert(copy.uuid != web.uuid);
    /// assert_eq(web.clone().name, "web-clone-1");
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone_auto(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Vm> {
        crate::api::vm::clone::clone_vm(&ctx, vm, &Map::new())
    }

    /// Clone with options: `name` (default automatic), `storage` (`"auto"`:
    /// reflink where the filesystem can, else a full copy; `"full"`; `"linked"`:
    /// qcow2 overlays backed by the source's disks, instant, but the source must
    /// then stay unchanged; `"reflink"`), `files` (per writable disk in order: a
    /// target path in a pool's directory or a volume name in the source disk's
    /// pool), `macs` (per interface in order; the rest random `52:54:00:..`,
    /// unique on the host), `start`, `allow_running` (clone a PAUSED VM; its
    /// writable disks only from a disk-only snapshot's frozen state, linked).
    /// Validates everything before making anything; if a step fails midway,
    /// what was made is removed. Returns the new `Vm`.
    ///
    /// ```rhai
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }], networks: ["default"] });
    /// let db = web.clone(#{ name: "db", storage: "linked", files: ["db-root.qcow2"],
    ///     macs: ["52:54:00:12:34:56"] });
    /// assert_eq(db.disks()[0].source, "/default-pool/db-root.qcow2");
    /// assert_eq(db.interfaces()[0].mac, "52:54:00:12:34:56");
    /// assert_eq(HOST.pool("default-pool").volume("db-root.qcow2").backing.path,
    ///     "/default-pool/web.qcow2");
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Vm> {
        crate::api::vm::clone::clone_vm(&ctx, vm, &opts)
    }

    /// Make `n` clones named `{prefix}-1` .. `{prefix}-n` (default prefix
    /// `{name}-clone`) in parallel on up to `--jobs` threads, returned in order.
    /// Options as `clone` (`storage`, `start`, `allow_running`) plus `prefix`.
    /// Everything is planned (names, MACs, volumes) before anything is made;
    /// busy pools are retried with backoff. If any clone fails, the others are
    /// removed as well and the error lists the failures (`e.errors`).
    ///
    /// ```rhai
    /// let base = HOST.define_vm(#{ name: "base", memory: 256, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }], networks: ["default"] });
    /// let vms = base.clone_many(3, #{ prefix: "node", storage: "linked", start: true });
    /// assert_eq(vms.map(|v| v.name), ["node-1", "node-2", "node-3"]);
    /// assert(vms.all(|v| v.state == "running"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn clone_many(
        ctx: NativeCallContext,
        vm: &mut Vm,
        n: i64,
        opts: Map,
    ) -> ScriptResult<Array> {
        crate::api::vm::clone::clone_many(&ctx, vm, n, &opts)
    }
}
