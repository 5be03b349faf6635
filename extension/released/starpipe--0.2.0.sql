-- starpipe: schemas, sequences and shared helpers.
\echo Use "CREATE EXTENSION starpipe" to load this file. \quit

-- Staging copies of production tables, one per job; never readable by PUBLIC.
CREATE SCHEMA starpipe_staging;
REVOKE ALL ON SCHEMA starpipe FROM PUBLIC;
REVOKE ALL ON SCHEMA starpipe_staging FROM PUBLIC;

-- Fencing tokens: every claim takes the next value, so a later holder always has a larger token.
CREATE SEQUENCE starpipe.fence_seq;
-- Dumped with the data, so a restored database keeps issuing larger tokens.
SELECT pg_catalog.pg_extension_config_dump('starpipe.fence_seq', '');

-- Raises with a stable SQLSTATE in starpipe's own class "SP".
--   SP001 illegal state transition     SP002 stale fencing token
--   SP003 integrity mismatch           SP004 schema drift / missing column
--   SP005 invalid manifest             SP006 invalid mapping
CREATE FUNCTION starpipe._raise(p_code text, p_message text, p_detail text DEFAULT NULL, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One place that knows how starpipe errors look.
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message,
        DETAIL = coalesce(p_detail, ''), HINT = coalesce(p_hint, '');
END;
$$;

-- Validates a client or table name used to build schema and table names.
CREATE FUNCTION starpipe._check_name(p_kind text, p_name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Lower-case letters, digits and underscores; 48 bytes leave room for "raw_" and "__<job id>".
    IF p_name IS NULL OR p_name !~ '^[a-z_][a-z0-9_]*$' OR pg_catalog.octet_length(p_name) > 48 THEN
        PERFORM starpipe._raise('42602',
            pg_catalog.format('invalid %s name', p_kind),
            'Names must match ^[a-z_][a-z0-9_]*$ and be at most 48 bytes.');
    END IF;
    -- "<table>__<job id>" names raw versions and staging tables; a name of that shape could collide with one.
    IF p_name ~ '__[0-9]+$' THEN
        PERFORM starpipe._raise('42602',
            pg_catalog.format('invalid %s name', p_kind),
            'Names ending in "__" and digits are reserved for raw versions and staging tables.');
    END IF;
    RETURN p_name;
END;
$$;

-- The name of a job's raw version or staging table: "<base>__<job id>", refused rather than truncated past 63 bytes.
CREATE FUNCTION starpipe._version_name(p_base text, p_job_id bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Postgres would silently truncate a longer identifier, so two jobs could share a name.
    IF pg_catalog.octet_length(p_base || '__' || p_job_id) > 63 THEN
        PERFORM starpipe._raise('42622', pg_catalog.format('name %s__%s is longer than 63 bytes', p_base, p_job_id));
    END IF;
    RETURN p_base || '__' || p_job_id;
END;
$$;

-- Validates a column name from a manifest or a mapping (any characters, but a real identifier).
CREATE FUNCTION starpipe._check_column(p_name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Postgres truncates identifiers at 63 bytes; reject instead of silently colliding.
    IF p_name IS NULL OR p_name = '' OR pg_catalog.octet_length(p_name) > 63 THEN
        PERFORM starpipe._raise('42602', 'invalid column name', 'Column names must be 1 to 63 bytes.');
    END IF;
    -- Compared case-insensitively, like the manifest's duplicate check: a reader folding case must not mix them up.
    IF pg_catalog.lower(p_name) IN ('_ingestion_id', '_client_name', '_source_file', '_ingested_at', '_source_row') THEN
        PERFORM starpipe._raise('42701', pg_catalog.format('column name %I is reserved for starpipe metadata', p_name));
    END IF;
    RETURN p_name;
END;
$$;
-- starpipe: settings with documented defaults; operators override them with starpipe.set_setting.

-- Every setting starpipe reads, with its default and what it means. Owned by the extension (not dumped).
CREATE TABLE starpipe.setting_default (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    type        text NOT NULL CHECK (type IN ('count', 'interval', 'fraction')),
    description text NOT NULL
);
COMMENT ON TABLE starpipe.setting_default IS 'Every starpipe setting with its default value, type and meaning.';
INSERT INTO starpipe.setting_default (key, value, type, description) VALUES
    ('max_attempts', '5', 'count',
     'Claims (deliveries) of a job before it moves to the dead-letter queue (status DEAD); counted by claim, reset by retry and dlq_replay.'),
    ('backoff_base', '10 seconds', 'interval',
     'Redelivery delay after the first nack; each further attempt doubles it (base * 2^(attempts - 1)).'),
    ('backoff_max', '15 minutes', 'interval',
     'Upper bound of the redelivery delay after a nack.'),
    ('backoff_jitter', '0.2', 'fraction',
     'Share of the redelivery delay removed at random (0 = none, 1 = anywhere between 0 and the delay), so retries spread out.'),
    ('raw_keep_promoted_versions', '3', 'count',
     'Promoted raw versions kept per client table; after a promotion, older promoted versions beyond this many are dropped.');

-- Operator overrides of the defaults. Only overrides live here, so pg_dump and restore never collide with the defaults.
CREATE TABLE starpipe.setting (
    key    text PRIMARY KEY REFERENCES starpipe.setting_default (key),
    value  text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by text NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE starpipe.setting IS 'Operator overrides of starpipe settings (see starpipe.settings for the effective values).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.setting', '');

-- What is in force.
CREATE VIEW starpipe.settings AS
SELECT d.key, coalesce(s.value, d.value) AS value, d.value AS default_value, s.key IS NULL AS is_default,
       d.type, d.description
  FROM starpipe.setting_default d
  LEFT JOIN starpipe.setting s ON s.key = d.key;
COMMENT ON VIEW starpipe.settings IS 'Effective starpipe settings: the override when there is one, else the documented default.';

-- The effective value of a setting, as text.
CREATE FUNCTION starpipe._setting_value(p_key text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value text;
BEGIN
    -- An unknown key is a bug in starpipe, never a silent default.
    SELECT coalesce(s.value, d.value) INTO v_value
      FROM starpipe.setting_default d LEFT JOIN starpipe.setting s ON s.key = d.key
     WHERE d.key = p_key;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('unknown setting %L', p_key));
    END IF;
    RETURN v_value;
END;
$$;

-- Overrides a setting (NULL restores the default); returns the value now in force.
CREATE FUNCTION starpipe.set_setting(p_key text, p_value text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text;
    v_ok boolean;
BEGIN
    -- Values are checked against the setting's type before anything reads them.
    SELECT d.type INTO v_type FROM starpipe.setting_default d WHERE d.key = p_key;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('unknown setting %L', p_key), NULL,
            'SELECT key FROM starpipe.settings lists the settings.');
    END IF;
    IF p_value IS NULL THEN
        DELETE FROM starpipe.setting WHERE key = p_key;
        RETURN starpipe._setting_value(p_key);
    END IF;
    BEGIN
        v_ok := CASE v_type
            WHEN 'count' THEN p_value ~ '^[0-9]{1,9}$' AND p_value::integer >= 1
            WHEN 'interval' THEN p_value::interval > interval '0'
            WHEN 'fraction' THEN p_value::numeric BETWEEN 0 AND 1
        END;
    EXCEPTION WHEN data_exception THEN
        v_ok := false;
    END;
    IF NOT v_ok THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('invalid value for setting %s', p_key),
            CASE v_type WHEN 'count' THEN 'A whole number of at least 1.'
                        WHEN 'interval' THEN 'A positive interval, e.g. ''30 seconds''.'
                        ELSE 'A number between 0 and 1.' END);
    END IF;
    INSERT INTO starpipe.setting (key, value) VALUES (p_key, p_value)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, set_at = pg_catalog.now(), set_by = SESSION_USER;
    RETURN p_value;
END;
$$;
COMMENT ON FUNCTION starpipe.set_setting(text, text) IS
    'Overrides a starpipe setting after checking its type; NULL restores the documented default.';
-- starpipe: the job ledger, its events and the state machine.

-- One row per data file the pipeline was told about.
CREATE TABLE starpipe.job (
    job_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client          text NOT NULL,
    table_name      text NOT NULL,
    snapshot_date   date NOT NULL,
    run_id          text NOT NULL,
    manifest_key    text NOT NULL,
    data_key        text NOT NULL,
    manifest        jsonb NOT NULL,
    sha256          text NOT NULL,
    row_count       bigint NOT NULL,
    byte_count      bigint NOT NULL,
    status          text NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED', 'DUPLICATE', 'BLOCKED', 'DEAD')),
    stage           text NOT NULL DEFAULT 'registered'
                    CHECK (stage IN ('registered', 'raw_loaded', 'transformed', 'validated', 'promoted')),
    duplicate_of    bigint REFERENCES starpipe.job (job_id),
    attempts        integer NOT NULL DEFAULT 0,
    fence           bigint,
    lease_until     timestamptz,
    worker          text,
    mapping_version integer,
    rows_raw        bigint,
    rows_staged     bigint,
    rows_inserted   bigint,
    rows_updated    bigint,
    error           text,
    error_detail    jsonb,
    registered_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    visible_at      timestamptz,
    schema_version  integer,
    CONSTRAINT job_key UNIQUE (client, table_name, snapshot_date, run_id)
);
COMMENT ON TABLE starpipe.job IS 'The job ledger: one row per registered data file, with its status and stage.';
COMMENT ON COLUMN starpipe.job.attempts IS 'Claims (deliveries) since registration or the last retry; max_attempts of them send the job to the DLQ.';
COMMENT ON COLUMN starpipe.job.visible_at IS 'A PENDING job is not claimable before this time (backoff after a nack); NULL: now.';
COMMENT ON COLUMN starpipe.job.schema_version IS 'The version of the source table''s schema (starpipe.schema_version) this job''s manifest has.';

-- The database, not the worker, guarantees one PROCESSING job per client.
CREATE UNIQUE INDEX job_one_processing_per_client ON starpipe.job (client) WHERE status = 'PROCESSING';
-- The same content may be live only once per client and table; later copies are DUPLICATE.
CREATE UNIQUE INDEX job_live_content ON starpipe.job (client, table_name, sha256)
    WHERE status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'BLOCKED');
CREATE INDEX job_claimable ON starpipe.job (snapshot_date, job_id) WHERE status IN ('PENDING', 'PROCESSING');
CREATE INDEX job_by_table ON starpipe.job (client, table_name, snapshot_date);

-- Every transition and stage change, so a job is traceable from its file to production.
CREATE TABLE starpipe.job_event (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES starpipe.job (job_id),
    at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    actor       text NOT NULL DEFAULT SESSION_USER,
    fence       bigint,
    from_status text,
    to_status   text NOT NULL,
    stage       text NOT NULL,
    event       text NOT NULL,
    detail      jsonb
);
CREATE INDEX job_event_job ON starpipe.job_event (job_id, event_id);
COMMENT ON TABLE starpipe.job_event IS 'Append-only history of every job transition and stage.';

SELECT pg_catalog.pg_extension_config_dump('starpipe.job', '');
SELECT pg_catalog.pg_extension_config_dump('starpipe.job_event', '');
-- Their identity sequences too: after a restore, new jobs and events must not reuse ids.
SELECT pg_catalog.pg_extension_config_dump('starpipe.job_job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('starpipe.job_event_event_id_seq', '');

-- Raises SP002 unless p_fence is the job's current fencing token and the job is still PROCESSING.
CREATE FUNCTION starpipe._check_fence(p_job starpipe.job, p_fence bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A worker whose lease was taken over holds an older token and must not write.
    IF p_job.fence IS DISTINCT FROM p_fence THEN
        PERFORM starpipe._raise('SP002',
            pg_catalog.format('stale fencing token for job %s', p_job.job_id),
            pg_catalog.format('The job is held with token %s; the caller presented %s.', p_job.fence, p_fence),
            'Another worker took over this job; abandon it.');
    END IF;
    -- A token is only good while its job is PROCESSING: after a nack, fail or block the holder let go of it.
    IF p_job.status <> 'PROCESSING' THEN
        PERFORM starpipe._raise('SP002',
            pg_catalog.format('job %s is no longer held: it is %s', p_job.job_id, p_job.status),
            NULL, 'Its holder released it, or it was dead-lettered; abandon it.');
    END IF;
END;
$$;

-- Locks a job row for update, raising a clear error when it does not exist.
CREATE FUNCTION starpipe._lock_job(p_job_id bigint)
RETURNS starpipe.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- Row lock serializes every state change of one job.
    SELECT * INTO v_job FROM starpipe.job WHERE job_id = p_job_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('job %s does not exist', p_job_id));
    END IF;
    RETURN v_job;
END;
$$;

-- Moves a job to a new status and stage, checking the state machine, and records the event.
CREATE FUNCTION starpipe._transition(
    p_job starpipe.job, p_to text, p_stage text, p_event text,
    p_detail jsonb DEFAULT NULL, p_error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_legal boolean;
BEGIN
    -- The only legal edges of the job state machine.
    v_legal := CASE p_job.status
        WHEN 'PENDING'    THEN p_to IN ('PROCESSING', 'FAILED', 'DEAD')
        WHEN 'PROCESSING' THEN p_to IN ('PROCESSING', 'PENDING', 'SUCCESS', 'FAILED', 'BLOCKED', 'DEAD')
        WHEN 'BLOCKED'    THEN p_to IN ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED')
        WHEN 'FAILED'     THEN p_to IN ('PENDING')
        WHEN 'DEAD'       THEN p_to IN ('PENDING')
        ELSE false
    END;
    IF NOT v_legal THEN
        PERFORM starpipe._raise('SP001',
            pg_catalog.format('illegal transition of job %s from %s to %s', p_job.job_id, p_job.status, p_to));
    END IF;
    -- The error stays on the job until its next claim (a nacked PENDING job shows why it waits).
    UPDATE starpipe.job
       SET status = p_to,
           stage = p_stage,
           error = p_error,
           error_detail = CASE WHEN p_error IS NOT NULL OR p_to IN ('FAILED', 'BLOCKED', 'DEAD') THEN p_detail ELSE NULL END,
           lease_until = CASE WHEN p_to = 'PROCESSING' THEN lease_until ELSE NULL END,
           visible_at = NULL,
           updated_at = pg_catalog.now()
     WHERE job_id = p_job.job_id;
    INSERT INTO starpipe.job_event (job_id, fence, from_status, to_status, stage, event, detail)
    VALUES (p_job.job_id, p_job.fence, p_job.status, p_to, p_stage, p_event,
            CASE WHEN p_error IS NULL THEN p_detail
                 ELSE coalesce(p_detail, '{}'::jsonb) || pg_catalog.jsonb_build_object('error', p_error) END);
    -- Wake idle workers (delivered at commit): a requeued job, or a released client whose next job may now be claimable.
    IF p_to = 'PENDING' OR (p_job.status = 'PROCESSING' AND p_to <> 'PROCESSING') THEN
        PERFORM pg_catalog.pg_notify('starpipe_job', p_job.client);
    END IF;
END;
$$;

-- Fails (or blocks) a job the caller holds, recording the reason.
CREATE FUNCTION starpipe.fail(p_job_id bigint, p_fence bigint, p_error text, p_detail jsonb DEFAULT NULL, p_status text DEFAULT 'FAILED')
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- Only the lease holder may fail a job; the reason never carries row values.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF p_status NOT IN ('FAILED', 'BLOCKED') THEN
        PERFORM starpipe._raise('22023', 'fail() sets FAILED or BLOCKED only');
    END IF;
    PERFORM starpipe._transition(v_job, p_status, v_job.stage, pg_catalog.lower(p_status), p_detail, p_error);
    RETURN p_status;
END;
$$;
COMMENT ON FUNCTION starpipe.fail(bigint, bigint, text, jsonb, text) IS
    'Marks a job the caller holds (matching fencing token) FAILED or BLOCKED with a reason.';

-- Puts a job back in the queue with a fresh series of attempts, keeping its progress (stage).
CREATE FUNCTION starpipe._requeue(p_job starpipe.job, p_event text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_live bigint;
BEGIN
    -- FAILED and DEAD content is not "live", so the same file may have been registered again meanwhile.
    SELECT j.job_id INTO v_live FROM starpipe.job j
     WHERE j.client = p_job.client AND j.table_name = p_job.table_name AND j.sha256 = p_job.sha256
       AND j.job_id <> p_job.job_id AND j.status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'BLOCKED');
    IF FOUND THEN
        PERFORM starpipe._raise('SP001',
            pg_catalog.format('job %s cannot be requeued: the same file is live as job %s', p_job.job_id, v_live));
    END IF;
    UPDATE starpipe.job SET attempts = 0 WHERE job_id = p_job.job_id;
    PERFORM starpipe._transition(p_job, 'PENDING', p_job.stage, p_event,
                                 pg_catalog.jsonb_build_object('previous_attempts', p_job.attempts));
    RETURN 'PENDING';
END;
$$;

-- Puts a FAILED, BLOCKED or DEAD job back in the queue, keeping its progress.
CREATE FUNCTION starpipe.retry(p_job_id bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- A human's decision: the next claim resumes from the recorded stage, with a fresh series of attempts.
    v_job := starpipe._lock_job(p_job_id);
    IF v_job.status NOT IN ('FAILED', 'BLOCKED', 'DEAD') THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s; only FAILED, BLOCKED or DEAD jobs can be retried', p_job_id, v_job.status));
    END IF;
    RETURN starpipe._requeue(v_job, 'retry');
END;
$$;
COMMENT ON FUNCTION starpipe.retry(bigint) IS 'Requeues a FAILED, BLOCKED or DEAD job with its attempts reset; it resumes from its recorded stage.';

-- What operators look at first.
CREATE VIEW starpipe.job_status AS
SELECT job_id, client, table_name, snapshot_date, run_id, status, stage, row_count, rows_raw,
       rows_staged, rows_inserted, rows_updated, attempts, error, duplicate_of, data_key, updated_at,
       visible_at, schema_version
  FROM starpipe.job;
COMMENT ON VIEW starpipe.job_status IS 'One line per job: where it stands and why.';
-- starpipe: registering manifests and claiming jobs.

-- Checks a manifest's shape and returns it; raises SP005 naming the first bad field.
CREATE FUNCTION starpipe._check_manifest(p_manifest jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_field text;
    v_col jsonb;
    v_names text[] := '{}';
BEGIN
    -- Mirrors docs/manifest.schema.json; the database does not trust the worker's parsing.
    IF pg_catalog.jsonb_typeof(p_manifest) IS DISTINCT FROM 'object' THEN
        PERFORM starpipe._raise('SP005', 'manifest is not a JSON object');
    END IF;
    FOREACH v_field IN ARRAY ARRAY['format_version', 'client', 'table', 'snapshot_date', 'run_id', 'data_file',
                                   'format', 'row_count', 'byte_count', 'sha256', 'columns'] LOOP
        IF NOT p_manifest ? v_field THEN
            PERFORM starpipe._raise('SP005', pg_catalog.format('manifest has no "%s"', v_field));
        END IF;
    END LOOP;
    IF p_manifest->>'format_version' <> '1' THEN
        PERFORM starpipe._raise('SP005', 'unsupported manifest format_version', 'This version of starpipe reads format_version 1.');
    END IF;
    PERFORM starpipe._check_name('client', p_manifest->>'client');
    PERFORM starpipe._check_name('table', p_manifest->>'table');
    IF p_manifest->>'snapshot_date' !~ '^\d{4}-\d{2}-\d{2}$' THEN
        PERFORM starpipe._raise('SP005', 'manifest "snapshot_date" is not YYYY-MM-DD');
    END IF;
    IF p_manifest->>'run_id' !~ '^[A-Za-z0-9._-]{1,64}$' THEN
        PERFORM starpipe._raise('SP005', 'manifest "run_id" must match ^[A-Za-z0-9._-]{1,64}$');
    END IF;
    IF p_manifest->>'format' NOT IN ('json_array', 'ndjson') THEN
        PERFORM starpipe._raise('SP005', 'manifest "format" must be json_array or ndjson');
    END IF;
    IF pg_catalog.jsonb_typeof(p_manifest->'row_count') <> 'number' OR (p_manifest->>'row_count')::numeric < 0
       OR pg_catalog.jsonb_typeof(p_manifest->'byte_count') <> 'number' OR (p_manifest->>'byte_count')::numeric < 0 THEN
        PERFORM starpipe._raise('SP005', 'manifest "row_count" and "byte_count" must be non-negative integers');
    END IF;
    IF p_manifest->>'sha256' !~ '^[0-9a-f]{64}$' THEN
        PERFORM starpipe._raise('SP005', 'manifest "sha256" must be 64 lower-case hex digits');
    END IF;
    IF pg_catalog.jsonb_typeof(p_manifest->'columns') <> 'array' OR pg_catalog.jsonb_array_length(p_manifest->'columns') = 0 THEN
        PERFORM starpipe._raise('SP005', 'manifest "columns" must be a non-empty array');
    END IF;
    FOR v_col IN SELECT c FROM pg_catalog.jsonb_array_elements(p_manifest->'columns') AS c LOOP
        PERFORM starpipe._check_column(v_col->>'name');
        IF pg_catalog.lower(v_col->>'name') = ANY (v_names) THEN
            PERFORM starpipe._raise('SP005', pg_catalog.format('manifest column %I appears twice (names are compared case-insensitively)', v_col->>'name'));
        END IF;
        v_names := v_names || pg_catalog.lower(v_col->>'name');
        IF coalesce(v_col->>'type', '') = '' THEN
            PERFORM starpipe._raise('SP005', pg_catalog.format('manifest column %I has no type', v_col->>'name'));
        END IF;
        IF v_col ? 'nullable' AND pg_catalog.jsonb_typeof(v_col->'nullable') <> 'boolean' THEN
            PERFORM starpipe._raise('SP005', pg_catalog.format('manifest column %I: "nullable" must be true or false', v_col->>'name'));
        END IF;
    END LOOP;
    -- The primary key feeds the schema registry; it must name manifest columns.
    IF p_manifest ? 'primary_key' AND (pg_catalog.jsonb_typeof(p_manifest->'primary_key') <> 'array' OR EXISTS (
           SELECT 1 FROM pg_catalog.jsonb_array_elements(p_manifest->'primary_key') k
            WHERE pg_catalog.jsonb_typeof(k) <> 'string' OR NOT EXISTS (
                  SELECT 1 FROM pg_catalog.jsonb_array_elements(p_manifest->'columns') c WHERE c->'name' = k))) THEN
        PERFORM starpipe._raise('SP005', 'manifest "primary_key" must be an array of the manifest''s column names');
    END IF;
    RETURN p_manifest;
END;
$$;

-- Registers a manifest as a job, idempotently, and enqueues it in the same transaction.
CREATE FUNCTION starpipe.register(p_manifest jsonb, p_manifest_key text, p_data_key text)
RETURNS TABLE (job_id bigint, status text, created boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_dup bigint;
    v_status text := 'PENDING';
BEGIN
    -- Same key again: a no-op that returns the existing job.
    PERFORM starpipe._check_manifest(p_manifest);
    -- Registrations of one client table take turns, so two workers finding the same manifest (or the same
    -- content under two keys) at once see each other's row instead of colliding on a unique index.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.register:' || (p_manifest->>'client') || '.' || (p_manifest->>'table')));
    SELECT * INTO v_job FROM starpipe.job j
     WHERE j.client = p_manifest->>'client' AND j.table_name = p_manifest->>'table'
       AND j.snapshot_date = (p_manifest->>'snapshot_date')::date AND j.run_id = p_manifest->>'run_id';
    IF FOUND THEN
        RETURN QUERY SELECT v_job.job_id, v_job.status, false;
        RETURN;
    END IF;
    -- Content already live for this client and table: record a DUPLICATE, apply nothing.
    SELECT j.job_id INTO v_dup FROM starpipe.job j
     WHERE j.client = p_manifest->>'client' AND j.table_name = p_manifest->>'table'
       AND j.sha256 = p_manifest->>'sha256' AND j.status IN ('PENDING', 'PROCESSING', 'SUCCESS', 'BLOCKED');
    IF FOUND THEN
        v_status := 'DUPLICATE';
    END IF;
    INSERT INTO starpipe.job (client, table_name, snapshot_date, run_id, manifest_key, data_key, manifest,
                              sha256, row_count, byte_count, status, duplicate_of)
    VALUES (p_manifest->>'client', p_manifest->>'table', (p_manifest->>'snapshot_date')::date, p_manifest->>'run_id',
            p_manifest_key, p_data_key, p_manifest, p_manifest->>'sha256', (p_manifest->>'row_count')::bigint,
            (p_manifest->>'byte_count')::bigint, v_status, v_dup)
    ON CONFLICT ON CONSTRAINT job_key DO NOTHING
    RETURNING * INTO v_job;
    IF NOT FOUND THEN
        -- A concurrent register of the same key won the race.
        RETURN QUERY SELECT j.job_id, j.status, false FROM starpipe.job j
          WHERE j.client = p_manifest->>'client' AND j.table_name = p_manifest->>'table'
            AND j.snapshot_date = (p_manifest->>'snapshot_date')::date AND j.run_id = p_manifest->>'run_id';
        RETURN;
    END IF;
    INSERT INTO starpipe.job_event (job_id, from_status, to_status, stage, event, detail)
    VALUES (v_job.job_id, NULL, v_status, 'registered', CASE v_status WHEN 'DUPLICATE' THEN 'duplicate' ELSE 'registered' END,
            pg_catalog.jsonb_build_object('manifest_key', p_manifest_key, 'duplicate_of', v_dup));
    IF v_status = 'PENDING' THEN
        PERFORM pg_catalog.pg_notify('starpipe_job', v_job.client);
    END IF;
    RETURN QUERY SELECT v_job.job_id, v_job.status, true;
END;
$$;
COMMENT ON FUNCTION starpipe.register(jsonb, text, text) IS
    'Registers a manifest as a job (idempotent on client/table/snapshot date/run id); content already live is recorded as DUPLICATE.';

-- Claims the next job: oldest snapshot first, one client at a time, skipping rows and clients others hold.
CREATE FUNCTION starpipe.claim(p_worker text, p_lease interval DEFAULT '5 minutes')
RETURNS SETOF starpipe.job
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_candidate record;
    v_job starpipe.job;
    v_from text;
    v_max integer := starpipe._setting_value('max_attempts')::integer;
BEGIN
    -- Claimable: PENDING and visible, or PROCESSING with an expired lease (its holder died or hung);
    -- its client holds no live lease; no older snapshot of its table is unfinished.
    FOR v_candidate IN
        SELECT j.job_id, j.client FROM starpipe.job j
         WHERE (j.status = 'PENDING' AND (j.visible_at IS NULL OR j.visible_at <= pg_catalog.now())
                OR j.status = 'PROCESSING' AND j.lease_until < pg_catalog.now())
           AND NOT EXISTS (SELECT 1 FROM starpipe.job p
                            WHERE p.client = j.client AND p.status = 'PROCESSING'
                              AND p.lease_until >= pg_catalog.now() AND p.job_id <> j.job_id)
           AND NOT EXISTS (SELECT 1 FROM starpipe.job e
                            WHERE e.client = j.client AND e.table_name = j.table_name
                              AND e.status IN ('PENDING', 'PROCESSING', 'BLOCKED')
                              AND (e.snapshot_date, e.job_id) < (j.snapshot_date, j.job_id))
         ORDER BY j.snapshot_date, j.job_id
    LOOP
        -- A client another session is claiming right now is skipped, never waited for (held to commit).
        CONTINUE WHEN NOT pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('starpipe.claim'),
                                                               pg_catalog.hashtext(v_candidate.client));
        -- Re-checked under the row lock: the candidate list may be stale by now.
        SELECT j.* INTO v_job FROM starpipe.job j
         WHERE j.job_id = v_candidate.job_id
           AND (j.status = 'PENDING' AND (j.visible_at IS NULL OR j.visible_at <= pg_catalog.now())
                OR j.status = 'PROCESSING' AND j.lease_until < pg_catalog.now())
           AND NOT EXISTS (SELECT 1 FROM starpipe.job p
                            WHERE p.client = j.client AND p.status = 'PROCESSING'
                              AND p.lease_until >= pg_catalog.now() AND p.job_id <> j.job_id)
           FOR UPDATE SKIP LOCKED;
        CONTINUE WHEN NOT FOUND;
        IF v_job.status = 'PROCESSING' AND v_job.attempts >= v_max THEN
            -- Its last allowed delivery expired too: a job that keeps killing workers goes to the DLQ.
            PERFORM starpipe._transition(v_job, 'DEAD', v_job.stage, 'dead',
                pg_catalog.jsonb_build_object('attempts', v_job.attempts, 'max_attempts', v_max, 'worker', v_job.worker),
                pg_catalog.format('lease expired on attempt %s of %s', v_job.attempts, v_max));
            CONTINUE;
        END IF;
        v_from := v_job.status;
        BEGIN
            UPDATE starpipe.job
               SET status = 'PROCESSING', attempts = attempts + 1, fence = pg_catalog.nextval('starpipe.fence_seq'),
                   lease_until = pg_catalog.now() + p_lease, worker = p_worker, error = NULL, error_detail = NULL,
                   visible_at = NULL, updated_at = pg_catalog.now()
             WHERE job_id = v_job.job_id
            RETURNING * INTO v_job;
        EXCEPTION WHEN unique_violation THEN
            -- Last line of defence: another transaction committed a claim for this client in between.
            CONTINUE;
        END;
        INSERT INTO starpipe.job_event (job_id, fence, from_status, to_status, stage, event, detail)
        VALUES (v_job.job_id, v_job.fence, v_from, 'PROCESSING', v_job.stage, 'claim',
                pg_catalog.jsonb_build_object('worker', p_worker, 'attempt', v_job.attempts));
        RETURN NEXT v_job;
        RETURN;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION starpipe.claim(text, interval) IS
    'Claims the next claimable job (oldest snapshot first, one per client, FOR UPDATE SKIP LOCKED) with a fresh fencing token and a lease.';

-- Gives a held job back after a transient failure: redelivered after a backoff, or dead-lettered after max_attempts.
CREATE FUNCTION starpipe.nack(p_job_id bigint, p_fence bigint, p_error text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_max integer := starpipe._setting_value('max_attempts')::integer;
    v_delay interval;
BEGIN
    -- Exponential backoff: base * 2^(attempts - 1), capped, minus a random share (jitter).
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF v_job.attempts >= v_max THEN
        PERFORM starpipe._transition(v_job, 'DEAD', v_job.stage, 'dead',
            pg_catalog.jsonb_build_object('attempts', v_job.attempts, 'max_attempts', v_max),
            coalesce(p_error, 'nack without a reason'));
        RETURN 'DEAD';
    END IF;
    v_delay := LEAST(starpipe._setting_value('backoff_base')::interval * pg_catalog.power(2, LEAST(GREATEST(v_job.attempts, 1) - 1, 30)),
                     starpipe._setting_value('backoff_max')::interval);
    v_delay := v_delay * (1 - starpipe._setting_value('backoff_jitter')::numeric * pg_catalog.random()::numeric);
    v_delay := pg_catalog.date_trunc('millisecond', v_delay);
    PERFORM starpipe._transition(v_job, 'PENDING', v_job.stage, 'nack',
        pg_catalog.jsonb_build_object('attempts', v_job.attempts, 'max_attempts', v_max,
                                      'delay_seconds', pg_catalog.round(pg_catalog.date_part('epoch', v_delay)::numeric, 3)),
        coalesce(p_error, 'nack without a reason'));
    UPDATE starpipe.job SET visible_at = pg_catalog.now() + v_delay WHERE job_id = p_job_id;
    RETURN 'PENDING';
END;
$$;
COMMENT ON FUNCTION starpipe.nack(bigint, bigint, text) IS
    'Releases a held job after a transient failure: PENDING again after an exponential backoff, or DEAD (the DLQ) after max_attempts claims.';

-- Gives a held job back untried (shutdown, another worker holds the client's lock): PENDING and claimable now.
CREATE FUNCTION starpipe.release(p_job_id bigint, p_fence bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- Not a failure, so the claim is not counted: bouncing off a busy lock must never dead-letter a job.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    UPDATE starpipe.job SET attempts = GREATEST(attempts - 1, 0) WHERE job_id = p_job_id;
    PERFORM starpipe._transition(v_job, 'PENDING', v_job.stage, 'release', pg_catalog.jsonb_build_object('worker', v_job.worker));
    RETURN 'PENDING';
END;
$$;
COMMENT ON FUNCTION starpipe.release(bigint, bigint) IS
    'Gives a held job back without trying it (shutdown, lock contention): PENDING and claimable at once, the claim not counted as an attempt.';

-- When a claim may next succeed: the earliest backoff or lease expiry, now if something waits already, NULL if the queue is empty.
CREATE FUNCTION starpipe.next_claimable_at()
RETURNS timestamptz
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.min(CASE WHEN j.status = 'PENDING' THEN GREATEST(coalesce(j.visible_at, pg_catalog.now()), pg_catalog.now())
                               ELSE j.lease_until END)
      FROM starpipe.job j
     WHERE j.status IN ('PENDING', 'PROCESSING');
$$;
COMMENT ON FUNCTION starpipe.next_claimable_at() IS
    'The earliest time a claim may succeed (a backoff or a lease running out), for a worker to sleep until; NULL when no job is pending or processing.';
-- starpipe: the dead-letter queue, i.e. jobs in status DEAD (see nack and claim for how they get there).

-- Lists dead-lettered jobs, oldest death first.
CREATE FUNCTION starpipe.dlq_list()
RETURNS TABLE (job_id bigint, client text, table_name text, snapshot_date date, stage text, attempts integer,
               last_error text, died_at timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.job_id, j.client, j.table_name, j.snapshot_date, j.stage, j.attempts, j.error, d.at
      FROM starpipe.job j
      LEFT JOIN LATERAL (SELECT pg_catalog.max(e.at) AS at FROM starpipe.job_event e
                          WHERE e.job_id = j.job_id AND e.to_status = 'DEAD') d ON true
     WHERE j.status = 'DEAD'
     ORDER BY d.at, j.job_id;
$$;
COMMENT ON FUNCTION starpipe.dlq_list() IS
    'Dead-lettered jobs (status DEAD): client, table, attempts, the last error and when the job died.';

-- A job's full history (any job; usually a dead one), oldest event first.
CREATE FUNCTION starpipe.dlq_inspect(p_job_id bigint)
RETURNS SETOF starpipe.job_event
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Every claim, nack and error of the job, with fences and workers, explains why it died.
    IF NOT EXISTS (SELECT 1 FROM starpipe.job j WHERE j.job_id = p_job_id) THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('job %s does not exist', p_job_id));
    END IF;
    RETURN QUERY SELECT e.* FROM starpipe.job_event e WHERE e.job_id = p_job_id ORDER BY e.event_id;
END;
$$;
COMMENT ON FUNCTION starpipe.dlq_inspect(bigint) IS 'The events of a job (usually a dead one), oldest first: every claim, nack and error.';

-- Sends a dead job back to the queue with its attempts reset; it resumes from its recorded stage.
CREATE FUNCTION starpipe.dlq_replay(p_job_id bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- Only DEAD jobs: FAILED and BLOCKED ones go through retry, after a human fixed the cause.
    v_job := starpipe._lock_job(p_job_id);
    IF v_job.status <> 'DEAD' THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s; only DEAD jobs are in the dead-letter queue', p_job_id, v_job.status));
    END IF;
    RETURN starpipe._requeue(v_job, 'replay');
END;
$$;
COMMENT ON FUNCTION starpipe.dlq_replay(bigint) IS 'Requeues a DEAD job (PENDING, attempts reset); it resumes from its recorded stage.';
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
    -- Privileges are (re)asserted on every load, so a schema or table made earlier (or by hand) is locked down too.
    PERFORM starpipe._lock_down('SCHEMA', pg_catalog.format('%I', v_schema), 'USAGE', '{starpipe_admin,starpipe_worker}');
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

-- Starts a loading attempt: a table shaped like the raw parent, named by job and fencing token.
-- Returns the COPY statement the worker runs in the same transaction; finish_raw makes it the job's raw version.
CREATE FUNCTION starpipe.begin_raw(p_job_id bigint, p_fence bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_schema text;
    v_load text;
    v_col jsonb;
    v_copy_columns text := '';
BEGIN
    -- Takes no lock on the job row and none on the parent beyond reading its shape.
    v_job := starpipe._held_job(p_job_id, p_fence);
    v_schema := 'raw_' || v_job.client;
    -- Without a prior prepare_raw (e.g. from SQL alone) the parent is made here, inside the load. After
    -- prepare_raw nothing shared is touched: no catalog row of the schema or parent stays locked by a long load.
    IF NOT starpipe._raw_parent_ready(v_job) THEN
        PERFORM starpipe._prepare_raw_parent(v_job);
    END IF;
    FOR v_col IN SELECT c FROM pg_catalog.jsonb_array_elements(v_job.manifest->'columns') AS c LOOP
        v_copy_columns := v_copy_columns || pg_catalog.format('%I, ', v_col->>'name');
    END LOOP;
    v_load := starpipe._load_table(v_job, p_fence);
    EXECUTE pg_catalog.format('CREATE TABLE %s (LIKE %I.%I INCLUDING DEFAULTS)', v_load, v_schema, v_job.table_name);
    -- Metadata comes from defaults, so COPY carries only the client's columns; the CHECK lets ATTACH skip its scan.
    EXECUTE pg_catalog.format(
        'ALTER TABLE %s ALTER COLUMN _ingestion_id SET DEFAULT %s, ALTER COLUMN _client_name SET DEFAULT %L, '
        'ALTER COLUMN _source_file SET DEFAULT %L, ALTER COLUMN _ingested_at SET DEFAULT pg_catalog.now(), '
        'ADD CONSTRAINT %I CHECK (_ingestion_id = %s)',
        v_load, v_job.job_id, v_job.client, v_job.data_key, 'version_' || v_job.job_id, v_job.job_id);
    -- The worker runs the COPY itself, so it may insert into this attempt until finish_raw.
    PERFORM starpipe._lock_down('TABLE', v_load, 'SELECT', '{starpipe_admin}');
    EXECUTE pg_catalog.format('GRANT INSERT ON %s TO starpipe_worker', v_load);
    RETURN pg_catalog.format('COPY %s (%s_source_row) FROM STDIN', v_load, v_copy_columns);
END;
$$;
COMMENT ON FUNCTION starpipe.begin_raw(bigint, bigint) IS
    'Creates the loading table of a job attempt and returns the COPY statement that fills it; run both, and finish_raw, in one transaction.';

-- Ends a loading attempt: verifies checksum, size and row count against the manifest under the job's row
-- lock, then attaches the attempt as the job's raw version and records the stage.
CREATE FUNCTION starpipe.finish_raw(p_job_id bigint, p_fence bigint, p_rows bigint, p_bytes bigint, p_sha256 text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_load regclass;
    v_part text;
    v_count bigint;
    v_schema jsonb;
BEGIN
    -- Any mismatch raises SP003 (a lost lease SP002), which rolls back the COPY of this transaction.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
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
    -- When the load table was made in this transaction (the worker's way), what this transaction inserted
    -- is all it holds, and the statistics counter says so without scanning the rows again. Otherwise count.
    IF pg_catalog.pg_stat_get_xact_tuples_deleted(v_load) = 0
       AND (SELECT c.xmin::text FROM pg_catalog.pg_class c WHERE c.oid = v_load)
           = (pg_catalog.txid_current() % 4294967296)::text THEN
        v_count := pg_catalog.pg_stat_get_xact_tuples_inserted(v_load);
    ELSE
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', v_load) INTO v_count;
    END IF;
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
    UPDATE starpipe.job SET rows_raw = v_count, schema_version = (v_schema->>'schema_version')::integer WHERE job_id = p_job_id;
    v_job.rows_raw := v_count;
    PERFORM starpipe._transition(v_job, 'PROCESSING', 'raw_loaded', 'raw_loaded',
                                 pg_catalog.jsonb_build_object('rows', v_count, 'raw_version', v_part) || v_schema);
    RETURN v_count;
END;
$$;
COMMENT ON FUNCTION starpipe.finish_raw(bigint, bigint, bigint, bigint, text) IS
    'Verifies a load against the manifest (sha256, bytes, rows) and attaches it as the job''s raw version; raises SP003 on any mismatch so the COPY rolls back.';

-- Renews the lease of a job the caller holds.
CREATE FUNCTION starpipe.heartbeat(p_job_id bigint, p_fence bigint, p_lease interval DEFAULT '5 minutes')
RETURNS timestamptz
LANGUAGE plpgsql
SECURITY DEFINER
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
    -- older one), and versions not promoted (loading, blocked, failed, raw-only) are never touched.
    -- Bucket files are not the database's to delete.
    FOR v_old IN
        SELECT j.job_id, pg_catalog.to_regclass(pg_catalog.format('%I.%I', 'raw_' || j.client,
                                                starpipe._version_name(j.table_name, j.job_id))) AS part
          FROM starpipe.job j
         WHERE j.client = p_job.client AND j.table_name = p_job.table_name
           AND j.status = 'SUCCESS' AND j.stage = 'promoted'
         ORDER BY j.snapshot_date DESC, j.job_id DESC
        OFFSET v_keep
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
-- starpipe: the schema registry: every distinct source schema of a client table, and how it changed.

-- One row per distinct schema (fingerprint) a client table was sent with.
CREATE TABLE starpipe.schema_version (
    client          text NOT NULL,
    table_name      text NOT NULL,
    version         integer NOT NULL,
    columns         jsonb NOT NULL,
    primary_key     jsonb NOT NULL,
    fingerprint     text NOT NULL,
    first_job       bigint NOT NULL REFERENCES starpipe.job (job_id),
    diff            jsonb,
    mapping_version integer,
    recorded_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    accepted_at     timestamptz,
    accepted_by     text,
    PRIMARY KEY (client, table_name, version),
    UNIQUE (client, table_name, fingerprint)
);
COMMENT ON TABLE starpipe.schema_version IS 'Schema registry: each distinct source schema of a client table, with its diff against the version before it.';
COMMENT ON COLUMN starpipe.schema_version.columns IS 'Source columns in order: [{name, type, nullable, position}] as the manifest gave them.';
COMMENT ON COLUMN starpipe.schema_version.fingerprint IS 'sha256 of the columns (order, names, types, nullability) and primary key.';
COMMENT ON COLUMN starpipe.schema_version.diff IS 'Against the previous version: added, removed, retyped, nullability, rename_candidates, primary_key; NULL for version 1.';
COMMENT ON COLUMN starpipe.schema_version.mapping_version IS 'The client''s mapping version when this schema was first seen; a newer mapping covers its drift.';
COMMENT ON COLUMN starpipe.schema_version.accepted_at IS 'Set by starpipe.accept_schema: drift of mapped columns in this version no longer blocks jobs.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.schema_version', '');

-- The type category (pg_type.typcategory) of a manifest type, for rename candidates.
CREATE FUNCTION starpipe._type_category(p_source_type text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.typcategory::text FROM pg_catalog.pg_type t WHERE t.oid = starpipe._raw_type(p_source_type)::regtype;
$$;

-- What changed between two schemas (columns as in schema_version.columns, primary keys as JSON arrays).
CREATE FUNCTION starpipe._schema_diff(p_old_columns jsonb, p_old_key jsonb, p_new_columns jsonb, p_new_key jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_added jsonb;
    v_removed jsonb;
    v_gone jsonb;
    v_match jsonb;
    v_renames jsonb := '[]';
    v_taken text[] := '{}';
BEGIN
    -- Columns are matched by exact name; a rename shows as removed + added, and is then offered as a candidate.
    SELECT coalesce(pg_catalog.jsonb_agg(n ORDER BY (n->>'position')::int), '[]') INTO v_added
      FROM pg_catalog.jsonb_array_elements(p_new_columns) n
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_old_columns) o WHERE o->>'name' = n->>'name');
    SELECT coalesce(pg_catalog.jsonb_agg(o ORDER BY (o->>'position')::int), '[]') INTO v_removed
      FROM pg_catalog.jsonb_array_elements(p_old_columns) o
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_new_columns) n WHERE n->>'name' = o->>'name');
    -- Rename candidate: a removed and an added column of the same type category, at most two positions apart.
    FOR v_gone IN SELECT r FROM pg_catalog.jsonb_array_elements(v_removed) r ORDER BY (r->>'position')::int LOOP
        SELECT a INTO v_match FROM pg_catalog.jsonb_array_elements(v_added) a
         WHERE NOT (a->>'name' = ANY (v_taken))
           AND starpipe._type_category(a->>'type') = starpipe._type_category(v_gone->>'type')
           AND pg_catalog.abs((a->>'position')::int - (v_gone->>'position')::int) <= 2
         ORDER BY pg_catalog.abs((a->>'position')::int - (v_gone->>'position')::int), (a->>'position')::int
         LIMIT 1;
        IF FOUND THEN
            v_taken := v_taken || (v_match->>'name');
            v_renames := v_renames || pg_catalog.jsonb_build_object('from', v_gone->>'name', 'to', v_match->>'name');
        END IF;
    END LOOP;
    RETURN pg_catalog.jsonb_build_object(
        'added', (SELECT coalesce(pg_catalog.jsonb_agg(a->>'name' ORDER BY (a->>'position')::int), '[]')
                    FROM pg_catalog.jsonb_array_elements(v_added) a),
        'removed', (SELECT coalesce(pg_catalog.jsonb_agg(r->>'name' ORDER BY (r->>'position')::int), '[]')
                      FROM pg_catalog.jsonb_array_elements(v_removed) r),
        'retyped', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', n->>'name', 'from', o->>'type', 'to', n->>'type')
                                                          ORDER BY (n->>'position')::int), '[]')
                      FROM pg_catalog.jsonb_array_elements(p_new_columns) n
                      JOIN pg_catalog.jsonb_array_elements(p_old_columns) o ON o->>'name' = n->>'name'
                     WHERE o->>'type' IS DISTINCT FROM n->>'type'),
        'nullability', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', n->>'name', 'from', o->'nullable', 'to', n->'nullable')
                                                              ORDER BY (n->>'position')::int), '[]')
                          FROM pg_catalog.jsonb_array_elements(p_new_columns) n
                          JOIN pg_catalog.jsonb_array_elements(p_old_columns) o ON o->>'name' = n->>'name'
                         WHERE o->'nullable' IS DISTINCT FROM n->'nullable'),
        'rename_candidates', v_renames,
        'primary_key', CASE WHEN p_old_key IS DISTINCT FROM p_new_key
                            THEN pg_catalog.jsonb_build_object('from', p_old_key, 'to', p_new_key) END);
END;
$$;

-- Records the schema of a job's manifest in the registry; returns {schema_version, schema_new[, schema_diff]}.
CREATE FUNCTION starpipe._record_schema(p_job starpipe.job)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns jsonb;
    v_key jsonb := coalesce(p_job.manifest->'primary_key', '[]');
    v_fingerprint text;
    v_known starpipe.schema_version;
    v_prev starpipe.schema_version;
    v_diff jsonb;
    v_version integer;
BEGIN
    -- A schema seen before (same fingerprint) keeps its version; a new one is diffed against the latest version.
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', c->>'name', 'type', c->>'type',
                                                               'nullable', c->'nullable', 'position', n) ORDER BY n)
      INTO v_columns
      FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') WITH ORDINALITY AS x(c, n);
    v_fingerprint := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.jsonb_build_object('columns', v_columns, 'primary_key', v_key)::text, 'UTF8')), 'hex');
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.schema'),
                                             pg_catalog.hashtext(p_job.client || '.' || p_job.table_name));
    SELECT * INTO v_known FROM starpipe.schema_version s
     WHERE s.client = p_job.client AND s.table_name = p_job.table_name AND s.fingerprint = v_fingerprint;
    IF FOUND THEN
        RETURN pg_catalog.jsonb_build_object('schema_version', v_known.version, 'schema_new', false);
    END IF;
    SELECT * INTO v_prev FROM starpipe.schema_version s
     WHERE s.client = p_job.client AND s.table_name = p_job.table_name
     ORDER BY s.version DESC LIMIT 1;
    IF FOUND THEN
        v_diff := pg_catalog.jsonb_build_object('from_version', v_prev.version, 'to_version', v_prev.version + 1)
                  || starpipe._schema_diff(v_prev.columns, v_prev.primary_key, v_columns, v_key);
    END IF;
    v_version := coalesce(v_prev.version, 0) + 1;
    INSERT INTO starpipe.schema_version (client, table_name, version, columns, primary_key, fingerprint, first_job, diff, mapping_version)
    VALUES (p_job.client, p_job.table_name, v_version, v_columns, v_key, v_fingerprint, p_job.job_id, v_diff,
            (SELECT pg_catalog.max(m.version) FROM starpipe.mapping m WHERE m.client = p_job.client));
    RETURN pg_catalog.jsonb_build_object('schema_version', v_version, 'schema_new', true)
           || CASE WHEN v_diff IS NULL THEN '{}'::jsonb ELSE pg_catalog.jsonb_build_object('schema_diff', v_diff) END;
