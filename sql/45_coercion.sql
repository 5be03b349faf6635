-- starpipe: how one mapped column turns raw text into its production value (sources, cleaning, sentinels, value
-- maps, formats, casts, defaults), compiled to set-based SQL, and how apply_mapping proves a column spec.
--
-- A column spec is compiled in two steps so that the bulk INSERT evaluates each raw value once:
--   text step  (_column_text_expr, on the raw row r): the source (from | const | concat | coalesce), then the
--              cleaning rules in order, then regex_replace in order;
--   value step (_column_value_expr, on the text step's result): null_values, map, one parse (formats | number |
--              booleans), the optional intermediate type, the cast to the production type, then default.
-- A value a step refuses (an unmapped code, a date in none of the formats, an unknown boolean word) raises a data
-- exception, which sends the batch down the quarantine path (sql/55_quarantine.sql); a clean batch never pays for it.

-- Every key a column spec may have: apply_mapping refuses any other, so a misspelt key never silently does nothing.
CREATE FUNCTION starpipe._column_spec_keys()
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '{from,const,concat,coalesce,separator,clean,regex_replace,null_values,map,unmapped,formats,timezone,number,booleans,type,default}'::text[];
$$;

-- An expression that is NULL for a NULL value and otherwise raises division_by_zero (22012), typed as p_type.
CREATE FUNCTION starpipe._refuse_expr(p_value text, p_type text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Built on the value (never a constant, which the planner would fold and raise at plan time); the error quotes
    -- nothing, and the quarantine probe, not this error, names the rule that refused the row.
    SELECT pg_catalog.format('((pg_catalog.length(%s) / 0)::text)::%s', p_value, p_type);
$$;

-- The anchored regular expression a to_date/to_timestamp format's values match, or NULL for an unsupported format.
CREATE FUNCTION starpipe._format_regex(p_format text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rest text := p_format;
    v_re text := '^';
    v_token text;
    v_tokens constant text := '^(YYYY|HH24|YY|MM|DD|MI|SS|MS|US)';
BEGIN
    -- The regex picks the format a value is in (formats are tried in order); to_date/to_timestamp then checks ranges.
    IF p_format IS NULL OR p_format = '' THEN
        RETURN NULL;
    END IF;
    WHILE v_rest <> '' LOOP
        v_token := pg_catalog.substring(v_rest, v_tokens);
        IF v_token IS NOT NULL THEN
            v_rest := pg_catalog.substr(v_rest, pg_catalog.length(v_token) + 1);
            v_re := v_re || CASE v_token
                WHEN 'YYYY' THEN '[0-9]{4}'
                WHEN 'YY' THEN '[0-9]{2}'
                WHEN 'MI' THEN '[0-9]{2}'
                WHEN 'SS' THEN '[0-9]{2}'
                WHEN 'MS' THEN '[0-9]{1,3}'
                WHEN 'US' THEN '[0-9]{1,6}'
                -- A month, day or hour right before another number has its two digits; before a separator, one will do.
                ELSE CASE WHEN v_rest ~ v_tokens THEN '[0-9]{2}' ELSE '[0-9]{1,2}' END END;
        ELSIF pg_catalog.left(v_rest, 1) IN (' ', '/', '.', '-', ':', 'T', ',') THEN
            v_re := v_re || '[' || pg_catalog.left(v_rest, 1) || ']';
            v_rest := pg_catalog.substr(v_rest, 2);
        ELSE
            RETURN NULL;
        END IF;
    END LOOP;
    RETURN v_re || '$';
END;
$$;

-- What a format list parses into: date, timestamp or timestamptz (the spec's type, else the production type), or NULL.
CREATE FUNCTION starpipe._temporal_kind(p_spec jsonb, p_target_type text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pg_catalog.to_regtype(coalesce(p_spec->>'type', p_target_type));
BEGIN
    -- Through a domain to its base type, so a date domain takes date formats.
    SELECT coalesce(NULLIF(t.typbasetype, 0), t.oid)::regtype INTO v_type FROM pg_catalog.pg_type t WHERE t.oid = v_type;
    RETURN CASE v_type WHEN 'date'::regtype THEN 'date'
                       WHEN 'timestamp without time zone'::regtype THEN 'timestamp'
                       WHEN 'timestamp with time zone'::regtype THEN 'timestamptz' END;
END;
$$;

-- One part of a concat or coalesce: a source column name, {from, clean}, or {const}; as text on the raw row r.
CREATE FUNCTION starpipe._source_part_expr(p_part jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expr text;
    v_rule text;
BEGIN
    -- The part's own cleaning comes first, so coalesce can skip a blank value made NULL by nullif_empty.
    IF pg_catalog.jsonb_typeof(p_part) = 'string' THEN
        RETURN pg_catalog.format('r.%I::text', p_part #>> '{}');
    ELSIF p_part ? 'const' THEN
        v_expr := pg_catalog.format('%L::text', p_part #>> '{const}');
    ELSE
        v_expr := pg_catalog.format('r.%I::text', p_part->>'from');
    END IF;
    FOR v_rule IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(p_part->'clean', '[]')) LOOP
        SELECT pg_catalog.format(r.expression, v_expr) INTO v_expr FROM starpipe.cleaning_rule r WHERE r.name = v_rule;
        IF NOT FOUND THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('unknown cleaning rule %L', v_rule));
        END IF;
    END LOOP;
    RETURN v_expr;
END;
$$;

-- The text step of a column spec: its source, cleaning rules and regex_replace, as SQL on the raw row r.
CREATE FUNCTION starpipe._column_text_expr(p_spec jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expr text;
    v_parts text;
    v_rule text;
    v_re jsonb;
BEGIN
    -- Everything here works on text; types come in the value step.
    IF p_spec ? 'const' THEN
        v_expr := pg_catalog.format('%L::text', p_spec #>> '{const}');
    ELSIF p_spec ? 'concat' OR p_spec ? 'coalesce' THEN
        SELECT pg_catalog.string_agg(starpipe._source_part_expr(p), ', ' ORDER BY o) INTO v_parts
          FROM pg_catalog.jsonb_array_elements(coalesce(p_spec->'concat', p_spec->'coalesce')) WITH ORDINALITY AS x(p, o);
        IF p_spec ? 'coalesce' THEN
            v_expr := pg_catalog.format('COALESCE(%s)', v_parts);
        ELSE
            -- concat_ws skips NULL parts; when every part is NULL the result is NULL, not an empty string.
            v_expr := pg_catalog.format('CASE WHEN COALESCE(%s) IS NULL THEN NULL ELSE pg_catalog.concat_ws(%L, %s) END',
                                        v_parts, coalesce(p_spec->>'separator', ''), v_parts);
        END IF;
    ELSE
        v_expr := pg_catalog.format('r.%I::text', p_spec->>'from');
    END IF;
    FOR v_rule IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(p_spec->'clean', '[]')) LOOP
        -- The rule's template comes from the one list apply_mapping checks against.
        SELECT pg_catalog.format(r.expression, v_expr) INTO v_expr FROM starpipe.cleaning_rule r WHERE r.name = v_rule;
        IF NOT FOUND THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('unknown cleaning rule %L', v_rule));
        END IF;
    END LOOP;
    FOR v_re IN SELECT e FROM pg_catalog.jsonb_array_elements(coalesce(p_spec->'regex_replace', '[]')) WITH ORDINALITY AS x(e, o) ORDER BY o LOOP
        v_expr := pg_catalog.format('pg_catalog.regexp_replace(%s, %L, %L, %L)', v_expr, v_re->>'pattern',
                                    coalesce(v_re->>'replacement', ''), coalesce(v_re->>'flags', ''));
    END LOOP;
    RETURN v_expr;
END;
$$;

-- The value step of a column spec on the text p_text: null_values, map, parse, casts and default, typed p_target_type.
CREATE FUNCTION starpipe._column_value_expr(p_spec jsonb, p_target_type text, p_text text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_expr text := p_text;
    v_kind text;
    v_case text := '';
    v_format text;
    v_parsed text;
    v_tz text := p_spec->>'timezone';
    v_true text[];
    v_false text[];
BEGIN
    -- p_text is a column of the text step's subquery (or a probe's variable), so repeating it costs nothing.
    IF p_spec ? 'null_values' THEN
        v_expr := pg_catalog.format('CASE WHEN %s = ANY (%L::text[]) THEN NULL ELSE %s END', v_expr,
                                    (SELECT pg_catalog.array_agg(v #>> '{}') FROM pg_catalog.jsonb_array_elements(p_spec->'null_values') v), v_expr);
    END IF;
    IF p_spec ? 'map' THEN
        SELECT 'CASE ' || v_expr || ' ' || pg_catalog.string_agg(pg_catalog.format('WHEN %L THEN %L::text', m.key, m.value #>> '{}'), ' ' ORDER BY m.key)
               || ' ELSE ' || CASE WHEN coalesce(p_spec #>> '{unmapped}', 'reject') = 'reject' THEN starpipe._refuse_expr(v_expr, 'text')
                                   WHEN p_spec #>> '{unmapped}' = 'pass' THEN v_expr
                                   ELSE pg_catalog.format('CASE WHEN %s IS NULL THEN NULL ELSE %L::text END', v_expr, p_spec #>> '{unmapped,default}') END
               || ' END'
          INTO v_expr FROM pg_catalog.jsonb_each(p_spec->'map') m;
    END IF;
    IF p_spec ? 'formats' OR (p_spec ? 'timezone') THEN
        v_kind := starpipe._temporal_kind(p_spec, p_target_type);
        FOR v_format IN SELECT f FROM pg_catalog.jsonb_array_elements_text(coalesce(p_spec->'formats', '["ISO"]')) WITH ORDINALITY AS x(f, o) ORDER BY o LOOP
            IF v_format = 'ISO' THEN
                -- Postgres's own input (DateStyle is pinned to ISO, YMD); a value with its own offset keeps it.
                v_parsed := CASE v_kind WHEN 'date' THEN pg_catalog.format('(%s)::date', v_expr)
                                        WHEN 'timestamp' THEN pg_catalog.format('(%s)::timestamp', v_expr)
                                        WHEN 'timestamptz' THEN
                                            CASE WHEN v_tz IS NULL THEN pg_catalog.format('(%s)::timestamptz', v_expr)
                                                 ELSE pg_catalog.format('CASE WHEN %s ~ %L THEN (%s)::timestamptz ELSE (%s)::timestamp AT TIME ZONE %L END',
                                                                        v_expr, '([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$', v_expr, v_expr, v_tz) END END;
                v_case := v_case || pg_catalog.format(' WHEN %s ~ %L THEN %s', v_expr, '^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}', v_parsed);
            ELSE
                -- to_timestamp reads the wall clock in the pinned UTC session; timezone says where that clock was.
                v_parsed := CASE v_kind WHEN 'date' THEN pg_catalog.format('pg_catalog.to_date(%s, %L)', v_expr, v_format)
                                        WHEN 'timestamp' THEN pg_catalog.format('pg_catalog.to_timestamp(%s, %L)::timestamp', v_expr, v_format)
                                        WHEN 'timestamptz' THEN
                                            CASE WHEN v_tz IS NULL THEN pg_catalog.format('pg_catalog.to_timestamp(%s, %L)', v_expr, v_format)
                                                 ELSE pg_catalog.format('(pg_catalog.to_timestamp(%s, %L)::timestamp AT TIME ZONE %L)', v_expr, v_format, v_tz) END END;
                v_case := v_case || pg_catalog.format(' WHEN %s ~ %L THEN %s', v_expr, starpipe._format_regex(v_format), v_parsed);
            END IF;
        END LOOP;
        v_expr := pg_catalog.format('CASE%s ELSE %s END', v_case, starpipe._refuse_expr(v_expr, v_kind));
    ELSIF p_spec ? 'number' THEN
        IF p_spec->'number' ? 'thousands' THEN
            v_expr := pg_catalog.format('pg_catalog.replace(%s, %L, '''')', v_expr, p_spec->'number'->>'thousands');
        END IF;
        IF coalesce(p_spec->'number'->>'decimal', '.') <> '.' THEN
            v_expr := pg_catalog.format('pg_catalog.replace(%s, %L, ''.'')', v_expr, p_spec->'number'->>'decimal');
        END IF;
    ELSIF p_spec ? 'booleans' THEN
        IF pg_catalog.jsonb_typeof(p_spec->'booleans') = 'string' THEN
            v_true := '{y,yes,1,t,true}';
            v_false := '{n,no,0,f,false}';
        ELSE
            SELECT pg_catalog.array_agg(pg_catalog.lower(v #>> '{}')) INTO v_true FROM pg_catalog.jsonb_array_elements(p_spec->'booleans'->'true') v;
            SELECT pg_catalog.array_agg(pg_catalog.lower(v #>> '{}')) INTO v_false FROM pg_catalog.jsonb_array_elements(p_spec->'booleans'->'false') v;
        END IF;
        v_expr := pg_catalog.format('CASE WHEN pg_catalog.lower(%s) = ANY (%L::text[]) THEN true WHEN pg_catalog.lower(%s) = ANY (%L::text[]) THEN false ELSE %s END',
                                    v_expr, v_true, v_expr, v_false, starpipe._refuse_expr(v_expr, 'boolean'));
    END IF;
    IF p_spec ? 'type' THEN
        v_expr := pg_catalog.format('(%s)::%s', v_expr, starpipe._mapping_type('type', p_spec->>'type'));
    END IF;
    v_expr := pg_catalog.format('(%s)::%s', v_expr, p_target_type);
    IF p_spec ? 'default' THEN
        v_expr := pg_catalog.format('COALESCE(%s, %L::%s)', v_expr, p_spec #>> '{default}', p_target_type);
    END IF;
    RETURN v_expr;
END;
$$;

-- The whole SQL expression that produces one target column from a raw row aliased r.
CREATE FUNCTION starpipe._column_expr(p_spec jsonb, p_target_type text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Inline form of both steps (the probes use it); the bulk INSERT computes the text step once in a subquery.
    SELECT starpipe._column_value_expr(p_spec, p_target_type, '(' || starpipe._column_text_expr(p_spec) || ')');
$$;

-- The rule a column's values are refused by when the value step fails: its parse, else its cast.
CREATE FUNCTION starpipe._column_rule(p_spec jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_spec ? 'formats' OR p_spec ? 'timezone' THEN 'formats'
                WHEN p_spec ? 'number' THEN 'number'
                WHEN p_spec ? 'booleans' THEN 'booleans'
                ELSE 'cast' END;
$$;

-- Refuses a malformed scalar list of a column spec (null_values, booleans.true/false): a non-empty array of strings or numbers.
CREATE FUNCTION starpipe._check_scalar_list(p_where text, p_list jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- YAML reads 0 and 1 as numbers; they are words here like any other.
    IF (CASE WHEN pg_catalog.jsonb_typeof(p_list) = 'array'
             THEN pg_catalog.jsonb_array_length(p_list) = 0
                  OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_list) e WHERE pg_catalog.jsonb_typeof(e) NOT IN ('string', 'number'))
             ELSE true END) THEN
        PERFORM starpipe._raise('SP006', p_where || ': needs a non-empty array of strings or numbers');
    END IF;
END;
$$;

-- Refuses a column spec that transform could not compile or that would do something else than it says.
CREATE FUNCTION starpipe._check_column_coercion(p_where text, p_target regclass, p_column text, p_spec jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key text;
    v_part jsonb;
    v_re jsonb;
    v_format text;
    v_type text := starpipe._column_type(p_target, p_column);
    v_kind text;
BEGIN
    -- Every rule is proven here, once, with its place in the config; transform then trusts the stored spec.
    IF pg_catalog.jsonb_typeof(p_spec) IS DISTINCT FROM 'object' THEN
        PERFORM starpipe._raise('SP006', p_where || ': a column is an object such as {"from": "SOURCE_COLUMN"}');
    END IF;
    SELECT k INTO v_key FROM pg_catalog.jsonb_object_keys(p_spec) k WHERE NOT k = ANY (starpipe._column_spec_keys()) ORDER BY k LIMIT 1;
    IF FOUND THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: unknown key %L', p_where, v_key),
            pg_catalog.format('Known keys: %s.', pg_catalog.array_to_string(starpipe._column_spec_keys(), ', ')));
    END IF;
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.unnest('{from,const,concat,coalesce}'::text[]) k WHERE p_spec ? k) <> 1 THEN
        PERFORM starpipe._raise('SP006', p_where || ': give exactly one of "from", "const", "concat" or "coalesce"');
    END IF;
    IF p_spec ? 'from' THEN
        PERFORM starpipe._check_column(p_spec->>'from');
    END IF;
    IF p_spec ? 'const' AND pg_catalog.jsonb_typeof(p_spec->'const') NOT IN ('string', 'number', 'boolean') THEN
        PERFORM starpipe._raise('SP006', p_where || '.const: needs a string, number or boolean');
    END IF;
    IF p_spec ? 'separator' AND (NOT p_spec ? 'concat' OR pg_catalog.jsonb_typeof(p_spec->'separator') <> 'string') THEN
        PERFORM starpipe._raise('SP006', p_where || '.separator: a string, only with "concat"');
    END IF;
    IF p_spec ? 'concat' OR p_spec ? 'coalesce' THEN
        v_key := CASE WHEN p_spec ? 'concat' THEN 'concat' ELSE 'coalesce' END;
        IF pg_catalog.jsonb_typeof(p_spec->v_key) <> 'array' OR pg_catalog.jsonb_array_length(p_spec->v_key) = 0 THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.%s: needs a non-empty array of source columns or {from, clean} / {const} parts', p_where, v_key));
        END IF;
        FOR v_part IN SELECT pg_catalog.jsonb_array_elements(p_spec->v_key) LOOP
            IF pg_catalog.jsonb_typeof(v_part) = 'string' THEN
                PERFORM starpipe._check_column(v_part #>> '{}');
            ELSIF pg_catalog.jsonb_typeof(v_part) = 'object'
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(v_part) k WHERE k NOT IN ('from', 'const', 'clean'))
                  AND (v_part ? 'from') <> (v_part ? 'const') THEN
                IF v_part ? 'from' THEN
                    PERFORM starpipe._check_column(v_part->>'from');
                END IF;
                PERFORM starpipe._check_clean(pg_catalog.format('%s.%s', p_where, v_key), v_part->'clean');
            ELSE
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.%s: each part is a source column name, {from: COLUMN, clean: [...]} or {const: VALUE}', p_where, v_key));
            END IF;
        END LOOP;
    END IF;
    PERFORM starpipe._check_clean(p_where, p_spec->'clean');
    IF p_spec ? 'regex_replace' AND pg_catalog.jsonb_typeof(p_spec->'regex_replace') <> 'array' THEN
        PERFORM starpipe._raise('SP006', p_where || '.regex_replace: needs an array of {pattern, replacement, flags}');
    END IF;
    FOR v_re IN SELECT pg_catalog.jsonb_array_elements(coalesce(p_spec->'regex_replace', '[]')) LOOP
        IF (CASE WHEN pg_catalog.jsonb_typeof(v_re) = 'object'
                 THEN NOT v_re ? 'pattern'
                      OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(v_re) e
                                  WHERE e.key NOT IN ('pattern', 'replacement', 'flags') OR pg_catalog.jsonb_typeof(e.value) <> 'string')
                 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', p_where || '.regex_replace: each entry is {pattern: REGEX, replacement: TEXT, flags: "g"|"i"|...} (strings)');
        END IF;
        IF coalesce(v_re->>'flags', '') !~ '^[gicnpqswx]*$' THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.regex_replace: unknown flags %L', p_where, v_re->>'flags'), NULL,
                'Flags are letters of regexp_replace: g (every match), i (case-insensitive), and the others Postgres documents.');
        END IF;
        BEGIN
            PERFORM pg_catalog.regexp_replace('', v_re->>'pattern', coalesce(v_re->>'replacement', ''), coalesce(v_re->>'flags', ''));
        EXCEPTION WHEN invalid_regular_expression OR invalid_parameter_value THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.regex_replace: invalid pattern %L (SQLSTATE %s)', p_where, v_re->>'pattern', SQLSTATE));
        END;
    END LOOP;
    IF p_spec ? 'null_values' THEN
        PERFORM starpipe._check_scalar_list(p_where || '.null_values', p_spec->'null_values');
    END IF;
    IF p_spec ? 'map' AND (pg_catalog.jsonb_typeof(p_spec->'map') <> 'object' OR p_spec->'map' = '{}'
                           OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p_spec->'map') m WHERE pg_catalog.jsonb_typeof(m.value) NOT IN ('string', 'number', 'boolean', 'null'))) THEN
        PERFORM starpipe._raise('SP006', p_where || '.map: needs a non-empty object of source value: target value (scalars or null)');
    END IF;
    IF p_spec ? 'unmapped' AND (NOT p_spec ? 'map'
                                OR NOT (coalesce(p_spec #>> '{unmapped}', '') IN ('reject', 'pass')
                                        OR (pg_catalog.jsonb_typeof(p_spec->'unmapped') = 'object'
                                            AND (SELECT pg_catalog.array_agg(k) FROM pg_catalog.jsonb_object_keys(p_spec->'unmapped') k) = '{default}'
                                            AND pg_catalog.jsonb_typeof(p_spec->'unmapped'->'default') IN ('string', 'number', 'boolean')))) THEN
        PERFORM starpipe._raise('SP006', p_where || '.unmapped: with "map", one of reject (the default), pass or {default: VALUE}');
    END IF;
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.unnest('{formats,number,booleans}'::text[]) k WHERE p_spec ? k) > 1 THEN
        PERFORM starpipe._raise('SP006', p_where || ': give at most one of "formats", "number" or "booleans"');
    END IF;
    IF p_spec ? 'formats' OR p_spec ? 'timezone' THEN
        v_kind := starpipe._temporal_kind(p_spec, v_type);
        IF v_kind IS NULL THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s.formats: %s is not a date or timestamp type', p_where, coalesce(p_spec->>'type', v_type)));
        END IF;
        IF p_spec ? 'formats' AND (pg_catalog.jsonb_typeof(p_spec->'formats') <> 'array' OR pg_catalog.jsonb_array_length(p_spec->'formats') = 0
                                   OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(p_spec->'formats') f WHERE pg_catalog.jsonb_typeof(f) <> 'string')) THEN
            PERFORM starpipe._raise('SP006', p_where || '.formats: needs a non-empty array of formats such as "MM/DD/YYYY" or "ISO"');
        END IF;
        FOR v_format IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(p_spec->'formats', '[]')) LOOP
            IF v_format <> 'ISO' AND starpipe._format_regex(v_format) IS NULL THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.formats: unsupported format %L', p_where, v_format), NULL,
                    'A format is ISO, or YYYY, YY, MM, DD, HH24, MI, SS, MS, US separated by nothing or by any of: space / . - : T ,');
            END IF;
        END LOOP;
        IF p_spec ? 'timezone' THEN
            IF v_kind <> 'timestamptz' THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.timezone: only for a timestamptz column (%s is %s)', p_where, p_column, v_kind));
            END IF;
            IF pg_catalog.jsonb_typeof(p_spec->'timezone') <> 'string'
               OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = p_spec->>'timezone') THEN
                PERFORM starpipe._raise('SP006', pg_catalog.format('%s.timezone: unknown time zone %L', p_where, p_spec->>'timezone'), NULL,
                    'Use a name of pg_timezone_names, such as America/New_York or UTC.');
            END IF;
        END IF;
    END IF;
    IF p_spec ? 'number' THEN
        IF (CASE WHEN pg_catalog.jsonb_typeof(p_spec->'number') = 'object'
                 THEN EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(p_spec->'number') e
                               WHERE e.key NOT IN ('decimal', 'thousands') OR coalesce(e.value #>> '{}', '') NOT IN ('.', ',', ' ', '''', '_'))
                      OR coalesce(p_spec->'number'->>'decimal', '.') = p_spec->'number'->>'thousands'
                      OR coalesce(p_spec->'number'->>'decimal', '.') NOT IN ('.', ',')
                 ELSE true END) THEN
            PERFORM starpipe._raise('SP006', p_where || '.number: needs {decimal: "." | ",", thousands: "," | "." | " " | "''" | "_"}, two different characters');
        END IF;
    END IF;
    IF p_spec ? 'booleans' THEN
        IF pg_catalog.jsonb_typeof(p_spec->'booleans') = 'string' THEN
            IF p_spec->>'booleans' <> 'standard' THEN
                PERFORM starpipe._raise('SP006', p_where || '.booleans: "standard" or {true: [...], false: [...]}');
            END IF;
        ELSIF pg_catalog.jsonb_typeof(p_spec->'booleans') = 'object'
              AND (SELECT pg_catalog.array_agg(k ORDER BY k) FROM pg_catalog.jsonb_object_keys(p_spec->'booleans') k) = '{false,true}' THEN
            PERFORM starpipe._check_scalar_list(p_where || '.booleans.true', p_spec->'booleans'->'true');
            PERFORM starpipe._check_scalar_list(p_where || '.booleans.false', p_spec->'booleans'->'false');
            IF EXISTS (SELECT pg_catalog.lower(t #>> '{}') FROM pg_catalog.jsonb_array_elements(p_spec->'booleans'->'true') t
                       INTERSECT SELECT pg_catalog.lower(f #>> '{}') FROM pg_catalog.jsonb_array_elements(p_spec->'booleans'->'false') f) THEN
                PERFORM starpipe._raise('SP006', p_where || '.booleans: a word is both true and false');
            END IF;
        ELSE
            PERFORM starpipe._raise('SP006', p_where || '.booleans: "standard" or {true: [...], false: [...]}');
        END IF;
    END IF;
    IF p_spec ? 'type' THEN
        PERFORM starpipe._mapping_type(p_where, p_spec->>'type');
    END IF;
    IF p_spec ? 'default' AND pg_catalog.jsonb_typeof(p_spec->'default') NOT IN ('string', 'number', 'boolean') THEN
        PERFORM starpipe._raise('SP006', p_where || '.default: needs a string, number or boolean');
    END IF;
    -- The compiled expression must type-check against production (casts exist, the default is a valid value); it
    -- is planned as starpipe_writer (LIMIT 0: nothing runs) over NULL text for every source column it reads.
    BEGIN
        PERFORM starpipe._as_writer_execute(pg_catalog.format('SELECT %s FROM (SELECT %s) r LIMIT 0',
            starpipe._column_expr(p_spec, v_type),
            (SELECT coalesce(pg_catalog.string_agg(DISTINCT pg_catalog.format('NULL::text AS %I', c), ', '), 'NULL')
               FROM (SELECT p_spec->>'from' AS c
                     UNION ALL SELECT coalesce(p->>'from', p #>> '{}') FROM pg_catalog.jsonb_array_elements(coalesce(p_spec->'concat', p_spec->'coalesce', '[]')) p
                      WHERE NOT p ? 'const') s WHERE c IS NOT NULL)));
        IF p_spec ? 'default' THEN
            PERFORM starpipe._as_writer_execute(pg_catalog.format('SELECT %L::%s', p_spec #>> '{default}', v_type));
        END IF;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR syntax_error_or_access_rule_violation THEN
        PERFORM starpipe._raise('SP006', pg_catalog.format('%s: cannot become %s (SQLSTATE %s)', p_where, v_type, SQLSTATE), NULL,
            'Check "type", "default" and the parse rule against the production column''s type.');
    END;
END;
$$;

-- Refuses a list of cleaning rules that is not an array of known names.
CREATE FUNCTION starpipe._check_clean(p_where text, p_clean jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule jsonb;
BEGIN
    -- Only names of starpipe.cleaning_rule ever reach generated SQL.
    IF p_clean IS NULL THEN
        RETURN;
    END IF;
    IF pg_catalog.jsonb_typeof(p_clean) <> 'array' THEN
        PERFORM starpipe._raise('SP006', p_where || '.clean: needs an array of cleaning rules',
            pg_catalog.format('Known rules: %s.', starpipe._known('starpipe.cleaning_rule')));
    END IF;
    FOR v_rule IN SELECT pg_catalog.jsonb_array_elements(p_clean) LOOP
        IF NOT EXISTS (SELECT 1 FROM starpipe.cleaning_rule r WHERE r.name = v_rule #>> '{}' AND pg_catalog.jsonb_typeof(v_rule) = 'string') THEN
            PERFORM starpipe._raise('SP006', pg_catalog.format('%s: unknown cleaning rule %L', p_where, v_rule #>> '{}'),
                pg_catalog.format('Known rules: %s.', starpipe._known('starpipe.cleaning_rule')));
        END IF;
    END LOOP;
END;
$$;

-- The source columns a column spec reads: its "from", or the "from" parts of its concat or coalesce.
CREATE FUNCTION starpipe._spec_sources(p_spec jsonb)
RETURNS SETOF text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_spec->>'from' WHERE p_spec ? 'from'
    UNION
    SELECT CASE WHEN pg_catalog.jsonb_typeof(p) = 'string' THEN p #>> '{}' ELSE p->>'from' END
      FROM pg_catalog.jsonb_array_elements(coalesce(p_spec->'concat', p_spec->'coalesce', '[]')) p
     WHERE pg_catalog.jsonb_typeof(p) = 'string' OR p ? 'from';
$$;
