//! Script objects: one file per libvirt object, each an `#[export_module]`.
pub mod error;
pub mod globals;
pub mod host;
pub mod journal;
pub mod json;
pub mod network;
pub mod pool;
pub mod spec;
pub mod vm;
pub mod volume;

use rhai::{exported_module, Engine};

pub use host::Host;
pub use network::Network;
pub use pool::Pool;
pub use vm::Vm;
pub use volume::Volume;

/// Register every script object and global helper on `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Host>("Host");
    engine.register_global_module(exported_module!(globals::globals_api).into());
    engine.register_global_module(exported_module!(host::host_api).into());
    engine.register_type_with_name::<Network>("Network");
    engine.register_global_module(exported_module!(network::network_api).into());
}
