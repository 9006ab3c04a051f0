//! The security boundaries (issue 18): what a script cannot make libvirt do —
//! run programs, read or write local files, define pools over system
//! directories, boot from files outside storage — on the embedded test driver
//! and under `--plan`. Each test asserts the refusal (kind, field, value, line)
//! and that nothing happened.
use std::path::Path;

use serde_json::Value;

use crate::support::{Run, Script};

/// A script that runs `body` (on line 2) and prints the error it threw, one
/// tab-separated line (`--json` prints nothing under `--plan`, so no JSON).
fn catching(body: &str) -> String {
    format!(
        "print(\"start\");\ntry {{ {body} }} catch (e) {{ print(\"caught\\t\" + e.kind + \"\\t\" + e.field + \"\\t\" + e.value + \"\\t\" + e.line + \"\\t\" + e.source + \"\\t\" + e.message); }}\n"
    )
}

/// The caught error of a [`catching`] script, which must have run to the end.
#[track_caller]
fn caught(run: &Run) -> Value {
    run.ok();
    let line = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("caught\t"))
        .unwrap_or_else(|| {
            panic!(
                "the script caught no error\n--- stdout\n{}\n--- stderr\n{}",
                run.stdout, run.stderr
            )
        });
    let f: Vec<&str> = line.splitn(6, '\t').collect();
    serde_json::json!({
        "kind": f[0], "field": f[1], "value": f[2],
        "line": f[3].parse::<i64>().unwrap_or(-1), "source": f[4], "message": f[5],
    })
}

/// The error is the policy's refusal of `field` = `value`, raised on line 2.
#[track_caller]
fn assert_refused(err: &Value, kind: &str, field: &str, value: &str) {
    assert_eq!(err["kind"], kind, "{err}");
    assert_eq!(err["field"], field, "{err}");
    assert_eq!(err["value"], value, "{err}");
    assert_eq!(err["line"], 2, "{err}");
    assert_eq!(err["source"], "script.rhai", "{err}");
}

/// A program that writes `marker` when run: proof that libvirt started it.
fn marker_program(dir: &Path) -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let marker = dir.join("marker");
    let program = dir.join("prog.sh");
    std::fs::write(
        &program,
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    (program.display().to_string(), marker)
}

#[test]
fn ext_transport_and_program_parameters_are_refused_in_run_and_plan() {
    let dir = tempfile::tempdir().unwrap();
    let (program, marker) = marker_program(dir.path());
    let uris = [
        format!("qemu+ext:///system?command={program}"),
        // libvirt takes a URI without `//` as well.
        format!("qemu+ext:/system?command={program}"),
        format!("qemu+ssh://localhost/system?netcat={program}"),
        format!("qemu+ssh://localhost/system?keyfile={program}"),
        format!(
            "qemu+tls://localhost/system?pkipath={}",
            dir.path().display()
        ),
        // libvirt unescapes parameter names and ignores their case.
        format!("qemu+ssh://localhost/system?%6Eetcat={program}"),
        format!("qemu+ssh://localhost/system?KNOWN_HOSTS={program}"),
    ];
    for uri in &uris {
        for plan in [false, true] {
            let mut script = Script::new(&catching(&format!("connect({uri:?});")));
            if plan {
                script = script.arg("--plan");
            }
            let run = script.run();
            let err = caught(&run);
            assert_refused(&err, "refused", "uri", uri);
            let message = err["message"].as_str().unwrap();
            if plan {
                assert!(message.contains("never during --plan"), "{message}");
            } else {
                assert!(message.contains("--allow-uri-param"), "{message}");
            }
            assert!(!marker.exists(), "{uri} (plan: {plan}) ran the program");
        }
    }
}

