//! One run on every host it targets: in parallel for several, rehearsed one
//! after another for a plan; and the run's exit status from theirs.
use super::rehearsal::plan_one;
use super::report::HostReport;
use super::runner::Job;
use super::Exit;
use crate::api::host::{Host, OpenError};

/// A host's report for each URI, in their order. `first` is the one host of
/// the usual run, connected while the script compiled, and its engine.
pub fn on_each_host(
    job: &Job,
    uris: &[String],
    first: Option<Result<Host, OpenError>>,
    engine: rhai::Engine,
) -> Vec<HostReport> {
    if job.run.plan {
        uris.iter().map(|uri| plan_one(job, uri)).collect()
    } else if uris.len() == 1 {
        vec![job.run_on(&uris[0], first, Some(engine))]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = uris
                .iter()
                .map(|uri| scope.spawn(|| job.run_on(uri, None, None)))
                .collect();
            handles
                .into_iter()
                .zip(uris)
                .map(|(h, uri)| {
                    h.join().unwrap_or_else(|_| HostReport {
                        uri: uri.clone(),
                        exit_code: Exit::ScriptFailed as i32,
                        ..HostReport::default()
                    })
                })
                .collect()
        })
    }
}

/// A failure on any host outranks "the plan has changes" (10) elsewhere.
pub fn overall(hosts: &[HostReport]) -> Exit {
    let codes = || hosts.iter().map(|h| h.exit_code);
    let exit_code = codes()
        .filter(|c| *c != 0 && *c != Exit::PlanHasChanges as i32)
        .max()
        .or_else(|| codes().max())
        .unwrap_or(0);
    Exit::from_code(exit_code)
}
