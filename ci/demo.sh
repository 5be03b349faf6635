#!/usr/bin/env bash
# The starpipe demo, end to end on embedded defaults:
#   private Postgres 15 on 127.0.0.1:${STARPIPE_DEMO_PORT:-54320} (cluster in .starpipe/demo),
#   a local-directory bucket (.starpipe/demo-bucket), the extension's own queue, and the Synthea sample.
# It loads the sample into a client database (synthea_client), extracts it into the bucket, runs the
# worker into the pipeline database (starpipe_demo), and prints row counts per stage and job statuses.
#
#   ci/demo.sh         run the demo from scratch (a second run starts over)
#   ci/demo.sh again   extract again on unchanged data: every new job is a DUPLICATE, production unchanged
#   ci/demo.sh stop    stop the demo's Postgres
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

PORT=${STARPIPE_DEMO_PORT:-54320}
CLIENT_URL="postgresql://postgres@127.0.0.1:$PORT/synthea_client"
PIPELINE_URL="postgresql://postgres@127.0.0.1:$PORT/starpipe_demo"
BUCKET_DIR="$STATE/demo-bucket"
STARPIPE="$REPO/.build/debug/starpipe"

psql_admin() { psql "postgresql://postgres@127.0.0.1:$PORT/postgres" -q -v ON_ERROR_STOP=1 "$@"; }

extract_and_work() {
    log "starpipe extract (client database → bucket)"
    "$STARPIPE" extract --source "$CLIENT_URL" --client synthea_demo --bucket "file://$BUCKET_DIR" --log-level warning
    log "starpipe worker --until-idle (bucket → raw → staging → production)"
    "$STARPIPE" worker --database "$PIPELINE_URL" --bucket "file://$BUCKET_DIR" --until-idle --log-level warning
}

report() {
    log "row counts per stage (latest non-duplicate job of each table)"
    local values="" table count
    for table in $(psql "$CLIENT_URL" -Atc "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'public' AND relkind = 'r' ORDER BY 1"); do
        count=$(psql "$CLIENT_URL" -Atc "SELECT count(*) FROM public.\"$table\"")
        values="$values${values:+, }('$table', $count)"
    done
    psql "$PIPELINE_URL" -q -v ON_ERROR_STOP=1 <<SQL
WITH source(table_name, source_rows) AS (VALUES $values),
latest AS (
    SELECT DISTINCT ON (table_name) * FROM starpipe.job WHERE status <> 'DUPLICATE' ORDER BY table_name, job_id DESC),
mapping AS (
    SELECT t.key AS table_name, m.config->>'target_schema' AS target_schema, t.value->>'target' AS target
      FROM (SELECT config FROM starpipe.mapping WHERE client = 'synthea_demo' ORDER BY version DESC LIMIT 1) m,
           jsonb_each(m.config->'tables') t)
SELECT s.table_name AS "table", s.source_rows AS source, l.rows_raw AS raw, l.rows_staged AS staged,
       CASE WHEN mp.target IS NULL THEN NULL ELSE
           (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', mp.target_schema, mp.target), false, true, '')))[1]::text::bigint
       END AS production,
       coalesce(mp.target_schema || '.' || mp.target, '(raw only)') AS target, l.status
  FROM source s LEFT JOIN latest l USING (table_name) LEFT JOIN mapping mp USING (table_name)
 ORDER BY mp.target IS NULL, s.table_name;
SQL
    log "jobs by status"
    psql "$PIPELINE_URL" -c "SELECT status, count(*) AS jobs FROM starpipe.job GROUP BY status ORDER BY status"
    log "explore: psql $PIPELINE_URL   (stop with: ci/demo.sh stop)"
}

case "${1:-run}" in
stop)
    stop_postgres demo
    log "demo Postgres stopped"
    ;;
again)
    [ -x "$STARPIPE" ] || { echo "run ci/demo.sh first" >&2; exit 1; }
    start_postgres demo "$PORT"
    extract_and_work
    report
    ;;
run)
    install_deps
    install_extension
    log "swift build"
    swift build --product starpipe
    start_postgres demo "$PORT"
    log "creating databases synthea_client (the practice) and starpipe_demo (our pipeline)"
    psql_admin -c "DROP DATABASE IF EXISTS synthea_client WITH (FORCE)" -c "DROP DATABASE IF EXISTS starpipe_demo WITH (FORCE)" \
               -c "CREATE DATABASE synthea_client" -c "CREATE DATABASE starpipe_demo"
    log "loading the Synthea sample into synthea_client"
    examples/synthea/load_client.sh "$CLIENT_URL"
    log "installing the extension and the production schema into starpipe_demo"
    psql "$PIPELINE_URL" -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION starpipe" -f examples/synthea/production.sql
    "$STARPIPE" mapping apply examples/synthea/mapping.yaml --database "$PIPELINE_URL"
    rm -rf "$BUCKET_DIR"
    mkdir -p "$BUCKET_DIR"
    extract_and_work
    report
    ;;
*)
    echo "usage: ci/demo.sh [run|again|stop]" >&2
    exit 2
    ;;
esac
