//! Errors about calls of functions, methods and properties that do not
//! exist, in a user's words: Rhai's `Function not found: netwrok (Host, &str |
//! ImmutableString | String)` becomes `HOST has no method 'netwrok'; did you
//! mean 'network'?`, using the names the engine has registered.
use std::sync::OnceLock;

/// One registered function: its name and parameter types, as the user words them.
struct Registered {
    name: String,
    params: Vec<String>,
}

/// Every function the engine registers (our API and Rhai's standard library),
/// read once from a fresh engine: this runs only when a call failed.
fn registered() -> &'static [Registered] {
    static ALL: OnceLock<Vec<Registered>> = OnceLock::new();
    ALL.get_or_init(|| {
        let options = super::EngineOptions {
            docs: true,
            ..super::EngineOptions::default()
        };
        let engine = super::build(&options, &Default::default());
        engine
            .gen_fn_signatures(true)
            .iter()
            .filter_map(|s| parse_registered(s))
            .collect()
    })
}

/// `network(host: &mut Host, name: &str) -> Network` (or without parameter names).
fn parse_registered(signature: &str) -> Option<Registered> {
    let open = signature.find('(')?;
    // The parenthesis that closes the list (a return type may hold `()`).
    let mut depth = 0;
    let close = open
        + signature[open..].find(|c| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            depth == 0
        })?;
    let name = signature[..open].trim();
    if name.contains("::") {
        return None;
    }
    let params = split_types(&signature[open + 1..close])
        .into_iter()
        .map(|p| {
            let ty = p.rsplit_once(": ").map_or(p.as_str(), |(_, t)| t);
            user_type(ty)
        })
        .collect();
    Some(Registered {
        name: name.to_owned(),
        params,
    })
}

/// Parameter types separated by top-level commas.
fn split_types(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// A Rust or Rhai type name as a script writer knows it.
pub fn user_type(rust: &str) -> String {
    let t = rust
        .trim()
        .trim_start_matches("&mut ")
        .trim_start_matches('&')
        .trim();
    let t = t.rsplit("::").next().unwrap_or(t);
    let word = match t {
        _ if t.contains("str") || t.contains("String") => "string",
        "i64" | "i32" | "u64" | "u32" | "usize" | "INT" | "int" => "integer",
        "f64" | "f32" | "FLOAT" | "float" => "float",
        "bool" => "bool",
        "char" => "char",
        "Array" | "array" | "Vec<Dynamic>" => "array",
        "Map" | "map" => "map",
        "FnPtr" | "Fn" => "function",
        "Dynamic" | "?" => "any",
        "Blob" | "blob" | "Vec<u8>" => "blob",
        "Instant" | "timestamp" => "timestamp",
        "()" => "()",
        _ if t.starts_with("Range") => "range",
        other => other,
    };
    word.to_owned()
}

/// `netwrok (Host, &str | ImmutableString | String)` -> ("netwrok", ["Host", "string"]).
pub fn parse_signature(signature: &str) -> Option<(String, Vec<String>)> {
    let (name, rest) = signature.split_once(" (")?;
    let list = rest.strip_suffix(')')?;
    Some((
        name.trim().to_owned(),
        split_types(list).iter().map(|t| user_type(t)).collect(),
    ))
}

/// `Unknown property 'nmae' - a getter is not registered for type 'Host'`.
pub fn parse_unknown_property(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix("Unknown property '")?;
    let (name, rest) = rest.split_once('\'')?;
    let type_name = rest.split('\'').nth(1)?;
    Some((name.to_owned(), user_type(type_name)))
}

/// The receiver of a method call whose name starts at `column` (1-based) of
/// `line`: the identifier before the `.` (`HOST` in `HOST.netwrok(...)`).
pub fn receiver_before(line: &str, column: usize) -> Option<String> {
    let chars: Vec<char> = line.chars().collect();
    let dot = column.checked_sub(2)?;
    if chars.get(dot) != Some(&'.') {
        return None;
    }
    let end = dot;
    let mut start = end;
    while start > 0 && (chars[start - 1].is_alphanumeric() || chars[start - 1] == '_') {
        start -= 1;
    }
    // `a.b.c()`: name the last step only if it is a plain variable.
    if start == end || (start > 0 && chars[start - 1] == '.') {
        return None;
    }
    Some(chars[start..end].iter().collect())
}

fn is_object_type(t: &str) -> bool {
    t.chars().next().is_some_and(char::is_uppercase)
}

fn article(t: &str) -> &'static str {
    if t.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}

/// How to name the value a method was called on.
fn who(receiver: Option<&str>, type_name: &str) -> String {
    match receiver {
        Some("HOST") if type_name == "Host" => "HOST".to_owned(),
        Some(r) => format!("{r} ({} {type_name})", article(type_name)),
        None => format!("{} {type_name}", article(type_name)),
    }
}

fn signatures_of<'a>(name: &str, first: Option<&str>) -> Vec<&'a Registered> {
    registered()
        .iter()
        .filter(|r| {
            r.name == name && first.is_none_or(|f| r.params.first().is_some_and(|p| p == f))
        })
        .collect()
}

