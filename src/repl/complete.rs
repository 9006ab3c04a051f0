//! Tab completion and signature hints, as pure functions of the text before
//! the cursor and what the session knows (variables, the API catalog, live
//! object names), so they can be tested without a terminal.
use rhai::packages::Package;
use serde_json::Value;

use crate::doc::{self, FnDoc};

/// What a completed name is: shown, filtered and inserted differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Property,
    Method,
    Function,
}

/// One function of the API, as the completer and hinter need it.
#[derive(Debug, Clone)]
pub struct FnInfo {
    pub name: String,
    pub kind: Kind,
    /// The receiver's type for properties and methods (`Host`, `string`, ...).
    pub receiver: Option<String>,
    /// What it returns, as a type name (`Network`, `map`, `array`...).
    pub returns: String,
    pub signature: String,
}

/// Everything the API offers: our functions (from `crate::doc::entries()`,
/// so signatures match `virtscript doc`), Rhai's methods on built-in types, the
/// bundled modules.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub functions: Vec<FnInfo>,
    /// Bundled module import paths (`import "retry"`).
    pub modules: Vec<String>,
    /// Object types and groups that `help("...")` knows.
    pub groups: Vec<String>,
}

impl Catalog {
    /// Build from the engine's metadata (a few milliseconds: done off the prompt's path).
    pub fn build() -> Catalog {
        let mut catalog = Catalog::from_docs(&doc::entries());
        catalog.functions.extend(builtin_methods());
        catalog.modules = crate::engine::resolver::stdlib_names()
            .map(str::to_owned)
            .collect();
        catalog
    }

    pub fn from_docs(entries: &[FnDoc]) -> Catalog {
        let mut functions = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        for e in entries {
            if !groups.contains(&e.group) {
                groups.push(e.group.clone());
            }
            let (kind, receiver) = match e.kind.as_str() {
                "property" => (Kind::Property, Some(e.group.clone())),
                "property (set)" => continue,
                "method" => (Kind::Method, Some(e.group.clone())),
                _ if e.group == "global" => (Kind::Function, None),
                // module functions: `group::name`
                _ => (Kind::Function, Some(format!("{}::", e.group))),
            };
            let returns = match kind {
                Kind::Property => e.signature.rsplit_once(": ").map(|(_, t)| t),
                _ => e.signature.rsplit_once(" -> ").map(|(_, t)| t),
            }
            .unwrap_or("")
            .to_owned();
            functions.push(FnInfo {
                name: e.name.clone(),
                kind,
                receiver,
                returns,
                signature: e.signature.clone(),
            });
        }
        Catalog {
            functions,
            modules: Vec::new(),
            groups,
        }
    }

    /// Properties and methods of a type.
    pub fn members<'a>(&'a self, type_name: &str) -> impl Iterator<Item = &'a FnInfo> + 'a {
        let type_name = type_name.to_owned();
        self.functions.iter().filter(move |f| {
            f.kind != Kind::Function && f.receiver.as_deref() == Some(type_name.as_str())
        })
    }

    /// The type a member of `type_name` returns, when known.
    fn member_type(&self, type_name: &str, name: &str, call: bool) -> Option<String> {
        let kind = if call { Kind::Method } else { Kind::Property };
        self.members(type_name)
            .find(|f| f.name == name && f.kind == kind)
            .map(|f| f.returns.clone())
            .filter(|t| !t.is_empty() && t != "any")
    }
}

