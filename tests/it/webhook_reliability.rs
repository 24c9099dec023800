//! Webhook reliability: retries, dead letters, circuit breaker, batching, rate limits,
//! secret rotation, the delivery log and bad input.
//!
//! Every test runs its own server (SQLite metadata unless it says otherwise, loopback
//! receivers allowed, 50 ms polling; some add dispatcher nodes on the same data
//! directory) against real receivers on loopback (`crate::receiver`), and judges the
//! product only through its HTTP API, what the receivers saw, `/metrics` and the audit
//! table. Timing assertions only check lower bounds the design guarantees (a backoff, a
//! cool-down, a rate limit, a timeout), with a small tolerance for millisecond rounding
//! of stored times and for scheduling jitter of call arrivals.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value as Json};
use sha2::Sha256;
use sqlx::Connection;

use crate::helpers::{expect_problem, practices, MetaBackend, TestApp};
use crate::receiver::{Behaviour, Call, Receiver};
use crate::webhooks::{create_webhook, spawn_app, verify_in_python, wait_job, LineChild};

/// How long any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------
// Servers, endpoints and requests
// ---------------------------------------------------------------------------------

/// A server with one customer (`acme`); returns it with the customer's API key.
async fn server(adjust: impl FnOnce(&mut cipherstream::Config)) -> (TestApp, String) {
    let app = spawn_app(1, adjust).await;
    let (key, _) = app.create_customer("acme", &practices().sqlite).await;
    (app, key)
}

/// `base` with the fields of `extra` added or replaced.
fn with(mut base: Json, extra: Json) -> Json {
    if let (Some(base), Json::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// Creates an endpoint for `url` (job.completed plus `extra`); returns (webhook_id, secret).
async fn endpoint(app: &TestApp, key: &str, url: &str, extra: Json) -> (String, String) {
    let hook = create_webhook(
        app,
        key,
        with(json!({"url": url, "events": ["job.completed"]}), extra),
    )
    .await;
    (
        hook["webhook_id"].as_str().unwrap().to_string(),
        hook["secret"].as_str().unwrap().to_string(),
    )
}

async fn request(
    app: &TestApp,
    method: Method,
    key: &str,
    path: &str,
    body: Option<&Json>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Json) -> reqwest::Response {
    request(app, Method::POST, key, path, Some(body)).await
}

async fn patch(app: &TestApp, key: &str, path: &str, body: &Json) -> reqwest::Response {
    request(app, Method::PATCH, key, path, Some(body)).await
}

/// Asserts the status and returns the JSON body.
async fn json_of(response: reqwest::Response, status: u16) -> Json {
    let code = response.status();
    let path = response.url().path().to_string();
    let text = response.text().await.unwrap();
    assert_eq!(code, status, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn get_json(app: &TestApp, key: &str, path: &str) -> Json {
    json_of(app.get(key, path).await, 200).await
}

async fn webhook(app: &TestApp, key: &str, id: &str) -> Json {
    get_json(app, key, &format!("/v1/webhooks/{id}")).await
}

async fn delivery(app: &TestApp, key: &str, id: &str) -> Json {
    get_json(app, key, &format!("/v1/webhooks/deliveries/{id}")).await
}

/// Sends a test event to the endpoint; returns the queued delivery.
async fn fire(app: &TestApp, key: &str, webhook_id: &str) -> Json {
    let path = format!("/v1/webhooks/{webhook_id}/test");
    json_of(request(app, Method::POST, key, &path, None).await, 202).await
}

async fn fire_id(app: &TestApp, key: &str, webhook_id: &str) -> String {
    fire(app, key, webhook_id).await["delivery_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs a small extraction to completion; returns its job id.
async fn run_job(app: &TestApp, key: &str) -> String {
    let job = json_of(
        post(
            app,
            key,
            "/v1/jobs",
            &json!({"procedure": "payment_types", "format": "csv"}),
        )
        .await,
        202,
    )
    .await;
    let id = job["job_id"].as_str().unwrap().to_string();
    assert_eq!(wait_job(app, key, &id).await["status"], "completed");
    id
}

/// Another node on the same data directory (so the same metadata database and master
/// key) with its own dispatcher; it stops when the guard is dropped.
async fn another_node(
    app: &TestApp,
    adjust: impl FnOnce(&mut cipherstream::Config),
) -> tokio_util::sync::DropGuard {
    let mut config = cipherstream::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: app.data_dir.clone(),
        job_workers: 0,
        webhook_allow_loopback: true,
        webhook_poll_interval_ms: 50,
        ..cipherstream::Config::default()
    };
    adjust(&mut config);
    let node = cipherstream::Application::build(config).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(node.run(shutdown.clone()));
    shutdown.drop_guard()
}

/// `POST /v1/webhooks/deliveries/{id}/retry`.
async fn retry(app: &TestApp, key: &str, delivery_id: &str) -> reqwest::Response {
    let path = format!("/v1/webhooks/deliveries/{delivery_id}/retry");
    request(app, Method::POST, key, &path, None).await
}

/// The `field` of every error of a problem.
fn fields(problem: &Json) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

/// The delivery ids of a list answer.
fn ids(list: &Json) -> Vec<String> {
    list["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap().to_string())
        .collect()
}

/// The delivery ids inside a batch call.
fn batch_ids(call: &Call) -> Vec<String> {
    call.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["delivery_id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------

/// Polls `GET path` until `done` holds for its JSON; returns that JSON.
async fn wait_json(
    app: &TestApp,
    key: &str,
    path: &str,
    what: &str,
    done: impl Fn(&Json) -> bool,
) -> Json {
    let deadline = Instant::now() + WAIT;
    loop {
        let current = get_json(app, key, path).await;
        if done(&current) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}; last seen: {current:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_delivery(app: &TestApp, key: &str, id: &str, status: &str) -> Json {
    let path = format!("/v1/webhooks/deliveries/{id}");
    wait_json(app, key, &path, &format!("{id} to be {status}"), |d| {
        d["status"] == status
    })
    .await
}

async fn wait_circuit(app: &TestApp, key: &str, id: &str, state: &str) -> Json {
    let path = format!("/v1/webhooks/{id}");
    wait_json(app, key, &path, &format!("circuit {state}"), |w| {
        w["circuit"]["state"] == state
    })
    .await
}

/// Waits `period`, then asserts the receiver still has exactly `expected` calls.
async fn quiet(receiver: &Receiver, expected: usize, period: Duration, why: &str) {
    tokio::time::sleep(period).await;
    assert_eq!(receiver.calls().len(), expected, "{why}");
}

/// Sleeps until `period` after `since`.
async fn sleep_until(since: Instant, period: Duration) {
    tokio::time::sleep_until((since + period).into()).await;
}

/// Seconds between two calls.
fn gap(from: &Call, to: &Call) -> f64 {
    to.at.duration_since(from.at).as_secs_f64()
}

fn parse_time(text: &Json) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap_or_else(|| panic!("{text}")))
        .unwrap()
        .with_timezone(&chrono::Utc)
}

// ---------------------------------------------------------------------------------
// Signatures, audit, metrics
// ---------------------------------------------------------------------------------

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `X-CipherStream-Signature` for one secret, as the documentation computes it.
fn documented_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    )
}

/// `webhook-signature` for one secret, as the Standard Webhooks specification computes it.
fn standard_signature(secret: &str, call: &Call) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let id = call.header("webhook-id");
    let ts = call.header("webhook-timestamp");
    let mac = hmac_sha256(
        &key,
        &[id.as_bytes(), b".", ts.as_bytes(), b".", &call.body],
    );
    format!("v1,{}", STANDARD.encode(mac))
}

/// The call with `X-CipherStream-Signature` replaced by `value`.
fn with_signature(call: &Call, value: &str) -> Call {
    let mut copy = call.clone();
    copy.headers
        .insert("x-cipherstream-signature", value.parse().unwrap());
    copy
}

/// A secret of 32 bytes of `byte`.
fn chosen_secret(byte: u8) -> String {
    format!("whsec_{}", STANDARD.encode([byte; 32]))
}

/// (customer_id, detail) of every audit entry with this action.
async fn audit_entries(app: &TestApp, action: &str) -> Vec<(Option<String>, Json)> {
    let url = format!("sqlite://{}", app.data_dir.join("metadata.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .await
        .unwrap();
    let rows: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT customer_id, detail FROM audit_entries WHERE action = ? ORDER BY created_at",
    )
    .bind(action)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(customer, detail)| (customer, serde_json::from_str(&detail).unwrap()))
        .collect()
}

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The sum of the samples of `name` carrying every one of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = metric == name
                && labels.iter().all(|(k, v)| {
                    label_text
                        .split(',')
                        .any(|pair| pair == format!("{k}=\"{v}\""))
                });
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

// ---------------------------------------------------------------------------------
// Retries and the dead-letter list
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_receiver_gets_every_attempt_with_growing_backoff_then_the_dead_letter_list() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, secret) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 2, "backoff_seconds": 1}, "headers": {"X-Team": "data"}}),
    )
    .await;

    let queued = fire(&app, &key, &id).await;
    assert_eq!(queued["status"], "pending");
    assert_eq!(queued["attempts"], 0);
    assert_eq!(queued["max_attempts"], 3);
    assert_eq!(queued["test"], true);
    assert_eq!(queued["webhook_id"], id.as_str());
    let did = queued["delivery_id"].as_str().unwrap().to_string();

    let dead = wait_delivery(&app, &key, &did, "dead").await;
    quiet(
        &receiver,
        3,
        Duration::from_millis(500),
        "no call after the delivery died",
    )
    .await;
    let calls = receiver.calls();
    let first = calls[0].json();
    for (i, call) in calls.iter().enumerate() {
        let body = call.json();
        assert_eq!(body["delivery_id"], did.as_str(), "the same delivery");
        assert_eq!(body["attempt"], i as i64 + 1, "attempt numbers count up");
        assert_eq!(body["event"], "job.completed");
        assert_eq!(body["test"], true);
        assert_eq!(body["event_id"], first["event_id"], "one event");
        assert_eq!(body["occurred_at"], first["occurred_at"]);
        assert_eq!(body["data"], first["data"], "the same data each time");
        assert_eq!(call.path, "/hooks/cipherstream");
        assert_eq!(call.header("x-cipherstream-delivery"), did);
        assert_eq!(
            call.header("x-team"),
            "data",
            "custom headers on every attempt"
        );
        let ts: i64 = call.header("x-cipherstream-timestamp").parse().unwrap();
        assert_eq!(parse_time(&body["timestamp"]).timestamp(), ts);
        assert_eq!(call.header("webhook-timestamp"), ts.to_string());
    }
    let stamp = |c: &Call| c.header("x-cipherstream-timestamp").parse::<i64>().unwrap();
    assert!(
        stamp(&calls[2]) >= stamp(&calls[0]) + 2,
        "each attempt is stamped when it is sent"
    );
    // Exponential backoff: ~1 s, then ~2 s (±20% jitter).
    let (gap1, gap2) = (gap(&calls[0], &calls[1]), gap(&calls[1], &calls[2]));
    assert!(
        gap1 >= 0.8 - 0.01,
        "first retry after {gap1:.3}s, backoff 1s"
    );
    assert!(
        gap2 >= 1.6 - 0.01,
        "second retry after {gap2:.3}s, backoff 2s"
    );
    assert!(gap2 > gap1, "the backoff grows: {gap1:.3}s then {gap2:.3}s");
    // Every attempt is signed afresh, and verifies.
    assert_eq!(
        verify_in_python(&calls, &secret).await,
        vec![(true, true); 3]
    );

    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["max_attempts"], 3);
    assert_eq!(dead["last_http_status"], 500);
    assert_eq!(dead["last_response_excerpt"], "receiver says 500");
    assert!(dead["last_error"].as_str().unwrap().contains("500"));
    assert!(dead["next_attempt_at"].is_null());
    assert!(dead["delivered_at"].is_null());
    let log = dead["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3);
    for (i, attempt) in log.iter().enumerate() {
        assert_eq!(attempt["attempt"], i as i64 + 1);
        assert_eq!(attempt["call_id"], did.as_str());
        assert_eq!(attempt["succeeded"], false);
        assert_eq!(attempt["http_status"], 500);
        assert_eq!(attempt["response_excerpt"], "receiver says 500");
        assert!(attempt["error"].as_str().unwrap().contains("HTTP 500"));
        assert!(attempt["latency_ms"].as_i64().unwrap() >= 0);
    }
    assert!(parse_time(&log[0]["started_at"]) < parse_time(&log[2]["started_at"]));
    // Three failures stay under the default threshold of five: the circuit is closed.
    let hook = webhook(&app, &key, &id).await;
    assert_eq!(hook["circuit"]["state"], "closed");
    assert_eq!(hook["circuit"]["consecutive_failures"], 3);
    assert!(hook["circuit"]["failing_since"].is_string());

    // Listed as dead, wherever dead deliveries are listed.
    let letters = get_json(&app, &key, "/v1/webhooks/dead-letter").await;
    assert_eq!(letters["total"], 1);
    assert_eq!(ids(&letters), vec![did.clone()]);
    let listed = &letters["deliveries"][0];
    assert_eq!(listed["status"], "dead");
    assert_eq!(listed["last_http_status"], 500);
    assert_eq!(listed["last_response_excerpt"], "receiver says 500");
    let filtered = get_json(
        &app,
        &key,
        &format!("/v1/webhooks/dead-letter?webhook_id={id}&event=job.completed"),
    )
    .await;
    assert_eq!(ids(&filtered), vec![did.clone()]);
    let other_event = get_json(&app, &key, "/v1/webhooks/dead-letter?event=job.failed").await;
    assert_eq!(other_event["total"], 0);
    let by_status = get_json(
        &app,
        &key,
        &format!("/v1/webhooks/{id}/deliveries?status=dead"),
    )
    .await;
    assert_eq!(ids(&by_status), vec![did.clone()]);
    assert_eq!(by_status["deliveries"][0]["last_http_status"], 500);
    let succeeded = get_json(
        &app,
        &key,
        &format!("/v1/webhooks/{id}/deliveries?status=succeeded"),
    )
    .await;
    assert_eq!(succeeded["total"], 0);

    // The receiver recovers; a manual retry is exactly one more attempt.
    receiver.set(Behaviour::Ok);
    let again = json_of(retry(&app, &key, &did).await, 202).await;
    assert_eq!(again["status"], "pending");
    assert_eq!(again["max_attempts"], 4);
    let done = wait_delivery(&app, &key, &did, "succeeded").await;
    quiet(
        &receiver,
        4,
        Duration::from_millis(500),
        "one call per retry",
    )
    .await;
    let last = receiver.calls()[3].json();
    assert_eq!(last["delivery_id"], did.as_str());
    assert_eq!(last["attempt"], 4);
    assert_eq!(done["attempts"], 4);
    assert_eq!(done["last_http_status"], 200);
    assert!(done["last_error"].is_null());
    assert!(done["delivered_at"].is_string());
    let log = done["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 4, "the log keeps every attempt");
    assert_eq!(
        log.iter()
            .map(|a| a["succeeded"] == true)
            .collect::<Vec<_>>(),
        vec![false, false, false, true]
    );
    assert_eq!(log[3]["http_status"], 200);
    let letters = get_json(&app, &key, "/v1/webhooks/dead-letter").await;
    assert_eq!(letters["total"], 0, "no longer dead");
    let hook = webhook(&app, &key, &id).await;
    assert_eq!(hook["circuit"]["consecutive_failures"], 0);
    assert!(hook["circuit"]["failing_since"].is_null());

    // A succeeded delivery may be sent once more, too.
    json_of(retry(&app, &key, &did).await, 202).await;
    let resent = wait_json(
        &app,
        &key,
        &format!("/v1/webhooks/deliveries/{did}"),
        "a fifth attempt",
        |d| d["status"] == "succeeded" && d["attempts"] == 5,
    )
    .await;
    assert_eq!(resent["attempt_log"].as_array().unwrap().len(), 5);
    assert_eq!(receiver.wait_for(5, WAIT).await[4].json()["attempt"], 5);

    // Deliveries on their way cannot be retried: 409.
    let waiting = Receiver::start().await;
    let (batched, _) = endpoint(
        &app,
        &key,
        &waiting.url,
        json!({"batch": {"max_events": 10, "max_wait_seconds": 300}}),
    )
    .await;
    let pending = fire_id(&app, &key, &batched).await;
    let problem = expect_problem(retry(&app, &key, &pending).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("pending"));
    let stuck = Receiver::start().await;
    stuck.set(Behaviour::Status(500));
    let (slow, _) = endpoint(
        &app,
        &key,
        &stuck.url,
        json!({"retry": {"max_retries": 1, "backoff_seconds": 3600}}),
    )
    .await;
    let retrying = fire_id(&app, &key, &slow).await;
    wait_delivery(&app, &key, &retrying, "retrying").await;
    let problem = expect_problem(retry(&app, &key, &retrying).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("retrying"));
    assert_eq!(delivery(&app, &key, &retrying).await["max_attempts"], 2);
    expect_problem(retry(&app, &key, "del_0_nosuchid").await, 404).await;
    assert!(waiting.calls().is_empty(), "the batch still waits");
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_fails_the_attempt() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Sleep(Duration::from_secs(3)));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"timeout_seconds": 1, "retry": {"max_retries": 0, "backoff_seconds": 1}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    receiver.wait_for(1, WAIT).await;
    // On its way: shown as sending, and not retryable.
    let sending = delivery(&app, &key, &did).await;
    assert_eq!(sending["status"], "sending", "{sending}");
    let problem = expect_problem(retry(&app, &key, &did).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("sending"));
    let dead = wait_delivery(&app, &key, &did, "dead").await;
    assert_eq!(dead["attempts"], 1, "max_retries 0: one attempt");
    assert!(dead["last_http_status"].is_null(), "no answer: {dead}");
    let error = dead["last_error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{error}");
    let log = dead["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["succeeded"], false);
    assert!(log[0]["http_status"].is_null());
    assert!(log[0]["error"].as_str().unwrap().contains("timed out"));
    let waited = log[0]["latency_ms"].as_i64().unwrap();
    assert!(waited >= 990, "gave up after {waited} ms, timeout 1 s");
    quiet(&receiver, 1, Duration::from_secs(1), "max_retries 0").await;
    assert_eq!(
        webhook(&app, &key, &id).await["circuit"]["consecutive_failures"],
        1
    );

    // An answer inside the timeout is fine, however slow.
    receiver.set(Behaviour::Sleep(Duration::from_millis(300)));
    json_of(retry(&app, &key, &did).await, 202).await;
    let done = wait_delivery(&app, &key, &did, "succeeded").await;
    assert_eq!(done["last_http_status"], 200);
    assert!(done["last_latency_ms"].as_i64().unwrap() >= 300);
}

/// The documentation: "Answer with any 2xx status within timeout_seconds (the whole
/// exchange: connecting, sending and your answer)"; "A 2xx answer within
/// timeout_seconds is a success. Anything else is a failed attempt: ... a timeout".
#[tokio::test]
async fn a_2xx_whose_body_outlasts_the_timeout_is_a_failed_attempt() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Behaviour::SlowBody(200, Duration::from_secs(3))]);
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"timeout_seconds": 1, "retry": {"max_retries": 1, "backoff_seconds": 1}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    let done = wait_delivery(&app, &key, &did, "succeeded").await;
    let first = &done["attempt_log"][0];
    assert!(
        first["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{done:#}"
    );
    assert_eq!(
        first["succeeded"], false,
        "the answer did not finish within timeout_seconds, yet the attempt counts as a \
         success (and carries the error {}): {done:#}",
        first["error"]
    );
    assert_eq!(done["attempts"], 2, "retried after the timed-out answer");
    assert_eq!(done["attempt_log"][1]["succeeded"], true);
    assert!(done["attempt_log"][1]["error"].is_null());
    assert_eq!(receiver.wait_for(2, WAIT).await[1].json()["attempt"], 2);
}

