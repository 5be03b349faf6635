-- Issue 11: gates against the last promoted snapshot (null_drift: the phantom NULL; row_count_change), custom sql
-- gates that cannot write, on_fail, and retry resuming at validation.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.visits (visit_id integer PRIMARY KEY, patient text, cost numeric);
CREATE TABLE production.audit_target (x integer);

-- Applies the visits mapping with these checks; returns the version or the error.
CREATE FUNCTION pg_temp.try(p_checks jsonb) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN starpipe.apply_mapping(pg_catalog.jsonb_build_object('version', 1, 'client', 'acme', 'target_schema', 'production',
        'tables', pg_catalog.jsonb_build_object('visits', pg_catalog.jsonb_build_object('target', 'visits', 'conflict_key', '["visit_id"]'::jsonb,
            'columns', '{"visit_id": {"from": "ID"}, "patient": {"from": "PATIENT"}, "cost": {"from": "COST"}}'::jsonb, 'checks', p_checks))))::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
-- N rows: visit ids from FIRST, patient NULL on the rows in NULLS (1-based), cost = id.
CREATE FUNCTION pg_temp.rows(p_first int, p_n int, p_nulls int[] DEFAULT '{}') RETURNS jsonb LANGUAGE sql AS $$
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(p_first + i - 1, CASE WHEN i = ANY (p_nulls) THEN NULL ELSE 'p' || i END, (p_first + i - 1)::text) ORDER BY i)
      FROM pg_catalog.generate_series(1, p_n) i;
$$;
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "PATIENT", "type": "text"}, {"name": "COST", "type": "text"}]'::jsonb AS c;

-- 1. The shapes apply_mapping accepts.
SELECT pg_temp.try('[{"null_drift": {"column": "patient"}}]');
SELECT pg_temp.try('[{"null_drift": {"column": "nope", "max": 0.01}}]');
SELECT pg_temp.try('[{"row_count_change": -5}]');
SELECT pg_temp.try('[{"row_count_change": "20%"}]');
SELECT pg_temp.try('[{"sql": {"name": "x", "query": ""}}]');
SELECT pg_temp.try('[{"sql": {"name": "x", "query": "SELECT _source_row FROM staged WHERE nope > 0"}}]');
SELECT pg_temp.try('[{"sql": {"name": "x", "query": "WITH d AS (DELETE FROM production.visits RETURNING visit_id) SELECT visit_id FROM d"}}]');
SELECT pg_temp.try('[{"min_rows": 1, "on_fail": "later"}]');
SELECT pg_temp.try('[{"min_rows": 1, "unique": ["patient"]}]');

SELECT pg_temp.try('[{"null_drift": {"column": "patient", "max": 0.01}}, {"row_count_change": 50},
                     {"sql": {"name": "cost_matches_id", "query": "SELECT _source_row FROM staged WHERE cost <> visit_id"}},
                     {"min_rows": 1, "on_fail": "failed"}]');

-- 2. The first snapshot has no baseline: the drift gates pass. 100 rows, one NULL patient (1 %).
SELECT pg_temp.ingest('acme', 'visits', '2026-11-01', 'r1', (SELECT c FROM cols), pg_temp.rows(1, 100, '{7}'));
SELECT job_id, rows, null_counts FROM starpipe.snapshot_profile ORDER BY job_id;

-- 3. The phantom NULL: patient was 1 % NULL, now 30 % (a renamed source column upstream). BLOCKED, naming the column,
-- both fractions and sample source rows; production untouched.
SELECT pg_temp.ingest('acme', 'visits', '2026-11-02', 'r2', (SELECT c FROM cols),
                      pg_temp.rows(1, 100, ARRAY(SELECT generate_series(41, 70))));
SELECT status, stage, error FROM starpipe.job WHERE job_id = 2;
SELECT f->>'column' AS col, f->'fraction' AS fraction, f->'baseline_fraction' AS baseline, f->'baseline_job' AS baseline_job,
       f->'rows' AS rows, f->'sample_source_rows' AS sample
  FROM starpipe.job j, jsonb_array_elements(j.error_detail->'failures') f WHERE j.job_id = 2;
SELECT count(*) AS null_patients FROM production.visits WHERE patient IS NULL;

