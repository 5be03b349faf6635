#!/usr/bin/env bash
# Runs every test of starpipe on this machine:
#   1. installs what is missing (apt; moto[server] in a venv under .starpipe/moto for the S3 tests, which
#   start their own moto_server), 2. starts a private Postgres 15 and redis-server on loopback, 3. builds
#   the extension and the orchestrator, 4. runs pg_regress, promtool on the alert rules (ops/prometheus) and
#   swift test (unit tests and integration tests against the live servers), 5. stops what it started.
#   Exits non-zero on any failure.
# Ports: Postgres 127.0.0.1:${STARPIPE_TEST_PG_PORT:-54329}, Redis 127.0.0.1:${STARPIPE_TEST_REDIS_PORT:-63799},
# MariaDB (the extractor's MySQL/MariaDB source) 127.0.0.1:${STARPIPE_TEST_MARIADB_PORT:-33069}.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO"

PG_PORT=${STARPIPE_TEST_PG_PORT:-54329}
REDIS_PORT=${STARPIPE_TEST_REDIS_PORT:-63799}
MARIADB_PORT=${STARPIPE_TEST_MARIADB_PORT:-33069}

install_deps
install_moto
log "checking that the generated upgrade script is current"
make -s -C extension check-upgrade-script PG_CONFIG="$PGBIN/pg_config"
install_extension

cleanup() {
    stop_postgres test
    stop_redis "$REDIS_PORT"
    stop_mariadb mariadb-test
}
trap cleanup EXIT

stop_postgres test
reset_server_dir test
start_postgres test "$PG_PORT" fsync=off synchronous_commit=off full_page_writes=off max_connections=200
start_redis redis-test "$REDIS_PORT"
stop_mariadb mariadb-test
reset_server_dir mariadb-test
start_mariadb mariadb-test "$MARIADB_PORT"

log "pg_regress (make -C extension installcheck)"
# installcheck runs the suite on an upgraded 0.1.0 install, then on a fresh one, then the isolation specs.
if ! make -s -C extension installcheck PG_CONFIG="$PGBIN/pg_config" PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGUSER=postgres; then
    cat extension/output_upgrade/regression.diffs extension/regression.diffs extension/output_iso/regression.diffs 2>/dev/null || true
    exit 1
fi

log "Prometheus alert rules (promtool check rules, promtool test rules)"
promtool check rules ops/prometheus/starpipe.rules.yml
promtool test rules ops/prometheus/starpipe.rules.test.yml

log "swift build"
swift build --build-tests

log "swift test"
POSTGRES_HOSTNAME=127.0.0.1 POSTGRES_PORT="$PG_PORT" POSTGRES_USER=postgres \
REDIS_HOSTNAME=127.0.0.1 REDIS_PORT="$REDIS_PORT" MARIADB_HOSTNAME=127.0.0.1 MARIADB_PORT="$MARIADB_PORT" MARIADB_TLS_CA="$(server_dir mariadb-test)/tls/ca.pem" STARPIPE_REPO="$REPO" MOTO_SERVER="$MOTO_SERVER" \
    swift test --skip-build --disable-xctest
