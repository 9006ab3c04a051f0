//! `virtscript check`: compile scripts and every module they import, without
//! connecting to libvirt or running anything, and report every error found.
use std::collections::HashSet;

use rhai::{ASTNode, Engine, Expr, Position, Scope, Stmt, AST};

use super::diagnostics::Diagnostic;
use super::resolver::ModuleLoader;
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

/// Compile `text` (named `name`) and everything it imports. Returns every
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
    let loader = ModuleLoader::new(options.lib_dirs.clone(), sources.clone());
    let mut seen = HashSet::new();
    let mut pending: Vec<(String, String, Position)> = imports(&ast)
        .into_iter()
        .map(|(path, pos)| (name.to_owned(), path, pos))
        .collect();
    while let Some((importer, path, pos)) = pending.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        match loader.load_ast(engine, &path, pos) {
            Ok(module) => {
                let module_name = module.source().unwrap_or(&path).to_owned();
                pending.extend(
                    imports(&module)
                        .into_iter()
                        .map(|(p, pos)| (module_name.clone(), p, pos)),
                );
            }
            Err(err) => diagnostics.push(Diagnostic::from_eval(&err, &importer)),
        }
    }
    diagnostics
}
