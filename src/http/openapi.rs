//! The OpenAPI 3.1 document, generated from the handlers, and Swagger UI at `/docs`.

use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CipherStream API",
        description = "Extract a dental or medical practice's data (patients, appointments, financials, clinical records, expenses, setup) as NDJSON, JSON, CSV or Parquet.\n\n\
Authenticate with `Authorization: Bearer <api_key>` (or `X-API-Key`). Every error is RFC 9457 `application/problem+json` with the offending fields in `errors`. \
Times are RFC 3339 UTC; `datetime` columns are practice-local wall-clock times without an offset. Decimal values (money) are written exactly as stored.\n\n\
Extraction parameters are validated before any query runs; string filter values are limited to letters, digits, spaces and `_ . - @ / &`.\n\n\
A customer or key with a request quota (`rate_limit_per_minute`) gets `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy` on every answer, \
and `429 Too Many Requests` with `Retry-After` (seconds) when the quota is used up; past 80% of it an `api.rate_limit` webhook event is sent, once a minute.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        super::ops::health,
        super::ops::ready,
        super::catalog::list_procedures,
        super::catalog::get_procedure,
        super::extract::extract_get,
        super::extract::extract_post,
        super::jobs::create_job,
        super::jobs::list_jobs,
        super::jobs::get_job,
        super::jobs::cancel_job,
        super::jobs::download_job,
        super::schedules::create_schedule,
        super::schedules::list_schedules,
        super::schedules::get_schedule,
        super::schedules::update_schedule,
        super::schedules::delete_schedule,
        super::files::download_file,
        super::files::download_file_head,
        super::admin::create_customer,
        super::admin::list_customers,
        super::admin::get_customer,
        super::admin::rotate_data_key,
        super::admin::create_key,
        super::admin::list_keys,
        super::admin::revoke_key,
        super::admin::announce_maintenance,
        super::webhooks::create_webhook,
        super::webhooks::list_webhooks,
        super::webhooks::get_webhook,
        super::webhooks::update_webhook,
        super::webhooks::delete_webhook,
        super::webhooks::rotate_secret,
        super::webhooks::test_webhook,
        super::webhooks::list_deliveries,
        super::webhooks::webhook_stats,
        super::webhooks::recover,
        super::webhooks::dead_letter,
        super::webhooks::get_delivery,
        super::webhooks::retry_delivery,
        super::notifications::get_email,
        super::notifications::put_email,
        super::notifications::delete_email,
        super::metrics::metrics,
        super::audit::list_audit,
    ),
    components(schemas(super::error::Problem, super::error::FieldError)),
    modifiers(&Security),
    tags(
        (name = "extraction", description = "Stream a procedure's rows as a file"),
        (name = "jobs", description = "Background extractions to encrypted files"),
        (name = "schedules", description = "Recurring extractions: each run creates a job"),
        (name = "files", description = "Presigned downloads of job files (no API key; the URL is the credential)"),
        (name = "webhooks", description = "Signed, retried event deliveries to your endpoints, and email notifications. \
Every call carries `X-CipherStream-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (one value per active secret during a rotation, space-separated), \
`X-CipherStream-Timestamp` (Unix seconds, also in the body as `timestamp`), `X-CipherStream-Event`, `X-CipherStream-Delivery`, and the Standard Webhooks \
headers `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`. Reject timestamps more than 5 minutes off; deduplicate on `delivery_id`."),
        (name = "advanced", description = "Direct table access and stored-procedure calls on the customer's own database (read-only, extended time limit)"),
        (name = "catalog", description = "What can be extracted"),
        (name = "admin", description = "Customers and API keys (admin token)"),
        (name = "operations", description = "Health, readiness and Prometheus metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The customer's API key (cs_live_…)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The admin token from configuration"))
                    .build(),
            ),
        );
    }
}

/// Answers that whole kinds of operations give whatever their handler does (the IP
/// allowlist and the request quota of API-key operations, the body size limit),
/// documented once here rather than on each path.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let api_key = SecurityRequirement::new("api_key", Vec::<String>::new());
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.security.iter().flatten().any(|r| *r == api_key) {
                    add_response(
                        operation,
                        "403",
                        problem("The request comes from an address outside the customer's or key's IP allowlist"),
                    );
                    add_response(operation, "429", too_many_requests());
                }
                if operation.request_body.is_some() {
                    add_response(
                        operation,
                        "413",
                        problem("The request body is larger than the server accepts"),
                    );
                }
            }
        }
    }
}

fn add_response(operation: &mut Operation, status: &str, response: Response) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert(RefOr::T(response));
}

/// An RFC 9457 problem answer.
fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn too_many_requests() -> Response {
    let mut response = problem("Over the customer's request quota (`rate_limit_per_minute`)");
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .build();
    response.headers.insert(
        "Retry-After".into(),
        HeaderBuilder::new()
            .schema(seconds)
            .description(Some("Seconds until the quota allows a request again"))
            .build(),
    );
    response
}

/// A string that is one of `values`.
pub fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .into()
}

/// `YYYY-MM-DD` or an RFC 3339 time: the form of the date parameters of extractions
/// and lists (documentation only; `value_type = DateOrTime, inline`).
pub struct DateOrTime;

impl utoipa::PartialSchema for DateOrTime {
    fn schema() -> RefOr<Schema> {
        let string = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        AnyOfBuilder::new()
            .item(string(KnownFormat::Date))
            .item(string(KnownFormat::DateTime))
            .into()
    }
}

impl utoipa::ToSchema for DateOrTime {}

/// A file's bytes: the body of a binary download (documentation only).
pub struct BinaryFile;

impl utoipa::PartialSchema for BinaryFile {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for BinaryFile {}

/// `/openapi.json` and `/docs`.
pub fn router() -> Router<AppState> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", document()))
}

/// The whole document: the API and the advanced tools.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::advanced::AdvancedDoc::openapi());
    CommonResponses.modify(&mut doc);
    doc
}
