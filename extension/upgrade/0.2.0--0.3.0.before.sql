-- Hand-written DDL that runs before the generated functions of 0.3.0: new tables and columns they use,
-- and DROPs of functions whose signature or result type changed.

-- Word lists of the mapping, defined once (issue: apply_mapping, transform and validate each had their own).
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
    argument    text NOT NULL CHECK (argument IN ('columns', 'column_values', 'count', 'column_fraction', 'percent', 'query')),
    parameters  text[] CHECK ((argument IN ('column_values', 'column_fraction', 'query')) = (parameters IS NOT NULL)),
    description text NOT NULL
);
COMMENT ON TABLE starpipe.check_rule IS 'Validation gates of a mapping table ("checks"), with the shape of their argument.';
COMMENT ON COLUMN starpipe.check_rule.argument IS 'columns: a non-empty array of mapped columns; count: a non-negative integer; column_values: {column, values: non-empty array of non-null scalars}; column_fraction: {column, max: a number in [0, 1]}; percent: a non-negative number; query: {name, query: a SELECT of offending source row numbers over "staged"}.';
COMMENT ON COLUMN starpipe.check_rule.parameters IS 'The keys of an object argument, every one required and no other allowed; NULL for an array or number argument.';
INSERT INTO starpipe.check_rule (name, argument, parameters, description) VALUES
    ('not_null',        'columns',         NULL,              'no staged row has NULL in any of the columns'),
    ('unique',          'columns',         NULL,              'no two staged rows share the columns'' values'),
    ('accepted_values', 'column_values',   '{column,values}', 'every non-NULL value of the column is one of the values'),
    ('min_rows',        'count',           NULL,              'the job stages at least this many rows'),
    ('null_fraction',   'column_fraction', '{column,max}',    'at most this fraction of the column''s staged values is NULL'),
    ('null_drift',      'column_fraction', '{column,max}',    'a column whose NULL fraction was at most max in the last promoted snapshot of the table is not NULL beyond max now (the phantom NULL)'),
    ('row_count_change','percent',         NULL,              'the staged row count differs from the last promoted snapshot''s by at most this many percent'),
    ('sql',             'query',           '{name,query}',    'a SELECT over the staged rows (as "staged") returning offending source row numbers finds none; it runs as starpipe_writer and its writes are rolled back');

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


-- begin_raw returns a record (load table, COPY columns, their types, binary eligibility) instead of COPY text.
DROP FUNCTION starpipe.begin_raw(bigint, bigint);

-- DUPLICATE now means "equal to the table's newest snapshot", so the same content may be live more than once
-- (A, B, then A again). The index stays for the lookups.
DROP INDEX starpipe.job_live_content;
CREATE INDEX job_content ON starpipe.job (client, table_name, sha256);
-- _extracted_at moved to the queue's file and became a strict SQL function.
DROP FUNCTION starpipe._extracted_at(starpipe.job);

-- Review 0.2.0 §3: the allowlist of schemas mappings may write into (maintained by the extension owner).
CREATE TABLE starpipe.target_schema (
    schema_name text PRIMARY KEY,
    allowed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    allowed_by  text NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE starpipe.target_schema IS 'Allowlist of production schemas a mapping''s target_schema may name (maintained by the extension owner).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.target_schema', '');

-- Review 0.2.0 §6: conflict audit rows say whether the policy applied the staged row or kept production.
ALTER TABLE starpipe.conflict ADD COLUMN applied boolean;
COMMENT ON COLUMN starpipe.conflict.applied IS 'true: the policy wrote the staged values; false: it kept the production row (target_wins, older_snapshot, an older or NULL version under newer_wins); NULL: audited before 0.3.0 under newer_wins.';

