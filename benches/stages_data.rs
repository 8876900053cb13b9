//! Seeded test values shared by the `stages` and `stages_count` benches.

/// Seeded JSON-like records: repeated field names, random ids and numbers, a small vocabulary.
pub(crate) fn records(len: usize, mut seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut next = move || {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(len + 128);
    while out.len() < len {
        let id = next();
        let n = next();
        let (w1, w2) = (WORDS[(n % 16) as usize], WORDS[((n >> 8) % 16) as usize]);
        out.extend_from_slice(
            format!(
                "{{\"id\":\"{id:016x}\",\"name\":\"{w1} {w2}\",\"qty\":{},\"price\":{}.{:02}}}\n",
                (n >> 16) % 1000,
                (n >> 32) % 10_000,
                (n >> 48) % 100
            )
            .as_bytes(),
        );
    }
    out.truncate(len);
    out
}
