#!/usr/bin/env bash
# Transform + validation benchmark: starpipe.transform and starpipe.validate of one raw version of N rows, with ten
# cleaning rules, date, timestamp, number and boolean coercions, a value map and five gates, as a ratio to one
# hand-written INSERT … SELECT doing the same cleaning, casts and dedup into a table with the same constraints,
# measured in the same run on the same private Postgres. Not a test: it prints figures.
#
#   bench/transform/run.sh [--rows N] [--runs K] [--bad-fraction F] [--no-build]
#     --rows N          raw rows (default 1000000)
#     --runs K          timed runs of each side; the median is reported (default 3)
#     --bad-fraction F  the quarantine run: this fraction of rows has a birth date in none of the formats (default 0.01)
#     --no-build        use the installed extension as it is
#
# The jobs go through the pipeline from SQL (register, claim, prepare_raw, begin_raw, an INSERT … SELECT into the
# loading table in place of the worker's COPY, finish_raw); only transform and validate, and the baseline, are timed.
# Then, once per run, the same batch with bad rows: transform takes the quarantine path (reported, not compared).
# STARPIPE_BENCH_PORT (default 54353) and STARPIPE_BENCH_PGBIN (default: the system Postgres 15) pick the server.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../ci/lib.sh"
cd "$REPO"

ROWS=1000000
RUNS=3
BAD=0.01
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --bad-fraction) BAD=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: bench/transform/run.sh [--rows N] [--runs K] [--bad-fraction F] [--no-build]" >&2; exit 2 ;;
    esac
done
[ "$ROWS" -ge 100 ] || { echo "--rows must be at least 100" >&2; exit 2; }

PORT=${STARPIPE_BENCH_PORT:-54353}
PGBIN=${STARPIPE_BENCH_PGBIN:-$PGBIN}
DB="postgresql://postgres@127.0.0.1:$PORT/bench_transform"
ADMIN="postgresql://postgres@127.0.0.1:$PORT/postgres"
export PGOPTIONS="-c client_min_messages=warning"
psql() { "$PGBIN/psql" -X -v ON_ERROR_STOP=1 "$@"; }

if [ "$BUILD" = 1 ]; then
    log "building and installing the starpipe extension into $PGBIN/.."
    make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" >/dev/null
    as_root make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" install >/dev/null
fi
[ -x /usr/bin/bc ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null
start_postgres bench-transform "$PORT" max_wal_size=8GB checkpoint_timeout=30min shared_buffers=1GB work_mem=64MB \
    maintenance_work_mem=512MB
trap 'stop_postgres bench-transform' EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
checkpoint() { psql "$DB" -q -c "CHECKPOINT"; }
# Wall time of SQL statements, connection included (the same for both sides).
timed() {
    local start end
    start=$(now)
    psql "$DB" -qAt -c "$1" >/dev/null
    end=$(now)
    echo "$end - $start" | bc -l
}

COLUMNS='[{"name": "ID", "type": "bigint"}, {"name": "MRN", "type": "text"}, {"name": "FIRST", "type": "text"},
  {"name": "LAST", "type": "text"}, {"name": "BIRTH", "type": "text"}, {"name": "GENDER", "type": "text"},
  {"name": "SMOKER", "type": "text"}, {"name": "BALANCE", "type": "text"}, {"name": "SEEN", "type": "text"},
  {"name": "CITY", "type": "text"}, {"name": "ZIP", "type": "text"}]'
RAWCOLS='"ID", "MRN", "FIRST", "LAST", "BIRTH", "GENDER", "SMOKER", "BALANCE", "SEEN", "CITY", "ZIP"'
# Raw row i as a client would send it: padded codes, US dates, a decimal comma, compact timestamps; 1 % of the
# rows repeat an earlier id (dedup); rows with i % BADMOD = 3 have a birth date in none of the formats.
row_sql() { # $1: BADMOD (0: none)
    echo "CASE WHEN i % 100 = 0 THEN i - 1 ELSE i END, ' mrn' || lpad(i::text, 9, '0') || ' ', ' first  ' || (i % 1000),
          'last' || (i % 5000) || ' ',
          CASE WHEN $1 > 0 AND i % $1 = 3 THEN 'unknown' WHEN i % 7 = 0 THEN to_char(date '1940-01-01' + (i % 25000), 'YYYY-MM-DD')
               ELSE to_char(date '1940-01-01' + (i % 25000), 'MM/DD/YYYY') END,
          (ARRAY[' m', 'f ', 'U', 'M'])[i % 4 + 1], (ARRAY['Y', 'N', 'yes', '0'])[i % 4 + 1],
          to_char((i % 100000)::numeric / 100 + 1000, 'FM999G990D00'),
          to_char(timestamp '2026-01-01' + (i % 86400) * interval '1 minute', 'YYYYMMDD HH24:MI'),
          CASE WHEN i % 50 = 0 THEN NULL ELSE ' City ' || (i % 300) END, 'zip-' || lpad((i % 99999)::text, 5, '0')"
}

