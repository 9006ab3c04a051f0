//! The command line: `run`, `check`, `doc`, `repl`, `completions`, `man`,
//! `schedule`. Kept in the library so tests can drive it; `main.rs` only
//! calls [`main`].
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use rhai::{Dynamic, EvalAltResult, Scope};

use crate::api::host::{default_uri, Host};
use crate::engine::{self, Diagnostic, EngineOptions, Limits, SourceMap};
use crate::jobs::log;
use crate::jobs::report::{ChangeReport, ErrorReport, HostReport, RunReport};
use crate::runtime::stop;

/// Exit statuses, documented in the README and `virtscript --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    Success = 0,
    /// The script failed at run time, or its result could not be written.
    ScriptFailed = 1,
    /// Bad command line (an unusable lock or report path included), or the
    /// script does not compile.
    Usage = 2,
    /// libvirt could not be reached.
    Connect = 3,
    /// `--timeout` expired or the run was interrupted (Ctrl-C, SIGTERM, SIGHUP).
    Stopped = 4,
    /// Another run of the same job holds the lock (`--lock-timeout` expired).
    Locked = 5,
    /// `run --plan`: the script would change the host.
    PlanHasChanges = 10,
}

const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  the script failed at run time (or its output could not be written)
  2  usage error (an unusable --lock or --report path too), or the script does not compile
  3  cannot connect to libvirt
  4  timed out (--timeout) or interrupted (Ctrl-C, SIGTERM, SIGHUP)
  5  another run of the same job holds the lock (run --lock-timeout expired)
 10  run --plan: the script would change the host (0: no changes)";

