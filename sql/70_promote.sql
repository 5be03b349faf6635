-- starpipe: conflict-resolved, atomic promotion from staging into production.

-- Rows whose staged values differ from production at promotion, and how each was resolved.
CREATE TABLE starpipe.conflict (
    conflict_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL,
    target          text NOT NULL,
    key             jsonb NOT NULL,
    changed_columns text[] NOT NULL,
    policy          text NOT NULL,
    source_row      bigint NOT NULL,
    at              timestamptz NOT NULL DEFAULT pg_catalog.now(),
    applied         boolean
);
CREATE INDEX conflict_job ON starpipe.conflict (job_id);
COMMENT ON COLUMN starpipe.conflict.job_id IS 'The promoted job (starpipe.promotion, which references starpipe.job); not a foreign key, so that auditing a large promotion costs no per-row check. Only promote writes it, for the job it holds locked.';
COMMENT ON TABLE starpipe.conflict IS 'Conflict audit trail: each promoted row that differed from production, the columns that differed and the policy applied.';
COMMENT ON COLUMN starpipe.conflict.applied IS 'true: the policy wrote the staged values; false: it kept the production row (target_wins, older_snapshot, an older or NULL version under newer_wins); NULL: audited before 0.3.0 under newer_wins.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.conflict', '');
SELECT pg_catalog.pg_extension_config_dump('starpipe.conflict_conflict_id_seq', '');

-- One row per promoted job, written in the promotion's transaction: what it did with the staged rows.
CREATE TABLE starpipe.promotion (
    job_id          bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    target          text NOT NULL,
    policy          text NOT NULL,
    mapping_version integer NOT NULL,
    fence           bigint,
    actor           text NOT NULL,
    manual          boolean NOT NULL,
    staged          bigint NOT NULL,
    inserted        bigint NOT NULL,
    updated         bigint NOT NULL,
    unchanged       bigint NOT NULL,
    kept            bigint NOT NULL,
    at              timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE starpipe.promotion IS 'Promotion audit: per promoted job, how many staged rows were inserted, updated or skipped (unchanged, or kept by the policy), with the fence, actor and mapping version.';
COMMENT ON COLUMN starpipe.promotion.unchanged IS 'Staged rows skipped because production already holds what the policy would make of them.';
COMMENT ON COLUMN starpipe.promotion.kept IS 'Staged rows skipped because the policy kept the differing production row (target_wins, older_snapshot, an older or NULL version under newer_wins); each has a conflict row with applied = false.';
COMMENT ON COLUMN starpipe.promotion.actor IS 'SESSION_USER of the promotion: the worker''s login, or the admin''s for a manual promotion.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.promotion', '');

