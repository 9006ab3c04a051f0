//! What every script object tells the rest of the program about itself, in
//! one place: [`ScriptObject`], implemented in each object's folder
//! (`api/vm/object.rs`, ...), and the one list of them, [`super::OBJECTS`],
//! that the engine (registration), the REPL (tables, completion of live
//! names), JSON and `run --plan` iterate.
//!
//! Adding a libvirt object: a folder `api/<object>/` with its export modules
//! and an `object.rs` implementing [`ScriptObject`], and one line in the
//! `script_objects!` list in `api/mod.rs`.
use std::marker::PhantomData;

use rhai::plugin::ModuleManifest;
use rhai::{Dynamic, Engine};
use serde_json::Value;
use virt::connect::Connect;
use virt::error::{Error, ErrorNumber};

use super::table::Table;
use crate::xml::tree::Element;

/// A libvirt object as scripts see it.
pub trait ScriptObject: Clone + Send + Sync + 'static {
    /// Its type name in scripts, `type_of` and the reference (`Vm`).
    const NAME: &'static str;
    /// The export modules holding its functions, including the methods of
    /// its parent that find it (`HOST.vm(name)` is in the Vm's module).
    const MODULES: &'static [&'static ModuleManifest];
    /// Table headings, identifying first (`Name, State, ...`), as virsh's lists.
    const COLUMNS: &'static [&'static str];
    /// The object under which scripts find it by name (`Host` for a VM),
    /// `()` for one found by no name.
    type Parent: Clone + Send + Sync + 'static;
    /// How its parent finds it by name, so the REPL can offer the names that
    /// exist: `HOST.vm("<Tab>`.
    const LOOKUP: Option<Lookup<Self>> = None;
    /// How `run --plan` copies it to the rehearsal and compares it; `None`
    /// leaves it out of the plan.
    const PLAN: Option<Plan> = None;

    /// Its cells, one per column. Must not fail: `-` for what cannot be read
    /// (an object deleted meanwhile).
    fn row(&self) -> Vec<String>;
    /// A small map describing it (`{"type": "Vm", "name": ...}`), never an error.
    fn to_json(&self) -> Value;
}

/// The parent's methods that take the name of an existing `T`, and how to
/// list and look up those names.
pub struct Lookup<T: ScriptObject> {
    /// `["vm", "find_vm"]`.
    pub methods: &'static [&'static str],
    /// The names under `parent`, `None` when they cannot be listed.
    pub names: fn(&T::Parent) -> Option<Vec<String>>,
    /// The object named so, if it exists.
    pub find: fn(&T::Parent, &str) -> Option<T>,
}

/// One libvirt object as the plan compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub xml: String,
    pub active: bool,
    pub autostart: bool,
}

/// An object's state under its plan key.
pub type Keyed = (String, ObjectState);

/// An object's part in `run --plan` (src/jobs/plan.rs).
#[derive(Clone, Copy)]
pub struct Plan {
    /// Its keys' first part: `network` (keys `network/NAME`).
    pub key: &'static str,
    /// libvirt's error for an object that is not there: listing skips
    /// objects removed by someone else meanwhile.
    pub gone: ErrorNumber,
    /// Every such object on the host, keyed `KIND/NAME` (`network/default`,
    /// `volume/POOL/NAME`).
    pub states: fn(&Connect) -> Result<Vec<Keyed>, Error>,
    /// Where its copy goes in the test driver's node document: `None` at the
    /// top, else the key of the object it goes in (a volume in its pool).
    pub parent: fn(key: &str) -> Option<String>,
    /// Its element in that document, from its XML as read.
    pub rehearsal: fn(Element, &ObjectState) -> Element,
    /// Once the test driver has loaded it, make its state the host's; `name`
    /// is its key after `KIND/` (`POOL/NAME` for a volume).
    pub restore: fn(&Connect, name: &str, &ObjectState) -> Result<(), Error>,
}

/// A [`ScriptObject`] type, as an entry of the object list.
pub trait ObjectKind: Sync {
    fn name(&self) -> &'static str;
    fn modules(&self) -> &'static [&'static ModuleManifest];
    fn register_type(&self, engine: &mut Engine);
    /// The table of `items` if every one of them is of this type.
    fn table(&self, items: &[Dynamic]) -> Option<Table>;
    fn json(&self, value: &Dynamic) -> Option<Value>;
    /// Names of existing objects of this type that `parent.method("` takes.
    fn names(&self, parent: &Dynamic, method: &str) -> Option<Vec<String>>;
    /// `parent.method(name)`, when it finds an object of this type.
    fn find(&self, parent: &Dynamic, method: &str, name: &str) -> Option<Dynamic>;
    /// Its part in `run --plan`.
    fn plan(&self) -> Option<Plan>;
}

