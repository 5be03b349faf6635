-- Issue 10: per-column policies, snapshot order, full-snapshot deletes with the mass-delete guard, manual promotion,
-- the staged digest promote checks, opt-in before/after values, and starpipe.verify.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme, raw_other CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse
-- Keep every raw version and staging table, so that verify can recompute old jobs.
SELECT starpipe.set_setting('raw_keep_promoted_versions', '100');

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
CREATE TABLE production.people (id integer PRIMARY KEY, name text, email text, notes text, ver integer);
CREATE TABLE production.visits (id integer PRIMARY KEY, reason text, deleted_at timestamptz);
CREATE TABLE production.codes (id integer PRIMARY KEY, label text);
CREATE TABLE production.shared (practice text NOT NULL, id integer NOT NULL, label text, PRIMARY KEY (practice, id));
GRANT SELECT, INSERT, UPDATE ON production.people, production.visits TO starpipe_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON production.codes, production.shared TO starpipe_writer;
\set people '[{"name": "id", "type": "integer"}, {"name": "name", "type": "text"}, {"name": "email", "type": "text"}, {"name": "notes", "type": "text"}, {"name": "ver", "type": "integer"}]'
\set pair '[{"name": "id", "type": "integer"}, {"name": "label", "type": "text"}]'
\set visit '[{"name": "id", "type": "integer"}, {"name": "reason", "type": "text"}]'

-- Mapping checks of the new settings, each naming its key.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["id"], "column_policies": {"id": "target_wins"},
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["id"], "column_policies": {"name": "loudest_wins"},
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["id"], "deletes": "soft",
  "columns": {"id": {"from": "id"}, "reason": {"from": "reason"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["id"], "deletes": {"rule": "soft", "column": "reason"},
  "columns": {"id": {"from": "id"}, "reason": {"from": "reason"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["id"], "deletes": {"rule": "hard", "max_fraction": 2},
  "columns": {"id": {"from": "id"}, "reason": {"from": "reason"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["id"], "deletes": "hard",
  "columns": {"id": {"from": "id"}, "reason": {"from": "reason"}}}}}');
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["id"], "version_column": "nope",
  "columns": {"id": {"from": "id"}, "name": {"from": "name"}}}}}');

-- The mapping of this test: one table per rule.
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {
  "people": {"target": "people", "conflict_key": ["id"], "conflict_policy": "source_wins", "audit_values": true,
             "column_policies": {"email": "merge_non_null", "notes": "target_wins"},
             "columns": {"id": {"from": "id"}, "name": {"from": "name"}, "email": {"from": "email"},
                         "notes": {"from": "notes"}, "ver": {"from": "ver"}}},
  "people_v": {"target": "people", "conflict_key": ["id"], "conflict_policy": "newer_wins", "version_column": "ver",
             "column_policies": {"notes": "source_wins"},
             "columns": {"id": {"from": "id"}, "name": {"from": "name"}, "notes": {"from": "notes"}, "ver": {"from": "ver"}}},
  "visits": {"target": "visits", "conflict_key": ["id"], "deletes": {"rule": "soft", "column": "deleted_at", "max_fraction": 0.5},
             "columns": {"id": {"from": "id"}, "reason": {"from": "reason"}}},
  "codes": {"target": "codes", "conflict_key": ["id"], "deletes": {"rule": "hard", "max_fraction": 0.25},
            "columns": {"id": {"from": "id"}, "label": {"from": "label"}}}}}');

CREATE VIEW promotions AS
SELECT job_id, policy, manual, staged, inserted, updated, unchanged, kept, deleted, mode, column_policies, skipped, deletes
  FROM starpipe.promotion;
CREATE VIEW conflicts AS
SELECT job_id, key, changed_columns, applied_columns, policy, applied, source_row, before_values, after_values
  FROM starpipe.conflict;

-- 1. Per-column overrides: name follows source_wins, email merge_non_null, notes target_wins.
SELECT pg_temp.ingest('acme', 'people', '2026-01-01', 'p1', :'people', '[
  [1, "Ann", "ann@x", "n1", 1], [2, "Bob", "bob@x", "n2", 1], [3, "Cy", null, "n3", 1]]');
SELECT pg_temp.ingest('acme', 'people', '2026-01-02', 'p2', :'people', '[
  [1, "Anne", null, "changed", 1], [2, "Bob", "robert@x", "n2", 1], [3, "Cy", null, "n3", 1], [4, "Di", "di@x", null, 1]]');
SELECT * FROM production.people ORDER BY id;
SELECT * FROM conflicts WHERE job_id = 2 ORDER BY source_row;
SELECT * FROM promotions WHERE job_id = 2;

