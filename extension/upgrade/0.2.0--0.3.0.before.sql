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
