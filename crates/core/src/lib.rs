//! # countersign-core
//!
//! The domain of Countersign: cases, plans, the policy (permission map) and the
//! decision function, plan validation, text normalisation and the evidence event
//! types.
//!
//! **Architecture invariant:** this crate is pure. It does no I/O, spawns no
//! threads and never reads the clock — time arrives as a value in [`decide::Facts`].
//! That keeps every policy decision a deterministic function of its inputs, which
//! is what lets us test, fuzz and benchmark it in isolation, and replay it from
//! evidence.
//!
//! The second invariant is the product's: **the model never authorises itself.**
//! A [`model::Plan`] is untrusted data; only [`decide::decide`] turns it into
//! outcomes, and nothing in a plan (a risk opinion, an instruction in a customer
//! message, a parameter lifted from prose) can make a step less restrictive.

pub mod autonomy;
pub mod claims;
pub mod decide;
pub mod detect;
pub mod digest;
pub mod evidence;
pub mod language;
pub mod learned;
pub mod model;
pub mod money;
pub mod normalize;
pub mod policy;
pub mod promise;
pub mod schema;
pub mod simulate;
pub mod team;
pub mod teamview;
pub mod validate;

pub use decide::{CaseScan, Facts, PlanDecision, StepDecision, decide, decide_scanned};
pub use model::{Case, Plan, Step};
pub use money::Money;
pub use policy::{Outcome, Policy, PolicyError};
