//! `location`: an install tree, a local directory or an `http://`/`https://`
//! URL, and the installer kernel and initrd in it (virt-install `--location`):
//! named by the tree's `.treeinfo` (`[images-<arch>]`), else found at the
//! places distributions put them (Debian's and Ubuntu's installer layouts,
//! `images/pxeboot`, SUSE's `boot/<arch>/loader`, live `casper/`...).
//!
//! A URL tree is read over HTTP by the machine running virtscript (not by the
//! libvirt host); its kernel and initrd are then uploaded through libvirt into
//! a storage pool of the target host, so a remote host needs no access to the
//! tree. `ftp://` is refused: no well-kept Rust FTP client fits here (the
//! crates are small, rarely released and bring their own TLS stacks), and
//! every distribution that serves trees over FTP serves them over HTTP too.
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rhai::NativeCallContext;

use crate::api::error::{stopped, ScriptError, ScriptResult};
use crate::runtime::ErrorKind;

/// Largest kernel or initrd fetched (a Fedora initrd is ~100 MiB).
const MAX_IMAGE: u64 = 1 << 30;
/// Largest `.treeinfo` read.
const MAX_TREEINFO: u64 = 1 << 20;

/// Whether `location` is a URL (rather than a local directory).
pub fn is_url(location: &str) -> bool {
    location.contains("://")
}

/// Debian's name for an architecture (`install.amd`, `installer-amd64`).
fn debian_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "i686" => "i386",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64el",
        "armv7l" => "armhf",
        other => other,
    }
}

/// The places distributions put an installer kernel and initrd, relative to
/// the tree's root, for guests of `arch`.
pub fn layouts(arch: &str) -> Vec<(String, String)> {
    let deb = debian_arch(arch);
    let short = match deb {
        "amd64" => "amd",
        "i386" => "386",
        other => other,
    };
    let mut out: Vec<(String, String)> = Vec::new();
    let mut pair = |k: String, i: String| out.push((k, i));
    // Red Hat family (Fedora, CentOS, RHEL), also named by .treeinfo.
    pair("images/pxeboot/vmlinuz".into(), "images/pxeboot/initrd.img".into());
    // Debian: a netinst ISO's tree, and a mirror's dists/<suite>/ tree.
    pair(format!("install.{short}/vmlinuz"), format!("install.{short}/initrd.gz"));
    pair("install/vmlinuz".into(), "install/initrd.gz".into());
    let netboot = format!("main/installer-{deb}/current/images/netboot/debian-installer/{deb}");
    pair(format!("{netboot}/linux"), format!("{netboot}/initrd.gz"));
    // Ubuntu: the legacy netboot tree and the live server ISO.
    let legacy =
        format!("main/installer-{deb}/current/legacy-images/netboot/ubuntu-installer/{deb}");
    pair(format!("{legacy}/linux"), format!("{legacy}/initrd.gz"));
    pair("casper/vmlinuz".into(), "casper/initrd".into());
    pair("casper/vmlinuz".into(), "casper/initrd.gz".into());
    // SUSE.
    pair(format!("boot/{arch}/loader/linux"), format!("boot/{arch}/loader/initrd"));
    // Generic.
    pair("isolinux/vmlinuz".into(), "isolinux/initrd.img".into());
    pair("boot/vmlinuz".into(), "boot/initrd.img".into());
    pair("vmlinuz".into(), "initrd.img".into());
    pair("vmlinuz".into(), "initrd.gz".into());
    pair("vmlinuz".into(), "initramfs".into());
    out
}

/// The kernel and initrd a `.treeinfo` names for `arch`: `kernel` and
/// `initrd` of section `[images-<arch>]` (the `[general] arch`/`[tree] arch`
/// the file gives when the spec gives none).
pub fn treeinfo_images(text: &str, arch: &str) -> Option<(String, String)> {
    let mut section = String::new();
    let mut found: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            found.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let get = |sec: &str, key: &str| {
        found
            .iter()
            .find(|(s, k, _)| s == sec && k == key)
            .map(|(_, _, v)| v.clone())
    };
    let sec = format!("images-{arch}");
    Some((get(&sec, "kernel")?, get(&sec, "initrd")?))
}