#[derive(Debug, Parser)]
#[command(
    name = "virtscript",
    version,
    about = "Automate libvirt with scripts: networks, storage, virtual machines",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options that go before or after the subcommand, as with virsh.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// libvirt URI; `run` takes it several times to run the script on each host in parallel
    /// [default: $LIBVIRT_DEFAULT_URI, else the embedded test:///default]
    #[arg(short = 'c', long = "connect", value_name = "URI", global = true)]
    pub connect: Vec<String>,
    /// `run`: standard output holds exactly one JSON document, the script's final value
    /// (or the plan, or an error object); `print` goes to stderr
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level on stderr (every libvirt change is logged at info)
    /// [default: $RUST_LOG, else warn]
    #[arg(long, value_enum, global = true)]
    pub log_level: Option<log::LogLevel>,
    /// Log format on stderr; with json every line on stderr is a JSON object
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub log_format: log::LogFormat,
    /// No notices on stderr (such as the one naming the embedded test driver)
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// More log lines: -v info, -vv debug
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl GlobalArgs {
    fn log_options(&self) -> log::LogOptions {
        let level = match (self.log_level, self.verbose) {
            (Some(level), _) => Some(level),
            (None, 0) => None,
            (None, v) => Some(log::LogLevel::Warn.raised(v)),
        };
        log::LogOptions {
            format: self.log_format,
            level,
            quiet: self.quiet,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a script (also `virtscript SCRIPT ...`, so a script can start with
    /// `#!/usr/bin/env virtscript`)
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
    /// Print a manual page (roff), or write every page to a directory
    Man(ManArgs),
    /// Run jobs on a schedule with systemd timers (or cron)
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (`run`, `schedule-install`, ...)
    /// [default: virtscript(1) itself]
    #[arg(value_name = "SUBCOMMAND")]
    pub page: Option<String>,
    /// Write virtscript.1 and a page per subcommand (virtscript-run.1, ...) to DIR
    #[arg(long, value_name = "DIR", conflicts_with = "page")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Write a systemd service + timer running `virtscript ARGS...` (or print a crontab line)
    Install {
        /// Job name (the units are virtscript-NAME.service and .timer)
        name: String,
        /// When to run, as systemd's OnCalendar= (daily, hourly, "*-*-* 02:30:00",
        /// "Mon..Fri *-*-* 08:00", ...); checked before anything is written
        #[arg(long, value_name = "WHEN", default_value = "daily")]
        on_calendar: String,
        /// Print a crontab line instead of writing units (the calendar must be one cron can express)
        #[arg(long)]
        cron: bool,
        /// Where to write the units [default: /etc/systemd/system, or ~/.config/systemd/user with --user]
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
        /// Install as the current user's units
        #[arg(long)]
        user: bool,
        /// The virtscript command line to run, e.g. `-- run /srv/jobs/nightly.rhai -c qemu:///system`
        #[arg(last = true, required = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// List scheduled jobs
    List {
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
        #[arg(long)]
        user: bool,
    },
    /// Remove a scheduled job's units
    Remove {
        name: String,
        #[arg(long, value_name = "DIR")]
        unit_dir: Option<PathBuf>,
        #[arg(long)]
        user: bool,
    },
}

/// The one URI an interactive session connects to.
#[derive(Debug, Clone, Default)]
pub struct ConnectArgs {
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
    /// The engine's options for a script in `script_dir`; a `--lib` that is
    /// not a directory is an error.
    fn engine_options(&self, script_dir: Option<PathBuf>) -> Result<EngineOptions, String> {
        self.check_lib_dirs()?;
        Ok(EngineOptions {
            limits: self.limits.clone(),
            lib_dirs: self.lib.clone(),
            script_dir,
            ..EngineOptions::default()
        })
    }

    fn check_lib_dirs(&self) -> Result<(), String> {
        match self.lib.iter().find(|d| !d.is_dir()) {
            Some(dir) => Err(format!("--lib {}: no such directory", dir.display())),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The script to run (`-` reads it from standard input)
    #[arg(value_name = "SCRIPT")]
    pub script: String,
    /// Run on every host listed in FILE (one URI per line; # comments)
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Rehearse on a copy of the host (libvirt's test driver loaded with its objects)
    /// and print the changes the script would make (as JSON with --json); exit 10 if there are any
    #[arg(long)]
    pub plan: bool,
    /// Undo every change the script made if it fails (as if wrapped in transaction())
    #[arg(long)]
    pub atomic: bool,
    /// Lock file that keeps two runs of this job apart: a new file in an existing
    /// directory, or a lock file of an earlier run [default: one per script and host]
    #[arg(long, value_name = "PATH")]
    pub lock: Option<PathBuf>,
    /// How long to wait for another run holding the lock before exiting with status 5
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub lock_timeout: Duration,
    /// Do not take a lock
    #[arg(long, conflicts_with = "lock")]
    pub no_lock: bool,
    /// Write a JSON run report (changes made, result or error, the plan) to PATH
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Threads for parallel() (and hosts run at once)
    #[arg(long, value_name = "N", default_value_t = crate::api::control::DEFAULT_JOBS)]
    pub jobs: usize,
    /// Stop the script after this long (e.g. 30s, 5m, 1h30m); exit status 4
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub script_args: ScriptArgs,
    #[command(flatten)]
    pub security: crate::api::policy::SecurityArgs,
    /// Arguments for the script, available to it as the array ARGS (options of
    /// virtscript go before them; `--` ends them)
    #[arg(value_name = "ARGS", trailing_var_arg = true)]
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
    /// From the global `-c`.
    #[arg(skip)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub script_args: ScriptArgs,
    #[command(flatten)]
    pub security: crate::api::policy::SecurityArgs,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 30s, 5m, 1h30m)"))
}

/// Parse the process arguments and run; returns the exit status.
pub fn main() -> i32 {
    main_from(std::env::args_os())
}

/// The subcommands' names, for [`implied_run`].
const SUBCOMMANDS: &[&str] = &[
    "run",
    "check",
    "doc",
    "repl",
    "completions",
    "man",
    "schedule",
    "help",
];

/// Whether an option of `run` (or a global one) takes a value in the next
/// argument: `-c URI`, `--lib DIR`, ... (`--opt=value` is one argument).
fn takes_separate_value(option: &str) -> bool {
    if option.contains('=') {
        return false;
    }
    let cmd = Cli::command();
    let run = cmd.find_subcommand("run");
    let mut args = cmd
        .get_arguments()
        .chain(run.into_iter().flat_map(|r| r.get_arguments()));
    args.any(|a| {
        let named = match option.strip_prefix("--") {
            Some(long) => a.get_long() == Some(long),
            None => option.len() == 2 && a.get_short() == option.chars().nth(1),
        };
        named && a.get_action().takes_values()
    })
}

/// `virtscript job.rhai ARGS` (what a `#!/usr/bin/env virtscript` line runs,
/// with any options before it) means `virtscript run job.rhai ARGS`: when the
/// first argument that is not an option is a file (or a path, or ends in
/// `.rhai`) and not a subcommand's name, `run` goes first.
fn implied_run(mut args: Vec<OsString>) -> Vec<OsString> {
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--" {
            return args;
        }
        if arg.starts_with('-') && arg.len() > 1 {
            i += if takes_separate_value(&arg) { 2 } else { 1 };
            continue;
        }
        // A path that looks like a script is one even when it is missing, so
        // the error says so (not "unrecognized subcommand").
        let looks_like_a_script =
            arg.ends_with(".rhai") || arg.contains('/') || Path::new(&args[i]).is_file();
        if !SUBCOMMANDS.contains(&arg.as_ref()) && looks_like_a_script {
            args.insert(1, "run".into());
        }
        return args;
    }
    args
}

pub fn main_from<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // libvirt must not print its own errors: we report them, once, where they happened.
    virt::error::clear_error_callback();
    let args = implied_run(args.into_iter().map(Into::into).collect());
    // Asked for before parsing, so a bad command line is a JSON line too.
    let json_lines = args
        .windows(2)
        .any(|w| w[0] == "--log-format" && w[1] == "json")
        || args.iter().any(|a| a == "--log-format=json");
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) if json_lines && err.use_stderr() => {
            log::configure(log::LogOptions {
                format: log::LogFormat::Json,
                ..log::LogOptions::default()
            });
            let text = err.render().to_string();
            log::error(text.trim().trim_start_matches("error: "));
            return Exit::Usage as i32;
        }
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                Exit::Usage as i32
            } else {
                0
            };
        }
    };
    let global = cli.global;
    log::configure(global.log_options());
    if let Some(empty) = global.connect.iter().find(|u| u.trim().is_empty()) {
        log::error(&format!(
            "-c {empty:?}: an empty URI would connect to libvirt's own default; name the host (e.g. -c qemu:///system)"
        ));
        return Exit::Usage as i32;
    }
    let exit = match cli.command {
        Some(Command::Run(args)) => run(args, &global),
        Some(Command::Check(args)) => check(args),
        Some(Command::Doc(args)) => doc(args),
        Some(Command::Repl(args)) => repl(args, &global),
        Some(Command::Completions { shell }) => {
            // Into a buffer first: clap_complete panics on a closed stdout
            // (`virtscript completions fish | head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "virtscript", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            Exit::Success
        }
        Some(Command::Schedule(cmd)) => schedule(cmd),
        Some(Command::Man(args)) => man(args),
        None if std::io::stdin().is_terminal() => repl(
            ReplArgs {
                connect: ConnectArgs::default(),
                script_args: ScriptArgs {
                    lib: Vec::new(),
                    limits: Limits::default(),
                },
                security: Default::default(),
            },
            &global,
        ),
        None => {
            let _ = Cli::command().print_help();
            Exit::Usage
        }
    };
    crate::api::policy::cleanup();
    exit as i32
}

