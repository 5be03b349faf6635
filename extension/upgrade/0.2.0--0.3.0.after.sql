-- Hand-written steps that run after the generated functions of 0.3.0: data migrations.

-- Review 0.2.0 §6: audit rows of policies that never or always write say so; newer_wins ones stay unknown (NULL).
UPDATE starpipe.conflict SET applied = (policy IN ('source_wins', 'merge_non_null')) WHERE policy <> 'newer_wins';

-- Review 0.2.0 §7: schema versions recorded under 0.2.0 get the column specs of the mapping version they were first
-- seen with, so only a change to those specs (or accept_schema) covers their retyped columns.
UPDATE starpipe.schema_version s
   SET mapping_columns = m.config->'tables'->s.table_name->'columns'
  FROM starpipe.mapping m
 WHERE m.client = s.client AND m.version = s.mapping_version;

-- Review 0.2.0 §2 and §3: promotion now writes as starpipe_writer, only into allowed schemas. Existing mappings keep
-- working once the extension owner runs, per target schema and table, what the warning says.
DO $$
DECLARE
    v_schema text;
    v_tables text;
BEGIN
    FOR v_schema, v_tables IN
        SELECT m.config->>'target_schema', pg_catalog.string_agg(DISTINCT pg_catalog.format('%I.%I', m.config->>'target_schema', t.value->>'target'), ', ')
          FROM starpipe.mapping m CROSS JOIN LATERAL pg_catalog.jsonb_each(m.config->'tables') t
         WHERE m.version = (SELECT pg_catalog.max(l.version) FROM starpipe.mapping l WHERE l.client = m.client)
         GROUP BY 1 ORDER BY 1
    LOOP
        RAISE WARNING 'starpipe 0.3.0: mappings write into schema %, which needs: INSERT INTO starpipe.target_schema (schema_name) VALUES (%); GRANT USAGE ON SCHEMA % TO starpipe_writer; GRANT SELECT, INSERT, UPDATE ON % TO starpipe_writer;',
            pg_catalog.quote_ident(v_schema), pg_catalog.quote_literal(v_schema), pg_catalog.quote_ident(v_schema), v_tables;
    END LOOP;
END;
$$;

-- Issue 11: a promoted replay job resolves the rejects it staged (the trigger needs the generated function).
CREATE TRIGGER job_resolve_replayed_rejects AFTER UPDATE OF status ON starpipe.job
    FOR EACH ROW WHEN (NEW.status = 'SUCCESS' AND NEW.stage = 'promoted' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION starpipe._resolve_replayed_rejects();

-- job_status shows the reconciliation counts (rows_raw = rows_staged + rows_rejected + rows_deduplicated) and deletes.
CREATE OR REPLACE VIEW starpipe.job_status AS
SELECT job_id, client, table_name, snapshot_date, run_id, status, stage, row_count, rows_raw,
       rows_staged, rows_inserted, rows_updated, attempts, error, duplicate_of, data_key, updated_at,
       visible_at, schema_version, rows_rejected, rows_deduplicated, rows_deleted
  FROM starpipe.job;
