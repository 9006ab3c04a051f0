//! Storage pools and volumes: the script API on the embedded test driver, and
//! on the real daemon (`live_*`) with a `dir` pool each test makes for itself.
use std::os::unix::fs::MetadataExt;

use crate::support::{live_uri, qemu_img_info, virsh, LivePool, Script};

// ------------------------------------------------------------ embedded driver

#[test]
fn pools_and_volumes_on_the_embedded_driver() {
    let run = Script::new(
        r#"
let names = HOST.pools().map(|p| p.name);
print(`pools=${names}`);
let pool = HOST.pool("default-pool");
print(`pool=${pool} type=${pool.type} path=${pool.path} state=${pool.info().state}`);
let v = pool.create_volume(#{ name: "kvm1.qcow2", capacity: "10G", format: "qcow2" });
print(`vol=${v} cap=${v.capacity} fmt=${v.format} alloc=${v.allocation}`);
let full = v.clone("kvm2.qcow2", #{ mode: "full" });
let linked = v.clone("kvm3.qcow2", #{ mode: "linked", capacity: "20G" });
print(`linked backing=${linked.backing.path} cap=${linked.capacity}`);
print(`deps=${v.dependents().map(|d| d.name)}`);
try { v.delete(); } catch (e) { print(`refused kind=${e.kind} deps=${e.dependents}`); }
print(`vols=${pool.volumes().map(|x| x.name)}`);
print(`removed=${linked.delete().removed}`);
print(`removed=${v.delete().removed}`);
print(`find=${pool.find_volume("kvm1.qcow2") == ()} ${HOST.find_pool("nope") == ()} ${pool.find_volume("kvm2.qcow2")}`);
let d = HOST.define_pool(#{ name: "images", path: "/tmp/images", autostart: true });
print(`defined=${d} autostart=${d.autostart}`);
d.build();
d.start();
print(`started=${d.active}`);
"#,
    )
    .run();
    run.ok()
        .stdout_has("pools=[\"default-pool\"]")
        .stdout_has("pool=Pool(default-pool, running) type=dir path=/default-pool state=running")
        .stdout_has("vol=Volume(default-pool/kvm1.qcow2) cap=10737418240 fmt=qcow2 alloc=0")
        .stdout_has("linked backing=/default-pool/kvm1.qcow2 cap=21474836480")
        .stdout_has("deps=[\"kvm3.qcow2\"]")
        .stdout_has("refused kind=in_use deps=[\"default-pool/kvm3.qcow2\"]")
        .stdout_has("vols=[\"kvm1.qcow2\", \"kvm2.qcow2\", \"kvm3.qcow2\"]")
        .stdout_has("removed=/default-pool/kvm3.qcow2")
        .stdout_has("removed=/default-pool/kvm1.qcow2")
        .stdout_has("find=true true Volume(default-pool/kvm2.qcow2)")
        .stdout_has("defined=Pool(images, inactive) autostart=true")
        .stdout_has("started=true");
}

#[test]
fn missing_pool_and_volume_errors_name_them_with_position() {
    let run =
        Script::new("let p = HOST.pool(\"default-pool\");\nlet x = p.volume(\"nope.img\");\n")
            .run();
    run.code(1)
        .stderr_has("no volume named \"nope.img\" in pool default-pool")
        .stderr_has("script.rhai:2:11");
    let run = Script::new("print(1);\nHOST.pool(\"nope\");\n").run();
    run.code(1)
        .stderr_has("no storage pool named \"nope\" on test:///default")
        .stderr_has("script.rhai:2:6");
}

#[test]
fn bad_volume_input_is_refused_before_anything_is_created() {
    let run = Script::new(
        r#"
let pool = HOST.pool("default-pool");
let base = pool.create_volume(#{ name: "base.img", capacity: "1G" });
let bad = [
    #{ name: "a/b", capacity: "1G" },
    #{ name: "..", capacity: "1G" },
    #{ name: "x..y", capacity: "1G" },
    #{ name: "c.img", capacity: "lots" },
    #{ name: "c.img", capacity: "10X" },
    #{ name: "c.img", capacity: true },
    #{ name: "c.img", capacity: -5 },
    #{ name: "c.img" },
    #{ name: "c.img", capacity: "1G", allocation: "2G" },
    #{ name: "c.img", capacity: "500G", allocation: "200G" },
    #{ name: "c.img", capacity: "1G", format: "qcow3" },
    #{ name: "c.img", capacity: "1G", colour: "red" },
    #{ name: "c.img", backing: "/elsewhere/x.qcow2" },
    #{ name: "c.img", backing: "relative.qcow2" },
    #{ name: "c.img", backing: base, format: "raw" },
    #{ name: "c.img", backing: base, capacity: "1M" },
    #{ name: "base.img", capacity: "1G" },
];
for spec in bad {
    try {
        pool.create_volume(spec);
        print("CREATED");
    } catch (e) {
        print(`${e.field}|${e.value}|${e.line}|${e.message}`);
    }
}
for opts in [#{ mode: "copy" }, #{ capacity: "1M" }, #{ speed: 1 }] {
    try { base.clone("c2.img", opts); print("CREATED"); } catch (e) { print(`${e.field}|${e.value}|${e.line}`); }
}
try { base.clone("../c2.img"); } catch (e) { print(`${e.field}|${e.value}`); }
try { base.clone("base.img"); } catch (e) { print(`${e.field}|${e.value}`); }
try { base.resize("512M"); } catch (e) { print(`${e.field}|${e.value}|shrink=${e.message.contains("shrink: true")}`); }
try { base.wipe(#{ algorithm: "shred" }); } catch (e) { print(`${e.field}|${e.value}`); }
try { base.download("/tmp", #{ overwrite: true }); } catch (e) { print(`${e.field}|${e.value}`); }
try { base.upload("/nonexistent/file.img"); } catch (e) { print(`${e.field}|${e.value}`); }
print(`volumes=${pool.volumes().map(|v| v.name)}`);
"#,
    )
    .run();
    run.ok();
    let out = &run.stdout;
    assert!(!out.contains("CREATED"), "{out}");
    for expected in [
        "name|a/b|25|name: must not contain '/'",
        "name|..|25|name: must not contain '..'",
        "name|x..y|25|",
        "capacity|lots|25|capacity: expected a number",
        "capacity|10X|25|capacity: unknown unit 'X'",
        "capacity|true|25|capacity: expected a size like \"10G\" or a number of bytes, not bool",
        "capacity|-5|25|capacity: a size cannot be negative",
        "capacity|()|25|capacity: a new volume needs a capacity",
        "allocation|2G|25|allocation: larger than the capacity",
        "allocation|200G|25|allocation: exceeds the space available in pool default-pool",
        "format|qcow3|25|format: unknown volume format",
        "colour|red|25|colour: unknown key",
        "backing|/elsewhere/x.qcow2|25|backing: no storage volume at \"/elsewhere/x.qcow2\"",
        "backing|relative.qcow2|25|",
        "format|raw|25|format: a volume with a backing file must be qcow2",
        "capacity|1M|25|capacity: smaller than the backing volume's capacity",
        "name|base.img|25|name: a volume with this name already exists in pool default-pool",
        "mode|copy|32",
        "capacity|1M|32",
        "speed|1|32",
        "new_name|../c2.img",
        "new_name|base.img",
        "size|512M|shrink=true",
        "algorithm|shred",
        "local_path|/tmp",
        "local_path|/nonexistent/file.img",
        "volumes=[\"base.img\"]",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn uncaught_bad_size_points_at_the_call() {
    let run = Script::new(
        "let pool = HOST.pool(\"default-pool\");\npool.create_volume(#{ name: \"a.img\", capacity: \"ten gigs\" });\n",
    )
    .run();
    run.code(1)
        .stderr_has("capacity: expected a number")
        .stderr_has("\"ten gigs\"")
        .stderr_has("script.rhai:2:6")
        .stderr_has("^");
}

#[test]
fn bad_pool_specs_are_refused_before_defining() {
    let run = Script::new(
        r#"
for spec in [
    #{ name: "p/q", path: "/tmp/p" },
    #{ name: "p", type: "tape", path: "/tmp/p" },
    #{ name: "p", path: "relative" },
    #{ name: "p", path: "/tmp/../etc" },
    #{ name: "p" },
    #{ name: "p", type: "netfs", path: "/mnt/p" },
    #{ name: "p", type: "fs", path: "/mnt/p" },
    #{ name: "p", type: "logical" },
    #{ name: "p", path: "/tmp/p", source: #{ colour: 1 } },
    #{ name: "p", path: "/tmp/p", autostart: "yes" },
    #{ name: "default-pool", path: "/tmp/p" },
] {
    try { HOST.define_pool(spec); print("DEFINED"); } catch (e) { print(`${e.field}|${e.value}`); }
}
try { HOST.ensure_pool(#{ name: "default-pool", type: "logical", source: #{ name: "vg" } }); } catch (e) { print(`${e.field}|${e.value}`); }
print(`pools=${HOST.pools().map(|p| p.name)}`);
"#,
    )
    .run();
    run.ok();
    let out = &run.stdout;
    assert!(!out.contains("DEFINED"), "{out}");
    for expected in [
        "name|p/q",
        "type|tape",
        "path|relative",
        "path|/tmp/../etc",
        "path|()",
        "source|()",
        "source.device|()",
        "source.name|()",
        "source.colour|1",
        "autostart|yes",
        "name|default-pool",
        "type|logical",
        "pools=[\"default-pool\"]",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn ensure_pool_is_idempotent() {
    let run = Script::new(
        r#"
let spec = #{ name: "images", path: "/tmp/vs-images" };
let a = HOST.ensure_pool(spec);
let b = HOST.ensure_pool(spec);
spec.path = "/tmp/vs-images2";
spec.autostart = true;
let c = HOST.ensure_pool(spec);
print(`${a.action} ${b.action} ${c.action} ${c.changes} ${c.pool.autostart} ${c.pool.active}`);
"#,
    )
    .run();
    run.ok().stdout_has(
        "created unchanged updated [\"path: /tmp/vs-images -> /tmp/vs-images2\", \"restarted\", \"autostart: true\"] true true",
    );
}

// ------------------------------------------------------------ real daemon

impl LivePool {
    fn script(&self, body: &str) -> Script {
        Script::new(&format!(
            "let pool = HOST.ensure_pool(#{{ name: \"{}\", type: \"dir\", path: \"{}\" }}).pool;\n{body}",
            self.name, self.dir
        ))
        .connect(&self.uri)
    }
}

#[test]
fn live_ensure_pool_converges() {
    let uri = live_uri();
    let pool = LivePool::named(&uri, "ensure");
    let moved = format!("{}-moved", pool.dir);
    let run = Script::new(&format!(
        r#"
let spec = #{{ name: "{name}", path: "{dir}" }};
let a = HOST.ensure_pool(spec);
let b = HOST.ensure_pool(spec);
spec.path = "{moved}";
let c = HOST.ensure_pool(spec);
let d = HOST.ensure_pool(spec);
print(`${{a.action}} ${{b.action}} ${{c.action}} ${{d.action}} ${{c.changes.len()}}`);
"#,
        name = pool.name,
        dir = pool.dir,
    ))
    .connect(&uri)
    .run();
    let _ = std::fs::remove_dir_all(&moved);
    run.ok().stdout_has("created unchanged updated unchanged 2");
    let xml = virsh(&uri, &["pool-dumpxml", &pool.name]);
    assert!(xml.contains(&format!("<path>{moved}</path>")), "{xml}");
    assert!(virsh(&uri, &["pool-info", &pool.name]).contains("running"));
}

#[test]
fn live_seed_steps_match_virsh() {
    let uri = live_uri();
    let pool = LivePool::named(&uri, "seed");
    pool.script(
        r#"
print(`pools=${HOST.pools().map(|p| p.name)}`);
let v = pool.create_volume(#{ name: "kvm1.qcow2", capacity: "10G", format: "qcow2" });
let c = v.clone("kvm2.qcow2");
print(`vols=${pool.volumes().map(|x| x.name)}`);
"#,
    )
    .run()
    .ok()
    .stdout_has(&format!("\"{}\"", pool.name))
    .stdout_has("vols=[\"kvm1.qcow2\", \"kvm2.qcow2\"]");
    assert!(virsh(&uri, &["pool-list"]).contains(&pool.name));
    let vols = virsh(&uri, &["vol-list", &pool.name]);
    assert!(
        vols.contains("kvm1.qcow2") && vols.contains("kvm2.qcow2"),
        "{vols}"
    );
    let info = virsh(&uri, &["vol-info", "kvm2.qcow2", "--pool", &pool.name]);
    assert!(info.contains("10.00 GiB"), "{info}");
    let img = qemu_img_info(&format!("{}/kvm2.qcow2", pool.dir));
    assert!(
        img.contains("file format: qcow2") && img.contains("10 GiB"),
        "{img}"
    );

    pool.script(
        r#"
let r = pool.volume("kvm2.qcow2").delete();
print(`removed=${r.removed}`);
"#,
    )
    .run()
    .ok()
    .stdout_has(&format!("removed={}/kvm2.qcow2", pool.dir));
    let vols = virsh(&uri, &["vol-list", &pool.name]);
    assert!(
        vols.contains("kvm1.qcow2") && !vols.contains("kvm2.qcow2"),
        "{vols}"
    );
}

#[test]
fn live_linked_full_and_larger_clones() {
    let uri = live_uri();
    let pool = LivePool::named(&uri, "clones");
    let run = pool
        .script(
            r#"
let base = pool.create_volume(#{ name: "base.qcow2", capacity: "1G", format: "qcow2" });
let linked = base.clone("linked.qcow2", #{ mode: "linked" });
let full = base.clone("full.qcow2", #{ mode: "full" });
let big = base.clone("big.qcow2", #{ mode: "full", capacity: "3G" });
let big_linked = base.clone("big-linked.qcow2", #{ mode: "linked", capacity: "2G" });
print(`linked=${linked.capacity} full=${full.capacity} big=${big.capacity} bl=${big_linked.capacity}`);
try { base.delete(); print("DELETED"); } catch (e) { print(`refused: ${e.message}`); }
try { base.wipe(); print("WIPED"); } catch (e) { print(`refused wipe: ${e.kind}`); }
try { base.resize("2G"); print("RESIZED"); } catch (e) { print(`refused resize: ${e.kind}`); }
try { base.clone("rl.qcow2", #{ mode: "reflink" }); print("reflink=ok"); } catch (e) { print(`reflink=${e.field}|${e.value}|${e.message}`); }
print(`after=${pool.volumes().map(|v| v.name)}`);
"#,
        )
        .run();
    run.ok()
        .stdout_has("linked=1073741824 full=1073741824 big=3221225472 bl=2147483648")
        .stdout_has("refused: cannot delete")
        .stdout_has("refused wipe: in_use")
        .stdout_has("refused resize: in_use");
    assert!(!run.stdout.contains("DELETED") && !run.stdout.contains("WIPED"));
    // The reflink outcome is the filesystem's: ask it (`cp --reflink=always`
    // in the pool's directory), then require exactly that outcome.
    let probe = format!("{}/reflink-probe", pool.dir);
    std::fs::write(&probe, b"x").unwrap();
    let can_reflink = std::process::Command::new("cp")
        .args(["--reflink=always", &probe, &format!("{probe}2")])
        .status()
        .unwrap()
        .success();
    let _ = std::fs::remove_file(&probe);
    let _ = std::fs::remove_file(format!("{probe}2"));
    if can_reflink {
        run.stdout_has("reflink=ok");
        let rl = qemu_img_info(&format!("{}/rl.qcow2", pool.dir));
        assert!(
            rl.contains("virtual size: 1 GiB") && !rl.contains("backing file"),
            "{rl}"
        );
    } else {
        run.stdout_has("reflink=mode|reflink|mode: a reflink clone");
        // Nothing is left under the reflink clone's name.
        assert!(!run.stdout.contains("rl.qcow2"), "{}", run.stdout);
        assert!(!std::path::Path::new(&format!("{}/rl.qcow2", pool.dir)).exists());
    }
    let refused = run
        .stdout
        .lines()
        .find(|l| l.starts_with("refused: "))
        .unwrap();
    assert!(refused.contains("linked.qcow2") && refused.contains("big-linked.qcow2"));

    let base_path = format!("{}/base.qcow2", pool.dir);
    let linked = qemu_img_info(&format!("{}/linked.qcow2", pool.dir));
    assert!(
        linked.contains(&format!("backing file: {base_path}")),
        "{linked}"
    );
    let full = qemu_img_info(&format!("{}/full.qcow2", pool.dir));
    assert!(!full.contains("backing file"), "{full}");
    let big = qemu_img_info(&format!("{}/big.qcow2", pool.dir));
    assert!(big.contains("virtual size: 3 GiB"), "{big}");
    let info = virsh(&uri, &["vol-info", "big.qcow2", "--pool", &pool.name]);
    assert!(info.contains("3.00 GiB"), "{info}");
    let bl = qemu_img_info(&format!("{}/big-linked.qcow2", pool.dir));
    assert!(
        bl.contains("virtual size: 2 GiB") && bl.contains("backing file"),
        "{bl}"
    );
    assert!(std::path::Path::new(&base_path).exists());
}

#[test]
fn live_upload_download_keeps_bytes_and_holes() {
    let uri = live_uri();
    let pool = LivePool::named(&uri, "stream");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("holes.bin");
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        let mut seed: u32 = 12345;
        for off in [0u64, 10 << 20, 33 << 20, (64 << 20) - 8192] {
            let block: Vec<u8> = (0..8192)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            f.write_all_at(&block, off).unwrap();
        }
    }
    let dst = work.path().join("back.bin");
    let run = pool
        .script(&format!(
            r#"
let v = pool.create_volume(#{{ name: "data.img", capacity: "64M", format: "raw" }});
let up = v.upload("{}");
print(`up=${{up.uploaded}} data=${{up.data}}`);
let down = v.download("{}");
print(`down=${{down.downloaded}} data=${{down.data}}`);
"#,
            src.display(),
            dst.display()
        ))
        .run();
    run.ok()
        .stdout_has("up=67108864 data=32768")
        .stdout_has("down=67108864");
    assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
    let (a, b) = (
        std::fs::metadata(&src).unwrap(),
        std::fs::metadata(&dst).unwrap(),
    );
    assert_eq!(b.len(), 64 << 20);
    // Sparse: far fewer blocks than 64 MiB, and no more than the original holds.
    assert!(
        b.blocks() * 512 < (1 << 20),
        "download is not sparse: {} blocks",
        b.blocks()
    );
    assert!(
        b.blocks() <= a.blocks() * 2,
        "{} vs {}",
        b.blocks(),
        a.blocks()
    );
    let vol_path = format!("{}/data.img", pool.dir);
    let vol_blocks = std::fs::metadata(&vol_path).unwrap().blocks();
    assert!(
        vol_blocks * 512 < (1 << 20),
        "volume is not sparse: {vol_blocks} blocks"
    );
    // Uploading over data: the file's holes must read back as zeros, not as
    // what the volume held before.
    let dense = work.path().join("dense.bin");
    std::fs::write(&dense, vec![0x77u8; 64 << 20]).unwrap();
    let again = work.path().join("again.bin");
    pool.script(&format!(
        "let v = pool.volume(\"data.img\");\nv.upload(\"{}\");\nv.upload(\"{}\");\nv.download(\"{}\");",
        dense.display(),
        src.display(),
        again.display()
    ))
    .run()
    .ok();
    assert!(
        std::fs::read(&src).unwrap() == std::fs::read(&again).unwrap(),
        "upload over existing data left old bytes in the holes"
    );
    // An existing file is not overwritten by default.
    pool.script(&format!(
        "pool.volume(\"data.img\").download(\"{}\");",
        dst.display()
    ))
    .run()
    .code(1)
    .stderr_has("local_path: the file exists");
}

/// Pool.refresh on the daemon: a file put into the pool's directory behind
/// libvirt's back is a volume only after the refresh. storage::image uploads a
/// local file once: the bytes arrive, a second call leaves the volume alone,
/// and a changed file is uploaded again.
#[test]
fn live_refresh_finds_new_files_and_image_uploads_once() {
    let uri = live_uri();
    let pool = LivePool::named(&uri, "refresh");
    let local = tempfile::tempdir().unwrap();
    let image = local.path().join("base.raw");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..5].copy_from_slice(b"hello");
    bytes[(1 << 20) - 3..].copy_from_slice(b"end");
    std::fs::write(&image, &bytes).unwrap();
    pool.script("assert_eq(pool.volumes().len(), 0);")
        .run()
        .ok();
    std::fs::write(format!("{}/dropped.img", pool.dir), b"x").unwrap();
    let run = pool
        .script(&format!(
            r#"import "storage" as storage;
assert(pool.find_volume("dropped.img") == (), "libvirt saw the file before a refresh");
pool.refresh();
assert(pool.find_volume("dropped.img") != (), "refresh found no dropped.img");
let a = storage::image(HOST, #{{ pool: pool.name, file: "{file}" }});
let b = storage::image(HOST, #{{ pool: pool.name, file: "{file}" }});
assert_eq([a.action, b.action, b.uploaded], ["created", "unchanged", 0]);
assert_eq(a.volume.name, "base.raw");
assert_eq(a.volume.capacity, 1048576);
print("done");"#,
            file = image.display()
        ))
        .run();
    run.ok().stdout_has("done");
    let copy = std::fs::read(format!("{}/base.raw", pool.dir)).unwrap();
    assert!(
        copy == bytes,
        "the uploaded volume's bytes differ from the file"
    );
    // A file of another size is uploaded again.
    bytes.extend_from_slice(&[7u8; 4096]);
    std::fs::write(&image, &bytes).unwrap();
    pool.script(&format!(
        r#"import "storage" as storage;
let c = storage::image(HOST, #{{ pool: pool.name, file: "{}" }});
assert_eq(c.action, "updated");
assert(c.uploaded > 0);"#,
        image.display()
    ))
    .run()
    .ok();
    assert!(std::fs::read(format!("{}/base.raw", pool.dir)).unwrap() == bytes);
}

#[test]
fn a_volume_left_half_made_by_an_interrupted_copy_is_removed_by_the_next_lookup() {
    // What a copy killed midway leaves: the volume under its final name, and
    // the marker beside it that only a finished copy removes.
    Script::new(
        r#"
let p = HOST.pool("default-pool");
let base = p.create_volume(#{ name: "base.raw", capacity: "16M", format: "raw" });
p.create_volume(#{ name: "copy.raw", capacity: "16M", format: "raw" });
p.create_volume(#{ name: "copy.raw.virtscript-partial", capacity: "1K", format: "raw" });
p.create_volume(#{ name: "whole.raw", capacity: "16M", format: "raw" });
assert(p.find_volume("copy.raw") == (), "a half-made copy is not the copy");
assert(p.find_volume("copy.raw.virtscript-partial") == (), "its marker went with it");
assert(p.find_volume("whole.raw") != (), "a volume without a marker is whole");
// The re-run's copy completes and leaves no marker of its own.
base.clone("copy.raw", #{ mode: "full" });
let names = p.volumes().map(|v| v.name);
names.sort();
assert_eq(names, ["base.raw", "copy.raw", "whole.raw"]);
print("ok");
"#,
    )
    .run()
    .ok()
    .stdout_has("ok")
    .stderr_has("removed volume default-pool/copy.raw: its copy was interrupted");
}

#[test]
fn a_volume_clone_can_be_fully_allocated_but_not_linked_so() {
    Script::new(
        r#"
let p = HOST.pool("default-pool");
let raw = p.create_volume(#{ name: "src.raw", capacity: "64M", format: "raw" });
let thin = raw.clone("thin.raw");
let thick = raw.clone("thick.raw", #{ sparse: false });
assert_eq(thick.allocation, thick.capacity);
assert(thin.allocation < thin.capacity, `${thin.allocation}`);
let n = p.volumes().len();
raw.clone("overlay.qcow2", #{ mode: "linked", sparse: false });
"#,
    )
    .run()
    .code(1)
    .stderr_has("sparse: asks for a fully allocated copy, and mode \"linked\" makes an overlay that stores only the changes; use mode \"full\" (or \"auto\")")
    .stderr_has("script.rhai:9:");
}
