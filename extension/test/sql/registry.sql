-- The schema registry: versions per fingerprint, diffs, rename candidates, and what drift blocks.
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
CREATE TABLE production.people (person_id integer PRIMARY KEY, born date, score numeric);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"],
  "columns": {"person_id": {"from": "ID"}, "born": {"from": "BORN"}, "score": {"from": "SCORE"}}}}}');

-- Loads one snapshot of acme.people with the given columns and rows (test/helpers.psql); returns the job id.
CREATE FUNCTION pg_temp.load(p_run text, p_date text, p_columns jsonb, p_rows jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_job bigint := pg_temp.register('acme', 'people', p_date, p_run, p_columns, p_rows,
        pg_catalog.jsonb_build_object('primary_key', '["ID"]'::jsonb, 'sha256', pg_catalog.encode(pg_catalog.sha256(p_run::bytea), 'hex')));
BEGIN
    PERFORM pg_temp.load(v_job);
    RETURN v_job;
END;
$$;
-- Runs transform, validate and promote on a loaded or retried job; returns the status after.
CREATE FUNCTION pg_temp.finish(p_job bigint) RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.stages(p_job);
$$;

-- 1. The first schema is version 1, without a diff.
SELECT pg_temp.finish(pg_temp.load('r1', '2026-11-01',
    '[{"name": "ID", "type": "integer", "nullable": false}, {"name": "BORN", "type": "date", "nullable": true},
      {"name": "SCORE", "type": "integer", "nullable": true}]', '[[1, "2000-01-01", 5]]'));
SELECT version, columns, primary_key, first_job, diff, mapping_version, length(fingerprint) AS fingerprint_length
  FROM starpipe.schema_version;
SELECT detail->>'schema_version' AS version, detail->>'schema_new' AS new FROM starpipe.job_event WHERE job_id = 1 AND event = 'raw_loaded';

-- 2. The same schema again keeps version 1.
SELECT pg_temp.finish(pg_temp.load('r2', '2026-11-02',
    '[{"name": "ID", "type": "integer", "nullable": false}, {"name": "BORN", "type": "date", "nullable": true},
      {"name": "SCORE", "type": "integer", "nullable": true}]', '[[2, "2001-01-01", 6]]'));
SELECT job_id, schema_version FROM starpipe.job ORDER BY job_id;

-- 3. An unmapped column is added and a column becomes nullable: version 2, and the job proceeds with a drift warning.
SELECT pg_temp.finish(pg_temp.load('r3', '2026-11-03',
    '[{"name": "ID", "type": "integer", "nullable": true}, {"name": "BORN", "type": "date", "nullable": true},
      {"name": "SCORE", "type": "integer", "nullable": true}, {"name": "NOTE", "type": "text", "nullable": true}]', '[[3, "2002-01-01", 7, "hi"]]'));
SELECT version, first_job, diff FROM starpipe.schema_version WHERE version = 2;
SELECT event, detail->'diff'->'added' AS added, detail->'diff'->'nullability' AS nullability FROM starpipe.job_event WHERE job_id = 3 AND event = 'drift_warning';
SELECT detail->'schema_diff'->'added' AS diff_in_raw_loaded FROM starpipe.job_event WHERE job_id = 3 AND event = 'raw_loaded';

-- 4. A mapped column is renamed (BORN -> DOB, same position and type): BLOCKED before transform with the diff.
SELECT pg_temp.finish(pg_temp.load('r4', '2026-11-04',
    '[{"name": "ID", "type": "integer", "nullable": true}, {"name": "DOB", "type": "date", "nullable": true},
      {"name": "SCORE", "type": "integer", "nullable": true}, {"name": "NOTE", "type": "text", "nullable": true}]', '[[4, "2003-01-01", 8, "x"]]'));
SELECT status, stage, error FROM starpipe.job WHERE job_id = 4;
SELECT error_detail->'missing_columns' AS missing, error_detail->'rename_candidates' AS renames, error_detail->>'schema_version' AS version,
       error_detail->'diff'->'removed' AS removed, error_detail->'diff'->'added' AS added
  FROM starpipe.job WHERE job_id = 4;
-- Accepting the schema cannot make a missing column appear; a mapping that covers the rename can.
SELECT starpipe.accept_schema('acme', 'people', 3);
SELECT starpipe.retry(4);
SELECT pg_temp.finish(4);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"],
  "columns": {"person_id": {"from": "ID"}, "born": {"from": "DOB"}, "score": {"from": "SCORE"}}}}}');
SELECT starpipe.retry(4);
SELECT pg_temp.finish(4);
SELECT * FROM production.people ORDER BY person_id;

-- 5. A mapped column changes type (SCORE integer -> text): raw widens it to text, the job blocks before transform.
SELECT pg_temp.finish(pg_temp.load('r5', '2026-11-05',
    '[{"name": "ID", "type": "integer", "nullable": true}, {"name": "DOB", "type": "date", "nullable": true},
      {"name": "SCORE", "type": "text", "nullable": true}, {"name": "NOTE", "type": "text", "nullable": true}]', '[[5, "2004-01-01", "9.5", "y"]]'));
SELECT status, stage, error, error_detail->'retyped_columns' AS retyped FROM starpipe.job WHERE job_id = 5;
SELECT diff->'retyped' AS retyped, diff->'rename_candidates' AS renames FROM starpipe.schema_version WHERE version = 4;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
 WHERE a.attrelid = 'raw_acme.people'::regclass AND a.attname IN ('SCORE', 'NOTE') ORDER BY 1;
SELECT "SCORE", _ingestion_id FROM raw_acme.people ORDER BY _ingestion_id;
-- Retrying without a decision blocks again; accepting version 4 lets the retry through.
SELECT starpipe.retry(5);
SELECT pg_temp.finish(5);
SELECT starpipe.accept_schema('acme', 'people', 99);
SELECT starpipe.accept_schema('acme', 'people', 4);
SELECT version, accepted_at IS NOT NULL AS accepted, accepted_by IS NOT NULL AS by_whom FROM starpipe.schema_version ORDER BY version;
SELECT starpipe.retry(5);
SELECT pg_temp.finish(5);
SELECT * FROM production.people ORDER BY person_id;

-- 6. Another type change (SCORE text -> numeric), covered by a mapping applied after it was seen.
SELECT pg_temp.finish(pg_temp.load('r6', '2026-11-06',
    '[{"name": "ID", "type": "integer", "nullable": true}, {"name": "DOB", "type": "date", "nullable": true},
      {"name": "SCORE", "type": "numeric", "nullable": true}, {"name": "NOTE", "type": "text", "nullable": true}]', '[[6, "2005-01-01", 1.25, "z"]]'));
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"],
  "columns": {"person_id": {"from": "ID"}, "born": {"from": "DOB"}, "score": {"from": "SCORE", "type": "numeric"}}}}}');
SELECT starpipe.retry(6);
SELECT pg_temp.finish(6);
SELECT job_id, status, schema_version, mapping_version FROM starpipe.job ORDER BY job_id;

-- 7. Rename candidates need a compatible type at a similar position; primary key changes are part of the diff.
SELECT starpipe._schema_diff(
    '[{"name": "a", "type": "integer", "position": 1}, {"name": "b", "type": "date", "position": 2}, {"name": "c", "type": "text", "position": 3}]',
    '["a"]',
    '[{"name": "a2", "type": "bigint", "position": 1}, {"name": "b", "type": "date", "position": 2}, {"name": "c2", "type": "timestamp", "position": 3}]',
    '["a2"]');
SELECT starpipe.accept_schema('acme', 'nope', 1);

-- 8. A domain sent by its name (before 0.3.0) and then by its base type, with source_type naming it, is not retyped;
-- a base type that changes under the same domain is.
SELECT starpipe._schema_diff(
    '[{"name": "e", "type": "email", "position": 1}, {"name": "n", "type": "integer", "source_type": "posint", "position": 2}]', '[]',
    '[{"name": "e", "type": "character varying(100)", "source_type": "email", "position": 1},
      {"name": "n", "type": "bigint", "source_type": "posint", "position": 2}]', '[]')->'retyped' AS retyped;
