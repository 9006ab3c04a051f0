//! Every mutating libvirt call a script makes is recorded here, in one place:
//! run reports list them, and open transactions keep their inverse to undo them.
//! Bindings call [`record`] right after a mutation succeeds.
use std::sync::Mutex;
use std::time::SystemTime;

/// How to reverse one mutation (define -> undefine, create volume -> delete...).
pub type Undo = Box<dyn FnOnce() -> Result<(), virt::error::Error> + Send>;

thread_local! {
    static CURRENT_HOST: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
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
    /// One frame per open transaction, innermost last: (description, undo).
    transactions: Vec<Vec<(String, Undo)>>,
}

static JOURNAL: Mutex<Journal> = Mutex::new(Journal {
    entries: Vec::new(),
    rolled_back: Vec::new(),
    rollback_failed: Vec::new(),
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
    let mut journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(frame), Some(undo)) = (journal.transactions.last_mut(), undo) {
        frame.push((format!("{action} {object}"), undo));
    }
    journal.entries.push(Entry {
        host,
        action: action.to_owned(),
        object,
        at: SystemTime::now(),
    });
}

/// Whether an undo step would be kept (a transaction is open), so that a
/// binding can skip reading state that only an undo needs.
pub fn wants_undo() -> bool {
    !JOURNAL
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

/// Close the innermost frame undoing its changes in reverse order. Returns
/// what was undone and what failed to undo.
pub fn rollback() -> (Vec<String>, Vec<String>) {
    let frame = JOURNAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .transactions
        .pop()
        .unwrap_or_default();
    let mut undone = Vec::new();
    let mut failed = Vec::new();
    for (what, undo) in frame.into_iter().rev() {
        match undo() {
            Ok(()) => undone.push(what),
            Err(e) => failed.push(format!("{what}: {}", e.message())),
        }
    }
    let mut journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    journal.rolled_back.extend(undone.iter().cloned());
    journal.rollback_failed.extend(failed.iter().cloned());
    (undone, failed)
}

/// Everything rolled back in this process so far, and what failed to roll back.
pub fn rolled_back() -> (Vec<String>, Vec<String>) {
    let journal = JOURNAL.lock().unwrap_or_else(|e| e.into_inner());
    (journal.rolled_back.clone(), journal.rollback_failed.clone())
}
