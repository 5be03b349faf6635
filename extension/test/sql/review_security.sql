-- Review 0.2.0 §2 and §3: production-side code runs as starpipe_writer, never as the installer, and mappings
-- write only into schemas a DBA allowed.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, auth, raw_acme, raw_evil, raw_club CASCADE;
DROP ROLE IF EXISTS regress_app_owner;
DROP ROLE IF EXISTS regress_webapp;
DROP ROLE IF EXISTS regress_etl;
DROP ROLE IF EXISTS regress_ops;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/review_helpers.psql
\set VERBOSITY terse

CREATE ROLE regress_app_owner NOLOGIN;   -- an ordinary application role that owns the production tables
CREATE ROLE regress_webapp NOLOGIN;
CREATE ROLE regress_etl NOLOGIN IN ROLE starpipe_worker;
CREATE ROLE regress_ops NOLOGIN IN ROLE starpipe_admin;

-- The writer role: no login, no special powers, member of nothing.
SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = 'starpipe_writer';
SELECT count(*) AS writer_memberships FROM pg_auth_members WHERE member = 'starpipe_writer'::regrole OR roleid = 'starpipe_writer'::regrole;

CREATE SCHEMA production AUTHORIZATION regress_app_owner;
SET ROLE regress_app_owner;
CREATE TABLE production.seen (what text, by_role text);
CREATE FUNCTION production.note(p_what text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO production.seen VALUES (p_what, current_user);
    RETURN true;
END $f$;
CREATE DOMAIN production.status_code AS text CHECK (production.note('domain check'));
CREATE TABLE production.accounts (id integer PRIMARY KEY, status production.status_code, note text DEFAULT 'd');
CREATE FUNCTION production.touch() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM production.note('trigger ' || TG_OP);
    RETURN NEW;
END $f$;
CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON production.accounts FOR EACH ROW EXECUTE FUNCTION production.touch();
-- The review's repro r2: a plain (SECURITY INVOKER) trigger that makes its author superuser.
CREATE TABLE production.grab (id integer PRIMARY KEY, status text);
CREATE FUNCTION production.grab() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE 'ALTER ROLE regress_app_owner SUPERUSER';
    RETURN NEW;
END $f$;
CREATE TRIGGER grab BEFORE INSERT OR UPDATE ON production.grab FOR EACH ROW EXECUTE FUNCTION production.grab();
GRANT INSERT ON production.seen TO starpipe_writer;
RESET ROLE;

-- Applies a mapping; returns its version, or the SQLSTATE, message and hint of the refusal.
CREATE FUNCTION pg_temp.apply(p_config jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_hint text;
BEGIN
    RETURN starpipe.apply_mapping(p_config)::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN v_hint <> '' THEN ' HINT: ' || v_hint ELSE '' END;
END;
$$;
\set accounts '{"version": 1, "client": "acme", "target_schema": "production", "tables": {"accounts": {"target": "accounts", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "status": {"from": "status"}}}}}'
\set grab '{"version": 1, "client": "acme", "target_schema": "production", "tables": {"grab": {"target": "grab", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "status": {"from": "status"}}}}}'
\set cols '[{"name": "id", "type": "integer"}, {"name": "status", "type": "text"}]'

-- §3: a schema nobody allowed is refused; only the extension owner (a superuser) maintains the allowlist.
SET ROLE regress_ops;
SELECT pg_temp.apply(:'accounts');
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
SELECT count(*) AS allowed_schemas FROM starpipe.target_schema;
RESET ROLE;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');

-- §2: the writer needs the DBA's grants on the target; the refusal says which.
SET ROLE regress_ops;
SELECT pg_temp.apply(:'accounts');
RESET ROLE;
GRANT USAGE ON SCHEMA production TO starpipe_writer;
SELECT pg_temp.apply(:'accounts');
GRANT SELECT, INSERT ON production.accounts TO starpipe_writer;
SELECT pg_temp.apply(:'accounts');
GRANT UPDATE ON production.accounts TO starpipe_writer;
SET ROLE regress_ops;
SELECT pg_temp.apply(:'accounts') AS version;

-- Domain checks (cast in transform), defaults and triggers (promote) run as starpipe_writer.
SET ROLE regress_etl;
SELECT pg_temp.run('acme', 'accounts', 'r1', '2026-01-01', :'cols', '[{"id": 1, "status": "active", "_source_row": 1}]');
RESET ROLE;
SELECT * FROM production.accounts;
SELECT what, by_role, count(*) FROM production.seen GROUP BY 1, 2 ORDER BY 1, 2;
-- The writer's access to the job's raw version and staging lasted only as long as the statements that needed it.
SELECT has_table_privilege('starpipe_writer', 'raw_acme.accounts__1', 'SELECT') AS writer_reads_raw,
       has_schema_privilege('starpipe_writer', 'starpipe', 'USAGE') AS writer_uses_starpipe;

-- The review's r2: a trigger that runs ALTER ROLE ... SUPERUSER makes the promotion fail, and nobody becomes superuser.
GRANT SELECT, INSERT, UPDATE ON production.grab TO starpipe_writer;
SET ROLE regress_ops;
SELECT pg_temp.apply(:'grab') AS version;
SET ROLE regress_etl;
SELECT pg_temp.load('acme', 'grab', 'r1', '2026-01-01', :'cols', '[{"id": 1, "status": "active", "_source_row": 1}]') AS grab_job \gset
SELECT pg_temp.finish(:grab_job);
RESET ROLE;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'regress_app_owner';
SELECT count(*) AS grabbed_rows FROM production.grab;
SELECT job_id, status, stage FROM starpipe.job WHERE table_name = 'grab';

-- §3, the review's r3: another application's table, and starpipe's own ledger, are refused,
-- and starpipe's own schemas (and the catalogs) are refused even when listed.
CREATE SCHEMA auth AUTHORIZATION regress_webapp;
CREATE TABLE auth.users (id integer PRIMARY KEY, name text, is_admin boolean NOT NULL DEFAULT false);
ALTER TABLE auth.users OWNER TO regress_webapp;
SET ROLE regress_ops;
SELECT pg_temp.apply('{"version": 1, "client": "evil", "target_schema": "auth", "tables": {"users":
 {"target": "users", "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "is_admin": {"const": "true"}}}}}');
SELECT pg_temp.apply('{"version": 1, "client": "evil", "target_schema": "starpipe", "tables": {"other":
 {"target": "job", "conflict_key": ["client", "table_name", "snapshot_date", "run_id"],
  "columns": {"client": {"const": "evil"}, "table_name": {"const": "users"}, "snapshot_date": {"const": "2026-01-01"},
              "run_id": {"const": "r1"}, "manifest_key": {"const": "x"}, "data_key": {"const": "x"}, "manifest": {"const": "{}"},
              "sha256": {"const": "x"}, "row_count": {"const": "0"}, "byte_count": {"const": "0"},
              "status": {"const": "FAILED"}, "rows_inserted": {"from": "id"}}}}}');
RESET ROLE;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('starpipe'), ('starpipe_staging'), ('raw_acme'), ('pg_catalog'), ('information_schema');
SET ROLE regress_ops;
SELECT pg_temp.apply('{"version": 1, "client": "evil", "target_schema": "starpipe", "tables": {"other":
 {"target": "mapping", "conflict_key": ["client", "version"], "columns": {"client": {"const": "x"}, "version": {"from": "id"}, "config": {"const": "{}"}}}}}');
SELECT pg_temp.apply('{"version": 1, "client": "evil", "target_schema": "raw_acme", "tables": {"accounts":
 {"target": "accounts", "conflict_key": ["id"], "columns": {"id": {"from": "id"}}}}}');
SELECT pg_temp.apply('{"version": 1, "client": "evil", "target_schema": "pg_catalog", "tables": {"users":
 {"target": "pg_class", "conflict_key": ["oid"], "columns": {"oid": {"from": "id"}}}}}');
