//! Sparse stream calls the `virt` crate lacks: `virStreamSendHole`,
//! `virStreamRecvFlags(VIR_STREAM_RECV_STOP_AT_HOLE)` and `virStreamRecvHole`.
//! With them, volume upload/download (with the `*_SPARSE_STREAM` flags) move
//! holes as a length instead of as zeros.
use std::os::raw::{c_char, c_longlong, c_uint};

use virt::error::Error;
use virt::stream::Stream;
use virt::sys;

/// What one receive gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// This many bytes of data were written into the buffer.
    Data(usize),
    /// A hole of this many bytes comes next in the stream.
    Hole(u64),
    /// The stream has ended.
    End,
}

/// Tell the receiver that `length` bytes of hole come next (`virStreamSendHole`).
pub fn send_hole(stream: &Stream, length: u64) -> Result<(), Error> {
    let length = length.min(c_longlong::MAX as u64) as c_longlong;
    // SAFETY: the stream pointer is valid for the life of `stream`.
    let rc = unsafe { sys::virStreamSendHole(stream.as_ptr(), length, 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok(())
}

/// Receive data, stopping at a hole and reporting its length
/// (`virStreamRecvFlags` with `VIR_STREAM_RECV_STOP_AT_HOLE`, then `virStreamRecvHole`).
pub fn recv_sparse(stream: &Stream, buf: &mut [u8]) -> Result<Received, Error> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let rc = unsafe {
        sys::virStreamRecvFlags(
            stream.as_ptr(),
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            sys::VIR_STREAM_RECV_STOP_AT_HOLE as c_uint,
        )
    };
    match rc {
        0 => Ok(Received::End),
        n if n > 0 => Ok(Received::Data(n as usize)),
        -3 => {
            let mut length: c_longlong = 0;
            // SAFETY: `length` is a valid out-pointer.
            let rc = unsafe { sys::virStreamRecvHole(stream.as_ptr(), &mut length, 0) };
            if rc < 0 {
                return Err(Error::last_error());
            }
            Ok(Received::Hole(length.max(0) as u64))
        }
        _ => Err(Error::last_error()),
    }
}

/// Send all of `data`: `virStreamSend` may take less than it is given.
pub fn send_all(stream: &Stream, data: &[u8]) -> Result<(), Error> {
    let mut done = 0;
    while done < data.len() {
        let n = stream.send(&data[done..])?;
        done += usize::try_from(n).unwrap_or(0);
    }
    Ok(())
}
