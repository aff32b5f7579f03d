//! # countersign-test-support
//!
//! What several crates' tests and benchmarks share, in one place instead of files
//! included by path: a loopback server replaying recorded LLM provider answers
//! ([`replay`]), the agent's sign-in by hand in a Chromium profile ([`sign_in`]),
//! signed demo policy packs ([`packs`]), the demo seller center on loopback, its seed and
//! the demo's workspace files with absolute paths ([`demo`]), fake platforms and proxies
//! on loopback that hold, delay, drop or reset requests ([`loopback`]), a real
//! `nats-server` and a team's plane ([`nats`]), a throwaway PostgreSQL cluster
//! ([`postgres`]), what the benchmarks time and report ([`bench`]), and a seedable
//! generator for random trials and synthetic data ([`rng`]).
//! A dev-dependency only: nothing shipped depends on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod bench;
pub mod demo;
pub mod loopback;
pub mod nats;
pub mod packs;
pub mod postgres;
pub mod replay;
pub mod rng;
pub mod sign_in;
