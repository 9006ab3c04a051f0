//! Unattended runs: locks, reports, parallel, transactions, schedules, plans.
use crate::support::{live_uri, Script};

#[test]
fn second_run_holding_the_lock_exits_5() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("job.lock");
    let script = dir.path().join("slow.rhai");
    std::fs::write(&script, "print(\"holding\");\nsleep(5);\n").unwrap();
    let mut first = crate::support::spawn_until_line(
        Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(["run", "--lock"])
            .arg(&lock)
            .arg(&script)
            .stderr(Stdio::null()),
        "holding",
    );
    let second = Script::new("print(\"second ran\");")
        .arg("--lock")
        .arg(lock.to_str().unwrap())
        .arg("--lock-timeout")
        .arg("200ms")
        .run();
    second.code(5).stderr_has("another run holds the lock");
    assert!(!second.stdout.contains("second ran"));
    first.kill().unwrap();
    first.wait().unwrap();
    // The kernel released the dead run's lock: the next run goes through.
    Script::new("print(\"third ran\");")
        .arg("--lock")
        .arg(lock.to_str().unwrap())
        .run()
        .ok()
        .stdout_has("third ran");
}

#[test]
fn report_records_result_error_and_hash() {
    let run = Script::new("let x = 1;\nthrow \"nightly failed\";\n")
        .arg("--report")
        .arg("report.json")
        .run();
    run.code(1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["script"], "script.rhai");
    assert_eq!(report["script_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(report["hosts"][0]["uri"], "test:///default");
    assert_eq!(report["hosts"][0]["error"]["message"], "nightly failed");
    assert_eq!(report["hosts"][0]["error"]["location"], "script.rhai:2:1");
    assert_eq!(report["hosts"][0]["error"]["kind"], "thrown");
    assert!(report["started"].as_str().unwrap().ends_with('Z'));

    // A bad input names the field and the value in the report too.
    let bad = Script::new("HOST.define_network(#{ name: \"n\", ip: \"bogus\" });")
        .arg("--report")
        .arg("bad.json")
        .run();
    bad.code(1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bad.dir.path().join("bad.json")).unwrap())
            .unwrap();
    let error = &report["hosts"][0]["error"];
    assert_eq!(
        (error["kind"].as_str(), error["field"].as_str()),
        (Some("invalid"), Some("ip"))
    );
    assert_eq!(error["value"], "bogus");

    let ok = Script::new("#{ made: 2 }")
        .arg("--report")
        .arg("r.json")
        .run();
    ok.ok();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ok.dir.path().join("r.json")).unwrap())
            .unwrap();
    assert_eq!(report["hosts"][0]["result"]["made"], 2);
    assert_eq!(report["exit_code"], 0);
}

#[test]
fn parallel_keeps_order_and_gathers_all_errors() {
    let run = Script::new(
        r#"
let out = parallel([5, 4, 3, 2, 1], |x| { sleep(x / 100.0); x * 2 });
print(out);
try {
    parallel([1, 2, 3, 4], |x| if x % 2 == 0 { throw `even ${x}` } else { x });
} catch (e) {
    print(e.message);
    print(e.errors.map(|x| x.index));
    print(e.results);
}
"#,
    )
    .arg("--jobs")
    .arg("3")
    .run();
    run.ok()
        .stdout_has("[10, 8, 6, 4, 2]")
        .stdout_has("2 of 4 parallel calls failed; first: even 2")
        .stdout_has("[1, 3]")
        .stdout_has("[1, (), 3, ()]");
}

#[test]
fn transaction_reraises_with_position() {
    let run = Script::new("let v = transaction(|| 1);\nprint(v);\ntransaction(|| {\n    throw \"step failed\";\n});\n").run();
    run.code(1)
        .stdout_has("1")
        .stderr_has("error: step failed (nothing to roll back)")
        .stderr_has("script.rhai:4:5")
        .stderr_has("called a closure from here");
}

