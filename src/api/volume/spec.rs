//! What scripts pass to volume calls: the `create_volume` spec (read through
//! [`Fields`] and checked in full before anything is made), sizes, and the
//! `#{ force }` options.
use rhai::{Dynamic, Map, NativeCallContext};
use virt::sys;

use super::{check_new_volume, wrap, Volume};
use crate::api::args::{self, Fields, NumberUnit};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::pool::{is_code, plain_text};
use crate::api::{Host, Pool};
use crate::runtime::units::format_size;
use crate::xml::storage::VolumeXml;

/// Formats of file-based pools (`dir`, `fs`, `netfs`), as libvirt names them.
const FILE_FORMATS: &[&str] = &[
    "raw", "qcow2", "qcow", "qed", "vmdk", "vpc", "vdi", "vhdx", "bochs", "cloop", "cow", "dmg",
    "iso", "ploop", "fat", "dir",
];

fn file_based(pool_type: &str) -> bool {
    matches!(pool_type, "dir" | "fs" | "netfs")
}

/// A `create_volume` spec, checked: the name is free, the sizes fit.
pub(super) struct VolumeSpec {
    pub name: String,
    pub capacity: u64,
    pub allocation: u64,
    pub format: Option<String>,
    /// The volume to make an overlay of, with its definition.
    pub backing: Option<(Volume, VolumeXml)>,
}

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

/// Read and check a `create_volume` spec against `pool`.
pub(super) fn volume_spec(
    ctx: &NativeCallContext,
    pool: &Pool,
    spec: &Map,
) -> ScriptResult<VolumeSpec> {
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
    if let Some(given) = &format {
        if file_based(&pool_doc.pool_type) && !FILE_FORMATS.contains(&given.as_str()) {
            return Err(ScriptError::invalid(
                "format",
                given,
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
    Ok(VolumeSpec {
        name,
        capacity,
        allocation,
        format,
        backing,
    })
}

/// A size a volume call was given: `"10G"` or bytes (0 allowed here: each
/// caller says what 0 means for it).
pub(super) fn size_arg(f: &Fields, key: &str) -> Result<Option<u64>, ScriptError> {
    match f.raw(key) {
        None => Ok(None),
        Some(v) => args::size(&f.name(key), v, NumberUnit::Bytes, true).map(Some),
    }
}

/// Options that are `#{ force }` alone (`delete`, `upload`).
pub(super) fn force_only(ctx: &NativeCallContext, opts: &Map) -> ScriptResult<bool> {
    let f = Fields::new("", opts);
    let force = f.boolean("force").at(ctx)?.unwrap_or(false);
    f.finish().at(ctx)?;
    Ok(force)
}
