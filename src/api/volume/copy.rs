//! `vol.copy_to(pool)`: a volume copied into a pool of any host, this one or
//! another, through libvirt's own streams (`virsh vol-download` piped into
//! `virsh vol-upload`), so it works wherever libvirt reaches: holes travel
//! as lengths, not zeros, and nothing is written on the machine running the
//! script.
use crate::runtime::ErrorKind;
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::storage_vol::StorageVol;
use virt::stream::Stream;
use virt::sys;

use crate::api::args::Fields;
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::volume::progress::progress_bar;
use crate::api::volume::transfer::CHUNK;
use crate::api::volume::{check_new_volume, delete_quietly, wrap};
use crate::api::{Pool, Volume};
use crate::runtime::journal;
use crate::runtime::stop;
use crate::virt_ext::stream::{recv_sparse, send_all, send_hole, Received};
use crate::xml::tree::Element;

/// The new volume's definition: the source's capacity and format, nothing
/// preallocated (libvirt would otherwise allocate a raw file in full, and the
/// holes the stream keeps would be zeros on disk).
fn definition_for(src: &Volume, name: &str) -> Result<String, ScriptError> {
    let xml = src.raw.xml_desc(0).map_err(|e| ScriptError::libvirt(&e))?;
    let root = Element::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()))?;
    let capacity = src
        .raw
        .info()
        .map_err(|e| ScriptError::libvirt(&e))?
        .capacity;
    let format = root
        .path(&["target", "format"])
        .and_then(|f| f.attr("type"))
        .unwrap_or("raw")
        .to_owned();
    Ok(new_volume_xml(name, capacity, &format))
}

/// A new volume's XML: `name`, `capacity` bytes and `format`, nothing
/// preallocated (its data arrives through a stream).
pub(crate) fn new_volume_xml(name: &str, capacity: u64, format: &str) -> String {
    format!(
        "<volume><name>{}</name><capacity unit='bytes'>{capacity}</capacity>\
         <allocation>0</allocation><target><format type='{}'/></target></volume>",
        quick_xml::escape::escape(name),
        quick_xml::escape::escape(format)
    )
}

/// A volume backed by another needs that backing file where it goes.
fn check_backing(src: &Volume, dest: &Pool) -> Result<(), ScriptError> {
    let xml = src.raw.xml_desc(0).map_err(|e| ScriptError::libvirt(&e))?;
    let root = Element::parse(&xml).map_err(|e| ScriptError::new(ErrorKind::Xml, e.to_string()))?;
    let Some(backing) = root.path(&["backingStore", "path"]).map(|p| p.text()) else {
        return Ok(());
    };
    if dest
        .host
        .conn()
        .lookup_storage_vol_by_path(&backing)
        .is_ok()
    {
        return Ok(());
    }
    Err(ScriptError::new(
        ErrorKind::Invalid,
        format!(
            "volume {} is a linked clone of {backing}, which host {} does not have: copy that first, or clone a full copy",
            src.label(),
            dest.host.uri()
        ),
    )
    .with("field", "backing")
    .with("value", backing))
}

