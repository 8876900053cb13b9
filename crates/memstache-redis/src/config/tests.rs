use super::*;

#[test]
fn standalone_defaults() {
    let c = RedisConfig::from_url("redis://localhost").unwrap();
    assert_eq!(
        c.topology,
        Topology::Standalone {
            host: "localhost".into(),
            port: 6379
        }
    );
    assert!(!c.tls);
    assert_eq!(c.database, None);
    assert_eq!(c.pool_size, 1);
    assert_eq!(c.username, None);
    assert_eq!(c.password, None);
    assert!(!c.resp3);
}

#[test]
fn credentials_are_percent_decoded_and_hidden() {
    let c = RedisConfig::from_url("rediss://alice:p%40ss%3Aw0rd@h:1/3").unwrap();
    assert!(c.tls);
    assert_eq!(c.username.as_deref(), Some("alice"));
    assert_eq!(c.password.as_deref(), Some("p@ss:w0rd"));
    assert_eq!(c.database, Some(3));
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("p@ss"), "{dbg}");
    assert!(!dbg.contains("w0rd"), "{dbg}");
    assert!(dbg.contains("REDACTED"));
    assert!(dbg.contains("alice"));
    let c = RedisConfig::from_url("redis://:only@h").unwrap();
    assert_eq!(c.username, None);
    assert_eq!(c.password.as_deref(), Some("only"));
}

#[test]
fn parameters() {
    let c = RedisConfig::from_url(
        "redis://h?pool_size=3&connect_timeout_ms=150&command_timeout_ms=0&protocol=resp3&sliding_reads=disabled",
    )
    .unwrap();
    assert_eq!(c.pool_size, 3);
    assert_eq!(c.connect_timeout, Duration::from_millis(150));
    assert_eq!(c.command_timeout, Duration::ZERO);
    assert!(c.resp3);
    assert_eq!(c.sliding_reads, SlidingReads::Disabled);
    let f = RedisConfig::from_url("redis://h?client=fred").unwrap();
    assert_eq!(f.client, RedisClient::Fred);
    let r = RedisConfig::from_url("redis://h?client=redis-rs").unwrap();
    assert_eq!(r.client, RedisClient::RedisRs);
    assert!(RedisConfig::from_url("redis://h?client=jedis").is_err());
}

#[test]
fn cluster_and_sentinel() {
    let c =
        RedisConfig::from_url("rediss-cluster://u:p@a:7000?node=b:7001&node=[::1]:7002").unwrap();
    assert!(c.tls);
    assert_eq!(
        c.topology,
        Topology::Cluster {
            nodes: vec![("a".into(), 7000), ("b".into(), 7001), ("::1".into(), 7002)]
        }
    );
    assert!(c.topology.is_cluster());
    let s = RedisConfig::from_url("redis-sentinel://s1:5000/1?sentinelServiceName=m&node=s2:5001")
        .unwrap();
    assert_eq!(s.database, Some(1));
    assert_eq!(
        s.topology,
        Topology::Sentinel {
            sentinels: vec![("s1".into(), 5000), ("s2".into(), 5001)],
            service_name: "m".into()
        }
    );
}

#[test]
fn bad_urls_are_invalid_config_without_the_password() {
    for url in [
        "http://h",
        "redis://",
        "redis://h/abc",
        "redis://h/300",
        "redis://h?pool_size=0",
        "redis://h?pool_size=x",
        "redis://h?bogus=1",
        "redis://h?node=b:1",
        "redis://h?service_name=m",
        "redis://h?protocol=resp4",
        "redis-cluster://h:1/2",
        "redis-cluster://h:1?node=nocolon",
        "redis-sentinel://h",
        "redis://u:secretpw@h?connect_timeout_ms=-1",
        "redis://u:bad%zzpw@h",
        "not a url secretpw",
    ] {
        let e = RedisConfig::from_url(url).expect_err(url);
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
        assert!(!e.to_string().contains("secretpw"), "{e}");
        assert!(!format!("{e:?}").contains("secretpw"), "{e:?}");
    }
}

#[test]
fn validate_rejects_bad_combinations() {
    let mut c = RedisConfig::default();
    assert!(c.validate().is_ok());
    c.topology = Topology::Cluster { nodes: vec![] };
    assert!(c.validate().is_err());
    c.topology = Topology::Cluster {
        nodes: vec![("h".into(), 1)],
    };
    c.database = Some(1);
    assert!(c.validate().is_err());
    c.database = None;
    c.topology = Topology::Sentinel {
        sentinels: vec![("h".into(), 1)],
        service_name: String::new(),
    };
    assert!(c.validate().is_err());
}

