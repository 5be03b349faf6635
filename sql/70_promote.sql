-- starpipe: conflict-resolved, atomic promotion from staging into production.

-- Rows whose staged values differ from production at promotion, and how each was resolved.
CREATE TABLE starpipe.conflict (
    conflict_id     bigint GENERATED ALWAYS AS IDENTITY,
    job_id          bigint NOT NULL,
    target          text NOT NULL,
    key             jsonb NOT NULL,
    changed_columns text[] NOT NULL,
    policy          text NOT NULL,
    source_row      bigint NOT NULL,
    at              timestamptz NOT NULL DEFAULT pg_catalog.now(),
    applied         boolean,
    applied_columns text[],
    before_hash     bigint,
    before_values   jsonb,
    after_values    jsonb
);
CREATE INDEX conflict_job ON starpipe.conflict (job_id);
COMMENT ON TABLE starpipe.conflict IS 'Conflict audit trail: each promoted row that differed from production, the columns that differed and the policy applied.';
COMMENT ON COLUMN starpipe.conflict.conflict_id IS 'Increasing in audit order; unique by construction (an identity), not indexed: a large promotion writes hundreds of thousands of rows, and the audit is read by job.';
COMMENT ON COLUMN starpipe.conflict.job_id IS 'The promoted job (starpipe.promotion, which references starpipe.job); not a foreign key, so that auditing a large promotion costs no per-row check. Only promote writes it, for the job it holds locked.';
COMMENT ON COLUMN starpipe.conflict.key IS 'The conflict key''s values. Keys are kept (they identify the row to trace it); document what your keys hold.';
COMMENT ON COLUMN starpipe.conflict.policy IS 'The table''s policy (older_snapshot for a late snapshot); per-column overrides are in starpipe.promotion.column_policies.';
COMMENT ON COLUMN starpipe.conflict.applied IS 'true: the policy wrote staged values (applied_columns); false: it kept the production row (target_wins, older_snapshot, an older or NULL version under newer_wins); NULL: audited before 0.3.0 under newer_wins.';
COMMENT ON COLUMN starpipe.conflict.applied_columns IS 'The changed columns whose staged value the policy wrote (a subset of changed_columns; NULL before 0.3.0).';
COMMENT ON COLUMN starpipe.conflict.before_hash IS 'Hash of the production row''s mapped columns before this promotion (the digest term verify uses for rows a later job changed).';
COMMENT ON COLUMN starpipe.conflict.before_values IS 'Production values of the changed columns before this promotion; only with the mapping''s audit_values: true (they may be PHI).';
COMMENT ON COLUMN starpipe.conflict.after_values IS 'Staged values of the changed columns; only with audit_values: true (they may be PHI).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.conflict', '');
SELECT pg_catalog.pg_extension_config_dump('starpipe.conflict_conflict_id_seq', '');

-- Production rows a full snapshot deleted (or soft-deleted) because their key was no longer in it.
CREATE TABLE starpipe.deletion (
    job_id      bigint NOT NULL,
    target      text NOT NULL,
    key         jsonb NOT NULL,
    rule        text NOT NULL CHECK (rule IN ('soft', 'hard')),
    before_hash bigint,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX deletion_job ON starpipe.deletion (job_id);
COMMENT ON TABLE starpipe.deletion IS 'Delete audit: each production row a full snapshot''s promotion deleted (hard) or marked deleted (soft), by key.';
COMMENT ON COLUMN starpipe.deletion.before_hash IS 'Hash of the row''s mapped columns before it was deleted (for starpipe.verify).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.deletion', '');

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
    at              timestamptz NOT NULL DEFAULT pg_catalog.now(),
    deleted         bigint NOT NULL DEFAULT 0,
    mode            text NOT NULL DEFAULT 'full',
    column_policies jsonb NOT NULL DEFAULT '{}',
    skipped         jsonb NOT NULL DEFAULT '{}',
    deletes         jsonb,
    staged_digest   text,
    promoted_digest text
);
COMMENT ON TABLE starpipe.promotion IS 'Promotion audit: per promoted job, how many staged rows were inserted, updated or skipped (unchanged, or kept by the policy, and why) and how many production rows were deleted, with the fence, actor, mapping version and digests.';
COMMENT ON COLUMN starpipe.promotion.unchanged IS 'Staged rows skipped because production already holds what the policy would make of them.';
COMMENT ON COLUMN starpipe.promotion.kept IS 'Staged rows skipped because the policy kept the differing production row (target_wins, older_snapshot, an older or NULL version under newer_wins); each has a conflict row with applied = false.';
COMMENT ON COLUMN starpipe.promotion.skipped IS 'Why rows were skipped: {"unchanged": n, "target_wins": n, "older_snapshot": n, "not_newer": n} (zero counts omitted).';
COMMENT ON COLUMN starpipe.promotion.deletes IS 'The deletes rule and the mass-delete guard''s figures: {rule, max_fraction, missing, live_rows, allowed_by_override}; NULL when the rule is ignore or the file is incremental or older.';
COMMENT ON COLUMN starpipe.promotion.actor IS 'SESSION_USER of the promotion: the worker''s login, or the admin''s for a manual promotion.';
COMMENT ON COLUMN starpipe.promotion.staged_digest IS 'Digest of the staged rows promoted (equal to starpipe.job.staged_digest, checked at promotion).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.promotion', '');

