//! A job's script: reading it (a file or standard input), where its modules
//! are imported from, and the engine's options for it.
use std::path::{Path, PathBuf};

use crate::engine::{script_file, EngineOptions, Limits};

/// A script's name and text; `-` is standard input.
pub fn read(path: &str, limit: u64) -> Result<(String, String), String> {
    if path == "-" {
        return script_file::read_limited(std::io::stdin().lock(), "standard input", limit)
            .map(|text| ("<stdin>".to_owned(), text))
            .map_err(|e| e.to_string());
    }
    script_file::read(Path::new(path), limit)
        .map(|text| (path.to_owned(), text))
        .map_err(|e| e.to_string())
}

/// The directory modules beside a script are imported from (none for stdin).
pub fn dir(path: &str) -> Option<PathBuf> {
    if path == "-" {
        return None;
    }
    match Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => Some(dir.to_owned()),
        _ => Some(PathBuf::from(".")),
    }
}

/// The engine's options for a script in `script_dir` that may also import
/// from `lib_dirs` (`--lib`); one that is not a directory is an error.
pub fn engine_options(
    limits: &Limits,
    lib_dirs: &[PathBuf],
    script_dir: Option<PathBuf>,
) -> Result<EngineOptions, String> {
    if let Some(dir) = lib_dirs.iter().find(|d| !d.is_dir()) {
        return Err(format!("--lib {}: no such directory", dir.display()));
    }
    Ok(EngineOptions {
        limits: limits.clone(),
        lib_dirs: lib_dirs.to_vec(),
        script_dir,
        ..EngineOptions::default()
    })
}