/// The other side of the timeout rule: a receiver that answers 2xx in time is a
/// success even when it ends a close-delimited body by closing the TLS connection
/// without `close_notify`, as Python's `http.server` (HTTP/1.0) over `ssl` does.
#[tokio::test]
async fn a_complete_2xx_ending_without_tls_close_notify_is_a_success() {
    let dir = tempfile::tempdir().unwrap();
    let mut https = LineChild::spawn(
        "python3",
        &[
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/https_receiver.py"
            ),
            dir.path().to_str().unwrap(),
        ],
    );
    let port = https.line(WAIT).await;
    let port = port.strip_prefix("PORT ").expect("PORT line").to_string();
    let ca = dir.path().join("ca.pem");
    let (app, key) = server(|c| c.webhook_ca_file = Some(ca)).await;
    let (id, _) = endpoint(
        &app,
        &key,
        &format!("https://localhost:{port}/tls-hook"),
        json!({"retry": {"max_retries": 0, "backoff_seconds": 1}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    let seen: Json = serde_json::from_str(&https.line(WAIT).await).unwrap();
    assert_eq!(seen["path"], "/tls-hook");
    let done = wait_json(
        &app,
        &key,
        &format!("/v1/webhooks/deliveries/{did}"),
        "the delivery to finish",
        |d| d["status"] == "succeeded" || d["status"] == "dead",
    )
    .await;
    assert_eq!(done["last_http_status"], 200);
    assert_eq!(done["last_response_excerpt"], "{\"ok\": true}");
    assert_eq!(
        done["status"], "succeeded",
        "a complete 2xx answer counted as a failure: {}",
        done["last_error"]
    );
    assert!(done["last_error"].is_null(), "{done:#}");
}

#[tokio::test]
async fn retry_after_is_honoured_as_a_minimum_delay() {
    let (app, key) = server(|_| {}).await;
    // Asks for 3 s where the backoff would be 1 s.
    let longer = Receiver::start().await;
    longer.script(vec![Behaviour::RetryAfter(503, 3)]);
    let (long_id, _) = endpoint(
        &app,
        &key,
        &longer.url,
        json!({"retry": {"max_retries": 1, "backoff_seconds": 1}}),
    )
    .await;
    // Asks for 0 s where the backoff is 2 s: the backoff stands.
    let shorter = Receiver::start().await;
    shorter.script(vec![Behaviour::RetryAfter(429, 0)]);
    let (short_id, _) = endpoint(
        &app,
        &key,
        &shorter.url,
        json!({"retry": {"max_retries": 1, "backoff_seconds": 2}}),
    )
    .await;
    // An HTTP date 4 s ahead (second precision: at least 3 s) where the backoff is 1 s.
    let dated = Receiver::start().await;
    dated.script(vec![Behaviour::RetryAt(503, 4)]);
    let (dated_id, _) = endpoint(
        &app,
        &key,
        &dated.url,
        json!({"retry": {"max_retries": 1, "backoff_seconds": 1}}),
    )
    .await;
    // Asks for more than a day: capped at one hour.
    let greedy = Receiver::start().await;
    greedy.script(vec![Behaviour::RetryAfter(503, 100_000)]);
    let (greedy_id, _) = endpoint(
        &app,
        &key,
        &greedy.url,
        json!({"retry": {"max_retries": 1, "backoff_seconds": 1}}),
    )
    .await;
    let long_delivery = fire_id(&app, &key, &long_id).await;
    let short_delivery = fire_id(&app, &key, &short_id).await;
    let dated_delivery = fire_id(&app, &key, &dated_id).await;
    let greedy_delivery = fire_id(&app, &key, &greedy_id).await;

    let capped = wait_delivery(&app, &key, &greedy_delivery, "retrying").await;
    let planned = (parse_time(&capped["next_attempt_at"])
        - parse_time(&capped["attempt_log"][0]["started_at"]))
    .as_seconds_f64();
    assert!(
        (3599.0..3660.0).contains(&planned),
        "Retry-After: 100000 planned the retry {planned:.0}s later; the cap is one hour"
    );

    let waiting = wait_delivery(&app, &key, &long_delivery, "retrying").await;
    let first = &waiting["attempt_log"][0];
    assert_eq!(first["http_status"], 503);
    assert_eq!(first["response_excerpt"], "slow down");
    let planned = (parse_time(&waiting["next_attempt_at"]) - parse_time(&first["started_at"]))
        .as_seconds_f64();
    assert!(
        planned >= 2.99,
        "next attempt planned {planned:.3}s after the first"
    );

    let long_calls = longer.wait_for(2, WAIT).await;
    let waited = gap(&long_calls[0], &long_calls[1]);
    assert!(
        waited >= 2.99,
        "Retry-After: 3 honoured? second call after {waited:.3}s"
    );
    let short_calls = shorter.wait_for(2, WAIT).await;
    let waited = gap(&short_calls[0], &short_calls[1]);
    assert!(
        waited >= 1.6 - 0.01,
        "backoff 2 s, second call after {waited:.3}s"
    );

    let dated_calls = dated.wait_for(2, WAIT).await;
    let waited = gap(&dated_calls[0], &dated_calls[1]);
    assert!(
        waited >= 2.5,
        "Retry-After as an HTTP date 4 s ahead, second call after {waited:.3}s"
    );

    for id in [&long_delivery, &short_delivery, &dated_delivery] {
        let done = wait_delivery(&app, &key, id, "succeeded").await;
        assert_eq!(done["attempts"], 2);
    }
    assert_eq!(long_calls[1].json()["attempt"], 2);
}

#[tokio::test]
async fn every_kind_of_failure_is_recorded_with_its_reason() {
    let (app, key) = server(|_| {}).await;
    let once = json!({"retry": {"max_retries": 0, "backoff_seconds": 1}});
    // A redirect is a failure and is never followed (it could lead past the address guard).
    let target = Receiver::start().await;
    let redirecting = Receiver::start().await;
    redirecting.set(Behaviour::Redirect(target.url.clone()));
    let (redirect_id, _) = endpoint(&app, &key, &redirecting.url, once.clone()).await;
    // Nobody listens.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (refused_id, _) = endpoint(
        &app,
        &key,
        &format!("http://127.0.0.1:{closed_port}/hooks"),
        once.clone(),
    )
    .await;
    // A long error page: only its first 4 KiB are kept.
    let chatty = Receiver::start().await;
    chatty.set(Behaviour::Body(500, "x".repeat(10_000)));
    let (chatty_id, _) = endpoint(&app, &key, &chatty.url, once.clone()).await;
    // A 4xx is a failure like any other.
    let gone = Receiver::start().await;
    gone.set(Behaviour::Status(410));
    let (gone_id, _) = endpoint(&app, &key, &gone.url, once).await;

    let redirected = fire_id(&app, &key, &redirect_id).await;
    let refused = fire_id(&app, &key, &refused_id).await;
    let truncated = fire_id(&app, &key, &chatty_id).await;
    let rejected = fire_id(&app, &key, &gone_id).await;

    let d = wait_delivery(&app, &key, &redirected, "dead").await;
    assert_eq!(d["last_http_status"], 302);
    assert_eq!(d["last_response_excerpt"], "moved");
    let d = wait_delivery(&app, &key, &refused, "dead").await;
    assert!(d["last_http_status"].is_null());
    let error = d["last_error"].as_str().unwrap();
    assert!(error.contains("connect"), "{error}");
    let d = wait_delivery(&app, &key, &truncated, "dead").await;
    assert_eq!(d["last_http_status"], 500);
    let excerpt = d["last_response_excerpt"].as_str().unwrap();
    assert_eq!(excerpt.len(), 4096);
    assert!(excerpt.bytes().all(|b| b == b'x'));
    assert_eq!(
        d["attempt_log"][0]["response_excerpt"]
            .as_str()
            .unwrap()
            .len(),
        4096
    );
    let d = wait_delivery(&app, &key, &rejected, "dead").await;
    assert_eq!(d["last_http_status"], 410);
    assert!(d["last_error"].as_str().unwrap().contains("410"));

    assert_eq!(redirecting.calls().len(), 1);
    quiet(
        &target,
        0,
        Duration::from_millis(300),
        "the redirect was followed",
    )
    .await;
    let letters = get_json(&app, &key, "/v1/webhooks/dead-letter").await;
    assert_eq!(letters["total"], 4);
}

/// "The first 4 KiB of the last answer's body": a prefix of what the receiver said,
/// even when 4096 bytes end inside a multi-byte character.
#[tokio::test]
async fn the_response_excerpt_is_a_prefix_of_the_answer() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    // "€" is 3 bytes: 4096 bytes end inside the 1366th.
    let answer = "\u{20ac}".repeat(2000);
    receiver.set(Behaviour::Body(500, answer.clone()));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 0, "backoff_seconds": 1}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    let dead = wait_delivery(&app, &key, &did, "dead").await;
    let excerpt = dead["last_response_excerpt"].as_str().unwrap();
    assert!(
        answer.starts_with(excerpt),
        "the excerpt is not a prefix of the answer; it ends with {:?}",
        excerpt.chars().last()
    );
    assert!(excerpt.len() <= 4096, "{} bytes", excerpt.len());
    assert!(excerpt.len() >= 4093, "{} bytes", excerpt.len());
}

