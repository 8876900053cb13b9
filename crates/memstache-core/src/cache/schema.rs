//! Schema fingerprints and what a read does with an entry it cannot decode.
//!
//! An envelope carries a 64-bit fingerprint of the type it was written as (0 = none), inside
//! the authenticated header: a reader compares it with its own before it deserializes
//! anything, so a type that changed shape between two deploys is found from the header
//! ([`ErrorKind::SchemaMismatch`](crate::ErrorKind::SchemaMismatch)), not by trial decoding —
//! which, with a positional format such as postcard, can "succeed" on the old bytes and
//! return a wrong value (a field added in the middle of a struct shifts the rest).
//!
//! Where the fingerprint of a type comes from, first match wins:
//!
//! 1. [`MemStacheBuilder::register_schema`](crate::MemStacheBuilder::register_schema)
//!    (cargo feature `schema`): the type's serde data model, traced once at build time by
//!    [serde-reflection](https://docs.rs/serde-reflection) (every container, field and
//!    variant, by name, with their formats, nested types resolved), written in a canonical
//!    form and hashed. Any change to what the type's `Deserialize` expects changes it:
//!    a field added, removed, renamed, reordered or retyped, a variant added, a container
//!    renamed. Mixed with the [`schema_version`](crate::MemStacheBuilder::schema_version) when
//!    one is given too.
//! 2. [`schema_version`](crate::MemStacheBuilder::schema_version) alone: the Rust type name and
//!    the version number the application bumps when the type changes. For types
//!    serde-reflection cannot trace (a hand-written `Deserialize` that validates its input,
//!    `#[serde(flatten)]`, untagged enums, self-describing values such as `serde_json::Value`).
//! 3. [`type_check(true)`](crate::MemStacheBuilder::type_check): the Rust type name alone.
//! 4. Otherwise none (0), and entries are not checked.
//!
//! An entry with no fingerprint (written by a build that did not register the type) is
//! decoded as before: the check needs both sides.

use std::collections::HashMap;

use super::pipeline::Fnv;
use crate::{Error, ErrorKind};

/// What `get` and `get_many` do with an entry that verifies (it is not tampered with) but
/// cannot be read as the requested type: written for another schema
/// ([`SchemaMismatch`](ErrorKind::SchemaMismatch)), refused by the type's `Deserialize`
/// ([`Serialization`](ErrorKind::Serialization)), or in a format version, serializer or
/// compressor this build does not know ([`UnsupportedFormat`](ErrorKind::UnsupportedFormat)).
///
/// `get_or_set`, `get_or_load` and `get_or_set_many` always treat such an entry as a miss:
/// they call the loader and overwrite the entry with the value in the current schema (counted
/// in [`StatsSnapshot::decode_misses`](crate::StatsSnapshot::decode_misses)). Tampered or
/// corrupted entries ([`Integrity`](ErrorKind::Integrity)), unknown or destroyed keys and
/// backend failures are errors under either policy.
///
/// ```
/// use memstache_core::{DecodeFailure, MemStache};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
/// let cache = MemStache::builder()
///     .type_check(true)
///     .decode_failure(DecodeFailure::Miss)
///     .build()?;
/// cache.set("k", &7u32, Default::default()).await?;
/// // written as u32, read as String: a miss, not an error
/// assert_eq!(cache.get::<String>("k").await?, None);
/// assert_eq!(cache.stats().decode_misses, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DecodeFailure {
    /// Return the error (the default): a caller of `get` learns that the entry is there but
    /// unreadable, and decides.
    #[default]
    Error,
    /// Return `None`, as for a missing entry, logged at debug level and counted in
    /// [`StatsSnapshot::decode_misses`](crate::StatsSnapshot::decode_misses) (and in
    /// `misses`): after a deploy that changed a type, old entries read as misses until they
    /// are overwritten or expire.
    Miss,
}

/// Whether `kind` is a decode failure in the sense of [`DecodeFailure`].
pub(crate) fn is_decode_failure(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::SchemaMismatch | ErrorKind::Serialization | ErrorKind::UnsupportedFormat
    )
}

