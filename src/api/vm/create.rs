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
        // Both phases when the method has an install boot.
        return Ok(match plan.install_xml(None) {
            Some(install) if install != plan.xml() => {
                let mut both = Map::new();
                both.insert("install".into(), install.into());
                both.insert("final".into(), plan.xml().into());
                both.into()
            }
            _ => plan.xml().into(),
        });
    }
    execute(host, plan, &ctx).map(Dynamic::from)
}

/// The files a domain definition makes the VM read: disk and CD-ROM sources,
/// kernel and initrd, as (field, path).
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
    /// kernel=`) and `import` boots the disk: no install phase.
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
    /// Spec keys: `name`, `memory` (`"2G"` or MiB), `vcpus`, `max_vcpus`, `cpu`
    /// (a mode or model name, or `#{ mode | model, sockets, cores, threads, numa:
    /// [#{ cpus: "0-1", memory: "1G" }] }`: topology and guest NUMA cells),
    /// `numa` (`#{ mode: "strict"|"preferred"|"interleave"|"restrictive",
    /// nodeset: "0-1" }`: the host cells the memory comes from),
    /// `virt_type` (`"kvm"`, `"qemu"`, auto), `arch`, `machine`, `uefi`,
    /// `disks` (`#{ volume }`, `#{ pool, size, format }`, `#{ path }` with `bus`,
    /// `cache`, `readonly`, `shareable`, `boot_order`), exactly one of `cdrom`,
    /// `location` (+`extra_args`, `location_pool`), `pxe: true`, `import: true`, `kernel`
    /// (+`initrd`, `cmdline`); `networks` (names or `#{ network | bridge | direct,
    /// mac, model }`), `graphics` (`"none"`, `"vnc"`, `"spice"`), `autostart`,
    /// `cloud_init: #{ user_data, meta_data, network_config, pool }` (a NoCloud
    /// seed ISO built in memory and uploaded as a volume into `pool`, by
    /// default the pool of the first new disk, else `default`; removed with
    /// the VM), `description`,
    /// `title`, `uuid`, `guest_agent`, `metadata` (`#{ "<namespace URI>":
    /// "<element/>" }`: written with the definition, as `set_metadata` would),
    /// `dry_run`, `allow_path`. Disk, CD-ROM, kernel and initrd files must be in
    /// a storage pool's directory or in /var/lib/libvirt/{images,boot,isos};
    /// others are refused (`kind: "refused"`) unless `allow_path: true` (for
    /// the whole VM, or in one disk's map).
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
