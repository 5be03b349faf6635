-- starpipe: schemas, sequences and shared helpers.
\echo Use "CREATE EXTENSION starpipe" to load this file. \quit

-- Every function that parses, casts or formats values (register, prepare_raw, begin_raw, finish_raw, transform,
-- validate, promote) pins the settings those depend on, so the caller's session (PGTZ, PGDATESTYLE, a role's or a
-- database's SET) never changes what lands:
--   SET TimeZone = 'UTC'  SET DateStyle = 'ISO, YMD'  SET IntervalStyle = 'postgres'  SET extra_float_digits = 3
--   SET bytea_output = 'hex'  SET xmloption = 'content'  SET standard_conforming_strings = on  SET lc_monetary = 'C'
-- test/sql/settings.sql checks that each of them carries exactly these. DateStyle YMD reads ISO dates and refuses
-- day/month-ambiguous text such as 03/04/2026 (which a cast would otherwise read in whatever order the session had).

-- Staging copies of production tables, one per job; never readable by PUBLIC.
CREATE SCHEMA starpipe_staging;
REVOKE ALL ON SCHEMA starpipe FROM PUBLIC;
REVOKE ALL ON SCHEMA starpipe_staging FROM PUBLIC;

-- Fencing tokens: every claim takes the next value, so a later holder always has a larger token.
CREATE SEQUENCE starpipe.fence_seq;
-- Dumped with the data, so a restored database keeps issuing larger tokens.
SELECT pg_catalog.pg_extension_config_dump('starpipe.fence_seq', '');

-- Raises with a stable SQLSTATE in starpipe's own class "SP".
--   SP001 illegal state transition     SP002 stale fencing token
--   SP003 integrity mismatch           SP004 schema drift / missing column
--   SP005 invalid manifest             SP006 invalid mapping
--   SP007 mass delete refused (the guard; allow_mass_delete overrides it)
CREATE FUNCTION starpipe._raise(p_code text, p_message text, p_detail text DEFAULT NULL, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One place that knows how starpipe errors look.
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message,
        DETAIL = coalesce(p_detail, ''), HINT = coalesce(p_hint, '');
END;
$$;

-- Validates a client or table name used to build schema and table names.
CREATE FUNCTION starpipe._check_name(p_kind text, p_name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Lower-case letters, digits and underscores; 48 bytes leave room for "raw_" and "__<job id>".
    IF p_name IS NULL OR p_name !~ '^[a-z_][a-z0-9_]*$' OR pg_catalog.octet_length(p_name) > 48 THEN
        PERFORM starpipe._raise('42602',
            pg_catalog.format('invalid %s name', p_kind),
            'Names must match ^[a-z_][a-z0-9_]*$ and be at most 48 bytes.');
    END IF;
    -- "<table>__<job id>" names raw versions and staging tables; a name of that shape could collide with one.
    IF p_name ~ '__[0-9]+$' OR p_name ~ '^_load_[0-9]+_[0-9]+$' THEN
        PERFORM starpipe._raise('42602',
            pg_catalog.format('invalid %s name', p_kind),
            'Names ending in "__" and digits are reserved for raw versions and staging tables, and _load_<job>_<token> for loads.');
    END IF;
    RETURN p_name;
END;
$$;

-- The name of a job's raw version or staging table: "<base>__<job id>", refused rather than truncated past 63 bytes.
CREATE FUNCTION starpipe._version_name(p_base text, p_job_id bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Postgres would silently truncate a longer identifier, so two jobs could share a name.
    IF pg_catalog.octet_length(p_base || '__' || p_job_id) > 63 THEN
        PERFORM starpipe._raise('42622', pg_catalog.format('name %s__%s is longer than 63 bytes', p_base, p_job_id));
    END IF;
    RETURN p_base || '__' || p_job_id;
END;
$$;

-- Validates a column name from a manifest or a mapping (any characters, but a real identifier).
CREATE FUNCTION starpipe._check_column(p_name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Postgres truncates identifiers at 63 bytes; reject instead of silently colliding.
    IF p_name IS NULL OR p_name = '' OR pg_catalog.octet_length(p_name) > 63 THEN
        PERFORM starpipe._raise('42602', 'invalid column name', 'Column names must be 1 to 63 bytes.');
    END IF;
    -- Compared case-insensitively, like the manifest's duplicate check: a reader folding case must not mix them up.
    IF pg_catalog.lower(p_name) IN ('_ingestion_id', '_client_name', '_source_file', '_ingested_at', '_source_row') THEN
        PERFORM starpipe._raise('42701', pg_catalog.format('column name %I is reserved for starpipe metadata', p_name));
    END IF;
    RETURN p_name;
END;
$$;
