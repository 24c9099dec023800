//! Background jobs: created by `mode=job`, `mode=auto` over the thresholds and
//! `POST /v1/jobs`; run by real workers into encrypted files that download through
//! signed URLs and decrypt to exactly what the synchronous path returns.

use std::io::Read;
use std::time::Duration;

use base64::Engine;
use serde_json::Value as Json;

use crate::helpers::{expect_problem, practices, MetaBackend, TestApp};

async fn spawn_with_workers(
    workers: usize,
    adjust: impl FnOnce(&mut cipherstream::Config),
) -> TestApp {
    TestApp::spawn_with(MetaBackend::Sqlite, |c| {
        c.job_workers = workers;
        c.job_poll_interval_ms = 50;
        c.job_retry_backoff_seconds = 0.1;
        adjust(c);
    })
    .await
    .unwrap()
}

/// Polls a job until it reaches a final state.
async fn wait_final(app: &TestApp, key: &str, job_id: &str) -> Json {
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

fn decrypt(data_key: &str, bytes: &[u8]) -> Vec<u8> {
    let key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(data_key)
        .unwrap()
        .try_into()
        .unwrap();
    let mut reader = cipherstream::crypto::cse1::Cse1Reader::new(bytes, &key).unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

/// Follows the job's download redirect and returns the (encrypted) file.
async fn download(app: &TestApp, key: &str, job_id: &str) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(app.url(&format!("/v1/jobs/{job_id}/download")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("signature=") && location.contains("expires="),
        "{location}"
    );
    // The presigned URL needs no API key.
    let file = reqwest::get(&location).await.unwrap();
    assert_eq!(file.status(), 200);
    file.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn job_files_decrypt_to_the_synchronous_output_in_every_format() {
    let app = spawn_with_workers(2, |_| {}).await;
    let (key, created) = app.create_customer("jobs", &practices().sqlite).await;
    let data_key = created["data_key"].as_str().unwrap();
    for (format, compression) in [
        ("ndjson", "none"),
        ("csv", "gzip"),
        ("json", "zip"),
        ("parquet", "none"),
    ] {
        let query = format!(
            "from_date=2020-01-01&to_date=2030-12-31&format={format}&compression={compression}"
        );
        let sync = app
            .get(&key, &format!("/v1/extract/appointments?{query}&mode=sync"))
            .await;
        assert_eq!(sync.status(), 200);
        let expected = sync.bytes().await.unwrap().to_vec();

        let response = app
            .get(&key, &format!("/v1/extract/appointments?{query}&mode=job"))
            .await;
        assert_eq!(response.status(), 202);
        let location = response.headers()["location"].to_str().unwrap().to_string();
        let job: Json = response.json().await.unwrap();
        let id = job["job_id"].as_str().unwrap();
        assert_eq!(location, format!("/v1/jobs/{id}"));
        assert!(
            id.starts_with("appointments_") && id.len() == "appointments_".len() + 13 + 1 + 8,
            "{id}"
        );
        assert_eq!(job["status"], "queued");
        for field in [
            "s3_url",
            "expires_at",
            "error_message",
            "file_size_bytes",
            "sha256",
            "started_at",
        ] {
            assert!(job.get(field).is_some(), "{field} is always present");
        }
        let done = wait_final(&app, &key, id).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["progress_percent"], 100);
        assert_eq!(
            done["estimated_rows"], done["rows_processed"],
            "the worker records its count"
        );
        assert_eq!(done["encryption"]["algorithm"], "AES-256-GCM");
        assert_eq!(done["metadata"]["from_date"], "2020-01-01");
        let file = download(&app, &key, id).await;
        assert_eq!(
            done["file_size_bytes"].as_u64().unwrap() as usize,
            file.len()
        );
        use sha2::Digest;
        assert_eq!(
            done["sha256"].as_str().unwrap(),
            hex::encode(sha2::Sha256::digest(&file))
        );
        let plain = decrypt(data_key, &file);
        if format == "ndjson" {
            // The documented Python example decrypts the downloaded file to the same bytes.
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("in.cse"), &file).unwrap();
            let status = std::process::Command::new("python3")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/decrypt.py"))
                .args(["--key", data_key])
                .arg(dir.path().join("in.cse"))
                .arg(dir.path().join("out"))
                .status()
                .unwrap();
            assert!(status.success());
            assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), plain);
        }
        if format == "parquet" || compression == "zip" {
            // Parquet and zip embed write times; compare what they hold.
            assert!(!plain.is_empty());
        } else if compression == "gzip" {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            flate2::read::GzDecoder::new(&plain[..])
                .read_to_end(&mut a)
                .unwrap();
            flate2::read::GzDecoder::new(&expected[..])
                .read_to_end(&mut b)
                .unwrap();
            assert_eq!(a, b, "{format}/{compression}");
        } else {
            assert_eq!(plain, expected, "{format}/{compression}");
        }
        assert_eq!(
            done["rows_processed"].as_u64().unwrap() as usize,
            count_rows(format, compression, &plain, &expected)
        );
    }
}

