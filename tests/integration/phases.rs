//! Install phases as virt-install runs them (the install boot, then the final
//! definition), and `location` install trees served over HTTP from loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::{live_uri, tiny_guest, unique, virsh, virsh_try, Script, VmGuard};

/// A fake install tree served on 127.0.0.1 (GET and HEAD), recording the
/// requests it answers. Nothing leaves the machine.
pub struct TreeServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl TreeServer {
    pub fn new(files: &[(&str, Vec<u8>)]) -> TreeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let files: BTreeMap<String, Vec<u8>> = files
            .iter()
            .map(|(p, b)| (format!("/{}", p.trim_start_matches('/')), b.clone()))
            .collect();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    serve(stream, &files, &log);
                }
            }
        });
        TreeServer {
            port,
            requests,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TreeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, files: &BTreeMap<String, Vec<u8>>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        // The headers, up to the blank line.
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
        }
        log.lock().unwrap().push(format!("{method} {path}"));
        let mut out = &stream;
        let (status, body): (&str, &[u8]) = match files.get(&path) {
            Some(b) => ("200 OK", b),
            None => ("404 Not Found", b"not here\n"),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            body.len()
        );
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method != "HEAD" && out.write_all(body).is_err() {
            return;
        }
        let _ = out.flush();
    }
}

const TREEINFO: &str = "[general]\nname = Fake\narch = x86_64\n\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n";

fn fake_tree(kernel: Vec<u8>, initrd: Vec<u8>) -> TreeServer {
    TreeServer::new(&[
        ("tree/.treeinfo", TREEINFO.as_bytes().to_vec()),
        ("tree/images/pxeboot/vmlinuz", kernel),
        ("tree/images/pxeboot/initrd.img", initrd),
    ])
}

/// A spec that fails names the field, the value and the line, and leaves
/// no VM and no volume behind.
#[track_caller]
fn refused(spec: &str, field: &str, value: &str, message: &str) {
    let script = format!(
        r#"let before = HOST.vms().len();
let vols = HOST.pools().map(|p| p.volumes().len());
try {{
    HOST.create_vm({spec});
    print("CREATED");
}} catch (e) {{
    print(`field=${{e.field}}|value=${{e.value}}|line=${{e.line}}|${{e.message}}`);
}}
assert_eq(HOST.vms().len(), before);
assert_eq(HOST.pools().map(|p| p.volumes().len()), vols);
"#
    );
    let run = Script::new(&script).run();
    run.ok()
        .stdout_has(&format!("field={field}|value={value}|line=4|"))
        .stdout_has(message);
    assert!(!run.stdout.contains("CREATED"), "{}", run.stdout);
}

