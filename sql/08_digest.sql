-- starpipe: order-independent digests of a stage's rows (raw version, staged rows, promoted rows).
--
-- A digest is "<rows>:<sum>": the row count and the sum, modulo 2^64, of a 64-bit hash of each row's values
-- (hash_record_extended, so equal values hash equally whatever their text form: 1.0 and 1.00, domains and their
-- base type). A sum does not depend on row order, and it can be updated row by row: promotion derives the digest
-- of what it wrote from the staged digest and the rows it changed, and verify replaces a row's term by the one a
-- later promotion recorded. It detects changes, accidental or by hand; it is not a signature.

-- Whether values of a type can be hashed by hash_record_extended (json, xml, point and the like cannot).
CREATE FUNCTION starpipe._hashable(p_type regtype)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type oid := p_type;
BEGIN
    -- A domain hashes as its base type. Resolving it here, not by casting to it, keeps its checks (production-side
    -- code) from running as the extension's owner.
    WHILE (SELECT t.typtype = 'd' FROM pg_catalog.pg_type t WHERE t.oid = v_type) LOOP
        v_type := (SELECT t.typbasetype FROM pg_catalog.pg_type t WHERE t.oid = v_type);
    END LOOP;
    -- A NULL field is enough: the hash function is looked up before the value is read, and casting NULL to a
    -- type that is not a domain runs no code.
    EXECUTE pg_catalog.format('SELECT pg_catalog.hash_record_extended(ROW(NULL::%s), 0)', v_type::regtype);
    RETURN true;
EXCEPTION WHEN undefined_function THEN
    RETURN false;
END;
$$;

-- The hash of one row of p_rel aliased p_alias over p_columns (in the given order): an SQL expression. A column
-- whose type has no hash function is hashed through its text form, which the pinned settings make stable.
CREATE FUNCTION starpipe._row_hash_expr(p_rel regclass, p_alias text, p_columns text[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('pg_catalog.hash_record_extended(ROW(%s), 0)', pg_catalog.string_agg(
               CASE WHEN starpipe._hashable(a.atttypid::regtype) THEN pg_catalog.format('%I.%I', p_alias, c.name)
                    ELSE pg_catalog.format('%I.%I::text', p_alias, c.name) END, ', ' ORDER BY c.n))
      FROM pg_catalog.unnest(p_columns) WITH ORDINALITY AS c(name, n)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = p_rel AND a.attname = c.name AND NOT a.attisdropped;
$$;

-- A digest from a row count and a sum of row hashes (any integer: it is reduced modulo 2^64).
CREATE FUNCTION starpipe._digest(p_rows bigint, p_sum numeric)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('%s:%s', p_rows,
        pg_catalog.mod(pg_catalog.mod(coalesce(p_sum, 0), 18446744073709551616) + 18446744073709551616, 18446744073709551616));
$$;

-- The row count and the sum of a digest.
CREATE FUNCTION starpipe._digest_rows(p_digest text)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.split_part(p_digest, ':', 1)::bigint;
$$;

CREATE FUNCTION starpipe._digest_sum(p_digest text)
RETURNS numeric
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.split_part(p_digest, ':', 2)::numeric;
$$;

-- The digest of the rows of p_rel over p_columns, as the caller (raw versions hold built-in types only).
CREATE FUNCTION starpipe._digest_of(p_rel regclass, p_columns text[])
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows bigint;
    v_sum numeric;
BEGIN
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*), pg_catalog.sum(%s) FROM %s r',
                              starpipe._row_hash_expr(p_rel, 'r', p_columns), p_rel)
       INTO v_rows, v_sum;
    RETURN starpipe._digest(v_rows, v_sum);
END;
$$;

-- The same, as starpipe_writer: staging and production hold production types, whose hash functions are
-- production-side code. The writer must be able to read p_rel.
CREATE FUNCTION starpipe._digest_as_writer(p_rel regclass, p_columns text[], p_where text DEFAULT 'true')
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result jsonb;
BEGIN
    SELECT d INTO v_result FROM starpipe._as_writer_query(pg_catalog.format(
        'SELECT pg_catalog.jsonb_build_object(''rows'', pg_catalog.count(*), ''sum'', pg_catalog.sum(%s)) FROM %s r WHERE %s',
        starpipe._row_hash_expr(p_rel, 'r', p_columns), p_rel, p_where)) d;
    RETURN starpipe._digest((v_result->>'rows')::bigint, (v_result->>'sum')::numeric);
END;
$$;

-- The digest of a staging table and the transactions that wrote its rows (their xmin), in one scan, as
-- starpipe_writer: {digest, xmins}. A row written, updated or deleted later changes the row count or brings
-- another xmin, so comparing both later is as strict as recomputing the digest, without hashing every row again.
CREATE FUNCTION starpipe._staging_fingerprint(p_rel regclass, p_columns text[])
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result jsonb;
BEGIN
    SELECT d INTO v_result FROM starpipe._as_writer_query(pg_catalog.format(
        'SELECT pg_catalog.jsonb_build_object(''rows'', pg_catalog.count(*), ''sum'', pg_catalog.sum(%s), '
        '''xmins'', coalesce(pg_catalog.array_agg(DISTINCT r.xmin::text), ''{}'')) FROM %s r',
        starpipe._row_hash_expr(p_rel, 'r', p_columns), p_rel)) d;
    RETURN pg_catalog.jsonb_build_object('digest', starpipe._digest((v_result->>'rows')::bigint, (v_result->>'sum')::numeric),
                                         'xmins', v_result->'xmins');
END;
$$;

-- Whether a staging table still holds exactly the rows its fingerprint saw: the same count, all written by the
-- same transactions (one scan, no hashing), as starpipe_writer.
CREATE FUNCTION starpipe._staging_unchanged(p_rel regclass, p_rows bigint, p_xmins jsonb)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result jsonb;
BEGIN
    SELECT d INTO v_result FROM starpipe._as_writer_query(pg_catalog.format(
        'SELECT pg_catalog.jsonb_build_object(''rows'', pg_catalog.count(*), '
        '''foreign'', pg_catalog.count(*) FILTER (WHERE NOT (r.xmin = ANY (%L::xid[])))) FROM %s r',
        (SELECT pg_catalog.array_agg(x) FROM pg_catalog.jsonb_array_elements_text(p_xmins) x), p_rel)) d;
    RETURN (v_result->>'rows')::bigint = p_rows AND (v_result->>'foreign')::bigint = 0;
END;
$$;
