//! Built-in serializers: postcard (default), MessagePack with named fields, JSON.
//!
//! | serializer | id | feature | notes |
//! |---|---|---|---|
//! | [`Postcard`] | 1 | `postcard` (default) | compact, fastest; field order is the schema |
//! | [`MessagePack`] | 2 | `msgpack` | named fields: tolerates added/reordered fields |
//! | [`Json`] | 3 | `json` | human-readable, interoperable, largest |
//!
//! Deserialization errors never carry the offending bytes or the value: serde error messages
//! can quote value content, so for MessagePack and JSON the source error is dropped and only
//! its category is kept in the message.

#[cfg(any(feature = "msgpack", feature = "json"))]
use crate::ErrorKind;
use crate::raw::Serializer;
#[cfg(any(feature = "postcard", feature = "msgpack", feature = "json"))]
use crate::{Error, Result};

/// Finishes a deserialization: on error, prefer the visitor's own error (it says what failed)
/// over the format's.
#[cfg(any(feature = "postcard", feature = "msgpack", feature = "json"))]
fn visit_error(err: Error) -> Error {
    err
}

/// [postcard](https://docs.rs/postcard): compact binary, the default. Id 1.
///
/// Postcard is not self-describing: changing a struct's fields changes what old entries decode
/// to (usually a [`Serialization`](crate::ErrorKind::Serialization) error). Version your keys,
/// or use [`MessagePack`] for evolving types.
///
/// ```
/// use memstache_core::raw::Serializer;
/// let s = memstache_core::serializer::Postcard;
/// let mut out = Vec::new();
/// s.serialize(&(1u32, "x"), &mut out).unwrap();
/// let mut back: Option<(u32, String)> = None;
/// s.deserialize(&out, &mut |de| {
///     back = Some(erased_serde::deserialize(de).map_err(|_| {
///         memstache_core::Error::new(memstache_core::ErrorKind::Serialization, "bad")
///     })?);
///     Ok(())
/// }).unwrap();
/// assert_eq!(back, Some((1, "x".to_owned())));
/// ```
#[cfg(feature = "postcard")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

#[cfg(feature = "postcard")]
impl Serializer for Postcard {
    fn id(&self) -> u8 {
        1
    }
    fn name(&self) -> &'static str {
        "postcard"
    }
    fn serialize(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<()> {
        let taken = std::mem::take(out);
        match postcard::to_extend(value, taken) {
            Ok(v) => {
                *out = v;
                Ok(())
            }
            Err(e) => Err(Error::new(
                crate::ErrorKind::Serialization,
                "value could not be serialized with postcard",
            )
            .with_source(e)),
        }
    }
    fn deserialize(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut de = postcard::Deserializer::from_bytes(bytes);
        {
            let mut erased = <dyn erased_serde::Deserializer<'_>>::erase(&mut de);
            visit(&mut erased).map_err(visit_error)?;
        }
        let rest = de.finalize().map_err(|e| {
            Error::new(crate::ErrorKind::Serialization, "postcard decoding failed").with_source(e)
        })?;
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                crate::ErrorKind::Serialization,
                "stored value has trailing bytes (it was written for another type)",
            ))
        }
    }
}

/// Postcard's decoding, typed: what [`Postcard`]'s `deserialize` does through erased-serde,
/// without the erasure (the cache uses it for its own postcard entries). Same checks and errors:
/// a value that does not decode as `T`, and trailing bytes, are
/// [`Serialization`](crate::ErrorKind::Serialization) errors.
#[cfg(feature = "postcard")]
pub(crate) fn postcard_typed<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    max_depth: usize,
) -> Result<T> {
    use crate::depth::{DepthLimited, Limit};
    let mut de = postcard::Deserializer::from_bytes(bytes);
    let too_deep = std::cell::Cell::new(false);
    let limited = DepthLimited::new(&mut de, Limit::new(max_depth, &too_deep));
    let value = T::deserialize(limited)
        .map_err(|_| crate::cache::decode_error(too_deep.get(), max_depth))?;
    let rest = de.finalize().map_err(|e| {
        Error::new(crate::ErrorKind::Serialization, "postcard decoding failed").with_source(e)
    })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(Error::new(
            crate::ErrorKind::Serialization,
            "stored value has trailing bytes (it was written for another type)",
        ))
    }
}

