//! `/admin/v1`: customers and their API keys, behind the admin token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, Problem};
use super::AppState;
use crate::tenancy::{self, ApiKeyInfo, AuditEntry, CreatedKey, Customer, NewCustomer};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/customers",
            get(list_customers).post(create_customer),
        )
        .route("/admin/v1/customers/{id}", get(get_customer))
        .route(
            "/admin/v1/customers/{id}/rotate-data-key",
            post(rotate_data_key),
        )
        .route(
            "/admin/v1/customers/{id}/keys",
            get(list_keys).post(create_key),
        )
        .route("/admin/v1/customers/{id}/keys/{key_id}", delete(revoke_key))
        .route("/admin/v1/maintenance", post(announce_maintenance))
}

/// A new customer with its secrets, each shown only here.
#[derive(Serialize, ToSchema)]
pub struct CustomerCreated {
    pub customer: Customer,
    /// The first API key.
    #[schema(example = "cs_live_Ab3dEf5gHi7jKl9mNo1pQr3sTu5vWx7y")]
    pub api_key: String,
    /// Id of that key, for revocation.
    pub api_key_id: String,
    /// Base64 of the 32-byte AES-256 key that decrypts this customer's stored files.
    #[schema(example = "q1Zk3mJ0c2VjcmV0LWtleS1ieXRlcy1oZXJlLTMyYg==")]
    pub data_key: String,
}

/// A customer's new data key, shown only here.
#[derive(Serialize, ToSchema)]
pub struct DataKeyRotated {
    pub customer: Customer,
    /// Base64 of the new 32-byte key; files stored from now on use it. Keep the old key
    /// for files stored before (their header and job carry the old key id).
    #[schema(example = "q1Zk3mJ0c2VjcmV0LWtleS1ieXRlcy1oZXJlLTMyYg==")]
    pub data_key: String,
}

/// Customers.
#[derive(Serialize, ToSchema)]
pub struct CustomerList {
    pub customers: Vec<Customer>,
}

/// Keys of a customer.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKeyInfo>,
}

/// Input of key creation.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyIn {
    /// A label for the key.
    #[schema(example = "reporting-server")]
    pub name: Option<String>,
    /// RFC 3339 time after which the key stops working (in the future); default: never.
    #[schema(example = "2025-12-31T23:59:59Z")]
    pub expires_at: Option<String>,
    /// Addresses or CIDRs the key may be used from, on top of the customer's allowlist.
    #[schema(example = json!(["203.0.113.0/24"]))]
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    /// Requests per minute for this key (1-1000000), on top of the customer's quota.
    #[schema(example = 120)]
    pub rate_limit_per_minute: Option<i64>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::field(
            "body",
            format!("the request body is not a valid JSON object of the documented shape: {e}"),
        )
    })
}

async fn audit(state: &AppState, action: &str, customer_id: &str, detail: serde_json::Value) {
    let entry = AuditEntry {
        customer_id: Some(customer_id.to_string()),
        action: action.to_string(),
        detail,
        ..Default::default()
    };
    tenancy::record(&state.meta, entry).await;
}

/// Create a customer, its first API key and its data key.
#[utoipa::path(post, path = "/admin/v1/customers", tag = "admin", security(("admin_token" = [])),
    request_body = NewCustomer,
    responses(
        (status = 201, description = "Created; the API key and data key are shown only now", body = CustomerCreated),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_customer(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<CustomerCreated>), ApiError> {
    let input: NewCustomer = json_body(&body)?;
    let (customer, key, data_key) =
        tenancy::create_customer(&state.meta, &state.master, input).await?;
    audit(
        &state,
        "customer.create",
        &customer.id,
        serde_json::json!({"key_id": key.info.id}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CustomerCreated {
            customer,
            api_key: key.api_key,
            api_key_id: key.info.id,
            data_key,
        }),
    ))
}

