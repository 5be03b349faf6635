-- Issue 10: the promotion audit row (starpipe.promotion), one per promoted job in the promotion's transaction:
-- inserted, updated, unchanged and kept counts under every policy, with fence, actor and mapping version.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/review_helpers.psql
\set VERBOSITY terse

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.p (id integer PRIMARY KEY, name text, ver integer,
                           inserts integer NOT NULL DEFAULT 0, touched integer NOT NULL DEFAULT 0);
-- Production refuses a row in a trigger (a CHECK constraint would be enforced in staging, before promotion).
CREATE FUNCTION production.refuse() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF NEW.name = 'forbidden' THEN
        RAISE EXCEPTION 'production refuses this row' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $f$;
CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON production.p FOR EACH ROW EXECUTE FUNCTION production.refuse();
-- Count what promotion makes production run: an insert trigger per row inserted, an update trigger per row rewritten.
CREATE FUNCTION production.on_insert() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW.inserts := 1; RETURN NEW; END $f$;
CREATE FUNCTION production.on_update() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN NEW.touched := OLD.touched + 1; RETURN NEW; END $f$;
GRANT SELECT, INSERT, UPDATE ON production.p TO starpipe_writer;
INSERT INTO production.p (id, name, ver) VALUES (1, 'Bob', 1), (2, 'Ann', 1), (3, 'Cy', 1);
CREATE TRIGGER on_insert BEFORE INSERT ON production.p FOR EACH ROW EXECUTE FUNCTION production.on_insert();
CREATE TRIGGER on_update BEFORE UPDATE ON production.p FOR EACH ROW EXECUTE FUNCTION production.on_update();
\set cols '[{"name": "id", "type": "integer"}, {"name": "name", "type": "text"}, {"name": "ver", "type": "integer"}]'
CREATE VIEW promotions AS
SELECT job_id, target, policy, mapping_version, fence, actor = SESSION_USER AS actor_is_session_user, manual,
       staged, inserted, updated, unchanged, kept
  FROM starpipe.promotion p;

-- source_wins: 1 unchanged, 2 changed, 4 and 5 new. Only new rows fire the insert trigger, only 2 is rewritten.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"],
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}, "ver": {"from": "ver"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r1', '2026-01-01', :'cols', '[
  {"id": 1, "name": "Bob", "ver": 1, "_source_row": 1}, {"id": 2, "name": "Annie", "ver": 2, "_source_row": 2},
  {"id": 4, "name": "Di", "ver": 1, "_source_row": 3}, {"id": 5, "name": null, "ver": null, "_source_row": 4}]');
SELECT * FROM promotions ORDER BY job_id;
SELECT * FROM production.p ORDER BY id;
SELECT job_id, key, changed_columns, policy, applied FROM starpipe.conflict ORDER BY conflict_id;
SELECT rows_inserted, rows_updated FROM starpipe.job WHERE job_id = 1;

-- The same rows again (another run): all unchanged, nothing written, no trigger fired.
SELECT pg_temp.run('acme', 'p', 'r2', '2026-01-02', :'cols', '[
  {"id": 1, "name": "Bob", "ver": 1, "_source_row": 1}, {"id": 2, "name": "Annie", "ver": 2, "_source_row": 2},
  {"id": 4, "name": "Di", "ver": 1, "_source_row": 3}, {"id": 5, "name": null, "ver": null, "_source_row": 4}]');
SELECT * FROM promotions WHERE job_id = 2;
SELECT id, inserts, touched FROM production.p ORDER BY id;
-- A second promote of a promoted job is a no-op: still one promotion row.
SELECT starpipe.promote(2, (SELECT fence FROM starpipe.job WHERE job_id = 2));
SELECT count(*) FROM starpipe.promotion WHERE job_id = 2;

-- merge_non_null: a staged NULL merges back to production's value, so 1 is unchanged; 2 changes name only.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "conflict_policy": "merge_non_null",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}, "ver": {"from": "ver"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r3', '2026-01-03', :'cols', '[
  {"id": 1, "name": null, "ver": null, "_source_row": 1}, {"id": 2, "name": "Anne", "ver": null, "_source_row": 2}]');
