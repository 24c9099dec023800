//! Injection attempts in table names, columns, date_column and CALL statements and
//! arguments are refused before any of them is executed, and the sources are unchanged.

use serde_json::{json, Value as Json};

use super::{call, direct_count, mariadb_fixture, postgres_fixture, VISITS};
use crate::helpers::{expect_problem, practices, TestApp};

/// Percent-encodes everything but ASCII letters, digits and `_`.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Table names that must never reach SQL: each answers 404 (no such table) or 400.
fn hostile_tables(table: &str) -> Vec<String> {
    vec![
        format!("{table}; DROP TABLE {table}"),
        format!("{table}' OR '1'='1"),
        format!("{table}--"),
        format!("{table}/**/"),
        format!("`{table}`"),
        format!("\"{table}\""),
        format!("{table} UNION SELECT * FROM {table}"),
        table
            .replacen('a', "\u{430}", 1)
            .replacen('i', "\u{456}", 1), // Cyrillic look-alikes
        format!("{table}\u{37e}"), // Greek question mark, looks like ;
        table
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
            .collect(), // fullwidth
        table.to_uppercase(),
        "x".repeat(200),
    ]
}

fn hostile_columns(column: &str) -> Vec<String> {
    vec![
        format!("{column};DROP TABLE x"),
        format!("{column},(SELECT 1)"),
        format!("\"{column}\""),
        format!("`{column}`"),
        format!("{column}--"),
        format!("{column} UNION SELECT 1"),
        "*".to_string(),
        format!("{column},"),
        column
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
            .collect(),
        "y".repeat(300),
    ]
}

fn hostile_date_columns(column: &str) -> Vec<String> {
    vec![
        format!("{column} OR 1=1"),
        format!("{column};DELETE FROM x"),
        format!("\"{column}\""),
        format!("{column}--"),
        format!("(SELECT {column})"),
    ]
}

fn hostile_calls() -> Vec<(Json, &'static str)> {
    let long = format!("CALL {}()", "p".repeat(100));
    vec![
        (
            json!({"statement": "CALL visit_report('2024-01-01', 1); DELETE FROM visits"}),
            "statement",
        ),
        (
            json!({"statement": "CALL purge_visits() -- x"}),
            "statement",
        ),
        (json!({"statement": "CALL purge_visits() #"}), "statement"),
        (
            json!({"statement": "CALL visit_report('2024-01-01' /* x */, 1)"}),
            "statement",
        ),
        (
            json!({"statement": "CALL visit_report('x'' OR 1=1', 1)"}),
            "statement",
        ),
        (
            json!({"statement": "CALL visit_report('x\\' OR 1=1 -- ', 1)"}),
            "statement",
        ),
        (
            json!({"statement": "CALL visit_report(?, ?) UNION SELECT 1", "params": ["2024-01-01", 1]}),
            "statement",
        ),
        (json!({"statement": "CALL `purge_visits`()"}), "statement"),
        (json!({"statement": "CALL \"purge_visits\"()"}), "statement"),
        (
            json!({"statement": "CALL v\u{456}sit_report(?, ?)", "params": ["2024-01-01", 1]}),
            "statement",
        ),
        (
            json!({"statement": "CALL visit_report(?, (SELECT 1))", "params": ["2024-01-01"]}),
            "statement",
        ),
        (json!({"statement": "DELETE FROM visits"}), "statement"),
        (json!({"statement": long}), "statement"),
        (
            json!({"statement": "CALL visit_report(?, ?)", "params": ["2024-01-01'; DELETE FROM visits; --", 1]}),
            "params",
        ),
        (
            json!({"statement": "CALL visit_report(?, ?)", "params": ["2024-01-01", "1 OR 1=1"]}),
            "params",
        ),
        (
            json!({"statement": "CALL visit_report(?, ?)", "params": ["2024-01-01\"", 1]}),
            "params",
        ),
        (
            json!({"statement": "CALL visit_report(?, ?)", "params": ["2024-01-01/*", 1]}),
            "params",
        ),
        (
            json!({"statement": "CALL visit_report(?, ?)", "params": ["`x`", 1]}),
            "params",
        ),
        (json!({"procedure": "purge_visits; SELECT 1"}), "procedure"),
        (json!({"procedure": "purge_visits()"}), "procedure"),
        (json!({"procedure": "`purge_visits`"}), "procedure"),
        (json!({"procedure": "a.b.purge_visits"}), "procedure"),
        (
            json!({"procedure": "visit_report", "args": ["2024-01-01\u{ff07} OR 1=1", 1]}),
            "args",
        ),
        (
            json!({"procedure": "visit_report", "args": ["2024-01-01", {"$gt": 1}]}),
            "args",
        ),
    ]
}

/// What must not change: (description, SQL giving a number).
fn watched(label: &str) -> Vec<(&'static str, &'static str)> {
    match label {
        "sqlite" => vec![
            ("patients", "SELECT COUNT(*) FROM patients"),
            ("appointments", "SELECT COUNT(*) FROM appointments"),
            ("tables", "SELECT COUNT(*) FROM sqlite_master"),
        ],
        "mariadb" => vec![
            ("visits", "SELECT COUNT(*) FROM visits"),
            ("audit_log", "SELECT COUNT(*) FROM audit_log"),
            (
                "tables",
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
            ),
        ],
        _ => vec![
            ("visits", "SELECT COUNT(*) FROM visits"),
            ("audit_log", "SELECT COUNT(*) FROM audit_log"),
            (
                "tables",
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            ),
        ],
    }
}

async fn snapshot(label: &str, url: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for (_, sql) in watched(label) {
        out.push(direct_count(url, sql).await);
    }
    out
}

