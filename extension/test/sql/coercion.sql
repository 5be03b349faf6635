-- Issue 11: coercions with formats, value maps, regex_replace, default, concat/coalesce; row quarantine with a
-- reject budget; constraints of production enforced in staging; reconciliation; raw kept while rejects are open.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS production, raw_acme CASCADE;
RESET client_min_messages;
\ir test/fresh_extension.psql
\ir test/helpers.psql
\set VERBOSITY terse
SET DateStyle = 'ISO, YMD';
SET TimeZone = 'UTC';

CREATE SCHEMA production;
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
GRANT USAGE ON SCHEMA production TO starpipe_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA production GRANT SELECT, INSERT, UPDATE ON TABLES TO starpipe_writer;
CREATE TABLE production.people (
    person_id  integer PRIMARY KEY,
    born       date NOT NULL,
    seen_at    timestamptz,
    local_at   timestamp,
    gender     text CHECK (gender IN ('male', 'female', 'unknown')),
    smoker     boolean,
    balance    numeric(12, 2) CHECK (balance >= 0),
    full_name  text,
    phone      text,
    kind       text NOT NULL DEFAULT 'patient'
);

-- Applies the people mapping with these columns (merged over the defaults) and table keys; returns the version or the error.
CREATE FUNCTION pg_temp.try(p_columns jsonb, p_entry jsonb DEFAULT '{}') RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN starpipe.apply_mapping(pg_catalog.jsonb_build_object('version', 1, 'client', 'acme', 'target_schema', 'production',
        'tables', pg_catalog.jsonb_build_object('people', pg_catalog.jsonb_build_object('target', 'people', 'conflict_key', '["person_id"]'::jsonb,
            'columns', '{"person_id": {"from": "ID"}, "born": {"from": "BORN"}}'::jsonb || p_columns) || p_entry)))::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

-- 1. apply_mapping proves every rule, naming the table, column and key.
SELECT pg_temp.try('{"born": {"from": "BORN", "fromats": ["YYYYMMDD"]}}');
SELECT pg_temp.try('{"born": {"from": "BORN", "formats": ["YYYY/QQ"]}}');
SELECT pg_temp.try('{"born": {"from": "BORN", "formats": []}}');
SELECT pg_temp.try('{"smoker": {"from": "SMOKER", "formats": ["ISO"]}}');
SELECT pg_temp.try('{"seen_at": {"from": "SEEN", "formats": ["ISO"], "timezone": "Mars/Olympus"}}');
SELECT pg_temp.try('{"born": {"from": "BORN", "timezone": "UTC"}}');
SELECT pg_temp.try('{"balance": {"from": "BAL", "number": {"decimal": ",", "thousands": ","}}}');
SELECT pg_temp.try('{"balance": {"from": "BAL", "number": {"decimal": ";"}}}');
SELECT pg_temp.try('{"smoker": {"from": "SMOKER", "booleans": {"true": ["Y"], "false": ["y"]}}}');
SELECT pg_temp.try('{"smoker": {"from": "SMOKER", "booleans": "yes-no"}}');
SELECT pg_temp.try('{"smoker": {"from": "SMOKER", "booleans": "standard", "number": {}}}');
SELECT pg_temp.try('{"gender": {"from": "G", "map": {}}}');
SELECT pg_temp.try('{"gender": {"from": "G", "map": {"M": ["male"]}}}');
SELECT pg_temp.try('{"gender": {"from": "G", "unmapped": "pass"}}');
SELECT pg_temp.try('{"gender": {"from": "G", "map": {"M": "male"}, "unmapped": "drop"}}');
SELECT pg_temp.try('{"phone": {"from": "PHONE", "regex_replace": [{"pattern": "[0-9"}]}}');
SELECT pg_temp.try('{"phone": {"from": "PHONE", "regex_replace": [{"pattern": "x", "flags": "gz"}]}}');
SELECT pg_temp.try('{"phone": {"from": "PHONE", "regex_replace": {"pattern": "x"}}}');
SELECT pg_temp.try('{"born": {"from": "BORN", "default": "not a date"}}');
SELECT pg_temp.try('{"full_name": {"from": "FIRST", "concat": ["LAST"]}}');
SELECT pg_temp.try('{"full_name": {"concat": []}}');
SELECT pg_temp.try('{"full_name": {"concat": [{"from": "FIRST", "clean": ["shout"]}]}}');
SELECT pg_temp.try('{"full_name": {"coalesce": ["FIRST"], "separator": " "}}');
SELECT pg_temp.try('{"born": {"from": "BORN"}}', '{"rejects": {"max_rows": -1}}');
SELECT pg_temp.try('{"born": {"from": "BORN"}}', '{"rejects": {"max_fraction": 2}}');
SELECT pg_temp.try('{"born": {"from": "BORN"}}', '{"rejects": {"max": 1}}');