END;
$$;

-- Accepts a schema version: drift of mapped columns in it (e.g. a retyped column) no longer blocks its jobs.
CREATE FUNCTION starpipe.accept_schema(p_client text, p_table text, p_version integer)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A human's decision, recorded with who and when; blocked jobs then need starpipe.retry.
    UPDATE starpipe.schema_version s
       SET accepted_at = pg_catalog.now(), accepted_by = SESSION_USER
     WHERE s.client = p_client AND s.table_name = p_table AND s.version = p_version;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('no schema version %s of %s.%s', p_version, p_client, p_table));
    END IF;
END;
$$;
COMMENT ON FUNCTION starpipe.accept_schema(text, text, integer) IS
    'Accepts a schema version of a client table so drift of mapped columns in it no longer blocks transform; retry the blocked jobs afterwards.';
-- starpipe: mapping configs, versioned per client.

-- Every applied mapping config; the newest version of a client is the one in force.
CREATE TABLE starpipe.mapping (
    client     text NOT NULL,
    version    integer NOT NULL,
    config     jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    applied_by text NOT NULL DEFAULT SESSION_USER,
    PRIMARY KEY (client, version)
);
COMMENT ON TABLE starpipe.mapping IS 'Versioned mapping configs (YAML turned JSON), one series per client.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.mapping', '');

