//! The exit statuses of a run, and how a failure maps onto one.
use rhai::EvalAltResult;

use crate::api::error::{innermost, is_connection_error};
use crate::api::host::OpenError;

/// Exit statuses, documented in the README and `virtscript --help` ([`HELP`]).
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

/// [`Exit`] in the words of `virtscript --help`.
pub const HELP: &str = "\
Exit status:
  0  success
  1  the script failed at run time (or its output could not be written)
  2  usage error (an unusable --lock or --report path too), or the script does not compile
  3  cannot connect to libvirt
  4  timed out (--timeout) or interrupted (Ctrl-C, SIGTERM, SIGHUP)
  5  another run of the same job holds the lock (run --lock-timeout expired)
 10  run --plan: the script would change the host (0: no changes)";

impl Exit {
    /// How a failed evaluation maps onto an exit status.
    pub fn of_eval(err: &EvalAltResult) -> Exit {
        match innermost(err) {
            EvalAltResult::ErrorTerminated(token, _)
                if token.to_string() == crate::engine::stack::TOKEN =>
            {
                Exit::ScriptFailed
            }
            EvalAltResult::ErrorTerminated(..) => Exit::Stopped,
            EvalAltResult::ErrorRuntime(value, _) if is_connection_error(value) => Exit::Connect,
            // A stop that a transaction (or --atomic) rolled back.
            EvalAltResult::ErrorRuntime(value, _)
                if value
                    .read_lock::<rhai::Map>()
                    .and_then(|m| m.get("kind").map(|k| k.to_string() == "stopped"))
                    .unwrap_or(false) =>
            {
                Exit::Stopped
            }
            _ => Exit::ScriptFailed,
        }
    }

    /// A URI the security policy refuses is a usage error; anything else, no connection.
    pub fn of_open(e: &OpenError) -> Exit {
        if e.is_refusal() {
            Exit::Usage
        } else {
            Exit::Connect
        }
    }

    /// The status a host's report carries, back as an [`Exit`].
    pub fn from_code(code: i32) -> Exit {
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
}
