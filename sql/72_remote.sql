-- starpipe: promotion into a production database that is not the pipeline database.
--
-- A mapping with "production: <name>" promotes into the database the worker knows by that name (its URL lives in
-- the worker's configuration, never in the ledger). The pipeline database keeps an empty copy of the target tables'
-- shape, which apply_mapping checks and transform types staging by. The worker asks remote_plan for the
-- statements, runs them in one production transaction against a temporary copy of the staging rows, together with
-- a row of the production ledger starpipe_ledger.applied (and the audit rows, in starpipe_ledger.applied_audit),
-- then hands the audit to record_remote_promotion. A crash between the production commit and that call is
-- recognised on retry by the ledger row: nothing is applied twice. Production needs no extension and no superuser.

-- The production side's ledger: the DDL `starpipe production init` runs there.
CREATE FUNCTION starpipe.production_ledger_sql()
RETURNS text
LANGUAGE sql IMMUTABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT $ddl$
CREATE SCHEMA IF NOT EXISTS starpipe_ledger;
COMMENT ON SCHEMA starpipe_ledger IS 'starpipe''s ledger in this production database: the jobs applied here, written in the same transaction as their rows.';
CREATE TABLE IF NOT EXISTS starpipe_ledger.applied (
    pipeline      text NOT NULL,
    job_id        bigint NOT NULL,
    client        text NOT NULL,
    table_name    text NOT NULL,
    target        text NOT NULL,
    staged_digest text NOT NULL,
    written       bigint NOT NULL,
    deleted       bigint NOT NULL,
    guard         jsonb,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    applied_by    text NOT NULL DEFAULT current_user,
    PRIMARY KEY (pipeline, job_id)
);
COMMENT ON TABLE starpipe_ledger.applied IS 'One row per starpipe job applied to this database, committed with its rows; pipeline names the pipeline database (system identifier/database).';
CREATE TABLE IF NOT EXISTS starpipe_ledger.applied_audit (
    pipeline        text NOT NULL,
    job_id          bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('conflict', 'delete')),
    key             jsonb NOT NULL,
    changed_columns text[],
    applied_columns text[],
    source_row      bigint,
    is_conflict     boolean,
    before_hash     bigint,
    delta           numeric,
    before_values   jsonb,
    after_values    jsonb,
    reason          text
);
CREATE INDEX IF NOT EXISTS applied_audit_job ON starpipe_ledger.applied_audit (pipeline, job_id);
COMMENT ON TABLE starpipe_ledger.applied_audit IS 'The conflict and delete audit of each applied job, until the pipeline database has recorded it (kept afterwards as this database''s own trail).';
$ddl$;
$$;

-- The columns of starpipe_ledger.applied_audit the pipeline reads back, in COPY order.
CREATE FUNCTION starpipe._remote_audit_columns()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'kind text, key jsonb, changed_columns text[], applied_columns text[], source_row bigint, is_conflict boolean, '
           'before_hash bigint, delta numeric, before_values jsonb, after_values jsonb, reason text';
$$;

