-- starpipe: the schema registry: every distinct source schema of a client table, and how it changed.

-- One row per distinct schema (fingerprint) a client table was sent with.
CREATE TABLE starpipe.schema_version (
    client          text NOT NULL,
    table_name      text NOT NULL,
    version         integer NOT NULL,
    columns         jsonb NOT NULL,
    primary_key     jsonb NOT NULL,
    fingerprint     text NOT NULL,
    first_job       bigint NOT NULL REFERENCES starpipe.job (job_id),
    diff            jsonb,
    mapping_version integer,
    recorded_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    accepted_at     timestamptz,
    accepted_by     text,
    mapping_columns jsonb,
    PRIMARY KEY (client, table_name, version),
    UNIQUE (client, table_name, fingerprint)
);
COMMENT ON TABLE starpipe.schema_version IS 'Schema registry: each distinct source schema of a client table, with its diff against the version before it.';
COMMENT ON COLUMN starpipe.schema_version.columns IS 'Source columns in order: [{name, type, nullable, position[, source_type]}] as the manifest gave them.';
COMMENT ON COLUMN starpipe.schema_version.fingerprint IS 'sha256 of the columns (order, names, types, nullability) and primary key.';
COMMENT ON COLUMN starpipe.schema_version.diff IS 'Against the previous version: added, removed, retyped, nullability, rename_candidates, primary_key; NULL for version 1.';
COMMENT ON COLUMN starpipe.schema_version.mapping_version IS 'The client''s mapping version when this schema was first seen.';
COMMENT ON COLUMN starpipe.schema_version.mapping_columns IS 'The table''s mapped column specs when this schema was first seen (NULL: no mapping); a retyped column is covered once the specs mapped from it differ.';
COMMENT ON COLUMN starpipe.schema_version.accepted_at IS 'Set by starpipe.accept_schema: drift of mapped columns in this version no longer blocks jobs.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.schema_version', '');

-- The type category (pg_type.typcategory) of a manifest type, for rename candidates.
CREATE FUNCTION starpipe._type_category(p_source_type text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.typcategory::text FROM pg_catalog.pg_type t WHERE t.oid = starpipe._raw_type(p_source_type)::regtype;
$$;

-- What changed between two schemas (columns as in schema_version.columns, primary keys as JSON arrays).
CREATE FUNCTION starpipe._schema_diff(p_old_columns jsonb, p_old_key jsonb, p_new_columns jsonb, p_new_key jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_added jsonb;
    v_removed jsonb;
    v_gone jsonb;
    v_match jsonb;
    v_renames jsonb := '[]';
    v_taken text[] := '{}';
BEGIN
    -- Columns are matched by exact name; a rename shows as removed + added, and is then offered as a candidate.
    SELECT coalesce(pg_catalog.jsonb_agg(n ORDER BY (n->>'position')::int), '[]') INTO v_added
      FROM pg_catalog.jsonb_array_elements(p_new_columns) n
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_old_columns) o WHERE o->>'name' = n->>'name');
    SELECT coalesce(pg_catalog.jsonb_agg(o ORDER BY (o->>'position')::int), '[]') INTO v_removed
      FROM pg_catalog.jsonb_array_elements(p_old_columns) o
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_new_columns) n WHERE n->>'name' = o->>'name');
    -- Rename candidate: a removed and an added column of the same type category, at most two positions apart.
    FOR v_gone IN SELECT r FROM pg_catalog.jsonb_array_elements(v_removed) r ORDER BY (r->>'position')::int LOOP
        SELECT a INTO v_match FROM pg_catalog.jsonb_array_elements(v_added) a
         WHERE NOT (a->>'name' = ANY (v_taken))
           AND starpipe._type_category(a->>'type') = starpipe._type_category(v_gone->>'type')
           AND pg_catalog.abs((a->>'position')::int - (v_gone->>'position')::int) <= 2
         ORDER BY pg_catalog.abs((a->>'position')::int - (v_gone->>'position')::int), (a->>'position')::int
         LIMIT 1;
        IF FOUND THEN
            v_taken := v_taken || (v_match->>'name');
            v_renames := v_renames || pg_catalog.jsonb_build_object('from', v_gone->>'name', 'to', v_match->>'name');
        END IF;
    END LOOP;
    RETURN pg_catalog.jsonb_build_object(
        'added', (SELECT coalesce(pg_catalog.jsonb_agg(a->>'name' ORDER BY (a->>'position')::int), '[]')
                    FROM pg_catalog.jsonb_array_elements(v_added) a),
        'removed', (SELECT coalesce(pg_catalog.jsonb_agg(r->>'name' ORDER BY (r->>'position')::int), '[]')
                      FROM pg_catalog.jsonb_array_elements(v_removed) r),
        'retyped', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', n->>'name', 'from', o->>'type', 'to', n->>'type')
                                                          ORDER BY (n->>'position')::int), '[]')
                      FROM pg_catalog.jsonb_array_elements(p_new_columns) n
                      JOIN pg_catalog.jsonb_array_elements(p_old_columns) o ON o->>'name' = n->>'name'
                     WHERE o->>'type' IS DISTINCT FROM n->>'type'
                       -- A domain sent by its name before 0.3.0 and by its base type since (source_type naming it).
                       AND o->>'type' IS DISTINCT FROM n->>'source_type'),
        'nullability', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', n->>'name', 'from', o->'nullable', 'to', n->'nullable')
                                                              ORDER BY (n->>'position')::int), '[]')
                          FROM pg_catalog.jsonb_array_elements(p_new_columns) n
                          JOIN pg_catalog.jsonb_array_elements(p_old_columns) o ON o->>'name' = n->>'name'
                         WHERE o->'nullable' IS DISTINCT FROM n->'nullable'),
        'rename_candidates', v_renames,
        'primary_key', CASE WHEN p_old_key IS DISTINCT FROM p_new_key
                            THEN pg_catalog.jsonb_build_object('from', p_old_key, 'to', p_new_key) END);
