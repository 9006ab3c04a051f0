//! The command line: clap's types for `run`, `check`, `doc`, `repl`,
//! `completions`, `man` and `schedule`, and dispatch to the code that does
//! the work (`jobs` runs, checks and schedules scripts; `repl` is the
//! interactive session). Kept in the library so tests can drive it;
//! `main.rs` only calls [`main`].
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::engine::Limits;
use crate::jobs::{self, Exit};
use crate::runtime::log;

#[derive(Debug, Parser)]
#[command(
    name = "virtscript",
    version,
    about = "Automate libvirt with scripts: networks, storage, virtual machines",
    after_help = jobs::exit::HELP
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

#[derive(Debug, Clone, Args)]
pub struct ScriptArgs {
    /// Also import modules from DIR (repeatable); bundled stdlib modules are always there
    #[arg(long = "lib", value_name = "DIR")]
    pub lib: Vec<PathBuf>,
    #[command(flatten)]
    pub limits: Limits,
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
        Some(Command::Check(args)) => jobs::check::check(
            &args.scripts,
            &args.script_args.lib,
            &args.script_args.limits,
        ),
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

/// `repl` connects to one host: the global `-c`, given once (or not at all).
fn repl(args: ReplArgs, global: &GlobalArgs) -> Exit {
    let options =
        match jobs::script::engine_options(&args.script_args.limits, &args.script_args.lib, None) {
            Ok(options) => options,
            Err(e) => {
                log::error(&e);
                return Exit::Usage;
            }
        };
    let connect = match global.connect.as_slice() {
        [] => None,
        [uri] => Some(uri.clone()),
        _ => {
            log::error("repl connects to one host: give -c once");
            return Exit::Usage;
        }
    };
    crate::api::policy::configure(&args.security, None, false);
    crate::repl::run(connect, options)
}

fn run(args: RunArgs, global: &GlobalArgs) -> Exit {
    jobs::run(jobs::Run {
        script: args.script,
        args: args.args,
        connect: global.connect.clone(),
        hosts_file: args.hosts,
        json: global.json,
        log: global.log_options(),
        plan: args.plan,
        atomic: args.atomic,
        lock: args.lock,
        lock_timeout: args.lock_timeout,
        no_lock: args.no_lock,
        report: args.report,
        jobs: args.jobs,
        timeout: args.timeout,
        lib_dirs: args.script_args.lib,
        limits: args.script_args.limits,
        security: args.security,
    })
}

fn schedule(cmd: ScheduleCommand) -> Exit {
    use crate::jobs::schedule;
    match cmd {
        ScheduleCommand::Install {
            name,
            on_calendar,
            cron,
            unit_dir,
            user,
            args,
        } => schedule::install_command(&name, &on_calendar, cron, unit_dir, user, args),
        ScheduleCommand::List { unit_dir, user } => schedule::list_command(unit_dir, user),
        ScheduleCommand::Remove {
            name,
            unit_dir,
            user,
        } => schedule::remove_command(&name, unit_dir, user),
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
