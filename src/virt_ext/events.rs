//! Domain lifecycle events: libvirt's default event loop plus
//! `virConnectDomainEventRegisterAny`, which the `virt` crate (0.5) does not wrap.
//!
//! libvirt delivers events only to clients that run an event loop, and the
//! loop implementation must be registered (`virEventRegisterDefaultImpl`)
//! BEFORE a connection is opened: a connection opened earlier never hands its
//! socket to the loop, so it would never see an event. [`init`] therefore runs
//! once, lazily, from `Host::open` before the first connection of the process.
//! The thread that runs `virEventRunDefaultImpl` for ever ([`run_loop`]) starts
//! with the first connection to a daemon (its keepalive needs the loop), or
//! for libvirt's in-process test driver only when events are first watched: a
//! process without threads keeps glibc's single-threaded malloc, which makes
//! the test driver's calls about 10 % faster.
//!
//! Each connection gets one lifecycle callback for all its domains
//! ([`watch`]); the callback only bumps a counter and wakes the waiters, who
//! then ask libvirt for the domain's state once. Waiting is therefore driven
//! by events, not by polling libvirt.
use std::collections::BTreeMap;
use std::os::raw::{c_int, c_void};
use std::sync::{Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::error::Error;
use virt::sys;

static INIT: Once = Once::new();
static LOOP_OK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Events seen so far: a counter per domain UUID plus a global one.
struct Seen {
    generation: u64,
    /// connection pointer (as usize) -> callback id, one per connection.
    watched: BTreeMap<usize, c_int>,
}

static SEEN: Mutex<Seen> = Mutex::new(Seen {
    generation: 0,
    watched: BTreeMap::new(),
});
static CHANGED: Condvar = Condvar::new();

static RUN: Once = Once::new();

/// Register libvirt's default event loop implementation. Idempotent; must run
/// before the first connection is opened (see the module doc).
pub fn init() {
    INIT.call_once(|| {
        // SAFETY: a plain libvirt call without arguments; registration happens
        // once per process, before any connection exists.
        let rc = unsafe { sys::virEventRegisterDefaultImpl() };
        if rc >= 0 {
            LOOP_OK.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
}

/// Run the registered loop on a background thread, once per process.
pub fn run_loop() {
    init();
    RUN.call_once(|| {
        if !LOOP_OK.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| loop {
                // SAFETY: runs one iteration of the loop registered by `init`.
                if unsafe { sys::virEventRunDefaultImpl() } < 0 {
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        if spawned.is_err() {
            LOOP_OK.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    });
}

unsafe extern "C" fn lifecycle_callback(
    _conn: sys::virConnectPtr,
    _dom: sys::virDomainPtr,
    _event: c_int,
    _detail: c_int,
    _opaque: *mut c_void,
) {
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    seen.generation = seen.generation.wrapping_add(1);
    CHANGED.notify_all();
}

/// Make sure lifecycle events of `conn` reach [`wait_until`]. Once per connection.
pub fn watch(conn: &Connect) -> Result<(), Error> {
    run_loop();
    if !LOOP_OK.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::last_error());
    }
    // SAFETY: the pointer is only used as an identity key and for the call below.
    let ptr = unsafe { conn.as_ptr() };
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.watched.contains_key(&(ptr as usize)) {
        return Ok(());
    }
    // The lifecycle callback has the 5-argument signature; libvirt's API takes it
    // as the generic callback type and calls it with the right arguments.
    type Lifecycle =
        unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, c_int, c_int, *mut c_void);
    let cb: Lifecycle = lifecycle_callback;
    // SAFETY: documented libvirt pattern (VIR_DOMAIN_EVENT_CALLBACK): the callback
    // matches VIR_DOMAIN_EVENT_ID_LIFECYCLE's signature; no opaque data to free.
    // libvirt keeps a reference on the connection while the callback is
    // registered, so its address stays unique as long as it is in `watched`.
    let id = unsafe {
        let generic: sys::virConnectDomainEventGenericCallback = Some(std::mem::transmute::<
            Lifecycle,
            unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void),
        >(cb));
        sys::virConnectDomainEventRegisterAny(
            ptr,
            std::ptr::null_mut(),
            sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            generic,
            std::ptr::null_mut(),
            None,
        )
    };
    if id < 0 {
        return Err(Error::last_error());
    }
    seen.watched.insert(ptr as usize, id);
    Ok(())
}

/// Stop watching a connection's events (before it is closed).
pub fn unwatch(conn: &Connect) {
    // SAFETY: identity key and the matching deregistration call.
    let ptr = unsafe { conn.as_ptr() };
    let id = SEEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .watched
        .remove(&(ptr as usize));
    if let Some(id) = id {
        // SAFETY: `id` was returned by virConnectDomainEventRegisterAny on `ptr`.
        unsafe {
            sys::virConnectDomainEventDeregisterAny(ptr, id);
        }
    }
}

/// Why [`wait_until`] gave up.
#[derive(Debug)]
pub enum WaitEnd<E> {
    TimedOut,
    Stopped(crate::runtime::stop::StopReason),
    Failed(E),
}

/// Wait until `done()` returns true: `done` is asked once at the start and again
/// after every lifecycle event; between events the thread sleeps on a condition
/// variable, waking only to notice Ctrl-C / `--timeout` (`stop::requested`).
pub fn wait_until<E>(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, E>,
) -> Result<(), WaitEnd<E>> {
    let deadline = Instant::now() + timeout;
    let mut last = SEEN.lock().unwrap_or_else(|e| e.into_inner()).generation;
    loop {
        if done().map_err(WaitEnd::Failed)? {
            return Ok(());
        }
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        while seen.generation == last {
            if let Some(reason) = crate::runtime::stop::requested() {
                return Err(WaitEnd::Stopped(reason));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitEnd::TimedOut);
            }
            let slice = (deadline - now).min(Duration::from_millis(100));
            seen = CHANGED
                .wait_timeout(seen, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        last = seen.generation;
    }
}
