-- starpipe: replaying a job's rejected rows after a mapping fix. A replay is an ordinary job: its raw version holds
-- only the rejected rows (copied from the original raw version, with their source row numbers), and the worker takes it
-- through transform (with the mapping in force), validate and promote like any other. When it is promoted, the
-- original rejects of the rows it staged are resolved; rows it rejects again stay unresolved.

-- Which job a replay job replays.
CREATE TABLE starpipe.reject_replay (
    job_id     bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    replay_of  bigint NOT NULL REFERENCES starpipe.job (job_id),
    rows       bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by text NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX reject_replay_of ON starpipe.reject_replay (replay_of);
COMMENT ON TABLE starpipe.reject_replay IS 'Replay jobs (starpipe.replay_rejects): the job whose rejected rows each one carries, and how many.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.reject_replay', '');

-- Queues a job's unresolved rejected rows as a new job from raw; returns its id, or NULL when nothing is unresolved.
CREATE FUNCTION starpipe.replay_rejects(p_job_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_new starpipe.job;
    v_raw regclass;
    v_rows bigint[];
    v_n integer;
    v_part text;
    v_cols text;
    v_count bigint;
BEGIN
    -- A second replay of a job whose rejects were all resolved applies nothing: there is nothing left to replay.
    v_job := starpipe._lock_job(p_job_id);
    IF EXISTS (SELECT 1 FROM starpipe.reject_replay r JOIN starpipe.job j ON j.job_id = r.job_id
                WHERE r.replay_of = p_job_id AND j.status = ANY (starpipe._unfinished_statuses())) THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s has a replay that is not finished yet', p_job_id), NULL,
            'Let it finish (or fail) before replaying again: starpipe status shows it.');
    END IF;
    -- A job that failed over its reject budget promoted nothing: retry it after the fix, so all its rows are staged.
    IF v_job.status <> 'SUCCESS' OR v_job.stage <> 'promoted' THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; only a promoted job''s rejects are replayed', p_job_id, v_job.status, v_job.stage),
            NULL, 'A job that failed over its reject budget is retried after the fix: starpipe retry JOB.');
    END IF;
    SELECT pg_catalog.array_agg(DISTINCT x.source_row ORDER BY x.source_row) INTO v_rows
      FROM starpipe.reject x WHERE x.job_id = p_job_id AND x.resolved_at IS NULL;
    IF v_rows IS NULL THEN
        RETURN NULL;
    END IF;
    v_raw := starpipe.raw_version(p_job_id);
    IF v_raw IS NULL THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s has no raw version left to replay from', p_job_id));
    END IF;
    SELECT pg_catalog.count(*) + 1 INTO v_n FROM starpipe.reject_replay r WHERE r.replay_of = p_job_id;
    INSERT INTO starpipe.job (client, table_name, snapshot_date, run_id, manifest_key, data_key, manifest, sha256, row_count,
                              byte_count, status, stage, schema_version)
    VALUES (v_job.client, v_job.table_name, v_job.snapshot_date, pg_catalog.left(v_job.run_id, 50) || '.replay-' || v_n,
            v_job.manifest_key, v_job.data_key, v_job.manifest, v_job.sha256, pg_catalog.cardinality(v_rows), 0,
            'PENDING', 'raw_loaded', v_job.schema_version)
    RETURNING * INTO v_new;
    -- The raw version: the rejected rows as they were loaded, with their source row numbers, under the new job id.
    v_part := starpipe._version_name(v_job.table_name, v_new.job_id);
    EXECUTE pg_catalog.format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS)', 'raw_' || v_job.client, v_part, 'raw_' || v_job.client, v_job.table_name);
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_cols
      FROM pg_catalog.pg_attribute a WHERE a.attrelid = v_raw AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> '_ingestion_id';
    EXECUTE pg_catalog.format('INSERT INTO %I.%I (_ingestion_id, %s) SELECT %s, %s FROM %s WHERE _source_row = ANY ($1)',
                              'raw_' || v_job.client, v_part, v_cols, v_new.job_id, v_cols, v_raw) USING v_rows;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM starpipe._lock_down('TABLE', pg_catalog.format('%I.%I', 'raw_' || v_job.client, v_part), 'SELECT', '{starpipe_admin}');
    EXECUTE pg_catalog.format('ALTER TABLE %I.%I ATTACH PARTITION %I.%I FOR VALUES IN (%s)',
                              'raw_' || v_job.client, v_job.table_name, 'raw_' || v_job.client, v_part, v_new.job_id);
    -- The raw digest as finish_raw records it, so starpipe.verify checks a replay like any job.
    UPDATE starpipe.job SET rows_raw = v_count,
                            raw_digest = starpipe._digest_of(pg_catalog.format('%I.%I', 'raw_' || v_job.client, v_part)::regclass,
                                                             starpipe._raw_columns(pg_catalog.format('%I.%I', 'raw_' || v_job.client, v_part)::regclass))
     WHERE job_id = v_new.job_id;
    INSERT INTO starpipe.reject_replay (job_id, replay_of, rows) VALUES (v_new.job_id, p_job_id, v_count);
    INSERT INTO starpipe.job_event (job_id, to_status, stage, event, detail)
    VALUES (v_new.job_id, 'PENDING', 'raw_loaded', 'replay_registered',
            pg_catalog.jsonb_build_object('replay_of', p_job_id, 'rows', v_count, 'raw_version', v_part));
    INSERT INTO starpipe.job_event (job_id, to_status, from_status, stage, event, detail)
    VALUES (p_job_id, v_job.status, v_job.status, v_job.stage, 'rejects_replayed',
            pg_catalog.jsonb_build_object('replay_job', v_new.job_id, 'rows', v_count));
    PERFORM pg_catalog.pg_notify('starpipe_job', v_new.job_id::text);
    RETURN v_new.job_id;
