//! `vm.migrate(dest, opts)`: managed migration through libvirt's own remote
//! protocol (`virDomainMigrate3`, or peer-to-peer `virDomainMigrateToURI3`).
//! Everything that can be checked is checked before anything moves; a running
//! migration shows its progress and is aborted on Ctrl-C or its timeout, and
//! the VM then keeps running on the source.
use crate::runtime::ErrorKind;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::domain::{Domain as RawDomain, MigrateParameters};
use virt::sys;

use crate::api::args::Fields;
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::{Host, Pool, Vm, Volume};
use crate::runtime::journal;
use crate::runtime::stop::{self, StopReason};
use crate::runtime::units::{format_size, parse_size};
use crate::virt_ext::migration::{self as raw_migration, CpuFit, JobProgress};
use crate::xml::domain::Domain;
use crate::xml::tree::Element;

/// What the script asked for, read and checked before anything moves.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrateOptions {
    /// `None`: live when the VM runs, offline when it is stopped.
    pub live: Option<bool>,
    pub persistent: bool,
    pub undefine_source: bool,
    pub copy_storage: CopyStorage,
    /// MiB/s, as libvirt counts bandwidth.
    pub bandwidth_mib: Option<u64>,
    pub auto_converge: bool,
    pub postcopy: bool,
    pub compressed: bool,
    pub unsafe_migration: bool,
    pub timeout: Option<Duration>,
    pub migrate_uri: Option<String>,
    pub peer_to_peer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyStorage {
    /// Storage is shared (NFS, a cluster filesystem): nothing is copied.
    None,
    /// Copy every disk (`virsh migrate --copy-storage-all`).
    All,
    /// Copy what differs from a shared base (`--copy-storage-inc`).
    Incremental,
}

impl MigrateOptions {
    /// The defaults move the VM: it runs on the destination afterwards, is
    /// defined there, and its source definition is gone. (virsh keeps an
    /// inactive source definition unless told `--undefinesource`; a copy that
    /// can be started on two hosts over shared storage is how disks get
    /// corrupted, so a move is the safer default.)
    pub fn read(map: &Map) -> Result<MigrateOptions, ScriptError> {
        // Every key is asked for before `finish`: the key list is this code.
        let f = Fields::new("", map);
        let copy_storage = match f
            .one_of("copy_storage", &["none", "all", "incremental"])?
            .as_deref()
        {
            None | Some("none") => CopyStorage::None,
            Some("all") => CopyStorage::All,
            _ => CopyStorage::Incremental,
        };
        let bandwidth_mib = match f.raw("bandwidth") {
            None => None,
            Some(v) => Some(bandwidth(v)?),
        };
        let timeout = match f.raw("timeout") {
            None => None,
            Some(v) => Some(duration("timeout", v)?),
        };
        let options = MigrateOptions {
            live: f.boolean("live")?,
            persistent: f.boolean("persistent")?.unwrap_or(true),
            undefine_source: f.boolean("undefine_source")?.unwrap_or(true),
            copy_storage,
            bandwidth_mib,
            auto_converge: f.boolean("auto_converge")?.unwrap_or(false),
            postcopy: f.boolean("postcopy")?.unwrap_or(false),
            compressed: f.boolean("compressed")?.unwrap_or(false),
            unsafe_migration: f.boolean("unsafe")?.unwrap_or(false),
            timeout,
            migrate_uri: f.string("migrate_uri")?,
            peer_to_peer: f.boolean("peer_to_peer")?.unwrap_or(false),
        };
        f.finish()?;
        Ok(options)
    }

