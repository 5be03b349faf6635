#!/usr/bin/env bash
# Ingest benchmark: the worker's wall time from a JSON data file to its raw table, as a ratio to
# psql's `\copy … FROM csv` of the same rows into an identical table, measured in the same run on
# the same private Postgres; plus the worker's peak RSS. Not a test: it prints figures.
#
#   bench/ingest/run.sh [--rows N] [--runs K] [--rss-rows M]
#     --rows N      rows of the main comparison (default 1000000)
#     --runs K      timed runs of each side; the median is reported (default 3)
#     --rss-rows M  also ingest an M-row file once and compare its peak RSS with N rows' (e.g. 10000000)
#     --no-build    use the installed extension and the existing release binary as they are
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../ci/lib.sh"
cd "$REPO"

ROWS=1000000
RUNS=3
RSS_ROWS=""
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --rss-rows) RSS_ROWS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: bench/ingest/run.sh [--rows N] [--runs K] [--rss-rows M]" >&2; exit 2 ;;
    esac
done

PORT=${STARPIPE_BENCH_PORT:-54350}
OUT="$REPO/bench/out"
BIN="$REPO/.build/release/starpipe"
ADMIN="postgresql://postgres@127.0.0.1:$PORT/postgres"
export PGOPTIONS="-c client_min_messages=warning"

install_deps
for tool in /usr/bin/time:time /usr/bin/bc:bc /usr/bin/python3:python3; do
    [ -x "${tool%%:*}" ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool##*:}" >/dev/null
done
if [ "$BUILD" = 1 ]; then
    install_extension
    log "swift build -c release"
    swift build -c release --product starpipe >/dev/null
fi
start_postgres bench "$PORT" max_wal_size=4GB checkpoint_timeout=30min
trap 'stop_postgres bench' EXIT

generate() {
    local rows=$1
    if [ ! -f "$OUT/patients-$rows.csv" ]; then
        log "generating $rows rows"
        python3 "$REPO/bench/ingest/generate.py" --rows "$rows" --out "$OUT"
    fi
}

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

TABLE_DDL="CREATE TABLE patients (patient_id uuid, mrn text, first_name text, last_name text, birth_date date,
  registered_at timestamptz, updated_at timestamptz, active boolean, deceased boolean, weight_kg numeric,
  height_cm numeric, balance numeric, city text, email text, phone text, notes text)"

# Baseline: psql's client-side COPY of the CSV into a fresh, identical table.
baseline_once() {
    local rows=$1 start end
    psql "$ADMIN" -q -c "DROP DATABASE IF EXISTS bench_copy" -c "CREATE DATABASE bench_copy"
    psql "postgresql://postgres@127.0.0.1:$PORT/bench_copy" -q -c "$TABLE_DDL" -c "CHECKPOINT"
    start=$(now)
    psql "postgresql://postgres@127.0.0.1:$PORT/bench_copy" -q -c "\\copy patients FROM '$OUT/patients-$rows.csv' WITH (FORMAT csv)"
    end=$(now)
    echo "$end - $start" | bc -l
}

# starpipe: a fresh pipeline database, then the worker from discovery to a committed raw version.
worker_once() {
    local rows=$1
    local bucket="$OUT/bucket-$rows"
    psql "$ADMIN" -q -c "DROP DATABASE IF EXISTS bench_worker" -c "CREATE DATABASE bench_worker"
    psql "postgresql://postgres@127.0.0.1:$PORT/bench_worker" -q -c "CREATE EXTENSION starpipe" -c "CHECKPOINT"
    /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$BIN" worker --until-idle --log-level error \
        --database "postgresql://postgres@127.0.0.1:$PORT/bench_worker" --bucket "file://$bucket"
    local status
    status=$(psql "postgresql://postgres@127.0.0.1:$PORT/bench_worker" -Atc "SELECT status || ' ' || rows_raw FROM starpipe.job")
    [ "$status" = "SUCCESS $rows" ] || { echo "worker did not load $rows rows: $status" >&2; exit 1; }
    cat "$OUT/time.txt"
}

generate "$ROWS"
log "timing $RUNS runs of each side on $ROWS rows"
copy_times=()
worker_times=()
worker_rss=()
for run in $(seq "$RUNS"); do
    copy_times+=("$(baseline_once "$ROWS")")
    read -r wall rss < <(worker_once "$ROWS")
    worker_times+=("$wall")
    worker_rss+=("$rss")
    printf '  run %d: psql COPY csv %.2fs, starpipe worker %.2fs, peak RSS %d KiB\n' \
        "$run" "${copy_times[-1]}" "$wall" "$rss"
done
copy_median=$(printf '%s\n' "${copy_times[@]}" | median)
worker_median=$(printf '%s\n' "${worker_times[@]}" | median)
rss_max=$(printf '%s\n' "${worker_rss[@]}" | sort -n | tail -1)
log "results ($ROWS rows, median of $RUNS)"
printf 'psql COPY csv:      %.2f s (%.0f rows/s)\n' "$copy_median" "$(echo "$ROWS / $copy_median" | bc -l)"
printf 'starpipe worker:    %.2f s (%.0f rows/s)\n' "$worker_median" "$(echo "$ROWS / $worker_median" | bc -l)"
printf 'wall ratio:         %.2fx the COPY baseline (target <= 1.0x)\n' "$(echo "$worker_median / $copy_median" | bc -l)"
printf 'peak RSS:           %.1f MB (target <= 64 MB)\n' "$(echo "$rss_max / 1024" | bc -l)"

if [ -n "$RSS_ROWS" ]; then
    generate "$RSS_ROWS"
    read -r wall big_rss < <(worker_once "$RSS_ROWS")
    printf 'peak RSS, %d rows: %.1f MB = %.2fx the %d-row run (target <= 1.2x)\n' \
        "$RSS_ROWS" "$(echo "$big_rss / 1024" | bc -l)" "$(echo "$big_rss / $rss_max" | bc -l)" "$ROWS"
fi