-- Resolves a type name from a mapping through the catalog; raises SP006 when unknown.
CREATE FUNCTION starpipe._mapping_type(p_where text, p_type text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype;
BEGIN
    -- Only catalog names reach generated SQL.
    BEGIN
        v_type := pg_catalog.to_regtype(p_type);
    EXCEPTION WHEN OTHERS THEN
        v_type := NULL;
    END;
    IF v_type IS NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: unknown type %L', p_where, p_type));
    END IF;
    RETURN pg_catalog.format_type(v_type, NULL);
END;
$$;

-- The SQL type of a production column, or NULL when the column does not exist.
CREATE FUNCTION starpipe._column_type(p_table regclass, p_column text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
$$;

-- Checks one table entry of a mapping config against the production catalog.
CREATE FUNCTION starpipe._check_table_mapping(p_schema text, p_source text, p_map jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_target regclass;
    v_where text := pg_catalog.format('tables.%s', p_source);
    v_col text;
    v_spec jsonb;
    v_rule text;
    v_check jsonb;
    v_key text[];
BEGIN
    -- Everything the transform and promotion will rely on is proven here, before any job uses it.
    PERFORM starpipe._check_name('table', p_source);
    IF pg_catalog.jsonb_typeof(p_map) <> 'object' OR NOT p_map ? 'target' OR NOT p_map ? 'columns' OR NOT p_map ? 'conflict_key' THEN
        PERFORM starpipe._raise('SP006', v_where || ': needs "target", "conflict_key" and "columns"');
    END IF;
    PERFORM starpipe._check_name('target table', p_map->>'target');
    v_target := pg_catalog.to_regclass(pg_catalog.format('%I.%I', p_schema, p_map->>'target'));
    IF v_target IS NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: target table %I.%I does not exist', v_where, p_schema, p_map->>'target'));
    END IF;
    IF pg_catalog.jsonb_typeof(p_map->'columns') <> 'object' OR p_map->'columns' = '{}'::jsonb THEN
        PERFORM starpipe._raise('SP006', v_where || '.columns: must map at least one column');
    END IF;
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(p_map->'columns') LOOP
        IF starpipe._column_type(v_target, v_col) IS NULL THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.columns.%s: %s has no column %I', v_where, v_col, v_target, v_col));
        END IF;
        IF (v_spec ? 'from') = (v_spec ? 'const') THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.columns.%s: give exactly one of "from" or "const"', v_where, v_col));
        END IF;
        IF v_spec ? 'from' THEN
            PERFORM starpipe._check_column(v_spec->>'from');
        END IF;
        IF v_spec ? 'type' THEN
            PERFORM starpipe._mapping_type(pg_catalog.format('%s.columns.%s', v_where, v_col), v_spec->>'type');
        END IF;
        FOR v_rule IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(v_spec->'clean', '[]')) LOOP
            IF v_rule NOT IN ('trim', 'upper', 'lower', 'nullif_empty', 'strip_digits', 'collapse_spaces', 'digits_only') THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.columns.%s: unknown cleaning rule %L', v_where, v_col, v_rule),
                    'Known rules: trim, upper, lower, nullif_empty, strip_digits, collapse_spaces, digits_only.');
            END IF;
        END LOOP;
    END LOOP;
    -- Production columns that are required but neither mapped nor defaulted would fail every promotion.
    SELECT a.attname INTO v_col FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = v_target AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef
       AND a.attidentity = '' AND a.attgenerated = '' AND NOT (p_map->'columns' ? a.attname)
     LIMIT 1;
    IF FOUND THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: %s.%I is NOT NULL without a default but is not mapped', v_where, v_target, v_col));
    END IF;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key FROM pg_catalog.jsonb_array_elements_text(p_map->'conflict_key') AS k;
    IF v_key IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.unnest(v_key) k WHERE NOT (p_map->'columns' ? k)) THEN
        PERFORM starpipe._raise('SP006', v_where || '.conflict_key: must list mapped columns');
    END IF;
    -- ON CONFLICT needs a unique index on exactly the conflict key.
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_index i
         WHERE i.indrelid = v_target AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
           AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname)
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = v_target AND a.attnum = ANY (i.indkey)) = v_key) THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s.conflict_key: %s has no unique index on (%s)', v_where, v_target, pg_catalog.array_to_string(v_key, ', ')));
    END IF;
    IF coalesce(p_map->>'conflict_policy', 'source_wins') NOT IN ('source_wins', 'target_wins', 'merge_non_null', 'newer_wins') THEN
        PERFORM starpipe._raise('SP006', v_where || '.conflict_policy: one of source_wins, target_wins, merge_non_null, newer_wins');
    END IF;
    IF p_map->>'conflict_policy' = 'newer_wins' AND NOT (p_map->'columns' ? coalesce(p_map->>'version_column', '')) THEN
        PERFORM starpipe._raise('SP006', v_where || '.version_column: newer_wins needs a mapped version_column');
    END IF;
    IF coalesce(p_map->>'promotion', 'auto') NOT IN ('auto', 'manual') THEN
        PERFORM starpipe._raise('SP006', v_where || '.promotion: auto or manual');
    END IF;
    FOR v_spec IN SELECT pg_catalog.jsonb_array_elements(coalesce(p_map->'dedup'->'order_by', '[]')) LOOP
        IF NOT (p_map->'columns' ? (v_spec->>'column')) THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.dedup.order_by: %L is not a mapped column', v_where, v_spec->>'column'));
        END IF;
    END LOOP;
    FOR v_check IN SELECT pg_catalog.jsonb_array_elements(coalesce(p_map->'checks', '[]')) LOOP
        v_rule := (SELECT k FROM pg_catalog.jsonb_object_keys(v_check) k LIMIT 1);
        IF v_rule NOT IN ('not_null', 'unique', 'accepted_values', 'min_rows', 'null_fraction') THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.checks: unknown check %L', v_where, v_rule),
                'Known checks: not_null, unique, accepted_values, min_rows, null_fraction.');
        END IF;
        FOR v_col IN
            SELECT c FROM pg_catalog.jsonb_array_elements_text(CASE WHEN v_rule IN ('not_null', 'unique') THEN v_check->v_rule ELSE '[]' END) c
            UNION ALL
            SELECT v_check->v_rule->>'column' WHERE v_rule IN ('accepted_values', 'null_fraction')
        LOOP
            IF NOT (p_map->'columns' ? v_col) THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.checks.%s: %L is not a mapped column', v_where, v_rule, v_col));
            END IF;
        END LOOP;
    END LOOP;
