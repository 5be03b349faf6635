-- starpipe: mapping-driven transformation of a raw version into a staging copy of production.

-- The SQL expression that produces one target column from a raw row aliased r.
CREATE FUNCTION starpipe._column_expr(p_spec jsonb, p_target_type text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expr text;
    v_rule text;
BEGIN
    -- Cleaning works on text, then one cast (or two, through the mapping's "type") to the target type.
    IF p_spec ? 'const' THEN
        v_expr := pg_catalog.format('%L::text', p_spec->>'const');
    ELSE
        v_expr := pg_catalog.format('r.%I::text', p_spec->>'from');
    END IF;
    FOR v_rule IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(p_spec->'clean', '[]')) LOOP
        -- The rule's template comes from the one list apply_mapping checks against.
        SELECT pg_catalog.format(r.expression, v_expr) INTO v_expr FROM starpipe.cleaning_rule r WHERE r.name = v_rule;
        IF NOT FOUND THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('unknown cleaning rule %L', v_rule));
        END IF;
    END LOOP;
    IF p_spec ? 'type' THEN
        v_expr := pg_catalog.format('(%s)::%s', v_expr, starpipe._mapping_type('type', p_spec->>'type'));
    END IF;
    RETURN pg_catalog.format('(%s)::%s', v_expr, p_target_type);
END;
$$;

