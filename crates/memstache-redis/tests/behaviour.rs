//! The shared behaviour suite (`memstache_testkit::behaviour`) on Redis: standalone, Sentinel
//! and Cluster, each a real set of processes started here.
//!
//! One test function per topology runs every case in sequence against one shared topology
//! (each case uses its own random namespace), so the processes are started once and killed when
//! the function ends or panics. The case list mirrors `memstache_testkit::behaviour_tests!`.

use std::sync::Arc;

use memstache_redis::RedisBackend;
use memstache_testkit::behaviour::{self, RealTimeHarness};
use memstache_testkit::redis::{RedisCluster, RedisSentinelSet, RedisServer};

macro_rules! run_cases {
    ($h:expr; $($name:ident),* $(,)?) => {
        $(
            eprintln!("behaviour case: {}", stringify!($name));
            behaviour::$name($h).await;
        )*
    };
}

async fn run_suite(url: &str) {
    let backend = RedisBackend::connect(url).await.expect("connect");
    let h = &RealTimeHarness::new(Arc::new(backend));
    run_cases!(h;
        roundtrip_typed, miss_is_none, remove_and_exists, overwrite_replaces,
        namespaces_are_isolated, concurrent_tasks_see_their_own_values, large_value_roundtrip,
        invalid_keys_are_rejected, oversized_value_is_rejected_and_nothing_written,
        wrong_type_is_an_error_not_data, unicode_and_separator_keys,
        absolute_expiration, absolute_expiration_at_instant, default_entry_options_apply,
        sliding_expiration_rearms_and_is_capped, refresh_rearms_sliding,
        exists_does_not_rearm_sliding, past_deadline_removes_the_old_value,
        get_or_set_single_flight, get_or_set_loader_error_reaches_every_waiter,
        get_or_set_leader_cancelled, get_or_set_returns_cached_value,
        batch_roundtrip_in_order, batch_rejects_bad_key_before_writing, remove_many_counts,
        corrupt_entry_is_integrity_error, flipped_byte_is_detected, copied_entry_is_detected,
        unknown_format_version_is_unsupported, truncated_entry_is_integrity_error,
        type_check_rejects_other_type, stats_count_hits_and_misses
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_standalone() {
    let server = RedisServer::start();
    run_suite(&server.url()).await;
}

/// The same suite with every read through the Lua script (`SlidingReads::Script`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_standalone_script_reads() {
    let server = RedisServer::start();
    run_suite(&format!("{}?sliding_reads=script", server.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_sentinel() {
    let set = RedisSentinelSet::start();
    run_suite(&set.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_cluster() {
    let cluster = RedisCluster::start();
    run_suite(&cluster.url()).await;
}
