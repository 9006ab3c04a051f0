//! `virtscript run`: read and compile the script, take the job's lock, arm
//! the timeout, run on each host, then write the results, the report and the
//! exit status.
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rhai::{Dynamic, Scope};

use super::lock::LockError;
use super::report::{ChangeReport, ErrorReport, HostReport};
use super::results::{error_object, print_json};
use super::{fanout, hosts, lock, report, results, script, signals, Exit};
use crate::api::host::{Host, OpenError};
use crate::api::policy::SecurityArgs;
use crate::engine::{self, Diagnostic, EngineOptions, Limits, SourceMap};
use crate::runtime::log::{self, LogOptions};
use crate::runtime::{journal, stop};

/// One run, as the command line asks for it (`virtscript run --help` says
/// what each option does).
#[derive(Debug, Default)]
pub struct Run {
    /// The script's path; `-` is standard input.
    pub script: String,
    /// `ARGS` for the script.
    pub args: Vec<String>,
    /// Every `-c`: the hosts to run on, with those of `hosts_file`.
    pub connect: Vec<String>,
    pub hosts_file: Option<PathBuf>,
    /// `--json`: standard output holds one JSON document.
    pub json: bool,
    pub log: LogOptions,
    pub plan: bool,
    pub atomic: bool,
    pub lock: Option<PathBuf>,
    pub lock_timeout: Duration,
    pub no_lock: bool,
    pub report: Option<PathBuf>,
    /// Threads for `parallel` (and hosts run at once).
    pub jobs: usize,
    pub timeout: Option<Duration>,
    pub lib_dirs: Vec<PathBuf>,
    pub limits: Limits,
    pub security: SecurityArgs,
}

impl Run {
    pub fn multi_host(&self) -> bool {
        self.connect.len() > 1 || self.hosts_file.is_some()
    }
}

/// A run that fails before (or around) the script: said on stderr, and with
/// `--json` as the error object on stdout.
fn fail_run(run: &Run, kind: &str, message: &str, exit: Exit) -> Exit {
    log::error(message);
    if run.json {
        let object = error_object(kind, message, None);
        // The run has failed already; a failed write changes nothing.
        let _ = print_json(&object);
    }
    exit
}

/// One script, compiled, and how to run it.
pub struct Job<'a> {
    pub run: &'a Run,
    options: EngineOptions,
    name: String,
    ast: rhai::AST,
    sources: SourceMap,
}

