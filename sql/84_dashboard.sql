-- starpipe: the dashboard's data. One read of the ledger that answers, for the worker's read-only web page, which
-- job is stuck or failing, where it stopped and why. Like trace and metrics it returns keys, counts, names, times
-- and errors (which cite row numbers), never a row value: no conflict or reject keys, no event details.

-- The ledger at a glance, as one JSON document: the last job of every client table (grid), the recent jobs' stage
-- timelines, the DLQ, drift awaiting review, rejects by rule, rows promoted per hour over the last p_hours hours, and
-- the promotion targets with their conflict key columns (the row-origin form's choices).
CREATE FUNCTION starpipe.dashboard(p_hours integer DEFAULT 24, p_recent integer DEFAULT 50)
RETURNS jsonb
LANGUAGE plpgsql STABLE
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
    v_now timestamptz := pg_catalog.now();
    v_grid jsonb;
    v_jobs jsonb;
    v_dlq jsonb;
    v_drift jsonb;
    v_rejects jsonb;
    v_throughput jsonb;
    v_statuses jsonb;
BEGIN
    -- Bounds first: the page asks for hours of throughput and a number of timelines, both small.
    IF p_hours IS NULL OR p_hours NOT BETWEEN 1 AND 24 * 31 OR p_recent IS NULL OR p_recent NOT BETWEEN 1 AND 1000 THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('dashboard takes 1 to 744 hours and 1 to 1000 recent jobs, not %s and %s',
                                                           p_hours, p_recent));
    END IF;
    -- The last registered job of each client table decides its cell: the newest snapshot is what production waits for.
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'client', g.client, 'table', g.table_name, 'job_id', g.job_id, 'status', g.status, 'stage', g.stage,
               'attempts', g.attempts, 'error', g.error, 'updated_at', g.updated_at,
               'age_seconds', pg_catalog.date_part('epoch', v_now - g.updated_at), 'jobs', g.jobs)
               ORDER BY g.client, g.table_name), '[]')
      INTO v_grid
      FROM (SELECT DISTINCT ON (j.client, j.table_name) j.client, j.table_name, j.job_id, j.status, j.stage, j.attempts,
                   j.error, j.updated_at,
                   pg_catalog.count(*) OVER (PARTITION BY j.client, j.table_name) AS jobs
              FROM starpipe.job j
             ORDER BY j.client, j.table_name, j.job_id DESC) g;
    -- Timelines: each event's status and stage with the span until the next one (open for an unfinished job).
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'job_id', r.job_id, 'client', r.client, 'table', r.table_name, 'status', r.status, 'stage', r.stage,
               'error', r.error, 'registered_at', r.registered_at, 'updated_at', r.updated_at,
               'events', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                  'event', e.event, 'status', s.status, 'stage', s.stage, 'at', s.at,
                                  'seconds', s.seconds, 'open', s.open) ORDER BY s.event_id), '[]')
                            FROM starpipe._job_spans(r.job_id) s
                            JOIN starpipe.job_event e ON e.event_id = s.event_id))
               ORDER BY r.job_id DESC), '[]')
      INTO v_jobs
      FROM (SELECT j.* FROM starpipe.job j ORDER BY j.job_id DESC LIMIT p_recent) r;
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'job_id', j.job_id, 'client', j.client, 'table', j.table_name, 'stage', j.stage, 'attempts', j.attempts,
               'error', j.error, 'died_at', j.updated_at) ORDER BY j.job_id), '[]')
      INTO v_dlq
      FROM starpipe.job j WHERE j.status = 'DEAD';
    -- Drift awaiting review: BLOCKED by transform's drift check (its last event is 'drift'); the diff names columns
    -- and types only.
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'job_id', j.job_id, 'client', j.client, 'table', j.table_name, 'schema_version', j.schema_version,
               'error', j.error, 'blocked_at', l.at, 'diff', s.diff) ORDER BY j.job_id), '[]')
      INTO v_drift
      FROM starpipe.job j
      JOIN LATERAL (SELECT e.event, e.at FROM starpipe.job_event e WHERE e.job_id = j.job_id
                     ORDER BY e.event_id DESC LIMIT 1) l ON l.event = 'drift'
      LEFT JOIN starpipe.schema_version s
             ON s.client = j.client AND s.table_name = j.table_name AND s.version = j.schema_version
     WHERE j.status = 'BLOCKED';
    -- Rejects are counted by rule and column; their rows (and any key of them) stay in starpipe.reject.
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'client', x.client, 'table', x.table_name, 'rule', x.rule, 'target_column', x.target_column,
               'sqlstate', x.sqlstate, 'rows', x.n, 'unresolved', x.unresolved, 'jobs', x.jobs)
               ORDER BY x.n DESC, x.client, x.table_name, x.rule, x.target_column), '[]')
      INTO v_rejects
      FROM (SELECT j.client, j.table_name, r.rule, r.target_column, r.sqlstate, pg_catalog.count(*) AS n,
                   pg_catalog.count(*) FILTER (WHERE r.resolved_at IS NULL) AS unresolved,
                   pg_catalog.count(DISTINCT r.job_id) AS jobs
              FROM starpipe.reject r JOIN starpipe.job j ON j.job_id = r.job_id
             GROUP BY j.client, j.table_name, r.rule, r.target_column, r.sqlstate) x;
    -- Every hour of the window appears, zeros included, so the plot's x axis is time and not the hours that had work.
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'hour', h.hour, 'rows', coalesce(p.n, 0), 'jobs', coalesce(p.jobs, 0)) ORDER BY h.hour)
      INTO v_throughput
      FROM pg_catalog.generate_series(pg_catalog.date_trunc('hour', v_now) - pg_catalog.make_interval(hours => p_hours - 1),
                                      pg_catalog.date_trunc('hour', v_now), '1 hour'::interval) h(hour)
      LEFT JOIN (SELECT pg_catalog.date_trunc('hour', x.at) AS hour, pg_catalog.sum(x.inserted + x.updated) AS n,
                        pg_catalog.count(*) AS jobs
                   FROM starpipe.promotion x
                  WHERE x.at >= pg_catalog.date_trunc('hour', v_now) - pg_catalog.make_interval(hours => p_hours - 1)
                  GROUP BY 1) p ON p.hour = h.hour;
    SELECT pg_catalog.jsonb_object_agg(s.status, (SELECT pg_catalog.count(*) FROM starpipe.job j WHERE j.status = s.status))
      INTO v_statuses
      FROM (VALUES ('PENDING'), ('PROCESSING'), ('SUCCESS'), ('FAILED'), ('DUPLICATE'), ('BLOCKED'), ('DEAD')) s(status);
    RETURN pg_catalog.jsonb_build_object(
        'generated_at', v_now, 'hours', p_hours, 'statuses', v_statuses, 'grid', v_grid, 'jobs', v_jobs,
        'dlq', v_dlq, 'drift', v_drift, 'rejects', v_rejects, 'throughput', v_throughput,
        -- The row-origin form's choices (starpipe.row_origin): table and key column names, never a value.
        'targets', starpipe._promotion_targets());
END;
$$;
COMMENT ON FUNCTION starpipe.dashboard(integer, integer) IS
    'The read-only dashboard''s data as JSON: last job per client table (status, stage, age, error), stage timelines of the p_recent newest jobs, the DLQ, drift awaiting review (with its diff), rejects by rule and column (counted), rows promoted per hour over p_hours hours, jobs per status, promotion targets with their conflict key columns. Never a row value.';
