//! Markers of copies in flight. libvirt makes a clone's volume under its final
//! name and fills it in (`virStorageVolCreateXMLFrom`); when libvirtd or
//! virtscript dies midway, a half-made volume is left under that name, and a
//! re-run's `find_volume` would take it for the finished copy. So a copy
//! first makes an empty volume `NAME.virtscript-partial` beside it and removes
//! it once libvirt has answered. A lookup that finds a volume with its marker
//! and no copy running (libvirt refuses to delete a volume it is still
//! allocating) removes both, says so, and reports the volume absent.
//!
//! Why a volume: it is the one thing a pool can hold besides volumes, it is
//! on the daemon (so it survives the client, and works on remote hosts) and
//! it costs one lookup to check.
use std::collections::BTreeSet;
use std::sync::Mutex;

use virt::error::Error;
use virt::storage_vol::StorageVol;
use virt::sys;

use super::Pool;
use crate::api::pool::is_code;
use crate::runtime::log;
use crate::xml::storage::{Size, VolumeXml};

/// The marker's name is the volume's with this appended.
pub const SUFFIX: &str = ".virtscript-partial";

/// The name of the marker of a copy to `name`.
pub fn marker_name(name: &str) -> String {
    format!("{name}{SUFFIX}")
}

/// `(pool, volume)` pairs this process is copying now: their markers are not stale.
static COPYING: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

fn copying() -> std::sync::MutexGuard<'static, BTreeSet<(String, String)>> {
    COPYING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The marker of one copy; [`Marker::done`] removes it once libvirt answered.
pub struct Marker {
    key: (String, String),
    raw: Option<StorageVol>,
}

/// Mark `name` in `pool` as being copied. Pools that cannot hold an empty raw
/// volume get no marker (the copy goes on: the marker only helps a re-run).
pub fn begin(pool: &Pool, name: &str) -> Marker {
    let key = (pool.name(), name.to_owned());
    copying().insert(key.clone());
    let mut doc = VolumeXml::new(&marker_name(name));
    doc.capacity = Some(Size::bytes(0));
    doc.target.format = Some("raw".into());
    let raw = StorageVol::create_xml(&pool.raw, &doc.to_xml(), 0)
        .inspect_err(|e| {
            tracing::debug!("no copy marker for {}/{name}: {}", pool.name(), e.message())
        })
        .ok();
    Marker { key, raw }
}

impl Marker {
    /// libvirt answered (the copy is complete, or failed and was removed).
    pub fn done(mut self) {
        if let Some(m) = self.raw.take() {
            let _ = m.delete(0);
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        copying().remove(&self.key);
    }
}

/// `vol`, named `name` in `pool`, unless it is what an interrupted copy left:
/// then it and its marker are removed (and that said), and the answer is `None`.
pub fn unless_half_made(
    pool: &Pool,
    name: &str,
    vol: StorageVol,
) -> Result<Option<StorageVol>, Error> {
    if name.ends_with(SUFFIX) || copying().contains(&(pool.name(), name.to_owned())) {
        return Ok(Some(vol));
    }
    let marker = match pool.raw.lookup_storage_vol_by_name(&marker_name(name)) {
        Ok(m) => m,
        Err(e) if is_code(&e, sys::VIR_ERR_NO_STORAGE_VOL) => return Ok(Some(vol)),
        Err(e) => return Err(e),
    };
    match vol.delete(0) {
        Ok(()) => {}
        // "still being allocated": a copy is running in libvirt right now.
        Err(e) if is_code(&e, sys::VIR_ERR_OPERATION_INVALID) => return Ok(Some(vol)),
        Err(e) => return Err(e),
    }
    let _ = marker.delete(0);
    log::notice(&format!(
        "virtscript: removed volume {}/{name}: its copy was interrupted (libvirtd or virtscript \
         stopped midway), so it was half-made",
        pool.name()
    ));
    Ok(None)
}
