#!/usr/bin/env python3
"""Verify a CipherStream webhook delivery (format: docs/webhooks.md).

    python3 verify_webhook.py delivery.json

`delivery.json` holds {"payload": <raw body text>, "headers": {<lower-case name>: <value>},
"secret": "whsec_..."}. The script prints {"cipherstream": bool, "standard": bool,
"fresh": bool}: whether X-CipherStream-Signature matches, whether the Standard Webhooks
`webhook-signature` matches, and whether the delivery's timestamps are within five
minutes of now. Accept a delivery only when a signature matches and it is fresh.
It exits with status 2 when the file cannot be read.

Standard library only. In a receiver, pass the raw request body exactly as received,
before any JSON parsing.
"""

import base64
import hmac
import hashlib
import json
import sys
import time
from datetime import datetime

TOLERANCE_SECONDS = 5 * 60


# The product documentation's function, unchanged: one `sha256=<hex>` value.
def verify_webhook_signature(payload, signature, secret):
    expected_signature = hmac.new(
        secret.encode('utf-8'),
        payload.encode('utf-8'),
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(f"sha256={expected_signature}", signature)


def verify_cipherstream(payload, header, secret):
    """X-CipherStream-Signature: during a secret rotation it carries one
    `sha256=<hex>` value per active secret, space-separated; one match is enough."""
    return any(
        verify_webhook_signature(payload, value, secret)
        for value in header.split()
        if value.isascii()
    )


def verify_standard(payload, webhook_id, webhook_timestamp, header, secret):
    """Standard Webhooks `webhook-signature`: `v1,<base64>` values, space-separated,
    HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" keyed with the
    base64-decoded part of the secret after `whsec_`."""
    if not secret.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except ValueError:  # binascii.Error included
        return False
    signed = f"{webhook_id}.{webhook_timestamp}.{payload}".encode("utf-8")
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    matched = False
    for value in header.split():
        version, _, signature = value.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode("utf-8"), expected.encode("ascii")):
            matched = True
    return matched


def is_fresh(unix_seconds, now=None):
    """Replay protection: a timestamp more than five minutes from now is refused."""
    now = time.time() if now is None else now
    return abs(now - unix_seconds) <= TOLERANCE_SECONDS


def unix_seconds(text):
    """An integer of Unix seconds (a header) or None."""
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def body_timestamp(payload):
    """The body's `timestamp` (RFC 3339, covered by X-CipherStream-Signature) as Unix seconds."""
    try:
        text = json.loads(payload)["timestamp"]
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def check(payload, headers, secret):
    cipherstream = verify_cipherstream(
        payload, headers.get("x-cipherstream-signature", ""), secret)
    standard = verify_standard(
        payload,
        headers.get("webhook-id", ""),
        headers.get("webhook-timestamp", ""),
        headers.get("webhook-signature", ""),
        secret,
    )
    # The body's timestamp is signed by X-CipherStream-Signature, webhook-timestamp by
    # webhook-signature; X-CipherStream-Timestamp is the same instant. All must be fresh.
    stamps = [
        body_timestamp(payload),
        unix_seconds(headers.get("x-cipherstream-timestamp")),
        unix_seconds(headers.get("webhook-timestamp")),
    ]
    fresh = all(s is not None and is_fresh(s) for s in stamps)
    return {"cipherstream": cipherstream, "standard": standard, "fresh": fresh}


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: verify_webhook.py DELIVERY.json")
    try:
        with open(argv[1], encoding="utf-8") as f:
            item = json.load(f)
        payload, headers, secret = item["payload"], item["headers"], item["secret"]
        if not (isinstance(payload, str) and isinstance(headers, dict) and isinstance(secret, str)):
            raise TypeError("payload and secret must be strings, headers an object")
        headers = {str(k).lower(): str(v) for k, v in headers.items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"verify_webhook.py: error: {argv[1]}: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(check(payload, headers, secret), separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv)