END;
$$;

-- Validates and stores a client's mapping config; returns its version (unchanged config = same version).
CREATE FUNCTION starpipe.apply_mapping(p_config jsonb)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_client text;
    v_schema text;
    v_latest starpipe.mapping;
    v_source text;
    v_map jsonb;
BEGIN
    -- A mapping is proven against the production catalog before any job can use it.
    IF pg_catalog.jsonb_typeof(p_config) <> 'object' OR p_config->>'version' IS DISTINCT FROM '1' THEN
        PERFORM starpipe._raise('SP006', 'mapping config must be an object with "version: 1"');
    END IF;
    v_client := starpipe._check_name('client', p_config->>'client');
    v_schema := p_config->>'target_schema';
    IF v_schema IS NULL OR pg_catalog.to_regnamespace(pg_catalog.quote_ident(v_schema)) IS NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('target_schema %L does not exist', v_schema));
    END IF;
    IF pg_catalog.jsonb_typeof(p_config->'tables') <> 'object' THEN
        PERFORM starpipe._raise('SP006', 'mapping config needs a "tables" object');
    END IF;
    FOR v_source, v_map IN SELECT key, value FROM pg_catalog.jsonb_each(p_config->'tables') LOOP
        PERFORM starpipe._check_table_mapping(v_schema, v_source, v_map);
    END LOOP;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.mapping:' || v_client));
    SELECT * INTO v_latest FROM starpipe.mapping WHERE client = v_client ORDER BY version DESC LIMIT 1;
    IF FOUND AND v_latest.config = p_config THEN
        RETURN v_latest.version;
    END IF;
    INSERT INTO starpipe.mapping (client, version, config)
    VALUES (v_client, coalesce(v_latest.version, 0) + 1, p_config);
    RETURN coalesce(v_latest.version, 0) + 1;
