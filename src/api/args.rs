//! The one reader of script maps: specs, options and recipe options. Errors
//! name the field (`disks[1].size`), the value as given and, once stamped
//! with [`ScriptError::at`], the script position; unknown keys get "did you
//! mean". Two entry points share that vocabulary:
//! - [`Fields`] reads a map key by key into a typed spec (VMs, pools,
//!   volumes, options): the key list is the set of keys the reader asks for;
//! - [`from_map`] reads a map that mirrors a libvirt document (a network's
//!   `<network>`) through serde: the key list is the document type's fields.
//!
//! Sizes (`"10G"` or a number) and durations (seconds, or `"5m"`) are read
//! here and nowhere else.
use std::cell::RefCell;
use std::time::Duration;

use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};
use serde::de::DeserializeOwned;

use super::error::{ScriptError, ScriptResult};

/// A typed view of a script map. Every getter records the key it was asked
/// for, so a reader that asks for all its keys and then calls
/// [`Fields::finish`] refuses the keys it never asked for (typos), with "did
/// you mean" among those it did: the key list is the reader's code.
pub struct Fields<'a> {
    prefix: String,
    map: &'a Map,
    asked: RefCell<Vec<String>>,
}

impl<'a> Fields<'a> {
    pub fn new(prefix: impl Into<String>, map: &'a Map) -> Fields<'a> {
        Fields {
            prefix: prefix.into(),
            map,
            asked: RefCell::new(Vec::new()),
        }
    }

    /// Refuse keys no getter asked for.
    pub fn finish(&self) -> Result<(), ScriptError> {
        let asked = self.asked.borrow();
        let known: Vec<&str> = asked.iter().map(String::as_str).collect();
        self.only(&known)
    }

    /// The keys asked for so far (a reader's key list, for docs and completion).
    pub fn asked(&self) -> Vec<String> {
        self.asked.borrow().clone()
    }

    fn ask(&self, key: &str) {
        let mut asked = self.asked.borrow_mut();
        if !asked.iter().any(|k| k == key) {
            asked.push(key.to_owned());
        }
    }

    pub fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// Fail on keys outside `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), ScriptError> {
        for (key, value) in self.map {
            if !known.contains(&key.as_str()) {
                return Err(ScriptError::invalid(
                    &self.name(key),
                    value,
                    crate::runtime::suggest::unknown_key("", key, known),
                ));
            }
        }
        Ok(())
    }

    pub fn raw(&self, key: &str) -> Option<&'a Dynamic> {
        self.ask(key);
        self.map.get(key).filter(|v| !v.is_unit())
    }

    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    pub fn wrong(&self, key: &str, value: &Dynamic, want: &str) -> ScriptError {
        ScriptError::invalid(
            &self.name(key),
            show(value),
            format!("must be {want}, not {}", value.type_name()),
        )
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, ScriptError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) if v.is_string() => {
                let text = v.to_string();
                // XML holds no NUL or other control characters but tab and newlines.
                if let Some(c) = text
                    .chars()
                    .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                {
                    return Err(ScriptError::invalid(
                        &self.name(key),
                        &text,
                        format!(
                            "must not contain {} (XML cannot hold it)",
                            crate::xml::network::describe_char(c)
                        ),
                    ));
                }
                Ok(Some(text))
            }
            Some(v) => Err(self.wrong(key, v, "a string")),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ScriptError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .map_err(|_| self.wrong(key, v, "true or false")),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ScriptError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .map(Some)
                .map_err(|_| self.wrong(key, v, "a whole number")),
        }
    }

    pub fn positive(&self, key: &str, max: i64) -> Result<Option<u32>, ScriptError> {
        match self.int(key)? {
            None => Ok(None),
            Some(n) if n >= 1 && n <= max => Ok(Some(n as u32)),
            Some(n) => Err(ScriptError::invalid(
                &self.name(key),
                n,
                format!("must be between 1 and {max}"),
            )),
        }
    }

    /// A size: a string like `"2G"`, or a number in `number_unit` (bytes or MiB).
    pub fn size(&self, key: &str, number_is_mib: bool) -> Result<Option<u64>, ScriptError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => size(
                &self.name(key),
                v,
                if number_is_mib {
                    NumberUnit::MiB
                } else {
                    NumberUnit::Bytes
                },
                false,
            )
            .map(Some),
        }
    }

    pub fn array(&self, key: &str) -> Result<Option<Array>, ScriptError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .read_lock::<Array>()
                .map(|a| Some(a.clone()))
                .ok_or_else(|| self.wrong(key, v, "an array")),
        }
    }

    pub fn map(&self, key: &str) -> Result<Option<Map>, ScriptError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .read_lock::<Map>()
                .map(|m| Some(m.clone()))
                .ok_or_else(|| self.wrong(key, v, "a map")),
        }
    }

    /// The one key of `keys` present in the map; an error naming the map's
    /// field (with `hint`) when none or several are.
    pub fn exactly_one(
        &self,
        keys: &[&'static str],
        hint: &str,
    ) -> Result<&'static str, ScriptError> {
        let present: Vec<&'static str> = keys.iter().copied().filter(|k| self.has(k)).collect();
        match present.as_slice() {
            [one] => Ok(one),
            [] => Err(ScriptError::invalid(&self.prefix, "none", hint)),
            several => Err(ScriptError::invalid(
                &self.prefix,
                several.join(" + "),
                hint,
            )),
        }
    }

    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, ScriptError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) if allowed.contains(&s.as_str()) => Ok(Some(s)),
            Some(s) => Err(ScriptError::invalid(
                &self.name(key),
                &s,
                format!("must be one of: {}", allowed.join(", ")),
            )),
        }
    }
}

