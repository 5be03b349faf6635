#!/usr/bin/env python3
"""Writes the ingest benchmark's data: N patient rows, 16 columns, as a JSON array (the worker's
input, with its manifest under a structured bucket key) and as CSV (psql's COPY baseline).
Deterministic for a given N and seed, so runs compare like with like."""
import argparse
import csv
import hashlib
import json
import os
import random
import uuid
from datetime import date, datetime, timedelta, timezone

COLUMNS = [
    ("patient_id", "uuid"), ("mrn", "text"), ("first_name", "text"), ("last_name", "text"),
    ("birth_date", "date"), ("registered_at", "timestamp with time zone"), ("updated_at", "timestamp with time zone"),
    ("active", "boolean"), ("deceased", "boolean"), ("weight_kg", "numeric"), ("height_cm", "numeric"),
    ("balance", "numeric"), ("city", "text"), ("email", "text"), ("phone", "text"), ("notes", "text"),
]
FIRST = ["Ana", "José", "Zoë", "Łukasz", "Mårten", "Siobhán", "Nguyễn", "Ólafur", "Chloé", "Renée", "O'Neil", "Jo \"JJ\""]
LAST = ["Smith", "García", "Müller", "Dubois", "Rossi", "Kowalski", "O'Brien", "Æbelø", "Nakamura", "Ivanov"]
CITIES = ["Boston", "São Paulo", "Zürich", "Kraków", "Reykjavík", "Tōkyō", "New York", "Montréal"]
NOTES = [None, None, "Allergic to penicillin.", "Line one\nline two", "Path C:\\records\\x.txt", "Says \"hello\"",
         "Tab\there", "Emoji 🩺 and ümlaut", "Back\\slash and \"quote\"\nand newline", "", "Ω≈ç√∫˜µ≤≥÷"]


def rows(n, seed):
    rng = random.Random(seed)
    base = datetime(2020, 1, 1, tzinfo=timezone.utc)
    for i in range(n):
        registered = base + timedelta(seconds=rng.randrange(0, 150_000_000))
        yield [
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "MRN%09d" % i,
            rng.choice(FIRST),
            rng.choice(LAST),
            (date(1930, 1, 1) + timedelta(days=rng.randrange(0, 33000))).isoformat(),
            registered.isoformat().replace("+00:00", "Z"),
            (registered + timedelta(seconds=rng.randrange(0, 9_000_000))).isoformat().replace("+00:00", "Z"),
            rng.random() < 0.9,
            rng.random() < 0.02,
            "%.1f" % rng.uniform(2, 180),
            "%.1f" % rng.uniform(40, 210),
            "%.2f" % rng.uniform(-5000, 50000),
            rng.choice(CITIES),
            "user%d@example.org" % i,
            "+1-555-%04d" % rng.randrange(10000),
            rng.choice(NOTES),
        ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    client, table, day, run = "bench", "patients", "20261126", "rows%d" % args.rows
    directory = os.path.join(args.out, "bucket-%d" % args.rows, f"client={client}/table={table}/date={day}/run_id={run}")
    os.makedirs(directory, exist_ok=True)
    data_path = os.path.join(directory, "data.json")
    csv_path = os.path.join(args.out, "patients-%d.csv" % args.rows)
    digest = hashlib.sha256()
    size = 0
    names = [name for name, _ in COLUMNS]
    with open(data_path, "wb") as data, open(csv_path, "w", newline="", encoding="utf-8") as baseline:
        writer = csv.writer(baseline, lineterminator="\n")

        def emit(text):
            nonlocal size
            chunk = text.encode("utf-8")
            digest.update(chunk)
            size += len(chunk)
            data.write(chunk)

        emit("[")
        for i, row in enumerate(rows(args.rows, args.seed)):
            record = dict(zip(names, row))
            for key in ("weight_kg", "height_cm", "balance"):
                record[key] = json.loads(record[key])  # numbers in JSON, as the extractor writes them
            emit(("\n" if i == 0 else ",\n") + json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            writer.writerow(["" if v is None else ("t" if v is True else "f" if v is False else v) for v in row])
        emit("\n]\n")
    manifest = {
        "format_version": 1, "client": client, "table": table,
        "source": {"kind": "postgres", "database": "bench", "schema": "public", "table": table},
        "snapshot_date": "2026-11-26", "extracted_at": "2026-11-26T00:00:00Z", "run_id": run, "mode": "full",
        "data_file": "data.json", "format": "json_array", "row_count": args.rows, "byte_count": size,
        "sha256": digest.hexdigest(),
        "columns": [{"name": n, "type": t, "nullable": n == "notes"} for n, t in COLUMNS],
        "primary_key": ["patient_id"],
    }
    with open(os.path.join(directory, "manifest.json"), "w") as out:
        json.dump(manifest, out, indent=2)
    print(f"{args.rows} rows, {size} bytes of JSON in {directory}")


if __name__ == "__main__":
    main()
