//! The interactive session (`virtscript repl`, or `virtscript` on a terminal).
//!
//! One engine and one [`Scope`] live for the whole session, so variables stay;
//! script functions accumulate in `fns` (an AST holding only functions) that
//! is merged with each input before it runs, like Rhai's own `rhai-repl`;
//! `import "m" as m;` at the top level of an input is kept by registering the
//! module under its alias.
//!
//! Files: `helper.rs` (rustyline helper), `complete.rs` (completion, hints),
//! `highlight.rs` (input colours), `validate.rs` (is an input finished),
//! `help.rs` (`help(...)`), `history.rs` (history file, secrets rule),
//! `meta.rs` (`:commands`).
pub mod complete;
pub mod help;
pub mod helper;
pub mod highlight;
pub mod history;
pub mod meta;
pub mod validate;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult, Expr, Map, Scope, Stmt, AST};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, Editor, EventHandler, KeyEvent};

use crate::api::Host;
use crate::engine::{self, Diagnostic, EngineOptions, SourceMap};
use crate::jobs::hosts::open_host;
use crate::jobs::Exit;
use crate::output::{self, table};
use crate::runtime::{stop, term};
use complete::{Catalog, VarInfo};
use helper::ReplHelper;
use meta::Meta;
use validate::Completeness;

const PROMPT: &str = "virtscript> ";
/// The prompt for the lines of an unfinished input (bash's `PS2`), as wide as
/// [`PROMPT`] so the continued lines line up with the first.
const CONTINUATION: &str = "       ...> ";

/// Whether an input is running (Ctrl-C then stops it) and how often Ctrl-C was pressed.
static RUNNING: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicU8 = AtomicU8::new(0);

/// The session on the host at `connect` (`None`: the default URI).
pub fn run(connect: Option<String>, options: EngineOptions) -> Exit {
    // Build the completion catalog while we connect and the user reads the banner.
    let catalog: Arc<OnceLock<Catalog>> = Arc::default();
    {
        let catalog = catalog.clone();
        std::thread::spawn(move || {
            catalog.get_or_init(Catalog::build);
        });
    }
    let host = match open_host(connect.as_deref()) {
        Ok(host) => host,
        Err(exit) => return exit,
    };
    let mut session = Session::new(&options, host.clone());
    let config = Config::builder()
        .auto_add_history(false)
        // readline's Tab: the common prefix first, all candidates (in columns) on the second Tab
        .completion_type(CompletionType::List)
        .max_history_size(10_000)
        .and_then(|b| Ok(b.history_ignore_dups(true)?.history_ignore_space(true)))
        .map(|b| b.build())
        .unwrap_or_default();
    let mut rl: Editor<ReplHelper, FileHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            errln!("error: cannot start the line editor: {e}");
            return Exit::Usage;
        }
    };
    let helper = ReplHelper::new(catalog, Some(host.clone()));
    // Ctrl-C at the prompt: end the line as Enter does (so the hint is
    // erased), shown with `^C`, and the input is dropped.
    rl.bind_sequence(
        KeyEvent::ctrl('C'),
        EventHandler::Conditional(Box::new(helper::ClearLine(helper.cleared.clone()))),
    );
    rl.set_helper(Some(helper));
    let syntax = validate::syntax_engine();
    let history_file = history::history_path();
    if let Some(path) = &history_file {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if path.exists() {
            if let Err(e) = rl.load_history(path) {
                errln!("warning: cannot read the history {}: {e}", path.display());
            }
        }
    }
    install_interrupt_handler();
    if std::io::stdin().is_terminal() {
        println!(
            "virtscript {} on {} — help() for the API, :help for commands, Ctrl-D to leave",
            env!("CARGO_PKG_VERSION"),
            host.uri()
        );
    }
    loop {
        let input = match read_input(&mut rl, &syntax) {
            Read::Input(input) => input,
            Read::Cleared => continue,
            Read::Eof => break,
            Read::Failed(e) => {
                errln!("error: {e}");
                break;
            }
        };
        if input.trim().is_empty() {
            continue;
        }
        remember(&mut rl, history_file.as_ref(), &input);
        match meta::parse(&input) {
            Some(Meta::Quit) => break,
            Some(command) => session.command(command),
            None => {
                let name = session.next_name();
                session.eval(&name, &input);
            }
        }
        if let Some(helper) = rl.helper_mut() {
            session.update(helper);
        }
    }
    Exit::Success
}

/// What the user typed at the prompt.
enum Read {
    Input(String),
    /// Ctrl-C: the input is dropped.
    Cleared,
    /// Ctrl-D on an empty line.
    Eof,
    Failed(ReadlineError),
}

