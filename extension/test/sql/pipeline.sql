-- The whole path in SQL: register, claim, raw version, transform, validate, promote.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\set VERBOSITY terse
SET client_min_messages = notice;

CREATE SCHEMA production;
-- What a DBA runs before mapping into a schema: allow it, and let starpipe_writer write its tables.
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.patients (
    patient_id uuid PRIMARY KEY,
    birth_date date NOT NULL,
    first_name text,
    gender text,
    source_system text NOT NULL
);

-- A manifest as the extractor writes it.
CREATE TEMP TABLE m AS SELECT '{
  "format_version": 1, "client": "acme", "table": "patients", "snapshot_date": "2026-11-01",
  "run_id": "r1", "data_file": "data.json", "format": "json_array", "row_count": 3, "byte_count": 300,
  "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "columns": [{"name": "Id", "type": "uuid", "nullable": false}, {"name": "BIRTHDATE", "type": "date", "nullable": true},
              {"name": "FIRST", "type": "text", "nullable": true}, {"name": "GENDER", "type": "character varying(1)", "nullable": true}],
  "primary_key": ["Id"]}'::jsonb AS j;

SELECT * FROM starpipe.register((SELECT j FROM m), 'client=acme/table=patients/date=20261101/run_id=r1/manifest.json',
                                'client=acme/table=patients/date=20261101/run_id=r1/data.json');
-- Registering the same manifest again is a no-op.
SELECT * FROM starpipe.register((SELECT j FROM m), 'client=acme/table=patients/date=20261101/run_id=r1/manifest.json',
                                'client=acme/table=patients/date=20261101/run_id=r1/data.json');
-- The same content under another run id is a DUPLICATE.
SELECT * FROM starpipe.register((SELECT j || '{"run_id": "r2"}' FROM m), 'k2', 'd2');

-- Bad manifests name the bad field.
SELECT starpipe.register((SELECT j - 'sha256' FROM m), 'k', 'd');
SELECT starpipe.register((SELECT j || '{"client": "../etc"}' FROM m), 'k', 'd');
SELECT starpipe.register((SELECT j || '{"columns": [{"name": "_source_row", "type": "text"}]}' FROM m), 'k', 'd');

-- Claim: one job, with a fencing token.
SELECT job_id, status, stage, fence, attempts FROM starpipe.claim('w1');
SELECT count(*) AS nothing_else FROM starpipe.claim('w2');

-- A stale token is refused.
SELECT starpipe.begin_raw(1, 999);
SELECT starpipe.begin_raw(1, 1);
COPY raw_acme._load_1_1 ("Id", "BIRTHDATE", "FIRST", "GENDER", _source_row) FROM stdin;
3edac2e3-d223-6fae-d515-daf96ef6bc76	2014-10-06	Maynard46	M	1
9d188916-8390-282b-3ec2-73fce6e08649	2008-04-07	 Curt84 	M	2
9d188916-8390-282b-3ec2-73fce6e08649	2008-04-08	Curt84	M	3
\.
-- A checksum mismatch is refused (the worker rolls its COPY back).
SELECT starpipe.finish_raw(1, 1, 3, 300, repeat('b', 64));
SELECT starpipe.finish_raw(1, 1, 4, 300, repeat('a', 64));
SELECT starpipe.finish_raw(1, 1, 3, 300, repeat('a', 64));
SELECT _ingestion_id, _client_name, _source_file, _source_row, "FIRST" FROM raw_acme.patients ORDER BY _source_row;

-- Mappings are proven against production when applied.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"patients":
  {"target": "patients", "conflict_key": ["patient_id"], "columns": {"patient_id": {"from": "Id"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"patients":
  {"target": "nope", "conflict_key": ["patient_id"], "columns": {"patient_id": {"from": "Id"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"patients":
  {"target": "patients", "conflict_key": ["first_name"], "columns": {"patient_id": {"from": "Id"}, "birth_date": {"from": "BIRTHDATE"},
   "first_name": {"from": "FIRST"}, "source_system": {"const": "x"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"patients":
  {"target": "patients", "conflict_key": ["patient_id"], "columns": {"patient_id": {"from": "Id"}, "birth_date": {"from": "BIRTHDATE"},
   "first_name": {"from": "FIRST", "clean": ["shout"]}, "source_system": {"const": "x"}}}}}');
CREATE TEMP TABLE cfg AS SELECT '{"version": 1, "client": "acme", "target_schema": "production", "tables": {"patients": {
  "target": "patients", "conflict_key": ["patient_id"], "conflict_policy": "source_wins",
  "columns": {"patient_id": {"from": "Id", "type": "uuid"}, "birth_date": {"from": "BIRTHDATE"},
              "first_name": {"from": "FIRST", "clean": ["trim", "strip_digits"]}, "gender": {"from": "GENDER", "clean": ["upper"]},
              "source_system": {"const": "synthea"}},
  "checks": [{"not_null": ["birth_date"]}, {"accepted_values": {"column": "gender", "values": ["M", "F"]}}, {"min_rows": 1}]}}}'::jsonb AS c;
SELECT starpipe.apply_mapping((SELECT c FROM cfg)) AS version;
SELECT starpipe.apply_mapping((SELECT c FROM cfg)) AS same_version;

SELECT starpipe.transform(1, 1);
SELECT rows_raw, rows_staged, stage FROM starpipe.job WHERE job_id = 1;
SELECT patient_id, birth_date, first_name, _source_row FROM starpipe_staging.patients__1 ORDER BY patient_id;
SELECT starpipe.validate(1, 1);
SELECT starpipe.promote(1, 1);
SELECT patient_id, birth_date, first_name, gender, source_system FROM production.patients ORDER BY patient_id;
-- A second promote is a no-op.
SELECT starpipe.promote(1, 1);
SELECT job_id, status, stage, rows_inserted, rows_updated FROM starpipe.job ORDER BY job_id;
SELECT event, from_status, to_status, stage FROM starpipe.job_event WHERE job_id = 1 ORDER BY event_id;
-- An illegal transition has its own SQLSTATE.
SELECT starpipe.retry(1);
DO $$ BEGIN PERFORM starpipe.retry(1); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'SQLSTATE %', SQLSTATE; END $$;
DO $$ BEGIN PERFORM starpipe.heartbeat(1, 0); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'SQLSTATE %', SQLSTATE; END $$;
