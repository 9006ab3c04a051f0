//! What a run writes on standard output: with `--json` exactly one document
//! (the value, the plan, or the error object; a map by URI for several
//! hosts), else each host's final value or plan as text.
use std::io::Write;

use super::report::HostReport;
use super::{Exit, Run};
use crate::runtime::log;

/// Write the one JSON document of `--json` to stdout; a failed write (a full
/// disk, a closed pipe) is a failed run.
pub fn print_json(value: &serde_json::Value) -> Result<(), Exit> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            log::error(&format!("cannot write the result to standard output: {e}"));
            Exit::ScriptFailed
        })
}

/// The `--json` error object for a failure outside the script (no position).
pub fn error_object(kind: &str, message: &str, code: Option<i64>) -> serde_json::Value {
    serde_json::json!({
        "kind": kind, "message": message, "file": null, "line": null, "column": null,
        "field": null, "value": null, "code": code, "code_name": null, "called_from": [],
    })
}

/// Standard output after the run.
pub fn show(run: &Run, hosts: &[HostReport]) -> Result<(), Exit> {
    let plan = run.plan;
    if run.json {
        let one = |h: &HostReport| -> serde_json::Value {
            if let Some(error) = &h.error_object {
                return if hosts.len() > 1 {
                    serde_json::json!({ "error": error })
                } else {
                    error.clone()
                };
            }
            let value = if plan { &h.plan } else { &h.result };
            value.clone().unwrap_or(serde_json::Value::Null)
        };
        let value = if hosts.len() == 1 {
            one(&hosts[0])
        } else {
            hosts
                .iter()
                .map(|h| (h.uri.clone(), one(h)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        return print_json(&value);
    }
    let mut stdout = std::io::stdout().lock();
    for h in hosts {
        let text = if plan {
            h.plan.as_ref().map(|_| h.shown.clone().unwrap_or_default())
        } else {
            h.shown.clone()
        };
        if let Some(mut text) = text {
            if run.multi_host() {
                text = format!("# {}\n{text}", h.uri);
            }
            // A reader that stopped early (`| head`) is no error; a full disk is.
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    log::error(&format!("cannot write the result to standard output: {e}"));
                    return Err(Exit::ScriptFailed);
                }
                _ => {}
            }
        }
    }
    Ok(())
}
