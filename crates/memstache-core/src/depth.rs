//! A serde [`Deserializer`] proxy that bounds how deeply a value may nest.
//!
//! Deserializing is recursive: each nested sequence, map, struct, enum, option or newtype is
//! one more stack frame (several, through erased-serde). Bytes from storage are hostile input,
//! and a value nested 100 000 levels deep overflows any thread's stack, which aborts the
//! process (a stack overflow is not a panic: nothing can catch it). serde_json stops at 128
//! levels on its own, rmp-serde at 1 024 (too deep for a small stack behind erased-serde),
//! postcard never. So every value the cache decodes goes through [`DepthLimited`], whatever
//! the format: past the limit the format's own error is returned, and the flag the proxy was
//! given is set, so the caller can say why.
//!
//! No maintained crate does this (`serde_stacker` grows the stack instead: the decode then
//! succeeds, and the deep value overflows the stack again when it is dropped, printed or
//! compared); this is the usual proxy, forwarding every method.
//!
//! What counts as a level: the visitor being handed a nested deserializer or access —
//! `visit_some`, `visit_newtype_struct`, `visit_seq`, `visit_map`, `visit_enum`. A struct is a
//! map or a sequence, a tuple a sequence. Scalars and strings do not count.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

/// Default maximum nesting depth of a stored value.
pub const DEFAULT_MAX_NESTING_DEPTH: usize = 128;

/// How many more levels may open, and where to note that the limit was hit.
#[derive(Clone, Copy)]
pub(crate) struct Limit<'l> {
    left: usize,
    hit: &'l Cell<bool>,
}

impl<'l> Limit<'l> {
    pub(crate) fn new(max_depth: usize, hit: &'l Cell<bool>) -> Self {
        Limit {
            left: max_depth,
            hit,
        }
    }

    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        match self.left.checked_sub(1) {
            Some(left) => Ok(Limit { left, ..self }),
            None => {
                self.hit.set(true);
                Err(E::custom(
                    "value is nested deeper than the maximum nesting depth",
                ))
            }
        }
    }
}

/// A deserializer whose values may nest at most as deep as its [`Limit`] says.
pub(crate) struct DepthLimited<'l, D> {
    inner: D,
    limit: Limit<'l>,
}

impl<'l, D> DepthLimited<'l, D> {
    pub(crate) fn new(inner: D, limit: Limit<'l>) -> Self {
        DepthLimited { inner, limit }
    }
}

/// The visitor, seed and access wrappers: each hands the limit on to what it wraps.
struct Wrap<'l, T> {
    inner: T,
    limit: Limit<'l>,
}

fn wrap<T>(inner: T, limit: Limit<'_>) -> Wrap<'_, T> {
    Wrap { inner, limit }
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.inner.$method(wrap(visitor, self.limit))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for DepthLimited<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner
            .deserialize_unit_struct(name, wrap(visitor, self.limit))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner
            .deserialize_newtype_struct(name, wrap(visitor, self.limit))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.deserialize_tuple(len, wrap(visitor, self.limit))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner
            .deserialize_tuple_struct(name, len, wrap(visitor, self.limit))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner
            .deserialize_struct(name, fields, wrap(visitor, self.limit))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner
            .deserialize_enum(name, variants, wrap(visitor, self.limit))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let limit = self.limit.deeper()?;
        self.inner.visit_some(DepthLimited::new(d, limit))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let limit = self.limit.deeper()?;
        self.inner.visit_newtype_struct(DepthLimited::new(d, limit))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let limit = self.limit.deeper()?;
        self.inner.visit_seq(wrap(seq, limit))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let limit = self.limit.deeper()?;
        self.inner.visit_map(wrap(map, limit))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let limit = self.limit.deeper()?;
        self.inner.visit_enum(wrap(data, limit))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.deserialize(DepthLimited::new(d, self.limit))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.inner.next_element_seed(wrap(seed, self.limit))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.inner.next_key_seed(wrap(seed, self.limit))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.next_value_seed(wrap(seed, self.limit))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'l, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<'l, A> {
    type Error = A::Error;
    type Variant = Wrap<'l, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        let limit = self.limit;
        let (value, variant) = self.inner.variant_seed(wrap(seed, limit))?;
        Ok((value, wrap(variant, limit)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.inner.newtype_variant_seed(wrap(seed, self.limit))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.tuple_variant(len, wrap(visitor, self.limit))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.inner.struct_variant(fields, wrap(visitor, self.limit))
    }
}

#[cfg(all(test, feature = "postcard"))]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    enum Nest {
        Leaf,
        Node(Box<Nest>),
    }

    fn decode(bytes: &[u8], max: usize) -> (Result<Nest, postcard::Error>, bool) {
        let hit = Cell::new(false);
        let mut de = postcard::Deserializer::from_bytes(bytes);
        let r = Nest::deserialize(DepthLimited::new(&mut de, Limit::new(max, &hit)));
        (r, hit.get())
    }

    fn nested(levels: usize) -> Vec<u8> {
        let mut b = vec![1u8; levels];
        b.push(0);
        b
    }

    /// The limit counts every level: a value exactly at it decodes, one level more is refused.
    #[test]
    fn the_limit_is_exact() {
        // `levels` nodes: the enum at each level, plus the innermost leaf's enum
        let (ok, hit) = decode(&nested(9), 10);
        assert!(ok.is_ok() && !hit);
        let (err, hit) = decode(&nested(10), 10);
        assert!(err.is_err() && hit);
    }

    /// Every kind of value still decodes through the proxy, identically.
    #[test]
    fn values_decode_unchanged_through_the_proxy() {
        use std::collections::BTreeMap;
        #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
        enum E {
            U,
            N(u8),
            T(u8, String),
            S { a: Option<Vec<u16>> },
        }
        #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
        struct W(u64);
        #[derive(Debug, PartialEq, serde::Serialize, Deserialize)]
        struct Unit;
        type All = (
            bool,
            i128,
            f64,
            char,
            String,
            Vec<u8>,
            BTreeMap<String, (W, Unit)>,
            [E; 4],
            Option<()>,
        );
        let v: All = (
            true,
            -5,
            1.5,
            'x',
            "s".into(),
            vec![1, 2],
            BTreeMap::from([("k".to_owned(), (W(9), Unit))]),
            [
                E::U,
                E::N(1),
                E::T(2, "t".into()),
                E::S { a: Some(vec![3]) },
            ],
            Some(()),
        );
        let bytes = postcard::to_stdvec(&v).unwrap();
        let hit = Cell::new(false);
        let mut de = postcard::Deserializer::from_bytes(&bytes);
        let back = All::deserialize(DepthLimited::new(&mut de, Limit::new(8, &hit))).unwrap();
        assert_eq!(back, v);
        assert!(!hit.get());
    }
}
