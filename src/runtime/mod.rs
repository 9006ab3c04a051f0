//! Process-wide services every other layer may use, and which use none of
//! them: the stop signal (Ctrl-C, signals, `--timeout`), the undo journal of
//! a transaction, the kinds of error a script can catch, size and duration
//! units, and "did you mean" suggestions.
pub mod error_kind;
pub mod journal;
pub mod stop;
pub mod suggest;
pub mod units;

pub use error_kind::ErrorKind;