#[test]
fn schedule_writes_units_systemd_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let job = dir.path().join("nightly.rhai");
    std::fs::write(&job, "print(1);").unwrap();
    let run = Script::new("")
        .command("schedule")
        .arg("install")
        .arg("lab-nightly")
        .arg("--on-calendar")
        .arg("*-*-* 02:30:00")
        .arg("--unit-dir")
        .arg(units.to_str().unwrap())
        .arg("--")
        .arg("run")
        .arg(job.to_str().unwrap())
        .arg("-c")
        .arg("qemu:///system")
        .run();
    run.ok().stdout_has("virtscript-lab-nightly.timer");
    let service = std::fs::read_to_string(units.join("virtscript-lab-nightly.service")).unwrap();
    let timer = std::fs::read_to_string(units.join("virtscript-lab-nightly.timer")).unwrap();
    assert!(service.contains("Type=oneshot"), "{service}");
    assert!(
        service.contains(&format!(
            r#""run" "--log-level=info" "{}" "-c" "qemu:///system""#,
            job.display()
        )),
        "{service}"
    );
    assert!(timer.contains("OnCalendar=*-*-* 02:30:00"), "{timer}");
    assert!(timer.contains("WantedBy=timers.target"), "{timer}");
    if std::path::Path::new("/usr/bin/systemd-analyze").exists() {
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(units.join("virtscript-lab-nightly.service"))
            .arg(units.join("virtscript-lab-nightly.timer"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Only problems with our units count; the container's own units may be noisy.
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("virtscript-lab-nightly"))
            .collect();
        assert!(ours.is_empty(), "systemd-analyze verify: {stderr}");
    }
    Script::new("")
        .command("schedule")
        .arg("list")
        .arg("--unit-dir")
        .arg(units.to_str().unwrap())
        .run()
        .ok()
        .stdout_has("lab-nightly\t*-*-* 02:30:00");
    Script::new("")
        .command("schedule")
        .arg("remove")
        .arg("lab-nightly")
        .arg("--unit-dir")
        .arg(units.to_str().unwrap())
        .run()
        .ok()
        .stdout_has("removed");
    assert!(!units.join("virtscript-lab-nightly.timer").exists());
}

fn schedule(args: &[&str]) -> crate::support::Run {
    let mut script = Script::new("").command("schedule");
    for a in args {
        script = script.arg(a);
    }
    script.run()
}

#[test]
fn schedule_cron_prints_a_crontab_line() {
    schedule(&[
        "install",
        "n1",
        "--cron",
        "--on-calendar",
        "daily",
        "--",
        "run",
        "/srv/job.rhai",
    ])
    .ok()
    .stdout_has("0 0 * * * ")
    .stdout_has("run --log-level=info /srv/job.rhai # virtscript job n1");
    let run = schedule(&[
        "install",
        "n2",
        "--cron",
        "--on-calendar",
        "*-*-* 02:30:00",
        "--",
        "run",
        "/srv/100%.rhai",
    ]);
    run.ok();
    assert!(
        run.stdout.starts_with("30 2 * * * /"),
        "a crontab line, not the calendar: {}",
        run.stdout
    );
    // cron turns a bare % into a line break.
    run.stdout_has("run --log-level=info '/srv/100\\%.rhai' # virtscript job n2");
    schedule(&[
        "install",
        "n3",
        "--cron",
        "--on-calendar",
        "Mon..Fri *-*-* 08:00",
        "--",
        "run",
        "x",
    ])
    .ok()
    .stdout_has("0 8 * * 1-5 ");
    // What cron cannot say is refused, naming why.
    schedule(&[
        "install",
        "n4",
        "--cron",
        "--on-calendar",
        "*-*-* 02:30:15",
        "--",
        "run",
        "x",
    ])
    .code(2)
    .stderr_has("cannot be written as a crontab line: cron runs at whole minutes");
    schedule(&["install", "../x", "--", "run"])
        .code(2)
        .stderr_has("job name");
}

#[test]
fn schedule_refuses_bad_calendars_and_control_characters_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let units = units.to_str().unwrap();
    for (when, arg, needle) in [
        ("bogus", "x.rhai", "--on-calendar \"bogus\""),
        ("daily\nUnit=evil.service", "x.rhai", "control character"),
        (
            "daily",
            "x.rhai\nExecStartPre=/bin/evil",
            "control character",
        ),
    ] {
        schedule(&[
            "install",
            "j",
            "--on-calendar",
            when,
            "--unit-dir",
            units,
            "--",
            "run",
            arg,
        ])
        .code(2)
        .stderr_has(needle);
        schedule(&[
            "install",
            "j",
            "--cron",
            "--on-calendar",
            when,
            "--",
            "run",
            arg,
        ])
        .code(2)
        .stderr_has(needle);
    }
    assert!(!dir.path().join("units").exists(), "nothing may be written");
}