-- 4. After a fix upstream, retry resumes at validation (the job stays transformed; transform is not run again).
SELECT starpipe.apply_mapping(m.config #- '{tables,visits,checks,0}') AS version FROM starpipe.mapping m WHERE version = 1;
SELECT starpipe.retry(2);
SELECT job_id, stage FROM starpipe.claim('w');
SELECT starpipe.validate(2, (SELECT fence FROM starpipe.job WHERE job_id = 2));
SELECT count(*) FILTER (WHERE event = 'transformed') AS transforms, count(*) FILTER (WHERE event = 'validated') AS validations
  FROM starpipe.job_event WHERE job_id = 2;
SELECT starpipe.promote(2, (SELECT fence FROM starpipe.job WHERE job_id = 2));

-- 5. row_count_change: 100 rows, then 40 (60 % fewer) blocks with both counts.
SELECT pg_temp.ingest('acme', 'visits', '2026-11-03', 'r3', (SELECT c FROM cols), pg_temp.rows(1, 40));
SELECT status, error FROM starpipe.job WHERE job_id = 3;

-- 6. A sql gate names its offending rows; a query that tries to write has its write rolled back.
SELECT pg_temp.try('[{"sql": {"name": "cost_matches_id", "query": "SELECT _source_row FROM staged WHERE cost <> visit_id"}}]');
SELECT starpipe.retry(3);
SELECT pg_temp.stages(3);
SELECT pg_temp.ingest('acme', 'visits', '2026-11-04', 'r4', (SELECT c FROM cols),
                      '[[1, "a", "1"], [2, "b", "99"], [3, "c", "3"], [4, "d", "98"]]');
SELECT status, error FROM starpipe.job WHERE job_id = 4;
CREATE SEQUENCE production.calls;
CREATE FUNCTION production.sneaky() RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM nextval('production.calls');
    INSERT INTO production.audit_target VALUES (1);
    RETURN 1;
END $f$;
GRANT INSERT ON production.audit_target TO starpipe_writer;
GRANT USAGE ON SEQUENCE production.calls TO starpipe_writer;
SELECT pg_temp.try('[{"sql": {"name": "sneaky", "query": "SELECT _source_row FROM staged WHERE production.sneaky() < 0"}}]');
SELECT starpipe.retry(4);
SELECT pg_temp.stages(4);
-- It ran (the sequence, outside any transaction, moved) but wrote nothing.
SELECT (SELECT last_value FROM production.calls) AS calls, count(*) AS written FROM production.audit_target;

-- 7. on_fail: failed makes a failing gate FAILED instead of BLOCKED.
SELECT pg_temp.try('[{"min_rows": 10, "on_fail": "failed"}]');
SELECT pg_temp.ingest('acme', 'visits', '2026-11-05', 'r5', (SELECT c FROM cols), '[[5, "e", "5"]]');
SELECT status, stage, error FROM starpipe.job WHERE job_id = 5;

-- 8. A production DDL change after transform is found before promotion: BLOCKED, naming it; resync_staging re-stages
-- the job from the current catalog, and the new CHECK then applies to its rows (within the budget: none allowed).
SELECT pg_temp.try('[{"min_rows": 1}]');
SELECT pg_temp.register('acme', 'visits', '2026-11-06', 'r6', (SELECT c FROM cols), '[[201, "g", "201"], [202, "h", "-202"]]');
SELECT pg_temp.load(6) > 0 AS loaded;
SELECT starpipe.transform(6, (SELECT fence FROM starpipe.job WHERE job_id = 6));
ALTER TABLE production.visits ADD CONSTRAINT cost_positive CHECK (cost > 0);
SELECT starpipe.validate(6, (SELECT fence FROM starpipe.job WHERE job_id = 6));
SELECT status, stage, error, error_detail->'failures'->0->'changes' AS changes FROM starpipe.job WHERE job_id = 6;
SELECT starpipe.retry(6);
SELECT job_id, stage FROM starpipe.claim('w');
SELECT starpipe.validate(6, (SELECT fence FROM starpipe.job WHERE job_id = 6));
SELECT starpipe.resync_staging(6);
SELECT pg_temp.stages(6);
SELECT status, stage, rows_rejected, error FROM starpipe.job WHERE job_id = 6;
SELECT source_row, target_column, rule, constraint_name FROM starpipe.reject WHERE job_id = 6;
SELECT count(*) AS visits_201_202 FROM production.visits WHERE visit_id IN (201, 202);

-- 9. A foreign key of production into a reference table is a gate: staged rows whose reference is missing block the
-- job with the constraint and sample rows (302; 303 has no reference); once the reference row exists, retry passes.
CREATE TABLE production.patients_ref (patient text PRIMARY KEY);
GRANT SELECT ON production.patients_ref TO starpipe_writer;
INSERT INTO production.patients_ref SELECT DISTINCT patient FROM production.visits WHERE patient IS NOT NULL;
INSERT INTO production.patients_ref VALUES ('h');
ALTER TABLE production.visits ADD CONSTRAINT visits_patient_fk FOREIGN KEY (patient) REFERENCES production.patients_ref;
SELECT pg_temp.register('acme', 'visits', '2026-11-07', 'r7', (SELECT c FROM cols), '[[301, "p10", "301"], [302, "zz", "302"], [303, null, "303"]]');
SELECT pg_temp.load(7) > 0 AS loaded;
SELECT pg_temp.stages(7);
SELECT status, stage, error FROM starpipe.job WHERE job_id = 7;
INSERT INTO production.patients_ref VALUES ('zz');
SELECT starpipe.retry(7);
SELECT pg_temp.stages(7);
SELECT visit_id, patient FROM production.visits WHERE visit_id > 300 ORDER BY visit_id;

-- 10. A DDL change between validation and promotion: promote takes production's lock, finds the change and blocks the
-- job (nothing written) instead of applying staging built for the old shape; a manual promote refuses it too;
-- resync_staging re-stages it and it promotes.
SELECT pg_temp.register('acme', 'visits', '2026-11-08', 'r8', (SELECT c FROM cols), '[[401, "h", "401"]]');
SELECT pg_temp.load(8) > 0 AS loaded;
SELECT starpipe.transform(8, (SELECT fence FROM starpipe.job WHERE job_id = 8));
SELECT starpipe.validate(8, (SELECT fence FROM starpipe.job WHERE job_id = 8));
ALTER TABLE production.visits ADD CONSTRAINT cost_small CHECK (cost < 100000);
SELECT starpipe.promote(8, (SELECT fence FROM starpipe.job WHERE job_id = 8));
SELECT status, stage, error, error_detail->'failures'->0->'changes' AS changes FROM starpipe.job WHERE job_id = 8;
SELECT starpipe.promote(8);
SELECT count(*) AS visits_401 FROM production.visits WHERE visit_id = 401;
SELECT starpipe.resync_staging(8);
SELECT pg_temp.stages(8);
SELECT visit_id, patient, cost FROM production.visits WHERE visit_id = 401;

-- 11. A foreign key into a table the same extraction run brings: the visits of run r9 reference a patient that only
-- the run's patients_ref job (registered after it) carries. The visits job waits for it (BLOCKED waiting_for_batch,
-- naming it), resumes by itself once it is promoted, and then passes its foreign-key gate.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {
  "visits": {"target": "visits", "conflict_key": ["visit_id"],
             "columns": {"visit_id": {"from": "ID"}, "patient": {"from": "PATIENT"}, "cost": {"from": "COST"}}},
  "patients": {"target": "patients_ref", "conflict_key": ["patient"], "columns": {"patient": {"from": "NAME"}}}}}') > 0 AS applied;
