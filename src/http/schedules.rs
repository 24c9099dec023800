//! `/v1/schedules`: recurring extractions. Each run of a schedule creates a job
//! whose `from_date`/`to_date` come from the schedule's window.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::auth::Caller;
use super::error::{body_object, list_query, ApiError, FieldError, Problem};
use super::extract::FilterValue;
use super::openapi::string_enum;
use super::AppState;
use crate::catalog::{self, Procedure};
use crate::export::{Compression, OutputFormat};
use crate::jobs::schedules::{self, Schedule, ScheduleSpec, Window};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/schedules", get(list_schedules).post(create_schedule))
        .route(
            "/v1/schedules/{schedule_id}",
            get(get_schedule)
                .patch(update_schedule)
                .delete(delete_schedule),
        )
}

/// Fields of a schedule that are not extraction parameters.
const SCHEDULE_FIELDS: &[&str] = &["name", "cron", "timezone", "procedure", "window", "enabled"];
/// Extraction fields a schedule may not carry: the window sets the dates, and a run is always a job.
const REFUSED_FIELDS: &[&str] = &["from_date", "to_date", "mode"];

/// A recurring extraction.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "schedule_id": "sch_3f9a1c0d5e7b2a64", "name": "Nightly appointments", "cron": "0 2 * * *",
    "timezone": "Australia/Sydney", "procedure": "appointments",
    "parameters": {"format": "csv", "compression": "gzip", "filters": {}},
    "window": "previous_day", "enabled": true, "next_run_at": "2024-03-01T15:00:00.000Z",
    "last_run_at": null, "last_job_id": null,
    "created_at": "2024-02-29T03:12:44.120Z", "updated_at": "2024-02-29T03:12:44.120Z"}))]
pub struct ScheduleOut {
    /// `sch_` and 16 hex digits.
    #[schema(example = "sch_3f9a1c0d5e7b2a64")]
    pub schedule_id: String,
    #[schema(example = "Nightly appointments")]
    pub name: String,
    /// Five-field cron expression (minute hour day-of-month month day-of-week), in `timezone`.
    #[schema(example = "0 2 * * *")]
    pub cron: String,
    /// IANA time zone the cron expression and the window are read in.
    #[schema(example = "Australia/Sydney")]
    pub timezone: String,
    #[schema(example = "appointments")]
    pub procedure: String,
    /// The extraction fields of every run: format, compression, columns, date_modifier, limit, filters.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// `previous_day`, `previous_week`, `previous_month` or `since_last_run`.
    #[schema(example = "previous_day")]
    pub window: String,
    pub enabled: bool,
    /// The next slot (UTC); `null` while disabled.
    pub next_run_at: Option<String>,
    /// The slot of the latest run (UTC).
    pub last_run_at: Option<String>,
    /// The job of the latest run.
    pub last_job_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ScheduleOut {
    fn new(s: Schedule, state: &AppState) -> ScheduleOut {
        let procedure = state.catalog.get(&s.procedure_name);
        ScheduleOut {
            parameters: parameters_json(&s.request, procedure),
            schedule_id: s.id,
            name: s.name,
            cron: s.cron,
            timezone: s.timezone,
            procedure: s.procedure_name,
            window: s.window.as_str().to_string(),
            enabled: s.enabled,
            next_run_at: s.next_run_at,
            last_run_at: s.last_run_at,
            last_job_id: s.last_job_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The stored pairs shown the way they are given: filters nested, columns a list.
fn parameters_json(pairs: &[(String, String)], procedure: Option<&Procedure>) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let mut filters = serde_json::Map::new();
    for (name, value) in pairs {
        let is_filter = procedure.is_some_and(|p| p.filter(name).is_some());
        if is_filter {
            filters.insert(name.clone(), value.clone().into());
        } else if name == "columns" {
            let list: Vec<serde_json::Value> = value
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| c.to_string().into())
                .collect();
            out.insert(name.clone(), list.into());
        } else if name == "limit" {
            let v = value
                .parse::<u64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| value.clone().into());
            out.insert(name.clone(), v);
        } else {
            out.insert(name.clone(), value.clone().into());
        }
    }
    out.insert("filters".into(), filters.into());
    out.into()
}

/// The body of `POST /v1/schedules` (documentation only; the body is read field by field).
#[derive(ToSchema)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({
    "name": "Nightly appointments", "cron": "0 2 * * *", "timezone": "Australia/Sydney",
    "procedure": "appointments", "window": "previous_day", "format": "csv", "compression": "gzip",
    "date_modifier": "AppointmentDate", "enabled": true}))]