-- 2. newer_wins by version column with a source_wins override: an older version keeps name, yet takes notes.
SELECT pg_temp.ingest('acme', 'people_v', '2026-01-03', 'v1', :'people', '[
  [1, "Old Ann", null, "from v", 0], [2, "Bobby", null, "n2", 2]]');
SELECT id, name, notes, ver FROM production.people WHERE id IN (1, 2) ORDER BY id;
SELECT job_id, key, changed_columns, applied_columns, applied FROM conflicts WHERE job_id = 3 ORDER BY source_row;
SELECT job_id, kept, skipped FROM promotions WHERE job_id = 3;

-- 3. Snapshots A, B, then A again: A is not a duplicate of the newest snapshot (B), so production ends as A.
SELECT pg_temp.ingest('acme', 'codes', '2026-02-01', 'a1', :'pair', '[[1, "alpha"], [2, "beta"], [3, "gamma"], [4, "delta"]]');
SELECT pg_temp.ingest('acme', 'codes', '2026-02-02', 'b1', :'pair', '[[1, "ALPHA"], [2, "beta"], [3, "gamma"], [4, "delta"]]');
SELECT pg_temp.ingest('acme', 'codes', '2026-02-03', 'a2', :'pair', '[[1, "alpha"], [2, "beta"], [3, "gamma"], [4, "delta"]]');
SELECT * FROM production.codes ORDER BY id;

-- 4. Day 2 arrives before day 1: day 1 is applied as an older snapshot and keeps every row day 2 wrote.
SELECT pg_temp.ingest('acme', 'codes', '2026-02-05', 'd2', :'pair', '[[1, "alpha"], [2, "beta 5"], [3, "gamma"], [4, "delta"]]');
SELECT pg_temp.ingest('acme', 'codes', '2026-02-04', 'd1', :'pair', '[[1, "alpha"], [2, "beta 4"], [3, "gamma"], [4, "delta"], [5, "eps"]]');
SELECT * FROM production.codes ORDER BY id;
SELECT job_id, policy, inserted, updated, kept, deleted, skipped, deletes FROM promotions WHERE job_id IN (7, 8) ORDER BY job_id;

-- 5. Hard deletes: a full snapshot without key 5 deletes it (1 of 5 rows, within max_fraction 0.25), audited by key.
SELECT pg_temp.ingest('acme', 'codes', '2026-02-06', 'h1', :'pair', '[[1, "alpha"], [2, "beta 6"], [3, "gamma"], [4, "delta"]]');
SELECT * FROM production.codes ORDER BY id;
SELECT job_id, target, key, rule FROM starpipe.deletion ORDER BY job_id, key;
SELECT job_id, deleted, deletes FROM promotions WHERE job_id = 9;
SELECT rows_deleted FROM starpipe.job WHERE job_id = 9;

-- 6. The mass-delete guard: a snapshot holding 1 of 4 rows (a truncated source table) is BLOCKED, production untouched.
SELECT pg_temp.ingest('acme', 'codes', '2026-02-07', 'trunc', :'pair', '[[1, "alpha"]]');
SELECT status, stage, error, error_detail FROM starpipe.job WHERE job_id = 10;
SELECT count(*) AS codes_left FROM production.codes;
-- A plain manual promotion applies the guard again; the override deletes, and the promotion says who allowed it.
SELECT starpipe.promote(10);
SELECT starpipe.promote_allow_mass_delete(10);
SELECT * FROM production.codes ORDER BY id;
SELECT job_id, manual, deleted, deletes FROM promotions WHERE job_id = 10;
SELECT event, detail ? 'mass_delete_allowed_by' AS override_recorded FROM starpipe.job_event WHERE job_id = 10 ORDER BY event_id;

-- 7. An incremental file never deletes: keys 2..4 come back, and a batch of key 1 alone deletes nothing.
SELECT pg_temp.ingest('acme', 'codes', '2026-02-08', 'full2', :'pair', '[[1, "alpha"], [2, "beta"], [3, "gamma"], [4, "delta"]]');
SELECT pg_temp.ingest('acme', 'codes', '2026-02-09', 'inc1', :'pair', '[[1, "alpha 9"]]', '{"mode": "incremental"}');
SELECT * FROM production.codes ORDER BY id;
SELECT job_id, mode, deleted, deletes FROM promotions WHERE job_id = 12;