/// Pipe the source's download stream into the new volume's upload stream.
/// Returns the bytes of data moved (holes not counted).
fn pipe(
    ctx: &NativeCallContext,
    src: &Volume,
    down: Stream,
    dest: &StorageVol,
    dest_pool: &Pool,
) -> ScriptResult<u64> {
    let total = src
        .raw
        .info_flags(sys::VIR_STORAGE_VOL_GET_PHYSICAL)
        .map(|i| i.allocation)
        .unwrap_or(0);
    let up = Stream::new(dest_pool.host.conn(), 0).script(ctx)?;
    if let Err(e) = dest.upload(&up, 0, 0, sys::VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) {
        let _ = down.abort();
        return Err(e).script(ctx);
    }
    let name = dest.name().unwrap_or_default();
    let bar = progress_bar(
        total,
        &format!("copying {} to {}", src.label(), dest_pool.host.uri()),
    );
    let mut buf = vec![0u8; CHUNK];
    let mut data: u64 = 0;
    let result: ScriptResult<()> = (|| loop {
        if let Some(reason) = stop::requested() {
            return Err(crate::api::error::stopped(ctx, reason));
        }
        match recv_sparse(&down, &mut buf).script(ctx)? {
            Received::Data(n) => {
                send_all(&up, &buf[..n]).script(ctx)?;
                data += n as u64;
                if let Some(b) = &bar {
                    b.inc(n as u64);
                }
            }
            Received::Hole(n) => {
                send_hole(&up, n).script(ctx)?;
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
    if let Err(e) = result {
        let _ = down.abort();
        let _ = up.abort();
        tracing::debug!(volume = %name, "copy stopped; the partial volume is removed");
        return Err(e);
    }
    if let Err(e) = down.finish() {
        let _ = up.abort();
        return Err(e).script(ctx);
    }
    up.finish().script(ctx)?;
    Ok(data)
}

fn open_download(src: &Volume) -> Result<Stream, ScriptError> {
    let down = Stream::new(src.host.conn(), 0).map_err(|e| ScriptError::libvirt(&e))?;
    match src
        .raw
        .download(&down, 0, 0, sys::VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
    {
        Ok(()) => Ok(down),
        Err(e) if e.code() == virt::error::ErrorNumber::NoSupport.into() => Err(ScriptError::new(
            ErrorKind::Unsupported,
            format!(
                "host {} cannot stream volumes out (libvirt has no volume download there{}), so {} cannot be copied from it",
                src.host.uri(),
                if crate::api::host::in_process(src.host.uri()) { ": the embedded test driver keeps no volume data" } else { "" },
                src.label()
            ),
        )
        .with("field", "volume")
        .with("value", src.label())),
        Err(e) => Err(ScriptError::libvirt(&e)),
    }
}

/// `src` copied into `dest` (see `copy_to`); also the storage step of an offline migration.
pub(crate) fn copy_to(
    ctx: &NativeCallContext,
    src: &Volume,
    dest: &Pool,
    opts: &Map,
) -> ScriptResult<Volume> {
    let f = Fields::new("", opts);
    let name = f.string("name").at(ctx)?;
    f.finish().at(ctx)?;
    let name = name.unwrap_or_else(|| src.name());
    check_new_volume(dest, "name", &name).at(ctx)?;
    check_backing(src, dest).at(ctx)?;
    let xml = definition_for(src, &name).at(ctx)?;
    // The source stream first: a host that cannot stream volumes (the test
    // driver) is refused before anything is made.
    let down = open_download(src).at(ctx)?;
    let made = match StorageVol::create_xml(&dest.raw, &xml, 0) {
        Ok(made) => made,
        Err(e) => {
            let _ = down.abort();
            return Err(e).script(ctx);
        }
    };
    // A copy cut short (Ctrl-C, a lost connection) leaves nothing behind.
    if let Err(e) = pipe(ctx, src, down, &made, dest) {
        delete_quietly(&made);
        return Err(e);
    }
    let copy = wrap(&dest.host, made);
    let label = copy.label();
    let undo_vol = copy.raw.clone();
    journal::record_with(
        "copy_volume",
        format!(
            "volume {label} (from {} on {})",
            src.label(),
            src.host.uri()
        ),
        move || Some(Box::new(move || undo_vol.delete(0)) as journal::Undo),
    );
    Ok(copy)
}

#[export_module(manifest)]
pub mod volume_copy_api {
    use super::*;

    /// Copy the volume into `pool`, on this host or another one (`virsh
    /// vol-download` piped into `vol-upload` on the other host): a new volume
    /// of the same name (or `name:` given in the 2-argument form), capacity
    /// and format, holes kept as holes. It goes through libvirt's streams,
    /// so it works for remote hosts and writes nothing on the machine running
    /// the script; a progress bar shows on a terminal. A copy cut short (Ctrl-C,
    /// a lost connection) removes the partial volume. A linked clone needs its
    /// backing file on the destination.
    ///
    /// ```rhai
    /// let pool = HOST.pool("default-pool");
    /// let vol = pool.create_volume(#{ name: "data.img", capacity: "4M", format: "raw" });
    /// // On a real host: let copy = vol.copy_to(connect(OTHER).pool("images"), #{ name: "data-copy.img" });
    /// // The embedded test driver keeps no volume data, so it cannot stream
    /// // one: refused before anything is made.
    /// let refused = ();
    /// try { vol.copy_to(pool, #{ name: "data-copy.img" }); } catch (e) { refused = e; }
    /// assert_eq(refused.kind, "unsupported");
    /// assert_eq(refused.value, "default-pool/data.img");
    /// assert_eq(pool.find_volume("data-copy.img"), ());
    /// ```
    #[rhai_fn(name = "copy_to", pure, return_raw)]
    pub fn copy_to_opts(
        ctx: NativeCallContext,
        vol: &mut Volume,
        pool: Pool,
        opts: Map,
    ) -> ScriptResult<Volume> {
        copy_to(&ctx, vol, &pool, &opts)
    }

    /// `vol.copy_to(pool)`: the copy keeps the volume's name.
    ///
    /// ```rhai
    /// let here = HOST.pool("default-pool");
    /// let vol = here.create_volume(#{ name: "disk.img", capacity: "1M", format: "raw" });
    /// // A name already in the destination pool is refused first.
    /// let refused = ();
    /// try { vol.copy_to(here); } catch (e) { refused = e; }
    /// assert_eq(refused.field, "name");
    /// assert_eq(refused.value, "disk.img");
    /// ```
    #[rhai_fn(name = "copy_to", pure, return_raw)]
    pub fn copy_to_same_name(
        ctx: NativeCallContext,
        vol: &mut Volume,
        pool: Pool,
    ) -> ScriptResult<Volume> {
        copy_to(&ctx, vol, &pool, &Map::new())
    }
}
