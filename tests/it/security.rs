//! Access control and the audit trail: IP allowlists (API and presigned downloads),
//! trusted proxies, the audit API, and no secret in the audit trail.

use std::time::Duration;

use serde_json::Value as Json;

use crate::helpers::{expect_problem, practices, ADMIN_TOKEN};
use crate::webhooks::{create_webhook, spawn_app, wait_job};

async fn customer(app: &crate::helpers::TestApp, id: &str, allowlist: &[&str]) -> (String, Json) {
    let response = app
        .client
        .post(app.url("/admin/v1/customers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"id": id, "name": id, "source_url": practices().sqlite, "ip_allowlist": allowlist}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Json = response.json().await.unwrap();
    (body["api_key"].as_str().unwrap().to_string(), body)
}

async fn get_from(
    app: &crate::helpers::TestApp,
    key: &str,
    path: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.get(app.url(path)).bearer_auth(key);
    if let Some(ip) = forwarded {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn allowlists_admit_listed_addresses_and_believe_only_trusted_proxies() {
    // The tests connect from 127.0.0.1; no proxy is trusted.
    let direct = spawn_app(0, |_| {}).await;
    let (local, _) = customer(&direct, "local-only", &["127.0.0.1"]).await;
    let (remote, _) = customer(&direct, "office-only", &["203.0.113.0/24"]).await;
    assert_eq!(
        get_from(&direct, &local, "/v1/jobs", None).await.status(),
        200
    );
    let refused = get_from(&direct, &remote, "/v1/jobs", None).await;
    let problem = expect_problem(refused, 403).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{problem}"
    );
    assert!(
        !problem["detail"].as_str().unwrap().contains("203.0.113"),
        "the allowlist is not revealed"
    );
    // A client cannot pick its address with X-Forwarded-For when no proxy is trusted.
    assert_eq!(
        get_from(&direct, &remote, "/v1/jobs", Some("203.0.113.9"))
            .await
            .status(),
        403
    );

    // Behind a trusted proxy (127.0.0.1), the forwarded client address counts.
    let proxied = spawn_app(0, |c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let (office, _) = customer(&proxied, "office", &["203.0.113.0/24", "2001:db8::/32"]).await;
    assert_eq!(
        get_from(&proxied, &office, "/v1/jobs", Some("203.0.113.9"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_from(&proxied, &office, "/v1/jobs", Some("2001:db8::5"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get_from(&proxied, &office, "/v1/jobs", Some("198.51.100.1"))
            .await
            .status(),
        403
    );
    // The right-most untrusted hop is the client: a forged first entry does not help.
    assert_eq!(
        get_from(
            &proxied,
            &office,
            "/v1/jobs",
            Some("203.0.113.9, 198.51.100.1")
        )
        .await
        .status(),
        403
    );
    assert_eq!(
        get_from(
            &proxied,
            &office,
            "/v1/jobs",
            Some("198.51.100.1, 203.0.113.9")
        )
        .await
        .status(),
        200
    );
    // Without the header the proxy itself is the client, and it is not listed.
    assert_eq!(
        get_from(&proxied, &office, "/v1/jobs", None).await.status(),
        403
    );
    // A customer without an allowlist is reachable from anywhere.
    let (open, _) = customer(&proxied, "open", &[]).await;
    assert_eq!(
        get_from(&proxied, &open, "/v1/jobs", Some("198.51.100.1"))
            .await
            .status(),
        200
    );
    // The audit trail records the client address, not the proxy's.
    let audit: Json = get_from(
        &proxied,
        &office,
        "/v1/audit?action=api.request",
        Some("203.0.113.9"),
    )
    .await
    .json()
    .await
    .unwrap();
    let ips: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["ip"].as_str())
        .collect();
    assert!(
        ips.contains(&"203.0.113.9") && ips.contains(&"198.51.100.1"),
        "{ips:?}"
    );

    // Bad allowlist entries are refused at creation, naming the field.
    let bad = proxied
        .client
        .post(proxied.url("/admin/v1/customers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"id": "bad-list", "name": "x", "source_url": practices().sqlite, "ip_allowlist": ["10.0.0.0/33"]}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(bad, 400).await;
    assert_eq!(problem["errors"][0]["field"], "ip_allowlist", "{problem}");
}

#[tokio::test]
async fn presigned_downloads_follow_the_owners_allowlist() {
    let app = spawn_app(1, |c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let (key, _) = customer(&app, "dl-office", &["203.0.113.0/24"]).await;
    let created: Json = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&key)
        .header("x-forwarded-for", "203.0.113.10")
        .json(&serde_json::json!({"procedure": "payment_types"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = created["job_id"].as_str().unwrap();
    let mut job = Json::Null;
    for _ in 0..200 {
        job = get_from(
            &app,
            &key,
            &format!("/v1/jobs/{job_id}"),
            Some("203.0.113.10"),
        )
        .await
        .json()
        .await
        .unwrap();
        if job["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = job["s3_url"].as_str().expect("a download URL").to_string();
    let outside = app.client.get(&url).send().await.unwrap();
    expect_problem(outside, 403).await;
    let inside = app
        .client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.10")
        .send()
        .await
        .unwrap();
    assert_eq!(inside.status(), 200);
    assert!(!inside.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_audit_trail_records_calls_jobs_and_changes_and_no_secret() {
    let app = spawn_app(1, |_| {}).await;
    let (key, created) = customer(&app, "audited", &[]).await;
    let (other_key, _) = customer(&app, "someone-else", &[]).await;
    let data_key = created["data_key"].as_str().unwrap().to_string();
    let receiver = crate::receiver::Receiver::start().await;
    let hook = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": receiver.url, "events": ["job.completed"],
        "headers": {"Authorization": "Bearer receiver-secret-token"}}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let job: Json = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"procedure": "payment_types"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = job["job_id"].as_str().unwrap();
    assert_eq!(wait_job(&app, &key, job_id).await["status"], "completed");
    receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(app.get(&key, "/v1/jobs/nope").await.status(), 404);
    let rotated: Json = app
        .client
        .post(app.url(&format!(
            "/v1/webhooks/{}/rotate-secret",
            hook["webhook_id"].as_str().unwrap()
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_string();

    let audit: Json = app
        .get(&key, "/v1/audit?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "api.request",
        "job.created",
        "job.completed",
        "webhook.create",
        "webhook.rotate_secret",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    // An API call: method, path, status, duration, key, address and request id.
    let missing = entries
        .iter()
        .find(|e| e["action"] == "api.request" && e["path"] == "/v1/jobs/nope")
        .expect("the 404 call is audited");
    assert_eq!(missing["method"], "GET");
    assert_eq!(missing["status"], 404);
    assert!(missing["key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(missing["ip"], "127.0.0.1");
    assert!(missing["request_id"].as_str().unwrap().starts_with("req_"));
    assert!(missing["duration_ms"].as_i64().unwrap() >= 0);
    let completed = entries
        .iter()
        .find(|e| e["action"] == "job.completed")
        .unwrap();
    assert_eq!(completed["detail"]["job_id"], job_id);
    // Newest first.
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));

    // Filters and paging.
    let only: Json = app
        .get(&key, "/v1/audit?action=job.completed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only["total"], 1);
    for n in 0..2 {
        let url = format!("{}?n={n}", receiver.url);
        create_webhook(
            &app,
            &key,
            serde_json::json!({"url": url, "events": ["job.failed"]}),
        )
        .await;
    }
    // Paging over a set that does not grow while we read it.
    let creates: Json = app
        .get(&key, "/v1/audit?action=webhook.create")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(creates["total"], 3);
    let page: Json = app
        .get(&key, "/v1/audit?action=webhook.create&limit=1&offset=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["entries"][0]["audit_id"],
        creates["entries"][1]["audit_id"]
    );
    let future: Json = app
        .get(&key, "/v1/audit?from=2100-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(future["total"], 0);
    for (query, field) in [
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
        ("action=DROP%20TABLE", "action"),
        ("bogus=1", "bogus"),
        ("from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", "to"),
    ] {
        let problem = expect_problem(app.get(&key, &format!("/v1/audit?{query}")).await, 400).await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    // Another customer sees none of it.
    let theirs: Json = app
        .get(&other_key, "/v1/audit?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let their_entries = theirs["entries"].as_array().unwrap();
    assert!(their_entries
        .iter()
        .all(|e| e["path"].as_str().is_none_or(|p| !p.contains(job_id))));
    assert!(
        their_entries
            .iter()
            .all(|e| ["api.request", "customer.create"].contains(&e["action"].as_str().unwrap())),
        "{theirs}"
    );

    // No secret anywhere in the stored trail.
    let url = format!("sqlite://{}", app.data_dir.join("metadata.db").display());
    let meta = cipherstream::meta::Meta::connect(&url).await.unwrap();
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT action, path, detail FROM audit_entries")
            .fetch_all(&meta.pool)
            .await
            .unwrap();
    let dump = format!("{rows:?}");
    for secret in [
        key.as_str(),
        other_key.as_str(),
        &secret,
        &new_secret,
        &data_key,
        "receiver-secret-token",
        ADMIN_TOKEN,
    ] {
        assert!(!dump.contains(secret), "a secret is in the audit trail");
    }
}

#[tokio::test]
async fn keys_can_be_limited_to_addresses_and_a_lifetime() {
    let app = spawn_app(0, |_| {}).await;
    let (customer_key, _) = customer(&app, "keyed", &[]).await;
    let create = |body: Json| {
        let request = app
            .client
            .post(app.url("/admin/v1/customers/keyed/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let office =
        create(serde_json::json!({"name": "office", "ip_allowlist": ["203.0.113.0/24"]})).await;
    assert_eq!(office.status(), 201);
    let office: Json = office.json().await.unwrap();
    assert_eq!(
        office["ip_allowlist"],
        serde_json::json!(["203.0.113.0/24"])
    );
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let short: Json = create(serde_json::json!({"name": "short-lived", "expires_at": soon}))
        .await
        .json()
        .await
        .unwrap();
    assert!(short["expires_at"].is_string());

    // The office key works only from the office; the customer's other key anywhere.
    let problem = expect_problem(
        app.get(office["api_key"].as_str().unwrap(), "/v1/jobs")
            .await,
        403,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("allowlist"));
    assert_eq!(app.get(&customer_key, "/v1/jobs").await.status(), 200);
    // The short-lived key works until it expires, then is refused like an unknown key.
    let short_key = short["api_key"].as_str().unwrap();
    assert_eq!(app.get(short_key, "/v1/jobs").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    expect_problem(app.get(short_key, "/v1/jobs").await, 401).await;

    // Bad limits are refused, naming the field; nothing is created.
    let before: Json = app
        .client
        .get(app.url("/admin/v1/customers/keyed/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (body, field) in [
        (
            serde_json::json!({"expires_at": "2000-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (serde_json::json!({"expires_at": "next week"}), "expires_at"),
        (
            serde_json::json!({"ip_allowlist": ["10.0.0.0/40"]}),
            "ip_allowlist",
        ),
        (
            serde_json::json!({"ip_allowlist": ["'; DROP TABLE api_keys; --"]}),
            "ip_allowlist",
        ),
    ] {
        let problem = expect_problem(create(body.clone()).await, 400).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let after: Json = app
        .client
        .get(app.url("/admin/v1/customers/keyed/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        before["keys"].as_array().unwrap().len(),
        after["keys"].as_array().unwrap().len()
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_extracted_rows() {
    let app = spawn_app(0, |_| {}).await;
    let (key, _) = customer(&app, "measured", &[]).await;
    let csv = app.get(&key, "/v1/extract/payment_types?format=csv").await;
    assert_eq!(csv.status(), 200);
    let rows = csv.text().await.unwrap().lines().count() as f64 - 1.0;
    assert!(rows > 0.0);
    expect_problem(app.get(&key, "/v1/jobs/missing").await, 404).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    // The registry is shared by every server of the test process: at least ours.
    assert!(
        value("cipherstream_extraction_rows_total") >= rows,
        "{text}"
    );
    assert!(value("cipherstream_extraction_bytes_total") > 0.0);
    assert!(
        value("cipherstream_http_requests_total{method=\"GET\",route=\"/v1/jobs/{job_id}\",status=\"404\"}") >= 1.0,
        "{text}"
    );
    assert!(text.contains("cipherstream_http_request_duration_seconds_bucket"));
    assert!(text.contains("cipherstream_jobs{status=\"queued\"}"));
    // Aggregates only: no customer id or key in the exposition.
    assert!(!text.contains("measured") && !text.contains(&key));
}

/// One request of the tenant matrix.
async fn call(
    app: &crate::helpers::TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Json>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn no_customer_reaches_another_customers_resources() {
    use reqwest::Method;
    let app = spawn_app(1, |_| {}).await;
    let (alice, _) = customer(&app, "alice-clinic", &[]).await;
    let (bob, _) = customer(&app, "bob-clinic", &[]).await;
    let receiver = crate::receiver::Receiver::start().await;

    // Alice's resources: a finished job with a file, a schedule, a webhook with a delivery.
    let job: Json = call(
        &app,
        &alice,
        Method::POST,
        "/v1/jobs",
        Some(serde_json::json!({"procedure": "payment_types"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let job_id = job["job_id"].as_str().unwrap().to_string();
    let done = wait_job(&app, &alice, &job_id).await;
    let file_url = done["s3_url"].as_str().unwrap().to_string();
    let schedule: Json = call(
        &app,
        &alice,
        Method::POST,
        "/v1/schedules",
        Some(serde_json::json!({"name": "nightly", "cron": "0 2 * * *", "timezone": "UTC", "procedure": "payment_types", "window": "previous_day"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let schedule_id = schedule["schedule_id"].as_str().unwrap().to_string();
    let hook = create_webhook(
        &app,
        &alice,
        serde_json::json!({"url": receiver.url, "events": ["job.completed"]}),
    )
    .await;
    let hook_id = hook["webhook_id"].as_str().unwrap().to_string();
    let delivery: Json = call(
        &app,
        &alice,
        Method::POST,
        &format!("/v1/webhooks/{hook_id}/test"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let delivery_id = delivery["delivery_id"].as_str().unwrap().to_string();
    receiver.wait_for(1, Duration::from_secs(10)).await;

    let since = serde_json::json!({"since": "2000-01-01T00:00:00Z"});
    let matrix: Vec<(Method, String, Option<Json>)> = vec![
        (Method::GET, format!("/v1/jobs/{job_id}"), None),
        (Method::POST, format!("/v1/jobs/{job_id}/cancel"), None),
        (Method::GET, format!("/v1/jobs/{job_id}/download"), None),
        (Method::GET, format!("/v1/schedules/{schedule_id}"), None),
        (
            Method::PATCH,
            format!("/v1/schedules/{schedule_id}"),
            Some(serde_json::json!({"name": "mine now"})),
        ),
        (Method::DELETE, format!("/v1/schedules/{schedule_id}"), None),
        (Method::GET, format!("/v1/webhooks/{hook_id}"), None),
        (
            Method::PATCH,
            format!("/v1/webhooks/{hook_id}"),
            Some(serde_json::json!({"description": "mine now"})),
        ),
        (Method::DELETE, format!("/v1/webhooks/{hook_id}"), None),
        (Method::POST, format!("/v1/webhooks/{hook_id}/test"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{hook_id}/rotate-secret"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/webhooks/{hook_id}/deliveries"),
            None,
        ),
        (Method::GET, format!("/v1/webhooks/{hook_id}/stats"), None),
        (
            Method::POST,
            format!("/v1/webhooks/{hook_id}/recover"),
            Some(since),
        ),
        (
            Method::GET,
            format!("/v1/webhooks/deliveries/{delivery_id}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/webhooks/deliveries/{delivery_id}/retry"),
            None,
        ),
    ];
    for (method, path, body) in matrix {
        let response = call(&app, &bob, method.clone(), &path, body).await;
        let problem = expect_problem(response, 404).await;
        assert!(
            !problem["detail"].as_str().unwrap().contains("alice"),
            "{method} {path}: {problem}"
        );
    }
    // Lists show nothing of Alice's.
    for path in [
        "/v1/jobs",
        "/v1/schedules",
        "/v1/webhooks",
        "/v1/webhooks/dead-letter",
    ] {
        let text = call(&app, &bob, Method::GET, path, None)
            .await
            .text()
            .await
            .unwrap();
        for id in [&job_id, &schedule_id, &hook_id, &delivery_id] {
            assert!(!text.contains(id.as_str()), "{path} shows {id}");
        }
    }
    // Bob's trail holds his own calls (their paths name what he asked for) and nothing else.
    let audit: Json = call(&app, &bob, Method::GET, "/v1/audit?limit=100", None)
        .await
        .json()
        .await
        .unwrap();
    for entry in audit["entries"].as_array().unwrap() {
        if entry["action"] == "api.request" {
            assert_eq!(entry["key_id"], audit["entries"][0]["key_id"], "{entry}");
        } else {
            assert_eq!(entry["action"], "customer.create", "{entry}");
        }
    }
    let alices: Json = call(
        &app,
        &alice,
        Method::GET,
        "/v1/audit?action=job.completed",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(alices["total"], 1);
    // Everything of Alice's is untouched and still hers.
    assert_eq!(
        call(
            &app,
            &alice,
            Method::GET,
            &format!("/v1/jobs/{job_id}"),
            None
        )
        .await
        .status(),
        200
    );
    let schedule_now: Json = call(
        &app,
        &alice,
        Method::GET,
        &format!("/v1/schedules/{schedule_id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(schedule_now["name"], "nightly");
    let hook_now: Json = call(
        &app,
        &alice,
        Method::GET,
        &format!("/v1/webhooks/{hook_id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(hook_now["description"], "");
    assert!(
        hook_now["secret_rotation_ends_at"].is_null(),
        "Bob's rotation must not have happened"
    );
    // A presigned URL works for whoever holds it (it is the credential), but its
    // signature covers the key: pointing it at another file is refused.
    assert_eq!(
        app.client.get(&file_url).send().await.unwrap().status(),
        200
    );
    let forged = file_url.replace("alice-clinic", "bob-clinic");
    expect_problem(app.client.get(&forged).send().await.unwrap(), 403).await;
}

/// Starts the binary with its whole log (JSON, debug level) written to `log`.
fn start_logged(
    data_dir: &std::path::Path,
    log: &std::path::Path,
) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cipherstream"))
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "serve",
            "--bind",
            "127.0.0.1:0",
        ])
        .env("CIPHERSTREAM_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CIPHERSTREAM_LOG_FORMAT", "json")
        .env("CIPHERSTREAM_LOG", "debug")
        .env("CIPHERSTREAM_WEBHOOK_ALLOW_LOOPBACK", "true")
        .env("CIPHERSTREAM_WEBHOOK_POLL_INTERVAL_MS", "50")
        .env("CIPHERSTREAM_JOB_POLL_INTERVAL_MS", "50")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let addr = text.lines().find_map(|line| {
            let line: Json = serde_json::from_str(line).ok()?;
            (line["fields"]["message"] == "listening")
                .then(|| line["fields"]["addr"].as_str().unwrap().to_string())
        });
        if let Some(addr) = addr {
            return (child, format!("http://{addr}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not start");
}

#[tokio::test]
async fn no_secret_reaches_the_logs_even_at_debug_level() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("server.log");
    let (dir, log_path) = (data.path().to_path_buf(), log.clone());
    let (mut server, base) = tokio::task::spawn_blocking(move || start_logged(&dir, &log_path))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let receiver = crate::receiver::Receiver::start().await;
    let created: Json = client
        .post(format!("{base}/admin/v1/customers"))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &serde_json::json!({"id": "quiet", "name": "Quiet", "source_url": practices().sqlite}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();
    let data_key = created["data_key"].as_str().unwrap().to_string();
    let hook: Json = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": receiver.url, "events": ["job.completed"], "headers": {"Authorization": "Bearer receiver-token-0451"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = hook["secret"].as_str().unwrap().to_string();
    let job: Json = client
        .post(format!("{base}/v1/jobs"))
        .header("x-api-key", &key)
        .json(&serde_json::json!({"procedure": "payment_types", "format": "csv"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = job["job_id"].as_str().unwrap().to_string();
    let mut done = Json::Null;
    for _ in 0..200 {
        done = client
            .get(format!("{base}/v1/jobs/{job_id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["status"], "completed");
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let file = client
        .get(done["s3_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let rotated: Json = client
        .post(format!(
            "{base}/v1/webhooks/{}/rotate-secret",
            hook["webhook_id"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    let wrong_key = "cs_live_ThisKeyDoesNotExist0123456789ab";
    assert_eq!(
        client
            .get(format!("{base}/v1/jobs"))
            .bearer_auth(wrong_key)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        client
            .get(format!("{base}/admin/v1/customers"))
            .bearer_auth("wrong-admin-token-77")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // The decrypt command takes the data key from the environment; its output is checked too.
    let encrypted = data.path().join("file.cse");
    std::fs::write(&encrypted, &file).unwrap();
    let decrypted = data.path().join("file.csv");
    let (enc, dec, dk) = (encrypted.clone(), decrypted.clone(), data_key.clone());
    let decrypt = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cipherstream"))
            .args(["decrypt", enc.to_str().unwrap(), dec.to_str().unwrap()])
            .env("CIPHERSTREAM_DATA_KEY", dk)
            .env("CIPHERSTREAM_LOG", "debug")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        decrypt.status.success(),
        "{}",
        String::from_utf8_lossy(&decrypt.stderr)
    );

    let mut output = std::fs::read_to_string(&log).unwrap();
    output.push_str(&String::from_utf8_lossy(&decrypt.stdout));
    output.push_str(&String::from_utf8_lossy(&decrypt.stderr));
    assert!(output.lines().count() > 20, "the debug log is not empty");
    assert!(output.contains(&job_id), "the log names the job");
    let master = std::fs::read_to_string(data.path().join("master.key")).unwrap();
    let url = url::Url::parse(done["s3_url"].as_str().unwrap()).unwrap();
    let signature = url
        .query_pairs()
        .find(|(k, _)| k == "signature")
        .unwrap()
        .1
        .to_string();
    for (what, secret) in [
        ("API key", key.as_str()),
        ("API key hash", &cipherstream::crypto::hash_api_key(&key)),
        ("data key", &data_key),
        ("webhook secret", &secret),
        ("rotated webhook secret", &new_secret),
        ("custom header value", "receiver-token-0451"),
        ("admin token", ADMIN_TOKEN),
        ("wrong admin token", "wrong-admin-token-77"),
        ("presented wrong key", wrong_key),
        ("master key", master.trim()),
        ("download URL signature", &signature),
    ] {
        assert!(!output.contains(secret), "the {what} is in the log");
    }
}

#[tokio::test]
async fn a_key_can_carry_its_own_quota_beside_its_customers() {
    let app = spawn_app(0, |_| {}).await;
    let (free_key, _) = customer(&app, "key-quota", &[]).await;
    let create = |body: Json| {
        let request = app
            .client
            .post(app.url("/admin/v1/customers/key-quota/keys"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let problem = expect_problem(
        create(serde_json::json!({"rate_limit_per_minute": 0})).await,
        400,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "rate_limit_per_minute");
    let limited: Json =
        create(serde_json::json!({"name": "batch-job", "rate_limit_per_minute": 3}))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(limited["rate_limit_per_minute"], 3);
    let limited_key = limited["api_key"].as_str().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app.get(limited_key, "/v1/jobs").await;
        assert_eq!(response.headers()["ratelimit-limit"], "3");
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let problem = expect_problem(response, 429).await;
            assert!(
                problem["detail"].as_str().unwrap().contains("key's quota"),
                "{problem}"
            );
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // The customer's other key is not held back by it.
    for _ in 0..5 {
        let response = app.get(&free_key, "/v1/jobs").await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("ratelimit-limit").is_none());
    }
}
