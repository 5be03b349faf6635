-- Review 0.2.0 §7 (repro r10): a retyped mapped column is covered only by accept_schema or by a change to the
-- mapping of that column's table, never by an unrelated mapping edit.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/review_helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.v (id integer PRIMARY KEY, seen date);
CREATE TABLE production.other (id integer PRIMARY KEY, x text);
CREATE TABLE production.late (id integer PRIMARY KEY, seen date);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA production TO starpipe_writer;
\set m1 '{"version": 1, "client": "acme", "target_schema": "production", "tables": {"v": {"target": "v", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "seen": {"from": "seen"}}}, "other": {"target": "other", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "x": {"from": "x"}}}}}'
\set date_cols '[{"name": "id", "type": "integer"}, {"name": "seen", "type": "date"}]'
\set ts_cols '[{"name": "id", "type": "integer"}, {"name": "seen", "type": "timestamp without time zone"}]'
SELECT starpipe.apply_mapping(:'m1');
SELECT pg_temp.run('acme', 'v', 'r1', '2026-01-01', :'date_cols', '[{"id": 1, "seen": "2026-01-01", "_source_row": 1}]');
-- The source retypes "seen" (date -> timestamp): blocked.
SELECT pg_temp.run('acme', 'v', 'r2', '2026-01-02', :'ts_cols', '[{"id": 2, "seen": "2026-01-02 23:59:00", "_source_row": 1}]');
SELECT job_id, status, error_detail->'retyped_columns' AS retyped FROM starpipe.job WHERE job_id = 2;
-- An unrelated edit to another table's mapping (a new client mapping version) does not cover it.
SELECT starpipe.apply_mapping(jsonb_set(:'m1'::jsonb, '{tables,other,checks}', '[{"min_rows": 1}]')) AS version;
SELECT starpipe.retry(2);
SELECT pg_temp.finish(2);
-- Nor does an edit of v's entry that leaves the retyped column's spec as it was.
SELECT starpipe.apply_mapping(jsonb_set(jsonb_set(:'m1'::jsonb, '{tables,other,checks}', '[{"min_rows": 1}]'),
                                        '{tables,v,checks}', '[{"min_rows": 1}]')) AS version;
SELECT starpipe.retry(2);
SELECT pg_temp.finish(2);
SELECT * FROM production.v ORDER BY id;
-- A change to the spec of the column mapped from "seen" covers it.
SELECT starpipe.apply_mapping(jsonb_set(jsonb_set(:'m1'::jsonb, '{tables,other,checks}', '[{"min_rows": 1}]'),
                                        '{tables,v,columns,seen}', '{"from": "seen", "type": "timestamp"}')) AS version;
SELECT starpipe.retry(2);
SELECT pg_temp.finish(2);
SELECT * FROM production.v ORDER BY id;

-- A schema first seen before the table had a mapping: a mapping alone never covers its retype; accept_schema does.
SELECT pg_temp.run('acme', 'late', 'r1', '2026-01-01', :'date_cols', '[{"id": 1, "seen": "2026-01-01", "_source_row": 1}]');
SELECT pg_temp.run('acme', 'late', 'r2', '2026-01-02', :'ts_cols', '[{"id": 2, "seen": "2026-01-02 23:59:00", "_source_row": 1}]');
SELECT job_id, status, stage FROM starpipe.job WHERE table_name = 'late' ORDER BY job_id;
SELECT starpipe.apply_mapping(jsonb_set(:'m1'::jsonb, '{tables,late}',
    '{"target": "late", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "seen": {"from": "seen"}}}')) AS version;
SELECT pg_temp.run('acme', 'late', 'r3', '2026-01-03', :'ts_cols', '[{"id": 3, "seen": "2026-01-03 23:59:00", "_source_row": 1}]');
SELECT job_id, status, error_detail->'retyped_columns' AS retyped FROM starpipe.job WHERE table_name = 'late' AND run_id = 'r3';
SELECT version, mapping_version FROM starpipe.schema_version WHERE table_name = 'late' ORDER BY version;
SELECT starpipe.accept_schema('acme', 'late', 2);
SELECT starpipe.retry(job_id) FROM starpipe.job WHERE table_name = 'late' AND run_id = 'r3';
SELECT pg_temp.finish(job_id) FROM starpipe.job WHERE table_name = 'late' AND run_id = 'r3';
SELECT * FROM production.late ORDER BY id;

SET client_min_messages = warning;
DROP SCHEMA production, raw_acme CASCADE;
DELETE FROM starpipe.target_schema;
RESET client_min_messages;
