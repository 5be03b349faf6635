#!/usr/bin/env bash
# Issue 4's transport choice, measured: the same 1M-row patient table loaded, in one run, by
#   psql-csv      psql `\copy … FROM csv` (the baseline of bench/ingest)
#   libpq-text    libpq `COPY … FROM STDIN` (text), the file in 1 MiB PQputCopyData chunks
#   nio-text      postgres-nio `copyFrom` (text), the same file in 1 MiB chunks
#   libpq-binary  libpq `COPY … FROM STDIN (FORMAT binary)`, a binary dump of the same rows
# The text and binary files are made once from the CSV by the server itself, so both text clients
# send identical bytes. Each sample goes into a freshly created, checkpointed table; the order of the
# four rotates from run to run; medians are printed. Not a test: it prints figures.
#
#   bench/copy-client/run.sh [--rows N] [--runs K] [--no-build] [--profile]
#     --rows N     rows (default 1000000; the CSV comes from bench/ingest/generate.py)
#     --runs K     timed runs of each client; medians are reported (default 5)
#     --no-build   use the existing release build of this package
#     --profile    also profile the server backend (perf) of one libpq text and one binary load, and
#                  print where its CPU goes: line/field splitting, each type's input function, storage
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/lib.sh
source "$HERE/../../ci/lib.sh"
cd "$REPO"

ROWS=1000000
RUNS=5
BUILD=1
PROFILE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --profile) PROFILE=1; shift ;;
    *) echo "usage: bench/copy-client/run.sh [--rows N] [--runs K] [--no-build] [--profile]" >&2; exit 2 ;;
    esac
done

PORT=${COPYBENCH_PORT:-54360}
OUT="$REPO/bench/out/copy-client"
SCRATCH="$REPO/bench/out/copy-client-build"
BIN="$SCRATCH/release"
DB="postgresql://postgres@127.0.0.1:$PORT/copybench"
CONNINFO="host=127.0.0.1 port=$PORT user=postgres dbname=copybench"
CSV="$REPO/bench/out/patients-$ROWS.csv"
TXT="$OUT/patients-$ROWS.txt"
BINARY="$OUT/patients-$ROWS.bin"
VARIANTS=(psql-csv libpq-text nio-text libpq-binary)
TCK=$(getconf CLK_TCK)
# A sample is redone (up to 3 times) when processes other than the client and this cluster used
# more than this many CPU seconds during it: the machine has 2 cores and is shared.
FOREIGN_LIMIT=${COPYBENCH_FOREIGN_LIMIT:-0.30}

install_deps
for tool in /usr/bin/time:time /usr/bin/bc:bc /usr/bin/python3:python3; do
    [ -x "${tool%%:*}" ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool##*:}" >/dev/null
done
if [ "$PROFILE" = 1 ] && ! command -v perf >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
mkdir -p "$OUT"
if [ "$BUILD" = 1 ]; then
    log "swift build -c release (bench/copy-client)"
    swift build -c release --package-path "$HERE" --scratch-path "$SCRATCH" >/dev/null
fi
# Same server settings as bench/ingest, plus no autovacuum so that only the COPY's backend and the
# cluster's own background processes use the cluster's CPU while a sample runs.
start_postgres copybench "$PORT" max_wal_size=4GB checkpoint_timeout=30min autovacuum=off
trap 'stop_postgres copybench' EXIT
PGDATA_DIR="$(readlink -f "$STATE/copybench")/pgdata"
POSTMASTER=$(head -1 "$PGDATA_DIR/postmaster.pid")

admin() { PGOPTIONS="-c client_min_messages=warning" psql "$@" -X -q -v ON_ERROR_STOP=1; }
TABLE_DDL="CREATE TABLE patients (patient_id uuid, mrn text, first_name text, last_name text, birth_date date,
  registered_at timestamptz, updated_at timestamptz, active boolean, deceased boolean, weight_kg numeric,
  height_cm numeric, balance numeric, city text, email text, phone text, notes text)"
# A new, empty table; the checkpoint and sync keep the previous sample's writes out of the next one.
fresh_table() { admin "$DB" -c "DROP TABLE IF EXISTS patients" -c "$TABLE_DDL" -c "CHECKPOINT"; sync; }

# Data: the main benchmark's CSV, then the server's own text and binary COPY output of those rows.
admin "postgresql://postgres@127.0.0.1:$PORT/postgres" -tc "SELECT 1 FROM pg_database WHERE datname = 'copybench'" \
    | grep -q 1 || admin "postgresql://postgres@127.0.0.1:$PORT/postgres" -c "CREATE DATABASE copybench"
if [ ! -f "$CSV" ]; then
    log "generating $ROWS rows"
    python3 "$REPO/bench/ingest/generate.py" --rows "$ROWS" --out "$REPO/bench/out"
