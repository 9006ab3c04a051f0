//! The command line: `run`, `check`, `doc`, `repl`, `completions`, `man`.
//! Kept in the library so tests can drive it; `main.rs` only calls [`main`].
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use rhai::{Dynamic, EvalAltResult, Scope};

use crate::api::host::{default_uri, Host};
use crate::engine::{self, stop, Diagnostic, EngineOptions, Limits, SourceMap};

/// Exit statuses, documented in the README and `virtscript --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    Success = 0,
    /// The script failed at run time.
    ScriptFailed = 1,
    /// Bad command line, or the script does not compile.
    Usage = 2,
    /// libvirt could not be reached.
    Connect = 3,
    /// `--timeout` expired or the run was interrupted (Ctrl-C).
    Stopped = 4,
}

const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  the script failed at run time
  2  usage error, or the script does not compile
  3  cannot connect to libvirt
  4  timed out (--timeout) or interrupted (Ctrl-C)";

#[derive(Debug, Parser)]
#[command(
    name = "virtscript",
    version,
    about = "Automate libvirt with scripts: networks, storage, virtual machines",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a script
    Run(RunArgs),
    /// Compile scripts and the modules they import, without running them
    Check(CheckArgs),
    /// Print the script API reference, generated from the registered functions
    Doc(DocArgs),
    /// Start an interactive session with HOST connected
    Repl(ReplArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// libvirt URI [default: $LIBVIRT_DEFAULT_URI, else the embedded test:///default]
    #[arg(short = 'c', long = "connect", value_name = "URI")]
    pub connect: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ScriptArgs {
    /// Also import modules from DIR (repeatable); bundled stdlib modules are always there
    #[arg(long = "lib", value_name = "DIR")]
    pub lib: Vec<PathBuf>,
    #[command(flatten)]
    pub limits: Limits,
}

impl ScriptArgs {
    fn engine_options(&self) -> EngineOptions {
        EngineOptions {
            limits: self.limits.clone(),
            lib_dirs: self.lib.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The script to run (`-` reads it from standard input)
    #[arg(value_name = "SCRIPT")]
    pub script: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Print the script's final value as JSON on standard output
    #[arg(long)]
    pub json: bool,
    /// Stop the script after this long (e.g. 30s, 5m, 1h30m); exit status 4
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub script_args: ScriptArgs,
    /// Arguments for the script, available to it as the array ARGS
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Scripts to check
    #[arg(value_name = "SCRIPT", required = true)]
    pub scripts: Vec<String>,
    #[command(flatten)]
    pub script_args: ScriptArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DocFormat {
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct DocArgs {
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: DocFormat,
}

#[derive(Debug, Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub script_args: ScriptArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30s, 5m, 1h30m)"))
}

/// Parse the process arguments and run; returns the exit status.
pub fn main() -> i32 {
    main_from(std::env::args_os())
}

pub fn main_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    // libvirt must not print its own errors: we report them, once, where they happened.
    virt::error::clear_error_callback();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                Exit::Usage as i32
            } else {
                0
            };
        }
    };
    let exit = match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Check(args)) => check(args),
        Some(Command::Doc(args)) => doc(args),
        Some(Command::Repl(args)) => crate::repl::run(args),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "virtscript",
                &mut std::io::stdout(),
            );
            Exit::Success
        }
        Some(Command::Man) => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => Exit::Success,
                Err(e) => {
                    eprintln!("error: {e}");
                    Exit::ScriptFailed
                }
            }
        }
        None if std::io::stdin().is_terminal() => crate::repl::run(ReplArgs {
            connect: ConnectArgs { connect: None },
            script_args: ScriptArgs {
                lib: Vec::new(),
                limits: Limits::default(),
            },
        }),
        None => {
            let _ = Cli::command().print_help();
            Exit::Usage
        }
    };
    exit as i32
}

/// Resolve the URI and connect, saying so when the embedded test driver is used.
pub fn open_host(connect: &ConnectArgs) -> Result<Host, Exit> {
    let uri = match &connect.connect {
        Some(uri) => uri.clone(),
        None => {
            let (uri, embedded) = default_uri();
            if embedded {
                eprintln!(
                    "virtscript: no URI given; using libvirt's embedded test driver {uri} (nothing on this machine is touched); use -c qemu:///system to act on the host"
                );
            }
            uri
        }
    };
    Host::open(&uri).map_err(|e| {
        eprintln!("error: cannot connect to libvirt at {uri}: {}", e.message());
        Exit::Connect
    })
}

