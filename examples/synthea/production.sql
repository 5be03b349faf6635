-- The demo's production schema: what our application reads. starpipe promotes into it.
-- Conflict keys are NOT NULL and carry a unique index, which ON CONFLICT needs.
CREATE SCHEMA IF NOT EXISTS production;

CREATE TABLE production.patients (
    patient_id          uuid PRIMARY KEY,
    birth_date          date NOT NULL,
    death_date          date,
    ssn                 text,
    first_name          text,
    last_name           text,
    gender              text CHECK (gender IN ('M', 'F')),
    race                text,
    ethnicity           text,
    city                text,
    state               text,
    zip                 text,
    healthcare_expenses numeric(14, 2),
    healthcare_coverage numeric(14, 2),
    source_system       text NOT NULL,
    loaded_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE production.encounters (
    encounter_id       uuid PRIMARY KEY,
    patient_id         uuid NOT NULL,
    started_at         timestamptz NOT NULL,
    stopped_at         timestamptz,
    encounter_class    text NOT NULL,
    code               text NOT NULL,
    description        text,
    base_cost          numeric(12, 2),
    total_claim_cost   numeric(12, 2),
    payer_coverage     numeric(12, 2),
    reason_code        text,
    reason_description text
);

CREATE TABLE production.conditions (
    patient_id   uuid NOT NULL,
    encounter_id uuid NOT NULL,
    code         text NOT NULL,
    onset_date   date NOT NULL,
    resolved_date date,
    description  text,
    PRIMARY KEY (patient_id, encounter_id, code)
);

CREATE TABLE production.medications (
    patient_id         uuid NOT NULL,
    encounter_id       uuid NOT NULL,
    code               text NOT NULL,
    started_at         timestamptz NOT NULL,
    stopped_at         timestamptz,
    description        text,
    base_cost          numeric(12, 2),
    payer_coverage     numeric(12, 2),
    dispenses          integer,
    total_cost         numeric(14, 2),
    reason_code        text,
    reason_description text,
    PRIMARY KEY (patient_id, encounter_id, code, started_at)
);

CREATE TABLE production.observations (
    patient_id   uuid NOT NULL,
    encounter_id uuid,
    code         text NOT NULL,
    observed_at  timestamptz NOT NULL,
    category     text,
    description  text,
    value        text,
    units        text,
    value_type   text,
    PRIMARY KEY (patient_id, code, observed_at)
);

CREATE TABLE production.immunizations (
    patient_id      uuid NOT NULL,
    encounter_id    uuid NOT NULL,
    code            text NOT NULL,
    administered_at timestamptz NOT NULL,
    description     text,
    base_cost       numeric(12, 2),
    PRIMARY KEY (patient_id, encounter_id, code, administered_at)
);

CREATE TABLE production.procedures (
    encounter_id       uuid NOT NULL,
    code               text NOT NULL,
    started_at         timestamptz NOT NULL,
    patient_id         uuid NOT NULL,
    stopped_at         timestamptz,
    description        text,
    base_cost          numeric(12, 2),
    reason_code        text,
    reason_description text,
    PRIMARY KEY (encounter_id, code, started_at)
);

CREATE TABLE production.allergies (
    patient_id   uuid NOT NULL,
    encounter_id uuid NOT NULL,
    code         text NOT NULL,
    started_on   date,
    category     text,
    allergy_type text,
    description  text,
    severity     text,
    PRIMARY KEY (patient_id, encounter_id, code)
);

-- What a DBA runs before starpipe may map into this schema (extension 0.3.0): allow the schema, and give
-- starpipe_writer, the role promotion writes as, exactly the rights the mappings need on its tables.
INSERT INTO starpipe.target_schema (schema_name) VALUES ('production') ON CONFLICT DO NOTHING;
GRANT USAGE ON SCHEMA production TO starpipe_writer;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA production TO starpipe_writer;