    /// libvirt's VIR_MIGRATE_* flags for a VM that is (or is not) running.
    fn flags(&self, running: bool) -> u32 {
        let mut flags = 0;
        if running {
            if self.live.unwrap_or(true) {
                flags |= sys::VIR_MIGRATE_LIVE;
            }
        } else {
            flags |= sys::VIR_MIGRATE_OFFLINE;
        }
        let set = |flags: &mut u32, on: bool, flag: u32| {
            if on {
                *flags |= flag;
            }
        };
        set(&mut flags, self.persistent, sys::VIR_MIGRATE_PERSIST_DEST);
        set(
            &mut flags,
            self.undefine_source,
            sys::VIR_MIGRATE_UNDEFINE_SOURCE,
        );
        set(
            &mut flags,
            self.copy_storage == CopyStorage::All,
            sys::VIR_MIGRATE_NON_SHARED_DISK,
        );
        set(
            &mut flags,
            self.copy_storage == CopyStorage::Incremental,
            sys::VIR_MIGRATE_NON_SHARED_INC,
        );
        set(
            &mut flags,
            self.auto_converge,
            sys::VIR_MIGRATE_AUTO_CONVERGE,
        );
        set(&mut flags, self.postcopy, sys::VIR_MIGRATE_POSTCOPY);
        set(&mut flags, self.compressed, sys::VIR_MIGRATE_COMPRESSED);
        set(&mut flags, self.unsafe_migration, sys::VIR_MIGRATE_UNSAFE);
        set(&mut flags, self.peer_to_peer, sys::VIR_MIGRATE_PEER2PEER);
        flags
    }

    fn parameters(&self) -> MigrateParameters {
        MigrateParameters {
            uri: self.migrate_uri.clone(),
            bandwidth: self.bandwidth_mib,
            ..MigrateParameters::default()
        }
    }
}

/// `"100M"` (per second) or a whole number of MiB/s.
fn bandwidth(v: &Dynamic) -> Result<u64, ScriptError> {
    let shown = crate::api::args::show(v);
    let bytes = if let Ok(n) = v.as_int() {
        u64::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(1 << 20))
            .ok_or_else(|| {
                ScriptError::invalid("bandwidth", &shown, "must be a positive number of MiB/s")
            })?
    } else if v.is_string() {
        parse_size(&v.to_string()).map_err(|e| ScriptError::invalid("bandwidth", &shown, e))?
    } else {
        return Err(ScriptError::invalid(
            "bandwidth",
            &shown,
            "must be a rate like \"100M\" (per second) or a number of MiB/s",
        ));
    };
    let mib = bytes >> 20;
    if mib == 0 {
        return Err(ScriptError::invalid(
            "bandwidth",
            &shown,
            "must be at least 1M per second (libvirt counts MiB/s)",
        ));
    }
    Ok(mib)
}

/// `"5m"`, `"90s"`, or a number of seconds.
fn duration(field: &str, v: &Dynamic) -> Result<Duration, ScriptError> {
    let shown = crate::api::args::show(v);
    let d = if let Ok(n) = v.as_int() {
        u64::try_from(n).map(Duration::from_secs).ok()
    } else if v.is_string() {
        humantime::parse_duration(&v.to_string()).ok()
    } else {
        None
    };
    match d {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ScriptError::invalid(
            field,
            shown,
            "must be a duration like \"5m\" or \"90s\", or a number of seconds",
        )),
    }
}

/// The host's UUID from its capabilities (`<host><uuid>`).
fn host_uuid(host: &Host) -> Result<String, virt::error::Error> {
    let caps = host.conn().capabilities()?;
    Ok(Element::parse(&caps)
        .ok()
        .and_then(|root| root.path(&["host", "uuid"]).map(|e| e.text()))
        .unwrap_or_default())
}