END;
$$;

-- Records the schema of a job's manifest in the registry; returns {schema_version, schema_new[, schema_diff]}.
CREATE FUNCTION starpipe._record_schema(p_job starpipe.job)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns jsonb;
    v_key jsonb := coalesce(p_job.manifest->'primary_key', '[]');
    v_fingerprint text;
    v_known starpipe.schema_version;
    v_prev starpipe.schema_version;
    v_diff jsonb;
    v_version integer;
BEGIN
    -- A schema seen before (same fingerprint) keeps its version; a new one is diffed against the latest version.
    -- source_type (a domain's name) is kept only when the manifest has it, so other schemas keep their fingerprint.
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('name', c->>'name', 'type', c->>'type',
                                                               'nullable', c->'nullable', 'position', n)
                                || CASE WHEN c ? 'source_type' THEN pg_catalog.jsonb_build_object('source_type', c->>'source_type')
                                        ELSE '{}'::jsonb END ORDER BY n)
      INTO v_columns
      FROM pg_catalog.jsonb_array_elements(p_job.manifest->'columns') WITH ORDINALITY AS x(c, n);
    v_fingerprint := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.jsonb_build_object('columns', v_columns, 'primary_key', v_key)::text, 'UTF8')), 'hex');
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.schema'),
                                             pg_catalog.hashtext(p_job.client || '.' || p_job.table_name));
    SELECT * INTO v_known FROM starpipe.schema_version s
     WHERE s.client = p_job.client AND s.table_name = p_job.table_name AND s.fingerprint = v_fingerprint;
    IF FOUND THEN
        RETURN pg_catalog.jsonb_build_object('schema_version', v_known.version, 'schema_new', false);
    END IF;
    SELECT * INTO v_prev FROM starpipe.schema_version s
     WHERE s.client = p_job.client AND s.table_name = p_job.table_name
     ORDER BY s.version DESC LIMIT 1;
    IF FOUND THEN
        v_diff := pg_catalog.jsonb_build_object('from_version', v_prev.version, 'to_version', v_prev.version + 1)
                  || starpipe._schema_diff(v_prev.columns, v_prev.primary_key, v_columns, v_key);
    END IF;
    v_version := coalesce(v_prev.version, 0) + 1;
    INSERT INTO starpipe.schema_version (client, table_name, version, columns, primary_key, fingerprint, first_job, diff,
                                         mapping_version, mapping_columns)
    SELECT p_job.client, p_job.table_name, v_version, v_columns, v_key, v_fingerprint, p_job.job_id, v_diff,
           m.version, m.config->'tables'->p_job.table_name->'columns'
      FROM (SELECT NULL) AS one
      LEFT JOIN LATERAL (SELECT l.version, l.config FROM starpipe.mapping l WHERE l.client = p_job.client
                          ORDER BY l.version DESC LIMIT 1) m ON true;
    RETURN pg_catalog.jsonb_build_object('schema_version', v_version, 'schema_new', true)
           || CASE WHEN v_diff IS NULL THEN '{}'::jsonb ELSE pg_catalog.jsonb_build_object('schema_diff', v_diff) END;
END;
$$;

-- Accepts a schema version: drift of mapped columns in it (e.g. a retyped column) no longer blocks its jobs.
CREATE FUNCTION starpipe.accept_schema(p_client text, p_table text, p_version integer)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A human's decision, recorded with who and when; blocked jobs then need starpipe.retry.
    UPDATE starpipe.schema_version s
       SET accepted_at = pg_catalog.now(), accepted_by = SESSION_USER
     WHERE s.client = p_client AND s.table_name = p_table AND s.version = p_version;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('P0002', pg_catalog.format('no schema version %s of %s.%s', p_version, p_client, p_table));
    END IF;
END;
$$;
COMMENT ON FUNCTION starpipe.accept_schema(text, text, integer) IS
    'Accepts a schema version of a client table so drift of mapped columns in it no longer blocks transform; retry the blocked jobs afterwards.';