#[test]
fn max_entry_size_and_durability() {
    let c = RedisConfig::from_url("redis://h").unwrap();
    assert_eq!(
        c.max_entry_size,
        memstache_core::DEFAULT_MAX_VALUE_SIZE + ENVELOPE_ALLOWANCE
    );
    assert_eq!(c.durability, Durability::Primary);
    let c = RedisConfig::from_url("redis://h?max_entry_size=4096&wait_replicas=2").unwrap();
    assert_eq!(c.max_entry_size, 4096);
    assert_eq!(
        c.durability,
        Durability::Replicas {
            replicas: 2,
            timeout: Duration::from_secs(1)
        }
    );
    assert_eq!(c.durability.wait(), Some((2, 1000)));
    for bad in [
        "redis://h?max_entry_size=0",
        "redis://h?max_entry_size=536870913",
        "redis://h?max_entry_size=x",
        "redis://h?wait_replicas=0",
        "redis://h?wait_replicas=1&wait_timeout_ms=0",
        "redis-cluster://h:1?wait_replicas=1",
    ] {
        let e = RedisConfig::from_url(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
    }
}

#[test]
fn backplane_knobs() {
    let c = RedisConfig::from_url("redis://h").unwrap();
    assert_eq!(c.backplane_ping_interval, Duration::from_secs(1));
    assert_eq!(c.backplane_min_backoff, Duration::from_millis(50));
    assert_eq!(c.backplane_max_backoff, Duration::from_secs(2));
    let c = RedisConfig::from_url(
        "redis-sentinel://h?service_name=m&backplane_ping_interval_ms=200\
         &backplane_min_backoff_ms=10&backplane_max_backoff_ms=500",
    )
    .unwrap();
    assert_eq!(c.backplane_ping_interval, Duration::from_millis(200));
    assert_eq!(c.backplane_min_backoff, Duration::from_millis(10));
    assert_eq!(c.backplane_max_backoff, Duration::from_millis(500));
    for bad in [
        "redis://h?backplane_ping_interval_ms=0",
        "redis://h?backplane_ping_interval_ms=soon",
        "redis://h?backplane_min_backoff_ms=0",
        "redis://h?backplane_min_backoff_ms=3000",
        "redis://h?backplane_max_backoff_ms=10",
    ] {
        let e = RedisConfig::from_url(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
    }
    let c = RedisConfig {
        backplane_ping_interval: Duration::ZERO,
        ..RedisConfig::default()
    };
    assert_eq!(c.validate().unwrap_err().kind(), ErrorKind::InvalidConfig);
}

#[test]
fn coalescing_and_connection_knobs() {
    let c = RedisConfig::from_url("redis://h").unwrap();
    assert_eq!(c.coalesce, Coalesce::Off);
    assert!(!c.coalescing(), "off by default");
    let c = RedisConfig::from_url("redis://h?coalesce=auto").unwrap();
    assert_eq!(c.coalesce, Coalesce::Auto);
    assert_eq!(c.max_batch, 128);
    assert!(c.tcp_nodelay);
    assert!(c.coalescing(), "auto: on for redis-rs on one server");
    let fred = RedisConfig {
        client: RedisClient::Fred,
        ..c.clone()
    };
    assert!(!fred.coalescing(), "auto: off for fred");
    let cluster = RedisConfig::from_url("redis-cluster://h:1?coalesce=auto").unwrap();
    assert!(!cluster.coalescing(), "auto: off on a cluster");
    let sentinel =
        RedisConfig::from_url("redis-sentinel://h?service_name=m&coalesce=auto").unwrap();
    assert!(sentinel.coalescing(), "auto: on through Sentinel");
    for (param, want) in [
        ("auto", Coalesce::Auto),
        ("true", Coalesce::On),
        ("on", Coalesce::On),
        ("1", Coalesce::On),
        ("false", Coalesce::Off),
        ("off", Coalesce::Off),
        ("0", Coalesce::Off),
    ] {
        let c = RedisConfig::from_url(&format!("redis://h?coalesce={param}")).unwrap();
        assert_eq!(c.coalesce, want, "{param}");
    }
    let off = RedisConfig {
        coalesce: Coalesce::Off,
        ..c.clone()
    };
    assert!(!off.coalescing());
    let on = RedisConfig {
        coalesce: Coalesce::On,
        ..fred
    };
    assert!(on.coalescing());
    assert_eq!(c.pipeline_buffer_size, 50);
    let c = RedisConfig::from_url("redis://h?max_batch=7&tcp_nodelay=false&pipeline_buffer_size=9")
        .unwrap();
    assert_eq!(c.pipeline_buffer_size, 9);
    assert_eq!(c.max_batch, 7);
    assert!(!c.tcp_nodelay);
    for bad in [
        "redis://h?coalesce=sometimes",
        "redis://h?max_batch=0",
        "redis://h?max_batch=-1",
        "redis://h?tcp_nodelay=maybe",
        "redis://h?pipeline_buffer_size=0",
    ] {
        let e = RedisConfig::from_url(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
    }
    let c = RedisConfig {
        max_batch: 0,
        ..RedisConfig::default()
    };
    assert_eq!(c.validate().unwrap_err().kind(), ErrorKind::InvalidConfig);
}
