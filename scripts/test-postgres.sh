#!/usr/bin/env bash
# Run a command (the test suite) with a PostgreSQL that answers at $BACKOFFICE_TEST_PG.
#
#   scripts/test-postgres.sh COMMAND [ARGS...]
#
# BACKOFFICE_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres) is the
# server the PostgreSQL tests create their databases on. If it answers and lets us in,
# COMMAND runs against it. If not, a throwaway cluster is made under var/test-pg
# (Debian's `postgresql` package is installed first when there is no initdb), started on
# 127.0.0.1 at a free port from 55432 (trust auth, its socket inside var/test-pg),
# BACKOFFICE_TEST_PG is pointed at it for COMMAND, and the cluster is stopped afterwards,
# whatever COMMAND's outcome. The exit status is COMMAND's.
#
# TEST_PG=auto (default) | throwaway (always the throwaway cluster) | external (never:
# fail when the server at BACKOFFICE_TEST_PG does not answer).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
URL="${BACKOFFICE_TEST_PG:-postgresql://postgres@127.0.0.1:5432/postgres}"
MODE="${TEST_PG:-auto}"
DIR="${TEST_PG_DIR:-$ROOT/var/test-pg}"
FIRST_PORT="${TEST_PG_PORT:-55432}"
VENV_PY="$ROOT/.venv/bin/python"
SUDO=""
[ "$(id -u)" = "0" ] || SUDO="sudo"

say() { echo "test-postgres: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -gt 0 ] || die "usage: $0 COMMAND [ARGS...]"
case "$MODE" in auto|throwaway|external) ;; *) die "TEST_PG=$MODE: auto, throwaway or external" ;; esac

# --- Does PostgreSQL answer at $URL, and let us in? -----------------------------------------
# Prints the reason when it does not.
pg_usable() {
    local url=$1 out
    if command -v pg_isready >/dev/null; then
        if ! out=$(pg_isready -q -t 3 -d "$url" 2>&1); then
            echo "nothing answers at $url${out:+ ($out)}"
            return 1
        fi
    fi
    # A server answering is not enough: a Debian cluster asks 127.0.0.1 for a password.
    if command -v psql >/dev/null; then
        if ! out=$(PGCONNECT_TIMEOUT=3 psql "$url" -XAtqc 'select 1' 2>&1 </dev/null); then
            echo "cannot connect to $url: $(echo "$out" | head -n1)"
            return 1
        fi
    elif [ -x "$VENV_PY" ] && "$VENV_PY" -c 'import psycopg' 2>/dev/null; then
        if ! out=$("$VENV_PY" - "$url" 2>&1 <<'EOF'
import sys, psycopg
with psycopg.connect(sys.argv[1], connect_timeout=3) as conn:
    conn.execute("select 1")
EOF
        ); then
            echo "cannot connect to $url: $(echo "$out" | tail -n1)"
            return 1
        fi
    elif ! command -v pg_isready >/dev/null; then
        echo "no pg_isready, psql or .venv psycopg to ask $url with"
        return 1
    fi
    return 0
}

if [ "$MODE" != throwaway ]; then
    if why=$(pg_usable "$URL"); then
        say "using the PostgreSQL at $URL"
        export BACKOFFICE_TEST_PG="$URL"
        exec "$@"
    fi
    [ "$MODE" = auto ] || die "$why (TEST_PG=external)"
    say "$why; starting a throwaway PostgreSQL under ${DIR#"$ROOT"/}"
fi

# --- The throwaway cluster ----------------------------------------------------------------
# The newest installed server version's programs.
bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d"; done | sort -V | tail -n1
}
BIN=$(bindir)
if [ -z "$BIN" ]; then
    command -v apt-get >/dev/null || die "no PostgreSQL server programs (initdb) and no apt-get"
    say "installing Debian's postgresql package (for initdb and pg_ctl)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    BIN=$(bindir)
    [ -n "$BIN" ] || die "installed postgresql but found no initdb"
fi

# initdb and postgres refuse to run as root: the cluster belongs to the `postgres` system
# user (made by Debian's postgresql-common) when we are root, else to us.
if [ "$(id -u)" = "0" ]; then
    OWNER=postgres
    id -u "$OWNER" >/dev/null 2>&1 || die "we are root and there is no 'postgres' user to run the cluster"
    as_owner() { runuser -u "$OWNER" -- "$@"; }
else
    OWNER=$(id -un)
    as_owner() { "$@"; }
fi

mkdir -p "$DIR"
# One test run at a time per cluster folder.
if command -v flock >/dev/null; then
    exec 9>"$DIR/.lock"
    flock -n 9 || die "another run is using the throwaway PostgreSQL in $DIR"
fi
chown "$OWNER" "$DIR" 2>/dev/null || true
chmod 700 "$DIR"
if ! as_owner test -w "$DIR"; then
    # e.g. the checkout sits under a folder the postgres user may not enter
    DIR=$(mktemp -d /tmp/backoffice-test-pg.XXXXXX)
    chown "$OWNER" "$DIR"
    say "the '$OWNER' user cannot write there; using $DIR"
fi
DATA="$DIR/data"
SOCKDIR="$DIR"
if [ ${#SOCKDIR} -gt 90 ]; then   # a unix socket path has at most 107 bytes
    SOCKDIR=$(mktemp -d /tmp/backoffice-test-pg-sock.XXXXXX)
    chown "$OWNER" "$SOCKDIR"
fi

# A server left running by an interrupted run is stopped first.
if [ -f "$DATA/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    say "stopping a throwaway PostgreSQL left running by an earlier run"
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true
fi
# A cluster from an earlier run is reused if it is of this PostgreSQL version.
if [ ! -f "$DATA/PG_VERSION" ] || [ "$(cat "$DATA/PG_VERSION")" != "$(basename "$(dirname "$BIN")")" ]; then
    rm -rf "$DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=$FIRST_PORT
while port_in_use "$PORT" || [ -e "$SOCKDIR/.s.PGSQL.$PORT" ]; do
    PORT=$((PORT + 1))
    [ "$PORT" -lt $((FIRST_PORT + 100)) ] || die "no free port in $FIRST_PORT-$PORT"
done

LOG="$DIR/server.log"
# shellcheck disable=SC2317  # run by the trap
stop_cluster() {
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
        || as_owner "$BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    say "throwaway PostgreSQL stopped"
}
trap stop_cluster EXIT
# Nothing here has to survive a crash: no fsync.
as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PORT -c listen_addresses=127.0.0.1 \
-c unix_socket_directories=$SOCKDIR -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c max_connections=200" start >/dev/null 9>&- \
    || { tail -n 20 "$LOG" >&2 || true; die "the throwaway PostgreSQL did not start (log: $LOG)"; }

export BACKOFFICE_TEST_PG="postgresql://postgres@127.0.0.1:$PORT/postgres"
why=$(pg_usable "$BACKOFFICE_TEST_PG") || die "$why"
say "throwaway PostgreSQL $(basename "$(dirname "$BIN")") at $BACKOFFICE_TEST_PG (data: $DATA)"

# Ctrl-C reaches COMMAND too (same process group): we wait for it, then stop the cluster.
trap 'say "interrupted; waiting for the command to end"' INT TERM
set +e
"$@" 9>&-   # the lock stays with this script, not with what the command leaves behind
status=$?
set -e
exit "$status"