// ---------------------------------------------------------------------------------
// The circuit breaker
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_open_circuit_holds_deliveries_then_one_probe_closes_it() {
    let (app, key) = server(|c| {
        c.webhook_circuit_failure_threshold = 2;
        c.webhook_circuit_cooldown_seconds = 2;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 5, "backoff_seconds": 1}}),
    )
    .await;
    let d1 = fire_id(&app, &key, &id).await;
    receiver.wait_for(1, WAIT).await;
    let d2 = fire_id(&app, &key, &id).await;
    let calls = receiver.wait_for(2, WAIT).await;
    let opened_by = calls[1].clone();

    let hook = wait_circuit(&app, &key, &id, "open").await;
    assert_eq!(hook["circuit"]["consecutive_failures"], 2);
    assert!(hook["circuit"]["failing_since"].is_string());
    let retry_at = parse_time(&hook["circuit"]["retry_at"]);
    let cooldown = (retry_at - opened_by.wall).as_seconds_f64();
    assert!(cooldown >= 1.9, "retry_at {cooldown:.3}s after the failure");
    assert_eq!(hook["enabled"], true);
    let stats = get_json(&app, &key, &format!("/v1/webhooks/{id}/stats")).await;
    assert_eq!(stats["circuit"]["state"], "open");

    // Events keep coming while it is open; they wait.
    let d3 = fire_id(&app, &key, &id).await;
    let d4 = fire_id(&app, &key, &id).await;
    sleep_until(opened_by.at, Duration::from_millis(1700)).await;
    assert_eq!(
        receiver.calls().len(),
        2,
        "a call went out while the circuit was open"
    );
    let mut earliest_due: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
    for (d, status, attempts) in [
        (&d1, "retrying", 1),
        (&d2, "retrying", 1),
        (&d3, "pending", 0),
        (&d4, "pending", 0),
    ] {
        let current = delivery(&app, &key, d).await;
        assert_eq!(current["status"], status, "{d}");
        assert_eq!(
            current["attempts"], attempts,
            "attempts burnt while open: {d}"
        );
        let due = parse_time(&current["next_attempt_at"]);
        if earliest_due.as_ref().is_none_or(|(at, _)| due < *at) {
            earliest_due = Some((due, d.clone()));
        }
    }

    // The receiver recovers, slowly: the probe is the only call until it answers.
    receiver.set(Behaviour::Sleep(Duration::from_secs(1)));
    let calls = receiver.wait_for(3, WAIT).await;
    let probe = calls[2].clone();
    let waited = gap(&opened_by, &probe);
    assert!(
        waited >= 1.99,
        "probe {waited:.3}s after opening, cool-down 2 s"
    );
    assert!(probe.wall >= retry_at - chrono::Duration::milliseconds(5));
    let during = webhook(&app, &key, &id).await;
    assert_eq!(during["circuit"]["state"], "half_open", "{during}");
    assert_eq!(
        probe.json()["delivery_id"].as_str().unwrap(),
        earliest_due.unwrap().1,
        "the probe carries the earliest due delivery"
    );

    for d in [&d1, &d2, &d3, &d4] {
        wait_delivery(&app, &key, d, "succeeded").await;
    }
    quiet(
        &receiver,
        6,
        Duration::from_millis(300),
        "one more call per delivery",
    )
    .await;
    let calls = receiver.calls();
    for call in &calls[3..] {
        let after = gap(&probe, call);
        assert!(
            after >= 0.99,
            "a call {after:.3}s after the probe, before it answered"
        );
    }
    let delivered: Vec<String> = calls[2..]
        .iter()
        .map(|c| c.json()["delivery_id"].as_str().unwrap().to_string())
        .collect();
    for d in [&d1, &d2, &d3, &d4] {
        assert_eq!(delivered.iter().filter(|x| x == &d).count(), 1, "{d}");
    }
    for (d, attempts) in [(&d1, 2), (&d2, 2), (&d3, 1), (&d4, 1)] {
        assert_eq!(delivery(&app, &key, d).await["attempts"], attempts, "{d}");
    }
    let hook = webhook(&app, &key, &id).await;
    assert_eq!(hook["circuit"]["state"], "closed");
    assert_eq!(hook["circuit"]["consecutive_failures"], 0);
    assert!(hook["circuit"]["retry_at"].is_null());
    assert!(hook["circuit"]["failing_since"].is_null());
}

