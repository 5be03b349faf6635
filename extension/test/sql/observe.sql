-- Issue 14: starpipe.trace (one job through every stage) and starpipe.metrics (the ledger's gauges), from a good
-- job, a job failed on purpose and a job blocked by drift. Nothing either returns holds a row value: a canary
-- planted in the rows never appears.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
DROP ROLE IF EXISTS observe_login;
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

-- 1. A good job: four rows, one duplicate key, one rejected (a cost that is not a number), the canary in a name.
SELECT pg_temp.ingest('acme', 'visits', '2026-11-01', 'r1', (SELECT c FROM cols),
    '[[1, "CANARY-obs-5e1f", "10"], [2, "p2", "x"], [3, "p3", "30"], [3, "p3b", "31"]]');
SELECT t->>'status' AS status, t->>'stage' AS stage, t->'rows' AS rows FROM starpipe.trace(1) t;
SELECT t->'bucket' AS bucket, t->'manifest'->>'row_count' AS manifest_rows, t->'schema'->>'version' AS schema_version,
       (t->'schema'->>'drift')::boolean AS drift, t->'mapping'->>'version' AS mapping_version, t->'mapping'->>'target' AS target
  FROM starpipe.trace(1) t;
SELECT r->>'rule' AS rule, r->>'target_column' AS target_column, r->>'rows' AS rows, r->>'first_source_row' AS first_source_row
  FROM starpipe.trace(1) t, jsonb_array_elements(t->'rejects') r;
SELECT t->'promotion'->>'inserted' AS inserted, t->'promotion'->>'updated' AS updated, t->'promotion'->>'conflicts' AS conflicts,
       t->'promotion'->>'mapping_version' AS mapping_version, (t->'promotion'->>'manual')::boolean AS manual
  FROM starpipe.trace(1) t;
-- Every event in order, each with a span (a finished job has none open) that adds up to the time per status and stage.
SELECT e->>'event' AS event, e->>'to_status' AS to_status, e->>'stage' AS stage, (e->>'seconds')::float8 >= 0 AS timed,
       (e->>'open')::boolean AS open
  FROM starpipe.trace(1) t, jsonb_array_elements(t->'events') e;
SELECT s->>'status' AS status, s->>'stage' AS stage, (s->>'seconds')::float8 >= 0 AS timed
  FROM starpipe.trace(1) t, jsonb_array_elements(t->'time_in_stage') s;
SELECT abs((SELECT sum((s->>'seconds')::float8) FROM starpipe.trace(1) t, jsonb_array_elements(t->'time_in_stage') s)
           - (SELECT extract(epoch FROM max(at) - min(at)) FROM starpipe.job_event WHERE job_id = 1)) < 0.001 AS spans_add_up,
       abs((SELECT sum((e->>'seconds')::float8) FROM starpipe.trace(1) t, jsonb_array_elements(t->'events') e)
           - (SELECT (t->>'elapsed_seconds')::float8 FROM starpipe.trace(1) t)) < 0.001 AS elapsed_is_their_sum;

-- 2. A job failed on purpose (as the worker fails a truncated upload): where it stopped and why.
SELECT pg_temp.register('acme', 'notes', '2026-11-01', 'r1', '[{"name": "ID", "type": "integer"}]', '[[1], [2]]') AS failed_job \gset
SELECT starpipe.fail(:failed_job, pg_temp.hold(:failed_job), 'data file is truncated: 1 of 2 rows', '{"rows_read": 1}');
SELECT t->>'status' AS status, t->>'stage' AS stage, t->>'error' AS error, t->'error_detail' AS detail, t->>'attempts' AS attempts,
       t->'promotion' AS promotion, t->'schema' IS NOT NULL AS has_schema
  FROM starpipe.trace(:failed_job) t;
SELECT e->>'event' AS event, e->>'from_status' AS from_status, e->>'to_status' AS to_status, e->'detail'->>'error' AS error
  FROM starpipe.trace(:failed_job) t, jsonb_array_elements(t->'events') e;

-- 3. Drift that touches a mapped column (PATIENT renamed) blocks the next snapshot before transform: the diff is in
-- the trace, and the blocked job's span stays open.
SELECT pg_temp.register('acme', 'visits', '2026-11-02', 'r1',
    '[{"name": "ID", "type": "integer"}, {"name": "PATIENT_NAME", "type": "text"}, {"name": "COST", "type": "text"}]',
    '[[4, "p4", "40"]]') AS drift_job \gset
SELECT pg_temp.load(:drift_job) > 0 AS loaded, pg_temp.stages(:drift_job) AS status;
SELECT t->>'status' AS status, t->'schema'->>'version' AS schema_version, (t->'schema'->>'drift')::boolean AS drift,
       (t->'schema'->>'new_with_this_job')::boolean AS new_with_this_job,
       t->'schema'->'diff'->'added' AS added, t->'schema'->'diff'->'removed' AS removed,
       t->'schema'->'diff'->'rename_candidates' AS rename_candidates
  FROM starpipe.trace(:drift_job) t;
SELECT s->>'status' AS status, s->>'stage' AS stage, (s->>'open')::boolean AS open
  FROM starpipe.trace(:drift_job) t, jsonb_array_elements(t->'time_in_stage') s;

-- 4. The ledger's gauges: every status per client table (zeros too), rows by stage, depths, drift, last promotion.
SELECT name, labels->>'client' AS client, labels->>'table' AS "table", labels->>'status' AS status, value
  FROM starpipe.metrics() WHERE name = 'starpipe_jobs' AND value > 0 ORDER BY 2, 3, 4;
SELECT labels->>'table' AS "table", count(*) AS statuses FROM starpipe.metrics() WHERE name = 'starpipe_jobs' GROUP BY 1 ORDER BY 1;
SELECT labels->>'table' AS "table", labels->>'stage' AS stage, value
  FROM starpipe.metrics() WHERE name = 'starpipe_rows' ORDER BY 1, 2;
SELECT name, labels->>'table' AS "table", value FROM starpipe.metrics()
 WHERE name IN ('starpipe_queue_depth', 'starpipe_dlq_depth', 'starpipe_retries_total', 'starpipe_drift_events_total',
                'starpipe_drift_awaiting_review')
 ORDER BY 1, 2;
SELECT name, labels, value >= 0 AS sane FROM starpipe.metrics()
 WHERE name IN ('starpipe_oldest_claimable_age_seconds', 'starpipe_last_promotion_timestamp_seconds') ORDER BY 1;
SELECT abs((SELECT value FROM starpipe.metrics() WHERE name = 'starpipe_last_promotion_timestamp_seconds')
           - (SELECT extract(epoch FROM at) FROM starpipe.promotion WHERE job_id = 1)) < 0.001 AS last_promotion_is_the_audit;
-- Which job last wrote each client table, and how many rows: the audit's newest promotion, as a job id to trace.
SELECT m.name, m.labels, m.value, m.value = (SELECT CASE m.name WHEN 'starpipe_last_promotion_job_id' THEN p.job_id
                                                                ELSE p.inserted + p.updated END
                                               FROM starpipe.promotion p ORDER BY p.at DESC LIMIT 1) AS is_the_audit
  FROM starpipe.metrics() m WHERE m.name IN ('starpipe_last_promotion_job_id', 'starpipe_last_promotion_rows') ORDER BY 1;
-- A claimable job and a held one: the oldest claimable age and the stage age of the held job.
SELECT pg_temp.register('acme', 'notes', '2026-11-03', 'r1', '[{"name": "ID", "type": "integer"}]', '[[5]]') AS queued_job \gset
SELECT value FROM starpipe.metrics() WHERE name = 'starpipe_queue_depth' AND labels->>'table' = 'notes';
SELECT value >= 0 AS claimable_age FROM starpipe.metrics() WHERE name = 'starpipe_oldest_claimable_age_seconds';
SELECT pg_temp.hold(:queued_job) > 0 AS held;
SELECT labels, value >= 0 AS sane FROM starpipe.metrics() WHERE name = 'starpipe_stage_age_seconds';
SELECT value FROM starpipe.metrics() WHERE name = 'starpipe_oldest_claimable_age_seconds';
-- The stage age counts from the last event or the last change of the progress heartbeats report: renewing the
-- lease alone does not make a stalled job young, a moving figure does, and the same figure again does not.
UPDATE starpipe.job_event SET at = at - interval '1 hour' WHERE job_id = :queued_job;
SELECT fence AS queued_fence FROM starpipe.job WHERE job_id = :queued_job \gset
SELECT value >= 3600 AS stalled FROM starpipe.metrics() WHERE name = 'starpipe_stage_age_seconds';
SELECT starpipe.heartbeat(:queued_job, :queued_fence) > now() AS renewed;
SELECT value >= 3600 AS still_stalled FROM starpipe.metrics() WHERE name = 'starpipe_stage_age_seconds';
SELECT starpipe.heartbeat(:queued_job, :queued_fence, '5 minutes', 65536) > now() AS renewed_with_progress;
SELECT value < 60 AS moving, (SELECT progress FROM starpipe.job WHERE job_id = :queued_job) AS progress
  FROM starpipe.metrics() WHERE name = 'starpipe_stage_age_seconds';
UPDATE starpipe.job SET progress_at = progress_at - interval '1 hour' WHERE job_id = :queued_job;
SELECT starpipe.heartbeat(:queued_job, :queued_fence, '5 minutes', 65536) > now() AS renewed_same_figure;
SELECT value >= 3600 AS stalled_again FROM starpipe.metrics() WHERE name = 'starpipe_stage_age_seconds';

-- 5. Never a value: the canary is in raw (and production) but in no trace and no gauge.
SELECT count(*) AS canary_in_production FROM production.visits WHERE patient LIKE 'CANARY%';
SELECT bool_or(starpipe.trace(job_id)::text LIKE '%CANARY%') AS canary_in_trace FROM starpipe.job;
SELECT bool_or(m::text LIKE '%CANARY%') AS canary_in_metrics FROM starpipe.metrics() m;

-- 6. Errors and privileges: an unknown job is named; the worker and admin roles may trace, PUBLIC may not.
SELECT starpipe.trace(999);
CREATE ROLE observe_login LOGIN;
SET ROLE observe_login;
SELECT starpipe.trace(1);
SELECT count(*) FROM starpipe.metrics();
RESET ROLE;
GRANT starpipe_worker TO observe_login;
SET ROLE observe_login;
SELECT starpipe.trace(1)->>'status' AS status, (SELECT count(*) > 0 FROM starpipe.metrics()) AS metrics;
RESET ROLE;
DROP ROLE observe_login;
