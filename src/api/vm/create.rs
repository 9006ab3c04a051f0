//! Creating VMs: `create_vm`/`define_vm` from a spec (volumes first, undone
//! when the definition fails) and `define_vm_xml`, with the check that the
//! files a definition names are allowed.
use rhai::plugin::*;
use rhai::{Map, NativeCallContext};
use virt::sys;

use super::{spec, Vm};
use crate::api::args::{self, Fields};
use crate::api::error::{AtExt, LibvirtResultExt, ScriptError, ScriptResult};
use crate::api::policy;
use crate::api::Host;
use crate::runtime::journal;
use crate::xml::tree::Element;

/// An image built or fetched here (a cloud-init seed, an installer kernel)
/// as a new volume `file` of `pool`, uploaded through libvirt.
fn upload_image(
    conn: &virt::connect::Connect,
    pool: &str,
    file: &str,
    image: &[u8],
) -> Result<virt::storage_vol::StorageVol, virt::error::Error> {
    let pool = conn.lookup_storage_pool_by_name(pool)?;
    let xml = crate::api::volume::copy::new_volume_xml(file, image.len() as u64, "raw");
    let vol = virt::storage_vol::StorageVol::create_xml(&pool, &xml, 0)?;
    let sent = (|| {
        let stream = virt::stream::Stream::new(conn, 0)?;
        vol.upload(&stream, 0, image.len() as u64, 0)?;
        crate::virt_ext::stream::send_all(&stream, image)?;
        stream.finish()
    })();
    if let Err(e) = sent {
        let _ = vol.delete(0);
        return Err(e);
    }
    Ok(vol)
}