#[tokio::test]
async fn a_failed_probe_reopens_the_circuit_for_another_cool_down() {
    let (app, key) = server(|c| {
        c.webhook_circuit_failure_threshold = 2;
        c.webhook_circuit_cooldown_seconds = 2;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 8, "backoff_seconds": 1}}),
    )
    .await;
    let d1 = fire_id(&app, &key, &id).await;
    receiver.wait_for(1, WAIT).await;
    let d2 = fire_id(&app, &key, &id).await;
    receiver.wait_for(2, WAIT).await;
    let first_open = wait_circuit(&app, &key, &id, "open").await;
    let first_retry_at = parse_time(&first_open["circuit"]["retry_at"]);

    // The probe fails: open again, with a new cool-down from then.
    let calls = receiver.wait_for(3, WAIT).await;
    let probe = calls[2].clone();
    assert!(gap(&calls[1], &probe) >= 1.99);
    let reopened = wait_json(
        &app,
        &key,
        &format!("/v1/webhooks/{id}"),
        "the failed probe to be recorded",
        |w| w["circuit"]["consecutive_failures"] == 3,
    )
    .await;
    assert_eq!(reopened["circuit"]["state"], "open");
    let second_retry_at = parse_time(&reopened["circuit"]["retry_at"]);
    assert!(second_retry_at > first_retry_at);
    assert!((second_retry_at - probe.wall).as_seconds_f64() >= 1.9);

    sleep_until(probe.at, Duration::from_millis(1700)).await;
    assert_eq!(
        receiver.calls().len(),
        3,
        "only the probe during the second cool-down"
    );
    receiver.set(Behaviour::Ok);
    let calls = receiver.wait_for(4, WAIT).await;
    let second_probe = &calls[3];
    assert!(gap(&probe, second_probe) >= 1.99);
    for d in [&d1, &d2] {
        wait_delivery(&app, &key, d, "succeeded").await;
    }
    assert_eq!(
        wait_circuit(&app, &key, &id, "closed").await["circuit"]["consecutive_failures"],
        0
    );
    // Every call was a real attempt of a delivery: nothing was lost or doubled.
    let mut attempts = 0;
    for d in [&d1, &d2] {
        attempts += delivery(&app, &key, d).await["attempts"].as_i64().unwrap();
    }
    assert_eq!(attempts as usize, receiver.calls().len());
}

// ---------------------------------------------------------------------------------
// Batching, rate limits and concurrency
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn batching_endpoints_get_one_signed_call_per_batch() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, secret) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"batch": {"max_events": 5, "max_wait_seconds": 2}}),
    )
    .await;
    let started = Instant::now();
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(fire_id(&app, &key, &id).await);
    }
    let calls = receiver.wait_for(1, WAIT).await;
    let waited = calls[0].at.duration_since(started).as_secs_f64();
    assert!(
        waited >= 1.99,
        "the batch went after {waited:.3}s, max_wait 2 s"
    );
    for d in &sent {
        wait_delivery(&app, &key, d, "succeeded").await;
    }
    quiet(
        &receiver,
        1,
        Duration::from_millis(300),
        "three events, one call",
    )
    .await;
    let call = &receiver.calls()[0];
    let body = call.json();
    assert_eq!(body["event"], "batch");
    assert_eq!(body["attempt"], 1);
    let batch_id = body["delivery_id"].as_str().unwrap().to_string();
    assert!(batch_id.starts_with("bat_"), "{batch_id}");
    assert_eq!(call.header("x-cipherstream-event"), "batch");
    assert_eq!(call.header("x-cipherstream-delivery"), batch_id);
    assert_eq!(call.header("webhook-id"), batch_id);
    let mut inside = batch_ids(call);
    inside.sort();
    inside.dedup();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(inside, expected, "three distinct deliveries");
    for event in body["events"].as_array().unwrap() {
        assert_eq!(event["event"], "job.completed");
        assert_eq!(event["attempt"], 1);
        assert_eq!(event["test"], true);
        assert!(event["data"]["job_id"].is_string());
    }
    for d in &sent {
        let log = delivery(&app, &key, d).await["attempt_log"].clone();
        assert_eq!(log.as_array().unwrap().len(), 1);
        assert_eq!(log[0]["call_id"], batch_id.as_str());
    }
    let stats = get_json(&app, &key, &format!("/v1/webhooks/{id}/stats")).await;
    assert_eq!(stats["calls"]["attempts"], 1, "one call: {stats}");
    assert_eq!(stats["deliveries"]["succeeded"], 3);

    // A full batch goes at once, without waiting for max_wait.
    let full = Receiver::start().await;
    let (full_id, full_secret) = endpoint(
        &app,
        &key,
        &full.url,
        json!({"batch": {"max_events": 5, "max_wait_seconds": 120}}),
    )
    .await;
    let mut five = Vec::new();
    for _ in 0..5 {
        five.push(fire_id(&app, &key, &full_id).await);
    }
    let full_calls = full.wait_for(1, WAIT).await;
    let mut inside = batch_ids(&full_calls[0]);
    inside.sort();
    five.sort();
    assert_eq!(inside, five);
    // A sixth waits for company.
    let sixth = fire_id(&app, &key, &full_id).await;
    quiet(
        &full,
        1,
        Duration::from_secs(1),
        "a lone event waits up to max_wait",
    )
    .await;
    assert_eq!(delivery(&app, &key, &sixth).await["status"], "pending");

    assert_eq!(
        verify_in_python(&receiver.calls(), &secret).await,
        vec![(true, true)]
    );
    assert_eq!(
        verify_in_python(&full_calls, &full_secret).await,
        vec![(true, true)]
    );
}

#[tokio::test]
async fn a_failed_batch_is_retried_with_every_event_and_the_next_attempt_number() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Behaviour::Status(503)]);
    let (id, secret) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"batch": {"max_events": 5, "max_wait_seconds": 1},
               "retry": {"max_retries": 2, "backoff_seconds": 2}}),
    )
    .await;
    let sent = vec![
        fire_id(&app, &key, &id).await,
        fire_id(&app, &key, &id).await,
    ];
    // One failed call, however many events it carried.
    receiver.wait_for(1, WAIT).await;
    let failed = wait_json(
        &app,
        &key,
        &format!("/v1/webhooks/{id}"),
        "the failed batch to be recorded",
        |w| w["circuit"]["consecutive_failures"] != 0,
    )
    .await;
    assert_eq!(failed["circuit"]["consecutive_failures"], 1, "{failed}");
    let stats = get_json(&app, &key, &format!("/v1/webhooks/{id}/stats")).await;
    assert_eq!(stats["calls"]["attempts"], 1);
    assert_eq!(stats["calls"]["failed"], 1);
    assert_eq!(stats["deliveries"]["retrying"], 2);
    for d in &sent {
        let done = wait_delivery(&app, &key, d, "succeeded").await;
        assert_eq!(done["attempts"], 2, "{d}");
        let log = done["attempt_log"].as_array().unwrap();
        assert_eq!(log[0]["http_status"], 503);
        assert!(log[0]["call_id"].as_str().unwrap().starts_with("bat_"));
        assert_eq!(log[1]["succeeded"], true);
    }
    let calls = receiver.calls();
    let mut first = batch_ids(&calls[0]);
    first.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(first, expected, "both events in the first batch");
    // The retries may go together or apart (each has its own jitter), but each event
    // goes exactly once more, in a batch envelope with attempt 2.
    let mut retried = Vec::new();
    let first_batch = calls[0].json()["delivery_id"].clone();
    for call in &calls[1..] {
        let body = call.json();
        assert_eq!(body["event"], "batch");
        assert_eq!(body["attempt"], 2);
        assert_ne!(body["delivery_id"], first_batch, "a retry is a new batch");
        for event in body["events"].as_array().unwrap() {
            assert_eq!(event["attempt"], 2);
        }
        retried.extend(batch_ids(call));
    }
    retried.sort();
    assert_eq!(retried, expected);
    assert!(gap(&calls[0], &calls[1]) >= 1.6 - 0.01);
    let verified = verify_in_python(&calls, &secret).await;
    assert!(verified.iter().all(|v| *v == (true, true)), "{verified:?}");
}

#[tokio::test]
async fn a_retry_takes_waiting_events_along_and_the_envelope_shows_the_highest_attempt() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Behaviour::Status(500)]);
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"batch": {"max_events": 5, "max_wait_seconds": 1},
               "retry": {"max_retries": 2, "backoff_seconds": 1}}),
    )
    .await;
    let retried = fire_id(&app, &key, &id).await;
    receiver.wait_for(1, WAIT).await;
    wait_delivery(&app, &key, &retried, "retrying").await;
    // A newcomer that would wait 30 s for company joins the retry instead.
    json_of(
        patch(
            &app,
            &key,
            &format!("/v1/webhooks/{id}"),
            &json!({"batch": {"max_wait_seconds": 30}}),
        )
        .await,
        200,
    )
    .await;
    let newcomer = fire_id(&app, &key, &id).await;
    let calls = receiver.wait_for(2, WAIT).await;
    let body = calls[1].json();
    assert_eq!(
        body["attempt"], 2,
        "the highest attempt among the items: {body}"
    );
    let attempts: std::collections::BTreeMap<String, i64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["delivery_id"].as_str().unwrap().to_string(),
                e["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [(retried.clone(), 2), (newcomer.clone(), 1)]
            .into_iter()
            .collect()
    );
    for d in [&retried, &newcomer] {
        wait_delivery(&app, &key, d, "succeeded").await;
    }
}

#[tokio::test]
async fn a_rate_limited_endpoint_gets_its_calls_spaced_out() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        // A test event goes whatever the endpoint subscribes to.
        json!({"rate_limit_per_second": 2, "events": ["system.maintenance"]}),
    )
    .await;
    let mut sent = Vec::new();
    for _ in 0..6 {
        sent.push(fire_id(&app, &key, &id).await);
    }
    let calls = receiver.wait_for(6, WAIT).await;
    for pair in calls.windows(2) {
        let g = gap(&pair[0], &pair[1]);
        assert!(g >= 0.4, "two calls {g:.3}s apart at 2 per second");
    }
    let span = gap(&calls[0], &calls[5]);
    assert!(span >= 2.4, "six calls in {span:.3}s at 2 per second");
    for d in &sent {
        let done = wait_delivery(&app, &key, d, "succeeded").await;
        assert_eq!(
            done["attempts"], 1,
            "waiting for the rate limit used an attempt"
        );
    }
    quiet(&receiver, 6, Duration::from_millis(300), "each event once").await;
    assert!(calls.iter().all(|c| c.json()["event"] == "job.completed"));
}

