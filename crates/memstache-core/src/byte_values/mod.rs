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
        // postcard writes a length as a LEB128 varint of a u64: reserve exactly (the write
        // buffer is sized from the previous value; more would reallocate it)
        let bits = 64 - (bytes.len() as u64 | 1).leading_zeros() as usize;
        out.reserve(bits.div_ceil(7) + bytes.len());
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
        // the exact size first (the write buffer is sized from the previous value: more would
        // reallocate it); then eight bytes at a time into a stack buffer whose indices are
        // masked (no bounds checks, no branch on a byte's form), one copy per eight
        let wide = bytes.iter().map(|&b| usize::from(b >> 7)).sum::<usize>();
        out.reserve(bytes.len() + wide);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut buf = [0u8; 16];
            let mut k = 0;
            for &b in chunk {
                let wide = usize::from(b >> 7);
                buf[k & 15] = if wide == 1 { 0xcc } else { b };
                buf[(k + 1) & 15] = b;
                k += 1 + wide;
            }
            out.extend_from_slice(&buf[..k]);
        }
        for &b in chunks.remainder() {
            if b < 0x80 {
                out.push(b);
            } else {
                out.extend_from_slice(&[0xcc, b]);
            }
        }
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
        // the exact size (the write buffer is sized from the previous value: more would
        // reallocate it), then filled four bytes at a time, each number over the last's tail
        let digits = bytes
            .iter()
            .map(|&b| usize::from(DIGITS[usize::from(b)].1))
            .sum::<usize>();
        let len = 2 + digits + bytes.len().saturating_sub(1);
        let start = out.len();
        // three bytes of slack: the last number's four-byte store
        out.resize(start + len + 3, 0);
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
        out.truncate(start + len);
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

/// `T` is `bytes::Bytes` or `serde_bytes::ByteBuf`: a type whose `Serialize` is one
/// `serialize_bytes` call and whose `Deserialize` takes `deserialize_byte_buf`, with a visitor
/// that makes the same value of `visit_byte_buf(v)` as of a sequence of the bytes of `v`.
/// By type identity (`typeid` also takes non-`'static` types).
#[cfg(feature = "json")]
pub(crate) fn is_byte_buffer<T: ?Sized>() -> bool {
    let id = typeid::of::<T>();
    id == std::any::TypeId::of::<bytes::Bytes>()
        || id == std::any::TypeId::of::<serde_bytes::ByteBuf>()
}

/// JSON writes `serialize_bytes` as an array of numbers, through its full number formatter:
/// [`json::write`] is the same bytes in one pass. This serializer takes exactly one
/// `serialize_bytes` call and refuses everything else (writing nothing), so a byte buffer's
/// `Serialize` can be sent through it.
#[cfg(feature = "json")]
pub(crate) struct JsonBytes<'a>(pub(crate) &'a mut Vec<u8>);

/// What [`JsonBytes`] refuses.
#[cfg(feature = "json")]
#[derive(Debug)]
pub(crate) struct NotBytes;

#[cfg(feature = "json")]
impl std::fmt::Display for NotBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a byte buffer")
    }
}

#[cfg(feature = "json")]
impl std::error::Error for NotBytes {}

#[cfg(feature = "json")]
impl serde::ser::Error for NotBytes {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotBytes
    }
}

#[cfg(feature = "json")]
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ret, NotBytes> {
            Err(NotBytes)
        }
    )*};
}

#[cfg(feature = "json")]
impl serde::Serializer for JsonBytes<'_> {
    type Ok = ();
    type Error = NotBytes;
    type SerializeSeq = serde::ser::Impossible<(), NotBytes>;
    type SerializeTuple = serde::ser::Impossible<(), NotBytes>;
    type SerializeTupleStruct = serde::ser::Impossible<(), NotBytes>;
    type SerializeTupleVariant = serde::ser::Impossible<(), NotBytes>;
    type SerializeMap = serde::ser::Impossible<(), NotBytes>;
    type SerializeStruct = serde::ser::Impossible<(), NotBytes>;
    type SerializeStructVariant = serde::ser::Impossible<(), NotBytes>;

    fn serialize_bytes(self, v: &[u8]) -> Result<(), NotBytes> {
        json::write(v, self.0);
        Ok(())
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<V: serde::Serialize + ?Sized>(self, _: &V) -> Result<(), NotBytes> {
        Err(NotBytes)
    }
    fn serialize_newtype_struct<V: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &V,
    ) -> Result<(), NotBytes> {
        Err(NotBytes)
    }
    fn serialize_newtype_variant<V: serde::Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> Result<(), NotBytes> {
        Err(NotBytes)
    }
}

/// Hands a byte buffer [`json::read`] decoded to a [byte buffer](is_byte_buffer)'s visitor:
/// `visit_byte_buf`, which moves the `Vec` in.
#[cfg(feature = "json")]
pub(crate) struct ByteBufDeserializer(pub(crate) Vec<u8>);

#[cfg(feature = "json")]
impl<'de> serde::Deserializer<'de> for ByteBufDeserializer {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_byte_buf(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
