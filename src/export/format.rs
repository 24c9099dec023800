//! The output formats and compressions a client can ask for, and the file names and
//! content types they imply.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The encoding of the rows.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// One JSON object per line.
    #[default]
    Ndjson,
    /// One JSON array of objects.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// Apache Parquet (snappy-compressed columns).
    Parquet,
}

impl OutputFormat {
    /// Every format, in the order the API lists them.
    pub const ALL: [OutputFormat; 4] = [
        OutputFormat::Ndjson,
        OutputFormat::Json,
        OutputFormat::Csv,
        OutputFormat::Parquet,
    ];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Ndjson => "ndjson",
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    /// The `Content-Type` of an uncompressed file.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Ndjson => "application/x-ndjson",
            OutputFormat::Json => "application/json",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// The compression wrapped around the encoded rows.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// The encoded rows as they are.
    #[default]
    None,
    /// A gzip stream.
    Gzip,
    /// A zip archive holding one entry.
    Zip,
}

impl Compression {
    /// Every compression, in the order the API lists them.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zip];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zip => "zip",
        }
    }

    /// The extension appended to the format's (`.gz`, `.zip`), with its dot; empty for none.
    pub fn extension_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
        }
    }

    /// The `Content-Type` of a compressed file; `None` when the format's own applies.
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("application/gzip"),
            Compression::Zip => Some("application/zip"),
        }
    }
}

/// The `Content-Type` of a file of `format` compressed with `compression`.
pub fn content_type(format: OutputFormat, compression: Compression) -> &'static str {
    compression
        .content_type()
        .unwrap_or_else(|| format.content_type())
}

/// The download name, e.g. `appointments_2024-01-01_2024-12-31.ndjson.gz`.
pub fn file_name(stem: &str, format: OutputFormat, compression: Compression) -> String {
    format!(
        "{stem}.{}{}",
        format.extension(),
        compression.extension_suffix()
    )
}

/// A format or compression name that is not one of the accepted values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{given}'; accepted values: {accepted}")]
pub struct UnknownValue {
    kind: &'static str,
    given: String,
    accepted: &'static str,
}

impl FromStr for OutputFormat {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "format",
                given: s.to_owned(),
                accepted: "ndjson, json, csv, parquet",
            })
    }
}

impl FromStr for Compression {
    type Err = UnknownValue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "compression",
                given: s.to_owned(),
                accepted: "none, gzip, zip",
            })
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for format in OutputFormat::ALL {
            assert_eq!(format.as_str().parse::<OutputFormat>(), Ok(format));
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{}\"", format.as_str()));
            assert_eq!(serde_json::from_str::<OutputFormat>(&json).unwrap(), format);
        }
        for compression in Compression::ALL {
            assert_eq!(compression.as_str().parse::<Compression>(), Ok(compression));
            let json = serde_json::to_string(&compression).unwrap();
            assert_eq!(json, format!("\"{}\"", compression.as_str()));
        }
        assert_eq!(OutputFormat::default(), OutputFormat::Ndjson);
        assert_eq!(Compression::default(), Compression::None);
    }

    #[test]
    fn unknown_values_list_the_accepted_ones() {
        let err = "xml".parse::<OutputFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown format 'xml'; accepted values: ndjson, json, csv, parquet"
        );
        let err = "bz2".parse::<Compression>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown compression 'bz2'; accepted values: none, gzip, zip"
        );
    }

    #[test]
    fn file_names_and_content_types() {
        let stem = "appointments_2024-01-01_2024-12-31";
        assert_eq!(
            file_name(stem, OutputFormat::Ndjson, Compression::Gzip),
            "appointments_2024-01-01_2024-12-31.ndjson.gz"
        );
        assert_eq!(
            file_name("x", OutputFormat::Csv, Compression::Zip),
            "x.csv.zip"
        );
        assert_eq!(
            file_name("x", OutputFormat::Parquet, Compression::None),
            "x.parquet"
        );
        assert_eq!(
            content_type(OutputFormat::Csv, Compression::None),
            "text/csv; charset=utf-8"
        );
        assert_eq!(
            content_type(OutputFormat::Json, Compression::Zip),
            "application/zip"
        );
        assert_eq!(
            content_type(OutputFormat::Parquet, Compression::Gzip),
            "application/gzip"
        );
    }
}
