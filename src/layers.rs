//! The layer picture, checked: every `crate::<module>` path in `src/` (in
//! `use` lines and in code, and `super::` chains that climb to the crate
//! root) may name only its own layer or one below. Comments, string literals
//! and `#[cfg(test)]` items are left out: tests may reach anywhere (they run
//! objects on a test driver, `crate::testing`). `lib.rs`, `main.rs`,
//! `testing.rs` and this file are not checked; a new top-level module must be
//! given a layer here.

/// Bottom up; modules on one line share a layer.
const LAYERS: &[&[&str]] = &[
    &["runtime"],
    &["xml", "iso"],
    &["virt_ext"],
    &["api"],
    &["engine"],
    &["output"],
    &["jobs"],
    &["doc"],
    &["repl"],
    &["cli"],
];

/// Files that are no layer's: the crate root, the binary, test-only modules.
const UNCHECKED: &[&str] = &["lib.rs", "main.rs", "testing.rs", "layers.rs"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// `text` with comments and string and character literals blanked out
/// (newlines kept, so offsets keep their line numbers).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !ident_before(&chars, i) {
            // r"..." or r#"..."#
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let end: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body_start = i + 2 + hashes;
            let rest: String = chars[body_start..].iter().collect();
            let len = rest
                .find(&end)
                .map_or(rest.chars().count(), |at| rest[..at].chars().count());
            let stop = (body_start + len + end.chars().count()).min(chars.len());
            out.extend(chars[i..stop].iter().map(|&c| blank(c)));
            i = stop;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // a character literal ('x', '\n', '\''), not a lifetime
            let from = if next == Some('\\') { i + 3 } else { i + 2 };
            let close = chars[from.min(chars.len())..]
                .iter()
                .position(|&c| c == '\'')
                .map_or(chars.len(), |p| from + p + 1);
            out.extend(chars[i..close].iter().map(|&c| blank(c)));
            i = close;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `code` with every `#[cfg(test)]` item blanked out: up to its `;`, or the
/// brace that closes its body.
fn without_tests(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = code.to_owned();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find(MARK).map(|p| p + from) {
        let mut i = at + MARK.len();
        let mut depth = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b';' if depth == 0 => break,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        let end = (i + 1).min(bytes.len());
        let blanked: String = code[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..end, &blanked);
        from = end;
    }
    out
}

/// The top-level modules a file's code names, with the line of each:
/// `crate::x`, `crate::{x, y::z}`, and `super::` chains that climb out of
/// `depth` modules to the crate root.
fn imports(code: &str, depth: usize) -> Vec<(usize, String)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let starts_path = |at: usize| {
        code[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
    };
    for (at, _) in code.match_indices("crate::") {
        if !starts_path(at) {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // top-level items of the group: after `{` and after each `,` at depth 0
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        found.push((line_of(at), ident(&group[i..])));
                    }
                    _ => {}
                }
            }
        } else {
            found.push((line_of(at), ident(rest)));
        }
    }
    for (at, _) in code.match_indices("super::") {
        if !starts_path(at) {
            continue;
        }
        let mut rest = &code[at..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r.trim_start();
        }
        if ups >= depth {
            found.push((line_of(at), ident(rest)));
        }
    }
    found
}

/// Every upward import in `src`: `file:line: imports crate::x (...)`.
fn upward_imports(src: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src/");
        let shown = format!("src/{}", rel.display());
        if UNCHECKED.contains(&rel.to_string_lossy().as_ref()) {
            continue;
        }
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let top = parts[0].trim_end_matches(".rs").to_owned();
        let Some(mine) = layer_of(&top) else {
            problems.push(format!(
                "{shown}: module `{top}` has no layer (add it to LAYERS)"
            ));
            continue;
        };
        // The module path's length: `api/vm/mod.rs` is api::vm, `api/vm/spec.rs` api::vm::spec.
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        for (line, module) in imports(&without_tests(&code_only(&text)), depth) {
            if let Some(theirs) = layer_of(&module) {
                if theirs > mine {
                    problems.push(format!(
                        "{shown}:{line}: imports crate::{module}, a layer above {top}"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = upward_imports(&src);
    assert!(
        problems.is_empty(),
        "upward imports (layers, bottom up: {LAYERS:?}):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scanner_sees_paths_and_skips_comments_strings_and_tests() {
    let text = r#"
use crate::{api::Host, engine::{self, Diagnostic}};
// use crate::cli;
/* crate::repl */
let s = "crate::jobs";
fn f() { crate::output::shown(); super::super::doc::x(); }
#[cfg(test)]
mod tests { use crate::cli::Exit; }
let c = '"'; crate::runtime::stop();
"#;
    let found: Vec<(usize, String)> = imports(&without_tests(&code_only(text)), 2);
    let names: Vec<&str> = found.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(
        names,
        ["api", "engine", "output", "runtime", "doc"],
        "{found:?}"
    );
    assert_eq!(found[2].0, 6, "line numbers survive the blanking");
    // One `super::` from a file two modules deep stays inside its top module.
    assert!(imports("super::x::y()", 2).is_empty());
}
