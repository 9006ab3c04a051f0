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
    for command in ["run", "check"] {
        let run = Script::missing("nope.rhai").command(command).run();
        run.code(2).stderr_has("cannot read nope.rhai");
        assert!(run.stdout.is_empty(), "{command}: {}", run.stdout);
    }
    let run = Script::new("").command("version").run();
    assert_eq!(run.code, 2, "no such subcommand");
    // Without `run` too: a path as the first argument implies it.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .current_dir(dir.path())
        .args(["nope.rhai"])
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
    // A link beside the script that leads elsewhere is outside the sandbox.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.rhai"), "import \"pw\" as pw;").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("pw.rhai")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .args(["run", "main.rhai"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("./pw.rhai leads outside ."), "{stderr}");
    assert!(!stderr.contains("root:"), "no file content: {stderr}");
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

/// What bash offers after `words` (the last one is being completed), from
/// the script `virtscript completions bash` printed.
fn bash_completes(script: &str, words: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("virtscript.bash");
    std::fs::write(&file, script).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"source '{}'
COMP_WORDS=({})
COMP_CWORD={}
_virtscript virtscript '{}' '{}'
printf '%s\n' "${{COMPREPLY[@]}}""#,
        file.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    offered.sort();
    offered
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let script = |shell: &str| {
        let run = Script::new("").command("completions").arg(shell).run();
        run.ok();
        run.stdout.clone()
    };
    // bash: the script, sourced, completes subcommands, flags and values.
    let bash = script("bash");
    assert_eq!(bash_completes(&bash, &["virtscript", "sch"]), ["schedule"]);
    assert_eq!(
        bash_completes(&bash, &["virtscript", "run", "--max-ar"]),
        ["--max-array-size"]
    );
    assert_eq!(
        bash_completes(&bash, &["virtscript", "run", "--log-level", ""]),
        ["debug", "error", "info", "warn"]
    );
    assert_eq!(
        bash_completes(&bash, &["virtscript", "completions", "f"]),
        ["fish"]
    );
    // zsh and fish (neither shell is installed here): each names every
    // subcommand and run's flags in its own syntax.
    let zsh = script("zsh");
    assert!(zsh.starts_with("#compdef virtscript\n"), "{zsh}");
    for needle in [
        "(run)",
        "(schedule)",
        "'--atomic[",
        "--no-lock[",
        "'--hosts=[",
        "'--max-call-depth=[",
        ":LOG_LEVEL:(error warn info debug)",
    ] {
        assert!(zsh.contains(needle), "zsh lacks {needle:?}");
    }
    let fish = script("fish");
    for needle in [
        "complete -c virtscript -n \"__fish_virtscript_needs_command\" -f -a \"run\"",
        "complete -c virtscript -n \"__fish_virtscript_needs_command\" -f -a \"schedule\"",
        "__fish_virtscript_using_subcommand run\" -l atomic",
        "__fish_virtscript_using_subcommand run\" -l no-lock",
        "__fish_virtscript_using_subcommand run\" -l max-string-size",
        "__fish_virtscript_using_subcommand run\" -l log-level",
    ] {
        assert!(fish.contains(needle), "fish lacks {needle:?}");
    }
}

/// A closed stdout (`virtscript completions fish | head -1`) is no panic.
#[test]
fn completions_into_a_closed_pipe_exit_0() {
    use std::process::{Command, Stdio};
    for shell in ["bash", "zsh", "fish"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(["completions", shell])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{shell}: {stderr}");
        assert!(!stderr.contains("panicked"), "{shell}: {stderr}");
    }
}

#[test]
fn man_page() {
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
    let uri = live_uri();
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
    let uri = live_uri();
    // Make sure there is at least one of each to list.
    let net = crate::support::unique("list");
    let _guard = crate::support::NetworkGuard::new(&uri, &[&net]);
    let o = crate::support::octet();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join(format!("{net}.xml"));
    std::fs::write(&xml, format!("<network><name>{net}</name><ip address='10.235.{o}.1' netmask='255.255.255.0'/></network>")).unwrap();
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

/// stdout of a `--json` run must be exactly one JSON document.
fn one_json_document(stdout: &str) -> serde_json::Value {
    let mut docs = serde_json::Deserializer::from_str(stdout).into_iter::<serde_json::Value>();
    let first = docs
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout: {stdout:?}"))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout:?}"));
    assert!(docs.next().is_none(), "more than one document: {stdout:?}");
    first
}

