//! Script-visible errors. Every error our API raises is a catchable object map
//! (`try { ... } catch (e) { e.kind; e.message }`) that carries where it was
//! raised (`source`, `line`, `column`); the CLI prints it with a caret.
use std::fmt::Display;
use std::sync::OnceLock;

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext, Position};

pub use crate::runtime::ErrorKind;

pub type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// Builds the error map; `kind` says which family it belongs to.
#[derive(Debug)]
pub struct ScriptError {
    map: Map,
}

impl ScriptError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut map = Map::new();
        map.insert("kind".into(), kind.as_str().into());
        map.insert("message".into(), message.into().into());
        ScriptError { map }
    }

    /// A bad value in a script's input: names the field and the value.
    pub fn invalid(field: &str, value: impl Display, problem: impl Display) -> Self {
        let value = value.to_string();
        ScriptError::new(
            ErrorKind::Invalid,
            format!("{field}: {problem} (got {value:?})"),
        )
        .with("field", field)
        .with("value", value)
    }

    /// An object that does not exist; `message` is a sentence naming it.
    pub fn not_found(field: &str, value: impl Display, message: impl Into<String>) -> Self {
        ScriptError::new(ErrorKind::NotFound, message)
            .with("field", field)
            .with("value", value.to_string())
    }

    /// An error that libvirt reported.
    pub fn libvirt(err: &virt::error::Error) -> Self {
        let code = err.code().to_raw() as i64;
        // The virt crate's words for a NUL in a string it passes to C.
        let message = match err.message().strip_prefix("Null byte passed to CString: ") {
            Some(detail) => format!(
                "a name or text contains a NUL character (\\0), which libvirt cannot take ({})",
                detail.replace("nul byte found in provided data", "found")
            ),
            None => err.message().to_owned(),
        };
        // libvirt's words for a dead daemon ("End of file while reading
        // data", "client socket is closed") do not say what happened.
        let message = if is_connection_lost(err) {
            format!("the connection to libvirt was lost: {message}")
        } else {
            message
        };
        ScriptError::new(ErrorKind::Libvirt, message)
            .with("code", code)
            .with(
                "code_name",
                libvirt_name("VIR_ERR_", &format!("{:?}", err.code())),
            )
            .with(
                "domain",
                libvirt_name("VIR_FROM_", &format!("{:?}", err.domain())),
            )
    }

    /// Whether this error says the daemon is gone (no answer came).
    pub fn is_connection_lost(&self) -> bool {
        is_connection_error(&Dynamic::from(self.map.clone()))
    }

    /// The `message` entry.
    pub fn message(&self) -> String {
        self.map
            .get("message")
            .map(|m| m.to_string())
            .unwrap_or_default()
    }

    /// Re-file the error under another kind (a libvirt error that means
    /// the connection could not be opened).
    pub fn with_kind(self, kind: ErrorKind) -> Self {
        self.with("kind", kind.as_str())
    }

    pub fn with(mut self, key: &str, value: impl Into<Dynamic>) -> Self {
        self.map.insert(key.into(), value.into());
        self
    }

    /// Stamp the script position of the call that failed and turn into a Rhai error.
    pub fn at(mut self, ctx: &NativeCallContext) -> Box<EvalAltResult> {
        let pos = ctx.call_position();
        if let Some(source) = ctx.call_source() {
            self.map.insert("source".into(), source.into());
        }
        if let Some(line) = pos.line() {
            self.map.insert("line".into(), (line as i64).into());
            self.map
                .insert("column".into(), (pos.position().unwrap_or(1) as i64).into());
        }
        Box::new(EvalAltResult::ErrorRuntime(self.map.into(), pos))
    }

    /// Without a call context (Rhai stamps the position when it propagates).
    pub fn into_eval(self) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(self.map.into(), Position::NONE))
    }
}

