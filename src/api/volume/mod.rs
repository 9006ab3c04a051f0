//! `Volume` script object: storage volumes (`virsh vol-*`). This file holds
//! the type, its lookups and what a script reads of a volume; the rest is a
//! file a concern: [`spec`] (what scripts pass), [`create`], [`clone`]
//! (full / linked / reflink), [`delete`] (what stands on a volume, and
//! deleting it), [`resize`], [`wipe`], [`transfer`] (sparse upload and
//! download), [`copy`] (to a pool of any host), [`progress`] and
//! [`partial`] (markers of copies in flight, so a re-run knows a half-made one).
pub mod clone;
pub mod copy;
pub mod create;
pub mod delete;
mod object;
pub mod partial;
pub mod progress;
pub mod resize;
pub mod spec;
pub mod transfer;
pub mod wipe;

use crate::runtime::ErrorKind;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use virt::error::Error;
use virt::storage_vol::StorageVol;
use virt::sys;

use super::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use super::pool::{check_name, is_code};
use super::{Host, Pool};
use crate::xml::storage::{Size, VolumeXml};

// Reached as `volume::…` from VMs.
pub(crate) use clone::{check_nonsparse, clone_volume, CloneHow};
pub use clone::CloneMode;
pub(crate) use delete::delete_quietly;

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

pub(crate) fn lookup_in(pool: &Pool, name: &str) -> Result<Option<Volume>, Error> {
    match pool.raw.lookup_storage_vol_by_name(name) {
        Ok(raw) => Ok(partial::unless_half_made(pool, name, raw)?.map(|raw| wrap(&pool.host, raw))),
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

    /// `Volume(pool/name)`.
    #[rhai_fn(name = "to_string", name = "to_debug", pure)]
    pub fn to_string(vol: &mut Volume) -> String {
        format!("Volume({})", vol.label())
    }
}
