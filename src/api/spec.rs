//! Script maps into typed specs (serde), with errors that name the key.
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};
use serde::de::DeserializeOwned;

use super::error::{ScriptError, ScriptResult};

/// Turn a script map into `T` (a serde struct whose fields all have defaults).
/// An unknown key, or a value of the wrong type, is an error naming the key.
pub fn from_map<T: DeserializeOwned>(
    ctx: &NativeCallContext,
    what: &str,
    map: &Map,
    keys: &[&str],
) -> ScriptResult<T> {
    let whole = Dynamic::from_map(map.clone());
    let error = match rhai::serde::from_dynamic(&whole) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    // Find the key to blame: an unknown one, or the first that fails alone.
    for (key, value) in map {
        if !keys.contains(&key.as_str()) {
            return Err(ScriptError::invalid(
                key,
                value,
                crate::runtime::suggest::unknown_key(what, key, keys),
            )
            .at(ctx));
        }
        let mut one = Map::new();
        one.insert(key.clone(), value.clone());
        if let Err(e) = rhai::serde::from_dynamic::<T>(&Dynamic::from_map(one)) {
            return Err(ScriptError::invalid(key, value, describe(&e)).at(ctx));
        }
    }
    Err(ScriptError::invalid(what, whole, describe(&error)).at(ctx))
}

/// A serde error from `from_dynamic` in words (no Rust type names).
fn describe(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorMismatchOutputType(wanted, got, _) => {
            format!(
                "expected {}, got {}",
                friendly_type(wanted),
                friendly_type(got)
            )
        }
        EvalAltResult::ErrorParsing(rhai::ParseErrorType::BadInput(lex), _) => match lex {
            rhai::LexError::ImproperSymbol(_, msg) => friendly_serde(msg),
            other => friendly_serde(&other.to_string()),
        },
        other => friendly_serde(&other.to_string()),
    }
}

/// serde's "invalid value: integer `-1`, expected u32" as a range a user knows.
fn friendly_serde(msg: &str) -> String {
    let Some((head, wanted)) = msg.rsplit_once(", expected ") else {
        return msg.to_owned();
    };
    let range = match wanted.trim() {
        "u8" => "a whole number from 0 to 255".to_owned(),
        "u16" => "a whole number from 0 to 65535".to_owned(),
        "u32" => format!("a whole number from 0 to {}", u32::MAX),
        "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i32" => format!("a whole number from {} to {}", i32::MIN, i32::MAX),
        other => friendly_type(other).to_owned(),
    };
    let got = head
        .strip_prefix("invalid value: ")
        .or_else(|| head.strip_prefix("invalid type: "))
        .unwrap_or(head)
        .replace('`', "");
    let got = got
        .strip_prefix("integer ")
        .or_else(|| got.strip_prefix("floating point "))
        .unwrap_or(&got);
    format!("expected {range}, got {got}")
}

fn friendly_type(rust: &str) -> &str {
    match rust {
        "u8" | "u16" | "u32" | "u64" | "i32" | "i64" | "usize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" => "true or false",
        "string" | "String" | "&str" | "char" => "a string",
        "Map" | "map" => "a map #{ ... }",
        "Array" | "array" => "an array [ ... ]",
        "()" => "()",
        other if other.contains("Vec<") => "an array [ ... ]",
        other if other.contains("Map<") => "a map #{ ... }",
        other if other.contains("Option<") => "a value or ()",
        // A typed part of a spec (`DhcpHost`, `Ip`): a map of its keys.
        other if other.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => "a map #{ ... }",
        other => other,
    }
}
