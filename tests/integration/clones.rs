//! VM clones (`vm.clone`, `vm.clone_many`), the bundled clone scripts and
//! snapshots: semantics on the embedded test driver, the real thing on the
//! private daemon (`live_*`).
use std::process::Command;

use crate::support::{
    live_uri, qemu_img_info, stdout_of, tiny_guest, unique, virsh, virsh_try, vol_names, LiveEnv,
    LivePool, Script, VmGuard,
};
use virtscript::xml::snapshot::SnapshotXml;
use virtscript::xml::tree::Element;

/// A shut-off VM "web" with two disks, an ISO and two NICs, on the test driver.
const WEB: &str = r#"
let web = HOST.define_vm(#{ name: "web", memory: 512, virt_type: "qemu", import: true,
    disks: [#{ pool: "default-pool", size: "1G" }, #{ pool: "default-pool", size: "2G" },
            #{ path: "/isos/debian.iso", readonly: true, allow_path: true }],
    networks: ["default", #{ network: "default", mac: "52:54:00:00:00:07" }] });
"#;

fn script(body: &str) -> String {
    format!("{WEB}\n{body}")
}

#[test]
fn every_bundled_script_checks_and_runs_on_the_embedded_driver() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        Script::new(&text).named(&file).command("check").run().ok();
        Script::new(&text).named(&file).run().ok();
    }
}

#[test]
fn a_clone_has_new_identity_and_disks_and_shares_the_iso() {
    Script::new(&script(
        r#"
let c = web.clone();
assert_eq(c.name, "web-clone");
assert(c.uuid != web.uuid);
assert_eq(c.state, "shut off");
let old = web.interfaces().map(|n| n.mac);
let fresh = c.interfaces().map(|n| n.mac);
assert_eq(fresh.len(), 2);
for m in fresh { assert(m.starts_with("52:54:00:"), m); assert(!old.contains(m), m); }
assert(fresh[0] != fresh[1]);
let d = c.disks();
assert_eq(d.map(|x| x.source), ["/default-pool/web-clone.qcow2", "/default-pool/web-clone-1.qcow2", "/isos/debian.iso"]);
assert_eq(d[2].readonly, true);
assert_eq(HOST.pool("default-pool").volumes().len(), 4);
// Automatic names go on like virt-clone --auto-clone.
assert_eq(web.clone().name, "web-clone1");
assert_eq(web.clone().name, "web-clone2");
print("ok");
"#,
    ))
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn explicit_names_files_macs_and_linked_storage() {
    Script::new(&script(
        r#"
let db = web.clone(#{ name: "db", storage: "linked", files: ["db-root.qcow2", "/default-pool/db-data.qcow2"],
    macs: ["52:54:00:aa:00:01"] });
assert_eq(db.disks().map(|x| x.source), ["/default-pool/db-root.qcow2", "/default-pool/db-data.qcow2", "/isos/debian.iso"]);
assert_eq(db.disks()[0].format, "qcow2");
let pool = HOST.pool("default-pool");
assert_eq(pool.volume("db-root.qcow2").backing.path, "/default-pool/web.qcow2");
assert_eq(pool.volume("db-data.qcow2").backing.path, "/default-pool/web-1.qcow2");
assert_eq(db.interfaces()[0].mac, "52:54:00:aa:00:01");
assert(db.interfaces()[1].mac != "52:54:00:00:00:07");
let started = web.clone(#{ name: "up", start: true });
assert_eq(started.state, "running");
print("ok");
"#,
    ))
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn skip_copy_shares_a_disk_and_a_disk_outside_any_pool_clones_when_shared() {
    Script::new(&script(
        r#"
let pool = HOST.pool("default-pool");
let c = web.clone(#{ name: "s1", skip_copy: ["vdb", "vdc"] });
let x = c.xml;
// vda is copied; vdb keeps the source's file; the ISO is shared as always.
assert(x.contains("<source file='/default-pool/s1.qcow2'/>"), x);
assert(x.contains("<source file='/default-pool/web-1.qcow2'/>\n      <target dev='vdb'"), x);
assert(x.contains("<source file='/isos/debian.iso'/>"), x);
let names = pool.volumes().map(|v| v.name);
names.sort();
assert_eq(names, ["s1.qcow2", "web-1.qcow2", "web.qcow2"]);
// A disk in no pool cannot be copied, but it can be shared.
let t = HOST.vm("test");
t.destroy();
let tc = t.clone(#{ name: "t2", skip_copy: ["vda"] });
assert_eq(tc.disks()[0].source, "/guest/diskimage1");
print("ok");
"#,
    ))
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn preserve_data_uses_the_given_volumes_as_they_are_and_copies_nothing() {
    Script::new(&script(
        r#"
let pool = HOST.pool("default-pool");
let keep = pool.create_volume(#{ name: "keep.qcow2", capacity: "1G", format: "qcow2" });
let raw = pool.create_volume(#{ name: "keep.img", capacity: "2G" });
let before = pool.volumes().len();
// A volume name in the disk's pool and a path.
let a = web.clone(#{ name: "a", preserve_data: true, files: ["keep.qcow2", "/default-pool/keep.img"] });
let x = a.xml;
assert(x.contains("<driver name='qemu' type='qcow2'/>\n      <source file='/default-pool/keep.qcow2'/>"), x);
assert(x.contains("<driver name='qemu' type='raw'/>\n      <source file='/default-pool/keep.img'/>"), x);
assert_eq(pool.volumes().len(), before);
// pool/name and volume objects; vdb shared, so one file is enough.
let b = web.clone(#{ name: "b", preserve_data: true, files: ["default-pool/keep.img"], skip_copy: ["vdb"] });
assert_eq(b.disks().map(|d| d.source), ["/default-pool/keep.img", "/default-pool/web-1.qcow2", "/isos/debian.iso"]);
let c = web.clone(#{ name: "c", preserve_data: true, files: [keep, raw] });
assert_eq(c.disks().map(|d| d.source), ["/default-pool/keep.qcow2", "/default-pool/keep.img", "/isos/debian.iso"]);
assert_eq(pool.volumes().len(), before);
// The preserved volumes are not the clone's: rolling the clone back keeps them.
try {
    transaction(|| { web.clone(#{ name: "tx", preserve_data: true, files: [keep, raw] }); throw "later"; });
} catch (e) { }
assert(HOST.find_vm("tx") == ());
assert_eq(pool.volumes().len(), before);
assert_eq(pool.volume("keep.img").capacity, 2 * 1024 * 1024 * 1024);
print("ok");
"#,
    ))
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn sparse_false_asks_libvirt_for_a_fully_allocated_copy() {
    Script::new(&script(
        r#"
let pool = HOST.pool("default-pool");
web.clone(#{ name: "full", sparse: false });
web.clone(#{ name: "thin" });
for n in ["full.qcow2", "full-1.qcow2"] {
    let v = pool.volume(n);
    assert(v.allocation == v.capacity, n);
}
// The default keeps each source's allocation, as virt-clone: a fully
// allocated source (the test driver allocates its volumes so) stays so.
for n in [["thin.qcow2", "web.qcow2"], ["thin-1.qcow2", "web-1.qcow2"]] {
    let v = pool.volume(n[0]);
    let src = pool.volume(n[1]);
    assert((v.allocation >= v.capacity) == (src.allocation >= src.capacity), n[0]);
}
print("ok");
"#,
    ))
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn a_reflink_on_the_test_driver_is_refused_for_what_really_prevents_it() {
    // Raw volumes once got "the filesystem does not support ...", qcow2 ones
    // "is on another host": the test driver has no files at all.
    Script::new(
        r#"
let pool = HOST.pool("default-pool");
for f in ["raw", "qcow2"] {
    let v = pool.create_volume(#{ name: `src.${f}`, capacity: "1M", format: f });
    let made = false;
    try { v.clone(`rl.${f}`, #{ mode: "reflink" }); made = true; } catch (e) {
        assert_eq([e.field, e.value], ["mode", "reflink"]);
        assert(e.message.contains("the test driver keeps its volumes in memory, with no files to share blocks; a reflink needs both files on one filesystem that supports it (btrfs, xfs)"), e.message);
        assert(!e.message.contains("another host"), e.message);
    }
    assert(!made, f);
    assert(pool.find_volume(`rl.${f}`) == (), f);
    // auto falls back to a full copy.
    assert_eq(v.clone(`auto.${f}`).capacity, 1024 * 1024);
}
print("ok");
"#,
    )
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn bad_clone_options_name_field_value_and_line_and_make_nothing() {
    let cases: &[(&str, &str)] = &[
        (
            r#"web.clone(#{ storage: "copy" });"#,
            r#"storage: must be one of: auto, full, linked, reflink (got "copy")"#,
        ),
        (
            r#"web.clone(#{ name: "test" });"#,
            r#"name: a VM with this name already exists (got "test")"#,
        ),
        (
            r#"web.clone(#{ files: ["web.qcow2"] });"#,
            r#"files[0]: a volume with this name already exists in pool default-pool (got "web.qcow2")"#,
        ),
        (
            r#"web.clone(#{ files: ["a.qcow2", true] });"#,
            r#"files[1]: must be a path or a volume name ("name", "pool/name" or a volume), not bool"#,
        ),
        (
            r#"web.clone(#{ files: ["a.qcow2", "b.qcow2", "c.qcow2"] });"#,
            "VM web has 2 writable disk(s) to clone, so files[2]",
        ),
        (
            r#"web.clone(#{ files: ["/nowhere/a.qcow2"] });"#,
            r#"files[0]: no running storage pool has the directory /nowhere"#,
        ),
        (
            r#"web.clone(#{ macs: ["52:54:00:00:00:07"] });"#,
            r#"macs[0]: is already used by a VM of this host (got "52:54:00:00:00:07")"#,
        ),
        (
            r#"web.clone(#{ macs: ["zz"] });"#,
            r#"macs[0]: must look like 52:54:00:12:34:56 (got "zz")"#,
        ),
        (
            r#"web.clone(#{ macs: ["52:54:00:00:01:01", "52:54:00:00:01:02", "52:54:00:00:01:03"] });"#,
            "macs: VM web has 2 network interface(s)",
        ),
        (
            r#"web.clone(#{ start: "yes" });"#,
            r#"start: must be true or false, not string"#,
        ),
        (
            r#"web.clone(#{ skip_copy: ["vbd"] });"#,
            r#"skip_copy[0]: VM web has no disk with this target; did you mean "vdb"? (its disks: vda, vdb, vdc) (got "vbd")"#,
        ),
        (
            r#"web.clone(#{ skip_copy: [1] });"#,
            r#"skip_copy[0]: must be a disk target like "vdb", not i64"#,
        ),
        (
            r#"web.clone(#{ preserve_data: true });"#,
            r#"files: preserve_data: true uses one existing volume per disk it would copy, and VM web has 2 (vda, vdb)"#,
        ),
        (
            r#"web.clone(#{ preserve_data: true, files: ["web-1.qcow2"], skip_copy: ["vda", "vdb"] });"#,
            "VM web has 0 writable disk(s) to clone, so files[0]",
        ),
        (
            r#"web.clone(#{ preserve_data: true, files: ["web.qcow", "x.img"] });"#,
            r#"files[0]: pool default-pool has no volume named web.qcow (did you mean "web.qcow2"?); preserve_data: true uses existing volumes"#,
        ),
        (
            r#"web.clone(#{ preserve_data: true, files: ["/default-pool/none.img", "x.img"] });"#,
            r#"files[0]: there is no volume at this path in any running storage pool"#,
        ),
        (
            r#"web.clone(#{ preserve_data: true, files: ["defualt-pool/a.img", "x.img"] });"#,
            r#"files[0]: there is no storage pool named defualt-pool; did you mean "default-pool/a.img"? (got "defualt-pool/a.img")"#,
        ),
        (
            r#"web.clone(#{ preserve_data: true, files: ["web.qcow2", "web-1.qcow2"] });"#,
            r#"files[0]: is disk vda's own volume: to share it with the clone, use skip_copy: ["vda"] (got "web.qcow2")"#,
        ),
        (
            r#"web.clone(#{ preserve_data: true, files: ["web-1.qcow2", "default-pool/web-1.qcow2"] });"#,
            r#"files[1]: is already used for another disk of the clone (got "default-pool/web-1.qcow2")"#,
        ),
        (
            r#"web.clone(#{ preserve_data: true, storage: "full", files: ["a", "b"] });"#,
            r#"storage: preserve_data: true copies nothing, so there is no storage mode to choose"#,
        ),
        (
            r#"web.clone(#{ files: [HOST.pool("default-pool").volume("web.qcow2")] });"#,
            r#"files[0]: is an existing volume, and a clone copies into a new one: give a new name, or pass preserve_data: true"#,
        ),
        (
            r#"web.clone(#{ sparse: false, storage: "linked" });"#,
            r#"sparse: asks for a fully allocated copy, and storage "linked" makes an overlay"#,
        ),
        (
            r#"web.clone(#{ storage: "reflink" });"#,
            "cloning disk vda: storage: a reflink clone of default-pool/web.qcow2 is not possible: the test driver keeps its volumes in memory",
        ),
        (
            r#"web.clone_many(2, #{ preserve_data: true });"#,
            "preserve_data: is per clone",
        ),
        (r#"web.clone(#{ nmae: "x" });"#, r#"nmae: unknown key"#),
        (
            r#"HOST.vm("test").clone();"#,
            "VM test is running: shut it down first",
        ),
        (
            r#"web.clone_many(0, #{});"#,
            "n: must be between 1 and 1000",
        ),
        (
            r#"web.clone_many(2, #{ name: "x" });"#,
            "give prefix instead",
        ),
    ];
    for (call, message) in cases {
        let text = format!("{WEB}\n{call}\n",);
        let line = text.lines().count();
        let run = Script::new(&format!("{text}print(\"unreachable\");")).run();
        run.code(1)
            .stderr_has(message)
            .stderr_has(&format!("script.rhai:{line}:"));
        // Nothing was made: only web's two volumes, only test and web.
        let check = Script::new(&format!(
            "{WEB}\ntry {{ {call} }} catch (e) {{ }}\nprint(`vols=${{HOST.pool(\"default-pool\").volumes().len()}} vms=${{HOST.vms().len()}}`);"
        ))
        .run();
        check.ok().stdout_has("vols=2 vms=2");
    }
    // A disk outside any pool is refused with what to do.
    Script::new(r#"let t = HOST.vm("test"); t.destroy(); t.clone();"#)
        .run()
        .code(1)
        .stderr_has("disk vda: /guest/diskimage1 is not a volume of any running storage pool")
        .stderr_has("define and start a dir pool for /guest");
}

#[test]
fn a_paused_vm_clones_only_with_allow_running_and_never_its_writable_disks_directly() {
    Script::new(&script(
        r#"
web.start();
web.suspend();
try { web.clone(); throw "cloned"; } catch (e) { assert(e.message.contains("allow_running"), e.message); }
try { web.clone(#{ allow_running: true }); throw "cloned"; } catch (e) {
    assert(e.message.contains("disk vda of paused VM web is writable"), e.message);
    assert(e.message.contains("disk_only: true"), e.message);
}
assert_eq(HOST.vms().len(), 2);
print("ok");
"#,
    ))
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn a_clone_inside_a_failed_transaction_is_removed_completely() {
    Script::new(&script(
        r#"
try {
    transaction(|| { web.clone(#{ name: "tx", start: true }); throw "later step failed"; });
} catch (e) {
    assert(e.rolled_back.len() == 2, `${e.rolled_back}`);
}
assert(HOST.find_vm("tx") == ());
assert_eq(HOST.pool("default-pool").volumes().len(), 2);
print("ok");
"#,
    ))
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn clone_many_plans_unique_names_macs_and_volumes_and_returns_in_order() {
    Script::new(&script(
        r#"
let vms = web.clone_many(6, #{ prefix: "node", storage: "linked", start: true });
assert_eq(vms.map(|v| v.name), ["node-1", "node-2", "node-3", "node-4", "node-5", "node-6"]);
assert(vms.all(|v| v.state == "running"));
let macs = [];
for v in vms { for n in v.interfaces() { assert(!macs.contains(n.mac)); macs.push(n.mac); } }
assert_eq(macs.len(), 12);
assert_eq(HOST.pool("default-pool").volumes().len(), 2 + 12);
let auto = web.clone_many(2, #{});
assert_eq(auto.map(|v| v.name), ["web-clone-1", "web-clone-2"]);
let vols = HOST.pool("default-pool").volumes().len();
let failed = "";
try { web.clone_many(2, #{ prefix: "node" }); } catch (e) { failed = e.message; }
assert(failed.contains("node-1 already exists"), `clone_many over existing names: ${failed}`);
assert_eq(HOST.vms().len(), 1 + 1 + 6 + 2);
assert_eq(HOST.pool("default-pool").volumes().len(), vols);
print("ok");
"#,
    ))
    .arg("--jobs")
    .arg("3")
    .run()
    .ok()
    .stdout_has("ok");
}

#[test]
fn snapshots_form_a_tree_revert_and_delete() {
    Script::new(
        r#"
let vm = HOST.vm("test");
let a = vm.snapshot("a", #{ description: "first" });
let b = vm.snapshot("b");
let c = vm.snapshot("c");
assert_eq(vm.snapshots().map(|s| s.name), ["a", "b", "c"]);
assert_eq(c.parent.name, "b");
assert_eq(a.children.map(|s| s.name), ["b"]);
assert(c.current && !a.current);
assert_eq(vm.current_snapshot().name, "c");
assert_eq(a.description, "first");
assert(a.xml.contains("<description>first</description>"));
a.revert();
assert_eq(vm.current_snapshot().name, "a");
let d = vm.snapshot("d");
assert_eq(d.parent.name, "a");
assert_eq(a.children.map(|s| s.name), ["b", "d"]);
print(vm.snapshots());
b.delete();
assert_eq(c.parent.name, "a");
a.delete(#{ children: true });
assert_eq(vm.snapshots().len(), 0);
assert(vm.current_snapshot() == ());
try { vm.snapshot_named("a"); } catch (e) { print(`${e.field}=${e.value}: ${e.message}`); }
try { vm.snapshot("x", #{ disk_only: "yes" }); } catch (e) { print(e.message); }
try { vm.snapshot("y", #{ memory: false }); } catch (e) { print(e.message); }
"#,
    )
    .run()
    .ok()
    .stdout_has("name=a: name: VM test has no snapshot by this name")
    .stdout_has("disk_only: must be true or false, not string")
    .stdout_has("an internal snapshot of a running VM always saves its memory");
}

#[test]
fn snapshots_print_as_a_table_and_as_json() {
    Script::new(r#"let vm = HOST.vm("test"); vm.snapshot("a"); vm.snapshot("b"); vm.snapshots()"#)
        .arg("--json")
        .run()
        .ok()
        .stdout_has(r#""type": "Snapshot""#)
        .stdout_has(r#""parent": "a""#);
}

#[test]
fn snapshot_xml_keeps_every_conformance_document_intact() {
    let docs = crate::support::conformance_documents("domainsnapshotxml2xmlout");
    assert!(docs.len() >= 8);
    for (file, xml) in &docs {
        let doc = SnapshotXml::parse(xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        let again = Element::parse(&doc.to_xml()).unwrap();
        assert_eq!(
            again.normalized(),
            Element::parse(xml).unwrap().normalized(),
            "{file} changed in a parse/serialise round trip"
        );
        // The typed fields read what the document says.
        let tree = Element::parse(xml).unwrap();
        assert_eq!(doc.name, tree.child("name").map(|n| n.text()), "{file}");
        assert_eq!(
            doc.disks.len(),
            tree.child("disks")
                .map(|d| d.children_named("disk").count())
                .unwrap_or(0)
        );
    }
    let named = |name: &str| {
        let (_, xml) = docs.iter().find(|(file, _)| file == name).unwrap();
        SnapshotXml::parse(xml).unwrap()
    };
    let doc = named("disk_snapshot.xml");
    assert_eq!(doc.description.as_deref(), Some("!@#$%^"));
    assert_eq!(doc.creation_time, Some(1555419243));
    assert_eq!(doc.disks[4].source.as_deref(), Some("/path/to/new"));
    assert_eq!(doc.disks[3].driver.as_deref(), Some("qed"));
    let ext = named("external_vm.xml");
    assert_eq!(ext.parent.as_deref(), Some("earlier_snap"));
    assert_eq!(
        ext.memory.as_ref().map(|m| m.snapshot.as_str()),
        Some("external")
    );
    assert!(ext.domain().is_some());
    // A changed field is written back without disturbing the rest.
    let mut changed = ext.clone();
    changed.description = Some("new".into());
    let x = changed.to_xml();
    assert!(x.contains("<description>new</description>") && x.contains("QEMUGuest1"));
}

// ------------------------------------------------------------ live

fn dominfo_uuid(uri: &str, name: &str) -> String {
    virsh(uri, &["dominfo", name])
        .lines()
        .find_map(|l| l.strip_prefix("UUID:").map(|u| u.trim().to_owned()))
        .expect("dominfo has a UUID")
}

fn macs(uri: &str, name: &str) -> Vec<String> {
    virsh(uri, &["domiflist", name])
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .filter(|m| m.len() == 17)
        .collect()
}

fn disk_sources(uri: &str, name: &str) -> Vec<String> {
    virsh(uri, &["domblklist", name])
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

/// A shut-off source VM `{prefix}-src` with a qcow2 system disk holding data,
/// a second (raw) data disk, an ISO and one NIC on the env's network.
fn source_vm(env: &LiveEnv, with_kernel: Option<&str>) -> String {
    let name = format!("{}-src", env.prefix);
    let iso = format!("{}/install.iso", env.dir);
    std::fs::write(
        &iso,
        virtscript::iso::build("TESTCD", &[("readme.txt", b"cd\n")]),
    )
    .unwrap();
    virsh(&env.uri, &["pool-refresh", &env.pool]);
    let boot = match with_kernel {
        Some(dir) => format!(
            r#"kernel: "{dir}/vmlinuz", initrd: "{dir}/initrd.img", cmdline: "console=ttyS0","#
        ),
        None => "import: true,".into(),
    };
    Script::new(&format!(
        r#"
let vm = HOST.define_vm(#{{ name: "{name}", memory: 256, vcpus: 1, virt_type: "qemu", {boot}
    disks: [#{{ pool: "{pool}", size: "64M", format: "qcow2" }}, #{{ pool: "{pool}", size: "16M", format: "raw" }},
            #{{ path: "{iso}", readonly: true }}],
    networks: [#{{ network: "{net}", model: "e1000" }}] }});
print(vm.uuid);
"#,
        pool = env.pool,
        net = env.net,
    ))
    .connect(&env.uri)
    .run()
    .ok();
    // Data in the system disk, so that a full copy is a real copy.
    let disk = format!("{}/{name}.qcow2", env.dir);
    stdout_of(
        Command::new("qemu-io").args(["-f", "qcow2", "-c", "write -P 0xab 0 1M", &disk]),
        "qemu-io write",
    );
    name
}

#[test]
fn live_the_three_ways_give_new_uuids_macs_and_disks() {
    let uri = live_uri();
    let env = LiveEnv::new(&uri, "ways", 51);
    let src = source_vm(&env, None);
    let src_uuid = dominfo_uuid(&uri, &src);
    let src_macs = macs(&uri, &src);
    let src_disk = format!("{}/{src}.qcow2", env.dir);
    let iso = format!("{}/install.iso", env.dir);
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
    let run = |file: &str, args: &[&str]| {
        let text = std::fs::read_to_string(format!("{scripts}/{file}")).unwrap();
        let mut s = Script::new(&text).named(file).connect(&uri);
        for a in args {
            s = s.script_arg(a);
        }
        s.run().ok().stdout.clone()
    };

    // 1: the volume, then a VM on it (a full copy).
    let one = format!("{}-one", env.prefix);
    run("clone-1-volume-then-import.rhai", &[&src, &one, "full"]);
    // 2: explicit name and file.
    let two = format!("{}-two", env.prefix);
    let two_file = format!("{}/{two}-root.qcow2", env.dir);
    run("clone-2-explicit.rhai", &[&src, &two, &two_file]);
    // 3: automatic, linked.
    run("clone-3-auto.rhai", &[&src, "linked"]);
    let three = format!("{src}-clone");

    for vm in [&one, &two, &three] {
        let uuid = dominfo_uuid(&uri, vm);
        assert_ne!(uuid, src_uuid, "{vm}");
        let m = macs(&uri, vm);
        assert_eq!(m.len(), 1, "{vm}: {m:?}");
        assert!(
            m[0].starts_with("52:54:00:") && !src_macs.contains(&m[0]),
            "{vm}: {m:?}"
        );
        let disks = disk_sources(&uri, vm);
        assert!(
            !disks.contains(&src_disk),
            "{vm} uses the source disk: {disks:?}"
        );
    }
    // Full copies are independent files with the data; linked ones are overlays.
    let one_disk = format!("{}/{one}.qcow2", env.dir);
    let info = qemu_img_info(&one_disk);
    assert!(!info.contains("backing file"), "{info}");
    let info = qemu_img_info(&two_file);
    assert!(!info.contains("backing file"), "{info}");
    assert!(disk_sources(&uri, &two).contains(&two_file));
    let three_disks = disk_sources(&uri, &three);
    let info = qemu_img_info(&three_disks[0]);
    assert!(
        info.contains(&format!("backing file: {src_disk}")),
        "{info}"
    );
    assert!(info.contains("file format: qcow2"), "{info}");
    // The raw data disk became a qcow2 overlay of it as well.
    let info = qemu_img_info(&three_disks[1]);
    assert!(info.contains("backing file format: raw"), "{info}");
    // The ISO is shared, not copied, by the VM clones.
    for vm in [&two, &three] {
        assert!(disk_sources(&uri, vm).contains(&iso), "{vm}");
    }
    let isos = std::fs::read_dir(&env.dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".iso")
        })
        .count();
    assert_eq!(isos, 1);
}

#[test]
fn live_a_clone_failing_on_its_second_disk_leaves_nothing() {
    let uri = live_uri();
    let env = LiveEnv::new(&uri, "fail", 52);
    let src = source_vm(&env, None);
    let before: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&env.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // A file libvirt does not list yet takes the second disk's name: the
    // checks pass, the first disk is cloned, the second fails in libvirt.
    let taken = format!("{}/{}-bad-data.img", env.dir, env.prefix);
    std::fs::write(&taken, b"not mine").unwrap();
    let bad = format!("{}-bad", env.prefix);
    let run = Script::new(&format!(
        r#"HOST.vm("{src}").clone(#{{ name: "{bad}", storage: "full", files: ["{bad}-root.qcow2", "{bad}-data.img"] }});"#
    ))
    .connect(&uri)
    .run();
    run.code(1).stderr_has("cloning disk vdb");
    assert!(
        !virsh_try(&uri, &["dominfo", &bad]).0,
        "the domain was left"
    );
    let mut after: Vec<String> = std::fs::read_dir(&env.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    after.sort();
    let mut expected = before.clone();
    expected.push(format!("{}-bad-data.img", env.prefix));
    expected.sort();
    assert_eq!(after, expected, "a cloned volume was left behind");
    assert_eq!(std::fs::read(&taken).unwrap(), b"not mine");
    virsh(&uri, &["pool-refresh", &env.pool]);
    let vols = virsh(&uri, &["vol-list", &env.pool]);
    assert!(!vols.contains(&format!("{bad}-root.qcow2")), "{vols}");
}

#[test]
fn live_ten_linked_clones_boot_and_each_gets_its_own_lease() {
    let uri = live_uri();
    let kernel = tiny_guest();
    let env = LiveEnv::new(&uri, "many", 53);
    let src = source_vm(&env, Some(&kernel));
    let prefix = format!("{}-n", env.prefix);
    let run = Script::new(&format!(
        r#"
let vms = HOST.vm("{src}").clone_many(10, #{{ prefix: "{prefix}", storage: "linked", start: true }});
let ips = parallel(vms, |vm| vm.wait_ip(#{{ timeout: 600, source: "lease" }}).ip);
for i in 0..vms.len() {{ print(`${{vms[i].name}} ${{ips[i]}}`); }}
"#
    ))
    .connect(&uri)
    .arg("--jobs")
    .arg("10")
    .run();
    run.ok();
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect();
    assert_eq!(lines.len(), 10, "{}", run.stdout);
    let mut ips: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("{prefix}-{} ", i + 1)), "order: {l}");
    }
    ips.sort();
    ips.dedup();
    assert_eq!(
        ips.len(),
        10,
        "leases are not all different: {}",
        run.stdout
    );
    let leases = virsh(&uri, &["net-dhcp-leases", &env.net]);
    for ip in ips {
        assert!(leases.contains(ip), "{ip} not leased:\n{leases}");
    }
    for i in 1..=10 {
        let vm = format!("{prefix}-{i}");
        assert!(virsh(&uri, &["domstate", &vm]).contains("running"));
        let disk = disk_sources(&uri, &vm)[0].clone();
        assert!(qemu_img_info(&disk).contains("backing file"), "{vm}");
    }
}

#[test]
fn live_snapshot_change_revert_and_the_change_is_gone() {
    let uri = live_uri();
    let env = LiveEnv::new(&uri, "snap", 54);
    let src = source_vm(&env, None);
    let disk = format!("{}/{src}.qcow2", env.dir);
    // The raw data disk cannot hold an internal snapshot: the error says so.
    Script::new(&format!(r#"HOST.vm("{src}").snapshot("s0");"#))
        .connect(&uri)
        .run()
        .code(1)
        .stderr_has("disk vdb of VM")
        .stderr_has("disk_only: true");
    Script::new(&format!(
        r#"let vm = HOST.vm("{src}"); vm.detach_disk("vdb", #{{ config: true }});
let s = vm.snapshot("clean", #{{ description: "before" }});
assert_eq(s.state, "shutoff");
assert(vm.current_snapshot().name == "clean");"#
    ))
    .connect(&uri)
    .run()
    .ok();
    assert!(virsh(&uri, &["snapshot-list", &src]).contains("clean"));
    // Whether the first MiB holds `pattern`. A read that did not happen (the
    // image would not open, qemu-io failed) fails the test: its empty output
    // holds no "Pattern verification failed" either.
    let holds = |pattern: &str| -> bool {
        let out = Command::new("qemu-io")
            .args([
                "-f",
                "qcow2",
                "-c",
                &format!("read -P {pattern} 0 1M"),
                &disk,
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stdout.contains("read 1048576/1048576 bytes at offset 0") && stderr.trim().is_empty(),
            "qemu-io read of {disk} did not happen ({}):\n{stdout}{stderr}",
            out.status
        );
        let mismatch = stdout.contains("Pattern verification failed");
        assert_eq!(out.status.success(), !mismatch, "qemu-io: {stdout}");
        !mismatch
    };
    // Change the disk while the VM is off.
    stdout_of(
        Command::new("qemu-io").args(["-f", "qcow2", "-c", "write -P 0xcd 0 1M", &disk]),
        "qemu-io write",
    );
    assert!(holds("0xcd"), "the write did not reach the disk");
    assert!(!holds("0xab"));
    Script::new(&format!(
        r#"let vm = HOST.vm("{src}"); vm.snapshot_named("clean").revert();
vm.snapshot_named("clean").delete();
assert_eq(vm.snapshots().len(), 0);"#
    ))
    .connect(&uri)
    .run()
    .ok();
    assert!(holds("0xab"), "the change survived the revert");
    assert!(!holds("0xcd"));
}

#[test]
fn live_uefi_clone_copies_nvram_and_internal_snapshots_are_refused_with_advice() {
    let uri = live_uri();
    let env = LiveEnv::new(&uri, "uefi", 55);
    let name = format!("{}-src", env.prefix);
    let clone = format!("{}-copy", env.prefix);
    let run = Script::new(&format!(
        r#"
let vm = HOST.define_vm(#{{ name: "{name}", memory: 128, virt_type: "qemu", uefi: true, import: true,
    disks: [#{{ pool: "{pool}", size: "16M", format: "qcow2" }}], networks: ["{net}"], graphics: "none" }});
vm.start();
vm.destroy();
let x = vm.inactive_xml;
print(x);
try {{ vm.snapshot("s"); }} catch (e) {{ print(`refused: ${{e.message}}`); }}
let c = vm.clone(#{{ name: "{clone}", storage: "linked" }});
print(`clone xml: ${{c.inactive_xml}}`);
"#,
        pool = env.pool,
        net = env.net,
    ))
    .connect(&uri)
    .run();
    run.ok()
        .stdout_has("refused: disk_only: VM")
        .stdout_has("UEFI");
    let xml = virsh(&uri, &["dumpxml", "--inactive", &clone]);
    let nvram = xml
        .split("<nvram")
        .nth(1)
        .and_then(|s| s.split('>').nth(1))
        .and_then(|s| s.split('<').next())
        .unwrap_or_default()
        .to_owned();
    let src_xml = virsh(&uri, &["dumpxml", "--inactive", &name]);
    if src_xml.contains("<nvram") {
        assert!(
            nvram.contains(&clone),
            "the clone's NVRAM is not its own: {xml}"
        );
        assert!(
            std::path::Path::new(&nvram).exists(),
            "{nvram} was not copied"
        );
        assert!(!src_xml.contains(&nvram));
    } else {
        // firmware='efi': libvirt names the file after the VM at start.
        let src_vars = format!("/var/lib/libvirt/qemu/nvram/{name}_VARS.fd");
        let vars = format!("/var/lib/libvirt/qemu/nvram/{clone}_VARS.fd");
        assert!(std::path::Path::new(&src_vars).exists());
        assert_eq!(
            std::fs::read(&vars).expect("the clone's NVRAM was copied"),
            std::fs::read(&src_vars).unwrap()
        );
    }
    // A clone that fails AFTER its NVRAM was copied leaves no copy behind:
    // with the VM's network stopped, the clone is made and defined, then
    // cannot start.
    virsh(&uri, &["net-destroy", &env.net]);
    let run = Script::new(&format!(
        r#"let failed = "";
try {{
    HOST.vm("{name}").clone(#{{ name: "{clone}2", start: true }});
}} catch (e) {{ failed = e.message; }}
print(`failed: ${{failed}}`);"#
    ))
    .connect(&uri)
    .run();
    virsh(&uri, &["net-start", &env.net]);
    run.ok().stdout_has("failed: ").stdout_has("not active");
    assert!(
        !std::path::Path::new(&format!("/var/lib/libvirt/qemu/nvram/{clone}2_VARS.fd")).exists(),
        "the failed clone's NVRAM copy was left"
    );
    assert!(!virsh_try(&uri, &["dominfo", &format!("{clone}2")]).0);
    let vols = virsh(&uri, &["vol-list", &env.pool]);
    assert!(!vols.contains(&format!("{clone}2")), "{vols}");
    let _ = virsh_try(&uri, &["undefine", &clone, "--nvram"]);
    let _ = virsh_try(&uri, &["undefine", &name, "--nvram"]);
}

/// `(capacity, allocation)` in bytes, as `virsh vol-info --bytes` reports them.
fn vol_info(uri: &str, pool: &str, vol: &str) -> (u64, u64) {
    let out = virsh(uri, &["vol-info", "--bytes", vol, "--pool", pool]);
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    (field("Capacity:"), field("Allocation:"))
}

#[test]
fn live_sparse_false_allocates_the_whole_copy_and_skip_copy_shares_the_disk() {
    let uri = live_uri();
    let pool = LivePool::new(&uri, "nonsparse");
    let src = unique("nsrc");
    let full = format!("{src}-full");
    let thin = format!("{src}-thin");
    let _guards = [&src, &full, &thin].map(|n| VmGuard(vec![uri.clone()], n.to_string()));
    Script::new(&format!(
        r#"
HOST.define_vm(#{{ name: "{src}", memory: 256, vcpus: 1, virt_type: "qemu", import: true,
    disks: [#{{ pool: "{p}", size: "64M", format: "raw" }}, #{{ pool: "{p}", size: "64M", format: "qcow2" }},
            #{{ pool: "{p}", size: "16M", format: "raw" }}] }});
"#,
        p = pool.name
    ))
    .connect(&uri)
    .run()
    .ok();
    // Data at the start of both copied disks; the rest is zeros.
    let raw = format!("{}/{src}.img", pool.dir);
    let qcow = format!("{}/{src}.qcow2", pool.dir);
    let shared = format!("{}/{src}-1.img", pool.dir);
    for (fmt, path) in [("raw", &raw), ("qcow2", &qcow)] {
        stdout_of(
            Command::new("qemu-io").args(["-f", fmt, "-c", "write -P 0xab 0 1M", path]),
            "qemu-io write",
        );
    }
    virsh(&uri, &["pool-refresh", &pool.name]);
    Script::new(&format!(
        r#"
let vm = HOST.vm("{src}");
let a = vm.clone(#{{ name: "{full}", sparse: false, skip_copy: ["vdc"] }});
vm.clone(#{{ name: "{thin}" }});
a.start();
print(`state=${{a.state}}`);
a.destroy();
"#
    ))
    .connect(&uri)
    .run()
    .ok()
    .stdout_has("state=running");
    let mib64 = 64 * 1024 * 1024;
    // sparse: false: the raw copy is allocated to its capacity, the qcow2 one
    // to at least its capacity (qemu-img preallocation=falloc, plus metadata).
    let (cap, alloc) = vol_info(&uri, &pool.name, &format!("{full}.img"));
    assert_eq!((cap, alloc), (mib64, mib64), "raw, sparse: false");
    let (cap, alloc) = vol_info(&uri, &pool.name, &format!("{full}.qcow2"));
    assert!(
        cap == mib64 && alloc >= cap,
        "qcow2, sparse: false: {alloc} < {cap}"
    );
    assert!(
        qemu_img_info(&format!("{}/{full}.qcow2", pool.dir)).contains("file format: qcow2"),
        "still qcow2"
    );
    // The default copies only what holds data, but keeps a fully allocated
    // source (create_vm's raw disk) fully allocated, as virt-clone does.
    let (cap, alloc) = vol_info(&uri, &pool.name, &format!("{thin}.qcow2"));
    assert!(
        cap == mib64 && alloc < cap / 2,
        "{thin}.qcow2: {alloc} of {cap}"
    );
    let (scap, salloc) = vol_info(&uri, &pool.name, &format!("{src}.img"));
    let (cap, alloc) = vol_info(&uri, &pool.name, &format!("{thin}.img"));
    assert_eq!(alloc >= cap, salloc >= scap, "{thin}.img: {alloc} of {cap}");
    // Both copies carry the data.
    for (fmt, path) in [
        ("raw", format!("{}/{full}.img", pool.dir)),
        ("qcow2", format!("{}/{full}.qcow2", pool.dir)),
        ("raw", format!("{}/{thin}.img", pool.dir)),
    ] {
        let out = stdout_of(
            Command::new("qemu-io").args(["-r", "-f", fmt, "-c", "read -P 0xab 0 1M", &path]),
            "qemu-io read",
        );
        assert!(out.contains("read 1048576/1048576"), "{path}: {out}");
    }
    // skip_copy: vdc is the source's own file, and no copy of it was made.
    let disks = disk_sources(&uri, &full);
    assert_eq!(disks.len(), 3, "{disks:?}");
    assert_eq!(disks[2], shared, "{disks:?}");
    assert!(!disks.contains(&raw) && !disks.contains(&qcow), "{disks:?}");
    let mut vols = vol_names(&uri, &pool.name);
    vols.sort();
    let mut expected = vec![
        format!("{src}.img"),
        format!("{src}.qcow2"),
        format!("{src}-1.img"),
        format!("{full}.img"),
        format!("{full}.qcow2"),
        format!("{thin}.img"),
        format!("{thin}.qcow2"),
        format!("{thin}-1.img"),
    ];
    expected.sort();
    assert_eq!(vols, expected);
}

/// The identity of a process of this machine that has ended, as the clone
/// intent log records its owner: `host boot pid started`.
fn dead_owner() -> (String, String, u32) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap().trim().to_owned();
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    (
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id"),
        pid,
    )
}

#[test]
fn a_clone_batch_whose_run_died_is_undone_by_the_next_clone_and_others_are_left() {
    let (host, boot, pid) = dead_owner();
    let uuid = "6b1f2f7e-0d5e-4c57-9d43-2f4bb0d6e001";
    // What a run killed midway leaves: the batch record on the source, c-1
    // complete but for the record, c-2's first disk half-copied, and a record
    // of a run on another machine (which may still be going).
    let body = format!(
        r#"
let state = "https://virtscript.dev/xmlns/state/1";
let p = HOST.pool("default-pool");
HOST.define_vm(#{{ name: "c-1", memory: 256, virt_type: "qemu", import: true, uuid: "{uuid}",
    disks: [#{{ path: "/default-pool/web.qcow2", allow_path: true }}] }});
p.create_volume(#{{ name: "c-1.qcow2", capacity: "1G", format: "qcow2" }});
p.create_volume(#{{ name: "c-2.qcow2", capacity: "1G", format: "qcow2" }});
p.create_volume(#{{ name: "c-2.qcow2.virtscript-partial", capacity: "1K", format: "raw" }});
let other = HOST.define_vm(#{{ name: "other", memory: 256, virt_type: "qemu", import: true, uuid: "{uuid2}",
    disks: [#{{ path: "/default-pool/web.qcow2", allow_path: true }}] }});
web.set_metadata(state, `<clones>
  <batch id="b1" host="{host}" boot="{boot}" pid="{pid}" started="1">
    <vm name="c-1" uuid="{uuid}"/><volume pool="default-pool" name="c-1.qcow2"/>
    <vm name="c-2" uuid="6b1f2f7e-0d5e-4c57-9d43-2f4bb0d6e002"/><volume pool="default-pool" name="c-2.qcow2"/>
    <vm name="other" uuid="6b1f2f7e-0d5e-4c57-9d43-2f4bb0d6e0ff"/>
  </batch>
  <batch id="b2" host="elsewhere.example" boot="x" pid="7" started="1"><vm name="far-1" uuid="6b1f2f7e-0d5e-4c57-9d43-2f4bb0d6e003"/></batch>
</clones>`);
let vms = web.clone_many(2, #{{ prefix: "c" }});
assert_eq(vms.map(|v| v.name), ["c-1", "c-2"]);
assert(vms[0].uuid != "{uuid}", "c-1 is a new clone");
let names = p.volumes().map(|v| v.name);
names.sort();
// The clones took the names the dead run had taken: nothing of it is left.
assert_eq(names, ["c-1-1.qcow2", "c-1.qcow2", "c-2-1.qcow2", "c-2.qcow2", "web-1.qcow2", "web.qcow2"]);
assert(HOST.find_vm("other") != (), "a VM of a listed name but another UUID stays");
let left = web.metadata(state);
assert(left.contains("elsewhere.example") && !left.contains("id='b1'"), left);
// A clone that completes leaves no record of its own.
web.clone(#{{ name: "solo" }});
assert_eq(web.metadata(state), left);
print("ok");
"#,
        uuid2 = "6b1f2f7e-0d5e-4c57-9d43-2f4bb0d6e004",
    );
    let run = Script::new(&script(&body)).run();
    run.ok()
        .stderr_has(&format!(
            "finished the undo of an interrupted clone of web (by pid {pid} on host {host}): removed VM c-1, volume default-pool/c-1.qcow2, volume default-pool/c-2.qcow2"
        ))
        .stderr_has("a clone of web by pid 7 on host elsewhere.example is running or was interrupted")
        .stdout_has("ok");
}

// ------------------------------------------------- parity with virt-clone 4.1

/// `virt-clone --connect URI ARGS...`: (success, stdout + stderr).
fn virt_clone(uri: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("virt-clone")
        .args(["--connect", uri])
        .args(args)
        .output()
        .expect("virt-clone runs (Debian's virtinst)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn inactive_xml(uri: &str, name: &str) -> String {
    virsh(uri, &["dumpxml", "--inactive", name])
}

/// The values of `attr='...'` on lines holding `element`, in order.
fn attr_values(xml: &str, element: &str, attr: &str) -> Vec<String> {
    xml.lines()
        .filter(|l| l.trim_start().starts_with(&format!("<{element} ")))
        .filter_map(|l| {
            l.split(&format!("{attr}='"))
                .nth(1)
                .and_then(|v| v.split('\'').next())
                .map(str::to_owned)
        })
        .collect()
}

/// A clone's inactive XML with what must differ between two clones made
/// apart replaced by placeholders: its name (also inside file names), its
/// UUID and its MACs (checked separately: 52:54:00, not the source's).
fn normalised(xml: &str, clone: &str) -> String {
    xml.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("<uuid>") {
                "  <uuid>UUID</uuid>".to_owned()
            } else if t.starts_with("<mac address=") {
                "      <mac address='MAC'/>".to_owned()
            } else {
                l.replace(clone, "CLONE")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Element by element (libvirt writes one per line): `diff` names every
/// element that one clone has and the other has not, or has otherwise.
fn assert_same_xml(ours: &str, theirs: &str, what: &str) {
    let dir = std::env::temp_dir();
    let tag = unique("xmldiff");
    let (a, b) = (
        dir.join(format!("{tag}-virtscript.xml")),
        dir.join(format!("{tag}-virt-clone.xml")),
    );
    std::fs::write(&a, format!("{ours}\n")).unwrap();
    std::fs::write(&b, format!("{theirs}\n")).unwrap();
    let out = Command::new("diff")
        .arg("-U1")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("diff runs");
    let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
    assert!(
        out.status.success(),
        "{what}: the clones differ (- virtscript, + virt-clone):\n{}\n--- virtscript:\n{ours}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `(format, capacity, allocation, backing)` of a volume: what a clone's copy
/// is on disk.
fn volume_facts(uri: &str, pool: &str, vol: &str, path: &str) -> (String, u64, u64, bool) {
    let (cap, alloc) = vol_info(uri, pool, vol);
    let info = qemu_img_info(path);
    let format = info
        .lines()
        .find_map(|l| l.strip_prefix("file format: "))
        .unwrap_or_default()
        .to_owned();
    (format, cap, alloc, info.contains("backing file:"))
}

fn holds(format: &str, path: &str, pattern: &str) -> bool {
    stdout_of(
        Command::new("qemu-io").args([
            "-r",
            "-f",
            format,
            "-c",
            &format!("read -P {pattern} 0 1M"),
            path,
        ]),
        "qemu-io read",
    )
    .contains("read 1048576/1048576")
}

#[test]
fn live_clone_gives_what_virt_clone_gives() {
    let uri = live_uri();
    let env = LiveEnv::new(&uri, "vcpar", 46);
    let src = format!("{}-src", env.prefix);
    let dir = env.dir.clone();
    let iso = format!("{dir}/install.iso");
    let serial_log = format!("/var/log/libvirt/qemu/{src}-serial0.log");
    let agent = format!("/var/lib/libvirt/qemu/{src}.org.qemu.guest_agent.0");
    let _cleanup = Cleanup(vec![
        serial_log.clone(),
        agent.clone(),
        format!("/var/log/libvirt/qemu/{src}.log"),
    ]);
    std::fs::write(
        &iso,
        virtscript::iso::build("TESTCD", &[("readme.txt", b"cd\n")]),
    )
    .unwrap();
    virsh(&uri, &["pool-refresh", &env.pool]);
    Script::new(&format!(
        r#"
HOST.define_vm(#{{ name: "{src}", memory: 256, vcpus: 1, virt_type: "qemu", import: true, uefi: true,
    disks: [#{{ pool: "{pool}", size: "32M", format: "qcow2" }}, #{{ pool: "{pool}", size: "16M", format: "raw" }},
            #{{ path: "{iso}", device: "cdrom" }}],
    networks: [#{{ network: "{net}", mac: "52:54:00:3c:00:01" }}, #{{ network: "{net}", model: "e1000", mac: "52:54:00:3c:00:02" }}],
    graphics: #{{ type: "vnc", port: 5977 }} }});
"#,
        pool = env.pool,
        net = env.net,
    ))
    .connect(&uri)
    .run()
    .ok();
    // What create_vm does not make: a title, SMBIOS data, a serial log file
    // and a guest-agent socket of its own.
    let xml = inactive_xml(&uri, &src)
        .replacen(
            &format!("<name>{src}</name>"),
            &format!("<name>{src}</name>\n  <title>The source</title>\n  <description>kept</description>"),
            1,
        )
        .replacen(
            "</vcpu>",
            "</vcpu>\n  <sysinfo type='smbios'><system><entry name='manufacturer'>ACME</entry></system></sysinfo>",
            1,
        )
        .replacen("<serial type='pty'>", &format!("<serial type='pty'><log file='{serial_log}'/>"), 1)
        .replacen(
            "<channel type='unix'>",
            &format!("<channel type='unix'><source mode='bind' path='{agent}'/>"),
            1,
        );
    assert!(
        xml.contains("org.qemu.guest_agent.0") && xml.contains("<log file="),
        "{xml}"
    );
    let file = std::env::temp_dir().join(format!("{src}.xml"));
    std::fs::write(&file, &xml).unwrap();
    virsh(&uri, &["define", file.to_str().unwrap()]);
    // Once started, it has its UEFI variables file; and data on both disks.
    virsh(&uri, &["start", &src]);
    virsh(&uri, &["destroy", &src]);
    let (qcow, raw) = (format!("{dir}/{src}.qcow2"), format!("{dir}/{src}.img"));
    for (fmt, path) in [("qcow2", &qcow), ("raw", &raw)] {
        stdout_of(
            Command::new("qemu-io").args(["-f", fmt, "-c", "write -P 0xab 0 1M", path]),
            "qemu-io write",
        );
    }
    virsh(&uri, &["pool-refresh", &env.pool]);
    let src_xml = inactive_xml(&uri, &src);
    for needle in [
        "<title>",
        "ACME",
        &serial_log,
        &agent,
        "port='5977'",
        "52:54:00:3c:00:02",
    ] {
        assert!(src_xml.contains(needle), "{needle} in {src_xml}");
    }
    let src_files = (std::fs::read(&qcow).unwrap(), std::fs::read(&raw).unwrap());
    let nvram_dir = "/var/lib/libvirt/qemu/nvram";
    let src_vars = std::fs::read(format!("{nvram_dir}/{src}_VARS.fd")).ok();

    // --auto-clone, then ours with no options: the names count on alike.
    let a = format!("{src}-clone");
    let b = format!("{src}-clone1");
    let (ok, out) = virt_clone(&uri, &["--original", &src, "--auto-clone"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("Clone '{a}' created successfully")),
        "{out}"
    );
    Script::new(&format!(
        r#"let c = HOST.vm("{src}").clone(); print(`made ${{c.name}}`);"#
    ))
    .connect(&uri)
    .run()
    .ok()
    .stdout_has(&format!("made {b}"));
    let (ok, out) = virt_clone(&uri, &["--original", &src, "--auto-clone", "--print-xml"]);
    assert!(
        ok && out.contains(&format!("<name>{src}-clone2</name>")),
        "virt-clone's next name: {out}"
    );
    // A clone of a clone numbers on, in both.
    let (ok, out) = virt_clone(&uri, &["--original", &a, "--auto-clone", "--print-xml"]);
    assert!(
        ok && out.contains(&format!("<name>{src}-clone2</name>")),
        "{out}"
    );
    Script::new(&format!(
        r#"let c = HOST.vm("{a}").clone(#{{ skip_copy: ["vda", "vdb"] }}); print(`made ${{c.name}}`);"#
    ))
    .connect(&uri)
    .run()
    .ok()
    .stdout_has(&format!("made {src}-clone2"));

    let (xa, xb) = (inactive_xml(&uri, &a), inactive_xml(&uri, &b));
    // MACs: new, QEMU's prefix, unique.
    let (ma, mb) = (
        attr_values(&xa, "mac", "address"),
        attr_values(&xb, "mac", "address"),
    );
    let src_macs = attr_values(&src_xml, "mac", "address");
    assert_eq!((ma.len(), mb.len()), (2, 2), "{xa}\n{xb}");
    for m in ma.iter().chain(&mb) {
        assert!(m.starts_with("52:54:00:") && !src_macs.contains(m), "{m}");
    }
    assert!(ma.iter().all(|m| !mb.contains(m)));
    // Known differences, asserted, then set aside:
    // ours renames the serial/console log file after the clone (virt-clone
    // keeps the source's, so both VMs would write one log);
    let ours_log = format!("/var/log/libvirt/qemu/{b}-serial0.log");
    assert_eq!(
        attr_values(&xb, "log", "file"),
        vec![ours_log.clone(); 2],
        "{xb}"
    );
    assert_eq!(
        attr_values(&xa, "log", "file"),
        vec![serial_log.clone(); 2],
        "{xa}"
    );
    let xb = xb.replace(&ours_log, &serial_log);
    // (No <metadata/> left by the record a clone keeps on its source while
    // it runs: the clone of the clone above left none on it.)
    assert!(
        !xa.contains("<metadata") && !xb.contains("<metadata"),
        "{xa}"
    );
    let (na, nb) = (normalised(&xa, &a), normalised(&xb, &b));
    assert_same_xml(&nb, &na, "--auto-clone");
    // What both did, spelled out.
    for gone in ["<title>", &agent, "port='5977'", &qcow, &raw] {
        assert!(!nb.contains(gone), "{gone} is still in {nb}");
    }
    for kept in [
        "<description>kept</description>",
        "ACME",
        "port='-1' autoport='yes'",
        &iso,
        "/CLONE.qcow2'",
        "/CLONE.img'",
    ] {
        assert!(nb.contains(kept), "{kept} is not in {nb}");
    }

    // On disk: full, independent copies of the same format, size and
    // sparseness, holding the data.
    for (ext, fmt) in [("qcow2", "qcow2"), ("img", "raw")] {
        let (va, vb) = (format!("{a}.{ext}"), format!("{b}.{ext}"));
        let fa = volume_facts(&uri, &env.pool, &va, &format!("{dir}/{va}"));
        let fb = volume_facts(&uri, &env.pool, &vb, &format!("{dir}/{vb}"));
        assert_eq!(
            (&fb.0, fb.1, fb.3),
            (&fa.0, fa.1, fa.3),
            "{ext}: {fb:?} vs {fa:?}"
        );
        assert_eq!((fb.0.as_str(), fb.3), (fmt, false), "{vb}: {fb:?}");
        // The copies keep the source's allocation: create_vm's raw disk is
        // fully allocated, its qcow2 holds only data.
        let (_, scap, salloc) = {
            let (c, a) = vol_info(&uri, &env.pool, &format!("{src}.{ext}"));
            ((), c, a)
        };
        assert_eq!(
            fb.2 >= fb.1,
            fa.2 >= fa.1,
            "allocation: ours {fb:?}, virt-clone's {fa:?}"
        );
        assert_eq!(
            fb.2 >= fb.1,
            salloc >= scap,
            "{vb}: {fb:?}, source {salloc} of {scap}"
        );
        assert!(
            holds(fmt, &format!("{dir}/{va}"), "0xab")
                && holds(fmt, &format!("{dir}/{vb}"), "0xab")
        );
    }
    // Known difference: virt-clone makes its qcow2 as virt-install makes new
    // ones (lazy refcounts); ours keeps the source image's features.
    let lazy = |p: &str| qemu_img_info(p).contains("lazy refcounts: true");
    assert!(
        lazy(&format!("{dir}/{a}.qcow2")) && !lazy(&format!("{dir}/{b}.qcow2")) && !lazy(&qcow)
    );
    // Known difference: ours copies the UEFI variables (firmware='efi'
    // names no <nvram>, and virt-clone copies nothing: its clone starts from
    // the firmware's template at first start).
    if let Some(vars) = &src_vars {
        assert_eq!(
            std::fs::read(format!("{nvram_dir}/{b}_VARS.fd"))
                .ok()
                .as_ref(),
            Some(vars)
        );
        assert!(!std::path::Path::new(&format!("{nvram_dir}/{a}_VARS.fd")).exists());
    }

    // --file paths with --nonsparse, against files + sparse: false.
    let (fa, fb) = (format!("{}-fa", env.prefix), format!("{}-fb", env.prefix));
    let (ok, out) = virt_clone(
        &uri,
        &[
            "--original",
            &src,
            "--name",
            &fa,
            "--nonsparse",
            "--file",
            &format!("{dir}/{fa}-root.qcow2"),
            "--file",
            &format!("{dir}/{fa}-data.img"),
        ],
    );
    assert!(ok, "{out}");
    Script::new(&format!(
        r#"HOST.vm("{src}").clone(#{{ name: "{fb}", sparse: false, files: ["{dir}/{fb}-root.qcow2", "{fb}-data.img"] }});"#
    ))
    .connect(&uri)
    .run()
    .ok();
    let xa = inactive_xml(&uri, &fa).replace(&serial_log, "LOG");
    let xb =
        inactive_xml(&uri, &fb).replace(&format!("/var/log/libvirt/qemu/{fb}-serial0.log"), "LOG");
    assert_same_xml(
        &normalised(&xb, &fb),
        &normalised(&xa, &fa),
        "--file --nonsparse",
    );
    for (suffix, fmt) in [("root.qcow2", "qcow2"), ("data.img", "raw")] {
        let (va, vb) = (format!("{fa}-{suffix}"), format!("{fb}-{suffix}"));
        let fa = volume_facts(&uri, &env.pool, &va, &format!("{dir}/{va}"));
        let fb = volume_facts(&uri, &env.pool, &vb, &format!("{dir}/{vb}"));
        assert_eq!((&fb.0, fb.1, fb.3), (&fa.0, fa.1, fa.3), "{suffix}");
        assert_eq!(fb.0, fmt);
        assert!(
            fa.2 >= fa.1 && fb.2 >= fb.1,
            "fully allocated: {fa:?} {fb:?}"
        );
    }

    // --skip-copy with --preserve-data, against skip_copy + preserve_data.
    let (pa, pb) = (format!("{}-pa", env.prefix), format!("{}-pb", env.prefix));
    for p in [&pa, &pb] {
        virsh(
            &uri,
            &[
                "vol-create-as",
                &env.pool,
                &format!("{p}-kept.qcow2"),
                "32M",
                "--format",
                "qcow2",
            ],
        );
    }
    let before = vol_names(&uri, &env.pool).len();
    let (ok, out) = virt_clone(
        &uri,
        &[
            "--original",
            &src,
            "--name",
            &pa,
            "--skip-copy",
            "vdb",
            "--preserve-data",
            "--file",
            &format!("{dir}/{pa}-kept.qcow2"),
        ],
    );
    assert!(ok, "{out}");
    Script::new(&format!(
        r#"HOST.vm("{src}").clone(#{{ name: "{pb}", skip_copy: ["vdb"], preserve_data: true, files: ["{pb}-kept.qcow2"] }});"#
    ))
    .connect(&uri)
    .run()
    .ok();
    assert_eq!(
        vol_names(&uri, &env.pool).len(),
        before,
        "nothing was copied"
    );
    let xa = inactive_xml(&uri, &pa).replace(&serial_log, "LOG");
    let xb =
        inactive_xml(&uri, &pb).replace(&format!("/var/log/libvirt/qemu/{pb}-serial0.log"), "LOG");
    let (na, nb) = (normalised(&xa, &pa), normalised(&xb, &pb));
    assert_same_xml(&nb, &na, "--skip-copy --preserve-data");
    assert!(
        nb.contains("/CLONE-kept.qcow2'") && nb.contains(&raw),
        "{nb}"
    );

    // Four clones later the source is as it was: definition (no trace of the
    // clones' records either), disks, UEFI variables.
    assert_eq!(inactive_xml(&uri, &src), src_xml);
    assert!(
        src_files == (std::fs::read(&qcow).unwrap(), std::fs::read(&raw).unwrap()),
        "the source's disks changed"
    );
    assert_eq!(
        std::fs::read(format!("{nvram_dir}/{src}_VARS.fd")).ok(),
        src_vars
    );

    // SMBIOS uuid: virt-clone keeps the old one and libvirt refuses its
    // clone; ours gives it the new UUID.
    let with_uuid = src_xml.replacen(
        "<entry name='manufacturer'>ACME</entry>",
        &format!(
            "<entry name='manufacturer'>ACME</entry><entry name='uuid'>{}</entry>",
            dominfo_uuid(&uri, &src)
        ),
        1,
    );
    std::fs::write(&file, &with_uuid).unwrap();
    virsh(&uri, &["define", file.to_str().unwrap()]);
    let (sa, sb) = (format!("{}-sa", env.prefix), format!("{}-sb", env.prefix));
    let (ok, out) = virt_clone(
        &uri,
        &[
            "--original",
            &src,
            "--name",
            &sa,
            "--auto-clone",
            "--skip-copy",
            "vda",
            "--skip-copy",
            "vdb",
        ],
    );
    assert!(
        !ok && out.contains("UUID mismatch between <uuid> and <sysinfo>"),
        "{out}"
    );
    assert!(!virsh_try(&uri, &["dominfo", &sa]).0);
    Script::new(&format!(
        r#"let c = HOST.vm("{src}").clone(#{{ name: "{sb}", skip_copy: ["vda", "vdb"] }});
assert(c.inactive_xml.contains(`<entry name='uuid'>${{c.uuid}}</entry>`), c.inactive_xml);"#
    ))
    .connect(&uri)
    .run()
    .ok();
    std::fs::write(&file, &src_xml).unwrap();
    virsh(&uri, &["define", file.to_str().unwrap()]);

    // A running source: both refuse; ours names the state, the fix and the line.
    virsh(&uri, &["start", &src]);
    let (ok, out) = virt_clone(&uri, &["--original", &src, "--auto-clone"]);
    assert!(
        !ok && out.contains("Domain to clone must be shutoff."),
        "{out}"
    );
    Script::new(&format!(
        r#"
try {{ HOST.vm("{src}").clone(); }} catch (e) {{ print(`${{e.field}}|${{e.value}}|${{e.line}}|${{e.message}}`); }}"#
    ))
    .connect(&uri)
    .run()
    .ok()
    .stdout_has(&format!("state|running|2|VM {src} is running: shut it down first"));
    virsh(&uri, &["destroy", &src]);

    assert_eq!(inactive_xml(&uri, &src), src_xml);
    let _ = std::fs::remove_file(&file);
}

/// A VM with snapshots clones without them, in both; a transient VM is
/// refused by both, ours saying why.
#[test]
fn live_snapshots_stay_behind_and_transient_vms_are_refused_like_virt_clone() {
    let uri = live_uri();
    let pool = LivePool::new(&uri, "vcsnap");
    let src = unique("vcsnap");
    let (a, b) = (format!("{src}-clone"), format!("{src}-clone1"));
    let tr = format!("{src}-tr");
    let _guards = [&src, &a, &b, &tr].map(|n| VmGuard(vec![uri.clone()], n.to_string()));
    // Undefined before its guard runs: a VM with snapshots needs their
    // metadata removed with it.
    struct Snapshots(String, String);
    impl Drop for Snapshots {
        fn drop(&mut self) {
            let _ = virsh_try(&self.0, &["undefine", &self.1, "--snapshots-metadata"]);
        }
    }
    let _snapshots = Snapshots(uri.clone(), src.clone());
    let _logs = Cleanup(vec![format!("/var/log/libvirt/qemu/{tr}.log")]);
    Script::new(&format!(
        r#"
let vm = HOST.define_vm(#{{ name: "{src}", memory: 128, vcpus: 1, virt_type: "qemu", import: true,
    disks: [#{{ pool: "{p}", size: "16M", format: "qcow2" }}], graphics: "none" }});
vm.snapshot("s1");
"#,
        p = pool.name
    ))
    .connect(&uri)
    .run()
    .ok();
    let (ok, out) = virt_clone(&uri, &["--original", &src, "--auto-clone"]);
    assert!(ok, "{out}");
    Script::new(&format!(
        r#"assert_eq(HOST.vm("{src}").clone().name, "{b}");"#
    ))
    .connect(&uri)
    .run()
    .ok();
    assert!(virsh(&uri, &["snapshot-list", &src, "--name"]).contains("s1"));
    let snapshot_names = |img: &str| {
        stdout_of(
            Command::new("qemu-img").args(["snapshot", "-l", "-U", img]),
            "qemu-img snapshot",
        )
    };
    assert!(snapshot_names(&format!("{}/{src}.qcow2", pool.dir)).contains("s1"));
    for clone in [&a, &b] {
        assert_eq!(
            virsh(&uri, &["snapshot-list", clone, "--name"]).trim(),
            "",
            "{clone}"
        );
        let img = format!("{}/{clone}.qcow2", pool.dir);
        assert!(!snapshot_names(&img).contains("s1"), "{img}");
    }
    // Transient: running without a persistent definition.
    let xml = inactive_xml(&uri, &b)
        .replacen(
            &format!("<name>{b}</name>"),
            &format!("<name>{tr}</name>"),
            1,
        )
        .lines()
        .filter(|l| !l.trim_start().starts_with("<uuid>"))
        .collect::<Vec<_>>()
        .join("\n");
    let file = std::env::temp_dir().join(format!("{tr}.xml"));
    std::fs::write(&file, xml).unwrap();
    virsh(&uri, &["create", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    let (ok, out) = virt_clone(&uri, &["--original", &tr, "--auto-clone"]);
    assert!(
        !ok && out.contains("Domain to clone must be shutoff."),
        "{out}"
    );
    Script::new(&format!(
        r#"
try {{ HOST.vm("{tr}").clone(); }} catch (e) {{ print(`${{e.field}}|${{e.value}}|${{e.line}}|${{e.message}}`); }}"#
    ))
    .connect(&uri)
    .run()
    .ok()
    .stdout_has(&format!("state|transient|2|VM {tr} is transient (it has no persistent definition, so shutting it down removes it): define it first"));
}

/// Files a test made outside pools, removed when it ends.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}