MAPPING='{"version": 1, "client": "bench", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"], "rejects": {"max_fraction": 0.05},
  "columns": {
    "person_id":  {"from": "ID"},
    "mrn":        {"from": "MRN", "clean": ["trim", "upper"]},
    "first_name": {"from": "FIRST", "clean": ["trim", "collapse_spaces"]},
    "last_name":  {"from": "LAST", "clean": ["trim"]},
    "birth_date": {"from": "BIRTH", "formats": ["MM/DD/YYYY", "ISO"]},
    "gender":     {"from": "GENDER", "clean": ["trim", "upper"], "map": {"M": "male", "F": "female", "U": "unknown"}},
    "smoker":     {"from": "SMOKER", "booleans": "standard"},
    "balance":    {"from": "BALANCE", "number": {"decimal": ".", "thousands": ","}},
    "seen_at":    {"from": "SEEN", "formats": ["YYYYMMDD HH24:MI"], "timezone": "America/New_York"},
    "city":       {"from": "CITY", "clean": ["trim", "lower"]},
    "zip":        {"from": "ZIP", "clean": ["digits_only"]}},
  "checks": [{"not_null": ["mrn"]}, {"unique": ["mrn"]}, {"accepted_values": {"column": "gender", "values": ["male", "female", "unknown"]}},
             {"null_fraction": {"column": "city", "max": 0.05}}, {"min_rows": 1}]}}}'

# The hand-written equivalent: the same cleaning, parsing, casts and dedup (the last row of a key wins).
BASELINE='INSERT INTO baseline.people (person_id, mrn, first_name, last_name, birth_date, gender, smoker, balance, seen_at, city, zip)
SELECT DISTINCT ON (person_id) person_id, mrn, first_name, last_name, birth_date, gender, smoker, balance, seen_at, city, zip FROM (
  SELECT r."ID" AS person_id, upper(btrim(r."MRN")) AS mrn,
         regexp_replace(btrim(r."FIRST"), '"'"'[[:space:]]+'"'"', '"'"' '"'"', '"'"'g'"'"') AS first_name, btrim(r."LAST") AS last_name,
         CASE WHEN r."BIRTH" ~ '"'"'^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$'"'"' THEN to_date(r."BIRTH", '"'"'MM/DD/YYYY'"'"')
              ELSE r."BIRTH"::date END AS birth_date,
         CASE upper(btrim(r."GENDER")) WHEN '"'"'M'"'"' THEN '"'"'male'"'"' WHEN '"'"'F'"'"' THEN '"'"'female'"'"' WHEN '"'"'U'"'"' THEN '"'"'unknown'"'"' END AS gender,
         CASE WHEN lower(r."SMOKER") IN ('"'"'y'"'"', '"'"'yes'"'"', '"'"'1'"'"', '"'"'t'"'"', '"'"'true'"'"') THEN true
              WHEN lower(r."SMOKER") IN ('"'"'n'"'"', '"'"'no'"'"', '"'"'0'"'"', '"'"'f'"'"', '"'"'false'"'"') THEN false END AS smoker,
         replace(r."BALANCE", '"'"','"'"', '"'"''"'"')::numeric(12, 2) AS balance,
         to_timestamp(r."SEEN", '"'"'YYYYMMDD HH24:MI'"'"')::timestamp AT TIME ZONE '"'"'America/New_York'"'"' AS seen_at,
         lower(btrim(r."CITY")) AS city, regexp_replace(r."ZIP", '"'"'[^0-9]+'"'"', '"'"''"'"', '"'"'g'"'"') AS zip, r._source_row
    FROM baseline.raw r) s
ORDER BY person_id, _source_row DESC'

setup() {
    psql "$ADMIN" -q -c "DROP DATABASE IF EXISTS bench_transform" -c "CREATE DATABASE bench_transform"
    psql "$DB" -q >/dev/null <<SQL
CREATE EXTENSION starpipe;
CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.people (person_id bigint PRIMARY KEY, mrn text NOT NULL, first_name text, last_name text,
  birth_date date NOT NULL CHECK (birth_date > '1900-01-01'), gender text CHECK (gender IN ('male', 'female', 'unknown')),
  smoker boolean, balance numeric(12, 2), seen_at timestamptz, city text, zip text);
GRANT SELECT, INSERT, UPDATE ON production.people TO starpipe_writer;
SELECT starpipe.apply_mapping('$MAPPING');
SQL
}

