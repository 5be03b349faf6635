-- Results never depend on session settings: every function that parses, casts or formats values pins them, and the
-- same file under PGTZ=America/New_York and DateStyle=DMY gives the same production rows as under UTC and ISO.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme, raw_beta CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql

-- 1. Exactly these functions pin exactly these settings (search_path first, as every function has it).
SELECT p.oid::regprocedure AS function, p.proconfig[2:] AS pinned FROM pg_proc p
 WHERE p.pronamespace = 'starpipe'::regnamespace AND pg_catalog.cardinality(p.proconfig) > 1
 ORDER BY p.oid::regprocedure::text;

-- 2. The same snapshot, loaded by two clients: one session in New York with DMY dates and terse floats, one in UTC.
CREATE SCHEMA production;
CREATE TABLE production.visits (visit_id integer, client text, started timestamptz, day date, took interval, score float8,
                                note text, PRIMARY KEY (client, visit_id));
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
GRANT SELECT, INSERT, UPDATE ON production.visits TO starpipe_writer;
SELECT starpipe.apply_mapping(pg_catalog.format('{"version": 1, "client": "%s", "target_schema": "production", "tables": {"visits": {
  "target": "visits", "conflict_key": ["client", "visit_id"], "columns": {"visit_id": {"from": "ID"}, "client": {"const": "%s"},
  "started": {"from": "STARTED"}, "day": {"from": "DAY"}, "took": {"from": "TOOK"}, "score": {"from": "SCORE"},
  "note": {"from": "NOTE", "type": "text"}}}}}', c, c)::jsonb) FROM unnest(ARRAY['acme', 'beta']) c;
CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "STARTED", "type": "timestamp without time zone"},
    {"name": "DAY", "type": "text"}, {"name": "TOOK", "type": "interval"}, {"name": "SCORE", "type": "double precision"},
    {"name": "NOTE", "type": "timestamp with time zone"}]'::jsonb AS c,
    '[[1, "2026-01-01 10:00:00", "2026-03-04", "1 day 02:03:04", 0.1, "2026-01-01 10:00:00+00"],
      [2, "2026-06-30 23:59:59.999999", "2026/12/31", "-3 hours", 1e-300, "1999-12-31 23:00:00-05"]]'::jsonb AS rows;
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SET extra_float_digits = -15;
SELECT pg_temp.ingest('acme', 'visits', '2026-01-01', 'r1', (SELECT c FROM cols), (SELECT rows FROM cols));
RESET TimeZone; RESET DateStyle; RESET IntervalStyle; RESET extra_float_digits;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SELECT pg_temp.ingest('beta', 'visits', '2026-01-01', 'r1', (SELECT c FROM cols), (SELECT rows FROM cols));
-- Compared as values (not as text in this session's style): no difference between the two clients.
SELECT count(*) AS rows_per_client FROM production.visits GROUP BY client ORDER BY client;
(SELECT visit_id, started, day, took, score, note FROM production.visits WHERE client = 'acme'
 EXCEPT SELECT visit_id, started, day, took, score, note FROM production.visits WHERE client = 'beta')
UNION ALL
(SELECT visit_id, started, day, took, score, note FROM production.visits WHERE client = 'beta'
 EXCEPT SELECT visit_id, started, day, took, score, note FROM production.visits WHERE client = 'acme');
-- And they are what the file says, read in UTC: a naive timestamp is UTC, a float keeps every digit.
SELECT visit_id, started, day, took, score = 0.1::float8 OR score = 1e-300 AS exact_score, note
  FROM production.visits WHERE client = 'acme' ORDER BY visit_id;
RESET TimeZone; RESET DateStyle;

SET client_min_messages = warning;
DROP SCHEMA production, raw_acme, raw_beta CASCADE;
RESET client_min_messages;
