//! The binary: `serve --demo`, `demo generate`, `customer …`, `key …`, `migrate`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_cipherstream");

fn run(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("CIPHERSTREAM_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn customer_and_key_commands_manage_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let practice = dir.path().join("p.db");
    let (ok, out, err) = run(&[
        "demo",
        "generate",
        "--target",
        &format!("sqlite://{}", practice.display()),
        "--patients",
        "25",
        "--seed",
        "3",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("patients") && out.contains("appointments"),
        "{out}"
    );

    let (ok, _, err) = run(&["--data-dir", data, "migrate"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&[
        "--data-dir",
        data,
        "customer",
        "create",
        "--name",
        "Smile Dental",
        "--source-url",
        &format!("sqlite://{}", practice.display()),
    ]);
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["customer"]["id"], "smile-dental");
    assert!(created["api_key"].as_str().unwrap().starts_with("cs_live_"));
    let (ok, _, err) = run(&[
        "--data-dir",
        data,
        "customer",
        "create",
        "--id",
        "smile-dental",
        "--name",
        "Again",
        "--source-url",
        "sqlite://x.db",
    ]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(&[
        "--data-dir",
        data,
        "customer",
        "create",
        "--name",
        "Xylo",
        "--source-url",
        "ftp://nope",
    ]);
    assert!(!ok && err.contains("source_url"), "{err}");

    let (ok, out, _) = run(&[
        "--data-dir",
        data,
        "key",
        "create",
        "--customer",
        "smile-dental",
        "--name",
        "bi",
    ]);
    assert!(ok);
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key_id = key["id"].as_str().unwrap();
    let (ok, out, _) = run(&[
        "--data-dir",
        data,
        "key",
        "revoke",
        "--customer",
        "smile-dental",
        key_id,
    ]);
    assert!(ok && out.contains(key_id));
    let (ok, _, err) = run(&[
        "--data-dir",
        data,
        "key",
        "revoke",
        "--customer",
        "smile-dental",
        "key_nope",
    ]);
    assert!(!ok && err.contains("key_nope"));
    let (ok, out, _) = run(&["--data-dir", data, "customer", "list"]);
    assert!(ok && out.contains("smile-dental"));
    assert!(!out.contains("cs_live_"), "listings never show keys");
}

#[test]
fn bad_configuration_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "sync_timeout_seconds = 0\n").unwrap();
    let (ok, _, err) = run(&["--config", config.to_str().unwrap(), "migrate"]);
    assert!(!ok && err.contains("sync_timeout_seconds"), "{err}");
    std::fs::write(&config, "no_such_setting = 1\n").unwrap();
    let (ok, _, err) = run(&["--config", config.to_str().unwrap(), "migrate"]);
    assert!(!ok && err.contains("no_such_setting"), "{err}");
}

/// Starts `serve --demo`, returns the child, the printed API key and base URL.
fn start_demo(data: &str) -> (std::process::Child, String, String) {
    let mut child = Command::new(BIN)
        .args([
            "--data-dir",
            data,
            "serve",
            "--demo",
            "--demo-patients",
            "40",
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut key = None;
    let mut base = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(k) = line.split("API key (customer `demo`): ").nth(1) {
            key = Some(k.trim().to_string());
        }
        if let Some(url) = line.split("Swagger UI:").nth(1) {
            base = Some(url.trim().trim_end_matches("/docs").to_string());
        }
        if line.contains("curl -H") {
            assert!(line.contains(key.as_deref().unwrap()));
            break;
        }
    }
    // Keep reading so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (
        child,
        key.expect("the API key is printed"),
        base.expect("the Swagger address is printed"),
    )
}

#[test]
fn serve_demo_generates_once_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (mut child, key, base) = start_demo(data);
    let client = reqwest::blocking_client();
    let status = client(
        &format!("{base}/v1/extract/appointments?format=csv&limit=5"),
        &key,
    );
    assert_eq!(status.0, 200);
    assert_eq!(status.1.lines().count(), 6, "header + 5 rows");
    let credentials = dir.path().join("demo-credentials.json");
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&credentials).unwrap()).unwrap();
    assert_eq!(saved["api_key"], key.as_str());
    assert_eq!(saved["customer_id"], "demo");
    let master = std::fs::metadata(dir.path().join("master.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(master, 0o600);
    terminate(&mut child);

    // A second start reuses the practice and the key.
    let practice_before = std::fs::metadata(dir.path().join("demo-practice.db"))
        .unwrap()
        .modified()
        .unwrap();
    let (mut child, key_again, base) = start_demo(data);
    assert_eq!(key_again, key);
    assert_eq!(
        std::fs::metadata(dir.path().join("demo-practice.db"))
            .unwrap()
            .modified()
            .unwrap(),
        practice_before
    );
    assert_eq!(client(&format!("{base}/health"), &key).0, 200);
    terminate(&mut child);
}

/// SIGTERM, then the process must exit on its own (graceful shutdown).
fn terminate(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the server did not stop within 10 s of SIGTERM");
}

mod reqwest {
    /// A tiny blocking GET (status, body) on a runtime of its own.
    pub fn blocking_client() -> impl Fn(&str, &str) -> (u16, String) {
        |url: &str, key: &str| {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let response = ::reqwest::Client::new()
                    .get(url)
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        }
    }
}
