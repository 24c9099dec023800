//! Stored-routine calls: several MariaDB result sets, PostgreSQL functions and
//! procedures, routines that try to write (they fail and nothing changes), refusals.

use serde_json::{json, Value as Json};

use super::{call, direct_count, mariadb_fixture, ndjson, postgres_fixture, unpack, VISITS};
use crate::helpers::{expect_problem, practices, TestApp};

async fn ok_body(response: reqwest::Response) -> Vec<u8> {
    let status = response.status();
    let body = response.bytes().await.unwrap().to_vec();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    body
}

#[tokio::test]
async fn mariadb_routines_return_every_result_set() {
    let Some(url) = mariadb_fixture("call").await else {
        return;
    };
    let app = TestApp::spawn().await;
    let (key, _) = app.create_customer("adv-call-mariadb", &url).await;
    let expected_count = direct_count(
        &url,
        "SELECT COUNT(*) FROM visits WHERE seen_on >= '2024-06-01' AND fee >= 100",
    )
    .await;

    let statement = json!({"statement": "CALL visit_report(?, ?)", "params": ["2024-06-01", 100]});
    let response = call(&app, &key, statement.clone()).await;
    assert_eq!(response.headers()["x-cipherstream-result-sets"], "all");
    let body = ok_body(response).await;
    let rows = ndjson(&body);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[0]["result_set"], 0);
    assert_eq!(rows[0]["visits"], expected_count);
    let total = direct_count(
        &url,
        "SELECT CAST(SUM(fee) * 100 AS SIGNED) FROM visits WHERE seen_on >= '2024-06-01' AND fee >= 100",
    )
    .await;
    // Decimals are written exactly as stored.
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(
        text.contains(&format!("\"total\":{}.{:02}}}", total / 100, total % 100)),
        "{text}"
    );
    assert!(rows[1..].iter().all(|r| r["result_set"] == 1));
    // result_set comes first, then the set's columns in the routine's order.
    let second_set = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        second_set.starts_with("{\"result_set\":1,\"id\":")
            && second_set.contains(",\"patient\":\"Patient "),
        "{second_set}"
    );
    assert!(
        second_set.contains("\"seen_on\":\"2024-06-01\",\"fee\":"),
        "{second_set}"
    );
    assert_eq!(rows[1]["seen_on"], "2024-06-01");

    // The same call as procedure + args, with literals, as one JSON array, gzipped.
    let response = call(
        &app,
        &key,
        json!({"procedure": "visit_report", "args": ["2024-06-01", 100], "format": "json", "compression": "gzip"}),
    )
    .await;
    assert_eq!(response.headers()["content-type"], "application/gzip");
    let array: Vec<Json> =
        serde_json::from_slice(&unpack("gzip", &ok_body(response).await)).unwrap();
    assert_eq!(array, rows);
    let literal = json!({"statement": "call visit_report('2024-06-01', 100.00)", "format": "json"});
    let array: Vec<Json> =
        serde_json::from_slice(&ok_body(call(&app, &key, literal).await).await).unwrap();
    assert_eq!(array, rows);

    // CSV holds the first result set only.
    let response = call(&app, &key, json!({"procedure": "visit_report", "args": ["2024-06-01", 100], "format": "csv", "compression": "zip"})).await;
    assert_eq!(response.headers()["x-cipherstream-result-sets"], "first");
    let csv = unpack("zip", &ok_body(response).await);
    let mut reader = csv::Reader::from_reader(&csv[..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["visits", "total"]
    );
    assert_eq!(reader.records().count(), 1);

    // A function is SELECTed.
    let body = ok_body(
        call(
            &app,
            &key,
            json!({"procedure": "fee_with_gst", "args": [10]}),
        )
        .await,
    )
    .await;
    assert_eq!(body, b"{\"result_set\":0,\"fee_with_gst\":11.00}\n");
}