END;
$$;
COMMENT ON FUNCTION starpipe.replay_rejects(bigint) IS
    'Queues the job''s unresolved rejected rows, from its raw version, as a new job that the worker transforms with the current mapping, validates and promotes; returns its id (NULL: nothing to replay).';

-- Trigger: when a replay job is promoted, resolves the original rejects of the rows it staged.
CREATE FUNCTION starpipe._resolve_replayed_rejects()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_of bigint;
BEGIN
    -- Runs in the promotion's transaction, so the rows are resolved exactly when they reach production. A row the
    -- replay staged or removed by dedup is resolved; one it rejected again stays unresolved on the original (and is
    -- listed under the replay too, with the rule that refused it this time).
    SELECT r.replay_of INTO v_of FROM starpipe.reject_replay r WHERE r.job_id = NEW.job_id;
    IF v_of IS NOT NULL THEN
        -- Earlier replays' rejects of the same rows are resolved with them, so a row is listed unresolved only once fixed nowhere.
        UPDATE starpipe.reject x SET resolved_at = pg_catalog.now(), resolved_by = NEW.job_id
         WHERE x.resolved_at IS NULL
           AND (x.job_id = v_of OR x.job_id IN (SELECT r.job_id FROM starpipe.reject_replay r WHERE r.replay_of = v_of AND r.job_id <> NEW.job_id))
           AND x.source_row IN (SELECT o.source_row FROM starpipe.reject o WHERE o.job_id = v_of AND o.resolved_at IS NULL)
           AND NOT EXISTS (SELECT 1 FROM starpipe.reject y WHERE y.job_id = NEW.job_id AND y.source_row = x.source_row AND y.resolved_at IS NULL);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER job_resolve_replayed_rejects AFTER UPDATE OF status ON starpipe.job
    FOR EACH ROW WHEN (NEW.status = 'SUCCESS' AND NEW.stage = 'promoted' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION starpipe._resolve_replayed_rejects();

-- The rows a job's max_fraction budget is a fraction of: its raw rows, or for a replay those of the job it replays.
CREATE FUNCTION starpipe._budget_rows(p_job starpipe.job)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- A replay carries only rejected rows: against its own count, any row still refused would exceed any fraction.
    SELECT coalesce((SELECT o.rows_raw FROM starpipe.reject_replay r JOIN starpipe.job o ON o.job_id = r.replay_of
                      WHERE r.job_id = p_job.job_id), p_job.rows_raw);
$$;