#[tokio::test]
async fn the_concurrency_setting_bounds_calls_in_flight() {
    let (app, key) = server(|c| c.webhook_concurrency = 1).await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Sleep(Duration::from_millis(400)));
    let (id, _) = endpoint(&app, &key, &receiver.url, json!({})).await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(fire_id(&app, &key, &id).await);
    }
    for d in &sent {
        wait_delivery(&app, &key, d, "succeeded").await;
    }
    assert_eq!(receiver.calls().len(), 3);
    assert_eq!(receiver.max_in_flight(), 1, "webhook_concurrency 1");

    // By default a slow receiver does not hold up the next delivery.
    let (app, key) = server(|_| {}).await;
    let parallel = Receiver::start().await;
    parallel.set(Behaviour::Sleep(Duration::from_millis(1500)));
    let (id, _) = endpoint(&app, &key, &parallel.url, json!({})).await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(fire_id(&app, &key, &id).await);
    }
    for d in &sent {
        wait_delivery(&app, &key, d, "succeeded").await;
    }
    assert!(
        parallel.max_in_flight() >= 2,
        "{}",
        parallel.max_in_flight()
    );
}

// ---------------------------------------------------------------------------------
// Disabling, deleting, recovering
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_until_re_enabled() {
    let (app, key) = server(|c| c.webhook_disable_after_seconds = 1).await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 10, "backoff_seconds": 1}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    let disabled = wait_json(
        &app,
        &key,
        &format!("/v1/webhooks/{id}"),
        "the endpoint to be disabled",
        |w| w["enabled"] == false,
    )
    .await;
    let reason = disabled["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("disabled automatically"), "{reason}");
    assert!(
        reason.contains("enabled"),
        "says how to re-enable: {reason}"
    );
    let calls = receiver.calls();
    assert!(calls.len() >= 2, "disabled after the first failure");
    assert!(
        gap(&calls[0], calls.last().unwrap()) >= 0.79,
        "failing for 1 s first"
    );
    let entries = audit_entries(&app, "webhook.disabled").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0.as_deref(), Some("acme"));
    assert_eq!(entries[0].1["webhook_id"], id.as_str());
    let listed = get_json(&app, &key, "/v1/webhooks").await;
    assert_eq!(listed["webhooks"][0]["enabled"], false);
    assert_eq!(
        get_json(&app, &key, &format!("/v1/webhooks/{id}/stats")).await["enabled"],
        false
    );

    // Nothing more goes out, not even when the next retry is due; the delivery waits
    // without burning attempts.
    let seen = calls.len();
    let planned = wait_delivery(&app, &key, &did, "retrying").await;
    let due = parse_time(&planned["next_attempt_at"]) - chrono::Utc::now();
    let period = due.to_std().unwrap_or_default() + Duration::from_millis(600);
    quiet(&receiver, seen, period, "a call to a disabled endpoint").await;
    let waiting = delivery(&app, &key, &did).await;
    assert_eq!(waiting["status"], "retrying");
    assert_eq!(waiting["attempts"], seen as i64);
    let problem = expect_problem(
        request(
            &app,
            Method::POST,
            &key,
            &format!("/v1/webhooks/{id}/test"),
            None,
        )
        .await,
        409,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("disabled"));

    receiver.set(Behaviour::Ok);
    let enabled = json_of(
        patch(
            &app,
            &key,
            &format!("/v1/webhooks/{id}"),
            &json!({"enabled": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(enabled["enabled"], true);
    assert!(enabled["disabled_reason"].is_null());
    assert_eq!(enabled["circuit"]["state"], "closed");
    assert_eq!(enabled["circuit"]["consecutive_failures"], 0);
    assert!(enabled["circuit"]["failing_since"].is_null());
    let done = wait_delivery(&app, &key, &did, "succeeded").await;
    assert_eq!(done["attempts"], seen as i64 + 1);
    fire_id(&app, &key, &id).await;
    receiver.wait_for(seen + 2, WAIT).await;
    assert_eq!(audit_entries(&app, "webhook.disabled").await.len(), 1);
}

#[tokio::test]
async fn a_customer_disabled_endpoint_holds_its_deliveries() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 3, "backoff_seconds": 1}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    receiver.wait_for(1, WAIT).await;
    let off = json_of(
        patch(
            &app,
            &key,
            &format!("/v1/webhooks/{id}"),
            &json!({"enabled": false}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(off["enabled"], false);
    assert_eq!(off["disabled_reason"], "disabled by the customer");
    receiver.set(Behaviour::Ok);
    // A job completing meanwhile is not queued for the disabled endpoint.
    let job = run_job(&app, &key).await;
    quiet(
        &receiver,
        1,
        Duration::from_secs(2),
        "a call to a disabled endpoint",
    )
    .await;
    assert_eq!(delivery(&app, &key, &did).await["status"], "retrying");
    let log = get_json(&app, &key, &format!("/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(ids(&log), vec![did.clone()], "queued while disabled");
    json_of(
        patch(
            &app,
            &key,
            &format!("/v1/webhooks/{id}"),
            &json!({"enabled": true}),
        )
        .await,
        200,
    )
    .await;
    let done = wait_delivery(&app, &key, &did, "succeeded").await;
    assert_eq!(done["attempts"], 2);
    // Enabled again, the next job's event is queued and sent (the previous one is not).
    let next_job = run_job(&app, &key).await;
    let calls = receiver.wait_for(3, WAIT).await;
    let event = calls[2].json();
    assert_eq!(event["event"], "job.completed");
    assert_eq!(event["data"]["job_id"], next_job.as_str());
    quiet(
        &receiver,
        3,
        Duration::from_millis(500),
        "the event of the disabled time",
    )
    .await;
    assert!(calls
        .iter()
        .all(|c| c.json()["data"]["job_id"] != job.as_str()));
}

#[tokio::test]
async fn deleting_an_endpoint_stops_its_retries() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 5, "backoff_seconds": 1}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    wait_delivery(&app, &key, &did, "retrying").await;
    let response = request(
        &app,
        Method::DELETE,
        &key,
        &format!("/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    quiet(
        &receiver,
        1,
        Duration::from_millis(2500),
        "a retry after deletion",
    )
    .await;
    expect_problem(
        app.get(&key, &format!("/v1/webhooks/deliveries/{did}"))
            .await,
        404,
    )
    .await;
    expect_problem(app.get(&key, &format!("/v1/webhooks/{id}")).await, 404).await;
    assert_eq!(
        get_json(&app, &key, "/v1/webhooks/dead-letter").await["total"],
        0
    );

    // Deleted while a call is in flight: the answer is dropped and the dispatcher
    // carries on with other endpoints.
    let slow = Receiver::start().await;
    slow.set(Behaviour::Sleep(Duration::from_millis(800)));
    let (slow_id, _) = endpoint(&app, &key, &slow.url, json!({})).await;
    fire_id(&app, &key, &slow_id).await;
    slow.wait_for(1, WAIT).await;
    let response = request(
        &app,
        Method::DELETE,
        &key,
        &format!("/v1/webhooks/{slow_id}"),
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let next = Receiver::start().await;
    let (next_id, _) = endpoint(&app, &key, &next.url, json!({})).await;
    let d = fire_id(&app, &key, &next_id).await;
    wait_delivery(&app, &key, &d, "succeeded").await;
    assert_eq!(slow.calls().len(), 1);
    assert_eq!(get_json(&app, &key, "/v1/webhooks").await["total"], 1);
}

#[tokio::test]
async fn a_retry_goes_with_the_endpoints_current_url_headers_and_secret() {
    let (app, key) = server(|_| {}).await;
    let old_receiver = Receiver::start().await;
    old_receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &old_receiver.url,
        json!({"retry": {"max_retries": 2, "backoff_seconds": 1}, "headers": {"X-Route": "old"}}),
    )
    .await;
    let did = fire_id(&app, &key, &id).await;
    old_receiver.wait_for(1, WAIT).await;
    let new_receiver = Receiver::start().await;
    json_of(
        patch(
            &app,
            &key,
            &format!("/v1/webhooks/{id}"),
            &json!({"url": new_receiver.url, "headers": {"X-Route": "new"}}),
        )
        .await,
        200,
    )
    .await;
    let rotated = json_of(
        post(
            &app,
            &key,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &json!({"grace_period_seconds": 0}),
        )
        .await,
        200,
    )
    .await;
    let secret = rotated["secret"].as_str().unwrap().to_string();
    let done = wait_delivery(&app, &key, &did, "succeeded").await;
    assert_eq!(done["attempts"], 2);
    let calls = new_receiver.wait_for(1, WAIT).await;
    assert_eq!(
        old_receiver.calls().len(),
        1,
        "the retry went to the old URL"
    );
    assert_eq!(calls[0].json()["delivery_id"], did.as_str());
    assert_eq!(calls[0].json()["attempt"], 2);
    assert_eq!(calls[0].header("x-route"), "new");
    assert_eq!(verify_in_python(&calls, &secret).await, vec![(true, true)]);
}

#[tokio::test]
async fn recover_resends_the_dead_deliveries_of_a_time_window() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 0, "backoff_seconds": 1}}),
    )
    .await;
    let recover_path = format!("/v1/webhooks/{id}/recover");
    let before_window = fire_id(&app, &key, &id).await;
    wait_delivery(&app, &key, &before_window, "dead").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut dead = Vec::new();
    for _ in 0..3 {
        dead.push(fire_id(&app, &key, &id).await);
    }
    for d in &dead {
        wait_delivery(&app, &key, d, "dead").await;
    }
    receiver.set(Behaviour::Ok);
    let fine = fire_id(&app, &key, &id).await;
    wait_delivery(&app, &key, &fine, "succeeded").await;
    assert_eq!(receiver.calls().len(), 5);
    let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    // Bad windows are refused, naming the field.
    for (body, field) in [
        (json!({"since": "yesterday"}), "since"),
        (json!({"since": 1_700_000_000}), "since"),
        (json!({}), "since"),
        (json!({"since": since_text, "until": "later"}), "until"),
        (
            json!({"since": since_text, "until": "2000-01-01T00:00:00Z"}),
            "until",
        ),
        (json!({"since": since_text, "colour": "red"}), "colour"),
    ] {
        let problem = expect_problem(post(&app, &key, &recover_path, &body).await, 400).await;
        assert!(
            fields(&problem).contains(&field.to_string()),
            "{body}: {problem}"
        );
    }
    let not_json = app
        .client
        .post(app.url(&recover_path))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("since=yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(fields(&expect_problem(not_json, 400).await), vec!["body"]);
    // A window before the dead ones holds none.
    let earlier = (since - chrono::Duration::seconds(3600))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let none = json_of(
        post(
            &app,
            &key,
            &recover_path,
            &json!({"since": earlier, "until": earlier}),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(none["requeued"], 0);
    quiet(
        &receiver,
        5,
        Duration::from_millis(300),
        "nothing was requeued",
    )
    .await;

    let recovered = json_of(
        post(&app, &key, &recover_path, &json!({"since": since_text})).await,
        202,
    )
    .await;
    assert_eq!(recovered["requeued"], 3);
    for d in &dead {
        let done = wait_delivery(&app, &key, d, "succeeded").await;
        assert_eq!(done["attempts"], 2);
        assert_eq!(done["attempt_log"].as_array().unwrap().len(), 2);
    }
    quiet(
        &receiver,
        8,
        Duration::from_millis(500),
        "exactly the three dead ones",
    )
    .await;
    let mut resent: Vec<String> = receiver.calls()[5..]
        .iter()
        .map(|c| {
            assert_eq!(c.json()["attempt"], 2);
            c.json()["delivery_id"].as_str().unwrap().to_string()
        })
        .collect();
    resent.sort();
    dead.sort();
    assert_eq!(resent, dead);
    assert_eq!(delivery(&app, &key, &before_window).await["status"], "dead");
    assert_eq!(delivery(&app, &key, &fine).await["attempts"], 1);
    let again = json_of(
        post(&app, &key, &recover_path, &json!({"since": since_text})).await,
        202,
    )
    .await;
    assert_eq!(again["requeued"], 0, "nothing dead is left in the window");
    let audited = audit_entries(&app, "webhook.recover").await;
    assert!(
        audited.iter().any(|(_, d)| d["requeued"] == 3),
        "{audited:?}"
    );
}

// ---------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn rotated_secrets_sign_side_by_side_during_the_grace_period() {
    let (app, key) = server(|c| c.webhook_secret_grace_seconds = 120).await;
    let receiver = Receiver::start().await;
    let old = chosen_secret(1);
    let (id, secret) = endpoint(&app, &key, &receiver.url, json!({"secret": old})).await;
    assert_eq!(secret, old, "a chosen secret is kept");
    let rotate_path = format!("/v1/webhooks/{id}/rotate-secret");

    fire_id(&app, &key, &id).await;
    let calls = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        calls[0].header("x-cipherstream-signature"),
        documented_signature(&old, &calls[0].body)
    );
    assert_eq!(verify_in_python(&calls, &old).await, vec![(true, true)]);

    // Rotate with a grace period: both secrets sign, the new one first.
    let rotated = json_of(
        post(
            &app,
            &key,
            &rotate_path,
            &json!({"grace_period_seconds": 3600}),
        )
        .await,
        200,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert!(new.starts_with("whsec_") && new != old);
    let ends = parse_time(&rotated["secret_rotation_ends_at"]);
    let grace = (ends - chrono::Utc::now()).num_seconds();
    assert!((3500..=3600).contains(&grace), "grace ends in {grace}s");
    let shown = webhook(&app, &key, &id).await;
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown only once"
    );
    assert_eq!(
        shown["secret_rotation_ends_at"],
        rotated["secret_rotation_ends_at"]
    );

    fire_id(&app, &key, &id).await;
    let call = receiver.wait_for(2, WAIT).await[1].clone();
    let documented = call.header("x-cipherstream-signature");
    let parts: Vec<&str> = documented.split(' ').collect();
    assert_eq!(
        parts,
        vec![
            documented_signature(&new, &call.body),
            documented_signature(&old, &call.body)
        ]
    );
    let standard = call.header("webhook-signature");
    let parts: Vec<&str> = standard.split(' ').collect();
    assert_eq!(
        parts,
        vec![
            standard_signature(&new, &call),
            standard_signature(&old, &call)
        ]
    );
    // The documented snippet, fed one value at a time, accepts each with its secret;
    // the standard library accepts the call with either secret.
    let split: Vec<String> = documented.split(' ').map(str::to_string).collect();
    let per_value = [
        with_signature(&call, &split[0]),
        with_signature(&call, &split[1]),
    ];
    assert_eq!(
        verify_in_python(&per_value[..1], &new).await,
        vec![(true, true)]
    );
    assert_eq!(
        verify_in_python(&per_value[1..], &old).await,
        vec![(true, true)]
    );
    assert_eq!(
        verify_in_python(&per_value[..1], &old).await,
        vec![(false, true)]
    );
    // Fed the whole two-value header, the bare snippet accepts neither: receivers must
    // split it (as the documentation says).
    assert_eq!(
        verify_in_python(std::slice::from_ref(&call), &new).await,
        vec![(false, true)]
    );
    assert_eq!(
        verify_in_python(std::slice::from_ref(&call), &chosen_secret(9)).await,
        vec![(false, false)]
    );

    // Rotate with no grace: only the newest secret signs.
    let newest = chosen_secret(3);
    let rotated = json_of(
        post(
            &app,
            &key,
            &rotate_path,
            &json!({"secret": newest, "grace_period_seconds": 0}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rotated["secret"], newest.as_str());
    assert!(rotated["secret_rotation_ends_at"].is_null());
    fire_id(&app, &key, &id).await;
    let call = receiver.wait_for(3, WAIT).await[2].clone();
    assert_eq!(
        call.header("x-cipherstream-signature"),
        documented_signature(&newest, &call.body)
    );
    assert_eq!(
        call.header("webhook-signature"),
        standard_signature(&newest, &call)
    );
    let only = std::slice::from_ref(&call);
    assert_eq!(verify_in_python(only, &newest).await, vec![(true, true)]);
    assert_eq!(verify_in_python(only, &new).await, vec![(false, false)]);
    assert_eq!(verify_in_python(only, &old).await, vec![(false, false)]);

    // Two rotations in a row: the oldest secret drops out. An empty body takes the
    // server's default grace period (webhook_secret_grace_seconds, 120 here).
    let fourth = json_of(
        request(&app, Method::POST, &key, &rotate_path, None).await,
        200,
    )
    .await;
    let grace = (parse_time(&fourth["secret_rotation_ends_at"]) - chrono::Utc::now()).num_seconds();
    assert!((100..=120).contains(&grace), "default grace {grace}s");
    let fifth = json_of(
        post(
            &app,
            &key,
            &rotate_path,
            &json!({"grace_period_seconds": 60}),
        )
        .await,
        200,
    )
    .await;
    let (fourth, fifth) = (
        fourth["secret"].as_str().unwrap().to_string(),
        fifth["secret"].as_str().unwrap().to_string(),
    );
    fire_id(&app, &key, &id).await;
    let call = receiver.wait_for(4, WAIT).await[3].clone();
    assert_eq!(
        call.header("x-cipherstream-signature").split(' ').count(),
        2
    );
    let only = std::slice::from_ref(&call);
    assert!(verify_in_python(only, &fifth).await[0].1);
    assert!(verify_in_python(only, &fourth).await[0].1);
    assert_eq!(verify_in_python(only, &newest).await, vec![(false, false)]);

    // Bad rotations change nothing.
    for (body, field) in [
        (json!({"grace_period_seconds": -1}), "grace_period_seconds"),
        (
            json!({"grace_period_seconds": 604_801}),
            "grace_period_seconds",
        ),
        (json!({"secret": "hunter2"}), "secret"),
        (
            json!({"secret": format!("whsec_{}", STANDARD.encode([7u8; 16]))}),
            "secret",
        ),
        (json!({"colour": "red"}), "colour"),
    ] {
        let problem = expect_problem(post(&app, &key, &rotate_path, &body).await, 400).await;
        assert!(
            fields(&problem).contains(&field.to_string()),
            "{body}: {problem}"
        );
    }
    fire_id(&app, &key, &id).await;
    let call = receiver.wait_for(5, WAIT).await[4].clone();
    assert_eq!(
        call.header("x-cipherstream-signature"),
        format!(
            "{} {}",
            documented_signature(&fifth, &call.body),
            documented_signature(&fourth, &call.body)
        ),
        "a refused rotation changed the secrets"
    );
}

// ---------------------------------------------------------------------------------
// Statistics and metrics
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn stats_count_deliveries_calls_and_latency() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    receiver.script(vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::Sleep(Duration::from_millis(400)),
        Behaviour::Status(500),
        Behaviour::Status(502),
    ]);
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 0, "backoff_seconds": 1}}),
    )
    .await;
    let stats_path = format!("/v1/webhooks/{id}/stats");
    let empty = get_json(&app, &key, &stats_path).await;
    assert_eq!(empty["calls"]["attempts"], 0);
    assert!(empty["calls"]["success_rate"].is_null());
    assert!(empty["calls"]["latency_ms"]["p50"].is_null());

    for expected in [
        "succeeded",
        "succeeded",
        "succeeded",
        "succeeded",
        "dead",
        "dead",
    ] {
        let d = fire_id(&app, &key, &id).await;
        wait_delivery(&app, &key, &d, expected).await;
    }
    let stats = get_json(&app, &key, &stats_path).await;
    assert_eq!(stats["webhook_id"], id.as_str());
    assert_eq!(
        stats["deliveries"],
        json!({"pending": 0, "sending": 0, "retrying": 0, "succeeded": 4, "dead": 2})
    );
    let calls = &stats["calls"];
    assert_eq!(calls["attempts"], 6);
    assert_eq!(calls["succeeded"], 4);
    assert_eq!(calls["failed"], 2);
    let rate = calls["success_rate"].as_f64().unwrap();
    assert!((rate - 4.0 / 6.0).abs() < 1e-9, "{rate}");
    let latency = &calls["latency_ms"];
    let (p50, p95, p99) = (
        latency["p50"].as_i64().unwrap(),
        latency["p95"].as_i64().unwrap(),
        latency["p99"].as_i64().unwrap(),
    );
    assert!(p50 <= p95 && p95 <= p99, "{latency}");
    assert!(p99 >= 400, "the slow call is the slowest: {latency}");
    assert!(calls["last_success_at"].is_string());
    assert!(calls["last_failure_at"].is_string());
    assert!(parse_time(&calls["last_failure_at"]) > parse_time(&calls["last_success_at"]));
    assert_eq!(stats["circuit"]["state"], "closed");
    assert_eq!(stats["circuit"]["consecutive_failures"], 2);
    assert_eq!(stats["enabled"], true);

    // The call window.
    let later = (chrono::Utc::now() + chrono::Duration::seconds(60))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let windowed = get_json(&app, &key, &format!("{stats_path}?since={later}")).await;
    assert_eq!(windowed["calls"]["attempts"], 0);
    assert!(windowed["calls"]["success_rate"].is_null());
    assert_eq!(
        windowed["deliveries"]["succeeded"], 4,
        "deliveries are all-time"
    );
    for (query, field) in [("since=yesterday", "since"), ("colour=red", "colour")] {
        let problem =
            expect_problem(app.get(&key, &format!("{stats_path}?{query}")).await, 400).await;
        assert_eq!(fields(&problem), vec![field]);
    }

    // The delivery log pages newest first.
    let page = get_json(&app, &key, &format!("/v1/webhooks/{id}/deliveries?limit=4")).await;
    assert_eq!(page["total"], 6);
    assert_eq!(page["limit"], 4);
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 4);
    assert_eq!(page["deliveries"][0]["status"], "dead");
    let rest = get_json(
        &app,
        &key,
        &format!("/v1/webhooks/{id}/deliveries?limit=4&offset=4"),
    )
    .await;
    assert_eq!(rest["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(rest["deliveries"][1]["status"], "succeeded");
    let mut all = ids(&page);
    all.extend(ids(&rest));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "pages overlap");
}

