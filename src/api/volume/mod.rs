//! `Volume` script object: storage volumes (`virsh vol-*`), thin provisioning,
//! full / linked / reflink clones, resize, wipe, sparse upload and download.

pub mod copy;
use crate::runtime::ErrorKind;
use std::fs::File;
use std::io::IsTerminal;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};
use virt::error::Error;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;
use virt::sys;

use super::args::{self, Fields, NumberUnit};
use super::error::AtExt;
use super::error::{stopped as stopped_error, LibvirtResultExt, ScriptError, ScriptResult};
use super::pool::{check_name, create_in_pool, is_code, is_local, plain_text, with_pool_retry};
use super::{Host, Pool};
use crate::runtime::journal;
use crate::runtime::stop::{self, StopReason};
use crate::runtime::units::format_size;
use crate::virt_ext::stream::{recv_sparse, send_all, send_hole, Received};
use crate::xml::storage::{BackingStore, Size, VolumeXml};

/// A libvirt object handle plus the host it came from.
#[derive(Clone)]
pub struct Volume {
    pub host: Host,
    pub raw: std::sync::Arc<virt::storage_vol::StorageVol>,
}

impl Volume {
    pub fn name(&self) -> String {
        self.raw.name().unwrap_or_default()
    }

    pub fn pool_name(&self) -> String {
        self.raw
            .lookup_storage_pool()
            .and_then(|p| p.name())
            .unwrap_or_default()
    }

    pub fn pool(&self) -> Result<Pool, Error> {
        Ok(Pool {
            host: self.host.clone(),
            raw: self.raw.lookup_storage_pool()?.into(),
        })
    }

    /// `pool/name`, how messages refer to a volume.
    pub fn label(&self) -> String {
        format!("{}/{}", self.pool_name(), self.name())
    }

    pub fn definition(&self) -> Result<VolumeXml, ScriptError> {
        let xml = self.raw.xml_desc(0).map_err(|e| ScriptError::libvirt(&e))?;
        VolumeXml::parse(&xml).map_err(|e| {
            ScriptError::new(ErrorKind::Xml, format!("cannot read the volume's XML: {e}"))
        })
    }
}

pub(crate) fn wrap(host: &Host, raw: StorageVol) -> Volume {
    Volume {
        host: host.clone(),
        raw: raw.into(),
    }
}

/// Formats of file-based pools (`dir`, `fs`, `netfs`), as libvirt names them.
const FILE_FORMATS: &[&str] = &[
    "raw", "qcow2", "qcow", "qed", "vmdk", "vpc", "vdi", "vhdx", "bochs", "cloop", "cow", "dmg",
    "iso", "ploop", "fat", "dir",
];

const WIPE_ALGORITHMS: &[(&str, u32)] = &[
    ("zero", sys::VIR_STORAGE_VOL_WIPE_ALG_ZERO),
    ("nnsa", sys::VIR_STORAGE_VOL_WIPE_ALG_NNSA),
    ("dod", sys::VIR_STORAGE_VOL_WIPE_ALG_DOD),
    ("bsi", sys::VIR_STORAGE_VOL_WIPE_ALG_BSI),
    ("gutmann", sys::VIR_STORAGE_VOL_WIPE_ALG_GUTMANN),
    ("schneier", sys::VIR_STORAGE_VOL_WIPE_ALG_SCHNEIER),
    ("pfitzner7", sys::VIR_STORAGE_VOL_WIPE_ALG_PFITZNER7),
    ("pfitzner33", sys::VIR_STORAGE_VOL_WIPE_ALG_PFITZNER33),
    ("random", sys::VIR_STORAGE_VOL_WIPE_ALG_RANDOM),
    ("trim", sys::VIR_STORAGE_VOL_WIPE_ALG_TRIM),
];

fn file_based(pool_type: &str) -> bool {
    matches!(pool_type, "dir" | "fs" | "netfs")
}

