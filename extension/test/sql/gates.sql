-- Drift, bad values, failing gates, conflicts and manual promotion.
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
CREATE TABLE production.people (
    person_id  integer PRIMARY KEY,
    born       date NOT NULL,
    kind       text,
    score      numeric(5, 1)
);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"],
  "columns": {"person_id": {"from": "ID"}, "born": {"from": "BORN"}, "kind": {"from": "KIND", "clean": ["trim", "lower"]},
              "score": {"from": "SCORE"}},
  "checks": [{"accepted_values": {"column": "kind", "values": ["a", "b"]}}]}}}');

-- Registers a manifest for people with the given run id, date and columns; returns the job id.
CREATE FUNCTION pg_temp.job(p_run text, p_date text, p_columns jsonb, p_rows int) RETURNS bigint LANGUAGE sql AS $$
    SELECT job_id FROM starpipe.register(pg_temp.manifest('acme', 'people', p_date, p_run, p_columns, '[]',
        pg_catalog.jsonb_build_object('format', 'json_array', 'row_count', p_rows, 'byte_count', 10,
                                      'sha256', pg_catalog.encode(pg_catalog.sha256(p_run::bytea), 'hex'))), 'm/' || p_run, 'd/' || p_run);
$$;
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "BORN", "type": "text"},
    {"name": "KIND", "type": "text"}, {"name": "SCORE", "type": "text"}]'::jsonb AS c;

-- 1. A good snapshot.
SELECT pg_temp.job('r1', '2026-11-01', (SELECT c FROM cols), 2);
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(1, 1) IS NOT NULL AS began;
COPY raw_acme._load_1_1 ("ID", "BORN", "KIND", "SCORE", _source_row) FROM stdin;
1	2000-01-01	 A 	1.5	1
2	2001-02-03	b	2	2
\.
SELECT starpipe.finish_raw(1, 1, 2, 10, encode(sha256('r1'::bytea), 'hex'));
SELECT starpipe.transform(1, 1), starpipe.validate(1, 1), starpipe.promote(1, 1);

-- 2. A value that cannot become a date fails with row and column, not the value.
SELECT pg_temp.job('r2', '2026-11-02', (SELECT c FROM cols), 2);
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(2, 2) IS NOT NULL AS began;
COPY raw_acme._load_2_2 ("ID", "BORN", "KIND", "SCORE", _source_row) FROM stdin;
1	2000-01-01	a	1.5	1
3	SECRET-VALUE	a	1	2
\.
SELECT starpipe.finish_raw(2, 2, 2, 10, encode(sha256('r2'::bytea), 'hex'));
SELECT starpipe.transform(2, 2);
SELECT status, error, error_detail->>'column' AS col, error_detail->>'source_row' AS row FROM starpipe.job WHERE job_id = 2;

-- 3. A failing gate blocks with the rule and sample rows; production is untouched.
SELECT pg_temp.job('r3', '2026-11-03', (SELECT c FROM cols), 2);
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(3, 3) IS NOT NULL AS began;
COPY raw_acme._load_3_3 ("ID", "BORN", "KIND", "SCORE", _source_row) FROM stdin;
1	2000-01-01	z	1.5	1
2	2001-02-03	b	2	2
\.
SELECT starpipe.finish_raw(3, 3, 2, 10, encode(sha256('r3'::bytea), 'hex'));
SELECT starpipe.transform(3, 3), starpipe.validate(3, 3);
SELECT status, stage, error FROM starpipe.job WHERE job_id = 3;

-- A blocked job of a table holds back later snapshots of that table.
SELECT pg_temp.job('r4', '2026-11-04', '[{"name": "ID", "type": "integer"}, {"name": "DOB", "type": "text"},
    {"name": "KIND", "type": "text"}, {"name": "SCORE", "type": "text"}]', 1);
SELECT count(*) AS claimable FROM starpipe.claim('w');

-- 4. The operator fixes the gate (accepts z) and retries; the update is audited as a conflict.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"], "promotion": "manual",
  "columns": {"person_id": {"from": "ID"}, "born": {"from": "BORN"}, "kind": {"from": "KIND", "clean": ["trim", "lower"]},
              "score": {"from": "SCORE"}},
  "checks": [{"accepted_values": {"column": "kind", "values": ["a", "b", "z"]}}]}}}');
SELECT starpipe.retry(3);
SELECT job_id, fence, stage FROM starpipe.claim('w');
SELECT starpipe.transform(3, 4), starpipe.validate(3, 4);
SELECT status, stage, error FROM starpipe.job WHERE job_id = 3;
SELECT starpipe.promote(3);
SELECT * FROM production.people ORDER BY person_id;
SELECT target, key, changed_columns, policy, source_row FROM starpipe.conflict ORDER BY conflict_id;

-- 5. The renamed column (BORN -> DOB) blocks before transform, naming both.
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(4, 5) IS NOT NULL AS began;
COPY raw_acme._load_4_5 ("ID", "DOB", "KIND", "SCORE", _source_row) FROM stdin;
5	2000-01-01	a	1	1
\.
SELECT starpipe.finish_raw(4, 5, 1, 10, encode(sha256('r4'::bytea), 'hex'));
SELECT starpipe.transform(4, 5);
SELECT status, stage, error, error_detail->'missing_columns' AS missing FROM starpipe.job WHERE job_id = 4;
SELECT count(*) AS people FROM production.people;
