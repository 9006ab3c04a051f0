//! Renders script errors the way compilers do: the message, then `file:line:col`,
//! the source line and a caret, then the chain of calls that led there.
use rhai::{Dynamic, EvalAltResult, ParseError, Position};

use super::sources::SourceMap;

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
        let mut callers = Vec::new();
        let mut current = main_source.to_owned();
        let mut err = err;
        loop {
            match err {
                EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                    if let Some(loc) = locate(&current, *pos) {
                        let what = if name.starts_with("anon$") {
                            "a closure".to_owned()
                        } else {
                            format!("function '{name}'")
                        };
                        callers.push((what, loc));
                    }
                    if !src.is_empty() {
                        current = src.clone();
                    }
                    err = inner;
                }
                EvalAltResult::ErrorInModule(name, inner, pos) => {
                    if let Some(loc) = locate(&current, *pos) {
                        callers.push((format!("module '{name}'"), loc));
                    }
                    current = name.clone();
                    err = inner;
                }
                leaf => {
                    callers.reverse();
                    let mut d = Diagnostic {
                        message: leaf_message(leaf),
                        location: locate(&current, leaf.position()),
                        callers,
                    };
                    if is_bad_input(leaf) {
                        d.blame_caller();
                    }
                    return d;
                }
            }
        }
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
        }
    }

    /// The full text: message, location with the source line and caret, callers.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = format!("error: {}\n", self.message);
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

fn snippet(out: &mut String, loc: &Location, sources: &SourceMap) {
    let line_text = sources.line(&loc.source, loc.line);
    let gutter = loc.line.to_string().len();
    let pad = " ".repeat(gutter);
    out.push_str(&format!("{pad}--> {loc}\n"));
    if let Some(text) = line_text {
        // Tabs keep their width so the caret lines up under the column.
        let lead: String = text
            .chars()
            .take(loc.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(
            "{pad} |\n{} | {}\n{pad} | {lead}^\n",
            loc.line, text
        ));
    }
}