#[test]
fn ext_uri_on_the_command_line_is_a_usage_error_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (program, marker) = marker_program(dir.path());
    let uri = format!("qemu+ext:///system?command={program}");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, format!("test:///default\n{uri}\n")).unwrap();
    for args in [
        vec!["-c", uri.as_str()],
        vec!["--hosts", hosts.to_str().unwrap()],
        vec!["-c", uri.as_str(), "--plan"],
        // The flag never widens a rehearsal.
        vec!["-c", uri.as_str(), "--plan", "--allow-uri-param", "command"],
    ] {
        let mut script = Script::new("print(\"script ran\");");
        for a in &args {
            script = script.arg(a);
        }
        let run = script.run();
        run.code(2)
            .stderr_has("the ext transport runs a local program");
        assert!(!marker.exists(), "{args:?} ran the program");
    }
    // The REPL: `-c`, `:connect` and a script's connect() pass the same check.
    Script::new("")
        .command("repl")
        .connect(&uri)
        .run()
        .code(2)
        .stderr_has("the ext transport runs a local program");
    let repl = Script::new("")
        .command("repl")
        .stdin(&format!(
            ":connect {uri}\ntry {{ connect({uri:?}); }} catch (e) {{ print(`script: ${{e.kind}}`); }}\nprint(\"alive\");\n"
        ))
        .run();
    repl.ok()
        .stdout_has("script: refused")
        .stdout_has("alive")
        .stderr_has("HOST is still test:///default");
    assert!(!marker.exists(), "the REPL ran the program");
    // The operator's flag lets libvirt run it (it is no daemon: the connection fails).
    let run = Script::new("print(\"script ran\");")
        .connect(&uri)
        .arg("--allow-uri-param")
        .arg("command")
        .run();
    run.code(3);
    assert!(
        marker.exists(),
        "--allow-uri-param command did not let libvirt run {program}"
    );
}

#[test]
fn unknown_allow_uri_param_names_the_choices() {
    Script::new("1")
        .arg("--allow-uri-param")
        .arg("socket")
        .run()
        .code(2)
        .stderr_has("command");
}

