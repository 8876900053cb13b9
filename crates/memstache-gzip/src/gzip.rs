//! The gzip [`Compressor`].

use std::cell::RefCell;

use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};
use memstache_core::raw::Compressor;
use memstache_core::{Error, ErrorKind, Result};

use crate::GzipConfig;
use crate::error::{bad_format, corrupt, too_large};

/// The level of [`Gzip::default`].
pub(crate) const DEFAULT_LEVEL: u32 = 1;

/// Largest ratio deflate can reach (RFC 1951: a 258-byte match in about 2 bits, plus slack);
/// a trailer claiming more than this many times its data is refused before allocating.
const MAX_DEFLATE_RATIO: usize = 1032;

/// Gzip (RFC 1952) compression on flate2's `zlib-rs` backend. Envelope id **1**.
///
/// Cheap to copy; the deflate and inflate states are kept per thread and reused across calls
/// and across `Gzip` values.
///
/// ```
/// use memstache_core::raw::Compressor;
/// use memstache_gzip::Gzip;
///
/// let gzip = Gzip::new(9)?;
/// assert_eq!((gzip.id(), gzip.name(), gzip.level()), (1, "gzip", 9));
/// assert_eq!(Gzip::default().level(), 1);
/// assert!(Gzip::new(10).is_err());
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gzip {
    level: u32,
}

impl Default for Gzip {
    /// Level 1: the fastest deflate level. On a cache's hot path the CPU time matters more
    /// than the last few percent of size.
    fn default() -> Self {
        Gzip {
            level: DEFAULT_LEVEL,
        }
    }
}

impl Gzip {
    /// Gzip at `level`, 0 (stored) to 9 (smallest); anything else is
    /// [`ErrorKind::InvalidConfig`].
    ///
    /// ```
    /// # use memstache_gzip::Gzip;
    /// let gzip = Gzip::new(6)?;
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn new(level: u32) -> Result<Self> {
        if level > 9 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "gzip level must be between 0 and 9",
            ));
        }
        Ok(Gzip { level })
    }

    /// Gzip configured from a [`GzipConfig`].
    ///
    /// ```
    /// # use memstache_gzip::{Gzip, GzipConfig};
    /// let gzip = Gzip::from_config(&GzipConfig::default())?;
    /// assert_eq!(gzip, Gzip::default());
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn from_config(config: &GzipConfig) -> Result<Self> {
        Gzip::new(config.level)
    }

    /// The compression level.
    ///
    /// ```
    /// # use memstache_gzip::Gzip;
    /// assert_eq!(Gzip::default().level(), 1);
    /// ```
    pub fn level(&self) -> u32 {
        self.level
    }
}

thread_local! {
    /// This thread's deflate state (gzip wrapper) and its level.
    static DEFLATE: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
    /// This thread's raw-inflate state (the gzip framing is parsed here, not by zlib).
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

impl Compressor for Gzip {
    fn id(&self) -> u8 {
        1
    }

    fn name(&self) -> &'static str {
        "gzip"
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let result = DEFLATE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let state = match slot.take() {
                    Some((level, mut c)) if level == self.level => {
                        c.reset();
                        c
                    }
                    _ => Compress::new_gzip(Compression::new(self.level), 15),
                };
                let (state, result) = deflate(state, input, out);
                *slot = Some((self.level, state));
                result
            }
            // Re-entered on this thread (cannot happen today): use a private state.
            Err(_) => {
                deflate(
                    Compress::new_gzip(Compression::new(self.level), 15),
                    input,
                    out,
                )
                .1
            }
        });
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn decompress(&self, input: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let result = INFLATE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let mut state = match slot.take() {
                    Some(mut d) => {
                        d.reset(false);
                        d
                    }
                    None => Decompress::new(false),
                };
                let result = gunzip(&mut state, input, max_len, out);
                *slot = Some(state);
                result
            }
            Err(_) => gunzip(&mut Decompress::new(false), input, max_len, out),
        });
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// Compresses `input` as one gzip member appended to `out`.
fn deflate(mut state: Compress, input: &[u8], out: &mut Vec<u8>) -> (Compress, Result<()>) {
    let start = out.len();
    // zlib's deflateBound for a gzip wrapper, rounded up.
    let mut room = input.len() + (input.len() >> 12) + (input.len() >> 14) + 64;
    loop {
        let len = out.len();
        out.resize(len + room, 0);
        let before_in = state.total_in();
        let before_out = state.total_out();
        let consumed = usize::try_from(before_in).unwrap_or(usize::MAX);
        let status = state.compress(
            input.get(consumed..).unwrap_or_default(),
            &mut out[len..],
            FlushCompress::Finish,
        );
        let written = usize::try_from(state.total_out() - before_out).unwrap_or(0);
        out.truncate(len + written);
        match status {
            Ok(Status::StreamEnd) => return (state, Ok(())),
            Ok(Status::Ok | Status::BufError) => {
                if written == 0 && state.total_in() == before_in {
                    let e = Error::new(ErrorKind::Compression, "gzip compression made no progress");
                    return (state, Err(e));
                }
                room = (out.len() - start).max(64);
            }
            Err(e) => {
                return (
                    state,
                    Err(
                        Error::new(ErrorKind::Compression, "gzip compression failed")
                            .with_source(e),
                    ),
                );
            }
        }
    }
}

