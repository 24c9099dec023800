//! A deployment's own catalog directory replaces the built-in one, and the
//! synchronous time limit holds on the server and on the source.

use crate::helpers::{expect_problem, practices, MetaBackend, TestApp};

const ACTIVE_PATIENTS: &str = r#"
name = "active_patients"
category = "patient_management"
title = "Patient surnames"
description = "A deployment-specific view of the patient list."
from = "patients p"
order_by = "p.id"

[[date_modifiers]]
name = "Created"
expr = "p.created_at"
type = "timestamp"
description = "When the patient was added"

[[date_modifiers]]
name = "Modified"
expr = "p.updated_at"
type = "timestamp"
description = "When the patient last changed"

[[columns]]
name = "id"
expr = "p.id"
type = "integer"
nullable = false
description = "Patient id"

[[columns]]
name = "surname"
expr = "p.last_name"
type = "string"
nullable = false
description = "Family name"
"#;

#[tokio::test]
async fn a_catalog_directory_replaces_the_builtin_catalog() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("active_patients.toml"), ACTIVE_PATIENTS).unwrap();
    let catalog_dir = dir.path().to_path_buf();
    let app = TestApp::spawn_with(MetaBackend::Sqlite, |c| c.catalog_dir = Some(catalog_dir))
        .await
        .unwrap();
    let (key, _) = app.create_customer("custom", &practices().sqlite).await;
    let body: serde_json::Value = app.get(&key, "/v1/procedures").await.json().await.unwrap();
    let names: Vec<&str> = body["categories"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["procedures"].as_array().unwrap())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["active_patients"]);
    expect_problem(app.get(&key, "/v1/extract/appointments").await, 404).await;
    let response = app
        .get(&key, "/v1/extract/active_patients?format=csv")
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("id,surname\r\n"), "{text}");
    assert_eq!(text.lines().count(), crate::helpers::PATIENTS as usize + 1);
}

#[tokio::test]
async fn an_invalid_catalog_directory_stops_startup_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        ACTIVE_PATIENTS.replace("p.id\"\ntype", "p.id; DELETE FROM patients\"\ntype"),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = cipherstream::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().to_path_buf(),
        catalog_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let error = cipherstream::Application::build(config)
        .await
        .err()
        .expect("startup must fail");
    let message = format!("{error:#}");
    assert!(
        message.contains("bad.toml") && message.contains(";"),
        "{message}"
    );
}

#[tokio::test]
async fn slow_extractions_stop_at_the_synchronous_timeout() {
    let Some(postgres) = practices().postgres.clone() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Every row of this procedure costs the database 3 s: the estimate alone passes the 1 s limit.
    let slow = ACTIVE_PATIENTS
        .replace("active_patients", "slow_patients")
        .replace(
            "from = \"patients p\"",
            "from = \"patients p CROSS JOIN (SELECT pg_sleep(3) AS nap) s\"",
        );
    std::fs::write(dir.path().join("slow.toml"), slow).unwrap();
    let catalog_dir = dir.path().to_path_buf();
    let app = TestApp::spawn_with(MetaBackend::Sqlite, |c| {
        c.catalog_dir = Some(catalog_dir);
        c.sync_timeout_seconds = 1;
    })
    .await
    .unwrap();
    let (key, _) = app.create_customer("slow", &postgres).await;
    let started = std::time::Instant::now();
    let problem = expect_problem(app.get(&key, "/v1/extract/slow_patients").await, 504).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("narrow"),
        "{problem}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "stopped at the limit, not after the query"
    );
}

/// A procedure that reports how the server's own source sessions are set up.
const SESSION_CHECK: &str = r#"
name = "session_check"
category = "practice_setup"
title = "Session check"
description = "Reports whether the source session is read-only."
from = "locations l"
order_by = "l.id"

[[date_modifiers]]
name = "Created"
expr = "l.created_at"
type = "timestamp"
description = "c"

[[date_modifiers]]
name = "Modified"
expr = "l.updated_at"
type = "timestamp"
description = "m"

[[columns]]
name = "read_only"
expr = "1"
expr_mysql = "@@session.tx_read_only"
expr_postgres = "current_setting('transaction_read_only')"
type = "string"
nullable = false
description = "The session's read-only flag"
"#;

#[tokio::test]
async fn source_sessions_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("session_check.toml"), SESSION_CHECK).unwrap();
    let catalog_dir = dir.path().to_path_buf();
    let app = TestApp::spawn_with(MetaBackend::Sqlite, |c| c.catalog_dir = Some(catalog_dir))
        .await
        .unwrap();
    let sources = [
        ("mariadb", practices().mysql.clone(), "1"),
        ("postgres", practices().postgres.clone(), "on"),
    ];
    for (label, url, expected) in sources {
        let Some(url) = url else { continue };
        let (key, _) = app.create_customer(&format!("ro-{label}"), &url).await;
        let response = app
            .get(&key, "/v1/extract/session_check?limit=1&format=csv")
            .await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert_eq!(text.lines().nth(1), Some(expected), "{label}: {text}");
    }
}