#[test]
fn json_stdout_is_one_document_and_print_goes_to_stderr() {
    let run = Script::new("print(\"hello from print\");\ndebug(\"dbg\");\n#{ made: 2 }\n")
        .arg("--json")
        .run();
    run.ok().stderr_has("hello from print").stderr_has("dbg");
    assert_eq!(
        one_json_document(&run.stdout),
        serde_json::json!({ "made": 2 })
    );

    // A failure: the error object, with what it was about and where.
    let run = Script::new(
        "print(\"before\");\nlet name = \"x\";\nHOST.define_network(#{ name: name, ip: \"bogus\" });\n",
    )
    .arg("--json")
    .run();
    run.code(1).stderr_has("before");
    let error = one_json_document(&run.stdout);
    assert_eq!(error["kind"], "invalid");
    assert_eq!(error["field"], "ip");
    assert_eq!(error["value"], "bogus");
    assert_eq!(error["file"], "script.rhai");
    assert_eq!(error["line"], 3);
    assert_eq!(error["column"], 6);
    assert!(
        error["message"].as_str().unwrap().contains("ip:"),
        "{error}"
    );
    assert!(error.get("code").is_some(), "{error}");

    // A libvirt error carries libvirt's code; a compile error is an object too.
    let run = Script::new("HOST.vm(\"test\").start();")
        .arg("--json")
        .run();
    run.code(1);
    let error = one_json_document(&run.stdout);
    assert_eq!(error["kind"], "libvirt");
    assert_eq!(error["code_name"], "VIR_ERR_INTERNAL_ERROR");
    let run = Script::new("let = 1;").arg("--json").run();
    run.code(2);
    assert_eq!(one_json_document(&run.stdout)["kind"], "compile");
}

#[test]
fn without_json_the_final_value_is_shown() {
    Script::new("print(\"x\");\nHOST.vms()")
        .run()
        .ok()
        .stdout_has("x\n")
        .stdout_has(" test   running")
        .stdout_has("(1 row)\n");
    let run = Script::new("let a = 1;").run();
    run.ok();
    assert_eq!(run.stdout, "", "() shows nothing");
}

#[test]
fn shebang_script_runs_as_a_program_with_its_arguments() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.rhai");
    std::fs::write(
        &job,
        "#!/usr/bin/env virtscript\nprint(`args ${ARGS}`);\nlet x = ;\n",
    )
    .unwrap();
    std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_virtscript"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |text: &str| {
        std::fs::write(&job, text).unwrap();
        std::process::Command::new("./job.rhai")
            .args(["a", "b c"])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("LIBVIRT_DEFAULT_URI")
            .output()
            .unwrap()
    };
    // Options of run before the script, as `#!/usr/bin/env -S virtscript --lib DIR` gives them.
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(dir.path().join("lib/m.rhai"), "fn f() { 7 }").unwrap();
    std::fs::write(
        dir.path().join("uses.rhai"),
        "import \"m\" as m;\nprint(m::f());",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .args(["--lib", "lib", "-q", "--timeout", "1m", "uses.rhai"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "7\n");
    let out = run("#!/usr/bin/env virtscript\nprint(`args ${ARGS}`);\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "args [\"a\", \"b c\"]\n"
    );
    // Line numbers are the file's: the #! line is line 1.
    let out = run("#!/usr/bin/env virtscript\nprint(1);\nlet x = ;\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("./job.rhai:3:9"));
}

#[test]
fn arguments_after_the_script_are_args_without_double_dash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("args.rhai"), "print(ARGS);").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("LIBVIRT_DEFAULT_URI")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, _) = run(&["run", "args.rhai", "a", "b"]);
    assert_eq!((code, stdout.as_str()), (Some(0), "[\"a\", \"b\"]\n"));
    // Options of virtscript go before the arguments; after them all is ARGS.
    let (code, stdout, stderr) = run(&["run", "args.rhai", "-q", "a", "-c", "x"]);
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "[\"a\", \"-c\", \"x\"]\n")
    );
    assert!(
        !stderr.contains("embedded"),
        "-q silences the notice: {stderr}"
    );
    let (code, stdout, _) = run(&["run", "args.rhai", "--", "--json"]);
    assert_eq!((code, stdout.as_str()), (Some(0), "[\"--json\"]\n"));
}

