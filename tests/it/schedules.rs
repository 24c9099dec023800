//! Schedules: CRUD over HTTP, every validation error, tenant isolation, and the
//! scheduler turning a due schedule into exactly one job visible in `/v1/jobs`.

use std::time::Duration;

use serde_json::{json, Value as Json};
use sqlx::Connection;

use crate::helpers::{expect_problem, practices, MetaBackend, TestApp};

async fn spawn() -> TestApp {
    TestApp::spawn_with(MetaBackend::Sqlite, |c| {
        c.job_poll_interval_ms = 50;
    })
    .await
    .unwrap()
}

fn nightly() -> Json {
    json!({
        "name": "Nightly appointments",
        "cron": "0 2 * * *",
        "timezone": "Australia/Sydney",
        "procedure": "appointments",
        "window": "previous_day",
        "format": "csv",
        "compression": "gzip",
    })
}

async fn post(app: &TestApp, key: &str, body: &Json) -> reqwest::Response {
    app.client
        .post(app.url("/v1/schedules"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, key: &str, id: &str, body: &Json) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/v1/schedules/{id}")))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/v1/schedules/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn create(app: &TestApp, key: &str, body: &Json) -> Json {
    let response = post(app, key, body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let body: Json = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/schedules/{}", body["schedule_id"].as_str().unwrap())
    );
    body
}

/// Asserts a 400 naming `field` and returns that field's message.
async fn expect_field(response: reqwest::Response, field: &str) -> String {
    let body = expect_problem(response, 400).await;
    let errors = body["errors"].as_array().unwrap();
    errors
        .iter()
        .find(|e| e["field"] == field)
        .unwrap_or_else(|| panic!("no error on {field}: {body}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn schedules_crud_round_trip() {
    let app = spawn().await;
    let (key, _) = app.create_customer("sched-crud", &practices().sqlite).await;

    let created = create(&app, &key, &nightly()).await;
    let id = created["schedule_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sch_") && id.len() == 20, "{id}");
    assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(created["name"], "Nightly appointments");
    assert_eq!(created["cron"], "0 2 * * *");
    assert_eq!(created["timezone"], "Australia/Sydney");
    assert_eq!(created["procedure"], "appointments");
    assert_eq!(created["window"], "previous_day");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["parameters"]["format"], "csv");
    assert_eq!(created["parameters"]["compression"], "gzip");
    assert!(created["last_run_at"].is_null() && created["last_job_id"].is_null());
    // 02:00 in Sydney is 15:00 or 16:00 UTC depending on daylight saving.
    let next = created["next_run_at"].as_str().unwrap();
    let next_at = chrono::DateTime::parse_from_rfc3339(next).unwrap();
    assert!(next_at > chrono::Utc::now());
    assert!(
        next.contains("T15:00:00") || next.contains("T16:00:00"),
        "{next}"
    );
    for field in ["created_at", "updated_at"] {
        assert!(created[field].is_string(), "{field}");
    }

    let got: Json = app
        .get(&key, &format!("/v1/schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);

    let second = create(
        &app,
        &key,
        &json!({"name": "Weekly", "cron": "30 3 * * 1", "timezone": "UTC", "procedure": "appointments",
                "window": "previous_week", "filters": {}, "columns": ["appointment_id"], "limit": 10, "enabled": false}),
    )
    .await;
    assert!(second["next_run_at"].is_null(), "disabled: no next run");
    assert_eq!(second["parameters"]["columns"], json!(["appointment_id"]));
    assert_eq!(second["parameters"]["limit"], 10);

    let list: Json = app.get(&key, "/v1/schedules").await.json().await.unwrap();
    assert_eq!(list["total"], 2);
    assert_eq!(list["limit"], 50);
    assert_eq!(list["offset"], 0);
    let ids: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["schedule_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![second["schedule_id"].as_str().unwrap(), id.as_str()],
        "newest first"
    );
    let page: Json = app
        .get(&key, "/v1/schedules?limit=1&offset=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["schedules"].as_array().unwrap().len(), 1);
    assert_eq!(page["schedules"][0]["schedule_id"], id.as_str());

    // PATCH: new cron and window, change format, drop compression.
    let response = patch(
        &app,
        &key,
        &id,
        &json!({"cron": "15 4 * * *", "window": "since_last_run", "format": "ndjson", "compression": null, "name": "Renamed"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let updated: Json = response.json().await.unwrap();
    assert_eq!(updated["cron"], "15 4 * * *");
    assert_eq!(updated["window"], "since_last_run");
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["timezone"], "Australia/Sydney");
    assert_eq!(updated["parameters"]["format"], "ndjson");
    assert!(
        updated["parameters"].get("compression").is_none(),
        "{updated}"
    );
    let next = updated["next_run_at"].as_str().unwrap();
    assert!(next.contains(":15:00"), "{next}");
    assert_eq!(updated["created_at"], created["created_at"]);

    // Disable and re-enable.
    let off: Json = patch(&app, &key, &id, &json!({"enabled": false}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(off["enabled"], false);
    assert!(off["next_run_at"].is_null());
    let on: Json = patch(&app, &key, &id, &json!({"enabled": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(on["enabled"], true);
    assert!(on["next_run_at"].is_string());

    let response = delete(&app, &key, &id).await;
    assert_eq!(response.status(), 204);
    expect_problem(app.get(&key, &format!("/v1/schedules/{id}")).await, 404).await;
    expect_problem(delete(&app, &key, &id).await, 404).await;
    let list: Json = app.get(&key, "/v1/schedules").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn schedules_validation_names_each_field() {
    let app = spawn().await;
    let (key, _) = app.create_customer("sched-bad", &practices().sqlite).await;
    let with = |field: &str, value: Json| {
        let mut body = nightly();
        body[field] = value;
        body
    };

    let message = expect_field(
        post(&app, &key, &with("timezone", json!("Mars/Olympus"))).await,
        "timezone",
    )
    .await;
    assert!(message.contains("Australia/Sydney"), "{message}");
    let message = expect_field(
        post(&app, &key, &with("cron", json!("0 25 * * *"))).await,
        "cron",
    )
    .await;
    assert!(message.contains("five fields"), "{message}");
    expect_field(
        post(&app, &key, &with("cron", json!("every day"))).await,
        "cron",
    )
    .await;
    expect_field(
        post(&app, &key, &with("cron", json!("0 0 2 * * *"))).await,
        "cron",
    )
    .await;
    expect_field(post(&app, &key, &with("cron", json!(5))).await, "cron").await;
    let message = expect_field(
        post(&app, &key, &with("window", json!("yesterday"))).await,
        "window",
    )
    .await;
    for accepted in [
        "previous_day",
        "previous_week",
        "previous_month",
        "since_last_run",
    ] {
        assert!(message.contains(accepted), "{message}");
    }
    let message = expect_field(
        post(&app, &key, &with("procedure", json!("nope"))).await,
        "procedure",
    )
    .await;
    assert!(message.contains("appointments"), "{message}");
    for refused in ["from_date", "to_date", "mode"] {
        let value = if refused == "mode" {
            "job"
        } else {
            "2024-01-01"
        };
        let message = expect_field(
            post(&app, &key, &with(refused, json!(value))).await,
            refused,
        )
        .await;
        assert!(message.contains("window"), "{message}");
    }
    expect_field(
        post(&app, &key, &with("colour", json!("blue"))).await,
        "colour",
    )
    .await;
    expect_field(
        post(&app, &key, &with("format", json!("xlsx"))).await,
        "format",
    )
    .await;
    expect_field(
        post(&app, &key, &with("columns", json!(["no_such_column"]))).await,
        "columns",
    )
    .await;
    expect_field(
        post(&app, &key, &with("date_modifier", json!("Whenever"))).await,
        "date_modifier",
    )
    .await;
    expect_field(post(&app, &key, &with("limit", json!(0))).await, "limit").await;
    expect_field(
        post(&app, &key, &with("enabled", json!("yes"))).await,
        "enabled",
    )
    .await;
    expect_field(post(&app, &key, &with("name", json!(""))).await, "name").await;
    for required in ["name", "cron", "timezone", "procedure", "window"] {
        let mut body = nightly();
        body.as_object_mut().unwrap().remove(required);
        expect_field(post(&app, &key, &body).await, required).await;
    }
    // Several errors at once are all reported.
    let mut body = with("timezone", json!("Nowhere/Land"));
    body["window"] = json!("fortnight");
    let problem = expect_problem(post(&app, &key, &body).await, 400).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");
    let response = app
        .client
        .post(app.url("/v1/schedules"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_field(response, "body").await;

    expect_field(app.get(&key, "/v1/schedules?limit=0").await, "limit").await;
    expect_field(app.get(&key, "/v1/schedules?limit=101").await, "limit").await;
    expect_field(app.get(&key, "/v1/schedules?offset=-1").await, "offset").await;
    expect_field(app.get(&key, "/v1/schedules?status=x").await, "status").await;

    // PATCH re-validates too, and a refused update changes nothing.
    let created = create(&app, &key, &nightly()).await;
    let id = created["schedule_id"].as_str().unwrap();
    expect_field(
        patch(&app, &key, id, &json!({"timezone": "Mars/Olympus"})).await,
        "timezone",
    )
    .await;
    expect_field(patch(&app, &key, id, &json!({"cron": "* *"})).await, "cron").await;
    expect_field(
        patch(&app, &key, id, &json!({"window": "daily"})).await,
        "window",
    )
    .await;
    expect_field(
        patch(&app, &key, id, &json!({"to_date": "2024-01-01"})).await,
        "to_date",
    )
    .await;
    expect_field(
        patch(&app, &key, id, &json!({"procedure": "nope"})).await,
        "procedure",
    )
    .await;
    expect_field(patch(&app, &key, id, &json!({"bogus": 1})).await, "bogus").await;
    let after: Json = app
        .get(&key, &format!("/v1/schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, created);

    // Unauthenticated.
    let response = app
        .client
        .get(app.url("/v1/schedules"))
        .send()
        .await
        .unwrap();
    expect_problem(response, 401).await;
}

#[tokio::test]
async fn schedules_are_isolated_per_customer() {
    let app = spawn().await;
    let (alice, _) = app
        .create_customer("sched-alice", &practices().sqlite)
        .await;
    let (bob, _) = app.create_customer("sched-bob", &practices().sqlite).await;
    let created = create(&app, &alice, &nightly()).await;
    let id = created["schedule_id"].as_str().unwrap();

    expect_problem(app.get(&bob, &format!("/v1/schedules/{id}")).await, 404).await;
    expect_problem(patch(&app, &bob, id, &json!({"enabled": false})).await, 404).await;
    expect_problem(delete(&app, &bob, id).await, 404).await;
    let list: Json = app.get(&bob, "/v1/schedules").await.json().await.unwrap();
    assert_eq!(list["total"], 0);
    assert!(list["schedules"].as_array().unwrap().is_empty());

    let still: Json = app
        .get(&alice, &format!("/v1/schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still, created);
}

/// Moves a schedule's `next_run_at` into the past in the server's metadata database.
async fn make_due(app: &TestApp, id: &str, next_run_at: &str) {
    let url = format!("sqlite://{}", app.data_dir.join("metadata.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .await
        .unwrap();
    let done = sqlx::query("UPDATE schedules SET next_run_at = ? WHERE id = ?")
        .bind(next_run_at)
        .bind(id)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

async fn scheduled_jobs(app: &TestApp, key: &str, schedule_id: &str) -> Vec<Json> {
    let list: Json = app
        .get(key, "/v1/jobs?limit=100")
        .await
        .json()
        .await
        .unwrap();
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["schedule_id"] == schedule_id)
        .cloned()
        .collect()
}

#[tokio::test]
async fn schedules_due_run_makes_one_job_in_the_job_list() {
    let app = spawn().await;
    let (key, _) = app.create_customer("sched-run", &practices().sqlite).await;
    let (other, _) = app
        .create_customer("sched-run-other", &practices().sqlite)
        .await;
    let created = create(&app, &key, &nightly()).await;
    let id = created["schedule_id"].as_str().unwrap().to_string();
    let disabled = create(&app, &key, &{
        let mut b = nightly();
        b["enabled"] = json!(false);
        b
    })
    .await;

    // Three daily slots were missed (the server was "down"): one run only.
    let three_days_ago = chrono::Utc::now() - chrono::Duration::days(3);
    make_due(
        &app,
        &id,
        &three_days_ago.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
    .await;
    make_due(
        &app,
        disabled["schedule_id"].as_str().unwrap(),
        &three_days_ago.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
    .await;

    let mut jobs = Vec::new();
    for _ in 0..200 {
        jobs = scheduled_jobs(&app, &key, &id).await;
        if !jobs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(jobs.len(), 1, "one job for the due schedule");
    // Give the scheduler several more rounds: still one job.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let jobs = scheduled_jobs(&app, &key, &id).await;
    assert_eq!(jobs.len(), 1);
    assert!(
        scheduled_jobs(&app, &key, disabled["schedule_id"].as_str().unwrap())
            .await
            .is_empty()
    );
    let job = &jobs[0];
    assert_eq!(job["procedure_name"], "appointments");
    assert_eq!(job["output_format"], "csv");

    let after: Json = app
        .get(&key, &format!("/v1/schedules/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["last_job_id"], job["job_id"]);
    // The run is for the latest missed 02:00 Sydney slot; the window is the Sydney day before it.
    let slot =
        chrono::DateTime::parse_from_rfc3339(after["last_run_at"].as_str().unwrap()).unwrap();
    let tz: chrono_tz::Tz = "Australia/Sydney".parse().unwrap();
    let local = slot.with_timezone(&tz);
    assert_eq!(local.format("%H:%M").to_string(), "02:00");
    assert!(chrono::Utc::now().signed_duration_since(slot) < chrono::Duration::days(1));
    let day = (local.date_naive() - chrono::Duration::days(1)).to_string();
    assert_eq!(job["metadata"]["from_date"], day.as_str());
    assert_eq!(job["metadata"]["to_date"], day.as_str());
    let next =
        chrono::DateTime::parse_from_rfc3339(after["next_run_at"].as_str().unwrap()).unwrap();
    assert!(
        next > chrono::Utc::now(),
        "next run is after now, not a missed slot"
    );

    // The job is the customer's own: another customer sees neither it nor the schedule.
    assert!(scheduled_jobs(&app, &other, &id).await.is_empty());
}

#[tokio::test]
async fn schedules_openapi_documents_every_operation() {
    let app = spawn().await;
    let spec = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc: Json = serde_json::from_str(&spec).unwrap();
    let operations = [
        ("/v1/schedules", "post"),
        ("/v1/schedules", "get"),
        ("/v1/schedules/{schedule_id}", "get"),
        ("/v1/schedules/{schedule_id}", "patch"),
        ("/v1/schedules/{schedule_id}", "delete"),
    ];
    for (path, method) in operations {
        let op = &doc["paths"][path][method];
        assert!(
            op.is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
        assert_eq!(op["tags"], json!(["schedules"]), "{method} {path}");
        let security = op["security"].as_array().unwrap();
        assert!(
            security.iter().any(|s| s.get("api_key").is_some()),
            "{method} {path}"
        );
    }
    for schema in ["ScheduleOut", "ScheduleIn", "SchedulePatch", "ScheduleList"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert!(doc["components"]["schemas"]["ScheduleOut"]["example"].is_object());
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
}