#[test]
fn schedule_quotes_every_argument_for_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    schedule(&[
        "install",
        "q",
        "--unit-dir",
        units.to_str().unwrap(),
        "--",
        "run",
        "/srv/job.rhai",
        "50%",
        "$HOME",
        "two words",
    ])
    .ok();
    let service = std::fs::read_to_string(units.join("virtscript-q.service")).unwrap();
    let exec = service
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap();
    assert!(
        exec.ends_with(r#" "run" "--log-level=info" "/srv/job.rhai" "50%%" "$$HOME" "two words""#),
        "{exec}"
    );
    if std::path::Path::new("/usr/bin/systemd-analyze").exists() {
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(units.join("virtscript-q.service"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("virtscript-q"))
            .collect();
        assert!(ours.is_empty(), "systemd-analyze verify: {stderr}");
    }
}

#[test]
fn many_hosts_run_in_parallel_with_a_section_each() {
    let run = Script::new("HOST.uri")
        .connect("test:///default")
        .arg("-c")
        .arg("qemu+unix:///system?socket=/nonexistent")
        .arg("--json")
        .arg("--report")
        .arg("r.json")
        .run();
    run.code(3)
        .stdout_has("\"test:///default\": \"test:///default\"");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.path().join("r.json")).unwrap())
            .unwrap();
    assert_eq!(report["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(report["hosts"][1]["exit_code"], 3);
}

/// Every libvirt change is logged at info: JSON lines when stderr is not a
/// terminal (and with --log-format json), plain text with --log-format text,
/// nothing at the default level (warn) or below it.
#[test]
fn changes_are_logged_at_info_as_json_lines_or_text() {
    let script = r#"HOST.define_network(#{ name: "logged", forward: "nat", ip: "10.9.9.1/24" });"#;
    let changed = |stderr: &str| -> Vec<String> {
        stderr
            .lines()
            .filter(|l| l.contains("changed"))
            .map(str::to_owned)
            .collect()
    };
    for format in [None, Some("json")] {
        let mut s = Script::new(script).arg("--log-level").arg("info");
        if let Some(f) = format {
            s = s.arg("--log-format").arg(f);
        }
        let run = s.run();
        run.ok();
        let lines = changed(&run.stderr);
        assert_eq!(lines.len(), 1, "{format:?}: {}", run.stderr);
        let line: serde_json::Value = serde_json::from_str(&lines[0])
            .unwrap_or_else(|e| panic!("{format:?}: not a JSON line ({e}): {}", lines[0]));
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["message"], "changed", "{line}");
        assert_eq!(line["action"], "define_network", "{line}");
        assert_eq!(line["object"], "network logged", "{line}");
        assert_eq!(line["host"], "test:///default", "{line}");
    }
    let run = Script::new(script)
        .arg("--log-level")
        .arg("info")
        .arg("--log-format")
        .arg("text")
        .run();
    run.ok();
    let lines = changed(&run.stderr);
    assert_eq!(
        lines,
        [r#" INFO changed action="define_network" object="network logged" host="test:///default""#],
        "{}",
        run.stderr
    );
    for level in [None, Some("warn"), Some("error")] {
        let mut s = Script::new(script).arg("--log-format").arg("json");
        if let Some(l) = level {
            s = s.arg("--log-level").arg(l);
        }
        let run = s.run();
        run.ok();
        assert!(changed(&run.stderr).is_empty(), "{level:?}: {}", run.stderr);
    }
    // A script error is a diagnostic, never a log line (debug logs the
    // run's steps, but not the error).
    let run = Script::new("throw \"x\";")
        .arg("--log-level")
        .arg("debug")
        .run();
    run.code(1).stderr_has("error: x");
    assert!(
        run.stderr
            .lines()
            .filter(|l| l.contains("\"level\""))
            .all(|l| l.contains("\"DEBUG\"") && !l.contains("\"x\"")),
        "{}",
        run.stderr
    );
}

#[test]
fn live_plan_does_not_touch_the_host() {
    let uri = live_uri();
    let run = Script::new("print(HOST.uri);")
        .connect(&uri)
        .arg("--plan")
        .run();
    run.ok()
        .stdout_has("plan: no changes")
        .stdout_has("test://")
        .stderr_has("rehearsing on a copy of qemu:///system");
}

#[test]
fn live_plan_lists_changes_without_touching_the_host_then_nothing_after_a_run() {
    let uri = live_uri();
    let net = crate::support::unique("plan");
    let _guard = crate::support::NetworkGuard::new(&uri, &[&net]);
    let o = crate::support::octet();
    let script = format!(
        "HOST.ensure_network(#{{ name: \"{net}\", forward: \"nat\", ip: \"10.231.{o}.1/24\", dhcp: [\"10.231.{o}.10\", \"10.231.{o}.99\"] }});\n"
    );
    let plan = Script::new(&script).connect(&uri).arg("--plan").run();
    plan.code(10)
        .stdout_has(&format!("+ create network {net}"))
        .stdout_has("plan: 1 to create, 0 to change, 0 to remove");
    let (exists, _) = crate::support::virsh_try(&uri, &["net-info", &net]);
    assert!(!exists, "--plan must not create {net} on the host");

    Script::new(&script).connect(&uri).run().ok();
    assert!(crate::support::virsh(&uri, &["net-info", &net]).contains("Active:         yes"));
    let again = Script::new(&script).connect(&uri).arg("--plan").run();
    again.ok().stdout_has("plan: no changes");

    // A changed DHCP range shows up as a change with an XML diff.
    let changed = script.replace(&format!("10.231.{o}.99"), &format!("10.231.{o}.120"));
    let drift = Script::new(&changed).connect(&uri).arg("--plan").run();
    drift
        .code(10)
        .stdout_has(&format!("~ change network {net}"))
        .stdout_has(&format!("10.231.{o}.120"));
    crate::support::virsh_try(&uri, &["net-destroy", &net]);
    crate::support::virsh(&uri, &["net-undefine", &net]);
}

#[test]
fn live_failed_transaction_leaves_nothing_and_the_report_lists_the_rollback() {
    let uri = live_uri();
    let pool = crate::support::LivePool::new(&uri, "txpool");
    let net = crate::support::unique("txnet");
    let _guard = crate::support::NetworkGuard::new(&uri, &[&net]);
    let o = crate::support::octet();
    let vm = crate::support::unique("txvm");
    let script = format!(
        r#"
transaction(|| {{
    HOST.define_network(#{{ name: "{net}", ip: "10.232.{o}.1/24" }});
    let vol = HOST.pool("{pool}").create_volume(#{{ name: "disk.qcow2", capacity: "1G", format: "qcow2" }});
    HOST.define_vm(#{{ name: "{vm}", memory: 128, virt_type: "qemu", import: true, disks: [#{{ volume: vol }}], networks: ["{net}"] }});
    throw "the fourth step failed";
}});
"#,
        pool = pool.name
    );
    let run = Script::new(&script)
        .connect(&uri)
        .arg("--report")
        .arg("r.json")
        .run();
    run.code(1)
        .stderr_has("the fourth step failed (rolled back: define_vm")
        .stderr_has("create_volume")
        .stderr_has("define_network");
    assert!(
        !crate::support::virsh_try(&uri, &["net-info", &net]).0,
        "network left behind"
    );
    assert!(
        !crate::support::virsh_try(&uri, &["dominfo", &vm]).0,
        "VM left behind"
    );
    let vols = crate::support::vol_names(&uri, &pool.name);
    assert!(vols.is_empty(), "volume left behind: {vols:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.path().join("r.json")).unwrap())
            .unwrap();
    let host = &report["hosts"][0];
    let rolled: Vec<&str> = host["rolled_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(rolled.len(), 3, "{rolled:?}");
    assert!(rolled[0].starts_with("define_vm"), "{rolled:?}");
    assert!(rolled[1].starts_with("create_volume"), "{rolled:?}");
    assert!(rolled[2].starts_with("define_network"), "{rolled:?}");
    let actions: Vec<&str> = host["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["define_network", "create_volume", "define_vm"]);
}

#[test]
fn live_two_runs_of_one_job_never_overlap() {
    let uri = live_uri();
    let net = crate::support::unique("lock");
    let _guard = crate::support::NetworkGuard::new(&uri, &[&net]);
    let o = crate::support::octet();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.rhai");
    std::fs::write(
        &script,
        format!(
            "let r = HOST.ensure_network(#{{ name: \"{net}\", ip: \"10.233.{o}.1/24\" }});\nsleep(1.5);\nr.action\n"
        ),
    )
    .unwrap();
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(["run", "--json", "--lock-timeout", "0s", "-c", &uri])
            .arg(&script)
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(start);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let b = s.spawn(start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(5)),
        "exit codes {codes:?}"
    );
    let loser = if a.status.code() == Some(5) { &a } else { &b };
    assert!(String::from_utf8_lossy(&loser.stderr).contains("another run holds the lock"));
    let winner = if a.status.code() == Some(0) { &a } else { &b };
    assert_eq!(
        String::from_utf8_lossy(&winner.stdout).trim(),
        "\"created\""
    );
    crate::support::virsh_try(&uri, &["net-destroy", &net]);
    crate::support::virsh(&uri, &["net-undefine", &net]);
}

#[test]
fn live_parallel_volume_creation_in_one_pool_never_fails_busy() {
    let uri = live_uri();
    let pool = crate::support::LivePool::new(&uri, "par");
    let script = format!(
        r#"
let pool = HOST.pool("{}");
let vols = parallel(0..20, |i| pool.create_volume(#{{ name: `v${{i}}.qcow2`, capacity: "64M", format: "qcow2" }}).name);
vols.len()
"#,
        pool.name
    );
    let run = Script::new(&script)
        .connect(&uri)
        .arg("--json")
        .arg("--jobs")
        .arg("8")
        .run();
    run.ok();
    assert_eq!(run.stdout.trim(), "20");
    assert_eq!(crate::support::vol_names(&uri, &pool.name).len(), 20);
}

/// Restarts the shared daemon: run alone, after the rest (tools/test.sh runs `--ignored`).
#[test]
#[ignore = "restarts libvirtd; tools/test.sh runs it after the other tests"]
fn live_daemon_killed_mid_run_exits_3_and_a_rerun_converges() {
    let uri = live_uri();
    let net = crate::support::unique("kill");
    /// Removes the test's network even when an assertion fails (after the
    /// daemon is back: guards drop in reverse order).
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            crate::support::virsh_try(&self.0, &["net-destroy", &self.1]);
            crate::support::virsh_try(&self.0, &["net-undefine", &self.1]);
        }
    }
    // A run interrupted before its guards ran may have left its network.
    for old in crate::support::virsh(&uri, &["net-list", "--all", "--name"]).lines() {
        if old.trim().starts_with("vst-kill-") {
            drop(Cleanup(uri.clone(), old.trim().to_owned()));
        }
    }
    let _cleanup = Cleanup(uri.clone(), net.clone());
    let o = crate::support::octet();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.rhai");
    std::fs::write(
        &script,
        format!(
            "HOST.ensure_network(#{{ name: \"{net}\", ip: \"10.234.{o}.1/24\" }});\nprint(\"ready\");\nloop {{\n    HOST.network(\"{net}\").active;\n    sleep(0.05);\n}}\n"
        ),
    )
    .unwrap();
    let child = crate::support::spawn_until_line(
        std::process::Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(["run", "-c", &uri])
            .arg(&script)
            .stderr(std::process::Stdio::piped()),
        "ready",
    );
    /// Brings the shared daemon back even when an assertion below fails.
    struct Restart;
    impl Drop for Restart {
        fn drop(&mut self) {
            let harness = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/libvirtd-netns.sh");
            let ok = std::process::Command::new(harness)
                .arg("start")
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok || std::thread::panicking(), "libvirtd did not restart");
        }
    }
    let restart = Restart;
    // SIGKILL the harness's own daemon, by its pid file: never every libvirtd
    // on the machine (another host's daemon may run beside it).
    let harness = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/libvirtd-netns.sh");
    let killed = std::process::Command::new(harness)
        .arg("kill")
        .status()
        .unwrap();
    assert!(killed.success(), "tools/libvirtd-netns.sh kill failed");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("job.rhai:4:"), "{stderr}");
    assert!(stderr.contains("libvirt error"), "{stderr}");
    drop(restart);
    let rerun = Script::new(&format!(
        "HOST.ensure_network(#{{ name: \"{net}\", ip: \"10.234.{o}.1/24\" }}).action"
    ))
    .connect(&uri)
    .arg("--json")
    .run();
    rerun.ok();
    assert_eq!(rerun.stdout.trim(), "\"unchanged\"");
}

/// --hosts FILE: the script runs on every URI the file lists (comments and
/// blank lines skipped), each on its own HOST; an empty or missing file is a
/// usage error naming the file.
#[test]
fn hosts_file_runs_the_script_on_each_listed_host() {
    let dir = tempfile::tempdir().unwrap();
    let empty_node = dir.path().join("empty.xml");
    std::fs::write(&empty_node, "<node/>").unwrap();
    let other = format!("test://{}", empty_node.display());
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("# the lab hosts\n\ntest:///default\n  {other}  \n"),
    )
    .unwrap();
    let run = Script::new("`${HOST.uri} has ${HOST.vms().len()} VMs`")
        .arg("--hosts")
        .arg(hosts.to_str().unwrap())
        .arg("--json")
        .run();
    run.ok();
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        value["test:///default"], "test:///default has 1 VMs",
        "{value}"
    );
    assert_eq!(
        value[other.as_str()],
        format!("{other} has 0 VMs"),
        "{value}"
    );
    assert_eq!(value.as_object().unwrap().len(), 2, "{value}");

    std::fs::write(&hosts, "# nothing yet\n\n").unwrap();
    Script::new("1")
        .arg("--hosts")
        .arg(hosts.to_str().unwrap())
        .run()
        .code(2)
        .stderr_has(&format!("--hosts {} lists no URI", hosts.display()));
    Script::new("1")
        .arg("--hosts")
        .arg("/nonexistent/hosts")
        .run()
        .code(2)
        .stderr_has("cannot read --hosts /nonexistent/hosts: No such file or directory");
}

/// The engine's limits, each set by its flag: a script within it runs, one
/// past it fails at the line that went past.
#[test]
fn engine_limits_follow_their_flags() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "--max-call-depth",
            "8",
            "fn f(n) { if n == 0 { 0 } else { f(n - 1) } }\nprint(f(3));",
            "fn f(n) { if n == 0 { 0 } else { f(n - 1) } }\nprint(f(50));",
            "Stack overflow",
        ),
        (
            "--max-string-size",
            "10",
            "let s = \"0123456789\";\nprint(s.len());",
            "let s = \"0123456789\";\ns += \"x\";",
            "Length of string too large",
        ),
        (
            "--max-array-size",
            "3",
            "let a = [1, 2];\na.push(3);",
            "let a = [1, 2];\na.push(3); a.push(4);",
            "Size of array/BLOB too large",
        ),
        (
            "--max-map-size",
            "2",
            "let m = #{ a: 1 };\nm.b = 2;",
            "let m = #{ a: 1 };\nm.b = 2; m.c = 3;",
            "Size of object map too large",
        ),
    ];
    for (flag, limit, within, past, message) in cases {
        Script::new(within).arg(flag).arg(limit).run().ok();
        Script::new(past)
            .arg(flag)
            .arg(limit)
            .run()
            .code(1)
            .stderr_has(message)
            .stderr_has("--> script.rhai:2:");
        // Without the flag the default limit is far above: the same script runs.
        Script::new(past).run().ok();
    }
}

