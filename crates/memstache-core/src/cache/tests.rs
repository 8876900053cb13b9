use super::test_support::capture_logs;
use super::*;
use crate::memory::MemoryBackend;

const SECRET_KEY: &str = "customer-4711-secret-key";
const SECRET_VALUE: &str = "card-number-4111111111111111";

/// Logs, span fields, errors and `Debug` output never contain raw keys or values; they carry the
/// short key hash instead.
#[tokio::test(flavor = "current_thread")]
async fn logs_and_errors_never_contain_keys_or_values() {
    let (out, _guard) = capture_logs(tracing::Level::TRACE);

    let backend = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(backend.clone())
        .build()
        .unwrap();
    let mut errors = Vec::new();
    cache
        .set(SECRET_KEY, &SECRET_VALUE, EntryOptions::default())
        .await
        .unwrap();
    let _: Option<String> = cache.get(SECRET_KEY).await.unwrap();
    // wrong type: a Serialization error, logged by try_get
    errors.push(cache.get::<u64>(SECRET_KEY).await.unwrap_err());
    assert_eq!(cache.try_get::<u64>(SECRET_KEY).await, None);
    // corrupt entry
    let sk = cache.storage_key(SECRET_KEY).unwrap();
    backend
        .set(&sk, Bytes::from_static(b"MSCgarbage"), Expiry::NEVER)
        .await
        .unwrap();
    errors.push(cache.get::<String>(SECRET_KEY).await.unwrap_err());
    // loader error whose message we control does not leak the key either
    errors.push(
        cache
            .get_or_set(SECRET_KEY, EntryOptions::default(), || async {
                Err::<String, _>(std::io::Error::other("db down"))
            })
            .await
            .unwrap_err(),
    );
    errors.push(
        cache
            .set(SECRET_KEY, &vec![0u8; 17 << 20], EntryOptions::default())
            .await
            .unwrap_err(),
    );

    let logs = out.text();
    assert!(
        logs.contains("memstache.get"),
        "spans were captured: {logs}"
    );
    assert!(
        logs.contains(&crate::key_hash(SECRET_KEY)),
        "key hash is logged"
    );
    assert!(!logs.contains(SECRET_KEY), "raw key leaked into logs");
    assert!(!logs.contains(SECRET_VALUE), "value leaked into logs");
    for e in &errors {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(SECRET_KEY), "key leaked into {text}");
            assert!(!text.contains(SECRET_VALUE), "value leaked into {text}");
        }
        assert_eq!(
            e.context_value("key_hash"),
            Some(crate::key_hash(SECRET_KEY).as_str())
        );
    }
    assert!(!format!("{cache:?}").contains(SECRET_KEY));
}

#[tokio::test(flavor = "current_thread")]
async fn flights_are_cleaned_up_after_success_error_and_cancellation() {
    let cache = MemStache::builder().build().unwrap();
    let _: u8 = cache
        .get_or_set("a", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(1u8)
        })
        .await
        .unwrap();
    let _ = cache
        .get_or_set("b", EntryOptions::default(), || async {
            Err::<u8, _>(std::io::Error::other("x"))
        })
        .await;
    let fut = cache.get_or_set("c", EntryOptions::default(), || async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, std::io::Error>(1u8)
    });
    let _ = tokio::time::timeout(Duration::from_millis(10), fut).await;
    assert_eq!(cache.inner.flights.len(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn operation_timeout_bounds_a_slow_backend() {
    #[derive(Debug)]
    struct Slow;
    #[async_trait::async_trait]
    impl Backend for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn capabilities(&self) -> crate::raw::Capabilities {
            crate::raw::Capabilities::default().with_distributed(true)
        }
        async fn get(&self, _: &str) -> Result<Option<Bytes>> {
            std::future::pending().await
        }
        async fn set(&self, _: &str, _: Bytes, _: Expiry) -> Result<()> {
            std::future::pending().await
        }
        async fn remove(&self, _: &str) -> Result<bool> {
            std::future::pending().await
        }
        async fn exists(&self, _: &str) -> Result<bool> {
            std::future::pending().await
        }
        async fn touch(&self, _: &str) -> Result<bool> {
            std::future::pending().await
        }
    }
    tokio::time::pause();
    let cache = MemStache::builder().backend(Slow).build().unwrap();
    assert_eq!(
        cache.inner.operation_timeout,
        Some(DEFAULT_DISTRIBUTED_TIMEOUT)
    );
    let e = cache.get::<u8>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_temporary());
    assert_eq!(e.operation(), Some("get"));
    assert_eq!(e.context_value("backend"), Some("slow"));
    // get_or_set stays available: the read times out, the loader's value is returned
    let v: u8 = cache
        .get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(3u8)
        })
        .await
        .unwrap();
    assert_eq!(v, 3);
    // get; get_or_set: the read, the re-read after becoming leader, and the store
    assert_eq!(cache.stats().errors, 4);
}