#[test]
fn test_driver_files_outside_the_script_directory_are_refused_without_echo() {
    let elsewhere = tempfile::tempdir().unwrap();
    let secret = elsewhere.path().join("shadow");
    std::fs::write(&secret, "root:SECRET-HASH:19000:0:99999:7:::\n").unwrap();
    let uri = format!("test://{}", secret.display());
    // Directly, and through the local daemon (which reads the file as root).
    for through in [
        uri.clone(),
        format!("test:{}", secret.display()),
        format!("test+unix://{}", secret.display()),
        format!("qemu+unix:///system?name={uri}"),
    ] {
        for plan in [false, true] {
            let mut script = Script::new(&catching(&format!("connect({through:?});")));
            if plan {
                script = script.arg("--plan");
            }
            let run = script.run();
            let err = caught(&run);
            assert_refused(&err, "refused", "uri", &through);
            assert!(!run.stdout.contains("SECRET") && !run.stderr.contains("SECRET"));
        }
    }
    // Named by the operator it is opened, and libvirt's complaint (which quotes
    // the file's first line) is not passed on.
    let run = Script::new("1").connect(&uri).run();
    run.code(3)
        .stderr_has("is not a libvirt test driver document");
    assert!(!run.stderr.contains("SECRET"), "{}", run.stderr);
    // A script may open a file the operator named...
    let node = elsewhere.path().join("node.xml");
    std::fs::write(&node, NODE).unwrap();
    let node_uri = format!("test://{}", node.display());
    Script::new(&format!(
        "let h = connect({node_uri:?});\nprint(h.network(\"own\").name);"
    ))
    .connect(&node_uri)
    .run()
    .ok()
    .stdout_has("own");
    // ...and files under its own directory, whose parse errors are not echoed.
    let script = Script::new(
        "let h = connect(`test://${ARGS[0]}/own.xml`);\nprint(h.network(\"own\").name);\n\
         try { connect(`test://${ARGS[0]}/bad.xml`); } catch (e) { print(e.message); }\n",
    )
    .file("own.xml", NODE)
    .file("bad.xml", "SECRET-LINE\n");
    let dir = script.dir().display().to_string();
    let run = script.script_arg(&dir).run();
    run.ok().stdout_has("own");
    assert!(
        run.stdout.contains("is not a libvirt test driver document"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("SECRET") && !run.stderr.contains("SECRET"));
}

const NODE: &str = "<node><network><name>own</name><bridge name='vsown0'/></network></node>";

#[test]
fn plan_refuses_connecting_a_script_to_another_daemon() {
    let run = Script::new(&catching("connect(\"qemu:///system\");"))
        .arg("--plan")
        .run();
    let err = caught(&run);
    assert_refused(&err, "refused", "uri", "qemu:///system");
    assert!(err["message"].as_str().unwrap().contains("rehearsal"));
}

/// Size, modification time and content of a file: to show nothing touched it.
fn fingerprint(path: &Path) -> (u64, std::time::SystemTime, Vec<u8>) {
    let meta = std::fs::metadata(path).unwrap();
    (
        meta.len(),
        meta.modified().unwrap(),
        std::fs::read(path).unwrap(),
    )
}

#[test]
fn vm_save_never_writes_a_local_file_on_the_test_driver_or_in_a_rehearsal() {
    for plan in [false, true] {
        let script = Script::new(
            "let vm = HOST.vm(\"test\");\n\
             vm.save(\"victim.txt\");\n\
             vm.restore(\"victim.txt\");\n\
             vm.save(`${ARGS[0]}/new.save`);\n\
             print(`state ${vm.state}`);\n",
        );
        let dir = script.dir().to_path_buf();
        std::fs::write(dir.join("victim.txt"), "precious\n").unwrap();
        let before = fingerprint(&dir.join("victim.txt"));
        let mut script = script.script_arg(dir.to_str().unwrap());
        if plan {
            script = script.arg("--plan");
        }
        let run = script.run();
        // The saves went to a private directory (the restore found the first there).
        run.code(if plan { 10 } else { 0 })
            .stdout_has("state shut off");
        assert_eq!(fingerprint(&dir.join("victim.txt")), before, "plan: {plan}");
        assert!(!dir.join("new.save").exists(), "plan: {plan}");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "files appeared beside the script: {left:?}");
    }
}

#[test]
fn a_second_save_to_the_same_path_needs_overwrite() {
    for plan in [false, true] {
        let mut script = Script::new(&catching(
            "let vm = HOST.vm(\"test\"); vm.save(\"/var/tmp/state\"); vm.restore(\"/var/tmp/state\"); vm.save(\"/var/tmp/state\");",
        ));
        if plan {
            script = script.arg("--plan");
        }
        let run = script.run();
        let err = caught(&run);
        assert_refused(&err, "refused", "path", "/var/tmp/state");
        assert!(err["message"].as_str().unwrap().contains("overwrite: true"));
        assert!(!Path::new("/var/tmp/state").exists());
        let mut ok = Script::new(
            "let vm = HOST.vm(\"test\");\nvm.save(\"s\");\nvm.restore(\"s\");\nvm.save(\"s\", #{ overwrite: true });\nprint(vm.state);",
        );
        if plan {
            ok = ok.arg("--plan");
        }
        ok.run()
            .code(if plan { 10 } else { 0 })
            .stdout_has("shut off");
    }
}

#[test]
fn restore_reads_only_files_the_script_saved_on_the_test_driver() {
    for plan in [false, true] {
        let mut script = Script::new(&catching("HOST.vm(\"test\").restore(\"/etc/shadow\");"));
        if plan {
            script = script.arg("--plan");
        }
        let run = script.run();
        let err = caught(&run);
        assert_refused(&err, "not_found", "path", "/etc/shadow");
    }
}

