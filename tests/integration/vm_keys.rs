//! The VM spec keys `cpu` (topology), `boot` and `hostdevs`, through
//! `create_vm`/`define_vm` and back through `vm.config`/`vm.edit`; uuid and
//! MAC checks that `dry_run` and a define share.

use crate::support::Script;

/// A test driver host with PCI and USB devices (test:///default has none):
/// two USB devices share their ids, one device is a NIC.
const DEVICE_HOST: &str = r#"<node>
  <network>
    <name>default</name>
    <bridge name='virbr0'/>
    <forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'/>
  </network>
  <device>
    <name>pci_0000_01_00_0</name>
    <parent>computer</parent>
    <capability type='pci'><domain>0</domain><bus>1</bus><slot>0</slot><function>0</function>
      <product id='0x1042'>Virtio block device</product><vendor id='0x1af4'>Red Hat, Inc.</vendor></capability>
  </device>
  <device>
    <name>pci_0000_02_00_0</name>
    <parent>computer</parent>
    <capability type='pci'><domain>0</domain><bus>2</bus><slot>0</slot><function>0</function><product id='0x1041'/><vendor id='0x1af4'/></capability>
  </device>
  <device>
    <name>usb_1_2</name>
    <parent>computer</parent>
    <capability type='usb_device'><bus>1</bus><device>2</device><product id='0x0001'>Thing</product><vendor id='0x1d6b'>Linux Foundation</vendor></capability>
  </device>
  <device>
    <name>usb_1_3</name>
    <parent>computer</parent>
    <capability type='usb_device'><bus>1</bus><device>3</device><product id='0x0002'/><vendor id='0x1d6b'/></capability>
  </device>
  <device>
    <name>usb_2_3</name>
    <parent>computer</parent>
    <capability type='usb_device'><bus>2</bus><device>3</device><product id='0x0002'/><vendor id='0x1d6b'/></capability>
  </device>
  <device>
    <name>net_eth0_52_54_00_00_00_01</name>
    <parent>pci_0000_02_00_0</parent>
    <capability type='net'><interface>eth0</interface><address>52:54:00:00:00:01</address></capability>
  </device>
</node>
"#;

/// A script on a fresh driver loaded with [`DEVICE_HOST`].
fn on_device_host(script: &str) -> crate::support::Run {
    let s = Script::new(script).file("host.xml", DEVICE_HOST);
    let uri = format!("test://{}/host.xml", s.dir().display());
    s.connect(&uri).run()
}

