//! Every procedure returns exactly what a direct SQL query over the practice schema
//! returns, on SQLite, MariaDB and PostgreSQL, in every format and compression.

use std::io::Read;

use chrono::{Duration, Utc};
use cipherstream::catalog::{Catalog, DateKind, Procedure};
use cipherstream::dialect::Dialect;
use cipherstream::value::ColumnType;
use serde_json::Value as Json;

use crate::helpers::{practices, TestApp};

type Rows = Vec<Vec<String>>;

/// The canonical text of a value as the API returned it in JSON.
fn api_cell(ty: ColumnType, value: &Json) -> String {
    match (ty, value) {
        (_, Json::Null) => "null".into(),
        (ColumnType::Decimal, Json::Number(n)) => format!("{:.2}", n.as_f64().unwrap()),
        (_, Json::Number(n)) => n.to_string(),
        (_, Json::Bool(b)) => b.to_string(),
        (ColumnType::Timestamp, Json::String(s)) => {
            assert!(s.ends_with('Z'), "timestamps are UTC with Z: {s}");
            s.trim_end_matches('Z').to_string()
        }
        (_, Json::String(s)) => s.clone(),
        (_, other) => panic!("unexpected JSON value {other}"),
    }
}

/// The canonical text of a value read as text straight from the database.
fn direct_cell(ty: ColumnType, text: Option<String>) -> String {
    let Some(text) = text else {
        return "null".into();
    };
    match ty {
        // SQLite sums of REAL money can land a hair below zero; the API writes 0.00.
        ColumnType::Decimal => {
            format!("{:.2}", text.parse::<f64>().unwrap()).replace("-0.00", "0.00")
        }
        ColumnType::Integer => text
            .parse::<f64>()
            .map(|f| (f as i64).to_string())
            .unwrap_or(text),
        ColumnType::Boolean => matches!(text.as_str(), "1" | "t" | "true").to_string(),
        ColumnType::Date => text[..10].to_string(),
        ColumnType::Datetime | ColumnType::Timestamp => text[..19].replace(' ', "T"),
        ColumnType::String => text,
    }
}

fn dialect_of(url: &str) -> Dialect {
    Dialect::from_url(url).unwrap()
}

/// The procedure's query written out by hand with literal dates, every column cast to text.
fn direct_sql(
    procedure: &Procedure,
    dialect: Dialect,
    range: Option<(&str, &str, &str)>,
) -> String {
    let text_type = if dialect == Dialect::Mysql {
        "CHAR"
    } else {
        "TEXT"
    };
    let select: Vec<String> = procedure
        .columns
        .iter()
        .map(|c| format!("CAST({} AS {text_type})", c.expr_for(dialect)))
        .collect();
    let mut sql = format!(
        "SELECT {} FROM {}",
        select.join(", "),
        procedure.from_for(dialect)
    );
    if let Some((modifier, from, to)) = range {
        let m = procedure.date_modifier(modifier).unwrap();
        let next_day = (chrono::NaiveDate::parse_from_str(to, "%Y-%m-%d").unwrap()
            + Duration::days(1))
        .to_string();
        match m.kind {
            DateKind::Date => sql.push_str(&format!(
                " WHERE {} >= '{from}' AND {} <= '{to}'",
                m.expr, m.expr
            )),
            _ => sql.push_str(&format!(
                " WHERE {} >= '{from} 00:00:00' AND {} < '{next_day} 00:00:00'",
                m.expr, m.expr
            )),
        }
    }
    if let Some(group_by) = procedure
        .group_by
        .as_deref()
        .filter(|g| !g.trim().is_empty())
    {
        sql.push_str(&format!(" GROUP BY {group_by}"));
    }
    sql.push_str(&format!(" ORDER BY {}", procedure.order_by));
    sql
}

async fn direct_rows(url: &str, procedure: &Procedure, range: Option<(&str, &str, &str)>) -> Rows {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let sql = direct_sql(procedure, dialect_of(url), range);
    let rows = sqlx::query(&sql)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|row| {
            procedure
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    use sqlx::ValueRef;
                    // SQLite reports a NULL's type as BLOB to the Any driver; check NULL first.
                    let text = if row.try_get_raw(i).unwrap().is_null() {
                        None
                    } else {
                        Some(
                            // MariaDB hands CAST(… AS CHAR) of some expressions over as binary.
                            row.try_get_unchecked::<String, _>(i)
                                .or_else(|_| {
                                    row.try_get_unchecked::<Vec<u8>, _>(i)
                                        .map(|b| String::from_utf8(b).unwrap())
                                })
                                .unwrap(),
                        )
                    };
                    direct_cell(c.ty, text)
                })
                .collect()
        })
        .collect()
}

