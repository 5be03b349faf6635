-- Issue 14: starpipe.dashboard, the read-only web page's data, after a good job with a reject, a job failed on
-- purpose, a job blocked by drift and a dead-lettered one. A canary planted in the rows never appears in it.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme, raw_beta CASCADE;
DROP ROLE IF EXISTS dashboard_login;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.visits (visit_id integer PRIMARY KEY, patient text NOT NULL, cost numeric);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
    "target": "visits", "conflict_key": ["visit_id"], "rejects": {"max_rows": 5},
    "columns": {"visit_id": {"from": "ID"}, "patient": {"from": "PATIENT"}, "cost": {"from": "COST"}}}}}') AS mapping_version;
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "PATIENT", "type": "text"}, {"name": "COST", "type": "text"}]'::jsonb AS c;

-- An empty ledger: empty lists, every status counted as zero, and every hour of the window with no rows.
SELECT d->'grid' AS grid, d->'jobs' AS jobs, d->'dlq' AS dlq, d->'drift' AS drift, d->'rejects' AS rejects,
       d->'statuses' AS statuses, jsonb_array_length(d->'throughput') AS hours,
       (SELECT sum((h->>'rows')::bigint) FROM jsonb_array_elements(d->'throughput') h) AS rows
  FROM starpipe.dashboard() d;

-- 1. A good job: three rows promoted, one rejected (a cost that is not a number), the canary in a name.
SELECT pg_temp.ingest('acme', 'visits', '2026-11-01', 'r1', (SELECT c FROM cols),
    '[[1, "CANARY-dash-7b2c", "10"], [2, "p2", "x"], [3, "p3", "30"], [4, "p4", "40"]]') AS good_status;
SELECT max(job_id) AS good_job FROM starpipe.job \gset
-- 2. A job failed on purpose, as the worker fails a truncated data file.
SELECT pg_temp.register('acme', 'notes', '2026-11-01', 'r1', '[{"name": "ID", "type": "integer"}]', '[[1], [2]]') AS failed_job \gset
SELECT starpipe.fail(:failed_job, pg_temp.hold(:failed_job), 'data file is truncated: 1 of 2 rows', '{"rows_read": 1}');
-- 3. Drift that touches a mapped column (PATIENT renamed) blocks the next visits snapshot before transform.
SELECT pg_temp.register('acme', 'visits', '2026-11-02', 'r1',
    '[{"name": "ID", "type": "integer"}, {"name": "PATIENT_NAME", "type": "text"}, {"name": "COST", "type": "text"}]',
    '[[5, "CANARY-dash-7b2c", "50"]]') AS drift_job \gset
SELECT pg_temp.load(:drift_job) > 0 AS loaded, pg_temp.stages(:drift_job) AS status;
-- 4. A job dead-lettered: its only allowed attempt nacked.
SELECT starpipe.set_setting('max_attempts', '1');
SELECT pg_temp.register('beta', 'labs', '2026-11-01', 'r1', '[{"name": "ID", "type": "integer"}]', '[[1]]') AS dead_job \gset
SELECT starpipe.nack(:dead_job, pg_temp.hold(:dead_job), 'bucket read timed out');
-- 5. A job waiting in the queue.
SELECT pg_temp.register('beta', 'meds', '2026-11-01', 'r1', '[{"name": "ID", "type": "integer"}]', '[[1]]') AS queued_job \gset

-- The grid: the last job of each client table, with its status, stage, error and an age; visits shows the
-- drift-blocked snapshot (the newest), not the promoted one, and counts both.
SELECT g->>'client' AS client, g->>'table' AS "table", (g->>'job_id')::bigint AS job_id, g->>'status' AS status,
       g->>'stage' AS stage, g->>'error' AS error, (g->>'age_seconds')::float8 >= 0 AS aged, g->>'jobs' AS jobs
  FROM starpipe.dashboard() d, jsonb_array_elements(d->'grid') g;
SELECT d->'statuses' AS statuses FROM starpipe.dashboard() d;

