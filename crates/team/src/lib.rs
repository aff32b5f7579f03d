//! # countersign-team
//!
//! The team service (`countersign-team serve`): it keeps the team's desktops current
//! with a signed lease (`countersign_plane::lease`), and, given a PostgreSQL database,
//! projects every desk's evidence into it, verified as it goes ([`project`]).
//!
//! **Architecture invariant:** the service trusts no desk. Every event is checked with
//! the store's own chain check and every checkpoint with the engine's own checkpoint
//! check before it is projected; a desk that breaks its chain is held and raises an
//! alert, and never stops another desk. Only this crate opens PostgreSQL.
//!
//! To extend the schema, add a migration under `migrations/` (append-only, embedded).

pub mod autonomy;
pub mod facets;
pub mod pack;
pub mod project;
pub mod retention;
pub mod view;
