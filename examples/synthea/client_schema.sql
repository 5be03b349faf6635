-- The demo client's own database: the Synthea sample as a practice would hold it.
-- Column names keep the export's spelling (upper case, quoted); tables with an Id have it as primary key.
-- Generated once from data/*.csv by type inference, then reviewed; load with load_client.sql.

CREATE TABLE allergies (
    "START" date,
    "STOP" text,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CODE" text,
    "SYSTEM" text,
    "DESCRIPTION" text,
    "TYPE" text,
    "CATEGORY" text,
    "REACTION1" text,
    "DESCRIPTION1" text,
    "SEVERITY1" text,
    "REACTION2" text,
    "DESCRIPTION2" text,
    "SEVERITY2" text
);

CREATE TABLE careplans (
    "Id" uuid NOT NULL,
    "START" date,
    "STOP" date,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CODE" text,
    "DESCRIPTION" text,
    "REASONCODE" text,
    "REASONDESCRIPTION" text,
    PRIMARY KEY ("Id")
);

CREATE TABLE claims (
    "Id" uuid NOT NULL,
    "PATIENTID" uuid,
    "PROVIDERID" uuid,
    "PRIMARYPATIENTINSURANCEID" text,
    "SECONDARYPATIENTINSURANCEID" text,
    "DEPARTMENTID" bigint,
    "PATIENTDEPARTMENTID" bigint,
    "DIAGNOSIS1" text,
    "DIAGNOSIS2" text,
    "DIAGNOSIS3" text,
    "DIAGNOSIS4" text,
    "DIAGNOSIS5" text,
    "DIAGNOSIS6" text,
    "DIAGNOSIS7" text,
    "DIAGNOSIS8" text,
    "REFERRINGPROVIDERID" text,
    "APPOINTMENTID" uuid,
    "CURRENTILLNESSDATE" timestamptz,
    "SERVICEDATE" timestamptz,
    "SUPERVISINGPROVIDERID" uuid,
    "STATUS1" text,
    "STATUS2" text,
    "STATUSP" text,
    "OUTSTANDING1" numeric,
    "OUTSTANDING2" bigint,
    "OUTSTANDINGP" numeric,
    "LASTBILLEDDATE1" timestamptz,
    "LASTBILLEDDATE2" timestamptz,
    "LASTBILLEDDATEP" timestamptz,
    "HEALTHCARECLAIMTYPEID1" bigint,
    "HEALTHCARECLAIMTYPEID2" bigint,
    PRIMARY KEY ("Id")
);

CREATE TABLE claims_transactions (
    "ID" uuid,
    "CLAIMID" uuid,
    "CHARGEID" bigint,
    "PATIENTID" uuid,
    "TYPE" text,
    "AMOUNT" numeric,
    "METHOD" text,
    "FROMDATE" timestamptz,
    "TODATE" timestamptz,
    "PLACEOFSERVICE" uuid,
    "PROCEDURECODE" text,
    "MODIFIER1" text,
    "MODIFIER2" text,
    "DIAGNOSISREF1" text,
    "DIAGNOSISREF2" text,
    "DIAGNOSISREF3" text,
    "DIAGNOSISREF4" text,
    "UNITS" bigint,
    "DEPARTMENTID" bigint,
    "NOTES" text,
    "UNITAMOUNT" numeric,
    "TRANSFEROUTID" bigint,
    "TRANSFERTYPE" text,
    "PAYMENTS" numeric,
    "ADJUSTMENTS" text,
    "TRANSFERS" numeric,
    "OUTSTANDING" numeric,
    "APPOINTMENTID" uuid,
    "LINENOTE" text,
    "PATIENTINSURANCEID" uuid,
    "FEESCHEDULEID" bigint,
    "PROVIDERID" uuid,
    "SUPERVISINGPROVIDERID" uuid
);

CREATE TABLE conditions (
    "START" date,
    "STOP" date,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CODE" text,
    "DESCRIPTION" text
);

CREATE TABLE devices (
    "START" timestamptz,
    "STOP" text,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CODE" text,
    "DESCRIPTION" text,
    "UDI" text
);

CREATE TABLE encounters (
    "Id" uuid NOT NULL,
    "START" timestamptz,
    "STOP" timestamptz,
    "PATIENT" uuid NOT NULL,
    "ORGANIZATION" uuid,
    "PROVIDER" uuid,
    "PAYER" uuid,
    "ENCOUNTERCLASS" text,
    "CODE" text,
    "DESCRIPTION" text,
    "BASE_ENCOUNTER_COST" numeric,
    "TOTAL_CLAIM_COST" numeric,
    "PAYER_COVERAGE" numeric,
    "REASONCODE" text,
    "REASONDESCRIPTION" text,
    PRIMARY KEY ("Id")
);

CREATE TABLE imaging_studies (
    "Id" uuid NOT NULL,
    "DATE" timestamptz,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "SERIES_UID" text,
    "BODYSITE_CODE" text,
    "BODYSITE_DESCRIPTION" text,
    "MODALITY_CODE" text,
    "MODALITY_DESCRIPTION" text,
    "INSTANCE_UID" text,
    "SOP_CODE" text,
    "SOP_DESCRIPTION" text,
    "PROCEDURE_CODE" text,
    PRIMARY KEY ("Id")
);

CREATE TABLE immunizations (
    "DATE" timestamptz,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CODE" text,
    "DESCRIPTION" text,
    "BASE_COST" numeric
);

CREATE TABLE medications (
    "START" timestamptz,
    "STOP" timestamptz,
    "PATIENT" uuid NOT NULL,
    "PAYER" uuid,
    "ENCOUNTER" uuid,
    "CODE" text,
    "DESCRIPTION" text,
    "BASE_COST" numeric,
    "PAYER_COVERAGE" numeric,
    "DISPENSES" bigint,
    "TOTALCOST" numeric,
    "REASONCODE" text,
    "REASONDESCRIPTION" text
);

CREATE TABLE observations (
    "DATE" timestamptz,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CATEGORY" text,
    "CODE" text,
    "DESCRIPTION" text,
    "VALUE" text,
    "UNITS" text,
    "TYPE" text
);

CREATE TABLE organizations (
    "Id" uuid NOT NULL,
    "NAME" text,
    "ADDRESS" text,
    "CITY" text,
    "STATE" text,
    "ZIP" text,
    "LAT" numeric,
    "LON" numeric,
    "PHONE" text,
    "REVENUE" numeric,
    "UTILIZATION" bigint,
    PRIMARY KEY ("Id")
);

CREATE TABLE patients (
    "Id" uuid NOT NULL,
    "BIRTHDATE" date,
    "DEATHDATE" date,
    "SSN" text,
    "DRIVERS" text,
    "PASSPORT" text,
    "PREFIX" text,
    "FIRST" text,
    "LAST" text,
    "SUFFIX" text,
    "MAIDEN" text,
    "MARITAL" text,
    "RACE" text,
    "ETHNICITY" text,
    "GENDER" text,
    "BIRTHPLACE" text,
    "ADDRESS" text,
    "CITY" text,
    "STATE" text,
    "COUNTY" text,
    "ZIP" text,
    "LAT" numeric,
    "LON" numeric,
    "HEALTHCARE_EXPENSES" numeric,
    "HEALTHCARE_COVERAGE" numeric,
    PRIMARY KEY ("Id")
);

CREATE TABLE payer_transitions (
    "PATIENT" uuid NOT NULL,
    "MEMBERID" uuid,
    "START_YEAR" timestamptz,
    "END_YEAR" timestamptz,
    "PAYER" uuid,
    "SECONDARY_PAYER" uuid,
    "OWNERSHIP" text,
    "OWNERNAME" text
);

CREATE TABLE payers (
    "Id" uuid NOT NULL,
    "NAME" text,
    "ADDRESS" text,
    "CITY" text,
    "STATE_HEADQUARTERED" text,
    "ZIP" text,
    "PHONE" text,
    "AMOUNT_COVERED" numeric,
    "AMOUNT_UNCOVERED" numeric,
    "REVENUE" numeric,
    "COVERED_ENCOUNTERS" bigint,
    "UNCOVERED_ENCOUNTERS" bigint,
    "COVERED_MEDICATIONS" bigint,
    "UNCOVERED_MEDICATIONS" bigint,
    "COVERED_PROCEDURES" bigint,
    "UNCOVERED_PROCEDURES" bigint,
    "COVERED_IMMUNIZATIONS" bigint,
    "UNCOVERED_IMMUNIZATIONS" bigint,
    "UNIQUE_CUSTOMERS" bigint,
    "QOLS_AVG" text,
    "MEMBER_MONTHS" bigint,
    PRIMARY KEY ("Id")
);

CREATE TABLE procedures (
    "START" timestamptz,
    "STOP" timestamptz,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CODE" text,
    "DESCRIPTION" text,
    "BASE_COST" numeric,
    "REASONCODE" text,
    "REASONDESCRIPTION" text
);

CREATE TABLE providers (
    "Id" uuid NOT NULL,
    "ORGANIZATION" uuid,
    "NAME" text,
    "GENDER" text,
    "SPECIALITY" text,
    "ADDRESS" text,
    "CITY" text,
    "STATE" text,
    "ZIP" text,
    "LAT" numeric,
    "LON" numeric,
    "UTILIZATION" bigint,
    PRIMARY KEY ("Id")
);

CREATE TABLE supplies (
    "DATE" date,
    "PATIENT" uuid NOT NULL,
    "ENCOUNTER" uuid,
    "CODE" text,
    "DESCRIPTION" text,
    "QUANTITY" bigint
);