/// `Known(NoSupport)` -> `VIR_ERR_NO_SUPPORT`: the names libvirt's documentation uses.
fn libvirt_name(prefix: &str, debug: &str) -> String {
    let inner = debug
        .strip_prefix("Known(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(debug);
    let mut out = String::from(prefix);
    for (i, c) in inner.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The error a call returns when the run was stopped (Ctrl-C, a signal,
/// `--timeout`): Rhai's `ErrorTerminated` with the reason's token, which the
/// CLI reads for the exit status and the rollback.
pub fn stopped(
    ctx: &NativeCallContext,
    reason: crate::runtime::stop::StopReason,
) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorTerminated(
        reason.token().into(),
        ctx.call_position(),
    ))
}

/// `result.at(&ctx)?` stamps a [`ScriptError`] with the script position of
/// the call: the one way every script function reports where it failed.
pub trait AtExt<T> {
    fn at(self, ctx: &NativeCallContext) -> ScriptResult<T>;
}

impl<T> AtExt<T> for Result<T, ScriptError> {
    fn at(self, ctx: &NativeCallContext) -> ScriptResult<T> {
        self.map_err(|e| e.at(ctx))
    }
}

/// `result.script(&ctx)?` turns a libvirt error into a script error at the call site.
pub trait LibvirtResultExt<T> {
    fn script(self, ctx: &NativeCallContext) -> ScriptResult<T>;
}

impl<T> LibvirtResultExt<T> for Result<T, virt::error::Error> {
    fn script(self, ctx: &NativeCallContext) -> ScriptResult<T> {
        self.map_err(|e| ScriptError::libvirt(&e).at(ctx))
    }
}

/// Whether a thrown error means the connection to libvirt is gone (exit status 3).
/// Whether libvirt's error means the daemon is gone (no answer came).
pub fn is_connection_lost(err: &virt::error::Error) -> bool {
    matches!(
        err.code().to_raw(),
        virt::sys::VIR_ERR_NO_CONNECT | virt::sys::VIR_ERR_RPC | virt::sys::VIR_ERR_INVALID_CONN
    ) || format!("{:?}", err.domain()).contains("Rpc")
}

pub fn is_connection_error(value: &Dynamic) -> bool {
    const NO_CONNECT: i64 = virt::sys::VIR_ERR_NO_CONNECT as i64;
    const RPC: i64 = virt::sys::VIR_ERR_RPC as i64;
    const INVALID_CONN: i64 = virt::sys::VIR_ERR_INVALID_CONN as i64;
    let Some(map) = value.read_lock::<Map>() else {
        return false;
    };
    if map
        .get("kind")
        .is_some_and(|k| k.to_string() == ErrorKind::Connect.as_str())
    {
        return true;
    }
    // A rollback that could not reach libvirt any more.
    if map
        .get("connection_lost")
        .is_some_and(|v| v.as_bool().unwrap_or(false))
    {
        return true;
    }
    // A dropped connection surfaces from libvirt's RPC layer with assorted codes
    // ("client socket is closed" is an internal error).
    if map
        .get("domain")
        .is_some_and(|d| d.to_string() == "VIR_FROM_RPC")
    {
        return true;
    }
    map.get("code")
        .and_then(|c| c.as_int().ok())
        .is_some_and(|code| matches!(code, NO_CONNECT | RPC | INVALID_CONN))
}

/// A call a script error came out of: Rhai wraps the error once for each
/// script function or module it passed through on its way out.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// A script function; `source` is where it was defined (empty: the caller's file).
    Function {
        name: &'a str,
        source: &'a str,
        pos: Position,
    },
    Module {
        name: &'a str,
        pos: Position,
    },
}

/// A nested Rhai error taken apart: the calls it came out of, outermost
/// first, and the error itself. The one walk of the chain: the diagnostics,
/// `parallel`, a rollback's note and the exit status all read it through
/// this (or [`unwind_mut`]).
pub fn unwind(mut err: &EvalAltResult) -> (Vec<Call<'_>>, &EvalAltResult) {
    let mut calls = Vec::new();
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
                calls.push(Call::Function {
                    name,
                    source,
                    pos: *pos,
                });
                err = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                calls.push(Call::Module { name, pos: *pos });
                err = inner;
            }
            leaf => return (calls, leaf),
        }
    }
}

/// The error at the bottom of a chain (what was raised or thrown).
pub fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    unwind(err).1
}

/// [`unwind`] to change the chain in place: `on_call` sees each call's name
/// and, for a function, the source it was defined in; returns the innermost
/// error (every position above it stays).
pub fn unwind_mut(
    mut err: &mut EvalAltResult,
    mut on_call: impl FnMut(&str, Option<&mut String>),
) -> &mut EvalAltResult {
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(name, source, inner, _) => {
                on_call(name, Some(source));
                err = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, _) => {
                on_call(name, None);
                err = inner;
            }
            leaf => return leaf,
        }
    }
}

/// A failed call told in one line: its message and `file:line:col`.
pub type Describe = fn(&EvalAltResult, &str) -> (String, Option<String>);

static DESCRIBE: OnceLock<Describe> = OnceLock::new();

/// Install how [`describe`] tells a failure: the engine's diagnostics ("did
/// you mean" from the registered functions, the caller blamed for a bundled
/// recipe's refusal) sit above this layer, so the engine hands them down
/// when it is built.
pub fn set_describe(describe: Describe) {
    let _ = DESCRIBE.set(describe);
}

/// A failed call's message and `file:line:col`, as the engine's diagnostics
/// say them (`parallel` lists its failed calls so); `main_source` names the
/// script the chain starts in.
pub fn describe(err: &EvalAltResult, main_source: &str) -> (String, Option<String>) {
    match DESCRIBE.get() {
        Some(describe) => describe(err, main_source),
        // No engine was built, so no script ran: only a unit test gets here.
        None => (innermost(err).to_string(), None),
    }
}
