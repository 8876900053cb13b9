//! memstache on Redis: typed entries shared by two cache "nodes", absolute and sliding
//! expiration, batches, and what a miss and an error look like.
//!
//! ```text
//! cargo run -p memstache-examples --example redis                      # starts its own redis-server
//! cargo run -p memstache-examples --example redis -- redis://127.0.0.1:6379
//! cargo run -p memstache-examples --example redis -- 'redis-cluster://127.0.0.1:7000'
//! ```
//!
//! Without a URL the example starts a throw-away `redis-server` on a free loopback port
//! (`apt-get install -y redis-server` provides it) and stops it at the end.

use std::time::Duration;

use memstache::redis::RedisBackend;
use memstache::{EntryOptions, MemStache};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    roles: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), memstache::Error> {
    // A URL from the command line, or a private server for this run.
    let (url, _server) = match std::env::args().nth(1) {
        Some(url) => (url, None),
        None => {
            let server = memstache_harness::redis::RedisServer::start();
            (server.url(), Some(server))
        }
    };

    // Two caches over two connections play two application nodes sharing one Redis.
    let node_a = MemStache::builder()
        .namespace("example")
        .backend(RedisBackend::connect(&url).await?)
        .default_entry_options(EntryOptions::new().absolute_expiration(Duration::from_secs(3600)))
        .operation_timeout(Duration::from_millis(500))
        .build()?;
    let node_b = MemStache::builder()
        .namespace("example")
        .backend(RedisBackend::connect(&url).await?)
        .build()?;

    let alice = User {
        id: 42,
        name: "Alice".into(),
        roles: vec!["admin".into()],
    };
    node_a
        .set("user:42", &alice, EntryOptions::default())
        .await?;
    let seen: Option<User> = node_b.get("user:42").await?;
    println!("node B reads what node A wrote: {seen:?}");
    assert_eq!(seen.as_ref(), Some(&alice));

    // A session that lives 30 minutes after its last read, 8 hours at most. Each hit re-arms
    // the TTL in the same round trip (a Lua script on the server).
    let session = EntryOptions::new()
        .sliding_expiration(Duration::from_secs(30 * 60))
        .absolute_expiration(Duration::from_secs(8 * 3600));
    node_a.set("session:abc", &"token-data", session).await?;
    let s: Option<String> = node_b.get("session:abc").await?;
    println!("session via node B: {s:?}");

    // Batches: one round trip per Redis node, results in key order, misses as None.
    node_a
        .set_many(&[("a", &1u32), ("b", &2u32)], EntryOptions::default())
        .await?;
    let many: Vec<Option<u32>> = node_b.get_many(&["a", "missing", "b"]).await?;
    println!("get_many: {many:?}");
    assert_eq!(many, vec![Some(1), None, Some(2)]);

    // A miss is Ok(None); an error means "could not tell" (e.g. Redis unreachable).
    let none: Option<User> = node_a.get("user:7").await?;
    println!("missing key: {none:?}");
    println!("removed: {}", node_b.remove("user:42").await?);
    println!("still there: {}", node_a.exists("user:42").await?);
    Ok(())
}
