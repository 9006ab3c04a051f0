//! Control flow for provisioning jobs: `transaction` (undo on failure) and
//! `parallel` (a bounded pool of threads running a script closure).
use crate::runtime::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::error::{ScriptError, ScriptResult};
use crate::runtime::journal;

/// Threads `parallel` uses unless `run --jobs N` says otherwise: Terraform's
/// default parallelism. Provisioning mostly waits on the daemon (QEMU
/// starting, volumes copying), so more calls in flight than cores pays.
pub const DEFAULT_JOBS: usize = 10;

/// Threads `parallel` may use (`run --jobs N`).
static JOBS: AtomicUsize = AtomicUsize::new(DEFAULT_JOBS);

pub fn set_jobs(n: usize) {
    JOBS.store(n.max(1), Ordering::Relaxed);
}

/// How many threads parallel work may use (`run --jobs N`, default 10).
pub fn jobs() -> usize {
    JOBS.load(Ordering::Relaxed).max(1)
}

/// Add `note` to the innermost error of a chain, keeping every position, and
/// attach `fields` to it (turning a non-map error into a catchable map).
fn annotate(
    mut err: Box<EvalAltResult>,
    note: &str,
    fields: &[(&str, Dynamic)],
) -> Box<EvalAltResult> {
    let leaf = super::error::unwind_mut(&mut err, |_, _| {});
    let pos = leaf.position();
    let mut map = match &*leaf {
        EvalAltResult::ErrorRuntime(value, _) => match value.read_lock::<Map>() {
            Some(m) => m.clone(),
            None => {
                let mut m = Map::new();
                m.insert("kind".into(), "thrown".into());
                m.insert("message".into(), value.to_string().into());
                m.insert("value".into(), value.clone());
                m
            }
        },
        // A stop (Ctrl-C, SIGTERM, --timeout) stays a stop: exit status 4.
        EvalAltResult::ErrorTerminated(token, _) => {
            let mut m = Map::new();
            m.insert("kind".into(), "stopped".into());
            m.insert("message".into(), format!("script {token}").into());
            m
        }
        other => {
            let text = other.to_string();
            let suffix = format!(" ({})", other.position());
            let mut m = Map::new();
            m.insert("kind".into(), "script".into());
            m.insert(
                "message".into(),
                text.strip_suffix(&suffix).unwrap_or(&text).into(),
            );
            m
        }
    };
    let message = map
        .get("message")
        .map(|m| m.to_string())
        .unwrap_or_default();
    map.insert("message".into(), format!("{message} ({note})").into());
    for (k, v) in fields {
        map.insert((*k).into(), v.clone());
    }
    *leaf = EvalAltResult::ErrorRuntime(map.into(), pos);
    err
}

/// The `field` and `value` of the innermost error map of a chain, if it has them.
fn leaf_field(err: &EvalAltResult) -> Option<(Dynamic, Dynamic)> {
    let EvalAltResult::ErrorRuntime(value, _) = super::error::innermost(err) else {
        return None;
    };
    let map = value.read_lock::<Map>()?;
    Some((map.get("field")?.clone(), map.get("value")?.clone()))
}

/// Roll back the innermost transaction and describe it on `err`.
pub fn rollback_into(err: Box<EvalAltResult>) -> Box<EvalAltResult> {
    describe_rollback(err, journal::rollback())
}

/// Describe a rollback on the error that caused it.
fn describe_rollback(err: Box<EvalAltResult>, r: journal::Rollback) -> Box<EvalAltResult> {
    let journal::Rollback {
        undone,
        failed,
        irreversible,
        connection_lost,
    } = r;
    // What could not be undone first: it is what the user must see and act
    // on, and a long list of undone steps is clipped on the terminal.
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!("FAILED to roll back: {}", failed.join("; ")));
    }
    if !undone.is_empty() {
        parts.push(format!("rolled back: {}", undone.join("; ")));
    }
    let note = if parts.is_empty() {
        "nothing to roll back".to_owned()
    } else {
        parts.join("; ")
    };
    let to_array = |v: &[String]| -> Dynamic {
        v.iter()
            .map(|s| Dynamic::from(s.clone()))
            .collect::<Array>()
            .into()
    };
    annotate(
        err,
        &note,
        &[
            ("rolled_back", to_array(&undone)),
            ("rollback_failed", to_array(&failed)),
            ("irreversible", to_array(&irreversible)),
            // The run lost libvirt while undoing: exit status 3, like any lost connection.
            ("connection_lost", Dynamic::from(connection_lost)),
        ],
    )
}

/// Run `f` as one unit: when it fails, undo what it changed on this thread
/// (like `transaction`, but apart from other threads), and say so on its error.
pub fn atomically<T>(f: impl FnOnce() -> ScriptResult<T>) -> ScriptResult<T> {
    journal::unit_begin();
    match f() {
        Ok(value) => {
            journal::unit_commit();
            Ok(value)
        }
        Err(err) => {
            let r = journal::unit_rollback();
            // Refused before anything changed: the error as it is.
            if r.undone.is_empty() && r.failed.is_empty() {
                return Err(err);
            }
            Err(describe_rollback(err, r))
        }
    }
}

