//! `virtscript check`: compile scripts and every module they import, without
//! connecting to libvirt or running anything, and report every error found,
//! import cycles included.
use std::collections::HashSet;

use rhai::{ASTNode, Engine, EvalAltResult, Expr, Position, Scope, Stmt, AST};

use super::diagnostics::Diagnostic;
use super::resolver::{self, ModuleLoader};
use super::sources::SourceMap;
use super::EngineOptions;

/// String-literal import paths in an AST, with their positions.
pub fn imports(ast: &AST) -> Vec<(String, Position)> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(x, pos))) = path.last() {
            if let Expr::StringConstant(s, _) = &x.0 {
                found.push((s.to_string(), *pos));
            }
        }
        true
    });
    found
}

/// Compile `text` (named `name`, from the file whose identity is `identity`,
/// see [`resolver::file_identity`]) and everything it imports. Returns every
/// diagnostic; an empty list means the script is fine.
pub fn check_source(
    engine: &Engine,
    options: &EngineOptions,
    sources: &SourceMap,
    scope: &Scope,
    name: &str,
    text: &str,
) -> Vec<Diagnostic> {
    sources.insert(name, text);
    let mut diagnostics = Vec::new();
    let ast = match engine.compile_with_scope(scope, text) {
        Ok(ast) => ast,
        Err(err) => {
            diagnostics.push(Diagnostic::from_parse(&err, name));
            return diagnostics;
        }
    };
    let mut walk = Walk {
        engine,
        loader: ModuleLoader::new(options, sources.clone()),
        stack: Vec::new(),
        done: HashSet::new(),
        diagnostics,
    };
    let identity = match &options.script_dir {
        Some(_) => resolver::file_identity(std::path::Path::new(name)),
        None => name.to_owned(),
    };
    walk.visit(&ast, identity, name.to_owned());
    walk.diagnostics
}

/// A depth-first walk over the import graph.
struct Walk<'a> {
    engine: &'a Engine,
    loader: ModuleLoader,
    /// The modules on the path from the script to the one visited: (identity, name).
    stack: Vec<(String, String)>,
    done: HashSet<String>,
    diagnostics: Vec<Diagnostic>,
}

impl Walk<'_> {
    fn visit(&mut self, ast: &AST, identity: String, name: String) {
        self.stack.push((identity.clone(), name.clone()));
        for (path, pos) in imports(ast) {
            let fail = |message: String| EvalAltResult::ErrorRuntime(message.into(), pos);
            let module = match self.loader.locate(&path, pos) {
                Ok(m) => m,
                Err(err) => {
                    self.diagnostics.push(Diagnostic::from_eval(&err, &name));
                    continue;
                }
            };
            if let Some(i) = self.stack.iter().position(|(id, _)| *id == module.identity) {
                let mut chain: Vec<String> =
                    self.stack[i..].iter().map(|(_, n)| n.clone()).collect();
                chain.push(module.name.clone());
                let err = fail(resolver::cycle_message(&chain));
                self.diagnostics.push(Diagnostic::from_eval(&err, &name));
                continue;
            }
            if self.done.contains(&module.identity) {
                continue;
            }
            if self.stack.len() > resolver::MAX_IMPORT_DEPTH {
                let err = fail(resolver::depth_message());
                self.diagnostics.push(Diagnostic::from_eval(&err, &name));
                continue;
            }
            match self.loader.compile(self.engine, &module, pos) {
                Ok(module_ast) => self.visit(&module_ast, module.identity, module.name),
                Err(err) => self.diagnostics.push(Diagnostic::from_eval(&err, &name)),
            }
        }
        self.stack.pop();
        self.done.insert(identity);
    }
}