-- 8. Soft deletes: a key that leaves the snapshot gets deleted_at (the snapshot's time); when it comes back, it is undeleted.
SELECT pg_temp.ingest('acme', 'visits', '2026-03-01', 's1', :'visit', '[[1, "checkup"], [2, "flu"], [3, "x-ray"], [4, "lab"]]');
SELECT pg_temp.ingest('acme', 'visits', '2026-03-02', 's2', :'visit', '[[1, "checkup"], [2, "flu"], [3, "x-ray"]]',
                      '{"extracted_at": "2026-03-02T07:30:00Z"}');
SELECT * FROM production.visits ORDER BY id;
SELECT pg_temp.ingest('acme', 'visits', '2026-03-03', 's3', :'visit', '[[1, "checkup"], [2, "flu"], [3, "x-ray"], [4, "lab"]]');
SELECT * FROM production.visits ORDER BY id;
SELECT job_id, key, rule FROM starpipe.deletion WHERE job_id >= 13 ORDER BY job_id;
SELECT job_id, key, changed_columns, applied_columns FROM conflicts WHERE job_id = 15;
SELECT job_id, updated, deleted FROM promotions WHERE job_id IN (14, 15) ORDER BY job_id;

-- 9. Deletes scoped by a const column: two practices share one table; each feed deletes only its own rows.
SELECT starpipe.apply_mapping('{"version": 1, "client": "other", "target_schema": "production", "tables": {"shared": {
  "target": "shared", "conflict_key": ["practice", "id"], "deletes": {"rule": "hard", "max_fraction": 1},
  "columns": {"practice": {"const": "B"}, "id": {"from": "id"}, "label": {"from": "label"}}}}}');
INSERT INTO production.shared VALUES ('A', 1, 'a1'), ('A', 2, 'a2');
SELECT pg_temp.ingest('other', 'shared', '2026-04-01', 'b1', :'pair', '[[1, "b1"], [2, "b2"]]');
SELECT pg_temp.ingest('other', 'shared', '2026-04-02', 'b2', :'pair', '[[2, "b2"]]');
SELECT * FROM production.shared ORDER BY practice, id;
-- Without a const column, a second feed of the same table makes deletes unsafe, so the mapping is refused.
SELECT starpipe.apply_mapping('{"version": 1, "client": "third", "target_schema": "production", "tables": {"shared": {
  "target": "shared", "conflict_key": ["practice", "id"], "deletes": "hard",
  "columns": {"practice": {"from": "practice"}, "id": {"from": "id"}, "label": {"from": "label"}}}}}');

-- 10. Manual promotion, and a staging table changed after validation: promote refuses it and fails the job.
SELECT starpipe.apply_mapping((SELECT config || '{"tables": {"codes": {"target": "codes", "conflict_key": ["id"], "promotion": "manual",
  "columns": {"id": {"from": "id"}, "label": {"from": "label"}}}}}' FROM starpipe.mapping WHERE client = 'acme' ORDER BY version DESC LIMIT 1));
SELECT pg_temp.ingest('acme', 'codes', '2026-02-10', 'm1', :'pair', '[[1, "alpha 10"], [2, "beta"], [3, "gamma"], [4, "delta"]]');
SELECT status, stage, error FROM starpipe.job WHERE job_id = 18;
SELECT starpipe.promote(18);
SELECT job_id, manual, updated FROM promotions WHERE job_id = 18;
SELECT pg_temp.ingest('acme', 'codes', '2026-02-11', 'm2', :'pair', '[[1, "alpha 11"], [2, "beta"], [3, "gamma"], [4, "delta"]]');
UPDATE starpipe_staging.codes__19 SET label = 'tampered' WHERE id = 2;
SELECT starpipe.promote(19);
SELECT status, stage, error FROM starpipe.job WHERE job_id = 19;
SELECT label FROM production.codes WHERE id IN (1, 2) ORDER BY id;

-- 11. verify: every stage agrees, also for a job whose keys a later promotion changed (its conflict rows carry the
-- hash of what it replaced) or deleted; a row changed by hand is found by source row, for every job it belongs to.
SELECT stage, recorded = recomputed AS same, agrees, detail - 'raw_version' - 'staging' AS detail FROM starpipe.verify(18);
SELECT stage, agrees, detail->'changed_by_later_jobs' AS later FROM starpipe.verify(7);
SELECT pg_temp.ingest('acme', 'codes', '2026-02-12', 'm3', :'pair', '[[1, "alpha 12"], [2, "beta"], [3, "gamma"], [4, "delta"]]');
SELECT starpipe.promote(20);
SELECT stage, agrees, detail->'changed_by_later_jobs' AS later FROM starpipe.verify(18);
UPDATE production.codes SET label = 'by hand' WHERE id = 3;
SELECT stage, agrees, detail->'differing_rows' AS differing, detail->'sample_source_rows' AS rows FROM starpipe.verify(18);
SELECT stage, agrees, detail->'differing_rows' AS differing FROM starpipe.verify(20);
DELETE FROM production.codes WHERE id = 4;
SELECT stage, agrees, detail->'missing_rows' AS missing, detail->'sample_source_rows' AS rows FROM starpipe.verify(20);
-- Raw changed in place is caught at its own stage.
UPDATE raw_acme.codes__20 SET label = 'edited raw' WHERE id = 1;
SELECT stage, agrees FROM starpipe.verify(20);
-- A job that never reached production says why; a tampered staging table stays caught.
SELECT stage, agrees, detail->>'reason' AS reason FROM starpipe.verify(19);
-- verify is for admins.
SET ROLE starpipe_worker;
SELECT * FROM starpipe.verify(18);
RESET ROLE;