#[tokio::test]
async fn metrics_count_webhook_calls_and_deliveries() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 0, "backoff_seconds": 1}}),
    )
    .await;
    let before = scrape(&app).await;
    receiver.script(vec![Behaviour::Ok, Behaviour::Ok, Behaviour::Status(500)]);
    for expected in ["succeeded", "succeeded", "dead"] {
        let d = fire_id(&app, &key, &id).await;
        wait_delivery(&app, &key, &d, expected).await;
    }
    let after = scrape(&app).await;
    // The registry is shared by every server of this test process: count increases.
    let grew = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    assert!(
        grew(
            "cipherstream_webhook_calls_total",
            &[("outcome", "success")]
        ) >= 2.0,
        "{after}"
    );
    assert!(
        grew(
            "cipherstream_webhook_calls_total",
            &[("outcome", "failure")]
        ) >= 1.0
    );
    assert!(
        grew(
            "cipherstream_webhook_deliveries_total",
            &[("outcome", "succeeded")]
        ) >= 2.0
    );
    assert!(
        grew(
            "cipherstream_webhook_deliveries_total",
            &[("outcome", "dead")]
        ) >= 1.0
    );
    assert!(grew("cipherstream_webhook_call_duration_seconds_count", &[]) >= 3.0);
    assert!(
        grew(
            "cipherstream_http_requests_total",
            &[
                ("route", "/v1/webhooks/{webhook_id}/test"),
                ("status", "202")
            ]
        ) >= 3.0
    );
    assert!(metric(&after, "cipherstream_webhook_calls_total", &[]) > 0.0);
    assert!(after.contains("# TYPE cipherstream_webhook_call_duration_seconds histogram"));
}

