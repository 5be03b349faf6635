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
    description text NOT NULL
);
COMMENT ON TABLE starpipe.check_rule IS 'Validation gates of a mapping table ("checks"), with the shape of their argument.';
INSERT INTO starpipe.check_rule (name, argument, description) VALUES
    ('not_null',        'columns',         'no staged row has NULL in any of the columns'),
    ('unique',          'columns',         'no two staged rows share the columns'' values'),
    ('accepted_values', 'column_values',   'every non-NULL value of the column is one of the values'),
    ('min_rows',        'count',           'the job stages at least this many rows'),
    ('null_fraction',   'column_fraction', 'at most this fraction of the column''s staged values is NULL');

CREATE TABLE starpipe.conflict_policy (
    name        text PRIMARY KEY,
    description text NOT NULL
);
COMMENT ON TABLE starpipe.conflict_policy IS 'How promotion resolves a staged row whose key production already has ("conflict_policy").';
INSERT INTO starpipe.conflict_policy (name, description) VALUES
    ('source_wins',    'the staged row replaces the production row'),
    ('target_wins',    'the production row stays; the difference is audited'),
    ('merge_non_null', 'staged values replace production values where they are not NULL'),
    ('newer_wins',     'the staged row replaces the production row when its version_column is not older');

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

-- Checks one table entry of a mapping config against the production catalog.
CREATE FUNCTION starpipe._check_table_mapping(p_schema text, p_source text, p_map jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
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
    -- ON CONFLICT needs a unique index on exactly the conflict key.
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_index i
         WHERE i.indrelid = v_target AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
           AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname)
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = v_target AND a.attnum = ANY (i.indkey)) = v_key) THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s.conflict_key: %s has no unique index on (%s)', v_where, v_target, pg_catalog.array_to_string(v_key, ', ')));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM starpipe.conflict_policy c WHERE c.name = coalesce(p_map->>'conflict_policy', 'source_wins')) THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s.conflict_policy: one of %s', v_where, starpipe._known('starpipe.conflict_policy')));
    END IF;
    IF p_map->>'conflict_policy' = 'newer_wins' AND NOT (p_map->'columns' ? coalesce(p_map->>'version_column', '')) THEN
        PERFORM starpipe._raise('SP006', v_where || '.version_column: newer_wins needs a mapped version_column');
    END IF;
    IF coalesce(p_map->>'promotion', 'auto') NOT IN ('auto', 'manual') THEN
        PERFORM starpipe._raise('SP006', v_where || '.promotion: auto or manual');
    END IF;
    FOR v_spec IN SELECT pg_catalog.jsonb_array_elements(coalesce(p_map->'dedup'->'order_by', '[]')) LOOP
        IF NOT (p_map->'columns' ? (v_spec->>'column')) THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.dedup.order_by: %L is not a mapped column', v_where, v_spec->>'column'));
        END IF;
    END LOOP;
    FOR v_check IN SELECT pg_catalog.jsonb_array_elements(coalesce(p_map->'checks', '[]')) LOOP
        v_rule := (SELECT k FROM pg_catalog.jsonb_object_keys(v_check) k LIMIT 1);
        IF v_rule IS NULL OR NOT EXISTS (SELECT 1 FROM starpipe.check_rule c WHERE c.name = v_rule) THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.checks: unknown check %L', v_where, v_rule),
                pg_catalog.format('Known checks: %s.', starpipe._known('starpipe.check_rule')));
        END IF;
        FOR v_col IN
            SELECT c FROM pg_catalog.jsonb_array_elements_text(CASE WHEN v_rule IN ('not_null', 'unique') THEN v_check->v_rule ELSE '[]' END) c
            UNION ALL
            SELECT v_check->v_rule->>'column' WHERE v_rule IN ('accepted_values', 'null_fraction')
        LOOP
            IF NOT (p_map->'columns' ? v_col) THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.checks.%s: %L is not a mapped column', v_where, v_rule, v_col));
            END IF;
        END LOOP;
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
BEGIN
    -- A mapping is proven against the production catalog before any job can use it.
    IF pg_catalog.jsonb_typeof(p_config) <> 'object' OR p_config->>'version' IS DISTINCT FROM '1' THEN
        PERFORM starpipe._raise('SP006', 'mapping config must be an object with "version: 1"');
    END IF;
    v_client := starpipe._check_name('client', p_config->>'client');
    v_schema := p_config->>'target_schema';
    IF v_schema IS NULL OR pg_catalog.to_regnamespace(pg_catalog.quote_ident(v_schema)) IS NULL THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('target_schema %L does not exist', v_schema));
    END IF;
    IF pg_catalog.jsonb_typeof(p_config->'tables') <> 'object' THEN
        PERFORM starpipe._raise('SP006', 'mapping config needs a "tables" object');
    END IF;
    FOR v_source, v_map IN SELECT key, value FROM pg_catalog.jsonb_each(p_config->'tables') LOOP
        PERFORM starpipe._check_table_mapping(v_schema, v_source, v_map);
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
