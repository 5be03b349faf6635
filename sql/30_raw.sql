-- starpipe: raw tables, one partition (version) per ingestion.

-- Maps a source type name from a manifest to a Postgres type, defaulting to text.
CREATE FUNCTION starpipe._raw_type(p_source_type text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype;
BEGIN
    -- The name comes from a file, so it is resolved through the catalog, never spliced into DDL.
    BEGIN
        v_type := pg_catalog.to_regtype(p_source_type);
    EXCEPTION WHEN OTHERS THEN
        v_type := NULL;
    END;
    IF v_type IS NULL OR pg_catalog.format_type(v_type, NULL) IN ('unknown', 'anyelement', 'record', 'void') THEN
        RETURN 'text';
    END IF;
    RETURN pg_catalog.format_type(v_type, NULL);
END;
$$;

-- Starts a raw version for a job: creates the parent table if needed and the job's partition.
-- Returns the COPY statement the worker runs in the same transaction.
CREATE FUNCTION starpipe.begin_raw(p_job_id bigint, p_fence bigint)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_schema text;
    v_part text;
    v_col jsonb;
    v_type text;
    v_existing text;
    v_columns text := '';
    v_copy_columns text := '';
BEGIN
    -- Raw tables mirror the client's columns as sent, typed from the manifest, plus metadata.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF v_job.status <> 'PROCESSING' OR v_job.stage <> 'registered' THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; raw data can be loaded only once, at stage registered',
                                                           p_job_id, v_job.status, v_job.stage));
    END IF;
    v_schema := 'raw_' || v_job.client;
    v_part := v_job.table_name || '__' || v_job.job_id;
    IF pg_catalog.to_regnamespace(pg_catalog.quote_ident(v_schema)) IS NULL THEN
        EXECUTE pg_catalog.format('CREATE SCHEMA %I', v_schema);
        EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', v_schema);
    END IF;

    FOR v_col IN SELECT c FROM pg_catalog.jsonb_array_elements(v_job.manifest->'columns') AS c LOOP
        v_type := starpipe._raw_type(v_col->>'type');
        v_columns := v_columns || pg_catalog.format('%I %s, ', v_col->>'name', v_type);
        v_copy_columns := v_copy_columns || pg_catalog.format('%I, ', v_col->>'name');
    END LOOP;

    IF pg_catalog.to_regclass(pg_catalog.format('%I.%I', v_schema, v_job.table_name)) IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.%I (%s_ingestion_id bigint NOT NULL, _client_name text NOT NULL, _source_file text NOT NULL, '
            '_ingested_at timestamptz NOT NULL, _source_row bigint NOT NULL) PARTITION BY LIST (_ingestion_id)',
            v_schema, v_job.table_name, v_columns);
    ELSE
        -- A later snapshot may add or retype columns; the parent gains them, older versions keep NULLs.
        FOR v_col IN SELECT c FROM pg_catalog.jsonb_array_elements(v_job.manifest->'columns') AS c LOOP
            v_type := starpipe._raw_type(v_col->>'type');
            SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO v_existing
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = pg_catalog.format('%I.%I', v_schema, v_job.table_name)::regclass
               AND a.attname = v_col->>'name' AND a.attnum > 0 AND NOT a.attisdropped;
            IF NOT FOUND THEN
                EXECUTE pg_catalog.format('ALTER TABLE %I.%I ADD COLUMN %I %s', v_schema, v_job.table_name, v_col->>'name', v_type);
            ELSIF v_existing <> v_type THEN
                PERFORM starpipe._raise('SP004',
                    pg_catalog.format('source column %I changed type from %s to %s', v_col->>'name', v_existing, v_type),
                    NULL, 'Raw versions of one table share column types; review the drift before loading.');
            END IF;
        END LOOP;
    END IF;

    EXECUTE pg_catalog.format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES IN (%s)',
                              v_schema, v_part, v_schema, v_job.table_name, v_job.job_id);
    -- Metadata comes from defaults on the partition, so COPY carries only the client's columns.
    EXECUTE pg_catalog.format(
        'ALTER TABLE %I.%I ALTER COLUMN _ingestion_id SET DEFAULT %s, ALTER COLUMN _client_name SET DEFAULT %L, '
        'ALTER COLUMN _source_file SET DEFAULT %L, ALTER COLUMN _ingested_at SET DEFAULT pg_catalog.now()',
        v_schema, v_part, v_job.job_id, v_job.client, v_job.data_key);
    RETURN pg_catalog.format('COPY %I.%I (%s_source_row) FROM STDIN', v_schema, v_part, v_copy_columns);
