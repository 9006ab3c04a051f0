//! Domain calls the `virt` crate (0.5) lacks: save to a file, block I/O tuning,
//! console streams, the state with its errors.
use std::ffi::CString;
use std::os::raw::c_int;

use virt::domain::Domain;
use virt::error::Error;
use virt::sys;

fn cstring(s: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| {
        // A NUL inside a path cannot reach libvirt; report it as libvirt would.
        Error::last_error()
    })
}

/// `virDomainSave`: save a running domain's memory to `path` and stop it.
pub fn save(dom: &Domain, path: &str) -> Result<(), Error> {
    let c = cstring(path)?;
    // SAFETY: valid domain pointer and NUL-terminated path.
    let rc = unsafe { sys::virDomainSave(dom.as_ptr(), c.as_ptr()) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// `virDomainSetBlockIoTune`: `params` are (name, value) pairs such as
/// `("total_bytes_sec", 1048576)`; `flags` are VIR_DOMAIN_AFFECT_*.
pub fn set_block_io_tune(
    dom: &Domain,
    disk: &str,
    params: &[(&str, u64)],
    flags: u32,
) -> Result<(), Error> {
    let disk = cstring(disk)?;
    let names: Vec<CString> = params
        .iter()
        .map(|(n, _)| cstring(n))
        .collect::<Result<_, _>>()?;
    let mut typed: Vec<sys::virTypedParameter> = Vec::with_capacity(params.len());
    for (name, (_, value)) in names.iter().zip(params) {
        // SAFETY: virTypedParameter is plain C data; zeroed is a valid start.
        let mut p: sys::virTypedParameter = unsafe { std::mem::zeroed() };
        let bytes = name.as_bytes_with_nul();
        if bytes.len() > p.field.len() {
            return Err(Error::last_error());
        }
        for (dst, src) in p.field.iter_mut().zip(bytes) {
            *dst = *src as std::os::raw::c_char;
        }
        p.type_ = sys::VIR_TYPED_PARAM_ULLONG as c_int;
        p.value.ul = *value;
        typed.push(p);
    }
    // SAFETY: `typed` holds `len` initialised parameters; strings outlive the call.
    let rc = unsafe {
        sys::virDomainSetBlockIoTune(
            dom.as_ptr(),
            disk.as_ptr(),
            typed.as_mut_ptr(),
            typed.len() as c_int,
            flags,
        )
    };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// `virDomainGetState`, with its failure reported: the `virt` crate's
/// `Domain::state` drops the return code, so a lost connection read as the
/// state "no state" (a clone refused "VM x is no state" instead of exit 3).
pub fn state(dom: &Domain) -> Result<virt::domain::DomainStateEnum, Error> {
    let mut state: c_int = -1;
    let mut reason: c_int = -1;
    // SAFETY: valid domain pointer; both out-parameters are valid ints.
    let rc = unsafe { sys::virDomainGetState(dom.as_ptr(), &mut state, &mut reason, 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(virt::domain::DomainStateEnum::from_raw(
        state as sys::virDomainState,
    ))
}
