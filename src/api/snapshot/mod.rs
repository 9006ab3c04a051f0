//! `Snapshot` script object: domain snapshots (`virsh snapshot-*`). Internal
//! snapshots (in the qcow2 images) by default; external disk-only snapshots
//! (new qcow2 overlays) with `disk_only: true`.
mod object;
use crate::runtime::ErrorKind;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use virt::domain_snapshot::DomainSnapshot;
use virt::sys;

use super::args::Fields;
use super::error::{LibvirtResultExt, ScriptError, ScriptResult};
use super::pool::check_name;
use super::vm::Vm;
use crate::runtime::journal;
use crate::xml::domain::Domain;
use crate::xml::snapshot::{SnapshotDisk, SnapshotXml};

/// A libvirt domain snapshot plus the VM it belongs to.
#[derive(Clone)]
pub struct Snapshot {
    pub vm: Vm,
    pub raw: DomainSnapshot,
}

impl Snapshot {
    pub fn name(&self) -> String {
        self.raw.name().unwrap_or_default()
    }

    pub fn definition(&self) -> Result<SnapshotXml, ScriptError> {
        let xml = self
            .raw
            .xml_desc(sys::VIR_DOMAIN_SNAPSHOT_XML_SECURE)
            .map_err(|e| ScriptError::libvirt(&e))?;
        SnapshotXml::parse(&xml).map_err(|e| {
            ScriptError::new(
                ErrorKind::Xml,
                format!("cannot read the snapshot's XML: {e}"),
            )
        })
    }

    pub fn is_current(&self) -> bool {
        self.raw.is_current(0).unwrap_or(false)
    }

    /// `vm/name`, how messages refer to a snapshot.
    pub fn label(&self) -> String {
        format!("{}/{}", self.vm.name(), self.name())
    }

    /// Whether it is an external (disk-only or external memory) snapshot.
    pub fn is_external(&self) -> bool {
        self.definition().is_ok_and(|d| {
            d.disks
                .iter()
                .any(|x| x.snapshot.as_deref() == Some("external"))
                || d.memory.as_ref().is_some_and(|m| m.snapshot == "external")
        })
    }
}

fn wrap(vm: &Vm, raw: DomainSnapshot) -> Snapshot {
    Snapshot {
        vm: vm.clone(),
        raw,
    }
}

/// Parent-before-children order (depth first, siblings by creation time).
fn tree_order(vm: &Vm, all: Vec<DomainSnapshot>) -> Vec<Snapshot> {
    let mut items: Vec<(Snapshot, Option<String>, i64)> = all
        .into_iter()
        .map(|raw| {
            let s = wrap(vm, raw);
            let d = s.definition().ok();
            let parent = d.as_ref().and_then(|d| d.parent.clone());
            let created = d.and_then(|d| d.creation_time).unwrap_or(0);
            (s, parent, created)
        })
        .collect();
    items.sort_by_key(|(s, _, t)| (*t, s.name()));
    let names: Vec<String> = items.iter().map(|(s, _, _)| s.name()).collect();
    let mut out = Vec::new();
    fn visit(
        parent: Option<&str>,
        items: &[(Snapshot, Option<String>, i64)],
        names: &[String],
        out: &mut Vec<Snapshot>,
    ) {
        for (s, p, _) in items {
            let p = p.as_deref().filter(|p| names.iter().any(|n| n == p));
            if p == parent {
                out.push(s.clone());
                let name = s.name();
                visit(Some(&name), items, names, out);
            }
        }
    }
    visit(None, &items, &names, &mut out);
    out
}

fn refused(e: &virt::error::Error, advice: Option<&str>) -> ScriptError {
    let err = ScriptError::libvirt(e);
    match advice {
        Some(a) => err.with("message", format!("{}: {a}", e.message())),
        None => err,
    }
}

/// Advice for what libvirt refuses, by its message.
fn advice_for(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if m.contains("pflash") || m.contains("nvram") {
        Some("internal snapshots are not possible for UEFI VMs; take an external one with vm.snapshot(name, #{ disk_only: true }), or clone the VM instead")
    } else if m.contains("revert") && m.contains("external") {
        Some("this libvirt cannot revert to external snapshots (9.9 and later can); revert by hand with the overlay's backing file, or use internal snapshots (qcow2 disks)")
    } else if m.contains("delet") && m.contains("external") {
        Some("this libvirt cannot delete external snapshots (9.9 and later can); use delete(#{ metadata_only: true }) and remove the overlay files yourself")
    } else if m.contains("internal snapshot") && (m.contains("format") || m.contains("unsupported"))
    {
        Some("internal snapshots need qcow2 disks; take an external one with #{ disk_only: true }")
    } else {
        None
    }
}

