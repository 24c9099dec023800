"""Verifies recorded webhook deliveries the way integrators do.

Reads a JSON list of {"payload": <raw body text>, "headers": {...}, "secret": ...}
from the file named by argv[1] and prints one JSON object per delivery:
{"documented": bool, "standard": bool}. `documented` runs the product
documentation's snippet below unchanged; `standard` uses the `standardwebhooks`
package from PyPI (the Standard Webhooks reference library).
"""
import json
import sys

import hmac
import hashlib
def verify_webhook_signature(payload, signature, secret):
    expected_signature = hmac.new(
        secret.encode('utf-8'),
        payload.encode('utf-8'),
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(f"sha256={expected_signature}", signature)


def standard(payload, headers, secret):
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    try:
        Webhook(secret).verify(payload, headers)
        return True
    except WebhookVerificationError:
        return False


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        items = json.load(f)
    for item in items:
        print(json.dumps({
            "documented": verify_webhook_signature(
                item["payload"], item["headers"]["x-cipherstream-signature"], item["secret"]),
            "standard": standard(item["payload"], item["headers"], item["secret"]),
        }))


if __name__ == "__main__":
    main()