/// The list entry for `T`.
pub struct Kind<T>(PhantomData<fn() -> T>);

impl<T> Kind<T> {
    pub const fn new() -> Kind<T> {
        Kind(PhantomData)
    }
}

impl<T> Default for Kind<T> {
    fn default() -> Self {
        Kind::new()
    }
}

impl<T: ScriptObject> ObjectKind for Kind<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn modules(&self) -> &'static [&'static ModuleManifest] {
        T::MODULES
    }

    fn register_type(&self, engine: &mut Engine) {
        engine.register_type_with_name::<T>(T::NAME);
    }

    fn table(&self, items: &[Dynamic]) -> Option<Table> {
        if items.is_empty() || !items.iter().all(|item| item.is::<T>()) {
            return None;
        }
        let rows = items
            .iter()
            .filter_map(|item| item.read_lock::<T>().map(|value| value.row()))
            .collect();
        Some(Table {
            columns: T::COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            rows,
        })
    }

    fn json(&self, value: &Dynamic) -> Option<Value> {
        value.read_lock::<T>().map(|v| v.to_json())
    }

    fn names(&self, parent: &Dynamic, method: &str) -> Option<Vec<String>> {
        let lookup = T::LOOKUP.filter(|l| l.methods.contains(&method))?;
        (lookup.names)(&*parent.read_lock::<T::Parent>()?)
    }

    fn find(&self, parent: &Dynamic, method: &str, name: &str) -> Option<Dynamic> {
        let lookup = T::LOOKUP.filter(|l| l.methods.contains(&method))?;
        (lookup.find)(&*parent.read_lock::<T::Parent>()?, name).map(Dynamic::from)
    }

    fn plan(&self) -> Option<Plan> {
        T::PLAN
    }
}

// `Option::filter` needs the lookup by value; it is three pointers.
impl<T: ScriptObject> Clone for Lookup<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ScriptObject> Copy for Lookup<T> {}

/// A script object as JSON, or `None` when `value` is none.
pub fn json_of(value: &Dynamic) -> Option<Value> {
    super::OBJECTS.iter().find_map(|kind| kind.json(value))
}

/// `parent.method(name)` when that finds an existing object: the REPL walks
/// `HOST.pool("default").volume("` this way.
pub fn find(parent: &Dynamic, method: &str, name: &str) -> Option<Dynamic> {
    super::OBJECTS
        .iter()
        .find_map(|kind| kind.find(parent, method, name))
}

/// The names `parent.method("` takes, sorted; `None` when the method takes
/// no object's name.
pub fn live_names(parent: &Dynamic, method: &str) -> Option<Vec<String>> {
    let mut names = super::OBJECTS
        .iter()
        .find_map(|kind| kind.names(parent, method))?;
    names.sort();
    Some(names)
}

/// Keep `Ok`, drop an object that someone else removed while we list it,
/// pass on other errors.
pub fn present<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if vanished(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The plan states of `objects`, leaving out those removed meanwhile.
pub fn states_of<T>(
    objects: Vec<T>,
    state: fn(&T) -> Result<Keyed, Error>,
) -> Result<Vec<Keyed>, Error> {
    let mut out = Vec::new();
    for object in &objects {
        out.extend(present(state(object))?);
    }
    Ok(out)
}

/// Any planned object's "not there" error: listing volumes may meet a pool
/// that went away.
fn vanished(err: &Error) -> bool {
    super::OBJECTS
        .iter()
        .filter_map(|kind| kind.plan())
        .any(|plan| err.code() == plan.gone.into())
}

#[cfg(test)]
mod tests {
    use super::super::OBJECTS;

    #[test]
    fn every_object_is_listed_once_with_its_own_plan_key() {
        let mut names: Vec<&str> = OBJECTS.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OBJECTS.len(), "{names:?}");
        let mut keys: Vec<&str> = OBJECTS
            .iter()
            .filter_map(|k| k.plan())
            .map(|p| p.key)
            .collect();
        assert_eq!(keys, ["pool", "volume", "domain", "network", "nodedev"]);
        keys.dedup();
        assert!(OBJECTS.iter().all(|k| !k.modules().is_empty()));
    }
}
