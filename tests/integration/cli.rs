//! The runner itself: exit statuses, diagnostics, sandbox, modules, CLI.
use crate::support::{live_uri, virsh, Script};

#[test]
fn one_line_script_runs_on_embedded_driver() {
    let run = Script::new("print(`hello from ${HOST.uri}`);").run();
    run.ok()
        .stdout_has("hello from test:///default")
        .stderr_has("using libvirt's embedded test driver test:///default")
        .stderr_has("-c qemu:///system");
}

#[test]
fn libvirt_default_uri_is_used_without_notice() {
    let run = Script::new("print(HOST.uri);")
        .env("LIBVIRT_DEFAULT_URI", "test:///default")
        .run();
    run.ok().stdout_has("test:///default");
    assert!(!run.stderr.contains("embedded"), "{}", run.stderr);
}

#[test]
fn typo_is_a_compile_error_with_caret_and_exit_2() {
    let run = Script::new("let x = 1;\nlet y = x +* 2;\n").run();
    run.code(2);
    assert_eq!(
        run.diagnostics(),
        "error: Unexpected '*'\n --> script.rhai:2:12\n  |\n2 | let y = x +* 2;\n  |            ^\n"
    );
}

#[test]
fn undefined_variable_is_caught_before_running() {
    let run = Script::new("print(\"side effect\");\nprint(hots);\n").run();
    run.code(2).stderr_has("script.rhai:2:7").stderr_has("hots");
    assert!(
        !run.stdout.contains("side effect"),
        "strict variables must fail at compile time"
    );
}

#[test]
fn runtime_error_exit_1_with_position() {
    let run = Script::new("let a = 1;\nthrow \"boom\";\n").run();
    run.code(1);
    assert_eq!(
        run.diagnostics(),
        "error: boom\n --> script.rhai:2:1\n  |\n2 | throw \"boom\";\n  | ^\n"
    );
}

#[test]
fn libvirt_error_is_catchable_as_map_with_position() {
    let run = Script::new(
        r#"
try {
    connect("qemu+unix:///system?socket=/nonexistent/sock");
} catch (e) {
    print(`${e.kind}|${e.line}|${e.column}|${type_of(e.code)}`);
    print(e.message);
}
"#,
    )
    .run();
    run.ok()
        .stdout_has("connect|3|5|i64")
        .stdout_has("cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent/sock");
}

#[test]
fn cannot_connect_exits_3() {
    let run = Script::new("print(1);")
        .connect("qemu+unix:///system?socket=/nonexistent/sock")
        .run();
    run.code(3)
        .stderr_has("cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent/sock");
    assert!(run.stdout.is_empty());
}

#[test]
fn timeout_stops_a_loop_with_exit_4() {
    let run = Script::new("let i = 0;\nloop { i += 1; }\n")
        .arg("--timeout")
        .arg("300ms")
        .run();
    run.code(4)
        .stderr_has("timed out after 300ms")
        .stderr_has("script.rhai:2:");
}

#[test]
fn timeout_interrupts_sleep() {
    let run = Script::new("sleep(30);")
        .arg("--timeout")
        .arg("200ms")
        .run();
    run.code(4).stderr_has("timed out");
}

#[test]
fn bad_flag_is_usage_error_2() {
    Script::new("1")
        .arg("--no-such-flag")
        .run()
        .code(2)
        .stderr_has("--no-such-flag");
    Script::new("1")
        .arg("--timeout")
        .arg("soon")
        .run()
        .code(2)
        .stderr_has("30s");
}