/// How a value reads in an error message: strings as they are, others in Rhai syntax.
pub fn show(value: &Dynamic) -> String {
    if value.is_string() {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

/// What a plain number means where a size is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberUnit {
    /// Capacities: `10737418240` is 10 GiB.
    Bytes,
    /// Memory: `1024` is 1 GiB, as in virt-install's `--memory`.
    MiB,
}

/// A size given by a script: a string with a unit (`"10G"`, `"512MB"`), or a
/// number in `unit`. Zero is refused unless `zero_ok` (an empty volume).
pub fn size(field: &str, v: &Dynamic, unit: NumberUnit, zero_ok: bool) -> Result<u64, ScriptError> {
    if let Ok(n) = v.as_int() {
        if n < 0 {
            return Err(ScriptError::invalid(field, n, "a size cannot be negative"));
        }
        if n == 0 && !zero_ok {
            return Err(ScriptError::invalid(field, n, "must be positive"));
        }
        let bytes = match unit {
            NumberUnit::MiB => (n as u64).checked_mul(1 << 20),
            NumberUnit::Bytes => Some(n as u64),
        };
        return bytes
            .filter(|b| *b <= crate::runtime::units::MAX_BYTES)
            .ok_or_else(|| {
                ScriptError::invalid(
                    field,
                    n,
                    "too large: sizes go up to just under 8E (8 EiB, libvirt's limit)",
                )
            });
    }
    if v.is_string() {
        let text = v.to_string();
        return match crate::runtime::units::parse_size(&text) {
            Ok(0) if !zero_ok => Err(ScriptError::invalid(field, &text, "must be positive")),
            Ok(bytes) => Ok(bytes),
            Err(why) => Err(ScriptError::invalid(field, &text, why)),
        };
    }
    Err(ScriptError::invalid(
        field,
        show(v),
        format!(
            "expected a size like \"10G\" or a number of {}, not {}",
            match unit {
                NumberUnit::Bytes => "bytes",
                NumberUnit::MiB => "MiB",
            },
            v.type_name()
        ),
    ))
}

/// A duration given by a script: a number of seconds (`30`, `0.5`).
pub fn seconds(field: &str, v: &Dynamic) -> Result<Duration, ScriptError> {
    let s = if let Ok(i) = v.as_int() {
        i as f64
    } else if let Ok(f) = v.as_float() {
        f
    } else {
        return Err(ScriptError::invalid(
            field,
            show(v),
            format!("must be a number of seconds, not {}", v.type_name()),
        ));
    };
    if !(s.is_finite() && s >= 0.0) {
        return Err(ScriptError::invalid(
            field,
            s,
            "must be a non-negative number of seconds",
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

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

/// The keys a serde document type takes: the field names its derive passes
/// to `deserialize_struct` (after `rename`s), so a key list is never written
/// a second time. Empty for types that are not structs (or that `flatten`).
pub fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Grab<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Grab<'_> {
        type Error = de::value::Error;

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("keys read"))
        }

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut keys: &'static [&'static str] = &[];
    let _ = T::deserialize(Grab(&mut keys));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(rename = "type")]
        kind: Option<String>,
    }

    #[test]
    fn keys_of_a_document_type_are_its_fields() {
        assert_eq!(keys_of::<Doc>(), ["name", "type"]);
        assert!(keys_of::<String>().is_empty());
    }

    #[test]
    fn finish_refuses_the_keys_no_getter_asked_for() {
        let mut map = Map::new();
        map.insert("name".into(), "web".into());
        map.insert("memroy".into(), "1G".into());
        let f = Fields::new("", &map);
        assert_eq!(f.string("name").unwrap().as_deref(), Some("web"));
        assert!(f.size("memory", true).unwrap().is_none());
        let err = f.finish().unwrap_err().message();
        assert!(err.starts_with("memroy: "), "{err}");
        assert!(err.contains("did you mean 'memory'"), "{err}");
    }

    #[test]
    fn one_size_reader_for_bytes_and_mib() {
        let mib = size("memory", &Dynamic::from(512_i64), NumberUnit::MiB, false).unwrap();
        assert_eq!(mib, 512 << 20);
        let zero = size("capacity", &Dynamic::from(0_i64), NumberUnit::Bytes, true).unwrap();
        assert_eq!(zero, 0);
        let refused = size("memory", &Dynamic::from("0"), NumberUnit::MiB, false).unwrap_err();
        assert!(refused.message().contains("must be positive"));
    }
}