fn read_script(path: &str) -> Result<(String, String), Exit> {
    if path == "-" {
        let mut text = String::new();
        return match std::io::stdin().read_to_string(&mut text) {
            Ok(_) => Ok(("<stdin>".to_owned(), text)),
            Err(e) => {
                eprintln!("error: cannot read the script from standard input: {e}");
                Err(Exit::Usage)
            }
        };
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((path.to_owned(), text)),
        Err(e) => {
            eprintln!("error: cannot read script {path}: {e}");
            Err(Exit::Usage)
        }
    }
}

fn install_interrupt_handler() {
    // First Ctrl-C stops the script between operations; a second one ends the
    // process at once (a libvirt call may be blocking).
    let _ = ctrlc::set_handler(|| {
        if stop::requested().is_some() {
            std::process::exit(Exit::Stopped as i32);
        }
        stop::request(stop::StopReason::Interrupted);
    });
}

/// How a failed evaluation maps onto an exit status.
pub fn exit_for(err: &EvalAltResult) -> Exit {
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | EvalAltResult::ErrorInModule(_, inner, _) => err = inner,
            EvalAltResult::ErrorTerminated(..) => return Exit::Stopped,
            EvalAltResult::ErrorRuntime(value, _)
                if crate::api::error::is_connection_error(value) =>
            {
                return Exit::Connect
            }
            _ => return Exit::ScriptFailed,
        }
    }
}

fn run(args: RunArgs) -> Exit {
    let (name, text) = match read_script(&args.script) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let sources = SourceMap::default();
    sources.insert(name.clone(), text.as_str());
    let options = args.script_args.engine_options();
    let mut engine = engine::build(&options, &sources);
    let mut ast = match engine.compile_with_scope(&engine::compile_scope(), &text) {
        Ok(ast) => ast,
        Err(err) => {
            eprint!("{}", Diagnostic::from_parse(&err, &name).render(&sources));
            return Exit::Usage;
        }
    };
    ast.set_source(name.clone());
    let host = match open_host(&args.connect) {
        Ok(host) => host,
        Err(exit) => return exit,
    };
    engine::bind_globals(&mut engine, Some(host), &args.args);
    let mut scope = Scope::new();
    install_interrupt_handler();
    if let Some(timeout) = args.timeout {
        stop::arm_timeout(timeout);
    }
    match engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast) {
        Ok(value) => {
            if args.json {
                let json = crate::api::json::to_json(&value);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            }
            Exit::Success
        }
        Err(err) => {
            let exit = exit_for(&err);
            let mut diagnostic = Diagnostic::from_eval(&err, &name);
            if exit == Exit::Stopped {
                if let Some(timeout) = args
                    .timeout
                    .filter(|_| stop::requested() == Some(stop::StopReason::TimedOut))
                {
                    diagnostic.message = format!(
                        "script timed out after {}",
                        humantime::format_duration(timeout)
                    );
                }
            }
            eprint!("{}", diagnostic.render(&sources));
            exit
        }
    }
}

fn check(args: CheckArgs) -> Exit {
    let sources = SourceMap::default();
    let options = args.script_args.engine_options();
    let engine = engine::build(&options, &sources);
    let scope = engine::compile_scope();
    let mut failed = 0;
    for path in &args.scripts {
        let (name, text) = match read_script(path) {
            Ok(s) => s,
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        let diagnostics =
            engine::check::check_source(&engine, &options, &sources, &scope, &name, &text);
        if diagnostics.is_empty() {
            println!("ok: {name}");
        } else {
            failed += 1;
            for d in diagnostics {
                eprint!("{}", d.render(&sources));
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "{failed} of {} scripts failed to compile",
            args.scripts.len()
        );
        Exit::Usage
    } else {
        Exit::Success
    }
}

fn doc(args: DocArgs) -> Exit {
    let text = match args.format {
        DocFormat::Markdown => crate::doc::markdown(),
        DocFormat::Json => crate::doc::json(),
    };
    print!("{text}");
    Exit::Success
}
