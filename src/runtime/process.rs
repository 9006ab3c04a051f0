//! Who this process is, in words that outlive it: the machine (host name and
//! boot id) and the process (pid and its start time, so that a reused pid is
//! not taken for it). Records that a run leaves on a daemon (the clone intent
//! log) carry it, so that a later run can tell a run that died from one that
//! is still going.
use std::sync::OnceLock;

/// A process, as a record left on a daemon names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub host: String,
    /// `/proc/sys/kernel/random/boot_id`: changes at every boot.
    pub boot: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat`).
    pub started: u64,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Field 22 of `/proc/PID/stat`, read after the command name (which may hold
/// spaces and parentheses).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// This process.
pub fn current() -> &'static Identity {
    static ME: OnceLock<Identity> = OnceLock::new();
    ME.get_or_init(|| Identity {
        host: read_trimmed("/proc/sys/kernel/hostname"),
        boot: read_trimmed("/proc/sys/kernel/random/boot_id"),
        pid: std::process::id(),
        started: start_time(std::process::id()).unwrap_or(0),
    })
}

/// What can be said about the process a record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// This process.
    Me,
    /// Another process on this machine, still running.
    Running,
    /// It ran on this machine and has ended (or the machine rebooted since).
    Gone,
    /// It ran on another machine: nothing can be said from here.
    Elsewhere,
}

impl Identity {
    pub fn liveness(&self) -> Liveness {
        let me = current();
        if self.host != me.host {
            return Liveness::Elsewhere;
        }
        if self.boot != me.boot {
            return Liveness::Gone;
        }
        if self.pid == me.pid && self.started == me.started {
            return Liveness::Me;
        }
        match start_time(self.pid) {
            Some(t) if t == self.started => Liveness::Running,
            _ => Liveness::Gone,
        }
    }

    /// `pid 123 on host web1`.
    pub fn describe(&self) -> String {
        format!("pid {} on host {}", self.pid, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_me_and_a_dead_pid_is_gone() {
        let me = current().clone();
        assert!(me.started > 0 && !me.host.is_empty() && !me.boot.is_empty());
        assert_eq!(me.liveness(), Liveness::Me);
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = start_time(pid);
        let mut child = child;
        child.wait().unwrap();
        let dead = Identity {
            pid,
            started: started.unwrap_or(1),
            ..me.clone()
        };
        assert_eq!(dead.liveness(), Liveness::Gone);
        let reused = Identity {
            started: me.started + 1,
            ..me.clone()
        };
        assert_eq!(reused.liveness(), Liveness::Gone, "same pid, other start");
        let parent = Identity {
            pid: std::os::unix::process::parent_id(),
            started: start_time(std::os::unix::process::parent_id()).unwrap(),
            ..me.clone()
        };
        assert_eq!(parent.liveness(), Liveness::Running);
        let far = Identity {
            host: format!("{}-elsewhere", me.host),
            ..me.clone()
        };
        assert_eq!(far.liveness(), Liveness::Elsewhere);
    }
}
