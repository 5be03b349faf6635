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
-- BRIN: a promotion appends its conflict rows together, so a job's rows sit in a few block ranges; a B-tree cost a
-- third more CPU per audited row (500k rows: 1.5-1.8 s with it, 1.2-1.3 s with BRIN or none).
CREATE INDEX conflict_job ON starpipe.conflict USING brin (job_id);
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

-- The start of every promotion (local, remote plan, remote record): locks the job, checks that the caller may
-- promote it, serialises promotions of its client table and decides whether it is an older snapshot arriving late.
-- Returns {already: true} for a promoted job, else {older, newest_job, newest_snapshot, mapping (the table's entry),
-- target_schema, target, staging, production}.
CREATE FUNCTION starpipe._promotion_start(p_job_id bigint, p_fence bigint, p_manual boolean)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_config jsonb;
    v_map jsonb;
    v_newest starpipe.job;
    v_older boolean;
BEGIN
    -- The job row lock makes concurrent promotes of one job apply it once.
    v_job := starpipe._lock_job(p_job_id);
    IF v_job.status = 'SUCCESS' AND v_job.stage = 'promoted' THEN
        RETURN '{"already": true}';
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
    RETURN pg_catalog.jsonb_build_object(
        'already', false, 'older', v_older, 'newest_job', v_newest.job_id, 'newest_snapshot', v_newest.snapshot_date,
        'mapping', v_map, 'target_schema', v_config->>'target_schema',
        'target', pg_catalog.format('%I.%I', v_config->>'target_schema', v_map->>'target'),
        'staging', starpipe._staging_table(v_job, v_map), 'production', v_config->'production');
END;
$$;

-- An incremental batch older than a promoted job of its table cannot be applied as an older snapshot: that keeps
-- every production row, so its changes to keys the newer job did not carry would be dropped without a trace. It is
-- BLOCKED instead (event older_incremental), nothing written; a human either re-extracts in full or promotes it by
-- hand, which applies it as an older snapshot knowingly. Returns true when it blocked the job.
CREATE FUNCTION starpipe._older_incremental_blocked(p_job starpipe.job, p_start jsonb, p_manual boolean)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_manual OR NOT coalesce((p_start->>'older')::boolean, false)
       OR coalesce(p_job.manifest->>'mode', 'full') <> 'incremental' THEN
        RETURN false;
    END IF;
    PERFORM starpipe._transition(p_job, 'BLOCKED', 'validated', 'older_incremental',
        pg_catalog.jsonb_build_object('newest_job', p_start->'newest_job', 'newest_snapshot', p_start->'newest_snapshot'),
        pg_catalog.format('incremental batch older than promoted job %s of table %s: applied as an older snapshot it would keep every production row and drop its changes to keys that job did not carry; nothing written. Extract the table again in full (starpipe extract --full), or promote this job by hand (starpipe promote %s) to apply it as an older snapshot',
                          p_start->>'newest_job', p_job.table_name, p_job.job_id));
    RETURN true;
END;
$$;

-- Staging must still hold what validate checked (same rows, same values): returns the staged digest, or NULL after
-- failing the job when it changed. The same row count, every row written by the transactions validate saw, is as
-- strict as the digest and costs one scan without hashing; a job validated before that was recorded is hashed
-- again. The caller has granted starpipe_writer SELECT on the staging table.
CREATE FUNCTION starpipe._check_staged_digest(p_job starpipe.job, p_staging text, p_columns text[])
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_digest text;
    v_unchanged boolean;
BEGIN
    IF p_job.staged_xmins IS NOT NULL THEN
        v_unchanged := starpipe._staging_unchanged(p_staging::regclass, starpipe._digest_rows(p_job.staged_digest),
                                                   pg_catalog.to_jsonb(p_job.staged_xmins));
        v_digest := CASE WHEN v_unchanged THEN p_job.staged_digest
                         ELSE starpipe._digest_as_writer(p_staging::regclass, p_columns) END;
    ELSE
        v_digest := starpipe._digest_as_writer(p_staging::regclass, p_columns);
        v_unchanged := p_job.staged_digest IS NULL OR v_digest = p_job.staged_digest;
    END IF;
    IF NOT v_unchanged THEN
        PERFORM starpipe._transition(p_job, 'FAILED', p_job.stage, 'staging_changed',
            pg_catalog.jsonb_build_object('validated_digest', p_job.staged_digest, 'staging_digest', v_digest),
            pg_catalog.format('staging table %s changed after validation; nothing was promoted (retry re-runs the job from its raw version)', p_staging));
        RETURN NULL;
    END IF;
    RETURN v_digest;
END;
$$;

-- The statements of a promotion, built from the mapping for the staging rows in p_staging and the production table
-- p_target (the same statements run in the pipeline database, or in a separate production database against a
-- temporary copy of staging). Returns {policy, policies, columns, key, deletes, mode, audit, new_keys, merge,
-- guard, delete}: audit selects the audit rows (the columns of _as_writer_audit); new_keys is a query of one
-- boolean; merge is NULL when the policies write nothing; guard (live and missing row counts) and delete (a
-- "WITH d AS (… RETURNING key, hash)" prefix) are NULL when the file deletes nothing.
CREATE FUNCTION starpipe._promotion_sql(p_job starpipe.job, p_map jsonb, p_target regclass, p_staging text, p_older boolean)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_policy text;
    v_policies jsonb := '{}';
    v_col_policy text;
    v_cols text[];
    v_key text[];
    v_nonkey text[];
    v_version_col text := p_map->>'version_column';
    v_newer text;
    v_deletes jsonb := starpipe._deletes_rule(p_map);
    v_mode text := coalesce(p_job.manifest->>'mode', 'full');
    v_soft text;
    v_soft_type text;
    v_soft_set text;
    v_soft_clear text;
    v_live text;
    v_scope text;
    v_col text;
    v_cand text;
    v_res text;
    v_hashable boolean;
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
    v_has_merge boolean := false;
    v_can_write boolean := false;
    v_keeps boolean := false;
    v_join text;
    v_anti text;
    v_key_json text;
    v_key_json_t text;
    v_audit_values boolean := coalesce((p_map->>'audit_values')::boolean, false);
    v_guard text;
    v_delete text;
BEGIN
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_cols FROM pg_catalog.jsonb_object_keys(p_map->'columns') k;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key FROM pg_catalog.jsonb_array_elements_text(p_map->'conflict_key') k;
    v_nonkey := ARRAY(SELECT c FROM pg_catalog.unnest(v_cols) c WHERE c <> ALL (v_key) ORDER BY c);
    -- Each non-key column's policy: the table's, or its column_policies override; every column of a late, older
    -- snapshot keeps production. newer_wins compares version_column, or without one follows the snapshot order.
    v_policy := CASE WHEN p_older THEN 'older_snapshot' ELSE coalesce(p_map->>'conflict_policy', 'source_wins') END;
    v_newer := CASE WHEN v_version_col IS NULL THEN 'true'
                    ELSE pg_catalog.format('(s.%1$I IS NOT NULL AND (t.%1$I IS NULL OR s.%1$I >= t.%1$I))', v_version_col) END;
    FOREACH v_col IN ARRAY v_cols LOOP
        v_hashable := starpipe._hashable(starpipe._column_type(p_target, v_col)::regtype);
        v_s_list := v_s_list || CASE WHEN v_hashable THEN pg_catalog.format('s.%I', v_col) ELSE pg_catalog.format('s.%I::text', v_col) END;
        IF v_col = ANY (v_key) THEN
            v_res_hash := v_res_hash || v_s_list[pg_catalog.cardinality(v_s_list)];
            CONTINUE;
        END IF;
        v_col_policy := CASE WHEN p_older THEN 'older_snapshot' ELSE coalesce(p_map->'column_policies'->>v_col, v_policy) END;
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
        -- A column whose policy may keep production's value: applied columns can then differ from changed ones.
        v_keeps := v_keeps OR v_col_policy NOT IN ('source_wins', 'merge_non_null');
        v_currents := v_currents || pg_catalog.format('t.%I', v_col);
        v_candidates := v_candidates || v_cand;
        v_results := v_results || v_res;
        v_changed := v_changed || pg_catalog.format('CASE WHEN t.%I IS DISTINCT FROM %s THEN %L END', v_col, v_cand, v_col);
        v_applied_cols := v_applied_cols || pg_catalog.format('CASE WHEN t.%I IS DISTINCT FROM %s THEN %L END', v_col, v_res, v_col);
        v_set := v_set || pg_catalog.format('%I = %s', v_col, v_res);
        v_before := v_before || pg_catalog.format('CASE WHEN t.%1$I IS DISTINCT FROM %2$s THEN pg_catalog.jsonb_build_object(%3$L, t.%1$I) ELSE ''{}'' END', v_col, v_cand, v_col);
        v_after := v_after || pg_catalog.format('CASE WHEN t.%1$I IS DISTINCT FROM %2$s THEN pg_catalog.jsonb_build_object(%3$L, s.%1$I) ELSE ''{}'' END', v_col, v_cand, v_col);
        v_res_hash := v_res_hash || CASE WHEN v_hashable THEN v_res ELSE pg_catalog.format('(%s)::text', v_res) END;
    END LOOP;

    -- Soft deletes mark a column; a key that comes back in a snapshot (not an older one) is undeleted.
    IF v_deletes->>'rule' = 'soft' THEN
        v_soft := v_deletes->>'column';
        v_soft_type := starpipe._column_type(p_target, v_soft);
        v_soft_clear := CASE WHEN v_soft_type = 'boolean' THEN 'false' ELSE 'NULL' END;
        v_soft_set := CASE v_soft_type
            WHEN 'boolean' THEN 'true'
            WHEN 'date' THEN pg_catalog.format('%L::date', p_job.snapshot_date)
            ELSE pg_catalog.format('%L::%s', coalesce(starpipe._extracted_at(p_job), p_job.snapshot_date::timestamptz), v_soft_type) END;
        v_live := CASE WHEN v_soft_type = 'boolean' THEN pg_catalog.format('t.%I IS NOT TRUE', v_soft)
                       ELSE pg_catalog.format('t.%I IS NULL', v_soft) END;
        IF NOT p_older THEN
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
    IF v_deletes->>'rule' <> 'ignore' AND v_mode = 'full' AND NOT p_older THEN
        SELECT pg_catalog.string_agg(pg_catalog.format('t.%I = %s', c.key,
                   starpipe._column_expr(c.value, starpipe._column_type(p_target, c.key))), ' AND ' ORDER BY c.key)
          INTO v_scope FROM pg_catalog.jsonb_each(p_map->'columns') c WHERE c.value ? 'const';
        v_scope := coalesce(v_scope, 'true') || coalesce(' AND ' || v_live, '');
        v_anti := pg_catalog.format('NOT EXISTS (SELECT 1 FROM %s s WHERE %s)', p_staging, v_join);
        v_guard := pg_catalog.format('SELECT pg_catalog.count(*) AS live, pg_catalog.count(*) FILTER (WHERE %s) AS missing FROM %s t WHERE %s',
                                     v_anti, p_target, v_scope);
        v_delete := pg_catalog.format(
            CASE WHEN v_deletes->>'rule' = 'hard' THEN 'WITH d AS (DELETE FROM %1$s t WHERE %2$s AND %3$s RETURNING %4$s AS key, %5$s AS hash) '
                 ELSE 'WITH d AS (UPDATE %1$s t SET %6$I = %7$s WHERE %2$s AND %3$s RETURNING %4$s AS key, %5$s AS hash) ' END,
            p_target, v_scope, v_anti, pg_catalog.format('pg_catalog.jsonb_build_object(%s)', v_key_json_t),
            starpipe._row_hash_expr(p_target, 't', v_cols), v_soft, v_soft_set);
    END IF;

    RETURN pg_catalog.jsonb_build_object(
        'policy', v_policy, 'policies', v_policies, 'columns', pg_catalog.to_jsonb(v_cols), 'key', pg_catalog.to_jsonb(v_key),
        'deletes', v_deletes, 'mode', v_mode, 'guard', v_guard, 'delete', v_delete,
        -- The audit: every staged row whose key production has and that differs from what the staged row says, the
        -- columns that differ and those the policy writes, the hash of the production row before, and what the
        -- promoted digest must add for the row (its term as the policy leaves it minus its staged term); with
        -- merge_non_null also the rows whose staged NULLs keep production values (not conflicts, but the row then
        -- differs from its staged one).
        -- Without a policy that keeps production values, every audited row is applied as it differs (applied
        -- columns and the reason NULL: the changed ones, none); without merge_non_null, every audited row is a
        -- conflict (is_conflict NULL in the simple case); with neither, what production holds is the staged row
        -- (delta NULL: no digest term to add). The common case thus computes, and carries, no more than the
        -- conflict itself: 'simple'.
        'simple', NOT v_keeps AND NOT v_has_merge,
        'audit', pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(%1$s), pg_catalog.array_remove(ARRAY[%2$s]::text[], NULL), '
            '%3$s, s._source_row, %17$s, %6$s, %18$s, '
            '%10$s, %11$s, %12$s FROM %13$s s JOIN %14$s t ON %15$s WHERE ROW(%4$s) IS DISTINCT FROM ROW(%5$s)%16$s',
            -- (%7$s to %9$s are unused)
            v_key_json, coalesce(pg_catalog.array_to_string(v_changed, ', '), ''),
            CASE WHEN v_keeps THEN pg_catalog.format('pg_catalog.array_remove(ARRAY[%s]::text[], NULL)',
                                                     coalesce(pg_catalog.array_to_string(v_applied_cols, ', '), ''))
                 ELSE 'NULL::text[]' END,
            coalesce(pg_catalog.array_to_string(v_currents, ', '), 'NULL'), coalesce(pg_catalog.array_to_string(v_candidates, ', '), 'NULL'),
            starpipe._row_hash_expr(p_target, 't', v_cols), NULL, NULL, NULL,
            CASE WHEN v_audit_values AND v_before <> '{}' THEN pg_catalog.array_to_string(v_before, ' || ') ELSE 'NULL::jsonb' END,
            CASE WHEN v_audit_values AND v_after <> '{}' THEN pg_catalog.array_to_string(v_after, ' || ') ELSE 'NULL::jsonb' END,
            CASE WHEN NOT v_keeps THEN 'NULL::text'
                 WHEN p_older THEN '''older_snapshot'''
                 WHEN v_version_col IS NOT NULL THEN pg_catalog.format('CASE WHEN %s THEN ''target_wins'' ELSE ''not_newer'' END', v_newer)
                 ELSE '''target_wins''' END,
            p_staging, p_target, v_join,
            CASE WHEN v_has_merge THEN pg_catalog.format(' OR ROW(%s) IS DISTINCT FROM ROW(%s)',
                     pg_catalog.array_to_string(v_results, ', '),
                     (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', c), ', ' ORDER BY c) FROM pg_catalog.unnest(v_nonkey) c))
                 ELSE '' END,
            CASE WHEN v_has_merge THEN pg_catalog.format('ROW(%s) IS DISTINCT FROM ROW(%s)',
                     coalesce(pg_catalog.array_to_string(v_currents, ', '), 'NULL'), coalesce(pg_catalog.array_to_string(v_candidates, ', '), 'NULL'))
                 WHEN v_keeps THEN 'true' ELSE 'NULL::boolean' END,
            CASE WHEN v_keeps OR v_has_merge THEN pg_catalog.format(
                     'CASE WHEN ROW(%1$s) IS DISTINCT FROM ROW(%2$s) THEN pg_catalog.hash_record_extended(ROW(%1$s), 0)::numeric - %3$s ELSE 0 END',
                     pg_catalog.array_to_string(v_res_hash, ', '), pg_catalog.array_to_string(v_s_list, ', '),
                     pg_catalog.format('pg_catalog.hash_record_extended(ROW(%s), 0)', pg_catalog.array_to_string(v_s_list, ', ')))
                 ELSE 'NULL::numeric' END),
        'new_keys', pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s s WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE %s))',
                                      p_staging, p_target, v_join),
        -- The write: one MERGE joins staging with production once; new keys are inserted, and a row the policy
        -- changes is updated (the condition is evaluated again on the row MERGE sees).
        'merge', pg_catalog.format(
            'MERGE INTO %s t USING %s s ON %s %s WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)',
            p_target, p_staging, v_join,
            CASE WHEN v_can_write AND v_set <> '{}' THEN pg_catalog.format(
                'WHEN MATCHED AND ROW(%s) IS DISTINCT FROM ROW(%s) THEN UPDATE SET %s',
                pg_catalog.array_to_string(v_currents, ', '), pg_catalog.array_to_string(v_results, ', '),
                pg_catalog.array_to_string(v_set, ', '))
            ELSE '' END,
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c) FROM pg_catalog.unnest(v_cols) c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('s.%I', c), ', ' ORDER BY c) FROM pg_catalog.unnest(v_cols) c)));
END;
$$;

