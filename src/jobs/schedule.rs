//! `virtscript schedule`: run jobs with the system's scheduler, not our own —
//! a systemd service + timer pair, or a crontab line.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("job name {0:?} must be letters, digits, '-' or '_' (it becomes a unit name)")]
    BadName(String),
    #[error("no job named {0} in {1}")]
    Missing(String, PathBuf),
    #[error("cannot write {0}")]
    Write(PathBuf, #[source] std::io::Error),
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

/// Quote one argument for a systemd `ExecStart=` line (and a shell).
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

pub fn command_line(program: &Path, args: &[String]) -> String {
    let mut line = quote(&program.display().to_string());
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    line
}

/// The service unit: a oneshot that runs the job, logs as JSON to the journal.
pub fn service_unit(name: &str, program: &Path, args: &[String], workdir: &Path) -> String {
    let mut unit = String::new();
    let _ = writeln!(unit, "[Unit]\nDescription=virtscript job {name}\nWants=network-online.target\nAfter=network-online.target libvirtd.service\n");
    let _ = writeln!(
        unit,
        "[Service]\nType=oneshot\nWorkingDirectory={}",
        workdir.display()
    );
    let _ = writeln!(unit, "ExecStart={}", command_line(program, args));
    unit
}

/// The timer unit: `OnCalendar=` as given, persistent so missed runs catch up.
pub fn timer_unit(name: &str, on_calendar: &str) -> String {
    format!(
        "[Unit]\nDescription=Timer for virtscript job {name}\n\n[Timer]\nOnCalendar={on_calendar}\nPersistent=true\nRandomizedDelaySec=60\n\n[Install]\nWantedBy=timers.target\n"
    )
}

/// A crontab line for systems without systemd. `on_calendar` accepts the
/// shorthands cron knows (`hourly`, `daily`, `weekly`, `monthly`) or five cron fields.
pub fn cron_line(name: &str, on_calendar: &str, program: &Path, args: &[String]) -> String {
    let when = match on_calendar {
        "hourly" | "daily" | "weekly" | "monthly" | "yearly" | "reboot" => {
            format!("@{on_calendar}")
        }
        other => other.to_owned(),
    };
    format!(
        "{when} {} # virtscript job {name}\n",
        command_line(program, args)
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
            Path::new("/srv"),
        );
        assert!(service.contains("ExecStart=/usr/bin/virtscript run '/srv/jobs/night ly.rhai'\n"));
        assert!(timer_unit("nightly", "daily").contains("OnCalendar=daily\n"));
        assert_eq!(
            cron_line("nightly", "daily", Path::new("/usr/bin/virtscript"), &args),
            "@daily /usr/bin/virtscript run '/srv/jobs/night ly.rhai' # virtscript job nightly\n"
        );
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