fn create(ctx: &NativeCallContext, vm: &Vm, name: &str, opts: &Map) -> ScriptResult<Snapshot> {
    let f = Fields::new("", opts);
    f.only(&["description", "disk_only", "memory"])
        .map_err(|e| e.at(ctx))?;
    check_name("name", name).map_err(|e| e.at(ctx))?;
    let description = f.string("description").map_err(|e| e.at(ctx))?;
    let disk_only = f
        .boolean("disk_only")
        .map_err(|e| e.at(ctx))?
        .unwrap_or(false);
    let memory = f.boolean("memory").map_err(|e| e.at(ctx))?;
    if DomainSnapshot::lookup_by_name_ok(vm, name) {
        return Err(ScriptError::invalid(
            "name",
            name,
            format!("VM {} already has a snapshot by this name", vm.name()),
        )
        .at(ctx));
    }
    let active = vm.raw.is_active().unwrap_or(false);
    let xml = vm.raw.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE).script(ctx)?;
    let (dom, tree) =
        Domain::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(ctx))?;
    let mut doc = SnapshotXml::new(name);
    doc.description = description;
    let mut flags = 0;
    if disk_only {
        if memory == Some(true) {
            return Err(ScriptError::invalid(
                "memory",
                "true",
                "a disk-only snapshot has no memory state; leave out disk_only to save memory too",
            )
            .at(ctx));
        }
        flags |= sys::VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY;
        if active {
            flags |= sys::VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
        }
        for d in &dom.disks {
            let shared = d.readonly || d.shareable || d.device == "cdrom" || d.device == "floppy";
            let empty = d.source.is_none() && d.volume.is_none();
            doc.disks.push(SnapshotDisk {
                name: d.target.clone(),
                snapshot: Some(if shared || empty { "no" } else { "external" }.into()),
                disk_type: None,
                source: None,
                driver: None,
            });
        }
    } else {
        // Internal: every writable disk must be qcow2 (the snapshot lives inside it).
        if let Some(d) = dom.disks.iter().find(|d| {
            !(d.readonly || d.shareable || d.device == "cdrom" || d.device == "floppy")
                && (d.source.is_some() || d.volume.is_some())
                && d.format.as_deref().is_some_and(|f| f != "qcow2")
        }) {
            return Err(ScriptError::invalid(
                "disk_only",
                "false",
                format!(
                    "disk {} of VM {} is {}, and internal snapshots live inside qcow2 images; \
                     take an external snapshot with #{{ disk_only: true }}, or convert the disk to qcow2",
                    d.target,
                    vm.name(),
                    d.format.as_deref().unwrap_or("raw")
                ),
            )
            .at(ctx));
        }
        let uefi = tree.path(&["os", "nvram"]).is_some()
            || tree
                .path(&["os", "loader"])
                .is_some_and(|l| l.attr("type") == Some("pflash"))
            || dom.os.firmware.as_deref() == Some("efi");
        if uefi && vm.host.uri().starts_with("qemu") {
            return Err(ScriptError::invalid(
                "disk_only",
                "false",
                format!(
                    "VM {} boots with UEFI (NVRAM in pflash), and QEMU cannot take internal snapshots of it; \
                     take an external snapshot with #{{ disk_only: true }}, or clone the VM instead",
                    vm.name()
                ),
            )
            .at(ctx));
        }
        if active && memory == Some(false) {
            return Err(ScriptError::invalid(
                "memory",
                "false",
                "an internal snapshot of a running VM always saves its memory; use disk_only: true for disks only",
            )
            .at(ctx));
        }
        if !active && memory == Some(true) {
            return Err(ScriptError::invalid(
                "memory",
                "true",
                format!(
                    "VM {} is not running, so there is no memory to save",
                    vm.name()
                ),
            )
            .at(ctx));
        }
    }
    let raw = vm
        .raw
        .create_snapshot_xml(&doc.to_xml(), flags)
        .map_err(|e| refused(&e, advice_for(e.message())).at(ctx))?;
    let undo = raw.clone();
    let external = disk_only;
    journal::record(
        "create_snapshot",
        format!("snapshot {}/{name}", vm.name()),
        Some(Box::new(move || {
            if external {
                undo.delete(sys::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
            } else {
                undo.delete(0)
            }
        })),
    );
    Ok(wrap(vm, raw))
}

trait LookupOk {
    fn lookup_by_name_ok(vm: &Vm, name: &str) -> bool;
}

impl LookupOk for DomainSnapshot {
    fn lookup_by_name_ok(vm: &Vm, name: &str) -> bool {
        virt::domain::Domain::lookup_snapshot_by_name(&vm.raw, name, 0).is_ok()
    }
}

