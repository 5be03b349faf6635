-- starpipe: the gates a mapping's "checks" run at validate, one function per check (_run_gate), and the snapshot
-- profile that null_drift and row_count_change compare with the last promoted snapshot of the same table.

-- Per validated job: its staged row count and, when its mapping has a null_drift check, NULLs per mapped column.
CREATE TABLE starpipe.snapshot_profile (
    job_id      bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    rows        bigint NOT NULL,
    null_counts jsonb,
    profiled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE starpipe.snapshot_profile IS 'Staged rows and NULL counts per mapped column of each validated job: the baseline null_drift and row_count_change compare a new snapshot with (counts only, never values).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.snapshot_profile', '');

-- Records a job's profile from its staging table (one scan, only when a null_drift check needs NULL counts).
CREATE FUNCTION starpipe._profile_snapshot(p_job starpipe.job, p_map jsonb, p_staging text, p_rows bigint)
RETURNS starpipe.snapshot_profile
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nulls jsonb;
    v_profile starpipe.snapshot_profile;
BEGIN
    -- A clean batch whose mapping has no null_drift check pays nothing here beyond the row count validate has.
    IF EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(coalesce(p_map->'checks', '[]')) c WHERE c ? 'null_drift') THEN
        SELECT r INTO v_nulls FROM starpipe._as_writer_query(pg_catalog.format('SELECT pg_catalog.jsonb_build_object(%s) FROM %s s',
            (SELECT pg_catalog.string_agg(pg_catalog.format('%L, pg_catalog.count(*) - pg_catalog.count(s.%I)', k, k), ', ' ORDER BY k)
               FROM pg_catalog.jsonb_object_keys(p_map->'columns') k), p_staging)) r;
    END IF;
    INSERT INTO starpipe.snapshot_profile AS p (job_id, rows, null_counts) VALUES (p_job.job_id, p_rows, v_nulls)
    ON CONFLICT (job_id) DO UPDATE SET rows = EXCLUDED.rows, null_counts = EXCLUDED.null_counts, profiled_at = pg_catalog.now()
    RETURNING * INTO v_profile;
    RETURN v_profile;
END;
$$;

-- The profile of the last promoted snapshot of a job's table before this job, or NULL when there is none.
CREATE FUNCTION starpipe._baseline_profile(p_job starpipe.job)
RETURNS starpipe.snapshot_profile
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.* FROM starpipe.job j JOIN starpipe.snapshot_profile p ON p.job_id = j.job_id
     WHERE j.client = p_job.client AND j.table_name = p_job.table_name AND j.job_id <> p_job.job_id
       AND j.status = 'SUCCESS' AND j.stage = 'promoted'
     ORDER BY j.snapshot_date DESC, j.job_id DESC
     LIMIT 1;
$$;

