//! The command line: `run`, `check`, `doc`, `repl`, `completions`, `man`.
//! Kept in the library so tests can drive it; `main.rs` only calls [`main`].
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use rhai::{Dynamic, EvalAltResult, Scope};

use crate::api::host::{default_uri, Host};
use crate::engine::{self, stop, Diagnostic, EngineOptions, Limits, SourceMap};
use crate::jobs::report::{ChangeReport, ErrorReport, HostReport, RunReport};

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
    /// Another run of the same job holds the lock (`--lock-timeout` expired).
    Locked = 5,
    /// `run --plan`: the script would change the host.
    PlanHasChanges = 10,
}

const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  the script failed at run time
  2  usage error, or the script does not compile
  3  cannot connect to libvirt
  4  timed out (--timeout) or interrupted (Ctrl-C)
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
    /// Run jobs on a schedule with systemd timers (or cron)
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Write a systemd service + timer running `virtscript ARGS...` (or print a crontab line)
    Install {
        /// Job name (the units are virtscript-NAME.service and .timer)
        name: String,
        /// When to run, as systemd's OnCalendar= (daily, hourly, "*-*-* 02:30:00", ...)
        #[arg(long, value_name = "WHEN", default_value = "daily")]
        on_calendar: String,
        /// Print a crontab line instead of writing units
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
            docs: false,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The script to run (`-` reads it from standard input)
    #[arg(value_name = "SCRIPT")]
    pub script: String,
    /// libvirt URI; give it several times to run the script on each host in parallel
    /// [default: $LIBVIRT_DEFAULT_URI, else the embedded test:///default]
    #[arg(short = 'c', long = "connect", value_name = "URI")]
    pub connect: Vec<String>,
    /// Run on every host listed in FILE (one URI per line; # comments)
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Print the script's final value as JSON on standard output
    #[arg(long)]
    pub json: bool,
    /// Rehearse on a copy of the host (libvirt's test driver loaded with its objects)
    /// and print the changes the script would make; exit 10 if there are any
    #[arg(long)]
    pub plan: bool,
    /// Undo every change the script made if it fails (as if wrapped in transaction())
    #[arg(long)]
    pub atomic: bool,
    /// Lock file that keeps two runs of this job apart [default: one per script and host]
    #[arg(long, value_name = "PATH")]
    pub lock: Option<PathBuf>,
    /// How long to wait for another run holding the lock before exiting with status 5
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub lock_timeout: Duration,
    /// Do not take a lock
    #[arg(long, conflicts_with = "lock")]
    pub no_lock: bool,
    /// Write a JSON run report (changes made, result or error) to PATH
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, value_enum, default_value = "auto")]
    pub log_format: crate::jobs::log::LogFormat,
    /// Log level on stderr (every libvirt change is logged at info)
    #[arg(long, value_enum, default_value = "warn")]
    pub log_level: crate::jobs::log::LogLevel,
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
        Some(Command::Repl(args)) => {
            crate::api::policy::configure(&args.security, None, false);
            crate::repl::run(args)
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "virtscript",
                &mut std::io::stdout(),
            );
            Exit::Success
        }
        Some(Command::Schedule(cmd)) => schedule(cmd),
        Some(Command::Man) => {
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => Exit::Success,
                Err(e) => {
                    errln!("error: {e}");
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
            security: Default::default(),
        }),
        None => {
            let _ = Cli::command().print_help();
            Exit::Usage
        }
    };
    crate::api::policy::cleanup();
    exit as i32
}

/// The URI to use when none is given, saying so when it is the embedded test driver.
fn fallback_uri() -> String {
    let (uri, embedded) = default_uri();
    if embedded {
        errln!(
            "virtscript: no URI given; using libvirt's embedded test driver {uri} (nothing on this machine is touched); use -c qemu:///system to act on the host"
        );
    }
    uri
}

