//! The script API reference, generated from the engine's own function metadata
//! and doc comments (so it cannot drift from the code), plus the bundled modules.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::engine::{self, resolver, EngineOptions, SourceMap};

/// One documented script function.
#[derive(Debug, Clone, Serialize)]
pub struct FnDoc {
    /// The object it belongs to (`Host`, `Network`, ...), a module (`net`), or `global`.
    pub group: String,
    pub name: String,
    /// `property` (get/set), `method`, or `function`.
    pub kind: String,
    pub signature: String,
    pub doc: String,
}

impl FnDoc {
    /// The ```rhai examples in the doc comment.
    pub fn examples(&self) -> Vec<String> {
        examples(&self.doc)
    }
}

/// The ```rhai code blocks of a Markdown text.
pub fn examples(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        let trimmed = line.trim();
        match &mut current {
            None if trimmed == "```rhai" => current = Some(String::new()),
            Some(_) if trimmed == "```" => out.push(current.take().unwrap()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

fn strip_doc_comment(lines: &[Value]) -> String {
    let mut text = String::new();
    for line in lines.iter().filter_map(Value::as_str) {
        for l in line.lines() {
            let l = l.trim_start();
            let l = l
                .strip_prefix("///")
                .or_else(|| l.strip_prefix("//!"))
                .unwrap_or(l);
            text.push_str(l.strip_prefix(' ').unwrap_or(l));
            text.push('\n');
        }
    }
    text.trim_end().to_owned()
}

/// Rust type names as a script author thinks of them: `ScriptResult<Map>` -> `map`.
pub fn type_name(t: &str) -> String {
    let t = t
        .trim()
        .trim_start_matches('&')
        .trim_start_matches("mut ")
        .trim();
    for wrapper in ["ScriptResult<", "RhaiResultOf<", "Result<"] {
        if let Some(inner) = t.strip_prefix(wrapper).and_then(|r| r.strip_suffix('>')) {
            let inner = inner.split(',').next().unwrap_or(inner);
            return type_name(inner);
        }
    }
    let t = t.rsplit("::").next().unwrap_or(t);
    match t {
        "str" | "String" | "ImmutableString" => "string",
        "i64" | "INT" | "u64" | "i32" | "u32" | "usize" => "int",
        "f64" | "FLOAT" => "float",
        "bool" => "bool",
        "Dynamic" => "any",
        "Array" => "array",
        "Map" => "map",
        "Blob" => "blob",
        "FnPtr" => "function",
        "Range<i64>" => "range",
        "RangeInclusive<i64>" => "inclusive range",
        other => other,
    }
    .to_owned()
}

/// Every registered (non-standard) function and every bundled module function.
pub fn entries() -> Vec<FnDoc> {
    let sources = SourceMap::default();
    let options = EngineOptions {
        docs: true,
        ..EngineOptions::default()
    };
    let engine = engine::build(&options, &sources);
    let metadata: Value =
        serde_json::from_str(&engine.gen_fn_metadata_to_json(false).unwrap_or_default())
            .unwrap_or(Value::Null);
    let mut out = Vec::new();
    for f in metadata["functions"].as_array().into_iter().flatten() {
        let raw_name = f["name"].as_str().unwrap_or_default();
        if raw_name.starts_with("to_debug")
            || raw_name.starts_with("to_string") && f["docComments"].is_null()
        {
            continue;
        }
        let params: Vec<(String, String)> = f["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("_").to_owned(),
                    type_name(p["type"].as_str().unwrap_or("?")),
                )
            })
            .collect();
        let ret = f["returnType"].as_str().map(type_name).unwrap_or_default();
        let doc = strip_doc_comment(
            f["docComments"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        );
        let (kind, name) = if let Some(p) = raw_name.strip_prefix("get$") {
            ("property", p.to_owned())
        } else if let Some(p) = raw_name.strip_prefix("set$") {
            ("property (set)", p.to_owned())
        } else if params.first().is_some_and(|(_, t)| is_object_type(t)) {
            ("method", raw_name.to_owned())
        } else {
            ("function", raw_name.to_owned())
        };
        let group = match kind {
            "function" => "global".to_owned(),
            _ => params[0].1.clone(),
        };
        let shown: Vec<String> = params
            .iter()
            .skip(if kind == "function" { 0 } else { 1 })
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        let ret_text = if ret.is_empty() || ret == "()" {
            String::new()
        } else {
            format!(" -> {ret}")
        };
        let signature = match kind {
            "property" => format!("{group}.{name}: {ret}"),
            "property (set)" => format!("{group}.{name} = {}", shown.join(", ")),
            "method" => format!("{group}.{name}({}){ret_text}", shown.join(", ")),
            _ => format!("{name}({}){ret_text}", shown.join(", ")),
        };
        out.push(FnDoc {
            group,
            name,
            kind: kind.to_owned(),
            signature,
            doc,
        });
    }
    out.extend(module_entries(&engine));
    // Sorted on everything shown, so the output never depends on the order in
    // which the engine lists its functions.
    out.sort_by(|a, b| {
        (&a.group, &a.name, &a.signature, &a.doc).cmp(&(&b.group, &b.name, &b.signature, &b.doc))
    });
    out.dedup_by(|a, b| a.signature == b.signature && a.doc == b.doc);
    out
}

fn module_entries(engine: &rhai::Engine) -> Vec<FnDoc> {
    let mut out = Vec::new();
    for name in resolver::stdlib_names() {
        let (_, text) = resolver::stdlib_source(name).expect("listed module exists");
        let Ok(ast) = engine.compile(text) else {
            continue;
        };
        for f in ast.iter_functions() {
            // Private helpers and closures (`anon$...`) are not the module's API.
            if f.access == rhai::FnAccess::Private || f.name.starts_with("anon$") {
                continue;
            }
            let doc = f
                .comments
                .iter()
                .map(|c| Value::String(c.to_string()))
                .collect::<Vec<_>>();
            out.push(FnDoc {
                group: name.to_owned(),
                name: f.name.to_owned(),
                kind: "function".to_owned(),
                signature: format!("{name}::{}({})", f.name, f.params.join(", ")),
                doc: strip_doc_comment(&doc),
            });
        }
    }
    out
}

/// Object types have an upper-case first letter; Rhai's own types do not.
fn is_object_type(t: &str) -> bool {
    t.chars().next().is_some_and(char::is_uppercase)
}

/// The groups in reference order: objects first, then globals, then modules.
pub fn grouped(entries: &[FnDoc]) -> BTreeMap<(u8, String), Vec<&FnDoc>> {
    let modules: Vec<_> = resolver::stdlib_names().collect();
    let mut groups: BTreeMap<(u8, String), Vec<&FnDoc>> = BTreeMap::new();
    for e in entries {
        let rank = if e.group == "global" {
            1
        } else if modules.contains(&e.group.as_str()) {
            2
        } else {
            0
        };
        groups.entry((rank, e.group.clone())).or_default().push(e);
    }
    groups
}

/// One function's section of the reference: its signature as a heading, then
/// its doc comment (the REPL's `help(...)` prints exactly this).
pub fn entry_markdown(f: &FnDoc) -> String {
    let mut out = format!("### `{}`\n\n", f.signature);
    if !f.doc.is_empty() {
        out.push_str(&f.doc);
        out.push('\n');
    }
    out
}

/// A group's title in the reference (`Host`, `Global functions`, a module).
pub fn group_title(group: &str) -> String {
    if group == "global" {
        "Global functions".to_owned()
    } else if resolver::stdlib_names().any(|m| m == group) {
        format!("Module `{group}` (`import \"{group}\" as {group};`)")
    } else {
        format!("`{group}`")
    }
}

/// The reference as Markdown (`docs/api.md`).
pub fn markdown() -> String {
    let entries = entries();
    let mut out = String::from(
        "# virtscript script API\n\n\
         Generated by `virtscript doc` from the functions the engine registers and their doc comments; \
         do not edit by hand. Every example here is run by the test suite.\n",
    );
    for ((_, group), fns) in grouped(&entries) {
        let title = group_title(&group);
        out.push_str(&format!("\n## {title}\n"));
        for f in fns {
            out.push('\n');
            out.push_str(&entry_markdown(f));
        }
    }
    out
}

/// The reference as JSON: a list of functions with group, kind, signature and doc.
pub fn json() -> String {
    let mut text = serde_json::to_string_pretty(&entries()).unwrap_or_default();
    text.push('\n');
    text
}
