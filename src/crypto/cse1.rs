//! The CSE1 encrypted stream format (see docs/decryption.md): a 32-byte header, then
//! the plaintext in fixed-size chunks, each sealed with AES-256-GCM under the
//! customer's data key. Each chunk's nonce carries its index and a "last chunk" flag
//! and every chunk authenticates the whole header, so truncation, reordering, splicing
//! and tampering are all detected while streaming, with constant memory.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{AeadInPlace, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The first four bytes of every CSE1 file.
pub const MAGIC: &[u8; 4] = b"CSE1";
/// The format version this module reads and writes.
pub const VERSION: u8 = 1;
/// Algorithm byte for AES-256-GCM, the only algorithm defined.
pub const ALGORITHM_AES_256_GCM: u8 = 1;
/// Length of the header, which is also each chunk's associated data.
pub const HEADER_LEN: usize = 32;
/// Length of the GCM tag that follows each chunk's ciphertext.
pub const TAG_LEN: usize = 16;
/// Plaintext bytes per chunk written by [`Cse1Writer`].
pub const DEFAULT_CHUNK_SIZE: u32 = 65536;
/// Largest chunk size a reader accepts, so a hostile header cannot make it allocate gigabytes.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

const NONCE_PREFIX_LEN: usize = 7;

/// Why a CSE1 stream could not be read or its key not used.
#[derive(Debug, thiserror::Error)]
pub enum Cse1Error {
    #[error("not a CSE1 file (it does not start with \"CSE1\")")]
    NotCse1,
    #[error("the CSE1 header is cut short: the file has {0} bytes, the header alone is 32")]
    TruncatedHeader(usize),
    #[error("unsupported CSE1 version {0} (this build reads version 1)")]
    UnsupportedVersion(u8),
    #[error("unsupported CSE1 algorithm {0} (this build reads 1, AES-256-GCM)")]
    UnsupportedAlgorithm(u8),
    #[error("invalid CSE1 header: {0}")]
    InvalidHeader(&'static str),
    #[error("this file was encrypted with data key {file}, not {given}")]
    WrongKey { file: String, given: String },
    #[error("the file is truncated: it ends after {chunks} chunk(s), without its final chunk")]
    Truncated { chunks: u32 },
    #[error("chunk {chunk} failed authentication: the file is corrupted, modified, reordered, cut short or has bytes appended")]
    Authentication { chunk: u32 },
    #[error("unexpected data after the final chunk")]
    TrailingData,
    #[error("too many chunks: the chunk counter would overflow")]
    TooManyChunks,
    #[error("decryption already failed; the rest of the stream is not trusted")]
    AlreadyFailed,
    #[error("the key is not valid base64 (expected the customer's data_key)")]
    KeyNotBase64,
    #[error("the key must be 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("reading the CSE1 header")]
    Io(#[from] io::Error),
}

impl From<Cse1Error> for io::Error {
    fn from(err: Cse1Error) -> io::Error {
        match err {
            Cse1Error::Io(err) => err,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Decodes a base64 data key (as returned at customer creation) into its 32 bytes.
pub fn parse_key(key_base64: &str) -> Result<[u8; 32], Cse1Error> {
    let bytes = B64
        .decode(key_base64.trim())
        .map_err(|_| Cse1Error::KeyNotBase64)?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| Cse1Error::KeyLength(b.len()))
}

/// The size of the CSE1 file that [`Cse1Writer`] makes from `plain_len` plaintext bytes.
pub fn encrypted_len(plain_len: u64) -> u64 {
    let chunks = plain_len / u64::from(DEFAULT_CHUNK_SIZE) + 1;
    HEADER_LEN as u64 + plain_len + chunks * TAG_LEN as u64
}

/// The key id (hex, as in `data_key_id`) recorded in a CSE1 header, after checking
/// the magic, version and algorithm; `header` needs at least the first 32 bytes.
pub fn key_id_of_file(header: &[u8]) -> Result<String, Cse1Error> {
    let bytes: &[u8; HEADER_LEN] = header
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| short_header_error(header))?;
    Ok(hex::encode(Header::parse(bytes)?.key_id))
}

/// The raw 8-byte form of [`super::key_id`].
fn key_id_bytes(key: &[u8; 32]) -> [u8; 8] {
    let digest = Sha256::digest(key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

fn short_header_error(got: &[u8]) -> Cse1Error {
    let n = got.len().min(MAGIC.len());
    if got[..n] == MAGIC[..n] {
        Cse1Error::TruncatedHeader(got.len())
    } else {
        Cse1Error::NotCse1
    }
}

/// The parsed fields of a header.
struct Header {
    chunk_size: u32,
    key_id: [u8; 8],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(MAGIC);
        h[4] = VERSION;
        h[5] = ALGORITHM_AES_256_GCM;
        h[8..12].copy_from_slice(&self.chunk_size.to_be_bytes());
        h[12..20].copy_from_slice(&self.key_id);
        h[20..27].copy_from_slice(&self.nonce_prefix);
        h
    }

    fn parse(h: &[u8; HEADER_LEN]) -> Result<Header, Cse1Error> {
        if &h[..4] != MAGIC {
            return Err(Cse1Error::NotCse1);
        }
        if h[4] != VERSION {
            return Err(Cse1Error::UnsupportedVersion(h[4]));
        }
        if h[5] != ALGORITHM_AES_256_GCM {
            return Err(Cse1Error::UnsupportedAlgorithm(h[5]));
        }
        if h[6..8] != [0, 0] || h[27..32] != [0; 5] {
            return Err(Cse1Error::InvalidHeader("reserved bytes are not zero"));
        }
        let chunk_size = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            return Err(Cse1Error::InvalidHeader("chunk size is 0 or above 16 MiB"));
        }
        let mut header = Header {
            chunk_size,
            key_id: [0; 8],
            nonce_prefix: [0; NONCE_PREFIX_LEN],
        };
        header.key_id.copy_from_slice(&h[12..20]);
        header.nonce_prefix.copy_from_slice(&h[20..27]);
        Ok(header)
    }
}

/// The nonce of chunk `index`: prefix(7) ‖ u32_be(index) ‖ last(1).
fn chunk_nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u32, last: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..7].copy_from_slice(prefix);
    nonce[7..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Encrypts a byte stream into CSE1. Call [`Cse1Writer::finish`] at the end: a writer
/// dropped without it leaves a stream without its final chunk, which readers reject
/// as truncated.
pub struct Cse1Writer<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    chunk_size: usize,
    /// Plaintext of the chunk being filled; sealed in place, so it has room for the tag.
    chunk: Vec<u8>,
    index: u32,
    /// Set after a failed write: the output is then incomplete and must not be finished.
    failed: bool,
}

impl<W: Write> Cse1Writer<W> {
    /// Writes the header with a fresh random nonce prefix and returns the writer.
    pub fn new(inner: W, key: &[u8; 32]) -> io::Result<Self> {
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        OsRng.fill_bytes(&mut nonce_prefix);
        Self::build(inner, key, DEFAULT_CHUNK_SIZE, nonce_prefix)
    }

    /// Like [`Cse1Writer::new`] with a chosen nonce prefix, for known-answer tests only:
    /// reusing a prefix with the same key breaks GCM's security.
    #[cfg(test)]
    pub(crate) fn with_nonce_prefix(
        inner: W,
        key: &[u8; 32],
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
    ) -> io::Result<Self> {
        Self::build(inner, key, DEFAULT_CHUNK_SIZE, nonce_prefix)
    }

    fn build(
        mut inner: W,
        key: &[u8; 32],
        chunk_size: u32,
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
    ) -> io::Result<Self> {
        let header = Header {
            chunk_size,
            key_id: key_id_bytes(key),
            nonce_prefix,
        }
        .encode();
        inner.write_all(&header)?;
        let chunk_size = chunk_size as usize;
        Ok(Cse1Writer {
            inner,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
            header,
            nonce_prefix,
            chunk_size,
            chunk: Vec::with_capacity(chunk_size + TAG_LEN),
            index: 0,
            failed: false,
        })
    }

    /// Seals the buffered chunk and writes it out.
    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let result = self.try_seal_chunk(last);
        self.failed |= result.is_err();
        result
    }

    fn try_seal_chunk(&mut self, last: bool) -> io::Result<()> {
        // A non-last chunk needs a successor index for the final chunk.
        let next = match last {
            true => self.index,
            false => self
                .index
                .checked_add(1)
                .ok_or_else(|| io::Error::from(Cse1Error::TooManyChunks))?,
        };
        let nonce = chunk_nonce(&self.nonce_prefix, self.index, last);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &self.header, &mut self.chunk)
            .map_err(|_| io::Error::other("AES-256-GCM refused to seal a chunk"))?;
        self.chunk.extend_from_slice(&tag);
        self.inner.write_all(&self.chunk)?;
        self.chunk.clear();
        self.index = next;
        Ok(())
    }