-- Review 0.2.0 §7: a schema version remembers the table's column specs in force when it was first seen.
ALTER TABLE starpipe.schema_version ADD COLUMN mapping_columns jsonb;
COMMENT ON COLUMN starpipe.schema_version.mapping_version IS 'The client''s mapping version when this schema was first seen.';
COMMENT ON COLUMN starpipe.schema_version.mapping_columns IS 'The table''s mapped column specs when this schema was first seen (NULL: no mapping); a retyped column is covered once the specs mapped from it differ.';
COMMENT ON COLUMN starpipe.schema_version.columns IS 'Source columns in order: [{name, type, nullable, position[, source_type]}] as the manifest gave them.';

-- Issue 10: conflict rows of a large promotion are not checked one by one against starpipe.job (only promote writes them).
ALTER TABLE starpipe.conflict DROP CONSTRAINT conflict_job_id_fkey;
-- and its job index is a BRIN (a promotion appends its conflict rows together).
DROP INDEX starpipe.conflict_job;
CREATE INDEX conflict_job ON starpipe.conflict USING brin (job_id);
COMMENT ON COLUMN starpipe.conflict.job_id IS 'The promoted job (starpipe.promotion, which references starpipe.job); not a foreign key, so that auditing a large promotion costs no per-row check. Only promote writes it, for the job it holds locked.';
-- Issue 10: the delete audit, and one row per promoted job written in the promotion's transaction.
-- Production rows a full snapshot deleted (or soft-deleted) because their key was no longer in it.
CREATE TABLE starpipe.deletion (
    job_id      bigint NOT NULL,
    target      text NOT NULL,
    key         jsonb NOT NULL,
    rule        text NOT NULL CHECK (rule IN ('soft', 'hard')),
    before_hash bigint,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX deletion_job ON starpipe.deletion (job_id);
COMMENT ON TABLE starpipe.deletion IS 'Delete audit: each production row a full snapshot''s promotion deleted (hard) or marked deleted (soft), by key.';
COMMENT ON COLUMN starpipe.deletion.before_hash IS 'Hash of the row''s mapped columns before it was deleted (for starpipe.verify).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.deletion', '');

-- One row per promoted job, written in the promotion's transaction: what it did with the staged rows.
CREATE TABLE starpipe.promotion (
    job_id          bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    target          text NOT NULL,
    policy          text NOT NULL,
    mapping_version integer NOT NULL,
    fence           bigint,
    actor           text NOT NULL,
    manual          boolean NOT NULL,
    staged          bigint NOT NULL,
    inserted        bigint NOT NULL,
    updated         bigint NOT NULL,
    unchanged       bigint NOT NULL,
    kept            bigint NOT NULL,
    at              timestamptz NOT NULL DEFAULT pg_catalog.now(),
    deleted         bigint NOT NULL DEFAULT 0,
    mode            text NOT NULL DEFAULT 'full',
    column_policies jsonb NOT NULL DEFAULT '{}',
    skipped         jsonb NOT NULL DEFAULT '{}',
    deletes         jsonb,
    staged_digest   text,
    promoted_digest text
);
COMMENT ON TABLE starpipe.promotion IS 'Promotion audit: per promoted job, how many staged rows were inserted, updated or skipped (unchanged, or kept by the policy, and why) and how many production rows were deleted, with the fence, actor, mapping version and digests.';
COMMENT ON COLUMN starpipe.promotion.unchanged IS 'Staged rows skipped because production already holds what the policy would make of them.';
COMMENT ON COLUMN starpipe.promotion.kept IS 'Staged rows skipped because the policy kept the differing production row (target_wins, older_snapshot, an older or NULL version under newer_wins); each has a conflict row with applied = false.';
COMMENT ON COLUMN starpipe.promotion.skipped IS 'Why rows were skipped: {"unchanged": n, "target_wins": n, "older_snapshot": n, "not_newer": n} (zero counts omitted).';
COMMENT ON COLUMN starpipe.promotion.deletes IS 'The deletes rule and the mass-delete guard''s figures: {rule, max_fraction, missing, live_rows, allowed_by_override}; NULL when the rule is ignore or the file is incremental or older.';
COMMENT ON COLUMN starpipe.promotion.actor IS 'SESSION_USER of the promotion: the worker''s login, or the admin''s for a manual promotion.';
COMMENT ON COLUMN starpipe.promotion.staged_digest IS 'Digest of the staged rows promoted (equal to starpipe.job.staged_digest, checked at promotion).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.promotion', '');

