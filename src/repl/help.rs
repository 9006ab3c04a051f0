//! `help()`, `help(HOST)`, `help("Network")`, `help("Vm.clone")`,
//! `help("clone")`: the reference text of `virtscript doc`, from the same
//! entries, rendered for the terminal. Registered only in the REPL's engine
//! (scripts have `virtscript doc` and docs/api.md).
use rhai::{Dynamic, Engine, NativeCallContext};
use unicode_width::UnicodeWidthStr;

use crate::doc::{self, FnDoc};
use crate::runtime::term;

pub fn register(engine: &mut Engine) {
    engine.register_fn("help", || show(&overview(&doc::entries())));
    engine.register_fn("help", |ctx: NativeCallContext, topic: Dynamic| {
        let topic = if topic.is_string() {
            topic.to_string()
        } else {
            value_type(ctx.engine(), &topic)
        };
        show(&topic_help(&doc::entries(), &topic));
    });
}

/// Print help text (Markdown): rendered for a terminal (bold headings,
/// indented and coloured examples, wrapped to its width) and paged through
/// `$PAGER` (default `less -R`) when longer than the screen, like `git help`;
/// plain text wrapped to `COLUMNS` (else 80) when stdout is not a terminal.
fn show(markdown: &str) {
    let text = render(markdown, term::width(), term::colour());
    match term::size() {
        // one row stays for the prompt
        Some((cols, rows)) if screen_rows(&text, cols) >= rows => page(&text),
        _ => print!("{text}"),
    }
}

/// How many terminal rows `text` takes `cols` wide (long lines wrap).
fn screen_rows(text: &str, cols: usize) -> usize {
    text.lines()
        .map(|line| {
            let mut shown = String::new();
            let mut chars = line.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    chars.by_ref().find(|&c| c == 'm');
                } else {
                    shown.push(c);
                }
            }
            shown.width().div_ceil(cols.max(1)).max(1)
        })
        .sum()
}

/// The pager command: `$PAGER` unless empty, else `less -R` (colours pass through).
pub fn pager_command() -> String {
    std::env::var("PAGER")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "less -R".to_owned())
}

/// Send `text` through the pager (a shell command line, as git runs it);
/// print it when the pager cannot be started.
fn page(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let _ = std::io::stdout().flush();
    let pager = pager_command();
    match Command::new("sh")
        .args(["-c", &pager])
        .stdin(Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                // The user may quit the pager before reading it all.
                let _ = stdin.write_all(text.as_bytes());
            }
            // 127: the shell found no such program (no `less` installed)
            if child.wait().is_ok_and(|s| s.code() == Some(127)) {
                errln!("(cannot start the pager '{pager}'; set PAGER)");
                print!("{text}");
            }
        }
        Err(e) => {
            errln!("(cannot start the pager '{pager}': {e})");
            print!("{text}");
        }
    }
}

const BOLD: &str = "\x1b[1m";
const BOLD_UNDERLINE: &str = "\x1b[1;4m";
const CODE: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";
/// How far code examples are indented.
const CODE_INDENT: &str = "    ";

/// Markdown (the subset the doc comments use: headings, paragraphs, `- `
/// items, ``` fences, `code`) as text for a terminal `width` wide; `styled`
/// adds bold headings and colours, else the text is plain.
pub fn render(markdown: &str, width: usize, styled: bool) -> String {
    let mut out = String::new();
    let mut block = Block::default();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            block.flush(&mut out, width, styled);
            in_code = !in_code;
            continue;
        }
        if in_code {
            out.push_str(CODE_INDENT);
            if styled {
                out.push_str(&super::highlight::line(line));
            } else {
                out.push_str(line);
            }
            out.push('\n');
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            block.flush(&mut out, width, styled);
            let title = line[hashes..].trim().replace('`', "");
            if styled {
                let style = if hashes <= 2 { BOLD_UNDERLINE } else { BOLD };
                out.push_str(&format!("{style}{title}{RESET}\n"));
            } else {
                out.push_str(&title);
                out.push('\n');
            }
            continue;
        }
        if line.trim().is_empty() {
            block.flush(&mut out, width, styled);
            out.push('\n');
            continue;
        }
        if let Some(item) = line.strip_prefix("- ") {
            block.flush(&mut out, width, styled);
            block.item = true;
            block
                .words
                .extend(item.split_whitespace().map(str::to_owned));
            continue;
        }
        block
            .words
            .extend(line.split_whitespace().map(str::to_owned));
    }
    block.flush(&mut out, width, styled);
    out
}