# Registers and loads a job of N raw rows; prints "job fence raw_version".
load_job() {
    local run=$1 badmod=$2
    psql "$DB" -qAt <<SQL
\o /dev/null
CREATE TEMP TABLE j AS SELECT r.job_id FROM starpipe.register(jsonb_build_object(
  'format_version', 1, 'client', 'bench', 'table', 'people', 'snapshot_date', '2026-12-01', 'run_id', '$run',
  'data_file', 'data.json', 'format', 'ndjson', 'row_count', $ROWS, 'byte_count', 1,
  'sha256', encode(sha256('$run'::bytea), 'hex'), 'columns', '$COLUMNS'::jsonb), 'm/$run', 'd/$run') r;
CREATE TEMP TABLE f AS SELECT c.fence FROM starpipe.claim('bench') c;
SELECT starpipe.prepare_raw((SELECT job_id FROM j), (SELECT fence FROM f));
BEGIN;
CREATE TEMP TABLE l AS SELECT b.load_table FROM starpipe.begin_raw((SELECT job_id FROM j), (SELECT fence FROM f)) b;
SELECT format('INSERT INTO %s ($RAWCOLS, _source_row) SELECT %s, i FROM generate_series(1, $ROWS) i',
              load_table, \$\$$(row_sql "$badmod")\$\$) FROM l \gexec
SELECT starpipe.finish_raw((SELECT job_id FROM j), (SELECT fence FROM f), $ROWS, 1, encode(sha256('$run'::bytea), 'hex'));
COMMIT;
\o
SELECT job_id || ' ' || (SELECT fence FROM f) || ' ' || starpipe.raw_version(job_id) FROM j;
SQL
}

# An identical copy of the raw version and an empty table with production's constraints for the baseline.
copy_for_baseline() {
    local raw=$1
    psql "$DB" -q <<SQL
DROP SCHEMA IF EXISTS baseline CASCADE;
CREATE SCHEMA baseline;
CREATE TABLE baseline.raw AS SELECT * FROM $raw;
CREATE TABLE baseline.people (LIKE production.people INCLUDING CONSTRAINTS);
VACUUM ANALYZE baseline.raw;
VACUUM ANALYZE $raw;
CHECKPOINT;
SQL
}

check_job() { # $1 job, $2 expected status
    local got
    got=$(psql "$DB" -qAt -c "SELECT status || ' ' || rows_raw || ' ' || rows_staged || ' ' || coalesce(rows_rejected, 0) || ' ' || rows_deduplicated FROM starpipe.job WHERE job_id = $1")
    set -- "$1" "$2" $got
    [ "$3" = "$2" ] || { echo "job $1: $got, expected status $2" >&2; exit 1; }
    [ "$4" = $(( $5 + $6 + $7 )) ] || { echo "job $1: reconciliation $got does not add up" >&2; exit 1; }
    echo "$got"
}

log "timing $RUNS runs of each side: $ROWS raw rows, ten cleaning rules, four parses, a map, five gates"
base=(); sp=(); spt=(); bad=()
BADMOD=$(echo "1 / $BAD" | bc)
for run in $(seq "$RUNS"); do
    setup
    read -r job fence raw < <(load_job "clean$run" 0)
    copy_for_baseline "$raw"
    if [ $((run % 2)) = 1 ]; then
        base+=("$(timed "$BASELINE")"); checkpoint
        t1=$(timed "SELECT starpipe.transform($job, $fence)"); t2=$(timed "SELECT starpipe.validate($job, $fence)")
    else
        t1=$(timed "SELECT starpipe.transform($job, $fence)"); t2=$(timed "SELECT starpipe.validate($job, $fence)"); checkpoint
        base+=("$(timed "$BASELINE")")
    fi
    spt+=("$t1"); sp+=("$(echo "$t1 + $t2" | bc -l)")
    counts=$(check_job "$job" PROCESSING)
    same=$(psql "$DB" -qAt -c "SELECT count(*) FROM baseline.people")
    [ "$same" = "$(echo "$counts" | cut -d' ' -f3)" ] || { echo "baseline staged $same rows, starpipe $counts" >&2; exit 1; }
    psql "$DB" -q -c "SELECT starpipe.promote($job, $fence)" >/dev/null
    # The quarantine path: the same batch with bad birth dates (a new snapshot of the same table).
    read -r job fence raw < <(load_job "bad$run" "$BADMOD")
    psql "$DB" -q -c "VACUUM ANALYZE $raw" -c "CHECKPOINT"
    bad+=("$(timed "SELECT starpipe.transform($job, $fence)")")
    counts_bad=$(check_job "$job" PROCESSING)
    printf '  run %d: baseline %.2fs; starpipe transform %.2fs + validate %.2fs = %.2fx; with %s rejects: transform %.2fs (%s)\n' "$run" \
        "${base[-1]}" "$t1" "$t2" "$(echo "${sp[-1]} / ${base[-1]}" | bc -l)" "$(echo "$counts_bad" | cut -d' ' -f4)" "${bad[-1]}" "$counts_bad"
done
b=$(printf '%s\n' "${base[@]}" | median)
s=$(printf '%s\n' "${sp[@]}" | median)
st=$(printf '%s\n' "${spt[@]}" | median)
q=$(printf '%s\n' "${bad[@]}" | median)
log "results ($ROWS raw rows, median of $RUNS)"
printf 'hand-written INSERT … SELECT:     %.2f s\n' "$b"
printf 'starpipe transform + validate:    %.2f s (transform alone %.2f s)\n' "$s" "$st"
printf 'ratio:                            %.2fx the hand-written statement (target <= 1.5x)\n' "$(echo "$s / $b" | bc -l)"
printf 'transform with %s bad rows:       %.2f s = %.2fx the clean transform (quarantine path)\n' "$BAD" "$q" "$(echo "$q / $st" | bc -l)"