-- Issue 10: promotion with per-column policies, full-snapshot deletes and digests.
DROP FUNCTION starpipe._promote(bigint, bigint, boolean);
ALTER TABLE starpipe.job ADD COLUMN raw_digest text, ADD COLUMN staged_digest text, ADD COLUMN staged_xmins text[],
    ADD COLUMN promoted_digest text, ADD COLUMN rows_deleted bigint;
COMMENT ON COLUMN starpipe.job.staged_xmins IS 'The transactions (xmin) that wrote the staged rows validate checked; with the row count, promote proves staging unchanged without hashing it again.';
COMMENT ON COLUMN starpipe.job.raw_digest IS 'Digest ("rows:sum", see starpipe._digest) of the raw version''s data columns, computed when it was loaded.';
COMMENT ON COLUMN starpipe.job.staged_digest IS 'Digest of the staged rows'' mapped columns, computed by validate; promote refuses a staging table that no longer matches it.';
COMMENT ON COLUMN starpipe.job.promoted_digest IS 'Digest of the job''s keys'' rows in production right after its promotion (mapped columns); starpipe.verify recomputes it.';
COMMENT ON COLUMN starpipe.job.rows_deleted IS 'Production rows the promotion of a full snapshot deleted or soft-deleted (the mapping''s deletes rule).';
-- The audit's identity is unique by construction; its index cost a large promotion more than the rest of the audit.
ALTER TABLE starpipe.conflict DROP CONSTRAINT conflict_pkey;
ALTER TABLE starpipe.conflict ADD COLUMN applied_columns text[], ADD COLUMN before_hash bigint, ADD COLUMN before_values jsonb,
    ADD COLUMN after_values jsonb;
COMMENT ON TABLE starpipe.conflict IS 'Conflict audit trail: each promoted row that differed from production, the columns that differed and the policy applied.';
COMMENT ON COLUMN starpipe.conflict.conflict_id IS 'Increasing in audit order; unique by construction (an identity), not indexed: a large promotion writes hundreds of thousands of rows, and the audit is read by job.';
COMMENT ON COLUMN starpipe.conflict.job_id IS 'The promoted job (starpipe.promotion, which references starpipe.job); not a foreign key, so that auditing a large promotion costs no per-row check. Only promote writes it, for the job it holds locked.';
COMMENT ON COLUMN starpipe.conflict.key IS 'The conflict key''s values. Keys are kept (they identify the row to trace it); document what your keys hold.';
COMMENT ON COLUMN starpipe.conflict.policy IS 'The table''s policy (older_snapshot for a late snapshot); per-column overrides are in starpipe.promotion.column_policies.';
COMMENT ON COLUMN starpipe.conflict.applied IS 'true: the policy wrote staged values (applied_columns); false: it kept the production row (target_wins, older_snapshot, an older or NULL version under newer_wins); NULL: audited before 0.3.0 under newer_wins.';
COMMENT ON COLUMN starpipe.conflict.applied_columns IS 'The changed columns whose staged value the policy wrote (a subset of changed_columns; NULL before 0.3.0).';
COMMENT ON COLUMN starpipe.conflict.before_hash IS 'Hash of the production row''s mapped columns before this promotion (the digest term verify uses for rows a later job changed).';
COMMENT ON COLUMN starpipe.conflict.before_values IS 'Production values of the changed columns before this promotion; only with the mapping''s audit_values: true (they may be PHI).';
COMMENT ON COLUMN starpipe.conflict.after_values IS 'Staged values of the changed columns; only with audit_values: true (they may be PHI).';
-- Issue 11: reconciliation counts on the job, and the quarantine of refused rows.
ALTER TABLE starpipe.job ADD COLUMN rows_rejected bigint, ADD COLUMN rows_deduplicated bigint;
COMMENT ON COLUMN starpipe.job.rows_rejected IS 'Raw rows transform quarantined (starpipe.reject); rows_raw = rows_staged + rows_rejected + rows_deduplicated.';
COMMENT ON COLUMN starpipe.job.rows_deduplicated IS 'Raw rows transform left out because a later (or dedup-preferred) row had the same conflict key.';
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
-- Transform now quarantines refused rows (sql/55_quarantine.sql) instead of locating the first one.
DROP FUNCTION IF EXISTS starpipe._find_bad_value(regclass, regclass, jsonb);
-- Issue 11: the baseline of null_drift and row_count_change.
CREATE TABLE starpipe.snapshot_profile (
    job_id      bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    rows        bigint NOT NULL,
    null_counts jsonb,
    profiled_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE starpipe.snapshot_profile IS 'Staged rows and NULL counts per mapped column of each validated job: the baseline null_drift and row_count_change compare a new snapshot with (counts only, never values).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.snapshot_profile', '');
