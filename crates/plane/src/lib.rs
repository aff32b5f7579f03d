//! # countersign-plane
//!
//! The optional team plane over NATS with JetStream (see `ARCHITECTURE.md`, "Team
//! plane"): what a team's admin runs to set the plane up and enrol desktops
//! ([`authority`]), what every desktop runs to hear and publish team entries
//! ([`link`]), and what the team service runs to keep desktops current ([`lease`]).
//!
//! **Architecture invariant:** this crate carries bytes; it decides nothing. Whether an
//! entry counts (a pause signed by a lead on the pack's roster, a lease signed by the
//! team service) is the engine's call (`countersign_engine::team`). The server's own
//! permissions per role (agent, lead, admin, service) are the second wall: an agent's
//! credentials cannot write a pause at all.

pub mod authority;
mod error;
pub mod evidence;
pub mod lease;
pub mod link;
pub mod packs;
pub mod quota;
pub mod subjects;

pub use error::PlaneError;

/// The most of one object the plane reads back (a blob: a full-page screenshot is well
/// under this).
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;
