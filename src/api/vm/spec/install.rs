//! The install method (exactly one of `cdrom`, `location`, `pxe`, `import`,
//! `kernel`), its two phases (the install boot and the final definition),
//! and the rule for the files a VM reads.
use rhai::Dynamic;
use virt::connect::Connect;

use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::api::vm::keys;
use crate::api::Volume;
use super::location;
use crate::xml::domain::{Disk, Domain};
use crate::xml::install::InstallPhase;

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

/// The install methods, one of which a spec must give.
const METHODS: &str = "cdrom, location, pxe: true, import: true, or kernel (with initrd/cmdline)";

/// The install keys as a spec gives them, read with the other keys; which
/// method they make is checked once every key is known (`method`).
pub(super) struct InstallKeys<'a> {
    given: Vec<&'static str>,
    initrd: Option<&'a Dynamic>,
    cmdline: Option<&'a Dynamic>,
    extra_args: Option<&'a Dynamic>,
    location_pool: Option<&'a Dynamic>,
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
        location_pool: f.raw("location_pool"),
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
        if let Some(v) = self.location_pool {
            if method != "location" {
                return Err(ScriptError::invalid(
                    "location_pool",
                    show(v),
                    "only goes with location (an http:// or https:// tree)",
                ));
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

/// A file of a URL tree fetched for the install boot.
#[derive(Debug, Clone)]
pub struct BootFile {
    /// Where it is fetched from; `None` in a `--plan` rehearsal, which fetches nothing.
    pub url: Option<String>,
    /// The volume's name in `BootFiles::pool`.
    pub name: String,
    /// The path it will have (the volume's, or a private local file on the test driver).
    pub path: String,
}

/// The installer kernel and initrd of a URL `location`, fetched by
/// `create_vm`/`define_vm` and uploaded into a pool of the target host.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub kernel: BootFile,
    pub initrd: BootFile,
    /// The pool they go to; `None` on the in-process test driver (no volume
    /// data there): private local files, as cloud-init seeds.
    pub pool: Option<String>,
    /// The `location` as given, the tree's URL (with a trailing slash) and
    /// the guest's architecture (which `.treeinfo` images to take).
    pub location: String,
    pub base: String,
    pub arch: String,
}

impl BootFiles {
    /// Find the kernel and initrd in the tree: a few small requests
    /// (`.treeinfo`, HEAD requests), made once every other key has been
    /// checked; none in a `--plan` rehearsal, which reaches nothing.
    pub fn resolve(&mut self) -> Result<(), ScriptError> {
        if crate::api::policy::rehearsing() {
            return Ok(());
        }
        let (k, i) = location::find_remote(&self.location, &self.base, &self.arch)?;
        self.kernel.url = Some(k);
        self.initrd.url = Some(i);
        Ok(())
    }
}

/// The pool fetched kernels go to, decided like virt-install: its
/// `boot-scratch` pool is the one over /var/lib/libvirt/boot, so a running
/// pool over that directory if the host has one, else `default`.
fn boot_pool(
    conn: &Connect,
    location: &str,
    given: Option<String>,
) -> Result<(String, String), ScriptError> {
    if let Some(name) = given {
        return match conn.lookup_storage_pool_by_name(&name) {
            Ok(p) if p.is_active().unwrap_or(false) => {
                Ok((name, crate::api::pool::target_path(&p).unwrap_or_default()))
            }
            Ok(_) => Err(ScriptError::invalid(
                "location_pool",
                &name,
                "this storage pool is not running",
            )),
            Err(_) => Err(ScriptError::invalid(
                "location_pool",
                &name,
                "no storage pool by this name on the host",
            )),
        };
    }
    let pools = conn.list_all_storage_pools(0).unwrap_or_default();
    let active = |p: &virt::storage_pool::StoragePool| p.is_active().unwrap_or(false);
    let by_dir = pools.iter().filter(|p| active(p)).find_map(|p| {
        let dir = crate::api::pool::target_path(p)?;
        (dir.trim_end_matches('/') == "/var/lib/libvirt/boot").then(|| (p.name().ok(), dir))
    });
    if let Some((Some(name), dir)) = by_dir {
        return Ok((name, dir));
    }
    match pools.iter().find(|p| p.name().ok().as_deref() == Some("default")) {
        Some(p) if active(p) => Ok((
            "default".into(),
            crate::api::pool::target_path(p).unwrap_or_default(),
        )),
        Some(_) => Err(ScriptError::invalid(
            "location",
            location,
            "the installer kernel and initrd are uploaded into the storage pool default, which is not running",
        )),
        None => Err(ScriptError::invalid(
            "location",
            location,
            "the installer kernel and initrd are uploaded into a storage pool of the host: \
             give location_pool, or define a pool named default or one over /var/lib/libvirt/boot",
        )),
    }
}

/// Plan the fetch of a URL tree's kernel and initrd for VM `name`: where they
/// go (the tree is read by [`BootFiles::resolve`], the files when the VM is made).
fn plan_boot_files(
    conn: &Connect,
    location: &str,
    name: &str,
    arch: &str,
    given_pool: Option<String>,
) -> Result<BootFiles, ScriptError> {
    let base = location::check_url(location)?;
    let uri = conn.uri().unwrap_or_default();
    let names = [
        format!("virtscript-{name}-install.kernel"),
        format!("virtscript-{name}-install.initrd"),
    ];
    let (pool, paths) = if uri.starts_with("test:") {
        if given_pool.is_some() {
            // Checked as on a real host, though nothing is uploaded here.
            boot_pool(conn, location, given_pool)?;
        }
        let local = |n: &str| {
            crate::api::policy::local_path(
                &uri,
                "location",
                n,
                true,
                true,
                crate::api::policy::Writer::Us,
            )
            .map(|p| p.to_string_lossy().into_owned())
        };
        (None, [local(&names[0])?, local(&names[1])?])
    } else {
        let (pool, dir) = boot_pool(conn, location, given_pool)?;
        if let Ok(p) = conn.lookup_storage_pool_by_name(&pool) {
            for n in &names {
                if p.lookup_storage_vol_by_name(n).is_ok() {
                    return Err(ScriptError::invalid(
                        "location",
                        location,
                        format!("volume {pool}/{n} (the fetched installer) already exists: remove it first"),
                    ));
                }
            }
        }
        let dir = dir.trim_end_matches('/').to_owned();
        (
            Some(pool),
            [format!("{dir}/{}", names[0]), format!("{dir}/{}", names[1])],
        )
    };
    let [kernel_path, initrd_path] = paths;
    let [kernel_name, initrd_name] = names;
    Ok(BootFiles {
        location: location.to_owned(),
        base,
        arch: arch.to_owned(),
        kernel: BootFile {
            url: None,
            name: kernel_name,
            path: kernel_path,
        },
        initrd: BootFile {
            url: None,
            name: initrd_name,
            path: initrd_path,
        },
        pool,
    })
}

/// What an install method makes: the final definition in `d`, and the
/// install boot on top of it (virt-install's initial and final XML).
pub(super) struct Installed {
    pub phase: Option<InstallPhase>,
    pub boot_files: Option<BootFiles>,
}

/// Apply install `method` to `d` as virt-install does: `d` becomes the
/// *final* definition (boot from disk, the CD-ROM drive kept but empty, no
/// installer kernel, `on_reboot` as it was) and the returned phase holds the
/// install boot (its boot device, media and kernel, `on_reboot` destroy).
/// `import` and `kernel` (a kernel booted every time, virt-install `--boot
/// kernel=`) have no install phase.
pub(super) fn apply_install(
    conn: &Connect,
    f: &Fields,
    method: &str,
    d: &mut Domain,
    cdrom_bus: &str,
    allow_path: bool,
) -> Result<Installed, ScriptError> {
    let has_disk = d.disks.iter().any(|x| x.device == "disk");
    // virt-install's _build_boot_order: the install device, then the disk.
    let install_order = |dev: &str| {
        let mut order = vec![dev.to_owned()];
        if has_disk {
            order.push("hd".to_owned());
        }
        order
    };
    let mut phase = InstallPhase {
        on_reboot: "destroy".into(),
        ..InstallPhase::default()
    };
    let mut boot_files = None;
    let has_phase = match method {
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
            let target = d.next_target(cdrom_bus);
            // The drive stays in the final definition, ejected.
            d.disks.push(cdrom_disk(target.clone(), cdrom_bus, None));
            phase.media.push((target, path));
            phase.boot = install_order("cdrom");
            d.os.boot = vec![if has_disk { "hd" } else { "cdrom" }.into()];
            true
        }
        "location" => {
            let location = f.string("location")?.unwrap_or_default();
            let arch = d.os.arch.clone().unwrap_or_else(|| "x86_64".into());
            let (kernel, initrd) = if location::is_url(&location) {
                let pool = f.string("location_pool")?;
                let files = plan_boot_files(conn, &location, &d.name, &arch, pool)?;
                let paths = (files.kernel.path.clone(), files.initrd.path.clone());
                phase.scratch = vec![paths.0.clone(), paths.1.clone()];
                boot_files = Some(files);
                paths
            } else {
                if let Some(pool) = f.string("location_pool")? {
                    return Err(ScriptError::invalid(
                        "location_pool",
                        pool,
                        "only goes with an http:// or https:// location (a local tree is read where it is)",
                    ));
                }
                check_source(conn, "location", &location, allow_path)?;
                location::find_local(&location, &arch)?
            };
            phase.kernel = Some(kernel);
            phase.initrd = Some(initrd);
            phase.cmdline = f.string("extra_args")?;
            // A kernel boot: no boot order for the install; the disk after.
            d.os.boot = vec!["hd".into()];
            true
        }
        "pxe" => {
            phase.boot = install_order("network");
            d.os.boot = vec![if has_disk { "hd" } else { "network" }.into()];
            true
        }
        "import" => {
            if !has_disk {
                return Err(ScriptError::invalid(
                    "import",
                    "true",
                    "import boots the first disk, but disks is empty",
                ));
            }
            d.os.boot = vec!["hd".into()];
            false
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
            false
        }
    };
    if d.disks.iter().any(|x| x.boot_order.is_some()) {
        // Per-device boot order and <os><boot> are mutually exclusive in libvirt.
        d.os.boot.clear();
        phase.boot.clear();
    }
    Ok(Installed {
        phase: has_phase.then_some(phase),
        boot_files,
    })
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