SELECT pg_temp.apply('{"version": 1, "client": "evil", "target_schema": "information_schema", "tables": {"users":
 {"target": "sql_parts", "conflict_key": ["feature_name"], "columns": {"feature_name": {"from": "id"}}}}}');
RESET ROLE;
SELECT count(*) AS evil_mappings FROM starpipe.mapping WHERE client = 'evil';
SELECT * FROM auth.users;

-- Issue 10: promote runs the audit join as the owner only where reading production runs no user code (built-in types
-- and domains over them, no row security); a user-defined type keeps the writer's path, with the same audit.
SET ROLE regress_app_owner;
CREATE TYPE production.tier AS ENUM ('basic', 'gold');
CREATE TABLE production.members (id integer PRIMARY KEY, tier production.tier, note text);
CREATE TABLE production.secured (id integer PRIMARY KEY, note text);
ALTER TABLE production.secured ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE ON production.members TO starpipe_writer;
RESET ROLE;
SELECT t AS target, starpipe._owner_may_audit(t) AS owner_audits
  FROM unnest('{production.accounts, production.members, production.secured, starpipe.job}'::regclass[]) t;
SET ROLE regress_ops;
SELECT pg_temp.apply('{"version": 1, "client": "club", "target_schema": "production", "tables": {"members": {"target": "members",
  "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "tier": {"from": "tier"}, "note": {"from": "note"}}}}}') AS version;
SET ROLE regress_etl;
SELECT pg_temp.run('club', 'members', 'm1', '2026-02-01', '[{"name": "id", "type": "integer"}, {"name": "tier", "type": "text"}, {"name": "note", "type": "text"}]',
                   '[{"id": 1, "tier": "basic", "note": "a", "_source_row": 1}, {"id": 2, "tier": "gold", "note": "b", "_source_row": 2}]');
SELECT pg_temp.run('club', 'members', 'm2', '2026-02-02', '[{"name": "id", "type": "integer"}, {"name": "tier", "type": "text"}, {"name": "note", "type": "text"}]',
                   '[{"id": 1, "tier": "gold", "note": "a", "_source_row": 1}, {"id": 2, "tier": "gold", "note": "b", "_source_row": 2}]');
RESET ROLE;
SELECT c.key, c.changed_columns, c.applied, c.before_hash IS NOT NULL AS hashed FROM starpipe.conflict c
  JOIN starpipe.job j ON j.job_id = c.job_id WHERE j.table_name = 'members';
SELECT id, tier, note FROM production.members ORDER BY id;

SET client_min_messages = warning;
DROP SCHEMA production, auth, raw_acme, raw_club CASCADE;
DELETE FROM starpipe.target_schema;
DROP ROLE regress_app_owner;
DROP ROLE regress_webapp;
DROP ROLE regress_etl;
DROP ROLE regress_ops;
RESET client_min_messages;
