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
mod copy;
mod intent;
mod plan;

use crate::runtime::ErrorKind;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};

use crate::api::args::{show, Fields};
use crate::api::error::AtExt;
use crate::api::error::{ScriptError, ScriptResult};
use crate::api::pool::{check_name, Pool};
use crate::api::vm::Vm;
use crate::api::volume::{CloneMode, Volume};
use crate::runtime::journal;
use crate::xml::clone::CloneEdits;
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
    /// `false`: a fully allocated copy (`sparse: false`, virt-clone `--nonsparse`).
    sparse: bool,
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

/// What the options of one clone say (clone_many passes `name` per clone).
pub struct CloneOptions {
    pub name: Option<String>,
    pub storage: CloneMode,
    pub storage_text: String,
    pub files: Vec<(String, Dynamic)>,
    pub macs: Vec<(String, String)>,
    pub start: bool,
    pub allow_running: bool,
    /// `(field, target)` of every disk the clone shares instead of copying.
    pub skip_copy: Vec<(String, String)>,
    /// `files` name existing volumes to use as they are (nothing is copied).
    pub preserve_data: bool,
    /// `false`: copies are fully allocated.
    pub sparse: bool,
}

/// Read a clone's options from `f` (whose caller has read its own keys, like
/// clone_many's `prefix`), then refuse the keys nobody asked for.
pub fn parse_options(f: &Fields) -> Result<CloneOptions, ScriptError> {
    let name = f.string("name")?;
    let storage_text = f.string("storage")?.unwrap_or_else(|| "auto".into());
    let files = f
        .array("files")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("files[{i}]"), v))
        .collect();
    let mac_list = f.array("macs")?.unwrap_or_default();
    let start = f.boolean("start")?.unwrap_or(false);
    let allow_running = f.boolean("allow_running")?.unwrap_or(false);
    let skip_list = f.array("skip_copy")?.unwrap_or_default();
    let preserve_data = f.boolean("preserve_data")?.unwrap_or(false);
    let sparse = f.boolean("sparse")?.unwrap_or(true);
    let storage_given = f.has("storage");
    f.finish()?;
    if let Some(n) = &name {
        check_name("name", n)?;
    }
    let storage = CloneMode::parse(&storage_text).ok_or_else(|| {
        ScriptError::invalid(
            "storage",
            &storage_text,
            format!("must be one of: {}", CloneMode::NAMES.join(", ")),
        )
    })?;
    let mut skip_copy = Vec::new();
    for (i, v) in skip_list.into_iter().enumerate() {
        let field = format!("skip_copy[{i}]");
        if !v.is_string() {
            return Err(ScriptError::invalid(
                &field,
                show(&v),
                format!(
                    "must be a disk target like \"vdb\", not {}",
                    v.type_name()
                ),
            ));
        }
        skip_copy.push((field, v.to_string()));
    }
    if preserve_data && storage_given {
        return Err(ScriptError::invalid(
            "storage",
            &storage_text,
            "preserve_data: true copies nothing, so there is no storage mode to choose; drop one of them",
        ));
    }
    if !sparse {
        crate::api::volume::check_nonsparse("storage", storage, &storage_text)?;
        if preserve_data {
            return Err(ScriptError::invalid(
                "sparse",
                "false",
                "preserve_data: true copies nothing, so there is no copy to allocate; drop one of them",
            ));
        }
    }
    let mut macs = Vec::new();
    for (i, v) in mac_list.into_iter().enumerate() {
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
        start,
        allow_running,
        skip_copy,
        preserve_data,
        sparse,
    })
}

