-- starpipe: validation gates on a job's staging table.

-- Runs one gate query; returns a failure object when it finds offending rows, else NULL.
CREATE FUNCTION starpipe._gate(p_rule text, p_column text, p_staging text, p_where text)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count bigint;
    v_sample bigint[];
BEGIN
    -- Reports source row numbers, never values. The predicate compares production types, so it runs as starpipe_writer.
    SELECT (r->>'count')::bigint, ARRAY(SELECT pg_catalog.jsonb_array_elements_text(r->'sample')::bigint)
      INTO v_count, v_sample
      FROM starpipe._as_writer_query(pg_catalog.format(
        'SELECT pg_catalog.jsonb_build_object(''count'', pg_catalog.count(*), '
        '''sample'', coalesce((pg_catalog.array_agg(_source_row ORDER BY _source_row))[1:5], ''{}'')) FROM %s s WHERE %s',
        p_staging, p_where)) r;
    IF v_count = 0 THEN
        RETURN NULL;
    END IF;
    RETURN pg_catalog.jsonb_build_object('rule', p_rule, 'column', p_column, 'rows', v_count, 'sample_source_rows', pg_catalog.to_jsonb(v_sample));
END;
$$;

-- Checks a job's staging rows against its mapping's gates; returns the job's status after.
CREATE FUNCTION starpipe.validate(p_job_id bigint, p_fence bigint)
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
    v_map jsonb;
    v_staging text;
    v_check jsonb;
    v_col text;
    v_failures jsonb := '[]';
    v_failure jsonb;
    v_rows bigint;
    v_digest text;
    v_fingerprint jsonb;
    v_status text;
BEGIN
    -- Gates that fail block the job before production is touched; the staging rows stay for review.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    -- A retry after a lost COMMIT reply: this holder validated the job already (a block it set would have ended
    -- its hold, so the fence check above reports that one as SP002).
    IF v_job.stage = 'validated' THEN
        RETURN v_job.status;
    END IF;
    IF v_job.status <> 'PROCESSING' OR v_job.stage <> 'transformed' THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; validate needs stage transformed',
                                                           p_job_id, v_job.status, v_job.stage));
    END IF;
    v_map := starpipe._validation_mapping(v_job);
    v_staging := starpipe._staging_table(v_job, v_map);
    -- Rows may reference rows a job of the same run brings: that one is promoted first (this one resumes then).
    -- Transform waits for it already; this catches one registered since.
    IF starpipe._wait_for_batch(v_job, starpipe._staging_target(v_job), v_map) THEN
        RETURN 'BLOCKED';
    END IF;
    -- The gates run as starpipe_writer, which reads this staging table only while they run.
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_staging);
    -- The digest of the staged rows as checked here, and the transactions that wrote them: promote refuses a
    -- staging table that no longer matches.
    v_fingerprint := starpipe._staging_fingerprint(v_staging::regclass,
                                                   ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(v_map->'columns') k ORDER BY k));
    v_digest := v_fingerprint->>'digest';
    v_rows := starpipe._digest_rows(v_digest);
    UPDATE starpipe.job SET staged_digest = v_digest, staged_xmins = ARRAY(SELECT pg_catalog.jsonb_array_elements_text(v_fingerprint->'xmins'))
     WHERE job_id = p_job_id;

    -- The conflict key is always a gate: promotion cannot place a row without it.
    FOR v_col IN SELECT pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') LOOP
        v_failure := starpipe._gate('not_null', v_col, v_staging, pg_catalog.format('s.%I IS NULL', v_col));
        IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
    END LOOP;
    -- So is reconciliation: every raw row is staged, rejected or removed by dedup, exactly once.
    v_failure := starpipe._reconciliation_gate(v_job, v_staging, v_rows);
    IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
    -- And production's shape: staging built before a DDL change is never promoted; and its foreign keys.
    v_failure := starpipe._shape_gate(v_job, v_map);
    IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
    v_failures := v_failures || starpipe._foreign_key_gates(starpipe._staging_target(v_job), v_map, v_staging);
    -- The baseline null_drift and row_count_change compare later snapshots with.
    PERFORM starpipe._profile_snapshot(v_job, v_map, v_staging, v_rows);
    FOR v_check IN SELECT pg_catalog.jsonb_array_elements(coalesce(v_map->'checks', '[]')) LOOP
        v_failures := v_failures || starpipe._run_gate(v_job, v_map, v_staging, v_rows, v_check);
    END LOOP;

    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);

    IF pg_catalog.jsonb_array_length(v_failures) > 0 THEN
        -- A gate whose failure needs no human decision (reconciliation, or on_fail: failed) fails the job instead.
        v_status := CASE WHEN pg_catalog.jsonb_path_exists(v_failures, '$[*] ? (@.fails_job == true)') THEN 'FAILED' ELSE 'BLOCKED' END;
        PERFORM starpipe._transition(v_job, v_status, 'transformed', 'validation_failed',
            pg_catalog.jsonb_build_object('failures', v_failures),
            'validation failed: ' || (SELECT pg_catalog.string_agg(
                pg_catalog.format('%s(%s)%s%s', f->>'rule', coalesce(f->>'column', ''),
                    CASE WHEN f ? 'figures' THEN ' ' || (f->>'figures') ELSE '' END,
                    CASE WHEN f ? 'rows' AND f ? 'sample_source_rows'
                         THEN pg_catalog.format(' %s rows, e.g. source rows %s', f->>'rows', f->'sample_source_rows') ELSE '' END), '; ')
                FROM pg_catalog.jsonb_array_elements(v_failures) f));
        RETURN v_status;
    END IF;
    IF coalesce(v_map->>'promotion', 'auto') = 'manual' THEN
        PERFORM starpipe._transition(v_job, 'BLOCKED', 'validated', 'awaiting_promotion',
            pg_catalog.jsonb_build_object('rows', v_rows), 'validated; awaiting manual promotion (starpipe promote JOB)');
        RETURN 'BLOCKED';
    END IF;
    PERFORM starpipe._transition(v_job, 'PROCESSING', 'validated', 'validated', pg_catalog.jsonb_build_object('rows', v_rows));
    RETURN 'PROCESSING';
END;
$$;
COMMENT ON FUNCTION starpipe.validate(bigint, bigint) IS
    'Runs the mapping''s gates on the job''s staging rows; failures block the job with rule names and sample source rows.';