END;
$$;
COMMENT ON FUNCTION starpipe.begin_raw(bigint, bigint) IS
    'Creates the raw version (partition) for a job and returns the COPY statement that fills it; run both in one transaction.';

-- Ends a raw version: verifies checksum, size and row count against the manifest, then records the stage.
CREATE FUNCTION starpipe.finish_raw(p_job_id bigint, p_fence bigint, p_rows bigint, p_bytes bigint, p_sha256 text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_count bigint;
BEGIN
    -- Any mismatch raises SP003, which rolls back the COPY that preceded it in this transaction.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF p_sha256 IS DISTINCT FROM v_job.sha256 THEN
        PERFORM starpipe._raise('SP003', 'sha256 mismatch: the data file does not match its manifest',
            pg_catalog.format('manifest sha256 %s, data file sha256 %s', v_job.sha256, p_sha256));
    END IF;
    IF p_bytes IS DISTINCT FROM v_job.byte_count THEN
        PERFORM starpipe._raise('SP003', 'byte count mismatch: the data file does not match its manifest',
            pg_catalog.format('manifest byte_count %s, data file %s bytes', v_job.byte_count, p_bytes));
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %I.%I', 'raw_' || v_job.client, v_job.table_name || '__' || v_job.job_id)
       INTO v_count;
    IF v_count <> v_job.row_count OR p_rows IS DISTINCT FROM v_job.row_count THEN
        PERFORM starpipe._raise('SP003', 'row count mismatch: the data file does not match its manifest',
            pg_catalog.format('manifest row_count %s, parsed %s rows, raw version holds %s rows', v_job.row_count, p_rows, v_count));
    END IF;
    UPDATE starpipe.job SET rows_raw = v_count WHERE job_id = p_job_id;
    v_job.rows_raw := v_count;
    PERFORM starpipe._transition(v_job, 'PROCESSING', 'raw_loaded', 'raw_loaded',
                                 pg_catalog.jsonb_build_object('rows', v_count, 'raw_version', v_job.table_name || '__' || v_job.job_id));
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION starpipe.finish_raw(bigint, bigint, bigint, bigint, text) IS
    'Verifies a raw version against the manifest (sha256, bytes, rows); raises SP003 on any mismatch so the COPY rolls back.';

-- Renews the lease of a job the caller holds.
CREATE FUNCTION starpipe.heartbeat(p_job_id bigint, p_fence bigint, p_lease interval DEFAULT '5 minutes')
RETURNS timestamptz
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- Extends the visibility timeout so a long ingestion is not taken over.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    UPDATE starpipe.job SET lease_until = pg_catalog.now() + p_lease WHERE job_id = p_job_id;
    RETURN pg_catalog.now() + p_lease;
END;
$$;
COMMENT ON FUNCTION starpipe.heartbeat(bigint, bigint, interval) IS 'Extends the lease of a held job.';

-- Names the raw version (partition) of a job.
CREATE FUNCTION starpipe.raw_version(p_job_id bigint)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'raw_' || client, table_name || '__' || job_id))
      FROM starpipe.job WHERE job_id = p_job_id;
$$;
COMMENT ON FUNCTION starpipe.raw_version(bigint) IS 'The raw partition holding a job''s rows, or NULL.';
