-- The queue: settings, nack with exponential backoff, visibility, the dead-letter queue, leases, per-client claims.
-- LISTEN/NOTIFY is covered by the isolation spec enqueue_rollback (psql would print backend PIDs here).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS raw_acme, raw_beta CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse

-- Settings: documented defaults, typed overrides, NULL restores the default.
SELECT key, value, type, is_default FROM starpipe.settings ORDER BY key;
SELECT starpipe.set_setting('max_attempts', '3');
SELECT starpipe.set_setting('max_attempts', '0');
SELECT starpipe.set_setting('backoff_base', 'soon');
SELECT starpipe.set_setting('backoff_jitter', '1.5');
SELECT starpipe.set_setting('no_such_setting', '1');
SELECT starpipe.set_setting('backoff_jitter', '0');
SELECT starpipe.set_setting('raw_keep_promoted_versions', '2');
SELECT starpipe.set_setting('raw_keep_promoted_versions', NULL);
SELECT key, value, default_value FROM starpipe.settings WHERE NOT is_default ORDER BY key;

-- Registers an empty file of one column for a client table; returns the job id.
CREATE FUNCTION pg_temp.job(p_client text, p_table text, p_run text, p_date text) RETURNS bigint LANGUAGE sql AS $$
    SELECT job_id FROM starpipe.register(pg_temp.manifest(p_client, p_table, p_date, p_run,
        '[{"name": "id", "type": "integer", "nullable": false}]', '[]',
        pg_catalog.jsonb_build_object('byte_count', 0, 'sha256', pg_catalog.encode(pg_catalog.sha256((p_client || p_table || p_run)::bytea), 'hex'))),
      'm/' || p_run, 'd/' || p_run);
$$;
SELECT pg_temp.job('acme', 'visits', 'r1', '2026-11-01') AS job;

-- 1. nack: PENDING again, invisible for base * 2^(attempts - 1), the error kept on the job.
SELECT job_id, attempts, fence FROM starpipe.claim('w1');
SELECT starpipe.nack(1, 1, 'bucket read timed out');
SELECT status, stage, attempts, error, visible_at > now() AS delayed, lease_until IS NULL AS no_lease FROM starpipe.job WHERE job_id = 1;
SELECT count(*) AS claimed_while_delayed FROM starpipe.claim('w1');
SELECT starpipe.next_claimable_at() > now() AS wakes_up_later;
UPDATE starpipe.job SET visible_at = now() WHERE job_id = 1;  -- the backoff has passed
SELECT job_id, attempts, fence FROM starpipe.claim('w1');
SELECT error IS NULL AS error_cleared_by_claim FROM starpipe.job WHERE job_id = 1;
-- A stale fence cannot nack; once nacked, the job is no longer held under its token.
SELECT starpipe.nack(1, 1, 'late');
SELECT starpipe.nack(1, 2, 'bucket read timed out');
SELECT starpipe.nack(1, 2, 'again');
SELECT starpipe.fail(1, 2, 'too late');
SELECT starpipe.heartbeat(1, 2);
UPDATE starpipe.job SET visible_at = now() WHERE job_id = 1;
SELECT job_id, attempts, fence FROM starpipe.claim('w1');
-- 2. The third claim was the last allowed (max_attempts = 3): this nack sends the job to the DLQ.
SELECT starpipe.nack(1, 3, 'bucket read timed out');
SELECT status, attempts, error FROM starpipe.job WHERE job_id = 1;
SELECT event, detail->>'delay_seconds' AS delay_seconds, detail->>'error' AS error FROM starpipe.job_event WHERE job_id = 1 AND event IN ('nack', 'dead') ORDER BY event_id;
SELECT job_id, client, table_name, snapshot_date, stage, attempts, last_error, died_at IS NOT NULL AS died FROM starpipe.dlq_list();
SELECT event, from_status, to_status, fence, detail->>'worker' AS worker FROM starpipe.dlq_inspect(1);
SELECT starpipe.dlq_inspect(999);
SELECT count(*) AS claimed_dead FROM starpipe.claim('w1');

-- 3. Replay: PENDING with attempts reset, claimable at once; only DEAD jobs can be replayed.
SELECT starpipe.dlq_replay(1);
SELECT status, attempts, visible_at IS NULL AS visible FROM starpipe.job WHERE job_id = 1;
SELECT starpipe.dlq_replay(1);
SELECT job_id, attempts FROM starpipe.claim('w1');
SELECT count(*) AS dead FROM starpipe.dlq_list();

