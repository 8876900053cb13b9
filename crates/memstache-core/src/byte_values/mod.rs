//! Byte values at the speed of text (issue 15): `Vec<u8>` and `[u8]` are serialized by serde as
//! a *sequence* of `u8`, one serializer call per byte (through erased-serde, one dynamic call per
//! byte), while a `String` is one `serialize_str`. For the built-in formats these functions
//! write, and read back, exactly the bytes the generic serde path writes for that type, in one
//! pass over the slice:
//!
//! | format | a `Vec<u8>` / `[u8]` is written as |
//! |---|---|
//! | postcard | varint length, then the bytes (the same bytes as `serialize_bytes`) |
//! | MessagePack (rmp-serde) | an array header, then each byte as the smallest integer (a positive fixint below 128, `0xcc b` above) |
//! | JSON (serde_json) | `[1,2,3]`: compact decimal numbers |
//!
//! The type is recognised by identity ([`castaway`], a safe cast by type id that also
//! accepts non-`'static` generic types), so nothing else changes: stored entries decode as
//! before, and entries written now decode with older versions.
//!
//! The readers accept only the form the writers produce and answer `None` for anything else
//! (another array or integer form, whitespace in JSON, a truncated or corrupt value, trailing
//! bytes): the caller then decodes with the generic path, which accepts or rejects exactly as
//! before with its usual typed error. So a fast read never accepts what the generic path
//! rejects, and never gives another value.
//!
//! `bytes::Bytes` and `serde_bytes::ByteBuf` need no cast: they serialize with one
//! `serialize_bytes` call already, which the typed call of each format handles in one pass.

/// `value` as a byte slice when its type is `Vec<u8>` or `[u8]`, which serde serializes as a
/// sequence of `u8`.
pub(crate) fn as_byte_seq<T: ?Sized>(value: &T) -> Option<&[u8]> {
    if let Ok(v) = castaway::cast!(value, &Vec<u8>) {
        return Some(v.as_slice());
    }
    if let Ok(v) = castaway::cast!(value, &[u8]) {
        return Some(v);
    }
    None
}

/// `slot` as the slot of a `Vec<u8>` when `T` is `Vec<u8>`.
pub(crate) fn vec_slot<T>(slot: &mut Option<T>) -> Option<&mut Option<Vec<u8>>> {
    castaway::cast!(slot, &mut Option<Vec<u8>>).ok()
}

/// Postcard: varint length, then the bytes.
#[cfg(feature = "postcard")]
pub(crate) mod postcard {
    /// Appends `bytes` as postcard writes a `Vec<u8>`.
    pub(crate) fn write(bytes: &[u8], out: &mut Vec<u8>) {
        out.reserve(10 + bytes.len());
        // postcard writes a length as a LEB128 varint of a u64
        let mut n = bytes.len() as u64;
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(bytes);
    }

    /// The `Vec<u8>` postcard wrote into `input`, or `None` when `input` is not exactly one
    /// (the generic path decides then).
    pub(crate) fn read(input: &[u8]) -> Option<Vec<u8>> {
        let mut len: u64 = 0;
        // at most 9 varint bytes (63 bits): anything longer goes to the generic path
        for (i, &b) in input.iter().enumerate().take(9) {
            len |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                let rest = &input[i + 1..];
                return (usize::try_from(len).ok()? == rest.len()).then(|| rest.to_vec());
            }
        }
        None
    }
}

/// MessagePack as rmp-serde writes a sequence of `u8`.
#[cfg(feature = "msgpack")]
pub(crate) mod msgpack {
    /// Appends `bytes` as rmp-serde writes a `Vec<u8>`, or returns `false` (writing nothing)
    /// for a slice too long for a MessagePack array.
    pub(crate) fn write(bytes: &[u8], out: &mut Vec<u8>) -> bool {
        let Ok(len) = u32::try_from(bytes.len()) else {
            return false;
        };
        if len < 16 {
            out.push(0x90 | len as u8);
        } else if let Ok(len) = u16::try_from(len) {
            out.push(0xdc);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(0xdd);
            out.extend_from_slice(&len.to_be_bytes());
        }
        // room for the worst case (every byte two), filled by index, then cut to size: no
        // capacity check per byte, and no branch on the byte's form
        let start = out.len();
        out.resize(start + 2 * bytes.len(), 0);
        let room = &mut out[start..];
        let mut at = 0;
        for &b in bytes {
            let wide = usize::from(b >> 7);
            room[at] = if wide == 1 { 0xcc } else { b };
            room[at + 1] = b;
            at += 1 + wide;
        }
        out.truncate(start + at);
        true
    }

