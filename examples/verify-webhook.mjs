// Verify a CipherStream webhook delivery (format: docs/webhooks.md). Node.js 20+,
// built-in modules only.
//
//     node verify-webhook.mjs delivery.json
//
// delivery.json holds {"payload": <raw body text>, "headers": {<lower-case name>: <value>},
// "secret": "whsec_..."}. Prints {"cipherstream": bool, "standard": bool, "fresh": bool}:
// whether X-CipherStream-Signature matches, whether the Standard Webhooks
// `webhook-signature` matches, and whether the delivery's timestamps are within five
// minutes of now. Accept a delivery only when a signature matches and it is fresh.
// Exits with status 2 when the file cannot be read.
//
// In a receiver, verify the raw request body exactly as received (for example
// `express.raw({ type: "application/json" })`), before any JSON parsing.

import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

export const TOLERANCE_SECONDS = 5 * 60;

function safeEqual(a, b) {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

// X-CipherStream-Signature: `sha256=<hex HMAC-SHA256 of the raw body>`, keyed with the
// whole secret string; during a secret rotation one value per active secret,
// space-separated. One match is enough.
export function verifyCipherStream(payload, header, secret) {
  const expected =
    "sha256=" + createHmac("sha256", Buffer.from(secret, "utf8")).update(payload, "utf8").digest("hex");
  let matched = false;
  for (const value of header.split(" ").filter(Boolean)) {
    if (safeEqual(value, expected)) matched = true;
  }
  return matched;
}

// Standard Webhooks `webhook-signature`: `v1,<base64>` values, space-separated,
// HMAC-SHA256 of `${webhookId}.${webhookTimestamp}.${body}` keyed with the
// base64-decoded part of the secret after `whsec_`.
export function verifyStandard(payload, webhookId, webhookTimestamp, header, secret) {
  if (!secret.startsWith("whsec_")) return false;
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  if (key.length === 0) return false;
  const expected = createHmac("sha256", key)
    .update(`${webhookId}.${webhookTimestamp}.${payload}`, "utf8")
    .digest("base64");
  let matched = false;
  for (const value of header.split(" ").filter(Boolean)) {
    const comma = value.indexOf(",");
    if (comma > 0 && value.slice(0, comma) === "v1" && safeEqual(value.slice(comma + 1), expected)) {
      matched = true;
    }
  }
  return matched;
}

// Replay protection: a timestamp more than five minutes from now is refused.
export function isFresh(unixSeconds, nowSeconds = Date.now() / 1000) {
  return Number.isFinite(unixSeconds) && Math.abs(nowSeconds - unixSeconds) <= TOLERANCE_SECONDS;
}

function headerSeconds(text) {
  return typeof text === "string" && /^\d+$/.test(text) ? Number(text) : NaN;
}

// The body's `timestamp` (RFC 3339, covered by X-CipherStream-Signature) as Unix seconds.
function bodySeconds(payload) {
  try {
    const millis = Date.parse(JSON.parse(payload).timestamp);
    return Math.floor(millis / 1000);
  } catch {
    return NaN;
  }
}

export function check(payload, headers, secret) {
  const cipherstream = verifyCipherStream(payload, headers["x-cipherstream-signature"] ?? "", secret);
  const standard = verifyStandard(
    payload,
    headers["webhook-id"] ?? "",
    headers["webhook-timestamp"] ?? "",
    headers["webhook-signature"] ?? "",
    secret,
  );
  // The body's timestamp is signed by X-CipherStream-Signature, webhook-timestamp by
  // webhook-signature; X-CipherStream-Timestamp is the same instant. All must be fresh.
  const stamps = [
    bodySeconds(payload),
    headerSeconds(headers["x-cipherstream-timestamp"]),
    headerSeconds(headers["webhook-timestamp"]),
  ];
  const fresh = stamps.every((s) => isFresh(s));
  return { cipherstream, standard, fresh };
}

function main(argv) {
  if (argv.length !== 1) {
    console.error("usage: node verify-webhook.mjs DELIVERY.json");
    process.exit(2);
  }
  let item;
  try {
    item = JSON.parse(readFileSync(argv[0], "utf8"));
    const { payload, headers, secret } = item ?? {};
    if (typeof payload !== "string" || typeof secret !== "string" || typeof headers !== "object" || headers === null) {
      throw new Error("payload and secret must be strings, headers an object");
    }
  } catch (error) {
    console.error(`verify-webhook.mjs: error: ${argv[0]}: ${error.message}`);
    process.exit(2);
  }
  const headers = Object.fromEntries(Object.entries(item.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
  console.log(JSON.stringify(check(item.payload, headers, item.secret)));
}

// Run as a script (not when imported).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2));
}
