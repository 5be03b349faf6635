-- starpipe: row quarantine. A raw row whose value a mapping rule or a production constraint refuses becomes a
-- reject instead of failing its job, within the table's reject budget. The fast path (one INSERT … SELECT) is
-- unchanged for a clean batch; only a batch whose INSERT fails takes the probing path here.

-- One row per refused raw row and target column: where and why, never the value (it may be PHI). The raw version
-- keeps the row itself, and is not dropped while the job has unresolved rejects.
CREATE TABLE starpipe.reject (
    reject_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES starpipe.job (job_id),
    source_row      bigint NOT NULL,
    target_column   text,
    rule            text NOT NULL,
    sqlstate        text NOT NULL,
    constraint_name text,
    rejected_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at     timestamptz,
    resolved_by     bigint
);
CREATE INDEX reject_job ON starpipe.reject (job_id, source_row);
CREATE INDEX reject_unresolved ON starpipe.reject (job_id) WHERE resolved_at IS NULL;
COMMENT ON TABLE starpipe.reject IS 'Quarantined raw rows: job, source row, target column, the refusing rule and its SQLSTATE; never the value.';
COMMENT ON COLUMN starpipe.reject.rule IS 'clean, map, formats, number, booleans, cast (the column''s value step), not_null or check (a production constraint).';
COMMENT ON COLUMN starpipe.reject.sqlstate IS 'The error the rule raised; SP008 for a value in none of the rule''s accepted forms (a code the map does not list, a date in none of the formats, an unknown boolean word).';
COMMENT ON COLUMN starpipe.reject.resolved_by IS 'The job whose replay of the row was promoted; NULL while unresolved.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.reject', '');
SELECT pg_catalog.pg_extension_config_dump('starpipe.reject_reject_id_seq', '');

-- Refuses a malformed reject budget: rejects: {max_rows: N, max_fraction: F}, at least one of them.
CREATE FUNCTION starpipe._check_reject_budget(p_where text, p_map jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Without "rejects" the budget is zero rows: one refused row fails the job, as before quarantine existed.
    IF NOT p_map ? 'rejects' THEN
        RETURN;
    END IF;
    IF (CASE WHEN pg_catalog.jsonb_typeof(p_map->'rejects') = 'object' AND p_map->'rejects' <> '{}'
             THEN EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p_map->'rejects') e
                           WHERE e.key NOT IN ('max_rows', 'max_fraction') OR pg_catalog.jsonb_typeof(e.value) <> 'number')
             ELSE true END) THEN
        PERFORM starpipe._raise('SP006', p_where || '.rejects: needs {max_rows: N, max_fraction: F} (one or both)');
    END IF;
    IF (p_map->'rejects'->>'max_rows')::numeric < 0 OR (p_map->'rejects'->>'max_rows')::numeric <> pg_catalog.trunc((p_map->'rejects'->>'max_rows')::numeric) THEN
        PERFORM starpipe._raise('SP006', p_where || '.rejects.max_rows: needs a non-negative integer');
    END IF;
    IF (p_map->'rejects'->>'max_fraction')::numeric NOT BETWEEN 0 AND 1 THEN
        PERFORM starpipe._raise('SP006', p_where || '.rejects.max_fraction: needs a number from 0 to 1');
    END IF;
END;
$$;