/// Define the planned domain: volumes first, then the domain, undoing the
/// volumes when the definition fails. Starts and sets autostart as asked.
fn execute(host: &Host, mut plan: spec::Plan, ctx: &NativeCallContext) -> ScriptResult<Vm> {
    let conn = host.conn();
    let mut created: Vec<virt::storage_vol::StorageVol> = Vec::new();
    let cleanup = |created: &mut Vec<virt::storage_vol::StorageVol>| {
        for vol in created.drain(..) {
            let _ = vol.delete(0);
        }
    };
    for nv in &plan.new_volumes {
        let made = conn
            .lookup_storage_pool_by_name(&nv.pool)
            .and_then(|pool| virt::storage_vol::StorageVol::create_xml(&pool, &nv.xml, 0));
        match made {
            Ok(vol) => {
                if let Ok(path) = vol.path() {
                    plan.domain.disks[nv.disk].source = Some(path);
                }
                let undo_vol = vol.clone();
                journal::record(
                    "create_volume",
                    format!("volume {}/{}", nv.pool, nv.name),
                    Some(Box::new(move || undo_vol.delete(0))),
                );
                created.push(vol);
            }
            Err(e) => {
                cleanup(&mut created);
                return Err(ScriptError::libvirt(&e)
                    .with("field", "disks")
                    .with("value", format!("{}/{}", nv.pool, nv.name))
                    .at(ctx));
            }
        }
    }
    let mut seed_file = None;
    if let Some(seed) = &plan.cloud_init {
        let refs: Vec<(&str, &[u8])> = seed
            .files
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_bytes()))
            .collect();
        let image = crate::iso::build("cidata", &refs);
        match &seed.volume {
            // Built here, uploaded there: nothing is written on this machine.
            Some((pool, file)) => match upload_image(conn, pool, file, &image) {
                Ok(vol) => {
                    if let Ok(path) = vol.path() {
                        plan.domain.disks[seed.disk].source = Some(path);
                    }
                    let undo_vol = vol.clone();
                    journal::record(
                        "create_volume",
                        format!("volume {pool}/{file}"),
                        Some(Box::new(move || undo_vol.delete(0))),
                    );
                    created.push(vol);
                }
                Err(e) => {
                    cleanup(&mut created);
                    return Err(ScriptError::libvirt(&e)
                        .with("field", "cloud_init")
                        .with("value", format!("{pool}/{file}"))
                        .at(ctx));
                }
            },
            None => {
                let path = plan.domain.disks[seed.disk]
                    .source
                    .clone()
                    .unwrap_or_default();
                if let Err(e) = std::fs::write(&path, &image) {
                    cleanup(&mut created);
                    return Err(ScriptError::invalid(
                        "cloud_init",
                        &path,
                        format!("cannot write the seed image: {e}"),
                    )
                    .at(ctx));
                }
                seed_file = Some(path);
            }
        }
    }
    // The install boot's kernel and initrd from a URL tree: fetched here,
    // uploaded into a pool of the target host.
    let record = plan.install.is_some() && !plan.start;
    let scratch = match fetch_boot_files(conn, &mut plan, record, ctx) {
        Ok(s) => s,
        Err(e) => {
            cleanup(&mut created);
            if let Some(p) = &seed_file {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    // define_vm (or start: false) keeps the install boot for the first start.
    let xml = if record {
        plan.recorded_xml()
    } else {
        plan.xml()
    };
    let dom = match conn.define_domain_xml(&xml) {
        Ok(dom) => dom,
        Err(e) => {
            cleanup(&mut created);
            super::phases::remove_scratch(conn, &scratch);
            if let Some(p) = &seed_file {
                let _ = std::fs::remove_file(p);
            }
            return Err(ScriptError::libvirt(&e).at(ctx));
        }
    };
    let name = plan.domain.name.clone();
    let undo = dom.clone();
    journal::record(
        "define_vm",
        format!("vm {name}"),
        Some(Box::new(move || {
            undo.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_NVRAM)
        })),
    );
    if plan.autostart {
        dom.set_autostart(true).script(ctx)?;
        journal::record("set_autostart", format!("vm {name}"), None);
    }
    if plan.start {
        // virt-install: the final definition is the persistent one; the
        // install boot runs as a live definition over it.
        let uuid = dom.uuid_string().script(ctx)?;
        match plan.install_xml(Some(&uuid)) {
            Some(install_xml) => {
                let started = super::phases::start_install(conn, &dom, &install_xml, ctx);
                // Booted (or not): the fetched installer is not needed any more.
                super::phases::remove_scratch(conn, &scratch);
                started?;
            }
            None => {
                dom.create().script(ctx)?;
                let undo = dom.clone();
                journal::record(
                    "start_vm",
                    format!("vm {name}"),
                    Some(Box::new(move || undo.destroy())),
                );
            }
        }
    }
    Ok(Vm {
        host: host.clone(),
        raw: dom.into(),
    })
}

/// Fetch a URL `location`'s kernel and initrd and put them where the plan
/// says (a volume of the target host; a private file on the test driver),
/// pointing the install phase at them. Returns their paths (removed once the
/// install boot has started). With `keep` (the install boot waits for the
/// first start) their creation is journalled, undone by removing them.
fn fetch_boot_files(
    conn: &virt::connect::Connect,
    plan: &mut spec::Plan,
    keep: bool,
    ctx: &NativeCallContext,
) -> ScriptResult<Vec<String>> {
    let Some(files) = plan.boot_files.clone() else {
        return Ok(Vec::new());
    };
    let mut done: Vec<String> = Vec::new();
    let mut paths = Vec::new();
    for file in [&files.kernel, &files.initrd] {
        let Some(url) = &file.url else {
            // A --plan rehearsal fetches nothing: the paths stand for them.
            paths.push(file.path.clone());
            continue;
        };
        let result = (|| -> ScriptResult<String> {
            let bytes = spec::location::download(ctx, &files.location, url)?;
            match &files.pool {
                Some(pool) => {
                    let vol = upload_image(conn, pool, &file.name, &bytes).map_err(|e| {
                        ScriptError::libvirt(&e)
                            .with("field", "location")
                            .with("value", format!("{pool}/{}", file.name))
                            .at(ctx)
                    })?;
                    vol.path().script(ctx)
                }
                None => {
                    std::fs::write(&file.path, &bytes).map_err(|e| {
                        ScriptError::invalid(
                            "location",
                            &file.path,
                            format!("cannot write the fetched installer: {e}"),
                        )
                        .at(ctx)
                    })?;
                    Ok(file.path.clone())
                }
            }
        })();
        match result {
            Ok(path) => {
                done.push(path.clone());
                paths.push(path);
            }
            Err(e) => {
                super::phases::remove_scratch(conn, &done);
                return Err(e);
            }
        }
    }
    if keep && files.pool.is_some() {
        for path in &done {
            let (conn, p) = (conn.clone(), path.clone());
            journal::record(
                "create_volume",
                format!("volume {path} (installer)"),
                Some(Box::new(move || match conn.lookup_storage_vol_by_path(&p) {
                    Ok(vol) => vol.delete(0),
                    // Already removed by the install boot's start.
                    Err(_) => Ok(()),
                })),
            );
        }
    }
    if let Some(phase) = &mut plan.install {
        phase.kernel = paths.first().cloned();
        phase.initrd = paths.get(1).cloned();
        phase.scratch = paths.clone();
    }
    Ok(paths)
}

fn create_or_define(
    ctx: NativeCallContext,
    host: &mut Host,
    spec: Map,
    start_default: bool,
) -> ScriptResult<Dynamic> {
    let mut plan = spec::plan(host.conn(), &spec).at(&ctx)?;
    if !start_default {
        if spec.contains_key("start") {
            return Err(ScriptError::invalid(
                "start",
                args::show(&spec["start"]),
                "define_vm never starts the VM; use create_vm",
            )
            .at(&ctx));
        }
        plan.start = false;
    }
    if plan.dry_run {
        // Both phases when the method has an install boot (passwords left out).
        return Ok(match plan.shown_install_xml() {
            Some(install) if install != plan.shown_xml() => {
                let mut both = Map::new();
                both.insert("install".into(), install.into());
                both.insert("final".into(), plan.shown_xml().into());
                both.into()
            }
            _ => plan.shown_xml().into(),
        });
    }
    execute(host, plan, &ctx).map(Dynamic::from)
}

/// The files a domain definition makes the VM read: disk and CD-ROM sources,
/// shared directories, kernel and initrd, as (field, path).
fn xml_sources(xml: &str) -> Vec<(String, String)> {
    let Ok(tree) = Element::parse(xml) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, disk) in tree
        .child("devices")
        .into_iter()
        .flat_map(|d| d.children_named("disk"))
        .enumerate()
    {
        if let Some(path) = disk
            .child("source")
            .and_then(|s| s.attr("file").or_else(|| s.attr("dev")))
        {
            out.push((format!("devices.disk[{i}].source"), path.to_owned()));
        }
    }
    for (i, fs) in tree
        .child("devices")
        .into_iter()
        .flat_map(|d| d.children_named("filesystem"))
        .enumerate()
    {
        if let Some(dir) = fs.child("source").and_then(|s| s.attr("dir")) {
            out.push((format!("devices.filesystem[{i}].source"), dir.to_owned()));
        }
    }
    for name in ["kernel", "initrd"] {
        if let Some(el) = tree.path(&["os", name]) {
            out.push((format!("os.{name}"), el.text()));
        }
    }
    out
}

