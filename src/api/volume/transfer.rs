//! `vol.upload(path)` and `vol.download(path)`: a local file to and from a
//! volume over libvirt's sparse streams, holes as holes, with a progress bar.
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use rhai::plugin::*;
use rhai::{EvalAltResult, Map, NativeCallContext};
use virt::stream::Stream;
use virt::sys;

use super::delete::refuse_if_backing;
use super::progress::progress_bar;
use super::spec::force_only;
use super::Volume;
use crate::api::args::Fields;
use crate::api::error::{
    stopped as stopped_error, AtExt, LibvirtResultExt, ScriptError, ScriptResult,
};
use crate::runtime::journal;
use crate::runtime::stop;
use crate::runtime::units::format_size;
use crate::runtime::ErrorKind;
use crate::virt_ext::stream::{recv_sparse, send_all, send_hole, Received};

/// How much one stream message carries.
pub(super) const CHUNK: usize = 256 * 1024;

fn io_error(what: &str, path: &Path, e: std::io::Error) -> ScriptError {
    ScriptError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
        .with("path", path.display().to_string())
}

/// What a sparse read looks for next.
#[derive(Clone, Copy)]
enum Extent {
    Data,
    Hole,
}

/// Where the next data or hole of `file` starts at or after `offset`; `None`
/// past the end (or where the filesystem cannot tell). The one raw call here:
/// std's `Seek` has no `SEEK_DATA`/`SEEK_HOLE`, and reads go through
/// `read_at`, which the file offset this moves does not affect.
fn next(file: &File, offset: u64, what: Extent) -> Option<u64> {
    let whence = match what {
        Extent::Data => libc::SEEK_DATA,
        Extent::Hole => libc::SEEK_HOLE,
    };
    let offset = libc::off_t::try_from(offset).ok()?;
    // SAFETY: lseek on a descriptor `file` holds open; it reads no memory.
    let at = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
    u64::try_from(at).ok()
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
    let mut buf = vec![0u8; CHUNK];
    let mut offset: u64 = 0;
    let mut sent: u64 = 0;
    let result: Result<(), Box<EvalAltResult>> = (|| {
        while offset < size {
            if let Some(reason) = stop::requested() {
                return Err(stopped_error(ctx, reason));
            }
            let data = next(&file, offset, Extent::Data).unwrap_or(size);
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
            let hole = next(&file, offset, Extent::Hole).map_or(size, |h| h.min(size));
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

#[export_module(manifest)]
pub mod volume_transfer_api {
    use super::*;

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
}