/// Everything that would make the migration fail, found before anything
/// moves; each error names what is missing and on which host.
fn preflight(
    vm: &Vm,
    dest: &Host,
    opts: &MigrateOptions,
    running: bool,
) -> Result<(), ScriptError> {
    let name = vm.name();
    let lib = |e: virt::error::Error| ScriptError::libvirt(&e);
    if host_uuid(&vm.host).map_err(lib)? == host_uuid(dest).map_err(lib)? {
        return Err(ScriptError::invalid(
            "dest",
            dest.uri(),
            format!(
                "is the host VM {name} is on ({}): migrate to another host",
                vm.host.uri()
            ),
        ));
    }
    if !running {
        if opts.live == Some(true) {
            return Err(ScriptError::new(
                ErrorKind::State,
                format!("VM {name} is not running: a live migration needs a running VM (leave out live for an offline one)"),
            )
            .with("field", "live")
            .with("value", "true"));
        }
        if !opts.persistent {
            return Err(ScriptError::invalid(
                "persistent",
                "false",
                format!("VM {name} is stopped: an offline migration moves its definition, so it must be persistent on the destination"),
            ));
        }
        if opts.copy_storage != CopyStorage::None {
            // Checked now, copied by migrate_vm (libvirt copies only live).
            offline_copies(vm, dest)?;
        }
    }
    if dest.conn().lookup_domain_by_name(&name).is_ok() {
        return Err(ScriptError::new(
            ErrorKind::Exists,
            format!("host {} already has a VM named {name}", dest.uri()),
        )
        .with("field", "dest")
        .with("value", dest.uri().to_owned()));
    }
    let xml = vm.raw.xml_desc(sys::VIR_DOMAIN_XML_SECURE).map_err(lib)?;
    let (domain, root) =
        Domain::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()))?;
    for nic in &domain.interfaces {
        if nic.iface_type != "network" {
            continue;
        }
        let Some(net) = &nic.source else { continue };
        let active = dest
            .conn()
            .lookup_network_by_name(net)
            .ok()
            .map(|n| n.is_active().unwrap_or(false));
        match active {
            None => {
                return Err(ScriptError::not_found(
                    "networks",
                    net,
                    format!(
                        "VM {name} uses network {net}, which host {} does not have",
                        dest.uri()
                    ),
                ))
            }
            Some(false) => {
                return Err(ScriptError::new(
                    ErrorKind::State,
                    format!(
                        "VM {name} uses network {net}, which is not running on host {}",
                        dest.uri()
                    ),
                )
                .with("field", "networks")
                .with("value", net.clone()))
            }
            Some(true) => {}
        }
    }
    for disk in &domain.disks {
        if let Some(pool) = &disk.pool {
            if dest.conn().lookup_storage_pool_by_name(pool).is_err() {
                return Err(ScriptError::not_found(
                    "disks",
                    &disk.target,
                    format!(
                        "disk {} of VM {name} is in storage pool {pool}, which host {} does not have",
                        disk.target,
                        dest.uri()
                    ),
                ));
            }
            continue;
        }
        let (Some(path), CopyStorage::None) = (&disk.source, opts.copy_storage) else {
            continue;
        };
        if disk.readonly && disk.device == "cdrom" {
            continue;
        }
        if !dest_has_volume(dest, path) {
            return Err(ScriptError::not_found(
                "disks",
                &disk.target,
                format!(
                    "disk {} of VM {name} ({path}) is in no storage pool of host {}: define a pool there over the shared directory, or give copy_storage: \"all\"",
                    disk.target,
                    dest.uri()
                ),
            ));
        }
    }
    // A custom CPU model must be one the destination's hypervisor can give
    // (libvirt compares host-passthrough and host-model itself).
    if let Some(cpu) = root.child("cpu") {
        let custom =
            matches!(cpu.attr("mode"), None | Some("custom")) && cpu.child("model").is_some();
        if custom && running {
            let os_type = root.path(&["os", "type"]);
            let fit = raw_migration::compare_hypervisor_cpu(
                dest.conn(),
                Some(domain.virt_type.as_str()),
                os_type.and_then(|t| t.attr("arch")),
                os_type.and_then(|t| t.attr("machine")),
                &cpu.to_xml(),
            )
            .map_err(lib)?;
            if fit == CpuFit::Incompatible {
                let model = cpu.child("model").map(|m| m.text()).unwrap_or_default();
                return Err(ScriptError::new(
                    ErrorKind::Incompatible,
                    format!(
                        "VM {name}'s CPU ({model}) is not available on host {}'s hypervisor",
                        dest.uri()
                    ),
                )
                .with("field", "cpu")
                .with("value", model));
            }
        }
    }
    Ok(())
}

