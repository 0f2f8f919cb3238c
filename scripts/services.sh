#!/usr/bin/env bash
# Throwaway backing services for sunusav's tests and benchmarks.
#
# Starts, on loopback only and inside a fresh temp dir:
#   * PostgreSQL 15 (superuser `postgres`, trust auth on 127.0.0.1)
#   * a standalone redis-server
#   * a 3-master Redis Cluster
#   * with a CA and a certificate for localhost generated for the run (openssl),
#     a PostgreSQL with ssl = on and a redis-server that speaks only TLS
# and exports
#   DATABASE_URL, REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SERVER_BIN,
#   DATABASE_TLS_URL, REDIS_TLS_URL, SUNUSAV_TLS_CA, SUNUSAV_TLS_OTHER_CA,
#   SUNUSAV_REQUIRE_SERVICES=1, SUNUSAV_SERVICES_DIR.
# Everything it started is stopped (by pid) and the temp dir removed on
# EXIT/INT/TERM. It never touches processes it did not start.
#
# Usage:
#   scripts/services.sh run <cmd...>   start services, run cmd, stop services
#   scripts/services.sh shell          start services, open $SHELL with the env
#   scripts/services.sh install        only install missing apt packages
#   source scripts/services.sh         defines services_install / services_start
#                                      (services_start installs the cleanup trap)
#
# Root is needed only to apt-get install missing packages; when run as root,
# PostgreSQL runs as the `postgres` system user (initdb refuses root).

set -euo pipefail

_svc_log() { printf '[services] %s\n' "$*" >&2; }
_svc_die() {
    _svc_log "ERROR: $*"
    exit 1
}

# --------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------

# Directory holding initdb/pg_ctl/postgres (PostgreSQL 15 preferred).
_svc_pg_bindir() {
    local d
    for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    return 1
}