/// [MessagePack](https://docs.rs/rmp-serde) with named fields (structs as maps). Id 2.
///
/// Larger than postcard but tolerant of added, removed (with `#[serde(default)]`) and
/// reordered fields.
///
/// ```
/// use memstache_core::raw::Serializer;
/// let s = memstache_core::serializer::MessagePack;
/// let mut out = Vec::new();
/// s.serialize(&vec![1u8, 2, 3], &mut out).unwrap();
/// assert!(!out.is_empty());
/// ```
#[cfg(feature = "msgpack")]
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

#[cfg(feature = "msgpack")]
impl Serializer for MessagePack {
    fn id(&self) -> u8 {
        2
    }
    fn name(&self) -> &'static str {
        "msgpack"
    }
    fn serialize(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<()> {
        let mut ser = rmp_serde::Serializer::new(out).with_struct_map();
        erased_serde::serialize(value, &mut ser).map_err(|_| {
            Error::new(
                ErrorKind::Serialization,
                "value could not be serialized as MessagePack",
            )
        })
    }
    fn deserialize(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut rest: &[u8] = bytes;
        {
            let mut de = rmp_serde::Deserializer::new(&mut rest);
            let mut erased = <dyn erased_serde::Deserializer<'_>>::erase(&mut de);
            visit(&mut erased).map_err(visit_error)?;
        }
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Serialization,
                "stored value has trailing bytes (it was written for another type)",
            ))
        }
    }
}

/// JSON via [serde_json](https://docs.rs/serde_json). Id 3.
///
/// ```
/// use memstache_core::raw::Serializer;
/// let s = memstache_core::serializer::Json;
/// let mut out = Vec::new();
/// s.serialize(&[1, 2], &mut out).unwrap();
/// assert_eq!(out, b"[1,2]");
/// ```
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Serializer for Json {
    fn id(&self) -> u8 {
        3
    }
    fn name(&self) -> &'static str {
        "json"
    }
    fn serialize(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<()> {
        let mut ser = serde_json::Serializer::new(out);
        erased_serde::serialize(value, &mut ser).map_err(|_| {
            Error::new(
                ErrorKind::Serialization,
                "value could not be serialized as JSON",
            )
        })
    }
    fn deserialize(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        {
            let mut erased = <dyn erased_serde::Deserializer<'_>>::erase(&mut de);
            visit(&mut erased).map_err(visit_error)?;
        }
        de.end().map_err(|_| {
            Error::new(
                ErrorKind::Serialization,
                "stored value has trailing bytes (it was written for another type)",
            )
        })
    }
}

/// One of memstache's own serializers, known by type: the cache calls it with typed
/// [`write`](Builtin::write) and [`read`](Builtin::read) functions instead of through
/// erased-serde (which costs a dynamic call per serde method, a sequence of bytes one call per
/// byte), and writes byte values with the one-pass paths of [`crate::byte_values`]. Same bytes
/// and same errors as the [`Serializer`] implementations of the same types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    /// [`Postcard`].
    #[cfg(feature = "postcard")]
    Postcard,
    /// [`MessagePack`].
    #[cfg(feature = "msgpack")]
    MessagePack,
    /// [`Json`].
    #[cfg(feature = "json")]
    Json,
}

/// The error of a stored value with bytes left after it.
#[cfg(any(feature = "msgpack", feature = "json"))]
fn trailing() -> Error {
    Error::new(
        crate::ErrorKind::Serialization,
        "stored value has trailing bytes (it was written for another type)",
    )
}

impl Builtin {
    /// The built-in serializer `S` is, if it is one (by type, not by id: a user's serializer
    /// with a built-in's id is called through its own [`Serializer`] implementation).
    pub(crate) fn of<S: Serializer>() -> Option<Builtin> {
        use std::any::TypeId;
        let id = TypeId::of::<S>();
        #[cfg(feature = "postcard")]
        if id == TypeId::of::<Postcard>() {
            return Some(Builtin::Postcard);
        }
        #[cfg(feature = "msgpack")]
        if id == TypeId::of::<MessagePack>() {
            return Some(Builtin::MessagePack);
        }
        #[cfg(feature = "json")]
        if id == TypeId::of::<Json>() {
            return Some(Builtin::Json);
        }
        let _ = id;
        None
    }

