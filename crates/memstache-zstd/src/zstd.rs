//! The zstd [`Compressor`].

use std::cell::RefCell;

use memstache_core::raw::Compressor;
use memstache_core::{Error, ErrorKind, Result};
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, ResetDirective};

use crate::config::{DEFAULT_LEVEL, ZstdConfig};
use crate::error::{bad_format, too_large, zstd_failed};

/// Zstandard compression. Envelope id **2**.
///
/// Cheap to copy; compression and decompression contexts are kept per thread and reused
/// across calls and across `Zstd` values (parameters are re-applied only when they differ).
///
/// ```
/// use memstache_core::raw::Compressor;
/// use memstache_zstd::Zstd;
///
/// let zstd = Zstd::new(3)?;
/// assert_eq!((zstd.id(), zstd.name(), zstd.level()), (2, "zstd", 3));
/// assert_eq!(Zstd::default().level(), 1);
/// assert!(Zstd::new(23).is_err());
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zstd {
    level: i32,
    checksum: bool,
}

impl Default for Zstd {
    /// Level 1 with content checksums: the fastest regular level. On a cache's hot path the
    /// CPU time matters more than the last few percent of size. Inside memstache's pipeline the
    /// envelope already covers the compressed bytes (CRC-32, or the AEAD tag), so
    /// `Zstd::default().with_checksum(false)` saves verifying them twice (about 20 % of a
    /// 64 KiB read, see `docs/BENCHMARKS.md`).
    fn default() -> Self {
        Zstd {
            level: DEFAULT_LEVEL,
            checksum: true,
        }
    }
}

impl Zstd {
    /// Zstd at `level` (zstd's minimum negative level up to 22) with content checksums;
    /// anything else is [`ErrorKind::InvalidConfig`].
    ///
    /// ```
    /// # use memstache_zstd::Zstd;
    /// let fast = Zstd::new(-3)?;
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn new(level: i32) -> Result<Self> {
        if !(zstd_safe::min_c_level()..=zstd_safe::max_c_level()).contains(&level) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "zstd level is outside the range libzstd supports",
            ));
        }
        Ok(Zstd {
            level,
            checksum: true,
        })
    }

    /// Zstd configured from a [`ZstdConfig`].
    ///
    /// ```
    /// # use memstache_zstd::{Zstd, ZstdConfig};
    /// let zstd = Zstd::from_config(&ZstdConfig::default())?;
    /// assert_eq!(zstd, Zstd::default());
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn from_config(config: &ZstdConfig) -> Result<Self> {
        Ok(Zstd::new(config.level)?.with_checksum(config.checksum))
    }

    /// Turns the per-frame content checksum on or off (on by default).
    ///
    /// ```
    /// # use memstache_zstd::Zstd;
    /// let zstd = Zstd::default().with_checksum(false);
    /// assert!(!zstd.checksum());
    /// ```
    #[must_use]
    pub fn with_checksum(mut self, checksum: bool) -> Self {
        self.checksum = checksum;
        self
    }

    /// The compression level.
    ///
    /// ```
    /// # use memstache_zstd::Zstd;
    /// assert_eq!(Zstd::default().level(), 1);
    /// ```
    pub fn level(&self) -> i32 {
        self.level
    }

    /// Whether frames carry a content checksum.
    ///
    /// ```
    /// # use memstache_zstd::Zstd;
    /// assert!(Zstd::default().checksum());
    /// ```
    pub fn checksum(&self) -> bool {
        self.checksum
    }

    /// Applies this compressor's parameters to a context.
    fn configure(&self, cctx: &mut CCtx<'static>) -> Result<()> {
        for param in [
            CParameter::CompressionLevel(self.level),
            CParameter::ChecksumFlag(self.checksum),
            CParameter::ContentSizeFlag(true),
        ] {
            cctx.set_parameter(param)
                .map_err(|code| zstd_failed("cannot configure zstd", code))?;
        }
        Ok(())
    }
}

/// A compression context and the parameters last applied to it.
struct Compression {
    cctx: CCtx<'static>,
    applied: Option<Zstd>,
}

thread_local! {
    static CCTX: RefCell<Option<Compression>> = const { RefCell::new(None) };
    static DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

impl Compressor for Zstd {
    fn id(&self) -> u8 {
        2
    }

    fn name(&self) -> &'static str {
        "zstd"
    }

    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        CCTX.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let mut state = match slot.take() {
                    Some(state) => state,
                    None => Compression {
                        cctx: new_cctx()?,
                        applied: None,
                    },
                };
                if state.applied != Some(*self) {
                    state.applied = None;
                    self.configure(&mut state.cctx)?;
                    state.applied = Some(*self);
                }
                let result = compress_with(&mut state.cctx, input, out);
                // A failed call leaves the context mid-frame; only keep healthy ones.
                if result.is_ok() {
                    *slot = Some(state);
                }
                result
            }
            // Re-entered on this thread (cannot happen today): use a private context.
            Err(_) => {
                let mut cctx = new_cctx()?;
                self.configure(&mut cctx)?;
                compress_with(&mut cctx, input, out)
            }
        })
    }

    fn decompress(&self, input: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let result = DCTX.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let mut dctx = match slot.take() {
                    Some(d) => d,
                    None => new_dctx()?,
                };
                let result = decompress_with(&mut dctx, input, max_len, out);
                if result.is_ok() || dctx.reset(ResetDirective::SessionOnly).is_ok() {
                    *slot = Some(dctx);
                }
                result
            }
            Err(_) => decompress_with(&mut new_dctx()?, input, max_len, out),
        });
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

fn new_cctx() -> Result<CCtx<'static>> {
    CCtx::try_create()
        .ok_or_else(|| Error::new(ErrorKind::Compression, "cannot allocate a zstd context"))
}

