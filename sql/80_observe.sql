-- starpipe: observability. What an on-call engineer asks of the ledger (which job is stuck or failing, where it
-- stopped and why), answered from the ledger alone, so every worker and every CLI call sees the same answer.
-- Nothing here returns a row value: keys, counts, names, times and errors (which cite row numbers) only.

-- Time a job spent in each (status, stage) it passed through: the span from each event to the next one, and for an
-- unfinished job (PENDING, PROCESSING, BLOCKED) the span from its last event to now.
CREATE FUNCTION starpipe._job_spans(p_job_id bigint)
RETURNS TABLE (event_id bigint, at timestamptz, status text, stage text, seconds double precision, open boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.event_id, e.at, e.to_status, e.stage,
           pg_catalog.date_part('epoch', coalesce(pg_catalog.lead(e.at) OVER w,
                CASE WHEN j.status = ANY (starpipe._unfinished_statuses()) THEN pg_catalog.clock_timestamp() END) - e.at),
           pg_catalog.lead(e.at) OVER w IS NULL AND j.status = ANY (starpipe._unfinished_statuses())
      FROM starpipe.job_event e
      JOIN starpipe.job j ON j.job_id = e.job_id
     WHERE e.job_id = p_job_id
    WINDOW w AS (ORDER BY e.event_id);
$$;

-- One job through every stage, as one JSON document: bucket keys and manifest, schema version and drift diff,
-- mapping version, row counts per stage, rejects by rule, the promotion audit, and every event with its span.
CREATE FUNCTION starpipe.trace(p_job_id bigint)
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
    v_job starpipe.job;
    v_schema jsonb;
    v_mapping jsonb;
    v_promotion jsonb;
    v_rejects jsonb;
    v_events jsonb;
    v_spans jsonb;
BEGIN
    -- The manifest is kept whole except values it never has (it describes the file: names, types, counts, digest).
    SELECT * INTO v_job FROM starpipe.job j WHERE j.job_id = p_job_id;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('job %s does not exist', p_job_id));
    END IF;
    SELECT pg_catalog.jsonb_build_object(
               'version', s.version, 'fingerprint', s.fingerprint, 'first_job', s.first_job, 'recorded_at', s.recorded_at,
               'accepted_at', s.accepted_at, 'accepted_by', s.accepted_by, 'diff', s.diff,
               'drift', s.diff IS NOT NULL, 'new_with_this_job', s.first_job = v_job.job_id)
      INTO v_schema
      FROM starpipe.schema_version s
     WHERE s.client = v_job.client AND s.table_name = v_job.table_name AND s.version = v_job.schema_version;
    SELECT pg_catalog.jsonb_build_object('version', m.version, 'applied_at', m.applied_at, 'applied_by', m.applied_by,
                                         'target_schema', m.config->>'target_schema',
                                         'target', m.config->'tables'->v_job.table_name->>'target',
                                         'promotion', coalesce(m.config->'tables'->v_job.table_name->>'promotion', 'auto'))
      INTO v_mapping
      FROM starpipe.mapping m
     WHERE m.client = v_job.client AND m.version = v_job.mapping_version;
    -- Conflicts are counted, never shown: their before/after values may be PHI.
    SELECT pg_catalog.jsonb_build_object(
               'target', p.target, 'policy', p.policy, 'mode', p.mode, 'mapping_version', p.mapping_version,
               'fence', p.fence, 'actor', p.actor, 'manual', p.manual, 'at', p.at, 'staged', p.staged,
               'inserted', p.inserted, 'updated', p.updated, 'unchanged', p.unchanged, 'kept', p.kept,
               'deleted', p.deleted, 'skipped', p.skipped, 'column_policies', p.column_policies, 'deletes', p.deletes,
               'staged_digest', p.staged_digest, 'promoted_digest', p.promoted_digest,
               'conflicts', (SELECT pg_catalog.count(*) FROM starpipe.conflict c WHERE c.job_id = p.job_id),
               'conflicts_applied', (SELECT pg_catalog.count(*) FROM starpipe.conflict c WHERE c.job_id = p.job_id AND c.applied))
      INTO v_promotion
      FROM starpipe.promotion p
     WHERE p.job_id = v_job.job_id;
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'rule', r.rule, 'target_column', r.target_column, 'sqlstate', r.sqlstate, 'rows', r.n,
               'unresolved', r.unresolved, 'first_source_row', r.first_row) ORDER BY r.rule, r.target_column), '[]')
      INTO v_rejects
      FROM (SELECT x.rule, x.target_column, x.sqlstate, pg_catalog.count(*) AS n,
                   pg_catalog.count(*) FILTER (WHERE x.resolved_at IS NULL) AS unresolved, pg_catalog.min(x.source_row) AS first_row
              FROM starpipe.reject x WHERE x.job_id = v_job.job_id
             GROUP BY x.rule, x.target_column, x.sqlstate) r;
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'event_id', e.event_id, 'at', e.at, 'event', e.event, 'from_status', e.from_status, 'to_status', e.to_status,
               'stage', e.stage, 'actor', e.actor, 'fence', e.fence, 'detail', e.detail, 'seconds', s.seconds,
               'open', s.open) ORDER BY e.event_id), '[]')
      INTO v_events
      FROM starpipe.job_event e
      JOIN starpipe._job_spans(v_job.job_id) s ON s.event_id = e.event_id;
    -- Spans of the same (status, stage) add up: a job nacked and reclaimed at one stage spent both spans there.
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'status', t.status, 'stage', t.stage, 'seconds', t.seconds, 'open', t.open) ORDER BY t.first_event), '[]')
      INTO v_spans
      FROM (SELECT s.status, s.stage, pg_catalog.sum(s.seconds) AS seconds, pg_catalog.bool_or(s.open) AS open,
                   pg_catalog.min(s.event_id) AS first_event
              FROM starpipe._job_spans(v_job.job_id) s WHERE s.seconds IS NOT NULL
             GROUP BY s.status, s.stage) t;
    RETURN pg_catalog.jsonb_build_object(
        'job_id', v_job.job_id, 'client', v_job.client, 'table', v_job.table_name, 'snapshot_date', v_job.snapshot_date,
        'run_id', v_job.run_id, 'status', v_job.status, 'stage', v_job.stage, 'attempts', v_job.attempts,
        'max_attempts', starpipe._setting_value('max_attempts')::integer, 'worker', v_job.worker, 'fence', v_job.fence,
        'lease_until', v_job.lease_until, 'visible_at', v_job.visible_at, 'duplicate_of', v_job.duplicate_of,
        'error', v_job.error, 'error_detail', v_job.error_detail,
        'registered_at', v_job.registered_at, 'updated_at', v_job.updated_at,
        'bucket', pg_catalog.jsonb_build_object('manifest_key', v_job.manifest_key, 'data_key', v_job.data_key),
        'manifest', v_job.manifest,
        'schema', v_schema,
        'mapping', v_mapping,
        'rows', pg_catalog.jsonb_build_object(
            'manifest', v_job.row_count, 'raw', v_job.rows_raw, 'staged', v_job.rows_staged,
            'rejected', v_job.rows_rejected, 'deduplicated', v_job.rows_deduplicated,
            'inserted', v_job.rows_inserted, 'updated', v_job.rows_updated, 'deleted', v_job.rows_deleted,
            'promoted', CASE WHEN v_job.rows_inserted IS NULL THEN NULL
                             ELSE v_job.rows_inserted + coalesce(v_job.rows_updated, 0) END),
        'rejects', v_rejects,
        'promotion', v_promotion,
        'events', v_events,
        'time_in_stage', v_spans,
        'elapsed_seconds', (SELECT pg_catalog.sum(s.seconds) FROM starpipe._job_spans(v_job.job_id) s));
