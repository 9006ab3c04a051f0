//! What `create_vm` takes from the host and the guest OS: buses, firmware
//! and the default display from libvirt's domain capabilities (the test
//! driver has none: the documented defaults), `os` from osinfo-db.

use crate::support::{live_uri, unique, virsh, virsh_try, LivePool, Script};

/// The elements of `tag` in `xml`, each as its text up to the closing `>`.
fn tags<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    xml.match_indices(&format!("<{tag} "))
        .chain(xml.match_indices(&format!("<{tag}>")))
        .map(|(i, _)| {
            let rest = &xml[i..];
            &rest[..rest.find('>').unwrap() + 1]
        })
        .collect()
}

/// The `bus` attribute of every CD-ROM in a domain document.
fn cdrom_buses(xml: &str) -> Vec<String> {
    xml.split("<disk ")
        .skip(1)
        .filter(|d| d.starts_with("type='file' device='cdrom'"))
        .map(|d| {
            let t = &d[d.find("<target ").unwrap()..];
            let b = &t[t.find("bus='").unwrap() + 5..];
            b[..b.find('\'').unwrap()].to_owned()
        })
        .collect()
}

/// The final definition a dry run returns (an install method's dry run
/// returns `#{ install, final }`).
fn dry_run(spec: &str) -> String {
    let run = Script::new(&format!(
        "let x = HOST.create_vm({spec});\nprint(if type_of(x) == \"map\" {{ x.final }} else {{ x }});"
    ))
    .run();
    run.ok();
    run.stdout.trim().to_owned()
}

