//! Extraction parameters: raw query-string or JSON input checked against a
//! procedure, before anything touches a database.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{DateKind, FilterType, Procedure, RESERVED_PARAMS};
use crate::export::{Compression, OutputFormat};
use crate::http::error::{ApiError, FieldError};

/// How the server may run an extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Stream unless the estimate is over the job thresholds.
    #[default]
    Auto,
    /// Always stream (within the synchronous timeout).
    Sync,
    /// Always run as a background job.
    Job,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "auto" => Some(Mode::Auto),
            "sync" => Some(Mode::Sync),
            "job" => Some(Mode::Job),
            _ => None,
        }
    }
}

/// One end of a date range as given: a calendar date or an exact instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    Day(NaiveDate),
    Instant(DateTime<chrono::FixedOffset>),
}

impl DateBound {
    /// Parses `YYYY-MM-DD` or RFC 3339.
    pub fn parse(text: &str) -> Option<DateBound> {
        if text.len() == 10 {
            return NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(DateBound::Day);
        }
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(DateBound::Instant)
    }

    /// The first instant covered (UTC for instants, midnight for days).
    pub(crate) fn start(self) -> NaiveDateTime {
        match self {
            DateBound::Day(d) => d.and_time(NaiveTime::MIN),
            DateBound::Instant(t) => t.with_timezone(&Utc).naive_utc(),
        }
    }

    /// The UTC instants this bound covers: a whole day, or one instant.
    pub fn utc_span(self) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            DateBound::Day(d) => {
                let start = d.and_time(NaiveTime::MIN).and_utc();
                (
                    start,
                    start + chrono::Duration::days(1) - chrono::Duration::milliseconds(1),
                )
            }
            DateBound::Instant(t) => (t.with_timezone(&Utc), t.with_timezone(&Utc)),
        }
    }

    /// The bound as given, for file names and job metadata.
    pub(crate) fn text(self) -> String {
        match self {
            DateBound::Day(d) => d.to_string(),
            DateBound::Instant(t) => t.to_rfc3339(),
        }
    }
}

/// A value compared with a date modifier, already in the modifier's own terms.
#[derive(Debug, Clone, PartialEq)]
pub enum DateLimit {
    /// `expr >= value` (or `<=` for the upper end) on a DATE.
    Date(NaiveDate),
    /// `expr >= value` / `expr <= value` on a date-time.
    At(NaiveDateTime),
    /// `expr < value`: the end of an inclusive calendar day on a date-time.
    Before(NaiveDateTime),
}

/// A typed equality filter value.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Int(i64),
    Text(String),
    Bool(bool),
}

/// Everything an extraction needs, validated.
#[derive(Debug, Clone)]
pub struct ExtractParams {
    pub date_modifier: String,
    pub from: Option<DateLimit>,
    pub to: Option<DateLimit>,
    /// The range as given, for file names and job metadata.
    pub from_text: Option<String>,
    pub to_text: Option<String>,
    pub format: OutputFormat,
    pub compression: Compression,
    pub mode: Mode,
    /// Selected column names in output order.
    pub columns: Vec<String>,
    pub limit: Option<u64>,
    /// (filter name, value) in catalog order.
    pub filters: Vec<(String, FilterValue)>,
}

/// Turns a JSON body into the same name/value pairs a query string gives.
pub fn pairs_from_json(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::field("body", format!("the request body is not valid JSON: {e}")))?;
    let serde_json::Value::Object(object) = value else {
        return Err(ApiError::field(
            "body",
            "the request body must be a JSON object",
        ));
    };
    let mut pairs = Vec::new();
    for (key, value) in object {
        if key == "filters" {
            let serde_json::Value::Object(filters) = value else {
                return Err(ApiError::field(
                    "filters",
                    "filters must be an object of filter name to value",
                ));
            };
            for (name, value) in filters {
                pairs.push((name.clone(), scalar_text(&name, &value)?));
            }
        } else if key == "columns" && value.is_array() {
            let mut names = Vec::new();
            for item in value.as_array().into_iter().flatten() {
                names.push(
                    item.as_str()
                        .ok_or_else(|| ApiError::field("columns", "columns must be strings"))?
                        .to_string(),
                );
            }
            pairs.push((key, names.join(",")));
        } else {
            pairs.push((key.clone(), scalar_text(&key, &value)?));
        }
    }
    Ok(pairs)
}

fn scalar_text(field: &str, value: &serde_json::Value) -> Result<String, ApiError> {
    match value {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ApiError::field(
            field,
            format!("{field} must be a string, number or boolean"),
        )),
    }
}