/// Files in `xml` (that `before` did not already name) must be inside a storage
/// pool or the boot/ISO directories unless `allow_path` (`policy::check_source`).
pub(super) fn check_xml_sources(
    host: &Host,
    xml: &str,
    before: Option<&str>,
    allow_path: bool,
) -> Result<(), ScriptError> {
    let known: Vec<String> = before
        .map(xml_sources)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let pools = if allow_path {
        Vec::new()
    } else {
        spec::pool_dirs(host.conn())
    };
    for (field, path) in xml_sources(xml) {
        if !known.contains(&path) {
            policy::check_source(&field, &path, &pools, allow_path)?;
        }
    }
    Ok(())
}

#[export_module(manifest)]
pub mod vm_create_api {
    use super::*;

    /// Create a VM like `virt-install`: define it from `spec` and start it
    /// (unless `start: false`). Returns the `Vm`, or with `dry_run: true` the
    /// domain XML that would be defined (nothing is created): one string for
    /// `import` and `kernel`, `#{ install, final }` (both XML) for the install
    /// methods whose install boot differs from the final definition.
    ///
    /// Install phases, as virt-install runs them: with `cdrom`, `location`
    /// or `pxe` the persistent definition is the *final* one (boots the disk,
    /// the CD-ROM drive kept but empty, no installer kernel, initrd or
    /// cmdline, `on_reboot` restart) and the install boot (the CD-ROM, the
    /// installer kernel or the network first, `on_reboot` destroy) starts as
    /// a live definition over it. When the installer reboots, the VM stops
    /// (`vm.wait_state("shut off", ...)`) and its next `vm.start()` boots the
    /// installed disk. `kernel` is booted every time (virt-install `--boot
    /// kernel=`) and `import` boots the disk: no install phase. A Windows
    /// `os` keeps its ISO in the drive (its setup reboots from it). The
    /// cloud-init seed stays attached in the final definition, where
    /// virt-install ejects it: cloud-init runs once per `instance-id` anyway,
    /// and the seed volume goes with the VM.
    ///
    /// `location` is an install tree: a local directory (an unpacked ISO) or
    /// an `http://`/`https://` URL (`ftp://` is refused). The kernel and initrd
    /// are the ones its `.treeinfo` names for the guest's arch, else those at
    /// the places Debian, Ubuntu, Fedora and SUSE put them
    /// (`install.amd/vmlinuz`, `main/installer-amd64/current/images/netboot/
    /// debian-installer/amd64/linux`, `images/pxeboot/vmlinuz`,
    /// `boot/x86_64/loader/linux`...). A URL tree is read over HTTP *by the
    /// machine running virtscript* (a dry run reads its `.treeinfo` and asks
    /// whether the files exist; `--plan` makes no request at all); the kernel
    /// and initrd are then uploaded through libvirt into a storage pool of the
    /// target host, so remote hosts work too: `location_pool`, else (as
    /// virt-install's `boot-scratch`) a running pool over
    /// /var/lib/libvirt/boot, else `default`. They are removed as soon as the
    /// install boot has started.
    ///
    /// Spec keys: `name`, `memory` (`"2G"` or MiB), `current_memory` (the
    /// balloon's size at boot, at most `memory`; default `memory`), `vcpus`,
    /// `max_vcpus`, `cpu`
    /// (a mode or model name, or `#{ mode | model, sockets, cores, threads, numa:
    /// [#{ cpus: "0-1", memory: "1G" }] }`: topology and guest NUMA cells),
    /// `numa` (`#{ mode: "strict"|"preferred"|"interleave"|"restrictive",
    /// nodeset: "0-1" }`: the host cells the memory comes from),
    /// `virt_type` (`"kvm"`, `"qemu"`, auto), `arch`, `machine`, `uefi`,
    /// `disks` (`#{ volume }`, `#{ pool, size, format, name }` (a new volume:
    /// `format` `"qcow2"` (default) or `"raw"`, `name` default `<vm>.qcow2`),
    /// `#{ path, format }` (a file or block device: `format` one of `qcow2`,
    /// `raw`, `vmdk`, `vdi`, `vpc`, `qed`, default the volume's own, else from
    /// the name), each with `device` (`"disk"` (default), `"cdrom"`,
    /// `"floppy"`, `"lun"`), `bus`, `cache`, `readonly`, `shareable`,
    /// `boot_order`, `allow_path`; a plain string is a path), exactly one of `cdrom`,
    /// `location` (+`extra_args`, `location_pool`), `pxe: true`, `import: true`, `kernel`
    /// (+`initrd`, `cmdline`); `networks` (names or `#{ network | bridge | direct,
    /// mac, model, mode }`; `mode` for `direct`: macvtap's `bridge` (default),
    /// `vepa`, `private`, `passthrough`), `start` (default true for `create_vm`), `autostart`,
    /// `cloud_init: #{ user_data, meta_data, network_config, pool }` (a NoCloud
    /// seed ISO built in memory and uploaded as a volume into `pool`, by
    /// default the pool of the first new disk, else `default`; removed with
    /// the VM), `description`,
    /// `title`, `uuid`, `guest_agent`, `os` (below), `metadata` (`#{ "<namespace URI>":
    /// "<element/>" }`: written with the definition, as `set_metadata` would),
    /// `dry_run`, `allow_path`. Disk, CD-ROM, kernel and initrd files must be in
    /// a storage pool's directory or in /var/lib/libvirt/{images,boot,isos};
    /// others are refused (`kind: "refused"`) unless `allow_path: true` (for
    /// the whole VM, or in one disk's map).
    ///
    /// Defaults from the host: buses and firmware come from libvirt's domain
    /// capabilities for the VM's `arch`, `machine` and `virt_type`, read once
    /// (`virsh domcapabilities`); an arch or virt type the host cannot run is
    /// refused (`"this host cannot run aarch64 guests with virt type qemu"`).
    /// Every CD-ROM (`cdrom`, the cloud-init seed, `disks: [#{ device:
    /// "cdrom" }]`) gets one bus, as virt-install chooses it: SATA on x86 `q35`,
    /// IDE on x86 `pc` (the default machine), SCSI elsewhere (ARM/RISC-V
    /// `virt`); disks get virtio; a `bus` the machine lacks is refused (`ide`
    /// on q35 or aarch64). SCSI disks get a `virtio-scsi` controller. `arch:
    /// "aarch64"` (and RISC-V) gets machine `virt`, UEFI firmware
    /// (`firmware='efi'`; refused when the host lists none) and, under TCG, a
    /// 64-bit CPU (`cortex-a57`). A `cdrom` install, and every VM whose `os`
    /// is given, without `graphics` gets a display: SPICE with the SPICE
    /// agent channel when the host lists it, else VNC (x86 and ppc64; other
    /// arches keep the serial console); other VMs without `os`, and
    /// `graphics: "none"`, get no display. Every VM has a serial console.
    /// Hosts without domain capabilities (the test driver) get these
    /// defaults from arch and machine.
    ///
    /// The devices virt-install adds, added the same way where the spec does
    /// not give them (a key given always wins; `"none"` refuses the default):
    /// with a display a `video` (virtio when the `os` supports virtio-gpu,
    /// else qxl with SPICE on x86, bochs with UEFI, else vga; virtio on ARM
    /// `virt`) and a USB tablet (and a USB keyboard on ARM `virt` and
    /// pseries); with SPICE a `sound` (`ich9` on q35 and `virt`, else
    /// `ich6`), two SPICE USB redirections (x86) and `vmport` off (x86);
    /// a USB controller (qemu-xhci with 15 ports when the `os` supports USB
    /// 3 and on ARM `virt`, else the ICH9 USB 2 set; `controllers: [#{ type:
    /// "usb", model: "none" }]` refuses it and the USB tablet and
    /// redirections); with `os`, a virtio `rng` from /dev/urandom and a
    /// virtio `memballoon` when the OS supports them; with UEFI a `tpm`
    /// (swtpm, tpm-crb where the host has it) when the host can emulate one;
    /// on x86 the clock virt-install sets (`<clock offset='utc'>`, local time
    /// for Windows; timers rtc catchup, pit delay, no hpet) and suspend to
    /// memory and disk off (`<pm>`); on q35 and ARM `virt` a `pcie-root` with
    /// 14 `pcie-root-port`s, for devices plugged in later (unless
    /// `controllers` gives a pci one).
    ///
    /// Differences from virt-install (tests/integration/parity.rs compares
    /// both tools' XML on the daemon): without `os` (virt-install's
    /// "generic", which virt-install 4.1 requires to be named) virtscript
    /// keeps its own defaults: virtio disks and NICs (virt-install: IDE and
    /// e1000 for an OS it does not know), and a display only for `cdrom`
    /// installs (virt-install gives every x86 VM SPICE and its devices;
    /// virtscript keeps its documented headless default there, so scripts
    /// written for it define the same VMs), and no USB controller (unless a
    /// display needs one), clock timers, pm or spare PCIe ports (libvirt's
    /// defaults apply; tiny and many-guest VMs stay light). The guest agent channel
    /// is added unless `guest_agent: false` (virt-install: only when the OS
    /// has virtio-serial). A display listens on 127.0.0.1 explicitly (libvirt's
    /// default, written out). Windows guests do not get virt-install's
    /// Hyper-V enlightenments and `hypervclock` by default: give `features:
    /// #{ hyperv: ... }`. virt-install's unattended installs, `--cloud-init`
    /// user creation and boot-menu details are not modelled.
    ///
    /// `os`: a libosinfo short id (`"debian11"`, `"fedora36"`, `"win10"`) of
    /// the osinfo database (Debian's `osinfo-db`, in `/usr/share/osinfo` or
    /// `$OSINFO_SYSTEM_DIR`), or `"detect"` (the `cdrom` ISO's volume id or the
    /// `location` tree's `.treeinfo`, matched as libosinfo does). It sets what
    /// the spec leaves out, as virt-install `--os-variant` does: `memory`,
    /// `vcpus` and the size of a `#{ pool }` disk from the OS's recommended
    /// resources (else twice its minimum), virtio disks and NICs only when the
    /// OS supports them (else SATA/IDE and e1000e/e1000), and records the OS
    /// in the libosinfo metadata; on x86 an OS that runs on the q35 chipset
    /// gets machine `q35` (virt-install's rule; `os: "generic"` means no OS
    /// defaults, as there). Without `os`: 1 GiB, 1 vCPU, virtio disks
    /// and NICs, and a disk size must be given. An unknown id is refused with
    /// the nearest one. virtscript carries entries for releases newer than
    /// Debian 12's osinfo-db (`debian12`: data/osinfo/), read only when the
    /// system database has no entry of that id.
    ///
    /// ```rhai
    /// let xml = HOST.create_vm(#{ name: "arm", arch: "aarch64", virt_type: "qemu",
    ///     cdrom: "/var/lib/libvirt/isos/debian-arm64.iso", dry_run: true }).final;
    /// assert(xml.contains("firmware='efi'") && xml.contains("bus='scsi'"));
    /// assert(xml.contains("model='virtio-scsi'") && !xml.contains("'ide'"));
    ///
    /// let xml = HOST.create_vm(#{ name: "iso", virt_type: "qemu",
    ///     cdrom: "/var/lib/libvirt/isos/installer.iso", dry_run: true }).final;
    /// assert(xml.contains("<graphics type='spice'") && xml.contains("<model type='qxl'/>"));
    /// assert(xml.contains("<sound model='ich6'/>") && xml.contains("<input type='tablet' bus='usb'/>"));
    ///
    /// // An OS with virtio-gpu, -rng and -balloon gets them, as with virt-install.
    /// let xml = HOST.create_vm(#{ name: "d11", os: "debian11", virt_type: "qemu",
    ///     cdrom: "/var/lib/libvirt/isos/installer.iso", rng: "none", sound: "none",
    ///     dry_run: true }).final;
    /// assert(xml.contains("<model type='virtio'/>") && xml.contains("<memballoon model='virtio'/>"));
    /// assert(!xml.contains("<rng") && !xml.contains("<sound"));
    ///
    /// let vm = HOST.define_vm(#{ name: "deb", os: "debian11", import: true,
    ///     disks: [#{ pool: "default-pool" }] });   // the size osinfo recommends
    /// assert(vm.xml.contains("debian.org/debian/11"));
    /// try { HOST.define_vm(#{ name: "x", os: "debain11", pxe: true }); }
    /// catch (e) { assert_eq(e.field, "os"); assert(e.message.contains("debian11")); }
    /// ```
    ///
    /// Devices, each a short form or a map of libvirt's fields (an unknown
    /// name is refused with "did you mean" and the names libvirt knows):
    /// `graphics` (`"none"`, the default without `os` but for a `cdrom` install, `"vnc"`, `"spice"`, or `#{ type,
    /// listen, port, password }`: listening on 127.0.0.1 and a free port
    /// unless given; the password is never shown, not in `dry_run`'s XML nor
    /// in `vm.xml`; spice adds its agent channel), `video` (`"virtio"`,
    /// `"qxl"`, `"vga"`, `"cirrus"`, `"bochs"`, `"ramfb"`, `"none"`, or
    /// `#{ model, vram, heads, accel3d }`), `sound` (`"ich9"`, `"ich6"`,
    /// `"ac97"`, `"es1370"`, `"sb16"`, `"usb"`, `"ich7"`, `"none"`, or `#{ model, codec }`),
    /// `console` (the console's target: `"serial"`, the default, on the serial
    /// port, or `"virtio"`; the serial port stays), `controllers` (`[#{ type,
    /// model, index, ports, vectors, queues }]`; types usb, scsi,
    /// virtio-serial, pci, sata, ide, ccid, fdc, xenbus), `filesystems`
    /// (`[#{ source, target, driver: "9p" | "virtiofs", readonly, accessmode }]`:
    /// a host directory under the same rule as disk files, mounted by the tag
    /// `target`; virtiofs makes the memory shared, as it needs), `tpm`
    /// (`"emulator"`: a TPM 2.0 by swtpm, tpm-crb on x86; `"none"`; or `#{ model, version }`),
    /// `rng` (`"/dev/urandom"`, `"/dev/random"`, `"/dev/hwrng"`, `"builtin"`, `"none"`, or
    /// `#{ model, backend, rate }`), `watchdog` (`"i6300esb"`, `"ib700"`,
    /// `"diag288"`, `"itco"`, or `#{ model, action }`), `memballoon` (`"virtio"`,
    /// libvirt's default, or `"none"`), `features` (`#{ acpi, apic, pae, smm,
    /// vmport, kvm: #{ hidden }, hyperv: #{ relaxed, vapic, spinlocks: 8191, ... } }`,
    /// changing the default `acpi` + `apic`). They come back in `vm.config`
    /// in the same forms and change with `vm.edit`.
    ///
    /// `cpu`'s topology must give the VM's vCPUs: sockets * cores * threads
    /// = `max_vcpus` (else `vcpus`), as libvirt requires. Counts left out are
    /// filled in from the vCPUs as virt-install does (cores take what the
    /// others leave, then sockets, then threads); without `vcpus` and
    /// `max_vcpus` the topology gives the count (`#{ sockets: 2, cores: 2 }`:
    /// 4 vCPUs).
    ///
    /// `boot: ["network", "hd", "cdrom", "fd"]`: the boot order by device
    /// kind, each once, not with a disk's `boot_order` (libvirt takes one or
    /// the other). It is the order of the persistent definition, the one a VM
    /// keeps after its install (the install itself boots its media: `cdrom`
    /// the CD, `pxe` the network, `location`/`kernel` the kernel). Without
    /// it: `import` boots `hd`, `cdrom` boots `cdrom` then `hd`, `pxe`
    /// `network` then `hd`.
    ///
    /// `hostdevs`: host PCI and USB devices passed through (virt-install's
    /// `--hostdev`), each a node device name (`HOST.node_devices("pci")`,
    /// `"usb_device"`), `#{ type: "pci", address: "0000:01:00.0" }` (as
    /// `lspci -D` prints it), `#{ type: "usb", vendor: "0x1d6b", product:
    /// "0x0002" }` or `#{ type: "usb", address: "1.2" }` (bus.device, as
    /// `lsusb` prints them), with `managed` (default true: libvirt detaches
    /// the device from its host driver while the VM runs). Each must be a PCI
    /// or USB device the host has, once.
    ///
    /// ```rhai
    /// let vm = HOST.create_vm(#{
    ///     name: "web1", memory: "512M", vcpus: 1, max_vcpus: 4, virt_type: "qemu",
    ///     disks: [#{ path: "/var/lib/libvirt/images/web1.qcow2" }], import: true,
    ///     networks: ["default"],
    /// });
    /// assert_eq(vm.state, "running");
    ///
    /// // An ISO install: the dry run shows both phases; the VM runs the
    /// // install boot over its final definition.
    /// let spec = #{ name: "deb", memory: "1G", virt_type: "qemu",
    ///     disks: [#{ pool: "default-pool", size: "4G" }], cdrom: "/var/lib/libvirt/isos/debian.iso" };
    /// let both = HOST.create_vm(spec + #{ dry_run: true });
    /// assert(both.install.contains("<boot dev='cdrom'/>") && both.final.contains("<boot dev='hd'/>"));
    /// let vm = HOST.create_vm(spec);
    /// assert(vm.xml.contains("<on_reboot>destroy</on_reboot>"));
    /// assert(vm.inactive_xml.contains("<on_reboot>restart</on_reboot>"));
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn create_vm(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Dynamic> {
        create_or_define(ctx, host, spec, true)
    }

    /// Define a VM from a spec (as `create_vm`) without starting it. With an
    /// install method (`cdrom`, `location`, `pxe`) the definition is the final
    /// one and the install boot is recorded in the VM's own metadata
    /// (namespace `https://virtscript.dev/xmlns/install/1`): the first
    /// `vm.start()` runs the install and clears the record. To skip the
    /// install, remove the record first: `vm.set_metadata(
    /// "https://virtscript.dev/xmlns/install/1", ())` (a URL `location`'s
    /// fetched kernel and initrd stay in their pool until that first start).
    ///
    /// ```rhai
    /// // An ISO install defined now, installed at its first start.
    /// let vm = HOST.define_vm(#{ name: "later", memory: "1G", virt_type: "qemu",
    ///     disks: [#{ pool: "default-pool", size: "2G" }], cdrom: "/var/lib/libvirt/isos/debian.iso" });
    /// let media = "<source file='/var/lib/libvirt/isos/debian.iso'/>";
    /// assert(!vm.inactive_xml.contains(media));   // the final definition
    /// vm.start();
    /// assert(vm.xml.contains(media));             // the install boot
    /// assert(vm.metadata("https://virtscript.dev/xmlns/install/1") == ());
    ///
    /// let vm = HOST.define_vm(#{ name: "db1", memory: 1024, virt_type: "qemu",
    ///     disks: [#{ pool: "default-pool", size: "1G" }], import: true });
    /// assert_eq(vm.state, "shut off");
    /// assert_eq(vm.disks()[0].format, "qcow2");
    ///
    /// // Metadata that must exist from the first moment the VM does.
    /// let md = #{};
    /// md["https://example.org/owner"] = "<owner team='ops'/>";
    /// let vm = HOST.define_vm(#{ name: "db2", virt_type: "qemu", pxe: true, metadata: md });
    /// assert_eq(vm.metadata("https://example.org/owner"), "<owner team='ops'/>");
    ///
    /// // Two sockets of two cores, one guest NUMA cell per socket, and the
    /// // guest's memory spread over both host cells of the test driver.
    /// let vm = HOST.define_vm(#{ name: "numa", memory: "2G", vcpus: 4, virt_type: "qemu", pxe: true,
    ///     cpu: #{ model: "qemu64", sockets: 2, cores: 2,
    ///             numa: [#{ cpus: "0-1", memory: "1G" }, #{ cpus: "2-3", memory: "1G" }] },
    ///     numa: #{ mode: "interleave", nodeset: "0-1" } });
    /// assert_eq(vm.numa().cells.map(|c| c.cpus), ["0-1", "2-3"]);
    /// assert_eq(vm.numa().mode, "interleave");
    /// assert(vm.xml.contains("sockets='2'") && vm.xml.contains("cores='2'"));
    ///
    /// // Devices: a spice display with its agent channel, a virtio GPU, a
    /// // TPM, an RNG, a watchdog, a virtiofs share (and the shared memory it
    /// // needs), SMM on, no balloon.
    /// let vm = HOST.define_vm(#{ name: "devices", virt_type: "qemu", pxe: true,
    ///     graphics: #{ type: "spice", password: "s3cret" }, video: "virtio", sound: "ich9",
    ///     console: "virtio", tpm: "emulator", rng: "/dev/urandom",
    ///     watchdog: #{ model: "i6300esb", action: "poweroff" }, memballoon: "none",
    ///     controllers: [#{ type: "scsi", model: "virtio-scsi" }],
    ///     filesystems: [#{ source: "/var/lib/libvirt/images/shared", target: "shared", driver: "virtiofs" }],
    ///     features: #{ smm: true } });
    /// let xml = vm.inactive_xml;
    /// assert(xml.contains("<channel type='spicevmc'>") && xml.contains("<tpm model='tpm-crb'>"));
    /// assert(xml.contains("<access mode='shared'/>") && xml.contains("<driver type='virtiofs'/>"));
    /// assert(!xml.contains("s3cret"));
    /// assert_eq(vm.config.watchdog, #{ model: "i6300esb", action: "poweroff" });
    ///
    /// // A misspelt model is refused before anything is made.
    /// try { HOST.define_vm(#{ name: "typo", virt_type: "qemu", pxe: true, video: "qxk" }); }
    /// catch (e) { assert_eq([e.field, e.value], ["video", "qxk"]); assert(e.message.contains("did you mean \"qxl\"")); }
    /// assert(HOST.find_vm("typo") == ());
    ///
    /// // The topology alone gives the vCPUs; boot sets the persistent order.
    /// let vm = HOST.define_vm(#{ name: "topo", virt_type: "qemu", pxe: true,
    ///     cpu: #{ sockets: 2, cores: 2 }, boot: ["network", "hd"] });
    /// assert_eq(vm.config.vcpus, 4);
    /// assert_eq(vm.config.boot, ["network", "hd"]);
    /// // A host device must be one the host has (see HOST.node_devices("pci")).
    /// let field = "";
    /// try { HOST.define_vm(#{ name: "gpu", virt_type: "qemu", pxe: true,
    ///                         hostdevs: ["pci_0000_01_00_0"] }); }
    /// catch (e) { field = e.field; }
    /// assert_eq(field, "hostdevs[0]");
    /// assert_eq(HOST.find_vm("gpu"), ());
    /// ```
    #[rhai_fn(pure, return_raw)]
    pub fn define_vm(ctx: NativeCallContext, host: &mut Host, spec: Map) -> ScriptResult<Dynamic> {
        create_or_define(ctx, host, spec, false)
    }

    /// Define a VM from domain XML (`virsh define`).
    ///
    /// ```rhai
    /// // A PXE install's final definition (the dry run's `final`).
    /// let xml = HOST.create_vm(#{ name: "raw", virt_type: "qemu", pxe: true, dry_run: true }).final;
    /// assert(HOST.find_vm("raw") == ());   // the dry run made nothing
    /// let vm = HOST.define_vm_xml(xml);
    /// assert_eq([vm.name, vm.state], ["raw", "shut off"]);
    /// assert(HOST.vm("raw").inactive_xml.contains("<boot dev='network'/>"));
    /// ```
    #[rhai_fn(name = "define_vm_xml", pure, return_raw)]
    pub fn define_vm_xml(ctx: NativeCallContext, host: &mut Host, xml: &str) -> ScriptResult<Vm> {
        define_vm_xml_with(ctx, host, xml, Map::new())
    }

    /// `define_vm_xml(xml)` with `#{ allow_path: true }`: disk, CD-ROM, kernel and
    /// initrd files outside the storage pools and the boot/ISO directories
    /// (refused without it).
    ///
    /// ```rhai
    /// let xml = HOST.create_vm(#{ name: "outside", virt_type: "qemu", import: true,
    ///     disks: ["/srv/outside.img"], allow_path: true, dry_run: true });
    /// try { HOST.define_vm_xml(xml); } catch (e) { assert_eq(e.kind, "refused"); }
    /// let vm = HOST.define_vm_xml(xml, #{ allow_path: true });
    /// assert_eq(vm.disks()[0].source, "/srv/outside.img");
    /// ```
    #[rhai_fn(name = "define_vm_xml", pure, return_raw)]
    pub fn define_vm_xml_with(
        ctx: NativeCallContext,
        host: &mut Host,
        xml: &str,
        opts: Map,
    ) -> ScriptResult<Vm> {
        let f = Fields::new("", &opts);
        let allow_path = f.boolean("allow_path").at(&ctx)?.unwrap_or(false);
        f.finish().at(&ctx)?;
        check_xml_sources(host, xml, None, allow_path).at(&ctx)?;
        let dom = host.conn().define_domain_xml(xml).script(&ctx)?;
        let name = dom.name().unwrap_or_default();
        let undo = dom.clone();
        journal::record(
            "define_vm",
            format!("vm {name}"),
            Some(Box::new(move || undo.undefine())),
        );
        Ok(Vm {
            host: host.clone(),
            raw: dom.into(),
        })
    }
}
