//! The models the codec ships: trained offline by `codeclab-filter-train` on pictures none of
//! the development clips come from, one per coding QP the pictures were coded at, since the
//! error coding leaves changes with the QP (their provenance travels with them in
//! `shipped_model.rs`). A frame may name one by its index instead of sending weights, and the
//! encoder's own training starts from one.

use super::FilterModel;
use serde::Deserialize;
use std::sync::OnceLock;

/// Bits of a shipped model's index in the stream.
pub const SHIPPED_INDEX_BITS: u32 = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedFile {
    /// Where the models come from: the pictures, how they were coded, and what each model
    /// learned from (its clips, steps and losses).
    provenance: serde_json::Value,
    models: Vec<FilterModel>,
}

fn shipped() -> &'static (serde_json::Value, Vec<FilterModel>) {
    static SHIPPED: OnceLock<(serde_json::Value, Vec<FilterModel>)> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let file: ShippedFile = serde_json::from_str(super::shipped_model::SHIPPED_JSON)
            .expect("shipped_model.rs holds filter models and their provenance");
        assert!(
            !file.models.is_empty() && file.models.len() <= 1 << SHIPPED_INDEX_BITS,
            "the shipped models can be named in {SHIPPED_INDEX_BITS} bits"
        );
        assert!(
            file.models.iter().all(FilterModel::is_valid),
            "each shipped model fits its shape"
        );
        (file.provenance, file.models)
    })
}

/// The shipped models, in the order the stream names them.
pub fn shipped_models() -> &'static [FilterModel] {
    &shipped().1
}

/// Where the shipped models come from.
pub fn shipped_provenance() -> &'static serde_json::Value {
    &shipped().0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_models_parse_fit_their_shapes_and_say_where_they_come_from() {
        assert!(!shipped_models().is_empty());
        assert!(shipped_models().iter().all(FilterModel::is_valid));
        assert!(shipped_provenance().get("pictures").is_some());
    }
}