/// Resolve the URI and connect.
pub fn open_host(connect: &ConnectArgs) -> Result<Host, Exit> {
    let uri = connect.connect.clone().unwrap_or_else(fallback_uri);
    Host::open(&uri).map_err(|e| {
        errln!("error: cannot connect to libvirt at {uri}: {}", e.message());
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

fn read_script(path: &str) -> Result<(String, String), Exit> {
    if path == "-" {
        let mut text = String::new();
        return match std::io::stdin().read_to_string(&mut text) {
            Ok(_) => Ok(("<stdin>".to_owned(), text)),
            Err(e) => {
                errln!("error: cannot read the script from standard input: {e}");
                Err(Exit::Usage)
            }
        };
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((path.to_owned(), text)),
        Err(e) => {
            errln!("error: cannot read script {path}: {e}");
            Err(Exit::Usage)
        }
    }
}

fn install_interrupt_handler() {
    // First Ctrl-C stops the script between operations; a second one ends the
    // process at once (a libvirt call may be blocking). A signal handler, not
    // a watcher thread (see `connecting` in `run`).
    let handler = || {
        if stop::requested().is_some() {
            signal_hook::low_level::exit(Exit::Stopped as i32);
        }
        stop::request(stop::StopReason::Interrupted);
    };
    // SAFETY: the handler only reads and swaps an atomic and calls `_exit`,
    // all async-signal-safe.
    let _ = unsafe { signal_hook::low_level::register(signal_hook::consts::SIGINT, handler) };
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
            _ => return Exit::ScriptFailed,
        }
    }
}

/// The hosts a run targets: every `-c`, then `--hosts FILE`, else the default.
fn run_uris(args: &RunArgs) -> Result<Vec<String>, Exit> {
    let mut uris = args.connect.clone();
    if let Some(file) = &args.hosts {
        let text = std::fs::read_to_string(file).map_err(|e| {
            errln!("error: cannot read --hosts {}: {e}", file.display());
            Exit::Usage
        })?;
        uris.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        if uris.is_empty() {
            errln!("error: --hosts {} lists no URI", file.display());
            return Err(Exit::Usage);
        }
    }
    if uris.is_empty() {
        uris.push(fallback_uri());
    }
    Ok(uris)
}

/// One script, compiled, and how to run it.
struct Job<'a> {
    args: &'a RunArgs,
    name: String,
    ast: rhai::AST,
    sources: SourceMap,
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
        crate::api::journal::set_current_host(uri);
        let mut report = HostReport {
            uri: uri.to_owned(),
            ..HostReport::default()
        };
        let host = match host.unwrap_or_else(|| Host::open(uri)) {
            Ok(host) => host,
            Err(e) => {
                let message = format!("cannot connect to libvirt at {uri}: {}", e.message());
                errln!("error: {message}");
                report.exit_code = connect_exit(&e) as i32;
                report.error = Some(ErrorReport {
                    message,
                    location: None,
                    called_from: Vec::new(),
                });
                return report;
            }
        };
        let mut engine = engine.unwrap_or_else(|| {
            engine::build(&self.args.script_args.engine_options(), &self.sources)
        });
        engine::bind_globals(&mut engine, Some(host), &self.args.args);
        if self.args.atomic {
            crate::api::journal::begin();
        }
        let outcome = engine.eval_ast_with_scope::<Dynamic>(&mut Scope::new(), &self.ast);
        let outcome = match outcome {
            Ok(v) => {
                if self.args.atomic {
                    crate::api::journal::commit();
                }
                Ok(v)
            }
            Err(err) if self.args.atomic => Err(crate::api::control::rollback_into(err)),
            Err(err) => Err(err),
        };
        // The process ends after the run: freeing the engine's function
        // tables would only delay the exit.
        std::mem::forget(engine);
        match outcome {
            Ok(value) if self.args.json || self.args.report.is_some() => {
                report.result = Some(crate::api::json::to_json(&value));
            }
            Ok(_) => {}
            Err(err) => {
                let exit = exit_for(&err);
                let mut diagnostic = Diagnostic::from_eval(&err, &self.name);
                if exit == Exit::Stopped && stop::requested() == Some(stop::StopReason::TimedOut) {
                    if let Some(timeout) = self.args.timeout {
                        diagnostic.message = format!(
                            "script timed out after {}",
                            humantime::format_duration(timeout)
                        );
                    }
                }
                let prefix = if self.multi_host() {
                    format!("[{uri}] ")
                } else {
                    String::new()
                };
                errp!("{prefix}{}", diagnostic.render(&self.sources));
                report.exit_code = exit as i32;
                report.error = Some(ErrorReport::from(&diagnostic));
            }
        }
        // Only a report file lists the changes (the journal holds every one).
        if self.args.report.is_some() {
            report.changes = crate::api::journal::entries()
                .iter()
                .filter(|e| e.host == uri)
                .map(ChangeReport::from)
                .collect();
        }
        report
    }

    fn multi_host(&self) -> bool {
        self.args.connect.len() > 1 || self.args.hosts.is_some()
    }
}