END;
$$;
COMMENT ON FUNCTION starpipe.apply_mapping(jsonb) IS
    'Validates a mapping config against production and stores it as the client''s next version.';
-- starpipe: mapping-driven transformation of a raw version into a staging copy of production.

-- The SQL expression that produces one target column from a raw row aliased r.
CREATE FUNCTION starpipe._column_expr(p_spec jsonb, p_target_type text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expr text;
    v_rule text;
BEGIN
    -- Cleaning works on text, then one cast (or two, through the mapping's "type") to the target type.
    IF p_spec ? 'const' THEN
        v_expr := pg_catalog.format('%L::text', p_spec->>'const');
    ELSE
        v_expr := pg_catalog.format('r.%I::text', p_spec->>'from');
    END IF;
    FOR v_rule IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(p_spec->'clean', '[]')) LOOP
        v_expr := CASE v_rule
            WHEN 'trim' THEN pg_catalog.format('pg_catalog.btrim(%s)', v_expr)
            WHEN 'upper' THEN pg_catalog.format('pg_catalog.upper(%s)', v_expr)
            WHEN 'lower' THEN pg_catalog.format('pg_catalog.lower(%s)', v_expr)
            WHEN 'nullif_empty' THEN pg_catalog.format('NULLIF(%s, %L)', v_expr, '')
            WHEN 'strip_digits' THEN pg_catalog.format('pg_catalog.regexp_replace(%s, %L, %L, %L)', v_expr, '[0-9]+', '', 'g')
            WHEN 'digits_only' THEN pg_catalog.format('pg_catalog.regexp_replace(%s, %L, %L, %L)', v_expr, '[^0-9]+', '', 'g')
            WHEN 'collapse_spaces' THEN pg_catalog.format('pg_catalog.regexp_replace(%s, %L, %L, %L)', v_expr, '\s+', ' ', 'g')
        END;
    END LOOP;
    IF p_spec ? 'type' THEN
        v_expr := pg_catalog.format('(%s)::%s', v_expr, starpipe._mapping_type('type', p_spec->>'type'));
    END IF;
    RETURN pg_catalog.format('(%s)::%s', v_expr, p_target_type);
END;
$$;

-- Finds the first mapped column and source row whose value cannot be converted (values are never reported).
CREATE FUNCTION starpipe._find_bad_value(p_raw regclass, p_target regclass, p_columns jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_col text;
    v_spec jsonb;
    v_row bigint;
BEGIN
    -- Slow path, run only after a bulk conversion failed: probe column by column, then row by row.
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(p_columns) ORDER BY key LOOP
        BEGIN
            EXECUTE pg_catalog.format('SELECT pg_catalog.count(%s) FROM %s r',
                                      starpipe._column_expr(v_spec, starpipe._column_type(p_target, v_col)), p_raw);
        EXCEPTION WHEN OTHERS THEN
            FOR v_row IN EXECUTE pg_catalog.format('SELECT _source_row FROM %s ORDER BY _source_row', p_raw) LOOP
                BEGIN
                    EXECUTE pg_catalog.format('SELECT %s FROM %s r WHERE r._source_row = $1',
                                              starpipe._column_expr(v_spec, starpipe._column_type(p_target, v_col)), p_raw)
                      USING v_row;
                EXCEPTION WHEN OTHERS THEN
                    RETURN pg_catalog.jsonb_build_object('column', v_col, 'from', v_spec->>'from', 'source_row', v_row,
                                                         'sqlstate', SQLSTATE, 'type', starpipe._column_type(p_target, v_col));
                END;
            END LOOP;
        END;
    END LOOP;
    RETURN NULL;
END;
$$;

-- Compares a job's source columns with what its mapping needs; returns the missing ones.
CREATE FUNCTION starpipe._missing_source_columns(p_job starpipe.job, p_map jsonb)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.array_agg(DISTINCT m.value->>'from' ORDER BY m.value->>'from')
      FROM pg_catalog.jsonb_each(p_map->'columns') m
     WHERE m.value ? 'from'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') c
                        WHERE c->>'name' = m.value->>'from');
$$;

-- The staging table of a job.
CREATE FUNCTION starpipe._staging_table(p_job starpipe.job, p_map jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('starpipe_staging.%I', starpipe._version_name(p_map->>'target', p_job.job_id));
$$;

-- Decides whether schema drift stops a job before transform: returns the BLOCKED reason and detail, or NULL.
CREATE FUNCTION starpipe._drift_block(p_job starpipe.job, p_map jsonb, p_mapping_version integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sv starpipe.schema_version;
    v_missing text[];
    v_retyped text[];
    v_covered boolean;
    v_new text[];
    v_renames text;
BEGIN
    -- A mapped source column that is gone (renamed or dropped) always blocks: it must never become NULLs.
    -- A mapped column whose type changed blocks until its schema version is accepted or a newer mapping covers it.
    SELECT * INTO v_sv FROM starpipe.schema_version s
     WHERE s.client = p_job.client AND s.table_name = p_job.table_name AND s.version = p_job.schema_version;
    v_missing := starpipe._missing_source_columns(p_job, p_map);
    SELECT pg_catalog.array_agg(DISTINCT r->>'name' ORDER BY r->>'name') INTO v_retyped
      FROM pg_catalog.jsonb_array_elements(coalesce(v_sv.diff->'retyped', '[]')) r
     WHERE EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p_map->'columns') m WHERE m.value->>'from' = r->>'name');
    v_covered := v_sv.accepted_at IS NOT NULL OR p_mapping_version > coalesce(v_sv.mapping_version, 0);
    IF v_missing IS NULL AND (v_retyped IS NULL OR v_covered) THEN
        RETURN NULL;
    END IF;
    IF v_covered THEN
        v_retyped := NULL;
    END IF;
    SELECT pg_catalog.array_agg(a ORDER BY o) INTO v_new
      FROM pg_catalog.jsonb_array_elements_text(coalesce(v_sv.diff->'added', '[]')) WITH ORDINALITY AS x(a, o);
    SELECT pg_catalog.string_agg(pg_catalog.format('%s -> %s', r->>'from', r->>'to'), ', ' ORDER BY o) INTO v_renames
      FROM pg_catalog.jsonb_array_elements(coalesce(v_sv.diff->'rename_candidates', '[]')) WITH ORDINALITY AS x(r, o);
    RETURN pg_catalog.jsonb_build_object(
        'error', pg_catalog.concat_ws('; ',
            CASE WHEN v_missing IS NOT NULL THEN pg_catalog.format('schema drift: mapped source column(s) %s missing from %s.%s',
                pg_catalog.array_to_string(v_missing, ', '), p_job.client, p_job.table_name) END,
            CASE WHEN v_retyped IS NOT NULL THEN pg_catalog.format('schema drift: mapped source column(s) %s changed type in %s.%s',
                pg_catalog.array_to_string(v_retyped, ', '), p_job.client, p_job.table_name) END,
            CASE WHEN v_new IS NOT NULL THEN pg_catalog.format('new columns: %s', pg_catalog.array_to_string(v_new, ', ')) END,
            CASE WHEN v_renames IS NOT NULL THEN pg_catalog.format('rename candidates: %s', v_renames) END,
            CASE WHEN v_missing IS NOT NULL THEN 'map the new names and retry'
                 ELSE pg_catalog.format('accept with starpipe.accept_schema(%L, %L, %s) or apply a mapping that covers it, then retry',
                                        p_job.client, p_job.table_name, v_sv.version) END),
        'detail', pg_catalog.jsonb_build_object(
            'missing_columns', pg_catalog.to_jsonb(coalesce(v_missing, '{}')),
            'retyped_columns', pg_catalog.to_jsonb(coalesce(v_retyped, '{}')),
            'new_columns', pg_catalog.to_jsonb(coalesce(v_new, '{}')),
            'rename_candidates', coalesce(v_sv.diff->'rename_candidates', '[]'),
            'schema_version', v_sv.version,
            'diff', v_sv.diff,
            'mapping_version', p_mapping_version));
END;
$$;

-- Transforms a job's raw version into staging with its client's mapping; returns the job's status after.
CREATE FUNCTION starpipe.transform(p_job_id bigint, p_fence bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
    v_mapping starpipe.mapping;
    v_map jsonb;
    v_target regclass;
    v_raw regclass;
    v_staging text;
    v_drift jsonb;
    v_col text;
    v_spec jsonb;
    v_type text;
    v_defs text := '';
    v_names text := '';
    v_exprs text := '';
    v_key text;
    v_order text := '';
    v_rows bigint;
    v_bad jsonb;
BEGIN
    -- Data problems end in FAILED or BLOCKED (committed, with the reason); only misuse raises.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF v_job.status <> 'PROCESSING' OR v_job.stage NOT IN ('raw_loaded', 'transformed', 'validated') THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; transform needs a loaded raw version',
                                                           p_job_id, v_job.status, v_job.stage));
    END IF;
    SELECT * INTO v_mapping FROM starpipe.mapping WHERE client = v_job.client ORDER BY version DESC LIMIT 1;
    v_map := v_mapping.config->'tables'->v_job.table_name;
    IF v_map IS NULL THEN
        -- No mapping for this table: the data is kept in raw and the job is done.
        PERFORM starpipe._transition(v_job, 'SUCCESS', v_job.stage, 'raw_only',
                                     pg_catalog.jsonb_build_object('reason', 'no mapping for this table; kept in raw only'));
        RETURN 'SUCCESS';
    END IF;
    UPDATE starpipe.job SET mapping_version = v_mapping.version WHERE job_id = p_job_id;

    -- Drift that touches the mapping stops the job here; other drift proceeds with a warning.
    v_drift := starpipe._drift_block(v_job, v_map, v_mapping.version);
    IF v_drift IS NOT NULL THEN
        PERFORM starpipe._transition(v_job, 'BLOCKED', v_job.stage, 'drift', v_drift->'detail', v_drift->>'error');
        RETURN 'BLOCKED';
    END IF;
    IF EXISTS (SELECT 1 FROM starpipe.schema_version s
                WHERE s.client = v_job.client AND s.table_name = v_job.table_name AND s.version = v_job.schema_version
                  AND s.first_job = v_job.job_id AND s.diff IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM starpipe.job_event e WHERE e.job_id = p_job_id AND e.event = 'drift_warning') THEN
        PERFORM starpipe._transition(v_job, 'PROCESSING', v_job.stage, 'drift_warning',
            (SELECT pg_catalog.jsonb_build_object('schema_version', s.version, 'diff', s.diff) FROM starpipe.schema_version s
              WHERE s.client = v_job.client AND s.table_name = v_job.table_name AND s.version = v_job.schema_version));
    END IF;

    v_target := pg_catalog.format('%I.%I', v_mapping.config->>'target_schema', v_map->>'target')::regclass;
    v_raw := starpipe.raw_version(p_job_id);
    v_staging := starpipe._staging_table(v_job, v_map);
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(v_map->'columns') ORDER BY key LOOP
        v_type := starpipe._column_type(v_target, v_col);
        v_defs := v_defs || pg_catalog.format('%I %s, ', v_col, v_type);
        v_names := v_names || pg_catalog.format('%I, ', v_col);
        v_exprs := v_exprs || starpipe._column_expr(v_spec, v_type) || pg_catalog.format(' AS %I, ', v_col);
    END LOOP;
    FOR v_spec IN SELECT pg_catalog.jsonb_array_elements(coalesce(v_map->'dedup'->'order_by', '[]')) LOOP
        v_order := v_order || pg_catalog.format('%I %s NULLS LAST, ', v_spec->>'column',
                                                CASE WHEN (v_spec->>'desc')::boolean THEN 'DESC' ELSE 'ASC' END);
    END LOOP;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', k), ', ' ORDER BY k) INTO v_key
      FROM pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') k;

    BEGIN
        IF pg_catalog.to_regclass(v_staging) IS NOT NULL THEN
            EXECUTE pg_catalog.format('DROP TABLE %s', v_staging);
        END IF;
        EXECUTE pg_catalog.format('CREATE TABLE %s (%s_ingestion_id bigint NOT NULL, _source_row bigint NOT NULL)', v_staging, v_defs);
        PERFORM starpipe._lock_down('TABLE', v_staging, 'SELECT', '{starpipe_admin}');
        -- Dedup on the conflict key; by default the row that came last in the file wins.
        EXECUTE pg_catalog.format(
            'INSERT INTO %s (%s_ingestion_id, _source_row) '
            'SELECT DISTINCT ON (%s) %s_ingestion_id, _source_row FROM ('
            '  SELECT %sr._ingestion_id, r._source_row FROM %s r) s '
            'ORDER BY %s, %s_source_row DESC',
            v_staging, v_names, v_key, v_names, v_exprs, v_raw, v_key, v_order);
        GET DIAGNOSTICS v_rows = ROW_COUNT;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
        v_bad := starpipe._find_bad_value(v_raw, v_target, v_map->'columns');
        PERFORM starpipe._transition(v_job, 'FAILED', v_job.stage, 'transform_failed', v_bad,
            CASE WHEN v_bad IS NULL THEN pg_catalog.format('transform failed (SQLSTATE %s)', SQLSTATE)
                 ELSE pg_catalog.format('transform failed: source row %s, column %s (from %s): value is not a valid %s (SQLSTATE %s)',
                                        v_bad->>'source_row', v_bad->>'column', v_bad->>'from', v_bad->>'type', v_bad->>'sqlstate') END);
        RETURN 'FAILED';
    END;
    UPDATE starpipe.job SET rows_staged = v_rows WHERE job_id = p_job_id;
    PERFORM starpipe._transition(v_job, 'PROCESSING', 'transformed', 'transformed',
        pg_catalog.jsonb_build_object('staging', v_staging, 'rows', v_rows, 'deduplicated', v_job.rows_raw - v_rows,
                                      'mapping_version', v_mapping.version));
    RETURN 'PROCESSING';