/// An entry policy, erased: decodes the plaintext being written as its type and computes the
/// entry's options from the value.
pub(crate) type Policy = Box<
    dyn Fn(&super::pipeline::Pipeline, &[u8]) -> crate::Result<crate::EntryOptions> + Send + Sync,
>;

/// The schema of one registered type, as the builder collects it.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub(crate) type_name: &'static str,
    /// The canonical form of the traced data model, or why it could not be traced.
    pub(crate) traced: Option<Result<Vec<u8>, String>>,
    pub(crate) version: Option<u32>,
}

/// The builder's registrations, keyed by the type-name fingerprint of the type.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registrations(pub(crate) HashMap<u64, Registered>);

impl Registrations {
    pub(crate) fn entry<T: ?Sized>(&mut self) -> &mut Registered {
        self.0
            .entry(super::fingerprint_of::<T>())
            .or_insert_with(|| Registered {
                type_name: std::any::type_name::<T>(),
                traced: None,
                version: None,
            })
    }

    /// The fingerprints to write and expect, or the first type that could not be traced.
    pub(crate) fn resolve(self) -> Result<Schemas, Error> {
        let mut out = HashMap::with_capacity(self.0.len());
        for (type_fp, r) in self.0 {
            let source = match &r.traced {
                Some(Ok(canonical)) => Source::Traced(canonical),
                Some(Err(why)) => {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "register_schema: the serde data model of {} cannot be traced ({why}); \
                             give it a schema_version instead",
                            r.type_name
                        ),
                    ));
                }
                None => Source::TypeName(r.type_name),
            };
            out.insert(type_fp, fingerprint(source, r.version));
        }
        Ok(Schemas(out))
    }
}

