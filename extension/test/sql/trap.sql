-- A hostile role plants look-alikes of functions and operators starpipe uses, in a schema the caller searches
-- first. The whole pipeline then runs with that search_path, and not one trap may fire: every starpipe function
-- pins search_path = pg_catalog, pg_temp, including the SQL it generates and EXECUTEs.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme, trap CASCADE;
DROP ROLE IF EXISTS regress_mallory;
RESET client_min_messages;
\ir test/fresh_extension.psql
\set VERBOSITY terse

CREATE ROLE regress_mallory NOLOGIN;
CREATE SCHEMA trap AUTHORIZATION regress_mallory;
CREATE TABLE trap.fired (trap text);
GRANT INSERT ON trap.fired TO PUBLIC;
SET ROLE regress_mallory;
-- Each trap records that it ran, then behaves like the real thing so nothing else gives it away.
CREATE FUNCTION trap.lower(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('lower'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION trap.upper(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('upper'); RETURN pg_catalog.upper($1); END $$;
CREATE FUNCTION trap.btrim(text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('btrim'); RETURN pg_catalog.btrim($1); END $$;
CREATE FUNCTION trap.regexp_replace(text, text, text, text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO trap.fired VALUES ('regexp_replace'); RETURN pg_catalog.regexp_replace($1, $2, $3, $4); END $$;
CREATE FUNCTION trap.now() RETURNS timestamptz LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION trap.format(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('format'); RETURN pg_catalog.format($1, $2); END $$;
CREATE FUNCTION trap.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('to_regclass'); RETURN pg_catalog.to_regclass($1); END $$;
CREATE FUNCTION trap.jsonb_array_elements(jsonb) RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO trap.fired VALUES ('jsonb_array_elements'); RETURN QUERY SELECT pg_catalog.jsonb_array_elements($1); END $$;
CREATE FUNCTION trap.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('jsonb_typeof'); RETURN pg_catalog.jsonb_typeof($1); END $$;
CREATE FUNCTION trap.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('nextval'); RETURN pg_catalog.nextval($1); END $$;
CREATE FUNCTION trap.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('pg_notify'); PERFORM pg_catalog.pg_notify($1, $2); END $$;
CREATE FUNCTION trap.hashtext(text) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('hashtext'); RETURN pg_catalog.hashtext($1); END $$;
CREATE FUNCTION trap.count_sfunc(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('count'); RETURN $1 + 1; END $$;
CREATE AGGREGATE trap.count(anyelement) (SFUNC = trap.count_sfunc, STYPE = bigint, INITCOND = '0');
-- Operators, including the ones every WHERE clause and join uses.
CREATE FUNCTION trap.eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('= text'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR trap.= (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.eq_text);
CREATE FUNCTION trap.eq_bigint(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('= bigint'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR trap.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = trap.eq_bigint);
CREATE FUNCTION trap.eq_int(integer, integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('= integer'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR trap.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = trap.eq_int);
CREATE FUNCTION trap.ne_text(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('<> text'); RETURN $1 OPERATOR(pg_catalog.<>) $2; END $$;
CREATE OPERATOR trap.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.ne_text);
CREATE FUNCTION trap.nmatch(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('!~'); RETURN $1 OPERATOR(pg_catalog.!~) $2; END $$;
CREATE OPERATOR trap.!~ (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.nmatch);
CREATE FUNCTION trap.concat(text, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('||'); RETURN $1 OPERATOR(pg_catalog.||) $2; END $$;
CREATE OPERATOR trap.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.concat);
CREATE FUNCTION trap.field(jsonb, text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('->>'); RETURN $1 OPERATOR(pg_catalog.->>) $2; END $$;
CREATE OPERATOR trap.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = trap.field);
CREATE FUNCTION trap.has(jsonb, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO trap.fired VALUES ('?'); RETURN $1 OPERATOR(pg_catalog.?) $2; END $$;
CREATE OPERATOR trap.? (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = trap.has);
-- Tables that unqualified references would find first.
CREATE TABLE trap.job (job_id bigint);
CREATE TABLE trap.mapping (client text);
RESET ROLE;

-- The traps work: an unqualified call with trap first in the search_path fires one.
SET search_path = trap, pg_catalog;
SELECT lower('X') AS via_trap;
SET search_path = pg_catalog;
SELECT trap FROM trap.fired;
TRUNCATE trap.fired;

-- The whole pipeline with the hostile search_path: mapping with every cleaning rule and every gate,
-- register, claim, raw version, transform, validate, promote with a conflict, nack, DLQ, settings, drift.
SET search_path = trap, pg_catalog;
CREATE SCHEMA production;
-- What a DBA runs before mapping into a schema: allow it, and let starpipe_writer write its tables.
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.people (person_id integer PRIMARY KEY, name text, kind text, phone text, born date NOT NULL);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"], "conflict_policy": "merge_non_null",
  "dedup": {"order_by": [{"column": "born", "desc": true}]},
  "columns": {"person_id": {"from": "ID", "type": "integer"}, "name": {"from": "NAME", "clean": ["trim", "collapse_spaces", "strip_digits", "upper", "lower"]},
              "kind": {"from": "KIND", "clean": ["nullif_empty"]}, "phone": {"from": "PHONE", "clean": ["digits_only"]}, "born": {"from": "BORN"}},
  "checks": [{"not_null": ["born"]}, {"unique": ["person_id"]}, {"accepted_values": {"column": "kind", "values": ["a", "b"]}},
             {"min_rows": 1}, {"null_fraction": {"column": "kind", "max": 0.9}}]}}}');
SELECT starpipe.set_setting('backoff_jitter', '0');
SELECT job_id, status FROM starpipe.register('{"format_version": 1, "client": "acme", "table": "people", "snapshot_date": "2026-11-01",
  "run_id": "r1", "data_file": "data.json", "format": "ndjson", "row_count": 3, "byte_count": 9,
  "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "primary_key": ["ID"],
  "columns": [{"name": "ID", "type": "text", "nullable": false}, {"name": "NAME", "type": "text", "nullable": true},
              {"name": "KIND", "type": "text", "nullable": true}, {"name": "PHONE", "type": "text", "nullable": true},
              {"name": "BORN", "type": "date", "nullable": true}]}', 'm/r1', 'd/r1');
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.nack(1, 1, 'blip');
SELECT starpipe.next_claimable_at() IS NOT NULL AS waits;
SET search_path = pg_catalog;
UPDATE starpipe.job SET visible_at = now() WHERE job_id = 1;
SET search_path = trap, pg_catalog;
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.heartbeat(1, 2) IS NOT NULL AS renewed;
SELECT starpipe.begin_raw(1, 2);
COPY raw_acme._load_1_2 ("ID", "NAME", "KIND", "PHONE", "BORN", _source_row) FROM stdin;
1	  Ann  Lee42 	a	(555) 010-1234	2000-01-01	1
2	Bob		555.010.9999	2001-02-03	2
2	Bob Old	b	\N	1999-02-03	3
\.
SELECT starpipe.finish_raw(1, 2, 3, 9, repeat('a', 64));
SELECT starpipe.transform(1, 2), starpipe.validate(1, 2), starpipe.promote(1, 2);
-- A second snapshot changes a row (a conflict), adds an unmapped column (drift warning) and is promoted.
SELECT job_id, status FROM starpipe.register('{"format_version": 1, "client": "acme", "table": "people", "snapshot_date": "2026-11-02",
  "run_id": "r2", "data_file": "data.json", "format": "ndjson", "row_count": 1, "byte_count": 9,
  "sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "primary_key": ["ID"],
  "columns": [{"name": "ID", "type": "text", "nullable": false}, {"name": "NAME", "type": "text", "nullable": true},
              {"name": "KIND", "type": "text", "nullable": true}, {"name": "PHONE", "type": "text", "nullable": true},
              {"name": "BORN", "type": "date", "nullable": true}, {"name": "EXTRA", "type": "integer", "nullable": true}]}', 'm/r2', 'd/r2');
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(2, 3);
COPY raw_acme._load_2_3 ("ID", "NAME", "KIND", "PHONE", "BORN", "EXTRA", _source_row) FROM stdin;
1	Ann	b	\N	2000-01-01	7	1
\.
SELECT starpipe.finish_raw(2, 3, 1, 9, repeat('b', 64));
SELECT starpipe.transform(2, 3), starpipe.validate(2, 3), starpipe.promote(2, 3);
-- An older snapshot arrives late (ordering path), its type drifted (blocked, accepted, retried, manually promoted).
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"], "promotion": "manual",
  "columns": {"person_id": {"from": "ID", "type": "integer"}, "born": {"from": "BORN"}}}}}');
SELECT job_id, status FROM starpipe.register('{"format_version": 1, "client": "acme", "table": "people", "snapshot_date": "2026-10-30",
  "run_id": "r0", "data_file": "data.json", "format": "ndjson", "row_count": 1, "byte_count": 9,
  "sha256": "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", "primary_key": ["ID"],
  "columns": [{"name": "ID", "type": "integer", "nullable": false}, {"name": "BORN", "type": "date", "nullable": true}]}', 'm/r0', 'd/r0');
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(3, 4);
COPY raw_acme._load_3_4 ("ID", "BORN", _source_row) FROM stdin;
3	1990-01-01	1
\.
SELECT starpipe.finish_raw(3, 4, 1, 9, repeat('c', 64));
SELECT starpipe.transform(3, 4);
SELECT starpipe.accept_schema('acme', 'people', 3);
SELECT starpipe.retry(3);
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.transform(3, 5), starpipe.validate(3, 5);
SELECT starpipe.promote(3);
-- The DLQ and failure paths: nack into the DLQ, replay, a value that cannot be cast, retry, fail.
SELECT job_id, status FROM starpipe.register('{"format_version": 1, "client": "acme", "table": "people", "snapshot_date": "2026-11-03",
  "run_id": "r3", "data_file": "data.json", "format": "ndjson", "row_count": 1, "byte_count": 9,
  "sha256": "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", "primary_key": ["ID"],
  "columns": [{"name": "ID", "type": "integer", "nullable": false}, {"name": "BORN", "type": "date", "nullable": true}]}', 'm/r3', 'd/r3');
SELECT starpipe.set_setting('max_attempts', '1');
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.nack(4, 6, 'blip');
SELECT job_id, attempts, last_error FROM starpipe.dlq_list();
SELECT count(*) AS events FROM starpipe.dlq_inspect(4);
SELECT starpipe.dlq_replay(4);
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(4, 7);
COPY raw_acme._load_4_7 ("ID", "BORN", _source_row) FROM stdin;
x	1999-01-01	1
\.
SELECT starpipe.finish_raw(4, 7, 1, 9, repeat('d', 64));
SELECT starpipe.transform(4, 7);
SELECT starpipe.retry(4);
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.fail(4, 8, 'given up');
SELECT starpipe.raw_version(1) IS NOT NULL AS raw_kept;

SET search_path = pg_catalog;
SELECT trap, count(*) FROM trap.fired GROUP BY trap ORDER BY trap;
SELECT count(*) AS traps_fired FROM trap.fired;
SELECT job_id, status, stage, rows_inserted, rows_updated, error FROM starpipe.job ORDER BY job_id;
SELECT * FROM production.people ORDER BY person_id;
SELECT job_id, key, changed_columns, policy FROM starpipe.conflict ORDER BY conflict_id;

SET client_min_messages = warning;
RESET search_path;
DROP SCHEMA trap CASCADE;
DROP ROLE regress_mallory;
RESET client_min_messages;
