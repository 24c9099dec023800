//! Advanced tools against real databases: direct table access on SQLite (the practice),
//! MariaDB and PostgreSQL (fresh databases with their own tables, views and routines),
//! stored-routine calls, read-only enforcement and injection attempts.

mod call;
mod injection;
mod tables;

use std::io::Read;
use std::time::Duration;

use serde_json::Value as Json;
use sqlx::Connection;

use crate::helpers::{fresh_database, mysql_base, postgres_base, unavailable, TestApp};

/// Rows in the fixture's `visits` table.
pub const VISITS: i64 = 300;

const MARIADB_FIXTURE: &[&str] = &[
    "CREATE TABLE visits (id INT PRIMARY KEY, patient VARCHAR(60) NOT NULL, seen_on DATE NOT NULL, \
     seen_at DATETIME NOT NULL, fee DECIMAL(10,2), paid TINYINT(1) NOT NULL, note TEXT, ratio DOUBLE, at_time TIME)",
    "INSERT INTO visits SELECT seq, CONCAT('Patient ', seq), DATE_ADD('2024-01-01', INTERVAL seq DAY), \
     DATE_ADD('2024-01-01 00:00:00', INTERVAL seq * 7 HOUR), seq * 1.25, seq % 2, \
     IF(seq % 10 = 0, NULL, CONCAT('note ', seq)), seq / 3, SEC_TO_TIME(seq * 60) FROM seq_1_to_300",
    "CREATE VIEW paid_visits AS SELECT id, patient, fee FROM visits WHERE paid = 1",
    "CREATE TABLE audit_log (id INT PRIMARY KEY, msg VARCHAR(100))",
    "CREATE PROCEDURE visit_report(IN since DATE, IN min_fee DECIMAL(10,2)) BEGIN \
     SELECT COUNT(*) AS visits, SUM(fee) AS total FROM visits WHERE seen_on >= since AND fee >= min_fee; \
     SELECT id, patient, seen_on, fee FROM visits WHERE seen_on >= since AND fee >= min_fee ORDER BY id LIMIT 3; END",
    "CREATE PROCEDURE log_then_list() BEGIN INSERT INTO audit_log VALUES (1, 'written'); SELECT id FROM visits; END",
    "CREATE PROCEDURE purge_visits() BEGIN DELETE FROM visits; END",
    "CREATE PROCEDURE unlock_and_write() BEGIN SET SESSION TRANSACTION READ WRITE; \
     INSERT INTO audit_log VALUES (2, 'escaped'); SELECT 1 AS done; END",
    "CREATE PROCEDURE declared_writer() MODIFIES SQL DATA BEGIN SELECT 1 AS one; END",
    "CREATE PROCEDURE with_out(OUT n INT) BEGIN SET n = 1; END",
    "CREATE FUNCTION fee_with_gst(fee DECIMAL(10,2)) RETURNS DECIMAL(10,2) DETERMINISTIC RETURN fee * 1.1",
];

