//! Tenant operations carry the tenant on their spans (`scope`) and errors (`tenant`), and
//! never the key or the value.

use std::io::Write;
use std::sync::{Arc, Mutex};

use memstache_core::{EntryOptions, MemStache};
use memstache_tenancy::TenantManager;

const SECRET_KEY: &str = "user:ssn:123-45-6789";
const SECRET_VALUE: u64 = 4_111_111_111_111_111;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_tenant_is_on_spans_and_errors_the_key_is_not() {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cache = MemStache::builder().build().unwrap();
    let acme = TenantManager::new(cache).tenant("acme-corp").unwrap();
    acme.set(SECRET_KEY, &SECRET_VALUE, EntryOptions::default())
        .await
        .unwrap();
    // read back as the wrong type: a typed error with the tenant in its context
    let e = acme.get::<String>(SECRET_KEY).await.unwrap_err();
    assert_eq!(e.context_value("tenant"), Some("acme-corp"));
    assert!(!e.to_string().contains(SECRET_KEY));

    let logs = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("scope=\"acme-corp\"") || logs.contains("scope=acme-corp"),
        "{logs}"
    );
    assert!(!logs.contains(SECRET_KEY), "{logs}");
    assert!(!logs.contains(&SECRET_VALUE.to_string()), "{logs}");
}