#[test]
fn builder_rejects_bad_configuration() {
    for ns in ["", "has:colon", "has space", "{tag}"] {
        let e = MemStache::builder().namespace(ns).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "namespace {ns:?}");
    }
    let e = MemStache::builder().max_value_size(0).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    let e = MemStache::builder()
        .default_entry_options(EntryOptions::new().encrypt(true))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test(flavor = "current_thread")]
async fn encrypt_true_without_encryptor_is_an_error_not_plaintext() {
    let cache = MemStache::builder().build().unwrap();
    let e = cache
        .set("k", &1u8, EntryOptions::new().encrypt(true))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert_eq!(cache.get::<u8>("k").await.unwrap(), None);
}

#[cfg(all(feature = "json", feature = "postcard"))]
#[tokio::test(flavor = "current_thread")]
async fn entries_stay_readable_when_the_serializer_changes() {
    let backend = MemoryBackend::new();
    let json = MemStache::builder()
        .backend(backend.clone())
        .serializer(crate::serializer::Json)
        .build()
        .unwrap();
    json.set("k", &vec![1u32, 2], EntryOptions::default())
        .await
        .unwrap();
    // a cache reads another format only when told to
    let strict = MemStache::builder()
        .backend(backend.clone())
        .build()
        .unwrap();
    assert_eq!(
        strict.get::<Vec<u32>>("k").await.unwrap_err().kind(),
        ErrorKind::UnsupportedFormat
    );
    let postcard = MemStache::builder()
        .backend(backend)
        .accept_serializer(crate::serializer::Json)
        .build()
        .unwrap();
    assert_eq!(
        postcard.get::<Vec<u32>>("k").await.unwrap(),
        Some(vec![1, 2])
    );
}

