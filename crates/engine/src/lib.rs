//! countersign-engine (being built).