#[test]
fn cloud_init_seed_is_not_written_on_this_machine_under_the_test_driver() {
    let name = format!("vst-seed-{}", std::process::id());
    let seed = format!("/var/lib/libvirt/boot/virtscript-{name}-cidata.iso");
    for plan in [false, true] {
        let mut script = Script::new(&format!(
            "let vm = HOST.create_vm(#{{ name: {name:?}, virt_type: \"qemu\", import: true, \
             disks: [#{{ pool: \"default-pool\", size: \"1G\" }}], cloud_init: #{{}} }});\n\
             let seed = vm.disks()[1].source;\nprint(seed);\nassert(file_size(seed) > 0);\n"
        ));
        if plan {
            script = script.arg("--plan");
        }
        let run = script.run();
        run.code(if plan { 10 } else { 0 });
        assert!(!Path::new(&seed).exists(), "plan: {plan}");
        // The seed lived in the private directory, removed at the end.
        let written = run.stdout.lines().next().unwrap().to_owned();
        assert!(written.contains("virtscript-scratch-"), "{written}");
        assert!(!Path::new(&written).exists(), "{written} left behind");
    }
}

/// Run `script` on the embedded driver and under `--plan`; each run must end
/// normally, the plan with no changes (a refusal made nothing).
fn on_both(script: &str, check: impl Fn(&Run, bool)) {
    for plan in [false, true] {
        let mut s = Script::new(script);
        if plan {
            s = s.arg("--plan");
        }
        let run = s.run();
        run.ok();
        if plan {
            run.stdout_has("plan: no changes");
        }
        check(&run, plan);
    }
}

#[test]
fn pools_over_system_directories_are_refused_and_not_defined() {
    for path in [
        "/",
        "/etc",
        "/etc/ssh",
        "/usr",
        "/usr/lib/x",
        "/boot",
        "/root/images",
        "//etc/",
    ] {
        let script = format!(
            "{}let left = HOST.pools().len();\nprint(`pools ${{left}} ${{HOST.find_pool(\"sys\") == ()}}`);\n",
            catching(&format!("HOST.define_pool(#{{ name: \"sys\", path: {path:?} }});"))
        );
        on_both(&script, |run, plan| {
            let err = caught(run);
            assert_refused(&err, "refused", "path", path);
            assert!(
                err["message"]
                    .as_str()
                    .unwrap()
                    .contains("system directory"),
                "{err}"
            );
            // The embedded driver has one pool of its own; `sys` was not made.
            run.stdout_has("pools 1 true");
            let _ = plan;
        });
    }
    // A directory of one's own is fine, and so is a device pool under /dev.
    Script::new(
        "HOST.define_pool(#{ name: \"mine\", path: \"/srv/vm-images\" });\n\
         HOST.define_pool(#{ name: \"vg\", type: \"logical\", path: \"/dev/vg0\", source: #{ name: \"vg0\" } });\n\
         print(HOST.pools().len());",
    )
    .run()
    .ok()
    .stdout_has("3");
}

#[test]
fn volume_names_that_are_the_pool_directory_or_hold_control_characters_are_refused() {
    for (name, shown) in [
        (".", "."),
        ("..", ".."),
        ("a\nb", "a\\nb"),
        ("tab\there", "tab\\there"),
    ] {
        let script = format!(
            "{}print(`volumes ${{HOST.pool(\"default-pool\").volumes().len()}}`);\n",
            catching(&format!(
                "HOST.pool(\"default-pool\").create_volume(#{{ name: {name:?}, capacity: \"1M\" }});"
            ))
        );
        on_both(&script, |run, _| {
            let err = caught(run);
            assert_refused(&err, "invalid", "name", shown);
            run.stdout_has("volumes 0");
        });
    }
}

