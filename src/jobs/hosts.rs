//! Which hosts a run targets, and connecting to one.
use std::path::Path;

use super::Exit;
use crate::api::host::{default_uri, Host};
use crate::runtime::log;

/// The URI to use when none is given, saying so when it is the embedded test driver.
fn fallback_uri() -> String {
    let (uri, embedded) = default_uri();
    if embedded {
        log::notice(&format!(
            "virtscript: no URI given; using libvirt's embedded test driver {uri} (nothing on this machine is touched); use -c qemu:///system to act on the host"
        ));
    }
    uri
}

/// Resolve the URI (`None`: the default) and connect.
pub fn open_host(connect: Option<&str>) -> Result<Host, Exit> {
    let uri = connect.map_or_else(fallback_uri, str::to_owned);
    Host::open(&uri).map_err(|e| {
        log::error(&format!(
            "cannot connect to libvirt at {uri}: {}",
            e.message()
        ));
        Exit::of_open(&e)
    })
}

/// The hosts a run targets: every `-c`, then `--hosts FILE`, else the default.
pub fn targets(connect: &[String], hosts_file: Option<&Path>) -> Result<Vec<String>, String> {
    let mut uris = connect.to_vec();
    if let Some(file) = hosts_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read --hosts {}: {e}", file.display()))?;
        uris.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        if uris.is_empty() {
            return Err(format!("--hosts {} lists no URI", file.display()));
        }
    }
    if uris.is_empty() {
        uris.push(fallback_uri());
    }
    Ok(uris)
}