/// Whether a storage pool of `dest` holds `path`. A pool over shared storage
/// learns of volumes made from another host only when refreshed, so the pools
/// over the path's directory are refreshed before the answer is no.
fn dest_has_volume(dest: &Host, path: &str) -> bool {
    let conn = dest.conn();
    if conn.lookup_storage_vol_by_path(path).is_ok() {
        return true;
    }
    let Some(dir) = std::path::Path::new(path).parent() else {
        return false;
    };
    let pools = conn
        .list_all_storage_pools(sys::VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
        .unwrap_or_default();
    let mut refreshed = false;
    for pool in pools {
        let target = crate::api::pool::target_path(&pool);
        if target.is_some_and(|t| std::path::Path::new(&t) == dir) && pool.refresh(0).is_ok() {
            refreshed = true;
        }
    }
    refreshed && conn.lookup_storage_vol_by_path(path).is_ok()
}

/// For an offline move with `copy_storage`: every writable disk's volume,
/// with the pool of the same name on `dest` it is copied into (libvirt
/// copies storage only during a live migration, so we copy it first, through
/// libvirt's streams).
fn offline_copies(vm: &Vm, dest: &Host) -> Result<Vec<(Volume, Pool)>, ScriptError> {
    let name = vm.name();
    let xml = vm
        .raw
        .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
        .map_err(|e| ScriptError::libvirt(&e))?;
    let (domain, _) =
        Domain::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()))?;
    let mut copies = Vec::new();
    for disk in domain
        .disks
        .iter()
        .filter(|d| d.device == "disk" && !d.readonly)
    {
        let Some(path) = &disk.source else { continue };
        let raw = vm.host.conn().lookup_storage_vol_by_path(path).map_err(|_| {
            ScriptError::invalid(
                "copy_storage",
                &disk.target,
                format!("disk {} of VM {name} ({path}) is no volume of a storage pool, so it cannot be copied through libvirt", disk.target),
            )
        })?;
        let pool_name = raw
            .lookup_storage_pool()
            .and_then(|p| p.name())
            .map_err(|e| ScriptError::libvirt(&e))?;
        let pool = dest
            .conn()
            .lookup_storage_pool_by_name(&pool_name)
            .map_err(|_| {
                ScriptError::not_found(
                    "copy_storage",
                    &pool_name,
                    format!(
                        "disk {} of VM {name} is in storage pool {pool_name}, which host {} does not have",
                        disk.target,
                        dest.uri()
                    ),
                )
            })?;
        copies.push((
            crate::api::volume::wrap(&vm.host, raw),
            Pool {
                host: dest.clone(),
                raw: Arc::new(pool),
            },
        ));
    }
    Ok(copies)
}

/// Why a running migration was cut short.
enum Aborted {
    Stop(StopReason),
    Timeout(Duration),
}

/// One progress sample for the bar and the log.
fn describe(stats: &JobProgress) -> Option<(u64, u64, String)> {
    let total = stats.data_total?;
    let processed = stats.data_processed.unwrap_or(0);
    let remaining = stats.data_remaining.unwrap_or(0);
    let dirty = stats.memory_dirty_rate.unwrap_or(0);
    let page = stats.memory_page_size.unwrap_or(4096);
    Some((
        total,
        processed,
        format!(
            "{} remaining, dirty rate {}/s",
            format_size(remaining),
            format_size(dirty.saturating_mul(page))
        ),
    ))
}

