//! `pool.create_volume(spec)`: a checked spec made into a volume.
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::storage_vol::StorageVol;

use super::spec::volume_spec;
use super::{wrap, Volume};
use crate::api::error::{LibvirtResultExt, ScriptResult};
use crate::api::pool::create_in_pool;
use crate::api::Pool;
use crate::runtime::journal;
use crate::xml::storage::{BackingStore, Size, VolumeXml};

fn create_volume_impl(ctx: &NativeCallContext, pool: &Pool, spec: &Map) -> ScriptResult<Volume> {
    let spec = volume_spec(ctx, pool, spec)?;
    let name = &spec.name;
    let mut doc = VolumeXml::new(name);
    doc.capacity = Some(Size::bytes(spec.capacity));
    doc.allocation = Some(Size::bytes(spec.allocation));
    if spec.format.as_deref() == Some("qcow2") {
        doc.target.compat = Some("1.1".into());
    }
    doc.target.format = spec.format.clone();
    if let Some((vol, bdoc)) = &spec.backing {
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

#[export_module(manifest)]
pub mod volume_create_api {
    use super::*;

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
}
