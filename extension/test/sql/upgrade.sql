-- Upgrades: a released version plus ALTER EXTENSION UPDATE must equal a fresh install of the current one,
-- and work that was in flight under the old version carries on under the new one.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
DROP EXTENSION IF EXISTS starpipe CASCADE;
RESET client_min_messages;
\set VERBOSITY terse
-- The oldest release: UPDATE walks every upgrade script from there.
\set from_version '0.1.0'

-- Describes every object of the extension as lines of text: members, function definitions and privileges,
-- tables, columns, defaults, constraints, indexes, views, sequences, comments, config tables, shipped rows.
SET check_function_bodies = off;  -- it names starpipe objects, installed below
CREATE FUNCTION pg_temp.catalog() RETURNS SETOF text LANGUAGE sql AS $$
    WITH acl(oid, kind, acl, owner) AS (
        SELECT p.oid, 'f', p.proacl, p.proowner FROM pg_proc p WHERE p.pronamespace = 'starpipe'::regnamespace
        UNION ALL SELECT c.oid, 'r', c.relacl, c.relowner FROM pg_class c WHERE c.relnamespace = 'starpipe'::regnamespace
        UNION ALL SELECT n.oid, 'n', n.nspacl, n.nspowner FROM pg_namespace n WHERE n.nspname IN ('starpipe', 'starpipe_staging')
    ), grants AS (
        SELECT a.oid, a.kind, string_agg(g.entry, ',' ORDER BY g.entry) AS granted
          FROM acl a LEFT JOIN LATERAL (
               SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END || ':' || x.privilege_type AS entry
                 FROM aclexplode(coalesce(a.acl, acldefault(a.kind::"char", a.owner))) x WHERE x.grantee <> a.owner) g ON true
         GROUP BY a.oid, a.kind
    )
    SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
      FROM pg_depend d WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'starpipe')
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' ' || pg_get_functiondef(p.oid)
      FROM pg_proc p WHERE p.pronamespace = 'starpipe'::regnamespace
    UNION ALL
    SELECT 'comment ' || p.oid::regprocedure || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
      FROM pg_proc p WHERE p.pronamespace = 'starpipe'::regnamespace
    UNION ALL
    SELECT 'grants function ' || g.oid::regprocedure || ' ' || coalesce(g.granted, '') FROM grants g WHERE g.kind = 'f'
    UNION ALL
    SELECT 'grants relation ' || g.oid::regclass || ' ' || coalesce(g.granted, '') FROM grants g WHERE g.kind = 'r'
    UNION ALL
    SELECT 'grants schema ' || g.oid::regnamespace || ' ' || coalesce(g.granted, '') FROM grants g WHERE g.kind = 'n'
    UNION ALL
    SELECT pg_catalog.format('relation %s kind %s persistence %s options %s comment %s', c.oid::regclass, c.relkind,
                             c.relpersistence, c.reloptions, coalesce(obj_description(c.oid, 'pg_class'), '-'))
      FROM pg_class c WHERE c.relnamespace = 'starpipe'::regnamespace
    UNION ALL
    SELECT pg_catalog.format('column %s #%s %s %s notnull %s default %s identity %s generated %s comment %s',
                             a.attrelid::regclass, row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), a.attname,
                             format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                             a.attidentity, a.attgenerated, coalesce(col_description(a.attrelid, a.attnum), '-'))
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE c.relnamespace = 'starpipe'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT pg_catalog.format('constraint %s %s %s', co.conrelid::regclass, co.conname, pg_get_constraintdef(co.oid))
      FROM pg_constraint co WHERE co.connamespace = 'starpipe'::regnamespace
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'starpipe'::regnamespace
    UNION ALL
    SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid)
      FROM pg_class c WHERE c.relnamespace = 'starpipe'::regnamespace AND c.relkind = 'v'
    UNION ALL
    SELECT pg_catalog.format('sequence %s %s %s %s %s %s %s', s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart,
                             s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
      FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid WHERE c.relnamespace = 'starpipe'::regnamespace
    UNION ALL
    SELECT 'config ' || cfg.t::regclass || ' ' || coalesce(cfg.w, '')
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS cfg(t, w) WHERE e.extname = 'starpipe'
    UNION ALL
    SELECT 'setting_default ' || d::text FROM starpipe.setting_default d
    UNION ALL
    SELECT 'cleaning_rule ' || w::text FROM starpipe.cleaning_rule w
    UNION ALL
    SELECT 'check_rule ' || w::text FROM starpipe.check_rule w
    UNION ALL
    SELECT 'conflict_policy ' || w::text FROM starpipe.conflict_policy w
    UNION ALL
    SELECT 'role ' || r.rolname || ' login ' || r.rolcanlogin FROM pg_roles r WHERE r.rolname IN ('starpipe_worker', 'starpipe_admin', 'starpipe_writer')
    UNION ALL
    SELECT 'owner function ' || p.oid::regprocedure || ' ' || p.proowner::regrole FROM pg_proc p WHERE p.pronamespace = 'starpipe'::regnamespace
    UNION ALL
    SELECT 'target_schema ' || w.schema_name FROM starpipe.target_schema w
    UNION ALL
    SELECT 'extension ' || e.extversion || ' relocatable ' || e.extrelocatable || ' schema ' || e.extnamespace::regnamespace
      FROM pg_extension e WHERE e.extname = 'starpipe';
$$;
RESET check_function_bodies;

SET client_min_messages = warning;
CREATE EXTENSION starpipe;
CREATE TEMP TABLE fresh AS SELECT pg_temp.catalog() AS line;
DROP EXTENSION starpipe;
CREATE EXTENSION starpipe VERSION :'from_version';
ALTER EXTENSION starpipe UPDATE;
CREATE TEMP TABLE upgraded AS SELECT pg_temp.catalog() AS line;
RESET client_min_messages;
SELECT count(*) > 100 AS described, (SELECT extversion FROM pg_extension WHERE extname = 'starpipe') = (
       SELECT default_version FROM pg_available_extensions WHERE name = 'starpipe') AS at_default_version FROM fresh;
-- Differences, if any: "-" only in a fresh install, "+" only after the upgrade.
(SELECT '-' AS side, line FROM fresh EXCEPT SELECT '-', line FROM upgraded)
UNION ALL
(SELECT '+', line FROM upgraded EXCEPT SELECT '+', line FROM fresh)
ORDER BY line, side;

-- Work in flight across the upgrade: a job loaded into raw and another registered under the old version.
SET client_min_messages = warning;
DROP EXTENSION starpipe;
CREATE EXTENSION starpipe VERSION :'from_version';
RESET client_min_messages;
CREATE SCHEMA production;
CREATE TABLE production.people (person_id integer PRIMARY KEY, born date);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"], "columns": {"person_id": {"from": "ID"}, "born": {"from": "BORN"}}}}}');
SELECT job_id, status FROM starpipe.register('{"format_version": 1, "client": "acme", "table": "people", "snapshot_date": "2026-11-01",
  "run_id": "r1", "data_file": "data.json", "format": "ndjson", "row_count": 1, "byte_count": 1,
  "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "columns": [{"name": "ID", "type": "integer"}, {"name": "BORN", "type": "date"}]}', 'm/r1', 'd/r1');
SELECT job_id, status FROM starpipe.register('{"format_version": 1, "client": "acme", "table": "people", "snapshot_date": "2026-11-02",
  "run_id": "r2", "data_file": "data.json", "format": "ndjson", "row_count": 1, "byte_count": 1,
  "sha256": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
  "columns": [{"name": "ID", "type": "integer"}, {"name": "BORN", "type": "date"}]}', 'm/r2', 'd/r2');
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(1, 1) IS NOT NULL AS began;
COPY raw_acme.people__1 ("ID", "BORN", _source_row) FROM stdin;
1	2000-01-01	1
\.
SELECT starpipe.finish_raw(1, 1, 1, 1, repeat('a', 64));

SET client_min_messages = warning;
ALTER EXTENSION starpipe UPDATE;
RESET client_min_messages;
SELECT extversion = :'from_version' AS still_old FROM pg_extension WHERE extname = 'starpipe';
-- What the upgrade's warning asks of the DBA: 0.3.0 writes production as starpipe_writer, into allowed schemas only.
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
GRANT SELECT, INSERT, UPDATE ON production.people TO starpipe_writer;

-- The loaded job finishes under the new version (it predates the registry, so it has no schema version).
SELECT job_id, status, stage, schema_version, visible_at FROM starpipe.job WHERE job_id = 1;
SELECT starpipe.transform(1, 1), starpipe.validate(1, 1), starpipe.promote(1, 1);
-- The registered one is claimed and loaded by starpipe_worker in the raw schema the old version made.
SELECT has_schema_privilege('starpipe_worker', 'raw_acme', 'USAGE') AS worker_uses_old_raw_schema,
       has_table_privilege('starpipe_admin', 'raw_acme.people__1', 'SELECT') AS admin_reads_old_raw_version;
SET ROLE starpipe_worker;
SELECT job_id, fence FROM starpipe.claim('w');
SELECT starpipe.begin_raw(2, 2) IS NOT NULL AS began;
COPY raw_acme._load_2_2 ("ID", "BORN", _source_row) FROM stdin;
2	2001-01-01	1
\.
SELECT starpipe.finish_raw(2, 2, 1, 1, repeat('b', 64));
SELECT starpipe.transform(2, 2), starpipe.validate(2, 2), starpipe.promote(2, 2);
RESET ROLE;
SELECT job_id, status, stage, schema_version, rows_inserted FROM starpipe.job ORDER BY job_id;
SELECT * FROM production.people ORDER BY person_id;
SELECT event, from_status, to_status FROM starpipe.job_event WHERE job_id = 2 ORDER BY event_id;

SET client_min_messages = warning;
DROP SCHEMA production, raw_acme CASCADE;
RESET client_min_messages;
