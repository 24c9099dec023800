//! Encoder throughput: 1,000,000 synthetic appointment rows (14 columns) to every format,
//! uncompressed and gzip, plus the full pipeline and a serde_json reference.
//!
//! `cargo bench --bench export` (release). Only the encoder's time is counted; rows are
//! generated batch by batch beside it, so memory stays small and data never repeats.

use std::io::{self, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use cipherstream::export::{
    spawn_pipeline, Compression, ExportSpec, OutputFormat, Progress, RowEncoder,
};
use cipherstream::value::{ColumnSpec, ColumnType, Row, Value};
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;

const ROWS: usize = 1_000_000;
const BATCH: usize = 1_000;

fn columns() -> Vec<ColumnSpec> {
    let col = |name: &str, ty, nullable| ColumnSpec {
        name: name.to_owned(),
        ty,
        nullable,
        scale: if ty == ColumnType::Decimal { 2 } else { 0 },
    };
    vec![
        col("appointment_id", ColumnType::Integer, false),
        col("patient_id", ColumnType::Integer, false),
        col("practitioner_id", ColumnType::Integer, false),
        col("status", ColumnType::String, false),
        col("appointment_type", ColumnType::String, false),
        col("notes", ColumnType::String, true),
        col("fee", ColumnType::Decimal, false),
        col("paid_amount", ColumnType::Decimal, true),
        col("appointment_date", ColumnType::Date, false),
        col("starts_at", ColumnType::Datetime, false),
        col("ends_at", ColumnType::Datetime, false),
        col("created_at", ColumnType::Timestamp, false),
        col("updated_at", ColumnType::Timestamp, true),
        col("is_new_patient", ColumnType::Boolean, false),
    ]
}

/// Deterministic pseudo-random rows (splitmix64), shaped like the demo appointments.
struct Rows {
    state: u64,
    next_id: i64,
    epoch: NaiveDateTime,
}

impl Rows {
    fn new() -> Self {
        Rows {
            state: 0x5eed,
            next_id: 1,
            epoch: NaiveDate::from_ymd_opt(2019, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn batch(&mut self, n: usize) -> Vec<Row> {
        const STATUS: [&str; 5] = [
            "Completed",
            "Booked",
            "Cancelled",
            "Failed to attend",
            "Confirmed",
        ];
        const TYPES: [&str; 6] = [
            "Examination",
            "Scale and clean",
            "Filling",
            "Root canal",
            "Crown prep",
            "Emergency",
        ];
        const NOTES: [&str; 5] = [
            "Patient requested morning appointments",
            "Review x-rays, \"sensitive\" lower left",
            "Pre-med required, see medical history",
            "Call to confirm, mobile preferred",
            "Health fund: HCF; gap quoted",
        ];
        (0..n)
            .map(|_| {
                let id = self.next_id;
                self.next_id += 1;
                let day = self.below(6 * 365) as i64;
                let slot = self.below(36) as i64;
                let starts =
                    self.epoch + TimeDelta::days(day) + TimeDelta::minutes(8 * 60 + 15 * slot);
                let ends = starts + TimeDelta::minutes(15 * (1 + self.below(4) as i64));
                let created = starts - TimeDelta::seconds(self.below(90 * 86_400) as i64);
                let fee_cents = 5_000 + self.below(150_000) as i64;
                let notes = match self.below(3) {
                    0 => Value::Null,
                    _ => {
                        let note = NOTES[self.below(NOTES.len() as u64) as usize];
                        Value::Text(format!("{note} (#{})", self.below(10_000)))
                    }
                };
                vec![
                    Value::Int(id),
                    Value::Int(1 + self.below(50_000) as i64),
                    Value::Int(1 + self.below(40) as i64),
                    Value::Text(STATUS[self.below(5) as usize].to_owned()),
                    Value::Text(TYPES[self.below(6) as usize].to_owned()),
                    notes,
                    Value::Decimal(Decimal::new(fee_cents, 2)),
                    match self.below(4) {
                        0 => Value::Null,
                        _ => Value::Decimal(Decimal::new(fee_cents - self.below(5_000) as i64, 2)),
                    },
                    Value::Date(starts.date()),
                    Value::DateTime(starts),
                    Value::DateTime(ends),
                    Value::DateTime(created),
                    match self.below(2) {
                        0 => Value::Null,
                        _ => Value::DateTime(
                            created + TimeDelta::microseconds(self.below(1 << 36) as i64),
                        ),
                    },
                    Value::Bool(self.below(10) == 0),
                ]
            })
            .collect()
    }
}

/// Discards bytes, counting them.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Measure {
    label: String,
    elapsed: Duration,
    bytes: u64,
    raw_bytes: u64,
}

fn print_header() {
    println!(
        "{:<34} {:>10} {:>12} {:>10} {:>10} {:>10}",
        "format / compression", "seconds", "rows/s", "out MB/s", "out MB", "raw MB/s"
    );
}

fn print_row(m: &Measure) {
    let secs = m.elapsed.as_secs_f64();
    println!(
        "{:<34} {:>10.3} {:>12.0} {:>10.1} {:>10.1} {:>10.1}",
        m.label,
        secs,
        ROWS as f64 / secs,
        m.bytes as f64 / 1e6 / secs,
        m.bytes as f64 / 1e6,
        m.raw_bytes as f64 / 1e6 / secs,
    );
}

/// Encodes ROWS rows with `RowEncoder`, timing only the encoder.
fn encode(format: OutputFormat, compression: Compression) -> (Duration, u64) {
    let spec = ExportSpec {
        format,
        compression,
        columns: columns(),
        entry_name: format!("appointments.{format}"),
    };
    let counter = Counter::default();
    let mut rows = Rows::new();
    let mut elapsed = Duration::ZERO;
    let start = Instant::now();
    let mut encoder = RowEncoder::new(&spec, Box::new(counter.clone())).unwrap();
    elapsed += start.elapsed();
    for _ in 0..ROWS / BATCH {
        let batch = rows.batch(BATCH);
        let start = Instant::now();
        encoder.write_batch(&batch).unwrap();
        elapsed += start.elapsed();
    }
    let start = Instant::now();
    encoder.finish().unwrap();
    elapsed += start.elapsed();
    (elapsed, counter.0.load(Ordering::Relaxed))
}

/// The same rows as serde_json objects, one per line: what a straightforward encoder does.
fn serde_json_reference() -> (Duration, u64) {
    let columns = columns();
    let mut out = Counter::default();
    let mut rows = Rows::new();
    let mut elapsed = Duration::ZERO;
    for _ in 0..ROWS / BATCH {
        let batch = rows.batch(BATCH);
        let start = Instant::now();
        for row in &batch {
            let object: serde_json::Map<String, serde_json::Value> = columns
                .iter()
                .zip(row)
                .map(|(c, v)| {
                    let v = match v {
                        Value::Null => serde_json::Value::Null,
                        Value::Bool(b) => (*b).into(),
                        Value::Int(i) => (*i).into(),
                        Value::Decimal(d) => {
                            serde_json::Number::from_str(&d.to_string()).unwrap().into()
                        }
                        Value::Text(s) => s.clone().into(),
                        Value::Date(d) => d.to_string().into(),
                        Value::DateTime(dt) if c.ty == ColumnType::Timestamp => {
                            dt.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string().into()
                        }
                        Value::DateTime(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.f").to_string().into(),
                    };
                    (c.name.clone(), v)
                })
                .collect();
            serde_json::to_writer(&mut out, &object).unwrap();
            out.write_all(b"\n").unwrap();
        }
        elapsed += start.elapsed();
    }
    (elapsed, out.0.load(Ordering::Relaxed))
}

/// The whole pipeline: rows generated on the runtime, encoded on a blocking thread.
fn pipeline(format: OutputFormat, compression: Compression, encrypted: bool) -> (Duration, u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    runtime.block_on(async {
        let spec = ExportSpec {
            format,
            compression,
            columns: columns(),
            entry_name: format!("appointments.{format}"),
        };
        let start = Instant::now();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let progress = Arc::new(Progress::new());
        let mut out = spawn_pipeline(spec, rx, progress.clone(), CancellationToken::new());
        if encrypted {
            // The job path: CSE1 (AES-256-GCM) after compression, as the workers store files.
            out = cipherstream::jobs::encrypt(out, [7u8; 32]).unwrap();
        }
        tokio::spawn(async move {
            let mut rows = Rows::new();
            for _ in 0..ROWS / BATCH {
                if tx.send(Ok(rows.batch(BATCH))).await.is_err() {
                    return;
                }
            }
        });
        let mut bytes = 0u64;
        while let Some(chunk) = out.recv().await {
            bytes += chunk.unwrap().len() as u64;
        }
        assert_eq!(progress.rows(), ROWS as u64);
        (start.elapsed(), bytes)
    })
}

fn main() {
    println!(
        "{ROWS} rows x {} columns, batches of {BATCH}",
        columns().len()
    );
    print_header();
    for format in OutputFormat::ALL {
        let mut raw = 0;
        for compression in [Compression::None, Compression::Gzip] {
            let (elapsed, bytes) = encode(format, compression);
            if compression == Compression::None {
                raw = bytes;
            }
            print_row(&Measure {
                label: format!("{format} / {compression}"),
                elapsed,
                bytes,
                raw_bytes: raw,
            });
        }
    }
    let (elapsed, bytes) = serde_json_reference();
    print_row(&Measure {
        label: "reference: serde_json Map per row".into(),
        elapsed,
        bytes,
        raw_bytes: bytes,
    });
    for (format, compression) in [
        (OutputFormat::Ndjson, Compression::None),
        (OutputFormat::Ndjson, Compression::Gzip),
        (OutputFormat::Parquet, Compression::None),
    ] {
        let (elapsed, bytes) = pipeline(format, compression, false);
        print_row(&Measure {
            label: format!("pipeline {format} / {compression} *"),
            elapsed,
            bytes,
            raw_bytes: bytes,
        });
    }
    // Encryption overhead of the job path, side by side in one run (three rounds each,
    // alternating, best of three so a noisy neighbour does not decide the ratio).
    let (mut plain, mut sealed) = (Duration::MAX, Duration::MAX);
    let (mut plain_bytes, mut sealed_bytes) = (0, 0);
    for _ in 0..3 {
        let (t, b) = pipeline(OutputFormat::Ndjson, Compression::Gzip, false);
        (plain, plain_bytes) = (plain.min(t), b);
        let (t, b) = pipeline(OutputFormat::Ndjson, Compression::Gzip, true);
        (sealed, sealed_bytes) = (sealed.min(t), b);
    }
    for (label, elapsed, bytes) in [
        ("job path ndjson / gzip, unencrypted *", plain, plain_bytes),
        ("job path ndjson / gzip + CSE1 *", sealed, sealed_bytes),
    ] {
        print_row(&Measure {
            label: label.into(),
            elapsed,
            bytes,
            raw_bytes: bytes,
        });
    }
    println!("* end to end, row generation on another thread included; raw = out");
    println!(
        "encryption overhead (best of 3 each): {:+.1}%",
        (sealed.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
    );
}