END;
$$;
COMMENT ON FUNCTION starpipe.transform(bigint, bigint) IS
    'Builds the job''s staging table from its raw version with the client''s mapping (clean, cast, dedup); returns the status after.';
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
    -- Reports source row numbers, never values.
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.count(*), (pg_catalog.array_agg(_source_row ORDER BY _source_row))[1:5] FROM %s s WHERE %s',
        p_staging, p_where) INTO v_count, v_sample;
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
AS $$
DECLARE
    v_job starpipe.job;
    v_map jsonb;
    v_staging text;
    v_check jsonb;
    v_rule text;
    v_col text;
    v_failures jsonb := '[]';
    v_failure jsonb;
    v_rows bigint;
    v_frac numeric;
    v_key text;
BEGIN
    -- Gates that fail block the job before production is touched; the staging rows stay for review.
    v_job := starpipe._lock_job(p_job_id);
    PERFORM starpipe._check_fence(v_job, p_fence);
    IF v_job.status <> 'PROCESSING' OR v_job.stage <> 'transformed' THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; validate needs stage transformed',
                                                           p_job_id, v_job.status, v_job.stage));
    END IF;
    SELECT m.config->'tables'->v_job.table_name INTO v_map FROM starpipe.mapping m
     WHERE m.client = v_job.client AND m.version = v_job.mapping_version;
    v_staging := starpipe._staging_table(v_job, v_map);
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', v_staging) INTO v_rows;

    -- The conflict key is always a gate: promotion cannot place a row without it.
    FOR v_col IN SELECT pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') LOOP
        v_failure := starpipe._gate('not_null', v_col, v_staging, pg_catalog.format('s.%I IS NULL', v_col));
        IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
    END LOOP;
    FOR v_check IN SELECT pg_catalog.jsonb_array_elements(coalesce(v_map->'checks', '[]')) LOOP
        v_rule := (SELECT k FROM pg_catalog.jsonb_object_keys(v_check) k LIMIT 1);
        v_failure := NULL;
        IF v_rule = 'not_null' THEN
            FOR v_col IN SELECT pg_catalog.jsonb_array_elements_text(v_check->'not_null') LOOP
                v_failure := starpipe._gate('not_null', v_col, v_staging, pg_catalog.format('s.%I IS NULL', v_col));
                IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
            END LOOP;
            v_failure := NULL;
        ELSIF v_rule = 'unique' THEN
            SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ') INTO v_key
              FROM pg_catalog.jsonb_array_elements_text(v_check->'unique') c;
            v_failure := starpipe._gate('unique', v_key, v_staging, pg_catalog.format(
                '(%s) IN (SELECT %s FROM %s GROUP BY %s HAVING pg_catalog.count(*) > 1)', v_key, v_key, v_staging, v_key));
        ELSIF v_rule = 'accepted_values' THEN
            v_col := v_check->'accepted_values'->>'column';
            v_failure := starpipe._gate('accepted_values', v_col, v_staging, pg_catalog.format(
                's.%I IS NOT NULL AND NOT (s.%I::text = ANY (%L::text[]))', v_col, v_col,
                (SELECT pg_catalog.array_agg(v) FROM pg_catalog.jsonb_array_elements_text(v_check->'accepted_values'->'values') v)));
        ELSIF v_rule = 'min_rows' THEN
            IF v_rows < (v_check->>'min_rows')::bigint THEN
                v_failure := pg_catalog.jsonb_build_object('rule', 'min_rows', 'rows', v_rows, 'minimum', (v_check->>'min_rows')::bigint);
            END IF;
        ELSIF v_rule = 'null_fraction' THEN
            v_col := v_check->'null_fraction'->>'column';
            EXECUTE pg_catalog.format('SELECT pg_catalog.avg((s.%I IS NULL)::int) FROM %s s', v_col, v_staging) INTO v_frac;
            IF coalesce(v_frac, 0) > (v_check->'null_fraction'->>'max')::numeric THEN
                v_failure := pg_catalog.jsonb_build_object('rule', 'null_fraction', 'column', v_col,
                                                           'fraction', pg_catalog.round(v_frac, 4), 'max', v_check->'null_fraction'->'max');
            END IF;
        END IF;
        IF v_failure IS NOT NULL THEN v_failures := v_failures || v_failure; END IF;
    END LOOP;

    IF pg_catalog.jsonb_array_length(v_failures) > 0 THEN
        PERFORM starpipe._transition(v_job, 'BLOCKED', 'transformed', 'validation_failed',
            pg_catalog.jsonb_build_object('failures', v_failures),
            'validation failed: ' || (SELECT pg_catalog.string_agg(
                pg_catalog.format('%s(%s)%s', f->>'rule', coalesce(f->>'column', ''),
                    CASE WHEN f ? 'rows' AND f ? 'sample_source_rows'
                         THEN pg_catalog.format(' %s rows, e.g. source rows %s', f->>'rows', f->'sample_source_rows') ELSE '' END), '; ')
                FROM pg_catalog.jsonb_array_elements(v_failures) f));
        RETURN 'BLOCKED';
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
-- starpipe: conflict-resolved, atomic promotion from staging into production.