/// Rhai's own methods on strings, arrays, maps and numbers (`"a".to_upper()`).
fn builtin_methods() -> Vec<FnInfo> {
    let mut engine = rhai::Engine::new_raw();
    engine.register_global_module(rhai::packages::StandardPackage::new().as_shared_module());
    let metadata: Value = engine
        .gen_fn_metadata_to_json(true)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let mut out = Vec::new();
    for f in metadata["functions"].as_array().into_iter().flatten() {
        let raw = f["name"].as_str().unwrap_or_default();
        let params: Vec<String> = f["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| doc::type_name(p["type"].as_str().unwrap_or("?")))
            .collect();
        let Some(first) = params.first() else {
            continue;
        };
        if !["string", "array", "map", "int", "float", "blob"].contains(&first.as_str())
            || raw.starts_with("set$")
            || raw.starts_with("to_debug")
            || !raw.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        {
            continue;
        }
        let returns = f["returnType"]
            .as_str()
            .map(doc::type_name)
            .unwrap_or_default();
        let (kind, name) = match raw.strip_prefix("get$") {
            Some(p) => (Kind::Property, p.to_owned()),
            None => (Kind::Method, raw.to_owned()),
        };
        let signature = f["signature"].as_str().unwrap_or(raw).to_owned();
        out.push(FnInfo {
            name,
            kind,
            receiver: Some(first.clone()),
            returns,
            signature,
        });
    }
    out
}

/// A variable in the session, as the completer sees it.
#[derive(Debug, Clone, Default)]
pub struct VarInfo {
    pub name: String,
    /// `Host`, `Network`, `map`, `string`, `int`, ...
    pub type_name: String,
    /// For maps: their keys, offered after `var.`.
    pub keys: Vec<String>,
}

/// `(receiver chain, method)` → names of existing objects, for
/// `receiver.method("<Tab>`. The session resolves the receiver itself: it has
/// the values (`HOST`, variables) and asks libvirt.
pub type LiveNames<'a> = dyn Fn(&Chain, &str) -> Option<Vec<String>> + 'a;

/// What the completer knows about the session.
pub struct Known<'a> {
    pub catalog: &'a Catalog,
    pub vars: &'a [VarInfo],
    /// `import "x" as alias` done in the session: (alias, path).
    pub aliases: &'a [(String, String)],
    /// Live object names; `None` when there is nothing to list.
    pub live: &'a LiveNames<'a>,
}

/// One completion: what the list shows, what replaces the word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub display: String,
    pub replacement: String,
}

fn candidate(display: impl Into<String>, replacement: impl Into<String>) -> Candidate {
    Candidate {
        display: display.into(),
        replacement: replacement.into(),
    }
}

/// REPL commands, for completion after `:`.
pub const META_COMMANDS: &[&str] = &[
    ":help", ":load", ":connect", ":json", ":time", ":vars", ":quit",
];

pub const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "do", "until", "break",
    "continue", "return", "throw", "try", "catch", "switch", "import", "export", "as", "true",
    "false", "private",
];

/// Complete the word before `pos` in `line`: the byte offset where the
/// replaced text starts, and the candidates (sorted, unique).
pub fn complete(line: &str, pos: usize, known: &Known) -> (usize, Vec<Candidate>) {
    let before = &line[..pos];
    let after = &line[pos..];
    let (start, mut out) = complete_inner(before, after, known);
    out.sort_by(|a, b| a.display.cmp(&b.display));
    out.dedup_by(|a, b| a.display == b.display);
    (start, out)
}

fn complete_inner(before: &str, after: &str, known: &Known) -> (usize, Vec<Candidate>) {
    // `:co` → `:connect`
    if before.starts_with(':') && !before.contains(char::is_whitespace) {
        let out = META_COMMANDS
            .iter()
            .filter(|c| c.starts_with(before))
            .map(|c| candidate(*c, format!("{c} ")))
            .collect();
        return (0, out);
    }
    if let Some(rest) = before.strip_prefix(":connect ") {
        let start = before.len() - rest.len();
        let out = ["qemu:///system", "qemu:///session", "test:///default"]
            .iter()
            .filter(|u| u.starts_with(rest))
            .map(|u| candidate(*u, *u))
            .collect();
        return (start, out);
    }
    if let Some(quote) = open_string(before) {
        return complete_in_string(before, after, quote, known);
    }
    let word_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident_char(*c))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(before.len());
    let word = &before[word_start..];
    let head = &before[..word_start];
    // `alias::fn`
    if let Some(module_head) = head.strip_suffix("::") {
        let group = module_group(known, module_head);
        let out = known
            .catalog
            .functions
            .iter()
            .filter(|f| f.receiver.as_deref() == Some(group.as_str()))
            .filter(|f| f.name.starts_with(word))
            .map(|f| candidate(f.name.clone(), format!("{}(", f.name)))
            .collect();
        return (word_start, out);
    }
    // `receiver.member`
    if let Some(receiver) = head.strip_suffix('.') {
        let mut out = Vec::new();
        if let Some(chain) = parse_chain(receiver) {
            if let Some(var) = known.vars.iter().find(|v| v.name == chain.root) {
                if chain.segments.is_empty() && var.type_name == "map" {
                    out.extend(
                        var.keys
                            .iter()
                            .filter(|k| k.starts_with(word))
                            .map(|k| candidate(k.clone(), k.clone())),
                    );
                }
            }
            if let Some(type_name) = chain_type(&chain, known) {
                out.extend(
                    known
                        .catalog
                        .members(&type_name)
                        .filter(|f| f.name.starts_with(word))
                        .map(|f| match f.kind {
                            Kind::Property => candidate(f.name.clone(), f.name.clone()),
                            _ => candidate(format!("{}(", f.name), format!("{}(", f.name)),
                        }),
                );
            }
        }
        return (word_start, out);
    }
    if word.is_empty() {
        return (word_start, Vec::new());
    }
    // A name at the start of an expression.
    let mut out: Vec<Candidate> = Vec::new();
    for v in known.vars {
        if v.name.starts_with(word) {
            out.push(candidate(v.name.clone(), v.name.clone()));
        }
    }
    for g in ["HOST", "ARGS"] {
        if g.starts_with(word) {
            out.push(candidate(g, g));
        }
    }
    for f in &known.catalog.functions {
        if f.kind == Kind::Function && f.receiver.is_none() && f.name.starts_with(word) {
            out.push(candidate(format!("{}(", f.name), format!("{}(", f.name)));
        }
    }
    for (alias, _) in known.aliases {
        if alias.starts_with(word) {
            out.push(candidate(format!("{alias}::"), format!("{alias}::")));
        }
    }
    for k in KEYWORDS {
        if k.starts_with(word) && *k != word {
            out.push(candidate(*k, format!("{k} ")));
        }
    }
    (word_start, out)
}

