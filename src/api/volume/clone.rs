//! `vol.clone(name, #{ mode })`: full, linked (a qcow2 overlay) and reflink
//! (copy-on-write) clones, also the storage step of `vm.clone`.
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;

use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::storage_vol::StorageVol;
use virt::sys;

use super::delete::delete_quietly;
use super::progress::{allocated, run_job};
use super::spec::size_arg;
use super::{check_new_volume, wrap, Volume};
use crate::api::args::Fields;
use crate::api::error::{
    stopped as stopped_error, AtExt, LibvirtResultExt, ScriptError, ScriptResult,
};
use crate::api::pool::{create_in_pool, is_local, with_pool_retry};
use crate::api::Pool;
use crate::runtime::journal;
use crate::runtime::units::format_size;
use crate::runtime::ErrorKind;
use crate::xml::storage::{BackingStore, Size, VolumeXml};

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

/// A reflink between two filesystems (`EXDEV`).
fn cross_device(message: &str) -> bool {
    message.to_ascii_lowercase().contains("cross-device")
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
    /// `false`: a fully allocated copy (virt-clone `--nonsparse`).
    sparse: bool,
    /// The caller's name for the mode (`mode`, `storage`), for messages.
    key: &'static str,
}

/// The embedded test driver (`test:///...`), whose volumes live in memory.
fn is_test_driver(host: &crate::api::Host) -> bool {
    host.uri().starts_with("test:")
}