impl Job<'_> {
    /// Run on one host; the section of the report for it.
    /// `host` and `engine` may come ready-made (opened or built while the script
    /// compiled); otherwise they are made here.
    pub fn run_on(
        &self,
        uri: &str,
        host: Option<Result<Host, OpenError>>,
        engine: Option<rhai::Engine>,
    ) -> HostReport {
        journal::set_current_host(uri);
        let mut report = HostReport {
            uri: uri.to_owned(),
            ..HostReport::default()
        };
        let host = match host.unwrap_or_else(|| Host::open(uri)) {
            Ok(host) => host,
            Err(e) => {
                let message = format!("cannot connect to libvirt at {uri}: {}", e.message());
                log::error(&message);
                report.exit_code = Exit::of_open(&e) as i32;
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
        let run = self.run;
        let mut engine = engine.unwrap_or_else(|| engine::build(&self.options, &self.sources));
        engine::bind_globals(&mut engine, Some(host), &run.args);
        if run.atomic {
            journal::begin();
        }
        let outcome = engine.eval_ast_with_scope::<Dynamic>(&mut Scope::new(), &self.ast);
        let outcome = match outcome {
            Ok(v) => {
                if run.atomic {
                    journal::commit();
                }
                Ok(v)
            }
            Err(err) if run.atomic => Err(crate::api::control::rollback_into(err)),
            Err(err) => Err(err),
        };
        match outcome {
            Ok(value) => {
                if run.json || run.report.is_some() {
                    report.result = Some(crate::api::json::to_json(&value));
                }
                if !run.json && !run.plan {
                    report.shown = crate::output::shown(&engine, &value);
                }
            }
            Err(err) => {
                let exit = Exit::of_eval(&err);
                let mut diagnostic = Diagnostic::from_eval(&err, &self.name);
                let functions: Vec<&str> = self.ast.iter_functions().map(|f| f.name).collect();
                diagnostic.explain_missing_with(Some(&self.sources), &functions);
                if exit == Exit::Stopped && stop::requested() == Some(stop::StopReason::TimedOut) {
                    if let Some(timeout) = run.timeout {
                        let after = format!(
                            "script timed out after {}",
                            humantime::format_duration(timeout)
                        );
                        diagnostic.message =
                            diagnostic.message.replacen("script timed out", &after, 1);
                    }
                }
                let prefix = if run.multi_host() {
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
        if run.report.is_some() {
            report.changes = journal::entries()
                .iter()
                .filter(|e| e.host == uri)
                .map(ChangeReport::from)
                .collect();
        }
        report
    }
}

/// Run the script; returns the exit status.
pub fn run(run: Run) -> Exit {
    let started = SystemTime::now();
    log::init(run.log);
    let usage = |message: String| fail_run(&run, "usage", &message, Exit::Usage);
    let (name, text) = match script::read(&run.script, run.limits.max_script_size) {
        Ok(s) => s,
        Err(message) => return usage(message),
    };
    let script_path = (run.script != "-").then(|| std::path::Path::new(&run.script));
    crate::api::policy::configure(&run.security, script_path, run.plan);
    let mut options =
        match script::engine_options(&run.limits, &run.lib_dirs, script::dir(&run.script)) {
            Ok(options) => options,
            Err(message) => return usage(message),
        };
    options.print_to_stderr = run.json;
    let uris = match hosts::targets(&run.connect, run.hosts_file.as_deref()) {
        Ok(uris) => uris,
        Err(message) => return usage(message),
    };
    if let Some(path) = &run.report {
        if let Err(message) = report::check_path(path) {
            return usage(message);
        }
    }
    // The usual run (one host, no plan) connects to a daemon while the script
    // compiles: opening libvirt is most of a short script's start-up. The
    // in-process test driver opens as fast on this thread, and a process
    // without threads keeps glibc's faster single-threaded malloc.
    let connecting = (uris.len() == 1 && !run.plan && !crate::api::host::in_process(&uris[0]))
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
            if run.json {
                let _ = print_json(&object);
            }
            return Exit::Usage;
        }
    };
    ast.set_source(name.clone());
    tracing::debug!(script = name.as_str(), "compiled");
    crate::api::control::set_jobs(run.jobs);
    // Before the lock: a stop while waiting for it is a stop (exit 4).
    signals::stop_on_signals();
    let lock = lock::for_run(
        run.lock.as_deref(),
        run.no_lock,
        run.lock_timeout,
        (&run.script, &text),
        &uris,
    );
    let _lock = match lock {
        Ok(lock) => lock,
        Err(e) if e.is_busy() => return fail_run(&run, "locked", &e.to_string(), Exit::Locked),
        Err(e @ LockError::Interrupted { .. }) => {
            return fail_run(&run, "stopped", &e.to_string(), Exit::Stopped)
        }
        Err(e) => return usage(super::with_causes(&e)),
    };
    if let Some(timeout) = run.timeout {
        stop::arm_timeout(timeout);
    }
    let job = Job {
        run: &run,
        options,
        name,
        ast,
        sources,
    };
    let host = connecting.and_then(|thread| thread.join().ok());
    let hosts = fanout::on_each_host(&job, &uris, host, engine);
    let mut exit = fanout::overall(&hosts);
    if let Err(write_failed) = results::show(&run, &hosts) {
        if exit == Exit::Success || exit == Exit::PlanHasChanges {
            exit = write_failed;
        }
    }
    if let Some(path) = &run.report {
        if let Err(message) = report::write(path, started, (&job.name, &text), exit as i32, hosts) {
            log::error(&message);
            return Exit::ScriptFailed;
        }
    }
    exit
}
