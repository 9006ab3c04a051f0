//! Every mutating libvirt call a script makes is recorded here, in one place:
//! run reports list them, and open transactions keep their inverse to undo them.
//! Bindings call [`record`] right after a mutation succeeds.
use std::sync::Mutex;
use std::time::SystemTime;

/// How to reverse one mutation (define -> undefine, create volume -> delete...).
pub type Undo = Box<dyn FnOnce() -> Result<(), virt::error::Error> + Send>;

thread_local! {
    static CURRENT_HOST: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    /// Units one call opened on this thread ([`unit_begin`]): its own steps,
    /// kept apart from other threads' (a `parallel` pool shares the frames).
    static UNITS: std::cell::RefCell<Vec<Vec<Step>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Label this thread's changes with the host it works on (multi-host runs).
pub fn set_current_host(uri: &str) {
    CURRENT_HOST.with(|h| *h.borrow_mut() = uri.to_owned());
}

pub fn current_host() -> String {
    CURRENT_HOST.with(|h| h.borrow().clone())
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// The host URI the change was made on.
    pub host: String,
    /// What was done: `define_network`, `start`, `create_volume`, ...
    pub action: String,
    /// The object it was done to: `network lab`, `volume default/kvm1.qcow2`, ...
    pub object: String,
    pub at: SystemTime,
}

struct Journal {
    entries: Vec<Entry>,
    /// Everything undone by rollbacks, and undo steps that failed, for reports.
    rolled_back: Vec<String>,
    rollback_failed: Vec<String>,
    /// Changes made inside transactions that were rolled back and that no
    /// undo step can reverse (a deleted volume), for reports.
    irreversible: Vec<String>,
    /// One frame per open transaction, innermost last.
    transactions: Vec<Vec<Step>>,
}

/// One change in an open transaction: how to undo it, or that it cannot be.
enum Step {
    Undo(String, Undo),
    Irreversible(String),
}

static JOURNAL: Mutex<Journal> = Mutex::new(Journal {
    entries: Vec::new(),
    rolled_back: Vec::new(),
    rollback_failed: Vec::new(),
    irreversible: Vec::new(),
    transactions: Vec::new(),
});

/// Record a successful mutation, with how to undo it when it can be undone.
pub fn record(action: &str, object: impl Into<String>, undo: Option<Undo>) {
    record_with(action, object, || undo);
}

/// [`record`], building the undo step only when an open transaction will
/// keep it: most runs open none, and an undo step may take a libvirt
/// reference or read state first.
pub fn record_with(action: &str, object: impl Into<String>, undo: impl FnOnce() -> Option<Undo>) {
    let object = object.into();
    let host = current_host();
    tracing::info!(
        action,
        object = object.as_str(),
        host = host.as_str(),
        "changed"
    );
    // Built outside the lock: it may call libvirt.
    let undo = if wants_undo() { undo() } else { None };
    let step = undo.map(|undo| Step::Undo(format!("{action} {object}"), undo));
    let step = keep_in_unit(step);
    let mut journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(frame), Some(step)) = (journal.transactions.last_mut(), step) {
        frame.push(step);
    }
    journal.entries.push(Entry {
        host,
        action: action.to_owned(),
        object,
        at: SystemTime::now(),
    });
}

/// Record a successful mutation that cannot be undone (data deleted): an
/// open transaction lists it, so that a rollback says what it could not
/// put back instead of keeping silent about it.
pub fn record_irreversible(action: &str, object: impl Into<String>) {
    let object = object.into();
    record(action, object.clone(), None);
    let step = keep_in_unit(Some(Step::Irreversible(format!("{action} {object}"))));
    let mut journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(frame), Some(step)) = (journal.transactions.last_mut(), step) {
        frame.push(step);
    }
}

/// Put `step` into this thread's innermost unit, if one is open; else give it back.
fn keep_in_unit(step: Option<Step>) -> Option<Step> {
    let step = step?;
    UNITS.with(|units| match units.borrow_mut().last_mut() {
        Some(unit) => {
            unit.push(step);
            None
        }
        None => Some(step),
    })
}

/// Open a unit on this thread: one call's changes (`ensure_network`'s
/// define, start and live updates) that are undone together when it fails,
/// whatever other threads do meanwhile.
pub fn unit_begin() {
    UNITS.with(|units| units.borrow_mut().push(Vec::new()));
}

/// Close this thread's innermost unit keeping its changes: an enclosing
/// unit, else the innermost open transaction, inherits their undo steps.
pub fn unit_commit() {
    let Some(steps) = UNITS.with(|units| units.borrow_mut().pop()) else {
        return;
    };
    let steps = UNITS.with(|units| match units.borrow_mut().last_mut() {
        Some(outer) => {
            outer.extend(steps);
            Vec::new()
        }
        None => steps,
    });
    let mut journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(frame) = journal.transactions.last_mut() {
        frame.extend(steps);
    }
}

