-- starpipe: mapping configs, versioned per client.

-- Every applied mapping config; the newest version of a client is the one in force.
CREATE TABLE starpipe.mapping (
    client     text NOT NULL,
    version    integer NOT NULL,
    config     jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    applied_by text NOT NULL DEFAULT SESSION_USER,
    PRIMARY KEY (client, version)
);
COMMENT ON TABLE starpipe.mapping IS 'Versioned mapping configs (YAML turned JSON), one series per client.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.mapping', '');

-- The words a mapping may use, each defined once: apply_mapping accepts these and no others, and transform,
-- validate and promote read the same rows. Shipped with the extension (not dumped); readable by starpipe_admin.
CREATE TABLE starpipe.cleaning_rule (
    name        text PRIMARY KEY,
    expression  text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE starpipe.cleaning_rule IS 'Cleaning rules of mapping columns ("clean"): a format() template applied to the text value (%s).';
INSERT INTO starpipe.cleaning_rule (name, expression, description) VALUES
    ('trim',            'pg_catalog.btrim(%s)', 'removes leading and trailing spaces'),
    ('upper',           'pg_catalog.upper(%s)', 'upper case'),
    ('lower',           'pg_catalog.lower(%s)', 'lower case'),
    ('nullif_empty',    'NULLIF(%s, '''')', 'an empty string becomes NULL'),
    ('strip_digits',    'pg_catalog.regexp_replace(%s, ''[0-9]+'', '''', ''g'')', 'removes every digit'),
    ('digits_only',     'pg_catalog.regexp_replace(%s, ''[^0-9]+'', '''', ''g'')', 'keeps only digits'),
    ('collapse_spaces', 'pg_catalog.regexp_replace(%s, ''[[:space:]]+'', '' '', ''g'')', 'every run of white space becomes one space');

CREATE TABLE starpipe.check_rule (
    name        text PRIMARY KEY,
    argument    text NOT NULL CHECK (argument IN ('columns', 'column_values', 'count', 'column_fraction')),
    parameters  text[] CHECK ((argument IN ('column_values', 'column_fraction')) = (parameters IS NOT NULL)),
    description text NOT NULL
);
COMMENT ON TABLE starpipe.check_rule IS 'Validation gates of a mapping table ("checks"), with the shape of their argument.';
COMMENT ON COLUMN starpipe.check_rule.argument IS 'columns: a non-empty array of mapped columns; count: a non-negative integer; column_values: {column, values: non-empty array of non-null scalars}; column_fraction: {column, max: a number in [0, 1]}.';
COMMENT ON COLUMN starpipe.check_rule.parameters IS 'The keys of an object argument, every one required and no other allowed; NULL for an array or number argument.';
INSERT INTO starpipe.check_rule (name, argument, parameters, description) VALUES
    ('not_null',        'columns',         NULL,              'no staged row has NULL in any of the columns'),
    ('unique',          'columns',         NULL,              'no two staged rows share the columns'' values'),
    ('accepted_values', 'column_values',   '{column,values}', 'every non-NULL value of the column is one of the values'),
    ('min_rows',        'count',           NULL,              'the job stages at least this many rows'),
    ('null_fraction',   'column_fraction', '{column,max}',    'at most this fraction of the column''s staged values is NULL');

CREATE TABLE starpipe.conflict_policy (
    name        text PRIMARY KEY,
    description text NOT NULL
);
COMMENT ON TABLE starpipe.conflict_policy IS 'How promotion resolves a staged row whose key production already has ("conflict_policy").';
INSERT INTO starpipe.conflict_policy (name, description) VALUES
    ('source_wins',    'the staged row replaces the production row'),
    ('target_wins',    'the production row stays; the difference is audited'),
    ('merge_non_null', 'staged values replace production values where they are not NULL'),
    ('newer_wins',     'the staged row replaces the production row when its version_column is not older: a non-NULL staged version beats a NULL production version, a NULL staged version never replaces');

-- The schemas mappings may write into, allowed by a DBA (the extension owner or a superuser: nobody else may change
-- this table). starpipe's own schemas, raw_* and the system schemas are refused even when listed.
CREATE TABLE starpipe.target_schema (
    schema_name text PRIMARY KEY,
    allowed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    allowed_by  text NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE starpipe.target_schema IS 'Allowlist of production schemas a mapping''s target_schema may name (maintained by the extension owner).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.target_schema', '');

-- One of a word list's names, for a hint: "a, b, c".
CREATE FUNCTION starpipe._known(p_list regclass)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_names text;
BEGIN
    -- Only the three word-list tables are ever passed; the name is a regclass, never spliced text.
    EXECUTE pg_catalog.format('SELECT pg_catalog.string_agg(name, '', '' ORDER BY name) FROM %s', p_list) INTO v_names;
    RETURN v_names;
END;
$$;

-- Resolves a type name from a mapping through the catalog; raises SP006 when unknown.
CREATE FUNCTION starpipe._mapping_type(p_where text, p_type text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype;
BEGIN
    -- Only catalog names reach generated SQL.
    BEGIN
        v_type := pg_catalog.to_regtype(p_type);
    EXCEPTION WHEN OTHERS THEN
        v_type := NULL;
    END;
    IF v_type IS NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: unknown type %L', p_where, p_type));
    END IF;
    RETURN pg_catalog.format_type(v_type, NULL);
END;
$$;

-- The SQL type of a production column, or NULL when the column does not exist.
CREATE FUNCTION starpipe._column_type(p_table regclass, p_column text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
$$;

-- Refuses a mapping's target schema unless it exists, a DBA allowed it and it is not one starpipe or the system owns.
CREATE FUNCTION starpipe._check_target_schema(p_schema text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Promotion writes wherever the mapping says, so the mapping's author (starpipe_admin) must not choose freely.
    IF p_schema IS NULL OR pg_catalog.to_regnamespace(pg_catalog.quote_ident(p_schema)) IS NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('target_schema %L does not exist', p_schema));
    END IF;
    IF p_schema IN ('starpipe', 'starpipe_staging', 'information_schema') OR p_schema ~ '^(pg_|raw_)' THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('target_schema %I is reserved for starpipe or the system', p_schema),
            NULL, 'Map into an application schema.');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM starpipe.target_schema t WHERE t.schema_name = p_schema) THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('target_schema %I is not allowed', p_schema), NULL,
            pg_catalog.format('The extension owner allows it: INSERT INTO starpipe.target_schema (schema_name) VALUES (%L);', p_schema));
    END IF;
END;
$$;

-- Refuses a target table promotion cannot write as starpipe_writer: not a table, or without the DBA's grants.
CREATE FUNCTION starpipe._check_writer_rights(p_where text, p_target regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing text;
BEGIN
    -- The writer's rights are the whole of what production-side code can do, so they are exactly the DBA's grants.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = 'starpipe_writer' AND (r.rolsuper OR r.rolbypassrls)) THEN
        PERFORM starpipe._raise('SP006', 'role starpipe_writer must be neither superuser nor BYPASSRLS');
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = p_target) NOT IN ('r', 'p') THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: target %s is not a table', p_where, p_target));
    END IF;
    SELECT pg_catalog.string_agg(p, ', ' ORDER BY o) INTO v_missing
      FROM pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) WITH ORDINALITY AS x(p, o)
     WHERE NOT pg_catalog.has_table_privilege('starpipe_writer', p_target, p);
    IF NOT pg_catalog.has_schema_privilege('starpipe_writer',
                                           (SELECT c.relnamespace FROM pg_catalog.pg_class c WHERE c.oid = p_target), 'USAGE') THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: starpipe_writer has no USAGE on the schema of %s', p_where, p_target), NULL,
            pg_catalog.format('A DBA grants it: GRANT USAGE ON SCHEMA %I TO starpipe_writer; GRANT SELECT, INSERT, UPDATE ON %s TO starpipe_writer;',
                              (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                WHERE c.oid = p_target), p_target));
    END IF;
    IF v_missing IS NOT NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: starpipe_writer lacks %s on %s', p_where, v_missing, p_target), NULL,
            pg_catalog.format('A DBA grants it: GRANT SELECT, INSERT, UPDATE ON %s TO starpipe_writer;', p_target));
    END IF;
END;
$$;

-- Refuses a malformed check object of a mapping table: one rule key, its argument of the rule's shape, mapped columns.
CREATE FUNCTION starpipe._check_gate(p_where text, p_map jsonb, p_check jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule starpipe.check_rule;
    v_name text;
    v_arg jsonb;
    v_col text;
BEGIN
    -- A gate that cannot run as written must fail here, never pass every row at validate.
    IF (CASE WHEN pg_catalog.jsonb_typeof(p_check) = 'object'
             THEN (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(p_check)) <> 1 ELSE true END) THEN
        PERFORM starpipe._raise('SP006', p_where || ': each check is an object with exactly one rule',
            pg_catalog.format('Known checks: %s.', starpipe._known('starpipe.check_rule')));
    END IF;
    SELECT k INTO v_name FROM pg_catalog.jsonb_object_keys(p_check) k;
    SELECT * INTO v_rule FROM starpipe.check_rule c WHERE c.name = v_name;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: unknown check %L', p_where, v_name),
            pg_catalog.format('Known checks: %s.', starpipe._known('starpipe.check_rule')));
    END IF;
    p_where := p_where || '.' || v_name;
    v_arg := p_check->v_name;
    IF v_rule.parameters IS NOT NULL THEN
        IF (CASE WHEN pg_catalog.jsonb_typeof(v_arg) = 'object'
                 THEN (SELECT pg_catalog.array_agg(k ORDER BY k) FROM pg_catalog.jsonb_object_keys(v_arg) k)
                      IS DISTINCT FROM (SELECT pg_catalog.array_agg(p ORDER BY p) FROM pg_catalog.unnest(v_rule.parameters) p)
                 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s: needs exactly the keys %s', p_where,
                                                               pg_catalog.array_to_string(v_rule.parameters, ', ')));
        END IF;
    END IF;
    IF v_rule.argument = 'columns' THEN
        IF (CASE WHEN pg_catalog.jsonb_typeof(v_arg) = 'array'
                 THEN pg_catalog.jsonb_array_length(v_arg) = 0
                      OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v_arg) e WHERE pg_catalog.jsonb_typeof(e) <> 'string')
                 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', p_where || ': needs a non-empty array of mapped columns');
        END IF;
    ELSIF v_rule.argument = 'count' THEN
        IF (CASE WHEN pg_catalog.jsonb_typeof(v_arg) = 'number'
                 THEN v_arg::text::numeric < 0 OR v_arg::text::numeric <> pg_catalog.trunc(v_arg::text::numeric)
                      OR v_arg::text::numeric > 9223372036854775807
                 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', p_where || ': needs a non-negative integer');
        END IF;
    ELSIF v_rule.argument = 'column_values' THEN
        IF (CASE WHEN pg_catalog.jsonb_typeof(v_arg->'values') = 'array'
                 THEN pg_catalog.jsonb_array_length(v_arg->'values') = 0
                      OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v_arg->'values') e
                                  WHERE pg_catalog.jsonb_typeof(e) NOT IN ('string', 'number', 'boolean'))
                 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', p_where || '.values: needs a non-empty array of non-null scalars');
        END IF;
    ELSIF v_rule.argument = 'column_fraction' THEN
        IF (CASE WHEN pg_catalog.jsonb_typeof(v_arg->'max') = 'number' THEN (v_arg->>'max')::numeric NOT BETWEEN 0 AND 1 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', p_where || '.max: needs a number from 0 to 1');
        END IF;
    END IF;
    FOR v_col IN
        SELECT c FROM pg_catalog.jsonb_array_elements_text(CASE WHEN v_rule.argument = 'columns' THEN v_arg ELSE '[]' END) c
        UNION ALL
        SELECT v_arg->>'column' WHERE v_rule.argument IN ('column_values', 'column_fraction')
    LOOP
        IF v_col IS NULL OR NOT (p_map->'columns' ? v_col) THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s: %L is not a mapped column', p_where, v_col));
        END IF;
    END LOOP;
END;
$$;

-- Checks the promotion settings of one mapping table: the conflict policy and its per-column overrides, the
-- version column, what a full snapshot does with keys it lacks (deletes) and whether conflicts keep values.
CREATE FUNCTION starpipe._check_promotion_mapping(p_where text, p_target regclass, p_map jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_col text;
    v_policy text;
    v_deletes jsonb := starpipe._deletes_rule(p_map);
    v_type text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM starpipe.conflict_policy c WHERE c.name = coalesce(p_map->>'conflict_policy', 'source_wins')) THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s.conflict_policy: one of %s', p_where, starpipe._known('starpipe.conflict_policy')));
    END IF;
    -- column_policies: {column: policy} overrides the table's policy for non-key mapped columns.
    IF p_map ? 'column_policies' AND pg_catalog.jsonb_typeof(p_map->'column_policies') <> 'object' THEN
        PERFORM starpipe._raise('SP006', p_where || '.column_policies: must map column names to policies');
    END IF;
    FOR v_col IN SELECT k FROM pg_catalog.jsonb_object_keys(coalesce(p_map->'column_policies', '{}')) k ORDER BY k LOOP
        v_policy := p_map->'column_policies'->>v_col;
        IF NOT (p_map->'columns' ? v_col) OR p_map->'conflict_key' ? v_col THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.column_policies.%s: not a mapped non-key column', p_where, v_col),
                NULL, 'Key columns identify the row; they are never overwritten.');
        END IF;
        IF pg_catalog.jsonb_typeof(p_map->'column_policies'->v_col) <> 'string'
           OR NOT EXISTS (SELECT 1 FROM starpipe.conflict_policy c WHERE c.name = v_policy) THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.column_policies.%s: one of %s', p_where, v_col,
                                                               starpipe._known('starpipe.conflict_policy')));
        END IF;
    END LOOP;
    -- newer_wins compares version_column when there is one, else the snapshots' order (which every policy obeys).
    IF p_map ? 'version_column' AND (pg_catalog.jsonb_typeof(p_map->'version_column') <> 'string'
                                     OR NOT (p_map->'columns' ? (p_map->>'version_column'))) THEN
        PERFORM starpipe._raise('SP006', p_where || '.version_column: must name a mapped column');
    END IF;
    IF p_map ? 'audit_values' AND pg_catalog.jsonb_typeof(p_map->'audit_values') <> 'boolean' THEN
        PERFORM starpipe._raise('SP006', p_where || '.audit_values: true or false');
    END IF;
    -- deletes: ignore | soft | hard, or {rule, column (soft), max_fraction}.
    IF v_deletes IS NULL THEN
        PERFORM starpipe._raise('SP006', p_where || '.deletes: ignore, soft or hard, or {"rule": ..., "column": ..., "max_fraction": ...}');
    END IF;
    IF v_deletes->>'rule' = 'soft' THEN
        v_col := v_deletes->>'column';
        v_type := starpipe._column_type(p_target, coalesce(v_col, ''));
        IF v_type IS NULL OR p_map->'columns' ? v_col THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.deletes.column: soft deletes need an unmapped column of %s', p_where, p_target),
                NULL, 'It is set when a key leaves the snapshot and cleared when the key comes back.');
        END IF;
        IF v_type NOT IN ('timestamp with time zone', 'timestamp without time zone', 'date', 'boolean') THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.deletes.column: %I is %s; soft deletes mark a timestamp, date or boolean column',
                                                               p_where, v_col, v_type));
        END IF;
    END IF;
    IF v_deletes->>'rule' = 'hard' AND NOT pg_catalog.has_table_privilege('starpipe_writer', p_target, 'DELETE') THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s.deletes: starpipe_writer lacks DELETE on %s', p_where, p_target), NULL,
            pg_catalog.format('A DBA grants it: GRANT DELETE ON %s TO starpipe_writer;', p_target));
    END IF;
END;
$$;

-- A mapping table's deletes rule as {rule, column, max_fraction} with its defaults; NULL when malformed.
CREATE FUNCTION starpipe._deletes_rule(p_map jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN d IS NULL THEN '{"rule": "ignore", "max_fraction": 0.1}'::jsonb
        WHEN pg_catalog.jsonb_typeof(d) = 'string' AND d->>0 IN ('ignore', 'hard')
            THEN pg_catalog.jsonb_build_object('rule', d->>0, 'max_fraction', 0.1)
        WHEN pg_catalog.jsonb_typeof(d) = 'object' AND d->>'rule' IN ('ignore', 'soft', 'hard')
             AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(d) k WHERE k NOT IN ('rule', 'column', 'max_fraction'))
             AND (d->>'rule' = 'soft') = (coalesce(pg_catalog.jsonb_typeof(d->'column'), '') = 'string')
             AND (NOT d ? 'max_fraction' OR pg_catalog.jsonb_typeof(d->'max_fraction') = 'number'
                  AND (d->>'max_fraction')::numeric BETWEEN 0 AND 1)
            THEN pg_catalog.jsonb_build_object('rule', d->>'rule', 'max_fraction', coalesce(d->'max_fraction', '0.1'))
                 || CASE WHEN d ? 'column' THEN pg_catalog.jsonb_build_object('column', d->'column') ELSE '{}' END
    END
    FROM (SELECT p_map->'deletes' AS d) x;
$$;

-- Checks one table entry of a mapping config against the production catalog.
CREATE FUNCTION starpipe._check_table_mapping(p_schema text, p_source text, p_map jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_target regclass;
    v_where text := pg_catalog.format('tables.%s', p_source);
    v_col text;
    v_spec jsonb;
    v_rule text;
    v_check jsonb;
    v_key text[];
BEGIN
    -- Everything the transform and promotion will rely on is proven here, before any job uses it.
    PERFORM starpipe._check_name('table', p_source);
    IF pg_catalog.jsonb_typeof(p_map) <> 'object' OR NOT p_map ? 'target' OR NOT p_map ? 'columns' OR NOT p_map ? 'conflict_key' THEN
        PERFORM starpipe._raise('SP006', v_where || ': needs "target", "conflict_key" and "columns"');
    END IF;
    PERFORM starpipe._check_name('target table', p_map->>'target');
    v_target := pg_catalog.to_regclass(pg_catalog.format('%I.%I', p_schema, p_map->>'target'));
    IF v_target IS NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: target table %I.%I does not exist', v_where, p_schema, p_map->>'target'));
    END IF;
    PERFORM starpipe._check_writer_rights(v_where, v_target);
    IF pg_catalog.jsonb_typeof(p_map->'columns') <> 'object' OR p_map->'columns' = '{}'::jsonb THEN
        PERFORM starpipe._raise('SP006', v_where || '.columns: must map at least one column');
    END IF;
    FOR v_col, v_spec IN SELECT key, value FROM pg_catalog.jsonb_each(p_map->'columns') LOOP
        IF starpipe._column_type(v_target, v_col) IS NULL THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.columns.%s: %s has no column %I', v_where, v_col, v_target, v_col));
        END IF;
        IF (v_spec ? 'from') = (v_spec ? 'const') THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.columns.%s: give exactly one of "from" or "const"', v_where, v_col));
        END IF;
        IF v_spec ? 'from' THEN
            PERFORM starpipe._check_column(v_spec->>'from');
        END IF;
        IF v_spec ? 'type' THEN
            PERFORM starpipe._mapping_type(pg_catalog.format('%s.columns.%s', v_where, v_col), v_spec->>'type');
        END IF;
        FOR v_rule IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(v_spec->'clean', '[]')) LOOP
            IF NOT EXISTS (SELECT 1 FROM starpipe.cleaning_rule r WHERE r.name = v_rule) THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.columns.%s: unknown cleaning rule %L', v_where, v_col, v_rule),
                    pg_catalog.format('Known rules: %s.', starpipe._known('starpipe.cleaning_rule')));
            END IF;
        END LOOP;
    END LOOP;
    -- Production columns that are required but neither mapped nor defaulted would fail every promotion.
    SELECT a.attname INTO v_col FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = v_target AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef
       AND a.attidentity = '' AND a.attgenerated = '' AND NOT (p_map->'columns' ? a.attname)
     LIMIT 1;
    IF FOUND THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: %s.%I is NOT NULL without a default but is not mapped', v_where, v_target, v_col));
    END IF;
    SELECT pg_catalog.array_agg(k ORDER BY k) INTO v_key FROM pg_catalog.jsonb_array_elements_text(p_map->'conflict_key') AS k;
    IF v_key IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.unnest(v_key) k WHERE NOT (p_map->'columns' ? k)) THEN
        PERFORM starpipe._raise('SP006', v_where || '.conflict_key: must list mapped columns');
    END IF;
    -- ON CONFLICT needs a unique index on exactly the conflict key: its key columns (not INCLUDE ones), checked
    -- immediately (not deferrable), valid and ready, without predicate or expressions.
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_index i
         WHERE i.indrelid = v_target AND i.indisunique AND i.indimmediate AND i.indisvalid AND i.indisready
           AND i.indpred IS NULL AND i.indexprs IS NULL
           AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname)
                  FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = v_target AND a.attnum = k.attnum
                 WHERE k.n <= i.indnkeyatts) = v_key) THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s.conflict_key: %s has no unique index ON CONFLICT can use on (%s)', v_where, v_target, pg_catalog.array_to_string(v_key, ', ')),
            NULL, 'It needs a valid, non-deferrable unique index or constraint on exactly these columns, without INCLUDE columns, predicate or expressions.');
    END IF;
    -- Promotion compares production with staged values; a type without equality (json, xml, point) would fail every promotion.
    FOR v_col IN SELECT k FROM pg_catalog.jsonb_object_keys(p_map->'columns') k ORDER BY k LOOP
        BEGIN
            PERFORM starpipe._as_writer_execute(pg_catalog.format('SELECT 1 FROM %s t WHERE t.%I IS DISTINCT FROM t.%I LIMIT 0', v_target, v_col, v_col));
        EXCEPTION WHEN undefined_function THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.columns.%s: promotion cannot compare %s.%I (type %s has no equality operator)',
                                                               v_where, v_col, v_target, v_col, starpipe._column_type(v_target, v_col)),
                NULL, 'Use a comparable type such as jsonb or text for the production column.');
        END;
    END LOOP;
    PERFORM starpipe._check_promotion_mapping(v_where, v_target, p_map);
    IF coalesce(p_map->>'promotion', 'auto') NOT IN ('auto', 'manual') THEN
        PERFORM starpipe._raise('SP006', v_where || '.promotion: auto or manual');
    END IF;
    -- dedup: {order_by: [{column: <mapped column>, desc: <boolean>?}, ...]}, nothing else.
    IF p_map ? 'dedup' AND (CASE WHEN pg_catalog.jsonb_typeof(p_map->'dedup') = 'object'
                                 THEN EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(p_map->'dedup') k WHERE k <> 'order_by')
                                      OR pg_catalog.jsonb_typeof(coalesce(p_map->'dedup'->'order_by', '[]')) <> 'array'
                                 ELSE true END) THEN
        PERFORM starpipe._raise('SP006', v_where || '.dedup: must be {"order_by": [{"column": ..., "desc": true|false}, ...]}');
    END IF;
    FOR v_spec IN SELECT pg_catalog.jsonb_array_elements(coalesce(p_map->'dedup'->'order_by', '[]')) LOOP
        IF (CASE WHEN pg_catalog.jsonb_typeof(v_spec) = 'object'
                 THEN EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(v_spec) k WHERE k NOT IN ('column', 'desc'))
                      OR pg_catalog.jsonb_typeof(coalesce(v_spec->'desc', 'false')) <> 'boolean'
                 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', v_where || '.dedup.order_by: each entry is an object {"column": <mapped column>, "desc": true|false}');
        END IF;
        IF pg_catalog.jsonb_typeof(v_spec->'column') IS DISTINCT FROM 'string' OR NOT (p_map->'columns' ? (v_spec->>'column')) THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.dedup.order_by: %L is not a mapped column', v_where, v_spec->>'column'));
        END IF;
    END LOOP;
    IF pg_catalog.jsonb_typeof(coalesce(p_map->'checks', '[]')) <> 'array' THEN
        PERFORM starpipe._raise('SP006', v_where || '.checks: must be an array of check objects');
    END IF;
    FOR v_check IN SELECT pg_catalog.jsonb_array_elements(coalesce(p_map->'checks', '[]')) LOOP
        PERFORM starpipe._check_gate(v_where || '.checks', p_map, v_check);
    END LOOP;
END;
$$;

-- Validates and stores a client's mapping config; returns its version (unchanged config = same version).
CREATE FUNCTION starpipe.apply_mapping(p_config jsonb)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_client text;
    v_schema text;
    v_latest starpipe.mapping;
    v_source text;
    v_map jsonb;
    v_other text;
BEGIN
    -- A mapping is proven against the production catalog before any job can use it.
    IF pg_catalog.jsonb_typeof(p_config) <> 'object' OR p_config->>'version' IS DISTINCT FROM '1' THEN
        PERFORM starpipe._raise('SP006', 'mapping config must be an object with "version: 1"');
    END IF;
    v_client := starpipe._check_name('client', p_config->>'client');
    v_schema := p_config->>'target_schema';
    PERFORM starpipe._check_target_schema(v_schema);
    -- production: the name of a separate production database (its URL is the worker's configuration, never here).
    IF p_config ? 'production' THEN
        PERFORM starpipe._check_name('production', p_config->>'production');
    END IF;
    IF pg_catalog.jsonb_typeof(p_config->'tables') <> 'object' THEN
        PERFORM starpipe._raise('SP006', 'mapping config needs a "tables" object');
    END IF;
    FOR v_source, v_map IN SELECT key, value FROM pg_catalog.jsonb_each(p_config->'tables') LOOP
        PERFORM starpipe._check_table_mapping(v_schema, v_source, v_map);
        -- A full snapshot deletes the production rows its keys lack, so those rows must be this table's alone: the
        -- target has no other feed, or the mapping's const columns (a practice id, say) scope the deletes.
        IF starpipe._deletes_rule(v_map)->>'rule' <> 'ignore'
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(v_map->'columns') c WHERE c.value ? 'const') THEN
            SELECT f.feed INTO v_other FROM (
                SELECT pg_catalog.format('%s.%s', v_client, t.key) AS feed FROM pg_catalog.jsonb_each(p_config->'tables') t
                 WHERE t.key <> v_source AND t.value->>'target' = v_map->>'target'
                UNION ALL
                SELECT pg_catalog.format('%s.%s', m.client, t.key) FROM starpipe.mapping m
                 CROSS JOIN LATERAL pg_catalog.jsonb_each(m.config->'tables') t
                 WHERE m.client <> v_client AND m.config->>'target_schema' = v_schema AND t.value->>'target' = v_map->>'target'
                   AND m.version = (SELECT pg_catalog.max(l.version) FROM starpipe.mapping l WHERE l.client = m.client)) f
             ORDER BY f.feed LIMIT 1;
            IF FOUND THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('tables.%s.deletes: %I.%I is also written by %s', v_source, v_schema,
                                                                   v_map->>'target', v_other),
                    NULL, 'Deletes would remove the other feed''s rows: map a const column (such as a practice id) that tells them apart.');
            END IF;
        END IF;
    END LOOP;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('starpipe.mapping:' || v_client));
    SELECT * INTO v_latest FROM starpipe.mapping WHERE client = v_client ORDER BY version DESC LIMIT 1;
    IF FOUND AND v_latest.config = p_config THEN
        RETURN v_latest.version;
    END IF;
    INSERT INTO starpipe.mapping (client, version, config)
    VALUES (v_client, coalesce(v_latest.version, 0) + 1, p_config);
    RETURN coalesce(v_latest.version, 0) + 1;
END;
$$;
COMMENT ON FUNCTION starpipe.apply_mapping(jsonb) IS
    'Validates a mapping config against production and stores it as the client''s next version.';