fi
if [ ! -f "$TXT" ] || [ ! -f "$BINARY" ] || [ "$CSV" -nt "$TXT" ] || [ "$CSV" -nt "$BINARY" ]; then
    log "writing COPY text and binary files of the $ROWS rows"
    fresh_table
    admin "$DB" -c "\\copy patients FROM '$CSV' WITH (FORMAT csv)" \
        -c "\\copy patients TO '$TXT.tmp'" -c "\\copy patients TO '$BINARY.tmp' WITH (FORMAT binary)"
    mv "$TXT.tmp" "$TXT"
    mv "$BINARY.tmp" "$BINARY"
fi

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Busy CPU ticks of the whole machine (user, nice, system, irq, softirq, steal).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# CPU ticks of the cluster: the postmaster, its live children, and its reaped children (backends).
cluster_ticks() {
    local pid total
    total=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$POSTMASTER/stat")
    for pid in $(pgrep -P "$POSTMASTER"); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
# Waits until the last session's backend (a child titled "postgres: user db 127.0.0.1(port) …") has
# exited and been reaped, so that its CPU time is in the postmaster's children's times.
settle() {
    local i
    for i in $(seq 200); do
        pgrep -P "$POSTMASTER" -f '127\.0\.0\.1\(' >/dev/null || return 0
        sleep 0.05
    done
}
# Waits (up to 30 minutes) until the machine is idle: under 15% of one core busy over a second.
wait_quiet() {
    local a b said=0 i
    for i in $(seq 1800); do
        a=$(machine_ticks); sleep 1; b=$(machine_ticks)
        [ $((b - a)) -lt $((TCK * 15 / 100)) ] && return
        [ "$said" = 1 ] || { echo "  (waiting for other load on the machine to stop)" >&2; said=1; }
    done
    echo "  warning: the machine never went quiet; figures may be disturbed" >&2
}

# Sets CMD to the client command of variant $1.
client_cmd() {
    case "$1" in
    psql-csv) CMD=(psql "$DB" -X -q -c "\\copy patients FROM '$CSV' WITH (FORMAT csv)") ;;
    libpq-text) CMD=("$BIN/copy-libpq" "$CONNINFO" patients text "$TXT") ;;
    nio-text) CMD=("$BIN/copy-nio" 127.0.0.1 "$PORT" copybench patients "$TXT") ;;
    libpq-binary) CMD=("$BIN/copy-libpq" "$CONNINFO" patients binary "$BINARY") ;;
    esac
}

# One sample: prints "wall rss_kib client_cpu server_cpu foreign_cpu copy_seconds".
sample() {
    local v=$1 try m0 m1 c0 c1 t0 t1 rss u s rows copy client server foreign
    for try in 1 2 3; do
        fresh_table
        settle
        wait_quiet
        m0=$(machine_ticks); c0=$(cluster_ticks); t0=$(now)
        client_cmd "$v"
        /usr/bin/time -f "%M %U %S" -o "$OUT/time-$v.txt" "${CMD[@]}" >"$OUT/stdout-$v.txt"
        t1=$(now)
        settle
        m1=$(machine_ticks); c1=$(cluster_ticks)
        read -r rss u s <"$OUT/time-$v.txt"
        rows=$(admin "$DB" -Atc "SELECT count(*) FROM patients")
        [ "$rows" = "$ROWS" ] || { echo "$v stored $rows rows, expected $ROWS" >&2; exit 1; }
        copy=$(sed -n 's/.*copy_seconds=\([0-9.]*\).*/\1/p' "$OUT/stdout-$v.txt")
        client=$(echo "$u + $s" | bc -l)
        server=$(echo "($c1 - $c0) / $TCK" | bc -l)
        foreign=$(echo "($m1 - $m0) / $TCK - $client - $server" | bc -l)
        if [ "$(echo "$foreign <= $FOREIGN_LIMIT" | bc -l)" = 1 ] || [ "$try" = 3 ]; then break; fi
        printf '  (%s: %.2f CPU s used by other processes; redoing the sample)\n' "$v" "$foreign" >&2
    done
    echo "$(echo "$t1 - $t0" | bc -l) $rss $client $server $foreign ${copy:--}"
}

# Every client must store the same rows: compare a digest of the table after each one, once.
digest() { admin "$DB" -Atc "SELECT md5(string_agg(p::text, E'\n' ORDER BY mrn)) FROM patients p"; }