fn alternatives(found: &[&Registered], skip: usize) -> String {
    let mut alts: Vec<String> = found
        .iter()
        .map(|r| format!("({})", r.params[skip.min(r.params.len())..].join(", ")))
        .collect();
    alts.sort();
    alts.dedup();
    alts.join(" or ")
}

/// The message for a call of `name` with arguments of `types` that matches
/// no function; `receiver` is the variable a method was called on.
pub fn missing_function(
    name: &str,
    types: &[String],
    receiver: Option<&str>,
    script_functions: &[&str],
) -> String {
    let method = receiver.is_some() || types.first().is_some_and(|t| is_object_type(t));
    if method && !types.is_empty() {
        let self_type = types[0].as_str();
        let given = types[1..].join(", ");
        let who = who(receiver, self_type);
        let same = signatures_of(name, Some(self_type));
        if !same.is_empty() {
            return format!(
                "{who}: method '{name}' takes ({}), not ({given})",
                alternatives(&same, 1)
                    .trim_start_matches('(')
                    .trim_end_matches(')')
            );
        }
        let methods = registered()
            .iter()
            .filter(|r| r.params.first().is_some_and(|p| p == self_type))
            .map(|r| r.name.as_str())
            .filter(|n| !n.contains('$'));
        return match crate::runtime::suggest::closest(name, methods) {
            Some(best) => format!("{who} has no method '{name}'; did you mean '{best}'?"),
            None if is_object_type(self_type) => {
                format!("{who} has no method '{name}'; help(\"{self_type}\") lists its methods")
            }
            None => format!("{who} has no method '{name}'"),
        };
    }
    let given = types.join(", ");
    if script_functions.contains(&name) {
        return format!("function '{name}' does not take ({given})");
    }
    let same = signatures_of(name, None);
    if !same.is_empty() {
        return format!(
            "function '{name}' takes {}, not ({given})",
            alternatives(&same, 0)
        );
    }
    let names = registered()
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| !n.contains('$'))
        .chain(script_functions.iter().copied());
    match crate::runtime::suggest::closest(name, names) {
        Some(best) => format!("no function '{name}' taking ({given}); did you mean '{best}'?"),
        None => format!("no function '{name}' taking ({given})"),
    }
}

/// The message for reading a property a type does not have.
pub fn missing_property(name: &str, type_name: &str, receiver: Option<&str>) -> String {
    let who = who(receiver, type_name);
    let getters = registered()
        .iter()
        .filter(|r| r.params.first().is_some_and(|p| p == type_name))
        .filter_map(|r| r.name.strip_prefix("get$"));
    match crate::runtime::suggest::closest(name, getters) {
        Some(best) => format!("{who} has no property '{name}'; did you mean '{best}'?"),
        None => format!("{who} has no property '{name}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhai_signatures_in_user_words() {
        assert_eq!(
            parse_signature("netwrok (Host, &str | ImmutableString | String)"),
            Some(("netwrok".into(), vec!["Host".into(), "string".into()]))
        );
        assert_eq!(
            parse_unknown_property(
                "Unknown property 'nmae' - a getter is not registered for type 'Host'"
            ),
            Some(("nmae".into(), "Host".into()))
        );
        assert_eq!(
            receiver_before("HOST.netwrok(\"x\");", 6).as_deref(),
            Some("HOST")
        );
        assert_eq!(receiver_before("  vm.strat();", 6).as_deref(), Some("vm"));
        assert_eq!(receiver_before("prnt(1);", 1), None);
        assert_eq!(receiver_before("HOST.vm(\"a\").strat();", 14), None);
    }

    #[test]
    fn misspelt_methods_functions_and_properties_get_the_closest_name() {
        let s = |t: &[&str]| t.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            missing_function("netwrok", &s(&["Host", "string"]), Some("HOST"), &[]),
            "HOST has no method 'netwrok'; did you mean 'network'?"
        );
        assert_eq!(
            missing_function("strat", &s(&["Vm"]), Some("vm"), &[]),
            "vm (a Vm) has no method 'strat'; did you mean 'start'?"
        );
        assert_eq!(
            missing_function("prnt", &s(&["string"]), None, &[]),
            "no function 'prnt' taking (string); did you mean 'print'?"
        );
        assert!(
            missing_function("network", &s(&["Host", "integer"]), Some("HOST"), &[])
                .starts_with("HOST: method 'network' takes (string"),
        );
        assert_eq!(
            missing_property("nmae", "Network", None),
            "a Network has no property 'nmae'; did you mean 'name'?"
        );
        assert_eq!(
            missing_function("delpoy", &[], None, &["deploy"]),
            "no function 'delpoy' taking (); did you mean 'deploy'?"
        );
        assert_eq!(
            missing_function("deploy", &s(&["integer"]), None, &["deploy"]),
            "function 'deploy' does not take (integer)"
        );
        assert_eq!(
            missing_property("nmae", "Network", None),
            "a Network has no property 'nmae'; did you mean 'name'?"
        );
    }
}
