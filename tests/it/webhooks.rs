//! Webhooks end to end: the real server delivers to a real receiver on loopback;
//! signatures are checked by the product documentation's Python snippet and by the
//! Standard Webhooks reference library.

use std::time::Duration;

use serde_json::Value as Json;

use crate::helpers::{practices, MetaBackend, TestApp};
use crate::receiver::{Call, Receiver};

/// A server whose dispatcher may call loopback receivers, polling fast.
pub async fn spawn_app(workers: usize, adjust: impl FnOnce(&mut cipherstream::Config)) -> TestApp {
    TestApp::spawn_with(MetaBackend::Sqlite, |c| {
        c.job_workers = workers;
        c.job_poll_interval_ms = 50;
        c.webhook_allow_loopback = true;
        c.webhook_poll_interval_ms = 50;
        adjust(c);
    })
    .await
    .unwrap()
}

/// Creates an endpoint; returns its JSON (with the secret).
pub async fn create_webhook(app: &TestApp, key: &str, body: Json) -> Json {
    let response = app
        .client
        .post(app.url("/v1/webhooks"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Runs the verification script on calls signed with `secret`; returns (documented, standard) per call.
pub async fn verify_in_python(calls: &[Call], secret: &str) -> Vec<(bool, bool)> {
    let items: Vec<Json> = calls
        .iter()
        .map(|c| {
            let headers: serde_json::Map<String, Json> = c
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), Json::from(v.to_str().unwrap())))
                .collect();
            serde_json::json!({"payload": String::from_utf8(c.body.to_vec()).unwrap(), "headers": headers, "secret": secret})
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&items).unwrap()).unwrap();
    let path = file.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/verify_webhooks.py"
            ))
            .arg(path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: Json = serde_json::from_str(line).unwrap();
            (
                v["documented"].as_bool().unwrap(),
                v["standard"].as_bool().unwrap(),
            )
        })
        .collect()
}

pub async fn wait_job(app: &TestApp, key: &str, job_id: &str) -> Json {
    for _ in 0..400 {
        let job: Json = app
            .get(key, &format!("/v1/jobs/{job_id}"))
            .await
            .json()
            .await
            .unwrap();
        if ["completed", "failed", "cancelled"].contains(&job["status"].as_str().unwrap()) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job_id} did not finish");
}

#[tokio::test]
async fn a_completed_job_reaches_its_subscribers_signed_with_custom_headers() {
    let app = spawn_app(2, |_| {}).await;
    let (key, _) = app.create_customer("hooks", &practices().sqlite).await;
    let completed = Receiver::start().await;
    let other = Receiver::start().await;
    let hook = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": completed.url, "events": ["job.completed", "job.failed"],
            "description": "warehouse", "headers": {"X-Team": "data", "Authorization": "Bearer receiver-token"}}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    create_webhook(
        &app,
        &key,
        serde_json::json!({"url": other.url, "events": ["job.cancelled"]}),
    )
    .await;

    let job: Json = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"procedure": "payment_types", "format": "csv"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = job["job_id"].as_str().unwrap();
    let done = wait_job(&app, &key, job_id).await;
    assert_eq!(done["status"], "completed");

    let calls = completed.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(completed.calls().len(), 1, "exactly one delivery");
    assert!(
        other.calls().is_empty(),
        "an endpoint not subscribed to job.completed got it"
    );
    let call = &calls[0];
    let body = call.json();
    assert_eq!(body["event"], "job.completed");
    assert_eq!(body["attempt"], 1);
    assert!(body["delivery_id"].as_str().unwrap().starts_with("del_"));
    assert_eq!(body["data"]["job_id"], job_id);
    assert_eq!(body["data"]["status"], "completed");
    assert_eq!(body["data"]["rows_processed"], done["rows_processed"]);
    assert_eq!(body["data"]["output_format"], "csv");
    assert!(body["data"]["s3_url"]
        .as_str()
        .unwrap()
        .contains("/v1/files/"));
    assert_eq!(call.header("x-team"), "data");
    assert_eq!(call.header("authorization"), "Bearer receiver-token");
    assert_eq!(call.header("x-cipherstream-event"), "job.completed");
    assert_eq!(
        call.header("x-cipherstream-delivery"),
        body["delivery_id"].as_str().unwrap()
    );
    assert_eq!(
        call.header("webhook-id"),
        body["delivery_id"].as_str().unwrap()
    );
    let ts: i64 = call.header("x-cipherstream-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 30);
    assert_eq!(call.header("webhook-timestamp"), ts.to_string());
    let body_ts =
        chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!(body_ts.timestamp(), ts);
    // The download link in the event works without an API key.
    let file = app
        .client
        .get(body["data"]["s3_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);

    let verified = verify_in_python(&calls, &secret).await;
    assert_eq!(verified, vec![(true, true)]);
    // And a wrong secret does not verify.
    let wrong = verify_in_python(&calls, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await;
    assert_eq!(wrong, vec![(false, false)]);
}