-- Finds the first mapped column and source row whose value cannot be converted (values are never reported).
CREATE FUNCTION starpipe._find_bad_value(p_raw regclass, p_target regclass, p_columns jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_col text;
    v_spec jsonb;
    v_row bigint;
BEGIN
    -- Slow path, run only after a bulk conversion failed: probe column by column, then row by row. The casts into
    -- production types run as starpipe_writer (domain checks and type input functions are production-side code).
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(p_columns) ORDER BY key LOOP
        BEGIN
            PERFORM starpipe._as_writer_execute(pg_catalog.format('SELECT pg_catalog.count(%s) FROM %s r',
                                                starpipe._column_expr(v_spec, starpipe._column_type(p_target, v_col)), p_raw));
        EXCEPTION WHEN OTHERS THEN
            FOR v_row IN EXECUTE pg_catalog.format('SELECT _source_row FROM %s ORDER BY _source_row', p_raw) LOOP
                BEGIN
                    PERFORM starpipe._as_writer_execute(pg_catalog.format('SELECT %s FROM %s r WHERE r._source_row = %s',
                                                        starpipe._column_expr(v_spec, starpipe._column_type(p_target, v_col)), p_raw, v_row));
                EXCEPTION WHEN OTHERS THEN
                    RETURN pg_catalog.jsonb_build_object('column', v_col, 'from', v_spec->>'from', 'source_row', v_row,
                                                         'sqlstate', SQLSTATE, 'type', starpipe._column_type(p_target, v_col));
                END;
            END LOOP;
        END;
    END LOOP;
    RETURN NULL;
END;
$$;

-- Compares a job's source columns with what its mapping needs; returns the missing ones.
CREATE FUNCTION starpipe._missing_source_columns(p_job starpipe.job, p_map jsonb)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.array_agg(DISTINCT m.value->>'from' ORDER BY m.value->>'from')
      FROM pg_catalog.jsonb_each(p_map->'columns') m
     WHERE m.value ? 'from'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') c
                        WHERE c->>'name' = m.value->>'from');
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
     WHERE EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p_map->'columns') m WHERE m.value->>'from' = r->>'name')
       AND v_sv.accepted_at IS NULL
       AND (v_sv.mapping_columns IS NULL
            OR (SELECT pg_catalog.jsonb_object_agg(m.key, m.value) FROM pg_catalog.jsonb_each(v_sv.mapping_columns) m
                 WHERE m.value->>'from' = r->>'name')
               IS NOT DISTINCT FROM
               (SELECT pg_catalog.jsonb_object_agg(m.key, m.value) FROM pg_catalog.jsonb_each(p_map->'columns') m
                 WHERE m.value->>'from' = r->>'name'));
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
    v_type text;
    v_defs text := '';
    v_names text := '';
    v_exprs text := '';
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
    v_raw := starpipe.raw_version(p_job_id);
    v_staging := starpipe._staging_table(v_job, v_map);
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(v_map->'columns') ORDER BY key LOOP
        v_type := starpipe._column_type(v_target, v_col);
        v_defs := v_defs || pg_catalog.format('%I %s, ', v_col, v_type);
        v_names := v_names || pg_catalog.format('%I, ', v_col);
        v_exprs := v_exprs || starpipe._column_expr(v_spec, v_type) || pg_catalog.format(' AS %I, ', v_col);
    END LOOP;
    FOR v_spec IN SELECT pg_catalog.jsonb_array_elements(coalesce(v_map->'dedup'->'order_by', '[]')) LOOP
        v_order := v_order || pg_catalog.format('%I %s NULLS LAST, ', v_spec->>'column',
                                                CASE WHEN (v_spec->>'desc')::boolean THEN 'DESC' ELSE 'ASC' END);
    END LOOP;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', k), ', ' ORDER BY k) INTO v_key
      FROM pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') k;

    -- The casts into production types (domain checks, type input functions) run as starpipe_writer, which may read
    -- this raw version and fill this staging table for as long as this transaction needs it, and no longer.
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_raw);
    BEGIN
        IF pg_catalog.to_regclass(v_staging) IS NOT NULL THEN
            EXECUTE pg_catalog.format('DROP TABLE %s', v_staging);
        END IF;
        EXECUTE pg_catalog.format('CREATE TABLE %s (%s_ingestion_id bigint NOT NULL, _source_row bigint NOT NULL)', v_staging, v_defs);
        PERFORM starpipe._lock_down('TABLE', v_staging, 'SELECT', '{starpipe_admin}');
        EXECUTE pg_catalog.format('GRANT INSERT ON %s TO starpipe_writer', v_staging);
        -- Dedup on the conflict key; by default the row that came last in the file wins.
        v_rows := starpipe._as_writer_execute(pg_catalog.format(
            'INSERT INTO %s (%s_ingestion_id, _source_row) '
            'SELECT DISTINCT ON (%s) %s_ingestion_id, _source_row FROM ('
            '  SELECT %sr._ingestion_id, r._source_row FROM %s r) s '
            'ORDER BY %s, %s_source_row DESC',
            v_staging, v_names, v_key, v_names, v_exprs, v_raw, v_key, v_order));
        EXECUTE pg_catalog.format('REVOKE INSERT ON %s FROM starpipe_writer', v_staging);
    EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
        v_bad := starpipe._find_bad_value(v_raw, v_target, v_map->'columns');
        EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_raw);
        PERFORM starpipe._transition(v_job, 'FAILED', v_job.stage, 'transform_failed', v_bad,
            CASE WHEN v_bad IS NULL THEN pg_catalog.format('transform failed (SQLSTATE %s)', SQLSTATE)
                 ELSE pg_catalog.format('transform failed: source row %s, column %s (from %s): value is not a valid %s (SQLSTATE %s)',
                                        v_bad->>'source_row', v_bad->>'column', v_bad->>'from', v_bad->>'type', v_bad->>'sqlstate') END);
        RETURN 'FAILED';
    END;
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_raw);
    UPDATE starpipe.job SET rows_staged = v_rows WHERE job_id = p_job_id;
    PERFORM starpipe._transition(v_job, 'PROCESSING', 'transformed', 'transformed',
        pg_catalog.jsonb_build_object('staging', v_staging, 'rows', v_rows, 'deduplicated', v_job.rows_raw - v_rows,
                                      'mapping_version', v_mapping.version));
    RETURN 'PROCESSING';
END;
$$;
COMMENT ON FUNCTION starpipe.transform(bigint, bigint) IS
    'Builds the job''s staging table from its raw version with the client''s mapping (clean, cast, dedup); returns the status after.';
