-- starpipe: raw tables, one partition (version) per ingestion.

-- Maps a source type name from a manifest to a built-in Postgres type, defaulting to text.
CREATE FUNCTION starpipe._raw_type(p_source_type text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype;
BEGIN
    -- The name comes from a file, so it is resolved through the catalog, never spliced into DDL; only
    -- pg_catalog's base, range, multirange and domain types qualify, so no user-defined code runs on raw values.
    BEGIN
        v_type := pg_catalog.to_regtype(p_source_type);
    EXCEPTION WHEN OTHERS THEN
        v_type := NULL;
    END;
    IF v_type IS NULL OR NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_type t
         WHERE t.oid = v_type AND t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype IN ('b', 'd', 'r', 'm')
           AND t.typname NOT IN ('unknown', 'void')) THEN
        RETURN 'text';
    END IF;
    -- A type whose length lives in its modifier would lose it here (character means character(1), bit means bit(1)):
    -- those land as text and bit varying, which hold every value of any length, so the raw parent's shape converges.
    -- Their arrays likewise.
    IF v_type = 'pg_catalog.bpchar'::regtype THEN
        RETURN 'text';
    ELSIF v_type = 'pg_catalog.bit'::regtype THEN
        RETURN 'bit varying';
    ELSIF v_type = 'pg_catalog._bpchar'::regtype THEN
        RETURN 'text[]';
    ELSIF v_type = 'pg_catalog._bit'::regtype THEN
        RETURN 'bit varying[]';
    END IF;
    RETURN pg_catalog.format_type(v_type, NULL);
END;
$$;

-- Makes sure the raw schema and parent table of a job's table exist with every manifest column.
CREATE FUNCTION starpipe._prepare_raw_parent(p_job starpipe.job)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_schema text := 'raw_' || p_job.client;
    v_col jsonb;
    v_type text;
    v_existing text;
    v_columns text := '';
BEGIN
    -- Raw tables mirror the client's columns as sent, typed from the manifest, plus metadata.
    IF pg_catalog.to_regnamespace(pg_catalog.quote_ident(v_schema)) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE SCHEMA %I', v_schema);
    END IF;
    -- A schema or table someone else made under starpipe's name is never adopted: its owner's defaults would run
    -- in the worker's COPY, and its owner could read every version.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = v_schema AND n.nspowner <> CURRENT_USER::regrole)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                   WHERE c.oid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', v_schema, p_job.table_name))
                     AND c.relowner <> CURRENT_USER::regrole) THEN
        PERFORM starpipe._raise('42501', pg_catalog.format('%I or %I.%I exists but is not owned by starpipe''s owner; it is not adopted',
                                                           v_schema, v_schema, p_job.table_name),
            NULL, 'Drop or rename it, or change its owner to the role that installed starpipe.');
    END IF;
    -- Privileges are (re)asserted on every load, so a schema or table made earlier (or by hand) is locked down too.
    PERFORM starpipe._lock_down('SCHEMA', pg_catalog.format('%I', v_schema), 'USAGE', '{starpipe_admin,starpipe_worker,starpipe_writer}');
    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', v_schema, p_job.table_name)) IS NULL THEN
        FOR v_col IN SELECT c FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') AS c LOOP
            v_columns := v_columns || pg_catalog.format('%I %s, ', v_col->>'name', starpipe._raw_type(v_col->>'type'));
        END LOOP;
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.%I (%s_ingestion_id bigint NOT NULL, _client_name text NOT NULL, _source_file text NOT NULL, '
            '_ingested_at timestamptz NOT NULL, _source_row bigint NOT NULL) PARTITION BY LIST (_ingestion_id)',
            v_schema, p_job.table_name, v_columns);
    ELSE
        -- A later snapshot may add or retype columns: the parent gains new ones (older versions hold NULLs),
        -- and a retyped one becomes text, which holds any type's values losslessly. The schema registry
        -- records the change; whether it blocks the job is decided before transform.
        FOR v_col IN SELECT c FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') AS c LOOP
            v_type := starpipe._raw_type(v_col->>'type');
            SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO v_existing
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = pg_catalog.format('%I.%I', v_schema, p_job.table_name)::regclass
               AND a.attname = v_col->>'name' AND a.attnum > 0 AND NOT a.attisdropped;
            IF NOT FOUND THEN
                EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD COLUMN %I %s', v_schema, p_job.table_name, v_col->>'name', v_type);
            ELSIF v_existing <> v_type AND v_existing <> 'text' THEN
                EXECUTE pg_catalog.format('ALTER TABLE %I.%I ALTER COLUMN %I TYPE text USING %I::text',
                                          v_schema, p_job.table_name, v_col->>'name', v_col->>'name');
            END IF;
        END LOOP;
    END IF;
    PERFORM starpipe._lock_down('TABLE', pg_catalog.format('%I.%I', v_schema, p_job.table_name), 'SELECT', '{starpipe_admin}');