// ---------------------------------------------------------------------------------
// Bad input and tenants
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn bad_endpoint_definitions_are_refused_naming_the_field() {
    let (app, key) = server(|_| {}).await;
    let receiver = Receiver::start().await;
    let good = json!({"url": receiver.url, "events": ["job.completed"]});
    let cases: Vec<(Json, &str)> = vec![
        (
            with(
                good.clone(),
                json!({"headers": {"Content-Type": "text/plain"}}),
            ),
            "headers.Content-Type",
        ),
        (
            with(
                good.clone(),
                json!({"headers": {"X-CipherStream-Foo": "1"}}),
            ),
            "headers.X-CipherStream-Foo",
        ),
        (
            with(good.clone(), json!({"headers": {"webhook-id": "mine"}})),
            "headers.webhook-id",
        ),
        (
            with(good.clone(), json!({"headers": {"Host": "evil.example"}})),
            "headers.Host",
        ),
        (
            with(good.clone(), json!({"headers": {"Bad Name": "x"}})),
            "headers.Bad Name",
        ),
        (
            with(good.clone(), json!({"headers": {"X-A": "1", "x-a": "2"}})),
            "headers.x-a",
        ),
        (
            with(good.clone(), json!({"headers": {"X-Name": "Zo\u{eb}"}})),
            "headers.X-Name",
        ),
        (
            with(
                good.clone(),
                json!({"headers": (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
            ),
            "headers",
        ),
        (
            with(good.clone(), json!({"events": ["job.exploded"]})),
            "events",
        ),
        (with(good.clone(), json!({"events": []})), "events"),
        (
            with(good.clone(), json!({"events": "job.completed"})),
            "events",
        ),
        (json!({"url": receiver.url}), "events"),
        (json!({"events": ["job.completed"]}), "url"),
        (with(good.clone(), json!({"colour": "red"})), "colour"),
        (
            with(good.clone(), json!({"timeout_seconds": 0})),
            "timeout_seconds",
        ),
        (
            with(good.clone(), json!({"timeout_seconds": 61})),
            "timeout_seconds",
        ),
        (
            with(good.clone(), json!({"timeout_seconds": "30"})),
            "timeout_seconds",
        ),
        (
            with(good.clone(), json!({"retry": {"max_retries": 11}})),
            "retry.max_retries",
        ),
        (
            with(good.clone(), json!({"retry": {"backoff_seconds": 0}})),
            "retry.backoff_seconds",
        ),
        (
            with(good.clone(), json!({"retry": {"tries": 3}})),
            "retry.tries",
        ),
        (with(good.clone(), json!({"retry": 3})), "retry"),
        (
            with(good.clone(), json!({"batch": {"max_events": 0}})),
            "batch.max_events",
        ),
        (
            with(good.clone(), json!({"batch": {"max_events": 101}})),
            "batch.max_events",
        ),
        (
            with(good.clone(), json!({"batch": {"max_wait_seconds": 301}})),
            "batch.max_wait_seconds",
        ),
        (
            with(good.clone(), json!({"rate_limit_per_second": 0})),
            "rate_limit_per_second",
        ),
        (
            with(good.clone(), json!({"rate_limit_per_second": 1001})),
            "rate_limit_per_second",
        ),
        (
            with(good.clone(), json!({"progress_interval_seconds": 0})),
            "progress_interval_seconds",
        ),
        (with(good.clone(), json!({"enabled": "yes"})), "enabled"),
        (with(good.clone(), json!({"secret": "hunter2"})), "secret"),
        (
            with(
                good.clone(),
                json!({"secret": format!("whsec_{}", STANDARD.encode([1u8; 16]))}),
            ),
            "secret",
        ),
        (
            with(good.clone(), json!({"secret": "whsec_not base64!"})),
            "secret",
        ),
        (
            with(
                good.clone(),
                json!({"url": "http://hooks.example.com/cipherstream"}),
            ),
            "url",
        ),
        (
            with(
                good.clone(),
                json!({"url": "http://93.184.216.34/cipherstream"}),
            ),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "https://10.0.0.1/x"})),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "https://192.168.1.5/x"})),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "https://169.254.169.254/"})),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "https://172.16.0.1/x"})),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "https://[::ffff:10.0.0.1]/x"})),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "https://[fd00::1]/x"})),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "https://0.0.0.0/x"})),
            "url",
        ),
        (
            with(good.clone(), json!({"url": "ftp://hooks.example.com/x"})),
            "url",
        ),
        (
            with(
                good.clone(),
                json!({"url": "https://user:pass@hooks.example.com/x"}),
            ),
            "url",
        ),
        (with(good.clone(), json!({"url": "not a url"})), "url"),
        (with(good.clone(), json!({"url": 42})), "url"),
    ];
    for (body, field) in &cases {
        let problem = expect_problem(post(&app, &key, "/v1/webhooks", body).await, 400).await;
        assert!(
            fields(&problem).contains(&field.to_string()),
            "{body} should name {field}: {problem}"
        );
    }
    // Every error at once.
    let several = with(
        good.clone(),
        json!({"timeout_seconds": 0, "retry": {"max_retries": 11}, "colour": 1}),
    );
    let problem = expect_problem(post(&app, &key, "/v1/webhooks", &several).await, 400).await;
    for field in ["timeout_seconds", "retry.max_retries", "colour"] {
        assert!(fields(&problem).contains(&field.to_string()), "{problem}");
    }
    for raw in ["not json", "[1, 2]", ""] {
        let response = app
            .client
            .post(app.url("/v1/webhooks"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(
            fields(&expect_problem(response, 400).await),
            vec!["body"],
            "{raw:?}"
        );
    }
    let listed = get_json(&app, &key, "/v1/webhooks").await;
    assert_eq!(
        listed["total"], 0,
        "a refused endpoint was created: {listed}"
    );
    assert!(receiver.calls().is_empty());

    // Updates are checked the same way and change nothing when refused.
    let (id, _) = endpoint(&app, &key, &receiver.url, json!({})).await;
    let hook_path = format!("/v1/webhooks/{id}");
    let before = webhook(&app, &key, &id).await;
    for (body, field) in [
        (json!({"secret": chosen_secret(5)}), "secret"),
        (json!({"timeout_seconds": 0}), "timeout_seconds"),
        (json!({"url": "https://10.0.0.1/x"}), "url"),
        (
            json!({"headers": {"webhook-signature": "v1,forged"}}),
            "headers.webhook-signature",
        ),
        (json!({"events": []}), "events"),
    ] {
        let problem = expect_problem(patch(&app, &key, &hook_path, &body).await, 400).await;
        assert!(
            fields(&problem).contains(&field.to_string()),
            "{body}: {problem}"
        );
    }
    assert_eq!(webhook(&app, &key, &id).await, before);
    // What a valid update names changes, and nothing else.
    let updated = json_of(
        patch(&app, &key, &hook_path, &json!({"retry": {"backoff_seconds": 2}, "rate_limit_per_second": 5, "headers": {"X-A": "1"}})).await,
        200,
    )
    .await;
    assert_eq!(
        updated["retry"],
        json!({"max_retries": 3, "backoff_seconds": 2})
    );
    assert_eq!(updated["rate_limit_per_second"], 5);
    assert_eq!(updated["timeout_seconds"], before["timeout_seconds"]);
    let updated = json_of(
        patch(
            &app,
            &key,
            &hook_path,
            &json!({"rate_limit_per_second": null, "headers": {"X-B": "2"}}),
        )
        .await,
        200,
    )
    .await;
    assert!(updated["rate_limit_per_second"].is_null());
    assert_eq!(
        updated["headers"],
        json!({"X-B": "2"}),
        "headers are replaced as a whole"
    );
    assert_eq!(updated["retry"]["backoff_seconds"], 2);
    assert_eq!(get_json(&app, &key, "/v1/webhooks").await["total"], 1);

    // Query parameters of the lists.
    let deliveries = format!("/v1/webhooks/{id}/deliveries");
    for (path, field) in [
        (format!("{deliveries}?status=bogus"), "status"),
        (format!("{deliveries}?event=job.exploded"), "event"),
        (format!("{deliveries}?limit=0"), "limit"),
        (format!("{deliveries}?limit=101"), "limit"),
        (format!("{deliveries}?offset=-1"), "offset"),
        (format!("{deliveries}?colour=red"), "colour"),
        (format!("{deliveries}?status=dead&status=dead"), "status"),
        ("/v1/webhooks?colour=red".to_string(), "colour"),
        ("/v1/webhooks/dead-letter?status=dead".to_string(), "status"),
        ("/v1/webhooks/dead-letter?event=nope".to_string(), "event"),
    ] {
        let problem = expect_problem(app.get(&key, &path).await, 400).await;
        assert!(
            fields(&problem).contains(&field.to_string()),
            "{path}: {problem}"
        );
    }
}

#[tokio::test]
async fn loopback_receivers_need_the_server_setting() {
    let (app, key) = server(|c| c.webhook_allow_loopback = false).await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    for url in [
        receiver.url.clone(),
        format!("https://127.0.0.1:{port}/hooks"),
        format!("https://localhost:{port}/hooks"),
        format!("https://[::1]:{port}/hooks"),
        format!("https://[::ffff:127.0.0.1]:{port}/hooks"),
    ] {
        let body = json!({"url": url, "events": ["job.completed"]});
        let problem = expect_problem(post(&app, &key, "/v1/webhooks", &body).await, 400).await;
        assert_eq!(fields(&problem), vec!["url"], "{url}: {problem}");
    }
    assert_eq!(get_json(&app, &key, "/v1/webhooks").await["total"], 0);
}

#[tokio::test]
async fn another_customer_can_neither_see_nor_touch_an_endpoint_or_its_deliveries() {
    let (app, alice) = server(|_| {}).await;
    let (bob, _) = app.create_customer("globex", &practices().sqlite).await;
    let alices_receiver = Receiver::start().await;
    alices_receiver.set(Behaviour::Status(500));
    let once = json!({"retry": {"max_retries": 0, "backoff_seconds": 1}, "description": "alice's"});
    let (id, secret) = endpoint(&app, &alice, &alices_receiver.url, once.clone()).await;
    let alices_delivery = fire_id(&app, &alice, &id).await;
    wait_delivery(&app, &alice, &alices_delivery, "dead").await;
    let bobs_receiver = Receiver::start().await;
    bobs_receiver.set(Behaviour::Status(500));
    let (bobs_id, _) = endpoint(&app, &bob, &bobs_receiver.url, once).await;
    let bobs_delivery = fire_id(&app, &bob, &bobs_id).await;
    wait_delivery(&app, &bob, &bobs_delivery, "dead").await;
    let before = webhook(&app, &alice, &id).await;

    let since = json!({"since": "2000-01-01T00:00:00Z"});
    let hook = format!("/v1/webhooks/{id}");
    for (method, path, body) in [
        (Method::GET, hook.clone(), None),
        (
            Method::PATCH,
            hook.clone(),
            Some(json!({"description": "bob's now"})),
        ),
        (Method::PATCH, hook.clone(), Some(json!({"enabled": false}))),
        (Method::DELETE, hook.clone(), None),
        (Method::POST, format!("{hook}/test"), None),
        (
            Method::POST,
            format!("{hook}/rotate-secret"),
            Some(json!({"grace_period_seconds": 0})),
        ),
        (Method::GET, format!("{hook}/deliveries"), None),
        (Method::GET, format!("{hook}/stats"), None),
        (Method::POST, format!("{hook}/recover"), Some(since.clone())),
        (
            Method::GET,
            format!("/v1/webhooks/deliveries/{alices_delivery}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/webhooks/deliveries/{alices_delivery}/retry"),
            None,
        ),
    ] {
        let response = request(&app, method, &bob, &path, body.as_ref()).await;
        expect_problem(response, 404).await;
    }
    let letters = get_json(&app, &bob, "/v1/webhooks/dead-letter").await;
    assert_eq!(ids(&letters), vec![bobs_delivery.clone()]);
    let letters = get_json(
        &app,
        &bob,
        &format!("/v1/webhooks/dead-letter?webhook_id={id}"),
    )
    .await;
    assert_eq!(letters["total"], 0);
    let listed = get_json(&app, &bob, "/v1/webhooks").await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["webhooks"][0]["webhook_id"], bobs_id.as_str());

    // Alice's endpoint and delivery are as they were, and nothing was sent for Bob.
    assert_eq!(webhook(&app, &alice, &id).await, before);
    let d = delivery(&app, &alice, &alices_delivery).await;
    assert_eq!(d["status"], "dead");
    assert_eq!(d["attempts"], 1);
    quiet(
        &alices_receiver,
        1,
        Duration::from_millis(500),
        "Bob's requests reached Alice's receiver",
    )
    .await;
    alices_receiver.set(Behaviour::Ok);
    fire_id(&app, &alice, &id).await;
    let calls = alices_receiver.wait_for(2, WAIT).await;
    assert_eq!(
        verify_in_python(&calls[1..], &secret).await,
        vec![(true, true)],
        "the secret changed"
    );
    // And the other way round.
    expect_problem(
        app.get(&alice, &format!("/v1/webhooks/{bobs_id}")).await,
        404,
    )
    .await;
    expect_problem(retry(&app, &alice, &bobs_delivery).await, 404).await;
}

