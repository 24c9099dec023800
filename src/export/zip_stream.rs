//! A zip archive of one deflated entry, written front to back without seeking.
//!
//! Sizes and CRC go in a data descriptor after the entry (general-purpose flag bit 3)
//! and in the central directory, as Go's `archive/zip` does: ZIP64 fields only once a
//! size or offset reaches 4 GiB, so the usual archive is a classic zip every reader
//! opens. The `zip` crate's `new_stream` cannot do this for a size not known up front:
//! past 4 GiB it fails unless `large_file(true)` was set at the start, which puts ZIP64
//! records in every archive, however small.

use std::io::{self, Write};

use chrono::{Datelike, NaiveDateTime, Timelike};
use flate2::write::DeflateEncoder;
use flate2::Crc;

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD_SIG: u32 = 0x0605_4b50;

const VERSION_DEFLATE: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// "Made by" Unix, so extractors apply the permission bits of the external attributes.
const MADE_BY_UNIX: u16 = 3 << 8;
/// Sizes and CRC in a data descriptor; the name is UTF-8.
const FLAGS: u16 = 0x0008 | 0x0800;
const METHOD_DEFLATE: u16 = 8;
/// A regular file, rw-r--r--.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;
/// From this value on, a size or offset needs its ZIP64 field (0xFFFFFFFF is the marker).
const ZIP64_LIMIT: u64 = u32::MAX as u64;

/// Writes one zip entry as it arrives; `finish` writes the descriptor and directory.
pub(crate) struct ZipStream<W: Write> {
    deflate: DeflateEncoder<CountingWriter<W>>,
    crc: Crc,
    uncompressed: u64,
    entry: EntryHeader,
}

/// What the local header said, repeated in the central directory.
#[derive(Debug, Clone)]
struct EntryHeader {
    name: Vec<u8>,
    dos_time: u16,
    dos_date: u16,
    /// Bytes of the local header, where the compressed data starts.
    header_len: u64,
}

/// The values only known once the entry is complete.
#[derive(Debug, Clone, Copy)]
struct EntryTotals {
    crc32: u32,
    compressed: u64,
    uncompressed: u64,
}

impl<W: Write> ZipStream<W> {
    /// Starts the archive with the local header of `name`, modified at `modified` (local time).
    pub(crate) fn new(
        inner: W,
        name: &str,
        modified: NaiveDateTime,
        level: u32,
    ) -> io::Result<Self> {
        let name_len = u16::try_from(name.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "zip entry name over 65535 bytes",
            )
        })?;
        let (dos_time, dos_date) = dos_date_time(modified);
        let mut header = Vec::with_capacity(30 + name.len());
        put_u32(&mut header, LOCAL_HEADER_SIG);
        put_u16(&mut header, VERSION_DEFLATE);
        put_u16(&mut header, FLAGS);
        put_u16(&mut header, METHOD_DEFLATE);
        put_u16(&mut header, dos_time);
        put_u16(&mut header, dos_date);
        // CRC and sizes: zero here, the real values follow in the data descriptor.
        put_u32(&mut header, 0);
        put_u32(&mut header, 0);
        put_u32(&mut header, 0);
        put_u16(&mut header, name_len);
        put_u16(&mut header, 0); // extra field length
        header.extend_from_slice(name.as_bytes());

        let mut out = CountingWriter { inner, count: 0 };
        out.write_all(&header)?;
        Ok(ZipStream {
            deflate: DeflateEncoder::new(out, flate2::Compression::new(level)),
            crc: Crc::new(),
            uncompressed: 0,
            entry: EntryHeader {
                name: name.as_bytes().to_vec(),
                dos_time,
                dos_date,
                header_len: header.len() as u64,
            },
        })
    }

    /// Ends the entry and writes the data descriptor, central directory and end records.
    pub(crate) fn finish(self) -> io::Result<W> {
        let mut out = self.deflate.finish()?;
        let totals = EntryTotals {
            crc32: self.crc.sum(),
            compressed: out.count - self.entry.header_len,
            uncompressed: self.uncompressed,
        };
        out.inner.write_all(&trailer(&self.entry, totals))?;
        Ok(out.inner)
    }
}

impl<W: Write> Write for ZipStream<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.deflate.write(buf)?;
        self.crc.update(&buf[..written]);
        self.uncompressed += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.deflate.flush()
    }
}

