# Shared by ci/test.sh and ci/demo.sh: dependencies and private servers on loopback.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$REPO/.starpipe"
# STARPIPE_PGBIN points at another Postgres 15 installation (a relocated copy, for example).
PGBIN=${STARPIPE_PGBIN:-/usr/lib/postgresql/15/bin}
SERVICE_USER=starpipe

log() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Runs a command as the unprivileged user that owns the private servers (Postgres refuses root).
as_service() {
    # From /, since the service user may not be allowed into the clone's directory.
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u "$SERVICE_USER" -- "$@"); else "$@"; fi
}

install_deps() {
    local need=() p
    for p in postgresql-15 postgresql-server-dev-15 libpq-dev libhiredis-dev redis-server make gcc pkg-config \
             ca-certificates git curl prometheus chromium libsqlite3-dev sqlite3 libmariadb-dev mariadb-server mariadb-client socat; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        log "installing ${need[*]}"
        as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
    fi
    if ! command -v swift >/dev/null; then
        echo "error: the Swift toolchain (6.x) is not on PATH; install it from swift.org first" >&2
        exit 1
    fi
    if [ "$(id -u)" = 0 ] && ! id "$SERVICE_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
}

# Prints a directory for server NAME that the service user can write: .starpipe/NAME, or, when the
# clone sits where that user cannot reach (e.g. under /root), a private directory linked from there.
server_dir() {
    local name=$1 dir="$STATE/$1"
    mkdir -p "$STATE"
    if [ -L "$dir" ] || [ -d "$dir" ]; then
        readlink -f "$dir"; return
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown "$SERVICE_USER" "$dir"
        if ! runuser -u "$SERVICE_USER" -- test -w "$dir"; then
            rmdir "$dir"
            local alt
            alt="/var/lib/starpipe/$(printf '%s' "$STATE" | sha256sum | cut -c1-12)/$name"
            mkdir -p "$alt"
            chown -R "$SERVICE_USER" "$(dirname "$alt")"
            ln -s "$alt" "$dir"
        fi
    fi
    readlink -f "$dir"
}

# start_postgres NAME PORT [extra postgres -c settings...]
start_postgres() {
    local name=$1 port=$2; shift 2
    local dir opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories="
    local s
    for s in "$@"; do opts="$opts -c $s"; done
    dir=$(server_dir "$name")
    if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
        log "creating Postgres cluster in .starpipe/$name"
        as_service "$PGBIN/initdb" -D "$dir/pgdata" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    fi
    if as_service "$PGBIN/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1; then
        log "Postgres .starpipe/$name already running"
        return
    fi
    log "starting Postgres 15 on 127.0.0.1:$port"
    as_service "$PGBIN/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -o "$opts" -w -t 60 start >/dev/null
}

stop_postgres() {
    local dir
    dir=$(readlink -f "$STATE/$1" 2>/dev/null || true)
    if [ -n "$dir" ] && [ -f "$dir/pgdata/postmaster.pid" ]; then
        as_service "$PGBIN/pg_ctl" -D "$dir/pgdata" -m fast -w stop >/dev/null || true
    fi
}

start_redis() {
    local name=$1 port=$2 dir
    dir=$(server_dir "$name")
    log "starting redis-server on 127.0.0.1:$port"
    as_service redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' --appendonly no >/dev/null
    local i
    for i in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "error: redis-server did not start; see .starpipe/$name/redis.log" >&2
    exit 1
}

