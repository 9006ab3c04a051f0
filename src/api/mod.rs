//! Script objects: one file per libvirt object, each an `#[export_module]`.
pub mod control;
pub mod error;
pub mod globals;
pub mod host;
pub mod journal;
pub mod json;
pub mod network;
pub mod pool;
pub mod snapshot;
pub mod spec;
pub mod table;
pub mod vm;
pub mod vm_clone;
pub mod vm_spec;
pub mod volume;

use rhai::{exported_manifest, Engine, Module};

pub use host::Host;
pub use network::Network;
pub use pool::Pool;
pub use snapshot::Snapshot;
pub use vm::Vm;
pub use volume::Volume;

/// Register every script object and global helper on `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Host>("Host");
    engine.register_type_with_name::<Pool>("Pool");
    engine.register_type_with_name::<Volume>("Volume");
    engine.register_global_module(
        Module::from_manifest(exported_manifest!(globals::globals_api)).into(),
    );
    engine.register_global_module(
        Module::from_manifest(exported_manifest!(control::control_api)).into(),
    );
    engine.register_global_module(Module::from_manifest(exported_manifest!(host::host_api)).into());
    engine.register_global_module(Module::from_manifest(exported_manifest!(pool::pool_api)).into());
    engine.register_global_module(
        Module::from_manifest(exported_manifest!(volume::volume_api)).into(),
    );
    engine.register_type_with_name::<Vm>("Vm");
    engine.register_global_module(Module::from_manifest(exported_manifest!(vm::vm_api)).into());
    engine.register_type_with_name::<Network>("Network");
    engine.register_global_module(
        Module::from_manifest(exported_manifest!(network::network_api)).into(),
    );
    engine.register_type_with_name::<Snapshot>("Snapshot");
    engine.register_global_module(
        Module::from_manifest(exported_manifest!(snapshot::snapshot_api)).into(),
    );
}
