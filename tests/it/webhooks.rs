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

/// A helper process whose stdout lines arrive on a channel; killed when dropped.
pub struct LineChild {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LineChild {
    pub fn spawn(program: &str, args: &[&str]) -> LineChild {
        use std::io::BufRead;
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineChild { child, lines }
    }

    /// The next line, within `timeout`.
    pub async fn line(&mut self, timeout: Duration) -> String {
        tokio::time::timeout(timeout, self.lines.recv())
            .await
            .expect("a line in time")
            .expect("the process is still running")
    }

    /// Whether another line arrives within `timeout`.
    pub async fn quiet_for(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.lines.recv())
            .await
            .is_err()
    }
}

async fn post(app: &TestApp, key: &str, path: &str, body: Json) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Polls a delivery until `done` holds.
async fn wait_delivery(app: &TestApp, key: &str, id: &str, done: impl Fn(&Json) -> bool) -> Json {
    let mut last = Json::Null;
    for _ in 0..300 {
        last = app
            .get(key, &format!("/v1/webhooks/deliveries/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("delivery {id} did not reach the expected state: {last}");
}

#[tokio::test]
async fn cancellations_and_maintenance_reach_only_their_subscribers() {
    let app = spawn_app(0, |_| {}).await;
    let (key, _) = app.create_customer("subs-a", &practices().sqlite).await;
    let (other_key, _) = app.create_customer("subs-b", &practices().sqlite).await;
    let completed_only = Receiver::start().await;
    let cancel_and_maintenance = Receiver::start().await;
    let other_customer = Receiver::start().await;
    create_webhook(
        &app,
        &key,
        serde_json::json!({"url": completed_only.url, "events": ["job.completed"]}),
    )
    .await;
    create_webhook(
        &app,
        &key,
        serde_json::json!({"url": cancel_and_maintenance.url, "events": ["job.cancelled", "system.maintenance"]}),
    )
    .await;
    create_webhook(
        &app,
        &other_key,
        serde_json::json!({"url": other_customer.url, "events": ["system.maintenance", "job.cancelled"]}),
    )
    .await;

    // No workers: the job stays queued, and cancelling it is the state change.
    let job: Json = post(
        &app,
        &key,
        "/v1/jobs",
        serde_json::json!({"procedure": "patients"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let job_id = job["job_id"].as_str().unwrap();
    let cancelled = post(&app, &key, &format!("/v1/jobs/{job_id}/cancel"), Json::Null).await;
    assert_eq!(cancelled.status(), 200);
    let calls = cancel_and_maintenance
        .wait_for(1, Duration::from_secs(10))
        .await;
    let body = calls[0].json();
    assert_eq!(body["event"], "job.cancelled");
    assert_eq!(body["data"]["job_id"], job_id);
    assert_eq!(body["data"]["status"], "cancelled");
    assert_eq!(body["data"]["error_message"], "cancelled by user");

    // Maintenance, announced by the admin API and by the CLI, reaches every customer's subscribers.
    let announced = app
        .client
        .post(app.url("/admin/v1/maintenance"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&serde_json::json!({"message": "Database upgrade", "starts_at": "2030-01-01T01:00:00Z", "ends_at": "2030-01-01T01:30:00Z"}))
        .send()
        .await
        .unwrap();
    let status = announced.status();
    let text = announced.text().await.unwrap();
    assert_eq!(status, 202, "{text}");
    let announced: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(announced["deliveries"], 2);
    let data_dir = app.data_dir.clone();
    let cli = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cipherstream"))
            .args([
                "--data-dir",
                data_dir.to_str().unwrap(),
                "maintenance",
                "announce",
            ])
            .args([
                "--message",
                "Storage move",
                "--starts-at",
                "2030-02-01T00:00:00Z",
                "--severity",
                "warning",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let printed: Json = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(printed["deliveries"], 2);

    let calls = cancel_and_maintenance
        .wait_for(3, Duration::from_secs(10))
        .await;
    let others = other_customer.wait_for(2, Duration::from_secs(10)).await;
    for received in [&calls[1..], &others[..]] {
        let bodies: Vec<Json> = received.iter().map(Call::json).collect();
        assert!(
            bodies.iter().all(|b| b["event"] == "system.maintenance"),
            "{bodies:?}"
        );
        let messages: Vec<&str> = bodies
            .iter()
            .map(|b| b["data"]["message"].as_str().unwrap())
            .collect();
        assert!(
            messages.contains(&"Database upgrade") && messages.contains(&"Storage move"),
            "{messages:?}"
        );
        let severities: Vec<&str> = bodies
            .iter()
            .map(|b| b["data"]["severity"].as_str().unwrap())
            .collect();
        assert!(severities.contains(&"info") && severities.contains(&"warning"));
    }
    // Bad announcements are refused, naming the field.
    let bad = app
        .client
        .post(app.url("/admin/v1/maintenance"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&serde_json::json!({"message": "x", "starts_at": "tomorrow", "severity": "panic"}))
        .send()
        .await
        .unwrap();
    let problem = crate::helpers::expect_problem(bad, 400).await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"starts_at") && fields.contains(&"severity"),
        "{problem}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        completed_only.calls().is_empty(),
        "job.completed-only endpoint got another event"
    );
    assert_eq!(cancel_and_maintenance.calls().len(), 3);
    assert_eq!(
        other_customer.calls().len(),
        2,
        "the other customer must not see this customer's cancellation"
    );
}

#[tokio::test]
async fn https_receivers_with_a_private_ca_are_verified_and_unsafe_urls_refused() {
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
    let port = https.line(Duration::from_secs(30)).await;
    let port = port.strip_prefix("PORT ").expect("PORT line").to_string();
    let ca = dir.path().join("ca.pem");
    let app = spawn_app(0, |c| c.webhook_ca_file = Some(ca.clone())).await;
    let (key, _) = app.create_customer("tls", &practices().sqlite).await;
    let hook = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": format!("https://localhost:{port}/tls-hook"), "events": ["job.completed"]}),
    )
    .await;
    let id = hook["webhook_id"].as_str().unwrap();
    let queued: Json = post(&app, &key, &format!("/v1/webhooks/{id}/test"), Json::Null)
        .await
        .json()
        .await
        .unwrap();
    let line: Json = serde_json::from_str(&https.line(Duration::from_secs(15)).await).unwrap();
    assert_eq!(line["path"], "/tls-hook");
    assert!(
        line["tls"].as_str().unwrap().starts_with("TLSv1."),
        "{line}"
    );
    assert_ne!(line["tls"], "TLSv1.1");
    let body: Json = serde_json::from_str(line["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["delivery_id"], queued["delivery_id"]);
    assert_eq!(body["test"], true);
    let done = wait_delivery(&app, &key, queued["delivery_id"].as_str().unwrap(), |d| {
        d["status"] == "succeeded"
    })
    .await;
    assert_eq!(done["last_http_status"], 200);

    // A server that does not trust the CA refuses the receiver's certificate.
    let untrusting = spawn_app(0, |_| {}).await;
    let (key2, _) = untrusting
        .create_customer("tls2", &practices().sqlite)
        .await;
    let hook = create_webhook(
        &untrusting,
        &key2,
        serde_json::json!({"url": format!("https://localhost:{port}/tls-hook"), "events": ["job.completed"], "retry": {"max_retries": 0}}),
    )
    .await;
    let id = hook["webhook_id"].as_str().unwrap();
    let queued: Json = post(
        &untrusting,
        &key2,
        &format!("/v1/webhooks/{id}/test"),
        Json::Null,
    )
    .await
    .json()
    .await
    .unwrap();
    let dead = wait_delivery(
        &untrusting,
        &key2,
        queued["delivery_id"].as_str().unwrap(),
        |d| d["status"] == "dead",
    )
    .await;
    let error = dead["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("issuer"),
        "{error}"
    );
    assert!(
        https.quiet_for(Duration::from_millis(300)).await,
        "nothing reached the receiver"
    );

    // Unsafe URLs, on a server with default settings (no loopback, no private addresses).
    let strict = TestApp::spawn().await;
    let (key3, _) = strict.create_customer("strict", &practices().sqlite).await;
    for (url, says) in [
        ("http://hooks.example.com/x", "https://"),
        ("http://127.0.0.1:9/x", "https://"),
        (&format!("https://127.0.0.1:{port}/x") as &str, "loopback"),
        (&format!("https://localhost:{port}/x") as &str, "loopback"),
        ("https://10.0.0.7/x", "private"),
        ("https://192.168.1.20/x", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[fd00::1]/x", "private"),
        ("https://[::ffff:10.0.0.1]/x", "private"),
    ] {
        let refused = post(
            &strict,
            &key3,
            "/v1/webhooks",
            serde_json::json!({"url": url, "events": ["job.completed"]}),
        )
        .await;
        let problem = crate::helpers::expect_problem(refused, 400).await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{url}: {message}");
    }
    let listed: Json = strict
        .get(&key3, "/v1/webhooks")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 0);
}
