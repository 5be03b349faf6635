-- starpipe: the production shape a job's staging table was built from, so a production DDL change made after the
-- job was transformed is found (validate blocks it, naming the change) and the job is re-staged by a command.

-- Per transformed job: the target and the shape of it that staging copied (mapped columns, CHECK constraints).
CREATE TABLE starpipe.staging_shape (
    job_id      bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    target      text NOT NULL,
    shape       jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE starpipe.staging_shape IS 'The production shape each job''s staging table was built from: mapped columns (type, NOT NULL) and CHECK constraints; validate compares it with the catalog.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.staging_shape', '');

-- What staging copies of a production table for a mapping: {columns: {name: "type [NOT NULL]"}, checks: {name: expr}}.
CREATE FUNCTION starpipe._production_shape(p_target regclass, p_map jsonb)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Read from the catalog exactly as _create_staging reads it; a mapped column that is gone has no entry.
    SELECT pg_catalog.jsonb_build_object(
        'columns', coalesce((SELECT pg_catalog.jsonb_object_agg(a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
                                                                 || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END)
                               FROM pg_catalog.pg_attribute a
                              WHERE a.attrelid = p_target AND a.attnum > 0 AND NOT a.attisdropped AND p_map->'columns' ? a.attname), '{}'),
        'checks', coalesce((SELECT pg_catalog.jsonb_object_agg(c.conname, c.expr) FROM starpipe._staging_checks(p_target, p_map) c), '{}'));
$$;

-- Records the shape a job's staging table is being built from.
CREATE FUNCTION starpipe._record_staging_shape(p_job_id bigint, p_target regclass, p_map jsonb)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO starpipe.staging_shape (job_id, target, shape) VALUES (p_job_id, p_target::text, starpipe._production_shape(p_target, p_map))
    ON CONFLICT (job_id) DO UPDATE SET target = EXCLUDED.target, shape = EXCLUDED.shape, recorded_at = pg_catalog.now();
$$;

-- A gate failure when production's shape is no longer the one the job's staging was built from, else NULL.
CREATE FUNCTION starpipe._shape_gate(p_job starpipe.job, p_map jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_recorded starpipe.staging_shape;
    v_target regclass;
    v_now jsonb;
    v_changes text[];
BEGIN
    -- A staging table built before a DDL change must never be promoted: the job is BLOCKED until it is re-staged.
    SELECT * INTO v_recorded FROM starpipe.staging_shape s WHERE s.job_id = p_job.job_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_target := pg_catalog.to_regclass(v_recorded.target);
    v_now := CASE WHEN v_target IS NULL THEN '{"columns": {}, "checks": {}}'::jsonb ELSE starpipe._production_shape(v_target, p_map) END;
    IF v_now = v_recorded.shape THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.array_agg(x ORDER BY x) INTO v_changes FROM (
        SELECT pg_catalog.format('%s %s %s', k.kind, k.name,
                                 CASE WHEN NOT (v_now->k.kind ? k.name) THEN 'removed'
                                      WHEN NOT (v_recorded.shape->k.kind ? k.name) THEN 'added' ELSE 'changed' END) AS x
          FROM (SELECT 'columns' AS kind, n AS name FROM pg_catalog.jsonb_object_keys(v_now->'columns') n
                UNION SELECT 'columns', n FROM pg_catalog.jsonb_object_keys(v_recorded.shape->'columns') n
                UNION SELECT 'checks', n FROM pg_catalog.jsonb_object_keys(v_now->'checks') n
                UNION SELECT 'checks', n FROM pg_catalog.jsonb_object_keys(v_recorded.shape->'checks') n) k
         WHERE v_now->k.kind->k.name IS DISTINCT FROM v_recorded.shape->k.kind->k.name) d;
    RETURN pg_catalog.jsonb_build_object('rule', 'production_changed', 'column', v_recorded.target,
        'changes', pg_catalog.to_jsonb(v_changes), 'staged_shape', v_recorded.shape, 'production_shape', v_now,
        'figures', pg_catalog.format('%s since the job was staged; re-stage it: SELECT starpipe.resync_staging(%s)',
                                     pg_catalog.array_to_string(v_changes, ', '), p_job.job_id));
END;
$$;

-- Re-stages a job blocked or failed after transform (a production DDL change): it is queued again at transform.
CREATE FUNCTION starpipe.resync_staging(p_job_id bigint)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_job starpipe.job;
BEGIN
    -- The next claim transforms it again: staging is rebuilt from the production catalog as it is now.
    v_job := starpipe._lock_job(p_job_id);
    IF v_job.status NOT IN ('BLOCKED', 'FAILED') OR v_job.stage NOT IN ('transformed', 'validated') THEN
        PERFORM starpipe._raise('SP001', pg_catalog.format('job %s is %s at stage %s; only a BLOCKED or FAILED job past transform is re-staged',
                                                           p_job_id, v_job.status, v_job.stage));
    END IF;
    v_job.stage := 'raw_loaded';
    RETURN starpipe._requeue(v_job, 'staging_resync');
END;
$$;
COMMENT ON FUNCTION starpipe.resync_staging(bigint) IS
    'Queues a BLOCKED or FAILED job past transform to be transformed again, so its staging table is rebuilt from production''s current shape.';

-- The production table a job's staging was built from (recorded at transform), or NULL.
CREATE FUNCTION starpipe._staging_target(p_job starpipe.job)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.to_regclass(s.target) FROM starpipe.staging_shape s WHERE s.job_id = p_job.job_id;
$$;