/// Everything after the compressed data: descriptor, central directory, end records.
fn trailer(entry: &EntryHeader, totals: EntryTotals) -> Vec<u8> {
    let zip64_sizes = totals.compressed >= ZIP64_LIMIT || totals.uncompressed >= ZIP64_LIMIT;
    let mut out = Vec::with_capacity(200 + entry.name.len());

    put_u32(&mut out, DATA_DESCRIPTOR_SIG);
    put_u32(&mut out, totals.crc32);
    if zip64_sizes {
        put_u64(&mut out, totals.compressed);
        put_u64(&mut out, totals.uncompressed);
    } else {
        put_u32(&mut out, totals.compressed as u32);
        put_u32(&mut out, totals.uncompressed as u32);
    }

    let central_offset = entry.header_len + totals.compressed + out.len() as u64;
    let central_start = out.len();
    let version = if zip64_sizes {
        VERSION_ZIP64
    } else {
        VERSION_DEFLATE
    };
    put_u32(&mut out, CENTRAL_HEADER_SIG);
    put_u16(&mut out, MADE_BY_UNIX | version);
    put_u16(&mut out, version);
    put_u16(&mut out, FLAGS);
    put_u16(&mut out, METHOD_DEFLATE);
    put_u16(&mut out, entry.dos_time);
    put_u16(&mut out, entry.dos_date);
    put_u32(&mut out, totals.crc32);
    if zip64_sizes {
        put_u32(&mut out, u32::MAX);
        put_u32(&mut out, u32::MAX);
    } else {
        put_u32(&mut out, totals.compressed as u32);
        put_u32(&mut out, totals.uncompressed as u32);
    }
    put_u16(&mut out, entry.name.len() as u16);
    put_u16(&mut out, if zip64_sizes { 20 } else { 0 }); // extra field length
    put_u16(&mut out, 0); // comment length
    put_u16(&mut out, 0); // disk number start
    put_u16(&mut out, 0); // internal attributes
    put_u32(&mut out, EXTERNAL_ATTRIBUTES);
    put_u32(&mut out, 0); // local header offset: the only entry starts the archive
    out.extend_from_slice(&entry.name);
    if zip64_sizes {
        // ZIP64 extended information: the fields set to 0xFFFFFFFF above, in order.
        put_u16(&mut out, 0x0001);
        put_u16(&mut out, 16);
        put_u64(&mut out, totals.uncompressed);
        put_u64(&mut out, totals.compressed);
    }
    let central_size = (out.len() - central_start) as u64;

    let (mut entries, mut size_field, mut offset_field) = (1u16, central_size, central_offset);
    if central_offset >= ZIP64_LIMIT {
        let zip64_eocd_offset = central_offset + central_size;
        put_u32(&mut out, ZIP64_EOCD_SIG);
        put_u64(&mut out, 44); // size of the rest of this record
        put_u16(&mut out, MADE_BY_UNIX | VERSION_ZIP64);
        put_u16(&mut out, VERSION_ZIP64);
        put_u32(&mut out, 0); // this disk
        put_u32(&mut out, 0); // disk of the central directory
        put_u64(&mut out, 1); // entries on this disk
        put_u64(&mut out, 1); // entries in total
        put_u64(&mut out, central_size);
        put_u64(&mut out, central_offset);

        put_u32(&mut out, ZIP64_LOCATOR_SIG);
        put_u32(&mut out, 0); // disk of the ZIP64 end record
        put_u64(&mut out, zip64_eocd_offset);
        put_u32(&mut out, 1); // disks in total

        (entries, size_field, offset_field) = (u16::MAX, ZIP64_LIMIT, ZIP64_LIMIT);
    }
    put_u32(&mut out, EOCD_SIG);
    put_u16(&mut out, 0); // this disk
    put_u16(&mut out, 0); // disk of the central directory
    put_u16(&mut out, entries);
    put_u16(&mut out, entries);
    put_u32(&mut out, size_field as u32);
    put_u32(&mut out, offset_field as u32);
    put_u16(&mut out, 0); // comment length
    out
}

