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
        -- The one encoding besides a type's own text: base64 of a bytea column's bytes (the worker decodes it).
        IF v_col ? 'encoding' AND (v_col->'encoding' IS DISTINCT FROM '"base64"' OR v_col->>'type' <> 'bytea') THEN
            PERFORM starpipe._raise('SP005', pg_catalog.format('manifest column %I: "encoding" must be base64, on a bytea column', v_col->>'name'));
        END IF;
    END LOOP;
    -- extracted_at orders two snapshots of one date, so it must be an instant: RFC 3339 with an explicit offset
    -- (so no session time zone is involved), and never a special value such as 'now' or 'infinity'. Absent or
    -- null: the snapshot sorts before every extracted one of its date.
    IF pg_catalog.jsonb_typeof(p_manifest->'extracted_at') <> 'null' AND NOT starpipe._is_rfc3339(p_manifest->'extracted_at') THEN
        PERFORM starpipe._raise('SP005', 'manifest "extracted_at" must be an RFC 3339 date-time with an offset',
            'For example 2026-11-01T08:00:00.123456Z or 2026-11-01T09:00:00+01:00.');
    END IF;
    -- mode: a full snapshot of the table (the default), or an incremental batch that is upserted and never deletes.
    IF p_manifest ? 'mode' AND (pg_catalog.jsonb_typeof(p_manifest->'mode') <> 'string' OR p_manifest->>'mode' NOT IN ('full', 'incremental')) THEN
        PERFORM starpipe._raise('SP005', 'manifest "mode" must be full or incremental');
    END IF;
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

