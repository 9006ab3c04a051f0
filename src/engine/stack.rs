//! A guard for the native stack. Rhai evaluates a script function call by
//! recursing in Rust, so deep script recursion with a generous
//! `--max-call-depth` would overflow the stack and abort the process (no error,
//! no report, the REPL gone). The engine's progress hook, called between
//! operations, asks [`exhausted`]: once less than a reserve of the current
//! thread's stack is left, the script is stopped with [`TOKEN`]. Every thread
//! that runs script code (the main one, `--connect` hosts, `parallel()`) is
//! covered, whatever its stack size.
use std::cell::Cell;

/// Why the script was stopped (the `ErrorTerminated` token).
pub const TOKEN: &str = "ran out of stack: functions are nested deeper than this thread's stack can hold (lower --max-call-depth, or recurse less)";

thread_local! {
    /// The lowest stack address the script may reach on this thread; 0 until computed.
    static FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// The reserve kept free: a quarter of the stack, at least 256 KiB, enough for
/// the deepest native work between two operations (a libvirt call, a parse).
fn reserve(size: usize) -> usize {
    (size / 4).max(256 * 1024)
}

/// This thread's stack: (lowest address, size), from glibc.
fn bounds() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialised by pthread_getattr_np before use and
    // destroyed after; the out-pointers are valid locals.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (rc == 0 && size > 0).then_some((addr as usize, size))
    }
}

fn floor() -> usize {
    FLOOR.with(|f| {
        if f.get() == 0 {
            // Unknown bounds: 1, so the guard never fires (the old behaviour).
            let floor = bounds().map_or(1, |(low, size)| low.saturating_add(reserve(size)));
            f.set(floor);
        }
        f.get()
    })
}

/// Whether the current thread's stack is down to its reserve.
#[inline]
pub fn exhausted() -> bool {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    here < floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recurse(depth: usize) -> usize {
        if exhausted() {
            return depth;
        }
        let pad = std::hint::black_box([0u8; 1024]);
        recurse(depth + 1) + pad[0] as usize
    }

    #[test]
    fn a_thread_stops_well_before_its_stack_ends() {
        // 1 MiB stack, 256 KiB reserve: at 1+ KiB a frame, a few hundred frames.
        let depth = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| recurse(0))
            .unwrap()
            .join()
            .unwrap();
        assert!((100..1024).contains(&depth), "{depth}");
        assert!(!exhausted(), "the test thread itself has room");
    }
}
