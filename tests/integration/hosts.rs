//! Many hosts for real: runs on the first daemon (tools/libvirtd-netns.sh) and
//! the second host (tools/libvirtd-host2.sh, its own network, mount and UTS
//! namespaces), both reached through their unix sockets.
use std::process::Command;

use crate::support::*;

/// Removes a network from every listed host, also when the test fails.
struct NetworkOn(Vec<String>, String);

impl Drop for NetworkOn {
    fn drop(&mut self) {
        for uri in &self.0 {
            let _ = virsh_try(uri, &["net-destroy", &self.1]);
            let _ = virsh_try(uri, &["net-undefine", &self.1]);
        }
    }
}

fn report_of(run: &Run) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.dir.path().join("r.json")).unwrap()).unwrap()
}

#[test]
fn live_two_hosts_run_in_parallel_with_a_section_each() {
    let first = live_uri();
    let second = second_uri();
    let name = unique("twohosts");
    let _cleanup = NetworkOn(vec![first.clone(), second.clone()], name.clone());
    let script = format!(
        "let n = HOST.ensure_network(#{{ name: \"{name}\" }});\n\
         #{{ host: HOST.hostname, action: n.action }}"
    );
    let run = Script::new(&script)
        .connect(&first)
        .arg("-c")
        .arg(&second)
        .arg("--json")
        .arg("--report")
        .arg("r.json")
        .run();
    run.code(0);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out[&first]["action"], "created", "{}", run.stdout);
    assert_eq!(out[&second]["action"], "created", "{}", run.stdout);
    // Two hosts, not one twice: the second answers with its own hostname.
    assert_eq!(out[&second]["host"], "vs-host2", "{}", run.stdout);
    assert_ne!(out[&first]["host"], "vs-host2", "{}", run.stdout);
    let report = report_of(&run);
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    for (section, uri) in hosts.iter().zip([&first, &second]) {
        assert_eq!(section["uri"], uri.as_str());
        assert_eq!(section["exit_code"], 0);
        let actions: Vec<&str> = section["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["define_network", "start_network"], "{section}");
    }
    // Each daemon has its own copy of the network.
    for uri in [&first, &second] {
        assert!(virsh(uri, &["net-info", &name]).contains(&name));
    }
}

#[test]
fn live_hosts_file_with_one_unreachable_host_reports_two_successes_and_one_failure() {
    let first = live_uri();
    let second = second_uri();
    let unreachable = "qemu+unix:///system?socket=/nonexistent/libvirt-sock";
    let run = Script::new("HOST.hostname")
        .file(
            "hosts.txt",
            &format!(
                "# the two test hosts and one that is down\n{first}\n{second}\n{unreachable}\n"
            ),
        )
        .arg("--hosts")
        .arg("hosts.txt")
        .arg("--report")
        .arg("r.json")
        .run();
    // One host down: exit 3, the others complete.
    run.code(3);
    let report = report_of(&run);
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{report}");
    let by_uri = |uri: &str| {
        hosts
            .iter()
            .find(|h| h["uri"] == uri)
            .unwrap_or_else(|| panic!("no section for {uri}: {report}"))
    };
    assert_eq!(by_uri(&first)["exit_code"], 0);
    assert_eq!(by_uri(&second)["exit_code"], 0);
    assert_eq!(by_uri(&second)["result"], "vs-host2");
    let down = by_uri(unreachable);
    assert_eq!(down["exit_code"], 3);
    let message = down["error"]["message"].as_str().unwrap();
    assert!(message.contains("/nonexistent/libvirt-sock"), "{message}");
}

