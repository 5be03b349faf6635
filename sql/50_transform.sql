-- starpipe: mapping-driven transformation of a raw version into a staging copy of production.

-- Compares a job's source columns with what its mapping needs; returns the missing ones.
CREATE FUNCTION starpipe._missing_source_columns(p_job starpipe.job, p_map jsonb)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.array_agg(DISTINCT c ORDER BY c)
      FROM pg_catalog.jsonb_each(p_map->'columns') m CROSS JOIN LATERAL starpipe._spec_sources(m.value) c
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') mc
                        WHERE mc->>'name' = c);
$$;

-- The staging table of a job.
CREATE FUNCTION starpipe._staging_table(p_job starpipe.job, p_map jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('starpipe_staging.%I', starpipe._version_name(p_map->>'target', p_job.job_id));
$$;

-- Decides whether schema drift stops a job before transform: returns the BLOCKED reason and detail, or NULL.
CREATE FUNCTION starpipe._drift_block(p_job starpipe.job, p_map jsonb, p_mapping_version integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sv starpipe.schema_version;
    v_missing text[];
    v_retyped text[];
    v_new text[];
    v_renames text;
BEGIN
    -- A mapped source column that is gone (renamed or dropped) always blocks: it must never become NULLs.
    -- A mapped column whose type changed blocks until its schema version is accepted, or until the specs of the
    -- target columns mapped from it differ from those in force when the schema was first seen (a change made for
    -- it). A schema first seen while the table had no mapping is covered by acceptance only.
    SELECT * INTO v_sv FROM starpipe.schema_version s
     WHERE s.client = p_job.client AND s.table_name = p_job.table_name AND s.version = p_job.schema_version;
    v_missing := starpipe._missing_source_columns(p_job, p_map);
    SELECT pg_catalog.array_agg(DISTINCT r->>'name' ORDER BY r->>'name') INTO v_retyped
      FROM pg_catalog.jsonb_array_elements(coalesce(v_sv.diff->'retyped', '[]')) r
     WHERE EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p_map->'columns') m WHERE r->>'name' IN (SELECT starpipe._spec_sources(m.value)))
       AND v_sv.accepted_at IS NULL
       AND (v_sv.mapping_columns IS NULL
            OR (SELECT pg_catalog.jsonb_object_agg(m.key, m.value) FROM pg_catalog.jsonb_each(v_sv.mapping_columns) m
                 WHERE r->>'name' IN (SELECT starpipe._spec_sources(m.value)))
               IS NOT DISTINCT FROM
               (SELECT pg_catalog.jsonb_object_agg(m.key, m.value) FROM pg_catalog.jsonb_each(p_map->'columns') m
                 WHERE r->>'name' IN (SELECT starpipe._spec_sources(m.value))));
    IF v_missing IS NULL AND v_retyped IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.array_agg(a ORDER BY o) INTO v_new
      FROM pg_catalog.jsonb_array_elements_text(coalesce(v_sv.diff->'added', '[]')) WITH ORDINALITY AS x(a, o);
    SELECT pg_catalog.string_agg(pg_catalog.format('%s -> %s', r->>'from', r->>'to'), ', ' ORDER BY o) INTO v_renames
      FROM pg_catalog.jsonb_array_elements(coalesce(v_sv.diff->'rename_candidates', '[]')) WITH ORDINALITY AS x(r, o);
    RETURN pg_catalog.jsonb_build_object(
        'error', pg_catalog.concat_ws('; ',
            CASE WHEN v_missing IS NOT NULL THEN pg_catalog.format('schema drift: mapped source column(s) %s missing from %s.%s',
                pg_catalog.array_to_string(v_missing, ', '), p_job.client, p_job.table_name) END,
            CASE WHEN v_retyped IS NOT NULL THEN pg_catalog.format('schema drift: mapped source column(s) %s changed type in %s.%s',
                pg_catalog.array_to_string(v_retyped, ', '), p_job.client, p_job.table_name) END,
            CASE WHEN v_new IS NOT NULL THEN pg_catalog.format('new columns: %s', pg_catalog.array_to_string(v_new, ', ')) END,
            CASE WHEN v_renames IS NOT NULL THEN pg_catalog.format('rename candidates: %s', v_renames) END,
            CASE WHEN v_missing IS NOT NULL THEN 'map the new names and retry'
                 ELSE pg_catalog.format('accept with starpipe.accept_schema(%L, %L, %s) or change the mapping of the retyped column(s), then retry',
                                        p_job.client, p_job.table_name, v_sv.version) END),
        'detail', pg_catalog.jsonb_build_object(
            'missing_columns', pg_catalog.to_jsonb(coalesce(v_missing, '{}')),
            'retyped_columns', pg_catalog.to_jsonb(coalesce(v_retyped, '{}')),
            'new_columns', pg_catalog.to_jsonb(coalesce(v_new, '{}')),
            'rename_candidates', coalesce(v_sv.diff->'rename_candidates', '[]'),
            'schema_version', v_sv.version,
            'diff', v_sv.diff,
            'mapping_version', p_mapping_version));
END;
$$;

