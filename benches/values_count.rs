//! Exact, repeatable instruction counts of `set` and `get` by value type and serializer, for
//! callgrind (issue 15, point 5: a byte value must cost no more than a `String` of the same
//! size). Each row runs `N` operations inside its own `#[inline(never)]` function on a
//! current-thread runtime, on the memory backend, so the function's inclusive count divided by
//! `N` is the cost of one operation:
//!
//! ```text
//! cargo bench -p memstache-benches --bench values_count --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/deps/values_count-<hash>
//! callgrind_annotate --inclusive=yes cg.out | grep values_count::
//! ```
//!
//! Rows: `{postcard,msgpack,json}_{vec,bytes,bytebuf,string,record}_{set,get}`, the first four
//! 1 KiB values (the byte values hold every byte value, so MessagePack's one- and two-byte
//! integer forms both occur), `record` a small struct. Each row function passes its own id
//! down, so identical code folding cannot merge them. Run without valgrind it only checks that
//! every row works.

use std::hint::black_box;

use bytes::Bytes;
use memstache::raw::Serializer;
use memstache::serializer::{Json, MessagePack, Postcard};
use memstache::{EntryOptions, MemStache};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_bytes::ByteBuf;
use tokio::runtime::Runtime;

/// Operations per row.
const N: usize = 2_000;
/// Distinct keys.
const KEYS: usize = 100;
/// Size of the byte and text values.
const SIZE: usize = 1024;

/// A small struct, the shape of a typical cached record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: i32,
    tags: Vec<String>,
}

fn record() -> Record {
    Record {
        id: 42,
        name: "Ada Lovelace".to_owned(),
        email: "ada@example.org".to_owned(),
        active: true,
        score: -17,
        tags: vec!["admin".to_owned(), "beta".to_owned()],
    }
}

fn raw() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 37 % 256) as u8).collect()
}

#[inline(never)]
fn get_path<T: DeserializeOwned>(rt: &Runtime, cache: &MemStache, keys: &[String], path: u8) {
    black_box(path);
    rt.block_on(async {
        for i in 0..N {
            let v: Option<T> = cache.get(&keys[i % KEYS]).await.expect("get");
            black_box(v.expect("hit"));
        }
    });
}

#[inline(never)]
fn set_path<T: Serialize>(rt: &Runtime, cache: &MemStache, keys: &[String], v: &T, path: u8) {
    black_box(path);
    rt.block_on(async {
        for i in 0..N {
            cache
                .set(&keys[i % KEYS], black_box(v), EntryOptions::default())
                .await
                .expect("set");
        }
    });
}

/// The values, one of each type.
struct Values {
    vec: Vec<u8>,
    bytes: Bytes,
    bytebuf: ByteBuf,
    string: String,
    record: Record,
}

macro_rules! rows {
    ($($set:ident, $get:ident, $field:ident: $ty:ty, $id:literal;)*) => {
        $(
            #[inline(never)]
            fn $set(rt: &Runtime, cache: &MemStache, keys: &[String], v: &Values) {
                set_path::<$ty>(rt, cache, keys, &v.$field, $id);
            }
            #[inline(never)]
            fn $get(rt: &Runtime, cache: &MemStache, keys: &[String], _v: &Values) {
                get_path::<$ty>(rt, cache, keys, $id + 100);
            }
        )*
    };
}

rows! {
    postcard_vec_set, postcard_vec_get, vec: Vec<u8>, 1;
    postcard_bytes_set, postcard_bytes_get, bytes: Bytes, 2;
    postcard_bytebuf_set, postcard_bytebuf_get, bytebuf: ByteBuf, 3;
    postcard_string_set, postcard_string_get, string: String, 4;
    postcard_record_set, postcard_record_get, record: Record, 5;
    msgpack_vec_set, msgpack_vec_get, vec: Vec<u8>, 11;
    msgpack_bytes_set, msgpack_bytes_get, bytes: Bytes, 12;
    msgpack_bytebuf_set, msgpack_bytebuf_get, bytebuf: ByteBuf, 13;
    msgpack_string_set, msgpack_string_get, string: String, 14;
    msgpack_record_set, msgpack_record_get, record: Record, 15;
    json_vec_set, json_vec_get, vec: Vec<u8>, 21;
    json_bytes_set, json_bytes_get, bytes: Bytes, 22;
    json_bytebuf_set, json_bytebuf_get, bytebuf: ByteBuf, 23;
    json_string_set, json_string_get, string: String, 24;
    json_record_set, json_record_get, record: Record, 25;
}

type Row = fn(&Runtime, &MemStache, &[String], &Values);

fn cache<S: Serializer>(s: S) -> MemStache {
    MemStache::builder()
        .namespace("v")
        .serializer(s)
        .build()
        .expect("cache")
}

/// Runs each (set, get) pair on a fresh cache: a warm-up write and read of every key, then
/// the counted set row, then the counted get row.
fn run(
    rt: &Runtime,
    make: &dyn Fn() -> MemStache,
    keys: &[String],
    v: &Values,
    rows: &[(Row, Row)],
) {
    for (set, get) in rows {
        let c = make();
        set(rt, &c, keys, v);
        get(rt, &c, keys, v);
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k:{i}")).collect();
    let raw = raw();
    let v = Values {
        vec: raw.clone(),
        bytes: Bytes::from(raw.clone()),
        bytebuf: ByteBuf::from(raw),
        string: "x".repeat(SIZE),
        record: record(),
    };
    // warm-up: the allocator and the runtime see one full round first
    for make in [
        &(|| cache(Postcard)) as &dyn Fn() -> MemStache,
        &|| cache(MessagePack),
        &|| cache(Json),
    ] {
        let c = make();
        set_path(&rt, &c, &keys, &v.vec, 0);
        get_path::<Vec<u8>>(&rt, &c, &keys, 0);
    }
    run(
        &rt,
        &|| cache(Postcard),
        &keys,
        &v,
        &[
            (postcard_vec_set, postcard_vec_get),
            (postcard_bytes_set, postcard_bytes_get),
            (postcard_bytebuf_set, postcard_bytebuf_get),
            (postcard_string_set, postcard_string_get),
            (postcard_record_set, postcard_record_get),
        ],
    );
    run(
        &rt,
        &|| cache(MessagePack),
        &keys,
        &v,
        &[
            (msgpack_vec_set, msgpack_vec_get),
            (msgpack_bytes_set, msgpack_bytes_get),
            (msgpack_bytebuf_set, msgpack_bytebuf_get),
            (msgpack_string_set, msgpack_string_get),
            (msgpack_record_set, msgpack_record_get),
        ],
    );
    run(
        &rt,
        &|| cache(Json),
        &keys,
        &v,
        &[
            (json_vec_set, json_vec_get),
            (json_bytes_set, json_bytes_get),
            (json_bytebuf_set, json_bytebuf_get),
            (json_string_set, json_string_get),
            (json_record_set, json_record_get),
        ],
    );
    // every row read back what it wrote (checked once, outside the counted rows)
    let c = cache(Json);
    rt.block_on(async {
        c.set("check", &v.record, EntryOptions::default())
            .await
            .expect("set");
        let back: Option<Record> = c.get("check").await.expect("get");
        assert_eq!(back.as_ref(), Some(&v.record));
    });
    println!("values_count: {N} operations per row");
}