/// A relative path from a tree's metadata that stays inside the tree.
fn inside_tree(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains("://")
        && !rel.split('/').any(|c| c == "..")
        && !rel.chars().any(char::is_control)
}

fn looked_for(arch: &str) -> String {
    let pairs = layouts(arch)
        .iter()
        .map(|(k, i)| format!("{k}+{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("looked for .treeinfo [images-{arch}], {pairs}")
}

/// Find the installer kernel and initrd in a local tree (an unpacked ISO).
pub fn find_local(location: &str, arch: &str) -> Result<(String, String), ScriptError> {
    let dir = Path::new(location);
    if !dir.is_dir() {
        return Err(ScriptError::invalid(
            "location",
            location,
            "must be a directory holding an installation tree (an unpacked ISO) or an http:// or https:// URL of one",
        ));
    }
    let treeinfo = [".treeinfo", "treeinfo"]
        .iter()
        .find_map(|n| std::fs::read_to_string(dir.join(n)).ok());
    let mut candidates = Vec::new();
    if let Some(pair) = treeinfo.and_then(|t| treeinfo_images(&t, arch)) {
        candidates.push(pair);
    }
    candidates.extend(layouts(arch));
    for (k, i) in candidates {
        if !inside_tree(&k) || !inside_tree(&i) {
            continue;
        }
        let (kp, ip) = (dir.join(&k), dir.join(&i));
        if kp.is_file() && ip.is_file() {
            return Ok((
                kp.to_string_lossy().into_owned(),
                ip.to_string_lossy().into_owned(),
            ));
        }
    }
    Err(ScriptError::invalid(
        "location",
        location,
        format!("no kernel and initrd found ({})", looked_for(arch)),
    ))
}

/// The tree's URL with one trailing slash, checked: http or https, no
/// credentials or control characters.
pub fn check_url(location: &str) -> Result<String, ScriptError> {
    let bad = |why: &str| ScriptError::invalid("location", location, why.to_owned());
    let (scheme, rest) = location.split_once("://").unwrap_or(("", location));
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {}
        "ftp" | "ftps" => {
            return Err(bad(
                "ftp:// trees are not supported (virtscript reads trees over HTTP only); use the http:// or https:// URL of the same mirror",
            ))
        }
        _ => return Err(bad("must be an http:// or https:// URL, or a local directory")),
    }
    if location.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("must not contain spaces or control characters"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(bad("names no host"));
    }
    if host.contains('@') {
        return Err(bad("must not carry a user name or password"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("must be the tree's directory, without ?query or #fragment"));
    }
    Ok(format!("{}/", location.trim_end_matches('/')))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("virtscript/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A request that failed: the field is `location`, the value the tree as
/// given, the message names the URL asked for.
fn fetch_error(location: &str, url: &str, e: &ureq::Error) -> ScriptError {
    let why = match e {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        other => other.to_string(),
    };
    ScriptError::new(
        ErrorKind::Io,
        format!("location: cannot fetch {url}: {why}"),
    )
    .with("field", "location")
    .with("value", location)
}

/// Whether `url` answers a HEAD request with success.
fn exists(agent: &ureq::Agent, location: &str, url: &str) -> Result<bool, ScriptError> {
    match agent.head(url).call() {
        Ok(_) => Ok(true),
        Err(ureq::Error::StatusCode(_)) => Ok(false),
        Err(e) => Err(fetch_error(location, url, &e)),
    }
}

/// A small text file of the tree (`.treeinfo`), `None` when the server has none.
fn get_small(
    agent: &ureq::Agent,
    location: &str,
    url: &str,
) -> Result<Option<String>, ScriptError> {
    match agent.get(url).call() {
        Ok(mut resp) => {
            let bytes = resp
                .body_mut()
                .with_config()
                .limit(MAX_TREEINFO)
                .read_to_vec()
                .map_err(|e| fetch_error(location, url, &e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Err(ureq::Error::StatusCode(_)) => Ok(None),
        Err(e) => Err(fetch_error(location, url, &e)),
    }
}

/// The URLs of the installer kernel and initrd in the tree at `base` (from
/// [`check_url`]): a few small requests (`.treeinfo`, then HEAD requests).
pub fn find_remote(location: &str, base: &str, arch: &str) -> Result<(String, String), ScriptError> {
    let agent = agent();
    let mut candidates = Vec::new();
    for name in [".treeinfo", "treeinfo"] {
        if let Some(text) = get_small(&agent, location, &format!("{base}{name}"))? {
            if let Some(pair) = treeinfo_images(&text, arch) {
                candidates.push(pair);
            }
            break;
        }
    }
    candidates.extend(layouts(arch));
    for (k, i) in candidates {
        if !inside_tree(&k) || !inside_tree(&i) {
            continue;
        }
        let (ku, iu) = (format!("{base}{k}"), format!("{base}{i}"));
        if exists(&agent, location, &ku)? && exists(&agent, location, &iu)? {
            return Ok((ku, iu));
        }
    }
    Err(ScriptError::invalid(
        "location",
        location,
        format!("no kernel and initrd found in the tree ({})", looked_for(arch)),
    ))
}

/// Download one file of the tree (up to 1 GiB), stopping between reads when
/// the run is asked to stop.
pub fn download(ctx: &NativeCallContext, location: &str, url: &str) -> ScriptResult<Vec<u8>> {
    let agent = agent();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| fetch_error(location, url, &e).at(ctx))?;
    let mut reader = resp.body_mut().with_config().limit(MAX_IMAGE).reader();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if let Some(reason) = crate::runtime::stop::requested() {
            return Err(stopped(ctx, reason));
        }
        let n = reader.read(&mut buf).map_err(|e| {
            ScriptError::new(ErrorKind::Io, format!("location: cannot fetch {url}: {e}"))
                .with("field", "location")
                .with("value", location)
                .at(ctx)
        })?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    if out.is_empty() {
        return Err(ScriptError::invalid(
            "location",
            location,
            format!("the server sent an empty file for {url}"),
        )
        .at(ctx));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treeinfo_names_the_images_of_the_arch() {
        let text = "[general]\narch = x86_64\n\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n[images-aarch64]\nkernel = a/k\ninitrd = a/i\n";
        assert_eq!(
            treeinfo_images(text, "x86_64"),
            Some(("images/pxeboot/vmlinuz".into(), "images/pxeboot/initrd.img".into()))
        );
        assert_eq!(treeinfo_images(text, "aarch64"), Some(("a/k".into(), "a/i".into())));
        assert_eq!(treeinfo_images(text, "ppc64le"), None);
    }

    #[test]
    fn debian_layouts_follow_the_arch() {
        let l = layouts("aarch64");
        assert!(l.iter().any(|(k, _)| k
            == "main/installer-arm64/current/images/netboot/debian-installer/arm64/linux"));
        assert!(layouts("x86_64").iter().any(|(k, i)| k == "install.amd/vmlinuz"
            && i == "install.amd/initrd.gz"));
    }

    #[test]
    fn urls_are_checked() {
        assert_eq!(check_url("http://m/debian/dists/bookworm").unwrap(), "http://m/debian/dists/bookworm/");
        for bad in ["ftp://m/x", "file:///etc", "http://u:p@m/x", "http:///x", "http://m/x?y=1", "http://m/a b"] {
            let e = check_url(bad).unwrap_err();
            assert!(e.message().starts_with("location"), "{bad}: {}", e.message());
        }
        assert!(!inside_tree("../etc/passwd") && !inside_tree("/etc/x") && inside_tree("a/b"));
    }
}
