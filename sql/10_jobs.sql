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
    raw_digest      text,
    staged_digest   text,
    staged_xmins    text[],
    promoted_digest text,
    rows_deleted    bigint,
    rows_rejected   bigint,
    rows_deduplicated bigint,
    progress        bigint,
    progress_at     timestamptz,
    CONSTRAINT job_key UNIQUE (client, table_name, snapshot_date, run_id)
);
COMMENT ON TABLE starpipe.job IS 'The job ledger: one row per registered data file, with its status and stage.';
COMMENT ON COLUMN starpipe.job.attempts IS 'Claims (deliveries) since registration or the last retry; max_attempts of them send the job to the DLQ.';
COMMENT ON COLUMN starpipe.job.progress IS 'The last progress figure a heartbeat reported for the current stage (bytes of the data file read by a raw load); NULL when none did.';
COMMENT ON COLUMN starpipe.job.progress_at IS 'When a heartbeat last reported a progress figure different from the one before: a job moving through a long stage is not stuck.';
COMMENT ON COLUMN starpipe.job.visible_at IS 'A PENDING job is not claimable before this time (backoff after a nack); NULL: now.';
COMMENT ON COLUMN starpipe.job.raw_digest IS 'Digest ("rows:sum", see starpipe._digest) of the raw version''s data columns, computed when it was loaded.';
COMMENT ON COLUMN starpipe.job.staged_digest IS 'Digest of the staged rows'' mapped columns, computed by validate; promote refuses a staging table that no longer matches it.';
COMMENT ON COLUMN starpipe.job.staged_xmins IS 'The transactions (xmin) that wrote the staged rows validate checked; with the row count, promote proves staging unchanged without hashing it again.';
COMMENT ON COLUMN starpipe.job.promoted_digest IS 'Digest of the job''s keys'' rows in production right after its promotion (mapped columns); starpipe.verify recomputes it.';
COMMENT ON COLUMN starpipe.job.rows_deleted IS 'Production rows the promotion of a full snapshot deleted or soft-deleted (the mapping''s deletes rule).';
COMMENT ON COLUMN starpipe.job.rows_rejected IS 'Raw rows transform quarantined (starpipe.reject); rows_raw = rows_staged + rows_rejected + rows_deduplicated.';
COMMENT ON COLUMN starpipe.job.rows_deduplicated IS 'Raw rows transform left out because a later (or dedup-preferred) row had the same conflict key.';
COMMENT ON COLUMN starpipe.job.schema_version IS 'The version of the source table''s schema (starpipe.schema_version) this job''s manifest has.';

-- The database, not the worker, guarantees one PROCESSING job per client.
CREATE UNIQUE INDEX job_one_processing_per_client ON starpipe.job (client) WHERE status = 'PROCESSING';
-- Finds a table's jobs with some content (DUPLICATE decisions, revival of duplicates).
CREATE INDEX job_content ON starpipe.job (client, table_name, sha256);
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

-- The statuses of a job that is not finished yet: queued, held, or waiting for a human. Defined once: a later snapshot
-- of the same table waits behind such a job (claim, next_claimable_at), and new content equal to it is its DUPLICATE.
CREATE FUNCTION starpipe._unfinished_statuses()
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{PENDING,PROCESSING,BLOCKED}'::text[];
$$;

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
    -- A DUPLICATE goes back to the queue when what it duplicated failed, or on a human's retry; a raw-only
    -- SUCCESS (stage raw_loaded, no mapping then) is re-run on a human's retry, from its raw version.
    v_legal := CASE p_job.status
        WHEN 'PENDING'    THEN p_to IN ('PROCESSING', 'FAILED', 'DEAD')
        WHEN 'PROCESSING' THEN p_to IN ('PROCESSING', 'PENDING', 'SUCCESS', 'FAILED', 'BLOCKED', 'DEAD')
        WHEN 'BLOCKED'    THEN p_to IN ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED')
        WHEN 'FAILED'     THEN p_to IN ('PENDING')
        WHEN 'DEAD'       THEN p_to IN ('PENDING')
        WHEN 'DUPLICATE'  THEN p_to IN ('PENDING')
        WHEN 'SUCCESS'    THEN p_to = 'PENDING' AND p_job.stage = 'raw_loaded'
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
    -- Content that was recorded as a duplicate of this job is no longer applied by it.
    IF p_to IN ('FAILED', 'DEAD') THEN
        PERFORM starpipe._revive_duplicates(p_job, p_to);
    END IF;
    -- Jobs of the same extraction run that wait for this one to be promoted go on once it has ended, either way.
    IF p_to IN ('SUCCESS', 'FAILED', 'DEAD') THEN
        PERFORM starpipe._wake_batch_dependents(p_job);
    END IF;
