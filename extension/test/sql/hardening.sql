-- The review of 0.2.0: idle waits follow claim's rules, extracted_at is an instant, retried stages answer, raw rows
-- are counted, char(n)/bit(n) hold no lock during a load, reserved and foreign names are refused, READ COMMITTED only.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme, raw_beta, raw_gamma CASCADE;
DROP ROLE IF EXISTS sp_hardening_other;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
CREATE SCHEMA production;
CREATE TABLE production.visits (visit_id integer PRIMARY KEY, state text);
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA production TO starpipe_writer;
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["visit_id"], "columns": {"visit_id": {"from": "ID"}, "state": {"from": "STATE"}},
  "checks": [{"min_rows": 2}]}}}');
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "STATE", "type": "text"}]'::jsonb AS c;

-- 1. next_claimable_at uses claim's rules: day 2 waits behind a BLOCKED day 1, so nothing becomes claimable
--    without an event (NULL, not "now"), and claim agrees.
SELECT pg_temp.ingest('acme', 'visits', '2026-01-01', 'd1', (SELECT c FROM cols), '[[1, "a"]]');
SELECT pg_temp.register('acme', 'visits', '2026-01-02', 'd2', (SELECT c FROM cols), '[[1, "a"], [2, "b"]]');
SELECT starpipe.next_claimable_at() IS NULL AS nothing_claimable, (SELECT count(*) FROM starpipe.claim('w')) AS claimed;
-- A busy client: its other table's job becomes claimable when the busy job's lease runs out, not now.
SELECT pg_temp.register('acme', 'notes', '2026-01-01', 'n1', (SELECT c FROM cols), '[[1, "n"]]');
SELECT starpipe.retry(1);
SELECT job_id FROM starpipe.claim('w', '1 hour');
SELECT starpipe.next_claimable_at() BETWEEN now() + interval '59 minutes' AND now() + interval '61 minutes' AS at_lease_end,
       (SELECT count(*) FROM starpipe.claim('w')) AS claimed;
-- Once the busy job is given back (nacked, so it waits out a backoff), the other table's job is claimable now.
SELECT starpipe.nack(1, (SELECT fence FROM starpipe.job WHERE job_id = 1), 'blip');
SELECT starpipe.next_claimable_at() <= now() AS notes_now, (SELECT job_id FROM starpipe.claim('w')) AS claimed;
-- (acme's jobs are parked, so the steps below claim only what they register)
UPDATE starpipe.job SET status = 'FAILED', fence = NULL, lease_until = NULL WHERE client = 'acme';

-- 2. extracted_at must be an RFC 3339 instant with an offset: unparsable, offset-less and special values are refused.
SELECT v AS extracted_at, starpipe._is_rfc3339(to_jsonb(v)) AS accepted
  FROM unnest(ARRAY['2026-01-01T08:00:00Z', '2026-01-01T09:00:00.123456+01:00', '2026-01-01t08:00:00z',
                    '2026-01-01T20:00:00Z[UTC]', '2026-01-01T08:00:00', '2026-01-01 08:00:00Z', 'now', 'infinity',
                    '1767225600', '2026-02-30T08:00:00Z', '2026-01-01T25:00:00Z']) AS v;
SELECT starpipe.register(pg_temp.manifest('beta', 'visits', '2026-01-01', 'x1', (SELECT c FROM cols), '[]', '{"extracted_at": "now"}'), 'm', 'd');
SELECT starpipe.register(pg_temp.manifest('beta', 'visits', '2026-01-01', 'x1', (SELECT c FROM cols), '[]', '{"extracted_at": 1767225600}'), 'm', 'd');
-- Its value does not depend on the session's time zone.
SET TimeZone = 'America/New_York';
SELECT pg_temp.register('beta', 'tz', '2026-01-01', 't1', (SELECT c FROM cols), '[]', '{"extracted_at": "2026-01-01T09:00:00+01:00"}') AS job \gset
SELECT starpipe._extracted_at(j) = timestamptz '2026-01-01 08:00:00+00' AS same_instant FROM starpipe.job j WHERE j.job_id = :job;
RESET TimeZone;
UPDATE starpipe.job SET status = 'FAILED' WHERE job_id = :job;

-- 3. A validate or finish_raw retried after its COMMIT reply was lost answers with its result instead of SP001.
SELECT pg_temp.register('beta', 'visits', '2026-01-01', 'b1', (SELECT c FROM cols), '[[1, "a"], [2, "b"]]') AS job \gset
SELECT pg_temp.load(:job) AS fence \gset
SELECT starpipe.finish_raw(:job, :fence, 2, (SELECT byte_count FROM starpipe.job WHERE job_id = :job),
                           (SELECT sha256 FROM starpipe.job WHERE job_id = :job)) AS finish_again;
SELECT starpipe.apply_mapping('{"version": 1, "client": "beta", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["visit_id"], "columns": {"visit_id": {"from": "ID"}, "state": {"from": "STATE"}}}}}');
SELECT starpipe.transform(:job, :fence), starpipe.validate(:job, :fence) AS validate, starpipe.validate(:job, :fence) AS validate_again;
SELECT starpipe.promote(:job, :fence);

-- 4. finish_raw counts what the load table holds: rows of a rolled-back subtransaction are not counted.
SELECT pg_temp.register('beta', 'visits', '2026-01-02', 'b2', (SELECT c FROM cols), '[[1, "a"], [2, "b"], [3, "c"]]') AS job \gset
SELECT pg_temp.hold(:job) AS fence \gset
BEGIN;
SELECT load_table FROM starpipe.begin_raw(:job, :fence) \gset
SAVEPOINT s;
INSERT INTO :load_table ("ID", "STATE", _source_row) VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3);
ROLLBACK TO s;
SELECT starpipe.finish_raw(:job, :fence, 3, (SELECT byte_count FROM starpipe.job WHERE job_id = :job),
                           (SELECT sha256 FROM starpipe.job WHERE job_id = :job));
