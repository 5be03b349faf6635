-- Roles and privileges: the full grant matrix (golden), pinned search paths, and least privilege in practice.
-- Supabase's anon and authenticated roles are simulated, with default privileges that grant them every new object.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('anon', 'authenticated')) AS make_api_roles \gset
\if :make_api_roles
CREATE ROLE anon NOLOGIN;
CREATE ROLE authenticated NOLOGIN;
\endif
DROP ROLE IF EXISTS regress_nobody;
CREATE ROLE regress_nobody NOLOGIN;
ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES GRANT ALL ON FUNCTIONS TO anon, authenticated;
ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO anon, authenticated;
RESET client_min_messages;
\ir test/fresh_extension.psql
\set VERBOSITY terse

-- The roles exist, without login and without special powers.
SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolinherit FROM pg_roles
 WHERE rolname IN ('starpipe_worker', 'starpipe_admin', 'starpipe_writer') ORDER BY 1;

-- Every function pins its search_path; exactly the public API runs as the extension's owner (SECURITY DEFINER),
-- and exactly the writer's two helpers run as starpipe_writer (their owner).
SELECT p.oid::regprocedure AS function_without_pinned_search_path FROM pg_proc p
 WHERE p.pronamespace = 'starpipe'::regnamespace
   AND (p.proconfig[1] IS DISTINCT FROM 'search_path=pg_catalog, pg_temp'
        OR EXISTS (SELECT 1 FROM unnest(p.proconfig[2:]) c WHERE c LIKE 'search_path=%'));
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer FROM pg_proc p
 WHERE p.pronamespace = 'starpipe'::regnamespace
   AND (p.prosecdef <> (p.proname !~ '^_' OR p.proowner = 'starpipe_writer'::regrole))
 ORDER BY p.oid::regprocedure::text;
SELECT p.oid::regprocedure AS writer_owned, p.prosecdef AS security_definer, p.proacl AS acl FROM pg_proc p
 WHERE p.pronamespace = 'starpipe'::regnamespace AND p.proowner = 'starpipe_writer'::regrole
 ORDER BY p.oid::regprocedure::text;
SELECT count(*) FILTER (WHERE prosecdef) AS definer, count(*) FILTER (WHERE NOT prosecdef) AS invoker
  FROM pg_proc WHERE pronamespace = 'starpipe'::regnamespace;

-- The pipeline, driven by starpipe_worker alone.
CREATE SCHEMA production;
-- What a DBA runs before mapping into a schema: allow it, and let starpipe_writer write its tables.
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.people (person_id integer PRIMARY KEY, born date);
SELECT starpipe.apply_mapping('{"version": 1, "client": "acme", "target_schema": "production", "tables": {"people": {
  "target": "people", "conflict_key": ["person_id"], "columns": {"person_id": {"from": "ID"}, "born": {"from": "BORN"}}}}}');