-- Rows whose staged values differ from production at promotion, and how each was resolved.
CREATE TABLE starpipe.conflict (
    conflict_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES starpipe.job (job_id),
    target          text NOT NULL,
    key             jsonb NOT NULL,
    changed_columns text[] NOT NULL,
    policy          text NOT NULL,
    source_row      bigint NOT NULL,
    at              timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX conflict_job ON starpipe.conflict (job_id);
COMMENT ON TABLE starpipe.conflict IS 'Conflict audit trail: each promoted row that differed from production, the columns that differed and the policy applied.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.conflict', '');
SELECT pg_catalog.pg_extension_config_dump('starpipe.conflict_conflict_id_seq', '');

-- When a job's data was extracted (the manifest's extracted_at), or -infinity when absent or unreadable.
CREATE FUNCTION starpipe._extracted_at(p_job starpipe.job)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Breaks ties between snapshots of one date: of two runs on the same day, the later extraction is newer.
    RETURN coalesce((p_job.manifest->>'extracted_at')::timestamptz, '-infinity'::timestamptz);
EXCEPTION WHEN OTHERS THEN
    RETURN '-infinity'::timestamptz;
END;
$$;

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
    v_key_list text;
    v_set text;
    v_guard text;
    v_action text;
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
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.promote'),
                                             pg_catalog.hashtext(v_job.client || '.' || v_job.table_name));
    -- An older snapshot arriving late is applied, but never overwrites rows a newer promoted snapshot wrote.
    -- Snapshots order by date, then by extraction time (two runs on one date: the later one is newer).
    SELECT * INTO v_newest FROM starpipe.job j
     WHERE j.client = v_job.client AND j.table_name = v_job.table_name AND j.status = 'SUCCESS' AND j.stage = 'promoted'
       AND j.job_id <> p_job_id
     ORDER BY j.snapshot_date DESC, starpipe._extracted_at(j) DESC, j.job_id DESC LIMIT 1;
    v_older := FOUND AND (v_newest.snapshot_date, starpipe._extracted_at(v_newest))
                         > (v_job.snapshot_date, starpipe._extracted_at(v_job));
    SELECT m.config INTO v_config FROM starpipe.mapping m
     WHERE m.client = v_job.client AND m.version = v_job.mapping_version;
    v_map := v_config->'tables'->v_job.table_name;
    v_target := pg_catalog.format('%I.%I', v_config->>'target_schema', v_map->>'target');
    v_staging := starpipe._staging_table(v_job, v_map);
    v_policy := CASE WHEN v_older THEN 'older_snapshot' ELSE coalesce(v_map->>'conflict_policy', 'source_wins') END;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_cols FROM pg_catalog.jsonb_object_keys(v_map->'columns') k;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key FROM pg_catalog.jsonb_array_elements_text(v_map->'conflict_key') k;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c) INTO v_col_list FROM pg_catalog.unnest(v_cols) c;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c) INTO v_key_list FROM pg_catalog.unnest(v_key) c;

    -- Audit first: every staged row that exists in production with different values.
    EXECUTE pg_catalog.format(
        'INSERT INTO starpipe.conflict (job_id, target, key, changed_columns, policy, source_row) '
        'SELECT %s, %L, (SELECT pg_catalog.jsonb_object_agg(k, pg_catalog.to_jsonb(s)->k) FROM pg_catalog.unnest(%L::text[]) k), '
        '       ARRAY(SELECT c FROM pg_catalog.unnest(%L::text[]) c WHERE pg_catalog.to_jsonb(s)->c IS DISTINCT FROM pg_catalog.to_jsonb(t)->c ORDER BY c), '
        '       %L, s._source_row '
        '  FROM %s s JOIN %s t USING (%s) '
        ' WHERE EXISTS (SELECT 1 FROM pg_catalog.unnest(%L::text[]) c WHERE pg_catalog.to_jsonb(s)->c IS DISTINCT FROM pg_catalog.to_jsonb(t)->c)',
        p_job_id, v_target, v_key, v_cols, v_policy, v_staging, v_target, v_key_list, v_cols);
    GET DIAGNOSTICS v_conflicts = ROW_COUNT;

    -- The conflict policy decides what an existing row becomes.
    SELECT pg_catalog.string_agg(CASE v_policy
               WHEN 'merge_non_null' THEN pg_catalog.format('%I = coalesce(EXCLUDED.%I, t.%I)', c, c, c)
               ELSE pg_catalog.format('%I = EXCLUDED.%I', c, c) END, ', ' ORDER BY c),
           pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ' ORDER BY c),
           pg_catalog.string_agg(pg_catalog.format('EXCLUDED.%I', c), ', ' ORDER BY c)
      INTO v_set, v_guard, v_action
      FROM pg_catalog.unnest(v_cols) c WHERE c <> ALL (v_key);
    IF v_set IS NULL OR v_policy IN ('target_wins', 'older_snapshot') THEN
        v_action := 'DO NOTHING';
    ELSE
        -- Rows that would not change are left alone, so a re-promotion writes nothing.
        v_guard := pg_catalog.format('ROW(%s) IS DISTINCT FROM ROW(%s)', v_guard, v_action);
        IF v_policy = 'newer_wins' THEN
            v_guard := v_guard || pg_catalog.format(' AND EXCLUDED.%I >= t.%I', v_map->>'version_column', v_map->>'version_column');
        END IF;
        v_action := pg_catalog.format('DO UPDATE SET %s WHERE %s', v_set, v_guard);
    END IF;
    EXECUTE pg_catalog.format(
        'WITH up AS (INSERT INTO %s AS t (%s) SELECT %s FROM %s ORDER BY %s ON CONFLICT (%s) %s RETURNING (t.xmax::text = %L) AS inserted) '
        'SELECT pg_catalog.count(*) FILTER (WHERE inserted), pg_catalog.count(*) FILTER (WHERE NOT inserted) FROM up',
        v_target, v_col_list, v_col_list, v_staging, v_key_list, v_key_list, v_action, '0')
      INTO v_inserted, v_updated;

    EXECUTE pg_catalog.format('DROP TABLE %s', v_staging);
    UPDATE starpipe.job SET rows_inserted = v_inserted, rows_updated = v_updated WHERE job_id = p_job_id;
    PERFORM starpipe._transition(v_job, 'SUCCESS', 'promoted', 'promoted',
        pg_catalog.jsonb_build_object('target', v_target, 'inserted', v_inserted, 'updated', v_updated,
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
AS $$
BEGIN
    -- Same promotion as the worker's, for a job BLOCKED at stage validated by "promotion: manual".
    RETURN starpipe._promote(p_job_id, NULL, true);
END;
$$;
COMMENT ON FUNCTION starpipe.promote(bigint) IS
    'Promotes a job awaiting manual promotion (BLOCKED at stage validated) into production; a second call is a no-op.';
-- starpipe: roles and privileges. Nothing here is for PUBLIC.

-- Roles are cluster-wide and outlive the extension: create each one only if it is absent, never alter an existing one.
--   starpipe_worker: runs the pipeline (register, claim, begin_raw + its COPY, finish_raw, transform, validate,
--                    fenced promote, fail, nack, release, heartbeat) and reads the ledger; owns nothing, no DDL anywhere.
--   starpipe_admin:  everything starpipe offers, including mappings, settings, retries, manual promotion,
--                    schema acceptance and the DLQ, plus read access to raw and staging tables.
-- Both are NOLOGIN: grant them to login roles (GRANT starpipe_worker TO etl_login).
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['starpipe_worker', 'starpipe_admin'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = v_role) THEN
            RAISE NOTICE 'role % already exists; starpipe grants privileges to it as it is', v_role;
        ELSE
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', v_role);
        END IF;
    END LOOP;
END;
$$;

-- Resets the privileges of a schema or table that starpipe creates to: its owner, plus p_privilege for p_roles.
CREATE FUNCTION starpipe._lock_down(p_kind text, p_object text, p_privilege text, p_roles text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_grantee text;
BEGIN
    -- Default privileges (Supabase grants anon and authenticated on new objects) must not open PHI to anyone,
    -- so every grantee other than the owner is revoked, whatever granted it.
    FOR v_grantee IN
        SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END
          FROM (SELECT n.nspacl AS acl, n.nspowner AS owner FROM pg_catalog.pg_namespace n
                 WHERE p_kind = 'SCHEMA' AND n.oid = pg_catalog.to_regnamespace(p_object)
                UNION ALL
                SELECT c.relacl, c.relowner FROM pg_catalog.pg_class c
                 WHERE p_kind = 'TABLE' AND c.oid = pg_catalog.to_regclass(p_object)) o
         CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) a
          LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
         WHERE a.grantee <> o.owner
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s', p_kind, p_object, v_grantee);
    END LOOP;
    EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM PUBLIC', p_kind, p_object);
    IF pg_catalog.cardinality(p_roles) > 0 THEN
        EXECUTE pg_catalog.format('GRANT %s ON %s %s TO %s', p_privilege, p_kind, p_object,
                                  (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r), ', ') FROM pg_catalog.unnest(p_roles) r));
    END IF;