fn complete_in_string(
    before: &str,
    after: &str,
    quote: usize,
    known: &Known,
) -> (usize, Vec<Candidate>) {
    let typed = &before[quote + 1..];
    let start = quote + 1;
    let head = before[..quote].trim_end();
    let closing = if after.starts_with('"') {
        ""
    } else if after.trim().is_empty() && head.ends_with('(') {
        "\")"
    } else {
        "\""
    };
    let names: Vec<String> = if head.ends_with("import") && trailing_ident(head) == "import" {
        known.catalog.modules.clone()
    } else if let Some(call) = head.strip_suffix('(') {
        let method = trailing_ident(call);
        let receiver = &call[..call.len() - method.len()];
        if method == "help" && receiver.is_empty() {
            let mut names = known.catalog.groups.clone();
            names.extend(known.catalog.functions.iter().map(|f| f.name.clone()));
            names
        } else if let Some(receiver) = receiver.strip_suffix('.') {
            parse_chain(receiver)
                .and_then(|chain| (known.live)(&chain, method))
                .unwrap_or_default()
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    };
    let out = names
        .into_iter()
        .filter(|n| n.starts_with(typed))
        .map(|n| candidate(n.clone(), format!("{n}{closing}")))
        .collect();
    (start, out)
}

/// One step of a chain: `.name` or `.name(args)`; `arg` is the first argument
/// when it is a plain string literal (`pool("default")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub call: bool,
    pub arg: Option<String>,
}

/// `HOST.network("default").autostart` as a root and segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// `HOST`, a variable, `"` for a string literal, `[` for an array literal,
    /// empty for a global function call (then the first segment is that call).
    pub root: String,
    pub segments: Vec<Segment>,
}

/// Parse the receiver before a `.`, backwards: identifiers, calls with
/// balanced arguments, `.` between.
pub fn parse_chain(text: &str) -> Option<Chain> {
    let mut rest = text.trim_end();
    let mut segments = Vec::new();
    let done = |root: &str, mut segments: Vec<Segment>| {
        segments.reverse();
        Some(Chain {
            root: root.to_owned(),
            segments,
        })
    };
    loop {
        let mut call = false;
        let mut arg = None;
        if rest.ends_with(')') {
            let open = matching_open(rest, '(', ')')?;
            arg = string_literal(&rest[open + 1..rest.len() - 1]);
            rest = &rest[..open];
            call = true;
        } else if rest.ends_with('"') || rest.ends_with('`') {
            return done("\"", segments);
        } else if rest.ends_with(']') {
            let open = matching_open(rest, '[', ']')?;
            if rest[..open].trim_end().is_empty() {
                return done("[", segments);
            }
            return None;
        }
        let name = trailing_ident(rest);
        if name.is_empty() {
            return None;
        }
        rest = &rest[..rest.len() - name.len()];
        let segment = Segment {
            name: name.to_owned(),
            call,
            arg,
        };
        if let Some(r) = rest.strip_suffix('.') {
            segments.push(segment);
            rest = r;
        } else if call {
            // a global function call as root: `connect("...").`
            segments.push(segment);
            return done("", segments);
        } else {
            return done(name, segments);
        }
    }
}

