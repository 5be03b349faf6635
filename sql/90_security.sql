-- starpipe: roles and privileges. Nothing here is for PUBLIC.

-- Roles are cluster-wide and outlive the extension: create each one only if it is absent, never alter an existing one.
--   starpipe_worker: runs the pipeline (register, claim, begin_raw + its COPY, finish_raw, transform, validate,
--                    fenced promote, fail, nack, release, heartbeat) and reads the ledger; owns nothing, no DDL anywhere.
--   starpipe_admin:  everything starpipe offers, including mappings, settings, retries, manual promotion,
--                    schema acceptance and the DLQ, plus read access to raw and staging tables.
--   starpipe_writer: the rights production-side code runs with. It owns _as_writer_execute, _as_writer_query and
--                    _as_writer_audit, which run the statements transform, validate, promote and apply_mapping build, so triggers,
--                    defaults, domain checks, casts and operators of production types run as this role, never
--                    as the installer. It holds what a DBA grants it on target tables (SELECT, INSERT, UPDATE),
--                    USAGE on starpipe_staging and raw schemas, and, only for the statement that needs it, SELECT
--                    on one job's raw version and INSERT/SELECT on its staging table.
-- All three are NOLOGIN: grant worker and admin to login roles (GRANT starpipe_worker TO etl_login); grant
-- starpipe_writer to nobody.
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['starpipe_worker', 'starpipe_admin', 'starpipe_writer'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = v_role) THEN
            RAISE NOTICE 'role % already exists; starpipe grants privileges to it as it is', v_role;
        ELSE
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', v_role);
        END IF;
    END LOOP;
END;
$$;

-- Resets the privileges of a schema or table that starpipe creates to: its owner, plus p_privilege for p_roles.
CREATE FUNCTION starpipe._lock_down(p_kind text, p_object text, p_privilege text, p_roles text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_grantee text;
BEGIN
    -- Default privileges (Supabase grants anon and authenticated on new objects) must not open PHI to anyone,
    -- so every grantee other than the owner is revoked, whatever granted it.
    FOR v_grantee IN
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
          FROM (SELECT n.nspacl AS acl, n.nspowner AS owner FROM pg_catalog.pg_namespace n
                 WHERE p_kind = 'SCHEMA' AND n.oid = pg_catalog.to_regnamespace(p_object)
                UNION ALL
                SELECT c.relacl, c.relowner FROM pg_catalog.pg_class c
                 WHERE p_kind = 'TABLE' AND c.oid = pg_catalog.to_regclass(p_object)) o
         CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) a
          LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
         WHERE a.grantee <> o.owner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s', p_kind, p_object, v_grantee);
    END LOOP;
    EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM PUBLIC', p_kind, p_object);
    IF pg_catalog.cardinality(p_roles) > 0 THEN
        EXECUTE pg_catalog.format('GRANT %s ON %s %s TO %s', p_privilege, p_kind, p_object,
                                  (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r), ', ') FROM pg_catalog.unnest(p_roles) r));
    END IF;
END;
$$;

-- Runs one statement built by transform or promote from validated identifiers, as starpipe_writer; returns its row count.
CREATE FUNCTION starpipe._as_writer_execute(p_statement text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    -- Owned by starpipe_writer: user code the statement evaluates on production types gets that role's rights only.
    EXECUTE p_statement;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END;
$$;

-- Runs one query built by transform, validate, promote or apply_mapping (one jsonb column), as starpipe_writer.
CREATE FUNCTION starpipe._as_writer_query(p_query text)
RETURNS SETOF jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Owned by starpipe_writer, like _as_writer_execute; the caller turns the rows into starpipe's own records.
    RETURN QUERY EXECUTE p_query;
END;
$$;

-- Runs promote's classify-and-upsert statement as starpipe_writer; returns its audit rows, typed (no jsonb per row).
CREATE FUNCTION starpipe._as_writer_audit(p_query text)
RETURNS TABLE (key jsonb, changed_columns text[], applied_columns text[], source_row bigint, is_conflict boolean,
               before_hash bigint, delta numeric, before_values jsonb, after_values jsonb, reason text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Owned by starpipe_writer, like _as_writer_execute.
    RETURN QUERY EXECUTE p_query;
END;
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA starpipe FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA starpipe FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA starpipe FROM PUBLIC;

-- Supabase's API roles get nothing, whatever default privileges granted them.
DO $$
DECLARE
    v_role text;
BEGIN
    FOR v_role IN SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname IN ('anon', 'authenticated') ORDER BY 1 LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA starpipe, starpipe_staging FROM %I', v_role);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL TABLES IN SCHEMA starpipe FROM %I', v_role);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA starpipe FROM %I', v_role);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA starpipe FROM %I', v_role);
    END LOOP;
