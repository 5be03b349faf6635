#!/usr/bin/env bash
# Promotion benchmark: starpipe.promote(job, fence) of a staged job into production, with its full conflict
# audit, as a ratio to a hand-written INSERT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM of the same
# staged rows into an identical copy of production, measured in the same run on the same private Postgres.
# Not a test: it prints figures.
#
#   bench/promote/run.sh [--rows N] [--runs K] [--no-build]
#     --rows N      production rows and staged rows (default 1000000): production holds ids 1..N; the job
#                   stages ids N/2+1..N/2+N, so half the staged rows change an existing row and half are new
#     --runs K      timed runs of each side; the median is reported (default 3)
#     --no-build    use the installed extension as it is
#   Then, once per run, the unchanged snapshot: N staged rows equal to production (writes nothing).
#
# The job goes through the pipeline from SQL (register, claim, prepare_raw, begin_raw, an INSERT … SELECT into
# the loading table in place of the worker's COPY, finish_raw, transform, validate); only promote is timed.
# STARPIPE_BENCH_PORT (default 54352) and STARPIPE_BENCH_PGBIN (default: the system Postgres 15) pick the server.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../ci/lib.sh"
cd "$REPO"

ROWS=1000000
RUNS=3
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: bench/promote/run.sh [--rows N] [--runs K] [--no-build]" >&2; exit 2 ;;
    esac
done
[ "$ROWS" -ge 2 ] || { echo "--rows must be at least 2" >&2; exit 2; }

PORT=${STARPIPE_BENCH_PORT:-54352}
PGBIN=${STARPIPE_BENCH_PGBIN:-$PGBIN}
DB="postgresql://postgres@127.0.0.1:$PORT/bench_promote"
ADMIN="postgresql://postgres@127.0.0.1:$PORT/postgres"
export PGOPTIONS="-c client_min_messages=warning"
psql() { "$PGBIN/psql" -X -v ON_ERROR_STOP=1 "$@"; }

if [ "$BUILD" = 1 ]; then
    log "building and installing the starpipe extension into $PGBIN/.."
    make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" >/dev/null
    as_root make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" install >/dev/null
fi
[ -x /usr/bin/bc ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null
# autovacuum off: both sides VACUUM ANALYZE explicitly, and a worker vacuuming one side's table while the other is timed
# (2 cores) made the side timed second up to 1.6x slower.
start_postgres bench-promote "$PORT" max_wal_size=8GB checkpoint_timeout=30min shared_buffers=1GB work_mem=64MB autovacuum=off \
    maintenance_work_mem=512MB
trap 'stop_postgres bench-promote' EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
checkpoint() { psql "$DB" -q -c "CHECKPOINT"; }
# Wall time of one SQL statement, connection included (the same for both sides).
timed() {
    local start end
    start=$(now)
    psql "$DB" -qAt -c "$1" >/dev/null
    end=$(now)
    echo "$end - $start" | bc -l
}

COLUMNS='[{"name": "id", "type": "bigint", "nullable": false}, {"name": "mrn", "type": "text", "nullable": false},
  {"name": "first_name", "type": "text", "nullable": true}, {"name": "last_name", "type": "text", "nullable": true},
  {"name": "birth_date", "type": "date", "nullable": true}, {"name": "city", "type": "text", "nullable": true},
  {"name": "balance", "type": "numeric", "nullable": true}, {"name": "updated_at", "type": "timestamptz", "nullable": true},
  {"name": "notes", "type": "text", "nullable": true}]'
COLS="id, mrn, first_name, last_name, birth_date, city, balance, updated_at, notes"
# Row i of production; a changed row differs in city, balance and updated_at.
row_sql() { # $1: the id expression, $2: 1 for the changed values
    local i=$1 c=$2
    echo "$i, 'MRN' || lpad($i::text, 9, '0'), 'first' || ($i % 1000), 'last' || ($i % 5000),
          date '1940-01-01' + ($i % 25000)::integer,
          CASE WHEN $c = 1 THEN 'moved' || ($i % 300) ELSE 'city' || ($i % 300) END,
          (($i % 100000) + $c * 7)::numeric / 100,
          timestamptz '2026-01-01 00:00:00+00' + ($i % 86400 + $c * 3600) * interval '1 second',
          CASE WHEN $i % 3 = 0 THEN NULL ELSE 'note ' || $i END"
}

