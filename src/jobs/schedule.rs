//! `virtscript schedule`: run jobs with the system's scheduler, not our own —
//! a systemd service + timer pair, or a crontab line.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Exit;
use crate::runtime::log;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("job name {0:?} must be letters, digits, '-' or '_' (it becomes a unit name)")]
    BadName(String),
    #[error("no job named {0} in {1}")]
    Missing(String, PathBuf),
    #[error("cannot write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error(transparent)]
    Calendar(#[from] super::calendar::CalendarError),
    #[error("{what} {value:?} holds a control character (a line break would add lines to the unit or crontab)")]
    Control { what: String, value: String },
}

/// Refuse control characters (newlines, tabs, escapes) in anything that
/// goes into a unit file or a crontab line.
pub fn check_text(what: &str, value: &str) -> Result<(), ScheduleError> {
    if value.chars().any(char::is_control) {
        return Err(ScheduleError::Control {
            what: what.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(())
}

pub const UNIT_PREFIX: &str = "virtscript-";

pub fn check_name(name: &str) -> Result<(), ScheduleError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ScheduleError::BadName(name.to_owned()))
    }
}

/// One `ExecStart=` argument by systemd's rules (systemd.service(5)
/// "Command lines"): always in double quotes, with `\\` and `"` escaped, `%`
/// doubled (specifiers) and `$` doubled (environment variables). A lone `;`
/// would separate commands: it is escaped instead.
fn systemd_quote(arg: &str) -> String {
    if arg == ";" {
        return "\\;".to_owned();
    }
    let mut out = String::from('"');
    for c in arg.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One argument for cron's `/bin/sh` command: single-quoted unless plain,
/// and every `%` escaped (cron turns a bare `%` into a line break).
fn cron_quote(arg: &str) -> String {
    let shell = if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    };
    shell.replace('%', "\\%")
}

/// The `ExecStart=` command line.
pub fn exec_start(program: &Path, args: &[String]) -> String {
    std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| systemd_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command of a crontab line.
pub fn cron_command(program: &Path, args: &[String]) -> String {
    std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| cron_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The service unit: a oneshot that runs the job, logs as JSON to the journal.
pub fn service_unit(name: &str, program: &Path, args: &[String], workdir: &Path) -> String {
    let mut unit = String::new();
    let _ = writeln!(unit, "[Unit]\nDescription=virtscript job {name}\nWants=network-online.target\nAfter=network-online.target libvirtd.service\n");
    // A path setting takes specifiers too: `%` is doubled.
    let _ = writeln!(
        unit,
        "[Service]\nType=oneshot\nWorkingDirectory={}",
        workdir.display().to_string().replace('%', "%%")
    );
    let _ = writeln!(unit, "ExecStart={}", exec_start(program, args));
    unit
}

/// The timer unit: `OnCalendar=` as given, persistent so missed runs catch up.
pub fn timer_unit(name: &str, on_calendar: &str) -> String {
    format!(
        "[Unit]\nDescription=Timer for virtscript job {name}\n\n[Timer]\nOnCalendar={on_calendar}\nPersistent=true\nRandomizedDelaySec=60\n\n[Install]\nWantedBy=timers.target\n"
    )
}

/// A crontab line for systems without systemd; `fields` are the five cron
/// fields ([`super::calendar::to_cron`]).
pub fn cron_line(name: &str, fields: &str, program: &Path, args: &[String]) -> String {
    format!(
        "{fields} {} # virtscript job {name}\n",
        cron_command(program, args)
    )
}

pub fn unit_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{UNIT_PREFIX}{name}.service")),
        dir.join(format!("{UNIT_PREFIX}{name}.timer")),
    )
}

/// Write the unit pair; returns the paths written.
pub fn install(
    dir: &Path,
    name: &str,
    service: &str,
    timer: &str,
) -> Result<Vec<PathBuf>, ScheduleError> {
    check_name(name)?;
    std::fs::create_dir_all(dir).map_err(|e| ScheduleError::Write(dir.to_owned(), e))?;
    let (service_path, timer_path) = unit_paths(dir, name);
    for (path, text) in [(&service_path, service), (&timer_path, timer)] {
        std::fs::write(path, text).map_err(|e| ScheduleError::Write(path.clone(), e))?;
    }
    Ok(vec![service_path, timer_path])
}

/// Installed jobs: (name, OnCalendar) from the timer units in `dir`.
pub fn list(dir: &Path) -> Vec<(String, String)> {
    let mut jobs: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let name = file
                .strip_prefix(UNIT_PREFIX)?
                .strip_suffix(".timer")?
                .to_owned();
            let text = std::fs::read_to_string(e.path()).ok()?;
            let when = text
                .lines()
                .find_map(|l| l.strip_prefix("OnCalendar="))
                .unwrap_or("?")
                .to_owned();
            Some((name, when))
        })
        .collect();
    jobs.sort();
    jobs
}