#[test]
fn global_options_go_before_or_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.rhai"), "print(\"p\");\nHOST.uri").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("LIBVIRT_DEFAULT_URI")
            .output()
            .unwrap()
    };
    for args in [
        &["-c", "test:///default", "--json", "run", "x.rhai"][..],
        &["run", "x.rhai", "-c", "test:///default", "--json"][..],
        &["--json", "run", "-c", "test:///default", "x.rhai"][..],
        &["--connect=test:///default", "--json", "x.rhai"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(
            one_json_document(&String::from_utf8_lossy(&out.stdout)),
            "test:///default",
            "{args:?}"
        );
        // -c was given: no notice about the embedded driver.
        assert_eq!(String::from_utf8_lossy(&out.stderr), "p\n", "{args:?}");
    }
    // Several hosts still work.
    let out = run(&[
        "run",
        "-c",
        "test:///default",
        "-c",
        "test:///default",
        "x.rhai",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    // An empty URI would mean libvirt's own default: a usage error.
    for args in [
        &["-c", "", "run", "x.rhai"][..],
        &["run", "--plan", "x.rhai", "-c", " "][..],
        &["-c", "test:///default", "-c", "", "run", "x.rhai"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("empty URI"), "{args:?}: {stderr}");
        assert!(!stderr.contains("p\n"), "the script must not run: {stderr}");
        assert!(out.stdout.is_empty(), "the script must not run");
    }
}

#[test]
fn misspelt_methods_properties_and_spec_keys_say_did_you_mean() {
    let run = Script::new("let x = 1;\nHOST.netwrok(\"default\");\n").run();
    run.code(1);
    assert_eq!(
        run.diagnostics(),
        "error: HOST has no method 'netwrok'; did you mean 'network'?\n --> script.rhai:2:6\n  |\n2 | HOST.netwrok(\"default\");\n  |      ^\n"
    );
    Script::new("let vm = HOST.vm(\"test\");\nvm.strat();")
        .run()
        .code(1)
        .stderr_has("vm (a Vm) has no method 'strat'; did you mean 'start'?");
    Script::new("HOST.nmae")
        .run()
        .code(1)
        .stderr_has("HOST has no property 'nmae'");
    let run = Script::new("HOST.define_network(#{ nmae: \"lab\", ip: \"10.9.0.1/24\" });").run();
    run.code(1)
        .stderr_has("nmae: unknown key in network spec; did you mean 'name'? (got \"lab\")");
    assert!(
        !run.stderr.contains("known:"),
        "no list of every key: {}",
        run.stderr
    );
    Script::new("HOST.define_vm(#{ name: \"x\", memroy: \"1G\" });")
        .run()
        .code(1)
        .stderr_has("memroy: unknown key; did you mean 'memory'? (got \"1G\")");
    Script::new("fn deploy() { 1 }\ndelpoy();")
        .run()
        .code(1)
        .stderr_has("no function 'delpoy' taking (); did you mean 'deploy'?");
    // Rust type names never show.
    let run = Script::new("HOST.network(5);").run();
    run.code(1)
        .stderr_has("HOST: method 'network' takes (string), not (integer)");
    assert!(!run.stderr.contains("ImmutableString"), "{}", run.stderr);
}

#[test]
fn rust_log_is_honoured_and_an_explicit_level_wins() {
    let script = "HOST.define_network(#{ name: \"n\", ip: \"10.8.0.1/24\" });";
    let run = Script::new(script).env("RUST_LOG", "debug").run();
    run.ok().stderr_has("compiled").stderr_has("changed");
    let run = Script::new(script).run();
    run.ok();
    assert!(!run.stderr.contains("compiled"), "{}", run.stderr);
    let run = Script::new(script)
        .env("RUST_LOG", "debug")
        .arg("--log-level")
        .arg("warn")
        .run();
    run.ok();
    assert!(!run.stderr.contains("changed"), "{}", run.stderr);
    // -v raises the level: info shows the change, not debug's lines.
    let run = Script::new(script).arg("-v").run();
    run.ok().stderr_has("changed");
    assert!(!run.stderr.contains("compiled"), "{}", run.stderr);
}

#[test]
fn log_format_json_makes_every_stderr_line_json_and_text_has_no_colour_in_a_pipe() {
    let script = "print(\"shown\");\nHOST.define_network(#{ name: \"n\", ip: \"10.8.0.1/24\" });\nthrow \"boom\";";
    let run = Script::new(script)
        .arg("--json")
        .arg("--log-format")
        .arg("json")
        .arg("--log-level")
        .arg("info")
        .run();
    run.code(1);
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("embedded test driver")),
        "{messages:?}"
    );
    assert!(messages.contains(&"shown"), "{messages:?}");
    assert!(messages.contains(&"changed"), "{messages:?}");
    let error = lines
        .iter()
        .find(|l| l["message"] == "boom")
        .expect("the error line");
    assert_eq!(error["level"], "ERROR");
    assert_eq!(error["line"], 3);
    // A bad command line too.
    let bad = Script::new(script)
        .arg("--log-format")
        .arg("json")
        .arg("--no-such-flag")
        .run();
    bad.code(2);
    for line in bad.stderr.lines() {
        let line: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(line["level"], "ERROR");
    }
    assert!(bad.stderr.contains("--no-such-flag"), "{}", bad.stderr);
    let text = Script::new(script)
        .arg("--log-format")
        .arg("text")
        .arg("--log-level")
        .arg("info")
        .run();
    text.code(1).stderr_has("changed");
    assert!(
        !text.stderr.contains('\u{1b}'),
        "colour in a pipe: {:?}",
        text.stderr
    );
}