    fn check_usable(&self) -> io::Result<()> {
        match self.failed {
            true => Err(io::Error::other(
                "an earlier write to this CSE1 stream failed; its output is incomplete",
            )),
            false => Ok(()),
        }
    }

    /// Seals the final chunk (possibly empty), flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.check_usable()?;
        self.seal_chunk(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Cse1Writer<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        self.check_usable()?;
        let total = data.len();
        while !data.is_empty() {
            let take = (self.chunk_size - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..take]);
            data = &data[take..];
            // Sealing as soon as a chunk is full means a plaintext whose length is a
            // multiple of the chunk size ends with an empty final chunk.
            if self.chunk.len() == self.chunk_size {
                self.seal_chunk(false)?;
            }
        }
        Ok(total)
    }

    /// Flushes the inner writer; buffered plaintext stays buffered until its chunk is
    /// full or [`Cse1Writer::finish`] is called, since chunk boundaries are fixed.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Reading,
    Done,
    Failed,
}

/// Decrypts a CSE1 stream; every byte it returns has been authenticated, and it fails
/// (with an [`io::Error`] wrapping a [`Cse1Error`]) on truncation, reordering,
/// tampering or data after the final chunk.
pub struct Cse1Reader<R: Read> {
    inner: R,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    key_id: [u8; 8],
    /// Length of one full sealed chunk (chunk size + tag).
    sealed_len: usize,
    /// Sealed bytes read so far: up to one sealed chunk plus one lookahead byte that
    /// tells whether another chunk follows.
    sealed: Vec<u8>,
    filled: usize,
    /// The current chunk's plaintext and how much of it was handed out.
    plain: Vec<u8>,
    pos: usize,
    index: u32,
    state: ReadState,
}