END;
$$;

-- When a job ends FAILED or DEAD, the oldest DUPLICATE of it goes back to the queue in its place (the others
-- now duplicate that one): a damaged upload must not make the client's intact re-run of the same content vanish.
CREATE FUNCTION starpipe._revive_duplicates(p_job starpipe.job, p_status text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_revived starpipe.job;
BEGIN
    -- Oldest snapshot first, like the queue; the revived job starts from registration (it was never loaded).
    SELECT * INTO v_revived FROM starpipe.job j
     WHERE j.duplicate_of = p_job.job_id AND j.status = 'DUPLICATE'
     ORDER BY j.snapshot_date, j.job_id LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE starpipe.job SET duplicate_of = v_revived.job_id
     WHERE duplicate_of = p_job.job_id AND status = 'DUPLICATE' AND job_id <> v_revived.job_id;
    UPDATE starpipe.job SET duplicate_of = NULL, attempts = 0 WHERE job_id = v_revived.job_id;
    PERFORM starpipe._transition(v_revived, 'PENDING', 'registered', 'revived',
        pg_catalog.jsonb_build_object('reason', pg_catalog.format('job %s, which this job duplicated, ended %s', p_job.job_id, p_status),
                                      'duplicate_of', p_job.job_id));
    RETURN v_revived.job_id;
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
BEGIN
    -- Re-running content that is applied already is harmless (promotion leaves equal rows alone), so a human's
    -- requeue is never refused for it. A DUPLICATE becomes a job of its own, loaded from registration.
    UPDATE starpipe.job SET attempts = 0, duplicate_of = NULL WHERE job_id = p_job.job_id;
    PERFORM starpipe._transition(p_job, 'PENDING', p_job.stage, p_event,
                                 pg_catalog.jsonb_build_object('previous_attempts', p_job.attempts, 'previous_status', p_job.status)
                                 || CASE WHEN p_job.duplicate_of IS NULL THEN '{}'::jsonb
                                         ELSE pg_catalog.jsonb_build_object('was_duplicate_of', p_job.duplicate_of) END);
    RETURN 'PENDING';
END;
$$;

-- Puts a FAILED, BLOCKED, DEAD or DUPLICATE job, or a raw-only SUCCESS, back in the queue, keeping its progress.
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
    -- A raw-only SUCCESS resumes at transform, with the mapping in force now (say, one added since).
    v_job := starpipe._lock_job(p_job_id);
    IF NOT (v_job.status IN ('FAILED', 'BLOCKED', 'DEAD', 'DUPLICATE') OR (v_job.status = 'SUCCESS' AND v_job.stage = 'raw_loaded')) THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format(
            'job %s is %s at stage %s; only FAILED, BLOCKED, DEAD or DUPLICATE jobs and raw-only SUCCESS jobs can be retried',
            p_job_id, v_job.status, v_job.stage));
    END IF;
    RETURN starpipe._requeue(v_job, 'retry');
END;
$$;
COMMENT ON FUNCTION starpipe.retry(bigint) IS
    'Requeues a FAILED, BLOCKED, DEAD or DUPLICATE job, or a raw-only SUCCESS, with its attempts reset; it resumes from its recorded stage.';

-- What operators look at first.
CREATE VIEW starpipe.job_status AS
SELECT job_id, client, table_name, snapshot_date, run_id, status, stage, row_count, rows_raw,
       rows_staged, rows_inserted, rows_updated, attempts, error, duplicate_of, data_key, updated_at,
       visible_at, schema_version, rows_rejected, rows_deduplicated, rows_deleted
  FROM starpipe.job;
COMMENT ON VIEW starpipe.job_status IS 'One line per job: where it stands and why.';
