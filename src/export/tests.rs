//! Round trips of every format and compression through the readers users will use.

use std::io::{Cursor, Read};
use std::str::FromStr;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use super::*;
use crate::value::{ColumnSpec, ColumnType, Row, Value};

fn column(name: &str, ty: ColumnType, nullable: bool) -> ColumnSpec {
    let scale = if ty == ColumnType::Decimal { 2 } else { 0 };
    ColumnSpec {
        name: name.to_owned(),
        ty,
        nullable,
        scale,
    }
}

pub(super) fn columns() -> Vec<ColumnSpec> {
    vec![
        column("id", ColumnType::Integer, false),
        column("name", ColumnType::String, true),
        column("fee", ColumnType::Decimal, true),
        column("paid", ColumnType::Boolean, true),
        column("dob", ColumnType::Date, true),
        column("starts_at", ColumnType::Datetime, true),
        column("created_at", ColumnType::Timestamp, true),
    ]
}

fn dec(s: &str) -> Value {
    Value::Decimal(Decimal::from_str(s).unwrap())
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn datetime(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        vec![
            Value::Int(1),
            Value::Text("Zoë O'Brien".into()),
            dec("120.00"),
            Value::Bool(true),
            Value::Date(date(1984, 2, 29)),
            Value::DateTime(datetime("2024-03-09 08:30:00")),
            Value::DateTime(datetime("2024-03-01 22:15:07.25")),
        ],
        vec![
            Value::Int(-9_007_199_254_740_993),
            Value::Text("say \"hi\",\nthen\r\nleave\t\\ 🦷 日本".into()),
            dec("-5.10"),
            Value::Bool(false),
            Value::Date(date(2001, 12, 31)),
            Value::DateTime(datetime("1999-12-31 23:59:59.000001")),
            Value::DateTime(datetime("2024-01-01 00:00:00")),
        ],
        vec![
            Value::Int(3),
            Value::Null,
            dec("0.01"),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ],
        vec![
            Value::Int(i64::MAX),
            Value::Text(String::new()),
            Value::Null,
            Value::Bool(true),
            Value::Date(date(1970, 1, 1)),
            Value::DateTime(datetime("1970-01-01 00:00:00")),
            Value::DateTime(datetime("1969-12-31 23:59:59.5")),
        ],
    ]
}

pub(super) fn spec(format: OutputFormat, compression: Compression) -> ExportSpec {
    ExportSpec {
        format,
        compression,
        columns: columns(),
        entry_name: file_name("appointments", format, Compression::None),
    }
}

/// The first two rows exactly as NDJSON lines.
const ROW_1_JSON: &str = r#"{"id":1,"name":"Zoë O'Brien","fee":120.00,"paid":true,"dob":"1984-02-29","starts_at":"2024-03-09T08:30:00","created_at":"2024-03-01T22:15:07.250000Z"}"#;
const ROW_2_JSON: &str = r#"{"id":-9007199254740993,"name":"say \"hi\",\nthen\r\nleave\t\\ 🦷 日本","fee":-5.10,"paid":false,"dob":"2001-12-31","starts_at":"1999-12-31T23:59:59.000001","created_at":"2024-01-01T00:00:00Z"}"#;
const ROW_3_JSON: &str =
    r#"{"id":3,"name":null,"fee":0.01,"paid":null,"dob":null,"starts_at":null,"created_at":null}"#;

fn encode(format: OutputFormat, compression: Compression, rows: &[Row]) -> Vec<u8> {
    encode_to_vec(&spec(format, compression), rows).unwrap()
}

