//! A helper for [`Compressor`](super::Compressor) authors: bounded streaming decompression.

use crate::{Error, ErrorKind, Result};

/// Runs a streaming decoder over output windows appended to `out`, so that the appended part
/// never grows past `max_len + 1` bytes (the extra byte detects "too large"): the
/// [`Compressor::decompress`](super::Compressor::decompress) contract, once for every codec.
///
/// `step` decodes into the window and returns `(written, progressed, done)`. Capacity is only
/// ever reserved exactly, so the memory spent on the output stays within `max_len + 1` bytes
/// beyond what `out` held before. `hint` sizes the first window (e.g. a multiple of the input
/// length). Errors name `codec`: [`ErrorKind::ValueTooLarge`] past `max_len`,
/// [`ErrorKind::Compression`] when the decoder stops making progress before it is done; an
/// error from `step` is returned as is. On error, the window being filled is removed again.
///
/// ```
/// use memstache_core::raw::bounded_fill;
/// // a "decoder" that copies its input in chunks of at most 3 bytes
/// let input = b"hello world";
/// let mut pos = 0;
/// let mut out = Vec::new();
/// bounded_fill(&mut out, 64, 4, "copy", |window| {
///     let n = window.len().min(3).min(input.len() - pos);
///     window[..n].copy_from_slice(&input[pos..pos + n]);
///     pos += n;
///     Ok((n, n > 0, pos == input.len()))
/// })?;
/// assert_eq!(out, input);
/// let e = bounded_fill(&mut Vec::new(), 4, 4, "copy", |w| Ok((w.len(), true, false))).unwrap_err();
/// assert_eq!(e.kind(), memstache_core::ErrorKind::ValueTooLarge);
/// # Ok::<(), memstache_core::Error>(())
/// ```
pub fn bounded_fill(
    out: &mut Vec<u8>,
    max_len: usize,
    hint: usize,
    codec: &'static str,
    mut step: impl FnMut(&mut [u8]) -> Result<(usize, bool, bool)>,
) -> Result<()> {
    let too_large = || {
        Error::new(
            ErrorKind::ValueTooLarge,
            format!("decompressed {codec} data exceeds the maximum value size"),
        )
    };
    let start = out.len();
    loop {
        let produced = out.len() - start;
        let left = max_len.saturating_add(1).saturating_sub(produced);
        if left == 0 {
            return Err(too_large());
        }
        let want = if produced == 0 {
            hint.saturating_add(1).max(4096)
        } else {
            produced
        };
        let room = want.min(left);
        let len = out.len();
        out.reserve_exact(room);
        out.resize(len + room, 0);
        let (written, progressed, done) = match step(&mut out[len..]) {
            Ok(r) => r,
            Err(e) => {
                out.truncate(len);
                return Err(e);
            }
        };
        out.truncate(len + written.min(room));
        if out.len() - start > max_len {
            return Err(too_large());
        }
        if done {
            return Ok(());
        }
        if !progressed {
            return Err(Error::new(
                ErrorKind::Compression,
                format!("{codec} data is truncated"),
            ));
        }
    }
}
