-- starpipe: settings with documented defaults; operators override them with starpipe.set_setting.

-- Every setting starpipe reads, with its default and what it means. Owned by the extension (not dumped).
CREATE TABLE starpipe.setting_default (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    type        text NOT NULL CHECK (type IN ('count', 'interval', 'fraction')),
    description text NOT NULL
);
COMMENT ON TABLE starpipe.setting_default IS 'Every starpipe setting with its default value, type and meaning.';
INSERT INTO starpipe.setting_default (key, value, type, description) VALUES
    ('max_attempts', '5', 'count',
     'Claims (deliveries) of a job before it moves to the dead-letter queue (status DEAD); counted by claim, reset by retry and dlq_replay.'),
    ('backoff_base', '10 seconds', 'interval',
     'Redelivery delay after the first nack; each further attempt doubles it (base * 2^(attempts - 1)).'),
    ('backoff_max', '15 minutes', 'interval',
     'Upper bound of the redelivery delay after a nack.'),
    ('backoff_jitter', '0.2', 'fraction',
     'Share of the redelivery delay removed at random (0 = none, 1 = anywhere between 0 and the delay), so retries spread out.'),
    ('raw_keep_promoted_versions', '3', 'count',
     'Promoted raw versions kept per client table; after a promotion, older promoted versions beyond this many are dropped.');

-- Operator overrides of the defaults. Only overrides live here, so pg_dump and restore never collide with the defaults.
CREATE TABLE starpipe.setting (
    key    text PRIMARY KEY REFERENCES starpipe.setting_default (key),
    value  text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    set_by text NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE starpipe.setting IS 'Operator overrides of starpipe settings (see starpipe.settings for the effective values).';
SELECT pg_catalog.pg_extension_config_dump('starpipe.setting', '');

-- What is in force.
CREATE VIEW starpipe.settings AS
SELECT d.key, coalesce(s.value, d.value) AS value, d.value AS default_value, s.key IS NULL AS is_default,
       d.type, d.description
  FROM starpipe.setting_default d
  LEFT JOIN starpipe.setting s ON s.key = d.key;
COMMENT ON VIEW starpipe.settings IS 'Effective starpipe settings: the override when there is one, else the documented default.';

-- The effective value of a setting, as text.
CREATE FUNCTION starpipe._setting_value(p_key text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_value text;
BEGIN
    -- An unknown key is a bug in starpipe, never a silent default.
    SELECT coalesce(s.value, d.value) INTO v_value
      FROM starpipe.setting_default d LEFT JOIN starpipe.setting s ON s.key = d.key
     WHERE d.key = p_key;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('unknown setting %L', p_key));
    END IF;
    RETURN v_value;
END;
$$;

-- Overrides a setting (NULL restores the default); returns the value now in force.
CREATE FUNCTION starpipe.set_setting(p_key text, p_value text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text;
    v_ok boolean;
BEGIN
    -- Values are checked against the setting's type before anything reads them.
    SELECT d.type INTO v_type FROM starpipe.setting_default d WHERE d.key = p_key;
    IF NOT FOUND THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('unknown setting %L', p_key), NULL,
            'SELECT key FROM starpipe.settings lists the settings.');
    END IF;
    IF p_value IS NULL THEN
        DELETE FROM starpipe.setting WHERE key = p_key;
        RETURN starpipe._setting_value(p_key);
    END IF;
    BEGIN
        v_ok := CASE v_type
            WHEN 'count' THEN p_value ~ '^[0-9]{1,9}$' AND p_value::integer >= 1
            WHEN 'interval' THEN p_value::interval > interval '0'
            WHEN 'fraction' THEN p_value::numeric BETWEEN 0 AND 1
        END;
    EXCEPTION WHEN data_exception THEN
        v_ok := false;
    END;
    IF NOT v_ok THEN
        PERFORM starpipe._raise('22023', pg_catalog.format('invalid value for setting %s', p_key),
            CASE v_type WHEN 'count' THEN 'A whole number of at least 1.'
                        WHEN 'interval' THEN 'A positive interval, e.g. ''30 seconds''.'
                        ELSE 'A number between 0 and 1.' END);
    END IF;
    INSERT INTO starpipe.setting (key, value) VALUES (p_key, p_value)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, set_at = pg_catalog.now(), set_by = SESSION_USER;
    RETURN p_value;
END;
$$;
COMMENT ON FUNCTION starpipe.set_setting(text, text) IS
    'Overrides a starpipe setting after checking its type; NULL restores the documented default.';
