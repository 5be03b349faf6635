-- Loaded once into the isolation test database before the specs run (make installcheck), so every spec shares it.
-- It survives each spec's DROP EXTENSION starpipe CASCADE: a SQL function's body records no dependency.
-- sp_register registers a file of columns ID integer, STATE text for CLIENT.TABLE, snapshot DATE, run RUN, with ROWS
-- rows and a sha256 of 64 times SHA; keys CLIENT/TABLE/RUN and CLIENT/TABLE/RUN/data.
SET check_function_bodies = off;
CREATE FUNCTION public.sp_register(p_client text, p_table text, p_date text, p_run text, p_rows int, p_sha text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT job_id FROM starpipe.register(pg_catalog.jsonb_build_object(
        'format_version', 1, 'client', p_client, 'table', p_table, 'snapshot_date', p_date, 'run_id', p_run,
        'data_file', 'data.json', 'format', 'ndjson', 'row_count', p_rows, 'byte_count', 1, 'sha256', pg_catalog.repeat(p_sha, 64),
        'columns', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('name', 'ID', 'type', 'integer', 'nullable', false),
                                                pg_catalog.jsonb_build_object('name', 'STATE', 'type', 'text', 'nullable', true))),
      p_client || '/' || p_table || '/' || p_run, p_client || '/' || p_table || '/' || p_run || '/data');
$$;
