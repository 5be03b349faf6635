#!/usr/bin/env bash
# End-to-end benchmark: a client table through starpipe into production (extract, then the worker: raw, transform,
# validate, promote), day 1 and day 2, as a ratio to the sum of three limits measured in the same run on the same
# private Postgres:
#   1. psql's \copy (SELECT row_to_json(t) FROM t) TO a file   (the server's own JSON export)
#   2. psql's \copy … FROM a CSV of the same rows               (bulk load)
#   3. a hand-written INSERT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM of those rows into a copy of production
# Day 1: N rows into an empty production table. Day 2: a full snapshot of 1.5 N rows (N/2 changed, N/2 unchanged,
# N/2 new). Prints each side's stages. Not a test: it prints figures.
#
#   bench/e2e/run.sh [--rows N] [--no-build]
#     --rows N     day-1 rows (default 1000000)
#     --no-build   use the installed extension and the existing release binary as they are
# STARPIPE_BENCH_PORT (default 54372) and STARPIPE_BENCH_PGBIN (default: the system Postgres 15) pick the server;
# STARPIPE_BENCH_BIN the starpipe executable (default: the release build).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../ci/lib.sh"
cd "$REPO"

ROWS=1000000
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: bench/e2e/run.sh [--rows N] [--no-build]" >&2; exit 2 ;;
    esac
done
[ "$ROWS" -ge 2 ] || { echo "--rows must be at least 2" >&2; exit 2; }

PORT=${STARPIPE_BENCH_PORT:-54372}
PGBIN=${STARPIPE_BENCH_PGBIN:-$PGBIN}
OUT="$REPO/bench/out/e2e"
BIN=${STARPIPE_BENCH_BIN:-$REPO/.build/release/starpipe}
ADMIN="postgresql://postgres@127.0.0.1:$PORT/postgres"
CLIENT="postgresql://postgres@127.0.0.1:$PORT/e2e_client"
PIPELINE="postgresql://postgres@127.0.0.1:$PORT/e2e_pipeline"
BASE="postgresql://postgres@127.0.0.1:$PORT/e2e_base"
export PGOPTIONS="-c client_min_messages=warning"
psql() { "$PGBIN/psql" -X -v ON_ERROR_STOP=1 "$@"; }

install_deps
[ -x /usr/bin/bc ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null
if [ "$BUILD" = 1 ]; then
    log "building and installing the starpipe extension into $PGBIN/.."
    make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" >/dev/null
    as_root make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" install >/dev/null
    log "swift build -c release"
    swift build -c release --product starpipe >/dev/null
fi
start_postgres bench-e2e "$PORT" max_wal_size=8GB checkpoint_timeout=30min shared_buffers=1GB work_mem=64MB \
    maintenance_work_mem=512MB
trap 'stop_postgres bench-e2e' EXIT
rm -rf "$OUT"
mkdir -p "$OUT/bucket"
chmod 777 "$OUT"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
timed() { # a psql command line; prints its wall time
    local start end
    start=$(now)
    psql "$@" >/dev/null
    end=$(now)
    elapsed "$start" "$end"
}

COLS="id, mrn, first_name, last_name, birth_date, city, balance, updated_at, notes"
DDL="(id bigint PRIMARY KEY, mrn text NOT NULL, first_name text, last_name text, birth_date date, city text,
      balance numeric, updated_at timestamptz, notes text)"
# Row i; a changed row (c = 1) differs in city, balance and updated_at.
row_sql() {
    local i=$1 c=$2
    echo "$i, 'MRN' || lpad($i::text, 9, '0'), 'first' || ($i % 1000), 'last' || ($i % 5000),
          date '1940-01-01' + ($i % 25000)::integer,
          CASE WHEN $c = 1 THEN 'moved' || ($i % 300) ELSE 'city' || ($i % 300) END,
          (($i % 100000) + $c * 7)::numeric / 100,
          timestamptz '2026-01-01 00:00:00+00' + ($i % 86400 + $c * 3600) * interval '1 second',
          CASE WHEN $i % 3 = 0 THEN NULL ELSE 'note ' || $i END"
}
UPSERT="INSERT INTO production.dim_patient AS t ($COLS) SELECT $COLS FROM stage ORDER BY id
  ON CONFLICT (id) DO UPDATE SET mrn = EXCLUDED.mrn, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    birth_date = EXCLUDED.birth_date, city = EXCLUDED.city, balance = EXCLUDED.balance, updated_at = EXCLUDED.updated_at,
    notes = EXCLUDED.notes
  WHERE (t.mrn, t.first_name, t.last_name, t.birth_date, t.city, t.balance, t.updated_at, t.notes)
        IS DISTINCT FROM (EXCLUDED.mrn, EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.birth_date, EXCLUDED.city,
                          EXCLUDED.balance, EXCLUDED.updated_at, EXCLUDED.notes)"

log "setting up: client table of $ROWS rows, pipeline database, baseline database"
for db in e2e_client e2e_pipeline e2e_base; do
    psql "$ADMIN" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
psql "$CLIENT" -q -c "CREATE TABLE dim_patient $DDL" \
    -c "INSERT INTO dim_patient ($COLS) SELECT $(row_sql i 0) FROM generate_series(1, $ROWS) i" -c "VACUUM ANALYZE dim_patient"
