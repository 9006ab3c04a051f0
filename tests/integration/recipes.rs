//! The bundled recipes (stdlib/), the example scripts (scripts/) and every
//! ```rhai block of the docs: on the embedded test driver, and on the real
//! daemon where they need one.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    asserts_something, ifname, live_uri, netns_ifindex, unique, virsh, virsh_try, Script,
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `(info, code)` of every fenced block whose info string starts with `rhai`.
fn rhai_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let t = line.trim();
        match &mut current {
            None if t.starts_with("```rhai") => {
                current = Some((t.trim_start_matches("```").to_owned(), String::new()))
            }
            Some(_) if t == "```" => out.push(current.take().unwrap()),
            Some((_, code)) => {
                code.push_str(line);
                code.push('\n');
            }
            None => {}
        }
    }
    out
}

/// README.md and docs/*.md, except the generated API reference (its examples
/// are the doc comments, run by doc_examples.rs).
fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && !p.ends_with("api.md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

fn scripts() -> Vec<PathBuf> {
    let mut s: Vec<_> = std::fs::read_dir(Path::new(ROOT).join("scripts"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    s.sort();
    s
}

fn script_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn every_rhai_block_in_the_docs_runs_on_the_test_driver() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (info, code) in rhai_blocks(&text) {
            if !asserts_something(&code) {
                failures.push(format!(
                    "{} ({info}) asserts nothing outside catch:\n{code}",
                    file.display()
                ));
            }
            if info != "rhai" {
                assert_eq!(
                    info,
                    "rhai,live",
                    "unknown block kind in {}",
                    file.display()
                );
                continue;
            }
            ran += 1;
            let run = Script::new(&code).run();
            if run.code != 0 {
                failures.push(format!(
                    "{}:\n{code}\n{}",
                    file.display(),
                    run.diagnostics()
                ));
            }
        }
    }
    assert!(ran >= 10, "only {ran} blocks found");
    assert!(
        failures.is_empty(),
        "failing doc blocks:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_bundled_module_compiles_and_documents_its_functions() {
    for name in ["net", "storage", "lab", "clone", "retry"] {
        Script::new(&format!("import \"{name}\" as m;"))
            .command("check")
            .run()
            .ok();
    }
    // Every public recipe is in the reference (module_entries skips modules that
    // do not compile, so this also catches a broken module).
    let entries = virtscript::doc::entries();
    for f in [
        "net::nat",
        "net::routed",
        "net::isolated",
        "net::bridge",
        "net::macvtap",
        "storage::pool",
        "storage::volume",
        "storage::image",
        "lab::up",
        "lab::down",
        "lab::status",
        "lab::prune",
        "clone::by_volume",
        "clone::linked",
        "clone::explicit",
        "clone::auto",
    ] {
        assert!(
            entries
                .iter()
                .any(|e| e.signature.starts_with(&format!("{f}("))),
            "{f} is not documented"
        );
    }
    // Helpers stay private.
    assert!(!entries
        .iter()
        .any(|e| e.signature.starts_with("net::check_opts")));
}

#[test]
fn every_script_passes_check_and_runs_on_the_test_driver() {
    let all = scripts();
    assert!(all.len() >= 12, "{all:?}");
    let mut check = Command::new(env!("CARGO_BIN_EXE_virtscript"));
    check.arg("check").args(&all);
    let out = check.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in all {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // What the script left on the driver, read in its own process (a new
        // process would see a fresh driver).
        let text = format!("{}\n;\n{INVENTORY}", script_text(&path));
        let mut s = Script::new(&text).named(&name);
        if name.starts_with("04-") || name.starts_with("05-") || name == "lab.rhai" {
            s = s.script_arg("virt_type=qemu");
        }
        if name == "lab.rhai" {
            s = s.script_arg("count=2");
        }
        let run = s.run();
        assert_eq!(run.code, 0, "{name}:\n{}{}", run.stdout, run.stderr);
        let made = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("MADE "))
            .unwrap_or_else(|| panic!("{name} printed no inventory:\n{}", run.stdout));
        let expected = SCRIPTS_MAKE
            .iter()
            .find(|(script, _)| *script == name)
            .unwrap_or_else(|| panic!("{name}: add what it makes to SCRIPTS_MAKE"))
            .1;
        let expected: Vec<String> = expected.iter().map(|m| format!("{m:?}")).collect();
        assert_eq!(made, format!("[{}]", expected.join(", ")), "{name}");
        if name == "hello.rhai" || name == "01-check-host.rhai" {
            // They make nothing; they report the host.
            assert!(run.stdout.contains("libvirt 9."), "{name}: {}", run.stdout);
            assert!(run.stdout.contains(" CPUs ("), "{name}: {}", run.stdout);
        }
    }
}

/// Appended to each script: what it left besides the driver's own objects.
const INVENTORY: &str = r#"let made = [];
for n in HOST.networks() { if n.name != "default" { made.push(`network ${n.name} ${if n.active {"active"} else {"inactive"}}`); } }
for p in HOST.pools() {
    if p.name != "default-pool" { made.push(`pool ${p.name} ${if p.active {"active"} else {"inactive"}}`); }
    for v in p.volumes() { made.push(`volume ${p.name}/${v.name}`); }
}
for v in HOST.vms() { if v.name != "test" { made.push(`vm ${v.name} ${v.state}`); } }
made.sort();
print(`MADE ${made}`);
"#;

/// What each script in scripts/ makes on the embedded test driver (sorted).
const SCRIPTS_MAKE: &[(&str, &[&str])] = &[
    ("01-check-host.rhai", &[]),
    ("02-networks.rhai", &["network lab active"]),
    (
        "03-volumes.rhai",
        &["pool vms active", "volume vms/kvm1.qcow2"],
    ),
    (
        "04-create-vm.rhai",
        &[
            "network lab active",
            "pool vms active",
            "vm kvm1 running",
            "volume vms/kvm1.qcow2",
        ],
    ),
    (
        "05-clone.rhai",
        &[
            "network lab active",
            "pool vms active",
            "vm kvm1 shut off",
            "vm kvm1-clone shut off",
            "vm kvm2 running",
            "vm kvm2-explicit shut off",
            "vm kvm2-linked-1 running",
            "vm kvm2-linked-2 running",
            "volume vms/kvm1-clone.qcow2",
            "volume vms/kvm1.qcow2",
            "volume vms/kvm2-explicit.qcow2",
            "volume vms/kvm2-linked-1.qcow2",
            "volume vms/kvm2-linked-2.qcow2",
            "volume vms/kvm2.qcow2",
        ],
    ),
    (
        "clone-1-volume-then-import.rhai",
        &[
            "vm web shut off",
            "vm web2 shut off",
            "volume default-pool/web.qcow2",
            "volume default-pool/web2.qcow2",
        ],
    ),
    (
        "clone-2-explicit.rhai",
        &[
            "vm web shut off",
            "vm web2 shut off",
            "volume default-pool/web.qcow2",
            "volume default-pool/web2-disk.qcow2",
        ],
    ),
    (
        "clone-3-auto.rhai",
        &[
            "vm web shut off",
            "vm web-clone shut off",
            "volume default-pool/web-clone.qcow2",
            "volume default-pool/web.qcow2",
        ],
    ),
    ("hello.rhai", &[]),
    (
        "lab.rhai",
        &[
            "network lab1 active",
            "pool vms active",
            "vm lab1-1 running",
            "vm lab1-2 running",
            "volume vms/blank-base.qcow2",
            "volume vms/lab1-1.qcow2",
            "volume vms/lab1-2.qcow2",
        ],
    ),
    ("net-bridge.rhai", &["network lan active"]),
    ("net-isolated.rhai", &["network backend active"]),
    ("net-macvtap.rhai", &["network direct active"]),
    ("net-nat.rhai", &["network natlab active"]),
    ("net-routed.rhai", &["network dmz active"]),
    // The lab network it keeps; no lab VMs to prune on a fresh driver.
    ("nightly.rhai", &["network lab1 active"]),
];

/// A bad option: the recipe's own message naming it, at the caller's line.
fn bad_option(call: &str, message: &str) {
    let script = format!("import \"net\" as net;\nimport \"lab\" as lab;\n\n{call}\n");
    let run = Script::new(&script).run();
    run.code(1)
        .stderr_has(message)
        .stderr_has("--> script.rhai:4:");
    assert!(
        !run.stderr.contains("stdlib/"),
        "recipe internals shown:\n{}",
        run.stderr
    );
    // Nothing was made: checked in the same process (a new process gets a
    // fresh test driver, where nothing can ever be found).
    let check = format!(
        r#"import "net" as net;
import "lab" as lab;
fn inventory(h) {{
    let out = [];
    for n in h.networks() {{ out.push("network " + n.name); }}
    for p in h.pools() {{
        out.push("pool " + p.name);
        for v in p.volumes() {{ out.push("volume " + v.name); }}
    }}
    for v in h.vms() {{ out.push("vm " + v.name); }}
    out
}}
let before = inventory(HOST);
let failed = false;
try {{
    {call}
}} catch (e) {{
    failed = true;
}}
assert(failed, "the call did not fail");
let after = inventory(HOST);
assert(after == before, `made or removed: before ${{before}}, after ${{after}}`);
print(after.len());
"#
    );
    let run = Script::new(&check).run();
    run.ok();
    let objects: usize = run.stdout.trim().parse().unwrap();
    assert!(objects >= 3, "the inventory saw nothing: {}", run.stdout);
}

#[test]
fn bad_options_fail_with_the_recipes_message_at_the_callers_line() {
    bad_option(
        r#"net::nat(HOST, #{ name: "lab", subnet: "192.168.10.0/33" });"#,
        r#"net::nat: subnet: prefix length must be 0-32 (got "192.168.10.0/33")"#,
    );
    bad_option(
        r#"net::nat(HOST, #{ name: "lab", subnet: "192.168.10.0/24", colour: "blue" });"#,
        r#"net::nat: colour: unknown option; known: active, autostart, bridge_name, dev, dhcp, dhcp_hosts, domain, gateway, ipv6, metadata, name, subnet (got "blue")"#,
    );
    bad_option(
        r#"net::isolated(HOST, #{ name: "lab", subnet: "10.1.0.0/24", autostart: "yes" });"#,
        r#"net::isolated: autostart: must be true or false, not string (got "yes")"#,
    );
    bad_option(
        r#"net::bridge(HOST, #{ name: "lab", bridge: "br0", active: 0 });"#,
        "net::bridge: active: must be true or false, not i64 (got 0)",
    );
    bad_option(
        r#"net::routed(HOST, #{ name: "lab", subnet: "10.1.0.0/24" });"#,
        "net::routed: dev: required",
    );
    bad_option(
        r#"net::nat(HOST, #{ name: "lab", subnet: "10.1.0.0/24", dhcp_hosts: [#{ mac: "52:54:00:00:00:01", ip: "10.9.0.1" }] });"#,
        r#"net::nat: dhcp_hosts[0].ip: must be a host address in 10.1.0.0/24"#,
    );
    bad_option(
        r#"lab::up(HOST, #{ name: "l", subnet: "10.1.0.0/24", base: "b.qcow2", count: -1 });"#,
        "lab::up: count: must be 0-100 (got -1)",
    );
    bad_option(
        r#"lab::up(HOST, #{ name: "l", subnet: "10.1.0.0/24", base: "b.qcow2", count: 2, pool: "default-pool" });"#,
        r#"lab::up: base: no volume of that name in pool default-pool"#,
    );
}

#[test]
fn an_old_key_names_its_new_one_and_a_typo_the_closest() {
    bad_option(
        r#"net::nat(HOST, #{ name: "lab", subnet: "10.1.0.0/24", hosts: [#{ mac: "52:54:00:00:00:01", ip: "10.1.0.9" }] });"#,
        "net::nat: hosts: this option is now called dhcp_hosts",
    );
    bad_option(
        r#"lab::up(HOST, #{ name: "l", subnet: "10.1.0.0/24", base: "b.qcow2", count: 1, memroy: "1G" });"#,
        r#"lab::up: memroy: unknown key; did you mean 'memory'? (got "1G")"#,
    );
}

#[test]
fn every_recipe_reads_its_options_in_the_cores_words_at_the_callers_line() {
    for (module, call, message) in [
        (
            "storage",
            r#"storage::volume(HOST, #{ pool: "default-pool", name: "v", capacity: true });"#,
            r#"storage::volume: capacity: expected a size like "10G" or a number of bytes, not bool (got true)"#,
        ),
        (
            "clone",
            r#"clone::linked(HOST, #{ base: "b", pool: "default-pool", prefix: "w", count: "3" });"#,
            r#"clone::linked: count: must be a whole number, not string (got "3")"#,
        ),
        (
            "clone",
            r#"clone::auto(HOST, #{});"#,
            "clone::auto: from: required",
        ),
        (
            "host",
            r#"host::evacuate(HOST, HOST, #{ jobs: 2, filter: "web" });"#,
            r#"host::evacuate: filter: must be a function, not string (got "web")"#,
        ),
    ] {
        let script = format!("import \"{module}\" as {module};\n\n{call}\n");
        let run = Script::new(&script).run();
        run.code(1)
            .stderr_has(message)
            .stderr_has("--> script.rhai:3:");
        assert!(!run.stderr.contains("stdlib/"), "{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------
// Real daemon
// ---------------------------------------------------------------------------

/// A pool (its volumes and its directory) removed when the test ends, also
/// when it panics.
struct PoolGuard(String, String);

impl Drop for PoolGuard {
    fn drop(&mut self) {
        let (uri, pool) = (&self.0, &self.1);
        if let (true, vols) = virsh_try(uri, &["vol-list", pool]) {
            for line in vols.lines().skip(2) {
                if let Some(v) = line.split_whitespace().next() {
                    let _ = virsh_try(uri, &["vol-delete", v, "--pool", pool]);
                }
            }
        }
        let _ = virsh_try(uri, &["pool-destroy", pool]);
        let _ = virsh_try(uri, &["pool-delete", pool]);
        let _ = virsh_try(uri, &["pool-undefine", pool]);
    }
}

/// A device inside the daemon's network namespace (never on the host).
struct NetnsLink(String);

impl NetnsLink {
    /// `name` comes from `ifname`, unique to this test: nothing else's link
    /// is ever deleted to make room for it.
    fn new(name: &str, kind: &str) -> NetnsLink {
        assert!(
            netns(&["link", "add", name, "type", kind]),
            "ip link add {name}"
        );
        netns(&["link", "set", name, "up"]);
        NetnsLink(name.to_owned())
    }
}

impl Drop for NetnsLink {
    fn drop(&mut self) {
        netns(&["link", "del", &self.0]);
    }
}

fn netns(args: &[&str]) -> bool {
    Command::new("ip")
        .args(["netns", "exec", "virtscript", "ip"])
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn remove_network(uri: &str, name: &str) {
    let _ = virsh_try(uri, &["net-destroy", name]);
    let _ = virsh_try(uri, &["net-undefine", name]);
}

/// A per-process /24 in 10.N.x.0 that other tests are unlikely to use.
fn subnet(n: u8) -> String {
    format!("10.{n}.{}.0/24", std::process::id() % 250)
}

#[test]
fn live_each_network_recipe_creates_then_changes_nothing() {
    let uri = live_uri();
    let br = NetnsLink::new(&ifname("br"), "bridge");
    let nic = NetnsLink::new(&ifname("nic"), "bridge"); // the dummy module is missing here; any link will do
    let names: Vec<String> = ["nat", "rt", "iso", "br", "mv"]
        .iter()
        .map(|k| unique(&format!("rnet-{k}")))
        .collect();
    let calls = [
        format!(
            r#"net::nat(HOST, #{{ name: "{}", subnet: "{}" }})"#,
            names[0],
            subnet(181)
        ),
        format!(
            r#"net::routed(HOST, #{{ name: "{}", subnet: "{}", dev: "{}" }})"#,
            names[1],
            subnet(182),
            nic.0
        ),
        format!(
            r#"net::isolated(HOST, #{{ name: "{}", subnet: "{}", ipv6: "fd00:{}::/64" }})"#,
            names[2],
            subnet(183),
            std::process::id() % 9000 + 1000
        ),
        format!(
            r#"net::bridge(HOST, #{{ name: "{}", bridge: "{}" }})"#,
            names[3], br.0
        ),
        format!(
            r#"net::macvtap(HOST, #{{ name: "{}", dev: "{}" }})"#,
            names[4], nic.0
        ),
    ];
    for (name, call) in names.iter().zip(&calls) {
        remove_network(&uri, name);
        let script = format!(
            r#"import "net" as net;
let first = {call};
assert_eq(first.action, "created");
assert(first.network.active);
let before = mutation_count();
let second = {call};
assert_eq(second.action, "unchanged");
assert_eq(second.changes, []);
assert_eq(mutation_count(), before);
print(`ok ${{first.changes}}`);
"#
        );
        let run = Script::new(&script).connect(&uri).run();
        remove_network(&uri, name);
        run.ok().stdout_has("ok [");
        assert!(!virsh_try(&uri, &["net-info", name]).0);
    }
    // The mutation count is the journal of the run: the second call made no
    // mutating libvirt call; the first run's report lists its calls.
}

#[test]
fn live_changing_an_option_converges_the_running_network_without_a_restart() {
    let uri = live_uri();
    let name = unique("rnet-conv");
    let bridge = ifname("c");
    remove_network(&uri, &name);
    let sub = subnet(184);
    let base = sub.trim_end_matches(".0/24").to_owned();
    let script = |extra: &str| {
        format!(
            r#"import "net" as net;
let r = net::nat(HOST, #{{ name: "{name}", subnet: "{sub}", bridge_name: "{bridge}"{extra} }});
print(`action=${{r.action}} restart=${{r.restart_needed}} changes=${{r.changes}}`);
"#
        )
    };
    Script::new(&script(""))
        .connect(&uri)
        .run()
        .ok()
        .stdout_has("action=created");
    let before = netns_ifindex(&bridge);
    assert!(!before.is_empty(), "bridge {bridge} is up");
    let changed = script(&format!(
        r#", dhcp: ["{base}.100", "{base}.199"], dhcp_hosts: [#{{ mac: "52:54:00:00:aa:01", ip: "{base}.10", name: "web" }}]"#
    ));
    let run = Script::new(&changed).connect(&uri).run();
    let live = virsh(&uri, &["net-dumpxml", &name]);
    let after = netns_ifindex(&bridge);
    remove_network(&uri, &name);
    run.ok()
        .stdout_has("action=updated restart=false")
        .stdout_has("added");
    assert!(!run.stdout.contains("restarted"), "{}", run.stdout);
    // Applied to the running network, which was never torn down.
    assert!(
        live.contains(&format!("<range start='{base}.100' end='{base}.199'/>")),
        "{live}"
    );
    assert!(live.contains("52:54:00:00:aa:01"), "{live}");
    assert_eq!(
        before, after,
        "the bridge was recreated: the network restarted"
    );
}

/// Every network, pool, volume (of every pool) and VM whose name holds `mark`.
fn listing(uri: &str, mark: &str) -> Vec<String> {
    let mut out = Vec::new();
    for n in virsh(uri, &["net-list", "--all", "--name"]).lines() {
        out.push(format!("network {n}"));
    }
    for p in virsh(uri, &["pool-list", "--all", "--name"]).lines() {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        out.push(format!("pool {p}"));
        if let (true, vols) = virsh_try(uri, &["vol-list", p]) {
            for line in vols.lines().skip(2) {
                if let Some(v) = line.split_whitespace().next() {
                    out.push(format!("volume {p}/{v}"));
                }
            }
        }
    }
    for d in virsh(uri, &["list", "--all", "--name"]).lines() {
        out.push(format!("vm {d}"));
    }
    out.retain(|l| l.contains(mark));
    out.sort();
    out
}

#[test]
fn live_lab_up_then_down_leaves_the_host_as_it_was() {
    let uri = live_uri();
    let mark = unique("rlab");
    let pool = format!("{mark}-pool");
    let lab = format!("{mark}-l");
    let dir = format!("/var/lib/libvirt/images/{pool}");
    let setup = format!(
        r#"import "storage" as storage;
storage::pool(HOST, #{{ name: "{pool}", path: "{dir}" }});
storage::volume(HOST, #{{ pool: "{pool}", name: "{mark}-golden.qcow2", capacity: "64M" }});
"#
    );
    Script::new(&setup).connect(&uri).run().ok();
    let before = listing(&uri, &mark);
    assert_eq!(
        before,
        vec![
            format!("pool {pool}"),
            format!("volume {pool}/{mark}-golden.qcow2")
        ]
    );
    let up = format!(
        r#"import "lab" as lab;
let opts = #{{ name: "{lab}", subnet: "{sub}", base: "{mark}-golden.qcow2", pool: "{pool}",
              count: 3, memory: "96M", vm: #{{ virt_type: "qemu", graphics: "none" }} }};
let r = lab::up(HOST, opts);
assert_eq(r.action, "created");
assert_eq(r.vms.map(|v| v.state), ["running", "running", "running"]);
let before = mutation_count();
let again = lab::up(HOST, opts);
assert_eq(again.action, "unchanged");
assert_eq(mutation_count(), before);
let s = lab::status(HOST, "{lab}");
print(`status ${{s.vms.len()}} ${{s.network.active}}`);
"#,
        sub = subnet(185)
    );
    let run = Script::new(&up).connect(&uri).run();
    let during = listing(&uri, &mark);
    let meta = virsh_try(
        &uri,
        &[
            "metadata",
            &format!("{lab}-2"),
            "https://virtscript.dev/xmlns/lab/1",
        ],
    );
    let down = Script::new(&format!(
        r#"import "lab" as lab; print(lab::down(HOST, "{lab}").removed);"#
    ))
    .connect(&uri)
    .run();
    let after = listing(&uri, &mark);
    // Tidy the test's own pool before asserting.
    let _ = virsh_try(
        &uri,
        &[
            "vol-delete",
            &format!("{mark}-golden.qcow2"),
            "--pool",
            &pool,
        ],
    );
    let _ = virsh_try(&uri, &["pool-destroy", &pool]);
    let _ = virsh_try(&uri, &["pool-delete", &pool]);
    let _ = virsh_try(&uri, &["pool-undefine", &pool]);
    run.ok().stdout_has("status 3 true");
    down.ok();
    for i in 1..=3 {
        assert!(during.contains(&format!("vm {lab}-{i}")), "{during:?}");
        assert!(
            during.contains(&format!("volume {pool}/{lab}-{i}.qcow2")),
            "{during:?}"
        );
    }
    assert!(during.contains(&format!("network {lab}")), "{during:?}");
    assert!(meta.0, "{}", meta.1);
    assert!(
        meta.1.contains(&format!("volume=\"{pool}/{lab}-2.qcow2\"")),
        "{}",
        meta.1
    );
    assert_eq!(before, after, "lab::down left or removed something");
    assert_eq!(listing(&uri, &mark), Vec::<String>::new());
}

#[test]
fn live_bad_options_fail_at_the_callers_line_and_make_nothing() {
    let uri = live_uri();
    let name = unique("rbad");
    let script = format!(
        r#"import "lab" as lab;

let x = 1;
lab::up(HOST, #{{ name: "{name}", subnet: "10.186.0.0/24", base: "nope.qcow2", count: -1 }});
"#
    );
    Script::new(&script)
        .connect(&uri)
        .run()
        .code(1)
        .stderr_has("lab::up: count: must be 0-100 (got -1)")
        .stderr_has("--> script.rhai:4:6");
    let script = format!(
        r#"import "net" as net;
net::nat(HOST, #{{ name: "{name}", subnet: "192.168.10.0/33" }});
"#
    );
    Script::new(&script)
        .connect(&uri)
        .run()
        .code(1)
        .stderr_has(r#"net::nat: subnet: prefix length must be 0-32 (got "192.168.10.0/33")"#)
        .stderr_has("--> script.rhai:2:6");
    assert!(!virsh_try(&uri, &["net-info", &name]).0);
}

#[test]
fn live_scripts_and_live_doc_blocks_run_on_the_real_daemon() {
    let uri = live_uri();
    let mark = unique("rscr");
    // The tutorial's live blocks name their lab and pool "vs-tutorial"; a
    // block that fails halfway must not leave them for the next run.
    let _tutorial = (
        crate::support::NetworkGuard::new(&uri, &["vs-tutorial"]),
        PoolGuard(uri.clone(), "vs-tutorial".into()),
    );
    let pool = format!("{mark}-pool");
    let path = format!("/var/lib/libvirt/images/{pool}");
    let br = NetnsLink::new(&ifname("sb"), "bridge");
    let nic = NetnsLink::new(&ifname("sn"), "bridge"); // the dummy module is missing here; any link will do
    let n = |k: &str| format!("{mark}-{k}");
    let runs: Vec<(&str, Vec<String>)> = vec![
        ("01-check-host.rhai", vec![]),
        (
            "02-networks.rhai",
            vec![
                format!("name={}", n("net")),
                format!("subnet={}", subnet(187)),
                format!("web_ip={}.10", subnet(187).trim_end_matches(".0/24")),
            ],
        ),
        (
            "03-volumes.rhai",
            vec![format!("pool={pool}"), format!("path={path}")],
        ),
        (
            "04-create-vm.rhai",
            vec![
                format!("name={}", n("vm")),
                format!("pool={pool}"),
                format!("path={path}"),
                format!("network={}", n("net")),
                format!("subnet={}", subnet(187)),
                "memory=96M".into(),
                "virt_type=qemu".into(),
            ],
        ),
        (
            "05-clone.rhai",
            vec![
                format!("from={}", n("src")),
                format!("name={}", n("c2")),
                format!("pool={pool}"),
                format!("path={path}"),
                format!("network={}", n("net")),
                format!("subnet={}", subnet(187)),
                "memory=96M".into(),
                "virt_type=qemu".into(),
            ],
        ),
        (
            "net-nat.rhai",
            vec![
                format!("name={}", n("nat")),
                format!("subnet={}", subnet(188)),
            ],
        ),
        (
            "net-routed.rhai",
            vec![
                format!("name={}", n("rt")),
                format!("subnet={}", subnet(189)),
                format!("dev={}", nic.0),
            ],
        ),
        (
            "net-isolated.rhai",
            vec![
                format!("name={}", n("iso")),
                format!("subnet={}", subnet(190)),
            ],
        ),
        (
            "net-bridge.rhai",
            vec![format!("name={}", n("br")), format!("bridge={}", br.0)],
        ),
        (
            "net-macvtap.rhai",
            vec![format!("name={}", n("mv")), format!("dev={}", nic.0)],
        ),
        (
            "lab.rhai",
            vec![
                format!("name={}", n("lab")),
                format!("subnet={}", subnet(191)),
                format!("pool={pool}"),
                format!("path={path}"),
                "count=2".into(),
                "memory=96M".into(),
                "virt_type=qemu".into(),
            ],
        ),
        (
            "nightly.rhai",
            vec![
                format!("lab={}", n("lab")),
                format!("subnet={}", subnet(191)),
                "days=0".into(),
            ],
        ),
        (
            "lab.rhai",
            vec![format!("name={}", n("lab")), "action=down".into()],
        ),
    ];
    let mut failures = Vec::new();
    for (script, args) in &runs {
        let path = Path::new(ROOT).join("scripts").join(script);
        let mut s = Script::new(&script_text(&path)).named(script).connect(&uri);
        for a in args {
            s = s.script_arg(a);
        }
        let run = s.run();
        if run.code != 0 {
            failures.push(format!("{script} {args:?}:\n{}{}", run.stdout, run.stderr));
        }
    }
    // The live blocks of the docs.
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (info, code) in rhai_blocks(&text) {
            if info == "rhai,live" {
                let run = Script::new(&code).connect(&uri).run();
                if run.code != 0 {
                    failures.push(format!("{}:\n{code}\n{}", file.display(), run.stderr));
                }
            }
        }
    }
    // Clean up everything named with the mark.
    for vm in virsh(&uri, &["list", "--all", "--name"]).lines() {
        if vm.contains(&mark) {
            let _ = virsh_try(&uri, &["destroy", vm]);
            let _ = virsh_try(&uri, &["undefine", vm]);
        }
    }
    for net in virsh(&uri, &["net-list", "--all", "--name"]).lines() {
        if net.contains(&mark) {
            remove_network(&uri, net);
        }
    }
    if let (true, vols) = virsh_try(&uri, &["vol-list", &pool]) {
        for line in vols.lines().skip(2) {
            if let Some(v) = line.split_whitespace().next() {
                let _ = virsh_try(&uri, &["vol-delete", v, "--pool", &pool]);
            }
        }
    }
    let _ = virsh_try(&uri, &["pool-destroy", &pool]);
    let _ = virsh_try(&uri, &["pool-delete", &pool]);
    let _ = virsh_try(&uri, &["pool-undefine", &pool]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(listing(&uri, &mark), Vec::<String>::new());
}
