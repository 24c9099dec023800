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

/// Starts the real binary on a free port with extra environment; returns it and its base URL.
fn start_binary(data_dir: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cipherstream"))
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "serve",
            "--bind",
            "127.0.0.1:0",
        ])
        .env("CIPHERSTREAM_ADMIN_TOKEN", crate::helpers::ADMIN_TOKEN)
        .env("CIPHERSTREAM_LOG_FORMAT", "json")
        .env("CIPHERSTREAM_WEBHOOK_ALLOW_LOOPBACK", "true")
        .env("CIPHERSTREAM_WEBHOOK_POLL_INTERVAL_MS", "50")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .find_map(|line| {
            let line: Json = serde_json::from_str(&line.ok()?).ok()?;
            (line["fields"]["message"] == "listening")
                .then(|| line["fields"]["addr"].as_str().unwrap().to_string())
        })
        .expect("the server logs its address");
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn a_delivery_queued_before_sigkill_is_sent_once_after_restart() {
    let receiver = Receiver::start().await;
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let dir = data.path().to_path_buf();
    let (mut first, base) = tokio::task::spawn_blocking(move || start_binary(&dir, &[]))
        .await
        .unwrap();
    let created: Json = client
        .post(format!("{base}/admin/v1/customers"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(
            &serde_json::json!({"id": "crash", "name": "Crash", "source_url": practices().sqlite}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();
    // Batching holds a first event for 3 s: the server dies while it waits in the outbox.
    let hook: Json = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": receiver.url, "events": ["job.completed"], "batch": {"max_events": 10, "max_wait_seconds": 3}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = hook["webhook_id"].as_str().unwrap();
    let mut queued = Vec::new();
    for _ in 0..3 {
        let delivery: Json = client
            .post(format!("{base}/v1/webhooks/{id}/test"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        queued.push(delivery["delivery_id"].as_str().unwrap().to_string());
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(
        receiver.calls().is_empty(),
        "nothing was sent before the kill"
    );

    let dir = data.path().to_path_buf();
    let (mut second, base) = tokio::task::spawn_blocking(move || start_binary(&dir, &[]))
        .await
        .unwrap();
    let calls = receiver.wait_for(1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls_after = receiver.calls();
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(calls.len(), calls_after.len(), "a duplicate call arrived");
    // The receiver deduplicates on delivery_id and sees every event exactly once.
    let mut seen: Vec<String> = calls_after
        .iter()
        .flat_map(|c| c.json()["events"].as_array().unwrap().clone())
        .map(|e| e["delivery_id"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut expected = queued.clone();
    expected.sort();
    assert_eq!(seen, expected, "lost or duplicated deliveries");
    let _ = base;
}

#[tokio::test]
async fn notification_mails_arrive_at_a_real_smtp_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut smtp = LineChild::spawn(
        "python3",
        &[
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py"),
            &port.to_string(),
        ],
    );
    assert_eq!(smtp.line(Duration::from_secs(30)).await, "READY");
    let app = spawn_app(1, |c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = port;
        c.smtp_tls = cipherstream::webhooks::email::SmtpTls::None;
        c.smtp_from = "CipherStream <jobs@cipherstream.test>".into();
    })
    .await;
    let (key, _) = app.create_customer("mailer", &practices().sqlite).await;
    let put = |body: Json| {
        let request = app
            .client
            .put(app.url("/v1/notifications/email"))
            .bearer_auth(&key)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    // Bad settings are refused, naming the field.
    let problem = crate::helpers::expect_problem(
        put(serde_json::json!({"recipients": ["not an address"]})).await,
        400,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "recipients");
    let problem = crate::helpers::expect_problem(
        put(serde_json::json!({"recipients": ["a@b.example"], "events": ["job.progress"]})).await,
        400,
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "events");
    let saved = put(serde_json::json!({"recipients": ["ops@practice.example", "cto@practice.example"], "events": ["job.completed"]})).await;
    assert_eq!(saved.status(), 200);
    let saved: Json = saved.json().await.unwrap();
    assert_eq!(saved["events"], serde_json::json!(["job.completed"]));

    let job: Json = post(
        &app,
        &key,
        "/v1/jobs",
        serde_json::json!({"procedure": "payment_types", "format": "csv"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let job_id = job["job_id"].as_str().unwrap();
    assert_eq!(wait_job(&app, &key, job_id).await["status"], "completed");
    let mail: Json = serde_json::from_str(&smtp.line(Duration::from_secs(20)).await).unwrap();
    assert_eq!(mail["mail_from"], "jobs@cipherstream.test");
    let mut to: Vec<&str> = mail["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    to.sort();
    assert_eq!(to, ["cto@practice.example", "ops@practice.example"]);
    assert_eq!(
        mail["subject"],
        format!("CipherStream: payment_types job {job_id} completed")
    );
    let text = mail["body"].as_str().unwrap();
    assert!(text.contains("Rows processed:  8"), "{text}");
    assert!(
        text.contains(&format!("/v1/jobs/{job_id}/download")),
        "{text}"
    );
    assert!(
        !mail["data"].as_str().unwrap().contains("/v1/files/"),
        "a mail must not carry a presigned URL"
    );

    // Mails follow the chosen events: with only job.failed chosen, a completed job is not mailed.
    assert_eq!(
        put(serde_json::json!({"recipients": ["ops@practice.example"], "events": ["job.failed"]}))
            .await
            .status(),
        200
    );
    let quiet: Json = post(
        &app,
        &key,
        "/v1/jobs",
        serde_json::json!({"procedure": "payment_types"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        wait_job(&app, &key, quiet["job_id"].as_str().unwrap()).await["status"],
        "completed"
    );
    assert!(
        smtp.quiet_for(Duration::from_secs(1)).await,
        "a completed job was mailed to a job.failed-only setting"
    );

    // Without an SMTP server configured, setting mails up is refused.
    let plain = spawn_app(0, |_| {}).await;
    let (plain_key, _) = plain.create_customer("nomail", &practices().sqlite).await;
    let refused = plain
        .client
        .put(plain.url("/v1/notifications/email"))
        .bearer_auth(&plain_key)
        .json(&serde_json::json!({"recipients": ["ops@practice.example"]}))
        .send()
        .await
        .unwrap();
    let problem = crate::helpers::expect_problem(refused, 422).await;
    assert!(problem["detail"].as_str().unwrap().contains("smtp_host"));
    assert_eq!(
        plain
            .get(&plain_key, "/v1/notifications/email")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn job_progress_is_opt_in_and_throttled_per_endpoint() {
    let Some(postgres) = practices().postgres.clone() else {
        return;
    };
    // 150 patients at 20 ms each: a job of about 3 s.
    let catalog = crate::jobs::slow_patients_catalog("p.id + 0 * length(pg_sleep(0.02)::text)");
    let app = spawn_app(1, |c| c.catalog_dir = Some(catalog.path().to_path_buf())).await;
    let (key, _) = app.create_customer("progress", &postgres).await;
    let progress = Receiver::start().await;
    let outcome = Receiver::start().await;
    create_webhook(&app, &key, serde_json::json!({"url": progress.url, "events": ["job.progress"], "progress_interval_seconds": 1})).await;
    create_webhook(
        &app,
        &key,
        serde_json::json!({"url": outcome.url, "events": ["job.completed"]}),
    )
    .await;
    let job: Json = post(
        &app,
        &key,
        "/v1/jobs",
        serde_json::json!({"procedure": "patients", "format": "csv"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let job_id = job["job_id"].as_str().unwrap();
    assert_eq!(wait_job(&app, &key, job_id).await["status"], "completed");
    outcome.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let calls = progress.calls();
    assert!(
        calls.len() >= 2,
        "expected progress events during a 3 s job, got {}",
        calls.len()
    );
    let bodies: Vec<Json> = calls.iter().map(Call::json).collect();
    assert!(
        bodies
            .iter()
            .all(|b| b["event"] == "job.progress" && b["data"]["job_id"] == job_id),
        "{bodies:?}"
    );
    // Throttled to one per second per endpoint (the worker reports twice a second);
    // the events were created at least 1 s apart.
    let created: Vec<chrono::DateTime<chrono::FixedOffset>> = bodies
        .iter()
        .map(|b| chrono::DateTime::parse_from_rfc3339(b["occurred_at"].as_str().unwrap()).unwrap())
        .collect();
    for pair in created.windows(2) {
        assert!(
            (pair[1] - pair[0]).num_milliseconds() >= 1000,
            "{created:?}"
        );
    }
    let rows: Vec<i64> = bodies
        .iter()
        .map(|b| b["data"]["rows_processed"].as_i64().unwrap())
        .collect();
    assert!(rows.windows(2).all(|w| w[0] <= w[1]), "{rows:?}");
    assert!(bodies.iter().all(|b| b["data"]["status"] == "running"));
    // Subscribers of other events get no progress.
    assert!(outcome
        .calls()
        .iter()
        .all(|c| c.json()["event"] == "job.completed"));
    assert_eq!(outcome.calls().len(), 1);
}

#[tokio::test]
async fn the_dispatcher_works_on_postgres_metadata() {
    let Some(app) = TestApp::spawn_with(MetaBackend::Postgres, |c| {
        c.job_workers = 1;
        c.job_poll_interval_ms = 50;
        c.webhook_allow_loopback = true;
        c.webhook_poll_interval_ms = 50;
    })
    .await
    else {
        return;
    };
    let (key, _) = app.create_customer("pgmeta", &practices().sqlite).await;
    let receiver = Receiver::start().await;
    let hook = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": receiver.url, "events": ["job.completed"], "rate_limit_per_second": 50,
            "batch": {"max_events": 2, "max_wait_seconds": 1}}),
    )
    .await;
    let job: Json = post(
        &app,
        &key,
        "/v1/jobs",
        serde_json::json!({"procedure": "payment_types"}),
    )
    .await
    .json()
    .await
    .unwrap();
    wait_job(&app, &key, job["job_id"].as_str().unwrap()).await;
    let id = hook["webhook_id"].as_str().unwrap();
    post(&app, &key, &format!("/v1/webhooks/{id}/test"), Json::Null).await;
    let calls = receiver.wait_for(1, Duration::from_secs(10)).await;
    let events: Vec<Json> = calls
        .iter()
        .flat_map(|c| c.json()["events"].as_array().unwrap().clone())
        .collect();
    assert!(
        events.iter().any(|e| e["data"]["job_id"] == job["job_id"]),
        "{events:?}"
    );
    // The receiver sees the call before the server records its answer.
    let mut stats = Json::Null;
    for _ in 0..100 {
        stats = app
            .get(&key, &format!("/v1/webhooks/{id}/stats"))
            .await
            .json()
            .await
            .unwrap();
        if stats["deliveries"]["succeeded"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stats["deliveries"]["succeeded"], 2, "{stats}");
    assert!(
        stats["calls"]["succeeded"].as_i64().unwrap() >= 1,
        "{stats}"
    );
    assert_eq!(stats["circuit"]["state"], "closed");
}

#[tokio::test]
async fn request_quotas_answer_429_with_headers_and_warn_once_through_api_rate_limit() {
    let app = spawn_app(0, |_| {}).await;
    let created: Json = app
        .client
        .post(app.url("/admin/v1/customers"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&serde_json::json!({"id": "quota", "name": "Quota", "source_url": practices().sqlite, "rate_limit_per_minute": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();
    let (unlimited_key, _) = app.create_customer("unlimited", &practices().sqlite).await;
    let receiver = Receiver::start().await;
    let hook = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": receiver.url, "events": ["api.rate_limit"]}),
    )
    .await;
    let hook_id = hook["webhook_id"].as_str().unwrap();

    let mut remaining = Vec::new();
    let mut refused = None;
    for _ in 0..15 {
        let response = app.get(&key, &format!("/v1/webhooks/{hook_id}")).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        assert_eq!(header("ratelimit-limit").as_deref(), Some("10"));
        assert_eq!(header("ratelimit-policy").as_deref(), Some("10;w=60"));
        remaining.push(
            header("ratelimit-remaining")
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
        if response.status() == 429 {
            let retry_after: u64 = header("retry-after")
                .expect("Retry-After on 429")
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry_after), "{retry_after}");
            refused = Some(crate::helpers::expect_problem(response, 429).await);
            break;
        }
        assert_eq!(response.status(), 200);
    }
    let problem = refused.expect("the quota of 10 per minute must refuse within 15 requests");
    assert!(
        problem["type"].as_str().unwrap().ends_with("/rate-limited"),
        "{problem}"
    );
    assert!(remaining.windows(2).all(|w| w[1] <= w[0]), "{remaining:?}");
    assert_eq!(*remaining.last().unwrap(), 0);

    // One warning for the window, sent when the customer passed 80% of its quota.
    let calls = receiver.wait_for(1, Duration::from_secs(10)).await;
    let body = calls[0].json();
    assert_eq!(body["event"], "api.rate_limit");
    assert_eq!(body["data"]["customer_id"], "quota");
    assert_eq!(body["data"]["limit_per_minute"], 10);
    assert!(
        body["data"]["used_percent"].as_u64().unwrap() > 80,
        "{body}"
    );
    // More refused requests in the same window do not warn again.
    for _ in 0..3 {
        assert_eq!(app.get(&key, "/v1/webhooks").await.status(), 429);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.calls().len(), 1);

    // A customer without a quota gets no rate-limit headers.
    let free = app.get(&unlimited_key, "/v1/webhooks").await;
    assert_eq!(free.status(), 200);
    assert!(free.headers().get("ratelimit-limit").is_none());
}

#[tokio::test]
async fn pruning_removes_finished_deliveries_and_keeps_waiting_ones() {
    let app = spawn_app(0, |_| {}).await;
    let (key, _) = app.create_customer("prune", &practices().sqlite).await;
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.set(crate::receiver::Behaviour::Status(500));
    let good = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": ok.url, "events": ["job.completed"]}),
    )
    .await;
    let bad = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": failing.url, "events": ["job.completed"], "retry": {"max_retries": 0}}),
    )
    .await;
    let waiting = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": ok.url, "events": ["job.completed"], "batch": {"max_events": 10, "max_wait_seconds": 300}}),
    )
    .await;
    let mut ids = Vec::new();
    for hook in [&good, &bad, &waiting] {
        let id = hook["webhook_id"].as_str().unwrap();
        let d: Json = post(&app, &key, &format!("/v1/webhooks/{id}/test"), Json::Null)
            .await
            .json()
            .await
            .unwrap();
        ids.push(d["delivery_id"].as_str().unwrap().to_string());
    }
    wait_delivery(&app, &key, &ids[0], |d| d["status"] == "succeeded").await;
    wait_delivery(&app, &key, &ids[1], |d| d["status"] == "dead").await;

    let url = format!("sqlite://{}", app.data_dir.join("metadata.db").display());
    let meta = cipherstream::meta::Meta::connect(&url).await.unwrap();
    // Nothing is old enough yet.
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        cipherstream::webhooks::deliveries::prune(&meta, past)
            .await
            .unwrap(),
        0
    );
    let removed = cipherstream::webhooks::deliveries::prune(
        &meta,
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(
        app.get(&key, &format!("/v1/webhooks/deliveries/{}", ids[0]))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get(&key, &format!("/v1/webhooks/deliveries/{}", ids[1]))
            .await
            .status(),
        404
    );
    let kept: Json = app
        .get(&key, &format!("/v1/webhooks/deliveries/{}", ids[2]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["status"], "pending");
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events")
        .fetch_one(&meta.pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "only the waiting delivery's event is left");
    let attempts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_attempts")
        .fetch_one(&meta.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0);
}