/// Read one input: a line, and while it is unfinished (an open brace, a
/// dangling operator) more lines under the continuation prompt. Each line is
/// its own `readline`, so every line has a real prompt and the cursor is where
/// rustyline thinks it is (a prompt drawn into a multi-line buffer by the
/// highlighter would shift the cursor and vanish with `NO_COLOR`).
fn read_input(rl: &mut Editor<ReplHelper, FileHistory>, syntax: &Engine) -> Read {
    let mut text = String::new();
    loop {
        let first = text.is_empty();
        let read = rl.readline(if first { PROMPT } else { CONTINUATION });
        // Taken whatever the result: a Ctrl-C flag left set would drop the next line.
        let cleared = rl
            .helper()
            .is_some_and(|h| h.cleared.swap(false, Ordering::SeqCst));
        match read {
            Ok(_) if cleared => return Read::Cleared,
            Ok(line) => {
                if !first {
                    text.push('\n');
                }
                text.push_str(&line);
                if validate::completeness(syntax, &text) == Completeness::Complete {
                    return Read::Input(text);
                }
            }
            Err(ReadlineError::Interrupted) => return Read::Cleared,
            Err(ReadlineError::Eof) if first => return Read::Eof,
            // Ctrl-D under the continuation prompt runs what was typed, so its error shows.
            Err(ReadlineError::Eof) => return Read::Input(text),
            Err(e) => return Read::Failed(e),
        }
    }
}

/// Add an input to the history (memory and file) unless it carries a secret.
fn remember(rl: &mut Editor<ReplHelper, FileHistory>, file: Option<&PathBuf>, input: &str) {
    if let Some(why) = history::secret_kind(input) {
        errln!("(not saved in the history: {why})");
        return;
    }
    if matches!(rl.add_history_entry(input), Ok(true)) {
        if let Some(path) = file {
            // Append as we go: a killed session keeps its history, and two
            // sessions do not overwrite each other's.
            if let Err(e) = rl.append_history(path) {
                errln!("warning: cannot write the history {}: {e}", path.display());
            }
        }
    }
}

fn install_interrupt_handler() {
    // At the prompt the terminal is raw and rustyline sees Ctrl-C as a key;
    // while an input runs, Ctrl-C arrives as SIGINT and stops it between two
    // operations (and wakes sleeps and waits). A third press ends the process,
    // for a libvirt call that does not return.
    let handler = || {
        if !RUNNING.load(Ordering::SeqCst) {
            return;
        }
        stop::request(stop::StopReason::Interrupted);
        if PRESSES.fetch_add(1, Ordering::SeqCst) + 1 >= 3 {
            // Only async-signal-safe calls here: a raw write, then `_exit`.
            let note = b"\ninterrupted three times: leaving\n";
            // SAFETY: write(2) on stderr with a valid buffer.
            unsafe { libc::write(2, note.as_ptr().cast(), note.len()) };
            signal_hook::low_level::exit(Exit::Stopped as i32);
        }
    };
    // SAFETY: the handler only uses atomics, write(2) and `_exit`.
    let _ = unsafe { signal_hook::low_level::register(signal_hook::consts::SIGINT, handler) };
}

pub struct Session {
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined so far (statements cleared).
    fns: AST,
    /// Which input defined each function, for error locations inside it.
    defined_in: HashMap<String, String>,
    aliases: Vec<(String, String)>,
    sources: SourceMap,
    host: Host,
    inputs: usize,
    json: bool,
    time: bool,
}

impl Session {
    pub fn new(options: &EngineOptions, host: Host) -> Session {
        let sources = SourceMap::default();
        let mut engine = engine::build(options, &sources);
        help::register(&mut engine);
        engine::bind_globals(&mut engine, Some(host.clone()), &[]);
        // `HOST` and `ARGS` come from the engine's tag; the scope only lets
        // strict-variable compilation accept them.
        let scope = engine::compile_scope();
        Session {
            engine,
            scope,
            fns: AST::empty(),
            defined_in: HashMap::new(),
            aliases: Vec::new(),
            sources,
            host,
            inputs: 0,
            json: false,
            time: false,
        }
    }

    fn next_name(&mut self) -> String {
        self.inputs += 1;
        format!("<input {}>", self.inputs)
    }

