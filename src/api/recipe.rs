//! What the bundled recipes (`stdlib/*.rhai`) use to check their options:
//! `options` reads an option map through the core's reader
//! ([`Fields`](crate::api::args::Fields)), so recipes refuse a bad option in
//! the same words, with the same type names and "did you mean", as the
//! script objects do; `refuse` raises a recipe's own error about an option.
//!
//! A recipe's error is `kind: "invalid"` with `field`, `value` (as given),
//! `recipe` and the message `recipe: field: problem (got value)`. It carries
//! no position of its own: the engine's diagnostics point an invalid error
//! raised inside a bundled module at the line that called the recipe.
use rhai::plugin::*;
use rhai::{Array, Dynamic, FnPtr, Map};

use super::args::{seconds, show, size, Fields, NumberUnit};
use super::error::{ErrorKind, ScriptError, ScriptResult};

/// What a schema entry asks an option to be.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    String,
    Bool,
    Int,
    /// A size; a plain number is in this unit.
    Size(NumberUnit),
    Seconds,
    Array,
    /// `dhcp: false`: an array, or false to turn the thing off.
    ArrayOrFalse,
    Map,
    Function,
    Any,
    OneOf(Vec<String>),
}

impl Want {
    fn parse(field: &str, spec: &Dynamic) -> Result<Want, ScriptError> {
        if let Some(list) = spec.read_lock::<Array>() {
            let words: Vec<String> = list
                .iter()
                .filter(|v| v.is_string())
                .map(|v| v.to_string())
                .collect();
            if words.len() != list.len() || words.is_empty() {
                return Err(ScriptError::invalid(
                    field,
                    show(spec),
                    "a list of choices must be a non-empty array of strings",
                ));
            }
            return Ok(Want::OneOf(words));
        }
        let name = spec.to_string();
        Ok(match name.as_str() {
            "string" => Want::String,
            "bool" => Want::Bool,
            "int" => Want::Int,
            "size" => Want::Size(NumberUnit::Bytes),
            "size_mib" => Want::Size(NumberUnit::MiB),
            "seconds" => Want::Seconds,
            "array" => Want::Array,
            "array|false" => Want::ArrayOrFalse,
            "map" => Want::Map,
            "fn" => Want::Function,
            "any" => Want::Any,
            _ => {
                return Err(ScriptError::invalid(
                    field,
                    show(spec),
                    "unknown type (known: string, bool, int, size, size_mib, seconds, array, \
                     array|false, map, fn, any, or an array of choices)",
                ))
            }
        })
    }

    /// Check `key` of `f` (absent is fine here; `required` is checked apart).
    fn check(&self, f: &Fields, key: &str) -> Result<(), ScriptError> {
        let Some(value) = f.raw(key) else {
            return Ok(());
        };
        match self {
            Want::String => f.string(key).map(drop),
            Want::Bool => f.boolean(key).map(drop),
            Want::Int => f.int(key).map(drop),
            Want::Size(unit) => size(&f.name(key), value, *unit, false).map(drop),
            Want::Seconds => seconds(&f.name(key), value).map(drop),
            Want::Array => f.array(key).map(drop),
            Want::ArrayOrFalse if value.as_bool() == Ok(false) => Ok(()),
            Want::ArrayOrFalse => f
                .array(key)
                .map(drop)
                .map_err(|_| f.wrong(key, value, "an array or false")),
            Want::Map => f.map(key).map(drop),
            Want::Function if value.is::<FnPtr>() => Ok(()),
            Want::Function => Err(f.wrong(key, value, "a function")),
            Want::Any => Ok(()),
            Want::OneOf(words) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                f.one_of(key, &words).map(drop)
            }
        }
    }
}

/// One entry of a schema: `name: "int"`, `mode: ["a", "b"]`, or
/// `name: #{ type, required, otherwise, renamed }` (`otherwise`: the value
/// when not given; `default` is a reserved word in Rhai).
struct Entry {
    key: String,
    want: Want,
    /// `Some("")` for a bare `required: true`, else what to give.
    required: Option<String>,
    otherwise: Option<Dynamic>,
    /// A key that is gone: its new name.
    renamed: Option<String>,
}

