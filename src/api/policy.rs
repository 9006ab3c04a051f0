//! The security boundary. Every connection URI (script `connect()`, `-c`,
//! `--hosts`, the REPL, `--plan`) passes [`check_uri`]; every local path that
//! libvirt, or we for it, would write or read passes [`local_path`]; every
//! storage or boot path a script names passes [`check_pool_path`] and
//! [`check_source`]. What the operator allows is set once, from the command
//! line, by [`configure`]. A refusal is an error map with `kind: "refused"`,
//! the `field` and the `value`; the caller stamps the script line.
use crate::runtime::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::RwLock;

use clap::Args;

use super::error::ScriptError;

/// URI parameters that name a local program or key file (libvirt's remote
/// driver runs or reads them on the machine running virtscript).
pub const PROGRAM_PARAMS: &[&str] = &["command", "netcat", "keyfile", "pkipath", "known_hosts"];

/// Flags that widen what scripts may do.
#[derive(Debug, Clone, Default, Args)]
pub struct SecurityArgs {
    /// Allow this libvirt URI parameter, which names a local program or key file
    /// (repeatable; `command` also allows the `ext` transport). Never with --plan
    #[arg(long = "allow-uri-param", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(PROGRAM_PARAMS))]
    pub allow_uri_param: Vec<String>,
}

#[derive(Debug, Default)]
struct Policy {
    allowed_params: Vec<String>,
    /// `run --plan`: nothing may reach the host, whatever the flags say.
    rehearsal: bool,
    /// Test-driver files a script may open: under its own directory...
    script_dir: Option<PathBuf>,
    /// ...or named by the operator (`-c`, `--hosts`, `LIBVIRT_DEFAULT_URI`, `:connect`).
    operator_files: Vec<PathBuf>,
    /// Where local files go on the test driver and in a rehearsal (made on first use).
    scratch: Option<PathBuf>,
}

static POLICY: RwLock<Policy> = RwLock::new(Policy {
    allowed_params: Vec::new(),
    rehearsal: false,
    script_dir: None,
    operator_files: Vec::new(),
    scratch: None,
});

fn read() -> std::sync::RwLockReadGuard<'static, Policy> {
    POLICY.read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> std::sync::RwLockWriteGuard<'static, Policy> {
    POLICY.write().unwrap_or_else(|e| e.into_inner())
}

/// Set what the operator allows: the flags, the script (its directory holds
/// the test-driver files it may open) and whether this is a rehearsal.
pub fn configure(args: &SecurityArgs, script: Option<&Path>, rehearsal: bool) {
    let mut p = write();
    p.allowed_params = args.allow_uri_param.clone();
    p.rehearsal = rehearsal;
    p.script_dir = script
        .and_then(|s| std::fs::canonicalize(s).ok())
        .and_then(|s| s.parent().map(Path::to_path_buf));
}

/// Whether this run is a `--plan` rehearsal (nothing may reach a host or
/// the network: `location` URLs are not fetched).
pub fn rehearsing() -> bool {
    read().rehearsal
}

/// Remove the private directory local files were redirected into.
pub fn cleanup() {
    if let Some(dir) = write().scratch.take() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Who named a URI: the operator (command line, `:connect`), the operator's
/// environment for a script (`connect()` without a URI: `LIBVIRT_DEFAULT_URI`),
/// or a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Operator,
    Environment,
    Script,
}

fn refused(field: &str, value: &str, message: impl std::fmt::Display) -> ScriptError {
    ScriptError::new(ErrorKind::Refused, format!("{field}: {message}"))
        .with("field", field)
        .with("value", value.to_owned())
}

/// The parts of a libvirt URI the policy looks at.
struct UriParts<'a> {
    driver: String,
    transport: String,
    /// Server name (empty for a local daemon or the test driver).
    server: &'a str,
    path: &'a str,
    /// Parameter names, lower case, unescaped.
    params: Vec<String>,
    /// The `name=` parameter, unescaped: the URI a daemon opens for us.
    remote_name: Option<String>,
}

