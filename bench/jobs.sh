#!/usr/bin/env bash
# Background-job throughput: a ~1 M-row `appointments` job as NDJSON+gzip (encrypted
# into the local object store) beside the same extraction streamed unencrypted, in one
# run; then how many small jobs complete per minute.
#
#   bash bench/jobs.sh [PATIENTS] [SMALL_JOBS]      (defaults 110000 and 200)
#
# Uses the practice database bench/extract.sh generates (cs_bench_PATIENTS).
set -euo pipefail
cd "$(dirname "$0")/.."
PATIENTS=${1:-110000}
SMALL=${2:-200}
DB=cs_bench_${PATIENTS}
MYSQL_BASE=${CIPHERSTREAM_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cipherstream-target}"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/cipherstream"
[ "$(mysql -uroot -N -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$DB' AND table_name='appointments'")" = 1 ] \
  || { echo "run bench/extract.sh $PATIENTS first (it generates $DB)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
export CIPHERSTREAM_ADMIN_TOKEN=bench-admin CIPHERSTREAM_JOB_POLL_INTERVAL_MS=20 CIPHERSTREAM_JOB_WORKERS=2 CIPHERSTREAM_JOB_PER_CUSTOMER_CAP=2
"$BIN" --data-dir "$WORK" serve --bind 127.0.0.1:18081 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18081/health >/dev/null && break; sleep 0.2; done
KEY=$(curl -sf -X POST -H "Authorization: Bearer bench-admin" -H 'Content-Type: application/json' \
  -d "{\"id\":\"bench\",\"name\":\"Bench\",\"source_url\":\"$MYSQL_BASE/$DB\"}" \
  http://127.0.0.1:18081/admin/v1/customers | python3 -c 'import sys,json; print(json.load(sys.stdin)["api_key"])')
H="Authorization: Bearer $KEY"
now() { date +%s.%N; }
rss() { awk '/VmHWM/ {print int($2/1024)}' /proc/$SERVER/status; }
wait_job() {
  while :; do
    s=$(curl -sf -H "$H" "http://127.0.0.1:18081/v1/jobs/$1" | python3 -c 'import sys,json; print(json.load(sys.stdin)["status"])')
    case $s in completed) return 0;; failed|cancelled) echo "job $1 $s" >&2; return 1;; esac
    sleep 0.05
  done
}

# A small job first: the memory reference.
J=$(curl -sf -H "$H" "http://127.0.0.1:18081/v1/extract/appointments?limit=10000&mode=job&format=ndjson&compression=gzip" | python3 -c 'import sys,json; print(json.load(sys.stdin)["job_id"])')
wait_job "$J"; RSS_SMALL=$(rss)

t0=$(now); curl -sf -H "$H" -o "$WORK/sync.gz" "http://127.0.0.1:18081/v1/extract/appointments?mode=sync&format=ndjson&compression=gzip"; t1=$(now)
J=$(curl -sf -H "$H" "http://127.0.0.1:18081/v1/extract/appointments?mode=job&format=ndjson&compression=gzip" | python3 -c 'import sys,json; print(json.load(sys.stdin)["job_id"])')
t2=$(now); wait_job "$J"; t3=$(now)
ROWS=$(curl -sf -H "$H" "http://127.0.0.1:18081/v1/jobs/$J" | python3 -c 'import sys,json; print(json.load(sys.stdin)["rows_processed"])')
SIZE=$(curl -sf -H "$H" "http://127.0.0.1:18081/v1/jobs/$J" | python3 -c 'import sys,json; print(json.load(sys.stdin)["file_size_bytes"])')
EXEC=$(curl -sf -H "$H" "http://127.0.0.1:18081/v1/jobs/$J" | python3 -c 'import sys,json; print(json.load(sys.stdin)["execution_time_seconds"])')
echo "| what | rows | seconds | rows/s | bytes | server peak RSS MB |"
echo "|---|---|---|---|---|---|"
echo "| job, 10,000 rows ndjson+gzip (memory reference) | 10000 | — | — | — | $RSS_SMALL |"
echo "| streamed ndjson+gzip, unencrypted | $ROWS | $(python3 -c "print(f'{$t1-$t0:.2f}')") | $(python3 -c "print(f'{$ROWS/($t1-$t0):,.0f}')") | $(stat -c %s "$WORK/sync.gz") | — |"
echo "| job ndjson+gzip, CSE1-encrypted into the object store (client's view: queue, poll) | $ROWS | $(python3 -c "print(f'{$t3-$t2:.2f}')") | $(python3 -c "print(f'{$ROWS/($t3-$t2):,.0f}')") | $SIZE | $(rss) |"
echo "| the same job, server's execution_time_seconds | $ROWS | $EXEC | $(python3 -c "print(f'{$ROWS/$EXEC:,.0f}')") | $SIZE | — |"

# Many small jobs: throughput of the queue itself.
t0=$(now)
for i in $(seq 1 "$SMALL"); do
  curl -sf -H "$H" -o /dev/null "http://127.0.0.1:18081/v1/extract/payment_types?mode=job"
done
while [ "$(curl -sf -H "$H" "http://127.0.0.1:18081/v1/jobs?status=completed&limit=1" | python3 -c 'import sys,json; print(json.load(sys.stdin)["total"])')" -lt $((SMALL + 2)) ]; do sleep 0.1; done
t1=$(now)
echo
echo "$SMALL small jobs (payment_types) created and completed in $(python3 -c "print(f'{$t1-$t0:.1f}')") s: $(python3 -c "print(f'{$SMALL*60/($t1-$t0):,.0f}')") jobs/minute with 2 workers"