/// Close this thread's innermost unit undoing its changes in reverse order.
pub fn unit_rollback() -> Rollback {
    let steps = UNITS
        .with(|units| units.borrow_mut().pop())
        .unwrap_or_default();
    undo_steps(steps)
}

/// Whether an undo step would be kept (a transaction is open), so that a
/// binding can skip reading state that only an undo needs.
pub fn wants_undo() -> bool {
    UNITS.with(|units| !units.borrow().is_empty())
        || !JOURNAL
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .transactions
            .is_empty()
}

/// All mutations recorded so far in this process.
pub fn entries() -> Vec<Entry> {
    JOURNAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entries
        .clone()
}

/// How many mutations have been recorded (recipes use it to prove a re-run changed nothing).
pub fn count() -> usize {
    JOURNAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entries
        .len()
}

/// Open a transaction frame.
pub fn begin() {
    JOURNAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .transactions
        .push(Vec::new());
}

/// Close the innermost frame keeping its changes; an enclosing transaction
/// inherits the undo steps so that it can still roll everything back.
pub fn commit() {
    let mut journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(frame) = journal.transactions.pop() {
        if let Some(outer) = journal.transactions.last_mut() {
            outer.extend(frame);
        }
    }
}

/// What a rollback did: undone steps, undo steps that failed, and changes
/// that cannot be undone (listed in `failed` too, so no report misses them).
#[derive(Debug, Default, Clone)]
pub struct Rollback {
    pub undone: Vec<String>,
    pub failed: Vec<String>,
    pub irreversible: Vec<String>,
    /// An undo step failed because the connection to libvirt is gone.
    pub connection_lost: bool,
}

/// Close the innermost frame undoing its changes in reverse order.
pub fn rollback() -> Rollback {
    let frame = JOURNAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .transactions
        .pop()
        .unwrap_or_default();
    undo_steps(frame)
}

fn undo_steps(steps: Vec<Step>) -> Rollback {
    let mut r = Rollback::default();
    for step in steps.into_iter().rev() {
        match step {
            Step::Undo(what, undo) => match undo() {
                Ok(()) => r.undone.push(what),
                Err(e) => {
                    let code = e.code().to_raw();
                    let lost = matches!(
                        code,
                        virt::sys::VIR_ERR_NO_CONNECT
                            | virt::sys::VIR_ERR_RPC
                            | virt::sys::VIR_ERR_INVALID_CONN
                    ) || format!("{:?}", e.domain()).contains("Rpc");
                    r.connection_lost |= lost;
                    let why = if lost {
                        format!("the connection to libvirt was lost: {}", e.message())
                    } else {
                        e.message().to_owned()
                    };
                    r.failed.push(format!("{what}: {why}"));
                }
            },
            Step::Irreversible(what) => {
                r.failed.push(format!("{what}: cannot be undone"));
                r.irreversible.push(what);
            }
        }
    }
    let mut journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    journal.rolled_back.extend(r.undone.iter().cloned());
    journal.rollback_failed.extend(r.failed.iter().cloned());
    journal.irreversible.extend(r.irreversible.iter().cloned());
    r
}

/// Everything rolled back in this process so far, and what failed to roll back.
pub fn rolled_back() -> (Vec<String>, Vec<String>) {
    let journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    (journal.rolled_back.clone(), journal.rollback_failed.clone())
}

/// Changes inside rolled-back transactions that could not be undone.
pub fn irreversible() -> Vec<String> {
    JOURNAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .irreversible
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counting_undo(n: &Arc<AtomicUsize>) -> Option<Undo> {
        let n = n.clone();
        Some(Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
    }

    #[test]
    fn a_unit_undoes_its_own_steps_and_hands_kept_ones_to_the_transaction() {
        let undone = Arc::new(AtomicUsize::new(0));
        // Rolled back on its own: only its steps, in reverse.
        unit_begin();
        record("define_network", "network a", counting_undo(&undone));
        record_irreversible("delete_volume", "volume p/v");
        let r = unit_rollback();
        assert_eq!(undone.load(Ordering::SeqCst), 1);
        assert_eq!(r.undone, ["define_network network a"]);
        assert_eq!(r.irreversible, ["delete_volume volume p/v"]);
        assert!(!r.connection_lost);
        // Committed inside a transaction: the transaction can still undo it.
        begin();
        unit_begin();
        record("define_network", "network b", counting_undo(&undone));
        unit_commit();
        let r = rollback();
        assert_eq!(undone.load(Ordering::SeqCst), 2);
        assert_eq!(r.undone, ["define_network network b"]);
        // Another thread's unit is its own.
        unit_begin();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(!wants_undo() || !JOURNAL.lock().unwrap().transactions.is_empty());
            });
        });
        assert!(unit_rollback().undone.is_empty());
    }
}