END;
$$;

-- Whether a job's raw parent already has every manifest column with the type the manifest gives it.
CREATE FUNCTION starpipe._raw_parent_ready(p_job starpipe.job)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'raw_' || p_job.client, p_job.table_name)) IS NOT NULL
       AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') c
            WHERE NOT EXISTS (
                SELECT 1 FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'raw_' || p_job.client, p_job.table_name))
                   AND a.attname = c->>'name' AND a.attnum > 0 AND NOT a.attisdropped
                   AND pg_catalog.format_type(a.atttypid, a.atttypmod) IN (starpipe._raw_type(c->>'type'), 'text')));
$$;

-- Reads a job for a fenced call that must not wait on (or hold) the job's row lock.
CREATE FUNCTION starpipe._held_job(p_job_id bigint, p_fence bigint)
RETURNS starpipe.job
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- The loading transaction stays open for the whole COPY; holding the job row that long would stop
    -- heartbeats and a takeover after the lease ends. finish_raw re-checks the token under the row lock.
    SELECT * INTO v_job FROM starpipe.job WHERE job_id = p_job_id;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('job %s does not exist', p_job_id));
    END IF;
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF v_job.stage <> 'registered' THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; raw data can be loaded only once, at stage registered',
                                                           p_job_id, v_job.status, v_job.stage));
    END IF;
    RETURN v_job;
END;
$$;

-- The table a loading attempt writes: named by job and token, so a takeover never collides with a paused holder.
CREATE FUNCTION starpipe._load_table(p_job starpipe.job, p_fence bigint)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('%I.%I', 'raw_' || p_job.client, '_load_' || p_job.job_id || '_' || p_fence);
$$;

-- Creates (or extends) the raw parent table for a job in its own short transaction, before the load.
CREATE FUNCTION starpipe.prepare_raw(p_job_id bigint, p_fence bigint)
RETURNS void
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
    -- Committed on its own, the DDL on the shared parent never waits long behind a stalled load or a long
    -- reader: after lock_timeout it fails with 55P03, which the worker retries and then nacks.
    PERFORM pg_catalog.set_config('lock_timeout', '5s', true);
    PERFORM starpipe._prepare_raw_parent(starpipe._held_job(p_job_id, p_fence));
END;
$$;
COMMENT ON FUNCTION starpipe.prepare_raw(bigint, bigint) IS
    'Creates or extends the raw parent table of a job''s table; call it in its own transaction before begin_raw.';

-- The raw column types the worker may load with binary COPY: it has a binary encoder for each (BinaryCopyType in
-- Sources/), and a value it cannot put in canonical form sends the whole file through text COPY instead.
CREATE FUNCTION starpipe._binary_copy_types()
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{text,"character varying",character,json,jsonb,boolean,smallint,integer,bigint,real,"double precision",numeric,date,"timestamp without time zone","timestamp with time zone",uuid}'::text[];
$$;