fn repl(mut args: ReplArgs, global: &GlobalArgs) -> Exit {
    if let Err(e) = args.script_args.check_lib_dirs() {
        log::error(&e);
        return Exit::Usage;
    }
    match global.connect.as_slice() {
        [] => {}
        [uri] => args.connect.connect = Some(uri.clone()),
        _ => {
            log::error("repl connects to one host: give -c once");
            return Exit::Usage;
        }
    }
    crate::api::policy::configure(&args.security, None, false);
    crate::repl::run(args)
}

/// The URI to use when none is given, saying so when it is the embedded test driver.
fn fallback_uri() -> String {
    let (uri, embedded) = default_uri();
    if embedded {
        log::notice(&format!(
            "virtscript: no URI given; using libvirt's embedded test driver {uri} (nothing on this machine is touched); use -c qemu:///system to act on the host"
        ));
    }
    uri
}

/// Resolve the URI and connect.
pub fn open_host(connect: &ConnectArgs) -> Result<Host, Exit> {
    let uri = connect.connect.clone().unwrap_or_else(fallback_uri);
    Host::open(&uri).map_err(|e| {
        log::error(&format!(
            "cannot connect to libvirt at {uri}: {}",
            e.message()
        ));
        connect_exit(&e)
    })
}

/// A URI the security policy refuses is a usage error; anything else, no connection.
fn connect_exit(e: &crate::api::host::OpenError) -> Exit {
    if e.is_refusal() {
        Exit::Usage
    } else {
        Exit::Connect
    }
}

/// A script's name and text; `-` is standard input.
fn read_script(path: &str, limit: u64) -> Result<(String, String), String> {
    use crate::engine::script_file;
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
fn script_dir(path: &str) -> Option<PathBuf> {
    if path == "-" {
        return None;
    }
    match Path::new(path).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => Some(dir.to_owned()),
        _ => Some(PathBuf::from(".")),
    }
}

fn install_interrupt_handler() {
    // The first Ctrl-C, SIGTERM (systemd stopping a job) or SIGHUP (the
    // terminal went away) stops the script between operations, so --atomic
    // rolls back and the report is written; a second one ends the process at
    // once (a libvirt call may be blocking). A signal handler, not a watcher
    // thread (see `connecting` in `run`).
    let handler = || {
        if stop::requested().is_some() {
            signal_hook::low_level::exit(Exit::Stopped as i32);
        }
        stop::request(stop::StopReason::Interrupted);
    };
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // SAFETY: the handler only reads and swaps an atomic and calls `_exit`,
        // all async-signal-safe.
        let _ = unsafe { signal_hook::low_level::register(signal, handler) };
    }
}