/// A paragraph or a `- ` item being gathered, wrapped when it ends.
#[derive(Default)]
struct Block {
    words: Vec<String>,
    item: bool,
}

impl Block {
    fn flush(&mut self, out: &mut String, width: usize, styled: bool) {
        if self.words.is_empty() {
            self.item = false;
            return;
        }
        let (first, rest) = if self.item { ("- ", "  ") } else { ("", "") };
        let lines = wrap(&self.words, width.saturating_sub(first.len()).max(20));
        let mut in_code = false;
        for (i, line) in lines.iter().enumerate() {
            out.push_str(if i == 0 { first } else { rest });
            out.push_str(&inline_code(line, styled, &mut in_code));
            out.push('\n');
        }
        self.words.clear();
        self.item = false;
    }
}

/// Greedy word wrap; a word's width leaves out its backticks (they are not shown).
fn wrap(words: &[String], width: usize) -> Vec<String> {
    let shown = |w: &str| w.width() - w.matches('`').count();
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_width = 0;
    for word in words {
        let w = shown(word);
        if !line.is_empty() && line_width + 1 + w > width {
            lines.push(std::mem::take(&mut line));
            line_width = 0;
        }
        if !line.is_empty() {
            line.push(' ');
            line_width += 1;
        }
        line.push_str(word);
        line_width += w;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `code` spans without their backticks, coloured when `styled`; a span may
/// go on over the next line (`in_code` carries that).
fn inline_code(line: &str, styled: bool, in_code: &mut bool) -> String {
    let mut out = String::with_capacity(line.len());
    if styled && *in_code {
        out.push_str(CODE);
    }
    for c in line.chars() {
        if c == '`' {
            *in_code = !*in_code;
            if styled {
                out.push_str(if *in_code { CODE } else { RESET });
            }
        } else {
            out.push(c);
        }
    }
    if styled && *in_code {
        out.push_str(RESET);
    }
    out
}

/// The type name a user sees for a value (`Host`, `map`, `string`, ...).
pub fn value_type(engine: &Engine, value: &Dynamic) -> String {
    if value.is_string() {
        "string".into()
    } else if value.is_map() {
        "map".into()
    } else if value.is_array() {
        "array".into()
    } else if value.is_int() {
        "int".into()
    } else if value.is_float() {
        "float".into()
    } else if value.is_bool() {
        "bool".into()
    } else if value.is_unit() {
        "()".into()
    } else {
        engine.map_type_name(value.type_name()).to_owned()
    }
}

/// `help()`: the objects with their members, global functions, modules (Markdown).
pub fn overview(entries: &[FnDoc]) -> String {
    let mut out =
        String::from("## Objects\n\n`help(\"Type\")` or `help(value)` for the details.\n\n");
    let groups = doc::grouped(entries);
    let mut globals = Vec::new();
    let mut modules = Vec::new();
    for ((rank, group), fns) in &groups {
        match rank {
            0 => {
                let mut names: Vec<&str> = fns.iter().map(|f| f.name.as_str()).collect();
                names.dedup();
                out.push_str(&format!("- `{group}`: {}\n", names.join(", ")));
            }
            1 => globals.extend(fns.iter().map(|f| f.name.as_str())),
            _ => modules.push(format!("`{group}` ({})", fns.len())),
        }
    }
    globals.dedup();
    out.push_str(&format!(
        "\n## Global functions\n\n`help(\"name\")` for one.\n\n- {}\n",
        globals.join(", ")
    ));
    if !modules.is_empty() {
        out.push_str(&format!(
            "\n## Bundled modules\n\n`import \"name\" as name;`, then `help(\"name\")`.\n\n- {}\n",
            modules.join(", ")
        ));
    }
    out.push_str("\nVariables `HOST` (the connected host) and `ARGS`. REPL commands: `:help`.\n");
    out
}

/// The reference text (Markdown) for a type or module (`Host`, `net`), one
/// member (`Vm.clone`, `net::nat`), or a name (`node_info`; a list of the
/// matches when several types have it, as `clone`).
pub fn topic_help(entries: &[FnDoc], topic: &str) -> String {
    let group_of =
        |name: &str| -> Vec<&FnDoc> { entries.iter().filter(|e| e.group == name).collect() };
    // a module that shares its name with functions elsewhere (`clone`): `help("clone::")`
    let named = |name: &str| entries.iter().filter(|e| e.name == name).count();
    let topic = match topic.strip_suffix("::") {
        Some(module) => module,
        None if named(topic) > 0 && !group_of(topic).is_empty() => {
            let functions: Vec<&FnDoc> = entries.iter().filter(|e| e.name == topic).collect();
            return matches_list(topic, &functions);
        }
        None => topic,
    };
    let mut group = group_of(topic);
    let mut group_name = topic.to_owned();
    if group.is_empty() {
        if let Some(e) = entries.iter().find(|e| e.group.eq_ignore_ascii_case(topic)) {
            group_name = e.group.clone();
            group = group_of(&group_name);
        }
    }
    if !group.is_empty() {
        let mut out = format!("## {}\n", doc::group_title(&group_name));
        for f in group {
            out.push('\n');
            out.push_str(&doc::entry_markdown(f));
        }
        return out;
    }
    // `Type.member` or `module::function`
    let qualified = topic
        .split_once("::")
        .or_else(|| topic.split_once('.'))
        .map(|(g, n)| (g.trim(), n.trim()));
    let functions: Vec<&FnDoc> = match qualified {
        Some((g, n)) => entries
            .iter()
            .filter(|e| e.group.eq_ignore_ascii_case(g) && e.name == n)
            .collect(),
        None => entries.iter().filter(|e| e.name == topic).collect(),
    };
    let mut groups: Vec<&str> = functions.iter().map(|f| f.group.as_str()).collect();
    groups.sort();
    groups.dedup();
    if groups.len() > 1 {
        return matches_list(topic, &functions);
    }
    if !functions.is_empty() {
        let mut out = String::new();
        for (i, f) in functions.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&doc::entry_markdown(f));
        }
        return out;
    }
    let mut similar: Vec<String> = entries
        .iter()
        .filter(|e| e.name.contains(topic) || topic.contains(e.name.as_str()) && e.name.len() > 2)
        .map(qualified_name)
        .collect();
    similar.extend(
        entries
            .iter()
            .map(|e| e.group.clone())
            .filter(|g| g.contains(topic) || topic.contains(g.as_str()) && g.len() > 2),
    );
    similar.sort();
    similar.dedup();
    if similar.is_empty() {
        format!("no help for '{topic}'; help() lists everything\n")
    } else {
        format!(
            "no help for '{topic}'; did you mean: {}?\n",
            similar.join(", ")
        )
    }
}

