//! `POST /v1/advanced/call` requests: a stored routine and its arguments, from either
//! `{"statement": "CALL name(?, …)", "params": […]}` or `{"procedure": "name", "args": […]}`.
//! Arguments are checked here and bound when the routine runs; the statement itself is
//! parsed by [`super::call_statement`].

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value as Json;

use super::call_statement::{parse_routine_name, parse_statement, Slot};
use super::params::truncate;
use crate::export::{Compression, OutputFormat};
use crate::http::error::{body_object, ApiError, FieldError};

/// Longest accepted statement, in bytes.
pub const MAX_STATEMENT_BYTES: usize = 4096;
/// Most arguments of one call.
pub const MAX_ARGS: usize = 100;
/// Longest identifier (routine or schema name).
pub(super) const MAX_IDENT: usize = 64;
/// Longest string argument, in characters.
const MAX_TEXT_ARG: usize = 200;
/// Body fields of a call request.
pub const CALL_FIELDS: &[&str] = &[
    "statement",
    "params",
    "procedure",
    "args",
    "format",
    "compression",
    "mode",
];

/// One argument, bound to a placeholder when the routine runs.
#[derive(Debug, Clone, PartialEq)]
pub enum CallArg {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(Decimal),
    Text(String),
}

impl CallArg {
    /// The argument as SQL-standard text (for PostgreSQL, which casts it to the parameter's type).
    pub fn as_text(&self) -> Option<String> {
        match self {
            CallArg::Null => None,
            CallArg::Bool(b) => Some(b.to_string()),
            CallArg::Int(i) => Some(i.to_string()),
            CallArg::Decimal(d) => Some(d.to_string()),
            CallArg::Text(s) => Some(s.clone()),
        }
    }
}

/// A routine as named in a request: plain identifiers only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutineName {
    pub schema: Option<String>,
    pub name: String,
}

impl std::fmt::Display for RoutineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A validated call request.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRequest {
    pub routine: RoutineName,
    pub args: Vec<CallArg>,
    /// Where the arguments came from: `params` (with a statement) or `args` (with procedure).
    pub args_field: &'static str,
    pub format: OutputFormat,
    pub compression: Compression,
}

/// Validates a call request body, collecting all field errors.
pub fn parse_call_body(body: &[u8]) -> Result<CallRequest, ApiError> {
    let object = body_object(body)?;
    let mut errors = Vec::new();
    for key in object.keys() {
        if !CALL_FIELDS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                truncate(key),
                format!(
                    "unknown field {:?}; accepted fields: {}",
                    truncate(key),
                    CALL_FIELDS.join(", ")
                ),
            ));
        }
    }
    let text_field = |name: &str, errors: &mut Vec<FieldError>| match object.get(name) {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(name, format!("{name} must be a string")));
            None
        }
    };
    let format = match text_field("format", &mut errors) {
        None => OutputFormat::default(),
        Some(text) => text
            .parse()
            .unwrap_or_else(|e: crate::export::UnknownValue| {
                errors.push(FieldError::new("format", e.to_string()));
                OutputFormat::default()
            }),
    };
    let compression = match text_field("compression", &mut errors) {
        None => Compression::default(),
        Some(text) => text
            .parse()
            .unwrap_or_else(|e: crate::export::UnknownValue| {
                errors.push(FieldError::new("compression", e.to_string()));
                Compression::default()
            }),
    };
    if matches!(format, OutputFormat::Ndjson | OutputFormat::Json)
        && compression == Compression::Zip
    {
        errors.push(FieldError::new(
            "compression",
            "compression zip is offered for CALL results in csv and parquet; for ndjson and json \
             (which carry every result set) the accepted values are none, gzip",
        ));
    }
    match text_field("mode", &mut errors).as_deref() {
        None | Some("auto") | Some("sync") => {}
        Some(other) => errors.push(FieldError::new(
            "mode",
            format!(
                "mode {:?} is not available for calls, whose rows cannot be counted in advance; \
                 accepted values: auto, sync (both stream the result)",
                truncate(other)
            ),
        )),
    }

    let statement = text_field("statement", &mut errors);
    let procedure = text_field("procedure", &mut errors);
    let routine_and_args = match (statement, procedure) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "procedure",
                "give either statement (with params) or procedure (with args), not both",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                "statement",
                "statement (\"CALL name(?, ?)\" with params) or procedure (a routine name with args) is required",
            ));
            None
        }
        (Some(statement), None) => {
            if object.contains_key("args") {
                errors.push(FieldError::new(
                    "args",
                    "args go with procedure; a statement takes params",
                ));
            }
            match parse_statement(&statement) {
                Err(message) => {
                    errors.push(FieldError::new("statement", message));
                    None
                }
                Ok((routine, slots)) => {
                    let params = json_args("params", object.get("params"), &mut errors);
                    fill_placeholders(routine, slots, params, &mut errors)
                        .map(|(routine, args)| (routine, args, "params"))
                }
            }
        }
        (None, Some(procedure)) => {
            if object.contains_key("params") {
                errors.push(FieldError::new(
                    "params",
                    "params go with statement; a procedure takes args",
                ));
            }
            let args = json_args("args", object.get("args"), &mut errors);
            match parse_routine_name(&procedure) {
                Err(message) => {
                    errors.push(FieldError::new("procedure", message));
                    None
                }
                Ok(routine) => args.map(|args| (routine, args, "args")),
            }
        }
    };
    match routine_and_args {
        Some((routine, args, args_field)) if errors.is_empty() => Ok(CallRequest {
            routine,
            args,
            args_field,
            format,
            compression,
        }),
        _ => Err(ApiError::fields(errors)),
    }
}

