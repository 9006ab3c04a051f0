//! The device keys `create_vm`'s spec and `edit`'s `cfg` share: `graphics`,
//! `video`, `sound`, `console`, `controllers`, `filesystems`, `tpm`, `rng`,
//! `watchdog`, `memballoon`, `features`. Each has a reader (short form or
//! map, validated: an unknown name gets "did you mean" and the known list)
//! and a `*_shown` function: how `vm.config` and `edit`'s `cfg` show it, in
//! the shape the reader takes back. This file holds what the keys share
//! (the two forms, the name check, how values are shown); the keys are a
//! file per family: [`display`] (graphics, video, sound, console),
//! [`buses`] (controllers, filesystems), [`peripherals`] (tpm, rng,
//! watchdog, memballoon) and [`features`].
mod buses;
mod display;
mod features;
mod peripherals;

pub use buses::*;
pub use display::*;
pub use features::*;
pub use peripherals::*;
use rhai::{Array, Dynamic, Map};

use crate::api::args::{show, Fields};
use crate::api::error::ScriptError;
use crate::xml::domain::{
    CharDev, Controller, Domain, Features, Filesystem, Graphics, Hyperv, HypervFlag, Memballoon,
    MemoryBacking, Rng, Sound, Tpm, Video, Watchdog,
};

use super::super::spec::check_identifier;

/// `value` must be one of `known` (libvirt's names for a `what`).
pub fn known_name(field: &str, value: &str, what: &str, known: &[&str]) -> Result<(), ScriptError> {
    if known.contains(&value) {
        return Ok(());
    }
    let hint = crate::runtime::suggest::closest(value, known.iter().copied())
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default();
    Err(ScriptError::invalid(
        field,
        value,
        format!(
            "not a {what} libvirt knows{hint} (known: {})",
            known.join(", ")
        ),
    ))
}

/// A key given as a short string or as a map.
enum Form {
    Short(String),
    Full(Map),
}

fn form(f: &Fields, key: &str) -> Result<Option<Form>, ScriptError> {
    let Some(v) = f.raw(key) else {
        return Ok(None);
    };
    if v.is_string() {
        return Ok(f.string(key)?.map(Form::Short));
    }
    match v.read_lock::<Map>() {
        Some(m) => Ok(Some(Form::Full(m.clone()))),
        None => Err(f.wrong(key, v, "a string or a map")),
    }
}

/// A required name in a map, checked against `known`.
fn named(g: &Fields, key: &str, what: &str, known: &[&str]) -> Result<Option<String>, ScriptError> {
    let Some(v) = g.string(key)? else {
        return Ok(None);
    };
    known_name(&g.name(key), &v, what, known)?;
    Ok(Some(v))
}

fn need<T>(g: &Fields, key: &str, value: Option<T>, what: &str) -> Result<T, ScriptError> {
    value.ok_or_else(|| ScriptError::invalid(&g.name(key), "()", format!("{what} is required")))
}

fn opt_str(v: &Option<String>) -> Dynamic {
    v.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

fn opt_num<T: Into<i64> + Copy>(v: Option<T>) -> Dynamic {
    v.map(|n| Dynamic::from(n.into())).unwrap_or(Dynamic::UNIT)
}

fn opt_bool(v: Option<bool>) -> Dynamic {
    v.map(Dynamic::from).unwrap_or(Dynamic::UNIT)
}

fn map_of(pairs: Vec<(&str, Dynamic)>) -> Dynamic {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect::<Map>()
        .into()
}

/// The maps of a list key (`controllers`, `filesystems`), with their field names.
fn items(f: &Fields, key: &str) -> Result<Vec<(String, Map)>, ScriptError> {
    let list = f.array(key)?.unwrap_or_default();
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("{}[{i}]", f.name(key));
            item.read_lock::<Map>()
                .map(|m| (field.clone(), m.clone()))
                .ok_or_else(|| ScriptError::invalid(&field, show(item), "must be a map"))
        })
        .collect()
}