# Install missing PostgreSQL / Redis packages with apt-get (root or sudo).
services_install() {
    local -a pkgs=()
    _svc_pg_bindir >/dev/null || pkgs+=(postgresql-15)
    command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
    # promtool, for the alert rules' checks and tests (scripts/promtool.sh);
    # openssl, for the TLS services' certificates.
    command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
    command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
    # chromium, for the console's headless browser test (examples/tests/console_browser.rs).
    command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
    # jq, for the unused-dependency check's cargo JSON (scripts/unused-deps.sh).
    command -v jq >/dev/null 2>&1 || pkgs+=(jq)
    if ((${#pkgs[@]} == 0)); then
        _svc_log "postgres, redis, promtool, openssl, chromium and jq already installed"
        return 0
    fi

    local -a sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            _svc_die "missing packages (${pkgs[*]}) and not root; install them first"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 ||
        _svc_die "missing packages (${pkgs[*]}) and apt-get is not available"

    _svc_log "installing: ${pkgs[*]}"
    local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
        -q -y -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600)
    "${apt[@]}" update -qq
    if ! "${apt[@]}" install -qq --no-install-recommends "${pkgs[@]}"; then
        # Not every release ships postgresql-15; fall back to the default.
        local i
        for i in "${!pkgs[@]}"; do
            [[ "${pkgs[$i]}" == postgresql-15 ]] && pkgs[i]=postgresql
        done
        "${apt[@]}" install -qq --no-install-recommends "${pkgs[@]}"
    fi

    _svc_pg_bindir >/dev/null || _svc_die "PostgreSQL server binaries still not found"
    command -v redis-server >/dev/null 2>&1 || _svc_die "redis-server still not found"
    command -v redis-cli >/dev/null 2>&1 || _svc_die "redis-cli still not found"
    command -v promtool >/dev/null 2>&1 || _svc_die "promtool still not found"
    command -v openssl >/dev/null 2>&1 || _svc_die "openssl still not found"
    command -v chromium >/dev/null 2>&1 || _svc_die "chromium still not found"
}

# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------

_SVC_RESERVED_PORTS=" "

_svc_port_busy() {
    local p=$1
    [[ "$_SVC_RESERVED_PORTS" == *" $p "* ]] && return 0
    # Something accepts connections on it?
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
        return 0
    fi
    # Bound/listening (any address) according to ss, when available.
    if command -v ss >/dev/null 2>&1 &&
        [[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]]; then
        return 0
    fi
    return 1
}

# _svc_free_port START [BUS_OFFSET]: sets _SVC_PORT to the first free port
# >= START (with BUS_OFFSET, port+BUS_OFFSET must be free too) and reserves it.
# Not meant for $(...): the reservation must happen in this shell.
_svc_free_port() {
    local p=$1 off=${2:-0} limit=$(($1 + 2000))
    while ((p < limit)); do
        if ! _svc_port_busy "$p" && { ((off == 0)) || ! _svc_port_busy $((p + off)); }; then
            _SVC_RESERVED_PORTS+="$p "
            ((off == 0)) || _SVC_RESERVED_PORTS+="$((p + off)) "
            _SVC_PORT=$p
            return 0
        fi
        p=$((p + 1))
    done
    _svc_die "no free port found in [$1, $limit)"
}

# --------------------------------------------------------------------------
# Start / stop
# --------------------------------------------------------------------------

SVC_DIR=""
SVC_PG_DATA=""
SVC_PG_PID=""
SVC_PG_LAUNCHER_PID=""
SVC_PG_BIN=""
SVC_PGTLS_DATA=""
SVC_PGTLS_PID=""
SVC_PGTLS_LAUNCHER_PID=""
SVC_REDIS_PIDS=()
_SVC_STOPPED=0

# Run a command as the PostgreSQL owner (postgres system user when root).
_svc_as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_svc_is_our_pid() { # pid expected-name-substring
    local pid=$1 name=$2 comm
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [[ -z "$comm" || "$comm" == *"$name"* ]]
}

_svc_kill_pid() { # pid name
    local pid=$1 name=$2 i
    _svc_is_our_pid "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    _svc_log "$name (pid $pid) did not exit after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

_svc_stop_pg() { # postmaster-pid data-dir launcher-pid
    local pid=$1 data=$2 launcher=$3 i
    if [[ -n "$pid" ]] && _svc_is_our_pid "$pid" postgres; then
        _svc_as_pg "$SVC_PG_BIN/pg_ctl" stop -D "$data" -m fast -w -t 30 >/dev/null 2>&1 ||
            _svc_kill_pid "$pid" postgres
    fi
    if [[ -n "$launcher" ]]; then
        # The launcher (runuser, or postgres itself) exits with the postmaster.
        for ((i = 0; i < 100; i++)); do
            kill -0 "$launcher" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$launcher" 2>/dev/null && _svc_kill_pid "$launcher" ""
        wait "$launcher" 2>/dev/null
    fi
}

services_stop() {
    ((_SVC_STOPPED)) && return 0
    _SVC_STOPPED=1
    set +e
    local pid i
    for pid in "${SVC_REDIS_PIDS[@]}"; do
        _svc_kill_pid "$pid" redis
    done
    # Reap our background children so nothing lingers as a zombie.
    for pid in "${SVC_REDIS_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    _svc_stop_pg "$SVC_PG_PID" "$SVC_PG_DATA" "$SVC_PG_LAUNCHER_PID"
    _svc_stop_pg "$SVC_PGTLS_PID" "$SVC_PGTLS_DATA" "$SVC_PGTLS_LAUNCHER_PID"
    if [[ -n "$SVC_DIR" && -d "$SVC_DIR" ]]; then
        rm -rf -- "$SVC_DIR"
    fi
    set -e
}

_SVC_CHILD_PID=""

_svc_on_signal() {
    local code=$1 i
    set +e
    trap - EXIT INT TERM
    _svc_log "interrupted; stopping services"
    if [[ -n "$_SVC_CHILD_PID" ]] && kill -0 "$_SVC_CHILD_PID" 2>/dev/null; then
        kill -TERM "$_SVC_CHILD_PID" 2>/dev/null
        for ((i = 0; i < 100; i++)); do
            kill -0 "$_SVC_CHILD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$_SVC_CHILD_PID" 2>/dev/null
        wait "$_SVC_CHILD_PID" 2>/dev/null
    fi
    services_stop
    exit "$code"
}

# services_exec CMD...: run CMD (stdin kept, default SIGINT) as a child we can
# wait on, so a TERM/INT to this script stops CMD and the services at once
# instead of being deferred until CMD exits. Returns CMD's exit status.
services_exec() {
    ( trap - INT QUIT TERM EXIT; exec "$@" ) <&0 &
    _SVC_CHILD_PID=$!
    local rc=0
    wait "$_SVC_CHILD_PID" || rc=$?
    _SVC_CHILD_PID=""
    return "$rc"
}

_svc_tail_die() { # logfile message
    _svc_log "---- last lines of $1 ----"
    tail -n 40 "$1" >&2 2>/dev/null || true
    _svc_die "$2"
}

# _svc_start_pg_instance NAME PORT_BASE [EXTRA_CONF]: initdb and start a
# PostgreSQL in $SVC_DIR/NAME; sets _SVC_PG_DATA, _SVC_PG_LAUNCHER, _SVC_PG_PID
# and _SVC_PG_PORT. EXTRA_CONF is appended to postgresql.conf.
_svc_start_pg_instance() {
    local name=$1 base=$2 extra=${3:-}
    local pgdir="$SVC_DIR/$name" port log data
    data="$pgdir/data"
    log="$pgdir/postgres.log"
    mkdir -p "$pgdir"
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || _svc_die "system user 'postgres' does not exist"
        chown postgres: "$pgdir"
    fi
    chmod 700 "$pgdir"

    _svc_free_port "$base"
    port=$_SVC_PORT
    _svc_log "$name: initdb (port $port)"
    _svc_as_pg "$SVC_PG_BIN/initdb" -D "$data" -U postgres --auth=trust \
        -E UTF8 --locale=C --no-sync >"$pgdir/initdb.log" 2>&1 ||
        _svc_tail_die "$pgdir/initdb.log" "initdb failed"

    _svc_as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# --- sunusav test settings ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pgdir'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
$extra
EOF
    _svc_as_pg tee "$data/pg_hba.conf" >/dev/null <<EOF
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF

    # Run the postmaster as a background child of this shell (not daemonized
    # via pg_ctl) so it is always reaped, even where PID 1 does not reap.
    _svc_as_pg "$SVC_PG_BIN/postgres" -D "$data" </dev/null >"$log" 2>&1 &
    _SVC_PG_LAUNCHER=$!
    _SVC_PG_DATA=$data
    _SVC_PG_PORT=$port
    _SVC_PG_PID=""
    local i
    for ((i = 0; i < 120; i++)); do
        _SVC_PG_PID="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
        [[ "$_SVC_PG_PID" =~ ^[0-9]+$ ]] && break
        _SVC_PG_PID=""
        kill -0 "$_SVC_PG_LAUNCHER" 2>/dev/null || _svc_tail_die "$log" "postgres exited during startup"
        sleep 0.5
    done
    [[ -n "$_SVC_PG_PID" ]] || _svc_tail_die "$log" "postgres wrote no postmaster.pid within 60s"

    local pg_isready="$SVC_PG_BIN/pg_isready"
    [[ -x "$pg_isready" ]] || pg_isready="pg_isready"
    for ((i = 0; i < 120; i++)); do
        if "$pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
            break
        fi
        kill -0 "$_SVC_PG_PID" 2>/dev/null || _svc_tail_die "$log" "postgres exited during startup"
        sleep 0.5
    done
    ((i < 120)) || _svc_tail_die "$log" "postgres not ready after 60s"
}

_svc_start_postgres() {
    SVC_PG_BIN="$(_svc_pg_bindir)" || _svc_die "PostgreSQL server not installed (run: $0 install)"
    _svc_start_pg_instance pg "${SUNUSAV_PG_PORT_BASE:-55432}"
    SVC_PG_DATA=$_SVC_PG_DATA
    SVC_PG_LAUNCHER_PID=$_SVC_PG_LAUNCHER
    SVC_PG_PID=$_SVC_PG_PID
    export DATABASE_URL="postgres://postgres@127.0.0.1:$_SVC_PG_PORT/postgres"
    _svc_log "postgres: ready, pid $SVC_PG_PID, $DATABASE_URL"
}

# TLS: a CA and a certificate for localhost / 127.0.0.1 generated for this
# run (and a second CA that signed nothing), a PostgreSQL with ssl = on and a
# redis-server that speaks only TLS, both also listening on 127.0.0.2, which
# the certificate does not name. Exports SUNUSAV_TLS_CA,
# SUNUSAV_TLS_OTHER_CA, DATABASE_TLS_URL (verify-full against the CA) and
# REDIS_TLS_URL (rediss:// to 127.0.0.1: the certificate names both).
_svc_start_tls() {
    local dir="$SVC_DIR/tls" log
    mkdir -p "$dir"
    log="$dir/openssl.log"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sunusav test CA" \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sunusav other CA" \
                -keyout "$dir/other-ca.key" -out "$dir/other-ca.pem" &&
            openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
                -keyout "$dir/server.key" -out "$dir/server.csr" &&
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
                >"$dir/server.ext" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
                -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem"
    } >"$log" 2>&1 || _svc_tail_die "$log" "generating the test certificates failed"
    chmod 644 "$dir/ca.pem" "$dir/other-ca.pem" "$dir/server.pem"
    chmod 600 "$dir/ca.key" "$dir/other-ca.key" "$dir/server.key"

    # PostgreSQL wants its key readable by its own user alone.
    local certs="$SVC_DIR/pgtls-certs"
    mkdir -p "$certs"
    cp "$dir/server.pem" "$dir/server.key" "$certs/"
    chmod 600 "$certs/server.key"
    if [[ "$(id -u)" == 0 ]]; then
        chown -R postgres: "$certs"
    fi
    # Also on 127.0.0.2, an address the certificate does not name.
    _svc_start_pg_instance pgtls "${SUNUSAV_PG_TLS_PORT_BASE:-55532}" "ssl = on
ssl_cert_file = '$certs/server.pem'
ssl_key_file = '$certs/server.key'
listen_addresses = '127.0.0.1,127.0.0.2'"
    SVC_PGTLS_DATA=$_SVC_PG_DATA
    SVC_PGTLS_LAUNCHER_PID=$_SVC_PG_LAUNCHER
    SVC_PGTLS_PID=$_SVC_PG_PID
    export SUNUSAV_TLS_CA="$dir/ca.pem" SUNUSAV_TLS_OTHER_CA="$dir/other-ca.pem"
    export DATABASE_TLS_URL="postgres://postgres@localhost:$_SVC_PG_PORT/postgres?sslmode=verify-full&sslrootcert=$dir/ca.pem"
    _svc_log "postgres (TLS): ready, pid $SVC_PGTLS_PID, port $_SVC_PG_PORT"

    local rdir="$SVC_DIR/redis-tls" port i
    _svc_free_port "${SUNUSAV_REDIS_TLS_PORT_BASE:-56479}"
    port=$_SVC_PORT
    # --port 0: no plain TCP at all; also on 127.0.0.2 (if it can), an
    # address the certificate does not name.
    _svc_start_redis "$rdir" 0 --bind 127.0.0.1 -127.0.0.2 --tls-port "$port" --tls-cert-file "$dir/server.pem" \
        --tls-key-file "$dir/server.key" --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no
    for ((i = 0; i < 100; i++)); do
        if [[ "$(redis-cli --tls --cacert "$dir/ca.pem" -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then
            break
        fi
        kill -0 "$_SVC_LAST_PID" 2>/dev/null ||
            _svc_tail_die "$rdir/redis.log" "redis-server (TLS) exited during startup"
        sleep 0.2
    done
    ((i < 100)) || _svc_tail_die "$rdir/redis.log" "redis-server (TLS) on port $port not ready after 20s"
    export REDIS_TLS_URL="rediss://127.0.0.1:$port"
    _svc_log "redis (TLS): ready, pid $_SVC_LAST_PID, $REDIS_TLS_URL"
}

# _svc_start_redis DIR PORT [extra redis-server args...]; sets _SVC_LAST_PID
_svc_start_redis() {
    local dir=$1 port=$2
    shift 2
    mkdir -p "$dir"
    "$REDIS_SERVER_BIN" --bind 127.0.0.1 --port "$port" --dir "$dir" \
        --save '' --appendonly no --daemonize no --logfile "$dir/redis.log" "$@" \
        </dev/null >"$dir/stdout.log" 2>&1 &
    _SVC_LAST_PID=$!
    SVC_REDIS_PIDS+=("$_SVC_LAST_PID")
}

_svc_wait_redis() { # dir port pid
    local dir=$1 port=$2 pid=$3 i
    for ((i = 0; i < 100; i++)); do
        if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$dir/stdout.log" >&2 2>/dev/null || true
            _svc_tail_die "$dir/redis.log" "redis-server on port $port exited during startup"
        fi
        sleep 0.2
    done
    _svc_tail_die "$dir/redis.log" "redis-server on port $port not ready after 20s"
}

_svc_start_redis_standalone() {
    local port dir="$SVC_DIR/redis"
    _svc_free_port "${SUNUSAV_REDIS_PORT_BASE:-56379}"
    port=$_SVC_PORT
    _svc_start_redis "$dir" "$port"
    _svc_wait_redis "$dir" "$port" "$_SVC_LAST_PID"
    export REDIS_URL="redis://127.0.0.1:$port"
    _svc_log "redis: ready, pid $_SVC_LAST_PID, $REDIS_URL"
}

_svc_start_redis_cluster() {
    # Cluster bus port is port+10000, so keep base ports below 55535.
    local base=${SUNUSAV_REDIS_CLUSTER_PORT_BASE:-47001}
    local -a ports=() pids=() addrs=()
    local p i dir
    for i in 1 2 3; do
        _svc_free_port "$base" 10000
        p=$_SVC_PORT
        ports+=("$p")
        base=$((p + 1))
    done
    for p in "${ports[@]}"; do
        dir="$SVC_DIR/cluster/$p"
        _svc_start_redis "$dir" "$p" --cluster-enabled yes \
            --cluster-config-file "$dir/nodes-$p.conf" --cluster-node-timeout 5000
        pids+=("$_SVC_LAST_PID")
        addrs+=("127.0.0.1:$p")
    done
    for i in 0 1 2; do
        _svc_wait_redis "$SVC_DIR/cluster/${ports[$i]}" "${ports[$i]}" "${pids[$i]}"
    done

    local log="$SVC_DIR/cluster/create.log"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
        </dev/null >"$log" 2>&1 || _svc_tail_die "$log" "redis-cli --cluster create failed"

    local ok
    for ((i = 0; i < 150; i++)); do
        ok=1
        for p in "${ports[@]}"; do
            redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null |
                grep -q '^cluster_state:ok' || ok=0
        done
        ((ok)) && break
        sleep 0.2
    done
    ((ok)) || {
        redis-cli -h 127.0.0.1 -p "${ports[0]}" cluster info >&2 || true
        _svc_tail_die "$SVC_DIR/cluster/${ports[0]}/redis.log" "redis cluster not ok after 30s"
    }

    export REDIS_CLUSTER_NODES
    REDIS_CLUSTER_NODES="$(IFS=,; printf '%s' "${addrs[*]}")"
    _svc_log "redis cluster: ready, pids ${pids[*]}, $REDIS_CLUSTER_NODES"
}

# Start every service, export the env, install the cleanup trap.
services_start() {
    [[ -z "$SVC_DIR" ]] || _svc_die "services already started"
    command -v redis-server >/dev/null 2>&1 || _svc_die "redis-server not installed (run: $0 install)"
    command -v redis-cli >/dev/null 2>&1 || _svc_die "redis-cli not installed (run: $0 install)"
    export REDIS_SERVER_BIN
    REDIS_SERVER_BIN="$(command -v redis-server)"

    trap 'services_stop' EXIT
    trap '_svc_on_signal 130' INT
    trap '_svc_on_signal 143' TERM

    if [[ "$(id -u)" == 0 ]]; then
        # /tmp so the postgres user can reach its data dir.
        SVC_DIR="$(mktemp -d /tmp/sunusav-services.XXXXXX)"
        chmod 755 "$SVC_DIR"
    else
        SVC_DIR="$(mktemp -d "${TMPDIR:-/tmp}/sunusav-services.XXXXXX")"
    fi
    export SUNUSAV_SERVICES_DIR="$SVC_DIR"
    _svc_log "temp dir: $SVC_DIR"

    _svc_start_postgres
    _svc_start_redis_standalone
    _svc_start_redis_cluster
    _svc_start_tls

    export SUNUSAV_REQUIRE_SERVICES=1
}

services_print_env() {
    local v
    for v in DATABASE_URL REDIS_URL REDIS_CLUSTER_NODES REDIS_SERVER_BIN DATABASE_TLS_URL REDIS_TLS_URL \
        SUNUSAV_TLS_CA SUNUSAV_TLS_OTHER_CA SUNUSAV_REQUIRE_SERVICES; do
        printf '  %s=%s\n' "$v" "${!v}"
    done
}

# --------------------------------------------------------------------------
# CLI (only when executed, not when sourced)
# --------------------------------------------------------------------------

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    cmd="${1:-}"
    shift || true
    case "$cmd" in
    install)
        services_install
        ;;
    run)
        (($# > 0)) || _svc_die "usage: $0 run <cmd...>"
        services_install
        services_start
        services_print_env >&2
        rc=0
        services_exec "$@" || rc=$?
        exit "$rc"
        ;;
    shell)
        services_install
        services_start
        _svc_log "services are up; exit the shell to stop them. Environment:"
        services_print_env >&2
        rc=0
        "${SHELL:-/bin/bash}" || rc=$?
        exit "$rc"
        ;;
    *)
        cat >&2 <<EOF
usage: $0 run <cmd...>   start services, run cmd with the env, stop services
       $0 shell          start services and open \$SHELL with the env
       $0 install        install missing postgres/redis packages (apt-get)
EOF
        exit 2
        ;;
    esac
fi