fn json_rows(procedure: &Procedure, objects: &[Json]) -> Rows {
    objects
        .iter()
        .map(|o| {
            let o = o.as_object().unwrap();
            assert_eq!(o.len(), procedure.columns.len());
            procedure
                .columns
                .iter()
                .map(|c| api_cell(c.ty, &o[&c.name]))
                .collect()
        })
        .collect()
}

fn parse_ndjson(procedure: &Procedure, body: &[u8]) -> Rows {
    let objects: Vec<Json> = std::str::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    json_rows(procedure, &objects)
}

fn parse_csv(procedure: &Procedure, body: &[u8]) -> Rows {
    let mut reader = csv::Reader::from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let names: Vec<&str> = procedure.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(header, names);
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            procedure
                .columns
                .iter()
                .zip(r.iter())
                .map(|(c, v)| match (c.ty, v) {
                    (_, "") => "null".to_string(),
                    (ColumnType::Decimal, v) => format!("{:.2}", v.parse::<f64>().unwrap()),
                    (ColumnType::Timestamp, v) => v.trim_end_matches('Z').to_string(),
                    (_, v) => v.to_string(),
                })
                .collect()
        })
        .collect()
}

fn parse_parquet(procedure: &Procedure, body: Vec<u8>) -> Rows {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(body),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            procedure
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
        );
        let options = FormatOptions::default().with_null("null");
        // Timestamps are read by hand: arrow-cast needs chrono-tz to display a "UTC" zone.
        let cells = |c: &cipherstream::catalog::Column,
                     array: &arrow_array::ArrayRef,
                     i: usize|
         -> String {
            use arrow_array::Array;
            if array.is_null(i) {
                return "null".into();
            }
            match c.ty {
                ColumnType::Timestamp | ColumnType::Datetime => {
                    let micros = array
                        .as_any()
                        .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                        .unwrap()
                        .value(i);
                    chrono::DateTime::from_timestamp_micros(micros)
                        .unwrap()
                        .naive_utc()
                        .format("%Y-%m-%dT%H:%M:%S")
                        .to_string()
                }
                _ => ArrayFormatter::try_new(array.as_ref(), &options)
                    .unwrap()
                    .value(i)
                    .to_string(),
            }
        };
        for i in 0..batch.num_rows() {
            rows.push(
                procedure
                    .columns
                    .iter()
                    .zip(batch.columns())
                    .map(|(c, a)| cells(c, a, i))
                    .collect(),
            );
        }
    }
    rows
}

/// Undoes the requested compression.
fn decompress(compression: &str, body: Vec<u8>) -> Vec<u8> {
    match compression {
        "none" => body,
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        }
        "zip" => {
            let mut archive = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
            assert_eq!(archive.len(), 1);
            let mut out = Vec::new();
            archive.by_index(0).unwrap().read_to_end(&mut out).unwrap();
            out
        }
        other => panic!("{other}"),
    }
}

fn parse(procedure: &Procedure, format: &str, body: Vec<u8>) -> Rows {
    match format {
        "ndjson" => parse_ndjson(procedure, &body),
        "json" => {
            let objects: Vec<Json> = serde_json::from_slice(&body).unwrap();
            json_rows(procedure, &objects)
        }
        "csv" => parse_csv(procedure, &body),
        "parquet" => parse_parquet(procedure, body),
        other => panic!("{other}"),
    }
}

/// CSV cannot tell an empty string from NULL.
fn as_csv_sees_it(rows: &Rows) -> Rows {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    if v.is_empty() {
                        "null".into()
                    } else {
                        v.clone()
                    }
                })
                .collect()
        })
        .collect()
}

async fn fetch(app: &TestApp, key: &str, path: &str) -> (Vec<u8>, reqwest::header::HeaderMap) {
    let response = app.get(key, path).await;
    assert_eq!(
        response.status(),
        200,
        "{path}: {}",
        response.text().await.unwrap_or_default()
    );
    let headers = response.headers().clone();
    (response.bytes().await.unwrap().to_vec(), headers)
}