-- Creates a job's staging table: the mapped columns with their production types, NOT NULL and CHECK constraints.
CREATE FUNCTION starpipe._create_staging(p_staging text, p_target regclass, p_map jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_defs text;
BEGIN
    -- A row production would refuse for a NOT NULL or CHECK constraint is refused here, before promotion. The conflict
    -- key's NULLs stay the not_null gate's (BLOCKED with sample rows), as before staging carried constraints.
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s%s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                                                   CASE WHEN a.attnotnull AND NOT p_map->'conflict_key' ? a.attname THEN ' NOT NULL' ELSE '' END),
                                 ', ' ORDER BY a.attname)
      INTO v_defs
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = p_target AND a.attnum > 0 AND NOT a.attisdropped AND p_map->'columns' ? a.attname;
    SELECT v_defs || coalesce(pg_catalog.string_agg(pg_catalog.format(', CONSTRAINT %I CHECK (%s)', c.conname, c.expr), '' ORDER BY c.conname), '')
      INTO v_defs FROM starpipe._staging_checks(p_target, p_map) c;
    IF pg_catalog.to_regclass(p_staging) IS NOT NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE %s', p_staging);
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE %s (%s, _ingestion_id bigint NOT NULL, _source_row bigint NOT NULL)', p_staging, v_defs);
    PERFORM starpipe._lock_down('TABLE', p_staging, 'SELECT', '{starpipe_admin}');
END;
$$;

-- Transforms a job's raw version into staging with its client's mapping; returns the job's status after.
CREATE FUNCTION starpipe.transform(p_job_id bigint, p_fence bigint)
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
    v_job starpipe.job;
    v_mapping starpipe.mapping;
    v_map jsonb;
    v_target regclass;
    v_raw regclass;
    v_staging text;
    v_drift jsonb;
    v_col text;
    v_spec jsonb;
    v_names text := '';
    v_rejected bigint := 0;
    v_state text;
    v_key text;
    v_order text := '';
    v_rows bigint;
    v_bad jsonb;