#[test]
fn object_names_with_control_characters_are_refused() {
    let cases = [
        (
            "HOST.define_vm(#{ name: \"evil\\nvm\", virt_type: \"qemu\", pxe: true });",
            "evil\\nvm",
        ),
        (
            "HOST.define_pool(#{ name: \"p\\u001b[2J\", path: \"/srv/p\" });",
            "p\\u{1b}[2J",
        ),
        ("HOST.vm(\"test\").snapshot(\"s\\r1\");", "s\\r1"),
        (
            "HOST.define_network(#{ name: \"n\\tx\", bridge: \"vsbad0\" });",
            "n\\tx",
        ),
    ];
    for (body, shown) in cases {
        let script = format!(
            "{}print(`counts ${{HOST.vms().len()}} ${{HOST.pools().len()}} ${{HOST.networks().len()}} ${{HOST.vm(\"test\").snapshots().len()}}`);\n",
            catching(body)
        );
        on_both(&script, |run, _| {
            let err = caught(run);
            assert_eq!(err["field"], "name", "{body}: {err}");
            assert_eq!(err["line"], 2, "{body}: {err}");
            assert!(
                err["message"]
                    .as_str()
                    .unwrap()
                    .contains("control characters"),
                "{body}: {err}"
            );
            assert_eq!(err["value"], shown, "{body}: {err}");
            run.stdout_has("counts 1 1 1 0");
        });
    }
}

#[test]
fn files_outside_pools_and_boot_directories_need_allow_path() {
    let cases = [
        (
            "HOST.define_vm(#{ name: \"v\", virt_type: \"qemu\", import: true, disks: [#{ path: \"/etc/shadow\" }] });",
            "disks[0].path",
        ),
        (
            "HOST.define_vm(#{ name: \"v\", virt_type: \"qemu\", import: true, disks: [\"/srv/pool/../../etc/shadow\"] });",
            "disks[0].path",
        ),
        (
            "HOST.define_vm(#{ name: \"v\", virt_type: \"qemu\", cdrom: \"/etc/shadow\" });",
            "cdrom",
        ),
        (
            "HOST.define_vm(#{ name: \"v\", virt_type: \"qemu\", kernel: \"/etc/shadow\" });",
            "kernel",
        ),
        (
            "HOST.define_vm(#{ name: \"v\", virt_type: \"qemu\", kernel: \"/var/lib/libvirt/boot/vmlinuz\", initrd: \"/etc/shadow\" });",
            "initrd",
        ),
        (
            "HOST.define_vm(#{ name: \"v\", virt_type: \"qemu\", location: \"/etc\" });",
            "location",
        ),
        (
            "HOST.vm(\"test\").attach_disk(#{ path: \"/etc/shadow\", config: true });",
            "disk.path",
        ),
    ];
    for (body, field) in cases {
        let script = format!(
            "{}print(`vms ${{HOST.vms().len()}} disks ${{HOST.vm(\"test\").disks().len()}}`);\n",
            catching(body)
        );
        on_both(&script, |run, _| {
            let err = caught(run);
            assert_eq!(err["kind"], "refused", "{body}: {err}");
            assert_eq!(err["field"], field, "{body}: {err}");
            assert_eq!(err["line"], 2, "{body}: {err}");
            assert!(err["message"]
                .as_str()
                .unwrap()
                .contains("allow_path: true"));
            run.stdout_has("vms 1 disks 1");
        });
    }
    // Raw XML passes the same check.
    let xml = "<domain type='test'><name>raw</name><memory>1024</memory><os><type>hvm</type></os>\
               <devices><disk type='file' device='disk'><source file='/etc/shadow'/>\
               <target dev='vda'/></disk></devices></domain>";
    on_both(
        &format!(
            "{}print(`vms ${{HOST.vms().len()}}`);\n",
            catching(&format!("HOST.define_vm_xml({xml:?});"))
        ),
        |run, _| {
            let err = caught(run);
            assert_refused(&err, "refused", "devices.disk[0].source", "/etc/shadow");
            run.stdout_has("vms 1");
        },
    );
    // allow_path widens where files may be, not what a path may hold.
    on_both(
        &format!(
            "{}print(`vms ${{HOST.vms().len()}}`);\n",
            catching("HOST.define_vm(#{ name: \"v\", virt_type: \"qemu\", import: true, disks: [\"/srv/a\\nb.img\"], allow_path: true });")
        ),
        |run, _| {
            let err = caught(run);
            assert_refused(&err, "invalid", "disks[0].path", "/srv/a\\nb.img");
            run.stdout_has("vms 1");
        },
    );
    // Asked for explicitly, it is allowed.
    Script::new(&format!(
        "let v = HOST.define_vm(#{{ name: \"v\", virt_type: \"qemu\", import: true, disks: [\"/srv/data.img\"], allow_path: true }});\n\
         v.attach_disk(#{{ path: \"/srv/x.img\", allow_path: true }});\n\
         HOST.define_vm_xml({xml:?}, #{{ allow_path: true }});\n\
         print(HOST.vms().len());"
    ))
    .run()
    .ok()
    .stdout_has("3");
}

