//! Bad input is refused with problem+json naming the field, and nothing reaches the
//! practice database: MariaDB's own general query log proves it.

use sqlx::Connection;

use crate::helpers::{expect_problem, mysql_base, practices, TestApp};

/// (request path or body, expected status, field named in `errors`).
fn bad_gets() -> Vec<(&'static str, u16, &'static str)> {
    vec![
        ("/v1/extract/no_such_procedure", 404, ""),
        ("/v1/extract/appointments;DROP%20TABLE%20patients", 404, ""),
        (
            "/v1/extract/appointments?from_date=2024-13-01",
            400,
            "from_date",
        ),
        (
            "/v1/extract/appointments?from_date=yesterday",
            400,
            "from_date",
        ),
        (
            "/v1/extract/appointments?to_date=2024-02-30",
            400,
            "to_date",
        ),
        (
            "/v1/extract/appointments?from_date=2024-05-01&to_date=2024-04-30",
            400,
            "to_date",
        ),
        (
            "/v1/extract/appointments?from_date=2024-05-01T10:00:00Z&to_date=2024-05-01T09:59:59Z",
            400,
            "to_date",
        ),
        (
            "/v1/extract/appointments?date_modifier=Bogus",
            400,
            "date_modifier",
        ),
        (
            "/v1/extract/appointments?columns=appointment_id,nope",
            400,
            "columns",
        ),
        (
            "/v1/extract/appointments?columns=appointment_id,appointment_id",
            400,
            "columns",
        ),
        ("/v1/extract/appointments?shoe_size=9", 400, "shoe_size"),
        ("/v1/extract/appointments?format=xml", 400, "format"),
        (
            "/v1/extract/appointments?compression=rar",
            400,
            "compression",
        ),
        ("/v1/extract/appointments?mode=fast", 400, "mode"),
        ("/v1/extract/appointments?limit=0", 400, "limit"),
        ("/v1/extract/appointments?limit=10000001", 400, "limit"),
        ("/v1/extract/appointments?limit=-1", 400, "limit"),
        ("/v1/extract/appointments?limit=1&limit=2", 400, "limit"),
        (
            "/v1/extract/appointments?location_id=abc",
            400,
            "location_id",
        ),
        // SQL text in every kind of parameter.
        (
            "/v1/extract/appointments?from_date=2024-01-01%27%20OR%201%3D1%20--",
            400,
            "from_date",
        ),
        (
            "/v1/extract/appointments?to_date=2024-01-01%3B%20DELETE%20FROM%20patients",
            400,
            "to_date",
        ),
        (
            "/v1/extract/appointments?date_modifier=Created%3B%20DELETE%20FROM%20patients",
            400,
            "date_modifier",
        ),
        (
            "/v1/extract/appointments?columns=appointment_id%3BDROP%20TABLE%20patients",
            400,
            "columns",
        ),
        (
            "/v1/extract/appointments?columns=(SELECT%20password%20FROM%20users)",
            400,
            "columns",
        ),
        (
            "/v1/extract/appointments?practitioner_id=1%20OR%201%3D1",
            400,
            "practitioner_id",
        ),
        ("/v1/extract/appointments?format=csv%27%3B--", 400, "format"),
        (
            "/v1/extract/appointments?limit=1%3B%20DROP%20TABLE%20x",
            400,
            "limit",
        ),
        ("/v1/extract/appointments?1%3D1=1", 400, "1=1"),
    ]
}

fn bad_posts() -> Vec<(&'static str, u16, &'static str)> {
    vec![
        ("{not json", 400, "body"),
        ("[1, 2, 3]", 400, "body"),
        ("{\"filters\": [1]}", 400, "filters"),
        ("{\"limit\": {\"$gt\": 1}}", 400, "limit"),
        ("{\"limit\": 0}", 400, "limit"),
        (
            "{\"columns\": [\"appointment_id\", \"1; DROP TABLE patients\"]}",
            400,
            "columns",
        ),
        (
            "{\"from_date\": \"2024-01-01' OR '1'='1\"}",
            400,
            "from_date",
        ),
        (
            "{\"practitioner_id\": \"1 UNION SELECT 1\"}",
            400,
            "practitioner_id",
        ),
    ]
}

