//! Unattended runs: locks, reports, parallel, transactions, schedules, plans.
use crate::support::{live_uri, Script};

#[test]
fn second_run_holding_the_lock_exits_5() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("job.lock");
    let script = dir.path().join("slow.rhai");
    std::fs::write(&script, "print(\"holding\");\nsleep(5);\n").unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_virtscript"))
        .args(["run", "--lock"])
        .arg(&lock)
        .arg(&script)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(first.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "holding\n");
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
    assert!(report["started"].as_str().unwrap().ends_with('Z'));

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
            "run --log-level=info {} -c qemu:///system",
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

#[test]
fn schedule_cron_prints_a_crontab_line() {
    Script::new("")
        .command("schedule")
        .arg("install")
        .arg("n1")
        .arg("--cron")
        .arg("--on-calendar")
        .arg("daily")
        .arg("--")
        .arg("run")
        .arg("/srv/job.rhai")
        .run()
        .ok()
        .stdout_has("@daily ")
        .stdout_has("run --log-level=info /srv/job.rhai # virtscript job n1");
    Script::new("")
        .command("schedule")
        .arg("install")
        .arg("../x")
        .arg("--")
        .arg("run")
        .run()
        .code(2)
        .stderr_has("job name");
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

#[test]
fn json_logs_when_not_a_terminal() {
    let run = Script::new("throw \"x\";")
        .arg("--log-level")
        .arg("info")
        .run();
    run.code(1);
    // No change was made, so no log line; the error itself is printed as a diagnostic.
    assert!(run.stderr.contains("error: x"));
}

#[test]
fn live_plan_does_not_touch_the_host() {
    let Some(uri) = live_uri() else { return };
    let run = Script::new("print(HOST.uri);")
        .connect(&uri)
        .arg("--plan")
        .run();
    run.ok()
        .stdout_has("plan: no changes")
        .stdout_has("test://")
        .stderr_has("rehearsing on a copy of qemu:///system");
}
