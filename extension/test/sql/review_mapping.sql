-- Review 0.2.0 §5, §13 and §14: a mapping whose gates could not run, or whose promotion could never succeed, is refused.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/review_helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.patients (mrn text PRIMARY KEY, gender text, email text, n integer);
CREATE TABLE production.incl (id integer, name text);
CREATE UNIQUE INDEX incl_id ON production.incl (id) INCLUDE (name);
CREATE TABLE production.deferred (id integer, CONSTRAINT deferred_id UNIQUE (id) DEFERRABLE);
CREATE TABLE production.docs (id integer PRIMARY KEY, body json, at point);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA production TO starpipe_writer;

-- Applies the patients mapping with the given table entry keys merged in; returns the version or the error.
CREATE FUNCTION pg_temp.try(p_entry jsonb, p_table text DEFAULT 'patients') RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN starpipe.apply_mapping(pg_catalog.jsonb_build_object('version', 1, 'client', 'acme', 'target_schema', 'production',
        'tables', pg_catalog.jsonb_build_object(p_table, '{"target": "patients", "conflict_key": ["mrn"],
            "columns": {"mrn": {"from": "MRN"}, "gender": {"from": "GENDER"}, "email": {"from": "EMAIL"}, "n": {"from": "N"}}}'::jsonb
            || p_entry)))::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

-- §5, the review's r6: each of these used to be accepted and then passed every row.
SELECT pg_temp.try('{"checks": [{"accepted_values": {"column": "gender", "values": ["M", "F", null]}}]}');
SELECT pg_temp.try('{"checks": [{"accepted_values": {"column": "gender", "values": []}}]}');
SELECT pg_temp.try('{"checks": [{"accepted_values": {"column": "gender", "values": "M"}}]}');
SELECT pg_temp.try('{"checks": [{"accepted_values": {"column": "gender", "values": [["M"]]}}]}');
SELECT pg_temp.try('{"checks": [{"accepted_values": {"column": "gender", "values": ["M"], "value": ["F"]}}]}');
SELECT pg_temp.try('{"checks": [{"null_fraction": {"column": "email", "max_fraction": 0.1}}]}');
SELECT pg_temp.try('{"checks": [{"null_fraction": {"column": "email"}}]}');
SELECT pg_temp.try('{"checks": [{"null_fraction": {"column": "email", "max": 1.5}}]}');
SELECT pg_temp.try('{"checks": [{"null_fraction": {"column": "email", "max": "0.1"}}]}');
SELECT pg_temp.try('{"checks": [{"not_null": ["mrn"], "unique": ["email"]}]}');
SELECT pg_temp.try('{"checks": [{}]}');
SELECT pg_temp.try('{"checks": [{"min_rows": "abc"}]}');
SELECT pg_temp.try('{"checks": [{"min_rows": -1}]}');
SELECT pg_temp.try('{"checks": [{"min_rows": 1.5}]}');
SELECT pg_temp.try('{"checks": [{"not_null": []}]}');
SELECT pg_temp.try('{"checks": [{"not_null": "mrn"}]}');
SELECT pg_temp.try('{"checks": [{"unique": ["nope"]}]}');
SELECT pg_temp.try('{"checks": ["not_null"]}');
SELECT pg_temp.try('{"checks": {"min_rows": 1}}');
-- §14, the review's r16: order_by entries are {column, desc}.
SELECT pg_temp.try('{"dedup": {"order_by": ["n"]}}');
SELECT pg_temp.try('{"dedup": {"order_by": [{"column": "n", "desc": "yes"}]}}');
SELECT pg_temp.try('{"dedup": {"order_by": [{"column": "n", "descending": true}]}}');
SELECT pg_temp.try('{"dedup": {"order_by": [{"column": "nope"}]}}');
SELECT pg_temp.try('{"dedup": {"order_by": {"column": "n"}}}');
SELECT pg_temp.try('{"dedup": {"order_by": [{"column": "n", "desc": true}], "keep": "last"}}');
-- Well-formed gates and dedup are accepted.
SELECT pg_temp.try('{"checks": [{"accepted_values": {"column": "gender", "values": ["M", "F"]}}, {"null_fraction": {"column": "email", "max": 0.5}},
                    {"not_null": ["mrn", "gender"]}, {"unique": ["email"]}, {"min_rows": 2}],
                    "dedup": {"order_by": [{"column": "n", "desc": true}, {"column": "email"}]}}') AS version;

-- The accepted gates run: every bad row of the review's r6 blocks the job.
\set cols '[{"name": "MRN", "type": "text"}, {"name": "GENDER", "type": "text"}, {"name": "EMAIL", "type": "text"}, {"name": "N", "type": "integer"}]'
SELECT pg_temp.run('acme', 'patients', 'r1', '2026-01-01', :'cols', '[{"MRN": "1", "GENDER": "banana", "EMAIL": null, "N": 1, "_source_row": 1},
    {"MRN": "2", "GENDER": null, "EMAIL": null, "N": 2, "_source_row": 2}, {"MRN": "3", "GENDER": "M", "EMAIL": null, "N": 3, "_source_row": 3}]');
SELECT f->>'rule' AS rule, f->>'column' AS col, f->>'rows' AS rows FROM starpipe.job, jsonb_array_elements(error_detail->'failures') f
 WHERE job_id = 1 ORDER BY 1, 2;
SELECT count(*) AS promoted FROM production.patients;

-- §13, the review's r15 and r13: conflict keys ON CONFLICT cannot use, and columns promotion cannot compare.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"incl": {
  "target": "incl", "conflict_key": ["id", "name"], "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"deferred": {
  "target": "deferred", "conflict_key": ["id"], "columns": {"id": {"from": "id"}}}}}');
CREATE TABLE production.building (id integer);
GRANT SELECT, INSERT, UPDATE ON production.building TO starpipe_writer;
UPDATE pg_index SET indisvalid = false WHERE indexrelid = (SELECT oid FROM pg_class WHERE relname = 'incl_id');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"incl": {
  "target": "incl", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
UPDATE pg_index SET indisvalid = true WHERE indexrelid = (SELECT oid FROM pg_class WHERE relname = 'incl_id');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"incl": {
  "target": "incl", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}') AS version;
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"docs": {
  "target": "docs", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "body": {"from": "body"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"docs": {
  "target": "docs", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "at": {"from": "at"}}}}}');
-- A view is not a table promotion can upsert into.
CREATE VIEW production.patients_v AS SELECT * FROM production.patients;
GRANT SELECT, INSERT, UPDATE ON production.patients_v TO starpipe_writer;
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"patients": {
  "target": "patients_v", "conflict_key": ["mrn"], "columns": {"mrn": {"from": "MRN"}}}}}');

SET client_min_messages = warning;
DROP SCHEMA production, raw_acme CASCADE;
DELETE FROM starpipe.target_schema;
RESET client_min_messages;
