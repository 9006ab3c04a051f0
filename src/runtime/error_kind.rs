//! The kinds of error a script can catch. Every error virtscript raises is a
//! map whose `kind` entry is one of these words, so a script can tell them
//! apart in `catch (e) { if e.kind == "not_found" { ... } }`. This list is the
//! whole set: a new kind is added here, with a line saying when it is raised.

/// What went wrong, as scripts see it in `e.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A bad value in the script's input; the error names `field` and `value`.
    Invalid,
    /// A named object (network, pool, volume, VM, snapshot) does not exist.
    NotFound,
    /// An object of that name exists already and differs from the request.
    Exists,
    /// An object is still used by another one (a VM's disk, a backing image).
    InUse,
    /// virtscript refuses a call that would lose data or leave the sandbox.
    Refused,
    /// The object is in the wrong state for the call (a stopped VM's console).
    State,
    /// The host or its libvirt cannot do what was asked.
    Unsupported,
    /// Two hosts or objects cannot work together (migration between CPUs).
    Incompatible,
    /// libvirt refused the call; `code`, `code_name` and `domain` say how.
    Libvirt,
    /// A connection to libvirt could not be opened.
    Connect,
    /// A libvirt XML document could not be read or was rejected.
    Xml,
    /// A local file or stream could not be read or written.
    Io,
    /// A wait (`shutdown`, `wait_for`) ran out of time.
    Timeout,
    /// A migration did not finish within its `timeout` and was aborted.
    TimedOut,
    /// A change was sent to libvirt but reading back shows it did not take.
    NotApplied,
    /// A network cannot start because a bridge of its name is left from a crash.
    StaleBridge,
    /// A VM's graphical display cannot be reached.
    Display,
    /// `vm.console()` cannot attach (no terminal, or `virsh console` failed).
    Console,
    /// `assert`, `assert_eq` or `assert_ne` failed.
    Assert,
    /// One or more tasks of `parallel(...)` failed.
    Parallel,
    /// One or more clones of `vm.clone_many(...)` failed.
    CloneMany,
    /// A fault in virtscript itself; please report it.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of the documentation.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::Invalid,
        ErrorKind::NotFound,
        ErrorKind::Exists,
        ErrorKind::InUse,
        ErrorKind::Refused,
        ErrorKind::State,
        ErrorKind::Unsupported,
        ErrorKind::Incompatible,
        ErrorKind::Libvirt,
        ErrorKind::Connect,
        ErrorKind::Xml,
        ErrorKind::Io,
        ErrorKind::Timeout,
        ErrorKind::TimedOut,
        ErrorKind::NotApplied,
        ErrorKind::StaleBridge,
        ErrorKind::Display,
        ErrorKind::Console,
        ErrorKind::Assert,
        ErrorKind::Parallel,
        ErrorKind::CloneMany,
        ErrorKind::Internal,
    ];

    /// The word scripts compare `e.kind` with.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Exists => "exists",
            ErrorKind::InUse => "in_use",
            ErrorKind::Refused => "refused",
            ErrorKind::State => "state",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Incompatible => "incompatible",
            ErrorKind::Libvirt => "libvirt",
            ErrorKind::Connect => "connect",
            ErrorKind::Xml => "xml",
            ErrorKind::Io => "io",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TimedOut => "timed_out",
            ErrorKind::NotApplied => "not_applied",
            ErrorKind::StaleBridge => "stale_bridge",
            ErrorKind::Display => "display",
            ErrorKind::Console => "console",
            ErrorKind::Assert => "assert",
            ErrorKind::Parallel => "parallel",
            ErrorKind::CloneMany => "clone_many",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind a script's `e.kind` word names.
    pub fn from_word(word: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.as_str() == word)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_word() {
        let mut words: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        words.sort();
        words.dedup();
        assert_eq!(words.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_word(kind.as_str()), Some(*kind));
        }
    }

    /// The README's table of kinds is this list, in this order.
    #[test]
    fn readme_lists_every_kind() {
        let readme = include_str!("../../README.md");
        let listed: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .filter(|w| !w.is_empty() && *w != "kind")
            .collect();
        let words: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(listed, words);
    }
}