-- Whether a JSON value is an RFC 3339 date-time with an explicit offset that Postgres can hold.
CREATE FUNCTION starpipe._is_rfc3339(p_value jsonb)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_at timestamptz;
BEGIN
    -- The shape first, so only a real instant reaches the cast (which would also take 'now', epoch words, or no offset).
    IF pg_catalog.jsonb_typeof(p_value) IS DISTINCT FROM 'string'
       OR (p_value #>> '{}') !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN
        RETURN false;
    END IF;
    v_at := (p_value #>> '{}')::timestamptz;
    RETURN pg_catalog.isfinite(v_at);
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_time_zone_displacement_value THEN
    RETURN false;
END;
$$;

-- When a job's data was extracted (the manifest's extracted_at): it orders two snapshots of one date.
CREATE FUNCTION starpipe._extracted_at(p_job starpipe.job)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- register accepts only RFC 3339 instants with an offset, so the cast never depends on the session's zone;
    -- a manifest without one (or registered before 0.3.0 with an unreadable one) sorts first: -infinity.
    SELECT CASE WHEN starpipe._is_rfc3339(p_job.manifest->'extracted_at') THEN (p_job.manifest->>'extracted_at')::timestamptz
                ELSE '-infinity'::timestamptz END;
$$;

-- Raises unless the transaction reads at READ COMMITTED: decisions taken under a lock must see what committed before it.
CREATE FUNCTION starpipe._require_read_committed(p_what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Under REPEATABLE READ or SERIALIZABLE the snapshot predates the advisory lock, so a promotion or registration
    -- that committed while this one waited would be invisible to it.
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM starpipe._raise('25001', pg_catalog.format('%s needs a READ COMMITTED transaction, not %s',
                                                           p_what, pg_catalog.current_setting('transaction_isolation')),
            NULL, 'Set default_transaction_isolation to ''read committed'' for the pipeline''s roles or sessions.');
    END IF;
END;
$$;

-- The newest snapshot of a client table with content: in flight (PENDING, PROCESSING, BLOCKED), applied (SUCCESS),
-- or a DUPLICATE of one of those; snapshots order by date, then extraction time, then registration.
CREATE FUNCTION starpipe._newest_snapshot(p_client text, p_table text)
RETURNS starpipe.job
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.* FROM starpipe.job j
     WHERE j.client = p_client AND j.table_name = p_table
       AND j.status = ANY (starpipe._unfinished_statuses() || '{SUCCESS,DUPLICATE}'::text[])
     ORDER BY j.snapshot_date DESC, starpipe._extracted_at(j) DESC, j.job_id DESC
     LIMIT 1;
$$;

-- The part of a client's mapping version that decides what a table's rows become: its target schema and its
-- table entry, or NULL when the table is not mapped (raw only).
CREATE FUNCTION starpipe._table_mapping(p_client text, p_version integer, p_table text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN m.config->'tables' ? p_table
                THEN pg_catalog.jsonb_build_object('target_schema', m.config->'target_schema', 'table', m.config->'tables'->p_table) END
      FROM starpipe.mapping m
     WHERE m.client = p_client
       AND m.version = coalesce(p_version, (SELECT pg_catalog.max(l.version) FROM starpipe.mapping l WHERE l.client = p_client));
$$;

-- The job whose content a new snapshot (sha256) would only repeat, or NULL: the table's newest snapshot, when it has
-- the same content and is still in flight, or was applied under the mapping the new one would get now.
CREATE FUNCTION starpipe._duplicate_of(p_client text, p_table text, p_sha256 text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_newest starpipe.job;
    v_root starpipe.job;
BEGIN
    -- Equal to an older snapshot is not a duplicate (A, B, then A again must apply A), and a table whose mapping
    -- changed since its content was applied (a mapping added to a raw-only table, say) must be applied again.
    v_newest := starpipe._newest_snapshot(p_client, p_table);
    IF v_newest.job_id IS NULL OR v_newest.sha256 <> p_sha256 THEN
        RETURN NULL;
    END IF;
    IF v_newest.status = 'DUPLICATE' THEN
        SELECT * INTO v_root FROM starpipe.job WHERE job_id = v_newest.duplicate_of;
    ELSE
        v_root := v_newest;
    END IF;
    IF v_root.status = ANY (starpipe._unfinished_statuses()) THEN
        RETURN v_root.job_id;
    END IF;
    IF v_root.status = 'SUCCESS'
       AND starpipe._table_mapping(p_client, v_root.mapping_version, p_table) IS NOT DISTINCT FROM
           starpipe._table_mapping(p_client, NULL, p_table)
       AND (v_root.mapping_version IS NOT NULL OR starpipe._table_mapping(p_client, NULL, p_table) IS NULL) THEN
        RETURN v_root.job_id;
    END IF;
    RETURN NULL;
END;
$$;

-- Registers a manifest as a job, idempotently, and enqueues it in the same transaction.
CREATE FUNCTION starpipe.register(p_manifest jsonb, p_manifest_key text, p_data_key text)
RETURNS TABLE (job_id bigint, status text, created boolean)
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
    v_dup bigint;
    v_status text := 'PENDING';
BEGIN
    -- Same key again: a no-op that returns the existing job.
    PERFORM starpipe._check_manifest(p_manifest);
    PERFORM starpipe._require_read_committed('register');
    -- Registrations of one client table take turns, so two workers finding the same manifest (or the same
    -- content under two keys) at once see each other's row instead of colliding on a unique index.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.register:' || (p_manifest->>'client') || '.' || (p_manifest->>'table')));
    SELECT * INTO v_job FROM starpipe.job j
     WHERE j.client = p_manifest->>'client' AND j.table_name = p_manifest->>'table'
       AND j.snapshot_date = (p_manifest->>'snapshot_date')::date AND j.run_id = p_manifest->>'run_id';
    IF FOUND THEN
        -- The same snapshot again (another prefix, a re-sent event) is the same job; different content under the
        -- same client, table, date and run id is refused, never silently dropped: a correction needs a new run id.
        IF v_job.sha256 <> p_manifest->>'sha256' THEN
            PERFORM starpipe._raise('SP005', pg_catalog.format(
                'a different data file is already registered for %s.%s, snapshot %s, run %s (job %s)',
                v_job.client, v_job.table_name, v_job.snapshot_date, v_job.run_id, v_job.job_id),
                pg_catalog.format('registered from %s with sha256 %s; this manifest (%s) has sha256 %s',
                                  v_job.manifest_key, v_job.sha256, p_manifest_key, p_manifest->>'sha256'),
                'Re-extract with a new run id to replace a snapshot.');
        END IF;
        RETURN QUERY SELECT v_job.job_id, v_job.status, false;
        RETURN;
    END IF;
    -- Content equal to the table's newest snapshot (applied, or still in flight): record a DUPLICATE, apply nothing.
    v_dup := starpipe._duplicate_of(p_manifest->>'client', p_manifest->>'table', p_manifest->>'sha256');
    IF v_dup IS NOT NULL THEN
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
    'Registers a manifest as a job (idempotent on client/table/snapshot date/run id); content equal to the table''s newest snapshot is recorded as DUPLICATE.';

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
                              AND e.status = ANY (starpipe._unfinished_statuses())
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

-- When a claim may next succeed, judged by claim's own rules: the earliest backoff end, lease expiry (a takeover),
-- or end of the lease that keeps a client busy, among jobs no older unfinished snapshot holds back; now when one is
-- claimable already; NULL when nothing can become claimable without an event (a NOTIFY: registration, a job
-- finishing or released, a retry).
CREATE FUNCTION starpipe.next_claimable_at()
RETURNS timestamptz
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- A job behind an older snapshot of its table waits for that one (which is itself a candidate here, or BLOCKED
    -- until a human acts); a job of a busy client waits at least until the busy job's lease runs out.
    SELECT pg_catalog.min(GREATEST(
               CASE WHEN j.status = 'PENDING' THEN coalesce(j.visible_at, pg_catalog.now()) ELSE j.lease_until END,
               (SELECT pg_catalog.max(p.lease_until) FROM starpipe.job p
                 WHERE p.client = j.client AND p.status = 'PROCESSING' AND p.job_id <> j.job_id),
               pg_catalog.now()))
      FROM starpipe.job j
     WHERE j.status IN ('PENDING', 'PROCESSING')
       AND NOT EXISTS (SELECT 1 FROM starpipe.job e
                        WHERE e.client = j.client AND e.table_name = j.table_name
                          AND e.status = ANY (starpipe._unfinished_statuses())
                          AND (e.snapshot_date, e.job_id) < (j.snapshot_date, j.job_id));
$$;
COMMENT ON FUNCTION starpipe.next_claimable_at() IS
    'The earliest time a claim may succeed, by claim''s own rules (backoff, lease expiry, busy client, older snapshot first), for a worker to sleep until; NULL when nothing can become claimable without a NOTIFY.';