/// MS-DOS time and date; outside 1980–2107 (which DOS cannot express) it clamps.
fn dos_date_time(t: NaiveDateTime) -> (u16, u16) {
    match t.year() {
        ..1980 => (0, (1 << 5) | 1),
        2108.. => ((23 << 11) | (59 << 5) | 29, (127 << 9) | (12 << 5) | 31),
        year => {
            let date = (((year - 1980) as u16) << 9) | ((t.month() as u16) << 5) | t.day() as u16;
            let time =
                ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
            (time, date)
        }
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Counts the bytes passed to `inner`, for the compressed size and directory offset.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read, Seek, SeekFrom};

    fn modified() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2024, 7, 15)
            .unwrap()
            .and_hms_opt(13, 45, 31)
            .unwrap()
    }

    fn archive(data: &[u8], name: &str) -> Vec<u8> {
        let mut zip = ZipStream::new(Vec::new(), name, modified(), 1).unwrap();
        // Uneven pieces, as an encoder writes them.
        for piece in data.chunks(777) {
            zip.write_all(piece).unwrap();
        }
        zip.finish().unwrap()
    }

    #[test]
    fn zip_crate_reads_the_entry_back() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let bytes = archive(&data, "rows_é.ndjson");
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 1);
        let mut entry = zip.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "rows_é.ndjson");
        assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
        assert_eq!(entry.size(), data.len() as u64);
        assert_eq!(entry.unix_mode(), Some(0o100_644));
        let time = entry.last_modified().unwrap();
        assert_eq!((time.year(), time.month(), time.day()), (2024, 7, 15));
        assert_eq!((time.hour(), time.minute(), time.second()), (13, 45, 30));
        let mut back = Vec::new();
        entry.read_to_end(&mut back).unwrap(); // also checks the CRC
        assert_eq!(back, data);
    }

    #[test]
    fn small_archives_are_classic_zip_without_zip64_records() {
        let bytes = archive(b"hello", "a.csv");
        let has = |sig: u32| bytes.windows(4).any(|w| w == sig.to_le_bytes());
        assert!(has(DATA_DESCRIPTOR_SIG) && has(EOCD_SIG));
        assert!(!has(ZIP64_EOCD_SIG) && !has(ZIP64_LOCATOR_SIG));
        // Descriptor with 4-byte sizes right after the data, then the directory.
        let central = bytes
            .windows(4)
            .position(|w| w == CENTRAL_HEADER_SIG.to_le_bytes());
        let descriptor = bytes
            .windows(4)
            .position(|w| w == DATA_DESCRIPTOR_SIG.to_le_bytes());
        assert_eq!(central.unwrap() - descriptor.unwrap(), 16);
    }

    #[test]
    fn empty_entry_is_a_valid_archive() {
        let bytes = archive(b"", "empty.csv");
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut back = Vec::new();
        zip.by_index(0).unwrap().read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }

    /// A mostly-zero "file" with real bytes at a few offsets, for archives over 4 GiB.
    struct SparseFile {
        len: u64,
        pos: u64,
        pieces: Vec<(u64, Vec<u8>)>,
    }

    impl Read for SparseFile {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.len.saturating_sub(self.pos) as usize);
            buf[..n].fill(0);
            for (start, bytes) in &self.pieces {
                let end = start + bytes.len() as u64;
                let (lo, hi) = (self.pos.max(*start), (self.pos + n as u64).min(end));
                if lo < hi {
                    buf[(lo - self.pos) as usize..(hi - self.pos) as usize]
                        .copy_from_slice(&bytes[(lo - start) as usize..(hi - start) as usize]);
                }
            }
            self.pos += n as u64;
            Ok(n)
        }
    }

    impl Seek for SparseFile {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.pos = match to {
                SeekFrom::Start(p) => Some(p),
                SeekFrom::End(d) => self.len.checked_add_signed(d),
                SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            }
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            Ok(self.pos)
        }
    }

    #[test]
    fn trailer_of_an_entry_over_4_gib_has_zip64_records() {
        let header = archive(b"", "big.ndjson");
        let entry = EntryHeader {
            name: b"big.ndjson".to_vec(),
            dos_time: 0,
            dos_date: (1 << 5) | 1,
            header_len: 30 + 10,
        };
        let totals = EntryTotals {
            crc32: 0x1234_5678,
            compressed: 5 << 30,
            uncompressed: 40 << 30,
        };
        let tail = trailer(&entry, totals);
        let tail_start = entry.header_len + totals.compressed;
        let file = SparseFile {
            len: tail_start + tail.len() as u64,
            pos: 0,
            pieces: vec![
                (0, header[..entry.header_len as usize].to_vec()),
                (tail_start, tail),
            ],
        };
        let mut zip = zip::ZipArchive::new(file).unwrap();
        assert_eq!(zip.len(), 1);
        let entry = zip.by_index_raw(0).unwrap();
        assert_eq!(entry.name().unwrap(), "big.ndjson");
        assert_eq!(entry.size(), 40 << 30);
        assert_eq!(entry.compressed_size(), 5 << 30);
        assert_eq!(entry.crc32(), 0x1234_5678);
        assert_eq!(entry.header_start(), 0);
    }

    /// Streams 4.3 GiB of compressible text through deflate (about 15 s); set
    /// `CIPHERSTREAM_ZIP64_OUT=path` to keep the archive for `unzip -t` or Python's `zipfile`.
    #[test]
    fn real_zip64_entry_reads_back() {
        let size: u64 = (4 << 30) + (300 << 20);
        let mut zip = ZipStream::new(Vec::new(), "big.ndjson", modified(), 1).unwrap();
        let block: Vec<u8> = (0..1 << 20)
            .map(|i: u32| b"{}\n,x"[(i % 5) as usize])
            .collect();
        for _ in 0..size >> 20 {
            zip.write_all(&block).unwrap();
        }
        let bytes = zip.finish().unwrap();
        if let Ok(path) = std::env::var("CIPHERSTREAM_ZIP64_OUT") {
            std::fs::write(path, &bytes).unwrap();
        }
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.size(), size);
        let copied = io::copy(&mut entry, &mut io::sink()).unwrap(); // checks the CRC
        assert_eq!(copied, size);
    }
}
