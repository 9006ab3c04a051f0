//! Script objects: one file per libvirt object, each an `#[export_module]`.
pub mod args;
pub mod control;
pub mod error;
pub mod globals;
pub mod host;
pub mod json;
pub mod network;
pub mod policy;
pub mod pool;
pub mod snapshot;
pub mod table;
pub mod vm;
pub mod volume;

use rhai::plugin::{ModuleManifest, RhaiFunc};
use rhai::{exported_manifest, Engine, FuncRegistration, Module};

pub use host::Host;
pub use network::Network;
pub use pool::Pool;
pub use snapshot::Snapshot;
pub use vm::Vm;
pub use volume::Volume;

/// Register every script object and global helper on `engine`. With `docs`,
/// each function also carries its doc comment and parameter names (for
/// `virtscript doc`); running scripts needs neither, and leaving them out
/// saves allocating every doc comment at start-up.
pub fn register(engine: &mut Engine, docs: bool) {
    engine.register_type_with_name::<Host>("Host");
    engine.register_type_with_name::<Pool>("Pool");
    engine.register_type_with_name::<Volume>("Volume");
    engine.register_type_with_name::<Vm>("Vm");
    engine.register_type_with_name::<Network>("Network");
    engine.register_type_with_name::<Snapshot>("Snapshot");
    let manifests: [&'static ModuleManifest; 21] = [
        exported_manifest!(globals::globals_api),
        exported_manifest!(control::control_api),
        exported_manifest!(host::host_api),
        exported_manifest!(host::numa::host_numa_api),
        exported_manifest!(pool::pool_api),
        exported_manifest!(volume::volume_api),
        exported_manifest!(volume::copy::volume_copy_api),
        exported_manifest!(vm::vm_api),
        exported_manifest!(vm::create::vm_create_api),
        exported_manifest!(vm::lifecycle::vm_lifecycle_api),
        exported_manifest!(vm::undefine::vm_undefine_api),
        exported_manifest!(vm::edit::vm_edit_api),
        exported_manifest!(vm::tuning::vm_tuning_api),
        exported_manifest!(vm::devices::vm_devices_api),
        exported_manifest!(vm::guest::vm_guest_api),
        exported_manifest!(vm::clone::vm_clone_api),
        exported_manifest!(vm::migrate::vm_migrate_api),
        exported_manifest!(network::network_api),
        exported_manifest!(vm::numa::numa_api),
        exported_manifest!(vm::numa::numa_tune_api),
        exported_manifest!(snapshot::snapshot_api),
    ];
    let mut module = Module::new();
    for manifest in manifests {
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