/// Validates every parameter against `procedure`, collecting all field errors.
pub fn parse_params(
    procedure: &Procedure,
    pairs: &[(String, String)],
    max_limit: u64,
) -> Result<ExtractParams, ApiError> {
    let mut errors = Vec::new();
    repeated_params(pairs, &mut errors);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    for (name, _) in pairs {
        if !RESERVED_PARAMS.contains(&name.as_str()) && procedure.filter(name).is_none() {
            let mut accepted: Vec<&str> = RESERVED_PARAMS
                .iter()
                .copied()
                .filter(|p| *p != "filters")
                .collect();
            accepted.extend(procedure.filters.iter().map(|f| f.name.as_str()));
            errors.push(FieldError::new(
                truncate(name),
                format!(
                    "unknown parameter {:?} for {}; accepted parameters: {}",
                    truncate(name),
                    procedure.name,
                    accepted.join(", ")
                ),
            ));
        }
    }

    let modifier_names = || {
        procedure
            .date_modifiers
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let modifier = match get("date_modifier") {
        None | Some("") => Some(&procedure.date_modifiers[0]),
        Some(name) => {
            let found = procedure.date_modifier(name);
            if found.is_none() {
                errors.push(FieldError::new(
                    "date_modifier",
                    format!(
                        "unknown date_modifier {:?} for {}; accepted values: {}",
                        truncate(name),
                        procedure.name,
                        modifier_names()
                    ),
                ));
            }
            found
        }
    };

    let (from, to) = parse_range(get, &mut errors);

    let format = parse_enum(
        get("format"),
        "format",
        OutputFormat::default(),
        &mut errors,
    );
    let compression = parse_enum(
        get("compression"),
        "compression",
        Compression::default(),
        &mut errors,
    );
    let mode = parse_mode(get("mode"), &mut errors);

    let columns = match get("columns").map(str::trim).filter(|t| !t.is_empty()) {
        None => procedure.columns.iter().map(|c| c.name.clone()).collect(),
        Some(list) => {
            let mut chosen: Vec<String> = Vec::new();
            for name in list.split(',').map(str::trim) {
                if procedure.column(name).is_none() {
                    let all: Vec<&str> =
                        procedure.columns.iter().map(|c| c.name.as_str()).collect();
                    errors.push(FieldError::new(
                        "columns",
                        format!(
                            "unknown column {:?} for {}; accepted values: {}",
                            truncate(name),
                            procedure.name,
                            all.join(", ")
                        ),
                    ));
                } else if chosen.iter().any(|c| c == name) {
                    errors.push(FieldError::new(
                        "columns",
                        format!("column {name:?} is listed twice"),
                    ));
                } else {
                    chosen.push(name.to_string());
                }
            }
            chosen
        }
    };

    let limit = parse_limit(get("limit"), max_limit, &mut errors);

    let mut filters = Vec::new();
    for filter in &procedure.filters {
        let Some(text) = get(&filter.name) else {
            continue;
        };
        match parse_filter(filter.ty, text) {
            Some(value) => filters.push((filter.name.clone(), value)),
            None => errors.push(FieldError::new(
                &filter.name,
                filter_message(&filter.name, filter.ty, text),
            )),
        }
    }

    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let modifier = modifier.expect("an unknown modifier was reported as an error");
    Ok(ExtractParams {
        date_modifier: modifier.name.clone(),
        from: from.map(|b| lower_limit(b, modifier.kind)),
        to: to.map(|b| upper_limit(b, modifier.kind)),
        from_text: from.map(DateBound::text),
        to_text: to.map(DateBound::text),
        format,
        compression,
        mode,
        columns,
        limit,
        filters,
    })
}

/// An error for every parameter name given more than once.
pub(crate) fn repeated_params(pairs: &[(String, String)], errors: &mut Vec<FieldError>) {
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in pairs {
        if seen.contains(&name.as_str()) {
            errors.push(FieldError::new(
                name,
                format!("{name} is given more than once"),
            ));
        }
        seen.push(name);
    }
}

/// `from_date` and `to_date`, each a date or an instant, the second not before the first.
pub(crate) fn parse_range<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    errors: &mut Vec<FieldError>,
) -> (Option<DateBound>, Option<DateBound>) {
    let mut bound = |field: &str| -> Option<DateBound> {
        let text = get(field).filter(|t| !t.is_empty())?;
        let parsed = DateBound::parse(text);
        if parsed.is_none() {
            errors.push(FieldError::new(
                field,
                format!(
                    "{field} {:?} is not a date: use YYYY-MM-DD or RFC 3339 (2024-01-31T23:59:59Z)",
                    truncate(text)
                ),
            ));
        }
        parsed
    };
    let from = bound("from_date");
    let to = bound("to_date");
    if let (Some(f), Some(t)) = (from, to) {
        let to_end = match t {
            DateBound::Day(d) => d.and_time(NaiveTime::MIN) + chrono::Duration::days(1),
            DateBound::Instant(_) => t.start() + chrono::Duration::nanoseconds(1),
        };
        if to_end <= f.start() {
            errors.push(FieldError::new(
                "to_date",
                "to_date must not be before from_date",
            ));
        }
    }
    (from, to)
}