    /// The `Vec<u8>` rmp-serde wrote into `input`, or `None` when `input` is anything else.
    pub(crate) fn read(input: &[u8]) -> Option<Vec<u8>> {
        let (&marker, rest) = input.split_first()?;
        let (len, mut rest) = match marker {
            0x90..=0x9f => (usize::from(marker & 0x0f), rest),
            0xdc => {
                let (n, rest) = rest.split_first_chunk::<2>()?;
                (usize::from(u16::from_be_bytes(*n)), rest)
            }
            0xdd => {
                let (n, rest) = rest.split_first_chunk::<4>()?;
                (usize::try_from(u32::from_be_bytes(*n)).ok()?, rest)
            }
            _ => return None,
        };
        // every element is at least one byte: a larger count is not this form
        if len > rest.len() {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        let mut at = 0;
        for _ in 0..len {
            match *rest.get(at)? {
                b @ 0..=0x7f => {
                    out.push(b);
                    at += 1;
                }
                0xcc => {
                    out.push(*rest.get(at + 1)?);
                    at += 2;
                }
                _ => return None,
            }
        }
        rest = &rest[at..];
        rest.is_empty().then_some(out)
    }
}

/// JSON as serde_json writes a sequence of `u8`: `[` numbers `,` … `]`, no whitespace.
#[cfg(feature = "json")]
pub(crate) mod json {
    /// `,` and the decimal digits of every byte value, and how many digits there are.
    const DIGITS: [([u8; 4], u8); 256] = {
        let mut t = [([0u8; 4], 0u8); 256];
        let mut i = 0;
        while i < 256 {
            let n = i as u8;
            t[i] = if n >= 100 {
                ([b',', b'0' + n / 100, b'0' + n / 10 % 10, b'0' + n % 10], 3)
            } else if n >= 10 {
                ([b',', b'0' + n / 10, b'0' + n % 10, 0], 2)
            } else {
                ([b',', b'0' + n, 0, 0], 1)
            };
            i += 1;
        }
        t
    };

    /// Appends `bytes` as serde_json writes a `Vec<u8>` (compact formatter).
    pub(crate) fn write(bytes: &[u8], out: &mut Vec<u8>) {
        // room for the worst case (`,255` per byte), filled four bytes at a time, cut to size
        let start = out.len();
        out.resize(start + 2 + 4 * bytes.len(), 0);
        let room = &mut out[start..];
        let mut at = 0;
        for &b in bytes {
            let (d, n) = DIGITS[usize::from(b)];
            room[at..at + 4].copy_from_slice(&d);
            at += 1 + usize::from(n);
        }
        // the first number has no comma: `[` goes where it was
        room[0] = b'[';
        if at == 0 {
            at = 1;
        }
        room[at] = b']';
        out.truncate(start + at + 1);
    }

    /// The `Vec<u8>` serde_json wrote into `input`, or `None` for anything else (whitespace,
    /// leading zeros, numbers above 255, trailing bytes, …).
    pub(crate) fn read(input: &[u8]) -> Option<Vec<u8>> {
        let body = input.strip_prefix(b"[")?.strip_suffix(b"]")?;
        if body.is_empty() {
            return Some(Vec::new());
        }
        let commas = body.iter().filter(|&&b| b == b',').count();
        let mut out = Vec::with_capacity(commas + 1);
        let mut at = 0;
        loop {
            // one to three digits, no leading zero, at most 255, then `,` or the end
            let first = *body.get(at)?;
            if !first.is_ascii_digit() {
                return None;
            }
            let mut n = u16::from(first - b'0');
            at += 1;
            if first != b'0' {
                for _ in 0..2 {
                    match body.get(at) {
                        Some(&d) if d.is_ascii_digit() => {
                            n = n * 10 + u16::from(d - b'0');
                            at += 1;
                        }
                        _ => break,
                    }
                }
            }
            out.push(u8::try_from(n).ok()?);
            match body.get(at) {
                None => return Some(out),
                Some(b',') => at += 1,
                Some(_) => return None,
            }
        }
    }
}

#[cfg(all(test, feature = "postcard", feature = "msgpack", feature = "json"))]
mod tests;
