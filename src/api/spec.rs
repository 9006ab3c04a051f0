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
                crate::suggest::unknown_key(what, key, keys),
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

/// A serde error from `from_dynamic` in words.
fn describe(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorMismatchOutputType(wanted, got, _) => {
            format!("expected {}, got {got}", friendly_type(wanted))
        }
        EvalAltResult::ErrorParsing(rhai::ParseErrorType::BadInput(lex), _) => match lex {
            rhai::LexError::ImproperSymbol(_, msg) => msg.clone(),
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}

fn friendly_type(rust: &str) -> &str {
    match rust {
        "u8" | "u16" | "u32" | "u64" | "i32" | "i64" | "usize" => "a whole number",
        "bool" => "true or false",
        "string" | "String" | "&str" => "a string",
        other => other,
    }
}