END;
$$;
COMMENT ON FUNCTION starpipe.trace(bigint) IS
    'One job through every stage as JSON: bucket keys, manifest, schema version and drift diff, mapping version, rows per stage, rejects by rule, promotion audit (conflicts counted, never shown), events with their spans and time per status and stage.';

-- The ledger's gauges, one row per sample: computed in one statement from the ledger, so every worker that serves
-- them (and any scrape of any of them) reports the same values. Names and labels are Prometheus's; labels hold
-- client and table names, statuses and stages, never a value of a row.
CREATE FUNCTION starpipe.metrics()
RETURNS TABLE (name text, help text, labels jsonb, value double precision)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- Every status appears for every client table with a job, zero included, so rates and absences can be alerted on.
    WITH tables AS (
        SELECT j.client, j.table_name, pg_catalog.jsonb_build_object('client', j.client, 'table', j.table_name) AS labels,
               pg_catalog.count(*) FILTER (WHERE j.status = 'PENDING') AS pending,
               pg_catalog.count(*) FILTER (WHERE j.status = 'DEAD') AS dead
          FROM starpipe.job j GROUP BY j.client, j.table_name),
    statuses(status) AS (VALUES ('PENDING'), ('PROCESSING'), ('SUCCESS'), ('FAILED'), ('DUPLICATE'), ('BLOCKED'), ('DEAD')),
    last_event AS (
        SELECT DISTINCT ON (e.job_id) e.job_id, e.at, e.event FROM starpipe.job_event e
          JOIN starpipe.job j ON j.job_id = e.job_id
         WHERE j.status IN ('PENDING', 'PROCESSING', 'BLOCKED')
         ORDER BY e.job_id, e.event_id DESC),
    claimable AS (
        SELECT coalesce(j.visible_at, l.at) AS since
          FROM starpipe.job j LEFT JOIN last_event l ON l.job_id = j.job_id
         WHERE j.status = 'PENDING' AND (j.visible_at IS NULL OR j.visible_at <= pg_catalog.now())
            OR j.status = 'PROCESSING' AND j.lease_until < pg_catalog.now())
    SELECT 'starpipe_jobs', 'Jobs in the ledger by client, table and status.', t.labels || pg_catalog.jsonb_build_object('status', s.status),
           (SELECT pg_catalog.count(*) FROM starpipe.job j
             WHERE j.client = t.client AND j.table_name = t.table_name AND j.status = s.status)::double precision
      FROM tables t CROSS JOIN statuses s
    UNION ALL
    SELECT 'starpipe_rows', 'Rows of the ledger''s jobs by stage: raw, staged, rejected, deduplicated, promoted (inserted + updated).',
           pg_catalog.jsonb_build_object('client', j.client, 'table', j.table_name, 'stage', r.stage),
           coalesce(pg_catalog.sum(r.n), 0)::double precision
      FROM starpipe.job j
     CROSS JOIN LATERAL (VALUES ('raw', j.rows_raw), ('staged', j.rows_staged), ('rejected', j.rows_rejected),
                                ('deduplicated', j.rows_deduplicated),
                                ('promoted', CASE WHEN j.stage = 'promoted' THEN coalesce(j.rows_inserted, 0) + coalesce(j.rows_updated, 0) END)) r(stage, n)
     GROUP BY j.client, j.table_name, r.stage
    UNION ALL
    SELECT 'starpipe_queue_depth', 'PENDING jobs (waiting, or backing off after a nack).', t.labels, t.pending::double precision
      FROM tables t
    UNION ALL
    SELECT 'starpipe_dlq_depth', 'Dead-lettered jobs (status DEAD).', t.labels, t.dead::double precision
      FROM tables t
    UNION ALL
    SELECT 'starpipe_oldest_claimable_age_seconds',
           'Seconds since the oldest job claimable now (PENDING and visible, or PROCESSING with an expired lease) became claimable; 0 when none.',
           '{}'::jsonb,
           coalesce(pg_catalog.date_part('epoch', pg_catalog.now() - (SELECT pg_catalog.min(c.since) FROM claimable c)), 0)
    UNION ALL
    SELECT 'starpipe_retries_total', 'Nacks recorded in the ledger (a job given back to the queue after a transient failure).',
           t.labels,
           (SELECT pg_catalog.count(*) FROM starpipe.job_event e JOIN starpipe.job j ON j.job_id = e.job_id
             WHERE j.client = t.client AND j.table_name = t.table_name AND e.event = 'nack')::double precision
      FROM tables t
    UNION ALL
    SELECT 'starpipe_drift_events_total', 'Schema versions with a diff against the version before them (drift) in the registry.',
           pg_catalog.jsonb_build_object('client', s.client, 'table', s.table_name),
           (pg_catalog.count(*) FILTER (WHERE s.diff IS NOT NULL))::double precision
      FROM starpipe.schema_version s GROUP BY s.client, s.table_name
    UNION ALL
    SELECT 'starpipe_drift_awaiting_review', 'BLOCKED jobs held by schema drift until a human accepts it (starpipe.accept_schema).',
           t.labels,
           (SELECT pg_catalog.count(*) FROM starpipe.job j JOIN last_event l ON l.job_id = j.job_id
             WHERE j.client = t.client AND j.table_name = t.table_name AND j.status = 'BLOCKED' AND l.event = 'drift')::double precision
      FROM tables t
    UNION ALL
    SELECT 'starpipe_last_promotion_timestamp_seconds', 'Unix time of the last successful promotion of the client table.',
           pg_catalog.jsonb_build_object('client', j.client, 'table', j.table_name), pg_catalog.date_part('epoch', pg_catalog.max(p.at))
      FROM starpipe.promotion p JOIN starpipe.job j ON j.job_id = p.job_id
     GROUP BY j.client, j.table_name
    UNION ALL
    -- Where /metrics stops on row origin: it points at the job that last wrote each client table (its bucket files
    -- are in starpipe trace JOB); a row's own job and source row need its key, which no label may carry.
    SELECT r.name, r.help, pg_catalog.jsonb_build_object('client', l.client, 'table', l.table_name), r.value
      FROM (SELECT DISTINCT ON (j.client, j.table_name) j.client, j.table_name, p.job_id, p.inserted + p.updated AS written
              FROM starpipe.promotion p JOIN starpipe.job j ON j.job_id = p.job_id
             ORDER BY j.client, j.table_name, p.at DESC, p.job_id DESC) l
     CROSS JOIN LATERAL (VALUES
         ('starpipe_last_promotion_job_id',
          'Job id of the last successful promotion of the client table (starpipe trace JOB names its bucket files and source rows).',
          l.job_id::double precision),
         ('starpipe_last_promotion_rows', 'Rows the last successful promotion of the client table inserted or updated.',
          l.written::double precision)) r(name, help, value)
    UNION ALL
    -- Since the last event or the last progress a heartbeat reported, whichever is later: a long raw load whose
    -- bytes keep moving is not stuck, however many leases it renews; one whose figure stands still is.
    SELECT 'starpipe_stage_age_seconds', 'Seconds the longest-stalled PROCESSING job of the client table has been at its current stage without progress (since its last event, or the last change of the progress its heartbeats report).',
           pg_catalog.jsonb_build_object('client', j.client, 'table', j.table_name, 'stage', j.stage),
           pg_catalog.max(pg_catalog.date_part('epoch', pg_catalog.now() - GREATEST(l.at, j.progress_at)))
      FROM starpipe.job j JOIN last_event l ON l.job_id = j.job_id
     WHERE j.status = 'PROCESSING'
     GROUP BY j.client, j.table_name, j.stage;
$$;
COMMENT ON FUNCTION starpipe.metrics() IS
    'The ledger''s gauges for /metrics, one row per sample (name, help, labels, value): jobs by status, rows by stage, queue and DLQ depth, oldest claimable age, retries, drift, last promotion time, job and rows, stage age. Equal for every worker.';