/// schedule --user: the units go to the user's systemd directory
/// ($XDG_CONFIG_HOME, else ~/.config), and list and remove find them there.
#[test]
fn schedule_user_writes_to_the_users_unit_directory() {
    for xdg in [true, false] {
        let home = tempfile::tempdir().unwrap();
        let units = if xdg {
            home.path().join("xdg/systemd/user")
        } else {
            home.path().join(".config/systemd/user")
        };
        let with_env = |s: Script| {
            let s = s.env("HOME", home.path().to_str().unwrap());
            if xdg {
                s.env("XDG_CONFIG_HOME", home.path().join("xdg").to_str().unwrap())
            } else {
                s.env("XDG_CONFIG_HOME", "")
            }
        };
        with_env(Script::new(""))
            .command("schedule")
            .arg("install")
            .arg("mine")
            .arg("--user")
            .arg("--")
            .arg("run")
            .arg("/srv/mine.rhai")
            .run()
            .ok()
            .stdout_has(&format!("wrote {}", units.join("virtscript-mine.timer").display()))
            .stdout_has("systemctl --user daemon-reload && systemctl --user enable --now virtscript-mine.timer");
        assert!(units.join("virtscript-mine.service").exists(), "xdg={xdg}");
        with_env(Script::new(""))
            .command("schedule")
            .arg("list")
            .arg("--user")
            .run()
            .ok()
            .stdout_has("mine\tdaily");
        with_env(Script::new(""))
            .command("schedule")
            .arg("remove")
            .arg("mine")
            .arg("--user")
            .run()
            .ok();
        assert!(!units.join("virtscript-mine.timer").exists(), "xdg={xdg}");
    }
}