BEGIN
    -- Data problems end in FAILED or BLOCKED (committed, with the reason); only misuse raises.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF v_job.status <> 'PROCESSING' OR v_job.stage NOT IN ('raw_loaded', 'transformed', 'validated') THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; transform needs a loaded raw version',
                                                           p_job_id, v_job.status, v_job.stage));
    END IF;
    SELECT * INTO v_mapping FROM starpipe.mapping WHERE client = v_job.client ORDER BY version DESC LIMIT 1;
    v_map := v_mapping.config->'tables'->v_job.table_name;
    IF v_map IS NULL THEN
        -- No mapping for this table: the data is kept in raw and the job is done.
        PERFORM starpipe._transition(v_job, 'SUCCESS', v_job.stage, 'raw_only',
                                     pg_catalog.jsonb_build_object('reason', 'no mapping for this table; kept in raw only'));
        RETURN 'SUCCESS';
    END IF;
    UPDATE starpipe.job SET mapping_version = v_mapping.version WHERE job_id = p_job_id;

    -- Drift that touches the mapping stops the job here; other drift proceeds with a warning.
    v_drift := starpipe._drift_block(v_job, v_map, v_mapping.version);
    IF v_drift IS NOT NULL THEN
        PERFORM starpipe._transition(v_job, 'BLOCKED', v_job.stage, 'drift', v_drift->'detail', v_drift->>'error');
        RETURN 'BLOCKED';
    END IF;
    IF EXISTS (SELECT 1 FROM starpipe.schema_version s
                WHERE s.client = v_job.client AND s.table_name = v_job.table_name AND s.version = v_job.schema_version
                  AND s.first_job = v_job.job_id AND s.diff IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM starpipe.job_event e WHERE e.job_id = p_job_id AND e.event = 'drift_warning') THEN
        PERFORM starpipe._transition(v_job, 'PROCESSING', v_job.stage, 'drift_warning',
            (SELECT pg_catalog.jsonb_build_object('schema_version', s.version, 'diff', s.diff) FROM starpipe.schema_version s
              WHERE s.client = v_job.client AND s.table_name = v_job.table_name AND s.version = v_job.schema_version));
    END IF;

    -- The allowlist and the writer's grants may have changed since the mapping was applied.
    PERFORM starpipe._check_target_schema(v_mapping.config->>'target_schema');
    v_target := pg_catalog.format('%I.%I', v_mapping.config->>'target_schema', v_map->>'target')::regclass;
    PERFORM starpipe._check_writer_rights(pg_catalog.format('tables.%s', v_job.table_name), v_target);
    -- Rows may reference rows a job of the same run brings: that one goes first, and this one resumes after it.
    IF starpipe._wait_for_batch(v_job, v_target, v_map) THEN
        RETURN 'BLOCKED';
    END IF;
    v_raw := starpipe.raw_version(p_job_id);
    v_staging := starpipe._staging_table(v_job, v_map);
    FOR v_col IN SELECT k FROM pg_catalog.jsonb_object_keys(v_map->'columns') k ORDER BY k LOOP
        v_names := v_names || pg_catalog.format('%I, ', v_col);
    END LOOP;
    FOR v_spec IN SELECT pg_catalog.jsonb_array_elements(coalesce(v_map->'dedup'->'order_by', '[]')) LOOP
        v_order := v_order || pg_catalog.format('%I %s NULLS LAST, ', v_spec->>'column',
                                                CASE WHEN (v_spec->>'desc')::boolean THEN 'DESC' ELSE 'ASC' END);
    END LOOP;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', k), ', ' ORDER BY k) INTO v_key
      FROM pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') k;

    -- A transform finds its rejects afresh (a retry after a mapping fix may refuse fewer rows).
    DELETE FROM starpipe.reject x WHERE x.job_id = p_job_id AND x.resolved_at IS NULL;
    -- The casts into production types (domain checks, type input functions) run as starpipe_writer, which may read
    -- this raw version and fill this staging table for as long as this transaction needs it, and no longer.
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_raw);
    PERFORM starpipe._create_staging(v_staging, v_target, v_map);
    PERFORM starpipe._record_staging_shape(p_job_id, v_target, v_map);
    EXECUTE pg_catalog.format('GRANT INSERT ON %s TO starpipe_writer', v_staging);
    BEGIN
        -- Dedup on the conflict key; by default the row that came last in the file wins.
        v_rows := starpipe._as_writer_execute(pg_catalog.format(
            'INSERT INTO %s (%s_ingestion_id, _source_row) '
            'SELECT DISTINCT ON (%s) %s_ingestion_id, _source_row FROM (%s) s '
            'ORDER BY %s, %s_source_row DESC',
            v_staging, v_names, v_key, v_names, starpipe._staging_select(v_job, v_raw, v_target, v_map), v_key, v_order));
    EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
        -- Some rows are refused: quarantine them, then stage the others if the budget allows.
        v_state := SQLSTATE;
        v_rejected := starpipe._quarantine(v_job, v_raw, v_target, v_map);
        IF v_rejected > 0 AND NOT starpipe._over_reject_budget(v_map, v_rejected, starpipe._budget_rows(v_job)) THEN
            BEGIN
                v_rows := starpipe._as_writer_execute(pg_catalog.format(
                    'INSERT INTO %s (%s_ingestion_id, _source_row) '
                    'SELECT DISTINCT ON (%s) %s_ingestion_id, _source_row FROM (%s) s '
                    'ORDER BY %s, %s_source_row DESC',
                    v_staging, v_names, v_key, v_names, starpipe._staging_select(v_job, v_raw, v_target, v_map), v_key, v_order));
            EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
                v_state := SQLSTATE;
                v_rows := NULL;
            END;
        END IF;
        IF v_rows IS NULL THEN
            EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_raw);
            EXECUTE pg_catalog.format('REVOKE INSERT ON %s FROM starpipe_writer', v_staging);
            v_bad := starpipe._reject_summary(v_job, v_map, v_rejected);
            UPDATE starpipe.job SET rows_rejected = v_rejected WHERE job_id = p_job_id;
            PERFORM starpipe._transition(v_job, 'FAILED', v_job.stage, 'transform_failed', v_bad,
                CASE WHEN v_rejected = 0 OR NOT starpipe._over_reject_budget(v_map, v_rejected, starpipe._budget_rows(v_job))
                     THEN pg_catalog.format('transform failed (SQLSTATE %s)', v_state)
                     ELSE pg_catalog.format('transform failed: %s of %s rows rejected, over the reject budget (%s): %s; e.g. source row %s, column %s (from %s), rule %s (SQLSTATE %s)',
                                            v_rejected, v_job.rows_raw, starpipe._reject_budget_text(v_map), v_bad->>'summary',
                                            v_bad->>'source_row', coalesce(v_bad->>'column', '-'), coalesce(v_bad->>'from', '-'),
                                            v_bad->>'rule', v_bad->>'sqlstate') END);
            RETURN 'FAILED';
        END IF;
    END;
    EXECUTE pg_catalog.format('REVOKE INSERT ON %s FROM starpipe_writer', v_staging);
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_raw);
    -- Reconciliation: raw = staged + rejected + removed by dedup, each counted, recorded on the job.
    UPDATE starpipe.job SET rows_staged = v_rows, rows_rejected = v_rejected,
                            rows_deduplicated = v_job.rows_raw - v_rejected - v_rows
     WHERE job_id = p_job_id;
    PERFORM starpipe._transition(v_job, 'PROCESSING', 'transformed', 'transformed',
        pg_catalog.jsonb_build_object('staging', v_staging, 'rows', v_rows, 'rejected', v_rejected,
                                      'deduplicated', v_job.rows_raw - v_rejected - v_rows, 'mapping_version', v_mapping.version)
        || CASE WHEN v_rejected > 0 THEN pg_catalog.jsonb_build_object('rejects', starpipe._reject_summary(v_job, v_map, v_rejected)->'rejects')
                ELSE '{}' END);
    RETURN 'PROCESSING';
END;
$$;
COMMENT ON FUNCTION starpipe.transform(bigint, bigint) IS
    'Builds the job''s staging table from its raw version with the client''s mapping (clean, cast, dedup); returns the status after.';