-- Whether p_rejected refused rows of p_raw_rows exceed a mapping table's reject budget.
CREATE FUNCTION starpipe._over_reject_budget(p_map jsonb, p_rejected bigint, p_raw_rows bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_rejected > 0 AND (
           CASE WHEN p_map ? 'rejects' THEN p_rejected > (p_map->'rejects'->>'max_rows')::numeric
                ELSE p_rejected > 0 END IS TRUE
        OR p_rejected::numeric / NULLIF(p_raw_rows, 0) > (p_map->'rejects'->>'max_fraction')::numeric IS TRUE);
$$;

-- The budget as words, for an error: "max_rows 10, max_fraction 0.01".
CREATE FUNCTION starpipe._reject_budget_text(p_map jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(NULLIF(pg_catalog.concat_ws(', ', 'max_rows ' || (p_map->'rejects'->>'max_rows'),
                                                'max_fraction ' || (p_map->'rejects'->>'max_fraction')), ''), 'max_rows 0');
$$;

-- A production constraint staging carries, as the quarantine probe evaluates it on converted rows.
CREATE TYPE starpipe._staging_constraint AS (rule text, state text, col text, name text, refused text);

-- Finds a job's refused rows and records them in starpipe.reject; returns how many distinct source rows it found.
CREATE FUNCTION starpipe._quarantine(p_job starpipe.job, p_raw regclass, p_target regclass, p_map jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_col text;
    v_spec jsonb;
    v_type text;
    v_probe text;
    v_body text;
    v_cons starpipe._staging_constraint[];
    v_key text[] := ARRAY(SELECT pg_catalog.jsonb_array_elements_text(p_map->'conflict_key'));
BEGIN
    -- Slow path, taken only when the bulk INSERT failed. Per column, one bulk evaluation tells whether the column
    -- refuses any row; only such a column is probed row by row, by a PL/pgSQL function generated for it that runs
    -- each step in its own exception block. Then the production constraints staging carries (NOT NULL, CHECK) are
    -- evaluated set-based on the converted rows that remain. Everything runs as starpipe_writer.
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(p_map->'columns') ORDER BY key LOOP
        v_type := starpipe._column_type(p_target, v_col);
        BEGIN
            PERFORM starpipe._as_writer_execute(pg_catalog.format('SELECT pg_catalog.count(%s) FROM %s r',
                                                                  starpipe._column_expr(v_spec, v_type), p_raw));
            CONTINUE;
        EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
            NULL;
        END;
        v_probe := pg_catalog.format('pg_temp.%I', 'starpipe_probe_' || p_job.job_id);
        v_body := pg_catalog.format(
            'DECLARE t text; BEGIN '
            '  BEGIN t := %1$s; EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN RETURN ARRAY[''clean'', SQLSTATE]; END; '
            '  %2$s'
            -- division_by_zero is the refusal of _refuse_expr: the value is in none of the rule's accepted forms.
            '  BEGIN PERFORM %3$s; EXCEPTION WHEN division_by_zero THEN RETURN ARRAY[%4$L, ''SP008'']; '
            '    WHEN data_exception OR integrity_constraint_violation THEN RETURN ARRAY[%4$L, SQLSTATE]; END; '
            '  RETURN NULL; '
            'END',
            starpipe._column_text_expr(v_spec),
            CASE WHEN v_spec ? 'map' AND coalesce(v_spec #>> '{unmapped}', 'reject') = 'reject'
                 THEN pg_catalog.format('IF %s IS NOT NULL AND NOT %s = ANY (%L::text[]) THEN RETURN ARRAY[''map'', ''SP008'']; END IF; ',
                                        starpipe._column_value_expr(v_spec - '{map,formats,number,booleans,type,default,timezone}'::text[], 'text', 't'),
                                        starpipe._column_value_expr(v_spec - '{map,formats,number,booleans,type,default,timezone}'::text[], 'text', 't'),
                                        ARRAY(SELECT pg_catalog.jsonb_object_keys(v_spec->'map')))
                 ELSE '' END,
            starpipe._column_value_expr(v_spec, v_type, 't'),
            starpipe._column_rule(v_spec));
        EXECUTE pg_catalog.format('CREATE FUNCTION %s(r %s) RETURNS text[] LANGUAGE plpgsql AS %L', v_probe, p_raw, v_body);
        INSERT INTO starpipe.reject (job_id, source_row, target_column, rule, sqlstate)
        SELECT p_job.job_id, (x->>0)::bigint, v_col, x->>1, x->>2
          FROM starpipe._as_writer_query(pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_array(p.s, p.e[1], p.e[2]) FROM (SELECT r._source_row AS s, %s(r) AS e FROM %s r OFFSET 0) p '
            'WHERE p.e IS NOT NULL', v_probe, p_raw)) x;
        EXECUTE pg_catalog.format('DROP FUNCTION %s(%s)', v_probe, p_raw);
    END LOOP;

    -- The converted rows that remain, as the bulk INSERT computes them, checked against every constraint in one scan.
    SELECT pg_catalog.array_agg(c ORDER BY c.rule, c.col, c.name) INTO v_cons FROM (
        SELECT 'not_null' AS rule, '23502' AS state, a.attname::text AS col, NULL::text AS name,
               pg_catalog.format('s.%I IS NULL', a.attname) AS refused
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_target AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
           AND p_map->'columns' ? a.attname AND NOT a.attname = ANY (v_key)
        UNION ALL
        SELECT 'check', '23514', c.col, c.conname, pg_catalog.format('(%s) IS FALSE', c.expr)
          FROM starpipe._staging_checks(p_target, p_map) c) c;
    IF v_cons IS NOT NULL THEN
        INSERT INTO starpipe.reject (job_id, source_row, target_column, rule, sqlstate, constraint_name)
        SELECT p_job.job_id, (x->>0)::bigint, v_cons[i.n].col, v_cons[i.n].rule, v_cons[i.n].state, v_cons[i.n].name
          FROM starpipe._as_writer_query(pg_catalog.format(
                 'SELECT pg_catalog.jsonb_build_array(s._source_row, pg_catalog.array_remove(ARRAY[%s], NULL)) FROM (%s) s WHERE %s',
                 (SELECT pg_catalog.string_agg(pg_catalog.format('CASE WHEN %s THEN %s END', c.refused, o), ', ' ORDER BY o)
                    FROM pg_catalog.unnest(v_cons) WITH ORDINALITY AS c(rule, state, col, name, refused, o)),
                 starpipe._staging_select(p_job, p_raw, p_target, p_map),
                 (SELECT pg_catalog.string_agg(c.refused, ' OR ' ORDER BY o)
                    FROM pg_catalog.unnest(v_cons) WITH ORDINALITY AS c(rule, state, col, name, refused, o)))) x
         CROSS JOIN LATERAL (SELECT e::int AS n FROM pg_catalog.jsonb_array_elements_text(x->1) e) i;
    END IF;
    RETURN (SELECT pg_catalog.count(DISTINCT x.source_row) FROM starpipe.reject x WHERE x.job_id = p_job.job_id AND x.resolved_at IS NULL);
END;
$$;

-- The CHECK constraints of a production table that staging carries: valid ones whose columns are all mapped.
CREATE FUNCTION starpipe._staging_checks(p_target regclass, p_map jsonb)
RETURNS TABLE (conname text, col text, expr text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- A check on an unmapped column concerns values promotion does not write; production still enforces it there.
    SELECT c.conname::text,
           CASE WHEN pg_catalog.cardinality(c.conkey) = 1
                THEN (SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1]) END,
           pg_catalog.pg_get_expr(c.conbin, c.conrelid)
      FROM pg_catalog.pg_constraint c
     WHERE c.conrelid = p_target AND c.contype = 'c' AND c.convalidated
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(c.conkey) k JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k
                        WHERE NOT p_map->'columns' ? a.attname)
     ORDER BY c.conname;
$$;

-- The SELECT of converted rows a job stages (before dedup), excluding its unresolved rejects.
CREATE FUNCTION starpipe._staging_select(p_job starpipe.job, p_raw regclass, p_target regclass, p_map jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_inner text := '';
    v_outer text := '';
    v_col text;
    v_spec jsonb;
    v_rejected bigint[];
BEGIN
    -- The text step runs once per value in a fenced subquery (OFFSET 0), so the value step may name it many times.
    -- Rejected rows are left out by a constant array (hashed by the executor), read here because the writer who
    -- runs the statement cannot read starpipe.reject.
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(p_map->'columns') ORDER BY key LOOP
        v_inner := v_inner || starpipe._column_text_expr(v_spec) || pg_catalog.format(' AS %I, ', v_col);
        v_outer := v_outer || starpipe._column_value_expr(v_spec, starpipe._column_type(p_target, v_col), pg_catalog.format('t.%I', v_col))
                   || pg_catalog.format(' AS %I, ', v_col);
    END LOOP;
    SELECT pg_catalog.array_agg(DISTINCT x.source_row) INTO v_rejected
      FROM starpipe.reject x WHERE x.job_id = p_job.job_id AND x.resolved_at IS NULL;
    RETURN pg_catalog.format('SELECT %st._ingestion_id, t._source_row FROM (SELECT %sr._ingestion_id, r._source_row FROM %s r%s OFFSET 0) t',
                             v_outer, v_inner, p_raw,
                             CASE WHEN v_rejected IS NULL THEN ''
                                  ELSE pg_catalog.format(' WHERE r._source_row <> ALL (%L::bigint[])', v_rejected) END);
END;
$$;

-- Reconciliation of a job's rows, recomputed from raw, staging and rejects: a failure object when raw rows are not
-- exactly staged + rejected + removed by dedup (or a staged row is also rejected), else NULL.
CREATE FUNCTION starpipe._reconciliation_gate(p_job starpipe.job, p_staging text, p_staged bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_raw bigint;
    v_rejected bigint;
    v_both bigint;
BEGIN
    -- Counts come from the tables themselves, not from what transform reported, so a lost or doubled row shows.
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', starpipe.raw_version(p_job.job_id)) INTO v_raw;
    SELECT pg_catalog.count(DISTINCT x.source_row) INTO v_rejected FROM starpipe.reject x WHERE x.job_id = p_job.job_id AND x.resolved_at IS NULL;
    v_both := 0;
    IF v_rejected > 0 THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s s WHERE s._source_row = ANY ($1)', p_staging) INTO v_both
          USING ARRAY(SELECT x.source_row FROM starpipe.reject x WHERE x.job_id = p_job.job_id AND x.resolved_at IS NULL);
    END IF;
    IF v_raw = p_staged + v_rejected + coalesce(p_job.rows_deduplicated, 0) AND v_raw = p_job.rows_raw AND v_both = 0 THEN
        RETURN NULL;
    END IF;
    RETURN pg_catalog.jsonb_build_object('rule', 'reconciliation', 'raw', v_raw, 'raw_loaded', p_job.rows_raw, 'staged', p_staged,
                                         'rejected', v_rejected, 'deduplicated', p_job.rows_deduplicated, 'staged_and_rejected', v_both,
                                         'fails_job', true,
                                         'figures', pg_catalog.format('raw %s rows (%s loaded), staged %s + rejected %s + deduplicated %s = %s; staged and rejected: %s',
                                                                      v_raw, p_job.rows_raw, p_staged, v_rejected, coalesce(p_job.rows_deduplicated, 0),
                                                                      p_staged + v_rejected + coalesce(p_job.rows_deduplicated, 0), v_both));
END;
$$;

-- A job's rejects grouped by target column and rule, with counts and sample source rows (no values).
CREATE FUNCTION starpipe.rejects(p_job_id bigint DEFAULT NULL)
RETURNS TABLE (job_id bigint, target_column text, rule text, sqlstate text, constraint_name text, rows bigint,
               sample_source_rows bigint[], resolved boolean)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.job_id, x.target_column, x.rule, x.sqlstate, x.constraint_name, pg_catalog.count(*),
           (pg_catalog.array_agg(x.source_row ORDER BY x.source_row))[1:5], x.resolved_at IS NOT NULL
      FROM starpipe.reject x
     WHERE p_job_id IS NULL OR x.job_id = p_job_id
     GROUP BY x.job_id, x.target_column, x.rule, x.sqlstate, x.constraint_name, x.resolved_at IS NOT NULL
     ORDER BY x.job_id, x.resolved_at IS NOT NULL, x.target_column NULLS LAST, x.rule, x.constraint_name;
$$;
COMMENT ON FUNCTION starpipe.rejects(bigint) IS
    'Rejected rows of one job (or all), grouped by target column, rule and SQLSTATE, with counts and up to five sample source rows.';

-- A job's unresolved rejects for its event and error: groups by column and rule, the first row, the budget.
CREATE FUNCTION starpipe._reject_summary(p_job starpipe.job, p_map jsonb, p_rejected bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH g AS (
        SELECT x.target_column, x.rule, x.sqlstate, x.constraint_name, pg_catalog.count(*) AS n,
               (pg_catalog.array_agg(x.source_row ORDER BY x.source_row))[1:5] AS sample
          FROM starpipe.reject x WHERE x.job_id = p_job.job_id AND x.resolved_at IS NULL
         GROUP BY 1, 2, 3, 4),
    f AS (
        SELECT x.* FROM starpipe.reject x WHERE x.job_id = p_job.job_id AND x.resolved_at IS NULL
         ORDER BY x.source_row, x.target_column NULLS LAST, x.rule LIMIT 1)
    SELECT pg_catalog.jsonb_build_object(
        'rejected', p_rejected, 'rows_raw', p_job.rows_raw, 'budget', coalesce(p_map->'rejects', '{"max_rows": 0}'),
        'rejects', coalesce((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                       'column', g.target_column, 'rule', g.rule, 'sqlstate', g.sqlstate, 'constraint', g.constraint_name,
                       'rows', g.n, 'sample_source_rows', pg_catalog.to_jsonb(g.sample)))
                       ORDER BY g.target_column NULLS LAST, g.rule, g.constraint_name) FROM g), '[]'),
        'summary', (SELECT pg_catalog.string_agg(pg_catalog.format('%s(%s) %s rows', s.rule, s.what, s.n), ', ' ORDER BY s.what, s.rule)
                      FROM (SELECT g.rule, coalesce(g.target_column, g.constraint_name) AS what, pg_catalog.sum(g.n) AS n FROM g GROUP BY 1, 2) s),
        'column', f.target_column, 'from', p_map->'columns'->f.target_column->>'from', 'source_row', f.source_row,
        'rule', f.rule, 'sqlstate', f.sqlstate, 'constraint', f.constraint_name)
      FROM (SELECT 1) one LEFT JOIN f ON true;
$$;