/// Parses one gzip member from `input` and appends its content to `out`, bounded by `max_len`.
///
/// The trailer's ISIZE (the content length modulo 2^32) is untrusted, but it decides the one
/// allocation: it must be at most what deflate can expand this input to
/// ([`ErrorKind::Compression`]) and at most `max_len` ([`ErrorKind::ValueTooLarge`]). Room for exactly that many
/// bytes is reserved once (nothing when the caller reserved it already, as the cache does),
/// inflate writes straight into it, and a member whose content does not end exactly there is
/// refused. There is no growing buffer, so no second copy of the value ever exists. Contents of
/// 4 GiB or more cannot be described by ISIZE and are refused (the envelope's serialized length
/// is 32-bit too).
fn gunzip(state: &mut Decompress, input: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<()> {
    let header_len = parse_header(input)?;
    let body = &input[header_len..];
    let Some(trailer_at) = body.len().checked_sub(8) else {
        return Err(bad_format("gzip data is truncated"));
    };
    let trailer = &body[trailer_at..];
    let expected_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let expected_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    let size = usize::try_from(expected_len).unwrap_or(usize::MAX);
    // First the claim no deflate stream of this length can back (a corrupt or truncated
    // member), then the bound.
    if size > trailer_at.saturating_mul(MAX_DEFLATE_RATIO) {
        return Err(bad_format(
            "gzip length is more than its data can expand to",
        ));
    }
    if size > max_len {
        return Err(too_large());
    }

    let start = out.len();
    if out.capacity() - start < size {
        out.reserve_exact(size);
    }
    // Writes into the spare capacity only: never past it, never reallocating.
    let status = state
        .decompress_vec(&body[..trailer_at], out, FlushDecompress::Finish)
        .map_err(|e| corrupt("gzip data is corrupt", e))?;
    let produced = out.len() - start;
    let ended = match status {
        Status::StreamEnd => true,
        // The room is full but the stream has not ended: ask for one more byte. Nothing more
        // means the end marker was all that was left; a byte means the content is longer.
        _ if produced >= size => {
            let mut probe = [0u8; 1];
            let before = state.total_out();
            let status = state
                .decompress(
                    body.get(consumed(state)..trailer_at).unwrap_or_default(),
                    &mut probe,
                    FlushDecompress::Finish,
                )
                .map_err(|e| corrupt("gzip data is corrupt", e))?;
            if state.total_out() != before {
                return Err(longer_than(size, max_len));
            }
            status == Status::StreamEnd
        }
        _ => false,
    };
    if produced > size {
        return Err(longer_than(size, max_len));
    }
    if !ended {
        return Err(bad_format("gzip data is truncated"));
    }
    // What follows the deflate stream must be exactly the 8-byte trailer.
    if consumed(state) != trailer_at {
        return Err(bad_format("unexpected bytes after the gzip stream"));
    }
    if produced != size {
        return Err(bad_format("gzip length mismatch"));
    }
    let mut crc = Crc::new();
    crc.update(&out[start..]);
    if crc.sum() != expected_crc {
        return Err(bad_format("gzip CRC-32 mismatch"));
    }
    Ok(())
}

/// How much of the deflate stream `state` has read.
fn consumed(state: &Decompress) -> usize {
    usize::try_from(state.total_in()).unwrap_or(usize::MAX)
}

/// The content goes on past the `size` bytes its trailer declares: too large when that was the
/// whole budget, else a lying trailer.
fn longer_than(size: usize, max_len: usize) -> Error {
    if size >= max_len {
        too_large()
    } else {
        bad_format("gzip content is longer than its trailer says")
    }
}

/// Checks the RFC 1952 member header and returns its length.
fn parse_header(input: &[u8]) -> Result<usize> {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    const RESERVED: u8 = 0xe0;

    let truncated = || bad_format("gzip header is truncated");
    let fixed = input.get(..10).ok_or_else(truncated)?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b {
        return Err(bad_format("not gzip data (bad magic bytes)"));
    }
    if fixed[2] != 8 {
        return Err(bad_format("unsupported gzip compression method"));
    }
    let flags = fixed[3];
    if flags & RESERVED != 0 {
        return Err(bad_format("reserved gzip header flags are set"));
    }
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = input.get(pos..pos + 2).ok_or_else(truncated)?;
        pos += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        if pos > input.len() {
            return Err(truncated());
        }
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let nul = input
                .get(pos..)
                .and_then(|rest| rest.iter().position(|&b| b == 0))
                .ok_or_else(truncated)?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = input.get(pos..pos + 2).ok_or_else(truncated)?;
        let mut crc = Crc::new();
        crc.update(&input[..pos]);
        if (crc.sum() & 0xffff) != u32::from(u16::from_le_bytes([stored[0], stored[1]])) {
            return Err(bad_format("gzip header CRC mismatch"));
        }
        pos += 2;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests;
