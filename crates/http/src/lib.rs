//! How every Countersign crate builds an HTTP client.
//!
//! Architecture invariant: this crate depends on no other Countersign crate, so every
//! crate that talks HTTP can use it (`connectors`, `planner`, and the test and bench
//! harnesses of `demo-store`, `browser`, `engine`, `cli`); nothing builds a `reqwest`
//! client except through [`client_builder`] or [`blocking_client_builder`].
//!
//! Why it exists: `reqwest` is built with rustls and no crypto provider of its own
//! (`rustls-no-provider`, the features the desktop's updater and chromiumoxide already use;
//! no aws-lc-rs in the shipped build). Such a `reqwest` takes its cryptography from the
//! process-wide rustls `CryptoProvider` and *panics* when a client is built before one is
//! installed. So both builders install `ring` first, once per process. A provider that
//! someone else installed earlier (the updater installs `ring` too) is kept.
//!
//! To extend: a new kind of client (HTTP/2, another root store) is a new builder here, so
//! the provider rule keeps one home.

use std::sync::Once;

/// Makes `ring` the process's rustls crypto provider, unless one is installed already.
/// Idempotent and cheap after the first call; the builders below call it for you.
pub fn install_crypto_provider() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // An error only means another provider was installed first: that one stays, and
        // `reqwest` uses it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An async client's builder, with the crypto provider in place.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// A blocking client's builder, with the crypto provider in place. Do not use it from
/// inside an async runtime (`reqwest`'s blocking client runs its own).
pub fn blocking_client_builder() -> reqwest::blocking::ClientBuilder {
    install_crypto_provider();
    reqwest::blocking::Client::builder()
}