# A fresh database: the extension, production.patients with ids 1..N, and the mapping.
setup() {
    psql "$ADMIN" -q -c "DROP DATABASE IF EXISTS bench_promote" -c "CREATE DATABASE bench_promote"
    psql "$DB" -q >/dev/null <<SQL
CREATE EXTENSION starpipe;
CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.patients (id bigint PRIMARY KEY, mrn text NOT NULL, first_name text, last_name text,
  birth_date date, city text, balance numeric, updated_at timestamptz, notes text);
GRANT SELECT, INSERT, UPDATE ON production.patients TO starpipe_writer;
INSERT INTO production.patients ($COLS) SELECT $(row_sql i 0) FROM generate_series(1, $ROWS) i;
SELECT starpipe.apply_mapping(jsonb_build_object('version', 1, 'client', 'bench', 'target_schema', 'production',
  'tables', jsonb_build_object('patients', jsonb_build_object('target', 'patients', 'conflict_key', '["id"]'::jsonb,
  'columns', (SELECT jsonb_object_agg(c->>'name', jsonb_build_object('from', c->>'name'))
                FROM jsonb_array_elements('$COLUMNS'::jsonb) c)))));
SQL
}

# Registers, loads, transforms and validates a job of N staged rows (ids FIRST..FIRST+N-1; ids up to CHANGED_TO
# get the changed values); prints "job fence staging_table".
stage_job() {
    local run=$1 first=$2 changed_to=$3
    psql "$DB" -qAt <<SQL
\o /dev/null
CREATE TEMP TABLE j AS SELECT r.job_id FROM starpipe.register(jsonb_build_object(
  'format_version', 1, 'client', 'bench', 'table', 'patients', 'snapshot_date', '2026-12-01', 'run_id', '$run',
  'data_file', 'data.json', 'format', 'ndjson', 'row_count', $ROWS, 'byte_count', 1,
  'sha256', encode(sha256('$run'::bytea), 'hex'), 'primary_key', '["id"]'::jsonb, 'columns', '$COLUMNS'::jsonb),
  'm/$run', 'd/$run') r;
CREATE TEMP TABLE f AS SELECT c.fence FROM starpipe.claim('bench') c;
SELECT starpipe.prepare_raw((SELECT job_id FROM j), (SELECT fence FROM f));
BEGIN;
CREATE TEMP TABLE l AS SELECT b.load_table FROM starpipe.begin_raw((SELECT job_id FROM j), (SELECT fence FROM f)) b;
SELECT format('INSERT INTO %s ($COLS, _source_row) SELECT %s, i - $first + 1 FROM generate_series($first, $first + $ROWS - 1) i',
              load_table, \$\$$(row_sql i "(i <= $changed_to)::integer")\$\$) FROM l \gexec
SELECT starpipe.finish_raw((SELECT job_id FROM j), (SELECT fence FROM f), $ROWS, 1, encode(sha256('$run'::bytea), 'hex'));
COMMIT;
SELECT starpipe.transform((SELECT job_id FROM j), (SELECT fence FROM f)) = 'PROCESSING'
   AND starpipe.validate((SELECT job_id FROM j), (SELECT fence FROM f)) = 'PROCESSING' AS ok \gset
\if :ok
\else
  \echo the bench job did not validate
  \quit 1
\endif
\o
SELECT job_id || ' ' || (SELECT fence FROM f) || ' ' || (SELECT e.detail->>'staging' FROM starpipe.job_event e
        WHERE e.job_id = j.job_id AND e.event = 'transformed') FROM j;
SQL
}

# An identical copy of production and of the staged rows for the hand-written upsert; then everything is vacuumed
# and checkpointed so neither side pays for the other's dirty pages.
copy_for_baseline() {
    local staging=$1
    psql "$DB" -q <<SQL
DROP SCHEMA IF EXISTS baseline CASCADE;
CREATE SCHEMA baseline;
CREATE TABLE baseline.patients (LIKE production.patients INCLUDING ALL);
INSERT INTO baseline.patients SELECT * FROM production.patients;
CREATE TABLE baseline.staged AS SELECT * FROM $staging;
VACUUM ANALYZE baseline.patients;
VACUUM ANALYZE baseline.staged;
VACUUM ANALYZE production.patients;
VACUUM ANALYZE $staging;
CHECKPOINT;
SQL
}