impl<R: Read> Cse1Reader<R> {
    /// Reads and checks the header, including that `key` is the file's data key.
    pub fn new(mut inner: R, key: &[u8; 32]) -> Result<Self, Cse1Error> {
        let mut header = [0u8; HEADER_LEN];
        let got = read_up_to(&mut inner, &mut header)?;
        if got < HEADER_LEN {
            return Err(short_header_error(&header[..got]));
        }
        let parsed = Header::parse(&header)?;
        let key_id = key_id_bytes(key);
        if parsed.key_id != key_id {
            return Err(Cse1Error::WrongKey {
                file: hex::encode(parsed.key_id),
                given: hex::encode(key_id),
            });
        }
        let chunk_size = parsed.chunk_size as usize;
        Ok(Cse1Reader {
            inner,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
            header,
            nonce_prefix: parsed.nonce_prefix,
            key_id,
            sealed_len: chunk_size + TAG_LEN,
            sealed: vec![0; chunk_size + TAG_LEN + 1],
            filled: 0,
            plain: Vec::with_capacity(chunk_size),
            pos: 0,
            index: 0,
            state: ReadState::Reading,
        })
    }

    /// The file's data key id, as hex.
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id)
    }

    fn fail(&mut self, err: Cse1Error) -> io::Error {
        self.state = ReadState::Failed;
        self.plain.clear();
        self.pos = 0;
        err.into()
    }

    /// Decrypts `sealed[..len]` as chunk `self.index` into `plain`; false if it does not authenticate.
    fn open(&mut self, len: usize, last: bool) -> bool {
        let (ciphertext, tag) = self.sealed[..len].split_at(len - TAG_LEN);
        self.plain.clear();
        self.plain.extend_from_slice(ciphertext);
        let nonce = chunk_nonce(&self.nonce_prefix, self.index, last);
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &self.header,
                &mut self.plain,
                Tag::from_slice(tag),
            )
            .is_ok()
    }

    /// Reads and decrypts the next chunk into `plain`. I/O errors leave the state as it
    /// was, so a retry resumes; format errors fail the reader for good.
    fn next_chunk(&mut self) -> io::Result<()> {
        let want = self.sealed_len + 1;
        self.filled += read_up_to(&mut self.inner, &mut self.sealed[self.filled..want])?;
        let at_end = self.filled <= self.sealed_len;
        let len = self.filled.min(self.sealed_len);
        if len < TAG_LEN {
            return Err(self.fail(Cse1Error::Truncated { chunks: self.index }));
        }
        // Only the final chunk ends at end of input.
        if !self.open(len, at_end) {
            // A full-size chunk that opens with the other flag tells a clean cut at a
            // chunk boundary, or appended bytes, from corruption.
            let err = match len == self.sealed_len && self.open(len, !at_end) {
                true if at_end => Cse1Error::Truncated {
                    chunks: self.index.saturating_add(1),
                },
                true => Cse1Error::TrailingData,
                false => Cse1Error::Authentication { chunk: self.index },
            };
            return Err(self.fail(err));
        }
        self.pos = 0;
        if at_end {
            self.state = ReadState::Done;
        } else {
            self.sealed[0] = self.sealed[self.sealed_len];
            self.filled = 1;
            self.index = match self.index.checked_add(1) {
                Some(next) => next,
                None => return Err(self.fail(Cse1Error::TooManyChunks)),
            };
        }
        Ok(())
    }
}

