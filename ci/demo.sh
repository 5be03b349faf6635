#!/usr/bin/env bash
# The starpipe demo, end to end on embedded defaults:
#   private Postgres 15 on 127.0.0.1:${STARPIPE_DEMO_PORT:-54320} (cluster in .starpipe/demo),
#   a local-directory bucket (.starpipe/demo-bucket), the extension's own queue, and the Synthea sample.
# It loads the sample into a client database (synthea_client), extracts it into the bucket, runs the
# worker into the pipeline database (starpipe_demo), and prints row counts per stage and job statuses.
#
#   ci/demo.sh         run the demo from scratch (a second run starts over)
#   ci/demo.sh again   extract again on unchanged data: every new job is a DUPLICATE, production unchanged
#   ci/demo.sh s3      the same demo with an S3 bucket and its events through SQS, both on a private
#                      moto_server on 127.0.0.1:${STARPIPE_DEMO_MOTO_PORT:-55320} (moto[server] in a venv)
#   ci/demo.sh stop    stop the demo's Postgres (and moto_server)
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

PORT=${STARPIPE_DEMO_PORT:-54320}
CLIENT_URL="postgresql://postgres@127.0.0.1:$PORT/synthea_client"
PIPELINE_URL="postgresql://postgres@127.0.0.1:$PORT/starpipe_demo"
BUCKET_DIR="$STATE/demo-bucket"
STARPIPE="$REPO/.build/debug/starpipe"
MOTO_PORT=${STARPIPE_DEMO_MOTO_PORT:-55320}
BUCKET_URL="file://$BUCKET_DIR"
WORKER_FLAGS=()

psql_admin() { psql "postgresql://postgres@127.0.0.1:$PORT/postgres" -q -v ON_ERROR_STOP=1 "$@"; }

extract_and_work() {
    log "starpipe extract (client database → bucket)"
    "$STARPIPE" extract --source "$CLIENT_URL" --client synthea_demo --bucket "$BUCKET_URL" --log-level warning
    log "starpipe worker --until-idle (bucket → raw → staging → production)"
    "$STARPIPE" worker --database "$PIPELINE_URL" --bucket "$BUCKET_URL" --until-idle --log-level warning \
        ${WORKER_FLAGS[@]+"${WORKER_FLAGS[@]}"}
}

# An S3 bucket (starpipe-demo, prefix landing/) whose manifests notify an SQS queue with a dead-letter queue,
# on a fresh moto_server; set up with the boto3 that comes with moto.
setup_s3() {
    stop_moto demo-moto
    start_moto demo-moto "$MOTO_PORT"
    export AWS_ACCESS_KEY_ID=starpipe-demo AWS_SECRET_ACCESS_KEY=starpipe-demo-secret AWS_REGION=us-east-1 \
        AWS_DEFAULT_REGION=us-east-1
    "$(dirname "$MOTO_SERVER")/python" - "http://127.0.0.1:$MOTO_PORT" <<'PY'
import json, sys, boto3
endpoint = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=endpoint)
sqs = boto3.client("sqs", endpoint_url=endpoint)
s3.create_bucket(Bucket="starpipe-demo")
dlq = sqs.create_queue(QueueName="starpipe-events-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue = sqs.create_queue(QueueName="starpipe-events", Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
s3.put_bucket_notification_configuration(Bucket="starpipe-demo", NotificationConfiguration={"QueueConfigurations": [{
    "Id": "starpipe-manifests", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "landing/"}, {"Name": "suffix", "Value": "manifest.json"}]}}}]})
PY
    BUCKET_URL="s3://starpipe-demo/landing?region=us-east-1&endpoint=http://127.0.0.1:$MOTO_PORT&part_size=5242880"
    WORKER_FLAGS=(--events "sqs://127.0.0.1:$MOTO_PORT/123456789012/starpipe-events?region=us-east-1&scheme=http")
    log "bucket $BUCKET_URL, events from queue starpipe-events (dead letters: starpipe-events-dlq)"
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
    stop_moto demo-moto
    log "demo Postgres (and moto_server) stopped"
    ;;
again)
    [ -x "$STARPIPE" ] || { echo "run ci/demo.sh first" >&2; exit 1; }
    start_postgres demo "$PORT"
    extract_and_work
    report
    ;;
run|s3)
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
    if [ "${1:-run}" = s3 ]; then
        setup_s3
    else
        rm -rf "$BUCKET_DIR"
        mkdir -p "$BUCKET_DIR"
    fi
    extract_and_work
    report
    ;;
*)
    echo "usage: ci/demo.sh [run|again|s3|stop]" >&2
    exit 2
    ;;
esac
