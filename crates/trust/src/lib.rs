//! # countersign-trust
//!
//! What an installation trusts, and how it checks it: the admin keys it was built with,
//! policy packs and releases those keys signed, this installation's device key and the
//! checkpoint statements it signs, and the roster of team leads who may countersign.
//!
//! **Architecture invariants:**
//! - **An installation trusts only the admin keys it was built with.** `build.rs` compiles
//!   every `assets/trusted-keys/*.pub` (or `$COUNTERSIGN_TRUSTED_KEYS_DIR/*.pub`) into the
//!   binary ([`keys::TrustedKeys::bundled`]); nothing at run time (no file, variable or
//!   setting) adds one. `--trust FILE` exists for the CLI's checks only.
//! - **A signature names what it signs.** Every signed message is
//!   `domain || '\n' || SHA-256(content)` with its own domain (`countersign/policy-pack/v1`,
//!   `countersign/release/v1`, `countersign/checkpoint/v1`), so a signature made for one
//!   kind of thing is never accepted as another. A signed note ([`note`], the C2SP
//!   format the team's witness uses) signs its own text instead, which names what it is on
//!   its first line (its origin).
//! - **A signed directory holds exactly what its manifest lists.** A pack or a release is
//!   refused for a changed, missing *or unlisted* file, so nothing can be slipped in beside
//!   a signature ([`pack::verify_pack`], [`release::verify_release`]). A [`pack::Pack`]
//!   value exists only once it verified.
//! - **Secret keys never leave the keyring or the file the admin named**; they are never
//!   printed, logged or recorded. Only public keys and signatures go out.
//! - **No store, no engine.** This crate depends on `core` (the policy a pack carries) and
//!   `connectors` (the OS keyring, [`Secret`], the catalog a pack carries), never on the
//!   evidence store, the engine or a planner. What needs the log (which pack runs, the
//!   downgrade rule, checking checkpoints against the events) is the engine's.
//!
//! ## Extending
//!
//! A new kind of signed thing gets its own domain constant and uses
//! [`keys::SignatureFile`] (or [`keys::SecretKey::sign`] / [`keys::PublicKey::verify`]).
//! Errors callers branch on are [`TrustError`] variants (the engine maps them to its error
//! codes) or, for a pack, a [`pack::RefusalCode`]: add one to `docs/policy.md` and to the
//! `policy_refused` event's doc in `countersign-core` too.

pub mod device;
mod error;
pub mod keys;
pub mod note;
pub mod pack;
pub mod release;
pub mod roster;
pub mod team;
pub mod witness;

pub use countersign_connectors::credentials::Secret;
pub use error::TrustError;

/// A TOML error as `file:line:column: message`.
pub(crate) fn located_message(file: &str, text: &str, e: &toml::de::Error) -> String {
    let (line, column) = countersign_connectors::catalog::line_column(text, e.span().map_or(0, |s| s.start));
    format!("{file}:{line}:{column}: {}", e.message().trim_end())
}