fn opt_string(v: Option<String>) -> Dynamic {
    v.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

#[export_module(manifest)]
pub mod snapshot_api {
    use super::*;

    pub type Snapshot = super::Snapshot;

    // ------------------------------------------------------------ on Vm

    /// Take a snapshot named `name`: an internal one (kept inside the qcow2
    /// disks; with the memory state when the VM runs), like `virsh snapshot-create-as`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// let s = vm.snapshot("before-upgrade");
    /// assert_eq(s.name, "before-upgrade");
    /// assert(s.current);
    /// ```
    #[rhai_fn(name = "snapshot", pure, return_raw)]
    pub fn snapshot(ctx: NativeCallContext, vm: &mut Vm, name: &str) -> ScriptResult<Snapshot> {
        create(&ctx, vm, name, &Map::new())
    }

    /// Take a snapshot with options: `description`; `disk_only: true` for an
    /// external snapshot (each writable disk continues in a new qcow2 overlay,
    /// ISOs are left alone; works for raw disks and UEFI VMs, where libvirt
    /// refuses internal ones); `memory` (`true`/`false`: whether a running VM's
    /// memory is saved; internal snapshots of running VMs always save it).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// let s = vm.snapshot("s1", #{ description: "clean install" });
    /// assert_eq(s.description, "clean install");
    /// assert_eq(s.state, "running");
    /// ```
    #[rhai_fn(name = "snapshot", pure, return_raw)]
    pub fn snapshot_with(
        ctx: NativeCallContext,
        vm: &mut Vm,
        name: &str,
        opts: Map,
    ) -> ScriptResult<Snapshot> {
        create(&ctx, vm, name, &opts)
    }

    /// All snapshots of the VM, parents before their children (depth first,
    /// siblings oldest first), like `virsh snapshot-list --tree`; each knows its
    /// `parent`, `children` and whether it is `current`. (The REPL prints them
    /// as a table sorted by name, as `virsh snapshot-list` does.)
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.snapshot("a");
    /// vm.snapshot("b");
    /// let all = vm.snapshots();
    /// assert_eq(all.map(|s| s.name), ["a", "b"]);
    /// assert_eq(all[1].parent.name, "a");
    /// assert(all[1].current);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn snapshots(ctx: NativeCallContext, vm: &mut Vm) -> ScriptResult<Array> {
        let all = vm.raw.list_all_snapshots(0).script(&ctx)?;
        Ok(tree_order(vm, all).into_iter().map(Dynamic::from).collect())
    }

    /// The snapshot named `name`; an error naming it when there is none.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.snapshot("s1");
    /// assert_eq(vm.snapshot_named("s1").name, "s1");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn snapshot_named(
        ctx: NativeCallContext,
        vm: &mut Vm,
        name: &str,
    ) -> ScriptResult<Snapshot> {
        match virt::domain::Domain::lookup_snapshot_by_name(&vm.raw, name, 0) {
            Ok(raw) => Ok(wrap(vm, raw)),
            Err(_) => Err(ScriptError::invalid(
                "name",
                name,
                format!("VM {} has no snapshot by this name", vm.name()),
            )
            .with_kind(ErrorKind::NotFound)
            .at(&ctx)),
        }
    }

    /// The current snapshot (the one the VM's state derives from), or `()`.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// assert(vm.current_snapshot() == ());
    /// vm.snapshot("s1");
    /// assert_eq(vm.current_snapshot().name, "s1");
    /// ```
    #[rhai_fn(pure)]
    pub fn current_snapshot(vm: &mut Vm) -> Dynamic {
        match vm.raw.current_snapshot(0) {
            Ok(raw) => Dynamic::from(wrap(vm, raw)),
            Err(_) => Dynamic::UNIT,
        }
    }

    // ------------------------------------------------------------ getters

    /// The snapshot's name.
    ///
    /// ```rhai
    /// assert_eq(HOST.vm("test").snapshot("s1").name, "s1");
    /// ```
    #[rhai_fn(get = "name", pure)]
    pub fn name(snap: &mut Snapshot) -> String {
        snap.name()
    }

    /// The description given when it was taken, or `()`.
    ///
    /// ```rhai
    /// let s = HOST.vm("test").snapshot("s1", #{ description: "before" });
    /// assert_eq(s.description, "before");
    /// ```
    #[rhai_fn(get = "description", pure, return_raw)]
    pub fn description(ctx: NativeCallContext, snap: &mut Snapshot) -> ScriptResult<Dynamic> {
        Ok(opt_string(
            snap.definition().map_err(|e| e.at(&ctx))?.description,
        ))
    }

    /// The VM's state when it was taken: `running`, `shutoff`, `paused`,
    /// `disk-snapshot` (external, disks only), ...
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// assert_eq(vm.snapshot("off").state, "shutoff");
    /// ```
    #[rhai_fn(get = "state", pure, return_raw)]
    pub fn state(ctx: NativeCallContext, snap: &mut Snapshot) -> ScriptResult<String> {
        Ok(snap
            .definition()
            .map_err(|e| e.at(&ctx))?
            .state
            .unwrap_or_default())
    }

    /// When it was taken, in seconds since 1970 (compare with `now()`-style timestamps
    /// or print as a date yourself).
    ///
    /// ```rhai
    /// let s = HOST.vm("test").snapshot("s1");
    /// assert(s.created > 1600000000);
    /// ```
    #[rhai_fn(get = "created", pure, return_raw)]
    pub fn created(ctx: NativeCallContext, snap: &mut Snapshot) -> ScriptResult<i64> {
        Ok(snap
            .definition()
            .map_err(|e| e.at(&ctx))?
            .creation_time
            .unwrap_or(0))
    }

    /// The snapshot XML (`virsh snapshot-dumpxml`).
    ///
    /// ```rhai
    /// let s = HOST.vm("test").snapshot("s1");
    /// assert(s.xml.contains("<name>s1</name>"));
    /// ```
    #[rhai_fn(get = "xml", pure, return_raw)]
    pub fn xml(ctx: NativeCallContext, snap: &mut Snapshot) -> ScriptResult<String> {
        snap.raw
            .xml_desc(sys::VIR_DOMAIN_SNAPSHOT_XML_SECURE)
            .script(&ctx)
    }

    /// The parent snapshot, or `()` for a root.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// let a = vm.snapshot("a");
    /// assert(a.parent == ());
    /// assert_eq(vm.snapshot("b").parent.name, "a");
    /// ```
    #[rhai_fn(get = "parent", pure)]
    pub fn parent(snap: &mut Snapshot) -> Dynamic {
        match snap.raw.parent(0) {
            Ok(raw) => Dynamic::from(wrap(&snap.vm, raw)),
            Err(_) => Dynamic::UNIT,
        }
    }

    /// The direct children, oldest first.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// let a = vm.snapshot("a");
    /// vm.snapshot("b");
    /// assert_eq(a.children.map(|c| c.name), ["b"]);
    /// ```
    #[rhai_fn(get = "children", pure, return_raw)]
    pub fn children(ctx: NativeCallContext, snap: &mut Snapshot) -> ScriptResult<Array> {
        let kids = snap.raw.list_all_children(0).script(&ctx)?;
        let mut kids: Vec<(i64, Snapshot)> = kids
            .into_iter()
            .map(|raw| {
                let s = wrap(&snap.vm, raw);
                (
                    s.definition()
                        .ok()
                        .and_then(|d| d.creation_time)
                        .unwrap_or(0),
                    s,
                )
            })
            .collect();
        kids.sort_by_key(|(t, s)| (*t, s.name()));
        Ok(kids.into_iter().map(|(_, s)| Dynamic::from(s)).collect())
    }

    /// Whether this is the VM's current snapshot.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// let a = vm.snapshot("a");
    /// let b = vm.snapshot("b");
    /// assert(!a.current && b.current);
    /// ```
    #[rhai_fn(get = "current", pure)]
    pub fn current(snap: &mut Snapshot) -> bool {
        snap.is_current()
    }

    /// Whether it is an external snapshot (overlay files) rather than internal.
    ///
    /// ```rhai
    /// let s = HOST.vm("test").snapshot("s1");
    /// assert(!s.external);
    /// ```
    #[rhai_fn(get = "external", pure)]
    pub fn external(snap: &mut Snapshot) -> bool {
        snap.is_external()
    }

    /// The VM the snapshot belongs to.
    ///
    /// ```rhai
    /// assert_eq(HOST.vm("test").snapshot("s1").vm.name, "test");
    /// ```
    #[rhai_fn(get = "vm", pure)]
    pub fn vm(snap: &mut Snapshot) -> Vm {
        snap.vm.clone()
    }

    // ------------------------------------------------------------ actions

    /// Revert the VM to this snapshot (`virsh snapshot-revert`): disks (and
    /// memory, when saved) go back to how they were; the VM ends in the
    /// snapshot's state.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// let s = vm.snapshot("running");
    /// vm.destroy();
    /// s.revert();
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(name = "revert", pure, return_raw)]
    pub fn revert(ctx: NativeCallContext, snap: &mut Snapshot) -> ScriptResult<()> {
        revert_with(ctx, snap, Map::new())
    }

    /// Revert with options: `start: true` boots the VM afterwards even when the
    /// snapshot was taken shut off (`false`, the default, leaves the snapshot's
    /// state); `paused: true` leaves it paused; `force` lets libvirt revert
    /// where it would otherwise refuse (e.g. a running VM to a snapshot with an
    /// incompatible configuration).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.destroy();
    /// let s = vm.snapshot("off");
    /// s.revert(#{ start: true });
    /// assert_eq(vm.state, "running");
    /// ```
    #[rhai_fn(name = "revert", pure, return_raw)]
    pub fn revert_with(ctx: NativeCallContext, snap: &mut Snapshot, opts: Map) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["start", "paused", "force"])
            .map_err(|e| e.at(&ctx))?;
        let start = f.boolean("start").map_err(|e| e.at(&ctx))?.unwrap_or(false);
        let paused = f
            .boolean("paused")
            .map_err(|e| e.at(&ctx))?
            .unwrap_or(false);
        let force = f.boolean("force").map_err(|e| e.at(&ctx))?.unwrap_or(false);
        if start && paused {
            return Err(ScriptError::invalid(
                "paused",
                "true",
                "start: true and paused: true contradict each other",
            )
            .at(&ctx));
        }
        let mut flags = 0;
        if start {
            flags |= sys::VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING;
        }
        if paused {
            flags |= sys::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED;
        }
        if force {
            flags |= sys::VIR_DOMAIN_SNAPSHOT_REVERT_FORCE;
        }
        snap.raw
            .revert(flags)
            .map_err(|e| refused(&e, advice_for(e.message())).at(&ctx))?;
        journal::record(
            "revert_snapshot",
            format!("snapshot {}", snap.label()),
            None,
        );
        // Drivers that ignore the flag for a shut-off snapshot: boot it ourselves.
        if start {
            match crate::virt_ext::domain::state(&snap.vm.raw).map(|s| s.to_raw()) {
                Ok(sys::VIR_DOMAIN_SHUTOFF) => {
                    snap.vm.raw.create().script(&ctx)?;
                    let undo = snap.vm.raw.clone();
                    journal::record(
                        "start_vm",
                        format!("vm {}", snap.vm.name()),
                        Some(Box::new(move || undo.destroy())),
                    );
                }
                Ok(sys::VIR_DOMAIN_PAUSED) => {
                    snap.vm.raw.resume().script(&ctx)?;
                    journal::record("resume_vm", format!("vm {}", snap.vm.name()), None);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Delete the snapshot (`virsh snapshot-delete`); its children move up
    /// to its parent.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// vm.snapshot("s1").delete();
    /// assert_eq(vm.snapshots().len(), 0);
    /// ```
    #[rhai_fn(name = "delete", pure, return_raw)]
    pub fn delete(ctx: NativeCallContext, snap: &mut Snapshot) -> ScriptResult<()> {
        delete_with(ctx, snap, Map::new())
    }

    /// Delete with options: `children: true` deletes its descendants too;
    /// `metadata_only: true` forgets the snapshot but keeps its data (overlay
    /// files of external snapshots stay).
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// let a = vm.snapshot("a");
    /// vm.snapshot("b");
    /// a.delete(#{ children: true });
    /// assert_eq(vm.snapshots().len(), 0);
    /// ```
    #[rhai_fn(name = "delete", pure, return_raw)]
    pub fn delete_with(ctx: NativeCallContext, snap: &mut Snapshot, opts: Map) -> ScriptResult<()> {
        let f = Fields::new("", &opts);
        f.only(&["children", "metadata_only"])
            .map_err(|e| e.at(&ctx))?;
        let mut flags = 0;
        if f.boolean("children")
            .map_err(|e| e.at(&ctx))?
            .unwrap_or(false)
        {
            flags |= sys::VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN;
        }
        if f.boolean("metadata_only")
            .map_err(|e| e.at(&ctx))?
            .unwrap_or(false)
        {
            flags |= sys::VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY;
        }
        let label = snap.label();
        snap.raw
            .delete(flags)
            .map_err(|e| refused(&e, advice_for(e.message())).at(&ctx))?;
        journal::record("delete_snapshot", format!("snapshot {label}"), None);
        Ok(())
    }

    /// `Snapshot(vm/name, state)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(snap: &mut Snapshot) -> String {
        let state = snap
            .definition()
            .ok()
            .and_then(|d| d.state)
            .unwrap_or_else(|| "-".into());
        format!("Snapshot({}, {state})", snap.label())
    }
}