// ---------------------------------------------------------------------------------
// PostgreSQL metadata and several nodes
// ---------------------------------------------------------------------------------

/// The dispatcher's bookkeeping (retries, dead letters, the circuit, manual retry,
/// recovery, statistics) is SQL shared by several nodes: run it on PostgreSQL too.
#[tokio::test]
async fn retries_dead_letters_and_the_circuit_work_on_postgres_metadata() {
    let Some(app) = TestApp::spawn_with(MetaBackend::Postgres, |c| {
        c.job_workers = 1;
        c.webhook_allow_loopback = true;
        c.webhook_poll_interval_ms = 50;
        c.webhook_circuit_failure_threshold = 2;
        c.webhook_circuit_cooldown_seconds = 1;
    })
    .await
    else {
        return;
    };
    let (key, _) = app.create_customer("acme", &practices().sqlite).await;
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Status(500));
    let (id, _) = endpoint(
        &app,
        &key,
        &receiver.url,
        json!({"retry": {"max_retries": 1, "backoff_seconds": 1}}),
    )
    .await;
    let first = fire_id(&app, &key, &id).await;
    let dead = wait_delivery(&app, &key, &first, "dead").await;
    assert_eq!(dead["attempts"], 2);
    assert_eq!(dead["last_http_status"], 500);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    assert!(gap(&calls[0], &calls[1]) >= 0.79);
    let hook = wait_circuit(&app, &key, &id, "open").await;
    assert_eq!(hook["circuit"]["consecutive_failures"], 2);
    let letters = get_json(&app, &key, "/v1/webhooks/dead-letter").await;
    assert_eq!(ids(&letters), vec![first.clone()]);
    let stats = get_json(&app, &key, &format!("/v1/webhooks/{id}/stats")).await;
    assert_eq!(stats["deliveries"]["dead"], 1);
    assert_eq!(stats["calls"]["attempts"], 2);
    assert_eq!(stats["calls"]["failed"], 2);
    assert_eq!(stats["calls"]["success_rate"], 0.0);

    // A manual retry waits for the cool-down, goes as the probe and closes the circuit.
    receiver.set(Behaviour::Ok);
    json_of(retry(&app, &key, &first).await, 202).await;
    let done = wait_delivery(&app, &key, &first, "succeeded").await;
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["attempt_log"].as_array().unwrap().len(), 3);
    assert!(
        gap(&calls[1], &receiver.calls()[2]) >= 0.99,
        "the cool-down"
    );
    assert_eq!(
        wait_circuit(&app, &key, &id, "closed").await["circuit"]["consecutive_failures"],
        0
    );

    // Recovery.
    receiver.set(Behaviour::Status(503));
    let second = fire_id(&app, &key, &id).await;
    wait_delivery(&app, &key, &second, "dead").await;
    receiver.set(Behaviour::Ok);
    let since = started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let recovered = json_of(
        post(
            &app,
            &key,
            &format!("/v1/webhooks/{id}/recover"),
            &json!({"since": since}),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(recovered["requeued"], 1);
    let done = wait_delivery(&app, &key, &second, "succeeded").await;
    assert_eq!(done["attempts"], 3);
    let stats = get_json(&app, &key, &format!("/v1/webhooks/{id}/stats")).await;
    assert_eq!(stats["deliveries"]["succeeded"], 2);
    assert_eq!(stats["deliveries"]["dead"], 0);
    assert_eq!(stats["calls"]["attempts"], 6);
    assert_eq!(stats["calls"]["succeeded"], 2);
}

#[tokio::test]
async fn two_dispatcher_nodes_share_the_rate_limit_and_the_probe_and_never_send_twice() {
    let settings = |c: &mut cipherstream::Config| {
        c.webhook_circuit_failure_threshold = 2;
        c.webhook_circuit_cooldown_seconds = 2;
    };
    let (app, key) = server(settings).await;
    let _node = another_node(&app, settings).await;

    // Both nodes race for every delivery: each is sent exactly once.
    let receiver = Receiver::start().await;
    let (id, _) = endpoint(&app, &key, &receiver.url, json!({})).await;
    let mut sent = Vec::new();
    for _ in 0..10 {
        sent.push(fire_id(&app, &key, &id).await);
    }
    for d in &sent {
        let done = wait_delivery(&app, &key, d, "succeeded").await;
        assert_eq!(done["attempts"], 1, "{d}");
    }
    quiet(
        &receiver,
        10,
        Duration::from_millis(500),
        "a delivery sent twice",
    )
    .await;
    let mut received: Vec<String> = receiver
        .calls()
        .iter()
        .map(|c| c.json()["delivery_id"].as_str().unwrap().to_string())
        .collect();
    received.sort();
    sent.sort();
    assert_eq!(received, sent);

    // The rate limit counts the calls of both nodes.
    let limited = Receiver::start().await;
    let (limited_id, _) = endpoint(
        &app,
        &key,
        &limited.url,
        json!({"rate_limit_per_second": 2}),
    )
    .await;
    for _ in 0..6 {
        fire_id(&app, &key, &limited_id).await;
    }
    let calls = limited.wait_for(6, WAIT).await;
    for pair in calls.windows(2) {
        let g = gap(&pair[0], &pair[1]);
        assert!(g >= 0.4, "two calls {g:.3}s apart at 2 per second");
    }
    assert!(gap(&calls[0], &calls[5]) >= 2.4);

    // One probe for both nodes.
    let failing = Receiver::start().await;
    failing.set(Behaviour::Status(500));
    let (failing_id, _) = endpoint(
        &app,
        &key,
        &failing.url,
        json!({"retry": {"max_retries": 5, "backoff_seconds": 1}}),
    )
    .await;
    let mut waiting = vec![fire_id(&app, &key, &failing_id).await];
    failing.wait_for(1, WAIT).await;
    waiting.push(fire_id(&app, &key, &failing_id).await);
    let opened_by = failing.wait_for(2, WAIT).await[1].clone();
    wait_circuit(&app, &key, &failing_id, "open").await;
    for _ in 0..3 {
        waiting.push(fire_id(&app, &key, &failing_id).await);
    }
    failing.set(Behaviour::Sleep(Duration::from_secs(1)));
    let probe = failing.wait_for(3, WAIT).await[2].clone();
    assert!(gap(&opened_by, &probe) >= 1.99);
    for d in &waiting {
        wait_delivery(&app, &key, d, "succeeded").await;
    }
    quiet(
        &failing,
        7,
        Duration::from_millis(300),
        "one more call per delivery",
    )
    .await;
    for call in &failing.calls()[3..] {
        let after = gap(&probe, call);
        assert!(
            after >= 0.99,
            "a call {after:.3}s after the probe, before it answered"
        );
    }
}

/// "A full batch goes at once" (docs/webhooks.md), and batching is kept "in the metadata
/// database so that several nodes share them" (the dispatcher's design). Dispatchers that claim the same endpoint at the same
/// moment must not split one full batch into several calls. (In this process the three
/// nodes are woken by the same notifier, so they race on most rounds; separate
/// processes race when one polls while another is claiming.)
#[tokio::test]
async fn dispatcher_nodes_do_not_split_a_full_batch() {
    let (app, key) = server(|_| {}).await;
    let _second = another_node(&app, |_| {}).await;
    let _third = another_node(&app, |_| {}).await;
    let mut sizes = Vec::new();
    for _ in 0..10 {
        let receiver = Receiver::start().await;
        let (id, _) = endpoint(
            &app,
            &key,
            &receiver.url,
            json!({"batch": {"max_events": 20, "max_wait_seconds": 60}}),
        )
        .await;
        let mut sent = Vec::new();
        for _ in 0..20 {
            sent.push(fire_id(&app, &key, &id).await);
        }
        for d in &sent {
            wait_delivery(&app, &key, d, "succeeded").await;
        }
        let calls = receiver.calls();
        let delivered: usize = calls.iter().map(|c| batch_ids(c).len()).sum();
        assert_eq!(delivered, 20, "each event once");
        sizes.push(calls.iter().map(|c| batch_ids(c).len()).collect::<Vec<_>>());
    }
    assert!(
        sizes.iter().all(|round| round == &vec![20]),
        "a full batch of 20 went out as calls of {sizes:?}"
    );
}
