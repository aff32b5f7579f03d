//! JSON Schemas of the formats other programs exchange with Countersign,
//! generated from the Rust types (checked into `docs/schemas/`).

use schemars::{JsonSchema, Schema, schema_for};

fn of<T: JsonSchema>() -> Schema {
    schema_for!(T)
}

/// `(file name, schema)` for each documented format.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("case.schema.json", of::<crate::model::Case>()),
        ("plan.schema.json", of::<crate::model::Plan>()),
        ("step.schema.json", of::<crate::model::Step>()),
        ("citation.schema.json", of::<crate::model::Citation>()),
        ("facts.schema.json", of::<crate::decide::Facts>()),
        ("decision.schema.json", of::<crate::decide::PlanDecision>()),
        (
            "evidence-event.schema.json",
            of::<crate::evidence::EvidenceRecord>(),
        ),
        ("pause.schema.json", of::<crate::model::Pause>()),
    ]
}
