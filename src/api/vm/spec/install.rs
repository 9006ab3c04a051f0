//! The install method (exactly one of `cdrom`, `location`, `pxe`, `import`,
//! `kernel`) and the rule for the files a VM reads.
use rhai::Dynamic;
use virt::connect::Connect;

use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::api::vm::keys;
use crate::api::Volume;
use crate::xml::domain::{Disk, Domain};

/// The target directories of every storage pool on the host (running or not).
pub fn pool_dirs(conn: &Connect) -> Vec<String> {
    conn.list_all_storage_pools(0)
        .unwrap_or_default()
        .iter()
        .filter_map(crate::api::pool::target_path)
        .collect()
}

/// A file a VM would read (disk, CD-ROM, kernel, initrd): inside a storage
/// pool or the boot/ISO directories, unless `allow_path` (`policy::check_source`).
pub fn check_source(
    conn: &Connect,
    field: &str,
    path: &str,
    allow_path: bool,
) -> Result<(), ScriptError> {
    // With allow_path the pools need not be listed; control characters are still refused.
    let pools = if allow_path {
        Vec::new()
    } else {
        pool_dirs(conn)
    };
    crate::api::policy::check_source(field, path, &pools, allow_path)
}

/// Find the installer kernel and initrd in a distribution tree (virt-install `--location`).
pub(super) fn find_kernel(location: &str) -> Result<(String, String), ScriptError> {
    let dir = std::path::Path::new(location);
    if !dir.is_dir() {
        return Err(ScriptError::invalid(
            "location",
            location,
            "must be a directory holding an installation tree (an unpacked ISO)",
        ));
    }
    const PAIRS: &[(&str, &str)] = &[
        ("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"),
        ("install.amd/vmlinuz", "install.amd/initrd.gz"),
        ("install/vmlinuz", "install/initrd.gz"),
        ("casper/vmlinuz", "casper/initrd"),
        ("casper/vmlinuz", "casper/initrd.gz"),
        ("boot/x86_64/loader/linux", "boot/x86_64/loader/initrd"),
        ("isolinux/vmlinuz", "isolinux/initrd.img"),
        ("boot/vmlinuz", "boot/initrd.img"),
        ("vmlinuz", "initrd.img"),
        ("vmlinuz", "initrd.gz"),
        ("vmlinuz", "initramfs"),
    ];
    for (k, i) in PAIRS {
        let (kp, ip) = (dir.join(k), dir.join(i));
        if kp.is_file() && ip.is_file() {
            return Ok((
                kp.to_string_lossy().into_owned(),
                ip.to_string_lossy().into_owned(),
            ));
        }
    }
    Err(ScriptError::invalid(
        "location",
        location,
        format!(
            "no kernel and initrd found (looked for {})",
            PAIRS
                .iter()
                .map(|(k, i)| format!("{k}+{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// The install methods, one of which a spec must give.
const METHODS: &str = "cdrom, location, pxe: true, import: true, or kernel (with initrd/cmdline)";

/// The install keys as a spec gives them, read with the other keys; which
/// method they make is checked once every key is known (`method`).
pub(super) struct InstallKeys<'a> {
    given: Vec<&'static str>,
    initrd: Option<&'a Dynamic>,
    cmdline: Option<&'a Dynamic>,
    extra_args: Option<&'a Dynamic>,
}

pub(super) fn read_install<'a>(f: &Fields<'a>) -> Result<InstallKeys<'a>, ScriptError> {
    let given = [
        ("cdrom", f.has("cdrom")),
        ("location", f.has("location")),
        ("pxe", f.boolean("pxe")?.unwrap_or(false)),
        ("import", f.boolean("import")?.unwrap_or(false)),
        ("kernel", f.has("kernel")),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(m, _)| m)
    .collect();
    Ok(InstallKeys {
        given,
        initrd: f.raw("initrd"),
        cmdline: f.raw("cmdline"),
        extra_args: f.raw("extra_args"),
    })
}

impl InstallKeys<'_> {
    /// The one install method given, with the keys that only go with some
    /// methods checked (`initrd`, `cmdline` with kernel, `extra_args` with location).
    pub(super) fn method(&self) -> Result<&'static str, ScriptError> {
        let method = match self.given.as_slice() {
            [one] => *one,
            [] => {
                return Err(ScriptError::invalid(
                    "install",
                    "none",
                    format!("give exactly one install method: {METHODS}"),
                ))
            }
            several => {
                return Err(ScriptError::invalid(
                    "install",
                    several.join(" + "),
                    "give exactly one install method, not several",
                ))
            }
        };
        // A location's installer takes its initrd from the tree (and ignores
        // these two); elsewhere they have no kernel to go with.
        if method != "kernel" && method != "location" {
            for (key, value) in [("initrd", self.initrd), ("cmdline", self.cmdline)] {
                if let Some(v) = value {
                    return Err(ScriptError::invalid(
                        key,
                        show(v),
                        "only goes with kernel (direct kernel boot)",
                    ));
                }
            }
        }
        match self.extra_args {
            Some(v) if method != "location" => Err(ScriptError::invalid(
                "extra_args",
                show(v),
                "only goes with location",
            )),
            _ => Ok(method),
        }
    }
}

/// Apply install `method` to `d`: the boot media and boot order (a
/// `cdrom`'s disk on `cdrom_bus`).
pub(super) fn apply_install(
    conn: &Connect,
    f: &Fields,
    method: &str,
    d: &mut Domain,
    cdrom_bus: &str,
    allow_path: bool,
) -> Result<(), ScriptError> {
    match method {
        "cdrom" => {
            let path = match f.raw("cdrom") {
                Some(v) if v.is_string() => {
                    check_source(conn, "cdrom", &v.to_string(), allow_path)?;
                    v.to_string()
                }
                Some(v) => match v.read_lock::<Volume>() {
                    Some(vol) => vol.raw.path().map_err(|e| ScriptError::libvirt(&e))?,
                    None => return Err(f.wrong("cdrom", v, "an ISO path or a Volume")),
                },
                None => unreachable!("read_install saw it"),
            };
            if path.is_empty() {
                return Err(ScriptError::invalid("cdrom", "", "must be an ISO path"));
            }
            d.disks
                .push(cdrom_disk(d.next_target(cdrom_bus), cdrom_bus, Some(path)));
            d.os.boot = vec!["cdrom".into(), "hd".into()];
        }
        "location" => {
            let location = f.string("location")?.unwrap_or_default();
            check_source(conn, "location", &location, allow_path)?;
            let (kernel, initrd) = find_kernel(&location)?;
            d.os.kernel = Some(kernel);
            d.os.initrd = Some(initrd);
            d.os.cmdline = f.string("extra_args")?;
            // Like virt-install: the installer kernel boots once, then the disk.
            d.on_reboot = Some("destroy".into());
        }
        "pxe" => d.os.boot = vec!["network".into(), "hd".into()],
        "import" => {
            if !d.disks.iter().any(|x| x.device == "disk") {
                return Err(ScriptError::invalid(
                    "import",
                    "true",
                    "import boots the first disk, but disks is empty",
                ));
            }
            d.os.boot = vec!["hd".into()];
        }
        _ => {
            keys::kernel(f, d)?;
            keys::initrd(f, d)?;
            for (field, path) in [("kernel", &d.os.kernel), ("initrd", &d.os.initrd)] {
                if let Some(path) = path {
                    check_source(conn, field, path, allow_path)?;
                }
            }
            keys::cmdline(f, d)?;
        }
    }
    if d.disks.iter().any(|x| x.boot_order.is_some()) {
        // Per-device boot order and <os><boot> are mutually exclusive in libvirt.
        d.os.boot.clear();
    }
    Ok(())
}

/// A read-only CD-ROM (install media, a cloud-init seed).
pub(super) fn cdrom_disk(target: String, bus: &str, source: Option<String>) -> Disk {
    Disk {
        disk_type: "file".into(),
        device: "cdrom".into(),
        format: Some("raw".into()),
        source,
        target,
        bus: Some(bus.into()),
        readonly: true,
        ..Disk::default()
    }
}
