//! Process-wide services every other layer may use, and which use none of
//! them: the stop signal (Ctrl-C, signals, `--timeout`), the undo journal of
//! a transaction, the kinds of error a script can catch, size and duration
//! units, "did you mean" suggestions, what is said on stderr (logs, notices,
//! a script's `print` under `--json`), the facts of the terminal and who this
//! process is (for records it leaves on a daemon).
pub mod error_kind;
pub mod journal;
pub mod log;
pub mod process;
pub mod stop;
pub mod suggest;
pub mod term;
pub mod units;

pub use error_kind::ErrorKind;