ROLLBACK;
SELECT starpipe.release(:job, :fence);
UPDATE starpipe.job SET status = 'FAILED' WHERE job_id = :job;

-- 5. char(n) and bit(n) land as text and bit varying: the parent converges, so begin_raw runs no DDL on it.
SELECT starpipe._raw_type('character(2)') AS char2, starpipe._raw_type('bit(4)') AS bit4, starpipe._raw_type('character varying(5)') AS varchar5;
SELECT starpipe._raw_type('character(3)[]') AS char3_array, starpipe._raw_type('bit(4)[]') AS bit4_array,
       starpipe._raw_type('numeric(10,2)[]') AS numeric_array, starpipe._raw_type('public.mood[]') AS enum_array;
SELECT pg_temp.register('beta', 'addr', '2026-01-01', 'a1', '[{"name": "ST", "type": "character(2)"}, {"name": "FLAGS", "type": "bit(4)"}]',
                        '[["NY", "1010"]]') AS job \gset
SELECT pg_temp.load(:job) > 0 AS loaded;
UPDATE starpipe.job SET status = 'FAILED' WHERE job_id = :job;
SELECT pg_temp.register('beta', 'addr', '2026-01-02', 'a2', '[{"name": "ST", "type": "character(2)"}, {"name": "FLAGS", "type": "bit(4)"}]',
                        '[["CA", "0101"]]') AS job \gset
SELECT pg_temp.hold(:job) AS fence \gset
SELECT starpipe.prepare_raw(:job, :fence);
BEGIN;
SELECT load_table FROM starpipe.begin_raw(:job, :fence);
SELECT l.mode FROM pg_locks l WHERE l.relation = 'raw_beta.addr'::regclass AND l.pid = pg_backend_pid() ORDER BY 1;
ROLLBACK;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
 WHERE a.attrelid = 'raw_beta.addr'::regclass AND a.attnum > 0 AND a.attname IN ('ST', 'FLAGS') ORDER BY 1;

-- 6. Reserved names: a table named like a loading table is refused; a raw schema another role made is not adopted.
SELECT starpipe.register(pg_temp.manifest('beta', '_load_1_2', '2026-01-01', 'r', (SELECT c FROM cols), '[]'), 'm', 'd');
CREATE ROLE sp_hardening_other;
CREATE SCHEMA raw_gamma AUTHORIZATION sp_hardening_other;
SELECT pg_temp.register('gamma', 'visits', '2026-01-01', 'g1', (SELECT c FROM cols), '[[1, "a"]]') AS job \gset
SELECT starpipe.prepare_raw(:job, pg_temp.hold(:job));

-- 7. register and promote refuse to decide under REPEATABLE READ, whose snapshot predates their locks.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT starpipe.register(pg_temp.manifest('beta', 'visits', '2026-01-09', 'rr', (SELECT c FROM cols), '[]'), 'm/rr', 'd/rr');
ROLLBACK;

-- 8. A column's "encoding" is base64, on a bytea column, or absent.
SELECT (starpipe.register(pg_temp.manifest('beta', 'blobs', '2026-01-01', 'b1',
    '[{"name": "ID", "type": "integer"}, {"name": "DATA", "type": "bytea", "encoding": "base64"}]', '[]'), 'm/b1', 'd/b1')).status;
SELECT starpipe.register(pg_temp.manifest('beta', 'blobs', '2026-01-01', 'b2',
    '[{"name": "ID", "type": "integer"}, {"name": "DATA", "type": "text", "encoding": "base64"}]', '[]'), 'm/b2', 'd/b2');
SELECT starpipe.register(pg_temp.manifest('beta', 'blobs', '2026-01-01', 'b3',
    '[{"name": "ID", "type": "integer"}, {"name": "DATA", "type": "bytea", "encoding": "hex"}]', '[]'), 'm/b3', 'd/b3');

SET client_min_messages = warning;
DROP SCHEMA production, raw_acme, raw_beta, raw_gamma CASCADE;
DROP ROLE sp_hardening_other;
RESET client_min_messages;
