//! End-to-end tests of the generator against SQLite files.

use chrono::NaiveDate;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use super::schema::TABLES;
use super::tables::DEFS;
use super::{generate, GenerateOptions, GenerateReport};

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
}

async fn generate_into(
    dir: &tempfile::TempDir,
    name: &str,
    patients: u32,
    seed: u64,
) -> (GenerateReport, SqlitePool) {
    let path = dir.path().join(name);
    let url = format!("sqlite://{}", path.display());
    let report = generate(GenerateOptions {
        target_url: url.clone(),
        patients,
        seed,
        as_of: as_of(),
    })
    .await
    .expect("generation succeeds");
    let pool = SqlitePool::connect(&url).await.unwrap();
    (report, pool)
}

/// Every row of a table, each rendered as SQL literals, in id order.
async fn dump(pool: &SqlitePool, table: usize) -> Vec<String> {
    let def = &DEFS[table];
    let cells: Vec<String> = def.columns.iter().map(|c| format!("quote({c})")).collect();
    let sql = format!(
        "SELECT {} AS r FROM {} ORDER BY id",
        cells.join(" || '|' || "),
        def.name
    );
    sqlx::query(&sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("r"))
        .collect()
}

async fn scalar(pool: &SqlitePool, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(pool)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

#[tokio::test]
async fn same_seed_gives_identical_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (a_report, a) = generate_into(&dir, "a.db", 80, 42).await;
    let (b_report, b) = generate_into(&dir, "b.db", 80, 42).await;
    assert_eq!(a_report.tables, b_report.tables);
    for (t, def) in DEFS.iter().enumerate() {
        assert_eq!(dump(&a, t).await, dump(&b, t).await, "table {}", def.name);
    }
    let (_, c) = generate_into(&dir, "c.db", 80, 43).await;
    assert_ne!(
        dump(&a, super::tables::PATIENTS).await,
        dump(&c, super::tables::PATIENTS).await
    );
}

#[tokio::test]
async fn generated_practice_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let (report, db) = generate_into(&dir, "p.db", 200, 7).await;

    // The report lists every table in schema order with its real row count.
    let names: Vec<&str> = report.tables.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(names, TABLES);
    for (table, rows) in &report.tables {
        assert_eq!(
            *rows as i64,
            scalar(&db, &format!("SELECT COUNT(*) FROM {table}")).await,
            "{table}"
        );
        assert!(*rows > 0, "{table} is empty");
    }
    let count = |t: &str| report.tables.iter().find(|(n, _)| n == t).unwrap().1;
    assert_eq!(count("patients"), 200);
    let per_patient = count("appointments") as f64 / 200.0;
    assert!(
        (6.0..=14.0).contains(&per_patient),
        "{per_patient} appointments per patient"
    );

    let bad = |sql: &'static str| {
        let db = db.clone();
        async move { scalar(&db, sql).await }
    };
    assert_eq!(
        bad("SELECT COUNT(*) FROM appointments WHERE end_time <= start_time").await,
        0
    );
    assert_eq!(
        bad("SELECT COUNT(*) FROM payments p LEFT JOIN patients x ON x.id = p.patient_id WHERE x.id IS NULL").await,
        0
    );
    assert_eq!(
        bad("SELECT COUNT(*) FROM appointments WHERE start_time < '2025-03-14' AND status_id IN (1, 2)").await,
        0,
        "past appointments are settled"
    );
    assert_eq!(
        bad("SELECT COUNT(*) FROM appointments WHERE start_time >= '2025-03-14' AND status_id NOT IN (1, 2)").await,
        0,
        "future appointments are only booked"
    );
    assert_eq!(
        bad(
            "SELECT COUNT(*) FROM appointments a JOIN appointment_statuses s ON s.id = a.status_id
             WHERE s.code = 'cancelled' AND a.id NOT IN (SELECT appointment_id FROM cancellations)"
        )
        .await,
        0,
        "every cancelled appointment has a cancellation"
    );
    for table in TABLES {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE updated_at < created_at OR created_at >= '2025-03-14'");
        assert_eq!(scalar(&db, &sql).await, 0, "{table} timestamps");
    }
    // No practitioner is in two places at once.
    assert_eq!(
        bad("SELECT COUNT(*) FROM appointments a JOIN appointments b ON a.practitioner_id = b.practitioner_id
             AND a.id < b.id AND a.start_time < b.end_time AND b.start_time < a.end_time
             AND a.status_id <> 6 AND b.status_id <> 6")
        .await,
        0
    );
    // Money adds up: each invoice = its treatments; each patient's ledger = their balance.
    assert_eq!(
        bad("SELECT COUNT(*) FROM invoices i WHERE abs(total - (SELECT SUM(fee) FROM treatments t WHERE t.invoice_id = i.id)) > 0.001").await,
        0
    );
    assert_eq!(
        bad("SELECT COUNT(*) FROM (SELECT p.id,
               (SELECT COALESCE(SUM(amount), 0) FROM transactions t WHERE t.patient_id = p.id) AS ledger,
               (SELECT COALESCE(SUM(total), 0) FROM invoices i WHERE i.patient_id = p.id)
             - (SELECT COALESCE(SUM(amount), 0) FROM payments y WHERE y.patient_id = p.id)
             - (SELECT COALESCE(SUM(amount), 0) FROM discounts d WHERE d.patient_id = p.id) AS owed
             FROM patients p) WHERE abs(ledger - owed) > 0.001")
        .await,
        0
    );
    assert_eq!(
        bad("SELECT COUNT(*) FROM payments y WHERE abs(amount - (SELECT SUM(amount) FROM payment_allocations a WHERE a.payment_id = y.id)) > 0.001").await,
        0
    );
    assert_eq!(
        bad("SELECT COUNT(*) FROM deposits d WHERE abs(amount - (SELECT SUM(amount) FROM payments y WHERE y.deposit_id = d.id)) > 0.001").await,
        0
    );

    // Aged debts exist in every bucket relative to as_of.
    let aged = "SELECT CASE WHEN julianday('2025-03-14') - julianday(i.invoice_date) <= 30 THEN 0
                            WHEN julianday('2025-03-14') - julianday(i.invoice_date) <= 60 THEN 1
                            WHEN julianday('2025-03-14') - julianday(i.invoice_date) <= 90 THEN 2 ELSE 3 END AS bucket,
                       COUNT(*) AS n
                FROM invoices i
                WHERE i.total - COALESCE((SELECT SUM(amount) FROM payment_allocations a WHERE a.invoice_id = i.id), 0)
                              - COALESCE((SELECT SUM(amount) FROM discounts d WHERE d.invoice_id = i.id), 0) > 0.001
                GROUP BY bucket ORDER BY bucket";
    let buckets: Vec<(i64, i64)> = sqlx::query(aged)
        .fetch_all(&db)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        buckets.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "{buckets:?}"
    );

    // SQLite stores dates and times as the exact text the extraction code compares with.
    let formats = scalar(
        &db,
        "SELECT COUNT(*) FROM appointments WHERE length(start_time) <> 19 OR start_time NOT LIKE '____-__-__ __:__:00'",
    )
    .await;
    assert_eq!(formats, 0);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM patients WHERE length(date_of_birth) <> 10"
        )
        .await,
        0
    );
}
