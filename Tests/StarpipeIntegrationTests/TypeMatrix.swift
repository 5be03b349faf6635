/// The type matrix: a client database holding every built-in scalar class, arrays, json and jsonb of every top-level
/// kind, enums, domains and composites, generated columns, a partitioned table and quoted mixed-case and non-ASCII
/// column names, with edge values (NULLs, limits, NaN and infinities, BC dates, microseconds, escapes). Every table has
/// an `id` column that identifies its rows. docs/TYPES.md says how each type is carried.
enum TypeMatrix {
    /// Creates the matrix in an empty database.
    static let sourceSQL = #"""
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
        CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
        CREATE DOMAIN email AS varchar(100) CHECK (VALUE LIKE '%@%');
        CREATE DOMAIN work_email AS email;
        CREATE DOMAIN price AS numeric(10,2);
        CREATE DOMAIN doc AS jsonb;
        CREATE DOMAIN code AS char(4);
        CREATE DOMAIN tags AS text[];
        CREATE TYPE address AS (street text, zip char(5), tags text[]);
        CREATE TYPE floatrange AS RANGE (subtype = float8);
        -- row_to_json would use a user's cast to json; the extractor must not.
        CREATE FUNCTION mood_json(mood) RETURNS json LANGUAGE sql AS $$ SELECT '{"not": "the value"}'::json $$;
        CREATE CAST (mood AS json) WITH FUNCTION mood_json(mood);

