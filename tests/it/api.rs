//! Authentication, tenancy, the admin API, the catalog and the OpenAPI document,
//! on both metadata backends.

use crate::helpers::{expect_problem, practices, MetaBackend, TestApp, ADMIN_TOKEN};

async fn admin_and_auth_flow(app: &TestApp) {
    let practice = &practices().sqlite;
    // Admin API needs the token.
    let response = app
        .client
        .post(app.url("/admin/v1/customers"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(response, 401).await;
    let response = app
        .client
        .get(app.url("/admin/v1/customers"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    expect_problem(response, 401).await;

    let (key, created) = app.create_customer("alpha", practice).await;
    assert!(key.starts_with("cs_live_") && key.len() == 40);
    let data_key = created["data_key"].as_str().unwrap();
    let decoded = base64_len(data_key);
    assert_eq!(decoded, 32, "data key is 32 bytes of base64");
    assert_eq!(created["customer"]["id"], "alpha");
    assert_eq!(created["customer"]["source_kind"], "sqlite");
    assert!(
        created["customer"].get("source_url").is_none(),
        "the source URL is never returned"
    );

    // Same id again: 409. Bad inputs: 400 naming the field.
    let again = app
        .client
        .post(app.url("/admin/v1/customers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"id": "alpha", "name": "x", "source_url": practice}))
        .send()
        .await
        .unwrap();
    expect_problem(again, 409).await;
    for (body, field) in [
        (
            serde_json::json!({"id": "Bad Id", "name": "x", "source_url": practice}),
            "id",
        ),
        (
            serde_json::json!({"id": "beta", "name": "x", "source_url": "oracle://db"}),
            "source_url",
        ),
        (
            serde_json::json!({"id": "beta", "name": "x", "source_url": practice, "ip_allowlist": ["10.0.0.0/99"]}),
            "ip_allowlist",
        ),
        (
            serde_json::json!({"id": "beta", "name": "", "source_url": practice}),
            "name",
        ),
    ] {
        let response = app
            .client
            .post(app.url("/admin/v1/customers"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, 400).await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let not_json = app
        .client
        .post(app.url("/admin/v1/customers"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_problem(not_json, 400).await["errors"][0]["field"],
        "body"
    );

    // The key works by Bearer and by X-API-Key; nothing else does.
    assert_eq!(app.get(&key, "/v1/procedures").await.status(), 200);
    let by_header = app
        .client
        .get(app.url("/v1/procedures"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    expect_problem(
        app.client
            .get(app.url("/v1/procedures"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    expect_problem(
        app.get("cs_live_00000000000000000000000000000000", "/v1/procedures")
            .await,
        401,
    )
    .await;
    expect_problem(app.get(ADMIN_TOKEN, "/v1/procedures").await, 401).await;
    // A customer key is not an admin token.
    expect_problem(
        app.client
            .get(app.url("/admin/v1/customers"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;

    // A second key, listed without its secret, then revoked: it stops working at once.
    let response = app
        .client
        .post(app.url("/admin/v1/customers/alpha/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"name": "reporting"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let second: serde_json::Value = response.json().await.unwrap();
    let second_key = second["api_key"].as_str().unwrap().to_string();
    let second_id = second["id"].as_str().unwrap().to_string();
    assert_eq!(app.get(&second_key, "/v1/procedures").await.status(), 200);
    let keys: serde_json::Value = app
        .client
        .get(app.url("/admin/v1/customers/alpha/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = keys["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        !keys.to_string().contains(&second_key),
        "a listing never shows a key"
    );
    assert!(listed
        .iter()
        .any(|k| k["id"] == second_id.as_str() && k["last_used_at"].is_string()));
    let revoke = app
        .client
        .delete(app.url(&format!("/admin/v1/customers/alpha/keys/{second_id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    expect_problem(app.get(&second_key, "/v1/procedures").await, 401).await;
    assert_eq!(
        app.get(&key, "/v1/procedures").await.status(),
        200,
        "the other key still works"
    );

    // Another customer's key id is not found through this customer.
    let (_, beta) = app.create_customer("beta", practice).await;
    let beta_key_id = beta["api_key_id"].as_str().unwrap();
    let cross = app
        .client
        .delete(app.url(&format!("/admin/v1/customers/alpha/keys/{beta_key_id}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    expect_problem(cross, 404).await;
    expect_problem(
        app.client
            .get(app.url("/admin/v1/customers/nobody"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    let list: serde_json::Value = app
        .client
        .get(app.url("/admin/v1/customers"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "beta"]);
}

fn base64_len(text: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
        .len()
}

#[tokio::test]
async fn admin_and_auth_on_sqlite_metadata() {
    let app = TestApp::spawn().await;
    admin_and_auth_flow(&app).await;
}

#[tokio::test]
async fn admin_and_auth_on_postgres_metadata() {
    let Some(app) = TestApp::spawn_with(MetaBackend::Postgres, |_| {}).await else {
        return;
    };
    admin_and_auth_flow(&app).await;
}

#[tokio::test]
async fn catalog_lists_all_procedures_by_category() {
    let app = TestApp::spawn().await;
    let (key, _) = app.create_customer("cat", &practices().sqlite).await;
    let body: serde_json::Value = app.get(&key, "/v1/procedures").await.json().await.unwrap();
    let categories = body["categories"].as_array().unwrap();
    let names: Vec<&str> = categories
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "patient_management",
            "scheduling",
            "financial",
            "clinical",
            "business_operations",
            "practice_setup"
        ]
    );
    let total: usize = categories
        .iter()
        .map(|c| c["procedures"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 32);
    for procedure in categories
        .iter()
        .flat_map(|c| c["procedures"].as_array().unwrap())
    {
        let modifiers: Vec<&str> = procedure["date_modifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(
            modifiers.contains(&"Created") && modifiers.contains(&"Modified"),
            "{}",
            procedure["name"]
        );
        assert!(!procedure["columns"].as_array().unwrap().is_empty());
    }
    let one: serde_json::Value = app
        .get(&key, "/v1/procedures/appointments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["date_modifiers"][0]["name"], "AppointmentDate");
    let missing = expect_problem(app.get(&key, "/v1/procedures/nope").await, 404).await;
    assert!(
        missing["detail"].as_str().unwrap().contains("appointments"),
        "lists accepted values"
    );
}

#[tokio::test]
async fn errors_are_problem_json_everywhere() {
    let app = TestApp::spawn().await;
    let body = expect_problem(
        app.client
            .get(app.url("/no/such/path"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(body["instance"], "/no/such/path");
    let response = app
        .client
        .delete(app.url("/v1/procedures"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));
    let health: serde_json::Value = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn openapi_validates_and_docs_load() {
    let app = TestApp::spawn().await;
    let spec = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/ready",
        "/v1/procedures",
        "/v1/procedures/{name}",
        "/v1/extract/{procedure}",
        "/admin/v1/customers",
        "/admin/v1/customers/{id}",
        "/admin/v1/customers/{id}/keys",
        "/admin/v1/customers/{id}/keys/{key_id}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(paths["/v1/extract/{procedure}"].get("post").is_some());
    // An independent validator (openapi-spec-validator from PyPI) must accept it.
    let file = app.data_dir.join("openapi.json");
    std::fs::write(&file, &spec).unwrap();
    let output = std::process::Command::new("python3")
        .args(["-c", "import sys, json; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "OpenAPI validation failed (pip install openapi-spec-validator): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger-ui"));
    let js = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200, "Swagger UI files ship in the binary");
}
