-- Issue 14: a production row's lineage (starpipe.trace_row): the job, bucket file and source row that inserted it,
-- the ones that changed or kept it, and what retention no longer tells.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
DROP ROLE IF EXISTS lineage_worker;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.visits (visit_id integer PRIMARY KEY, patient text, cost numeric);
GRANT SELECT, INSERT, UPDATE ON production.visits TO starpipe_writer;
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits":
  {"target": "visits", "conflict_key": ["visit_id"],
   "columns": {"visit_id": {"from": "ID"}, "patient": {"from": "PATIENT"}, "cost": {"from": "COST"}}}}}') > 0 AS applied;
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "PATIENT", "type": "text"}, {"name": "COST", "type": "text"}]'::jsonb AS c;
-- A compact view of the history: job, action, source row, changed columns.
CREATE FUNCTION pg_temp.lineage(p_key text) RETURNS TABLE (job bigint, action text, source_row bigint, changed jsonb, data_key text)
LANGUAGE sql AS $$
    SELECT (e->>'job_id')::bigint, e->>'action', (e->>'source_row')::bigint, e->'changed_columns', e->>'data_key'
      FROM pg_catalog.jsonb_array_elements(starpipe.trace_row('production.visits', pg_catalog.jsonb_build_object('visit_id', p_key))->'history') e;
$$;

-- Day 1 inserts visit 7 (source row 2), day 2 changes its cost (row 3 there), day 3 sends it unchanged.
SELECT pg_temp.ingest('acme', 'visits', '2026-11-01', 'r1', (SELECT c FROM cols), '[[6, "a", "6"], [7, "b", "7"]]');
SELECT pg_temp.ingest('acme', 'visits', '2026-11-02', 'r2', (SELECT c FROM cols), '[[5, "z", "5"], [6, "a", "6"], [7, "b", "70"]]');
SELECT pg_temp.ingest('acme', 'visits', '2026-11-03', 'r3', (SELECT c FROM cols), '[[7, "b", "70"], [6, "a", "6"]]');
SELECT * FROM pg_temp.lineage('7');
SELECT r->'present' AS present, r->'key' AS key, r->'last_write'->>'job_id' AS last_job, r->'last_write'->>'action' AS last_action,
       r->'last_write'->>'source_row' AS last_row, r->'mappings' AS mappings, r->'insert_uncertain_through_job' AS uncertain
  FROM starpipe.trace_row('production.visits', '{"visit_id": "7"}') r;
-- Visit 6 was written once, by day 1; visit 5 by day 2; a key never promoted has no history.
SELECT * FROM pg_temp.lineage('6');
SELECT * FROM pg_temp.lineage('5');
SELECT r->'present' AS present, r->'history' AS history FROM starpipe.trace_row('production.visits', '{"visit_id": "99"}') r;

-- Retention drops day 1's staging with its raw version: the insert of visit 6 is then only known to be day 1's or
-- earlier, and the entry found says so.
SELECT starpipe.set_setting('raw_keep_promoted_versions', '1');
SELECT pg_temp.ingest('acme', 'visits', '2026-11-04', 'r4', (SELECT c FROM cols), '[[6, "a", "6"]]');
SELECT to_regclass('starpipe_staging.visits__1') IS NULL AS day1_staging_dropped;
SELECT * FROM pg_temp.lineage('6');
SELECT r->'insert_uncertain_through_job' AS uncertain_through FROM starpipe.trace_row('production.visits', '{"visit_id": "6"}') r;

-- Refusals name what is wrong.
SELECT starpipe.trace_row('production.visits', '{"patient": "b"}');
SELECT starpipe.trace_row('production.nothing', '{"visit_id": "7"}');
SELECT starpipe.trace_row('starpipe.job', '{"job_id": "1"}');
SELECT starpipe.trace_row('production.visits', '{"visit_id": "not a number"}');

-- row_origin, the dashboard's lookup, as the worker's role: the same history and last write as trace_row, without
-- the key or presence in production; trace_row itself stays the admin's.
CREATE ROLE lineage_worker;
GRANT starpipe_worker TO lineage_worker;
SET ROLE lineage_worker;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(r) k) AS fields,
       r->'last_write'->>'job_id' AS last_job, r->'last_write'->>'action' AS last_action,
       r->'last_write'->>'source_row' AS last_row, jsonb_array_length(r->'history') AS entries
  FROM starpipe.row_origin('production.visits', '{"visit_id": "7"}') r;
RESET ROLE;
SELECT starpipe.row_origin('production.visits', '{"visit_id": "7"}')
     = starpipe.trace_row('production.visits', '{"visit_id": "7"}') - 'key' - 'present' AS trace_row_less_key_and_presence;
SET ROLE lineage_worker;
SELECT starpipe.trace_row('production.visits', '{"visit_id": "7"}');
SELECT starpipe._row_lineage('production.visits', '{"visit_id": "7"}', false);
-- The targets it takes are the dashboard's list; anything else, and a value its column cannot hold, is refused
-- without repeating what was given.
SELECT d->'targets' AS targets FROM starpipe.dashboard() d;
SELECT starpipe.row_origin('production.nothing', '{"visit_id": "7"}');
SELECT starpipe.row_origin('"bad name', '{"visit_id": "7"}');
SELECT starpipe.row_origin('production.visits', '{"visit_id": "CANARY-key-41"}');
SELECT starpipe.row_origin('production.visits', '{"patient": "CANARY-key-41"}');
SELECT r->'history' AS history, r->'last_write' AS last_write FROM starpipe.row_origin('production.visits', '{"visit_id": "99"}') r;
RESET ROLE;
DROP ROLE lineage_worker;
