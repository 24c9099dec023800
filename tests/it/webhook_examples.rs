//! The webhook verification examples in examples/ run against real deliveries.

use std::time::Duration;

use serde_json::Value as Json;

use crate::helpers::{practices, TestApp};
use crate::receiver::{Call, Receiver};
use crate::webhooks::{create_webhook, spawn_app};

/// The Rust example's functions, called in-process on the same deliveries.
#[expect(
    dead_code,
    reason = "the example's `main` and its helpers are not called here"
)]
#[path = "../../examples/verify_webhook.rs"]
mod rust_example;

/// A secret no endpoint uses.
const WRONG_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";

/// (cipherstream, standard, fresh)
type Verdict = (bool, bool, bool);

/// The examples' input for a recorded call: raw body, lower-case headers, a secret.
fn delivery(call: &Call, secret: &str) -> Json {
    let headers: serde_json::Map<String, Json> = call
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), Json::from(v.to_str().unwrap())))
        .collect();
    serde_json::json!({
        "payload": String::from_utf8(call.body.to_vec()).unwrap(),
        "headers": headers,
        "secret": secret,
    })
}

fn verdict_of(output: &str, example: &str) -> Verdict {
    let v: Json = serde_json::from_str(output.trim())
        .unwrap_or_else(|e| panic!("{example} printed {output:?}: {e}"));
    assert_eq!(
        v.as_object().unwrap().len(),
        3,
        "{example} printed {output:?}"
    );
    (
        v["cipherstream"].as_bool().unwrap(),
        v["standard"].as_bool().unwrap(),
        v["fresh"].as_bool().unwrap(),
    )
}

/// Runs the Python, Node and Rust examples on one delivery; they must agree.
async fn verify(item: &Json) -> Verdict {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(item).unwrap()).unwrap();
    let path = file.path().to_path_buf();
    let outputs = tokio::task::spawn_blocking(move || {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        [
            ("python3", format!("{examples}/verify_webhook.py")),
            ("node", format!("{examples}/verify-webhook.mjs")),
        ]
        .map(|(program, script)| {
            let output = std::process::Command::new(program)
                .arg(&script)
                .arg(&path)
                .output()
                .unwrap_or_else(|e| panic!("running {program}: {e}"));
            assert!(
                output.status.success(),
                "{program} {script}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            (program, String::from_utf8(output.stdout).unwrap())
        })
    })
    .await
    .unwrap();
    drop(file);
    let python = verdict_of(&outputs[0].1, outputs[0].0);
    let node = verdict_of(&outputs[1].1, outputs[1].0);
    assert_eq!(
        python, node,
        "the Python and Node examples disagree on {item}"
    );

    let headers = item["headers"].as_object().unwrap();
    let rust = rust_example::check(
        item["payload"].as_str().unwrap().as_bytes(),
        |name| headers.get(name).and_then(|v| v.as_str()),
        item["secret"].as_str().unwrap(),
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(
        (rust.cipherstream, rust.standard, rust.fresh),
        python,
        "the Rust example disagrees on {item}"
    );
    python
}

/// Sends a test event to the endpoint and returns the call it made.
async fn send_test_event(app: &TestApp, key: &str, id: &str, receiver: &Receiver) -> Call {
    let before = receiver.calls().len();
    let response = app
        .client
        .post(app.url(&format!("/v1/webhooks/{id}/test")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let queued: Json = response.json().await.unwrap();
    let calls = receiver.wait_for(before + 1, Duration::from_secs(10)).await;
    let call = calls[before].clone();
    assert_eq!(call.json()["delivery_id"], queued["delivery_id"]);
    call
}

async fn rotate(app: &TestApp, key: &str, id: &str, body: Json) -> Json {
    let response = app
        .client
        .post(app.url(&format!("/v1/webhooks/{id}/rotate-secret")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_verification_examples_accept_real_deliveries_and_refuse_forgeries() {
    let app = spawn_app(1, |_| {}).await;
    let (key, _) = app.create_customer("examples", &practices().sqlite).await;
    let receiver = Receiver::start().await;
    let hook = create_webhook(
        &app,
        &key,
        serde_json::json!({"url": receiver.url, "events": ["job.completed"]}),
    )
    .await;
    let id = hook["webhook_id"].as_str().unwrap().to_string();
    let first_secret = hook["secret"].as_str().unwrap().to_string();

    // A test event, signed with the only secret.
    let call = send_test_event(&app, &key, &id, &receiver).await;
    let body = call.json();
    assert_eq!(body["event"], "job.completed");
    assert_eq!(body["test"], true);
    assert_eq!(
        call.header("x-cipherstream-signature").split(' ').count(),
        1
    );
    assert_eq!(
        verify(&delivery(&call, &first_secret)).await,
        (true, true, true)
    );
    assert_eq!(
        verify(&delivery(&call, WRONG_SECRET)).await,
        (false, false, true)
    );

    // Timestamp headers set back 10 minutes: not fresh. webhook-signature covers
    // webhook-timestamp, so it fails too; X-CipherStream-Signature covers only the
    // body, whose own (signed) timestamp still tells the truth.
    let stale = (chrono::Utc::now().timestamp() - 600).to_string();
    let mut replayed = delivery(&call, &first_secret);
    replayed["headers"]["x-cipherstream-timestamp"] = stale.clone().into();
    replayed["headers"]["webhook-timestamp"] = stale.into();
    assert_eq!(verify(&replayed).await, (true, false, false));

    // A changed body fails both signatures.
    let mut forged = delivery(&call, &first_secret);
    let payload = forged["payload"].as_str().unwrap().replace(
        &format!(
            "\"delivery_id\":\"{}\"",
            body["delivery_id"].as_str().unwrap()
        ),
        "\"delivery_id\":\"del_0_00000000\"",
    );
    assert_ne!(payload, forged["payload"].as_str().unwrap());
    forged["payload"] = payload.into();
    assert_eq!(verify(&forged).await, (false, false, true));

    // During a rotation's grace period every delivery carries one signature per
    // secret, newest first, and either secret verifies it.
    let rotated = rotate(&app, &key, &id, serde_json::json!({})).await;
    let second_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(second_secret, first_secret);
    assert!(rotated["secret_rotation_ends_at"].is_string());
    let call = send_test_event(&app, &key, &id, &receiver).await;
    assert_eq!(
        call.header("x-cipherstream-signature").split(' ').count(),
        2
    );
    assert_eq!(call.header("webhook-signature").split(' ').count(), 2);
    assert_eq!(
        verify(&delivery(&call, &second_secret)).await,
        (true, true, true)
    );
    assert_eq!(
        verify(&delivery(&call, &first_secret)).await,
        (true, true, true)
    );
    assert_eq!(
        verify(&delivery(&call, WRONG_SECRET)).await,
        (false, false, true)
    );

    // A rotation without a grace period: only the newest secret signs.
    let rotated = rotate(
        &app,
        &key,
        &id,
        serde_json::json!({"grace_period_seconds": 0}),
    )
    .await;
    let third_secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(rotated["secret_rotation_ends_at"].is_null());
    let call = send_test_event(&app, &key, &id, &receiver).await;
    assert_eq!(
        call.header("x-cipherstream-signature").split(' ').count(),
        1
    );
    assert_eq!(
        verify(&delivery(&call, &third_secret)).await,
        (true, true, true)
    );
    assert_eq!(
        verify(&delivery(&call, &second_secret)).await,
        (false, false, true)
    );
}
