//! The sandboxed Rhai engine: raw engine plus the standard packages, no `eval`,
//! strict variables, limits, the stop signal, and the module resolver.
pub mod check;
pub mod diagnostics;
pub mod limits;
pub mod resolver;
pub mod script_file;
pub mod sources;
pub mod stack;
pub mod suggest;

use std::path::PathBuf;

use rhai::packages::{Package, StandardPackage};
use rhai::{Array, Dynamic, Engine, Map, Scope};

pub use diagnostics::Diagnostic;
pub use limits::Limits;
pub use sources::SourceMap;

use crate::api::Host;

/// Everything that shapes an engine, taken from the command line.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub limits: Limits,
    pub lib_dirs: Vec<PathBuf>,
    /// The running script's directory: `import "helpers"` finds `helpers.rhai`
    /// beside it. `None` for a script read from standard input.
    pub script_dir: Option<PathBuf>,
    /// `print` writes to stderr (`run --json` keeps stdout for the JSON result).
    pub print_to_stderr: bool,
    /// Keep each API function's doc comment and parameter names (`virtscript doc`).
    pub docs: bool,
}

/// Build the script engine. `sources` collects module texts for diagnostics.
pub fn build(options: &EngineOptions, sources: &SourceMap) -> Engine {
    let mut engine = Engine::new_raw();
    // Registered up front, not lazily: a lazy package scans all its ~1,000
    // functions on every first look-up, operators that end in a built-in
    // included, and any real script makes a few dozen of those (3.6 M
    // instructions in the networks benchmark against 1.9 M to register).
    engine.register_global_module(StandardPackage::new().as_shared_module());
    // Scripts run only what they say: no code from strings.
    engine.disable_symbol("eval");
    engine.set_strict_variables(true);
    options.limits.apply(&mut engine);
    engine.on_progress(|_| match crate::runtime::stop::requested() {
        Some(reason) => Some(Dynamic::from(reason.token())),
        // Deep recursion stops with an error before the native stack overflows.
        None => stack::exhausted().then(|| Dynamic::from(stack::TOKEN)),
    });
    allow_keyword_keys(&mut engine);
    if options.print_to_stderr {
        engine.on_print(|text| crate::runtime::log::script_output("print", text));
    } else {
        // A closed stdout (`virtscript run x | head`) must not abort the script.
        engine.on_print(|text| {
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "{text}");
        });
    }
    engine.on_debug(|text, source, pos| {
        let text = match (source, pos.line()) {
            (Some(src), Some(line)) => format!("[{src}:{line}] {text}"),
            (None, Some(line)) => format!("[line {line}] {text}"),
            _ => text.to_owned(),
        };
        crate::runtime::log::script_output("debug", &text);
    });
    engine.set_module_resolver(resolver::ModuleLoader::new(options, sources.clone()));
    // `HOST` and `ARGS` live in the engine's tag so that functions see them too
    // (Rhai functions do not see the caller's scope).
    #[allow(deprecated)] // "volatile", not deprecated: the documented way to resolve globals
    engine.on_var(|name, _, ctx| match name {
        GLOBAL_HOST | GLOBAL_ARGS => Ok(ctx
            .tag()
            .read_lock::<Map>()
            .and_then(|m| m.get(name).cloned())),
        _ => Ok(None),
    });
    crate::api::register(&mut engine, options.docs);
    // `parallel` (in the API, below the engine) lists failed calls as the diagnostics do.
    crate::api::error::set_describe(Diagnostic::describe);
    engine
}

/// `import` is a Rhai keyword, yet `HOST.create_vm(#{ import: true })` is
/// virt-install's `--import`. Right after `#{`, `,` or `.` an `import` token can
/// only be a map key or a property, so it is handed to the parser as a name there.
fn allow_keyword_keys(engine: &mut Engine) {
    use rhai::Token;
    thread_local! {
        static KEY_POSITION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    #[allow(deprecated)] // "volatile", not deprecated
    engine.on_parse_token(|token, _, _| {
        let key_position = KEY_POSITION.with(|k| k.get());
        let token = match token {
            Token::Import if key_position => Token::Identifier(Box::new("import".into())),
            other => other,
        };
        let next = matches!(token, Token::MapStart | Token::Comma | Token::Period);
        KEY_POSITION.with(|k| k.set(next));
        token
    });
}

const GLOBAL_HOST: &str = "HOST";
const GLOBAL_ARGS: &str = "ARGS";

/// Bind the constants every script sees: `HOST` (the host chosen on the command
/// line) and `ARGS` (the arguments after `--`).
pub fn bind_globals(engine: &mut Engine, host: Option<Host>, args: &[String]) {
    let mut globals = Map::new();
    if let Some(host) = host {
        globals.insert(GLOBAL_HOST.into(), Dynamic::from(host));
    }
    let args: Array = args.iter().map(|a| Dynamic::from(a.clone())).collect();
    globals.insert(GLOBAL_ARGS.into(), args.into());
    engine.set_default_tag(globals);
}

/// The names the compiler must accept under strict variables; their values
/// come from [`bind_globals`] at run time.
pub fn compile_scope() -> Scope<'static> {
    // Plain variables, not constants: the optimizer would fold a constant's
    // placeholder value into the script.
    let mut scope = Scope::new();
    scope.push(GLOBAL_HOST, ());
    scope.push(GLOBAL_ARGS, ());
    scope
}
