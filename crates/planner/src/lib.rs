//! countersign-planner (being built).
