-- starpipe: verification of a job's digests, from its raw version through staging to production.

-- Recomputes a job's digests and says, stage by stage, whether they still agree with what was recorded:
--   raw        the raw version against the digest taken when it was loaded;
--   staged     the staging table against the digest validate took (promote checked it too);
--   production the rows of the job's keys in production against the digest of what the promotion left there. A
--              row a later promotion changed or deleted counts with the hash that promotion recorded of it before
--              its change, so a chain of promotions still verifies and a row changed by hand in between does not.
-- A stage that cannot be recomputed (raw and staging dropped by retention, a job not promoted) says why, with
-- agrees NULL. Rows are named by source row number, never by value.
CREATE FUNCTION starpipe.verify(p_job_id bigint)
RETURNS TABLE (stage text, recorded text, recomputed text, agrees boolean, detail jsonb)
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
    v_promotion starpipe.promotion;
    v_map jsonb;
    v_raw regclass;
    v_staging regclass;
    v_target regclass;
    v_cols text[];
    v_key text[];
    v_join text;
    v_key_json text;
    v_candidates text;
    v_currents text;
    v_result jsonb;
    v_production text;
BEGIN
    SELECT * INTO v_job FROM starpipe.job j WHERE j.job_id = p_job_id;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('job %s does not exist', p_job_id));
    END IF;
    SELECT m.config->'tables'->v_job.table_name, m.config->>'production' INTO v_map, v_production FROM starpipe.mapping m
     WHERE m.client = v_job.client AND m.version = v_job.mapping_version;

    -- raw
    v_raw := pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'raw_' || v_job.client,
                                                      starpipe._version_name(v_job.table_name, v_job.job_id)));
    stage := 'raw'; recorded := v_job.raw_digest;
    IF v_raw IS NULL OR v_job.stage = 'registered' THEN
        recomputed := NULL; agrees := NULL;
        detail := pg_catalog.jsonb_build_object('reason', CASE WHEN v_job.stage = 'registered' THEN 'the job has no raw version yet'
                                                              ELSE 'the raw version was dropped by retention' END);
    ELSE
        recomputed := starpipe._digest_of(v_raw, starpipe._raw_columns(v_raw));
        agrees := CASE WHEN recorded IS NULL THEN NULL ELSE recorded = recomputed END;
        detail := pg_catalog.jsonb_build_object('raw_version', v_raw::text)
                  || CASE WHEN recorded IS NULL THEN '{"reason": "loaded before digests were recorded"}'::jsonb ELSE '{}' END;
    END IF;
    RETURN NEXT;

    stage := 'staged'; recorded := v_job.staged_digest; recomputed := NULL; agrees := NULL;
    IF v_map IS NULL THEN
        detail := '{"reason": "the job has no mapping (raw only)"}';
        RETURN NEXT;
        stage := 'production'; recorded := NULL; detail := '{"reason": "the job has no mapping (raw only)"}';
        RETURN NEXT;
        RETURN;
    END IF;
    v_staging := pg_catalog.to_regclass(starpipe._staging_table(v_job, v_map));
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_cols FROM pg_catalog.jsonb_object_keys(v_map->'columns') k;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key FROM pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') k;
    IF v_staging IS NULL OR v_job.stage IN ('registered', 'raw_loaded') THEN
        detail := pg_catalog.jsonb_build_object('reason', CASE WHEN v_job.stage IN ('registered', 'raw_loaded') THEN 'the job was not transformed'
                                                              ELSE 'the staging table was dropped with the raw version by retention' END);
        RETURN NEXT;
        stage := 'production'; recorded := v_job.promoted_digest;
        detail := '{"reason": "the job''s keys are known from its staging table, which is gone"}';
        RETURN NEXT;
        RETURN;
    END IF;
    -- Staging and production hold production types: read and hashed as starpipe_writer.
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_staging);
    recomputed := starpipe._digest_as_writer(v_staging, v_cols);
    agrees := CASE WHEN recorded IS NULL THEN NULL ELSE recorded = recomputed END;
    detail := pg_catalog.jsonb_build_object('staging', v_staging::text);
    RETURN NEXT;

    -- production
    stage := 'production'; recorded := v_job.promoted_digest; recomputed := NULL; agrees := NULL;
    SELECT * INTO v_promotion FROM starpipe.promotion p WHERE p.job_id = p_job_id;
    IF v_production IS NOT NULL THEN
        EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
        detail := pg_catalog.jsonb_build_object('reason', 'production is the separate database ' || v_production
                                                || '; its ledger (starpipe_ledger.applied) holds the job with its staged digest');
        RETURN NEXT;
        RETURN;
    END IF;
    IF NOT FOUND OR v_job.stage <> 'promoted' THEN
        EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
        detail := '{"reason": "the job was not promoted"}';
        RETURN NEXT;
        RETURN;
    END IF;
    v_target := v_promotion.target::regclass;
    SELECT pg_catalog.string_agg(pg_catalog.format('t.%1$I = s.%1$I', k), ' AND ' ORDER BY k),
           pg_catalog.string_agg(pg_catalog.format('%L, s.%I', k, k), ', ' ORDER BY k)
      INTO v_join, v_key_json FROM pg_catalog.unnest(v_key) k;
    -- What the staged row says each column is, under the policy the promotion recorded (merge_non_null: a NULL
    -- staged value says nothing), to point at rows that differ.
    SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ' ORDER BY c),
           pg_catalog.string_agg(CASE WHEN v_promotion.column_policies->>c = 'merge_non_null'
                                      THEN pg_catalog.format('coalesce(s.%1$I, t.%1$I)', c) ELSE pg_catalog.format('s.%I', c) END, ', ' ORDER BY c)
      INTO v_currents, v_candidates FROM pg_catalog.unnest(v_cols) c WHERE c <> ALL (v_key);
    -- The earliest later change of each of the job's keys (an applied conflict or a delete by a later promotion
    -- into the same target), with the hash of the row that change found.
    CREATE TEMPORARY TABLE starpipe_verify_later ON COMMIT DROP AS
    SELECT DISTINCT ON (x.key) x.key, x.job_id, x.before_hash
      FROM (SELECT c.key, c.job_id, c.before_hash, p.at FROM starpipe.conflict c JOIN starpipe.promotion p ON p.job_id = c.job_id
             WHERE c.target = v_promotion.target AND c.applied AND (p.at, p.job_id) > (v_promotion.at, v_promotion.job_id)
            UNION ALL
            SELECT d.key, d.job_id, d.before_hash, p.at FROM starpipe.deletion d JOIN starpipe.promotion p ON p.job_id = d.job_id
             WHERE d.target = v_promotion.target AND (p.at, p.job_id) > (v_promotion.at, v_promotion.job_id)) x
     ORDER BY x.key, x.at, x.job_id;
    -- The job's own conflicts where the policy kept production values: such a row may differ from its staged one.
    CREATE TEMPORARY TABLE starpipe_verify_kept ON COMMIT DROP AS
    SELECT DISTINCT c.key FROM starpipe.conflict c
     WHERE c.job_id = p_job_id AND c.applied_columns IS DISTINCT FROM c.changed_columns;
    GRANT SELECT ON pg_temp.starpipe_verify_later, pg_temp.starpipe_verify_kept TO starpipe_writer;
    SELECT r INTO v_result FROM starpipe._as_writer_query(pg_catalog.format(
        'WITH k AS ('
        '  SELECT s._source_row, l.job_id AS later_job, l.before_hash, t.ctid IS NOT NULL AS present, '
        '         CASE WHEN t.ctid IS NOT NULL THEN %1$s END AS t_hash, '
        '         ROW(%2$s) IS DISTINCT FROM ROW(%3$s) AS differs, '
        '         EXISTS (SELECT 1 FROM pg_temp.starpipe_verify_kept c WHERE c.key = pg_catalog.jsonb_build_object(%4$s)) AS kept_by_policy '
        '    FROM %5$s s LEFT JOIN %6$s t ON %7$s '
        '    LEFT JOIN pg_temp.starpipe_verify_later l ON l.key = pg_catalog.jsonb_build_object(%4$s)) '
        'SELECT pg_catalog.jsonb_build_object('
        '  ''rows'', pg_catalog.count(*), '
        '  ''sum'', pg_catalog.sum(CASE WHEN later_job IS NOT NULL THEN before_hash ELSE t_hash END), '
        '  ''changed_later'', (SELECT pg_catalog.jsonb_object_agg(j, n) FROM (SELECT later_job AS j, pg_catalog.count(*) AS n FROM k '
        '                      WHERE later_job IS NOT NULL GROUP BY later_job) g), '
        '  ''missing'', pg_catalog.count(*) FILTER (WHERE later_job IS NULL AND NOT present), '
        '  ''differing'', pg_catalog.count(*) FILTER (WHERE later_job IS NULL AND present AND differs AND NOT kept_by_policy), '
        '  ''sample_source_rows'', coalesce((pg_catalog.array_agg(_source_row ORDER BY _source_row) FILTER ('
        '      WHERE later_job IS NULL AND (NOT present OR differs AND NOT kept_by_policy)))[1:5], ''{}'')) FROM k',
        starpipe._row_hash_expr(v_target, 't', v_cols), coalesce(v_currents, 'NULL'), coalesce(v_candidates, 'NULL'),
        v_key_json, v_staging, v_target, v_join)) r;
    DROP TABLE pg_temp.starpipe_verify_later, pg_temp.starpipe_verify_kept;
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
    recomputed := starpipe._digest((v_result->>'rows')::bigint, (v_result->>'sum')::numeric);
    agrees := CASE WHEN recorded IS NULL THEN NULL ELSE recorded = recomputed END;
    detail := pg_catalog.jsonb_build_object('target', v_promotion.target,
                                            'changed_by_later_jobs', coalesce(NULLIF(v_result->'changed_later', 'null'::jsonb), '{}'),
                                            'missing_rows', v_result->'missing',
                                            'differing_rows', v_result->'differing',
                                            'sample_source_rows', v_result->'sample_source_rows');
    RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION starpipe.verify(bigint) IS
    'Recomputes a job''s raw, staged and production digests and says whether each still agrees with what was recorded (rows named by source row number).';
