//! countersign-store (being built).