#[test]
fn live_numa_cells_and_balancing_come_from_the_real_host() {
    let first = live_uri();
    let run = Script::new(
        "let n = HOST.numa();\n\
         print(`cells=${n.cells.len()} cpus=${n.cells[0].cpus} balancing=${n.balancing}`);\n\
         assert(n.cells[0].free_memory > 0 && n.cells[0].free_memory <= n.cells[0].memory);",
    )
    .connect(&first)
    .run();
    // This machine has one NUMA node with every CPU in it.
    let cpus = std::thread::available_parallelism().unwrap().get();
    let expect_cpus = if cpus == 1 {
        "0".to_owned()
    } else {
        format!("0-{}", cpus - 1)
    };
    let balancing = std::fs::read_to_string("/proc/sys/kernel/numa_balancing")
        .map(|v| (v.trim() != "0").to_string())
        .unwrap_or_else(|_| "()".into());
    run.ok()
        .stdout_has(&format!("cells=1 cpus={expect_cpus} balancing={balancing}"));
}

#[test]
fn live_kvm_support_is_the_hosts_answer_not_this_machines() {
    let first = live_uri();
    let second = second_uri();
    for uri in [&first, &second] {
        let run = Script::new(
            "let k = HOST.kvm_support();\n\
             assert(k.domain_types.contains(\"qemu\"), `${k.domain_types}`);\n\
             assert_eq(k.supported, k.domain_types.contains(\"kvm\"));\n\
             assert(k.machines.contains(\"pc\"), `${k.machines}`);\n\
             assert(k.firmware.some(|f| f.contains(\"OVMF\")), `${k.firmware}`);\n\
             assert(k.local != (), \"a unix-socket host is this machine\");\n\
             print(k.arch);",
        )
        .connect(uri)
        .run();
        run.ok().stdout_has("x86_64");
    }
    // The test driver is no machine: no local facts, no KVM.
    Script::new(
        "let k = HOST.kvm_support(); assert_eq(k.local, ()); assert(!k.supported); print(\"ok\");",
    )
    .run()
    .ok()
    .stdout_has("ok");
}

/// A pool on `uri` over its own directory, removed with its files on drop.
struct DirPool {
    uri: String,
    name: String,
    dir: String,
}

impl DirPool {
    fn new(uri: &str, tag: &str) -> DirPool {
        let name = unique(tag);
        let dir = format!("/var/lib/libvirt/images/{name}");
        std::fs::create_dir_all(&dir).unwrap();
        virsh(uri, &["pool-define-as", &name, "dir", "--target", &dir]);
        virsh(uri, &["pool-start", &name]);
        DirPool {
            uri: uri.into(),
            name,
            dir,
        }
    }
}