/// --atomic on the real daemon: a script that fails after making things
/// leaves nothing (every change undone); the same script without it leaves
/// what it made.
#[test]
fn live_atomic_undoes_everything_a_failed_script_made() {
    let uri = live_uri();
    let names = [
        crate::support::unique("atomic-a"),
        crate::support::unique("atomic-b"),
    ];
    let _guard = Undefine(uri.clone(), names.to_vec());
    let script = format!(
        r#"HOST.define_network(#{{ name: "{}" }});
HOST.define_network(#{{ name: "{}" }}).start();
throw "step three failed";"#,
        names[0], names[1]
    );
    let exists = |name: &str| crate::support::virsh_try(&uri, &["net-info", name]).0;
    Script::new(&script)
        .connect(&uri)
        .arg("--atomic")
        .run()
        .code(1)
        .stderr_has("step three failed");
    assert!(
        !exists(&names[0]) && !exists(&names[1]),
        "--atomic left networks"
    );
    Script::new(&script).connect(&uri).run().code(1);
    assert!(
        exists(&names[0]) && exists(&names[1]),
        "without --atomic they stay"
    );
}

/// --no-lock on the real daemon: while one run of a job holds its lock, a
/// second run of the same job exits 5, and with --no-lock it runs at once.
#[test]
fn live_no_lock_runs_beside_a_run_holding_the_lock() {
    use std::process::{Command, Stdio};
    let uri = live_uri();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.rhai");
    std::fs::write(
        &script,
        "if ARGS.len() == 0 { print(\"holding\"); sleep(30); } else { print(\"ran\"); }\n",
    )
    .unwrap();
    let mut first = crate::support::spawn_until_line(
        Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(["run", "-c", &uri])
            .arg(&script)
            .stderr(Stdio::null()),
        "holding",
    );
    let second = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(["run", "-c", &uri, "--lock-timeout", "0s"])
            .args(extra)
            .arg(&script)
            .args(["--", "second"])
            .output()
            .unwrap()
    };
    let locked = second(&[]);
    let no_lock = second(&["--no-lock"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(
        locked.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&locked.stderr)
    );
    assert!(String::from_utf8_lossy(&locked.stderr).contains("another run holds the lock"));
    assert_eq!(
        no_lock.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&no_lock.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&no_lock.stdout), "ran\n");
}