fn lookup_in(pool: &Pool, name: &str) -> Result<Option<Volume>, Error> {
    match pool.raw.lookup_storage_vol_by_name(name) {
        Ok(raw) => Ok(Some(wrap(&pool.host, raw))),
        Err(e) if is_code(&e, sys::VIR_ERR_NO_STORAGE_VOL) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks shared by everything that makes a new volume: the pool runs, the
/// name is a plain file name and is free.
pub(crate) fn check_new_volume(pool: &Pool, field: &str, name: &str) -> Result<(), ScriptError> {
    check_name(field, name)?;
    if !pool.is_active() {
        return Err(ScriptError::new(
            ErrorKind::Invalid,
            format!("pool {} is not running: start it first", pool.name()),
        ));
    }
    if lookup_in(pool, name)
        .map_err(|e| ScriptError::libvirt(&e))?
        .is_some()
    {
        return Err(ScriptError::invalid(
            field,
            name,
            format!(
                "a volume with this name already exists in pool {}",
                pool.name()
            ),
        ));
    }
    Ok(())
}

/// The volumes, in every running pool of the host, whose backing file is `vol`.
pub fn dependents(vol: &Volume) -> Result<Vec<Volume>, ScriptError> {
    let path = vol.raw.path().map_err(|e| ScriptError::libvirt(&e))?;
    let pools = vol
        .host
        .conn()
        .list_all_storage_pools(sys::VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
        .map_err(|e| ScriptError::libvirt(&e))?;
    let mut out = Vec::new();
    for pool in pools {
        let Ok(vols) = pool.list_all_volumes(0) else {
            continue;
        };
        for raw in vols {
            if raw.path().ok().as_deref() == Some(path.as_str()) {
                continue;
            }
            let Ok(xml) = raw.xml_desc(0) else { continue };
            let Ok(doc) = VolumeXml::parse(&xml) else {
                continue;
            };
            if doc.backing.and_then(|b| b.path).as_deref() == Some(path.as_str()) {
                out.push(wrap(&vol.host, raw));
            }
        }
    }
    Ok(out)
}

/// Refuse to `action` a volume that other volumes are overlays of, unless forced.
fn refuse_if_backing(vol: &Volume, action: &str, force: bool) -> Result<(), ScriptError> {
    if force {
        return Ok(());
    }
    let deps = dependents(vol)?;
    if deps.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = deps.iter().map(Volume::label).collect();
    Err(ScriptError::new(
        ErrorKind::InUse,
        format!(
            "cannot {action} {}: it is the backing file of {} ({}); pass #{{ force: true }} to do it anyway",
            vol.label(),
            if names.len() == 1 { "another volume" } else { "other volumes" },
            names.join(", ")
        ),
    )
    .with(
        "dependents",
        names.into_iter().map(Dynamic::from).collect::<Array>(),
    ))
}

/// A volume that a defined VM uses as a disk is not deleted unless `force`:
/// the VM would point at nothing (like `refuse_if_backing`).
fn refuse_if_vm_disk(vol: &Volume, path: &str, force: bool) -> Result<(), ScriptError> {
    if force {
        return Ok(());
    }
    let doms = vol
        .host
        .conn()
        .list_all_domains(0)
        .map_err(|e| ScriptError::libvirt(&e))?;
    let users: Vec<String> = doms
        .iter()
        .filter(|dom| {
            dom.xml_desc(virt::sys::VIR_DOMAIN_XML_INACTIVE)
                .ok()
                .and_then(|xml| crate::xml::domain::Domain::parse(&xml).ok())
                .is_some_and(|(d, _)| d.disks.iter().any(|k| k.source.as_deref() == Some(path)))
        })
        .map(|dom| dom.name().unwrap_or_default())
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(ScriptError::new(
        ErrorKind::InUse,
        format!(
            "cannot delete {}: it is a disk of VM {} (undefine the VM with its storage, or pass #{{ force: true }} to delete it anyway)",
            vol.label(),
            users.iter().map(|u| format!("'{u}'")).collect::<Vec<_>>().join(", ")
        ),
    )
    .with("field", "volume")
    .with("value", vol.label())
    .with("vms", users.into_iter().map(Dynamic::from).collect::<Array>()))
}

// ------------------------------------------------------------ progress

pub(crate) fn progress_bar(total: u64, what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

fn spinner(what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

/// Run a blocking libvirt call on another thread so that a Ctrl-C is noticed
/// (libvirt cannot cancel it: we let it finish and report the stop, so the
/// caller can clean up). `watch` gives a progress message while it runs.
fn run_job<T: Send + 'static>(
    what: &str,
    watch: impl Fn() -> Option<String>,
    job: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> (Result<T, ScriptError>, Option<StopReason>) {
    let handle = std::thread::spawn(job);
    let bar = spinner(what);
    let mut stopped = None;
    while !handle.is_finished() {
        if stopped.is_none() {
            if let Some(reason) = stop::requested() {
                stopped = Some(reason);
                let note = format!(
                    "{what}: {}; waiting for libvirt to finish the call, then cleaning up",
                    reason.token()
                );
                match &bar {
                    Some(b) => b.set_message(note),
                    None => errln!("virtscript: {note}"),
                }
            }
        }
        if let Some(b) = &bar {
            if stopped.is_none() {
                if let Some(msg) = watch() {
                    b.set_message(format!("{what}: {msg}"));
                }
            }
            b.tick();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let result = match handle.join() {
        Ok(r) => r.map_err(|e| ScriptError::libvirt(&e)),
        Err(_) => Err(ScriptError::new(
            ErrorKind::Internal,
            format!("{what}: the worker thread failed"),
        )),
    };
    (result, stopped)
}

/// Bytes allocated on disk for a local file (for progress while libvirt copies).
fn allocated(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.blocks() * 512)
}

pub(crate) fn delete_quietly(vol: &StorageVol) {
    let _ = with_pool_retry(|| vol.delete(0));
}

// ------------------------------------------------------------ create

fn backing_from(
    ctx: &NativeCallContext,
    host: &Host,
    value: &Dynamic,
) -> ScriptResult<(Volume, VolumeXml)> {
    let vol = if let Some(v) = value.read_lock::<Volume>() {
        v.clone()
    } else if value.is_string() {
        let path = value.to_string();
        if !path.starts_with('/') {
            return Err(ScriptError::invalid(
                "backing",
                &path,
                "expected an absolute path or a Volume",
            )
            .at(ctx));
        }
        match host.conn().lookup_storage_vol_by_path(&path) {
            Ok(raw) => wrap(host, raw),
            Err(e) if is_code(&e, sys::VIR_ERR_NO_STORAGE_VOL) => {
                return Err(ScriptError::not_found(
                    "backing",
                    &path,
                    format!(
                        "backing: no storage volume at {path:?} (it must be in a running pool)"
                    ),
                )
                .at(ctx))
            }
            Err(e) => return Err(ScriptError::libvirt(&e).at(ctx)),
        }
    } else {
        return Err(ScriptError::invalid(
            "backing",
            value.to_string(),
            format!("expected a Volume or a path, not {}", value.type_name()),
        )
        .at(ctx));
    };
    let doc = vol.definition().at(ctx)?;
    Ok((vol, doc))
}

fn create_volume_impl(ctx: &NativeCallContext, pool: &Pool, spec: &Map) -> ScriptResult<Volume> {
    // Every key is asked for before anything is judged, so an unknown key is
    // refused first, as a typo; sizes are read where they are judged.
    let f = Fields::new("", spec);
    let name = plain_text(&f, "name").at(ctx)?;
    let backing = f.raw("backing");
    let format = f.string("format").at(ctx)?;
    let (capacity_given, allocation_given) = (f.raw("capacity"), f.raw("allocation"));
    f.finish().at(ctx)?;
    let name =
        name.ok_or_else(|| ScriptError::invalid("name", "()", "a volume needs a name").at(ctx))?;
    let pool_doc = pool.definition().at(ctx)?;
    let backing = match backing {
        Some(v) => Some(backing_from(ctx, &pool.host, v)?),
        None => None,
    };
    if let Some(f) = &format {
        if file_based(&pool_doc.pool_type) && !FILE_FORMATS.contains(&f.as_str()) {
            return Err(ScriptError::invalid(
                "format",
                f,
                format!("unknown volume format (known: {})", FILE_FORMATS.join(", ")),
            )
            .at(ctx));
        }
    }
    let format = match (&backing, format) {
        (Some(_), Some(f)) if f != "qcow2" && f != "qed" => {
            return Err(ScriptError::invalid(
                "format",
                f,
                "a volume with a backing file must be qcow2 (or qed)",
            )
            .at(ctx))
        }
        (_, Some(f)) => Some(f),
        (Some(_), None) => Some("qcow2".to_owned()),
        (None, None) if file_based(&pool_doc.pool_type) => Some("raw".to_owned()),
        (None, None) => None,
    };
    let backing_capacity = match &backing {
        Some((vol, _)) => Some(vol.raw.info().script(ctx)?.capacity),
        None => None,
    };
    let capacity = match (size_arg(&f, "capacity").at(ctx)?, backing_capacity) {
        (Some(c), Some(b)) if c < b => {
            return Err(ScriptError::invalid(
                "capacity",
                capacity_given.map(|v| v.to_string()).unwrap_or_default(),
                format!(
                    "smaller than the backing volume's capacity ({})",
                    format_size(b)
                ),
            )
            .at(ctx))
        }
        (Some(c), _) => c,
        (None, Some(b)) => b,
        (None, None) => {
            return Err(ScriptError::invalid(
                "capacity",
                "()",
                "a new volume needs a capacity, like \"10G\"",
            )
            .at(ctx))
        }
    };
    if capacity == 0 {
        let given = capacity_given.map(|v| v.to_string());
        return Err(ScriptError::invalid(
            "capacity",
            given.as_deref().unwrap_or("0"),
            "must be larger than 0",
        )
        .at(ctx));
    }
    let allocation = size_arg(&f, "allocation").at(ctx)?.unwrap_or(0);
    let alloc_text = || allocation_given.map(|v| v.to_string()).unwrap_or_default();
    if allocation > capacity {
        return Err(ScriptError::invalid(
            "allocation",
            alloc_text(),
            format!("larger than the capacity ({})", format_size(capacity)),
        )
        .at(ctx));
    }
    check_new_volume(pool, "name", &name).at(ctx)?;
    if allocation > 0 {
        let available = pool.raw.info().script(ctx)?.available;
        if allocation > available {
            return Err(ScriptError::invalid(
                "allocation",
                alloc_text(),
                format!(
                    "exceeds the space available in pool {} ({})",
                    pool.name(),
                    format_size(available)
                ),
            )
            .at(ctx));
        }
    }
    let mut doc = VolumeXml::new(&name);
    doc.capacity = Some(Size::bytes(capacity));
    doc.allocation = Some(Size::bytes(allocation));
    if format.as_deref() == Some("qcow2") {
        doc.target.compat = Some("1.1".into());
    }
    doc.target.format = format;
    if let Some((vol, bdoc)) = &backing {
        doc.backing = Some(BackingStore {
            path: Some(vol.raw.path().script(ctx)?),
            format: bdoc.target.format.clone(),
            permissions: None,
        });
    }
    let xml = doc.to_xml();
    let raw =
        create_in_pool(&pool.raw, || StorageVol::create_xml(&pool.raw, &xml, 0)).script(ctx)?;
    let undo = raw.clone();
    journal::record(
        "create_volume",
        format!("volume {}/{name}", pool.name()),
        Some(Box::new(move || undo.delete(0))),
    );
    Ok(wrap(&pool.host, raw))
}

// ------------------------------------------------------------ clone

/// How a volume is cloned (`vol.clone(name, #{ mode })`, `vm.clone(#{ storage })`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloneMode {
    Auto,
    Full,
    Linked,
    Reflink,
}

impl CloneMode {
    pub const NAMES: &'static [&'static str] = &["auto", "full", "linked", "reflink"];

    pub fn parse(text: &str) -> Option<CloneMode> {
        match text {
            "auto" => Some(CloneMode::Auto),
            "full" => Some(CloneMode::Full),
            "linked" => Some(CloneMode::Linked),
            "reflink" => Some(CloneMode::Reflink),
            _ => None,
        }
    }
}

/// Whether a reflink attempt failed because the storage cannot do it (as
/// opposed to a real error), so that `auto` may fall back to a full copy.
fn reflink_unsupported(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "not supported",
        "unsupported",
        "invalid cross-device",
        "invalid argument",
        "inappropriate ioctl",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// Why a reflink clone was not made.
enum Reflink {
    /// The storage cannot do it (`auto` falls back to a full copy).
    Unsupported(ScriptError),
    Failed(ScriptError),
}

struct CloneJob<'a> {
    ctx: &'a NativeCallContext<'a>,
    src: &'a Volume,
    src_doc: &'a VolumeXml,
    target: &'a Pool,
    name: &'a str,
    src_capacity: u64,
}

impl CloneJob<'_> {
    fn doc(&self) -> VolumeXml {
        let mut doc = VolumeXml::new(self.name);
        doc.capacity = Some(Size::bytes(self.src_capacity));
        doc.allocation = Some(Size::bytes(0));
        doc.target.format = self.src_doc.target.format.clone();
        if doc.target.format.as_deref() == Some("qcow2") {
            doc.target.compat = Some(
                self.src_doc
                    .target
                    .compat
                    .clone()
                    .unwrap_or_else(|| "1.1".into()),
            );
        }
        doc
    }

    /// `virStorageVolCreateXMLFrom` on a worker thread; an interrupted copy is
    /// deleted once libvirt returns.
    fn create_from(&self, flags: u32, what: &str) -> ScriptResult<StorageVol> {
        let xml = self.doc().to_xml();
        let pool = self.target.raw.clone();
        let src = self.src.raw.clone();
        let watch_path = self
            .target
            .definition()
            .ok()
            .and_then(|d| d.target.path)
            .filter(|_| is_local(&self.target.host))
            .map(|p| PathBuf::from(p).join(self.name));
        let (result, stopped) = run_job(
            what,
            || {
                let path = watch_path.as_ref()?;
                Some(format!("{} written", format_size(allocated(path)?)))
            },
            move || {
                create_in_pool(&pool, || {
                    StorageVol::create_xml_from(&pool, &xml, &src, flags)
                })
            },
        );
        match (result, stopped) {
            (Ok(vol), Some(reason)) => {
                delete_quietly(&vol);
                errln!(
                    "virtscript: {what} {}: removed the partial volume {}/{}",
                    reason.token(),
                    self.target.name(),
                    self.name
                );
                Err(stopped_error(self.ctx, reason))
            }
            (Err(_), Some(reason)) => Err(stopped_error(self.ctx, reason)),
            (Ok(vol), None) => Ok(vol),
            (Err(e), None) => Err(e.at(self.ctx)),
        }
    }

    fn full(&self) -> ScriptResult<StorageVol> {
        self.create_from(0, &format!("cloning {} to {}", self.src.label(), self.name))
    }

    fn linked(&self) -> ScriptResult<StorageVol> {
        let path = self.src.raw.path().script(self.ctx)?;
        if !path.starts_with('/') {
            return Err(ScriptError::invalid(
                "mode",
                "linked",
                format!(
                    "{} is not a file, so it cannot be a backing file",
                    self.src.label()
                ),
            )
            .at(self.ctx));
        }
        let mut doc = VolumeXml::new(self.name);
        doc.capacity = Some(Size::bytes(self.src_capacity));
        doc.allocation = Some(Size::bytes(0));
        doc.target.format = Some("qcow2".into());
        doc.target.compat = Some("1.1".into());
        doc.backing = Some(BackingStore {
            path: Some(path),
            format: Some(
                self.src_doc
                    .target
                    .format
                    .clone()
                    .unwrap_or_else(|| "raw".into()),
            ),
            permissions: None,
        });
        let xml = doc.to_xml();
        create_in_pool(&self.target.raw, || {
            StorageVol::create_xml(&self.target.raw, &xml, 0)
        })
        .script(self.ctx)
    }

    /// A copy-on-write clone: libvirt's reflink copy for raw volumes; for other
    /// formats (which libvirt copies with qemu-img, without reflink) FICLONE of
    /// the file into a fresh volume of the same format, on a local host.
    fn reflink(&self) -> Result<StorageVol, Reflink> {
        let format = self.src_doc.target.format.clone().unwrap_or_default();
        let unsupported = |why: String| {
            Reflink::Unsupported(ScriptError::new(
                ErrorKind::Unsupported,
                format!(
                    "mode: a reflink clone of {} is not possible: {why}; use mode \"full\" or \"auto\"",
                    self.src.label()
                ),
            )
            .with("field", "mode")
            .with("value", "reflink"))
        };
        if format == "raw" {
            let xml = self.doc().to_xml();
            return create_in_pool(&self.target.raw, || {
                StorageVol::create_xml_from(
                    &self.target.raw,
                    &xml,
                    &self.src.raw,
                    sys::VIR_STORAGE_VOL_CREATE_REFLINK,
                )
            })
            .map_err(|e| {
                if reflink_unsupported(e.message()) {
                    unsupported(format!(
                        "the filesystem does not support copy-on-write clones ({})",
                        e.message()
                    ))
                } else {
                    Reflink::Failed(ScriptError::libvirt(&e))
                }
            });
        }
        if !is_local(&self.src.host) {
            return Err(unsupported(format!(
                "libvirt reflinks only raw volumes, and this {format} volume is on another host"
            )));
        }
        let failed = |e: ScriptError| Reflink::Failed(e);
        let src_path = self
            .src
            .raw
            .path()
            .map_err(|e| failed(ScriptError::libvirt(&e)))?;
        let src_file = File::open(&src_path)
            .map_err(|e| unsupported(format!("cannot open {src_path} here ({e})")))?;
        let xml = self.doc().to_xml();
        let vol = create_in_pool(&self.target.raw, || {
            StorageVol::create_xml(&self.target.raw, &xml, 0)
        })
        .map_err(|e| failed(ScriptError::libvirt(&e)))?;
        let result = (|| {
            let dst_path = vol.path().map_err(|e| failed(ScriptError::libvirt(&e)))?;
            let dst = std::fs::OpenOptions::new()
                .write(true)
                .open(&dst_path)
                .map_err(|e| {
                    failed(ScriptError::new(
                        ErrorKind::Io,
                        format!("cannot open {dst_path}: {e}"),
                    ))
                })?;
            // SAFETY: both descriptors are open for the duration of the call.
            let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src_file.as_raw_fd()) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                return Err(unsupported(format!(
                    "the filesystem under {src_path} does not support copy-on-write clones ({err})"
                )));
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(vol),
            Err(e) => {
                delete_quietly(&vol);
                Err(e)
            }
        }
    }
}

fn clone_impl(
    ctx: &NativeCallContext,
    src: &Volume,
    new_name: &str,
    opts: &Map,
) -> ScriptResult<Volume> {
    let f = Fields::new("", opts);
    let mode_text = f.string("mode").at(ctx)?;
    let pool_given = f.raw("pool");
    let capacity_given = f.raw("capacity");
    f.finish().at(ctx)?;
    let mode_text = mode_text.unwrap_or_else(|| "auto".into());
    let Some(mode) = CloneMode::parse(&mode_text) else {
        return Err(ScriptError::invalid(
            "mode",
            &mode_text,
            "expected \"auto\", \"full\", \"linked\" or \"reflink\"",
        )
        .at(ctx));
    };
    let target = match pool_given {
        None => src.pool().script(ctx)?,
        Some(v) => {
            if let Some(p) = v.read_lock::<Pool>() {
                p.clone()
            } else if v.is_string() {
                super::pool::require_pool(ctx, &src.host, &v.to_string())?
            } else {
                return Err(ScriptError::invalid(
                    "pool",
                    v.to_string(),
                    "expected a Pool or a pool name",
                )
                .at(ctx));
            }
        }
    };
    let src_doc = src.definition().at(ctx)?;
    let src_capacity = src.raw.info().script(ctx)?.capacity;
    let capacity = size_arg(&f, "capacity").at(ctx)?;
    if let Some(c) = capacity {
        if c < src_capacity {
            return Err(ScriptError::invalid(
                "capacity",
                capacity_given.map(|v| v.to_string()).unwrap_or_default(),
                format!(
                    "a clone cannot be smaller than its source ({}); shrink it afterwards with resize(size, #{{ shrink: true }})",
                    format_size(src_capacity)
                ),
            )
            .at(ctx));
        }
    }
    check_new_volume(&target, "new_name", new_name).at(ctx)?;
    let (vol, used) = clone_volume(ctx, src, &src_doc, &target, new_name, mode, capacity)?;
    let undo = vol.raw.clone();
    journal::record(
        "clone_volume",
        format!("volume {} from {} ({used})", vol.label(), src.label()),
        Some(Box::new(move || undo.delete(0))),
    );
    Ok(vol)
}

/// Clone `src` as `name` in `target` (already checked to be free) the way
/// `mode` says, grown to `capacity` when given. Records nothing in the journal:
/// callers do (a VM clone records the whole clone as one change). Returns the
/// volume and the mode actually used (`auto` becomes `reflink` or `full`).
pub(crate) fn clone_volume(
    ctx: &NativeCallContext,
    src: &Volume,
    src_doc: &VolumeXml,
    target: &Pool,
    name: &str,
    mode: CloneMode,
    capacity: Option<u64>,
) -> ScriptResult<(Volume, &'static str)> {
    let src_capacity = src.raw.info().script(ctx)?.capacity;
    let job = CloneJob {
        ctx,
        src,
        src_doc,
        target,
        name,
        src_capacity,
    };
    let (raw, used) = match mode {
        CloneMode::Full => (job.full()?, "full"),
        CloneMode::Linked => {
            // The overlay gets the larger capacity at once.
            let job = CloneJob {
                src_capacity: capacity.unwrap_or(src_capacity),
                ..job
            };
            (job.linked()?, "linked")
        }
        CloneMode::Reflink => match job.reflink() {
            Ok(v) => (v, "reflink"),
            Err(Reflink::Unsupported(e) | Reflink::Failed(e)) => return Err(e.at(ctx)),
        },
        CloneMode::Auto => match job.reflink() {
            Ok(v) => (v, "reflink"),
            Err(Reflink::Unsupported(_)) => (job.full()?, "full"),
            Err(Reflink::Failed(e)) => return Err(e.at(ctx)),
        },
    };
    let vol = wrap(&target.host, raw);
    if let Some(c) = capacity {
        let now = vol.raw.info().script(ctx)?.capacity;
        if c > now {
            if let Err(e) = with_pool_retry(|| vol.raw.resize(c, 0)) {
                delete_quietly(&vol.raw);
                return Err(ScriptError::libvirt(&e)
                    .with(
                        "message",
                        format!(
                            "cloned {} but could not grow the clone to {}: {} (the clone was removed)",
                            src.label(),
                            format_size(c),
                            e.message()
                        ),
                    )
                    .at(ctx));
            }
        }
    }
    Ok((vol, used))
}

// ------------------------------------------------------------ streams

const CHUNK: usize = 256 * 1024;

fn io_error(what: &str, path: &Path, e: std::io::Error) -> ScriptError {
    ScriptError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
        .with("path", path.display().to_string())
}

/// Send a local file into a volume, holes as holes. Returns bytes of data sent.
fn upload_impl(ctx: &NativeCallContext, vol: &Volume, local: &Path) -> ScriptResult<(u64, u64)> {
    let file = File::open(local).map_err(|e| io_error("cannot open", local, e).at(ctx))?;
    let size = file
        .metadata()
        .map_err(|e| io_error("cannot read", local, e).at(ctx))?
        .len();
    let capacity = vol.raw.info().script(ctx)?.capacity;
    let format = vol.definition().at(ctx)?.target.format.unwrap_or_default();
    // A raw volume's capacity is its size; other formats store their own header.
    if format == "raw" && size > capacity {
        return Err(ScriptError::invalid(
            "local_path",
            local.display(),
            format!(
                "the file ({}) is larger than the volume {} ({})",
                format_size(size),
                vol.label(),
                format_size(capacity)
            ),
        )
        .at(ctx));
    }
    // libvirt skips over a hole without zeroing it: holes are only safe where
    // the volume holds no data yet (all of a fresh thin volume, and past the end
    // of its file); elsewhere they are sent as zeros.
    let info = vol.raw.info().script(ctx)?;
    let safe_from = if info.allocation == 0 {
        0
    } else {
        vol.raw
            .info_flags(sys::VIR_STORAGE_VOL_GET_PHYSICAL)
            .map(|i| i.allocation)
            .unwrap_or(u64::MAX)
    };
    let stream = Stream::new(vol.host.conn(), 0).script(ctx)?;
    vol.raw
        .upload(&stream, 0, size, sys::VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
        .script(ctx)?;
    let bar = progress_bar(size, &format!("uploading to {}", vol.label()));
    let fd = file.as_raw_fd();
    let mut buf = vec![0u8; CHUNK];
    let mut offset: u64 = 0;
    let mut sent: u64 = 0;
    let result: Result<(), Box<EvalAltResult>> = (|| {
        while offset < size {
            if let Some(reason) = stop::requested() {
                return Err(stopped_error(ctx, reason));
            }
            // SAFETY: lseek on a descriptor we own.
            let data = unsafe { libc::lseek(fd, offset as libc::off_t, libc::SEEK_DATA) };
            let data = if data < 0 { size } else { data as u64 };
            if data > offset {
                let zeros_end = data.min(offset.max(safe_from));
                let zeros = vec![0u8; CHUNK];
                while offset < zeros_end {
                    if let Some(reason) = stop::requested() {
                        return Err(stopped_error(ctx, reason));
                    }
                    let n = ((zeros_end - offset) as usize).min(CHUNK);
                    send_all(&stream, &zeros[..n]).script(ctx)?;
                    offset += n as u64;
                    if let Some(b) = &bar {
                        b.inc(n as u64);
                    }
                }
                if data > offset {
                    send_hole(&stream, data - offset).script(ctx)?;
                    if let Some(b) = &bar {
                        b.inc(data - offset);
                    }
                    offset = data;
                }
                continue;
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fd, offset as libc::off_t, libc::SEEK_HOLE) };
            let hole = if hole < 0 {
                size
            } else {
                (hole as u64).min(size)
            };
            while offset < hole {
                if let Some(reason) = stop::requested() {
                    return Err(stopped_error(ctx, reason));
                }
                let want = ((hole - offset) as usize).min(CHUNK);
                let n = file
                    .read_at(&mut buf[..want], offset)
                    .map_err(|e| io_error("cannot read", local, e).at(ctx))?;
                if n == 0 {
                    return Err(ScriptError::new(
                        ErrorKind::Io,
                        format!("{} shrank while it was being uploaded", local.display()),
                    )
                    .at(ctx));
                }
                send_all(&stream, &buf[..n]).script(ctx)?;
                offset += n as u64;
                sent += n as u64;
                if let Some(b) = &bar {
                    b.inc(n as u64);
                }
            }
        }
        Ok(())
    })();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match result {
        Ok(()) => {
            stream.finish().script(ctx)?;
            Ok((size, sent))
        }
        Err(e) => {
            let _ = stream.abort();
            Err(e)
        }
    }
}

/// Receive a volume into a local file, holes as holes, written under a
/// temporary name and renamed when complete. Returns (size, data bytes).
fn download_impl(ctx: &NativeCallContext, vol: &Volume, local: &Path) -> ScriptResult<(u64, u64)> {
    let file_name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            ScriptError::invalid("local_path", local.display(), "needs a file name").at(ctx)
        })?;
    let tmp = local.with_file_name(format!(".{file_name}.part-{}", std::process::id()));
    let total = vol
        .raw
        .info_flags(sys::VIR_STORAGE_VOL_GET_PHYSICAL)
        .map(|i| i.allocation)
        .unwrap_or(0);
    let stream = Stream::new(vol.host.conn(), 0).script(ctx)?;
    vol.raw
        .download(&stream, 0, 0, sys::VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
        .script(ctx)?;
    let file = File::create(&tmp).map_err(|e| io_error("cannot create", &tmp, e).at(ctx))?;
    let bar = progress_bar(total, &format!("downloading {}", vol.label()));
    let mut buf = vec![0u8; CHUNK];
    let mut offset: u64 = 0;
    let mut data: u64 = 0;
    let result: ScriptResult<()> = (|| loop {
        if let Some(reason) = stop::requested() {
            return Err(stopped_error(ctx, reason));
        }
        match recv_sparse(&stream, &mut buf).script(ctx)? {
            Received::Data(n) => {
                file.write_all_at(&buf[..n], offset)
                    .map_err(|e| io_error("cannot write", &tmp, e).at(ctx))?;
                offset += n as u64;
                data += n as u64;
                if let Some(b) = &bar {
                    b.inc(n as u64);
                }
            }
            Received::Hole(n) => {
                offset += n;
                if let Some(b) = &bar {
                    b.inc(n);
                }
            }
            Received::End => return Ok(()),
        }
    })();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let finished = result.and_then(|()| {
        file.set_len(offset)
            .map_err(|e| io_error("cannot write", &tmp, e).at(ctx))?;
        stream.finish().script(ctx)?;
        file.sync_all()
            .map_err(|e| io_error("cannot write", &tmp, e).at(ctx))?;
        std::fs::rename(&tmp, local).map_err(|e| io_error("cannot rename to", local, e).at(ctx))
    });
    if let Err(e) = finished {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((offset, data))
}

fn vol_format(vol: &Volume) -> Result<String, ScriptError> {
    Ok(vol.definition()?.target.format.unwrap_or_default())
}

fn vol_physical(vol: &Volume) -> Result<i64, ScriptError> {
    match vol.raw.info_flags(sys::VIR_STORAGE_VOL_GET_PHYSICAL) {
        Ok(info) => Ok(info.allocation as i64),
        Err(_) => {
            let doc = vol.definition()?;
            match doc.physical.as_ref().and_then(Size::to_bytes) {
                Some(p) => Ok(p as i64),
                None => Ok(vol
                    .raw
                    .info()
                    .map_err(|e| ScriptError::libvirt(&e))?
                    .allocation as i64),
            }
        }
    }
}

fn vol_backing(vol: &Volume) -> Result<Dynamic, ScriptError> {
    let doc = vol.definition()?;
    Ok(match doc.backing {
        Some(b) if b.path.is_some() => {
            let mut m = Map::new();
            m.insert("path".into(), b.path.unwrap_or_default().into());
            m.insert(
                "format".into(),
                b.format.map(Dynamic::from).unwrap_or(Dynamic::UNIT),
            );
            m.into()
        }
        _ => Dynamic::UNIT,
    })
}

/// A size a volume call was given: `"10G"` or bytes (0 allowed here: each
/// caller says what 0 means for it).
fn size_arg(f: &Fields, key: &str) -> Result<Option<u64>, ScriptError> {
    match f.raw(key) {
        None => Ok(None),
        Some(v) => args::size(&f.name(key), v, NumberUnit::Bytes, true).map(Some),
    }
}

/// Options that are `#{ force }` alone (`delete`, `upload`).
fn force_only(ctx: &NativeCallContext, opts: &Map) -> ScriptResult<bool> {
    let f = Fields::new("", opts);
    let force = f.boolean("force").at(ctx)?.unwrap_or(false);
    f.finish().at(ctx)?;
    Ok(force)
}

#[export_module(manifest)]
pub mod volume_api {
    use super::*;

    pub type Volume = super::Volume;

    /// Every volume of a running pool (`virsh vol-list`), in libvirt's order
    /// (the REPL prints them as a table sorted by name).
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// pool.create_volume(#{ name: "a.img", capacity: "1G" });
    /// assert_eq(pool.volumes().map(|v| v.name), ["a.img"]);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn volumes(ctx: NativeCallContext, pool: &mut Pool) -> ScriptResult<Array> {
        let vols = pool.raw.list_all_volumes(0).script(&ctx)?;
        let mut out: Vec<super::Volume> = vols.into_iter().map(|v| wrap(&pool.host, v)).collect();
        out.sort_by_key(|v| v.name());
        Ok(out.into_iter().map(Dynamic::from).collect())
    }

    /// The volume named `name` in this pool; an error naming it when there is none.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// pool.create_volume(#{ name: "a.img", capacity: "1G" });
    /// assert_eq(pool.volume("a.img").capacity, 1073741824);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn volume(ctx: NativeCallContext, pool: &mut Pool, name: &str) -> ScriptResult<Volume> {
        match lookup_in(pool, name).script(&ctx)? {
            Some(v) => Ok(v),
            None => Err(ScriptError::not_found(
                "name",
                name,
                format!("no volume named {name:?} in pool {}", pool.name()),
            )
            .at(&ctx)),
        }
    }

    /// The volume named `name` in this pool, or `()`.
    ///
    /// ```rhai
    /// assert(HOST.pool("default-pool").find_volume("nope.img") == ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn find_volume(
        ctx: NativeCallContext,
        pool: &mut Pool,
        name: &str,
    ) -> ScriptResult<Dynamic> {
        Ok(lookup_in(pool, name)
            .script(&ctx)?
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT))
    }

    /// The storage volume at `path` (`virsh vol-info --path`), in whatever pool
    /// holds it; an error naming the path when no running pool has it.
    ///
    /// ```rhai
    /// let vol = HOST.pool("default-pool").create_volume(#{ name: "a.qcow2", capacity: "1G", format: "qcow2" });
    /// assert_eq(HOST.volume_by_path(vol.path).name, "a.qcow2");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn volume_by_path(
        ctx: NativeCallContext,
        host: &mut Host,
        path: &str,
    ) -> ScriptResult<Volume> {
        match host.conn().lookup_storage_vol_by_path(path) {
            Ok(raw) => Ok(wrap(host, raw)),
            Err(e) if is_code(&e, sys::VIR_ERR_NO_STORAGE_VOL) => Err(ScriptError::not_found(
                "path",
                path,
                format!("no volume of a running storage pool is at {path:?} (refresh the pool if the file is new)"),
            )
            .at(&ctx)),
            Err(e) => Err(e).script(&ctx),
        }
    }

    /// Create a volume (`virsh vol-create-as`): `#{ name, capacity: "10G", format: "qcow2",
    /// allocation: "0", backing: vol_or_path }`. Sizes take `"10G"` (GiB), `"512M"`, `"1.5T"`,
    /// `"2GB"` (10^9) or bytes. Volumes are thin by default (allocation 0); `format` defaults
    /// to `raw` (`qcow2` with `backing`, which makes a copy-on-write overlay of that volume
    /// with its capacity unless a larger one is given). Everything is checked before anything
    /// is created.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let vol = pool.create_volume(#{ name: "kvm1.qcow2", capacity: "10G", format: "qcow2" });
    /// assert_eq(vol.capacity, 10 * 1024 * 1024 * 1024);
    /// assert_eq(vol.format, "qcow2");
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn create_volume(
        ctx: NativeCallContext,
        pool: &mut Pool,
        spec: Map,
    ) -> ScriptResult<Volume> {
        create_volume_impl(&ctx, pool, &spec)
    }

    /// The volume's name.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "n.img", capacity: "1M" });
    /// assert_eq(v.name, "n.img");
    /// ```
    #[rhai_fn(get = "name", pure)]
    pub fn name(vol: &mut Volume) -> String {
        vol.name()
    }

    /// The host the volume is on.
    ///
    /// ```rhai
    /// assert_eq(HOST.pool("default-pool").create_volume(#{ name: "h.img", capacity: "1M" }).host.uri, HOST.uri);
    /// ```
    #[rhai_fn(get = "host", pure)]
    pub fn host(vol: &mut Volume) -> Host {
        vol.host.clone()
    }

    /// The volume's key (its path, for file-based pools).
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "k.img", capacity: "1M" });
    /// assert_eq(v.key, "/default-pool/k.img");
    /// ```
    #[rhai_fn(get = "key", pure, return_raw)]
    pub fn key(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<String> {
        vol.raw.key().script(&ctx)
    }

    /// The volume's path on the host (what a VM's disk points at).
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "p.img", capacity: "1M" });
    /// assert_eq(v.path, "/default-pool/p.img");
    /// ```
    #[rhai_fn(get = "path", pure, return_raw)]
    pub fn path(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<String> {
        vol.raw.path().script(&ctx)
    }

    /// The pool the volume is in.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "q.img", capacity: "1M" });
    /// assert_eq(v.pool.name, "default-pool");
    /// ```
    #[rhai_fn(get = "pool", pure, return_raw)]
    pub fn pool(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<Pool> {
        vol.pool().script(&ctx)
    }

    /// The volume's format (`raw`, `qcow2`, ...), or `""` when it has none.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "f.img", capacity: "1M" });
    /// assert_eq(v.format, "raw");
    /// ```
    #[rhai_fn(get = "format", pure, return_raw)]
    pub fn format(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<String> {
        vol_format(vol).at(&ctx)
    }

    /// The volume's capacity (virtual size) in bytes.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "c.img", capacity: "512M" });
    /// assert_eq(v.capacity, 512 * 1024 * 1024);
    /// ```
    #[rhai_fn(get = "capacity", pure, return_raw)]
    pub fn capacity(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<i64> {
        Ok(vol.raw.info().script(&ctx)?.capacity as i64)
    }

    /// Bytes the volume occupies on the host's storage (0 for a fresh thin volume).
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "t.img", capacity: "1G" });
    /// assert(v.allocation < v.capacity);
    /// ```
    #[rhai_fn(get = "allocation", pure, return_raw)]
    pub fn allocation(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<i64> {
        Ok(vol.raw.info().script(&ctx)?.allocation as i64)
    }

    /// The size of the volume's file on the host (for qcow2: header and data, not the
    /// virtual size); where the driver cannot tell, the allocation.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "ph.img", capacity: "1M" });
    /// assert(v.physical >= 0);
    /// ```
    #[rhai_fn(get = "physical", pure, return_raw)]
    pub fn physical(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<i64> {
        vol_physical(vol).at(&ctx)
    }

    /// The volume this one is an overlay of: `#{ path, format }`, or `()`.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let base = pool.create_volume(#{ name: "base.qcow2", capacity: "1G", format: "qcow2" });
    /// assert(base.backing == ());
    /// let top = pool.create_volume(#{ name: "top.qcow2", backing: base });
    /// assert_eq(top.backing.path, base.path);
    /// ```
    #[rhai_fn(get = "backing", pure, return_raw)]
    pub fn backing(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<Dynamic> {
        vol_backing(vol).at(&ctx)
    }

    /// The volume's XML as libvirt reports it (`virsh vol-dumpxml`).
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "x.img", capacity: "1M" });
    /// assert(v.xml.contains("<name>x.img</name>"));
    /// ```
    #[rhai_fn(get = "xml", pure, return_raw)]
    pub fn xml(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<String> {
        vol.raw.xml_desc(0).script(&ctx)
    }

    /// What `virsh vol-info` shows, and more: `name`, `pool`, `path`, `type` (`file`,
    /// `block`, ...), `format`, `capacity`, `allocation`, `physical` (bytes), `backing`.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "i.img", capacity: "1G" });
    /// let i = v.info();
    /// assert_eq(i.type, "file");
    /// assert_eq(i.capacity, 1073741824);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn info(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<Map> {
        let info = vol.raw.info().script(&ctx)?;
        let kind = match info.kind {
            sys::VIR_STORAGE_VOL_FILE => "file",
            sys::VIR_STORAGE_VOL_BLOCK => "block",
            sys::VIR_STORAGE_VOL_DIR => "dir",
            sys::VIR_STORAGE_VOL_NETWORK => "network",
            sys::VIR_STORAGE_VOL_NETDIR => "netdir",
            sys::VIR_STORAGE_VOL_PLOOP => "ploop",
            _ => "unknown",
        };
        let mut m = Map::new();
        m.insert("name".into(), vol.name().into());
        m.insert("pool".into(), vol.pool_name().into());
        m.insert("path".into(), vol.raw.path().script(&ctx)?.into());
        m.insert("type".into(), kind.into());
        m.insert("format".into(), vol_format(vol).at(&ctx)?.into());
        m.insert("capacity".into(), (info.capacity as i64).into());
        m.insert("allocation".into(), (info.allocation as i64).into());
        m.insert("physical".into(), vol_physical(vol).at(&ctx)?.into());
        m.insert("backing".into(), vol_backing(vol).at(&ctx)?);
        Ok(m)
    }

    /// The volumes (in any running pool of the host) whose backing file this volume is.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let base = pool.create_volume(#{ name: "b.qcow2", capacity: "1G", format: "qcow2" });
    /// pool.create_volume(#{ name: "o.qcow2", backing: base });
    /// assert_eq(base.dependents().map(|v| v.name), ["o.qcow2"]);
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn dependents(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<Array> {
        Ok(super::dependents(vol)
            .at(&ctx)?
            .into_iter()
            .map(Dynamic::from)
            .collect())
    }

    /// Change the capacity (`virsh vol-resize`): `"20G"`, or `"+5G"` to grow by that much.
    /// Growing is the default; shrinking needs `resize(size, #{ shrink: true })`.
    /// Returns `#{ capacity, previous }`.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "r.img", capacity: "1G" });
    /// let refused = "";
    /// try { v.resize("2G"); } catch (e) { refused = e.message; }
    /// // On a real host the volume grows to 2G; the embedded test driver cannot resize.
    /// assert(refused.contains("not supported by the connection driver"), refused);
    /// assert_eq(v.capacity, 1073741824);
    /// ```
    #[rhai_fn(name = "resize", pure, return_raw)]
    pub fn resize(ctx: NativeCallContext, vol: &mut Volume, size: Dynamic) -> ScriptResult<Map> {
        resize_opts(ctx, vol, size, Map::new())
    }

    /// `resize` with options: `shrink: true` allows a smaller capacity (data past the new
    /// end is lost), `force: true` resizes even a volume other volumes are overlays of.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "r.img", capacity: "2G" });
    /// let refused = "";
    /// try { v.resize("1G"); } catch (e) { refused = e.message; }
    /// assert(refused.contains("shrink"), refused);   // shrinking needs #{ shrink: true }
    /// assert_eq(v.capacity, 2147483648);
    /// ```
    #[rhai_fn(name = "resize", pure, return_raw)]
    pub fn resize_opts(
        ctx: NativeCallContext,
        vol: &mut Volume,
        size: Dynamic,
        opts: Map,
    ) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        let shrink = f.boolean("shrink").at(&ctx)?.unwrap_or(false);
        let force = f.boolean("force").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        let previous = vol.raw.info().script(&ctx)?.capacity;
        let new = match size.clone().into_string() {
            Ok(text) if text.trim_start().starts_with('+') => {
                let delta =
                    crate::runtime::units::parse_size(text.trim_start().trim_start_matches('+'))
                        .map_err(|p| ScriptError::invalid("size", &text, p).at(&ctx))?;
                previous.checked_add(delta).ok_or_else(|| {
                    ScriptError::invalid("size", &text, "size is too large").at(&ctx)
                })?
            }
            _ => args::size("size", &size, NumberUnit::Bytes, true).at(&ctx)?,
        };
        if new < previous && !shrink {
            return Err(ScriptError::invalid(
                "size",
                size.to_string(),
                format!(
                    "smaller than the current capacity of {} ({}); pass #{{ shrink: true }} to shrink it (data past the new end is lost)",
                    vol.label(),
                    format_size(previous)
                ),
            )
            .at(&ctx));
        }
        if new == 0 {
            return Err(
                ScriptError::invalid("size", size.to_string(), "must be larger than 0").at(&ctx),
            );
        }
        let mut out = Map::new();
        out.insert("previous".into(), (previous as i64).into());
        out.insert("capacity".into(), (new as i64).into());
        if new == previous {
            return Ok(out);
        }
        refuse_if_backing(vol, "resize", force).at(&ctx)?;
        let flags = if new < previous {
            sys::VIR_STORAGE_VOL_RESIZE_SHRINK
        } else {
            0
        };
        with_pool_retry(|| vol.raw.resize(new, flags)).script(&ctx)?;
        journal::record(
            "resize_volume",
            format!(
                "volume {} {} -> {}",
                vol.label(),
                format_size(previous),
                format_size(new)
            ),
            None,
        );
        Ok(out)
    }

    /// Overwrite the volume's data (`virsh vol-wipe`), with zeros. Returns
    /// `#{ wiped: path, algorithm }`. Refused for a volume that other volumes are
    /// overlays of.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "w.img", capacity: "1M" });
    /// let refused = "";
    /// try { v.wipe(); } catch (e) { refused = e.message; }
    /// // On a real host the volume is zeroed; the embedded test driver cannot wipe.
    /// assert(refused.contains("not supported by the connection driver"), refused);
    /// ```
    #[rhai_fn(name = "wipe", pure, return_raw)]
    pub fn wipe(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<Map> {
        wipe_opts(ctx, vol, Map::new())
    }

    /// `wipe` with options: `algorithm` is one of libvirt's: `zero`, `nnsa`, `dod`, `bsi`,
    /// `gutmann`, `schneier`, `pfitzner7`, `pfitzner33`, `random`, `trim`; `force: true`
    /// wipes even a backing volume.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "w.img", capacity: "1M" });
    /// let refused = #{};
    /// try { v.wipe(#{ algorithm: "shred" }); } catch (e) { refused = e; }
    /// assert_eq(refused.field, "algorithm");   // not one of libvirt's algorithms
    /// assert_eq(refused.value, "shred");
    /// ```
    #[rhai_fn(name = "wipe", pure, return_raw)]
    pub fn wipe_opts(ctx: NativeCallContext, vol: &mut Volume, opts: Map) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        let algorithm = f.string("algorithm").at(&ctx)?;
        let force = f.boolean("force").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        let algorithm = algorithm.unwrap_or_else(|| "zero".into());
        let Some((_, alg)) = WIPE_ALGORITHMS.iter().find(|(n, _)| *n == algorithm) else {
            let names: Vec<&str> = WIPE_ALGORITHMS.iter().map(|(n, _)| *n).collect();
            return Err(ScriptError::invalid(
                "algorithm",
                &algorithm,
                format!("unknown wipe algorithm (libvirt's: {})", names.join(", ")),
            )
            .at(&ctx));
        };
        refuse_if_backing(vol, "wipe", force).at(&ctx)?;
        let path = vol.raw.path().script(&ctx)?;
        let raw = vol.raw.clone();
        let alg = *alg;
        let (result, stopped) = run_job(
            &format!("wiping {}", vol.label()),
            || None,
            move || with_pool_retry(|| raw.wipe_pattern(alg, 0)),
        );
        result.at(&ctx)?;
        journal::record(
            "wipe_volume",
            format!("volume {} ({algorithm})", vol.label()),
            None,
        );
        if let Some(reason) = stopped {
            return Err(stopped_error(&ctx, reason));
        }
        let mut out = Map::new();
        out.insert("wiped".into(), path.into());
        out.insert("algorithm".into(), algorithm.into());
        Ok(out)
    }

    /// Delete the volume and its data (`virsh vol-delete`). Returns
    /// `#{ removed: path, name, pool }`. Refused for a volume other volumes are
    /// overlays of, or that a defined VM has as a disk, naming them;
    /// `delete(#{ force: true })` deletes it anyway. It cannot be undone: a
    /// rolled-back `transaction` lists it in `irreversible`.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "gone.img", capacity: "1M" });
    /// let r = v.delete();
    /// assert_eq(r.removed, "/default-pool/gone.img");
    /// ```
    #[rhai_fn(name = "delete", pure, return_raw)]
    pub fn delete(ctx: NativeCallContext, vol: &mut Volume) -> ScriptResult<Map> {
        delete_opts(ctx, vol, Map::new())
    }

    /// `delete` with `#{ force: true }`: delete even a volume other volumes are overlays of
    /// (they become unusable).
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let base = pool.create_volume(#{ name: "b.qcow2", capacity: "1G", format: "qcow2" });
    /// pool.create_volume(#{ name: "o.qcow2", backing: base });
    /// let refused = "";
    /// try { base.delete(); } catch (e) { refused = e.message; }
    /// assert(refused.contains("o.qcow2"), refused);   // it backs o.qcow2
    /// let r = base.delete(#{ force: true });
    /// assert_eq(r.removed, "/default-pool/b.qcow2");
    /// assert(pool.find_volume("b.qcow2") == ());
    /// ```
    #[rhai_fn(name = "delete", pure, return_raw)]
    pub fn delete_opts(ctx: NativeCallContext, vol: &mut Volume, opts: Map) -> ScriptResult<Map> {
        let force = force_only(&ctx, &opts)?;
        refuse_if_backing(vol, "delete", force).at(&ctx)?;
        let path = vol.raw.path().script(&ctx)?;
        refuse_if_vm_disk(vol, &path, force).at(&ctx)?;
        let (name, pool) = (vol.name(), vol.pool_name());
        with_pool_retry(|| vol.raw.delete(0)).script(&ctx)?;
        // Its data is gone: a transaction rolled back says it cannot put it back.
        journal::record_irreversible("delete_volume", format!("volume {pool}/{name}"));
        let mut out = Map::new();
        out.insert("removed".into(), path.into());
        out.insert("name".into(), name.into());
        out.insert("pool".into(), pool.into());
        Ok(out)
    }

    /// Write a local file into the volume over a libvirt stream (`virsh vol-upload
    /// --sparse`): holes travel as holes. A progress bar shows on a terminal; Ctrl-C stops
    /// it. Returns `#{ uploaded: bytes, data: bytes sent that were not holes }`.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "u.img", capacity: "1M" });
    /// let refused = #{};
    /// try { v.upload("disk.img"); } catch (e) { refused = e; }
    /// // With a local disk.img on a real host, its bytes become the volume's.
    /// assert_eq(refused.field, "local_path");
    /// assert(refused.message.contains("no such file"), refused.message);
    /// ```
    #[rhai_fn(name = "upload", pure, return_raw)]
    pub fn upload(ctx: NativeCallContext, vol: &mut Volume, local_path: &str) -> ScriptResult<Map> {
        upload_opts(ctx, vol, local_path, Map::new())
    }

    /// `upload` with `#{ force: true }`: write even into a volume other volumes are overlays of.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "u.img", capacity: "1M" });
    /// let refused = #{};
    /// try { v.upload("disk.img", #{ force: true }); } catch (e) { refused = e; }
    /// assert_eq(refused.field, "local_path");   // there is no disk.img here
    /// ```
    #[rhai_fn(name = "upload", pure, return_raw)]
    pub fn upload_opts(
        ctx: NativeCallContext,
        vol: &mut Volume,
        local_path: &str,
        opts: Map,
    ) -> ScriptResult<Map> {
        let force = force_only(&ctx, &opts)?;
        let local = Path::new(local_path);
        if !local.is_file() {
            return Err(ScriptError::invalid("local_path", local_path, "no such file").at(&ctx));
        }
        refuse_if_backing(vol, "upload into", force).at(&ctx)?;
        let (size, data) = upload_impl(&ctx, vol, local)?;
        journal::record(
            "upload_volume",
            format!("volume {} from {local_path}", vol.label()),
            None,
        );
        let mut out = Map::new();
        out.insert("uploaded".into(), (size as i64).into());
        out.insert("data".into(), (data as i64).into());
        Ok(out)
    }

    /// Save the volume's content to a local file over a libvirt stream (`virsh
    /// vol-download --sparse`), keeping holes as holes. The file is written under a
    /// temporary name and renamed when complete, so an interrupted download leaves
    /// nothing. An existing file is refused unless `#{ overwrite: true }`.
    /// Returns `#{ downloaded: bytes, data: bytes that were not holes, path }`.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "d.img", capacity: "1M" });
    /// let refused = "";
    /// try { v.download("copy.img"); } catch (e) { refused = e.message; }
    /// // On a real host this writes copy.img; the embedded test driver cannot.
    /// assert(refused.contains("not supported by the connection driver"), refused);
    /// ```
    #[rhai_fn(name = "download", pure, return_raw)]
    pub fn download(
        ctx: NativeCallContext,
        vol: &mut Volume,
        local_path: &str,
    ) -> ScriptResult<Map> {
        download_opts(ctx, vol, local_path, Map::new())
    }

    /// `download` with `#{ overwrite: true }` to replace an existing file.
    ///
    /// ```rhai
    /// let v = HOST.pool("default-pool").create_volume(#{ name: "d.img", capacity: "1M" });
    /// let refused = "";
    /// try { v.download("copy.img", #{ overwrite: true }); } catch (e) { refused = e.message; }
    /// // On a real host this replaces copy.img; the embedded test driver cannot.
    /// assert(refused.contains("not supported by the connection driver"), refused);
    /// ```
    #[rhai_fn(name = "download", pure, return_raw)]
    pub fn download_opts(
        ctx: NativeCallContext,
        vol: &mut Volume,
        local_path: &str,
        opts: Map,
    ) -> ScriptResult<Map> {
        let f = Fields::new("", &opts);
        let overwrite = f.boolean("overwrite").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        if Path::new(local_path).is_dir() {
            return Err(ScriptError::invalid("local_path", local_path, "is a directory").at(&ctx));
        }
        // The one check for local files we write: never over an existing one
        // unless asked; on the test driver and under --plan, a private directory.
        let local = crate::api::policy::local_path(
            vol.host.uri(),
            "local_path",
            local_path,
            true,
            overwrite,
            crate::api::policy::Writer::Us,
        )
        .at(&ctx)?;
        let (size, data) = download_impl(&ctx, vol, &local)?;
        let mut out = Map::new();
        out.insert("downloaded".into(), (size as i64).into());
        out.insert("data".into(), (data as i64).into());
        out.insert("path".into(), local_path.into());
        Ok(out)
    }

    /// Clone the volume as `new_name` in the same pool: a reflink (copy-on-write) clone
    /// where the filesystem can, otherwise a full sparse copy (`virsh vol-clone`).
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let src = pool.create_volume(#{ name: "kvm1.qcow2", capacity: "10G", format: "qcow2" });
    /// let copy = src.clone("kvm2.qcow2");
    /// assert_eq(copy.capacity, src.capacity);
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone(ctx: NativeCallContext, vol: &mut Volume, new_name: &str) -> ScriptResult<Volume> {
        clone_impl(&ctx, vol, new_name, &Map::new())
    }

    /// Clone with options: `mode` is `"auto"` (default: reflink where possible, else full),
    /// `"full"` (an independent sparse copy), `"linked"` (a qcow2 overlay backed by this
    /// volume: instant and tiny, but tied to it) or `"reflink"` (a filesystem copy-on-write
    /// clone, an error where the filesystem cannot); `capacity: "20G"` grows the clone in
    /// the same step; `pool` puts it in another pool (a Pool or a name).
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let base = pool.create_volume(#{ name: "base.qcow2", capacity: "10G", format: "qcow2" });
    /// let vm = base.clone("vm1.qcow2", #{ mode: "linked", capacity: "20G" });
    /// assert_eq(vm.backing.path, base.path);
    /// assert_eq(vm.capacity, 20 * 1024 * 1024 * 1024);
    /// ```
    #[rhai_fn(name = "clone", pure, return_raw)]
    pub fn clone_opts(
        ctx: NativeCallContext,
        vol: &mut Volume,
        new_name: &str,
        opts: Map,
    ) -> ScriptResult<Volume> {
        clone_impl(&ctx, vol, new_name, &opts)
    }

    /// `Volume(pool/name)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(vol: &mut Volume) -> String {
        format!("Volume({})", vol.label())
    }
}