/// The `cdrom` key, a cloud-init seed and `disks: [#{ device: "cdrom" }]`
/// get the same bus on one machine: SATA on q35, IDE on pc, SCSI (with a
/// virtio-scsi controller) on aarch64 `virt`.
#[test]
fn every_cdrom_gets_the_machines_bus() {
    let spec = |machine: &str| {
        format!(
            r#"#{{ name: "cd", virt_type: "qemu", {machine} cdrom: "/var/lib/libvirt/isos/a.iso",
                disks: [#{{ device: "cdrom", path: "/var/lib/libvirt/isos/b.iso" }}],
                cloud_init: #{{}}, dry_run: true }}"#
        )
    };
    let q35 = dry_run(&spec("machine: \"q35\","));
    assert_eq!(cdrom_buses(&q35), ["sata", "sata", "sata"], "{q35}");
    let pc = dry_run(&spec(""));
    assert_eq!(cdrom_buses(&pc), ["ide", "ide", "ide"], "{pc}");
    let arm = dry_run(&spec("arch: \"aarch64\","));
    assert_eq!(cdrom_buses(&arm), ["scsi", "scsi", "scsi"], "{arm}");
    // The virtio-scsi controller; without `os` nor a display, no more (an
    // aarch64 VM has no default display; libvirt adds the PCIe ports it needs).
    assert_eq!(
        tags(&arm, "controller"),
        ["<controller type='scsi' index='0' model='virtio-scsi'/>"],
        "{arm}"
    );
}

/// An aarch64 VM gets what the `virt` machine boots with: UEFI firmware, a
/// 64-bit CPU model under TCG, no IDE and no x86 APIC; an IDE disk is refused.
#[test]
fn aarch64_gets_uefi_and_no_ide() {
    let xml = dry_run(
        r#"#{ name: "arm", arch: "aarch64", virt_type: "qemu", cdrom: "/var/lib/libvirt/isos/a.iso",
            disks: [#{ pool: "default-pool", size: "1G" }], dry_run: true }"#,
    );
    assert!(xml.contains("<os firmware='efi'>"), "{xml}");
    assert!(
        xml.contains("<type arch='aarch64' machine='virt'>hvm</type>"),
        "{xml}"
    );
    assert!(xml.contains("<model>cortex-a57</model>"), "{xml}");
    assert!(xml.contains("<target dev='vda' bus='virtio'/>"), "{xml}");
    assert!(!xml.contains("'ide'") && !xml.contains("<apic/>"), "{xml}");
    assert!(
        tags(&xml, "graphics").is_empty(),
        "serial console only: {xml}"
    );

    let run = Script::new(
        r#"try {
    HOST.create_vm(#{ name: "arm", arch: "aarch64", virt_type: "qemu", import: true,
        disks: [#{ path: "/var/lib/libvirt/images/a.img", bus: "ide" }] });
} catch (e) { print(`field=${e.field}|value=${e.value}|line=${e.line}|${e.message}`); }
assert(HOST.find_vm("arm") == ());"#,
    )
    .run();
    run.ok()
        .stdout_has("field=disks[0].bus|value=ide|line=2|")
        .stdout_has("has no ide bus");
}

/// Two SCSI disks share one virtio-scsi controller; virtio disks need none.
#[test]
fn scsi_disks_get_one_virtio_scsi_controller() {
    let xml = dry_run(
        r#"#{ name: "s", virt_type: "qemu", import: true, dry_run: true, disks: [
            #{ path: "/var/lib/libvirt/images/a.img", bus: "scsi" },
            #{ path: "/var/lib/libvirt/images/b.img", bus: "scsi" }] }"#,
    );
    // (Beside virt-install's USB controllers.)
    let scsi: Vec<&str> = tags(&xml, "controller")
        .into_iter()
        .filter(|c| c.contains("type='scsi'"))
        .collect();
    assert_eq!(
        scsi,
        ["<controller type='scsi' index='0' model='virtio-scsi'/>"],
        "{xml}"
    );
    assert!(xml.contains("<target dev='sdb' bus='scsi'/>"), "{xml}");
    let plain = dry_run(
        r#"#{ name: "v", virt_type: "qemu", import: true, dry_run: true,
            disks: ["/var/lib/libvirt/images/a.img"] }"#,
    );
    assert!(!plain.contains("<controller type='scsi'"), "{plain}");
}

/// An ISO install without `graphics` gets a SPICE display with qxl video
/// and the SPICE agent channel; `graphics: "none"` and other install methods
/// keep the serial console only. The defined VM has them too.
#[test]
fn an_iso_install_gets_a_display_unless_told_none() {
    let run = Script::new(
        r#"let vm = HOST.define_vm(#{ name: "iso", virt_type: "qemu", cdrom: "/var/lib/libvirt/isos/a.iso" });
print(vm.xml);
print("---");
print(HOST.create_vm(#{ name: "none", virt_type: "qemu", cdrom: "/var/lib/libvirt/isos/a.iso",
    graphics: "none", dry_run: true }).final);
print("---");
print(HOST.create_vm(#{ name: "pxe", virt_type: "qemu", pxe: true, dry_run: true }).final);"#,
    )
    .run();
    run.ok();
    let parts: Vec<&str> = run.stdout.split("---").collect();
    let defined = parts[0];
    assert_eq!(
        tags(defined, "graphics"),
        ["<graphics type='spice' autoport='yes' listen='127.0.0.1'>"],
        "{defined}"
    );
    assert!(defined.contains("<model type='qxl'"), "{defined}");
    assert!(defined.contains("name='com.redhat.spice.0'"), "{defined}");
    assert!(defined.contains("<console type='pty'>"), "{defined}");
    for other in &parts[1..] {
        assert!(tags(other, "graphics").is_empty(), "{other}");
        assert!(tags(other, "video").is_empty(), "{other}");
        assert!(other.contains("<console type='pty'>"), "{other}");
    }
}

/// A resource of an osinfo-db entry as virt-install reads it: the
/// recommended value for the arch or `all`, else twice the minimum.
fn osinfo_resource(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).unwrap();
    let value = |section: &str| -> Option<u64> {
        text.split("<resources arch=\"").skip(1).find_map(|r| {
            let arch = &r[..r.find('"').unwrap()];
            if arch != "all" && arch != "x86_64" {
                return None;
            }
            let s = r.split(&format!("<{section}>")).nth(1)?;
            let s = &s[..s.find(&format!("</{section}>")).unwrap()];
            let v = s.split(&format!("<{key}>")).nth(1)?;
            v[..v.find('<').unwrap()].trim().parse().ok()
        })
    };
    value("recommended").or_else(|| value("minimum").map(|m| m * 2))
}

/// An ISO in `dir` with volume id `label` (what osinfo's `<volume-id>` matches).
fn labelled_iso(dir: &std::path::Path, name: &str, label: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("README"), "netinst\n").unwrap();
    let iso = dir.join(name);
    let out = std::process::Command::new("genisoimage")
        .args(["-quiet", "-V", label, "-o"])
        .arg(&iso)
        .arg(dir.join("README"))
        .output()
        .expect("genisoimage (tools/libvirtd-netns.sh install) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    iso
}

const DEBIAN11: &str = "/usr/share/osinfo/os/debian.org/debian-11.xml";

/// `os: "debian11"`: memory, vCPUs and the new disk's size are the osinfo-db
/// entry's (read here from the same file), virtio from its derives-from
/// chain, and the OS is recorded in libosinfo's metadata.
#[test]
fn os_defaults_come_from_osinfo_db() {
    let ram = osinfo_resource(DEBIAN11, "ram").expect("debian11 lists its RAM");
    let storage = osinfo_resource(DEBIAN11, "storage").expect("debian11 lists its storage");
    let cpus = osinfo_resource(DEBIAN11, "n-cpus").expect("debian11 lists its CPUs");
    let run = Script::new(
        r#"let vm = HOST.define_vm(#{ name: "deb", os: "debian11", import: true,
    disks: [#{ pool: "default-pool" }] });
print(vm.xml);
print(`capacity=${HOST.pool("default-pool").volume("deb.qcow2").capacity}`);"#,
    )
    .run();
    run.ok().stdout_has(&format!("capacity={storage}"));
    let xml = &run.stdout;
    assert!(
        xml.contains(&format!("<memory unit='KiB'>{}</memory>", ram / 1024)),
        "{xml}"
    );
    assert!(xml.contains(&format!(">{cpus}</vcpu>")), "{xml}");
    assert!(xml.contains("<target dev='vda' bus='virtio'/>"), "{xml}");
    assert!(xml.contains("<model type='virtio'/>"), "{xml}");
    assert!(
        xml.contains(r#"<libosinfo:os id="http://debian.org/debian/11"/>"#),
        "{xml}"
    );
    // Given values win over the OS's.
    let own = dry_run(
        r#"#{ name: "own", os: "debian11", memory: "512M", vcpus: 3, pxe: true, dry_run: true }"#,
    );
    assert!(own.contains("<memory unit='KiB'>524288</memory>"), "{own}");
    assert!(own.contains(">3</vcpu>"), "{own}");
}

/// `os: "detect"` reads the ISO's volume id and matches osinfo-db's
/// `<volume-id>` patterns: an ISO labelled like Debian 11's netinst is Debian 11.
#[test]
fn os_detect_identifies_an_iso_by_its_volume_id() {
    let text = std::fs::read_to_string(DEBIAN11).unwrap();
    assert!(
        text.contains(r"<volume-id>Debian 11.\d+.\d+ amd64 n</volume-id>"),
        "the pattern this test's label is made for"
    );
    let dir = tempfile::tempdir().unwrap();
    let iso = labelled_iso(dir.path(), "debian.iso", "Debian 11.7.0 amd64 n");
    let xml = dry_run(&format!(
        r#"#{{ name: "det", os: "detect", cdrom: "{}", allow_path: true, dry_run: true }}"#,
        iso.display()
    ));
    assert!(
        xml.contains("<libosinfo:os id='http://debian.org/debian/11'/>"),
        "{xml}"
    );

    // An ISO osinfo-db does not know is an error naming os.
    let other = dir.path().join("other.iso");
    std::fs::write(&other, virtscript::iso::build("NOT-AN-OS", &[("a", b"a")])).unwrap();
    let run = Script::new(&format!(
        r#"try {{ HOST.create_vm(#{{ name: "x", os: "detect", cdrom: "{}", allow_path: true }}); }}
catch (e) {{ print(`field=${{e.field}}|value=${{e.value}}|${{e.message}}`); }}"#,
        other.display()
    ))
    .run();
    run.ok()
        .stdout_has("field=os|value=detect|")
        .stdout_has("volume id \"NOT-AN-OS\"");
}

/// A short id osinfo-db lacks fails with the field, the value, the nearest
/// id and the script line, and creates nothing.
#[test]
fn a_bad_os_id_suggests_the_nearest() {
    let run = Script::new(
        r#"let before = HOST.vms().len();
try {
    HOST.create_vm(#{ name: "bad", os: "debain11", import: true, disks: [#{ pool: "default-pool" }] });
} catch (e) { print(`field=${e.field}|value=${e.value}|line=${e.line}|${e.message}`); }
assert_eq(HOST.vms().len(), before);
assert(!HOST.pool("default-pool").volumes().some(|v| v.name.starts_with("bad")));"#,
    )
    .run();
    run.ok()
        .stdout_has("field=os|value=debain11|line=3|")
        .stdout_has("did you mean \"debian11\"");
}

// ------------------------------------------------------------------ live

/// On the real daemon: the CD-ROM bus and firmware chosen from its domain
/// capabilities for x86_64 q35 define and start (TCG); an aarch64 request
/// defines when the daemon has qemu-system-aarch64, else fails naming arch.
#[test]
fn live_domcaps_choices_define_and_start() {
    let uri = live_uri();
    let pool = LivePool::new(&uri, "caps");
    let name = unique("caps-q35");
    let arm = unique("caps-arm");
    let iso = format!("{}/install.iso", pool.dir);
    std::fs::write(
        &iso,
        virtscript::iso::build("TESTCD", &[("readme.txt", b"test cd\n")]),
    )
    .unwrap();
    let run = Script::new(&format!(
        r#"let vm = HOST.create_vm(#{{ name: "{name}", memory: 256, machine: "q35", virt_type: "qemu",
    uefi: true, cdrom: "{iso}", networks: [], disks: [#{{ pool: "{pool}", size: "16M", bus: "scsi" }}] }});
assert_eq(vm.state, "running");
print(vm.inactive_xml);
vm.destroy();
vm.undefine(#{{ remove_storage: true, nvram: true }});
print("---");
try {{
    let a = HOST.define_vm(#{{ name: "{arm}", arch: "aarch64", memory: 256, cdrom: "{iso}", networks: [] }});
    print(`defined ${{a.inactive_xml}}`);
    a.undefine(#{{ nvram: true }});
}} catch (e) {{ print(`field=${{e.field}}|value=${{e.value}}|${{e.message}}`); }}"#,
        pool = pool.name,
    ))
    .connect(&uri)
    .run();
    let _ = virsh_try(&uri, &["destroy", &name]);
    let _ = virsh_try(&uri, &["undefine", "--nvram", &name]);
    let _ = virsh_try(&uri, &["undefine", "--nvram", &arm]);
    run.ok();
    let (q35, arm_out) = run.stdout.split_once("---").unwrap();
    assert_eq!(cdrom_buses(q35), ["sata"], "{q35}");
    assert!(q35.contains("machine='pc-q35-"), "{q35}");
    assert!(q35.contains("<os firmware='efi'>"), "{q35}");
    assert!(q35.contains("model='virtio-scsi'"), "{q35}");
    assert!(q35.contains("<graphics type='spice'"), "{q35}");
    assert!(q35.contains("<model type='qxl'"), "{q35}");
    if std::path::Path::new("/usr/bin/qemu-system-aarch64").exists() {
        assert!(arm_out.contains("defined "), "{arm_out}");
        assert!(arm_out.contains("firmware='efi'"), "{arm_out}");
        assert!(!arm_out.contains("bus='ide'"), "{arm_out}");
    } else {
        assert!(arm_out.contains("field=arch|value=aarch64|"), "{arm_out}");
        assert!(
            arm_out.contains("this host cannot run aarch64 guests with virt type qemu"),
            "{arm_out}"
        );
    }
    let list = virsh(&uri, &["list", "--all", "--name"]);
    assert!(!list.contains(&name) && !list.contains(&arm), "{list}");
}

/// `os: "debian12"` works on hosts whose osinfo-db stops at debian11 (Debian
/// 12's own): virtscript's bundled entry derives from debian11, whose
/// resources it takes, and `detect` knows a Debian 12 netinst ISO. A system
/// database that has debian12 wins (here: a copy of it that says so).
#[test]
fn debian12_is_known_even_where_osinfo_db_predates_it() {
    let ram = osinfo_resource(DEBIAN11, "ram").unwrap();
    let storage = osinfo_resource(DEBIAN11, "storage").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let iso = labelled_iso(dir.path(), "debian12.iso", "Debian 12.4.0 amd64 n");
    let run = Script::new(&format!(
        r#"let vm = HOST.define_vm(#{{ name: "bookworm", os: "debian12", import: true,
    disks: [#{{ pool: "default-pool" }}] }});
print(vm.xml);
print(`capacity=${{HOST.pool("default-pool").volume("bookworm.qcow2").capacity}}`);
let x = HOST.create_vm(#{{ name: "det", os: "detect", cdrom: "{}", allow_path: true, dry_run: true }});
print(`detected=${{x.final}}`);"#,
        iso.display()
    ))
    .run();
    run.ok().stdout_has(&format!("capacity={storage}"));
    assert!(
        run.stdout
            .contains(&format!("<memory unit='KiB'>{}</memory>", ram / 1024)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("<libosinfo:os id='http://debian.org/debian/12'/>"),
        "{}",
        run.stdout
    );
    let detected = run.stdout.split("detected=").nth(1).unwrap();
    assert!(
        detected.contains("http://debian.org/debian/12"),
        "{detected}"
    );

    // A database with its own debian12 entry is the one used.
    let db = tempfile::tempdir().unwrap();
    let os = db.path().join("os/debian.org");
    std::fs::create_dir_all(&os).unwrap();
    std::fs::copy(DEBIAN11, os.join("debian-11.xml")).unwrap();
    std::fs::write(
        os.join("debian-12.xml"),
        r#"<libosinfo version="0.0.1"><os id="http://debian.org/debian/12"><short-id>debian12</short-id>
<derives-from id="http://debian.org/debian/11"/><resources arch="all"><minimum><n-cpus>3</n-cpus><ram>3221225472</ram></minimum></resources></os></libosinfo>"#,
    )
    .unwrap();
    let own = Script::new(
        r#"print(HOST.create_vm(#{ name: "d", os: "debian12", pxe: true, dry_run: true }).final);"#,
    )
    .env("OSINFO_SYSTEM_DIR", db.path().to_str().unwrap())
    .run();
    own.ok();
    assert!(
        own.stdout.contains("<memory unit='KiB'>6291456</memory>"),
        "{}",
        own.stdout
    );
    assert!(own.stdout.contains(">6</vcpu>"), "{}", own.stdout);
}

/// virt-install's x86 machine: q35 when the `os` runs on it (osinfo's q35
/// chipset device, and virtio 1.0 where it has virtio-net), `pc` for
/// `generic` (virt-install's "no OS defaults") and without `os`.
#[test]
fn an_os_that_runs_on_q35_gets_q35() {
    let machine = |os: &str| {
        let xml = dry_run(&format!(
            r#"#{{ name: "m", virt_type: "qemu", pxe: true, {os} dry_run: true }}"#
        ));
        let el = virtscript::xml::tree::Element::parse(&xml).unwrap();
        el.path(&["os", "type"])
            .and_then(|t| t.attr("machine").map(str::to_owned))
            .unwrap_or_default()
    };
    assert_eq!(machine(r#"os: "debian11","#), "q35");
    assert_eq!(machine(r#"os: "win10","#), "q35");
    assert_eq!(machine(r#"os: "generic","#), "");
    assert_eq!(machine(""), "");
    // A machine given is kept.
    assert_eq!(machine(r#"os: "debian11", machine: "pc","#), "pc");
}
