//! `virtscript check`: compile scripts and the modules they import, without
//! running them.
use std::path::PathBuf;

use super::{script, Exit};
use crate::engine::{self, EngineOptions, Limits, SourceMap};
use crate::runtime::log;

/// Check every script; each one that does not compile is told on stderr.
pub fn check(scripts: &[String], lib_dirs: &[PathBuf], limits: &Limits) -> Exit {
    let sources = SourceMap::default();
    let options = match script::engine_options(limits, lib_dirs, None) {
        Ok(options) => options,
        Err(message) => {
            log::error(&message);
            return Exit::Usage;
        }
    };
    let engine = engine::build(&options, &sources);
    let scope = engine::compile_scope();
    let mut failed = 0;
    for path in scripts {
        let (name, text) = match script::read(path, options.limits.max_script_size) {
            Ok(s) => s,
            Err(message) => {
                log::error(&message);
                failed += 1;
                continue;
            }
        };
        let options = EngineOptions {
            script_dir: script::dir(path),
            ..options.clone()
        };
        let diagnostics =
            engine::check::check_source(&engine, &options, &sources, &scope, &name, &text);
        if diagnostics.is_empty() {
            outln!("ok: {name}");
        } else {
            failed += 1;
            for d in diagnostics {
                log::script_error(&d.render(&sources), &d.to_json());
            }
        }
    }
    if failed > 0 {
        log::error(&format!(
            "{failed} of {} scripts failed to compile",
            scripts.len()
        ));
        Exit::Usage
    } else {
        Exit::Success
    }
}
