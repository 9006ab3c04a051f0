//! Script values as JSON (`run --json`, the REPL's `:json`, run reports).
use rhai::Dynamic;
use serde_json::{json, Map as JsonMap, Value};

/// Convert any script value to JSON. Script objects become a small map
/// describing them (`{"type": "Host", "uri": ...}`, each object's
/// `ScriptObject::to_json`), never an error.
pub fn to_json(value: &Dynamic) -> Value {
    if value.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = value.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = value.as_int() {
        return json!(i);
    }
    if let Ok(f) = value.as_float() {
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null);
    }
    if value.is_string() {
        return Value::String(value.to_string());
    }
    if let Some(c) = value.read_lock::<char>() {
        return Value::String(c.to_string());
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return Value::Array(array.iter().map(to_json).collect());
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return Value::Array(blob.iter().map(|b| json!(b)).collect());
    }
    if let Some(map) = value.read_lock::<rhai::Map>() {
        let mut out = JsonMap::new();
        for (k, v) in map.iter() {
            out.insert(k.to_string(), to_json(v));
        }
        return Value::Object(out);
    }
    if let Some(object) = super::object::json_of(value) {
        return object;
    }
    if let Some(timestamp) = value.read_lock::<std::time::Instant>() {
        return json!(timestamp.elapsed().as_secs_f64());
    }
    Value::String(value.to_string())
}
