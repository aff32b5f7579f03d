//! # countersign-connectors
//!
//! How Countersign reads from and acts on a commerce platform.
//!
//! **Architecture invariant:** only this crate touches platform data and (from
//! the execution work on) platform HTTP and the OS keyring. The engine sees the
//! [`Connector`] trait and structured facts, never raw platform payloads.
//!
//! Today it holds the [`snapshot::SnapshotConnector`], which reads a platform
//! export (the tau-retail files the demo store is seeded from) for decisions
//! made offline. The HTTP connector to a live seller center implements the same
//! trait.

pub mod credentials;
pub mod snapshot;

use countersign_core::decide::OrderFacts;

/// Why a connector could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot read platform data at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("platform data at {path} is malformed: {message}")]
    Malformed { path: String, message: String },
}

/// Structured, trusted reads from a platform.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// What the platform says about an order, or `None` if it does not exist.
    fn order_facts(&self, order_id: &str) -> Result<Option<OrderFacts>, ConnectorError>;
}