/// Networks undefined when the test ends, also when it panics.
struct Undefine(String, Vec<String>);

impl Drop for Undefine {
    fn drop(&mut self) {
        for name in &self.1 {
            let _ = crate::support::virsh_try(&self.0, &["net-destroy", name]);
            let _ = crate::support::virsh_try(&self.0, &["net-undefine", name]);
        }
    }
}

#[test]
fn plan_as_json_on_stdout_and_in_the_report() {
    let script = "print(\"rehearsing\");\nHOST.define_network(#{ name: \"planned\", ip: \"10.5.0.1/24\" });\nHOST.network(\"default\").stop();\n";
    let run = Script::new(script)
        .connect("test:///default")
        .arg("--plan")
        .arg("--json")
        .run();
    run.code(10).stderr_has("rehearsing");
    let plan: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is one JSON document");
    assert_eq!(
        plan["summary"],
        serde_json::json!({ "create": 1, "change": 1, "remove": 0 })
    );
    let changes = plan["changes"].as_array().unwrap();
    let created = changes.iter().find(|c| c["action"] == "create").unwrap();
    assert_eq!(created["object"], "network");
    assert_eq!(created["name"], "planned");
    assert!(
        created["diff"]
            .as_str()
            .unwrap()
            .contains("+  <name>planned</name>"),
        "{created}"
    );
    let changed = changes.iter().find(|c| c["action"] == "change").unwrap();
    assert_eq!(changed["name"], "default");
    assert_eq!(changed["before"]["active"], true);
    assert_eq!(changed["after"]["active"], false);

    let run = Script::new(script)
        .connect("test:///default")
        .arg("--plan")
        .arg("--report")
        .arg("r.json")
        .run();
    run.code(10).stdout_has("+ create network planned");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.path().join("r.json")).unwrap())
            .unwrap();
    assert_eq!(report["exit_code"], 10);
    assert_eq!(report["hosts"][0]["plan"]["summary"]["create"], 1);
    // A host that cannot be reached outranks the other host's changes.
    let run = Script::new(script)
        .connect("test:///default")
        .arg("-c")
        .arg("qemu+unix:///system?socket=/nonexistent")
        .arg("--plan")
        .arg("--json")
        .run();
    run.code(3);
    let plans: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plans["test:///default"]["summary"]["create"], 1);
    assert_eq!(
        plans["qemu+unix:///system?socket=/nonexistent"]["error"]["kind"],
        "connect"
    );
    // No changes: exit 0 and an empty plan.
    let run = Script::new("HOST.networks().len()")
        .connect("test:///default")
        .arg("--plan")
        .arg("--json")
        .run();
    run.ok();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["changes"], serde_json::json!([]));
}