#[test]
fn bom_is_skipped_and_devices_and_huge_scripts_are_refused() {
    Script::new("\u{feff}print(\"bom ok\");")
        .run()
        .ok()
        .stdout_has("bom ok");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .args(["run", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/zero is not a regular file"));
    let big = format!("let x = 1;\n{}", "// padding\n".repeat(100));
    Script::new(&big)
        .arg("--max-script-size")
        .arg("1000")
        .run()
        .code(2)
        .stderr_has("larger than 1000 bytes; raise --max-script-size");
    Script::new(&big).run().ok();
}

#[test]
fn import_cycles_are_errors_in_run_and_check() {
    let a = "import \"b\" as b;\nfn fa() { 1 }\n";
    let b = "import \"a\" as a;\nfn fb() { 2 }\n";
    let run = Script::new("import \"a\" as a;\nprint(a::fa());")
        .file("a.rhai", a)
        .file("b.rhai", b)
        .run();
    run.code(1)
        .stderr_has("import cycle: ./a.rhai imports ./b.rhai imports ./a.rhai")
        .stderr_has("./b.rhai:1:");
    let check = Script::new("import \"a\" as a;")
        .command("check")
        .file("a.rhai", a)
        .file("b.rhai", b)
        .run();
    check
        .code(2)
        .stderr_has("import cycle: ./a.rhai imports ./b.rhai imports ./a.rhai")
        .stderr_has("./b.rhai:1:");
    // A script that imports itself.
    Script::new("import \"script\" as me;")
        .command("check")
        .run()
        .code(2)
        .stderr_has("import cycle");
}

#[test]
fn man_pages_for_every_subcommand_and_a_closed_pipe_is_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = Script::new("")
        .command("man")
        .arg("--dir")
        .arg(dir.path().to_str().unwrap())
        .run();
    run.ok().stdout_has("virtscript-run.1");
    let page = std::fs::read_to_string(dir.path().join("virtscript-run.1")).unwrap();
    assert!(page.contains("\\-\\-plan"), "run's options: {page}");
    assert!(page.contains("\\-\\-connect"), "global options too: {page}");
    for name in [
        "virtscript.1",
        "virtscript-check.1",
        "virtscript-schedule-install.1",
    ] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    Script::new("")
        .command("man")
        .arg("run")
        .run()
        .ok()
        .stdout_has(".TH virtscript-run");
    // `virtscript man | head`: the reader is gone before anything is written.
    let mut fds = [0; 2];
    // SAFETY: a pipe of our own; we close its read end at once.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::close(fds[0]);
    }
    // SAFETY: fds[1] is an open descriptor we own, handed to the child.
    let write_end = unsafe { <std::process::Stdio as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .arg("man")
        .stdout(write_end)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn json_to_a_full_disk_fails_and_a_huge_timeout_does_not_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.rhai"), "42").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .args(["run", "-q", "--json", "x.rhai"])
        .current_dir(dir.path())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the result"));
    // The shown value too.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .args(["run", "-q", "x.rhai"])
        .current_dir(dir.path())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the result"));
    Script::new("print(\"ran\");")
        .arg("--timeout")
        .arg("9223372036854775807s")
        .run()
        .ok()
        .stdout_has("ran");
}