pub struct ScheduleIn {
    /// 1-200 characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Five-field cron expression, e.g. `0 2 * * *` (02:00 every day).
    cron: String,
    /// IANA time zone, e.g. `Australia/Sydney`.
    timezone: String,
    /// The procedure each run extracts (see /v1/procedures).
    procedure: String,
    /// Which dates each run covers.
    #[schema(value_type = WindowName, inline)]
    window: String,
    /// Default true.
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// Extraction fields as in `POST /v1/extract`, except `from_date`, `to_date` and `mode`.
    format: Option<OutputFormat>,
    compression: Option<Compression>,
    columns: Option<Vec<String>>,
    date_modifier: Option<String>,
    #[schema(minimum = 1, maximum = 10000000)]
    limit: Option<u64>,
    #[schema(value_type = Option<HashMap<String, FilterValue>>)]
    filters: Option<serde_json::Value>,
}

/// The body of `PATCH /v1/schedules/{id}` (documentation only).
#[derive(ToSchema)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
#[schema(example = json!({"cron": "30 3 * * 1", "window": "previous_week", "format": "parquet"}))]
pub struct SchedulePatch {
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(nullable = false)]
    cron: Option<String>,
    #[schema(nullable = false)]
    timezone: Option<String>,
    #[schema(nullable = false)]
    procedure: Option<String>,
    #[schema(value_type = Option<WindowName>, inline, nullable = false)]
    window: Option<String>,
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// Extraction fields replace the stored ones; `null` removes one. `filters` replaces the whole filter set.
    format: Option<OutputFormat>,
    compression: Option<Compression>,
    columns: Option<Vec<String>>,
    date_modifier: Option<String>,
    #[schema(minimum = 1, maximum = 10000000)]
    limit: Option<u64>,
    #[schema(value_type = Option<HashMap<String, FilterValue>>)]
    filters: Option<serde_json::Value>,
}

/// A schedule window (documentation only).
pub struct WindowName;

impl PartialSchema for WindowName {
    fn schema() -> RefOr<Schema> {
        string_enum(Window::NAMES.iter().copied()).into()
    }
}

impl ToSchema for WindowName {}

