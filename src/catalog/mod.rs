//! The procedure catalog: definitions, parameter validation and planning to SQL.

mod model;
mod params;
mod plan;

pub use model::{
    Catalog, Column, DateKind, DateModifier, Filter, FilterType, Procedure, CATEGORIES,
};
pub use params::{
    pairs_from_json, parse_params, DateBound, DateLimit, ExtractParams, FilterValue, Mode,
};
pub use plan::{plan, BindValue, Plan};
