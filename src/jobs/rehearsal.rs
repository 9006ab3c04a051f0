//! `run --plan` on one host: rehearse on libvirt's test driver loaded with
//! the host's objects, and tell the changes the script would make.
use super::plan;
use super::report::{ErrorReport, HostReport};
use super::results::error_object;
use super::runner::Job;
use super::Exit;
use crate::api::host::Host;
use crate::runtime::log;

/// The report section carries the plan (as JSON, and as text in `shown`)
/// and exit code 10 when there are changes.
pub fn plan_one(job: &Job, uri: &str) -> HostReport {
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
                Exit::of_open(&e),
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