#[tokio::test]
async fn injection_attempts_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mut sources = vec![(
        "sqlite",
        practices().sqlite.clone(),
        "patients",
        "id",
        "created_at",
    )];
    if let Some(url) = mariadb_fixture("inject").await {
        sources.push(("mariadb", url, "visits", "id", "seen_on"));
    }
    if let Some(url) = postgres_fixture("inject").await {
        sources.push(("postgres", url, "visits", "id", "seen_on"));
    }
    for (label, url, table, column, date_column) in sources {
        let before = snapshot(label, &url).await;
        let (key, _) = app
            .create_customer(&format!("adv-inject-{label}"), &url)
            .await;

        send_corpus(&app, &key, label, table, column, date_column).await;

        let after = snapshot(label, &url).await;
        assert_eq!(before, after, "{label}: {:?}", watched(label));
        if label != "sqlite" {
            assert_eq!(after[0], VISITS);
            assert_eq!(after[1], 0);
        }
    }
}

/// Sends every hostile table name, column, date column, date, limit and call; each must
/// be refused with the field named.
async fn send_corpus(
    app: &TestApp,
    key: &str,
    label: &str,
    table: &str,
    column: &str,
    date_column: &str,
) {
    for name in hostile_tables(table) {
        let response = app
            .get(key, &format!("/v1/advanced/tables/{}", encode(&name)))
            .await;
        let status = response.status().as_u16();
        assert!(
            status == 404 || status == 400,
            "{label} table {name:?}: {status}"
        );
        let problem = expect_problem(response, status).await;
        // The answer names no other table of the source.
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            !detail.contains("audit_log") && !detail.contains("appointments"),
            "{detail}"
        );
    }
    let base = format!("/v1/advanced/tables/{table}");
    let mut cases: Vec<(String, &str)> = Vec::new();
    for value in hostile_columns(column) {
        cases.push((format!("columns={}", encode(&value)), "columns"));
    }
    for value in hostile_date_columns(date_column) {
        cases.push((
            format!("date_column={}&from_date=2024-01-01", encode(&value)),
            "date_column",
        ));
    }
    cases.push((
        format!(
            "date_column={date_column}&from_date={}",
            encode("2024-01-01' OR '1'='1")
        ),
        "from_date",
    ));
    cases.push((format!("limit={}", encode("1; DROP TABLE x")), "limit"));
    cases.push((format!("{}=1", encode("1=1) OR (1")), "1=1) OR (1"));
    for (query, field) in cases {
        let problem = expect_problem(app.get(key, &format!("{base}?{query}")).await, 400).await;
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{label} {query}: {problem}"
        );
    }
    for (body, field) in hostile_calls() {
        let problem = expect_problem(call(app, key, body.clone()).await, 400).await;
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{label} {body}: {problem}"
        );
    }
}

#[tokio::test]
async fn mariadbs_query_log_shows_only_catalog_lookups_for_hostile_input() {
    let Some(url) = mariadb_fixture("inject-log").await else {
        return;
    };
    let _log = crate::helpers::GENERAL_LOG.lock().await;
    let mut admin =
        <sqlx::MySqlConnection as sqlx::Connection>::connect(&crate::helpers::mysql_base())
            .await
            .unwrap();
    let database = url.rsplit('/').next().unwrap().to_string();
    let user = format!("cs_advprobe_{}", std::process::id());
    for sql in [
        format!("DROP USER IF EXISTS '{user}'@'%'"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'probe-pw'"),
        format!("GRANT SELECT, EXECUTE, SHOW VIEW ON `{database}`.* TO '{user}'@'%'"),
        "SET GLOBAL log_output = 'TABLE'".to_string(),
        "SET GLOBAL general_log = 'ON'".to_string(),
    ] {
        sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap();
    }
    let app = TestApp::spawn().await;
    let source = format!("mysql://{user}:probe-pw@127.0.0.1:3306/{database}");
    let (key, _) = app.create_customer("adv-inject-log", &source).await;
    send_corpus(&app, &key, "mariadb", "visits", "id", "seen_on").await;
    let logged: Vec<String> = sqlx::query_scalar(
        "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log \
         WHERE LOCATE(?, user_host) = 1 AND command_type IN ('Query', 'Execute')",
    )
    .bind(format!("{user}["))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    for sql in [
        "SET GLOBAL general_log = 'OFF'".to_string(),
        format!("DROP USER IF EXISTS '{user}'@'%'"),
    ] {
        sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap();
    }
    // Table names are checked against the catalog: the lookups are all the source saw.
    assert!(
        logged
            .iter()
            .any(|s| s.to_lowercase().contains("information_schema")),
        "the catalog lookups are logged: {logged:?}"
    );
    for statement in &logged {
        // Bound values appear in the log as quoted literals: judge the SQL around them.
        let text = without_literals(statement).to_lowercase();
        let touches_data = [
            "from `visits`",
            "from visits",
            "from `audit_log`",
            "from audit_log",
        ]
        .iter()
        .any(|t| text.contains(t));
        let runs_something = ["call ", "delete ", "drop ", "update ", "insert ", "union "]
            .iter()
            .any(|t| text.trim_start().starts_with(t));
        assert!(
            !touches_data && !runs_something,
            "a hostile request reached the source: {statement}"
        );
    }
}

/// The statement with the contents of its '…' literals removed (`''` and `\'` escapes).
fn without_literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '\'' {
            continue;
        }
        while let Some(inner) = chars.next() {
            match inner {
                '\\' => {
                    chars.next();
                }
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                '\'' => {
                    out.push('\'');
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn literals_are_blanked_out() {
    assert_eq!(
        without_literals("SELECT 1 WHERE a = 'x'' FROM visits' AND b = 'y\\' OR 1' ORDER BY a"),
        "SELECT 1 WHERE a = '' AND b = '' ORDER BY a"
    );
}