-- 2. The full mapping, with a budget of two rows.
SELECT pg_temp.try('{
  "born":      {"from": "BORN", "clean": ["trim"], "null_values": ["N/A", "1900-01-01"], "formats": ["MM/DD/YYYY", "DD.MM.YYYY", "YYYYMMDD", "ISO"]},
  "seen_at":   {"from": "SEEN", "formats": ["YYYYMMDD HH24:MI", "ISO"], "timezone": "America/New_York"},
  "local_at":  {"from": "SEEN", "formats": ["YYYYMMDD HH24:MI", "ISO"]},
  "gender":    {"from": "G", "clean": ["trim", "upper"], "map": {"M": "male", "F": "female", "U": "unknown"}},
  "smoker":    {"from": "SMOKER", "booleans": "standard"},
  "balance":   {"from": "BAL", "number": {"decimal": ",", "thousands": "."}, "default": 0},
  "full_name": {"concat": [{"from": "FIRST", "clean": ["trim"]}, "LAST"], "separator": " "},
  "phone":     {"coalesce": [{"from": "PHONE", "clean": ["nullif_empty"]}, "MOBILE"], "regex_replace": [{"pattern": "[^0-9]", "replacement": "", "flags": "g"}]},
  "kind":      {"from": "KIND", "map": {"P": "patient", "S": "staff"}, "unmapped": {"default": "other"}, "default": "patient"}
}', '{"rejects": {"max_rows": 2}}');

CREATE TEMP TABLE cols AS SELECT '[{"name": "ID", "type": "integer"}, {"name": "BORN", "type": "text"}, {"name": "SEEN", "type": "text"},
    {"name": "G", "type": "text"}, {"name": "SMOKER", "type": "text"}, {"name": "BAL", "type": "text"}, {"name": "FIRST", "type": "text"},
    {"name": "LAST", "type": "text"}, {"name": "PHONE", "type": "text"}, {"name": "MOBILE", "type": "text"}, {"name": "KIND", "type": "text"}]'::jsonb AS c;