/// How a failed evaluation maps onto an exit status.
pub fn exit_for(err: &EvalAltResult) -> Exit {
    let mut err = err;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | EvalAltResult::ErrorInModule(_, inner, _) => err = inner,
            EvalAltResult::ErrorTerminated(token, _)
                if token.to_string() == engine::stack::TOKEN =>
            {
                return Exit::ScriptFailed
            }
            EvalAltResult::ErrorTerminated(..) => return Exit::Stopped,
            EvalAltResult::ErrorRuntime(value, _)
                if crate::api::error::is_connection_error(value) =>
            {
                return Exit::Connect
            }
            // A stop that a transaction (or --atomic) rolled back.
            EvalAltResult::ErrorRuntime(value, _)
                if value
                    .read_lock::<rhai::Map>()
                    .and_then(|m| m.get("kind").map(|k| k.to_string() == "stopped"))
                    .unwrap_or(false) =>
            {
                return Exit::Stopped
            }
            _ => return Exit::ScriptFailed,
        }
    }
}

/// The hosts a run targets: every `-c`, then `--hosts FILE`, else the default.
fn run_uris(args: &RunArgs, global: &GlobalArgs) -> Result<Vec<String>, String> {
    let mut uris = global.connect.clone();
    if let Some(file) = &args.hosts {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read --hosts {}: {e}", file.display()))?;
        uris.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        if uris.is_empty() {
            return Err(format!("--hosts {} lists no URI", file.display()));
        }
    }
    if uris.is_empty() {
        uris.push(fallback_uri());
    }
    Ok(uris)
}

/// `--report PATH` must be writable before the script changes anything: an
/// existing regular file we may write, or a new file in an existing
/// directory (made and removed again to be sure).
fn check_report_path(path: &Path) -> Result<(), String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(format!("--report {shown}: not a regular file"));
        }
        Ok(_) => {
            return std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(|_| ())
                .map_err(|e| format!("--report {shown}: cannot write it: {e}"));
        }
        Err(_) => {}
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(path);
            Ok(())
        }
        Err(e) => Err(format!("--report {shown}: cannot create it: {e}")),
    }
}

/// Write the one JSON document of `--json` to stdout; a failed write (a full
/// disk, a closed pipe) is a failed run.
fn print_json(value: &serde_json::Value) -> Result<(), Exit> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            log::error(&format!("cannot write the result to standard output: {e}"));
            Exit::ScriptFailed
        })
}

/// An error with its causes: `cannot write X: Permission denied`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The `--json` error object for a failure outside the script (no position).
fn error_object(kind: &str, message: &str, code: Option<i64>) -> serde_json::Value {
    serde_json::json!({
        "kind": kind, "message": message, "file": null, "line": null, "column": null,
        "field": null, "value": null, "code": code, "code_name": null, "called_from": [],
    })
}

/// A run that fails before (or around) the script: said on stderr, and with
/// `--json` as the error object on stdout.
fn fail_run(global: &GlobalArgs, kind: &str, message: &str, exit: Exit) -> Exit {
    log::error(message);
    if global.json {
        let object = error_object(kind, message, None);
        // The run has failed already; a failed write changes nothing.
        let _ = print_json(&object);
    }
    exit
}

/// One script, compiled, and how to run it.
struct Job<'a> {
    args: &'a RunArgs,
    global: &'a GlobalArgs,
    options: EngineOptions,
    name: String,
    ast: rhai::AST,
    sources: SourceMap,
}

/// A value as the terminal shows it (arrays of objects as tables, like the
/// REPL); `None` for `()`.
fn shown_value(engine: &rhai::Engine, value: &Dynamic) -> Option<String> {
    let debug = |v: &Dynamic| {
        if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
            return format!("{v:?}");
        }
        let mut scope = Scope::new();
        scope.push("__value", v.clone());
        engine
            .eval_expression_with_scope::<String>(&mut scope, "to_debug(__value)")
            .unwrap_or_else(|_| format!("{v:?}"))
    };
    // Fitted to a terminal like the REPL's tables; piped output is never cut.
    let width = crate::repl::term::size().map(|(cols, _)| cols.saturating_sub(1));
    crate::repl::table::display(value, &debug, width)
}