/// A decompression context whose window is bounded by [`WINDOW_LOG_MAX`]. Only one-shot
/// decoding is used (it allocates no window), so the bound is a second line of defence.
fn new_dctx() -> Result<DCtx<'static>> {
    let mut dctx = DCtx::try_create()
        .ok_or_else(|| Error::new(ErrorKind::Compression, "cannot allocate a zstd context"))?;
    dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
        .map_err(|code| zstd_failed("cannot configure zstd", code))?;
    Ok(dctx)
}

/// One frame for all of `input`, appended to `out`.
fn compress_with(cctx: &mut CCtx<'static>, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    if start == 0 {
        // zstd writes into the Vec's spare capacity (from index 0): no zero-filling first
        out.reserve_exact(zstd_safe::compress_bound(input.len()));
        return cctx.compress2(out, input).map(|_| ()).map_err(|code| {
            out.clear();
            let _ = cctx.reset(ResetDirective::SessionOnly);
            zstd_failed("zstd compression failed", code)
        });
    }
    out.resize(start + zstd_safe::compress_bound(input.len()), 0);
    match cctx.compress2(&mut out[start..], input) {
        Ok(written) => {
            out.truncate(start + written);
            Ok(())
        }
        Err(code) => {
            out.truncate(start);
            // compress2 leaves the session open on failure
            let _ = cctx.reset(ResetDirective::SessionOnly);
            Err(zstd_failed("zstd compression failed", code))
        }
    }
}

/// The zstd frame magic number (RFC 8878, section 3.1.1), little-endian on the wire.
const FRAME_MAGIC: u32 = 0xFD2F_B528;

/// The smallest window a zstd frame can declare (`ZSTD_WINDOWLOG_ABSOLUTEMIN`).
const MIN_WINDOW_LOG: u32 = 10;

/// The window log bound set on every decompression context: the largest window a frame may
/// declare, whatever the value bound (`2^27` is libzstd's own default limit).
pub(crate) const WINDOW_LOG_MAX: u32 = 27;

/// Decodes exactly one frame from `input`, appending exactly its declared content size (at
/// most `max_len` bytes) to `out`.
///
/// Everything that decides the allocation is checked from the frame header before anything is
/// allocated or decoded: a frame must be one standard frame (no skippable frame, nothing after
/// it) that declares its content size, at most `max_len`, and a window no larger than that size
/// needs. Then the whole frame is decoded in one shot into room reserved once for exactly the
/// declared size; one-shot decoding writes straight into that room, so libzstd allocates no
/// window of its own (a streamed frame would make it allocate, and keep in this thread's
/// context, a window as large as the frame asks for).
fn decompress_with(
    dctx: &mut DCtx<'static>,
    input: &[u8],
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    let size = check_frame(input, max_len)?;
    let start = out.len();
    if out.capacity() - start < size {
        out.reserve_exact(size);
    }
    let written = if start == 0 {
        // zstd writes into the Vec's spare capacity (from index 0): no zero-filling
        dctx.decompress(out, input).map_err(|code| {
            out.clear();
            zstd_failed("zstd data is corrupt", code)
        })?
    } else {
        out.resize(start + size, 0);
        match dctx.decompress(&mut out[start..], input) {
            Ok(written) => {
                out.truncate(start + written);
                written
            }
            Err(code) => return Err(zstd_failed("zstd data is corrupt", code)),
        }
    };
    // libzstd checks a declared size against the frame's content; this also catches output
    // beyond `size` written into spare capacity the caller had reserved.
    if written != size {
        return Err(bad_format("zstd frame size does not match its content"));
    }
    Ok(())
}

/// Checks the frame header of `input` and returns the declared content size.
///
/// Refused, before anything is decoded: input that is not exactly one standard zstd frame
/// ([`ErrorKind::Compression`]); a frame that does not declare its content size
/// (`Compression`: memstache's writer always declares it, so such a frame was not written by
/// it); a declared size over `max_len` ([`ErrorKind::ValueTooLarge`]); a window larger than
/// the declared size needs, or than `2^WINDOW_LOG_MAX` (`Compression`).
fn check_frame(input: &[u8], max_len: usize) -> Result<usize> {
    let magic = input
        .get(..4)
        .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
    if magic != Some(FRAME_MAGIC) {
        return Err(bad_format("not a zstd frame (bad magic number)"));
    }
    let declared = zstd_safe::get_frame_content_size(input)
        .map_err(|_| bad_format("zstd frame header is corrupt"))?
        .ok_or_else(|| bad_format("zstd frame does not declare its content size"))?;
    let size = usize::try_from(declared).map_err(|_| too_large())?;
    if size > max_len {
        return Err(too_large());
    }
    // Frame header descriptor (RFC 8878, 3.1.1.1.1): bit 5 = single segment, in which case the
    // window is the content size; otherwise the window descriptor follows.
    let descriptor = input[4];
    if descriptor & 0x20 == 0 {
        let wd = input
            .get(5)
            .ok_or_else(|| bad_format("zstd frame header is truncated"))?;
        let window_log = MIN_WINDOW_LOG + u32::from(wd >> 3);
        let needed = usize::BITS - size.saturating_sub(1).leading_zeros();
        if window_log > WINDOW_LOG_MAX || window_log > needed.max(MIN_WINDOW_LOG) {
            return Err(bad_format(
                "zstd frame asks for a window larger than its content",
            ));
        }
    }
    match zstd_safe::find_frame_compressed_size(input) {
        Ok(n) if n == input.len() => Ok(size),
        Ok(_) => Err(bad_format("unexpected bytes after the zstd frame")),
        Err(code) => Err(zstd_failed("zstd data is corrupt", code)),
    }
}

#[cfg(test)]
mod tests;