-- Starts a loading attempt: a table shaped like the raw parent, named by job and fencing token.
-- Returns what the worker's COPY needs, in the same transaction; finish_raw makes the table the job's raw version.
CREATE FUNCTION starpipe.begin_raw(p_job_id bigint, p_fence bigint,
                                   OUT load_table text, OUT columns text[], OUT types text[], OUT binary_copy boolean)
RETURNS record
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
    v_schema text;
BEGIN
    -- Takes no lock on the job row and none on the parent beyond reading its shape.
    v_job := starpipe._held_job(p_job_id, p_fence);
    v_schema := 'raw_' || v_job.client;
    -- Without a prior prepare_raw (e.g. from SQL alone) the parent is made here, inside the load. After
    -- prepare_raw nothing shared is touched: no catalog row of the schema or parent stays locked by a long load.
    IF NOT starpipe._raw_parent_ready(v_job) THEN
        PERFORM starpipe._prepare_raw_parent(v_job);
    END IF;
    load_table := starpipe._load_table(v_job, p_fence);
    EXECUTE pg_catalog.format('CREATE TABLE %s (LIKE %I.%I INCLUDING DEFAULTS)', load_table, v_schema, v_job.table_name);
    -- Metadata comes from defaults, so COPY carries only the client's columns; the CHECK lets ATTACH skip its scan.
    EXECUTE pg_catalog.format(
        'ALTER TABLE %s ALTER COLUMN _ingestion_id SET DEFAULT %s, ALTER COLUMN _client_name SET DEFAULT %L, '
        'ALTER COLUMN _source_file SET DEFAULT %L, ALTER COLUMN _ingested_at SET DEFAULT pg_catalog.now(), '
        'ADD CONSTRAINT %I CHECK (_ingestion_id = %s)',
        load_table, v_job.job_id, v_job.client, v_job.data_key, 'version_' || v_job.job_id, v_job.job_id);
    -- The worker runs the COPY itself, so it may insert into this attempt until finish_raw.
    PERFORM starpipe._lock_down('TABLE', load_table, 'SELECT', '{starpipe_admin}');
    EXECUTE pg_catalog.format('GRANT INSERT ON %s TO starpipe_worker', load_table);
    -- The COPY columns: the manifest's, in its order, then the row number the worker adds to each row.
    SELECT pg_catalog.array_agg(c.name ORDER BY c.position),
           pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY c.position)
      INTO columns, types
      FROM (SELECT m->>'name' AS name, o AS position
              FROM pg_catalog.jsonb_array_elements(v_job.manifest->'columns') WITH ORDINALITY AS x(m, o)
            UNION ALL SELECT '_source_row', 2147483647) c
      JOIN pg_catalog.pg_attribute a
        ON a.attrelid = load_table::regclass AND a.attname = c.name AND a.attnum > 0 AND NOT a.attisdropped;
    binary_copy := types <@ (starpipe._binary_copy_types() || '{bigint}'::text[]);
END;
$$;
COMMENT ON FUNCTION starpipe.begin_raw(bigint, bigint) IS
    'Creates the loading table of a job attempt; returns it with its COPY columns (the row number last), their types, and whether binary COPY may be used. Run the COPY and finish_raw in the same transaction.';

-- Ends a loading attempt: verifies checksum, size and row count against the manifest under the job's row

-- The data columns of a raw version or load table, in order (without the lineage columns starpipe adds).
CREATE FUNCTION starpipe._raw_columns(p_rel regclass)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = p_rel AND a.attnum > 0 AND NOT a.attisdropped AND a.attname NOT IN ('_ingestion_id', '_client_name', '_source_file', '_ingested_at', '_source_row');
$$;
-- lock, then attaches the attempt as the job's raw version and records the stage.
CREATE FUNCTION starpipe.finish_raw(p_job_id bigint, p_fence bigint, p_rows bigint, p_bytes bigint, p_sha256 text)
RETURNS bigint
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
    v_load regclass;
    v_part text;
    v_count bigint;
    v_schema jsonb;
    v_digest text;
