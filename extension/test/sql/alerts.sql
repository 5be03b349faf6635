-- Issue 14: webhook alerts from the ledger: each FAILED or DEAD transition and drift BLOCK is queued once, DLQ
-- build-up once an hour per client; claim_alerts hands each to one caller; settle_alert records the outcome.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme, raw_beta CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.visits (visit_id integer PRIMARY KEY, patient text);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
    "target": "visits", "conflict_key": ["visit_id"], "columns": {"visit_id": {"from": "ID"}, "patient": {"from": "PATIENT"}}}}}') AS mapping_version;
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "PATIENT", "type": "text"}]'::jsonb AS c;

-- Nothing is due on a healthy ledger.
SELECT pg_temp.ingest('acme', 'visits', '2026-11-01', 'r1', (SELECT c FROM cols), '[[1, "CANARY-alerts-x"]]');
SELECT starpipe.queue_alerts() AS queued;

-- A FAILED job, a drift BLOCK, and two DEAD jobs of client beta (max_attempts 1: the first nack dead-letters).
SELECT pg_temp.register('acme', 'notes', '2026-11-01', 'r1', '[{"name": "ID", "type": "integer"}]', '[[1]]') AS failed \gset
SELECT starpipe.fail(:failed, pg_temp.hold(:failed), 'data file is truncated: byte count mismatch');
SELECT pg_temp.register('acme', 'visits', '2026-11-02', 'r1', '[{"name": "ID", "type": "integer"}, {"name": "PATIENT_NAME", "type": "text"}]',
                        '[[2, "p2"]]') AS drifted \gset
SELECT pg_temp.load(:drifted) > 0 AS loaded, pg_temp.stages(:drifted) AS status;
SELECT starpipe.set_setting('max_attempts', '1');
SELECT pg_temp.register('beta', 'a', '2026-11-01', 'r1', '[{"name": "ID", "type": "integer"}]', '[[1]]') AS dead1 \gset
SELECT starpipe.nack(:dead1, pg_temp.hold(:dead1), 'bucket unreachable');
SELECT pg_temp.register('beta', 'b', '2026-11-01', 'r1', '[{"name": "ID", "type": "integer"}]', '[[1]]') AS dead2 \gset
SELECT starpipe.nack(:dead2, pg_temp.hold(:dead2), 'bucket unreachable');

-- Queued once: a second call finds them queued already (the same keys).
SELECT starpipe.queue_alerts(p_dlq_depth => 2) AS queued;
SELECT starpipe.queue_alerts(p_dlq_depth => 2) AS queued_again;
SELECT kind, job_id, client, table_name, status, stage, reason, alert_key ~ '^(job:[0-9]+:[0-9]+|dlq:beta:[0-9]{10})$' AS key_shape
  FROM starpipe.alert ORDER BY kind, job_id;
-- A transition older than the window is history: nothing more with a zero-length window.
SELECT starpipe.queue_alerts(p_dlq_depth => 2, p_window => '0 seconds') AS queued_in_no_window;

-- Claims hand each alert to one caller; a held alert is skipped by the next claim until its hold ends.
SELECT count(*) AS first_claim FROM starpipe.claim_alerts(3);
SELECT count(*) AS second_claim FROM starpipe.claim_alerts(10);
SELECT count(*) AS third_claim FROM starpipe.claim_alerts(10);
SELECT starpipe.settle_alert(alert_key) FROM starpipe.alert WHERE kind = 'job_failed';
SELECT starpipe.settle_alert(alert_key, 'HTTP 503') FROM starpipe.alert WHERE kind = 'drift_blocked';
SELECT kind, sent_at IS NOT NULL AS sent, last_error, attempts FROM starpipe.alert ORDER BY kind, job_id;
-- A failed post is offered again once its hold ends (here: held for no time); a sent one never.
UPDATE starpipe.alert SET held_until = now() - interval '1 second' WHERE kind IN ('job_failed', 'drift_blocked');
SELECT kind, attempts FROM starpipe.claim_alerts(10);
-- Settling a sent alert again changes nothing; an unknown key is named.
SELECT starpipe.settle_alert(alert_key, 'late error') FROM starpipe.alert WHERE kind = 'job_failed';
SELECT sent_at IS NOT NULL AS still_sent, last_error FROM starpipe.alert WHERE kind = 'job_failed';
SELECT starpipe.settle_alert('job:0:0');
-- After 10 holds an alert is no longer offered.
UPDATE starpipe.alert SET attempts = 10, held_until = NULL WHERE kind = 'drift_blocked';
SELECT count(*) AS offered FROM starpipe.claim_alerts(10) WHERE kind = 'drift_blocked';

-- Never a value: the canary is in production, not in any alert.
SELECT count(*) AS canary_in_production FROM production.visits WHERE patient LIKE 'CANARY%';
SELECT bool_or(a::text LIKE '%CANARY%') AS canary_in_alerts FROM starpipe.alert a;