log "timing $RUNS runs of each client on $ROWS rows (machine: $(nproc) cores)"
declare -A WALL CPU SRV COPY RSS
FOREIGN=""
for run in $(seq "$RUNS"); do
    line="  run $run:"
    for k in 0 1 2 3; do
        v=${VARIANTS[$(((run - 1 + k) % 4))]}
        sample "$v" >"$OUT/sample.txt"
        read -r wall rss client server foreign copy <"$OUT/sample.txt"
        if [ "$run" = 1 ]; then
            d=$(digest)
            [ -z "${FIRST_DIGEST:-}" ] && FIRST_DIGEST=$d
            [ "$d" = "$FIRST_DIGEST" ] || { echo "$v stored different rows than the first client" >&2; exit 1; }
        fi
        WALL[$v]+="$wall "; CPU[$v]+="$client "; SRV[$v]+="$server "; COPY[$v]+="$copy "; RSS[$v]+="$rss "
        FOREIGN+="$foreign "
        line+=$(printf ' %s %.2fs' "$v" "$wall")
        [ "$(echo "$foreign > $FOREIGN_LIMIT" | bc -l)" = 1 ] && line+=$(printf '(disturbed: %.1f CPU s)' "$foreign")
    done
    echo "$line"
done

med() { printf '%s\n' $1 | median; }
base=$(med "${WALL[psql-csv]}")
log "results: $ROWS rows, median of $RUNS runs each (peak RSS: the largest)"
printf '%-13s %8s %9s %8s %11s %11s %9s %8s\n' client "wall s" "× psql" "COPY s" "client CPU" "server CPU" "peak RSS" "sent MB"
for v in "${VARIANTS[@]}"; do
    case "$v" in psql-csv) file=$CSV ;; libpq-binary) file=$BINARY ;; *) file=$TXT ;; esac
    wall=$(med "${WALL[$v]}")
    copy=$(med "${COPY[$v]}")
    [ "$copy" = "-" ] || copy=$(printf '%.2f' "$copy")
    printf '%-13s %8.2f %8.2fx %8s %10.2fs %10.2fs %6.1f MB %8.1f\n' "$v" "$wall" "$(echo "$wall / $base" | bc -l)" \
        "$copy" "$(med "${CPU[$v]}")" "$(med "${SRV[$v]}")" "$(echo "$(printf '%s\n' ${RSS[$v]} | sort -n | tail -1) / 1024" | bc -l)" \
        "$(echo "$(stat -c %s "$file") / 1048576" | bc -l)"
done
printf 'CPU used by other processes during a sample: median %.2f s, largest %.2f s (limit %s s)\n' \
    "$(med "$FOREIGN")" "$(printf '%s\n' $FOREIGN | sort -g | tail -1)" "$FOREIGN_LIMIT"
echo
echo "wall: process start to exit, connection included. COPY s: the client's own timer, COPY statement to"
echo "its result. client CPU: user+sys of the client process. server CPU: the cluster's CPU during the sample"
echo "(the COPY's backend plus walwriter/checkpointer). sent MB: the COPY payload (the input file's size)."

[ "$PROFILE" = 1 ] || exit 0

# Where the backend's CPU goes: perf attached to the COPY's backend for one text and one binary load.
# Shares are inclusive (a function and everything it calls) of the backend's samples.
log "profiling the server backend of one libpq-text and one libpq-binary load (perf)"
for v in libpq-text libpq-binary; do
    fresh_table
    settle
    wait_quiet
    client_cmd "$v"
    "${CMD[@]}" >/dev/null &
    client=$!
    backend=""
    for i in $(seq 500); do
        backend=$(pgrep -P "$POSTMASTER" -f '127\.0\.0\.1\(' || true)
        [ -n "$backend" ] && break
        sleep 0.01
    done
    rm -f "$OUT/perf-$v.data" "$OUT/perf-$v.data.old"
    perf record -q --call-graph dwarf,16384 -F 1000 -p "$backend" -o "$OUT/perf-$v.data" >/dev/null 2>&1 || true
    wait "$client"
    perf report -i "$OUT/perf-$v.data" --children --sort sym --stdio -g none 2>/dev/null >"$OUT/perf-$v.txt"
    rm -f "$OUT/perf-$v.data" "$OUT/perf-$v.data.old"
done
share() { awk -v f="$2" '$NF == f { print $1; found = 1; exit } END { if (!found) print "-" }' "$OUT/perf-$1.txt"; }
printf '%-20s %-30s %-30s\n' "backend CPU share" "text COPY" "binary COPY"
while read -r what text binary; do
    printf '%-20s %7s %-22s %7s %-22s\n' "$what" "$(share libpq-text "$text")" "$text" "$(share libpq-binary "$binary")" "$binary"
done <<'EOF'
parse+convert NextCopyFrom NextCopyFrom
split-lines/fields NextCopyFromRawFields -
type-conversion InputFunctionCall ReceiveFunctionCall
uuid uuid_in uuid_recv
timestamptz timestamptz_in timestamptz_recv
date date_in date_recv
numeric numeric_in numeric_recv
boolean boolin boolrecv
text textin textrecv
heap-insert heap_multi_insert heap_multi_insert
WAL-records XLogInsert XLogInsert
socket-read secure_read secure_read
EOF