BEGIN
    -- Any mismatch raises SP003 (a lost lease SP002), which rolls back the COPY of this transaction.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    -- A retry after a lost COMMIT reply: this holder's load landed, so report it instead of refusing.
    IF v_job.stage <> 'registered' AND EXISTS (
           SELECT 1 FROM starpipe.job_event e
            WHERE e.job_id = p_job_id AND e.fence = p_fence AND e.event = 'raw_loaded') THEN
        RETURN v_job.rows_raw;
    END IF;
    v_load := pg_catalog.to_regclass(starpipe._load_table(v_job, p_fence));
    IF v_load IS NULL OR v_job.stage <> 'registered' THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s has no load in progress for this token; call begin_raw first', p_job_id));
    END IF;
    IF p_sha256 IS DISTINCT FROM v_job.sha256 THEN
        PERFORM starpipe._raise('SP003', 'sha256 mismatch: the data file does not match its manifest',
            pg_catalog.format('manifest sha256 %s, data file sha256 %s', v_job.sha256, p_sha256));
    END IF;
    IF p_bytes IS DISTINCT FROM v_job.byte_count THEN
        PERFORM starpipe._raise('SP003', 'byte count mismatch: the data file does not match its manifest',
            pg_catalog.format('manifest byte_count %s, data file %s bytes', v_job.byte_count, p_bytes));
    END IF;
    -- Counted, not taken from the statistics counters: those count rows of rolled-back subtransactions too, and
    -- read 0 with track_counts off. The new table was just written, so its pages are still in memory; the same
    -- pass computes the raw version's digest (starpipe.verify recomputes it).
    v_digest := starpipe._digest_of(v_load, starpipe._raw_columns(v_load));
    v_count := starpipe._digest_rows(v_digest);
    IF v_count <> v_job.row_count OR p_rows IS DISTINCT FROM v_job.row_count THEN
        PERFORM starpipe._raise('SP003', 'row count mismatch: the data file does not match its manifest',
            pg_catalog.format('manifest row_count %s, parsed %s rows, raw version holds %s rows', v_job.row_count, p_rows, v_count));
    END IF;
    -- A loaded version is immutable: the worker's INSERT ends here.
    EXECUTE pg_catalog.format('REVOKE INSERT ON %s FROM starpipe_worker', v_load);
    v_part := starpipe._version_name(v_job.table_name, v_job.job_id);
    EXECUTE pg_catalog.format('ALTER TABLE %s RENAME TO %I', v_load, v_part);
    EXECUTE pg_catalog.format('ALTER TABLE %I.%I ATTACH PARTITION %I.%I FOR VALUES IN (%s)',
                              'raw_' || v_job.client, v_job.table_name, 'raw_' || v_job.client, v_part, v_job.job_id);
    v_schema := starpipe._record_schema(v_job);
    UPDATE starpipe.job SET rows_raw = v_count, raw_digest = v_digest, schema_version = (v_schema->>'schema_version')::integer
     WHERE job_id = p_job_id;
    v_job.rows_raw := v_count;
    PERFORM starpipe._transition(v_job, 'PROCESSING', 'raw_loaded', 'raw_loaded',
                                 pg_catalog.jsonb_build_object('rows', v_count, 'raw_version', v_part) || v_schema);
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION starpipe.finish_raw(bigint, bigint, bigint, bigint, text) IS
    'Verifies a load against the manifest (sha256, bytes, rows) and attaches it as the job''s raw version; raises SP003 on any mismatch so the COPY rolls back.';