        -- Only types with a binary encoder, with canonical values: this file takes the binary path.
        CREATE TABLE scalars (
            id integer PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, num numeric, num_scaled numeric(40,20), f4 real,
            f8 double precision, flag boolean, txt text, vc varchar(12), u uuid, d date, ts timestamp, tstz timestamptz,
            js json, jb jsonb);
        INSERT INTO scalars VALUES
          (1, -32768, -2147483648, -9223372036854775808, 0, 0, 0, 0, false, '', '', '00000000-0000-0000-0000-000000000000',
           '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '"asd"', '"asd"'),
          (2, 32767, 2147483647, 9223372036854775807, 'NaN', 12345678901234567890.12345678901234567890, 'NaN', 'NaN', true,
           E'tab\there\nnew line\r\\ back "quoted" ''single'' é 日本 🎉', 'trailing   ', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '9999-12-31', '9999-12-31 23:59:59.999999', '2024-02-29 12:34:56.123456+00', '" "', '" "'),
          (3, 0, 0, 0, -0.000000000000000000001, -0.00000000000000000001, 'Infinity', '-Infinity', NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, 'null', 'null'),
          (4, NULL, NULL, NULL, 123456789012345678901234567890.123456789012345678901234567890, 1.5, 3.4028235e38, 1.7976931348623157e308,
           true, 'NULL', '\N', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12', '2000-02-29', '2000-01-01 00:00:00.000001',
           '1969-12-31 23:59:59.999999+00', '12.50', '12.50'),
          (5, 1, 1, 1, 1e-100, 99999999999999999999.99999999999999999999, 1.17549435e-38, 2.2250738585072014e-308, false,
           ' ', E'\\', NULL, '1970-01-01', '1970-01-01 00:00:00', '2038-01-19 03:14:08+00', 'true', 'false'),
          (6, -1, -1, -1, -1, -1, -0, -0, true, E'"\\u0000" literally', 'x', NULL, NULL, NULL, NULL,
           '{ "b" : [1, 2.0, "x\ty", {"a": null}], "a" : "é\u00e9" , "a": 2 }', '{"b": [1, 2.0, "x\ty", {"a": null}], "a": "é\u00e9"}'),
          (7, 2, 2, 2, 2, 2, 0.1, 0.1, false, 'x', 'x', NULL, NULL, NULL, NULL, '[]', '[[], {}, ""]'),
          (8, 3, 3, 3, 3, 3, 1.5e-7, 1e-300, false, 'x', 'x', NULL, NULL, NULL, NULL, '-1.5e+300', '-1.5e+300'),
          (9, 4, 4, 4, 4, 4, 4, 4, false, 'x', 'x', NULL, NULL, NULL, NULL, '"\"\\\/\b\f\n\r\t\u0001"', '"\"\\\/\b\f\n\r\t\u0001"'),
          (10, 5, 5, 5, 5, 5, 5, 5, false, 'x', 'x', NULL, NULL, NULL, NULL, NULL, NULL);

        -- The same binary-eligible types with values the binary encoders leave to Postgres (BC, infinities, subnormals):
        -- this file falls back to text COPY.
        CREATE TABLE scalars_edge (
            id integer PRIMARY KEY, num numeric, f4 real, f8 double precision, d date, ts timestamp, tstz timestamptz);
        INSERT INTO scalars_edge VALUES
          (1, 'Infinity', 1e-45, 5e-324, '0044-03-15 BC', '0044-03-15 12:00:00.5 BC', '4713-01-01 00:00:00+00 BC'),
          (2, '-Infinity', -1e-45, -5e-324, 'infinity', 'infinity', 'infinity'),
          (3, 1, 1, 1, '-infinity', '-infinity', '-infinity'),
          (4, 2, 2, 2, '0001-12-31 BC', '0001-12-31 23:59:59.999999 BC', '294276-12-31 23:59:59.999999+00'),
          (5, 3, 3, 3, '5874897-12-31', '294276-12-31 23:59:59.999999', '2000-01-01 00:00:00+00');

        CREATE TABLE others (
            id integer PRIMARY KEY, cash money, fixed char(5), fixed1 "char", nm name, bin bytea, tm time, tm6 time(3), tmz timetz,
            span interval, ip inet, net cidr, mac macaddr, mac8 macaddr8, bits bit(4), vbits varbit, tsv tsvector, tsq tsquery,
            doc xml, pt point, ln line, seg lseg, bx box, pth path, poly polygon, circ circle, r4 int4range, r8 int8range,
            rnum numrange, rts tsrange, rtstz tstzrange, rd daterange, mr int4multirange, mrd datemultirange, o oid, lsn pg_lsn,
            x xid);
        INSERT INTO others VALUES
          (1, '-92233720368547758.08', 'ab   ', 'z', 'a name', E'\\x00ff00', '00:00:00', '23:59:59.999', '10:00:00+05',
           '1 year 2 months 3 days 04:05:06.789012', '192.168.0.1', '10.0.0.0/8', '08:00:2b:01:02:03',
           '08:00:2b:01:02:03:04:05', B'1010', B'', 'a fat cat:1A sat on:2,3 mat', 'fat & (rat | !cat) <-> mat',
           '<a b="c">d &amp; e</a>', '(1.5,-2)', '{1,-1,0}', '[(0,0),(1,1)]', '(2,2),(0,0)', '[(0,0),(1,1),(2,0)]',
           '((0,0),(1,1),(2,0))', '<(0,0),1.5>', '[1,10)', 'empty', '(1.5,2.5]', '[2020-01-01 00:00,2021-01-01 00:00)',
           '[2020-01-01 00:00+00,)', '[2020-01-01,2020-02-01)', '{[1,3),[5,7)}', '{}', 4294967295, '16/B374D848', '42'),
          (2, '92233720368547758.07', '     ', ' ', '', E'\\x', '24:00:00', '12:00:00.5', '00:00:00-15:59',
           '-1 days +02:03:04', '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff', B'0000',
           B'1111000011110000111', '', '!x', '<?xml version="1.0"?><root/>', '(0,0)', '{0,1,-1}', '[(1,2),(3,4)]',
           '(1,1),(1,1)', '((0,0),(1,1))', '((0,0))', '<(1,2),0>', 'empty', '(,)', '[0,0]', '(,)', '(,2020-01-01 00:00+00]',
           '(,)', '{(,5),[10,)}', '{[2020-01-01,2020-01-02)}', 0, '0/0', '0'),
          (3, '0', 'é    ', E'\\', 'x', E'\\x5c0a09', NULL, NULL, NULL, '00:00:00', '0.0.0.0/0', '::/0', NULL, NULL, NULL,
           NULL, NULL, NULL, 'text only, no element', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL),
          (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'P1Y2M3DT4H5M6.5S', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

        CREATE TABLE arrays (
            id integer PRIMARY KEY, words text[], nums integer[], grid integer[][], decimals numeric[], days date[],
            stamps timestamptz[], docs jsonb[], blobs bytea[], flags boolean[], short varchar(3)[], fixed char(3)[],
            floats float8[], ids uuid[], spans interval[], nets inet[], moods mood[], addresses address[]);
        INSERT INTO arrays VALUES
          (1, ARRAY['plain', NULL, '', 'NULL', 'null', 'with space', 'com,ma', '{brace}', 'quo"te', 'back\slash', E'tab\t',
                    E'new\nline', 'é 日本', ' lead', 'trail '],
           '{1,NULL,-2147483648,2147483647}', '{{1,2,3},{4,NULL,6}}', '{NaN,Infinity,-Infinity,0.000000001,-1e20}',
           '{2024-02-29,infinity,0044-03-15 BC}', '{"2024-02-29 12:34:56.123456+00",NULL,-infinity}',
           ARRAY['{"a": "x\"y"}'::jsonb, '"s"', 'null', NULL, '[1,2]'], ARRAY[E'\\x00'::bytea, E'\\x', NULL, E'\\x5c22'],
           '{t,f,NULL}', '{abc,"a,b",""}', '{"a  ","   ",NULL}', '{NaN,Infinity,-Infinity,-0,1e-300}',
           '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{"1 day","-00:00:01"}', '{192.168.0.1/24,::1}',
           '{sad,"it''s \"complicated\""}', ARRAY[ROW('1 Main St', '02139', '{a,b}')::address, ROW(NULL, NULL, NULL)::address, NULL]),
          (2, '{}', '{}', '[0:1][-1:0]={{1,2},{3,4}}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
          (3, '{NULL}', '{NULL,NULL}', '{{{1},{2}},{{3},{4}}}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL),
          (4, NULL, '[5:6]={7,8}', '{}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

        CREATE TABLE user_types (
            id integer PRIMARY KEY, feeling mood, amount posint, contact email, work work_email, cost price, body doc,
            short_code code, labels tags, home address, spread floatrange, amounts posint[]);
        INSERT INTO user_types VALUES
          (1, 'happy', 1, 'a@b.c', 'x@y.z', 12.5, '"just a string"', 'ab', '{x,"y z",NULL}',
           ROW('1 "Main" St, Apt {2}', '02139', '{a,NULL}'), '[1.5,2.5)', '{1,NULL,3}'),
          (2, 'it''s "complicated"', 2147483647, 'é@日本', 'w@w', -99999999.99, '{"k": [1, null]}', 'abcd', '{}',
           ROW(NULL, NULL, NULL), 'empty', '{}'),
          (3, NULL, NULL, NULL, NULL, NULL, 'null', NULL, NULL, NULL, NULL, NULL),
          (4, 'sad', 3, 'c@d', NULL, 0, NULL, '    ', NULL, ROW('', '', '{}'), '(,)', '{{1},{2}}');

        CREATE TABLE generated (id integer PRIMARY KEY, a integer, b integer GENERATED ALWAYS AS (a * 2) STORED,
                                label text GENERATED ALWAYS AS ('#' || a::text) STORED);
        INSERT INTO generated (id, a) VALUES (1, 1), (2, NULL), (3, -7);

        CREATE TABLE events (id integer, region text, at timestamptz, payload jsonb, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
        CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
        CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
        INSERT INTO events VALUES (1, 'eu', '2026-01-01 00:00:00+00', '"eu"'), (2, 'us', '2026-01-02 00:00:00+00', '{"n": 2}'),
                                  (3, 'eu', NULL, 'null'), (4, 'us', '2026-01-04 00:00:00.5+00', NULL);

        CREATE TABLE names (id integer PRIMARY KEY, "MixedCase" text, "Ünïcödé" integer, "with space" date, "quote""d" jsonb,
                            "日本語" boolean, "UPPER" text[]);
        INSERT INTO names VALUES (1, 'a', 1, '2026-01-01', '"q"', true, '{A,B}'), (2, NULL, NULL, NULL, NULL, NULL, NULL);
        """#

    /// The raw column type of every matrix column, by table: pg_catalog types as the manifest names them (without
    /// their modifier; char(n) as text and bit(n) as bit varying), domains as their base type, the rest as text.
    static let rawTypes: [String: [String: String]] = [
        "scalars": [
            "id": "integer", "i2": "smallint", "i4": "integer", "i8": "bigint", "num": "numeric", "num_scaled": "numeric",
            "f4": "real", "f8": "double precision", "flag": "boolean", "txt": "text", "vc": "character varying",
            "u": "uuid", "d": "date", "ts": "timestamp without time zone", "tstz": "timestamp with time zone",
            "js": "json", "jb": "jsonb",
        ],
        "scalars_edge": [
            "id": "integer", "num": "numeric", "f4": "real", "f8": "double precision", "d": "date",
            "ts": "timestamp without time zone", "tstz": "timestamp with time zone",
        ],
        "others": [
            "id": "integer", "cash": "money", "fixed": "text", "fixed1": "\"char\"", "nm": "name", "bin": "bytea",
            "tm": "time without time zone", "tm6": "time without time zone", "tmz": "time with time zone",
            "span": "interval", "ip": "inet", "net": "cidr", "mac": "macaddr", "mac8": "macaddr8", "bits": "bit varying",
            "vbits": "bit varying", "tsv": "tsvector", "tsq": "tsquery", "doc": "xml", "pt": "point", "ln": "line",
            "seg": "lseg", "bx": "box", "pth": "path", "poly": "polygon", "circ": "circle", "r4": "int4range",
            "r8": "int8range", "rnum": "numrange", "rts": "tsrange", "rtstz": "tstzrange", "rd": "daterange",
            "mr": "int4multirange", "mrd": "datemultirange", "o": "oid", "lsn": "pg_lsn", "x": "xid",
        ],
        "arrays": [
            "id": "integer", "words": "text[]", "nums": "integer[]", "grid": "integer[]", "decimals": "numeric[]",
            "days": "date[]", "stamps": "timestamp with time zone[]", "docs": "jsonb[]", "blobs": "bytea[]",
            "flags": "boolean[]", "short": "character varying[]", "fixed": "text[]", "floats": "double precision[]",
            "ids": "uuid[]", "spans": "interval[]", "nets": "inet[]", "moods": "text", "addresses": "text",
        ],
        "user_types": [
            "id": "integer", "feeling": "text", "amount": "integer", "contact": "character varying",
            "work": "character varying", "cost": "numeric", "body": "jsonb", "short_code": "text", "labels": "text[]",
            "home": "text", "spread": "text", "amounts": "text",
        ],
        "generated": ["id": "integer", "a": "integer", "b": "integer", "label": "text"],
        "events": ["id": "integer", "region": "text", "at": "timestamp with time zone", "payload": "jsonb"],
        "names": [
            "id": "integer", "MixedCase": "text", "Ünïcödé": "integer", "with space": "date", "quote\"d": "jsonb",
            "日本語": "boolean", "UPPER": "text[]",
        ],
    ]

    /// What the manifest says of each column of `user_types`: a domain's base type, and the domain as `source_type`.
    static let domainColumns: [String: (type: String, sourceType: String?)] = [
        "feeling": ("mood", nil), "amount": ("integer", "posint"), "contact": ("character varying(100)", "email"),
        "work": ("character varying(100)", "work_email"), "cost": ("numeric(10,2)", "price"), "body": ("jsonb", "doc"),
        "short_code": ("character(4)", "code"), "labels": ("text[]", "tags"), "home": ("address", nil),
        "spread": ("floatrange", nil), "amounts": ("posint[]", nil),
    ]
}