#[test]
fn bad_lock_paths_are_usage_errors_checked_before_the_script_runs() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "precious\n").unwrap();
    let cases = [
        (notes.clone(), "holds other data"),
        (dir.path().to_owned(), "is a directory"),
        (dir.path().join("no/such/dir/x.lock"), "does not exist"),
    ];
    for (path, why) in &cases {
        let run = Script::new("print(\"ran\");")
            .arg("--lock")
            .arg(path.to_str().unwrap())
            .arg("--json")
            .run();
        run.code(2).stderr_has(why).stderr_has("lock file");
        assert!(!run.stderr.contains("ran"), "the script must not run");
        let error: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(error["kind"], "usage");
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "precious\n");
    assert!(!dir.path().join("no").exists(), "no directory may be made");
    // A lock file of an earlier run is taken again.
    let lock = dir.path().join("job.lock");
    for _ in 0..2 {
        Script::new("print(\"ran\");")
            .arg("--lock")
            .arg(lock.to_str().unwrap())
            .run()
            .ok()
            .stdout_has("ran");
    }
}

#[test]
fn unwritable_report_is_refused_before_anything_runs() {
    let run = Script::new("print(\"ran\");")
        .arg("--report")
        .arg("/nonexistent/dir/r.json")
        .run();
    run.code(2)
        .stderr_has("--report /nonexistent/dir/r.json: cannot create it");
    assert!(!run.stdout.contains("ran"), "the script must not run");
    let run = Script::new("print(\"ran\");")
        .arg("--report")
        .arg(".")
        .run();
    run.code(2).stderr_has("not a regular file");
}