#[export_module(manifest)]
pub mod control_api {
    use super::*;

    /// Run `f`; if it fails, undo every libvirt change it made (define → undefine,
    /// create volume → delete, start → destroy, ...) in reverse order and re-raise
    /// the error, which then lists what was rolled back (`e.rolled_back`).
    /// Returns `f`'s value when it succeeds.
    ///
    /// ```rhai
    /// let v = transaction(|| 40 + 2);
    /// assert_eq(v, 42);
    /// try {
    ///     transaction(|| { throw "step 3 failed"; });
    /// } catch (e) {
    ///     assert(e.message.contains("step 3 failed"));
    ///     assert_eq(e.rolled_back.len(), 0);
    /// }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn transaction(ctx: NativeCallContext, f: FnPtr) -> ScriptResult<Dynamic> {
        journal::begin();
        match f.call_within_context::<Dynamic>(&ctx, ()) {
            Ok(value) => {
                journal::commit();
                Ok(value)
            }
            Err(err) => Err(rollback_into(err)),
        }
    }

    /// `parallel` over a range of numbers: `parallel(0..20, |i| ...)`.
    ///
    /// ```rhai
    /// assert_eq(parallel(1..4, |i| i * 10), [10, 20, 30]);
    /// ```
    #[rhai_fn(name = "parallel", return_raw)]
    pub fn parallel_range(
        ctx: NativeCallContext,
        items: std::ops::Range<i64>,
        f: FnPtr,
    ) -> ScriptResult<Array> {
        parallel(ctx, items.map(Dynamic::from).collect(), f)
    }

    /// `parallel` over an inclusive range of numbers: `parallel(1..=20, |i| ...)`.
    ///
    /// ```rhai
    /// assert_eq(parallel(1..=3, |i| i * 10), [10, 20, 30]);
    /// ```
    #[rhai_fn(name = "parallel", return_raw)]
    pub fn parallel_range_inclusive(
        ctx: NativeCallContext,
        items: std::ops::RangeInclusive<i64>,
        f: FnPtr,
    ) -> ScriptResult<Array> {
        parallel(ctx, items.map(Dynamic::from).collect(), f)
    }

    /// Call `f(item)` for every item on a bounded pool of threads (`run --jobs N`,
    /// default 10) and return the results in the items' order. Each thread has its
    /// own copy of the variables the closure captures: return values rather than
    /// changing captured variables. If any calls fail,
    /// the others still finish, then one error lists them all (`e.errors`: index,
    /// item, message) with the successful `e.results`.
    ///
    /// ```rhai
    /// let squares = parallel([1, 2, 3, 4], |x| x * x);
    /// assert_eq(squares, [1, 4, 9, 16]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parallel(ctx: NativeCallContext, items: Array, f: FnPtr) -> ScriptResult<Array> {
        let n = items.len();
        let threads = JOBS.load(Ordering::Relaxed).min(n.max(1));
        let results: Vec<Mutex<Option<ScriptResult<Dynamic>>>> =
            (0..n).map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let host = journal::current_host();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    journal::set_current_host(&host);
                    // Each thread works on its own copy of the closure's captured
                    // variables (its own scope): shared captures would make
                    // concurrent method calls collide on Rhai's locks.
                    let mut f = f.clone();
                    let own: Vec<Dynamic> = f.iter_curry().map(Dynamic::flatten_clone).collect();
                    f.set_curry(own);
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            break;
                        }
                        let result = f.call_within_context::<Dynamic>(&ctx, (items[i].clone(),));
                        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                    }
                });
            }
        });
        let mut values = Array::with_capacity(n);
        let mut errors = Array::new();
        let mut first_message = String::new();
        let mut first_field: Option<(Dynamic, Dynamic)> = None;
        for (i, slot) in results.into_iter().enumerate() {
            match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Ok(v)) => values.push(v),
                Some(Err(err)) => {
                    if let EvalAltResult::ErrorTerminated(..) = *err {
                        return Err(err);
                    }
                    let (message, location) =
                        crate::api::error::describe(&err, ctx.call_source().unwrap_or("script"));
                    if first_message.is_empty() {
                        first_message = message.clone();
                        first_field = leaf_field(&err);
                    }
                    let mut e = Map::new();
                    e.insert("index".into(), (i as i64).into());
                    e.insert("item".into(), items[i].clone());
                    e.insert("message".into(), message.into());
                    if let Some(location) = location {
                        e.insert("location".into(), location.into());
                    }
                    errors.push(e.into());
                    values.push(Dynamic::UNIT);
                }
                None => values.push(Dynamic::UNIT),
            }
        }
        if errors.is_empty() {
            return Ok(values);
        }
        let message = format!(
            "{} of {n} parallel calls failed; first: {first_message}",
            errors.len()
        );
        let mut e = ScriptError::new(ErrorKind::Parallel, message)
            .with("errors", errors)
            .with("results", values);
        // The first failure's field and value, so that `e.field` works here too.
        if let Some((field, value)) = first_field {
            e = e.with("field", field).with("value", value);
        }
        Err(e.at(&ctx))
    }
}
