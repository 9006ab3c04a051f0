//! `run --report PATH`: a JSON record of one run for machines to read — when,
//! where, which script (by hash), every libvirt change, and how it ended.
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

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
