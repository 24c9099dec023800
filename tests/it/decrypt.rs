//! Decrypting CSE1 files outside the server: `examples/decrypt.py` (the reference
//! client snippet) and `cipherstream decrypt` both read what `Cse1Writer` writes, and
//! both refuse a tampered, truncated or wrong-key file without leaving output behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use cipherstream::crypto::cse1::{Cse1Writer, HEADER_LEN, TAG_LEN};

const BIN: &str = env!("CARGO_BIN_EXE_cipherstream");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/decrypt.py");
const KEY: [u8; 32] = *b"integration-test-data-key-32byte";

#[derive(Clone, Copy, Debug)]
enum Tool {
    Python,
    Cli,
}

const TOOLS: [Tool; 2] = [Tool::Python, Tool::Cli];

/// Fails (rather than skips) when the reference client's one dependency is missing.
fn require_python_cryptography() {
    let output = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .unwrap_or_else(|err| panic!("python3 is required to test examples/decrypt.py: {err}"));
    assert!(
        output.status.success(),
        "the Python package `cryptography` is required to test examples/decrypt.py \
         (pip install cryptography): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// NDJSON-like lines, as an extraction would produce, of at least `min_len` bytes.
fn ndjson(min_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(min_len + 200);
    let mut id = 0u32;
    while out.len() < min_len {
        id += 1;
        writeln!(
            out,
            r#"{{"id":{id},"patient_id":"pat_{:06}","item":"0{:02}","fee_cents":{},"status":"{}","note":"recall in {} months"}}"#,
            id * 7 % 100_000,
            id % 97,
            id * 1_337 % 90_000,
            ["booked", "attended", "cancelled"][id as usize % 3],
            id % 12 + 1,
        )
        .unwrap();
    }
    out
}

fn encrypt(plain: &[u8], path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut writer = Cse1Writer::new(std::io::BufWriter::new(file), &KEY).unwrap();
    for piece in plain.chunks(4096) {
        writer.write_all(piece).unwrap();
    }
    writer.finish().unwrap().flush().unwrap();
}

fn run(tool: Tool, key: &[u8], input: &Path, output: &Path) -> Output {
    let mut command = match tool {
        Tool::Python => {
            let mut command = Command::new("python3");
            command.arg(SCRIPT);
            command
        }
        Tool::Cli => {
            let mut command = Command::new(BIN);
            command.arg("decrypt");
            command
        }
    };
    command
        .arg("--key")
        .arg(B64.encode(key))
        .arg(input)
        .arg(output)
        .current_dir(input.parent().unwrap())
        .env_remove("CIPHERSTREAM_DATA_KEY")
        .output()
        .unwrap()
}

fn partial(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

#[test]
fn python_example_and_cli_decrypt_what_the_writer_encrypts() {
    require_python_cryptography();
    let dir = tempfile::tempdir().unwrap();
    let payloads = [
        ("ndjson", ndjson(300_000)),
        // A whole number of chunks ends with an empty final chunk.
        ("whole-chunks", ndjson(4 * 65536)[..4 * 65536].to_vec()),
        ("empty", Vec::new()),
    ];
    for (name, plain) in &payloads {
        let input = dir.path().join(format!("{name}.ndjson.cse"));
        encrypt(plain, &input);
        for tool in TOOLS {
            let output = dir.path().join(format!("{name}-{tool:?}.ndjson"));
            let result = run(tool, &KEY, &input, &output);
            assert!(
                result.status.success(),
                "{tool:?} failed on {name}: {}",
                String::from_utf8_lossy(&result.stderr)
            );
            let decrypted = std::fs::read(&output).unwrap();
            assert!(decrypted == *plain, "{tool:?} decrypted {name} wrongly");
            assert!(!partial(&output).exists(), "{tool:?} left a partial file");
        }
    }
}

#[test]
fn damaged_or_wrong_key_files_fail_without_leaving_output() {
    require_python_cryptography();
    let dir = tempfile::tempdir().unwrap();
    let plain = ndjson(200_000);
    let good = dir.path().join("good.cse");
    encrypt(&plain, &good);
    let bytes = std::fs::read(&good).unwrap();
    let full_chunks = (plain.len() / 65536) * (65536 + TAG_LEN);

    let mut tampered = bytes.clone();
    tampered[HEADER_LEN + 70_000] ^= 0x04;
    let truncated = bytes[..HEADER_LEN + full_chunks].to_vec();
    let mut appended = bytes.clone();
    appended.extend_from_slice(b"{\"id\":0}\n");
    let cases: [(&str, Vec<u8>, &[u8; 32], &str); 4] = [
        ("tampered", tampered, &KEY, "chunk 1 failed authentication"),
        ("truncated", truncated, &KEY, "truncated"),
        ("appended", appended, &KEY, "failed authentication"),
        (
            "wrong-key",
            bytes.clone(),
            &[9u8; 32],
            "encrypted with data key",
        ),
    ];
    for (name, contents, key, expected) in cases {
        let input = dir.path().join(format!("{name}.cse"));
        std::fs::write(&input, contents).unwrap();
        for tool in TOOLS {
            let output = dir.path().join(format!("{name}-{tool:?}.ndjson"));
            let result = run(tool, key, &input, &output);
            let stderr = String::from_utf8_lossy(&result.stderr);
            assert!(
                !result.status.success(),
                "{tool:?} accepted the {name} file"
            );
            assert!(stderr.contains(expected), "{tool:?} on {name}: {stderr}");
            assert!(!output.exists(), "{tool:?} left output for the {name} file");
            assert!(
                !partial(&output).exists(),
                "{tool:?} left a partial file for {name}"
            );
        }
    }
}