fn fill_placeholders(
    routine: RoutineName,
    slots: Vec<Slot>,
    params: Option<Vec<CallArg>>,
    errors: &mut Vec<FieldError>,
) -> Option<(RoutineName, Vec<CallArg>)> {
    let mut params = params?.into_iter();
    let wanted = slots.iter().filter(|s| **s == Slot::Placeholder).count();
    if params.len() != wanted {
        errors.push(FieldError::new(
            "params",
            format!(
                "the statement has {wanted} ? placeholder(s) but params has {} value(s)",
                params.len()
            ),
        ));
        return None;
    }
    let args = slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Literal(arg) => Some(arg),
            Slot::Placeholder => params.next(),
        })
        .collect::<Option<Vec<_>>>()?;
    Some((routine, args))
}

/// `params`/`args`: an array of strings, numbers, booleans and nulls (absent: none).
fn json_args(
    field: &str,
    value: Option<&Json>,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<CallArg>> {
    let items = match value {
        None | Some(Json::Null) => return Some(Vec::new()),
        Some(Json::Array(items)) if items.len() <= MAX_ARGS => items,
        Some(Json::Array(_)) => {
            errors.push(FieldError::new(
                field,
                format!("{field} has at most {MAX_ARGS} values"),
            ));
            return None;
        }
        Some(_) => {
            errors.push(FieldError::new(
                field,
                format!("{field} must be an array of strings, numbers, booleans or nulls"),
            ));
            return None;
        }
    };
    let mut args = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let arg = match item {
            Json::Null => Ok(CallArg::Null),
            Json::Bool(b) => Ok(CallArg::Bool(*b)),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Ok(CallArg::Int(i)),
                None => decimal_arg(&n.to_string()),
            },
            Json::String(s) => text_arg(s),
            _ => Err("must be a string, number, boolean or null".to_string()),
        };
        match arg {
            Ok(arg) => args.push(arg),
            Err(message) => errors.push(FieldError::new(field, format!("{field}[{i}] {message}"))),
        }
    }
    (args.len() == items.len()).then_some(args)
}

pub(super) fn decimal_arg(text: &str) -> Result<CallArg, String> {
    Decimal::from_str(text)
        .map(CallArg::Decimal)
        .map_err(|_| format!("{:?} is not a number we can pass exactly", truncate(text)))
}

/// String arguments: plain codes, names, dates and times only — the same policy as
/// extraction filters — so no SQL text travels even as a bound value.
pub(super) fn text_arg(text: &str) -> Result<CallArg, String> {
    let ok = text.chars().count() <= MAX_TEXT_ARG
        && !text.contains("--")
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || " _.-@/&:+,".contains(c));
    if ok {
        Ok(CallArg::Text(text.to_string()))
    } else {
        Err(format!(
            "{:?} is not accepted: strings are up to {MAX_TEXT_ARG} letters, digits, spaces or _ . - @ / & : + , (no --)",
            truncate(text)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_bind_params_in_order() {
        let body =
            br#"{"statement": "CALL p(?, 'x', ?)", "params": ["2024-01-01", 90], "format": "csv"}"#;
        let call = parse_call_body(body).unwrap();
        assert_eq!(
            call.args,
            vec![
                CallArg::Text("2024-01-01".into()),
                CallArg::Text("x".into()),
                CallArg::Int(90)
            ]
        );
        assert_eq!(call.format, OutputFormat::Csv);
        let call =
            parse_call_body(br#"{"procedure": "s.p", "args": [1.25, null, false]}"#).unwrap();
        assert_eq!(call.routine.to_string(), "s.p");
        assert_eq!(
            call.args,
            vec![
                CallArg::Decimal(Decimal::new(125, 2)),
                CallArg::Null,
                CallArg::Bool(false)
            ]
        );
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let field = |body: &str| match parse_call_body(body.as_bytes()) {
            Err(ApiError::InvalidInput { errors, .. }) => errors[0].field.clone(),
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            field(r#"{"statement": "CALL p(?)", "params": []}"#),
            "params"
        );
        assert_eq!(
            field(r#"{"statement": "CALL p(?)", "params": ["x'; DROP TABLE t; --"]}"#),
            "params"
        );
        assert_eq!(
            field(r#"{"statement": "CALL p(?)", "params": [{"a": 1}]}"#),
            "params"
        );
        assert_eq!(
            field(r#"{"procedure": "p; DROP TABLE t", "args": []}"#),
            "procedure"
        );
        assert_eq!(field(r#"{"procedure": "p", "args": ["1 -- x"]}"#), "args");
        assert_eq!(
            field(r#"{"procedure": "p", "statement": "CALL p()"}"#),
            "procedure"
        );
        assert_eq!(field(r#"{}"#), "statement");
        assert_eq!(field(r#"{"procedure": "p", "shoe": 1}"#), "shoe");
        assert_eq!(field(r#"{"procedure": "p", "format": "xml"}"#), "format");
        assert_eq!(field(r#"{"procedure": "p", "mode": "job"}"#), "mode");
        assert_eq!(
            field(r#"{"procedure": "p", "compression": "zip"}"#),
            "compression"
        );
    }
}