#[tokio::test]
async fn postgres_functions_are_selected_and_procedures_called() {
    let Some(url) = postgres_fixture("call").await else {
        return;
    };
    let app = TestApp::spawn().await;
    let (key, _) = app.create_customer("adv-call-postgres", &url).await;
    let expected = direct_count(
        &url,
        "SELECT COUNT(*) FROM visits WHERE seen_on >= '2024-06-01' AND fee >= 100",
    )
    .await;
    // JSON numbers and strings are cast to the declared date and numeric parameters.
    let body = ok_body(
        call(
            &app,
            &key,
            json!({"statement": "CALL visits_since(?, ?)", "params": ["2024-06-01", 100]}),
        )
        .await,
    )
    .await;
    let rows = ndjson(&body);
    assert_eq!(rows.len() as i64, expected);
    let first = &rows[0];
    assert_eq!(first["result_set"], 0);
    assert_eq!(first["seen_on"], "2024-06-01");
    assert!(first["fee"].is_number());
    // uuid has no typed form here: it comes out as its text.
    assert_eq!(first["ref"].as_str().unwrap().len(), 36);

    let csv = ok_body(call(&app, &key, json!({"procedure": "public.visits_since", "args": ["2024-06-01", 100.5], "format": "csv"})).await).await;
    let mut reader = csv::Reader::from_reader(&csv[..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["id", "patient", "seen_on", "fee", "ref"]
    );
    assert_eq!(reader.records().count() as i64, expected);

    // A procedure returns one row of its INOUT parameters.
    let rows = ndjson(
        &ok_body(call(&app, &key, json!({"statement": "CALL count_visits(NULL)"})).await).await,
    );
    assert_eq!(rows, vec![json!({"result_set": 0, "n": VISITS})]);
}

#[tokio::test]
async fn routines_that_write_fail_cleanly_and_change_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Option<String>, Vec<Json>)> = vec![
        (
            "mariadb",
            mariadb_fixture("write").await,
            vec![
                json!({"statement": "CALL log_then_list()"}),
                json!({"procedure": "purge_visits"}),
                json!({"procedure": "unlock_and_write"}),
            ],
        ),
        (
            "postgres",
            postgres_fixture("write").await,
            vec![
                json!({"statement": "CALL log_visit(?)", "params": [7]}),
                json!({"procedure": "purge_visits"}),
                json!({"procedure": "commit_and_write"}),
            ],
        ),
    ];
    for (label, url, calls) in cases {
        let Some(url) = url else { continue };
        let (key, _) = app
            .create_customer(&format!("adv-write-{label}"), &url)
            .await;
        for body in calls {
            // A problem naming the read-only session, never a 500 and never a partial file.
            let problem = expect_problem(call(&app, &key, body.clone()).await, 422).await;
            let detail = problem["detail"].as_str().unwrap();
            assert!(detail.contains("read-only"), "{label} {body}: {detail}");
        }
        assert_eq!(
            direct_count(&url, "SELECT COUNT(*) FROM visits").await,
            VISITS,
            "{label}"
        );
        assert_eq!(
            direct_count(&url, "SELECT COUNT(*) FROM audit_log").await,
            0,
            "{label}"
        );
        // The pool is still read-only for the next caller.
        let response = call(&app, &key, json!({"procedure": "purge_visits"})).await;
        expect_problem(response, 422).await;
        assert_eq!(
            direct_count(&url, "SELECT COUNT(*) FROM visits").await,
            VISITS,
            "{label}"
        );
    }
}

/// A call body, the status it gets and the field named (empty: none).
type Refusal = (Json, u16, &'static str);

#[tokio::test]
async fn calls_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    let (key, _) = app
        .create_customer("adv-call-sqlite", &practices().sqlite)
        .await;
    let problem = expect_problem(
        call(&app, &key, json!({"procedure": "anything"})).await,
        422,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("SQLite"),
        "{problem}"
    );

    let cases: Vec<(&str, Option<String>, Vec<Refusal>)> = vec![
        (
            "mariadb",
            mariadb_fixture("refuse").await,
            vec![
                (json!({"procedure": "no_such_routine"}), 404, ""),
                (json!({"procedure": "mysql.no_such_routine"}), 404, ""),
                (
                    json!({"procedure": "sys.ps_setup_reset_to_default", "args": [false]}),
                    404,
                    "",
                ),
                (
                    json!({"statement": "CALL visit_report(?)", "params": ["2024-01-01"]}),
                    400,
                    "params",
                ),
                (
                    json!({"procedure": "visit_report", "args": []}),
                    400,
                    "args",
                ),
                (json!({"procedure": "declared_writer"}), 422, ""),
                (json!({"procedure": "with_out", "args": [null]}), 422, ""),
            ],
        ),
        (
            "postgres",
            postgres_fixture("refuse").await,
            vec![
                (json!({"procedure": "no_such_routine"}), 404, ""),
                (
                    json!({"procedure": "pg_catalog.pg_sleep", "args": [1]}),
                    404,
                    "",
                ),
                (
                    json!({"procedure": "pg_terminate_backend", "args": [1]}),
                    404,
                    "",
                ),
                (
                    json!({"statement": "CALL visits_since(?)", "params": ["2024-01-01"]}),
                    400,
                    "params",
                ),
            ],
        ),
    ];
    for (label, url, calls) in cases {
        let Some(url) = url else { continue };
        let (key, _) = app
            .create_customer(&format!("adv-refuse-{label}"), &url)
            .await;
        for (body, status, field) in calls {
            let problem = expect_problem(call(&app, &key, body.clone()).await, status).await;
            if !field.is_empty() {
                assert_eq!(
                    problem["errors"][0]["field"], field,
                    "{label} {body}: {problem}"
                );
                assert!(
                    problem["detail"].as_str().unwrap().contains("argument"),
                    "{problem}"
                );
            }
        }
    }
}

#[tokio::test]
async fn advanced_requests_stop_at_the_configured_time_limit() {
    let Some(url) = postgres_fixture("timeout").await else {
        return;
    };
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION slow_rows() RETURNS TABLE(n integer) AS $$ SELECT 1 FROM pg_sleep(5) $$ LANGUAGE sql STABLE",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let app = TestApp::spawn_with(crate::helpers::MetaBackend::Sqlite, |c| {
        c.advanced_timeout_seconds = 1
    })
    .await
    .unwrap();
    let (key, _) = app.create_customer("adv-timeout", &url).await;
    let started = std::time::Instant::now();
    let response = call(&app, &key, json!({"procedure": "slow_rows", "args": []})).await;
    let problem = expect_problem(response, 504).await;
    assert!(
        started.elapsed() < std::time::Duration::from_millis(4500),
        "the 5 s query was not stopped"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains('1'),
        "{problem}"
    );
    // The source is not left running it: it stops well before the 5 s sleep would end
    // (cancelling a backend takes a moment after the answer).
    let mut running: i64 = -1;
    while started.elapsed() < std::time::Duration::from_millis(4000) {
        running = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%slow_rows%' AND state = 'active' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if running == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(running, 0, "the 5 s query still runs on the source");
}