/// Split a URI as libvirt does: `scheme:` (letters, digits, `+`, `-`, `.`),
/// then `//server/path` or a bare `/path` (`test:/etc/x` opens the file too);
/// `None` for a name without a scheme (an alias from libvirt.conf).
fn parse_uri(uri: &str) -> Option<UriParts<'_>> {
    let (scheme, rest) = uri.split_once(':')?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let (driver, transport) = match scheme.split_once('+') {
        Some((d, t)) => (d.to_owned(), t.to_owned()),
        None => (scheme.clone(), String::new()),
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (server, path) = match location.strip_prefix("//") {
        Some(authority) => match authority.find('/') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        },
        None => ("", location),
    };
    // libvirt splits parameters on `&` and `;` and unescapes their names.
    let pairs: Vec<(String, &str)> = query
        .split(['&', ';'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(name).to_ascii_lowercase(), value)
        })
        .collect();
    let remote_name = pairs
        .iter()
        .find(|(n, _)| n == "name")
        .map(|(_, v)| percent_decode(v));
    Some(UriParts {
        driver,
        transport,
        server,
        path,
        params: pairs.into_iter().map(|(n, _)| n).collect(),
        remote_name,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file a test-driver URI loads (`test:///path/host.xml`, also through a
/// daemon: `test+unix:///path`, `qemu:///system?name=test:///path`), if any.
pub fn test_driver_file(uri: &str) -> Option<String> {
    let parts = parse_uri(uri)?;
    if parts.driver == "test" && !parts.path.is_empty() && parts.path != "/default" {
        return Some(parts.path.to_owned());
    }
    parts
        .remote_name
        .filter(|name| name != uri)
        .and_then(|name| test_driver_file(&name))
}

/// Whether a URI reaches a daemon (not libvirt's in-process test driver).
fn reaches_daemon(uri: &str) -> bool {
    parse_uri(uri)
        .is_none_or(|p| !(p.driver == "test" && p.transport.is_empty() && p.server.is_empty()))
}

/// The one check every connection URI passes before libvirt sees it.
pub fn check_uri(uri: &str, origin: Origin) -> Result<(), ScriptError> {
    if uri.trim().is_empty() {
        return Err(ScriptError::invalid(
            "uri",
            uri,
            "is empty; name a libvirt URI such as qemu:///system or test:///default",
        ));
    }
    if uri.chars().any(char::is_control) {
        return Err(ScriptError::invalid(
            "uri",
            uri.escape_debug(),
            "must not contain control characters",
        ));
    }
    let policy = read();
    let Some(parts) = parse_uri(uri) else {
        // An alias from the operator's libvirt.conf (`uri_aliases`).
        return Ok(());
    };
    let allowed = |name: &str| !policy.rehearsal && policy.allowed_params.iter().any(|p| p == name);
    let widen = if policy.rehearsal {
        "never during --plan".to_owned()
    } else {
        String::new()
    };
    if parts.transport == "ext" && !allowed("command") {
        return Err(refused(
            "uri",
            uri,
            format!(
                "the ext transport runs a local program named by the URI; {}",
                if widen.is_empty() {
                    "refused unless the command line has --allow-uri-param command".to_owned()
                } else {
                    format!("refused {widen}")
                }
            ),
        ));
    }
    if let Some(name) = parts
        .params
        .iter()
        .find(|p| PROGRAM_PARAMS.contains(&p.as_str()) && !allowed(p))
    {
        return Err(refused(
            "uri",
            uri,
            format!(
                "the URI parameter {name}= names a local program or key file; {}",
                if widen.is_empty() {
                    format!("refused unless the command line has --allow-uri-param {name}")
                } else {
                    format!("refused {widen}")
                }
            ),
        ));
    }
    if origin != Origin::Operator && policy.rehearsal && reaches_daemon(uri) {
        return Err(refused(
            "uri",
            uri,
            "--plan rehearses on a copy of the host named on the command line; a script cannot connect to another libvirt daemon during a rehearsal (use HOST)",
        ));
    }
    drop(policy);
    if let Some(file) = test_driver_file(uri) {
        check_test_file(uri, &file, origin)?;
    }
    Ok(())
}

/// Test-driver files: any the operator names; for scripts only those, or files
/// under the script's own directory.
fn check_test_file(uri: &str, file: &str, origin: Origin) -> Result<(), ScriptError> {
    let canonical = std::fs::canonicalize(file).ok();
    if origin != Origin::Script {
        if let Some(c) = canonical {
            write().operator_files.push(c);
        }
        return Ok(());
    }
    let policy = read();
    let permitted = |c: &Path| {
        policy.operator_files.iter().any(|f| f == c)
            || policy.script_dir.as_ref().is_some_and(|d| c.starts_with(d))
    };
    let Some(canonical) = canonical.filter(|c| permitted(c)) else {
        return Err(refused(
            "uri",
            uri,
            "a script may open test-driver files only under its own directory or named on the command line (-c, --hosts)",
        ));
    };
    // The test driver loads `<domain file="..."/>` (any object) too, relative
    // to the document: those files must pass the same rule.
    let dir = canonical.parent().unwrap_or(Path::new("/"));
    for included in included_files(&canonical) {
        let resolved = std::fs::canonicalize(dir.join(&included)).ok();
        if !resolved.as_deref().is_some_and(permitted) {
            return Err(refused(
                "uri",
                uri,
                format!("the test-driver document loads {included:?}, which is outside the script's directory and not named on the command line"),
            ));
        }
    }
    Ok(())
}

/// The `file` attributes of a test-driver document (files it loads objects from).
fn included_files(document: &Path) -> Vec<String> {
    let Some(root) = std::fs::read_to_string(document)
        .ok()
        .and_then(|text| crate::xml::tree::Element::parse(&text).ok())
    else {
        // libvirt cannot load it either; its error is not echoed.
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut pending = vec![&root];
    while let Some(el) = pending.pop() {
        if let Some(file) = el.attr("file") {
            out.push(file.to_owned());
        }
        pending.extend(el.elements());
    }
    out
}

/// What libvirt said when a connection failed, minus anything read from a
/// test-driver file (its parser quotes the offending line).
pub fn connect_message(uri: &str, libvirt_message: &str) -> String {
    match test_driver_file(uri) {
        Some(file) => format!("the test driver cannot load {file}: it is not a libvirt test driver document (or cannot be read)"),
        None => libvirt_message.to_owned(),
    }
}

/// Who writes a local path: the daemon (vm.save: on its own machine) or this
/// process (volume download: here, whatever the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    Daemon,
    Us,
}

/// Whether the host's daemon runs on this machine (no server in the URI).
fn daemon_is_local(uri: &str) -> bool {
    parse_uri(uri).is_none_or(|p| p.server.is_empty() || p.server == "localhost")
}

/// Whether the URI is libvirt's test driver (in-process, or a rehearsal).
fn is_test_driver(uri: &str) -> bool {
    parse_uri(uri).is_some_and(|p| p.driver == "test")
}

fn check_path_text(field: &str, path: &str) -> Result<(), ScriptError> {
    if path.is_empty() {
        return Err(ScriptError::invalid(field, path, "must be a file path"));
    }
    if path.chars().any(char::is_control) {
        return Err(ScriptError::invalid(
            field,
            path.escape_debug(),
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn scratch_dir() -> Result<PathBuf, ScriptError> {
    let mut p = write();
    if let Some(dir) = &p.scratch {
        return Ok(dir.clone());
    }
    let dir = tempfile::Builder::new()
        .prefix("virtscript-scratch-")
        .tempdir()
        .map_err(|e| {
            ScriptError::new(
                ErrorKind::Io,
                format!("cannot make a private directory: {e}"),
            )
        })?
        .keep();
    p.scratch = Some(dir.clone());
    Ok(dir)
}

/// A local path that libvirt (or we, for `writer`) would write (`write: true`)
/// or read, as it may be used. On the test driver and in a rehearsal the file
/// goes into a private temporary directory (the same name maps to the same
/// file, so a save can be restored). Elsewhere a file to write must not exist
/// yet unless `overwrite` (checked where the writer's file system is ours).
pub fn local_path(
    host_uri: &str,
    field: &str,
    path: &str,
    write: bool,
    overwrite: bool,
    writer: Writer,
) -> Result<PathBuf, ScriptError> {
    check_path_text(field, path)?;
    let given = Path::new(path);
    let resolved = if is_test_driver(host_uri) {
        // `a/b` and `/a/b` become one flat name in the private directory.
        let flat = path.trim_start_matches('/').replace('/', "%2F");
        if flat.is_empty() || flat == "." || flat == ".." {
            return Err(ScriptError::invalid(field, path, "must name a file"));
        }
        scratch_dir()?.join(flat)
    } else if given.is_absolute() {
        given.to_path_buf()
    } else {
        // libvirt makes relative paths absolute against the client's directory.
        std::env::current_dir()
            .map(|d| d.join(given))
            .unwrap_or_else(|_| given.to_path_buf())
    };
    let ours = is_test_driver(host_uri) || writer == Writer::Us || daemon_is_local(host_uri);
    if write && !overwrite && ours && std::fs::symlink_metadata(&resolved).is_ok() {
        return Err(refused(
            field,
            path,
            format!("the file exists ({path}); pass overwrite: true to replace it"),
        ));
    }
    if !write && is_test_driver(host_uri) && !resolved.exists() {
        return Err(ScriptError::not_found(
            field,
            path,
            format!("no file {path} was saved by this script (on the test driver only files the script wrote can be read)"),
        ));
    }
    Ok(resolved)
}

/// Directories no storage pool may be: the root and the system's own.
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/lib",
    "/var/lib/libvirt",
    "/var/log",
    "/var/run",
    "/var/tmp",
    "/usr/local",
];

/// Trees whose files must never become volumes of a directory pool.
const SYSTEM_TREES: &[&str] = &[
    "/bin",
    "/boot",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/run",
    "/var/log",
    "/var/spool",
    "/var/lib/libvirt/qemu",
];

/// The lexical form of an absolute path: `.` and repeated `/` gone. `..`
/// is refused by the callers before.
fn normal(path: &str) -> PathBuf {
    Path::new(path)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn has_parent_dir(path: &str) -> bool {
    Path::new(path)
        .components()
        .any(|c| matches!(c, Component::ParentDir))
}

/// The target path of a new or changed pool. Directory-like pools (`dir`,
/// `fs`, `netfs`) may not be a system directory nor lie inside one; device
/// pools (`logical`, `disk`, ...) live under /dev but may not be `/` itself
/// or another system directory.
pub fn check_pool_path(pool_type: &str, path: &str) -> Result<(), ScriptError> {
    check_path_text("path", path)?;
    if !path.starts_with('/') || has_parent_dir(path) {
        return Err(ScriptError::invalid(
            "path",
            path,
            "must be an absolute path without '..'",
        ));
    }
    let p = normal(path);
    let dir_like = matches!(pool_type, "dir" | "fs" | "netfs");
    let exact = SYSTEM_DIRS
        .iter()
        .any(|d| p == Path::new(d) && (dir_like || *d != "/dev"));
    let inside = dir_like
        && SYSTEM_TREES
            .iter()
            .chain(std::iter::once(&"/dev"))
            .any(|d| p.starts_with(d));
    // A symlink to a system directory is that directory.
    let real = std::fs::canonicalize(&p).ok();
    let real_hit = real.as_ref().is_some_and(|r| {
        r != &p
            && (SYSTEM_DIRS.iter().any(|d| r == Path::new(d))
                || (dir_like && SYSTEM_TREES.iter().any(|d| r.starts_with(d))))
    });
    if exact || inside || real_hit {
        return Err(refused(
            "path",
            path,
            format!("{path} is a system directory (or inside one); a storage pool there would make its files volumes that scripts can delete or overwrite"),
        ));
    }
    Ok(())
}

/// Names of objects (VMs, networks, pools, volumes, snapshots): no control characters.
pub fn check_name_text(field: &str, name: &str) -> Result<(), ScriptError> {
    if name.chars().any(char::is_control) {
        return Err(ScriptError::invalid(
            field,
            name.escape_debug(),
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Where disk, CD-ROM, kernel and initrd files may come from without
/// `allow_path: true`: the storage pools' directories (`pool_dirs`) and
/// libvirt's image and boot directories (virt-install's).
pub const BOOT_DIRS: &[&str] = &[
    "/var/lib/libvirt/images",
    "/var/lib/libvirt/boot",
    "/var/lib/libvirt/isos",
];

/// A file a VM would read (a disk, CD-ROM, kernel or initrd source).
pub fn check_source(
    field: &str,
    path: &str,
    pool_dirs: &[String],
    allow_path: bool,
) -> Result<(), ScriptError> {
    check_path_text(field, path)?;
    if allow_path {
        return Ok(());
    }
    // Our own private files (a cloud-init seed on the test driver).
    if let Some(scratch) = &read().scratch {
        if Path::new(path).starts_with(scratch) && !has_parent_dir(path) {
            return Ok(());
        }
    }
    // A pool someone defined over a system directory (with virsh, say) does
    // not make that directory's files fair game; device pools under /dev do count.
    let system = |d: &Path| {
        SYSTEM_DIRS.iter().any(|s| d == Path::new(s))
            || SYSTEM_TREES.iter().any(|s| d.starts_with(s))
    };
    let inside = |p: &Path| {
        pool_dirs
            .iter()
            .map(String::as_str)
            .chain(BOOT_DIRS.iter().copied())
            .filter(|d| d.starts_with('/') && !has_parent_dir(d) && !system(&normal(d)))
            .any(|d| p.starts_with(normal(d)) && p != normal(d))
    };
    let lexical = path.starts_with('/') && !has_parent_dir(path) && inside(&normal(path));
    // A symlink inside a pool pointing at /etc/shadow is /etc/shadow.
    let real_ok = std::fs::canonicalize(path)
        .map(|r| inside(&r))
        .unwrap_or(true);
    if lexical && real_ok {
        return Ok(());
    }
    Err(refused(
        field,
        path,
        format!(
            "{path} is outside the storage pools and {}; pass allow_path: true to use it anyway",
            BOOT_DIRS.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parts() {
        let p = parse_uri("qemu+ssh://root@h:22/system?keyfile=/k&%63ommand=x;no_tty=1").unwrap();
        assert_eq!((p.driver.as_str(), p.transport.as_str()), ("qemu", "ssh"));
        assert_eq!(p.server, "root@h:22");
        assert_eq!(p.path, "/system");
        assert_eq!(p.params, ["keyfile", "command", "no_tty"]);
        assert_eq!(test_driver_file("test:///default"), None);
        assert_eq!(
            test_driver_file("test:/etc/shadow").as_deref(),
            Some("/etc/shadow")
        );
        let bare = parse_uri("qemu+ext:/system?command=x").unwrap();
        assert_eq!((bare.transport.as_str(), bare.path), ("ext", "/system"));
        assert!(parse_uri("my-alias").is_none());
        assert!(!reaches_daemon("test:///default") && !reaches_daemon("test:/x.xml"));
        assert!(reaches_daemon("test+unix:///x.xml") && reaches_daemon("qemu:///system"));
        for (uri, file) in [
            ("test:///etc/shadow", "/etc/shadow"),
            ("TEST+unix:///x.xml", "/x.xml"),
            ("qemu+unix:///system?name=test:///etc/shadow", "/etc/shadow"),
            (
                "qemu:///system?socket=/s&name=test%3A%2F%2F%2Fetc%2Fshadow",
                "/etc/shadow",
            ),
        ] {
            assert_eq!(test_driver_file(uri).as_deref(), Some(file), "{uri}");
        }
    }

    #[test]
    fn program_params_are_refused_without_the_flag() {
        for uri in [
            "qemu+ext:///system?command=/bin/true",
            "qemu+ssh://h/system?keyfile=/root/.ssh/id",
            "qemu+ssh://h/system?NETCAT=/bin/nc",
            "qemu+tls://h/system?pkipath=/x",
            "qemu+ssh://h/system?%6Bnown_hosts=/x",
        ] {
            let e = check_uri(uri, Origin::Operator).unwrap_err().into_eval();
            assert!(e.to_string().contains("refused"), "{uri}: {e}");
        }
        check_uri("qemu+unix:///system?socket=/run/libvirt/s", Origin::Script).unwrap();
        check_uri("qemu+ssh://h/system?no_tty=1", Origin::Script).unwrap();
    }

    #[test]
    fn pool_paths() {
        for bad in [
            "/",
            "/etc",
            "/etc/ssh",
            "//etc/",
            "/usr/lib/x",
            "/dev",
            "/root/x",
            "/var",
            "/var/spool/cron/crontabs",
            "/var/lib/libvirt/qemu/save",
        ] {
            assert!(check_pool_path("dir", bad).is_err(), "{bad}");
        }
        assert!(check_pool_path("logical", "/dev/vg0").is_ok());
        assert!(check_pool_path("logical", "/").is_err());
        for good in ["/tmp/images", "/var/lib/libvirt/images", "/srv/vm"] {
            assert!(check_pool_path("dir", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn sources() {
        let pools = vec!["/srv/pool".to_owned()];
        assert!(check_source("disk", "/srv/pool/a.qcow2", &pools, false).is_ok());
        assert!(check_source("disk", "/var/lib/libvirt/boot/vmlinuz", &pools, false).is_ok());
        for bad in [
            "/etc/shadow",
            "/srv/pool/../../etc/shadow",
            "/srv/pool",
            "rel.img",
        ] {
            assert!(check_source("disk", bad, &pools, false).is_err(), "{bad}");
        }
        assert!(check_source("disk", "/etc/shadow", &pools, true).is_ok());
        let system_pools = vec!["/etc".to_owned(), "/".to_owned(), "/dev/vg0".to_owned()];
        assert!(check_source("disk", "/etc/shadow", &system_pools, false).is_err());
        assert!(check_source("disk", "/dev/vg0/lv", &system_pools, false).is_ok());
    }

    #[test]
    fn existing_files_on_a_local_daemon_need_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x");
        std::fs::write(&file, "x").unwrap();
        let p = file.to_str().unwrap();
        let local = "qemu:///system";
        let err = local_path(local, "path", p, true, false, Writer::Daemon).unwrap_err();
        assert!(
            err.message().contains("overwrite: true"),
            "{}",
            err.message()
        );
        assert_eq!(
            local_path(local, "path", p, true, true, Writer::Daemon).unwrap(),
            file
        );
        // A remote daemon's files are not ours to look at; downloads are written here.
        let remote = "qemu+ssh://far/system";
        assert!(local_path(remote, "path", p, true, false, Writer::Daemon).is_ok());
        assert!(local_path(remote, "path", p, true, false, Writer::Us).is_err());
        // The test driver's files go into the private directory.
        let redirected = local_path("test:///default", "path", p, true, false, Writer::Daemon);
        assert!(!redirected.unwrap().starts_with(dir.path()));
        cleanup();
    }
}