impl Job<'_> {
    /// Run on one host; the section of the report for it.
    /// `host` and `engine` may come ready-made (opened or built while the script
    /// compiled); otherwise they are made here.
    fn run_on(
        &self,
        uri: &str,
        host: Option<Result<Host, crate::api::host::OpenError>>,
        engine: Option<rhai::Engine>,
    ) -> HostReport {
        crate::runtime::journal::set_current_host(uri);
        let mut report = HostReport {
            uri: uri.to_owned(),
            ..HostReport::default()
        };
        let host = match host.unwrap_or_else(|| Host::open(uri)) {
            Ok(host) => host,
            Err(e) => {
                let message = format!("cannot connect to libvirt at {uri}: {}", e.message());
                log::error(&message);
                report.exit_code = connect_exit(&e) as i32;
                report.error_object = Some(error_object(
                    if e.is_refusal() { "refused" } else { "connect" },
                    &message,
                    e.libvirt_code(),
                ));
                report.error = Some(ErrorReport::plain("connect", message));
                return report;
            }
        };
        tracing::debug!(
            uri,
            script = self.name.as_str(),
            "connected; running the script"
        );
        let mut engine = engine.unwrap_or_else(|| engine::build(&self.options, &self.sources));
        engine::bind_globals(&mut engine, Some(host), &self.args.args);
        if self.args.atomic {
            crate::runtime::journal::begin();
        }
        let outcome = engine.eval_ast_with_scope::<Dynamic>(&mut Scope::new(), &self.ast);
        let outcome = match outcome {
            Ok(v) => {
                if self.args.atomic {
                    crate::runtime::journal::commit();
                }
                Ok(v)
            }
            Err(err) if self.args.atomic => Err(crate::api::control::rollback_into(err)),
            Err(err) => Err(err),
        };
        match outcome {
            Ok(value) => {
                if self.global.json || self.args.report.is_some() {
                    report.result = Some(crate::api::json::to_json(&value));
                }
                if !self.global.json && !self.args.plan {
                    report.shown = shown_value(&engine, &value);
                }
            }
            Err(err) => {
                let exit = exit_for(&err);
                let mut diagnostic = Diagnostic::from_eval(&err, &self.name);
                let functions: Vec<&str> = self.ast.iter_functions().map(|f| f.name).collect();
                diagnostic.explain_missing_with(Some(&self.sources), &functions);
                if exit == Exit::Stopped && stop::requested() == Some(stop::StopReason::TimedOut) {
                    if let Some(timeout) = self.args.timeout {
                        let after = format!(
                            "script timed out after {}",
                            humantime::format_duration(timeout)
                        );
                        diagnostic.message =
                            diagnostic.message.replacen("script timed out", &after, 1);
                    }
                }
                let prefix = if self.multi_host() {
                    format!("[{uri}] ")
                } else {
                    String::new()
                };
                let object = diagnostic.to_json();
                log::script_error(
                    &format!("{prefix}{}", diagnostic.render(&self.sources)),
                    &object,
                );
                report.exit_code = exit as i32;
                report.error_object = Some(object);
                report.error = Some(ErrorReport::from(&diagnostic));
            }
        }
        // The process ends after the run: freeing the engine's function
        // tables would only delay the exit.
        std::mem::forget(engine);
        // Only a report file lists the changes (the journal holds every one).
        if self.args.report.is_some() {
            report.changes = crate::runtime::journal::entries()
                .iter()
                .filter(|e| e.host == uri)
                .map(ChangeReport::from)
                .collect();
        }
        report
    }

    fn multi_host(&self) -> bool {
        self.global.connect.len() > 1 || self.args.hosts.is_some()
    }
}