/// `Vm.clone`, `net::nat`, `sleep`: how a user names an entry in `help(...)`.
fn qualified_name(f: &FnDoc) -> String {
    if f.group == "global" {
        f.name.clone()
    } else if entries_module(&f.group) {
        format!("{}::{}", f.group, f.name)
    } else {
        format!("{}.{}", f.group, f.name)
    }
}

/// How much of an entry's first sentence a list of matches shows.
const SUMMARY_WIDTH: usize = 100;

/// `text` cut at a word boundary to at most `width` characters, with `…` when cut.
fn clip_words(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        if out.chars().count() + word.chars().count() + 2 > width {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    // an open `code` span would swallow the rest of the line
    if out.matches('`').count() % 2 == 1 {
        out.push('`');
    }
    out.push_str(" …");
    out
}

fn entries_module(name: &str) -> bool {
    crate::engine::resolver::stdlib_names().any(|m| m == name)
}

/// A name several types have: each match with its first sentence.
fn matches_list(topic: &str, functions: &[&FnDoc]) -> String {
    let mut out =
        format!("## `{topic}`\n\nFound in several places; `help(\"Type.{topic}\")` for one.\n\n");
    if entries_module(topic) {
        out.push_str(&format!(
            "- the module `{topic}` (`import \"{topic}\" as {topic};`): `help(\"{topic}::\")`\n"
        ));
    }
    for f in functions {
        let summary = f.doc.split("\n\n").next().unwrap_or("").replace('\n', " ");
        let summary = match summary.find(". ") {
            Some(end) => summary[..=end].to_owned(),
            None => summary,
        };
        let summary = clip_words(&summary, SUMMARY_WIDTH);
        out.push_str(&format!(
            "- `{}` (`help(\"{}\")`): {summary}\n",
            f.signature,
            qualified_name(f)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_texts_match_the_reference() {
        let entries = doc::entries();
        let reference = doc::markdown();
        let host = topic_help(&entries, "Host");
        assert!(host.starts_with("## `Host`\n"), "{host}");
        // every section printed is in docs/api.md verbatim
        for section in host.split("\n### ").skip(1) {
            assert!(reference.contains(section.trim_end()), "{section}");
        }
        assert_eq!(
            topic_help(&entries, "network"),
            topic_help(&entries, "Network"),
            "case-insensitive types"
        );
        // "host" is a bundled module and a property of several objects: listed.
        assert!(topic_help(&entries, "host").contains("help(\"host::\")"));
        assert!(topic_help(&entries, "host::").contains("host::evacuate"));
        let node_info = topic_help(&entries, "node_info");
        assert!(
            node_info.starts_with("### `Host.node_info() -> map`"),
            "{node_info}"
        );
        assert!(node_info.contains("```rhai"), "{node_info}");
        // (Host.node_device and node_devices, sorted first, are suggested too)
        let node = topic_help(&entries, "node");
        assert!(node.contains("did you mean: Host.node_device"), "{node}");
        assert!(node.contains(", Host.node_info"), "{node}");
        // one member, and a name several types have
        let clone = topic_help(&entries, "Vm.clone");
        assert!(clone.starts_with("### `Vm.clone() -> Vm`"), "{clone}");
        assert!(!clone.contains("Volume.clone"), "{clone}");
        assert_eq!(topic_help(&entries, "vm.clone"), clone);
        let list = topic_help(&entries, "clone");
        assert!(
            list.contains("- `Vm.clone() -> Vm` (`help(\"Vm.clone\")`): Clone a shut-off VM"),
            "{list}"
        );
        assert!(list.contains("(`help(\"Volume.clone\")`)"), "{list}");
        assert!(!list.contains("```"), "a list, not the entries: {list}");
        assert!(
            list.contains(
                "- the module `clone` (`import \"clone\" as clone;`): `help(\"clone::\")`"
            ),
            "{list}"
        );
        assert!(topic_help(&entries, "clone::").starts_with("## Module `clone`"));
        let all = overview(&entries);
        assert!(all.contains("- `Host`: "), "{all}");
        assert!(all.contains("sleep"), "{all}");
    }

    #[test]
    fn rows_on_screen_count_wrapped_lines_and_not_escapes() {
        assert_eq!(screen_rows("a\n\nb\n", 80), 3);
        assert_eq!(screen_rows(&"x".repeat(81), 80), 2);
        assert_eq!(
            screen_rows(&format!("{BOLD}{}{RESET}", "x".repeat(80)), 80),
            1
        );
    }

    #[test]
    fn markdown_renders_for_a_terminal_and_as_plain_text() {
        let md = "### `Vm.start() -> ()`\n\nStart a defined VM (`virsh start`), then wait for nothing at all here.\n\n```rhai\nlet vm = HOST.vm(\"test\");\n```\n\n- an item that is long enough to wrap onto a second line\n";
        let plain = render(md, 30, false);
        assert_eq!(
            plain,
            "Vm.start() -> ()\n\
             \n\
             Start a defined VM (virsh\n\
             start), then wait for nothing\n\
             at all here.\n\
             \n    \
             let vm = HOST.vm(\"test\");\n\
             \n\
             - an item that is long enough\n  \
             to wrap onto a second line\n"
        );
        let styled = render(md, 30, true);
        assert!(
            styled.starts_with("\x1b[1mVm.start() -> ()\x1b[0m\n"),
            "{styled}"
        );
        // a code span that wraps is coloured on both lines, and closed on each
        assert!(
            styled.contains("(\x1b[36mvirsh\x1b[0m\n\x1b[36mstart\x1b[0m)"),
            "{styled}"
        );
        assert!(
            styled.contains("    \x1b[1;35mlet\x1b[0m vm"),
            "examples are highlighted: {styled}"
        );
        // the whole reference of a type, wrapped: no line wider than asked, no Markdown left
        let entries = doc::entries();
        let host = render(&topic_help(&entries, "Host"), 72, false);
        for line in host.lines().filter(|l| !l.starts_with(CODE_INDENT)) {
            assert!(line.width() <= 72, "{line:?}");
            assert!(
                !line.starts_with("## ") && !line.starts_with("### "),
                "{line:?}"
            );
            assert!(!line.contains('`'), "{line:?}");
        }
        assert!(
            host.lines().any(|l| l == "Host.node_info() -> map"),
            "{host}"
        );
    }
}
