//! Text forms of cell values shared by the JSON and CSV encoders.
//!
//! Dates and decimals are the hot spot of text encoding (PERFORMANCE.md), so they are
//! formatted by hand into a stack buffer: no allocation and no chrono format strings.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use rust_decimal::Decimal;

/// A small stack buffer holding one formatted value.
pub(crate) struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, byte: u8) {
        self.buf[self.len] = byte;
        self.len += 1;
    }

    /// Appends `value` as exactly `width` zero-padded decimal digits.
    fn push_digits(&mut self, mut value: u32, width: usize) {
        let end = self.len + width;
        for slot in self.buf[self.len..end].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len = end;
    }
}

impl fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `YYYY-MM-DD`; years outside 0000–9999 get chrono's signed form (`+12345-01-01`).
pub(crate) fn format_date(date: NaiveDate) -> StackBuf {
    let mut out = StackBuf::new();
    push_date(&mut out, date);
    out
}

fn push_date(out: &mut StackBuf, date: NaiveDate) {
    let year = date.year();
    if (0..=9999).contains(&year) {
        out.push_digits(year as u32, 4);
        out.push(b'-');
        out.push_digits(date.month(), 2);
        out.push(b'-');
        out.push_digits(date.day(), 2);
    } else {
        // Rare enough that the formatting machinery is fine; 48 bytes always suffice.
        let _ = fmt::Write::write_fmt(out, format_args!("{date}"));
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]`: microseconds only when non-zero, `Z` for UTC instants.
pub(crate) fn format_datetime(value: NaiveDateTime, utc: bool) -> StackBuf {
    let mut out = StackBuf::new();
    push_date(&mut out, value.date());
    let time = value.time();
    // chrono encodes a leap second as second 59 with nanoseconds >= 1e9.
    let (second, nanos) = match time.nanosecond() {
        n if n >= 1_000_000_000 => (time.second() + 1, n - 1_000_000_000),
        n => (time.second(), n),
    };
    out.push(b'T');
    out.push_digits(time.hour(), 2);
    out.push(b':');
    out.push_digits(time.minute(), 2);
    out.push(b':');
    out.push_digits(second, 2);
    let micros = nanos / 1_000;
    if micros != 0 {
        out.push(b'.');
        out.push_digits(micros, 6);
    }
    if utc {
        out.push(b'Z');
    }
    out
}

/// The decimal exactly as `Decimal`'s Display writes it, keeping its scale (`120.00`).
pub(crate) fn format_decimal(value: &Decimal) -> StackBuf {
    let mut out = StackBuf::new();
    // At most 28 digits, a sign, a point and a leading zero: always fits.
    let _ = fmt::Write::write_fmt(&mut out, format_args!("{value}"));
    out
}

/// For each byte, the character after `\` that escapes it in JSON, `u` for `\u00XX`, or 0.
const JSON_ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `s` as a quoted JSON string, escaped exactly as serde_json does.
pub(crate) fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = JSON_ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::{from_utf8, FromStr};

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn dates_are_iso() {
        let cases = [
            (NaiveDate::from_ymd_opt(2024, 1, 5).unwrap(), "2024-01-05"),
            (NaiveDate::from_ymd_opt(999, 12, 31).unwrap(), "0999-12-31"),
            (NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(), "9999-12-31"),
            (
                NaiveDate::from_ymd_opt(12345, 1, 1).unwrap(),
                "+12345-01-01",
            ),
            (NaiveDate::from_ymd_opt(-1, 1, 1).unwrap(), "-0001-01-01"),
        ];
        for (date, text) in cases {
            assert_eq!(from_utf8(format_date(date).as_bytes()).unwrap(), text);
        }
    }

    #[test]
    fn datetimes_show_fraction_only_when_present() {
        let cases = [
            ("2024-03-09 08:05:07", false, "2024-03-09T08:05:07"),
            ("2024-03-09 08:05:07", true, "2024-03-09T08:05:07Z"),
            ("2024-03-09 23:59:59.5", true, "2024-03-09T23:59:59.500000Z"),
            (
                "2024-03-09 00:00:00.000001",
                false,
                "2024-03-09T00:00:00.000001",
            ),
            // Below a microsecond is dropped, like the Parquet microsecond timestamps.
            (
                "2024-03-09 00:00:00.000000999",
                false,
                "2024-03-09T00:00:00",
            ),
        ];
        for (input, utc, text) in cases {
            let out = format_datetime(dt(input), utc);
            assert_eq!(from_utf8(out.as_bytes()).unwrap(), text, "{input}");
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 1_250_000)
            .unwrap();
        let out = format_datetime(leap, true);
        assert_eq!(
            from_utf8(out.as_bytes()).unwrap(),
            "2016-12-31T23:59:60.250000Z"
        );
    }

    #[test]
    fn decimals_keep_their_scale() {
        for text in [
            "120.00",
            "-5.10",
            "0.01",
            "0",
            "-0.0000000000000000000000000001",
        ] {
            let value = Decimal::from_str(text).unwrap();
            assert_eq!(from_utf8(format_decimal(&value).as_bytes()).unwrap(), text);
        }
        let max = Decimal::MIN.to_string();
        assert_eq!(
            from_utf8(format_decimal(&Decimal::MIN).as_bytes()).unwrap(),
            max
        );
    }

    #[test]
    fn json_strings_match_serde_json() {
        let mut samples: Vec<String> = (0u32..0x80)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        samples.extend(
            [
                "",
                "plain",
                "O'Brien, \"Jack\"\nline two\r\n\ttab",
                "Zoë Ñúñez — 日本語 🦷",
                "\u{7f}\u{80}\u{2028}\u{2029}\\",
                "\u{0}\u{1f}",
            ]
            .map(String::from),
        );
        for s in samples {
            let mut out = Vec::new();
            push_json_string(&mut out, &s);
            assert_eq!(from_utf8(&out).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }
}