-- Renews the lease of a job the caller holds; p_progress, when given, is how far the stage has got (a figure that
-- changes as it moves, such as bytes read), and a change of it is recorded as progress.
CREATE FUNCTION starpipe.heartbeat(p_job_id bigint, p_fence bigint, p_lease interval DEFAULT '5 minutes', p_progress bigint DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- Extends the visibility timeout so a long ingestion is not taken over; a moving figure tells metrics() that the
    -- stage is not stuck, since the lease alone is renewed by the worker's own thread whether the stage moves or not.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    UPDATE starpipe.job
       SET lease_until = pg_catalog.now() + p_lease,
           progress = coalesce(p_progress, progress),
           progress_at = CASE WHEN p_progress IS DISTINCT FROM progress AND p_progress IS NOT NULL THEN pg_catalog.now() ELSE progress_at END
     WHERE job_id = p_job_id;
    RETURN pg_catalog.now() + p_lease;
END;
$$;
COMMENT ON FUNCTION starpipe.heartbeat(bigint, bigint, interval, bigint) IS 'Extends the lease of a held job and records its stage''s progress when the figure given changed.';

-- Names the raw version (partition) of a job.
CREATE FUNCTION starpipe.raw_version(p_job_id bigint)
RETURNS regclass
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'raw_' || client, starpipe._version_name(table_name, job_id)))
      FROM starpipe.job WHERE job_id = p_job_id;
$$;
COMMENT ON FUNCTION starpipe.raw_version(bigint) IS 'The raw partition holding a job''s rows, or NULL (not loaded, or dropped by retention).';

-- Retention after a promotion: drops promoted raw versions of the job's table beyond the newest raw_keep_promoted_versions.
CREATE FUNCTION starpipe._drop_old_raw_versions(p_job starpipe.job)
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keep integer := starpipe._setting_value('raw_keep_promoted_versions')::integer;
    v_old record;
    v_dropped bigint[] := '{}';
    v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
BEGIN
    -- Only promoted versions count, newest snapshot first; the version just promoted always stays (even a late,
    -- older one), and versions not promoted (loading, blocked, failed, raw-only) or with unresolved rejects are
    -- never touched.
    -- Bucket files are not the database's to delete.
    -- A replay's raw version (the rejected rows it carries) takes no place in the count: it goes with its original.
    FOR v_old IN
        WITH dropped AS (
            SELECT j.job_id
              FROM starpipe.job j
             WHERE j.client = p_job.client AND j.table_name = p_job.table_name
               AND j.status = 'SUCCESS' AND j.stage = 'promoted'
               -- A version with unresolved rejects keeps the rows a replay needs.
               AND NOT EXISTS (SELECT 1 FROM starpipe.reject x WHERE x.job_id = j.job_id AND x.resolved_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM starpipe.reject_replay r WHERE r.job_id = j.job_id)
             ORDER BY j.snapshot_date DESC, j.job_id DESC
            OFFSET v_keep)
        SELECT v.job_id, pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'raw_' || p_job.client,
                                                starpipe._version_name(p_job.table_name, v.job_id))) AS part
          FROM (SELECT d.job_id FROM dropped d
                UNION ALL
                SELECT r.job_id FROM dropped d JOIN starpipe.reject_replay r ON r.replay_of = d.job_id
                  JOIN starpipe.job j ON j.job_id = r.job_id AND j.status = 'SUCCESS' AND j.stage = 'promoted'
                 WHERE NOT EXISTS (SELECT 1 FROM starpipe.reject x WHERE x.job_id = r.job_id AND x.resolved_at IS NULL)) v
    LOOP
        CONTINUE WHEN v_old.job_id = p_job.job_id OR v_old.part IS NULL;
        -- Dropping a partition needs the parent exclusively; a long reader or a stalled load must not make the
        -- promotion wait (holding its job row): the version is then left for a later promotion to drop.
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', '500ms', true);
            EXECUTE pg_catalog.format('DROP TABLE %s', v_old.part);
            PERFORM pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
            v_dropped := v_dropped || v_old.job_id;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
    RETURN v_dropped;
END;
$$;
