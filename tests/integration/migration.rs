//! Live and offline migration between the two real hosts (tools/libvirtd-netns.sh
//! and tools/libvirtd-host2.sh). QEMU's migration data goes over the veth pair
//! between the two daemons' namespaces (172.31.250.1 <-> .2); virtscript itself
//! reaches both daemons through their unix sockets.
use std::process::Command;

use crate::support::*;

/// Whether `ip` answers a ping from inside network namespace `netns`
/// (the guest's address exists only there).
fn answers_ping(netns: &str, ip: &str) -> bool {
    (0..10).any(|_| {
        Command::new("ip")
            .args(["netns", "exec", netns, "ping", "-c", "1", "-W", "1", ip])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn live_running_guest_migrates_live_to_the_second_host_and_back() {
    let first = live_uri();
    let second = second_uri();
    let dir = tiny_guest();
    // The same pool (over one shared directory) and the same network on both hosts.
    let env1 = LiveEnv::new(&first, "mig", 22);
    let env2 = env1.mirror_on(&second, 22);
    assert_eq!((&env1.pool, &env1.net), (&env2.pool, &env2.net));
    let name = format!("{}-vm", env1.prefix);
    let _cleanup = VmGuard(vec![first.clone(), second.clone()], name.clone());
    let create = format!(
        r#"
let vm = HOST.create_vm(#{{ name: "{name}", memory: 128, vcpus: 1, virt_type: "qemu",
    kernel: "{dir}/vmlinuz", initrd: "{dir}/initrd.img", cmdline: "console=ttyS0",
    disks: [#{{ pool: "{pool}", size: "16M", format: "raw" }}],
    networks: [#{{ network: "{net}", model: "e1000" }}] }});
let ip = vm.wait_ip(#{{ timeout: 120, source: "lease" }});
print(`ip=${{ip.ip}} mac=${{ip.mac}}`);
"#,
        pool = env1.pool,
        net = env1.net,
    );
    let run = Script::new(&create).connect(&first).run();
    run.ok();
    let field = |key: &str, text: &str| {
        text.split(&format!("{key}="))
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap()
            .to_owned()
    };
    let ip = field("ip", &run.stdout);
    let mac = field("mac", &run.stdout);
    assert!(
        answers_ping("virtscript", &ip),
        "{ip} does not answer on the first host"
    );

    let migrate = format!(
        r#"
let vm = HOST.vm("{name}");
let other = connect(ARGS[0]);
// unsafe: libvirt cannot tell that the pool's plain directory is shared.
let moved = vm.migrate(other, #{{ migrate_uri: "tcp://172.31.250.2", unsafe: true }});
assert_eq(moved.host.uri, ARGS[0]);
assert_eq(moved.state, "running");
assert(HOST.find_vm("{name}") == (), "the source definition is gone");
print(`moved mac=${{moved.interfaces()[0].mac}}`);
"#
    );
    let run = Script::new(&migrate)
        .connect(&first)
        .script_arg(&second)
        .run();
    run.ok();
    assert_eq!(field("mac", &run.stdout), mac, "{}", run.stdout);
    // Running on the second host, still answering on the address it leased on the first.
    assert!(virsh(&second, &["domstate", &name]).contains("running"));
    assert!(!virsh_try(&first, &["dominfo", &name]).0);
    assert!(
        answers_ping("vs-h2", &ip),
        "{ip} does not answer on the second host"
    );

    // And back, this time keeping the (now inactive) definition on the second host.
    let back = Script::new(&format!(
        r#"
let vm = connect(ARGS[0]).vm("{name}");
let home = vm.migrate(HOST, #{{ migrate_uri: "tcp://172.31.250.1", unsafe: true, undefine_source: false }});
assert_eq(home.state, "running");
print("back");
"#
    ))
    .connect(&first)
    .script_arg(&second)
    .run();
    back.ok().stdout_has("back");
    assert!(virsh(&first, &["domstate", &name]).contains("running"));
    assert!(virsh(&second, &["domstate", &name]).contains("shut off"));
    assert!(
        answers_ping("virtscript", &ip),
        "{ip} does not answer back on the first host"
    );
}

#[test]
fn live_migration_to_a_host_without_the_network_fails_before_anything_moves() {
    let first = live_uri();
    let second = second_uri();
    let env = LiveEnv::new(&first, "mignonet", 23);
    let name = format!("{}-vm", env.prefix);
    let _cleanup = VmGuard(vec![first.clone(), second.clone()], name.clone());
    let script = format!(
        r#"
let vm = HOST.create_vm(#{{ name: "{name}", memory: 128, virt_type: "qemu", pxe: true, networks: ["{net}"] }});
vm.migrate(connect(ARGS[0]), #{{ migrate_uri: "tcp://172.31.250.2" }});
"#,
        net = env.net
    );
    let run = Script::new(&script)
        .connect(&first)
        .script_arg(&second)
        .run();
    run.code(1)
        .stderr_has(&format!(
            "uses network {}, which host {second} does not have",
            env.net
        ))
        .stderr_has("script.rhai:3:4");
    assert!(virsh(&first, &["domstate", &name]).contains("running"));
    assert!(!virsh_try(&second, &["dominfo", &name]).0);
}

#[test]
fn live_migration_past_its_timeout_is_aborted_and_the_vm_keeps_running_on_the_source() {
    let first = live_uri();
    let second = second_uri();
    let env1 = LiveEnv::new(&first, "migabort", 24);
    let _env2 = env1.mirror_on(&second, 24);
    let name = format!("{}-vm", env1.prefix);
    let _cleanup = VmGuard(vec![first.clone(), second.clone()], name.clone());
    // 512 MiB of guest memory at 1 MiB/s cannot move within 2 seconds.
    let script = format!(
        r#"
let vm = HOST.create_vm(#{{ name: "{name}", memory: 512, virt_type: "qemu", pxe: true, networks: ["{net}"] }});
let err = ();
try {{
    vm.migrate(connect(ARGS[0]), #{{ migrate_uri: "tcp://172.31.250.2", bandwidth: 1, timeout: 2 }});
}} catch (e) {{
    err = e;
}}
print(`${{err.kind}} ${{err.field}} ${{vm.state}}`);
"#,
        net = env1.net
    );
    let run = Script::new(&script)
        .connect(&first)
        .script_arg(&second)
        .run();
    run.ok().stdout_has("timed_out timeout running");
    assert!(virsh(&first, &["domstate", &name]).contains("running"));
    assert!(!virsh_try(&second, &["dominfo", &name]).0);
}

#[test]
fn live_stopped_vm_migrates_offline_as_its_definition() {
    let first = live_uri();
    let second = second_uri();
    let env1 = LiveEnv::new(&first, "migoff", 25);
    let _env2 = env1.mirror_on(&second, 25);
    let name = format!("{}-vm", env1.prefix);
    let _cleanup = VmGuard(vec![first.clone(), second.clone()], name.clone());
    let script = format!(
        r#"
let vm = HOST.define_vm(#{{ name: "{name}", memory: 128, virt_type: "qemu", pxe: true, networks: ["{net}"] }});
let moved = vm.migrate(connect(ARGS[0]));
print(`${{moved.state}} ${{moved.host.uri == ARGS[0]}} ${{HOST.find_vm("{name}") == ()}}`);
"#,
        net = env1.net
    );
    let run = Script::new(&script)
        .connect(&first)
        .script_arg(&second)
        .run();
    run.ok().stdout_has("shut off true true");
    assert!(virsh(&second, &["dominfo", &name]).contains("Persistent:     yes"));
}

#[test]
fn live_evacuate_moves_every_running_vm_and_reports_what_could_not() {
    let first = live_uri();
    let second = second_uri();
    let shared1 = LiveEnv::new(&first, "evac", 26);
    let _shared2 = shared1.mirror_on(&second, 26);
    // A network the second host does not have: its VM must stay.
    let only_here = LiveEnv::new(&first, "evaclocal", 27);
    let prefix = shared1.prefix.clone();
    let names: Vec<String> = (1..=4).map(|i| format!("{prefix}-{i}")).collect();
    let _cleanup: Vec<VmGuard> = names
        .iter()
        .map(|n| VmGuard(vec![first.clone(), second.clone()], n.clone()))
        .collect();
    let script = format!(
        r#"
import "host" as host;
for i in 1..=3 {{
    HOST.create_vm(#{{ name: `{prefix}-${{i}}`, memory: 128, virt_type: "qemu", pxe: true, networks: ["{net}"] }});
}}
HOST.create_vm(#{{ name: "{prefix}-4", memory: 128, virt_type: "qemu", pxe: true, networks: ["{local}"] }});
// Only this test's VMs: other tests share the daemon.
let r = host::evacuate(HOST, connect(ARGS[0]), #{{ jobs: 2, bandwidth: "200M",
    migrate_uri: "tcp://172.31.250.2", filter: |n| n.starts_with("{prefix}-") }});
let moved = r.moved;
moved.sort();
print(`moved ${{moved}}`);
for f in r.failed {{ print(`failed ${{f.name}}: ${{f.error}}`); }}
assert_eq(r.stopped, []);
"#,
        net = shared1.net,
        local = only_here.net,
    );
    let run = Script::new(&script)
        .connect(&first)
        .script_arg(&second)
        .run();
    run.ok()
        .stdout_has(&format!(
            "moved [\"{prefix}-1\", \"{prefix}-2\", \"{prefix}-3\"]"
        ))
        .stdout_has(&format!(
            "failed {prefix}-4: VM {prefix}-4 uses network {}, which host {second} does not have",
            only_here.net
        ));
    for name in &names[..3] {
        assert!(
            virsh(&second, &["domstate", name]).contains("running"),
            "{name}"
        );
        assert!(!virsh_try(&first, &["dominfo", name]).0, "{name}");
    }
    assert!(virsh(&first, &["domstate", &names[3]]).contains("running"));
}

/// An offline move with copy_storage: libvirt copies storage only live, so
/// the disk goes first through libvirt's streams into the destination's pool
/// of the same name (over another directory here), then the definition,
/// pointing at the copy.
#[test]
fn live_stopped_vm_moves_offline_with_its_disk_copied() {
    let first = live_uri();
    let second = second_uri();
    let pool = crate::support::unique("offpool");
    let dirs = [
        format!("/var/lib/libvirt/images/{pool}-a"),
        format!("/var/lib/libvirt/images/{pool}-b"),
    ];
    struct Pools(Vec<(String, String)>, String);
    impl Drop for Pools {
        fn drop(&mut self) {
            for (uri, dir) in &self.0 {
                let _ = virsh_try(uri, &["pool-destroy", &self.1]);
                let _ = virsh_try(uri, &["pool-undefine", &self.1]);
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    let _pools = Pools(
        vec![
            (first.clone(), dirs[0].clone()),
            (second.clone(), dirs[1].clone()),
        ],
        pool.clone(),
    );
    for (uri, dir) in [(&first, &dirs[0]), (&second, &dirs[1])] {
        std::fs::create_dir_all(dir).unwrap();
        virsh(uri, &["pool-define-as", &pool, "dir", "--target", dir]);
        virsh(uri, &["pool-start", &pool]);
    }
    let env = LiveEnv::new(&first, "migcopy", 28);
    let _env2 = env.mirror_on(&second, 28);
    let name = format!("{}-vm", env.prefix);
    let _cleanup = VmGuard(vec![first.clone(), second.clone()], name.clone());
    let script = format!(
        r#"
let vm = HOST.define_vm(#{{ name: "{name}", memory: 128, virt_type: "qemu", import: true,
    disks: [#{{ pool: "{pool}", size: "8M", format: "raw" }}], networks: ["{net}"] }});
let moved = vm.migrate(connect(ARGS[0]), #{{ copy_storage: "all" }});
print(moved.disks()[0].source);
assert_eq(moved.state, "shut off");
assert_eq(HOST.find_vm("{name}"), ());
"#,
        net = env.net
    );
    let run = Script::new(&script)
        .connect(&first)
        .script_arg(&second)
        .run();
    run.ok();
    let copied = run.stdout.trim();
    assert!(copied.starts_with(&dirs[1]), "{copied}");
    assert!(std::path::Path::new(copied).exists(), "{copied}");
    assert!(virsh(&second, &["vol-list", &pool]).contains(&name));
    // The source's own volume stays where it was (a migration deletes no storage).
    assert!(virsh(&first, &["vol-list", &pool]).contains(&name));
}