SET ROLE starpipe_worker;
SELECT job_id, status FROM starpipe.register('{"format_version": 1, "client": "acme", "table": "people", "snapshot_date": "2026-11-01",
  "run_id": "r1", "data_file": "data.json", "format": "ndjson", "row_count": 2, "byte_count": 5,
  "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "columns": [{"name": "ID", "type": "integer", "nullable": false}, {"name": "BORN", "type": "date", "nullable": true}]}', 'm/r1', 'd/r1');
SELECT job_id, fence FROM starpipe.claim('w');
BEGIN;
SELECT starpipe.begin_raw(1, 1);
SELECT has_table_privilege('starpipe_worker', 'raw_acme._load_1_1', 'INSERT') AS worker_may_load;
COPY raw_acme._load_1_1 ("ID", "BORN", _source_row) FROM stdin;
1	2000-01-01	1
2	2001-02-03	2
\.
SELECT starpipe.finish_raw(1, 1, 2, 5, repeat('a', 64));
COMMIT;
SELECT has_table_privilege('starpipe_worker', 'raw_acme.people__1', 'INSERT') AS worker_may_still_load;
SELECT starpipe.transform(1, 1), starpipe.validate(1, 1);
SELECT job_id, status, stage FROM starpipe.job_status;
SELECT key, value FROM starpipe.settings WHERE key = 'max_attempts';

-- What the worker must not do: read PHI, change production or its DDL, take human decisions.
SELECT count(*) FROM raw_acme.people;
SELECT count(*) FROM starpipe_staging.people__1;
SELECT count(*) FROM production.people;
CREATE TABLE production.sneaky (x int);
ALTER TABLE production.people ADD COLUMN sneaky int;
DROP TABLE raw_acme.people__1;
UPDATE starpipe.job SET status = 'SUCCESS';
SELECT starpipe.apply_mapping('{}');
SELECT starpipe.set_setting('max_attempts', '1');
SELECT starpipe.retry(1);
SELECT starpipe.promote(1);
SELECT starpipe.accept_schema('acme', 'people', 1);
SELECT * FROM starpipe.dlq_list();
SELECT starpipe._raise('SP001', 'x');
SELECT starpipe.promote(1, NULL);
RESET ROLE;

-- The full grant matrix, now that a raw schema, a raw table, a raw version and a staging table exist.
-- Owners are left out; "(default)" marks an object whose ACL was never set (no grants to anyone but its owner).
WITH objects AS (
    SELECT 'schema' AS kind, n.nspname::text AS object, coalesce(n.nspacl, acldefault('n'::"char", n.nspowner)) AS acl, n.nspowner AS owner,
           n.nspacl IS NULL AS is_default
      FROM pg_namespace n WHERE n.nspname IN ('starpipe', 'starpipe_staging', 'raw_acme')
    UNION ALL
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'table' END, c.oid::regclass::text,
           coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)), c.relowner, c.relacl IS NULL
      FROM pg_class c WHERE c.relnamespace IN ('starpipe'::regnamespace, 'starpipe_staging'::regnamespace, 'raw_acme'::regnamespace)
       AND c.relkind IN ('r', 'p', 'v', 'S')
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, coalesce(p.proacl, acldefault('f'::"char", p.proowner)), p.proowner, p.proacl IS NULL
      FROM pg_proc p WHERE p.pronamespace = 'starpipe'::regnamespace
), grants AS (
    SELECT o.kind, o.object, o.is_default,
           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee, a.privilege_type
      FROM objects o LEFT JOIN LATERAL aclexplode(o.acl) a ON a.grantee <> o.owner
)
SELECT kind, object,
       coalesce(string_agg(privilege_type, ',' ORDER BY privilege_type) FILTER (WHERE grantee = 'starpipe_worker'), '') AS worker,
       coalesce(string_agg(privilege_type, ',' ORDER BY privilege_type) FILTER (WHERE grantee = 'starpipe_admin'), '') AS admin,
       coalesce(string_agg(grantee || ':' || privilege_type, ',' ORDER BY grantee, privilege_type)
                FILTER (WHERE grantee NOT IN ('starpipe_worker', 'starpipe_admin')), '') AS anyone_else,
       CASE WHEN bool_or(is_default) THEN '(default)' ELSE '' END AS acl
  FROM grants
 GROUP BY kind, object
 ORDER BY kind, object;

-- Nobody else gets in: not PUBLIC, not anon, not authenticated (despite their default privileges).
SET ROLE anon;
SELECT count(*) FROM starpipe.job;
SELECT count(*) FROM raw_acme.people;
SELECT count(*) FROM starpipe_staging.people__1;
SELECT starpipe.claim('intruder');
SET ROLE regress_nobody;
SELECT count(*) FROM starpipe.job_status;
SELECT count(*) FROM raw_acme.people__1;
RESET ROLE;

-- starpipe_admin reads raw and staging, takes the decisions, but has no DDL on production either.
SET ROLE starpipe_admin;
SELECT count(*) AS raw_rows FROM raw_acme.people;
SELECT count(*) AS staged_rows FROM starpipe_staging.people__1;
SELECT key, value FROM starpipe.settings WHERE key = 'max_attempts';
SELECT starpipe.set_setting('max_attempts', '4');
SELECT count(*) AS dead FROM starpipe.dlq_list();
CREATE TABLE production.sneaky (x int);
RESET ROLE;

-- The worker promotes with its fence; retention runs as the extension's owner.
SET ROLE starpipe_worker;
SELECT starpipe.promote(1, 1);
RESET ROLE;
SELECT * FROM production.people ORDER BY person_id;

SET client_min_messages = warning;
ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES REVOKE ALL ON SEQUENCES FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES REVOKE ALL ON FUNCTIONS FROM anon, authenticated;
ALTER DEFAULT PRIVILEGES REVOKE ALL ON SCHEMAS FROM anon, authenticated;
DROP SCHEMA production, raw_acme CASCADE;
DROP EXTENSION starpipe CASCADE;
DROP ROLE regress_nobody;
\if :make_api_roles
DROP OWNED BY anon, authenticated;
DROP ROLE anon, authenticated;
\endif
RESET client_min_messages;
