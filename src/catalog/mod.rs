//! The procedure catalog: definitions, parameter validation and planning to SQL; and
//! the advanced tools' requests: direct table reads and stored-routine calls.

mod call;
mod call_statement;
mod model;
mod params;
mod plan;
mod table;
mod table_plan;

pub use call::{parse_call_body, CallArg, CallRequest, RoutineName};
pub use model::{
    Catalog, Column, DateKind, DateModifier, Filter, FilterType, Procedure, CATEGORIES,
};
pub use params::{
    pairs_from_json, parse_params, DateBound, DateLimit, ExtractParams, FilterValue, Mode,
};
pub use plan::{plan, BindValue, Plan};
pub use table::{
    check_table_name, parse_table_params, SourceColumn, SourceTable, TableKind, TableParams,
    TABLE_JOB_PREFIX,
};
pub use table_plan::{file_stem as table_file_stem, plan_table, qualified_name};