impl Entry {
    fn parse(key: &str, spec: &Dynamic) -> Result<Entry, ScriptError> {
        let field = format!("schema.{key}");
        let Some(map) = spec.read_lock::<Map>().map(|m| m.clone()) else {
            return Ok(Entry {
                key: key.to_owned(),
                want: Want::parse(&field, spec)?,
                required: None,
                otherwise: None,
                renamed: None,
            });
        };
        let s = Fields::new(field.clone(), &map);
        let renamed = s.string("renamed")?;
        let want = match s.raw("type") {
            Some(t) => Want::parse(&s.name("type"), t)?,
            None if renamed.is_some() => Want::Any,
            None => return Err(ScriptError::invalid(&field, show(spec), "needs a type")),
        };
        let required = match s.raw("required") {
            None => None,
            Some(v) if v.is_string() => Some(v.to_string()),
            Some(_) => s.boolean("required")?.filter(|r| *r).map(|_| String::new()),
        };
        let otherwise = s.raw("otherwise").cloned();
        s.finish()?;
        Ok(Entry {
            key: key.to_owned(),
            want,
            required,
            otherwise,
            renamed,
        })
    }
}

/// `recipe: field: problem (got value)`, as every recipe error reads.
fn refused(recipe: &str, field: &str, value: Dynamic, problem: &str) -> ScriptError {
    let shown = if value.is_string() {
        format!("{:?}", value.to_string())
    } else {
        show(&value)
    };
    ScriptError::new(
        ErrorKind::Invalid,
        format!("{recipe}: {field}: {problem} (got {shown})"),
    )
    .with("field", field)
    .with("value", value)
    .with("recipe", recipe)
}

/// The problem an invalid error states, without its `field: ` and ` (got ...)`
/// (the frame [`ScriptError::invalid`] puts around it).
fn problem_of(error: &Map) -> Option<String> {
    let text = |key: &str| error.get(key).map(|v| v.to_string());
    if text("kind")? != ErrorKind::Invalid.as_str() {
        return None;
    }
    let message = text("message")?;
    // A recipe's error (`net::subnet: subnet: ...`) has its recipe in front.
    let message = match text("recipe") {
        Some(recipe) => message
            .strip_prefix(&format!("{recipe}: "))
            .map_or(message.clone(), str::to_owned),
        None => message,
    };
    let field = text("field").unwrap_or_default();
    let body = message
        .strip_prefix(&format!("{field}: "))
        .unwrap_or(&message);
    let got = format!(" (got {:?})", text("value").unwrap_or_default());
    Some(match body.strip_suffix(&got) {
        Some(problem) => problem.to_owned(),
        None => body
            .rsplit_once(" (got ")
            .map_or(body, |(problem, _)| problem)
            .to_owned(),
    })
}

/// The problem a core reader's error states.
fn core_problem(error: ScriptError) -> Option<String> {
    match *error.into_eval() {
        EvalAltResult::ErrorRuntime(v, _) => v.read_lock::<Map>().and_then(|m| problem_of(&m)),
        _ => None,
    }
}

/// A core reader's error about `key` of `map`, as the recipe's own.
fn reframe(recipe: &str, f: &Fields, map: &Map, key: &str, error: ScriptError) -> ScriptError {
    let value = map.get(key).cloned().unwrap_or(Dynamic::UNIT);
    let problem = core_problem(error).unwrap_or_default();
    refused(recipe, &f.name(key), value, &problem)
}

/// Read `opts` by `schema` for `recipe`: the options as given, with the
/// defaults of those not given. `prefix` names the map in errors (`""` for
/// a recipe's own options, `dhcp_hosts[0]` for one of its entries).
fn read(recipe: &str, prefix: &str, opts: &Dynamic, schema: &Map) -> Result<Map, ScriptError> {
    let Some(map) = opts.read_lock::<Map>().map(|m| m.clone()) else {
        let field = if prefix.is_empty() { "opts" } else { prefix };
        return Err(refused(
            recipe,
            field,
            opts.clone(),
            &format!("must be a map of options, not {}", opts.type_name()),
        ));
    };
    let entries = schema
        .iter()
        .map(|(key, spec)| Entry::parse(key, spec))
        .collect::<Result<Vec<_>, _>>()?;
    let f = Fields::new(prefix, &map);
    // A key given under its old name says the new one.
    for e in &entries {
        if let (Some(new), Some(v)) = (&e.renamed, f.raw(&e.key)) {
            let problem = format!("this option is now called {new}");
            return Err(refused(recipe, &f.name(&e.key), v.clone(), &problem));
        }
    }
    // Unknown keys first: a misspelt key would otherwise read as a missing one.
    if let Err(err) = f.finish() {
        let known: Vec<&str> = entries
            .iter()
            .filter(|e| e.renamed.is_none())
            .map(|e| e.key.as_str())
            .collect();
        let (key, value) = map
            .iter()
            .find(|(k, _)| !entries.iter().any(|e| e.key == k.as_str()))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .unwrap_or_default();
        // The core's "did you mean" when a known key is close, else the list.
        let problem = core_problem(err)
            .filter(|p| p.contains("did you mean"))
            .unwrap_or_else(|| format!("unknown option; known: {}", known.join(", ")));
        return Err(refused(recipe, &f.name(&key), value, &problem));
    }
    for e in &entries {
        e.want
            .check(&f, &e.key)
            .map_err(|err| reframe(recipe, &f, &map, &e.key, err))?;
    }
    let mut out = Map::new();
    for e in &entries {
        match (f.raw(&e.key), &e.otherwise, &e.required) {
            (Some(v), _, _) => {
                out.insert(e.key.as_str().into(), v.clone());
            }
            (None, Some(d), _) => {
                out.insert(e.key.as_str().into(), d.clone());
            }
            (None, None, Some(what)) => {
                let field = f.name(&e.key);
                let message = if what.is_empty() {
                    format!("{recipe}: {field}: required")
                } else {
                    format!("{recipe}: {field}: required: {what}")
                };
                return Err(ScriptError::new(ErrorKind::Invalid, message)
                    .with("field", field)
                    .with("value", Dynamic::UNIT)
                    .with("recipe", recipe));
            }
            (None, None, None) => {}
        }
    }
    Ok(out)
}