/// List customers.
#[utoipa::path(get, path = "/admin/v1/customers", tag = "admin", security(("admin_token" = [])),
    responses(
        (status = 200, description = "All customers", body = CustomerList),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_customers(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<CustomerList>, ApiError> {
    Ok(Json(CustomerList {
        customers: tenancy::list_customers(&state.meta).await?,
    }))
}

/// One customer.
#[utoipa::path(get, path = "/admin/v1/customers/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The customer", body = Customer),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_customer(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    let customer = tenancy::get_customer(&state.meta, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no customer {id:?}")))?;
    Ok(Json(customer))
}

/// Rotate a customer's data key: new files use the new key, stored files keep theirs.
#[utoipa::path(post, path = "/admin/v1/customers/{id}/rotate-data-key", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "Rotated; the new key is shown only now", body = DataKeyRotated),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_data_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<DataKeyRotated>, ApiError> {
    let (customer, data_key) = tenancy::rotate_data_key(&state.meta, &state.master, &id).await?;
    audit(
        &state,
        "customer.rotate_data_key",
        &id,
        serde_json::json!({"key_id": customer.data_key_id}),
    )
    .await;
    Ok(Json(DataKeyRotated { customer, data_key }))
}

/// Create another API key for a customer.
#[utoipa::path(post, path = "/admin/v1/customers/{id}/keys", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Customer id")),
    request_body(content = KeyIn, description = "Optional; an empty body names the key `default`"),
    responses(
        (status = 201, description = "Created; the key is shown only now", body = CreatedKey),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let input: KeyIn = if body.iter().all(u8::is_ascii_whitespace) {
        KeyIn::default()
    } else {
        json_body(&body)?
    };
    let expires_at = match &input.expires_at {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    ApiError::field(
                        "expires_at",
                        "expires_at must be an RFC 3339 time, e.g. 2025-12-31T23:59:59Z",
                    )
                })?
                .with_timezone(&chrono::Utc),
        ),
    };
    let limits = tenancy::KeyLimits {
        expires_at,
        ip_allowlist: input.ip_allowlist,
        rate_limit_per_minute: input.rate_limit_per_minute,
    };
    let key = tenancy::create_key(&state.meta, &id, input.name.as_deref(), &limits).await?;
    audit(
        &state,
        "key.create",
        &id,
        serde_json::json!({"key_id": key.info.id, "name": key.info.name}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(key)))
}

/// List a customer's API keys (never the keys themselves).
#[utoipa::path(get, path = "/admin/v1/customers/{id}/keys", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The keys", body = KeyList),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_keys(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    if tenancy::get_customer(&state.meta, &id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no customer {id:?}")));
    }
    Ok(Json(KeyList {
        keys: tenancy::list_keys(&state.meta, &id).await?,
    }))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/admin/v1/customers/{id}/keys/{key_id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Customer id"), ("key_id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key for this customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_key(
    State(state): State<AppState>,
    _admin: Admin,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tenancy::revoke_key(&state.meta, &id, &key_id).await?;
    audit(
        &state,
        "key.revoke",
        &id,
        serde_json::json!({"key_id": key_id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// What an announcement queued.
#[derive(Serialize, ToSchema)]
pub struct MaintenanceQueued {
    /// The event id; `null` when no endpoint subscribes to `system.maintenance`.
    pub event_id: Option<String>,
    /// Deliveries queued, one per subscribed endpoint.
    pub deliveries: usize,
}

/// Announce maintenance: a `system.maintenance` event to every subscribed endpoint of every customer.
#[utoipa::path(post, path = "/admin/v1/maintenance", tag = "admin", security(("admin_token" = [])),
    request_body = crate::webhooks::Maintenance,
    responses(
        (status = 202, description = "Queued", body = MaintenanceQueued),
        (status = 400, description = "Invalid input", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong admin token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn announce_maintenance(
    State(state): State<AppState>,
    _admin: Admin,
    body: Bytes,
) -> Result<(StatusCode, Json<MaintenanceQueued>), ApiError> {
    let input: crate::webhooks::Maintenance = json_body(&body)?;
    input.check().map_err(|errors| {
        ApiError::fields(
            errors
                .into_iter()
                .map(|(field, message)| super::error::FieldError::new(field, message))
                .collect(),
        )
    })?;
    let (event_id, deliveries) = crate::webhooks::announce_maintenance(&state.meta, &input).await?;
    tenancy::record(
        &state.meta,
        AuditEntry {
            action: "maintenance.announce".into(),
            detail: serde_json::json!({"event_id": event_id, "deliveries": deliveries, "starts_at": input.starts_at}),
            ..Default::default()
        },
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(MaintenanceQueued {
            event_id,
            deliveries,
        }),
    ))
}