impl<R: Read> Read for Cse1Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.plain.len() {
                let n = (self.plain.len() - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.state {
                ReadState::Done => return Ok(0),
                ReadState::Failed => return Err(Cse1Error::AlreadyFailed.into()),
                ReadState::Reading => self.next_chunk()?,
            }
        }
    }
}

/// Fills `buf` as far as the input allows; fewer bytes only at end of input.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Decrypts a CSE1 file with a base64 data key; returns the plaintext size.
///
/// Streams with constant memory into `<output>.partial` (mode 0600: it is patient
/// data), renamed to `output` only once every chunk has authenticated, so a failed
/// decryption leaves no output behind. With `progress`, a bar is drawn on stderr.
pub fn decrypt_file(
    key_base64: &str,
    input: &Path,
    output: &Path,
    progress: bool,
) -> anyhow::Result<u64> {
    let key = parse_key(key_base64)?;
    let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("reading the size of {}", input.display()))?
        .len();
    let bar = progress_bar(progress, size);
    let mut reader = Cse1Reader::new(bar.wrap_read(file), &key)
        .with_context(|| format!("decrypting {}", input.display()))?;

    let partial = partial_path(output);
    let result = write_plaintext(&mut reader, &partial)
        .with_context(|| format!("decrypting {} to {}", input.display(), output.display()))
        .and_then(|written| {
            fs::rename(&partial, output).with_context(|| {
                format!("renaming {} to {}", partial.display(), output.display())
            })?;
            Ok(written)
        });
    match &result {
        Ok(_) => bar.finish(),
        Err(_) => {
            bar.finish_and_clear();
            // Best effort: the error being returned matters more than a failed cleanup.
            let _ = fs::remove_file(&partial);
        }
    }
    result
}