#[export_module(manifest)]
pub mod recipe_api {
    use super::*;

    /// A recipe's options `opts` read by `schema`, for `recipe` (its name in
    /// errors, `"net::nat"`): returns the options as given plus the defaults
    /// of those left out; an option of the wrong type, a missing required
    /// one or an unknown key is refused with the recipe's error naming it
    /// (`kind: "invalid"`, `field`, `value` as given, `recipe`), at the line
    /// that called the recipe.
    ///
    /// `schema` maps each key to its type: `"string"`, `"bool"`, `"int"`,
    /// `"size"` (`"10G"` or bytes), `"size_mib"` (`"512M"` or MiB, as VM
    /// memory), `"seconds"`, `"array"`, `"array|false"`, `"map"`, `"fn"`,
    /// `"any"`, or an array of the allowed strings; or to a map
    /// `#{ type, required, otherwise, renamed }` (`required`: true, or what to
    /// give, for the message; `otherwise`: the value when not given;
    /// `renamed`: a key that is gone, and its new name).
    /// A `()` value counts as not given.
    ///
    /// ```rhai
    /// let schema = #{ name: #{ type: "string", required: "the lab's name" },
    ///                 memory: #{ type: "size_mib", otherwise: "512M" },
    ///                 mode: ["bridge", "vepa"], hosts: #{ renamed: "dhcp_hosts" } };
    /// let o = options(#{ name: "lab" }, schema, "my::recipe");
    /// assert_eq(o, #{ name: "lab", memory: "512M" });
    /// let e = #{};
    /// try { options(#{ name: "lab", memroy: "1G" }, schema, "my::recipe"); } catch (err) { e = err; }
    /// assert_eq(e.message, "my::recipe: memroy: unknown key; did you mean 'memory'? (got \"1G\")");
    /// try { options(#{ name: "lab", mode: "nat" }, schema, "my::recipe"); } catch (err) { e = err; }
    /// assert_eq([e.field, e.value, e.recipe], ["mode", "nat", "my::recipe"]);
    /// try { options(#{}, schema, "my::recipe"); } catch (err) { e = err; }
    /// assert_eq(e.message, "my::recipe: name: required: the lab's name");
    /// ```
    #[rhai_fn(name = "options", return_raw)]
    pub fn options(opts: Dynamic, schema: Map, recipe: &str) -> ScriptResult<Map> {
        read(recipe, "", &opts, &schema).map_err(ScriptError::into_eval)
    }

    /// `options` for a map inside a recipe's options: `field` names it in
    /// errors (`dhcp_hosts[0]`, so a bad key reads `dhcp_hosts[0].mac`).
    ///
    /// ```rhai
    /// let schema = #{ mac: #{ type: "string", required: true }, ip: "string" };
    /// let e = #{};
    /// try { options(#{ ip: 7 }, schema, "my::recipe", "hosts[0]"); } catch (err) { e = err; }
    /// assert_eq(e.message, "my::recipe: hosts[0].ip: must be a string, not i64 (got 7)");
    /// assert_eq(options(#{ mac: "52:54:00:00:00:01" }, schema, "my::recipe", "hosts[0]").mac, "52:54:00:00:00:01");
    /// ```
    #[rhai_fn(name = "options", return_raw)]
    pub fn options_of(opts: Dynamic, schema: Map, recipe: &str, field: &str) -> ScriptResult<Map> {
        read(recipe, field, &opts, &schema).map_err(ScriptError::into_eval)
    }