#[test]
fn missing_script_file_is_usage_error() {
    let run = Script::new("").command("version").run();
    assert_eq!(run.code, 2, "no such subcommand");
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .current_dir(dir.path())
        .args(["run", "nope.rhai"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read nope.rhai"));
}

#[test]
fn json_prints_final_value() {
    let run =
        Script::new("#{ name: \"lab\", count: 3, ok: true, items: [1, 2.5, ()], host: HOST }")
            .arg("--json")
            .run();
    run.ok();
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    assert_eq!(value["name"], "lab");
    assert_eq!(value["count"], 3);
    assert_eq!(value["ok"], true);
    assert_eq!(value["items"], serde_json::json!([1, 2.5, null]));
    assert_eq!(value["host"]["uri"], "test:///default");
}

#[test]
fn args_reach_the_script() {
    Script::new("print(ARGS.len()); print(ARGS[1]);")
        .script_arg("a")
        .script_arg("b c")
        .run()
        .ok()
        .stdout_has("2\nb c\n");
}

#[test]
fn host_and_args_are_visible_in_functions_and_constant() {
    Script::new("fn u() { HOST.uri + ARGS.len() }\nprint(u());")
        .script_arg("x")
        .run()
        .ok()
        .stdout_has("test:///default1");
    Script::new("HOST = 1;")
        .run()
        .code(1)
        .stderr_has("Cannot modify constant HOST");
}

#[test]
fn script_from_stdin() {
    Script::new("")
        .stdin("print(40 + 2);")
        .run()
        .ok()
        .stdout_has("42");
}

#[test]
fn eval_is_refused() {
    let run = Script::new("let x = eval(\"1 + 1\");").run();
    run.code(2).stderr_has("eval").stderr_has("script.rhai:1:");
}

#[test]
fn scripts_have_no_file_or_process_access() {
    for (script, why) in [
        (
            "import \"/etc/passwd\" as p;",
            "import paths are relative names",
        ),
        (
            "import \"../etc/passwd\" as p;",
            "import paths are relative names",
        ),
        (
            "let f = open_file(\"/etc/passwd\");",
            "no function 'open_file' taking (string)",
        ),
        ("let f = File::open(\"/etc/passwd\");", "open"),
        ("system(\"id\");", "no function 'system' taking (string)"),
    ] {
        let run = Script::new(script).run();
        assert_ne!(run.code, 0, "{script} must fail");
        run.stderr_has(why);
    }
}

#[test]
fn stdlib_module_imports_and_missing_module_is_clear() {
    Script::new("import \"retry\" as r;\nprint(r::retry(|| 7, 2, 0));")
        .run()
        .ok()
        .stdout_has("7");
    let run = Script::new("let a = 1;\nimport \"nosuch\" as n;\n").run();
    run.code(1)
        .stderr_has("module 'nosuch' not found; bundled modules: ")
        .stderr_has("retry")
        .stderr_has("pass --lib DIR")
        .stderr_has("script.rhai:2:");
}

#[test]
fn modules_beside_the_script_or_in_lib_and_errors_show_the_call_chain() {
    let module = "fn fail(x) {\n    let y = x;\n    throw `bad value ${y}`;\n}\n";
    let script = "import \"mine\" as m;\nm::fail(3);\n";
    // Beside the script: found without --lib, like every scripting language.
    let run = Script::new(script).file("mine.rhai", module).run();
    run.code(1);
    let expected = "error: bad value 3\n --> ./mine.rhai:3:5\n  |\n3 |     throw `bad value ${y}`;\n  |     ^\nnote: called function 'fail' from here\n --> script.rhai:2:4\n  |\n2 | m::fail(3);\n  |    ^\n";
    assert_eq!(run.diagnostics(), expected);
    // Elsewhere: only with --lib DIR.
    Script::new(script)
        .file("lib/mine.rhai", module)
        .run()
        .code(1)
        .stderr_has("module 'mine' not found")
        .stderr_has("searched .");
    Script::new(script)
        .file("lib/mine.rhai", module)
        .arg("--lib")
        .arg("lib")
        .run()
        .code(1)
        .stderr_has("error: bad value 3\n --> lib/mine.rhai:3:5");
    // A --lib that is not there is a usage error, not silently nothing.
    Script::new("print(1);")
        .arg("--lib")
        .arg("no-such-dir")
        .run()
        .code(2)
        .stderr_has("--lib no-such-dir: no such directory");
}

#[test]
fn check_reports_every_error_and_passes_good_scripts() {
    let run = Script::new("print(1);")
        .command("check")
        .file("bad1.rhai", "let x = ;\n")
        .file("bad2.rhai", "import \"nosuch\" as n;\n")
        .arg("bad1.rhai")
        .arg("bad2.rhai")
        .run();
    run.code(2)
        .stdout_has("ok: script.rhai")
        .stderr_has("bad1.rhai:1:9")
        .stderr_has("bad2.rhai:1:1")
        .stderr_has("module 'nosuch' not found")
        .stderr_has("2 of 3 scripts failed");
}

#[test]
fn check_does_not_run_or_connect() {
    let run = Script::new("print(\"ran\"); HOST.node_info();")
        .command("check")
        .run();
    run.ok();
    assert!(!run.stdout.contains("ran"));
    assert!(!run.stderr.contains("embedded test driver"));
}

#[test]
fn check_compiles_imported_modules() {
    let run = Script::new("import \"mine\" as m;")
        .command("check")
        .arg("--lib")
        .arg(".")
        .file("mine.rhai", "fn f() {\n  let = 2;\n}\n")
        .run();
    run.code(2).stderr_has("mine.rhai:2:");
}

#[test]
fn operation_limit_stops_runaway_scripts() {
    Script::new("loop {}")
        .arg("--max-operations")
        .arg("1000")
        .run()
        .code(1)
        .stderr_has("Too many operations");
}

#[test]
fn completions_and_man_page() {
    Script::new("")
        .command("completions")
        .arg("bash")
        .run()
        .ok()
        .stdout_has("virtscript");
    Script::new("")
        .command("man")
        .run()
        .ok()
        .stdout_has(".TH virtscript");
}

#[test]
fn api_doc_is_current() {
    let run = Script::new("").command("doc").run();
    run.ok();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md"))
        .unwrap_or_default();
    assert!(
        committed == run.stdout,
        "docs/api.md is stale: run `cargo run -- doc > docs/api.md`"
    );
    let json = Script::new("")
        .command("doc")
        .arg("--format")
        .arg("json")
        .run();
    let entries: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(entries
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["signature"] == "Host.node_info() -> map"));
}

#[test]
fn live_host_reports_the_daemon() {
    let Some(uri) = live_uri() else { return };
    let run = Script::new(
        "print(HOST.uri); print(HOST.hypervisor_version); print(HOST.memory_stats().total > 0);",
    )
    .connect(&uri)
    .run();
    run.ok().stdout_has("qemu:///system").stdout_has("true");
    let version = virsh(&uri, &["version"]);
    let hv = run.stdout.lines().nth(1).unwrap();
    assert!(version.contains(hv), "virsh version {version} lacks {hv}");
}

#[test]
fn ctrl_c_stops_the_script_with_exit_4() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spin.rhai");
    std::fs::write(&script, "print(\"ready\");\nloop {\n    sleep(0.05);\n}\n").unwrap();
    let child = crate::support::spawn_until_line(
        Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .arg("run")
            .arg(&script)
            .env_remove("LIBVIRT_DEFAULT_URI")
            .stderr(Stdio::piped()),
        "ready",
    );
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("error: script interrupted"), "{stderr}");
    assert!(
        stderr.contains("spin.rhai:2:") || stderr.contains("spin.rhai:3:"),
        "{stderr}"
    );
}