/// What a schema fingerprint is computed from.
pub(crate) enum Source<'a> {
    /// The canonical form of a traced data model.
    Traced(&'a [u8]),
    /// The Rust type name (a `schema_version` without a traced schema).
    TypeName(&'a str),
}

/// The one computation of a schema fingerprint (what `build` registers and
/// `schema_fingerprint` reports, so the pinned value covers both).
pub(crate) fn fingerprint(source: Source<'_>, version: Option<u32>) -> u64 {
    let mut h = Fnv::new();
    match source {
        Source::Traced(canonical) => {
            h.write(b"memstache.schema.v1\0");
            h.write(canonical);
        }
        Source::TypeName(name) => {
            h.write(b"memstache.type.v1\0");
            h.write(name.as_bytes());
        }
    }
    if let Some(v) = version {
        h.write(b"\0version\0");
        h.write(&v.to_le_bytes());
    }
    h.finish()
}

/// The built cache's schema fingerprints, keyed by the type-name fingerprint of the type.
#[derive(Debug, Default)]
pub(crate) struct Schemas(HashMap<u64, u64>);

impl Schemas {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn get(&self, type_fp: u64) -> Option<u64> {
        self.0.get(&type_fp).copied()
    }
}

#[cfg(feature = "schema")]
pub(crate) use traced::canonical_schema;
#[cfg(feature = "schema")]
pub use traced::{SchemaTrace, schema_fingerprint, schema_fingerprint_with};

#[cfg(feature = "schema")]
mod traced {
    use serde::de::DeserializeOwned;
    use serde_reflection::{
        ContainerFormat, Format, Named, Registry, Tracer, TracerConfig, VariantFormat,
    };

    use crate::{Error, ErrorKind, Result};

    /// The tracing of one type's serde data model, handed to
    /// [`MemStacheBuilder::register_schema_with`](crate::MemStacheBuilder::register_schema_with)
    /// to name the enums nested in it.
    ///
    /// serde-reflection explores every variant of the type itself when it is an enum, but an
    /// enum nested in it (a field, an `Option`, a `Vec` element) only once: each such enum
    /// must be traced on its own too, or the build fails with an error naming it (so a
    /// fingerprint never covers a part of a type only).
    pub struct SchemaTrace {
        tracer: Tracer,
        error: Option<String>,
    }

    impl std::fmt::Debug for SchemaTrace {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("SchemaTrace")
                .field("error", &self.error)
                .finish_non_exhaustive()
        }
    }

    impl SchemaTrace {
        fn of<T: DeserializeOwned>() -> Self {
            let mut t = SchemaTrace {
                tracer: Tracer::new(TracerConfig::default()),
                error: None,
            };
            t.trace::<T>();
            t
        }

        fn trace<E: DeserializeOwned>(&mut self) -> Option<Format> {
            if self.error.is_some() {
                return None;
            }
            match self.tracer.trace_simple_type::<E>() {
                Ok((format, _)) => Some(format),
                Err(e) => {
                    self.error = Some(e.to_string());
                    None
                }
            }
        }

        /// Traces `E`, an enum nested in the registered type, through all its variants.
        #[must_use]
        pub fn enum_type<E: DeserializeOwned>(mut self) -> Self {
            self.trace::<E>();
            self
        }
    }

    /// The schema fingerprint `register_schema::<T>()` writes into envelopes (without a
    /// `schema_version`): a stable hash of `T`'s traced serde data model. Log it, or pin it in
    /// a test, to notice a change to a cached type before it ships.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct V1 { id: u64 }
    /// #[derive(serde::Deserialize)]
    /// struct V2 { id: u64, name: String }
    /// let (a, b) = (
    ///     memstache_core::schema_fingerprint::<V1>()?,
    ///     memstache_core::schema_fingerprint::<V2>()?,
    /// );
    /// assert_ne!(a, b);
    /// assert_ne!(a, 0);
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) when serde-reflection cannot trace `T`
    /// (see [`MemStacheBuilder::register_schema`](crate::MemStacheBuilder::register_schema)).
    pub fn schema_fingerprint<T: DeserializeOwned>() -> Result<u64> {
        schema_fingerprint_with::<T>(|t| t)
    }

    /// [`schema_fingerprint`] of a type with nested enums, named by `enums` (see
    /// [`SchemaTrace`]).
    ///
    /// # Errors
    /// As [`schema_fingerprint`].
    pub fn schema_fingerprint_with<T: DeserializeOwned>(
        enums: impl FnOnce(SchemaTrace) -> SchemaTrace,
    ) -> Result<u64> {
        let canonical = canonical_schema::<T>(enums).map_err(|why| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "the serde data model of {} cannot be traced ({why})",
                    std::any::type_name::<T>()
                ),
            )
        })?;
        Ok(super::fingerprint(super::Source::Traced(&canonical), None))
    }

    /// `T`'s data model in canonical bytes, or why it cannot be traced.
    pub(crate) fn canonical_schema<T: DeserializeOwned>(
        enums: impl FnOnce(SchemaTrace) -> SchemaTrace,
    ) -> std::result::Result<Vec<u8>, String> {
        let mut trace = enums(SchemaTrace::of::<T>());
        // traced again last, for its root format (the registry holds the containers)
        let root = trace.trace::<T>();
        if let Some(e) = trace.error {
            return Err(e);
        }
        let root = root.ok_or("no format")?;
        match trace.tracer.registry() {
            Ok(registry) => {
                let mut out = Vec::with_capacity(256);
                Canon::new(&registry, &mut out).format(&root)?;
                Ok(out)
            }
            Err(serde_reflection::Error::MissingVariants(names)) => Err(format!(
                "the nested enums {} need tracing on their own: \
                 register_schema_with(|t| t.enum_type::<{}>()…)",
                names.join(", "),
                names.first().map_or("E", String::as_str),
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Writes a format tree in a canonical, self-delimiting byte form: a tag per node,
    /// names and counts length-prefixed, containers inlined at their first use and referred
    /// to by their order of first use afterwards (so recursive types end).
    struct Canon<'a> {
        registry: &'a Registry,
        seen: Vec<&'a str>,
        out: &'a mut Vec<u8>,
    }

    impl<'a> Canon<'a> {
        fn new(registry: &'a Registry, out: &'a mut Vec<u8>) -> Self {
            Canon {
                registry,
                seen: Vec::new(),
                out,
            }
        }

        fn tag(&mut self, t: u8) {
            self.out.push(t);
        }

        fn len(&mut self, n: usize) {
            self.out
                .extend_from_slice(&u64::try_from(n).unwrap_or(u64::MAX).to_le_bytes());
        }

        fn name(&mut self, s: &str) {
            self.len(s.len());
            self.out.extend_from_slice(s.as_bytes());
        }

        fn formats(&mut self, fs: &'a [Format]) -> std::result::Result<(), String> {
            self.len(fs.len());
            fs.iter().try_for_each(|f| self.format(f))
        }

        fn fields(&mut self, fs: &'a [Named<Format>]) -> std::result::Result<(), String> {
            self.len(fs.len());
            for f in fs {
                self.name(&f.name);
                self.format(&f.value)?;
            }
            Ok(())
        }

        fn format(&mut self, f: &'a Format) -> std::result::Result<(), String> {
            match f {
                Format::Variable(_) => return Err("a format was left unknown".into()),
                Format::TypeName(n) => {
                    if let Some(i) = self.seen.iter().position(|s| *s == n.as_str()) {
                        self.tag(1);
                        self.len(i);
                    } else {
                        let c = self
                            .registry
                            .get(n)
                            .ok_or_else(|| format!("container {n} was not traced"))?;
                        self.seen.push(n);
                        self.tag(2);
                        self.name(n);
                        self.container(c)?;
                    }
                }
                Format::Unit => self.tag(3),
                Format::Bool => self.tag(4),
                Format::I8 => self.tag(5),
                Format::I16 => self.tag(6),
                Format::I32 => self.tag(7),
                Format::I64 => self.tag(8),
                Format::I128 => self.tag(9),
                Format::U8 => self.tag(10),
                Format::U16 => self.tag(11),
                Format::U32 => self.tag(12),
                Format::U64 => self.tag(13),
                Format::U128 => self.tag(14),
                Format::F32 => self.tag(15),
                Format::F64 => self.tag(16),
                Format::Char => self.tag(17),
                Format::Str => self.tag(18),
                Format::Bytes => self.tag(19),
                Format::Option(f) => {
                    self.tag(20);
                    self.format(f)?;
                }
                Format::Seq(f) => {
                    self.tag(21);
                    self.format(f)?;
                }
                Format::Map { key, value } => {
                    self.tag(22);
                    self.format(key)?;
                    self.format(value)?;
                }
                Format::Tuple(fs) => {
                    self.tag(23);
                    self.formats(fs)?;
                }
                Format::TupleArray { content, size } => {
                    self.tag(24);
                    self.len(*size);
                    self.format(content)?;
                }
            }
            Ok(())
        }

        fn container(&mut self, c: &'a ContainerFormat) -> std::result::Result<(), String> {
            match c {
                ContainerFormat::UnitStruct => self.tag(40),
                ContainerFormat::NewTypeStruct(f) => {
                    self.tag(41);
                    self.format(f)?;
                }
                ContainerFormat::TupleStruct(fs) => {
                    self.tag(42);
                    self.formats(fs)?;
                }
                ContainerFormat::Struct(fs) => {
                    self.tag(43);
                    self.fields(fs)?;
                }
                ContainerFormat::Enum(variants) => {
                    self.tag(44);
                    self.len(variants.len());
                    for (index, v) in variants {
                        self.out.extend_from_slice(&index.to_le_bytes());
                        self.name(&v.name);
                        match &v.value {
                            VariantFormat::Variable(_) => {
                                return Err("a variant was left unknown".into());
                            }
                            VariantFormat::Unit => self.tag(50),
                            VariantFormat::NewType(f) => {
                                self.tag(51);
                                self.format(f)?;
                            }
                            VariantFormat::Tuple(fs) => {
                                self.tag(52);
                                self.formats(fs)?;
                            }
                            VariantFormat::Struct(fs) => {
                                self.tag(53);
                                self.fields(fs)?;
                            }
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
