//! countersign-connectors (being built).