END;
$$;

GRANT USAGE ON SCHEMA starpipe TO starpipe_worker, starpipe_admin;
GRANT USAGE ON SCHEMA starpipe_staging TO starpipe_admin, starpipe_writer;

-- The writer's helpers are owned by the writer (re-applied on every install, upgrade and restore) and executable
-- by nobody else but the extension's owner (a superuser), from inside its SECURITY DEFINER functions.
ALTER FUNCTION starpipe._as_writer_execute(text) OWNER TO starpipe_writer;
ALTER FUNCTION starpipe._as_writer_query(text) OWNER TO starpipe_writer;
ALTER FUNCTION starpipe._as_writer_audit(text) OWNER TO starpipe_writer;
REVOKE ALL ON FUNCTION starpipe._as_writer_execute(text), starpipe._as_writer_query(text), starpipe._as_writer_audit(text) FROM PUBLIC;

-- Raw schemas made before starpipe_writer existed (prepare_raw grants the others) let it reach a job's raw version.
DO $$
DECLARE
    v_schema text;
BEGIN
    FOR v_schema IN SELECT n.nspname FROM pg_catalog.pg_namespace n
                     WHERE n.nspname IN (SELECT DISTINCT 'raw_' || j.client FROM starpipe.job j) ORDER BY 1 LOOP
        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO starpipe_writer', v_schema);
    END LOOP;
END;
$$;

-- The ledger is readable by both (it holds keys, counts and errors, never row values).
GRANT SELECT ON starpipe.job, starpipe.job_event, starpipe.job_status, starpipe.settings TO starpipe_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA starpipe TO starpipe_admin;

-- The pipeline, as the worker drives it.
GRANT EXECUTE ON FUNCTION
    starpipe.register(jsonb, text, text),
    starpipe.claim(text, interval),
    starpipe.prepare_raw(bigint, bigint),
    starpipe.begin_raw(bigint, bigint),
    starpipe.finish_raw(bigint, bigint, bigint, bigint, text),
    starpipe.transform(bigint, bigint),
    starpipe.validate(bigint, bigint),
    starpipe.promote(bigint, bigint),
    starpipe.fail(bigint, bigint, text, jsonb, text),
    starpipe.nack(bigint, bigint, text),
    starpipe.release(bigint, bigint),
    starpipe.heartbeat(bigint, bigint, interval, bigint),
    starpipe.next_claimable_at(),
    starpipe.raw_version(bigint),
    starpipe.remote_plan(bigint, bigint, boolean),
    starpipe.record_remote_promotion(bigint, bigint, jsonb),
    starpipe.remote_blocked(bigint, bigint, jsonb),
    starpipe.production_ledger_sql(),
    starpipe.production_check_sql(text),
    starpipe.rejects(bigint),
    starpipe.trace(bigint),
    starpipe.metrics(),
    starpipe.dashboard(integer, integer),
    -- Lineage only (no key, no presence in production): see row_origin in sql/86_lineage.sql.
    starpipe.row_origin(text, jsonb),
    starpipe.queue_alerts(integer, interval),
    starpipe.claim_alerts(integer, interval),
    starpipe.settle_alert(text, text)
TO starpipe_worker, starpipe_admin;

-- Decisions that need a human.
GRANT EXECUTE ON FUNCTION
    starpipe.apply_mapping(jsonb),
    starpipe.set_setting(text, text),
    starpipe.retry(bigint),
    starpipe.promote(bigint),
    starpipe.promote_allow_mass_delete(bigint),
    starpipe.verify(bigint),
    starpipe.accept_schema(text, text, integer),
    starpipe.dlq_list(),
    starpipe.dlq_inspect(bigint),
    starpipe.dlq_replay(bigint),
    starpipe.replay_rejects(bigint),
    starpipe.resync_staging(bigint),
    -- It reads conflict keys (admin only) and answers whether a key is in production.
    starpipe.trace_row(text, jsonb)
TO starpipe_admin;