-- Timelines, newest job first: each event's status and stage with its span; only an unfinished job's last is open.
SELECT (j->>'job_id')::bigint AS job_id, j->>'status' AS status,
       string_agg(e->>'event' || ':' || (e->>'status') || '/' || (e->>'stage'), ' ' ORDER BY n) AS timeline,
       bool_and((e->>'seconds')::float8 >= 0) AS timed,
       string_agg(CASE WHEN (e->>'open')::boolean THEN e->>'event' END, ',') AS open
  FROM starpipe.dashboard() d, jsonb_array_elements(d->'jobs') j, jsonb_array_elements(j->'events') WITH ORDINALITY x(e, n)
 GROUP BY 1, 2 ORDER BY 1 DESC;
SELECT jsonb_array_length(d->'jobs') AS recent, (SELECT array_agg((j->>'job_id')::bigint) FROM jsonb_array_elements(d->'jobs') j) AS ids
  FROM starpipe.dashboard(24, 2) d;

-- The DLQ, drift awaiting review with its diff, and rejects by rule.
SELECT (q->>'job_id')::bigint AS job_id, q->>'client' AS client, q->>'table' AS "table", q->>'stage' AS stage,
       q->>'attempts' AS attempts, q->>'error' AS error, q->>'died_at' IS NOT NULL AS died
  FROM starpipe.dashboard() d, jsonb_array_elements(d->'dlq') q;
SELECT (x->>'job_id')::bigint AS job_id, x->>'table' AS "table", x->>'schema_version' AS schema_version, x->>'error' AS error,
       x->'diff'->'added' AS added, x->'diff'->'removed' AS removed, x->>'blocked_at' IS NOT NULL AS blocked
  FROM starpipe.dashboard() d, jsonb_array_elements(d->'drift') x;
SELECT r->>'client' AS client, r->>'table' AS "table", r->>'rule' AS rule, r->>'target_column' AS target_column,
       r->>'sqlstate' AS sqlstate, r->>'rows' AS rows, r->>'unresolved' AS unresolved, r->>'jobs' AS jobs
  FROM starpipe.dashboard() d, jsonb_array_elements(d->'rejects') r;

-- Throughput: every hour of the window, oldest first, the last one the current hour; the promoted rows are in it.
SELECT jsonb_array_length(d->'throughput') AS hours,
       (d->'throughput'->-1->>'hour')::timestamptz = date_trunc('hour', now()) AS ends_now,
       (d->'throughput'->0->>'hour')::timestamptz = date_trunc('hour', now()) - interval '5 hours' AS starts_five_hours_back,
       (SELECT sum((h->>'rows')::bigint) FROM jsonb_array_elements(d->'throughput') h) AS rows,
       (SELECT sum((h->>'jobs')::bigint) FROM jsonb_array_elements(d->'throughput') h) AS jobs
  FROM starpipe.dashboard(6) d;
SELECT rows_inserted + rows_updated AS promoted FROM starpipe.job WHERE job_id = :good_job;
-- A promotion older than the window is not counted in it.
UPDATE starpipe.promotion SET at = now() - interval '3 hours' WHERE job_id = :good_job;
SELECT (SELECT sum((h->>'rows')::bigint) FROM jsonb_array_elements(d->'throughput') h) AS rows_in_two_hours
  FROM starpipe.dashboard(2) d;
SELECT (SELECT sum((h->>'rows')::bigint) FROM jsonb_array_elements(d->'throughput') h) AS rows_in_four_hours
  FROM starpipe.dashboard(4) d;
SELECT starpipe.dashboard(0);
SELECT starpipe.dashboard(24, 0);

-- Never a value: the canary is in raw and production but nowhere in the dashboard.
SELECT count(*) AS canary_in_production FROM production.visits WHERE patient LIKE 'CANARY%';
SELECT starpipe.dashboard()::text LIKE '%CANARY%' AS canary_in_dashboard;

-- Privileges: the worker and admin roles may read it, PUBLIC may not.
CREATE ROLE dashboard_login LOGIN;
SET ROLE dashboard_login;
SELECT starpipe.dashboard();
RESET ROLE;
GRANT starpipe_worker TO dashboard_login;
SET ROLE dashboard_login;
SELECT jsonb_array_length(starpipe.dashboard()->'grid') AS grid_cells;
RESET ROLE;
DROP ROLE dashboard_login;
SELECT starpipe.set_setting('max_attempts', NULL);