/// The date ranges every procedure is checked with: (modifier, from, to).
fn ranges(procedure: &Procedure) -> Vec<Option<(String, String, String)>> {
    let today = Utc::now().date_naive();
    let default = procedure.date_modifiers[0].name.clone();
    vec![
        None,
        Some((
            default,
            (today - Duration::days(730)).to_string(),
            (today + Duration::days(60)).to_string(),
        )),
        Some((
            "Modified".into(),
            (today - Duration::days(365)).to_string(),
            today.to_string(),
        )),
    ]
}

#[tokio::test]
async fn every_procedure_matches_direct_sql_on_every_source() {
    let catalog = Catalog::builtin().unwrap();
    let app = TestApp::spawn().await;
    let mut by_source: Vec<(String, Vec<Rows>)> = Vec::new();
    for (label, url) in practices().all() {
        let (key, _) = app.create_customer(&format!("src-{label}"), &url).await;
        let mut results = Vec::new();
        for procedure in catalog.procedures() {
            let mut seen_rows = 0;
            for range in ranges(procedure) {
                let (path, direct) = match &range {
                    None => (
                        format!("/v1/extract/{}", procedure.name),
                        direct_rows(&url, procedure, None).await,
                    ),
                    Some((m, f, t)) => (
                        format!(
                            "/v1/extract/{}?date_modifier={m}&from_date={f}&to_date={t}",
                            procedure.name
                        ),
                        direct_rows(&url, procedure, Some((m, f, t))).await,
                    ),
                };
                let (body, headers) = fetch(&app, &key, &path).await;
                let got = parse_ndjson(procedure, &body);
                assert_eq!(got.len(), direct.len(), "{label} {path}: row count");
                assert_eq!(got, direct, "{label} {path}: content");
                let estimated: usize = headers["x-cipherstream-rows-estimated"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(estimated, direct.len(), "{label} {path}: estimate");
                seen_rows += got.len();
                results.push(got);
            }
            assert!(
                seen_rows > 0,
                "{label}: {} returned no rows at all; the test would prove nothing",
                procedure.name
            );
        }
        by_source.push((label.to_string(), results));
    }
    // The same seed gives the same answers whatever the database.
    let (first_label, first) = &by_source[0];
    for (label, results) in &by_source[1..] {
        assert_eq!(results.len(), first.len());
        for (i, (a, b)) in first.iter().zip(results).enumerate() {
            assert_eq!(a, b, "{first_label} and {label} differ on request {i}");
        }
    }
}

#[tokio::test]
async fn every_format_and_compression_round_trips() {
    let catalog = Catalog::builtin().unwrap();
    let app = TestApp::spawn().await;
    for (label, url) in practices().all() {
        let (key, _) = app.create_customer(&format!("fmt-{label}"), &url).await;
        // Every procedure on SQLite; a spread of them on the servers keeps the run short.
        let procedures: Vec<&Procedure> = if label == "sqlite" {
            catalog.procedures().iter().collect()
        } else {
            [
                "appointments",
                "patients",
                "debtors",
                "patient_analytics",
                "payments",
                "treatments",
            ]
            .iter()
            .map(|n| catalog.get(n).unwrap())
            .collect()
        };
        for procedure in procedures {
            let (body, _) = fetch(&app, &key, &format!("/v1/extract/{}", procedure.name)).await;
            let reference = parse_ndjson(procedure, &body);
            for format in ["ndjson", "json", "csv", "parquet"] {
                for compression in ["none", "gzip", "zip"] {
                    let path = format!(
                        "/v1/extract/{}?format={format}&compression={compression}",
                        procedure.name
                    );
                    let response = app.get(&key, &path).await;
                    assert_eq!(response.status(), 200, "{path}");
                    let disposition = response.headers()["content-disposition"]
                        .to_str()
                        .unwrap()
                        .to_string();
                    let content_type = response.headers()["content-type"]
                        .to_str()
                        .unwrap()
                        .to_string();
                    let body = response.bytes().await.unwrap().to_vec();
                    let suffix = match compression {
                        "gzip" => ".gz",
                        "zip" => ".zip",
                        _ => "",
                    };
                    assert!(
                        disposition.contains(&format!("{}.{format}{suffix}\"", procedure.name)),
                        "{disposition}"
                    );
                    match compression {
                        "gzip" => assert_eq!(content_type, "application/gzip"),
                        "zip" => assert_eq!(content_type, "application/zip"),
                        _ => assert!(!content_type.is_empty()),
                    }
                    let rows = parse(procedure, format, decompress(compression, body));
                    let expected = if format == "csv" {
                        as_csv_sees_it(&reference)
                    } else {
                        reference.clone()
                    };
                    assert_eq!(rows, expected, "{label} {path}");
                }
            }
        }
    }
}

#[tokio::test]
async fn columns_filters_limit_and_post_body() {
    let catalog = Catalog::builtin().unwrap();
    let appointments = catalog.get("appointments").unwrap();
    let app = TestApp::spawn().await;
    let (key, _) = app.create_customer("opts", &practices().sqlite).await;
    let (all, _) = fetch(&app, &key, "/v1/extract/appointments").await;
    let all = parse_ndjson(appointments, &all);
    let idx = |name: &str| {
        appointments
            .columns
            .iter()
            .position(|c| c.name == name)
            .unwrap()
    };

    // columns: a subset in the requested order.
    let (body, _) = fetch(
        &app,
        &key,
        "/v1/extract/appointments?columns=start_time,appointment_id",
    )
    .await;
    let first = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(
        first.starts_with("{\"start_time\":\"") && first.contains(",\"appointment_id\":"),
        "column order follows the request: {first}"
    );
    assert_eq!(
        first.matches(':').count(),
        4,
        "only the two columns: {first}"
    );

    // limit
    let (body, headers) = fetch(&app, &key, "/v1/extract/appointments?limit=7").await;
    assert_eq!(std::str::from_utf8(&body).unwrap().lines().count(), 7);
    assert_eq!(headers["x-cipherstream-rows-estimated"], "7");

    // an equality filter
    let filter = appointments
        .filters
        .iter()
        .find(|f| f.name == "practitioner_id")
        .unwrap();
    assert_eq!(filter.name, "practitioner_id");
    let (body, _) = fetch(&app, &key, "/v1/extract/appointments?practitioner_id=2").await;
    let filtered = parse_ndjson(appointments, &body);
    let expected: Rows = all
        .iter()
        .filter(|r| r[idx("practitioner_id")] == "2")
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(filtered, expected);

    // POST with a JSON body, filters nested or at the top level
    for body in [
        serde_json::json!({"practitioner_id": 2, "format": "ndjson"}),
        serde_json::json!({"filters": {"practitioner_id": 2}, "columns": appointments.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>()}),
    ] {
        let response = app
            .client
            .post(app.url("/v1/extract/appointments"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            parse_ndjson(appointments, &response.bytes().await.unwrap()),
            expected
        );
    }

    // Money is written exactly, with its two decimals.
    let (body, _) = fetch(&app, &key, "/v1/extract/payments?limit=50").await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("\"amount\":"),
        "{}",
        &text[..200.min(text.len())]
    );
    for line in text.lines() {
        let at = line.find("\"amount\":").unwrap() + 9;
        let number: String = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect();
        assert_eq!(
            number.split('.').nth(1).map(str::len),
            Some(2),
            "money keeps two decimals: {number}"
        );
    }

    // mode=sync streams; mode=job always queues (the jobs tests follow it through).
    let (body, headers) = fetch(&app, &key, "/v1/extract/appointments?mode=sync&limit=3").await;
    assert_eq!(std::str::from_utf8(&body).unwrap().lines().count(), 3);
    assert_eq!(headers["x-cipherstream-mode"], "sync");
    let job = app
        .get(&key, "/v1/extract/appointments?mode=job&limit=3")
        .await;
    assert_eq!(job.status(), 202);
}

#[tokio::test]
async fn customers_only_see_their_own_practice() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let other = format!("sqlite://{}", dir.path().join("other.db").display());
    cipherstream::demo::generate(cipherstream::demo::GenerateOptions {
        target_url: other.clone(),
        patients: 20,
        seed: 99,
        as_of: Utc::now().date_naive(),
    })
    .await
    .unwrap();
    let (key_a, _) = app.create_customer("tenant-a", &practices().sqlite).await;
    let (key_b, _) = app.create_customer("tenant-b", &other).await;
    let (a, _) = fetch(&app, &key_a, "/v1/extract/patients?columns=patient_id").await;
    let (b, _) = fetch(&app, &key_b, "/v1/extract/patients?columns=patient_id").await;
    let count = |body: &[u8]| std::str::from_utf8(body).unwrap().lines().count();
    assert_eq!(count(&a), crate::helpers::PATIENTS as usize);
    assert_eq!(count(&b), 20);
}