/// Remove a job's units; returns the paths removed.
pub fn remove(dir: &Path, name: &str) -> Result<Vec<PathBuf>, ScheduleError> {
    check_name(name)?;
    let (service, timer) = unit_paths(dir, name);
    let removed: Vec<PathBuf> = [service, timer]
        .into_iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .collect();
    if removed.is_empty() {
        return Err(ScheduleError::Missing(name.to_owned(), dir.to_owned()));
    }
    Ok(removed)
}

/// Where units go: `explicit`, else the system's unit directory, or with
/// `user` the current user's.
pub fn unit_dir(explicit: Option<PathBuf>, user: bool) -> PathBuf {
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

/// `virtscript schedule install NAME -- ARGS`: write the units (or print a
/// crontab line with `cron`) for a job running `virtscript ARGS` `on_calendar`.
pub fn install_command(
    name: &str,
    on_calendar: &str,
    cron: bool,
    dir: Option<PathBuf>,
    user: bool,
    mut args: Vec<String>,
) -> Exit {
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("virtscript"));
    // Unattended runs log JSON lines at info, so the journal shows every change.
    if args.first().is_some_and(|a| a == "run")
        && !args.iter().any(|a| a.starts_with("--log-level"))
    {
        args.insert(1, "--log-level=info".to_owned());
    }
    let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let checked = check_name(name)
        .and_then(|()| check_text("--on-calendar", on_calendar))
        .and_then(|()| args.iter().try_for_each(|a| check_text("argument", a)))
        .and_then(|()| check_text("program path", &program.display().to_string()))
        .and_then(|()| check_text("working directory", &workdir.display().to_string()));
    let when = checked.and_then(|()| {
        if cron {
            Ok(super::calendar::to_cron(on_calendar)?)
        } else {
            super::calendar::validate(on_calendar)?;
            Ok(on_calendar.to_owned())
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
        out!("{}", cron_line(name, &when, &program, &args));
        return Exit::Success;
    }
    let dir = unit_dir(dir, user);
    let service = service_unit(name, &program, &args, &workdir);
    let timer = timer_unit(name, on_calendar);
    match install(&dir, name, &service, &timer) {
        Ok(paths) => {
            for p in paths {
                outln!("wrote {}", p.display());
            }
            let scope = if user { "--user " } else { "" };
            outln!("enable it with: systemctl {scope}daemon-reload && systemctl {scope}enable --now {UNIT_PREFIX}{name}.timer");
            Exit::Success
        }
        Err(e) => {
            log::error(&super::with_causes(&e));
            Exit::ScriptFailed
        }
    }
}

/// `virtscript schedule list`: each job's name and calendar.
pub fn list_command(dir: Option<PathBuf>, user: bool) -> Exit {
    for (name, when) in list(&unit_dir(dir, user)) {
        outln!("{name}\t{when}");
    }
    Exit::Success
}

/// `virtscript schedule remove NAME`.
pub fn remove_command(name: &str, dir: Option<PathBuf>, user: bool) -> Exit {
    match remove(&unit_dir(dir, user), name) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_cron_lines_quote_arguments() {
        let args = vec!["run".to_owned(), "/srv/jobs/night ly.rhai".to_owned()];
        let service = service_unit(
            "nightly",
            Path::new("/usr/bin/virtscript"),
            &args,
            Path::new("/srv/100%"),
        );
        assert!(
            service.contains(
                "ExecStart=\"/usr/bin/virtscript\" \"run\" \"/srv/jobs/night ly.rhai\"\n"
            ),
            "{service}"
        );
        assert!(
            service.contains("WorkingDirectory=/srv/100%%\n"),
            "{service}"
        );
        assert!(timer_unit("nightly", "daily").contains("OnCalendar=daily\n"));
        assert_eq!(
            cron_line("nightly", "0 0 * * *", Path::new("/usr/bin/virtscript"), &args),
            "0 0 * * * /usr/bin/virtscript run '/srv/jobs/night ly.rhai' # virtscript job nightly\n"
        );
    }

    #[test]
    fn percent_dollar_quotes_and_semicolons_are_escaped_for_systemd_and_cron() {
        let args: Vec<String> = ["50%", "$HOME", "a\"b\\c", ";", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            exec_start(Path::new("/bin/vs"), &args),
            r#""/bin/vs" "50%%" "$$HOME" "a\"b\\c" \; "it's""#
        );
        assert_eq!(
            cron_command(Path::new("/bin/vs"), &args),
            r#"/bin/vs '50\%' '$HOME' 'a"b\c' ';' 'it'\''s'"#
        );
        assert!(matches!(
            check_text("argument", "x\nUnit=evil.service"),
            Err(ScheduleError::Control { .. })
        ));
        assert!(check_text("argument", "plain 100%").is_ok());
    }

    #[test]
    fn names_become_unit_names() {
        assert!(check_name("lab-nightly_2").is_ok());
        assert!(matches!(
            check_name("../etc"),
            Err(ScheduleError::BadName(_))
        ));
        assert!(matches!(check_name(""), Err(ScheduleError::BadName(_))));
    }
}