/// Script lines that nest elements 50,000 deep (past any stack) and hand them
/// to every parser a script reaches; each call's error is printed.
const DEEP_XML: &str = "let deep = \"\"; for i in 0..50000 { deep += \"<a>\"; } for i in 0..50000 { deep += \"</a>\"; }\n\
    try { xml_parse(deep); } catch (e) { print(`xml_parse: ${e.message.sub_string(0, 120)}`); }\n\
    try { HOST.define_network_xml(`<network><name>deep</name>${deep}</network>`); } catch (e) { print(`network: ${e.message.sub_string(0, 120)}`); }\n\
    try { HOST.vm(\"test\").set_metadata(\"http://example.org/deep\", deep); } catch (e) { print(`metadata: ${e.message.sub_string(0, 120)}`); }\n\
    print(`alive ${HOST.networks().len()}`);\n";

#[test]
fn deeply_nested_xml_is_an_error_in_run_plan_and_repl() {
    let expect = |run: &Run| {
        for call in ["xml_parse", "network", "metadata"] {
            let line = run
                .stdout
                .lines()
                .find(|l| l.starts_with(&format!("{call}: ")))
                .unwrap_or_else(|| panic!("no {call} error:\n{}\n{}", run.stdout, run.stderr));
            assert!(line.contains("nested deeper than 256 levels"), "{line}");
        }
        run.stdout_has("alive 1");
    };
    on_both(DEEP_XML, |run, _| expect(run));
    let repl = Script::new("").command("repl").stdin(DEEP_XML).run();
    repl.ok();
    expect(&repl);
}

const DEEP_RECURSION: &str =
    "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } }\nprint(f(100000000));\n";

#[test]
fn recursion_past_the_stack_is_an_error_not_an_abort() {
    let parallel = "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } }\nprint(parallel([1, 2], |x| f(100000000)));\n";
    for (script, args) in [
        (DEEP_RECURSION, vec![]),
        (DEEP_RECURSION, vec!["--plan"]),
        // Each host runs on a thread of its own (a smaller stack than main's).
        (
            DEEP_RECURSION,
            vec!["-c", "test:///default", "-c", "test:///default"],
        ),
        (parallel, vec![]),
    ] {
        let mut s = Script::new(script).arg("--max-call-depth").arg("100000000");
        for a in &args {
            s = s.arg(a);
        }
        let run = s.run();
        run.code(1).stderr_has("ran out of stack");
        assert!(!run.stderr.contains("overflow"), "{args:?}: {}", run.stderr);
    }
    // The REPL reports it and goes on.
    let repl = Script::new("")
        .command("repl")
        .arg("--max-call-depth")
        .arg("100000000")
        .stdin(&format!("{DEEP_RECURSION}print(\"alive\");\n"))
        .run();
    repl.ok().stdout_has("alive").stderr_has("ran out of stack");
}

