#!/usr/bin/env bash
# Extract benchmark: `starpipe extract` of an N-row dim_patient table to its JSON data file, as a ratio to each source's
# own JSON export of the same table in the same run, plus the extractor's peak RSS. Not a test: it prints figures.
#   Postgres: psql's `\copy (SELECT row_to_json(t) FROM dim_patient t) TO` a file (and a plain `\copy dim_patient TO`)
#   MariaDB:  `mariadb -N -e "SELECT JSON_OBJECT(…) FROM dim_patient"` into a file
#   SQLite:   `sqlite3 -json FILE "SELECT * FROM dim_patient"` into a file
#
#   bench/extract/run.sh [--rows N] [--runs K] [--no-build]
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
    *) echo "usage: bench/extract/run.sh [--rows N] [--runs K] [--no-build]" >&2; exit 2 ;;
    esac
done

PG_PORT=${STARPIPE_BENCH_PORT:-54351}
MY_PORT=${STARPIPE_BENCH_MARIADB_PORT:-33051}
OUT="$REPO/bench/out/extract"
BIN="$REPO/.build/release/starpipe"
PG="postgresql://postgres@127.0.0.1:$PG_PORT/bench_extract"
MY=(mariadb --no-defaults -h 127.0.0.1 -P "$MY_PORT" -u root)
LITE="$OUT/dim_patient.db"
export PGOPTIONS="-c client_min_messages=warning"

install_deps
for tool in /usr/bin/time:time /usr/bin/bc:bc; do
    [ -x "${tool%%:*}" ] || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool##*:}" >/dev/null
done
if [ "$BUILD" = 1 ]; then
    log "swift build -c release"
    swift build -c release --product starpipe >/dev/null
fi
mkdir -p "$OUT"
start_postgres bench-extract "$PG_PORT"
start_mariadb mariadb-bench "$MY_PORT"
trap 'stop_postgres bench-extract; stop_mariadb mariadb-bench' EXIT

log "loading $ROWS rows into Postgres, MariaDB and SQLite"
psql "postgresql://postgres@127.0.0.1:$PG_PORT/postgres" -q -c "DROP DATABASE IF EXISTS bench_extract" -c "CREATE DATABASE bench_extract"
psql "$PG" -q <<SQL
CREATE TABLE dim_patient (id bigint PRIMARY KEY, mrn text NOT NULL, first_name text, last_name text, birth_date date,
  registered_at timestamp(6), active boolean, weight_kg numeric(6,2), city text, email text, visits integer, notes text);
INSERT INTO dim_patient
SELECT g, 'MRN' || lpad(g::text, 9, '0'), (ARRAY['Ana','José','Zoë','Łukasz','Chloé','O''Neil'])[1 + g % 6],
       (ARRAY['Smith','García','Müller','Dubois','Nakamura'])[1 + g % 5], date '1930-01-01' + (g % 30000),
       timestamp '2020-01-01' + g * interval '1 second' + (g % 1000000) * interval '1 microsecond', g % 3 <> 0,
       40 + (g % 8000) / 100.0, (ARRAY['Boston','São Paulo','Zürich','Kraków'])[1 + g % 4], 'p' || g || '@example.org',
       g % 97, 'note ' || md5(g::text)
  FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE dim_patient;
SQL
psql "$PG" -q -c "\\copy (SELECT id, mrn, first_name, last_name, birth_date, registered_at, active::int, weight_kg, city, email, visits, notes FROM dim_patient ORDER BY id) TO '$OUT/dim_patient.tsv'"
"${MY[@]}" -e "DROP DATABASE IF EXISTS bench_extract; CREATE DATABASE bench_extract CHARACTER SET utf8mb4"
"${MY[@]}" --local-infile=1 bench_extract <<SQL
SET GLOBAL local_infile = 1;
CREATE TABLE dim_patient (id BIGINT PRIMARY KEY, mrn VARCHAR(20) NOT NULL, first_name VARCHAR(40), last_name VARCHAR(40),
  birth_date DATE, registered_at DATETIME(6), active BOOLEAN, weight_kg DECIMAL(6,2), city VARCHAR(40), email VARCHAR(80),
  visits INT, notes TEXT) ENGINE=InnoDB;
