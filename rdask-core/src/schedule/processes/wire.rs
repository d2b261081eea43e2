//! Frames between the parent and a worker: a one-byte kind, a little-endian
//! `u32` length, then that many bytes. Requests carry a function's name and
//! its encoded arguments; replies carry an encoded result or a message.

use std::io::{self, Read, Write};

/// The variable that turns a process into a worker (see `worker`).
pub(crate) const ENV: &str = "RDASK_WORKER";

/// Refuse frames larger than this (a corrupt length must not make the
/// reader allocate gigabytes).
pub const MAX_FRAME: usize = 1 << 30;

/// Frame kinds.
pub mod kind {
    /// Parent -> worker: run `name\0args`.
    pub const RUN: u8 = 1;
    /// Worker -> parent: the encoded result.
    pub const OK: u8 = 2;
    /// Worker -> parent: the task returned `Err` (message).
    pub const TASK_ERR: u8 = 3;
    /// Worker -> parent: the task panicked (message).
    pub const PANIC: u8 = 4;
    /// Worker -> parent: no such function, or undecodable arguments.
    pub const BAD_REQUEST: u8 = 5;
    /// Worker -> parent, once at start: ready.
    pub const HELLO: u8 = 6;
    /// Worker -> parent: the arguments could not be decoded.
    pub const DECODE_ERR: u8 = 7;
    /// Worker -> parent: the result is too big for a frame (message).
    pub const TOO_BIG: u8 = 8;
    /// Worker -> parent: the result could not be encoded (message).
    pub const ENCODE_ERR: u8 = 9;
    /// Parent -> worker: run `name\0offset args`, the worker's last
    /// result inserted into `args` at byte `offset` (a little-endian `u32`):
    /// a chain's next link, sent with the link before it.
    pub const RUN_NEXT: u8 = 10;
    /// Worker -> parent: a `RUN_NEXT` not run, as the call before it failed
    /// (message).
    pub const SKIPPED: u8 = 11;
}

/// Whether a frame of `len` bytes may be sent.
pub fn fits(len: usize) -> bool {
    len <= MAX_FRAME
}

/// What a refused frame of `len` bytes is told with.
pub fn too_big(what: &str, len: usize) -> String {
    format!(
        "{what}: {len} bytes encoded, more than the {} MiB that one message between \
         rdask and a worker process may hold",
        MAX_FRAME >> 20
    )
}

/// Writes a frame and flushes it.
pub fn write_frame(w: &mut impl Write, kind: u8, parts: &[&[u8]]) -> io::Result<()> {
    put_frame(w, kind, parts)?;
    w.flush()
}

/// Writes a frame, leaving it in `w`'s buffer if it has one.
pub fn put_frame(w: &mut impl Write, kind: u8, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len)
        .ok()
        .filter(|&l| fits(l as usize))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&len.to_le_bytes());
    w.write_all(&head)?;
    for p in parts {
        w.write_all(p)?;
    }
    Ok(())
}

pub fn read_frame(r: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if !fits(len) || !(kind::RUN..=kind::SKIPPED).contains(&head[0]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt frame (kind {}, length {len})", head[0]),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok((head[0], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_corruption_is_an_error() {
        let mut buf = Vec::new();
        write_frame(&mut buf, kind::RUN, &[b"f\0", b"args"]).unwrap();
        let (k, body) = read_frame(&mut &buf[..]).unwrap();
        assert_eq!((k, &body[..]), (kind::RUN, &b"f\0args"[..]));
        let bad = [99u8, 0, 0, 0, 0];
        assert_eq!(
            read_frame(&mut &bad[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let huge = [kind::OK, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut &huge[..]).is_err());
        let short = [kind::OK, 9, 0, 0, 0, 1, 2];
        assert_eq!(
            read_frame(&mut &short[..]).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