    /// Run one input (or a loaded file) in the session and print its value.
    pub fn eval(&mut self, name: &str, text: &str) {
        self.sources.insert(name, text);
        let started = Instant::now();
        let mut ast = match self.engine.compile_with_scope(&self.scope, text) {
            Ok(ast) => ast,
            Err(err) => {
                errp!(
                    "{}",
                    Diagnostic::from_parse(&err, name).render(&self.sources)
                );
                return;
            }
        };
        ast.set_source(name);
        for f in ast.iter_functions() {
            self.defined_in.insert(f.name.to_owned(), name.to_owned());
        }
        let run = self.fns.merge(&ast);
        self.fns = run.clone_functions_only();
        self.fns.clear_source();
        stop::reset();
        PRESSES.store(0, Ordering::SeqCst);
        RUNNING.store(true, Ordering::SeqCst);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &run);
        RUNNING.store(false, Ordering::SeqCst);
        stop::reset();
        let elapsed = started.elapsed();
        match result {
            Ok(value) => {
                self.keep_imports(&ast);
                self.show(&value);
            }
            Err(mut err) => {
                self.fix_sources(&mut err, name);
                let mut diagnostic = Diagnostic::from_eval(&err, name);
                diagnostic.explain_missing(Some(&self.sources));
                if Exit::of_eval(&err) == Exit::Stopped {
                    // after the terminal's "^C"
                    errln!();
                    diagnostic.message = "interrupted (Ctrl-C)".into();
                }
                errp!("{}", diagnostic.render(&self.sources));
            }
        }
        if self.time {
            let took = format!("took {}", format_duration(elapsed));
            if term::colour_stderr() {
                errln!("\x1b[2m{took}\x1b[0m");
            } else {
                errln!("{took}");
            }
        }
    }

    /// Errors inside a function defined by an earlier input carry the current
    /// input's name (Rhai reports the running AST's source): put the right one back.
    fn fix_sources(&self, err: &mut EvalAltResult, current: &str) {
        crate::api::error::unwind_mut(err, |fn_name, src| {
            let Some(src) = src else { return };
            if src == current || src.is_empty() {
                if let Some(defined) = self.defined_in.get(fn_name) {
                    *src = defined.clone();
                }
            }
        });
    }

    /// `import "x" as y;` at the top of an input: keep `y` for later inputs.
    fn keep_imports(&mut self, ast: &AST) {
        for stmt in ast.statements() {
            let Stmt::Import(x, pos) = stmt else {
                continue;
            };
            let (Expr::StringConstant(path, _), alias) = (&x.0, &x.1) else {
                continue;
            };
            if alias.name.is_empty() {
                continue;
            }
            match self
                .engine
                .module_resolver()
                .resolve(&self.engine, None, path, *pos)
            {
                Ok(module) => {
                    self.engine
                        .register_static_module(alias.name.as_str(), module);
                    self.aliases.retain(|(a, _)| a != alias.name.as_str());
                    self.aliases
                        .push((alias.name.to_string(), path.to_string()));
                }
                Err(e) => errln!("warning: cannot keep module '{path}': {e}"),
            }
        }
    }

    fn show(&self, value: &Dynamic) {
        if value.is_unit() {
            return;
        }
        if self.json {
            let json = crate::api::json::to_json(value);
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
            return;
        }
        if let Some(text) = output::shown(&self.engine, value) {
            print!("{text}");
        }
    }

    /// A value as its `to_debug` (script objects print `Network(lab, active)`).
    fn to_debug(&self, value: &Dynamic) -> String {
        output::debug_text(&self.engine, value)
    }

    fn command(&mut self, command: Meta) {
        match command {
            Meta::Help => print!("{}", meta::HELP),
            Meta::Usage(usage) => errln!("usage: {usage}"),
            Meta::Unknown(name) => errln!("unknown command :{name}; :help lists the commands"),
            Meta::Json => {
                self.json = !self.json;
                println!("JSON output {}", if self.json { "on" } else { "off" });
            }
            Meta::Time => {
                self.time = !self.time;
                println!("timing {}", if self.time { "on" } else { "off" });
            }
            Meta::Vars => self.print_vars(),
            Meta::Load(path) => match std::fs::read_to_string(&path) {
                Ok(text) => self.eval(&path, &text),
                Err(e) => errln!("error: cannot read {path}: {e}"),
            },
            Meta::Connect(uri) => match Host::open(&uri) {
                Ok(host) => {
                    engine::bind_globals(&mut self.engine, Some(host.clone()), &[]);
                    self.host = host;
                    println!("HOST is now {uri}");
                }
                Err(e) => errln!(
                    "error: cannot connect to libvirt at {uri}: {}; HOST is still {}",
                    e.message(),
                    self.host.uri()
                ),
            },
            Meta::Quit => {}
        }
    }

    /// The session's variables in the order they were made; a name bound
    /// again (shadowed) appears once, with its newest value.
    fn user_vars(&self) -> Vec<(&str, &Dynamic)> {
        let mut vars: Vec<(&str, &Dynamic)> = Vec::new();
        // the scope iterates newest first
        for (name, _, value) in self.scope.iter_raw() {
            if name != "HOST" && name != "ARGS" && !vars.iter().any(|(n, _)| *n == name) {
                vars.push((name, value));
            }
        }
        vars.reverse();
        vars
    }

    fn print_vars(&self) {
        let rows: Vec<Vec<String>> = self
            .user_vars()
            .into_iter()
            .map(|(name, value)| {
                let mut text = self.to_debug(value);
                if text.chars().count() > 60 {
                    text = text.chars().take(57).collect::<String>() + "...";
                }
                vec![name.to_owned(), help::value_type(&self.engine, value), text]
            })
            .collect();
        if rows.is_empty() {
            println!("no variables yet");
            return;
        }
        let vars = crate::api::table::Table {
            columns: vec!["Name".into(), "Type".into(), "Value".into()],
            rows,
        };
        match term::size() {
            Some((cols, _)) => print!("{}", table::fit_table(&vars, cols.saturating_sub(1)).0),
            None => print!("{}", table::render_table(&vars)),
        }
    }

    /// Tell the completer what the session now holds.
    fn update(&self, helper: &mut ReplHelper) {
        helper.host = Some(self.host.clone());
        helper.aliases = self.aliases.clone();
        helper.vars = self
            .user_vars()
            .into_iter()
            .map(|(name, value)| {
                let keys = value
                    .read_lock::<Map>()
                    .map(|m| m.keys().map(|k| k.to_string()).collect())
                    .unwrap_or_default();
                (
                    VarInfo {
                        name: name.to_owned(),
                        type_name: help::value_type(&self.engine, value),
                        keys,
                    },
                    value.clone(),
                )
            })
            .collect();
    }
}