    /// Appends the encoding of `value` to `out`: the bytes the [`Serializer`] implementation
    /// writes, without erasure.
    #[cfg_attr(
        not(any(feature = "postcard", feature = "msgpack", feature = "json")),
        expect(unused_variables, reason = "no built-in serializer compiled in")
    )]
    pub(crate) fn write<T: serde::Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> crate::Result<()> {
        let bytes = crate::byte_values::as_byte_seq(value);
        match self {
            #[cfg(feature = "postcard")]
            Builtin::Postcard => {
                if let Some(b) = bytes {
                    crate::byte_values::postcard::write(b, out);
                    return Ok(());
                }
                postcard::serialize_with_flavor(value, AppendVec(out)).map_err(|e| {
                    Error::new(
                        crate::ErrorKind::Serialization,
                        "value could not be serialized with postcard",
                    )
                    .with_source(e)
                })
            }
            #[cfg(feature = "msgpack")]
            Builtin::MessagePack => {
                if let Some(b) = bytes
                    && crate::byte_values::msgpack::write(b, out)
                {
                    return Ok(());
                }
                let mut ser = rmp_serde::Serializer::new(out).with_struct_map();
                value.serialize(&mut ser).map_err(|_| {
                    Error::new(
                        ErrorKind::Serialization,
                        "value could not be serialized as MessagePack",
                    )
                })
            }
            #[cfg(feature = "json")]
            Builtin::Json => {
                if let Some(b) = bytes {
                    crate::byte_values::json::write(b, out);
                    return Ok(());
                }
                if crate::byte_values::is_byte_buffer::<T>() {
                    let start = out.len();
                    if value.serialize(crate::byte_values::JsonBytes(out)).is_ok() {
                        return Ok(());
                    }
                    out.truncate(start);
                }
                let mut ser = serde_json::Serializer::new(out);
                value.serialize(&mut ser).map_err(|_| {
                    Error::new(
                        ErrorKind::Serialization,
                        "value could not be serialized as JSON",
                    )
                })
            }
        }
    }

    /// Decodes `bytes` as `T`, nested at most `max_depth` deep: what the [`Serializer`]
    /// implementation decodes through erased-serde, with the same checks and errors (a value
    /// that does not decode as `T`, and trailing bytes, are
    /// [`Serialization`](crate::ErrorKind::Serialization) errors).
    #[cfg_attr(
        not(any(feature = "postcard", feature = "msgpack", feature = "json")),
        expect(
            unused_variables,
            unreachable_code,
            reason = "no built-in serializer compiled in"
        )
    )]
    pub(crate) fn read<T: serde::de::DeserializeOwned>(
        self,
        bytes: &[u8],
        max_depth: usize,
    ) -> crate::Result<T> {
        let mut slot: Option<T> = None;
        if let Some(vec) = crate::byte_values::vec_slot(&mut slot) {
            let fast = match self {
                #[cfg(feature = "postcard")]
                Builtin::Postcard => crate::byte_values::postcard::read(bytes),
                #[cfg(feature = "msgpack")]
                Builtin::MessagePack => crate::byte_values::msgpack::read(bytes),
                #[cfg(feature = "json")]
                Builtin::Json => crate::byte_values::json::read(bytes),
            };
            *vec = fast;
        }
        if let Some(v) = slot {
            return Ok(v);
        }
        match self {
            #[cfg(feature = "postcard")]
            Builtin::Postcard => postcard_typed(bytes, max_depth),
            #[cfg(feature = "msgpack")]
            Builtin::MessagePack => {
                let mut rest: &[u8] = bytes;
                let value = {
                    let mut de = rmp_serde::Deserializer::new(&mut rest);
                    limited_read(&mut de, max_depth)?
                };
                if rest.is_empty() {
                    Ok(value)
                } else {
                    Err(trailing())
                }
            }
            #[cfg(feature = "json")]
            Builtin::Json => {
                if crate::byte_values::is_byte_buffer::<T>()
                    && let Some(v) = crate::byte_values::json::read(bytes)
                    && let Ok(value) = T::deserialize(crate::byte_values::ByteBufDeserializer(v))
                {
                    return Ok(value);
                }
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let value = limited_read(&mut de, max_depth)?;
                de.end().map_err(|_| trailing())?;
                Ok(value)
            }
        }
    }
}

/// A postcard output that appends to a `Vec` (postcard's `ExtendFlavor` extends byte by byte
/// through an iterator; this copies slices with `extend_from_slice`).
#[cfg(feature = "postcard")]
struct AppendVec<'a>(&'a mut Vec<u8>);

#[cfg(feature = "postcard")]
impl postcard::ser_flavors::Flavor for AppendVec<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// `T` from `de`, at most `max_depth` deep; the format's error is dropped (it may quote the
/// value) for the cache's own.
#[cfg(any(feature = "msgpack", feature = "json"))]
fn limited_read<'de, T, D>(de: D, max_depth: usize) -> Result<T>
where
    T: serde::de::DeserializeOwned,
    D: serde::Deserializer<'de>,
{
    use crate::depth::{DepthLimited, Limit};
    let too_deep = std::cell::Cell::new(false);
    let limited = DepthLimited::new(de, Limit::new(max_depth, &too_deep));
    T::deserialize(limited).map_err(|_| crate::cache::decode_error(too_deep.get(), max_depth))
}