-- Runs one check of a mapping on a job's staging table; returns its failures (an array, empty when it passes).
CREATE FUNCTION starpipe._run_gate(p_job starpipe.job, p_map jsonb, p_staging text, p_rows bigint, p_check jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule text;
    v_arg jsonb;
    v_col text;
    v_key text;
    v_failures jsonb := '[]';
    v_failure jsonb;
    v_frac numeric;
    v_base starpipe.snapshot_profile;
    v_base_frac numeric;
    v_change numeric;
    v_result jsonb;
    v_state text;
BEGIN
    -- Every failure names its rule and figures, with sample source rows where rows are at fault; never values.
    -- apply_mapping admits one rule per check (plus on_fail); a stored config from before that is refused, not half run.
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(p_check - 'on_fail')) <> 1 THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('tables.%s.checks: each check is an object with exactly one rule', p_job.table_name),
                                NULL, 'Apply the mapping again; apply_mapping now validates every check.');
    END IF;
    v_rule := (SELECT k FROM pg_catalog.jsonb_object_keys(p_check - 'on_fail') k);
    v_arg := p_check->v_rule;
    IF v_rule = 'not_null' THEN
        FOR v_col IN SELECT pg_catalog.jsonb_array_elements_text(v_arg) LOOP
            v_failure := starpipe._gate('not_null', v_col, p_staging, pg_catalog.format('s.%I IS NULL', v_col));
            IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
        END LOOP;
    ELSIF v_rule = 'unique' THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ') INTO v_key FROM pg_catalog.jsonb_array_elements_text(v_arg) c;
        v_failure := starpipe._gate('unique', v_key, p_staging, pg_catalog.format(
            '(%s) IN (SELECT %s FROM %s GROUP BY %s HAVING pg_catalog.count(*) > 1)', v_key, v_key, p_staging, v_key));
        IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
    ELSIF v_rule = 'accepted_values' THEN
        v_col := v_arg->>'column';
        v_failure := starpipe._gate('accepted_values', v_col, p_staging, pg_catalog.format(
            's.%I IS NOT NULL AND NOT coalesce(s.%I::text = ANY (%L::text[]), false)', v_col, v_col,
            (SELECT pg_catalog.array_agg(v) FROM pg_catalog.jsonb_array_elements_text(v_arg->'values') v)));
        IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
    ELSIF v_rule = 'min_rows' THEN
        IF p_rows < (v_arg #>> '{}')::bigint THEN
            v_failures := v_failures || pg_catalog.jsonb_build_object('rule', 'min_rows', 'rows', p_rows, 'minimum', (v_arg #>> '{}')::bigint,
                                                                      'figures', pg_catalog.format('%s rows staged, minimum %s', p_rows, v_arg #>> '{}'));
        END IF;
    ELSIF v_rule = 'null_fraction' THEN
        v_col := v_arg->>'column';
        SELECT (r->>'fraction')::numeric INTO v_frac FROM starpipe._as_writer_query(pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(''fraction'', pg_catalog.avg((s.%I IS NULL)::int)) FROM %s s', v_col, p_staging)) r;
        IF coalesce(v_frac, 0) > (v_arg->>'max')::numeric OR v_arg->>'max' IS NULL THEN
            v_failures := v_failures || pg_catalog.jsonb_build_object('rule', 'null_fraction', 'column', v_col,
                                                                      'fraction', pg_catalog.round(v_frac, 4), 'max', v_arg->'max');
        END IF;
    ELSIF v_rule = 'null_drift' THEN
        -- The phantom NULL: a column (almost) never NULL in the last promoted snapshot, NULL beyond max now.
        v_col := v_arg->>'column';
        v_base := starpipe._baseline_profile(p_job);
        v_frac := ((SELECT p.null_counts->>v_col FROM starpipe.snapshot_profile p WHERE p.job_id = p_job.job_id)::numeric) / NULLIF(p_rows, 0);
        v_base_frac := (v_base.null_counts->>v_col)::numeric / NULLIF(v_base.rows, 0);
        IF v_base_frac IS NOT NULL AND v_base_frac <= (v_arg->>'max')::numeric AND coalesce(v_frac, 0) > (v_arg->>'max')::numeric THEN
            v_failure := starpipe._gate('null_drift', v_col, p_staging, pg_catalog.format('s.%I IS NULL', v_col));
            v_failures := v_failures || (coalesce(v_failure, '{}') || pg_catalog.jsonb_build_object(
                'rule', 'null_drift', 'column', v_col, 'fraction', pg_catalog.round(v_frac, 4), 'baseline_fraction', pg_catalog.round(v_base_frac, 4),
                'baseline_job', v_base.job_id, 'max', v_arg->'max',
                'figures', pg_catalog.format('NULL fraction %s, was %s in job %s (max %s):', pg_catalog.round(v_frac, 4),
                                             pg_catalog.round(v_base_frac, 4), v_base.job_id, v_arg->'max')));
        END IF;
    ELSIF v_rule = 'row_count_change' THEN
        v_base := starpipe._baseline_profile(p_job);
        IF v_base.rows IS NOT NULL THEN
            v_change := CASE WHEN v_base.rows = 0 THEN CASE WHEN p_rows = 0 THEN 0 END
                             ELSE 100.0 * pg_catalog.abs(p_rows - v_base.rows) / v_base.rows END;
            IF v_change IS NULL OR v_change > (v_arg #>> '{}')::numeric THEN
                v_failures := v_failures || pg_catalog.jsonb_build_object('rule', 'row_count_change', 'rows', p_rows,
                    'baseline_rows', v_base.rows, 'baseline_job', v_base.job_id, 'change_percent', pg_catalog.round(v_change, 2),
                    'max_percent', v_arg,
                    'figures', pg_catalog.format('%s rows, %s in job %s: %s%% change (max %s%%)', p_rows, v_base.rows, v_base.job_id,
                                                 coalesce(pg_catalog.round(v_change, 2)::text, 'infinite'), v_arg));
            END IF;
        END IF;
    ELSIF v_rule = 'sql' THEN
        -- The query sees the staged rows as "staged" and returns offending source row numbers. It runs as
        -- starpipe_writer inside a subtransaction that is always rolled back, so whatever it might write is undone.
        BEGIN
            SELECT r INTO v_result FROM starpipe._as_writer_query(pg_catalog.format(
                'WITH staged AS (SELECT * FROM %s) SELECT pg_catalog.jsonb_build_object(''rows'', pg_catalog.count(*), '
                '''sample'', coalesce((pg_catalog.array_agg(q.source_row ORDER BY q.source_row))[1:5], ''{}'')) '
                'FROM (%s) AS q (source_row)', p_staging, v_arg->>'query')) r;
            RAISE EXCEPTION USING ERRCODE = 'SP900';
        EXCEPTION
            WHEN SQLSTATE 'SP900' THEN
                NULL;
            WHEN OTHERS THEN
                v_state := SQLSTATE;
        END;
        IF v_state IS NOT NULL THEN
            v_failures := v_failures || pg_catalog.jsonb_build_object('rule', 'sql', 'column', v_arg->>'name', 'error_sqlstate', v_state,
                'figures', pg_catalog.format('the query failed (SQLSTATE %s)', v_state));
        ELSIF (v_result->>'rows')::bigint > 0 THEN
            v_failures := v_failures || pg_catalog.jsonb_build_object('rule', 'sql', 'column', v_arg->>'name',
                'rows', (v_result->>'rows')::bigint, 'sample_source_rows', v_result->'sample');
        END IF;
    ELSE
        -- apply_mapping admits only starpipe.check_rule's names; a rule listed there but not run here is a bug.
        PERFORM starpipe._raise('SP006', pg_catalog.format('check %L is not implemented by validate', v_rule));
    END IF;
    IF p_check->>'on_fail' = 'failed' THEN
        SELECT coalesce(pg_catalog.jsonb_agg(f || '{"fails_job": true}'), '[]') INTO v_failures FROM pg_catalog.jsonb_array_elements(v_failures) f;
    END IF;
    RETURN v_failures;
END;
$$;

-- Refuses a sql check whose query does not plan against the mapped columns (or returns other than one column).
CREATE FUNCTION starpipe._check_sql_gates(p_where text, p_target regclass, p_map jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_check jsonb;
    v_staged text;
BEGIN
    -- Planned as starpipe_writer over an empty "staged" of the staging table's shape (LIMIT 0: nothing runs).
    SELECT pg_catalog.string_agg(pg_catalog.format('NULL::%s AS %I', starpipe._column_type(p_target, k), k), ', ' ORDER BY k)
           || ', NULL::bigint AS _ingestion_id, NULL::bigint AS _source_row'
      INTO v_staged FROM pg_catalog.jsonb_object_keys(p_map->'columns') k;
    FOR v_check IN SELECT c FROM pg_catalog.jsonb_array_elements(coalesce(p_map->'checks', '[]')) c WHERE c ? 'sql' LOOP
        BEGIN
            PERFORM starpipe._as_writer_execute(pg_catalog.format(
                'WITH staged AS (SELECT %s) SELECT q.source_row::bigint FROM (%s) AS q (source_row) LIMIT 0', v_staged, v_check->'sql'->>'query'));
        EXCEPTION WHEN syntax_error_or_access_rule_violation OR data_exception OR feature_not_supported THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.checks.sql(%s): the query does not plan (SQLSTATE %s)',
                                                               p_where, v_check->'sql'->>'name', SQLSTATE), NULL,
                'It is a SELECT over "staged" (the mapped columns, _ingestion_id, _source_row) returning one column of source row numbers.');
        END;
    END LOOP;
END;
$$;

-- The table mapping a job's gates run with: the one it was transformed with, or the client's newest when that differs
-- from it only in its checks (then the job records the newest version).
CREATE FUNCTION starpipe._validation_mapping(p_job starpipe.job)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_map jsonb;
    v_latest starpipe.mapping;
BEGIN
    -- So a retry after a gate fix resumes at validation; anything else changed needs its own transform, so the
    -- staged rows keep the version that made them.
    SELECT m.config->'tables'->p_job.table_name INTO v_map FROM starpipe.mapping m
     WHERE m.client = p_job.client AND m.version = p_job.mapping_version;
    SELECT * INTO v_latest FROM starpipe.mapping m WHERE m.client = p_job.client ORDER BY m.version DESC LIMIT 1;
    IF v_latest.version > p_job.mapping_version
       AND v_latest.config - 'tables' = (SELECT m.config - 'tables' FROM starpipe.mapping m WHERE m.client = p_job.client AND m.version = p_job.mapping_version)
       AND (v_latest.config->'tables'->p_job.table_name) - 'checks' = v_map - 'checks' THEN
        UPDATE starpipe.job SET mapping_version = v_latest.version WHERE job_id = p_job.job_id;
        RETURN v_latest.config->'tables'->p_job.table_name;
    END IF;
    RETURN v_map;
END;
$$;

-- The jobs of the same extraction run (client, snapshot date, run id) that load a table the job's production table
-- references through a foreign key on mapped columns, and have not been promoted yet: the job's rows may reference
-- theirs, so its foreign-key gates wait until they are in production. A sibling that itself waits for the batch is
-- left out (a cycle of foreign keys would otherwise wait forever; its gate then names what is missing). The rows are
-- locked FOR SHARE: a sibling finishing now waits for this transaction, so its wake-up (_wake_batch_dependents) sees
-- the job waiting. Returns [{job_id, table, references, status, stage}], empty when nothing is awaited.
CREATE FUNCTION starpipe._batch_parents(p_job starpipe.job, p_target regclass, p_map jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_refs jsonb;
    v_parents jsonb;
BEGIN
    IF p_target IS NULL THEN
        RETURN '[]';
    END IF;
    -- The referenced tables (not the table itself), by foreign keys whose columns the mapping writes.
    SELECT pg_catalog.jsonb_object_agg(x.ref, x.names) INTO v_refs FROM (
        SELECT c.confrelid::regclass::text AS ref, pg_catalog.jsonb_agg(c.conname::text ORDER BY c.conname) AS names
          FROM pg_catalog.pg_constraint c
         WHERE c.conrelid = p_target AND c.contype = 'f' AND c.confrelid <> p_target
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(c.conkey) k JOIN pg_catalog.pg_attribute a
                                      ON a.attrelid = c.conrelid AND a.attnum = k
                            WHERE NOT p_map->'columns' ? a.attname::text)
         GROUP BY c.confrelid) x;
    IF v_refs IS NULL THEN
        RETURN '[]';
    END IF;
    WITH siblings AS (
        SELECT j.job_id, j.table_name, j.status, j.stage,
               (SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(m.config->>'target_schema') || '.'
                                              || pg_catalog.quote_ident(m.config->'tables'->j.table_name->>'target'))
                  FROM starpipe.mapping m
                 WHERE m.client = j.client AND (m.version = j.mapping_version OR j.mapping_version IS NULL)
                 ORDER BY m.version DESC LIMIT 1) AS target
          FROM starpipe.job j
         WHERE j.client = p_job.client AND j.snapshot_date = p_job.snapshot_date AND j.run_id = p_job.run_id
           AND j.job_id <> p_job.job_id AND j.status = ANY (starpipe._unfinished_statuses())
           AND NOT (j.status = 'BLOCKED' AND j.error_detail ? 'waits_for')
           FOR SHARE OF j)
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('job_id', s.job_id, 'table', s.table_name, 'target', s.target::text,
                                                              'references', v_refs->(s.target::text), 'status', s.status, 'stage', s.stage)
                                ORDER BY s.job_id)
      INTO v_parents FROM siblings s WHERE v_refs ? (s.target::text);
    RETURN coalesce(v_parents, '[]');
END;
$$;

-- Blocks the job (waiting_for_batch, resumed by _wake_batch_dependents) when jobs of its run that it may reference
-- are not promoted yet; returns whether it did.
CREATE FUNCTION starpipe._wait_for_batch(p_job starpipe.job, p_target regclass, p_map jsonb)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_parents jsonb := starpipe._batch_parents(p_job, p_target, p_map);
BEGIN
    IF pg_catalog.jsonb_array_length(v_parents) = 0 THEN
        RETURN false;
    END IF;
    PERFORM starpipe._transition(p_job, 'BLOCKED', p_job.stage, 'waiting_for_batch',
        pg_catalog.jsonb_build_object('waits_for', v_parents),
        pg_catalog.format('waiting for %s of the same run to be promoted first (foreign keys into %s); it resumes by itself',
            (SELECT pg_catalog.string_agg(pg_catalog.format('job %s (%s, %s)', p->>'job_id', p->>'table', p->>'status'), ', ')
               FROM pg_catalog.jsonb_array_elements(v_parents) p),
            (SELECT pg_catalog.string_agg(DISTINCT p->>'target', ', ') FROM pg_catalog.jsonb_array_elements(v_parents) p)));
    RETURN true;
END;
$$;

-- When a job of a run ends (SUCCESS, FAILED, DEAD), the jobs of the run waiting for it (BLOCKED waiting_for_batch)
-- go back to the queue at validation: their foreign-key gates then see what production holds.
CREATE FUNCTION starpipe._wake_batch_dependents(p_job starpipe.job)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dependent starpipe.job;
BEGIN
    FOR v_dependent IN
        SELECT * FROM starpipe.job d
         WHERE d.client = p_job.client AND d.snapshot_date = p_job.snapshot_date AND d.run_id = p_job.run_id
           AND d.status = 'BLOCKED' AND d.job_id <> p_job.job_id
           AND d.error_detail->'waits_for' @> pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('job_id', p_job.job_id))
         ORDER BY d.job_id
           FOR UPDATE
    LOOP
        PERFORM starpipe._requeue(v_dependent, 'batch_ready');
    END LOOP;
END;
$$;

-- The foreign keys of a job's production table as gates: staged rows whose reference production lacks.
CREATE FUNCTION starpipe._foreign_key_gates(p_target regclass, p_map jsonb, p_staging text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fk record;
    v_failure jsonb;
    v_failures jsonb := '[]';
BEGIN
    -- Read from the catalog at every validation (a foreign key added later applies at once). MATCH SIMPLE: a row with
    -- a NULL in the key passes. A foreign key on an unmapped column concerns values promotion does not write.
    FOR v_fk IN
        SELECT c.conname::text AS name, c.confrelid::regclass AS ref,
               (SELECT pg_catalog.array_agg(a.attname::text ORDER BY k.o) FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k(n, o)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n) AS cols,
               (SELECT pg_catalog.array_agg(a.attname::text ORDER BY k.o) FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY AS k(n, o)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n) AS refcols
          FROM pg_catalog.pg_constraint c
         WHERE c.conrelid = p_target AND c.contype = 'f' AND c.convalidated
         ORDER BY c.conname
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.unnest(v_fk.cols) k WHERE NOT p_map->'columns' ? k);
        BEGIN
            v_failure := starpipe._gate('foreign_key', v_fk.name, p_staging, pg_catalog.format(
                '%s AND NOT EXISTS (SELECT 1 FROM %s r WHERE (%s) = (%s))',
                (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I IS NOT NULL', k), ' AND ') FROM pg_catalog.unnest(v_fk.cols) k),
                v_fk.ref,
                (SELECT pg_catalog.string_agg(pg_catalog.format('r.%I', k), ', ' ORDER BY o) FROM pg_catalog.unnest(v_fk.refcols) WITH ORDINALITY AS x(k, o)),
                (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', k), ', ' ORDER BY o) FROM pg_catalog.unnest(v_fk.cols) WITH ORDINALITY AS x(k, o))));
            IF v_failure IS NOT NULL THEN
                v_failures := v_failures || (v_failure || pg_catalog.jsonb_build_object('references', v_fk.ref::text,
                    'figures', pg_catalog.format('(%s) not in %s (%s):', pg_catalog.array_to_string(v_fk.cols, ', '), v_fk.ref,
                                                 pg_catalog.array_to_string(v_fk.refcols, ', '))));
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            v_failures := v_failures || pg_catalog.jsonb_build_object('rule', 'foreign_key', 'column', v_fk.name, 'error_sqlstate', SQLSTATE,
                'figures', pg_catalog.format('starpipe_writer cannot read %s: GRANT SELECT ON %s TO starpipe_writer', v_fk.ref, v_fk.ref));
        END;
    END LOOP;
    RETURN v_failures;
END;
$$;