END;
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA starpipe FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA starpipe FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA starpipe FROM PUBLIC;

-- Supabase's API roles get nothing, whatever default privileges granted them.
DO $$
DECLARE
    v_role text;
BEGIN
    FOR v_role IN SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname IN ('anon', 'authenticated') ORDER BY 1 LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA starpipe, starpipe_staging FROM %I', v_role);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL TABLES IN SCHEMA starpipe FROM %I', v_role);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA starpipe FROM %I', v_role);
        EXECUTE pg_catalog.format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA starpipe FROM %I', v_role);
    END LOOP;
END;
$$;

GRANT USAGE ON SCHEMA starpipe TO starpipe_worker, starpipe_admin;
GRANT USAGE ON SCHEMA starpipe_staging TO starpipe_admin;

-- The ledger is readable by both (it holds keys, counts and errors, never row values).
GRANT SELECT ON starpipe.job, starpipe.job_event, starpipe.job_status, starpipe.settings TO starpipe_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA starpipe TO starpipe_admin;

-- The pipeline, as the worker drives it.
GRANT EXECUTE ON FUNCTION
    starpipe.register(jsonb, text, text),
    starpipe.claim(text, interval),
    starpipe.prepare_raw(bigint, bigint),
    starpipe.begin_raw(bigint, bigint),
    starpipe.finish_raw(bigint, bigint, bigint, bigint, text),
    starpipe.transform(bigint, bigint),
    starpipe.validate(bigint, bigint),
    starpipe.promote(bigint, bigint),
    starpipe.fail(bigint, bigint, text, jsonb, text),
    starpipe.nack(bigint, bigint, text),
    starpipe.release(bigint, bigint),
    starpipe.heartbeat(bigint, bigint, interval),
    starpipe.next_claimable_at(),
    starpipe.raw_version(bigint)
TO starpipe_worker, starpipe_admin;

-- Decisions that need a human.
GRANT EXECUTE ON FUNCTION
    starpipe.apply_mapping(jsonb),
    starpipe.set_setting(text, text),
    starpipe.retry(bigint),
    starpipe.promote(bigint),
    starpipe.accept_schema(text, text, integer),
    starpipe.dlq_list(),
    starpipe.dlq_inspect(bigint),
    starpipe.dlq_replay(bigint)
TO starpipe_admin;