async fn assert_all_refused(app: &TestApp, key: &str) {
    for (path, status, field) in bad_gets() {
        let problem = expect_problem(app.get(key, path).await, status).await;
        if !field.is_empty() {
            let fields: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["field"].as_str().unwrap())
                .collect();
            assert!(
                fields.contains(&field),
                "{path}: expected field {field}, got {problem}"
            );
        }
        if status == 404 {
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("accepted values"),
                "{problem}"
            );
        }
    }
    for (body, status, field) in bad_posts() {
        let response = app
            .client
            .post(app.url("/v1/extract/appointments"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, status).await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    // Messages name the accepted values.
    let problem = expect_problem(
        app.get(key, "/v1/extract/appointments?format=xml").await,
        400,
    )
    .await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ndjson, json, csv, parquet"),
        "{problem}"
    );
    let problem = expect_problem(
        app.get(key, "/v1/extract/appointments?date_modifier=Bogus")
            .await,
        400,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("AppointmentDate"),
        "{problem}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_on_sqlite() {
    let app = TestApp::spawn().await;
    let (key, _) = app.create_customer("bad-sqlite", &practices().sqlite).await;
    assert_all_refused(&app, &key).await;
    // Missing or wrong keys never reach validation either.
    expect_problem(
        app.client
            .get(app.url("/v1/extract/appointments?format=xml"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
}

/// Statements the probe user has sent, according to MariaDB's general query log.
async fn logged_statements(admin: &mut sqlx::MySqlConnection, user: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM mysql.general_log WHERE LOCATE(?, user_host) = 1")
        .bind(format!("{user}["))
        .fetch_one(&mut *admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_input_never_reaches_mariadb() {
    let Some(practice_url) = practices().mysql.clone() else {
        return;
    };
    let _log = crate::helpers::GENERAL_LOG.lock().await;
    let mut admin = sqlx::MySqlConnection::connect(&mysql_base()).await.unwrap();
    let database = practice_url.rsplit('/').next().unwrap().to_string();
    let user = format!("cs_probe_{}", std::process::id());
    for sql in [
        format!("DROP USER IF EXISTS '{user}'@'%'"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'probe-pw'"),
        format!("GRANT SELECT ON `{database}`.* TO '{user}'@'%'"),
        "SET GLOBAL log_output = 'TABLE'".to_string(),
        "SET GLOBAL general_log = 'ON'".to_string(),
    ] {
        sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap();
    }
    let patients_before: i64 =
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{database}`.patients"))
            .fetch_one(&mut admin)
            .await
            .unwrap();

    let app = TestApp::spawn().await;
    let source = format!("mysql://{user}:probe-pw@127.0.0.1:3306/{database}");
    let (key, _) = app.create_customer("bad-mariadb", &source).await;
    // A good request first: the log must see it, or the proof below would be empty.
    assert_eq!(
        logged_statements(&mut admin, &user).await,
        0,
        "the pool connects lazily"
    );
    let good = app.get(&key, "/v1/extract/appointments?limit=5").await;
    assert_eq!(good.status(), 200);
    // The rows stream after the headers: read them all before counting.
    assert_eq!(good.text().await.unwrap().lines().count(), 5);
    let after_good = logged_statements(&mut admin, &user).await;
    assert!(
        after_good > 0,
        "the general log records the probe user's statements"
    );

    assert_all_refused(&app, &key).await;

    let after_bad = logged_statements(&mut admin, &user).await;
    assert_eq!(
        after_bad, after_good,
        "a refused request sent statements to the practice database"
    );
    let patients_after: i64 =
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM `{database}`.patients"))
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(patients_before, patients_after);

    // The session is read-only: even a statement smuggled past us could not write.
    let mut probe = sqlx::MySqlConnection::connect(&source).await.unwrap();
    sqlx::raw_sql("SET SESSION TRANSACTION READ ONLY")
        .execute(&mut probe)
        .await
        .unwrap();
    assert!(sqlx::raw_sql("DELETE FROM patients")
        .execute(&mut probe)
        .await
        .is_err());

    sqlx::raw_sql("SET GLOBAL general_log = 'OFF'")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("DROP USER IF EXISTS '{user}'@'%'"))
        .execute(&mut admin)
        .await
        .unwrap();
}
