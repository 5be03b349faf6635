-- starpipe: row lineage, from a production row back to the jobs, bucket files and source rows that wrote it.
--
-- Nothing is written for it at promotion: the conflict audit already records, per changed row, the job and the
-- source row that changed it (applied or kept), the delete audit each delete, and a promoted job's staging table
-- (kept as long as its raw version) holds every staged key with its source row, which finds the job that inserted
-- a row. So lineage costs the promotion nothing; what it cannot know is the inserting job once retention has dropped
-- its staging table, and then it says so.

-- The history of one production row, by its conflict key: p_target is the production table (schema.table, as a
-- mapping names it), p_key its conflict key's values as text ({"id": "42"}), cast to the key columns' types as the
-- writer would; p_presence: also look (as the writer) whether the row is in production now. Returns {target, key,
-- present, last_write, history[], mappings[], insert_uncertain_through_job}: each history entry names the job (client,
-- table, snapshot, run, bucket data and manifest keys), what it did (inserted, updated, kept, soft_deleted, deleted),
-- the changed columns, the source row inside the data file and when; newest first. insert_uncertain_through_job: the
-- newest earlier promotion whose staging retention dropped, when there is one: the insert may have been that job's or
-- an earlier one's (the entry found then says inserted_or_unchanged). Column names and row numbers only, never a
-- value besides the key the caller gave, which no error repeats. The one body behind trace_row (admin) and
-- row_origin (the dashboard's, lineage only); not SECURITY DEFINER itself: it runs with the rights of those two.
CREATE FUNCTION starpipe._row_lineage(p_target text, p_key jsonb, p_presence boolean)
RETURNS jsonb
LANGUAGE plpgsql
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
    v_target regclass := pg_catalog.to_regclass(p_target);
    v_name text;
    v_key_cols text[];
    v_mappings jsonb;
    v_key jsonb;
    v_where text;
    v_present boolean;
    v_history jsonb := '[]';
    v_promotion record;
    v_row bigint;
    v_since timestamptz;
    v_unknown_before jsonb;
BEGIN
    IF v_target IS NULL THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('%s is not a table', p_target));
    END IF;
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) INTO v_name
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_target;
    -- The mappings (client, table, newest version) that write this table, and their conflict key.
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('client', x.client, 'table', x.table_name, 'mapping_version', x.version,
                                                              'conflict_key', x.conflict_key) ORDER BY x.client, x.table_name)
      INTO v_mappings
      FROM (SELECT DISTINCT ON (m.client, t.key) m.client, t.key AS table_name, m.version, t.value->'conflict_key' AS conflict_key
              FROM starpipe.mapping m, pg_catalog.jsonb_each(m.config->'tables') t
             WHERE pg_catalog.format('%I.%I', m.config->>'target_schema', t.value->>'target') = v_name
             ORDER BY m.client, t.key, m.version DESC) x;
    IF v_mappings IS NULL THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('no mapping writes %s', v_name));
    END IF;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key_cols
      FROM pg_catalog.jsonb_array_elements_text(v_mappings->0->'conflict_key') k;
    IF pg_catalog.jsonb_typeof(p_key) IS DISTINCT FROM 'object'
       OR ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(p_key) k ORDER BY k) <> v_key_cols THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('%s is found by its conflict key (%s): give each of them, as KEY=VALUE',
                                                           v_name, pg_catalog.array_to_string(v_key_cols, ', ')));
    END IF;
    -- The key as promotion records it (jsonb of the typed values), cast by the writer: a production type's input
    -- function is production-side code.
    -- A value that does not fit its column's type is refused naming the columns: the input function's own message
    -- quotes the value.
    BEGIN
        SELECT r INTO v_key FROM starpipe._as_writer_query(pg_catalog.format('SELECT pg_catalog.jsonb_build_object(%s)',
            (SELECT pg_catalog.string_agg(pg_catalog.format('%L, %L::%s', k, p_key->>k, starpipe._column_type(v_target, k)), ', ' ORDER BY k)
               FROM pg_catalog.unnest(v_key_cols) k))) r;
    EXCEPTION WHEN data_exception THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('a value given for %s does not fit the type of its conflict key (%s)',
                                                           v_name, (SELECT pg_catalog.string_agg(pg_catalog.format('%s %s', k,
                                                                        starpipe._column_type(v_target, k)), ', ' ORDER BY k)
                                                                      FROM pg_catalog.unnest(v_key_cols) k)));
    END;
    v_where := (SELECT pg_catalog.string_agg(pg_catalog.format('x.%I = %L::%s', k, p_key->>k, starpipe._column_type(v_target, k)), ' AND ' ORDER BY k)
                  FROM pg_catalog.unnest(v_key_cols) k);
    -- Present now? (Read as the writer, which holds the DBA's SELECT on production; NULL when it may not read it.)
    IF p_presence THEN BEGIN
        SELECT (r->>0)::boolean INTO v_present FROM starpipe._as_writer_query(pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_array(EXISTS (SELECT 1 FROM %s x WHERE %s))', v_target, v_where)) r;
    EXCEPTION WHEN insufficient_privilege THEN
        v_present := NULL;
    END; END IF;

    -- Changes and deletes by promotions into this table, from their audit.
    SELECT coalesce(pg_catalog.jsonb_agg(e), '[]') INTO v_history FROM (
        SELECT p.job_id, CASE WHEN c.applied IS FALSE THEN 'kept' ELSE 'updated' END AS action, p.at,
               c.source_row, c.changed_columns, c.applied_columns, c.policy
          FROM starpipe.conflict c JOIN starpipe.promotion p ON p.job_id = c.job_id
         WHERE c.target = v_name AND c.key = v_key
        UNION ALL
        SELECT p.job_id, CASE d.rule WHEN 'hard' THEN 'deleted' ELSE 'soft_deleted' END, p.at, NULL, NULL, NULL, NULL
          FROM starpipe.deletion d JOIN starpipe.promotion p ON p.job_id = d.job_id
         WHERE d.target = v_name AND d.key = v_key) e;
    -- The insert: the first promotion, since the last hard delete, whose staged rows hold the key and that did not
    -- audit it as a change. Staging tables are kept with their raw versions; the writer reads one at a time.
    v_since := (SELECT pg_catalog.max((e->>'at')::timestamptz) FROM pg_catalog.jsonb_array_elements(v_history) e
                 WHERE e->>'action' = 'deleted');
    FOR v_promotion IN
        SELECT p.job_id, p.at, pg_catalog.to_regclass(starpipe._staging_table(j, m.config->'tables'->j.table_name)) AS staging
          FROM starpipe.promotion p JOIN starpipe.job j ON j.job_id = p.job_id
               JOIN starpipe.mapping m ON m.client = j.client AND m.version = p.mapping_version
         WHERE p.target = v_name AND (v_since IS NULL OR p.at > v_since)
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v_history) e WHERE (e->>'job_id')::bigint = p.job_id)
         ORDER BY p.at, p.job_id
    LOOP
        IF v_promotion.staging IS NULL THEN
            -- Its staging is gone (retention): the row may have been inserted by this job or an earlier one.
            v_unknown_before := pg_catalog.to_jsonb(v_promotion.job_id);
            CONTINUE;
        END IF;
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO starpipe_writer', v_promotion.staging);
        SELECT (r->>0)::bigint INTO v_row FROM starpipe._as_writer_query(pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_array(pg_catalog.min(x._source_row)) FROM %s x WHERE %s', v_promotion.staging, v_where)) r;
        EXECUTE pg_catalog.format('REVOKE SELECT ON %s FROM starpipe_writer', v_promotion.staging);
        IF v_row IS NOT NULL THEN
            v_history := v_history || pg_catalog.jsonb_build_object('job_id', v_promotion.job_id,
                'action', CASE WHEN v_unknown_before IS NULL THEN 'inserted' ELSE 'inserted_or_unchanged' END,
                'at', v_promotion.at, 'source_row', v_row);
            EXIT;
        END IF;
    END LOOP;

    -- Each entry with its job's files; newest first.
    SELECT coalesce(pg_catalog.jsonb_agg(e.v || pg_catalog.jsonb_build_object(
               'client', j.client, 'table', j.table_name, 'snapshot_date', j.snapshot_date, 'run_id', j.run_id,
               'data_key', j.data_key, 'manifest_key', j.manifest_key) ORDER BY (e.v->>'at')::timestamptz DESC, j.job_id DESC), '[]')
      INTO v_history
      FROM pg_catalog.jsonb_array_elements(v_history) e(v) JOIN starpipe.job j ON j.job_id = (e.v->>'job_id')::bigint;
    RETURN pg_catalog.jsonb_build_object(
        'target', v_name, 'key', v_key, 'present', v_present, 'mappings', v_mappings, 'history', v_history,
        -- The newest entry that wrote the row (a kept change did not).
        'last_write', (SELECT e FROM pg_catalog.jsonb_array_elements(v_history) e WHERE e->>'action' <> 'kept' LIMIT 1),
        'insert_uncertain_through_job', v_unknown_before);
END;
$$;
COMMENT ON FUNCTION starpipe._row_lineage(text, jsonb, boolean) IS
    'The body of trace_row and row_origin: a production row''s lineage by its conflict key, newest first; presence in production only when asked.';

-- The tables mappings promote into, as schema.table, each with its conflict key's columns and the client tables
-- that write it (newest mapping version of each): names only. The dashboard's row-origin form lists them.
CREATE FUNCTION starpipe._promotion_targets()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('target', x.target, 'conflict_key', x.conflict_key,
                                                                       'writers', x.writers) ORDER BY x.target), '[]')
      FROM (SELECT w.target, (pg_catalog.array_agg(w.conflict_key ORDER BY w.client, w.table_name))[1] AS conflict_key,
                   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('client', w.client, 'table', w.table_name)
                                        ORDER BY w.client, w.table_name) AS writers
              FROM (SELECT DISTINCT ON (m.client, t.key) m.client, t.key AS table_name,
                           pg_catalog.format('%I.%I', m.config->>'target_schema', t.value->>'target') AS target,
                           (SELECT pg_catalog.jsonb_agg(k ORDER BY k) FROM pg_catalog.jsonb_array_elements_text(t.value->'conflict_key') k)
                               AS conflict_key
                      FROM starpipe.mapping m, pg_catalog.jsonb_each(m.config->'tables') t
                     ORDER BY m.client, t.key, m.version DESC) w
             GROUP BY w.target) x;