/// The serializer for an id, among those compiled in.
pub fn by_id(id: u8) -> Option<std::sync::Arc<dyn Serializer>> {
    match id {
        #[cfg(feature = "postcard")]
        1 => Some(std::sync::Arc::new(Postcard)),
        #[cfg(feature = "msgpack")]
        2 => Some(std::sync::Arc::new(MessagePack)),
        #[cfg(feature = "json")]
        3 => Some(std::sync::Arc::new(Json)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        id: u64,
        name: String,
        score: Option<i32>,
        tags: Vec<String>,
        attrs: BTreeMap<String, u16>,
        nested: Vec<(bool, u8)>,
    }

    fn rec() -> impl Strategy<Value = Rec> {
        (
            any::<u64>(),
            ".*",
            any::<Option<i32>>(),
            proptest::collection::vec(".{0,8}", 0..4),
            proptest::collection::btree_map(".{0,4}", any::<u16>(), 0..4),
            proptest::collection::vec(any::<(bool, u8)>(), 0..8),
        )
            .prop_map(|(id, name, score, tags, attrs, nested)| Rec {
                id,
                name,
                score,
                tags,
                attrs,
                nested,
            })
    }

    fn all() -> Vec<std::sync::Arc<dyn Serializer>> {
        (0..=255u8).filter_map(by_id).collect()
    }

    proptest! {
        #[test]
        fn every_serializer_round_trips(r in rec()) {
            for s in all() {
                let mut out = Vec::new();
                s.serialize(&r, &mut out).unwrap();
                let back: Rec = crate::cache::deserialize_for_tests(s.as_ref(), &out).unwrap();
                prop_assert_eq!(&back, &r, "serializer {}", s.name());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            for s in all() {
                let _ = crate::cache::deserialize_for_tests::<Rec>(s.as_ref(), &bytes);
                let _ = crate::cache::deserialize_for_tests::<String>(s.as_ref(), &bytes);
            }
        }

        /// The typed postcard path the cache uses for its own entries decides exactly as the
        /// erased one: same value, or an error of the same kind.
        #[cfg(feature = "postcard")]
        #[test]
        fn typed_postcard_matches_the_erased_path(
            r in rec(),
            cut in any::<prop::sample::Index>(),
            extra in proptest::collection::vec(any::<u8>(), 0..3),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut good = Vec::new();
            Postcard.serialize(&r, &mut good).unwrap();
            let mut cut_short = good.clone();
            cut_short.truncate(cut.index(good.len() + 1));
            let mut longer = good.clone();
            longer.extend_from_slice(&extra);
            for bytes in [&good, &cut_short, &longer, &garbage] {
                fn same<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
                    bytes: &[u8],
                ) -> std::result::Result<(), TestCaseError> {
                    let typed = postcard_typed::<T>(bytes, crate::DEFAULT_MAX_NESTING_DEPTH);
                    let erased = crate::cache::deserialize_for_tests::<T>(&Postcard, bytes);
                    match (typed, erased) {
                        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                        (Err(a), Err(b)) => prop_assert_eq!(a.kind(), b.kind()),
                        (a, b) => prop_assert!(false, "typed {:?} but erased {:?}", a, b),
                    }
                    Ok(())
                }
                same::<Rec>(bytes)?;
                same::<String>(bytes)?;
                same::<(u8, Option<u64>)>(bytes)?;
            }
        }

        #[test]
        fn trailing_bytes_are_rejected(r in rec(), extra in 1u8..=255) {
            for s in all() {
                let mut out = Vec::new();
                s.serialize(&r, &mut out).unwrap();
                out.push(extra);
                // JSON tolerates trailing whitespace; anything else must fail
                if s.name() == "json" && (extra as char).is_ascii_whitespace() { continue; }
                prop_assert!(crate::cache::deserialize_for_tests::<Rec>(s.as_ref(), &out).is_err());
            }
        }
    }

    #[test]
    fn ids_are_stable() {
        #[cfg(feature = "postcard")]
        assert_eq!(Postcard.id(), 1);
        #[cfg(feature = "msgpack")]
        assert_eq!(MessagePack.id(), 2);
        #[cfg(feature = "json")]
        assert_eq!(Json.id(), 3);
    }
}
