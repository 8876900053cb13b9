//! Writes the seed corpus into `fuzz/corpus/<target>/`: for every writer (plain, gzip, zstd,
//! encrypted, encrypted zstd, encrypted gzip) a stored envelope (`read_raw`,
//! `envelope_decode`) and structured cases (`read_path`) unchanged, with a re-sealed header or
//! payload change, and with a raw byte change; a few URLs for `redis_config`.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example write_seeds` (deterministic: the
//! same files each run, except the random nonces of encrypted entries).

use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use memstache_fuzz::{Case, Mutation, Value, Writer, seeds};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut written = 0usize;
    let mut total = 0usize;
    let mut put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), bytes).expect("seed file");
        written += 1;
        total += bytes.len();
    };
    for (target, name, bytes) in seeds() {
        put(target, &name, &bytes);
    }
    // read_path: search deterministic byte strings for cases of each writer and each kind of
    // change (libFuzzer decodes its input with `arbitrary_take_rest`, as done here).
    let kinds = ["unchanged", "resealed", "raw"];
    let mut found = vec![[false; 3]; Writer::ALL.len()];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    'search: for _ in 0..2_000_000 {
        let len = 24 + (x % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let Ok(case) = Case::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue;
        };
        // compressible values only, so that the compressing writers do compress
        if !matches!(&case.value, Value::Repeated { unit, times } if !unit.is_empty() && *times > 40)
        {
            continue;
        }
        let structural = case
            .mutations
            .iter()
            .any(|m| matches!(m, Mutation::Header(..) | Mutation::Payload { .. }));
        let raw = case
            .mutations
            .iter()
            .any(|m| matches!(m, Mutation::Flip { .. }));
        let kind = match (
            case.mutations.is_empty(),
            structural && case.reseal && !raw,
            raw,
        ) {
            (true, _, _) => 0,
            (false, true, _) => 1,
            (false, false, true) if case.mutations.len() == 1 => 2,
            _ => continue,
        };
        let w = Writer::ALL
            .iter()
            .position(|w| *w == case.writer)
            .unwrap_or(0);
        if found[w][kind] {
            continue;
        }
        found[w][kind] = true;
        let name = format!("{:?}-{}", case.writer, kinds[kind]).to_lowercase();
        // the case must pass the target's property
        memstache_fuzz::run_case(&case);
        put("read_path", &name, &bytes);
        if found.iter().all(|k| k.iter().all(|&f| f)) {
            break 'search;
        }
    }
    for (w, kinds_found) in Writer::ALL.iter().zip(&found) {
        for (k, f) in kinds.iter().zip(kinds_found) {
            if !f {
                eprintln!("no read_path seed found for {w:?} / {k}");
            }
        }
    }
    for (name, url) in [
        ("standalone", "\x00localhost:6379/0?connect_timeout_ms=100"),
        (
            "cluster",
            "\x0210.0.0.1:7000?node=10.0.0.2:7000&node=[::1]:7001",
        ),
        (
            "sentinel",
            "\x0410.0.0.9?service_name=mymaster&node=10.0.0.8:26379",
        ),
        ("tls", "\x01cache.example:6380?tls_ca_file=/etc/ca.pem"),
        ("raw", "\x00redis://:p%40ss@127.0.0.1:6379/3?client=fred"),
    ] {
        put("redis_config", name, url.as_bytes());
    }
    println!(
        "wrote {written} seed files ({total} bytes) under {}",
        root.display()
    );
}