/// A page of schedules.
#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleOut>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Query parameters of the schedule list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "read by utoipa for the OpenAPI document only")]
pub struct ScheduleListQuery {
    /// 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

fn string_field(
    map: &serde_json::Map<String, serde_json::Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match map.get(field)? {
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        _ => {
            errors.push(FieldError::new(field, format!("{field} must be a string")));
            None
        }
    }
}

/// Checks every schedule field and the extraction fields together, collecting all errors.
fn validate(
    state: &AppState,
    base: Option<&Schedule>,
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<ScheduleSpec, ApiError> {
    let mut errors = Vec::new();
    for field in REFUSED_FIELDS {
        if map.contains_key(*field) {
            errors.push(FieldError::new(
                *field,
                format!(
                    "{field} is not accepted on a schedule: each run's dates come from window ({})",
                    Window::NAMES.join(", ")
                ),
            ));
        }
    }
    let required = |name: &str, errors: &mut Vec<FieldError>| {
        if base.is_none() && !map.contains_key(name) {
            errors.push(FieldError::new(name, format!("{name} is required")));
        }
    };
    for name in ["name", "cron", "timezone", "procedure", "window"] {
        required(name, &mut errors);
    }

    let name = string_field(&map, "name", &mut errors)
        .or_else(|| base.map(|b| b.name.clone()))
        .unwrap_or_default();
    if map.get("name").is_some_and(|v| v.is_string())
        && (name.is_empty() || name.chars().count() > 200)
    {
        errors.push(FieldError::new("name", "name must be 1-200 characters"));
    }

    let cron = string_field(&map, "cron", &mut errors).or_else(|| base.map(|b| b.cron.clone()));
    if let (Some(expr), true) = (&cron, map.contains_key("cron")) {
        if let Err(message) = schedules::parse_cron(expr) {
            errors.push(FieldError::new(
                "cron",
                format!("invalid cron expression {expr:?}: {message}; use five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\""),
            ));
        }
    }

    let timezone =
        string_field(&map, "timezone", &mut errors).or_else(|| base.map(|b| b.timezone.clone()));
    if let (Some(tz), true) = (&timezone, map.contains_key("timezone")) {
        if let Err(message) = schedules::parse_timezone(tz) {
            errors.push(FieldError::new("timezone", message));
        }
    }

    let window = match string_field(&map, "window", &mut errors) {
        Some(text) => match Window::parse(&text) {
            Some(w) => Some(w),
            None => {
                errors.push(FieldError::new(
                    "window",
                    format!(
                        "unknown window {:?}; accepted values: {}",
                        text.chars().take(60).collect::<String>(),
                        Window::NAMES.join(", ")
                    ),
                ));
                None
            }
        },
        None => base.map(|b| b.window),
    };

    let enabled = match map.get("enabled") {
        None => base.map(|b| b.enabled).unwrap_or(true),
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new("enabled", "enabled must be true or false"));
            true
        }
    };

    let procedure_name = string_field(&map, "procedure", &mut errors)
        .or_else(|| base.map(|b| b.procedure_name.clone()));
    let procedure = match &procedure_name {
        Some(name) => match state.catalog.get(name) {
            Some(p) => Some(p),
            None => {
                errors.push(FieldError::new(
                    "procedure",
                    format!(
                        "unknown procedure {:?}; accepted values: {}",
                        name.chars().take(60).collect::<String>(),
                        state.catalog.names().join(", ")
                    ),
                ));
                None
            }
        },
        None => None,
    };

    // The extraction fields: stored ones (on update) overlaid with the given ones.
    let mut extraction = serde_json::Map::new();
    let mut removed: Vec<String> = Vec::new();
    for (key, value) in map {
        if SCHEDULE_FIELDS.contains(&key.as_str()) || REFUSED_FIELDS.contains(&key.as_str()) {
            continue;
        }
        if value.is_null() {
            removed.push(key);
        } else {
            extraction.insert(key, value);
        }
    }
    let given = match catalog::pairs_from_json(
        &serde_json::to_vec(&serde_json::Value::Object(extraction.clone())).unwrap_or_default(),
    ) {
        Ok(pairs) => pairs,
        Err(ApiError::InvalidInput { errors: e, .. }) => {
            errors.extend(e);
            Vec::new()
        }
        Err(other) => return Err(other),
    };
    let mut request: Vec<(String, String)> = Vec::new();
    if let Some(base) = base {
        let replace_filters =
            extraction.contains_key("filters") || removed.iter().any(|k| k == "filters");
        for (k, v) in &base.request {
            let is_filter = procedure.is_some_and(|p| p.filter(k).is_some())
                || state
                    .catalog
                    .get(&base.procedure_name)
                    .is_some_and(|p| p.filter(k).is_some());
            let overridden = given.iter().any(|(g, _)| g == k) || removed.contains(k);
            if overridden || (is_filter && replace_filters) {
                continue;
            }
            request.push((k.clone(), v.clone()));
        }
    }
    request.extend(given);

