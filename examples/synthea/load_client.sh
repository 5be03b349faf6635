#!/usr/bin/env bash
# Loads the Synthea sample into a client database (the demo's "practice" database).
# Usage: examples/synthea/load_client.sh POSTGRES_URL
# The database must exist and be empty; tables come from client_schema.sql, rows from data/*.csv.
set -euo pipefail
url=${1:?usage: load_client.sh POSTGRES_URL}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
psql "$url" -q -v ON_ERROR_STOP=1 -f "$here/client_schema.sql"
for csv in "$here"/data/*.csv; do
    table=$(basename "$csv" .csv)
    psql "$url" -q -v ON_ERROR_STOP=1 -c "\\copy $table FROM STDIN WITH (FORMAT csv, HEADER true)" < "$csv"
done