LOAD DATA LOCAL INFILE '$OUT/dim_patient.tsv' INTO TABLE dim_patient CHARACTER SET utf8mb4;
ANALYZE TABLE dim_patient;
SQL
rm -f "$LITE"
sqlite3 "$LITE" <<SQL
CREATE TABLE dim_patient (id INTEGER PRIMARY KEY, mrn TEXT NOT NULL, first_name TEXT, last_name TEXT, birth_date DATE,
  registered_at DATETIME, active BOOLEAN, weight_kg DECIMAL(6,2), city TEXT, email TEXT, visits INTEGER, notes TEXT);
.mode tabs
.import $OUT/dim_patient.tsv dim_patient
SQL

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Wall seconds of a command (its output discarded).
timed() { local start end; start=$(now); "$@" >/dev/null; end=$(now); echo "$end - $start" | bc -l; }
# "wall peak-RSS-KiB" of one extraction.
extract_once() {
    rm -rf "$OUT/bucket"
    /usr/bin/time -f "%e %M" -o "$OUT/time.txt" "$BIN" extract --source "$1" --client bench --tables dim_patient \
        --bucket "file://$OUT/bucket" --run-id r --log-level error >/dev/null 2>&1
    cat "$OUT/time.txt"
}
MY_COLUMNS="'id', id, 'mrn', mrn, 'first_name', first_name, 'last_name', last_name, 'birth_date', birth_date,
  'registered_at', registered_at, 'active', active, 'weight_kg', weight_kg, 'city', city, 'email', email, 'visits', visits,
  'notes', notes"

report() {
    local name=$1 native=$2; shift 2
    local natives=() extracts=() rss=() run wall peak
    for run in $(seq "$RUNS"); do
        natives+=("$(timed "$@")")
        read -r wall peak < <(extract_once "$SOURCE")
        extracts+=("$wall"); rss+=("$peak")
        printf '  %s run %d: %s %.2fs, starpipe extract %.2fs, peak RSS %d KiB\n' "$name" "$run" "$native" "${natives[-1]}" "$wall" "$peak"
    done
    local n e
    n=$(printf '%s\n' "${natives[@]}" | median); e=$(printf '%s\n' "${extracts[@]}" | median)
    printf '%-9s %s %.2f s, starpipe extract %.2f s: %.2fx; peak RSS %.1f MB\n' "$name:" "$native" "$n" "$e" \
        "$(echo "$e / $n" | bc -l)" "$(echo "$(printf '%s\n' "${rss[@]}" | sort -n | tail -1) / 1024" | bc -l)" >>"$OUT/results.txt"
}

: >"$OUT/results.txt"
log "timing $RUNS runs of each side on $ROWS rows"
plain=()
for run in $(seq "$RUNS"); do plain+=("$(timed psql "$PG" -q -c "\\copy dim_patient TO '$OUT/plain.txt'")"); done
printf 'Postgres plain \\copy dim_patient TO a file: %.2f s\n' "$(printf '%s\n' "${plain[@]}" | median)" >>"$OUT/results.txt"
SOURCE=$PG report postgres "psql \\copy (row_to_json)" psql "$PG" -q -c "\\copy (SELECT row_to_json(t) FROM dim_patient t) TO '$OUT/native.json'"
SOURCE="mysql://root@127.0.0.1:$MY_PORT/bench_extract" report mariadb "mariadb JSON_OBJECT" \
    sh -c "$(printf '%q ' "${MY[@]}") -N bench_extract -e \"SELECT JSON_OBJECT($MY_COLUMNS) FROM dim_patient\" >'$OUT/native.json'"
SOURCE="sqlite://$LITE" report sqlite "sqlite3 -json" sh -c "sqlite3 -json '$LITE' 'SELECT * FROM dim_patient' >'$OUT/native.json'"
log "results ($ROWS rows, median of $RUNS)"
cat "$OUT/results.txt"
