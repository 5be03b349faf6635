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
