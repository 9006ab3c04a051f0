//! `run --report PATH`: a JSON record of one run for machines to read — when,
//! where, which script (by hash), every libvirt change, and how it ended.
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::engine::Diagnostic;
use crate::runtime::journal::Entry;

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub started: String,
    pub finished: String,
    pub duration_seconds: f64,
    pub script: String,
    pub script_sha256: String,
    pub exit_code: i32,
    /// One section per host the script ran on.
    pub hosts: Vec<HostReport>,
}

#[derive(Debug, Serialize, Default)]
pub struct HostReport {
    pub uri: String,
    pub exit_code: i32,
    /// The script's final value (as with --json), when it succeeded.
    pub result: Option<Value>,
    pub error: Option<ErrorReport>,
    /// Every mutating libvirt call, in order.
    pub changes: Vec<ChangeReport>,
    /// Changes undone by a failed transaction or --atomic run, in the order undone.
    pub rolled_back: Vec<String>,
    pub rollback_failed: Vec<String>,
    /// `run --plan`: the changes the script would make (see `jobs::plan::to_json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// The error as `--json` prints it (kind, message, file, line, column, field, value, code).
    #[serde(skip)]
    pub error_object: Option<Value>,
    /// The final value as the terminal shows it (not `()`), for a run without `--json`.
    #[serde(skip)]
    pub shown: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// As in `--json`'s error object: `invalid`, `libvirt`, `thrown`, `stopped`...
    pub kind: String,
    pub message: String,
    /// `file:line:col` where it happened.
    pub location: Option<String>,
    /// The calls that led there, innermost first.
    pub called_from: Vec<String>,
    /// What a bad input was about: the field and the value given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// libvirt's error code and its name, for libvirt's errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_name: Option<String>,
}

impl ErrorReport {
    /// An error outside the script: no position.
    pub fn plain(kind: &str, message: String) -> ErrorReport {
        ErrorReport {
            kind: kind.to_owned(),
            message,
            location: None,
            called_from: Vec::new(),
            field: None,
            value: None,
            code: None,
            code_name: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ChangeReport {
    pub action: String,
    pub object: String,
    pub result: &'static str,
    pub at: String,
}

impl From<&Diagnostic> for ErrorReport {
    fn from(d: &Diagnostic) -> Self {
        ErrorReport {
            kind: d.details.kind.clone(),
            message: d.message.clone(),
            location: d.location.as_ref().map(ToString::to_string),
            called_from: d
                .callers
                .iter()
                .map(|(what, loc)| format!("{what} at {loc}"))
                .collect(),
            field: d.details.field.clone(),
            value: d.details.value.clone(),
            code: d.details.code,
            code_name: d.details.code_name.clone(),
        }
    }
}

impl From<&Entry> for ChangeReport {
    fn from(e: &Entry) -> Self {
        ChangeReport {
            action: e.action.clone(),
            object: e.object.clone(),
            result: "ok",
            at: humantime::format_rfc3339_millis(e.at).to_string(),
        }
    }
}

/// `--report PATH` must be writable before the script changes anything: an
/// existing regular file we may write, or a new file in an existing
/// directory (made and removed again to be sure).
pub fn check_path(path: &Path) -> Result<(), String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(format!("--report {shown}: not a regular file"));
        }
        Ok(_) => {
            return std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(|_| ())
                .map_err(|e| format!("--report {shown}: cannot write it: {e}"));
        }
        Err(_) => {}
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(e) => Err(format!("--report {shown}: cannot create it: {e}")),
    }
}

/// Write the report of a run of `script` (its name and text) that started at
/// `started` and ended with `exit_code`; the error says why it could not be.
pub fn write(
    path: &Path,
    started: SystemTime,
    (script, text): (&str, &str),
    exit_code: i32,
    mut hosts: Vec<HostReport>,
) -> Result<(), String> {
    let (rolled_back, rollback_failed) = crate::runtime::journal::rolled_back();
    if let [only] = hosts.as_mut_slice() {
        only.rolled_back = rolled_back;
        only.rollback_failed = rollback_failed;
    }
    let finished = SystemTime::now();
    let report = RunReport {
        started: humantime::format_rfc3339_millis(started).to_string(),
        finished: humantime::format_rfc3339_millis(finished).to_string(),
        duration_seconds: finished
            .duration_since(started)
            .unwrap_or_default()
            .as_secs_f64(),
        script: script.to_owned(),
        script_sha256: sha256_hex(text),
        exit_code,
        hosts,
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    std::fs::write(path, json + "\n")
        .map_err(|e| format!("cannot write the report {}: {e}", path.display()))
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