/// Rows in a decrypted file, checked against the synchronous file's rows.
fn count_rows(format: &str, compression: &str, plain: &[u8], expected: &[u8]) -> usize {
    let unzip = |bytes: &[u8]| -> Vec<u8> {
        match compression {
            "gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            "zip" => {
                let mut archive =
                    zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
                let mut out = Vec::new();
                archive.by_index(0).unwrap().read_to_end(&mut out).unwrap();
                out
            }
            _ => bytes.to_vec(),
        }
    };
    let (a, b) = (unzip(plain), unzip(expected));
    let rows = |bytes: &[u8]| -> usize {
        match format {
            "ndjson" => bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count(),
            "csv" => csv::Reader::from_reader(bytes).records().count(),
            "json" => serde_json::from_slice::<Vec<Json>>(bytes).unwrap().len(),
            "parquet" => parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes.to_vec()),
            )
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum(),
            _ => unreachable!(),
        }
    };
    if format == "json" {
        assert_eq!(
            serde_json::from_slice::<Json>(&a).unwrap(),
            serde_json::from_slice::<Json>(&b).unwrap()
        );
    }
    assert_eq!(rows(&a), rows(&b));
    rows(&a)
}

#[tokio::test]
async fn auto_mode_makes_a_job_over_the_row_threshold() {
    let app = spawn_with_workers(1, |c| c.job_row_threshold = 10).await;
    let (key, _) = app.create_customer("auto", &practices().sqlite).await;
    let small = app.get(&key, "/v1/extract/appointments?limit=10").await;
    assert_eq!(small.status(), 200, "at the threshold it streams");
    let big = app.get(&key, "/v1/extract/appointments?limit=11").await;
    assert_eq!(big.status(), 202, "over it, a job");
    let job: Json = big.json().await.unwrap();
    assert_eq!(job["estimated_rows"], 11);
    let done = wait_final(&app, &key, job["job_id"].as_str().unwrap()).await;
    assert_eq!(done["rows_processed"], 11);
    // mode=sync never makes a job.
    assert_eq!(
        app.get(&key, "/v1/extract/appointments?limit=11&mode=sync")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn queued_jobs_cancel_at_once_and_lists_filter_sort_and_page() {
    // No workers: jobs stay queued.
    check_queue_listing(&spawn_with_workers(0, |_| {}).await).await;
}

#[tokio::test]
async fn queued_jobs_and_lists_on_postgres_metadata() {
    let Some(app) = TestApp::spawn_with(MetaBackend::Postgres, |c| c.job_workers = 0).await else {
        return;
    };
    check_queue_listing(&app).await;
}

async fn check_queue_listing(app: &TestApp) {
    let (key, _) = app.create_customer("queue", &practices().sqlite).await;
    let (other_key, _) = app
        .create_customer("queue-other", &practices().sqlite)
        .await;
    let mut ids = Vec::new();
    for procedure in [
        "patients",
        "appointments",
        "patients",
        "payments",
        "patients",
    ] {
        let response = app
            .client
            .post(app.url("/v1/jobs"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"procedure": procedure, "format": "csv"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        ids.push(
            response.json::<Json>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let list: Json = app.get(&key, "/v1/jobs").await.json().await.unwrap();
    assert_eq!(list["total"], 5);
    assert_eq!(list["limit"], 50);
    let listed: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    let page: Json = app
        .get(
            &key,
            "/v1/jobs?procedure=patients&sort=created_asc&limit=2&offset=1",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 3);
    let paged: Vec<&str> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(paged, [ids[2].as_str(), ids[4].as_str()]);
    let none: Json = app
        .get(&key, "/v1/jobs?from_date=2999-01-01")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["total"], 0);

    // Cancelling a queued job is immediate; a second cancel is a conflict.
    let cancel = app
        .client
        .post(app.url(&format!("/v1/jobs/{}/cancel", ids[0])))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    assert_eq!(cancel.json::<Json>().await.unwrap()["status"], "cancelled");
    expect_problem(
        app.client
            .post(app.url(&format!("/v1/jobs/{}/cancel", ids[0])))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        409,
    )
    .await;
    let cancelled: Json = app
        .get(&key, "/v1/jobs?status=cancelled")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["total"], 1);
    expect_problem(
        app.get(&key, &format!("/v1/jobs/{}/download", ids[1]))
            .await,
        409,
    )
    .await;

    // Another customer sees none of it.
    expect_problem(
        app.get(&other_key, &format!("/v1/jobs/{}", ids[1])).await,
        404,
    )
    .await;
    expect_problem(
        app.client
            .post(app.url(&format!("/v1/jobs/{}/cancel", ids[1])))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    expect_problem(
        app.get(&other_key, &format!("/v1/jobs/{}/download", ids[1]))
            .await,
        404,
    )
    .await;
    let theirs: Json = app.get(&other_key, "/v1/jobs").await.json().await.unwrap();
    assert_eq!(theirs["total"], 0);

    // Every list parameter is checked.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        ("status=done", "status"),
        ("sort=newest", "sort"),
        ("procedure=nope", "procedure"),
        ("from_date=soon", "from_date"),
        ("from_date=2024-02-01&to_date=2024-01-01", "to_date"),
        ("colour=red", "colour"),
    ] {
        let problem = expect_problem(app.get(&key, &format!("/v1/jobs?{query}")).await, 400).await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    // Job creation is validated like an extraction.
    for (body, field) in [
        (serde_json::json!({"format": "csv"}), "procedure"),
        (serde_json::json!({"procedure": "nope"}), "procedure"),
        (
            serde_json::json!({"procedure": "patients", "format": "xml"}),
            "format",
        ),
    ] {
        let response = app
            .client
            .post(app.url("/v1/jobs"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            expect_problem(response, 400).await["errors"][0]["field"],
            field
        );
    }
}

#[tokio::test]
async fn idempotency_keys_return_the_same_job() {
    let app = spawn_with_workers(0, |_| {}).await;
    let (key, _) = app.create_customer("idem", &practices().sqlite).await;
    let post = |body: Json, idem: &'static str| {
        app.client
            .post(app.url("/v1/jobs"))
            .bearer_auth(&key)
            .header("Idempotency-Key", idem)
            .json(&body)
            .send()
    };
    let first = post(serde_json::json!({"procedure": "patients"}), "k-1")
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let first: Json = first.json().await.unwrap();
    let again = post(serde_json::json!({"procedure": "patients"}), "k-1")
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Json>().await.unwrap()["job_id"],
        first["job_id"]
    );
    let conflict = post(serde_json::json!({"procedure": "appointments"}), "k-1")
        .await
        .unwrap();
    expect_problem(conflict, 409).await;
    let list: Json = app.get(&key, "/v1/jobs").await.json().await.unwrap();
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn a_permanent_error_fails_the_job_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let broken = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/catalog/expense_categories.toml"
    ))
    .unwrap()
    .replacen("from = \"", "from = \"no_such_table x, ", 1);
    std::fs::write(dir.path().join("broken.toml"), broken).unwrap();
    let catalog_dir = dir.path().to_path_buf();
    let app = spawn_with_workers(1, |c| c.catalog_dir = Some(catalog_dir)).await;
    let (key, _) = app.create_customer("broken", &practices().sqlite).await;
    let response = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"procedure": "expense_categories"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Json>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_final(&app, &key, &id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["retry_count"], 0, "a missing table is not retried");
    assert!(
        done["error_message"]
            .as_str()
            .unwrap()
            .contains("no_such_table"),
        "{done}"
    );
    assert!(
        !app.data_dir.join("files/customers/broken/jobs").exists()
            || std::fs::read_dir(app.data_dir.join("files/customers/broken/jobs"))
                .unwrap()
                .next()
                .is_none(),
        "no file left"
    );
}

#[tokio::test]
async fn running_jobs_cancel_within_seconds_and_leave_no_file() {
    let Some(postgres) = practices().postgres.clone() else {
        return;
    };
    let dir = slow_patients_catalog("p.id + 0 * length(pg_sleep(0.05)::text)");
    let catalog_dir = dir.path().to_path_buf();
    let app = spawn_with_workers(1, |c| c.catalog_dir = Some(catalog_dir)).await;
    let (key, _) = app.create_customer("cancel-running", &postgres).await;
    let response = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"procedure": "patients"}))
        .send()
        .await
        .unwrap();
    let id = response.json::<Json>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..200 {
        let job: Json = app
            .get(&key, &format!("/v1/jobs/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if job["status"] == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let asked = std::time::Instant::now();
    let cancel = app
        .client
        .post(app.url(&format!("/v1/jobs/{id}/cancel")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 202);
    let done = wait_final(&app, &key, &id).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "took {:?}",
        asked.elapsed()
    );
    assert_eq!(done["s3_url"], Json::Null);
    let files = app.data_dir.join("files/customers/cancel-running/jobs");
    assert!(
        !files.exists() || std::fs::read_dir(&files).unwrap().next().is_none(),
        "no object left behind"
    );
}

#[tokio::test]
async fn downloads_resume_with_range_and_expire_with_the_file() {
    let app = spawn_with_workers(1, |c| c.file_retention_seconds = 2).await;
    let (key, _) = app.create_customer("ranges", &practices().sqlite).await;
    let response = app
        .get(&key, "/v1/extract/appointments?mode=job&format=csv")
        .await;
    let id = response.json::<Json>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_final(&app, &key, &id).await;
    assert_eq!(done["status"], "completed");
    let url = done["s3_url"].as_str().unwrap().to_string();
    let whole = reqwest::get(&url).await.unwrap();
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let etag = whole.headers()["etag"].to_str().unwrap().to_string();
    let whole = whole.bytes().await.unwrap().to_vec();
    // Resume: the first 1000 bytes, then the rest, reassemble to the same file.
    let client = reqwest::Client::new();
    let head = client
        .get(&url)
        .header("range", "bytes=0-999")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 206);
    assert_eq!(
        head.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-999/{}", whole.len())
    );
    let mut joined = head.bytes().await.unwrap().to_vec();
    let tail = client
        .get(&url)
        .header("range", "bytes=1000-")
        .header("if-range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    joined.extend_from_slice(&tail.bytes().await.unwrap());
    assert_eq!(joined, whole);
    // curl's own resume (-C -) on a partial file gives the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("file.cse");
    std::fs::write(&partial, &whole[..whole.len() / 3]).unwrap();
    // curl runs on a blocking thread: the server shares this test's runtime.
    let (target, source) = (partial.clone(), url.clone());
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sSf", "--max-time", "30", "-C", "-", "-o"])
            .arg(&target)
            .arg(&source)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&partial).unwrap(), whole);
    // A tampered URL is refused.
    let tampered = url.replace("signature=", "signature=0");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    let other_file = url.replace(&id, "appointments_1_deadbeef");
    assert_eq!(reqwest::get(&other_file).await.unwrap().status(), 403);

    // After the retention the janitor removes the file: no URL, 410, and the old URL fails.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut gone = Json::Null;
    for _ in 0..100 {
        gone = app
            .get(&key, &format!("/v1/jobs/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if gone["s3_url"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone["s3_url"].is_null(), "{gone}");
    expect_problem(app.get(&key, &format!("/v1/jobs/{id}/download")).await, 410).await;
    let old = reqwest::get(&url).await.unwrap().status();
    assert!(
        old == 403 || old == 404,
        "an expired URL must not serve the file: {old}"
    );
    assert!(!app
        .data_dir
        .join(format!("files/customers/ranges/jobs/{id}.csv.cse"))
        .exists());
}

#[tokio::test]
async fn a_killed_source_connection_is_retried_and_the_job_completes() {
    let Some(postgres) = practices().postgres.clone() else {
        return;
    };
    let dir = slow_patients_catalog("p.id + 0 * length(pg_sleep(0.01)::text)");
    let catalog_dir = dir.path().to_path_buf();
    let app = spawn_with_workers(1, |c| c.catalog_dir = Some(catalog_dir)).await;
    let (key, _) = app.create_customer("killed", &postgres).await;
    let response = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"procedure": "patients"}))
        .send()
        .await
        .unwrap();
    let id = response.json::<Json>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Once the extraction query runs, terminate its backend from outside.
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&postgres).await.unwrap();
    let mut killed = 0i64;
    for _ in 0..200 {
        killed = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'cipherstream' AND query LIKE '%pg_sleep%' AND state = 'active' AND query NOT LIKE '%COUNT(*)%'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if killed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(killed > 0, "the extraction query was never seen running");
    let done = wait_final(&app, &key, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["retry_count"], 1);
    assert_eq!(done["rows_processed"], crate::helpers::PATIENTS);
}