/// A job stopped by `signal` while inside --atomic: exit 4, rolled back, and
/// the report says so.
fn stopped_atomic_run(signal: i32) {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.rhai");
    std::fs::write(
        &script,
        "HOST.define_network(#{ name: \"made\", ip: \"10.6.0.1/24\" });\nprint(\"ready\");\nloop {\n    sleep(0.05);\n}\n",
    )
    .unwrap();
    let report = dir.path().join("r.json");
    let child = crate::support::spawn_until_line(
        Command::new(env!("CARGO_BIN_EXE_virtscript"))
            .args(["run", "-q", "--atomic", "--report"])
            .arg(&report)
            .arg(&script)
            .env_remove("LIBVIRT_DEFAULT_URI")
            .stderr(Stdio::piped()),
        "ready",
    );
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "signal {signal}: {stderr}");
    assert!(
        stderr.contains("script interrupted (rolled back: define_network network made)"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("the report is written"))
            .unwrap();
    assert_eq!(report["exit_code"], 4);
    assert_eq!(
        report["hosts"][0]["rolled_back"],
        serde_json::json!(["define_network network made"])
    );
    assert_eq!(report["hosts"][0]["error"]["kind"], "stopped");
}

#[test]
fn sigterm_and_sighup_stop_like_ctrl_c_with_rollback_and_report() {
    stopped_atomic_run(libc::SIGTERM);
    stopped_atomic_run(libc::SIGHUP);
    stopped_atomic_run(libc::SIGINT);
}

#[test]
fn timeout_inside_a_transaction_exits_4_with_the_rollback() {
    let run = Script::new(
        "transaction(|| {\n    HOST.define_network(#{ name: \"t\", ip: \"10.7.0.1/24\" });\n    loop { sleep(0.05); }\n});\n",
    )
    .arg("--timeout")
    .arg("300ms")
    .arg("--report")
    .arg("r.json")
    .run();
    run.code(4)
        .stderr_has("script timed out after 300ms (rolled back: define_network network t)");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.path().join("r.json")).unwrap())
            .unwrap();
    assert_eq!(report["exit_code"], 4);
    assert_eq!(
        report["hosts"][0]["rolled_back"],
        serde_json::json!(["define_network network t"])
    );
}

#[test]
fn a_signal_while_waiting_for_the_lock_is_a_stop() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("job.lock");
    let script = dir.path().join("slow.rhai");
    std::fs::write(&script, "print(\"holding\");\nsleep(30);\n").unwrap();
    let start = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_virtscript"));
        cmd.args(["run", "-q", "--lock-timeout", "30s", "--lock"])
            .arg(&lock)
            .arg(&script)
            .stderr(Stdio::piped());
        cmd
    };
    let mut first = crate::support::spawn_until_line(&mut start(), "holding");
    let second = start().stdout(Stdio::piped()).spawn().unwrap();
    // Wait (bounded) until the second has the lock file open: it is waiting.
    let holds_lock_file = || {
        std::fs::read_dir(format!("/proc/{}/fd", second.id()))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == lock))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !holds_lock_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "the second run never waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(second.id() as i32, libc::SIGTERM) };
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("interrupted while waiting for the lock"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "the script must not run");
    first.kill().unwrap();
    first.wait().unwrap();
}