/// A topology without `vcpus` gives the VM its vCPUs (virt-install's
/// `vcpus_from_topology`); a partial one is filled in from `vcpus`, cores first.
#[test]
fn a_cpu_topology_sets_or_follows_the_vcpus() {
    let run = Script::new(
        r#"
let xml = HOST.define_vm(#{ name: "t", virt_type: "qemu", pxe: true, dry_run: true,
    cpu: #{ sockets: 2, cores: 3 } }).final;
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
    vcpus: 2, max_vcpus: 4, cpu: #{ mode: "host-passthrough", sockets: 2 } }).final;
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
             #{ vcpus: 2, max_vcpus: 4, cpu: #{ sockets: 1, cores: 2, threads: 1 } },
             #{ cpu: #{ sockets: 64, cores: 128 } }] {
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
        .stdout_has("cpu|2x3x1|9|cpu: sockets * cores * threads is 6, but the VM has 4 vCPUs")
        .stdout_has("cpu|4x1x1|9|cpu: sockets * cores * threads is 4, but the VM has 6 vCPUs")
        .stdout_has("cpu|1x2x1|9|")
        .stdout_has(
            "cpu|64x128x1|9|cpu: sockets * cores * threads is 8192: a VM has at most 4096 vCPUs",
        );
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
    // dry_run and a real create say the same.
    assert_eq!(run.stdout.lines().count(), 8, "{}", run.stdout);
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
let xml = HOST.define_vm(#{ name: "e", virt_type: "qemu", pxe: true, boot: ["network", "hd"], dry_run: true }).final;
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

/// Each form of `hostdevs` becomes libvirt's `<hostdev>`: a PCI device by
/// name or address, a USB device by name (ids; bus and device too when
/// another device has the same ids), by ids, by address.
#[test]
fn hostdevs_become_libvirt_hostdev_elements() {
    let run = on_device_host(
        r#"
let xml = HOST.define_vm(#{ name: "h", virt_type: "qemu", pxe: true, dry_run: true,
  hostdevs: ["pci_0000_01_00_0", "usb_1_2", "usb_1_3", #{ type: "pci", address: "02:00.0", managed: false },
             #{ vendor: "0x1d6b", product: "0x0002", address: "002.003" }, #{ type: "usb", address: "1.2" }] }).final;
for want in [
  "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>",
  "<hostdev mode='subsystem' type='usb' managed='yes'><source><vendor id='0x1d6b'/><product id='0x0001'/></source></hostdev>",
  "<hostdev mode='subsystem' type='usb' managed='yes'><source><vendor id='0x1d6b'/><product id='0x0002'/><address bus='1' device='3'/></source></hostdev>",
  "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/></source></hostdev>",
  "<hostdev mode='subsystem' type='usb' managed='yes'><source><vendor id='0x1d6b'/><product id='0x0002'/><address bus='2' device='3'/></source></hostdev>",
  "<hostdev mode='subsystem' type='usb' managed='yes'><source><address bus='1' device='2'/></source></hostdev></devices>"] {
    assert(xml.contains(want), `${want}
${xml}`);
}
let vm = HOST.define_vm(#{ name: "h", virt_type: "qemu", pxe: true, hostdevs: ["pci_0000_01_00_0", "usb_1_2"] });
assert(vm.inactive_xml.contains("<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>"));
print("ok");
"#,
    );
    run.ok().stdout_has("ok");
}

/// A hostdev the host does not have, or cannot pass through, names the
/// field, the value (with the closest device) and the line; dry_run says the
/// same as a define, and nothing is created.
#[test]
fn a_hostdev_the_host_does_not_have_is_refused_and_creates_nothing() {
    let run = on_device_host(
        r#"
for bad in [["pci_0000_01_00_1"], ["net_eth0_52_54_00_00_00_01"], [#{ address: "0000:03:00.0" }],
            [#{ address: "zz" }], [#{ type: "usb", vendor: "0x1d6b", product: "0x0002" }],
            [#{ type: "usb", address: "9.9" }], ["usb_1_2", #{ vendor: "1d6b", product: 1 }],
            [#{ type: "scsi" }], [#{ adress: "01:00.0" }], [#{ vendor: "0x12345", product: 1 }]] {
  for dry in [true, false] {
    try { HOST.create_vm(#{ name: "h", virt_type: "qemu", pxe: true, hostdevs: bad, dry_run: dry }); print("accepted"); }
    catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
  }
}
assert_eq(HOST.vms(), []);
"#,
    );
    run.ok()
        .stdout_has("hostdevs[0]|pci_0000_01_00_1|7|hostdevs[0]: no node device by this name on the host; did you mean \"pci_0000_01_00_0\"? (PCI and USB devices: pci_0000_01_00_0, pci_0000_02_00_0, usb_1_2, usb_1_3, usb_2_3; see HOST.node_devices())")
        .stdout_has("hostdevs[0]|net_eth0_52_54_00_00_00_01|7|hostdevs[0]: is a net device, not a PCI or USB one")
        .stdout_has("hostdevs[0].address|0000:03:00.0|7|hostdevs[0].address: the host has no PCI device at 0000:03:00.0; did you mean \"0000:01:00.0\"? (its PCI devices: 0000:01:00.0, 0000:02:00.0)")
        .stdout_has("hostdevs[0].address|zz|7|hostdevs[0].address: not a PCI address")
        .stdout_has("hostdevs[0].vendor|1d6b:0002|7|hostdevs[0].vendor: the host has 2 USB devices with these ids (1d6b:0002 at 1.3, 1d6b:0002 at 2.3): give address (bus.device) too")
        .stdout_has("hostdevs[0].address|9.9|7|hostdevs[0].address: the host has no such USB device")
        .stdout_has("hostdevs[1]|")
        .stdout_has("the same host device as hostdevs[0]")
        .stdout_has("hostdevs[0].type|scsi|7|hostdevs[0].type: must be one of: pci, usb")
        .stdout_has("hostdevs[0].adress|01:00.0|7|hostdevs[0].adress: unknown key; did you mean 'address'?")
        .stdout_has("hostdevs[0].vendor|0x12345|7|hostdevs[0].vendor: not a USB vendor id");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 20, "{}", run.stdout);
    for pair in lines.chunks(2) {
        assert_eq!(pair[0], pair[1], "dry_run and create differ");
    }
    // The embedded driver's devices: a SCSI host is no PCI or USB device.
    Script::new(
        r#"try { HOST.define_vm(#{ name: "h", virt_type: "qemu", pxe: true, hostdevs: ["scsi_host1"] }); }
catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
assert_eq(HOST.find_vm("h"), ());"#,
    )
    .run()
    .ok()
    .stdout_has("hostdevs[0]|scsi_host1|1|hostdevs[0]: is a scsi_host device, not a PCI or USB one");
}

/// `vm.config` shows hostdevs in the spec's map form; `vm.edit` adds (checked
/// against the host), removes and changes them.
#[test]
fn hostdevs_round_trip_through_config_and_edit() {
    let run = on_device_host(
        r#"
let vm = HOST.define_vm(#{ name: "h", virt_type: "qemu", pxe: true, hostdevs: ["pci_0000_01_00_0", "usb_1_3"] });
assert_eq(vm.config.hostdevs, [#{ type: "pci", address: "0000:01:00.0", managed: true },
    #{ type: "usb", vendor: "0x1d6b", product: "0x0002", address: "1.3", managed: true }]);
vm.edit(|cfg| { cfg.hostdevs = [cfg.hostdevs[1], "pci_0000_02_00_0"]; });
assert_eq(vm.config.hostdevs.map(|h| h.address), ["1.3", "0000:02:00.0"]);
vm.edit(|cfg| { cfg.hostdevs[1].managed = false; });
assert(vm.inactive_xml.contains("<hostdev mode='subsystem' type='pci' managed='no'>"), vm.inactive_xml);
try { vm.edit(|cfg| { cfg.hostdevs += ["pci_0000_09_00_0"]; }); print("accepted"); }
catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
assert_eq(vm.config.hostdevs.len(), 2);
vm.edit(|cfg| { cfg.hostdevs = []; });
assert(!vm.inactive_xml.contains("<hostdev"));
print("ok");
"#,
    );
    run.ok()
        .stdout_has("cfg.hostdevs[2]|pci_0000_09_00_0|9|cfg.hostdevs[2]: no node device by this name on the host; did you mean \"pci_0000_01_00_0\"?")
        .stdout_has("ok");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
}

/// On the real daemon: a VM with one of the host's PCI devices is defined
/// (never started: the device is the host's), libvirt keeps the source
/// address and gives the device a guest address, which an edit keeps; a
/// device the host does not have defines nothing.
#[test]
fn live_a_vm_with_a_host_pci_device_is_defined_with_its_hostdev() {
    let uri = crate::support::live_uri();
    let name = crate::support::unique("hostdev");
    let _cleanup = crate::support::VmGuard(vec![uri.clone()], name.clone());
    let run = Script::new(
        r#"let name = ARGS[0];
let dev = HOST.node_devices("pci")[-1];
let spec = #{ name: name, memory: 128, virt_type: "qemu", import: true, networks: [],
    disks: [#{ path: `/var/lib/libvirt/images/${name}.img` }], hostdevs: [dev.name] };
let bad = spec; bad.hostdevs = ["pci_0000_7f_1f_7"];
try { HOST.define_vm(bad); print("accepted"); } catch (e) { print(`${e.field}|${e.value}|${e.line}`); }
assert_eq(HOST.find_vm(name), ());
let vm = HOST.define_vm(spec);
assert_eq(vm.state, "shut off");
assert_eq(vm.config.hostdevs, [#{ type: "pci", address: dev.pci.address, managed: true }]);
vm.edit(|cfg| { cfg.hostdevs[0].managed = false; });
print(dev.pci.address);
"#,
    )
    .connect(&uri)
    .script_arg(&name)
    .run();
    run.ok().stdout_has("hostdevs[0]|pci_0000_7f_1f_7|6\n");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
    let address = run.stdout.lines().last().unwrap().to_owned();
    let (domain, rest) = address.split_once(':').unwrap();
    let (bus, rest) = rest.split_once(':').unwrap();
    let (slot, function) = rest.split_once('.').unwrap();
    let xml = crate::support::virsh(&uri, &["dumpxml", "--inactive", &name]);
    let source = format!(
        "<address domain='0x{domain}' bus='0x{bus}' slot='0x{slot}' function='0x{function}'/>"
    );
    let start = xml
        .find("<hostdev mode='subsystem' type='pci' managed='no'>")
        .unwrap_or_else(|| panic!("{xml}"));
    let hostdev = &xml[start..start + xml[start..].find("</hostdev>").unwrap()];
    assert!(
        hostdev.contains(&format!("<source>\n        {source}\n      </source>")),
        "{hostdev}"
    );
    assert!(
        hostdev.contains("<address type='pci'"),
        "libvirt gave it a guest address: {hostdev}"
    );
    let state = crate::support::virsh(&uri, &["domstate", &name]);
    assert_eq!(state.trim(), "shut off");
}

/// A bad UUID, a multicast MAC and a MAC another VM has: `dry_run`,
/// `define_vm` and `create_vm` refuse them with one message (the field, the
/// value, the line), and nothing is made.
#[test]
fn dry_run_refuses_what_a_define_refuses_with_the_same_message() {
    let run = Script::new(
        r#"HOST.define_vm(#{ name: "owner", virt_type: "qemu", pxe: true, networks: [#{ network: "default", mac: "52:54:00:aa:00:01" }] });
let vols = HOST.pool("default-pool").volumes().len();
for bad in [#{ uuid: "not-a-uuid" }, #{ networks: [#{ network: "default", mac: "01:00:5e:00:00:01" }] },
            #{ networks: [#{ network: "default", mac: "52:54:00:AA:00:01" }] }] {
    bad.mixin(#{ name: "n", virt_type: "qemu", import: true, disks: [#{ pool: "default-pool", size: "1G" }] });
    for how in ["dry_run", "define", "create"] {
        let spec = bad; spec.dry_run = how == "dry_run";
        try { if how == "create" { HOST.create_vm(spec) } else { HOST.define_vm(spec) }; print("accepted"); }
        catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
    }
}
assert_eq(HOST.vms().map(|v| v.name), ["owner", "test"]);
assert_eq(HOST.pool("default-pool").volumes().len(), vols);
"#,
    )
    .run();
    run.ok()
        .stdout_has("uuid|not-a-uuid|8|uuid: not a UUID (like 3e3fce45-4f53-4fa7-bb32-11f34168b82b)")
        .stdout_has("networks[0].mac|01:00:5e:00:00:01|8|networks[0].mac: a multicast MAC address")
        .stdout_has("networks[0].mac|52:54:00:aa:00:01|8|networks[0].mac: VM 'owner' already has an interface with this MAC address");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 9, "{}", run.stdout);
    for three in lines.chunks(3) {
        assert!(three.iter().all(|l| *l == three[0]), "{three:?}");
    }
}

/// `run --plan` rehearses with the host's PCI and USB devices, so a spec
/// with `hostdevs` plans as it would run, and a device the host lacks fails
/// the plan as it would fail the run.
#[test]
fn plan_rehearses_hostdevs_against_the_hosts_devices() {
    let plan = |device: &str| {
        let s = Script::new(&format!(
            r#"HOST.define_vm(#{{ name: "h", virt_type: "qemu", pxe: true, hostdevs: ["{device}", "usb_2_3"] }});"#
        ))
        .file("host.xml", DEVICE_HOST);
        let uri = format!("test://{}/host.xml", s.dir().display());
        s.connect(&uri).arg("--plan").run()
    };
    plan("pci_0000_02_00_0")
        .code(10)
        .stdout_has("+ create domain h")
        .stdout_has("1 to create, 0 to change, 0 to remove");
    let run = plan("pci_0000_02_00_1");
    run.code(1).stderr_has(
        "hostdevs[0]: no node device by this name on the host; did you mean \"pci_0000_02_00_0\"?",
    );
}