-- Promotes a validated job into production in one transaction; returns the job's status after.
-- A second call on a promoted job is a no-op. p_manual: a human promotes a job awaiting manual promotion (no fence).
CREATE FUNCTION starpipe._promote(p_job_id bigint, p_fence bigint, p_manual boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_config jsonb;
    v_map jsonb;
    v_target text;
    v_staging text;
    v_policy text;
    v_cols text[];
    v_key text[];
    v_col_list text;
    v_set text;
    v_current text;
    v_proposed text;
    v_changed text;
    v_applies text;
    v_join text;
    v_key_json text;
    v_staged bigint;
    v_written bigint;
    v_kept bigint;
    v_inserted bigint;
    v_updated bigint;
    v_conflicts bigint;
    v_newest starpipe.job;
    v_older boolean;
    v_dropped bigint[];
BEGIN
    -- The job row lock makes concurrent promotes of one job apply it once.
    v_job := starpipe._lock_job(p_job_id);
    IF v_job.status = 'SUCCESS' AND v_job.stage = 'promoted' THEN
        RAISE NOTICE 'job % is already promoted; nothing to do', p_job_id;
        RETURN 'SUCCESS';
    END IF;
    IF v_job.status = 'PROCESSING' AND v_job.stage = 'validated' AND NOT p_manual THEN
        PERFORM starpipe._check_fence(v_job, p_fence);
    ELSIF NOT (v_job.status = 'BLOCKED' AND v_job.stage = 'validated' AND p_manual) THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; only a validated job can be promoted%s',
                                                           p_job_id, v_job.status, v_job.stage,
                                                           CASE WHEN p_manual THEN ' by hand once it awaits manual promotion' ELSE '' END));
    END IF;
    -- One promotion per client table at a time, so the newest-snapshot check below cannot race another promotion.
    PERFORM starpipe._require_read_committed('promote');
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.promote'),
                                             pg_catalog.hashtext(v_job.client || '.' || v_job.table_name));
    -- An older snapshot arriving late is applied, but never overwrites rows a newer promoted snapshot wrote.
    -- Snapshots order by date, then by extraction time (two runs on one date: the later one is newer). A DUPLICATE
    -- of promoted content is a snapshot of that content too: a late snapshot older than it must not overwrite it.
    SELECT * INTO v_newest FROM starpipe.job j
     WHERE j.client = v_job.client AND j.table_name = v_job.table_name AND j.job_id <> p_job_id
       AND (j.status = 'SUCCESS' AND j.stage = 'promoted'
            OR j.status = 'DUPLICATE' AND EXISTS (SELECT 1 FROM starpipe.job d WHERE d.job_id = j.duplicate_of
                                                     AND d.status = 'SUCCESS' AND d.stage = 'promoted'))
     ORDER BY j.snapshot_date DESC, starpipe._extracted_at(j) DESC, j.job_id DESC LIMIT 1;
    v_older := FOUND AND (v_newest.snapshot_date, starpipe._extracted_at(v_newest))
                         > (v_job.snapshot_date, starpipe._extracted_at(v_job));
    SELECT m.config INTO v_config FROM starpipe.mapping m
     WHERE m.client = v_job.client AND m.version = v_job.mapping_version;
    v_map := v_config->'tables'->v_job.table_name;
    v_target := pg_catalog.format('%I.%I', v_config->>'target_schema', v_map->>'target');
    v_staging := starpipe._staging_table(v_job, v_map);
    -- The allowlist and the writer's grants may have changed since the mapping was applied.
    PERFORM starpipe._check_target_schema(v_config->>'target_schema');
    PERFORM starpipe._check_writer_rights(pg_catalog.format('tables.%s', v_job.table_name), v_target::regclass);
    -- Production is read and written as starpipe_writer, which reads this staging table until it is dropped below.
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_staging);
    v_policy := CASE WHEN v_older THEN 'older_snapshot' ELSE coalesce(v_map->>'conflict_policy', 'source_wins') END;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_cols FROM pg_catalog.jsonb_object_keys(v_map->'columns') k;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key FROM pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') k;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c) INTO v_col_list FROM pg_catalog.unnest(v_cols) c;

    -- What an existing row becomes under the policy, column by column: the staged value, or for merge_non_null the
    -- staged value where it is not NULL. A row is touched only when that differs from production and the policy
    -- applies it (newer_wins: a non-NULL staged version not older than production's, which may be NULL).
    SELECT pg_catalog.string_agg(pg_catalog.format('%I = %s', c, CASE WHEN v_policy = 'merge_non_null'
               THEN pg_catalog.format('coalesce(s.%I, t.%I)', c, c) ELSE pg_catalog.format('s.%I', c) END), ', ' ORDER BY c),
           pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ' ORDER BY c),
           pg_catalog.string_agg(CASE WHEN v_policy = 'merge_non_null'
               THEN pg_catalog.format('coalesce(s.%I, t.%I)', c, c) ELSE pg_catalog.format('s.%I', c) END, ', ' ORDER BY c),
           pg_catalog.string_agg(pg_catalog.format('CASE WHEN t.%I IS DISTINCT FROM %s THEN %L END', c, CASE WHEN v_policy = 'merge_non_null'
               THEN pg_catalog.format('coalesce(s.%I, t.%I)', c, c) ELSE pg_catalog.format('s.%I', c) END, c), ', ' ORDER BY c)
      INTO v_set, v_current, v_proposed, v_changed
      FROM pg_catalog.unnest(v_cols) c WHERE c <> ALL (v_key);
    v_applies := CASE WHEN v_policy IN ('target_wins', 'older_snapshot') THEN 'false'
                      WHEN v_policy = 'newer_wins' THEN pg_catalog.format('(s.%1$I IS NOT NULL AND (t.%1$I IS NULL OR s.%1$I >= t.%1$I))', v_map->>'version_column')
                      ELSE 'true' END;
    SELECT pg_catalog.string_agg(pg_catalog.format('t.%1$I = s.%1$I', k), ' AND ' ORDER BY k),
           pg_catalog.string_agg(pg_catalog.format('%L, s.%I', k, k), ', ' ORDER BY k)
      INTO v_join, v_key_json
      FROM pg_catalog.unnest(v_key) k;

    -- The audit, as starpipe_writer (it compares production types), in one typed join of staging with production:
    -- every staged row whose key production has and that the policy would change, the columns that would change,
    -- and whether the policy applies it or keeps production.
    WITH audited AS (
        INSERT INTO starpipe.conflict (job_id, target, key, changed_columns, policy, source_row, applied)
        SELECT p_job_id, v_target, a.key, a.changed_columns, v_policy, a.source_row, a.applied
          FROM starpipe._as_writer_audit(pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(%1$s), %2$s, s._source_row, %3$s FROM %4$s s JOIN %5$s t ON %6$s '
            'WHERE ROW(%7$s) IS DISTINCT FROM ROW(%8$s)',
            v_key_json, coalesce(pg_catalog.format('pg_catalog.array_remove(ARRAY[%s]::text[], NULL)', v_changed), '''{}''::text[]'),
            v_applies, v_staging, v_target, v_join, coalesce(v_current, 'NULL'), coalesce(v_proposed, 'NULL'))) a
         ORDER BY a.source_row
        RETURNING conflict.applied)
    SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE NOT audited.applied) INTO v_conflicts, v_kept FROM audited;
    v_staged := (SELECT j.rows_staged FROM starpipe.job j WHERE j.job_id = p_job_id);

    -- The write, as starpipe_writer: production triggers, defaults and constraints run with its rights only. One
    -- MERGE joins staging with production once: new keys are inserted, and a differing row the policy applies is
    -- updated (the condition is evaluated again on the row MERGE sees). Nothing applied and no new key: nothing to run.
    IF v_conflicts > v_kept OR EXISTS (SELECT 1 FROM starpipe._as_writer_query(pg_catalog.format(
           'SELECT pg_catalog.to_jsonb(true) WHERE EXISTS (SELECT 1 FROM %s s WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE %s))',
           v_staging, v_target, v_join))) THEN
        v_written := starpipe._as_writer_execute(pg_catalog.format(
            'MERGE INTO %s t USING %s s ON %s %s WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)',
            v_target, v_staging, v_join,
            CASE WHEN v_set IS NOT NULL AND v_applies <> 'false' THEN pg_catalog.format(
                'WHEN MATCHED AND ROW(%s) IS DISTINCT FROM ROW(%s) AND %s THEN UPDATE SET %s', v_current, v_proposed, v_applies, v_set)
            ELSE '' END,
            v_col_list,
            (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', c), ', ' ORDER BY c) FROM pg_catalog.unnest(v_cols) c)));
    ELSE
        v_written := 0;
    END IF;
    -- MERGE counts rows written; the split follows the audit (a concurrent writer to production can shift rows
    -- between updated and unchanged, never the total).
    v_updated := LEAST(v_conflicts - v_kept, v_written);
    v_inserted := v_written - v_updated;

    -- The promotion's own audit row, in its transaction.
    INSERT INTO starpipe.promotion (job_id, target, policy, mapping_version, fence, actor, manual, staged, inserted, updated,
                                    unchanged, kept)
    VALUES (p_job_id, v_target, v_policy, v_job.mapping_version, v_job.fence, SESSION_USER, p_manual, v_staged,
            v_inserted, v_updated, v_staged - v_inserted - v_updated - v_kept, v_kept);

    EXECUTE pg_catalog.format('DROP TABLE %s', v_staging);
    UPDATE starpipe.job SET rows_inserted = v_inserted, rows_updated = v_updated WHERE job_id = p_job_id;
    PERFORM starpipe._transition(v_job, 'SUCCESS', 'promoted', 'promoted',
        pg_catalog.jsonb_build_object('target', v_target, 'inserted', v_inserted, 'updated', v_updated, 'kept', v_kept,
                                      'conflicts', v_conflicts, 'policy', v_policy, 'manual', p_manual)
        || CASE WHEN v_older THEN pg_catalog.jsonb_build_object(
                'older_snapshot', true, 'newest_promoted_snapshot', v_newest.snapshot_date, 'newest_promoted_job', v_newest.job_id,
                'kept_existing', (SELECT j.rows_staged FROM starpipe.job j WHERE j.job_id = p_job_id) - v_inserted)
           ELSE '{}'::jsonb END);
    v_dropped := starpipe._drop_old_raw_versions(v_job);
    IF v_dropped <> '{}' THEN
        INSERT INTO starpipe.job_event (job_id, fence, from_status, to_status, stage, event, detail)
        VALUES (p_job_id, v_job.fence, 'SUCCESS', 'SUCCESS', 'promoted', 'raw_retention',
                pg_catalog.jsonb_build_object('dropped_raw_versions_of_jobs', pg_catalog.to_jsonb(v_dropped),
                                              'keep', starpipe._setting_value('raw_keep_promoted_versions')::integer));
    END IF;
    RETURN 'SUCCESS';
END;
$$;

-- The worker's promotion of a job it holds.
CREATE FUNCTION starpipe.promote(p_job_id bigint, p_fence bigint)
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
BEGIN
    -- The fence proves the caller still holds the job; manual promotion is promote(job) and needs starpipe_admin.
    IF p_fence IS NULL THEN
        PERFORM starpipe._raise('22004', 'promote(job, fence) needs the fencing token', NULL,
                                'Promote a job awaiting manual promotion with starpipe.promote(job).');
    END IF;
    RETURN starpipe._promote(p_job_id, p_fence, false);
END;
$$;
COMMENT ON FUNCTION starpipe.promote(bigint, bigint) IS
    'Upserts a validated job''s staging rows into production in one transaction with its conflict policy (fenced; a second call is a no-op).';

-- A human's promotion of a job awaiting manual promotion.
CREATE FUNCTION starpipe.promote(p_job_id bigint)
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
BEGIN
    -- Same promotion as the worker's, for a job BLOCKED at stage validated by "promotion: manual".
    RETURN starpipe._promote(p_job_id, NULL, true);
END;
$$;
COMMENT ON FUNCTION starpipe.promote(bigint) IS
    'Promotes a job awaiting manual promotion (BLOCKED at stage validated) into production; a second call is a no-op.';
