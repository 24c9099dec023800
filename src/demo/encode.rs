//! Text forms of cells: `YYYY-MM-DD` dates and `YYYY-MM-DD HH:MM:SS` times (the exact
//! format the extraction code compares SQLite values with), and rows in PostgreSQL's
//! COPY text format.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::value::Value;

/// `YYYY-MM-DD` (years 0–9999), without going through `strftime` parsing: dates are
/// the most frequent cells and formatting them was the hot spot of the SQLite load.
pub(crate) fn date_text(d: NaiveDate) -> String {
    let mut s = String::with_capacity(19);
    push_date(&mut s, d);
    s
}

/// `YYYY-MM-DD HH:MM:SS`: whole seconds, the format the extraction code compares with.
pub(crate) fn datetime_text(t: NaiveDateTime) -> String {
    let mut s = String::with_capacity(19);
    push_date(&mut s, t.date());
    s.push(' ');
    push_digits(&mut s, t.hour(), 2);
    s.push(':');
    push_digits(&mut s, t.minute(), 2);
    s.push(':');
    push_digits(&mut s, t.second(), 2);
    s
}

fn push_date(s: &mut String, d: NaiveDate) {
    push_digits(s, d.year().clamp(0, 9999) as u32, 4);
    s.push('-');
    push_digits(s, d.month(), 2);
    s.push('-');
    push_digits(s, d.day(), 2);
}

fn push_digits(s: &mut String, mut v: u32, width: u32) {
    let mut digits = [b'0'; 4];
    for slot in digits[..width as usize].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    digits[..width as usize]
        .iter()
        .for_each(|&b| s.push(b as char));
}

/// One row in PostgreSQL's COPY text format: tab-separated, `\N` for NULL, backslash
/// escapes for the characters that would break the format.
pub(crate) fn encode_copy_row(buf: &mut Vec<u8>, row: &[Value]) {
    use std::io::Write;
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        // Writing into a Vec cannot fail.
        let _ = match v {
            Value::Null => buf.write_all(b"\\N"),
            Value::Bool(x) => buf.write_all(if *x { b"t" } else { b"f" }),
            Value::Int(x) => write!(buf, "{x}"),
            Value::Decimal(x) => write!(buf, "{x}"),
            Value::Date(x) => buf.write_all(date_text(*x).as_bytes()),
            Value::DateTime(x) => buf.write_all(datetime_text(*x).as_bytes()),
            Value::Text(s) => {
                for byte in s.bytes() {
                    match byte {
                        b'\\' => buf.extend_from_slice(b"\\\\"),
                        b'\t' => buf.extend_from_slice(b"\\t"),
                        b'\n' => buf.extend_from_slice(b"\\n"),
                        b'\r' => buf.extend_from_slice(b"\\r"),
                        other => buf.push(other),
                    }
                }
                Ok(())
            }
        };
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn copy_text_escapes_and_formats() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
        let row = vec![
            Value::Int(7),
            Value::Null,
            Value::Text("O'Brien\tline\\two\n".into()),
            Value::Decimal(Decimal::new(1250, 2)),
            Value::Bool(true),
            Value::Date(d),
            Value::DateTime(d.and_hms_opt(9, 5, 0).unwrap()),
        ];
        let mut buf = Vec::new();
        encode_copy_row(&mut buf, &row);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "7\t\\N\tO'Brien\\tline\\\\two\\n\t12.50\tt\t2024-03-05\t2024-03-05 09:05:00\n"
        );
    }

    #[test]
    fn dates_format_like_chrono() {
        let t = NaiveDate::from_ymd_opt(987, 1, 9)
            .unwrap()
            .and_hms_opt(7, 5, 3)
            .unwrap();
        assert_eq!(datetime_text(t), t.format("%Y-%m-%d %H:%M:%S").to_string());
        let d = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
        assert_eq!(date_text(d), "2025-12-31");
    }
}