#[test]
fn connect_without_a_uri_uses_the_operators_environment_but_not_in_a_rehearsal() {
    let elsewhere = tempfile::tempdir().unwrap();
    let node = elsewhere.path().join("node.xml");
    std::fs::write(&node, NODE).unwrap();
    let node_uri = format!("test://{}", node.display());
    // The environment is the operator's: its test-driver file may be opened.
    Script::new("print(connect().network(\"own\").name);")
        .connect("test:///default")
        .env("LIBVIRT_DEFAULT_URI", &node_uri)
        .run()
        .ok()
        .stdout_has("own");
    // A rehearsal reaches no daemon, whichever way the script names it.
    let run = Script::new(&catching("connect();"))
        .connect("test:///default")
        .arg("--plan")
        .env("LIBVIRT_DEFAULT_URI", "qemu:///system")
        .run();
    assert_refused(&caught(&run), "refused", "uri", "qemu:///system");
}

#[test]
fn live_save_on_a_local_daemon_refuses_an_existing_file_unless_overwrite() {
    let uri = crate::support::live_uri();
    let env = crate::support::LiveEnv::new(&uri, "save", 48);
    let name = format!("{}-vm", env.prefix);
    let victim = Path::new(&env.dir).join("victim.save");
    std::fs::write(&victim, "precious\n").unwrap();
    let before = fingerprint(&victim);
    let fresh = Path::new(&env.dir).join("fresh.save");
    let run = Script::new(&format!(
        "let vm = HOST.create_vm(#{{ name: {name:?}, memory: 128, vcpus: 1, virt_type: \"qemu\", pxe: true, \
         graphics: \"none\", networks: [{net:?}] }});\n\
         try {{ vm.save({victim:?}); }} catch (e) {{ print(`caught ${{e.kind}} ${{e.field}} ${{e.line}}`); }}\n\
         print(`state ${{vm.state}}`);\n\
         vm.save({fresh:?});\n\
         print(`saved ${{vm.state}}`);\n",
        net = env.net,
        victim = victim.display().to_string(),
        fresh = fresh.display().to_string(),
    ))
    .connect(&uri)
    .run();
    run.ok()
        .stdout_has("caught refused path 2")
        .stdout_has("state running")
        .stdout_has("saved shut off");
    assert_eq!(
        fingerprint(&victim),
        before,
        "the refused save changed the file"
    );
    assert!(std::fs::metadata(&fresh).unwrap().len() > 0);
}

#[test]
fn a_scripts_test_driver_document_cannot_load_objects_from_elsewhere() {
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("net.xml");
    std::fs::write(
        &outside,
        "<network><name>outside</name><bridge name='vsout0'/></network>",
    )
    .unwrap();
    for plan in [false, true] {
        let script = Script::new(&catching("connect(`test://${ARGS[0]}/node.xml`);")).file(
            "node.xml",
            &format!("<node><network file='{}'/></node>", outside.display()),
        );
        let dir = script.dir().display().to_string();
        let mut script = script.script_arg(&dir);
        if plan {
            script = script.arg("--plan");
        }
        let run = script.run();
        let err = caught(&run);
        assert_refused(&err, "refused", "uri", &format!("test://{dir}/node.xml"));
        assert!(
            err["message"].as_str().unwrap().contains("net.xml"),
            "{err}"
        );
        assert!(!run.stdout.contains("outside</name>"));
    }
    // Files beside it are its own.
    let script = Script::new("print(connect(`test://${ARGS[0]}/node.xml`).network(\"own\").name);")
        .file("node.xml", "<node><network file='net.xml'/></node>")
        .file(
            "net.xml",
            "<network><name>own</name><bridge name='vsown1'/></network>",
        );
    let dir = script.dir().display().to_string();
    script.script_arg(&dir).run().ok().stdout_has("own");
}
