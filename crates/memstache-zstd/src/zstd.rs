//! The zstd [`Compressor`].

use std::cell::RefCell;

use memstache_core::raw::{Compressor, bounded_fill};
use memstache_core::{Error, ErrorKind, Result};
use zstd::zstd_safe::{
    self, CCtx, CParameter, DCtx, DParameter, InBuffer, OutBuffer, ResetDirective,
};

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

fn new_dctx() -> Result<DCtx<'static>> {
    DCtx::try_create()
        .ok_or_else(|| Error::new(ErrorKind::Compression, "cannot allocate a zstd context"))
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

/// Decodes exactly one frame from `input`, appending at most `max_len` bytes to `out`.
fn decompress_with(
    dctx: &mut DCtx<'static>,
    input: &[u8],
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    let declared = zstd_safe::get_frame_content_size(input)
        .map_err(|_| bad_format("not zstd data, or its frame header is corrupt"))?;
    match declared {
        Some(size) => {
            // The frame says how large it is: reject a bomb before allocating anything, then
            // decode in one shot into exactly that much room (libzstd checks the size).
            let size = usize::try_from(size).map_err(|_| too_large())?;
            if size > max_len {
                return Err(too_large());
            }
            let start = out.len();
            out.reserve_exact(size);
            let written = if start == 0 {
                // zstd writes into the Vec's spare capacity (from index 0): no zero-filling
                let r = dctx.decompress(out, input);
                r.map_err(|code| {
                    out.clear();
                    zstd_failed("zstd data is corrupt", code)
                })?
            } else {
                out.resize(start + size, 0);
                dctx.decompress(&mut out[start..], input)
                    .map_err(|code| zstd_failed("zstd data is corrupt", code))?
            };
            if written != size {
                return Err(bad_format("zstd frame size does not match its content"));
            }
            Ok(())
        }
        None => stream_one_frame(dctx, input, max_len, out),
    }
}

/// Streams a frame of unknown size, bounded by `max_len` in output and window memory.
fn stream_one_frame(
    dctx: &mut DCtx<'static>,
    input: &[u8],
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    // A legitimate frame of at most max_len bytes never needs a larger window.
    let window_log = usize::BITS - max_len.max(1).saturating_sub(1).leading_zeros();
    dctx.reset(ResetDirective::SessionOnly)
        .and_then(|_| dctx.set_parameter(DParameter::WindowLogMax(window_log.clamp(10, 30))))
        .map_err(|code| zstd_failed("cannot configure zstd", code))?;
    let mut in_buf = InBuffer::around(input);
    bounded_fill(
        out,
        max_len,
        input.len().saturating_mul(4),
        "zstd",
        |window| {
            let before_in = in_buf.pos();
            let mut out_buf = OutBuffer::around(window);
            let hint = dctx
                .decompress_stream(&mut out_buf, &mut in_buf)
                .map_err(|code| zstd_failed("zstd data is corrupt", code))?;
            let written = out_buf.pos();
            Ok((written, written > 0 || in_buf.pos() != before_in, hint == 0))
        },
    )?;
    if in_buf.pos() != input.len() {
        return Err(bad_format("unexpected bytes after the zstd frame"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