fn progress_bar(name: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("migrate {prefix} [{bar:30}] {bytes}/{total_bytes} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(name.to_owned());
    Some(bar)
}

/// Run the migration on a thread while this one watches: progress, Ctrl-C,
/// the timeout and the switch to post-copy.
fn run(
    vm: &Vm,
    dest: &Host,
    opts: &MigrateOptions,
    flags: u32,
    dest_xml: Option<String>,
) -> Result<Result<Option<RawDomain>, virt::error::Error>, Aborted> {
    let name = vm.name();
    let source = Arc::clone(&vm.raw);
    let dest_host = dest.clone();
    let mut params = opts.parameters();
    if let Some(xml) = dest_xml {
        // The definition the destination keeps (its disks' new paths).
        params.persist_xml = Some(xml.clone());
        params.dest_xml = Some(xml);
    }
    let p2p = opts.peer_to_peer;
    let job = std::thread::spawn(move || {
        if p2p {
            source
                .migrate_to_uri3(Some(dest_host.uri()), params, flags)
                .map(|()| None)
        } else {
            source.migrate3(dest_host.conn(), params, flags).map(Some)
        }
    });
    let bar = progress_bar(&name);
    let started = Instant::now();
    let mut aborted = None;
    let mut post_copy_started = false;
    let mut last_log = Instant::now();
    while !job.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        if aborted.is_none() {
            let why = stop::requested().map(Aborted::Stop).or_else(|| {
                opts.timeout
                    .filter(|t| started.elapsed() >= *t)
                    .map(Aborted::Timeout)
            });
            if let Some(why) = why {
                // The VM stays on the source; libvirt ends the job with an error.
                let _ = raw_migration::abort_job(&vm.raw);
                aborted = Some(why);
                continue;
            }
        }
        let Ok(Some(stats)) = raw_migration::job_progress(&vm.raw) else {
            continue;
        };
        // Like `virsh migrate --postcopy-after-precopy`: once every page has
        // been sent once, the rest is fetched on demand from the destination.
        if opts.postcopy
            && !post_copy_started
            && stats.memory_iteration.is_some_and(|i| i >= 1)
            && raw_migration::start_post_copy(&vm.raw).is_ok()
        {
            post_copy_started = true;
        }
        if let Some((total, processed, msg)) = describe(&stats) {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(processed);
                b.set_message(msg.clone());
            }
            if last_log.elapsed() >= Duration::from_secs(1) {
                last_log = Instant::now();
                tracing::info!(
                    event = "migration_progress",
                    vm = %name,
                    dest = %dest.uri(),
                    data_total = total,
                    data_processed = processed,
                    data_remaining = stats.data_remaining.unwrap_or(0),
                    mem_dirty_rate = stats.memory_dirty_rate.unwrap_or(0),
                    "{msg}"
                );
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let result = job
        .join()
        .unwrap_or_else(|_| Err(virt::error::Error::last_error()));
    match aborted {
        // An abort that came too late changes nothing: the VM has moved.
        Some(why) if result.is_err() => Err(why),
        _ => Ok(result),
    }
}

#[export_module(manifest)]
pub mod vm_migrate_api {
    use super::*;

    /// Move the VM to another host through libvirt (`virsh migrate`): live
    /// when it runs, offline (its definition) when it is stopped. Returns the
    /// VM on `dest`. Options: `live`, `persistent` (default true: defined on
    /// `dest`), `undefine_source` (default true: the source definition goes;
    /// virsh keeps it unless `--undefinesource`), `copy_storage` (`"none"`,
    /// `"all"`, `"incremental"`), `bandwidth` (`"100M"` per second), `auto_converge`,
    /// `postcopy` (switch to post-copy after the first pass, like
    /// `--postcopy-after-precopy`), `compressed`, `unsafe`, `timeout` (`"5m"`:
    /// abort, the VM keeps running on the source), `migrate_uri` (where QEMU
    /// sends the data, e.g. `"tcp://10.0.0.2"`), `peer_to_peer` (the source
    /// daemon connects to `dest` itself). A stopped VM with `copy_storage`
    /// has each disk's volume copied first (`vol.copy_to`) into the pool of
    /// the same name on `dest`, and is defined there on the copies; the
    /// source's volumes stay (a migration deletes no storage). Progress: a
    /// bar on a terminal, and with `--log-level info` a `migration_progress`
    /// log event a second (JSON lines with `--log-format json`).
    ///
    /// Before anything moves it checks that `dest` is another host, that the
    /// name is free there, that the networks and storage pools the VM uses
    /// exist there (or `copy_storage` is set), and that a custom CPU model is
    /// one `dest`'s hypervisor provides. Ctrl-C or `--timeout` aborts the
    /// migration job and the VM keeps running on the source.
    ///
    /// ```rhai
    /// let vm = HOST.vm("test");
    /// // The embedded test driver is one host: a migration to it is refused
    /// // before anything moves, and the VM stays where it is.
    /// let refused = ();
    /// try {
    ///     vm.migrate(connect("test:///default"), #{ bandwidth: "100M" });
    /// } catch (e) {
    ///     refused = e;
    /// }
    /// assert_eq(refused.field, "dest");
    /// assert_eq(HOST.vm("test").state, "running");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn migrate(ctx: NativeCallContext, vm: &mut Vm, dest: Host, opts: Map) -> ScriptResult<Vm> {
        migrate_vm(&ctx, vm, &dest, &opts)
    }

    /// `vm.migrate(dest)` with the defaults: a live move when the VM runs.
    ///
    /// ```rhai
    /// let refused = ();
    /// try { HOST.vm("test").migrate(HOST); } catch (e) { refused = e; }
    /// assert_eq(refused.field, "dest");
    /// ```
    #[rhai_fn(name = "migrate", return_raw)]
    pub fn migrate_default(ctx: NativeCallContext, vm: &mut Vm, dest: Host) -> ScriptResult<Vm> {
        migrate_vm(&ctx, vm, &dest, &Map::new())
    }
}

fn migrate_vm(ctx: &NativeCallContext, vm: &Vm, dest: &Host, opts: &Map) -> ScriptResult<Vm> {
    let opts = MigrateOptions::read(opts).at(ctx)?;
    let running = vm.raw.is_active().script(ctx)?;
    preflight(vm, dest, &opts, running).at(ctx)?;
    let name = vm.name();
    let mut flags = opts.flags(running);
    // Offline with copy_storage: the volumes first, then the definition
    // pointing at the copies; a failure removes the copies again.
    let mut copied: Vec<Volume> = Vec::new();
    let mut dest_xml = None;
    if !running && opts.copy_storage != CopyStorage::None {
        flags &= !(sys::VIR_MIGRATE_NON_SHARED_DISK | sys::VIR_MIGRATE_NON_SHARED_INC);
        let xml = vm
            .raw
            .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)
            .script(ctx)?;
        let mut root = Element::parse(&xml)
            .map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()).at(ctx))?;
        for (vol, pool) in offline_copies(vm, dest).at(ctx)? {
            let old = vol.raw.path().unwrap_or_default();
            let copy = match crate::api::volume::copy::copy_to(ctx, &vol, &pool, &Map::new()) {
                Ok(copy) => copy,
                Err(e) => {
                    for c in &copied {
                        crate::api::volume::delete_quietly(&c.raw);
                    }
                    return Err(e);
                }
            };
            let new = copy.raw.path().unwrap_or_default();
            if let Some(devices) = root.child_mut("devices") {
                for disk in devices.elements_mut().filter(|e| e.name == "disk") {
                    if let Some(source) = disk.child_mut("source") {
                        if source.attr("file") == Some(old.as_str()) {
                            source.set_attr("file", new.clone());
                        }
                    }
                }
            }
            copied.push(copy);
        }
        dest_xml = Some(root.to_xml());
    }
    let outcome = run(vm, dest, &opts, flags, dest_xml);
    if !matches!(outcome, Ok(Ok(_))) {
        for c in &copied {
            crate::api::volume::delete_quietly(&c.raw);
        }
    }
    let moved = match outcome {
        Ok(Ok(moved)) => moved,
        Ok(Err(e)) => {
            let mut err = ScriptError::libvirt(&e)
                .with("field", "dest")
                .with("value", dest.uri().to_owned());
            if e.code() == virt::error::ErrorNumber::MigrateUnsafe.into() {
                err = err.with(
                    "hint",
                    "libvirt cannot tell that a plain directory is shared: if both hosts see the same disks (NFS, a shared directory), give unsafe: true; otherwise copy_storage: \"all\"",
                );
            }
            return Err(err.at(ctx));
        }
        Err(Aborted::Stop(reason)) => {
            return Err(crate::api::error::stopped(ctx, reason))
        }
        Err(Aborted::Timeout(after)) => {
            return Err(ScriptError::new(
                ErrorKind::TimedOut,
                format!(
                    "migration of VM {name} to {} did not finish within {}: aborted, the VM is still on {}",
                    dest.uri(),
                    humantime::format_duration(after),
                    vm.host.uri()
                ),
            )
            .with("field", "timeout")
            .at(ctx))
        }
    };
    let raw = match moved {
        Some(raw) => raw,
        None => dest.conn().lookup_domain_by_name(&name).script(ctx)?,
    };
    journal::record("migrate_vm", format!("vm {name} to {}", dest.uri()), None);
    Ok(Vm {
        host: dest.clone(),
        raw: raw.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn read(m: &Map) -> MigrateOptions {
        MigrateOptions::read(m).map_err(|e| e.into_eval()).unwrap()
    }

    #[test]
    fn options_default_to_a_live_move() {
        let o = read(&Map::new());
        let flags = o.flags(true);
        for flag in [
            sys::VIR_MIGRATE_LIVE,
            sys::VIR_MIGRATE_PERSIST_DEST,
            sys::VIR_MIGRATE_UNDEFINE_SOURCE,
        ] {
            assert_ne!(flags & flag, 0, "{flag:#x}");
        }
        assert_eq!(flags & sys::VIR_MIGRATE_OFFLINE, 0);
        let offline = o.flags(false);
        assert_ne!(offline & sys::VIR_MIGRATE_OFFLINE, 0);
        assert_eq!(offline & sys::VIR_MIGRATE_LIVE, 0);
    }

    #[test]
    fn options_map_to_flags_and_parameters() {
        let o = read(&map(&[
            ("copy_storage", "incremental".into()),
            ("bandwidth", "100M".into()),
            ("auto_converge", true.into()),
            ("unsafe", true.into()),
            ("undefine_source", false.into()),
            ("timeout", "5m".into()),
            ("migrate_uri", "tcp://10.0.0.2".into()),
        ]));
        let flags = o.flags(true);
        assert_ne!(flags & sys::VIR_MIGRATE_NON_SHARED_INC, 0);
        assert_ne!(flags & sys::VIR_MIGRATE_AUTO_CONVERGE, 0);
        assert_ne!(flags & sys::VIR_MIGRATE_UNSAFE, 0);
        assert_eq!(flags & sys::VIR_MIGRATE_UNDEFINE_SOURCE, 0);
        assert_eq!(o.bandwidth_mib, Some(100));
        assert_eq!(o.timeout, Some(Duration::from_secs(300)));
        assert_eq!(o.parameters().uri.as_deref(), Some("tcp://10.0.0.2"));
        assert_eq!(
            read(&map(&[("bandwidth", 50.into())])).bandwidth_mib,
            Some(50)
        );
    }

    #[test]
    fn bad_options_name_the_field_and_the_value() {
        for (key, value, needle) in [
            ("copy_storage", Dynamic::from("some"), "must be one of"),
            ("bandwidth", Dynamic::from("10K"), "at least 1M"),
            ("bandwidth", Dynamic::from(true), "rate"),
            ("timeout", Dynamic::from("soon"), "duration"),
            ("live", Dynamic::from("yes"), "true or false"),
        ] {
            let err = MigrateOptions::read(&map(&[(key, value)])).unwrap_err();
            let text = format!("{:?}", err.into_eval());
            assert!(text.contains(key), "{key}: {text}");
            assert!(text.contains(needle), "{key}: {text}");
        }
        let err = MigrateOptions::read(&map(&[("bandwith", "1G".into())])).unwrap_err();
        assert!(format!("{:?}", err.into_eval()).contains("bandwith"));
    }
}