fn run(args: RunArgs, global: &GlobalArgs) -> Exit {
    let started = std::time::SystemTime::now();
    log::init(global.log_options());
    let usage = |message: String| fail_run(global, "usage", &message, Exit::Usage);
    let (name, text) = match read_script(&args.script, args.script_args.limits.max_script_size) {
        Ok(s) => s,
        Err(message) => return usage(message),
    };
    let script_path = (args.script != "-").then(|| std::path::Path::new(&args.script));
    crate::api::policy::configure(&args.security, script_path, args.plan);
    let mut options = match args.script_args.engine_options(script_dir(&args.script)) {
        Ok(options) => options,
        Err(message) => return usage(message),
    };
    options.print_to_stderr = global.json;
    let uris = match run_uris(&args, global) {
        Ok(uris) => uris,
        Err(message) => return usage(message),
    };
    if let Some(path) = &args.report {
        if let Err(message) = check_report_path(path) {
            return usage(message);
        }
    }
    // The usual run (one host, no plan) connects to a daemon while the script
    // compiles: opening libvirt is most of a short script's start-up. The
    // in-process test driver opens as fast on this thread, and a process
    // without threads keeps glibc's faster single-threaded malloc.
    let connecting = (uris.len() == 1 && !args.plan && !crate::api::host::in_process(&uris[0]))
        .then(|| {
            let uri = uris[0].clone();
            std::thread::spawn(move || Host::open(&uri))
        });
    let sources = SourceMap::default();
    sources.insert(name.clone(), text.as_str());
    let engine = engine::build(&options, &sources);
    let mut ast = match engine.compile_with_scope(&engine::compile_scope(), &text) {
        Ok(ast) => ast,
        Err(err) => {
            let diagnostic = Diagnostic::from_parse(&err, &name);
            let object = diagnostic.to_json();
            log::script_error(&diagnostic.render(&sources), &object);
            if global.json {
                let _ = print_json(&object);
            }
            return Exit::Usage;
        }
    };
    ast.set_source(name.clone());
    tracing::debug!(script = name.as_str(), "compiled");
    crate::api::control::set_jobs(args.jobs);
    // Each test:///default process has its own private driver: nothing to keep apart.
    let needs_lock =
        !args.no_lock && (args.lock.is_some() || uris.iter().any(|u| !u.starts_with("test://")));
    // Before the lock: a stop while waiting for it is a stop (exit 4).
    install_interrupt_handler();
    let _lock = if needs_lock {
        let identity = std::fs::canonicalize(&args.script)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| crate::jobs::report::sha256_hex(&text));
        let path = args
            .lock
            .clone()
            .unwrap_or_else(|| crate::jobs::lock::default_path(&identity, &uris.join(" ")));
        match crate::jobs::lock::acquire(&path, args.lock_timeout, args.lock.is_none()) {
            Ok(lock) => Some(lock),
            Err(e) if e.is_busy() => {
                return fail_run(global, "locked", &e.to_string(), Exit::Locked)
            }
            Err(e @ crate::jobs::lock::LockError::Interrupted { .. }) => {
                return fail_run(global, "stopped", &e.to_string(), Exit::Stopped)
            }
            Err(e) => return usage(error_chain(&e)),
        }
    } else {
        None
    };
    if let Some(timeout) = args.timeout {
        stop::arm_timeout(timeout);
    }
    let job = Job {
        args: &args,
        global,
        options,
        name,
        ast,
        sources,
    };
    let hosts: Vec<HostReport> = if args.plan {
        uris.iter().map(|uri| plan_one(&job, uri)).collect()
    } else if uris.len() == 1 {
        let host = connecting.and_then(|thread| thread.join().ok());
        vec![job.run_on(&uris[0], host, Some(engine))]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = uris
                .iter()
                .map(|uri| scope.spawn(|| job.run_on(uri, None, None)))
                .collect();
            handles
                .into_iter()
                .zip(&uris)
                .map(|(h, uri)| {
                    h.join().unwrap_or_else(|_| HostReport {
                        uri: uri.clone(),
                        exit_code: Exit::ScriptFailed as i32,
                        ..HostReport::default()
                    })
                })
                .collect()
        })
    };
    // A failure on any host outranks "the plan has changes" (10) elsewhere.
    let codes = || hosts.iter().map(|h| h.exit_code);
    let exit_code = codes()
        .filter(|c| *c != 0 && *c != Exit::PlanHasChanges as i32)
        .max()
        .or_else(|| codes().max())
        .unwrap_or(0);
    let mut exit = exit_from_code(exit_code);
    if let Err(write_failed) = show_results(&job, &hosts) {
        if exit == Exit::Success || exit == Exit::PlanHasChanges {
            exit = write_failed;
        }
    }
    if let Some(path) = &args.report {
        let (rolled_back, rollback_failed) = crate::runtime::journal::rolled_back();
        let mut hosts = hosts;
        if let [only] = hosts.as_mut_slice() {
            only.rolled_back = rolled_back;
            only.rollback_failed = rollback_failed;
        }
        let finished = std::time::SystemTime::now();
        let report = RunReport {
            started: humantime::format_rfc3339_millis(started).to_string(),
            finished: humantime::format_rfc3339_millis(finished).to_string(),
            duration_seconds: finished
                .duration_since(started)
                .unwrap_or_default()
                .as_secs_f64(),
            script: job.name.clone(),
            script_sha256: crate::jobs::report::sha256_hex(&text),
            exit_code: exit as i32,
            hosts,
        };
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json + "\n") {
            log::error(&format!("cannot write the report {}: {e}", path.display()));
            return Exit::ScriptFailed;
        }
    }
    exit
}