-- 4. The delay is capped by backoff_max.
SELECT starpipe.set_setting('backoff_max', '15 seconds');
SELECT starpipe.nack(1, 4, 'blip');
UPDATE starpipe.job SET visible_at = now() WHERE job_id = 1;
SELECT job_id, attempts FROM starpipe.claim('w1');
SELECT starpipe.nack(1, 5, 'blip');
SELECT detail->>'delay_seconds' AS delay_seconds FROM starpipe.job_event WHERE job_id = 1 AND event = 'nack' ORDER BY event_id DESC LIMIT 2;

-- 5. A lease that runs out (worker killed) makes the job claimable again under a new fence; the old holder is fenced out.
SELECT starpipe.set_setting('max_attempts', '4');
UPDATE starpipe.job SET visible_at = now() WHERE job_id = 1;
SELECT job_id, attempts, fence FROM starpipe.claim('w1');
UPDATE starpipe.job SET lease_until = now() - interval '1 second' WHERE job_id = 1;  -- w1 died
SELECT job_id, attempts, fence, worker FROM starpipe.claim('w2');
SELECT starpipe.heartbeat(1, 6);
SELECT starpipe.heartbeat(1, 7) > now() AS renewed;
-- 6. A job whose last allowed delivery expires too is dead-lettered by the next claim, not redelivered.
UPDATE starpipe.job SET lease_until = now() - interval '1 second' WHERE job_id = 1;  -- w2 died as well
SELECT count(*) AS claimed FROM starpipe.claim('w3');
SELECT status, attempts, error FROM starpipe.job WHERE job_id = 1;

-- 7. Retry (of a DEAD or FAILED job) also starts a fresh series of attempts.
SELECT starpipe.retry(1);
SELECT job_id, attempts, fence FROM starpipe.claim('w1');
SELECT starpipe.fail(1, 8, 'bad file');
SELECT starpipe.retry(1);
SELECT status, attempts FROM starpipe.job WHERE job_id = 1;
SELECT event, detail->>'previous_attempts' AS previous_attempts FROM starpipe.job_event WHERE job_id = 1 AND event IN ('retry', 'replay') ORDER BY event_id;

-- 8. The same content registered again while the first copy is in flight is a DUPLICATE of it; when the first
--    copy fails (a damaged upload, say), the duplicate is revived in its place and loads.
SELECT job_id, attempts, fence FROM starpipe.claim('w1');
SELECT job_id, status, created FROM starpipe.register((SELECT manifest || '{"run_id": "r1-again"}' FROM starpipe.job WHERE job_id = 1), 'm/again', 'd/again');
SELECT job_id, status, duplicate_of FROM starpipe.job WHERE job_id = 2;
SELECT starpipe.fail(1, 9, 'bad file');
SELECT job_id, status, stage, duplicate_of, attempts FROM starpipe.job ORDER BY job_id;
SELECT event, from_status, to_status, detail->>'reason' AS reason FROM starpipe.job_event WHERE job_id = 2 ORDER BY event_id;

-- 9. One PROCESSING job per client: a second claim skips the client's other tables and takes another client.
SELECT pg_temp.job('acme', 'notes', 'n1', '2026-11-01') AS job, pg_temp.job('beta', 'visits', 'b1', '2026-11-02') AS job;
SELECT job_id, client, table_name FROM starpipe.claim('w1');
SELECT job_id, client, table_name FROM starpipe.claim('w2');
SELECT count(*) AS claimed FROM starpipe.claim('w3');
SELECT client, count(*) FROM starpipe.job WHERE status = 'PROCESSING' GROUP BY client ORDER BY client;

-- 10. release: a job given back untried (shutdown, lock contention) is claimable at once and the claim is not counted.
SELECT job_id, attempts, fence FROM starpipe.job WHERE job_id = 2;
SELECT starpipe.release(2, 10);
SELECT status, attempts, visible_at IS NULL AS visible, lease_until IS NULL AS no_lease FROM starpipe.job WHERE job_id = 2;
SELECT starpipe.release(2, 10);
SELECT job_id, attempts, fence FROM starpipe.claim('w3');

-- 11. Jitter removes a random share of the delay, never adds to it.
SELECT starpipe.set_setting('backoff_jitter', '0.5');
SELECT starpipe.nack(job_id, fence, 'blip') FROM starpipe.job WHERE job_id = 2;
SELECT (detail->>'delay_seconds')::numeric BETWEEN 5 AND 10 AS within_bounds FROM starpipe.job_event WHERE job_id = 2 AND event = 'nack';