SELECT pg_temp.register('acme', 'visits', '2026-11-09', 'r9', (SELECT c FROM cols), '[[501, "newcomer", "501"], [502, "h", "502"]]') AS visits_job;
SELECT pg_temp.register('acme', 'patients', '2026-11-09', 'r9', '[{"name": "NAME", "type": "text"}]', '[["newcomer"]]') AS patients_job;
SELECT pg_temp.load(9) > 0 AS loaded;
SELECT pg_temp.stages(9);
SELECT status, stage, error, error_detail->'waits_for'->0->>'job_id' AS waits_for FROM starpipe.job WHERE job_id = 9;
SELECT pg_temp.load(10) > 0 AS loaded;
SELECT pg_temp.stages(10);
SELECT status, stage FROM starpipe.job WHERE job_id = 9;
SELECT pg_temp.stages(9);
SELECT visit_id, patient FROM production.visits WHERE visit_id > 500 ORDER BY visit_id;
SELECT event FROM starpipe.job_event WHERE job_id = 9 ORDER BY event_id;
-- A run whose parent job fails: the waiting job resumes and its gate names the missing reference.
SELECT pg_temp.register('acme', 'visits', '2026-11-10', 'r10', (SELECT c FROM cols), '[[601, "ghost", "601"]]') AS visits_job;
SELECT pg_temp.register('acme', 'patients', '2026-11-10', 'r10', '[{"name": "NAME", "type": "text"}]', '[["ghost"]]') AS patients_job;
SELECT pg_temp.load(11) > 0 AS loaded;
SELECT pg_temp.stages(11);
SELECT starpipe.fail(12, pg_temp.hold(12), 'source file damaged');
SELECT pg_temp.stages(11);
SELECT status, stage, error FROM starpipe.job WHERE job_id = 11;