-- 12. The other table policies with per-column overrides, and newer_wins by snapshot order (no version column).
CREATE TABLE production.policy_t (id integer PRIMARY KEY, a text, b text, c text);
GRANT SELECT, INSERT, UPDATE ON production.policy_t TO starpipe_writer;
INSERT INTO production.policy_t VALUES (1, 'a1', 'b1', 'c1'), (2, 'a2', 'b2', 'c2'), (3, 'a3', 'b3', 'c3');
\set abc '[{"name": "id", "type": "integer"}, {"name": "a", "type": "text"}, {"name": "b", "type": "text"}, {"name": "c", "type": "text"}]'
SELECT starpipe.apply_mapping('{"version": 1, "client": "pol", "target_schema": "production", "tables": {
  "tw": {"target": "policy_t", "conflict_key": ["id"], "conflict_policy": "target_wins", "column_policies": {"a": "source_wins"},
         "columns": {"id": {"from": "id"}, "a": {"from": "a"}, "b": {"from": "b"}, "c": {"from": "c"}}},
  "mn": {"target": "policy_t", "conflict_key": ["id"], "conflict_policy": "merge_non_null",
         "column_policies": {"b": "target_wins", "c": "source_wins"},
         "columns": {"id": {"from": "id"}, "a": {"from": "a"}, "b": {"from": "b"}, "c": {"from": "c"}}},
  "nw": {"target": "policy_t", "conflict_key": ["id"], "conflict_policy": "newer_wins",
         "columns": {"id": {"from": "id"}, "a": {"from": "a"}, "b": {"from": "b"}, "c": {"from": "c"}}}}}');
-- target_wins except a: row 1 takes a, keeps b; row 2 differs only in b and is kept whole.
SELECT pg_temp.ingest('pol', 'tw', '2026-05-01', 't1', :'abc', '[[1, "A1", "B1", "c1"], [2, "a2", "B2", "c2"]]');
SELECT * FROM production.policy_t ORDER BY id;
SELECT key, changed_columns, applied_columns, applied FROM conflicts WHERE job_id = 21 ORDER BY source_row;
SELECT kept, skipped FROM promotions WHERE job_id = 21;
-- merge_non_null except b (target_wins) and c (source_wins): a NULL keeps a, b is kept, a NULL c is written.
SELECT pg_temp.ingest('pol', 'mn', '2026-05-02', 'm1', :'abc', '[[3, null, "B3", null]]');
SELECT * FROM production.policy_t WHERE id = 3;
SELECT key, changed_columns, applied_columns FROM conflicts WHERE job_id = 22;
-- newer_wins without a version column: a newer snapshot replaces the row.
SELECT pg_temp.ingest('pol', 'nw', '2026-05-03', 'n1', :'abc', '[[2, "new a", "new b", "new c"]]');
SELECT * FROM production.policy_t WHERE id = 2;
SELECT stage, agrees FROM starpipe.verify(22);

-- 13. An incremental batch older than a promoted job of its table is BLOCKED (older_incremental), nothing written:
-- applied as an older snapshot it would keep every production row, and so drop its change to key 3 unseen. By hand
-- it is applied as an older snapshot, knowingly (row 3 kept, the kept row audited).
SELECT pg_temp.ingest('pol', 'nw', '2026-05-02', 'late', :'abc', '[[3, "late a", "late b", "late c"]]', '{"mode": "incremental"}');
SELECT status, stage, error, error_detail FROM starpipe.job WHERE job_id = 24;
SELECT event, detail FROM starpipe.job_event WHERE job_id = 24 AND event = 'older_incremental';
SELECT * FROM production.policy_t WHERE id = 3;
SELECT starpipe.promote(24);
SELECT status, stage FROM starpipe.job WHERE job_id = 24;
SELECT * FROM production.policy_t WHERE id = 3;
SELECT kept, skipped FROM promotions WHERE job_id = 24;
