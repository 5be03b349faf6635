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