#[test]
fn ndjson_writes_exact_typed_values_and_parses() {
    let out = String::from_utf8(encode(OutputFormat::Ndjson, Compression::None, &rows())).unwrap();
    let lines: Vec<&str> = out.split_terminator('\n').collect();
    assert!(out.ends_with('\n'));
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[..3], [ROW_1_JSON, ROW_2_JSON, ROW_3_JSON]);
    for (line, row) in lines.iter().zip(rows()) {
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = parsed.as_object().unwrap();
        let mut names: Vec<String> = columns().into_iter().map(|c| c.name).collect();
        names.sort(); // serde_json's map is sorted; the exact lines above check the order
        assert_eq!(object.keys().cloned().collect::<Vec<_>>(), names);
        match &row[1] {
            Value::Text(s) => assert_eq!(object["name"].as_str(), Some(s.as_str())),
            _ => assert!(object["name"].is_null()),
        }
    }
    assert!(lines[3].starts_with(r#"{"id":9223372036854775807,"name":"","fee":null,"#));
}

#[test]
fn json_is_one_array_of_the_ndjson_objects() {
    let out = String::from_utf8(encode(OutputFormat::Json, Compression::None, &rows())).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 4);
    let ndjson =
        String::from_utf8(encode(OutputFormat::Ndjson, Compression::None, &rows())).unwrap();
    let objects: Vec<&str> = ndjson.lines().collect();
    assert_eq!(out, format!("[\n{}\n]\n", objects.join(",\n")));
}

#[test]
fn csv_is_rfc4180_with_header_and_same_text_forms() {
    let out = encode(OutputFormat::Csv, Compression::None, &rows());
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.starts_with("id,name,fee,paid,dob,starts_at,created_at\r\n"));
    assert!(text.contains("\r\n3,,0.01,,,,\r\n"));
    let mut reader = ::csv::ReaderBuilder::new().from_reader(Cursor::new(out));
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        headers,
        columns().iter().map(|c| c.name.clone()).collect::<Vec<_>>()
    );
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(
        records[0],
        [
            "1",
            "Zoë O'Brien",
            "120.00",
            "true",
            "1984-02-29",
            "2024-03-09T08:30:00",
            "2024-03-01T22:15:07.250000Z"
        ]
    );
    assert_eq!(
        records[1],
        [
            "-9007199254740993",
            "say \"hi\",\nthen\r\nleave\t\\ 🦷 日本",
            "-5.10",
            "false",
            "2001-12-31",
            "1999-12-31T23:59:59.000001",
            "2024-01-01T00:00:00Z"
        ]
    );
    assert_eq!(records[2], ["3", "", "0.01", "", "", "", ""]);
    assert_eq!(records[3][..3], ["9223372036854775807", "", ""]);
    assert_eq!(records.len(), 4);
}

fn read_parquet(bytes: Vec<u8>) -> (arrow_schema::SchemaRef, Vec<RecordBatch>, usize) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
    let row_groups = builder.metadata().num_row_groups();
    let schema = builder.schema().clone();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (schema, batches, row_groups)
}

#[test]
fn parquet_round_trips_types_nulls_and_values() {
    let (schema, batches, _) =
        read_parquet(encode(OutputFormat::Parquet, Compression::None, &rows()));
    let types: Vec<(&str, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", DataType::Int64, false),
            ("name", DataType::Utf8, true),
            ("fee", DataType::Decimal128(18, 2), true),
            ("paid", DataType::Boolean, true),
            ("dob", DataType::Date32, true),
            (
                "starts_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true
            ),
            (
                "created_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true
            ),
        ]
    );
    let batch = arrow_select_all(&batches);
    assert_eq!(batch.num_rows(), 4);
    let ids = batch.column(0).as_primitive::<Int64Type>();
    assert_eq!(
        ids.values().to_vec(),
        [1, -9_007_199_254_740_993, 3, i64::MAX]
    );
    let names = batch.column(1).as_string::<i32>();
    assert_eq!(names.value(1), "say \"hi\",\nthen\r\nleave\t\\ 🦷 日本");
    assert!(names.is_null(2));
    assert_eq!(names.value(3), "");
    let fees = batch.column(2).as_primitive::<Decimal128Type>();
    assert_eq!(fees.value_as_string(0), "120.00");
    assert_eq!(fees.value_as_string(1), "-5.10");
    assert_eq!(fees.value_as_string(2), "0.01");
    assert!(fees.is_null(3));
    let paid = batch.column(3).as_boolean();
    assert!(paid.value(0) && !paid.value(1) && paid.is_null(2));
    let dob = batch.column(4).as_primitive::<Date32Type>();
    assert_eq!(dob.value_as_date(0), Some(date(1984, 2, 29)));
    assert_eq!(dob.value(3), 0);
    let starts = batch.column(5).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        starts.value_as_datetime(1),
        Some(datetime("1999-12-31 23:59:59.000001"))
    );
    assert!(starts.is_null(2));
    let created = batch.column(6).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        created.value_as_datetime(0),
        Some(datetime("2024-03-01 22:15:07.25"))
    );
    assert_eq!(created.value(3), -500_000);
}

