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
    CONSTRAINT job_key UNIQUE (client, table_name, snapshot_date, run_id)
);
COMMENT ON TABLE starpipe.job IS 'The job ledger: one row per registered data file, with its status and stage.';

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
    actor       text NOT NULL DEFAULT CURRENT_USER,
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

-- Raises SP002 unless p_fence is the job's current fencing token.
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
    UPDATE starpipe.job
       SET status = p_to,
           stage = p_stage,
           error = CASE WHEN p_to IN ('FAILED', 'BLOCKED', 'DEAD') THEN p_error ELSE NULL END,
           error_detail = CASE WHEN p_to IN ('FAILED', 'BLOCKED', 'DEAD') THEN p_detail ELSE NULL END,
           lease_until = CASE WHEN p_to = 'PROCESSING' THEN lease_until ELSE NULL END,
           updated_at = pg_catalog.now()
     WHERE job_id = p_job.job_id;
    INSERT INTO starpipe.job_event (job_id, fence, from_status, to_status, stage, event, detail)
    VALUES (p_job.job_id, p_job.fence, p_job.status, p_to, p_stage, p_event,
            CASE WHEN p_error IS NULL THEN p_detail
                 ELSE coalesce(p_detail, '{}'::jsonb) || pg_catalog.jsonb_build_object('error', p_error) END);
END;
$$;

-- Fails (or blocks) a job the caller holds, recording the reason.
CREATE FUNCTION starpipe.fail(p_job_id bigint, p_fence bigint, p_error text, p_detail jsonb DEFAULT NULL, p_status text DEFAULT 'FAILED')
RETURNS text
LANGUAGE plpgsql
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

-- Puts a FAILED, BLOCKED or DEAD job back in the queue, keeping its progress.
CREATE FUNCTION starpipe.retry(p_job_id bigint)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- A human's decision: the next claim resumes from the recorded stage.
    v_job := starpipe._lock_job(p_job_id);
    IF v_job.status NOT IN ('FAILED', 'BLOCKED', 'DEAD') THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s; only FAILED, BLOCKED or DEAD jobs can be retried', p_job_id, v_job.status));
    END IF;
    PERFORM starpipe._transition(v_job, 'PENDING', v_job.stage, 'retry');
    PERFORM pg_catalog.pg_notify('starpipe_job', v_job.client);
    RETURN 'PENDING';
END;
$$;
COMMENT ON FUNCTION starpipe.retry(bigint) IS 'Requeues a FAILED, BLOCKED or DEAD job; it resumes from its recorded stage.';

-- What operators look at first.
CREATE VIEW starpipe.job_status AS
SELECT job_id, client, table_name, snapshot_date, run_id, status, stage, row_count, rows_raw,
       rows_staged, rows_inserted, rows_updated, attempts, error, duplicate_of, data_key, updated_at
  FROM starpipe.job;
COMMENT ON VIEW starpipe.job_status IS 'One line per job: where it stands and why.';
