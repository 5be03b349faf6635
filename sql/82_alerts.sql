-- starpipe: webhook alerts without Prometheus. The ledger decides what is worth an alert and remembers what was
-- sent, so several workers send each alert once; a worker posts them (starpipe worker --alert-webhook URL).
-- An alert names its job, client, table and reason (the job's error, which cites row numbers, never values).

-- One row per alert: queued by queue_alerts, held by one worker while it posts it, settled as sent or failed.
CREATE TABLE starpipe.alert (
    alert_key   text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('job_failed', 'job_dead', 'drift_blocked', 'dlq_buildup')),
    job_id      bigint NOT NULL REFERENCES starpipe.job (job_id),
    client      text NOT NULL,
    table_name  text NOT NULL,
    status      text NOT NULL,
    stage       text NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    held_until  timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    sent_at     timestamptz,
    last_error  text
);
CREATE INDEX alert_unsent ON starpipe.alert (created_at) WHERE sent_at IS NULL;
COMMENT ON TABLE starpipe.alert IS 'Webhook alerts: each FAILED or DEAD transition, each drift BLOCK, and DLQ build-up once an hour per client; sent once by whichever worker holds it.';
COMMENT ON COLUMN starpipe.alert.alert_key IS 'What makes a repeat the same alert: job:<job>:<event> for a transition, dlq:<client>:<hour> for DLQ build-up.';
COMMENT ON COLUMN starpipe.alert.attempts IS 'Times a worker held the alert to post it; claim_alerts stops offering it after 10.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.alert', '');

-- Queues the alerts that are due and not queued yet; returns how many it queued.
CREATE FUNCTION starpipe.queue_alerts(p_dlq_depth integer DEFAULT 3, p_window interval DEFAULT '1 day')
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_jobs integer;
    v_dlq integer;
BEGIN
    -- Transitions older than p_window are history, not news: a first start on an old ledger does not page anyone.
    INSERT INTO starpipe.alert (alert_key, kind, job_id, client, table_name, status, stage, reason)
    SELECT 'job:' || e.job_id || ':' || e.event_id,
           CASE WHEN e.event = 'drift' THEN 'drift_blocked' WHEN e.to_status = 'DEAD' THEN 'job_dead' ELSE 'job_failed' END,
           e.job_id, j.client, j.table_name, e.to_status, e.stage,
           coalesce(e.detail->>'error', j.error, e.event)
      FROM starpipe.job_event e JOIN starpipe.job j ON j.job_id = e.job_id
     WHERE e.at > pg_catalog.now() - p_window
       AND (e.to_status IN ('FAILED', 'DEAD') OR (e.to_status = 'BLOCKED' AND e.event = 'drift'))
    ON CONFLICT (alert_key) DO NOTHING;
    GET DIAGNOSTICS v_jobs = ROW_COUNT;
    -- DLQ build-up: a client with p_dlq_depth or more dead jobs, at most once an hour; named by its newest dead job.
    INSERT INTO starpipe.alert (alert_key, kind, job_id, client, table_name, status, stage, reason)
    SELECT 'dlq:' || d.client || ':' || pg_catalog.to_char(pg_catalog.date_trunc('hour', pg_catalog.now()), 'YYYYMMDDHH24'),
           'dlq_buildup', d.job_id, d.client, d.table_name, 'DEAD', d.stage,
           pg_catalog.format('%s jobs of the client are dead-lettered (threshold %s)', d.dead, p_dlq_depth)
      FROM (SELECT DISTINCT ON (j.client) j.client, j.job_id, j.table_name, j.stage,
                   pg_catalog.count(*) OVER (PARTITION BY j.client) AS dead
              FROM starpipe.job j WHERE j.status = 'DEAD'
             ORDER BY j.client, j.job_id DESC) d
     WHERE d.dead >= p_dlq_depth
    ON CONFLICT (alert_key) DO NOTHING;
    GET DIAGNOSTICS v_dlq = ROW_COUNT;
    RETURN v_jobs + v_dlq;
END;
$$;
COMMENT ON FUNCTION starpipe.queue_alerts(integer, interval) IS
    'Queues webhook alerts that are due: each FAILED or DEAD transition and drift BLOCK within p_window, and DLQ build-up (p_dlq_depth dead jobs of a client) once an hour; repeats are the same alert_key and queued once.';

-- Hands up to p_limit unsent alerts to the caller for p_hold, oldest first; another worker skips them meanwhile.
CREATE FUNCTION starpipe.claim_alerts(p_limit integer DEFAULT 20, p_hold interval DEFAULT '2 minutes')
RETURNS SETOF starpipe.alert
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- A worker that dies holding alerts lets them go when p_hold ends; an alert held 10 times is left for a human.
    UPDATE starpipe.alert a
       SET held_until = pg_catalog.now() + p_hold, attempts = a.attempts + 1
     WHERE a.alert_key IN (SELECT c.alert_key FROM starpipe.alert c
                            WHERE c.sent_at IS NULL AND c.attempts < 10
                              AND (c.held_until IS NULL OR c.held_until < pg_catalog.now())
                            ORDER BY c.created_at, c.alert_key
                            LIMIT p_limit
                            FOR UPDATE SKIP LOCKED)
    RETURNING a.*;
$$;
COMMENT ON FUNCTION starpipe.claim_alerts(integer, interval) IS
    'Holds up to p_limit unsent webhook alerts for the caller for p_hold (FOR UPDATE SKIP LOCKED), oldest first.';

-- Settles an alert the caller held: sent (p_error NULL), or not (p_error recorded; offered again after its hold).
CREATE FUNCTION starpipe.settle_alert(p_alert_key text, p_error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A second settle of a sent alert changes nothing: a lost reply and a retry do not undo the send.
    UPDATE starpipe.alert
       SET sent_at = CASE WHEN p_error IS NULL THEN pg_catalog.now() END,
           last_error = p_error
     WHERE alert_key = p_alert_key AND sent_at IS NULL;
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM starpipe.alert a WHERE a.alert_key = p_alert_key) THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('alert %s does not exist', p_alert_key));
    END IF;
END;
$$;
COMMENT ON FUNCTION starpipe.settle_alert(text, text) IS
    'Marks a held webhook alert sent (no error) or records why its post failed; it is offered again once its hold ends.';