$$;
COMMENT ON FUNCTION starpipe._promotion_targets() IS
    'The production tables mappings promote into (schema.table), each with its conflict key columns and writing client tables. Names only.';

-- trace_row for the admin: the row's lineage, the typed key and whether the row is in production now.
CREATE FUNCTION starpipe.trace_row(p_target text, p_key jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Reads conflict keys and production (as the writer): admin only.
    RETURN starpipe._row_lineage(p_target, p_key, true);
END;
$$;
COMMENT ON FUNCTION starpipe.trace_row(text, jsonb) IS
    'A production row''s lineage by its conflict key: the jobs, bucket files and source rows that inserted, changed, kept or deleted it, newest first.';

-- The dashboard's row origin (worker and admin): the same lineage as trace_row for a key the caller types, minus
-- everything that is not lineage: no key (typed or echoed), no presence in production. What it tells, job, bucket
-- file and row number for a key, the worker's role can already learn: it reads every bucket data file it ingests,
-- knows each job's files from starpipe.job, and promotion writes those rows by that key (docs/EXTENSION.md).
-- Only a promotion target is accepted, and a refusal never repeats what was given.
CREATE FUNCTION starpipe.row_origin(p_target text, p_key jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Anything but a listed target is refused before it is parsed as a name (whose errors quote it).
    IF p_target IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(starpipe._promotion_targets()) t
                                        WHERE t->>'target' = p_target) THEN
        PERFORM starpipe._raise('SP001', 'row origin takes one of the tables a mapping promotes into (the dashboard lists them)');
    END IF;
    RETURN starpipe._row_lineage(p_target, p_key, false) - 'key' - 'present';
END;
$$;
COMMENT ON FUNCTION starpipe.row_origin(text, jsonb) IS
    'A production row''s lineage for the dashboard: trace_row''s history, last write, mappings and retention note, without the key or presence in production. Promotion targets only.';
