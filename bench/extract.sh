#!/usr/bin/env bash
# End-to-end extraction throughput: the release server streaming `appointments` from a
# generated MariaDB practice over HTTP, beside the `mariadb` CLI reading the same rows.
#
#   bash bench/extract.sh [PATIENTS]        (default 110000 ≈ 1,030,000 appointments)
#
# Prints a Markdown table: rows/s and the server's peak RSS per format/compression.
set -euo pipefail
cd "$(dirname "$0")/.."
PATIENTS=${1:-110000}
DB=cs_bench_${PATIENTS}
MYSQL_BASE=${CIPHERSTREAM_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cipherstream-target}"
cargo build --release --locked --quiet
BIN="$CARGO_TARGET_DIR/release/cipherstream"
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

if [ "$(mysql -uroot -N -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$DB' AND table_name='appointments'")" != 1 ]; then
  mysql -uroot -e "CREATE DATABASE IF NOT EXISTS $DB"
  echo "generating $PATIENTS patients into $DB …" >&2
  /usr/bin/time -f "generate: %e s, peak RSS %M KB" "$BIN" demo generate --target "$MYSQL_BASE/$DB" --patients "$PATIENTS" --seed 42 >&2
fi
ROWS=$(mysql -uroot -N -e "SELECT COUNT(*) FROM $DB.appointments")

export CIPHERSTREAM_ADMIN_TOKEN=bench-admin
"$BIN" --data-dir "$WORK" serve --bind 127.0.0.1:18080 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:18080/health >/dev/null && break; sleep 0.2; done
KEY=$(curl -sf -X POST -H "Authorization: Bearer bench-admin" -H 'Content-Type: application/json' \
  -d "{\"id\":\"bench\",\"name\":\"Bench\",\"source_url\":\"$MYSQL_BASE/$DB\"}" \
  http://127.0.0.1:18080/admin/v1/customers | python3 -c 'import sys,json; print(json.load(sys.stdin)["api_key"])')

now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1/($3-$2):,.0f}')"; }

echo "| what | rows | seconds | rows/s | output MB | server peak RSS MB |"
echo "|---|---|---|---|---|---|"
t0=$(now); mysql -uroot --batch --quick -e "SELECT * FROM $DB.appointments" > "$WORK/cli.tsv"; t1=$(now)
echo "| mariadb --batch --quick (baseline, raw table) | $ROWS | $(python3 -c "print(f'{$t1-$t0:.2f}')") | $(rate "$ROWS" "$t0" "$t1") | $(( $(stat -c %s "$WORK/cli.tsv") / 1048576 )) | — |"
# The same joined query the catalog runs, through the CLI: the fair baseline.
python3 - > "$WORK/appointments.sql" <<'PY'
import tomllib
p = tomllib.load(open("catalog/appointments.toml", "rb"))
cols = ", ".join(f"{c.get('expr_mysql', c['expr'])} AS `{c['name']}`" for c in p["columns"])
print(f"SELECT {cols} FROM {p.get('from_mysql', p['from'])} ORDER BY {p['order_by']}")
PY
t0=$(now); mysql -uroot --batch --quick "$DB" < "$WORK/appointments.sql" > "$WORK/cli.tsv"; t1=$(now)
echo "| mariadb --batch --quick (baseline, the catalog's joined query) | $ROWS | $(python3 -c "print(f'{$t1-$t0:.2f}')") | $(rate "$ROWS" "$t0" "$t1") | $(( $(stat -c %s "$WORK/cli.tsv") / 1048576 )) | — |"
t0=$(now); mysql -uroot --batch --quick "$DB" < "$WORK/appointments.sql" | gzip -1 > "$WORK/cli.tsv.gz"; t1=$(now)
echo "| mariadb --batch --quick \| gzip -1 (baseline, joined query) | $ROWS | $(python3 -c "print(f'{$t1-$t0:.2f}')") | $(rate "$ROWS" "$t0" "$t1") | $(( $(stat -c %s "$WORK/cli.tsv.gz") / 1048576 )) | — |"
# Server memory after a small extraction, before the large ones: RSS must not grow with rows.
curl -sf -H "Authorization: Bearer $KEY" -o /dev/null "http://127.0.0.1:18080/v1/extract/appointments?limit=10000&mode=sync"
echo "| cipherstream, 10,000 rows ndjson (memory reference) | 10000 | — | — | — | $(awk '/VmHWM/ {print int($2/1024)}' /proc/$SERVER/status) |"
for spec in "ndjson none" "csv none" "json none" "parquet none" "ndjson gzip" "csv gzip" "csv zip"; do
  set -- $spec
  t0=$(now)
  curl -sf -H "Authorization: Bearer $KEY" -o "$WORK/out" "http://127.0.0.1:18080/v1/extract/appointments?format=$1&compression=$2&mode=sync"
  t1=$(now)
  rss=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$SERVER/status)
  echo "| cipherstream appointments $1/$2 (joined names) | $ROWS | $(python3 -c "print(f'{$t1-$t0:.2f}')") | $(rate "$ROWS" "$t0" "$t1") | $(( $(stat -c %s "$WORK/out") / 1048576 )) | $rss |"
done