-- Promotes a validated job into production in one transaction; returns the job's status after.
-- A second call on a promoted job is a no-op. p_manual: a human promotes a job awaiting manual promotion or held by
-- the mass-delete guard (no fence); p_allow_mass_delete (manual only) lets a full snapshot delete more than the guard allows.
CREATE FUNCTION starpipe._promote(p_job_id bigint, p_fence bigint, p_manual boolean, p_allow_mass_delete boolean DEFAULT false)
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
    v_policies jsonb := '{}';
    v_col_policy text;
    v_cols text[];
    v_key text[];
    v_nonkey text[];
    v_version_col text;
    v_newer text;
    v_deletes jsonb;
    v_mode text;
    v_soft text;
    v_soft_type text;
    v_soft_set text;
    v_soft_clear text;
    v_live text;
    v_scope text;
    v_col text;
    v_cand text;
    v_res text;
    v_candidates text[] := '{}';
    v_results text[] := '{}';
    v_currents text[] := '{}';
    v_changed text[] := '{}';
    v_applied_cols text[] := '{}';
    v_set text[] := '{}';
    v_before text[] := '{}';
    v_after text[] := '{}';
    v_res_hash text[] := '{}';
    v_s_list text[] := '{}';
    v_s_hash text;
    v_t_hash text;
    v_has_merge boolean := false;
    v_can_write boolean := false;
    v_join text;
    v_anti text;
    v_key_json text;
    v_key_json_t text;
    v_digest text;
    v_staged bigint;
    v_written bigint;
    v_kept bigint;
    v_inserted bigint;
    v_updated bigint;
    v_conflicts bigint;
    v_deleted bigint := 0;
    v_delta numeric;
    v_skipped jsonb;
    v_guard jsonb;
    v_missing bigint;
    v_live_rows bigint;
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
    v_mode := coalesce(v_job.manifest->>'mode', 'full');
    v_deletes := starpipe._deletes_rule(v_map);
    IF v_deletes->>'rule' = 'hard' AND NOT pg_catalog.has_table_privilege('starpipe_writer', v_target, 'DELETE') THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('tables.%s.deletes: starpipe_writer lacks DELETE on %s', v_job.table_name, v_target),
            NULL, pg_catalog.format('A DBA grants it: GRANT DELETE ON %s TO starpipe_writer;', v_target));
    END IF;
    -- Production is read and written as starpipe_writer, which reads this staging table during the promotion only.
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_staging);
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_cols FROM pg_catalog.jsonb_object_keys(v_map->'columns') k;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key FROM pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') k;
    v_nonkey := ARRAY(SELECT c FROM pg_catalog.unnest(v_cols) c WHERE c <> ALL (v_key) ORDER BY c);

    -- Staging must still hold what validate checked: same rows, same values.
    v_digest := starpipe._digest_as_writer(v_staging::regclass, v_cols);
    IF v_job.staged_digest IS NOT NULL AND v_digest IS DISTINCT FROM v_job.staged_digest THEN
        EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
        PERFORM starpipe._transition(v_job, 'FAILED', v_job.stage, 'staging_changed',
            pg_catalog.jsonb_build_object('validated_digest', v_job.staged_digest, 'staging_digest', v_digest),
            pg_catalog.format('staging table %s changed after validation; nothing was promoted (retry re-runs the job from its raw version)', v_staging));
        RETURN 'FAILED';
    END IF;

    -- Each non-key column's policy: the table's, or its column_policies override; every column of a late, older
    -- snapshot keeps production. newer_wins compares version_column, or without one follows the snapshot order.
    v_policy := CASE WHEN v_older THEN 'older_snapshot' ELSE coalesce(v_map->>'conflict_policy', 'source_wins') END;
    v_version_col := v_map->>'version_column';
    v_newer := CASE WHEN v_version_col IS NULL THEN 'true'
                    ELSE pg_catalog.format('(s.%1$I IS NOT NULL AND (t.%1$I IS NULL OR s.%1$I >= t.%1$I))', v_version_col) END;
    v_s_hash := starpipe._row_hash_expr(v_staging::regclass, 's', v_cols);
    v_t_hash := starpipe._row_hash_expr(v_target::regclass, 't', v_cols);
    FOREACH v_col IN ARRAY v_cols LOOP
        v_s_list := v_s_list || CASE WHEN starpipe._hashable(starpipe._column_type(v_target::regclass, v_col)::regtype)
                                     THEN pg_catalog.format('s.%I', v_col) ELSE pg_catalog.format('s.%I::text', v_col) END;
        IF v_col = ANY (v_key) THEN
            v_res_hash := v_res_hash || v_s_list[pg_catalog.cardinality(v_s_list)];
            CONTINUE;
        END IF;
        v_col_policy := CASE WHEN v_older THEN 'older_snapshot' ELSE coalesce(v_map->'column_policies'->>v_col, v_policy) END;
        v_policies := v_policies || pg_catalog.jsonb_build_object(v_col, v_col_policy);
        -- candidate: what the staged row says the column should be; result: what the policy writes.
        v_cand := CASE WHEN v_col_policy = 'merge_non_null' THEN pg_catalog.format('coalesce(s.%1$I, t.%1$I)', v_col)
                       ELSE pg_catalog.format('s.%I', v_col) END;
        v_res := CASE v_col_policy
                     WHEN 'source_wins' THEN pg_catalog.format('s.%I', v_col)
                     WHEN 'merge_non_null' THEN pg_catalog.format('coalesce(s.%1$I, t.%1$I)', v_col)
                     WHEN 'newer_wins' THEN pg_catalog.format('CASE WHEN %2$s THEN s.%1$I ELSE t.%1$I END', v_col, v_newer)
                     ELSE pg_catalog.format('t.%I', v_col) END;
        v_has_merge := v_has_merge OR v_col_policy = 'merge_non_null';
        v_can_write := v_can_write OR v_col_policy IN ('source_wins', 'merge_non_null', 'newer_wins');
        v_currents := v_currents || pg_catalog.format('t.%I', v_col);
        v_candidates := v_candidates || v_cand;
        v_results := v_results || v_res;
        v_changed := v_changed || pg_catalog.format('CASE WHEN t.%I IS DISTINCT FROM %s THEN %L END', v_col, v_cand, v_col);
        v_applied_cols := v_applied_cols || pg_catalog.format('CASE WHEN t.%I IS DISTINCT FROM %s THEN %L END', v_col, v_res, v_col);
        v_set := v_set || pg_catalog.format('%I = %s', v_col, v_res);
        v_before := v_before || pg_catalog.format('CASE WHEN t.%1$I IS DISTINCT FROM %2$s THEN pg_catalog.jsonb_build_object(%3$L, t.%1$I) ELSE ''{}'' END', v_col, v_cand, v_col);
        v_after := v_after || pg_catalog.format('CASE WHEN t.%1$I IS DISTINCT FROM %2$s THEN pg_catalog.jsonb_build_object(%3$L, s.%1$I) ELSE ''{}'' END', v_col, v_cand, v_col);
        v_res_hash := v_res_hash || CASE WHEN starpipe._hashable(starpipe._column_type(v_target::regclass, v_col)::regtype)
                                         THEN v_res ELSE pg_catalog.format('(%s)::text', v_res) END;
    END LOOP;

    -- Soft deletes mark a column; a key that comes back in a snapshot (not an older one) is undeleted.
    IF v_deletes->>'rule' = 'soft' THEN
        v_soft := v_deletes->>'column';
        v_soft_type := starpipe._column_type(v_target::regclass, v_soft);
        v_soft_clear := CASE WHEN v_soft_type = 'boolean' THEN 'false' ELSE 'NULL' END;
        v_soft_set := CASE v_soft_type
            WHEN 'boolean' THEN 'true'
            WHEN 'date' THEN pg_catalog.format('%L::date', v_job.snapshot_date)
            ELSE pg_catalog.format('%L::%s', coalesce(starpipe._extracted_at(v_job), v_job.snapshot_date::timestamptz), v_soft_type) END;
        v_live := CASE WHEN v_soft_type = 'boolean' THEN pg_catalog.format('t.%I IS NOT TRUE', v_soft)
                       ELSE pg_catalog.format('t.%I IS NULL', v_soft) END;
        IF NOT v_older THEN
            v_currents := v_currents || pg_catalog.format('t.%I', v_soft);
            v_candidates := v_candidates || v_soft_clear;
            v_results := v_results || v_soft_clear;
            v_changed := v_changed || pg_catalog.format('CASE WHEN NOT (%s) THEN %L END', v_live, v_soft);
            v_applied_cols := v_applied_cols || pg_catalog.format('CASE WHEN NOT (%s) THEN %L END', v_live, v_soft);
            v_set := v_set || pg_catalog.format('%I = %s', v_soft, v_soft_clear);
            v_can_write := true;
        END IF;
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('t.%1$I = s.%1$I', k), ' AND ' ORDER BY k),
           pg_catalog.string_agg(pg_catalog.format('%L, s.%I', k, k), ', ' ORDER BY k),
           pg_catalog.string_agg(pg_catalog.format('%L, t.%I', k, k), ', ' ORDER BY k)
      INTO v_join, v_key_json, v_key_json_t
      FROM pg_catalog.unnest(v_key) k;

    -- A full snapshot that is not older than production's: the deletes rule handles the keys it lacks, within the
    -- rows the mapping's const columns scope (all rows without one), behind the mass-delete guard.
    IF v_deletes->>'rule' <> 'ignore' AND v_mode = 'full' AND NOT v_older THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('t.%I = %s', c.key,
                   starpipe._column_expr(c.value, starpipe._column_type(v_target::regclass, c.key))), ' AND ' ORDER BY c.key)
          INTO v_scope FROM pg_catalog.jsonb_each(v_map->'columns') c WHERE c.value ? 'const';
        v_scope := coalesce(v_scope, 'true') || coalesce(' AND ' || v_live, '');
        v_anti := pg_catalog.format('NOT EXISTS (SELECT 1 FROM %s s WHERE %s)', v_staging, v_join);
        SELECT (r->>'live')::bigint, (r->>'missing')::bigint INTO v_live_rows, v_missing
          FROM starpipe._as_writer_query(pg_catalog.format(
              'SELECT pg_catalog.jsonb_build_object(''live'', pg_catalog.count(*), ''missing'', pg_catalog.count(*) FILTER (WHERE %s)) '
              'FROM %s t WHERE %s', v_anti, v_target, v_scope)) r;
        v_guard := pg_catalog.jsonb_build_object('rule', v_deletes->>'rule', 'max_fraction', v_deletes->'max_fraction',
                                                 'missing', v_missing, 'live_rows', v_live_rows,
                                                 'allowed_by_override', p_allow_mass_delete AND p_manual);
        IF v_missing > 0 AND v_missing > (v_deletes->>'max_fraction')::numeric * v_live_rows
           AND NOT (p_allow_mass_delete AND p_manual) THEN
            EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
            IF p_manual THEN
                PERFORM starpipe._raise('SP007', pg_catalog.format('promotion of job %s would delete %s of %s rows of %s (more than %s)',
                                                                   p_job_id, v_missing, v_live_rows, v_target, v_deletes->>'max_fraction'),
                    NULL, 'If the snapshot is right, promote with allow_mass_delete (starpipe promote JOB --allow-mass-delete).');
            END IF;
            PERFORM starpipe._transition(v_job, 'BLOCKED', 'validated', 'mass_delete_blocked', v_guard,
                pg_catalog.format('mass-delete guard: the snapshot lacks %s of %s rows of %s (%s%%, more than %s%%); nothing was promoted. '
                                  'Check the source table, then starpipe promote %s --allow-mass-delete, or fix the extract and send a new snapshot',
                                  v_missing, v_live_rows, v_target, pg_catalog.round(100.0 * v_missing / v_live_rows, 1),
                                  pg_catalog.round(100 * (v_deletes->>'max_fraction')::numeric, 1), p_job_id));
            RETURN 'BLOCKED';
        END IF;
        IF v_missing > 0 THEN
            INSERT INTO starpipe.deletion (job_id, target, key, rule, before_hash)
            SELECT p_job_id, v_target, (r->'key'), v_deletes->>'rule', (r->>'hash')::bigint
              FROM starpipe._as_writer_query(pg_catalog.format(
                  CASE WHEN v_deletes->>'rule' = 'hard' THEN 'WITH d AS (DELETE FROM %1$s t WHERE %2$s AND %3$s RETURNING %4$s AS key, %5$s AS hash) '
                       ELSE 'WITH d AS (UPDATE %1$s t SET %6$I = %7$s WHERE %2$s AND %3$s RETURNING %4$s AS key, %5$s AS hash) ' END
                  || 'SELECT pg_catalog.jsonb_build_object(''key'', d.key, ''hash'', d.hash) FROM d',
                  v_target, v_scope, v_anti, pg_catalog.format('pg_catalog.jsonb_build_object(%s)', v_key_json_t),
                  v_t_hash, v_soft, v_soft_set)) r;
            GET DIAGNOSTICS v_deleted = ROW_COUNT;
        END IF;
    END IF;

    -- The audit, as starpipe_writer (it compares production types), in one typed join of staging with production:
    -- every staged row whose key production has and that differs from what the staged row says, the columns that
    -- differ and those the policy writes; with merge_non_null also the rows whose staged NULLs keep production
    -- values (not conflicts, but what production holds then differs from the staged row, for the digest).
    WITH audit AS MATERIALIZED (
        SELECT * FROM starpipe._as_writer_audit(pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(%1$s), pg_catalog.array_remove(ARRAY[%2$s]::text[], NULL), '
            'pg_catalog.array_remove(ARRAY[%3$s]::text[], NULL), s._source_row, ROW(%4$s) IS DISTINCT FROM ROW(%5$s), %6$s, '
            'CASE WHEN ROW(%7$s) IS DISTINCT FROM ROW(%8$s) THEN pg_catalog.hash_record_extended(ROW(%7$s), 0)::numeric - %9$s ELSE 0 END, '
            '%10$s, %11$s, %12$s FROM %13$s s JOIN %14$s t ON %15$s WHERE ROW(%4$s) IS DISTINCT FROM ROW(%5$s)%16$s',
            v_key_json, coalesce(pg_catalog.array_to_string(v_changed, ', '), ''),
            coalesce(pg_catalog.array_to_string(v_applied_cols, ', '), ''),
            coalesce(pg_catalog.array_to_string(v_currents, ', '), 'NULL'), coalesce(pg_catalog.array_to_string(v_candidates, ', '), 'NULL'),
            v_t_hash,
            pg_catalog.array_to_string(v_res_hash, ', '),
            pg_catalog.array_to_string(v_s_list, ', '),
            v_s_hash,
            CASE WHEN coalesce((v_map->>'audit_values')::boolean, false) AND v_before <> '{}'
                 THEN pg_catalog.array_to_string(v_before, ' || ') ELSE 'NULL::jsonb' END,
            CASE WHEN coalesce((v_map->>'audit_values')::boolean, false) AND v_after <> '{}'
                 THEN pg_catalog.array_to_string(v_after, ' || ') ELSE 'NULL::jsonb' END,
            CASE WHEN v_older THEN '''older_snapshot'''
                 WHEN v_version_col IS NOT NULL THEN pg_catalog.format('CASE WHEN %s THEN ''target_wins'' ELSE ''not_newer'' END', v_newer)
                 ELSE '''target_wins''' END,
            v_staging, v_target, v_join,
            CASE WHEN v_has_merge THEN pg_catalog.format(' OR ROW(%s) IS DISTINCT FROM ROW(%s)',
                     pg_catalog.array_to_string(v_results, ', '),
                     (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', c), ', ' ORDER BY c) FROM pg_catalog.unnest(v_nonkey) c))
                 ELSE '' END))),
    audited AS (
        INSERT INTO starpipe.conflict (job_id, target, key, changed_columns, policy, source_row, applied, applied_columns,
                                       before_hash, before_values, after_values)
        SELECT p_job_id, v_target, a.key, a.changed_columns, v_policy, a.source_row, a.applied_columns <> '{}', a.applied_columns,
               a.before_hash, a.before_values, a.after_values
          FROM audit a WHERE a.is_conflict
        RETURNING conflict.applied)
    SELECT (SELECT pg_catalog.count(*) FROM audited), (SELECT pg_catalog.count(*) FILTER (WHERE NOT audited.applied) FROM audited),
           (SELECT pg_catalog.sum(a.delta) FROM audit a),
           (SELECT pg_catalog.jsonb_object_agg(r.reason, r.n) FROM (
                SELECT a.reason, pg_catalog.count(*) AS n FROM audit a WHERE a.is_conflict AND a.applied_columns = '{}'
                 GROUP BY a.reason) r)
      INTO v_conflicts, v_kept, v_delta, v_skipped;
    v_staged := starpipe._digest_rows(v_digest);

    -- The write, as starpipe_writer: production triggers, defaults and constraints run with its rights only. One
    -- MERGE joins staging with production once: new keys are inserted, and a row the policy changes is updated
    -- (the condition is evaluated again on the row MERGE sees). Nothing applied and no new key: nothing to run.
    IF v_conflicts > v_kept OR EXISTS (SELECT 1 FROM starpipe._as_writer_query(pg_catalog.format(
           'SELECT pg_catalog.to_jsonb(true) WHERE EXISTS (SELECT 1 FROM %s s WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE %s))',
           v_staging, v_target, v_join))) THEN
        v_written := starpipe._as_writer_execute(pg_catalog.format(
            'MERGE INTO %s t USING %s s ON %s %s WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)',
            v_target, v_staging, v_join,
            CASE WHEN v_can_write AND v_set <> '{}' THEN pg_catalog.format(
                'WHEN MATCHED AND ROW(%s) IS DISTINCT FROM ROW(%s) THEN UPDATE SET %s',
                pg_catalog.array_to_string(v_currents, ', '), pg_catalog.array_to_string(v_results, ', '),
                pg_catalog.array_to_string(v_set, ', '))
            ELSE '' END,
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c) FROM pg_catalog.unnest(v_cols) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', c), ', ' ORDER BY c) FROM pg_catalog.unnest(v_cols) c)));
    ELSE
        v_written := 0;
    END IF;
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
    -- MERGE counts rows written; the split follows the audit (a concurrent writer to production can shift rows
    -- between updated and unchanged, never the total).
    v_updated := LEAST(v_conflicts - v_kept, v_written);
    v_inserted := v_written - v_updated;
    v_skipped := coalesce(v_skipped, '{}') || CASE WHEN v_staged - v_inserted - v_updated - v_kept > 0
        THEN pg_catalog.jsonb_build_object('unchanged', v_staged - v_inserted - v_updated - v_kept) ELSE '{}' END;

    -- The promotion's own audit row, in its transaction, with the digest of what production now holds for the
    -- job's keys: the staged digest, with the terms of rows the policy did not take as staged replaced.
    INSERT INTO starpipe.promotion (job_id, target, policy, mapping_version, fence, actor, manual, staged, inserted, updated,
                                    unchanged, kept, deleted, mode, column_policies, skipped, deletes, staged_digest,
                                    promoted_digest)
    VALUES (p_job_id, v_target, v_policy, v_job.mapping_version, v_job.fence, SESSION_USER, p_manual, v_staged,
            v_inserted, v_updated, v_staged - v_inserted - v_updated - v_kept, v_kept, v_deleted, v_mode, v_policies,
            v_skipped, v_guard, v_digest,
            starpipe._digest(v_staged, starpipe._digest_sum(v_digest) + coalesce(v_delta, 0)));
    UPDATE starpipe.job SET rows_inserted = v_inserted, rows_updated = v_updated, rows_deleted = v_deleted,
                            staged_digest = coalesce(staged_digest, v_digest),
                            promoted_digest = starpipe._digest(v_staged, starpipe._digest_sum(v_digest) + coalesce(v_delta, 0))
     WHERE job_id = p_job_id;
    PERFORM starpipe._transition(v_job, 'SUCCESS', 'promoted', 'promoted',
        pg_catalog.jsonb_build_object('target', v_target, 'inserted', v_inserted, 'updated', v_updated, 'kept', v_kept,
                                      'deleted', v_deleted, 'conflicts', v_conflicts, 'policy', v_policy, 'manual', p_manual)
        || CASE WHEN v_guard IS NOT NULL AND p_allow_mass_delete AND p_manual
                THEN pg_catalog.jsonb_build_object('mass_delete_allowed_by', SESSION_USER) ELSE '{}'::jsonb END
        || CASE WHEN v_older THEN pg_catalog.jsonb_build_object(
                'older_snapshot', true, 'newest_promoted_snapshot', v_newest.snapshot_date, 'newest_promoted_job', v_newest.job_id,
                'kept_existing', v_staged - v_inserted)
           ELSE '{}'::jsonb END);
    -- Raw versions (and their staging tables, which verify reads) beyond the retention are dropped.
    v_dropped := starpipe._drop_old_raw_versions(v_job);
    IF v_dropped <> '{}' THEN
        PERFORM starpipe._drop_staging_of(v_dropped);
        INSERT INTO starpipe.job_event (job_id, fence, from_status, to_status, stage, event, detail)
        VALUES (p_job_id, v_job.fence, 'SUCCESS', 'SUCCESS', 'promoted', 'raw_retention',
                pg_catalog.jsonb_build_object('dropped_raw_versions_of_jobs', pg_catalog.to_jsonb(v_dropped),
                                              'keep', starpipe._setting_value('raw_keep_promoted_versions')::integer));
    END IF;
    RETURN 'SUCCESS';
END;
$$;

-- Drops the staging tables of promoted jobs whose raw versions retention dropped.
CREATE FUNCTION starpipe._drop_staging_of(p_jobs bigint[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_staging text;
BEGIN
    FOR v_staging IN
        SELECT starpipe._staging_table(j, m.config->'tables'->j.table_name)
          FROM starpipe.job j JOIN starpipe.mapping m ON m.client = j.client AND m.version = j.mapping_version
         WHERE j.job_id = ANY (p_jobs) AND m.config->'tables' ? j.table_name
         ORDER BY j.job_id
    LOOP
        EXECUTE pg_catalog.format('DROP TABLE IF EXISTS %s', v_staging);
    END LOOP;
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
    RETURN starpipe._promote(p_job_id, p_fence, false, false);
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
    -- Same promotion as the worker's, for a job BLOCKED at stage validated ("promotion: manual", or the
    -- mass-delete guard, which this call applies again).
    RETURN starpipe._promote(p_job_id, NULL, true, false);
END;
$$;
COMMENT ON FUNCTION starpipe.promote(bigint) IS
    'Promotes a job awaiting manual promotion (BLOCKED at stage validated) into production; a second call is a no-op.';

-- A human's promotion of a job the mass-delete guard holds, deleting what the snapshot lacks anyway (audited).
CREATE FUNCTION starpipe.promote_allow_mass_delete(p_job_id bigint)
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
    -- The override is recorded on the promotion (deletes.allowed_by_override, actor) and its event.
    RETURN starpipe._promote(p_job_id, NULL, true, true);
END;
$$;
COMMENT ON FUNCTION starpipe.promote_allow_mass_delete(bigint) IS
    'Promotes a job held by the mass-delete guard (or awaiting manual promotion), letting its full snapshot delete more than deletes.max_fraction of the table; audited.';
