//! The first client of a process: an integration test is a process of its own, and
//! nothing in it installs a crypto provider before the builders do.
#![allow(clippy::unwrap_used)]

#[test]
fn the_first_clients_of_a_process_build_and_leave_ring_installed() {
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "this test must start in a process without a provider, or it proves nothing"
    );
    let _blocking = countersign_http::blocking_client_builder().build().unwrap();
    let _client = countersign_http::client_builder().build().unwrap();
    let installed = rustls::crypto::CryptoProvider::get_default().expect("the builders install a provider");
    assert_eq!(
        format!("{:?}", installed.key_provider),
        format!("{:?}", rustls::crypto::ring::default_provider().key_provider),
        "the installed provider is ring's (aws-lc-rs is not in the shipped build)"
    );
    // Again, and a builder again: installing twice is not an error.
    countersign_http::install_crypto_provider();
    let _again = countersign_http::blocking_client_builder().build().unwrap();
}
