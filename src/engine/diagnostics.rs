//! Renders script errors the way compilers do: the message, then `file:line:col`,
//! the source line and a caret, then the chain of calls that led there.
use rhai::{Dynamic, EvalAltResult, ParseError, Position};

use super::sources::SourceMap;
use crate::api::error::{unwind, Call};

/// One place in a script: where an error happened or a call that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub source: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.source, self.line, self.column)
    }
}

/// A script error flattened for display: innermost location first, then callers.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// Calls that led to the error, innermost first, with what was called.
    pub callers: Vec<(String, Location)>,
    pub details: Details,
}

/// What kind of error it was, and what it was about, for machines (`--json`).
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// `invalid`, `not_found`, `libvirt`, `connect`... for errors our API
    /// raises; `thrown` for a script's `throw`; `compile`, `stopped` or
    /// `script` (Rhai's own errors) otherwise.
    pub kind: String,
    pub field: Option<String>,
    pub value: Option<serde_json::Value>,
    /// libvirt's error code and its name.
    pub code: Option<i64>,
    pub code_name: Option<String>,
    /// A call of a function or method that does not exist: (name, argument types).
    missing_function: Option<(String, Vec<String>)>,
    /// A property that does not exist: (name, type).
    missing_property: Option<(String, String)>,
}

impl Details {
    fn of(err: &EvalAltResult) -> Details {
        match err {
            EvalAltResult::ErrorRuntime(value, _) => match value.read_lock::<rhai::Map>() {
                Some(map) => {
                    let text =
                        |key: &str| map.get(key).filter(|v| !v.is_unit()).map(|v| v.to_string());
                    Details {
                        kind: text("kind").unwrap_or_else(|| "thrown".to_owned()),
                        field: text("field"),
                        value: map.get("value").map(crate::api::json::to_json),
                        code: map.get("code").and_then(|c| c.as_int().ok()),
                        code_name: text("code_name"),
                        ..Details::default()
                    }
                }
                None => Details {
                    kind: "thrown".to_owned(),
                    value: Some(crate::api::json::to_json(value)),
                    ..Details::default()
                },
            },
            EvalAltResult::ErrorTerminated(..) => Details {
                kind: "stopped".to_owned(),
                ..Details::default()
            },
            EvalAltResult::ErrorFunctionNotFound(signature, _) => Details {
                kind: "script".to_owned(),
                missing_function: super::suggest::parse_signature(signature),
                ..Details::default()
            },
            EvalAltResult::ErrorDotExpr(text, _) => Details {
                kind: "script".to_owned(),
                missing_property: super::suggest::parse_unknown_property(text),
                ..Details::default()
            },
            _ => Details {
                kind: "script".to_owned(),
                ..Details::default()
            },
        }
    }
}

fn locate(source: &str, pos: Position) -> Option<Location> {
    Some(Location {
        source: source.to_owned(),
        line: pos.line()?,
        column: pos.position().unwrap_or(1),
    })
}

/// The message a script value carries when it is thrown: maps made by our API
/// (and by scripts) carry `message`; anything else prints as itself.
pub fn thrown_message(value: &Dynamic) -> String {
    if let Some(map) = value.read_lock::<rhai::Map>() {
        if let Some(message) = map.get("message") {
            let mut text = message.to_string();
            if let Some(code) = map.get("code").filter(|c| !c.is_unit()) {
                let name = map
                    .get("code_name")
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                text.push_str(&format!(
                    " (libvirt error {code}{}{name})",
                    if name.is_empty() { "" } else { ": " }
                ));
            }
            return text;
        }
    }
    value.to_string()
}

impl Diagnostic {
    pub fn from_eval(err: &EvalAltResult, main_source: &str) -> Diagnostic {
        let (calls, leaf) = unwind(err);
        let mut callers = Vec::new();
        let mut current = main_source.to_owned();
        for call in calls {
            match call {
                Call::Function { name, source, pos } => {
                    if let Some(loc) = locate(&current, pos) {
                        let what = if name.starts_with("anon$") {
                            "a closure".to_owned()
                        } else {
                            format!("function '{name}'")
                        };
                        callers.push((what, loc));
                    }
                    if !source.is_empty() {
                        current = source.to_owned();
                    }
                }
                Call::Module { name, pos } => {
                    if let Some(loc) = locate(&current, pos) {
                        callers.push((format!("module '{name}'"), loc));
                    }
                    current = name.to_owned();
                }
            }
        }
        callers.reverse();
        let mut d = Diagnostic {
            message: leaf_message(leaf),
            location: locate(&current, leaf.position()),
            callers,
            details: Details::of(leaf),
        };
        d.explain_missing(None);
        if is_bad_input(leaf) {
            d.blame_caller();
        }
        d
    }