#[test]
fn an_iso_install_boots_the_cdrom_once_and_its_definition_boots_the_disk() {
    Script::new(
        r#"
let spec = #{ name: "iso", memory: "512M", virt_type: "qemu", networks: [],
    disks: [#{ pool: "default-pool", size: "1G" }], cdrom: "/var/lib/libvirt/isos/debian.iso" };
let dry = spec + #{ dry_run: true };
let both = HOST.create_vm(dry);
assert_eq(type_of(both), "map");
assert_eq(both.keys(), ["final", "install"]);
let i = both.install;
assert(i.contains("<source file='/var/lib/libvirt/isos/debian.iso'/><target dev='hda' bus='ide'/>"), i);
assert(i.contains("<boot dev='cdrom'/><boot dev='hd'/>"), i);
assert(i.contains("<on_reboot>destroy</on_reboot>"), i);
let f = both.final;
assert(f.contains("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='hda' bus='ide'/><readonly/></disk>"), f);
assert(!f.contains("debian.iso"), f);
assert(f.contains("<boot dev='hd'/></os>"), f);
assert(f.contains("<on_reboot>restart</on_reboot>"), f);
assert(HOST.find_vm("iso") == ());

// create_vm: the install boot runs, the final definition is the persistent one.
let vm = HOST.create_vm(spec);
assert_eq(vm.state, "running");
assert(vm.xml.contains("debian.iso") && vm.xml.contains("<boot dev='cdrom'/>"), vm.xml);
assert(vm.xml.contains("<on_reboot>destroy</on_reboot>"), vm.xml);
let p = vm.inactive_xml;
assert(!p.contains("debian.iso") && p.contains("<boot dev='hd'/>"), p);
assert(p.contains("<on_reboot>restart</on_reboot>") && !p.contains("xmlns/install"), p);
// Once the install boot ends, the VM is its final definition: the CD-ROM
// drive is there, empty.
vm.destroy();
vm.start();
let x = vm.xml;
assert(!x.contains("debian.iso") && x.contains("device='cdrom'") && x.contains("<boot dev='hd'/>"), x);
assert(x.contains("<on_reboot>restart</on_reboot>"), x);
print("ok");
"#,
    )
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn pxe_and_local_tree_installs_have_two_phases_import_and_kernel_one() {
    let run = Script::new(
        r#"
// PXE: the network once, then the disk (virt-install's boot order).
let pxe = HOST.create_vm(#{ name: "p", virt_type: "qemu", pxe: true,
    disks: [#{ pool: "default-pool", size: "1G" }], dry_run: true });
assert(pxe.install.contains("<boot dev='network'/><boot dev='hd'/>"), pxe.install);
assert(pxe.install.contains("<on_reboot>destroy</on_reboot>"), pxe.install);
assert(pxe.final.contains("<boot dev='hd'/></os>") && !pxe.final.contains("dev='network'"), pxe.final);
assert(pxe.final.contains("<on_reboot>restart</on_reboot>"), pxe.final);

// A local tree: its .treeinfo names the installer, which boots once.
let tree = ARGS[0];
let loc = HOST.create_vm(#{ name: "l", virt_type: "qemu", location: tree, allow_path: true,
    extra_args: "console=ttyS0", disks: [#{ pool: "default-pool", size: "1G" }], dry_run: true });
let i = loc.install;
assert(i.contains(`<kernel>${tree}/images/pxeboot/vmlinuz</kernel><initrd>${tree}/images/pxeboot/initrd.img</initrd><cmdline>console=ttyS0</cmdline>`), i);
assert(!i.contains("<boot dev="), i);
assert(i.contains("<on_reboot>destroy</on_reboot>"), i);
let f = loc.final;
assert(!f.contains("<kernel>") && !f.contains("<initrd>") && !f.contains("<cmdline>"), f);
assert(f.contains("<boot dev='hd'/>") && f.contains("<on_reboot>restart</on_reboot>"), f);

// No install phase: one XML, as before.
let imp = HOST.create_vm(#{ name: "i", virt_type: "qemu", import: true,
    disks: [#{ pool: "default-pool", size: "1G" }], dry_run: true });
assert_eq(type_of(imp), "string");
let k = HOST.create_vm(#{ name: "k", virt_type: "qemu", kernel: `${tree}/images/pxeboot/vmlinuz`,
    allow_path: true, dry_run: true });
assert_eq(type_of(k), "string");
assert(k.contains("<kernel>"), k);
print("ok");
"#,
    );
    let tree = run.dir().join("tree");
    std::fs::create_dir_all(tree.join("images/pxeboot")).unwrap();
    std::fs::write(tree.join(".treeinfo"), TREEINFO).unwrap();
    std::fs::write(tree.join("images/pxeboot/vmlinuz"), "k").unwrap();
    std::fs::write(tree.join("images/pxeboot/initrd.img"), "i").unwrap();
    let tree = tree.display().to_string();
    run.script_arg(&tree).run().ok().stdout_has("ok");
}

#[test]
fn define_vm_records_the_install_phase_and_the_first_start_runs_it() {
    Script::new(
        r#"
let vm = HOST.define_vm(#{ name: "later", memory: "512M", virt_type: "qemu", networks: [],
    disks: [#{ pool: "default-pool", size: "1G" }], cdrom: "/var/lib/libvirt/isos/debian.iso" });
assert_eq(vm.state, "shut off");
let p = vm.inactive_xml;
// The final definition, with the install boot recorded in virtscript's namespace.
assert(p.contains("<boot dev='hd'/>") && p.contains("<on_reboot>restart</on_reboot>"), p);
assert(p.contains("<vsi:install xmlns:vsi=\"https://virtscript.dev/xmlns/install/1\" on_reboot=\"destroy\">"), p);
assert(p.contains("<vsi:media target=\"hda\" source=\"/var/lib/libvirt/isos/debian.iso\"/>"), p);
assert(vm.metadata("https://virtscript.dev/xmlns/install/1") != ());
vm.start();
let x = vm.xml;
assert(x.contains("debian.iso") && x.contains("<boot dev='cdrom'/>") && x.contains("<on_reboot>destroy</on_reboot>"), x);
// Used up: the record is gone, the next start is the final definition.
assert(vm.metadata("https://virtscript.dev/xmlns/install/1") == ());
assert(!vm.inactive_xml.contains("debian.iso"), vm.inactive_xml);
vm.destroy();
vm.start();
assert(!vm.xml.contains("debian.iso") && vm.xml.contains("<boot dev='hd'/>"), vm.xml);

// Skipping the install boot: remove the record before the first start.
let skip = HOST.define_vm(#{ name: "skip", virt_type: "qemu", pxe: true, networks: ["default"] });
skip.set_metadata("https://virtscript.dev/xmlns/install/1", ());
skip.start();
assert(skip.xml.contains("<on_reboot>restart</on_reboot>"), skip.xml);
print("ok");
"#,
    )
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn a_url_tree_is_fetched_booted_once_and_its_files_removed() {
    let server = fake_tree(b"KERNEL".to_vec(), b"INITRD".to_vec());
    let run = Script::new(
        r#"
let url = ARGS[0];
let vm = HOST.create_vm(#{ name: "net", virt_type: "qemu", location: url, extra_args: "auto=true",
    disks: [#{ pool: "default-pool", size: "1G" }], networks: [] });
let x = vm.xml;
assert(x.contains("-install.kernel</kernel>") && x.contains("<cmdline>auto=true</cmdline>"), x);
assert(x.contains("<on_reboot>destroy</on_reboot>"), x);
let p = vm.inactive_xml;
assert(!p.contains("<kernel>") && p.contains("<boot dev='hd'/>"), p);
let k = x.split("<kernel>")[1].split("</kernel>")[0];
print(`kernel=${k}`);

// define_vm: fetched now, kept until the first start, then removed.
let later = HOST.define_vm(#{ name: "net2", virt_type: "qemu", location: url, networks: [] });
let rec = later.metadata("https://virtscript.dev/xmlns/install/1");
assert(rec.contains("<scratch path="), rec);
let k2 = rec.split("<kernel>")[1].split("</kernel>")[0];
print(`kept=${k2}`);
assert(file_size(k2) == 6, `${file_size(k2)}`);
// A clone would boot (and remove) the same fetched files: refused until the install ran.
let refused = "";
try { later.clone(#{ name: "net2-copy" }); } catch (e) { refused = `${e.kind}: ${e.message}`; }
assert(refused.contains("has not run its install yet"), refused);
assert(HOST.find_vm("net2-copy") == ());
later.start();
assert(later.xml.contains(k2), later.xml);
print(`started=${k2}`);

// Undefined before its first start, the VM takes its fetched installer along.
let never = HOST.define_vm(#{ name: "net3", virt_type: "qemu", location: url, networks: [] });
let k3 = never.metadata("https://virtscript.dev/xmlns/install/1").split("<kernel>")[1].split("</kernel>")[0];
assert(file_size(k3) == 6);
let r = never.undefine();
assert(r.removed_volumes.contains(k3), `${r}`);
assert(file_size(k3) == (), k3);
"#,
    )
    .script_arg(&server.url("tree"))
    .run();
    run.ok();
    let kernel = run
        .stdout
        .split("kernel=")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    assert!(!std::path::Path::new(kernel).exists(), "{kernel} is left");
    let kept = run
        .stdout
        .split("started=")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap();
    assert!(!std::path::Path::new(kept).exists(), "{kept} is left");
    let reqs = server.requests();
    assert!(reqs.contains(&"GET /tree/.treeinfo".to_owned()), "{reqs:?}");
    assert!(
        reqs.contains(&"GET /tree/images/pxeboot/vmlinuz".to_owned()),
        "{reqs:?}"
    );
    assert!(
        reqs.contains(&"GET /tree/images/pxeboot/initrd.img".to_owned()),
        "{reqs:?}"
    );
}

#[test]
fn a_debian_tree_without_treeinfo_is_found_by_its_layout() {
    let server = TreeServer::new(&[
        (
            "debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux",
            b"K".to_vec(),
        ),
        (
            "debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/initrd.gz",
            b"I".to_vec(),
        ),
    ]);
    let run = Script::new(
        r#"
let both = HOST.create_vm(#{ name: "deb", virt_type: "qemu", location: ARGS[0], networks: [], dry_run: true });
assert(both.install.contains("virtscript-deb-install.kernel</kernel>"), both.install);
print("ok");
"#,
    )
    .script_arg(&server.url("debian/dists/bookworm"))
    .run();
    run.ok().stdout_has("ok");
    // A dry run reads the tree (to check it) but fetches no image.
    let reqs = server.requests();
    assert!(
        reqs.iter()
            .all(|r| !r.starts_with("GET /debian/dists/bookworm/main")),
        "{reqs:?}"
    );
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("HEAD ") && r.ends_with("/amd64/linux")),
        "{reqs:?}"
    );
}

#[test]
fn bad_location_urls_name_the_field_and_make_nothing() {
    // A port nobody listens on (bound, then closed).
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/tree");
    refused(
        &format!("#{{ name: \"u\", virt_type: \"qemu\", location: \"{url}\", networks: [] }}"),
        "location",
        &url,
        &format!("location: cannot fetch {url}/.treeinfo: "),
    );
    let empty = TreeServer::new(&[("tree/README", b"nothing".to_vec())]);
    let url = empty.url("tree");
    refused(
        &format!("#{{ name: \"u\", virt_type: \"qemu\", location: \"{url}\", networks: [] }}"),
        "location",
        &url,
        "no kernel and initrd found in the tree",
    );
    refused(
        &format!("#{{ name: \"u\", virt_type: \"qemu\", location: \"{url}\", location_pool: \"nopool\", networks: [] }}"),
        "location_pool",
        "nopool",
        "no storage pool by this name",
    );
    refused(
        r#"#{ name: "u", virt_type: "qemu", cdrom: "/var/lib/libvirt/isos/x.iso", location_pool: "default-pool", networks: [] }"#,
        "location_pool",
        "default-pool",
        "only goes with location",
    );
    refused(
        r#"#{ name: "u", virt_type: "qemu", location: "ftp://127.0.0.1/tree", networks: [] }"#,
        "location",
        "ftp://127.0.0.1/tree",
        "ftp:// trees are not supported",
    );
}

#[test]
fn a_plan_rehearsal_fetches_nothing() {
    let server = fake_tree(b"K".to_vec(), b"I".to_vec());
    let run = Script::new(
        r#"HOST.create_vm(#{ name: "planned", virt_type: "qemu", location: ARGS[0], networks: [] });"#,
    )
    .arg("--plan")
    .script_arg(&server.url("tree"))
    .run();
    run.code(10).stdout_has("planned");
    assert_eq!(server.requests(), Vec::<String>::new());
}

/// On the real daemon: an ISO install's install boot runs over the persistent
/// definition, which boots from disk with an empty CD-ROM once it has stopped.
#[test]
fn live_an_iso_install_leaves_a_definition_that_boots_from_disk() {
    let uri = live_uri();
    let name = unique("isoinst");
    let pool = crate::support::LivePool::new(&uri, "isoinst");
    let _guard = VmGuard(vec![uri.clone()], name.clone());
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("README"), "install me\n").unwrap();
    let iso = format!("{}/install.iso", pool.dir);
    let made = std::process::Command::new("genisoimage")
        .args(["-quiet", "-V", "INSTALL", "-o", &iso])
        .arg(src.path())
        .status()
        .expect("genisoimage runs");
    assert!(made.success());
    let script = format!(
        r#"
HOST.pool("{pool}").refresh();
let vm = HOST.create_vm(#{{ name: "{name}", memory: 128, vcpus: 1, virt_type: "qemu", networks: [],
    graphics: "none", disks: [#{{ pool: "{pool}", size: "16M", format: "raw" }}], cdrom: "{iso}" }});
assert_eq(vm.state, "running");
print("created");
"#,
        pool = pool.name,
    );
    Script::new(&script)
        .connect(&uri)
        .run()
        .ok()
        .stdout_has("created");
    let live = virsh(&uri, &["dumpxml", &name]);
    assert!(live.contains(&iso), "{live}");
    assert!(live.contains("<boot dev='cdrom'/>"), "{live}");
    assert!(live.contains("<on_reboot>destroy</on_reboot>"), "{live}");
    let inactive = virsh(&uri, &["dumpxml", "--inactive", &name]);
    assert!(
        !inactive.contains(&iso) && inactive.contains("<boot dev='hd'/>"),
        "{inactive}"
    );
    virsh(&uri, &["destroy", &name]);
    let after = virsh(&uri, &["dumpxml", &name]);
    assert!(!after.contains(&iso), "{after}");
    assert!(after.contains("<boot dev='hd'/>"), "{after}");
    assert!(after.contains("<on_reboot>restart</on_reboot>"), "{after}");
    assert!(
        after.contains("device='cdrom'"),
        "the CD-ROM drive must stay: {after}"
    );
    let (persistent, info) = virsh_try(&uri, &["dominfo", &name]);
    assert!(persistent && info.contains("Persistent:     yes"), "{info}");
}

/// On the real daemon: a network install from a loopback HTTP tree (the
/// tiny guest's kernel and initrd as the installer) starts, and the fetched
/// kernel volumes are gone from the pool afterwards.
#[test]
fn live_a_url_install_uploads_boots_and_removes_the_installer() {
    let uri = live_uri();
    let dir = tiny_guest();
    let kernel = std::fs::read(format!("{dir}/vmlinuz")).unwrap();
    let initrd = std::fs::read(format!("{dir}/initrd.img")).unwrap();
    let server = fake_tree(kernel, initrd);
    let name = unique("urlinst");
    let _guard = VmGuard(vec![uri.clone()], name.clone());
    let pool = crate::support::LivePool::new(&uri, "urlinst");
    let script = format!(
        r#"
let before = HOST.pool("{pool}").volumes().map(|v| v.name);
let vm = HOST.create_vm(#{{ name: "{name}", memory: 256, vcpus: 1, virt_type: "qemu", networks: [],
    graphics: "none", location: ARGS[0], location_pool: "{pool}", extra_args: "console=ttyS0" }});
assert_eq(vm.state, "running");
let x = vm.xml;
assert(x.contains("<kernel>/") && x.contains("{name}-install.kernel</kernel>"), x);
assert(x.contains("<on_reboot>destroy</on_reboot>"), x);
assert(!vm.inactive_xml.contains("<kernel>"), vm.inactive_xml);
assert(x.contains("<kernel>{dir}/"), x);
// Uploaded, booted, removed.
assert_eq(HOST.pool("{pool}").volumes().map(|v| v.name), before);
vm.destroy();
assert(!vm.xml.contains("<kernel>") && vm.xml.contains("<boot dev='hd'/>"), vm.xml);
vm.undefine();
// define_vm: uploaded now, kept in the pool until the first start.
let later = HOST.define_vm(#{{ name: "{name}", memory: 256, vcpus: 1, virt_type: "qemu", networks: [],
    graphics: "none", location: ARGS[0], location_pool: "{pool}", extra_args: "console=ttyS0" }});
let kept = HOST.pool("{pool}").volumes().map(|v| v.name);
assert(kept.contains("virtscript-{name}-install.kernel") && kept.contains("virtscript-{name}-install.initrd"), `${{kept}}`);
later.start();
assert(later.xml.contains("-install.kernel</kernel>"), later.xml);
assert_eq(HOST.pool("{pool}").volumes().map(|v| v.name), before);
print("started");
"#,
        pool = pool.name,
        dir = pool.dir,
    );
    Script::new(&script)
        .connect(&uri)
        .script_arg(&server.url("tree"))
        .run()
        .ok()
        .stdout_has("started");
    let vols = virsh(&uri, &["vol-list", &pool.name]);
    assert!(!vols.contains(&format!("{name}-install")), "{vols}");
    let reqs = server.requests();
    assert!(
        reqs.contains(&"GET /tree/images/pxeboot/vmlinuz".to_owned()),
        "{reqs:?}"
    );
    // Bad trees on the real host make nothing either.
    let script = format!(
        r#"
let vols = HOST.pool("{pool}").volumes().len();
try {{
    HOST.create_vm(#{{ name: "{name}-bad", virt_type: "qemu", networks: [], location: ARGS[0], location_pool: "{pool}" }});
}} catch (e) {{ print(`field=${{e.field}}|value=${{e.value}}|line=${{e.line}}`); }}
assert(HOST.find_vm("{name}-bad") == ());
assert_eq(HOST.pool("{pool}").volumes().len(), vols);
"#,
        pool = pool.name,
    );
    let empty = TreeServer::new(&[("tree/README", b"x".to_vec())]);
    Script::new(&script)
        .connect(&uri)
        .script_arg(&empty.url("tree"))
        .run()
        .ok()
        .stdout_has(&format!(
            "field=location|value={}|line=4",
            empty.url("tree")
        ));
}

/// A Windows install goes through several reboots from its media: the final
/// definition keeps the ISO in the drive (virt-install does too); other OSes
/// get the drive ejected.
#[test]
fn a_windows_install_keeps_its_media_in_the_final_definition() {
    let run = Script::new(
        r#"
for os in ["win10", "debian11"] {
    let x = HOST.create_vm(#{ name: "w", os: os, virt_type: "qemu", networks: [],
        cdrom: "/var/lib/libvirt/isos/setup.iso", dry_run: true });
    assert(x.install.contains("setup.iso"), x.install);
    print(`${os}=${x.final.contains("<source file='/var/lib/libvirt/isos/setup.iso'/>")}`);
}
"#,
    )
    .run();
    run.ok()
        .stdout_has("win10=true")
        .stdout_has("debian11=false");
}