    if let Some(procedure) = procedure {
        if let Err(ApiError::InvalidInput { errors: e, .. }) =
            catalog::parse_params(procedure, &request, state.config.max_limit)
        {
            errors.extend(e);
        }
    }

    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(ScheduleSpec {
        name,
        cron: cron.unwrap_or_default(),
        timezone: timezone.unwrap_or_default(),
        procedure_name: procedure.map(|p| p.name.clone()).unwrap_or_default(),
        request,
        window: window.unwrap_or(Window::PreviousDay),
        enabled,
    })
}

/// Create a recurring extraction.
#[utoipa::path(post, path = "/v1/schedules", tag = "schedules", security(("api_key" = []), ("api_key_header" = [])),
    request_body(content = ScheduleIn, description = "The schedule and the extraction fields of every run (not from_date, to_date or mode)"),
    responses(
        (status = 201, description = "Created", body = ScheduleOut, headers(("Location" = String, description = "/v1/schedules/{schedule_id}"))),
        (status = 400, description = "Invalid field (named in `errors`, with the accepted values)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec = validate(&state, None, body_object(&body)?)?;
    let schedule = schedules::create_schedule(&state.meta, &caller.customer.id, &spec).await?;
    let location = format!("/v1/schedules/{}", schedule.id);
    let mut response = (
        StatusCode::CREATED,
        Json(ScheduleOut::new(schedule, &state)),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// List this customer's schedules, newest first.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules", security(("api_key" = []), ("api_key_header" = [])),
    params(ScheduleListQuery),
    responses(
        (status = 200, description = "A page of schedules", body = ScheduleList),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<ScheduleList>, ApiError> {
    let (_, limit, offset) = list_query(query, &[])?;
    let (items, total) =
        schedules::list_schedules(&state.meta, &caller.customer.id, limit, offset).await?;
    Ok(Json(ScheduleList {
        schedules: items
            .into_iter()
            .map(|s| ScheduleOut::new(s, &state))
            .collect(),
        total,
        limit,
        offset,
    }))
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<Schedule, ApiError> {
    schedules::get_schedule(&state.meta, &caller.customer.id, id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no schedule {:?}",
                id.chars().take(60).collect::<String>()
            ))
        })
}

/// One schedule.
#[utoipa::path(get, path = "/v1/schedules/{schedule_id}", tag = "schedules", security(("api_key" = []), ("api_key_header" = [])),
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleOut),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ScheduleOut>, ApiError> {
    Ok(Json(ScheduleOut::new(
        load(&state, &caller, &id).await?,
        &state,
    )))
}

/// Change a schedule; everything is re-validated and `next_run_at` recomputed from now.
#[utoipa::path(patch, path = "/v1/schedules/{schedule_id}", tag = "schedules", security(("api_key" = []), ("api_key_header" = [])),
    params(("schedule_id" = String, Path, description = "Schedule id")),
    request_body(content = SchedulePatch, description = "Any of the schedule's fields"),
    responses(
        (status = 200, description = "The updated schedule", body = ScheduleOut),
        (status = 400, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ScheduleOut>, ApiError> {
    let current = load(&state, &caller, &id).await?;
    let spec = validate(&state, Some(&current), body_object(&body)?)?;
    let updated = schedules::update_schedule(&state.meta, &caller.customer.id, &id, &spec)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no schedule {id:?}")))?;
    Ok(Json(ScheduleOut::new(updated, &state)))
}

/// Delete a schedule (its jobs stay).
#[utoipa::path(delete, path = "/v1/schedules/{schedule_id}", tag = "schedules", security(("api_key" = []), ("api_key_header" = [])),
    params(("schedule_id" = String, Path, description = "Schedule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such schedule for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if schedules::delete_schedule(&state.meta, &caller.customer.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "no schedule {:?}",
            id.chars().take(60).collect::<String>()
        )))
    }
}