    /// A failure as `parallel` lists it: the message and `file:line:col`
    /// (installed below the engine with [`crate::api::error::set_describe`]).
    pub fn describe(err: &EvalAltResult, main_source: &str) -> (String, Option<String>) {
        let d = Diagnostic::from_eval(err, main_source);
        (d.message, d.location.map(|l| l.to_string()))
    }

    /// A bundled recipe rejected its caller's input: the mistake is on the
    /// caller's line, so point there (the outermost call that left the bundled
    /// modules) and leave the recipe's internals out.
    fn blame_caller(&mut self) {
        if !self
            .location
            .as_ref()
            .is_some_and(|l| is_bundled(&l.source))
        {
            return;
        }
        if let Some(i) = self
            .callers
            .iter()
            .position(|(_, l)| !is_bundled(&l.source))
        {
            let (_, loc) = self.callers[i].clone();
            self.location = Some(loc);
            self.callers.drain(..=i);
        }
    }

    pub fn from_parse(err: &ParseError, source: &str) -> Diagnostic {
        Diagnostic {
            message: err.err_type().to_string(),
            location: locate(source, err.position()),
            callers: Vec::new(),
            details: Details {
                kind: "compile".to_owned(),
                ..Details::default()
            },
        }
    }

    /// A call of a missing function or property, in a user's words with a
    /// "did you mean"; with `sources`, the receiver is named as the script
    /// wrote it (`HOST has no method 'netwrok'`).
    pub fn explain_missing(&mut self, sources: Option<&SourceMap>) {
        self.explain_missing_with(sources, &[]);
    }

    /// [`Self::explain_missing`], also suggesting the script's own functions.
    pub fn explain_missing_with(&mut self, sources: Option<&SourceMap>, script_functions: &[&str]) {
        let receiver = || {
            let loc = self.location.as_ref()?;
            let line = sources?.line(&loc.source, loc.line)?;
            super::suggest::receiver_before(&line, loc.column)
        };
        if let Some((name, types)) = &self.details.missing_function {
            self.message = super::suggest::missing_function(
                name,
                types,
                receiver().as_deref(),
                script_functions,
            );
        } else if let Some((name, type_name)) = &self.details.missing_property {
            self.message = super::suggest::missing_property(name, type_name, receiver().as_deref());
        }
    }

    /// The error as the object `run --json` prints: kind, message, where, and
    /// what it was about (`null` where not known).
    pub fn to_json(&self) -> serde_json::Value {
        let d = &self.details;
        serde_json::json!({
            "kind": d.kind,
            "message": self.message,
            "file": self.location.as_ref().map(|l| l.source.clone()),
            "line": self.location.as_ref().map(|l| l.line),
            "column": self.location.as_ref().map(|l| l.column),
            "field": d.field,
            "value": d.value,
            "code": d.code,
            "code_name": d.code_name,
            "called_from": self
                .callers
                .iter()
                .map(|(what, loc)| format!("{what} at {loc}"))
                .collect::<Vec<_>>(),
        })
    }

    /// The full text: message, location with the source line and caret, callers.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = format!("error: {}\n", clip_middle(&self.message, MESSAGE_LIMIT));
        if let Some(loc) = &self.location {
            snippet(&mut out, loc, sources);
        }
        for (what, loc) in &self.callers {
            out.push_str(&format!("note: called {what} from here\n"));
            snippet(&mut out, loc, sources);
        }
        out
    }
}

/// Whether a source name is a module compiled into the binary (`stdlib/net.rhai`).
fn is_bundled(source: &str) -> bool {
    source.starts_with("stdlib/")
}

/// An error a script threw about its input: a map with `kind: "invalid"`.
fn is_bad_input(err: &EvalAltResult) -> bool {
    let EvalAltResult::ErrorRuntime(value, _) = err else {
        return false;
    };
    value
        .read_lock::<rhai::Map>()
        .and_then(|m| m.get("kind").map(|k| k.to_string() == "invalid"))
        .unwrap_or(false)
}

