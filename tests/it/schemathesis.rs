//! The API against its own OpenAPI document: schemathesis (PyPI, 4.x) generates
//! requests from `/openapi.json` (examples, coverage, fuzzing and stateful sequences)
//! and fails on any 5xx and on any answer the document does not describe: a status,
//! a content type, a header or a body outside the documented responses.

use std::path::Path;
use std::process::{Command, Output};

use crate::helpers::{practices, unavailable, MetaBackend, TestApp, ADMIN_TOKEN};
use crate::webhooks::wait_job;

/// What `.ci/run` installs; 3.x needs an experimental flag for OpenAPI 3.1 and
/// crashes in hypothesis-jsonschema on our schemas.
const REQUIREMENT: &str = "schemathesis>=4,<5";

/// Fixed, so a failure reproduces (the report also names `st replay` ids).
const SEED: &str = "7";

/// Test cases per operation and phase: about 30 s for both passes on 2 cores.
const EXAMPLES: &str = "20";

/// A pass still running after this many seconds is killed (and the test fails).
const TIME_LIMIT_SECONDS: u64 = 150;

/// The checks that must hold for every generated request.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance";

/// Every generated webhook URL is rewritten to this server itself: a fuzzed URL would
/// otherwise be resolved (DNS) when saved and called by the delivery worker.
const HOOKS: &str = r#"
import schemathesis

@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        case.body["url"] = WEBHOOK_URL
"#;

/// `Ok(version)` when `python3 -m schemathesis.cli` is a 4.x release.
fn schemathesis_version() -> Result<String, String> {
    let output = Command::new("python3")
        .args(["-m", "schemathesis.cli", "--version"])
        .output()
        .map_err(|e| format!("python3 does not run: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let version = text.rsplit(' ').next().unwrap_or_default().to_string();
    if !output.status.success() || !version.starts_with("4.") {
        return Err(format!(
            "pip install '{REQUIREMENT}' (found: {}{})",
            text,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(version)
}

/// One schemathesis pass over the operations `filter` selects, with `token` as the bearer.
fn run_schemathesis(dir: &Path, base: &str, token: &str, filter: &[&str]) -> Output {
    let timeout = TIME_LIMIT_SECONDS.to_string();
    let mut command = Command::new("timeout");
    command
        .args(["--kill-after=10", timeout.as_str()])
        .args(["python3", "-m", "schemathesis.cli", "--config-file"])
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(filter)
        .args(["--checks", CHECKS])
        .args(["--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30"])
        .env("SCHEMATHESIS_HOOKS", dir.join("hooks.py"))
        // Reports and caches land in the temporary directory, not the work tree.
        .current_dir(dir);
    command.output().expect("running schemathesis")
}

fn assert_passed(pass: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis ({pass}) found problems (exit {:?}; 124 means it ran past {TIME_LIMIT_SECONDS} s):\n{stdout}\n{stderr}",
        output.status.code()
    );
    eprintln!("schemathesis ({pass}):\n{stdout}");
}

/// Operations that need a completed job get one: its download redirect and its file
/// through the presigned URL (which random values would never reach past the 403).
async fn completed_job_config(app: &TestApp, key: &str) -> String {
    let created: serde_json::Value = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(key)
        .json(&serde_json::json!({"procedure": "appointments", "format": "csv", "compression": "gzip", "limit": 100}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = created["job_id"].as_str().expect("a job id").to_string();
    let job = wait_job(app, key, &job_id).await;
    assert_eq!(job["status"], "completed", "{job}");
    let url = url::Url::parse(job["s3_url"].as_str().expect("a download URL")).unwrap();
    let file_key = url.path().strip_prefix("/v1/files/").unwrap().to_string();
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    format!(
        r#"[[operations]]
include-path = "/v1/jobs/{{job_id}}/download"
parameters = {{ "path.job_id" = {job_id:?} }}

[[operations]]
include-path = "/v1/files/{{key}}"
parameters = {{ "path.key" = {file_key:?}, "query.expires" = {expires}, "query.signature" = {signature:?} }}
"#,
        expires = query("expires"),
        signature = query("signature"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_or_undocumented_answer() {
    let version = match schemathesis_version() {
        Ok(version) => version,
        Err(e) => {
            unavailable("schemathesis 4", e);
            return;
        }
    };
    // Webhook URLs and mail go to loopback only: this server itself, and an SMTP port
    // where nothing listens (so the email settings can be saved and read back).
    let app = TestApp::spawn_with(MetaBackend::Sqlite, |config| {
        config.webhook_allow_loopback = true;
        config.smtp_host = Some("127.0.0.1".into());
        config.smtp_port = 9;
    })
    .await
    .expect("sqlite metadata is always available");
    let (key, _) = app.create_customer("fuzz", &practices().sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = format!(
        "WEBHOOK_URL = {:?}\n{HOOKS}",
        app.url("/schemathesis/webhook")
    );
    std::fs::write(dir.path().join("hooks.py"), hooks).unwrap();
    std::fs::write(
        dir.path().join("schemathesis.toml"),
        completed_job_config(&app, &key).await,
    )
    .unwrap();

    let base = app.base.clone();
    let path = dir.path().to_path_buf();
    let (customer, admin) = tokio::task::spawn_blocking(move || {
        // The admin operations take the admin token instead of an API key, and with it
        // they would revoke the key or rotate the data key of the customer under test:
        // they get a pass of their own, after the customer's.
        let customer = run_schemathesis(&path, &base, &key, &["--exclude-path-regex", "^/admin/"]);
        let admin = run_schemathesis(
            &path,
            &base,
            ADMIN_TOKEN,
            &["--include-path-regex", "^/admin/"],
        );
        (customer, admin)
    })
    .await
    .unwrap();
    eprintln!("schemathesis {version}");
    assert_passed("customer API", &customer);
    assert_passed("admin API", &admin);
}

/// Found by schemathesis: on the extraction endpoint a 200 is the file, so the replay
/// of a job by its Idempotency-Key answers 202 with the job, like the first request.
#[tokio::test]
async fn an_extraction_replayed_by_its_idempotency_key_answers_202_with_the_same_job() {
    let app = TestApp::spawn().await;
    let (key, _) = app.create_customer("replay", &practices().sqlite).await;
    let mut job_ids = Vec::new();
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url("/v1/extract/appointments"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "replay-1")
            .json(&serde_json::json!({"mode": "job", "limit": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        assert!(response.headers().contains_key("location"));
        let job: serde_json::Value = response.json().await.unwrap();
        job_ids.push(job["job_id"].as_str().unwrap().to_string());
    }
    assert_eq!(job_ids[0], job_ids[1]);
}