stop_redis() {
    local port=$1
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

# start_mariadb NAME PORT: a private MariaDB server (datadir .starpipe/NAME/data, made by mariadb-install-db) on
# 127.0.0.1:PORT, run as the service user, no unix socket shared with a system server, TLS offered with a private CA
# (.starpipe/NAME/tls/ca.pem). Root may connect from loopback without a password (the tests' admin account). Waits
# until it answers.
start_mariadb() {
    local name=$1 port=$2 dir
    dir=$(server_dir "$name")
    if [ ! -d "$dir/data/mysql" ]; then
        log "creating MariaDB data directory in .starpipe/$name"
        as_service mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
            --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
    fi
    # TLS for the tests of sslmode=require|verify-full: a private CA and a server certificate for 127.0.0.1 and this
    # machine's own addresses (the TLS-warning tests reach the server through one of them, as a remote client would).
    # Made again when the machine's addresses changed.
    local san="subjectAltName=IP:127.0.0.1,DNS:localhost" address
    for address in $(hostname -I 2>/dev/null); do san="$san,IP:$address"; done
    if [ ! -f "$dir/tls/server.pem" ] || [ "$(cat "$dir/tls/san.ext" 2>/dev/null)" != "$san" ]; then
        mkdir -p "$dir/tls"
        (cd "$dir/tls" &&
            { [ -f ca.pem ] || openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=starpipe test CA" -keyout ca.key -out ca.pem; } &&
            openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr &&
            printf '%s\n' "$san" >san.ext &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 -extfile san.ext \
                -out server.pem) >/dev/null 2>&1 || { echo "error: cannot make the MariaDB test certificates" >&2; exit 1; }
        [ "$(id -u)" = 0 ] && chown -R "$SERVICE_USER" "$dir/tls"
    fi
    if [ -f "$dir/mariadb.pid" ] && kill -0 "$(cat "$dir/mariadb.pid")" 2>/dev/null; then
        log "MariaDB .starpipe/$name already running"
        return
    fi
    log "starting MariaDB on 127.0.0.1:$port"
    as_service sh -c 'nohup mariadbd --no-defaults --datadir="$1" --port="$2" --bind-address=127.0.0.1 \
        --socket="$3/mariadb.sock" --pid-file="$3/mariadb.pid" --log-error="$3/mariadb.log" \
        --skip-name-resolve --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --skip-log-bin \
        --ssl-ca="$3/tls/ca.pem" --ssl-cert="$3/tls/server.pem" --ssl-key="$3/tls/server.key" \
        >/dev/null 2>&1 &' sh "$dir/data" "$port" "$dir"
    local i
    for i in $(seq 150); do
        mariadb --no-defaults -h 127.0.0.1 -P "$port" -u root -e 'SELECT 1' >/dev/null 2>&1 && return
        sleep 0.2
    done
    echo "error: mariadbd did not start; see .starpipe/$name/mariadb.log" >&2
    exit 1
}

stop_mariadb() {
    local dir pid
    dir=$(readlink -f "$STATE/$1" 2>/dev/null || true)
    [ -n "$dir" ] && [ -f "$dir/mariadb.pid" ] || return 0
    pid=$(cat "$dir/mariadb.pid")
    kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
}

install_extension() {
    log "building and installing the starpipe extension"
    make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" >/dev/null
    as_root make -s -C "$REPO/extension" PG_CONFIG="$PGBIN/pg_config" install >/dev/null
}

# Removes a server's data (the directory or the private directory it links to) so the next start is fresh.
reset_server_dir() {
    local dir="$STATE/$1"
    if [ -L "$dir" ]; then
        local target
        target=$(readlink -f "$dir")
        as_root rm -rf "$target"
        mkdir -p "$target"
        [ "$(id -u)" = 0 ] && chown "$SERVICE_USER" "$target"
    elif [ -d "$dir" ]; then
        as_root rm -rf "$dir"
    fi
    return 0
}

# The S3/SQS test peer: moto[server] from PyPI, in a venv under .starpipe/moto (Debian's python3 is
# externally managed, so pip needs a venv). Sets MOTO_SERVER to its moto_server. MOTO_SERVER from the
# environment (an existing install) wins.
MOTO_VERSION=${STARPIPE_MOTO_VERSION:-5.2.1}
install_moto() {
    if [ -n "${MOTO_SERVER:-}" ] && [ -x "$MOTO_SERVER" ]; then return; fi
    local venv="$STATE/moto"
    MOTO_SERVER="$venv/bin/moto_server"
    if [ -x "$MOTO_SERVER" ] && "$venv/bin/python" -c 'import moto.server, flask_cors' 2>/dev/null; then
        export MOTO_SERVER
        return
    fi
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        log "installing python3-venv and python3-pip"
        as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            python3 python3-venv python3-pip >/dev/null
    fi
    log "installing moto[server] $MOTO_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
    export MOTO_SERVER
}

# Starts moto_server on 127.0.0.1:PORT with cheap multipart (parts of 256 bytes allowed); its pid goes to
# .starpipe/NAME.pid. Waits until it answers.
start_moto() {
    local name=$1 port=$2
    install_moto
    mkdir -p "$STATE"
    log "starting moto_server on 127.0.0.1:$port"
    S3_UPLOAD_PART_MIN_SIZE=256 nohup "$MOTO_SERVER" -H 127.0.0.1 -p "$port" >"$STATE/$name.log" 2>&1 &
    echo $! >"$STATE/$name.pid"
    local i
    for i in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/moto-api/data.json" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "error: moto_server did not start; see .starpipe/$name.log" >&2
    exit 1
}

stop_moto() {
    local name=$1 pid
    [ -f "$STATE/$name.pid" ] || return 0
    pid=$(cat "$STATE/$name.pid")
    kill "$pid" 2>/dev/null || true
    rm -f "$STATE/$name.pid"
}