fn arrow_select_all(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "small inputs come back as one batch");
    batches[0].clone()
}

#[test]
fn parquet_row_groups_stay_bounded() {
    let row = rows().remove(0);
    let many: Vec<Row> = (0..70_000).map(|_| row.clone()).collect();
    let (_, batches, row_groups) =
        read_parquet(encode(OutputFormat::Parquet, Compression::None, &many));
    assert_eq!(row_groups, 2);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 70_000);
}

#[test]
fn gzip_and_zip_hold_the_uncompressed_bytes() {
    for format in OutputFormat::ALL {
        let plain = encode(format, Compression::None, &rows());

        let gz = encode(format, Compression::Gzip, &rows());
        assert_eq!(&gz[..2], [0x1f, 0x8b]);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain, "{format} gzip");

        let zip = encode(format, Compression::Zip, &rows());
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), format!("appointments.{format}"));
        assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
        let mut unzipped = Vec::new();
        entry.read_to_end(&mut unzipped).unwrap(); // checks the CRC too
        assert_eq!(unzipped, plain, "{format} zip");
    }
}

#[test]
fn empty_results_are_valid_files_in_every_format() {
    for compression in Compression::ALL {
        let decompress = |bytes: Vec<u8>| -> Vec<u8> {
            let mut out = Vec::new();
            match compression {
                Compression::None => return bytes,
                Compression::Gzip => {
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_end(&mut out)
                        .unwrap();
                }
                Compression::Zip => {
                    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
                    archive.by_index(0).unwrap().read_to_end(&mut out).unwrap();
                }
            }
            out
        };
        let ndjson = decompress(encode(OutputFormat::Ndjson, compression, &[]));
        assert!(ndjson.is_empty());
        let json = decompress(encode(OutputFormat::Json, compression, &[]));
        assert!(serde_json::from_slice::<Vec<serde_json::Value>>(&json)
            .unwrap()
            .is_empty());
        assert_eq!(json, b"[]\n");
        let csv = decompress(encode(OutputFormat::Csv, compression, &[]));
        assert_eq!(csv, b"id,name,fee,paid,dob,starts_at,created_at\r\n");
        let parquet = decompress(encode(OutputFormat::Parquet, compression, &[]));
        let (schema, batches, _) = read_parquet(parquet);
        assert_eq!(schema.fields().len(), 7);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }
}

#[test]
fn rows_that_do_not_fit_the_columns_are_errors() {
    let short = vec![vec![Value::Int(1)]];
    for format in OutputFormat::ALL {
        let err = encode_to_vec(&spec(format, Compression::None), &short).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{format}");
    }
    let parquet = spec(OutputFormat::Parquet, Compression::None);
    let mut null_id = rows().remove(2);
    null_id[0] = Value::Null;
    let err = encode_to_vec(&parquet, &[null_id]).unwrap_err();
    assert!(
        err.to_string().contains("column id is not nullable"),
        "{err}"
    );
    let mut rounded = rows().remove(0);
    rounded[2] = dec("1.005");
    let err = encode_to_vec(&parquet, &[rounded]).unwrap_err();
    assert!(
        err.to_string().contains("does not fit decimal(18, 2)"),
        "{err}"
    );
    let mut widened = rows().remove(0);
    widened[2] = dec("7.5");
    let (_, batches, _) = read_parquet(encode_to_vec(&parquet, &[widened]).unwrap());
    assert_eq!(
        batches[0]
            .column(2)
            .as_primitive::<Decimal128Type>()
            .value_as_string(0),
        "7.50"
    );
}

#[test]
fn row_encoder_writes_to_a_boxed_sink() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Shared::default();
    let spec = spec(OutputFormat::Csv, Compression::Gzip);
    let mut encoder = RowEncoder::new(&spec, Box::new(sink.clone())).unwrap();
    for row in rows() {
        encoder.write_batch(&[row]).unwrap();
    }
    encoder.finish().unwrap();
    assert_eq!(
        *sink.0.lock().unwrap(),
        encode_to_vec(&spec, &rows()).unwrap()
    );
}