-- A clean batch: every format, sentinel, map and source form.
SELECT pg_temp.ingest('acme', 'people', '2026-11-01', 'r1', (SELECT c FROM cols), '[
  [1, "02/29/2000", "20260301 09:30", " m ", "Y", "1.234,50", "Ada", "Lovelace", "(555) 010-0001", null, "P"],
  [2, "31.12.1999", "2026-03-01T09:30:00Z", "F", "no", null, null, "Hopper", "", "555-0002", "S"],
  [3, "19991231", "2026-03-01 09:30", "u", "0", "7", "Grace", null, null, null, "X"],
  [4, " 2001-02-03 ", null, null, "T", "12,5", null, null, null, null, null],
  [5, "N/A", null, null, null, null, null, null, null, null, null],
  [6, "1900-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT status, rows_raw, rows_staged, rows_rejected, rows_deduplicated, error FROM starpipe.job WHERE job_id = 1;
SELECT count(*) AS rejects FROM starpipe.reject WHERE job_id = 1;
SELECT * FROM starpipe.rejects(1);
-- Rows 5 and 6 had a sentinel birth date: NULL in a NOT NULL column, so the budget of two takes them.
SELECT person_id, born, seen_at, local_at, gender, smoker, balance, full_name, phone, kind FROM production.people ORDER BY person_id;

-- 3. Bad rows beside good ones: bad dates, an unknown code, a NOT NULL and a CHECK violation; under a budget of five,
-- the good rows are promoted, the bad ones rejected with row, column, rule and SQLSTATE, and no value appears anywhere.
SELECT pg_temp.try('{
  "born":    {"from": "BORN", "clean": ["trim"], "null_values": ["N/A"], "formats": ["MM/DD/YYYY", "ISO"]},
  "gender":  {"from": "G", "clean": ["trim", "upper"], "map": {"M": "male", "F": "female", "U": "unknown"}},
  "balance": {"from": "BAL", "number": {"decimal": ",", "thousands": "."}},
  "smoker":  {"from": "SMOKER", "booleans": "standard"}
}', '{"rejects": {"max_rows": 5}}');
SELECT pg_temp.ingest('acme', 'people', '2026-11-02', 'r2', (SELECT c FROM cols), '[
  [10, "01/02/2000", null, "M", "Y", "1", null, null, null, null, null],
  [11, "13/45/2000", null, "F", "N", "2", null, null, null, null, null],
  [12, "SECRET-CANARY-1", null, "F", "N", "3", null, null, null, null, null],
  [13, "2000-01-05", null, "SECRET-CANARY-2", "N", "4", null, null, null, null, null],
  [14, "N/A", null, "M", "N", "5", null, null, null, null, null],
  [15, "2000-01-07", null, "M", "maybe", "-6", null, null, null, null, null],
  [16, "2000-01-08", null, "U", "1", "1.000,25", null, null, null, null, null]]');
SELECT status, rows_raw, rows_staged, rows_rejected, rows_deduplicated FROM starpipe.job WHERE job_id = 2;
SELECT source_row, target_column, rule, sqlstate, constraint_name FROM starpipe.reject WHERE job_id = 2 ORDER BY source_row, target_column;
SELECT person_id, born, gender, smoker, balance FROM production.people WHERE person_id >= 10 ORDER BY person_id;
SELECT e.event, e.detail->'rejected' AS rejected, e.detail->'deduplicated' AS deduplicated
  FROM starpipe.job_event e WHERE e.job_id = 2 AND e.event = 'transformed';
-- The canary is in no error, event or reject.
SELECT count(*) AS leaks FROM (
    SELECT error || coalesce(error_detail::text, '') AS t FROM starpipe.job
    UNION ALL SELECT detail::text FROM starpipe.job_event
    UNION ALL SELECT r::text FROM starpipe.reject r) x
 WHERE t LIKE '%CANARY%';

-- 4. Past the budget, the job is FAILED, production untouched, and the rejects stay listed.
SELECT pg_temp.try('{"born": {"from": "BORN", "formats": ["ISO"]}}', '{"rejects": {"max_fraction": 0.25}}');
SELECT pg_temp.ingest('acme', 'people', '2026-11-03', 'r3', (SELECT c FROM cols), '[
  [20, "2000-01-01", null, null, null, null, null, null, null, null, null],
  [21, "SECRET-CANARY-3", null, null, null, null, null, null, null, null, null],
  [22, "2000-13-01", null, null, null, null, null, null, null, null, null]]');
SELECT status, rows_rejected, error FROM starpipe.job WHERE job_id = 3;
SELECT count(*) AS people_20s FROM production.people WHERE person_id >= 20;
SELECT job_id, target_column, rule, sqlstate, rows, sample_source_rows FROM starpipe.rejects(3);
SELECT count(*) AS leaks FROM starpipe.job WHERE error LIKE '%CANARY%' OR error_detail::text LIKE '%CANARY%';

-- 5. A CHECK constraint added to production later is enforced in staging, before promotion.
ALTER TABLE production.people ADD CONSTRAINT born_after_1950 CHECK (born > '1950-01-01');
SELECT pg_temp.try('{"born": {"from": "BORN"}}', '{"rejects": {"max_rows": 1}}');
SELECT pg_temp.ingest('acme', 'people', '2026-11-04', 'r4', (SELECT c FROM cols), '[
  [30, "1940-01-01", null, null, null, null, null, null, null, null, null],
  [31, "1960-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT status, rows_staged, rows_rejected FROM starpipe.job WHERE job_id = 4;
SELECT source_row, target_column, rule, sqlstate, constraint_name FROM starpipe.reject WHERE job_id = 4;
SELECT person_id FROM production.people WHERE person_id >= 30;

-- 6. Dedup counts in the reconciliation: raw = staged + rejected + deduplicated.
SELECT pg_temp.ingest('acme', 'people', '2026-11-05', 'r5', (SELECT c FROM cols), '[
  [40, "1960-01-01", null, null, null, null, null, null, null, null, null],
  [40, "1961-01-01", null, null, null, null, null, null, null, null, null],
  [41, "1940-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT status, rows_raw, rows_staged, rows_rejected, rows_deduplicated FROM starpipe.job WHERE job_id = 5;
SELECT person_id, born FROM production.people WHERE person_id >= 40;

-- 7. Reconciliation is a gate: a staged row that is also rejected (or lost) fails the job.
SELECT pg_temp.register('acme', 'people', '2026-11-06', 'r6', (SELECT c FROM cols), '[
  [50, "1960-01-01", null, null, null, null, null, null, null, null, null],
  [51, "1970-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT pg_temp.load(6) > 0 AS loaded;
SELECT starpipe.transform(6, (SELECT fence FROM starpipe.job WHERE job_id = 6));
DELETE FROM starpipe_staging.people__6 WHERE _source_row = 2;
SELECT starpipe.validate(6, (SELECT fence FROM starpipe.job WHERE job_id = 6));
SELECT status, error FROM starpipe.job WHERE job_id = 6;

-- 8. Raw versions with unresolved rejects are never dropped by retention (7, clean, is; 8 is the newest).
SELECT starpipe.set_setting('raw_keep_promoted_versions', '1');
SELECT pg_temp.ingest('acme', 'people', '2026-11-07', 'r7', (SELECT c FROM cols), '[
  [60, "1960-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT pg_temp.ingest('acme', 'people', '2026-11-08', 'r8', (SELECT c FROM cols), '[
  [61, "1960-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT j.job_id, j.status, starpipe.raw_version(j.job_id) IS NOT NULL AS raw_kept,
       EXISTS (SELECT 1 FROM starpipe.reject x WHERE x.job_id = j.job_id) AS has_rejects
  FROM starpipe.job j ORDER BY j.job_id;

-- 9. Replay after a mapping fix: job 2's five rejects. The fix accepts MM/DD/YYYY-or-ISO dates as before, maps the
-- unknown code to unknown and makes "maybe" a NULL; rows 2 (13/45/2000), 3 (the canary date) and 5 (N/A) still fail,
-- and row 6 now fails its balance CHECK. Four of the replay's five rows, but 4 of the original's 7: within max_fraction 0.6.
SELECT pg_temp.try('{
  "born":    {"from": "BORN", "clean": ["trim"], "null_values": ["N/A"], "formats": ["MM/DD/YYYY", "ISO"]},
  "gender":  {"from": "G", "clean": ["trim", "upper"], "map": {"M": "male", "F": "female", "U": "unknown"}, "unmapped": {"default": "unknown"}},
  "balance": {"from": "BAL", "number": {"decimal": ",", "thousands": "."}},
  "smoker":  {"from": "SMOKER", "null_values": ["maybe"], "booleans": "standard"}
}', '{"rejects": {"max_fraction": 0.6}}');
ALTER TABLE production.people DROP CONSTRAINT born_after_1950;
SELECT starpipe.replay_rejects(3) AS not_promoted;
SELECT starpipe.replay_rejects(2) AS replay_job;
SELECT status, stage, rows_raw, run_id FROM starpipe.job WHERE job_id = 9;
SELECT pg_temp.stages(9);
-- A replay is verified like any job: raw, staged and promoted digests agree.
SELECT stage, agrees FROM starpipe.verify(9) ORDER BY stage;
SELECT status, rows_raw, rows_staged, rows_rejected FROM starpipe.job WHERE job_id = 9;
-- Only the formerly rejected rows 13 and 15 are added; rows 10 and 16 are unchanged.
SELECT person_id, born, gender, smoker, balance FROM production.people WHERE person_id BETWEEN 10 AND 19 ORDER BY person_id;
SELECT source_row, target_column, rule, resolved_at IS NOT NULL AS resolved, resolved_by FROM starpipe.reject WHERE job_id = 2 ORDER BY source_row;
SELECT job_id, target_column, rule, rows, sample_source_rows, resolved FROM starpipe.rejects(2);
-- A second replay carries only the rows still unresolved (2, 3, 5, 6; row 6 also has a negative balance). Once all of
-- them are fixed and promoted, every reject is resolved, and a further replay has nothing left and applies nothing.
SELECT pg_temp.try('{
  "born":    {"from": "BORN", "clean": ["trim"], "regex_replace": [{"pattern": "^(13/.*|[^0-9].*)$", "replacement": "N/A"}],
              "null_values": ["N/A"], "formats": ["MM/DD/YYYY", "ISO"], "default": "1970-01-01"},
  "gender":  {"from": "G", "clean": ["trim", "upper"], "map": {"M": "male", "F": "female", "U": "unknown"}, "unmapped": {"default": "unknown"}},
  "balance": {"from": "BAL", "regex_replace": [{"pattern": "^-", "replacement": ""}], "number": {"decimal": ",", "thousands": "."}},
  "smoker":  {"from": "SMOKER", "null_values": ["maybe"], "booleans": "standard"}
}', '{"rejects": {"max_rows": 5}}');
SELECT starpipe.replay_rejects(2) AS second_replay;
SELECT pg_temp.stages(10);
SELECT status, rows_raw, rows_staged, rows_rejected FROM starpipe.job WHERE job_id = 10;
SELECT job_id, count(*) FILTER (WHERE resolved_at IS NULL) AS unresolved, count(*) AS rejects, array_agg(DISTINCT resolved_by) AS resolved_by
  FROM starpipe.reject WHERE job_id IN (2, 9, 10) GROUP BY job_id ORDER BY job_id;
SELECT person_id, born, gender, smoker, balance FROM production.people WHERE person_id BETWEEN 10 AND 19 ORDER BY person_id;
SELECT count(*) AS people_before FROM production.people \gset
SELECT starpipe.replay_rejects(2) IS NULL AS nothing_to_replay;
SELECT count(*) = :people_before AS production_unchanged FROM production.people;
SELECT count(*) AS leaks FROM (
    SELECT error || coalesce(error_detail::text, '') AS t FROM starpipe.job
    UNION ALL SELECT detail::text FROM starpipe.job_event
    UNION ALL SELECT r::text FROM starpipe.reject r) x
 WHERE t LIKE '%CANARY%';

-- 10. Retention counts snapshots, not replays: with two versions kept, a replay of the newest snapshot (11, replayed
-- as 12) leaves the snapshot before it (8) in place; the replay's raw version goes with its original's.
SELECT starpipe.set_setting('raw_keep_promoted_versions', '2');
SELECT pg_temp.try('{"born": {"from": "BORN", "formats": ["ISO"]}}', '{"rejects": {"max_rows": 5}}');
SELECT pg_temp.ingest('acme', 'people', '2026-11-09', 'r11', (SELECT c FROM cols), '[
  [70, "1960-01-01", null, null, null, null, null, null, null, null, null],
  [71, "no date", null, null, null, null, null, null, null, null, null]]');
SELECT pg_temp.try('{"born": {"from": "BORN", "formats": ["ISO"], "null_values": ["no date"], "default": "1970-01-01"}}',
                   '{"rejects": {"max_rows": 5}}');
SELECT starpipe.replay_rejects(11) AS replay_job;
SELECT pg_temp.stages(12);
SELECT job_id, starpipe.raw_version(job_id) IS NOT NULL AS raw_kept FROM starpipe.job WHERE job_id IN (8, 11, 12) ORDER BY job_id;
SELECT pg_temp.ingest('acme', 'people', '2026-11-10', 'r13', (SELECT c FROM cols), '[
  [72, "1960-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT pg_temp.ingest('acme', 'people', '2026-11-11', 'r14', (SELECT c FROM cols), '[
  [73, "1960-01-01", null, null, null, null, null, null, null, null, null]]');
SELECT job_id, starpipe.raw_version(job_id) IS NOT NULL AS raw_kept FROM starpipe.job WHERE job_id >= 8 ORDER BY job_id;
