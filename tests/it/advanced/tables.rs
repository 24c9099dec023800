//! Direct table access: the listing, exact date filtering, column selection, every
//! format, and `mode=auto` becoming a job that a worker completes.

use base64::Engine;
use chrono::{Duration, Utc};
use serde_json::Value as Json;

use super::{
    direct_count, get, mariadb_fixture, ndjson, parquet_rows, postgres_fixture, unpack, wait_final,
    VISITS,
};
use crate::helpers::{expect_problem, practices, MetaBackend, TestApp};

fn table<'a>(listing: &'a Json, name: &str) -> &'a Json {
    listing["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed: {listing}"))
}

fn column_type(table: &Json, column: &str) -> String {
    table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == column)
        .unwrap_or_else(|| panic!("no column {column} in {table}"))["type"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn tables_listing_shows_columns_types_and_date_columns() {
    let app = TestApp::spawn().await;
    let (key, _) = app
        .create_customer("adv-list-sqlite", &practices().sqlite)
        .await;
    let (status, body) = get(&app, &key, "/v1/advanced/tables").await;
    assert_eq!(status, 200);
    let listing: Json = serde_json::from_slice(&body).unwrap();
    let appointments = table(&listing, "appointments");
    assert_eq!(appointments["kind"], "table");
    assert_eq!(appointments["primary_key"], serde_json::json!(["id"]));
    assert_eq!(column_type(appointments, "id"), "integer");
    assert_eq!(column_type(appointments, "start_time"), "datetime");
    let dates = appointments["date_columns"].as_array().unwrap();
    assert!(dates.contains(&"start_time".into()) && dates.contains(&"created_at".into()));
    assert!(!dates.contains(&"id".into()));
    assert_eq!(column_type(table(&listing, "invoices"), "total"), "decimal");
    let names: Vec<&str> = listing["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("sqlite_")), "{names:?}");
    expect_problem(app.get(&key, "/v1/advanced/tables?schema=mysql").await, 400).await;

    for (label, url) in [
        ("mariadb", mariadb_fixture("list").await),
        ("postgres", postgres_fixture("list").await),
    ] {
        let Some(url) = url else { continue };
        let (key, _) = app
            .create_customer(&format!("adv-list-{label}"), &url)
            .await;
        let (status, body) = get(&app, &key, "/v1/advanced/tables").await;
        assert_eq!(status, 200, "{label}");
        let listing: Json = serde_json::from_slice(&body).unwrap();
        let visits = table(&listing, "visits");
        assert_eq!(visits["kind"], "table");
        assert_eq!(visits["primary_key"], serde_json::json!(["id"]));
        for (column, ty) in [
            ("id", "integer"),
            ("patient", "string"),
            ("seen_on", "date"),
            ("seen_at", "datetime"),
            ("fee", "decimal"),
            ("paid", "boolean"),
            ("ratio", "string"),
        ] {
            assert_eq!(column_type(visits, column), ty, "{label} {column}");
        }
        let db_types: Vec<&str> = visits["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["db_type"].as_str().unwrap())
            .collect();
        assert!(
            db_types
                .iter()
                .any(|t| t.contains("decimal") || t.contains("numeric")),
            "{db_types:?}"
        );
        let view = table(&listing, "paid_visits");
        assert_eq!(view["kind"], "view", "{label}");
        assert_eq!(view["columns"].as_array().unwrap().len(), 3);
        if label == "postgres" {
            assert_eq!(column_type(visits, "logged_at"), "timestamp");
            assert_eq!(column_type(visits, "ref"), "string");
        } else {
            assert_eq!(column_type(visits, "at_time"), "string");
        }
    }
}

#[tokio::test]
async fn date_column_filtering_is_exact_on_every_source() {
    let app = TestApp::spawn().await;
    // The practice: a window of appointment start times, against a direct count.
    let today = Utc::now().date_naive();
    let (from, to) = (today - Duration::days(200), today - Duration::days(100));
    let (key, _) = app
        .create_customer("adv-dates-sqlite", &practices().sqlite)
        .await;
    let (status, body) = get(
        &app,
        &key,
        &format!("/v1/advanced/tables/appointments?date_column=start_time&from_date={from}&to_date={to}&columns=id,start_time"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let rows = ndjson(&body);
    let expected = direct_count(
        &practices().sqlite,
        &format!(
            "SELECT COUNT(*) FROM appointments WHERE start_time >= '{from} 00:00:00' AND start_time < '{} 00:00:00'",
            to + Duration::days(1)
        ),
    )
    .await;
    assert!(expected > 0);
    assert_eq!(rows.len() as i64, expected);
    assert!(rows.iter().all(|r| r.as_object().unwrap().len() == 2));
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "rows come in primary-key order"
    );

    for (label, url) in [
        ("mariadb", mariadb_fixture("dates").await),
        ("postgres", postgres_fixture("dates").await),
    ] {
        let Some(url) = url else { continue };
        let (key, _) = app
            .create_customer(&format!("adv-dates-{label}"), &url)
            .await;
        let mut cases = vec![
            (
                "date_column=seen_on&from_date=2024-03-01&to_date=2024-03-31",
                "seen_on >= '2024-03-01' AND seen_on <= '2024-03-31'",
            ),
            (
                "date_column=seen_at&from_date=2024-01-05&to_date=2024-01-09",
                "seen_at >= '2024-01-05 00:00:00' AND seen_at < '2024-01-10 00:00:00'",
            ),
            (
                "date_column=seen_at&from_date=2024-01-05T06:00:00Z",
                "seen_at >= '2024-01-05 06:00:00'",
            ),
        ];
        if label == "postgres" {
            // A timestamptz range is UTC, whatever the session's time zone (here Sydney).
            cases.push((
                "date_column=logged_at&from_date=2024-01-10&to_date=2024-01-20",
                "logged_at >= '2024-01-10 00:00:00+00' AND logged_at < '2024-01-21 00:00:00+00'",
            ));
        }
        for (query, condition) in cases {
            let (status, body) = get(
                &app,
                &key,
                &format!("/v1/advanced/tables/visits?{query}&columns=id"),
            )
            .await;
            assert_eq!(
                status,
                200,
                "{label} {query}: {}",
                String::from_utf8_lossy(&body)
            );
            let expected = direct_count(
                &url,
                &format!("SELECT COUNT(*) FROM visits WHERE {condition}"),
            )
            .await;
            assert!(expected > 0 && expected < VISITS, "{label} {query}");
            assert_eq!(ndjson(&body).len() as i64, expected, "{label} {query}");
        }
        // The view filters like a table.
        let (status, body) = get(&app, &key, "/v1/advanced/tables/paid_visits?format=json").await;
        assert_eq!(status, 200);
        let rows: Vec<Json> = serde_json::from_slice(&body).unwrap();
        assert_eq!(rows.len() as i64, VISITS / 2, "{label}");
    }
}

#[tokio::test]
async fn columns_and_formats_keep_values_exact() {
    let app = TestApp::spawn().await;
    for (label, url) in [
        ("mariadb", mariadb_fixture("formats").await),
        ("postgres", postgres_fixture("formats").await),
    ] {
        let Some(url) = url else { continue };
        let (key, _) = app
            .create_customer(&format!("adv-formats-{label}"), &url)
            .await;
        let base = "/v1/advanced/tables/visits?columns=id,fee,paid,seen_on,note,ratio&limit=20";
        let (status, body) = get(&app, &key, base).await;
        assert_eq!(status, 200, "{label}: {}", String::from_utf8_lossy(&body));
        let rows = ndjson(&body);
        assert_eq!(rows.len(), 20);
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains("{\"id\":10,\"fee\":12.50,"),
            "{label}: {text}"
        );
        // The selected columns, in the order asked for.
        assert!(
            text.starts_with("{\"id\":1,\"fee\":1.25,\"paid\":true,\"seen_on\":\"2024-01-02\",\"note\":\"note 1\",\"ratio\":\"0.333"),
            "{label}: {text}"
        );
        // id 10: fee 12.50 exactly, unpaid, 2024-01-11, no note, ratio 10/3 as text.
        let ten = &rows[9];
        assert_eq!(ten["id"], 10);
        assert_eq!(ten["paid"], false);
        assert_eq!(ten["seen_on"], "2024-01-11");
        assert_eq!(ten["note"], Json::Null);
        assert!(
            ten["ratio"].as_str().unwrap().starts_with("3.33"),
            "{label} {ten}"
        );

        for (format, compression) in [
            ("json", "none"),
            ("csv", "gzip"),
            ("parquet", "none"),
            ("ndjson", "zip"),
        ] {
            let response = app
                .get(
                    &key,
                    &format!("{base}&format={format}&compression={compression}"),
                )
                .await;
            assert_eq!(response.status(), 200, "{label} {format} {compression}");
            let disposition = response.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(disposition.contains("table_visits."), "{disposition}");
            let body = unpack(compression, &response.bytes().await.unwrap());
            let count = match format {
                "json" => serde_json::from_slice::<Vec<Json>>(&body).unwrap().len(),
                "csv" => {
                    let mut reader = csv::Reader::from_reader(&body[..]);
                    assert_eq!(
                        reader.headers().unwrap().iter().collect::<Vec<_>>(),
                        ["id", "fee", "paid", "seen_on", "note", "ratio"]
                    );
                    let records: Vec<csv::StringRecord> =
                        reader.records().map(|r| r.unwrap()).collect();
                    assert_eq!(&records[9][1], "12.50");
                    records.len()
                }
                "parquet" => parquet_rows(body),
                _ => ndjson(&body).len(),
            };
            assert_eq!(count, 20, "{label} {format} {compression}");
        }
    }
}

#[tokio::test]
async fn auto_mode_becomes_a_job_over_the_threshold_and_the_job_completes() {
    let app = TestApp::spawn_with(MetaBackend::Sqlite, |c| {
        c.job_row_threshold = 10;
        c.job_workers = 1;
        c.job_poll_interval_ms = 50;
    })
    .await
    .unwrap();
    let (key, created) = app.create_customer("adv-jobs", &practices().sqlite).await;
    let small = app
        .get(&key, "/v1/advanced/tables/appointments?limit=10")
        .await;
    assert_eq!(small.status(), 200, "at the threshold it streams");
    let big = app
        .get(&key, "/v1/advanced/tables/appointments?columns=id,start_time&date_column=start_time&from_date=2000-01-01&format=csv")
        .await;
    assert_eq!(big.status(), 202, "over it, a job");
    assert!(big.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/v1/jobs/table_appointments_"));
    let job: Json = big.json().await.unwrap();
    assert_eq!(job["procedure_name"], "table:appointments");
    assert_eq!(job["metadata"]["table"], "appointments");
    assert_eq!(job["metadata"]["date_column"], "start_time");
    let expected = direct_count(
        &practices().sqlite,
        "SELECT COUNT(*) FROM appointments WHERE start_time >= '2000-01-01 00:00:00'",
    )
    .await;
    assert_eq!(job["estimated_rows"], expected);
    let done = wait_final(&app, &key, job["job_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["rows_processed"], expected);

    // The stored file decrypts to the rows.
    let url = done["s3_url"].as_str().unwrap();
    let encrypted = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let data_key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(created["data_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let mut reader =
        cipherstream::crypto::cse1::Cse1Reader::new(&encrypted[..], &data_key).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut plain).unwrap();
    let mut csv = csv::Reader::from_reader(&plain[..]);
    assert_eq!(
        csv.headers().unwrap().iter().collect::<Vec<_>>(),
        ["id", "start_time"]
    );
    assert_eq!(csv.records().count() as i64, expected);

    // mode=job always queues; mode=sync never does; a bad parameter never reaches the queue.
    let queued = app
        .get(&key, "/v1/advanced/tables/patients?mode=job&limit=5")
        .await;
    assert_eq!(queued.status(), 202);
    let job: Json = queued.json().await.unwrap();
    let done = wait_final(&app, &key, job["job_id"].as_str().unwrap()).await;
    assert_eq!(done["rows_processed"], 5, "{done}");
    let sync = app
        .get(&key, "/v1/advanced/tables/appointments?limit=11&mode=sync")
        .await;
    assert_eq!(sync.status(), 200);
    expect_problem(
        app.get(&key, "/v1/advanced/tables/patients?mode=job&columns=nope")
            .await,
        400,
    )
    .await;
}

#[tokio::test]
async fn bad_table_requests_name_the_field_and_the_accepted_values() {
    let app = TestApp::spawn().await;
    let (key, _) = app.create_customer("adv-bad", &practices().sqlite).await;
    let problem = expect_problem(
        app.get(&key, "/v1/advanced/tables/no_such_table").await,
        404,
    )
    .await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("GET /v1/advanced/tables"));
    for (query, field, accepted) in [
        ("columns=id,nope", "columns", "start_time"),
        ("date_column=notes", "date_column", "start_time"),
        ("date_column=nope", "date_column", "created_at"),
        ("from_date=2024-01-01", "date_column", "start_time"),
        (
            "date_column=start_time&from_date=2024-02-01&to_date=2024-01-01",
            "to_date",
            "",
        ),
        ("date_modifier=Created", "date_modifier", "date_column"),
        ("format=xml", "format", "ndjson"),
        ("compression=rar", "compression", "gzip"),
        ("mode=fast", "mode", "auto"),
        ("limit=0", "limit", ""),
        ("limit=1&limit=2", "limit", ""),
    ] {
        let problem = expect_problem(
            app.get(&key, &format!("/v1/advanced/tables/appointments?{query}"))
                .await,
            400,
        )
        .await;
        let error = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["field"] == field)
            .unwrap_or_else(|| panic!("{query}: {problem}"));
        assert!(
            error["message"].as_str().unwrap().contains(accepted),
            "{query}: {error}"
        );
    }
}
