//! libvirt runs one allocation job per pool and refuses other volume calls
//! while it runs: the waiting and retrying that every pool and volume call
//! shares.
use std::time::{Duration, Instant};

use virt::error::Error;
use virt::storage_pool::StoragePool;

/// libvirt refuses some volume operations while a pool has a job running
/// ("pool 'x' has asynchronous jobs running", "volume 'y' is still being
/// allocated"): retry `op` with backoff (50 ms doubling to 1 s, 30 s in all),
/// giving up at once when the script is being stopped. Any other error is
/// returned as is.
pub fn with_pool_retry<T>(mut op: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delay = Duration::from_millis(50);
    loop {
        match op() {
            Err(e)
                if is_pool_busy(&e)
                    && Instant::now() + delay < deadline
                    && crate::runtime::stop::requested().is_none() =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Create something in `pool` (a volume, a clone) one at a time per pool within
/// this process, then with [`with_pool_retry`] for other clients' jobs. libvirt
/// runs one allocation job per pool; waiting on a lock here lets parallel
/// provisioning go on the moment the pool is free instead of sleeping in backoff.
pub fn create_in_pool<T>(
    pool: &StoragePool,
    op: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    static LOCKS: std::sync::Mutex<Vec<(String, std::sync::Arc<std::sync::Mutex<()>>)>> =
        std::sync::Mutex::new(Vec::new());
    let key = pool
        .uuid_string()
        .or_else(|_| pool.name())
        .unwrap_or_default();
    let lock = {
        let mut locks = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
        match locks.iter().find(|(k, _)| *k == key) {
            Some((_, l)) => l.clone(),
            None => {
                let l = std::sync::Arc::new(std::sync::Mutex::new(()));
                locks.push((key, l.clone()));
                l
            }
        }
    };
    let _turn = lock.lock().unwrap_or_else(|e| e.into_inner());
    with_pool_retry(op)
}

/// Whether an error is libvirt's "busy, try again" for pools and volumes.
pub fn is_pool_busy(e: &Error) -> bool {
    let m = e.message();
    m.contains("asynchronous jobs running") || m.contains("is still being allocated")
}
