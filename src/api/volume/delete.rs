//! What stands on a volume (overlays backed by it, VMs with it as a disk),
//! and deleting it. The same checks guard `resize`, `wipe` and `upload`.
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map, NativeCallContext};
use virt::storage_vol::StorageVol;
use virt::sys;

use super::spec::force_only;
use super::{wrap, Volume};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::pool::with_pool_retry;
use crate::runtime::journal;
use crate::runtime::ErrorKind;
use crate::xml::storage::VolumeXml;

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
pub(super) fn refuse_if_backing(
    vol: &Volume,
    action: &str,
    force: bool,
) -> Result<(), ScriptError> {
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

/// Remove a volume made by a step that then failed or was stopped; its
/// error is the one to report, so this one's is dropped.
pub(crate) fn delete_quietly(vol: &StorageVol) {
    let _ = with_pool_retry(|| vol.delete(0));
}

#[export_module(manifest)]
pub mod volume_delete_api {
    use super::*;

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
}