-- Holds a job whose full snapshot would delete more than the mapping allows: BLOCKED (or, for a human's call, an
-- error), nothing promoted. p_figures: {rule, max_fraction, missing, live_rows, allowed_by_override}.
CREATE FUNCTION starpipe._mass_delete_blocked(p_job starpipe.job, p_manual boolean, p_target text, p_figures jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_manual THEN
        PERFORM starpipe._raise('SP007', pg_catalog.format('promotion of job %s would delete %s of %s rows of %s (more than %s)',
                                                           p_job.job_id, p_figures->>'missing', p_figures->>'live_rows', p_target,
                                                           p_figures->>'max_fraction'),
            NULL, 'If the snapshot is right, promote with allow_mass_delete (starpipe promote JOB --allow-mass-delete).');
    END IF;
    PERFORM starpipe._transition(p_job, 'BLOCKED', 'validated', 'mass_delete_blocked', p_figures,
        pg_catalog.format('mass-delete guard: the snapshot lacks %s of %s rows of %s (%s%%, more than %s%%); nothing was promoted. '
                          'Check the source table, then starpipe promote %s --allow-mass-delete, or fix the extract and send a new snapshot',
                          p_figures->>'missing', p_figures->>'live_rows', p_target,
                          pg_catalog.round(100.0 * (p_figures->>'missing')::numeric / (p_figures->>'live_rows')::numeric, 1),
                          pg_catalog.round(100 * (p_figures->>'max_fraction')::numeric, 1), p_job.job_id));
    RETURN 'BLOCKED';
END;
$$;

-- Whether the guard's figures stop a promotion.
CREATE FUNCTION starpipe._mass_delete_exceeded(p_figures jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (p_figures->>'missing')::bigint > 0
       AND (p_figures->>'missing')::numeric > (p_figures->>'max_fraction')::numeric * (p_figures->>'live_rows')::numeric
       AND NOT (p_figures->>'allowed_by_override')::boolean;
$$;

-- The end of every promotion, in its transaction: the promotion row (with the digest of what production now holds
-- for the job's keys: the staged digest with the terms of rows the policies did not take as staged replaced), the
-- job's counts and digests, the promoted event, and retention. p_counts: {inserted, updated, kept, conflicts,
-- deleted, delta, skipped}.
CREATE FUNCTION starpipe._finish_promotion(p_job starpipe.job, p_manual boolean, p_start jsonb, p_sql jsonb, p_digest text,
                                           p_guard jsonb, p_counts jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_staged bigint := starpipe._digest_rows(p_digest);
    v_inserted bigint := (p_counts->>'inserted')::bigint;
    v_updated bigint := (p_counts->>'updated')::bigint;
    v_kept bigint := (p_counts->>'kept')::bigint;
    v_unchanged bigint := v_staged - v_inserted - v_updated - v_kept;
    v_promoted text := starpipe._digest(v_staged, starpipe._digest_sum(p_digest) + coalesce((p_counts->>'delta')::numeric, 0));
    v_dropped bigint[];
BEGIN
    INSERT INTO starpipe.promotion (job_id, target, policy, mapping_version, fence, actor, manual, staged, inserted, updated,
                                    unchanged, kept, deleted, mode, column_policies, skipped, deletes, staged_digest,
                                    promoted_digest)
    VALUES (p_job.job_id, p_start->>'target', p_sql->>'policy', p_job.mapping_version, p_job.fence, SESSION_USER, p_manual,
            v_staged, v_inserted, v_updated, v_unchanged, v_kept, (p_counts->>'deleted')::bigint, p_sql->>'mode',
            p_sql->'policies',
            coalesce(NULLIF(p_counts->'skipped', 'null'::jsonb), '{}') || CASE WHEN v_unchanged > 0 THEN pg_catalog.jsonb_build_object('unchanged', v_unchanged)
                                                        ELSE '{}' END,
            p_guard, p_digest, v_promoted);
    UPDATE starpipe.job SET rows_inserted = v_inserted, rows_updated = v_updated, rows_deleted = (p_counts->>'deleted')::bigint,
                            staged_digest = coalesce(staged_digest, p_digest), promoted_digest = v_promoted
     WHERE job_id = p_job.job_id;
    PERFORM starpipe._transition(p_job, 'SUCCESS', 'promoted', 'promoted',
        pg_catalog.jsonb_build_object('target', p_start->>'target', 'inserted', v_inserted, 'updated', v_updated, 'kept', v_kept,
                                      'deleted', (p_counts->>'deleted')::bigint, 'conflicts', (p_counts->>'conflicts')::bigint,
                                      'policy', p_sql->>'policy', 'manual', p_manual)
        || CASE WHEN p_start->'production' IS NOT NULL AND p_start->>'production' IS NOT NULL
                THEN pg_catalog.jsonb_build_object('production', p_start->'production') ELSE '{}'::jsonb END
        || CASE WHEN (p_guard->>'allowed_by_override')::boolean
                THEN pg_catalog.jsonb_build_object('mass_delete_allowed_by', SESSION_USER) ELSE '{}'::jsonb END
        || CASE WHEN (p_start->>'older')::boolean THEN pg_catalog.jsonb_build_object(
                'older_snapshot', true, 'newest_promoted_snapshot', p_start->'newest_snapshot',
                'newest_promoted_job', p_start->'newest_job', 'kept_existing', v_staged - v_inserted)
           ELSE '{}'::jsonb END);
    -- Raw versions (and their staging tables, which verify reads) beyond the retention are dropped.
    v_dropped := starpipe._drop_old_raw_versions(p_job);
    IF v_dropped <> '{}' THEN
        PERFORM starpipe._drop_staging_of(v_dropped);
        INSERT INTO starpipe.job_event (job_id, fence, from_status, to_status, stage, event, detail)
        VALUES (p_job.job_id, p_job.fence, 'SUCCESS', 'SUCCESS', 'promoted', 'raw_retention',
                pg_catalog.jsonb_build_object('dropped_raw_versions_of_jobs', pg_catalog.to_jsonb(v_dropped),
                                              'keep', starpipe._setting_value('raw_keep_promoted_versions')::integer));
    END IF;
    RETURN 'SUCCESS';
END;
$$;

-- Whether promote may run the audit join of staging with p_target as the extension's owner, in the statement that
-- writes starpipe.conflict, instead of as starpipe_writer through _as_writer_audit (whose result set is materialized
-- and copied again: measured, most of the audit's cost). Only when reading the table runs no code but PostgreSQL's
-- own: a plain table without inheritance children, or a partitioned one whose partitions are plain tables, without
-- row-level security; every column of a built-in type (or a domain over one, compared as its base type under the
-- pinned search_path); and the owner may read it. Otherwise the writer's path.
CREATE FUNCTION starpipe._owner_may_audit(p_target regclass)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE col AS (
        SELECT a.atttypid AS base
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_target AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT t.typbasetype FROM col c JOIN pg_catalog.pg_type t ON t.oid = c.base AND t.typtype = 'd')
    SELECT r.relkind IN ('r', 'p') AND NOT r.relrowsecurity
       AND pg_catalog.has_table_privilege(p_target, 'SELECT')
       -- Inheritance children (not partitions) are scanned too and may be foreign tables: the writer's path.
       AND (r.relkind = 'p' OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = p_target))
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(p_target) p JOIN pg_catalog.pg_class c ON c.oid = p.relid
                        WHERE c.relrowsecurity OR c.relkind NOT IN ('r', 'p'))
       AND NOT EXISTS (SELECT 1 FROM col c JOIN pg_catalog.pg_type t ON t.oid = c.base
                        WHERE t.typtype <> 'd' AND c.base >= 16384)
      FROM pg_catalog.pg_class r WHERE r.oid = p_target;
$$;

-- Promotes a validated job into production in one transaction; returns the job's status after.
-- A second call on a promoted job is a no-op. p_manual: a human promotes a job awaiting manual promotion or held by
-- the mass-delete guard (no fence); p_allow_mass_delete (manual only) lets a full snapshot delete more than the guard allows.
CREATE FUNCTION starpipe._promote(p_job_id bigint, p_fence bigint, p_manual boolean, p_allow_mass_delete boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_start jsonb := starpipe._promotion_start(p_job_id, p_fence, p_manual);
    v_job starpipe.job;
    v_map jsonb := v_start->'mapping';
    v_target text := v_start->>'target';
    v_staging text := v_start->>'staging';
    v_sql jsonb;
    v_digest text;
    v_guard jsonb;
    v_deleted bigint := 0;
    v_conflicts bigint;
    v_kept bigint;
    v_delta numeric;
    v_skipped jsonb;
    v_written bigint := 0;
    v_updated bigint;
    v_shape jsonb;
    v_audit text;
BEGIN
    IF (v_start->>'already')::boolean THEN
        RAISE NOTICE 'job % is already promoted; nothing to do', p_job_id;
        RETURN 'SUCCESS';
    END IF;
    SELECT * INTO v_job FROM starpipe.job WHERE job_id = p_job_id;
    IF v_start->>'production' IS NOT NULL THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s promotes into production database %s: the worker applies it there (starpipe promote JOB for a manual one)',
                                                           p_job_id, v_start->>'production'));
    END IF;
    IF starpipe._older_incremental_blocked(v_job, v_start, p_manual) THEN
        RETURN 'BLOCKED';
    END IF;
    -- The allowlist and the writer's grants may have changed since the mapping was applied.
    PERFORM starpipe._check_target_schema(v_start->>'target_schema');
    PERFORM starpipe._check_writer_rights(pg_catalog.format('tables.%s', v_job.table_name), v_target::regclass);
    IF starpipe._deletes_rule(v_map)->>'rule' = 'hard' AND NOT pg_catalog.has_table_privilege('starpipe_writer', v_target, 'DELETE') THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('tables.%s.deletes: starpipe_writer lacks DELETE on %s', v_job.table_name, v_target),
            NULL, pg_catalog.format('A DBA grants it: GRANT DELETE ON %s TO starpipe_writer;', v_target));
    END IF;
    -- Production's shape cannot change from here to the commit (ALTER TABLE waits for this lock), and must still be
    -- the one staging was built from and validate checked: a DDL change since then blocks the job until it is re-staged.
    PERFORM starpipe._as_writer_execute(pg_catalog.format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', v_target));
    v_shape := starpipe._shape_gate(v_job, v_map);
    IF v_shape IS NOT NULL THEN
        IF p_manual THEN
            PERFORM starpipe._raise('SP001', pg_catalog.format('job %s cannot be promoted into %s: %s',
                                                               p_job_id, v_target, v_shape->>'figures'));
        END IF;
        PERFORM starpipe._transition(v_job, 'BLOCKED', 'validated', 'production_changed',
            pg_catalog.jsonb_build_object('failures', pg_catalog.jsonb_build_array(v_shape)),
            pg_catalog.format('promotion into %s stopped, nothing written: %s', v_target, v_shape->>'figures'));
        RETURN 'BLOCKED';
    END IF;
    -- Production is read and written as starpipe_writer, which reads this staging table during the promotion only.
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_staging);
    v_sql := starpipe._promotion_sql(v_job, v_map, v_target::regclass, v_staging, (v_start->>'older')::boolean);
    v_digest := starpipe._check_staged_digest(v_job, v_staging, ARRAY(SELECT pg_catalog.jsonb_array_elements_text(v_sql->'columns')));
    IF v_digest IS NULL THEN
        EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
        RETURN 'FAILED';
    END IF;

    IF v_sql->>'guard' IS NOT NULL THEN
        SELECT pg_catalog.jsonb_build_object('rule', v_sql->'deletes'->>'rule', 'max_fraction', v_sql->'deletes'->'max_fraction',
                                             'missing', (r->>'missing')::bigint, 'live_rows', (r->>'live')::bigint,
                                             'allowed_by_override', p_allow_mass_delete AND p_manual)
          INTO v_guard FROM starpipe._as_writer_query(pg_catalog.format('SELECT pg_catalog.to_jsonb(g) FROM (%s) g', v_sql->>'guard')) r;
        IF starpipe._mass_delete_exceeded(v_guard) THEN
            EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
            RETURN starpipe._mass_delete_blocked(v_job, p_manual, v_target, v_guard);
        END IF;
        IF (v_guard->>'missing')::bigint > 0 THEN
            INSERT INTO starpipe.deletion (job_id, target, key, rule, before_hash)
            SELECT p_job_id, v_target, r->'key', v_sql->'deletes'->>'rule', (r->>'hash')::bigint
              FROM starpipe._as_writer_query((v_sql->>'delete') || 'SELECT pg_catalog.jsonb_build_object(''key'', d.key, ''hash'', d.hash) FROM d') r;
            GET DIAGNOSTICS v_deleted = ROW_COUNT;
        END IF;
    END IF;

    -- The audit rows come from the writer (_as_writer_audit), or, when reading production runs no code of its own,
    -- from the join itself, run by the owner in this statement (_owner_may_audit): the same rows, copied once less.
    v_audit := CASE WHEN starpipe._owner_may_audit(v_target::regclass)
                    THEN pg_catalog.format('(%s) a (key, changed_columns, applied_columns, source_row, is_conflict, before_hash, '
                                           'delta, before_values, after_values, reason)', v_sql->>'audit')
                    ELSE pg_catalog.format('starpipe._as_writer_audit(%L) a', v_sql->>'audit') END;
    IF (v_sql->>'simple')::boolean THEN
        -- Every audited row is a conflict, applied as it differs, with nothing to add to the digest.
        EXECUTE pg_catalog.format(
            'WITH audited AS ('
            '  INSERT INTO starpipe.conflict (job_id, target, key, changed_columns, policy, source_row, applied, applied_columns,'
            '                                 before_hash, before_values, after_values)'
            '  SELECT $1, $2, a.key, a.changed_columns, $3, a.source_row, true, a.changed_columns,'
            '         a.before_hash, a.before_values, a.after_values'
            '    FROM %s'
            '  RETURNING 1) '
            'SELECT pg_catalog.count(*), 0, 0 FROM audited', v_audit)
          INTO v_conflicts, v_kept, v_delta USING p_job_id, v_target, v_sql->>'policy';
    ELSE
        EXECUTE pg_catalog.format(
            'WITH audit AS MATERIALIZED ('
            '  SELECT a.key, a.changed_columns, coalesce(a.applied_columns, a.changed_columns) AS applied_columns, a.source_row,'
            '         coalesce(a.is_conflict, true) AS is_conflict, a.before_hash, a.delta, a.before_values, a.after_values, a.reason'
            '    FROM %s), '
            'audited AS ('
            '  INSERT INTO starpipe.conflict (job_id, target, key, changed_columns, policy, source_row, applied, applied_columns,'
            '                                 before_hash, before_values, after_values)'
            '  SELECT $1, $2, a.key, a.changed_columns, $3, a.source_row, a.applied_columns <> ''{}'','
            '         a.applied_columns, a.before_hash, a.before_values, a.after_values'
            '    FROM audit a WHERE a.is_conflict'
            '  RETURNING conflict.applied) '
            'SELECT (SELECT pg_catalog.count(*) FROM audited), (SELECT pg_catalog.count(*) FILTER (WHERE NOT audited.applied) FROM audited),'
            '       (SELECT pg_catalog.sum(a.delta) FROM audit a),'
            '       (SELECT pg_catalog.jsonb_object_agg(r.reason, r.n) FROM ('
            '            SELECT a.reason, pg_catalog.count(*) AS n FROM audit a WHERE a.is_conflict AND a.applied_columns = ''{}'''
            '             GROUP BY a.reason) r)', v_audit)
          INTO v_conflicts, v_kept, v_delta, v_skipped USING p_job_id, v_target, v_sql->>'policy';
    END IF;

    -- The write, as starpipe_writer: production triggers, defaults and constraints run with its rights only.
    -- Nothing applied and no new key: nothing to run.
    IF v_conflicts > v_kept OR (SELECT (r->>0)::boolean FROM starpipe._as_writer_query(pg_catalog.format(
           'SELECT pg_catalog.jsonb_build_array(x.exists) FROM (%s) x', v_sql->>'new_keys')) r) THEN
        v_written := starpipe._as_writer_execute(v_sql->>'merge');
    END IF;
    EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_staging);
    -- MERGE counts rows written; the split follows the audit (a concurrent writer to production can shift rows
    -- between updated and unchanged, never the total).
    v_updated := LEAST(v_conflicts - v_kept, v_written);
    RETURN starpipe._finish_promotion(v_job, p_manual, v_start, v_sql, v_digest, v_guard,
        pg_catalog.jsonb_build_object('inserted', v_written - v_updated, 'updated', v_updated, 'kept', v_kept,
                                      'conflicts', v_conflicts, 'deleted', v_deleted, 'delta', v_delta, 'skipped', v_skipped));
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
