//! The shared encryptor conformance suite, run against this crate.

use memstache_aes::Aes256Gcm;
use memstache_testkit::conformance::encryptor;

#[test]
fn aes_256_gcm_passes_the_encryptor_suite() {
    encryptor::run_encryptor_suite(&Aes256Gcm::default());
}

#[test]
fn public_types_are_send_sync_clone_and_debug() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    check::<Aes256Gcm>();
}
