//! The model the codec ships: trained offline by `codeclab-codec train-filter` on pictures none
//! of the development clips come from (its provenance travels with it in `shipped_model.rs`). A
//! stream whose filter has the shipped shape may name it instead of sending weights, and the
//! encoder's own training starts from it.

use super::FilterModel;
use serde::Deserialize;
use std::sync::OnceLock;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShippedFile {
    /// Where the model comes from: the pictures, the coding points, the training schedule.
    provenance: serde_json::Value,
    model: FilterModel,
}

fn shipped() -> &'static ShippedFile {
    static SHIPPED: OnceLock<ShippedFile> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let file: ShippedFile = serde_json::from_str(super::shipped_model::SHIPPED_JSON)
            .expect("shipped_model.rs holds a filter model and its provenance");
        assert!(file.model.is_valid(), "the shipped model fits its shape");
        file
    })
}

/// The shipped model.
pub fn shipped_model() -> &'static FilterModel {
    &shipped().model
}

/// Where the shipped model comes from.
pub fn shipped_provenance() -> &'static serde_json::Value {
    &shipped().provenance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_parses_fits_its_shape_and_says_where_it_comes_from() {
        assert!(shipped_model().is_valid());
        assert!(shipped_provenance().get("pictures").is_some());
    }
}