/// `"name"` → `name` (no escapes, nothing else in the argument list).
fn string_literal(args: &str) -> Option<String> {
    let inner = args.trim().strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['"', '\\'])).then(|| inner.to_owned())
}

/// The type of a chain's value, from the variables' types and the API's return types.
pub fn chain_type(chain: &Chain, known: &Known) -> Option<String> {
    let mut segments = chain.segments.iter();
    let mut current = match chain.root.as_str() {
        "HOST" => "Host".to_owned(),
        "ARGS" | "[" => "array".to_owned(),
        "\"" => "string".to_owned(),
        "" => {
            let name = &segments.next()?.name;
            known
                .catalog
                .functions
                .iter()
                .find(|f| f.kind == Kind::Function && f.receiver.is_none() && &f.name == name)
                .map(|f| f.returns.clone())
                .filter(|t| !t.is_empty())?
        }
        name => known
            .vars
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.type_name.clone())?,
    };
    for segment in segments {
        current = known
            .catalog
            .member_type(&current, &segment.name, segment.call)?;
    }
    Some(current)
}

/// The signature of the call the cursor is in (`HOST.network(` → its signature).
pub fn hint(before: &str, known: &Known) -> Option<String> {
    let open = innermost_open_paren(before)?;
    let call = &before[..open];
    let name = trailing_ident(call);
    if name.is_empty() {
        return None;
    }
    let receiver = &call[..call.len() - name.len()];
    let matches: Vec<&FnInfo> = if let Some(r) = receiver.strip_suffix('.') {
        let chain = parse_chain(r)?;
        let type_name = chain_type(&chain, known)?;
        known
            .catalog
            .members(&type_name)
            .filter(|f| f.name == name && f.kind == Kind::Method)
            .collect()
    } else if let Some(module) = receiver.strip_suffix("::") {
        let group = module_group(known, module);
        known
            .catalog
            .functions
            .iter()
            .filter(|f| f.name == name && f.receiver.as_deref() == Some(group.as_str()))
            .collect()
    } else {
        known
            .catalog
            .functions
            .iter()
            .filter(|f| f.name == name && f.kind == Kind::Function && f.receiver.is_none())
            .collect()
    };
    let first = matches.first()?;
    let more = matches.len() - 1;
    Some(if more > 0 {
        format!("{}  (+{more} more)", first.signature)
    } else {
        first.signature.clone()
    })
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The catalog group (`net::`) of the module alias that ends `text` (`import "net" as n;`).
fn module_group(known: &Known, text: &str) -> String {
    let alias = trailing_ident(text);
    let path = known
        .aliases
        .iter()
        .find(|(a, _)| a == alias)
        .map(|(_, p)| p.as_str())
        .unwrap_or(alias);
    format!("{path}::")
}

/// The identifier at the end of `text` (may be empty).
fn trailing_ident(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_ident_char(*c))
        .last()
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    &text[start..]
}

/// If `text` ends inside a string literal, the byte offset of its opening quote.
/// Skips complete strings, escapes and `//` comments.
pub fn open_string(text: &str) -> Option<usize> {
    let mut open: Option<(usize, char)> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match open {
            Some((_, q)) => {
                if c == '\\' && q == '"' {
                    chars.next();
                } else if c == q {
                    open = None;
                }
            }
            None => match c {
                '"' | '`' => open = Some((i, c)),
                '\'' => {
                    // a character literal: 'a' or '\n'
                    if let Some((_, '\\')) = chars.next() {
                        chars.next();
                    }
                    chars.next();
                }
                '/' if chars.peek().map(|(_, c)| *c) == Some('/') => {
                    for (_, c) in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                _ => {}
            },
        }
    }
    open.map(|(i, _)| i)
}