#[test]
fn missing_object_fails_at_the_calling_line_with_exit_1() {
    let run =
        Script::new("let name = \"nope\";\nlet vm = HOST.vm(name);\nprint(\"unreachable\");\n")
            .run();
    run.code(1);
    assert_eq!(
        run.diagnostics(),
        "error: no VM named \"nope\" on test:///default\n --> script.rhai:2:15\n  |\n2 | let vm = HOST.vm(name);\n  |               ^\n"
    );
    assert!(!run.stdout.contains("unreachable"));
}

#[test]
fn libvirt_errors_print_libvirts_message_and_code() {
    let run = Script::new("let vm = HOST.vm(\"test\");\nvm.start();\n").run();
    // The test driver's domain "test" is already running: libvirt refuses.
    run.code(1)
        .stderr_has("error: internal error: Domain 'test' is already running (libvirt error 1: VIR_ERR_INTERNAL_ERROR)")
        .stderr_has("script.rhai:2:4");
}

#[test]
fn live_run_lists_the_daemons_networks_and_pools() {
    let Some(uri) = live_uri() else { return };
    // Make sure there is at least one of each to list.
    let net = crate::support::unique("list");
    let xml = std::env::temp_dir().join(format!("{net}.xml"));
    std::fs::write(&xml, format!("<network><name>{net}</name><ip address='10.231.11.1' netmask='255.255.255.0'/></network>")).unwrap();
    virsh(&uri, &["net-define", xml.to_str().unwrap()]);
    let list = |what: &str| -> Vec<String> {
        virsh(&uri, &[what, "--all", "--name"])
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let (nets_before, pools_before) = (list("net-list"), list("pool-list"));
    let run = Script::new(
        "for n in HOST.networks() { print(`net ${n.name}`); }\nfor p in HOST.pools() { print(`pool ${p.name}`); }\n",
    )
    .connect(&uri)
    .run();
    run.ok();
    // Other tests share the daemon: check what existed both before and after.
    let (nets_after, pools_after) = (list("net-list"), list("pool-list"));
    for name in nets_before.iter().filter(|n| nets_after.contains(n)) {
        run.stdout_has(&format!("net {name}\n"));
    }
    for name in pools_before.iter().filter(|p| pools_after.contains(p)) {
        run.stdout_has(&format!("pool {name}\n"));
    }
    run.stdout_has(&format!("net {net}"));
    virsh(&uri, &["net-undefine", &net]);
    let _ = std::fs::remove_file(xml);
}

/// An unattended job whose stderr reader went away (`2>&1 | head`) still
/// runs to the end and exits with its own status, not a panic's.
#[test]
fn closed_stderr_does_not_change_the_outcome() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let run = |script: &str, args: &[&str]| {
        let path = dir.path().join("job.rhai");
        std::fs::write(&path, script).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args([
                "run",
                "-c",
                "test:///default",
                "--log-format=json",
                "--log-level=info",
            ])
            .args(args)
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Every change is logged on stderr, then the script carries on.
    let (code, stdout) = run(
        "for i in 0..20 { HOST.define_network(#{ name: `n${i}`, ip: `10.77.${i}.1/24` }); }\nprint(HOST.networks().len());",
        &[],
    );
    assert_eq!((code, stdout.trim()), (Some(0), "21"));
    // A failure's diagnostic cannot be shown, and the status still says "failed".
    let (code, _) = run("print(1);\nthrow \"boom\";", &[]);
    assert_eq!(code, Some(1));
}
