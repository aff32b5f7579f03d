//! # countersign-test-support
//!
//! What several crates' tests and benchmarks share, in one place instead of files
//! included by path: a loopback server replaying recorded LLM provider answers
//! ([`replay`]), and the agent's sign-in by hand in a Chromium profile ([`sign_in`]).
//! A dev-dependency only: nothing shipped depends on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod replay;
pub mod sign_in;