impl CloneJob<'_> {
    fn doc(&self) -> VolumeXml {
        let mut doc = VolumeXml::new(self.name);
        doc.capacity = Some(Size::bytes(self.src_capacity));
        // libvirt copies sparsely when the allocation is below the capacity;
        // at the capacity it allocates the whole file (fallocate for raw,
        // qemu-img preallocation=falloc for qcow2) and writes zeros as zeros.
        let allocation = if self.sparse { 0 } else { self.src_capacity };
        doc.allocation = Some(Size::bytes(allocation));
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
        let marker = super::partial::begin(self.target, self.name);
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
        // libvirt answered: the copy is whole, or failed and was removed.
        // (No answer, a lost connection: the marker stays for the re-run.)
        if !matches!(&result, Err(e) if e.is_connection_lost()) {
            marker.done();
        }
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
        // qemu-img (qcow2) preallocates only with this flag; libvirt refuses it
        // for raw volumes (they follow the allocation) and the test driver
        // takes no flags.
        let flags = if !self.sparse
            && self.src_doc.target.format.as_deref() == Some("qcow2")
            && !is_test_driver(&self.target.host)
        {
            sys::VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA
        } else {
            0
        };
        let what = format!(
            "cloning {} to {}{}",
            self.src.label(),
            self.name,
            if self.sparse { "" } else { " (fully allocated)" }
        );
        self.create_from(flags, &what)
    }

    fn linked(&self) -> ScriptResult<StorageVol> {
        let path = self.src.raw.path().script(self.ctx)?;
        if !path.starts_with('/') {
            return Err(ScriptError::invalid(
                self.key,
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
                    "{key}: a reflink clone of {} is not possible: {why}; use {key} \"full\" or \"auto\"",
                    self.src.label(),
                    key = self.key
                ),
            )
            .with("field", self.key)
            .with("value", "reflink"))
        };
        if is_test_driver(&self.src.host) || is_test_driver(&self.target.host) {
            return Err(unsupported(
                "the test driver keeps its volumes in memory, with no files to share blocks; \
                 a reflink needs both files on one filesystem that supports it (btrfs, xfs)"
                    .into(),
            ));
        }
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
                if cross_device(e.message()) {
                    unsupported(format!(
                        "{} and pool {} are on different filesystems, and a reflink needs both \
                         files on one ({})",
                        self.src.label(),
                        self.target.name(),
                        e.message()
                    ))
                } else if reflink_unsupported(e.message()) {
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
                "libvirt reflinks only raw volumes (it copies {format} with qemu-img, which \
                 makes no reflink), and virtscript reflinks other formats itself only on this \
                 machine, while this volume is on {}",
                self.src.host.uri()
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
            ficlone(&dst, &src_file).map_err(|err| {
                if err.raw_os_error() == Some(libc::EXDEV) {
                    unsupported(format!(
                        "{src_path} and {dst_path} are on different filesystems, and a reflink \
                         needs both files on one ({err})"
                    ))
                } else {
                    unsupported(format!(
                        "the filesystem under {src_path} does not support copy-on-write clones ({err})"
                    ))
                }
            })
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

/// Make `dst` share `src`'s blocks (copy-on-write). The one raw call here:
/// std has no reflink (`FICLONE`): its copies duplicate the data.
fn ficlone(dst: &File, src: &File) -> std::io::Result<()> {
    // SAFETY: both descriptors are open for the duration of the call, which
    // reads and writes no memory of ours.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
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
    let sparse = f.boolean("sparse").at(ctx)?.unwrap_or(true);
    f.finish().at(ctx)?;
    let mode_text = mode_text.unwrap_or_else(|| "auto".into());
    let Some(mut mode) = CloneMode::parse(&mode_text) else {
        return Err(ScriptError::invalid(
            "mode",
            &mode_text,
            "expected \"auto\", \"full\", \"linked\" or \"reflink\"",
        )
        .at(ctx));
    };
    if !sparse {
        check_nonsparse("mode", mode, &mode_text).at(ctx)?;
        // A reflink shares blocks: a fully allocated copy is a full one.
        mode = CloneMode::Full;
    }
    let target = match pool_given {
        None => src.pool().script(ctx)?,
        Some(v) => {
            if let Some(p) = v.read_lock::<Pool>() {
                p.clone()
            } else if v.is_string() {
                crate::api::pool::require_pool(ctx, &src.host, &v.to_string())?
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
    let (vol, used) = clone_volume(
        ctx,
        src,
        &src_doc,
        &target,
        new_name,
        CloneHow {
            capacity,
            sparse,
            ..CloneHow::mode(mode)
        },
    )?;
    let undo = vol.raw.clone();
    journal::record(
        "clone_volume",
        format!("volume {} from {} ({used})", vol.label(), src.label()),
        Some(Box::new(move || undo.delete(0))),
    );
    Ok(vol)
}

/// `sparse: false` (a fully allocated copy) with the mode `key` chose:
/// refused for the modes that copy no data (`linked` stores only changes,
/// `reflink` shares the source's blocks).
pub(crate) fn check_nonsparse(key: &str, mode: CloneMode, mode_text: &str) -> Result<(), ScriptError> {
    let why = match mode {
        CloneMode::Linked => "makes an overlay that stores only the changes",
        CloneMode::Reflink => "shares the source's blocks",
        CloneMode::Auto | CloneMode::Full => return Ok(()),
    };
    Err(ScriptError::invalid(
        "sparse",
        "false",
        format!(
            "asks for a fully allocated copy, and {key} \"{mode_text}\" {why}; use {key} \"full\" (or \"auto\")"
        ),
    ))
}

/// How [`clone_volume`] copies.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CloneHow {
    pub mode: CloneMode,
    /// Grow the clone to this many bytes.
    pub capacity: Option<u64>,
    /// `false`: a fully allocated copy.
    pub sparse: bool,
    /// The option that chose the mode (`mode`, `storage`), for messages.
    pub key: &'static str,
}

impl CloneHow {
    pub fn mode(mode: CloneMode) -> CloneHow {
        CloneHow {
            mode,
            capacity: None,
            sparse: true,
            key: "mode",
        }
    }
}

/// Clone `src` as `name` in `target` (already checked to be free) the way
/// `how.mode` says, grown to `how.capacity` when given. Records nothing in the journal:
/// callers do (a VM clone records the whole clone as one change). Returns the
/// volume and the mode actually used (`auto` becomes `reflink` or `full`).
pub(crate) fn clone_volume(
    ctx: &NativeCallContext,
    src: &Volume,
    src_doc: &VolumeXml,
    target: &Pool,
    name: &str,
    how: CloneHow,
) -> ScriptResult<(Volume, &'static str)> {
    let CloneHow {
        mode,
        capacity,
        sparse,
        key,
    } = how;
    let src_capacity = src.raw.info().script(ctx)?.capacity;
    let job = CloneJob {
        ctx,
        src,
        src_doc,
        target,
        name,
        src_capacity,
        sparse,
        key,
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

#[export_module(manifest)]
pub mod volume_clone_api {
    use super::*;

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
    /// the same step; `pool` puts it in another pool (a Pool or a name); `sparse: false`
    /// makes a fully allocated copy (allocation = capacity; `virsh vol-clone
    /// --prealloc-metadata` for qcow2), with `mode` `"auto"` or `"full"`.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let base = pool.create_volume(#{ name: "base.qcow2", capacity: "10G", format: "qcow2" });
    /// let vm = base.clone("vm1.qcow2", #{ mode: "linked", capacity: "20G" });
    /// assert_eq(vm.backing.path, base.path);
    /// assert_eq(vm.capacity, 20 * 1024 * 1024 * 1024);
    /// let raw = pool.create_volume(#{ name: "data.raw", capacity: "64M", format: "raw" });
    /// let thick = raw.clone("data-thick.raw", #{ sparse: false });
    /// assert_eq(thick.allocation, thick.capacity);
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
}
