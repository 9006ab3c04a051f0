//! `disks[i]`: an existing volume, a new volume in a pool, or a path.
use std::collections::BTreeSet;

use rhai::{Dynamic, Map};
use virt::connect::Connect;

use super::{check_source, NewVolume, Platform};
use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::api::Volume;
use crate::xml::domain::{Disk, Domain};
use crate::xml::tree::Element;

const BUSES: &[&str] = &["virtio", "sata", "scsi", "ide", "usb"];
const CACHES: &[&str] = &[
    "none",
    "writeback",
    "writethrough",
    "directsync",
    "unsafe",
    "default",
];

/// `disks[i]`: `#{ volume }`, `#{ pool, size, format }` or `#{ path }`, plus options.
/// A path outside storage pools and the boot/ISO directories needs `allow_path`
/// (the VM's, passed in, or the disk's own). Buses come from `platform`: the
/// default (`Platform::disk_bus`, `Platform::cdrom_bus`) and the check that
/// the machine has the one given.
#[allow(clippy::too_many_arguments)]
pub fn plan_disk(
    conn: &Connect,
    field: &str,
    item: &Dynamic,
    vm_name: &str,
    d: &Domain,
    taken: &mut BTreeSet<String>,
    allow_path: bool,
    platform: &Platform,
) -> Result<(Disk, Option<NewVolume>), ScriptError> {
    // A bare string is a path, a bare Volume a volume.
    let map: Map = if let Some(m) = item.read_lock::<Map>() {
        m.clone()
    } else if item.is_string() {
        let mut m = Map::new();
        m.insert("path".into(), item.clone());
        m
    } else if item.read_lock::<Volume>().is_some() {
        let mut m = Map::new();
        m.insert("volume".into(), item.clone());
        m
    } else {
        return Err(ScriptError::invalid(
            field,
            show(item),
            format!(
                "must be a map like #{{ pool: \"default\", size: \"10G\" }}, not {}",
                item.type_name()
            ),
        ));
    };
    let f = Fields::new(field, &map);
    let device = f
        .one_of("device", &["disk", "cdrom", "floppy", "lun"])?
        .unwrap_or_else(|| "disk".into());
    let bus = match f.one_of("bus", BUSES)? {
        Some(bus) => {
            platform.check_bus(&f.name("bus"), &bus)?;
            bus
        }
        None if device == "cdrom" => platform.cdrom_bus(),
        None => platform.disk_bus(),
    };
    let mut disk = Disk {
        disk_type: "file".into(),
        device,
        target: String::new(),
        bus: Some(bus.clone()),
        cache: f.one_of("cache", CACHES)?,
        readonly: f.boolean("readonly")?.unwrap_or(false),
        shareable: f.boolean("shareable")?.unwrap_or(false),
        boot_order: f.positive("boot_order", 1000)?,
        ..Disk::default()
    };
    let pool_name = f.string("pool")?;
    let path = f.string("path")?;
    let given_name = f.string("name")?;
    let own_allow_path = f.boolean("allow_path")?.unwrap_or(false);
    // Whether these fit depends on the kind of disk: checked below.
    let (volume, size, format) = (f.raw("volume"), f.raw("size"), f.raw("format"));
    f.finish()?;
    let kind = f.exactly_one(
        &["volume", "pool", "path"],
        "give exactly one of volume, pool (with size) or path",
    )?;
    disk.target = d.next_target(&bus);
    let mut new_volume = None;
    match kind {
        "volume" => {
            let v = volume.expect("exactly_one saw it");
            let vol = v.read_lock::<Volume>().ok_or_else(|| {
                f.wrong(
                    "volume",
                    v,
                    "a Volume (from pool.volume(...) or pool.create_volume(...))",
                )
            })?;
            disk.source = Some(vol.raw.path().map_err(|e| ScriptError::libvirt(&e))?);
            disk.format = vol
                .raw
                .xml_desc(0)
                .ok()
                .and_then(|x| Element::parse(&x).ok())
                .and_then(|t| {
                    t.path(&["target", "format"])
                        .and_then(|e| e.attr("type").map(str::to_owned))
                });
            if let Some(v) = size {
                return Err(ScriptError::invalid(
                    &f.name("size"),
                    show(v),
                    "only goes with pool (a new volume)",
                ));
            }
        }
        "pool" => {
            let pool_name = pool_name.unwrap_or_default();
            let pool = conn.lookup_storage_pool_by_name(&pool_name).map_err(|_| {
                ScriptError::invalid(&f.name("pool"), &pool_name, "no storage pool by this name")
            })?;
            // Without a size, the guest OS's recommended storage (`os`).
            let recommended = platform.os.as_ref().and_then(|o| o.storage);
            let size = match f.size("size", false)? {
                Some(size) => size,
                None => recommended.ok_or_else(|| {
                    ScriptError::invalid(
                        &f.name("size"),
                        "()",
                        "a new volume needs a size, like \"10G\" (or an os with a recommended disk size)",
                    )
                })?,
            };
            let format = f
                .one_of("format", &["qcow2", "raw"])?
                .unwrap_or_else(|| "qcow2".into());
            let vol_name = match given_name.clone() {
                Some(n) => n,
                None => {
                    let ext = if format == "raw" { "img" } else { "qcow2" };
                    let mut i = 0;
                    loop {
                        let candidate = if i == 0 {
                            format!("{vm_name}.{ext}")
                        } else {
                            format!("{vm_name}-{i}.{ext}")
                        };
                        if !taken.contains(&candidate)
                            && pool.lookup_storage_vol_by_name(&candidate).is_err()
                        {
                            break candidate;
                        }
                        i += 1;
                    }
                }
            };
            if taken.contains(&vol_name) || pool.lookup_storage_vol_by_name(&vol_name).is_ok() {
                return Err(ScriptError::invalid(
                    &f.name("name"),
                    &vol_name,
                    format!("pool {pool_name} already has a volume by this name"),
                ));
            }
            taken.insert(vol_name.clone());
            let pool_path = crate::api::pool::target_path(&pool).unwrap_or_default();
            disk.source = Some(format!("{}/{vol_name}", pool_path.trim_end_matches('/')));
            disk.format = Some(format.clone());
            let xml = Element::new("volume")
                .with_child(Element::new("name").with_text(vol_name.clone()))
                .with_child(
                    Element::new("capacity")
                        .with_attr("unit", "bytes")
                        .with_text(size.to_string()),
                )
                .with_child(
                    Element::new("target")
                        .with_child(Element::new("format").with_attr("type", format)),
                )
                .to_xml();
            new_volume = Some(NewVolume {
                pool: pool_name,
                name: vol_name,
                xml,
                disk: 0,
            });
        }
        _ => {
            let path = path.unwrap_or_default();
            if !path.starts_with('/') {
                return Err(ScriptError::invalid(
                    &f.name("path"),
                    &path,
                    "must be an absolute path",
                ));
            }
            let allow = allow_path || own_allow_path;
            check_source(conn, &f.name("path"), &path, allow)?;
            if path.starts_with("/dev/") {
                disk.disk_type = "block".into();
            }
            if let Some(v) = size {
                return Err(ScriptError::invalid(
                    &f.name("size"),
                    show(v),
                    "only goes with pool (a new volume)",
                ));
            }
            disk.format =
                match f.one_of("format", &["qcow2", "raw", "vmdk", "vdi", "vpc", "qed"])? {
                    Some(fmt) => Some(fmt),
                    // A path that is a storage volume has the volume's format.
                    None => match volume_format(conn, &path) {
                        Some(fmt) => Some(fmt),
                        None if path.ends_with(".qcow2") => Some("qcow2".into()),
                        None => Some("raw".into()),
                    },
                };
            disk.source = Some(path);
        }
    }
    if let Some(name) = given_name.filter(|_| kind != "pool") {
        return Err(ScriptError::invalid(
            &f.name("name"),
            name,
            "only goes with pool (the new volume's name)",
        ));
    }
    if let Some(v) = format.filter(|_| kind == "volume") {
        return Err(ScriptError::invalid(
            &f.name("format"),
            show(v),
            "a volume's format is the volume's own",
        ));
    }
    if disk.device == "cdrom" {
        disk.readonly = true;
    }
    Ok((disk, new_volume))
}

fn volume_format(conn: &Connect, path: &str) -> Option<String> {
    let vol = conn.lookup_storage_vol_by_path(path).ok()?;
    let tree = Element::parse(&vol.xml_desc(0).ok()?).ok()?;
    tree.path(&["target", "format"])
        .and_then(|e| e.attr("type"))
        // libvirt's pools call ISO images "iso"; QEMU reads them as raw.
        .map(|f| if f == "iso" { "raw" } else { f }.to_owned())
}