fn leaf_message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(value, _) => thrown_message(value),
        EvalAltResult::ErrorTerminated(token, _) => format!("script {}", token),
        // Rhai's words for it ("Data race detected") name no cause a script
        // author would recognise.
        EvalAltResult::ErrorDataRace(var, _) => format!(
            "a closure changed {} while the call it runs in was still using it (like a.map(|x| ...) pushing to a); change a copy, or return the new value from the closure",
            if var.is_empty() {
                "a variable".to_owned()
            } else {
                format!("the variable '{var}'")
            }
        ),
        other => {
            // Display appends " (line L, position C)"; we print the position ourselves.
            let text = other.to_string();
            let suffix = format!(" ({})", other.position());
            text.strip_suffix(&suffix)
                .map(str::to_owned)
                .unwrap_or(text)
        }
    }
}

/// Messages longer than this (characters) lose their middle: a value quoted
/// in them can be a whole pasted file.
const MESSAGE_LIMIT: usize = 400;
/// At most this much of the source line is shown, around the caret.
const SNIPPET_WIDTH: usize = 100;
/// ...of which this much before the caret, when the line is cut.
const SNIPPET_BEFORE: usize = 60;

/// `text` with its middle replaced by `… (N characters left out) …` when it
/// is longer than `limit` characters; the end stays (it may say "did you mean").
pub fn clip_middle(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        return text.to_owned();
    }
    let head = limit * 2 / 3;
    let tail = limit - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    format!(
        "{start}… ({} characters left out) …{end}",
        count - head - tail
    )
}

/// The part of a source line shown under an error, and the caret's column
/// (1-based) in it: the whole line when short, else a window around `column`
/// with `…` where it was cut.
pub fn source_window(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= SNIPPET_WIDTH {
        return (line.to_owned(), column);
    }
    let at = column.saturating_sub(1).min(chars.len());
    // a full window even when the caret is near the end
    let start = at
        .saturating_sub(SNIPPET_BEFORE)
        .min(chars.len() - SNIPPET_WIDTH);
    let end = (start + SNIPPET_WIDTH).min(chars.len());
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, at - start + 1 + usize::from(start > 0))
}

fn snippet(out: &mut String, loc: &Location, sources: &SourceMap) {
    let line_text = sources.line(&loc.source, loc.line);
    let gutter = loc.line.to_string().len();
    let pad = " ".repeat(gutter);
    out.push_str(&format!("{pad}--> {loc}\n"));
    if let Some(text) = line_text {
        let (text, column) = source_window(&text, loc.column);
        // Tabs keep their width so the caret lines up under the column.
        let lead: String = text
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(
            "{pad} |\n{} | {}\n{pad} | {lead}^\n",
            loc.line, text
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_source_lines_and_messages_are_clipped() {
        // a short line is shown whole
        assert_eq!(
            source_window("let x = 1 +* 2;", 12),
            ("let x = 1 +* 2;".into(), 12)
        );
        // a 60 KB line: a window around the caret, cut at both ends
        let line = format!("let s = \"{}\"; s +* 1", "a".repeat(60_000));
        let column = line.find('*').unwrap() + 1;
        let (shown, caret) = source_window(&line, column);
        assert_eq!(shown.chars().count(), SNIPPET_WIDTH + 1, "{shown}");
        assert!(
            shown.starts_with('…') && shown.ends_with("\"; s +* 1"),
            "{shown}"
        );
        assert_eq!(shown.chars().nth(caret - 1), Some('*'), "{shown} {caret}");
        // the caret near the start: cut at the end only
        let (shown, caret) = source_window(&line, 5);
        assert!(shown.starts_with("let s = \"aaa") && shown.ends_with('…'));
        assert_eq!(caret, 5);

        let message = format!(
            "no network named '{}'; did you mean 'b'?",
            "b".repeat(60_000)
        );
        let clipped = clip_middle(&message, MESSAGE_LIMIT);
        assert!(clipped.chars().count() < MESSAGE_LIMIT + 40, "{clipped}");
        assert!(clipped.starts_with("no network named 'bbb"), "{clipped}");
        assert!(clipped.ends_with("bbb'; did you mean 'b'?"), "{clipped}");
        assert!(
            clipped.contains("… (59638 characters left out) …"),
            "{clipped}"
        );
        assert_eq!(clip_middle("short", MESSAGE_LIMIT), "short");
    }
}