fn write_plaintext(reader: &mut impl Read, partial: &Path) -> anyhow::Result<u64> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(partial).context("creating the output file")?;
    let mut out = BufWriter::with_capacity(DEFAULT_CHUNK_SIZE as usize, file);
    let written = io::copy(reader, &mut out)?;
    let file = out.into_inner().map_err(|err| err.into_error())?;
    // Durable before the rename makes it visible under its final name.
    file.sync_all().context("syncing the output file")?;
    Ok(written)
}

/// `out.ndjson` → `out.ndjson.partial`, beside the final file so the rename stays on one filesystem.
fn partial_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn progress_bar(visible: bool, encrypted_size: u64) -> indicatif::ProgressBar {
    if !visible {
        return indicatif::ProgressBar::hidden();
    }
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} decrypting [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    indicatif::ProgressBar::new(encrypted_size).with_style(style)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];
    const CS: usize = DEFAULT_CHUNK_SIZE as usize;
    /// Length of one full sealed chunk at the default chunk size.
    const SEALED: usize = CS + TAG_LEN;

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + (i >> 9)) as u8).collect()
    }

    fn encrypt(plain: &[u8]) -> Vec<u8> {
        let mut writer = Cse1Writer::new(Vec::new(), &KEY).unwrap();
        // Uneven writes exercise the chunk buffering.
        for piece in plain.chunks(1000) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    fn decrypt_with(file: &[u8], key: &[u8; 32]) -> io::Result<Vec<u8>> {
        let mut reader = Cse1Reader::new(file, key)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out)?;
        Ok(out)
    }

    fn decrypt(file: &[u8]) -> io::Result<Vec<u8>> {
        decrypt_with(file, &KEY)
    }

    fn cse1_error(err: io::Error) -> Cse1Error {
        match err.into_inner().map(|inner| inner.downcast::<Cse1Error>()) {
            Some(Ok(err)) => *err,
            other => panic!("not a Cse1Error: {other:?}"),
        }
    }

    fn decrypt_err(file: &[u8]) -> Cse1Error {
        cse1_error(decrypt(file).expect_err("decryption should fail"))
    }

    /// Seals one chunk straight from the format description, independently of the writer.
    fn seal(header: &[u8; HEADER_LEN], index: u32, last: bool, plain: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::Aead;
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&KEY));
        let mut nonce = header[20..27].to_vec();
        nonce.extend_from_slice(&index.to_be_bytes());
        nonce.push(u8::from(last));
        let payload = aes_gcm::aead::Payload {
            msg: plain,
            aad: header,
        };
        cipher.encrypt(Nonce::from_slice(&nonce), payload).unwrap()
    }

    #[test]
    fn round_trips_at_and_around_chunk_boundaries() {
        for len in [0, 1, CS - 1, CS, CS + 1, 3 * CS + 5] {
            let plain = payload(len);
            let file = encrypt(&plain);
            assert_eq!(
                file.len() as u64,
                encrypted_len(len as u64),
                "size for {len}"
            );
            assert_eq!(decrypt(&file).unwrap(), plain, "round trip of {len} bytes");
        }
    }

    #[test]
    fn a_whole_number_of_chunks_ends_with_an_empty_final_chunk() {
        let file = encrypt(&payload(2 * CS));
        assert_eq!(file.len(), HEADER_LEN + 2 * SEALED + TAG_LEN);
        assert_eq!(encrypted_len(0), (HEADER_LEN + TAG_LEN) as u64);
    }

    #[test]
    fn header_has_the_documented_layout() {
        let file = encrypt(b"x");
        assert_eq!(&file[..4], b"CSE1");
        assert_eq!(file[4..8], [1, 1, 0, 0]);
        assert_eq!(file[8..12], 65536u32.to_be_bytes());
        assert_eq!(hex::encode(&file[12..20]), super::super::key_id(&KEY));
        assert_eq!(file[27..32], [0; 5]);
        assert_eq!(key_id_of_file(&file).unwrap(), super::super::key_id(&KEY));
        // Nonce prefixes are random per file.
        assert_ne!(file[20..27], encrypt(b"x")[20..27]);
    }

    #[test]
    fn known_answer() {
        let mut writer =
            Cse1Writer::with_nonce_prefix(Vec::new(), &[1u8; 32], [1, 2, 3, 4, 5, 6, 7]).unwrap();
        writer.write_all(b"hello").unwrap();
        let file = writer.finish().unwrap();
        // Computed independently with Python's `cryptography` (48.0.0): header =
        // b"CSE1" + bytes([1,1,0,0]) + struct.pack(">I", 65536) + sha256(key)[:8]
        // + prefix + bytes(5); file = header + AESGCM(key).encrypt(prefix
        // + struct.pack(">I", 0) + b"\x01", b"hello", header).
        assert_eq!(
            hex::encode(&file),
            "43534531010100000001000072cd6e8422c407fb010203040506070000000000\
             c317fb75d027abf15d8704ed2cabe88f5ba459baad"
        );
        assert_eq!(decrypt_with(&file, &[1u8; 32]).unwrap(), b"hello");
    }

    #[test]
    fn wrong_key_names_both_key_ids() {
        let file = encrypt(b"secret");
        let err = Cse1Reader::new(&file[..], &[8u8; 32]).err().unwrap();
        assert!(matches!(err, Cse1Error::WrongKey { .. }));
        let message = err.to_string();
        assert_eq!(
            message,
            format!(
                "this file was encrypted with data key {}, not {}",
                super::super::key_id(&KEY),
                super::super::key_id(&[8u8; 32])
            )
        );
    }

    #[test]
    fn truncation_fails() {
        let file = encrypt(&payload(3 * CS + 5));
        // Without the final chunk, the file ends cleanly after three full chunks.
        let without_last = &file[..HEADER_LEN + 3 * SEALED];
        assert!(matches!(
            decrypt_err(without_last),
            Cse1Error::Truncated { chunks: 3 }
        ));
        // Without the empty final chunk of a whole number of chunks.
        let whole = encrypt(&payload(2 * CS));
        let cut = &whole[..whole.len() - TAG_LEN];
        assert!(matches!(
            decrypt_err(cut),
            Cse1Error::Truncated { chunks: 2 }
        ));
        // Bytes dropped from the end of the final chunk.
        for drop in [1, 5] {
            let cut = &file[..file.len() - drop];
            assert!(
                matches!(decrypt_err(cut), Cse1Error::Authentication { chunk: 3 }),
                "drop {drop}"
            );
        }
        let cut = &file[..file.len() - 20];
        assert!(matches!(
            decrypt_err(cut),
            Cse1Error::Truncated { chunks: 3 }
        ));
        // A final chunk shorter than its tag, or no chunk at all.
        let empty = encrypt(b"");
        assert!(matches!(
            decrypt_err(&empty[..empty.len() - 1]),
            Cse1Error::Truncated { chunks: 0 }
        ));
        assert!(matches!(
            decrypt_err(&empty[..HEADER_LEN]),
            Cse1Error::Truncated { chunks: 0 }
        ));
        // A cut header, and something that is not CSE1 at all.
        assert!(matches!(
            Cse1Reader::new(&empty[..20], &KEY).err(),
            Some(Cse1Error::TruncatedHeader(20))
        ));
        assert!(matches!(
            Cse1Reader::new(&b"{\"id\":1}"[..], &KEY).err(),
            Some(Cse1Error::NotCse1)
        ));
        assert!(matches!(
            Cse1Reader::new(&b""[..], &KEY).err(),
            Some(Cse1Error::TruncatedHeader(0))
        ));
    }

    #[test]
    fn every_flipped_header_bit_fails() {
        let file = encrypt(&payload(100));
        for bit in 0..HEADER_LEN * 8 {
            let mut bad = file.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decrypt(&bad).is_err(), "flipped header bit {bit}");
        }
        let flip = |at: usize| {
            let mut bad = file.clone();
            bad[at] ^= 1;
            decrypt_err(&bad)
        };
        assert!(matches!(flip(0), Cse1Error::NotCse1));
        assert!(matches!(flip(4), Cse1Error::UnsupportedVersion(0)));
        assert!(matches!(flip(5), Cse1Error::UnsupportedAlgorithm(0)));
        assert!(matches!(flip(7), Cse1Error::InvalidHeader(_)));
        assert!(matches!(flip(11), Cse1Error::Authentication { chunk: 0 }));
        assert!(matches!(flip(15), Cse1Error::WrongKey { .. }));
        assert!(matches!(flip(22), Cse1Error::Authentication { chunk: 0 }));
        assert!(matches!(flip(31), Cse1Error::InvalidHeader(_)));
    }

    #[test]
    fn flipped_ciphertext_or_tag_bits_fail_and_nothing_unauthenticated_is_returned() {
        let file = encrypt(&payload(3 * CS + 5));
        let mut bad = file.clone();
        bad[HEADER_LEN + SEALED + 100] ^= 0x80; // chunk 1 ciphertext
        let mut reader = Cse1Reader::new(&bad[..], &KEY).unwrap();
        let mut out = Vec::new();
        let err = reader.read_to_end(&mut out).unwrap_err();
        assert!(matches!(
            cse1_error(err),
            Cse1Error::Authentication { chunk: 1 }
        ));
        assert_eq!(out, payload(CS), "only chunk 0 was handed out");
        let mut more = [0u8; 10];
        let again = reader.read(&mut more).unwrap_err();
        assert!(matches!(cse1_error(again), Cse1Error::AlreadyFailed));

        let mut bad = file.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1; // final chunk's tag
        assert!(matches!(
            decrypt_err(&bad),
            Cse1Error::Authentication { chunk: 3 }
        ));
        let mut bad = file.clone();
        bad[HEADER_LEN + SEALED - 1] ^= 1; // chunk 0's tag
        assert!(matches!(
            decrypt_err(&bad),
            Cse1Error::Authentication { chunk: 0 }
        ));
    }

    #[test]
    fn reordered_dropped_or_spliced_chunks_fail() {
        let file = encrypt(&payload(3 * CS + 5));
        let chunk = |i: usize| &file[HEADER_LEN + i * SEALED..HEADER_LEN + (i + 1) * SEALED];
        let assemble = |order: &[usize]| {
            let mut out = file[..HEADER_LEN].to_vec();
            for &i in order {
                out.extend_from_slice(chunk(i));
            }
            out.extend_from_slice(&file[HEADER_LEN + 3 * SEALED..]);
            out
        };
        assert_eq!(decrypt(&assemble(&[0, 1, 2])).unwrap(), payload(3 * CS + 5));
        assert!(matches!(
            decrypt_err(&assemble(&[1, 0, 2])),
            Cse1Error::Authentication { chunk: 0 }
        ));
        assert!(matches!(
            decrypt_err(&assemble(&[0, 2])),
            Cse1Error::Authentication { chunk: 1 }
        ));
        assert!(matches!(
            decrypt_err(&assemble(&[0, 1, 1, 2])),
            Cse1Error::Authentication { chunk: 2 }
        ));
        // A chunk from another file under the same key does not fit: other nonce prefix.
        let other = encrypt(&payload(3 * CS + 5));
        let mut spliced = file.clone();
        spliced[HEADER_LEN..HEADER_LEN + SEALED]
            .copy_from_slice(&other[HEADER_LEN..HEADER_LEN + SEALED]);
        assert!(matches!(
            decrypt_err(&spliced),
            Cse1Error::Authentication { chunk: 0 }
        ));
    }

    #[test]
    fn trailing_garbage_fails() {
        for len in [0, 5, CS, 3 * CS + 5] {
            for extra in [1, 16, SEALED, SEALED + 3] {
                let mut file = encrypt(&payload(len));
                file.extend(std::iter::repeat_n(0xAA, extra));
                assert!(decrypt(&file).is_err(), "{len} bytes + {extra} garbage");
            }
        }
    }

    #[test]
    fn reads_files_sealed_from_the_spec_including_a_full_final_chunk() {
        // Chunk size 4; the writer never makes a full final chunk, but the format allows it.
        let header = Header {
            chunk_size: 4,
            key_id: key_id_bytes(&KEY),
            nonce_prefix: [9; 7],
        }
        .encode();
        let mut file = header.to_vec();
        file.extend(seal(&header, 0, false, b"abcd"));
        file.extend(seal(&header, 1, true, b"efgh"));
        assert_eq!(decrypt(&file).unwrap(), b"abcdefgh");
        let mut appended = file.clone();
        appended.push(0);
        assert!(matches!(decrypt_err(&appended), Cse1Error::TrailingData));
        // The same file from this module's writer, at chunk size 4, ends in an empty chunk.
        let mut writer = Cse1Writer::build(Vec::new(), &KEY, 4, [9; 7]).unwrap();
        writer.write_all(b"abcdefgh").unwrap();
        let written = writer.finish().unwrap();
        let mut expected = header.to_vec();
        expected.extend(seal(&header, 0, false, b"abcd"));
        expected.extend(seal(&header, 1, false, b"efgh"));
        expected.extend(seal(&header, 2, true, b""));
        assert_eq!(written, expected);
        assert_eq!(decrypt(&written).unwrap(), b"abcdefgh");
    }

    #[test]
    fn reads_a_trickling_input() {
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let plain = payload(CS + 7);
        let file = encrypt(&plain);
        let mut out = Vec::new();
        Cse1Reader::new(OneByte(&file), &KEY)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn writer_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Cse1Writer<File>>();
        assert_send::<Cse1Reader<File>>();
    }

    #[test]
    fn keys_must_be_base64_of_32_bytes() {
        assert_eq!(parse_key(&B64.encode(KEY)).unwrap(), KEY);
        assert!(matches!(
            parse_key("not base64!"),
            Err(Cse1Error::KeyNotBase64)
        ));
        assert!(matches!(
            parse_key(&B64.encode([1u8; 16])),
            Err(Cse1Error::KeyLength(16))
        ));
    }

    #[test]
    fn decrypt_file_publishes_only_a_complete_output() {
        let dir = tempfile::tempdir().unwrap();
        let (input, output) = (dir.path().join("x.ndjson.cse"), dir.path().join("x.ndjson"));
        let plain = payload(2 * CS + 3);
        fs::write(&input, encrypt(&plain)).unwrap();
        let key = B64.encode(KEY);
        assert_eq!(
            decrypt_file(&key, &input, &output, false).unwrap(),
            plain.len() as u64
        );
        assert_eq!(fs::read(&output).unwrap(), plain);
        assert!(!partial_path(&output).exists());

        fs::remove_file(&output).unwrap();
        let mut bad = encrypt(&plain);
        bad[HEADER_LEN + SEALED + 5] ^= 1;
        fs::write(&input, bad).unwrap();
        let err = decrypt_file(&key, &input, &output, false).unwrap_err();
        assert!(
            format!("{err:#}").contains("chunk 1 failed authentication"),
            "{err:#}"
        );
        assert!(!output.exists() && !partial_path(&output).exists());

        let err = decrypt_file(&B64.encode([2u8; 32]), &input, &output, false).unwrap_err();
        assert!(
            format!("{err:#}").contains("encrypted with data key"),
            "{err:#}"
        );
        let err = decrypt_file("???", &input, &output, false).unwrap_err();
        assert!(err.to_string().contains("not valid base64"), "{err}");
        assert!(!output.exists() && !partial_path(&output).exists());
    }
}