psql "$PIPELINE" -q >/dev/null <<SQL
CREATE EXTENSION starpipe;
CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.dim_patient $DDL;
GRANT SELECT, INSERT, UPDATE ON production.dim_patient TO starpipe_writer;
SELECT starpipe.apply_mapping(jsonb_build_object('version', 1, 'client', 'bench', 'target_schema', 'production',
  'tables', jsonb_build_object('dim_patient', jsonb_build_object('target', 'dim_patient', 'conflict_key', '["id"]'::jsonb,
  'columns', (SELECT jsonb_object_agg(c, jsonb_build_object('from', c))
                FROM unnest(string_to_array(replace('$COLS', ' ', ''), ',')) c)))));
SQL
psql "$BASE" -q -c "CREATE SCHEMA production" -c "CREATE TABLE production.dim_patient $DDL" -c "CREATE TABLE stage $DDL"

# One day: starpipe (extract, then the worker) and the three limits on the same rows; prints the figures.
day() {
    local name=$1 start end t_extract t_worker t_json t_csv t_upsert
    log "$name: starpipe"
    psql "$ADMIN" -q -c "CHECKPOINT"
    start=$(now)
    "$BIN" extract --source "$CLIENT" --client bench --bucket "file://$OUT/bucket" --tables dim_patient --run-id "$name" \
        --log-level error
    end=$(now); t_extract=$(elapsed "$start" "$end")
    start=$(now)
    "$BIN" worker --database "$PIPELINE" --bucket "file://$OUT/bucket" --until-idle --log-level error
    end=$(now); t_worker=$(elapsed "$start" "$end")
    local status
    status=$(psql "$PIPELINE" -qAt -c "SELECT status || ' ' || stage FROM starpipe.job WHERE run_id = '$name'")
    [ "$status" = "SUCCESS promoted" ] || { echo "$name: the job is $status" >&2; exit 1; }
    # The worker's stages, from the ledger's event times.
    local stages
    stages=$(psql "$PIPELINE" -qAt -F ' ' -c "
        WITH e AS (SELECT e.event, e.at FROM starpipe.job_event e JOIN starpipe.job j USING (job_id) WHERE j.run_id = '$name')
        SELECT round(extract(epoch FROM (SELECT at FROM e WHERE event = 'raw_loaded') - (SELECT at FROM e WHERE event = 'claim'))::numeric, 2),
               round(extract(epoch FROM (SELECT at FROM e WHERE event = 'transformed') - (SELECT at FROM e WHERE event = 'raw_loaded'))::numeric, 2),
               round(extract(epoch FROM (SELECT at FROM e WHERE event = 'validated') - (SELECT at FROM e WHERE event = 'transformed'))::numeric, 2),
               round(extract(epoch FROM (SELECT at FROM e WHERE event = 'promoted') - (SELECT at FROM e WHERE event = 'validated'))::numeric, 2)")
    read -r s_raw s_transform s_validate s_promote <<<"$stages"

    log "$name: the limits"
    psql "$CLIENT" -q -c "\\copy dim_patient TO '$OUT/$name.csv' WITH (FORMAT csv)"
    psql "$ADMIN" -q -c "CHECKPOINT"
    t_json=$(timed "$CLIENT" -q -c "\\copy (SELECT row_to_json(t) FROM dim_patient t) TO '$OUT/$name.json'")
    psql "$BASE" -q -c "TRUNCATE stage" -c "CHECKPOINT"
    t_csv=$(timed "$BASE" -q -c "\\copy stage FROM '$OUT/$name.csv' WITH (FORMAT csv)")
    psql "$BASE" -q -c "ANALYZE stage" -c "CHECKPOINT"
    t_upsert=$(timed "$BASE" -q -c "$UPSERT")
    local limit total
    limit=$(echo "$t_json + $t_csv + $t_upsert" | bc -l)
    total=$(echo "$t_extract + $t_worker" | bc -l)
    printf '\n%s (%s rows in the snapshot)\n' "$name" "$(psql "$CLIENT" -qAt -c 'SELECT count(*) FROM dim_patient')"
    printf '  starpipe  %7.2f s = extract %.2f + worker %.2f (raw %s, transform %s, validate %s, promote %s, the rest claim and scan)\n' \
        "$total" "$t_extract" "$t_worker" "$s_raw" "$s_transform" "$s_validate" "$s_promote"
    printf '  limits    %7.2f s = row_to_json export %.2f + csv copy %.2f + upsert %.2f\n' "$limit" "$t_json" "$t_csv" "$t_upsert"
    printf '  ratio     %7.2fx (goal <= 1.5x)\n' "$(echo "$total / $limit" | bc -l)"
    rm -f "$OUT/$name.csv" "$OUT/$name.json"
}

day day1
# Day 2: half the rows change, half stay, and as many new ones arrive.
psql "$CLIENT" -q -c "UPDATE dim_patient SET ($COLS) = (SELECT $(row_sql id 1)) WHERE id <= $((ROWS / 2))" \
    -c "INSERT INTO dim_patient ($COLS) SELECT $(row_sql i 0) FROM generate_series($ROWS + 1, $ROWS + $ROWS / 2) i" \
    -c "VACUUM ANALYZE dim_patient"
day day2
