//! countersign-demo-store (being built).
