-- DUPLICATE means "equal to the table's newest snapshot, applied under the mapping it would get now, or in flight".
\set VERBOSITY terse
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
CREATE SCHEMA production;
CREATE TABLE production.accounts (account_id integer PRIMARY KEY, state text);
CREATE TABLE production.codes (code text PRIMARY KEY, label text);
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA production TO starpipe_writer;
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"accounts": {
  "target": "accounts", "conflict_key": ["account_id"], "columns": {"account_id": {"from": "ID"}, "state": {"from": "STATE"}}}}}');
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "STATE", "type": "text"}]'::jsonb AS accounts,
                                 '[{"name": "CODE", "type": "text"}, {"name": "LABEL", "type": "text"}]'::jsonb AS codes;

-- 1. A, B, then A again: the third snapshot equals an older one, not the newest, so it is applied.
SELECT pg_temp.ingest('acme', 'accounts', '2026-01-01', 'd1', (SELECT accounts FROM cols), '[[1, "active"]]');
SELECT pg_temp.ingest('acme', 'accounts', '2026-01-02', 'd2', (SELECT accounts FROM cols), '[[1, "inactive"]]');
SELECT pg_temp.ingest('acme', 'accounts', '2026-01-03', 'd3', (SELECT accounts FROM cols), '[[1, "active"]]');
SELECT * FROM production.accounts;
-- 2. The newest content again is a DUPLICATE of the job that applied it.
SELECT pg_temp.ingest('acme', 'accounts', '2026-01-04', 'd4', (SELECT accounts FROM cols), '[[1, "active"]]');
SELECT job_id, status, duplicate_of FROM starpipe.job WHERE job_id = 4;
-- 3. A late snapshot older than that DUPLICATE is an older snapshot: it cannot overwrite what the newest says.
SELECT pg_temp.ingest('acme', 'accounts', '2026-01-02', 'late', (SELECT accounts FROM cols), '[[1, "closed"], [2, "new"]]');
SELECT * FROM production.accounts ORDER BY account_id;
SELECT detail->>'policy' AS policy, detail->>'newest_promoted_job' AS newest FROM starpipe.job_event WHERE job_id = 5 AND event = 'promoted';

-- 4. Raw only first, mapping later: unchanged data is not a duplicate of the raw-only load, so it is promoted.
SELECT pg_temp.ingest('acme', 'codes', '2026-01-01', 'c1', (SELECT codes FROM cols), '[["a", "Alpha"]]');
SELECT job_id, status, stage FROM starpipe.job WHERE job_id = 6;
SELECT pg_temp.ingest('acme', 'codes', '2026-01-02', 'c2', (SELECT codes FROM cols), '[["a", "Alpha"]]');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"accounts": {
  "target": "accounts", "conflict_key": ["account_id"], "columns": {"account_id": {"from": "ID"}, "state": {"from": "STATE"}}},
  "codes": {"target": "codes", "conflict_key": ["code"], "columns": {"code": {"from": "CODE"}, "label": {"from": "LABEL"}}}}}');
SELECT pg_temp.ingest('acme', 'codes', '2026-01-03', 'c3', (SELECT codes FROM cols), '[["a", "Alpha"]]');
SELECT * FROM production.codes;
-- 5. ... and the raw-only job and a DUPLICATE can be re-run on purpose (retry): raw-only from its raw version.
SELECT starpipe.retry(6), starpipe.retry(7);
SELECT job_id, status, stage, duplicate_of FROM starpipe.job WHERE job_id IN (6, 7) ORDER BY job_id;
SELECT pg_temp.stages(6);
SELECT pg_temp.load(7) > 0 AS loaded, pg_temp.stages(7);
SELECT job_id, status, stage, rows_inserted, rows_updated FROM starpipe.job WHERE table_name = 'codes' ORDER BY job_id;
SELECT starpipe.retry(8);

-- 6. A changed mapping of the table makes equal content new again; a mapping change of another table does not.
SELECT pg_temp.ingest('acme', 'codes', '2026-01-04', 'c4', (SELECT codes FROM cols), '[["a", "Alpha"]]');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"accounts": {
  "target": "accounts", "conflict_key": ["account_id"], "columns": {"account_id": {"from": "ID"}, "state": {"from": "STATE", "clean": ["upper"]}}},
  "codes": {"target": "codes", "conflict_key": ["code"], "columns": {"code": {"from": "CODE"}, "label": {"from": "LABEL"}}}}}');
SELECT pg_temp.ingest('acme', 'codes', '2026-01-05', 'c5', (SELECT codes FROM cols), '[["a", "Alpha"]]');
SELECT pg_temp.ingest('acme', 'accounts', '2026-01-05', 'd5', (SELECT accounts FROM cols), '[[1, "active"]]');
SELECT * FROM production.accounts ORDER BY account_id;

-- 7. A duplicate of a job that fails is revived in its place (the damaged first upload, then the intact re-run).
SELECT pg_temp.register('acme', 'accounts', '2026-01-06', 'd6', (SELECT accounts FROM cols), '[[1, "gone"]]') AS job \gset
SELECT pg_temp.register('acme', 'accounts', '2026-01-06', 'd6-rerun', (SELECT accounts FROM cols), '[[1, "gone"]]') AS rerun \gset
SELECT pg_temp.register('acme', 'accounts', '2026-01-07', 'd7', (SELECT accounts FROM cols), '[[1, "gone"]]') AS later \gset
SELECT job_id, status, duplicate_of = :job AS dup_of_first FROM starpipe.job WHERE job_id IN (:rerun, :later) ORDER BY job_id;
SELECT starpipe.fail(:job, pg_temp.hold(:job), 'sha256 mismatch: truncated upload');
SELECT job_id, status, duplicate_of = :rerun AS dup_of_rerun FROM starpipe.job WHERE job_id IN (:job, :rerun, :later) ORDER BY job_id;
SELECT event, detail->>'reason' AS reason FROM starpipe.job_event WHERE job_id = :rerun ORDER BY event_id;
SELECT pg_temp.load(:rerun) > 0 AS loaded, pg_temp.stages(:rerun);
SELECT * FROM production.accounts ORDER BY account_id;

-- 8. Different content under a job key that exists (a re-delivered file, or a second prefix) is refused, not dropped;
--    the same content under another key is the same job.
SELECT starpipe.register(pg_temp.manifest('acme', 'accounts', '2026-01-06', 'd6', (SELECT accounts FROM cols), '[[1, "other"]]'), 'm/x', 'd/x');
SELECT job_id = :job AS same_job, created FROM starpipe.register(
    pg_temp.manifest('acme', 'accounts', '2026-01-06', 'd6', (SELECT accounts FROM cols), '[[1, "gone"]]'), 'other-prefix/m', 'other-prefix/d');

SET client_min_messages = warning;
DROP SCHEMA production, raw_acme CASCADE;
RESET client_min_messages;
