//! Serves `import "net"` from the bundled `stdlib/` (compiled into the binary)
//! and, only when `--lib DIR` is given, from user directories. No other path
//! reaches the file system: a script cannot read files by importing them.
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared, AST};

use super::sources::SourceMap;

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

/// The bundled modules' import paths, in order.
pub fn stdlib_names() -> impl Iterator<Item = &'static str> {
    STDLIB.iter().map(|(name, _, _)| *name)
}

/// A bundled module's file name and source.
pub fn stdlib_source(name: &str) -> Option<(&'static str, &'static str)> {
    STDLIB
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, file, text)| (*file, *text))
}

pub struct ModuleLoader {
    lib_dirs: Vec<PathBuf>,
    sources: SourceMap,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl ModuleLoader {
    pub fn new(lib_dirs: Vec<PathBuf>, sources: SourceMap) -> Self {
        ModuleLoader {
            lib_dirs,
            sources,
            cache: Mutex::default(),
        }
    }

    /// Find a module's text: (display name, source).
    fn locate(&self, path: &str, pos: Position) -> Result<(String, String), Box<EvalAltResult>> {
        if let Some((file, text)) = stdlib_source(path.trim_end_matches(".rhai")) {
            return Ok((file.to_owned(), text.to_owned()));
        }
        let relative = Path::new(path);
        let confined = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if confined {
            for dir in &self.lib_dirs {
                let mut candidate = dir.join(relative);
                if candidate.extension().is_none() {
                    candidate.set_extension("rhai");
                }
                if let Ok(text) = std::fs::read_to_string(&candidate) {
                    return Ok((candidate.display().to_string(), text));
                }
            }
        }
        let bundled: Vec<_> = stdlib_names().collect();
        let mut message = format!(
            "module '{path}' not found; bundled modules: {}",
            if bundled.is_empty() {
                "none".to_owned()
            } else {
                bundled.join(", ")
            }
        );
        if !confined {
            message.push_str("; import paths are relative names without '..' or a leading '/'");
        } else if self.lib_dirs.is_empty() {
            message.push_str("; pass --lib DIR to import your own modules");
        } else {
            let dirs: Vec<_> = self
                .lib_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            message.push_str(&format!("; searched --lib {}", dirs.join(", ")));
        }
        Err(Box::new(EvalAltResult::ErrorRuntime(message.into(), pos)))
    }

    /// Compile a module, recording its text for diagnostics.
    pub fn load_ast(
        &self,
        engine: &Engine,
        path: &str,
        pos: Position,
    ) -> Result<AST, Box<EvalAltResult>> {
        let (name, text) = self.locate(path, pos)?;
        self.sources.insert(name.clone(), text.as_str());
        let mut ast = engine.compile(&text).map_err(|err| {
            Box::new(EvalAltResult::ErrorInModule(
                name.clone(),
                Box::new(err.into()),
                pos,
            ))
        })?;
        ast.set_source(name);
        Ok(ast)
    }
}

impl ModuleResolver for ModuleLoader {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if let Some(module) = self.cache.lock().unwrap().get(path) {
            return Ok(module.clone());
        }
        let ast = self.load_ast(engine, path, pos)?;
        let name = ast.source().unwrap_or(path).to_owned();
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|err| Box::new(EvalAltResult::ErrorInModule(name, err, pos)))?;
        module.build_index();
        let module: Shared<Module> = module.into();
        self.cache
            .lock()
            .unwrap()
            .insert(path.to_owned(), module.clone());
        Ok(module)
    }

    fn resolve_ast(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Option<Result<AST, Box<EvalAltResult>>> {
        Some(self.load_ast(engine, path, pos))
    }
}
