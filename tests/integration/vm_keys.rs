//! The VM spec keys `cpu` (topology), `boot` and `hostdevs`, through
//! `create_vm`/`define_vm` and back through `vm.config`/`vm.edit`; uuid and
//! MAC checks that `dry_run` and a define share.

use crate::support::Script;

/// A topology without `vcpus` gives the VM its vCPUs (virt-install's
/// `vcpus_from_topology`); a partial one is filled in from `vcpus`, cores first.
#[test]
fn a_cpu_topology_sets_or_follows_the_vcpus() {
    let run = Script::new(
        r#"
let xml = HOST.define_vm(#{ name: "t", virt_type: "qemu", pxe: true, dry_run: true,
    cpu: #{ sockets: 2, cores: 3 } });
assert(xml.contains("<vcpu>6</vcpu>"), xml);
assert(xml.contains("<topology sockets='2' cores='3' threads='1'/>"), xml);
let vm = HOST.define_vm(#{ name: "t", virt_type: "qemu", pxe: true, vcpus: 8,
    cpu: #{ model: "qemu64", threads: 2 } });
let x = vm.inactive_xml;
assert(x.contains(">8</vcpu>"), x);
assert(x.contains("sockets='1' dies='1' cores='4' threads='2'"), x);
assert(x.contains("<model fallback='allow'>qemu64</model>"), x);
// vcpus below max_vcpus: the topology counts the maximum.
let xml = HOST.define_vm(#{ name: "u", virt_type: "qemu", pxe: true, dry_run: true,
    vcpus: 2, max_vcpus: 4, cpu: #{ mode: "host-passthrough", sockets: 2 } });
assert(xml.contains("<vcpu current='2'>4</vcpu>"), xml);
assert(xml.contains("<cpu mode='host-passthrough'><topology sockets='2' cores='2' threads='1'/></cpu>"), xml);
print("ok");
"#,
    )
    .run();
    run.ok().stdout_has("ok");
}

/// sockets * cores * threads that is not the vCPU count: the field, the
/// value, the line, and no VM.
#[test]
fn a_topology_that_is_not_the_vcpu_count_is_refused_and_creates_nothing() {
    let run = Script::new(
        r#"let n = HOST.vms().len();
for spec in [#{ vcpus: 4, cpu: #{ sockets: 2, cores: 3 } },
             #{ max_vcpus: 6, cpu: #{ sockets: 4 } },
             #{ vcpus: 2, max_vcpus: 4, cpu: #{ sockets: 1, cores: 2, threads: 1 } }] {
    spec.mixin(#{ name: "bad", virt_type: "qemu", pxe: true });
    for dry in [true, false] {
        spec.dry_run = dry;
        try { HOST.create_vm(spec); print("accepted"); }
        catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
    }
}
assert_eq(HOST.vms().len(), n);
assert_eq(HOST.find_vm("bad"), ());
"#,
    )
    .run();
    run.ok()
        .stdout_has("cpu|2x3x1|8|cpu: sockets * cores * threads is 6, but the VM has 4 vCPUs")
        .stdout_has("cpu|4x1x1|8|cpu: sockets * cores * threads is 4, but the VM has 6 vCPUs")
        .stdout_has("cpu|1x2x1|8|");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
    // dry_run and a real create say the same.
    assert_eq!(run.stdout.lines().count(), 6, "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    for pair in lines.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
}

/// `vm.config` shows the topology as the spec's map; `vm.edit` changes it,
/// checks it against the vCPUs and keeps what it does not model (dies, the
/// model's fallback).
#[test]
fn a_cpu_topology_round_trips_through_config_and_edit() {
    let run = Script::new(
        r#"
let vm = HOST.define_vm(#{ name: "t", memory: "2G", virt_type: "qemu", pxe: true, vcpus: 4,
    cpu: #{ model: "qemu64", sockets: 2, cores: 2,
            numa: [#{ cpus: "0-1", memory: "1G" }, #{ cpus: "2-3", memory: "1G" }] } });
let cfg = vm.config;
assert_eq(cfg.cpu, #{ model: "qemu64", sockets: 2, cores: 2, threads: 1,
                      numa: [#{ cpus: "0-1", memory: 1024 }, #{ cpus: "2-3", memory: 1024 }] });
vm.edit(|cfg| { cfg.description = "same cpu"; });
assert_eq(vm.config.cpu, cfg.cpu);
assert(vm.inactive_xml.contains("dies='1'"));
vm.edit(|cfg| { cfg.cpu.sockets = 1; cfg.cpu.cores = 4; });
let x = vm.inactive_xml;
assert(x.contains("<topology sockets='1' dies='1' cores='4' threads='1'/>"), x);
assert(x.contains("<model fallback='allow'>qemu64</model>"), x);
assert_eq(vm.config.cpu.cores, 4);
try { vm.edit(|cfg| { cfg.cpu.cores = 3; }); print("accepted"); }
catch (e) { print(`${e.field}|${e.value}|${e.line}`); }
try { vm.edit(|cfg| { cfg.vcpus = 8; }); print("accepted"); }
catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
assert(vm.inactive_xml.contains(">4</vcpu>"));
vm.edit(|cfg| { cfg.vcpus = 8; cfg.cpu.cores = 8;
                cfg.cpu.numa = [#{ cpus: "0-3", memory: 1024 }, #{ cpus: "4-7", memory: 1024 }]; });
let x = vm.inactive_xml;
assert(x.contains(">8</vcpu>") && x.contains("cores='8'") && x.contains("cpus='4-7'"), x);
// The name form keeps the topology.
vm.edit(|cfg| { cfg.cpu = "host-model"; });
assert_eq(vm.config.cpu.mode, "host-model");
assert_eq(vm.config.cpu.cores, 8);
print("ok");
"#,
    )
    .run();
    run.ok()
        .stdout_has("cfg.cpu|1x3x1|16\n")
        .stdout_has("cfg.vcpus|8|18|cfg.vcpus: the CPU topology (1x4x1 sockets x cores x threads) gives 4 vCPUs")
        .stdout_has("ok");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
}

/// `boot` in a spec: the order as given; a kind that is none, twice, or
/// beside a disk's boot_order names its field, value and line, and creates nothing.
#[test]
fn boot_orders_a_spec_and_bad_ones_are_refused() {
    let run = Script::new(
        r#"let base = #{ name: "b", virt_type: "qemu", import: true, disks: [#{ pool: "default-pool", size: "1G" }] };
let vols = HOST.pool("default-pool").volumes().len();
for bad in [#{ boot: ["cdorm"] }, #{ boot: ["hd", "network", "hd"] }, #{ boot: ["usb"] }, #{ boot: [1] },
            #{ boot: ["hd"], disks: [#{ pool: "default-pool", size: "1G", boot_order: 1 }] }, #{ boot: "hd" }] {
    let spec = base; spec.mixin(bad);
    for dry in [true, false] {
        spec.dry_run = dry;
        try { HOST.define_vm(spec); print("accepted"); }
        catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
    }
}
assert_eq(HOST.find_vm("b"), ());
assert_eq(HOST.pool("default-pool").volumes().len(), vols);
let spec = base; spec.boot = ["network", "hd", "cdrom", "fd"];
let vm = HOST.define_vm(spec);
let x = vm.inactive_xml;
assert(x.contains("<boot dev='network'/>\n    <boot dev='hd'/>\n    <boot dev='cdrom'/>\n    <boot dev='fd'/>"), x);
assert_eq(vm.config.boot, ["network", "hd", "cdrom", "fd"]);
print("ok");
"#,
    )
    .run();
    run.ok()
        .stdout_has("boot[0]|cdorm|8|boot[0]: not a boot device; did you mean \"cdrom\"? (one of: hd, cdrom, network, fd)")
        .stdout_has("boot[2]|hd|8|boot[2]: boot[0] is hd already: each device kind boots once")
        .stdout_has("boot[0]|usb|8|")
        .stdout_has("boot[0]|1|8|boot[0]: must be a device kind (hd, cdrom, network, fd), not i64")
        .stdout_has("boot|hd|8|boot: disk vda has a boot_order: libvirt takes boot or per-disk boot_order, not both")
        .stdout_has("boot|hd|8|boot: must be an array")
        .stdout_has("ok");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().take(12).collect();
    for pair in lines.chunks(2) {
        assert_eq!(pair[0], pair[1], "dry_run and define differ");
    }
}

/// `cfg.boot` round-trips; what `<os>` has besides the order stays.
#[test]
fn boot_round_trips_through_edit_keeping_the_rest_of_os() {
    let run = Script::new(
        r#"
let xml = HOST.define_vm(#{ name: "e", virt_type: "qemu", pxe: true, dry_run: true });
xml.replace("<boot dev='hd'/>", "<boot dev='hd'/><bootmenu enable='yes' timeout='3000'/><bios useserial='yes'/>");
let vm = HOST.define_vm_xml(xml);
assert_eq(vm.config.boot, ["network", "hd"]);
vm.edit(|cfg| { cfg.boot = ["cdrom", "hd"]; });
let x = vm.inactive_xml;
assert(x.contains("<boot dev='cdrom'/>\n    <boot dev='hd'/>\n    <bootmenu enable='yes' timeout='3000'/>\n    <bios useserial='yes'/>"), x);
assert(!x.contains("dev='network'"), x);
try { vm.edit(|cfg| { cfg.boot = ["hd", "floppy"]; }); print("accepted"); }
catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
try { vm.edit(|cfg| { cfg.disks = [#{ target: "vda", source: "/var/lib/libvirt/images/e.img", boot_order: 1 }]; }); print("accepted"); }
catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
// Moving to per-disk boot order: [] and boot_order in one edit.
vm.edit(|cfg| { cfg.boot = []; cfg.disks = [#{ target: "vda", source: "/var/lib/libvirt/images/e.img", boot_order: 1 }]; });
let x = vm.inactive_xml;
assert(!x.contains("<boot dev="), x);
assert(x.contains("<boot order='1'/>"), x);
assert_eq(vm.config.boot, []);
print("ok");
"#,
    )
    .run();
    run.ok()
        .stdout_has(
            "cfg.boot[1]|floppy|10|cfg.boot[1]: not a boot device (one of: hd, cdrom, network, fd)",
        )
        .stdout_has("cfg.boot|cdrom, hd|12|cfg.boot: disk vda has a boot_order")
        .stdout_has("ok");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
}