/// `mode`: auto (the default), sync or job.
pub(crate) fn parse_mode(text: Option<&str>, errors: &mut Vec<FieldError>) -> Mode {
    match text {
        None | Some("") => Mode::Auto,
        Some(text) => Mode::parse(text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "mode",
                format!(
                    "unknown mode {:?}; accepted values: auto, sync, job",
                    truncate(text)
                ),
            ));
            Mode::Auto
        }),
    }
}

/// `limit`: 1 to `max_limit`, or none.
pub(crate) fn parse_limit(
    text: Option<&str>,
    max_limit: u64,
    errors: &mut Vec<FieldError>,
) -> Option<u64> {
    let text = text.filter(|t| !t.is_empty())?;
    match text.parse::<u64>() {
        Ok(n) if (1..=max_limit).contains(&n) => Some(n),
        _ => {
            errors.push(FieldError::new(
                "limit",
                format!(
                    "limit must be an integer from 1 to {max_limit}, got {:?}",
                    truncate(text)
                ),
            ));
            None
        }
    }
}

pub(crate) fn parse_enum<T>(
    text: Option<&str>,
    field: &str,
    default: T,
    errors: &mut Vec<FieldError>,
) -> T
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match text {
        None | Some("") => default,
        Some(text) => text.parse::<T>().unwrap_or_else(|e| {
            errors.push(FieldError::new(field, e.to_string()));
            default
        }),
    }
}

pub(crate) fn lower_limit(bound: DateBound, kind: DateKind) -> DateLimit {
    match (bound, kind) {
        (DateBound::Day(d), DateKind::Date) => DateLimit::Date(d),
        (DateBound::Instant(t), DateKind::Date) => DateLimit::Date(t.date_naive()),
        (DateBound::Instant(t), DateKind::Datetime) => DateLimit::At(t.naive_local()),
        (b, _) => DateLimit::At(b.start()),
    }
}

pub(crate) fn upper_limit(bound: DateBound, kind: DateKind) -> DateLimit {
    match (bound, kind) {
        (DateBound::Day(d), DateKind::Date) => DateLimit::Date(d),
        (DateBound::Instant(t), DateKind::Date) => DateLimit::Date(t.date_naive()),
        (DateBound::Day(d), _) => {
            DateLimit::Before(d.and_time(NaiveTime::MIN) + chrono::Duration::days(1))
        }
        (DateBound::Instant(t), DateKind::Datetime) => DateLimit::At(t.naive_local()),
        (DateBound::Instant(t), DateKind::Timestamp) => {
            DateLimit::At(t.with_timezone(&Utc).naive_utc())
        }
    }
}

/// String filter values: plain codes and names only, so no SQL text can pass even as a bound value.
fn parse_filter(ty: FilterType, text: &str) -> Option<FilterValue> {
    match ty {
        FilterType::Integer => text.parse::<i64>().ok().map(FilterValue::Int),
        FilterType::Boolean => match text {
            "true" | "1" => Some(FilterValue::Bool(true)),
            "false" | "0" => Some(FilterValue::Bool(false)),
            _ => None,
        },
        FilterType::String => {
            let ok = (1..=100).contains(&text.chars().count())
                && text
                    .chars()
                    .all(|c| c.is_alphanumeric() || " _.-@/&".contains(c));
            ok.then(|| FilterValue::Text(text.to_string()))
        }
    }
}

fn filter_message(name: &str, ty: FilterType, text: &str) -> String {
    let expected = match ty {
        FilterType::Integer => "an integer".to_string(),
        FilterType::Boolean => "true or false".to_string(),
        FilterType::String => "1-100 letters, digits, spaces or _ . - @ / &".to_string(),
    };
    format!("{name} must be {expected}, got {:?}", truncate(text))
}

/// Echoes at most 60 characters of user input in messages.
pub(crate) fn truncate(text: &str) -> String {
    if text.chars().count() <= 60 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(60).collect::<String>())
    }
}