fn valid_mac(mac: &str) -> bool {
    mac.len() == 17
        && mac.split(':').count() == 6
        && mac
            .split(':')
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

/// A random (version 4) UUID.
pub fn random_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A random MAC with QEMU's `52:54:00` prefix, not in `taken`.
pub fn random_mac(taken: &HashSet<String>) -> String {
    loop {
        let mut b = [0u8; 3];
        // The OS's generator; without one no MAC is safe to pick.
        getrandom::fill(&mut b).expect("the operating system's random number generator");
        let mac = format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
        if !taken.contains(&mac) {
            return mac;
        }
    }
}

/// `vm.clone(opts)`.
pub fn clone_vm(ctx: &NativeCallContext, vm: &Vm, opts: &Map) -> ScriptResult<Vm> {
    let opts = parse_options(&Fields::new("", opts)).at(ctx)?;
    intent::recover(vm).at(ctx)?;
    let plan = plan::plan(vm, &opts, &mut Reserved::default()).at(ctx)?;
    let intent = intent::begin(vm, std::slice::from_ref(&plan)).at(ctx)?;
    let made = match copy::execute(ctx, plan) {
        Ok(made) => made,
        Err(e) => {
            // Undone already; when the daemon is gone the record stays for the re-run.
            let _ = intent.end();
            return Err(e);
        }
    };
    if let Err(e) = intent.end() {
        made.undo();
        return Err(e.at(ctx));
    }
    Ok(made.commit())
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
    if f.has("preserve_data") {
        return Err(ScriptError::invalid(
            "preserve_data",
            show(&opts["preserve_data"]),
            "is per clone (each clone needs its own existing files): use vm.clone with files",
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
    let mut base = parse_options(&f).at(ctx)?;
    intent::recover(vm).at(ctx)?;
    let mut reserved = Reserved::default();
    let mut plans = Vec::new();
    for i in 1..=n {
        let name = format!("{prefix}-{i}");
        if plan::domain_exists(vm, &name) {
            return Err(ScriptError::invalid(
                "prefix",
                &prefix,
                format!("a VM named {name} already exists"),
            )
            .at(ctx));
        }
        base.name = Some(name);
        plans.push(plan::plan(vm, &base, &mut reserved).at(ctx)?);
    }
    let count = plans.len();
    let intent = intent::begin(vm, &plans).at(ctx)?;
    let slots: Vec<Mutex<Option<ClonePlan>>> =
        plans.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let results: Vec<Mutex<Option<ScriptResult<copy::Made>>>> =
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
                    let result = copy::execute(ctx, plan);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    let mut made = Vec::with_capacity(count);
    let mut errors = Array::new();
    let mut first = String::new();
    let mut lost = false;
    for (i, slot) in results.into_iter().enumerate() {
        match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(Ok(m)) => made.push(m),
            Some(Err(err)) => {
                if let EvalAltResult::ErrorTerminated(..) = *err {
                    made.into_iter().for_each(copy::Made::undo);
                    let _ = intent.end();
                    return Err(err);
                }
                lost |= matches!(&*err, EvalAltResult::ErrorRuntime(v, _)
                    if crate::api::error::is_connection_error(v));
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
        if let Err(e) = intent.end() {
            made.into_iter().for_each(copy::Made::undo);
            return Err(e.at(ctx));
        }
        return Ok(made
            .into_iter()
            .map(|m| Dynamic::from(m.commit()))
            .collect());
    }
    let failed = errors.len();
    if lost {
        // Nothing can be removed now: the record on the source stays, and
        // the next clone from it finishes the undo.
        return Err(ScriptError::new(
            ErrorKind::CloneMany,
            format!(
                "{failed} of {count} clones failed: the connection to libvirt was lost; what was \
                 made is recorded on VM {} and removed by the next clone from it; first: {first}",
                vm.name()
            ),
        )
        .with("errors", errors)
        .with("connection_lost", true)
        .at(ctx));
    }
    let kept = made.len();
    made.into_iter().for_each(copy::Made::undo);
    let _ = intent.end();
    Err(ScriptError::new(
        ErrorKind::CloneMany,
        format!("{failed} of {count} clones failed, and the {kept} made were removed; first: {first}"),
    )
    .with("errors", errors)
    .at(ctx))
}
#[export_module(manifest)]
pub mod vm_clone_api {
    use super::*;

    /// Clone a shut-off VM like `virt-clone --auto-clone`: a new name (`web-clone`,
    /// `web-clone1`, ...; a clone of `web-clone` is `web-clone1`, not
    /// `web-clone-clone`), UUID (also the SMBIOS one) and MACs (random
    /// `52:54:00:..`, unique on the host), no title, graphics ports back to
    /// automatic, log files, the guest-agent socket and UEFI NVRAM renamed or
    /// copied; every writable disk cloned (`web.qcow2` → `web-clone.qcow2`),
    /// read-only and shareable disks (ISOs) shared. Storage as
    /// `clone(#{ storage: "auto" })`. Snapshots are not cloned (neither their
    /// metadata nor a qcow2's internal snapshots), as with virt-clone.
    ///
    /// Where the result differs from virt-clone 4.1's, on purpose:
    /// - `<sysinfo>`'s SMBIOS `uuid` entry gets the new UUID; virt-clone keeps
    ///   the old one and libvirt then refuses the clone ("UUID mismatch").
    /// - Serial/console `<log file>`s are renamed after the clone
    ///   (`web-serial.log` → `web-clone-serial.log`); virt-clone keeps them, so
    ///   both VMs would write one log.
    /// - A unix channel's socket path that does not contain its target name is
    ///   renamed the same way; virt-clone keeps it, so the two VMs could not run
    ///   at once. (A path that contains it is dropped for libvirt to name, as
    ///   virt-clone does.) A fixed spice `tlsPort` and a `websocket` port go
    ///   back to automatic too; virt-clone resets only `port`.
    /// - A disk file whose name contains the source's name gets the clone's in
    ///   its place (`web-data.img` → `web-clone-data.img`), any other one the
    ///   clone's name as a suffix (`disk.img` → `disk-web-clone.img`), so every
    ///   file names its VM; virt-clone renames only a file named exactly after
    ///   the VM and appends `-clone` to the others (`web-data-clone.img`).
    /// - A `type='volume'` disk stays one (new pool/volume); virt-clone turns
    ///   it into a `type='file'` disk.
    /// - The source's UEFI variables (boot entries, enrolled keys) are copied
    ///   to `{clone}_VARS.fd` beside them, also when the NVRAM is a plain file
    ///   or (`<os firmware='efi'>`) not named in the definition; virt-clone
    ///   copies only an NVRAM that is a storage volume, and the clone otherwise
    ///   starts from the firmware's empty template.
    /// - A qcow2 copy keeps the source's image features; virt-clone makes it
    ///   as virt-install makes new volumes, adding `lazy_refcounts`.
    /// - A paused VM can be cloned with `allow_running` (virt-clone refuses
    ///   every VM that is not shut off), and a transient VM is refused saying
    ///   so (virt-clone: "Domain to clone must be shutoff.").
    ///
    /// ```rhai
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }], networks: ["default"] });
    /// let copy = web.clone();
    /// assert_eq(copy.name, "web-clone");
    /// assert(copy.uuid != web.uuid);
    /// assert_eq(web.clone().name, "web-clone1");
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone_auto(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Vm> {
        crate::api::vm::clone::clone_vm(&ctx, vm, &Map::new())
    }

    /// Clone with options, as virt-clone's: `name` (default automatic),
    /// `storage` (`"auto"`: reflink where the filesystem can, else a full copy;
    /// `"full"`; `"linked"`: qcow2 overlays backed by the source's disks,
    /// instant, but the source must then stay unchanged; `"reflink"`: a
    /// copy-on-write clone, which needs both files on one filesystem that
    /// supports it, like btrfs or xfs), `files` (per disk to copy, in order: a
    /// path in a pool's directory, a volume name in the source disk's pool, or
    /// `"pool/name"`), `macs` (per interface in order; the rest random
    /// `52:54:00:..`, unique on the host), `start`, `allow_running` (clone a
    /// PAUSED VM; its writable disks only from a disk-only snapshot's frozen
    /// state, linked). Validates everything before making anything; if a step
    /// fails midway, what was made is removed. Returns the new `Vm`.
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
    ///
    /// `skip_copy: ["vdb"]` (virt-clone `--skip-copy`): the clone shares these
    /// disks (by target) with the source instead of copying them, also a disk
    /// in no storage pool. Read-only and shareable disks (ISOs) are always
    /// shared.
    ///
    /// ```rhai
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }, #{ pool: "default-pool", size: "4G" }] });
    /// let c = web.clone(#{ name: "web2", skip_copy: ["vdb"] });
    /// assert_eq(c.disks().map(|d| d.source), ["/default-pool/web2.qcow2", "/default-pool/web-1.qcow2"]);
    /// ```
    ///
    /// `preserve_data: true` (virt-clone `--preserve-data`): `files` name
    /// existing volumes, one per disk to copy (a name, `"pool/name"`, a path or
    /// a volume object), and the clone uses them as they are: nothing is copied,
    /// nothing is created but the VM, and rolling the clone back keeps them.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }] });
    /// let disk = pool.create_volume(#{ name: "prepared.qcow2", capacity: "1G", format: "qcow2" });
    /// let c = web.clone(#{ name: "web2", preserve_data: true, files: [disk] });
    /// assert_eq(c.disks()[0].source, "/default-pool/prepared.qcow2");
    /// assert_eq(pool.volumes().len(), 2);
    /// ```
    ///
    /// `sparse: false` (virt-clone `--nonsparse`): fully allocated copies
    /// (allocation = capacity: libvirt allocates the whole file and writes zeros
    /// as zeros; a qcow2 copy is preallocated), so the guest cannot run out of
    /// host space later. The default copies only what holds data, except
    /// that a fully allocated (preallocated) disk stays fully allocated in the
    /// clone (virt-clone gives each copy its source's allocation). `storage`
    /// `"auto"` then means a full copy; `"linked"` and `"reflink"` share blocks
    /// and are refused with it.
    ///
    /// ```rhai
    /// let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    ///     disks: [#{ pool: "default-pool", size: "1G" }] });
    /// web.clone(#{ name: "web2", sparse: false });
    /// let v = HOST.pool("default-pool").volume("web2.qcow2");
    /// assert_eq(v.allocation, v.capacity);
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone_with(ctx: NativeCallContext, vm: &mut Vm, opts: Map) -> ScriptResult<Vm> {
        crate::api::vm::clone::clone_vm(&ctx, vm, &opts)
    }

    /// Make `n` clones named `{prefix}-1` .. `{prefix}-n` (default prefix
    /// `{name}-clone`) in parallel on up to `--jobs` threads, returned in order.
    /// Options as `clone` (`storage`, `start`, `allow_running`, `skip_copy`,
    /// `sparse`) plus `prefix`; `files`, `macs` and `preserve_data` are per
    /// clone, so only `clone` takes them.
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
