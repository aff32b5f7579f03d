//! # countersign-test-support
//!
//! What several crates' tests and benchmarks share, in one place instead of files
//! included by path: a loopback server replaying recorded LLM provider answers
//! ([`replay`]), the agent's sign-in by hand in a Chromium profile ([`sign_in`]), and
//! signed demo policy packs ([`packs`]).
//! A dev-dependency only: nothing shipped depends on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod packs;
pub mod replay;
pub mod sign_in;
