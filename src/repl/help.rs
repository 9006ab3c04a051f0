//! `help()`, `help(HOST)`, `help("Network")`, `help("define_network")`: the
//! reference text of `virtscript doc`, from the same entries. Registered only
//! in the REPL's engine (scripts have `virtscript doc` and docs/api.md).
use rhai::{Dynamic, Engine, NativeCallContext};

use crate::doc::{self, FnDoc};

pub fn register(engine: &mut Engine) {
    engine.register_fn("help", || print!("{}", overview(&doc::entries())));
    engine.register_fn("help", |ctx: NativeCallContext, topic: Dynamic| {
        let topic = if topic.is_string() {
            topic.to_string()
        } else {
            value_type(ctx.engine(), &topic)
        };
        print!("{}", topic_help(&doc::entries(), &topic));
    });
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

/// `help()`: the objects with their members, global functions, modules.
pub fn overview(entries: &[FnDoc]) -> String {
    let mut out = String::from("Objects (help(\"Type\") or help(value) for the details):\n");
    let groups = doc::grouped(entries);
    let mut globals = Vec::new();
    let mut modules = Vec::new();
    for ((rank, group), fns) in &groups {
        match rank {
            0 => {
                let mut names: Vec<&str> = fns.iter().map(|f| f.name.as_str()).collect();
                names.dedup();
                out.push_str(&format!("  {group:<10} {}\n", names.join(", ")));
            }
            1 => globals.extend(fns.iter().map(|f| f.name.as_str())),
            _ => modules.push(format!("{group} ({})", fns.len())),
        }
    }
    globals.dedup();
    out.push_str(&format!(
        "Global functions (help(\"name\")):\n  {}\n",
        globals.join(", ")
    ));
    if !modules.is_empty() {
        out.push_str(&format!(
            "Bundled modules (import \"name\" as name;):\n  {}\n",
            modules.join(", ")
        ));
    }
    out.push_str("Variables HOST (the connected host) and ARGS. REPL commands: :help\n");
    out
}

/// The reference text for a type, a module, or a function name.
pub fn topic_help(entries: &[FnDoc], topic: &str) -> String {
    let group_of =
        |name: &str| -> Vec<&FnDoc> { entries.iter().filter(|e| e.group == name).collect() };
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
    let functions: Vec<&FnDoc> = entries.iter().filter(|e| e.name == topic).collect();
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
    let mut similar: Vec<&str> = entries
        .iter()
        .flat_map(|e| [e.name.as_str(), e.group.as_str()])
        .filter(|n| n.contains(topic) || topic.contains(*n) && n.len() > 2)
        .collect();
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
        // An exact name wins: "host" is the bundled module, "Host" the type.
        assert!(topic_help(&entries, "host").contains("host::evacuate"));
        let node_info = topic_help(&entries, "node_info");
        assert!(
            node_info.starts_with("### `Host.node_info() -> map`"),
            "{node_info}"
        );
        assert!(node_info.contains("```rhai"), "{node_info}");
        assert!(topic_help(&entries, "node").contains("did you mean: node_info"));
        let all = overview(&entries);
        assert!(all.contains("  Host "), "{all}");
        assert!(all.contains("sleep"), "{all}");
    }
}
