//! Integrity under bad input and faults (issue 19): every refusal names the
//! field, the value as given and the script line, and leaves nothing behind.
use crate::support::Script;

/// Runs `cases` (a Rhai array of spec maps, each with a `name`) through
/// `call` (a Rhai expression of `c`) and returns one line per case:
/// `name|field|value|line`, or `name accepted`.
fn refusals(setup: &str, cases: &str, call: &str, after: &str) -> Vec<String> {
    let script = format!(
        "{setup}\nlet cases = {cases};\nfor c in cases {{\n    try {{ {call}; print(`${{c.name}} accepted`); }} catch (e) {{ print(`${{c.name}}|${{e.field}}|${{e.value}}|${{e.line}}`); print(`  ${{e.message}}`); }}\n}}\n{after}\n"
    );
    let run = Script::new(&script).run();
    run.ok();
    run.stdout
        .lines()
        .filter(|l| !l.starts_with("  "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn network_specs_with_unusable_addresses_names_and_records_are_refused() {
    let lines = refusals(
        "",
        r#"[
  #{ name: "gw-network", ip: "192.168.60.0/24" },
  #{ name: "gw-broadcast", ip: "192.168.60.255/24" },
  #{ name: "gw-multicast", ip: "224.0.0.1/24" },
  #{ name: "gw-loopback", ip: "127.0.0.1/8" },
  #{ name: "gw-zero", ip: "0.0.0.0/24" },
  #{ name: "gw-v6-network", ip: "fd00:5::/64" },
  #{ name: "host-on-gw", ip: "192.168.61.1/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.61.1" }] },
  #{ name: "host-on-0", ip: "192.168.61.1/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.61.0" }] },
  #{ name: "host-on-255", ip: "192.168.61.1/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.61.255" }] },
  #{ name: "host-multicast-mac", ip: "192.168.61.1/24", dhcp_hosts: [#{ mac: "01:00:5e:00:00:01", ip: "192.168.61.5" }] },
  #{ name: "host-name-quote", ip: "192.168.61.1/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.61.5", name: "we'b<&" }] },
  #{ name: "host-name-newline", ip: "192.168.61.1/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.61.5", name: "web\nx" }] },
  #{ name: "range-to-255", ip: "192.168.61.1/24", dhcp: ["192.168.61.2", "192.168.61.255"] },
  #{ name: "nat-pool", forward: #{ mode: "nat", interfaces: ["eth1", "eth2"] }, ip: "192.168.62.1/24" },
  #{ name: "txt-empty", dns: #{ txt: [#{ name: "", value: "x" }] } },
  #{ name: "dns-host-name", dns: #{ hosts: [#{ ip: "10.0.0.5", hostnames: ["not a name"] }] } },
  #{ name: "bad-domain", domain: "a b..c" },
  #{ name: "srv-port", dns: #{ srv: [#{ service: "ldap", protocol: "tcp", port: 70000 }] } },
  #{ name: "cr\rname" },
  #{ name: "bad-uuid", uuid: "nope" },
  #{ name: "bad-mac", mac: "01:00:00:00:00:01" },
]"#,
        "HOST.define_network(c)",
        "assert_eq(HOST.networks().map(|n| n.name), [\"default\"]);",
    );
    assert_eq!(
        lines,
        [
            "gw-network|ip|192.168.60.0/24|26",
            "gw-broadcast|ip|192.168.60.255/24|26",
            "gw-multicast|ip|224.0.0.1/24|26",
            "gw-loopback|ip|127.0.0.1/8|26",
            "gw-zero|ip|0.0.0.0/24|26",
            "gw-v6-network|ip|fd00:5::/64|26",
            "host-on-gw|dhcp_hosts[0].ip|192.168.61.1|26",
            "host-on-0|dhcp_hosts[0].ip|192.168.61.0|26",
            "host-on-255|dhcp_hosts[0].ip|192.168.61.255|26",
            "host-multicast-mac|dhcp_hosts[0].mac|01:00:5e:00:00:01|26",
            "host-name-quote|dhcp_hosts[0].name|we'b<&|26",
            // Control characters show escaped: the value is printed on terminals.
            "host-name-newline|dhcp_hosts[0].name|web\\nx|26",
            "range-to-255|dhcp.end|192.168.61.255|26",
            "nat-pool|forward.interfaces|eth1, eth2|26",
            "txt-empty|dns.txt[0].name||26",
            "dns-host-name|dns.hosts[0].hostnames[0]|not a name|26",
            "bad-domain|domain.name|a b..c|26",
            "srv-port|dns.srv[0].port|70000|26",
            "cr\rname|name|cr\\rname|26",
            "bad-uuid|uuid|nope|26",
            "bad-mac|mac|01:00:00:00:00:01|26",
        ]
        .iter()
        .flat_map(|l| l.split('\n'))
        .collect::<Vec<_>>()
    );
}

#[test]
fn network_refusal_messages_say_what_the_address_is() {
    Script::new(
        r#"
HOST.define_network(#{ name: "x", ip: "192.168.60.0/24" });
"#,
    )
    .run()
    .code(1)
    .stderr_has("ip: the network's own (gateway) address cannot be the network address of 192.168.60.0/24 (the first usable one is 192.168.60.1)")
    .stderr_has("script.rhai:2:6");
    Script::new(
        r#"
HOST.define_network(#{ name: "x", ip: "192.168.61.1/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.61.1" }] });
"#,
    )
    .run()
    .code(1)
    .stderr_has("dhcp_hosts[0].ip: cannot be reserved for a guest: it is the network's own (gateway) address");
}

#[test]
fn ipv6_host_prefixes_work_directly_and_through_net_nat() {
    // A /128 shifted a u128 by 128 bits: a panic in debug builds, /0 in release.
    Script::new(
        r#"
import "net" as net;
let n = HOST.define_network(#{ name: "one", ips: [#{ family: "ipv6", address: "fd00::1", prefix: 128 }] });
assert_eq(n.config.ips[0].prefix, 128);
let r = net::nat(HOST, #{ name: "lab", subnet: "192.168.70.0/24", ipv6: "fd00:1::1/128" });
assert_eq(r.action, "created");
// Neighbouring /128s do not overlap; the same one does.
HOST.define_network(#{ name: "two", ips: [#{ family: "ipv6", address: "fd00::2", prefix: 128 }] });
HOST.define_network(#{ name: "three", ips: [#{ family: "ipv6", address: "fd00::1", prefix: 128 }] });
"#,
    )
    .run()
    .code(1)
    .stderr_has("ips[0].address: overlaps fd00::1/128 of network 'one' (got \"fd00::1/128\")")
    .stderr_has("script.rhai:9:6");
}

#[test]
fn live_updates_check_records_first() {
    Script::new(
        r#"
let net = HOST.network("default");
let bad = [
  || net.add_dns_txt("", "x"),
  || net.add_dns_txt("a b", "x"),
  || net.add_dns_srv(#{ service: "ldap", protocol: "tcp", port: 70000 }),
  || net.add_dns_host(#{ ip: "192.168.122.9", hostnames: ["a<b"] }),
  || net.add_dhcp_host(#{ mac: "52:54:00:00:00:09", ip: "192.168.122.9", name: "a&b" }),
  || net.add_dhcp_host(#{ mac: "01:54:00:00:00:09", ip: "192.168.122.9" }),
  || net.add_dhcp_host(#{ mac: "52:54:00:00:00:09", ip: "192.168.122.1" }),
  || net.add_forward_interface("eth7"),
];
let before = net.xml;
for f in bad {
    try { f.call(); print("accepted"); } catch (e) { print(`${e.field}|${e.value}`); }
}
assert_eq(net.xml, before);
"#,
    )
    .run()
    .ok()
    .stdout_has("dns_txt.name|\n")
    .stdout_has("dns_txt.name|a b\n")
    .stdout_has("dns_srv.port|70000\n")
    .stdout_has("dns_host.hostnames[0]|a<b\n")
    .stdout_has("dhcp_host.name|a&b\n")
    .stdout_has("dhcp_host.mac|01:54:00:00:00:09\n")
    .stdout_has("dhcp_host.ip|192.168.122.1\n")
    .stdout_has("dev|eth7\n");
}

#[test]
fn vm_specs_with_unsafe_names_bad_uuids_and_duplicate_macs_are_refused() {
    let lines = refusals(
        r#"let base = #{ import: true, disks: [#{ pool: "default-pool", size: "1G" }], start: false };
let a = base; a.mixin(#{ name: "a", networks: [#{ network: "default", mac: "52:54:00:00:00:07" }] });
HOST.create_vm(a);"#,
        r#"[
  #{ name: "m-machine", machine: "pc'/><devices>" },
  #{ name: "m-arch", arch: "x86 64" },
  #{ name: "m-cpu", cpu: "Sky<lake" },
  #{ name: "m-uuid", uuid: "not-a-uuid" },
  #{ name: "m-dup", networks: [#{ network: "default", mac: "52:54:00:00:00:01" }, #{ network: "default", mac: "52:54:00:00:00:01" }] },
  #{ name: "m-other", networks: [#{ network: "default", mac: "52:54:00:00:00:07" }] },
  #{ name: "m-multicast", networks: [#{ network: "default", mac: "01:54:00:00:00:01" }] },
  #{ name: "m-model", networks: [#{ network: "default", model: "virtio'x" }] },
  #{ name: "m-8e", memory: "8E" },
  #{ name: "m-tiny", memory: "0.0000001K" },
  #{ name: "m-small", memory: "1K" },
]"#,
        "let s = base; s.mixin(c); HOST.create_vm(s)",
        r#"assert_eq(HOST.vms().map(|v| v.name), ["a", "test"]);
assert_eq(HOST.pool("default-pool").volumes().map(|v| v.name), ["a.qcow2"]);"#,
    );
    assert_eq!(
        lines,
        [
            "m-machine|machine|pc'/><devices>|18",
            "m-arch|arch|x86 64|18",
            "m-cpu|cpu|Sky<lake|18",
            "m-uuid|uuid|not-a-uuid|18",
            "m-dup|networks[1].mac|52:54:00:00:00:01|18",
            "m-other|networks[0].mac|52:54:00:00:00:07|18",
            "m-multicast|networks[0].mac|01:54:00:00:00:01|18",
            "m-model|networks[0].model|virtio'x|18",
            "m-8e|memory|8E|18",
            "m-tiny|memory|0.0000001K|18",
            "m-small|memory|1K|18",
        ]
    );
    Script::new(
        r#"
HOST.create_vm(#{ name: "b", import: true, disks: [#{ pool: "default-pool", size: "1G" }], start: false,
                  networks: [#{ network: "default", mac: "52:54:00:00:00:08" }] });
HOST.create_vm(#{ name: "c", import: true, disks: [#{ pool: "default-pool", size: "1G" }], start: false,
                  networks: [#{ network: "default", mac: "52:54:00:00:00:08" }] });
"#,
    )
    .run()
    .code(1)
    .stderr_has("networks[0].mac: VM 'b' already has an interface with this MAC address (got \"52:54:00:00:00:08\")")
    .stderr_has("script.rhai:4:6");
}

#[test]
fn sizes_are_reported_as_given() {
    Script::new(
        r#"
let p = HOST.pool("default-pool");
for c in ["8E", "0.0000001K", "15.99E"] {
    try { p.create_volume(#{ name: "v.qcow2", capacity: c, format: "qcow2" }); print("accepted"); }
    catch (e) { print(`${e.field}|${e.value}|${e.line}|${e.message}`); }
}
assert_eq(p.volumes(), []);
"#,
    )
    .run()
    .ok()
    .stdout_has(
        "capacity|8E|4|capacity: too large: sizes go up to just under 8E (8 EiB, libvirt's limit)",
    )
    .stdout_has("capacity|0.0000001K|4|capacity: less than one byte (it would round to 0)")
    .stdout_has("capacity|15.99E|4|");
    Script::new(
        r#"
import "lab" as lab;
HOST.pool("default-pool").create_volume(#{ name: "golden.qcow2", capacity: "1G", format: "qcow2" });
lab::up(HOST, #{ name: "demo", subnet: "192.168.50.0/24", base: "golden.qcow2", pool: "default-pool", count: 1, memory: "8E" });
"#,
    )
    .run()
    .code(1)
    .stderr_has("lab::up: memory: too large")
    .stderr_has("(got \"8E\")")
    .stderr_has("script.rhai:4:");
}

#[test]
fn errors_use_no_rust_words() {
    let run = Script::new(
        r#"
let cases = [
  || HOST.define_network(#{ name: "a", dhcp: "x" }),
  || HOST.define_network(#{ name: "a", mtu: -1 }),
  || HOST.define_network(#{ name: "a", dhcp_hosts: [1] }),
  || HOST.network("a\x00b"),
  || HOST.pool("a\x00b"),
  || HOST.vm("a\x00b"),
];
for f in cases {
    try { f.call(); print("accepted"); } catch (e) { print(`${e.field}|${e.message}`); }
}
"#,
    )
    .run();
    run.ok()
        .stdout_has("dhcp|dhcp: expected an array [ ... ], got a string (got \"x\")")
        .stdout_has("mtu|mtu: expected a whole number from 0 to 4294967295, got -1 (got \"-1\")")
        .stdout_has("dhcp_hosts|dhcp_hosts: expected a map #{ ... }, got a whole number")
        .stdout_has("name|name: must not contain control characters (U+0000 (a control character)) (got \"a\\\\0b\")")
        .stdout_has("a name or text contains a NUL character (\\0), which libvirt cannot take");
    for rust in ["alloc::", "u32", "CString", "Vec<", "expected Map"] {
        assert!(!run.stdout.contains(rust), "{rust} in:\n{}", run.stdout);
    }
    Script::new("let a = [1];\nlet f = || a.push(2);\na.map(|x| f.call());\n")
        .run()
        .code(1)
        .stderr_has(
            "error: a closure changed a variable while the call it runs in was still using it",
        )
        .stderr_has("script.rhai:3:");
}

#[test]
fn ensure_network_undoes_its_own_live_updates_when_a_later_one_fails() {
    // libvirt refuses the second reservation (an `id` on an IPv4 network):
    // the first, already applied, is taken back, and the error names both.
    Script::new(
        r#"
let spec = #{ name: "lab", ip: "192.168.10.1/24", dhcp: ["192.168.10.2", "192.168.10.99"] };
HOST.ensure_network(spec);
let before = HOST.network("lab").xml;
spec.dhcp_hosts = [#{ mac: "52:54:00:00:00:10", ip: "192.168.10.110", name: "web" },
                   #{ id: "0:1:0:1:2", ip: "192.168.10.111" }];
try {
    HOST.ensure_network(spec);
    print("accepted");
} catch (e) {
    print(`${e.field}|${e.value}|${e.line}`);
    print(e.rolled_back);
}
assert_eq(HOST.network("lab").xml, before);
"#,
    )
    .run()
    .ok()
    .stdout_has("dhcp_host|<host id='0:1:0:1:2' ip='192.168.10.111'/>|8\n")
    .stdout_has("[\"update_network network lab: DHCP host 52:54:00:00:00:10 added\"]");
}

#[test]
fn transactions_restart_destroyed_vms_and_list_deleted_volumes_as_irreversible() {
    Script::new(
        r#"
let vm = HOST.vm("test");
let v = HOST.pool("default-pool").create_volume(#{ name: "scratch.img", capacity: "1M" });
try {
    transaction(|| { vm.destroy(); v.delete(); throw "a later step failed"; });
} catch (e) {
    print(e.message);
    assert_eq(e.rolled_back, ["destroy_vm vm test"]);
    assert_eq(e.irreversible, ["delete_volume volume default-pool/scratch.img"]);
    assert_eq(e.rollback_failed, ["delete_volume volume default-pool/scratch.img: cannot be undone"]);
}
assert_eq(vm.state, "running");
"#,
    )
    .run()
    .ok()
    .stdout_has("a later step failed (FAILED to roll back: delete_volume volume default-pool/scratch.img: cannot be undone; rolled back: destroy_vm vm test)");
    // --atomic: the report lists it too.
    let run = Script::new(
        r#"
HOST.vm("test").destroy();
HOST.pool("default-pool").create_volume(#{ name: "gone.img", capacity: "1M" }).delete();
throw "stop";
"#,
    )
    .arg("--atomic")
    .arg("--json")
    .run();
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("delete_volume volume default-pool/gone.img: cannot be undone")
            || run
                .stderr
                .contains("delete_volume volume default-pool/gone.img: cannot be undone"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_volume_that_is_a_vms_disk_is_not_deleted_without_force() {
    Script::new(
        r#"
let pool = HOST.pool("default-pool");
let disk = pool.create_volume(#{ name: "d.qcow2", capacity: "1G", format: "qcow2" });
HOST.create_vm(#{ name: "user", import: true, disks: [#{ volume: disk }], start: false });
try {
    disk.delete();
    print("deleted");
} catch (e) {
    print(`${e.kind}|${e.field}|${e.value}|${e.line}|${e.vms}`);
    print(e.message);
}
assert(pool.find_volume("d.qcow2") != ());
disk.delete(#{ force: true });
assert(pool.find_volume("d.qcow2") == ());
"#,
    )
    .run()
    .ok()
    .stdout_has("in_use|volume|default-pool/d.qcow2|6|[\"user\"]")
    .stdout_has("cannot delete default-pool/d.qcow2: it is a disk of VM 'user'");
}

#[test]
fn recipes_undo_their_steps_when_a_later_one_fails() {
    // The base image upload fails (the test driver cannot upload) after the
    // network exists: the network and the volume made for the upload go.
    Script::new(
        r#"
import "lab" as lab;
import "storage" as storage;
let pool = HOST.pool("default-pool");
pool.create_volume(#{ name: "golden.qcow2", capacity: "1G", format: "qcow2" });
try {
    lab::up(HOST, #{ name: "demo", subnet: "192.168.50.0/24", base: "./script.rhai", pool: "default-pool",
                     count: 2, vm: #{ virt_type: "qemu" } });
    print("accepted");
} catch (e) {
    print(e.rolled_back);
}
assert_eq(HOST.networks().map(|n| n.name), ["default"]);
assert_eq(HOST.vms().map(|v| v.name), ["test"]);
assert_eq(pool.volumes().map(|v| v.name), ["golden.qcow2"]);
// A bad `vm` key is refused before anything is made.
let n = mutation_count();
try {
    lab::up(HOST, #{ name: "demo", subnet: "192.168.50.0/24", base: "golden.qcow2", pool: "default-pool",
                     count: 2, vm: #{ virt_type: "qemu", uuid: "00000000-0000-0000-0000-00000000000x" } });
} catch (e) {
    print(`${e.field}|${e.value}`);
}
assert_eq(mutation_count(), n);
// The test driver cannot upload: the volume made for the upload goes again.
try {
    storage::image(HOST, #{ pool: "default-pool", file: "script.rhai", name: "img.raw" });
} catch (e) {
    print(e.rolled_back);
}
assert_eq(pool.volumes().map(|v| v.name), ["golden.qcow2"]);
"#,
    )
    .run()
    .ok()
    .stdout_has("vm.uuid|00000000-0000-0000-0000-00000000000x\n")
    .stdout_has("\"define_network network demo\"")
    .stdout_has("[\"create_volume volume default-pool/img.raw\"]");
}

#[test]
fn metadata_takes_one_element_in_a_real_namespace() {
    Script::new(
        r#"
let net = HOST.define_network(#{ name: "tagged", ip: "192.168.40.1/24" });
let vm = HOST.vm("test");
for c in [["https://e.org/a", "<a/><b/>"], ["", "<x/>"], ["nope", "<x/>"]] {
    for target in [net, vm] {
        try { target.set_metadata(c[0], c[1]); print("stored"); }
        catch (e) { print(`${e.field}|${e.value}|${e.line}`); }
    }
}
assert(net.metadata("https://e.org/a") == ());
assert(!net.xml_inactive.contains("<metadata"));
"#,
    )
    .run()
    .ok()
    .stdout_has("xml|<a/><b/>|6\nxml|<a/><b/>|6\n")
    .stdout_has("ns_uri||6\nns_uri||6\n")
    .stdout_has("ns_uri|nope|6\nns_uri|nope|6\n");
}

#[test]
fn changes_a_running_network_did_not_take_are_errors() {
    // The test driver keeps no separate persistent config of a running
    // network: what is redefined is dropped, and read back, that is said.
    Script::new(
        r#"
let net = HOST.network("default");
let before = net.xml;
for f in [|| net.set_metadata("https://e.org/a", "<a/>"), || net.edit(|c| c.mtu = 9000)] {
    try { print(f.call()); } catch (e) { print(`${e.kind}|${e.field}|${e.value}`); }
}
assert_eq(net.xml, before);
"#,
    )
    .run()
    .ok()
    .stdout_has("not_applied|metadata|https://e.org/a\n")
    .stdout_has("not_applied|mtu|default\n");
}

#[test]
fn live_running_network_metadata_and_redefinition_read_back() {
    let uri = crate::support::live_uri();
    let name = crate::support::unique("rb");
    let run = Script::new(&format!(
        r#"
let spec = #{{ name: "{name}", ip: "10.219.7.1/24" }};
let net = HOST.ensure_network(spec).network;
assert(net.active);
assert(net.set_metadata("https://e.org/a", "<a v='1'/>"));
assert_eq(net.metadata("https://e.org/a"), "<a v='1'/>");
assert(net.edit(|c| c.mtu = 9000));   // running: needs a restart
assert(net.xml_inactive.contains("<mtu size='9000'/>"));
spec.mtu = 9000;
spec.restart = true;
assert_eq(HOST.ensure_network(spec).changes, []);
net.restart();
assert(net.xml.contains("<mtu size='9000'/>"));
net.stop();
net.undefine();
"#
    ))
    .connect(&uri)
    .run();
    let _ = crate::support::virsh_try(&uri, &["net-destroy", &name]);
    let _ = crate::support::virsh_try(&uri, &["net-undefine", &name]);
    run.ok();
}

#[test]
fn control_characters_in_names_are_refused_not_changed() {
    Script::new(
        r#"
for f in [|| HOST.ensure_network(#{ name: "lab\r", ip: "192.168.80.1/24" }),
          || HOST.pool("default-pool").create_volume(#{ name: "v\r.img", capacity: "1M" }),
          || HOST.ensure_network(#{ name: "lab", ip: "192.168.80.1/24",
                                    dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.80.5", name: "a\nb" }] })] {
    try { f.call(); print("accepted"); } catch (e) { print(`${e.field}|${e.value}|${e.line}`); }
}
assert_eq(HOST.networks().map(|n| n.name), ["default"]);
assert_eq(HOST.pool("default-pool").volumes(), []);
"#,
    )
    .run()
    .ok()
    .stdout_has("name|lab\\r|2\n")
    .stdout_has("name|v\\r.img|3\n")
    .stdout_has("dhcp_hosts[0].name|a\\nb|4\n");
}

#[test]
fn size_limits_hold_per_container_for_every_way_of_growing_it() {
    let over = |script: &str, flag: &str, message: &str| {
        Script::new(script)
            .arg(flag)
            .arg("1000")
            .run()
            .code(1)
            .stderr_has(message)
            .stderr_has("script.rhai:1:");
    };
    over(
        "let a = []; for i in 0..1001 { a.push(i); }",
        "--max-array-size",
        "Size of array/BLOB too large",
    );
    over(
        "let a = []; for i in 0..1001 { a += i; }",
        "--max-array-size",
        "Size of array/BLOB too large",
    );
    over(
        "let a = [[]]; for i in 0..1001 { a[0].push(i); }",
        "--max-array-size",
        "Size of array/BLOB too large",
    );
    over(
        "let m = #{}; for i in 0..1001 { m[`k${i}`] = i; }",
        "--max-map-size",
        "Size of object map too large",
    );
    over(
        "let s = \"\"; for i in 0..1001 { s += \"x\"; }",
        "--max-string-size",
        "Length of string too large",
    );
    // Exactly at the limit is fine.
    Script::new("let a = []; for i in 0..1000 { a.push(i); } let m = #{}; for i in 0..1000 { m[`k${i}`] = i; } print(`${a.len()} ${m.len()}`);")
        .arg("--max-array-size")
        .arg("1000")
        .arg("--max-map-size")
        .arg("1000")
        .run()
        .ok()
        .stdout_has("1000 1000");
}

#[test]
fn the_default_array_limit_is_within_reach() {
    // Each push used to re-measure the whole array: a million pushes (the
    // default limit) were O(n^2), hours; now each check is O(1).
    Script::new("let a = []; for i in 0..1000000 { a.push(i); } print(a.len()); a.push(0);")
        .run()
        .code(1)
        .stdout_has("1000000\n")
        .stderr_has("Size of array/BLOB too large")
        .stderr_has("script.rhai:1:");
}

#[test]
fn live_machine_types_are_checked_against_the_hosts_capabilities() {
    let uri = crate::support::live_uri();
    let name = crate::support::unique("mach");
    Script::new(&format!(
        r#"let spec = #{{ name: "{name}", virt_type: "qemu", arch: "x86_64", import: true, dry_run: true,
             disks: [#{{ path: "/dev/null" }}], allow_path: true }};
spec.machine = "q35";
HOST.create_vm(spec);
spec.machine = "q36";
HOST.create_vm(spec);
"#
    ))
    .connect(&uri)
    .run()
    .code(1)
    .stderr_has("machine: not a machine type of x86_64 on this host; did you mean \"q35\"?")
    .stderr_has("(got \"q36\")")
    .stderr_has("script.rhai:6:6");
}
