//! Script values as JSON (`run --json`, the REPL's `:json`, run reports).
use rhai::Dynamic;
use serde_json::{json, Map as JsonMap, Value};

use super::{Host, Network, Vm};

/// Convert any script value to JSON. Script objects become a small map
/// describing them (`{"type": "Host", "uri": ...}`), never an error.
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
    if let Some(host) = value.read_lock::<Host>() {
        return json!({"type": "Host", "uri": host.uri()});
    }
    if let Some(pool) = value.read_lock::<super::Pool>() {
        return json!({"type": "Pool", "name": pool.name(), "active": pool.is_active()});
    }
    if let Some(vol) = value.read_lock::<super::Volume>() {
        return json!({"type": "Volume", "name": vol.name(), "pool": vol.pool_name(), "path": vol.raw.path().unwrap_or_default()});
    }
    if let Some(vm) = value.read_lock::<Vm>() {
        return json!({"type": "Vm", "name": vm.name(), "state": vm.state_name()});
    }
    if let Some(net) = value.read_lock::<Network>() {
        return json!({
            "type": "Network",
            "name": net.raw.name().unwrap_or_default(),
            "active": net.raw.is_active().unwrap_or(false),
            "persistent": net.raw.is_persistent().unwrap_or(false),
        });
    }
    if let Some(snap) = value.read_lock::<super::Snapshot>() {
        return super::snapshot::json_of(&snap);
    }
    if let Some(timestamp) = value.read_lock::<std::time::Instant>() {
        return json!(timestamp.elapsed().as_secs_f64());
    }
    Value::String(value.to_string())
}
