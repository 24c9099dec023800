//! `GET /v1/procedures`: what can be extracted, with modifiers, filters and columns.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::AppState;
use crate::catalog::{DateKind, FilterType, Procedure, CATEGORIES};
use crate::value::ColumnType;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/procedures", get(list_procedures))
        .route("/v1/procedures/{name}", get(get_procedure))
}

/// A procedure category with its procedures.
#[derive(Serialize, ToSchema)]
pub struct CategoryOut {
    #[schema(example = "scheduling")]
    pub name: String,
    pub title: String,
    pub description: String,
    pub procedures: Vec<ProcedureOut>,
}

/// All categories.
#[derive(Serialize, ToSchema)]
pub struct ProceduresOut {
    pub categories: Vec<CategoryOut>,
}

/// An accepted `date_modifier` value.
#[derive(Serialize, ToSchema)]
pub struct DateModifierOut {
    #[schema(example = "AppointmentDate")]
    pub name: String,
    /// `date` (compared by calendar day), `datetime` (practice-local time) or `timestamp` (UTC).
    #[serde(rename = "type")]
    pub kind: DateKind,
    pub description: String,
}

/// An accepted equality filter.
#[derive(Serialize, ToSchema)]
pub struct FilterOut {
    #[schema(example = "location_id")]
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FilterType,
    pub description: String,
}

/// An output column.
#[derive(Serialize, ToSchema)]
pub struct ColumnOut {
    #[schema(example = "appointment_id")]
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    pub nullable: bool,
    pub description: String,
}

/// One procedure.
#[derive(Serialize, ToSchema)]
pub struct ProcedureOut {
    #[schema(example = "appointments")]
    pub name: String,
    #[schema(example = "scheduling")]
    pub category: String,
    pub title: String,
    pub description: String,
    /// Accepted `date_modifier` values; the first is the default.
    pub date_modifiers: Vec<DateModifierOut>,
    pub filters: Vec<FilterOut>,
    pub columns: Vec<ColumnOut>,
}

impl From<&Procedure> for ProcedureOut {
    fn from(p: &Procedure) -> Self {
        ProcedureOut {
            name: p.name.clone(),
            category: p.category.clone(),
            title: p.title.clone(),
            description: p.description.clone(),
            date_modifiers: p
                .date_modifiers
                .iter()
                .map(|m| DateModifierOut {
                    name: m.name.clone(),
                    kind: m.kind,
                    description: m.description.clone(),
                })
                .collect(),
            filters: p
                .filters
                .iter()
                .map(|f| FilterOut {
                    name: f.name.clone(),
                    ty: f.ty,
                    description: f.description.clone(),
                })
                .collect(),
            columns: p
                .columns
                .iter()
                .map(|c| ColumnOut {
                    name: c.name.clone(),
                    ty: c.ty,
                    nullable: c.nullable,
                    description: c.description.clone(),
                })
                .collect(),
        }
    }
}

/// List every procedure by category.
#[utoipa::path(get, path = "/v1/procedures", tag = "catalog", security(("api_key" = []), ("api_key_header" = [])),
    responses(
        (status = 200, description = "The catalog", body = ProceduresOut),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_procedures(
    State(state): State<AppState>,
    _caller: Caller,
) -> Json<ProceduresOut> {
    let categories = CATEGORIES
        .iter()
        .map(|(name, title, description)| CategoryOut {
            name: name.to_string(),
            title: title.to_string(),
            description: description.to_string(),
            procedures: state
                .catalog
                .procedures()
                .iter()
                .filter(|p| p.category == *name)
                .map(ProcedureOut::from)
                .collect(),
        })
        .collect();
    Json(ProceduresOut { categories })
}

/// Describe one procedure.
#[utoipa::path(get, path = "/v1/procedures/{name}", tag = "catalog", security(("api_key" = []), ("api_key_header" = [])),
    params(("name" = String, Path, description = "Procedure name", example = "appointments")),
    responses(
        (status = 200, description = "The procedure", body = ProcedureOut),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such procedure", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_procedure(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ProcedureOut>, ApiError> {
    let procedure = find(&state, &name)?;
    Ok(Json(ProcedureOut::from(procedure)))
}

/// A procedure by name, or a 404 naming the accepted values.
pub fn find<'a>(state: &'a AppState, name: &str) -> Result<&'a Procedure, ApiError> {
    state.catalog.get(name).ok_or_else(|| {
        let shown: String = name.chars().take(60).collect();
        ApiError::NotFound(format!(
            "unknown procedure {shown:?}; accepted values: {}",
            state.catalog.names().join(", ")
        ))
    })
}
