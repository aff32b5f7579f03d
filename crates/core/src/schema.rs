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
        ("evidence-event.schema.json", of::<crate::evidence::EvidenceRecord>()),
        ("pause.schema.json", of::<crate::model::Pause>()),
    ]
}

#[cfg(test)]
mod tests {
    /// The checked-in schemas in `docs/schemas/` must match the types. Run with
    /// `UPDATE_SCHEMAS=1` to regenerate them after changing a type.
    #[test]
    fn checked_in_schemas_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        let mut stale = Vec::new();
        for (name, schema) in super::all() {
            let text = serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n";
            let path = dir.join(name);
            if update {
                std::fs::create_dir_all(&dir).expect("create docs/schemas");
                std::fs::write(&path, &text).expect("write schema");
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "docs/schemas is out of date for {stale:?}: run `UPDATE_SCHEMAS=1 cargo test -p countersign-core --lib schema`"
        );
    }
}
