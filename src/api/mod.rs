//! Script objects: one folder per libvirt object, each with its export
//! modules and an `object.rs` saying what the rest of the program needs to
//! know of it (object.rs). The list of them is [`OBJECTS`].
pub mod args;
pub mod control;
pub mod error;
pub mod globals;
pub mod json;
pub mod metadata;
pub mod object;
pub mod policy;
pub mod recipe;
pub mod subnet;
pub mod table;

use rhai::plugin::{ModuleManifest, RhaiFunc};
use rhai::{exported_manifest, Engine, FuncRegistration, Module};

/// Declares each object's module, re-exports its type, and lists it in
/// [`OBJECTS`]: adding an object is one line here.
macro_rules! script_objects {
    ($($module:ident: $type:ident),* $(,)?) => {
        $(
            pub mod $module;
            pub use $module::$type;
        )*
        /// Every script object, in registration order: the engine registers
        /// them, the REPL prints and completes them, JSON and `run --plan`
        /// read them through this list.
        pub static OBJECTS: &[&dyn object::ObjectKind] = &[$(&object::Kind::<$type>::new()),*];
    };
}

script_objects! {
    host: Host,
    pool: Pool,
    volume: Volume,
    vm: Vm,
    network: Network,
    snapshot: Snapshot,
    node_device: NodeDevice,
    secret: Secret,
}

/// The export modules that belong to no object (each object lists its own
/// in its `object.rs`).
static MODULES: &[&ModuleManifest] = &[
    exported_manifest!(globals::globals_api),
    exported_manifest!(control::control_api),
    exported_manifest!(recipe::recipe_api),
    exported_manifest!(subnet::subnet_api),
];

/// Register every script object and global helper on `engine`. With `docs`,
/// each function also carries its doc comment and parameter names (for
/// `virtscript doc`); running scripts needs neither, and leaving them out
/// saves allocating every doc comment at start-up.
pub fn register(engine: &mut Engine, docs: bool) {
    for kind in OBJECTS {
        kind.register_type(engine);
    }
    let objects = OBJECTS.iter().flat_map(|kind| kind.modules());
    let mut module = Module::new();
    for manifest in MODULES.iter().chain(objects) {
        manifest.init_eager(&mut module);
        if docs {
            manifest.for_each_fn(true, &mut |f| f.register_into(&mut module));
        } else {
            register_plain(&mut module, manifest);
        }
    }
    engine.register_global_module(module.into());
}

/// A plugin module's functions as callable entries only: name, namespace,
/// parameter types and the function (what the generated code registers,
/// minus the metadata).
fn register_plain(module: &mut Module, manifest: &'static ModuleManifest) {
    manifest.for_each_fn(true, &mut |f| {
        f.with_param_types(&mut |types| {
            FuncRegistration::new(f.name())
                .with_namespace(f.namespace())
                .set_into_module_raw(module, types, RhaiFunc::StaticPlugin { func: f.func() });
        });
    });
}