/// Starts the real binary on a free port; returns the child and its base URL.
fn start_server(
    data_dir: &std::path::Path,
    catalog_dir: &std::path::Path,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cipherstream"))
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "serve",
            "--bind",
            "127.0.0.1:0",
        ])
        .env("CIPHERSTREAM_ADMIN_TOKEN", crate::helpers::ADMIN_TOKEN)
        .env("CIPHERSTREAM_CATALOG_DIR", catalog_dir)
        .env("CIPHERSTREAM_JOB_LEASE_SECONDS", "2")
        .env("CIPHERSTREAM_JOB_POLL_INTERVAL_MS", "50")
        .env("CIPHERSTREAM_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .find_map(|line| {
            let line: Json = serde_json::from_str(&line.ok()?).ok()?;
            (line["fields"]["message"] == "listening")
                .then(|| line["fields"]["addr"].as_str().unwrap().to_string())
        })
        .expect("the server logs its address");
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn a_job_survives_sigkill_of_its_server() {
    let Some(postgres) = practices().postgres.clone() else {
        return;
    };
    let catalog = slow_patients_catalog("p.id + 0 * length(pg_sleep(0.02)::text)");
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (mut first, base) = start_server(data.path(), catalog.path());
    let created: Json = client
        .post(format!("{base}/admin/v1/customers"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&serde_json::json!({"id": "crash", "name": "Crash", "source_url": postgres}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();
    let job: Json = client
        .post(format!("{base}/v1/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"procedure": "patients", "format": "csv"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["job_id"].as_str().unwrap().to_string();
    let mut status = Json::Null;
    for _ in 0..200 {
        let job: Json = client
            .get(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = job["status"].clone();
        if status == "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, "running");
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().unwrap(); // SIGKILL, mid-extraction (the query takes 3 s)
    first.wait().unwrap();

    let (mut second, base) = start_server(data.path(), catalog.path());
    let mut done = Json::Null;
    for _ in 0..400 {
        done = client
            .get(format!("{base}/v1/jobs/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done["status"] == "completed" || done["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["retry_count"], 1);
    assert_eq!(done["rows_processed"], crate::helpers::PATIENTS);
    // Exactly one file, the finished one: nothing partial or duplicated.
    let files: Vec<_> = walk(&data.path().join("files"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(&format!("{id}.csv.cse")), "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test]
async fn a_killed_mariadb_query_is_retried_and_the_job_completes() {
    let Some(mysql) = practices().mysql.clone() else {
        return;
    };
    let dir = slow_patients_catalog("p.id + 0 * SLEEP(0.01)");
    let catalog_dir = dir.path().to_path_buf();
    let app = spawn_with_workers(1, |c| c.catalog_dir = Some(catalog_dir)).await;
    let (key, _) = app.create_customer("killed-mariadb", &mysql).await;
    let response = app
        .client
        .post(app.url("/v1/jobs"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"procedure": "patients"}))
        .send()
        .await
        .unwrap();
    let id = response.json::<Json>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    use sqlx::Connection;
    let mut admin = sqlx::MySqlConnection::connect(&crate::helpers::mysql_base())
        .await
        .unwrap();
    let mut killed = false;
    for _ in 0..300 {
        let running: Option<i64> = sqlx::query_scalar(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(0.01)%' AND INFO NOT LIKE '%PROCESSLIST%' AND INFO NOT LIKE '%COUNT(*)%' LIMIT 1",
        )
        .fetch_optional(&mut admin)
        .await
        .unwrap();
        if let Some(thread) = running {
            sqlx::raw_sql(&format!("KILL {thread}"))
                .execute(&mut admin)
                .await
                .unwrap();
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(killed, "the extraction query was never seen running");
    let done = wait_final(&app, &key, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["retry_count"], 1);
    assert_eq!(done["rows_processed"], crate::helpers::PATIENTS);
}

#[tokio::test]
async fn workers_share_a_postgres_queue_without_running_a_job_twice() {
    let Some(app) = TestApp::spawn_with(MetaBackend::Postgres, |c| {
        c.job_workers = 3;
        c.job_per_customer_cap = 3;
        c.job_poll_interval_ms = 20;
    })
    .await
    else {
        return;
    };
    let (key, _) = app.create_customer("pg-queue", &practices().sqlite).await;
    let mut ids = Vec::new();
    for procedure in [
        "patients",
        "appointments",
        "payments",
        "invoices",
        "treatments",
        "recalls",
    ] {
        let response = app
            .client
            .post(app.url("/v1/jobs"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"procedure": procedure}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        ids.push(
            response.json::<Json>().await.unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        let done = wait_final(&app, &key, id).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["retry_count"], 0);
    }
    let list: Json = app
        .get(&key, "/v1/jobs?status=completed&sort=updated_asc")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 6);
    let files = walk(&app.data_dir.join("files"));
    assert_eq!(files.len(), 6, "one file per job: {files:?}");
}

#[tokio::test]
async fn files_stored_before_a_key_rotation_keep_their_key() {
    let app = spawn_with_workers(1, |_| {}).await;
    let (key, created) = app.create_customer("rotate", &practices().sqlite).await;
    let old_key = created["data_key"].as_str().unwrap().to_string();
    let (before, old_file) = run_payment_types_job(&app, &key).await;
    let rotated: Json = app
        .client
        .post(app.url("/admin/v1/customers/rotate/rotate-data-key"))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_key = rotated["data_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    assert_eq!(rotated["customer"]["data_key_id"], json_key_id(&new_key));
    let (after, new_file) = run_payment_types_job(&app, &key).await;
    assert_eq!(before["encryption"]["key_id"], json_key_id(&old_key));
    assert_eq!(after["encryption"]["key_id"], json_key_id(&new_key));
    // The old file still downloads and decrypts with the old key; the new one with the new key.
    assert_eq!(decrypt(&old_key, &old_file), decrypt(&new_key, &new_file));
    let wrong: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(&old_key)
        .unwrap()
        .try_into()
        .unwrap();
    assert!(
        cipherstream::crypto::cse1::Cse1Reader::new(&new_file[..], &wrong).is_err(),
        "the old key must not open new files"
    );
}

async fn run_payment_types_job(app: &TestApp, key: &str) -> (Json, Vec<u8>) {
    let response = app.get(key, "/v1/extract/payment_types?mode=job").await;
    let id = response.json::<Json>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_final(app, key, &id).await;
    assert_eq!(done["status"], "completed");
    let file = download(app, key, &id).await;
    (done, file)
}

fn json_key_id(data_key: &str) -> String {
    cipherstream::crypto::key_id(
        &base64::engine::general_purpose::STANDARD
            .decode(data_key)
            .unwrap(),
    )
}

/// A catalog directory whose `patients` procedure computes `patient_id` with `expr`,
/// a database-side delay per row, so a job runs long enough to be interrupted.
pub(crate) fn slow_patients_catalog(expr: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plain = "[[columns]]\nname = \"patient_id\"\nexpr = \"p.id\"";
    let catalog = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/catalog/patients.toml"
    ))
    .unwrap();
    assert!(
        catalog.contains(plain),
        "the patients catalog changed shape"
    );
    let slow = catalog.replacen(
        plain,
        &format!("[[columns]]\nname = \"patient_id\"\nexpr = \"{expr}\""),
        1,
    );
    std::fs::write(dir.path().join("patients.toml"), slow).unwrap();
    dir
}