fn run(args: RunArgs) -> Exit {
    let started = std::time::SystemTime::now();
    let (name, text) = match read_script(&args.script) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let script_path = (args.script != "-").then(|| std::path::Path::new(&args.script));
    crate::api::policy::configure(&args.security, script_path, args.plan);
    let uris = match run_uris(&args) {
        Ok(uris) => uris,
        Err(exit) => return exit,
    };
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
    let engine = engine::build(&args.script_args.engine_options(), &sources);
    let mut ast = match engine.compile_with_scope(&engine::compile_scope(), &text) {
        Ok(ast) => ast,
        Err(err) => {
            errp!("{}", Diagnostic::from_parse(&err, &name).render(&sources));
            return Exit::Usage;
        }
    };
    ast.set_source(name.clone());
    crate::jobs::log::init(args.log_format, args.log_level);
    crate::api::control::set_jobs(args.jobs);
    // Each test:///default process has its own private driver: nothing to keep apart.
    let needs_lock =
        !args.no_lock && (args.lock.is_some() || uris.iter().any(|u| !u.starts_with("test://")));
    let _lock = if needs_lock {
        let identity = std::fs::canonicalize(&args.script)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| crate::jobs::report::sha256_hex(&text));
        let path = args
            .lock
            .clone()
            .unwrap_or_else(|| crate::jobs::lock::default_path(&identity, &uris.join(" ")));
        match crate::jobs::lock::acquire(&path, args.lock_timeout) {
            Ok(lock) => Some(lock),
            Err(e) => {
                errln!("error: {e}");
                return Exit::Locked;
            }
        }
    } else {
        None
    };
    install_interrupt_handler();
    if let Some(timeout) = args.timeout {
        stop::arm_timeout(timeout);
    }
    let job = Job {
        args: &args,
        name,
        ast,
        sources,
    };
    if args.plan {
        return plan(&job, &uris);
    }
    let hosts: Vec<HostReport> = if uris.len() == 1 {
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
    let exit_code = hosts.iter().map(|h| h.exit_code).max().unwrap_or(0);
    if args.json {
        let value = if hosts.len() == 1 {
            hosts[0].result.clone().unwrap_or(serde_json::Value::Null)
        } else {
            hosts
                .iter()
                .map(|h| {
                    (
                        h.uri.clone(),
                        h.result.clone().unwrap_or(serde_json::Value::Null),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        if exit_code == 0 || hosts.len() > 1 {
            outln!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
    }
    if let Some(path) = &args.report {
        let (rolled_back, rollback_failed) = crate::api::journal::rolled_back();
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
            exit_code,
            hosts,
        };
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json + "\n") {
            errln!("error: cannot write the report {}: {e}", path.display());
            return Exit::ScriptFailed;
        }
    }
    exit_from_code(exit_code)
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

/// `run --plan`: rehearse on the test driver loaded with each host's objects.
fn plan(job: &Job, uris: &[String]) -> Exit {
    let mut worst = Exit::Success;
    for uri in uris {
        let exit = plan_one(job, uri);
        if exit as i32 > worst as i32 {
            worst = exit;
        }
    }
    worst
}

fn plan_one(job: &Job, uri: &str) -> Exit {
    use crate::jobs::plan;
    let real = match Host::open(uri) {
        Ok(h) => h,
        Err(e) => {
            errln!("error: cannot connect to libvirt at {uri}: {}", e.message());
            return connect_exit(&e);
        }
    };
    let failed = |what: String| {
        errln!("error: cannot rehearse on a copy of {uri}: {what}");
        Exit::ScriptFailed
    };
    let inventory = match plan::inventory(real.conn()) {
        Ok(inv) => inv,
        Err(e) => return failed(e.message().to_owned()),
    };
    drop(real);
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return failed(e.to_string()),
    };
    let path = dir.path().join("host.xml");
    let conn = match plan::open_rehearsal(&inventory, &path) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let rehearsal = Host::from_connect(conn, &format!("test://{}", path.display()));
    let before = match plan::inventory(rehearsal.conn()) {
        Ok(inv) => inv,
        Err(e) => return failed(e.message().to_owned()),
    };
    errln!("virtscript: plan: rehearsing on a copy of {uri} (libvirt's test driver); the host is not touched");
    let report = job.run_on(uri, Some(Ok(rehearsal.clone())), None);
    if report.exit_code != 0 {
        return exit_from_code(report.exit_code);
    }
    let after = match plan::inventory(rehearsal.conn()) {
        Ok(inv) => inv,
        Err(e) => return failed(e.message().to_owned()),
    };
    let changes = plan::diff(&before, &after);
    if uris_label_needed(job) {
        outln!("# {uri}");
    }
    out!("{}", plan::render(&changes));
    if changes.is_empty() {
        Exit::Success
    } else {
        Exit::PlanHasChanges
    }
}

fn uris_label_needed(job: &Job) -> bool {
    job.multi_host()
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
            outln!("ok: {name}");
        } else {
            failed += 1;
            for d in diagnostics {
                errp!("{}", d.render(&sources));
            }
        }
    }
    if failed > 0 {
        errln!(
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
    out!("{text}");
    Exit::Success
}

fn unit_dir(explicit: Option<PathBuf>, user: bool) -> PathBuf {
    explicit.unwrap_or_else(|| {
        if user {
            let config = std::env::var_os("XDG_CONFIG_HOME")
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
            if let Err(e) = sched::check_name(&name) {
                errln!("error: {e}");
                return Exit::Usage;
            }
            // Unattended runs log JSON lines at info, so the journal shows every change.
            if args.first().is_some_and(|a| a == "run")
                && !args.iter().any(|a| a.starts_with("--log-level"))
            {
                args.insert(1, "--log-level=info".to_owned());
            }
            if cron {
                out!("{}", sched::cron_line(&name, &on_calendar, &program, &args));
                return Exit::Success;
            }
            let dir = unit_dir(dir, user);
            let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
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
                    errln!("error: {e}");
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
                errln!("error: {e}");
                Exit::Usage
            }
        },
    }
}