    /// Refuse `value` of the option `field` of `recipe`, saying `problem`:
    /// throws the recipe's error (`kind: "invalid"`, `field`, `value`,
    /// `recipe`; message `recipe: field: problem (got value)`), shown at the
    /// line that called the recipe.
    ///
    /// ```rhai
    /// let e = #{};
    /// try { refuse("my::recipe", "count", -1, "must be 0-100"); } catch (err) { e = err; }
    /// assert_eq(e.message, "my::recipe: count: must be 0-100 (got -1)");
    /// assert_eq([e.kind, e.field, e.value], ["invalid", "count", -1]);
    /// ```
    #[rhai_fn(name = "refuse", return_raw)]
    pub fn refuse(recipe: &str, field: &str, value: Dynamic, problem: &str) -> ScriptResult<()> {
        Err(refused(recipe, field, value, problem).into_eval())
    }

    /// Refuse `value` of the option `field` of `recipe` for the reason a
    /// function gave in `error` (an invalid error it threw about its own
    /// argument): the recipe's error names the recipe's option instead. Any
    /// other error is thrown again as it is.
    ///
    /// ```rhai
    /// let e = #{};
    /// try {
    ///     try { parse_subnet("10.0.0.0/33"); } catch (err) { refuse("my::recipe", "net", "10.0.0.0/33", err); }
    /// } catch (err) { e = err; }
    /// assert_eq(e.message, "my::recipe: net: prefix length must be 0-32 (got \"10.0.0.0/33\")");
    /// ```
    #[rhai_fn(name = "refuse", return_raw)]
    pub fn refuse_for(recipe: &str, field: &str, value: Dynamic, error: Map) -> ScriptResult<()> {
        match problem_of(&error) {
            Some(problem) => Err(refused(recipe, field, value, &problem).into_eval()),
            None => Err(Box::new(EvalAltResult::ErrorRuntime(
                error.into(),
                rhai::Position::NONE,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn opts(pairs: &[(&str, Dynamic)]) -> Dynamic {
        Dynamic::from_map(schema(pairs))
    }

    #[test]
    fn type_errors_are_the_cores_in_the_recipes_frame() {
        let s = schema(&[("active", "bool".into()), ("name", "string".into())]);
        let err = read("net::bridge", "", &opts(&[("active", 0_i64.into())]), &s)
            .unwrap_err()
            .message();
        assert_eq!(
            err,
            "net::bridge: active: must be true or false, not i64 (got 0)"
        );
    }

    #[test]
    fn unknown_keys_list_the_known_ones_or_suggest_the_closest() {
        let s = schema(&[("memory", "size_mib".into()), ("name", "string".into())]);
        let far = read("lab::up", "", &opts(&[("colour", "blue".into())]), &s)
            .unwrap_err()
            .message();
        assert_eq!(
            far,
            "lab::up: colour: unknown option; known: memory, name (got \"blue\")"
        );
        let near = read("lab::up", "", &opts(&[("memroy", "1G".into())]), &s)
            .unwrap_err()
            .message();
        assert_eq!(
            near,
            "lab::up: memroy: unknown key; did you mean 'memory'? (got \"1G\")"
        );
    }

    #[test]
    fn sizes_go_through_the_one_size_reader() {
        let s = schema(&[("memory", "size_mib".into())]);
        let err = read("lab::up", "", &opts(&[("memory", "8E".into())]), &s)
            .unwrap_err()
            .message();
        assert!(err.starts_with("lab::up: memory: too large"), "{err}");
        assert!(err.ends_with("(got \"8E\")"), "{err}");
    }

    #[test]
    fn defaults_fill_in_and_renamed_keys_say_their_new_name() {
        let mut with_default = Map::new();
        with_default.insert("type".into(), "bool".into());
        with_default.insert("otherwise".into(), true.into());
        let mut renamed = Map::new();
        renamed.insert("renamed".into(), "dhcp_hosts".into());
        let s = schema(&[
            ("autostart", with_default.into()),
            ("hosts", renamed.into()),
            ("dhcp_hosts", "array".into()),
        ]);
        let o = read("net::nat", "", &opts(&[]), &s).unwrap();
        assert_eq!(o.get("autostart").unwrap().as_bool(), Ok(true));
        let err = read("net::nat", "", &opts(&[("hosts", Array::new().into())]), &s)
            .unwrap_err()
            .message();
        assert_eq!(
            err,
            "net::nat: hosts: this option is now called dhcp_hosts (got [])"
        );
    }
}