const POSTGRES_FIXTURE: &[&str] = &[
    "CREATE TABLE visits (id INTEGER PRIMARY KEY, patient VARCHAR(60) NOT NULL, seen_on DATE NOT NULL, \
     seen_at TIMESTAMP NOT NULL, logged_at TIMESTAMPTZ NOT NULL, fee NUMERIC(10,2), paid BOOLEAN NOT NULL, \
     note TEXT, ratio DOUBLE PRECISION, ref UUID)",
    "INSERT INTO visits SELECT n, 'Patient ' || n, DATE '2024-01-01' + n, \
     TIMESTAMP '2024-01-01 00:00:00' + n * INTERVAL '7 hours', TIMESTAMPTZ '2024-01-01 00:00:00+00' + n * INTERVAL '5 hours', \
     n * 1.25, n % 2 = 1, CASE WHEN n % 10 = 0 THEN NULL ELSE 'note ' || n END, n / 3.0, md5(n::text)::uuid \
     FROM generate_series(1, 300) AS n",
    "CREATE VIEW paid_visits AS SELECT id, patient, fee FROM visits WHERE paid",
    "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, msg VARCHAR(100))",
    "CREATE FUNCTION visits_since(since date, min_fee numeric) \
     RETURNS TABLE (id integer, patient varchar, seen_on date, fee numeric, ref uuid) LANGUAGE sql STABLE AS \
     $$ SELECT v.id, v.patient, v.seen_on, v.fee, v.ref FROM visits v WHERE v.seen_on >= since AND v.fee >= min_fee ORDER BY v.id $$",
    "CREATE FUNCTION log_visit(n integer) RETURNS integer LANGUAGE plpgsql AS \
     $$ BEGIN INSERT INTO audit_log VALUES (n, 'written'); RETURN n; END $$",
    "CREATE PROCEDURE purge_visits() LANGUAGE sql AS $$ DELETE FROM visits $$",
    "CREATE PROCEDURE count_visits(INOUT n bigint) LANGUAGE plpgsql AS \
     $$ BEGIN SELECT count(*) INTO n FROM visits; END $$",
    "CREATE PROCEDURE commit_and_write() LANGUAGE plpgsql AS \
     $$ BEGIN COMMIT; SET default_transaction_read_only = off; INSERT INTO audit_log VALUES (2, 'escaped'); COMMIT; END $$",
];

/// A fresh database named after this process (so the harness sweeps it when the process is gone).
fn database_name(tag: &str) -> String {
    format!(
        "cs_it_practice_{}_adv_{tag}_{}",
        std::process::id(),
        cipherstream::crypto::random_hex(3)
    )
}

/// A fresh MariaDB database holding the fixture; `None` when MariaDB is not available outside CI.
pub async fn mariadb_fixture(tag: &str) -> Option<String> {
    let url = match fresh_database(&mysql_base(), &database_name(tag)).await {
        Ok(url) => url,
        Err(e) => return unavailable("MariaDB", e).map(|_| unreachable!()),
    };
    let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
    for statement in MARIADB_FIXTURE {
        sqlx::raw_sql(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    Some(url)
}

/// A fresh PostgreSQL database holding the fixture, its sessions in a non-UTC time zone.
pub async fn postgres_fixture(tag: &str) -> Option<String> {
    let name = database_name(tag);
    let url = match fresh_database(&postgres_base(), &name).await {
        Ok(url) => url,
        Err(e) => return unavailable("PostgreSQL", e).map(|_| unreachable!()),
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!(
        "ALTER DATABASE \"{name}\" SET timezone TO 'Australia/Sydney'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    for statement in POSTGRES_FIXTURE {
        sqlx::raw_sql(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    Some(url)
}

/// One number from the source, queried directly (not through CipherStream).
pub async fn direct_count(url: &str, sql: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// GET with an API key, returning the status and the body.
pub async fn get(app: &TestApp, key: &str, path: &str) -> (u16, Vec<u8>) {
    let response = app.get(key, path).await;
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// POST /v1/advanced/call with a JSON body.
pub async fn call(app: &TestApp, key: &str, body: Json) -> reqwest::Response {
    app.client
        .post(app.url("/v1/advanced/call"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The objects of an NDJSON body.
pub fn ndjson(body: &[u8]) -> Vec<Json> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The decompressed content of a gzip or zip body.
pub fn unpack(compression: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match compression {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zip" => {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body.to_vec())).unwrap();
            archive.by_index(0).unwrap().read_to_end(&mut out).unwrap();
        }
        _ => out = body.to_vec(),
    }
    out
}

/// Rows in a Parquet file.
pub fn parquet_rows(body: Vec<u8>) -> usize {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum()
}

/// Polls a job until it is completed, failed or cancelled.
pub async fn wait_final(app: &TestApp, key: &str, job_id: &str) -> Json {
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