UPSERT="INSERT INTO baseline.patients AS t ($COLS) SELECT $COLS FROM baseline.staged ORDER BY id
  ON CONFLICT (id) DO UPDATE SET mrn = EXCLUDED.mrn, first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
    birth_date = EXCLUDED.birth_date, city = EXCLUDED.city, balance = EXCLUDED.balance, updated_at = EXCLUDED.updated_at,
    notes = EXCLUDED.notes
  WHERE (t.mrn, t.first_name, t.last_name, t.birth_date, t.city, t.balance, t.updated_at, t.notes)
        IS DISTINCT FROM (EXCLUDED.mrn, EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.birth_date, EXCLUDED.city,
                          EXCLUDED.balance, EXCLUDED.updated_at, EXCLUDED.notes)"

check_counts() { # $1 job, $2 expected "inserted updated conflicts"
    local got
    got=$(psql "$DB" -qAt -c "SELECT rows_inserted || ' ' || rows_updated || ' '
        || (SELECT count(*) FROM starpipe.conflict c WHERE c.job_id = $1) FROM starpipe.job WHERE job_id = $1")
    [ "$got" = "$2" ] || { echo "job $1: inserted, updated, conflicts = $got, expected $2" >&2; exit 1; }
}

HALF=$((ROWS / 2))
log "timing $RUNS runs of each side: $ROWS staged rows into $ROWS production rows ($HALF changed, $((ROWS - HALF)) new)"
up_times=(); pr_times=(); up_same=(); pr_same=()
for run in $(seq "$RUNS"); do
    setup
    read -r job fence staging < <(stage_job "changed$run" $((HALF + 1)) "$ROWS")
    copy_for_baseline "$staging"
    # Each side starts from a checkpoint (neither writes out the other's dirty pages); odd runs time the upsert
    # first, even runs promote first.
    if [ $((run % 2)) = 1 ]; then
        up_times+=("$(timed "$UPSERT")"); checkpoint
        pr_times+=("$(timed "SELECT starpipe.promote($job, $fence)")")
    else
        pr_times+=("$(timed "SELECT starpipe.promote($job, $fence)")"); checkpoint
        up_times+=("$(timed "$UPSERT")")
    fi
    check_counts "$job" "$((ROWS - HALF)) $HALF $HALF"
    # The unchanged snapshot: the same rows again, now equal to production.
    read -r job fence staging < <(stage_job "same$run" $((HALF + 1)) "$ROWS")
    copy_for_baseline "$staging"
    if [ $((run % 2)) = 1 ]; then
        up_same+=("$(timed "$UPSERT")"); checkpoint
        pr_same+=("$(timed "SELECT starpipe.promote($job, $fence)")")
    else
        pr_same+=("$(timed "SELECT starpipe.promote($job, $fence)")"); checkpoint
        up_same+=("$(timed "$UPSERT")")
    fi
    check_counts "$job" "0 0 0"
    printf '  run %d: upsert %.2fs, promote %.2fs (%.2fx); unchanged: upsert %.2fs, promote %.2fs\n' "$run" \
        "${up_times[-1]}" "${pr_times[-1]}" "$(echo "${pr_times[-1]} / ${up_times[-1]}" | bc -l)" "${up_same[-1]}" "${pr_same[-1]}"
done
up=$(printf '%s\n' "${up_times[@]}" | median)
pr=$(printf '%s\n' "${pr_times[@]}" | median)
ups=$(printf '%s\n' "${up_same[@]}" | median)
prs=$(printf '%s\n' "${pr_same[@]}" | median)
log "results ($ROWS staged rows, median of $RUNS)"
printf 'hand-written upsert:        %.2f s\n' "$up"
printf 'starpipe.promote:           %.2f s (with %d conflict rows)\n' "$pr" "$HALF"
printf 'ratio:                      %.2fx the upsert (required <= 1.3x, aim 1.1x)\n' "$(echo "$pr / $up" | bc -l)"
printf 'unchanged snapshot upsert:  %.2f s\n' "$ups"
printf 'unchanged snapshot promote: %.2f s = %.2fx its upsert, %.2fx the changed upsert (writes nothing)\n' \
    "$prs" "$(echo "$prs / $ups" | bc -l)" "$(echo "$prs / $up" | bc -l)"