-- A remote promotion step without the fencing token is a human's manual promotion: it needs starpipe_admin.
CREATE FUNCTION starpipe._require_admin_unless_fenced(p_fence bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_fence IS NULL AND NOT pg_catalog.pg_has_role(SESSION_USER, 'starpipe_admin', 'MEMBER') THEN
        PERFORM starpipe._raise('42501', 'a promotion without the fencing token is manual and needs starpipe_admin');
    END IF;
END;
$$;

-- This pipeline database, as production's ledger names it.
CREATE FUNCTION starpipe._pipeline_identity()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (SELECT c.system_identifier::text FROM pg_catalog.pg_control_system() c) || '/' || pg_catalog.current_database();
$$;

-- The plan of a job's promotion into its mapping's production database, or NULL when the mapping promotes here.
-- p_fence NULL: a human's promotion of a job awaiting it (starpipe_admin). Returns {status: SUCCESS} for a promoted
-- job, {status: FAILED} when staging changed after validation (the job is failed), else {status: PROCESSING,
-- production, target, staging, pipeline, job, columns, types, create_stage, copy_out, ledger_check, guard, delete,
-- audit, write_needed, merge, ledger_insert, audit_out, remote_audit_columns, ...}: the statements in the order
-- the worker runs them in one production transaction ($1 pipeline, $2 job id).
CREATE FUNCTION starpipe.remote_plan(p_job_id bigint, p_fence bigint, p_allow_mass_delete boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
SET xmloption = 'content'
SET standard_conforming_strings = on
SET lc_monetary = 'C'
AS $$
DECLARE
    v_start jsonb;
    v_job starpipe.job;
    v_map jsonb;
    v_staging text;
    v_target regclass;
    v_sql jsonb;
    v_digest text;
    v_stage text := 'pg_temp.starpipe_stage';
    v_columns text[];
    v_types text[];
BEGIN
    PERFORM starpipe._require_admin_unless_fenced(p_fence);
    -- A local mapping: nothing to plan (checked before locking, so the worker's local promotions pay nothing).
    IF NOT EXISTS (SELECT 1 FROM starpipe.job j JOIN starpipe.mapping m ON m.client = j.client AND m.version = j.mapping_version
                    WHERE j.job_id = p_job_id AND m.config ? 'production') THEN
        RETURN NULL;
    END IF;
    v_start := starpipe._promotion_start(p_job_id, p_fence, p_fence IS NULL);
    IF (v_start->>'already')::boolean THEN
        RETURN '{"status": "SUCCESS", "already": true}';
    END IF;
    SELECT * INTO v_job FROM starpipe.job WHERE job_id = p_job_id;
    IF starpipe._older_incremental_blocked(v_job, v_start, p_fence IS NULL) THEN
        RETURN '{"status": "BLOCKED"}';
    END IF;
    v_map := v_start->'mapping';
    v_staging := v_start->>'staging';
    v_target := (v_start->>'target')::regclass;
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_staging);
    v_sql := starpipe._promotion_sql(v_job, v_map, v_target, v_stage, (v_start->>'older')::boolean);
    v_digest := starpipe._check_staged_digest(v_job, v_staging, ARRAY(SELECT pg_catalog.jsonb_array_elements_text(v_sql->'columns')));
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
    IF v_digest IS NULL THEN
        RETURN '{"status": "FAILED"}';
    END IF;
    -- The worker copies the staged rows out (mapped columns and source row numbers, in text: production's types
    -- may have other OIDs) and holds SELECT on this staging table until the promotion is recorded.
    SELECT pg_catalog.array_agg(c ORDER BY n), pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY n)
      INTO v_columns, v_types
      FROM pg_catalog.unnest(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(v_sql->'columns')) || '_source_row'::text)
           WITH ORDINALITY AS x(c, n)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = v_staging::regclass AND a.attname = x.c AND NOT a.attisdropped;
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_worker', v_staging);
    RETURN v_sql || pg_catalog.jsonb_build_object(
        'status', 'PROCESSING', 'job', p_job_id, 'fence', p_fence, 'manual', p_fence IS NULL,
        'production', v_start->'production', 'target', v_start->>'target', 'staging', v_staging,
        'pipeline', starpipe._pipeline_identity(), 'older', (v_start->>'older')::boolean, 'staged_digest', v_digest,
        'client', v_job.client, 'table', v_job.table_name,
        'columns', pg_catalog.to_jsonb(v_columns), 'types', pg_catalog.to_jsonb(v_types),
        'create_stage', pg_catalog.format('CREATE TEMPORARY TABLE starpipe_stage (%s) ON COMMIT DROP',
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', c, t), ', ' ORDER BY n)
               FROM unnest(v_columns, v_types) WITH ORDINALITY AS x(c, t, n))),
        'copy_out', pg_catalog.format('COPY (SELECT %s FROM %s) TO STDOUT',
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY n) FROM pg_catalog.unnest(v_columns) WITH ORDINALITY AS x(c, n)),
            v_staging),
        'copy_in', pg_catalog.format('COPY %s (%s) FROM STDIN', v_stage,
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY n) FROM pg_catalog.unnest(v_columns) WITH ORDINALITY AS x(c, n))),
        'analyze_stage', pg_catalog.format('ANALYZE %s', v_stage),
        'lock', pg_catalog.format('SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(''starpipe.promote''), pg_catalog.hashtext(%L))',
                                  v_start->>'target'),
        'ledger_check', 'SELECT written, deleted, guard, staged_digest FROM starpipe_ledger.applied WHERE pipeline = $1 AND job_id = $2',
        'guard', CASE WHEN v_sql->>'guard' IS NOT NULL THEN pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(''rule'', %1$L, ''max_fraction'', %2$s, ''missing'', g.missing, ''live_rows'', g.live, '
            '''allowed_by_override'', %3$L::boolean, ''exceeded'', g.missing > 0 AND g.missing > %2$s * g.live AND NOT %3$L::boolean) '
            'FROM (%4$s) g',
            v_sql->'deletes'->>'rule', v_sql->'deletes'->>'max_fraction', p_allow_mass_delete AND p_fence IS NULL, v_sql->>'guard') END,
        'delete', CASE WHEN v_sql->>'delete' IS NOT NULL THEN (v_sql->>'delete')
            || 'INSERT INTO starpipe_ledger.applied_audit (pipeline, job_id, kind, key, before_hash) SELECT $1, $2, ''delete'', d.key, d.hash FROM d' END,
        'audit', 'INSERT INTO starpipe_ledger.applied_audit (pipeline, job_id, kind, key, changed_columns, applied_columns, source_row, '
                 'is_conflict, before_hash, delta, before_values, after_values, reason) SELECT $1, $2, ''conflict'', a.* FROM ('
                 || (v_sql->>'audit') || ') a',
        'write_needed', pg_catalog.format(
            'SELECT EXISTS (SELECT 1 FROM starpipe_ledger.applied_audit a WHERE a.pipeline = $1 AND a.job_id = $2 AND a.kind = ''conflict'' '
            'AND coalesce(a.is_conflict, true) AND coalesce(a.applied_columns, a.changed_columns) <> ''{}'') OR (%s)', v_sql->>'new_keys'),
        'ledger_insert', 'INSERT INTO starpipe_ledger.applied (pipeline, job_id, client, table_name, target, staged_digest, written, deleted, guard) '
                         'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        'audit_out', pg_catalog.format(
            'COPY (SELECT kind, key, changed_columns, applied_columns, source_row, is_conflict, before_hash, delta, before_values, '
            'after_values, reason FROM starpipe_ledger.applied_audit WHERE pipeline = %L AND job_id = %s) TO STDOUT',
            starpipe._pipeline_identity(), p_job_id),
        'remote_audit', pg_catalog.format('CREATE TEMPORARY TABLE starpipe_remote_audit (%s) ON COMMIT DROP', starpipe._remote_audit_columns()),
        'audit_in', 'COPY pg_temp.starpipe_remote_audit FROM STDIN');
END;
$$;
COMMENT ON FUNCTION starpipe.remote_plan(bigint, bigint, boolean) IS
    'The statements of a job''s promotion into a separate production database (mapping "production: NAME"), or NULL for a local one.';

-- Records a promotion the worker applied in the production database: p_applied is that database's ledger row
-- ({written, deleted, guard, staged_digest}) and pg_temp.starpipe_remote_audit holds its audit rows. Idempotent.
CREATE FUNCTION starpipe.record_remote_promotion(p_job_id bigint, p_fence bigint, p_applied jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
SET xmloption = 'content'
SET standard_conforming_strings = on
SET lc_monetary = 'C'
AS $$
DECLARE
    v_start jsonb;
    v_job starpipe.job;
    v_sql jsonb;
    v_conflicts bigint;
    v_kept bigint;
    v_delta numeric;
    v_skipped jsonb;
    v_deleted bigint;
    v_updated bigint;
    v_written bigint := (p_applied->>'written')::bigint;
BEGIN
    PERFORM starpipe._require_admin_unless_fenced(p_fence);
    v_start := starpipe._promotion_start(p_job_id, p_fence, p_fence IS NULL);
    IF (v_start->>'already')::boolean THEN
        RETURN 'SUCCESS';
    END IF;
    SELECT * INTO v_job FROM starpipe.job WHERE job_id = p_job_id;
    IF v_start->>'production' IS NULL THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s promotes into this database, not into a production database', p_job_id));
    END IF;
    IF p_applied->>'staged_digest' IS DISTINCT FROM v_job.staged_digest THEN
        PERFORM starpipe._raise('SP003', pg_catalog.format('production applied job %s from staged rows with digest %s, the job''s is %s',
                                                           p_job_id, p_applied->>'staged_digest', v_job.staged_digest));
    END IF;
    v_sql := starpipe._promotion_sql(v_job, v_start->'mapping', (v_start->>'target')::regclass, 'pg_temp.starpipe_stage',
                                     (v_start->>'older')::boolean);
    INSERT INTO starpipe.deletion (job_id, target, key, rule, before_hash)
    SELECT p_job_id, v_start->>'target', a.key, v_sql->'deletes'->>'rule', a.before_hash
      FROM pg_temp.starpipe_remote_audit a WHERE a.kind = 'delete';
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    WITH audited AS (
        INSERT INTO starpipe.conflict (job_id, target, key, changed_columns, policy, source_row, applied, applied_columns,
                                       before_hash, before_values, after_values)
        SELECT p_job_id, v_start->>'target', a.key, a.changed_columns, v_sql->>'policy', a.source_row,
               coalesce(a.applied_columns, a.changed_columns) <> '{}', coalesce(a.applied_columns, a.changed_columns),
               a.before_hash, a.before_values, a.after_values
          FROM pg_temp.starpipe_remote_audit a WHERE a.kind = 'conflict' AND coalesce(a.is_conflict, true)
         ORDER BY a.source_row
        RETURNING conflict.applied)
    SELECT (SELECT pg_catalog.count(*) FROM audited), (SELECT pg_catalog.count(*) FILTER (WHERE NOT audited.applied) FROM audited)
      INTO v_conflicts, v_kept;
    SELECT pg_catalog.sum(a.delta) INTO v_delta FROM pg_temp.starpipe_remote_audit a WHERE a.kind = 'conflict';
    SELECT pg_catalog.jsonb_object_agg(r.reason, r.n) INTO v_skipped FROM (
        SELECT a.reason, pg_catalog.count(*) AS n FROM pg_temp.starpipe_remote_audit a
         WHERE a.kind = 'conflict' AND coalesce(a.is_conflict, true) AND coalesce(a.applied_columns, a.changed_columns) = '{}' GROUP BY a.reason) r;
    IF v_deleted <> (p_applied->>'deleted')::bigint THEN
        PERFORM starpipe._raise('SP003', pg_catalog.format('production deleted %s rows for job %s but its audit holds %s',
                                                           p_applied->>'deleted', p_job_id, v_deleted));
    END IF;
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_worker', v_start->>'staging');
    v_updated := LEAST(v_conflicts - v_kept, v_written);
    RETURN starpipe._finish_promotion(v_job, p_fence IS NULL, v_start, v_sql, v_job.staged_digest,
        NULLIF(p_applied->'guard', 'null'::jsonb),
        pg_catalog.jsonb_build_object('inserted', v_written - v_updated, 'updated', v_updated, 'kept', v_kept,
                                      'conflicts', v_conflicts, 'deleted', v_deleted, 'delta', v_delta, 'skipped', v_skipped));
END;
$$;
COMMENT ON FUNCTION starpipe.record_remote_promotion(bigint, bigint, jsonb) IS
    'Records a promotion applied in a separate production database, with the audit rows the worker copied into pg_temp.starpipe_remote_audit; idempotent.';

-- Holds a job whose full snapshot would delete more than its mapping allows from a separate production database
-- (the worker found it with the plan's guard query and applied nothing). Returns BLOCKED; a human's call raises SP007.
CREATE FUNCTION starpipe.remote_blocked(p_job_id bigint, p_fence bigint, p_figures jsonb)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_start jsonb;
    v_job starpipe.job;
BEGIN
    PERFORM starpipe._require_admin_unless_fenced(p_fence);
    v_start := starpipe._promotion_start(p_job_id, p_fence, p_fence IS NULL);
    IF (v_start->>'already')::boolean THEN
        RETURN 'SUCCESS';
    END IF;
    IF NOT starpipe._mass_delete_exceeded(p_figures) THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('job %s: these figures do not exceed the mass-delete guard', p_job_id));
    END IF;
    SELECT * INTO v_job FROM starpipe.job WHERE job_id = p_job_id;
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_worker', v_start->>'staging');
    RETURN starpipe._mass_delete_blocked(v_job, p_fence IS NULL, v_start->>'target', p_figures);
END;
$$;
COMMENT ON FUNCTION starpipe.remote_blocked(bigint, bigint, jsonb) IS
    'BLOCKs a job whose promotion into a separate production database the mass-delete guard stopped.';

-- A query to run in production database p_production (as the login the worker uses there) that returns one row
-- (object, problem) per thing that stops promotions into it: a target table or mapped column missing or of
-- another type than the pipeline's copy of its shape, no unique index on the conflict key, a missing privilege,
-- or a ledger the login cannot use. No rows: production is ready. `starpipe production init` runs it.
CREATE FUNCTION starpipe.production_check_sql(p_production text)
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expected text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('(%L, %L, %L, %L, %L::boolean, %L::boolean)', e.nsp, e.tbl, e.col, e.type,
                                                   e.is_key, e.needs_delete), ', ' ORDER BY e.nsp, e.tbl, e.col)
      INTO v_expected
      FROM (SELECT DISTINCT m.config->>'target_schema' AS nsp, t.value->>'target' AS tbl, c.key AS col,
                   pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, t.value->'conflict_key' ? c.key AS is_key,
                   starpipe._deletes_rule(t.value)->>'rule' = 'hard' AS needs_delete
              FROM starpipe.mapping m
             CROSS JOIN LATERAL pg_catalog.jsonb_each(m.config->'tables') t
             CROSS JOIN LATERAL pg_catalog.jsonb_each(t.value->'columns') c
              JOIN pg_catalog.pg_attribute a
                ON a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', m.config->>'target_schema', t.value->>'target'))
               AND a.attname = c.key AND NOT a.attisdropped
             WHERE m.config->>'production' = p_production
               AND m.version = (SELECT pg_catalog.max(l.version) FROM starpipe.mapping l WHERE l.client = m.client)) e;
    IF v_expected IS NULL THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('no mapping in force promotes into production database %L', p_production));
    END IF;
    -- Objects are looked up in the catalog, not by name resolution, so a schema without USAGE is a problem to
    -- report rather than an error.
    RETURN pg_catalog.format($q$
WITH expected (nsp, tbl, col, type, is_key, needs_delete) AS (VALUES %s),
tables AS (SELECT e.nsp, e.tbl, pg_catalog.format('%%I.%%I', e.nsp, e.tbl) AS target, n.oid AS nsp_oid, c.oid AS rel,
                  pg_catalog.bool_or(e.needs_delete) AS needs_delete,
                  pg_catalog.array_agg(e.col ORDER BY e.col) FILTER (WHERE e.is_key) AS key
             FROM expected e
             LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = e.nsp
             LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = e.tbl AND c.relkind IN ('r', 'p')
            GROUP BY e.nsp, e.tbl, n.oid, c.oid),
ledger AS (SELECT l.name, l.privilege, n.oid AS nsp_oid, c.oid AS rel
             FROM (VALUES ('applied', 'SELECT'), ('applied', 'INSERT'), ('applied_audit', 'SELECT'), ('applied_audit', 'INSERT')) l (name, privilege)
             LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'starpipe_ledger'
             LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = l.name)
SELECT object, problem FROM (
    SELECT t.target AS object, CASE WHEN t.nsp_oid IS NULL THEN 'schema does not exist' ELSE 'table does not exist' END AS problem
      FROM tables t WHERE t.rel IS NULL
    UNION ALL
    SELECT t.target, pg_catalog.format('%%s has no USAGE on schema %%I', current_user, t.nsp)
      FROM tables t WHERE t.rel IS NOT NULL AND NOT pg_catalog.has_schema_privilege(t.nsp_oid, 'USAGE')
    UNION ALL
    SELECT t.target, pg_catalog.format('column %%I is %%s, the pipeline''s copy has %%s', e.col,
                                       coalesce(pg_catalog.format_type(a.atttypid, a.atttypmod), 'missing'), e.type)
      FROM expected e JOIN tables t ON t.nsp = e.nsp AND t.tbl = e.tbl AND t.rel IS NOT NULL
      LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.rel AND a.attname = e.col AND NOT a.attisdropped
     WHERE a.attname IS NULL OR pg_catalog.format_type(a.atttypid, a.atttypmod) <> e.type
    UNION ALL
    SELECT t.target, pg_catalog.format('no unique index on exactly (%%s)', pg_catalog.array_to_string(t.key, ', '))
      FROM tables t WHERE t.rel IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.rel AND i.indisunique AND i.indimmediate AND i.indisvalid
              AND i.indpred IS NULL AND i.indexprs IS NULL
              AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname)
                     FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = t.rel AND a.attnum = k.attnum WHERE k.n <= i.indnkeyatts) = t.key)
    UNION ALL
    SELECT t.target, pg_catalog.format('%%s lacks %%s on it', current_user, p.privilege)
      FROM tables t CROSS JOIN LATERAL (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE')) p (privilege)
     WHERE t.rel IS NOT NULL AND (p.privilege <> 'DELETE' OR t.needs_delete)
       AND NOT pg_catalog.has_table_privilege(t.rel, p.privilege)
    UNION ALL
    SELECT DISTINCT 'starpipe_ledger', CASE WHEN l.nsp_oid IS NULL THEN 'schema does not exist: run starpipe production init as a login that may create it'
                                            ELSE pg_catalog.format('%%s has no USAGE on it', current_user) END
      FROM ledger l WHERE l.nsp_oid IS NULL OR NOT pg_catalog.has_schema_privilege(l.nsp_oid, 'USAGE')
    UNION ALL
    SELECT 'starpipe_ledger.' || l.name, CASE WHEN l.rel IS NULL THEN 'table does not exist'
                                              ELSE pg_catalog.format('%%s lacks %%s on it', current_user, l.privilege) END
      FROM ledger l WHERE l.nsp_oid IS NOT NULL AND (l.rel IS NULL OR NOT pg_catalog.has_table_privilege(l.rel, l.privilege))
) p ORDER BY 1, 2
$q$, v_expected);
END;
$$;
COMMENT ON FUNCTION starpipe.production_check_sql(text) IS
    'A query that lists what stops promotions into a separate production database (run there by starpipe production init).';