/// The byte offset of the `(` matching the `)` that ends `text`.
fn matching_open(text: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string: Option<char> = None;
    // walk backwards; strings inside arguments are skipped roughly (no escapes)
    for (i, c) in text.char_indices().rev() {
        if let Some(q) = in_string {
            if c == q {
                in_string = None;
            }
            continue;
        }
        match c {
            '"' | '`' => in_string = Some(c),
            c if c == close => depth += 1,
            c if c == open => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The byte offset of the innermost `(` still open at the end of `text`.
fn innermost_open_paren(text: &str) -> Option<usize> {
    let mut stack = Vec::new();
    let mut in_string: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = in_string {
            if c == '\\' && q == '"' {
                chars.next();
            } else if c == q {
                in_string = None;
            }
            continue;
        }
        match c {
            '"' | '`' => in_string = Some(c),
            '(' => stack.push(i),
            ')' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let f = |group: &str, name: &str, kind: &str, signature: &str| FnDoc {
            group: group.into(),
            name: name.into(),
            kind: kind.into(),
            signature: signature.into(),
            doc: String::new(),
        };
        let mut c = Catalog::from_docs(&[
            f("Host", "networks", "method", "Host.networks() -> array"),
            f(
                "Host",
                "network",
                "method",
                "Host.network(name: string) -> Network",
            ),
            f("Host", "node_info", "method", "Host.node_info() -> map"),
            f("Host", "uri", "property", "Host.uri: string"),
            f("Host", "pool", "method", "Host.pool(name: string) -> Pool"),
            f("Network", "name", "property", "Network.name: string"),
            f("Network", "start", "method", "Network.start()"),
            f(
                "Pool",
                "volume",
                "method",
                "Pool.volume(name: string) -> Volume",
            ),
            f(
                "global",
                "connect",
                "function",
                "connect(uri: string) -> Host",
            ),
            f("global", "sleep", "function", "sleep(seconds: float)"),
            f("retry", "retry", "function", "retry::retry(times, f)"),
        ]);
        c.modules = vec!["retry".into()];
        c
    }

    fn live(chain: &Chain, method: &str) -> Option<Vec<String>> {
        let args: Vec<Option<&str>> = chain.segments.iter().map(|s| s.arg.as_deref()).collect();
        match (chain.root.as_str(), args.as_slice(), method) {
            ("HOST", [], "network") => Some(vec!["default".into(), "lab".into()]),
            ("p", [], "volume") | ("HOST", [Some("default-pool")], "volume") => {
                Some(vec!["disk1.qcow2".into(), "disk2.qcow2".into()])
            }
            _ => None,
        }
    }

    fn run(line: &str) -> Vec<String> {
        run_at(line, line.len()).1
    }

    fn run_at(line: &str, pos: usize) -> (usize, Vec<String>) {
        let catalog = catalog();
        let vars = vec![
            VarInfo {
                name: "net".into(),
                type_name: "Network".into(),
                keys: vec![],
            },
            VarInfo {
                name: "p".into(),
                type_name: "Pool".into(),
                keys: vec![],
            },
            VarInfo {
                name: "info".into(),
                type_name: "map".into(),
                keys: vec!["cpus".into(), "cpu_model".into(), "memory".into()],
            },
        ];
        let aliases = vec![("r".to_owned(), "retry".to_owned())];
        let known = Known {
            catalog: &catalog,
            vars: &vars,
            aliases: &aliases,
            live: &live,
        };
        let (start, c) = complete(line, pos, &known);
        (start, c.into_iter().map(|c| c.replacement).collect())
    }

    #[test]
    fn members_of_host() {
        assert_eq!(run("HOST.net"), ["network(", "networks("]);
        assert_eq!(run_at("HOST.net", 8).0, 5);
        assert_eq!(run("HOST.u"), ["uri"]);
        assert!(run("HOST.").len() >= 5);
    }

    #[test]
    fn members_through_a_chain_and_variables() {
        assert_eq!(run("HOST.network(\"default\").st"), ["start("]);
        assert_eq!(run("net.na"), ["name"]);
        assert_eq!(run("connect(\"test:///default\").node"), ["node_info("]);
        assert_eq!(run("info.cpu"), ["cpu_model", "cpus"]);
        assert_eq!(run("x.na"), Vec::<String>::new(), "unknown variable");
    }

    #[test]
    fn globals_variables_keywords() {
        assert_eq!(run("con"), ["connect(", "const ", "continue "]);
        assert_eq!(run("let x = ne"), ["net"]);
        assert_eq!(run("H"), ["HOST"]);
        assert_eq!(run("inf"), ["info"]);
        assert_eq!(run("in"), ["info"], "a whole keyword is not offered again");
        assert_eq!(run("r"), ["r::", "return "]);
        assert_eq!(run("r::re"), ["retry("]);
    }

    #[test]
    fn live_names_in_string_arguments() {
        assert_eq!(run("HOST.network(\"def"), ["default\")"]);
        assert_eq!(run("HOST.network(\""), ["default\")", "lab\")"]);
        let (start, _) = run_at("HOST.network(\"def", 17);
        assert_eq!(start, 14);
        // the closing quote is not doubled when already there
        assert_eq!(run_at("HOST.network(\"d\")", 15).1, ["default"]);
        assert_eq!(run("p.volume(\"disk2"), ["disk2.qcow2\")"]);
        assert_eq!(
            run("HOST.pool(\"default-pool\").volume(\"d"),
            ["disk1.qcow2\")", "disk2.qcow2\")"]
        );
        assert_eq!(run("net.start(\""), Vec::<String>::new());
        assert_eq!(run("print(\"HOST.network(\\\"de"), Vec::<String>::new());
    }

    #[test]
    fn imports_help_and_meta_commands() {
        assert_eq!(run("import \"re"), ["retry\""]);
        assert!(run("help(\"Net").contains(&"Network\")".to_owned()));
        assert!(run("help(\"node").contains(&"node_info\")".to_owned()));
        assert_eq!(run(":co"), [":connect "]);
        assert_eq!(
            run(":connect qemu:///s"),
            ["qemu:///session", "qemu:///system"]
        );
    }

    #[test]
    fn hints_show_signatures() {
        let catalog = catalog();
        let known = Known {
            catalog: &catalog,
            vars: &[],
            aliases: &[],
            live: &live,
        };
        assert_eq!(
            hint("HOST.network(", &known).as_deref(),
            Some("Host.network(name: string) -> Network")
        );
        assert_eq!(
            hint("let n = HOST.network(\"de", &known).as_deref(),
            Some("Host.network(name: string) -> Network")
        );
        assert_eq!(
            hint("sleep(", &known).as_deref(),
            Some("sleep(seconds: float)")
        );
        assert_eq!(hint("sleep(1)", &known), None);
        assert_eq!(hint("foo(", &known), None);
    }

    #[test]
    fn strings_and_chains_parse() {
        assert_eq!(open_string("print(\"a\") + \"b"), Some(13));
        assert_eq!(open_string("print(\"a\\\"b\")"), None);
        assert_eq!(open_string("// \"x\n"), None);
        assert_eq!(
            parse_chain("HOST.network(\"x.y\").autostart"),
            Some(Chain {
                root: "HOST".into(),
                segments: vec![
                    Segment {
                        name: "network".into(),
                        call: true,
                        arg: Some("x.y".into())
                    },
                    Segment {
                        name: "autostart".into(),
                        call: false,
                        arg: None
                    }
                ]
            })
        );
        assert_eq!(parse_chain("\"abc\".len()").unwrap().root, "\"");
        assert_eq!(parse_chain("(1 + 2)"), None);
    }

    #[test]
    fn real_catalog_knows_host_and_builtins() {
        let catalog = Catalog::build();
        assert!(catalog.members("Host").any(|f| f.name == "node_info"));
        assert!(catalog.members("string").any(|f| f.name == "to_upper"));
        assert!(catalog.members("array").any(|f| f.name == "len"));
        assert!(catalog
            .functions
            .iter()
            .any(|f| f.name == "sleep" && f.kind == Kind::Function));
    }

    #[test]
    fn real_catalog_completes_every_object_of_the_api() {
        let catalog = Catalog::build();
        let names =
            |t: &str| -> Vec<String> { catalog.members(t).map(|f| f.name.clone()).collect() };
        let host = names("Host");
        for m in [
            "networks",
            "network",
            "pools",
            "pool",
            "vms",
            "vm",
            "ensure_network",
            "create_vm",
        ] {
            assert!(host.contains(&m.to_owned()), "Host lacks {m}: {host:?}");
        }
        assert!(names("Network").contains(&"add_dhcp_host".to_owned()));
        assert!(names("Pool").contains(&"create_volume".to_owned()));
        assert!(names("Volume").contains(&"clone".to_owned()));
        assert!(names("Vm").contains(&"snapshot".to_owned()));
        assert!(names("Snapshot").contains(&"revert".to_owned()));
        let vars = Vec::new();
        let aliases = Vec::new();
        let known = Known {
            catalog: &catalog,
            vars: &vars,
            aliases: &aliases,
            live: &live,
        };
        let (_, found) = complete("HOST.net", 8, &known);
        let found: Vec<String> = found.into_iter().map(|c| c.replacement).collect();
        assert_eq!(found, ["network(", "networks("]);
    }
}
