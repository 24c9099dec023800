#!/usr/bin/env python3
"""Decrypt a CipherStream CSE1 file (format: docs/decryption.md).

    pip install cryptography
    python3 decrypt.py --key <base64 data_key> export.ndjson.gz.cse export.ndjson.gz
    CIPHERSTREAM_DATA_KEY=<base64 data_key> python3 decrypt.py IN OUT

Streams chunk by chunk with constant memory, and checks everything the Rust reader
checks: header, key id, per-chunk authentication, order, the final-chunk flag,
truncation and trailing data. The output appears under its name only when the
whole file has been verified; on any failure the script exits with status 1 and
leaves no output file.
"""

import argparse
import base64
import binascii
import hashlib
import os
import struct
import sys

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    sys.exit("decrypt.py: error: the 'cryptography' package is required: pip install cryptography")

MAGIC = b"CSE1"
HEADER_LEN = 32
TAG_LEN = 16
MAX_CHUNK_SIZE = 16 * 1024 * 1024


class Cse1Error(Exception):
    pass


def parse_key(text):
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Cse1Error("the key is not valid base64 (expected the customer's data_key)") from None
    if len(key) != 32:
        raise Cse1Error(f"the key must be 32 bytes, got {len(key)}")
    return key


def read_up_to(stream, n):
    """Read n bytes, fewer only at end of file."""
    parts = []
    while n > 0:
        part = stream.read(n)
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def check_header(header, key):
    """Validate the 32-byte header; return (chunk_size, nonce_prefix)."""
    if len(header) < HEADER_LEN:
        if header == MAGIC[: len(header)]:
            raise Cse1Error(f"the CSE1 header is cut short: the file has {len(header)} bytes, the header alone is 32")
        raise Cse1Error('not a CSE1 file (it does not start with "CSE1")')
    magic, version, algorithm, reserved1, chunk_size, key_id, prefix, reserved2 = struct.unpack(
        ">4sBB2sI8s7s5s", header
    )
    if magic != MAGIC:
        raise Cse1Error('not a CSE1 file (it does not start with "CSE1")')
    if version != 1:
        raise Cse1Error(f"unsupported CSE1 version {version} (this script reads version 1)")
    if algorithm != 1:
        raise Cse1Error(f"unsupported CSE1 algorithm {algorithm} (this script reads 1, AES-256-GCM)")
    if reserved1 != bytes(2) or reserved2 != bytes(5):
        raise Cse1Error("invalid CSE1 header: reserved bytes are not zero")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise Cse1Error("invalid CSE1 header: chunk size is 0 or above 16 MiB")
    given = hashlib.sha256(key).digest()[:8]
    if key_id != given:
        raise Cse1Error(f"this file was encrypted with data key {key_id.hex()}, not {given.hex()}")
    return chunk_size, prefix


def open_chunk(aead, prefix, index, last, sealed, header):
    """The chunk's plaintext, or None if it does not authenticate with this index and flag."""
    nonce = prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")
    try:
        return aead.decrypt(nonce, sealed, header)
    except InvalidTag:
        return None


def decrypt(src, dst, key):
    """Decrypt the CSE1 stream src into dst; return the number of plaintext bytes."""
    header = read_up_to(src, HEADER_LEN)
    chunk_size, prefix = check_header(header, key)
    aead = AESGCM(key)
    sealed_len = chunk_size + TAG_LEN
    index = 0
    written = 0
    # One sealed chunk plus one lookahead byte: only the final chunk ends at end of file.
    buf = read_up_to(src, sealed_len + 1)
    while True:
        at_end = len(buf) <= sealed_len
        sealed = buf[:sealed_len]
        if len(sealed) < TAG_LEN:
            raise Cse1Error(f"the file is truncated: it ends after {index} chunk(s), without its final chunk")
        plain = open_chunk(aead, prefix, index, at_end, sealed, header)
        if plain is None:
            # A full-size chunk that opens with the other flag tells a clean cut at a
            # chunk boundary, or appended bytes, from corruption.
            if len(sealed) == sealed_len and open_chunk(aead, prefix, index, not at_end, sealed, header) is not None:
                if at_end:
                    raise Cse1Error(
                        f"the file is truncated: it ends after {index + 1} chunk(s), without its final chunk"
                    )
                raise Cse1Error("unexpected data after the final chunk")
            raise Cse1Error(
                f"chunk {index} failed authentication: the file is corrupted, modified, "
                "reordered, cut short or has bytes appended"
            )
        dst.write(plain)
        written += len(plain)
        if at_end:
            return written
        if index == 0xFFFFFFFF:
            raise Cse1Error("too many chunks: the chunk counter would overflow")
        index += 1
        buf = buf[sealed_len:] + read_up_to(src, sealed_len)


def main():
    parser = argparse.ArgumentParser(description="Decrypt a CipherStream CSE1 file.")
    parser.add_argument(
        "--key",
        default=os.environ.get("CIPHERSTREAM_DATA_KEY"),
        help="the customer's base64 data key (data_key); or set CIPHERSTREAM_DATA_KEY",
    )
    parser.add_argument("input", help="the encrypted file (.cse)")
    parser.add_argument("output", help="where to write the plaintext")
    args = parser.parse_args()
    if not args.key:
        parser.error("--key is required (or set CIPHERSTREAM_DATA_KEY)")

    partial = args.output + ".partial"
    try:
        key = parse_key(args.key)
        with open(args.input, "rb") as src:
            # Mode 0600: the plaintext is patient data.
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as dst:
                written = decrypt(src, dst, key)
                dst.flush()
                os.fsync(dst.fileno())
        os.replace(partial, args.output)
    except (Cse1Error, OSError) as err:
        try:
            os.remove(partial)
        except OSError:
            pass
        sys.exit(f"decrypt.py: error: decrypting {args.input}: {err}")
    print(f"decrypted {written} bytes to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