fn format_duration(d: std::time::Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(&EngineOptions::default(), crate::testing::private_host())
    }

    #[test]
    fn variables_functions_and_imports_persist() {
        let mut s = session();
        s.eval("<input 1>", "let x = 20;");
        s.eval("<input 2>", "fn double(v) { v * 2 }");
        s.eval("<input 3>", "let y = double(x) + 2;");
        let y = s.scope.get_value::<i64>("y");
        assert_eq!(y, Some(42));
        s.eval("<input 4>", "import \"retry\" as r;");
        assert_eq!(s.aliases, [("r".to_owned(), "retry".to_owned())]);
        s.eval("<input 5>", "let h = HOST.uri;");
        assert_eq!(
            s.scope.get_value::<String>("h").as_deref(),
            Some(s.host.uri())
        );
        s.eval("<input 6>", "let x = \"again\";");
        let names: Vec<&str> = s.user_vars().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["y", "h", "x"]);
        assert!(s.user_vars()[2].1.is_string(), "the newest x");
    }

    #[test]
    fn errors_in_earlier_functions_point_at_their_input() {
        let mut s = session();
        s.eval("<input 1>", "fn boom() {\n  throw \"bang\";\n}");
        s.sources.insert("<input 2>", "boom()");
        let ast = s.fns.merge(&{
            let mut a = s.engine.compile_with_scope(&s.scope, "boom()").unwrap();
            a.set_source("<input 2>");
            a
        });
        let mut err = *s
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut s.scope, &ast)
            .unwrap_err();
        s.fix_sources(&mut err, "<input 2>");
        let d = Diagnostic::from_eval(&err, "<input 2>");
        let text = d.render(&s.sources);
        assert!(text.contains("--> <input 1>:2:3"), "{text}");
        assert!(text.contains("--> <input 2>:1:1"), "{text}");
    }

    #[test]
    fn load_and_connect_commands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.rhai");
        std::fs::write(&path, "let loaded = 7;\nfn triple(x) { x * 3 }\n").unwrap();
        let mut s = session();
        s.command(Meta::Load(path.display().to_string()));
        s.eval("<input 1>", "let z = triple(loaded);");
        assert_eq!(s.scope.get_value::<i64>("z"), Some(21));
        assert_eq!(
            s.defined_in.get("triple").map(String::as_str),
            Some(path.to_str().unwrap())
        );
        s.command(Meta::Connect(
            "test+unix:///nowhere?socket=/nonexistent".into(),
        ));
        let first = s.host.uri().to_owned();
        assert!(first.ends_with("host.xml"), "{first}");
        assert_eq!(s.host.uri(), first, "a failed :connect keeps HOST");
        // :connect to a driver of this test's own (test:///default is shared
        // by every unit test in the binary)
        let state = dir.path().join("other.xml");
        std::fs::write(&state, "<node/>").unwrap();
        let other = format!("test://{}", state.display());
        s.command(Meta::Connect(other.clone()));
        s.eval("<input 2>", "let u = HOST.uri;");
        assert_eq!(
            s.scope.get_value::<String>("u").as_deref(),
            Some(other.as_str())
        );
    }
}