/// Standard output after the run: with `--json` exactly one document (the
/// value, the plan, or the error object; a map by URI for several hosts),
/// else each host's final value or plan as text.
fn show_results(job: &Job, hosts: &[HostReport]) -> Result<(), Exit> {
    let plan = job.args.plan;
    if job.global.json {
        let one = |h: &HostReport| -> serde_json::Value {
            if let Some(error) = &h.error_object {
                return if hosts.len() > 1 {
                    serde_json::json!({ "error": error })
                } else {
                    error.clone()
                };
            }
            let value = if plan { &h.plan } else { &h.result };
            value.clone().unwrap_or(serde_json::Value::Null)
        };
        let value = if hosts.len() == 1 {
            one(&hosts[0])
        } else {
            hosts
                .iter()
                .map(|h| (h.uri.clone(), one(h)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        return print_json(&value);
    }
    let mut stdout = std::io::stdout().lock();
    for h in hosts {
        let text = if plan {
            h.plan.as_ref().map(|_| h.shown.clone().unwrap_or_default())
        } else {
            h.shown.clone()
        };
        if let Some(mut text) = text {
            if job.multi_host() {
                text = format!("# {}\n{text}", h.uri);
            }
            // A reader that stopped early (`| head`) is no error; a full disk is.
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    log::error(&format!("cannot write the result to standard output: {e}"));
                    return Err(Exit::ScriptFailed);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn exit_from_code(code: i32) -> Exit {
    match code {
        0 => Exit::Success,
        2 => Exit::Usage,
        3 => Exit::Connect,
        4 => Exit::Stopped,
        5 => Exit::Locked,
        10 => Exit::PlanHasChanges,
        _ => Exit::ScriptFailed,
    }
}

/// `run --plan` on one host: rehearse on the test driver loaded with the
/// host's objects; the report section carries the plan (as JSON, and as text
/// in `shown`) and exit code 10 when there are changes.
fn plan_one(job: &Job, uri: &str) -> HostReport {
    use crate::jobs::plan;
    let failed = |exit: Exit, kind: &str, message: String| {
        log::error(&message);
        HostReport {
            uri: uri.to_owned(),
            exit_code: exit as i32,
            error_object: Some(error_object(kind, &message, None)),
            error: Some(ErrorReport::plain(kind, message)),
            ..HostReport::default()
        }
    };
    let real = match Host::open(uri) {
        Ok(h) => h,
        Err(e) => {
            return failed(
                connect_exit(&e),
                if e.is_refusal() { "refused" } else { "connect" },
                format!("cannot connect to libvirt at {uri}: {}", e.message()),
            )
        }
    };
    let cannot = |what: String| {
        failed(
            Exit::ScriptFailed,
            "plan",
            format!("cannot rehearse on a copy of {uri}: {what}"),
        )
    };
    let inventory = match plan::inventory(real.conn()) {
        Ok(inv) => inv,
        Err(e) => return cannot(e.message().to_owned()),
    };
    drop(real);
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return cannot(e.to_string()),
    };
    let path = dir.path().join("host.xml");
    let conn = match plan::open_rehearsal(&inventory, &path) {
        Ok(c) => c,
        Err(e) => return cannot(e),
    };
    let rehearsal = Host::from_connect(conn, &format!("test://{}", path.display()));
    let before = match plan::inventory(rehearsal.conn()) {
        Ok(inv) => inv,
        Err(e) => return cannot(e.message().to_owned()),
    };
    log::notice(&format!("virtscript: plan: rehearsing on a copy of {uri} (libvirt's test driver); the host is not touched"));
    let mut report = job.run_on(uri, Some(Ok(rehearsal.clone())), None);
    if report.exit_code != 0 {
        return report;
    }
    let after = match plan::inventory(rehearsal.conn()) {
        Ok(inv) => inv,
        Err(e) => return cannot(e.message().to_owned()),
    };
    let changes = plan::diff(&before, &after);
    report.plan = Some(plan::to_json(&changes));
    report.shown = Some(plan::render(&changes));
    if !changes.is_empty() {
        report.exit_code = Exit::PlanHasChanges as i32;
    }
    report
}

fn check(args: CheckArgs) -> Exit {
    let sources = SourceMap::default();
    let options = match args.script_args.engine_options(None) {
        Ok(options) => options,
        Err(message) => {
            log::error(&message);
            return Exit::Usage;
        }
    };
    let engine = engine::build(&options, &sources);
    let scope = engine::compile_scope();
    let mut failed = 0;
    for path in &args.scripts {
        let (name, text) = match read_script(path, options.limits.max_script_size) {
            Ok(s) => s,
            Err(message) => {
                log::error(&message);
                failed += 1;
                continue;
            }
        };
        let options = EngineOptions {
            script_dir: script_dir(path),
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
            args.scripts.len()
        ));
        Exit::Usage
    } else {
        Exit::Success
    }
}

/// `virtscript man [SUBCOMMAND]` prints a page; `--dir DIR` writes them all.
/// A reader that stops early (`virtscript man | head`) is no error.
fn man(args: ManArgs) -> Exit {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = args.dir {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            log::error(&format!("cannot make {}: {e}", dir.display()));
            return Exit::ScriptFailed;
        }
        return match clap_mangen::generate_to(cmd, &dir) {
            Ok(()) => {
                let mut pages: Vec<_> = std::fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("virtscript"))
                    })
                    .collect();
                pages.sort();
                for p in pages {
                    outln!("wrote {}", p.display());
                }
                Exit::Success
            }
            Err(e) => {
                log::error(&format!("cannot write the pages to {}: {e}", dir.display()));
                Exit::ScriptFailed
            }
        };
    }
    let page = match &args.page {
        None => cmd,
        Some(name) => {
            // `schedule-install` (or `schedule install`) names a nested page.
            let mut found = Some(&cmd);
            for part in name.split(['-', ' ']) {
                found = found.and_then(|c| c.find_subcommand(part));
            }
            match found {
                Some(sub) => sub.clone(),
                None => {
                    log::error(&format!(
                        "no manual page for '{name}'; pages: {}",
                        cmd.get_subcommands()
                            .map(|c| c.get_name().to_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    return Exit::Usage;
                }
            }
        }
    };
    let mut roff = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut roff) {
        log::error(&e.to_string());
        return Exit::ScriptFailed;
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&roff).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Success,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success,
        Err(e) => {
            log::error(&format!("cannot write the page: {e}"));
            Exit::ScriptFailed
        }
    }
}

fn doc(args: DocArgs) -> Exit {
    let text = match args.format {
        DocFormat::Markdown => crate::doc::markdown(),
        DocFormat::Json => crate::doc::json(),
    };
    out!("{text}");
    Exit::Success
}

fn unit_dir(explicit: Option<PathBuf>, user: bool) -> PathBuf {
    explicit.unwrap_or_else(|| {
        if user {
            // An empty XDG_CONFIG_HOME counts as unset (the XDG spec), not as ".".
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                .unwrap_or_else(|| PathBuf::from("."));
            config.join("systemd/user")
        } else {
            PathBuf::from("/etc/systemd/system")
        }
    })
}

fn schedule(cmd: ScheduleCommand) -> Exit {
    use crate::jobs::schedule as sched;
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("virtscript"));
    match cmd {
        ScheduleCommand::Install {
            name,
            on_calendar,
            cron,
            unit_dir: dir,
            user,
            mut args,
        } => {
            // Unattended runs log JSON lines at info, so the journal shows every change.
            if args.first().is_some_and(|a| a == "run")
                && !args.iter().any(|a| a.starts_with("--log-level"))
            {
                args.insert(1, "--log-level=info".to_owned());
            }
            let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            let checked = sched::check_name(&name)
                .and_then(|()| sched::check_text("--on-calendar", &on_calendar))
                .and_then(|()| {
                    args.iter()
                        .try_for_each(|a| sched::check_text("argument", a))
                })
                .and_then(|()| sched::check_text("program path", &program.display().to_string()))
                .and_then(|()| {
                    sched::check_text("working directory", &workdir.display().to_string())
                });
            let when = checked.and_then(|()| {
                if cron {
                    Ok(crate::jobs::calendar::to_cron(&on_calendar)?)
                } else {
                    crate::jobs::calendar::validate(&on_calendar)?;
                    Ok(on_calendar.clone())
                }
            });
            let when = match when {
                Ok(when) => when,
                Err(e) => {
                    log::error(&e.to_string());
                    return Exit::Usage;
                }
            };
            if cron {
                out!("{}", sched::cron_line(&name, &when, &program, &args));
                return Exit::Success;
            }
            let dir = unit_dir(dir, user);
            let service = sched::service_unit(&name, &program, &args, &workdir);
            let timer = sched::timer_unit(&name, &on_calendar);
            match sched::install(&dir, &name, &service, &timer) {
                Ok(paths) => {
                    for p in paths {
                        outln!("wrote {}", p.display());
                    }
                    let scope = if user { "--user " } else { "" };
                    outln!("enable it with: systemctl {scope}daemon-reload && systemctl {scope}enable --now {}{name}.timer", sched::UNIT_PREFIX);
                    Exit::Success
                }
                Err(e) => {
                    log::error(&error_chain(&e));
                    Exit::ScriptFailed
                }
            }
        }
        ScheduleCommand::List {
            unit_dir: dir,
            user,
        } => {
            for (name, when) in sched::list(&unit_dir(dir, user)) {
                outln!("{name}\t{when}");
            }
            Exit::Success
        }
        ScheduleCommand::Remove {
            name,
            unit_dir: dir,
            user,
        } => match sched::remove(&unit_dir(dir, user), &name) {
            Ok(paths) => {
                for p in paths {
                    outln!("removed {}", p.display());
                }
                Exit::Success
            }
            Err(e) => {
                log::error(&e.to_string());
                Exit::Usage
            }
        },
    }
}
