//! Host-level calls: `virNodeGetMemoryStats`.
use std::ffi::CStr;
use std::os::raw::c_int;

use virt::connect::Connect;
use virt::error::Error;
use virt::sys;

/// `virNodeGetMemoryStats` for all cells: (field name, value in KiB), in libvirt's order
/// (`total`, `free`, `buffers`, `cached` on Linux).
pub fn memory_stats(conn: &Connect) -> Result<Vec<(String, u64)>, Error> {
    let cell = sys::VIR_NODE_MEMORY_STATS_ALL_CELLS as c_int;
    let mut count: c_int = 0;
    // SAFETY: a null params pointer asks libvirt only for the number of fields.
    let rc = unsafe {
        sys::virNodeGetMemoryStats(conn.as_ptr(), cell, std::ptr::null_mut(), &mut count, 0)
    };
    if rc < 0 {
        return Err(Error::last_error());
    }
    if count <= 0 {
        return Ok(Vec::new());
    }
    let mut params = vec![
        sys::virNodeMemoryStats {
            field: [0; 80],
            value: 0
        };
        count as usize
    ];
    // SAFETY: `params` holds `count` initialised entries, as libvirt was told.
    let rc = unsafe {
        sys::virNodeGetMemoryStats(conn.as_ptr(), cell, params.as_mut_ptr(), &mut count, 0)
    };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(params
        .iter()
        .take(count.max(0) as usize)
        .map(|p| {
            // SAFETY: libvirt NUL-terminates `field` within its fixed length.
            let name = unsafe { CStr::from_ptr(p.field.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            (name, p.value)
        })
        .collect())
}
