//! Virtual networks: the script API on the embedded driver, and the real
//! daemon for the seed workflow, the four kinds of network and live updates.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{ifname, live_uri, netns_ifindex, unique, virsh, virsh_try, Script};

#[test]
fn networks_lookup_and_missing_network_error_names_it() {
    Script::new(
        r#"
let all = HOST.networks();
assert_eq(all.len(), 1);
print(all[0]);
assert(HOST.find_network("nope") == ());
HOST.network("nope");
"#,
    )
    .run()
    .code(1)
    .stdout_has("Network(default, active)")
    .stderr_has("no network named 'nope' on test:///default")
    .stderr_has("script.rhai:6:6");
}

#[test]
fn define_start_info_config_and_json() {
    let run = Script::new(
        r#"
let net = HOST.define_network(#{
    name: "lab", forward: "nat", bridge: #{ name: "virbr10", stp: true, delay: 0 },
    ip: "192.168.10.1/24", dhcp: ["192.168.10.2", "192.168.10.254"],
    dhcp_hosts: [#{ mac: "52:54:00:AA:00:01", ip: "192.168.10.5", name: "web" }],
    domain: "lab.example", mtu: 9000, autostart: true,
});
assert(!net.active);
net.start();
let i = net.info();
assert(i.active && i.persistent && i.autostart);
assert_eq(i.bridge, "virbr10");
let c = net.config;
assert_eq(c.forward.mode, "nat");
assert_eq(c.bridge.stp, true);
assert_eq(c.ips[0].prefix, 24);
assert_eq(c.ips[0].dhcp.hosts[0].mac, "52:54:00:aa:00:01");
assert_eq(c.domain.name, "lab.example");
assert_eq(c.mtu, 9000);
print(net.xml);
net.stop();
net.undefine();
assert(HOST.find_network("lab") == ());
HOST.define_network(#{ name: "iso", ip: "10.9.0.1/24" })
"#,
    )
    .arg("--json")
    .run();
    // With --json, print goes to stderr and stdout is the one JSON value.
    run.ok()
        .stderr_has("<forward mode='nat'/>")
        .stderr_has("<bridge name='virbr10' stp='on' delay='0'/>")
        .stderr_has("<mtu size='9000'/>")
        .stderr_has("<domain name='lab.example'/>")
        .stderr_has("<host mac='52:54:00:aa:00:01' name='web' ip='192.168.10.5'/>")
        .stdout_has(r#""type": "Network""#)
        .stdout_has(r#""name": "iso""#);
    assert!(!run.stderr.contains("<forward mode='nat'/>\n  <forward"));
}

#[test]
fn transient_network_and_full_forms() {
    Script::new(
        r#"
let net = HOST.create_network(#{
    name: "v6", forward: #{ mode: "route", dev: "eth1" },
    ips: [#{ family: "ipv6", address: "2001:db8:ca2:2::1", prefix: 64,
             dhcp: #{ ranges: [#{ start: "2001:db8:ca2:2::100", end: "2001:db8:ca2:2::1ff" }] } }],
    dns: #{ txt: [#{ name: "a", value: "b" }], forwarders: [#{ addr: "8.8.8.8" }] },
    portgroups: [#{ name: "web", is_default: true, vlan: #{ tags: [#{ id: 42 }] } }],
});
assert(net.active && !net.persistent);
let x = net.xml;
assert_eq(net.config.forward.mode, "route");
assert_eq(net.config.forward.dev, "eth1");
assert(x.contains("<ip family='ipv6' address='2001:db8:ca2:2::1' prefix='64'>"));
assert(x.contains("<portgroup name='web' default='yes'>"));
assert(x.contains("<tag id='42'/>"));
net.stop();
assert(HOST.find_network("v6") == ());
"#,
    )
    .run()
    .ok();
}

/// Each bad spec: the error names field and value at the calling line, and
/// nothing was created.
#[test]
fn validation_errors_name_field_value_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"ip: "192.168.300.1/24""#, "ip", "192.168.300.1/24"),
        (r#"ip: "192.168.10.1/33""#, "ip", "192.168.10.1/33"),
        (
            r#"ips: [#{ address: "10.1.0.1", netmask: "255.255.255.0", prefix: 24 }]"#,
            "ips[0].prefix",
            "24",
        ),
        (
            r#"ips: [#{ address: "10.1.0.1", netmask: "255.0.255.0" }]"#,
            "ips[0].netmask",
            "255.0.255.0",
        ),
        (
            r#"ip: "192.168.10.1/24", dhcp: ["192.168.10.2", "192.168.11.254"]"#,
            "dhcp.end",
            "192.168.11.254",
        ),
        (
            r#"ip: "192.168.10.1/24", dhcp: ["192.168.10.200", "192.168.10.2"]"#,
            "dhcp",
            "192.168.10.200-192.168.10.2",
        ),
        (
            r#"ip: "192.168.10.1/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "192.168.12.9" }]"#,
            "dhcp_hosts[0].ip",
            "192.168.12.9",
        ),
        (
            r#"ip: "192.168.10.1/24", dhcp_hosts: [#{ mac: "52:54:zz:00:00:01", ip: "192.168.10.9" }]"#,
            "dhcp_hosts[0].mac",
            "52:54:zz:00:00:01",
        ),
        // An overlap names the value as written, not its network address.
        (r#"ip: "192.168.122.77/24""#, "ip", "192.168.122.77/24"),
        (r#"ip: "192.168.0.1/16""#, "ip", "192.168.0.1/16"),
        (
            r#"bridge: "virbr-far-too-long""#,
            "bridge.name",
            "virbr-far-too-long",
        ),
        (r#"bridge: "virbr0""#, "bridge.name", "virbr0"),
        (r#"forward: "sideways""#, "forward.mode", "sideways"),
        (r#"mtu: "big""#, "mtu", "big"),
        (r#"colour: "blue""#, "colour", "blue"),
    ];
    for (spec, field, value) in cases {
        let script = format!(
            "let before = HOST.networks().len();\ntry {{\n    HOST.define_network(#{{ name: \"bad\", {spec} }});\n}} catch (e) {{\n    print(`${{e.field}}|${{e.value}}|${{e.source}}:${{e.line}}:${{e.column}}`);\n    print(e.message);\n}}\nassert_eq(HOST.networks().len(), before);\n"
        );
        let run = Script::new(&script).run();
        run.ok()
            .stdout_has(&format!("{field}|{value}|script.rhai:3:10"));
    }
    // The name of an existing network, and the uncaught form with its caret.
    Script::new("let x = 1;\nHOST.define_network(#{ name: \"default\", ip: \"10.7.0.1/24\" });\n")
        .run()
        .code(1)
        .stderr_has("name: a network with this name already exists on test:///default (use ensure_network or edit to change it) (got \"default\")")
        .stderr_has(" --> script.rhai:2:6")
        .stderr_has("  |      ^");
    Script::new("HOST.define_network_xml(\"<network><name>x</name><ip address='10.1.1.1' prefix='24'><dhcp><range start='10.1.1.9' end='10.1.2.9'/></dhcp></ip></network>\");")
        .run()
        .code(1)
        .stderr_has("ips[0].dhcp.ranges[0].end: outside the subnet 10.1.1.0/24 (got \"10.1.2.9\")");
}

#[test]
fn ensure_network_is_idempotent_and_makes_the_smallest_change() {
    Script::new(
        r#"
let spec = #{ name: "lab", forward: "nat", bridge: "virbr10", ip: "192.168.10.1/24",
              dhcp: ["192.168.10.2", "192.168.10.254"], autostart: true };
let r = HOST.ensure_network(spec);
assert_eq(r.action, "created");
assert_eq(r.changes, ["defined", "autostart on", "started"]);
assert(r.network.active && r.network.autostart);

// Same spec again: nothing changes and no mutating call is made.
let n = mutation_count();
let r = HOST.ensure_network(spec);
assert_eq(r.action, "unchanged");
assert_eq(r.changes, []);
assert_eq(mutation_count(), n);

// A DHCP host: one live update, no restart.
spec.dhcp_hosts = [#{ mac: "52:54:00:00:00:10", ip: "192.168.10.10", name: "web" }];
let r = HOST.ensure_network(spec);
assert_eq(r.action, "updated");
assert_eq(r.changes, ["DHCP host 52:54:00:00:00:10 added"]);
assert_eq(mutation_count(), n + 1);
assert(!r.restart_needed);
let n = mutation_count();
assert_eq(HOST.ensure_network(spec).action, "unchanged");
assert_eq(mutation_count(), n);

// A bridge change needs a redefinition. The test driver keeps no separate
// config of a running network and drops it: read back, that is an error, not
// "updated" (live_ensure_network_restart shows it taking on the daemon).
spec.bridge = #{ name: "virbr10", stp: false };
try {
    HOST.ensure_network(spec);
    print("accepted");
} catch (e) {
    print(`${e.kind}|${e.field}|${e.value}`);
}
assert_eq(HOST.network("lab").config.bridge.stp, true);
spec.remove("bridge");

// Bad specs fail before anything happens.
let n = mutation_count();
try { HOST.ensure_network(#{ name: "lab", ip: "192.168.122.1/24" }); } catch (e) { print(e.message); }
assert_eq(mutation_count(), n);
"#,
    )
    .run()
    .ok()
    .stdout_has("not_applied|bridge|lab\n")
    .stdout_has("ip: overlaps 192.168.122.0/24 of network 'default'");
}

/// The longest prefixes are one address (libvirt 9 defines and starts an
/// IPv6 /128, with or without DHCP): no shift past the address width, and the
/// overlap check still sees a /128 inside a /64 and a /32 inside a /24.
#[test]
fn single_address_subnets_define_and_clash_by_their_block() {
    let run = Script::new(
        r#"
let v6 = HOST.define_network(#{ name: "v6", ip: "fd00::1/128" });
assert(v6.xml.contains("<ip family='ipv6' address='fd00::1' prefix='128'>"));
let dhcp = HOST.define_network(#{ name: "v6dhcp", ip: "fd00:2::1/128",
                                  dhcp: ["fd00:2::1", "fd00:2::1"] });
assert(dhcp.xml.contains("<range start='fd00:2::1' end='fd00:2::1'/>"));
HOST.define_network(#{ name: "v4", ip: "10.77.0.9/32" });
for spec in [#{ name: "wide6", ip: "fd00::5/64" }, #{ name: "same6", ip: "fd00::1/128" },
             #{ name: "wide4", ip: "10.77.0.1/24" }] {
    try { HOST.define_network(spec); print("accepted"); }
    catch (e) { print(`${e.kind}|${e.field}|${e.value}|${e.message}`); }
}
"#,
    )
    .run();
    run.ok()
        .stdout_has("invalid|ip|fd00::5/64|ip: overlaps fd00::1/128 of network 'v6'")
        .stdout_has("invalid|ip|fd00::1/128|ip: overlaps fd00::1/128 of network 'v6'")
        .stdout_has("invalid|ip|10.77.0.1/24|ip: overlaps 10.77.0.9/32 of network 'v4'");
    assert!(!run.stdout.contains("accepted"), "{}", run.stdout);
}

#[test]
fn live_update_conflicts_are_clear_errors() {
    Script::new(
        r#"
let net = HOST.network("default");
assert(net.add_dhcp_host(#{ mac: "52:54:00:00:00:01", ip: "192.168.122.10" }));
assert(!net.add_dhcp_host(#{ mac: "52:54:00:00:00:01", ip: "192.168.122.10" }));
let errors = [];
for h in [#{ mac: "52:54:00:00:00:01", ip: "192.168.122.11" },
          #{ mac: "52:54:00:00:00:02", ip: "192.168.122.10" },
          #{ mac: "52:54:00:00:00:03", ip: "10.0.0.3" }] {
    try { net.add_dhcp_host(h); } catch (e) { errors.push(`${e.field}=${e.value}: ${e.message}`); }
}
for e in errors { print(e); }
assert_eq(errors.len(), 3);
try { net.add_dhcp_range("192.168.122.100", "192.168.123.1"); } catch (e) { print(e.message); }
try { net.add_dns_txt("a", "1"); net.add_dns_txt("a", "2"); } catch (e) { print(e.message); }
"#,
    )
    .run()
    .ok()
    .stdout_has("dhcp_host.mac=52:54:00:00:00:01: dhcp_host.mac: already reserved on network 'default'")
    .stdout_has("dhcp_host.ip=192.168.122.10: dhcp_host.ip: already reserved for 52:54:00:00:00:01")
    .stdout_has("dhcp_host.ip=10.0.0.3: dhcp_host.ip: outside every subnet of network 'default' (192.168.122.0/24)")
    .stdout_has("dhcp_range.end: outside the subnet 192.168.122.0/24 (got \"192.168.123.1\")")
    .stdout_has("dns_txt.name: already has the value \"1\"");
}

#[test]
fn edit_keeps_unmodelled_xml_and_reports_restart() {
    Script::new(
        r#"
let net = HOST.define_network_xml(`<network>
  <name>ed</name>
  <bridge name='vbred0' zone='trusted'/>
  <metadata><app:x xmlns:app='urn:app'>keep me</app:x></metadata>
  <ip address='10.20.0.1' prefix='24'><dhcp><range start='10.20.0.2' end='10.20.0.9'/></dhcp></ip>
</network>`);
assert(!net.edit(|cfg| { cfg.ips[0].dhcp.ranges[0].end = "10.20.0.99"; }));
let x = net.xml_inactive;
assert(x.contains("end='10.20.0.99'"));
assert(x.contains("keep me"));
assert(x.contains("zone='trusted'"));
// No change, no call.
let n = mutation_count();
assert(!net.edit(|cfg| {}));
assert_eq(mutation_count(), n);
try { net.edit(|cfg| { cfg.ips[0].dhcp.ranges[0].end = "10.21.0.1"; }); } catch (e) { print(e.message); }
try { net.edit(|cfg| { cfg.colour = 1; }); } catch (e) { print(e.message); }
"#,
    )
    .run()
    .ok()
    .stdout_has("ips[0].dhcp.ranges[0].end: outside the subnet 10.20.0.0/24 (got \"10.21.0.1\")")
    .stdout_has("colour: unknown key in network config");
}

// ---------------------------------------------------------------------------
// The real daemon
// ---------------------------------------------------------------------------

/// A third octet that differs between test runs (leftovers never collide).
fn octet() -> u32 {
    std::process::id() % 250 + 1
}

fn netns(args: &[&str]) {
    let status = Command::new("ip")
        .args(["netns", "exec", "virtscript", "ip"])
        .args(args)
        .status()
        .expect("ip runs");
    assert!(status.success(), "ip {args:?}");
}

fn cleanup(uri: &str, name: &str) {
    let _ = virsh_try(uri, &["net-destroy", name]);
    let _ = virsh_try(uri, &["net-undefine", name]);
}

/// The seed workflow in one script. At each step the script prints `STEP x`
/// and waits until the test has checked the state with virsh and acknowledged
/// it by creating a small transient network `<name>-ack-x`.
#[test]
fn live_seed_workflow_seen_by_virsh() {
    let uri = live_uri();
    let name = unique("seed");
    let bridge = ifname("sd");
    let o = octet();
    let script = format!(
        r#"
fn step(what) {{
    print(`STEP ${{what}}`);
    let ack = `${{ARGS[0]}}-ack-${{what}}`;
    while HOST.find_network(ack) == () {{ sleep(0.05); }}
    HOST.network(ack).stop();
}}
print(HOST.networks().map(|n| n.name));
let net = HOST.define_network(#{{
    name: ARGS[0], forward: "nat",
    bridge: #{{ name: "{bridge}", stp: true, delay: 0 }},
    ip: "10.210.{o}.1/24", dhcp: ["10.210.{o}.2", "10.210.{o}.254"],
}});
step("defined");
net.start();
step("started");
net.autostart = true;
step("autostart");
print(net.info());
print(net.xml);
let restart = net.edit(|cfg| {{ cfg.ips[0].dhcp.ranges[0].start = "10.210.{o}.100"; }});
print(`restart needed: ${{restart}}`);
step("edited");
net.stop();
step("stopped");
net.undefine();
step("undefined");
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.rhai");
    std::fs::write(&path, script).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .args([
            "run",
            path.to_str().unwrap(),
            "-c",
            &uri,
            "--timeout",
            "120s",
            "--",
        ])
        .arg(&name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    let mut steps = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        let Some(step) = line.strip_prefix("STEP ") else {
            continue;
        };
        steps.push(step.to_owned());
        let info = virsh_try(&uri, &["net-info", &name]);
        match step {
            "defined" => {
                assert!(info.1.contains("Active:         no"), "{}", info.1);
                assert!(info.1.contains("Persistent:     yes"), "{}", info.1);
                let xml = virsh(&uri, &["net-dumpxml", &name]);
                assert!(
                    xml.contains(&format!("<bridge name='{bridge}' stp='on' delay='0'/>")),
                    "{xml}"
                );
                assert!(
                    xml.contains(&format!(
                        "<range start='10.210.{o}.2' end='10.210.{o}.254'/>"
                    )),
                    "{xml}"
                );
            }
            "started" => assert!(info.1.contains("Active:         yes"), "{}", info.1),
            "autostart" => assert!(info.1.contains("Autostart:      yes"), "{}", info.1),
            "edited" => {
                let xml = virsh(&uri, &["net-dumpxml", "--inactive", &name]);
                assert!(
                    xml.contains(&format!("<range start='10.210.{o}.100'")),
                    "{xml}"
                );
                let live = virsh(&uri, &["net-dumpxml", &name]);
                assert!(
                    live.contains(&format!("<range start='10.210.{o}.2'")),
                    "{live}"
                );
            }
            "stopped" => assert!(info.1.contains("Active:         no"), "{}", info.1),
            "undefined" => assert!(!info.0, "still there: {}", info.1),
            other => panic!("unexpected step {other}"),
        }
        let ack = format!("{name}-ack-{step}");
        let ack_xml = dir.path().join("ack.xml");
        std::fs::write(&ack_xml, format!("<network><name>{ack}</name></network>")).unwrap();
        virsh(&uri, &["net-create", ack_xml.to_str().unwrap()]);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    cleanup(&uri, &name);
    assert!(status.success(), "{seen}\n{stderr}");
    assert_eq!(
        steps,
        [
            "defined",
            "started",
            "autostart",
            "edited",
            "stopped",
            "undefined"
        ]
    );
    assert!(seen.contains(r#""autostart": true"#), "{seen}");
    assert!(seen.contains("restart needed: true"), "{seen}");
    assert!(seen.contains("<forward mode='nat'>"), "{seen}");
}

/// NAT, routed, isolated and host-bridge networks, each from a map, started.
#[test]
fn live_four_kinds_of_network() {
    let uri = live_uri();
    let o = octet();
    let nic = ifname("nic");
    let hostbr = ifname("hbr");
    // The kernel here has no `dummy` module: a veth pair is the NIC to route through.
    let peer = format!("{nic}p");
    netns(&["link", "add", &nic, "type", "veth", "peer", "name", &peer]);
    netns(&["link", "set", &nic, "up"]);
    netns(&["link", "add", &hostbr, "type", "bridge"]);
    netns(&["link", "set", &hostbr, "up"]);
    let names: Vec<String> = ["nat", "routed", "iso", "hbr"]
        .iter()
        .map(|k| unique(k))
        .collect();
    let run = Script::new(&format!(
        r#"
let specs = [
    #{{ name: "{0}", forward: "nat", bridge: "{4}", ip: "10.211.{o}.1/24",
        dhcp: ["10.211.{o}.2", "10.211.{o}.254"] }},
    #{{ name: "{1}", forward: #{{ mode: "route", dev: "{nic}" }}, bridge: "{5}",
        ip: "10.212.{o}.1/24" }},
    #{{ name: "{2}", bridge: "{6}", ip: "10.213.{o}.1/24" }},
    #{{ name: "{3}", forward: "bridge", bridge: "{hostbr}" }},
];
for s in specs {{
    let net = HOST.define_network(s);
    net.start();
    assert(net.active);
    print(`${{net.name}} ${{net.config.forward?.mode ?? "isolated"}} ${{net.bridge}}`);
}}
"#,
        names[0],
        names[1],
        names[2],
        names[3],
        ifname("bn"),
        ifname("br"),
        ifname("bi"),
    ))
    .connect(&uri)
    .run();
    let list = virsh(&uri, &["net-list", "--all"]);
    for n in &names {
        cleanup(&uri, n);
    }
    netns(&["link", "del", &nic]);
    netns(&["link", "del", &hostbr]);
    run.ok()
        .stdout_has(&format!("{} nat", names[0]))
        .stdout_has(&format!("{} route", names[1]))
        .stdout_has(&format!("{} isolated", names[2]))
        .stdout_has(&format!("{} bridge {hostbr}", names[3]));
    for n in &names {
        // `virsh net-list --all` columns: Name State Autostart Persistent.
        let state = list.lines().find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.first() == Some(&n.as_str())).then(|| cols.get(1).copied())
        });
        assert_eq!(state, Some(Some("active")), "{n}:\n{list}");
    }
}

/// ensure_network on the real daemon: a change that needs a restart gets one
/// when allowed, and the next run finds nothing to do.
#[test]
fn live_ensure_network_restart() {
    let uri = live_uri();
    let o = octet();
    let name = unique("ens");
    let bridge = ifname("en");
    let run = Script::new(&format!(
        r#"let spec = #{{ name: "{name}", forward: "nat", bridge: "{bridge}", ip: "10.215.{o}.1/24",
    dhcp: ["10.215.{o}.2", "10.215.{o}.254"] }};
assert_eq(HOST.ensure_network(spec).action, "created");
let n = mutation_count();
assert_eq(HOST.ensure_network(spec).action, "unchanged");
assert_eq(mutation_count(), n);
spec.bridge = #{{ name: "{bridge}", stp: false }};
spec.dhcp_hosts = [#{{ mac: "52:54:00:21:50:01", ip: "10.215.{o}.9" }}];
spec.restart = true;
let r = HOST.ensure_network(spec);
print(r.changes);
assert_eq(r.changes, ["redefined (bridge, ips)", "restarted"]);
let n = mutation_count();
let r = HOST.ensure_network(spec);
assert_eq(r.action, "unchanged");
assert_eq(mutation_count(), n);
"#
    ))
    .connect(&uri)
    .run();
    let live = virsh(&uri, &["net-dumpxml", &name]);
    cleanup(&uri, &name);
    run.ok();
    assert!(live.contains("stp='off'"), "{live}");
    assert!(live.contains("52:54:00:21:50:01"), "{live}");
}

/// A DHCP host added to a running network shows in the live and the
/// persistent XML without a restart (the bridge is the same device), and
/// adding it again is not an error.
#[test]
fn live_dhcp_host_without_restart() {
    let uri = live_uri();
    let o = octet();
    let name = unique("dhcp");
    let bridge = ifname("dh");
    Script::new(&format!(
        r#"let net = HOST.define_network(#{{ name: "{name}", forward: "nat", bridge: "{bridge}",
    ip: "10.214.{o}.1/24", dhcp: ["10.214.{o}.2", "10.214.{o}.254"] }});
net.start();"#
    ))
    .connect(&uri)
    .run()
    .ok();
    let before = netns_ifindex(&bridge);
    let run = Script::new(&format!(
        r#"let net = HOST.network("{name}");
let h = #{{ mac: "52:54:00:21:40:01", ip: "10.214.{o}.10", name: "web" }};
print(net.add_dhcp_host(h));
print(net.add_dhcp_host(h));"#
    ))
    .connect(&uri)
    .run();
    let live = virsh(&uri, &["net-dumpxml", &name]);
    let config = virsh(&uri, &["net-dumpxml", "--inactive", &name]);
    let after = netns_ifindex(&bridge);
    cleanup(&uri, &name);
    run.ok().stdout_has("true\nfalse\n");
    let host = format!("<host mac='52:54:00:21:40:01' name='web' ip='10.214.{o}.10'/>");
    assert!(live.contains(&host), "{live}");
    assert!(config.contains(&host), "{config}");
    assert!(!before.is_empty());
    assert_eq!(
        before, after,
        "the bridge was recreated: the network restarted"
    );
}

/// On the embedded driver the overlap check trusts its cache of the host's
/// networks; networks removed since (undefined, transient ones stopped, edits
/// rolled back) must neither block a new network nor hide a real clash.
#[test]
fn overlap_check_follows_removed_and_rolled_back_networks() {
    Script::new(
        r#"
let a = HOST.define_network(#{ name: "a", ip: "10.50.0.1/24" });
a.undefine();
// Same name and subnet again: the removed network no longer counts.
let a = HOST.define_network(#{ name: "a", ip: "10.50.0.1/24" });
let t = HOST.create_network(#{ name: "t", ip: "10.51.0.1/24" });
t.stop();
HOST.define_network(#{ name: "t2", ip: "10.51.0.1/24" });
// An edit rolled back restores the old subnet, which must clash again.
try {
    transaction(|| {
        a.edit(|cfg| { cfg.ips[0].address = "10.52.0.1"; });
        throw "give up";
    });
} catch (e) { print(`rolled back: ${e.rolled_back.len()}`); }
assert_eq(HOST.network("a").config.ips[0].address, "10.50.0.1");
try { HOST.define_network(#{ name: "c", ip: "10.50.0.1/24" }); }
catch (e) { print(`${e.field}: ${e.message}`); }
HOST.define_network(#{ name: "b", ip: "10.52.0.1/24" });
// And a real clash with a network that exists is still refused.
HOST.define_network(#{ name: "d", ip: "10.51.0.1/24" });
"#,
    )
    .run()
    .code(1)
    .stdout_has("rolled back: 1")
    .stdout_has("ip: overlaps 10.50.0.0/24 of network 'a'")
    .stderr_has("overlaps 10.51.0.0/24 of network 't2'")
    .stderr_has("script.rhai:21:6");
}

/// Every live-update call on the real daemon: each change is in the running
/// network and in its config, dnsmasq's files have it, and the bridge was
/// never recreated (no restart). Then `apply` restarts only for a change the
/// running network does not have yet.
#[test]
fn live_network_updates_reach_the_running_network_without_a_restart() {
    let uri = live_uri();
    let o = octet();
    let name = unique("upd");
    let pool = unique("fwd");
    let bridge = ifname("up");
    let _guard = NetworkGuard(uri.clone(), vec![name.clone(), pool.clone()]);
    let run = Script::new(&format!(
        r#"let net = HOST.define_network(#{{ name: "{name}", forward: "nat", bridge: "{bridge}",
    ip: "10.216.{o}.1/24", dhcp: ["10.216.{o}.100", "10.216.{o}.200"] }});
net.start();
assert(net.add_dhcp_range("10.216.{o}.2", "10.216.{o}.50"));
assert(net.remove_dhcp_range("10.216.{o}.100", "10.216.{o}.200"));
assert(net.add_portgroup(#{{ name: "web" }}));
assert(net.modify_portgroup(#{{ name: "web", bandwidth: #{{ outbound: #{{ average: 500 }} }} }}));
assert(net.add_portgroup(#{{ name: "db" }}));
assert(net.remove_portgroup("db"));
assert(net.add_dns_host(#{{ ip: "10.216.{o}.10", hostnames: ["web", "www"] }}));
assert(net.add_dns_host(#{{ ip: "10.216.{o}.11", hostnames: ["gone"] }}));
assert(net.remove_dns_host("10.216.{o}.11"));
assert(net.add_dns_srv(#{{ service: "ldap", protocol: "tcp", domain: "lab", target: "dc1", port: 389 }}));
assert(net.add_dns_srv(#{{ service: "kerberos", protocol: "udp", target: "dc1", port: 88 }}));
assert_eq(net.remove_dns_srv("kerberos", "udp"), 1);
assert(net.add_dhcp_host(#{{ mac: "52:54:00:21:50:01", ip: "10.216.{o}.20", name: "a" }}));
assert(net.modify_dhcp_host(#{{ mac: "52:54:00:21:50:01", ip: "10.216.{o}.21", name: "a" }}));
assert(net.add_dhcp_host(#{{ mac: "52:54:00:21:50:02", ip: "10.216.{o}.22" }}));
assert(net.remove_dhcp_host("52:54:00:21:50:02"));
assert(!net.apply(), "live and config agree: nothing to apply");
let fwd = HOST.define_network(#{{ name: "{pool}", forward: #{{ mode: "private", interfaces: ["{bridge}a"] }} }});
fwd.start();
assert(fwd.add_forward_interface("{bridge}b"));
assert(fwd.remove_forward_interface("{bridge}a"));
assert_eq(fwd.config.forward.interfaces, ["{bridge}b"]);
print("done");"#
    ))
    .connect(&uri)
    .run();
    run.ok().stdout_has("done");
    let before = netns_ifindex(&bridge);
    assert!(!before.is_empty(), "no bridge {bridge}");
    for xml in [
        virsh(&uri, &["net-dumpxml", &name]),
        virsh(&uri, &["net-dumpxml", "--inactive", &name]),
    ] {
        for present in [
            format!("<range start='10.216.{o}.2' end='10.216.{o}.50'/>"),
            "<portgroup name='web'>".to_owned(),
            "<outbound average='500'/>".to_owned(),
            format!("<host ip='10.216.{o}.10'>"),
            "<hostname>www</hostname>".to_owned(),
            "<srv service='ldap' protocol='tcp' domain='lab' target='dc1' port='389'/>".to_owned(),
            format!("<host mac='52:54:00:21:50:01' name='a' ip='10.216.{o}.21'/>"),
        ] {
            assert!(xml.contains(&present), "lacks {present}:\n{xml}");
        }
        for absent in [
            "10.216.{o}.100".replace("{o}", &o.to_string()),
            "<portgroup name='db'".to_owned(),
            "gone".to_owned(),
            "kerberos".to_owned(),
            "52:54:00:21:50:02".to_owned(),
        ] {
            assert!(!xml.contains(&absent), "still has {absent}:\n{xml}");
        }
    }
    // What dnsmasq serves: its hosts files, rewritten in place.
    let hosts = std::fs::read_to_string(format!("/var/lib/libvirt/dnsmasq/{name}.hostsfile"))
        .unwrap_or_default();
    assert_eq!(hosts.trim(), format!("52:54:00:21:50:01,10.216.{o}.21,a"));
    let names = std::fs::read_to_string(format!("/var/lib/libvirt/dnsmasq/{name}.addnhosts"))
        .unwrap_or_default();
    assert_eq!(names.trim(), format!("10.216.{o}.10\tweb\twww"));
    let fwd = virsh(&uri, &["net-dumpxml", &pool]);
    assert!(
        fwd.contains(&format!("<interface dev='{bridge}b'/>"))
            && !fwd.contains(&format!("'{bridge}a'")),
        "{fwd}"
    );
    assert_eq!(
        netns_ifindex(&bridge),
        before,
        "an update restarted the network"
    );
    // A change in the config only: apply restarts the network to take it.
    virsh(
        &uri,
        &[
            "net-update",
            &name,
            "add",
            "ip-dhcp-host",
            &format!("<host mac='52:54:00:21:50:03' ip='10.216.{o}.23'/>"),
            "--config",
        ],
    );
    let run = Script::new(&format!(
        r#"let net = HOST.network("{name}");
assert(net.apply(), "the config had a change");
assert(!net.apply(), "applied already");
print("applied");"#
    ))
    .connect(&uri)
    .run();
    run.ok().stdout_has("applied");
    assert!(virsh(&uri, &["net-dumpxml", &name]).contains("52:54:00:21:50:03"));
    assert_ne!(
        netns_ifindex(&bridge),
        before,
        "apply did not restart the network"
    );
}

/// Networks removed when the test ends, also when it panics.
struct NetworkGuard(String, Vec<String>);

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        for name in &self.1 {
            cleanup(&self.0, name);
        }
    }
}