impl Drop for DirPool {
    fn drop(&mut self) {
        let _ = virsh_try(&self.uri, &["pool-destroy", &self.name]);
        let _ = virsh_try(&self.uri, &["pool-undefine", &self.name]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn live_a_volume_copied_to_the_other_host_keeps_its_bytes_and_holes() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let first = live_uri();
    let second = second_uri();
    let here = DirPool::new(&first, "copysrc");
    let there = DirPool::new(&second, "copydst");
    // 32 MiB with data at three places and holes between.
    let source = tempfile::NamedTempFile::new().unwrap();
    let file = source.as_file();
    file.set_len(32 << 20).unwrap();
    for (i, at) in [0u64, 10 << 20, (32 << 20) - 4096].iter().enumerate() {
        file.write_all_at(&vec![0xA0 + i as u8; 4096], *at).unwrap();
    }
    let script = format!(
        r#"
let vol = HOST.pool("{here}").create_volume(#{{ name: "data.img", capacity: "32M", format: "raw" }});
vol.upload(ARGS[1]);
let copy = vol.copy_to(connect(ARGS[0]).pool("{there}"));
assert_eq(copy.host.uri, ARGS[0]);
assert_eq(copy.capacity, vol.capacity);
print(copy.path);
"#,
        here = here.name,
        there = there.name
    );
    // The upload reads a file the operator named (the script's argument).
    let run = Script::new(&script)
        .connect(&first)
        .script_arg(&second)
        .script_arg(source.path().to_str().unwrap())
        .run();
    run.ok();
    let copied = run.stdout.trim();
    assert!(copied.starts_with(&there.dir), "{copied}");
    let want = std::fs::read(source.path()).unwrap();
    let got = std::fs::read(copied).unwrap();
    assert!(want == got, "the copy's bytes differ");
    // Holes stayed holes: far less than 32 MiB is allocated.
    let allocated = std::fs::metadata(copied).unwrap().blocks() * 512;
    assert!(allocated < 4 << 20, "{allocated} bytes allocated");
    // The second host's pool lists the copy.
    assert!(virsh(&second, &["vol-list", &there.name]).contains("data.img"));
}

/// libvirt's remote protocol over TCP, run where the address exists: inside
/// the first daemon's namespace (from the root namespace 172.31.250.2 is not
/// local, and traffic to it would leave the machine).
#[test]
fn live_the_second_host_answers_over_tcp_from_inside_the_first_namespace() {
    let _first = live_uri();
    let _ = second_uri();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tcp.rhai");
    std::fs::write(
        &script,
        "print(HOST.hostname);\nprint(HOST.numa().cells.len());",
    )
    .unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", "virtscript"])
        .arg(env!("CARGO_BIN_EXE_virtscript"))
        .args(["run", "-c", "qemu+tcp://172.31.250.2/system"])
        .arg(&script)
        .env_remove("LIBVIRT_DEFAULT_URI")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "vs-host2\n1\n");
}

/// cloud-init on another host: the seed is built in memory and uploaded into
/// that host's pool through libvirt; nothing is written on this machine, and
/// the seed goes with the VM.
#[test]
fn live_a_cloud_init_vm_on_the_second_host_boots_with_a_seed_uploaded_there() {
    let _first = live_uri();
    let second = second_uri();
    let there = DirPool::new(&second, "seedpool");
    let name = unique("seedvm");
    let _cleanup = VmGuard(vec![second.clone()], name.clone());
    let local = format!("/var/lib/libvirt/boot/virtscript-{name}-cidata.iso");
    let script = format!(
        r##"
let vm = HOST.create_vm(#{{ name: "{name}", memory: 128, virt_type: "qemu", networks: [],
    kernel: "{dir}/vmlinuz", initrd: "{dir}/initrd.img", cmdline: "console=ttyS0",
    cloud_init: #{{ pool: "{pool}", user_data: "#cloud-config\nhostname: seeded\n" }} }});
assert_eq(vm.state, "running");
let seed = vm.disks().filter(|d| d.device == "cdrom")[0].source;
print(seed);
assert_eq(HOST.volume_by_path(seed).pool.name, "{pool}");
"##,
        pool = there.name,
        dir = tiny_guest(),
    );
    let run = Script::new(&script).connect(&second).run();
    run.ok();
    let seed = run.stdout.trim().to_owned();
    assert_eq!(seed, format!("{}/virtscript-{name}-cidata.iso", there.dir));
    assert!(
        !std::path::Path::new(&local).exists(),
        "{local} was written"
    );
    // The uploaded image is the NoCloud seed: label cidata, the user data in it.
    let label = stdout_of(
        Command::new("isoinfo").args(["-d", "-i", &seed]),
        "isoinfo -d",
    );
    assert!(label.contains("Volume id: cidata"), "{label}");
    let user = stdout_of(
        Command::new("isoinfo").args(["-J", "-x", "/user-data", "-i", &seed]),
        "isoinfo -x",
    );
    assert_eq!(user, "#cloud-config\nhostname: seeded\n");
    // Undefined with the VM, though no remove_storage was asked for.
    Script::new(&format!(
        "let vm = HOST.vm(\"{name}\"); vm.destroy(); print(vm.undefine(#{{}}).removed_volumes);"
    ))
    .connect(&second)
    .run()
    .ok()
    .stdout_has(&seed);
    assert!(!std::path::Path::new(&seed).exists());
    assert!(!virsh(&second, &["vol-list", &there.name]).contains("cidata"));
}
