//! A small builder for running the `virtscript` binary on a script.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub use crate::conformance::conformance_documents;

/// The example without its `catch { ... }` blocks: an assert there runs only
/// when the call failed, so it proves nothing about what the call did.
pub fn outside_catch(example: &str) -> String {
    let mut out = String::new();
    let mut rest = example;
    while let Some(at) = rest.find("catch") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{') else {
            rest = "";
            break;
        };
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// An example (a doc comment's, a docs block) is a test: it asserts what it
/// did, outside any catch.
pub fn asserts_something(example: &str) -> bool {
    let code = outside_catch(example);
    code.contains("assert(") || code.contains("assert_eq(") || code.contains("assert_ne(")
}

/// Start `cmd` with stdout piped and wait until its first line is `first_line`
/// (the script says it is ready); stderr is as `cmd` set it.
pub fn spawn_until_line(cmd: &mut Command, first_line: &str) -> std::process::Child {
    use std::io::{BufRead, BufReader};
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, format!("{first_line}\n"));
    child
}

/// Run `cmd` and return its standard output; a failure fails the test with
/// `what` and the command's standard error.
pub fn stdout_of(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ifindex of `dev` inside the daemon's network namespace (empty when
/// there is no such device): it changes when the device is made again.
pub fn netns_ifindex(dev: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", "virtscript", "cat"])
        .arg(format!("/sys/class/net/{dev}/ifindex"))
        .output()
        .expect("ip netns exec runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The tiny test guest (kernel and initramfs, built once by tools/tiny-guest.sh):
/// the cache directory it prints, which holds `vmlinuz` and `initrd.img`.
pub fn tiny_guest() -> String {
    stdout_of(
        &mut Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/tiny-guest.sh")),
        "tiny-guest.sh",
    )
    .trim()
    .to_owned()
}

/// The real daemon's URI, from tools/test.sh (`VIRTSCRIPT_LIVE_URI`). Without
/// it a live test FAILS, naming the fix: a live test that returned early would
/// report ok without having run. To leave them out on purpose, say so:
/// `cargo test -- --skip live_` (libtest then counts them as filtered, not passed).
///
/// Each call also appends the test's name to `VIRTSCRIPT_LIVE_LOG` when that
/// is set: tools/test.sh counts the live tests that ran and fails on none.
pub fn live_uri() -> String {
    let uri = match std::env::var("VIRTSCRIPT_LIVE_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => panic!(
            "this live test needs the real libvirt daemon: run tools/test.sh (or set \
             VIRTSCRIPT_LIVE_URI=qemu:///system after tools/libvirtd-netns.sh start; \
             leave live tests out with `cargo test -- --skip live_`)"
        ),
    };
    if let Ok(log) = std::env::var("VIRTSCRIPT_LIVE_LOG") {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed live test")
            .to_owned();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("VIRTSCRIPT_LIVE_LOG {log}: {e}"));
        writeln!(file, "{name}").unwrap();
    }
    uri
}

/// The second host's URI (tools/libvirtd-host2.sh), from tools/test.sh.
pub fn second_uri() -> String {
    std::env::var("VIRTSCRIPT_LIVE_URI2")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("VIRTSCRIPT_LIVE_URI2 is unset: run the suite with tools/test.sh (it starts the second host)")
}

/// Run `virsh` against a URI and return its standard output (panics on failure).
pub fn virsh(uri: &str, args: &[&str]) -> String {
    stdout_of(
        Command::new("virsh").arg("-c").arg(uri).args(args),
        &format!("virsh {args:?}"),
    )
}

/// Like [`virsh`] but returns success and combined output instead of panicking.
pub fn virsh_try(uri: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("virsh")
        .arg("-c")
        .arg(uri)
        .args(args)
        .output()
        .expect("virsh runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A third octet of this process for live tests' subnets (10.N.octet.0/24;
/// each test picks its own N), so two test processes rarely share a subnet.
pub fn octet() -> u32 {
    std::process::id() % 250 + 1
}

/// Networks on the daemon that the test made: destroyed and undefined when
/// the guard drops, also when an assertion fails, so a network on a fixed
/// subnet can never outlive its test and break the next run's overlap check.
pub struct NetworkGuard {
    uri: String,
    names: Vec<String>,
}

impl NetworkGuard {
    pub fn new(uri: &str, names: &[&str]) -> NetworkGuard {
        NetworkGuard {
            uri: uri.to_owned(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }
}

impl Drop for NetworkGuard {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = virsh_try(&self.uri, &["net-destroy", name]);
            let _ = virsh_try(&self.uri, &["net-undefine", name]);
        }
    }
}

/// One number per call in this process: names made from it never repeat.
fn next_serial() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SERIAL: AtomicUsize = AtomicUsize::new(1);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// A unique object name for a live test, so tests can share one daemon: the
/// pid keeps processes apart, the serial (fixed width, so no name is the
/// start of another) keeps this process's tests apart.
pub fn unique(prefix: &str) -> String {
    format!("vst-{prefix}-{}-{:03}", std::process::id(), next_serial())
}

fn base36(mut n: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[n % 36]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// A unique network interface name for a live test: `vs`, the tag (at most
/// 4 characters), the pid and a serial, in base 36 (at most 13 characters;
/// the kernel allows 15). Unlike names built from `pid % N`, two tests of one
/// process, or of two processes, never get the same one.
pub fn ifname(tag: &str) -> String {
    assert!(tag.len() <= 4, "ifname tag {tag:?} is longer than 4");
    let name = format!(
        "vs{tag}{}{}",
        base36(std::process::id() as usize),
        base36(next_serial())
    );
    assert!(name.len() <= 15, "{name}");
    name
}

pub struct Script {
    dir: tempfile::TempDir,
    name: String,
    text: String,
    command: String,
    args: Vec<String>,
    script_args: Vec<String>,
    uri: Option<String>,
    stdin: Option<String>,
    env: Vec<(String, String)>,
    files: Vec<(String, String)>,
    /// Whether the script file is written at all (not: a missing script).
    write_script: bool,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: tempfile::TempDir,
}

impl Script {
    /// A script file `script.rhai` run with `virtscript run`.
    pub fn new(text: &str) -> Script {
        Script {
            dir: tempfile::tempdir().expect("temp dir"),
            name: "script.rhai".into(),
            text: text.into(),
            command: "run".into(),
            args: Vec::new(),
            script_args: Vec::new(),
            uri: None,
            stdin: None,
            env: Vec::new(),
            files: Vec::new(),
            write_script: true,
        }
    }

    /// Name a script file that does not exist (`virtscript run nope.rhai`).
    pub fn missing(name: &str) -> Script {
        Script {
            write_script: false,
            ..Script::new("").named(name)
        }
    }

    pub fn named(mut self, name: &str) -> Script {
        self.name = name.into();
        self
    }

    /// Use another subcommand (`check`) on the script.
    pub fn command(mut self, command: &str) -> Script {
        self.command = command.into();
        self
    }

    pub fn arg(mut self, arg: &str) -> Script {
        self.args.push(arg.into());
        self
    }

    /// Arguments after `--`, for the script's ARGS.
    pub fn script_arg(mut self, arg: &str) -> Script {
        self.script_args.push(arg.into());
        self
    }

    pub fn connect(mut self, uri: &str) -> Script {
        self.uri = Some(uri.into());
        self
    }

    pub fn stdin(mut self, text: &str) -> Script {
        self.stdin = Some(text.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Script {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Another file beside the script (a module for `--lib .`, data to upload...).
    pub fn file(mut self, name: &str, text: &str) -> Script {
        self.files.push((name.into(), text.into()));
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(self) -> Run {
        for (name, text) in &self.files {
            let path = self.dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        if self.write_script {
            std::fs::write(self.dir.path().join(&self.name), &self.text).unwrap();
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_virtscript"));
        cmd.current_dir(self.dir.path()).arg(&self.command);
        if self.command == "run" || self.command == "check" {
            cmd.arg(if self.stdin.is_some() && self.text.is_empty() {
                "-"
            } else {
                &self.name
            });
        }
        if let Some(uri) = &self.uri {
            cmd.arg("-c").arg(uri);
        }
        cmd.args(&self.args);
        if !self.script_args.is_empty() {
            cmd.arg("--").args(&self.script_args);
        }
        cmd.env_remove("LIBVIRT_DEFAULT_URI");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("virtscript starts");
        if let Some(input) = &self.stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        let dir = self.dir;
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            dir,
        }
    }
}

impl Run {
    /// Assert the exit status, showing the output when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code, expected,
            "exit status {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Run {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    /// stderr without the embedded-driver notice, for golden comparisons.
    pub fn diagnostics(&self) -> String {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with("virtscript: no URI given"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

/// The volume names in a pool, as `virsh vol-list` shows them.
pub fn vol_names(uri: &str, pool: &str) -> Vec<String> {
    virsh(uri, &["vol-list", pool])
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// `qemu-img info` of an image (`-U`: also while a guest has it open).
pub fn qemu_img_info(path: &str) -> String {
    stdout_of(
        Command::new("qemu-img").args(["info", "-U", path]),
        &format!("qemu-img info {path}"),
    )
}

/// A `dir` pool for one live test, in its own directory under
/// /var/lib/libvirt/images; removed (with its volumes) when dropped.
pub struct LivePool {
    pub uri: String,
    pub name: String,
    pub dir: String,
}

impl LivePool {
    /// Names only: the test makes the pool itself.
    pub fn named(uri: &str, what: &str) -> LivePool {
        let name = unique(what);
        LivePool {
            uri: uri.to_owned(),
            dir: format!("/var/lib/libvirt/images/{name}"),
            name,
        }
    }

    /// Defined, built and started with virsh.
    pub fn new(uri: &str, what: &str) -> LivePool {
        let pool = LivePool::named(uri, what);
        virsh(
            uri,
            &["pool-define-as", &pool.name, "dir", "--target", &pool.dir],
        );
        virsh(uri, &["pool-build", &pool.name]);
        virsh(uri, &["pool-start", &pool.name]);
        pool
    }
}

impl Drop for LivePool {
    fn drop(&mut self) {
        if virsh_try(&self.uri, &["pool-info", &self.name]).0 {
            for vol in vol_names(&self.uri, &self.name) {
                let _ = virsh_try(&self.uri, &["vol-delete", &vol, "--pool", &self.name]);
            }
        }
        let _ = virsh_try(&self.uri, &["pool-destroy", &self.name]);
        let _ = virsh_try(&self.uri, &["pool-undefine", &self.name]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A dir pool and a NAT network of our own on the real daemon (subnet
/// 10.2`subnet`.x.0/24, unique per test), and the prefix for the test's VMs;
/// all of it removed on drop.
pub struct LiveEnv {
    pub uri: String,
    pub prefix: String,
    pub pool: String,
    pub net: String,
    pub dir: String,
}

impl LiveEnv {
    pub fn new(uri: &str, tag: &str, subnet: u8) -> LiveEnv {
        let pool = unique(&format!("{tag}-pool"));
        let net = unique(&format!("{tag}-net"));
        LiveEnv::make(uri, unique(tag), pool, net, subnet)
    }

    /// The same pool (over the same directory, shared as an NFS export would
    /// be) and the same network (name and subnet) on another host, for
    /// migrations between the two.
    pub fn mirror_on(&self, uri: &str, subnet: u8) -> LiveEnv {
        LiveEnv::make(
            uri,
            self.prefix.clone(),
            self.pool.clone(),
            self.net.clone(),
            subnet,
        )
    }

    fn make(uri: &str, prefix: String, pool: String, net: String, subnet: u8) -> LiveEnv {
        let dir = format!("/var/lib/libvirt/images/{pool}");
        let _ = virsh_try(uri, &["pool-destroy", &pool]);
        let _ = virsh_try(uri, &["pool-undefine", &pool]);
        std::fs::create_dir_all(&dir).unwrap();
        virsh(uri, &["pool-define-as", &pool, "dir", "--target", &dir]);
        virsh(uri, &["pool-start", &pool]);
        let _ = virsh_try(uri, &["net-destroy", &net]);
        let _ = virsh_try(uri, &["net-undefine", &net]);
        let bridge = ifname("b");
        let third = std::process::id() % 250;
        let xml = format!(
            "<network><name>{net}</name><forward mode='nat'/><bridge name='{bridge}' stp='on' delay='0'/>\
             <ip address='10.2{subnet:02}.{third}.1' netmask='255.255.255.0'><dhcp>\
             <range start='10.2{subnet:02}.{third}.10' end='10.2{subnet:02}.{third}.200'/></dhcp></ip></network>"
        );
        let file = std::env::temp_dir().join(format!("{net}-{}.xml", ifname("x")));
        std::fs::write(&file, xml).unwrap();
        virsh(uri, &["net-define", file.to_str().unwrap()]);
        virsh(uri, &["net-start", &net]);
        LiveEnv {
            uri: uri.into(),
            prefix,
            pool,
            net,
            dir,
        }
    }
}

impl Drop for LiveEnv {
    fn drop(&mut self) {
        for vm in virsh_try(&self.uri, &["list", "--all", "--name"]).1.lines() {
            if vm.starts_with(&self.prefix) {
                let _ = virsh_try(&self.uri, &["destroy", vm]);
                let _ = virsh_try(
                    &self.uri,
                    &["undefine", vm, "--nvram", "--snapshots-metadata"],
                );
            }
        }
        let _ = virsh_try(&self.uri, &["net-destroy", &self.net]);
        let _ = virsh_try(&self.uri, &["net-undefine", &self.net]);
        for vol in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let _ = std::fs::remove_file(vol.path());
        }
        let _ = virsh_try(&self.uri, &["pool-destroy", &self.pool]);
        let _ = virsh_try(&self.uri, &["pool-undefine", &self.pool]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn unique_names_never_repeat_and_interface_names_fit_the_kernel() {
    let names: Vec<String> = (0..2000).map(|_| ifname("nic")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "an interface name repeated");
    assert!(names.iter().all(|n| n.len() <= 15), "{names:?}");
    let (a, b) = (unique("net"), unique("net"));
    assert_ne!(a, b);
    assert!(!b.starts_with(&a) && !a.starts_with(&b), "{a} {b}");
}

/// Live tests share one daemon, whose overlap check refuses a second network
/// on a subnet: no two test functions may use the same 10.N.<octet> block
/// (`10.N.{o}`, `LiveEnv::new(.., N)` for 10.2NN, recipes' `subnet(N)`).
#[test]
fn no_two_live_tests_share_a_subnet() {
    use std::collections::BTreeMap;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration");
    let mut users: BTreeMap<u32, std::collections::BTreeSet<String>> = BTreeMap::new();
    let number_after = |line: &str, start: usize| -> Option<u32> {
        let digits: String = line[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    };
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if file == "support.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut function = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("fn ") {
                function = format!("{file}:{}", rest.split('(').next().unwrap());
            }
            let mut found = Vec::new();
            for (at, _) in line.match_indices("10.") {
                if let Some(n) = number_after(line, at + 3) {
                    let after = &line[at + 3 + n.to_string().len()..];
                    if after.starts_with(".{o}") {
                        found.push(n);
                    }
                }
            }
            if let Some(at) = line.find("LiveEnv::new(") {
                if let Some(comma) = line[at..].rfind(", ") {
                    if let Some(n) = number_after(line, at + comma + 2) {
                        found.push(200 + n);
                    }
                }
            }
            if file == "recipes.rs" {
                for (at, _) in line.match_indices("subnet(") {
                    if let Some(n) = number_after(line, at + 7) {
                        found.push(n);
                    }
                }
            }
            for n in found {
                users.entry(n).or_default().insert(function.clone());
            }
        }
    }
    let shared: Vec<String> = users
        .iter()
        .filter(|(_, fns)| fns.len() > 1)
        .map(|(n, fns)| format!("10.{n}.x: {fns:?}"))
        .collect();
    assert!(users.len() >= 20, "found only {users:?}");
    assert!(
        shared.is_empty(),
        "subnets used by two tests:\n{}",
        shared.join("\n")
    );
}

/// Removes VM `name` from every listed host when the test ends, also when it
/// panics (destroyed, undefined with its NVRAM; its volumes are the test's).
pub struct VmGuard(pub Vec<String>, pub String);

impl Drop for VmGuard {
    fn drop(&mut self) {
        for uri in &self.0 {
            let _ = virsh_try(uri, &["destroy", &self.1]);
            let _ = virsh_try(uri, &["undefine", &self.1, "--nvram"]);
        }
    }
}