#[cfg(feature = "msgpack")]
#[tokio::test(flavor = "current_thread")]
async fn msgpack_uses_named_fields() {
    #[derive(serde::Serialize)]
    struct V1 {
        a: u32,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct V2 {
        #[serde(default)]
        b: u32,
        a: u32,
    }
    let cache = MemStache::builder()
        .serializer(crate::serializer::MessagePack)
        .build()
        .unwrap();
    cache
        .set("k", &V1 { a: 5 }, EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(cache.get::<V2>("k").await.unwrap(), Some(V2 { b: 0, a: 5 }));
}

/// Operations in a labelled scope carry the label on their spans (`scope`) and errors (the
/// label's name), and still never the key or the value.
#[tokio::test(flavor = "current_thread")]
async fn a_scope_label_is_a_span_field_and_error_context() {
    let (out, _guard) = capture_logs(tracing::Level::TRACE);
    let cache = MemStache::builder().build().unwrap();
    let label = crate::scope::Label::new("team", "blue-team");
    let scope = crate::scope::Scope::new("ms#x:", "default").labelled(&label);
    cache
        .set_in(&scope, SECRET_KEY, &SECRET_VALUE, EntryOptions::default())
        .await
        .unwrap();
    let e = cache.get_in::<u64>(&scope, SECRET_KEY).await.unwrap_err();
    assert_eq!(e.context_value("team"), Some("blue-team"));
    let logs = out.text();
    assert!(
        logs.contains("scope=\"blue-team\"") || logs.contains("scope=blue-team"),
        "{logs}"
    );
    assert!(!logs.contains(SECRET_KEY) && !logs.contains(SECRET_VALUE));
}

/// Keys with a control character (C0, DEL or C1) are rejected; any other text, ASCII or not,
/// is a key.
#[test]
fn key_validation_rejects_every_control_character() {
    let cache = MemStache::builder().build().unwrap();
    for bad in [
        "a\nb",
        "\u{0}",
        "x\u{7f}",
        "tab\there",
        "c1\u{85}",
        "\u{9f}",
        "é\u{80}",
    ] {
        let e = cache.storage_key(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey, "{bad:?}");
    }
    for good in ["user:42", "émile", "ключ", "\u{a0}nbsp", "日本", "a b~"] {
        assert!(cache.storage_key(good).is_ok(), "{good:?}");
    }
    // every char agrees with char::is_control
    for c in (0u32..0x300).filter_map(char::from_u32) {
        let key = format!("k{c}");
        assert_eq!(
            cache.storage_key(&key).is_err(),
            c.is_control(),
            "U+{:04X}",
            c as u32
        );
    }
}

/// `set` encodes plaintext entries in place; the bytes are exactly those of the general
/// path (serialize, then encode), for every size the size hint has to adapt to.
#[tokio::test(flavor = "current_thread")]
async fn in_place_encoding_matches_the_general_path() {
    use super::pipeline::Prepared;
    let cache = MemStache::builder().build().unwrap();
    let opts = EntryOptions::default().absolute_expiration(std::time::Duration::from_secs(60));
    for len in [0usize, 5, 1000, 10, 70_000, 3, 2_000] {
        let value = "x".repeat(len);
        let (params, _) = cache
            .encode_params::<String>("ms:k", "default", &opts, 1_234)
            .unwrap();
        let Prepared::Done(direct) = cache.inner.pipeline.encode_value(&value, &params).unwrap()
        else {
            panic!("a plaintext entry without compression is encoded in place");
        };
        let plain = cache.inner.pipeline.serialize(&value).unwrap();
        let general = cache
            .inner
            .pipeline
            .encode_serialized(&plain, &params)
            .await
            .unwrap();
        assert_eq!(direct, general, "len {len}");
    }
}

/// An envelope written after a much larger one does not keep the larger one's buffer: stored
/// entries are counted by their length, so their allocation must be close to it.
#[tokio::test(flavor = "current_thread")]
async fn in_place_encoding_does_not_keep_an_oversized_buffer() {
    use super::pipeline::Prepared;
    let cache = MemStache::builder().build().unwrap();
    let opts = EntryOptions::default();
    let mut sizes = vec![];
    for len in [50_000usize, 30_000, 200, 40_000, 26_000] {
        let value = "y".repeat(len);
        let (params, _) = cache
            .encode_params::<String>("ms:k", "default", &opts, 1)
            .unwrap();
        let Prepared::Done(b) = cache.inner.pipeline.encode_value(&value, &params).unwrap() else {
            panic!("plaintext is encoded in place");
        };
        // Bytes made from a Vec whose capacity exceeds its length keeps the Vec; check it
        // through the Vec it converts back into (no copy when unique)
        let v: Vec<u8> = b.into();
        assert!(
            v.capacity() - v.len() <= v.len() / 8,
            "len {len}: cap {}",
            v.capacity()
        );
        sizes.push(v.len());
    }
    assert!(sizes.windows(2).all(|w| w[0] != w[1]));
}

/// A batch's storage keys are built into one buffer: each is exactly what `storage_key` gives
/// for the same key, in order, and one bad key fails the batch before anything is read.
#[tokio::test(flavor = "current_thread")]
async fn batch_keys_match_single_keys() {
    let cache = MemStache::builder()
        .namespace("ns")
        .backend(MemoryBackend::new())
        .build()
        .unwrap();
    let keys = ["a", "", "ü-ключ", "a"];
    let batch = cache.keys_in(&cache.root(), &keys[2..]).unwrap();
    let built: Vec<&str> = batch.iter().collect();
    let single: Vec<String> = keys[2..]
        .iter()
        .map(|k| cache.storage_key(k).unwrap())
        .collect();
    assert_eq!(built, single);
    assert!(
        cache
            .keys_in(&cache.root(), &keys[..0])
            .unwrap()
            .iter()
            .next()
            .is_none()
    );
    let err = cache.keys_in(&cache.root(), &keys).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);

    // a backend that fails every call: a batch with a bad key must fail on the key, before
    // the backend is called
    #[derive(Debug)]
    struct Refusing;
    fn called() -> Error {
        Error::new(ErrorKind::Backend, "the backend was called")
    }
    #[async_trait::async_trait]
    impl Backend for Refusing {
        fn name(&self) -> &'static str {
            "refusing"
        }
        fn capabilities(&self) -> crate::raw::Capabilities {
            crate::raw::Capabilities::default()
        }
        async fn get(&self, _: &str) -> Result<Option<Bytes>> {
            Err(called())
        }
        async fn set(&self, _: &str, _: Bytes, _: Expiry) -> Result<()> {
            Err(called())
        }
        async fn remove(&self, _: &str) -> Result<bool> {
            Err(called())
        }
        async fn exists(&self, _: &str) -> Result<bool> {
            Err(called())
        }
        async fn touch(&self, _: &str) -> Result<bool> {
            Err(called())
        }
        async fn get_many(&self, _: &[&str]) -> Result<Vec<Option<Bytes>>> {
            Err(called())
        }
        async fn remove_many(&self, _: &[&str]) -> Result<u64> {
            Err(called())
        }
    }
    let refusing = MemStache::builder().backend(Refusing).build().unwrap();
    let err = refusing.get_many::<u8, _>(&keys).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    let err = refusing.remove_many(&keys).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    // and without a bad key, the backend is reached
    let err = refusing.get_many::<u8, _>(&keys[2..]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
}

/// Entries stay readable when a cache's serializer changes: each entry names its serializer.
/// A postcard entry read by a MessagePack cache takes the typed postcard path; a MessagePack
/// entry read by a postcard cache goes through the erased one.
#[cfg(feature = "msgpack")]
#[tokio::test(flavor = "current_thread")]
async fn entries_stay_readable_across_serializers() {
    let backend = MemoryBackend::new();
    let postcard = MemStache::builder()
        .namespace("shared")
        .backend(backend.clone())
        .accept_serializer(crate::serializer::MessagePack)
        .build()
        .unwrap();
    let msgpack = MemStache::builder()
        .namespace("shared")
        .backend(backend)
        .serializer(crate::serializer::MessagePack)
        .accept_serializer(crate::serializer::Postcard)
        .build()
        .unwrap();
    let value = ("written by postcard".to_owned(), 7u64);
    postcard
        .set("p", &value, EntryOptions::default())
        .await
        .unwrap();
    msgpack
        .set("m", &vec![1u8, 2, 3], EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(
        msgpack.get::<(String, u64)>("p").await.unwrap(),
        Some(value)
    );
    assert_eq!(
        postcard.get::<Vec<u8>>("m").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    // a postcard entry decoded as the wrong type is still a typed error through the other cache
    let e = msgpack.get::<Vec<String>>("p").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Serialization);
}

/// Every byte of an operation's future is copied when the caller boxes, spawns or pushes it
/// into a `FuturesUnordered`, several times per operation: these bounds catch a rare path
/// (fail-safe, layers, encryption, an unboxed backend future) leaking into the plain path's
/// state. At the time of writing: `get` 800 bytes, `set` 1,064.
#[test]
fn operation_futures_stay_small() {
    let cache = MemStache::builder().build().unwrap();
    let value = "v".to_string();
    let get = cache.get::<String>("k");
    let set = cache.set("k", &value, EntryOptions::default());
    let root = cache.root();
    let read = cache.read(super::road::Via::plain(&cache), &root, "k");
    let decode = cache.decode::<String>(b"", "k", "default");
    for (name, size, budget) in [
        ("get", std::mem::size_of_val(&get), 1024),
        ("set", std::mem::size_of_val(&set), 1152),
        ("read", std::mem::size_of_val(&read), 192),
        ("decode", std::mem::size_of_val(&decode), 192),
    ] {
        eprintln!("{name}: {size} bytes (budget {budget})");
        assert!(size <= budget, "{name}: {size} bytes > {budget}");
    }
}

/// Storage keys are built inline up to 96 bytes and on the heap beyond: keys on both sides of
/// the boundary (namespace prefix included) read back their own values, and `remove`,
/// `exists` and `refresh` reach the same entries.
#[tokio::test]
async fn keys_either_side_of_the_inline_limit_round_trip() {
    let cache = MemStache::builder().namespace("ns").build().unwrap();
    let prefix_len = cache.storage_key("x").unwrap().len() - 1;
    for total in [1usize, 95, 96, 97, 200, 1000] {
        let Some(user_len) = total.checked_sub(prefix_len).filter(|n| *n > 0) else {
            continue;
        };
        let key: String = (0..user_len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let value = format!("value of a {total}-byte storage key");
        cache
            .set(&key, &value, EntryOptions::default())
            .await
            .unwrap();
        assert_eq!(cache.get::<String>(&key).await.unwrap(), Some(value));
        assert!(cache.exists(&key).await.unwrap());
        assert!(cache.refresh(&key).await.unwrap());
        assert!(cache.remove(&key).await.unwrap());
        assert_eq!(cache.get::<String>(&key).await.unwrap(), None);
    }
}

/// Two `get_or_set` callers of one key with different types, concurrently: each gets its own
/// loader's value. Before the type was part of the flight key, the `bool` caller waited on the
/// `u8` leader's flight and decoded its bytes (`[1]`) as `true`: wrong data, no error.
#[tokio::test(flavor = "current_thread")]
async fn get_or_set_callers_of_different_types_never_share_a_flight() {
    let cache = MemStache::builder().build().unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    let (c, r) = (cache.clone(), Arc::clone(&release));
    let leader = tokio::spawn(async move {
        c.get_or_set("k", EntryOptions::default(), || async move {
            r.notified().await;
            Ok::<_, std::io::Error>(1u8)
        })
        .await
    });
    tokio::task::yield_now().await; // the u8 caller leads, its loader waits
    assert_eq!(cache.inner.flights.len(), 1);
    let c = cache.clone();
    let other = tokio::spawn(async move {
        c.get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(false)
        })
        .await
    });
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    release.notify_one();
    assert!(!other.await.unwrap().unwrap());
    assert_eq!(leader.await.unwrap().unwrap(), 1u8);
    assert_eq!(cache.stats().loader_calls, 2);
}

fn boom() -> std::result::Result<u8, std::io::Error> {
    panic!("loader panicked")
}

/// A loader that panics abandons its flight: a caller waiting on it retries, leads, and gets
/// its own loader's value; no flight is left behind.
#[tokio::test(flavor = "current_thread")]
async fn a_panicking_loader_does_not_strand_its_waiters() {
    let cache = MemStache::builder().build().unwrap();
    let c = cache.clone();
    let panicking = tokio::spawn(async move {
        c.get_or_set("k", EntryOptions::default(), || async {
            tokio::task::yield_now().await;
            boom()
        })
        .await
    });
    tokio::task::yield_now().await;
    let c = cache.clone();
    let waiter = tokio::spawn(async move {
        c.get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(4u8)
        })
        .await
    });
    assert!(panicking.await.unwrap_err().is_panic());
    assert_eq!(waiter.await.unwrap().unwrap(), 4);
    assert_eq!(cache.inner.flights.len(), 0);
}