-- Issue 11: replays of rejected rows.
CREATE TABLE starpipe.reject_replay (
    job_id     bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    replay_of  bigint NOT NULL REFERENCES starpipe.job (job_id),
    rows       bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by text NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX reject_replay_of ON starpipe.reject_replay (replay_of);
COMMENT ON TABLE starpipe.reject_replay IS 'Replay jobs (starpipe.replay_rejects): the job whose rejected rows each one carries, and how many.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.reject_replay', '');
-- Issue 11: the production shape each job's staging was built from.
CREATE TABLE starpipe.staging_shape (
    job_id      bigint PRIMARY KEY REFERENCES starpipe.job (job_id),
    target      text NOT NULL,
    shape       jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE starpipe.staging_shape IS 'The production shape each job''s staging table was built from: mapped columns (type, NOT NULL) and CHECK constraints; validate compares it with the catalog.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.staging_shape', '');
-- Issue 11: a production constraint as the quarantine probe evaluates it.
CREATE TYPE starpipe._staging_constraint AS (rule text, state text, col text, name text, refused text);

-- Issue 14: webhook alerts (sql/82_alerts.sql).
-- One row per alert: queued by queue_alerts, held by one worker while it posts it, settled as sent or failed.
CREATE TABLE starpipe.alert (
    alert_key   text PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('job_failed', 'job_dead', 'drift_blocked', 'dlq_buildup')),
    job_id      bigint NOT NULL REFERENCES starpipe.job (job_id),
    client      text NOT NULL,
    table_name  text NOT NULL,
    status      text NOT NULL,
    stage       text NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    held_until  timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    sent_at     timestamptz,
    last_error  text
);
CREATE INDEX alert_unsent ON starpipe.alert (created_at) WHERE sent_at IS NULL;
COMMENT ON TABLE starpipe.alert IS 'Webhook alerts: each FAILED or DEAD transition, each drift BLOCK, and DLQ build-up once an hour per client; sent once by whichever worker holds it.';
COMMENT ON COLUMN starpipe.alert.alert_key IS 'What makes a repeat the same alert: job:<job>:<event> for a transition, dlq:<client>:<hour> for DLQ build-up.';
COMMENT ON COLUMN starpipe.alert.attempts IS 'Times a worker held the alert to post it; claim_alerts stops offering it after 10.';
SELECT pg_catalog.pg_extension_config_dump('starpipe.alert', '');

-- Progress reported by heartbeats (issue 14: a long raw load that renews its lease is not stuck).
ALTER TABLE starpipe.job ADD COLUMN progress bigint, ADD COLUMN progress_at timestamptz;
COMMENT ON COLUMN starpipe.job.progress IS 'The last progress figure a heartbeat reported for the current stage (bytes of the data file read by a raw load); NULL when none did.';
COMMENT ON COLUMN starpipe.job.progress_at IS 'When a heartbeat last reported a progress figure different from the one before: a job moving through a long stage is not stuck.';
DROP FUNCTION starpipe.heartbeat(bigint, bigint, interval);