SELECT * FROM promotions WHERE job_id = 3;
SELECT job_id, key, changed_columns, policy, applied FROM starpipe.conflict WHERE job_id = 3 ORDER BY conflict_id;

-- newer_wins: 1 has an older version (kept), 2 a NULL one (kept), 3 a newer one (updated), 4 the same (unchanged).
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "conflict_policy": "newer_wins", "version_column": "ver",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}, "ver": {"from": "ver"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r4', '2026-01-04', :'cols', '[
  {"id": 1, "name": "Bobby", "ver": 0, "_source_row": 1}, {"id": 2, "name": "Anna", "ver": null, "_source_row": 2},
  {"id": 3, "name": "Cyrus", "ver": 2, "_source_row": 3}, {"id": 4, "name": "Di", "ver": 1, "_source_row": 4}]');
SELECT * FROM promotions WHERE job_id = 4;
SELECT job_id, key, changed_columns, policy, applied FROM starpipe.conflict WHERE job_id = 4 ORDER BY conflict_id;

-- target_wins: every differing row is kept, new keys are inserted.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "conflict_policy": "target_wins",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r5', '2026-01-05', :'cols', '[
  {"id": 1, "name": "Robert", "ver": null, "_source_row": 1}, {"id": 3, "name": "Cyrus", "ver": null, "_source_row": 2},
  {"id": 6, "name": "Flo", "ver": null, "_source_row": 3}]');
SELECT * FROM promotions WHERE job_id = 5;

-- An older snapshot arriving late (source_wins mapping) only inserts missing keys and keeps the rest.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r6', '2025-12-01', :'cols', '[
  {"id": 1, "name": "Old Bob", "ver": null, "_source_row": 1}, {"id": 2, "name": "Anne", "ver": null, "_source_row": 2},
  {"id": 7, "name": "Gus", "ver": null, "_source_row": 3}]');
SELECT * FROM promotions WHERE job_id = 6;

-- A mapping of the key alone: existing keys are unchanged, new ones inserted.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "columns": {"id": {"from": "id"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r7', '2026-01-07', :'cols', '[
  {"id": 1, "name": null, "ver": null, "_source_row": 1}, {"id": 8, "name": null, "ver": null, "_source_row": 2}]');
SELECT * FROM promotions WHERE job_id = 7;

-- Manual promotion: recorded as manual, with the job's fence and the admin's session.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "promotion": "manual",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT pg_temp.run('acme', 'p', 'r8', '2026-01-08', :'cols', '[{"id": 8, "name": "Hal", "ver": null, "_source_row": 1}]');
SELECT starpipe.promote(8);
SELECT * FROM promotions WHERE job_id = 8;

-- A promotion that fails in production (its trigger refuses a row) leaves no promotion row, no conflict row, no change.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"p": {
  "target": "p", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT pg_temp.load('acme', 'p', 'r9', '2026-01-09', :'cols', '[
  {"id": 1, "name": "forbidden", "ver": null, "_source_row": 1}, {"id": 9, "name": "Ivy", "ver": null, "_source_row": 2}]');
SELECT starpipe.transform(9, 9), starpipe.validate(9, 9);
SELECT starpipe.promote(9, 9);
SELECT count(*) AS promotion_rows, (SELECT count(*) FROM starpipe.conflict WHERE job_id = 9) AS conflict_rows
  FROM starpipe.promotion WHERE job_id = 9;
SELECT status, stage FROM starpipe.job WHERE job_id = 9;
SELECT count(*) AS id_9 FROM production.p WHERE id = 9;

-- Totals always add up to the staged rows.
SELECT job_id FROM starpipe.promotion WHERE staged <> inserted + updated + unchanged + kept;
-- Conflict rows of every promoted job belong to its promotion row.
SELECT count(*) FROM starpipe.conflict c WHERE NOT EXISTS (SELECT 1 FROM starpipe.promotion p WHERE p.job_id = c.job_id);
