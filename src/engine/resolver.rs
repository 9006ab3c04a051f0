//! Serves `import "net"` from the bundled `stdlib/` (compiled into the binary),
//! then from the script's own directory, then from `--lib DIR` directories.
//! No other path reaches the file system: a script cannot read files by
//! importing them. Modules that import each other are an error, not a stack
//! overflow.
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared, AST};

use super::script_file;
use super::sources::SourceMap;
use super::EngineOptions;

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

/// Modules importing modules deeper than this are refused: each level is a
/// nested evaluation on the native stack.
pub const MAX_IMPORT_DEPTH: usize = 32;

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

/// A module found for an import path.
#[derive(Debug, Clone)]
pub struct Located {
    /// The name positions and diagnostics use (`stdlib/net.rhai`, `./mine.rhai`).
    pub name: String,
    /// One identity per module whatever path imported it (the canonical
    /// file path), to tell cycles and cache entries apart.
    pub identity: String,
    pub text: String,
}

/// The error for an import chain that comes back to a module being loaded.
pub fn cycle_message(chain: &[String]) -> String {
    format!(
        "import cycle: {} (modules must not import each other)",
        chain.join(" imports ")
    )
}

pub fn depth_message() -> String {
    format!("modules import modules more than {MAX_IMPORT_DEPTH} levels deep")
}

/// The identity of a script file, as [`Located::identity`] would give it.
pub fn file_identity(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

thread_local! {
    /// Modules being evaluated on this thread, outermost first: (identity, name).
    static LOADING: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Pops the module from [`LOADING`] however its evaluation ends.
struct Loading;

impl Drop for Loading {
    fn drop(&mut self) {
        LOADING.with(|l| l.borrow_mut().pop());
    }
}

pub struct ModuleLoader {
    script_dir: Option<PathBuf>,
    lib_dirs: Vec<PathBuf>,
    max_size: u64,
    sources: SourceMap,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl ModuleLoader {
    pub fn new(options: &EngineOptions, sources: SourceMap) -> Self {
        ModuleLoader {
            script_dir: options.script_dir.clone(),
            lib_dirs: options.lib_dirs.clone(),
            max_size: options.limits.max_script_size,
            sources,
            cache: Mutex::default(),
        }
    }

    /// The directories searched, in order: the script's own, then `--lib`.
    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.script_dir.iter().chain(&self.lib_dirs)
    }

    /// Find a module's text.
    pub fn locate(&self, path: &str, pos: Position) -> Result<Located, Box<EvalAltResult>> {
        let fail = |message: String| Box::new(EvalAltResult::ErrorRuntime(message.into(), pos));
        if let Some((file, text)) = stdlib_source(path.trim_end_matches(".rhai")) {
            return Ok(Located {
                name: file.to_owned(),
                identity: format!("bundled:{file}"),
                text: text.to_owned(),
            });
        }
        let relative = Path::new(path);
        let confined = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if confined {
            for dir in self.dirs() {
                let mut candidate = dir.join(relative);
                if candidate.extension().is_none() {
                    candidate.set_extension("rhai");
                }
                if !candidate.exists() {
                    continue;
                }
                // A symbolic link out of the directory is outside the sandbox.
                let identity = file_identity(&candidate);
                let inside =
                    std::fs::canonicalize(dir).is_ok_and(|d| Path::new(&identity).starts_with(d));
                if !inside {
                    return Err(fail(format!(
                        "module '{path}': {} leads outside {}",
                        candidate.display(),
                        dir.display()
                    )));
                }
                let text = script_file::read(&candidate, self.max_size)
                    .map_err(|e| fail(format!("module '{path}': {e}")))?;
                return Ok(Located {
                    name: candidate.display().to_string(),
                    identity,
                    text,
                });
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
        } else {
            let dirs: Vec<_> = self.dirs().map(|d| d.display().to_string()).collect();
            if dirs.is_empty() {
                message.push_str("; pass --lib DIR to import your own modules");
            } else {
                message.push_str(&format!(
                    "; searched {} (pass --lib DIR to search more)",
                    dirs.join(", ")
                ));
            }
        }
        Err(fail(message))
    }

    /// Compile a located module, recording its text for diagnostics.
    pub fn compile(
        &self,
        engine: &Engine,
        module: &Located,
        pos: Position,
    ) -> Result<AST, Box<EvalAltResult>> {
        self.sources
            .insert(module.name.clone(), module.text.as_str());
        let mut ast = engine.compile(&module.text).map_err(|err| {
            Box::new(EvalAltResult::ErrorInModule(
                module.name.clone(),
                Box::new(err.into()),
                pos,
            ))
        })?;
        ast.set_source(module.name.clone());
        Ok(ast)
    }

    /// Find and compile a module.
    pub fn load_ast(
        &self,
        engine: &Engine,
        path: &str,
        pos: Position,
    ) -> Result<AST, Box<EvalAltResult>> {
        let module = self.locate(path, pos)?;
        self.compile(engine, &module, pos)
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
        let located = self.locate(path, pos)?;
        if let Some(module) = self.cache.lock().unwrap().get(&located.identity) {
            return Ok(module.clone());
        }
        let fail = |message: String| Box::new(EvalAltResult::ErrorRuntime(message.into(), pos));
        let refusal = LOADING.with(|l| {
            let loading = l.borrow();
            if let Some(i) = loading.iter().position(|(id, _)| *id == located.identity) {
                let mut chain: Vec<String> = loading[i..].iter().map(|(_, n)| n.clone()).collect();
                chain.push(located.name.clone());
                Some(cycle_message(&chain))
            } else if loading.len() >= MAX_IMPORT_DEPTH {
                Some(depth_message())
            } else {
                None
            }
        });
        if let Some(message) = refusal {
            return Err(fail(message));
        }
        let ast = self.compile(engine, &located, pos)?;
        LOADING.with(|l| {
            l.borrow_mut()
                .push((located.identity.clone(), located.name.clone()))
        });
        let loading = Loading;
        let name = located.name.clone();
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|err| Box::new(EvalAltResult::ErrorInModule(name, err, pos)));
        drop(loading);
        let mut module = module?;
        module.build_index();
        let module: Shared<Module> = module.into();
        self.cache
            .lock()
            .unwrap()
            .insert(located.identity, module.clone());
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
