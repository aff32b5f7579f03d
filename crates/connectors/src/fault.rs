//! The fault suite's hook (`crates/cli/tests/crash.rs`, `docs/faults.md`): the durable
//! boundaries of a step's run where `COUNTERSIGN_FAULT_AT=NAME` aborts the process, as a
//! crash or a SIGKILL would there. The engine's boundaries and the browser connector's
//! point of no return share one list, so the suite can name each.

/// Every point, in the order a step meets them: after `step_started` is durable (nothing
/// sent yet); in the browser connector, right after the submit click, before the page's
/// answer is read; after the call returned (nothing recorded of it); after
/// `step_finished`; and during settling, right after the send under the step's own key.
pub const FAULT_POINTS: [&str; 5] =
    ["after-step-started", "after-submit-click", "after-call", "after-step-finished", "after-settling-send"];

/// Abort the process here when the fault suite asks for this point: no unwinding, no
/// destructor, nothing flushed that was not already durable (a child process, such as
/// the browser, is left running, as after a crash). Read at each point, never cached.
pub fn point(name: &str) {
    debug_assert!(FAULT_POINTS.contains(&name), "{name} is not a fault point");
    if std::env::var("COUNTERSIGN_FAULT_AT").is_ok_and(|at| at == name) {
        eprintln!("countersign: fault point {name}: aborting");
        std::process::abort();
    }
}
