//! countersign-core
pub mod model;
