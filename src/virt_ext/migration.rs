//! Migration calls the `virt` crate (0.5) lacks: aborting the running job,
//! switching a migration to post-copy, and comparing a guest CPU with what a
//! host's hypervisor can provide.
use std::ffi::CString;
use std::os::raw::c_int;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

/// `virDomainAbortJob`: cancel the domain's running job (a migration); the
/// domain stays where it was.
pub fn abort_job(dom: &Domain) -> Result<(), Error> {
    // SAFETY: a valid domain pointer.
    let rc = unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// `virDomainMigrateStartPostCopy`: switch a running migration that was started
/// with VIR_MIGRATE_POSTCOPY from pre-copy to post-copy.
pub fn start_post_copy(dom: &Domain) -> Result<(), Error> {
    // SAFETY: a valid domain pointer; flags must be 0.
    let rc = unsafe { sys::virDomainMigrateStartPostCopy(dom.as_ptr(), 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// How a guest CPU compares with what a host's hypervisor offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuFit {
    /// The hypervisor can run the CPU as defined (identical or superset).
    Compatible,
    /// The hypervisor lacks features the CPU definition requires.
    Incompatible,
}

/// `virConnectCompareHypervisorCPU`: compare `cpu_xml` (a `<cpu>` element)
/// with the CPU the hypervisor of `virt_type`/`arch`/`machine` can provide on
/// `conn`'s host (not the host's physical CPU: under TCG that is what counts).
pub fn compare_hypervisor_cpu(
    conn: &Connect,
    virt_type: Option<&str>,
    arch: Option<&str>,
    machine: Option<&str>,
    cpu_xml: &str,
) -> Result<CpuFit, Error> {
    let to_c = |s: Option<&str>| s.map(CString::new).transpose();
    let bad_nul = |_| Error::last_error();
    let virt_type = to_c(virt_type).map_err(bad_nul)?;
    let arch = to_c(arch).map_err(bad_nul)?;
    let machine = to_c(machine).map_err(bad_nul)?;
    let xml = CString::new(cpu_xml).map_err(bad_nul)?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: valid connection; every string is NUL-terminated or null and
    // outlives the call.
    let rc: c_int = unsafe {
        sys::virConnectCompareHypervisorCPU(
            conn.as_ptr(),
            std::ptr::null(),
            ptr(&arch),
            ptr(&machine),
            ptr(&virt_type),
            xml.as_ptr(),
            0,
        )
    };
    match rc {
        r if r < 0 => Err(Error::last_error()),
        r if r == sys::VIR_CPU_COMPARE_INCOMPATIBLE as c_int => Ok(CpuFit::Incompatible),
        _ => Ok(CpuFit::Compatible),
    }
}

/// A running job's progress (`virsh domjobinfo`), the fields migration shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobProgress {
    pub data_total: Option<u64>,
    pub data_processed: Option<u64>,
    pub data_remaining: Option<u64>,
    /// Pages dirtied per second.
    pub memory_dirty_rate: Option<u64>,
    pub memory_page_size: Option<u64>,
    /// Passes over guest memory so far (1 once every page was sent once).
    pub memory_iteration: Option<u64>,
}

/// `virDomainGetJobStats` for the running job. (The `virt` crate's
/// `job_stats` builds a Vec from libvirt's null pointer when no job runs,
/// which is undefined behaviour and aborts debug builds.)
pub fn job_progress(dom: &Domain) -> Result<Option<JobProgress>, Error> {
    let mut job_type: c_int = 0;
    let mut params: sys::virTypedParameterPtr = std::ptr::null_mut();
    let mut count: c_int = 0;
    // SAFETY: valid domain; libvirt allocates `params` (or leaves it null).
    let rc = unsafe {
        sys::virDomainGetJobStats(dom.as_ptr(), &mut job_type, &mut params, &mut count, 0)
    };
    if rc < 0 {
        return Err(Error::last_error());
    }
    if params.is_null() || count <= 0 {
        return Ok(None);
    }
    let mut progress = JobProgress::default();
    // SAFETY: libvirt returned `count` initialised parameters at `params`.
    let slice = unsafe { std::slice::from_raw_parts(params, count as usize) };
    for p in slice {
        // SAFETY: `field` is a NUL-terminated name of at most VIR_TYPED_PARAM_FIELD_LENGTH.
        let name = unsafe { std::ffi::CStr::from_ptr(p.field.as_ptr()) }.to_string_lossy();
        if p.type_ != sys::VIR_TYPED_PARAM_ULLONG as c_int {
            continue;
        }
        // SAFETY: the type says the union holds an unsigned long long.
        let value = Some(unsafe { p.value.ul });
        match name.as_ref() {
            "data_total" => progress.data_total = value,
            "data_processed" => progress.data_processed = value,
            "data_remaining" => progress.data_remaining = value,
            "memory_dirty_rate" => progress.memory_dirty_rate = value,
            "memory_page_size" => progress.memory_page_size = value,
            "memory_iteration" => progress.memory_iteration = value,
            _ => {}
        }
    }
    // SAFETY: frees what virDomainGetJobStats allocated, once.
    unsafe { sys::virTypedParamsFree(params, count) };
    Ok(Some(progress))
}
