-- Out-of-order snapshots at promotion, and raw retention (raw_keep_promoted_versions).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
-- What a DBA runs before mapping into a schema: allow it, and let starpipe_writer write its tables.
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.visits (visit_id integer PRIMARY KEY, state text NOT NULL);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["visit_id"],
  "columns": {"visit_id": {"from": "ID"}, "state": {"from": "STATE"}},
  "checks": [{"accepted_values": {"column": "state", "values": ["new", "old", "newest", "again", "late"]}}]}}}');
SELECT starpipe.set_setting('raw_keep_promoted_versions', '2');

-- One snapshot of acme.visits through the whole pipeline (test/helpers.psql); each run is its own content.
CREATE FUNCTION pg_temp.ingest(p_run text, p_date text, p_rows jsonb, p_extracted text DEFAULT NULL) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.ingest('acme', 'visits', p_date, p_run,
        '[{"name": "ID", "type": "text", "nullable": false}, {"name": "STATE", "type": "text", "nullable": true}]', p_rows,
        pg_catalog.jsonb_build_object('primary_key', '["ID"]'::jsonb, 'extracted_at', p_extracted,
                                      'sha256', pg_catalog.encode(pg_catalog.sha256(p_run::bytea), 'hex')));
$$;

-- 1. The newest snapshot first.
SELECT pg_temp.ingest('a', '2026-11-05', '[["1", "new"], ["2", "new"]]');
-- 2. An older snapshot arrives late: it is processed, adds the key production lacks, and changes nothing else.
SELECT pg_temp.ingest('b', '2026-11-03', '[["1", "old"], ["3", "old"]]');
SELECT * FROM production.visits ORDER BY visit_id;
SELECT rows_inserted, rows_updated FROM starpipe.job WHERE job_id = 2;
SELECT detail->>'policy' AS policy, detail->>'older_snapshot' AS older, detail->>'newest_promoted_snapshot' AS newest,
       detail->>'newest_promoted_job' AS newest_job, detail->>'kept_existing' AS kept_existing
  FROM starpipe.job_event WHERE job_id = 2 AND event = 'promoted';
SELECT job_id, key, changed_columns, policy FROM starpipe.conflict ORDER BY conflict_id;
-- 3. A late snapshot whose transform fails keeps its raw version (only promoted versions are subject to retention).
SELECT pg_temp.ingest('e', '2026-11-02', '[["not a number", "x"]]');
-- 4. Newer snapshots apply normally, the same date counting as current.
SELECT pg_temp.ingest('c', '2026-11-06', '[["1", "newest"]]');
SELECT pg_temp.ingest('d', '2026-11-06', '[["2", "again"]]');
SELECT * FROM production.visits ORDER BY visit_id;
-- 5. A newer snapshot stopped by a gate; an even later-arriving older one is still promoted (as older).
SELECT pg_temp.ingest('f', '2026-11-07', '[["1", "bogus"]]');
SELECT pg_temp.ingest('g', '2026-11-04', '[["2", "late"], ["4", "late"]]');
SELECT * FROM production.visits ORDER BY visit_id;

-- Retention kept the 2 newest promoted versions (plus the late one just promoted), never an unpromoted one.
SELECT j.job_id, j.run_id, j.snapshot_date, j.status, j.stage, starpipe.raw_version(j.job_id) AS raw_version
  FROM starpipe.job j ORDER BY j.job_id;
SELECT job_id, detail->'dropped_raw_versions_of_jobs' AS dropped, detail->>'keep' AS keep
  FROM starpipe.job_event WHERE event = 'raw_retention' ORDER BY event_id;
SELECT count(*) AS raw_rows, count(DISTINCT _ingestion_id) AS versions FROM raw_acme.visits;

-- 6. Two runs of one date: the one extracted later is newer, so the earlier run, promoted after it, changes nothing.
SELECT pg_temp.ingest('h', '2026-11-06', '[["5", "new"]]', '2026-11-06T13:00:00Z');
SELECT pg_temp.ingest('i', '2026-11-06', '[["5", "old"], ["6", "old"]]', '2026-11-06T01:00:00Z');
SELECT * FROM production.visits WHERE visit_id >= 5 ORDER BY visit_id;
SELECT detail->>'policy' AS policy, detail->>'newest_promoted_job' AS newest_job
  FROM starpipe.job_event e JOIN starpipe.job j USING (job_id) WHERE j.run_id = 'i' AND e.event = 'promoted';
