-- Review 0.2.0 §6 (repro r5): conflict policies do what they say, and rows a policy keeps are audited as kept.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/review_helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.p (id integer PRIMARY KEY, name text, phone text, ver integer, touched integer NOT NULL DEFAULT 0);
-- Counts every rewrite of a row.
CREATE FUNCTION production.bump() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $f$;
CREATE TRIGGER bump BEFORE UPDATE ON production.p FOR EACH ROW EXECUTE FUNCTION production.bump();
GRANT SELECT, INSERT, UPDATE ON production.p TO starpipe_writer;
INSERT INTO production.p VALUES (1, 'Bob', '555', NULL), (2, 'Ann', '777', 3), (3, 'Cy', '111', 5), (4, 'Di', '222', 5);
\set cols '[{"name": "id", "type": "integer"}, {"name": "name", "type": "text"}, {"name": "phone", "type": "text"}, {"name": "ver", "type": "integer"}]'

-- newer_wins: a staged non-NULL version beats a NULL production version (1); a NULL staged version never
-- overwrites (2); an older version is kept (3); a newer one applies (4); a new key is inserted (5).
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "conflict_policy": "newer_wins", "version_column": "ver",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}, "phone": {"from": "phone"}, "ver": {"from": "ver"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r1', '2026-01-01', :'cols', '[
  {"id": 1, "name": "Robert", "phone": "555", "ver": 9, "_source_row": 1},
  {"id": 2, "name": "Annie", "phone": "777", "ver": null, "_source_row": 2},
  {"id": 3, "name": "Cyrus", "phone": "111", "ver": 4, "_source_row": 3},
  {"id": 4, "name": "Diana", "phone": "222", "ver": 6, "_source_row": 4},
  {"id": 5, "name": "Eve", "phone": "333", "ver": null, "_source_row": 5}]');
SELECT * FROM production.p ORDER BY id;
SELECT job_id, rows_inserted, rows_updated FROM starpipe.job WHERE job_id = 1;
SELECT e.detail->'inserted' AS inserted, e.detail->'updated' AS updated, e.detail->'kept' AS kept, e.detail->'conflicts' AS conflicts
  FROM starpipe.job_event e WHERE e.job_id = 1 AND e.event = 'promoted';
SELECT key, changed_columns, policy, applied FROM starpipe.conflict WHERE job_id = 1 ORDER BY conflict_id;

-- merge_non_null: a staged NULL keeps the production value, and a row whose merged value equals production is
-- neither rewritten (the trigger counts touches) nor counted nor audited, however often it is delivered.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "conflict_policy": "merge_non_null",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}, "phone": {"from": "phone"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r2', '2026-01-02', :'cols', '[{"id": 2, "name": "Ann", "phone": null, "ver": null, "_source_row": 1},
  {"id": 3, "name": null, "phone": "999", "ver": null, "_source_row": 2}]');
SELECT pg_temp.run('acme', 'p', 'r3', '2026-01-03', :'cols', '[{"id": 2, "name": "Ann", "phone": null, "ver": null, "_source_row": 1},
  {"id": 3, "name": null, "phone": "999", "ver": null, "_source_row": 2}]');
SELECT * FROM production.p WHERE id IN (2, 3) ORDER BY id;
SELECT job_id, rows_inserted, rows_updated FROM starpipe.job WHERE job_id IN (2, 3) ORDER BY 1;
SELECT job_id, key, changed_columns, policy, applied FROM starpipe.conflict WHERE job_id IN (2, 3) ORDER BY conflict_id;

-- target_wins keeps every differing row and audits it as kept.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "conflict_policy": "target_wins",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r4', '2026-01-04', :'cols', '[{"id": 2, "name": "Anne", "phone": null, "ver": null, "_source_row": 1},
  {"id": 3, "name": "Cy", "phone": null, "ver": null, "_source_row": 2}]');
SELECT job_id, rows_inserted, rows_updated FROM starpipe.job WHERE job_id = 4;
SELECT e.detail->'updated' AS updated, e.detail->'kept' AS kept FROM starpipe.job_event e WHERE e.job_id = 4 AND e.event = 'promoted';
SELECT key, changed_columns, policy, applied FROM starpipe.conflict WHERE job_id = 4 ORDER BY conflict_id;
SELECT id, name, touched FROM production.p ORDER BY id;

SET client_min_messages = warning;
DROP SCHEMA production, raw_acme CASCADE;
DELETE FROM starpipe.target_schema;
RESET client_min_messages;
